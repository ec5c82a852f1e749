/*
 * http_internal.h - what the route files (api_*.c) share with server.c.
 * Not part of the public interface: names carry the http__ prefix.
 */
#ifndef FP_HTTP_INTERNAL_H
#define FP_HTTP_INTERNAL_H

#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stddef.h>

#include "config.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/netaddr.h"
#include "http/guard.h"
#include "http/http.h"
#include "ratelimit/ratelimit.h"
#include "app/service.h"

#define HTTP_MAX_JSON_DEPTH 16
#define HTTP_MAX_FORM_FIELD 512 /* bytes of a multipart text field (username, source) */
#define HTTP_MAX_PARAMS 2
#define HTTP_MAX_UPLOADS 16 /* upload bodies received at once (503 beyond) */
#define HTTP_DISCARD_MAX (1024u * 1024u) /* chunked body bytes dropped past the limit */

typedef struct http_req http_req;
typedef enum MHD_Result (*http_handler_fn)(http_req *r);

typedef enum { HTTP_BODY_NONE, HTTP_BODY_JSON, HTTP_BODY_MULTIPART } http_body_kind;

/* Route flags. */
#define HTTP_OPS 1 /* /healthz, /readyz, /metrics: answered from the reserve, any Host */

#define HTTP_READY_RETRY_AFTER "5" /* seconds, on a 503 from /readyz */

typedef struct http_route {
    const char *method;
    const char *pattern; /* "/api/v1/jobs/{id}": {x} matches one segment */
    http_handler_fn handler;
    http_body_kind body;
    int metric; /* metrics_route index, set at start-up */
    int flags;
} http_route;

/* Rate-limit classes (policy.c), each with its own budget. */
typedef enum {
    HTTP_RL_FETCH,   /* a list fetched from a watchlist site */
    HTTP_RL_IMPORT,  /* an export upload */
    HTTP_RL_SESSION, /* a session created */
    HTTP_RL_CLIENT,  /* a browser id (cookie) issued */
    HTTP_RL_JOB,     /* a job (a search of stored lists too: jobs hold memory) */
    HTTP_RL_NCLASSES
} http_rl_class;

struct http_server {
    const fp_config *cfg;
    service *svc;
    sessions *sessions;
    struct MHD_Daemon *daemon;
    int port;
    atomic_int active; /* requests between first callback and completion */
    http_guard *guard;
    long max_conns, per_address; /* as resolved at start */
    fp_netlist *trusted;         /* trusted proxies */
    char **hosts;                /* Host names allowed besides IP literals and localhost */
    size_t nhosts;
    const ratelimit_backend *rlb;
    ratelimit *rl;
    double rl_burst[HTTP_RL_NCLASSES], rl_per_s[HTTP_RL_NCLASSES];
    atomic_ullong rl_refused[HTTP_RL_NCLASSES];
    atomic_int uploads; /* upload bodies being received */
};

struct http_req {
    http_server *srv;
    struct MHD_Connection *conn;
    guard_conn *gc;
    fp_addr client; /* http__client_addr, once known */
    int client_known;
    long retry_after_s; /* Retry-After of a 429/503 answer; 0: 1 s */
    int close;          /* answer with Connection: close */
    char client_id[33]; /* browser id of a valid fp_client cookie ("" if none) */
    int client_checked;
    int counted_upload; /* holds one of srv->uploads */
    guard_sse *upload_slot; /* this address's upload count (guard_upload_enter) */
    size_t discarded;   /* body bytes dropped past the limit */
    const http_route *route;
    char method[8];
    char *path;
    char id[17];
    long long start_us;
    char *params[HTTP_MAX_PARAMS];
    /* request body */
    fp_buf body;
    int body_error; /* fp_err while reading the body */
    struct MHD_PostProcessor *pp;
    fp_buf upload;
    char *upload_name;
    char *body_message; /* why body_error was set, when more can be said */
    char *form_user;
    char *form_source;
    /* answer */
    int status;
    int answered;
    /* suspended requests */
    int suspended;
    struct MHD_Response *pending;
    int pending_status;
    void *async; /* route-specific state while suspended */
    void (*async_free)(void *);
};

/* ---- api_ops.c, shared with ops_server.c (srv NULL: a process without
 * the API server: no rate-limit check, no connection metrics) ---- */
/* The /readyz body ({"status","version","checks"}); *ready 1 when every
 * required check is up (200), else 0 (503). */
json_t *http__ready_body(service *svc, http_server *srv, int *ready);
/* The /metrics text. */
fp_err http__metrics_text(service *svc, http_server *srv, fp_buf *out) FP_WARN_UNUSED;

/* ---- server.c ---- */
/* host:port (IPv4 or localhost; port 0: any free one) into *sa. */
fp_err http__parse_listen(const char *listen, struct sockaddr_in *sa) FP_WARN_UNUSED;

/* ---- policy.c ---- */
fp_err http__policy_init(http_server *srv) FP_WARN_UNUSED;
void http__policy_free(http_server *srv);
/* The client's address: the peer, or what a trusted proxy forwarded. */
const fp_addr *http__client_addr(http_req *r);
/* 1 when a trusted proxy says the client used HTTPS. */
int http__https(http_req *r);
/* Takes a trusted proxy's X-Request-Id (16 lowercase hex digits) as r->id. */
void http__proxy_request_id(http_req *r);
/* 1 when the Host header names this server (see policy.c). */
int http__host_allowed(const http_server *srv, const char *host);
/* Takes cost tokens of class c for the client address and, when client_id
 * is given, for that browser. FP_RATE_LIMITED with *retry_ms otherwise. */
fp_err http__rate_take(http_req *r, http_rl_class c, const char *client_id, double cost,
                       long long *retry_ms) FP_WARN_UNUSED;
/* A job (class job, 1) that will fetch `fetches` lists (class fetch), both
 * budgets taken together or neither; *refused says which one was out. */
fp_err http__rate_take_job(http_req *r, const char *client_id, double fetches,
                           long long *retry_ms, http_rl_class *refused) FP_WARN_UNUSED;
/* The 429 answer for class c, with an honest Retry-After. */
enum MHD_Result http__rate_limited(http_req *r, http_rl_class c, long long retry_ms);
const char *http__rl_class_name(http_rl_class c);

/* Queues resp with status and releases it (the answer of r). */
enum MHD_Result http__queue(http_req *r, int status, struct MHD_Response *resp);
/* nosniff, Referrer-Policy and a Content-Security-Policy (csp NULL: the
 * API's "default-src 'none'; frame-ancestors 'none'"). */
void http__security_headers(struct MHD_Response *resp, const char *csp);
/* Queues a JSON answer; steals body. */
enum MHD_Result http__json(http_req *r, int status, json_t *body);
/* Queues {"error":{"code","message"}} with the error's status; message NULL
 * uses the default. extra (stolen, may be NULL) is merged into "error". */
enum MHD_Result http__error(http_req *r, fp_err e, const char *message, json_t *extra);
/* Builds (without queueing) a response for a suspended request to send later. */
struct MHD_Response *http__json_response(http_req *r, json_t *body);
/* Parses the JSON body: FP_BAD_JSON / FP_INVALID (depth) with *message set. */
fp_err http__parse_body(http_req *r, json_t **out, char **message) FP_WARN_UNUSED;
/* Parses the JSON body into *body; on failure queues the error answer,
 * leaves *body NULL and returns the queueing result. */
enum MHD_Result http__body_or_error(http_req *r, json_t **body);
/* Suspends r; the answer comes from http__resume. */
void http__suspend(http_req *r);
/* From any thread: sets the answer of a suspended request and resumes it. */
void http__resume(http_req *r, int status, struct MHD_Response *resp);
/* Error body as a JSON object (for suspended answers). */
json_t *http__error_body(fp_err e, const char *message);

/* Participant parsing shared by the route files. On failure *message says
 * which participant (index counted from 0, shown from 1; HTTP_NO_INDEX for
 * none) and why. */
#define HTTP_NO_INDEX ((size_t)-1)
/* An optional non-negative integer query argument (def when absent); -1
 * when malformed or above max. */
long http__query_long(http_req *r, const char *name, long def, long max);
/* A positive id from a path segment (1 to 18 digits, no leading zero); 0 otherwise. */
int64_t http__path_id(const char *seg);
fp_err http__person(service *svc, const char *type, const char *input, int refresh, size_t index,
                    svc_person *out, char **message) FP_WARN_UNUSED;

/* Route handlers. */
enum MHD_Result api_compat_scrape(http_req *r);
enum MHD_Result api_compat_remove(http_req *r);
enum MHD_Result api_v1_jobs_create(http_req *r);
enum MHD_Result api_v1_job_get(http_req *r);
enum MHD_Result api_v1_job_results(http_req *r);
enum MHD_Result api_v1_job_roll(http_req *r);
enum MHD_Result api_v1_job_watched(http_req *r);
enum MHD_Result api_v1_job_unwatched(http_req *r);
enum MHD_Result api_v1_imports(http_req *r);
enum MHD_Result api_v1_profile_check(http_req *r);
enum MHD_Result api_v1_film_poster(http_req *r);
enum MHD_Result api_sx_client(http_req *r);
enum MHD_Result api_sx_create(http_req *r);
enum MHD_Result api_sx_get(http_req *r);
enum MHD_Result api_sx_add(http_req *r);
enum MHD_Result api_sx_remove(http_req *r);
enum MHD_Result api_sx_search(http_req *r);
enum MHD_Result api_sx_veto(http_req *r);
enum MHD_Result api_sx_roll(http_req *r);
enum MHD_Result api_sx_watched(http_req *r);
enum MHD_Result api_sx_unwatched(http_req *r);
enum MHD_Result api_sx_films(http_req *r);
enum MHD_Result api_sx_events(http_req *r);
enum MHD_Result api_web_index(http_req *r);
enum MHD_Result api_web_asset(http_req *r);
enum MHD_Result api_web_root_file(http_req *r);
/* 1 when an unknown path may be a page of the web app, which then answers
 * it with api_web_not_found (404 with index.html). */
int api_web_is_page(const char *path);
enum MHD_Result api_web_not_found(http_req *r);
enum MHD_Result api_ops_healthz(http_req *r);
enum MHD_Result api_ops_readyz(http_req *r);
enum MHD_Result api_ops_metrics(http_req *r);
enum MHD_Result api_ops_openapi(http_req *r);
enum MHD_Result api_ops_docs(http_req *r);
enum MHD_Result api_ops_docs_file(http_req *r);


#endif

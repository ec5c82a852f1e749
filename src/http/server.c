/*
 * server.c - libmicrohttpd plumbing: routing, bounded request bodies,
 * multipart uploads (MHD's own post processor), JSON answers with security
 * headers, suspended requests, access logs and metrics.
 *
 * Request lifecycle: the first callback finds the route (404/405 at once, 413
 * from Content-Length, 415 from Content-Type); body callbacks append into a
 * bounded buffer; the final callback runs the handler, which answers at once
 * or suspends. A resumed request is answered from r->pending. The completion
 * callback logs one JSON line and records metrics.
 */
#include "http/http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <limits.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/utf8.h"
#include "http/http_internal.h"
#include "metrics.h"
#include "pick.h"

static http_route http_routes[] = {
    {"POST", "/api/scrape/", api_compat_scrape, HTTP_BODY_JSON, -1, 0},
    {"POST", "/api/scrape", api_compat_scrape, HTTP_BODY_JSON, -1, 0},
    {"POST", "/api/watchlist/remove", api_compat_remove, HTTP_BODY_JSON, -1, 0},
    {"POST", "/api/watchlist/remove/", api_compat_remove, HTTP_BODY_JSON, -1, 0},
    {"POST", "/api/v1/jobs", api_v1_jobs_create, HTTP_BODY_JSON, -1, 0},
    {"GET", "/api/v1/jobs/{id}", api_v1_job_get, HTTP_BODY_NONE, -1, 0},
    {"GET", "/api/v1/jobs/{id}/results", api_v1_job_results, HTTP_BODY_NONE, -1, 0},
    {"POST", "/api/v1/jobs/{id}/roll", api_v1_job_roll, HTTP_BODY_JSON, -1, 0},
    {"POST", "/api/v1/jobs/{id}/watched", api_v1_job_watched, HTTP_BODY_JSON, -1, 0},
    {"DELETE", "/api/v1/jobs/{id}/watched/{film}", api_v1_job_unwatched, HTTP_BODY_NONE, -1, 0},
    {"POST", "/api/v1/imports", api_v1_imports, HTTP_BODY_MULTIPART, -1, 0},
    {"GET", "/api/v1/profiles/check", api_v1_profile_check, HTTP_BODY_NONE, -1, 0},
    {"GET", "/api/v1/films/{id}/poster", api_v1_film_poster, HTTP_BODY_NONE, -1, 0},
    {"GET", "/healthz", api_ops_healthz, HTTP_BODY_NONE, -1, HTTP_OPS},
    {"GET", "/readyz", api_ops_readyz, HTTP_BODY_NONE, -1, HTTP_OPS},
    {"GET", "/metrics", api_ops_metrics, HTTP_BODY_NONE, -1, HTTP_OPS},
    {"GET", "/openapi.json", api_ops_openapi, HTTP_BODY_NONE, -1, 0},
    {"GET", "/docs", api_ops_docs, HTTP_BODY_NONE, -1, 0},
    {"GET", "/docs/", api_ops_docs, HTTP_BODY_NONE, -1, 0},
    {"GET", "/docs/{file}", api_ops_docs_file, HTTP_BODY_NONE, -1, 0},
    {"GET", "/api/v1/client", api_sx_client, HTTP_BODY_NONE, -1, 0},
    {"POST", "/api/v1/sessions", api_sx_create, HTTP_BODY_JSON, -1, 0},
    {"GET", "/api/v1/sessions/{id}", api_sx_get, HTTP_BODY_NONE, -1, 0},
    {"POST", "/api/v1/sessions/{id}/participants", api_sx_add, HTTP_BODY_JSON, -1, 0},
    {"DELETE", "/api/v1/sessions/{id}/participants/{pid}", api_sx_remove, HTTP_BODY_NONE, -1, 0},
    {"POST", "/api/v1/sessions/{id}/search", api_sx_search, HTTP_BODY_JSON, -1, 0},
    {"POST", "/api/v1/sessions/{id}/veto", api_sx_veto, HTTP_BODY_JSON, -1, 0},
    {"POST", "/api/v1/sessions/{id}/roll", api_sx_roll, HTTP_BODY_JSON, -1, 0},
    {"POST", "/api/v1/sessions/{id}/watched", api_sx_watched, HTTP_BODY_JSON, -1, 0},
    {"DELETE", "/api/v1/sessions/{id}/watched/{film}", api_sx_unwatched, HTTP_BODY_NONE, -1, 0},
    {"GET", "/api/v1/sessions/{id}/films", api_sx_films, HTTP_BODY_NONE, -1, 0},
    {"GET", "/api/v1/sessions/{id}/events", api_sx_events, HTTP_BODY_NONE, -1, 0},
    {"GET", "/", api_web_index, HTTP_BODY_NONE, -1, 0},
    {"GET", "/s/{id}", api_web_index, HTTP_BODY_NONE, -1, 0},
    {"GET", "/assets/{file}", api_web_asset, HTTP_BODY_NONE, -1, 0},
    {"GET", "/favicon.svg", api_web_root_file, HTTP_BODY_NONE, -1, 0},
    {"GET", "/robots.txt", api_web_root_file, HTTP_BODY_NONE, -1, 0},
};
#define HTTP_NROUTES (sizeof http_routes / sizeof http_routes[0])
static int http_metric_unmatched = -1;

static long long http__now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Matches path against pattern, capturing {x} segments. 1 on a match. */
static int http__match(const char *pattern, const char *path, char **params)
{
    int np = 0;
    const char *p = pattern, *u = path;
    while (*p && *u) {
        if (*p == '{') {
            const char *pe = strchr(p, '}');
            const char *ue = strchr(u, '/');
            size_t ulen = ue ? (size_t)(ue - u) : strlen(u);
            if (!pe || ulen == 0 || np >= HTTP_MAX_PARAMS)
                goto nomatch;
            params[np++] = fp_strndup(u, ulen);
            p = pe + 1;
            u += ulen;
            continue;
        }
        if (*p != *u)
            goto nomatch;
        p++;
        u++;
    }
    if (*p == '\0' && *u == '\0')
        return 1;
nomatch:
    for (int i = 0; i < np; i++)
        FP_FREE(params[i]);
    return 0;
}

void http__security_headers(struct MHD_Response *resp, const char *csp)
{
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, "Content-Security-Policy",
                            csp ? csp : "default-src 'none'; frame-ancestors 'none'");
}

struct MHD_Response *http__json_response(http_req *r, json_t *body)
{
    /* Reals (the ms of /readyz) as their shortest decimal, not %.17g. */
    char *text = json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(12));
    json_decref(body);
    if (!text)
        text = strdup("{\"error\":{\"code\":\"internal_error\",\"message\":\"encoding failed\"}}");
    size_t len = strlen(text);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer_with_free_callback(len, text, free);
    MHD_add_response_header(resp, "Content-Type", "application/json");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    MHD_add_response_header(resp, "X-Request-Id", r->id);
    http__security_headers(resp, NULL);
    return resp;
}

enum MHD_Result http__queue(http_req *r, int status, struct MHD_Response *resp)
{
    r->status = status;
    r->answered = 1;
    if (r->close)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ok = MHD_queue_response(r->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ok;
}

enum MHD_Result http__json(http_req *r, int status, json_t *body)
{
    return http__queue(r, status, http__json_response(r, body));
}

json_t *http__error_body(fp_err e, const char *message)
{
    return json_pack("{s:{s:s,s:s}}", "error", "code", fp_err_code(e), "message",
                     message ? message : fp_err_message(e));
}

enum MHD_Result http__error(http_req *r, fp_err e, const char *message, json_t *extra)
{
    json_t *body = http__error_body(e, message);
    if (extra) {
        json_object_update(json_object_get(body, "error"), extra);
        json_decref(extra);
    }
    int status = fp_err_http_status(e);
    struct MHD_Response *resp = http__json_response(r, body);
    if (status == 503 || status == 429) {
        char secs[24];
        snprintf(secs, sizeof secs, "%ld", r->retry_after_s > 0 ? r->retry_after_s : 1);
        MHD_add_response_header(resp, "Retry-After", secs);
    }
    if (e == FP_METHOD) {
        fp_buf allow;
        fp_buf_init(&allow, 256);
        for (size_t i = 0; i < HTTP_NROUTES; i++) {
            char *params[HTTP_MAX_PARAMS] = {0};
            if (http__match(http_routes[i].pattern, r->path, params)) {
                fp_err rc = fp_buf_appendf(&allow, "%s%s", allow.len ? ", " : "",
                                           http_routes[i].method);
                (void)rc;
                for (int k = 0; k < HTTP_MAX_PARAMS; k++)
                    fp_free(params[k]);
            }
        }
        if (allow.data)
            MHD_add_response_header(resp, "Allow", allow.data);
        fp_buf_free(&allow);
    }
    return http__queue(r, status, resp);
}

/* Containers nested deeper than HTTP_MAX_JSON_DEPTH (the root object is
 * level 1; scalars add no level). */
static int http__depth_ok(const json_t *j, int depth)
{
    if (!json_is_object(j) && !json_is_array(j))
        return 1;
    if (depth > HTTP_MAX_JSON_DEPTH)
        return 0;
    if (json_is_object(j)) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)j, k, v) if (!http__depth_ok(v, depth + 1)) return 0;
    } else {
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v) if (!http__depth_ok(v, depth + 1)) return 0;
    }
    return 1;
}

fp_err http__parse_body(http_req *r, json_t **out, char **message)
{
    *out = NULL;
    *message = NULL;
    if (r->body.len == 0) {
        *message = fp_strdup("the request body is empty; a JSON object was expected");
        return FP_BAD_JSON;
    }
    json_error_t err;
    json_t *j = json_loadb(r->body.data, r->body.len, JSON_REJECT_DUPLICATES, &err);
    if (!j) {
        /* jansson's text quotes the input up to the byte it refused, which
         * can be the first byte of a UTF-8 character (found by
         * fuzz_json_body): shown through the one helper for outside text. */
        char *text = fp_utf8_printable(err.text, strlen(err.text), sizeof err.text);
        *message = fp_printf("malformed JSON at line %d, column %d: %s", err.line, err.column,
                             text);
        fp_free(text);
        return FP_BAD_JSON;
    }
    if (!http__depth_ok(j, 1)) {
        json_decref(j);
        *message = fp_printf("JSON nested deeper than %d levels", HTTP_MAX_JSON_DEPTH);
        return FP_INVALID;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        *message = fp_strdup("the body must be a JSON object");
        return FP_INVALID;
    }
    *out = j;
    return FP_OK;
}

enum MHD_Result http__body_or_error(http_req *r, json_t **body)
{
    char *msg = NULL;
    fp_err rc = http__parse_body(r, body, &msg);
    if (rc == FP_OK)
        return MHD_YES;
    enum MHD_Result res = http__error(r, rc, msg, NULL);
    fp_free(msg);
    return res;
}

void http__suspend(http_req *r)
{
    r->suspended = 1;
    MHD_suspend_connection(r->conn);
}

void http__resume(http_req *r, int status, struct MHD_Response *resp)
{
    r->pending_status = status;
    r->pending = resp;
    MHD_resume_connection(r->conn);
}

long http__query_long(http_req *r, const char *name, long def, long max)
{
    const char *v = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
    if (!v)
        return def;
    if (*v < '0' || *v > '9') /* strtol would take spaces and signs */
        return -1;
    char *end = NULL;
    long n = strtol(v, &end, 10);
    if (*end || n < 0 || n > max)
        return -1;
    return n;
}

int64_t http__path_id(const char *seg)
{
    size_t len = seg ? strlen(seg) : 0;
    if (len == 0 || len > 18 || *seg == '0' || strspn(seg, "0123456789") != len)
        return 0;
    return strtoll(seg, NULL, 10);
}

fp_err http__person(service *svc, const char *type, const char *input, int refresh, size_t index,
                    svc_person *out, char **message)
{
    *message = NULL;
    fp_err rc = svc_person_parse(svc, type, input, refresh, out);
    if (rc != FP_BAD_SOURCE && rc != FP_BAD_USERNAME)
        return rc;
    char *who = index == HTTP_NO_INDEX ? fp_strdup("") : fp_printf("participant %zu: ", index + 1);
    char *shown = NULL;
    if (rc == FP_BAD_SOURCE && type &&
        (strcasecmp(type, "kp") == 0 || strcasecmp(type, "kinopoisk") == 0)) {
        *message = fp_printf("%sKinopoisk lists are not supported yet; use \"lb\" (Letterboxd)",
                             who);
    } else if (rc == FP_BAD_SOURCE) {
        shown = fp_utf8_printable(type ? type : "", type ? strlen(type) : 0, 40);
        *message = fp_printf("%sunknown source type '%s' (use \"lb\")", who, shown);
    } else {
        shown = fp_utf8_printable(input ? input : "", input ? strlen(input) : 0, 80);
        *message = fp_printf("%s'%s' is not a Letterboxd username or profile URL (like alice "
                             "or https://letterboxd.com/alice/)",
                             who, shown);
    }
    fp_free(shown);
    fp_free(who);
    return rc;
}

/* ---- multipart -------------------------------------------------------- */

static enum MHD_Result http__post_iter(void *cls, enum MHD_ValueKind kind, const char *key,
                                       const char *filename, const char *content_type,
                                       const char *transfer_encoding, const char *data,
                                       uint64_t off, size_t size)
{
    (void)kind;
    (void)content_type;
    (void)transfer_encoding;
    (void)off;
    http_req *r = cls;
    if (!key)
        return MHD_YES;
    if (strcmp(key, "file") == 0) {
        if (filename && !r->upload_name)
            r->upload_name = fp_strndup(filename, 255);
        if (size && fp_buf_append(&r->upload, data, size) != FP_OK) {
            r->body_error = FP_TOO_LARGE;
            return MHD_NO;
        }
    } else if (strcmp(key, "username") == 0 || strcmp(key, "source") == 0) {
        char **dst = key[0] == 'u' ? &r->form_user : &r->form_source;
        size_t have = *dst ? strlen(*dst) : 0;
        if (have + size > HTTP_MAX_FORM_FIELD) {
            r->body_error = FP_INVALID;
            fp_free(r->body_message);
            r->body_message = fp_printf("the '%s' field is longer than %d bytes", key,
                                        HTTP_MAX_FORM_FIELD);
            return MHD_NO;
        }
        char *joined = fp_malloc(have + size + 1);
        if (have)
            memcpy(joined, *dst, have);
        if (size)
            memcpy(joined + have, data, size);
        joined[have + size] = '\0';
        fp_free(*dst);
        *dst = joined;
    }
    return MHD_YES;
}

/* ---- the access handler ---------------------------------------------- */

static void http__req_free(http_req *r)
{
    if (r->counted_upload)
        atomic_fetch_sub(&r->srv->uploads, 1);
    guard_upload_leave(r->srv->guard, r->upload_slot);
    if (r->pp)
        MHD_destroy_post_processor(r->pp);
    if (r->pending)
        MHD_destroy_response(r->pending);
    if (r->async && r->async_free)
        r->async_free(r->async);
    fp_buf_free(&r->body);
    fp_buf_free(&r->upload);
    for (int i = 0; i < HTTP_MAX_PARAMS; i++)
        fp_free(r->params[i]);
    fp_free(r->upload_name);
    fp_free(r->form_user);
    fp_free(r->form_source);
    fp_free(r->body_message);
    fp_free(r->path);
    fp_free(r);
}

typedef struct http_hdr_count {
    int content_length;
    int transfer_encoding;
    int host;
} http_hdr_count;

static enum MHD_Result http__count_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                          const char *value)
{
    (void)kind;
    (void)value;
    http_hdr_count *n = cls;
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0)
        n->content_length++;
    else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0)
        n->transfer_encoding++;
    else if (strcasecmp(key, MHD_HTTP_HEADER_HOST) == 0)
        n->host++;
    return MHD_YES;
}

/* HTTP that libmicrohttpd would take leniently (first Content-Length wins,
 * a Transfer-Encoding it does not know is waited out, no Host is fine) is
 * refused at once: these are the ways a request is smuggled past a proxy
 * or made to hang. MHD_YES when the request may go on. */
static enum MHD_Result http__strict(http_req *r, const char *version, int *refused)
{
    *refused = 1;
    http_hdr_count n = {0, 0, 0};
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, http__count_header, &n);
    if (n.host == 0 && version && strcmp(version, MHD_HTTP_VERSION_1_0) != 0)
        return http__error(r, FP_INVALID, "an HTTP/1.1 request needs a Host header", NULL);
    if (n.host > 1)
        return http__error(r, FP_INVALID, "more than one Host header", NULL);
    if (n.content_length > 1)
        return http__error(r, FP_INVALID, "more than one Content-Length header", NULL);
    const char *clen =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (clen && (!*clen || strspn(clen, "0123456789") != strlen(clen) || strlen(clen) > 18))
        return http__error(r, FP_INVALID, "Content-Length is not a number of bytes", NULL);
    if (n.transfer_encoding > 0) {
        const char *te = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_TRANSFER_ENCODING);
        if (n.transfer_encoding > 1 || !te || strcasecmp(te, "chunked") != 0)
            return http__error(r, FP_NOT_IMPLEMENTED,
                               "only Transfer-Encoding: chunked is supported for request bodies",
                               NULL);
        if (clen)
            return http__error(r, FP_INVALID,
                               "a request may not have both Content-Length and Transfer-Encoding",
                               NULL);
    }
    *refused = 0;
    return MHD_YES;
}

static enum MHD_Result http__first_call(http_server *srv, http_req *r, const char *url,
                                        const char *method, const char *version)
{
    int refused = 0;
    enum MHD_Result sres = http__strict(r, version, &refused);
    if (refused)
        return sres;
    int path_known = 0;
    for (size_t i = 0; i < HTTP_NROUTES && !r->route; i++) {
        if (!http__match(http_routes[i].pattern, url, r->params))
            continue;
        path_known = 1;
        if (strcmp(http_routes[i].method, method) == 0 ||
            (strcmp(method, "HEAD") == 0 && strcmp(http_routes[i].method, "GET") == 0))
            r->route = &http_routes[i];
        else
            for (int k = 0; k < HTTP_MAX_PARAMS; k++)
                FP_FREE(r->params[k]);
    }
    int ops = r->route && (r->route->flags & HTTP_OPS);
    if (!ops && guard_busy(srv->guard)) {
        /* Nearly full: the rest of the pool is for /healthz, /readyz and /metrics. */
        guard_count_busy_answer(srv->guard);
        r->retry_after_s = 5;
        r->close = 1;
        return http__error(r, FP_UNAVAILABLE, "the server is at its connection limit; retry shortly",
                           NULL);
    }
    if (!ops && !http__host_allowed(srv, MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                                     MHD_HTTP_HEADER_HOST)))
        return http__error(r, FP_BAD_HOST,
                           "the Host header does not name this server (set allowed-hosts or "
                           "public-url to serve it under that name)",
                           NULL);
    if (!r->route && path_known)
        return http__error(r, FP_METHOD, NULL, NULL);
    if (!r->route && (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) &&
        api_web_is_page(url))
        return api_web_not_found(r); /* the app's own "page not found" */
    if (!r->route)
        return http__error(r, FP_NOT_FOUND, "no such route", NULL);

    const char *ctype =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    const char *clen =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    size_t limit = r->route->body == HTTP_BODY_MULTIPART ? (size_t)srv->cfg->max_upload_bytes
                                                         : (size_t)srv->cfg->max_body_bytes;
    if (clen) {
        char *end = NULL;
        unsigned long long n = strtoull(clen, &end, 10);
        /* multipart framing adds a little to the file itself */
        size_t allowed = r->route->body == HTTP_BODY_MULTIPART ? limit + 64 * 1024 : limit;
        if (end != clen && n > allowed) {
            char *msg = fp_printf("the body is %llu bytes; the limit is %zu", n, limit);
            enum MHD_Result res = http__error(r, FP_TOO_LARGE, msg, NULL);
            fp_free(msg);
            return res;
        }
    }
    /* Required even for an empty body: a cross-site form can POST without a
     * preflight only as text/plain, urlencoded or multipart. */
    if (r->route->body == HTTP_BODY_JSON &&
        (!ctype || strncasecmp(ctype, "application/json", 16) != 0 ||
         (ctype[16] != '\0' && ctype[16] != ';' && ctype[16] != ' ')))
        return http__error(r, FP_UNSUPPORTED_MEDIA,
                           "send the body as application/json (with that Content-Type)", NULL);
    if (r->route->body == HTTP_BODY_MULTIPART) {
        if (!ctype || strncasecmp(ctype, "multipart/form-data", 19) != 0)
            return http__error(r, FP_UNSUPPORTED_MEDIA,
                               "upload the export as multipart/form-data with a 'file' field",
                               NULL);
        /* The upload's budget is taken before its body is read: a refused
         * upload costs the server nothing, and at most HTTP_MAX_UPLOADS
         * bodies (up to max-upload-bytes each) are held at once. */
        r->upload_slot = guard_upload_enter(srv->guard, http__client_addr(r));
        if (!r->upload_slot) {
            r->retry_after_s = 5;
            return http__error(r, FP_RATE_LIMITED,
                               "this address is already sending several uploads; retry shortly",
                               NULL);
        }
        if (atomic_fetch_add(&srv->uploads, 1) >= HTTP_MAX_UPLOADS) {
            atomic_fetch_sub(&srv->uploads, 1);
            r->retry_after_s = 5;
            return http__error(r, FP_UNAVAILABLE,
                               "too many uploads are being received right now; retry shortly",
                               NULL);
        }
        r->counted_upload = 1;
        long long retry_ms = 0; /* the budget last: a refused upload spends none */
        if (http__rate_take(r, HTTP_RL_IMPORT, NULL, 1, &retry_ms) != FP_OK)
            return http__rate_limited(r, HTTP_RL_IMPORT, retry_ms);
        fp_buf_init(&r->upload, limit);
        r->pp = MHD_create_post_processor(r->conn, 64 * 1024, http__post_iter, r);
        if (!r->pp)
            return http__error(r, FP_INVALID, "malformed multipart/form-data header", NULL);
    }
    fp_buf_init(&r->body, r->route->body == HTTP_BODY_JSON ? limit : 0);
    int chunked = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                              MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL;
    guard_headers_done(r->gc, chunked || (clen && strcmp(clen, "0") != 0));
    return MHD_YES;
}

static enum MHD_Result http__access(void *cls, struct MHD_Connection *conn, const char *url,
                                    const char *method, const char *version,
                                    const char *upload_data, size_t *upload_data_size,
                                    void **con_cls)
{
    http_server *srv = cls;
    http_req *r = *con_cls;
    if (!r) {
        r = fp_calloc(1, sizeof *r);
        atomic_fetch_add(&srv->active, 1);
        r->srv = srv;
        r->conn = conn;
        r->gc = guard_conn_of(conn);
        r->start_us = http__now_us();
        snprintf(r->method, sizeof r->method, "%s", method);
        r->path = fp_strndup(url, 2048);
        uint8_t rid[8];
        pick_rng rng;
        pick_rng_init(&rng, NULL);
        pick_rng_bytes(&rng, rid, sizeof rid);
        sodium_bin2hex(r->id, sizeof r->id, rid, sizeof rid);
        http__proxy_request_id(r);
        *con_cls = r;
        return http__first_call(srv, r, r->path, method, version);
    }
    if (r->answered)
        return MHD_YES; /* an early error was queued; discard the rest */
    if (r->pending) { /* resumed */
        struct MHD_Response *resp = r->pending;
        r->pending = NULL;
        return http__queue(r, r->pending_status, resp);
    }
    if (r->suspended)
        return MHD_YES;
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (r->body_error) {
            /* The rest of a body already refused is read and dropped, but
             * only up to HTTP_DISCARD_MAX bytes (see below). */
            r->discarded += n;
            if (r->discarded > HTTP_DISCARD_MAX) {
                fp_log(FP_LOG_INFO, "body_dropped_too_long", "{s:s}", "request_id", r->id);
                return MHD_NO;
            }
            return MHD_YES;
        }
        if (r->route->body == HTTP_BODY_MULTIPART) {
            if (MHD_post_process(r->pp, upload_data, n) != MHD_YES && !r->body_error)
                r->body_error = FP_INVALID;
        } else if (r->route->body == HTTP_BODY_JSON) {
            if (fp_buf_append(&r->body, upload_data, n) != FP_OK)
                r->body_error = FP_TOO_LARGE;
        } else {
            r->body_error = FP_INVALID;
        }
        /* A body past the limit (only a chunked one: Content-Length bodies
         * are refused before they start). libmicrohttpd cannot answer in
         * the middle of a body, so the rest is read and dropped and the
         * final call answers 413; but only up to HTTP_DISCARD_MAX more
         * bytes: a chunk the client says is 2^64 bytes long would otherwise
         * be read for ever. Past that the connection is closed. */
        /* MHD cannot answer before the body is read: the rest is discarded
         * (never stored) and the final call answers. */
        return MHD_YES;
    }
    if (r->body_error == FP_TOO_LARGE) {
        char *msg = fp_printf("the body is larger than the limit of %zu bytes",
                              r->route->body == HTTP_BODY_MULTIPART ? r->upload.limit
                                                                    : r->body.limit);
        enum MHD_Result res = http__error(r, FP_TOO_LARGE, msg, NULL);
        fp_free(msg);
        return res;
    }
    if (r->body_error && r->route->body != HTTP_BODY_MULTIPART) /* imports say it themselves */
        return http__error(r, r->body_error, "the request body could not be read", NULL);
    guard_request_running(r->gc);
    return r->route->handler(r);
}

static void http__completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                            enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    http_req *r = *con_cls;
    if (!r)
        return;
    double secs = (double)(http__now_us() - r->start_us) / 1e6;
    int metric = r->route ? r->route->metric : http_metric_unmatched;
    metrics_http(metric, r->status, secs);
    char client[FP_ADDR_TEXT] = "";
    if (r->srv->cfg->log_client_address)
        fp_addr_format(http__client_addr(r), client);
    fp_log(FP_LOG_INFO, "http_request", "{s:s,s:s,s:s,s:i,s:I,s:b,s:s*}", "request_id", r->id,
           "method", r->method, "route", r->route ? r->route->pattern : "(none)", "status",
           r->status, "duration_us", (json_int_t)(secs * 1e6),
           "completed", toe == MHD_REQUEST_TERMINATED_COMPLETED_OK, "client",
           client[0] ? client : NULL);
    http_server *srv = r->srv;
    guard_request_done(r->gc);
    http__req_free(r);
    *con_cls = NULL;
    atomic_fetch_sub(&srv->active, 1);
}

fp_err http__parse_listen(const char *listen, struct sockaddr_in *sa)
{
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    const char *colon = listen ? strrchr(listen, ':') : NULL;
    if (!colon)
        return FP_INVALID;
    char host[64];
    size_t hlen = (size_t)(colon - listen);
    if (hlen == 0 || hlen >= sizeof host)
        return FP_INVALID;
    memcpy(host, listen, hlen);
    host[hlen] = '\0';
    if (strcmp(host, "localhost") == 0)
        snprintf(host, sizeof host, "127.0.0.1");
    char *end = NULL;
    long port = strtol(colon + 1, &end, 10);
    if (!*(colon + 1) || *end || port < 0 || port > 65535)
        return FP_INVALID;
    if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
        return FP_INVALID;
    sa->sin_port = htons((uint16_t)port);
    return FP_OK;
}

/* The connection pool from the file descriptor limit (raised by
 * http_raise_fd_limit at start): what is left after HTTP_FD_SPARE for the
 * database, the fetch client's connections, logs and libraries, at most
 * HTTP_POOL_AUTO_MAX (each connection costs libmicrohttpd a 32 KiB buffer). */
#define HTTP_FD_SPARE (128 + GUARD_SLACK)
#define HTTP_POOL_AUTO_MAX 4096
#define HTTP_POOL_MIN 32

static void http__size_pool(const fp_config *cfg, long *pool, long *per_address)
{
    struct rlimit rl;
    long fds = 1024;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        fds = rl.rlim_cur > (rlim_t)LONG_MAX ? LONG_MAX : (long)rl.rlim_cur;
    else if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        fds = HTTP_POOL_AUTO_MAX + HTTP_FD_SPARE;
    long fit = fds - HTTP_FD_SPARE;
    long p = cfg->max_connections > 0 ? cfg->max_connections : fit;
    if (cfg->max_connections <= 0 && p > HTTP_POOL_AUTO_MAX)
        p = HTTP_POOL_AUTO_MAX;
    if (p > fit) {
        fp_log(FP_LOG_WARN, "max_connections_above_fd_limit", "{s:I,s:I}", "max_connections",
               (json_int_t)p, "fd_limit", (json_int_t)fds);
        p = fit;
    }
    if (p < HTTP_POOL_MIN)
        p = HTTP_POOL_MIN;
    *pool = p;
    long per = cfg->max_connections_per_address > 0 ? cfg->max_connections_per_address : p / 8;
    if (per < 16)
        per = 16;
    *per_address = per < p ? per : p;
}

void http_raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max)
        return;
    rlim_t before = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max;
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (rlim_t)1 << 20)
        rl.rlim_cur = (rlim_t)1 << 20;
    if (rl.rlim_cur > before && setrlimit(RLIMIT_NOFILE, &rl) == 0)
        fp_log(FP_LOG_INFO, "fd_limit_raised", "{s:I,s:I}", "from", (json_int_t)before, "to",
               (json_int_t)rl.rlim_cur);
}

fp_err http_server_start(const fp_config *cfg, service *svc, sessions *sess, http_server **out)
{
    *out = NULL;
    struct sockaddr_in sa;
    if (http__parse_listen(cfg->listen, &sa) != FP_OK) {
        fp_log(FP_LOG_ERROR, "bad_listen_address", "{s:s}", "listen",
               cfg->listen ? cfg->listen : "");
        return FP_INVALID;
    }
    for (size_t i = 0; i < HTTP_NROUTES; i++) {
        char name[128];
        snprintf(name, sizeof name, "%s %s", http_routes[i].method, http_routes[i].pattern);
        http_routes[i].metric = metrics_route(name);
    }
    http_metric_unmatched = metrics_route("unmatched");
    http_server *h = fp_calloc(1, sizeof *h);
    h->cfg = cfg;
    h->svc = svc;
    h->sessions = sess;
    fp_err rc = http__policy_init(h);
    if (rc != FP_OK) {
        http__policy_free(h);
        fp_free(h);
        return rc;
    }
    http__size_pool(cfg, &h->max_conns, &h->per_address);
    long reserve = cfg->connections_reserve < h->max_conns / 2 ? cfg->connections_reserve
                                                                : h->max_conns / 2;
    guard_options go = {
        .max_conns = h->max_conns,
        .reserve = reserve,
        .per_address = h->per_address,
        .header_ms = cfg->header_timeout_s * 1000,
        .body_ms = cfg->body_timeout_s * 1000,
        .idle_ms = cfg->request_timeout_s * 1000,
        .sse_per_address = cfg->max_streams_per_address,
        .trusted = h->trusted,
    };
    rc = guard_new(&go, &h->guard);
    if (rc != FP_OK) {
        http__policy_free(h);
        fp_free(h);
        return rc;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ITC | MHD_USE_TURBO;
    h->daemon = MHD_start_daemon(
        flags, 0, guard_accept, h->guard, http__access, h, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&sa, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cfg->http_threads,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->request_timeout_s,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)(h->max_conns + GUARD_SLACK),
        MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        0u, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_NOTIFY_COMPLETED, http__completed,
        h, MHD_OPTION_NOTIFY_CONNECTION, guard_notify, h->guard, MHD_OPTION_END);
    if (!h->daemon) {
        fp_log(FP_LOG_ERROR, "listen_failed", "{s:s}", "listen", cfg->listen);
        guard_free(&h->guard);
        http__policy_free(h);
        fp_free(h);
        return FP_IO;
    }
    fp_log(FP_LOG_INFO, "connection_limits", "{s:I,s:I,s:I,s:I,s:I}", "max_connections",
           (json_int_t)h->max_conns, "reserve", (json_int_t)reserve, "per_address",
           (json_int_t)h->per_address, "header_timeout_s", (json_int_t)cfg->header_timeout_s,
           "body_timeout_s", (json_int_t)cfg->body_timeout_s);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : ntohs(sa.sin_port);
    *out = h;
    return FP_OK;
}

int http_server_port(const http_server *h)
{
    return h->port;
}

void http_server_stop(http_server **hp, long grace_ms)
{
    http_server *h = *hp;
    if (!h)
        return;
    /* Stop accepting; MHD hands the listening socket back to us to close. */
    MHD_socket lsock = MHD_quiesce_daemon(h->daemon);
    sessions_close_streams(h->sessions); /* event streams end; their requests complete */
    svc_posters_abort(h->svc);           /* poster requests waiting on a fetch: 503 now */
    /* Wait for requests being answered (suspended ones included); idle
     * keep-alive connections hold no request and are simply closed. */
    for (long waited = 0; waited < grace_ms && atomic_load(&h->active) > 0; waited += 10)
        usleep(10 * 1000);
    MHD_stop_daemon(h->daemon);
    if (lsock != MHD_INVALID_SOCKET)
        close(lsock);
    guard_free(&h->guard); /* every connection has closed */
    svc_ready_drain(h->svc); /* a readiness check may still ping the rate-limit buckets */
    http__policy_free(h);
    fp_free(h);
    *hp = NULL;
}

/*
 * api_sessions.c - group sessions for the web app (docs/sessions.md):
 *   GET    /api/v1/client                                  cookie + CSRF token
 *   POST   /api/v1/sessions                                create
 *   GET    /api/v1/sessions/{id}                           state
 *   POST   /api/v1/sessions/{id}/participants              add a person
 *   DELETE /api/v1/sessions/{id}/participants/{pid}        remove one
 *   POST   /api/v1/sessions/{id}/search                    start the search
 *   POST   /api/v1/sessions/{id}/veto                      strike out / undo
 *   POST   /api/v1/sessions/{id}/roll                      roll the film
 *   POST   /api/v1/sessions/{id}/watched                   "We will watch it!"
 *   DELETE /api/v1/sessions/{id}/watched/{film}            "Put it back"
 *   GET    /api/v1/sessions/{id}/films?offset&limit&q      the common films, paged
 *   GET    /api/v1/sessions/{id}/events                    Server-Sent Events
 * Every state-changing request needs the fp_client cookie, the matching
 * X-CSRF-Token header, and (when the browser sends one) an Origin equal to
 * this server's.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/mem.h"
#include "http/http_internal.h"
#include "session.h"
#include "views.h"

#define CLIENT_COOKIE "fp_client"

/* The browser id of a valid (server-signed) fp_client cookie, or NULL. */
static const char *sx__cookie(http_req *r)
{
    if (!r->client_checked) {
        r->client_checked = 1;
        const char *c = MHD_lookup_connection_value(r->conn, MHD_COOKIE_KIND, CLIENT_COOKIE);
        if (!svc_client_from_cookie(r->srv->svc, c, r->client_id))
            r->client_id[0] = '\0';
    }
    return r->client_id[0] ? r->client_id : NULL;
}

/* 1 when the request may change state: token matches the cookie and the
 * Origin, if any, is this server (whose Host was checked against the
 * allow-list before any route ran, so a rebound name never gets here). */
static int sx__csrf_ok(http_req *r)
{
    const char *client = sx__cookie(r);
    const char *token = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-CSRF-Token");
    if (!client || !svc_client_check(r->srv->svc, client, token))
        return 0;
    const char *origin = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Origin");
    if (!origin)
        return 1; /* not a browser's cross-origin request */
    const char *host = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Host");
    if (!host)
        return 0;
    const char *scheme = http__https(r) ? "https://" : "http://";
    size_t slen = strlen(scheme);
    return strncmp(origin, scheme, slen) == 0 && strcmp(origin + slen, host) == 0;
}

#define SX_REQUIRE_CSRF(r)                                                                         \
    do {                                                                                           \
        if (!sx__csrf_ok(r))                                                                       \
            return http__error((r), FP_CSRF,                                                       \
                               "send the X-CSRF-Token from GET /api/v1/client with its cookie",  \
                               NULL);                                                              \
    } while (0)

enum MHD_Result api_sx_client(http_req *r)
{
    const char *have = sx__cookie(r);
    char id[33];
    if (have) {
        snprintf(id, sizeof id, "%s", have);
    } else {
        /* A new browser id (no cookie, or one this server did not sign). */
        long long retry_ms = 0;
        if (http__rate_take(r, HTTP_RL_CLIENT, NULL, 1, &retry_ms) != FP_OK)
            return http__rate_limited(r, HTTP_RL_CLIENT, retry_ms);
        vault_random_token(id, 16);
    }
    char token[VAULT_MAC_HEX + 1], value[SVC_COOKIE_LEN + 1];
    fp_err rc = svc_client_token(r->srv->svc, id, token);
    if (rc == FP_OK)
        rc = svc_client_cookie(r->srv->svc, id, value);
    if (rc != FP_OK)
        return http__error(r, rc, NULL, NULL);
    const char *pub = r->srv->cfg->public_url;
    struct MHD_Response *resp = http__json_response(
        r, json_pack("{s:s,s:o,s:s}", "csrf_token", token, "public_url",
                     pub ? json_string(pub) : json_null(), "letterboxd_url",
                     views_letterboxd_url()));
    char *cookie = fp_printf("%s=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=31536000%s",
                             CLIENT_COOKIE, value, http__https(r) ? "; Secure" : "");
    MHD_add_response_header(resp, "Set-Cookie", cookie);
    fp_free(cookie);
    return http__queue(r, 200, resp);
}

/* Answers a session call: the session view or the error. */
static enum MHD_Result sx__answer(http_req *r, fp_err rc, json_t *view, int ok_status,
                                  const char *conflict)
{
    if (rc == FP_OK)
        return http__json(r, ok_status, view);
    json_decref(view);
    switch (rc) {
    case FP_NOT_FOUND:
        return http__error(r, rc, "no such session (or it expired), participant or film", NULL);
    case FP_CONFLICT:
        return http__error(r, rc, conflict, NULL);
    default:
        return http__error(r, rc, NULL, NULL);
    }
}

/* The JSON body, or {} for an empty one. */
static enum MHD_Result sx__body(http_req *r, json_t **body)
{
    if (r->body.len == 0) {
        *body = json_object();
        return MHD_YES;
    }
    return http__body_or_error(r, body);
}

enum MHD_Result api_sx_create(http_req *r)
{
    SX_REQUIRE_CSRF(r);
    json_t *body = NULL;
    enum MHD_Result res = sx__body(r, &body);
    if (!body)
        return res;
    json_decref(body);
    long long retry_ms = 0;
    if (http__rate_take(r, HTTP_RL_SESSION, sx__cookie(r), 1, &retry_ms) != FP_OK)
        return http__rate_limited(r, HTTP_RL_SESSION, retry_ms);
    json_t *view = NULL;
    long retry_s = 0;
    fp_addr from = fp_addr_limit_key(http__client_addr(r));
    if (sess_address_full(r->srv->sessions, from.b)) {
        r->retry_after_s = 600;
        char *m = fp_printf("this address has %ld live sessions, the most it may; an empty one "
                            "ends after 10 minutes",
                            r->srv->cfg->max_sessions_per_address);
        res = http__error(r, FP_RATE_LIMITED, m, NULL);
        fp_free(m);
        return res;
    }
    fp_err rc = sess_create(r->srv->sessions, sx__cookie(r), from.b, &view, &retry_s);
    if (rc == FP_RATE_LIMITED) {
        r->retry_after_s = retry_s;
        char *m = fp_printf("this browser has %ld sessions open, the most it may; the oldest "
                            "frees its place in %ld s, or when it ends",
                            r->srv->cfg->max_sessions_per_client, retry_s);
        res = http__error(r, rc, m, NULL);
        fp_free(m);
        return res;
    }
    if (rc == FP_UNAVAILABLE) {
        r->retry_after_s = retry_s;
        return http__error(r, rc,
                           "the server holds as many live sessions (or as much session "
                           "memory) as it may; try again later",
                           NULL);
    }
    if (rc != FP_OK)
        return sx__answer(r, rc, view, 201, NULL);
    const char *id = json_string_value(json_object_get(view, "id"));
    char *loc = fp_printf("/api/v1/sessions/%s", id);
    struct MHD_Response *resp = http__json_response(r, view);
    MHD_add_response_header(resp, "Location", loc);
    fp_free(loc);
    return http__queue(r, 201, resp);
}

enum MHD_Result api_sx_get(http_req *r)
{
    json_t *view = NULL;
    fp_err rc = sess_get(r->srv->sessions, r->params[0], &view);
    return sx__answer(r, rc, view, 200, NULL);
}

enum MHD_Result api_sx_add(http_req *r)
{
    SX_REQUIRE_CSRF(r);
    json_t *body = NULL;
    enum MHD_Result res = sx__body(r, &body);
    if (!body)
        return res;
    json_t *profile = json_object_get(body, "profile"), *imp = json_object_get(body, "import");
    json_t *source = json_object_get(body, "source"), *jname = json_object_get(body, "name");
    svc_person p;
    char *msg = NULL, *name = NULL;
    fp_err rc;
    if (jname && (!json_is_string(jname) || !json_is_string(imp))) {
        rc = FP_INVALID;
        msg = fp_strdup("'name' is a string, for an upload ({\"import\": ..., \"name\": ...})");
    } else if (jname && sess_name_check(json_string_value(jname), &name) != FP_OK) {
        rc = FP_BAD_NAME;
        msg = fp_strdup("a name is 1 to 40 characters, without control characters");
    } else if (json_is_string(imp)) {
        rc = svc_person_import(r->srv->svc, json_string_value(imp), &p);
        if (rc != FP_OK)
            msg = fp_strdup("no import with that id");
    } else if (json_is_string(profile) && (!source || json_is_string(source))) {
        rc = http__person(r->srv->svc, source ? json_string_value(source) : "lb",
                          json_string_value(profile), 0, HTTP_NO_INDEX, &p, &msg);
    } else {
        rc = FP_INVALID;
        msg = fp_strdup("send {\"profile\": \"alice\"} or {\"import\": \"<import id>\"}");
    }
    json_decref(body);
    if (rc != FP_OK) {
        res = http__error(r, rc, msg, NULL);
        fp_free(msg);
        fp_free(name);
        return res;
    }
    /* Adding a person starts reading their list: a fetch unless it is stored. */
    long long retry_ms = 0;
    http_rl_class out_of = HTTP_RL_JOB;
    if (http__rate_take_job(r, sx__cookie(r), (double)svc_fetch_cost(r->srv->svc, &p, 1),
                            &retry_ms, &out_of) != FP_OK) {
        fp_free(name);
        return http__rate_limited(r, out_of, retry_ms);
    }
    json_t *view = NULL;
    rc = sess_add(r->srv->sessions, r->params[0], &p, name, &view);
    fp_free(name);
    if (rc == FP_DUPLICATE) {
        char *m = p.src ? fp_printf("%s is already in the group", p.user)
                        : fp_strdup("this upload is already in the group");
        res = http__error(r, rc, m, NULL);
        fp_free(m);
        return res;
    }
    if (rc == FP_TOO_MANY) {
        char *m = fp_printf("a session holds at most %ld people", r->srv->cfg->max_participants);
        res = http__error(r, rc, m, NULL);
        fp_free(m);
        return res;
    }
    return sx__answer(r, rc, view, 201, "a search is running; wait for its results");
}

enum MHD_Result api_sx_remove(http_req *r)
{
    SX_REQUIRE_CSRF(r);
    json_t *view = NULL;
    fp_err rc = sess_remove(r->srv->sessions, r->params[0], r->params[1], &view);
    return sx__answer(r, rc, view, 200, "a search is running; wait for its results");
}

enum MHD_Result api_sx_search(http_req *r)
{
    SX_REQUIRE_CSRF(r);
    json_t *body = NULL;
    enum MHD_Result res = sx__body(r, &body);
    if (!body)
        return res;
    json_t *refresh = json_object_get(body, "refresh");
    if (refresh && !json_is_boolean(refresh)) {
        json_decref(body);
        return http__error(r, FP_INVALID, "'refresh' must be a boolean", NULL);
    }
    int want = json_is_true(refresh);
    json_decref(body);
    size_t cost = 0;
    long long retry_ms = 0;
    http_rl_class out_of = HTTP_RL_JOB;
    if (sess_search_cost(r->srv->sessions, r->params[0], want, &cost) == FP_OK &&
        http__rate_take_job(r, sx__cookie(r), (double)cost, &retry_ms, &out_of) != FP_OK)
        return http__rate_limited(r, out_of, retry_ms);
    json_t *view = NULL;
    fp_err rc = sess_search(r->srv->sessions, r->params[0], want, &view);
    if (rc != FP_OK)
        return sx__answer(r, rc, view, 202, "add people first, or wait for the running search");
    char *loc = fp_printf("/api/v1/sessions/%s", r->params[0]);
    struct MHD_Response *resp = http__json_response(r, view);
    MHD_add_response_header(resp, "Location", loc);
    fp_free(loc);
    return http__queue(r, 202, resp);
}

/* Reads {"film_id": positive integer, ...}. */
static int sx__film_id(json_t *body, int64_t *id)
{
    json_t *f = json_object_get(body, "film_id");
    if (!json_is_integer(f) || json_integer_value(f) <= 0)
        return 0;
    *id = json_integer_value(f);
    return 1;
}

enum MHD_Result api_sx_veto(http_req *r)
{
    SX_REQUIRE_CSRF(r);
    json_t *body = NULL;
    enum MHD_Result res = sx__body(r, &body);
    if (!body)
        return res;
    int64_t film_id = 0;
    json_t *vetoed = json_object_get(body, "vetoed");
    int ok = sx__film_id(body, &film_id) && (!vetoed || json_is_boolean(vetoed));
    int want = !vetoed || json_is_true(vetoed);
    json_decref(body);
    if (!ok)
        return http__error(r, FP_INVALID,
                           "send {\"film_id\": <id>, \"vetoed\": true|false}", NULL);
    json_t *view = NULL;
    fp_err rc = sess_veto(r->srv->sessions, r->params[0], film_id, want, &view);
    return sx__answer(r, rc, view, 200, "there are no results to strike out yet");
}

enum MHD_Result api_sx_roll(http_req *r)
{
    SX_REQUIRE_CSRF(r);
    json_t *body = NULL;
    enum MHD_Result res = sx__body(r, &body);
    if (!body)
        return res;
    json_decref(body);
    json_t *view = NULL;
    fp_err rc = sess_roll(r->srv->sessions, r->params[0], &view);
    return sx__answer(r, rc, view, 200,
                      "nothing to roll: no results yet, or every film is struck out");
}

enum MHD_Result api_sx_watched(http_req *r)
{
    SX_REQUIRE_CSRF(r);
    json_t *body = NULL;
    enum MHD_Result res = sx__body(r, &body);
    if (!body)
        return res;
    int64_t film_id = 0;
    int ok = sx__film_id(body, &film_id);
    json_decref(body);
    if (!ok)
        return http__error(r, FP_INVALID, "send {\"film_id\": <id>}", NULL);
    json_t *view = NULL;
    fp_err rc = sess_watched(r->srv->sessions, r->params[0], film_id, &view);
    return sx__answer(r, rc, view, 200, "there are no results yet");
}

enum MHD_Result api_sx_unwatched(http_req *r)
{
    SX_REQUIRE_CSRF(r);
    int64_t film_id = http__path_id(r->params[1]);
    if (!film_id)
        return http__error(r, FP_INVALID, "the film id must be a positive integer", NULL);
    json_t *view = NULL;
    fp_err rc = sess_unwatched(r->srv->sessions, r->params[0], film_id, &view);
    if (rc == FP_NOT_FOUND)
        return http__error(r, rc, "no such session, or nobody here marked that film watched",
                           NULL);
    return sx__answer(r, rc, view, 200, "a search is running; wait for its results");
}

enum MHD_Result api_sx_films(http_req *r)
{
    long offset = http__query_long(r, "offset", 0, 1000000);
    long limit = http__query_long(r, "limit", 100, 500);
    if (offset < 0 || limit < 1)
        return http__error(r, FP_INVALID, "offset is 0 or more; limit is 1 to 500", NULL);
    const char *q = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "q");
    if (q && strlen(q) > 200)
        return http__error(r, FP_INVALID, "the search is at most 200 characters", NULL);
    json_t *out = NULL;
    fp_err rc = sess_films(r->srv->sessions, r->params[0], (size_t)offset, (size_t)limit, q, &out);
    return sx__answer(r, rc, out, 200, "there are no results yet");
}

/* ---- Server-Sent Events -------------------------------------------------- */

typedef struct sx_sse {
    struct MHD_Connection *conn;
    sess_stream *st;
    http_guard *guard;
    guard_sse *slot; /* this address's stream count, given back at the end */
} sx_sse;

static void sx__wake(void *ud)
{
    sx_sse *c = ud;
    MHD_resume_connection(c->conn);
}

static ssize_t sx__read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    sx_sse *c = cls;
    long n = sess_stream_read(c->st, buf, max);
    if (n > 0)
        return (ssize_t)n;
    if (n < 0)
        return MHD_CONTENT_READER_END_OF_STREAM;
    /* Nothing to send: sleep until the session publishes (no busy loop). */
    MHD_suspend_connection(c->conn);
    sess_stream_arm(c->st);
    return 0;
}

static void sx__free(void *cls)
{
    sx_sse *c = cls;
    sess_stream_close(c->st);
    guard_sse_leave(c->guard, c->slot);
    fp_free(c);
}

enum MHD_Result api_sx_events(http_req *r)
{
    const char *last = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Last-Event-ID");
    long long last_id = -1;
    if (last && *last >= '0' && *last <= '9') {
        char *end = NULL;
        last_id = strtoll(last, &end, 10);
        if (*end)
            last_id = -1;
    }
    guard_sse *slot = guard_sse_enter(r->srv->guard, http__client_addr(r));
    if (!slot) {
        r->retry_after_s = 30;
        char *m = fp_printf("this address already holds %ld live event streams, the most it may",
                            r->srv->cfg->max_streams_per_address);
        enum MHD_Result res = http__error(r, FP_RATE_LIMITED, m, NULL);
        fp_free(m);
        return res;
    }
    sx_sse *c = fp_calloc(1, sizeof *c);
    c->conn = r->conn;
    c->guard = r->srv->guard;
    c->slot = slot;
    fp_err rc = sess_stream_open(r->srv->sessions, r->params[0], last_id, sx__wake, c, &c->st);
    if (rc != FP_OK) {
        guard_sse_leave(c->guard, c->slot);
        fp_free(c);
        const char *m = rc == FP_NOT_FOUND ? "no such session (or it expired)" : NULL;
        char *many = NULL;
        if (rc == FP_RATE_LIMITED) {
            r->retry_after_s = 30;
            many = fp_printf("this session already has %ld live event streams, the most it may",
                             r->srv->cfg->max_streams_per_session);
            m = many;
        }
        enum MHD_Result res = http__error(r, rc, m, NULL);
        fp_free(many);
        return res;
    }
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, sx__read, c, sx__free);
    MHD_add_response_header(resp, "Content-Type", "text/event-stream; charset=utf-8");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no"); /* nginx: do not buffer */
    MHD_add_response_header(resp, "X-Request-Id", r->id);
    http__security_headers(resp, NULL);
    return http__queue(r, 200, resp);
}

/*
 * api_ops.c - operations and documentation routes: /healthz, /readyz,
 * /metrics, /openapi.json (compiled in), /docs (Swagger UI from
 * swagger-ui-dist, installed from npm at build time and served from
 * static_dir; never a CDN). The readiness body and the metrics text are
 * also what a worker's ops listener (ops_server.c) answers.
 */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/mem.h"
#include "http/assets.h"
#include "http/http_internal.h"
#include "metrics.h"

#define DOCS_CSP                                                                                   \
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "                 \
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

static enum MHD_Result ops__static(http_req *r, const void *data, size_t len, const char *ctype,
                                   const char *csp)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(resp, "Content-Type", ctype);
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    MHD_add_response_header(resp, "X-Request-Id", r->id);
    http__security_headers(resp, csp);
    return http__queue(r, 200, resp);
}

enum MHD_Result api_ops_healthz(http_req *r)
{
    fp_err rc = svc_health(r->srv->svc);
    if (rc != FP_OK)
        return http__error(r, FP_UNAVAILABLE, "storage is not answering", NULL);
    return http__json(r, 200, json_pack("{s:s,s:s}", "status", "ok", "version", FP_VERSION));
}

static fp_err ops__ping_ratelimit(void *ud)
{
    http_server *srv = ud;
    return srv->rlb->ping(srv->rl);
}

static const char *ops__check_message(const svc_check *c)
{
    if (c->busy)
        return "the previous check has not answered yet";
    if (c->timed_out)
        return "no answer within the readiness bound";
    if (c->is_queue)
        return c->queue.publisher_up ? "no consumer is connected to the broker"
                                     : "no connection to the broker";
    return "not answering";
}

json_t *http__ready_body(service *svc, http_server *srv, int *ready)
{
    svc_ready_extra extra[1];
    size_t nextra = 0;
    if (srv && srv->rl)
        extra[nextra++] = (svc_ready_extra){"ratelimit", srv->rlb->name, 0, ops__ping_ratelimit,
                                            srv};
    svc_ready_report rep;
    svc_ready(svc, extra, nextra, &rep);
    json_t *checks = json_object();
    for (size_t i = 0; i < rep.n; i++) {
        const svc_check *c = &rep.checks[i];
        json_t *o = json_pack("{s:s,s:s,s:b,s:f}", "status", c->status == FP_OK ? "up" : "down",
                              "backend", c->backend, "required", c->required, "ms",
                              (double)(long long)(c->ms * 1000.0 + 0.5) / 1000.0);
        if (c->status != FP_OK) {
            json_object_set_new(o, "error", json_string(fp_err_code(c->status)));
            json_object_set_new(o, "message", json_string(ops__check_message(c)));
        }
        if (c->is_queue) {
            json_object_set_new(o, "publisher",
                                json_string(c->queue.publisher_up ? "up" : "down"));
            json_object_set_new(o, "consumers", json_integer(c->queue.consumers));
            json_object_set_new(o, "consumers_up", json_integer(c->queue.consumers_up));
        }
        json_object_set_new(checks, c->name, o);
    }
    *ready = rep.ready;
    return json_pack("{s:s,s:s,s:o}", "status", rep.ready ? "ready" : "not_ready", "version",
                     FP_VERSION, "checks", checks);
}

enum MHD_Result api_ops_readyz(http_req *r)
{
    int ready = 0;
    json_t *body = http__ready_body(r->srv->svc, r->srv, &ready);
    struct MHD_Response *resp = http__json_response(r, body); /* no-store */
    if (!ready)
        MHD_add_response_header(resp, "Retry-After", HTTP_READY_RETRY_AFTER);
    return http__queue(r, ready ? 200 : 503, resp);
}

/* The limits of docs/operations.md "Limits and abuse": connections, rate
 * limits, sessions. */
static fp_err ops__limits_metrics(http_server *srv, fp_buf *out)
{
    svc_stats st;
    svc_get_stats(srv->svc, &st);
    guard_stats gs;
    guard_get_stats(srv->guard, &gs);
    size_t nsess = 0, sess_bytes = 0;
    sessions_stats(srv->sessions, &nsess, &sess_bytes);
    fp_err rc = fp_buf_appendf(
        out,
        "# HELP filmpicker_connections Open HTTP connections.\n"
        "# TYPE filmpicker_connections gauge\n"
        "filmpicker_connections %llu\n"
        "# HELP filmpicker_connections_max The connection pool (max-connections as resolved).\n"
        "# TYPE filmpicker_connections_max gauge\n"
        "filmpicker_connections_max %ld\n"
        "# HELP filmpicker_connections_refused_total Connections closed at accept: the client "
        "address held max-connections-per-address, or the pool was full.\n"
        "# TYPE filmpicker_connections_refused_total counter\n"
        "filmpicker_connections_refused_total{reason=\"per_address\"} %llu\n"
        "filmpicker_connections_refused_total{reason=\"full\"} %llu\n"
        "# HELP filmpicker_connections_cut_total Connections cut: headers or body too slow, or "
        "idle while the pool was nearly full.\n"
        "# TYPE filmpicker_connections_cut_total counter\n"
        "filmpicker_connections_cut_total{reason=\"header_timeout\"} %llu\n"
        "filmpicker_connections_cut_total{reason=\"body_timeout\"} %llu\n"
        "filmpicker_connections_cut_total{reason=\"pressure\"} %llu\n"
        "# HELP filmpicker_busy_answers_total Requests answered 503 because the pool was nearly "
        "full.\n"
        "# TYPE filmpicker_busy_answers_total counter\n"
        "filmpicker_busy_answers_total %llu\n"
        "# HELP filmpicker_streams_refused_total Event streams refused: the address held "
        "max-streams-per-address.\n"
        "# TYPE filmpicker_streams_refused_total counter\n"
        "filmpicker_streams_refused_total %llu\n"
        "# HELP filmpicker_sessions Live group sessions.\n"
        "# TYPE filmpicker_sessions gauge\n"
        "filmpicker_sessions %zu\n"
        "# HELP filmpicker_sessions_bytes Memory the live sessions hold (documents and replay "
        "rings).\n"
        "# TYPE filmpicker_sessions_bytes gauge\n"
        "filmpicker_sessions_bytes %zu\n"
        "# HELP filmpicker_jobs_bytes Memory the lists of finished jobs hold (jobs-max-mb).\n"
        "# TYPE filmpicker_jobs_bytes gauge\n"
        "filmpicker_jobs_bytes %zu\n"
        "# HELP filmpicker_jobs_evicted_total Finished jobs dropped before job-ttl to stay "
        "within jobs-max-mb.\n"
        "# TYPE filmpicker_jobs_evicted_total counter\n"
        "filmpicker_jobs_evicted_total %llu\n"
        "# HELP filmpicker_rate_limited_total Requests refused with 429 by a rate limit, by "
        "class.\n"
        "# TYPE filmpicker_rate_limited_total counter\n",
        gs.open, srv->max_conns, gs.refused_address, gs.refused_full, gs.cut_header, gs.cut_body, gs.cut_pressure,
        gs.busy_answers, gs.sse_refused, nsess, sess_bytes, st.jobs_bytes, st.jobs_evicted);
    for (int c = 0; c < HTTP_RL_NCLASSES && rc == FP_OK; c++)
        rc = fp_buf_appendf(out, "filmpicker_rate_limited_total{class=\"%s\"} %llu\n",
                            http__rl_class_name((http_rl_class)c),
                            (unsigned long long)atomic_load(&srv->rl_refused[c]));
    return rc;
}

fp_err http__metrics_text(service *svc, http_server *srv, fp_buf *out)
{
    svc_stats st;
    svc_get_stats(svc, &st);
    metrics_gauges g = {(double)st.jobs_queued, (double)st.jobs_running,
                        (double)st.groups_active, (double)st.fetch_requests,
                        (double)st.fetch_retries, (double)st.db_pool_in_use,
                        (double)st.db_pool_open, (double)st.db_pool_max};
    metrics_scaled m = {
        .queue = st.queue,
        .cache_hits = st.cache_hits,
        .cache_misses = st.cache_misses,
        .lease_waits = st.lease_waits,
        .fetches_skipped = st.fetches_skipped,
        .host_limit_waits = st.host_limit_waits,
        .bus_failures = st.bus_failures,
    };
    fp_err rc = metrics_render(out, &g);
    if (rc == FP_OK)
        rc = metrics_render_scaled(out, &m);
    if (rc == FP_OK && srv)
        rc = ops__limits_metrics(srv, out);
    return rc;
}

enum MHD_Result api_ops_metrics(http_req *r)
{
    fp_buf out;
    fp_buf_init(&out, 4u * 1024u * 1024u);
    fp_err rc = http__metrics_text(r->srv->svc, r->srv, &out);
    if (rc != FP_OK) {
        fp_buf_free(&out);
        return http__error(r, rc, NULL, NULL);
    }
    size_t len = 0;
    char *text = fp_buf_steal(&out, &len);
    struct MHD_Response *resp = MHD_create_response_from_buffer_with_free_callback(len, text,
                                                                                   fp_free);
    MHD_add_response_header(resp, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "X-Request-Id", r->id);
    return http__queue(r, 200, resp);
}

enum MHD_Result api_ops_openapi(http_req *r)
{
    return ops__static(r, asset_openapi_json, asset_openapi_json_len, "application/json", NULL);
}

enum MHD_Result api_ops_docs(http_req *r)
{
    return ops__static(r, asset_docs_index_html, asset_docs_index_html_len,
                       "text/html; charset=utf-8", DOCS_CSP);
}

static const char *ops__content_type(const char *name)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".png", "image/png"},
        {".map", "application/json"},
        {".html", "text/html; charset=utf-8"},
    };
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].type;
    return NULL;
}

enum MHD_Result api_ops_docs_file(http_req *r)
{
    const char *name = r->params[0];
    if (strcmp(name, "init.js") == 0)
        return ops__static(r, asset_docs_init_js, asset_docs_init_js_len,
                           "text/javascript; charset=utf-8", DOCS_CSP);
    /* Only plain file names of known types: no traversal, no hidden files. */
    const char *ctype = ops__content_type(name);
    if (!ctype || name[0] == '.' || strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789-_.") !=
                                        strlen(name))
        return http__error(r, FP_NOT_FOUND, "no such documentation file", NULL);
    char *path = fp_printf("%s/%s", r->srv->cfg->static_dir, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    fp_free(path);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0)
            close(fd);
        return http__error(r, FP_NOT_FOUND,
                           "no such documentation file (is swagger-ui-dist installed? run "
                           "scripts/install-deps.sh)",
                           NULL);
    }
    struct MHD_Response *resp = MHD_create_response_from_fd((uint64_t)st.st_size, fd);
    MHD_add_response_header(resp, "Content-Type", ctype);
    MHD_add_response_header(resp, "Cache-Control", "public, max-age=86400");
    MHD_add_response_header(resp, "X-Request-Id", r->id);
    http__security_headers(resp, DOCS_CSP);
    return http__queue(r, 200, resp);
}

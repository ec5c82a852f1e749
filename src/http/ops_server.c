/*
 * ops_server.c - the ops listener of a process without the API server
 * (`filmpicker worker --metrics-listen HOST:PORT`): GET (or HEAD) /metrics,
 * /readyz and /healthz only, answered as the API server answers them
 * (api_ops.c renders both), so Prometheus scrapes workers and an
 * orchestrator probes them like API instances.
 *
 * A small libmicrohttpd daemon: a thread per connection (a /readyz that
 * waits up to a second for a slow dependency holds no other request), at
 * most OPS_MAX_CONNS connections, idle ones closed after OPS_TIMEOUT_S.
 * It reads no request body and sends no cookie; everything else is 404 or
 * 405 with the API's JSON error body.
 */
#include <arpa/inet.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "http/http_internal.h"

#define OPS_MAX_CONNS 16
#define OPS_TIMEOUT_S 10

struct http_ops {
    service *svc;
    struct MHD_Daemon *daemon;
    int port;
};

/* Sends text (freed by release once sent). */
static enum MHD_Result ops__send(struct MHD_Connection *conn, int status, char *text, size_t len,
                                 void (*release)(void *), const char *ctype, int retry)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer_with_free_callback(len, text, release);
    MHD_add_response_header(resp, "Content-Type", ctype);
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    unsigned char rid[8];
    char id[17];
    randombytes_buf(rid, sizeof rid);
    sodium_bin2hex(id, sizeof id, rid, sizeof rid);
    MHD_add_response_header(resp, "X-Request-Id", id);
    http__security_headers(resp, NULL);
    if (retry)
        MHD_add_response_header(resp, "Retry-After", HTTP_READY_RETRY_AFTER);
    enum MHD_Result res = MHD_queue_response(conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return res;
}

static enum MHD_Result ops__json(struct MHD_Connection *conn, int status, json_t *body,
                                 int retry)
{
    char *text = json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(12));
    json_decref(body);
    if (!text)
        return MHD_NO;
    return ops__send(conn, status, text, strlen(text), free, "application/json", retry);
}

static enum MHD_Result ops__access(void *cls, struct MHD_Connection *conn, const char *url,
                                   const char *method, const char *version,
                                   const char *upload_data, size_t *upload_data_size,
                                   void **con_cls)
{
    (void)version;
    (void)upload_data;
    http_ops *o = cls;
    if (*con_cls == NULL) { /* headers only so far: answer once the (ignored) body is in */
        *con_cls = o;
        return MHD_YES;
    }
    if (*upload_data_size) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    int known = strcmp(url, "/metrics") == 0 || strcmp(url, "/readyz") == 0 ||
                strcmp(url, "/healthz") == 0;
    if (!known)
        return ops__json(conn, 404, http__error_body(FP_NOT_FOUND, "no such route"), 0);
    if (!get)
        return ops__json(conn, 405, http__error_body(FP_METHOD, NULL), 0);
    if (strcmp(url, "/readyz") == 0) {
        int ready = 0;
        json_t *body = http__ready_body(o->svc, NULL, &ready);
        return ops__json(conn, ready ? 200 : 503, body, !ready);
    }
    if (strcmp(url, "/healthz") == 0) {
        if (svc_health(o->svc) != FP_OK)
            return ops__json(conn, 503,
                             http__error_body(FP_UNAVAILABLE, "storage is not answering"), 1);
        return ops__json(conn, 200, json_pack("{s:s,s:s}", "status", "ok", "version", FP_VERSION),
                         0);
    }
    fp_buf out;
    fp_buf_init(&out, 4u * 1024u * 1024u);
    fp_err rc = http__metrics_text(o->svc, NULL, &out);
    if (rc != FP_OK) {
        fp_buf_free(&out);
        return ops__json(conn, 500, http__error_body(rc, NULL), 0);
    }
    size_t len = 0;
    char *text = fp_buf_steal(&out, &len);
    return ops__send(conn, 200, text, len, fp_free, "text/plain; version=0.0.4; charset=utf-8", 0);
}

fp_err http_ops_start(const char *listen, service *svc, http_ops **out)
{
    *out = NULL;
    struct sockaddr_in sa;
    if (http__parse_listen(listen, &sa) != FP_OK) {
        fp_log(FP_LOG_ERROR, "bad_metrics_listen_address", "{s:s}", "metrics_listen",
               listen ? listen : "");
        return FP_INVALID;
    }
    http_ops *o = fp_calloc(1, sizeof *o);
    o->svc = svc;
    o->daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL, 0, NULL,
        NULL, ops__access, o, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)OPS_MAX_CONNS, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)OPS_TIMEOUT_S, MHD_OPTION_END);
    if (!o->daemon) {
        fp_log(FP_LOG_ERROR, "metrics_listen_failed", "{s:s}", "metrics_listen", listen);
        fp_free(o);
        return FP_IO;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(o->daemon, MHD_DAEMON_INFO_BIND_PORT);
    o->port = info ? info->port : ntohs(sa.sin_port);
    *out = o;
    return FP_OK;
}

int http_ops_port(const http_ops *o)
{
    return o->port;
}

void http_ops_stop(http_ops **op)
{
    http_ops *o = *op;
    if (!o)
        return;
    MHD_stop_daemon(o->daemon); /* joins the connection threads */
    fp_free(o);
    *op = NULL;
}

/*
 * http.h - the HTTP API server (libmicrohttpd, a thread pool with epoll).
 *
 * Routes: the first version's POST /api/scrape/ and POST /api/watchlist/remove,
 * the versioned /api/v1/... API, /healthz, /readyz, /metrics, /openapi.json and /docs
 * (see api/openapi.json). No request thread ever waits on the network: a
 * request that needs a fetch is suspended and resumed by the job's
 * completion or its deadline.
 */
#ifndef FP_HTTP_H
#define FP_HTTP_H

#include "config.h"
#include "core/error.h"
#include "app/service.h"
#include "session.h"

typedef struct http_server http_server;

/* Raises the soft limit on open files to the hard one (at most 2^20), so
 * the connection pool can be sized from it. Call once at start. */
void http_raise_fd_limit(void);
/* Listens on cfg->listen (host:port, port 0 picks a free one). */
fp_err http_server_start(const fp_config *cfg, service *svc, sessions *sess,
                         http_server **out) FP_WARN_UNUSED;
/* The port actually bound. */
int http_server_port(const http_server *h);
/* Graceful stop: no new connections, waits (bounded by grace_ms) for running
 * requests to be answered, then closes. */
void http_server_stop(http_server **h, long grace_ms);

/* The ops listener of a process without the API server (filmpicker worker,
 * --metrics-listen): GET /metrics, /readyz and /healthz on listen
 * (host:port, port 0 picks a free one), answered as http_server answers
 * them, without the connection and rate-limit parts. */
typedef struct http_ops http_ops;
fp_err http_ops_start(const char *listen, service *svc, http_ops **out) FP_WARN_UNUSED;
int http_ops_port(const http_ops *o);
/* Closes it, waiting for the requests being answered. */
void http_ops_stop(http_ops **o);

#endif

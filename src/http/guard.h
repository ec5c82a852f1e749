/*
 * guard.h - connection limits for the HTTP server: what one client address
 * may hold, how long a request may take to arrive, and what happens when the
 * server is full. libmicrohttpd does the HTTP; the guard sits on its
 * connection callbacks (accept policy, connection started/closed) and on the
 * request phases server.c reports.
 *
 * Limits (every number is a setting, docs/operations.md "Limits and abuse"):
 *   - max_conns: the whole pool (libmicrohttpd's connection limit), sized by
 *     server.c from the file descriptor limit. Beyond it a connection is
 *     closed at accept.
 *   - reserve: of the pool, kept for /healthz and /metrics. With more than
 *     max_conns - reserve connections open, every other request is answered
 *     503 with Retry-After and the connection is closed, and connections
 *     that are idle or still sending headers are cut at once, oldest first,
 *     until half the reserve is free again: the newest connection (an
 *     operator's probe) survives, so one can always get in.
 *   - per_address: connections one client address (an IPv6 /64) may hold;
 *     the next one is closed at accept. Trusted proxies are exempt (they
 *     carry many clients; nginx limits those itself).
 *   - header_ms, body_ms: a request's headers must arrive within header_ms
 *     of the connection opening (or of the previous answer on a kept-alive
 *     connection, after idle_ms); its body within body_ms of the headers.
 *     A slow sender is cut (its connection shut down; libmicrohttpd closes
 *     it). Sending a byte now and then does not reset these clocks, which is
 *     what makes slowloris fail.
 *   - sse_per_address: event streams one address may hold open.
 *
 * A thread wakes every GUARD_TICK_MS to cut connections past their deadline.
 * It only calls shutdown(2) on a socket libmicrohttpd still owns (under the
 * guard's lock, which the close notification also takes), never close(2).
 */
#ifndef FP_HTTP_GUARD_H
#define FP_HTTP_GUARD_H

#include <microhttpd.h>
#include <stddef.h>

#include "core/error.h"
#include "core/netaddr.h"

#define GUARD_TICK_MS 200
/* libmicrohttpd's connection limit is max_conns + GUARD_SLACK: room for
 * connections the guard has cut that libmicrohttpd has not closed yet. */
#define GUARD_SLACK 64

typedef struct http_guard http_guard;
typedef struct guard_conn guard_conn;

typedef struct guard_options {
    long max_conns;
    long reserve;
    long per_address;     /* 0: no per-address limit */
    long header_ms;
    long body_ms;
    long idle_ms;         /* kept-alive connection waiting for its next request */
    long sse_per_address; /* 0: no limit */
    const fp_netlist *trusted; /* exempt from per_address (may be NULL) */
} guard_options;

typedef struct guard_stats {
    unsigned long long open;              /* connections now */
    unsigned long long refused_address;   /* closed at accept: per-address limit */
    unsigned long long refused_full;      /* closed at accept: the pool was full */
    unsigned long long cut_header;        /* headers too slow */
    unsigned long long cut_body;          /* body too slow */
    unsigned long long cut_pressure;      /* idle or slow, cut because the pool was nearly full */
    unsigned long long busy_answers;      /* 503 because the pool was nearly full */
    unsigned long long sse_refused;       /* event stream over the per-address limit */
} guard_stats;

fp_err guard_new(const guard_options *opt, http_guard **out) FP_WARN_UNUSED;
void guard_free(http_guard **g);

/* libmicrohttpd's accept policy: MHD_NO when the address is over its limit. */
enum MHD_Result guard_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen);
/* libmicrohttpd's connection notification (MHD_OPTION_NOTIFY_CONNECTION). */
void guard_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                  enum MHD_ConnectionNotificationCode code);

/* The guard's record of conn (NULL if it has none). */
guard_conn *guard_conn_of(struct MHD_Connection *conn);
/* Request phases, from the access handler. */
void guard_headers_done(guard_conn *c, int expects_body);
void guard_request_running(guard_conn *c);
void guard_request_done(guard_conn *c);
/* The peer address of the connection. */
const fp_addr *guard_conn_addr(const guard_conn *c);
/* 1 when the pool is past max_conns - reserve: answer 503 unless the
 * request is for /healthz or /metrics. */
int guard_busy(http_guard *g);
void guard_count_busy_answer(http_guard *g);

/* An event stream for the client address addr (the peer, or the address a
 * trusted proxy forwarded): a token to give back with guard_sse_leave when
 * the stream ends, or NULL when addr already holds sse_per_address. */
typedef struct guard_sse guard_sse;
guard_sse *guard_sse_enter(http_guard *g, const fp_addr *addr);
void guard_sse_leave(http_guard *g, guard_sse *token);

/* An upload body being received for addr: a token for guard_upload_leave,
 * or NULL when addr already sends GUARD_UPLOADS_PER_ADDRESS. */
#define GUARD_UPLOADS_PER_ADDRESS 4
guard_sse *guard_upload_enter(http_guard *g, const fp_addr *addr);
void guard_upload_leave(http_guard *g, guard_sse *token);

void guard_get_stats(http_guard *g, guard_stats *out);

#endif

/*
 * guard.c - per-address counts, request deadlines and the pressure valve
 * (guard.h).
 *
 * Every connection has a guard_conn from "started" to "closed", in one
 * doubly linked list (oldest first) under the guard's mutex, and refers to
 * its address's entry in a small hash table (entries live while they count
 * something, so the table never holds more than the pool). The request path
 * touches only atomics on its own guard_conn: phase changes are two stores.
 */
#include "http/guard.h"

#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "core/log.h"
#include "core/mem.h"

#define GUARD_BUCKETS 1024
#define GUARD_FEW 2 /* under pressure, addresses holding more are cut first */

typedef enum { GUARD_WAIT_HEADERS, GUARD_WAIT_BODY, GUARD_RUNNING } guard_phase;

typedef struct guard_addr {
    struct guard_addr *next;
    fp_addr key;
    long conns;
    long streams;
    long uploads;
} guard_addr;

struct guard_conn {
    guard_conn *prev, *next;
    http_guard *g;
    guard_addr *entry;
    fp_addr peer;
    int fd;
    int exempt;
    atomic_int phase;
    atomic_llong phase_ms;    /* when the phase began */
    atomic_llong deadline_ms; /* 0: none */
    int cut;                  /* shutdown(2) already called (under mu) */
};

struct http_guard {
    guard_options opt;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stopping;
    pthread_t thread;
    int thread_started;
    guard_conn *head, *tail;
    guard_addr *buckets[GUARD_BUCKETS];
    unsigned char hkey[crypto_shorthash_KEYBYTES];
    atomic_llong open;
    atomic_long cut_pending; /* cut, not yet closed by libmicrohttpd */
    int pressure;     /* the valve should run now (under mu) */
    atomic_ullong refused_address, refused_full, cut_header, cut_body, cut_pressure, busy_answers,
        sse_refused;
};

static long long guard__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t guard__bucket(const http_guard *g, const fp_addr *key)
{
    unsigned char h[crypto_shorthash_BYTES];
    crypto_shorthash(h, key->b, sizeof key->b, g->hkey);
    uint64_t v;
    memcpy(&v, h, sizeof v);
    return (size_t)(v % GUARD_BUCKETS);
}

/* The entry for key, created when create is set. mu held. */
static guard_addr *guard__entry(http_guard *g, const fp_addr *addr, int create)
{
    fp_addr key = fp_addr_limit_key(addr);
    size_t b = guard__bucket(g, &key);
    for (guard_addr *e = g->buckets[b]; e; e = e->next)
        if (memcmp(e->key.b, key.b, sizeof key.b) == 0)
            return e;
    if (!create)
        return NULL;
    guard_addr *e = fp_calloc(1, sizeof *e);
    e->key = key;
    e->next = g->buckets[b];
    g->buckets[b] = e;
    return e;
}

/* Drops an entry that counts nothing any more. mu held. */
static void guard__entry_release(http_guard *g, guard_addr *e)
{
    if (e->conns > 0 || e->streams > 0 || e->uploads > 0)
        return;
    size_t b = guard__bucket(g, &e->key);
    for (guard_addr **pp = &g->buckets[b]; *pp; pp = &(*pp)->next)
        if (*pp == e) {
            *pp = e->next;
            fp_free(e);
            return;
        }
}

/* Shuts the socket down once; libmicrohttpd then closes the connection. mu held. */
static void guard__cut(http_guard *g, guard_conn *c)
{
    if (c->cut)
        return;
    c->cut = 1;
    atomic_fetch_add(&g->cut_pending, 1);
    atomic_store(&c->deadline_ms, 0);
    shutdown(c->fd, SHUT_RDWR);
}

static long guard__soft(const http_guard *g)
{
    return g->opt.max_conns - g->opt.reserve;
}

static int guard__over_soft(const http_guard *g)
{
    return atomic_load(&((http_guard *)g)->open) > guard__soft(g);
}

/* The pressure valve. Past the soft limit, connections that are idle or
 * still sending their headers are cut, oldest first, until the pool is
 * back under it by half the reserve: the newest connection, which is the
 * one an operator's probe just opened, survives, and the listen backlog
 * keeps draining (libmicrohttpd stops accepting at its own limit, and a
 * probe queued behind a thousand idle sockets would wait for all of them).
 * mu held. */
static void guard__relieve(http_guard *g)
{
    long target = guard__soft(g) - (g->opt.reserve / 2 > 0 ? g->opt.reserve / 2 : 1);
    long live = (long)atomic_load(&g->open) - atomic_load(&g->cut_pending);
    /* First from addresses holding more than GUARD_FEW connections (the
     * flood), then from anyone: a lone probe is cut last. */
    for (int pass = 0; pass < 2 && live > target; pass++)
        for (guard_conn *c = g->head; c && live > target; c = c->next) {
            if (c->cut || atomic_load(&c->phase) != GUARD_WAIT_HEADERS)
                continue;
            if (pass == 0 && c->entry->conns <= GUARD_FEW)
                continue;
            atomic_fetch_add(&g->cut_pressure, 1);
            guard__cut(g, c);
            live--;
        }
}

/* Connections past their header or body deadline are cut. mu held. */
static void guard__deadlines(http_guard *g, long long now)
{
    for (guard_conn *c = g->head; c; c = c->next) {
        if (c->cut)
            continue;
        long long dl = atomic_load(&c->deadline_ms);
        if (dl > 0 && now >= dl) {
            if (atomic_load(&c->phase) == GUARD_WAIT_BODY)
                atomic_fetch_add(&g->cut_body, 1);
            else
                atomic_fetch_add(&g->cut_header, 1);
            guard__cut(g, c);
        }
    }
}

static void *guard__thread(void *arg)
{
    http_guard *g = arg;
    long long last_scan = 0;
    pthread_mutex_lock(&g->mu);
    while (!g->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += GUARD_TICK_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        if (!g->pressure)
            pthread_cond_timedwait(&g->cv, &g->mu, &ts);
        if (g->stopping)
            break;
        int pressure = g->pressure;
        g->pressure = 0;
        long long now = guard__now_ms();
        /* Deadlines at least every tick, pressure or not (a steady stream
         * of new connections must not keep slow ones alive). */
        if (now - last_scan >= GUARD_TICK_MS) {
            guard__deadlines(g, now);
            last_scan = now;
        }
        if (pressure || guard__over_soft(g))
            guard__relieve(g);
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

fp_err guard_new(const guard_options *opt, http_guard **out)
{
    *out = NULL;
    if (opt->max_conns < 1 || opt->reserve < 0 || opt->reserve >= opt->max_conns)
        return FP_INVALID;
    http_guard *g = fp_calloc(1, sizeof *g);
    g->opt = *opt;
    randombytes_buf(g->hkey, sizeof g->hkey);
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    if (pthread_create(&g->thread, NULL, guard__thread, g) != 0) {
        guard_free(&g);
        return FP_INTERNAL;
    }
    g->thread_started = 1;
    *out = g;
    return FP_OK;
}

void guard_free(http_guard **gp)
{
    http_guard *g = *gp;
    if (!g)
        return;
    pthread_mutex_lock(&g->mu);
    g->stopping = 1;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
    if (g->thread_started)
        pthread_join(g->thread, NULL);
    /* libmicrohttpd has closed every connection before this (closed
     * notifications freed them); what is left are streams' entries. */
    for (size_t b = 0; b < GUARD_BUCKETS; b++)
        while (g->buckets[b]) {
            guard_addr *e = g->buckets[b];
            g->buckets[b] = e->next;
            fp_free(e);
        }
    while (g->head) {
        guard_conn *c = g->head;
        g->head = c->next;
        fp_free(c);
    }
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
    fp_free(g);
    *gp = NULL;
}

enum MHD_Result guard_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
    (void)addrlen;
    http_guard *g = cls;
    /* Past max_conns the valve (guard__relieve) is already cutting the
     * oldest idle connections; a new one is still taken, so that an
     * operator's probe gets in. Connections already cut do not count (they
     * are closing; should they fill libmicrohttpd's own limit,
     * max_conns + GUARD_SLACK, it waits a moment before accepting more).
     * Only when that many are live is a connection refused (closed). */
    if (atomic_load(&g->open) - atomic_load(&g->cut_pending) >=
        g->opt.max_conns + GUARD_SLACK - 1) {
        atomic_fetch_add(&g->refused_full, 1);
        return MHD_NO;
    }
    if (g->opt.per_address <= 0)
        return MHD_YES;
    fp_addr a;
    if (fp_addr_from_sockaddr(addr, &a) != FP_OK)
        return MHD_YES;
    if (fp_netlist_match(g->opt.trusted, &a))
        return MHD_YES;
    pthread_mutex_lock(&g->mu);
    guard_addr *e = guard__entry(g, &a, 0);
    int over = e && e->conns >= g->opt.per_address;
    pthread_mutex_unlock(&g->mu);
    if (over)
        atomic_fetch_add(&g->refused_address, 1);
    return over ? MHD_NO : MHD_YES;
}

static void guard__started(http_guard *g, struct MHD_Connection *conn, void **socket_context)
{
    guard_conn *c = fp_calloc(1, sizeof *c);
    c->g = g;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || fp_addr_from_sockaddr(ci->client_addr, &c->peer) != FP_OK)
        memset(&c->peer, 0, sizeof c->peer);
    ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    c->fd = ci ? ci->connect_fd : -1;
    c->exempt = fp_netlist_match(g->opt.trusted, &c->peer);
    long long now = guard__now_ms();
    atomic_store(&c->phase, GUARD_WAIT_HEADERS);
    atomic_store(&c->phase_ms, now);
    atomic_store(&c->deadline_ms, g->opt.header_ms > 0 ? now + g->opt.header_ms : 0);
    pthread_mutex_lock(&g->mu);
    c->entry = guard__entry(g, &c->peer, 1);
    c->entry->conns++;
    c->prev = g->tail;
    if (g->tail)
        g->tail->next = c;
    else
        g->head = c;
    g->tail = c;
    atomic_fetch_add(&g->open, 1);
    /* The accept policy looked before this connection was counted; two
     * threads accepting at once can both pass it. Settle it here. */
    if (!c->exempt && g->opt.per_address > 0 && c->entry->conns > g->opt.per_address &&
        c->fd >= 0) {
        atomic_fetch_add(&g->refused_address, 1);
        guard__cut(g, c);
    }
    if (guard__over_soft(g) && !g->pressure) {
        g->pressure = 1;
        pthread_cond_signal(&g->cv);
    }
    pthread_mutex_unlock(&g->mu);
    *socket_context = c;
}

static void guard__closed(http_guard *g, void **socket_context)
{
    guard_conn *c = *socket_context;
    if (!c)
        return;
    pthread_mutex_lock(&g->mu);
    if (c->prev)
        c->prev->next = c->next;
    else
        g->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        g->tail = c->prev;
    c->entry->conns--;
    guard__entry_release(g, c->entry);
    if (c->cut)
        atomic_fetch_sub(&g->cut_pending, 1);
    atomic_fetch_sub(&g->open, 1);
    pthread_mutex_unlock(&g->mu);
    fp_free(c);
    *socket_context = NULL;
}

void guard_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                  enum MHD_ConnectionNotificationCode code)
{
    http_guard *g = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED)
        guard__started(g, conn, socket_context);
    else if (code == MHD_CONNECTION_NOTIFY_CLOSED)
        guard__closed(g, socket_context);
}

guard_conn *guard_conn_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? (guard_conn *)ci->socket_context : NULL;
}

static void guard__phase(guard_conn *c, guard_phase phase, long limit_ms)
{
    if (!c)
        return;
    long long now = guard__now_ms();
    atomic_store(&c->phase, (int)phase);
    atomic_store(&c->phase_ms, now);
    atomic_store(&c->deadline_ms, limit_ms > 0 ? now + limit_ms : 0);
}

void guard_headers_done(guard_conn *c, int expects_body)
{
    if (!c)
        return;
    if (expects_body)
        guard__phase(c, GUARD_WAIT_BODY, c->g->opt.body_ms);
    else
        guard__phase(c, GUARD_RUNNING, 0);
}

void guard_request_running(guard_conn *c)
{
    guard__phase(c, GUARD_RUNNING, 0);
}

void guard_request_done(guard_conn *c)
{
    if (!c)
        return;
    long idle = c->g->opt.idle_ms, hdr = c->g->opt.header_ms;
    guard__phase(c, GUARD_WAIT_HEADERS, idle > 0 || hdr > 0 ? idle + hdr : 0);
}

const fp_addr *guard_conn_addr(const guard_conn *c)
{
    return c ? &c->peer : NULL;
}

int guard_busy(http_guard *g)
{
    return g && guard__over_soft(g);
}

void guard_count_busy_answer(http_guard *g)
{
    if (g)
        atomic_fetch_add(&g->busy_answers, 1);
}

guard_sse *guard_sse_enter(http_guard *g, const fp_addr *addr)
{
    if (!g || !addr)
        return NULL;
    pthread_mutex_lock(&g->mu);
    guard_addr *e = guard__entry(g, addr, 1);
    if (g->opt.sse_per_address > 0 && e->streams >= g->opt.sse_per_address) {
        guard__entry_release(g, e);
        pthread_mutex_unlock(&g->mu);
        atomic_fetch_add(&g->sse_refused, 1);
        return NULL;
    }
    e->streams++;
    pthread_mutex_unlock(&g->mu);
    return (guard_sse *)e;
}

void guard_sse_leave(http_guard *g, guard_sse *token)
{
    if (!g || !token)
        return;
    guard_addr *e = (guard_addr *)token;
    pthread_mutex_lock(&g->mu);
    e->streams--;
    guard__entry_release(g, e);
    pthread_mutex_unlock(&g->mu);
}

guard_sse *guard_upload_enter(http_guard *g, const fp_addr *addr)
{
    if (!g || !addr)
        return NULL;
    pthread_mutex_lock(&g->mu);
    guard_addr *e = guard__entry(g, addr, 1);
    if (e->uploads >= GUARD_UPLOADS_PER_ADDRESS) {
        guard__entry_release(g, e);
        pthread_mutex_unlock(&g->mu);
        return NULL;
    }
    e->uploads++;
    pthread_mutex_unlock(&g->mu);
    return (guard_sse *)e;
}

void guard_upload_leave(http_guard *g, guard_sse *token)
{
    if (!g || !token)
        return;
    guard_addr *e = (guard_addr *)token;
    pthread_mutex_lock(&g->mu);
    e->uploads--;
    guard__entry_release(g, e);
    pthread_mutex_unlock(&g->mu);
}

void guard_get_stats(http_guard *g, guard_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!g)
        return;
    long long open = atomic_load(&g->open);
    out->open = open > 0 ? (unsigned long long)open : 0;
    out->refused_address = atomic_load(&g->refused_address);
    out->refused_full = atomic_load(&g->refused_full);
    out->cut_header = atomic_load(&g->cut_header);
    out->cut_body = atomic_load(&g->cut_body);
    out->cut_pressure = atomic_load(&g->cut_pressure);
    out->busy_answers = atomic_load(&g->busy_answers);
    out->sse_refused = atomic_load(&g->sse_refused);
}

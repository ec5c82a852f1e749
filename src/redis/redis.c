/*
 * redis.c - the shared Redis client: URL (libcurl's URL API), a bounded
 * pool of blocking hiredis contexts, scripts by SHA1, and failures mapped
 * to fp_err. The contract is in redis.h.
 *
 * The pool keeps idle contexts in a stack under one mutex; a context is
 * checked out by one thread, used without the lock, and given back (or
 * freed, when it broke or the stack is full). Connecting happens outside
 * the lock with the slot already counted, so a slow connect never holds up
 * other threads. Whether the server is up is tracked only to log the
 * transitions ("redis_unavailable" once, "redis_available" when it is back),
 * not one line per failed call.
 */
#include "redis/redis.h"

#include <curl/curl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/log.h"
#include "core/mem.h"

#define REDIS_DEFAULT_PORT 6379
#define REDIS_SCRIPTS_MAX 16

typedef struct redis__known {
    const redis_script *s;
    char sha[41];
} redis__known;

struct redis_pool {
    char *host;
    int port;
    char *user; /* NULL: AUTH password only (or no AUTH) */
    char *pass; /* NULL: no AUTH */
    long db;
    long connect_ms, timeout_ms;
    long size, blocking_max; /* connections: ordinary, blocking */

    pthread_mutex_t mu;
    pthread_cond_t cv;
    redisContext **idle;
    long nidle;
    long busy, busy_blocking;
    long long down_until_ms; /* monotonic: fail fast until then */
    int up;                  /* -1 unknown, 0 down, 1 up */
    redis__known scripts[REDIS_SCRIPTS_MAX];
    int nscripts;
};

static long long redis__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct timeval redis__tv(long ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    return tv;
}

/* ---- arguments ----------------------------------------------------------- */

void redis_args_init(redis_args *a)
{
    a->n = 0;
    a->overflow = 0;
    a->used = 0;
}

void redis_arg(redis_args *a, const void *p, size_t len)
{
    if (a->n >= REDIS_ARGS_MAX) {
        a->overflow = 1;
        return;
    }
    a->v[a->n] = len ? p : "";
    a->len[a->n] = len;
    a->n++;
}

/* Copies prefix + bytes into the scratch area as one argument. */
static void redis__arg_copy(redis_args *a, const char *prefix, const void *p, size_t len)
{
    size_t plen = prefix ? strlen(prefix) : 0;
    if (a->n >= REDIS_ARGS_MAX || plen + len > REDIS_SCRATCH - a->used) {
        a->overflow = 1;
        return;
    }
    char *dst = a->scratch + a->used;
    if (plen)
        memcpy(dst, prefix, plen);
    if (len)
        memcpy(dst + plen, p, len);
    a->used += plen + len;
    redis_arg(a, dst, plen + len);
}

void redis_arg_str(redis_args *a, const char *s)
{
    redis__arg_copy(a, NULL, s, strlen(s));
}

void redis_arg_key(redis_args *a, const char *prefix, const void *p, size_t len)
{
    redis__arg_copy(a, prefix, p, len);
}

void redis_arg_ll(redis_args *a, long long v)
{
    char num[24];
    int n = snprintf(num, sizeof num, "%lld", v);
    redis__arg_copy(a, NULL, num, (size_t)n);
}

void redis_arg_dbl(redis_args *a, double v)
{
    char num[40];
    int n = snprintf(num, sizeof num, "%.17g", v);
    redis__arg_copy(a, NULL, num, (size_t)n);
}

/* ---- URL ----------------------------------------------------------------- */

int redis_accepts(const char *url)
{
    return url && (strncasecmp(url, "redis://", 8) == 0 || strncasecmp(url, "rediss://", 9) == 0);
}

/* A decimal in [lo, hi] spanning exactly len bytes of s. */
static int redis__num(const char *s, size_t len, long lo, long hi, long *out)
{
    if (len == 0 || len > 12)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (end != s + len || v < lo || v > hi)
        return 0;
    *out = v;
    return 1;
}

/* The query's options: "name=value&...". */
static fp_err redis__options(redis_pool *p, const char *q)
{
    const struct {
        const char *name;
        long lo, hi;
        long *field;
    } opts[] = {
        {"timeout-ms", 10, 600000, &p->timeout_ms},
        {"connect-timeout-ms", 10, 600000, &p->connect_ms},
        {"pool-size", 1, 1024, &p->size},
        {"blocking-max", 1, 4096, &p->blocking_max},
    };
    while (*q) {
        size_t len = strcspn(q, "&");
        const char *eq = memchr(q, '=', len);
        size_t i = 0;
        for (; eq && i < sizeof opts / sizeof opts[0]; i++) {
            size_t nlen = strlen(opts[i].name);
            if ((size_t)(eq - q) == nlen && strncmp(q, opts[i].name, nlen) == 0 &&
                redis__num(eq + 1, len - nlen - 1, opts[i].lo, opts[i].hi, opts[i].field))
                break;
        }
        if (!eq || i == sizeof opts / sizeof opts[0]) {
            fp_log(FP_LOG_ERROR, "redis_bad_url", "{s:s,s:s%}", "reason",
                   "unknown option or value out of range", "option", q, len);
            return FP_INVALID;
        }
        q += len + (q[len] == '&');
    }
    return FP_OK;
}

static fp_err redis__parse(redis_pool *p, const char *url)
{
    fp_err rc = FP_INVALID;
    char *scheme = NULL, *host = NULL, *port = NULL, *user = NULL, *pass = NULL;
    char *path = NULL, *query = NULL, *frag = NULL;
    const char *why = "malformed";
    CURLU *u = curl_url();
    if (!u) {
        rc = FP_NOMEM;
        goto out;
    }
    if (curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK)
        goto out;
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK)
        goto out;
    if (strcmp(scheme, "rediss") == 0) {
        fp_log(FP_LOG_ERROR, "redis_tls_unsupported", "{s:s}", "reason",
               "rediss:// needs TLS, which this build's hiredis (0.14) lacks; use redis:// "
               "on a trusted network or a TLS tunnel (stunnel, spiped)");
        why = NULL; /* said */
        goto out;
    }
    if (strcmp(scheme, "redis") != 0) {
        why = "scheme is not redis";
        goto out;
    }
    if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host[0]) {
        why = "no host";
        goto out;
    }
    size_t hlen = strlen(host);
    if (host[0] == '[' && hlen > 2 && host[hlen - 1] == ']')
        p->host = fp_strndup(host + 1, hlen - 2); /* hiredis wants a bare IPv6 */
    else
        p->host = fp_strdup(host);
    p->port = REDIS_DEFAULT_PORT;
    CURLUcode uc = curl_url_get(u, CURLUPART_PORT, &port, 0);
    if (uc == CURLUE_OK) {
        long v;
        if (!redis__num(port, strlen(port), 1, 65535, &v)) {
            why = "bad port";
            goto out;
        }
        p->port = (int)v;
    } else if (uc != CURLUE_NO_PORT) {
        goto out;
    }
    if (curl_url_get(u, CURLUPART_USER, &user, CURLU_URLDECODE) == CURLUE_OK && user[0])
        p->user = fp_strdup(user);
    if (curl_url_get(u, CURLUPART_PASSWORD, &pass, CURLU_URLDECODE) == CURLUE_OK && pass[0])
        p->pass = fp_strdup(pass);
    if (p->user && !p->pass) {
        why = "a user needs a password";
        goto out;
    }
    p->db = 0;
    if (curl_url_get(u, CURLUPART_PATH, &path, 0) == CURLUE_OK && path[0] && strcmp(path, "/")) {
        if (path[0] != '/' || !redis__num(path + 1, strlen(path + 1), 0, 1000000, &p->db)) {
            why = "the path is not a database number";
            goto out;
        }
    }
    if (curl_url_get(u, CURLUPART_FRAGMENT, &frag, 0) == CURLUE_OK) {
        why = "a fragment";
        goto out;
    }
    why = NULL; /* redis__options says what it refuses */
    rc = curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_OK ? redis__options(p, query)
                                                                    : FP_OK;
out:
    if (rc != FP_OK && why)
        fp_log(FP_LOG_ERROR, "redis_bad_url", "{s:s}", "reason", why);
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(user);
    curl_free(pass);
    curl_free(path);
    curl_free(query);
    curl_free(frag);
    curl_url_cleanup(u);
    return rc;
}

/* ---- errors -------------------------------------------------------------- */

fp_err redis_reply_err(const redisReply *r)
{
    static const char *const away[] = {"OOM",       "LOADING", "BUSY",     "MASTERDOWN",
                                        "READONLY",  "NOAUTH",  "WRONGPASS", "TRYAGAIN",
                                        "CLUSTERDOWN", "NOREPLICAS", "MISCONF"};
    if (!r)
        return FP_UNAVAILABLE;
    if (r->type != REDIS_REPLY_ERROR)
        return FP_OK;
    for (size_t i = 0; i < sizeof away / sizeof away[0]; i++) {
        size_t n = strlen(away[i]);
        if (r->len >= n && strncmp(r->str, away[i], n) == 0 &&
            (r->len == n || r->str[n] == ' '))
            return FP_UNAVAILABLE;
    }
    return FP_INTERNAL;
}

fp_err redis_unexpected(const char *what, const redisReply *r)
{
    fp_err rc = redis_reply_err(r);
    if (rc == FP_UNAVAILABLE)
        return rc;
    if (r && r->type == REDIS_REPLY_ERROR)
        fp_log(FP_LOG_ERROR, "redis_unexpected_reply", "{s:s,s:s%}", "command", what, "error",
               r->str, r->len > 200 ? (size_t)200 : r->len);
    else
        fp_log(FP_LOG_ERROR, "redis_unexpected_reply", "{s:s,s:i}", "command", what, "type",
               r ? r->type : -1);
    return FP_INTERNAL;
}

void redis_reply_free(redisReply **r)
{
    if (*r)
        freeReplyObject(*r);
    *r = NULL;
}

/* Logs the server going away or coming back, once per transition. */
static void redis__mark(redis_pool *p, int up, const char *why)
{
    pthread_mutex_lock(&p->mu);
    int was = p->up;
    p->up = up;
    if (!up)
        p->down_until_ms = redis__now_ms() + REDIS_RETRY_MS;
    else
        p->down_until_ms = 0;
    pthread_mutex_unlock(&p->mu);
    if (was == up)
        return;
    if (!up)
        fp_log(FP_LOG_WARN, "redis_unavailable", "{s:s,s:i,s:s}", "host", p->host, "port",
               p->port, "error", why ? why : "");
    else if (was == 0)
        fp_log(FP_LOG_INFO, "redis_available", "{s:s,s:i}", "host", p->host, "port", p->port);
}

/* ---- connections ---------------------------------------------------------- */

/* Sends one setup command (AUTH, SELECT) and wants +OK. */
static fp_err redis__setup_cmd(redisContext *c, int argc, const char **argv, const char *what,
                               int *refused)
{
    redisReply *r = redisCommandArgv(c, argc, argv, NULL);
    fp_err rc = FP_OK;
    if (!r) {
        rc = FP_UNAVAILABLE;
    } else if (r->type == REDIS_REPLY_ERROR) {
        rc = redis_reply_err(r);
        if (rc != FP_UNAVAILABLE || strncmp(r->str, "WRONGPASS", 9) == 0 ||
            strncmp(r->str, "NOAUTH", 6) == 0) {
            fp_log(FP_LOG_ERROR, "redis_setup_refused", "{s:s,s:s%}", "command", what, "error",
                   r->str, r->len > 200 ? (size_t)200 : r->len);
            *refused = 1;
            rc = FP_UNAVAILABLE;
        }
    }
    if (r)
        freeReplyObject(r);
    return rc;
}

/* A new context, authenticated and on the right database, or NULL.
 * *refused is set when the server answered but refused AUTH or SELECT. */
static redisContext *redis__connect(redis_pool *p, int *refused)
{
    *refused = 0;
    redisContext *c = redisConnectWithTimeout(p->host, p->port, redis__tv(p->connect_ms));
    const char *why = "out of memory";
    if (!c || c->err) {
        if (c)
            why = c->errstr;
        goto fail;
    }
    /* The connect timeout also covers AUTH and SELECT. */
    if (redisSetTimeout(c, redis__tv(p->connect_ms)) != REDIS_OK) {
        why = "setsockopt";
        goto fail;
    }
    redisEnableKeepAlive(c);
    if (p->pass) {
        const char *argv[3] = {"AUTH", p->user ? p->user : p->pass, p->pass};
        if (redis__setup_cmd(c, p->user ? 3 : 2, argv, "AUTH", refused) != FP_OK) {
            why = c->err ? c->errstr : "AUTH refused";
            goto fail;
        }
    }
    if (p->db) {
        char db[24];
        snprintf(db, sizeof db, "%ld", p->db);
        const char *argv[2] = {"SELECT", db};
        if (redis__setup_cmd(c, 2, argv, "SELECT", refused) != FP_OK) {
            why = c->err ? c->errstr : "SELECT refused";
            goto fail;
        }
    }
    if (redisSetTimeout(c, redis__tv(p->timeout_ms)) != REDIS_OK) {
        why = "setsockopt";
        goto fail;
    }
    redis__mark(p, 1, NULL);
    return c;
fail:
    redis__mark(p, 0, why);
    if (c)
        redisFree(c);
    return NULL;
}

/* An idle socket that is readable was closed by the server (or holds
 * something nobody asked for): either way it is no use. */
static int redis__healthy(redisContext *c)
{
    if (c->err)
        return 0;
    struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
    return poll(&pfd, 1, 0) == 0;
}

/* Checks out a context for one command. */
static fp_err redis__get(redis_pool *p, int blocking, redisContext **out)
{
    *out = NULL;
    long long deadline = redis__now_ms() + p->timeout_ms;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        int room = blocking ? p->busy_blocking < p->blocking_max : p->busy < p->size;
        if (room)
            break;
        long long now = redis__now_ms();
        if (now >= deadline) {
            pthread_mutex_unlock(&p->mu);
            fp_log(FP_LOG_WARN, "redis_pool_exhausted", "{s:b}", "blocking", blocking);
            return FP_UNAVAILABLE;
        }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        long long wait_ms = deadline - now;
        ts.tv_sec += wait_ms / 1000;
        ts.tv_nsec += (wait_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&p->cv, &p->mu, &ts);
    }
    if (blocking)
        p->busy_blocking++;
    else
        p->busy++;
    redisContext *c = NULL;
    while (p->nidle > 0) {
        redisContext *cand = p->idle[--p->nidle];
        if (redis__healthy(cand)) {
            c = cand;
            break;
        }
        redisFree(cand);
    }
    int fail_fast = !c && redis__now_ms() < p->down_until_ms;
    pthread_mutex_unlock(&p->mu);
    if (!c && !fail_fast) {
        int refused;
        c = redis__connect(p, &refused);
    }
    if (!c) {
        pthread_mutex_lock(&p->mu);
        if (blocking)
            p->busy_blocking--;
        else
            p->busy--;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
        return FP_UNAVAILABLE;
    }
    *out = c;
    return FP_OK;
}

/* Gives a context back; a broken one is freed. */
static void redis__put(redis_pool *p, int blocking, redisContext *c, int broken)
{
    pthread_mutex_lock(&p->mu);
    if (blocking)
        p->busy_blocking--;
    else
        p->busy--;
    if (!broken && !c->err && p->nidle < p->size) {
        p->idle[p->nidle++] = c;
        c = NULL;
    }
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    if (c)
        redisFree(c);
}

/* Runs argv on a pooled context. */
static fp_err redis__run(redis_pool *p, long block_ms, int argc, const char **argv,
                         const size_t *lens, redisReply **out)
{
    *out = NULL;
    int blocking = block_ms > 0;
    redisContext *c = NULL;
    fp_err rc = redis__get(p, blocking, &c);
    if (rc != FP_OK)
        return rc;
    int broken = 0;
    if (blocking && redisSetTimeout(c, redis__tv(p->timeout_ms + block_ms)) != REDIS_OK)
        broken = 1;
    redisReply *r = broken ? NULL : redisCommandArgv(c, argc, argv, lens);
    if (!r) {
        broken = 1;
        redis__mark(p, 0, c->err ? c->errstr : "no reply");
    } else if (blocking && redisSetTimeout(c, redis__tv(p->timeout_ms)) != REDIS_OK) {
        broken = 1;
    }
    redis__put(p, blocking, c, broken);
    if (!r)
        return FP_UNAVAILABLE;
    *out = r;
    return redis_reply_err(r);
}

static fp_err redis__cmd(redis_pool *p, long block_ms, const redis_args *a, redisReply **out)
{
    *out = NULL;
    if (a->overflow || a->n == 0)
        return FP_INVALID;
    const char *argv[REDIS_ARGS_MAX];
    memcpy(argv, a->v, (size_t)a->n * sizeof argv[0]);
    return redis__run(p, block_ms, a->n, argv, a->len, out);
}

fp_err redis_cmd(redis_pool *p, const redis_args *a, redisReply **out)
{
    return redis__cmd(p, 0, a, out);
}

fp_err redis_cmd_blocking(redis_pool *p, long block_ms, const redis_args *a, redisReply **out)
{
    return redis__cmd(p, block_ms > 0 ? block_ms : 1, a, out);
}

fp_err redis_ping(redis_pool *p)
{
    redis_args a;
    redis_args_init(&a);
    redis_arg_str(&a, "PING");
    redisReply *r = NULL;
    fp_err rc = redis_cmd(p, &a, &r);
    redis_reply_free(&r);
    return rc;
}

/* ---- scripts -------------------------------------------------------------- */

/* The script's SHA1 as this pool knows it, learnt with SCRIPT LOAD. */
static fp_err redis__sha(redis_pool *p, const redis_script *s, char sha[41])
{
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < p->nscripts; i++)
        if (p->scripts[i].s == s) {
            memcpy(sha, p->scripts[i].sha, 41);
            pthread_mutex_unlock(&p->mu);
            return FP_OK;
        }
    pthread_mutex_unlock(&p->mu);
    const char *argv[3] = {"SCRIPT", "LOAD", s->src};
    redisReply *r = NULL;
    fp_err rc = redis__run(p, 0, 3, argv, NULL, &r);
    if (rc == FP_OK && (r->type != REDIS_REPLY_STRING || r->len != 40))
        rc = FP_INTERNAL;
    if (rc != FP_OK) {
        if (rc != FP_UNAVAILABLE)
            (void)redis_unexpected(s->name, r);
        goto out;
    }
    memcpy(sha, r->str, 40);
    sha[40] = '\0';
    pthread_mutex_lock(&p->mu);
    int known = 0;
    for (int i = 0; i < p->nscripts; i++)
        known |= p->scripts[i].s == s;
    if (!known && p->nscripts < REDIS_SCRIPTS_MAX) {
        p->scripts[p->nscripts].s = s;
        memcpy(p->scripts[p->nscripts].sha, sha, 41);
        p->nscripts++;
    }
    pthread_mutex_unlock(&p->mu);
out:
    redis_reply_free(&r);
    return rc;
}

fp_err redis_eval(redis_pool *p, const redis_script *s, int nkeys, const redis_args *a,
                  redisReply **out)
{
    *out = NULL;
    if (a->overflow || nkeys < 0 || nkeys > a->n)
        return FP_INVALID;
    char sha[41], nk[16];
    fp_err rc = redis__sha(p, s, sha);
    if (rc != FP_OK)
        return rc;
    snprintf(nk, sizeof nk, "%d", nkeys);
    const char *argv[REDIS_ARGS_MAX + 3];
    size_t lens[REDIS_ARGS_MAX + 3];
    argv[0] = "EVALSHA";
    argv[1] = sha;
    argv[2] = nk;
    lens[0] = 7;
    lens[1] = 40;
    lens[2] = strlen(nk);
    for (int i = 0; i < a->n; i++) {
        argv[3 + i] = a->v[i];
        lens[3 + i] = a->len[i];
    }
    rc = redis__run(p, 0, a->n + 3, argv, lens, out);
    if (*out && (*out)->type == REDIS_REPLY_ERROR && strncmp((*out)->str, "NOSCRIPT", 8) == 0) {
        /* The server lost its script cache: EVAL loads it again. */
        redis_reply_free(out);
        argv[0] = "EVAL";
        lens[0] = 4;
        argv[1] = s->src;
        lens[1] = strlen(s->src);
        rc = redis__run(p, 0, a->n + 3, argv, lens, out);
    }
    return rc;
}

/* ---- pool ----------------------------------------------------------------- */

fp_err redis_pool_open(const char *url, redis_pool **out)
{
    *out = NULL;
    if (!redis_accepts(url))
        return FP_INVALID;
    redis_pool *p = fp_calloc(1, sizeof *p);
    p->timeout_ms = 2000;
    p->connect_ms = 1000;
    p->size = 16;
    p->blocking_max = 64;
    p->up = -1;
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    fp_err rc = redis__parse(p, url);
    if (rc != FP_OK)
        goto fail;
    p->idle = fp_calloc((size_t)p->size, sizeof *p->idle);
    int refused = 0;
    redisContext *c = redis__connect(p, &refused);
    if (refused) {
        rc = FP_INVALID;
        goto fail;
    }
    if (c)
        p->idle[p->nidle++] = c;
    /* unreachable: redis__connect logged it; the pool connects later */
    *out = p;
    return FP_OK;
fail:
    redis_pool_close(&p);
    return rc;
}

void redis_pool_close(redis_pool **pp)
{
    redis_pool *p = *pp;
    if (!p)
        return;
    for (long i = 0; i < p->nidle; i++)
        redisFree(p->idle[i]);
    fp_free(p->idle);
    fp_free(p->host);
    fp_free(p->user);
    if (p->pass) {
        memset(p->pass, 0, strlen(p->pass));
        fp_free(p->pass);
    }
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    fp_free(p);
    *pp = NULL;
}

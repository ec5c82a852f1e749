/*
 * Unit tests for the embedded backends behind the pluggable interfaces:
 * cache_inproc (get/set/del, expiry, replacement, eviction bound) and
 * queue_inproc (every job runs once, draining close, refusal after close,
 * the verdicts: retry with backoff and attempt numbers, give up, attempts
 * exhausted, and the counters),
 * ratelimit_inproc (burst, refill, all-or-nothing, honest retry time, a
 * bounded table), the cache's no-eviction mode for sessions, and backend
 * selection by URL.
 *
 * The cache and rate-limit contract tests (test_cache_roundtrip,
 * test_cache_expiry, test_ratelimit_contract) run against either backend:
 * `test_backends` runs everything on inproc; `test_backends redis` runs the
 * contract tests on the real Redis of the CTest fixture "services"
 * (FILMPICKER_CACHE in the file FP_SERVICES_ENV names; missing fails), plus
 * the Redis layout of the buckets (their keys expire when full again).
 * Keys carry a random run prefix so runs sharing a server do not meet.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache/cache.h"
#include "core/mem.h"
#include "queue/queue.h"
#include "ratelimit/ratelimit.h"
#include "redis/redis.h"
#include "svc_env.h"

#include <sodium.h>

static char *g_url; /* the backend under test: "inproc" or a redis:// URL */
static char g_run[24];

/* key + the run prefix, in buf */
static size_t rk(char *buf, size_t size, const void *key, size_t klen)
{
    int n = snprintf(buf, size, "t:%s:", g_run);
    memcpy(buf + n, key, klen);
    return (size_t)n + klen;
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_cache_roundtrip(void **state)
{
    (void)state;
    assert_ptr_equal(cache_backend_for("inproc"), &cache_backend_inproc);
    assert_ptr_equal(cache_backend_for("redis://localhost"), &cache_backend_redis);
    assert_null(cache_backend_for("memcached://localhost"));
    const cache_backend *b = cache_backend_for(g_url);
    assert_non_null(b);
    cache *c = NULL;
    assert_int_equal(b->open(g_url, &c), FP_OK);
    assert_int_equal(b->ping(c), FP_OK); /* inproc always; the Redis run: its PING */
    uint8_t *v = NULL;
    size_t n = 0;
    char k[64], k2[64];
    size_t kl = rk(k, sizeof k, "k", 1);
    assert_int_equal(b->get(c, k, kl, &v, &n), FP_NOT_FOUND);
    assert_int_equal(b->set(c, k, kl, "hello", 5, 0), FP_OK);
    assert_int_equal(b->get(c, k, kl, &v, &n), FP_OK);
    assert_int_equal(n, 5);
    assert_memory_equal(v, "hello", 5);
    fp_free(v);
    assert_int_equal(b->set(c, k, kl, "bye", 3, 0), FP_OK); /* replace */
    assert_int_equal(b->get(c, k, kl, &v, &n), FP_OK);
    assert_int_equal(n, 3);
    assert_memory_equal(v, "bye", 3);
    fp_free(v);
    /* binary keys that differ only after a NUL are distinct; values too */
    size_t al = rk(k2, sizeof k2, "a\0b", 3);
    assert_int_equal(b->set(c, k2, al, "1\0" "2", 3, 60), FP_OK);
    assert_int_equal(b->get(c, k2, al, &v, &n), FP_OK);
    assert_int_equal(n, 3);
    assert_memory_equal(v, "1\0" "2", 3);
    fp_free(v);
    k2[al - 1] = 'c';
    assert_int_equal(b->get(c, k2, al, &v, &n), FP_NOT_FOUND);
    /* an empty value is a value */
    assert_int_equal(b->set(c, k2, al, "", 0, 60), FP_OK);
    assert_int_equal(b->get(c, k2, al, &v, &n), FP_OK);
    assert_int_equal(n, 0);
    fp_free(v);
    assert_int_equal(b->del(c, k, kl), FP_OK);
    assert_int_equal(b->get(c, k, kl, &v, &n), FP_NOT_FOUND);
    assert_int_equal(b->del(c, k2, al), FP_OK);
    kl = rk(k, sizeof k, "never", 5);
    assert_int_equal(b->del(c, k, kl), FP_OK);
    b->close(c);
}

static void test_cache_expiry(void **state)
{
    (void)state;
    const cache_backend *b = cache_backend_for(g_url);
    cache *c = NULL;
    assert_int_equal(b->open(g_url, &c), FP_OK);
    char k[64], k2[64];
    size_t kl = rk(k, sizeof k, "t", 1), kl2 = rk(k2, sizeof k2, "long", 4);
    assert_int_equal(b->set(c, k, kl, "x", 1, 1), FP_OK);
    assert_int_equal(b->set(c, k2, kl2, "y", 1, 60), FP_OK);
    uint8_t *v = NULL;
    size_t n = 0;
    assert_int_equal(b->get(c, k, kl, &v, &n), FP_OK);
    fp_free(v);
    sleep(2);
    assert_int_equal(b->get(c, k, kl, &v, &n), FP_NOT_FOUND);
    assert_int_equal(b->get(c, k2, kl2, &v, &n), FP_OK);
    fp_free(v);
    assert_int_equal(b->del(c, k2, kl2), FP_OK);
    b->close(c);
}

static void test_cache_is_bounded(void **state)
{
    (void)state;
    const cache_backend *b = &cache_backend_inproc;
    cache *c = NULL;
    assert_int_equal(b->open("inproc", &c), FP_OK);
    /* 600 MB offered to a cache of 16 shards x 16 MB: old entries go. */
    size_t sz = 1024 * 1024;
    char *val = fp_calloc(1, sz);
    for (int i = 0; i < 600; i++) {
        char key[16];
        snprintf(key, sizeof key, "big%d", i);
        assert_int_equal(b->set(c, key, strlen(key), val, sz, 0), FP_OK);
    }
    int present = 0;
    for (int i = 0; i < 600; i++) {
        char key[16];
        snprintf(key, sizeof key, "big%d", i);
        uint8_t *v = NULL;
        size_t n = 0;
        if (b->get(c, key, strlen(key), &v, &n) == FP_OK) {
            present++;
            fp_free(v);
        }
    }
    assert_true(present <= 16 * 16);
    assert_true(present > 0);
    /* the newest is always kept */
    uint8_t *v = NULL;
    size_t n = 0;
    assert_int_equal(b->get(c, "big599", 6, &v, &n), FP_OK);
    fp_free(v);
    fp_free(val);
    b->close(c);
}


static void test_cache_no_evict_refuses_and_keeps(void **state)
{
    (void)state;
    const cache_backend *b = cache_backend_for("inproc?max-mb=16&evict=no");
    assert_ptr_equal(b, &cache_backend_inproc);
    assert_null(cache_backend_for("inproc?max-mb=0"));
    assert_null(cache_backend_for("inproc?evict=maybe"));
    cache *c = NULL;
    assert_int_equal(b->open("inproc?max-mb=16&evict=no", &c), FP_OK);
    /* 16 MiB over 16 shards: 1 MiB each. Fill far past it: every value
     * that was stored stays, the rest are refused. */
    size_t sz = 64 * 1024;
    char *val = fp_calloc(1, sz);
    int stored = 0, refused = 0;
    for (int i = 0; i < 600; i++) {
        char key[16];
        snprintf(key, sizeof key, "s%d", i);
        fp_err rc = b->set(c, key, strlen(key), val, sz, 3600);
        if (rc == FP_OK)
            stored++;
        else {
            assert_int_equal(rc, FP_UNAVAILABLE);
            refused++;
        }
    }
    assert_true(stored > 0 && refused > 0);
    int present = 0;
    for (int i = 0; i < 600; i++) {
        char key[16];
        snprintf(key, sizeof key, "s%d", i);
        uint8_t *v = NULL;
        size_t n = 0;
        if (b->get(c, key, strlen(key), &v, &n) == FP_OK) {
            present++;
            fp_free(v);
        }
    }
    assert_int_equal(present, stored); /* nothing stored was evicted */
    fp_free(val);
    b->close(c);
}

static rl_ask ask(const char *key, double burst, double per_s, double cost)
{
    rl_ask a;
    memset(&a, 0, sizeof a);
    a.klen = strlen(key);
    memcpy(a.key, key, a.klen);
    a.burst = burst;
    a.per_s = per_s;
    a.cost = cost;
    return a;
}

static void test_ratelimit_buckets(void **state)
{
    (void)state;
    const ratelimit_backend *b = ratelimit_backend_for("inproc");
    assert_ptr_equal(b, &ratelimit_backend_inproc);
    assert_ptr_equal(ratelimit_backend_for("redis://x"), &ratelimit_backend_redis);
    ratelimit *rl = NULL;
    assert_int_equal(b->open("inproc", &rl), FP_OK);
    long long retry = 0, t = 1000000;
    rl_ask a = ask("fetch:a", 10, 1, 1); /* 10 at once, then one a second */
    for (int i = 0; i < 10; i++)
        assert_int_equal(b->take(rl, &a, 1, t, &retry, NULL), FP_OK);
    assert_int_equal(b->take(rl, &a, 1, t, &retry, NULL), FP_RATE_LIMITED);
    assert_int_equal(retry, 1000); /* one token comes back in a second */
    assert_int_equal(b->take(rl, &a, 1, t + 999, &retry, NULL), FP_RATE_LIMITED);
    assert_int_equal(retry, 1);
    assert_int_equal(b->take(rl, &a, 1, t + 1000, &retry, NULL), FP_OK);
    /* a cost of 3 waits for three tokens */
    rl_ask a3 = ask("fetch:a", 10, 1, 3);
    assert_int_equal(b->take(rl, &a3, 1, t + 1000, &retry, NULL), FP_RATE_LIMITED);
    assert_int_equal(retry, 3000);
    /* more than the whole burst: never */
    rl_ask huge = ask("fetch:a", 10, 1, 11);
    assert_int_equal(b->take(rl, &huge, 1, t + 3600000, &retry, NULL), FP_RATE_LIMITED);
    assert_int_equal(retry, -1);
    /* another key has its own bucket */
    rl_ask other = ask("fetch:b", 10, 1, 1);
    assert_int_equal(b->take(rl, &other, 1, t, &retry, NULL), FP_OK);
    /* all or nothing: the address has room, the browser has none */
    rl_ask pair[2] = {ask("s:addr", 4, 1, 1), ask("s:cookie", 2, 1, 1)};
    assert_int_equal(b->take(rl, pair, 2, t, &retry, NULL), FP_OK);
    assert_int_equal(b->take(rl, pair, 2, t, &retry, NULL), FP_OK);
    assert_int_equal(b->take(rl, pair, 2, t, &retry, NULL), FP_RATE_LIMITED);
    /* the refused request took nothing from the address: 2 left there */
    rl_ask addr = ask("s:addr", 4, 1, 2);
    assert_int_equal(b->take(rl, &addr, 1, t, &retry, NULL), FP_OK);
    assert_int_equal(b->take(rl, &addr, 1, t, &retry, NULL), FP_RATE_LIMITED);
    /* bad asks */
    rl_ask bad = ask("x", 0, 1, 1);
    assert_int_equal(b->take(rl, &bad, 1, t, &retry, NULL), FP_INVALID);
    b->close(rl);
}

/* The rate-limit contract on the real clock, so that it holds for the
 * Redis backend too (which counts by the server's time, not now_ms). */
static void test_ratelimit_contract(void **state)
{
    (void)state;
    const ratelimit_backend *b = ratelimit_backend_for(g_url);
    assert_non_null(b);
    ratelimit *rl = NULL;
    assert_int_equal(b->open(g_url, &rl), FP_OK);
    assert_int_equal(b->ping(rl), FP_OK);
    long long retry = 0;
    size_t lim = 99;
    rl_ask a = ask("", 10, 1, 1); /* 10 at once, then one a second */
    a.klen = rk((char *)a.key, sizeof a.key, "ra", 2);
    for (int i = 0; i < 10; i++)
        assert_int_equal(b->take(rl, &a, 1, mono_ms(), &retry, NULL), FP_OK);
    assert_int_equal(b->take(rl, &a, 1, mono_ms(), &retry, &lim), FP_RATE_LIMITED);
    assert_true(retry > 500 && retry <= 1000); /* about a second, rounded up */
    assert_int_equal(lim, 0);
    /* more than the whole burst: never */
    rl_ask huge = a;
    huge.cost = 11;
    assert_int_equal(b->take(rl, &huge, 1, mono_ms(), &retry, NULL), FP_RATE_LIMITED);
    assert_int_equal(retry, -1);
    /* all or nothing; limiting names the ask that waits longest */
    rl_ask pair[3] = {ask("", 4, 1, 1), ask("", 2, 1, 1), ask("", 100, 100, 1)};
    pair[0].klen = rk((char *)pair[0].key, sizeof pair[0].key, "s:addr", 6);
    pair[1].klen = rk((char *)pair[1].key, sizeof pair[1].key, "s:cookie", 8);
    pair[2].klen = rk((char *)pair[2].key, sizeof pair[2].key, "s:wide", 6);
    assert_int_equal(b->take(rl, pair, 3, mono_ms(), &retry, NULL), FP_OK);
    assert_int_equal(b->take(rl, pair, 3, mono_ms(), &retry, NULL), FP_OK);
    assert_int_equal(b->take(rl, pair, 3, mono_ms(), &retry, &lim), FP_RATE_LIMITED);
    assert_int_equal(lim, 1);
    assert_true(retry > 500 && retry <= 1000);
    /* the refused request took nothing from the address: 2 left there */
    rl_ask addr = pair[0];
    addr.cost = 2;
    assert_int_equal(b->take(rl, &addr, 1, mono_ms(), &retry, NULL), FP_OK);
    assert_int_equal(b->take(rl, &addr, 1, mono_ms(), &retry, NULL), FP_RATE_LIMITED);
    /* refill: 20 a second gives a token back in 50 ms */
    rl_ask fast = ask("", 2, 20, 1);
    fast.klen = rk((char *)fast.key, sizeof fast.key, "fast", 4);
    assert_int_equal(b->take(rl, &fast, 1, mono_ms(), &retry, NULL), FP_OK);
    assert_int_equal(b->take(rl, &fast, 1, mono_ms(), &retry, NULL), FP_OK);
    assert_int_equal(b->take(rl, &fast, 1, mono_ms(), &retry, NULL), FP_RATE_LIMITED);
    assert_true(retry > 0 && retry <= 50);
    struct timespec ts = {0, 120 * 1000000L};
    nanosleep(&ts, NULL);
    assert_int_equal(b->take(rl, &fast, 1, mono_ms(), &retry, NULL), FP_OK);
    /* a lowered budget caps the level at once: 9 left of 10, then the
     * burst becomes 2: one take of 2, and the next waits */
    rl_ask cap = ask("", 10, 1, 1);
    cap.klen = rk((char *)cap.key, sizeof cap.key, "cap", 3);
    assert_int_equal(b->take(rl, &cap, 1, mono_ms(), &retry, NULL), FP_OK);
    cap.burst = 2;
    cap.cost = 2;
    assert_int_equal(b->take(rl, &cap, 1, mono_ms(), &retry, NULL), FP_OK);
    assert_int_equal(b->take(rl, &cap, 1, mono_ms(), &retry, NULL), FP_RATE_LIMITED);
    assert_true(retry > 1500 && retry <= 2000);
    /* bad asks */
    rl_ask bad = ask("x", 0, 1, 1);
    assert_int_equal(b->take(rl, &bad, 1, mono_ms(), &retry, NULL), FP_INVALID);
    rl_ask many[9];
    for (int i = 0; i < 9; i++)
        many[i] = ask("m", 1, 1, 1);
    assert_int_equal(b->take(rl, many, 9, mono_ms(), &retry, NULL), FP_INVALID);
    assert_int_equal(b->take(rl, many, 0, mono_ms(), &retry, NULL), FP_OK);
    b->close(rl);
}

/* Redis only: a bucket's key lives as long as the bucket is not full. */
static void test_ratelimit_redis_keys_expire(void **state)
{
    (void)state;
    ratelimit *rl = NULL;
    assert_int_equal(ratelimit_backend_redis.open(g_url, &rl), FP_OK);
    rl_ask a = ask("", 10, 5, 4); /* 4 of 10 spent: full again in 0.8 s */
    a.klen = rk((char *)a.key, sizeof a.key, "ttl", 3);
    long long retry = 0;
    assert_int_equal(ratelimit_backend_redis.take(rl, &a, 1, 0, &retry, NULL), FP_OK);
    redis_pool *p = NULL;
    assert_int_equal(redis_pool_open(g_url, &p), FP_OK);
    redis_args args;
    redis_args_init(&args);
    redis_arg_str(&args, "PTTL");
    redis_arg_key(&args, "fp:r:", a.key, a.klen);
    redisReply *r = NULL;
    assert_int_equal(redis_cmd(p, &args, &r), FP_OK);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    assert_true(r->integer > 600 && r->integer <= 802);
    redis_reply_free(&r);
    struct timespec ts = {0, 900 * 1000000L};
    nanosleep(&ts, NULL);
    assert_int_equal(redis_cmd(p, &args, &r), FP_OK);
    assert_int_equal(r->integer, -2); /* gone: as good as a full bucket */
    redis_reply_free(&r);
    redis_pool_close(&p);
    /* and a full bucket it is */
    for (int i = 0; i < 2; i++)
        assert_int_equal(ratelimit_backend_redis.take(rl, &a, 1, 0, &retry, NULL), FP_OK);
    assert_int_equal(ratelimit_backend_redis.take(rl, &a, 1, 0, &retry, NULL), FP_RATE_LIMITED);
    ratelimit_backend_redis.close(rl);
}

static void test_ratelimit_table_is_bounded(void **state)
{
    (void)state;
    const ratelimit_backend *b = &ratelimit_backend_inproc;
    ratelimit *rl = NULL;
    assert_int_equal(b->open("inproc", &rl), FP_OK);
    long long retry = 0;
    /* 200,000 keys, each spending a token: the table forgets the oldest,
     * and a key still in it keeps its state */
    for (int i = 0; i < 200000; i++) {
        char key[24];
        snprintf(key, sizeof key, "k%d", i);
        rl_ask a = ask(key, 2, 0.001, 1);
        assert_int_equal(b->take(rl, &a, 1, 1000, &retry, NULL), FP_OK);
    }
    rl_ask recent = ask("k199999", 2, 0.001, 1);
    assert_int_equal(b->take(rl, &recent, 1, 1000, &retry, NULL), FP_OK);
    assert_int_equal(b->take(rl, &recent, 1, 1000, &retry, NULL), FP_RATE_LIMITED);
    b->close(rl);
}

static atomic_int q_runs;
static atomic_int q_seen[200];

static queue_verdict q_handler(void *ctx, queue_delivery *d)
{
    (void)ctx;
    const char *payload = d->payload;
    size_t len = d->len;
    assert_int_equal(d->attempt, 1);
    assert_int_equal(d->redelivered, 0);
    assert_true(len > 0);
    assert_int_equal(payload[len], '\0');
    int i = (int)strtol(payload, NULL, 10);
    struct timespec ts = {0, 2000000L};
    nanosleep(&ts, NULL);
    atomic_fetch_add(&q_seen[i], 1);
    atomic_fetch_add(&q_runs, 1);
    return QUEUE_DONE;
}

static void test_queue_runs_each_job_once_and_drains(void **state)
{
    (void)state;
    const queue_backend *b = queue_backend_for("inproc");
    assert_non_null(b);
    assert_ptr_equal(queue_backend_for("amqp://x"), &queue_backend_amqp);
    assert_ptr_equal(queue_backend_for("amqps://x"), &queue_backend_amqp);
    assert_null(queue_backend_for("rabbitmq://x"));
    queue *q = NULL;
    queue_opts none = {.consumers = 0}, three = {.consumers = 3};
    assert_int_equal(b->open("inproc", &none, q_handler, NULL, &q), FP_INVALID);
    assert_int_equal(b->open("inproc", &three, NULL, NULL, &q), FP_INVALID);
    assert_int_equal(b->open("inproc", &three, q_handler, NULL, &q), FP_OK);
    queue_health h = {0};
    assert_int_equal(b->health(q, &h), FP_OK); /* in process: always up, every thread */
    assert_int_equal(h.publisher_up, 1);
    assert_int_equal(h.consumers, 3);
    assert_int_equal(h.consumers_up, 3);
    atomic_store(&q_runs, 0);
    for (int i = 0; i < 200; i++) {
        char p[16];
        int len = snprintf(p, sizeof p, "%d", i);
        assert_int_equal(b->submit(q, p, (size_t)len), FP_OK);
    }
    queue_stats st;
    b->stats(q, &st);
    assert_true(st.queued + st.running <= 200);
    assert_int_equal(st.published, 200);
    b->close(q); /* must finish all 200 before returning */
    assert_int_equal(atomic_load(&q_runs), 200);
    for (int i = 0; i < 200; i++)
        assert_int_equal(atomic_load(&q_seen[i]), 1);
}

/* The verdict test: payload "ok" is done at once, "flaky" asks to retry
 * twice then is done, "poison" always asks to retry, "bad" gives up. */
static pthread_mutex_t v_mu = PTHREAD_MUTEX_INITIALIZER;
static int v_flaky_attempts[8], v_flaky_n, v_poison_n, v_bad_n, v_ok_n;
static struct timespec v_flaky_at[8];

static queue_verdict v_handler(void *ctx, queue_delivery *d)
{
    (void)ctx;
    assert_int_equal(d->redelivered, 0);
    queue_verdict v = QUEUE_DONE;
    pthread_mutex_lock(&v_mu);
    if (strcmp(d->payload, "flaky") == 0) {
        assert_true(v_flaky_n < 8);
        v_flaky_attempts[v_flaky_n] = d->attempt;
        clock_gettime(CLOCK_MONOTONIC, &v_flaky_at[v_flaky_n]);
        v_flaky_n++;
        if (d->attempt < 3) {
            snprintf(d->reason, sizeof d->reason, "try %d failed", d->attempt);
            v = QUEUE_RETRY;
        }
    } else if (strcmp(d->payload, "poison") == 0) {
        v_poison_n++;
        assert_int_equal(d->attempt, v_poison_n);
        snprintf(d->reason, sizeof d->reason, "always fails");
        v = QUEUE_RETRY;
    } else if (strcmp(d->payload, "bad") == 0) {
        v_bad_n++;
        v = QUEUE_GIVE_UP;
    } else {
        v_ok_n++;
    }
    pthread_mutex_unlock(&v_mu);
    return v;
}

static long v_ms_between(const struct timespec *a, const struct timespec *b)
{
    return (long)((b->tv_sec - a->tv_sec) * 1000 + (b->tv_nsec - a->tv_nsec) / 1000000);
}

static void test_queue_verdicts(void **state)
{
    (void)state;
    const queue_backend *b = queue_backend_for("inproc://");
    assert_non_null(b);
    queue *q = NULL;
    queue_opts o = {.consumers = 2, .max_attempts = 4, .backoff_ms = 40, .backoff_max_ms = 60};
    assert_int_equal(b->open("inproc", &o, v_handler, NULL, &q), FP_OK);
    assert_int_equal(b->submit(q, "flaky", 5), FP_OK);
    assert_int_equal(b->submit(q, "poison", 6), FP_OK);
    assert_int_equal(b->submit(q, "bad", 3), FP_OK);
    assert_int_equal(b->submit(q, "ok", 2), FP_OK);
    /* Wait (bounded) until everything settled, without closing: close would
     * run the retries without their backoff. */
    queue_stats st;
    for (int i = 0; i < 500; i++) {
        b->stats(q, &st);
        if (st.acked + st.dead_lettered == 4 && st.running == 0)
            break;
        struct timespec ts = {0, 10000000L};
        nanosleep(&ts, NULL);
    }
    b->stats(q, &st);
    assert_int_equal(st.acked, 2);         /* ok, flaky */
    assert_int_equal(st.dead_lettered, 2); /* bad at once, poison after 4 runs */
    assert_int_equal(st.retried, 2 + 3);   /* flaky twice, poison three times */
    assert_int_equal(st.runs, 1 + 3 + 4 + 1);
    assert_int_equal(st.queued, 0);
    assert_int_equal(st.published, 4);
    b->close(q);
    assert_int_equal(v_flaky_n, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(v_flaky_attempts[i], i + 1);
    /* backoff: 40 ms after run 1, 60 ms (doubled, capped) after run 2 */
    assert_true(v_ms_between(&v_flaky_at[0], &v_flaky_at[1]) >= 38);
    assert_true(v_ms_between(&v_flaky_at[1], &v_flaky_at[2]) >= 58);
    assert_int_equal(v_poison_n, 4);
    assert_int_equal(v_bad_n, 1);
    assert_int_equal(v_ok_n, 1);

    queue_opts r;
    queue_opts_resolve(NULL, &r);
    assert_int_equal(r.max_attempts, 5);
    assert_int_equal(queue_backoff_ms(&r, 1), 1000);
    assert_int_equal(queue_backoff_ms(&r, 3), 4000);
    assert_int_equal(queue_backoff_ms(&r, 40), 60000);
}

/* Close drains retries too: they run without waiting out their backoff. */
static atomic_int d_runs;
static queue_verdict d_handler(void *ctx, queue_delivery *d)
{
    (void)ctx;
    atomic_fetch_add(&d_runs, 1);
    return d->attempt < 2 ? QUEUE_RETRY : QUEUE_DONE;
}

static void test_queue_close_runs_pending_retries(void **state)
{
    (void)state;
    const queue_backend *b = queue_backend_for("inproc");
    queue *q = NULL;
    queue_opts o = {.consumers = 1, .backoff_ms = 60000};
    assert_int_equal(b->open("inproc", &o, d_handler, NULL, &q), FP_OK);
    assert_int_equal(b->submit(q, "x", 1), FP_OK);
    for (int i = 0; i < 500 && atomic_load(&d_runs) < 1; i++) {
        struct timespec ts = {0, 2000000L};
        nanosleep(&ts, NULL);
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    b->close(q);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(atomic_load(&d_runs), 2);
    assert_true(v_ms_between(&t0, &t1) < 5000);
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0)
        return 1;
    snprintf(g_run, sizeof g_run, "%d-%08x", (int)getpid(), randombytes_random());
    if (argc > 1 && strcmp(argv[1], "redis") == 0) {
        const char *envf = getenv("FP_SERVICES_ENV");
        g_url = svc_env_read(envf, "FILMPICKER_CACHE");
        if (!g_url) {
            fprintf(stderr, "no FILMPICKER_CACHE in %s (FP_SERVICES_ENV): the services "
                            "fixture did not start Redis\n", envf ? envf : "(unset)");
            return 1;
        }
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_cache_roundtrip),
            cmocka_unit_test(test_cache_expiry),
            cmocka_unit_test(test_ratelimit_contract),
            cmocka_unit_test(test_ratelimit_redis_keys_expire),
        };
        int rc = cmocka_run_group_tests_name("redis", tests, NULL, NULL);
        fp_free(g_url);
        return rc;
    }
    g_url = fp_strdup("inproc");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cache_roundtrip),
        cmocka_unit_test(test_cache_expiry),
        cmocka_unit_test(test_cache_is_bounded),
        cmocka_unit_test(test_cache_no_evict_refuses_and_keeps),
        cmocka_unit_test(test_ratelimit_buckets),
        cmocka_unit_test(test_ratelimit_contract),
        cmocka_unit_test(test_ratelimit_table_is_bounded),
        cmocka_unit_test(test_queue_runs_each_job_once_and_drains),
        cmocka_unit_test(test_queue_verdicts),
        cmocka_unit_test(test_queue_close_runs_pending_retries),
    };
    int rc = cmocka_run_group_tests_name("inproc", tests, NULL, NULL);
    fp_free(g_url);
    return rc;
}

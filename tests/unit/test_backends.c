/*
 * Unit tests for the embedded backends behind the pluggable interfaces:
 * cache_inproc (get/set/del, expiry, replacement, eviction bound) and
 * queue_inproc (every job runs once, draining close, refusal after close,
 * the verdicts: retry with backoff and attempt numbers, give up, attempts
 * exhausted, and the counters),
 * ratelimit_inproc (burst, refill, all-or-nothing, honest retry time, a
 * bounded table), the cache's no-eviction mode for sessions, and backend
 * selection by URL.
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

static void test_cache_roundtrip(void **state)
{
    (void)state;
    const cache_backend *b = cache_backend_for("inproc");
    assert_non_null(b);
    assert_null(cache_backend_for("redis://localhost"));
    cache *c = NULL;
    assert_int_equal(b->open("inproc", &c), FP_OK);
    uint8_t *v = NULL;
    size_t n = 0;
    assert_int_equal(b->get(c, "k", 1, &v, &n), FP_NOT_FOUND);
    assert_int_equal(b->set(c, "k", 1, "hello", 5, 0), FP_OK);
    assert_int_equal(b->get(c, "k", 1, &v, &n), FP_OK);
    assert_int_equal(n, 5);
    assert_memory_equal(v, "hello", 5);
    fp_free(v);
    assert_int_equal(b->set(c, "k", 1, "bye", 3, 0), FP_OK); /* replace */
    assert_int_equal(b->get(c, "k", 1, &v, &n), FP_OK);
    assert_int_equal(n, 3);
    assert_memory_equal(v, "bye", 3);
    fp_free(v);
    /* binary keys that differ only after a NUL are distinct */
    assert_int_equal(b->set(c, "a\0b", 3, "1", 1, 0), FP_OK);
    assert_int_equal(b->get(c, "a\0c", 3, &v, &n), FP_NOT_FOUND);
    assert_int_equal(b->del(c, "k", 1), FP_OK);
    assert_int_equal(b->get(c, "k", 1, &v, &n), FP_NOT_FOUND);
    assert_int_equal(b->del(c, "never", 5), FP_OK);
    b->close(c);
}

static void test_cache_expiry(void **state)
{
    (void)state;
    const cache_backend *b = &cache_backend_inproc;
    cache *c = NULL;
    assert_int_equal(b->open("inproc", &c), FP_OK);
    assert_int_equal(b->set(c, "t", 1, "x", 1, 1), FP_OK);
    uint8_t *v = NULL;
    size_t n = 0;
    assert_int_equal(b->get(c, "t", 1, &v, &n), FP_OK);
    fp_free(v);
    sleep(2);
    assert_int_equal(b->get(c, "t", 1, &v, &n), FP_NOT_FOUND);
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
    assert_null(ratelimit_backend_for("redis://x"));
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cache_roundtrip),
        cmocka_unit_test(test_cache_expiry),
        cmocka_unit_test(test_cache_is_bounded),
        cmocka_unit_test(test_cache_no_evict_refuses_and_keeps),
        cmocka_unit_test(test_ratelimit_buckets),
        cmocka_unit_test(test_ratelimit_table_is_bounded),
        cmocka_unit_test(test_queue_runs_each_job_once_and_drains),
        cmocka_unit_test(test_queue_verdicts),
        cmocka_unit_test(test_queue_close_runs_pending_retries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

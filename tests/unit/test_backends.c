/*
 * Unit tests for the embedded backends behind the pluggable interfaces:
 * cache_inproc (get/set/del, expiry, replacement, eviction bound) and
 * queue_inproc (every job runs once, draining close, refusal after close),
 * and backend selection by URL.
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

static atomic_int q_runs;
static atomic_int q_seen[200];

static void q_handler(void *ctx, const char *payload, size_t len)
{
    (void)ctx;
    assert_true(len > 0);
    assert_int_equal(payload[len], '\0');
    int i = (int)strtol(payload, NULL, 10);
    struct timespec ts = {0, 2000000L};
    nanosleep(&ts, NULL);
    atomic_fetch_add(&q_seen[i], 1);
    atomic_fetch_add(&q_runs, 1);
}

static void test_queue_runs_each_job_once_and_drains(void **state)
{
    (void)state;
    const queue_backend *b = queue_backend_for("inproc");
    assert_non_null(b);
    assert_null(queue_backend_for("amqp://x"));
    queue *q = NULL;
    assert_int_equal(b->open("inproc", 0, q_handler, NULL, &q), FP_INVALID);
    assert_int_equal(b->open("inproc", 3, q_handler, NULL, &q), FP_OK);
    atomic_store(&q_runs, 0);
    for (int i = 0; i < 200; i++) {
        char p[16];
        int len = snprintf(p, sizeof p, "%d", i);
        assert_int_equal(b->submit(q, p, (size_t)len), FP_OK);
    }
    size_t queued = 0, running = 0;
    b->stats(q, &queued, &running);
    assert_true(queued + running <= 200);
    b->close(q); /* must finish all 200 before returning */
    assert_int_equal(atomic_load(&q_runs), 200);
    for (int i = 0; i < 200; i++)
        assert_int_equal(atomic_load(&q_seen[i]), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cache_roundtrip),
        cmocka_unit_test(test_cache_expiry),
        cmocka_unit_test(test_cache_is_bounded),
        cmocka_unit_test(test_queue_runs_each_job_once_and_drains),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * The shared Redis client (redis/redis.h) and what every Redis backend does
 * when the server goes away and comes back.
 *
 *   test_redis         URL parsing (good and bad URLs, rediss refused) and a
 *                      server that is not there: open still succeeds, calls
 *                      fail with FP_UNAVAILABLE at once (no hang).
 *   test_redis fault   a Redis of its own (scripts/services.sh under
 *                      $FP_BUILD_DIR/services-redis-fault, so the Redis the
 *                      other scaled tests share is never stopped): with the
 *                      state, cache and rate-limit backends open, the server
 *                      is stopped: a blocked stream read returns
 *                      FP_UNAVAILABLE, every call returns FP_UNAVAILABLE
 *                      within its timeouts; started again, the same handles
 *                      work again (the pool reconnects; the data written
 *                      before is there, appendonly); a server that hangs
 *                      (SIGSTOP) costs each call at most its timeouts and
 *                      is used again after SIGCONT; and a restart that no
 *                      call saw does not fail the first call after it (idle
 *                      connections are checked before reuse).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache/cache.h"
#include "core/mem.h"
#include "ratelimit/ratelimit.h"
#include "redis/redis.h"
#include "state/state.h"
#include "svc_env.h"

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- without a server ----------------------------------------------------- */

static void test_urls(void **ts)
{
    (void)ts;
    static const char *const good[] = {
        "redis://127.0.0.1:1",
        "redis://127.0.0.1:1/",
        "redis://:secret@127.0.0.1:1/3",
        "redis://user:p%40ss@127.0.0.1:1/0?timeout-ms=100&connect-timeout-ms=100",
        "redis://[::1]:1/0?pool-size=2&blocking-max=4",
        "REDIS://localhost:1/0",
    };
    static const char *const bad[] = {
        "rediss://127.0.0.1:1/0",   /* TLS: refused */
        "redis://127.0.0.1:1/x",    /* db not a number */
        "redis://127.0.0.1:1/1/2",
        "redis://127.0.0.1:99999/0",
        "redis://127.0.0.1:1/0?timeout-ms=abc",
        "redis://127.0.0.1:1/0?timeout-ms=0",
        "redis://127.0.0.1:1/0?whatever=1",
        "redis://127.0.0.1:1/0#frag",
        "redis://user@127.0.0.1:1/0", /* a user without a password */
        "redis://",
        "http://127.0.0.1:1/0",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        redis_pool *p = NULL;
        long long t0 = now_ms();
        assert_int_equal(redis_pool_open(good[i], &p), FP_OK);
        assert_non_null(p);
        assert_int_equal(redis_ping(p), FP_UNAVAILABLE);
        assert_true(now_ms() - t0 < 3000);
        redis_pool_close(&p);
        assert_null(p);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        redis_pool *p = NULL;
        assert_int_equal(redis_pool_open(bad[i], &p), FP_INVALID);
        assert_null(p);
    }
    assert_true(redis_accepts("redis://x"));
    assert_true(redis_accepts("rediss://x"));
    assert_false(redis_accepts("inproc"));
    assert_false(redis_accepts(NULL));
}

static void test_server_away_fails_fast(void **ts)
{
    (void)ts;
    const char *url = "redis://127.0.0.1:1/0";
    state_handle *st = NULL;
    cache *c = NULL;
    ratelimit *rl = NULL;
    assert_int_equal(state_backend_redis.open(url, &st), FP_OK);
    assert_int_equal(cache_backend_redis.open(url, &c), FP_OK);
    assert_int_equal(ratelimit_backend_redis.open(url, &rl), FP_OK);
    long long t0 = now_ms();
    for (int i = 0; i < 200; i++) {
        uint8_t *v = NULL;
        size_t n = 0;
        uint64_t ver = 0;
        assert_int_equal(state_backend_redis.doc_get(st, "d", &v, &n, &ver), FP_UNAVAILABLE);
        assert_int_equal(state_backend_redis.doc_cas(st, "d", 0, "x", 1, 1000, &ver),
                         FP_UNAVAILABLE);
        assert_int_equal(state_backend_redis.sem_take(st, "s", 1, "t", 1000), FP_UNAVAILABLE);
        char last[STATE_ID_MAX];
        assert_int_equal(state_backend_redis.stream_read(st, "x", "$", 10, 1000, NULL, NULL,
                                                         last), FP_INVALID); /* no fn */
        assert_int_equal(cache_backend_redis.get(c, "k", 1, &v, &n), FP_UNAVAILABLE);
        rl_ask a = {.key = "k", .klen = 1, .burst = 1, .per_s = 1, .cost = 1};
        long long retry;
        assert_int_equal(ratelimit_backend_redis.take(rl, &a, 1, 0, &retry, NULL),
                         FP_UNAVAILABLE);
    }
    assert_true(now_ms() - t0 < 3000);
    ratelimit_backend_redis.close(rl);
    cache_backend_redis.close(c);
    state_backend_redis.close(st);
}

/* ---- with a server of its own that is stopped and started ------------------ */

static char g_dir[512];
static char *g_url;

/* scripts/services.sh CMD DIR redis; the FILMPICKER_CACHE it prints (start)
 * into g_url. 0 on success. */
static int services(const char *cmd)
{
    char line[1024];
    snprintf(line, sizeof line, "%s/scripts/services.sh %s '%s' redis 2>&1", FP_SOURCE_DIR, cmd,
             g_dir);
    FILE *f = popen(line, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (strncmp(line, "export ", 7) != 0) /* the exports hold passwords */
            fprintf(stderr, "# %s\n", line);
        const char *key = "export FILMPICKER_CACHE=";
        if (strncmp(line, key, strlen(key)) == 0) {
            fp_free(g_url);
            g_url = fp_strdup(line + strlen(key));
        }
    }
    return pclose(f) == 0 ? 0 : -1;
}

static int fault_setup(void **ts)
{
    (void)ts;
    const char *bd = getenv("FP_BUILD_DIR");
    snprintf(g_dir, sizeof g_dir, "%s/services-redis-fault", bd ? bd : ".");
    if (services("start") != 0 || !g_url) {
        fprintf(stderr, "could not start Redis under %s\n", g_dir);
        return -1;
    }
    return 0;
}

/* The pid of the Redis under g_dir, or 0. */
static pid_t redis_pid(void)
{
    char path[600];
    snprintf(path, sizeof path, "%s/redis/redis.pid", g_dir);
    FILE *f = fopen(path, "r");
    long pid = 0;
    if (f) {
        char line[32];
        if (fgets(line, sizeof line, f))
            pid = strtol(line, NULL, 10);
        fclose(f);
    }
    return (pid_t)pid;
}

static int fault_teardown(void **ts)
{
    (void)ts;
    pid_t pid = redis_pid();
    if (pid > 0)
        kill(pid, SIGCONT); /* in case the hang phase failed half-way */
    int rc = services("stop");
    fp_free(g_url);
    g_url = NULL;
    return rc;
}

typedef struct blocked {
    state_handle *st;
    fp_err rc;
    long long took_ms;
    atomic_int started;
} blocked;

static int ignore_fn(void *ud, const state_event *ev)
{
    (void)ud;
    (void)ev;
    return 0;
}

static void *blocked_reader(void *arg)
{
    blocked *b = arg;
    char last[STATE_ID_MAX];
    atomic_store(&b->started, 1);
    long long t0 = now_ms();
    b->rc = state_backend_redis.stream_read(b->st, "fault:stream", "$", 10, 30000, ignore_fn,
                                            NULL, last);
    b->took_ms = now_ms() - t0;
    return NULL;
}

/* One of each kind of call; every result must be `want`. */
static void every_call(state_handle *st, cache *c, ratelimit *rl, fp_err want, long long *worst_ms)
{
    const state_backend *b = &state_backend_redis;
    uint8_t *v = NULL;
    size_t n = 0;
    uint64_t ver = 0;
    long held = 0;
    char id[STATE_ID_MAX], last[STATE_ID_MAX];
    rl_ask a = {.key = "fault:rl", .klen = 8, .burst = 1000, .per_s = 1000, .cost = 1};
    long long retry = 0;
    fp_err rc[12];
    long long t[13];
    int k = 0;
    t[k] = now_ms();
    rc[k++] = b->ping(st), t[k] = now_ms();
    rc[k++] = b->doc_get(st, "fault:doc", &v, &n, &ver), t[k] = now_ms();
    fp_free(v);
    rc[k++] = b->doc_cas(st, "fault:doc2", 0, "x", 1, 60000, &ver), t[k] = now_ms();
    rc[k++] = b->doc_del(st, "fault:doc2"), t[k] = now_ms();
    rc[k++] = b->lease_take(st, "fault:lease", "me", 60000), t[k] = now_ms();
    rc[k++] = b->sem_take(st, "fault:sem", 2, "me", 60000), t[k] = now_ms();
    rc[k++] = b->sem_count(st, "fault:sem", &held), t[k] = now_ms();
    rc[k++] = b->stream_add(st, "fault:stream2", NULL, "e", 1, 10, 60000, id), t[k] = now_ms();
    rc[k++] = b->stream_read(st, "fault:stream2", "0-0", 10, 200, ignore_fn, NULL, last),
    t[k] = now_ms();
    rc[k++] = cache_backend_redis.set(c, "fault:c2", 8, "v", 1, 60), t[k] = now_ms();
    rc[k++] = cache_backend_redis.get(c, "fault:c", 7, &v, &n), t[k] = now_ms();
    fp_free(v);
    v = NULL;
    rc[k++] = ratelimit_backend_redis.take(rl, &a, 1, 0, &retry, NULL), t[k] = now_ms();
    for (int i = 0; i < k; i++) {
        if (rc[i] != want)
            fprintf(stderr, "# call %d: %s, wanted %s\n", i, fp_err_code(rc[i]),
                    fp_err_code(want));
        assert_int_equal(rc[i], want);
        if (t[i + 1] - t[i] > *worst_ms)
            *worst_ms = t[i + 1] - t[i];
    }
}

/* Waits until each of the three handles answers again (each pool fails
 * fast for REDIS_RETRY_MS after its own last failure). The ms it took. */
static long long wait_back(state_handle *st, cache *c, ratelimit *rl)
{
    long long t0 = now_ms();
    for (;;) {
        uint8_t *v = NULL;
        size_t n = 0;
        rl_ask a = {.key = "fault:w", .klen = 7, .burst = 1000, .per_s = 1000, .cost = 1};
        long long retry = 0;
        fp_err r1 = state_backend_redis.ping(st);
        fp_err r2 = cache_backend_redis.get(c, "fault:w", 7, &v, &n);
        fp_free(v);
        fp_err r3 = ratelimit_backend_redis.take(rl, &a, 1, 0, &retry, NULL);
        if (r1 == FP_OK && (r2 == FP_OK || r2 == FP_NOT_FOUND) && r3 == FP_OK)
            return now_ms() - t0;
        assert_true(now_ms() - t0 < 15000);
        sleep_ms(50);
    }
}

static void test_stop_and_start(void **ts)
{
    (void)ts;
    state_handle *st = NULL;
    cache *c = NULL;
    ratelimit *rl = NULL;
    /* short timeouts so "bounded by the timeouts" is quick to check */
    char *url = fp_printf("%s?timeout-ms=1000&connect-timeout-ms=500", g_url);
    assert_int_equal(state_backend_redis.open(url, &st), FP_OK);
    assert_int_equal(cache_backend_redis.open(url, &c), FP_OK);
    assert_int_equal(ratelimit_backend_redis.open(url, &rl), FP_OK);
    long long worst = 0;
    uint64_t ver = 0;
    (void)state_backend_redis.doc_del(st, "fault:doc");
    assert_int_equal(state_backend_redis.doc_cas(st, "fault:doc", 0, "kept", 4, 600000, &ver),
                     FP_OK);
    assert_int_equal(cache_backend_redis.set(c, "fault:c", 7, "cached", 6, 600), FP_OK);
    every_call(st, c, rl, FP_OK, &worst);
    sleep_ms(1100); /* appendfsync everysec: on disk before the stop */

    /* a read blocked on the server when it goes */
    blocked b = {.st = st};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, blocked_reader, &b), 0);
    while (!atomic_load(&b.started))
        sleep_ms(1);
    sleep_ms(200);
    long long t_stop = now_ms();
    assert_int_equal(services("stop"), 0);
    pthread_join(t, NULL);
    fprintf(stderr, "# blocked read returned %s %lld ms after the stop began\n",
            fp_err_code(b.rc), now_ms() - t_stop);
    assert_int_equal(b.rc, FP_UNAVAILABLE);
    assert_true(now_ms() - t_stop < 15000);

    /* server away: every call fails, none hangs */
    worst = 0;
    long long t0 = now_ms();
    for (int i = 0; i < 20; i++)
        every_call(st, c, rl, FP_UNAVAILABLE, &worst);
    long long away_ms = now_ms() - t0;
    fprintf(stderr, "# away: 20 rounds of 12 calls in %lld ms, slowest call %lld ms\n", away_ms,
            worst);
    assert_true(worst <= 1500); /* connect-timeout-ms + scheduling */
    assert_true(away_ms < 10000);

    /* back: the same handles recover by themselves */
    assert_int_equal(services("start"), 0);
    fprintf(stderr, "# back: every handle answers %lld ms after start returned\n",
            wait_back(st, c, rl));
    every_call(st, c, rl, FP_OK, &worst);
    uint8_t *v = NULL;
    size_t n = 0;
    assert_int_equal(state_backend_redis.doc_get(st, "fault:doc", &v, &n, &ver), FP_OK);
    assert_int_equal(n, 4);
    assert_memory_equal(v, "kept", 4);
    assert_int_equal(ver, 1);
    fp_free(v);
    assert_int_equal(cache_backend_redis.get(c, "fault:c", 7, &v, &n), FP_OK);
    assert_memory_equal(v, "cached", 6);
    fp_free(v);

    /* a server that hangs (SIGSTOP: connects are accepted by the kernel,
     * nothing is answered): every call gives up within its timeouts */
    pid_t pid = redis_pid();
    assert_true(pid > 0);
    assert_int_equal(kill(pid, SIGSTOP), 0);
    worst = 0;
    t0 = now_ms();
    every_call(st, c, rl, FP_UNAVAILABLE, &worst);
    fprintf(stderr, "# hung: 12 calls in %lld ms, slowest call %lld ms\n", now_ms() - t0, worst);
    assert_int_equal(kill(pid, SIGCONT), 0);
    assert_true(worst <= 1200 + 1000); /* stream_read: block 200 + timeout-ms, + slack */
    fprintf(stderr, "# resumed: every handle answers %lld ms after SIGCONT\n",
            wait_back(st, c, rl));
    worst = 0;
    every_call(st, c, rl, FP_OK, &worst);

    /* a restart between two calls: the idle connections are stale, yet the
     * first call after it works */
    assert_int_equal(services("stop"), 0);
    assert_int_equal(services("start"), 0);
    worst = 0;
    every_call(st, c, rl, FP_OK, &worst);

    ratelimit_backend_redis.close(rl);
    cache_backend_redis.close(c);
    state_backend_redis.close(st);
    fp_free(url);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "fault") == 0) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_stop_and_start),
        };
        return cmocka_run_group_tests_name("redis fault", tests, fault_setup, fault_teardown);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_urls),
        cmocka_unit_test(test_server_away_fails_fast),
    };
    return cmocka_run_group_tests_name("redis client", tests, NULL, NULL);
}

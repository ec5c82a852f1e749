/*
 * The shared-state contract (state.h), one suite for every backend:
 *   test_state           runs it against state_inproc ("inproc");
 *   test_state redis     runs it against the real Redis that the CTest
 *                        fixture "services" started (FILMPICKER_CACHE from
 *                        the file named by FP_SERVICES_ENV; missing is a
 *                        failure, never a skip).
 * Documents (versions, CAS conflicts, no lost update from concurrent
 * writers, expiry), leases (conflict, renew, wrong token, expiry),
 * semaphores (limit, renew, expiry, the limit under concurrency), streams
 * (ids, replay after an id, "$", blocking reads woken by another thread,
 * trim, explicit ids, expiry), blocking readers not starving other calls,
 * argument checks and backend selection. Names carry a random run prefix,
 * so runs sharing a server do not meet.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/mem.h"
#include "state/state.h"
#include "svc_env.h"

static const state_backend *g_b;
static char *g_url;
static char g_run[24];

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A name unique to this run. */
static const char *nm(char buf[STATE_NAME_MAX + 1], const char *what)
{
    snprintf(buf, STATE_NAME_MAX + 1, "t:%s:%s", g_run, what);
    return buf;
}

static int setup(void **ts)
{
    state_handle *st = NULL;
    if (g_b->open(g_url, &st) != FP_OK)
        return -1;
    *ts = st;
    return 0;
}

static int teardown(void **ts)
{
    g_b->close(*ts);
    return 0;
}

/* ---- selection and ids ---------------------------------------------------- */

static void test_backend_for_and_ids(void **ts)
{
    (void)ts;
    assert_ptr_equal(state_backend_for("inproc"), &state_backend_inproc);
    assert_ptr_equal(state_backend_for("inproc://"), &state_backend_inproc);
    assert_ptr_equal(state_backend_for("redis://127.0.0.1:6379/0"), &state_backend_redis);
    assert_ptr_equal(state_backend_for("rediss://127.0.0.1:6379/0"), &state_backend_redis);
    assert_null(state_backend_for("memcached://x"));
    assert_null(state_backend_for(NULL));
    state_handle *st = NULL;
    assert_int_equal(state_backend_redis.open("rediss://127.0.0.1:6379/0", &st), FP_INVALID);
    assert_null(st);
    assert_int_equal(state_backend_redis.open("redis://127.0.0.1:6379/x", &st), FP_INVALID);
    assert_int_equal(state_backend_redis.open("redis://h/0?nope=1", &st), FP_INVALID);
    assert_int_equal(state_backend_inproc.open("inproc?x", &st), FP_INVALID);

    assert_true(state_id_cmp("1-0", "2-0") < 0);
    assert_true(state_id_cmp("10-0", "9-99") > 0); /* numeric, not text */
    assert_true(state_id_cmp("5-2", "5-10") < 0);
    assert_int_equal(state_id_cmp("5-0", "5"), 0);
    assert_int_equal(state_id_cmp("18446744073709551615-18446744073709551615",
                                  "18446744073709551615-18446744073709551615"), 0);
    assert_true(state_id_cmp("x", "0-0") < 0); /* malformed first */
    assert_true(state_id_cmp("1-1", "1-") > 0);
}

static void test_arguments_checked(void **ts)
{
    state_handle *st = *ts;
    char n[STATE_NAME_MAX + 1], big[STATE_NAME_MAX + 2];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    uint64_t v;
    assert_int_equal(g_b->doc_cas(st, big, 0, "x", 1, 1000, &v), FP_INVALID);
    assert_int_equal(g_b->doc_cas(st, "", 0, "x", 1, 1000, &v), FP_INVALID);
    assert_int_equal(g_b->doc_cas(st, "a\nb", 0, "x", 1, 1000, &v), FP_INVALID);
    assert_int_equal(g_b->doc_cas(st, nm(n, "arg"), 0, "x", 1, 0, &v), FP_INVALID);
    assert_int_equal(g_b->lease_take(st, nm(n, "arg"), "", 1000), FP_INVALID);
    assert_int_equal(g_b->lease_take(st, nm(n, "arg"), "a b", 1000), FP_INVALID);
    assert_int_equal(g_b->sem_take(st, nm(n, "arg"), 0, "t", 1000), FP_INVALID);
    assert_int_equal(g_b->stream_add(st, nm(n, "arg"), "1-x", "v", 1, 10, 0, NULL), FP_INVALID);
    assert_int_equal(g_b->stream_add(st, nm(n, "arg"), NULL, "v", 1, 0, 0, NULL), FP_INVALID);
    char last[STATE_ID_MAX];
    assert_int_equal(g_b->stream_read(st, nm(n, "arg"), "nope", 10, 0, NULL, NULL, last),
                     FP_INVALID);
    assert_int_equal(g_b->ping(st), FP_OK);
}

/* ---- documents ------------------------------------------------------------ */

static void test_doc_cas_versions(void **ts)
{
    state_handle *st = *ts;
    char n[STATE_NAME_MAX + 1];
    nm(n, "doc");
    uint8_t *val = NULL;
    size_t len = 0;
    uint64_t v = 99;
    assert_int_equal(g_b->doc_get(st, n, &val, &len, &v), FP_NOT_FOUND);
    assert_int_equal(v, 0);
    assert_int_equal(g_b->doc_cas(st, n, 1, "a", 1, 60000, &v), FP_CONFLICT); /* absent */
    assert_int_equal(g_b->doc_cas(st, n, 0, "first", 5, 60000, &v), FP_OK);
    assert_int_equal(v, 1);
    assert_int_equal(g_b->doc_cas(st, n, 0, "again", 5, 60000, &v), FP_CONFLICT);
    assert_int_equal(g_b->doc_cas(st, n, 1, "se\0cond", 7, 60000, &v), FP_OK);
    assert_int_equal(v, 2);
    assert_int_equal(g_b->doc_cas(st, n, 1, "stale", 5, 60000, NULL), FP_CONFLICT);
    assert_int_equal(g_b->doc_get(st, n, &val, &len, &v), FP_OK);
    assert_int_equal(v, 2);
    assert_int_equal(len, 7);
    assert_memory_equal(val, "se\0cond", 7); /* binary, not cut at NUL */
    fp_free(val);
    assert_int_equal(g_b->doc_cas(st, n, 2, "", 0, 60000, &v), FP_OK); /* empty value */
    assert_int_equal(v, 3);
    assert_int_equal(g_b->doc_get(st, n, &val, &len, &v), FP_OK);
    assert_int_equal(len, 0);
    assert_int_equal(v, 3);
    fp_free(val);
    assert_int_equal(g_b->doc_del(st, n), FP_OK);
    assert_int_equal(g_b->doc_get(st, n, &val, &len, &v), FP_NOT_FOUND);
    assert_int_equal(g_b->doc_del(st, n), FP_OK); /* absent: still OK */
    assert_int_equal(g_b->doc_cas(st, n, 0, "new", 3, 60000, &v), FP_OK);
    assert_int_equal(v, 1);
    /* another kind of the same name is another thing */
    assert_int_equal(g_b->lease_take(st, n, "tok", 60000), FP_OK);
    assert_int_equal(g_b->doc_get(st, n, &val, &len, &v), FP_OK);
    fp_free(val);
    assert_int_equal(g_b->lease_drop(st, n, "tok"), FP_OK);
    assert_int_equal(g_b->doc_del(st, n), FP_OK);
}

typedef struct cas_ctx {
    state_handle *st;
    const char *name;
    int rounds;
    atomic_int conflicts;
    atomic_int errors;
} cas_ctx;

/* Increments the counter document `rounds` times, retrying on conflict. */
static void *cas_worker(void *arg)
{
    cas_ctx *c = arg;
    for (int i = 0; i < c->rounds; i++) {
        for (;;) {
            uint8_t *val = NULL;
            size_t len = 0;
            uint64_t v = 0;
            long n = 0;
            fp_err rc = g_b->doc_get(c->st, c->name, &val, &len, &v);
            if (rc == FP_OK) {
                char buf[32];
                snprintf(buf, sizeof buf, "%.*s", (int)len, (const char *)val);
                n = strtol(buf, NULL, 10);
                fp_free(val);
            } else if (rc != FP_NOT_FOUND) {
                atomic_fetch_add(&c->errors, 1);
                return NULL;
            }
            char out[32];
            int olen = snprintf(out, sizeof out, "%ld", n + 1);
            rc = g_b->doc_cas(c->st, c->name, v, out, (size_t)olen, 60000, NULL);
            if (rc == FP_OK)
                break;
            if (rc != FP_CONFLICT) {
                atomic_fetch_add(&c->errors, 1);
                return NULL;
            }
            atomic_fetch_add(&c->conflicts, 1);
        }
    }
    return NULL;
}

static void test_doc_cas_concurrent_no_lost_update(void **ts)
{
    enum { THREADS = 6, ROUNDS = 150 };
    char n[STATE_NAME_MAX + 1];
    cas_ctx c = {.st = *ts, .name = nm(n, "counter"), .rounds = ROUNDS};
    pthread_t t[THREADS];
    long long t0 = now_ms();
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, cas_worker, &c), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    long long dt = now_ms() - t0;
    assert_int_equal(atomic_load(&c.errors), 0);
    uint8_t *val = NULL;
    size_t len = 0;
    uint64_t v = 0;
    assert_int_equal(g_b->doc_get(c.st, c.name, &val, &len, &v), FP_OK);
    char buf[32];
    snprintf(buf, sizeof buf, "%.*s", (int)len, (const char *)val);
    fp_free(val);
    assert_int_equal(strtol(buf, NULL, 10), THREADS * ROUNDS);
    assert_int_equal(v, THREADS * ROUNDS);
    fprintf(stderr, "# %s: %d increments by %d threads in %lld ms, %d conflicts retried\n",
            g_b->name, THREADS * ROUNDS, THREADS, dt, atomic_load(&c.conflicts));
    assert_int_equal(g_b->doc_del(c.st, c.name), FP_OK);
}

static void test_doc_expiry(void **ts)
{
    state_handle *st = *ts;
    char n[STATE_NAME_MAX + 1];
    nm(n, "short");
    uint64_t v = 0;
    assert_int_equal(g_b->doc_cas(st, n, 0, "x", 1, 200, &v), FP_OK);
    uint8_t *val = NULL;
    size_t len = 0;
    assert_int_equal(g_b->doc_get(st, n, &val, &len, &v), FP_OK);
    fp_free(val);
    sleep_ms(400);
    assert_int_equal(g_b->doc_get(st, n, &val, &len, &v), FP_NOT_FOUND);
    assert_int_equal(g_b->doc_cas(st, n, 1, "y", 1, 200, &v), FP_CONFLICT); /* gone */
    assert_int_equal(g_b->doc_cas(st, n, 0, "y", 1, 60000, &v), FP_OK);
    assert_int_equal(v, 1);
    /* a write renews the expiry */
    assert_int_equal(g_b->doc_cas(st, n, 1, "z", 1, 300, &v), FP_OK);
    sleep_ms(150);
    assert_int_equal(g_b->doc_cas(st, n, 2, "z", 1, 300, &v), FP_OK);
    sleep_ms(200);
    assert_int_equal(g_b->doc_get(st, n, &val, &len, &v), FP_OK);
    assert_int_equal(v, 3);
    fp_free(val);
    assert_int_equal(g_b->doc_del(st, n), FP_OK);
}

/* ---- leases --------------------------------------------------------------- */

static void test_lease(void **ts)
{
    state_handle *st = *ts;
    char n[STATE_NAME_MAX + 1];
    nm(n, "lease");
    assert_int_equal(g_b->lease_renew(st, n, "A", 1000), FP_CONFLICT); /* not held */
    assert_int_equal(g_b->lease_take(st, n, "A", 60000), FP_OK);
    assert_int_equal(g_b->lease_take(st, n, "B", 60000), FP_CONFLICT);
    assert_int_equal(g_b->lease_take(st, n, "A", 60000), FP_OK); /* own: renewed */
    assert_int_equal(g_b->lease_renew(st, n, "B", 60000), FP_CONFLICT);
    assert_int_equal(g_b->lease_drop(st, n, "B"), FP_OK); /* wrong token: no effect */
    assert_int_equal(g_b->lease_take(st, n, "B", 60000), FP_CONFLICT);
    assert_int_equal(g_b->lease_renew(st, n, "A", 60000), FP_OK);
    assert_int_equal(g_b->lease_drop(st, n, "A"), FP_OK);
    assert_int_equal(g_b->lease_take(st, n, "B", 60000), FP_OK);
    assert_int_equal(g_b->lease_drop(st, n, "B"), FP_OK);
    assert_int_equal(g_b->lease_drop(st, n, "B"), FP_OK); /* not held: OK */

    /* a holder that dies: its lease expires and another takes it */
    nm(n, "lease-exp");
    assert_int_equal(g_b->lease_take(st, n, "dead", 200), FP_OK);
    assert_int_equal(g_b->lease_take(st, n, "live", 60000), FP_CONFLICT);
    sleep_ms(350);
    assert_int_equal(g_b->lease_take(st, n, "live", 60000), FP_OK);
    assert_int_equal(g_b->lease_renew(st, n, "dead", 60000), FP_CONFLICT); /* lost */
    assert_int_equal(g_b->lease_drop(st, n, "dead"), FP_OK);
    assert_int_equal(g_b->lease_take(st, n, "other", 60000), FP_CONFLICT); /* still live's */
    /* renewal keeps it past its first ttl */
    nm(n, "lease-renew");
    assert_int_equal(g_b->lease_take(st, n, "r", 300), FP_OK);
    sleep_ms(150);
    assert_int_equal(g_b->lease_renew(st, n, "r", 300), FP_OK);
    sleep_ms(200);
    assert_int_equal(g_b->lease_take(st, n, "x", 300), FP_CONFLICT);
    assert_int_equal(g_b->lease_drop(st, n, "r"), FP_OK);
    nm(n, "lease-exp");
    assert_int_equal(g_b->lease_drop(st, n, "live"), FP_OK);
}

/* ---- semaphores ----------------------------------------------------------- */

static void test_sem_limit_and_expiry(void **ts)
{
    state_handle *st = *ts;
    char n[STATE_NAME_MAX + 1];
    nm(n, "sem");
    long held = -1;
    assert_int_equal(g_b->sem_count(st, n, &held), FP_OK);
    assert_int_equal(held, 0);
    assert_int_equal(g_b->sem_take(st, n, 3, "t1", 60000), FP_OK);
    assert_int_equal(g_b->sem_take(st, n, 3, "t2", 60000), FP_OK);
    assert_int_equal(g_b->sem_take(st, n, 3, "t3", 60000), FP_OK);
    assert_int_equal(g_b->sem_take(st, n, 3, "t4", 60000), FP_CONFLICT);
    assert_int_equal(g_b->sem_take(st, n, 3, "t1", 60000), FP_OK); /* holder: renewed */
    assert_int_equal(g_b->sem_count(st, n, &held), FP_OK);
    assert_int_equal(held, 3);
    assert_int_equal(g_b->sem_renew(st, n, "t4", 60000), FP_CONFLICT);
    assert_int_equal(g_b->sem_renew(st, n, "t2", 60000), FP_OK);
    assert_int_equal(g_b->sem_drop(st, n, "t2"), FP_OK);
    assert_int_equal(g_b->sem_drop(st, n, "t2"), FP_OK); /* not held: OK */
    assert_int_equal(g_b->sem_count(st, n, &held), FP_OK);
    assert_int_equal(held, 2);
    assert_int_equal(g_b->sem_take(st, n, 3, "t4", 60000), FP_OK);
    assert_int_equal(g_b->sem_take(st, n, 3, "t5", 60000), FP_CONFLICT);
    static const char *const holders[] = {"t1", "t3", "t4"};
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(g_b->sem_drop(st, n, holders[i]), FP_OK);

    /* holders that die free their slots by themselves */
    nm(n, "sem-exp");
    assert_int_equal(g_b->sem_take(st, n, 2, "d1", 200), FP_OK);
    assert_int_equal(g_b->sem_take(st, n, 2, "d2", 60000), FP_OK);
    assert_int_equal(g_b->sem_take(st, n, 2, "x", 60000), FP_CONFLICT);
    sleep_ms(350);
    assert_int_equal(g_b->sem_count(st, n, &held), FP_OK);
    assert_int_equal(held, 1);
    assert_int_equal(g_b->sem_renew(st, n, "d1", 60000), FP_CONFLICT);
    assert_int_equal(g_b->sem_take(st, n, 2, "x", 60000), FP_OK);
    assert_int_equal(g_b->sem_drop(st, n, "x"), FP_OK);
    assert_int_equal(g_b->sem_drop(st, n, "d2"), FP_OK);
    assert_int_equal(g_b->sem_count(st, n, &held), FP_OK);
    assert_int_equal(held, 0);
}

typedef struct sem_ctx {
    state_handle *st;
    const char *name;
    long limit;
    atomic_int inside, peak, grants, errors, next_id;
} sem_ctx;

static void *sem_worker(void *arg)
{
    sem_ctx *c = arg;
    char tok[32];
    snprintf(tok, sizeof tok, "w%d", atomic_fetch_add(&c->next_id, 1));
    for (int i = 0; i < 60; i++) {
        fp_err rc = g_b->sem_take(c->st, c->name, c->limit, tok, 60000);
        if (rc == FP_CONFLICT) {
            sleep_ms(1);
            continue;
        }
        if (rc != FP_OK) {
            atomic_fetch_add(&c->errors, 1);
            return NULL;
        }
        int now = atomic_fetch_add(&c->inside, 1) + 1;
        int peak = atomic_load(&c->peak);
        while (now > peak && !atomic_compare_exchange_weak(&c->peak, &peak, now))
            ;
        atomic_fetch_add(&c->grants, 1);
        long held = 0;
        if (g_b->sem_count(c->st, c->name, &held) != FP_OK || held > c->limit)
            atomic_fetch_add(&c->errors, 1);
        sleep_ms(2);
        atomic_fetch_sub(&c->inside, 1);
        if (g_b->sem_drop(c->st, c->name, tok) != FP_OK)
            atomic_fetch_add(&c->errors, 1);
    }
    return NULL;
}

static void test_sem_limit_under_concurrency(void **ts)
{
    enum { THREADS = 8 };
    char n[STATE_NAME_MAX + 1];
    sem_ctx c = {.st = *ts, .name = nm(n, "sem-conc"), .limit = 3};
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, sem_worker, &c), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&c.errors), 0);
    assert_true(atomic_load(&c.peak) <= 3);
    assert_true(atomic_load(&c.peak) >= 2); /* it did run concurrently */
    assert_true(atomic_load(&c.grants) > 0);
    long held = -1;
    assert_int_equal(g_b->sem_count(c.st, c.name, &held), FP_OK);
    assert_int_equal(held, 0);
}

/* ---- streams -------------------------------------------------------------- */

typedef struct collect {
    int n, stop_after;
    char ids[64][STATE_ID_MAX];
    char vals[64][32];
} collect;

static int collect_fn(void *ud, const state_event *ev)
{
    collect *c = ud;
    if (c->n < 64) {
        snprintf(c->ids[c->n], STATE_ID_MAX, "%s", ev->id);
        snprintf(c->vals[c->n], 32, "%.*s", (int)ev->len, (const char *)ev->val);
    }
    c->n++;
    return c->stop_after && c->n >= c->stop_after;
}

static int count_fn(void *ud, const state_event *ev)
{
    (void)ev;
    (*(int *)ud)++;
    return 0;
}

static void test_stream_add_read_replay(void **ts)
{
    state_handle *st = *ts;
    char n[STATE_NAME_MAX + 1], ids[5][STATE_ID_MAX], last[STATE_ID_MAX], first[STATE_ID_MAX];
    nm(n, "stream");
    assert_int_equal(g_b->stream_first(st, n, first), FP_OK);
    assert_string_equal(first, "0-0");
    collect c = {0};
    assert_int_equal(g_b->stream_read(st, n, "0-0", 10, 0, collect_fn, &c, last), FP_OK);
    assert_int_equal(c.n, 0);
    assert_string_equal(last, "0-0");
    for (int i = 0; i < 5; i++) {
        char v[8];
        int len = snprintf(v, sizeof v, "e%d", i);
        assert_int_equal(g_b->stream_add(st, n, NULL, v, (size_t)len, 100, 60000, ids[i]), FP_OK);
        if (i)
            assert_true(state_id_cmp(ids[i - 1], ids[i]) < 0);
    }
    assert_int_equal(g_b->stream_first(st, n, first), FP_OK);
    assert_string_equal(first, ids[0]);
    memset(&c, 0, sizeof c);
    assert_int_equal(g_b->stream_read(st, n, "0-0", 100, 0, collect_fn, &c, last), FP_OK);
    assert_int_equal(c.n, 5);
    for (int i = 0; i < 5; i++) {
        assert_string_equal(c.ids[i], ids[i]);
        char v[8];
        snprintf(v, sizeof v, "e%d", i);
        assert_string_equal(c.vals[i], v);
    }
    assert_string_equal(last, ids[4]);
    /* replay after an id (Last-Event-ID) */
    memset(&c, 0, sizeof c);
    assert_int_equal(g_b->stream_read(st, n, ids[2], 100, 0, collect_fn, &c, last), FP_OK);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.ids[0], ids[3]);
    assert_string_equal(last, ids[4]);
    /* max */
    memset(&c, 0, sizeof c);
    assert_int_equal(g_b->stream_read(st, n, "0-0", 2, 0, collect_fn, &c, last), FP_OK);
    assert_int_equal(c.n, 2);
    assert_string_equal(last, ids[1]);
    /* the callback stops the read: last is the last one it was given */
    memset(&c, 0, sizeof c);
    c.stop_after = 1;
    assert_int_equal(g_b->stream_read(st, n, ids[0], 100, 0, collect_fn, &c, last), FP_OK);
    assert_int_equal(c.n, 1);
    assert_string_equal(last, ids[1]);
    /* after the newest: nothing, last unchanged */
    memset(&c, 0, sizeof c);
    assert_int_equal(g_b->stream_read(st, n, ids[4], 100, 0, collect_fn, &c, last), FP_OK);
    assert_int_equal(c.n, 0);
    assert_string_equal(last, ids[4]);
    /* "$": nothing now, last = the newest id */
    assert_int_equal(g_b->stream_read(st, n, "$", 100, 0, collect_fn, &c, last), FP_OK);
    assert_int_equal(c.n, 0);
    assert_string_equal(last, ids[4]);
    /* a stream of another name is another stream */
    char n2[STATE_NAME_MAX + 1];
    assert_int_equal(g_b->stream_read(st, nm(n2, "stream2"), "0-0", 100, 0, collect_fn, &c,
                                      last), FP_OK);
    assert_int_equal(c.n, 0);
}

static void test_stream_explicit_ids(void **ts)
{
    state_handle *st = *ts;
    char n[STATE_NAME_MAX + 1], id[STATE_ID_MAX];
    nm(n, "explicit");
    assert_int_equal(g_b->stream_add(st, n, "0-0", "a", 1, 100, 60000, id), FP_CONFLICT);
    assert_int_equal(g_b->stream_add(st, n, "5-1", "a", 1, 100, 60000, id), FP_OK);
    assert_string_equal(id, "5-1");
    assert_int_equal(g_b->stream_add(st, n, "5-1", "b", 1, 100, 60000, id), FP_CONFLICT);
    assert_int_equal(g_b->stream_add(st, n, "4-9", "b", 1, 100, 60000, id), FP_CONFLICT);
    assert_int_equal(g_b->stream_add(st, n, "5-2", "b", 1, 100, 60000, id), FP_OK);
    assert_string_equal(id, "5-2");
    /* an automatic id after a future explicit one still grows */
    assert_int_equal(g_b->stream_add(st, n, "99999999999999-7", "c", 1, 100, 60000, id), FP_OK);
    assert_int_equal(g_b->stream_add(st, n, NULL, "d", 1, 100, 60000, id), FP_OK);
    assert_true(state_id_cmp(id, "99999999999999-7") > 0);
    collect c = {0};
    char last[STATE_ID_MAX];
    assert_int_equal(g_b->stream_read(st, n, "0-0", 100, 0, collect_fn, &c, last), FP_OK);
    assert_int_equal(c.n, 4);
    assert_string_equal(c.vals[0], "a");
    assert_string_equal(c.vals[1], "b");
    assert_string_equal(c.vals[3], "d");
}

static void test_stream_trim_and_expiry(void **ts)
{
    state_handle *st = *ts;
    char n[STATE_NAME_MAX + 1], first_id[STATE_ID_MAX], id[STATE_ID_MAX], last[STATE_ID_MAX];
    char newest[10][STATE_ID_MAX];
    nm(n, "trim");
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(g_b->stream_add(st, n, NULL, "x", 1, 10, 60000, id), FP_OK);
        if (i == 0)
            memcpy(first_id, id, sizeof id);
        if (i >= 990)
            memcpy(newest[i - 990], id, sizeof id);
    }
    int kept = 0;
    assert_int_equal(g_b->stream_read(st, n, "0-0", 10000, 0, count_fn, &kept, last), FP_OK);
    /* at least the newest 10; Redis trims whole nodes (MAXLEN ~) */
    assert_true(kept >= 10);
    assert_true(kept <= 10 + 100);
    assert_string_equal(last, newest[9]);
    char first[STATE_ID_MAX];
    assert_int_equal(g_b->stream_first(st, n, first), FP_OK);
    assert_true(state_id_cmp(first, first_id) > 0);
    assert_true(state_id_cmp(first, newest[0]) <= 0);
    /* the newest ten are all there after newest[0]'s predecessor */
    collect c = {0};
    assert_int_equal(g_b->stream_read(st, n, first, 10000, 0, collect_fn, &c, last), FP_OK);
    assert_true(c.n >= 9);

    /* a stream expires ttl after its last append */
    nm(n, "stream-exp");
    assert_int_equal(g_b->stream_add(st, n, NULL, "x", 1, 10, 250, id), FP_OK);
    sleep_ms(150);
    assert_int_equal(g_b->stream_add(st, n, NULL, "y", 1, 10, 250, id), FP_OK);
    sleep_ms(150);
    kept = 0;
    assert_int_equal(g_b->stream_read(st, n, "0-0", 100, 0, count_fn, &kept, last), FP_OK);
    assert_int_equal(kept, 2);
    sleep_ms(250);
    kept = 0;
    assert_int_equal(g_b->stream_read(st, n, "0-0", 100, 0, count_fn, &kept, last), FP_OK);
    assert_int_equal(kept, 0);
    assert_int_equal(g_b->stream_first(st, n, first), FP_OK);
    assert_string_equal(first, "0-0");
}

typedef struct reader_ctx {
    state_handle *st;
    const char *name;
    char after[STATE_ID_MAX];
    long block_ms;
    collect got;
    char last[STATE_ID_MAX];
    fp_err rc;
    long long took_ms;
    atomic_int started;
} reader_ctx;

static void *reader(void *arg)
{
    reader_ctx *r = arg;
    atomic_store(&r->started, 1);
    long long t0 = now_ms();
    r->rc = g_b->stream_read(r->st, r->name, r->after, 100, r->block_ms, collect_fn, &r->got,
                             r->last);
    r->took_ms = now_ms() - t0;
    return NULL;
}

static void test_stream_blocking_read(void **ts)
{
    state_handle *st = *ts;
    char n[STATE_NAME_MAX + 1], id[STATE_ID_MAX];
    nm(n, "block");
    assert_int_equal(g_b->stream_add(st, n, NULL, "old", 3, 100, 60000, id), FP_OK);

    /* nothing comes: returns after about block_ms, nothing passed */
    collect c = {0};
    char last[STATE_ID_MAX];
    long long t0 = now_ms();
    assert_int_equal(g_b->stream_read(st, n, id, 100, 300, collect_fn, &c, last), FP_OK);
    long long dt = now_ms() - t0;
    assert_int_equal(c.n, 0);
    assert_string_equal(last, id);
    assert_true(dt >= 250 && dt < 2000);

    /* woken by an add from another thread, well before the block ends */
    reader_ctx r = {.st = st, .name = n, .block_ms = 5000};
    snprintf(r.after, sizeof r.after, "%s", id);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, reader, &r), 0);
    while (!atomic_load(&r.started))
        sleep_ms(1);
    sleep_ms(150);
    char nid[STATE_ID_MAX];
    assert_int_equal(g_b->stream_add(st, n, NULL, "new", 3, 100, 60000, nid), FP_OK);
    pthread_join(t, NULL);
    assert_int_equal(r.rc, FP_OK);
    assert_int_equal(r.got.n, 1);
    assert_string_equal(r.got.vals[0], "new");
    assert_string_equal(r.last, nid);
    assert_true(r.took_ms < 2500);

    /* "$" with a block: only what is added after the call */
    reader_ctx d = {.st = st, .name = n, .block_ms = 5000};
    snprintf(d.after, sizeof d.after, "$");
    assert_int_equal(pthread_create(&t, NULL, reader, &d), 0);
    while (!atomic_load(&d.started))
        sleep_ms(1);
    sleep_ms(150);
    assert_int_equal(g_b->stream_add(st, n, NULL, "later", 5, 100, 60000, nid), FP_OK);
    pthread_join(t, NULL);
    assert_int_equal(d.rc, FP_OK);
    assert_int_equal(d.got.n, 1);
    assert_string_equal(d.got.vals[0], "later");
    assert_string_equal(d.last, nid);
}

/* Many readers blocked at once (more than the Redis pool's 16 ordinary
 * connections) do not hold up other calls, and one add wakes them all. */
static void test_blocked_readers_do_not_starve(void **ts)
{
    enum { READERS = 24 };
    state_handle *st = *ts;
    char n[STATE_NAME_MAX + 1], d[STATE_NAME_MAX + 1], id[STATE_ID_MAX];
    nm(n, "many");
    nm(d, "many-doc");
    assert_int_equal(g_b->stream_add(st, n, NULL, "0", 1, 100, 60000, id), FP_OK);
    reader_ctx *r = fp_calloc(READERS, sizeof *r);
    pthread_t t[READERS];
    for (int i = 0; i < READERS; i++) {
        r[i].st = st;
        r[i].name = n;
        r[i].block_ms = 6000;
        snprintf(r[i].after, sizeof r[i].after, "%s", id);
        assert_int_equal(pthread_create(&t[i], NULL, reader, &r[i]), 0);
    }
    for (int i = 0; i < READERS; i++)
        while (!atomic_load(&r[i].started))
            sleep_ms(1);
    sleep_ms(200);
    long long t0 = now_ms();
    uint64_t v = 0;
    for (int i = 0; i < 50; i++)
        assert_int_equal(g_b->doc_cas(st, d, v, "x", 1, 60000, &v), FP_OK);
    long long dt = now_ms() - t0;
    assert_true(dt < 1500);
    assert_int_equal(g_b->stream_add(st, n, NULL, "go", 2, 100, 60000, id), FP_OK);
    for (int i = 0; i < READERS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(r[i].rc, FP_OK);
        assert_int_equal(r[i].got.n, 1);
        assert_string_equal(r[i].got.vals[0], "go");
        assert_true(r[i].took_ms < 5000);
    }
    fp_free(r);
    assert_int_equal(g_b->doc_del(st, d), FP_OK);
}

typedef struct tp_ctx {
    state_handle *st;
    char name[STATE_NAME_MAX + 1];
    int rounds, ok;
} tp_ctx;

/* rounds x (doc_cas + sem_take + sem_drop) on names of its own */
static void *tp_worker(void *arg)
{
    tp_ctx *c = arg;
    uint64_t v = 0;
    for (int i = 0; i < c->rounds; i++)
        if (g_b->doc_cas(c->st, c->name, v, "x", 1, 60000, &v) == FP_OK &&
            g_b->sem_take(c->st, c->name, 4, "tok", 60000) == FP_OK &&
            g_b->sem_drop(c->st, c->name, "tok") == FP_OK)
            c->ok++;
    (void)g_b->doc_del(c->st, c->name);
    return NULL;
}

/* A few numbers for docs/architecture.md: one thread, a tight loop; then
 * four threads. */
static void test_measure(void **ts)
{
    state_handle *st = *ts;
    char n[STATE_NAME_MAX + 1], s[STATE_NAME_MAX + 1], x[STATE_NAME_MAX + 1];
    nm(n, "bench-doc");
    nm(s, "bench-sem");
    nm(x, "bench-stream");
    enum { N = 2000 };
    uint64_t v = 0;
    double t0 = now_us();
    for (int i = 0; i < N; i++)
        assert_int_equal(g_b->doc_cas(st, n, v, "0123456789abcdef", 16, 60000, &v), FP_OK);
    double t1 = now_us();
    for (int i = 0; i < N; i++) {
        assert_int_equal(g_b->sem_take(st, s, 8, "tok", 60000), FP_OK);
        assert_int_equal(g_b->sem_drop(st, s, "tok"), FP_OK);
    }
    double t2 = now_us();
    for (int i = 0; i < N; i++)
        assert_int_equal(g_b->stream_add(st, x, NULL, "ev", 2, 1000, 60000, NULL), FP_OK);
    double t3 = now_us();
    for (int i = 0; i < N; i++)
        assert_int_equal(g_b->lease_take(st, n, "tok", 60000), FP_OK);
    double t4 = now_us();
    /* throughput: 4 threads, each its own semaphore and document */
    enum { T = 4, M = 1000 };
    tp_ctx tc[T];
    pthread_t th[T];
    double t5 = now_us();
    for (int i = 0; i < T; i++) {
        tc[i].st = st;
        tc[i].rounds = M;
        tc[i].ok = 0;
        snprintf(tc[i].name, sizeof tc[i].name, "t:%s:tp%d", g_run, i);
        assert_int_equal(pthread_create(&th[i], NULL, tp_worker, &tc[i]), 0);
    }
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(tc[i].ok, M);
    }
    double t6 = now_us();
    double secs = (t6 - t5) / 1e6;
    fprintf(stderr, "# %s, %d threads x %d rounds of doc_cas+sem_take+sem_drop: %.0f calls/s\n",
            g_b->name, T, M, 3.0 * T * M / secs);
    fprintf(stderr,
            "# %s, one thread, %d each: doc_cas %.1f us, sem_take+sem_drop %.1f us, "
            "stream_add %.1f us, lease_take (held) %.1f us\n",
            g_b->name, N, (t1 - t0) / N, (t2 - t1) / N, (t3 - t2) / N, (t4 - t3) / N);
    assert_int_equal(g_b->doc_del(st, n), FP_OK);
    assert_int_equal(g_b->lease_drop(st, n, "tok"), FP_OK);
}

int main(int argc, char **argv)
{
    const char *which = argc > 1 ? argv[1] : "inproc";
    if (strcmp(which, "redis") == 0) {
        const char *envf = getenv("FP_SERVICES_ENV");
        g_url = svc_env_read(envf, "FILMPICKER_CACHE");
        if (!g_url) {
            fprintf(stderr, "no FILMPICKER_CACHE in %s (FP_SERVICES_ENV): the services "
                            "fixture did not start Redis\n", envf ? envf : "(unset)");
            return 1;
        }
        g_b = &state_backend_redis;
    } else {
        g_url = fp_strdup("inproc");
        g_b = &state_backend_inproc;
    }
    if (sodium_init() < 0)
        return 1;
    snprintf(g_run, sizeof g_run, "%d-%08x", (int)getpid(), randombytes_random());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backend_for_and_ids),
        cmocka_unit_test_setup_teardown(test_arguments_checked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_doc_cas_versions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_doc_cas_concurrent_no_lost_update, setup, teardown),
        cmocka_unit_test_setup_teardown(test_doc_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sem_limit_and_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sem_limit_under_concurrency, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_add_read_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_explicit_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_trim_and_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_blocking_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blocked_readers_do_not_starve, setup, teardown),
        cmocka_unit_test_setup_teardown(test_measure, setup, teardown),
    };
    int rc = cmocka_run_group_tests_name(g_b->name, tests, NULL, NULL);
    fp_free(g_url);
    return rc;
}

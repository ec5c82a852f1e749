/*
 * Unit tests for fetch.c against an in-test libmicrohttpd server on a free
 * loopback port: per-host concurrency limit, exactly-once delivery, retries
 * with Retry-After, timeouts, body limits, network errors, shutdown.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/mem.h"
#include "fetch.h"

static atomic_int srv_in_flight, srv_peak, srv_hits_429, srv_hits_total;
static atomic_int srv_hits_page[64];
static struct MHD_Daemon *srv;
static int srv_port;

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static enum MHD_Result srv_answer(struct MHD_Connection *c, unsigned status, const char *body,
                                  const char *hname, const char *hval)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (hname)
        MHD_add_response_header(r, hname, hval);
    enum MHD_Result ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result srv_handler(void *cls, struct MHD_Connection *c, const char *url,
                                   const char *method, const char *version, const char *up,
                                   size_t *upsize, void **ctx)
{
    (void)cls, (void)method, (void)version, (void)up, (void)upsize;
    if (!*ctx) {
        *ctx = (void *)1;
        return MHD_YES;
    }
    atomic_fetch_add(&srv_hits_total, 1);
    int now = atomic_fetch_add(&srv_in_flight, 1) + 1;
    int peak = atomic_load(&srv_peak);
    while (now > peak && !atomic_compare_exchange_weak(&srv_peak, &peak, now))
        ;
    enum MHD_Result ok;
    int page = 0;
    if (strncmp(url, "/page/", 6) == 0) {
        page = (int)strtol(url + 6, NULL, 10);
        if (page >= 0 && page < 64)
            atomic_fetch_add(&srv_hits_page[page], 1);
        sleep_ms(30);
        char body[64];
        snprintf(body, sizeof body, "page %d", page);
        ok = srv_answer(c, 200, body, NULL, NULL);
    } else if (strcmp(url, "/429") == 0) {
        if (atomic_fetch_add(&srv_hits_429, 1) == 0)
            ok = srv_answer(c, 429, "slow down", "Retry-After", "1");
        else
            ok = srv_answer(c, 200, "fine now", NULL, NULL);
    } else if (strcmp(url, "/503") == 0) {
        ok = srv_answer(c, 503, "down", NULL, NULL);
    } else if (strcmp(url, "/404") == 0) {
        ok = srv_answer(c, 404, "no", NULL, NULL);
    } else if (strcmp(url, "/challenge") == 0) {
        ok = srv_answer(c, 403, "Just a moment...", "cf-mitigated", "challenge");
    } else if (strcmp(url, "/slow") == 0) {
        sleep_ms(1500);
        ok = srv_answer(c, 200, "late", NULL, NULL);
    } else if (strcmp(url, "/big") == 0) {
        size_t n = 300 * 1024;
        char *big = malloc(n + 1);
        memset(big, 'x', n);
        big[n] = '\0';
        ok = srv_answer(c, 200, big, NULL, NULL);
        free(big);
    } else {
        ok = srv_answer(c, 404, "?", NULL, NULL);
    }
    atomic_fetch_sub(&srv_in_flight, 1);
    return ok;
}

static int setup(void **state)
{
    (void)state;
    srv = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0,
                           NULL, NULL, srv_handler, NULL, MHD_OPTION_END);
    if (!srv)
        return -1;
    srv_port = MHD_get_daemon_info(srv, MHD_DAEMON_INFO_BIND_PORT)->port;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    MHD_stop_daemon(srv);
    return 0;
}

static fetch_options opts(void)
{
    fetch_options o = {.max_per_host = 4,
                       .timeout_ms = 5000,
                       .retries = 2,
                       .backoff_ms = 50,
                       .retry_after_max_ms = 3000,
                       .max_body = 1024 * 1024,
                       .user_agent = "FilmPicker-test"};
    return o;
}

static char *url(const char *path)
{
    return fp_printf("http://127.0.0.1:%d%s", srv_port, path);
}

static fetch_response *fetch_one(fetch_client *c, const char *path)
{
    fetch_batch *b = fetch_batch_new(c);
    char *u = url(path);
    assert_int_equal(fetch_batch_add(b, u, 7), FP_OK);
    fp_free(u);
    int tag = 0;
    fetch_response *r = fetch_batch_next(b, &tag);
    assert_non_null(r);
    assert_int_equal(tag, 7);
    assert_null(fetch_batch_next(b, NULL));
    fetch_batch_free(&b);
    return r;
}

static void test_per_host_limit_and_exactly_once(void **state)
{
    (void)state;
    fetch_client *c = NULL;
    fetch_options o = opts();
    assert_int_equal(fetch_client_new(&o, &c), FP_OK);
    atomic_store(&srv_peak, 0);
    for (int i = 0; i < 64; i++)
        atomic_store(&srv_hits_page[i], 0);
    fetch_batch *b = fetch_batch_new(c);
    for (int i = 1; i <= 40; i++) {
        char path[32];
        snprintf(path, sizeof path, "/page/%d", i);
        char *u = url(path);
        assert_int_equal(fetch_batch_add(b, u, i), FP_OK);
        fp_free(u);
    }
    int seen[41] = {0}, tag = 0, n = 0;
    fetch_response *r;
    while ((r = fetch_batch_next(b, &tag))) {
        assert_int_equal(r->err, FP_OK);
        assert_int_equal(r->status, 200);
        char want[32];
        snprintf(want, sizeof want, "page %d", tag);
        assert_string_equal(r->body, want);
        seen[tag]++;
        n++;
        fetch_response_free(&r);
    }
    assert_int_equal(n, 40);
    for (int i = 1; i <= 40; i++) {
        assert_int_equal(seen[i], 1);
        assert_int_equal(atomic_load(&srv_hits_page[i]), 1);
    }
    /* 40 requests of 30 ms each: the limit is reached, never passed. */
    assert_int_equal(atomic_load(&srv_peak), 4);
    fetch_stats st;
    fetch_get_stats(c, &st);
    assert_int_equal(st.in_flight, 0);
    assert_int_equal(st.queued, 0);
    fetch_batch_free(&b);
    fetch_client_free(&c);
    assert_null(c);
}

static void test_retry_after_is_honoured(void **state)
{
    (void)state;
    fetch_client *c = NULL;
    fetch_options o = opts();
    assert_int_equal(fetch_client_new(&o, &c), FP_OK);
    atomic_store(&srv_hits_429, 0);
    long long t0 = now_ms();
    fetch_response *r = fetch_one(c, "/429");
    long long took = now_ms() - t0;
    assert_int_equal(r->err, FP_OK);
    assert_int_equal(r->status, 200);
    assert_string_equal(r->body, "fine now");
    assert_int_equal(r->attempts, 2);
    assert_true(took >= 950); /* waited out Retry-After: 1 */
    fetch_response_free(&r);
    fetch_client_free(&c);
}

static void test_server_errors_retry_then_give_up(void **state)
{
    (void)state;
    fetch_client *c = NULL;
    fetch_options o = opts();
    assert_int_equal(fetch_client_new(&o, &c), FP_OK);
    fetch_response *r = fetch_one(c, "/503");
    assert_int_equal(r->err, FP_OK);
    assert_int_equal(r->status, 503);
    assert_int_equal(r->attempts, 3);
    fetch_response_free(&r);
    /* 404 and 403 are answers, not retried */
    r = fetch_one(c, "/404");
    assert_int_equal(r->status, 404);
    assert_int_equal(r->attempts, 1);
    fetch_response_free(&r);
    r = fetch_one(c, "/challenge");
    assert_int_equal(r->status, 403);
    assert_int_equal(r->challenge, 1);
    assert_int_equal(r->attempts, 1);
    fetch_response_free(&r);
    fetch_stats st;
    fetch_get_stats(c, &st);
    assert_int_equal(st.retries, 2);
    fetch_client_free(&c);
}

typedef struct retry_log {
    int n;
    fp_err err[8];
    long status[8];
    int attempt[8];
} retry_log;

static void note_retry(void *ud, fp_err err, long status, int attempt, long delay_ms)
{
    retry_log *lg = ud;
    assert_true(delay_ms >= 0);
    if (lg->n < 8) {
        lg->err[lg->n] = err;
        lg->status[lg->n] = status;
        lg->attempt[lg->n] = attempt;
    }
    lg->n++;
}

/* A batch hears of the retries, with the reason, before the final answer,
 * on the thread that waits for it. */
static void test_batch_retry_notices(void **state)
{
    (void)state;
    fetch_client *c = NULL;
    fetch_options o = opts();
    assert_int_equal(fetch_client_new(&o, &c), FP_OK);
    atomic_store(&srv_hits_429, 0);
    retry_log lg = {0};
    fetch_batch *b = fetch_batch_new(c);
    fetch_batch_on_retry(b, note_retry, &lg);
    char *u = url("/503");
    assert_int_equal(fetch_batch_add(b, u, 1), FP_OK);
    fp_free(u);
    fetch_response *r = fetch_batch_next(b, NULL);
    assert_int_equal(r->status, 503);
    assert_int_equal(r->attempts, 3);
    fetch_response_free(&r);
    /* two retries, then it gave up; told on this thread, in order (two that
     * come while the first is being told are told once, with the latest) */
    int n = lg.n;
    assert_true(n == 1 || n == 2);
    for (int i = 0; i < n; i++) {
        assert_int_equal(lg.err[i], FP_UPSTREAM);
        assert_int_equal(lg.status[i], 503);
    }
    assert_int_equal(lg.attempt[n - 1], 2);
    u = url("/429");
    assert_int_equal(fetch_batch_add(b, u, 2), FP_OK);
    fp_free(u);
    r = fetch_batch_next(b, NULL);
    assert_int_equal(r->status, 200);
    fetch_response_free(&r);
    assert_int_equal(lg.n, n + 1);
    assert_int_equal(lg.err[n], FP_UPSTREAM_LIMITED);
    assert_int_equal(lg.status[n], 429);
    /* a plain answer tells nothing */
    u = url("/404");
    assert_int_equal(fetch_batch_add(b, u, 3), FP_OK);
    fp_free(u);
    r = fetch_batch_next(b, NULL);
    assert_int_equal(r->status, 404);
    fetch_response_free(&r);
    assert_int_equal(lg.n, n + 1);
    fetch_batch_free(&b);
    fetch_client_free(&c);
}

static void test_timeout_and_body_limit(void **state)
{
    (void)state;
    fetch_client *c = NULL;
    fetch_options o = opts();
    o.timeout_ms = 300;
    o.retries = 1;
    o.max_body = 100 * 1024;
    assert_int_equal(fetch_client_new(&o, &c), FP_OK);
    fetch_response *r = fetch_one(c, "/slow");
    assert_int_equal(r->err, FP_TIMEOUT);
    assert_int_equal(r->attempts, 2);
    fetch_response_free(&r);
    r = fetch_one(c, "/big");
    assert_int_equal(r->err, FP_TOO_LARGE);
    assert_int_equal(r->attempts, 1);
    fetch_response_free(&r);
    fetch_client_free(&c);
}

static void test_network_error_and_bad_url(void **state)
{
    (void)state;
    fetch_client *c = NULL;
    fetch_options o = opts();
    o.retries = 1;
    assert_int_equal(fetch_client_new(&o, &c), FP_OK);
    fetch_batch *b = fetch_batch_new(c);
    /* port 1 on loopback: connection refused */
    assert_int_equal(fetch_batch_add(b, "http://127.0.0.1:1/x", 1), FP_OK);
    fetch_response *r = fetch_batch_next(b, NULL);
    assert_int_equal(r->err, FP_UPSTREAM);
    assert_int_equal(r->status, 0);
    assert_int_equal(r->attempts, 2);
    fetch_response_free(&r);
    assert_int_equal(fetch_batch_add(b, "not a url", 2), FP_INVALID);
    assert_null(fetch_batch_next(b, NULL));
    fetch_batch_free(&b);
    fetch_client_free(&c);
}

static void test_shutdown_completes_everything(void **state)
{
    (void)state;
    fetch_client *c = NULL;
    fetch_options o = opts();
    o.max_per_host = 1;
    assert_int_equal(fetch_client_new(&o, &c), FP_OK);
    fetch_batch *b = fetch_batch_new(c);
    for (int i = 0; i < 5; i++) {
        char *u = url("/slow");
        assert_int_equal(fetch_batch_add(b, u, i), FP_OK);
        fp_free(u);
    }
    sleep_ms(100);
    fetch_client_free(&c); /* one running, four queued */
    int n = 0, unavailable = 0;
    fetch_response *r;
    while ((r = fetch_batch_next(b, NULL))) {
        n++;
        unavailable += r->err == FP_UNAVAILABLE;
        fetch_response_free(&r);
    }
    assert_int_equal(n, 5);
    assert_int_equal(unavailable, 5);
    fetch_batch_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_per_host_limit_and_exactly_once),
        cmocka_unit_test(test_retry_after_is_honoured),
        cmocka_unit_test(test_server_errors_retry_then_give_up),
        cmocka_unit_test(test_batch_retry_notices),
        cmocka_unit_test(test_timeout_and_body_limit),
        cmocka_unit_test(test_network_error_and_bad_url),
        cmocka_unit_test(test_shutdown_completes_everything),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/*
 * The RabbitMQ job queue (queue_amqp.c) against a real RabbitMQ 3.10.
 *
 * Without arguments (CTest scaled.test_queue_amqp, fixture `services`): the
 * broker the fixture started (FILMPICKER_QUEUE in the file FP_SERVICES_ENV
 * names; a missing file fails). Each test uses its own queue names
 * (?queue=fptest.<pid>.<n>) and deletes them at the end, so tests sharing
 * the broker do not see each other's jobs:
 *   - publish N with confirms, consume with prefetch and two consumers, each
 *     job acknowledged once, the broker's count back to 0;
 *   - a handler that asks to retry twice: attempts 1, 2, 3 with the backoff;
 *   - a poison job (always retry) and a given-up job end in NAME.dead with
 *     x-fp-reason, x-fp-attempts and x-fp-verdict;
 *   - a consumer process killed with SIGKILL inside its handler: the job is
 *     redelivered to another consumer (redelivered, attempt 2), finishes and
 *     is acknowledged exactly once;
 *   - no broker at the address: submit fails with FP_UNAVAILABLE within its
 *     timeout, and at once while the outage lasts.
 *
 * With the argument "restart" (CTest scaled.test_queue_amqp_restart): its own
 * RabbitMQ under $FP_RESTART_DIR (scripts/services.sh start DIR rabbitmq),
 * not the fixture's, so that stopping it cannot break the other scaled tests
 * running beside it: jobs confirmed, RabbitMQ stopped (a consumer is inside
 * its handler), a submit during the outage fails within its bound, RabbitMQ
 * started again: the publisher and the consumer reconnect by themselves and
 * every job is consumed, the interrupted one again.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <amqp.h>
#include <amqp_tcp_socket.h>

#include "core/mem.h"
#include "queue/queue.h"

static char t_base_url[512]; /* amqp://... of the broker, without a query */
static int t_seq;

static long long t_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void t_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Reads FILMPICKER_QUEUE from an exports text into t_base_url. */
static int t_take_queue_url(FILE *f)
{
    char line[1024];
    int found = 0;
    while (fgets(line, sizeof line, f)) {
        const char *p = strstr(line, "FILMPICKER_QUEUE=");
        if (!p)
            continue;
        p += strlen("FILMPICKER_QUEUE=");
        size_t n = strcspn(p, "\r\n");
        if (n >= sizeof t_base_url)
            return 0;
        memcpy(t_base_url, p, n);
        t_base_url[n] = '\0';
        found = 1;
    }
    return found;
}

static int t_setup_fixture(void **state)
{
    (void)state;
    const char *env = getenv("FP_SERVICES_ENV");
    if (!env) {
        fprintf(stderr, "FP_SERVICES_ENV is not set (run through ctest)\n");
        return -1;
    }
    FILE *f = fopen(env, "r");
    if (!f) {
        fprintf(stderr, "%s: missing (did services.start fail?)\n", env);
        return -1;
    }
    int ok = t_take_queue_url(f);
    fclose(f);
    return ok ? 0 : -1;
}

/* A queue URL with its own names: base?queue=fptest.<pid>.<n>. */
static void t_new_names(char *url, size_t usize, char *name, size_t nsize)
{
    snprintf(name, nsize, "fptest.%ld.%d", (long)getpid(), ++t_seq);
    snprintf(url, usize, "%s?queue=%s", t_base_url, name);
}

/* ---- inspection through plain rabbitmq-c -------------------------------- */

static amqp_connection_state_t t_connect(void)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", t_base_url);
    struct amqp_connection_info ci;
    assert_int_equal(amqp_parse_url(buf, &ci), AMQP_STATUS_OK);
    amqp_connection_state_t c = amqp_new_connection();
    amqp_socket_t *s = amqp_tcp_socket_new(c);
    struct timeval tv = {5, 0};
    assert_int_equal(amqp_socket_open_noblock(s, ci.host, ci.port, &tv), AMQP_STATUS_OK);
    amqp_set_rpc_timeout(c, &tv);
    amqp_rpc_reply_t r = amqp_login(c, ci.vhost[0] ? ci.vhost : "/", 0, 131072, 0,
                                    AMQP_SASL_METHOD_PLAIN, ci.user, ci.password);
    assert_int_equal(r.reply_type, AMQP_RESPONSE_NORMAL);
    amqp_channel_open(c, 1);
    assert_int_equal(amqp_get_rpc_reply(c).reply_type, AMQP_RESPONSE_NORMAL);
    return c;
}

static void t_disconnect(amqp_connection_state_t c)
{
    amqp_channel_close(c, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close(c, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(c);
}

/* Ready messages in queue name (passive declare), -1 when it does not exist. */
static long t_count(const char *name)
{
    amqp_connection_state_t c = t_connect();
    amqp_queue_declare_ok_t *ok =
        amqp_queue_declare(c, 1, amqp_cstring_bytes(name), 1, 0, 0, 0, amqp_empty_table);
    long n = -1;
    if (amqp_get_rpc_reply(c).reply_type == AMQP_RESPONSE_NORMAL && ok) {
        n = (long)ok->message_count;
        t_disconnect(c);
    } else {
        amqp_destroy_connection(c);
    }
    return n;
}

/* Waits (bounded) until queue name holds want ready messages. The broker's
 * count can lag an ack or a dead-lettering by a moment. */
static long t_count_settles(const char *name, long want)
{
    long n = -2;
    for (int i = 0; i < 100; i++) {
        n = t_count(name);
        if (n == want)
            break;
        t_sleep_ms(100);
    }
    return n;
}

static void t_delete(const char *name)
{
    amqp_connection_state_t c = t_connect();
    amqp_queue_delete(c, 1, amqp_cstring_bytes(name), 0, 0);
    if (amqp_get_rpc_reply(c).reply_type == AMQP_RESPONSE_NORMAL)
        t_disconnect(c);
    else
        amqp_destroy_connection(c);
}

static void t_delete_all(const char *name, const long *delays, size_t n)
{
    char q[256];
    t_delete(name);
    snprintf(q, sizeof q, "%s.dead", name);
    t_delete(q);
    for (size_t i = 0; i < n; i++) {
        snprintf(q, sizeof q, "%s.retry.%ld", name, delays[i]);
        t_delete(q);
    }
}

typedef struct t_dead {
    char body[64];
    char reason[QUEUE_REASON_MAX];
    char verdict[32];
    long long attempts;
} t_dead;

static void t_bytes(amqp_bytes_t b, char *out, size_t size)
{
    size_t n = b.len < size - 1 ? b.len : size - 1;
    memcpy(out, b.bytes, n);
    out[n] = '\0';
}

/* Takes one message from queue name (basic.get, no ack): 1, or 0 when empty. */
static int t_get_dead(const char *name, t_dead *out)
{
    memset(out, 0, sizeof *out);
    amqp_connection_state_t c = t_connect();
    amqp_rpc_reply_t r = amqp_basic_get(c, 1, amqp_cstring_bytes(name), 1);
    assert_int_equal(r.reply_type, AMQP_RESPONSE_NORMAL);
    int got = 0;
    if (r.reply.id == AMQP_BASIC_GET_OK_METHOD) {
        amqp_message_t m;
        assert_int_equal(amqp_read_message(c, 1, &m, 0).reply_type, AMQP_RESPONSE_NORMAL);
        t_bytes(m.body, out->body, sizeof out->body);
        assert_true(m.properties._flags & AMQP_BASIC_HEADERS_FLAG);
        assert_int_equal(m.properties.delivery_mode, AMQP_DELIVERY_PERSISTENT);
        const amqp_table_t *h = &m.properties.headers;
        for (int i = 0; i < h->num_entries; i++) {
            const amqp_table_entry_t *e = &h->entries[i];
            char key[64];
            t_bytes(e->key, key, sizeof key);
            if (strcmp(key, "x-fp-reason") == 0 && e->value.kind == AMQP_FIELD_KIND_UTF8)
                t_bytes(e->value.value.bytes, out->reason, sizeof out->reason);
            else if (strcmp(key, "x-fp-verdict") == 0 && e->value.kind == AMQP_FIELD_KIND_UTF8)
                t_bytes(e->value.value.bytes, out->verdict, sizeof out->verdict);
            else if (strcmp(key, "x-fp-attempts") == 0 && e->value.kind == AMQP_FIELD_KIND_I64)
                out->attempts = e->value.value.i64;
        }
        amqp_destroy_message(&m);
        got = 1;
    }
    t_disconnect(c);
    return got;
}

/* Polls (bounded) until cond(q) holds. */
static int t_wait_stats(const queue_backend *b, queue *q, int (*cond)(const queue_stats *),
                        long ms)
{
    long long until = t_now_ms() + ms;
    queue_stats st;
    while (t_now_ms() < until) {
        b->stats(q, &st);
        if (cond(&st))
            return 1;
        t_sleep_ms(20);
    }
    return 0;
}

/* ---- publish N, consume with prefetch, ack ------------------------------ */

#define T_N 300
static atomic_int t_seen[T_N];
static atomic_int t_runs;

static queue_verdict t_count_handler(void *ctx, queue_delivery *d)
{
    (void)ctx;
    int i = (int)strtol(d->payload, NULL, 10);
    if (i >= 0 && i < T_N)
        atomic_fetch_add(&t_seen[i], 1);
    atomic_fetch_add(&t_runs, 1);
    return QUEUE_DONE;
}

static int t_all_acked(const queue_stats *st)
{
    return st->acked >= T_N && st->running == 0;
}

static void test_publish_consume_ack(void **state)
{
    (void)state;
    char url[700], name[128];
    t_new_names(url, sizeof url, name, sizeof name);
    const queue_backend *b = queue_backend_for(url);
    assert_ptr_equal(b, &queue_backend_amqp);

    queue *pub = NULL;
    queue_opts po = {.consumers = 0};
    assert_int_equal(b->open(url, &po, NULL, NULL, &pub), FP_OK);
    for (int i = 0; i < T_N; i++) {
        char p[16];
        int n = snprintf(p, sizeof p, "%d", i);
        assert_int_equal(b->submit(pub, p, (size_t)n), FP_OK);
    }
    queue_stats st;
    b->stats(pub, &st);
    assert_int_equal(st.published, T_N);
    assert_int_equal(st.publish_failed, 0);
    assert_true(st.confirm_us_sum > 0 && st.confirm_us_max > 0);
    queue_health h = {0};
    assert_int_equal(b->health(pub, &h), FP_OK); /* confirmed: the publisher is connected */
    assert_int_equal(h.publisher_up, 1);
    assert_int_equal(h.consumers, 0);
    b->close(pub);
    assert_int_equal(t_count_settles(name, T_N), T_N); /* all confirmed are on the broker */

    queue *cons = NULL;
    queue_opts co = {.consumers = 2, .prefetch = 16};
    assert_int_equal(b->open(url, &co, t_count_handler, NULL, &cons), FP_OK);
    assert_true(t_wait_stats(b, cons, t_all_acked, 30000));
    /* every job acked: both consumers came up (each gets some with prefetch 16,
     * or at least one did; the count never exceeds the threads) */
    assert_int_equal(b->health(cons, &h), FP_OK);
    assert_int_equal(h.consumers, 2);
    assert_true(h.consumers_up >= 1 && h.consumers_up <= 2);
    b->stats(cons, &st);
    assert_int_equal(st.acked, T_N);
    assert_int_equal(st.redelivered, 0);
    assert_int_equal(st.runs, T_N);
    b->close(cons);
    assert_int_equal(atomic_load(&t_runs), T_N);
    for (int i = 0; i < T_N; i++)
        assert_int_equal(atomic_load(&t_seen[i]), 1);
    assert_int_equal(t_count_settles(name, 0), 0); /* nothing left, nothing requeued */
    t_delete_all(name, NULL, 0);
}

/* ---- retry twice, then done --------------------------------------------- */

static pthread_mutex_t r_mu = PTHREAD_MUTEX_INITIALIZER;
static int r_attempts[8], r_n;
static long long r_at[8];

static queue_verdict t_flaky_handler(void *ctx, queue_delivery *d)
{
    (void)ctx;
    pthread_mutex_lock(&r_mu);
    if (r_n < 8) {
        r_attempts[r_n] = d->attempt;
        r_at[r_n] = t_now_ms();
        r_n++;
    }
    pthread_mutex_unlock(&r_mu);
    if (d->attempt < 3) {
        snprintf(d->reason, sizeof d->reason, "flaky %d", d->attempt);
        return QUEUE_RETRY;
    }
    return QUEUE_DONE;
}

static int t_one_acked(const queue_stats *st)
{
    return st->acked >= 1 && st->running == 0;
}

static void test_retry_twice_then_done(void **state)
{
    (void)state;
    char url[700], name[128];
    t_new_names(url, sizeof url, name, sizeof name);
    const queue_backend *b = queue_backend_for(url);
    queue *q = NULL;
    queue_opts o = {.consumers = 1, .backoff_ms = 300, .backoff_max_ms = 600, .max_attempts = 5};
    assert_int_equal(b->open(url, &o, t_flaky_handler, NULL, &q), FP_OK);
    assert_int_equal(b->submit(q, "flaky", 5), FP_OK);
    assert_true(t_wait_stats(b, q, t_one_acked, 30000));
    queue_stats st;
    b->stats(q, &st);
    assert_int_equal(st.retried, 2);
    assert_int_equal(st.acked, 1);
    assert_int_equal(st.dead_lettered, 0);
    b->close(q);
    assert_int_equal(r_n, 3);
    assert_int_equal(r_attempts[0], 1);
    assert_int_equal(r_attempts[1], 2);
    assert_int_equal(r_attempts[2], 3);
    /* the broker held each retry for its queue's TTL: 300 ms, then 600 ms */
    assert_true(r_at[1] - r_at[0] >= 290);
    assert_true(r_at[2] - r_at[1] >= 590);
    assert_true(r_at[2] - r_at[0] < 10000);
    assert_int_equal(t_count_settles(name, 0), 0);
    char rq[256];
    snprintf(rq, sizeof rq, "%s.retry.300", name);
    assert_int_equal(t_count(rq), 0); /* the retry queues exist, and are empty */
    snprintf(rq, sizeof rq, "%s.retry.600", name);
    assert_int_equal(t_count(rq), 0);
    long delays[] = {300, 600};
    t_delete_all(name, delays, 2);
}

/* ---- poison and given-up jobs end in the dead-letter queue -------------- */

static atomic_int p_poison_runs;

static queue_verdict t_poison_handler(void *ctx, queue_delivery *d)
{
    (void)ctx;
    if (strcmp(d->payload, "poison") == 0) {
        atomic_fetch_add(&p_poison_runs, 1);
        snprintf(d->reason, sizeof d->reason, "boom on attempt %d", d->attempt);
        return QUEUE_RETRY;
    }
    snprintf(d->reason, sizeof d->reason, "not a job");
    return QUEUE_GIVE_UP;
}

static int t_two_dead(const queue_stats *st)
{
    return st->dead_lettered >= 2 && st->running == 0;
}

static void test_poison_dead_letter(void **state)
{
    (void)state;
    char url[700], name[128], dead[160];
    t_new_names(url, sizeof url, name, sizeof name);
    snprintf(dead, sizeof dead, "%s.dead", name);
    const queue_backend *b = queue_backend_for(url);
    queue *q = NULL;
    queue_opts o = {.consumers = 1, .backoff_ms = 100, .backoff_max_ms = 100, .max_attempts = 3};
    assert_int_equal(b->open(url, &o, t_poison_handler, NULL, &q), FP_OK);
    assert_int_equal(b->submit(q, "poison", 6), FP_OK);
    assert_int_equal(b->submit(q, "garbage", 7), FP_OK);
    assert_true(t_wait_stats(b, q, t_two_dead, 30000));
    queue_stats st;
    b->stats(q, &st);
    assert_int_equal(st.dead_lettered, 2);
    assert_int_equal(st.retried, 2);
    assert_int_equal(st.acked, 0);
    b->close(q);
    assert_int_equal(atomic_load(&p_poison_runs), 3);
    assert_int_equal(t_count_settles(dead, 2), 2);
    assert_int_equal(t_count(name), 0);
    int saw_poison = 0, saw_garbage = 0;
    t_dead d;
    while (t_get_dead(dead, &d)) {
        if (strcmp(d.body, "poison") == 0) {
            saw_poison++;
            assert_string_equal(d.reason, "boom on attempt 3");
            assert_string_equal(d.verdict, "retries-exhausted");
            assert_int_equal(d.attempts, 3);
        } else {
            assert_string_equal(d.body, "garbage");
            saw_garbage++;
            assert_string_equal(d.reason, "not a job");
            assert_string_equal(d.verdict, "give-up");
            assert_int_equal(d.attempts, 1);
        }
    }
    assert_int_equal(saw_poison, 1);
    assert_int_equal(saw_garbage, 1);
    long delays[] = {100};
    t_delete_all(name, delays, 1);
}

/* ---- a consumer killed mid-job: redelivered, finished once -------------- */

static int k_pipe[2];

static queue_verdict t_stuck_handler(void *ctx, queue_delivery *d)
{
    (void)ctx;
    (void)d;
    char c = 'S';
    ssize_t n = write(k_pipe[1], &c, 1);
    (void)n;
    t_sleep_ms(60000); /* killed long before */
    _exit(3);
}

static atomic_int k_runs, k_redelivered, k_attempt;

static queue_verdict t_finish_handler(void *ctx, queue_delivery *d)
{
    (void)ctx;
    atomic_fetch_add(&k_runs, 1);
    atomic_store(&k_redelivered, d->redelivered);
    atomic_store(&k_attempt, d->attempt);
    return QUEUE_DONE;
}

static void test_killed_consumer_redelivered(void **state)
{
    (void)state;
    char url[700], name[128];
    t_new_names(url, sizeof url, name, sizeof name);
    const queue_backend *b = queue_backend_for(url);
    queue *pub = NULL;
    queue_opts po = {.consumers = 0};
    assert_int_equal(b->open(url, &po, NULL, NULL, &pub), FP_OK);
    assert_int_equal(b->submit(pub, "{\"src\":\"lb\",\"user\":\"alice\"}", 28), FP_OK);
    b->close(pub); /* no thread of ours is left when we fork */

    assert_int_equal(pipe(k_pipe), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        close(k_pipe[0]);
        queue *c = NULL;
        queue_opts co = {.consumers = 1};
        if (b->open(url, &co, t_stuck_handler, NULL, &c) != FP_OK)
            _exit(2);
        t_sleep_ms(60000);
        _exit(4);
    }
    close(k_pipe[1]);
    struct pollfd p = {k_pipe[0], POLLIN, 0};
    int ready = poll(&p, 1, 30000);
    char c = 0;
    if (ready == 1 && read(k_pipe[0], &c, 1) != 1)
        c = 0;
    kill(child, SIGKILL);
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    close(k_pipe[0]);
    assert_int_equal(c, 'S'); /* the child was inside the handler when killed */
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

    queue *cons = NULL;
    queue_opts co = {.consumers = 1};
    assert_int_equal(b->open(url, &co, t_finish_handler, NULL, &cons), FP_OK);
    assert_true(t_wait_stats(b, cons, t_one_acked, 30000));
    t_sleep_ms(500); /* a second delivery would show up now */
    queue_stats st;
    b->stats(cons, &st);
    b->close(cons);
    assert_int_equal(atomic_load(&k_runs), 1);
    assert_int_equal(atomic_load(&k_redelivered), 1);
    assert_int_equal(atomic_load(&k_attempt), 2);
    assert_int_equal(st.acked, 1);
    assert_int_equal(st.redelivered, 1);
    assert_int_equal(t_count_settles(name, 0), 0); /* acknowledged, not requeued by close */
    t_delete_all(name, NULL, 0);
}

/* ---- no broker: submit fails within its bound --------------------------- */

static void test_submit_without_broker_is_bounded(void **state)
{
    (void)state;
    /* Port 1: nobody listens there, the connection is refused at once. */
    char url[256];
    snprintf(url, sizeof url, "amqp://u:p@127.0.0.1:1/?queue=fptest.none");
    const queue_backend *b = queue_backend_for(url);
    queue *q = NULL;
    queue_opts o = {.consumers = 0, .submit_timeout_ms = 700};
    assert_int_equal(b->open(url, &o, NULL, NULL, &q), FP_OK);
    long long t0 = t_now_ms();
    assert_int_equal(b->submit(q, "x", 1), FP_UNAVAILABLE);
    long long took = t_now_ms() - t0;
    assert_true(took >= 600 && took < 1500);
    t_sleep_ms(100); /* down for longer than a submit waits: refused at once */
    t0 = t_now_ms();
    assert_int_equal(b->submit(q, "x", 1), FP_UNAVAILABLE);
    assert_true(t_now_ms() - t0 < 100);
    queue_stats st;
    b->stats(q, &st);
    assert_int_equal(st.publish_failed, 2);
    assert_int_equal(st.published, 0);
    b->close(q);

    queue *bad = NULL;
    assert_int_equal(b->open("amqp://h/?nonsense=1", NULL, NULL, NULL, &bad), FP_INVALID);
    assert_int_equal(b->open("amqp://h/?queue=a/b", NULL, NULL, NULL, &bad), FP_INVALID);
    queue_opts one = {.consumers = 1};
    assert_int_equal(b->open(url, &one, NULL, NULL, &bad), FP_INVALID); /* no handler */
}

/* ---- RabbitMQ restarted (its own node) ---------------------------------- */

#define R_N 40
static char r_dir[512];
static atomic_int r_gate;    /* 1 once the broker is back */
static atomic_int r_entered; /* the first run started */
static atomic_int r_seen[R_N + 1];

static queue_verdict t_gated_handler(void *ctx, queue_delivery *d)
{
    (void)ctx;
    int i = (int)strtol(d->payload, NULL, 10);
    if (atomic_fetch_add(&r_entered, 1) == 0)
        for (int w = 0; w < 3000 && !atomic_load(&r_gate); w++)
            t_sleep_ms(50); /* hold the first job across the restart */
    if (i >= 0 && i <= R_N)
        atomic_fetch_add(&r_seen[i], 1);
    return QUEUE_DONE;
}

static int t_services(const char *verb)
{
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "%s/scripts/services.sh %s '%s' rabbitmq", FP_SOURCE_DIR, verb,
             r_dir);
    FILE *f = popen(cmd, "r");
    if (!f)
        return -1;
    int got = t_take_queue_url(f);
    int rc = pclose(f);
    return rc == 0 && (got || strcmp(verb, "stop") == 0) ? 0 : -1;
}

static int t_setup_restart(void **state)
{
    (void)state;
    const char *dir = getenv("FP_RESTART_DIR");
    if (!dir)
        return -1;
    snprintf(r_dir, sizeof r_dir, "%s", dir);
    return t_services("start");
}

static int t_teardown_restart(void **state)
{
    (void)state;
    return t_services("stop");
}

static int t_all_restart_seen(const queue_stats *st)
{
    (void)st;
    for (int i = 0; i <= R_N; i++)
        if (!atomic_load(&r_seen[i]))
            return 0;
    return 1;
}

static void test_broker_restart(void **state)
{
    (void)state;
    char url[700], name[128];
    t_new_names(url, sizeof url, name, sizeof name);
    const queue_backend *b = queue_backend_for(url);
    queue *pub = NULL, *cons = NULL;
    queue_opts po = {.consumers = 0, .submit_timeout_ms = 1000};
    assert_int_equal(b->open(url, &po, NULL, NULL, &pub), FP_OK);
    for (int i = 0; i < R_N; i++) {
        char p[16];
        int n = snprintf(p, sizeof p, "%d", i);
        assert_int_equal(b->submit(pub, p, (size_t)n), FP_OK);
    }
    assert_int_equal(t_count_settles(name, R_N), R_N);
    queue_opts co = {.consumers = 1, .prefetch = 1};
    assert_int_equal(b->open(url, &co, t_gated_handler, NULL, &cons), FP_OK);
    for (int w = 0; w < 600 && !atomic_load(&r_entered); w++)
        t_sleep_ms(50);
    assert_int_equal(atomic_load(&r_entered), 1); /* job 0 is held, unacknowledged */

    assert_int_equal(t_services("stop"), 0);
    long long t0 = t_now_ms();
    assert_int_equal(b->submit(pub, "lost", 4), FP_UNAVAILABLE);
    assert_true(t_now_ms() - t0 < 1500);
    /* /readyz's view: the publisher knows it lost its connection */
    queue_health h = {0};
    fp_err hrc = FP_OK;
    for (int w = 0; w < 100 && (hrc = b->health(pub, &h)) == FP_OK; w++)
        t_sleep_ms(50);
    assert_int_equal(hrc, FP_UNAVAILABLE);
    assert_int_equal(h.publisher_up, 0);

    assert_int_equal(t_services("start"), 0);
    atomic_store(&r_gate, 1); /* its ack fails: the broker hands job 0 out again */
    /* The publisher reconnects by itself (bounded wait while it does). */
    fp_err rc = FP_UNAVAILABLE;
    for (int w = 0; w < 100 && rc != FP_OK; w++) {
        rc = b->submit(pub, "40", 2);
        if (rc != FP_OK)
            t_sleep_ms(300);
    }
    assert_int_equal(rc, FP_OK);
    assert_int_equal(b->health(pub, &h), FP_OK); /* up again by itself */
    assert_true(t_wait_stats(b, cons, t_all_restart_seen, 60000));
    for (int w = 0; w < 200 && b->health(cons, &h) != FP_OK; w++)
        t_sleep_ms(50);
    assert_int_equal(b->health(cons, &h), FP_OK);
    assert_int_equal(h.consumers_up, 1);
    t_sleep_ms(300);
    b->close(cons);
    b->close(pub);
    for (int i = 1; i <= R_N; i++)
        assert_true(atomic_load(&r_seen[i]) >= 1);
    assert_int_equal(atomic_load(&r_seen[0]), 2); /* run before the restart and after it */
    assert_int_equal(t_count_settles(name, 0), 0);
    t_delete_all(name, NULL, 0);
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc > 1 && strcmp(argv[1], "restart") == 0) {
        const struct CMUnitTest restart[] = {cmocka_unit_test(test_broker_restart)};
        return cmocka_run_group_tests(restart, t_setup_restart, t_teardown_restart);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_submit_without_broker_is_bounded),
        cmocka_unit_test(test_publish_consume_ack),
        cmocka_unit_test(test_retry_twice_then_done),
        cmocka_unit_test(test_poison_dead_letter),
        cmocka_unit_test(test_killed_consumer_redelivered),
    };
    return cmocka_run_group_tests(tests, t_setup_fixture, NULL);
}

/*
 * bench_queue.c - no-op jobs through the job queue, end to end: submit
 * (through RabbitMQ: persistent message, publisher confirm awaited by each
 * submit) -> consume -> handler returns QUEUE_DONE -> ack. Reports jobs/s and
 * the mean submit-to-confirm time, for several submitter threads (their
 * confirms pipeline on the one publisher channel), consumers and prefetch
 * values, and the same jobs through the in-process queue for comparison.
 *
 *   build/bench/bench_queue AMQP_URL [JOBS]     (JOBS default 5000)
 *
 * Each RabbitMQ run uses fresh queues (fpbench.<pid>.<n>) and deletes them
 * afterwards. Numbers and the reading of them: bench/README.md.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <amqp.h>
#include <amqp_tcp_socket.h>

#include "queue/queue.h"

static atomic_long b_done;

static queue_verdict b_noop(void *ctx, queue_delivery *d)
{
    (void)ctx;
    (void)d;
    atomic_fetch_add(&b_done, 1);
    return QUEUE_DONE;
}

static double b_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct b_sub {
    const queue_backend *b;
    queue *q;
    long n;
    long failed;
    pthread_t th;
} b_sub;

static void *b_submitter(void *arg)
{
    b_sub *s = arg;
    for (long i = 0; i < s->n; i++)
        if (s->b->submit(s->q, "{\"src\":\"lb\",\"user\":\"bench\"}", 28) != FP_OK)
            s->failed++;
    return NULL;
}

/* Deletes the queues of one run (name, name.dead) through plain rabbitmq-c. */
static void b_cleanup(const char *base_url, const char *name)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", base_url);
    struct amqp_connection_info ci;
    if (amqp_parse_url(buf, &ci) != AMQP_STATUS_OK)
        return;
    amqp_connection_state_t c = amqp_new_connection();
    amqp_socket_t *s = amqp_tcp_socket_new(c);
    struct timeval tv = {5, 0};
    if (amqp_socket_open_noblock(s, ci.host, ci.port, &tv) == AMQP_STATUS_OK &&
        amqp_login(c, ci.vhost[0] ? ci.vhost : "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN,
                   ci.user, ci.password).reply_type == AMQP_RESPONSE_NORMAL) {
        amqp_channel_open(c, 1);
        char dead[200];
        snprintf(dead, sizeof dead, "%s.dead", name);
        amqp_queue_delete(c, 1, amqp_cstring_bytes(name), 0, 0);
        amqp_queue_delete(c, 1, amqp_cstring_bytes(dead), 0, 0);
        amqp_connection_close(c, AMQP_REPLY_SUCCESS);
    }
    amqp_destroy_connection(c);
}

/* One run: `consumers` consumer threads (0: publish only), `subs` submitter
 * threads, `jobs` jobs. Prints one table row. */
static int b_run(const char *base_url, int amqp, long jobs, long subs, long consumers,
                 long prefetch)
{
    static int seq;
    char url[700], name[128];
    snprintf(name, sizeof name, "fpbench.%ld.%d", (long)getpid(), ++seq);
    if (amqp)
        snprintf(url, sizeof url, "%s?queue=%s", base_url, name);
    else
        snprintf(url, sizeof url, "inproc");
    const queue_backend *b = queue_backend_for(url);
    queue *cons = NULL, *pub = NULL;
    atomic_store(&b_done, 0);
    queue_opts co = {.consumers = consumers, .prefetch = prefetch};
    queue_opts po = {.consumers = 0};
    if (amqp) {
        if (consumers > 0 && b->open(url, &co, b_noop, NULL, &cons) != FP_OK)
            return -1;
        if (b->open(url, &po, NULL, NULL, &pub) != FP_OK)
            return -1;
    } else {
        if (b->open(url, &co, b_noop, NULL, &cons) != FP_OK)
            return -1;
        pub = cons;
    }
    usleep(300000); /* connections up and the consumers registered */
    b_sub *s = calloc((size_t)subs, sizeof *s);
    double t0 = b_now();
    for (long i = 0; i < subs; i++) {
        s[i] = (b_sub){.b = b, .q = pub, .n = jobs / subs + (i < jobs % subs ? 1 : 0)};
        pthread_create(&s[i].th, NULL, b_submitter, &s[i]);
    }
    long failed = 0;
    for (long i = 0; i < subs; i++) {
        pthread_join(s[i].th, NULL);
        failed += s[i].failed;
    }
    double t_pub = b_now() - t0;
    double deadline = b_now() + 120;
    while (consumers > 0 && atomic_load(&b_done) < jobs - failed && b_now() < deadline)
        usleep(1000);
    double t_all = b_now() - t0;
    queue_stats st;
    b->stats(pub, &st);
    double confirm_ms = st.published ? (double)st.confirm_us_sum / (double)st.published / 1000 : 0;
    long done = atomic_load(&b_done);
    printf("| %-7s | %3ld | %3ld | %4ld | %6ld | %9.0f | %9.0f | %8.3f |%s\n",
           amqp ? "amqp" : "inproc", subs, consumers, consumers ? prefetch : 0, jobs,
           (double)(jobs - failed) / t_pub, consumers ? (double)done / t_all : 0.0,
           amqp ? confirm_ms : 0.0, failed || (consumers && done < jobs) ? " INCOMPLETE" : "");
    fflush(stdout);
    if (amqp) {
        if (cons)
            b->close(cons);
        b->close(pub);
        b_cleanup(base_url, name);
    } else {
        b->close(cons);
    }
    free(s);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_queue AMQP_URL [JOBS]\n");
        return 2;
    }
    const char *url = argv[1];
    long jobs = argc > 2 ? strtol(argv[2], NULL, 10) : 5000;
    if (jobs < 1)
        jobs = 5000;
    printf("| queue   | sub | con | pref |   jobs | submits/s | end2end/s | confirm ms |\n");
    printf("|---|---|---|---|---|---|---|---|\n");
    int rc = 0;
    rc |= b_run(url, 0, jobs * 10, 1, 1, 1);
    rc |= b_run(url, 0, jobs * 10, 1, 2, 1);
    rc |= b_run(url, 1, jobs / 5, 1, 0, 1);   /* one submitter: one confirm round trip each */
    rc |= b_run(url, 1, jobs, 16, 0, 1);      /* confirms pipelined */
    rc |= b_run(url, 1, jobs, 64, 0, 1);
    rc |= b_run(url, 1, jobs / 5, 1, 1, 1);
    rc |= b_run(url, 1, jobs, 16, 1, 1);
    rc |= b_run(url, 1, jobs, 16, 1, 64);
    rc |= b_run(url, 1, jobs, 16, 2, 1);
    rc |= b_run(url, 1, jobs, 16, 2, 64);
    rc |= b_run(url, 1, jobs, 64, 2, 64);
    return rc ? 1 : 0;
}

/*
 * queue_inproc.c - the embedded job queue: a FIFO guarded by a mutex and a
 * fixed pool of worker threads, plus a list of retries waiting their backoff
 * (sorted by due time). submit never blocks and never fails except while
 * closing. A QUEUE_RETRY verdict puts the job on the retry list for
 * queue_backoff_ms() and runs it again, up to max_attempts runs; a
 * QUEUE_GIVE_UP verdict, or a retry out of attempts, drops the job with a
 * "job_dead_lettered" warning carrying the reason (there is no broker to keep
 * it). Closing drains: jobs already accepted run to completion before the
 * workers exit (graceful shutdown); retries then run without their backoff.
 */
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/mem.h"
#include "queue/queue.h"

typedef struct qi_job {
    struct qi_job *next;
    long long due_ms; /* retries: monotonic time it may run again */
    int attempt;      /* runs so far */
    size_t len;
    char payload[];
} qi_job;

struct queue {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    qi_job *head, *tail; /* ready, FIFO */
    qi_job *delayed;     /* retries, earliest due first */
    queue_stats st;      /* under mu */
    int closing;
    queue_opts opts;
    queue_handler_fn handler;
    void *ctx;
    pthread_t *threads;
    long nthreads;
};

static long long qi__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long qi__now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void qi__push_ready(queue *q, qi_job *j)
{
    j->next = NULL;
    if (q->tail)
        q->tail->next = j;
    else
        q->head = j;
    q->tail = j;
}

static void qi__push_delayed(queue *q, qi_job *j)
{
    qi_job **pp = &q->delayed;
    while (*pp && (*pp)->due_ms <= j->due_ms)
        pp = &(*pp)->next;
    j->next = *pp;
    *pp = j;
}

/* Under mu: the next job to run, or NULL when there is none yet. Retries
 * whose backoff passed (all of them once closing) move to the FIFO first. */
static qi_job *qi__take(queue *q, long long now)
{
    while (q->delayed && (q->closing || q->delayed->due_ms <= now)) {
        qi_job *j = q->delayed;
        q->delayed = j->next;
        qi__push_ready(q, j);
    }
    qi_job *j = q->head;
    if (j) {
        q->head = j->next;
        if (!q->head)
            q->tail = NULL;
    }
    return j;
}

static void qi__wait(queue *q)
{
    if (!q->delayed) {
        pthread_cond_wait(&q->cv, &q->mu);
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    long long wait = q->delayed->due_ms - qi__now_ms();
    if (wait <= 0)
        return;
    ts.tv_sec += (time_t)(wait / 1000);
    ts.tv_nsec += (long)(wait % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&q->cv, &q->mu, &ts);
}

static void *qi_worker(void *arg)
{
    queue *q = arg;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        qi_job *j = qi__take(q, qi__now_ms());
        if (!j) {
            if (q->closing && !q->delayed)
                break; /* closing and drained */
            qi__wait(q);
            continue;
        }
        q->st.queued--;
        q->st.running++;
        pthread_mutex_unlock(&q->mu);

        queue_delivery d = {.payload = j->payload, .len = j->len, .attempt = ++j->attempt};
        long long t0 = qi__now_us();
        queue_verdict v = q->handler(q->ctx, &d);
        long long took = qi__now_us() - t0;
        d.reason[sizeof d.reason - 1] = '\0';
        int dead = v == QUEUE_GIVE_UP || (v == QUEUE_RETRY && j->attempt >= q->opts.max_attempts);
        if (dead)
            fp_log(FP_LOG_WARN, "job_dead_lettered", "{s:s,s:s,s:i}", "queue", "inproc", "reason",
                   d.reason[0] ? d.reason : (v == QUEUE_GIVE_UP ? "given up" : "retries exhausted"),
                   "attempts", j->attempt);
        else if (v == QUEUE_RETRY)
            fp_log(FP_LOG_INFO, "job_retry", "{s:s,s:s,s:i}", "queue", "inproc", "reason",
                   d.reason, "attempt", j->attempt);

        pthread_mutex_lock(&q->mu);
        q->st.running--;
        q->st.runs++;
        q->st.run_us_sum += (uint64_t)took;
        if (v == QUEUE_RETRY && !dead) {
            q->st.retried++;
            q->st.queued++;
            j->due_ms = qi__now_ms() + queue_backoff_ms(&q->opts, j->attempt);
            qi__push_delayed(q, j);
            pthread_cond_signal(&q->cv); /* a sleeping worker may need a shorter wait */
        } else {
            if (dead)
                q->st.dead_lettered++;
            else
                q->st.acked++;
            fp_free(j);
        }
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

static int qi_accepts(const char *url)
{
    return url && (strcmp(url, "inproc") == 0 || strcmp(url, "inproc://") == 0);
}

static void qi_close(queue *q);

static fp_err qi_open(const char *url, const queue_opts *opts, queue_handler_fn handler,
                      void *ctx, queue **out)
{
    (void)url;
    *out = NULL;
    queue_opts o;
    queue_opts_resolve(opts, &o);
    if (o.consumers < 1 || !handler)
        return FP_INVALID; /* an in-process queue with no consumer would never run a job */
    queue *q = fp_calloc(1, sizeof *q);
    pthread_mutex_init(&q->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->cv, &ca);
    pthread_condattr_destroy(&ca);
    q->opts = o;
    q->handler = handler;
    q->ctx = ctx;
    q->threads = fp_calloc((size_t)o.consumers, sizeof *q->threads);
    for (long i = 0; i < o.consumers; i++) {
        if (pthread_create(&q->threads[i], NULL, qi_worker, q) != 0) {
            qi_close(q);
            return FP_INTERNAL;
        }
        q->nthreads++;
    }
    *out = q;
    return FP_OK;
}

static fp_err qi_submit(queue *q, const char *payload, size_t len)
{
    qi_job *j = fp_malloc(sizeof *j + len + 1);
    j->next = NULL;
    j->due_ms = 0;
    j->attempt = 0;
    j->len = len;
    memcpy(j->payload, payload, len);
    j->payload[len] = '\0';
    pthread_mutex_lock(&q->mu);
    if (q->closing) {
        q->st.publish_failed++;
        pthread_mutex_unlock(&q->mu);
        fp_free(j);
        return FP_UNAVAILABLE;
    }
    qi__push_ready(q, j);
    q->st.queued++;
    q->st.published++;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
    return FP_OK;
}

static void qi_stats(queue *q, queue_stats *out)
{
    pthread_mutex_lock(&q->mu);
    *out = q->st;
    pthread_mutex_unlock(&q->mu);
}

static fp_err qi_health(queue *q, queue_health *out)
{
    out->publisher_up = 1;
    out->consumers = q->nthreads;
    out->consumers_up = q->nthreads;
    return FP_OK;
}

static void qi_close(queue *q)
{
    if (!q)
        return;
    pthread_mutex_lock(&q->mu);
    q->closing = 1;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    for (long i = 0; i < q->nthreads; i++)
        pthread_join(q->threads[i], NULL);
    qi_job *j;
    while ((j = qi__take(q, 0)) != NULL) /* only when no worker could start */
        fp_free(j);
    pthread_cond_destroy(&q->cv);
    pthread_mutex_destroy(&q->mu);
    fp_free(q->threads);
    fp_free(q);
}

const queue_backend queue_backend_inproc = {
    .name = "inproc",
    .accepts = qi_accepts,
    .open = qi_open,
    .submit = qi_submit,
    .stats = qi_stats,
    .health = qi_health,
    .close = qi_close,
};

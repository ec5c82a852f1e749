/*
 * queue_inproc.c - the embedded job queue: a FIFO guarded by a mutex and a
 * fixed pool of worker threads. Closing drains: jobs already accepted are
 * run to completion before the workers exit (graceful shutdown).
 */
#include <pthread.h>
#include <string.h>

#include "core/mem.h"
#include "queue/queue.h"

typedef struct qi_job {
    struct qi_job *next;
    size_t len;
    char payload[];
} qi_job;

struct queue {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    qi_job *head, *tail;
    size_t queued, running;
    int closing;
    queue_handler_fn handler;
    void *ctx;
    pthread_t *threads;
    long nthreads;
};

static void *qi_worker(void *arg)
{
    queue *q = arg;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        while (!q->head && !q->closing)
            pthread_cond_wait(&q->cv, &q->mu);
        qi_job *j = q->head;
        if (!j)
            break; /* closing and drained */
        q->head = j->next;
        if (!q->head)
            q->tail = NULL;
        q->queued--;
        q->running++;
        pthread_mutex_unlock(&q->mu);
        q->handler(q->ctx, j->payload, j->len);
        fp_free(j);
        pthread_mutex_lock(&q->mu);
        q->running--;
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

static int qi_accepts(const char *url)
{
    return url && (strcmp(url, "inproc") == 0 || strcmp(url, "inproc://") == 0);
}

static void qi_close(queue *q);

static fp_err qi_open(const char *url, long workers, queue_handler_fn handler, void *ctx,
                      queue **out)
{
    (void)url;
    *out = NULL;
    if (workers < 1 || !handler)
        return FP_INVALID; /* an in-process queue with no consumer would never run a job */
    queue *q = fp_calloc(1, sizeof *q);
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    q->handler = handler;
    q->ctx = ctx;
    q->threads = fp_calloc((size_t)workers, sizeof *q->threads);
    for (long i = 0; i < workers; i++) {
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
    j->len = len;
    memcpy(j->payload, payload, len);
    j->payload[len] = '\0';
    pthread_mutex_lock(&q->mu);
    if (q->closing) {
        pthread_mutex_unlock(&q->mu);
        fp_free(j);
        return FP_UNAVAILABLE;
    }
    if (q->tail)
        q->tail->next = j;
    else
        q->head = j;
    q->tail = j;
    q->queued++;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
    return FP_OK;
}

static void qi_stats(queue *q, size_t *queued, size_t *running)
{
    pthread_mutex_lock(&q->mu);
    *queued = q->queued;
    *running = q->running;
    pthread_mutex_unlock(&q->mu);
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
    while (q->head) { /* only when no worker could start */
        qi_job *j = q->head;
        q->head = j->next;
        fp_free(j);
    }
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
    .close = qi_close,
};

const queue_backend *queue_backend_for(const char *url)
{
    static const queue_backend *const all[] = {&queue_backend_inproc};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i]->accepts(url))
            return all[i];
    return NULL;
}

/*
 * queue.h - the job queue, a pluggable backend chosen by URL: "inproc"
 * (queue_inproc.c: a FIFO and worker threads in this process, the embedded
 * default) or "amqp://..." / "amqps://..." (queue_amqp.c: RabbitMQ, shared by
 * every API instance and worker process).
 *
 * Delivery is at least once. A job is an opaque byte payload (the service
 * uses JSON); the handler runs on a consumer thread of some process and must
 * not assume which. It returns a verdict:
 *
 *   QUEUE_DONE     the work is committed: the job is acknowledged and gone;
 *   QUEUE_RETRY    a transient failure: the job runs again after a backoff
 *                  (backoff_ms doubled per attempt, at most backoff_max_ms),
 *                  until max_attempts runs, then it is dead-lettered;
 *   QUEUE_GIVE_UP  it can never succeed: dead-lettered at once.
 *
 * For RETRY and GIVE_UP the handler may write a short reason into
 * d->reason; it is logged and, on RabbitMQ, carried by the dead letter.
 * Because a consumer may die after its work was committed but before the
 * acknowledgement reached the broker, a job can run twice: handlers must be
 * idempotent (the fetch is: it replaces one stored list).
 *
 * submit returns FP_OK only once the job is safely queued (RabbitMQ: the
 * broker confirmed the persistent message), FP_UNAVAILABLE when it is not
 * within submit_timeout_ms (broker away, queue closing). It never blocks
 * longer than that. After FP_UNAVAILABLE from a broker the job may still
 * have been stored (the confirm was lost): a resubmission may run it twice.
 *
 * All functions are thread-safe, except that close must not run concurrently
 * with (or before the end of) any other call on the same queue.
 */
#ifndef FP_QUEUE_H
#define FP_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define QUEUE_REASON_MAX 160 /* bytes of a verdict's reason, with its NUL */

typedef struct queue queue;

typedef enum queue_verdict {
    QUEUE_DONE = 0,
    QUEUE_RETRY = 1,
    QUEUE_GIVE_UP = 2,
} queue_verdict;

/* One delivery of a job, as the handler sees it. */
typedef struct queue_delivery {
    const char *payload; /* payload[len] is '\0'; valid until the handler returns */
    size_t len;
    /* 1 on the first run; grows by one on each retry and on each redelivery
     * after a consumer died or lost its connection mid-job. */
    int attempt;
    /* The broker gave this job to a consumer before and never got an answer
     * (that consumer died, or its connection was cut). Always 0 in process. */
    int redelivered;
    /* Written by the handler for RETRY and GIVE_UP (optional). */
    char reason[QUEUE_REASON_MAX];
} queue_delivery;

typedef queue_verdict (*queue_handler_fn)(void *ctx, queue_delivery *d);

/* Zero means the default given after each field. */
typedef struct queue_opts {
    long consumers;         /* handler threads in this process; 0: publish only (an API
                               instance on RabbitMQ). inproc needs at least 1 */
    long prefetch;          /* unacknowledged jobs per consumer (basic.qos): 1 */
    int max_attempts;       /* runs of a job before it is dead-lettered: 5 */
    long backoff_ms;        /* delay before the first retry, doubled each time: 1000 */
    long backoff_max_ms;    /* longest retry delay: 60000 */
    long submit_timeout_ms; /* longest wait of submit for the broker's confirm: 5000 */
} queue_opts;

/* Counters since open, in this process (except `queued`). */
typedef struct queue_stats {
    uint64_t queued;         /* jobs waiting: the broker's count of ready messages in the
                                main queue (refreshed every second) or the local FIFO,
                                retries waiting their backoff included in process */
    uint64_t running;        /* handlers running now */
    uint64_t published;      /* submits answered FP_OK (broker confirmed) */
    uint64_t publish_failed; /* submits answered FP_UNAVAILABLE */
    uint64_t acked;          /* runs that ended QUEUE_DONE and were acknowledged */
    uint64_t retried;        /* runs that ended QUEUE_RETRY and were scheduled again */
    uint64_t redelivered;    /* deliveries flagged redelivered by the broker */
    uint64_t dead_lettered;  /* jobs given up, or out of attempts */
    uint64_t runs;           /* handler runs finished, any verdict */
    uint64_t run_us_sum;     /* time in the handler over those runs */
    uint64_t confirm_us_sum; /* submit-to-confirm time over `published` */
    uint64_t confirm_us_max;
} queue_stats;

/* What a queue's own threads know of their connections now. */
typedef struct queue_health {
    int publisher_up;  /* submits can go out: the publisher's connection is open (inproc: 1) */
    long consumers;    /* consumer threads in this process */
    long consumers_up; /* of them, connected and consuming (inproc: all) */
} queue_health;

typedef struct queue_backend {
    const char *name;
    int (*accepts)(const char *url);
    /* opts may be NULL (all defaults). handler may be NULL only when
     * opts->consumers is 0. */
    fp_err (*open)(const char *url, const queue_opts *opts, queue_handler_fn handler, void *ctx,
                   queue **out);
    fp_err (*submit)(queue *q, const char *payload, size_t len);
    void (*stats)(queue *q, queue_stats *out);
    /* Fills *out without waiting on the network (for /readyz): FP_OK when
     * submits can go out and, with consumers, at least one is connected;
     * FP_UNAVAILABLE otherwise. */
    fp_err (*health)(queue *q, queue_health *out);
    /* Stops taking jobs and frees q. inproc runs every job it accepted
     * first (retries without their backoff); amqp lets running handlers
     * finish and answer, and leaves the rest on the broker. */
    void (*close)(queue *q);
} queue_backend;

extern const queue_backend queue_backend_inproc;
extern const queue_backend queue_backend_amqp;

/* The backend for url, or NULL. */
const queue_backend *queue_backend_for(const char *url);

/* Fills the defaults of a queue_opts (0 fields) into *out. */
void queue_opts_resolve(const queue_opts *in, queue_opts *out);

/* The retry delay after run number `attempt` failed: backoff_ms * 2^(attempt-1),
 * at most backoff_max_ms. opts must be resolved. */
long queue_backoff_ms(const queue_opts *opts, int attempt);

#endif

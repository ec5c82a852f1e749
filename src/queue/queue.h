/*
 * queue.h - the job queue, a pluggable backend chosen by URL: "inproc"
 * (queue_inproc.c: a FIFO and worker threads in this process) now; a
 * RabbitMQ backend with separate worker processes can be added as another
 * file without touching callers.
 *
 * A job is an opaque byte payload (the service uses JSON). The handler runs
 * on a worker; it must not assume which process or thread.
 */
#ifndef FP_QUEUE_H
#define FP_QUEUE_H

#include <stddef.h>

#include "core/error.h"

typedef struct queue queue;
typedef void (*queue_handler_fn)(void *ctx, const char *payload, size_t len);

typedef struct queue_backend {
    const char *name;
    int (*accepts)(const char *url);
    /* workers: consumer threads in this process (0: submit only). */
    fp_err (*open)(const char *url, long workers, queue_handler_fn handler, void *ctx,
                   queue **out);
    /* FP_UNAVAILABLE once closing. */
    fp_err (*submit)(queue *q, const char *payload, size_t len);
    void (*stats)(queue *q, size_t *queued, size_t *running);
    /* Stops taking jobs, finishes queued and running ones, frees q. */
    void (*close)(queue *q);
} queue_backend;

extern const queue_backend queue_backend_inproc;

/* The backend for url, or NULL. */
const queue_backend *queue_backend_for(const char *url);

#endif

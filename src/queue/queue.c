/*
 * queue.c - picks the job queue backend from its URL, and the option
 * defaults and retry backoff that every backend shares (so that a retried
 * job waits the same whether it runs in process or through RabbitMQ).
 */
#include "queue/queue.h"

const queue_backend *queue_backend_for(const char *url)
{
    static const queue_backend *const all[] = {&queue_backend_inproc, &queue_backend_amqp};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i]->accepts(url))
            return all[i];
    return NULL;
}

void queue_opts_resolve(const queue_opts *in, queue_opts *out)
{
    queue_opts o = {0};
    if (in)
        o = *in;
    if (o.consumers < 0)
        o.consumers = 0;
    if (o.prefetch <= 0)
        o.prefetch = 1;
    if (o.prefetch > 65535)
        o.prefetch = 65535; /* basic.qos carries 16 bits */
    if (o.max_attempts <= 0)
        o.max_attempts = 5;
    if (o.backoff_ms <= 0)
        o.backoff_ms = 1000;
    if (o.backoff_max_ms <= 0)
        o.backoff_max_ms = 60000;
    if (o.backoff_max_ms < o.backoff_ms)
        o.backoff_max_ms = o.backoff_ms;
    if (o.submit_timeout_ms <= 0)
        o.submit_timeout_ms = 5000;
    *out = o;
}

long queue_backoff_ms(const queue_opts *opts, int attempt)
{
    long d = opts->backoff_ms;
    for (int i = 1; i < attempt && d < opts->backoff_max_ms; i++)
        d = d > opts->backoff_max_ms / 2 ? opts->backoff_max_ms : d * 2;
    return d < opts->backoff_max_ms ? d : opts->backoff_max_ms;
}

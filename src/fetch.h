/*
 * fetch.h - the HTTP client of the scrapers: one libcurl multi handle driven
 * by one thread, shared by every scrape in the process.
 *
 * Politeness and robustness live here, once: at most max_per_host requests
 * to one host at a time (the rest wait in a FIFO, so their timeout only
 * starts when they are sent), a per-request timeout, retries with exponential
 * backoff and jitter on 429, 5xx and network errors (honouring Retry-After up
 * to a cap), gzip, a descriptive User-Agent, keep-alive connection reuse, a
 * size limit on bodies, no redirects and only http/https (URLs are built by
 * the sources from validated input, never taken from users).
 *
 * Callers either pass a callback (run on the fetch thread: keep it short) or
 * use a fetch_batch, which turns completions into a blocking iterator for a
 * worker thread.
 */
#ifndef FP_FETCH_H
#define FP_FETCH_H

#include <stddef.h>

#include "core/error.h"

typedef struct fetch_options {
    long max_per_host;       /* concurrent requests to one host */
    long timeout_ms;         /* per attempt, from when it is sent */
    long retries;            /* extra attempts */
    long backoff_ms;         /* first retry delay; doubled each retry */
    long retry_after_max_ms; /* cap on Retry-After */
    size_t max_body;         /* larger bodies fail with FP_TOO_LARGE */
    const char *user_agent;
    /* The per-host limit shared with other processes (several workers):
     * when sem is set, a request also needs one of max_per_host slots of the
     * semaphore "<sem_prefix><host>" in sem_state before it is sent (taken on
     * the fetch thread, never waiting: a full host is asked again every few
     * milliseconds) and gives it back when its answer is in, or before it
     * waits out a retry. NULL: this client's own count is the whole limit. */
    const struct state_backend *sem;
    struct state *sem_state;
    const char *sem_prefix;
} fetch_options;

typedef struct fetch_response {
    fp_err err;          /* FP_OK when an HTTP answer arrived (any status);
                            FP_TIMEOUT, FP_UPSTREAM (network), FP_TOO_LARGE,
                            FP_UNAVAILABLE (client shut down) otherwise */
    long status;         /* HTTP status of the last attempt, 0 if none */
    char *body;          /* NUL-terminated, owned by the response */
    size_t len;
    int challenge;       /* the answer carried "cf-mitigated: challenge" */
    long retry_after_ms; /* from the last answer, -1 when absent */
    int attempts;
    char *url;
} fetch_response;

typedef struct fetch_client fetch_client;
typedef void (*fetch_done_fn)(fetch_response *resp, void *ud); /* takes ownership of resp */
/* An attempt failed and another one is scheduled in delay_ms: err is
 * FP_UPSTREAM_LIMITED (429), FP_UPSTREAM (5xx, network) or FP_TIMEOUT. */
typedef void (*fetch_retry_fn)(void *ud, fp_err err, long status, int attempt, long delay_ms);

fp_err fetch_client_new(const fetch_options *opt, fetch_client **out) FP_WARN_UNUSED;
/* Shutting down: requests already sent or queued still run, but a failed
 * attempt is not retried, and retries waiting out their backoff complete
 * at once with FP_UNAVAILABLE. Thread-safe. */
void fetch_client_drain(fetch_client *c);
/* Stops the thread; requests still queued or running complete with FP_UNAVAILABLE. */
void fetch_client_free(fetch_client **c);
/* Queues a GET. Thread-safe. The callback runs exactly once. */
fp_err fetch_submit(fetch_client *c, const char *url, fetch_done_fn done, void *ud) FP_WARN_UNUSED;
void fetch_response_free(fetch_response **r);

/* Counters since start (for /metrics). */
typedef struct fetch_stats {
    unsigned long long requests; /* attempts sent */
    unsigned long long retries;
    unsigned long long in_flight;
    unsigned long long queued;
    unsigned long long sem_waits;    /* starts put off because the shared host limit was full */
    unsigned long long sem_failures; /* the shared limit could not be asked: local limit only */
} fetch_stats;
void fetch_get_stats(fetch_client *c, fetch_stats *out);

/* A set of requests a worker waits on. */
typedef struct fetch_batch fetch_batch;
fetch_batch *fetch_batch_new(fetch_client *c);
/* tag is returned with the response. */
fp_err fetch_batch_add(fetch_batch *b, const char *url, int tag) FP_WARN_UNUSED;
/* Tells fn about retries of the batch's requests (set before adding): from
 * fetch_batch_next, on the thread that waits, so fn may take its time.
 * Retries that come while fn runs are told once, with the latest. */
void fetch_batch_on_retry(fetch_batch *b, fetch_retry_fn fn, void *ud);
/* Blocks until one response is ready; NULL once every added request was
 * returned. The caller owns the response. */
fetch_response *fetch_batch_next(fetch_batch *b, int *tag);
/* Waits for outstanding requests (discarding them) and frees the batch. */
void fetch_batch_free(fetch_batch **b);

#endif

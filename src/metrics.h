/*
 * metrics.h - process-wide Prometheus metrics (text exposition format 0.0.4).
 *
 * Counters are lock-free atomics, so recording on the request path costs a
 * few atomic adds. Routes are registered once at start-up (metrics_route)
 * and referred to by index afterwards.
 */
#ifndef FP_METRICS_H
#define FP_METRICS_H

#include <stddef.h>

#include "core/buf.h"
#include "core/error.h"
#include "queue/queue.h"

#define METRICS_MAX_ROUTES 64

/* Index for a route label such as "POST /api/scrape/"; the same name gives
 * the same index. -1 when the table is full. */
int metrics_route(const char *name);
/* One answered HTTP request. */
void metrics_http(int route, int status, double seconds);
/* One watchlist page fetched and parsed. */
void metrics_page_fetched(void);
/* One failed fetch, by error kind (user_not_found, source_blocked, ...). */
void metrics_fetch_error(fp_err kind);

/* One catalogue sweep (ok: it ran to the end) and the films it deleted. */
void metrics_catalogue_sweep(int ok, size_t deleted);

typedef struct metrics_gauges {
    double jobs_queued, jobs_running, groups_active;
    double fetch_requests, fetch_retries;
    double db_pool_in_use, db_pool_open, db_pool_max;
} metrics_gauges;

/* Appends the whole exposition to out. */
fp_err metrics_render(fp_buf *out, const metrics_gauges *g) FP_WARN_UNUSED;

/* The job queue and the shared state as this process sees them
 * (svc_get_stats). */
typedef struct metrics_scaled {
    queue_stats queue;
    unsigned long long cache_hits, cache_misses;
    unsigned long long lease_waits, fetches_skipped, host_limit_waits, bus_failures;
} metrics_scaled;

/* Appends the queue, cache and shared-state metrics to out. */
fp_err metrics_render_scaled(fp_buf *out, const metrics_scaled *m) FP_WARN_UNUSED;

#endif

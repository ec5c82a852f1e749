/*
 * metrics.c - fixed tables of atomic counters rendered on demand.
 * HTTP statuses are bucketed by exact code among the ones the API can send;
 * anything else counts under "other".
 */
#include "metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

static const int metrics_statuses[] = {200, 201, 202, 204, 304, 400, 404, 405, 409,
                                       413, 415, 422, 429, 500, 502, 503, 504};
#define M_NSTATUS (sizeof metrics_statuses / sizeof metrics_statuses[0])
static const double metrics_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                         0.1,    0.25,  0.5,    1,     2.5,  5,     10};
#define M_NBUCKETS (sizeof metrics_buckets / sizeof metrics_buckets[0])

static pthread_mutex_t metrics_mu = PTHREAD_MUTEX_INITIALIZER;
static char metrics_route_names[METRICS_MAX_ROUTES][96];
static atomic_int metrics_nroutes;
static atomic_ullong metrics_req[METRICS_MAX_ROUTES][M_NSTATUS + 1];
static atomic_ullong metrics_hist[METRICS_MAX_ROUTES][M_NBUCKETS + 1];
static atomic_ullong metrics_sum_us[METRICS_MAX_ROUTES];
static atomic_ullong metrics_pages;
static atomic_ullong metrics_errors[FP_ERR__COUNT];
static atomic_ullong metrics_sweeps[2]; /* failed or stopped, ran to the end */
static atomic_ullong metrics_swept;

int metrics_route(const char *name)
{
    pthread_mutex_lock(&metrics_mu);
    int n = atomic_load(&metrics_nroutes), found = -1;
    for (int i = 0; i < n; i++)
        if (strcmp(metrics_route_names[i], name) == 0)
            found = i;
    if (found < 0 && n < METRICS_MAX_ROUTES) {
        snprintf(metrics_route_names[n], sizeof metrics_route_names[n], "%s", name);
        atomic_store(&metrics_nroutes, n + 1);
        found = n;
    }
    pthread_mutex_unlock(&metrics_mu);
    return found;
}

void metrics_http(int route, int status, double seconds)
{
    if (route < 0 || route >= atomic_load(&metrics_nroutes))
        return;
    size_t s = M_NSTATUS;
    for (size_t i = 0; i < M_NSTATUS; i++)
        if (metrics_statuses[i] == status) {
            s = i;
            break;
        }
    atomic_fetch_add_explicit(&metrics_req[route][s], 1, memory_order_relaxed);
    size_t b = 0;
    while (b < M_NBUCKETS && seconds > metrics_buckets[b])
        b++;
    atomic_fetch_add_explicit(&metrics_hist[route][b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&metrics_sum_us[route], (unsigned long long)(seconds * 1e6),
                              memory_order_relaxed);
}

void metrics_page_fetched(void)
{
    atomic_fetch_add_explicit(&metrics_pages, 1, memory_order_relaxed);
}

void metrics_fetch_error(fp_err kind)
{
    if (kind > 0 && kind < FP_ERR__COUNT)
        atomic_fetch_add_explicit(&metrics_errors[kind], 1, memory_order_relaxed);
}

void metrics_catalogue_sweep(int ok, size_t deleted)
{
    atomic_fetch_add_explicit(&metrics_sweeps[ok ? 1 : 0], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&metrics_swept, deleted, memory_order_relaxed);
}

fp_err metrics_render(fp_buf *out, const metrics_gauges *g)
{
    fp_err rc = FP_OK;
#define EMIT(...)                                                                                  \
    do {                                                                                           \
        if (rc == FP_OK)                                                                           \
            rc = fp_buf_appendf(out, __VA_ARGS__);                                                 \
    } while (0)
    int nroutes = atomic_load(&metrics_nroutes);
    EMIT("# HELP filmpicker_http_requests_total HTTP requests answered, by route and status.\n"
         "# TYPE filmpicker_http_requests_total counter\n");
    for (int r = 0; r < nroutes; r++)
        for (size_t s = 0; s <= M_NSTATUS; s++) {
            unsigned long long v = atomic_load(&metrics_req[r][s]);
            if (!v)
                continue;
            if (s < M_NSTATUS)
                EMIT("filmpicker_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
                     metrics_route_names[r], metrics_statuses[s], v);
            else
                EMIT("filmpicker_http_requests_total{route=\"%s\",status=\"other\"} %llu\n",
                     metrics_route_names[r], v);
        }
    EMIT("# HELP filmpicker_http_request_duration_seconds Time to answer, by route.\n"
         "# TYPE filmpicker_http_request_duration_seconds histogram\n");
    for (int r = 0; r < nroutes; r++) {
        unsigned long long cum = 0;
        for (size_t b = 0; b <= M_NBUCKETS; b++) {
            cum += atomic_load(&metrics_hist[r][b]);
            if (b < M_NBUCKETS)
                EMIT("filmpicker_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} "
                     "%llu\n",
                     metrics_route_names[r], metrics_buckets[b], cum);
            else
                EMIT("filmpicker_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} "
                     "%llu\n",
                     metrics_route_names[r], cum);
        }
        EMIT("filmpicker_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n",
             metrics_route_names[r], (double)atomic_load(&metrics_sum_us[r]) / 1e6);
        EMIT("filmpicker_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
             metrics_route_names[r], cum);
    }
    EMIT("# HELP filmpicker_pages_fetched_total Watchlist pages fetched and parsed.\n"
         "# TYPE filmpicker_pages_fetched_total counter\n"
         "filmpicker_pages_fetched_total %llu\n",
         atomic_load(&metrics_pages));
    EMIT("# HELP filmpicker_fetch_errors_total Failed watchlist fetches, by kind.\n"
         "# TYPE filmpicker_fetch_errors_total counter\n");
    for (int e = 1; e < FP_ERR__COUNT; e++) {
        unsigned long long v = atomic_load(&metrics_errors[e]);
        if (v)
            EMIT("filmpicker_fetch_errors_total{kind=\"%s\"} %llu\n", fp_err_code((fp_err)e), v);
    }
    EMIT("# HELP filmpicker_catalogue_sweeps_total Catalogue sweeps, by result.\n"
         "# TYPE filmpicker_catalogue_sweeps_total counter\n"
         "filmpicker_catalogue_sweeps_total{result=\"ok\"} %llu\n"
         "filmpicker_catalogue_sweeps_total{result=\"failed\"} %llu\n"
         "# HELP filmpicker_catalogue_films_deleted_total Catalogue films no stored list used, "
         "deleted by sweeps.\n"
         "# TYPE filmpicker_catalogue_films_deleted_total counter\n"
         "filmpicker_catalogue_films_deleted_total %llu\n",
         atomic_load(&metrics_sweeps[1]), atomic_load(&metrics_sweeps[0]),
         atomic_load(&metrics_swept));
    EMIT("# HELP filmpicker_jobs_queued Fetch jobs waiting in the queue: its depth (on RabbitMQ "
         "the broker's count of ready messages, read every second).\n"
         "# TYPE filmpicker_jobs_queued gauge\nfilmpicker_jobs_queued %.0f\n"
         "# HELP filmpicker_jobs_running Fetch jobs being worked on.\n"
         "# TYPE filmpicker_jobs_running gauge\nfilmpicker_jobs_running %.0f\n"
         "# HELP filmpicker_groups_active Group jobs not finished yet.\n"
         "# TYPE filmpicker_groups_active gauge\nfilmpicker_groups_active %.0f\n"
         "# HELP filmpicker_fetch_requests_total HTTP requests sent to watchlist sites.\n"
         "# TYPE filmpicker_fetch_requests_total counter\nfilmpicker_fetch_requests_total %.0f\n"
         "# HELP filmpicker_fetch_retries_total Retried requests to watchlist sites.\n"
         "# TYPE filmpicker_fetch_retries_total counter\nfilmpicker_fetch_retries_total %.0f\n",
         g->jobs_queued, g->jobs_running, g->groups_active, g->fetch_requests, g->fetch_retries);
    EMIT("# HELP filmpicker_db_pool_connections_in_use Storage connections handed out right now.\n"
         "# TYPE filmpicker_db_pool_connections_in_use gauge\n"
         "filmpicker_db_pool_connections_in_use %.0f\n"
         "# HELP filmpicker_db_pool_connections_open Storage connections open (in use or idle).\n"
         "# TYPE filmpicker_db_pool_connections_open gauge\n"
         "filmpicker_db_pool_connections_open %.0f\n"
         "# HELP filmpicker_db_pool_connections_max Size of the storage connection pool.\n"
         "# TYPE filmpicker_db_pool_connections_max gauge\n"
         "filmpicker_db_pool_connections_max %.0f\n",
         g->db_pool_in_use, g->db_pool_open, g->db_pool_max);
#undef EMIT
    return rc;
}

/* Counters of this process since it started (the queue's `queued` is the
 * broker's count). Latencies are a pair of counters, seconds and runs, so
 * that rate(seconds) / rate(runs) is the mean over any window. */
fp_err metrics_render_scaled(fp_buf *out, const metrics_scaled *m)
{
    const queue_stats *q = &m->queue;
    return fp_buf_appendf(
        out,
        "# HELP filmpicker_queue_published_total Fetch jobs submitted and confirmed by the "
        "queue (on RabbitMQ: publisher confirms).\n"
        "# TYPE filmpicker_queue_published_total counter\n"
        "filmpicker_queue_published_total %llu\n"
        "# HELP filmpicker_queue_publish_failed_total Fetch jobs the queue did not confirm in "
        "time (the broker away): their fetch failed with 503.\n"
        "# TYPE filmpicker_queue_publish_failed_total counter\n"
        "filmpicker_queue_publish_failed_total %llu\n"
        "# HELP filmpicker_queue_confirm_seconds_total Time from submit to the broker's "
        "confirm, summed over filmpicker_queue_published_total.\n"
        "# TYPE filmpicker_queue_confirm_seconds_total counter\n"
        "filmpicker_queue_confirm_seconds_total %.6f\n"
        "# HELP filmpicker_queue_confirm_seconds_max Longest submit-to-confirm time since "
        "start.\n"
        "# TYPE filmpicker_queue_confirm_seconds_max gauge\n"
        "filmpicker_queue_confirm_seconds_max %.6f\n"
        "# HELP filmpicker_queue_job_runs_total Fetch job runs finished by this process's "
        "consumers, any verdict.\n"
        "# TYPE filmpicker_queue_job_runs_total counter\n"
        "filmpicker_queue_job_runs_total %llu\n"
        "# HELP filmpicker_queue_job_seconds_total Time in the job handler summed over "
        "filmpicker_queue_job_runs_total (mean job latency: the rate of this over the rate "
        "of runs).\n"
        "# TYPE filmpicker_queue_job_seconds_total counter\n"
        "filmpicker_queue_job_seconds_total %.6f\n"
        "# HELP filmpicker_queue_acked_total Job runs that ended done and were acknowledged.\n"
        "# TYPE filmpicker_queue_acked_total counter\n"
        "filmpicker_queue_acked_total %llu\n"
        "# HELP filmpicker_queue_retried_total Job runs that failed and were scheduled again "
        "after a backoff.\n"
        "# TYPE filmpicker_queue_retried_total counter\n"
        "filmpicker_queue_retried_total %llu\n"
        "# HELP filmpicker_queue_redelivered_total Deliveries the broker flagged redelivered "
        "(a consumer died or lost its connection mid-job).\n"
        "# TYPE filmpicker_queue_redelivered_total counter\n"
        "filmpicker_queue_redelivered_total %llu\n"
        "# HELP filmpicker_queue_dead_lettered_total Jobs given up or out of attempts (on "
        "RabbitMQ: moved to the dead-letter queue with their reason).\n"
        "# TYPE filmpicker_queue_dead_lettered_total counter\n"
        "filmpicker_queue_dead_lettered_total %llu\n"
        "# HELP filmpicker_cache_hits_total Stored-list reads the cache answered (the hit "
        "ratio is computed in PromQL: hits / (hits + misses)).\n"
        "# TYPE filmpicker_cache_hits_total counter\n"
        "filmpicker_cache_hits_total %llu\n"
        "# HELP filmpicker_cache_misses_total Stored-list reads the cache did not answer "
        "(absent, unreadable, or the cache away): the database did.\n"
        "# TYPE filmpicker_cache_misses_total counter\n"
        "filmpicker_cache_misses_total %llu\n"
        "# HELP filmpicker_lease_waits_total Fetches that waited for another worker's lease on "
        "the same person.\n"
        "# TYPE filmpicker_lease_waits_total counter\n"
        "filmpicker_lease_waits_total %llu\n"
        "# HELP filmpicker_fetches_skipped_total Fetches not made because another worker had "
        "stored the list meanwhile.\n"
        "# TYPE filmpicker_fetches_skipped_total counter\n"
        "filmpicker_fetches_skipped_total %llu\n"
        "# HELP filmpicker_host_limit_waits_total Requests to a watchlist site put off because "
        "the shared per-host limit was full.\n"
        "# TYPE filmpicker_host_limit_waits_total counter\n"
        "filmpicker_host_limit_waits_total %llu\n"
        "# HELP filmpicker_bus_failures_total Shared-state bus events not sent or not read "
        "(Redis away).\n"
        "# TYPE filmpicker_bus_failures_total counter\n"
        "filmpicker_bus_failures_total %llu\n",
        (unsigned long long)q->published, (unsigned long long)q->publish_failed,
        (double)q->confirm_us_sum / 1e6, (double)q->confirm_us_max / 1e6,
        (unsigned long long)q->runs, (double)q->run_us_sum / 1e6, (unsigned long long)q->acked,
        (unsigned long long)q->retried, (unsigned long long)q->redelivered,
        (unsigned long long)q->dead_lettered, m->cache_hits, m->cache_misses, m->lease_waits,
        m->fetches_skipped, m->host_limit_waits, m->bus_failures);
}

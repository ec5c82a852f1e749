/*
 * config.h - FilmPicker's settings, from FILMPICKER_* environment variables
 * and command-line flags (a flag wins over the variable, which wins over the
 * default). One table in config.c is the single source of every setting's
 * flag, variable, default and help text; `filmpicker CMD --help` prints it.
 */
#ifndef FP_CONFIG_H
#define FP_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include "core/error.h"

typedef struct fp_config {
    char *listen;             /* host:port of the HTTP API */
    char *metrics_listen;     /* worker: host:port of /metrics, /readyz, /healthz; NULL: none */
    char *database;           /* SQLite path (or sqlite:PATH), or postgresql://... */
    char *queue;              /* job queue backend URL: "inproc" */
    char *cache;              /* cache backend URL: "inproc" */
    char *letterboxd_url;     /* base URL of Letterboxd (a fake site in tests) */
    char *letterboxd_image_url; /* base URL of Letterboxd's poster images */
    char *secret_key;         /* 64 hex digits, or NULL to use the key file */
    char *secret_key_file;    /* created with mode 0600 when missing */
    char *static_dir;         /* Swagger UI files (swagger-ui-dist) */
    char *user_agent;
    char *log_level;
    long workers;             /* scrape job threads */
    long http_threads;        /* libmicrohttpd thread pool size */
    long host_concurrency;    /* simultaneous requests to one site */
    long fetch_timeout_ms;    /* per page request */
    long fetch_retries;       /* extra attempts on 429/5xx/network errors */
    long fetch_backoff_ms;    /* first retry delay, doubled each time */
    long retry_after_max_ms;  /* cap on a site's Retry-After */
    long max_pages;           /* pages fetched per watchlist at most */
    long max_age_s;           /* stored watchlists older than this are refetched */
    long max_participants;    /* per request */
    long max_body_bytes;      /* JSON request bodies */
    long max_upload_bytes;    /* multipart export uploads */
    long compat_wait_ms;      /* how long the first version's routes wait for fetches */
    long request_timeout_s;   /* idle HTTP connection timeout */
    long log_client_address;  /* 1: http_request lines carry client.address */
    long job_ttl_s;           /* finished jobs are kept this long */
    long fetch_lease_ms;      /* a fetch's lease (tasks.c), renewed every third of it */
    long max_jobs;            /* unfinished jobs at once (429 beyond) */
    long session_ttl_s;       /* a session expires this long after its last change */
    long max_sessions_per_client; /* open sessions per browser (429 beyond) */
    char *public_url;         /* how phones reach this server, no trailing '/'; NULL: as asked */
    char *web_dir;            /* the built web app (web/dist) */
    /* limits and abuse (docs/operations.md "Limits and abuse") */
    long max_connections;     /* the pool; 0: sized from the file descriptor limit */
    long connections_reserve; /* of the pool, kept for /healthz and /metrics */
    long max_connections_per_address; /* 0: an eighth of the pool */
    long header_timeout_s;    /* headers must arrive within this */
    long body_timeout_s;      /* a body must arrive within this after its headers */
    long max_streams_per_address; /* event streams per client address */
    long max_streams_per_session; /* event streams per session */
    long stream_max_life_s;   /* an event stream ends after this; the client reconnects */
    char *trusted_proxies;    /* addresses/networks whose X-Forwarded-* is believed */
    char *allowed_hosts;      /* extra Host names accepted (besides listen, public-url) */
    char *state;              /* shared-state backend URL; NULL: follows the cache */
    char *ratelimit;          /* rate-limit bucket backend URL; NULL: follows the cache */
    long rate_fetch_burst, rate_fetch_per_min;     /* lists fetched from a site */
    long rate_import_burst, rate_import_per_min;   /* export uploads */
    long rate_session_burst, rate_session_per_min; /* sessions created */
    long rate_client_burst, rate_client_per_min;   /* browser ids (cookies) issued */
    long rate_job_burst, rate_job_per_min;         /* jobs started (searches) */
    long max_sessions;        /* live sessions in all; 503 beyond */
    long max_sessions_per_address; /* live sessions one address created; 429 beyond */
    long sessions_max_mb;     /* memory all live sessions may hold; 503 beyond */
    long jobs_max_mb;         /* lists held by finished jobs; the oldest go first beyond */
    long import_max_new_films; /* new catalogue films one import may add */
    long catalogue_sweep_s;   /* seconds between catalogue sweeps; 0: none */
    long catalogue_grace_s;   /* an unused film is kept this long after a sweep marked it */
} fp_config;

/* Fills *c with defaults overridden by the environment. */
fp_err config_from_env(fp_config *c) FP_WARN_UNUSED;

/*
 * Applies "--name=value" / "--name value" flags from argv[first..argc) that
 * name a setting; other arguments are moved, in order, into rest (caller
 * provides argc slots) with *nrest set. FP_INVALID with a message on stderr
 * for a bad value or a missing value.
 */
fp_err config_apply_flags(fp_config *c, int argc, char **argv, int first, char **rest,
                          int *nrest) FP_WARN_UNUSED;

/* Prints every setting: flag, variable, default, help. */
void config_print_help(FILE *out);
void config_free(fp_config *c);
/* The backend URL of a piece of shared state (the state, the rate-limit
 * buckets): url when set, else the cache's URL when the cache is Redis
 * (several processes share one), else "inproc". Never NULL. */
const char *cfg_shared_url(const fp_config *c, const char *url);

#endif

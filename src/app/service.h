/*
 * service.h - FilmPicker's application core: it ties the backends together
 * (storage, cache, queue, sources, vault) and holds the group logic that the
 * HTTP API and the command line share.
 *
 * Flow of a group request: each participant's input is validated into a
 * canonical user and a person key (keyed hash); a fresh stored copy (cache,
 * then database) is used at once; otherwise a fetch task is queued. Two
 * requests for the same person share one task (the in-flight registry is
 * keyed by person key). A job follows the group until every participant is
 * ready or failed; results are computed from the sealed lists on demand.
 * Usernames live only in memory (jobs, tasks, queue payloads), never in
 * storage.
 */
#ifndef FP_SERVICE_H
#define FP_SERVICE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "core/error.h"
#include "film.h"
#include "import/import.h"
#include "pick.h"
#include "queue/queue.h"
#include "poster.h"
#include "source/source.h"
#include "vault.h"

typedef struct service service;

/* What the process is for, which says who runs the fetches: with the
 * in-process queue, serve runs cfg->workers fetch threads and a one-off
 * command (pick, scrape, import...) one; with a broker queue neither fetches
 * (they queue fetches and hear of their end through the shared state) and
 * `filmpicker worker` runs cfg->workers consumers. */
typedef enum svc_role {
    SVC_ROLE_TOOL = 0,
    SVC_ROLE_SERVE = 1,
    SVC_ROLE_WORKER = 2,
} svc_role;

/* Opens every backend named by cfg and migrates storage to the latest
 * version. */
fp_err svc_open(const fp_config *cfg, svc_role role, service **out) FP_WARN_UNUSED;
/* Graceful: lets queued and running fetches finish, then frees everything. */
void svc_close(service **s);

/* ---- participants ----------------------------------------------------- */

typedef struct svc_person {
    const source_backend *src; /* NULL for an imported list without a user */
    char user[SOURCE_USER_MAX + 1];
    uint8_t key[VAULT_KEY_BYTES];
    int refresh;
} svc_person;

/* Validates a participant: type "lb"/"letterboxd" (NULL means "lb") and
 * what the person typed. FP_BAD_SOURCE or FP_BAD_USERNAME. */
fp_err svc_person_parse(service *s, const char *type, const char *input, int refresh,
                        svc_person *out) FP_WARN_UNUSED;
/* A person identified by an import token (see svc_import). */
fp_err svc_person_import(service *s, const char *token, svc_person *out) FP_WARN_UNUSED;

/* ---- jobs ------------------------------------------------------------- */

typedef enum {
    SVC_PART_QUEUED,
    SVC_PART_FETCHING,
    SVC_PART_READY,
    SVC_PART_FAILED,
} svc_part_state;

typedef struct svc_part_view {
    char user[SOURCE_USER_MAX + 1];
    const char *source;      /* "letterboxd", "import" */
    svc_part_state state;
    int pages_done, pages_total;
    fp_err error;            /* FP_OK unless FAILED */
    fp_err warning;          /* refresh failed, the stored copy is used */
    size_t films;            /* when READY */
    int64_t fetched_at;      /* unix seconds of the copy used; 0 if none */
    int from_store;          /* 1: a stored copy was used without fetching */
} svc_part_view;

typedef struct svc_job_view {
    char id[33];
    int done;                /* every participant READY or FAILED */
    int64_t created_at;
    size_t nparts;
    svc_part_view *parts;    /* owned; free with svc_job_view_free */
} svc_job_view;

/* How many of these people's lists a job started now would fetch from a
 * watchlist site: a refresh, or a list not stored or stale, that no fetch
 * already running covers. 0 for lists answered from storage (the rate
 * limit on fetches charges this). */
size_t svc_fetch_cost(service *s, const svc_person *people, size_t n);
/* Starts a job for n people (copied). Never blocks on the network. The job
 * id (32 hex digits, 128 random bits) is written to job_id. FP_RATE_LIMITED
 * when too many jobs are unfinished. */
fp_err svc_job_start(service *s, const svc_person *people, size_t n,
                     char job_id[33]) FP_WARN_UNUSED;
/* FP_NOT_FOUND for an unknown or expired job. */
fp_err svc_job_view_get(service *s, const char *job_id, svc_job_view *out) FP_WARN_UNUSED;
void svc_job_view_free(svc_job_view *v);

/* Calls fn(ud, done) exactly once: done=1 when the job has finished (at
 * once if it already has), done=0 after timeout_ms. fn runs on a service
 * thread or, when already finished, on the caller's. */
typedef void (*svc_wait_fn)(void *ud, int done);
fp_err svc_job_wait(service *s, const char *job_id, long timeout_ms, svc_wait_fn fn,
                    void *ud) FP_WARN_UNUSED;

/* Called (outside every service lock, on a worker or the caller's thread)
 * each time a job's participant changes: fetch progress, ready, failed. Set
 * once before serving; the session module uses it to stream progress. */
typedef void (*svc_job_fn)(void *ud, const char *job_id);
void svc_set_job_listener(service *s, svc_job_fn fn, void *ud);

/* ---- results ---------------------------------------------------------- */

typedef struct svc_result_film {
    film film;               /* id, title, year, slug, ... */
    uint32_t count;          /* on how many lists */
} svc_result_film;

typedef struct svc_results {
    size_t participants;     /* READY participants counted */
    size_t failed;           /* FAILED participants left out */
    svc_result_film *common; /* on every list */
    size_t ncommon;
    svc_result_film *most;   /* on most lists (not all), most lists first */
    size_t nmost;
} svc_results;

/* Results of a finished job. FP_PENDING when it is still running, FP_NOT_FOUND
 * for an unknown job, FP_CONFLICT when no participant's list could be read. `most` is
 * filled when fewer than small_threshold films are common, up to most_limit. */
fp_err svc_job_results(service *s, const char *job_id, size_t small_threshold, size_t most_limit,
                       svc_results *out) FP_WARN_UNUSED;
void svc_results_free(svc_results *r);

/* Rolls one film uniformly among the job's common films (or, when none, the
 * films on most lists) minus veto. seed NULL: unpredictable. FP_NOT_FOUND when
 * nothing is left. */
fp_err svc_job_roll(service *s, const char *job_id, const int64_t *veto, size_t nveto,
                    const uint64_t *seed, film *out) FP_WARN_UNUSED;

/* Removes a film from every ready participant's stored watchlist and keeps
 * it off their later fetches (svc_watched_people). removed[i] (n =
 * participants) tells for whom it was there. */
fp_err svc_job_watched(service *s, const char *job_id, int64_t film_id, int *removed,
                       size_t nremoved) FP_WARN_UNUSED;

/* Removes a film from these people's stored lists (removed may be NULL)
 * and records it in the "watched here" set (watched.h) of each person who had
 * it, so that no later fetch or import brings it back. */
fp_err svc_watched_people(service *s, const svc_person *people, size_t n, int64_t film_id,
                          int *removed) FP_WARN_UNUSED;

/* "Put it back": takes the film out of each person's watched set and, where
 * it was there, back onto their stored list. restored[i] (may be NULL) tells
 * for whom it was in the set. */
fp_err svc_unwatch_people(service *s, const svc_person *people, size_t n, int64_t film_id,
                          int *restored) FP_WARN_UNUSED;
/* The same for every participant of a finished job (restored[i], n = parts);
 * the job's copies follow, so its results and rolls see the film again. */
fp_err svc_job_unwatched(service *s, const char *job_id, int64_t film_id, int *restored,
                         size_t nrestored) FP_WARN_UNUSED;

typedef struct svc_watched_film {
    film film;
    int64_t watched_at; /* unix seconds */
} svc_watched_film;
/* The films a person marked watched at or after since (unix seconds),
 * newest first, at most max. Free *out with svc_watched_films_free. */
fp_err svc_watched_recent(service *s, const svc_person *p, int64_t since, size_t max,
                          svc_watched_film **out, size_t *n) FP_WARN_UNUSED;
void svc_watched_films_free(svc_watched_film *f, size_t n);

/* Catalogue films by id (cache, then storage): out[i] for ids[i]; caller
 * clears each with film_clear. */
fp_err svc_films_get(service *s, const int64_t *ids, size_t n, film *out) FP_WARN_UNUSED;

/* CSRF tokens: a MAC of the client id (32 hex digits) under a server key. */
/* The fp_client cookie value for a browser id: the id and a 32-hex-digit
 * tag only this server can make, so an id the server did not issue is
 * refused (and replaced). */
#define SVC_COOKIE_LEN 64
fp_err svc_client_cookie(service *s, const char *client_id,
                         char out[SVC_COOKIE_LEN + 1]) FP_WARN_UNUSED;
/* 1 with the id in client_id when cookie is one this server issued. */
int svc_client_from_cookie(service *s, const char *cookie, char client_id[33]);
fp_err svc_client_token(service *s, const char *client_id,
                        char out[VAULT_MAC_HEX + 1]) FP_WARN_UNUSED;
int svc_client_check(service *s, const char *client_id, const char *token);

/* ---- the first version's API ------------------------------------------ */

/* Synchronous fast path: when every person has a fresh stored list, fills the
 * intersection sample (up to n+1 films, random) and returns FP_OK; returns
 * FP_PENDING when some list must be fetched first (then use a job). */
fp_err svc_quick_intersection(service *s, const svc_person *people, size_t n,
                              size_t *intersection_len, film_list *sample) FP_WARN_UNUSED;
/* Sample of a finished job's common films (up to participants+1). A failed
 * participant's error is returned. */
fp_err svc_job_sample(service *s, const char *job_id, size_t *intersection_len,
                      film_list *sample, size_t *failed_index) FP_WARN_UNUSED;
/* Removes the film named name from one person's stored list: its Letterboxd
 * slug or, for films without one, the name POST /api/scrape/ gives them (the
 * boxd.it link, else the title). *removed is 1 if it was there. */
fp_err svc_remove_by_slug(service *s, const svc_person *p, const char *slug,
                          int *removed) FP_WARN_UNUSED;
/* *stored = 1 when p has a stored list, of any age (nothing is fetched). */
fp_err svc_person_stored(service *s, const svc_person *p, int *stored) FP_WARN_UNUSED;

/* ---- import ----------------------------------------------------------- */

typedef struct svc_import_report {
    char token[33];          /* set when no user was given: the import's id */
    const char *format;
    size_t films;            /* films stored */
    size_t watched;          /* films left out: in the person's watched set */
    size_t new_films;        /* FP_TOO_MANY_FILMS: films new to the catalogue */
    import_result detail;    /* row errors; message when refused */
} svc_import_report;

/* Parses an export and stores it as the person's watchlist: as p's list when
 * p is given (a Letterboxd user importing their export), else under a new
 * random import token. FP_BAD_FILE and FP_TOO_LARGE with detail.message,
 * FP_EMPTY_WATCHLIST; FP_TOO_MANY_FILMS (detail.message, new_films) when the
 * file would add more than import-max-new-films films to the catalogue: then
 * nothing is stored, neither catalogue rows nor the list. */
fp_err svc_import(service *s, const svc_person *p, const unsigned char *data, size_t len,
                  const char *filename, svc_import_report *out) FP_WARN_UNUSED;
void svc_import_report_free(svc_import_report *r);

/* ---- one person, for the CLI ------------------------------------------ */

/* Fetches (or reuses a fresh stored copy of) one person's list, synchronously. */
fp_err svc_person_films(service *s, const svc_person *p, film_list *out) FP_WARN_UNUSED;

/* ---- operations ------------------------------------------------------- */

/* ---- shared state, for the sessions -------------------------------------- */

/* 1 when this process shares its state with others (a Redis cache or
 * state): then *b, *st (may be NULL) get the shared-state backend the
 * service opened and *instance this process's id on the bus. 0 in the
 * embedded default. */
int svc_shared(service *s, const struct state_backend **b, struct state **st,
               const char **instance);
/* Seals bytes with the database's data key for label (vault_seal_bytes). */
fp_err svc_seal(service *s, const char *label, const void *pt, size_t len, uint8_t **blob,
                size_t *blob_len) FP_WARN_UNUSED;
fp_err svc_unseal(service *s, const char *label, const uint8_t *blob, size_t len, uint8_t **pt,
                  size_t *pt_len) FP_WARN_UNUSED;
/* Sends a JSON object to every process (with "k" its kind and "o" the
 * sender); FP_OK, or why not. */
fp_err svc_bus_send(service *s, const char *json, size_t len) FP_WARN_UNUSED;
/* Events of kind "sess" from the bus (from any process, this one
 * included), on the bus thread: set once before serving. */
typedef void (*svc_bus_fn)(void *ud, const char *json, size_t len);
void svc_set_session_bus(service *s, svc_bus_fn fn, void *ud);

typedef struct svc_stats {
    queue_stats queue;                /* the fetch job queue's own counters */
    size_t jobs_queued, jobs_running; /* fetch jobs in the queue */
    unsigned long long lease_waits;      /* fetches that waited for another worker's lease */
    unsigned long long fetches_skipped;  /* fetches found done by another worker meanwhile */
    unsigned long long bus_failures;     /* shared-state events not sent or not read */
    unsigned long long host_limit_waits; /* requests put off by the shared per-host limit */
    unsigned long long cache_hits;       /* stored-list reads the cache answered */
    unsigned long long cache_misses;     /* ... it did not (absent, unreadable, or away) */
    size_t groups_active;             /* unfinished group jobs */
    unsigned long long fetch_requests, fetch_retries;
    size_t jobs_bytes;                /* lists held by finished jobs */
    unsigned long long jobs_evicted;  /* finished jobs dropped before job-ttl (jobs-max-mb) */
    size_t db_pool_in_use, db_pool_open, db_pool_max; /* storage connections */
} svc_stats;
void svc_get_stats(service *s, svc_stats *out);
/* FP_OK when storage answers. */
fp_err svc_health(service *s) FP_WARN_UNUSED;

/* ---- readiness (GET /readyz) -------------------------------------------- */

#define SVC_READY_MAX 8          /* checks in one report */
#define SVC_READY_TIMEOUT_MS 1000 /* the longest one check is waited for */

/* One dependency as svc_ready found it. */
typedef struct svc_check {
    const char *name;    /* "database", "cache", "state", "queue", or an extra's name */
    const char *backend; /* the backend's name: "sqlite", "postgresql", "inproc", "redis",
                            "amqp" (never a URL) */
    int required;        /* requests need it: down makes the process not ready */
    fp_err status;       /* FP_OK: up */
    int timed_out;       /* no answer within SVC_READY_TIMEOUT_MS (status FP_UNAVAILABLE) */
    int busy;            /* ... because the previous call's check still runs (not started) */
    double ms;           /* how long it took */
    int is_queue;        /* queue_health below is filled */
    queue_health queue;
} svc_check;

typedef struct svc_ready_report {
    int ready; /* every required check is up */
    size_t n;
    svc_check checks[SVC_READY_MAX];
} svc_ready_report;

/* A check the caller owns (the HTTP server's rate-limit buckets): fn(ud)
 * answers FP_OK when up. fn and ud must stay valid until svc_ready_drain. */
typedef struct svc_ready_extra {
    const char *name, *backend;
    int required;
    fp_err (*fn)(void *ud);
    void *ud;
} svc_ready_extra;

/* Checks every dependency at once, each on a thread of its own, and waits
 * for them at most SVC_READY_TIMEOUT_MS: the database (ping), the cache
 * (ping), the shared state (ping; required when it is shared), the queue
 * (its connections as its threads know them, no network), then the
 * extras. A check that does not answer in time is reported down
 * (timed_out) and left to finish on its thread; while it runs, the same
 * check of a later call is reported down at once instead of starting
 * another (so a hanging server never piles up threads). Thread-safe. */
void svc_ready(service *s, const svc_ready_extra *extra, size_t nextra, svc_ready_report *out);
/* Waits until no check started by svc_ready runs any more (each ends within
 * its backend's own timeouts). svc_close calls it; so does whoever frees
 * what an extra check uses. */
void svc_ready_drain(service *s);

/* ---- the catalogue sweep ------------------------------------------------ */

/* Catalogue films stay after the last list that used them is replaced or
 * deleted; a sweep removes them. It opens every stored watchlist and
 * watched set (the server holds the key), collects the films they use, and
 * pages through the catalogue: a film used again loses its orphan mark, an
 * unused one gets one (the time of this sweep), and one whose mark is older
 * than catalogue-grace is deleted (in transactions of SVC_SWEEP_FILMS films;
 * never the film with the highest id, so ids are never reused). A film is
 * therefore deleted only after being found unused by sweeps at least
 * catalogue-grace apart, so a list being stored during a sweep, a job or a
 * session still showing the film are not hurt as long as the grace is longer
 * than they live (session-ttl, job-ttl); the film cache keeps showing a film
 * it holds, and an unknown id shows as "(unknown film)". Rows that cannot be
 * opened hold no film back. One line is logged per sweep
 * (catalogue_sweep), with the counts below. */
typedef struct svc_sweep_report {
    size_t lists, watched_sets, unreadable; /* sealed rows read (unreadable: failed to open) */
    size_t used;                            /* distinct films they use */
    size_t films;                           /* catalogue films looked at */
    size_t marked, unmarked, deleted;
    long long ms;
} svc_sweep_report;
/* One sweep now. FP_UNAVAILABLE when the service began to stop meanwhile
 * (what was done so far stays done). */
fp_err svc_sweep(service *s, svc_sweep_report *out) FP_WARN_UNUSED;
/* Starts the periodic sweeps of `serve` (every catalogue-sweep-interval
 * seconds; none when it is 0). svc_close stops them. */
fp_err svc_start_sweeper(service *s) FP_WARN_UNUSED;
/* Migration control for the CLI. */
fp_err svc_migrate(const fp_config *cfg, int target, int *current, int *latest) FP_WARN_UNUSED;

/* ---- the server key and the database's data key (datakey.h) ------------ */
/* These open the database (migrating it) but not the service, so they work
 * when svc_open refuses the key. The current key is the configured one; a
 * missing key file is FP_NOT_FOUND for status and rotate, and created (a new
 * key) only by reset. */

typedef struct svc_key_info {
    int stored;          /* the database holds a wrapped data key */
    int opens;           /* the configured key opens the stored data */
    size_t watchlists;   /* sealed rows */
    size_t watched;
    int64_t created_at;  /* unix seconds, 0 when no key is stored */
    int64_t updated_at;
} svc_key_info;
fp_err svc_key_status(const fp_config *cfg, svc_key_info *out) FP_WARN_UNUSED;
/* Re-keys the database to the key in new_key_file (created, mode 0600, with a
 * fresh key when missing: *created = 1). FP_KEY_MISMATCH when the configured
 * key does not open the database. */
fp_err svc_key_rotate(const fp_config *cfg, const char *new_key_file,
                      int *created) FP_WARN_UNUSED;
/* Starts afresh under the configured key: deletes every stored watchlist and
 * watched set (counts), keeps the catalogue, stores a new data key. */
fp_err svc_key_reset(const fp_config *cfg, size_t *watchlists, size_t *watched) FP_WARN_UNUSED;

/* ---- posters ------------------------------------------------------------ */

/* The poster image of a catalogue film (poster.h: poster_get). */
void svc_poster(service *s, int64_t film_id, poster_done_fn done, void *ud);
/* Shutting down: answers every waiting poster request now (poster_proxy_abort). */
void svc_posters_abort(service *s);

#endif

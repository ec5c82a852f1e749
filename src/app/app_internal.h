/*
 * app_internal.h - what the files of the application core (src/app/) share
 * among themselves and nothing else includes: struct service, the job, task
 * and stored-list records, and the svc__ functions one file calls in another.
 * The public interface is app/service.h.
 *
 * Concurrency (the same for every file here): one mutex (s->mu) guards the
 * in-flight task registry, the job table and the waiters; it is never held
 * across I/O (storage, cache, network) or a user callback. The film cache
 * has its own mutex, the decoded lists and group memo a read-write lock
 * (hot_lock), the memo of what people typed another (who_lock). Waiter
 * callbacks (used by the HTTP layer to resume a suspended request) are
 * collected under the lock and called after it is released.
 */
#ifndef FP_APP_INTERNAL_H
#define FP_APP_INTERNAL_H

#include "app/service.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache/cache.h"
#include "datakey.h"
#include "poster.h"
#include "core/log.h"
#include "core/mem.h"
#include "metrics.h"
#include "queue/queue.h"
#include "state/state.h"
#include "store/store.h"
#include "views.h"
#include "watched.h"

#define SVC_POSTER_TTL_S (7L * 24 * 3600)  /* a fetched poster is kept a week */
#define SVC_POSTER_MISSING_TTL_S 3600L    /* "the image host has none": an hour */
#define SVC_POSTER_MAX_BYTES (2u * 1024u * 1024u)
#define SVC_JOB_BUCKETS 256
#define SVC_FILM_BUCKETS 8192
#define SVC_FILM_CACHE_MAX 200000
#define SVC_CACHE_TTL_S 3600
#define SVC_CAS_TRIES 8
#define SVC_HOT_BUCKETS 1024
#define SVC_HOT_MAX 8192
#define SVC_HOT_TTL_MS 10000
#define SVC_WATCHED_CONTEXT "FilmPicker watched set v1"
#define SVC_SWEEP_ROWS 256  /* sealed rows read per page by the sweep */
#define SVC_SWEEP_FILMS 500 /* catalogue films per page, and per write transaction */

typedef struct svc_job svc_job;
typedef struct svc_run svc_run; /* a fetch running in this process (tasks.c) */

typedef struct svc_listener {
    struct svc_listener *next;
    svc_job *job;
    size_t part;
} svc_listener;

typedef struct svc_task {
    struct svc_task *next;
    svc_person person;
    int pages_done, pages_total;
    fp_err retrying; /* why the last failed page is being tried again, FP_OK once one was read */
    svc_listener *listeners;
    long long since_ms;  /* wall clock: this process began waiting (an older end is not it) */
    long long polled_ms; /* monotonic: its task document was last read by the timer */
} svc_task;

typedef struct svc_part {
    svc_person person;
    svc_part_state state;
    int pages_done, pages_total;
    fp_err error, warning;
    int64_t *ids;
    size_t nids;
    int64_t fetched_at;
    int from_store;
} svc_part;

struct svc_job {
    svc_job *next;
    char id[33];
    int64_t created_at;
    long long created_ms;  /* wall clock, for the fetches it waits for */
    long long finished_ms; /* monotonic; 0 while running */
    size_t nparts, pending;
    svc_part *parts;
    size_t bytes; /* its lists' ids, counted in s->jobs_bytes once finished */
};

typedef struct svc_waiter {
    struct svc_waiter *next;
    svc_job *job;
    long long deadline_ms;
    svc_wait_fn fn;
    void *ud;
    int done;
} svc_waiter;

/* A decoded list kept in memory so warm requests skip unsealing. Only this
 * process writes through it; with a shared cache across instances, the
 * TTL bounds how long another instance's write can go unseen. */
typedef struct svc_hot {
    struct svc_hot *next;
    uint8_t key[VAULT_KEY_BYTES];
    int64_t fetched_at, version;
    long long expires_ms;
    int64_t *ids;
    size_t n;
} svc_hot;

/* The common films of a group whose lists are all in memory, so repeated
 * warm requests for the same group skip loading and intersecting. Valid while
 * no list changed since (generation) and within the hot TTL. */
typedef struct svc_combo {
    struct svc_combo *next;
    size_t n;
    uint8_t *keys; /* n sorted person keys */
    uint64_t gen;
    long long expires_ms;
    int64_t min_fetched_at;
    int64_t *common;
    size_t ncommon;
} svc_combo;
#define SVC_COMBO_BUCKETS 256
#define SVC_COMBO_MAX 4096

/* What a person typed -> canonical user and person key, so repeated
 * requests skip URL parsing and the keyed hash. Memory only. */
typedef struct svc_who {
    struct svc_who *next;
    uint64_t hash;
    const source_backend *src;
    char user[SOURCE_USER_MAX + 1];
    uint8_t key[VAULT_KEY_BYTES];
    char input[]; /* what was typed */
} svc_who;
#define SVC_WHO_BUCKETS 4096
#define SVC_WHO_MAX 16384
#define SVC_WHO_INPUT_MAX 512

typedef struct svc_film_entry {
    struct svc_film_entry *next;
    film f;
} svc_film_entry;

struct service {
    const fp_config *cfg;
    const store_backend *sb;
    store *st;
    const cache_backend *cb;
    cache *ca;
    const queue_backend *qb;
    queue *q;
    int remote_queue;          /* the queue is a broker: fetches run in worker processes */
    const state_backend *stb;  /* shared state (state.h): task documents, leases, the bus */
    state_handle *sts;
    int shared_state;          /* stb is shared with other processes (not inproc) */
    char instance[33];         /* this process, on the bus */
    pthread_t bus;             /* svc__bus_main, when the state is shared */
    int bus_started;
    /* svc__upkeep_main, when the state is shared: lease renewals and the
     * poll of task documents, which talk to Redis and the broker (in one
     * process the timer does them: they only touch memory). */
    pthread_t upkeep;
    int upkeep_started;
    pthread_cond_t upkeep_cv;  /* with mu: wakes it to stop */
    long long tasks_polled_ms; /* the timer's last svc__tasks_poll (under mu) */
    svc_run *runs;             /* fetches running here, their leases renewed (upkeep or timer) */
    atomic_ullong lease_waits, fetches_skipped, bus_send_failures, bus_read_failures;
    atomic_ullong cache_hits, cache_misses; /* svc__load's reads of the cache */
    pthread_cond_t ready_cv;                /* with mu: a readiness check thread ended */
    int ready_busy[SVC_READY_MAX];          /* under mu: that check's thread still runs */
    int ready_threads;                      /* under mu: check threads running */
    vault *v;
    fetch_client *fetch;
    poster_proxy *posters;
    source_env env;
    char *base_url;

    pthread_mutex_t mu;
    pthread_cond_t timer_cv;
    svc_task *tasks;
    svc_job *jobs[SVC_JOB_BUCKETS];
    size_t jobs_active;
    size_t jobs_bytes;          /* ids held by finished jobs */
    unsigned long long jobs_evicted;
    svc_waiter *waiters;
    pthread_t timer;
    int timer_started;
    pthread_t sweeper;   /* periodic catalogue sweeps (svc_start_sweeper) */
    int sweeper_started;
    pthread_cond_t sweep_cv;  /* the sweeper sleeps on it (with mu) */
    pthread_mutex_t sweep_mu; /* one sweep at a time in this process */
    int stopping;
    /* The sessions module's callbacks: set under listen_lock (write) while
     * the service's threads already run, called under it (read). The
     * sessions are freed only after svc_close has joined those threads. */
    pthread_rwlock_t listen_lock;
    svc_job_fn job_listener;
    svc_bus_fn session_bus;
    void *session_bus_ud;
    void *job_listener_ud;

    pthread_rwlock_t hot_lock; /* hot lists and combos */
    svc_hot *hot[SVC_HOT_BUCKETS];
    size_t nhot;
    svc_combo *combos[SVC_COMBO_BUCKETS];
    size_t ncombos;
    uint64_t gen; /* bumped whenever a stored list changes */

    pthread_rwlock_t who_lock;
    uint8_t who_hkey[crypto_shorthash_KEYBYTES];
    svc_who *who[SVC_WHO_BUCKETS];
    size_t nwho;

    pthread_mutex_t film_mu;
    svc_film_entry *films[SVC_FILM_BUCKETS];
    size_t nfilms;
};

/* ---- records shared between the core's files ---------------------------- */

typedef struct svc_stored {
    int64_t *ids;
    size_t n;
    int64_t fetched_at;
    int64_t version;
} svc_stored;

/* A job finished less than this long ago is never dropped early: whoever
 * started it (a session's search, a waiting first-version request, a v1
 * client polling) reads its results within that time. */
#define SVC_JOB_GRACE_MS 60000

/* Job ids whose parts changed, collected under s->mu and announced to the
 * listener after it is released. */
typedef struct svc_changed {
    char ids[8][33];
    size_t n;
} svc_changed;

typedef struct svc_progress_ctx {
    service *s;
    const uint8_t *key;
} svc_progress_ctx;

/* Copies the ready parts' lists (under the lock) so set algebra runs without it. */
typedef struct svc_sets {
    pick_set *sets;
    int64_t **owned;
    size_t n;
    size_t failed;
    size_t first_failed;
    fp_err first_error;
} svc_sets;

/* A growing array of film ids, sorted and deduplicated now and then so that
 * it stays near the number of distinct films, not the sum of all lists. */
typedef struct svc_idset {
    int64_t *ids;
    size_t n, cap, unique; /* ids[0..unique) is sorted and unique */
} svc_idset;

/* The current server key and the database (migrated), and for re-keying the
 * next server key: what the key commands work on. */
typedef struct svc_keyctx {
    vault_kek *cur, *next;
    const store_backend *sb;
    store *st;
    char *shown; /* the database URL without its password, for logs */
} svc_keyctx;

/* Monotonic milliseconds (deadlines, memo expiry): on the warm path, so inline. */
static inline long long svc__mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wall-clock milliseconds: times several processes compare (task
 * documents, job documents). */
static inline long long svc__wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wall-clock unix seconds (fetch times, watched marks). */
static inline int64_t svc__now(void)
{
    return (int64_t)time(NULL);
}

/* ---- functions one file of the core calls in another ------------------- */

/* service.c */
int svc__stopping(service *s);

/* lists.c */
void svc__list_changed(service *s, const uint8_t key[VAULT_KEY_BYTES]);
void svc__stored_free(svc_stored *st);
void svc__combo_clear(service *s);
void svc__hot_clear(service *s);
uint8_t *svc__sorted_keys(const svc_person *people, size_t n, size_t *bucket);
int svc__combo_sample(service *s, const uint8_t *keys, size_t n, size_t bucket, size_t k,
                      size_t *ncommon, int64_t *chosen, size_t *m);
void svc__combo_put(service *s, uint8_t *keys, size_t n, size_t bucket, uint64_t gen,
                    int64_t min_fetched_at, const int64_t *common, size_t ncommon);
fp_err svc__load(service *s, const uint8_t key[VAULT_KEY_BYTES], svc_stored *out);
int svc__is_fresh(service *s, int64_t fetched_at);
int svc__cmp_i64(const void *a, const void *b);
size_t svc__sort_unique(int64_t *ids, size_t n);
fp_err svc__store(service *s, const uint8_t key[VAULT_KEY_BYTES], const int64_t *ids,
                  size_t n, int64_t fetched_at, int64_t expected_version);
fp_err svc__resolve(service *s, film_list *films, size_t max_new, int64_t **ids, size_t *n,
                    size_t *new_films);
fp_err svc__films(service *s, const int64_t *ids, size_t n, film *out);
fp_err svc__store_fresh(service *s, const uint8_t key[VAULT_KEY_BYTES], const int64_t *ids,
                        size_t n, int64_t fetched_at, size_t *stored, size_t *left_out);

/* persons.c */
void svc__who_clear(service *s);

/* tasks.c */
queue_verdict svc__handle_job(void *ctx, queue_delivery *d);
void *svc__bus_main(void *arg);
void *svc__upkeep_main(void *arg);
void svc__tasks_poll(service *s);
void svc__leases_renew(service *s);
void svc__need_fetch(service *s, const svc_person *p, svc_job *j, size_t part);
int svc__task_attach(service *s, const svc_person *p, svc_job *j, size_t part, long long since_ms);
fp_err svc__task_ended(service *s, const uint8_t key[VAULT_KEY_BYTES], long long since_ms,
                       fp_err *result, int *pages_total);
fp_err svc__fetch_and_store(service *s, const svc_person *p, source_progress_fn progress,
                            void *ud);

/* jobs.c */
void svc__job_publish(service *s, const char *id, int64_t created_at, long long created_ms,
                      const svc_person *people, size_t n, const char *kinds, const fp_err *errors);
fp_err svc__job_ensure(service *s, const char *id);
svc_job *svc__job_find(service *s, const char *id);
void svc__part_settled(service *s, svc_job *j, svc_waiter **fired);
void svc__fire(svc_waiter *w);
fp_err svc__job_people(service *s, const char *job_id, svc_person **people, int **ready,
                       size_t *n);
void svc__job_free(svc_job *j);
void *svc__timer(void *arg);

/* results.c */
fp_err svc__sample_films(service *s, const int64_t *chosen, size_t m, film_list *sample);
fp_err svc__sample(service *s, pick_set *sets, size_t nsets, size_t k,
                   size_t *intersection_len, film_list *sample, int64_t **common_out);

/* marks.c */
fp_err svc__watched_load_lenient(service *s, const uint8_t key[VAULT_KEY_BYTES],
                                 watched_set *out, int64_t *version);
fp_err svc__remove_film(service *s, const uint8_t key[VAULT_KEY_BYTES], int64_t film_id,
                        int *removed);

#endif

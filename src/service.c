/*
 * service.c - backends wiring, stored-list access, fetch tasks and jobs.
 *
 * Concurrency: one mutex (s->mu) guards the in-flight task registry, the job
 * table and the waiters; it is never held across I/O (storage, cache,
 * network) or a user callback. The film cache has its own mutex. Waiter
 * callbacks (used by the HTTP layer to resume a suspended request) are
 * collected under the lock and called after it is released.
 */
#include "service.h"

#include <jansson.h>
#include <pthread.h>
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
    svc_job_fn job_listener; /* set once before serving */
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

static long long svc__mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t svc__now(void)
{
    return (int64_t)time(NULL);
}

/* ---- stored lists ------------------------------------------------------ */

static int svc__is_fresh(service *s, int64_t fetched_at);

typedef struct svc_stored {
    int64_t *ids;
    size_t n;
    int64_t fetched_at;
    int64_t version;
} svc_stored;


static void svc__stored_free(svc_stored *st)
{
    FP_FREE(st->ids);
    st->n = 0;
}

static void svc__cache_key(const uint8_t key[VAULT_KEY_BYTES], uint8_t out[3 + VAULT_KEY_BYTES])
{
    memcpy(out, "wl:", 3);
    memcpy(out + 3, key, VAULT_KEY_BYTES);
}

static size_t svc__hot_bucket(const uint8_t key[VAULT_KEY_BYTES])
{
    size_t b;
    memcpy(&b, key, sizeof b); /* the key is a keyed hash: uniformly spread */
    return b % SVC_HOT_BUCKETS;
}

static void svc__combo_free(svc_combo *c)
{
    fp_free(c->keys);
    fp_free(c->common);
    fp_free(c);
}

static void svc__combo_clear(service *s)
{
    for (size_t b = 0; b < SVC_COMBO_BUCKETS; b++)
        while (s->combos[b]) {
            svc_combo *c = s->combos[b];
            s->combos[b] = c->next;
            svc__combo_free(c);
        }
    s->ncombos = 0;
}

static void svc__hot_clear(service *s)
{
    for (size_t b = 0; b < SVC_HOT_BUCKETS; b++)
        while (s->hot[b]) {
            svc_hot *h = s->hot[b];
            s->hot[b] = h->next;
            fp_free(h->ids);
            fp_free(h);
        }
    s->nhot = 0;
}

/* Removes the person's decoded list, if any. hot_lock held for writing. */
static void svc__hot_unlink(service *s, const uint8_t key[VAULT_KEY_BYTES])
{
    for (svc_hot **pp = &s->hot[svc__hot_bucket(key)]; *pp; pp = &(*pp)->next)
        if (memcmp((*pp)->key, key, VAULT_KEY_BYTES) == 0) {
            svc_hot *h = *pp;
            *pp = h->next;
            fp_free(h->ids);
            fp_free(h);
            s->nhot--;
            return;
        }
}

/* Drops the person's decoded list (on every write of that list). */
static void svc__hot_drop(service *s, const uint8_t key[VAULT_KEY_BYTES])
{
    pthread_rwlock_wrlock(&s->hot_lock);
    s->gen++;
    svc__hot_unlink(s, key);
    pthread_rwlock_unlock(&s->hot_lock);
}

static void svc__hot_put(service *s, const uint8_t key[VAULT_KEY_BYTES], const int64_t *ids,
                         size_t n, int64_t fetched_at, int64_t version)
{
    svc_hot *h = fp_calloc(1, sizeof *h);
    memcpy(h->key, key, VAULT_KEY_BYTES);
    h->ids = fp_malloc((n ? n : 1) * sizeof *ids);
    if (n)
        memcpy(h->ids, ids, n * sizeof *ids);
    h->n = n;
    h->fetched_at = fetched_at;
    h->version = version;
    h->expires_ms = svc__mono_ms() + SVC_HOT_TTL_MS;
    pthread_rwlock_wrlock(&s->hot_lock);
    if (s->nhot >= SVC_HOT_MAX)
        svc__hot_clear(s);
    svc__hot_unlink(s, key);
    size_t b = svc__hot_bucket(key);
    h->next = s->hot[b];
    s->hot[b] = h;
    s->nhot++;
    pthread_rwlock_unlock(&s->hot_lock);
}

static int svc__hot_get(service *s, const uint8_t key[VAULT_KEY_BYTES], svc_stored *out)
{
    int found = 0;
    long long now = svc__mono_ms();
    pthread_rwlock_rdlock(&s->hot_lock);
    for (svc_hot *h = s->hot[svc__hot_bucket(key)]; h; h = h->next)
        if (memcmp(h->key, key, VAULT_KEY_BYTES) == 0) {
            if (h->expires_ms > now) {
                out->ids = fp_malloc((h->n ? h->n : 1) * sizeof *h->ids);
                if (h->n)
                    memcpy(out->ids, h->ids, h->n * sizeof *h->ids);
                out->n = h->n;
                out->fetched_at = h->fetched_at;
                out->version = h->version;
                found = 1;
            }
            break;
        }
    pthread_rwlock_unlock(&s->hot_lock);
    return found;
}

static int svc__cmp_key(const void *a, const void *b)
{
    return memcmp(a, b, VAULT_KEY_BYTES);
}

/* people's keys, sorted, into a new buffer of n * VAULT_KEY_BYTES. */
static uint8_t *svc__sorted_keys(const svc_person *people, size_t n, size_t *bucket)
{
    uint8_t *keys = fp_malloc(n * VAULT_KEY_BYTES);
    for (size_t i = 0; i < n; i++)
        memcpy(keys + i * VAULT_KEY_BYTES, people[i].key, VAULT_KEY_BYTES);
    qsort(keys, n, VAULT_KEY_BYTES, svc__cmp_key);
    uint64_t h = 1469598103934665603ULL; /* keys are keyed hashes: any mix will do */
    for (size_t i = 0; i < n; i++) {
        uint64_t part;
        memcpy(&part, keys + i * VAULT_KEY_BYTES, sizeof part);
        h = (h ^ part) * 1099511628211ULL;
    }
    *bucket = (size_t)(h % SVC_COMBO_BUCKETS);
    return keys;
}

/* Draws up to k of the group's cached common films into chosen. Returns 1 on
 * a valid cache entry (fresh lists only). */
static int svc__combo_sample(service *s, const uint8_t *keys, size_t n, size_t bucket, size_t k,
                             size_t *ncommon, int64_t *chosen, size_t *m)
{
    int hit = 0;
    long long now = svc__mono_ms();
    pthread_rwlock_rdlock(&s->hot_lock);
    for (svc_combo *c = s->combos[bucket]; c; c = c->next) {
        if (c->n != n || memcmp(c->keys, keys, n * VAULT_KEY_BYTES) != 0)
            continue;
        if (c->gen == s->gen && c->expires_ms > now && svc__is_fresh(s, c->min_fetched_at)) {
            pick_rng rng;
            pick_rng_init(&rng, NULL);
            *m = pick_sample(c->common, c->ncommon, k, &rng, chosen);
            *ncommon = c->ncommon;
            hit = 1;
        }
        break;
    }
    pthread_rwlock_unlock(&s->hot_lock);
    return hit;
}

static void svc__combo_put(service *s, uint8_t *keys, size_t n, size_t bucket, uint64_t gen,
                           int64_t min_fetched_at, const int64_t *common, size_t ncommon)
{
    svc_combo *c = fp_calloc(1, sizeof *c);
    c->n = n;
    c->keys = keys; /* taken */
    c->gen = gen;
    c->expires_ms = svc__mono_ms() + SVC_HOT_TTL_MS;
    c->min_fetched_at = min_fetched_at;
    c->common = fp_malloc((ncommon ? ncommon : 1) * sizeof *common);
    if (ncommon)
        memcpy(c->common, common, ncommon * sizeof *common);
    c->ncommon = ncommon;
    pthread_rwlock_wrlock(&s->hot_lock);
    if (s->ncombos >= SVC_COMBO_MAX)
        svc__combo_clear(s);
    for (svc_combo **pp = &s->combos[bucket]; *pp; pp = &(*pp)->next)
        if ((*pp)->n == n && memcmp((*pp)->keys, keys, n * VAULT_KEY_BYTES) == 0) {
            svc_combo *old = *pp;
            *pp = old->next;
            svc__combo_free(old);
            s->ncombos--;
            break;
        }
    c->next = s->combos[bucket];
    s->combos[bucket] = c;
    s->ncombos++;
    pthread_rwlock_unlock(&s->hot_lock);
}

static void svc__cache_put(service *s, const uint8_t key[VAULT_KEY_BYTES], const uint8_t *sealed,
                           size_t len, int64_t fetched_at, int64_t version)
{
    uint8_t ck[3 + VAULT_KEY_BYTES];
    svc__cache_key(key, ck);
    uint8_t *val = fp_malloc(16 + len);
    memcpy(val, &fetched_at, 8);
    memcpy(val + 8, &version, 8);
    memcpy(val + 16, sealed, len);
    fp_err rc = s->cb->set(s->ca, ck, sizeof ck, val, 16 + len, SVC_CACHE_TTL_S);
    if (rc != FP_OK)
        fp_log(FP_LOG_WARN, "cache_set_failed", "{s:s}", "error", fp_err_code(rc));
    fp_free(val);
}

static void svc__cache_drop(service *s, const uint8_t key[VAULT_KEY_BYTES])
{
    uint8_t ck[3 + VAULT_KEY_BYTES];
    svc__cache_key(key, ck);
    svc__hot_drop(s, key);
    fp_err rc = s->cb->del(s->ca, ck, sizeof ck);
    (void)rc;
}

/* Reads a person's stored list: cache first, then storage. FP_NOT_FOUND when
 * there is none. */
static fp_err svc__load(service *s, const uint8_t key[VAULT_KEY_BYTES], svc_stored *out)
{
    memset(out, 0, sizeof *out);
    if (svc__hot_get(s, key, out))
        return FP_OK;
    uint8_t ck[3 + VAULT_KEY_BYTES];
    svc__cache_key(key, ck);
    uint8_t *val = NULL;
    size_t vlen = 0;
    fp_err rc = s->cb->get(s->ca, ck, sizeof ck, &val, &vlen);
    if (rc == FP_OK && vlen > 16) {
        memcpy(&out->fetched_at, val, 8);
        memcpy(&out->version, val + 8, 8);
        rc = vault_unseal(s->v, key, val + 16, vlen - 16, &out->ids, &out->n);
        fp_free(val);
        if (rc == FP_OK) {
            svc__hot_put(s, key, out->ids, out->n, out->fetched_at, out->version);
            return FP_OK;
        }
        svc__cache_drop(s, key); /* a bad cache entry is only a miss */
    } else {
        fp_free(val);
    }
    store_watchlist w = {0};
    rc = s->sb->watchlist_get(s->st, key, &w);
    if (rc != FP_OK)
        return rc;
    rc = vault_unseal(s->v, key, w.sealed, w.sealed_len, &out->ids, &out->n);
    if (rc == FP_OK) {
        out->fetched_at = w.fetched_at;
        out->version = w.version;
        svc__cache_put(s, key, w.sealed, w.sealed_len, w.fetched_at, w.version);
        svc__hot_put(s, key, out->ids, out->n, out->fetched_at, out->version);
    } else {
        fp_log(FP_LOG_ERROR, "watchlist_unseal_failed", "{s:s}", "error", fp_err_code(rc));
    }
    store_watchlist_free(&w);
    return rc;
}

static int svc__is_fresh(service *s, int64_t fetched_at)
{
    return svc__now() - fetched_at <= s->cfg->max_age_s;
}

static int svc__cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static size_t svc__sort_unique(int64_t *ids, size_t n)
{
    if (n < 2)
        return n;
    qsort(ids, n, sizeof *ids, svc__cmp_i64);
    size_t k = 1;
    for (size_t i = 1; i < n; i++)
        if (ids[i] != ids[k - 1])
            ids[k++] = ids[i];
    return k;
}

/* Seals ids and replaces the person's stored list (expected_version -1:
 * unconditionally). Updates the cache. */
static fp_err svc__store(service *s, const uint8_t key[VAULT_KEY_BYTES], const int64_t *ids,
                         size_t n, int64_t fetched_at, int64_t expected_version)
{
    uint8_t *blob = NULL;
    size_t blen = 0;
    int64_t version = 0;
    fp_err rc = vault_seal(s->v, key, ids, n, &blob, &blen);
    if (rc != FP_OK)
        return rc;
    rc = s->sb->watchlist_put(s->st, key, blob, blen, fetched_at, expected_version, &version);
    svc__hot_drop(s, key);
    if (rc == FP_OK)
        svc__cache_put(s, key, blob, blen, fetched_at, version);
    else
        svc__cache_drop(s, key);
    fp_free(blob);
    return rc;
}

/* Catalogue ids of films, in a sorted unique array. Caller frees *ids. At
 * most max_new of them may be new to the catalogue (SIZE_MAX: any number):
 * FP_TOO_MANY_FILMS with *new_films (may be NULL) set otherwise. */
static fp_err svc__resolve(service *s, film_list *films, size_t max_new, int64_t **ids, size_t *n,
                           size_t *new_films)
{
    *ids = NULL;
    *n = 0;
    fp_err rc = max_new == SIZE_MAX
                    ? s->sb->films_resolve(s->st, films->items, films->len)
                    : s->sb->films_resolve_limited(s->st, films->items, films->len, max_new,
                                                   new_films);
    if (rc != FP_OK)
        return rc;
    int64_t *out = fp_malloc((films->len ? films->len : 1) * sizeof *out);
    pthread_mutex_lock(&s->film_mu);
    for (size_t i = 0; i < films->len; i++) {
        out[i] = films->items[i].id;
        /* the row may have gained ids or a year: reload it when next needed */
        size_t b = (uint64_t)out[i] % SVC_FILM_BUCKETS;
        for (svc_film_entry **pp = &s->films[b]; *pp; pp = &(*pp)->next)
            if ((*pp)->f.id == out[i]) {
                svc_film_entry *e = *pp;
                *pp = e->next;
                film_clear(&e->f);
                fp_free(e);
                s->nfilms--;
                break;
            }
    }
    pthread_mutex_unlock(&s->film_mu);
    *n = svc__sort_unique(out, films->len);
    *ids = out;
    return FP_OK;
}

/* Fills out[i] with the catalogue film ids[i] (cache, then one batch load). */
static fp_err svc__films(service *s, const int64_t *ids, size_t n, film *out)
{
    fp_err rc = FP_OK;
    int64_t *missing = NULL;
    size_t nmissing = 0;
    film_list loaded;
    film_list_init(&loaded);
    memset(out, 0, n * sizeof *out);

    pthread_mutex_lock(&s->film_mu);
    for (size_t i = 0; i < n; i++) {
        svc_film_entry *e = s->films[(uint64_t)ids[i] % SVC_FILM_BUCKETS];
        while (e && e->f.id != ids[i])
            e = e->next;
        if (e) {
            film_copy(&out[i], &e->f);
        } else {
            if (!missing)
                missing = fp_malloc(n * sizeof *missing);
            missing[nmissing++] = ids[i];
        }
    }
    pthread_mutex_unlock(&s->film_mu);
    if (nmissing == 0)
        goto out;

    rc = s->sb->films_load(s->st, missing, nmissing, &loaded);
    if (rc != FP_OK)
        goto out;
    pthread_mutex_lock(&s->film_mu);
    if (s->nfilms + loaded.len > SVC_FILM_CACHE_MAX) { /* crude bound: start over */
        for (size_t b = 0; b < SVC_FILM_BUCKETS; b++)
            while (s->films[b]) {
                svc_film_entry *e = s->films[b];
                s->films[b] = e->next;
                film_clear(&e->f);
                fp_free(e);
            }
        s->nfilms = 0;
    }
    for (size_t k = 0; k < loaded.len; k++) {
        film *f = &loaded.items[k];
        size_t b = (uint64_t)f->id % SVC_FILM_BUCKETS;
        svc_film_entry *e = s->films[b];
        while (e && e->f.id != f->id)
            e = e->next;
        if (!e) {
            e = fp_calloc(1, sizeof *e);
            film_copy(&e->f, f);
            e->next = s->films[b];
            s->films[b] = e;
            s->nfilms++;
        }
        for (size_t i = 0; i < n; i++)
            if (ids[i] == f->id && !out[i].title)
                film_copy(&out[i], f);
    }
    pthread_mutex_unlock(&s->film_mu);
    for (size_t i = 0; i < n; i++)
        if (!out[i].title) { /* catalogue row gone: should not happen */
            out[i].id = ids[i];
            out[i].title = fp_strdup("(unknown film)");
        }
out:
    film_list_free(&loaded);
    fp_free(missing);
    return rc;
}

/* ---- persons ----------------------------------------------------------- */

static void svc__who_clear(service *s)
{
    for (size_t b = 0; b < SVC_WHO_BUCKETS; b++)
        while (s->who[b]) {
            svc_who *w = s->who[b];
            s->who[b] = w->next;
            fp_free(w);
        }
    s->nwho = 0;
}

fp_err svc_person_parse(service *s, const char *type, const char *input, int refresh,
                        svc_person *out)
{
    memset(out, 0, sizeof *out);
    const source_backend *src = source_by_type(type ? type : "lb");
    if (!src)
        return FP_BAD_SOURCE;
    if (!input)
        return FP_BAD_USERNAME;
    size_t len = strlen(input);
    uint64_t h = 0;
    if (len <= SVC_WHO_INPUT_MAX) {
        uint8_t hb[crypto_shorthash_BYTES];
        crypto_shorthash(hb, (const unsigned char *)input, len, s->who_hkey);
        memcpy(&h, hb, sizeof h);
        int hit = 0;
        pthread_rwlock_rdlock(&s->who_lock);
        for (svc_who *w = s->who[h % SVC_WHO_BUCKETS]; w; w = w->next)
            if (w->hash == h && w->src == src && strcmp(w->input, input) == 0) {
                memcpy(out->user, w->user, sizeof out->user);
                memcpy(out->key, w->key, VAULT_KEY_BYTES);
                hit = 1;
                break;
            }
        pthread_rwlock_unlock(&s->who_lock);
        if (hit) {
            out->src = src;
            out->refresh = refresh;
            return FP_OK;
        }
    }
    fp_err rc = src->canonical_user(input, out->user);
    if (rc != FP_OK)
        return rc;
    out->src = src;
    out->refresh = refresh;
    vault_person_key(s->v, src->type, out->user, out->key);
    if (len <= SVC_WHO_INPUT_MAX) {
        svc_who *w = fp_malloc(sizeof *w + len + 1);
        w->hash = h;
        w->src = src;
        memcpy(w->user, out->user, sizeof w->user);
        memcpy(w->key, out->key, VAULT_KEY_BYTES);
        memcpy(w->input, input, len + 1);
        pthread_rwlock_wrlock(&s->who_lock);
        if (s->nwho >= SVC_WHO_MAX)
            svc__who_clear(s);
        w->next = s->who[h % SVC_WHO_BUCKETS];
        s->who[h % SVC_WHO_BUCKETS] = w;
        s->nwho++;
        pthread_rwlock_unlock(&s->who_lock);
    }
    return FP_OK;
}

fp_err svc_person_import(service *s, const char *token, svc_person *out)
{
    memset(out, 0, sizeof *out);
    size_t len = token ? strlen(token) : 0;
    if (len != 32 || strspn(token, "0123456789abcdef") != len)
        return FP_NOT_FOUND;
    snprintf(out->user, sizeof out->user, "%s", token);
    vault_person_key(s->v, "import", token, out->key);
    return FP_OK;
}

/* ---- tasks and jobs ---------------------------------------------------- */

static size_t svc__job_bucket(const char *id)
{
    return (size_t)strtoul(id + 28, NULL, 16) % SVC_JOB_BUCKETS;
}

static svc_job *svc__job_find(service *s, const char *id)
{
    if (!id || strlen(id) != 32 || strspn(id, "0123456789abcdef") != 32)
        return NULL;
    for (svc_job *j = s->jobs[svc__job_bucket(id)]; j; j = j->next)
        if (strcmp(j->id, id) == 0)
            return j;
    return NULL;
}

static svc_task *svc__task_find(service *s, const uint8_t key[VAULT_KEY_BYTES])
{
    for (svc_task *t = s->tasks; t; t = t->next)
        if (memcmp(t->person.key, key, VAULT_KEY_BYTES) == 0)
            return t;
    return NULL;
}

/* Called with s->mu held when a part reaches READY or FAILED. Moves the
 * job's waiters to *fired when it finishes. */
static void svc__job_free(svc_job *j);

/* A job finished less than this long ago is never dropped early: whoever
 * started it (a session's search, a waiting first-version request, a v1
 * client polling) reads its results within that time. */
#define SVC_JOB_GRACE_MS 60000

/* Finished jobs hold their people's lists (as ids) for job-ttl. Past
 * jobs-max-mb the oldest finished ones go first (never one younger than
 * SVC_JOB_GRACE_MS; the job rate limit bounds how many of those one client
 * makes) (a poll then answers 404
 * "no such job (or it expired)"; the lists stay stored, so a new job is
 * answered from storage). s->mu held. */
static void svc__jobs_bound(service *s, const svc_job *keep)
{
    size_t cap = (size_t)s->cfg->jobs_max_mb * 1024u * 1024u;
    long long young = svc__mono_ms() - SVC_JOB_GRACE_MS;
    while (s->jobs_bytes > cap) {
        svc_job **oldest = NULL;
        for (size_t b = 0; b < SVC_JOB_BUCKETS; b++)
            for (svc_job **pp = &s->jobs[b]; *pp; pp = &(*pp)->next)
                if ((*pp)->finished_ms && (*pp)->finished_ms < young && *pp != keep &&
                    (!oldest || (*pp)->finished_ms < (*oldest)->finished_ms))
                    oldest = pp;
        if (!oldest)
            return;
        svc_job *j = *oldest;
        *oldest = j->next;
        s->jobs_bytes -= j->bytes;
        s->jobs_evicted++;
        svc__job_free(j);
    }
}

static void svc__part_settled(service *s, svc_job *j, svc_waiter **fired)
{
    if (--j->pending > 0)
        return;
    j->finished_ms = svc__mono_ms();
    s->jobs_active--;
    j->bytes = sizeof *j + j->nparts * sizeof *j->parts;
    for (size_t i = 0; i < j->nparts; i++)
        j->bytes += j->parts[i].nids * sizeof *j->parts[i].ids;
    s->jobs_bytes += j->bytes;
    svc__jobs_bound(s, j);
    for (svc_waiter **pp = &s->waiters; *pp;) {
        svc_waiter *w = *pp;
        if (w->job == j) {
            *pp = w->next;
            w->done = 1;
            w->next = *fired;
            *fired = w;
        } else {
            pp = &w->next;
        }
    }
}

static void svc__fire(svc_waiter *w)
{
    while (w) {
        svc_waiter *next = w->next;
        w->fn(w->ud, w->done);
        fp_free(w);
        w = next;
    }
}

static char *svc__task_payload(const svc_person *p)
{
    json_t *o = json_pack("{s:s,s:s}", "src", p->src->type, "user", p->user);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    char *copy = fp_strdup(text ? text : "{}");
    free(text);
    return copy;
}

/* Attaches (job, part) to the person's in-flight task, creating and queueing
 * the task when there is none. Called without s->mu. */
static void svc__need_fetch(service *s, const svc_person *p, svc_job *j, size_t part)
{
    int created = 0;
    pthread_mutex_lock(&s->mu);
    svc_task *t = svc__task_find(s, p->key);
    if (!t) {
        t = fp_calloc(1, sizeof *t);
        t->person = *p;
        t->next = s->tasks;
        s->tasks = t;
        created = 1;
    }
    if (j) {
        svc_listener *l = fp_calloc(1, sizeof *l);
        l->job = j;
        l->part = part;
        l->next = t->listeners;
        t->listeners = l;
        int started = t->pages_total || t->retrying != FP_OK;
        j->parts[part].state = started ? SVC_PART_FETCHING : SVC_PART_QUEUED;
        j->parts[part].pages_done = t->pages_done;
        j->parts[part].pages_total = t->pages_total;
        j->parts[part].warning = t->retrying;
    }
    pthread_mutex_unlock(&s->mu);
    if (!created)
        return;
    char *payload = svc__task_payload(p);
    fp_err rc = s->qb->submit(s->q, payload, strlen(payload));
    fp_free(payload);
    if (rc == FP_OK)
        return;
    /* The queue refused (shutting down): fail the task's listeners now. */
    svc_waiter *fired = NULL;
    pthread_mutex_lock(&s->mu);
    for (svc_task **pp = &s->tasks; *pp; pp = &(*pp)->next)
        if (*pp == t) {
            *pp = t->next;
            break;
        }
    while (t->listeners) {
        svc_listener *l = t->listeners;
        t->listeners = l->next;
        l->job->parts[l->part].state = SVC_PART_FAILED;
        l->job->parts[l->part].error = rc;
        svc__part_settled(s, l->job, &fired);
        fp_free(l);
    }
    pthread_mutex_unlock(&s->mu);
    fp_free(t);
    svc__fire(fired);
}

/* Job ids whose parts changed, collected under s->mu and announced to the
 * listener after it is released. */
typedef struct svc_changed {
    char ids[8][33];
    size_t n;
} svc_changed;

static void svc__changed_add(svc_changed *c, const svc_job *j)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->ids[i], j->id) == 0)
            return;
    if (c->n < sizeof c->ids / sizeof c->ids[0])
        snprintf(c->ids[c->n++], sizeof c->ids[0], "%s", j->id);
}

static void svc__announce(service *s, const svc_changed *c)
{
    for (size_t i = 0; s->job_listener && i < c->n; i++)
        s->job_listener(s->job_listener_ud, c->ids[i]);
}

void svc_set_job_listener(service *s, svc_job_fn fn, void *ud)
{
    s->job_listener = fn;
    s->job_listener_ud = ud;
}

typedef struct svc_progress_ctx {
    service *s;
    const uint8_t *key;
} svc_progress_ctx;

/* A page was read (retrying FP_OK), or one failed and is tried again: then
 * the participants see the reason as a warning until the next page is read. */
static void svc__progress(void *ud, int done, int total, fp_err retrying)
{
    svc_progress_ctx *ctx = ud;
    service *s = ctx->s;
    svc_changed changed = {.n = 0};
    pthread_mutex_lock(&s->mu);
    svc_task *t = svc__task_find(s, ctx->key);
    if (t && (retrying == FP_OK || t->retrying != retrying)) {
        if (retrying == FP_OK) {
            t->pages_done = done;
            t->pages_total = total;
        }
        t->retrying = retrying;
        for (svc_listener *l = t->listeners; l; l = l->next) {
            svc_part *p = &l->job->parts[l->part];
            p->state = SVC_PART_FETCHING;
            p->pages_done = t->pages_done;
            p->pages_total = t->pages_total;
            p->warning = retrying;
            svc__changed_add(&changed, l->job);
        }
    }
    pthread_mutex_unlock(&s->mu);
    svc__announce(s, &changed);
}

static fp_err svc__store_fresh(service *s, const uint8_t key[VAULT_KEY_BYTES], const int64_t *ids,
                               size_t n, int64_t fetched_at, size_t *stored, size_t *left_out);

/* Fetches one person's list and stores it. Runs on a worker (or the CLI). */
static fp_err svc__fetch_and_store(service *s, const svc_person *p, source_progress_fn progress,
                                   void *ud)
{
    film_list films;
    int64_t *ids = NULL;
    size_t n = 0;
    long long t0 = svc__mono_ms();
    fp_err rc = p->src->fetch(&s->env, p->user, progress, ud, &films);
    if (rc == FP_OK) {
        rc = svc__resolve(s, &films, SIZE_MAX, &ids, &n, NULL);
        if (rc == FP_OK)
            rc = svc__store_fresh(s, p->key, ids, n, svc__now(), &n, NULL);
        film_list_free(&films);
    }
    fp_free(ids);
    if (rc != FP_OK)
        metrics_fetch_error(rc);
    fp_log(rc == FP_OK ? FP_LOG_INFO : FP_LOG_WARN, "watchlist_fetch", "{s:s,s:s,s:i,s:I}",
           "source", p->src->name, "result", fp_err_code(rc), "films", (int)n, "ms",
           (json_int_t)(svc__mono_ms() - t0));
    return rc;
}

static void svc__handle_job(void *ctx, const char *payload, size_t len)
{
    service *s = ctx;
    svc_person p;
    memset(&p, 0, sizeof p);
    json_error_t jerr;
    json_t *o = json_loadb(payload, len, 0, &jerr);
    const char *src = NULL, *user = NULL;
    if (!o || json_unpack(o, "{s:s,s:s}", "src", &src, "user", &user) != 0 ||
        svc_person_parse(s, src, user, 1, &p) != FP_OK) {
        fp_log(FP_LOG_ERROR, "job_payload_invalid", NULL);
        json_decref(o);
        return;
    }
    json_decref(o);

    /* A job still queued at shutdown is not started: its listeners get the
     * stored copy, or FP_UNAVAILABLE, at once. */
    pthread_mutex_lock(&s->mu);
    int stopping = s->stopping;
    pthread_mutex_unlock(&s->mu);
    svc_progress_ctx pc = {s, p.key};
    fp_err rc = stopping ? FP_UNAVAILABLE : svc__fetch_and_store(s, &p, svc__progress, &pc);

    /* Results for the listeners: the new list, or the stored copy as a fallback. */
    svc_stored st = {0};
    fp_err load_rc = svc__load(s, p.key, &st);

    svc_waiter *fired = NULL;
    svc_changed changed = {.n = 0};
    pthread_mutex_lock(&s->mu);
    svc_task *t = NULL;
    for (svc_task **pp = &s->tasks; *pp; pp = &(*pp)->next)
        if (memcmp((*pp)->person.key, p.key, VAULT_KEY_BYTES) == 0) {
            t = *pp;
            *pp = t->next;
            break;
        }
    while (t && t->listeners) {
        svc_listener *l = t->listeners;
        t->listeners = l->next;
        svc_part *part = &l->job->parts[l->part];
        if (load_rc == FP_OK) {
            part->state = SVC_PART_READY;
            part->warning = rc;
            part->error = FP_OK;
            part->ids = fp_malloc((st.n ? st.n : 1) * sizeof *st.ids);
            if (st.n)
                memcpy(part->ids, st.ids, st.n * sizeof *st.ids);
            part->nids = st.n;
            part->fetched_at = st.fetched_at;
            part->from_store = rc != FP_OK;
            if (part->pages_total == 0)
                part->pages_done = part->pages_total = t->pages_total;
        } else {
            part->state = SVC_PART_FAILED;
            part->error = rc != FP_OK ? rc : load_rc;
            part->warning = FP_OK;
        }
        svc__changed_add(&changed, l->job);
        svc__part_settled(s, l->job, &fired);
        fp_free(l);
    }
    pthread_mutex_unlock(&s->mu);
    fp_free(t);
    svc__stored_free(&st);
    svc__fire(fired);
    svc__announce(s, &changed);
}

size_t svc_fetch_cost(service *s, const svc_person *people, size_t n)
{
    size_t cost = 0;
    for (size_t i = 0; i < n; i++) {
        const svc_person *p = &people[i];
        if (!p->src)
            continue; /* an upload: nothing to fetch */
        pthread_mutex_lock(&s->mu);
        int in_flight = svc__task_find(s, p->key) != NULL;
        pthread_mutex_unlock(&s->mu);
        if (in_flight)
            continue; /* joins the fetch already running */
        if (p->refresh) {
            cost++;
            continue;
        }
        svc_stored st = {0};
        fp_err rc = svc__load(s, p->key, &st);
        if (rc == FP_NOT_FOUND || (rc == FP_OK && !svc__is_fresh(s, st.fetched_at)))
            cost++;
        svc__stored_free(&st);
    }
    return cost;
}

fp_err svc_job_start(service *s, const svc_person *people, size_t n, char job_id[33])
{
    if (n == 0)
        return FP_INVALID;
    svc_job *j = fp_calloc(1, sizeof *j);
    j->parts = fp_calloc(n, sizeof *j->parts);
    j->nparts = j->pending = n;
    j->created_at = svc__now();
    vault_random_token(j->id, 16);

    pthread_mutex_lock(&s->mu);
    if (s->stopping || s->jobs_active >= (size_t)s->cfg->max_jobs) {
        fp_err rc = s->stopping ? FP_UNAVAILABLE : FP_RATE_LIMITED;
        pthread_mutex_unlock(&s->mu);
        fp_free(j->parts);
        fp_free(j);
        return rc;
    }
    size_t b = svc__job_bucket(j->id);
    j->next = s->jobs[b];
    s->jobs[b] = j;
    s->jobs_active++;
    for (size_t i = 0; i < n; i++) {
        j->parts[i].person = people[i];
        j->parts[i].state = SVC_PART_QUEUED;
    }
    pthread_mutex_unlock(&s->mu);
    snprintf(job_id, 33, "%s", j->id);

    /* The job is reachable now but cannot finish before every part settles:
     * pending counts all parts until each one below is settled. */
    for (size_t i = 0; i < n; i++) {
        const svc_person *p = &people[i];
        svc_stored st = {0};
        fp_err rc = (p->refresh && p->src) ? FP_NOT_FOUND : svc__load(s, p->key, &st);
        if (rc == FP_OK || !p->src) {
            int stale = rc == FP_OK && !svc__is_fresh(s, st.fetched_at);
            svc_waiter *fired = NULL;
            pthread_mutex_lock(&s->mu);
            svc_part *part = &j->parts[i];
            if (rc == FP_OK) {
                part->state = SVC_PART_READY;
                part->ids = st.ids;
                part->nids = st.n;
                part->fetched_at = st.fetched_at;
                part->from_store = 1;
                st.ids = NULL;
            } else {
                part->state = SVC_PART_FAILED;
                part->error = rc;
            }
            svc__part_settled(s, j, &fired);
            pthread_mutex_unlock(&s->mu);
            svc__fire(fired);
            if (stale && p->src)
                svc__need_fetch(s, p, NULL, 0); /* background refresh */
        } else if (rc == FP_NOT_FOUND) {
            svc__need_fetch(s, p, j, i);
        } else {
            svc_waiter *fired = NULL;
            pthread_mutex_lock(&s->mu);
            j->parts[i].state = SVC_PART_FAILED;
            j->parts[i].error = rc;
            svc__part_settled(s, j, &fired);
            pthread_mutex_unlock(&s->mu);
            svc__fire(fired);
        }
        svc__stored_free(&st);
    }
    return FP_OK;
}

fp_err svc_job_view_get(service *s, const char *job_id, svc_job_view *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&s->mu);
    svc_job *j = svc__job_find(s, job_id);
    if (!j) {
        pthread_mutex_unlock(&s->mu);
        return FP_NOT_FOUND;
    }
    snprintf(out->id, sizeof out->id, "%s", j->id);
    out->done = j->pending == 0;
    out->created_at = j->created_at;
    out->nparts = j->nparts;
    out->parts = fp_calloc(j->nparts, sizeof *out->parts);
    for (size_t i = 0; i < j->nparts; i++) {
        const svc_part *p = &j->parts[i];
        svc_part_view *v = &out->parts[i];
        if (p->person.src)
            snprintf(v->user, sizeof v->user, "%s", p->person.user);
        else /* the import id is a bearer token: show only a prefix */
            snprintf(v->user, sizeof v->user, "import:%.8s", p->person.user);
        v->source = p->person.src ? p->person.src->name : "import";
        v->state = p->state;
        v->pages_done = p->pages_done;
        v->pages_total = p->pages_total;
        v->error = p->error;
        v->warning = p->warning;
        v->films = p->nids;
        v->fetched_at = p->fetched_at;
        v->from_store = p->from_store;
    }
    pthread_mutex_unlock(&s->mu);
    return FP_OK;
}

void svc_job_view_free(svc_job_view *v)
{
    FP_FREE(v->parts);
    v->nparts = 0;
}

fp_err svc_job_wait(service *s, const char *job_id, long timeout_ms, svc_wait_fn fn, void *ud)
{
    pthread_mutex_lock(&s->mu);
    svc_job *j = svc__job_find(s, job_id);
    if (!j) {
        pthread_mutex_unlock(&s->mu);
        return FP_NOT_FOUND;
    }
    if (j->pending == 0) {
        pthread_mutex_unlock(&s->mu);
        fn(ud, 1);
        return FP_OK;
    }
    svc_waiter *w = fp_calloc(1, sizeof *w);
    w->job = j;
    w->fn = fn;
    w->ud = ud;
    w->deadline_ms = svc__mono_ms() + timeout_ms;
    w->next = s->waiters;
    s->waiters = w;
    pthread_cond_signal(&s->timer_cv);
    pthread_mutex_unlock(&s->mu);
    return FP_OK;
}

/* Copies the ready parts' lists (under the lock) so set algebra runs without it. */
typedef struct svc_sets {
    pick_set *sets;
    int64_t **owned;
    size_t n;
    size_t failed;
    size_t first_failed;
    fp_err first_error;
} svc_sets;

static void svc__sets_free(svc_sets *ss)
{
    for (size_t i = 0; i < ss->n; i++)
        fp_free(ss->owned[i]);
    FP_FREE(ss->owned);
    FP_FREE(ss->sets);
    ss->n = 0;
}

static fp_err svc__job_sets(service *s, const char *job_id, svc_sets *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&s->mu);
    svc_job *j = svc__job_find(s, job_id);
    if (!j) {
        pthread_mutex_unlock(&s->mu);
        return FP_NOT_FOUND;
    }
    if (j->pending > 0) {
        pthread_mutex_unlock(&s->mu);
        return FP_PENDING;
    }
    out->sets = fp_calloc(j->nparts, sizeof *out->sets);
    out->owned = fp_calloc(j->nparts, sizeof *out->owned);
    out->first_error = FP_OK;
    for (size_t i = 0; i < j->nparts; i++) {
        svc_part *p = &j->parts[i];
        if (p->state != SVC_PART_READY) {
            if (out->failed++ == 0) {
                out->first_failed = i;
                out->first_error = p->error;
            }
            continue;
        }
        int64_t *copy = fp_malloc((p->nids ? p->nids : 1) * sizeof *copy);
        if (p->nids)
            memcpy(copy, p->ids, p->nids * sizeof *copy);
        out->owned[out->n] = copy;
        out->sets[out->n] = (pick_set){copy, p->nids};
        out->n++;
    }
    pthread_mutex_unlock(&s->mu);
    return FP_OK;
}

static void svc__fill_results(service *s, const int64_t *ids, const uint32_t *counts, size_t n,
                              svc_result_film **out)
{
    *out = NULL;
    if (n == 0)
        return;
    film *fs = fp_calloc(n, sizeof *fs);
    fp_err rc = svc__films(s, ids, n, fs);
    (void)rc; /* on failure the films carry only their ids; logged by storage */
    svc_result_film *r = fp_calloc(n, sizeof *r);
    for (size_t i = 0; i < n; i++) {
        r[i].film = fs[i];
        if (!r[i].film.title) {
            r[i].film.id = ids[i];
            r[i].film.title = fp_strdup("(unknown film)");
        }
        r[i].count = counts[i];
    }
    fp_free(fs);
    *out = r;
}

fp_err svc_job_results(service *s, const char *job_id, size_t small_threshold, size_t most_limit,
                       svc_results *out)
{
    memset(out, 0, sizeof *out);
    svc_sets ss;
    fp_err rc = svc__job_sets(s, job_id, &ss);
    if (rc != FP_OK)
        return rc;
    out->participants = ss.n;
    out->failed = ss.failed;
    if (ss.n == 0) {
        rc = FP_CONFLICT; /* every participant failed: see the job's status */
        goto out;
    }
    pick_ranked *ranked = NULL;
    size_t nranked = 0;
    uint32_t min_count = ss.n >= 2 ? 2 : 1;
    rc = pick_rank(ss.sets, ss.n, min_count, &ranked, &nranked);
    if (rc != FP_OK)
        goto out;
    size_t ncommon = 0;
    while (ncommon < nranked && ranked[ncommon].count == ss.n)
        ncommon++;
    size_t nmost = 0;
    if (ncommon < small_threshold && ss.n >= 2)
        nmost = nranked - ncommon < most_limit ? nranked - ncommon : most_limit;
    size_t total = ncommon + nmost;
    int64_t *ids = fp_malloc((total ? total : 1) * sizeof *ids);
    uint32_t *counts = fp_malloc((total ? total : 1) * sizeof *counts);
    for (size_t i = 0; i < total; i++) {
        ids[i] = ranked[i].id;
        counts[i] = ranked[i].count;
    }
    svc__fill_results(s, ids, counts, ncommon, &out->common);
    out->ncommon = ncommon;
    svc__fill_results(s, ids + ncommon, counts + ncommon, nmost, &out->most);
    out->nmost = nmost;
    fp_free(ids);
    fp_free(counts);
    fp_free(ranked);
out:
    svc__sets_free(&ss);
    return rc;
}

void svc_results_free(svc_results *r)
{
    for (size_t i = 0; i < r->ncommon; i++)
        film_clear(&r->common[i].film);
    for (size_t i = 0; i < r->nmost; i++)
        film_clear(&r->most[i].film);
    FP_FREE(r->common);
    FP_FREE(r->most);
    r->ncommon = r->nmost = 0;
}

fp_err svc_job_roll(service *s, const char *job_id, const int64_t *veto, size_t nveto,
                    const uint64_t *seed, film *out)
{
    memset(out, 0, sizeof *out);
    svc_sets ss;
    fp_err rc = svc__job_sets(s, job_id, &ss);
    if (rc != FP_OK)
        return rc;
    int64_t *cands = NULL, *sorted_veto = NULL;
    size_t ncands = 0;
    pick_ranked *ranked = NULL;
    if (ss.n == 0) {
        rc = FP_CONFLICT; /* every participant failed: see the job's status */
        goto out;
    }
    rc = pick_intersect(ss.sets, ss.n, &cands, &ncands);
    if (rc != FP_OK)
        goto out;
    sorted_veto = fp_malloc((nveto ? nveto : 1) * sizeof *sorted_veto);
    if (nveto)
        memcpy(sorted_veto, veto, nveto * sizeof *veto);
    nveto = svc__sort_unique(sorted_veto, nveto);
    size_t left = 0;
    for (size_t i = 0; i < ncands; i++)
        left += !pick_contains(sorted_veto, nveto, cands[i]);
    if (left == 0 && ss.n >= 2) {
        /* Nothing common is left: roll among the films on most lists, i.e.
         * those with the highest count that has anything unvetoed. */
        size_t nranked = 0;
        rc = pick_rank(ss.sets, ss.n, 2, &ranked, &nranked);
        if (rc != FP_OK)
            goto out;
        fp_free(cands);
        cands = fp_malloc((nranked ? nranked : 1) * sizeof *cands);
        ncands = 0;
        uint32_t level = 0;
        for (size_t i = 0; i < nranked; i++) {
            if (pick_contains(sorted_veto, nveto, ranked[i].id))
                continue;
            if (level == 0)
                level = ranked[i].count;
            if (ranked[i].count != level)
                break;
            cands[ncands++] = ranked[i].id;
        }
        ncands = svc__sort_unique(cands, ncands);
    }
    pick_rng rng;
    pick_rng_init(&rng, seed);
    int64_t chosen = 0;
    rc = pick_roll(cands, ncands, sorted_veto, nveto, &rng, &chosen);
    if (rc != FP_OK)
        goto out;
    rc = svc__films(s, &chosen, 1, out);
out:
    fp_free(ranked);
    fp_free(cands);
    fp_free(sorted_veto);
    svc__sets_free(&ss);
    return rc;
}

/* ---- watched here (watched.h) ------------------------------------------ */

/* The row key (and sealing owner) of a person's watched set: the person key
 * hashed with a context, so it never equals a watchlist row's key. */
static void svc__watched_key(const uint8_t key[VAULT_KEY_BYTES], uint8_t out[VAULT_KEY_BYTES])
{
    crypto_generichash(out, VAULT_KEY_BYTES, (const unsigned char *)SVC_WATCHED_CONTEXT,
                       sizeof SVC_WATCHED_CONTEXT - 1, key, VAULT_KEY_BYTES);
}

/* A person's watched set and its row version (0: no row yet). */
static fp_err svc__watched_load(service *s, const uint8_t key[VAULT_KEY_BYTES], watched_set *out,
                                int64_t *version)
{
    memset(out, 0, sizeof *out);
    *version = 0;
    uint8_t wk[VAULT_KEY_BYTES];
    svc__watched_key(key, wk);
    store_watchlist w = {0};
    fp_err rc = s->sb->watched_get(s->st, wk, &w);
    if (rc == FP_NOT_FOUND)
        return FP_OK;
    if (rc != FP_OK)
        return rc;
    int64_t *codes = NULL;
    size_t n = 0;
    *version = w.version; /* also for an unreadable row: an edit may replace it */
    rc = vault_unseal(s->v, wk, w.sealed, w.sealed_len, &codes, &n);
    if (rc == FP_OK)
        rc = watched_unpack(codes, n, out);
    if (rc != FP_OK) {
        fp_log(FP_LOG_ERROR, "watched_unseal_failed", "{s:s}", "error", fp_err_code(rc));
        rc = FP_CORRUPT;
    }
    fp_free(codes);
    store_watchlist_free(&w);
    return rc;
}

/* The same, but an unreadable set counts as empty (logged by the load): it
 * must not block the person's list, and the next edit replaces it. */
static fp_err svc__watched_load_lenient(service *s, const uint8_t key[VAULT_KEY_BYTES],
                                        watched_set *out, int64_t *version)
{
    fp_err rc = svc__watched_load(s, key, out, version);
    return rc == FP_CORRUPT ? FP_OK : rc;
}

/* Stores the set if the row is still at version (0: create). FP_CONFLICT
 * when someone else changed it first. */
static fp_err svc__watched_save(service *s, const uint8_t key[VAULT_KEY_BYTES],
                                const watched_set *ws, int64_t version)
{
    uint8_t wk[VAULT_KEY_BYTES];
    svc__watched_key(key, wk);
    int64_t *codes = NULL;
    size_t n = 0;
    uint8_t *blob = NULL;
    size_t blen = 0;
    fp_err rc = watched_pack(ws, &codes, &n);
    if (rc == FP_OK)
        rc = vault_seal(s->v, wk, codes, n, &blob, &blen);
    if (rc == FP_OK)
        rc = s->sb->watched_put(s->st, wk, blob, blen, svc__now(), version, NULL);
    fp_free(codes);
    fp_free(blob);
    return rc;
}

/* Adds (add=1) or removes film_id in a person's watched set, with
 * compare-and-swap retries. *changed = 1 when the set changed. */
static fp_err svc__watched_edit(service *s, const uint8_t key[VAULT_KEY_BYTES], int64_t film_id,
                                int add, int *changed)
{
    *changed = 0;
    if (film_id <= 0 || film_id >= WATCHED_MAX_FILM_ID)
        return add ? FP_INVALID : FP_OK;
    for (int attempt = 0; attempt < SVC_CAS_TRIES; attempt++) {
        watched_set ws;
        int64_t version = 0;
        fp_err rc = svc__watched_load_lenient(s, key, &ws, &version);
        if (rc != FP_OK)
            return rc;
        int c = add ? watched_add(&ws, film_id, svc__now()) : watched_remove(&ws, film_id);
        if (c)
            rc = svc__watched_save(s, key, &ws, version);
        watched_free(&ws);
        if (rc == FP_OK) {
            *changed = c;
            return FP_OK;
        }
        if (rc != FP_CONFLICT)
            return rc;
    }
    return FP_CONFLICT;
}

/* Stores a freshly fetched or imported list (ids sorted) without the
 * person's watched films. The set is read again after the write: when a
 * "watched" or "Put it back" changed it in between, the list is filtered and
 * stored again, so a refresh finishing at that moment cannot undo the change.
 * *left_out (may be NULL): films left out as watched. */
static fp_err svc__store_fresh(service *s, const uint8_t key[VAULT_KEY_BYTES], const int64_t *ids,
                               size_t n, int64_t fetched_at, size_t *stored, size_t *left_out)
{
    int64_t *work = fp_malloc((n ? n : 1) * sizeof *work);
    fp_err rc = FP_CONFLICT;
    for (int attempt = 0; attempt < SVC_CAS_TRIES; attempt++) {
        watched_set ws;
        int64_t before = 0, after = 0;
        rc = svc__watched_load_lenient(s, key, &ws, &before);
        if (rc != FP_OK)
            break;
        if (n)
            memcpy(work, ids, n * sizeof *work);
        size_t k = watched_filter(&ws, work, n);
        watched_free(&ws);
        rc = svc__store(s, key, work, k, fetched_at, -1);
        if (rc != FP_OK)
            break;
        if (stored)
            *stored = k;
        if (left_out)
            *left_out = n - k;
        rc = svc__watched_load_lenient(s, key, &ws, &after);
        watched_free(&ws);
        if (rc != FP_OK || after == before)
            break;
        rc = FP_CONFLICT; /* the set moved: filter again */
    }
    fp_free(work);
    return rc;
}

/* Edits one stored list with compare-and-swap retries: removes film_id
 * (add=0) or puts it back (add=1). *changed = 1 when the list changed. A
 * person without a stored list is left as is. */
static fp_err svc__list_edit(service *s, const uint8_t key[VAULT_KEY_BYTES], int64_t film_id,
                             int add, int *changed)
{
    *changed = 0;
    for (int attempt = 0; attempt < SVC_CAS_TRIES; attempt++) {
        store_watchlist w = {0};
        fp_err rc = s->sb->watchlist_get(s->st, key, &w);
        if (rc == FP_NOT_FOUND)
            return FP_OK;
        if (rc != FP_OK)
            return rc;
        int64_t *ids = NULL;
        size_t n = 0;
        rc = vault_unseal(s->v, key, w.sealed, w.sealed_len, &ids, &n);
        int64_t version = w.version, fetched_at = w.fetched_at;
        store_watchlist_free(&w);
        if (rc != FP_OK)
            return rc;
        size_t k = 0;
        int present = 0;
        for (size_t i = 0; i < n; i++) {
            if (ids[i] == film_id)
                present = 1;
            else
                ids[k++] = ids[i];
        }
        if (present == add) { /* already as wanted */
            fp_free(ids);
            return FP_OK;
        }
        if (add) {
            ids = fp_realloc(ids, (n + 1) * sizeof *ids);
            ids[n] = film_id;
            k = svc__sort_unique(ids, n + 1);
        }
        rc = svc__store(s, key, ids, k, fetched_at, version);
        fp_free(ids);
        if (rc == FP_OK) {
            *changed = 1;
            return FP_OK;
        }
        if (rc != FP_CONFLICT)
            return rc;
    }
    return FP_CONFLICT;
}

/* 1 in *present when the person's stored list has film_id. */
static fp_err svc__list_has(service *s, const uint8_t key[VAULT_KEY_BYTES], int64_t film_id,
                            int *present)
{
    *present = 0;
    svc_stored st = {0};
    fp_err rc = svc__load(s, key, &st);
    if (rc == FP_NOT_FOUND)
        return FP_OK;
    if (rc == FP_OK)
        *present = pick_contains(st.ids, st.n, film_id);
    svc__stored_free(&st);
    return rc;
}

/* "We will watch it" for one person who has the film on their stored list:
 * first into the watched set, then off the list. In that order a failure in
 * between leaves the film on the list but already kept off every later fetch,
 * and trying again finishes the job. *removed = 1 when it was on the list. */
static fp_err svc__remove_film(service *s, const uint8_t key[VAULT_KEY_BYTES], int64_t film_id,
                               int *removed)
{
    *removed = 0;
    int present = 0, changed = 0;
    fp_err rc = svc__list_has(s, key, film_id, &present);
    if (rc != FP_OK || !present)
        return rc;
    rc = svc__watched_edit(s, key, film_id, 1, &changed);
    if (rc == FP_OK)
        rc = svc__list_edit(s, key, film_id, 0, &changed);
    if (rc == FP_OK)
        *removed = 1;
    return rc;
}

/* "Put it back" for one person who has the film in their watched set: first
 * back on the stored list, then out of the set (a failure in between leaves
 * it filtered out as before; trying again finishes). *restored = 1 when it
 * was in the set. */
static fp_err svc__restore_film(service *s, const uint8_t key[VAULT_KEY_BYTES], int64_t film_id,
                                int *restored)
{
    *restored = 0;
    watched_set ws;
    int64_t version = 0;
    int changed = 0;
    fp_err rc = svc__watched_load_lenient(s, key, &ws, &version);
    int in_set = rc == FP_OK && watched_has(&ws, film_id);
    watched_free(&ws);
    if (rc != FP_OK || !in_set)
        return rc;
    rc = svc__list_edit(s, key, film_id, 1, &changed);
    if (rc == FP_OK)
        rc = svc__watched_edit(s, key, film_id, 0, &changed);
    if (rc == FP_OK)
        *restored = 1;
    return rc;
}

fp_err svc_unwatch_people(service *s, const svc_person *people, size_t n, int64_t film_id,
                          int *restored)
{
    fp_err rc = FP_OK;
    for (size_t i = 0; i < n && rc == FP_OK; i++) {
        int r = 0;
        rc = svc__restore_film(s, people[i].key, film_id, &r);
        if (restored)
            restored[i] = r;
    }
    return rc;
}

fp_err svc_watched_recent(service *s, const svc_person *p, int64_t since, size_t max,
                          svc_watched_film **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    watched_set ws;
    int64_t version = 0;
    fp_err rc = svc__watched_load_lenient(s, p->key, &ws, &version);
    if (rc != FP_OK)
        return rc;
    watched_entry *recent = NULL;
    size_t k = watched_recent(&ws, since, max, &recent);
    watched_free(&ws);
    if (k > 0) {
        int64_t *ids = fp_malloc(k * sizeof *ids);
        film *fs = fp_calloc(k, sizeof *fs);
        for (size_t i = 0; i < k; i++)
            ids[i] = recent[i].film_id;
        rc = svc__films(s, ids, k, fs);
        svc_watched_film *r = fp_calloc(k, sizeof *r);
        for (size_t i = 0; i < k; i++) {
            r[i].film = fs[i];
            r[i].watched_at = recent[i].at;
        }
        fp_free(fs);
        fp_free(ids);
        if (rc == FP_OK) {
            *out = r;
            *n = k;
        } else {
            svc_watched_films_free(r, k);
        }
    }
    fp_free(recent);
    return rc;
}

void svc_watched_films_free(svc_watched_film *f, size_t n)
{
    for (size_t i = 0; f && i < n; i++)
        film_clear(&f[i].film);
    fp_free(f);
}

fp_err svc_films_get(service *s, const int64_t *ids, size_t n, film *out)
{
    return svc__films(s, ids, n, out);
}

fp_err svc_watched_people(service *s, const svc_person *people, size_t n, int64_t film_id,
                          int *removed)
{
    fp_err rc = FP_OK;
    for (size_t i = 0; i < n && rc == FP_OK; i++) {
        int r = 0;
        rc = svc__remove_film(s, people[i].key, film_id, &r);
        if (removed)
            removed[i] = r;
    }
    return rc;
}

fp_err svc_client_token(service *s, const char *client_id, char out[VAULT_MAC_HEX + 1])
{
    if (!client_id || strlen(client_id) != 32 || strspn(client_id, "0123456789abcdef") != 32)
        return FP_INVALID;
    vault_mac_hex(s->v, client_id, out);
    return FP_OK;
}

/* The cookie's tag: the first 32 hex digits of the MAC of "cookie:" + id
 * (a message the CSRF token, MAC(id), never covers). */
static void svc__cookie_tag(service *s, const char *client_id, char tag[33])
{
    char msg[48], mac[VAULT_MAC_HEX + 1];
    snprintf(msg, sizeof msg, "cookie:%s", client_id);
    vault_mac_hex(s->v, msg, mac);
    memcpy(tag, mac, 32);
    tag[32] = '\0';
}

fp_err svc_client_cookie(service *s, const char *client_id, char out[SVC_COOKIE_LEN + 1])
{
    if (!client_id || strlen(client_id) != 32 || strspn(client_id, "0123456789abcdef") != 32)
        return FP_INVALID;
    char tag[33];
    svc__cookie_tag(s, client_id, tag);
    snprintf(out, SVC_COOKIE_LEN + 1, "%s%s", client_id, tag);
    return FP_OK;
}

int svc_client_from_cookie(service *s, const char *cookie, char client_id[33])
{
    client_id[0] = '\0';
    if (!cookie || strlen(cookie) != SVC_COOKIE_LEN ||
        strspn(cookie, "0123456789abcdef") != SVC_COOKIE_LEN)
        return 0;
    char id[33], tag[33];
    memcpy(id, cookie, 32);
    id[32] = '\0';
    svc__cookie_tag(s, id, tag);
    if (sodium_memcmp(tag, cookie + 32, 32) != 0)
        return 0;
    memcpy(client_id, id, 33);
    return 1;
}

int svc_client_check(service *s, const char *client_id, const char *token)
{
    if (!client_id || strlen(client_id) != 32 || strspn(client_id, "0123456789abcdef") != 32)
        return 0;
    return vault_mac_check(s->v, client_id, token);
}

/* The people of a finished job (copied; *ready[i] = 1 for a READY part).
 * FP_NOT_FOUND, FP_PENDING while it runs. Caller frees both. */
static fp_err svc__job_people(service *s, const char *job_id, svc_person **people, int **ready,
                              size_t *n)
{
    *people = NULL;
    *ready = NULL;
    *n = 0;
    pthread_mutex_lock(&s->mu);
    svc_job *j = svc__job_find(s, job_id);
    fp_err rc = !j ? FP_NOT_FOUND : j->pending > 0 ? FP_PENDING : FP_OK;
    if (rc == FP_OK) {
        *n = j->nparts;
        *people = fp_calloc(j->nparts, sizeof **people);
        *ready = fp_calloc(j->nparts, sizeof **ready);
        for (size_t i = 0; i < j->nparts; i++) {
            (*people)[i] = j->parts[i].person;
            (*ready)[i] = j->parts[i].state == SVC_PART_READY;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

fp_err svc_job_watched(service *s, const char *job_id, int64_t film_id, int *removed,
                       size_t nremoved)
{
    svc_person *people = NULL;
    int *ready = NULL;
    size_t n = 0;
    fp_err rc = svc__job_people(s, job_id, &people, &ready, &n);
    for (size_t i = 0; i < n && rc == FP_OK; i++) {
        int r = 0;
        if (ready[i])
            rc = svc__remove_film(s, people[i].key, film_id, &r);
        if (i < nremoved)
            removed[i] = r;
    }
    /* Keep the job's copies in step with storage. */
    pthread_mutex_lock(&s->mu);
    svc_job *j = svc__job_find(s, job_id);
    for (size_t i = 0; j && n && i < j->nparts; i++) {
        svc_part *p = &j->parts[i];
        size_t k = 0;
        for (size_t x = 0; x < p->nids; x++)
            if (p->ids[x] != film_id)
                p->ids[k++] = p->ids[x];
        p->nids = k;
    }
    pthread_mutex_unlock(&s->mu);
    fp_free(people);
    fp_free(ready);
    return rc;
}

fp_err svc_job_unwatched(service *s, const char *job_id, int64_t film_id, int *restored,
                         size_t nrestored)
{
    svc_person *people = NULL;
    int *ready = NULL;
    size_t n = 0;
    fp_err rc = svc__job_people(s, job_id, &people, &ready, &n);
    int *back = fp_calloc(n ? n : 1, sizeof *back);
    for (size_t i = 0; i < n && rc == FP_OK; i++)
        rc = svc__restore_film(s, people[i].key, film_id, &back[i]);
    for (size_t i = 0; i < n && i < nrestored; i++)
        restored[i] = back[i];
    /* Keep the job's copies in step with storage. */
    pthread_mutex_lock(&s->mu);
    svc_job *j = svc__job_find(s, job_id);
    for (size_t i = 0; j && i < j->nparts && i < n; i++) {
        svc_part *p = &j->parts[i];
        if (!back[i] || p->state != SVC_PART_READY || pick_contains(p->ids, p->nids, film_id))
            continue;
        p->ids = fp_realloc(p->ids, (p->nids + 1) * sizeof *p->ids);
        p->ids[p->nids] = film_id;
        p->nids = svc__sort_unique(p->ids, p->nids + 1);
    }
    pthread_mutex_unlock(&s->mu);
    fp_free(people);
    fp_free(ready);
    fp_free(back);
    return rc;
}

/* ---- first-version API ------------------------------------------------- */

/* Films for the chosen ids, appended to sample. */
static fp_err svc__sample_films(service *s, const int64_t *chosen, size_t m, film_list *sample)
{
    film fs[64];
    if (m == 0)
        return FP_OK;
    fp_err rc = svc__films(s, chosen, m, fs);
    for (size_t i = 0; i < m; i++)
        *film_list_push(sample) = fs[i];
    return rc;
}

/* Intersects sets and draws up to k films. *common_out (when not NULL)
 * receives the full intersection, caller frees. */
static fp_err svc__sample(service *s, pick_set *sets, size_t nsets, size_t k,
                          size_t *intersection_len, film_list *sample, int64_t **common_out)
{
    int64_t *common = NULL;
    size_t ncommon = 0;
    film_list_init(sample);
    fp_err rc = pick_intersect(sets, nsets, &common, &ncommon);
    if (rc != FP_OK)
        return rc;
    *intersection_len = ncommon;
    int64_t chosen[64];
    if (k > 64)
        k = 64;
    pick_rng rng;
    pick_rng_init(&rng, NULL);
    size_t m = pick_sample(common, ncommon, k, &rng, chosen);
    if (common_out)
        *common_out = common;
    else
        fp_free(common);
    return svc__sample_films(s, chosen, m, sample);
}

fp_err svc_quick_intersection(service *s, const svc_person *people, size_t n,
                              size_t *intersection_len, film_list *sample)
{
    film_list_init(sample);
    *intersection_len = 0;
    if (n == 0 || n > 64)
        return FP_INVALID;
    int refresh = 0;
    for (size_t i = 0; i < n; i++)
        refresh |= people[i].refresh && people[i].src;
    if (refresh)
        return FP_PENDING;

    /* Fast path: this group's common films are cached. */
    size_t bucket = 0, m = 0, k = n + 1;
    uint8_t *keys = svc__sorted_keys(people, n, &bucket);
    int64_t chosen[65];
    if (svc__combo_sample(s, keys, n, bucket, k, intersection_len, chosen, &m)) {
        fp_free(keys);
        return svc__sample_films(s, chosen, m, sample);
    }

    pthread_rwlock_rdlock(&s->hot_lock);
    uint64_t gen = s->gen; /* a change after this invalidates what we cache */
    pthread_rwlock_unlock(&s->hot_lock);
    svc_stored *st = fp_calloc(n, sizeof *st);
    pick_set *sets = fp_calloc(n, sizeof *sets);
    int64_t min_fetched = INT64_MAX;
    fp_err rc = FP_OK;
    for (size_t i = 0; i < n && rc == FP_OK; i++) {
        rc = svc__load(s, people[i].key, &st[i]);
        if (rc == FP_NOT_FOUND)
            rc = people[i].src ? FP_PENDING : FP_NOT_FOUND;
        sets[i] = (pick_set){st[i].ids, st[i].n};
        if (rc == FP_OK && st[i].fetched_at < min_fetched)
            min_fetched = st[i].fetched_at;
    }
    if (rc == FP_OK) {
        for (size_t i = 0; i < n; i++)
            if (people[i].src && !svc__is_fresh(s, st[i].fetched_at))
                svc__need_fetch(s, &people[i], NULL, 0); /* stale: refresh behind */
        int64_t *common = NULL;
        rc = svc__sample(s, sets, n, k, intersection_len, sample, &common);
        if (rc == FP_OK) {
            svc__combo_put(s, keys, n, bucket, gen, min_fetched, common, *intersection_len);
            keys = NULL;
        }
        fp_free(common);
    }
    fp_free(keys);
    for (size_t i = 0; i < n; i++)
        svc__stored_free(&st[i]);
    fp_free(st);
    fp_free(sets);
    return rc;
}

fp_err svc_job_sample(service *s, const char *job_id, size_t *intersection_len,
                      film_list *sample, size_t *failed_index)
{
    film_list_init(sample);
    *intersection_len = 0;
    svc_sets ss;
    fp_err rc = svc__job_sets(s, job_id, &ss);
    if (rc != FP_OK)
        return rc;
    if (ss.failed > 0) {
        *failed_index = ss.first_failed;
        rc = ss.first_error;
    } else {
        rc = svc__sample(s, ss.sets, ss.n, ss.n + 1, intersection_len, sample, NULL);
    }
    svc__sets_free(&ss);
    return rc;
}

fp_err svc_remove_by_slug(service *s, const svc_person *p, const char *slug, int *removed)
{
    *removed = 0;
    svc_stored st = {0};
    fp_err rc = svc__load(s, p->key, &st);
    if (rc == FP_NOT_FOUND)
        return FP_OK;
    if (rc != FP_OK)
        return rc;
    film *fs = fp_calloc(st.n ? st.n : 1, sizeof *fs);
    rc = svc__films(s, st.ids, st.n, fs);
    int64_t film_id = 0;
    for (size_t i = 0; i < st.n; i++) {
        /* the first version's API names a film by its slug, or, lacking one,
         * by its boxd.it link or title (as POST /api/scrape/ does) */
        const char *name = fs[i].lb_slug ? fs[i].lb_slug
                                         : (fs[i].lb_uri ? fs[i].lb_uri : fs[i].title);
        if (rc == FP_OK && !film_id && name && strcmp(name, slug) == 0)
            film_id = fs[i].id;
        film_clear(&fs[i]);
    }
    fp_free(fs);
    svc__stored_free(&st);
    if (rc == FP_OK && film_id)
        rc = svc__remove_film(s, p->key, film_id, removed);
    return rc;
}

fp_err svc_person_stored(service *s, const svc_person *p, int *stored)
{
    svc_stored st = {0};
    fp_err rc = svc__load(s, p->key, &st);
    *stored = rc == FP_OK;
    svc__stored_free(&st);
    return rc == FP_NOT_FOUND ? FP_OK : rc;
}

/* ---- import ------------------------------------------------------------ */

fp_err svc_import(service *s, const svc_person *p, const unsigned char *data, size_t len,
                  const char *filename, svc_import_report *out)
{
    memset(out, 0, sizeof *out);
    import_result_init(&out->detail);
    fp_err rc = import_parse(data, len, filename, &out->detail);
    out->format = out->detail.format;
    if (rc != FP_OK)
        return rc;
    if (out->detail.films.len == 0)
        return FP_EMPTY_WATCHLIST;
    svc_person tmp;
    const svc_person *who = p;
    if (!who) {
        char token[33];
        vault_random_token(token, 16);
        rc = svc_person_import(s, token, &tmp);
        if (rc != FP_OK)
            return rc;
        snprintf(out->token, sizeof out->token, "%s", token);
        who = &tmp;
    }
    int64_t *ids = NULL;
    size_t n = 0, new_films = 0, max_new = (size_t)s->cfg->import_max_new_films;
    rc = svc__resolve(s, &out->detail.films, max_new, &ids, &n, &new_films);
    if (rc == FP_OK)
        rc = svc__store_fresh(s, who->key, ids, n, svc__now(), &n, &out->watched);
    fp_free(ids);
    if (rc == FP_TOO_MANY_FILMS) {
        n = 0;
        out->token[0] = '\0'; /* nothing was stored under it */
        out->new_films = new_films;
        fp_free(out->detail.message);
        out->detail.message = fp_printf(
            "the file has %zu films that are not in the film catalogue yet; one import may add "
            "at most %zu new films, so nothing was stored",
            new_films, max_new);
    }
    out->films = n;
    fp_log(rc == FP_TOO_MANY_FILMS ? FP_LOG_WARN : FP_LOG_INFO, "watchlist_import",
           "{s:s,s:s,s:i,s:i,s:I}", "format", out->format ? out->format : "?", "result",
           fp_err_code(rc), "films", (int)n, "row_errors", (int)out->detail.nerrors_total,
           "new_films", (json_int_t)new_films);
    return rc;
}

void svc_import_report_free(svc_import_report *r)
{
    import_result_free(&r->detail);
}

fp_err svc_person_films(service *s, const svc_person *p, film_list *out)
{
    film_list_init(out);
    svc_stored st = {0};
    fp_err rc = (p->refresh && p->src) ? FP_NOT_FOUND : svc__load(s, p->key, &st);
    if (p->src && (rc == FP_NOT_FOUND || (rc == FP_OK && !svc__is_fresh(s, st.fetched_at)))) {
        svc__stored_free(&st);
        rc = svc__fetch_and_store(s, p, NULL, NULL);
        if (rc == FP_OK)
            rc = svc__load(s, p->key, &st);
    }
    if (rc == FP_OK && st.n) {
        film *fs = fp_calloc(st.n, sizeof *fs);
        rc = svc__films(s, st.ids, st.n, fs);
        for (size_t i = 0; i < st.n; i++)
            *film_list_push(out) = fs[i];
        fp_free(fs);
    }
    svc__stored_free(&st);
    return rc;
}

/* ---- timer: waiter deadlines and job expiry ---------------------------- */

static void svc__job_free(svc_job *j)
{
    for (size_t i = 0; i < j->nparts; i++)
        fp_free(j->parts[i].ids);
    fp_free(j->parts);
    fp_free(j);
}

static void *svc__timer(void *arg)
{
    service *s = arg;
    pthread_mutex_lock(&s->mu);
    while (!s->stopping) {
        long long now = svc__mono_ms(), next = now + 1000;
        svc_waiter *fired = NULL;
        for (svc_waiter **pp = &s->waiters; *pp;) {
            svc_waiter *w = *pp;
            if (w->deadline_ms <= now) {
                *pp = w->next;
                w->next = fired;
                fired = w;
            } else {
                if (w->deadline_ms < next)
                    next = w->deadline_ms;
                pp = &w->next;
            }
        }
        long long ttl_ms = s->cfg->job_ttl_s * 1000LL;
        for (size_t b = 0; b < SVC_JOB_BUCKETS; b++)
            for (svc_job **pp = &s->jobs[b]; *pp;) {
                svc_job *j = *pp;
                if (j->finished_ms && now - j->finished_ms > ttl_ms) {
                    *pp = j->next;
                    s->jobs_bytes -= j->bytes;
                    svc__job_free(j);
                } else {
                    pp = &j->next;
                }
            }
        if (fired) {
            pthread_mutex_unlock(&s->mu);
            svc__fire(fired);
            pthread_mutex_lock(&s->mu);
            continue;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        long long wait = next - now;
        ts.tv_sec += wait / 1000;
        ts.tv_nsec += (wait % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&s->timer_cv, &s->mu, &ts);
    }
    /* Shutting down: release every waiter as timed out. */
    svc_waiter *w = s->waiters;
    s->waiters = NULL;
    pthread_mutex_unlock(&s->mu);
    svc__fire(w);
    return NULL;
}

/* ---- the catalogue sweep -------------------------------------------------- */

static int svc__stopping(service *s)
{
    pthread_mutex_lock(&s->mu);
    int stop = s->stopping;
    pthread_mutex_unlock(&s->mu);
    return stop;
}

/* A growing array of film ids, sorted and deduplicated now and then so that
 * it stays near the number of distinct films, not the sum of all lists. */
typedef struct svc_idset {
    int64_t *ids;
    size_t n, cap, unique; /* ids[0..unique) is sorted and unique */
} svc_idset;

static void svc__idset_compact(svc_idset *set)
{
    set->n = set->unique = svc__sort_unique(set->ids, set->n);
}

static void svc__idset_add(svc_idset *set, const int64_t *ids, size_t n)
{
    if (set->n + n > set->cap) {
        if (set->n > 2 * set->unique + 65536) {
            svc__idset_compact(set);
            if (set->n + n <= set->cap)
                goto copy;
        }
        size_t cap = set->cap ? set->cap : 4096;
        while (cap < set->n + n)
            cap *= 2;
        set->ids = fp_reallocarray(set->ids, cap, sizeof *set->ids);
        set->cap = cap;
    }
copy:
    if (n)
        memcpy(set->ids + set->n, ids, n * sizeof *ids);
    set->n += n;
}

static int svc__idset_has(const svc_idset *set, int64_t id)
{
    return set->n && bsearch(&id, set->ids, set->n, sizeof *set->ids, svc__cmp_i64) != NULL;
}

/* Adds the films of every sealed row of one kind to used. */
static fp_err svc__sweep_collect(service *s, store_sealed_kind kind, svc_idset *used,
                                 size_t *rows_read, size_t *unreadable)
{
    uint8_t after[STORE_KEY_BYTES];
    int have_after = 0;
    for (;;) {
        if (svc__stopping(s))
            return FP_UNAVAILABLE;
        store_sealed_row *rows = NULL;
        size_t n = 0;
        fp_err rc = s->sb->sealed_page(s->st, kind, have_after ? after : NULL, SVC_SWEEP_ROWS,
                                       &rows, &n);
        if (rc != FP_OK)
            return rc;
        for (size_t i = 0; i < n; i++) {
            int64_t *ids = NULL;
            size_t nids = 0;
            /* Both kinds are sealed under their row key. */
            fp_err u = vault_unseal(s->v, rows[i].key, rows[i].sealed, rows[i].sealed_len, &ids,
                                    &nids);
            if (u == FP_OK && kind == STORE_SEALED_WATCHED) {
                watched_set ws;
                u = watched_unpack(ids, nids, &ws);
                for (size_t k = 0; u == FP_OK && k < ws.n; k++)
                    ids[k] = ws.items[k].film_id;
                if (u == FP_OK)
                    nids = ws.n;
                watched_free(&ws);
            }
            if (u == FP_OK)
                svc__idset_add(used, ids, nids);
            else
                (*unreadable)++; /* cannot be read by anyone: holds nothing back */
            fp_free(ids);
        }
        *rows_read += n;
        if (n)
            memcpy(after, rows[n - 1].key, STORE_KEY_BYTES);
        have_after = 1;
        store_sealed_rows_free(rows, n);
        if (n < SVC_SWEEP_ROWS)
            return FP_OK;
    }
}

fp_err svc_sweep(service *s, svc_sweep_report *out)
{
    memset(out, 0, sizeof *out);
    long long t0 = svc__mono_ms();
    svc_idset used = {0};
    store_film_mark *page = fp_malloc(SVC_SWEEP_FILMS * sizeof *page);
    int64_t *mark = fp_malloc(SVC_SWEEP_FILMS * sizeof *mark);
    int64_t *clear = fp_malloc(SVC_SWEEP_FILMS * sizeof *clear);
    int64_t *del = fp_malloc(SVC_SWEEP_FILMS * sizeof *del);
    pthread_mutex_lock(&s->sweep_mu);
    /* Every list stored before this point is read; one stored later holds
     * films that resolving it unmarked, or that are newer than any mark:
     * either way a mark from this sweep is not old enough to delete them
     * before the next sweep reads that list (unless the grace is 0). */
    fp_err rc = svc__sweep_collect(s, STORE_SEALED_WATCHLISTS, &used, &out->lists,
                                   &out->unreadable);
    if (rc == FP_OK)
        rc = svc__sweep_collect(s, STORE_SEALED_WATCHED, &used, &out->watched_sets,
                                &out->unreadable);
    svc__idset_compact(&used);
    out->used = used.n;
    int64_t now = svc__now(), cutoff = now - s->cfg->catalogue_grace_s;
    int64_t after = 0;
    while (rc == FP_OK) {
        size_t n = 0, nmark = 0, nclear = 0, ndel = 0, deleted = 0;
        if (svc__stopping(s)) {
            rc = FP_UNAVAILABLE;
            break;
        }
        rc = s->sb->films_page(s->st, after, SVC_SWEEP_FILMS, page, &n);
        if (rc != FP_OK || n == 0)
            break;
        for (size_t i = 0; i < n; i++) {
            const store_film_mark *f = &page[i];
            if (svc__idset_has(&used, f->id)) {
                if (f->orphaned_at)
                    clear[nclear++] = f->id;
                continue;
            }
            int64_t since = f->orphaned_at ? f->orphaned_at : now;
            if (!f->orphaned_at)
                mark[nmark++] = f->id;
            if (since <= cutoff)
                del[ndel++] = f->id;
        }
        out->films += n;
        after = page[n - 1].id;
        /* Short transactions, one kind of change each: other writers get
         * the lock in between. */
        rc = s->sb->films_mark(s->st, clear, nclear, 0);
        if (rc == FP_OK)
            rc = s->sb->films_mark(s->st, mark, nmark, now);
        if (rc == FP_OK)
            rc = s->sb->films_delete_orphans(s->st, del, ndel, cutoff, &deleted);
        if (rc == FP_OK) {
            out->unmarked += nclear;
            out->marked += nmark;
            out->deleted += deleted;
        }
        if (n < SVC_SWEEP_FILMS)
            break;
    }
    pthread_mutex_unlock(&s->sweep_mu);
    out->ms = svc__mono_ms() - t0;
    fp_log(rc == FP_OK ? FP_LOG_INFO : FP_LOG_WARN, "catalogue_sweep",
           "{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "result", fp_err_code(rc), "watchlists",
           (json_int_t)out->lists, "watched_sets", (json_int_t)out->watched_sets, "unreadable",
           (json_int_t)out->unreadable, "films", (json_int_t)out->films, "used",
           (json_int_t)out->used, "marked", (json_int_t)out->marked, "unmarked",
           (json_int_t)out->unmarked, "deleted", (json_int_t)out->deleted, "ms",
           (json_int_t)out->ms);
    metrics_catalogue_sweep(rc == FP_OK, out->deleted);
    fp_free(used.ids);
    fp_free(page);
    fp_free(mark);
    fp_free(clear);
    fp_free(del);
    return rc;
}

/* Runs a sweep every catalogue-sweep-interval seconds until the service
 * stops (the first one an interval after the start). */
static void *svc__sweeper(void *arg)
{
    service *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += s->cfg->catalogue_sweep_s;
        while (!s->stopping) {
            if (pthread_cond_timedwait(&s->sweep_cv, &s->mu, &ts) != 0)
                break; /* the interval is over */
        }
        if (s->stopping)
            break;
        pthread_mutex_unlock(&s->mu);
        svc_sweep_report rep;
        fp_err rc = svc_sweep(s, &rep); /* logged there */
        (void)rc;
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

fp_err svc_start_sweeper(service *s)
{
    if (s->cfg->catalogue_sweep_s <= 0 || s->sweeper_started)
        return FP_OK;
    if (pthread_create(&s->sweeper, NULL, svc__sweeper, s) != 0)
        return FP_INTERNAL;
    s->sweeper_started = 1;
    return FP_OK;
}

/* ---- posters ---------------------------------------------------------- */

/* The poster path of a catalogue film, fresh from storage (a page may have
 * given a newer image since the film was cached). */
static fp_err svc__poster_path(void *ud, int64_t film_id, char **path)
{
    service *s = ud;
    film_list l;
    film_list_init(&l);
    fp_err rc = s->sb->films_load(s->st, &film_id, 1, &l);
    if (rc == FP_OK) {
        if (l.len == 1 && l.items[0].poster && film_poster_path_ok(l.items[0].poster)) {
            *path = l.items[0].poster;
            l.items[0].poster = NULL;
        } else {
            rc = FP_NOT_FOUND;
        }
    }
    film_list_free(&l);
    return rc;
}

void svc_poster(service *s, int64_t film_id, poster_done_fn done, void *ud)
{
    poster_get(s->posters, film_id, done, ud);
}

void svc_posters_abort(service *s)
{
    poster_proxy_abort(s->posters);
}

/* ---- lifecycle --------------------------------------------------------- */

fp_err svc_open(const fp_config *cfg, int with_workers, service **out)
{
    vault_kek *kek = NULL;
    *out = NULL;
    service *s = fp_calloc(1, sizeof *s);
    s->cfg = cfg;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->timer_cv, NULL);
    pthread_cond_init(&s->sweep_cv, NULL);
    pthread_mutex_init(&s->film_mu, NULL);
    pthread_mutex_init(&s->sweep_mu, NULL);
    pthread_rwlock_init(&s->hot_lock, NULL);
    pthread_rwlock_init(&s->who_lock, NULL);
    fp_err rc = FP_CRYPTO;
    if (sodium_init() < 0)
        goto fail;
    crypto_shorthash_keygen(s->who_hkey);
    /* The server key first (a bad key fails before the database is touched),
     * then the database, then the data key stored in it, which the vault's
     * sub-keys derive from (datakey.h): a server key that does not open it
     * stops the start here. */
    rc = vault_kek_open(cfg->secret_key, cfg->secret_key_file, VAULT_KEK_CREATE, &kek);
    if (rc != FP_OK) {
        fp_log(FP_LOG_ERROR, "vault_open_failed", "{s:s}", "error", fp_err_code(rc));
        goto fail;
    }
    rc = store_open(cfg->database, &s->sb, &s->st);
    if (rc != FP_OK) {
        fp_log(FP_LOG_ERROR, "store_open_failed", "{s:s,s:s}", "error", fp_err_code(rc),
               "message", fp_err_message(rc));
        goto fail;
    }
    rc = s->sb->migrate(s->st, -1);
    if (rc != FP_OK) {
        fp_log(FP_LOG_ERROR, "migrate_failed", "{s:s}", "error", fp_err_code(rc));
        goto fail;
    }
    char *shown = store_url_redacted(cfg->database); /* logged: never the password */
    rc = datakey_open(kek, s->sb, s->st, shown, &s->v, NULL);
    fp_free(shown);
    vault_kek_free(&kek);
    if (rc != FP_OK) {
        fp_log(FP_LOG_ERROR, "vault_open_failed", "{s:s}", "error", fp_err_code(rc));
        goto fail;
    }
    s->cb = cache_backend_for(cfg->cache);
    if (!s->cb) {
        fp_log(FP_LOG_ERROR, "unknown_cache_backend", "{s:s}", "cache", cfg->cache);
        rc = FP_INVALID;
        goto fail;
    }
    rc = s->cb->open(cfg->cache, &s->ca);
    if (rc != FP_OK)
        goto fail;
    size_t blen = strlen(cfg->letterboxd_url);
    while (blen > 0 && cfg->letterboxd_url[blen - 1] == '/')
        blen--;
    s->base_url = fp_strndup(cfg->letterboxd_url, blen);
    views_set_letterboxd_url(s->base_url);
    fetch_options fo = {
        .max_per_host = cfg->host_concurrency,
        .timeout_ms = cfg->fetch_timeout_ms,
        .retries = cfg->fetch_retries,
        .backoff_ms = cfg->fetch_backoff_ms,
        .retry_after_max_ms = cfg->retry_after_max_ms,
        .max_body = 8u * 1024u * 1024u,
        .user_agent = cfg->user_agent,
    };
    rc = fetch_client_new(&fo, &s->fetch);
    if (rc != FP_OK)
        goto fail;
    s->env = (source_env){s->fetch, s->base_url, cfg->max_pages};
    poster_config pc = {
        .image_base = cfg->letterboxd_image_url,
        .fetch = s->fetch,
        .cb = s->cb,
        .ca = s->ca,
        .lookup = svc__poster_path,
        .lookup_ud = s,
        .ttl_s = SVC_POSTER_TTL_S,
        .missing_ttl_s = SVC_POSTER_MISSING_TTL_S,
        .max_bytes = SVC_POSTER_MAX_BYTES,
    };
    rc = poster_proxy_new(&pc, &s->posters);
    if (rc != FP_OK)
        goto fail;
    s->qb = queue_backend_for(cfg->queue);
    if (!s->qb) {
        fp_log(FP_LOG_ERROR, "unknown_queue_backend", "{s:s}", "queue", cfg->queue);
        rc = FP_INVALID;
        goto fail;
    }
    rc = s->qb->open(cfg->queue, with_workers ? cfg->workers : 1, svc__handle_job, s, &s->q);
    if (rc != FP_OK)
        goto fail;
    if (pthread_create(&s->timer, NULL, svc__timer, s) != 0) {
        rc = FP_INTERNAL;
        goto fail;
    }
    s->timer_started = 1;
    *out = s;
    return FP_OK;
fail:
    vault_kek_free(&kek);
    svc_close(&s);
    return rc;
}

void svc_close(service **sp)
{
    service *s = *sp;
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_mutex_unlock(&s->mu);
    fetch_client_drain(s->fetch); /* no retries from now on */
    if (s->q)
        s->qb->close(s->q); /* drains: running fetches finish and store, queued jobs end */
    pthread_mutex_lock(&s->mu);
    pthread_cond_broadcast(&s->timer_cv);
    pthread_cond_broadcast(&s->sweep_cv);
    pthread_mutex_unlock(&s->mu);
    if (s->timer_started)
        pthread_join(s->timer, NULL);
    if (s->sweeper_started) /* a running sweep stops at its next page */
        pthread_join(s->sweeper, NULL);
    fetch_client_free(&s->fetch);
    poster_proxy_free(&s->posters); /* no fetch is left to land */
    for (size_t b = 0; b < SVC_JOB_BUCKETS; b++)
        while (s->jobs[b]) {
            svc_job *j = s->jobs[b];
            s->jobs[b] = j->next;
            svc__job_free(j);
        }
    while (s->tasks) { /* only tasks whose job never ran */
        svc_task *t = s->tasks;
        s->tasks = t->next;
        while (t->listeners) {
            svc_listener *l = t->listeners;
            t->listeners = l->next;
            fp_free(l);
        }
        fp_free(t);
    }
    for (size_t b = 0; b < SVC_FILM_BUCKETS; b++)
        while (s->films[b]) {
            svc_film_entry *e = s->films[b];
            s->films[b] = e->next;
            film_clear(&e->f);
            fp_free(e);
        }
    if (s->ca)
        s->cb->close(s->ca);
    if (s->st)
        s->sb->close(s->st);
    vault_free(&s->v);
    fp_free(s->base_url);
    svc__hot_clear(s);
    svc__combo_clear(s);
    svc__who_clear(s);
    pthread_rwlock_destroy(&s->who_lock);
    pthread_rwlock_destroy(&s->hot_lock);
    pthread_mutex_destroy(&s->film_mu);
    pthread_mutex_destroy(&s->sweep_mu);
    pthread_cond_destroy(&s->timer_cv);
    pthread_cond_destroy(&s->sweep_cv);
    pthread_mutex_destroy(&s->mu);
    fp_free(s);
    *sp = NULL;
}

void svc_get_stats(service *s, svc_stats *out)
{
    memset(out, 0, sizeof *out);
    if (s->q)
        s->qb->stats(s->q, &out->jobs_queued, &out->jobs_running);
    pthread_mutex_lock(&s->mu);
    out->groups_active = s->jobs_active;
    out->jobs_bytes = s->jobs_bytes;
    out->jobs_evicted = s->jobs_evicted;
    pthread_mutex_unlock(&s->mu);
    fetch_stats fs;
    fetch_get_stats(s->fetch, &fs);
    out->fetch_requests = fs.requests;
    out->fetch_retries = fs.retries;
    if (s->sb && s->st && s->sb->pool_stats) {
        store_pool_stats ps;
        s->sb->pool_stats(s->st, &ps);
        out->db_pool_in_use = ps.in_use;
        out->db_pool_open = ps.open;
        out->db_pool_max = ps.max;
    }
}

fp_err svc_health(service *s)
{
    return s->sb->ping(s->st);
}

/* The current server key and the database (migrated), and for re-keying the
 * next server key: what the key commands work on. */
typedef struct svc_keyctx {
    vault_kek *cur, *next;
    const store_backend *sb;
    store *st;
    char *shown; /* the database URL without its password, for logs */
} svc_keyctx;

static void svc__keyctx_close(svc_keyctx *c)
{
    if (c->st)
        c->sb->close(c->st);
    vault_kek_free(&c->cur);
    vault_kek_free(&c->next);
    fp_free(c->shown);
    memset(c, 0, sizeof *c);
}

/* kek_flags: VAULT_KEK_CREATE only for starting afresh; elsewhere a missing
 * key file is the question, not something to paper over. */
static fp_err svc__keyctx_open(const fp_config *cfg, int kek_flags, svc_keyctx *c)
{
    memset(c, 0, sizeof *c);
    c->shown = store_url_redacted(cfg->database);
    fp_err rc = vault_kek_open(cfg->secret_key, cfg->secret_key_file, kek_flags, &c->cur);
    if (rc == FP_OK)
        rc = store_open(cfg->database, &c->sb, &c->st);
    if (rc == FP_OK)
        rc = c->sb->migrate(c->st, -1);
    if (rc != FP_OK)
        svc__keyctx_close(c);
    return rc;
}

fp_err svc_key_status(const fp_config *cfg, svc_key_info *out)
{
    svc_keyctx c;
    memset(out, 0, sizeof *out);
    fp_err rc = svc__keyctx_open(cfg, 0, &c);
    if (rc != FP_OK)
        return rc;
    datakey_status ds;
    rc = datakey_check(c.cur, c.sb, c.st, &ds);
    if (rc == FP_OK) {
        out->stored = ds.stored;
        out->opens = ds.opens;
        out->watchlists = ds.watchlists;
        out->watched = ds.watched;
        out->created_at = ds.created_at;
        out->updated_at = ds.updated_at;
    }
    svc__keyctx_close(&c);
    return rc;
}

fp_err svc_key_rotate(const fp_config *cfg, const char *new_key_file, int *created)
{
    svc_keyctx c;
    vault *v = NULL;
    *created = 0;
    fp_err rc = svc__keyctx_open(cfg, 0, &c);
    /* The current key must open the database before a new key file is
     * made: a refused re-keying leaves nothing behind. */
    if (rc == FP_OK)
        rc = datakey_open(c.cur, c.sb, c.st, c.shown, &v, NULL);
    vault_free(&v);
    if (rc == FP_OK)
        rc = vault_kek_open(NULL, new_key_file, VAULT_KEK_CREATE, &c.next);
    if (rc == FP_OK) {
        *created = vault_kek_created(c.next);
        rc = datakey_rotate(c.cur, c.next, c.sb, c.st, c.shown);
    }
    svc__keyctx_close(&c);
    return rc;
}

fp_err svc_key_reset(const fp_config *cfg, size_t *watchlists, size_t *watched)
{
    svc_keyctx c;
    *watchlists = *watched = 0;
    fp_err rc = svc__keyctx_open(cfg, VAULT_KEK_CREATE, &c);
    if (rc != FP_OK)
        return rc;
    rc = datakey_reset(c.cur, c.sb, c.st, c.shown, watchlists, watched);
    svc__keyctx_close(&c);
    return rc;
}

fp_err svc_migrate(const fp_config *cfg, int target, int *current, int *latest)
{
    const store_backend *sb = NULL;
    store *st = NULL;
    fp_err rc = store_open(cfg->database, &sb, &st);
    if (rc != FP_OK)
        return rc;
    if (target != -2)
        rc = sb->migrate(st, target);
    if (rc == FP_OK)
        rc = sb->migration_status(st, current, latest);
    sb->close(st);
    return rc;
}

/*
 * lists.c - stored lists: loading (decoded-list memory, then the cache, then
 * storage), storing a fetched or imported list (sealed, with the watched
 * films left out), catalogue resolution, the film cache, and the per-group
 * memo of common films.
 */
#include "app/app_internal.h"


void svc__stored_free(svc_stored *st)
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

void svc__combo_clear(service *s)
{
    for (size_t b = 0; b < SVC_COMBO_BUCKETS; b++)
        while (s->combos[b]) {
            svc_combo *c = s->combos[b];
            s->combos[b] = c->next;
            svc__combo_free(c);
        }
    s->ncombos = 0;
}

void svc__hot_clear(service *s)
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

/* Another process stored this person's list: the decoded copy and every
 * group memo built on it are out of date here. */
void svc__list_changed(service *s, const uint8_t key[VAULT_KEY_BYTES])
{
    svc__hot_drop(s, key);
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
uint8_t *svc__sorted_keys(const svc_person *people, size_t n, size_t *bucket)
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
int svc__combo_sample(service *s, const uint8_t *keys, size_t n, size_t bucket, size_t k,
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

void svc__combo_put(service *s, uint8_t *keys, size_t n, size_t bucket, uint64_t gen,
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
fp_err svc__load(service *s, const uint8_t key[VAULT_KEY_BYTES], svc_stored *out)
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
            atomic_fetch_add_explicit(&s->cache_hits, 1, memory_order_relaxed);
            svc__hot_put(s, key, out->ids, out->n, out->fetched_at, out->version);
            return FP_OK;
        }
        svc__cache_drop(s, key); /* a bad cache entry is only a miss */
    } else {
        fp_free(val);
    }
    /* Absent, unreadable or the cache away: the database answers. */
    atomic_fetch_add_explicit(&s->cache_misses, 1, memory_order_relaxed);
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

int svc__is_fresh(service *s, int64_t fetched_at)
{
    return svc__now() - fetched_at <= s->cfg->max_age_s;
}

int svc__cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

size_t svc__sort_unique(int64_t *ids, size_t n)
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
fp_err svc__store(service *s, const uint8_t key[VAULT_KEY_BYTES], const int64_t *ids,
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
fp_err svc__resolve(service *s, film_list *films, size_t max_new, int64_t **ids, size_t *n,
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
fp_err svc__films(service *s, const int64_t *ids, size_t n, film *out)
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

/* Stores a freshly fetched or imported list (ids sorted) without the
 * person's watched films. The set is read again after the write: when a
 * "watched" or "Put it back" changed it in between, the list is filtered and
 * stored again, so a refresh finishing at that moment cannot undo the change.
 * *left_out (may be NULL): films left out as watched. */
fp_err svc__store_fresh(service *s, const uint8_t key[VAULT_KEY_BYTES], const int64_t *ids,
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

fp_err svc_films_get(service *s, const int64_t *ids, size_t n, film *out)
{
    return svc__films(s, ids, n, out);
}

fp_err svc_person_stored(service *s, const svc_person *p, int *stored)
{
    svc_stored st = {0};
    fp_err rc = svc__load(s, p->key, &st);
    *stored = rc == FP_OK;
    svc__stored_free(&st);
    return rc == FP_NOT_FOUND ? FP_OK : rc;
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

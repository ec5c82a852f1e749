/*
 * marks.c - "watched here": marking a film watched for a job's or session's
 * people (their watched sets and stored lists), putting it back, and the
 * recently watched films.
 */
#include "app/app_internal.h"

/* ---- watched sets (watched.h) ------------------------------------------ */

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
fp_err svc__watched_load_lenient(service *s, const uint8_t key[VAULT_KEY_BYTES],
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
fp_err svc__remove_film(service *s, const uint8_t key[VAULT_KEY_BYTES], int64_t film_id,
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
    (void)svc__job_ensure(s, job_id); /* not known here: nothing to keep in step */
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
    (void)svc__job_ensure(s, job_id); /* not known here: nothing to keep in step */
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

/*
 * sweep.c - the catalogue sweep: films no stored list or watched set uses are
 * marked, and deleted after the grace period; its thread.
 */
#include "app/app_internal.h"

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

/*
 * fastpath.c - the first version's warm path: POST /api/scrape/ answered from
 * stored lists on the request thread, and POST /api/watchlist/remove.
 */
#include "app/app_internal.h"

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

/*
 * results.c - what a finished job answers: the common films and "on most
 * lists", a roll, a sample for the first version.
 */
#include "app/app_internal.h"

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
    fp_err known_rc = svc__job_ensure(s, job_id);
    pthread_mutex_lock(&s->mu);
    svc_job *j = svc__job_find(s, job_id);
    if (!j) {
        pthread_mutex_unlock(&s->mu);
        return known_rc != FP_OK ? known_rc : FP_NOT_FOUND;
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

/* ---- first-version API ------------------------------------------------- */

/* Films for the chosen ids, appended to sample. */
fp_err svc__sample_films(service *s, const int64_t *chosen, size_t m, film_list *sample)
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
fp_err svc__sample(service *s, pick_set *sets, size_t nsets, size_t k,
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

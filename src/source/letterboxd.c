/*
 * letterboxd.c - the Letterboxd watchlist source.
 *
 * Page 1 (/USER/watchlist/) tells how many pages there are; pages 2..N are
 * then requested all at once and the shared fetch client spreads them over
 * its per-host slots, while this worker parses each page as it arrives. URLs
 * are only ever built from a validated, lower-cased username on the
 * configured base URL. Every page is fetched exactly once (retries aside);
 * the page past the end is never requested.
 */
#include "source/source.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "core/mem.h"
#include "metrics.h"
#include "source/lb_parse.h"

static fp_err lb__canonical(const char *input, char out[SOURCE_USER_MAX + 1])
{
    char user[LB_USERNAME_MAX + 1];
    fp_err rc = lb_username_parse(input, user);
    if (rc != FP_OK)
        return rc;
    snprintf(out, SOURCE_USER_MAX + 1, "%s", user);
    return FP_OK;
}

/* Maps a page's HTTP outcome to an error; page 1 decides "no such user". */
static fp_err lb__classify(const fetch_response *r, int page)
{
    if (r->err != FP_OK)
        return r->err == FP_TOO_LARGE ? FP_FORMAT : r->err;
    if (r->status == 200)
        return FP_OK;
    if (r->status == 404)
        return page == 1 ? FP_USER_NOT_FOUND : FP_UPSTREAM;
    if (r->status == 403 || r->challenge)
        return FP_BLOCKED;
    if (r->status == 429)
        return FP_UPSTREAM_LIMITED;
    return FP_UPSTREAM;
}

static fp_err lb__parse(const fetch_response *r, int page, lb_page *out)
{
    fp_err rc = lb__classify(r, page);
    if (rc == FP_OK)
        rc = lb_parse_page(r->body, r->len, out);
    if (rc == FP_OK)
        metrics_page_fetched();
    else
        fp_log(FP_LOG_WARN, "letterboxd_page_failed", "{s:i,s:i,s:s,s:i}", "page", page,
               "status", (int)r->status, "error", fp_err_code(rc), "attempts", r->attempts);
    return rc;
}

static char *lb__page_url(const source_env *env, const char *user, int page)
{
    if (page == 1)
        return fp_printf("%s/%s/watchlist/", env->letterboxd_url, user);
    return fp_printf("%s/%s/watchlist/page/%d/", env->letterboxd_url, user, page);
}

static void lb__take_films(film_list *dst, lb_page *p)
{
    for (size_t i = 0; i < p->films.len; i++) {
        film *f = film_list_push(dst);
        *f = p->films.items[i]; /* moves the strings */
    }
    p->films.len = 0;
}

static int lb__same_film(const film *a, const film *b)
{
    if (a->lb_id && b->lb_id)
        return a->lb_id == b->lb_id;
    return a->lb_slug && b->lb_slug && strcmp(a->lb_slug, b->lb_slug) == 0;
}

typedef struct lb_progress {
    source_progress_fn fn;
    void *ud;
} lb_progress;

static void lb__retrying(void *ud, fp_err err, long status, int attempt, long delay_ms)
{
    (void)status, (void)attempt, (void)delay_ms;
    lb_progress *p = ud;
    p->fn(p->ud, -1, -1, err);
}

static fp_err lb__fetch(const source_env *env, const char *user, source_progress_fn progress,
                        void *ud, film_list *out)
{
    fp_err rc = FP_OK;
    lb_page *pages = NULL;
    int total = 0;
    fetch_response *resp = NULL;
    fetch_batch *batch = fetch_batch_new(env->fetch);
    lb_progress pr = {progress, ud};
    if (progress)
        fetch_batch_on_retry(batch, lb__retrying, &pr);
    char *url = lb__page_url(env, user, 1);

    film_list_init(out);
    rc = fetch_batch_add(batch, url, 1);
    FP_FREE(url);
    if (rc != FP_OK)
        goto out;
    resp = fetch_batch_next(batch, NULL);
    lb_page first;
    memset(&first, 0, sizeof first);
    rc = lb__parse(resp, 1, &first);
    fetch_response_free(&resp);
    if (rc != FP_OK)
        goto out;
    if (first.films.len == 0) {
        lb_page_free(&first);
        rc = FP_EMPTY_WATCHLIST;
        goto out;
    }
    total = lb_page_count(&first);
    if (total < 1)
        total = 1;
    if (total > env->max_pages) {
        fp_log(FP_LOG_WARN, "letterboxd_truncated", "{s:i,s:i}", "pages", total, "max_pages",
               (int)env->max_pages);
        total = (int)env->max_pages;
    }
    pages = fp_calloc((size_t)total, sizeof *pages);
    pages[0] = first;
    if (progress)
        progress(ud, 1, total, FP_OK);

    for (int p = 2; p <= total && rc == FP_OK; p++) {
        url = lb__page_url(env, user, p);
        rc = fetch_batch_add(batch, url, p);
        FP_FREE(url);
    }
    int done = 1, tag = 0;
    while (rc == FP_OK && done < total && (resp = fetch_batch_next(batch, &tag))) {
        rc = lb__parse(resp, tag, &pages[tag - 1]);
        fetch_response_free(&resp);
        done++;
        if (rc == FP_OK && progress)
            progress(ud, done, total, FP_OK);
    }
    if (rc != FP_OK)
        goto out;

    size_t prev_start = 0;
    for (int p = 0; p < total; p++) {
        size_t before = out->len;
        lb__take_films(out, &pages[p]);
        /* A film that moved to the next page while we fetched appears twice,
         * on neighbouring pages: compare with the previous page only. */
        for (size_t i = before; i < out->len; i++)
            for (size_t j = prev_start; j < before; j++)
                if (lb__same_film(&out->items[i], &out->items[j])) {
                    film_clear(&out->items[i]);
                    out->items[i] = out->items[--out->len];
                    i--;
                    break;
                }
        prev_start = before;
    }
out:
    fetch_batch_free(&batch); /* waits for pages still in flight after an error */
    if (pages)
        for (int p = 0; p < total; p++)
            lb_page_free(&pages[p]);
    fp_free(pages);
    if (rc != FP_OK)
        film_list_free(out);
    return rc;
}

const source_backend source_letterboxd = {
    .name = "letterboxd",
    .type = "lb",
    .canonical_user = lb__canonical,
    .fetch = lb__fetch,
};

const source_backend *source_by_type(const char *type)
{
    static const source_backend *const all[] = {&source_letterboxd};
    for (size_t i = 0; type && i < sizeof all / sizeof all[0]; i++)
        if (strcasecmp(type, all[i]->type) == 0 || strcasecmp(type, all[i]->name) == 0)
            return all[i];
    return NULL;
}

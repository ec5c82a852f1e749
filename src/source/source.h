/*
 * source.h - watchlist sources, one backend per site, chosen by type.
 *
 * A source turns what a person typed into a canonical user name (the only
 * form ever used to build a URL or a storage key) and fetches that person's
 * whole watchlist. Fetching is all-or-nothing: any page that fails fails the
 * fetch, so a partial watchlist is never returned or stored. The one bound:
 * a list longer than max_pages pages is cut there (logged as
 * letterboxd_truncated). Letterboxd is
 * letterboxd.c; Kinopoisk will be another file beside it.
 */
#ifndef FP_SOURCE_H
#define FP_SOURCE_H

#include <stddef.h>

#include "core/error.h"
#include "fetch.h"
#include "film.h"

#define SOURCE_USER_MAX 64

/* Called after each page read, with retrying FP_OK (pages_total is 0 until
 * the first page is read); and, on the same thread, when a page failed and
 * is being tried again, with retrying saying why (FP_UPSTREAM,
 * FP_UPSTREAM_LIMITED, FP_TIMEOUT) and the page counts -1 (unchanged). */
typedef void (*source_progress_fn)(void *ud, int pages_done, int pages_total, fp_err retrying);

typedef struct source_env {
    fetch_client *fetch;
    const char *letterboxd_url; /* base, without trailing slash */
    long max_pages;
} source_env;

typedef struct source_backend {
    const char *name; /* "letterboxd" */
    const char *type; /* "lb": the API's type and the storage key prefix */
    /* FP_BAD_USERNAME when input is not a user of this source. */
    fp_err (*canonical_user)(const char *input, char out[SOURCE_USER_MAX + 1]);
    /* FP_USER_NOT_FOUND, FP_EMPTY_WATCHLIST, FP_BLOCKED, FP_UPSTREAM,
     * FP_UPSTREAM_LIMITED, FP_TIMEOUT, FP_FORMAT or FP_UNAVAILABLE. */
    fp_err (*fetch)(const source_env *env, const char *user, source_progress_fn progress,
                    void *ud, film_list *out);
} source_backend;

extern const source_backend source_letterboxd;

/* By type ("lb") or name ("letterboxd"), in any case ("LB", "Letterboxd": the
 * first version accepted both); NULL when unknown. */
const source_backend *source_by_type(const char *type);

#endif

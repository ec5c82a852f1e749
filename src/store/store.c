/*
 * store.c - picks the storage backend from the database URL.
 *
 * The table below is the only place that knows which backends exist; adding
 * PostgreSQL is adding its file and one line here, placed before SQLite,
 * because SQLite accepts any plain path as a last resort.
 */
#include "store/store.h"

#include "core/log.h"
#include "core/mem.h"

static const store_backend *const store_backends[] = {
    &store_backend_sqlite,
};

const store_backend *store_backend_for(const char *url)
{
    if (!url || !*url)
        return NULL;
    for (size_t i = 0; i < sizeof store_backends / sizeof store_backends[0]; i++)
        if (store_backends[i]->accepts(url))
            return store_backends[i];
    return NULL;
}

fp_err store_open(const char *url, const store_backend **backend, store **out)
{
    *out = NULL;
    const store_backend *b = store_backend_for(url);
    if (!b) {
        /* The URL may carry a password: log only that it was not recognised. */
        fp_log(FP_LOG_ERROR, "store_unknown_url", "{s:s}", "error",
               "the database URL names no supported backend (a file path, sqlite:PATH)");
        return FP_INVALID;
    }
    fp_err rc = b->open(url, out);
    if (rc == FP_OK && backend)
        *backend = b;
    return rc;
}

void store_watchlist_free(store_watchlist *w)
{
    if (!w)
        return;
    FP_FREE(w->sealed);
    w->sealed_len = 0;
    w->fetched_at = 0;
    w->version = 0;
}

void store_datakey_free(store_datakey *k)
{
    if (!k)
        return;
    FP_FREE(k->wrapped);
    k->wrapped_len = 0;
    k->created_at = k->updated_at = 0;
}

void store_sealed_rows_free(store_sealed_row *rows, size_t n)
{
    for (size_t i = 0; rows && i < n; i++)
        fp_free(rows[i].sealed);
    fp_free(rows);
}

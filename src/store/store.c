/*
 * store.c - picks the storage backend from the database URL.
 *
 * The table below is the only place that knows which backends exist; a
 * backend is its file and one line here. PostgreSQL comes before SQLite,
 * because SQLite accepts any plain path as a last resort.
 */
#include "store/store.h"

#include <string.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/mem.h"

static const store_backend *const store_backends[] = {
    &store_backend_postgresql,
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
               "the database URL names no supported backend (a file path, sqlite:PATH, "
               "postgresql://...)");
        return FP_INVALID;
    }
    fp_err rc = b->open(url, out);
    if (rc == FP_OK && backend)
        *backend = b;
    return rc;
}

char *store_url_redacted(const char *url)
{
    if (!url)
        return fp_strdup("");
    fp_buf b;
    fp_buf_init(&b, (size_t)-1);
    fp_err rc = FP_OK;
    const char *p = url, *scheme_end = strstr(url, "://");
    if (scheme_end) {
        /* The authority runs to the first '/', '?' or '#'; its user info to
         * the last '@' in it; the password from the first ':' of that. */
        const char *auth = scheme_end + 3;
        const char *auth_end = auth + strcspn(auth, "/?#");
        const char *at = NULL;
        for (const char *q = auth; q < auth_end; q++)
            if (*q == '@')
                at = q;
        const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
        if (colon) {
            rc = fp_buf_append(&b, url, (size_t)(colon + 1 - url));
            if (rc == FP_OK)
                rc = fp_buf_append(&b, "***", 3);
            p = at;
        }
    }
    /* Query parameters: "password=..." (libpq's keyword) loses its value. */
    const char *query = strchr(p, '?');
    if (scheme_end && query) {
        if (rc == FP_OK)
            rc = fp_buf_append(&b, p, (size_t)(query + 1 - p));
        p = query + 1;
        while (*p && rc == FP_OK) {
            size_t len = strcspn(p, "&#");
            if (len >= 9 && strncmp(p, "password=", 9) == 0)
                rc = fp_buf_append(&b, "password=***", 12);
            else
                rc = fp_buf_append(&b, p, len);
            p += len;
            if (*p == '&' && rc == FP_OK) {
                rc = fp_buf_append(&b, "&", 1);
                p++;
            } else {
                break;
            }
        }
    }
    if (rc == FP_OK)
        rc = fp_buf_append(&b, p, strlen(p));
    (void)rc; /* an unlimited buffer cannot fail */
    char *out = fp_buf_steal(&b, NULL);
    return out ? out : fp_strdup("");
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

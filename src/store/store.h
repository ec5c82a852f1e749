/*
 * store.h - persistent storage, a pluggable backend chosen by the database
 * URL alone: a file path or "sqlite:PATH" opens SQLite (store_sqlite.c);
 * "postgresql://..." or "postgres://..." opens PostgreSQL (store_pg.c).
 *
 * Backends never see a username or a film list in plain text: watchlists
 * arrive as a 32-byte keyed hash and a sealed (encrypted, authenticated) blob
 * made by vault.h. The film catalogue (titles, years, source ids) is public
 * data and stored in plain text.
 *
 * Replacing a watchlist is atomic: either the new blob is stored whole or
 * the previous copy stays. Edits (removing a watched film) use
 * compare-and-swap on the row version, so concurrent edits never lose one.
 */
#ifndef FP_STORE_H
#define FP_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "film.h"

#define STORE_KEY_BYTES 32

typedef struct store store; /* opaque; one per process, thread-safe */

typedef struct store_watchlist {
    uint8_t *sealed;        /* owned; free with store_watchlist_free */
    size_t sealed_len;
    int64_t fetched_at;     /* unix seconds of the fetch or import */
    int64_t version;        /* increases on every write of this row */
} store_watchlist;

/* The tables of sealed rows, for store_backend.sealed_page. */
typedef enum {
    STORE_SEALED_WATCHLISTS,
    STORE_SEALED_WATCHED,
} store_sealed_kind;

typedef struct store_sealed_row {
    uint8_t key[STORE_KEY_BYTES];
    uint8_t *sealed; /* owned; free with store_sealed_rows_free */
    size_t sealed_len;
} store_sealed_row;

/* A catalogue film's id and its orphan mark (films_page). */
typedef struct store_film_mark {
    int64_t id;
    int64_t orphaned_at; /* unix seconds a sweep first found no list using it; 0: in use */
} store_film_mark;

/* The database's data key, wrapped under the server key (vault.h): opaque
 * bytes to the backend, one per database. */
typedef struct store_datakey {
    uint8_t *wrapped; /* owned; free with store_datakey_free */
    size_t wrapped_len;
    int64_t created_at; /* unix seconds: first stored, or the last reset */
    int64_t updated_at; /* unix seconds: the last re-keying (or created_at) */
} store_datakey;

/* Connections of a backend's pool (store_backend.pool_stats). */
typedef struct store_pool_stats {
    size_t in_use; /* handed out to a caller right now */
    size_t open;   /* open (in use or idle) */
    size_t max;    /* the pool's size */
} store_pool_stats;

typedef struct store_backend {
    const char *name;
    /* 1 if this backend handles the URL. */
    int (*accepts)(const char *url);
    /* Opens (creating if needed) without migrating. */
    fp_err (*open)(const char *url, store **out);
    void (*close)(store *s);
    /* Migrates up or down to version target (-1: latest). Each step is one
     * transaction recorded in schema_migrations. */
    fp_err (*migrate)(store *s, int target);
    fp_err (*migration_status)(store *s, int *current, int *latest);
    /* Finds or inserts each film in the catalogue and sets films[i].id. Matches
     * by Letterboxd id, then slug, then boxd.it link, then IMDb id, then
     * normalised title + year; fills in ids a row lacked. One transaction.
     * A row found through a slug, boxd.it link or IMDb id that has
     * a different known Letterboxd id is another film. Title matching only
     * takes rows none of whose known ids disagree; when either side lacks
     * the year, the normalised title alone matches only if exactly one row
     * has it. Known values are never overwritten. Every film needs a title
     * (else FP_INVALID). On failure nothing is stored and every id is 0. */
    fp_err (*films_resolve)(store *s, film *films, size_t n);
    /* films_resolve that inserts at most max_new new rows (films already in
     * the catalogue do not count; a matched row loses its orphan mark, see
     * films_mark). One more is FP_TOO_MANY_FILMS, with nothing stored and
     * *new_films the number of distinct films of the batch the catalogue
     * lacks (counted after the write lock is released, by reading only; at
     * least max_new + 1). On success *new_films = rows inserted. new_films
     * may be NULL. */
    fp_err (*films_resolve_limited)(store *s, film *films, size_t n, size_t max_new,
                                    size_t *new_films);
    /* Loads catalogue rows by id into out (appended, same order as ids;
     * unknown ids are skipped). */
    fp_err (*films_load)(store *s, const int64_t *ids, size_t n, film_list *out);
    /* ---- the catalogue sweep (service.c: svc_sweep) ---- */
    /* Up to limit films whose id is greater than after_id, in id order, into
     * out (room for limit); fewer than limit means the end. */
    fp_err (*films_page)(store *s, int64_t after_id, size_t limit, store_film_mark *out,
                         size_t *n);
    /* at > 0: marks these films orphaned at that time (a mark already set
     * stays); at 0: clears their marks. One transaction. */
    fp_err (*films_mark)(store *s, const int64_t *ids, size_t n, int64_t at);
    /* Deletes those of these films whose mark is set at or before
     * orphaned_before (checked at delete time, so a film a list took again
     * meanwhile stays), never the film with the highest id in the catalogue
     * (so that no id is ever handed out twice). One transaction. *deleted may
     * be NULL. */
    fp_err (*films_delete_orphans)(store *s, const int64_t *ids, size_t n,
                                   int64_t orphaned_before, size_t *deleted);

    /* FP_NOT_FOUND when there is no row for key. */
    fp_err (*watchlist_get)(store *s, const uint8_t key[STORE_KEY_BYTES], store_watchlist *out);
    /* Stores the blob. expected_version -1: unconditional replace (or insert);
     * otherwise only if the row still has that version, else FP_CONFLICT.
     * The new version is written to *new_version when not NULL.
     * expected_version 0 means "create only if absent" (FP_CONFLICT if a row
     * exists); a missing row never matches a positive version. */
    fp_err (*watchlist_put)(store *s, const uint8_t key[STORE_KEY_BYTES], const uint8_t *sealed,
                            size_t sealed_len, int64_t fetched_at, int64_t expected_version,
                            int64_t *new_version);
    /* FP_NOT_FOUND when there was no row. */
    fp_err (*watchlist_delete)(store *s, const uint8_t key[STORE_KEY_BYTES]);
    /* A person's "watched here" set, a second sealed row per person key with
     * the same semantics as watchlist_get / watchlist_put (fetched_at is the
     * time of the last change; versions for compare-and-swap). */
    fp_err (*watched_get)(store *s, const uint8_t key[STORE_KEY_BYTES], store_watchlist *out);
    fp_err (*watched_put)(store *s, const uint8_t key[STORE_KEY_BYTES], const uint8_t *sealed,
                          size_t sealed_len, int64_t updated_at, int64_t expected_version,
                          int64_t *new_version);
    /* Liveness check for /healthz. */
    fp_err (*ping)(store *s);

    /* ---- the data key (datakey.h) ---- */
    /* FP_NOT_FOUND when none is stored yet. */
    fp_err (*datakey_get)(store *s, store_datakey *out);
    /* Stores wrapped as the data key. expected NULL: only when none is
     * stored yet; otherwise only when the stored one is exactly expected
     * (compare-and-swap). FP_CONFLICT when that does not hold. */
    fp_err (*datakey_put)(store *s, const uint8_t *wrapped, size_t len, const uint8_t *expected,
                          size_t expected_len);
    /* Starting afresh: deletes every watchlist and every watched set and
     * stores wrapped as the data key (replacing any), in one transaction.
     * The film catalogue stays. Counts of rows deleted (may be NULL). */
    fp_err (*datakey_reset)(store *s, const uint8_t *wrapped, size_t len, size_t *watchlists,
                            size_t *watched);

    /* ---- every sealed row, in pages (the catalogue sweep, key checks) ---- */
    /* Up to limit rows of kind whose key is greater than after (NULL: from
     * the first), in key order; fewer than limit means the end. *rows is
     * allocated (NULL when *n is 0); free with store_sealed_rows_free. */
    fp_err (*sealed_page)(store *s, store_sealed_kind kind, const uint8_t *after, size_t limit,
                          store_sealed_row **rows, size_t *n);

    /* The connection pool's use right now, for /metrics. */
    void (*pool_stats)(store *s, store_pool_stats *out);
} store_backend;

extern const store_backend store_backend_sqlite;
extern const store_backend store_backend_postgresql;

/* The backend for url, or NULL. */
const store_backend *store_backend_for(const char *url);

/* Convenience: pick the backend by URL and open. *backend is set on success. */
fp_err store_open(const char *url, const store_backend **backend, store **out) FP_WARN_UNUSED;

/* A copy of a database URL that is safe to log or print: the password of a
 * "scheme://user:password@host" URL and any "password=" query parameter are
 * replaced by "***"; a file path comes back as it is. NULL gives "". Caller
 * frees. */
char *store_url_redacted(const char *url);

void store_watchlist_free(store_watchlist *w);
void store_datakey_free(store_datakey *k);
void store_sealed_rows_free(store_sealed_row *rows, size_t n);

#endif

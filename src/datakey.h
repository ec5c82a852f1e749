/*
 * datakey.h - the database's data key: the key every person key and sealed
 * row of one database derives from (vault.h), kept in that database wrapped
 * under the server key (store_backend.datakey_*).
 *
 * The wrapped key is also the key check value: a server key that is not the
 * database's fails to unwrap it, and the service refuses to start
 * (FP_KEY_MISMATCH) instead of silently finding no stored list, refetching
 * every one and leaving the old rows behind. The first start of a database
 * stores the key:
 *   - nothing sealed yet (a new database): a new random data key;
 *   - sealed rows from before wrapped keys (schema version 3 and earlier):
 *     they were sealed under sub-keys of the server key itself, so the server
 *     key becomes the data key, but only once it has opened one of those rows
 *     (the first DATAKEY_PROBE_ROWS watchlists, then watched sets): a server
 *     key that opens none is a mismatch too.
 * Re-keying (datakey_rotate) wraps the same data key under another server
 * key: one row changes, every stored list stays readable. Starting afresh
 * (datakey_reset) forgets every sealed row (watchlists, watched sets), keeps
 * the public film catalogue and stores a new random data key.
 *
 * db is the database setting, only for log lines. Nothing here holds a lock
 * across calls: two processes starting on a new database at once agree on
 * one key through the backend's create-only put.
 */
#ifndef FP_DATAKEY_H
#define FP_DATAKEY_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "store/store.h"
#include "vault.h"

#define DATAKEY_PROBE_ROWS 16

typedef enum {
    DATAKEY_STORED,  /* a wrapped key was stored and the server key opened it */
    DATAKEY_CREATED, /* nothing was sealed yet: a new random data key was stored */
    DATAKEY_ADOPTED, /* rows sealed before wrapped keys: the server key is now the data key */
} datakey_origin;

/* The vault of the database's data key, storing one at the first start (see
 * above). FP_KEY_MISMATCH (logged as datakey_mismatch) when the server key k
 * does not open the stored key or the old rows; FP_CORRUPT when the stored
 * key is not a wrapped key. origin may be NULL. Caller frees *out. */
fp_err datakey_open(const vault_kek *k, const store_backend *sb, store *st, const char *db,
                    vault **out, datakey_origin *origin) FP_WARN_UNUSED;

typedef struct datakey_status {
    int stored;          /* a wrapped data key is stored */
    int opens;           /* the server key opens it, or (none stored) the old rows */
    size_t watchlists;   /* sealed rows in the database */
    size_t watched;
    int64_t created_at;  /* of the stored key (0 when none) */
    int64_t updated_at;  /* its last re-keying (= created_at when never) */
} datakey_status;

/* What datakey_open would find, without storing anything. */
fp_err datakey_check(const vault_kek *k, const store_backend *sb, store *st,
                     datakey_status *out) FP_WARN_UNUSED;

/* Re-keying: the data key, opened with cur (stored first if the database has
 * none yet, as datakey_open does), wrapped under next instead. */
fp_err datakey_rotate(const vault_kek *cur, const vault_kek *next, const store_backend *sb,
                      store *st, const char *db) FP_WARN_UNUSED;

/* Starting afresh under k: every watchlist and watched set is deleted and a
 * new data key stored, in one transaction; the catalogue stays. Counts of
 * deleted rows (may be NULL). */
fp_err datakey_reset(const vault_kek *k, const store_backend *sb, store *st, const char *db,
                     size_t *watchlists, size_t *watched) FP_WARN_UNUSED;

#endif

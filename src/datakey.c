/*
 * datakey.c - the database's data key, wrapped under the server key and
 * stored through the backend (see datakey.h for the contract).
 *
 * The first-start decisions (create, adopt, refuse) only ever store with the
 * backend's create-only put: when two processes race, one put wins and the
 * loser reads the winner's key back and unwraps it like any later start.
 */
#include "datakey.h"

#include <jansson.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"

/* Attempts at storing the first key before giving up on a racing writer. */
#define DATAKEY_TRIES 4

static const char datakey_mismatch_hint[] =
    "the server key does not open the data stored in this database: start with the key it "
    "was made with; with that key, `filmpicker key rotate` re-keys it; without it, "
    "`filmpicker key reset --yes` forgets the stored lists (the film catalogue stays)";

static void datakey_log_mismatch(const char *db, const char *why)
{
    fp_log(FP_LOG_ERROR, "datakey_mismatch", "{s:s,s:s,s:s}", "database", db ? db : "", "found",
           why, "error", datakey_mismatch_hint);
}

/* Whether the database holds sealed rows and, if so, whether the server key
 * itself (the data key of a database sealed before wrapped keys) opens one of
 * the first DATAKEY_PROBE_ROWS of them (watchlists first, then watched sets;
 * one that opens is enough: a damaged row must not look like a wrong key). */
static fp_err datakey_probe(const vault_kek *k, const store_backend *sb, store *st, int *has_rows,
                            int *opens)
{
    static const store_sealed_kind kinds[] = {STORE_SEALED_WATCHLISTS, STORE_SEALED_WATCHED};
    vault *legacy = NULL;
    uint8_t unused[VAULT_WRAPPED_BYTES];
    *has_rows = 0;
    *opens = 0;
    fp_err rc = vault_adopt_server_key(k, &legacy, unused);
    for (size_t i = 0; rc == FP_OK && i < 2 && !*opens; i++) {
        store_sealed_row *rows = NULL;
        size_t n = 0;
        rc = sb->sealed_page(st, kinds[i], NULL, DATAKEY_PROBE_ROWS, &rows, &n);
        for (size_t r = 0; rc == FP_OK && r < n && !*opens; r++) {
            int64_t *ids = NULL;
            size_t nids = 0;
            *has_rows = 1;
            /* Both tables seal under their row key (a person key, or the
             * watched-set key derived from it). */
            if (vault_unseal(legacy, rows[r].key, rows[r].sealed, rows[r].sealed_len, &ids,
                             &nids) == FP_OK)
                *opens = 1;
            fp_free(ids);
        }
        store_sealed_rows_free(rows, n);
    }
    memset(unused, 0, sizeof unused);
    vault_free(&legacy);
    return rc;
}

fp_err datakey_open(const vault_kek *k, const store_backend *sb, store *st, const char *db,
                    vault **out, datakey_origin *origin)
{
    fp_err rc = FP_CONFLICT;
    *out = NULL;
    for (int attempt = 0; attempt < DATAKEY_TRIES && rc == FP_CONFLICT; attempt++) {
        store_datakey dk = {0};
        rc = sb->datakey_get(st, &dk);
        if (rc == FP_OK) {
            rc = vault_unwrap(k, dk.wrapped, dk.wrapped_len, out);
            store_datakey_free(&dk);
            if (rc == FP_KEY_MISMATCH)
                datakey_log_mismatch(db, "the stored data key does not unwrap with this key");
            else if (rc == FP_CORRUPT)
                fp_log(FP_LOG_ERROR, "datakey_corrupt", "{s:s,s:s}", "database", db ? db : "",
                       "error", "the stored data key is not a wrapped key");
            else if (rc == FP_OK && origin)
                *origin = DATAKEY_STORED;
            return rc;
        }
        if (rc != FP_NOT_FOUND)
            return rc;
        int has_rows = 0, opens = 0;
        rc = datakey_probe(k, sb, st, &has_rows, &opens);
        if (rc != FP_OK)
            return rc;
        if (has_rows && !opens) {
            datakey_log_mismatch(db, "no stored list opens with this key (a database sealed "
                                     "before wrapped data keys)");
            return FP_KEY_MISMATCH;
        }
        uint8_t wrapped[VAULT_WRAPPED_BYTES];
        rc = has_rows ? vault_adopt_server_key(k, out, wrapped) : vault_create(k, out, wrapped);
        if (rc == FP_OK)
            rc = sb->datakey_put(st, wrapped, sizeof wrapped, NULL, 0);
        if (rc == FP_OK) {
            if (origin)
                *origin = has_rows ? DATAKEY_ADOPTED : DATAKEY_CREATED;
            if (has_rows)
                fp_log(FP_LOG_WARN, "datakey_adopted", "{s:s,s:s}", "database", db ? db : "",
                       "note", "the stored lists were sealed under the server key itself; it "
                               "is now the database's data key, stored wrapped (nothing else "
                               "changed)");
            else
                fp_log(FP_LOG_INFO, "datakey_created", "{s:s}", "database", db ? db : "");
            return FP_OK;
        }
        vault_free(out); /* FP_CONFLICT: another process stored one first, read it */
    }
    return rc;
}

/* Counts the sealed rows of one kind, a page at a time. */
static fp_err datakey_count(const store_backend *sb, store *st, store_sealed_kind kind, size_t *n)
{
    uint8_t after[STORE_KEY_BYTES];
    int have_after = 0;
    *n = 0;
    for (;;) {
        store_sealed_row *rows = NULL;
        size_t got = 0;
        fp_err rc = sb->sealed_page(st, kind, have_after ? after : NULL, 1000, &rows, &got);
        if (rc != FP_OK)
            return rc;
        *n += got;
        if (got)
            memcpy(after, rows[got - 1].key, STORE_KEY_BYTES);
        have_after = 1;
        store_sealed_rows_free(rows, got);
        if (got < 1000)
            return FP_OK;
    }
}

fp_err datakey_check(const vault_kek *k, const store_backend *sb, store *st, datakey_status *out)
{
    memset(out, 0, sizeof *out);
    fp_err rc = datakey_count(sb, st, STORE_SEALED_WATCHLISTS, &out->watchlists);
    if (rc == FP_OK)
        rc = datakey_count(sb, st, STORE_SEALED_WATCHED, &out->watched);
    if (rc != FP_OK)
        return rc;
    store_datakey dk = {0};
    rc = sb->datakey_get(st, &dk);
    if (rc == FP_OK) {
        vault *v = NULL;
        out->stored = 1;
        out->created_at = dk.created_at;
        out->updated_at = dk.updated_at;
        out->opens = vault_unwrap(k, dk.wrapped, dk.wrapped_len, &v) == FP_OK;
        vault_free(&v);
        store_datakey_free(&dk);
        return FP_OK;
    }
    if (rc != FP_NOT_FOUND)
        return rc;
    int has_rows = 0, opens = 0;
    rc = datakey_probe(k, sb, st, &has_rows, &opens);
    out->opens = !has_rows || opens;
    return rc;
}

fp_err datakey_rotate(const vault_kek *cur, const vault_kek *next, const store_backend *sb,
                      store *st, const char *db)
{
    vault *v = NULL;
    fp_err rc = datakey_open(cur, sb, st, db, &v, NULL);
    vault_free(&v);
    for (int attempt = 0; rc == FP_OK && attempt < DATAKEY_TRIES; attempt++) {
        store_datakey dk = {0};
        uint8_t wrapped[VAULT_WRAPPED_BYTES];
        rc = sb->datakey_get(st, &dk);
        if (rc == FP_OK)
            rc = vault_rewrap(cur, next, dk.wrapped, dk.wrapped_len, wrapped);
        if (rc == FP_OK)
            rc = sb->datakey_put(st, wrapped, sizeof wrapped, dk.wrapped, dk.wrapped_len);
        store_datakey_free(&dk);
        if (rc == FP_OK) {
            fp_log(FP_LOG_WARN, "datakey_rotated", "{s:s,s:s}", "database", db ? db : "", "note",
                   "the data key is now wrapped under the new server key: start with that key");
            return FP_OK;
        }
        if (rc == FP_KEY_MISMATCH) /* someone re-keyed it meanwhile */
            datakey_log_mismatch(db, "the stored data key does not unwrap with this key");
        if (rc != FP_CONFLICT)
            return rc;
        rc = FP_OK; /* another re-keying won the race: read and try again */
    }
    return rc == FP_OK ? FP_CONFLICT : rc;
}

fp_err datakey_reset(const vault_kek *k, const store_backend *sb, store *st, const char *db,
                     size_t *watchlists, size_t *watched)
{
    vault *v = NULL;
    uint8_t wrapped[VAULT_WRAPPED_BYTES];
    size_t nl = 0, nw = 0;
    fp_err rc = vault_create(k, &v, wrapped);
    vault_free(&v);
    if (rc == FP_OK)
        rc = sb->datakey_reset(st, wrapped, sizeof wrapped, &nl, &nw);
    if (rc == FP_OK)
        fp_log(FP_LOG_WARN, "datakey_reset", "{s:s,s:I,s:I}", "database", db ? db : "",
               "watchlists_deleted", (json_int_t)nl, "watched_deleted", (json_int_t)nw);
    if (watchlists)
        *watchlists = nl;
    if (watched)
        *watched = nw;
    return rc;
}

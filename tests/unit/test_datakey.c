/*
 * Unit tests for datakey.c against the SQLite backend (in memory): the first
 * start of a new database, of a database sealed before wrapped data keys
 * (adopted only when the server key opens one of its rows), a server key that
 * does not match, re-keying, starting afresh, and the read-only check.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "core/mem.h"
#include "datakey.h"
#include "store/store.h"
#include "vault.h"

#define KEY_A "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define KEY_B "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"

static const store_backend *B = &store_backend_sqlite;

static store *new_store(void)
{
    store *s = NULL;
    assert_int_equal(store_open(":memory:", NULL, &s), FP_OK);
    assert_int_equal(B->migrate(s, -1), FP_OK);
    return s;
}

static vault_kek *kek(const char *hex)
{
    vault_kek *k = NULL;
    assert_int_equal(vault_kek_open(hex, NULL, 0, &k), FP_OK);
    return k;
}

/* Stores a watchlist for (lb, user) sealed by v, as the service does. */
static void put_list(store *s, const vault *v, const char *user, int64_t first)
{
    uint8_t pk[VAULT_KEY_BYTES];
    vault_person_key(v, "lb", user, pk);
    int64_t ids[3] = {first, first + 1, first + 2};
    uint8_t *blob = NULL;
    size_t len = 0;
    assert_int_equal(vault_seal(v, pk, ids, 3, &blob, &len), FP_OK);
    assert_int_equal(B->watchlist_put(s, pk, blob, len, 1, -1, NULL), FP_OK);
    fp_free(blob);
}

/* 1 when v opens (lb, user)'s stored list and it starts at first. */
static int opens_list(store *s, const vault *v, const char *user, int64_t first)
{
    uint8_t pk[VAULT_KEY_BYTES];
    vault_person_key(v, "lb", user, pk);
    store_watchlist w = {0};
    if (B->watchlist_get(s, pk, &w) != FP_OK)
        return 0;
    int64_t *ids = NULL;
    size_t n = 0;
    int ok = vault_unseal(v, pk, w.sealed, w.sealed_len, &ids, &n) == FP_OK && n == 3 &&
             ids[0] == first;
    fp_free(ids);
    store_watchlist_free(&w);
    return ok;
}

static size_t data_keys(store *s)
{
    store_datakey dk = {0};
    fp_err rc = B->datakey_get(s, &dk);
    store_datakey_free(&dk);
    return rc == FP_OK;
}

static void test_new_database(void **state)
{
    (void)state;
    store *s = new_store();
    vault_kek *a = kek(KEY_A), *b = kek(KEY_B);
    vault *v = NULL, *again = NULL, *wrong = (vault *)&wrong;
    datakey_origin origin = DATAKEY_STORED;
    datakey_status ds;
    assert_int_equal(datakey_check(a, B, s, &ds), FP_OK);
    assert_int_equal(ds.stored, 0);
    assert_int_equal(ds.opens, 1); /* nothing sealed: any key will do */
    assert_int_equal(data_keys(s), 0); /* the check stores nothing */

    assert_int_equal(datakey_open(a, B, s, "test.db", &v, &origin), FP_OK);
    assert_int_equal(origin, DATAKEY_CREATED);
    assert_int_equal(data_keys(s), 1);
    put_list(s, v, "alice", 10);
    /* A random data key, not the server key: vault_open(KEY_A) cannot read it. */
    vault *server = NULL;
    assert_int_equal(vault_open(KEY_A, NULL, &server), FP_OK);
    assert_false(opens_list(s, server, "alice", 10));
    vault_free(&server);

    assert_int_equal(datakey_open(a, B, s, "test.db", &again, &origin), FP_OK);
    assert_int_equal(origin, DATAKEY_STORED);
    assert_true(opens_list(s, again, "alice", 10));

    assert_int_equal(datakey_open(b, B, s, "test.db", &wrong, &origin), FP_KEY_MISMATCH);
    assert_null(wrong);
    assert_int_equal(datakey_check(b, B, s, &ds), FP_OK);
    assert_int_equal(ds.stored, 1);
    assert_int_equal(ds.opens, 0);
    assert_int_equal(ds.watchlists, 1);
    assert_int_equal(datakey_check(a, B, s, &ds), FP_OK);
    assert_int_equal(ds.opens, 1);
    assert_true(ds.created_at > 0);

    vault_free(&v);
    vault_free(&again);
    vault_kek_free(&a);
    vault_kek_free(&b);
    B->close(s);
}

static void test_legacy_database(void **state)
{
    (void)state;
    /* Rows sealed the way the release before data keys did: with sub-keys of
     * the server key itself. */
    store *s = new_store();
    vault *old = NULL;
    assert_int_equal(vault_open(KEY_A, NULL, &old), FP_OK);
    put_list(s, old, "alice", 10);
    put_list(s, old, "bob", 20);

    vault_kek *a = kek(KEY_A), *b = kek(KEY_B);
    vault *v = (vault *)&v;
    datakey_origin origin = DATAKEY_STORED;
    datakey_status ds;
    /* Another key opens none of them: a mismatch, and nothing is stored. */
    assert_int_equal(datakey_check(b, B, s, &ds), FP_OK);
    assert_int_equal(ds.stored, 0);
    assert_int_equal(ds.opens, 0);
    assert_int_equal(datakey_open(b, B, s, "old.db", &v, &origin), FP_KEY_MISMATCH);
    assert_null(v);
    assert_int_equal(data_keys(s), 0);
    /* Its own key is adopted as the data key: every row stays readable. */
    assert_int_equal(datakey_check(a, B, s, &ds), FP_OK);
    assert_int_equal(ds.opens, 1);
    assert_int_equal(ds.watchlists, 2);
    assert_int_equal(datakey_open(a, B, s, "old.db", &v, &origin), FP_OK);
    assert_int_equal(origin, DATAKEY_ADOPTED);
    assert_true(opens_list(s, v, "alice", 10));
    assert_true(opens_list(s, v, "bob", 20));
    vault_free(&v);
    /* From now on it is a stored key like any other. */
    assert_int_equal(datakey_open(a, B, s, "old.db", &v, &origin), FP_OK);
    assert_int_equal(origin, DATAKEY_STORED);
    assert_true(opens_list(s, v, "bob", 20));
    vault_free(&v);
    assert_int_equal(datakey_open(b, B, s, "old.db", &v, &origin), FP_KEY_MISMATCH);

    vault_free(&old);
    vault_kek_free(&a);
    vault_kek_free(&b);
    B->close(s);
}

static void test_legacy_probe_details(void **state)
{
    (void)state;
    vault *old = NULL;
    assert_int_equal(vault_open(KEY_A, NULL, &old), FP_OK);
    vault_kek *a = kek(KEY_A);
    vault *v = NULL;
    datakey_origin origin = DATAKEY_STORED;

    /* Only a watched set (sealed under its row key) is enough. */
    store *s = new_store();
    uint8_t wk[STORE_KEY_BYTES];
    memset(wk, 0x42, sizeof wk);
    int64_t codes[2] = {5, 9};
    uint8_t *blob = NULL;
    size_t len = 0;
    assert_int_equal(vault_seal(old, wk, codes, 2, &blob, &len), FP_OK);
    assert_int_equal(B->watched_put(s, wk, blob, len, 1, -1, NULL), FP_OK);
    fp_free(blob);
    assert_int_equal(datakey_open(a, B, s, "w.db", &v, &origin), FP_OK);
    assert_int_equal(origin, DATAKEY_ADOPTED);
    vault_free(&v);
    B->close(s);

    /* Damaged rows first: one row that opens is enough (a damaged row is
     * not a wrong key). */
    s = new_store();
    for (int i = 0; i < 5; i++) {
        uint8_t k[STORE_KEY_BYTES];
        memset(k, i, sizeof k); /* sorts before the real rows */
        assert_int_equal(B->watchlist_put(s, k, (const uint8_t *)"garbage", 7, 1, -1, NULL), FP_OK);
    }
    put_list(s, old, "alice", 10);
    assert_int_equal(datakey_open(a, B, s, "d.db", &v, &origin), FP_OK);
    assert_int_equal(origin, DATAKEY_ADOPTED);
    assert_true(opens_list(s, v, "alice", 10));
    vault_free(&v);
    B->close(s);

    /* Only damaged rows: nothing shows the key is right. */
    s = new_store();
    uint8_t k[STORE_KEY_BYTES];
    memset(k, 1, sizeof k);
    assert_int_equal(B->watchlist_put(s, k, (const uint8_t *)"garbage", 7, 1, -1, NULL), FP_OK);
    assert_int_equal(datakey_open(a, B, s, "g.db", &v, &origin), FP_KEY_MISMATCH);
    B->close(s);

    /* A stored key that is not a wrapped key at all. */
    s = new_store();
    assert_int_equal(B->datakey_put(s, (const uint8_t *)"nope", 4, NULL, 0), FP_OK);
    assert_int_equal(datakey_open(a, B, s, "c.db", &v, &origin), FP_CORRUPT);
    B->close(s);

    vault_free(&old);
    vault_kek_free(&a);
}

static void test_rotate(void **state)
{
    (void)state;
    store *s = new_store();
    vault_kek *a = kek(KEY_A), *b = kek(KEY_B);
    vault *v = NULL, *w = NULL;
    datakey_origin origin;
    assert_int_equal(datakey_open(a, B, s, "r.db", &v, &origin), FP_OK);
    put_list(s, v, "alice", 10);
    /* Re-keying needs the current key. */
    assert_int_equal(datakey_rotate(b, a, B, s, "r.db"), FP_KEY_MISMATCH);
    assert_int_equal(datakey_rotate(a, b, B, s, "r.db"), FP_OK);
    assert_int_equal(datakey_open(b, B, s, "r.db", &w, &origin), FP_OK);
    assert_int_equal(origin, DATAKEY_STORED);
    assert_true(opens_list(s, w, "alice", 10)); /* the same data key */
    vault_free(&w);
    assert_int_equal(datakey_open(a, B, s, "r.db", &w, &origin), FP_KEY_MISMATCH);
    /* And back. */
    assert_int_equal(datakey_rotate(b, a, B, s, "r.db"), FP_OK);
    assert_int_equal(datakey_open(a, B, s, "r.db", &w, &origin), FP_OK);
    assert_true(opens_list(s, w, "alice", 10));
    vault_free(&w);
    vault_free(&v);
    B->close(s);

    /* A legacy database is adopted (under the current key) and re-keyed. */
    s = new_store();
    vault *old = NULL;
    assert_int_equal(vault_open(KEY_A, NULL, &old), FP_OK);
    put_list(s, old, "bob", 30);
    assert_int_equal(datakey_rotate(b, a, B, s, "l.db"), FP_KEY_MISMATCH);
    assert_int_equal(data_keys(s), 0);
    assert_int_equal(datakey_rotate(a, b, B, s, "l.db"), FP_OK);
    assert_int_equal(datakey_open(b, B, s, "l.db", &w, &origin), FP_OK);
    assert_true(opens_list(s, w, "bob", 30));
    vault_free(&w);
    vault_free(&old);
    vault_kek_free(&a);
    vault_kek_free(&b);
    B->close(s);
}

static void test_reset(void **state)
{
    (void)state;
    store *s = new_store();
    vault_kek *a = kek(KEY_A), *b = kek(KEY_B);
    vault *v = NULL, *w = NULL;
    datakey_origin origin;
    assert_int_equal(datakey_open(a, B, s, "x.db", &v, &origin), FP_OK);
    put_list(s, v, "alice", 10);
    put_list(s, v, "bob", 20);
    film f = {.title = fp_strdup("Alien"), .year = 1979};
    assert_int_equal(B->films_resolve(s, &f, 1), FP_OK);
    /* The key is lost: start afresh under b. */
    size_t nl = 0, nw = 0;
    assert_int_equal(datakey_reset(b, B, s, "x.db", &nl, &nw), FP_OK);
    assert_int_equal(nl, 2);
    assert_int_equal(nw, 0);
    assert_int_equal(datakey_open(a, B, s, "x.db", &w, &origin), FP_KEY_MISMATCH);
    assert_int_equal(datakey_open(b, B, s, "x.db", &w, &origin), FP_OK);
    assert_int_equal(origin, DATAKEY_STORED);
    assert_false(opens_list(s, w, "alice", 10)); /* gone */
    datakey_status ds;
    assert_int_equal(datakey_check(b, B, s, &ds), FP_OK);
    assert_int_equal(ds.watchlists, 0);
    assert_int_equal(ds.opens, 1);
    film_list l;
    film_list_init(&l);
    assert_int_equal(B->films_load(s, &f.id, 1, &l), FP_OK);
    assert_int_equal(l.len, 1); /* the catalogue stays */
    film_list_free(&l);
    film_clear(&f);
    vault_free(&v);
    vault_free(&w);
    vault_kek_free(&a);
    vault_kek_free(&b);
    B->close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_database),
        cmocka_unit_test(test_legacy_database),
        cmocka_unit_test(test_legacy_probe_details),
        cmocka_unit_test(test_rotate),
        cmocka_unit_test(test_reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

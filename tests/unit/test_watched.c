/* test_watched.c - the "watched here" set: packing for the vault, edits,
 * the filter applied to every fetched list, the recent list. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/mem.h"
#include "vault.h"
#include "watched.h"

static void test_add_remove_keeps_order(void **state)
{
    (void)state;
    watched_set w = {0};
    assert_int_equal(watched_add(&w, 40, 1000), 1);
    assert_int_equal(watched_add(&w, 7, 1001), 1);
    assert_int_equal(watched_add(&w, 99, 1002), 1);
    assert_int_equal(watched_add(&w, 40, 1000), 0); /* same film, same time */
    assert_int_equal(watched_add(&w, 40, 2000), 1); /* marked again: re-timed */
    assert_int_equal(w.n, 3);
    assert_int_equal(w.items[0].film_id, 7);
    assert_int_equal(w.items[1].film_id, 40);
    assert_int_equal(w.items[1].at, 2000);
    assert_int_equal(w.items[2].film_id, 99);
    assert_true(watched_has(&w, 40));
    assert_false(watched_has(&w, 41));
    assert_int_equal(watched_remove(&w, 41), 0);
    assert_int_equal(watched_remove(&w, 40), 1);
    assert_false(watched_has(&w, 40));
    assert_int_equal(w.n, 2);
    watched_free(&w);
    assert_null(w.items);
}

static void test_pack_round_trip_through_the_vault(void **state)
{
    (void)state;
    watched_set w = {0};
    watched_add(&w, 1, 0);
    watched_add(&w, 123456, 1764633600);          /* 2025-12-02 */
    watched_add(&w, WATCHED_MAX_FILM_ID - 1, UINT32_MAX); /* the extremes */
    int64_t *codes = NULL;
    size_t n = 0;
    assert_int_equal(watched_pack(&w, &codes, &n), FP_OK);
    assert_int_equal(n, 3);
    for (size_t i = 1; i < n; i++)
        assert_true(codes[i] > codes[i - 1]); /* what vault_seal requires */

    vault *v = NULL;
    assert_int_equal(vault_open("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
                                NULL, &v),
                     FP_OK);
    uint8_t key[VAULT_KEY_BYTES] = {1};
    uint8_t *blob = NULL;
    size_t blen = 0;
    assert_int_equal(vault_seal(v, key, codes, n, &blob, &blen), FP_OK);
    int64_t *back = NULL;
    size_t nback = 0;
    assert_int_equal(vault_unseal(v, key, blob, blen, &back, &nback), FP_OK);
    watched_set w2 = {0};
    assert_int_equal(watched_unpack(back, nback, &w2), FP_OK);
    assert_int_equal(w2.n, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(w2.items[i].film_id, w.items[i].film_id);
        assert_int_equal(w2.items[i].at, w.items[i].at);
    }
    fp_free(back);
    fp_free(blob);
    fp_free(codes);
    vault_free(&v);
    watched_free(&w);
    watched_free(&w2);
}

static void test_pack_refuses_out_of_range(void **state)
{
    (void)state;
    int64_t *codes = NULL;
    size_t n = 0;
    watched_entry big[] = {{WATCHED_MAX_FILM_ID, 5}};
    watched_set w = {big, 1, 0};
    assert_int_equal(watched_pack(&w, &codes, &n), FP_INVALID);
    assert_null(codes);
    watched_entry late[] = {{5, (int64_t)UINT32_MAX + 1}};
    w = (watched_set){late, 1, 0};
    assert_int_equal(watched_pack(&w, &codes, &n), FP_INVALID);
    watched_entry zero[] = {{0, 5}};
    w = (watched_set){zero, 1, 0};
    assert_int_equal(watched_pack(&w, &codes, &n), FP_INVALID);
    watched_entry unsorted[] = {{9, 5}, {3, 5}};
    w = (watched_set){unsorted, 2, 0};
    assert_int_equal(watched_pack(&w, &codes, &n), FP_INVALID);
}

static void test_unpack_refuses_garbage(void **state)
{
    (void)state;
    watched_set w = {0};
    int64_t zero_film[] = {12345}; /* film id 0, time 12345 */
    assert_int_equal(watched_unpack(zero_film, 1, &w), FP_CORRUPT);
    int64_t same_film[] = {((int64_t)3 << 32) | 1, ((int64_t)3 << 32) | 2};
    assert_int_equal(watched_unpack(same_film, 2, &w), FP_CORRUPT);
    int64_t negative[] = {-5};
    assert_int_equal(watched_unpack(negative, 1, &w), FP_CORRUPT);
    assert_int_equal(watched_unpack(NULL, 0, &w), FP_OK);
    assert_int_equal(w.n, 0);
    watched_free(&w);
}

static void test_filter_drops_only_watched(void **state)
{
    (void)state;
    watched_set w = {0};
    watched_add(&w, 2, 10);
    watched_add(&w, 5, 10);
    watched_add(&w, 100, 10); /* not on the list: no effect */
    int64_t ids[] = {1, 2, 3, 5, 8};
    size_t n = watched_filter(&w, ids, 5);
    assert_int_equal(n, 3);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], 3);
    assert_int_equal(ids[2], 8);
    watched_set empty = {0};
    int64_t ids2[] = {4, 6};
    assert_int_equal(watched_filter(&empty, ids2, 2), 2);
    watched_free(&w);
}

static void test_recent_newest_first(void **state)
{
    (void)state;
    watched_set w = {0};
    watched_add(&w, 10, 100);
    watched_add(&w, 20, 300);
    watched_add(&w, 30, 200);
    watched_add(&w, 40, 50); /* too old */
    watched_entry *r = NULL;
    size_t n = watched_recent(&w, 100, 2, &r);
    assert_int_equal(n, 2);
    assert_int_equal(r[0].film_id, 20);
    assert_int_equal(r[1].film_id, 30);
    fp_free(r);
    n = watched_recent(&w, 100, 10, &r);
    assert_int_equal(n, 3);
    assert_int_equal(r[2].film_id, 10);
    fp_free(r);
    watched_free(&w);
}

static void test_full_set_forgets_the_oldest(void **state)
{
    (void)state;
    watched_set w = {0};
    for (int64_t i = 1; i <= WATCHED_MAX; i++)
        watched_add(&w, i, 1000 + i);
    assert_int_equal(w.n, WATCHED_MAX);
    assert_int_equal(watched_add(&w, WATCHED_MAX + 5, 5000000), 1);
    assert_int_equal(w.n, WATCHED_MAX);
    assert_false(watched_has(&w, 1)); /* marked first: gone */
    assert_true(watched_has(&w, 2));
    assert_true(watched_has(&w, WATCHED_MAX + 5));
    watched_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_remove_keeps_order),
        cmocka_unit_test(test_pack_round_trip_through_the_vault),
        cmocka_unit_test(test_pack_refuses_out_of_range),
        cmocka_unit_test(test_unpack_refuses_garbage),
        cmocka_unit_test(test_filter_drops_only_watched),
        cmocka_unit_test(test_recent_newest_first),
        cmocka_unit_test(test_full_set_forgets_the_oldest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

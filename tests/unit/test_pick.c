/* Unit tests for pick.c: intersection, ranking, fair and reproducible picks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "core/mem.h"
#include "pick.h"

#define SET(...) {(const int64_t[]){__VA_ARGS__}, sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t)}

static void test_intersect_table(void **state)
{
    (void)state;
    static const int64_t e[] = {0};
    struct {
        pick_set sets[3];
        size_t nsets;
        int64_t want[8];
        size_t nwant;
    } cases[] = {
        {{SET(1, 2, 3, 4), SET(2, 4, 6), SET(0, 2, 4, 8)}, 3, {2, 4}, 2},
        {{SET(1, 2, 3), SET(4, 5, 6)}, 2, {0}, 0},
        {{SET(5, 9, 12)}, 1, {5, 9, 12}, 3},
        {{SET(1, 2, 3), {e, 0}}, 2, {0}, 0},
        {{SET(-5, 0, 7), SET(-5, 7, 100)}, 2, {-5, 7}, 2},
        {{SET(1, 3, 5, 7, 9, 11), SET(11), SET(1, 11)}, 3, {11}, 1},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int64_t *out = NULL;
        size_t n = 99;
        assert_int_equal(pick_intersect(cases[c].sets, cases[c].nsets, &out, &n), FP_OK);
        assert_int_equal(n, cases[c].nwant);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(out[i], cases[c].want[i]);
        fp_free(out);
    }
    int64_t *out = (int64_t *)1;
    size_t n = 5;
    assert_int_equal(pick_intersect(NULL, 0, &out, &n), FP_OK);
    assert_null(out);
    assert_int_equal(n, 0);
}

static void test_rank_orders_by_count_then_id(void **state)
{
    (void)state;
    pick_set sets[] = {SET(1, 2, 3, 10), SET(2, 3, 10), SET(3, 10, 20), SET(3, 4)};
    pick_ranked *r = NULL;
    size_t n = 0;
    assert_int_equal(pick_rank(sets, 4, 2, &r, &n), FP_OK);
    /* 3 on 4 lists, 10 on 3, 2 on 2; 1, 4, 20 on one list only */
    assert_int_equal(n, 3);
    assert_int_equal(r[0].id, 3);
    assert_int_equal(r[0].count, 4);
    assert_int_equal(r[1].id, 10);
    assert_int_equal(r[1].count, 3);
    assert_int_equal(r[2].id, 2);
    assert_int_equal(r[2].count, 2);
    fp_free(r);
    assert_int_equal(pick_rank(sets, 4, 1, &r, &n), FP_OK);
    assert_int_equal(n, 6);
    assert_int_equal(r[3].id, 1);
    assert_int_equal(r[4].id, 4);
    assert_int_equal(r[5].id, 20);
    assert_int_equal(r[5].count, 1);
    fp_free(r);
}

static void test_rank_matches_intersection_on_large_sets(void **state)
{
    (void)state;
    enum { K = 6, N = 3000 };
    int64_t *lists[K];
    pick_set sets[K];
    pick_rng rng;
    uint64_t seed = 7;
    pick_rng_init(&rng, &seed);
    for (int k = 0; k < K; k++) {
        lists[k] = fp_malloc(N * sizeof(int64_t));
        int64_t v = 0;
        for (int i = 0; i < N; i++) {
            v += 1 + (int64_t)pick_rng_uniform(&rng, 3);
            lists[k][i] = v;
        }
        sets[k] = (pick_set){lists[k], N};
    }
    int64_t *inter = NULL;
    size_t ni = 0;
    assert_int_equal(pick_intersect(sets, K, &inter, &ni), FP_OK);
    pick_ranked *r = NULL;
    size_t nr = 0;
    assert_int_equal(pick_rank(sets, K, K, &r, &nr), FP_OK);
    assert_int_equal(ni, nr);
    for (size_t i = 0; i < ni; i++) {
        assert_int_equal(r[i].id, inter[i]);
        assert_int_equal(r[i].count, K);
    }
    /* brute force check of membership */
    for (size_t i = 0; i < ni; i++)
        for (int k = 0; k < K; k++)
            assert_true(pick_contains(lists[k], N, inter[i]));
    fp_free(inter);
    fp_free(r);
    for (int k = 0; k < K; k++)
        fp_free(lists[k]);
}

static void test_roll_excludes_vetoes_and_is_uniform(void **state)
{
    (void)state;
    const int64_t cands[] = {10, 20, 30, 40, 50};
    const int64_t veto[] = {20, 40};
    pick_rng rng;
    uint64_t seed = 42;
    pick_rng_init(&rng, &seed);
    int counts[6] = {0};
    enum { ROLLS = 30000 };
    for (int i = 0; i < ROLLS; i++) {
        int64_t c = 0;
        assert_int_equal(pick_roll(cands, 5, veto, 2, &rng, &c), FP_OK);
        assert_int_not_equal(c, 20);
        assert_int_not_equal(c, 40);
        counts[c / 10]++;
    }
    /* Each of 10, 30, 50 expected 10000 times; 5 sigma is about 410. */
    assert_in_range(counts[1], 9500, 10500);
    assert_in_range(counts[3], 9500, 10500);
    assert_in_range(counts[5], 9500, 10500);
    int64_t c = 0;
    const int64_t all[] = {10, 20, 30, 40, 50};
    assert_int_equal(pick_roll(cands, 5, all, 5, &rng, &c), FP_NOT_FOUND);
    assert_int_equal(pick_roll(cands, 0, NULL, 0, &rng, &c), FP_NOT_FOUND);
    pick_rng os;
    pick_rng_init(&os, NULL);
    assert_int_equal(pick_roll(cands, 5, veto, 2, &os, &c), FP_OK);
    assert_true(c == 10 || c == 30 || c == 50);
}

static void test_seed_reproduces(void **state)
{
    (void)state;
    uint64_t s1 = 123, s2 = 124;
    pick_rng a, b, c;
    pick_rng_init(&a, &s1);
    pick_rng_init(&b, &s1);
    pick_rng_init(&c, &s2);
    int same_ac = 1;
    for (int i = 0; i < 100; i++) {
        uint32_t x = pick_rng_uniform(&a, 1000000), y = pick_rng_uniform(&b, 1000000);
        uint32_t z = pick_rng_uniform(&c, 1000000);
        assert_int_equal(x, y);
        assert_true(x < 1000000);
        same_ac &= (x == z);
    }
    assert_false(same_ac);
}

static void test_sample_distinct(void **state)
{
    (void)state;
    const int64_t ids[] = {1, 2, 3, 4, 5, 6, 7, 8};
    int64_t out[8];
    pick_rng rng;
    pick_rng_init(&rng, NULL);
    for (int round = 0; round < 200; round++) {
        size_t k = pick_sample(ids, 8, 5, &rng, out);
        assert_int_equal(k, 5);
        for (size_t i = 0; i < k; i++) {
            assert_in_range(out[i], 1, 8);
            for (size_t j = 0; j < i; j++)
                assert_int_not_equal(out[i], out[j]);
        }
    }
    assert_int_equal(pick_sample(ids, 3, 10, &rng, out), 3);
    assert_int_equal(pick_sample(ids, 0, 10, &rng, out), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_intersect_table),
        cmocka_unit_test(test_rank_orders_by_count_then_id),
        cmocka_unit_test(test_rank_matches_intersection_on_large_sets),
        cmocka_unit_test(test_roll_excludes_vetoes_and_is_uniform),
        cmocka_unit_test(test_seed_reproduces),
        cmocka_unit_test(test_sample_distinct),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

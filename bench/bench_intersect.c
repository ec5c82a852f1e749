/*
 * bench_intersect.c - the set algebra on its own: 10 lists of 10,000 films
 * each (sorted catalogue ids, half of every list shared), timed as the
 * median of many runs of pick_intersect and pick_rank.
 * usage: bench_intersect [LISTS] [FILMS] [RUNS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/mem.h"
#include "pick.h"

static double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static long bench_arg(int argc, char **argv, int i, long def)
{
    if (argc <= i)
        return def;
    char *end = NULL;
    long v = strtol(argv[i], &end, 10);
    return (*end || v <= 0) ? def : v;
}

int main(int argc, char **argv)
{
    long k = bench_arg(argc, argv, 1, 10), n = bench_arg(argc, argv, 2, 10000);
    long runs = bench_arg(argc, argv, 3, 2001);
    pick_rng rng;
    uint64_t seed = 1;
    pick_rng_init(&rng, &seed);
    int64_t **lists = fp_calloc((size_t)k, sizeof *lists);
    pick_set *sets = fp_calloc((size_t)k, sizeof *sets);
    for (long i = 0; i < k; i++) {
        lists[i] = fp_malloc((size_t)n * sizeof **lists);
        /* even ids 2..n shared by all, the rest spread over a large range */
        int64_t v = 0;
        for (long j = 0; j < n; j++) {
            v += (j % 2 == 0) ? 1 : 1 + (int64_t)pick_rng_uniform(&rng, 40);
            lists[i][j] = (j % 2 == 0) ? 2 * j : 1000000 + v * (i + 1);
        }
        /* keep each list sorted: shared ids are small, the others large */
        int64_t *l = lists[i];
        long m = 0;
        int64_t *tmp = fp_malloc((size_t)n * sizeof *tmp);
        for (long j = 0; j < n; j += 2)
            tmp[m++] = l[j];
        for (long j = 1; j < n; j += 2)
            tmp[m++] = l[j];
        memcpy(l, tmp, (size_t)n * sizeof *l);
        fp_free(tmp);
        sets[i] = (pick_set){l, (size_t)n};
    }
    double *t_int = fp_malloc((size_t)runs * sizeof *t_int);
    double *t_rank = fp_malloc((size_t)runs * sizeof *t_rank);
    size_t common = 0, ranked_n = 0;
    for (long r = 0; r < runs; r++) {
        int64_t *out = NULL;
        double t0 = bench_now();
        fp_err rc = pick_intersect(sets, (size_t)k, &out, &common);
        t_int[r] = bench_now() - t0;
        fp_free(out);
        pick_ranked *ranked = NULL;
        t0 = bench_now();
        rc |= pick_rank(sets, (size_t)k, 2, &ranked, &ranked_n);
        t_rank[r] = bench_now() - t0;
        fp_free(ranked);
        if (rc != FP_OK)
            return 1;
    }
    qsort(t_int, (size_t)runs, sizeof *t_int, bench_cmp_double);
    qsort(t_rank, (size_t)runs, sizeof *t_rank, bench_cmp_double);
    printf("lists=%ld films_per_list=%ld runs=%ld common=%zu\n", k, n, runs, common);
    printf("pick_intersect: median %.1f us, p99 %.1f us\n", t_int[runs / 2] * 1e6,
           t_int[runs * 99 / 100] * 1e6);
    printf("pick_rank(min 2 lists): median %.1f us, p99 %.1f us (%zu ranked)\n",
           t_rank[runs / 2] * 1e6, t_rank[runs * 99 / 100] * 1e6, ranked_n);
    for (long i = 0; i < k; i++)
        fp_free(lists[i]);
    fp_free(lists);
    fp_free(sets);
    fp_free(t_int);
    fp_free(t_rank);
    return 0;
}

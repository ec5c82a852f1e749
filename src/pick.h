/*
 * pick.h - finding the group's films: intersections, "on most lists"
 * ranking, and uniform random picks, all on sorted integer sets of catalogue
 * ids (never string comparisons).
 *
 * Every input list must be sorted ascending without duplicates (that is how
 * vault_unseal returns them). Costs: pick_intersect is O(sum of lengths) with
 * the running result shrinking; pick_rank is a k-way merge, O(N log k).
 */
#ifndef FP_PICK_H
#define FP_PICK_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef struct pick_set {
    const int64_t *ids;
    size_t len;
} pick_set;

typedef struct pick_ranked {
    int64_t id;
    uint32_t count; /* on how many lists */
} pick_ranked;

/* Random source: a ChaCha20 stream keyed from a seed (reproducible) or, with
 * no seed, from a per-thread generator seeded by the OS (libsodium). */
typedef struct pick_rng {
    int seeded; /* initialised */
    uint8_t key[32];
    uint64_t block;
    uint8_t buf[64];
    size_t used;
} pick_rng;

/* Ids present in every set; *out is sorted, caller frees (NULL when n is 0). */
fp_err pick_intersect(const pick_set *sets, size_t nsets, int64_t **out, size_t *n) FP_WARN_UNUSED;

/* Ids on at least min_count sets, most lists first, then by id. Caller frees *out. */
fp_err pick_rank(const pick_set *sets, size_t nsets, uint32_t min_count, pick_ranked **out,
                 size_t *n) FP_WARN_UNUSED;

/* seed NULL: unpredictable; otherwise a reproducible stream. */
void pick_rng_init(pick_rng *r, const uint64_t *seed);
/* n random bytes (for request ids; not for secrets such as job ids). */
void pick_rng_bytes(pick_rng *r, void *buf, size_t n);
/* Uniform in [0, upper) without modulo bias; upper > 0. */
uint32_t pick_rng_uniform(pick_rng *r, uint32_t upper);

/* One id chosen uniformly among cands not in veto (both sorted). FP_NOT_FOUND
 * when everything was vetoed or cands is empty. */
fp_err pick_roll(const int64_t *cands, size_t n, const int64_t *veto, size_t nveto, pick_rng *r,
                 int64_t *chosen) FP_WARN_UNUSED;

/* Up to k distinct ids drawn uniformly from ids (partial Fisher-Yates on a
 * copy); writes min(k, n) ids to out and returns that count. */
size_t pick_sample(const int64_t *ids, size_t n, size_t k, pick_rng *r, int64_t *out);

/* 1 if id is in the sorted array. */
int pick_contains(const int64_t *ids, size_t n, int64_t id);

#endif

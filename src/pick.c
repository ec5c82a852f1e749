/*
 * pick.c - set algebra on sorted catalogue ids and fair random choice.
 *
 * Intersection starts from the shortest set and narrows it set by set with a
 * linear merge, so the work is bounded by the sum of the lengths and shrinks
 * as the candidate set does. Ranking merges all sets with a binary heap of
 * cursors. Random choices use rejection sampling (no modulo bias) over either
 * libsodium's OS randomness or, with a seed, a ChaCha20 key stream so a pick
 * can be reproduced.
 */
#include "pick.h"

#include <sodium.h>
#include <string.h>

#include "core/mem.h"

fp_err pick_intersect(const pick_set *sets, size_t nsets, int64_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (nsets == 0)
        return FP_OK;
    size_t shortest = 0;
    for (size_t i = 1; i < nsets; i++)
        if (sets[i].len < sets[shortest].len)
            shortest = i;
    size_t len = sets[shortest].len;
    if (len == 0)
        return FP_OK;
    int64_t *acc = fp_malloc(len * sizeof *acc);
    memcpy(acc, sets[shortest].ids, len * sizeof *acc);
    for (size_t s = 0; s < nsets && len > 0; s++) {
        if (s == shortest)
            continue;
        const int64_t *b = sets[s].ids;
        size_t nb = sets[s].len, i = 0, j = 0, k = 0;
        while (i < len && j < nb) {
            if (acc[i] < b[j])
                i++;
            else if (acc[i] > b[j])
                j++;
            else {
                acc[k++] = acc[i];
                i++;
                j++;
            }
        }
        len = k;
    }
    if (len == 0) {
        fp_free(acc);
        return FP_OK;
    }
    *out = acc;
    *n = len;
    return FP_OK;
}

/* Heap of set cursors ordered by their current id. */
typedef struct {
    int64_t id;
    size_t set;
    size_t pos;
} pick__cursor;

static void pick__sift_down(pick__cursor *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && h[l].id < h[m].id)
            m = l;
        if (r < n && h[r].id < h[m].id)
            m = r;
        if (m == i)
            return;
        pick__cursor t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static int pick__ranked_cmp(const void *a, const void *b)
{
    const pick_ranked *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

fp_err pick_rank(const pick_set *sets, size_t nsets, uint32_t min_count, pick_ranked **out,
                 size_t *n)
{
    *out = NULL;
    *n = 0;
    if (min_count == 0)
        min_count = 1;
    size_t total = 0, heap_n = 0;
    pick__cursor *heap = fp_malloc((nsets ? nsets : 1) * sizeof *heap);
    for (size_t s = 0; s < nsets; s++) {
        total += sets[s].len;
        if (sets[s].len)
            heap[heap_n++] = (pick__cursor){sets[s].ids[0], s, 0};
    }
    for (size_t i = heap_n / 2; i-- > 0;)
        pick__sift_down(heap, heap_n, i);
    pick_ranked *res = NULL;
    size_t res_n = 0, res_cap = 0;
    while (heap_n > 0) {
        int64_t id = heap[0].id;
        uint32_t count = 0;
        while (heap_n > 0 && heap[0].id == id) {
            count++;
            pick__cursor *c = &heap[0];
            if (++c->pos < sets[c->set].len) {
                c->id = sets[c->set].ids[c->pos];
            } else {
                heap[0] = heap[--heap_n];
            }
            pick__sift_down(heap, heap_n, 0);
        }
        if (count >= min_count) {
            if (res_n == res_cap) {
                res_cap = res_cap ? res_cap * 2 : (total < 64 ? 64 : total / 4 + 1);
                res = fp_reallocarray(res, res_cap, sizeof *res);
            }
            res[res_n++] = (pick_ranked){id, count};
        }
    }
    fp_free(heap);
    if (res_n > 1)
        qsort(res, res_n, sizeof *res, pick__ranked_cmp);
    *out = res;
    *n = res_n;
    return FP_OK;
}

/* Per-thread ChaCha20 generator keyed once from the OS, re-keyed after every
 * use (fast key erasure), so unseeded picks cost no system call. */
static _Thread_local uint8_t pick__tl_key[32];
static _Thread_local int pick__tl_ready;

void pick_rng_init(pick_rng *r, const uint64_t *seed)
{
    memset(r, 0, sizeof *r);
    r->seeded = 1;
    r->used = sizeof r->buf;
    if (seed) {
        uint8_t in[8];
        for (int i = 0; i < 8; i++)
            in[i] = (uint8_t)(*seed >> (8 * i));
        crypto_generichash(r->key, sizeof r->key, in, sizeof in, NULL, 0);
        return;
    }
    static const uint8_t nonce[crypto_stream_chacha20_NONCEBYTES] = {0};
    if (!pick__tl_ready) {
        randombytes_buf(pick__tl_key, sizeof pick__tl_key);
        pick__tl_ready = 1;
    }
    uint8_t block[64];
    crypto_stream_chacha20(block, sizeof block, nonce, pick__tl_key);
    memcpy(pick__tl_key, block, 32);
    memcpy(r->key, block + 32, 32);
    sodium_memzero(block, sizeof block);
}

static uint32_t pick__next32(pick_rng *r)
{
    if (r->used + 4 > sizeof r->buf) {
        static const uint8_t nonce[crypto_stream_chacha20_NONCEBYTES] = {0};
        memset(r->buf, 0, sizeof r->buf);
        crypto_stream_chacha20_xor_ic(r->buf, r->buf, sizeof r->buf, nonce, r->block++, r->key);
        r->used = 0;
    }
    uint32_t v = (uint32_t)r->buf[r->used] | (uint32_t)r->buf[r->used + 1] << 8 |
                 (uint32_t)r->buf[r->used + 2] << 16 | (uint32_t)r->buf[r->used + 3] << 24;
    r->used += 4;
    return v;
}

void pick_rng_bytes(pick_rng *r, void *buf, size_t n)
{
    uint8_t *out = buf;
    for (size_t i = 0; i < n; i += 4) {
        uint32_t v = pick__next32(r);
        for (size_t k = 0; k < 4 && i + k < n; k++)
            out[i + k] = (uint8_t)(v >> (8 * k));
    }
}

uint32_t pick_rng_uniform(pick_rng *r, uint32_t upper)
{
    if (upper < 2)
        return 0;
    uint32_t min = (uint32_t)(-upper) % upper; /* 2^32 mod upper */
    uint32_t v;
    do
        v = pick__next32(r);
    while (v < min);
    return v % upper;
}

int pick_contains(const int64_t *ids, size_t n, int64_t id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ids[mid] < id)
            lo = mid + 1;
        else if (ids[mid] > id)
            hi = mid;
        else
            return 1;
    }
    return 0;
}

fp_err pick_roll(const int64_t *cands, size_t n, const int64_t *veto, size_t nveto, pick_rng *r,
                 int64_t *chosen)
{
    size_t left = 0;
    for (size_t i = 0; i < n; i++)
        left += !pick_contains(veto, nveto, cands[i]);
    if (left == 0 || left > UINT32_MAX)
        return FP_NOT_FOUND;
    uint32_t k = pick_rng_uniform(r, (uint32_t)left);
    for (size_t i = 0; i < n; i++) {
        if (pick_contains(veto, nveto, cands[i]))
            continue;
        if (k-- == 0) {
            *chosen = cands[i];
            return FP_OK;
        }
    }
    return FP_INTERNAL; /* unreachable: k < left */
}

size_t pick_sample(const int64_t *ids, size_t n, size_t k, pick_rng *r, int64_t *out)
{
    if (k > n)
        k = n;
    if (k == 0 || n > UINT32_MAX)
        return 0;
    int64_t *tmp = fp_malloc(n * sizeof *tmp);
    memcpy(tmp, ids, n * sizeof *tmp);
    for (size_t i = 0; i < k; i++) {
        size_t j = i + pick_rng_uniform(r, (uint32_t)(n - i));
        int64_t t = tmp[i];
        tmp[i] = tmp[j];
        tmp[j] = t;
        out[i] = tmp[i];
    }
    fp_free(tmp);
    return k;
}

/*
 * ratelimit_inproc.c - token buckets in a hash table in this process.
 *
 * SipHash with a random key places the buckets (crafted keys cannot pile
 * into one chain). At most RLI_MAX_BUCKETS live at once: when the table is
 * full, buckets that have refilled to full are forgotten (they carry no
 * state), and if none has, the least recently used one goes (its owner then
 * starts from a full bucket: an attacker who floods the table with keys
 * gains at most one burst per key pushed out, and every key costs them a
 * request). One mutex: the buckets are only asked on the expensive routes.
 */
#include <math.h>
#include <pthread.h>
#include <sodium.h>
#include <string.h>

#include "core/mem.h"
#include "ratelimit/ratelimit.h"

#define RLI_BUCKETS 4096
#define RLI_MAX_BUCKETS 65536
#define RLI_ASKS_MAX 8

typedef struct rli_bucket {
    struct rli_bucket *next;           /* chain */
    struct rli_bucket *lru_prev, *lru_next; /* least recently used first */
    uint8_t key[RL_KEY_MAX];
    size_t klen;
    double tokens;
    double burst, per_s;
    long long at_ms; /* tokens were counted at this time */
} rli_bucket;

struct ratelimit {
    pthread_mutex_t mu;
    unsigned char hkey[crypto_shorthash_KEYBYTES];
    rli_bucket *table[RLI_BUCKETS];
    rli_bucket *lru_head, *lru_tail;
    size_t n;
};

static int rli_accepts(const char *url)
{
    return url && (strcmp(url, "inproc") == 0 || strcmp(url, "inproc://") == 0);
}

static fp_err rli_open(const char *url, ratelimit **out)
{
    (void)url;
    *out = NULL;
    if (sodium_init() < 0)
        return FP_CRYPTO;
    ratelimit *rl = fp_calloc(1, sizeof *rl);
    crypto_shorthash_keygen(rl->hkey);
    pthread_mutex_init(&rl->mu, NULL);
    *out = rl;
    return FP_OK;
}

static void rli_close(ratelimit *rl)
{
    if (!rl)
        return;
    while (rl->lru_head) {
        rli_bucket *b = rl->lru_head;
        rl->lru_head = b->lru_next;
        fp_free(b);
    }
    pthread_mutex_destroy(&rl->mu);
    fp_free(rl);
}

static size_t rli_slot(const ratelimit *rl, const uint8_t *key, size_t klen)
{
    unsigned char h[crypto_shorthash_BYTES];
    crypto_shorthash(h, key, klen, rl->hkey);
    uint64_t v;
    memcpy(&v, h, sizeof v);
    return (size_t)(v % RLI_BUCKETS);
}

static void rli_lru_unlink(ratelimit *rl, rli_bucket *b)
{
    if (b->lru_prev)
        b->lru_prev->lru_next = b->lru_next;
    else
        rl->lru_head = b->lru_next;
    if (b->lru_next)
        b->lru_next->lru_prev = b->lru_prev;
    else
        rl->lru_tail = b->lru_prev;
    b->lru_prev = b->lru_next = NULL;
}

static void rli_lru_push(ratelimit *rl, rli_bucket *b)
{
    b->lru_prev = rl->lru_tail;
    b->lru_next = NULL;
    if (rl->lru_tail)
        rl->lru_tail->lru_next = b;
    else
        rl->lru_head = b;
    rl->lru_tail = b;
}

static void rli_remove(ratelimit *rl, rli_bucket *b)
{
    size_t s = rli_slot(rl, b->key, b->klen);
    for (rli_bucket **pp = &rl->table[s]; *pp; pp = &(*pp)->next)
        if (*pp == b) {
            *pp = b->next;
            break;
        }
    rli_lru_unlink(rl, b);
    rl->n--;
    fp_free(b);
}

/* Tokens b holds at now. */
static double rli_level(const rli_bucket *b, long long now_ms)
{
    double t = b->tokens;
    if (now_ms > b->at_ms)
        t += (double)(now_ms - b->at_ms) / 1000.0 * b->per_s;
    return t < b->burst ? t : b->burst;
}

/* Makes room for one more bucket. mu held. */
static void rli_make_room(ratelimit *rl, long long now_ms)
{
    if (rl->n < RLI_MAX_BUCKETS)
        return;
    /* Full buckets first: they are as good as absent. Oldest-used first,
     * and only a bounded walk, so one insert never scans the whole table. */
    size_t walked = 0;
    for (rli_bucket *b = rl->lru_head; b && walked < 256; walked++) {
        rli_bucket *next = b->lru_next;
        if (rli_level(b, now_ms) >= b->burst)
            rli_remove(rl, b);
        b = next;
    }
    if (rl->n >= RLI_MAX_BUCKETS && rl->lru_head)
        rli_remove(rl, rl->lru_head);
}

static rli_bucket *rli_find(ratelimit *rl, const rl_ask *a)
{
    size_t s = rli_slot(rl, a->key, a->klen);
    for (rli_bucket *b = rl->table[s]; b; b = b->next)
        if (b->klen == a->klen && memcmp(b->key, a->key, a->klen) == 0)
            return b;
    return NULL;
}

static fp_err rli_take(ratelimit *rl, const rl_ask *asks, size_t n, long long now_ms,
                       long long *retry_ms, size_t *limiting)
{
    *retry_ms = 0;
    if (limiting)
        *limiting = 0;
    if (n > RLI_ASKS_MAX)
        return FP_INVALID;
    for (size_t i = 0; i < n; i++)
        if (asks[i].klen == 0 || asks[i].klen > RL_KEY_MAX || !(asks[i].burst > 0) ||
            !(asks[i].per_s > 0) || asks[i].cost < 0)
            return FP_INVALID;
    pthread_mutex_lock(&rl->mu);
    double wait_s = 0;
    for (size_t i = 0; i < n; i++) {
        const rl_ask *a = &asks[i];
        rli_bucket *b = rli_find(rl, a);
        double level = b ? rli_level(b, now_ms) : a->burst;
        if (level > a->burst)
            level = a->burst; /* the budget was lowered since */
        double w = 0;
        if (a->cost > a->burst)
            w = INFINITY;
        else if (level < a->cost)
            w = (a->cost - level) / a->per_s;
        if (w > wait_s) {
            wait_s = w;
            if (limiting)
                *limiting = i;
        }
    }
    if (wait_s > 0) {
        pthread_mutex_unlock(&rl->mu);
        /* rounded up, less a hair of floating-point noise */
        *retry_ms = isinf(wait_s) ? -1 : (long long)ceil(wait_s * 1000.0 - 1e-6);
        return FP_RATE_LIMITED;
    }
    for (size_t i = 0; i < n; i++) {
        const rl_ask *a = &asks[i];
        rli_bucket *b = rli_find(rl, a);
        if (!b) {
            rli_make_room(rl, now_ms);
            b = fp_calloc(1, sizeof *b);
            memcpy(b->key, a->key, a->klen);
            b->klen = a->klen;
            b->tokens = a->burst;
            b->at_ms = now_ms;
            size_t s = rli_slot(rl, a->key, a->klen);
            b->next = rl->table[s];
            rl->table[s] = b;
            rl->n++;
        } else {
            b->tokens = rli_level(b, now_ms);
            if (b->tokens > a->burst)
                b->tokens = a->burst;
            rli_lru_unlink(rl, b);
        }
        b->burst = a->burst;
        b->per_s = a->per_s;
        b->at_ms = now_ms > b->at_ms ? now_ms : b->at_ms;
        b->tokens -= a->cost;
        rli_lru_push(rl, b);
    }
    pthread_mutex_unlock(&rl->mu);
    return FP_OK;
}

static fp_err rli_ping(ratelimit *rl)
{
    (void)rl;
    return FP_OK;
}

const ratelimit_backend ratelimit_backend_inproc = {
    .name = "inproc",
    .accepts = rli_accepts,
    .open = rli_open,
    .close = rli_close,
    .take = rli_take,
    .ping = rli_ping,
};

const ratelimit_backend *ratelimit_backend_for(const char *url)
{
    static const ratelimit_backend *const all[] = {&ratelimit_backend_inproc,
                                                    &ratelimit_backend_redis};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i]->accepts(url))
            return all[i];
    return NULL;
}

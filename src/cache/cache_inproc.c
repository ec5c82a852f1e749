/*
 * cache_inproc.c - the embedded cache: a chained hash table keyed with
 * SipHash (libsodium crypto_shorthash, random key, so crafted keys cannot
 * flood one bucket), split into shards with a mutex each so HTTP threads
 * rarely contend. Each shard holds at most CI_SHARD_BYTES of values; when
 * full it evicts in insertion order (FIFO), which is enough for watchlists
 * that are refreshed as a whole.
 *
 * URL: "inproc" (256 MiB, evicting), or "inproc?max-mb=N&evict=no" for
 * state that must never be dropped to make room (sessions): a set that
 * does not fit after expired entries are gone fails with FP_UNAVAILABLE and
 * leaves the old value in place.
 */
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache/cache.h"
#include "core/mem.h"

#define CI_SHARDS 16
#define CI_BUCKETS 1024 /* per shard */
#define CI_DEFAULT_MB 256

typedef struct ci_entry {
    struct ci_entry *next;      /* bucket chain */
    struct ci_entry *fifo_next; /* insertion order, doubly linked */
    struct ci_entry *fifo_prev;
    uint64_t hash;
    time_t expires; /* 0: never */
    size_t klen, vlen;
    uint8_t data[]; /* key then value */
} ci_entry;

typedef struct ci_shard {
    pthread_mutex_t mu;
    ci_entry *buckets[CI_BUCKETS];
    ci_entry *fifo_head, *fifo_tail;
    size_t bytes;
} ci_shard;

struct cache {
    unsigned char hkey[crypto_shorthash_KEYBYTES];
    size_t shard_bytes;
    int no_evict;
    ci_shard shards[CI_SHARDS];
};

/* Parses "inproc[?max-mb=N][&evict=no]". 0 on anything else. */
static int ci_parse(const char *url, long *mb, int *no_evict)
{
    *mb = CI_DEFAULT_MB;
    *no_evict = 0;
    if (!url)
        return 0;
    const char *q;
    if (strncmp(url, "inproc://", 9) == 0)
        q = url + 9;
    else if (strncmp(url, "inproc", 6) == 0)
        q = url + 6;
    else
        return 0;
    if (*q == '\0')
        return 1;
    if (*q != '?')
        return 0;
    q++;
    while (*q) {
        size_t len = strcspn(q, "&");
        if (len > 7 && strncmp(q, "max-mb=", 7) == 0) {
            char *end = NULL;
            long v = strtol(q + 7, &end, 10);
            if (end != q + len || v < 1 || v > 1000000)
                return 0;
            *mb = v;
        } else if (len == 8 && strncmp(q, "evict=no", 8) == 0) {
            *no_evict = 1;
        } else if (len == 9 && strncmp(q, "evict=yes", 9) == 0) {
            *no_evict = 0;
        } else {
            return 0;
        }
        q += len + (q[len] == '&');
    }
    return 1;
}

static int ci_accepts(const char *url)
{
    long mb;
    int ne;
    return ci_parse(url, &mb, &ne);
}

static fp_err ci_open(const char *url, cache **out)
{
    long mb;
    int no_evict;
    if (!ci_parse(url, &mb, &no_evict))
        return FP_INVALID;
    if (sodium_init() < 0)
        return FP_CRYPTO;
    cache *c = fp_calloc(1, sizeof *c);
    c->shard_bytes = (size_t)mb * 1024u * 1024u / CI_SHARDS;
    c->no_evict = no_evict;
    crypto_shorthash_keygen(c->hkey);
    for (int i = 0; i < CI_SHARDS; i++)
        pthread_mutex_init(&c->shards[i].mu, NULL);
    *out = c;
    return FP_OK;
}

static void ci_close(cache *c)
{
    if (!c)
        return;
    for (int i = 0; i < CI_SHARDS; i++) {
        ci_entry *e = c->shards[i].fifo_head;
        while (e) {
            ci_entry *n = e->fifo_next;
            fp_free(e);
            e = n;
        }
        pthread_mutex_destroy(&c->shards[i].mu);
    }
    sodium_memzero(c->hkey, sizeof c->hkey);
    fp_free(c);
}

static uint64_t ci_hash(cache *c, const void *key, size_t klen)
{
    unsigned char h[crypto_shorthash_BYTES];
    crypto_shorthash(h, key, klen, c->hkey);
    uint64_t v;
    memcpy(&v, h, sizeof v);
    return v;
}

/* Unlinks e from its bucket and the FIFO and frees it. Shard lock held. */
static void ci_remove(ci_shard *s, ci_entry *e)
{
    ci_entry **pp = &s->buckets[(e->hash >> 4) % CI_BUCKETS];
    while (*pp && *pp != e)
        pp = &(*pp)->next;
    if (*pp)
        *pp = e->next;
    if (e->fifo_prev)
        e->fifo_prev->fifo_next = e->fifo_next;
    else
        s->fifo_head = e->fifo_next;
    if (e->fifo_next)
        e->fifo_next->fifo_prev = e->fifo_prev;
    else
        s->fifo_tail = e->fifo_prev;
    s->bytes -= e->klen + e->vlen;
    fp_free(e);
}

static ci_entry *ci_find(ci_shard *s, uint64_t h, const void *key, size_t klen)
{
    for (ci_entry *e = s->buckets[(h >> 4) % CI_BUCKETS]; e; e = e->next)
        if (e->hash == h && e->klen == klen && memcmp(e->data, key, klen) == 0)
            return e;
    return NULL;
}

static fp_err ci_get(cache *c, const void *key, size_t klen, uint8_t **val, size_t *vlen)
{
    uint64_t h = ci_hash(c, key, klen);
    ci_shard *s = &c->shards[h % CI_SHARDS];
    fp_err rc = FP_NOT_FOUND;
    pthread_mutex_lock(&s->mu);
    ci_entry *e = ci_find(s, h, key, klen);
    if (e && e->expires && e->expires <= time(NULL)) {
        ci_remove(s, e);
        e = NULL;
    }
    if (e) {
        *val = fp_malloc(e->vlen ? e->vlen : 1);
        memcpy(*val, e->data + e->klen, e->vlen);
        *vlen = e->vlen;
        rc = FP_OK;
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static fp_err ci_set(cache *c, const void *key, size_t klen, const void *val, size_t vlen,
                     long ttl_s)
{
    if (klen + vlen > c->shard_bytes)
        return c->no_evict ? FP_UNAVAILABLE : FP_TOO_LARGE;
    uint64_t h = ci_hash(c, key, klen);
    ci_shard *s = &c->shards[h % CI_SHARDS];
    ci_entry *n = fp_malloc(sizeof *n + klen + vlen);
    n->hash = h;
    n->klen = klen;
    n->vlen = vlen;
    n->expires = ttl_s > 0 ? time(NULL) + ttl_s : 0;
    n->fifo_next = n->fifo_prev = NULL;
    memcpy(n->data, key, klen);
    memcpy(n->data + klen, val, vlen);
    pthread_mutex_lock(&s->mu);
    ci_entry *old = ci_find(s, h, key, klen);
    if (c->no_evict) {
        /* Room only from what has expired (oldest first, then a bounded
         * walk), never from a live entry. */
        time_t now = time(NULL);
        size_t walked = 0;
        for (ci_entry *e = s->fifo_head;
             e && walked < 1024 && s->bytes - (old ? old->klen + old->vlen : 0) + klen + vlen >
                                       c->shard_bytes;
             walked++) {
            ci_entry *next = e->fifo_next;
            if (e != old && e->expires && e->expires <= now)
                ci_remove(s, e);
            e = next;
        }
        if (s->bytes - (old ? old->klen + old->vlen : 0) + klen + vlen > c->shard_bytes) {
            pthread_mutex_unlock(&s->mu);
            fp_free(n);
            return FP_UNAVAILABLE;
        }
    }
    if (old)
        ci_remove(s, old);
    while (s->fifo_head && s->bytes + klen + vlen > c->shard_bytes)
        ci_remove(s, s->fifo_head);
    ci_entry **bucket = &s->buckets[(h >> 4) % CI_BUCKETS];
    n->next = *bucket;
    *bucket = n;
    n->fifo_prev = s->fifo_tail;
    if (s->fifo_tail)
        s->fifo_tail->fifo_next = n;
    else
        s->fifo_head = n;
    s->fifo_tail = n;
    s->bytes += klen + vlen;
    pthread_mutex_unlock(&s->mu);
    return FP_OK;
}

static fp_err ci_del(cache *c, const void *key, size_t klen)
{
    uint64_t h = ci_hash(c, key, klen);
    ci_shard *s = &c->shards[h % CI_SHARDS];
    pthread_mutex_lock(&s->mu);
    ci_entry *e = ci_find(s, h, key, klen);
    if (e)
        ci_remove(s, e);
    pthread_mutex_unlock(&s->mu);
    return FP_OK;
}

static fp_err ci_ping(cache *c)
{
    (void)c;
    return FP_OK;
}

const cache_backend cache_backend_inproc = {
    .name = "inproc",
    .accepts = ci_accepts,
    .open = ci_open,
    .close = ci_close,
    .get = ci_get,
    .set = ci_set,
    .del = ci_del,
    .ping = ci_ping,
};

const cache_backend *cache_backend_for(const char *url)
{
    static const cache_backend *const all[] = {&cache_backend_inproc, &cache_backend_redis};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i]->accepts(url))
            return all[i];
    return NULL;
}

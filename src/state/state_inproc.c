/*
 * state_inproc.c - the embedded shared-state backend: documents, leases,
 * semaphores and streams in this process's memory (state.h has the
 * contract; one process is then the whole "system").
 *
 * One hash table of entries keyed by (kind, name), SipHash with a random key
 * (libsodium crypto_shorthash), split into SI_SHARDS shards with a mutex and
 * a condition variable each; a shard's bucket array doubles when it holds
 * more than two entries a bucket. Kinds are separate namespaces, as the
 * Redis backend's key prefixes are.
 *
 * Memory stays bounded by what is live: an expired entry is removed when it
 * is next looked at, and every SI_SWEEP_EVERY operations on a shard sweep
 * the next SI_SWEEP_BUCKETS buckets of it (an amortised sweep, so nothing
 * expired lingers while the shard is in use, and no operation pays for the
 * whole table). Streams are trimmed to maxlen exactly on every append.
 *
 * A blocking stream_read waits on its shard's condition variable, which
 * every append to a stream of that shard broadcasts; the waiter looks again
 * (other streams of the shard wake it too). Events are copied out under the
 * lock and given to the callback after it is released, so a callback may
 * call this backend again. Times are CLOCK_MONOTONIC milliseconds; stream
 * ids use the wall clock (CLOCK_REALTIME) like Redis's, kept increasing.
 */
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/mem.h"
#include "state/state.h"
#include "state/state_internal.h"

#define SI_SHARDS 16
#define SI_BUCKETS0 64 /* per shard at first; doubles */
#define SI_SWEEP_EVERY 16
#define SI_SWEEP_BUCKETS 8
#define SI_READ_MAX 10000 /* events one stream_read copies at most */

enum { SI_DOC, SI_LEASE, SI_SEM, SI_STREAM };

typedef struct si_event {
    uint64_t ms, seq;
    size_t len;
    uint8_t val[];
} si_event;

typedef struct si_holder {
    char token[STATE_TOKEN_MAX + 1];
    long long expires;
} si_holder;

typedef struct si_entry {
    struct si_entry *next;
    uint64_t hash;
    int kind;
    long long expires; /* monotonic ms, 0: never */
    /* SI_DOC */
    uint8_t *val;
    size_t len;
    uint64_t version;
    /* SI_LEASE */
    char token[STATE_TOKEN_MAX + 1];
    /* SI_SEM */
    si_holder *holders;
    size_t nholders, capholders;
    /* SI_STREAM: events[start .. start+n) oldest first */
    si_event **events;
    size_t start, n, cap;
    uint64_t last_ms, last_seq;
    size_t nlen;
    char name[];
} si_entry;

typedef struct si_shard {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* an append to a stream of this shard */
    si_entry **buckets;
    size_t nbuckets, count;
    size_t sweep_at, ops;
} si_shard;

struct state {
    unsigned char hkey[crypto_shorthash_KEYBYTES];
    si_shard shards[SI_SHARDS];
};

static long long si_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t si_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int si_accepts(const char *url)
{
    return url && (strcmp(url, "inproc") == 0 || strcmp(url, "inproc://") == 0);
}

static uint64_t si_hash(const state_handle *st, int kind, const char *name, size_t nlen)
{
    unsigned char buf[1 + STATE_NAME_MAX];
    buf[0] = (unsigned char)kind;
    memcpy(buf + 1, name, nlen);
    unsigned char h[crypto_shorthash_BYTES];
    crypto_shorthash(h, buf, nlen + 1, st->hkey);
    uint64_t v;
    memcpy(&v, h, sizeof v);
    return v;
}

static size_t si_bucket(const si_shard *s, uint64_t h)
{
    return (size_t)(h >> 8) & (s->nbuckets - 1);
}

static void si_entry_free(si_entry *e)
{
    fp_free(e->val);
    fp_free(e->holders);
    for (size_t i = 0; i < e->n; i++)
        fp_free(e->events[e->start + i]);
    fp_free(e->events);
    fp_free(e);
}

/* Drops expired semaphore holders and sets the entry's expiry to the last
 * holder's. */
static void si_sem_prune(si_entry *e, long long now)
{
    size_t k = 0;
    long long last = 0;
    for (size_t i = 0; i < e->nholders; i++)
        if (e->holders[i].expires > now) {
            if (e->holders[i].expires > last)
                last = e->holders[i].expires;
            e->holders[k++] = e->holders[i];
        }
    e->nholders = k;
    e->expires = k ? last : now; /* an empty semaphore is as good as absent */
}

static int si_expired(si_entry *e, long long now)
{
    if (e->kind == SI_SEM)
        si_sem_prune(e, now);
    return e->expires && e->expires <= now;
}

/* Removes every expired entry of bucket b. Shard lock held. */
static void si_sweep_bucket(si_shard *s, size_t b, long long now)
{
    si_entry **pp = &s->buckets[b];
    while (*pp) {
        si_entry *e = *pp;
        if (si_expired(e, now)) {
            *pp = e->next;
            s->count--;
            si_entry_free(e);
        } else {
            pp = &e->next;
        }
    }
}

/* The amortised sweep and the table's growth. Shard lock held. */
static void si_maintain(si_shard *s, long long now)
{
    if (++s->ops % SI_SWEEP_EVERY == 0)
        for (int i = 0; i < SI_SWEEP_BUCKETS; i++) {
            si_sweep_bucket(s, s->sweep_at, now);
            s->sweep_at = (s->sweep_at + 1) & (s->nbuckets - 1);
        }
    if (s->count <= s->nbuckets * 2)
        return;
    size_t nb = s->nbuckets * 2;
    si_entry **nt = fp_calloc(nb, sizeof *nt);
    for (size_t i = 0; i < s->nbuckets; i++) {
        si_entry *e = s->buckets[i];
        while (e) {
            si_entry *next = e->next;
            size_t b = (size_t)(e->hash >> 8) & (nb - 1);
            e->next = nt[b];
            nt[b] = e;
            e = next;
        }
    }
    fp_free(s->buckets);
    s->buckets = nt;
    s->nbuckets = nb;
    s->sweep_at = 0;
}

/* The live entry of (kind, name), or NULL; with create, a new empty one.
 * Locks the shard (*shard), which the caller unlocks. */
static si_entry *si_lookup(state_handle *st, int kind, const char *name, int create, si_shard **shard)
{
    size_t nlen = strlen(name);
    uint64_t h = si_hash(st, kind, name, nlen);
    si_shard *s = &st->shards[h % SI_SHARDS];
    *shard = s;
    pthread_mutex_lock(&s->mu);
    long long now = si_now();
    si_maintain(s, now);
    si_entry **pp = &s->buckets[si_bucket(s, h)];
    for (; *pp; pp = &(*pp)->next) {
        si_entry *e = *pp;
        if (e->hash == h && e->kind == kind && e->nlen == nlen && memcmp(e->name, name, nlen) == 0) {
            if (!si_expired(e, now))
                return e;
            *pp = e->next;
            s->count--;
            si_entry_free(e);
            break;
        }
    }
    if (!create)
        return NULL;
    si_entry *e = fp_calloc(1, sizeof *e + nlen + 1);
    e->hash = h;
    e->kind = kind;
    e->nlen = nlen;
    memcpy(e->name, name, nlen + 1);
    size_t b = si_bucket(s, h);
    e->next = s->buckets[b];
    s->buckets[b] = e;
    s->count++;
    return e;
}

/* Removes e (found under this shard's lock). */
static void si_remove(si_shard *s, si_entry *e)
{
    for (si_entry **pp = &s->buckets[si_bucket(s, e->hash)]; *pp; pp = &(*pp)->next)
        if (*pp == e) {
            *pp = e->next;
            s->count--;
            si_entry_free(e);
            return;
        }
}

static fp_err si_open(const char *url, state_handle **out)
{
    *out = NULL;
    if (!si_accepts(url))
        return FP_INVALID;
    if (sodium_init() < 0)
        return FP_CRYPTO;
    state_handle *st = fp_calloc(1, sizeof *st);
    crypto_shorthash_keygen(st->hkey);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    for (int i = 0; i < SI_SHARDS; i++) {
        si_shard *s = &st->shards[i];
        pthread_mutex_init(&s->mu, NULL);
        pthread_cond_init(&s->cv, &ca);
        s->nbuckets = SI_BUCKETS0;
        s->buckets = fp_calloc(s->nbuckets, sizeof *s->buckets);
    }
    pthread_condattr_destroy(&ca);
    *out = st;
    return FP_OK;
}

static void si_close(state_handle *st)
{
    if (!st)
        return;
    for (int i = 0; i < SI_SHARDS; i++) {
        si_shard *s = &st->shards[i];
        for (size_t b = 0; b < s->nbuckets; b++) {
            si_entry *e = s->buckets[b];
            while (e) {
                si_entry *next = e->next;
                si_entry_free(e);
                e = next;
            }
        }
        fp_free(s->buckets);
        pthread_cond_destroy(&s->cv);
        pthread_mutex_destroy(&s->mu);
    }
    sodium_memzero(st->hkey, sizeof st->hkey);
    fp_free(st);
}

static fp_err si_ping(state_handle *st)
{
    (void)st;
    return FP_OK;
}

/* ---- documents ------------------------------------------------------------ */

static fp_err si_doc_get(state_handle *st, const char *name, uint8_t **val, size_t *len,
                         uint64_t *version)
{
    *val = NULL;
    *len = 0;
    if (version)
        *version = 0;
    if (!state__name_ok(name))
        return FP_INVALID;
    si_shard *s;
    si_entry *e = si_lookup(st, SI_DOC, name, 0, &s);
    fp_err rc = FP_NOT_FOUND;
    if (e) {
        *val = fp_malloc(e->len);
        memcpy(*val, e->val, e->len);
        *len = e->len;
        if (version)
            *version = e->version;
        rc = FP_OK;
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static fp_err si_doc_cas(state_handle *st, const char *name, uint64_t expect, const void *val,
                         size_t len, long ttl_ms, uint64_t *version)
{
    if (!state__name_ok(name) || ttl_ms <= 0 || len > STATE_VALUE_MAX || (len && !val))
        return FP_INVALID;
    /* Copied before the lock: the critical section stays short. */
    uint8_t *copy = fp_malloc(len);
    if (len)
        memcpy(copy, val, len);
    si_shard *s;
    si_entry *e = si_lookup(st, SI_DOC, name, expect == 0, &s);
    fp_err rc = FP_CONFLICT;
    if (e && e->version == expect) {
        fp_free(e->val);
        e->val = copy;
        copy = NULL;
        e->len = len;
        e->version++;
        e->expires = si_now() + ttl_ms;
        if (version)
            *version = e->version;
        rc = FP_OK;
    }
    pthread_mutex_unlock(&s->mu);
    fp_free(copy);
    return rc;
}

static fp_err si_doc_del(state_handle *st, const char *name)
{
    if (!state__name_ok(name))
        return FP_INVALID;
    si_shard *s;
    si_entry *e = si_lookup(st, SI_DOC, name, 0, &s);
    if (e)
        si_remove(s, e);
    pthread_mutex_unlock(&s->mu);
    return FP_OK;
}

/* ---- leases --------------------------------------------------------------- */

static fp_err si_lease_take(state_handle *st, const char *name, const char *token, long ttl_ms)
{
    if (!state__name_ok(name) || !state__token_ok(token) || ttl_ms <= 0)
        return FP_INVALID;
    si_shard *s;
    si_entry *e = si_lookup(st, SI_LEASE, name, 1, &s);
    fp_err rc = FP_CONFLICT;
    if (!e->token[0] || strcmp(e->token, token) == 0) {
        snprintf(e->token, sizeof e->token, "%s", token);
        e->expires = si_now() + ttl_ms;
        rc = FP_OK;
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static fp_err si_lease_renew(state_handle *st, const char *name, const char *token, long ttl_ms)
{
    if (!state__name_ok(name) || !state__token_ok(token) || ttl_ms <= 0)
        return FP_INVALID;
    si_shard *s;
    si_entry *e = si_lookup(st, SI_LEASE, name, 0, &s);
    fp_err rc = FP_CONFLICT;
    if (e && strcmp(e->token, token) == 0) {
        e->expires = si_now() + ttl_ms;
        rc = FP_OK;
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static fp_err si_lease_drop(state_handle *st, const char *name, const char *token)
{
    if (!state__name_ok(name) || !state__token_ok(token))
        return FP_INVALID;
    si_shard *s;
    si_entry *e = si_lookup(st, SI_LEASE, name, 0, &s);
    if (e && strcmp(e->token, token) == 0)
        si_remove(s, e);
    pthread_mutex_unlock(&s->mu);
    return FP_OK;
}

/* ---- semaphores ----------------------------------------------------------- */

static si_holder *si_holder_of(si_entry *e, const char *token)
{
    for (size_t i = 0; i < e->nholders; i++)
        if (strcmp(e->holders[i].token, token) == 0)
            return &e->holders[i];
    return NULL;
}

static fp_err si_sem_take(state_handle *st, const char *name, long limit, const char *token,
                          long ttl_ms)
{
    if (!state__name_ok(name) || !state__token_ok(token) || ttl_ms <= 0 || limit <= 0)
        return FP_INVALID;
    si_shard *s;
    si_entry *e = si_lookup(st, SI_SEM, name, 1, &s);
    long long now = si_now();
    si_sem_prune(e, now);
    fp_err rc = FP_OK;
    si_holder *h = si_holder_of(e, token);
    if (!h) {
        if ((long)e->nholders >= limit) {
            rc = FP_CONFLICT;
            goto out;
        }
        if (e->nholders == e->capholders) {
            e->capholders = e->capholders ? e->capholders * 2 : 4;
            e->holders = fp_reallocarray(e->holders, e->capholders, sizeof *e->holders);
        }
        h = &e->holders[e->nholders++];
        snprintf(h->token, sizeof h->token, "%s", token);
    }
    h->expires = now + ttl_ms;
    if (h->expires > e->expires)
        e->expires = h->expires;
out:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static fp_err si_sem_renew(state_handle *st, const char *name, const char *token, long ttl_ms)
{
    if (!state__name_ok(name) || !state__token_ok(token) || ttl_ms <= 0)
        return FP_INVALID;
    si_shard *s;
    si_entry *e = si_lookup(st, SI_SEM, name, 0, &s);
    fp_err rc = FP_CONFLICT;
    si_holder *h = e ? si_holder_of(e, token) : NULL;
    if (h) {
        h->expires = si_now() + ttl_ms;
        if (h->expires > e->expires)
            e->expires = h->expires;
        rc = FP_OK;
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static fp_err si_sem_drop(state_handle *st, const char *name, const char *token)
{
    if (!state__name_ok(name) || !state__token_ok(token))
        return FP_INVALID;
    si_shard *s;
    si_entry *e = si_lookup(st, SI_SEM, name, 0, &s);
    si_holder *h = e ? si_holder_of(e, token) : NULL;
    if (h) {
        *h = e->holders[--e->nholders];
        if (e->nholders == 0)
            si_remove(s, e);
    }
    pthread_mutex_unlock(&s->mu);
    return FP_OK;
}

static fp_err si_sem_count(state_handle *st, const char *name, long *held)
{
    *held = 0;
    if (!state__name_ok(name))
        return FP_INVALID;
    si_shard *s;
    si_entry *e = si_lookup(st, SI_SEM, name, 0, &s);
    if (e)
        *held = (long)e->nholders; /* si_lookup pruned it */
    pthread_mutex_unlock(&s->mu);
    return FP_OK;
}

/* ---- streams -------------------------------------------------------------- */

static void si_id_format(char out[STATE_ID_MAX], uint64_t ms, uint64_t seq)
{
    snprintf(out, STATE_ID_MAX, "%llu-%llu", (unsigned long long)ms, (unsigned long long)seq);
}

static int si_id_gt(uint64_t am, uint64_t as, uint64_t bm, uint64_t bs)
{
    return am > bm || (am == bm && as > bs);
}

static fp_err si_stream_add(state_handle *st, const char *name, const char *id_in, const void *val,
                            size_t len, size_t maxlen, long ttl_ms, char *id_out)
{
    uint64_t ms = 0, seq = 0;
    if (!state__name_ok(name) || maxlen == 0 || ttl_ms < 0 || len > STATE_VALUE_MAX ||
        (len && !val) || (id_in && !state__id_parse(id_in, &ms, &seq)))
        return FP_INVALID;
    si_event *ev = fp_malloc(sizeof *ev + len);
    ev->len = len;
    if (len)
        memcpy(ev->val, val, len);
    si_shard *s;
    si_entry *e = si_lookup(st, SI_STREAM, name, 1, &s);
    fp_err rc = FP_OK;
    if (id_in) {
        if (!si_id_gt(ms, seq, e->last_ms, e->last_seq)) {
            rc = FP_CONFLICT;
            if (e->n == 0 && !e->last_ms && !e->last_seq)
                si_remove(s, e); /* created just now for nothing */
            goto out;
        }
    } else {
        ms = si_wall_ms();
        if (ms > e->last_ms) {
            seq = 0;
        } else {
            ms = e->last_ms;
            seq = e->last_seq + 1;
        }
    }
    ev->ms = e->last_ms = ms;
    ev->seq = e->last_seq = seq;
    if (e->start + e->n == e->cap) {
        if (e->start > 0) {
            memmove(e->events, e->events + e->start, e->n * sizeof *e->events);
            e->start = 0;
        } else {
            e->cap = e->cap ? e->cap * 2 : 8;
            e->events = fp_reallocarray(e->events, e->cap, sizeof *e->events);
        }
    }
    e->events[e->start + e->n++] = ev;
    ev = NULL;
    while (e->n > maxlen) {
        fp_free(e->events[e->start]);
        e->start++;
        e->n--;
    }
    e->expires = ttl_ms > 0 ? si_now() + ttl_ms : 0;
    if (id_out)
        si_id_format(id_out, ms, seq);
    pthread_cond_broadcast(&s->cv);
out:
    pthread_mutex_unlock(&s->mu);
    fp_free(ev);
    return rc;
}

/* Index of the first event of e after (ms, seq). */
static size_t si_first_after(const si_entry *e, uint64_t ms, uint64_t seq)
{
    size_t lo = 0, hi = e->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const si_event *ev = e->events[e->start + mid];
        if (si_id_gt(ev->ms, ev->seq, ms, seq))
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

static fp_err si_stream_read(state_handle *st, const char *name, const char *after, size_t max,
                             long block_ms, state_event_fn fn, void *ud, char *last)
{
    uint64_t ams = 0, aseq = 0;
    int dollar = after && strcmp(after, "$") == 0;
    if (!state__name_ok(name) || max == 0 || !fn ||
        (!dollar && !state__id_parse(after, &ams, &aseq)))
        return FP_INVALID;
    if (block_ms > STATE_BLOCK_MAX_MS)
        block_ms = STATE_BLOCK_MAX_MS;
    if (max > SI_READ_MAX)
        max = SI_READ_MAX;
    si_event **got = NULL;
    size_t ngot = 0;
    long long deadline = si_now() + (block_ms > 0 ? block_ms : 0);
    si_shard *s;
    si_entry *e = si_lookup(st, SI_STREAM, name, 0, &s);
    if (dollar && e) {
        ams = e->last_ms;
        aseq = e->last_seq;
    }
    for (;;) {
        if (e) {
            size_t i = si_first_after(e, ams, aseq);
            size_t n = e->n - i < max ? e->n - i : max;
            if (n) {
                got = fp_calloc(n, sizeof *got);
                for (size_t k = 0; k < n; k++) {
                    const si_event *ev = e->events[e->start + i + k];
                    got[k] = fp_malloc(sizeof *ev + ev->len);
                    memcpy(got[k], ev, sizeof *ev + ev->len);
                }
                ngot = n;
                break;
            }
        }
        long long now = si_now();
        if (now >= deadline)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        long long wait = deadline - now;
        ts.tv_sec += wait / 1000;
        ts.tv_nsec += (wait % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&s->cv, &s->mu, &ts);
        pthread_mutex_unlock(&s->mu);
        /* Looked up again: the entry may have expired and gone meanwhile. */
        e = si_lookup(st, SI_STREAM, name, 0, &s);
    }
    pthread_mutex_unlock(&s->mu);
    char id[STATE_ID_MAX];
    si_id_format(id, ams, aseq);
    for (size_t k = 0; k < ngot; k++) {
        si_id_format(id, got[k]->ms, got[k]->seq);
        state_event ev = {.id = id, .val = got[k]->val, .len = got[k]->len};
        if (fn(ud, &ev) != 0)
            break;
    }
    if (last)
        memcpy(last, id, STATE_ID_MAX);
    for (size_t k = 0; k < ngot; k++)
        fp_free(got[k]);
    fp_free(got);
    return FP_OK;
}

static fp_err si_stream_first(state_handle *st, const char *name, char id_out[STATE_ID_MAX])
{
    si_id_format(id_out, 0, 0);
    if (!state__name_ok(name))
        return FP_INVALID;
    si_shard *s;
    si_entry *e = si_lookup(st, SI_STREAM, name, 0, &s);
    if (e && e->n)
        si_id_format(id_out, e->events[e->start]->ms, e->events[e->start]->seq);
    pthread_mutex_unlock(&s->mu);
    return FP_OK;
}

const state_backend state_backend_inproc = {
    .name = "inproc",
    .accepts = si_accepts,
    .open = si_open,
    .close = si_close,
    .ping = si_ping,
    .doc_get = si_doc_get,
    .doc_cas = si_doc_cas,
    .doc_del = si_doc_del,
    .lease_take = si_lease_take,
    .lease_renew = si_lease_renew,
    .lease_drop = si_lease_drop,
    .sem_take = si_sem_take,
    .sem_renew = si_sem_renew,
    .sem_drop = si_sem_drop,
    .sem_count = si_sem_count,
    .stream_add = si_stream_add,
    .stream_read = si_stream_read,
    .stream_first = si_stream_first,
};

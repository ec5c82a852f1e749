/*
 * cache_redis.c - the cache on Redis, shared by every API instance: the
 * contract of cache.h and cache_inproc.c (get, set with a ttl in seconds,
 * del; values opaque, the service seals what it stores).
 *
 * Layout: one string per entry, key "fp:c:" + the caller's key bytes (binary
 * keys are fine), SET ... EX ttl when ttl_s > 0. An entry without a ttl has
 * no expiry: under the recommended maxmemory-policy volatile-lru it is never
 * evicted, under allkeys-lru it is (docs/operations.md, "Redis"). Redis
 * evicts by its own policy instead of cache_inproc's FIFO; a write Redis
 * refuses for want of memory (OOM) is FP_UNAVAILABLE, which is also what the
 * inproc cache's no-eviction mode answers, so "inproc?evict=no" callers
 * (sessions) see the same code. URL: redis/redis.h.
 */
#include <string.h>

#include "cache/cache.h"
#include "core/mem.h"
#include "redis/redis.h"

#define CR_PREFIX "fp:c:"
#define CR_KEY_MAX 1024
#define CR_VALUE_MAX (64u << 20)

struct cache {
    redis_pool *pool;
};

static int cr_accepts(const char *url)
{
    return redis_accepts(url);
}

static fp_err cr_open(const char *url, cache **out)
{
    *out = NULL;
    redis_pool *p = NULL;
    fp_err rc = redis_pool_open(url, &p);
    if (rc != FP_OK)
        return rc;
    cache *c = fp_calloc(1, sizeof *c);
    c->pool = p;
    *out = c;
    return FP_OK;
}

static void cr_close(cache *c)
{
    if (!c)
        return;
    redis_pool_close(&c->pool);
    fp_free(c);
}

static fp_err cr_get(cache *c, const void *key, size_t klen, uint8_t **val, size_t *vlen)
{
    *val = NULL;
    *vlen = 0;
    if (klen == 0 || klen > CR_KEY_MAX)
        return FP_INVALID;
    redis_args a;
    redis_args_init(&a);
    redis_arg_str(&a, "GET");
    redis_arg_key(&a, CR_PREFIX, key, klen);
    redisReply *r = NULL;
    fp_err rc = redis_cmd(c->pool, &a, &r);
    if (rc != FP_OK) {
        if (rc != FP_UNAVAILABLE)
            rc = redis_unexpected("GET", r);
        goto out;
    }
    if (r->type == REDIS_REPLY_NIL) {
        rc = FP_NOT_FOUND;
        goto out;
    }
    if (r->type != REDIS_REPLY_STRING) {
        rc = redis_unexpected("GET", r);
        goto out;
    }
    *val = fp_malloc(r->len);
    memcpy(*val, r->str, r->len);
    *vlen = r->len;
out:
    redis_reply_free(&r);
    return rc;
}

static fp_err cr_set(cache *c, const void *key, size_t klen, const void *val, size_t vlen,
                     long ttl_s)
{
    if (klen == 0 || klen > CR_KEY_MAX)
        return FP_INVALID;
    if (vlen > CR_VALUE_MAX)
        return FP_TOO_LARGE;
    redis_args a;
    redis_args_init(&a);
    redis_arg_str(&a, "SET");
    redis_arg_key(&a, CR_PREFIX, key, klen);
    redis_arg(&a, val, vlen);
    if (ttl_s > 0) {
        redis_arg_str(&a, "EX");
        redis_arg_ll(&a, ttl_s);
    }
    redisReply *r = NULL;
    fp_err rc = redis_cmd(c->pool, &a, &r);
    if (rc == FP_OK && r->type != REDIS_REPLY_STATUS)
        rc = FP_INTERNAL;
    if (rc != FP_OK && rc != FP_UNAVAILABLE)
        rc = redis_unexpected("SET", r);
    redis_reply_free(&r);
    return rc;
}

static fp_err cr_del(cache *c, const void *key, size_t klen)
{
    if (klen == 0 || klen > CR_KEY_MAX)
        return FP_INVALID;
    redis_args a;
    redis_args_init(&a);
    redis_arg_str(&a, "DEL");
    redis_arg_key(&a, CR_PREFIX, key, klen);
    redisReply *r = NULL;
    fp_err rc = redis_cmd(c->pool, &a, &r);
    if (rc == FP_OK && r->type != REDIS_REPLY_INTEGER)
        rc = FP_INTERNAL;
    if (rc != FP_OK && rc != FP_UNAVAILABLE)
        rc = redis_unexpected("DEL", r);
    redis_reply_free(&r);
    return rc;
}

static fp_err cr_ping(cache *c)
{
    return redis_ping(c->pool);
}

const cache_backend cache_backend_redis = {
    .name = "redis",
    .accepts = cr_accepts,
    .open = cr_open,
    .close = cr_close,
    .get = cr_get,
    .set = cr_set,
    .del = cr_del,
    .ping = cr_ping,
};

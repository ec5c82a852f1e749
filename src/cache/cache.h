/*
 * cache.h - a shared key/value cache with expiry, a pluggable backend chosen
 * by URL: "inproc" (cache_inproc.c, a bounded hash table in this process)
 * or "redis://..." (cache_redis.c, one Redis that every API instance
 * shares). Values are opaque bytes; callers store only sealed watchlists and
 * other non-secret data there, never plain usernames.
 */
#ifndef FP_CACHE_H
#define FP_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef struct cache cache;

typedef struct cache_backend {
    const char *name;
    int (*accepts)(const char *url);
    fp_err (*open)(const char *url, cache **out);
    void (*close)(cache *c);
    /* FP_NOT_FOUND when absent or expired. Caller frees *val. */
    fp_err (*get)(cache *c, const void *key, size_t klen, uint8_t **val, size_t *vlen);
    /* ttl_s <= 0: no expiry (still subject to eviction). */
    fp_err (*set)(cache *c, const void *key, size_t klen, const void *val, size_t vlen,
                  long ttl_s);
    fp_err (*del)(cache *c, const void *key, size_t klen);
    /* FP_OK when the backend answers now (inproc: always), for /readyz. */
    fp_err (*ping)(cache *c);
} cache_backend;

extern const cache_backend cache_backend_inproc;
extern const cache_backend cache_backend_redis;

/* The backend for url, or NULL. */
const cache_backend *cache_backend_for(const char *url);

#endif

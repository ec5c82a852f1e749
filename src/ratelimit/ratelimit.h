/*
 * ratelimit.h - token buckets, a pluggable backend chosen by URL:
 * "inproc" (ratelimit_inproc.c, buckets in this process's memory) or
 * "redis://..." (ratelimit_redis.c, buckets shared by every API instance;
 * it reads the Redis server's clock and ignores now_ms).
 *
 * A bucket holds up to `burst` tokens and gains `per_s` tokens a second; a
 * request takes `cost` tokens. rl_take takes from several buckets at once
 * (an address's and a browser's), all or none, so a refused request costs
 * nothing. A bucket that has refilled to full carries no state and may be
 * forgotten, which is what bounds the backend's memory.
 */
#ifndef FP_RATELIMIT_H
#define FP_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define RL_KEY_MAX 48

typedef struct ratelimit ratelimit;

typedef struct rl_ask {
    uint8_t key[RL_KEY_MAX]; /* class and who, as bytes */
    size_t klen;
    double burst;            /* > 0 */
    double per_s;            /* > 0 */
    double cost;             /* <= burst, else never granted */
} rl_ask;

typedef struct ratelimit_backend {
    const char *name;
    int (*accepts)(const char *url);
    fp_err (*open)(const char *url, ratelimit **out);
    void (*close)(ratelimit *rl);
    /* Takes asks[i].cost from every bucket when each holds that many:
     * FP_OK. Otherwise takes nothing and returns FP_RATE_LIMITED with
     * *retry_ms set to when all of them will (rounded up) and, when
     * limiting is not NULL, *limiting the index of the ask that waits
     * longest. now_ms is a monotonic clock in milliseconds. */
    fp_err (*take)(ratelimit *rl, const rl_ask *asks, size_t n, long long now_ms,
                   long long *retry_ms, size_t *limiting);
    /* FP_OK when the backend answers now (inproc: always), for /readyz. */
    fp_err (*ping)(ratelimit *rl);
} ratelimit_backend;

extern const ratelimit_backend ratelimit_backend_inproc;
extern const ratelimit_backend ratelimit_backend_redis;

/* The backend for url, or NULL. */
const ratelimit_backend *ratelimit_backend_for(const char *url);

#endif

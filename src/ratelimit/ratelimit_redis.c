/*
 * ratelimit_redis.c - token buckets on Redis, shared by every API instance,
 * with exactly ratelimit.h's contract: take from up to RLR_ASKS_MAX buckets
 * all or none, *retry_ms rounded up (-1: never, the cost exceeds the
 * burst), *limiting the ask that waits longest.
 *
 * One Lua script does the whole take atomically. The clock is the Redis
 * server's (TIME in the script), not now_ms: now_ms is the calling
 * process's monotonic clock, which means nothing to another instance, so
 * this backend ignores it. Each bucket is a hash "fp:r:" + key bytes with
 * t (tokens, a decimal) and a (the server time in ms they were counted at);
 * after a take the key expires when the bucket would be full again, so a
 * bucket that has refilled carries no state and costs no memory, and an
 * absent key is a full bucket. A budget lowered since (burst) caps the
 * level at once, as in ratelimit_inproc.c.
 */
#include <math.h>
#include <string.h>

#include "core/mem.h"
#include "ratelimit/ratelimit.h"
#include "redis/redis.h"

#define RLR_ASKS_MAX 8 /* as ratelimit_inproc.c */

struct ratelimit {
    redis_pool *pool;
};

/* KEYS: the buckets; ARGV: burst, per_s, cost for each. {1} granted, or
 * {0, retry_ms (-1: never), index of the longest wait (0-based)}. */
static const redis_script rlr_script = {
    "ratelimit take",
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local level, at = {}, {}\n"
    "local wait, lim = 0, 0\n"
    "for i = 1, #KEYS do\n"
    "  local burst, per, cost = tonumber(ARGV[3*i-2]), tonumber(ARGV[3*i-1]), tonumber(ARGV[3*i])\n"
    "  local s = redis.call('HMGET', KEYS[i], 't', 'a')\n"
    "  local lv, a = burst, now\n"
    "  if s[1] and s[2] then\n"
    "    lv, a = tonumber(s[1]), tonumber(s[2])\n"
    "    if now > a then lv = lv + (now - a) / 1000 * per end\n"
    "    if lv > burst then lv = burst end\n"
    "    if a < now then a = now end\n"
    "  end\n"
    "  level[i], at[i] = lv, a\n"
    "  local w = 0\n"
    "  if cost > burst then w = math.huge elseif lv < cost then w = (cost - lv) / per end\n"
    "  if w > wait then wait, lim = w, i - 1 end\n"
    "end\n"
    "if wait > 0 then\n"
    "  if wait == math.huge then return {0, -1, lim} end\n"
    "  return {0, math.ceil(wait * 1000 - 1e-6), lim}\n"
    "end\n"
    "for i = 1, #KEYS do\n"
    "  local burst, per, cost = tonumber(ARGV[3*i-2]), tonumber(ARGV[3*i-1]), tonumber(ARGV[3*i])\n"
    "  local lv = level[i] - cost\n"
    "  redis.call('HSET', KEYS[i], 't', string.format('%.17g', lv), 'a', at[i])\n"
    "  local full = math.ceil((burst - lv) / per * 1000) + 1\n"
    "  redis.call('PEXPIRE', KEYS[i], full)\n"
    "end\n"
    "return {1}\n",
};

static int rlr_accepts(const char *url)
{
    return redis_accepts(url);
}

static fp_err rlr_open(const char *url, ratelimit **out)
{
    *out = NULL;
    redis_pool *p = NULL;
    fp_err rc = redis_pool_open(url, &p);
    if (rc != FP_OK)
        return rc;
    ratelimit *rl = fp_calloc(1, sizeof *rl);
    rl->pool = p;
    *out = rl;
    return FP_OK;
}

static void rlr_close(ratelimit *rl)
{
    if (!rl)
        return;
    redis_pool_close(&rl->pool);
    fp_free(rl);
}

static fp_err rlr_take(ratelimit *rl, const rl_ask *asks, size_t n, long long now_ms,
                       long long *retry_ms, size_t *limiting)
{
    (void)now_ms; /* the server's clock decides: see the top of the file */
    *retry_ms = 0;
    if (limiting)
        *limiting = 0;
    if (n > RLR_ASKS_MAX)
        return FP_INVALID;
    for (size_t i = 0; i < n; i++)
        if (asks[i].klen == 0 || asks[i].klen > RL_KEY_MAX || !(asks[i].burst > 0) ||
            !(asks[i].per_s > 0) || !(asks[i].cost >= 0) || !isfinite(asks[i].burst) ||
            !isfinite(asks[i].per_s) || !isfinite(asks[i].cost))
            return FP_INVALID;
    if (n == 0)
        return FP_OK;
    redis_args a;
    redis_args_init(&a);
    for (size_t i = 0; i < n; i++)
        redis_arg_key(&a, "fp:r:", asks[i].key, asks[i].klen);
    for (size_t i = 0; i < n; i++) {
        redis_arg_dbl(&a, asks[i].burst);
        redis_arg_dbl(&a, asks[i].per_s);
        redis_arg_dbl(&a, asks[i].cost);
    }
    redisReply *r = NULL;
    fp_err rc = redis_eval(rl->pool, &rlr_script, (int)n, &a, &r);
    if (rc == FP_OK && (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
                        r->element[0]->type != REDIS_REPLY_INTEGER ||
                        (r->element[0]->integer == 0 &&
                         (r->elements != 3 || r->element[1]->type != REDIS_REPLY_INTEGER ||
                          r->element[2]->type != REDIS_REPLY_INTEGER ||
                          r->element[2]->integer < 0 || (size_t)r->element[2]->integer >= n))))
        rc = FP_INTERNAL;
    if (rc != FP_OK) {
        if (rc != FP_UNAVAILABLE)
            rc = redis_unexpected(rlr_script.name, r);
        goto out;
    }
    if (r->element[0]->integer == 0) {
        *retry_ms = r->element[1]->integer;
        if (limiting)
            *limiting = (size_t)r->element[2]->integer;
        rc = FP_RATE_LIMITED;
    }
out:
    redis_reply_free(&r);
    return rc;
}

static fp_err rlr_ping(ratelimit *rl)
{
    return redis_ping(rl->pool);
}

const ratelimit_backend ratelimit_backend_redis = {
    .name = "redis",
    .accepts = rlr_accepts,
    .open = rlr_open,
    .close = rlr_close,
    .take = rlr_take,
    .ping = rlr_ping,
};

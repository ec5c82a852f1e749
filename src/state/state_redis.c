/*
 * state_redis.c - the shared-state backend on one Redis server (>= 5.0,
 * for streams), shared by every API instance and worker of a system. The
 * contract is state.h's; the connection, pool and failure handling are
 * redis/redis.h's (server away: FP_UNAVAILABLE).
 *
 * Data layout (every key starts with "fp:s:", then the kind):
 *   fp:s:d:<name>  hash {v: version, d: value}, PEXPIRE ttl. doc_cas is
 *                  one Lua script: compare v with the expected version,
 *                  write v+1 and d, set the expiry.
 *   fp:s:l:<name>  string: the holder's token, PX ttl. Taken with
 *                  SET NX PX; renewed and dropped by scripts that compare the
 *                  token first (a lease is only ever touched by its holder).
 *   fp:s:m:<name>  sorted set: member token, score = the hold's expiry in
 *                  the server's milliseconds (TIME). Every script first drops
 *                  the expired holds (ZREMRANGEBYSCORE -inf now), so a dead
 *                  holder frees its slot by itself; take adds only while
 *                  ZCARD < limit. The key's PEXPIRE follows the last hold.
 *   fp:s:x:<name>  stream: entries with one field "v", XADD MAXLEN ~ maxlen,
 *                  PEXPIRE ttl after each append (PERSIST for ttl 0), both
 *                  in one script.
 * Every time that decides an expiry is the Redis server's (PX/PEXPIRE, and
 * TIME inside scripts), so processes with different clocks agree.
 */
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "redis/redis.h"
#include "state/state.h"
#include "state/state_internal.h"

#define SR_READ_MAX 10000

struct state {
    redis_pool *pool;
};

static const redis_script sr_cas_lua = {
    "state doc_cas",
    "local v = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')\n"
    "if v ~= tonumber(ARGV[1]) then return {0, v} end\n"
    "v = v + 1\n"
    "redis.call('HSET', KEYS[1], 'v', v, 'd', ARGV[2])\n"
    "redis.call('PEXPIRE', KEYS[1], ARGV[3])\n"
    "return {1, v}\n",
};

static const redis_script sr_lease_renew_lua = {
    "state lease_renew",
    "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
    "  redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1\n"
    "end\n"
    "return 0\n",
};

static const redis_script sr_lease_drop_lua = {
    "state lease_drop",
    "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end\n"
    "return 0\n",
};

/* The semaphore scripts share their first lines: the server's time in ms,
 * expired holds dropped. */
#define SR_SEM_NOW                                                            \
    "local t = redis.call('TIME')\n"                                          \
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n" \
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)\n"

/* KEYS[1] set; ARGV: limit, token, ttl_ms. 1 taken or renewed, 0 full. */
static const redis_script sr_sem_take_lua = {
    "state sem_take",
    SR_SEM_NOW
    "local ttl = tonumber(ARGV[3])\n"
    "if not redis.call('ZSCORE', KEYS[1], ARGV[2]) and\n"
    "   redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end\n"
    "redis.call('ZADD', KEYS[1], now + ttl, ARGV[2])\n"
    "if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end\n"
    "return 1\n",
};

/* KEYS[1] set; ARGV: token, ttl_ms. 1 renewed, 0 not held. */
static const redis_script sr_sem_renew_lua = {
    "state sem_renew",
    SR_SEM_NOW
    "local ttl = tonumber(ARGV[2])\n"
    "if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end\n"
    "redis.call('ZADD', KEYS[1], 'XX', now + ttl, ARGV[1])\n"
    "if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end\n"
    "return 1\n",
};

static const redis_script sr_sem_count_lua = {
    "state sem_count",
    SR_SEM_NOW
    "return redis.call('ZCARD', KEYS[1])\n",
};

/* KEYS[1] stream; ARGV: maxlen, id or '*', value, ttl_ms. The new id, or
 * nil when an explicit id is not above the stream's last. */
static const redis_script sr_xadd_lua = {
    "state stream_add",
    "local r = redis.pcall('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], ARGV[2], 'v', ARGV[3])\n"
    "if type(r) == 'table' and r.err then\n"
    "  if string.find(r.err, 'equal or smaller', 1, true) or\n"
    "     string.find(r.err, 'greater than 0-0', 1, true) then return false end\n"
    "  return r\n"
    "end\n"
    "if tonumber(ARGV[4]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[4])\n"
    "else redis.call('PERSIST', KEYS[1]) end\n"
    "return r\n",
};

static int sr_accepts(const char *url)
{
    return redis_accepts(url);
}

static fp_err sr_open(const char *url, state_handle **out)
{
    *out = NULL;
    redis_pool *p = NULL;
    fp_err rc = redis_pool_open(url, &p);
    if (rc != FP_OK)
        return rc;
    state_handle *st = fp_calloc(1, sizeof *st);
    st->pool = p;
    *out = st;
    return FP_OK;
}

static void sr_close(state_handle *st)
{
    if (!st)
        return;
    redis_pool_close(&st->pool);
    fp_free(st);
}

static fp_err sr_ping(state_handle *st)
{
    return redis_ping(st->pool);
}

/* The integer in r, which is an integer reply. */
static int sr_int(const redisReply *r, long long *v)
{
    if (!r || r->type != REDIS_REPLY_INTEGER)
        return 0;
    *v = r->integer;
    return 1;
}

/* Runs a script whose reply is an integer. */
static fp_err sr_eval_int(state_handle *st, const redis_script *s, const redis_args *a, long long *v)
{
    redisReply *r = NULL;
    fp_err rc = redis_eval(st->pool, s, 1, a, &r);
    if (rc == FP_OK && !sr_int(r, v))
        rc = FP_INTERNAL;
    if (rc != FP_OK && rc != FP_UNAVAILABLE)
        rc = redis_unexpected(s->name, r);
    redis_reply_free(&r);
    return rc;
}

/* ---- documents ------------------------------------------------------------ */

static fp_err sr_doc_get(state_handle *st, const char *name, uint8_t **val, size_t *len,
                         uint64_t *version)
{
    *val = NULL;
    *len = 0;
    if (version)
        *version = 0;
    if (!state__name_ok(name))
        return FP_INVALID;
    redis_args a;
    redis_args_init(&a);
    redis_arg_str(&a, "HMGET");
    redis_arg_key(&a, "fp:s:d:", name, strlen(name));
    redis_arg_str(&a, "v");
    redis_arg_str(&a, "d");
    redisReply *r = NULL;
    fp_err rc = redis_cmd(st->pool, &a, &r);
    if (rc != FP_OK)
        goto out;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
        rc = redis_unexpected("HMGET", r);
        goto out;
    }
    const redisReply *v = r->element[0], *d = r->element[1];
    if (v->type == REDIS_REPLY_NIL || d->type != REDIS_REPLY_STRING) {
        rc = FP_NOT_FOUND;
        goto out;
    }
    if (v->type != REDIS_REPLY_STRING) {
        rc = redis_unexpected("HMGET", v);
        goto out;
    }
    if (version)
        *version = strtoull(v->str, NULL, 10);
    *val = fp_malloc(d->len);
    memcpy(*val, d->str, d->len);
    *len = d->len;
out:
    redis_reply_free(&r);
    return rc;
}

static fp_err sr_doc_cas(state_handle *st, const char *name, uint64_t expect, const void *val,
                         size_t len, long ttl_ms, uint64_t *version)
{
    if (!state__name_ok(name) || ttl_ms <= 0 || len > STATE_VALUE_MAX || (len && !val))
        return FP_INVALID;
    redis_args a;
    redis_args_init(&a);
    redis_arg_key(&a, "fp:s:d:", name, strlen(name));
    redis_arg_ll(&a, (long long)expect);
    redis_arg(&a, val, len);
    redis_arg_ll(&a, ttl_ms);
    redisReply *r = NULL;
    fp_err rc = redis_eval(st->pool, &sr_cas_lua, 1, &a, &r);
    long long ok, v;
    if (rc == FP_OK && (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
                        !sr_int(r->element[0], &ok) || !sr_int(r->element[1], &v)))
        rc = FP_INTERNAL;
    if (rc != FP_OK) {
        if (rc != FP_UNAVAILABLE)
            rc = redis_unexpected(sr_cas_lua.name, r);
        goto out;
    }
    if (!ok) {
        rc = FP_CONFLICT;
        goto out;
    }
    if (version)
        *version = (uint64_t)v;
out:
    redis_reply_free(&r);
    return rc;
}

/* A command on one key whose integer reply does not matter (DEL, ZREM). */
static fp_err sr_simple(state_handle *st, const char *cmd, const char *prefix, const char *name,
                        const char *member)
{
    redis_args a;
    redis_args_init(&a);
    redis_arg_str(&a, cmd);
    redis_arg_key(&a, prefix, name, strlen(name));
    if (member)
        redis_arg_str(&a, member);
    redisReply *r = NULL;
    fp_err rc = redis_cmd(st->pool, &a, &r);
    if (rc == FP_OK && r->type != REDIS_REPLY_INTEGER)
        rc = FP_INTERNAL;
    if (rc != FP_OK && rc != FP_UNAVAILABLE)
        rc = redis_unexpected(cmd, r);
    redis_reply_free(&r);
    return rc;
}

static fp_err sr_doc_del(state_handle *st, const char *name)
{
    if (!state__name_ok(name))
        return FP_INVALID;
    return sr_simple(st, "DEL", "fp:s:d:", name, NULL);
}

/* ---- leases --------------------------------------------------------------- */

static fp_err sr_lease_renew(state_handle *st, const char *name, const char *token, long ttl_ms)
{
    if (!state__name_ok(name) || !state__token_ok(token) || ttl_ms <= 0)
        return FP_INVALID;
    redis_args a;
    redis_args_init(&a);
    redis_arg_key(&a, "fp:s:l:", name, strlen(name));
    redis_arg_str(&a, token);
    redis_arg_ll(&a, ttl_ms);
    long long v = 0;
    fp_err rc = sr_eval_int(st, &sr_lease_renew_lua, &a, &v);
    return rc == FP_OK && !v ? FP_CONFLICT : rc;
}

static fp_err sr_lease_take(state_handle *st, const char *name, const char *token, long ttl_ms)
{
    if (!state__name_ok(name) || !state__token_ok(token) || ttl_ms <= 0)
        return FP_INVALID;
    redis_args a;
    redis_args_init(&a);
    redis_arg_str(&a, "SET");
    redis_arg_key(&a, "fp:s:l:", name, strlen(name));
    redis_arg_str(&a, token);
    redis_arg_str(&a, "NX");
    redis_arg_str(&a, "PX");
    redis_arg_ll(&a, ttl_ms);
    redisReply *r = NULL;
    fp_err rc = redis_cmd(st->pool, &a, &r);
    if (rc != FP_OK) {
        if (rc != FP_UNAVAILABLE)
            rc = redis_unexpected("SET NX", r);
        goto out;
    }
    if (r->type == REDIS_REPLY_STATUS)
        goto out; /* was free */
    if (r->type != REDIS_REPLY_NIL) {
        rc = redis_unexpected("SET NX", r);
        goto out;
    }
    /* Held: by this token (then renewed), or by another (conflict). */
    rc = sr_lease_renew(st, name, token, ttl_ms);
out:
    redis_reply_free(&r);
    return rc;
}

static fp_err sr_lease_drop(state_handle *st, const char *name, const char *token)
{
    if (!state__name_ok(name) || !state__token_ok(token))
        return FP_INVALID;
    redis_args a;
    redis_args_init(&a);
    redis_arg_key(&a, "fp:s:l:", name, strlen(name));
    redis_arg_str(&a, token);
    long long v = 0;
    return sr_eval_int(st, &sr_lease_drop_lua, &a, &v);
}

/* ---- semaphores ----------------------------------------------------------- */

static fp_err sr_sem_take(state_handle *st, const char *name, long limit, const char *token,
                          long ttl_ms)
{
    if (!state__name_ok(name) || !state__token_ok(token) || ttl_ms <= 0 || limit <= 0)
        return FP_INVALID;
    redis_args a;
    redis_args_init(&a);
    redis_arg_key(&a, "fp:s:m:", name, strlen(name));
    redis_arg_ll(&a, limit);
    redis_arg_str(&a, token);
    redis_arg_ll(&a, ttl_ms);
    long long v = 0;
    fp_err rc = sr_eval_int(st, &sr_sem_take_lua, &a, &v);
    return rc == FP_OK && !v ? FP_CONFLICT : rc;
}

static fp_err sr_sem_renew(state_handle *st, const char *name, const char *token, long ttl_ms)
{
    if (!state__name_ok(name) || !state__token_ok(token) || ttl_ms <= 0)
        return FP_INVALID;
    redis_args a;
    redis_args_init(&a);
    redis_arg_key(&a, "fp:s:m:", name, strlen(name));
    redis_arg_str(&a, token);
    redis_arg_ll(&a, ttl_ms);
    long long v = 0;
    fp_err rc = sr_eval_int(st, &sr_sem_renew_lua, &a, &v);
    return rc == FP_OK && !v ? FP_CONFLICT : rc;
}

static fp_err sr_sem_drop(state_handle *st, const char *name, const char *token)
{
    if (!state__name_ok(name) || !state__token_ok(token))
        return FP_INVALID;
    return sr_simple(st, "ZREM", "fp:s:m:", name, token);
}

static fp_err sr_sem_count(state_handle *st, const char *name, long *held)
{
    *held = 0;
    if (!state__name_ok(name))
        return FP_INVALID;
    redis_args a;
    redis_args_init(&a);
    redis_arg_key(&a, "fp:s:m:", name, strlen(name));
    long long v = 0;
    fp_err rc = sr_eval_int(st, &sr_sem_count_lua, &a, &v);
    if (rc == FP_OK)
        *held = (long)v;
    return rc;
}

/* ---- streams -------------------------------------------------------------- */

/* Copies a stream id reply into out. */
static int sr_id(const redisReply *r, char out[STATE_ID_MAX])
{
    uint64_t ms, seq;
    if (!r || r->type != REDIS_REPLY_STRING || r->len >= STATE_ID_MAX)
        return 0;
    memcpy(out, r->str, r->len);
    out[r->len] = '\0';
    return state__id_parse(out, &ms, &seq);
}

static fp_err sr_stream_add(state_handle *st, const char *name, const char *id_in, const void *val,
                            size_t len, size_t maxlen, long ttl_ms, char *id_out)
{
    uint64_t ms, seq;
    if (!state__name_ok(name) || maxlen == 0 || ttl_ms < 0 || len > STATE_VALUE_MAX ||
        (len && !val) || (id_in && !state__id_parse(id_in, &ms, &seq)))
        return FP_INVALID;
    redis_args a;
    redis_args_init(&a);
    redis_arg_key(&a, "fp:s:x:", name, strlen(name));
    redis_arg_ll(&a, (long long)(maxlen > (size_t)1 << 40 ? (size_t)1 << 40 : maxlen));
    redis_arg_str(&a, id_in ? id_in : "*");
    redis_arg(&a, val, len);
    redis_arg_ll(&a, ttl_ms);
    redisReply *r = NULL;
    fp_err rc = redis_eval(st->pool, &sr_xadd_lua, 1, &a, &r);
    if (rc != FP_OK) {
        if (rc != FP_UNAVAILABLE)
            rc = redis_unexpected(sr_xadd_lua.name, r);
        goto out;
    }
    if (r->type == REDIS_REPLY_NIL) {
        rc = FP_CONFLICT;
        goto out;
    }
    char id[STATE_ID_MAX];
    if (!sr_id(r, id)) {
        rc = redis_unexpected(sr_xadd_lua.name, r);
        goto out;
    }
    if (id_out)
        memcpy(id_out, id, STATE_ID_MAX);
out:
    redis_reply_free(&r);
    return rc;
}

/* The id of the stream's newest (rev) or oldest entry, "0-0" when none. */
static fp_err sr_edge(state_handle *st, const char *name, int newest, char out[STATE_ID_MAX])
{
    memcpy(out, "0-0", 4);
    redis_args a;
    redis_args_init(&a);
    redis_arg_str(&a, newest ? "XREVRANGE" : "XRANGE");
    redis_arg_key(&a, "fp:s:x:", name, strlen(name));
    redis_arg_str(&a, newest ? "+" : "-");
    redis_arg_str(&a, newest ? "-" : "+");
    redis_arg_str(&a, "COUNT");
    redis_arg_str(&a, "1");
    redisReply *r = NULL;
    fp_err rc = redis_cmd(st->pool, &a, &r);
    if (rc != FP_OK) {
        if (rc != FP_UNAVAILABLE)
            rc = redis_unexpected("XRANGE", r);
        goto out;
    }
    if (r->type != REDIS_REPLY_ARRAY) {
        rc = redis_unexpected("XRANGE", r);
        goto out;
    }
    if (r->elements == 0)
        goto out;
    const redisReply *e = r->element[0];
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 1 || !sr_id(e->element[0], out)) {
        memcpy(out, "0-0", 4);
        rc = redis_unexpected("XRANGE", e);
    }
out:
    redis_reply_free(&r);
    return rc;
}

static fp_err sr_stream_read(state_handle *st, const char *name, const char *after, size_t max,
                             long block_ms, state_event_fn fn, void *ud, char *last)
{
    uint64_t ms, seq;
    int dollar = after && strcmp(after, "$") == 0;
    if (!state__name_ok(name) || max == 0 || !fn ||
        (!dollar && (!state__id_parse(after, &ms, &seq) || strlen(after) >= STATE_ID_MAX)))
        return FP_INVALID;
    if (block_ms > STATE_BLOCK_MAX_MS)
        block_ms = STATE_BLOCK_MAX_MS;
    if (max > SR_READ_MAX)
        max = SR_READ_MAX;
    char from[STATE_ID_MAX];
    fp_err rc = FP_OK;
    redisReply *r = NULL;
    /* "$" is read as "after the newest entry now", so that *last can say
     * which id that was and nothing added meanwhile is missed. */
    if (dollar) {
        rc = sr_edge(st, name, 1, from);
        if (rc != FP_OK)
            goto out;
    } else {
        snprintf(from, sizeof from, "%s", after);
    }
    char lastid[STATE_ID_MAX];
    memcpy(lastid, from, STATE_ID_MAX);
    redis_args a;
    redis_args_init(&a);
    redis_arg_str(&a, "XREAD");
    redis_arg_str(&a, "COUNT");
    redis_arg_ll(&a, (long long)max);
    if (block_ms > 0) {
        redis_arg_str(&a, "BLOCK");
        redis_arg_ll(&a, block_ms);
    }
    redis_arg_str(&a, "STREAMS");
    redis_arg_key(&a, "fp:s:x:", name, strlen(name));
    redis_arg_str(&a, from);
    rc = block_ms > 0 ? redis_cmd_blocking(st->pool, block_ms, &a, &r)
                      : redis_cmd(st->pool, &a, &r);
    if (rc != FP_OK) {
        if (rc != FP_UNAVAILABLE)
            rc = redis_unexpected("XREAD", r);
        goto out;
    }
    if (r->type == REDIS_REPLY_NIL)
        goto done; /* nothing came */
    /* [[key, [[id, [field, value, ...]], ...]]] */
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 1 ||
        r->element[0]->type != REDIS_REPLY_ARRAY || r->element[0]->elements != 2 ||
        r->element[0]->element[1]->type != REDIS_REPLY_ARRAY) {
        rc = redis_unexpected("XREAD", r);
        goto out;
    }
    const redisReply *entries = r->element[0]->element[1];
    for (size_t i = 0; i < entries->elements; i++) {
        const redisReply *e = entries->element[i];
        char id[STATE_ID_MAX];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || !sr_id(e->element[0], id) ||
            e->element[1]->type != REDIS_REPLY_ARRAY) {
            rc = redis_unexpected("XREAD entry", e);
            goto out;
        }
        const redisReply *fields = e->element[1];
        state_event ev = {.id = id, .val = (const uint8_t *)"", .len = 0};
        for (size_t k = 0; k + 1 < fields->elements; k += 2)
            if (fields->element[k]->type == REDIS_REPLY_STRING && fields->element[k]->len == 1 &&
                fields->element[k]->str[0] == 'v' &&
                fields->element[k + 1]->type == REDIS_REPLY_STRING) {
                ev.val = (const uint8_t *)fields->element[k + 1]->str;
                ev.len = fields->element[k + 1]->len;
            }
        memcpy(lastid, id, STATE_ID_MAX);
        if (fn(ud, &ev) != 0)
            break;
    }
done:
    if (last)
        memcpy(last, lastid, STATE_ID_MAX);
out:
    redis_reply_free(&r);
    return rc;
}

static fp_err sr_stream_first(state_handle *st, const char *name, char id_out[STATE_ID_MAX])
{
    memcpy(id_out, "0-0", 4);
    if (!state__name_ok(name))
        return FP_INVALID;
    return sr_edge(st, name, 0, id_out);
}

const state_backend state_backend_redis = {
    .name = "redis",
    .accepts = sr_accepts,
    .open = sr_open,
    .close = sr_close,
    .ping = sr_ping,
    .doc_get = sr_doc_get,
    .doc_cas = sr_doc_cas,
    .doc_del = sr_doc_del,
    .lease_take = sr_lease_take,
    .lease_renew = sr_lease_renew,
    .lease_drop = sr_lease_drop,
    .sem_take = sr_sem_take,
    .sem_renew = sr_sem_renew,
    .sem_drop = sr_sem_drop,
    .sem_count = sr_sem_count,
    .stream_add = sr_stream_add,
    .stream_read = sr_stream_read,
    .stream_first = sr_stream_first,
};

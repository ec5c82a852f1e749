/*
 * redis.h - the one Redis client module every Redis backend shares (cache,
 * rate-limit buckets, shared state): the URL, a bounded pool of hiredis
 * connections, Lua scripts, and the mapping of Redis failures to fp_err.
 *
 * URL: redis://[[user]:password@]host[:port][/db][?option=value&...]
 * (libcurl's URL parser reads it; user and password are percent-decoded).
 * Options, all in milliseconds or counts:
 *   timeout-ms=N          command timeout (default 2000)
 *   connect-timeout-ms=N  connect + AUTH + SELECT (default 1000)
 *   pool-size=N           connections for ordinary commands (default 16)
 *   blocking-max=N        connections for blocking reads at once (default 64)
 * rediss:// (TLS) is recognised and refused: this hiredis has no TLS.
 *
 * Contract:
 * - Each connection is used by one thread at a time. A caller waits for a
 *   free one at most timeout-ms, then gets FP_UNAVAILABLE.
 * - A connection that fails (I/O error, timeout, the server closed it) is
 *   discarded; the next call connects anew, so the pool recovers by itself
 *   when the server comes back. An idle connection is checked before reuse
 *   (a closed socket is readable), so the first call after a restart of the
 *   server does not fail on a stale socket.
 * - When a connect or a command fails (no answer), calls that would need a
 *   new connection fail at once with FP_UNAVAILABLE for the next
 *   REDIS_RETRY_MS instead of each waiting on a connect of its own.
 * - Blocking commands (XREAD BLOCK) run on connections counted apart from
 *   the ordinary pool (up to blocking-max), with a command timeout of
 *   block + timeout-ms, so long reads never starve ordinary commands.
 * - Server away, timeouts, OOM, LOADING, BUSY, READONLY, NOAUTH: all
 *   FP_UNAVAILABLE. Other error replies: FP_INTERNAL. The password is never
 *   logged.
 */
#ifndef FP_REDIS_H
#define FP_REDIS_H

#include <hiredis/hiredis.h>
#include <stddef.h>

#include "core/error.h"

#define REDIS_ARGS_MAX 48
#define REDIS_SCRATCH 4096   /* bytes for keys and numbers built into one command */
#define REDIS_RETRY_MS 250   /* after a failed connect, fail fast this long */

typedef struct redis_pool redis_pool;

/* One command's arguments. Values added with redis_arg point at the
 * caller's memory (which must outlive the call); the others are copied into
 * the scratch area. Too many or too long arguments make the command fail
 * with FP_INVALID when it is run. */
typedef struct redis_args {
    int n;
    int overflow;
    const char *v[REDIS_ARGS_MAX];
    size_t len[REDIS_ARGS_MAX];
    size_t used;
    char scratch[REDIS_SCRATCH];
} redis_args;

/* A Lua script. Its SHA1 is learnt from the server (SCRIPT LOAD) once per
 * pool; calls use EVALSHA and fall back to EVAL when the server answers
 * NOSCRIPT (it was restarted or flushed). Define as static const. */
typedef struct redis_script {
    const char *name; /* for logs */
    const char *src;
} redis_script;

/* 1 for redis:// and rediss:// URLs (rediss is then refused by open). */
int redis_accepts(const char *url);

/* Parses url and makes the pool. One connection is tried at once: a
 * server that refuses AUTH or SELECT is FP_INVALID (a configuration
 * error); a server that is not reachable is only logged (the pool connects
 * when it is back). FP_INVALID for a malformed URL or rediss://. The caller
 * owns *out (redis_pool_close). */
fp_err redis_pool_open(const char *url, redis_pool **out) FP_WARN_UNUSED;
void redis_pool_close(redis_pool **p);

/* FP_OK when the server answers PING now. */
fp_err redis_ping(redis_pool *p);

void redis_args_init(redis_args *a);
/* By reference: p must live until the command has run. */
void redis_arg(redis_args *a, const void *p, size_t len);
/* Copied: a string, prefix + bytes (a key), an integer, a double (%.17g). */
void redis_arg_str(redis_args *a, const char *s);
void redis_arg_key(redis_args *a, const char *prefix, const void *p, size_t len);
void redis_arg_ll(redis_args *a, long long v);
void redis_arg_dbl(redis_args *a, double v);

/* Runs one command. FP_OK with *out the reply when the server answered
 * with anything but an error. An error reply: *out is the reply too (so a
 * caller may read its message) and the return is redis_reply_err(*out).
 * No answer (server away, timeout, pool exhausted): FP_UNAVAILABLE and *out
 * NULL. The caller frees *out (redis_reply_free) in every case. */
fp_err redis_cmd(redis_pool *p, const redis_args *a, redisReply **out) FP_WARN_UNUSED;
/* The same for a command that blocks on the server up to block_ms (> 0). */
fp_err redis_cmd_blocking(redis_pool *p, long block_ms, const redis_args *a,
                          redisReply **out) FP_WARN_UNUSED;
/* EVALSHA (EVAL on NOSCRIPT) of s with a's first nkeys arguments as KEYS
 * and the rest as ARGV; replies as redis_cmd. */
fp_err redis_eval(redis_pool *p, const redis_script *s, int nkeys, const redis_args *a,
                  redisReply **out) FP_WARN_UNUSED;

/* The fp_err an error reply stands for (FP_OK for any other reply). */
fp_err redis_reply_err(const redisReply *r);
/* Logs an unexpected reply (its type, and its message when an error) under
 * event "redis_unexpected_reply" and returns FP_INTERNAL, or the code of
 * the error reply when that is FP_UNAVAILABLE. */
fp_err redis_unexpected(const char *what, const redisReply *r);
void redis_reply_free(redisReply **r);

#endif

/*
 * state.h - state shared by every process of one FilmPicker system, a
 * pluggable backend chosen by URL: "inproc" (state_inproc.c: this process's
 * memory, the embedded default) or "redis://..." (state_redis.c: one Redis
 * server shared by every API instance and worker).
 *
 * Four primitives, each what the code above needs to run as several
 * processes without knowing whether it does:
 *
 *   documents    a value with a version, replaced only by compare-and-set
 *                (session state, job documents, fetch task progress);
 *   leases       a named lock with an owner token and an expiry, renewed
 *                while its work runs and lost when its holder dies (one fetch
 *                per person across all workers);
 *   semaphores   at most `limit` holders of a name at once, each hold
 *                expiring like a lease (the per-host politeness limit across
 *                all workers together);
 *   streams      append-only event logs with ids, read after an id (session
 *                events replayed for Last-Event-ID by any instance; the bus
 *                that tells every instance of fetch progress, finished fetches
 *                and changed lists).
 *
 * Values are opaque bytes. Callers seal anything personal (usernames, lists)
 * with the vault before it reaches a backend: Redis holds no plain username.
 * Names are short printable ASCII chosen by the callers ("sess:<id>",
 * "lease:fetch:<hex>", ...); a backend may prefix them.
 *
 * Every function may fail with FP_UNAVAILABLE when the backend's server is
 * away; the callers decide what still works without it (docs/architecture.md,
 * "When Redis is away"). All functions are thread-safe. A name that is not
 * 1..STATE_NAME_MAX printable ASCII bytes, a token that is not
 * 1..STATE_TOKEN_MAX printable bytes without spaces, a ttl_ms or limit
 * <= 0 where one is required, a value over STATE_VALUE_MAX, max == 0 or a
 * malformed stream id: FP_INVALID, touching nothing.
 *
 * Expiry is measured by the backend's own clock (this process's monotonic
 * clock; the Redis server's), never by the callers', so several processes
 * agree on it.
 */
#ifndef FP_STATE_H
#define FP_STATE_H
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define STATE_NAME_MAX 160 /* bytes of a name, without the NUL */
#define STATE_ID_MAX 48    /* a stream id "ms-seq" with its NUL */
#define STATE_TOKEN_MAX 64 /* bytes of a lease/semaphore token, without the NUL */
#define STATE_VALUE_MAX (64u << 20) /* bytes of a document or event value */
#define STATE_BLOCK_MAX_MS 3600000L /* the longest a stream_read waits */

typedef struct state state_handle;

/* One event read from a stream; the pointers live until the callback returns. */
typedef struct state_event {
    const char *id; /* "ms-seq", increasing within a stream */
    const uint8_t *val;
    size_t len;
} state_event;

/* Return 0 to go on, non-zero to stop reading. */
typedef int (*state_event_fn)(void *ud, const state_event *ev);

typedef struct state_backend {
    const char *name;
    int (*accepts)(const char *url);
    fp_err (*open)(const char *url, state_handle **out);
    void (*close)(state_handle *st);
    /* FP_OK when the server answers now. */
    fp_err (*ping)(state_handle *st);

    /* ---- documents ------------------------------------------------------
     * A document's version is 1 after its first write and grows by one with
     * every write; 0 means absent. A document that expired or was deleted is
     * absent: its next write is version 1 again, so a caller must not hold
     * a version across the document's ttl (ABA). */

    /* FP_NOT_FOUND when absent or expired. Caller frees *val. */
    fp_err (*doc_get)(state_handle *st, const char *name, uint8_t **val, size_t *len,
                      uint64_t *version);
    /* Writes val when the stored version is `expect` (0: only if absent),
     * setting the expiry to ttl_ms from now (> 0) and *version (may be NULL)
     * to the new version. FP_CONFLICT, writing nothing, when the version
     * differs. */
    fp_err (*doc_cas)(state_handle *st, const char *name, uint64_t expect, const void *val, size_t len,
                      long ttl_ms, uint64_t *version);
    /* Deletes it whatever its version; FP_OK also when absent. */
    fp_err (*doc_del)(state_handle *st, const char *name);

    /* ---- leases ---------------------------------------------------------
     * token identifies the holder (random, STATE_TOKEN_MAX at most). */

    /* FP_OK when the lease was free, expired, or already held with this
     * token (then its expiry is renewed); FP_CONFLICT when another token
     * holds it. ttl_ms > 0. */
    fp_err (*lease_take)(state_handle *st, const char *name, const char *token, long ttl_ms);
    /* Extends a lease this token holds: FP_CONFLICT when it was lost. */
    fp_err (*lease_renew)(state_handle *st, const char *name, const char *token, long ttl_ms);
    /* Releases it if this token holds it (FP_OK either way). */
    fp_err (*lease_drop)(state_handle *st, const char *name, const char *token);

    /* ---- counting semaphores -------------------------------------------- */

    /* Takes one of `limit` slots of name for token, expiring after ttl_ms
     * unless renewed: FP_OK, or FP_CONFLICT when all slots are held (expired
     * holds do not count). Never waits. A token already holding a slot gets
     * it renewed. */
    fp_err (*sem_take)(state_handle *st, const char *name, long limit, const char *token, long ttl_ms);
    /* Extends every slot of name held by token: FP_CONFLICT when none is. */
    fp_err (*sem_renew)(state_handle *st, const char *name, const char *token, long ttl_ms);
    /* Gives the slot back (FP_OK also when not held). */
    fp_err (*sem_drop)(state_handle *st, const char *name, const char *token);
    /* Slots held now (expired ones not counted). */
    fp_err (*sem_count)(state_handle *st, const char *name, long *held);

    /* ---- streams --------------------------------------------------------
     * Each stream keeps about `maxlen` (>= 1) newest events: at least the
     * newest maxlen, older ones trimmed (inproc: exactly; Redis: MAXLEN ~,
     * whole nodes of up to 100 events at a time). A stream expires ttl_ms
     * after its last append (0: never). Automatic ids are "<wall-clock
     * ms>-<seq>", increasing even when the clock steps back. */

    /* Appends an event. id_in: an explicit id "ms-seq" greater than the
     * stream's last (FP_CONFLICT otherwise), or NULL for the next
     * automatic one. id_out (may be NULL, STATE_ID_MAX bytes) gets the id. */
    fp_err (*stream_add)(state_handle *st, const char *name, const char *id_in, const void *val,
                         size_t len, size_t maxlen, long ttl_ms, char *id_out);
    /* Calls fn for up to max events with an id greater than `after`
     * ("0-0": from the oldest kept; "$": only events added from now on),
     * oldest first, after any lock is released (fn may call the backend).
     * With block_ms > 0 and no such event yet, waits up to block_ms (at
     * most STATE_BLOCK_MAX_MS) for one. *last (may be NULL, STATE_ID_MAX
     * bytes) gets the id of the last event passed to fn, or `after` when
     * none was (for "$": the stream's last id at the time of the call).
     * FP_OK when nothing came. */
    fp_err (*stream_read)(state_handle *st, const char *name, const char *after, size_t max,
                          long block_ms, state_event_fn fn, void *ud, char *last);
    /* The id of the oldest event still kept ("0-0" when empty or absent),
     * so a reader can tell whether a replay after `after` is complete. */
    fp_err (*stream_first)(state_handle *st, const char *name, char id_out[STATE_ID_MAX]);
} state_backend;

extern const state_backend state_backend_inproc;
extern const state_backend state_backend_redis;

/* The backend for url, or NULL. */
const state_backend *state_backend_for(const char *url);

/* Compares two stream ids "ms-seq" numerically: <0, 0, >0. */
int state_id_cmp(const char *a, const char *b);

#endif

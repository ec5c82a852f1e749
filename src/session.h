/*
 * session.h - group sessions: the web app's shared state for one evening's
 * search (participants, progress, results, vetoes, the rolled film), and the
 * live event streams every device of a session follows.
 *
 * A session's state is a JSON document kept behind the cache interface
 * ("sess:<id>", expiring after session-ttl without a change), so a shared
 * cache (Redis) can hold it later; it never reaches the database. Fields
 * whose name starts with "_" (the job id, canonical usernames, import ids,
 * the creating client) are internal and never sent to clients. Every change
 * bumps "version" and publishes events (named as in docs/sessions.md) to the
 * session's streams; a stream that reconnects with Last-Event-ID gets the
 * events it missed from a bounded in-memory log, or a fresh "session" event.
 *
 * All functions that answer a session give the client view (internal fields
 * removed) in *out, which the caller owns (json_decref).
 */
#ifndef FP_SESSION_H
#define FP_SESSION_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "core/error.h"
#include "app/service.h"

typedef struct sessions sessions;

fp_err sessions_open(const fp_config *cfg, service *svc, sessions **out) FP_WARN_UNUSED;
/* Live sessions and the memory they hold (documents and replay rings). */
void sessions_stats(sessions *ss, size_t *live, size_t *bytes);
/* Ends every event stream (their readers see the end). */
void sessions_close_streams(sessions *ss);
/* Frees; call after svc_close(), which may still report job progress. */
void sessions_free(sessions **ss);

/* FP_RATE_LIMITED when the client already has max-sessions-per-client live. */
/* 1 when the address (its limit key, 16 bytes) created
 * max-sessions-per-address sessions that are still live. */
int sess_address_full(sessions *ss, const uint8_t addr[16]);
/* addr: the creating client's address (its limit key), counted for
 * sess_address_full; NULL: not counted.
 * FP_RATE_LIMITED when the browser has max-sessions-per-client open,
 * FP_UNAVAILABLE when the server holds max-sessions (or sessions-max-mb);
 * *retry_s says when to try again. */
fp_err sess_create(sessions *ss, const char *client_id, const uint8_t addr[16], json_t **out,
                   long *retry_s) FP_WARN_UNUSED;
fp_err sess_get(sessions *ss, const char *id, json_t **out) FP_WARN_UNUSED;
/* Adds a participant and starts reading their list at once (progress, then
 * "ready" with the film count or "failed" with the reason, as participant
 * events while the group is still gathering). name: an upload's display
 * name (checked by sess_name_check), NULL for "Upload N". FP_CONFLICT while
 * searching; FP_DUPLICATE for someone already in the group; FP_TOO_MANY past
 * max-participants. */
fp_err sess_add(sessions *ss, const char *id, const svc_person *p, const char *name,
                json_t **out) FP_WARN_UNUSED;
/* Trims an upload's display name into *out (caller frees; NULL stays NULL):
 * FP_BAD_NAME unless 1..40 characters without control characters. */
fp_err sess_name_check(const char *in, char **out) FP_WARN_UNUSED;
fp_err sess_remove(sessions *ss, const char *id, const char *pid, json_t **out) FP_WARN_UNUSED;
/* FP_CONFLICT when there is nobody to search for or a search is running. */
/* How many lists a search started now would fetch from a watchlist site
 * (svc_fetch_cost over the participants). FP_NOT_FOUND for no session. */
fp_err sess_search_cost(sessions *ss, const char *id, int refresh, size_t *cost) FP_WARN_UNUSED;
fp_err sess_search(sessions *ss, const char *id, int refresh, json_t **out) FP_WARN_UNUSED;
/* FP_CONFLICT before results; FP_NOT_FOUND for a film not in the results. */
fp_err sess_veto(sessions *ss, const char *id, int64_t film_id, int vetoed,
                 json_t **out) FP_WARN_UNUSED;
/* Rolls uniformly among every common film not struck out (or, when none is
 * left, the films on most lists). FP_CONFLICT before results or when every
 * film is struck out. */
fp_err sess_roll(sessions *ss, const char *id, json_t **out) FP_WARN_UNUSED;
/* "We will watch it!": off every ready participant's stored list and into
 * their watched sets; out of the results. FP_NOT_FOUND for a film not in them. */
fp_err sess_watched(sessions *ss, const char *id, int64_t film_id, json_t **out) FP_WARN_UNUSED;
/* "Put it back": out of every participant's watched set, back onto their
 * stored lists and, when these results lost it, back into them.
 * FP_NOT_FOUND when nobody here had it marked; FP_CONFLICT while searching. */
fp_err sess_unwatched(sessions *ss, const char *id, int64_t film_id, json_t **out) FP_WARN_UNUSED;
/* A page of the common films in display order, or of those matching q (a
 * title substring, case and accents ignored; a 4-digit q also matches the
 * year): {"total", "offset", "films": [Film...]}. limit 1..500 (FP_INVALID
 * otherwise); FP_CONFLICT before results. */
fp_err sess_films(sessions *ss, const char *id, size_t offset, size_t limit, const char *q,
                  json_t **out) FP_WARN_UNUSED;

/* ---- event streams ---------------------------------------------------- */

typedef struct sess_stream sess_stream;
typedef void (*sess_wake_fn)(void *ud);

/* Opens a stream on a session: it starts with the events after
 * last_event_id (-1: none) when still known, else a "session" event. */
fp_err sess_stream_open(sessions *ss, const char *id, long long last_event_id, sess_wake_fn wake,
                        void *ud, sess_stream **out) FP_WARN_UNUSED;
/* Copies up to max pending bytes; 0 when none are pending, -1 at the end. */
long sess_stream_read(sess_stream *st, char *buf, size_t max);
/* After a read of 0 (and after suspending the connection): calls wake once
 * data or the end arrives - at once if it already has. */
void sess_stream_arm(sess_stream *st);
void sess_stream_close(sess_stream *st);

#endif

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
#include "service.h"

typedef struct sessions sessions;

fp_err sessions_open(const fp_config *cfg, service *svc, sessions **out) FP_WARN_UNUSED;
/* Ends every event stream (their readers see the end). */
void sessions_close_streams(sessions *ss);
/* Frees; call after svc_close(), which may still report job progress. */
void sessions_free(sessions **ss);

/* FP_RATE_LIMITED when the client already has max-sessions-per-client live. */
fp_err sess_create(sessions *ss, const char *client_id, json_t **out) FP_WARN_UNUSED;
fp_err sess_get(sessions *ss, const char *id, json_t **out) FP_WARN_UNUSED;
/* FP_CONFLICT while searching; FP_TOO_MANY past max-participants. */
fp_err sess_add(sessions *ss, const char *id, const svc_person *p, json_t **out) FP_WARN_UNUSED;
fp_err sess_remove(sessions *ss, const char *id, const char *pid, json_t **out) FP_WARN_UNUSED;
/* FP_CONFLICT when there is nobody to search for or a search is running. */
fp_err sess_search(sessions *ss, const char *id, int refresh, json_t **out) FP_WARN_UNUSED;
/* FP_CONFLICT before results; FP_NOT_FOUND for a film not in the results. */
fp_err sess_veto(sessions *ss, const char *id, int64_t film_id, int vetoed,
                 json_t **out) FP_WARN_UNUSED;
/* FP_CONFLICT before results or when every film is struck out. */
fp_err sess_roll(sessions *ss, const char *id, json_t **out) FP_WARN_UNUSED;
fp_err sess_watched(sessions *ss, const char *id, int64_t film_id, json_t **out) FP_WARN_UNUSED;

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

/*
 * session.c - group session state (a JSON document behind the cache
 * interface) and its event streams.
 *
 * Every change is a read-modify-write of the document: load, edit, bump
 * version once per event, store with the idle TTL, publish the events. In
 * one process ss->mu serialises it (taken before hub_mu and jobs_mu, never
 * the other way round); with shared state the store's compare-and-set
 * does, and no lock is held across a call to Redis. The service's job
 * listener feeds fetch progress in through the same path.
 *
 * Streams: each holds its unread bytes; a reader that finds none arms the
 * stream after suspending its connection, and the next publish (or the
 * keep-alive tick, or shutdown) wakes it exactly once.
 */
#include "session.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache/cache.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/mem.h"
#include "film.h"
#include "pick.h"
#include "state/state.h"
#include "vault.h"
#include "views.h"

#define SESS_RING 256                     /* events kept per session for replays */
#define SESS_RING_BYTES (256u * 1024u)    /* ...and at most this many bytes of them */
#define SESS_HUB_BUCKETS 4096
#define SESS_EMPTY_TTL_S 600              /* a session nobody was added to lives this long */
#define SESS_ADDR_BUCKETS 1024
#define SESS_STREAM_MAX (512u * 1024u)    /* unread bytes before a slow stream is cut */
#define SESS_STREAMS_MAX_BYTES (64u * 1024u * 1024u) /* ...and of all streams together */
#define SESS_KEEPALIVE_S 15
/* Sent before a stream ends of old age (stream-max-life): the app knows the
 * reconnection that follows is planned, and retries after 100 ms. */
#define SESS_RECONNECT "retry: 100\nevent: reconnect\ndata: {}\n\n"
#define SESS_MAX_JOBS 4096
#define SESS_PAGE 100                     /* common films sent with the results */
#define SESS_PAGE_MAX 500                 /* films one GET .../films may ask for */
#define SESS_MOST_MAX 50
#define SESS_RECENT_S (14L * 24 * 3600)   /* "watched recently": shown two weeks */
#define SESS_RECENT_MAX 5
#define SESS_NAME_MAX 40                  /* characters of an upload's display name */

typedef struct sess_event {
    long long id;
    char *text;
    size_t len;
} sess_event;

/* One per live session (created with it): its replay ring, its streams,
 * and what it costs in memory (its document plus its ring), which the
 * sessions-max-mb cap counts. */
typedef struct sess_hub {
    struct sess_hub *next; /* bucket chain */
    char id[33];
    sess_event ring[SESS_RING];
    size_t ring_n;    /* events held */
    size_t ring_head; /* index of the oldest */
    size_t ring_bytes;
    long long last_id; /* the newest event in its ring (the ring stays in order) */
    size_t doc_bytes; /* the stored document's size */
    sess_stream *streams;
    long nstreams;
    time_t touched;
    long ttl_s;                 /* of its last save: session-ttl, or less while empty */
    struct sess_addr *creator;  /* the address that created it (counted), or NULL */
} sess_hub;

/* Live sessions per creating address (max-sessions-per-address). */
typedef struct sess_addr {
    struct sess_addr *next;
    uint8_t key[16];
    long live;
} sess_addr;

struct sess_stream {
    sess_stream *next;
    sessions *ss;
    sess_hub *hub;
    fp_buf out;
    size_t off;
    time_t opened;
    size_t held; /* unread bytes counted in ss->stream_bytes */
    int closed;
    int armed;
    long long last_id; /* the newest event it was given (a snapshot's version counts) */
    sess_wake_fn wake;
    void *ud;
};

typedef struct sess_jobmap {
    char job[33];
    char sess[33];
} sess_jobmap;

struct sessions {
    const fp_config *cfg;
    service *svc;
    const cache_backend *cb;
    cache *ca;
    /* Shared with other instances (a Redis state): documents by
     * compare-and-set in the state, each event also a sealed document
     * "sess:<id>:e:<n>" any instance replays, and a "sess" bus event that
     * wakes the other instances' streams. NULL in the embedded default. */
    const state_backend *stb;
    state_handle *sts;
    const char *instance;
    pthread_mutex_t mu;     /* one process: session documents (read-modify-write);
                               shared state: only the per-client session counts */
    pthread_mutex_t jobs_mu; /* jobs[] */
    pthread_mutex_t hub_mu; /* hubs and streams, and the two counts below */
    sess_hub *hubs[SESS_HUB_BUCKETS];
    size_t nhubs;           /* live sessions */
    size_t bytes;           /* their documents and rings */
    size_t stream_bytes;    /* unread bytes of every stream */
    sess_addr *addrs[SESS_ADDR_BUCKETS]; /* under hub_mu */
    sess_jobmap jobs[SESS_MAX_JOBS];
    size_t njobs;
    pthread_t ticker;
    pthread_cond_t tick_cv;
    int ticker_started;
    int stopping;
};

/* Serialises document changes in one process; with shared state the
 * compare-and-set does that and nothing is held across Redis calls. */
static void sess__lock(sessions *ss)
{
    if (!ss->stb)
        pthread_mutex_lock(&ss->mu);
}

static void sess__unlock(sessions *ss)
{
    if (!ss->stb)
        pthread_mutex_unlock(&ss->mu);
}

static int sess__valid_id(const char *id)
{
    return id && strlen(id) == 32 && strspn(id, "0123456789abcdef") == 32;
}

static sess_hub *sess__hub(sessions *ss, const char *id, int create);

/* How long a session lives after this change: session-ttl, or
 * SESS_EMPTY_TTL_S while nobody has been added (an empty session is what
 * a flood of creations leaves behind). */
static long sess__ttl(sessions *ss, json_t *state)
{
    long ttl = ss->cfg->session_ttl_s;
    if (json_array_size(json_object_get(state, "participants")) == 0 && ttl > SESS_EMPTY_TTL_S)
        ttl = SESS_EMPTY_TTL_S;
    return ttl;
}

/* ---- the document ------------------------------------------------------ */

static void sess__key(const char *id, char out[40])
{
    snprintf(out, 40, "sess:%s", id);
}

/* Reads a stored value: from the cache in one process, sealed from the
 * shared state otherwise (with its document version in *dv, may be NULL). */
static fp_err sess__get_raw(sessions *ss, const char *key, uint8_t **val, size_t *len,
                            uint64_t *dv)
{
    if (dv)
        *dv = 0;
    if (!ss->stb)
        return ss->cb->get(ss->ca, key, strlen(key), val, len);
    uint8_t *blob = NULL;
    size_t blen = 0;
    uint64_t ver = 0;
    fp_err rc = ss->stb->doc_get(ss->sts, key, &blob, &blen, &ver);
    if (rc != FP_OK)
        return rc;
    rc = svc_unseal(ss->svc, key, blob, blen, val, len);
    fp_free(blob);
    if (dv)
        *dv = ver;
    return rc;
}

/* Writes a value (expect: the document version read, 0 for a new one;
 * ignored in one process): FP_CONFLICT when another instance wrote first. */
static fp_err sess__put_raw(sessions *ss, const char *key, const char *val, size_t len,
                            long ttl_s, uint64_t expect)
{
    if (!ss->stb)
        return ss->cb->set(ss->ca, key, strlen(key), val, len, ttl_s);
    uint8_t *blob = NULL;
    size_t blen = 0;
    fp_err rc = svc_seal(ss->svc, key, val, len, &blob, &blen);
    if (rc == FP_OK)
        rc = ss->stb->doc_cas(ss->sts, key, expect, blob, blen, ttl_s * 1000L, NULL);
    fp_free(blob);
    return rc;
}

static fp_err sess__load_v(sessions *ss, const char *id, json_t **state, uint64_t *dv)
{
    *state = NULL;
    if (dv)
        *dv = 0;
    if (!sess__valid_id(id))
        return FP_NOT_FOUND;
    char key[40];
    sess__key(id, key);
    uint8_t *val = NULL;
    size_t len = 0;
    fp_err rc = sess__get_raw(ss, key, &val, &len, dv);
    if (rc != FP_OK)
        return rc;
    json_error_t err;
    *state = json_loadb((const char *)val, len, 0, &err);
    fp_free(val);
    return *state ? FP_OK : FP_CORRUPT;
}

static fp_err sess__load(sessions *ss, const char *id, json_t **state)
{
    return sess__load_v(ss, id, state, NULL);
}

/* Stores the document. A change that would take all sessions past
 * sessions-max-mb is refused (FP_UNAVAILABLE) and the stored document
 * stays as it was: a live session is never dropped to make room. The
 * session's hub (its registry entry) is created with its first save. */
static fp_err sess__save(sessions *ss, json_t *state, uint64_t expect)
{
    const char *id = json_string_value(json_object_get(state, "id"));
    time_t now = time(NULL);
    json_object_set_new(state, "expires_at", view_time((int64_t)now + sess__ttl(ss, state)));
    char *text = json_dumps(state, JSON_COMPACT);
    if (!text)
        return FP_NOMEM;
    size_t len = strlen(text);
    size_t cap = (size_t)ss->cfg->sessions_max_mb * 1024u * 1024u;
    long ttl = sess__ttl(ss, state);
    pthread_mutex_lock(&ss->hub_mu);
    sess_hub *h = sess__hub(ss, id, 0);
    size_t before = h ? h->doc_bytes : 0;
    if (len > before && ss->bytes - before + len > cap) {
        pthread_mutex_unlock(&ss->hub_mu);
        free(text);
        fp_log(FP_LOG_WARN, "sessions_memory_full", "{s:I}", "bytes", (json_int_t)ss->bytes);
        return FP_UNAVAILABLE;
    }
    pthread_mutex_unlock(&ss->hub_mu);
    char key[40];
    sess__key(id, key);
    fp_err rc = sess__put_raw(ss, key, text, len, ttl, expect);
    free(text);
    if (rc == FP_OK) {
        pthread_mutex_lock(&ss->hub_mu);
        h = sess__hub(ss, id, 1);
        ss->bytes = ss->bytes - h->doc_bytes + len;
        h->doc_bytes = len;
        h->touched = now;
        h->ttl_s = ttl;
        pthread_mutex_unlock(&ss->hub_mu);
    }
    return rc;
}

/* The films of an id array (or of [[id, lists], ...] with the "lists"
 * count), as the API shows them, from the catalogue (the service keeps the
 * films it serves in memory). A film the catalogue no longer has is left
 * out. */
static json_t *sess__films_of(sessions *ss, json_t *ids, int with_lists)
{
    json_t *out = json_array();
    size_t n = json_array_size(ids);
    if (n == 0)
        return out;
    int64_t *want = fp_calloc(n, sizeof *want);
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(ids, i);
        want[i] = json_integer_value(with_lists ? json_array_get(e, 0) : e);
    }
    film *fs = fp_calloc(n, sizeof *fs);
    if (svc_films_get(ss->svc, want, n, fs) == FP_OK)
        for (size_t i = 0; i < n; i++) {
            if (fs[i].id == 0)
                continue;
            json_t *f = view_film(&fs[i]);
            if (with_lists)
                json_object_set(f, "lists", json_array_get(json_array_get(ids, i), 1));
            json_array_append_new(out, f);
        }
    for (size_t i = 0; i < n; i++)
        film_clear(&fs[i]);
    fp_free(fs);
    fp_free(want);
    return out;
}

/* The results as the API shows them: the document keeps ids only (the
 * first page "_page", the most-lists films "_mostv" as [id, lists]), and
 * the films are filled in here. */
static json_t *sess__results_view(sessions *ss, json_t *state)
{
    json_t *res = json_object_get(state, "results");
    if (!json_is_object(res))
        return json_null();
    json_t *v = json_deep_copy(res);
    json_object_set_new(v, "common", sess__films_of(ss, json_object_get(state, "_page"), 0));
    json_object_set_new(v, "most", sess__films_of(ss, json_object_get(state, "_mostv"), 1));
    return v;
}

/* A copy of the document, for reading only. */
static fp_err sess__load_alone(sessions *ss, const char *id, json_t **state)
{
    sess__lock(ss);
    fp_err rc = sess__load(ss, id, state);
    sess__unlock(ss);
    return rc;
}

/* The client view: every key starting with '_' removed, at the top level
 * and in participants; the results' films filled in. Do not call it with
 * hub_mu held (it may read the catalogue). */
static json_t *sess__view(sessions *ss, json_t *state)
{
    json_t *v = json_deep_copy(state);
    const char *k;
    json_t *val;
    void *tmp;
    json_object_foreach_safe(v, tmp, k, val) if (k[0] == '_') json_object_del(v, k);
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(v, "participants"), i, p)
    {
        json_object_foreach_safe(p, tmp, k, val) if (k[0] == '_') json_object_del(p, k);
    }
    if (json_is_object(json_object_get(state, "results")))
        json_object_set_new(v, "results", sess__results_view(ss, state));
    return v;
}

static json_t *sess__part_view(json_t *p)
{
    json_t *v = json_deep_copy(p);
    const char *k;
    json_t *val;
    void *tmp;
    json_object_foreach_safe(v, tmp, k, val) if (k[0] == '_') json_object_del(v, k);
    return v;
}

/* ---- hubs and streams -------------------------------------------------- */

/* The address entry for key (created when create). hub_mu held. */
static sess_addr *sess__addr(sessions *ss, const uint8_t key[16], int create)
{
    uint32_t h = 2166136261u;
    for (int i = 0; i < 16; i++)
        h = (h ^ key[i]) * 16777619u;
    sess_addr **pp = &ss->addrs[h % SESS_ADDR_BUCKETS];
    for (sess_addr *a = *pp; a; a = a->next)
        if (memcmp(a->key, key, 16) == 0)
            return a;
    if (!create)
        return NULL;
    sess_addr *a = fp_calloc(1, sizeof *a);
    memcpy(a->key, key, 16);
    a->next = *pp;
    *pp = a;
    return a;
}

/* One session of a's fewer; the entry goes with its last. hub_mu held. */
static void sess__addr_release(sessions *ss, sess_addr *a)
{
    if (!a || --a->live > 0)
        return;
    for (size_t b = 0; b < SESS_ADDR_BUCKETS; b++)
        for (sess_addr **pp = &ss->addrs[b]; *pp; pp = &(*pp)->next)
            if (*pp == a) {
                *pp = a->next;
                fp_free(a);
                return;
            }
}

/* Session ids are 128 random bits in hex: the first 8 digits place them. */
static size_t sess__hub_bucket(const char *id)
{
    unsigned long v = strtoul((char[9]){id[0], id[1], id[2], id[3], id[4], id[5], id[6], id[7], 0},
                              NULL, 16);
    return (size_t)(v % SESS_HUB_BUCKETS);
}

/* hub_mu held. */
static sess_hub *sess__hub(sessions *ss, const char *id, int create)
{
    size_t b = sess__hub_bucket(id);
    for (sess_hub *h = ss->hubs[b]; h; h = h->next)
        if (strcmp(h->id, id) == 0)
            return h;
    if (!create)
        return NULL;
    sess_hub *h = fp_calloc(1, sizeof *h);
    snprintf(h->id, sizeof h->id, "%s", id);
    h->touched = time(NULL);
    h->next = ss->hubs[b];
    ss->hubs[b] = h;
    ss->nhubs++;
    return h;
}

static char *sess__sse(long long id, const char *name, json_t *data, size_t *len)
{
    char *text = json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY);
    char *ev = fp_printf("id: %lld\nevent: %s\ndata: %s\n\n", id, name, text ? text : "null");
    free(text);
    *len = strlen(ev);
    return ev;
}

/* Appends bytes to a stream and wakes it if armed. hub_mu held. */
static void sess__stream_push(sess_stream *st, const char *text, size_t len)
{
    if (st->closed)
        return;
    sessions *ss = st->ss;
    if (ss->stream_bytes + len > SESS_STREAMS_MAX_BYTES ||
        fp_buf_append(&st->out, text, len) != FP_OK) {
        /* The client stopped reading (or all readers together hold too much
         * unread): end its stream; it reconnects with Last-Event-ID. */
        st->closed = 1;
        fp_log(FP_LOG_WARN, "session_stream_overflow", "{s:s}", "session", st->hub->id);
    } else {
        st->held += len;
        ss->stream_bytes += len;
    }
    if (st->armed) {
        st->armed = 0;
        st->wake(st->ud);
    }
}

/* Records an event (its SSE text, taken) in the hub's log and sends it to
 * its streams, unless they were sent a newer one (with several instances,
 * a snapshot may have overtaken it). hub_mu held. */
static void sess__hub_publish_text(sess_hub *h, size_t *bytes, size_t cap, long long id,
                                   char *text, size_t len)
{
    /* Each stream gets what is newer than what it has (with several
     * instances a snapshot may have overtaken an event); the ring keeps
     * events in order for replays. */
    for (sess_stream *st = h->streams; st; st = st->next)
        if (id > st->last_id) {
            st->last_id = id;
            sess__stream_push(st, text, len);
        }
    if (id <= h->last_id) {
        fp_free(text);
        return;
    }
    h->last_id = id;
    /* Oldest out first, by count and by bytes; a replay that reaches past
     * the ring gets a full "session" snapshot instead. */
    while (h->ring_n > 0 && (h->ring_n == SESS_RING || h->ring_bytes + len > SESS_RING_BYTES)) {
        sess_event *old = &h->ring[h->ring_head];
        h->ring_bytes -= old->len;
        *bytes -= old->len;
        fp_free(old->text);
        h->ring_head = (h->ring_head + 1) % SESS_RING;
        h->ring_n--;
    }
    sess_event *e = &h->ring[(h->ring_head + h->ring_n) % SESS_RING];
    e->id = id;
    e->text = text;
    e->len = len;
    h->ring_n++;
    h->ring_bytes += len;
    *bytes += len;
    /* Over sessions-max-mb, replay rings give way first (a client that
     * reconnects then gets a "session" snapshot instead of a replay):
     * this hub's ring is emptied, the event still goes to its streams. */
    while (*bytes > cap && h->ring_n > 0) {
        sess_event *old = &h->ring[h->ring_head];
        h->ring_bytes -= old->len;
        *bytes -= old->len;
        if (old->text != text)
            fp_free(old->text);
        old->text = NULL;
        h->ring_head = (h->ring_head + 1) % SESS_RING;
        h->ring_n--;
    }
    h->touched = time(NULL);
    if (h->ring_n == 0 || h->ring[(h->ring_head + h->ring_n - 1) % SESS_RING].text != text)
        fp_free(text); /* not kept in the ring */
}

static void sess__hub_publish(sess_hub *h, size_t *bytes, size_t cap, long long id,
                              const char *name, json_t *data)
{
    size_t len = 0;
    char *text = sess__sse(id, name, data, &len);
    sess__hub_publish_text(h, bytes, cap, id, text, len);
}

/* ---- events shared between instances ------------------------------------ */

static void sess__event_key(const char *id, long long n, char out[STATE_NAME_MAX + 1])
{
    snprintf(out, STATE_NAME_MAX + 1, "sess:%s:e:%lld", id, n);
}

/* Stores each event as its own document for the other instances (to
 * replay and to follow), then tells them on the bus. An event that could
 * not be stored makes them send a snapshot instead. */
static void sess__share_events(sessions *ss, const char *id, long long first, json_t *texts,
                               long ttl_s)
{
    size_t i;
    json_t *t;
    json_array_foreach(texts, i, t)
    {
        char key[STATE_NAME_MAX + 1];
        sess__event_key(id, first + (long long)i, key);
        if (sess__put_raw(ss, key, json_string_value(t), json_string_length(t), ttl_s, 0) != FP_OK)
            fp_log(FP_LOG_WARN, "session_event_unshared", NULL);
    }
    long long last = first + (long long)json_array_size(texts) - 1;
    json_t *o = json_pack("{s:s,s:s,s:I,s:s}", "k", "sess", "s", id, "v", (json_int_t)last, "o",
                          ss->instance);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (text && svc_bus_send(ss->svc, text, strlen(text)) != FP_OK)
        fp_log(FP_LOG_WARN, "session_bus_unsent", NULL);
    free(text);
}

/* The events from..to of a session from the other instances' documents,
 * as SSE texts; NULL when one is missing (then a snapshot goes instead). */
static json_t *sess__shared_events(sessions *ss, const char *id, long long from, long long to)
{
    if (to < from || to - from >= SESS_RING)
        return NULL;
    json_t *out = json_array();
    for (long long n = from; n <= to; n++) {
        char key[STATE_NAME_MAX + 1];
        sess__event_key(id, n, key);
        uint8_t *val = NULL;
        size_t len = 0;
        if (sess__get_raw(ss, key, &val, &len, NULL) != FP_OK) {
            json_decref(out);
            return NULL;
        }
        json_array_append_new(out, json_stringn((const char *)val, len));
        fp_free(val);
    }
    return out;
}

static json_t *sess__view(sessions *ss, json_t *state);

/* Gives this instance's streams of session sid the events up to version v
 * they have not had (from the shared event documents, or a snapshot when
 * one is gone). Safe to call twice for one version: a stream takes only
 * what is newer than what it has. */
static void sess__deliver(sessions *ss, const char *sid, long long v)
{
    pthread_mutex_lock(&ss->hub_mu);
    sess_hub *h = sess__hub(ss, sid, 0);
    long long from = v + 1;
    for (sess_stream *st = h ? h->streams : NULL; st; st = st->next)
        if (!st->closed && st->last_id + 1 < from)
            from = st->last_id + 1;
    pthread_mutex_unlock(&ss->hub_mu);
    if (from > v)
        return; /* nobody follows it here, or they have it */
    json_t *texts = sess__shared_events(ss, sid, from, v);
    json_t *state = NULL, *snapshot = NULL;
    long long version = v;
    if (!texts && sess__load(ss, sid, &state) == FP_OK) {
        version = (long long)json_integer_value(json_object_get(state, "version"));
        snapshot = sess__view(ss, state);
    }
    size_t cap = (size_t)ss->cfg->sessions_max_mb * 1024u * 1024u;
    pthread_mutex_lock(&ss->hub_mu);
    h = sess__hub(ss, sid, 0);
    if (h && texts) {
        size_t i;
        json_t *t;
        json_array_foreach(texts, i, t)
        {
            size_t tl = json_string_length(t);
            char *copy = fp_malloc(tl + 1);
            memcpy(copy, json_string_value(t), tl + 1);
            sess__hub_publish_text(h, &ss->bytes, cap, from + (long long)i, copy, tl);
        }
    } else if (h && snapshot) {
        sess__hub_publish(h, &ss->bytes, cap, version, "session", snapshot);
    }
    pthread_mutex_unlock(&ss->hub_mu);
    json_decref(texts);
    json_decref(snapshot);
    json_decref(state);
}

/* A "sess" bus event: an instance (this one too) changed a session; this
 * one's streams of it get what they have not had. On the service's bus
 * thread. */
static void sess__bus(void *ud, const char *json, size_t len)
{
    sessions *ss = ud;
    json_error_t jerr;
    json_t *o = json_loadb(json, len, 0, &jerr);
    const char *id = json_string_value(json_object_get(o, "s"));
    long long v = (long long)json_integer_value(json_object_get(o, "v"));
    if (!id || !sess__valid_id(id)) {
        json_decref(o);
        return;
    }
    char sid[33];
    snprintf(sid, sizeof sid, "%s", id);
    json_decref(o);
    sess__deliver(ss, sid, v);
}

/* ---- updates ----------------------------------------------------------- */

typedef struct sess_events {
    json_t *list;    /* [[name, data], ...] */
    json_t *started; /* jobs an edit started, by what for: kept across retries */
} sess_events;

static void sess__emit(sess_events *ev, const char *name, json_t *data)
{
    json_array_append_new(ev->list, json_pack("[s,o]", name, data));
}

typedef fp_err (*sess_edit_fn)(sessions *ss, json_t *state, void *ud, sess_events *ev);

/* A job for what an edit needs (key names it: the people and the kind),
 * started once per change: an edit that runs again after a lost
 * compare-and-set takes the job its first run started rather than
 * starting a second one nobody would follow. *fresh: 1 when started now. */
static fp_err sess__job_once(sessions *ss, sess_events *ev, const char *key,
                             const svc_person *people, size_t n, char job[33], int *fresh)
{
    *fresh = 0;
    const char *had = json_string_value(json_object_get(ev->started, key));
    if (had) {
        snprintf(job, 33, "%s", had);
        return FP_OK;
    }
    fp_err rc = svc_job_start(ss->svc, people, n, job);
    if (rc == FP_OK) {
        json_object_set_new(ev->started, key, json_string(job));
        *fresh = 1;
    }
    return rc;
}

/* Loads, edits, saves and publishes (under ss->mu in one process). *out
 * (may be NULL) gets the client view after the change. */
static fp_err sess__update(sessions *ss, const char *id, sess_edit_fn fn, void *ud, json_t **out)
{
    if (out)
        *out = NULL;
    sess_events ev = {json_array(), json_object()};
    json_t *state = NULL;
    sess__lock(ss);
    fp_err rc = FP_OK;
    /* One process: ss->mu makes the read-modify-write safe. Several: a
     * write another instance (or thread) made in between makes the save a
     * conflict, and the edit runs again on its result. (An edit's own
     * FP_CONFLICT is the client's 409 and is answered as it is.) */
    int lost_race = 1;
    for (int attempt = 0; attempt < 8 && lost_race; attempt++) {
        lost_race = 0;
        json_decref(state);
        state = NULL;
        json_array_clear(ev.list);
        uint64_t dv = 0;
        rc = sess__load_v(ss, id, &state, &dv);
        if (rc == FP_OK)
            rc = fn(ss, state, ud, &ev);
        if (rc != FP_OK || json_array_size(ev.list) == 0)
            break;
        json_int_t version = json_integer_value(json_object_get(state, "version"));
        json_object_set_new(state, "version",
                            json_integer(version + (json_int_t)json_array_size(ev.list)));
        rc = sess__save(ss, state, dv);
        lost_race = rc == FP_CONFLICT;
    }
    if (lost_race)
        rc = FP_UNAVAILABLE; /* others kept writing: the client tries again */
    if (rc == FP_OK && json_array_size(ev.list) > 0) {
        json_int_t version = json_integer_value(json_object_get(state, "version"));
        json_int_t first = version - (json_int_t)json_array_size(ev.list) + 1;
        {
            /* Snapshots carry the final version; views are made before
             * hub_mu is taken (they read the catalogue). */
            json_t *snapshot = NULL;
            size_t i;
            json_t *e;
            json_array_foreach(ev.list, i, e)
            {
                if (!snapshot && strcmp(json_string_value(json_array_get(e, 0)), "session") == 0)
                    snapshot = sess__view(ss, state);
            }
            json_t *texts = ss->stb ? json_array() : NULL;
            pthread_mutex_lock(&ss->hub_mu);
            sess_hub *h = sess__hub(ss, id, 1);
            json_array_foreach(ev.list, i, e)
            {
                const char *name = json_string_value(json_array_get(e, 0));
                json_t *data = json_array_get(e, 1);
                if (strcmp(name, "session") == 0)
                    data = json_incref(snapshot);
                else
                    json_incref(data);
                size_t len = 0;
                char *text = sess__sse(first + (json_int_t)i, name, data, &len);
                if (texts) {
                    /* Shared: every instance's streams, this one's too, get
                     * it from the bus in the order the versions were
                     * written (sess__bus). */
                    json_array_append_new(texts, json_stringn(text, len));
                    fp_free(text);
                } else {
                    sess__hub_publish_text(h, &ss->bytes,
                                           (size_t)ss->cfg->sessions_max_mb * 1024u * 1024u,
                                           first + (json_int_t)i, text, len);
                }
                json_decref(data);
            }
            pthread_mutex_unlock(&ss->hub_mu);
            json_decref(snapshot);
            if (texts)
                sess__share_events(ss, id, first, texts, sess__ttl(ss, state));
            json_decref(texts);
        }
    }
    if (rc == FP_OK && out)
        *out = sess__view(ss, state);
    sess__unlock(ss);
    json_decref(state);
    json_decref(ev.list);
    json_decref(ev.started);
    return rc;
}

/* ---- create, get -------------------------------------------------------- */

/* The client's live sessions ("cl:<client>": [[id, created], ...]). Under
 * mu. FP_RATE_LIMITED with *retry_s = when the oldest one stops counting. */
static fp_err sess__client_slot(sessions *ss, const char *client_id, const char *sid,
                                long *retry_s)
{
    char key[48];
    snprintf(key, sizeof key, "cl:%s", client_id);
    uint8_t *val = NULL;
    size_t len = 0;
    json_t *list = NULL;
    if (ss->cb->get(ss->ca, key, strlen(key), &val, &len) == FP_OK) {
        json_error_t err;
        list = json_loadb((const char *)val, len, 0, &err);
        fp_free(val);
    }
    if (!json_is_array(list)) {
        json_decref(list);
        list = json_array();
    }
    json_t *live = json_array();
    time_t now = time(NULL);
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e)
    {
        const char *other = json_string_value(json_array_get(e, 0));
        char sk[40];
        sess__key(other ? other : "", sk);
        uint8_t *v = NULL;
        size_t vl = 0;
        /* a session counts for session-ttl after its creation, while it exists */
        if (other && json_integer_value(json_array_get(e, 1)) > now - ss->cfg->session_ttl_s &&
            sess__get_raw(ss, sk, &v, &vl, NULL) == FP_OK)
            json_array_append(live, e);
        fp_free(v);
    }
    json_decref(list);
    fp_err rc = FP_OK;
    if (json_array_size(live) >= (size_t)ss->cfg->max_sessions_per_client) {
        rc = FP_RATE_LIMITED;
        json_int_t oldest = 0;
        json_array_foreach(live, i, e)
        {
            json_int_t at = json_integer_value(json_array_get(e, 1));
            if (oldest == 0 || at < oldest)
                oldest = at;
        }
        long wait = (long)(oldest + ss->cfg->session_ttl_s - now);
        *retry_s = wait > 1 ? wait : 1;
    } else {
        json_array_append_new(live, json_pack("[s,I]", sid, (json_int_t)now));
        char *text = json_dumps(live, JSON_COMPACT);
        rc = ss->cb->set(ss->ca, key, strlen(key), text, strlen(text), ss->cfg->session_ttl_s);
        free(text);
    }
    json_decref(live);
    return rc;
}

int sess_address_full(sessions *ss, const uint8_t addr[16])
{
    pthread_mutex_lock(&ss->hub_mu);
    sess_addr *a = sess__addr(ss, addr, 0);
    int full = a && a->live >= ss->cfg->max_sessions_per_address;
    pthread_mutex_unlock(&ss->hub_mu);
    return full;
}

fp_err sess_create(sessions *ss, const char *client_id, const uint8_t addr[16], json_t **out,
                   long *retry_s)
{
    *out = NULL;
    *retry_s = 0;
    char id[33];
    vault_random_token(id, 16);
    time_t now = time(NULL);
    char *join = fp_printf("/s/%s", id);
    json_t *state = json_pack(
        "{s:s,s:s,s:s,s:i,s:o,s:o,s:[],s:n,s:[],s:n,s:[],s:[],s:i,s:s}", "id", id, "join_url", join,
        "status", "gathering", "version", 1, "created_at", view_time((int64_t)now), "expires_at",
        view_time((int64_t)now + ss->cfg->session_ttl_s), "participants", "results", "vetoed",
        "rolled", "watched", "watched_films", "_next_pid", 1, "_client", client_id ? client_id : "");
    fp_free(join);
    pthread_mutex_lock(&ss->mu);
    pthread_mutex_lock(&ss->hub_mu);
    int full = ss->nhubs >= (size_t)ss->cfg->max_sessions;
    pthread_mutex_unlock(&ss->hub_mu);
    fp_err rc = FP_OK;
    if (full) {
        rc = FP_UNAVAILABLE;
        *retry_s = 60;
        fp_log(FP_LOG_WARN, "sessions_full", "{s:I}", "sessions", (json_int_t)ss->cfg->max_sessions);
    } else if (client_id) {
        rc = sess__client_slot(ss, client_id, id, retry_s);
    }
    if (rc == FP_OK)
        rc = sess__save(ss, state, 0);
    if (rc == FP_OK && addr) {
        pthread_mutex_lock(&ss->hub_mu);
        sess_hub *h = sess__hub(ss, id, 1);
        h->creator = sess__addr(ss, addr, 1);
        h->creator->live++;
        pthread_mutex_unlock(&ss->hub_mu);
    }
    if (rc == FP_UNAVAILABLE && !*retry_s)
        *retry_s = 60;
    pthread_mutex_unlock(&ss->mu);
    if (rc == FP_OK) {
        *out = sess__view(ss, state);
        fp_log(FP_LOG_INFO, "session_created", "{s:s}", "session", id);
    }
    json_decref(state);
    return rc;
}

fp_err sess_get(sessions *ss, const char *id, json_t **out)
{
    *out = NULL;
    json_t *state = NULL;
    fp_err rc = sess__load_alone(ss, id, &state);
    if (rc == FP_OK)
        *out = sess__view(ss, state);
    json_decref(state);
    return rc;
}

/* ---- participants ------------------------------------------------------- */

static const char *sess__status(json_t *state)
{
    return json_string_value(json_object_get(state, "status"));
}

/* Back to gathering after a change to the group: results no longer apply. */
static void sess__reset_results(json_t *state)
{
    json_object_set_new(state, "status", json_string("gathering"));
    json_object_set_new(state, "results", json_null());
    json_object_set_new(state, "rolled", json_null());
    json_object_set_new(state, "vetoed", json_array());
    json_object_del(state, "_job");
    json_object_del(state, "_common");
    json_object_del(state, "_most");
    json_object_del(state, "_page");
    json_object_del(state, "_mostv");
}

static fp_err sess__sync(sessions *ss, json_t *state, sess_events *ev);

typedef struct sess_add_arg {
    const svc_person *p;
    const char *name; /* an upload's display name, or NULL */
} sess_add_arg;

static void sess__map_job(sessions *ss, const char *job, const char *sid);
static fp_err sess__person(sessions *ss, json_t *p, int refresh, svc_person *out);
static void sess__recent(sessions *ss, json_t *part);

/* Starts reading one participant's list now (their own job, "_pjob"), so the
 * group sees "found, N films" or what is wrong before the search. */
static void sess__prefetch(sessions *ss, json_t *state, json_t *part, const svc_person *p,
                           sess_events *ev)
{
    char job[33];
    int fresh = 0;
    char *key = fp_printf("p\n%s\n%s", p->src ? p->src->type : "", p->user);
    fp_err rc = sess__job_once(ss, ev, key, p, 1, job, &fresh);
    fp_free(key);
    if (rc != FP_OK) { /* busy: the search will read it */
        fp_log(FP_LOG_WARN, "session_prefetch_refused", "{s:s}", "error", fp_err_code(rc));
        return;
    }
    json_object_set_new(part, "_pjob", json_string(job));
    json_object_set_new(part, "status", json_string("queued"));
    if (fresh)
        sess__map_job(ss, job, json_string_value(json_object_get(state, "id")));
}

static fp_err sess__edit_add(sessions *ss, json_t *state, void *ud, sess_events *ev)
{
    const sess_add_arg *a = ud;
    const svc_person *p = a->p;
    if (strcmp(sess__status(state), "searching") == 0)
        return FP_CONFLICT;
    json_t *parts = json_object_get(state, "participants");
    if (json_array_size(parts) >= (size_t)ss->cfg->max_participants)
        return FP_TOO_MANY;
    size_t i;
    json_t *q;
    size_t uploads = 0;
    json_array_foreach(parts, i, q)
    {
        const char *u = json_string_value(json_object_get(q, p->src ? "_user" : "_import"));
        if (u && strcmp(u, p->user) == 0)
            return FP_DUPLICATE; /* already in the group */
        uploads += json_object_get(q, "_import") != NULL;
    }
    json_int_t n = json_integer_value(json_object_get(state, "_next_pid"));
    char pid[24];
    snprintf(pid, sizeof pid, "p%lld", (long long)n);
    json_object_set_new(state, "_next_pid", json_integer(n + 1));
    /* a name is at most SESS_NAME_MAX characters of up to 4 bytes */
    char name[SESS_NAME_MAX * 4 + SOURCE_USER_MAX + 16];
    json_int_t upload_no = json_integer_value(json_object_get(state, "_next_upload"));
    if (upload_no < 1)
        upload_no = (json_int_t)uploads + 1;
    if (p->src)
        snprintf(name, sizeof name, "%s", p->user);
    else if (a->name)
        snprintf(name, sizeof name, "%s", a->name);
    else
        snprintf(name, sizeof name, "Upload %lld", (long long)upload_no);
    if (!p->src)
        json_object_set_new(state, "_next_upload", json_integer(upload_no + 1));
    json_t *part = json_pack("{s:s,s:s,s:s,s:s,s:i,s:i,s:i,s:n,s:n,s:[]}", "id", pid, "name",
                             name, "source", p->src ? p->src->name : "import", "status",
                             "waiting", "pages_fetched", 0, "pages_total", 0, "films", 0, "error",
                             "warning", "recently_watched");
    if (!part)
        return FP_BAD_NAME; /* not valid UTF-8 (sess_name_check lets none through) */
    if (p->src) {
        json_object_set_new(part, "_src", json_string(p->src->type));
        json_object_set_new(part, "_user", json_string(p->user));
    } else {
        json_object_set_new(part, "_import", json_string(p->user));
    }
    json_array_append_new(parts, part);
    int had_results = strcmp(sess__status(state), "results") == 0;
    if (had_results)
        sess__reset_results(state);
    sess__prefetch(ss, state, part, p, ev);
    sess__emit(ev, had_results ? "session" : "participant", sess__part_view(part));
    return sess__sync(ss, state, ev); /* a stored list is ready at once */
}

/* An upload's display name: trimmed, 1..SESS_NAME_MAX characters of UTF-8
 * text without control characters. Caller frees *out. */
fp_err sess_name_check(const char *in, char **out)
{
    *out = NULL;
    if (!in)
        return FP_OK;
    while (*in == ' ' || *in == '\t')
        in++;
    size_t len = strlen(in);
    while (len > 0 && (in[len - 1] == ' ' || in[len - 1] == '\t'))
        len--;
    size_t chars = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c < 0x20 || c == 0x7f)
            return FP_BAD_NAME;
        /* C1 controls U+0080..U+009F, written 0xC2 0x80..0x9F */
        if (c == 0xc2 && i + 1 < len && (unsigned char)in[i + 1] >= 0x80 &&
            (unsigned char)in[i + 1] <= 0x9f)
            return FP_BAD_NAME;
        chars += (c & 0xc0) != 0x80;
    }
    json_t *valid = json_stringn(in, len); /* NULL unless valid UTF-8 */
    if (!valid)
        return FP_BAD_NAME;
    json_decref(valid);
    if (chars == 0 || chars > SESS_NAME_MAX)
        return FP_BAD_NAME;
    *out = fp_strndup(in, len);
    return FP_OK;
}

fp_err sess_add(sessions *ss, const char *id, const svc_person *p, const char *name, json_t **out)
{
    sess_add_arg a = {p, name};
    return sess__update(ss, id, sess__edit_add, &a, out);
}

static fp_err sess__edit_remove(sessions *ss, json_t *state, void *ud, sess_events *ev)
{
    (void)ss;
    const char *pid = ud;
    if (strcmp(sess__status(state), "searching") == 0)
        return FP_CONFLICT;
    json_t *parts = json_object_get(state, "participants");
    size_t i;
    json_t *q;
    json_array_foreach(parts, i, q)
    {
        if (strcmp(json_string_value(json_object_get(q, "id")), pid) == 0) {
            json_array_remove(parts, i);
            if (strcmp(sess__status(state), "results") == 0) {
                sess__reset_results(state);
                sess__emit(ev, "session", json_null());
            } else {
                sess__emit(ev, "participant_removed", json_pack("{s:s}", "id", pid));
            }
            return FP_OK;
        }
    }
    return FP_NOT_FOUND;
}

fp_err sess_remove(sessions *ss, const char *id, const char *pid, json_t **out)
{
    return sess__update(ss, id, sess__edit_remove, (void *)pid, out);
}

/* ---- search and progress ----------------------------------------------- */

/* jobs_mu held. */
static void sess__map_job_locked(sessions *ss, const char *job, const char *sid)
{
    if (ss->njobs == SESS_MAX_JOBS) { /* forget the oldest half */
        memmove(ss->jobs, ss->jobs + SESS_MAX_JOBS / 2, (SESS_MAX_JOBS / 2) * sizeof *ss->jobs);
        ss->njobs = SESS_MAX_JOBS / 2;
    }
    snprintf(ss->jobs[ss->njobs].job, 33, "%s", job);
    snprintf(ss->jobs[ss->njobs].sess, 33, "%s", sid);
    ss->njobs++;
}

static void sess__map_job(sessions *ss, const char *job, const char *sid)
{
    pthread_mutex_lock(&ss->jobs_mu);
    sess__map_job_locked(ss, job, sid);
    pthread_mutex_unlock(&ss->jobs_mu);
}

/* With several instances, the one that started a job may not be the one
 * that sees it end (it stopped, or this one adopted the job): the session
 * follows the job here too, so whichever instance hears of a change brings
 * the session in step (the compare-and-set keeps it to once). */
static void sess__follow(sessions *ss, const char *job, const char *sid)
{
    if (!ss->stb || !job || !sid)
        return;
    pthread_mutex_lock(&ss->jobs_mu);
    int known = 0;
    for (size_t i = ss->njobs; i-- > 0 && !known;)
        known = strcmp(ss->jobs[i].job, job) == 0;
    if (!known)
        sess__map_job_locked(ss, job, sid);
    pthread_mutex_unlock(&ss->jobs_mu);
}

/* Display order of the common films: normalised title, then year, then id. */
typedef struct sess_sorted {
    char *key;
    const svc_result_film *f;
} sess_sorted;

static int sess__cmp_sorted(const void *a, const void *b)
{
    const sess_sorted *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    if (c)
        return c;
    if (x->f->film.year != y->f->film.year)
        return x->f->film.year < y->f->film.year ? -1 : 1;
    return (x->f->film.id > y->f->film.id) - (x->f->film.id < y->f->film.id);
}

static int sess__cmp_id(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Sorted copy of the integers of a JSON array (for bsearch); *n its length. */
static int64_t *sess__ids_sorted(json_t *arr, size_t *n)
{
    size_t k = json_array_size(arr);
    int64_t *v = fp_malloc((k ? k : 1) * sizeof *v);
    for (size_t i = 0; i < k; i++)
        v[i] = json_integer_value(json_array_get(arr, i));
    qsort(v, k, sizeof *v, sess__cmp_id);
    *n = k;
    return v;
}

static int sess__has_id(const int64_t *sorted, size_t n, int64_t id)
{
    return bsearch(&id, sorted, n, sizeof *sorted, sess__cmp_id) != NULL;
}

/*
 * The results of a search stay fixed while the session shows them: "_common"
 * (every common film's id in display order) and "_most" (the most-lists
 * films as [id, lists]). The document holds ids only; the films are filled
 * in when a view is made (sess__results_view). What the group sees is that minus the films marked watched in this
 * session ("watched"): results.common (the first SESS_PAGE), common_count,
 * results.most, the pages of sess_films and the roll pool all skip them, so
 * "Put it back" simply shows the film where it was.
 */

/* The roll pool: common films neither struck out nor watched; when none is
 * left, the films on the most lists (the highest level with any left). Fills
 * ids (caller frees) when not NULL; returns the count. */
static size_t sess__pool(json_t *state, int64_t **ids)
{
    size_t nv = 0, nw = 0;
    int64_t *vetoed = sess__ids_sorted(json_object_get(state, "vetoed"), &nv);
    int64_t *watched = sess__ids_sorted(json_object_get(state, "watched"), &nw);
    json_t *common = json_object_get(state, "_common");
    json_t *most = json_object_get(state, "_most");
    size_t total = json_array_size(common) + json_array_size(most);
    int64_t *out = ids ? fp_malloc((total ? total : 1) * sizeof *out) : NULL;
    size_t n = 0, i;
    json_t *e;
    json_array_foreach(common, i, e)
    {
        int64_t id = json_integer_value(e);
        if (!sess__has_id(vetoed, nv, id) && !sess__has_id(watched, nw, id)) {
            if (out)
                out[n] = id;
            n++;
        }
    }
    if (n == 0) {
        json_int_t level = 0;
        json_array_foreach(most, i, e)
        {
            int64_t id = json_integer_value(json_array_get(e, 0));
            if (sess__has_id(vetoed, nv, id) || sess__has_id(watched, nw, id))
                continue;
            json_int_t lists = json_integer_value(json_array_get(e, 1));
            if (level == 0)
                level = lists;
            if (lists != level)
                break;
            if (out)
                out[n] = id;
            n++;
        }
    }
    fp_free(vetoed);
    fp_free(watched);
    if (ids)
        *ids = out;
    return n;
}

static void sess__set_pool(json_t *state)
{
    json_t *res = json_object_get(state, "results");
    if (json_is_object(res))
        json_object_set_new(res, "pool", json_integer((json_int_t)sess__pool(state, NULL)));
}

static json_int_t sess__pool_value(json_t *state)
{
    return json_integer_value(json_object_get(json_object_get(state, "results"), "pool"));
}

/* The visible results from "_common", "_most" and "watched": the first page
 * of common films, their count, the most-lists films, the pool. */
static fp_err sess__results_refresh(sessions *ss, json_t *state)
{
    json_t *res = json_object_get(state, "results");
    if (!json_is_object(res))
        return FP_OK;
    size_t nw = 0;
    int64_t *watched = sess__ids_sorted(json_object_get(state, "watched"), &nw);
    int64_t page[SESS_PAGE];
    size_t npage = 0, count = 0, i;
    json_t *e;
    json_array_foreach(json_object_get(state, "_common"), i, e)
    {
        int64_t id = json_integer_value(e);
        if (sess__has_id(watched, nw, id))
            continue;
        if (npage < SESS_PAGE)
            page[npage++] = id;
        count++;
    }
    json_t *most = json_array();
    json_array_foreach(json_object_get(state, "_most"), i, e)
    {
        if (!sess__has_id(watched, nw, json_integer_value(json_array_get(e, 0))))
            json_array_append(most, e);
    }
    fp_free(watched);
    (void)ss;
    json_t *ids = json_array();
    for (size_t k = 0; k < npage; k++)
        json_array_append_new(ids, json_integer(page[k]));
    json_object_set_new(state, "_page", ids);
    json_object_set_new(state, "_mostv", most);
    json_object_del(res, "common");
    json_object_del(res, "most");
    json_object_set_new(res, "common_count", json_integer((json_int_t)count));
    sess__set_pool(state);
    return FP_OK;
}

/* Results into the document: every common film's id in display order
 * ("_common"), the most-lists films ("_most"), then the visible results. */
static fp_err sess__results_set(sessions *ss, json_t *state, const svc_results *r)
{
    sess_sorted *order = fp_calloc(r->ncommon ? r->ncommon : 1, sizeof *order);
    for (size_t i = 0; i < r->ncommon; i++) {
        order[i].f = &r->common[i];
        order[i].key = film_normalize_title(r->common[i].film.title ? r->common[i].film.title : "");
    }
    qsort(order, r->ncommon, sizeof *order, sess__cmp_sorted);
    json_t *ids = json_array(), *most = json_array();
    for (size_t i = 0; i < r->ncommon; i++) {
        json_array_append_new(ids, json_integer(order[i].f->film.id));
        fp_free(order[i].key);
    }
    fp_free(order);
    for (size_t i = 0; i < r->nmost; i++)
        json_array_append_new(most, json_pack("[I,I]", (json_int_t)r->most[i].film.id,
                                              (json_int_t)r->most[i].count));
    json_object_set_new(state, "_common", ids);
    json_object_set_new(state, "_most", most);
    json_object_set_new(state, "results",
                        json_pack("{s:I,s:I,s:i,s:i}", "participants",
                                  (json_int_t)r->participants, "failed", (json_int_t)r->failed,
                                  "common_count", 0, "pool", 0));
    return sess__results_refresh(ss, state);
}

static const char *const sess__part_fields[] = {"status", "pages_fetched", "pages_total",
                                                "films",  "error",         "warning"};

/* Copies a job part's progress into a participant; 1 when anything changed. */
static int sess__part_update(json_t *p, const svc_part_view *pv)
{
    json_t *fresh = view_part(pv);
    int changed = 0;
    for (size_t k = 0; k < sizeof sess__part_fields / sizeof sess__part_fields[0]; k++) {
        json_t *nv = json_object_get(fresh, sess__part_fields[k]);
        if (!json_equal(json_object_get(p, sess__part_fields[k]), nv)) {
            json_object_set(p, sess__part_fields[k], nv);
            changed = 1;
        }
    }
    json_decref(fresh);
    return changed;
}

/* Participants being read on their own (before a search): progress, then
 * ready or failed. Under mu. */
static void sess__sync_prefetch(sessions *ss, json_t *state, sess_events *ev)
{
    int searching = strcmp(sess__status(state), "searching") == 0;
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(state, "participants"), i, p)
    {
        const char *job = json_string_value(json_object_get(p, "_pjob"));
        if (!job)
            continue;
        svc_job_view v;
        if (svc_job_view_get(ss->svc, job, &v) != FP_OK) {
            json_object_del(p, "_pjob"); /* expired */
            continue;
        }
        if (!v.done)
            sess__follow(ss, job, json_string_value(json_object_get(state, "id")));
        int changed = 0;
        if (!searching && v.nparts == 1) /* while searching, the search job speaks */
            changed = sess__part_update(p, &v.parts[0]);
        if (v.done) {
            json_object_del(p, "_pjob");
            if (!searching && v.nparts == 1 && v.parts[0].state == SVC_PART_READY) {
                sess__recent(ss, p);
                changed = 1;
            }
        }
        svc_job_view_free(&v);
        if (changed)
            sess__emit(ev, "participant", sess__part_view(p));
    }
}

/* Brings the participants (and, once done, the results) in step with the
 * session's jobs. Under mu. */
static fp_err sess__sync(sessions *ss, json_t *state, sess_events *ev)
{
    sess__sync_prefetch(ss, state, ev);
    const char *job = json_string_value(json_object_get(state, "_job"));
    if (!job || strcmp(sess__status(state), "searching") != 0)
        return FP_OK;
    svc_job_view v;
    fp_err rc = svc_job_view_get(ss->svc, job, &v);
    if (rc == FP_OK && !v.done)
        sess__follow(ss, job, json_string_value(json_object_get(state, "id")));
    if (rc == FP_NOT_FOUND) {
        /* The search job is gone (expired, or dropped under memory
         * pressure): back to gathering, so the group can search again
         * rather than wait for a job that will never finish. */
        fp_log(FP_LOG_WARN, "session_search_lost", "{s:s}", "session",
               json_string_value(json_object_get(state, "id")));
        json_object_del(state, "_job");
        json_object_set_new(state, "status", json_string("gathering"));
        sess__emit(ev, "session", json_null());
        return FP_OK;
    }
    if (rc != FP_OK)
        return rc;
    json_t *parts = json_object_get(state, "participants");
    for (size_t i = 0; i < v.nparts && i < json_array_size(parts); i++) {
        json_t *p = json_array_get(parts, i);
        int changed = sess__part_update(p, &v.parts[i]);
        if (v.done && v.parts[i].state == SVC_PART_READY) {
            sess__recent(ss, p);
            changed = 1;
        }
        if (changed)
            sess__emit(ev, "participant", sess__part_view(p));
    }
    int done = v.done;
    svc_job_view_free(&v);
    if (!done)
        return FP_OK;
    svc_results r;
    rc = svc_job_results(ss->svc, job, 10, SESS_MOST_MAX, &r);
    if (rc == FP_OK) {
        rc = sess__results_set(ss, state, &r);
        svc_results_free(&r);
        if (rc != FP_OK)
            return rc;
    } else if (rc == FP_CONFLICT) { /* nobody's list could be read: the errors say why */
        json_object_set_new(state, "_common", json_array());
        json_object_set_new(state, "_most", json_array());
        json_object_set_new(state, "_page", json_array());
        json_object_set_new(state, "_mostv", json_array());
        json_object_set_new(state, "results",
                            json_pack("{s:i,s:I,s:i,s:i}", "participants", 0, "failed",
                                      (json_int_t)json_array_size(parts), "common_count", 0,
                                      "pool", 0));
    } else {
        return rc;
    }
    json_object_set_new(state, "status", json_string("results"));
    sess__emit(ev, "results", sess__results_view(ss, state));
    return FP_OK;
}

static fp_err sess__edit_sync(sessions *ss, json_t *state, void *ud, sess_events *ev)
{
    (void)ud;
    return sess__sync(ss, state, ev);
}

static void sess__job_changed(void *ud, const char *job_id)
{
    sessions *ss = ud;
    char sid[33] = "";
    pthread_mutex_lock(&ss->jobs_mu);
    for (size_t i = ss->njobs; i-- > 0;)
        if (strcmp(ss->jobs[i].job, job_id) == 0) {
            snprintf(sid, sizeof sid, "%s", ss->jobs[i].sess);
            break;
        }
    pthread_mutex_unlock(&ss->jobs_mu);
    if (!sid[0])
        return;
    fp_err rc = sess__update(ss, sid, sess__edit_sync, NULL, NULL);
    if (rc != FP_OK && rc != FP_NOT_FOUND)
        fp_log(FP_LOG_WARN, "session_sync_failed", "{s:s}", "error", fp_err_code(rc));
}

/* The service person of a participant. */
static fp_err sess__person(sessions *ss, json_t *p, int refresh, svc_person *out)
{
    const char *imp = json_string_value(json_object_get(p, "_import"));
    if (imp)
        return svc_person_import(ss->svc, imp, out);
    return svc_person_parse(ss->svc, json_string_value(json_object_get(p, "_src")),
                            json_string_value(json_object_get(p, "_user")), refresh, out);
}

/* A participant's "recently_watched": what this person marked watched here
 * in the last SESS_RECENT_S, newest first. Under mu. */
static void sess__recent(sessions *ss, json_t *part)
{
    svc_person person;
    if (sess__person(ss, part, 0, &person) != FP_OK)
        return;
    svc_watched_film *films = NULL;
    size_t n = 0;
    fp_err rc = svc_watched_recent(ss->svc, &person, (int64_t)time(NULL) - SESS_RECENT_S,
                                   SESS_RECENT_MAX, &films, &n);
    if (rc != FP_OK) {
        fp_log(FP_LOG_WARN, "session_recent_failed", "{s:s}", "error", fp_err_code(rc));
        return;
    }
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, json_pack("{s:o,s:o}", "film", view_film(&films[i].film),
                                              "watched_at", view_time(films[i].watched_at)));
    svc_watched_films_free(films, n);
    json_object_set_new(part, "recently_watched", list);
}

fp_err sess_search_cost(sessions *ss, const char *id, int refresh, size_t *cost)
{
    *cost = 0;
    json_t *state = NULL;
    fp_err rc = sess__load_alone(ss, id, &state);
    if (rc != FP_OK)
        return rc;
    json_t *parts = json_object_get(state, "participants");
    size_t n = json_array_size(parts);
    svc_person *people = fp_calloc(n ? n : 1, sizeof *people);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (sess__person(ss, json_array_get(parts, i), refresh, &people[k]) == FP_OK)
            k++;
    *cost = svc_fetch_cost(ss->svc, people, k);
    fp_free(people);
    json_decref(state);
    return FP_OK;
}

static fp_err sess__edit_search(sessions *ss, json_t *state, void *ud, sess_events *ev)
{
    int refresh = *(int *)ud;
    json_t *parts = json_object_get(state, "participants");
    size_t n = json_array_size(parts);
    if (n == 0 || strcmp(sess__status(state), "searching") == 0)
        return FP_CONFLICT;
    svc_person *people = fp_calloc(n, sizeof *people);
    fp_err rc = FP_OK;
    /* what the job is for: the same people (a retry after a lost
     * compare-and-set) take the job already started */
    fp_buf key;
    fp_buf_init(&key, 64u * 1024u);
    fp_err kr = fp_buf_append(&key, refresh ? "s1" : "s0", 2);
    for (size_t i = 0; i < n && rc == FP_OK; i++) {
        json_t *q = json_array_get(parts, i);
        rc = sess__person(ss, q, refresh, &people[i]);
        const char *who = json_string_value(json_object_get(q, "_user"));
        const char *src = json_string_value(json_object_get(q, "_src"));
        if (!who)
            who = json_string_value(json_object_get(q, "_import"));
        if (kr == FP_OK)
            kr = fp_buf_appendf(&key, "\n%s\n%s", src ? src : "", who ? who : "");
    }
    char job[33];
    int fresh = 1;
    if (rc == FP_OK && kr == FP_OK)
        rc = sess__job_once(ss, ev, key.data, people, n, job, &fresh);
    else if (rc == FP_OK)
        rc = svc_job_start(ss->svc, people, n, job);
    fp_buf_free(&key);
    fp_free(people);
    if (rc != FP_OK)
        return rc;
    sess__reset_results(state);
    json_object_set_new(state, "_job", json_string(job));
    json_object_set_new(state, "status", json_string("searching"));
    size_t i;
    json_t *p;
    json_array_foreach(parts, i, p)
    {
        json_object_del(p, "_pjob"); /* the search job follows them now */
        json_object_set_new(p, "status", json_string("queued"));
        json_object_set_new(p, "pages_fetched", json_integer(0));
        json_object_set_new(p, "pages_total", json_integer(0));
        json_object_set_new(p, "error", json_null());
        json_object_set_new(p, "warning", json_null());
    }
    if (fresh)
        sess__map_job(ss, job, json_string_value(json_object_get(state, "id")));
    sess__emit(ev, "session", json_null());
    return sess__sync(ss, state, ev); /* stored lists are ready at once */
}

fp_err sess_search(sessions *ss, const char *id, int refresh, json_t **out)
{
    return sess__update(ss, id, sess__edit_search, &refresh, out);
}

/* ---- the common films, a page at a time --------------------------------- */

/* 1 when the film matches a search: the normalised query inside the
 * normalised title, or a 4-digit query equal to the year. */
static int sess__matches(const film *f, const char *nq, int qyear)
{
    if (qyear && f->year == qyear)
        return 1;
    char *nt = film_normalize_title(f->title ? f->title : "");
    int hit = strstr(nt, nq) != NULL;
    fp_free(nt);
    return hit;
}

fp_err sess_films(sessions *ss, const char *id, size_t offset, size_t limit, const char *q,
                  json_t **out)
{
    *out = NULL;
    if (limit == 0 || limit > SESS_PAGE_MAX)
        return FP_INVALID;
    json_t *state = NULL;
    fp_err rc = sess__load_alone(ss, id, &state);
    if (rc != FP_OK)
        return rc;
    if (strcmp(sess__status(state), "results") != 0) {
        json_decref(state);
        return FP_CONFLICT;
    }
    json_t *common = json_object_get(state, "_common");
    size_t nw = 0, n = 0, at;
    int64_t *watched = sess__ids_sorted(json_object_get(state, "watched"), &nw);
    int64_t *ids = fp_malloc((json_array_size(common) ? json_array_size(common) : 1) * sizeof *ids);
    json_t *e;
    json_array_foreach(common, at, e)
    {
        int64_t film_id = json_integer_value(e);
        if (!sess__has_id(watched, nw, film_id)) /* watched here: out of the results */
            ids[n++] = film_id;
    }
    fp_free(watched);
    json_decref(state);

    char *nq = (q && *q) ? film_normalize_title(q) : NULL;
    if (nq && !*nq) /* only punctuation: match nothing rather than everything */
        FP_FREE(nq);
    int qyear = 0;
    if (q && strlen(q) == 4 && strspn(q, "0123456789") == 4)
        qyear = (int)strtol(q, NULL, 10);
    json_t *films = json_array();
    size_t total = 0;
    if (!q || !*q) {
        total = n;
        size_t from = offset < n ? offset : n;
        size_t count = n - from < limit ? n - from : limit;
        film *fs = fp_calloc(count ? count : 1, sizeof *fs);
        rc = svc_films_get(ss->svc, ids + from, count, fs);
        for (size_t i = 0; i < count; i++) {
            if (rc == FP_OK)
                json_array_append_new(films, view_film(&fs[i]));
            film_clear(&fs[i]);
        }
        fp_free(fs);
    } else {
        film *fs = fp_calloc(n ? n : 1, sizeof *fs);
        rc = svc_films_get(ss->svc, ids, n, fs);
        for (size_t i = 0; i < n; i++) {
            if (rc == FP_OK && (nq || qyear) && sess__matches(&fs[i], nq ? nq : "\x01", qyear)) {
                if (total >= offset && total < offset + limit)
                    json_array_append_new(films, view_film(&fs[i]));
                total++;
            }
            film_clear(&fs[i]);
        }
        fp_free(fs);
    }
    fp_free(nq);
    fp_free(ids);
    if (rc != FP_OK) {
        json_decref(films);
        return rc;
    }
    *out = json_pack("{s:I,s:I,s:o}", "total", (json_int_t)total, "offset", (json_int_t)offset,
                     "films", films);
    return FP_OK;
}

/* ---- veto, roll, watched ------------------------------------------------ */

/* 1 when film_id is in these results at all (watched here or not). */
static int sess__in_search(json_t *state, int64_t film_id)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(state, "_common"), i, e) if (json_integer_value(e) == film_id)
        return 1;
    json_array_foreach(json_object_get(state, "_most"), i, e)
    {
        if (json_integer_value(json_array_get(e, 0)) == film_id)
            return 1;
    }
    return 0;
}

/* 1 when film_id is one of the visible results' films: any common film or a
 * most-lists one, not marked watched here. */
static int sess__in_results(json_t *state, int64_t film_id)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(state, "watched"), i, e) if (json_integer_value(e) == film_id)
        return 0;
    return sess__in_search(state, film_id);
}

typedef struct sess_veto_arg {
    int64_t film_id;
    int vetoed;
} sess_veto_arg;

static fp_err sess__edit_veto(sessions *ss, json_t *state, void *ud, sess_events *ev)
{
    (void)ss;
    sess_veto_arg *a = ud;
    if (strcmp(sess__status(state), "results") != 0)
        return FP_CONFLICT;
    if (!sess__in_results(state, a->film_id))
        return FP_NOT_FOUND;
    json_t *vetoed = json_object_get(state, "vetoed");
    size_t i;
    json_t *v;
    int found = -1;
    json_array_foreach(vetoed, i, v) if (json_integer_value(v) == a->film_id) found = (int)i;
    if (a->vetoed && found < 0)
        json_array_append_new(vetoed, json_integer(a->film_id));
    else if (!a->vetoed && found >= 0)
        json_array_remove(vetoed, (size_t)found);
    else
        return FP_OK; /* nothing changes: no event */
    sess__set_pool(state);
    sess__emit(ev, "veto", json_pack("{s:I,s:b,s:I}", "film_id", (json_int_t)a->film_id, "vetoed",
                                     a->vetoed, "pool", sess__pool_value(state)));
    return FP_OK;
}

fp_err sess_veto(sessions *ss, const char *id, int64_t film_id, int vetoed, json_t **out)
{
    sess_veto_arg a = {film_id, vetoed};
    return sess__update(ss, id, sess__edit_veto, &a, out);
}

static fp_err sess__edit_roll(sessions *ss, json_t *state, void *ud, sess_events *ev)
{
    (void)ud;
    if (strcmp(sess__status(state), "results") != 0)
        return FP_CONFLICT;
    int64_t *pool = NULL;
    size_t n = sess__pool(state, &pool);
    if (n == 0) {
        fp_free(pool);
        return FP_CONFLICT;
    }
    pick_rng rng;
    pick_rng_init(&rng, NULL);
    int64_t chosen = pool[pick_rng_uniform(&rng, (uint32_t)n)];
    fp_free(pool);
    film f;
    fp_err rc = svc_films_get(ss->svc, &chosen, 1, &f);
    if (rc != FP_OK)
        return rc;
    json_t *film_json = view_film(&f);
    film_clear(&f);
    json_object_set_new(state, "rolled", film_json);
    sess__emit(ev, "rolled", json_pack("{s:O}", "film", film_json));
    return FP_OK;
}

fp_err sess_roll(sessions *ss, const char *id, json_t **out)
{
    return sess__update(ss, id, sess__edit_roll, NULL, out);
}

/* Removes every element equal to film_id (idkey: the object field holding
 * it, NULL for a list of ids); returns the index of the first, or -1. */
static long sess__drop_film(json_t *list, int64_t film_id, const char *idkey)
{
    long at = -1;
    for (size_t i = json_array_size(list); i-- > 0;) {
        json_t *e = json_array_get(list, i);
        json_t *id = idkey ? json_object_get(e, idkey) : e;
        if (json_integer_value(id) == film_id) {
            json_array_remove(list, i);
            at = (long)i;
        }
    }
    return at;
}

/* The service persons of the participants (ready ones only when ready_only). */
static svc_person *sess__people(sessions *ss, json_t *state, int ready_only, size_t *n,
                                fp_err *rc)
{
    json_t *parts = json_object_get(state, "participants");
    size_t total = json_array_size(parts);
    svc_person *people = fp_calloc(total ? total : 1, sizeof *people);
    size_t k = 0;
    *rc = FP_OK;
    for (size_t i = 0; i < total && *rc == FP_OK; i++) {
        json_t *p = json_array_get(parts, i);
        if (ready_only && strcmp(json_string_value(json_object_get(p, "status")), "ready") != 0)
            continue;
        *rc = sess__person(ss, p, 0, &people[k]);
        if (*rc == FP_OK)
            k++;
    }
    *n = k;
    return people;
}

/* Every participant's "recently_watched" again, with an event for each. */
static void sess__recent_all(sessions *ss, json_t *state, sess_events *ev)
{
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(state, "participants"), i, p)
    {
        json_t *before = json_incref(json_object_get(p, "recently_watched"));
        sess__recent(ss, p);
        if (!json_equal(before, json_object_get(p, "recently_watched")))
            sess__emit(ev, "participant", sess__part_view(p));
        json_decref(before);
    }
}

static fp_err sess__edit_watched(sessions *ss, json_t *state, void *ud, sess_events *ev)
{
    int64_t film_id = *(int64_t *)ud;
    if (strcmp(sess__status(state), "results") != 0)
        return FP_CONFLICT;
    if (!sess__in_results(state, film_id))
        return FP_NOT_FOUND;
    size_t k = 0;
    fp_err rc;
    svc_person *people = sess__people(ss, state, 1, &k, &rc);
    if (rc == FP_OK)
        rc = svc_watched_people(ss->svc, people, k, film_id, NULL);
    fp_free(people);
    if (rc != FP_OK)
        return rc;
    film f;
    rc = svc_films_get(ss->svc, &film_id, 1, &f);
    if (rc != FP_OK)
        return rc;
    sess__drop_film(json_object_get(state, "vetoed"), film_id, NULL);
    json_t *rolled = json_object_get(state, "rolled");
    if (rolled && json_integer_value(json_object_get(rolled, "id")) == film_id)
        json_object_set_new(state, "rolled", json_null());
    json_array_append_new(json_object_get(state, "watched"), json_integer(film_id));
    json_array_append_new(json_object_get(state, "watched_films"), view_film(&f));
    film_clear(&f);
    rc = sess__results_refresh(ss, state); /* out of the results; the page refills */
    if (rc != FP_OK)
        return rc;
    sess__emit(ev, "watched", json_pack("{s:I,s:I}", "film_id", (json_int_t)film_id, "pool",
                                        sess__pool_value(state)));
    sess__emit(ev, "session", json_null());
    sess__recent_all(ss, state, ev);
    return FP_OK;
}

fp_err sess_watched(sessions *ss, const char *id, int64_t film_id, json_t **out)
{
    return sess__update(ss, id, sess__edit_watched, &film_id, out);
}

/* "Put it back": out of every participant's watched set, back on their
 * stored lists and, when these results had it, back where it was. */
static fp_err sess__edit_unwatched(sessions *ss, json_t *state, void *ud, sess_events *ev)
{
    int64_t film_id = *(int64_t *)ud;
    if (strcmp(sess__status(state), "searching") == 0)
        return FP_CONFLICT;
    size_t k = 0;
    fp_err rc;
    svc_person *people = sess__people(ss, state, 0, &k, &rc);
    int *restored = fp_calloc(k ? k : 1, sizeof *restored);
    if (rc == FP_OK)
        rc = svc_unwatch_people(ss->svc, people, k, film_id, restored);
    int any = 0;
    for (size_t i = 0; i < k; i++)
        any |= restored[i];
    fp_free(restored);
    fp_free(people);
    if (rc != FP_OK)
        return rc;
    long was = sess__drop_film(json_object_get(state, "watched"), film_id, NULL);
    sess__drop_film(json_object_get(state, "watched_films"), film_id, "id");
    if (!any && was < 0)
        return FP_NOT_FOUND; /* nobody here had it marked watched */
    int back = json_is_object(json_object_get(state, "results")) && sess__in_search(state, film_id);
    if (back && (rc = sess__results_refresh(ss, state)) != FP_OK)
        return rc;
    sess__emit(ev, "unwatched", json_pack("{s:I,s:I}", "film_id", (json_int_t)film_id, "pool",
                                          sess__pool_value(state)));
    if (back)
        sess__emit(ev, "session", json_null()); /* the film is back in the results */
    sess__recent_all(ss, state, ev);
    return FP_OK;
}

fp_err sess_unwatched(sessions *ss, const char *id, int64_t film_id, json_t **out)
{
    return sess__update(ss, id, sess__edit_unwatched, &film_id, out);
}

/* ---- streams ------------------------------------------------------------ */

fp_err sess_stream_open(sessions *ss, const char *id, long long last_event_id, sess_wake_fn wake,
                        void *ud, sess_stream **out)
{
    *out = NULL;
    json_t *state = NULL;
    if (ss->stb) {
        /* The instance that ran the session's jobs may be gone: bring the
         * session in step with them here (and follow them from now on). */
        fp_err sync_rc = sess__update(ss, id, sess__edit_sync, NULL, NULL);
        if (sync_rc != FP_OK && sync_rc != FP_NOT_FOUND)
            fp_log(FP_LOG_WARN, "session_sync_failed", "{s:s}", "error", fp_err_code(sync_rc));
    }
    sess__lock(ss);
    fp_err rc = sess__load(ss, id, &state);
    if (rc != FP_OK) {
        sess__unlock(ss);
        return rc;
    }
    long long version = (long long)json_integer_value(json_object_get(state, "version"));
    json_t *snapshot = sess__view(ss, state); /* before hub_mu: it reads the catalogue */
    /* Events this instance's ring may not hold (they were made elsewhere). */
    json_t *shared = NULL;
    if (ss->stb && last_event_id >= 0 && last_event_id < version)
        shared = sess__shared_events(ss, id, last_event_id + 1, version);
    sess_stream *st = fp_calloc(1, sizeof *st);
    st->ss = ss;
    st->wake = wake;
    st->ud = ud;
    fp_buf_init(&st->out, SESS_STREAM_MAX);
    pthread_mutex_lock(&ss->hub_mu);
    sess_hub *h = ss->stopping ? NULL : sess__hub(ss, id, 1);
    if (!h || h->nstreams >= ss->cfg->max_streams_per_session) {
        pthread_mutex_unlock(&ss->hub_mu);
        sess__unlock(ss);
        json_decref(state);
        json_decref(snapshot);
        json_decref(shared);
        fp_buf_free(&st->out);
        fp_free(st);
        return h ? FP_RATE_LIMITED : FP_UNAVAILABLE;
    }
    st->hub = h;
    st->opened = time(NULL);
    /* Retry hint for EventSource, then what the client missed. */
    fp_err wr = fp_buf_append(&st->out, "retry: 2000\n\n", 13);
    (void)wr;
    int replayed = 0;
    if (last_event_id >= 0 && last_event_id <= version) {
        long long oldest = h->ring_n ? h->ring[h->ring_head].id : version + 1;
        if (last_event_id == version) {
            replayed = 1; /* up to date */
        } else if (!ss->stb && oldest <= last_event_id + 1) {
            /* One process: the ring holds every event it made. (With
             * several, it lacks those made elsewhere while nobody here
             * followed the session: their shared copies replay instead.) */
            for (size_t i = 0; i < h->ring_n; i++) {
                sess_event *e = &h->ring[(h->ring_head + i) % SESS_RING];
                if (e->id > last_event_id)
                    sess__stream_push(st, e->text, e->len);
            }
            replayed = 1;
        } else if (shared) {
            size_t i;
            json_t *t;
            json_array_foreach(shared, i, t)
                sess__stream_push(st, json_string_value(t), json_string_length(t));
            replayed = 1;
        }
    }
    st->last_id = version; /* what this stream was given; newer events follow */
    if (!ss->stb && h->last_id < version)
        h->last_id = version;
    if (!replayed) {
        size_t len = 0;
        char *text = sess__sse(version, "session", snapshot, &len);
        sess__stream_push(st, text, len);
        fp_free(text);
    }
    st->next = h->streams;
    h->streams = st;
    h->nstreams++;
    pthread_mutex_unlock(&ss->hub_mu);
    sess__unlock(ss);
    json_decref(state);
    json_decref(snapshot);
    json_decref(shared);
    if (ss->stb) {
        /* A change made between the load above and the attach was
         * announced on the bus before this stream could hear it: look
         * again, and pass on what is newer. */
        json_t *now = NULL;
        if (sess__load(ss, id, &now) == FP_OK) {
            long long v = (long long)json_integer_value(json_object_get(now, "version"));
            if (v > version)
                sess__deliver(ss, id, v);
        }
        json_decref(now);
    }
    *out = st;
    return FP_OK;
}

long sess_stream_read(sess_stream *st, char *buf, size_t max)
{
    sessions *ss = st->ss;
    long n = 0;
    pthread_mutex_lock(&ss->hub_mu);
    size_t avail = st->out.len - st->off;
    if (avail > 0) {
        n = (long)(avail < max ? avail : max);
        memcpy(buf, st->out.data + st->off, (size_t)n);
        st->off += (size_t)n;
        size_t counted = (size_t)n < st->held ? (size_t)n : st->held;
        st->held -= counted;
        ss->stream_bytes -= counted;
        if (st->off == st->out.len) {
            fp_buf_reset(&st->out);
            st->off = 0;
        }
    } else if (st->closed) {
        n = -1;
    }
    pthread_mutex_unlock(&ss->hub_mu);
    return n;
}

void sess_stream_arm(sess_stream *st)
{
    sessions *ss = st->ss;
    pthread_mutex_lock(&ss->hub_mu);
    if (st->out.len > st->off || st->closed)
        st->wake(st->ud);
    else
        st->armed = 1;
    pthread_mutex_unlock(&ss->hub_mu);
}

void sess_stream_close(sess_stream *st)
{
    if (!st)
        return;
    sessions *ss = st->ss;
    pthread_mutex_lock(&ss->hub_mu);
    for (sess_stream **pp = &st->hub->streams; *pp; pp = &(*pp)->next)
        if (*pp == st) {
            *pp = st->next;
            st->hub->nstreams--;
            break;
        }
    ss->stream_bytes -= st->held;
    st->held = 0;
    st->hub->touched = time(NULL);
    pthread_mutex_unlock(&ss->hub_mu);
    fp_buf_free(&st->out);
    fp_free(st);
}

/* ---- keep-alive and hub expiry ----------------------------------------- */

static void sess__hub_free(sess_hub *h)
{
    for (size_t i = 0; i < h->ring_n; i++)
        fp_free(h->ring[(h->ring_head + i) % SESS_RING].text);
    fp_free(h);
}

static void *sess__ticker(void *arg)
{
    sessions *ss = arg;
    time_t last_keepalive = time(NULL);
    pthread_mutex_lock(&ss->hub_mu);
    while (!ss->stopping) {
        /* Every second: streams past their life end within a second of it;
         * keep-alives go every SESS_KEEPALIVE_S. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&ss->tick_cv, &ss->hub_mu, &ts);
        if (ss->stopping)
            break;
        time_t now = time(NULL);
        int keepalive = now - last_keepalive >= SESS_KEEPALIVE_S;
        if (keepalive)
            last_keepalive = now;
        for (size_t b = 0; b < SESS_HUB_BUCKETS; b++)
            for (sess_hub **pp = &ss->hubs[b]; *pp;) {
                sess_hub *h = *pp;
                for (sess_stream *st = h->streams; st; st = st->next) {
                    if (st->closed)
                        continue;
                    if (now - st->opened >= ss->cfg->stream_max_life_s) {
                        /* End of a stream's life: the browser reconnects at
                         * once with Last-Event-ID and misses nothing. */
                        sess__stream_push(st, SESS_RECONNECT, sizeof SESS_RECONNECT - 1);
                        st->closed = 1;
                    } else if (keepalive) {
                        sess__stream_push(st, ": keep-alive\n\n", 14);
                    }
                }
                if (!h->streams && now - h->touched > (h->ttl_s ? h->ttl_s : ss->cfg->session_ttl_s)) {
                    *pp = h->next;
                    sess__addr_release(ss, h->creator);
                    ss->bytes -= h->doc_bytes + h->ring_bytes;
                    ss->nhubs--;
                    sess__hub_free(h);
                } else {
                    pp = &h->next;
                }
            }
    }
    pthread_mutex_unlock(&ss->hub_mu);
    return NULL;
}

/* ---- lifecycle ---------------------------------------------------------- */

fp_err sessions_open(const fp_config *cfg, service *svc, sessions **out)
{
    *out = NULL;
    sessions *ss = fp_calloc(1, sizeof *ss);
    ss->cfg = cfg;
    ss->svc = svc;
    pthread_mutex_init(&ss->mu, NULL);
    pthread_mutex_init(&ss->jobs_mu, NULL);
    pthread_mutex_init(&ss->hub_mu, NULL);
    pthread_cond_init(&ss->tick_cv, NULL);
    /* Sessions are never evicted to make room: the in-process cache gets
     * twice sessions-max-mb (sessions.c refuses changes past the cap
     * itself; the margin keeps one full shard from refusing first). */
    /* With shared state, documents and events live there (sealed) and this
     * cache keeps only the per-browser session lists; without it (one
     * process, or a Redis cache with FILMPICKER_STATE=inproc) everything
     * stays in this process, never in plain text on a Redis. */
    int shared = svc_shared(svc, NULL, NULL, NULL);
    ss->cb = cache_backend_for(cfg->cache);
    char *url = !shared || ss->cb == &cache_backend_inproc
                    ? fp_printf("inproc?max-mb=%ld&evict=no", cfg->sessions_max_mb * 2 + 16)
                    : fp_strdup(cfg->cache);
    ss->cb = cache_backend_for(url);
    fp_err rc = ss->cb ? ss->cb->open(url, &ss->ca) : FP_INVALID;
    fp_free(url);
    if (rc == FP_OK && pthread_create(&ss->ticker, NULL, sess__ticker, ss) != 0)
        rc = FP_INTERNAL;
    if (rc != FP_OK) {
        sessions_free(&ss);
        return rc;
    }
    ss->ticker_started = 1;
    svc_set_job_listener(svc, sess__job_changed, ss);
    const state_backend *sb = NULL;
    state_handle *sst = NULL;
    const char *instance = NULL;
    if (svc_shared(svc, &sb, &sst, &instance)) { /* one process: ss->stb stays NULL */
        ss->stb = sb;
        ss->sts = sst;
        ss->instance = instance;
        svc_set_session_bus(svc, sess__bus, ss);
    }
    *out = ss;
    return FP_OK;
}

void sessions_stats(sessions *ss, size_t *live, size_t *bytes)
{
    *live = *bytes = 0;
    if (!ss)
        return;
    pthread_mutex_lock(&ss->hub_mu);
    *live = ss->nhubs;
    *bytes = ss->bytes;
    pthread_mutex_unlock(&ss->hub_mu);
}

void sessions_close_streams(sessions *ss)
{
    if (!ss)
        return;
    pthread_mutex_lock(&ss->hub_mu);
    ss->stopping = 1;
    for (size_t b = 0; b < SESS_HUB_BUCKETS; b++)
        for (sess_hub *h = ss->hubs[b]; h; h = h->next)
            for (sess_stream *st = h->streams; st; st = st->next) {
                st->closed = 1;
                if (st->armed) {
                    st->armed = 0;
                    st->wake(st->ud);
                }
            }
    pthread_cond_broadcast(&ss->tick_cv);
    pthread_mutex_unlock(&ss->hub_mu);
}

void sessions_free(sessions **ssp)
{
    sessions *ss = *ssp;
    if (!ss)
        return;
    /* The service was closed first (its threads joined), so none of its
     * callbacks can reach ss any more. */
    sessions_close_streams(ss);
    if (ss->ticker_started)
        pthread_join(ss->ticker, NULL);
    for (size_t b = 0; b < SESS_HUB_BUCKETS; b++)
        while (ss->hubs[b]) {
            sess_hub *h = ss->hubs[b];
            ss->hubs[b] = h->next;
            sess__hub_free(h); /* streams were closed by their connections */
        }
    for (size_t b = 0; b < SESS_ADDR_BUCKETS; b++)
        while (ss->addrs[b]) {
            sess_addr *a = ss->addrs[b];
            ss->addrs[b] = a->next;
            fp_free(a);
        }
    if (ss->ca)
        ss->cb->close(ss->ca);
    pthread_cond_destroy(&ss->tick_cv);
    pthread_mutex_destroy(&ss->hub_mu);
    pthread_mutex_destroy(&ss->mu);
    pthread_mutex_destroy(&ss->jobs_mu);
    fp_free(ss);
    *ssp = NULL;
}

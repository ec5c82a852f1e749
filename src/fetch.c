/*
 * fetch.c - one thread, one curl multi handle, a per-host FIFO.
 *
 * Requests move through four places, all but the first touched only by the
 * fetch thread: `incoming` (filled by fetch_submit under the mutex), `ready`
 * (waiting for a free slot on their host), the multi handle (running), and
 * `delayed` (waiting out a retry backoff). A request leaves through its
 * callback exactly once, with an answer, an error, or FP_UNAVAILABLE at
 * shutdown. The multi handle keeps connections alive between requests, so a
 * 36-page watchlist costs at most max_per_host TCP connections.
 */
#include "fetch.h"

#include <curl/curl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/mem.h"
#include "state/state.h"

/* How long a full shared host limit is left before asking again; how long a
 * slot lasts unless renewed, and how often the fetch thread renews the slots
 * of its running requests: a worker that dies frees its slots within
 * FETCH_SEM_TTL_MS. */
#define FETCH_SEM_RETRY_MS 5
#define FETCH_SEM_TTL_MS 4000
#define FETCH_SEM_RENEW_MS 1000
/* After the shared limit could not be asked (Redis away), it is left alone
 * this long: requests go on under this client's own limit rather than
 * each one waiting for a failing server. */
#define FETCH_SEM_BACKOFF_MS 3000

typedef struct fetch_req {
    struct fetch_req *next;
    char *url;
    char *host;
    fetch_done_fn done;
    fetch_retry_fn retry;
    void *ud;
    CURL *easy;
    fp_buf body;
    int attempts;
    long long due_ms;
    int sem_held;       /* holds a slot of the shared host limit */
    char sem_token[33]; /* its holder token */
} fetch_req;

typedef struct fetch_host {
    struct fetch_host *next;
    char *name;
    long active;
    char *sem_name;         /* the shared limit's name, when there is one */
    long long sem_retry_ms; /* full: not asked again before this */
} fetch_host;

struct fetch_client {
    fetch_options opt;
    char *user_agent;
    CURLM *multi;
    pthread_t thread;
    int thread_started;
    pthread_mutex_t mu;
    fetch_req *incoming, *incoming_tail; /* under mu */
    int stop;                            /* under mu */
    atomic_int draining;                 /* fetch_client_drain: no more retries */
    /* fetch thread only: */
    fetch_req *ready, *ready_tail;
    fetch_req *delayed;
    fetch_req *running; /* in the multi handle */
    fetch_host *hosts;
    atomic_ullong n_requests, n_retries, n_in_flight, n_queued, n_sem_waits, n_sem_failures;
    int sem_blocked; /* fetch thread: a host waits for a shared slot */
    long long sem_renewed_ms; /* fetch thread: the last renewal of the running slots */
    int sem_warned;  /* fetch thread: the shared limit's failure was logged */
    long long sem_down_until_ms; /* fetch thread: the shared limit is not asked before this */
};

static long long fetch__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *fetch__host_of(const char *url)
{
    CURLU *u = curl_url();
    char *host = NULL, *port = NULL, *out = NULL;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
        if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK)
            out = fp_printf("%s:%s", host, port);
        else
            out = fp_strdup(host);
    }
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return out;
}

static fetch_host *fetch__host(fetch_client *c, const char *name)
{
    for (fetch_host *h = c->hosts; h; h = h->next)
        if (strcmp(h->name, name) == 0)
            return h;
    fetch_host *h = fp_calloc(1, sizeof *h);
    h->name = fp_strdup(name);
    if (c->opt.sem)
        h->sem_name = fp_printf("%s%s", c->opt.sem_prefix ? c->opt.sem_prefix : "sem:host:", name);
    h->next = c->hosts;
    c->hosts = h;
    return h;
}

static size_t fetch__write(char *data, size_t size, size_t n, void *ud)
{
    fetch_req *r = ud;
    if (fp_buf_append(&r->body, data, size * n) != FP_OK)
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    return size * n;
}

static void fetch__req_free(fetch_req *r)
{
    if (r->easy)
        curl_easy_cleanup(r->easy);
    fp_buf_free(&r->body);
    fp_free(r->url);
    fp_free(r->host);
    fp_free(r);
}

/* Hands the outcome to the caller and frees the request. */
static void fetch__complete(fetch_req *r, fp_err err, long status, long retry_after_ms,
                            int challenge)
{
    fetch_response *resp = fp_calloc(1, sizeof *resp);
    resp->err = err;
    resp->status = status;
    resp->body = fp_buf_steal(&r->body, &resp->len);
    resp->retry_after_ms = retry_after_ms;
    resp->challenge = challenge;
    resp->attempts = r->attempts;
    resp->url = r->url;
    r->url = NULL;
    fetch_done_fn done = r->done;
    void *ud = r->ud;
    fetch__req_free(r);
    done(resp, ud);
}

static void fetch__fail_list(fetch_req *r)
{
    while (r) {
        fetch_req *next = r->next;
        fetch__complete(r, FP_UNAVAILABLE, 0, -1, 0);
        r = next;
    }
}

static fp_err fetch__start(fetch_client *c, fetch_req *r)
{
    if (!r->easy) {
        r->easy = curl_easy_init();
        if (!r->easy)
            return FP_NOMEM;
        CURL *e = r->easy;
        curl_easy_setopt(e, CURLOPT_URL, r->url);
        curl_easy_setopt(e, CURLOPT_PRIVATE, r);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, fetch__write);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
        curl_easy_setopt(e, CURLOPT_USERAGENT, c->user_agent);
        curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, ""); /* every encoding curl decodes */
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, c->opt.timeout_ms);
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                         c->opt.timeout_ms < 5000 ? c->opt.timeout_ms : 5000L);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    }
    r->attempts++;
    fp_buf_reset(&r->body);
    if (curl_multi_add_handle(c->multi, r->easy) != CURLM_OK)
        return FP_INTERNAL;
    r->next = c->running;
    c->running = r;
    atomic_fetch_add(&c->n_requests, 1);
    atomic_fetch_add(&c->n_in_flight, 1);
    return FP_OK;
}

/* The shared host limit: 1 when r may start (it holds a slot, or there is
 * no shared limit, or it cannot be asked: then this client's own count
 * still holds), 0 when every slot is held elsewhere. Fetch thread only. */
static int fetch__sem_take(fetch_client *c, fetch_host *h, fetch_req *r)
{
    if (!c->opt.sem || r->sem_held)
        return 1;
    long long now = fetch__now_ms();
    if (now < c->sem_down_until_ms)
        return 1; /* away a moment ago: this client's own limit holds */
    if (now < h->sem_retry_ms) {
        c->sem_blocked = 1;
        return 0;
    }
    if (!r->sem_token[0]) {
        unsigned char raw[16];
        randombytes_buf(raw, sizeof raw);
        sodium_bin2hex(r->sem_token, sizeof r->sem_token, raw, sizeof raw);
    }
    fp_err rc = c->opt.sem->sem_take(c->opt.sem_state, h->sem_name, c->opt.max_per_host,
                                     r->sem_token, FETCH_SEM_TTL_MS);
    if (rc == FP_OK) {
        r->sem_held = 1;
        return 1;
    }
    if (rc == FP_CONFLICT) {
        h->sem_retry_ms = now + FETCH_SEM_RETRY_MS;
        c->sem_blocked = 1;
        atomic_fetch_add(&c->n_sem_waits, 1);
        return 0;
    }
    atomic_fetch_add(&c->n_sem_failures, 1);
    c->sem_down_until_ms = now + FETCH_SEM_BACKOFF_MS;
    if (!c->sem_warned) {
        c->sem_warned = 1;
        fp_log(FP_LOG_WARN, "fetch_host_limit_unshared", "{s:s,s:s}", "host", h->name, "error",
               fp_err_code(rc));
    }
    return 1;
}

/* Gives r's shared slot back. Fetch thread only. */
static void fetch__sem_drop(fetch_client *c, fetch_req *r)
{
    if (!r->sem_held)
        return;
    r->sem_held = 0;
    fetch_host *h = fetch__host(c, r->host);
    h->sem_retry_ms = 0; /* a slot is free now: ask again at once */
    if (fetch__now_ms() < c->sem_down_until_ms)
        return; /* away: the slot expires by itself */
    if (c->opt.sem->sem_drop(c->opt.sem_state, h->sem_name, r->sem_token) != FP_OK) {
        atomic_fetch_add(&c->n_sem_failures, 1); /* it expires by itself */
        c->sem_down_until_ms = fetch__now_ms() + FETCH_SEM_BACKOFF_MS;
    }
}

/* Keeps the shared slots of the running requests. Fetch thread only. */
static void fetch__sem_renew(fetch_client *c)
{
    long long now = fetch__now_ms();
    if (!c->opt.sem || now - c->sem_renewed_ms < FETCH_SEM_RENEW_MS || now < c->sem_down_until_ms)
        return;
    c->sem_renewed_ms = now;
    for (fetch_req *r = c->running; r && now >= c->sem_down_until_ms; r = r->next) {
        if (!r->sem_held)
            continue;
        const char *name = fetch__host(c, r->host)->sem_name;
        fp_err rc = c->opt.sem->sem_renew(c->opt.sem_state, name, r->sem_token, FETCH_SEM_TTL_MS);
        if (rc == FP_CONFLICT) {
            /* The slot lapsed (Redis restarted, or a renewal came too
             * late): take one again if there is one, so that the others
             * count this request. It runs on either way. */
            rc = c->opt.sem->sem_take(c->opt.sem_state, name, c->opt.max_per_host, r->sem_token,
                                      FETCH_SEM_TTL_MS);
            if (rc == FP_CONFLICT) {
                atomic_fetch_add(&c->n_sem_waits, 1);
                rc = FP_OK;
            }
        }
        if (rc != FP_OK) {
            atomic_fetch_add(&c->n_sem_failures, 1);
            c->sem_down_until_ms = now + FETCH_SEM_BACKOFF_MS;
        }
    }
}

/* Starts queued requests whose host has a free slot, in FIFO order. */
static void fetch__pump(fetch_client *c)
{
    fetch_req **pp = &c->ready, *prev = NULL;
    while (*pp) {
        fetch_req *r = *pp;
        fetch_host *h = fetch__host(c, r->host);
        if (h->active >= c->opt.max_per_host || !fetch__sem_take(c, h, r)) {
            prev = r;
            pp = &r->next;
            continue;
        }
        *pp = r->next;
        if (c->ready_tail == r)
            c->ready_tail = prev;
        r->next = NULL;
        atomic_fetch_sub(&c->n_queued, 1);
        fp_err rc = fetch__start(c, r);
        if (rc != FP_OK) {
            fetch__sem_drop(c, r);
            fetch__complete(r, rc, 0, -1, 0);
            continue;
        }
        h->active++;
    }
}

static void fetch__enqueue_ready(fetch_client *c, fetch_req *r)
{
    r->next = NULL;
    if (c->ready_tail)
        c->ready_tail->next = r;
    else
        c->ready = r;
    c->ready_tail = r;
    atomic_fetch_add(&c->n_queued, 1);
}

static long fetch__retry_after(CURL *e)
{
    struct curl_header *h = NULL;
    if (curl_easy_header(e, "Retry-After", 0, CURLH_HEADER, -1, &h) != CURLHE_OK || !h)
        return -1;
    char *end = NULL;
    long secs = strtol(h->value, &end, 10);
    if (end != h->value && *end == '\0' && secs >= 0)
        return secs > 86400 ? 86400000L : secs * 1000;
    time_t when = curl_getdate(h->value, NULL);
    if (when < 0)
        return -1;
    time_t now = time(NULL);
    return when > now ? (long)(when - now) * 1000 : 0;
}

static int fetch__is_challenge(CURL *e)
{
    struct curl_header *h = NULL;
    return curl_easy_header(e, "cf-mitigated", 0, CURLH_HEADER, -1, &h) == CURLHE_OK && h &&
           strcasecmp(h->value, "challenge") == 0;
}

static void fetch__finished(fetch_client *c, CURL *e, CURLcode result)
{
    fetch_req *r = NULL;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&r);
    curl_multi_remove_handle(c->multi, e);
    for (fetch_req **pp = &c->running; *pp; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    r->next = NULL;
    atomic_fetch_sub(&c->n_in_flight, 1);
    fetch__host(c, r->host)->active--;
    fetch__sem_drop(c, r);

    fp_err err = FP_OK;
    long status = 0, retry_after = -1;
    int challenge = 0, retryable = 0;
    if (result == CURLE_OK) {
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
        retry_after = fetch__retry_after(e);
        challenge = fetch__is_challenge(e);
        retryable = status == 429 || (status >= 500 && status <= 599 && status != 501);
    } else if (result == CURLE_WRITE_ERROR) {
        err = FP_TOO_LARGE;
    } else {
        err = result == CURLE_OPERATION_TIMEDOUT ? FP_TIMEOUT : FP_UPSTREAM;
        retryable = 1;
        fp_log(FP_LOG_WARN, "fetch_error", "{s:s,s:s,s:i}", "host", r->host, "error",
               curl_easy_strerror(result), "attempt", r->attempts);
    }
    if (retryable && r->attempts <= c->opt.retries && !atomic_load(&c->draining)) {
        long delay = c->opt.backoff_ms;
        for (int i = 1; i < r->attempts && delay < 3600000L; i++)
            delay *= 2;
        delay = delay / 2 + (delay > 0 ? (long)randombytes_uniform((uint32_t)delay + 1) : 0);
        if (retry_after >= 0) {
            long ra = retry_after < c->opt.retry_after_max_ms ? retry_after
                                                              : c->opt.retry_after_max_ms;
            if (ra > delay)
                delay = ra;
        }
        r->due_ms = fetch__now_ms() + delay;
        r->next = c->delayed;
        c->delayed = r;
        atomic_fetch_add(&c->n_retries, 1);
        if (r->retry) {
            fp_err why = err != FP_OK ? err : status == 429 ? FP_UPSTREAM_LIMITED : FP_UPSTREAM;
            r->retry(r->ud, why, status, r->attempts, delay);
        }
        return;
    }
    fetch__complete(r, err, status, retry_after, challenge);
}

static void *fetch__thread(void *arg)
{
    fetch_client *c = arg;
    for (;;) {
        pthread_mutex_lock(&c->mu);
        fetch_req *in = c->incoming;
        c->incoming = c->incoming_tail = NULL;
        int stop = c->stop;
        pthread_mutex_unlock(&c->mu);
        while (in) {
            fetch_req *next = in->next;
            fetch__enqueue_ready(c, in);
            in = next;
        }
        if (stop)
            break;

        long long now = fetch__now_ms(), next_due = -1;
        int draining = atomic_load(&c->draining);
        for (fetch_req **pp = &c->delayed; *pp;) {
            fetch_req *r = *pp;
            if (draining) { /* a retry waiting out its backoff gives up now */
                *pp = r->next;
                fetch__complete(r, FP_UNAVAILABLE, 0, -1, 0);
            } else if (r->due_ms <= now) {
                *pp = r->next;
                fetch__enqueue_ready(c, r);
            } else {
                if (next_due < 0 || r->due_ms < next_due)
                    next_due = r->due_ms;
                pp = &r->next;
            }
        }
        c->sem_blocked = 0;
        fetch__sem_renew(c);
        fetch__pump(c);

        int running = 0;
        curl_multi_perform(c->multi, &running);
        CURLMsg *msg;
        int left;
        int finished = 0;
        while ((msg = curl_multi_info_read(c->multi, &left)))
            if (msg->msg == CURLMSG_DONE) {
                fetch__finished(c, msg->easy_handle, msg->data.result);
                finished = 1;
            }
        if (finished)
            continue; /* slots were freed: start the next requests at once */

        int wait = 1000;
        if (next_due >= 0) {
            long long d = next_due - fetch__now_ms();
            wait = d < 0 ? 0 : (d < wait ? (int)d : wait);
        }
        if (c->sem_blocked && wait > FETCH_SEM_RETRY_MS)
            wait = FETCH_SEM_RETRY_MS;
        if (c->opt.sem && c->running && wait > FETCH_SEM_RENEW_MS)
            wait = FETCH_SEM_RENEW_MS;
        curl_multi_poll(c->multi, NULL, 0, wait, NULL);
    }

    /* Shutdown: everything still here completes with FP_UNAVAILABLE. */
    for (fetch_req *r = c->running; r; r = r->next) {
        curl_multi_remove_handle(c->multi, r->easy);
        fetch__sem_drop(c, r);
    }
    fetch__fail_list(c->running);
    c->running = NULL;
    fetch__fail_list(c->ready);
    fetch__fail_list(c->delayed);
    c->ready = c->ready_tail = c->delayed = NULL;
    return NULL;
}

static void fetch__global_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

fp_err fetch_client_new(const fetch_options *opt, fetch_client **out)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    *out = NULL;
    if (opt->max_per_host < 1)
        return FP_INVALID;
    fetch_client *c = fp_calloc(1, sizeof *c);
    c->opt = *opt;
    c->user_agent = fp_strdup(opt->user_agent ? opt->user_agent : "FilmPicker");
    c->opt.user_agent = c->user_agent;
    if (sodium_init() < 0) {
        fp_free(c->user_agent);
        fp_free(c);
        return FP_CRYPTO;
    }
    pthread_once(&once, fetch__global_init);
    c->multi = curl_multi_init();
    if (!c->multi) {
        fp_free(c->user_agent);
        fp_free(c);
        return FP_NOMEM;
    }
    curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, opt->max_per_host);
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, opt->max_per_host * 4 + 4);
    pthread_mutex_init(&c->mu, NULL);
    if (pthread_create(&c->thread, NULL, fetch__thread, c) != 0) {
        curl_multi_cleanup(c->multi);
        pthread_mutex_destroy(&c->mu);
        fp_free(c->user_agent);
        fp_free(c);
        return FP_INTERNAL;
    }
    c->thread_started = 1;
    *out = c;
    return FP_OK;
}

void fetch_client_drain(fetch_client *c)
{
    if (!c)
        return;
    atomic_store(&c->draining, 1);
    curl_multi_wakeup(c->multi);
}

void fetch_client_free(fetch_client **cp)
{
    fetch_client *c = *cp;
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    c->stop = 1;
    pthread_mutex_unlock(&c->mu);
    curl_multi_wakeup(c->multi);
    if (c->thread_started)
        pthread_join(c->thread, NULL);
    /* Submissions that raced with the stop. */
    fetch__fail_list(c->incoming);
    while (c->hosts) {
        fetch_host *h = c->hosts;
        c->hosts = h->next;
        fp_free(h->sem_name);
        fp_free(h->name);
        fp_free(h);
    }
    curl_multi_cleanup(c->multi);
    pthread_mutex_destroy(&c->mu);
    fp_free(c->user_agent);
    fp_free(c);
    *cp = NULL;
}

static fp_err fetch__submit(fetch_client *c, const char *url, fetch_done_fn done,
                           fetch_retry_fn retry, void *ud)
{
    char *host = fetch__host_of(url);
    if (!host)
        return FP_INVALID;
    fetch_req *r = fp_calloc(1, sizeof *r);
    r->url = fp_strdup(url);
    r->host = host;
    r->done = done;
    r->retry = retry;
    r->ud = ud;
    fp_buf_init(&r->body, c->opt.max_body);
    pthread_mutex_lock(&c->mu);
    if (c->stop) {
        pthread_mutex_unlock(&c->mu);
        fetch__req_free(r);
        return FP_UNAVAILABLE;
    }
    if (c->incoming_tail)
        c->incoming_tail->next = r;
    else
        c->incoming = r;
    c->incoming_tail = r;
    pthread_mutex_unlock(&c->mu);
    curl_multi_wakeup(c->multi);
    return FP_OK;
}

fp_err fetch_submit(fetch_client *c, const char *url, fetch_done_fn done, void *ud)
{
    return fetch__submit(c, url, done, NULL, ud);
}

void fetch_response_free(fetch_response **rp)
{
    fetch_response *r = *rp;
    if (!r)
        return;
    fp_free(r->body);
    fp_free(r->url);
    fp_free(r);
    *rp = NULL;
}

void fetch_get_stats(fetch_client *c, fetch_stats *out)
{
    out->requests = atomic_load(&c->n_requests);
    out->retries = atomic_load(&c->n_retries);
    out->in_flight = atomic_load(&c->n_in_flight);
    out->queued = atomic_load(&c->n_queued);
    out->sem_waits = atomic_load(&c->n_sem_waits);
    out->sem_failures = atomic_load(&c->n_sem_failures);
}

/* ---- batches ---------------------------------------------------------- */

typedef struct fetch_batch_item {
    struct fetch_batch_item *next;
    fetch_response *resp;
    int tag;
} fetch_batch_item;

typedef struct fetch_batch_ctx {
    fetch_batch *batch;
    int tag;
} fetch_batch_ctx;

struct fetch_batch {
    fetch_client *client;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    fetch_batch_item *head, *tail;
    size_t outstanding; /* added and not yet returned by next() */
    fetch_retry_fn on_retry;
    void *on_retry_ud;
    /* the latest retry not yet told (told by next(), on the waiting thread) */
    int retry_pending;
    fp_err retry_err;
    long retry_status, retry_delay;
    int retry_attempt;
};

fetch_batch *fetch_batch_new(fetch_client *c)
{
    fetch_batch *b = fp_calloc(1, sizeof *b);
    b->client = c;
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    return b;
}

static void fetch__batch_done(fetch_response *resp, void *ud)
{
    fetch_batch_ctx *ctx = ud;
    fetch_batch *b = ctx->batch;
    fetch_batch_item *it = fp_calloc(1, sizeof *it);
    it->resp = resp;
    it->tag = ctx->tag;
    fp_free(ctx);
    pthread_mutex_lock(&b->mu);
    if (b->tail)
        b->tail->next = it;
    else
        b->head = it;
    b->tail = it;
    pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

void fetch_batch_on_retry(fetch_batch *b, fetch_retry_fn fn, void *ud)
{
    b->on_retry = fn;
    b->on_retry_ud = ud;
}

/* On the fetch thread: note it and wake the waiter, who tells on_retry. */
static void fetch__batch_retry(void *ud, fp_err err, long status, int attempt, long delay_ms)
{
    fetch_batch *b = ((fetch_batch_ctx *)ud)->batch;
    pthread_mutex_lock(&b->mu);
    b->retry_pending = 1;
    b->retry_err = err;
    b->retry_status = status;
    b->retry_attempt = attempt;
    b->retry_delay = delay_ms;
    pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

fp_err fetch_batch_add(fetch_batch *b, const char *url, int tag)
{
    fetch_batch_ctx *ctx = fp_calloc(1, sizeof *ctx);
    ctx->batch = b;
    ctx->tag = tag;
    pthread_mutex_lock(&b->mu);
    b->outstanding++;
    pthread_mutex_unlock(&b->mu);
    fp_err rc = fetch__submit(b->client, url, fetch__batch_done,
                              b->on_retry ? fetch__batch_retry : NULL, ctx);
    if (rc != FP_OK) {
        fp_free(ctx);
        pthread_mutex_lock(&b->mu);
        b->outstanding--;
        pthread_mutex_unlock(&b->mu);
    }
    return rc;
}

fetch_response *fetch_batch_next(fetch_batch *b, int *tag)
{
    pthread_mutex_lock(&b->mu);
    for (;;) {
        while (!b->head && b->outstanding > 0 && !b->retry_pending)
            pthread_cond_wait(&b->cv, &b->mu);
        if (!b->retry_pending)
            break;
        fp_err err = b->retry_err;
        long status = b->retry_status, delay = b->retry_delay;
        int attempt = b->retry_attempt;
        b->retry_pending = 0;
        pthread_mutex_unlock(&b->mu);
        b->on_retry(b->on_retry_ud, err, status, attempt, delay);
        pthread_mutex_lock(&b->mu);
    }
    fetch_batch_item *it = b->head;
    fetch_response *resp = NULL;
    if (it) {
        b->head = it->next;
        if (!b->head)
            b->tail = NULL;
        b->outstanding--;
        resp = it->resp;
        if (tag)
            *tag = it->tag;
        fp_free(it);
    }
    pthread_mutex_unlock(&b->mu);
    return resp;
}

void fetch_batch_free(fetch_batch **bp)
{
    fetch_batch *b = *bp;
    if (!b)
        return;
    fetch_response *r;
    while ((r = fetch_batch_next(b, NULL)))
        fetch_response_free(&r);
    pthread_cond_destroy(&b->cv);
    pthread_mutex_destroy(&b->mu);
    fp_free(b);
    *bp = NULL;
}

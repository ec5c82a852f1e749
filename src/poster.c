/*
 * poster.c - posters fetched once, kept in the cache, served from our origin.
 *
 * Cache entries ("poster:<film id>:<path>", so a newer image of the film
 * is a new entry) are one kind byte and the image: kind 0 means the image
 * host answered 404/410 (kept missing_ttl_s), 1 JPEG, 2 PNG, 3 WebP; kind 4
 * and an error byte remember a failed fetch for POSTER_FAILED_TTL_S, so a
 * failing host is not asked again by every request. In-flight fetches are a
 * short list under one mutex, never held while fetching, touching the cache
 * or calling back; at most POSTER_MAX_FLIGHTS at once (more: 503).
 */
#include "poster.h"

#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"

static const char *const poster__types[] = {NULL, "image/jpeg", "image/png", "image/webp"};

#define POSTER_KIND_FAILED 4
#define POSTER_FAILED_TTL_S 60L
#define POSTER_MAX_FLIGHTS 64

typedef struct poster_waiter {
    struct poster_waiter *next;
    poster_done_fn done;
    void *ud;
} poster_waiter;

typedef struct poster_flight {
    struct poster_flight *next;
    poster_proxy *p;
    int64_t film_id;
    char *key;
    poster_waiter *waiters;
} poster_flight;

struct poster_proxy {
    poster_config cfg;
    char *image_base;
    pthread_mutex_t mu;
    poster_flight *flights; /* under mu */
    size_t nflights;        /* under mu */
    int aborted;            /* under mu */
};

const char *poster_image_type(const uint8_t *d, size_t n)
{
    if (n >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF)
        return poster__types[1];
    if (n >= 8 && memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0)
        return poster__types[2];
    if (n >= 12 && memcmp(d, "RIFF", 4) == 0 && memcmp(d + 8, "WEBP", 4) == 0)
        return poster__types[3];
    return NULL;
}

static int poster__kind(const char *type)
{
    for (int k = 1; k < 4; k++)
        if (type == poster__types[k])
            return k;
    return 0;
}

fp_err poster_proxy_new(const poster_config *cfg, poster_proxy **out)
{
    if (!cfg->image_base || !cfg->fetch || !cfg->cb || !cfg->ca || !cfg->lookup)
        return FP_INVALID;
    poster_proxy *p = fp_calloc(1, sizeof *p);
    p->cfg = *cfg;
    p->image_base = fp_strdup(cfg->image_base); /* config.c took off any trailing '/' */
    p->cfg.image_base = p->image_base;
    pthread_mutex_init(&p->mu, NULL);
    *out = p;
    return FP_OK;
}

void poster_proxy_free(poster_proxy **pp)
{
    poster_proxy *p = *pp;
    if (!p)
        return;
    /* The fetch client is gone, so every flight has completed. */
    pthread_mutex_destroy(&p->mu);
    fp_free(p->image_base);
    fp_free(p);
    *pp = NULL;
}

static char *poster__key(int64_t film_id, const char *path)
{
    return fp_printf("poster:%" PRId64 ":%s", film_id, path);
}

/* Answers from the cache; 0 when it has nothing for the key. */
static int poster__from_cache(poster_proxy *p, const char *key, poster_done_fn done, void *ud)
{
    uint8_t *val = NULL;
    size_t vlen = 0;
    if (p->cfg.cb->get(p->cfg.ca, key, strlen(key), &val, &vlen) != FP_OK)
        return 0;
    int kind = vlen >= 1 ? val[0] : -1;
    if (kind == 0 && vlen == 1) {
        done(ud, FP_NOT_FOUND, NULL);
    } else if (kind == POSTER_KIND_FAILED && vlen == 2 && val[1] < FP_ERR__COUNT) {
        done(ud, (fp_err)val[1], NULL);
    } else if (kind >= 1 && kind <= 3 && vlen > 1 &&
               poster_image_type(val + 1, vlen - 1) == poster__types[kind]) {
        poster_image img = {val + 1, vlen - 1, poster__types[kind]};
        done(ud, FP_OK, &img);
    } else { /* damaged: a miss */
        fp_free(val);
        p->cfg.cb->del(p->cfg.ca, key, strlen(key));
        return 0;
    }
    fp_free(val);
    return 1;
}

static void poster__remember(poster_proxy *p, const char *key, int kind, const uint8_t *data,
                             size_t len)
{
    uint8_t *val = fp_malloc(len + 1);
    val[0] = (uint8_t)kind;
    if (len)
        memcpy(val + 1, data, len);
    long ttl = kind == 0 ? p->cfg.missing_ttl_s
               : kind == POSTER_KIND_FAILED ? POSTER_FAILED_TTL_S
                                            : p->cfg.ttl_s;
    fp_err rc = p->cfg.cb->set(p->cfg.ca, key, strlen(key), val, len + 1, ttl);
    if (rc != FP_OK)
        fp_log(FP_LOG_WARN, "poster_cache_failed", "{s:s}", "error", fp_err_code(rc));
    fp_free(val);
}

/* Ends a flight: every waiter gets the same answer. */
static void poster__land(poster_flight *f, fp_err rc, const poster_image *img)
{
    poster_proxy *p = f->p;
    pthread_mutex_lock(&p->mu);
    for (poster_flight **pp = &p->flights; *pp; pp = &(*pp)->next)
        if (*pp == f) {
            *pp = f->next;
            p->nflights--;
            break;
        }
    poster_waiter *w = f->waiters; /* none left after poster_proxy_abort */
    f->waiters = NULL;
    pthread_mutex_unlock(&p->mu);
    while (w) {
        poster_waiter *next = w->next;
        w->done(w->ud, rc, rc == FP_OK ? img : NULL);
        fp_free(w);
        w = next;
    }
    fp_free(f->key);
    fp_free(f);
}

static void poster__fetched(fetch_response *resp, void *ud)
{
    poster_flight *f = ud;
    poster_proxy *p = f->p;
    fp_err rc = resp->err;
    poster_image img = {0};
    if (rc == FP_TOO_LARGE) {
        rc = FP_FORMAT;
    } else if (rc == FP_OK) {
        if (resp->status == 200) {
            img.data = (const uint8_t *)resp->body;
            img.len = resp->len;
            img.type = poster_image_type(img.data, img.len);
            if (!img.type || img.len > p->cfg.max_bytes)
                rc = FP_FORMAT;
            else
                poster__remember(p, f->key, poster__kind(img.type), img.data, img.len);
        } else if (resp->status == 404 || resp->status == 410) {
            poster__remember(p, f->key, 0, NULL, 0);
            rc = FP_NOT_FOUND;
        } else {
            rc = resp->status == 429 ? FP_UPSTREAM_LIMITED : FP_UPSTREAM;
        }
    }
    if (rc != FP_OK && rc != FP_NOT_FOUND && rc != FP_UNAVAILABLE) {
        uint8_t e = (uint8_t)rc;
        poster__remember(p, f->key, POSTER_KIND_FAILED, &e, 1);
    }
    if (rc != FP_OK && rc != FP_NOT_FOUND)
        fp_log(FP_LOG_WARN, "poster_fetch_failed", "{s:I,s:s,s:i}", "film",
               (json_int_t)f->film_id, "error", fp_err_code(rc), "status", (int)resp->status);
    poster__land(f, rc, &img);
    fetch_response_free(&resp);
}

/* The flight for key, or NULL; under p->mu. */
static poster_flight *poster__flight(poster_proxy *p, const char *key)
{
    poster_flight *f = p->flights;
    while (f && strcmp(f->key, key) != 0)
        f = f->next;
    return f;
}

void poster_get(poster_proxy *p, int64_t film_id, poster_done_fn done, void *ud)
{
    if (film_id <= 0) {
        done(ud, FP_NOT_FOUND, NULL);
        return;
    }
    char *path = NULL;
    fp_err rc = p->cfg.lookup(p->cfg.lookup_ud, film_id, &path);
    if (rc != FP_OK) {
        done(ud, rc, NULL);
        return;
    }
    char *key = poster__key(film_id, path);
    poster_waiter *w = NULL;
    poster_flight *f = NULL;
    int fly = 0;
    for (int pass = 0; pass < 2; pass++) {
        if (poster__from_cache(p, key, done, ud))
            goto out;
        pthread_mutex_lock(&p->mu);
        if (p->aborted || (pass == 1 && !poster__flight(p, key) &&
                           p->nflights >= POSTER_MAX_FLIGHTS)) {
            pthread_mutex_unlock(&p->mu);
            done(ud, FP_UNAVAILABLE, NULL);
            goto out;
        }
        f = poster__flight(p, key);
        if (f || pass == 1) {
            if (!f) { /* pass 1: still no flight and still not cached: fly */
                f = fp_calloc(1, sizeof *f);
                f->p = p;
                f->film_id = film_id;
                f->key = fp_strdup(key);
                f->next = p->flights;
                p->flights = f;
                p->nflights++;
                fly = 1;
            }
            w = fp_calloc(1, sizeof *w);
            w->done = done;
            w->ud = ud;
            w->next = f->waiters;
            f->waiters = w;
            pthread_mutex_unlock(&p->mu);
            break;
        }
        /* No flight: one may just have landed (it stores the image before it
         * leaves the list), so look in the cache once more before flying. */
        pthread_mutex_unlock(&p->mu);
    }
    if (fly) {
        char *url = fp_printf("%s/resized/%s", p->image_base, path);
        rc = fetch_submit(p->cfg.fetch, url, poster__fetched, f);
        fp_free(url);
        if (rc != FP_OK)
            poster__land(f, rc == FP_INVALID ? FP_INTERNAL : rc, NULL);
    }
out:
    fp_free(key);
    fp_free(path);
}

void poster_proxy_abort(poster_proxy *p)
{
    poster_waiter *all = NULL;
    pthread_mutex_lock(&p->mu);
    p->aborted = 1;
    for (poster_flight *f = p->flights; f; f = f->next) {
        while (f->waiters) {
            poster_waiter *w = f->waiters;
            f->waiters = w->next;
            w->next = all;
            all = w;
        }
    }
    pthread_mutex_unlock(&p->mu);
    while (all) {
        poster_waiter *next = all->next;
        all->done(all->ud, FP_UNAVAILABLE, NULL);
        fp_free(all);
        all = next;
    }
}

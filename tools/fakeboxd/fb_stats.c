/*
 * fb_stats.c - counters behind /_fake/stats and /_fake/reset.
 *
 * The maps are jansson objects (string keys, integer values) guarded by one
 * mutex: contention is irrelevant next to the page rendering and the
 * latency sleeps, and jansson gives the JSON rendering for free.
 */
#include "fb_stats.h"

#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define FB__OTHER "(other)"

struct fb_stats {
    pthread_mutex_t lock;
    json_int_t requests_total;
    json_int_t in_flight_total;
    json_t *pages;     /* path -> count */
    json_t *in_flight; /* host -> requests in flight now */
    json_t *peak;      /* host -> highest in flight at once */
    json_t *seen;      /* "kind\nkey" -> true */
};

fb_stats *fb_stats_new(void)
{
    fb_stats *s = fb_calloc(1, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    s->pages = json_object();
    s->in_flight = json_object();
    s->peak = json_object();
    s->seen = json_object();
    if (!s->pages || !s->in_flight || !s->peak || !s->seen)
        fb_stats_free(&s);
    return s;
}

void fb_stats_free(fb_stats **sp)
{
    fb_stats *s = *sp;
    if (!s)
        return;
    json_decref(s->pages);
    json_decref(s->in_flight);
    json_decref(s->peak);
    json_decref(s->seen);
    pthread_mutex_destroy(&s->lock);
    free(s);
    *sp = NULL;
}

/* Adds delta to map[key] (a missing key counts as 0) and returns the new
 * value. A new key past the bound goes to "(other)". Lock held. */
static json_int_t fb__bump(json_t *map, const char *key, json_int_t delta)
{
    json_t *cur = json_object_get(map, key);
    if (!cur && json_object_size(map) >= FB_STATS_MAX_KEYS) {
        key = FB__OTHER;
        cur = json_object_get(map, key);
    }
    json_int_t v = (cur ? json_integer_value(cur) : 0) + delta;
    if (cur)
        json_integer_set(cur, v);
    else if (json_object_set_new(map, key, json_integer(v)) != 0)
        return 0;
    return v;
}

/* The key a host is counted under (hosts past the bound share "(other)"). */
static const char *fb__host_key(json_t *map, const char *host)
{
    if (json_object_get(map, host) || json_object_size(map) < FB_STATS_MAX_KEYS)
        return host;
    return FB__OTHER;
}

void fb_stats_begin(fb_stats *s, const char *host, const char *path)
{
    pthread_mutex_lock(&s->lock);
    s->requests_total++;
    s->in_flight_total++;
    fb__bump(s->pages, path, 1);
    const char *hk = fb__host_key(s->in_flight, host);
    json_int_t now = fb__bump(s->in_flight, hk, 1);
    json_t *p = json_object_get(s->peak, hk);
    if (!p)
        json_object_set_new(s->peak, hk, json_integer(now));
    else if (json_integer_value(p) < now)
        json_integer_set(p, now);
    pthread_mutex_unlock(&s->lock);
}

void fb_stats_end(fb_stats *s, const char *host)
{
    pthread_mutex_lock(&s->lock);
    s->in_flight_total--;
    const char *hk = fb__host_key(s->in_flight, host);
    if (fb__bump(s->in_flight, hk, -1) <= 0)
        json_object_del(s->in_flight, hk);
    pthread_mutex_unlock(&s->lock);
}

int fb_stats_first_time(fb_stats *s, const char *kind, const char *key)
{
    char *k = fb_printf("%s\n%s", kind, key);
    int first = 0;

    pthread_mutex_lock(&s->lock);
    if (!json_object_get(s->seen, k) && json_object_size(s->seen) < FB_STATS_MAX_KEYS)
        first = json_object_set_new(s->seen, k, json_true()) == 0;
    pthread_mutex_unlock(&s->lock);
    free(k);
    return first;
}

fb_err fb_stats_json(fb_stats *s, char **json)
{
    fb_err err = FB_OK;
    json_t *root = NULL;

    *json = NULL;
    pthread_mutex_lock(&s->lock);
    root = json_pack("{s:I,s:O,s:O,s:I}", "requests_total", s->requests_total, "pages", s->pages,
                     "peak_concurrency", s->peak, "in_flight", s->in_flight_total);
    if (root)
        *json = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    /* root shares the live maps: drop it before other threads touch them. */
    json_decref(root);
    pthread_mutex_unlock(&s->lock);
    if (!*json)
        err = FB_INVALID;
    return err;
}

void fb_stats_reset(fb_stats *s)
{
    const char *host;
    json_t *n;

    pthread_mutex_lock(&s->lock);
    s->requests_total = 0;
    json_object_clear(s->pages);
    json_object_clear(s->seen);
    json_object_clear(s->peak);
    json_object_foreach(s->in_flight, host, n) {
        json_object_set_new(s->peak, host, json_integer(json_integer_value(n)));
    }
    pthread_mutex_unlock(&s->lock);
}

/*
 * poster.h - film posters for the web app, fetched by the server and served
 * from its own origin (the page's Content-Security-Policy allows images only
 * from 'self', and a visitor's browser never talks to another host).
 *
 * A poster is known when a watchlist page gave its image (film.poster, a path
 * checked by film_poster_path_ok); its URL is that path joined to the
 * configured image host, never a URL taken from a page as is. The image is
 * fetched once through the shared fetch client (politeness, retries,
 * timeouts), checked to be a JPEG, PNG or WebP by its signature, and kept in
 * the cache backend; requests for a poster that is being fetched wait for that
 * one fetch. A poster the image host does not have is remembered as missing
 * for a while, a failed fetch for a minute.
 */
#ifndef FP_POSTER_H
#define FP_POSTER_H

#include <stddef.h>
#include <stdint.h>

#include "cache/cache.h"
#include "core/error.h"
#include "fetch.h"

typedef struct poster_proxy poster_proxy;

/* The poster path of a catalogue film: FP_OK with *path (caller frees),
 * FP_NOT_FOUND when the film or its poster is unknown, else a storage error. */
typedef fp_err (*poster_lookup_fn)(void *ud, int64_t film_id, char **path);

typedef struct poster_config {
    const char *image_base; /* "https://a.ltrbxd.com", no trailing slash */
    fetch_client *fetch;
    const cache_backend *cb;
    cache *ca;
    poster_lookup_fn lookup;
    void *lookup_ud;
    long ttl_s;       /* how long a fetched image is kept */
    long missing_ttl_s; /* how long "the host has no such image" is kept */
    size_t max_bytes; /* larger images are refused */
} poster_config;

typedef struct poster_image {
    const uint8_t *data;
    size_t len;
    const char *type; /* "image/jpeg", "image/png" or "image/webp" */
} poster_image;

/* rc FP_OK with img; FP_NOT_FOUND (no such film, no poster known, or the
 * image host has none); FP_UPSTREAM, FP_UPSTREAM_LIMITED, FP_TIMEOUT (the
 * host failed), FP_FORMAT (the answer is not an image), FP_UNAVAILABLE
 * (shutting down). img is valid only during the call. */
typedef void (*poster_done_fn)(void *ud, fp_err rc, const poster_image *img);

fp_err poster_proxy_new(const poster_config *cfg, poster_proxy **out) FP_WARN_UNUSED;
/* Call after the fetch client is freed (no fetch may still be running). */
void poster_proxy_free(poster_proxy **p);

/* Calls done exactly once: before returning (cached, known to be missing,
 * too many fetches at once: FP_UNAVAILABLE), or later from the fetch thread. */
void poster_get(poster_proxy *p, int64_t film_id, poster_done_fn done, void *ud);

/* Shutting down: every waiting request is answered FP_UNAVAILABLE now (its
 * fetch lands later with nobody to tell), and so is every later one. */
void poster_proxy_abort(poster_proxy *p);

/* The image type by its signature, or NULL when it is none of the three. */
const char *poster_image_type(const uint8_t *data, size_t len);

#endif

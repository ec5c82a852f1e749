/*
 * fb_render.h - the HTML and JSON bodies fakeboxd serves.
 *
 * Watchlist pages imitate the server HTML of the real pages saved in
 * shared/fixtures/letterboxd (see SOURCES.md) for three markup generations:
 *
 *   classic    li.poster-container > div.film-poster[data-film-id]
 *              [data-film-slug][data-postered-identifier='{"lid":..,"uid":"film:N",..}'],
 *              title only in img[alt]; heading in header.page-header;
 *              unseen pages written "&hellip;".
 *   react2025  li.griditem > div.react-component[data-component-class="LazyPoster"]
 *              [data-item-name="Title (Year)"][data-item-slug]
 *              [data-item-full-display-name][data-film-id]
 *              [data-postered-identifier="{&quot;lid&quot;..}"]; "&hellip;".
 *   react2026  react2025 without data-film-id, data-postered-identifier
 *              single-quoted and entity-encoded; unseen pages written as a
 *              literal U+2026 (both spellings occur in real pages).
 *
 * Every page has the scaffolding (div.js-watchlist-content[data-num-entries],
 * span.js-watchlist-count "N&nbsp;films" with thousands separators, "1&nbsp;film"
 * for one) and, when there is more than one page or the page is past the
 * end, the pagination (a.next "Older" only while a later page has films).
 * A page past the end has the scaffolding and no posters. All text is
 * HTML-escaped. Output is a pure function of the arguments.
 */
#ifndef FB_RENDER_H
#define FB_RENDER_H

#include <stddef.h>

#include "fb_catalog.h"
#include "fb_util.h"

typedef enum {
    FB_MARKUP_CLASSIC = 0,
    FB_MARKUP_REACT2025,
    FB_MARKUP_REACT2026
} fb_markup;

/* Parses "classic", "react2025", "react2026". */
fb_err fb_markup_parse(const char *name, fb_markup *out) FB_WARN_UNUSED;

typedef struct fb_page_view {
    const fb_catalog *catalog;
    const fb_user *user;
    fb_markup markup;
    const long *films; /* the user's whole list (film numbers) */
    size_t total;
    long page;         /* 1..FB_PAGE_MAX; may be past the last page */
    long per_page;     /* 1..FB_PER_PAGE_MAX */
    int posters;       /* React posters show their image (as a browser-saved page does) */
} fb_page_view;

#define FB_PAGE_MAX 1000000L
#define FB_PER_PAGE_MAX 10000L

/* Upper bound of any rendered body; a page that would pass it is FB_TOO_LARGE. */
#define FB_RENDER_LIMIT ((size_t)256 << 20)

/* Appends one watchlist page to out. */
fb_err fb_render_watchlist(const fb_page_view *v, fb_buf *out) FB_WARN_UNUSED;
/* 200 page in a markup no parser knows: no poster grid, no scaffolding. */
fb_err fb_render_garbage(const fb_page_view *v, fb_buf *out) FB_WARN_UNUSED;
/* Letterboxd's 404 page ("Sorry, we can’t find the page you’ve requested."). */
fb_err fb_render_not_found(fb_buf *out) FB_WARN_UNUSED;
/* Cloudflare's managed challenge ("Just a moment...", window._cf_chl_opt);
 * path only seeds the fake ray id. */
fb_err fb_render_challenge(const char *path, fb_buf *out) FB_WARN_UNUSED;
/* 503 "temporarily unavailable" page. */
fb_err fb_render_unavailable(fb_buf *out) FB_WARN_UNUSED;
/* 429 "too many requests" page. */
fb_err fb_render_rate_limited(fb_buf *out) FB_WARN_UNUSED;

/*
 * JSON array of the films in list order:
 * [{"lb_id":100007,"slug":"sirat","title":"Sirāt","year":1954}, ...].
 * Caller frees *json with free().
 */
fb_err fb_render_films_json(const fb_catalog *c, const long *films, size_t n,
                            char **json) FB_WARN_UNUSED;

/* Poster images (--posters): a React poster of film F shows
 * /resized/film-poster/<lb_id>/<lb_id>-<slug>-0-125-0-187-crop.png?v=<hex>;
 * the image exists for films whose lb_id is not a multiple of 3 (the others
 * answer 404, as a removed image would). */
int fb_poster_exists(long lb_id);
/* The image of a poster path ("/resized/film-poster/..."): FB_OK with a small
 * PNG, FB_INVALID for a path that names no existing image. */
fb_err fb_render_poster(const fb_catalog *c, const char *path, fb_buf *out) FB_WARN_UNUSED;

#endif

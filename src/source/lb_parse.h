/*
 * lb_parse.h - Letterboxd page parsing (libxml2 HTML parser + XPath).
 *
 * Understands every markup generation Letterboxd has served for watchlist
 * and list pages:
 *   classic      li.poster-container > div.film-poster[data-film-id][data-film-slug],
 *                title only in img[alt], no year;
 *   react2025    li.griditem > div.react-component[data-component-class$=LazyPoster]
 *                [data-item-slug][data-item-name][data-film-id];
 *   react2026    the same without data-film-id: the numeric id only in the JSON
 *                attribute data-postered-identifier ({"uid":"film:240344",...}).
 * A page that is none of these is FP_FORMAT ("page format not recognized"),
 * never an empty result: a page counts as an (empty) watchlist page only when
 * its watchlist/poster-grid scaffolding is present and that grid holds no
 * items at all (a grid whose items are all unrecognised is FP_FORMAT too).
 *
 * Only the main grid counts: posters whose nearest enclosing <ul> is a
 * poster-list / js-list-entries / grid list (or that sit in no <ul>, as in a
 * bare grid fragment). Posters in other lists, such as the 5-poster cover
 * preview `ul.posterlist` of list pages, are ignored. The same grid parser
 * serves watchlists, user lists and /films/ pages: the caller knows which URL
 * it fetched.
 *
 * A poster that was cut off (its start tag never closed, so it has no
 * content, as in a truncated download) or whose title is damaged (control
 * characters, over LB_TITLE_MAX bytes) or missing, or whose slug is not a
 * Letterboxd slug, is dropped and counted in lb_page.skipped; if every poster
 * of the grid is dropped the page is FP_FORMAT.
 */
#ifndef FP_LB_PARSE_H
#define FP_LB_PARSE_H

#include <stddef.h>

#include "core/error.h"
#include "film.h"

#define LB_USERNAME_MAX 40
/* Longest film title / slug a poster may carry before it is taken as damaged. */
#define LB_TITLE_MAX 1024
#define LB_SLUG_MAX 200
/* lb_page_count() never answers more than this, whatever a page claims. */
#define LB_PAGES_MAX 10000

typedef enum {
    LB_MARKUP_NONE = 0,    /* recognised page with no posters (e.g. past the end) */
    LB_MARKUP_CLASSIC,
    LB_MARKUP_REACT2025,
    LB_MARKUP_REACT2026,
} lb_markup;

typedef struct lb_page {
    film_list films;       /* posters of the main grid, in page order */
    lb_markup markup;
    long num_entries;      /* data-num-entries or js-watchlist-count; -1 if absent */
    int last_page;         /* highest page number in the pagination; 0 if absent */
    int has_next;          /* the pagination has an enabled "next"/"Older" link */
    size_t skipped;        /* posters of the main grid dropped as damaged */
} lb_page;

/* Returns the markup generation's name ("classic", "react2025", ...). */
const char *lb_markup_name(lb_markup m);

/*
 * Parses one HTML page (UTF-8, need not be NUL-terminated). On FP_OK *out
 * owns its films (free with lb_page_free). Errors: FP_FORMAT when the page is
 * not a recognised Letterboxd grid page (including empty input), FP_BLOCKED
 * when it is a Cloudflare challenge page, FP_TOO_LARGE when len exceeds what
 * libxml2 accepts (INT_MAX). Never crashes on truncated or hostile input.
 * *out is always initialised, so lb_page_free(out) is safe after any result.
 * Thread-safe (libxml2 is initialised once on first use).
 */
fp_err lb_parse_page(const char *html, size_t len, lb_page *out) FP_WARN_UNUSED;
void lb_page_free(lb_page *p);

/*
 * Number of pages in the whole watchlist, learnt from its first page: the
 * pagination's last page when present, otherwise ceil(num_entries / posters
 * on this page), otherwise 1.
 */
int lb_page_count(const lb_page *first);

/* 1 when the body looks like a Cloudflare challenge or block page: the
 * "<title>Just a moment...", the _cf_chl_ challenge variables, the
 * /cdn-cgi/challenge-platform/h/ orchestration script, or "Attention
 * Required! | Cloudflare". NOT the bare /cdn-cgi/challenge-platform/scripts/jsd/
 * beacon: Cloudflare injects that into ordinary, complete Letterboxd pages. */
int lb_is_challenge(const char *body, size_t len);

/*
 * Validates what a person typed and extracts the username: "alice", "@alice",
 * "https://letterboxd.com/alice/", "letterboxd.com/alice/watchlist/",
 * "www.letterboxd.com/alice", "http://..." are accepted; any other host, a
 * path that is not a profile or watchlist, or illegal characters give
 * FP_BAD_USERNAME. Letterboxd usernames are letters, digits and underscores;
 * the result is lower-cased into out (LB_USERNAME_MAX + 1 bytes).
 *
 * Details: surrounding whitespace is ignored; URLs are parsed with libcurl's
 * URL API, need scheme http or https (or none), host letterboxd.com or
 * www.letterboxd.com (any case), no user info, no port; the query and the
 * fragment are ignored. The first path segment is the username and must not
 * be a site section ("film", "list", "search", ...); an optional second
 * segment must be a profile section (watchlist, films, lists, diary, ...);
 * every segment is plain [A-Za-z0-9_-] (no dot segments, no %-escapes).
 * out is "" on error.
 */
fp_err lb_username_parse(const char *input, char out[LB_USERNAME_MAX + 1]) FP_WARN_UNUSED;

#endif

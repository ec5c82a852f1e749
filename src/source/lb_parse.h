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
 * its watchlist/poster-grid scaffolding is present.
 */
#ifndef FP_LB_PARSE_H
#define FP_LB_PARSE_H

#include <stddef.h>

#include "core/error.h"
#include "film.h"

#define LB_USERNAME_MAX 40

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
} lb_page;

/* Returns the markup generation's name ("classic", "react2025", ...). */
const char *lb_markup_name(lb_markup m);

/*
 * Parses one HTML page (UTF-8, need not be NUL-terminated). On FP_OK *out
 * owns its films (free with lb_page_free). Errors: FP_FORMAT when the page is
 * not a recognised Letterboxd grid page, FP_BLOCKED when it is a Cloudflare
 * challenge page. Never crashes on truncated or hostile input.
 */
fp_err lb_parse_page(const char *html, size_t len, lb_page *out) FP_WARN_UNUSED;
void lb_page_free(lb_page *p);

/*
 * Number of pages in the whole watchlist, learnt from its first page: the
 * pagination's last page when present, otherwise ceil(num_entries / posters
 * on this page), otherwise 1.
 */
int lb_page_count(const lb_page *first);

/* 1 when the body looks like a Cloudflare challenge ("Just a moment...",
 * _cf_chl_opt, challenge-platform). */
int lb_is_challenge(const char *body, size_t len);

/*
 * Validates what a person typed and extracts the username: "alice", "@alice",
 * "https://letterboxd.com/alice/", "letterboxd.com/alice/watchlist/",
 * "www.letterboxd.com/alice", "http://..." are accepted; any other host, a
 * path that is not a profile or watchlist, or illegal characters give
 * FP_BAD_USERNAME. Letterboxd usernames are letters, digits and underscores;
 * the result is lower-cased into out (LB_USERNAME_MAX + 1 bytes).
 */
fp_err lb_username_parse(const char *input, char out[LB_USERNAME_MAX + 1]) FP_WARN_UNUSED;

#endif

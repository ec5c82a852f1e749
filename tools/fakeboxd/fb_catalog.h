/*
 * fb_catalog.h - the fake site's data: a universe of films and, for every
 * username, a deterministic watchlist drawn from it.
 *
 * Film n (1..universe) has lb_id 100000+n, a title built from word lists, a
 * year in 1920..2025 and a slug made unique the way Letterboxd does it (bare
 * slug, then slug-YEAR, then slug-2, slug-3, ...). A film's data depends only
 * on n, never on --universe, so lists stay comparable across runs. Some
 * titles are deliberately awkward: '&', apostrophes, double quotes, non-ASCII
 * UTF-8 (Latin, Cyrillic, CJK), colons, and titles shared by several films.
 * Film 0 is the XSS film (title "<img src=x onerror=alert(1)>") that only
 * xss* users have.
 *
 * A user's watchlist is films 1..common (shared by everybody) plus
 * size-common films drawn without repetition from common+1..universe by a
 * PRNG seeded with a hash of the lower-cased username, all shuffled with the
 * same PRNG. Same flags and same username give the same list.
 */
#ifndef FB_CATALOG_H
#define FB_CATALOG_H

#include <stddef.h>

#include "fb_util.h"

#define FB_USERNAME_MAX 40
#define FB_UNIVERSE_MAX 1000000L
#define FB_LB_ID_BASE 100000L
#define FB_YEAR_MIN 1920
#define FB_YEAR_MAX 2025
#define FB_XSS_TITLE "<img src=x onerror=alert(1)>"

typedef struct fb_film {
    long lb_id;
    int year;
    char *title; /* UTF-8, unescaped */
    char *slug;  /* [a-z0-9-], unique in the catalog */
    char lid[8]; /* Letterboxd's short base-62 id, as in data-postered-identifier */
} fb_film;

typedef struct fb_catalog {
    long universe;
    fb_film *films; /* films[0..universe]; films[0] is the XSS film */
} fb_catalog;

/* Builds films 0..universe (1 <= universe <= FB_UNIVERSE_MAX). Free with fb_catalog_free. */
fb_err fb_catalog_init(fb_catalog *c, long universe) FB_WARN_UNUSED;
void fb_catalog_free(fb_catalog *c);

/* What a username makes the site do (see the prefixes in fakeboxd's --help). */
typedef enum {
    FB_USER_NORMAL = 0,
    FB_USER_NOTFOUND,    /* 404 page */
    FB_USER_EMPTY,       /* watchlist with 0 films */
    FB_USER_PRIVATE,     /* looks exactly like empty, as a private list does to a guest */
    FB_USER_BLOCKED,     /* Cloudflare challenge, 403 */
    FB_USER_DOWN,        /* always 503 */
    FB_USER_FLAKY,       /* 503 the first time each page is asked for */
    FB_USER_RATELIMITED, /* 429 + Retry-After: 1 the first time each page is asked for */
    FB_USER_SLOW,        /* answers after --slow-ms */
    FB_USER_GARBAGE,     /* 200 with an unknown markup */
    FB_USER_XSS          /* normal list with the XSS film in it */
} fb_behaviour;

typedef struct fb_user {
    char name[FB_USERNAME_MAX + 1]; /* as written in the URL */
    char key[FB_USERNAME_MAX + 1];  /* lower-cased: seeds the list, selects the behaviour */
    fb_behaviour behaviour;
    long size;                      /* films asked for: the _nDIGITS suffix or the default */
} fb_user;

/*
 * Validates a username (1..FB_USERNAME_MAX of [A-Za-z0-9_]) and reads its
 * behaviour prefix and _nDIGITS size suffix (0..FB_UNIVERSE_MAX; a suffix
 * out of range is ignored). FB_INVALID for anything else.
 */
fb_err fb_user_parse(const char *name, long default_size, fb_user *out) FB_WARN_UNUSED;

/* 1 when pages of this user show posters (normal, flaky, ratelimited, slow, xss). */
int fb_user_has_films(const fb_user *u);

/*
 * The user's watchlist in list order, as film numbers (indexes into
 * c->films). Empty for users whose pages show no posters. *out is
 * caller-owned (free()); *len may be 0.
 */
void fb_user_list(const fb_catalog *c, const fb_user *u, long common, long **out, size_t *len);

#endif

/*
 * film.h - the film, FilmPicker's one domain record, and lists of them.
 *
 * A film seen by a source carries whatever identifiers that source gives:
 * Letterboxd's numeric film id and slug on pages, a boxd.it short link in
 * exports, an IMDb tt-id in IMDb exports. Across sources the same film is
 * recognised by those ids where they overlap, otherwise by the match key:
 * normalised title + year (film_match_key()).
 */
#ifndef FP_FILM_H
#define FP_FILM_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef struct film {
    int64_t id;        /* catalogue id assigned by storage; 0 until stored */
    int64_t lb_id;     /* Letterboxd numeric film id; 0 when unknown */
    char *lb_slug;     /* Letterboxd slug ("the-godfather"); NULL when unknown */
    char *lb_uri;      /* boxd.it short link from exports; NULL when unknown */
    char *imdb_id;     /* "tt0068646"; NULL when unknown */
    char *title;       /* display title without the year; never NULL once parsed */
    int year;          /* release year; 0 when unknown */
    char *poster;      /* Letterboxd poster image, the path below the image host's
                          /resized/ ("film-poster/4/5/.../x-0-230-0-345-crop.jpg?v=1f"),
                          checked by film_poster_path_ok(); NULL when unknown */
} film;

typedef struct film_list {
    film *items;
    size_t len;
    size_t cap;
} film_list;

/* Releases the strings of *f (not f itself) and zeroes it. */
void film_clear(film *f);
/* Deep copy of src into *dst. */
void film_copy(film *dst, const film *src);

void film_list_init(film_list *l);
/* Appends a new zeroed film and returns it (owned by the list). */
film *film_list_push(film_list *l);
void film_list_free(film_list *l);

/*
 * Splits a Letterboxd display name "Title (Year)" into title and year.
 * "Fatherland" gives year 0. Caller owns *title.
 */
void film_split_display_name(const char *name, char **title, int *year);

/*
 * Normalised title used for cross-source matching: case-folded (ASCII and the
 * Latin-1/Latin Extended-A letters reduced to their base letter), "&" read as
 * "and", punctuation dropped, runs of space collapsed. Caller owns the result.
 */
char *film_normalize_title(const char *title);

/*
 * A poster path is only ever joined to the configured image host, never
 * fetched as found: 1..200 characters of [A-Za-z0-9/._-], no "..", no leading
 * '/', ending in .jpg, .jpeg, .png or .webp, optionally followed by "?v=" and
 * 1..32 letters or digits.
 */
int film_poster_path_ok(const char *path);

/* "normalised title|year" (year 0 written as empty). Caller owns the result. */
char *film_match_key(const char *title, int year);

#endif

/*
 * import.h - watchlists read from export files, one backend per format.
 *
 * Each format is a const struct of function pointers (like the storage and
 * queue backends): sniff() says how sure it is that the bytes are its format,
 * parse() reads them. Unreadable rows never abort an import: they are listed
 * with their line number and reason, and the rest is imported. A file that is
 * not the format at all (no expected header, not a Letterboxd export zip) is
 * FP_BAD_FILE with a message in result->message; a file, or the zipped
 * watchlist.csv, over IMPORT_MAX_BYTES, or one listing more than
 * IMPORT_MAX_FILMS films, is FP_TOO_LARGE, also with a message.
 * A refused file leaves no films and no row errors in the result.
 *
 * Backends: letterboxd-csv (watchlist.csv, watched.csv, ratings.csv and list
 * exports, lb_csv.c) and letterboxd-zip (the export .zip, whose watchlist.csv
 * is read by the CSV backend, so row errors name lines of that file;
 * lb_zip.c). The rules for rows, quoting and encodings are at the top of
 * lb_csv.c.
 */
#ifndef FP_IMPORT_H
#define FP_IMPORT_H

#include <stddef.h>

#include "core/error.h"
#include "film.h"

#define IMPORT_MAX_BYTES (32u * 1024u * 1024u) /* per uploaded file */
#define IMPORT_MAX_ROW_ERRORS 1000             /* later ones are only counted */
#define IMPORT_MAX_FILMS 100000u               /* films per file; one more refuses it */

/* A row that could not be imported. title and year are what the row said
 * of its film, when it could be read (so people can tell which film it was):
 * title made printable (invalid UTF-8 and control characters shown as
 * U+FFFD, cut at IMPORT_ROW_TITLE_MAX bytes), year only when it is a valid
 * year. */
#define IMPORT_ROW_TITLE_MAX 200
typedef struct import_row_error {
    size_t line;      /* 1-based physical line where the record starts */
    char *reason;
    char *title;      /* NULL when the row had no readable Name */
    int year;         /* 0 when the row had no valid Year */
} import_row_error;

typedef struct import_result {
    film_list films;
    import_row_error *errors;
    size_t nerrors;          /* entries in errors[] */
    size_t nerrors_total;    /* including those past IMPORT_MAX_ROW_ERRORS */
    const char *format;      /* name of the format that parsed it (static) */
    char *message;           /* set on FP_BAD_FILE: why the file was refused */
} import_result;

typedef struct import_format {
    const char *name; /* "letterboxd-csv", "letterboxd-zip" */
    /* 0 = not this format, 100 = certain. filename may be NULL. */
    int (*sniff)(const unsigned char *data, size_t len, const char *filename);
    fp_err (*parse)(const unsigned char *data, size_t len, import_result *out);
} import_format;

extern const import_format import_format_lb_csv;
extern const import_format import_format_lb_zip;

void import_result_init(import_result *r);
void import_result_free(import_result *r);

/* Picks the format with the highest sniff score and parses with it (the
 * file name only breaks ties; it may be NULL). r must have been set up with
 * import_result_init(). FP_BAD_FILE (with r->message) when no format claims
 * the bytes or the chosen one refuses them; FP_TOO_LARGE past
 * IMPORT_MAX_BYTES. On FP_OK, r->films may be empty (a header-only export)
 * and r->errors lists the rows skipped. */
fp_err import_parse(const unsigned char *data, size_t len, const char *filename,
                    import_result *r) FP_WARN_UNUSED;

#endif

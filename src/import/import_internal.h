/*
 * import_internal.h - helpers shared by the import backends (import__ prefix,
 * not part of the public API; only files in src/import/ include this).
 *
 * They keep the rules of import.h in one place: row errors are capped at
 * IMPORT_MAX_ROW_ERRORS (later ones only counted), a refused file carries
 * no films and no row errors, only r->message, and every string that goes
 * into a film title, reason or message is valid UTF-8 (titles end up in
 * JSON).
 */
#ifndef FP_IMPORT_INTERNAL_H
#define FP_IMPORT_INTERNAL_H

#include <stddef.h>

#include "core/error.h"
#include "core/utf8.h"
#include "import/import.h"

/* Records a row error at 1-based `line`, naming the row's film by title
 * (title_len bytes, made printable; NULL or empty for none) and year (0 for
 * none). Past IMPORT_MAX_ROW_ERRORS only nerrors_total grows. */
void import__row_error(import_result *r, size_t line, const char *title, size_t title_len,
                       int year, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Refuses the whole file: drops films and row errors read so far, sets
 * r->message (replacing any earlier one) and returns rc. */
fp_err import__refuse(import_result *r, fp_err rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif

/*
 * import.c - the import front door: result bookkeeping, the sniff-and-pick
 * dispatcher over the format backends, and the helpers they share
 * (import_internal.h).
 *
 * import_parse() asks every backend how sure it is (sniff) and parses with
 * the most confident one; ties go to the earlier entry of import_formats[].
 * Size is checked before any backend sees the bytes, so no backend has to
 * handle more than IMPORT_MAX_BYTES.
 */
#include "import/import.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/mem.h"
#include "import/import_internal.h"

/* Order only matters for equal sniff scores. */
static const import_format *const import_formats[] = {
    &import_format_lb_zip,
    &import_format_lb_csv,
};

void import_result_init(import_result *r)
{
    memset(r, 0, sizeof *r);
    film_list_init(&r->films);
}

static void import_drop_errors(import_result *r)
{
    for (size_t i = 0; i < r->nerrors; i++) {
        fp_free(r->errors[i].reason);
        fp_free(r->errors[i].title);
    }
    FP_FREE(r->errors);
    r->nerrors = r->nerrors_total = 0;
}

void import_result_free(import_result *r)
{
    film_list_free(&r->films);
    import_drop_errors(r);
    fp_free(r->message);
    import_result_init(r);
}

fp_err import_parse(const unsigned char *data, size_t len, const char *filename,
                    import_result *r)
{
    if (len > IMPORT_MAX_BYTES)
        return import__refuse(r, FP_TOO_LARGE, "the file is %zu bytes; the limit is %u MiB",
                              len, IMPORT_MAX_BYTES / (1024u * 1024u));
    if (len == 0 || data == NULL)
        return import__refuse(r, FP_BAD_FILE, "the file is empty");

    const import_format *best = NULL;
    int best_score = 0;
    for (size_t i = 0; i < sizeof import_formats / sizeof import_formats[0]; i++) {
        int score = import_formats[i]->sniff(data, len, filename);
        if (score > best_score) {
            best_score = score;
            best = import_formats[i];
        }
    }
    if (best == NULL)
        return import__refuse(r, FP_BAD_FILE,
                              "not a Letterboxd export: expected the export .zip or a CSV "
                              "from it (header Date,Name,Year,Letterboxd URI, or a "
                              "\"Letterboxd list export\")");
    r->format = best->name;
    return best->parse(data, len, r);
}

/* ---- helpers for the backends (import_internal.h) ---- */

void import__row_error(import_result *r, size_t line, const char *title, size_t title_len,
                       int year, const char *fmt, ...)
{
    r->nerrors_total++;
    if (r->nerrors >= IMPORT_MAX_ROW_ERRORS)
        return;
    /* Grow in steps of doubling; the cap bounds the array. */
    if ((r->nerrors & (r->nerrors - 1)) == 0) {
        size_t cap = r->nerrors ? r->nerrors * 2 : 8;
        r->errors = fp_reallocarray(r->errors, cap, sizeof *r->errors);
    }
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    char *reason;
    if (n < 0) {
        reason = fp_strdup("unreadable row");
    } else if ((size_t)n < sizeof small) {
        reason = fp_strdup(small);
    } else {
        reason = fp_malloc((size_t)n + 1);
        va_start(ap, fmt);
        vsnprintf(reason, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    r->errors[r->nerrors].line = line;
    r->errors[r->nerrors].reason = reason;
    r->errors[r->nerrors].title =
        title && title_len ? fp_utf8_printable(title, title_len, IMPORT_ROW_TITLE_MAX) : NULL;
    r->errors[r->nerrors].year = year;
    r->nerrors++;
}

fp_err import__refuse(import_result *r, fp_err rc, const char *fmt, ...)
{
    film_list_free(&r->films);
    import_drop_errors(r);
    fp_free(r->message);
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        r->message = fp_strdup(fp_err_message(rc));
    } else if ((size_t)n < sizeof small) {
        r->message = fp_strdup(small);
    } else {
        r->message = fp_malloc((size_t)n + 1);
        va_start(ap, fmt);
        vsnprintf(r->message, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    return rc;
}


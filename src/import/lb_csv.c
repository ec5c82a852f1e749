/*
 * lb_csv.c - Letterboxd data-export CSV files: watchlist.csv (and watched.csv,
 * ratings.csv, which share its columns) and list exports (lists/NAME.csv).
 *
 * Contract:
 * - CSV syntax is libcsv's, in strict mode. A leading UTF-8 byte-order mark
 *   is skipped; LF, CRLF and lone CR all end a line; blank lines are ignored;
 *   a missing final newline is fine.
 * - Columns are found by header name (case-insensitive): Name is required,
 *   Year and Letterboxd URI (list exports: URL) are used when present, any
 *   others are ignored. A file whose header has no Name column is refused
 *   (FP_BAD_FILE) with the columns found in r->message.
 * - A list export ("Letterboxd list export v7": a metadata table, a blank
 *   line, then Position,Name,Year,URL,Description) is read as a watchlist:
 *   the metadata rows are skipped and the entries table is imported.
 * - One film per data row: title = Name trimmed of ASCII white space and
 *   otherwise as written (no year in it), year = Year (empty -> 0), lb_uri =
 *   the URI when it looks like https://boxd.it/ID or a letterboxd.com/film/
 *   URL (else NULL, the row still counts), lb_slug from a /film/SLUG/ URL.
 * - At most IMPORT_MAX_FILMS films: one more refuses the whole file
 *   (FP_TOO_LARGE with a message), so that memory stays bounded by the row
 *   count and not only by the bytes (a 16 MiB file of 2-byte rows would
 *   otherwise become 8 million film records).
 * - A row that cannot be read is skipped and listed with the 1-based line its
 *   record starts on: wrong field count (empty trailing extra fields, as a
 *   spreadsheet's trailing comma leaves, are tolerated), missing Name, a Name
 *   that is not valid UTF-8 or holds a NUL byte (row error, never replaced:
 *   the title must match Letterboxd's), a Name over LBCSV_MAX_NAME bytes, a
 *   Year that is not a number in LBCSV_YEAR_MIN..LBCSV_YEAR_MAX. The error
 *   names the row's film by what could be read of it (import.h): the trimmed
 *   Name unless it is missing, too long or belongs to a multi-line record of
 *   the wrong shape; the Year when it is valid. Broken quoting names none.
 * - Broken quoting. libcsv stops on a stray quote (CSV_EPARSE), and an
 *   unclosed quote swallows the rest of the file. Either way the record is
 *   reported at the line it started on and parsing starts again, with a
 *   fresh parser, at the next physical line, so one bad quote costs one row,
 *   not the rest of the file. The same restart applies to a record that
 *   spans several lines and has the wrong field count (an opening quote that
 *   was closed by chance further down). Restart points only move forward.
 *   The work stays linear: a line that keeps a quoted field open cannot
 *   itself open one when read afresh (the quote runs would need to be both
 *   even and odd), so a line is re-read at most about twice. As a backstop
 *   against a flaw in that argument, the bytes fed to libcsv are capped at
 *   LBCSV_FEED_FACTOR times the input; past it reading stops with a row
 *   error saying where.
 */
#include <csv.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/mem.h"
#include "import/import.h"
#include "import/import_internal.h"

#define LBCSV_MAX_COLS 64         /* header columns looked at */
#define LBCSV_MAX_COL_NAME 128    /* bytes of a header name kept */
#define LBCSV_MAX_NAME 1024       /* bytes of a film title */
#define LBCSV_MAX_SHORT 512       /* Year and URI fields */
#define LBCSV_YEAR_MIN 1870
#define LBCSV_YEAR_MAX 2200
#define LBCSV_SNIFF_BYTES 4096    /* of the first line */
#define LBCSV_FEED_FACTOR 4
#define LBCSV_BLK_SIZE (64 * 1024) /* libcsv field buffer growth step */
#define LBCSV_LIST_MAGIC "Letterboxd list export"
#define LBCSV_EXPECTED "Date,Name,Year,Letterboxd URI"

enum lbcsv_state {
    LBCSV_HEADER,    /* waiting for the first record */
    LBCSV_LIST_META, /* list export: skipping metadata up to the entries header */
    LBCSV_ROWS,      /* data rows */
};

/* A field of the current row we keep (Name, Year, URI). */
typedef struct lbcsv_cell {
    char *s;       /* NULL when the row had no such field */
    size_t len;
    bool too_long; /* longer than its limit: not copied */
} lbcsv_cell;

typedef struct lbcsv {
    import_result *out;
    const unsigned char *data;
    size_t len;
    struct csv_parser p;

    enum lbcsv_state state;
    fp_err fatal;            /* set by a callback: stop and return it */
    size_t line;             /* physical line of the chunk being fed */
    bool in_record;
    size_t rec_line;         /* line and offset where the record started */
    size_t rec_off;
    bool restart;            /* a callback asks to re-read from rec_line + 1 */

    /* header: column positions, -1 when absent */
    size_t ncols;
    long col_name, col_year, col_uri;

    /* the record being read */
    size_t nfields;
    bool extra_nonempty;
    char *hdr[LBCSV_MAX_COLS]; /* header/metadata states only */
    lbcsv_cell name, year, uri;
} lbcsv;

static bool lbcsv_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static void lbcsv_trim(const char **s, size_t *n)
{
    while (*n && lbcsv_space((unsigned char)(*s)[0])) {
        (*s)++;
        (*n)--;
    }
    while (*n && lbcsv_space((unsigned char)(*s)[*n - 1]))
        (*n)--;
}

static bool lbcsv_eq(const char *s, const char *lit)
{
    return s != NULL && strcasecmp(s, lit) == 0;
}

static void lbcsv_init_parser(struct csv_parser *p)
{
    /* csv_init only fails on bad options; ours are constant and valid. */
    int rc = csv_init(p, CSV_STRICT | CSV_STRICT_FINI);
    (void)rc;
    csv_set_realloc_func(p, fp_realloc);
    csv_set_free_func(p, fp_free);
    /* libcsv grows its field buffer linearly, by this much a step (default
     * 128 bytes): a 1 MiB field would take 8192 reallocs. */
    csv_set_blk_size(p, LBCSV_BLK_SIZE);
}

static void lbcsv_clear_record(lbcsv *c)
{
    for (size_t i = 0; i < c->nfields && i < LBCSV_MAX_COLS; i++)
        FP_FREE(c->hdr[i]);
    FP_FREE(c->name.s);
    FP_FREE(c->year.s);
    FP_FREE(c->uri.s);
    memset(&c->name, 0, sizeof c->name);
    memset(&c->year, 0, sizeof c->year);
    memset(&c->uri, 0, sizeof c->uri);
    c->nfields = 0;
    c->extra_nonempty = false;
}

static void lbcsv_keep(lbcsv_cell *cell, const char *s, size_t n, size_t limit)
{
    if (n > limit) {
        cell->too_long = true;
        cell->len = n;
        return;
    }
    /* Not fp_strndup: that stops at a NUL, and a NUL must reach the checks. */
    cell->s = fp_malloc(n + 1);
    if (n)
        memcpy(cell->s, s, n);
    cell->s[n] = '\0';
    cell->len = n;
}

static void lbcsv_on_field(void *field, size_t n, void *ctx)
{
    lbcsv *c = ctx;
    const char *s = field ? field : "";
    size_t i = c->nfields++;
    if (c->fatal != FP_OK)
        return;
    if (c->state != LBCSV_ROWS) {
        if (i < LBCSV_MAX_COLS) {
            size_t k = n < LBCSV_MAX_COL_NAME ? n : LBCSV_MAX_COL_NAME;
            lbcsv_trim(&s, &k);
            c->hdr[i] = fp_strndup(s, k);
        }
        return;
    }
    if (i >= c->ncols) {
        if (n > 0)
            c->extra_nonempty = true;
        return;
    }
    if ((long)i == c->col_name)
        lbcsv_keep(&c->name, s, n, LBCSV_MAX_NAME);
    else if ((long)i == c->col_year)
        lbcsv_keep(&c->year, s, n, LBCSV_MAX_SHORT);
    else if ((long)i == c->col_uri)
        lbcsv_keep(&c->uri, s, n, LBCSV_MAX_SHORT);
}

static long lbcsv_find_col(const lbcsv *c, size_t n, const char *const *names)
{
    for (const char *const *nm = names; *nm; nm++)
        for (size_t i = 0; i < n && i < LBCSV_MAX_COLS; i++)
            if (lbcsv_eq(c->hdr[i], *nm))
                return (long)i;
    return -1;
}

static void lbcsv_take_header(lbcsv *c)
{
    static const char *const name_cols[] = {"Name", NULL};
    static const char *const year_cols[] = {"Year", NULL};
    static const char *const uri_cols[] = {"Letterboxd URI", "URL", "URI", NULL};
    c->ncols = c->nfields;
    c->col_name = lbcsv_find_col(c, c->nfields, name_cols);
    c->col_year = lbcsv_find_col(c, c->nfields, year_cols);
    c->col_uri = lbcsv_find_col(c, c->nfields, uri_cols);
    c->state = LBCSV_ROWS;
}

/* The refusal message lists the header names seen, made printable. */
static fp_err lbcsv_refuse_header(lbcsv *c)
{
    fp_buf b;
    fp_buf_init(&b, 2048);
    fp_err rc = FP_OK;
    size_t shown = c->nfields < LBCSV_MAX_COLS ? c->nfields : LBCSV_MAX_COLS;
    for (size_t i = 0; i < shown && rc == FP_OK; i++) {
        char *p = fp_utf8_printable(c->hdr[i], c->hdr[i] ? strlen(c->hdr[i]) : 0, 40);
        rc = fp_buf_appendf(&b, "%s\"%s\"", i ? ", " : "", p);
        fp_free(p);
    }
    if (rc == FP_OK && c->nfields > shown)
        rc = fp_buf_appendf(&b, " and %zu more", c->nfields - shown);
    /* A cut list is still a useful message: ignore FP_TOO_LARGE. */
    char *found = fp_buf_steal(&b, NULL);
    fp_err out = import__refuse(c->out, FP_BAD_FILE,
                                "no Name column in the header (line %zu): found %s; "
                                "expected a Letterboxd export header such as " LBCSV_EXPECTED,
                                c->rec_line, found);
    fp_free(found);
    return out;
}

static bool lbcsv_is_alnum(unsigned char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

/* Strips a case-insensitive prefix; true when it was there. */
static bool lbcsv_prefix(const char **s, size_t *n, const char *pre)
{
    size_t k = strlen(pre);
    if (*n < k || strncasecmp(*s, pre, k) != 0)
        return false;
    *s += k;
    *n -= k;
    return true;
}

/* "https://boxd.it/ID" or "https://letterboxd.com/film/SLUG/" (http and www.
 * accepted). For the second form *slug points at SLUG in s. */
static bool lbcsv_uri_ok(const char *s, size_t n, const char **slug, size_t *slug_len)
{
    *slug = NULL;
    *slug_len = 0;
    if (!lbcsv_prefix(&s, &n, "https://") && !lbcsv_prefix(&s, &n, "http://"))
        return false;
    if (lbcsv_prefix(&s, &n, "boxd.it/")) {
        if (n && s[n - 1] == '/')
            n--;
        if (n == 0 || n > 16)
            return false;
        for (size_t i = 0; i < n; i++)
            if (!lbcsv_is_alnum((unsigned char)s[i]))
                return false;
        return true;
    }
    lbcsv_prefix(&s, &n, "www."); /* optional */
    if (!lbcsv_prefix(&s, &n, "letterboxd.com/film/"))
        return false;
    if (n && s[n - 1] == '/')
        n--;
    if (n == 0 || n > 200)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-'))
            return false;
    }
    *slug = s;
    *slug_len = n;
    return true;
}

/* The Year cell as a year: true with *year (0 when empty or absent) when it
 * is one; otherwise false with the reason in *why (caller frees). */
static bool lbcsv_year(const lbcsv_cell *cell, int *year, char **why)
{
    *year = 0;
    *why = NULL;
    if (cell->too_long) {
        *why = fp_printf("Year is %zu bytes long, not a year", cell->len);
        return false;
    }
    if (!cell->s)
        return true;
    const char *y = cell->s;
    size_t ylen = cell->len;
    lbcsv_trim(&y, &ylen);
    bool digits = ylen > 0 && ylen <= 4;
    for (size_t i = 0; digits && i < ylen; i++)
        digits = y[i] >= '0' && y[i] <= '9';
    if (ylen > 0 && !digits) {
        char *p = fp_utf8_printable(y, ylen, 40);
        *why = fp_printf("Year '%s' is not a year", p);
        fp_free(p);
        return false;
    }
    int v = 0;
    for (size_t i = 0; i < ylen; i++)
        v = v * 10 + (y[i] - '0');
    if (ylen > 0 && (v < LBCSV_YEAR_MIN || v > LBCSV_YEAR_MAX)) {
        *why = fp_printf("Year %d is out of range (%d-%d)", v, LBCSV_YEAR_MIN, LBCSV_YEAR_MAX);
        return false;
    }
    *year = v;
    return true;
}

/* Reads one data row into a film, or says why it cannot. A row error names
 * the row's film by what could be read of its Name and Year. */
static void lbcsv_take_row(lbcsv *c, size_t end_line)
{
    import_result *r = c->out;
    size_t line = c->rec_line;
    const char *name = c->name.s ? c->name.s : "";
    size_t name_len = c->name.s ? c->name.len : 0;
    lbcsv_trim(&name, &name_len);
    int year = 0;
    char *year_why = NULL;
    bool year_ok = lbcsv_year(&c->year, &year, &year_why);

    if (c->nfields < c->ncols || (c->nfields > c->ncols && c->extra_nonempty)) {
        /* A multi-line record with the wrong shape is most likely an
         * unbalanced quote that swallowed good rows: re-read them. Its
         * fields are not that row's, so they name no film. */
        bool swallowed = end_line > line;
        if (swallowed)
            c->restart = true;
        import__row_error(r, line, swallowed ? NULL : name, swallowed ? 0 : name_len,
                          swallowed || !year_ok ? 0 : year, "expected %zu fields, found %zu",
                          c->ncols, c->nfields);
        goto out;
    }
    if (!year_ok)
        year = 0; /* the Year names no film below; its own error comes after the Name's */
    if (c->name.too_long) {
        import__row_error(r, line, NULL, 0, year, "Name is %zu bytes long; the limit is %d",
                          c->name.len, LBCSV_MAX_NAME);
        goto out;
    }
    if (name_len == 0) {
        import__row_error(r, line, NULL, 0, year, "no film title (the Name column is empty)");
        goto out;
    }
    if (memchr(name, '\0', name_len) != NULL) {
        import__row_error(r, line, name, name_len, year, "Name contains a NUL byte");
        goto out;
    }
    size_t bad = fp_utf8_check((const unsigned char *)name, name_len);
    if (bad < name_len) {
        import__row_error(r, line, name, name_len, year,
                          "Name is not valid UTF-8 (byte 0x%02X at offset %zu); "
                          "save the file as UTF-8",
                          (unsigned)(unsigned char)name[bad], bad);
        goto out;
    }
    if (!year_ok) {
        import__row_error(r, line, name, name_len, 0, "%s", year_why);
        goto out;
    }

    if (r->films.len >= IMPORT_MAX_FILMS) {
        /* Each row costs a film record and its strings, and a file of short
         * rows holds millions of them: stop reading at once. */
        c->fatal = import__refuse(r, FP_TOO_LARGE,
                                  "the file lists more than %u films; an import takes at most %u",
                                  IMPORT_MAX_FILMS, IMPORT_MAX_FILMS);
        goto out;
    }
    film *f = film_list_push(&r->films);
    f->title = fp_strndup(name, name_len);
    f->year = year;
    if (c->uri.s) {
        const char *u = c->uri.s, *slug;
        size_t ulen = c->uri.len, slug_len;
        lbcsv_trim(&u, &ulen);
        if (lbcsv_uri_ok(u, ulen, &slug, &slug_len)) {
            f->lb_uri = fp_strndup(u, ulen);
            if (slug)
                f->lb_slug = fp_strndup(slug, slug_len);
        }
    }
out:
    fp_free(year_why);
}

static void lbcsv_on_row(int term, void *ctx)
{
    lbcsv *c = ctx;
    (void)term;
    c->in_record = false;
    if (c->fatal != FP_OK)
        goto out;
    switch (c->state) {
    case LBCSV_HEADER:
        if (c->nfields >= 1 && c->hdr[0] &&
            strncmp(c->hdr[0], LBCSV_LIST_MAGIC, strlen(LBCSV_LIST_MAGIC)) == 0) {
            c->state = LBCSV_LIST_META;
            break;
        }
        lbcsv_take_header(c);
        if (c->col_name < 0)
            c->fatal = lbcsv_refuse_header(c);
        break;
    case LBCSV_LIST_META: {
        /* The metadata table also has a Name column (the list's name); the
         * entries table is the one with Position. */
        static const char *const pos_cols[] = {"Position", NULL};
        static const char *const name_cols[] = {"Name", NULL};
        if (lbcsv_find_col(c, c->nfields, pos_cols) >= 0 &&
            lbcsv_find_col(c, c->nfields, name_cols) >= 0)
            lbcsv_take_header(c);
        break;
    }
    case LBCSV_ROWS:
        lbcsv_take_row(c, c->line);
        break;
    }
out:
    lbcsv_clear_record(c);
}

/* Offset just past the line break ending the line that contains `off`. */
static size_t lbcsv_next_line(const unsigned char *d, size_t len, size_t off)
{
    while (off < len && d[off] != '\n' && d[off] != '\r')
        off++;
    if (off < len)
        off += (d[off] == '\r' && off + 1 < len && d[off + 1] == '\n') ? 2 : 1;
    return off;
}

/* Moves the read position to the line after the one the last record
 * started on. */
static void lbcsv_reread(lbcsv *c, size_t *off)
{
    *off = lbcsv_next_line(c->data, c->len, c->rec_off);
    c->line = c->rec_line + 1;
    c->restart = false;
}

/* Reports the broken record and re-reads from the line after its start with
 * a fresh parser (libcsv has no way back from CSV_EPARSE). */
static void lbcsv_recover(lbcsv *c, size_t *off, const char *reason, size_t err_line)
{
    if (c->state == LBCSV_HEADER) {
        c->fatal = import__refuse(c->out, FP_BAD_FILE,
                                  "the header (line %zu) is not valid CSV: %s on line %zu",
                                  c->rec_line, reason, err_line);
        return;
    }
    if (err_line == c->rec_line)
        import__row_error(c->out, c->rec_line, NULL, 0, 0, "%s", reason);
    else
        import__row_error(c->out, c->rec_line, NULL, 0, 0, "%s on line %zu", reason, err_line);
    csv_free(&c->p);
    lbcsv_init_parser(&c->p);
    lbcsv_clear_record(c);
    c->in_record = false;
    lbcsv_reread(c, off);
}

/* True when libcsv would start a record in these bytes: it skips spaces,
 * tabs and line breaks between records. */
static bool lbcsv_has_content(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return true;
    return false;
}

static fp_err lbcsv_run(lbcsv *c, size_t start)
{
    const unsigned char *d = c->data;
    size_t len = c->len;
    size_t off = start;
    size_t fed = 0;
    size_t budget = (len - start) * LBCSV_FEED_FACTOR + 65536;

    c->line = 1;
    for (;;) {
        while (off < len && c->fatal == FP_OK) {
            /* Feed one line at a time (a chunk ends after each CR or LF) so
             * that the physical line number is known whenever a record
             * starts or libcsv stops on an error. */
            size_t end = off;
            while (end < len && d[end] != '\n' && d[end] != '\r')
                end++;
            if (end < len)
                end++;
            if (!c->in_record && lbcsv_has_content(d + off, end - off)) {
                c->in_record = true;
                c->rec_line = c->line;
                c->rec_off = off;
            }
            fed += end - off;
            if (fed > budget) {
                import__row_error(c->out, c->line, NULL, 0, 0,
                                  "stopped reading here after too many quoting errors");
                return FP_OK;
            }
            size_t n = csv_parse(&c->p, d + off, end - off, lbcsv_on_field, lbcsv_on_row, c);
            if (c->fatal != FP_OK)
                return c->fatal;
            if (n < end - off || csv_error(&c->p) != CSV_SUCCESS) {
                const char *why = n < end - off && d[off + n] == '"'
                                      ? "a quote inside an unquoted field (quotes must be "
                                        "doubled inside a quoted field)"
                                      : "text after a closing quote (a quote inside a quoted "
                                        "field must be doubled)";
                lbcsv_recover(c, &off, why, c->line);
                continue;
            }
            if (c->restart) {
                lbcsv_reread(c, &off);
                continue;
            }
            /* A CR directly followed by LF is one line break. */
            if (d[end - 1] == '\n' || (d[end - 1] == '\r' && !(end < len && d[end] == '\n')))
                c->line++;
            off = end;
        }
        if (c->fatal != FP_OK)
            return c->fatal;
        if (csv_fini(&c->p, lbcsv_on_field, lbcsv_on_row, c) != 0) {
            lbcsv_recover(c, &off, "unterminated quoted field", c->rec_line);
            if (c->fatal != FP_OK)
                return c->fatal;
            continue;
        }
        if (c->fatal != FP_OK)
            return c->fatal;
        if (c->restart) {
            lbcsv_reread(c, &off);
            continue;
        }
        return FP_OK;
    }
}

static size_t lbcsv_bom(const unsigned char *data, size_t len)
{
    return len >= 3 && data[0] == 0xEF && data[1] == 0xBB && data[2] == 0xBF ? 3 : 0;
}

static bool lbcsv_utf16(const unsigned char *data, size_t len)
{
    return len >= 2 &&
           ((data[0] == 0xFF && data[1] == 0xFE) || (data[0] == 0xFE && data[1] == 0xFF));
}

static fp_err lbcsv_parse(const unsigned char *data, size_t len, import_result *out)
{
    lbcsv c;
    memset(&c, 0, sizeof c);
    c.out = out;
    c.data = data;
    c.len = len;
    c.col_name = c.col_year = c.col_uri = -1;
    fp_err rc = FP_OK;

    out->format = import_format_lb_csv.name;
    if (len > IMPORT_MAX_BYTES)
        return import__refuse(out, FP_TOO_LARGE, "the file is %zu bytes; the limit is %u MiB",
                              len, IMPORT_MAX_BYTES / (1024u * 1024u));
    if (lbcsv_utf16(data, len))
        return import__refuse(out, FP_BAD_FILE,
                              "the file is UTF-16; Letterboxd exports are UTF-8 CSV");

    lbcsv_init_parser(&c.p);
    rc = lbcsv_run(&c, lbcsv_bom(data, len));
    if (rc != FP_OK)
        goto out;
    switch (c.state) {
    case LBCSV_HEADER:
        rc = import__refuse(out, FP_BAD_FILE, "the file is empty (no header line; expected "
                                              LBCSV_EXPECTED ")");
        break;
    case LBCSV_LIST_META:
        rc = import__refuse(out, FP_BAD_FILE,
                            "Letterboxd list export without an entries table (no "
                            "Position,Name,Year,URL,Description header)");
        break;
    case LBCSV_ROWS:
        break;
    }
out:
    lbcsv_clear_record(&c);
    csv_free(&c.p);
    return rc;
}

/* Header fields of the first line, for sniffing. */
typedef struct lbcsv_sniff_ctx {
    size_t n;
    bool name, year, uri, date;
} lbcsv_sniff_ctx;

static void lbcsv_sniff_field(void *field, size_t n, void *ctx)
{
    lbcsv_sniff_ctx *s = ctx;
    const char *f = field ? field : "";
    lbcsv_trim(&f, &n);
    s->n++;
    char col[32];
    if (n >= sizeof col)
        return;
    memcpy(col, f, n);
    col[n] = '\0';
    s->name |= lbcsv_eq(col, "Name");
    s->year |= lbcsv_eq(col, "Year");
    s->uri |= lbcsv_eq(col, "Letterboxd URI") || lbcsv_eq(col, "URL");
    s->date |= lbcsv_eq(col, "Date") || lbcsv_eq(col, "Position");
}

static void lbcsv_sniff_row(int term, void *ctx)
{
    (void)term;
    (void)ctx;
}

static bool lbcsv_ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcasecmp(s + n - k, suffix) == 0;
}

static int lbcsv_sniff(const unsigned char *data, size_t len, const char *filename)
{
    size_t start = lbcsv_bom(data, len);
    size_t end = start;
    while (end < len && end - start < LBCSV_SNIFF_BYTES && data[end] != '\n' && data[end] != '\r')
        end++;
    if (lbcsv_utf16(data, len))
        return 10; /* UTF-16 text: claim it weakly so the refusal can say why */
    if (end == start)
        return 0;
    int score = 0;
    size_t magic = strlen(LBCSV_LIST_MAGIC);
    if (end - start >= magic && memcmp(data + start, LBCSV_LIST_MAGIC, magic) == 0) {
        score = 90;
    } else {
        struct csv_parser p;
        lbcsv_sniff_ctx s = {0};
        int irc = csv_init(&p, 0);
        (void)irc;
        csv_set_realloc_func(&p, fp_realloc);
        csv_set_free_func(&p, fp_free);
        size_t n = csv_parse(&p, data + start, end - start, lbcsv_sniff_field, lbcsv_sniff_row, &s);
        (void)n;
        int frc = csv_fini(&p, lbcsv_sniff_field, lbcsv_sniff_row, &s);
        (void)frc;
        csv_free(&p);
        if (s.name)
            score = 40 + (s.year ? 20 : 0) + (s.uri ? 20 : 0) + (s.date ? 10 : 0);
    }
    /* The file name only breaks ties between equally plausible contents. */
    if (score > 0 && filename && lbcsv_ends_with(filename, ".csv"))
        score += 5;
    return score > 100 ? 100 : score;
}

const import_format import_format_lb_csv = {
    .name = "letterboxd-csv",
    .sniff = lbcsv_sniff,
    .parse = lbcsv_parse,
};

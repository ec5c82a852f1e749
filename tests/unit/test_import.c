/*
 * Unit tests for src/import: the Letterboxd CSV backend on synthetic CSV
 * (quoting, line ends, BOM, broken rows and their line numbers, list
 * exports), the zip backend on archives built here with libzip in memory
 * (proper export, no watchlist, corrupt, zip bombs), and the sniffing
 * dispatcher.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <zip.h>

#include "core/buf.h"
#include "core/mem.h"
#include "import/import.h"

#define H "Date,Name,Year,Letterboxd URI\n"
#define QUOTE_IN_FIELD \
    "a quote inside an unquoted field (quotes must be doubled inside a quoted field)"
#define TEXT_AFTER_QUOTE \
    "text after a closing quote (a quote inside a quoted field must be doubled)"
#define U_FFFD "\xEF\xBF\xBD" /* how a row error's title shows a byte it cannot show */

typedef struct want_film {
    const char *title;
    int year;
    const char *uri;  /* NULL: expect lb_uri NULL */
    const char *slug; /* NULL: expect lb_slug NULL */
} want_film;

typedef struct want_err {
    size_t line;
    const char *reason;
    const char *title; /* the row's film as the error names it; NULL: none */
    int year;          /* 0: none */
} want_err;

typedef struct csv_case {
    const char *name;
    const char *in;
    size_t len; /* 0: strlen(in) */
    fp_err rc;
    size_t nfilms;
    want_film films[6];
    size_t nerrs;
    want_err errs[4];
    const char *msg; /* substring of r.message on refusal */
} csv_case;

static const csv_case csv_cases[] = {
    {"plain LF",
     H "2023-09-26,The Royal Hotel,2023,https://boxd.it/zEvs\n"
       "2023-12-01,The Bar,2017,https://boxd.it/eRT6\n",
     0, FP_OK, 2,
     {{"The Royal Hotel", 2023, "https://boxd.it/zEvs", NULL},
      {"The Bar", 2017, "https://boxd.it/eRT6", NULL}},
     0, {{0}}, NULL},
    {"BOM and CRLF",
     "\xEF\xBB\xBF"
     "Date,Name,Year,Letterboxd URI\r\n"
     "2023-01-01,Heat,1995,https://boxd.it/2aQA\r\n"
     "2023-01-02,Heat 2,,https://boxd.it/abc\r\n"
     "2023-01-02,,,https://boxd.it/abd\r\n",
     0, FP_OK, 2,
     {{"Heat", 1995, "https://boxd.it/2aQA", NULL}, {"Heat 2", 0, "https://boxd.it/abc", NULL}},
     1, {{4, "no film title (the Name column is empty)", NULL, 0}}, NULL},
    {"quoted commas and doubled quotes",
     H "2023-01-01,\"Argentina, 1985\",2022,https://boxd.it/A1\n"
       "2023-01-01,\"sex, lies, and videotape\",1989,https://boxd.it/B2\n"
       "2023-01-01,\"The \"\"Best\"\" Film\",2001,https://boxd.it/C3\n"
       "\"2023-01-01\",\"Quoted\",\"1999\",\"https://boxd.it/D4\"\n",
     0, FP_OK, 4,
     {{"Argentina, 1985", 2022, "https://boxd.it/A1", NULL},
      {"sex, lies, and videotape", 1989, "https://boxd.it/B2", NULL},
      {"The \"Best\" Film", 2001, "https://boxd.it/C3", NULL},
      {"Quoted", 1999, "https://boxd.it/D4", NULL}},
     0, {{0}}, NULL},
    {"embedded newline keeps line numbers",
     H "d,\"Two\nLines\",2020,https://boxd.it/X1\n"
       "d,,2020,https://boxd.it/X2\n"
       "d,Ok,2021,https://boxd.it/X3\n",
     0, FP_OK, 2,
     {{"Two\nLines", 2020, "https://boxd.it/X1", NULL}, {"Ok", 2021, "https://boxd.it/X3", NULL}},
     1, {{4, "no film title (the Name column is empty)", NULL, 2020}}, NULL},
    {"missing final newline", H "d,Last,1999,https://boxd.it/Z", 0, FP_OK, 1,
     {{"Last", 1999, "https://boxd.it/Z", NULL}}, 0, {{0}}, NULL},
    {"blank lines are skipped but counted", H "\n\nd,A,2000,\n   \nd,,2001,\n", 0, FP_OK, 1,
     {{"A", 2000, NULL, NULL}}, 1, {{6, "no film title (the Name column is empty)", NULL, 2001}}, NULL},
    {"BOM before a Name first column", "\xEF\xBB\xBFName,Year\r\nA,2000\r\n", 0, FP_OK, 1,
     {{"A", 2000, NULL, NULL}}, 0, {{0}}, NULL},
    {"lone CR line ends", "Date,Name,Year,Letterboxd URI\rd,A,2000,\rd,,2001,\r", 0, FP_OK, 1,
     {{"A", 2000, NULL, NULL}}, 1, {{3, "no film title (the Name column is empty)", NULL, 2001}}, NULL},
    {"bad years",
     H "d,A,abc,\nd,B,1700,\nd,C,20201,\nd,D, 2020 ,\nd,E,1\xFF,\nd,F,1870,\nd,G,2200,\n", 0,
     FP_OK, 3, {{"D", 2020, NULL, NULL}, {"F", 1870, NULL, NULL}, {"G", 2200, NULL, NULL}}, 4,
     {{2, "Year 'abc' is not a year", "A", 0},
      {3, "Year 1700 is out of range (1870-2200)", "B", 0},
      {4, "Year '20201' is not a year", "C", 0},
      {6, "Year '1\xEF\xBF\xBD' is not a year", "E", 0}},
     NULL},
    {"empty, blank and padded names",
     H "d,,2020,\nd,\"   \",2020,\nd,  Padded  ,2020,\nd,\" Quoted pad \",2020,\n", 0, FP_OK, 2,
     {{"Padded", 2020, NULL, NULL}, {"Quoted pad", 2020, NULL, NULL}}, 2,
     {{2, "no film title (the Name column is empty)", NULL, 2020}, {3, "no film title (the Name column is empty)", NULL, 2020}}, NULL},
    {"extra and missing fields",
     H "d,A,2000,https://boxd.it/a,,\n"
       "d,B,2000,https://boxd.it/b,extra\n"
       "d,C\n"
       "d,D,2001,https://boxd.it/d\n",
     0, FP_OK, 2, {{"A", 2000, "https://boxd.it/a", NULL}, {"D", 2001, "https://boxd.it/d", NULL}},
     2, {{3, "expected 4 fields, found 5", "B", 2000}, {4, "expected 4 fields, found 2", "C", 0}},
     NULL},
    {"stray quote in an unquoted field", H "d,Bad\"Quote,2020,\nd,Good,2021,\nd,,2021,\n", 0,
     FP_OK, 1, {{"Good", 2021, NULL, NULL}}, 2,
     {{2, QUOTE_IN_FIELD, NULL, 0}, {4, "no film title (the Name column is empty)", NULL, 2021}}, NULL},
    {"text after a closing quote", H "d,\"Bad\"x,2020,\nd,Good,2021,\n", 0, FP_OK, 1,
     {{"Good", 2021, NULL, NULL}}, 1, {{2, TEXT_AFTER_QUOTE, NULL, 0}}, NULL},
    {"unterminated quote: rows after it are re-read",
     H "d,\"Broken,2020,\nd,Good,2021,\nd,Also,2022,\nd,,2023,\n", 0, FP_OK, 2,
     {{"Good", 2021, NULL, NULL}, {"Also", 2022, NULL, NULL}}, 2,
     {{2, "unterminated quoted field", NULL, 0}, {5, "no film title (the Name column is empty)", NULL, 2023}}, NULL},
    {"quote error found lines later is reported where the record starts",
     H "d,\"Broken,2020,\nd,Good,2021,\nd,\"X\",2022,\nd,Y,old,\n", 0, FP_OK, 2,
     {{"Good", 2021, NULL, NULL}, {"X", 2022, NULL, NULL}}, 2,
     {{2, TEXT_AFTER_QUOTE " on line 4", NULL, 0}, {5, "Year 'old' is not a year", "Y", 0}}, NULL},
    {"unbalanced quote closed by chance",
     H "d,\"Broken,2020,\nd,Good,2021,\n\",x\n", 0, FP_OK, 1, {{"Good", 2021, NULL, NULL}}, 2,
     {{2, "expected 4 fields, found 3", NULL, 0}, {4, "unterminated quoted field", NULL, 0}},
     NULL},
    {"invalid UTF-8 names are row errors",
     H "d,L\xE9on,1994,\nd,Caf\xC3\xA9,2001,\nd,Over\xC0\xAFlong,2001,\nd,Sur\xED\xA0\x80,2001,\n"
       "d,Cut\xE2\x82,2001,\n",
     0, FP_OK, 1, {{"Caf\xC3\xA9", 2001, NULL, NULL}}, 4,
     {{2, "Name is not valid UTF-8 (byte 0xE9 at offset 1); save the file as UTF-8",
       "L" U_FFFD "on", 1994},
      {4, "Name is not valid UTF-8 (byte 0xC0 at offset 4); save the file as UTF-8",
       "Over" U_FFFD U_FFFD "long", 2001},
      {5, "Name is not valid UTF-8 (byte 0xED at offset 3); save the file as UTF-8",
       "Sur" U_FFFD U_FFFD U_FFFD, 2001},
      {6, "Name is not valid UTF-8 (byte 0xE2 at offset 3); save the file as UTF-8",
       "Cut" U_FFFD U_FFFD, 2001}},
     NULL},
    {"invalid UTF-8 in an unused column is ignored", H "d\xFF\xFE,A,2000,\n", 0, FP_OK, 1,
     {{"A", 2000, NULL, NULL}}, 0, {{0}}, NULL},
    {"NUL byte in a name", H "d,A\0B,2000,\nd,C,2000,\n", sizeof(H "d,A\0B,2000,\nd,C,2000,\n") - 1,
     FP_OK, 1, {{"C", 2000, NULL, NULL}}, 1, {{2, "Name contains a NUL byte", "A" U_FFFD "B", 2000}},
     NULL},
    {"non-ASCII names pass unchanged",
     H "d,Y un d\xC3\xAD"
       "a Nico se fue,2019,\nd,Euphoria: F*ck Anyone Who\xE2\x80\x99s Not a Sea Blob,2021,\n",
     0, FP_OK, 2,
     {{"Y un d\xC3\xAD"
       "a Nico se fue",
       2019, NULL, NULL},
      {"Euphoria: F*ck Anyone Who\xE2\x80\x99s Not a Sea Blob", 2021, NULL, NULL}},
     0, {{0}}, NULL},
    {"header only", H, 0, FP_OK, 0, {{0}}, 0, {{0}}, NULL},
    {"header only without newline", "Date,Name,Year,Letterboxd URI", 0, FP_OK, 0, {{0}}, 0, {{0}},
     NULL},
    {"empty file", "", 0, FP_BAD_FILE, 0, {{0}}, 0, {{0}}, "the file is empty"},
    {"only blank lines", "\n\r\n  \n", 0, FP_BAD_FILE, 0, {{0}}, 0, {{0}}, "the file is empty"},
    {"no Name column", "Const,Title,Year\ntt1,A,2000\n", 0, FP_BAD_FILE, 0, {{0}}, 0, {{0}},
     "no Name column in the header (line 1): found \"Const\", \"Title\", \"Year\"; expected a "
     "Letterboxd export header such as Date,Name,Year,Letterboxd URI"},
    {"broken header", "Date,\"Name,Year,Letterboxd URI\nd,A,2000,\n", 0, FP_BAD_FILE, 0, {{0}}, 0,
     {{0}}, "the header (line 1) is not valid CSV: unterminated quoted field"},
    {"columns found by name in any order and case", " year , NAME \n2000,A\n,B\n", 0, FP_OK, 2,
     {{"A", 2000, NULL, NULL}, {"B", 0, NULL, NULL}}, 0, {{0}}, NULL},
    {"ratings.csv columns",
     "Date,Name,Year,Letterboxd URI,Rating\nd,A,2000,https://boxd.it/a,4.5\n",
     0, FP_OK, 1, {{"A", 2000, "https://boxd.it/a", NULL}}, 0, {{0}}, NULL},
    {"URI forms",
     H "d,A,1972,https://letterboxd.com/film/the-godfather/\n"
       "d,B,2000,http://boxd.it/2aQA\n"
       "d,C,2000,https://example.com/x\n"
       "d,D,2000,https://boxd.it/\n"
       "d,E,2000,https://letterboxd.com/alice/\n"
       "d,F,2000, https://boxd.it/zz \n",
     0, FP_OK, 6,
     {{"A", 1972, "https://letterboxd.com/film/the-godfather/", "the-godfather"},
      {"B", 2000, "http://boxd.it/2aQA", NULL},
      {"C", 2000, NULL, NULL},
      {"D", 2000, NULL, NULL},
      {"E", 2000, NULL, NULL},
      {"F", 2000, "https://boxd.it/zz", NULL}},
     0, {{0}}, NULL},
    {"list export",
     "Letterboxd list export v7\n"
     "Date,Name,Tags,URL,Description\n"
     "2024-05-19,My List,\"a, b\",https://boxd.it/vBHFU,\"Line one\n"
     "with \"\"quotes\"\" and <a href=\"\"x\"\">html</a>\"\n"
     "\n"
     "Position,Name,Year,URL,Description\n"
     "1,\"Film, One\",2001,https://boxd.it/k4aS,\"<a href=\"\"https://boxd.it/6FcmOX\"\">x</a>\n"
     "second line\"\n"
     "2,Film Two,2002,https://boxd.it/hQYA,\n"
     "3,,2003,https://boxd.it/x,\n",
     0, FP_OK, 2,
     {{"Film, One", 2001, "https://boxd.it/k4aS", NULL},
      {"Film Two", 2002, "https://boxd.it/hQYA", NULL}},
     1, {{10, "no film title (the Name column is empty)", NULL, 2003}}, NULL},
    {"list export without entries table",
     "Letterboxd list export v7\nDate,Name,Tags,URL,Description\n"
     "2024-05-19,L,,https://boxd.it/v,\n",
     0, FP_BAD_FILE, 0, {{0}}, 0, {{0}}, "Letterboxd list export without an entries table"},
    {"UTF-16 text", "\xFF\xFE" "D\0a\0", 6, FP_BAD_FILE, 0, {{0}}, 0, {{0}}, "UTF-16"},
};

static void check_film(const film *f, const want_film *w)
{
    assert_non_null(f->title);
    assert_string_equal(f->title, w->title);
    assert_int_equal(f->year, w->year);
    if (w->uri) {
        assert_non_null(f->lb_uri);
        assert_string_equal(f->lb_uri, w->uri);
    } else {
        assert_null(f->lb_uri);
    }
    if (w->slug) {
        assert_non_null(f->lb_slug);
        assert_string_equal(f->lb_slug, w->slug);
    } else {
        assert_null(f->lb_slug);
    }
    assert_int_equal(f->lb_id, 0);
    assert_null(f->imdb_id);
}

static void check_case(const csv_case *c, const import_result *r, fp_err rc)
{
    print_message("case: %s\n", c->name);
    assert_int_equal(rc, c->rc);
    assert_int_equal(r->films.len, c->nfilms);
    for (size_t i = 0; i < c->nfilms; i++)
        check_film(&r->films.items[i], &c->films[i]);
    assert_int_equal(r->nerrors, c->nerrs);
    assert_int_equal(r->nerrors_total, c->nerrs);
    for (size_t i = 0; i < c->nerrs; i++) {
        assert_int_equal(r->errors[i].line, c->errs[i].line);
        assert_string_equal(r->errors[i].reason, c->errs[i].reason);
        if (c->errs[i].title)
            assert_string_equal(r->errors[i].title, c->errs[i].title);
        else
            assert_null(r->errors[i].title);
        assert_int_equal(r->errors[i].year, c->errs[i].year);
    }
    if (c->rc == FP_OK) {
        assert_null(r->message);
    } else {
        assert_non_null(r->message);
        if (strstr(r->message, c->msg) == NULL)
            fail_msg("message '%s' lacks '%s'", r->message, c->msg);
    }
}

static void test_csv_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof csv_cases / sizeof csv_cases[0]; i++) {
        const csv_case *c = &csv_cases[i];
        size_t len = c->len ? c->len : strlen(c->in);
        import_result r;
        import_result_init(&r);
        fp_err rc = import_format_lb_csv.parse((const unsigned char *)c->in, len, &r);
        check_case(c, &r, rc);
        assert_string_equal(r.format, "letterboxd-csv");
        import_result_free(&r);
        assert_null(r.message);
        assert_int_equal(r.films.len, 0);
    }
}

/* The same table through the dispatcher: every readable case sniffs as CSV. */
static void test_csv_table_via_dispatcher(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof csv_cases / sizeof csv_cases[0]; i++) {
        const csv_case *c = &csv_cases[i];
        if (c->rc != FP_OK)
            continue;
        size_t len = c->len ? c->len : strlen(c->in);
        import_result r;
        import_result_init(&r);
        fp_err rc = import_parse((const unsigned char *)c->in, len, "watchlist.csv", &r);
        check_case(c, &r, rc);
        assert_string_equal(r.format, "letterboxd-csv");
        import_result_free(&r);
    }
}

static char *repeat(char ch, size_t n)
{
    char *s = fp_malloc(n + 1);
    memset(s, ch, n);
    s[n] = '\0';
    return s;
}

static void test_huge_lines(void **state)
{
    (void)state;
    const size_t big = 1024 * 1024;
    char *filler = repeat('x', big);

    /* A 1 MiB Name is a row error; the next row still imports. */
    char *in = fp_printf(H "d,%s,2000,\nd,Good,2001,https://boxd.it/g\n", filler);
    import_result r;
    import_result_init(&r);
    assert_int_equal(import_format_lb_csv.parse((unsigned char *)in, strlen(in), &r), FP_OK);
    assert_int_equal(r.films.len, 1);
    assert_string_equal(r.films.items[0].title, "Good");
    assert_int_equal(r.nerrors, 1);
    assert_int_equal(r.errors[0].line, 2);
    assert_string_equal(r.errors[0].reason, "Name is 1048576 bytes long; the limit is 1024");
    assert_null(r.errors[0].title);
    assert_int_equal(r.errors[0].year, 2000);
    import_result_free(&r);
    fp_free(in);

    /* A long Name names its row cut to IMPORT_ROW_TITLE_MAX bytes. */
    char *long_name = repeat('n', 1000);
    in = fp_printf(H "d,%s,year,\n", long_name);
    assert_int_equal(import_format_lb_csv.parse((unsigned char *)in, strlen(in), &r), FP_OK);
    assert_int_equal(r.nerrors, 1);
    assert_string_equal(r.errors[0].reason, "Year 'year' is not a year");
    assert_int_equal(strlen(r.errors[0].title), IMPORT_ROW_TITLE_MAX + 3);
    assert_memory_equal(r.errors[0].title, long_name, IMPORT_ROW_TITLE_MAX);
    assert_string_equal(r.errors[0].title + IMPORT_ROW_TITLE_MAX, "...");
    assert_int_equal(r.errors[0].year, 0);
    import_result_free(&r);
    fp_free(in);
    fp_free(long_name);

    /* 1 MiB in columns we do not use (Date, a list Description) is fine. */
    in = fp_printf(H "%s,Long Date,2000,\n", filler);
    assert_int_equal(import_format_lb_csv.parse((unsigned char *)in, strlen(in), &r), FP_OK);
    assert_int_equal(r.films.len, 1);
    assert_string_equal(r.films.items[0].title, "Long Date");
    assert_int_equal(r.nerrors, 0);
    import_result_free(&r);
    fp_free(in);

    in = fp_printf("Letterboxd list export v7\nDate,Name,Tags,URL,Description\nd,L,,u,\n\n"
                   "Position,Name,Year,URL,Description\n"
                   "1,Listed,1999,https://boxd.it/k,\"%s\n%s\"\n"
                   "2,Next,2000,https://boxd.it/n,\n",
                   filler, filler);
    assert_int_equal(import_format_lb_csv.parse((unsigned char *)in, strlen(in), &r), FP_OK);
    assert_int_equal(r.films.len, 2);
    assert_string_equal(r.films.items[0].title, "Listed");
    assert_string_equal(r.films.items[1].title, "Next");
    assert_int_equal(r.nerrors, 0);
    import_result_free(&r);
    fp_free(in);
    fp_free(filler);
}

/* Errors past IMPORT_MAX_ROW_ERRORS are counted, not stored; good rows
 * between them still import. */
static void test_error_cap(void **state)
{
    (void)state;
    const size_t nbad = IMPORT_MAX_ROW_ERRORS + 500;
    size_t cap = strlen(H) + nbad * 16 + 64;
    char *in = fp_malloc(cap);
    size_t len = (size_t)snprintf(in, cap, "%s", H);
    for (size_t i = 0; i < nbad; i++)
        len += (size_t)snprintf(in + len, cap - len, "d,,1999,\n");
    len += (size_t)snprintf(in + len, cap - len, "d,Survivor,1999,\n");
    import_result r;
    import_result_init(&r);
    assert_int_equal(import_format_lb_csv.parse((unsigned char *)in, len, &r), FP_OK);
    assert_int_equal(r.films.len, 1);
    assert_string_equal(r.films.items[0].title, "Survivor");
    assert_int_equal(r.nerrors, IMPORT_MAX_ROW_ERRORS);
    assert_int_equal(r.nerrors_total, nbad);
    assert_int_equal(r.errors[0].line, 2);
    assert_int_equal(r.errors[IMPORT_MAX_ROW_ERRORS - 1].line, IMPORT_MAX_ROW_ERRORS + 1);
    import_result_free(&r);
    fp_free(in);
}

/* Every row opens a quote the next row breaks: each error re-reads from the
 * next line, so the work stays linear and every line is reported once. */
static void test_every_row_broken(void **state)
{
    (void)state;
    const size_t n = 5000;
    size_t cap = strlen(H) + n * 8 + 16;
    char *in = fp_malloc(cap);
    size_t len = (size_t)snprintf(in, cap, "%s", H);
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(in + len, cap - len, "d,\"x\n");
    import_result r;
    import_result_init(&r);
    assert_int_equal(import_format_lb_csv.parse((unsigned char *)in, len, &r), FP_OK);
    assert_int_equal(r.films.len, 0);
    assert_int_equal(r.nerrors_total, n);
    assert_int_equal(r.errors[0].line, 2);
    assert_string_equal(r.errors[0].reason, TEXT_AFTER_QUOTE " on line 3");
    import_result_free(&r);
    fp_free(in);
}

static void test_too_large(void **state)
{
    (void)state;
    size_t len = (size_t)IMPORT_MAX_BYTES + 1;
    unsigned char *big = fp_calloc(len, 1);
    import_result r;
    import_result_init(&r);
    assert_int_equal(import_parse(big, len, "watchlist.csv", &r), FP_TOO_LARGE);
    assert_non_null(strstr(r.message, "the limit is 32 MiB"));
    import_result_free(&r);
    assert_int_equal(import_format_lb_csv.parse(big, len, &r), FP_TOO_LARGE);
    import_result_free(&r);
    assert_int_equal(import_format_lb_zip.parse(big, len, &r), FP_TOO_LARGE);
    import_result_free(&r);
    fp_free(big);
}

/* At most IMPORT_MAX_FILMS films: one more refuses the file, whatever the
 * rows hold (here the same short row again and again). */
static void test_too_many_films(void **state)
{
    (void)state;
    for (size_t extra = 0; extra < 2; extra++) {
        size_t rows = IMPORT_MAX_FILMS + extra;
        fp_buf b;
        fp_buf_init(&b, (size_t)-1);
        assert_int_equal(fp_buf_appendf(&b, "Name\n"), FP_OK);
        for (size_t i = 0; i < rows; i++)
            assert_int_equal(fp_buf_append(&b, "a\n", 2), FP_OK);
        size_t len = 0;
        char *csv = fp_buf_steal(&b, &len);
        import_result r;
        import_result_init(&r);
        fp_err rc = import_parse((const unsigned char *)csv, len, "watchlist.csv", &r);
        if (extra == 0) {
            assert_int_equal(rc, FP_OK);
            assert_int_equal(r.films.len, IMPORT_MAX_FILMS);
        } else {
            assert_int_equal(rc, FP_TOO_LARGE);
            assert_string_equal(r.message, "the file lists more than 100000 films; an import "
                                           "takes at most 100000");
            assert_int_equal(r.films.len, 0);
            assert_int_equal(r.nerrors, 0);
        }
        import_result_free(&r);
        fp_free(csv);
    }
}

/* ---- zip archives built in memory ---- */

typedef struct zentry {
    const char *name;
    const void *data;
    size_t len; /* 0: strlen(data) */
} zentry;

/* Caller frees the returned bytes. */
static unsigned char *make_zip(const zentry *e, size_t n, size_t *out_len)
{
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(NULL, 0, 0, &ze);
    assert_non_null(src);
    zip_t *za = zip_open_from_source(src, ZIP_TRUNCATE, &ze);
    assert_non_null(za);
    zip_source_keep(src);
    for (size_t i = 0; i < n; i++) {
        size_t len = e[i].len ? e[i].len : strlen(e[i].data);
        zip_source_t *s = zip_source_buffer(za, e[i].data, len, 0);
        assert_non_null(s);
        assert_true(zip_file_add(za, e[i].name, s, ZIP_FL_OVERWRITE) >= 0);
    }
    assert_int_equal(zip_close(za), 0);
    assert_int_equal(zip_source_open(src), 0);
    assert_int_equal(zip_source_seek(src, 0, SEEK_END), 0);
    zip_int64_t size = zip_source_tell(src);
    assert_true(size > 0);
    assert_int_equal(zip_source_seek(src, 0, SEEK_SET), 0);
    unsigned char *buf = fp_malloc((size_t)size);
    assert_int_equal(zip_source_read(src, buf, (zip_uint64_t)size), size);
    zip_source_close(src);
    zip_source_free(src);
    zip_error_fini(&ze);
    *out_len = (size_t)size;
    return buf;
}

static void put_le32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

/* Rewrites the uncompressed size of every entry in the central directory
 * and, with local_too, in the local headers, so the archive stays
 * self-consistent. */
static size_t patch_sizes(unsigned char *z, size_t len, uint32_t size, bool local_too)
{
    size_t patched = 0;
    for (size_t i = 0; i + 46 <= len; i++) {
        if (memcmp(z + i, "PK\x01\x02", 4) == 0) {
            put_le32(z + i + 24, size);
            patched++;
        } else if (local_too && memcmp(z + i, "PK\x03\x04", 4) == 0) {
            put_le32(z + i + 22, size);
            patched++;
        }
    }
    return patched;
}

static const char wl_csv[] = H "2023-09-26,The Royal Hotel,2023,https://boxd.it/zEvs\n"
                               "2023-09-27,\"Argentina, 1985\",2022,https://boxd.it/A1\n";
static const char watched_csv[] = H "2023-09-02,On the Line,2022,https://boxd.it/B0DK\n";
static const char list_csv[] = "Letterboxd list export v7\nDate,Name,Tags,URL,Description\n"
                               "d,L,,https://boxd.it/v,\n\nPosition,Name,Year,URL,Description\n"
                               "1,Listed,2001,https://boxd.it/k,\n";

static void check_export_films(const import_result *r)
{
    assert_int_equal(r->films.len, 2);
    want_film w0 = {"The Royal Hotel", 2023, "https://boxd.it/zEvs", NULL};
    want_film w1 = {"Argentina, 1985", 2022, "https://boxd.it/A1", NULL};
    check_film(&r->films.items[0], &w0);
    check_film(&r->films.items[1], &w1);
}

static void test_zip_export(void **state)
{
    (void)state;
    const zentry e[] = {
        {"profile.csv", "Date Joined,Username\n2023-01-01,alice\n", 0},
        {"watched.csv", watched_csv, 0},
        {"ratings.csv", "Date,Name,Year,Letterboxd URI,Rating\n", 0},
        {"lists/my-list.csv", list_csv, 0},
        {"watchlist.csv", wl_csv, 0},
    };
    size_t len;
    unsigned char *z = make_zip(e, sizeof e / sizeof e[0], &len);
    import_result r;
    import_result_init(&r);
    assert_int_equal(import_parse(z, len, "letterboxd-alice-2024-01-01-utc.zip", &r), FP_OK);
    assert_string_equal(r.format, "letterboxd-zip");
    check_export_films(&r);
    assert_int_equal(r.nerrors, 0);
    assert_null(r.message);
    import_result_free(&r);

    /* No file name, or a misleading one: content decides. */
    assert_int_equal(import_parse(z, len, "watchlist.csv", &r), FP_OK);
    assert_string_equal(r.format, "letterboxd-zip");
    check_export_films(&r);
    import_result_free(&r);
    fp_free(z);
}

static void test_zip_nested_folder(void **state)
{
    (void)state;
    const zentry e[] = {
        {"letterboxd-alice-2024/watched.csv", watched_csv, 0},
        {"letterboxd-alice-2024/watchlist.csv", wl_csv, 0},
        {"__MACOSX/letterboxd-alice-2024/._watchlist.csv", "junk", 0},
    };
    size_t len;
    unsigned char *z = make_zip(e, sizeof e / sizeof e[0], &len);
    import_result r;
    import_result_init(&r);
    assert_int_equal(import_parse(z, len, NULL, &r), FP_OK);
    check_export_films(&r);
    import_result_free(&r);
    fp_free(z);
}

/* Row errors inside the zipped CSV come through with their lines. */
static void test_zip_row_errors(void **state)
{
    (void)state;
    const zentry e[] = {{"watchlist.csv", H "d,A,2000,\nd,,2001,\nd,B,abc,\n", 0}};
    size_t len;
    unsigned char *z = make_zip(e, 1, &len);
    import_result r;
    import_result_init(&r);
    assert_int_equal(import_format_lb_zip.parse(z, len, &r), FP_OK);
    assert_int_equal(r.films.len, 1);
    assert_string_equal(r.films.items[0].title, "A");
    assert_int_equal(r.nerrors, 2);
    assert_int_equal(r.errors[0].line, 3);
    assert_string_equal(r.errors[0].reason, "no film title (the Name column is empty)");
    assert_int_equal(r.errors[1].line, 4);
    assert_string_equal(r.errors[1].reason, "Year 'abc' is not a year");
    assert_null(r.errors[0].title);
    assert_int_equal(r.errors[0].year, 2001);
    assert_string_equal(r.errors[1].title, "B");
    assert_int_equal(r.errors[1].year, 0);
    import_result_free(&r);
    fp_free(z);
}

typedef struct zip_refusal {
    const char *name;
    zentry e[3];
    size_t n;
    const char *msg;
} zip_refusal;

static void test_zip_refusals(void **state)
{
    (void)state;
    static const zip_refusal cases[] = {
        {"lists only",
         {{"lists/a.csv", list_csv, 0}, {"lists/b.csv", list_csv, 0}, {"profile.csv", "x\n", 0}},
         3,
         "not a Letterboxd export: no watchlist.csv (the zip holds 2 list exports; to use a "
         "list as a watchlist, upload its .csv file on its own)"},
        {"no watchlist", {{"watched.csv", watched_csv, 0}, {"notes.txt", "hello", 0}}, 2,
         "not a Letterboxd export: no watchlist.csv in the zip"},
        {"watchlist in a deeper folder only", {{"a/b/watchlist.csv", wl_csv, 0}}, 1,
         "not a Letterboxd export: no watchlist.csv in the zip"},
        {"two candidate folders",
         {{"a/watchlist.csv", wl_csv, 0}, {"b/watchlist.csv", wl_csv, 0}}, 2,
         "not a Letterboxd export: no watchlist.csv in the zip"},
        {"watchlist.csv is not an export", {{"watchlist.csv", "Const,Title\ntt1,A\n", 0}}, 1,
         "watchlist.csv in the zip: no Name column in the header (line 1)"},
        {"watchlist.csv is empty", {{"watchlist.csv", "", 0}}, 1,
         "watchlist.csv in the zip is empty (no header line; expected Date,Name,Year,"
         "Letterboxd URI)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        print_message("case: %s\n", cases[i].name);
        size_t len;
        unsigned char *z = make_zip(cases[i].e, cases[i].n, &len);
        import_result r;
        import_result_init(&r);
        assert_int_equal(import_parse(z, len, "export.zip", &r), FP_BAD_FILE);
        assert_string_equal(r.format, "letterboxd-zip");
        assert_non_null(r.message);
        if (strncmp(r.message, cases[i].msg, strlen(cases[i].msg)) != 0)
            fail_msg("message '%s' does not start with '%s'", r.message, cases[i].msg);
        assert_int_equal(r.films.len, 0);
        assert_int_equal(r.nerrors, 0);
        import_result_free(&r);
        fp_free(z);
    }
}

static void expect_corrupt(const unsigned char *z, size_t len, const char *msg_prefix)
{
    import_result r;
    import_result_init(&r);
    fp_err rc = import_format_lb_zip.parse(z, len, &r);
    assert_int_equal(rc, FP_BAD_FILE);
    assert_non_null(r.message);
    if (strncmp(r.message, msg_prefix, strlen(msg_prefix)) != 0)
        fail_msg("message '%s' does not start with '%s'", r.message, msg_prefix);
    assert_int_equal(r.films.len, 0);
    import_result_free(&r);
}

static void test_zip_corrupt(void **state)
{
    (void)state;
    const zentry e[] = {{"watched.csv", watched_csv, 0}, {"watchlist.csv", wl_csv, 0}};
    size_t len;
    unsigned char *z = make_zip(e, 2, &len);

    /* Truncated: the end-of-central-directory record is gone. */
    expect_corrupt(z, len / 2, "not a readable zip archive: ");

    /* Only the magic, then garbage. */
    static const unsigned char junk[] = "PK\x03\x04 this is not really a zip archive at all";
    expect_corrupt(junk, sizeof junk - 1, "not a readable zip archive: ");

    /* An empty archive: just an end-of-central-directory record. */
    static const unsigned char empty_zip[22] = "PK\x05\x06";
    expect_corrupt(empty_zip, sizeof empty_zip,
                   "not a Letterboxd export: no watchlist.csv in the zip");

    /* Damaged compressed data of watchlist.csv: the CRC check catches it. */
    unsigned char *bad = fp_malloc(len);
    memcpy(bad, z, len);
    const unsigned char *name = NULL;
    for (size_t i = 0; i + 30 < len; i++)
        if (memcmp(bad + i, "PK\x03\x04", 4) == 0 && memcmp(bad + i + 30, "watchlist.csv", 13) == 0)
            name = bad + i;
    assert_non_null(name);
    size_t extra = (size_t)name[28] | (size_t)name[29] << 8;
    size_t data_off = (size_t)(name - bad) + 30 + 13 + extra;
    for (size_t i = 4; i < 12; i++)
        bad[data_off + i] ^= 0x5A;
    expect_corrupt(bad, len, "watchlist.csv in the zip is damaged: ");
    fp_free(bad);

    /* Central directory overwritten. */
    bad = fp_malloc(len);
    memcpy(bad, z, len);
    for (size_t i = 0; i + 4 <= len; i++)
        if (memcmp(bad + i, "PK\x01\x02", 4) == 0)
            memset(bad + i, 0xEE, 16);
    expect_corrupt(bad, len, "not a readable zip archive: ");
    fp_free(bad);

    /* Central directory and local header disagree on the size. */
    bad = fp_malloc(len);
    memcpy(bad, z, len);
    assert_int_equal(patch_sizes(bad, len, 7, false), 2);
    expect_corrupt(bad, len, "not a readable zip archive: ");
    fp_free(bad);
    fp_free(z);
}

/* An entry whose headers claim ~4 GiB is refused before inflating it. */
static void test_zip_claims_huge_size(void **state)
{
    (void)state;
    const zentry e[] = {{"watchlist.csv", wl_csv, 0}};
    size_t len;
    unsigned char *z = make_zip(e, 1, &len);
    assert_int_equal(patch_sizes(z, len, 0xFFFFFF00u, true), 2);
    import_result r;
    import_result_init(&r);
    assert_int_equal(import_parse(z, len, "export.zip", &r), FP_TOO_LARGE);
    assert_string_equal(r.message, "watchlist.csv in the zip unpacks to 4294967040 bytes; "
                                   "the limit is 32 MiB");
    assert_int_equal(r.films.len, 0);
    import_result_free(&r);
    fp_free(z);
}

/* A real bomb: 33 MiB of zeros deflate to a few KiB. Declared honestly it is
 * refused from the header; with the header lying small, reading stops at
 * the limit (or libzip notices the lie): never a success, never a crash. */
static void test_zip_bomb(void **state)
{
    (void)state;
    size_t big = (size_t)IMPORT_MAX_BYTES + 1024 * 1024;
    char *zeros = fp_calloc(big, 1);
    const zentry e[] = {{"watchlist.csv", zeros, big}};
    size_t len;
    unsigned char *z = make_zip(e, 1, &len);
    fp_free(zeros);
    assert_true(len < 200 * 1024);

    import_result r;
    import_result_init(&r);
    assert_int_equal(import_parse(z, len, NULL, &r), FP_TOO_LARGE);
    assert_string_equal(r.message,
                        "watchlist.csv in the zip unpacks to 34603008 bytes; the limit is 32 MiB");
    import_result_free(&r);

    /* libzip (1.7.3) inflates past a declared size without complaint: the
     * read limit is what stops it. */
    assert_int_equal(patch_sizes(z, len, 1000, true), 2);
    assert_int_equal(import_parse(z, len, NULL, &r), FP_TOO_LARGE);
    assert_string_equal(r.message, "watchlist.csv in the zip unpacks to more than 32 MiB "
                                   "(its header claims 1000 bytes)");
    assert_int_equal(r.films.len, 0);
    import_result_free(&r);
    fp_free(z);
}

/* ---- sniffing and dispatch ---- */

static void test_sniff(void **state)
{
    (void)state;
    const zentry with_wl[] = {{"watchlist.csv", wl_csv, 0}};
    const zentry without_wl[] = {{"lists/a.csv", list_csv, 0}};
    size_t zlen, z2len;
    unsigned char *z = make_zip(with_wl, 1, &zlen);
    unsigned char *z2 = make_zip(without_wl, 1, &z2len);
    static const struct {
        const char *in;
        const char *filename;
        int csv, zip;
    } cases[] = {
        {H "d,A,2000,\n", NULL, 90, 0},
        {H "d,A,2000,\n", "watchlist.csv", 95, 0},
        {H "d,A,2000,\n", "WATCHLIST.CSV", 95, 0},
        {H "d,A,2000,\n", "watchlist.zip", 90, 0},
        {"\xEF\xBB\xBF" H, NULL, 90, 0},
        {"\xEF\xBB\xBFName\n", NULL, 40, 0},
        {"Date,Name,Year,Letterboxd URI,Rating\r\n", NULL, 90, 0},
        {"Letterboxd list export v7\nDate,Name,Tags,URL,Description\n", NULL, 90, 0},
        {"Position,Name,Year,URL,Description\n", "x.csv", 95, 0},
        {"Name,Year\n", NULL, 60, 0},
        {"Name\n", NULL, 40, 0},
        {"Name\n", "a.csv", 45, 0},
        {"Const,Title,Year\n", "watchlist.csv", 0, 0},
        {"The Godfather (1972)\n", "list.txt", 0, 0},
        {"", "watchlist.csv", 0, 0},
        {"\xFF\xFE" "D\0", NULL, 10, 0},
        {"PK\x03\x04 not csv", NULL, 0, 80},
        {"PK\x03\x04 not csv", "x.zip", 0, 85},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const unsigned char *d = (const unsigned char *)cases[i].in;
        size_t len = strlen(cases[i].in);
        if (cases[i].in[0] == '\xFF')
            len = 4;
        print_message("sniff case %zu\n", i);
        assert_int_equal(import_format_lb_csv.sniff(d, len, cases[i].filename), cases[i].csv);
        assert_int_equal(import_format_lb_zip.sniff(d, len, cases[i].filename), cases[i].zip);
    }
    assert_int_equal(import_format_lb_zip.sniff(z, zlen, NULL), 95);
    assert_int_equal(import_format_lb_zip.sniff(z, zlen, "export.zip"), 100);
    assert_int_equal(import_format_lb_zip.sniff(z2, z2len, NULL), 80);
    assert_int_equal(import_format_lb_csv.sniff(z, zlen, "watchlist.csv"), 0);
    fp_free(z);
    fp_free(z2);
}

static void test_dispatch_refusals(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t len;
        fp_err rc;
        const char *msg;
    } cases[] = {
        {"", 0, FP_BAD_FILE, "the file is empty"},
        {"The Godfather (1972)\nHeat (1995)\n", 0, FP_BAD_FILE, "not a Letterboxd export"},
        {"Const,Title,Year\ntt1,A,2000\n", 0, FP_BAD_FILE, "not a Letterboxd export"},
        {"\x89PNG\r\n\x1a\n", 0, FP_BAD_FILE, "not a Letterboxd export"},
        {"\xFF\xFE" "D\0a\0", 6, FP_BAD_FILE, "the file is UTF-16"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len = cases[i].len ? cases[i].len : strlen(cases[i].in);
        import_result r;
        import_result_init(&r);
        assert_int_equal(import_parse((const unsigned char *)cases[i].in, len, "f.csv", &r),
                         cases[i].rc);
        assert_non_null(r.message);
        if (strstr(r.message, cases[i].msg) == NULL)
            fail_msg("message '%s' lacks '%s'", r.message, cases[i].msg);
        assert_int_equal(r.films.len, 0);
        import_result_free(&r);
    }
    /* NULL data is an empty file, not a crash. */
    import_result r;
    import_result_init(&r);
    assert_int_equal(import_parse(NULL, 0, NULL, &r), FP_BAD_FILE);
    import_result_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv_table),
        cmocka_unit_test(test_csv_table_via_dispatcher),
        cmocka_unit_test(test_huge_lines),
        cmocka_unit_test(test_error_cap),
        cmocka_unit_test(test_every_row_broken),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_too_many_films),
        cmocka_unit_test(test_zip_export),
        cmocka_unit_test(test_zip_nested_folder),
        cmocka_unit_test(test_zip_row_errors),
        cmocka_unit_test(test_zip_refusals),
        cmocka_unit_test(test_zip_corrupt),
        cmocka_unit_test(test_zip_claims_huge_size),
        cmocka_unit_test(test_zip_bomb),
        cmocka_unit_test(test_sniff),
        cmocka_unit_test(test_dispatch_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

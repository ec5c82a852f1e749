/*
 * Conformance test: the real Letterboxd data-export CSVs in
 * $FP_SHARED_FIXTURES/letterboxd/export-*.csv, read in place, must import
 * with the facts recorded in SOURCES.md (row counts, first and last rows,
 * empty years, names with commas and non-ASCII letters, list exports), and
 * the same bytes zipped like a real export must import identically.
 * Also times the 2540-row import. A missing fixtures folder is a failure,
 * not a skip: this test exists to read those files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zip.h>

#include "core/mem.h"
#include "import/import.h"

typedef struct row {
    const char *title;
    int year;
    const char *uri;
} row;

typedef struct export_fixture {
    const char *file;
    size_t count;
    row first, last;
    size_t empty_years;
    size_t with_commas;
    size_t non_ascii;
    row present[4]; /* rows that must be found by title, exactly */
} export_fixture;

static const export_fixture fixtures[] = {
    {"export-watchlist-agosvenezia-2023-11.csv", 169,
     {"The Royal Hotel", 2023, "https://boxd.it/zEvs"},
     {"The Bar", 2017, "https://boxd.it/eRT6"},
     2, 6, 5,
     {{"Argentina, 1985", 2022, "https://boxd.it/qLxM"},
      {"Taxi, An Encounter", 2001, "https://boxd.it/5b8a"},
      {"Y un d\xC3\xAD" "a Nico se fue", 2013, "https://boxd.it/ttqk"},
      {"Euphoria: F*ck Anyone Who\xE2\x80\x99s Not a Sea Blob", 2021, "https://boxd.it/tMkU"}}},
    {"export-watchlist-agosvenezia-2026-07-large.csv", 2540,
     {"Sanctuary", 2022, "https://boxd.it/wPKW"},
     {"Fanny and Alexander", 1984, "https://boxd.it/lXFe"},
     9, 67, 58,
     {{"sex, lies, and videotape", 1989, "https://boxd.it/28Oc"},
      {"Heat 2", 0, "https://boxd.it/DErS"},
      {"Untitled Fall Sequel", 0, "https://boxd.it/Juhg"},
      {"...And Out Comes the Wolf", 0, "https://boxd.it/RU94"}}},
    {"export-watched-agosvenezia-2026-07.csv", 913,
     {"On the Line", 2022, "https://boxd.it/B0DK"},
     {"Obsession", 2025, "https://boxd.it/PNqo"},
     0, 43, 36,
     {{"Maggie Simpson in \"The Longest Daycare\"", 2012, "https://boxd.it/3Sjc"},
      {"Paris, Texas", 1984, "https://boxd.it/29Ts"}}},
    {"export-ratings-agosvenezia-2026-07.csv", 913,
     {"On the Line", 2022, "https://boxd.it/B0DK"},
     {"Obsession", 2025, "https://boxd.it/PNqo"},
     0, 43, 36, {{0}}},
    {"export-list-v7-agosvenezia-2000s-ranked.csv", 55,
     {"The Class", 2007, "https://boxd.it/1q08"},
     {"The Man Next Door", 2009, "https://boxd.it/KRE"},
     0, 0, 1,
     {{"La Ci\xC3\xA9naga", 2001, "https://boxd.it/kpk"}}},
    {"export-list-v7-agosvenezia-black-mirror-ranked.csv", 30,
     {"Black Mirror: San Junipero", 2016, "https://boxd.it/k4aS"},
     {"Black Mirror: Mazey Day", 2023, "https://boxd.it/H7QS"},
     0, 1, 1,
     {{"Black Mirror: Rachel, Jack and Ashley Too", 2019, "https://boxd.it/mltQ"},
      {"Black Mirror: B\xC3\xAAte Noire", 2025, "https://boxd.it/U1VI"}}},
};

static char *fixture_path(const char *file)
{
    const char *dir = getenv("FP_SHARED_FIXTURES");
    if (dir == NULL || dir[0] == '\0')
        fail_msg("FP_SHARED_FIXTURES is not set: this test reads the shared Letterboxd export "
                 "fixtures in place (run it through ctest)");
    return fp_printf("%s/letterboxd/%s", dir, file);
}

/* Whole file into memory; fails the test when it cannot be read. */
static unsigned char *slurp(const char *file, size_t *len)
{
    char *path = fixture_path(file);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open fixture %s (is FP_SHARED_FIXTURES right?)", path);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n > 0);
    rewind(f);
    unsigned char *buf = fp_malloc((size_t)n);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    fp_free(path);
    *len = (size_t)n;
    return buf;
}

static void check_row(const film *f, const row *w)
{
    assert_string_equal(f->title, w->title);
    assert_int_equal(f->year, w->year);
    assert_non_null(f->lb_uri);
    assert_string_equal(f->lb_uri, w->uri);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void check_fixture(const export_fixture *fx, const import_result *r)
{
    print_message("%s: %zu films\n", fx->file, r->films.len);
    assert_int_equal(r->films.len, fx->count);
    assert_int_equal(r->nerrors_total, 0);
    assert_null(r->message);
    check_row(&r->films.items[0], &fx->first);
    check_row(&r->films.items[r->films.len - 1], &fx->last);

    size_t empty = 0, commas = 0, non_ascii = 0;
    const char **uris = fp_calloc(r->films.len, sizeof *uris);
    for (size_t i = 0; i < r->films.len; i++) {
        const film *f = &r->films.items[i];
        /* Every export row carries a boxd.it link. */
        assert_non_null(f->lb_uri);
        assert_int_equal(strncmp(f->lb_uri, "https://boxd.it/", 16), 0);
        assert_null(f->lb_slug);
        uris[i] = f->lb_uri;
        empty += f->year == 0;
        commas += strchr(f->title, ',') != NULL;
        for (const unsigned char *p = (const unsigned char *)f->title; *p; p++)
            if (*p >= 0x80) {
                non_ascii++;
                break;
            }
    }
    assert_int_equal(empty, fx->empty_years);
    assert_int_equal(commas, fx->with_commas);
    assert_int_equal(non_ascii, fx->non_ascii);

    /* Unique URIs: one film per row, none merged or duplicated. */
    qsort(uris, r->films.len, sizeof *uris, cmp_str);
    for (size_t i = 1; i < r->films.len; i++)
        if (strcmp(uris[i - 1], uris[i]) == 0)
            fail_msg("%s: duplicate URI %s", fx->file, uris[i]);
    fp_free(uris);

    for (size_t k = 0; k < 4 && fx->present[k].title; k++) {
        const film *hit = NULL;
        for (size_t i = 0; i < r->films.len && !hit; i++)
            if (strcmp(r->films.items[i].title, fx->present[k].title) == 0)
                hit = &r->films.items[i];
        if (hit == NULL)
            fail_msg("%s: no film titled '%s'", fx->file, fx->present[k].title);
        check_row(hit, &fx->present[k]);
    }
}

static void test_fixtures_dir_present(void **state)
{
    (void)state;
    const char *dir = getenv("FP_SHARED_FIXTURES");
    if (dir == NULL || dir[0] == '\0')
        fail_msg("FP_SHARED_FIXTURES is not set: this test reads the shared Letterboxd export "
                 "fixtures in place (run it through ctest)");
    char *path = fp_printf("%s/SOURCES.md", dir);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("FP_SHARED_FIXTURES=%s has no SOURCES.md: fixtures folder missing", dir);
    fclose(f);
    fp_free(path);
}

static void test_exports(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++) {
        size_t len;
        unsigned char *data = slurp(fixtures[i].file, &len);
        import_result r;
        import_result_init(&r);
        assert_int_equal(import_parse(data, len, fixtures[i].file, &r), FP_OK);
        assert_string_equal(r.format, "letterboxd-csv");
        check_fixture(&fixtures[i], &r);
        import_result_free(&r);
        fp_free(data);
    }
}

/* The real files zipped the way Letterboxd ships them. */
static void test_export_zip(void **state)
{
    (void)state;
    static const struct {
        const char *fixture, *entry;
    } entries[] = {
        {"export-watched-agosvenezia-2026-07.csv", "watched.csv"},
        {"export-ratings-agosvenezia-2026-07.csv", "ratings.csv"},
        {"export-watchlist-agosvenezia-2026-07-large.csv", "watchlist.csv"},
        {"export-list-v7-agosvenezia-2000s-ranked.csv", "lists/2000s-ranked.csv"},
        {"export-list-v7-agosvenezia-black-mirror-ranked.csv", "lists/black-mirror-ranked.csv"},
    };
    const size_t n = sizeof entries / sizeof entries[0];
    unsigned char *bufs[5];
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(NULL, 0, 0, &ze);
    assert_non_null(src);
    zip_t *za = zip_open_from_source(src, ZIP_TRUNCATE, &ze);
    assert_non_null(za);
    zip_source_keep(src);
    for (size_t i = 0; i < n; i++) {
        size_t len;
        bufs[i] = slurp(entries[i].fixture, &len);
        zip_source_t *s = zip_source_buffer(za, bufs[i], len, 0);
        assert_non_null(s);
        assert_true(zip_file_add(za, entries[i].entry, s, 0) >= 0);
    }
    assert_int_equal(zip_close(za), 0);
    for (size_t i = 0; i < n; i++)
        fp_free(bufs[i]);
    assert_int_equal(zip_source_open(src), 0);
    assert_int_equal(zip_source_seek(src, 0, SEEK_END), 0);
    zip_int64_t size = zip_source_tell(src);
    assert_true(size > 0);
    assert_int_equal(zip_source_seek(src, 0, SEEK_SET), 0);
    unsigned char *z = fp_malloc((size_t)size);
    assert_int_equal(zip_source_read(src, z, (zip_uint64_t)size), size);
    zip_source_close(src);
    zip_source_free(src);
    zip_error_fini(&ze);

    import_result r;
    import_result_init(&r);
    assert_int_equal(import_parse(z, (size_t)size, "letterboxd-agosvenezia-2026-07-06.zip", &r),
                     FP_OK);
    assert_string_equal(r.format, "letterboxd-zip");
    check_fixture(&fixtures[1], &r);
    import_result_free(&r);
    fp_free(z);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void test_time_large_import(void **state)
{
    (void)state;
    const int rounds = 20;
    size_t len;
    unsigned char *data = slurp(fixtures[1].file, &len);
    double best = 1e9, total = 0;
    for (int i = 0; i < rounds; i++) {
        import_result r;
        import_result_init(&r);
        double t0 = now_ms();
        fp_err rc = import_parse(data, len, NULL, &r);
        double dt = now_ms() - t0;
        assert_int_equal(rc, FP_OK);
        assert_int_equal(r.films.len, 2540);
        import_result_free(&r);
        total += dt;
        if (dt < best)
            best = dt;
    }
    print_message("import of %s (%zu bytes, 2540 rows): best %.2f ms, mean %.2f ms over %d runs\n",
                  fixtures[1].file, len, best, total / rounds, rounds);
    /* Generous even for sanitizer builds; catches only pathological slowdowns. */
    assert_true(best < 2000.0);
    fp_free(data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures_dir_present),
        cmocka_unit_test(test_exports),
        cmocka_unit_test(test_export_zip),
        cmocka_unit_test(test_time_large_import),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

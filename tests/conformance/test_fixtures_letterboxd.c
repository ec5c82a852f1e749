/*
 * Conformance: the Letterboxd parser against real pages saved from the site
 * (the .html files of the shared fixtures' letterboxd folder, read in place;
 * their provenance and the facts asserted here are in SOURCES.md). Every
 * .html in that folder must
 * have an entry below, so a new fixture cannot be added without its facts.
 * A missing FP_SHARED_FIXTURES is a failure, not a skip.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/mem.h"
#include "film.h"
#include "source/lb_parse.h"

typedef struct fx_film {
    const char *slug, *title;
    int year;
    int64_t id; /* -1: not asserted */
} fx_film;

#define FX_MAX_LISTED 5
#define FX_MAX_CONTAINS 3

typedef struct fixture {
    const char *file;
    lb_markup markup;
    size_t entries;
    size_t skipped;
    long num_entries;
    int last_page;
    int has_next;
    int page_count;
    fx_film first, last;
    fx_film listed[FX_MAX_LISTED];    /* the whole page in order, when small */
    fx_film contains[FX_MAX_CONTAINS]; /* somewhere on the page */
} fixture;

static const fixture fixtures[] = {
    {"watchlist-classic-midaskiebert-p1-2025-07.html", LB_MARKUP_CLASSIC, 100, 0, 384, 4, 1, 4,
     {"fail-safe", "Fail Safe", 0, 51608},
     {"brief-encounter", "Brief Encounter", 0, 51301},
     {{0}},
     {{"perfect-blue", "Perfect Blue", 0, 46175}, {"the-godfather", "The Godfather", 0, 51818}}},
    {"watchlist-classic-midaskiebert-p100-empty-2025-07.html", LB_MARKUP_NONE, 0, 0, 384, 4, 0, 4,
     {0}, {0}, {{0}}, {{0}}},
    {"watchlist-react2025-midaskiebert-p1-2025-08.html", LB_MARKUP_REACT2025, 28, 0, 406, 15, 1, 15,
     {"naked-lunch", "Naked Lunch", 1991, 50124},
     {"ah-fei-jing-juen", "Days of Being Wild", 1990, 40434},
     {{0}},
     {{"tale-of-cinema", "Tale of Cinema", 2005, 72150}}},
    {"watchlist-react2025-spazznolo-p1-2026-01.html", LB_MARKUP_REACT2025, 28, 0, 415, 15, 1, 15,
     {"the-chronology-of-water", "The Chronology of Water", 2025, 454134},
     {"barry-lyndon", "Barry Lyndon", 1975, 49811},
     {{0}},
     {{"sirat-2025", "Sir\u0101t", 2025, 1037777}}},
    {"films-react2025-spazznolo-p1-2026-01.html", LB_MARKUP_REACT2025, 72, 0, -1, 6, 1, 6,
     {"the-woman-in-cabin-10", "The Woman in Cabin 10", 2025, 1173919},
     {"perfect-days-2023", "Perfect Days", 2023, 879229},
     {{0}},
     {{0}}},
    {"watchlist-react2025-shoemonger-p1-grid-fragment-2026-03.html", LB_MARKUP_REACT2025, 20, 0, -1,
     0, 0, 1,
     {"lilya-4-ever", "Lilya 4-ever", 2002, 44807},
     {"charcoal-2022", "Charcoal", 2022, 784661},
     {{0}},
     {{"the-old-man-the-gun", "The Old Man & the Gun", 2018, 362498},
      {"the-man-who-wasnt-there-2001", "The Man Who Wasn't There", 2001, 45906}}},
    /* Cut inside the 6th poster's start tag: that poster is dropped (skipped
     * 1), the 5 complete ones are returned with their ids from the JSON. */
    {"watchlist-react2026-truncated-fragment-2026-05.html", LB_MARKUP_REACT2026, 5, 1, -1, 0, 0, 1,
     {"blue-heron", "Blue Heron", 2025, 1071220},
     {"godzilla-minus-zero", "Godzilla Minus Zero", 2026, 1266684},
     {{"blue-heron", "Blue Heron", 2025, 1071220},
      {"broken-english-2025", "Broken English", 2025, 1393058},
      {"fatherland-3", "Fatherland", 0, 1315318},
      {"peaky-blinders-the-immortal-man", "Peaky Blinders: The Immortal Man", 2026, 787849},
      {"godzilla-minus-zero", "Godzilla Minus Zero", 2026, 1266684}},
     {{0}}},
    /* 100 in the main list, not 105: the cover preview's ul.posterlist is ignored. */
    {"list-react2025-hyumiguel-pra-nao-esquecer-de-ver-p1-browser-saved-2025-10.html",
     LB_MARKUP_REACT2025, 100, 0, -1, 7, 1, 7,
     {"the-age-of-innocence", "The Age of Innocence", 1993, 46232},
     {"michael-clayton", "Michael Clayton", 2007, 49241},
     {{0}},
     {{"magnolia", "Magnolia", 1999, 51728}, {"hugo", "Hugo", 2011, 20374}}},
};

static const char *fixtures_dir(void)
{
    static char dir[4096];
    const char *root = getenv("FP_SHARED_FIXTURES");
    if (!root || !root[0])
        fail_msg("FP_SHARED_FIXTURES is not set: the conformance test needs the shared "
                 "fixtures folder (run it through ctest)");
    int n = snprintf(dir, sizeof dir, "%s/letterboxd", root);
    assert_true(n > 0 && (size_t)n < sizeof dir);
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        fail_msg("FP_SHARED_FIXTURES=%s has no letterboxd/ folder", root);
    return dir;
}

static char *read_fixture(const char *name, size_t *len)
{
    char *path = fp_printf("%s/%s", fixtures_dir(), name);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open fixture %s", path);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n > 0);
    rewind(f);
    char *data = fp_malloc((size_t)n);
    assert_int_equal(fread(data, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    fp_free(path);
    *len = (size_t)n;
    return data;
}

static void check_film(const char *file, size_t idx, const film *got, const fx_film *want)
{
    if (strcmp(got->lb_slug, want->slug) != 0 || strcmp(got->title, want->title) != 0 ||
        got->year != want->year || (want->id >= 0 && got->lb_id != want->id))
        fail_msg("%s film %zu: got %s / \"%s\" / %d / %lld, want %s / \"%s\" / %d / %lld", file, idx,
                 got->lb_slug, got->title, got->year, (long long)got->lb_id, want->slug,
                 want->title, want->year, (long long)want->id);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void check_fixture(const fixture *fx)
{
    size_t len = 0;
    char *html = read_fixture(fx->file, &len);
    lb_page p;
    fp_err rc = lb_parse_page(html, len, &p);
    if (rc != FP_OK)
        fail_msg("%s: lb_parse_page returned %s", fx->file, fp_err_code(rc));
    if (p.markup != fx->markup || p.films.len != fx->entries || p.skipped != fx->skipped)
        fail_msg("%s: markup %s, %zu films, %zu skipped; want %s, %zu, %zu", fx->file,
                 lb_markup_name(p.markup), p.films.len, p.skipped, lb_markup_name(fx->markup),
                 fx->entries, fx->skipped);
    assert_int_equal(p.num_entries, fx->num_entries);
    assert_int_equal(p.last_page, fx->last_page);
    assert_int_equal(p.has_next, fx->has_next);
    assert_int_equal(lb_page_count(&p), fx->page_count);
    /* Real pages carry Cloudflare's jsd beacon: never a challenge. */
    assert_int_equal(lb_is_challenge(html, len), 0);

    if (fx->entries > 0) {
        check_film(fx->file, 0, &p.films.items[0], &fx->first);
        check_film(fx->file, p.films.len - 1, &p.films.items[p.films.len - 1], &fx->last);
    }
    for (size_t i = 0; i < FX_MAX_LISTED && fx->listed[i].slug; i++)
        check_film(fx->file, i, &p.films.items[i], &fx->listed[i]);
    for (size_t i = 0; i < FX_MAX_CONTAINS && fx->contains[i].slug; i++) {
        size_t at = p.films.len;
        for (size_t j = 0; j < p.films.len; j++)
            if (strcmp(p.films.items[j].lb_slug, fx->contains[i].slug) == 0)
                at = j;
        if (at == p.films.len)
            fail_msg("%s: %s not found", fx->file, fx->contains[i].slug);
        check_film(fx->file, at, &p.films.items[at], &fx->contains[i]);
    }

    /* Every real poster has a numeric id (data-film-id or the JSON uid), a
     * non-empty title, and slugs are unique on a page. */
    const char **slugs = fp_calloc(p.films.len ? p.films.len : 1, sizeof *slugs);
    for (size_t i = 0; i < p.films.len; i++) {
        const film *f = &p.films.items[i];
        if (f->lb_id <= 0 || !f->title[0])
            fail_msg("%s film %zu (%s): id %lld, title \"%s\"", fx->file, i, f->lb_slug,
                     (long long)f->lb_id, f->title);
        slugs[i] = f->lb_slug;
    }
    qsort(slugs, p.films.len, sizeof *slugs, cmp_str);
    for (size_t i = 1; i < p.films.len; i++)
        if (strcmp(slugs[i - 1], slugs[i]) == 0)
            fail_msg("%s: slug %s twice", fx->file, slugs[i]);
    fp_free(slugs);
    lb_page_free(&p);
    fp_free(html);
}

static void test_each_fixture(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++)
        check_fixture(&fixtures[i]);
}

/* Every .html in the folder is covered by the table above. */
/* Posters: a page saved from a browser shows the images its script loaded
 * (img src on a.ltrbxd.com/resized/: film-poster/... and, for alternative
 * posters people uploaded, sm/upload/...); a page as the server sends it has
 * only the empty-poster placeholder. Every path kept is one
 * film_poster_path_ok accepts, and the count is the poster images on the page
 * (the spazznolo watchlist: 22 film-poster + 6 sm/upload). */
static const struct {
    const char *file;
    size_t with_poster;
    const char *slug, *poster; /* one film and its poster path, or NULL */
} poster_facts[] = {
    {"watchlist-react2025-spazznolo-p1-2026-01.html", 28, "the-chronology-of-water",
     "film-poster/4/5/4/1/3/4/454134-the-chronology-of-water-0-125-0-187-crop.jpg?v=377dcfcd6f"},
    {"films-react2025-spazznolo-p1-2026-01.html", 72, NULL, NULL},
    {"watchlist-classic-midaskiebert-p1-2025-07.html", 0, NULL, NULL},
    {"watchlist-react2025-midaskiebert-p1-2025-08.html", 0, NULL, NULL},
    {"watchlist-react2026-truncated-fragment-2026-05.html", 0, NULL, NULL},
};

static void test_posters(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof poster_facts / sizeof poster_facts[0]; k++) {
        size_t len = 0;
        char *html = read_fixture(poster_facts[k].file, &len);
        lb_page p;
        assert_int_equal(lb_parse_page(html, len, &p), FP_OK);
        size_t n = 0;
        int seen = poster_facts[k].slug == NULL;
        for (size_t i = 0; i < p.films.len; i++) {
            const film *f = &p.films.items[i];
            if (!f->poster)
                continue;
            n++;
            if (!film_poster_path_ok(f->poster))
                fail_msg("%s: %s has poster path %s", poster_facts[k].file, f->lb_slug, f->poster);
            if (poster_facts[k].slug && strcmp(f->lb_slug, poster_facts[k].slug) == 0) {
                assert_string_equal(f->poster, poster_facts[k].poster);
                seen = 1;
            }
        }
        if (n != poster_facts[k].with_poster || !seen)
            fail_msg("%s: %zu films with a poster, want %zu", poster_facts[k].file, n,
                     poster_facts[k].with_poster);
        lb_page_free(&p);
        fp_free(html);
    }
}

static void test_folder_fully_covered(void **state)
{
    (void)state;
    const char *dir = fixtures_dir();
    DIR *d = opendir(dir);
    if (!d)
        fail_msg("cannot list %s", dir);
    size_t seen = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 5, ".html") != 0)
            continue;
        int known = 0;
        for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++)
            if (strcmp(fixtures[i].file, e->d_name) == 0)
                known = 1;
        if (!known)
            fail_msg("%s/%s has no facts in test_fixtures_letterboxd.c", dir, e->d_name);
        seen++;
    }
    closedir(d);
    assert_int_equal(seen, sizeof fixtures / sizeof fixtures[0]);
}

/* Parsing a real page many times stays fast: a 36-page watchlist is parsed
 * on every cold fetch. The bound is loose (sanitizer builds are slow); the
 * number itself is printed for the record. */
static void test_parse_time(void **state)
{
    (void)state;
    size_t len = 0;
    char *html = read_fixture("watchlist-classic-midaskiebert-p1-2025-07.html", &len);
    struct timespec t0, t1;
    const int rounds = 20;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < rounds; i++) {
        lb_page p;
        fp_err rc = lb_parse_page(html, len, &p);
        assert_int_equal(rc, FP_OK);
        assert_int_equal(p.films.len, 100);
        lb_page_free(&p);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = ((double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6) /
                rounds;
    print_message("lb_parse_page: %.2f ms per %zu-byte page\n", ms, len);
    assert_true(ms < 500.0);
    fp_free(html);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_fixture),
        cmocka_unit_test(test_posters),
        cmocka_unit_test(test_folder_fully_covered),
        cmocka_unit_test(test_parse_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

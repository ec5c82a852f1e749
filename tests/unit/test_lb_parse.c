/*
 * Unit tests for source/lb_parse.c and source/lb_user.c: the Letterboxd page
 * parser on the project's own synthetic pages (tests/data/letterboxd/, all
 * hand-written) and inline snippets, hostile input (truncation at every
 * byte, random bytes, huge attributes), page counting, challenge detection,
 * and a table of what a person may type as a Letterboxd username.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "film.h"
#include "source/lb_parse.h"

static char *read_data_file(const char *name, size_t *len)
{
    const char *dir = getenv("FP_TEST_DATA");
    if (!dir)
        fail_msg("FP_TEST_DATA is not set (run the test through ctest)");
    char *path = fp_printf("%s/letterboxd/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
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

typedef struct expect_film {
    const char *slug, *title;
    int year;
    int64_t id;
} expect_film;

#define MAX_FILMS 4

typedef struct page_case {
    const char *file;
    fp_err rc;
    lb_markup markup;
    size_t skipped;
    long num_entries;
    int last_page, has_next, page_count;
    size_t nfilms;
    expect_film films[MAX_FILMS];
} page_case;

static const page_case page_cases[] = {
    {"synthetic-classic-p1.html", FP_OK, LB_MARKUP_CLASSIC, 1, 1234, 45, 1, 45, 3,
     {{"the-godfather", "The Godfather", 0, 51818},
      {"amelie", "Am\u00e9lie", 0, 51390},
      {"fish-and-chips", "Fish & Chips", 0, 7}}},
    {"synthetic-react2025-p2.html", FP_OK, LB_MARKUP_REACT2025, 0, 56, 2, 0, 2, 3,
     {{"naked-lunch", "Naked Lunch", 1991, 50124},
      {"the-old-man-the-gun", "The Old Man & the Gun", 2018, 370002},
      {"sirat-2025", "Sir\u0101t", 2025, 1037777}}},
    {"synthetic-react2026.html", FP_OK, LB_MARKUP_REACT2026, 1, -1, 0, 0, 1, 4,
     {{"blue-heron", "Blue Heron", 2025, 1071220},
      {"fatherland-3", "Fatherland", 0, 1315318},
      {"broken-json", "Broken Json", 2024, 0},
      {"uid-not-a-film", "Uid Not A Film", 2020, 0}}},
    {"synthetic-empty-react.html", FP_OK, LB_MARKUP_NONE, 0, 30, 2, 0, 2, 0, {{0}}},
    {"synthetic-unknown-grid.html", FP_FORMAT, LB_MARKUP_NONE, 0, -1, 0, 0, 1, 0, {{0}}},
    {"synthetic-cloudflare-challenge.html", FP_BLOCKED, LB_MARKUP_NONE, 0, -1, 0, 0, 1, 0,
     {{0}}},
};

static void check_page(const page_case *c, fp_err rc, const lb_page *p)
{
    assert_int_equal(rc, c->rc);
    assert_int_equal(p->markup, c->markup);
    assert_int_equal(p->films.len, c->nfilms);
    assert_int_equal(p->skipped, c->skipped);
    assert_int_equal(p->num_entries, c->num_entries);
    assert_int_equal(p->last_page, c->last_page);
    assert_int_equal(p->has_next, c->has_next);
    assert_int_equal(lb_page_count(p), c->page_count);
    for (size_t i = 0; i < c->nfilms; i++) {
        const film *f = &p->films.items[i];
        assert_string_equal(f->lb_slug, c->films[i].slug);
        assert_string_equal(f->title, c->films[i].title);
        assert_int_equal(f->year, c->films[i].year);
        assert_int_equal(f->lb_id, c->films[i].id);
        assert_null(f->lb_uri);
        assert_null(f->imdb_id);
    }
}

static void test_synthetic_pages(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof page_cases / sizeof page_cases[0]; i++) {
        size_t len = 0;
        char *html = read_data_file(page_cases[i].file, &len);
        lb_page p;
        fp_err rc = lb_parse_page(html, len, &p);
        check_page(&page_cases[i], rc, &p);
        lb_page_free(&p);
        fp_free(html);
    }
}

/* Small inline pages: one fact each. */
typedef struct inline_case {
    const char *name, *html;
    fp_err rc;
    lb_markup markup;
    size_t nfilms, skipped;
    long num_entries;
    int last_page;
} inline_case;

#define LAZY(attrs, inner) \
    "<div class=\"react-component\" data-component-class=\"LazyPoster\" " attrs ">" inner "</div>"
#define GRID(items) "<div class=\"poster-grid\"><ul class=\"grid\">" items "</ul></div>"
#define ITEM(x) "<li class=\"griditem\">" x "</li>"

static const inline_case inline_cases[] = {
    {"plain html", "<html><body><p>Hello</p></body></html>", FP_FORMAT, LB_MARKUP_NONE, 0, 0, -1, 0},
    {"nav list only", "<html><body><ul class=\"navlist\"><li>Films</li></ul></body></html>",
     FP_FORMAT, LB_MARKUP_NONE, 0, 0, -1, 0},
    {"text only", "just some text", FP_FORMAT, LB_MARKUP_NONE, 0, 0, -1, 0},
    {"bare poster fragment",
     LAZY("data-item-slug=\"a-film\" data-item-name=\"A Film (2000)\" data-film-id=\"1\"", "<img alt=\"A Film\"/>"),
     FP_OK, LB_MARKUP_REACT2025, 1, 0, -1, 0},
    {"poster only in a side list",
     "<ul class=\"posterlist\"><li>" LAZY("data-item-slug=\"a\" data-item-name=\"A\"", "<img/>") "</li></ul>",
     FP_FORMAT, LB_MARKUP_NONE, 0, 0, -1, 0},
    {"side list next to the grid",
     "<ul class=\"posterlist\"><li>" LAZY("data-item-slug=\"side\" data-item-name=\"Side\"", "<img/>")
     "</li></ul>" GRID(ITEM(LAZY("data-item-slug=\"main\" data-item-name=\"Main (1999)\"", "<img/>"))),
     FP_OK, LB_MARKUP_REACT2026, 1, 0, -1, 0},
    {"classic empty grid", "<ul class=\"poster-list -p125 -grid\">\n</ul>", FP_OK, LB_MARKUP_NONE, 0,
     0, -1, 0},
    {"watchlist scaffolding only",
     "<div class=\"cols-2 js-watchlist-content\" data-num-entries=\"0\"></div>", FP_OK,
     LB_MARKUP_NONE, 0, 0, 0, 0},
    {"grid of unknown items", GRID(ITEM("<div class=\"card\">The Godfather</div>")), FP_FORMAT,
     LB_MARKUP_NONE, 0, 0, -1, 0},
    {"only damaged posters",
     GRID(ITEM(LAZY("data-item-slug=\"Bad Slug\" data-item-name=\"X\"", "<img/>"))), FP_FORMAT,
     LB_MARKUP_NONE, 0, 0, -1, 0},
    {"title with a newline is damaged",
     GRID(ITEM(LAZY("data-item-slug=\"a\" data-item-name=\"A\nB\"", "<img/>"))
          ITEM(LAZY("data-item-slug=\"b\" data-item-name=\"B\"", "<img/>"))),
     FP_OK, LB_MARKUP_REACT2026, 1, 1, -1, 0},
    {"poster cut inside its start tag",
     GRID(ITEM(LAZY("data-item-slug=\"ok\" data-item-name=\"Ok\"", "<img/>")))
     "<ul class=\"grid\"><li><div class=\"react-component\" data-component-class=\"LazyPoster\" "
     "data-item-slug=\"cut\" data-item-name=\"Cut\" data-postered-identifier='{\"uid\":",
     FP_OK, LB_MARKUP_REACT2026, 1, 1, -1, 0},
    {"only a cut poster",
     "<ul class=\"grid\"><li><div class=\"react-component\" data-component-class=\"LazyPoster\" "
     "data-item-slug=\"cut\" data-item-name=\"Cut\" data-film-id=\"1",
     FP_FORMAT, LB_MARKUP_NONE, 0, 0, -1, 0},
    {"other component with a slug",
     GRID(ITEM("<div class=\"react-component\" data-component-class=\"FooLazyPoster\" "
               "data-item-slug=\"a\" data-item-name=\"A\"><img/></div>")),
     FP_FORMAT, LB_MARKUP_NONE, 0, 0, -1, 0},
    {"alt fallback with 'Poster for'",
     GRID(ITEM(LAZY("data-item-slug=\"x\"", "<img alt=\"Poster for X (2001)\"/>"))), FP_OK,
     LB_MARKUP_REACT2026, 1, 0, -1, 0},
    {"count with separators",
     "<span class=\"js-watchlist-count\">1,234&nbsp;films</span>" GRID(""), FP_OK, LB_MARKUP_NONE,
     0, 0, 1234, 0},
    {"count with dots", "<span class=\"js-watchlist-count\"> 12.345 films</span>" GRID(""), FP_OK,
     LB_MARKUP_NONE, 0, 0, 12345, 0},
    {"count not a number", "<span class=\"js-watchlist-count\">films</span>" GRID(""), FP_OK,
     LB_MARKUP_NONE, 0, 0, -1, 0},
    {"bad data-num-entries falls back to the heading",
     "<div class=\"js-watchlist-content\" data-num-entries=\"abc\"><span "
     "class=\"js-watchlist-count\">12&nbsp;films</span></div>",
     FP_OK, LB_MARKUP_NONE, 0, 0, 12, 0},
    {"absurd data-num-entries ignored",
     "<div class=\"js-watchlist-content\" data-num-entries=\"99999999999999\"></div>", FP_OK,
     LB_MARKUP_NONE, 0, 0, -1, 0},
    {"pagination with only an ellipsis",
     GRID("") "<div class=\"pagination\"><div class=\"paginate-pages\"><ul><li "
              "class=\"paginate-page unseen-pages\">&hellip;</li></ul></div></div>",
     FP_OK, LB_MARKUP_NONE, 0, 0, -1, 0},
    {"absurd page number ignored",
     GRID("") "<div class=\"pagination\"><div class=\"paginate-pages\"><ul><li class=\"paginate-page\">"
              "<a href=\"/u/watchlist/page/99999999/\">99999999</a></li><li class=\"paginate-page\">"
              "<a href=\"/u/watchlist/page/3/\">3</a></li></ul></div></div>",
     FP_OK, LB_MARKUP_NONE, 0, 0, -1, 3},
    {"page number from the link only",
     GRID("") "<div class=\"pagination\"><div class=\"paginate-pages\"><ul><li class=\"paginate-page\">"
              "<a href=\"https://letterboxd.com/u/list/l/page/9/\">last</a></li></ul></div></div>",
     FP_OK, LB_MARKUP_NONE, 0, 0, -1, 9},
    {"jsd beacon is not a challenge",
     "<script>a.src='/cdn-cgi/challenge-platform/scripts/jsd/main.js';</script><p>x</p>", FP_FORMAT,
     LB_MARKUP_NONE, 0, 0, -1, 0},
    {"challenge title", "<html><head><title>Just a moment...</title></head><body></body></html>",
     FP_BLOCKED, LB_MARKUP_NONE, 0, 0, -1, 0},
    {"cloudflare block page",
     "<title>Attention Required! | Cloudflare</title><p>Sorry, you have been blocked</p>",
     FP_BLOCKED, LB_MARKUP_NONE, 0, 0, -1, 0},
};

static void test_inline_pages(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof inline_cases / sizeof inline_cases[0]; i++) {
        const inline_case *c = &inline_cases[i];
        lb_page p;
        fp_err rc = lb_parse_page(c->html, strlen(c->html), &p);
        if (rc != c->rc || p.markup != c->markup || p.films.len != c->nfilms ||
            p.skipped != c->skipped || p.num_entries != c->num_entries ||
            p.last_page != c->last_page)
            fail_msg("case '%s': rc=%d markup=%d films=%zu skipped=%zu num=%ld last=%d", c->name,
                     (int)rc, (int)p.markup, p.films.len, p.skipped, p.num_entries, p.last_page);
        lb_page_free(&p);
    }
}

static void test_film_fields_from_inline(void **state)
{
    (void)state;
    static const char html[] = GRID(
        ITEM(LAZY("data-item-slug=\"x\"", "<img alt=\"Poster for X (2001)\"/>"))
        ITEM(LAZY("data-item-slug=\"bad-id\" data-item-name=\"Bad Id\" data-film-id=\"12ab\" "
                  "data-postered-identifier='{\"uid\":\"film:77\"}'", "<img/>"))
        ITEM(LAZY("data-item-slug=\"neg-id\" data-item-name=\"Neg\" data-film-id=\"-5\"", "<img/>"))
        ITEM(LAZY("data-item-slug=\"dup-key\" data-item-name=\"Dup\" "
                  "data-postered-identifier='{\"uid\":\"film:1\",\"uid\":\"film:2\"}'", "<img/>"))
        ITEM(LAZY("data-item-slug=\"uid-number\" data-item-name=\"Num\" "
                  "data-postered-identifier='{\"uid\":5}'", "<img/>"))
        ITEM(LAZY("data-item-slug=\"with-poster\" data-item-name=\"P (1999)\"",
                  "<img src=\"https://a.ltrbxd.com/resized/film-poster/5/5-p-0-125-0-187-crop.jpg?v=ab12\"/>"))
        ITEM(LAZY("data-item-slug=\"placeholder\" data-item-name=\"Q (1999)\"",
                  "<img src=\"https://s.ltrbxd.com/static/img/empty-poster-125-AiuBHVCI.png\"/>"))
        ITEM(LAZY("data-item-slug=\"relative\" data-item-name=\"R (1999)\"",
                  "<img src=\"/resized/film-poster/7/7-r.png\"/>"))
        ITEM(LAZY("data-item-slug=\"sneaky\" data-item-name=\"S (1999)\"",
                  "<img src=\"https://a.ltrbxd.com/resized/../../admin.jpg\"/>"))
        ITEM(LAZY("data-item-slug=\"elsewhere\" data-item-name=\"T (1999)\"",
                  "<img src=\"https://evil.example/other/resized/x.jpg\"/>")));
    lb_page p;
    fp_err rc = lb_parse_page(html, sizeof html - 1, &p);
    assert_int_equal(rc, FP_OK);
    assert_int_equal(p.films.len, 10);
    assert_string_equal(p.films.items[0].title, "X");
    assert_null(p.films.items[0].poster);
    assert_string_equal(p.films.items[5].poster, "film-poster/5/5-p-0-125-0-187-crop.jpg?v=ab12");
    assert_null(p.films.items[6].poster); /* the placeholder */
    assert_string_equal(p.films.items[7].poster, "film-poster/7/7-r.png");
    assert_null(p.films.items[8].poster); /* traversal */
    assert_null(p.films.items[9].poster); /* /resized/ not at the root */
    assert_int_equal(p.films.items[0].year, 2001);
    assert_int_equal(p.films.items[1].lb_id, 77); /* bad data-film-id: the JSON wins */
    assert_int_equal(p.films.items[2].lb_id, 0);
    assert_int_equal(p.films.items[3].lb_id, 0); /* duplicate keys refused by jansson */
    assert_int_equal(p.films.items[4].lb_id, 0);
    lb_page_free(&p);
}

static void test_empty_and_too_large(void **state)
{
    (void)state;
    lb_page p;
    fp_err rc = lb_parse_page("", 0, &p);
    assert_int_equal(rc, FP_FORMAT);
    assert_int_equal(p.films.len, 0);
    assert_int_equal(p.num_entries, -1);
    lb_page_free(&p);
    rc = lb_parse_page(NULL, 0, &p);
    assert_int_equal(rc, FP_FORMAT);
    lb_page_free(&p);
    /* The length is refused before a byte is read. */
    rc = lb_parse_page("x", (size_t)INT_MAX + 1, &p);
    assert_int_equal(rc, FP_TOO_LARGE);
    lb_page_free(&p);
    lb_page_free(NULL);
}

static char *poster_page_with_title(size_t title_len)
{
    char *title = fp_malloc(title_len + 1);
    memset(title, 'a', title_len);
    title[title_len] = '\0';
    char *html = fp_printf(GRID(ITEM(LAZY("data-item-slug=\"long\" data-item-name=\"%s\"", "<img/>"))
                                    ITEM(LAZY("data-item-slug=\"short\" data-item-name=\"S\"", "<img/>"))),
                           title);
    fp_free(title);
    return html;
}

static void test_long_attributes(void **state)
{
    (void)state;
    static const struct {
        size_t title_len, nfilms, skipped;
    } cases[] = {
        {LB_TITLE_MAX, 2, 0},
        {LB_TITLE_MAX + 1, 1, 1},
        {5u * 1024 * 1024, 1, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *html = poster_page_with_title(cases[i].title_len);
        lb_page p;
        fp_err rc = lb_parse_page(html, strlen(html), &p);
        assert_int_equal(rc, FP_OK);
        assert_int_equal(p.films.len, cases[i].nfilms);
        assert_int_equal(p.skipped, cases[i].skipped);
        if (cases[i].nfilms == 2)
            assert_int_equal(strlen(p.films.items[0].title), cases[i].title_len);
        assert_string_equal(p.films.items[cases[i].nfilms - 1].lb_slug, "short");
        lb_page_free(&p);
        fp_free(html);
    }
    /* An oversized JSON attribute is not handed to jansson. */
    size_t jlen = 8192;
    char *pad = fp_malloc(jlen + 1);
    memset(pad, ' ', jlen);
    pad[jlen] = '\0';
    char *html = fp_printf(GRID(ITEM(LAZY("data-item-slug=\"j\" data-item-name=\"J\" "
                                          "data-postered-identifier='{\"uid\":\"film:9\"%s}'", "<img/>"))),
                           pad);
    lb_page p;
    fp_err rc = lb_parse_page(html, strlen(html), &p);
    assert_int_equal(rc, FP_OK);
    assert_int_equal(p.films.len, 1);
    assert_int_equal(p.films.items[0].lb_id, 0);
    lb_page_free(&p);
    fp_free(html);
    fp_free(pad);
}

static int valid_result(fp_err rc, const lb_page *p, size_t max_films)
{
    if (rc != FP_OK && rc != FP_FORMAT && rc != FP_BLOCKED)
        return 0;
    if (rc != FP_OK && p->films.len != 0)
        return 0;
    if (p->films.len > max_films)
        return 0;
    for (size_t i = 0; i < p->films.len; i++) {
        const film *f = &p->films.items[i];
        if (!f->lb_slug || !f->lb_slug[0] || !f->title || !f->title[0] || f->lb_id < 0)
            return 0;
        if (strspn(f->lb_slug, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(f->lb_slug))
            return 0;
    }
    return 1;
}

/* Every prefix of every synthetic page: what a cut download looks like. */
static void test_truncated_at_every_byte(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof page_cases / sizeof page_cases[0]; i++) {
        size_t len = 0;
        char *html = read_data_file(page_cases[i].file, &len);
        size_t ok_full = 0;
        for (size_t cut = 0; cut <= len; cut++) {
            char *copy = fp_malloc(cut ? cut : 1); /* exact size: ASan sees any overread */
            memcpy(copy, html, cut);
            lb_page p;
            fp_err rc = lb_parse_page(copy, cut, &p);
            if (!valid_result(rc, &p, page_cases[i].nfilms))
                fail_msg("%s cut at %zu: rc=%d films=%zu", page_cases[i].file, cut, (int)rc,
                         p.films.len);
            if (cut == len && rc == page_cases[i].rc && p.films.len == page_cases[i].nfilms)
                ok_full = 1;
            lb_page_free(&p);
            fp_free(copy);
        }
        assert_int_equal(ok_full, 1);
        fp_free(html);
    }
}

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Random bytes, and random splices of poster markup: must never crash. */
static void test_garbage(void **state)
{
    (void)state;
    static const char *const pieces[] = {
        "<ul class=\"grid\">", "</ul>", "<li class=\"griditem\">", "</li>", "<div ",
        "class=\"react-component\" ", "data-component-class=\"LazyPoster\" ",
        "data-item-slug=\"a-b\" ", "data-item-name=\"T (1999)\" ", "data-film-id=\"7\" ",
        "data-postered-identifier='{&quot;uid&quot;:&quot;film:1&quot;}' ", ">", "<img alt=\"x\"/>",
        "</div>", "'", "\"", "<!--", "-->", "<script>", "&#xFFFFFF;", "\xff\xfe", "\0",
        "<div class=\"pagination\"><div class=\"paginate-pages\"><ul><li>", "<title>Just a moment...",
    };
    uint64_t seed = 0x9E3779B97F4A7C15ULL;
    for (int round = 0; round < 400; round++) {
        size_t cap = 1 + (size_t)(xorshift(&seed) % 20000);
        char *buf = fp_malloc(cap);
        size_t len = 0;
        int spliced = round % 2;
        while (len < cap) {
            if (spliced && xorshift(&seed) % 3 == 0) {
                const char *p = pieces[xorshift(&seed) % (sizeof pieces / sizeof pieces[0])];
                size_t n = p[0] ? strlen(p) : 1;
                if (n > cap - len)
                    n = cap - len;
                memcpy(buf + len, p, n);
                len += n;
            } else {
                buf[len++] = (char)(xorshift(&seed) & 0xFF);
            }
        }
        lb_page p;
        fp_err rc = lb_parse_page(buf, len, &p);
        if (!valid_result(rc, &p, (size_t)-1))
            fail_msg("round %d: rc=%d films=%zu", round, (int)rc, p.films.len);
        lb_page_free(&p);
        fp_free(buf);
    }
}

static void test_page_count(void **state)
{
    (void)state;
    static const struct {
        int last_page;
        long num_entries;
        size_t on_page;
        int expect;
    } cases[] = {
        {4, 384, 100, 4},     /* pagination wins */
        {15, 999, 28, 15},
        {0, 384, 100, 4},     /* ceil(384 / 100) */
        {0, 56, 28, 2},       /* exact multiple */
        {0, 57, 28, 3},
        {0, 1, 1, 1},
        {0, -1, 28, 1},       /* nothing known */
        {0, 0, 0, 1},
        {0, 500, 0, 1},       /* no posters to divide by */
        {0, 100000000L, 1, LB_PAGES_MAX},
        {LB_PAGES_MAX + 5, -1, 28, LB_PAGES_MAX},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lb_page p;
        memset(&p, 0, sizeof p);
        p.last_page = cases[i].last_page;
        p.num_entries = cases[i].num_entries;
        p.films.len = cases[i].on_page;
        assert_int_equal(lb_page_count(&p), cases[i].expect);
    }
}

static void test_is_challenge(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        int expect;
    } cases[] = {
        {"<title>Just a moment...</title>", 1},
        {"<script>window._cf_chl_opt={cvId:'3'};</script>", 1},
        {"<form action=\"/?__cf_chl_f_tk=abc\">", 1},
        {"<script src=\"/cdn-cgi/challenge-platform/h/b/orchestrate/chl_page/v1\"></script>", 1},
        {"<title>Attention Required! | Cloudflare</title>", 1},
        {"<script>a.src='/cdn-cgi/challenge-platform/scripts/jsd/main.js'</script>", 0},
        {"<div data-item-name=\"Just a Moment (2024)\"></div>", 0},
        {"<title>\u200eTester\u2019s Watchlist \u2022 Letterboxd</title>", 0},
        {"", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_int_equal(lb_is_challenge(cases[i].body, strlen(cases[i].body)), cases[i].expect);
    /* The length bounds the search: a marker past it is not seen. */
    static const char cut[] = "xx<title>Just a moment...</title>";
    assert_int_equal(lb_is_challenge(cut, 10), 0);
    assert_int_equal(lb_is_challenge(NULL, 0), 0);
}

static void test_markup_name(void **state)
{
    (void)state;
    assert_string_equal(lb_markup_name(LB_MARKUP_NONE), "none");
    assert_string_equal(lb_markup_name(LB_MARKUP_CLASSIC), "classic");
    assert_string_equal(lb_markup_name(LB_MARKUP_REACT2025), "react2025");
    assert_string_equal(lb_markup_name(LB_MARKUP_REACT2026), "react2026");
    assert_string_equal(lb_markup_name((lb_markup)42), "unknown");
}

static void test_username_parse(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out; /* out NULL: must be FP_BAD_USERNAME */
    } cases[] = {
        /* accepted */
        {"alice", "alice"},
        {"@alice", "alice"},
        {"  Alice \n", "alice"},
        {"\tbob_smith_99\r\n", "bob_smith_99"},
        {"https://letterboxd.com/alice/", "alice"},
        {"http://letterboxd.com/alice", "alice"},
        {"letterboxd.com/alice/watchlist/", "alice"},
        {"www.letterboxd.com/alice/watchlist/page/3/", "alice"},
        {"https://letterboxd.com/alice/films/", "alice"},
        {"https://letterboxd.com/alice/list/my-fav-films/", "alice"},
        {"https://www.letterboxd.com/bob_smith/watchlist/by/release/", "bob_smith"},
        {"https://LetterBoxd.COM/Alice_99/", "alice_99"},
        {"HTTPS://LETTERBOXD.COM/ALICE/WATCHLIST/", "alice"},
        {"https://letterboxd.com/alice/?utm_source=share", "alice"},
        {"https://letterboxd.com/alice/#top", "alice"},
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},
        {"https://letterboxd.com/Filmfan/", "filmfan"},
        /* rejected: not a name */
        {"", NULL},
        {"   ", NULL},
        {"@", NULL},
        {"@@alice", NULL},
        {"alice bob", NULL},
        {"alice!", NULL},
        {"al-ice", NULL},
        {"\xc3\xa9lodie", NULL},
        {"alice\r\nHost: evil.com", NULL},
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", NULL}, /* 41 */
        {"@aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", NULL},
        {"%2e%2e", NULL},
        {"../etc", NULL},
        {"alice/bob", NULL},
        {"alice?x=1", NULL},
        {"alice.bob", NULL},
        {"<script>", NULL},
        /* rejected: reserved site sections */
        {"film", NULL},
        {"@search", NULL},
        {"https://letterboxd.com/film/x/", NULL},
        {"https://letterboxd.com/films/", NULL},
        {"https://letterboxd.com/list/x/", NULL},
        {"https://letterboxd.com/search/alice/", NULL},
        {"https://letterboxd.com/settings/", NULL},
        {"https://letterboxd.com/sign-in/", NULL},
        /* rejected: wrong host, scheme, user info, port */
        {"https://evil.com/alice/", NULL},
        {"https://letterboxd.com.evil.com/alice", NULL},
        {"https://sub.letterboxd.com/alice", NULL},
        {"https://letterboxd.co/alice", NULL},
        {"letterboxd.com./alice", NULL},
        {"https://user@letterboxd.com/alice", NULL},
        {"https://user:pw@letterboxd.com/alice", NULL},
        {"https://letterboxd.com@evil.com/alice", NULL},
        {"https://letterboxd.com\\@evil.com/alice", NULL},
        {"https://evil.com#@letterboxd.com/alice", NULL},
        {"https://evil.com/?https://letterboxd.com/alice", NULL},
        {"https://letterboxd.com:8080/alice", NULL},
        {"https://letterboxd.com:443/alice", NULL},
        {"ftp://letterboxd.com/alice", NULL},
        {"javascript:alert(1)", NULL},
        {"file:///etc/passwd", NULL},
        {"https://[::1]/alice", NULL},
        {"//letterboxd.com/alice", NULL},
        {"https:letterboxd.com/alice", NULL},
        /* rejected: paths */
        {"https://letterboxd.com/", NULL},
        {"letterboxd.com", NULL},
        {"https://letterboxd.com?alice", NULL},
        {"https://letterboxd.com/?u=alice", NULL},
        {"https://letterboxd.com//alice", NULL},
        {"https://letterboxd.com/alice/../bob/", NULL},
        {"https://letterboxd.com/alice/watchlist/../../admin", NULL},
        {"https://letterboxd.com/./alice", NULL},
        {"https://letterboxd.com/%2e%2e/etc", NULL},
        {"https://letterboxd.com/al%69ce/", NULL},
        {"https://letterboxd.com/alice%2fbob", NULL},
        {"https://letterboxd.com/alice.json", NULL},
        {"https://letterboxd.com/alice/settings/", NULL},
        {"https://letterboxd.com/alice/watchlist/a/b/c/d/e/f/g", NULL},
        {"https://letterboxd.com/al ice", NULL},
        {"https://letterboxd.com/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[LB_USERNAME_MAX + 1];
        memset(out, 'Z', sizeof out);
        fp_err rc = lb_username_parse(cases[i].in, out);
        if (cases[i].out) {
            if (rc != FP_OK)
                fail_msg("'%s' should be accepted, got %d", cases[i].in, (int)rc);
            assert_string_equal(out, cases[i].out);
        } else {
            if (rc != FP_BAD_USERNAME)
                fail_msg("'%s' should be rejected, got %d ('%s')", cases[i].in, (int)rc, out);
            assert_string_equal(out, "");
        }
    }
    char out[LB_USERNAME_MAX + 1];
    fp_err rc = lb_username_parse(NULL, out);
    assert_int_equal(rc, FP_BAD_USERNAME);
    /* Overlong input is refused before any parsing. */
    char *longurl = fp_malloc(4097);
    memcpy(longurl, "https://letterboxd.com/alice/", 29);
    memset(longurl + 29, 'a', 4096 - 29);
    longurl[4096] = '\0';
    rc = lb_username_parse(longurl, out);
    assert_int_equal(rc, FP_BAD_USERNAME);
    fp_free(longurl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_synthetic_pages),
        cmocka_unit_test(test_inline_pages),
        cmocka_unit_test(test_film_fields_from_inline),
        cmocka_unit_test(test_empty_and_too_large),
        cmocka_unit_test(test_long_attributes),
        cmocka_unit_test(test_truncated_at_every_byte),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_page_count),
        cmocka_unit_test(test_is_challenge),
        cmocka_unit_test(test_markup_name),
        cmocka_unit_test(test_username_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

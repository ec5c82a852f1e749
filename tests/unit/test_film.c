/* Unit tests for film.c: display-name splitting and title normalisation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "core/mem.h"
#include "film.h"

static void test_split_display_name(void **state)
{
    (void)state;
    static const struct {
        const char *in, *title;
        int year;
    } cases[] = {
        {"The Chronology of Water (2025)", "The Chronology of Water", 2025},
        {"Fatherland", "Fatherland", 0},
        {"Naked Lunch", "Naked Lunch", 0},
        {"2001: A Space Odyssey (1968)", "2001: A Space Odyssey", 1968},
        {"(500) Days of Summer (2009)", "(500) Days of Summer", 2009},
        {"Film (abcd)", "Film (abcd)", 0},
        {"(1999)", "(1999)", 0},
        {"", "", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *title = NULL;
        int year = -1;
        film_split_display_name(cases[i].in, &title, &year);
        assert_string_equal(title, cases[i].title);
        assert_int_equal(year, cases[i].year);
        fp_free(title);
    }
}

static void test_normalize_title(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"The Old Man & the Gun", "the old man and the gun"},
        {"The Old Man and the Gun", "the old man and the gun"},
        {"The Man Who Wasn't There", "the man who wasnt there"},
        {"The Man Who Wasn\u2019t There", "the man who wasnt there"},
        {"Sir\u0101t", "sirat"},
        {"L\u00e9on", "leon"},
        {"Y un d\u00eda Nico se fue", "y un dia nico se fue"},
        {"  Taxi,  An Encounter ", "taxi an encounter"},
        {"Microcosmos: Le peuple de l'herbe", "microcosmos le peuple de lherbe"},
        {"\u0425\u0430\u0439\u0434\u0438", "\u0445\u0430\u0439\u0434\u0438"},
        {"...And Out Comes the Wolf", "and out comes the wolf"},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *n = film_normalize_title(cases[i].in);
        assert_string_equal(n, cases[i].out);
        fp_free(n);
    }
}

static void test_match_key(void **state)
{
    (void)state;
    char *a = film_match_key("Argentina, 1985", 2022);
    char *b = film_match_key("Argentina 1985", 2022);
    char *c = film_match_key("Argentina 1985", 0);
    assert_string_equal(a, "argentina 1985|2022");
    assert_string_equal(a, b);
    assert_string_equal(c, "argentina 1985|");
    fp_free(a);
    fp_free(b);
    fp_free(c);
}

static void test_list_grows_and_frees(void **state)
{
    (void)state;
    film_list l;
    film_list_init(&l);
    for (int i = 0; i < 1000; i++) {
        film *f = film_list_push(&l);
        f->title = fp_printf("Film %d", i);
        f->year = 1900 + i % 100;
    }
    assert_int_equal(l.len, 1000);
    assert_string_equal(l.items[999].title, "Film 999");
    film copy;
    film_copy(&copy, &l.items[5]);
    assert_string_equal(copy.title, "Film 5");
    film_clear(&copy);
    film_list_free(&l);
    assert_null(l.items);
}

static void test_poster_path(void **state)
{
    (void)state;
    static const char *const good[] = {
        "film-poster/4/5/4/1/3/4/454134-the-chronology-of-water-0-125-0-187-crop.jpg?v=377dcfcd6f",
        "film-poster/1/2/12-x-0-230-0-345-crop.png",
        "film-poster/9/9-y.webp?v=A1",
        "a.jpeg",
    };
    static const char *const bad[] = {
        "", "/film-poster/1.jpg", "film-poster/../../etc/passwd.jpg", "film-poster/1.gif",
        "film-poster/1.jpg?v=", "film-poster/1.jpg?x=1", "film-poster/1.jpg?v=a&b=c",
        "film-poster/1.jpg?v=0123456789abcdef0123456789abcdef0", "film poster/1.jpg",
        "film-poster/%2e%2e/1.jpg", "http://evil/1.jpg", "film-poster/1.jpg#x", "jpg",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (!film_poster_path_ok(good[i]))
            fail_msg("refused %s", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (film_poster_path_ok(bad[i]))
            fail_msg("accepted %s", bad[i]);
    assert_false(film_poster_path_ok(NULL));
    char long_path[256];
    memset(long_path, 'a', 197);
    memcpy(long_path + 197, ".jpg", 5);
    assert_false(film_poster_path_ok(long_path)); /* 201 characters */
    long_path[196] = '\0';
    memcpy(long_path + 192, ".jpg", 5);
    assert_true(film_poster_path_ok(long_path));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_display_name),
        cmocka_unit_test(test_normalize_title),
        cmocka_unit_test(test_match_key),
        cmocka_unit_test(test_poster_path),
        cmocka_unit_test(test_list_grows_and_frees),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

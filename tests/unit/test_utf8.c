/* test_utf8.c - the one helper that cuts user text for messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/mem.h"
#include "core/utf8.h"

static void check_cut(const char *in, size_t max, const char *want)
{
    char *got = fp_utf8_printable(in, strlen(in), max);
    assert_string_equal(got, want);
    /* whatever came in, jansson takes what comes out */
    json_t *j = json_string(got);
    assert_non_null(j);
    json_decref(j);
    fp_free(got);
}

static void cuts_on_character_boundaries(void **state)
{
    (void)state;
    /* 79 ASCII bytes and a 2-byte character: the character does not fit in 80 */
    char in[128];
    memset(in, 'a', 79);
    memcpy(in + 79, "\xC3\xA9", 3);
    char want[128];
    memset(want, 'a', 79);
    memcpy(want + 79, "...", 4);
    check_cut(in, 80, want);
    /* it fits in 81 */
    check_cut(in, 81, in);
    check_cut("\xE2\x82\xAC\xE2\x82\xAC", 5, "\xE2\x82\xAC...");   /* euro signs */
    check_cut("\xF0\x9F\x8E\xAC" "x", 3, "...");                  /* a 4-byte clapper */
    check_cut("short", 80, "short");
    check_cut("", 80, "");
}

static void replaces_invalid_bytes_and_controls(void **state)
{
    (void)state;
    check_cut("\xFF\xFE" "ok", 80, "\xEF\xBF\xBD\xEF\xBF\xBD" "ok");
    check_cut("a\nb\tc\x7F", 80, "a\xEF\xBF\xBD" "b\xEF\xBF\xBD" "c\xEF\xBF\xBD");
    check_cut("\xC3", 80, "\xEF\xBF\xBD");                /* truncated sequence */
    check_cut("\xC0\xAF", 80, "\xEF\xBF\xBD\xEF\xBF\xBD"); /* overlong '/' */
    check_cut("\xED\xA0\x80", 80, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"); /* surrogate */
}

static void well_formedness(void **state)
{
    (void)state;
    const unsigned char ok[] = "caf\xC3\xA9 \xF0\x9F\x8E\xAC";
    assert_int_equal(fp_utf8_check(ok, sizeof ok - 1), sizeof ok - 1);
    const unsigned char bad[] = "ab\xF5\x80\x80\x80";
    assert_int_equal(fp_utf8_check(bad, sizeof bad - 1), 2);
    assert_int_equal(fp_utf8_seq((const unsigned char *)"\xF4\x90\x80\x80", 4), 0); /* > U+10FFFF */
    assert_int_equal(fp_utf8_seq((const unsigned char *)"\xF4\x8F\xBF\xBF", 4), 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cuts_on_character_boundaries),
        cmocka_unit_test(replaces_invalid_bytes_and_controls),
        cmocka_unit_test(well_formedness),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

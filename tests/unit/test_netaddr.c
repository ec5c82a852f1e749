/* test_netaddr.c - client addresses, networks and the per-address limit key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/mem.h"
#include "core/netaddr.h"

static fp_addr parse(const char *s)
{
    fp_addr a;
    assert_int_equal(fp_addr_parse(s, strlen(s), &a), FP_OK);
    return a;
}

static void parses_and_formats(void **state)
{
    (void)state;
    char out[FP_ADDR_TEXT];
    fp_addr a = parse(" 192.0.2.7 ");
    assert_true(fp_addr_is_v4(&a));
    fp_addr_format(&a, out);
    assert_string_equal(out, "192.0.2.7");
    a = parse("[2001:db8::1]");
    assert_false(fp_addr_is_v4(&a));
    fp_addr_format(&a, out);
    assert_string_equal(out, "2001:db8::1");
    fp_addr b;
    const char *bad[] = {"", "1.2.3", "1.2.3.4.5", "example.org", "::g", "1.2.3.4/8", "[::1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(fp_addr_parse(bad[i], strlen(bad[i]), &b), FP_INVALID);
}

static void limit_key_is_a_slash_64_for_ipv6(void **state)
{
    (void)state;
    fp_addr a = parse("2001:db8:1:2:aaaa::1"), b = parse("2001:db8:1:2:bbbb::9");
    fp_addr ka = fp_addr_limit_key(&a), kb = fp_addr_limit_key(&b);
    assert_memory_equal(ka.b, kb.b, 16);
    fp_addr c = parse("2001:db8:1:3::1");
    fp_addr kc = fp_addr_limit_key(&c);
    assert_memory_not_equal(ka.b, kc.b, 16);
    fp_addr v4 = parse("127.0.0.2"), v4b = parse("127.0.0.3");
    fp_addr k4 = fp_addr_limit_key(&v4), k4b = fp_addr_limit_key(&v4b);
    assert_memory_not_equal(k4.b, k4b.b, 16);
}

static void networks(void **state)
{
    (void)state;
    fp_netlist *l = NULL;
    char *bad = NULL;
    assert_int_equal(fp_netlist_parse("127.0.0.1, 10.0.0.0/8,,2001:db8::/32 ", &l, &bad), FP_OK);
    assert_int_equal(fp_netlist_len(l), 3);
    fp_addr in1 = parse("127.0.0.1"), in2 = parse("10.200.3.4"), in3 = parse("2001:db8:ff::1");
    fp_addr out1 = parse("127.0.0.2"), out2 = parse("11.0.0.1"), out3 = parse("2001:db9::1");
    assert_true(fp_netlist_match(l, &in1));
    assert_true(fp_netlist_match(l, &in2));
    assert_true(fp_netlist_match(l, &in3));
    assert_false(fp_netlist_match(l, &out1));
    assert_false(fp_netlist_match(l, &out2));
    assert_false(fp_netlist_match(l, &out3));
    fp_netlist_free(&l);
    assert_null(l);
    assert_int_equal(fp_netlist_parse("10.0.0.0/33", &l, &bad), FP_INVALID);
    assert_string_equal(bad, "10.0.0.0/33");
    fp_free(bad);
    assert_int_equal(fp_netlist_parse("proxy.local", &l, &bad), FP_INVALID);
    fp_free(bad);
    assert_int_equal(fp_netlist_parse(NULL, &l, &bad), FP_OK);
    assert_false(fp_netlist_match(l, &in1)); /* empty: nobody is trusted */
    fp_netlist_free(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_and_formats),
        cmocka_unit_test(limit_key_is_a_slash_64_for_ipv6),
        cmocka_unit_test(networks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * utf8.c - UTF-8 checks and the one way user text is cut for messages.
 */
#include "core/utf8.h"

#include "core/buf.h"

static int fp_utf8__is_cont(unsigned char c)
{
    return (c & 0xC0) == 0x80;
}

size_t fp_utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    /* Second-byte bounds per lead byte (RFC 3629 table) reject overlong
     * forms, UTF-16 surrogates and code points past U+10FFFF. */
    unsigned char lo = 0x80, hi = 0xBF;
    size_t need;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (n < need || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < need; i++)
        if (!fp_utf8__is_cont(s[i]))
            return 0;
    return need;
}

size_t fp_utf8_check(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t k = fp_utf8_seq(s + i, n - i);
        if (k == 0)
            return i;
        i += k;
    }
    return n;
}

char *fp_utf8_printable(const void *s, size_t n, size_t max)
{
    static const char replacement[] = "\xEF\xBF\xBD"; /* U+FFFD */
    const unsigned char *p = s;
    fp_buf b;
    fp_buf_init(&b, max * 3 + 8);
    size_t i = 0;
    fp_err rc = FP_OK;
    while (i < n && rc == FP_OK) {
        size_t k = fp_utf8_seq(p + i, n - i);
        if (i + (k ? k : 1) > max) {
            rc = fp_buf_append(&b, "...", 3);
            break;
        }
        if (k == 0 || (k == 1 && (p[i] < 0x20 || p[i] == 0x7F))) {
            rc = fp_buf_append(&b, replacement, 3);
            i++;
        } else {
            rc = fp_buf_append(&b, p + i, k);
            i += k;
        }
    }
    /* The limit leaves room for the worst case (every byte replaced), so
     * rc stays FP_OK; an empty input still yields "". */
    (void)rc;
    return fp_buf_steal(&b, NULL);
}

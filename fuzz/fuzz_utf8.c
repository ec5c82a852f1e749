/*
 * Fuzz target: the UTF-8 checks and the one helper that cuts outside text
 * for messages and JSON answers (core/utf8.h). The first input byte is the
 * cut length, the rest the text.
 *
 * Checked against jansson's own UTF-8 validation (independent code):
 * fp_utf8_check finds the whole text well-formed exactly when jansson
 * accepts it as a string; whatever fp_utf8_printable returns is accepted by
 * jansson, holds no C0 control or DEL, and is at most three bytes per input
 * byte kept plus "..."; a well-formed text without controls that fits comes
 * back unchanged.
 */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/mem.h"
#include "core/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int jansson_accepts(const uint8_t *s, size_t n)
{
    json_t *j = json_stringn((const char *)s, n);
    json_decref(j);
    return j != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t max = data[0];
    const uint8_t *text = data + 1;
    size_t n = size - 1;

    size_t good = fp_utf8_check(text, n);
    if (good > n || (good == n) != jansson_accepts(text, n))
        __builtin_trap();
    if (good < n && !jansson_accepts(text, good))
        __builtin_trap(); /* everything before the first bad byte is well-formed */

    char *out = fp_utf8_printable(text, n, max);
    size_t olen = strlen(out);
    if (!jansson_accepts((const uint8_t *)out, olen) || olen > 3 * max + 3)
        __builtin_trap();
    for (size_t i = 0; i < olen; i++)
        if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f)
            __builtin_trap();
    int controls = 0;
    for (size_t i = 0; i < n; i++)
        controls |= text[i] < 0x20 || text[i] == 0x7f;
    if (good == n && !controls && n <= max && (olen != n || memcmp(out, text, n) != 0))
        __builtin_trap();
    fp_free(out);
    return 0;
}

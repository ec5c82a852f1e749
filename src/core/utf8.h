/*
 * utf8.h - UTF-8 well-formedness (RFC 3629) and the one helper that cuts
 * user text for an error message or a JSON answer.
 *
 * Any text that came from outside and goes back out (an echoed username, a
 * file name, a CSV title) passes through fp_utf8_printable: a byte-count cut
 * such as "%.80s" can split a character, and jansson then refuses the whole
 * string ("encoding failed"). The cut is on a character boundary, invalid
 * bytes and control characters become U+FFFD, so the result is always valid
 * UTF-8 that json_string accepts.
 */
#ifndef FP_UTF8_H
#define FP_UTF8_H

#include <stddef.h>

/* Length (1..4) of the well-formed UTF-8 sequence at s, or 0 when the bytes
 * there are not one (stray continuation byte, overlong form, surrogate,
 * above U+10FFFF, truncated). n > 0. */
size_t fp_utf8_seq(const unsigned char *s, size_t n);

/* Offset of the first byte that is not well-formed UTF-8, n when all are. */
size_t fp_utf8_check(const unsigned char *s, size_t n);

/* A copy of s[0..n) safe to show in a message: at most `max` bytes of the
 * input (cut on a character boundary, "..." appended when cut), invalid
 * UTF-8 and control characters replaced by U+FFFD. Never NULL. Caller frees. */
char *fp_utf8_printable(const void *s, size_t n, size_t max);

#endif

/*
 * fb_util.h - the small toolbox of fakeboxd: one error type, one allocation
 * wrapper, a bounded byte buffer, HTML escaping and deterministic hashing.
 *
 * fakeboxd is a separate program that imitates Letterboxd, so it may not link
 * FilmPicker's fpcore library; these helpers follow the same rules instead:
 * allocation failure aborts (callers never check for NULL), every buffer has
 * a hard size limit, fallible functions return fb_err.
 */
#ifndef FB_UTIL_H
#define FB_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define FB_WARN_UNUSED __attribute__((warn_unused_result))

typedef enum {
    FB_OK = 0,
    FB_INVALID,   /* bad argument or request */
    FB_TOO_LARGE, /* a bounded buffer would pass its limit */
    FB_IO,        /* a system call failed */
    FB_COMPRESS   /* zlib refused */
} fb_err;

/* Human name of an error, for messages. Never NULL. */
const char *fb_err_name(fb_err e);

/* Allocation: failure prints a message and aborts. Caller frees with free(). */
void *fb_malloc(size_t size);
void *fb_calloc(size_t n, size_t size);
void *fb_reallocarray(void *p, size_t n, size_t size);
/* Caller owns the copy; fb_strdup(NULL) is NULL. */
char *fb_strdup(const char *s);
/* Formatted allocation. Caller owns the result. */
char *fb_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Frees *p and sets it to NULL. */
#define FB_FREE(p) do { free(p); (p) = NULL; } while (0)

/*
 * Growable byte buffer with a hard limit fixed at init. An append that would
 * pass the limit fails with FB_TOO_LARGE and leaves the buffer unchanged.
 * data is NUL-terminated after the first append (the NUL is not counted).
 */
typedef struct fb_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t limit;
} fb_buf;

void fb_buf_init(fb_buf *b, size_t limit);
fb_err fb_buf_append(fb_buf *b, const void *data, size_t len) FB_WARN_UNUSED;
fb_err fb_buf_puts(fb_buf *b, const char *s) FB_WARN_UNUSED;
fb_err fb_buf_appendf(fb_buf *b, const char *fmt, ...) FB_WARN_UNUSED
    __attribute__((format(printf, 2, 3)));
/*
 * Appends s HTML-escaped the way Letterboxd's templates do (& < > " and the
 * apostrophe as &#039;), safe both in text and in quoted attribute values.
 */
fb_err fb_buf_put_html(fb_buf *b, const char *s) FB_WARN_UNUSED;
/* Hands the bytes to the caller (who frees them) and resets the buffer. */
char *fb_buf_steal(fb_buf *b, size_t *len);
void fb_buf_free(fb_buf *b);

/* 64-bit FNV-1a of a string: stable across runs and machines. */
uint64_t fb_hash_str(const char *s);
/* A well-mixed 64-bit function of x (splitmix64's finaliser). */
uint64_t fb_mix64(uint64_t x);

/* Deterministic pseudo-random stream (splitmix64); not for security. */
typedef struct fb_rng {
    uint64_t state;
} fb_rng;

void fb_rng_seed(fb_rng *r, uint64_t seed);
uint64_t fb_rng_next(fb_rng *r);
/* Uniform in [0, n) without modulo bias; n must be > 0. */
uint64_t fb_rng_below(fb_rng *r, uint64_t n);

/*
 * Strict decimal parse of the whole string into [min, max]: no sign, no
 * spaces, no leading '+', nothing after the digits.
 */
fb_err fb_parse_long(const char *s, long min, long max, long *out) FB_WARN_UNUSED;

#endif

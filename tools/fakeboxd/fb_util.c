/*
 * fb_util.c - fakeboxd's allocation, buffer, escaping and hashing helpers.
 *
 * Out-of-memory policy: abort with a message, like fpcore's mem.c, so no
 * caller carries half-built state. The buffer grows geometrically and never
 * passes its limit.
 */
#include "fb_util.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *fb_err_name(fb_err e)
{
    switch (e) {
    case FB_OK: return "ok";
    case FB_INVALID: return "invalid argument";
    case FB_TOO_LARGE: return "too large";
    case FB_IO: return "i/o error";
    case FB_COMPRESS: return "compression failed";
    }
    return "unknown error";
}

static void fb__oom(size_t size)
{
    fprintf(stderr, "fakeboxd: out of memory allocating %zu bytes\n", size);
    abort();
}

void *fb_malloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p)
        fb__oom(size);
    return p;
}

void *fb_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        fb__oom(n * size);
    return p;
}

void *fb_reallocarray(void *p, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        fb__oom(SIZE_MAX);
    size_t total = n * size;
    void *q = realloc(p, total > 0 ? total : 1);
    if (!q)
        fb__oom(total);
    return q;
}

char *fb_strdup(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = fb_malloc(n);
    memcpy(d, s, n);
    return d;
}

char *fb_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        fb__oom(0);
    char *s = fb_malloc((size_t)n + 1);
    va_start(ap, fmt);
    int m = vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    if (m != n)
        fb__oom((size_t)n);
    return s;
}

void fb_buf_init(fb_buf *b, size_t limit)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->limit = limit;
}

fb_err fb_buf_append(fb_buf *b, const void *data, size_t len)
{
    if (len > b->limit - b->len)
        return FB_TOO_LARGE;
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + len + 1)
            cap = cap > SIZE_MAX / 2 ? b->len + len + 1 : cap * 2;
        b->data = fb_reallocarray(b->data, cap, 1);
        b->cap = cap;
    }
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return FB_OK;
}

fb_err fb_buf_puts(fb_buf *b, const char *s)
{
    return fb_buf_append(b, s, strlen(s));
}

fb_err fb_buf_appendf(fb_buf *b, const char *fmt, ...)
{
    char small[512];
    char *big = NULL;
    fb_err err = FB_OK;
    va_list ap;

    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        err = FB_INVALID;
        goto out;
    }
    if ((size_t)n < sizeof(small)) {
        err = fb_buf_append(b, small, (size_t)n);
        goto out;
    }
    big = fb_malloc((size_t)n + 1);
    va_start(ap, fmt);
    int m = vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    if (m != n) {
        err = FB_INVALID;
        goto out;
    }
    err = fb_buf_append(b, big, (size_t)n);
out:
    free(big);
    return err;
}

fb_err fb_buf_put_html(fb_buf *b, const char *s)
{
    fb_err err = FB_OK;
    const char *run = s;

    for (const char *p = s; *p; p++) {
        const char *rep = NULL;
        switch (*p) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#039;"; break;
        default: break;
        }
        if (!rep)
            continue;
        err = fb_buf_append(b, run, (size_t)(p - run));
        if (err == FB_OK)
            err = fb_buf_puts(b, rep);
        if (err != FB_OK)
            goto out;
        run = p + 1;
    }
    err = fb_buf_puts(b, run);
out:
    return err;
}

char *fb_buf_steal(fb_buf *b, size_t *len)
{
    char *d = b->data ? b->data : fb_strdup("");
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return d;
}

void fb_buf_free(fb_buf *b)
{
    FB_FREE(b->data);
    b->len = 0;
    b->cap = 0;
}

uint64_t fb_hash_str(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ULL;
    }
    return h;
}

uint64_t fb_mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

void fb_rng_seed(fb_rng *r, uint64_t seed)
{
    r->state = seed;
}

uint64_t fb_rng_next(fb_rng *r)
{
    r->state += 0x9e3779b97f4a7c15ULL;
    return fb_mix64(r->state);
}

uint64_t fb_rng_below(fb_rng *r, uint64_t n)
{
    /* Reject the top partial bucket so every value is equally likely. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do {
        x = fb_rng_next(r);
    } while (x >= limit);
    return x % n;
}

fb_err fb_parse_long(const char *s, long min, long max, long *out)
{
    if (!s || *s < '0' || *s > '9')
        return FB_INVALID;
    errno = 0;
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return FB_INVALID;
    *out = v;
    return FB_OK;
}

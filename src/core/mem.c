/* mem.c - allocation with one policy: abort with a message on exhaustion. */
#include "core/mem.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fp_oom(size_t size)
{
    fprintf(stderr, "{\"level\":\"fatal\",\"msg\":\"out of memory\",\"size\":%zu}\n", size);
    abort();
}

void *fp_malloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p)
        fp_oom(size);
    return p;
}

void *fp_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        fp_oom(n * size);
    return p;
}

void *fp_realloc(void *p, size_t size)
{
    void *q = realloc(p, size ? size : 1);
    if (!q)
        fp_oom(size);
    return q;
}

void *fp_reallocarray(void *p, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        fp_oom(SIZE_MAX);
    return fp_realloc(p, n * size);
}

char *fp_strdup(const char *s)
{
    return s ? fp_strndup(s, strlen(s)) : NULL;
}

char *fp_strndup(const char *s, size_t n)
{
    if (!s)
        return NULL;
    size_t len = strnlen(s, n);
    char *d = fp_malloc(len + 1);
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

char *fp_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return fp_strdup("");
    char *s = fp_malloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

void fp_free(void *p)
{
    free(p);
}

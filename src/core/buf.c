/* buf.c - bounded growable buffer. */
#include "core/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/mem.h"

void fp_buf_init(fp_buf *b, size_t limit)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->limit = limit;
}

fp_err fp_buf_append(fp_buf *b, const void *data, size_t len)
{
    if (len > b->limit || b->len > b->limit - len)
        return FP_TOO_LARGE;
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + len + 1)
            cap *= 2;
        b->data = fp_realloc(b->data, cap);
        b->cap = cap;
    }
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return FP_OK;
}

fp_err fp_buf_appendf(fp_buf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return FP_INTERNAL;
    if ((size_t)n < sizeof small)
        return fp_buf_append(b, small, (size_t)n);
    char *big = fp_malloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    fp_err rc = fp_buf_append(b, big, (size_t)n);
    fp_free(big);
    return rc;
}

char *fp_buf_steal(fp_buf *b, size_t *len)
{
    char *d = b->data ? b->data : fp_strdup("");
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return d;
}

void fp_buf_reset(fp_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void fp_buf_free(fp_buf *b)
{
    FP_FREE(b->data);
    b->len = b->cap = 0;
}

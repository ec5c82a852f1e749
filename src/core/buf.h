/*
 * buf.h - a growable byte buffer with a hard size limit (curl's dynbuf).
 *
 * Everything filled from outside (request bodies, fetched pages, uploaded
 * files) goes through an fp_buf whose limit is set at init: an append that
 * would pass it fails with FP_TOO_LARGE and leaves the buffer unchanged.
 * The data is always NUL-terminated for convenience (the NUL is not counted).
 */
#ifndef FP_BUF_H
#define FP_BUF_H

#include <stddef.h>

#include "core/error.h"

typedef struct fp_buf {
    char *data;   /* NUL-terminated; NULL until the first append */
    size_t len;
    size_t cap;
    size_t limit; /* maximum len */
} fp_buf;

void fp_buf_init(fp_buf *b, size_t limit);
fp_err fp_buf_append(fp_buf *b, const void *data, size_t len) FP_WARN_UNUSED;
fp_err fp_buf_appendf(fp_buf *b, const char *fmt, ...) FP_WARN_UNUSED
    __attribute__((format(printf, 2, 3)));
/* Hands the bytes to the caller (who frees them) and resets the buffer. */
char *fp_buf_steal(fp_buf *b, size_t *len);
void fp_buf_reset(fp_buf *b);
void fp_buf_free(fp_buf *b);

#endif

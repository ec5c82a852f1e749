/*
 * mem.h - the one allocation wrapper and its out-of-memory policy.
 *
 * Like redis's zmalloc: an allocation failure aborts the process with a
 * message, so callers never carry half-built state. Size arithmetic is
 * overflow-checked (fp_calloc, fp_reallocarray). Functions returning memory
 * say who frees it; fp_free() is plain free().
 */
#ifndef FP_MEM_H
#define FP_MEM_H

#include <stddef.h>

void *fp_malloc(size_t size);
void *fp_calloc(size_t n, size_t size);
void *fp_realloc(void *p, size_t size);
void *fp_reallocarray(void *p, size_t n, size_t size);
/* Caller owns the copy. fp_strdup(NULL) returns NULL. */
char *fp_strdup(const char *s);
char *fp_strndup(const char *s, size_t n);
/* Formatted allocation (vasprintf-like). Caller owns the result. */
char *fp_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fp_free(void *p);

/* Frees *p and sets it to NULL. */
#define FP_FREE(p) do { fp_free(p); (p) = NULL; } while (0)

#endif

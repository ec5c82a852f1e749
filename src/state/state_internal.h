/*
 * state_internal.h - what the shared-state backends share and nobody else
 * uses: argument checks and stream id parsing (state.c).
 */
#ifndef FP_STATE_INTERNAL_H
#define FP_STATE_INTERNAL_H
#include <stddef.h>
#include <stdint.h>

/* 1 when s is a stream id "ms-seq" (decimal, each fitting 64 bits; "ms"
 * alone means seq 0), filling ms and seq. */
int state__id_parse(const char *s, uint64_t *ms, uint64_t *seq);
/* 1 for a name of 1..STATE_NAME_MAX printable ASCII bytes (space included). */
int state__name_ok(const char *name);
/* 1 for a token of 1..STATE_TOKEN_MAX printable ASCII bytes, no space. */
int state__token_ok(const char *token);

#endif

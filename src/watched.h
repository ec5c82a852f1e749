/*
 * watched.h - a person's "watched here" set: the films a group marked
 * "We will watch it!" for that person, kept off every later fetch or import
 * of their watchlist until they put the film back.
 *
 * The set is stored like a watchlist (store.h watched_get/watched_put): under
 * the person key, sealed by vault.h. vault_seal takes a sorted list of
 * positive ids, so each entry is packed into one such number:
 *     code = film_id << 32 | watched_at        (watched_at: unix seconds)
 * Sorting the codes sorts the entries by film id, and a film appears once.
 * Film ids must be below 2^31 and times below 2^32 (the year 2106).
 */
#ifndef FP_WATCHED_H
#define FP_WATCHED_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef struct watched_entry {
    int64_t film_id;
    int64_t at; /* unix seconds when it was marked watched */
} watched_entry;

typedef struct watched_set {
    watched_entry *items; /* sorted by film_id, unique; owned */
    size_t n;
    size_t cap;           /* entries items can hold (0: not allocated by watched.c) */
} watched_set;

#define WATCHED_MAX_FILM_ID ((int64_t)1 << 31)
#define WATCHED_MAX 100000 /* entries kept per person; the oldest go first */

/* The sealable form: n codes, ascending. Caller frees *codes. FP_INVALID for
 * an id or time out of range. */
fp_err watched_pack(const watched_set *w, int64_t **codes, size_t *n) FP_WARN_UNUSED;
/* The inverse; FP_CORRUPT for codes that are not ascending or hold a zero id. */
fp_err watched_unpack(const int64_t *codes, size_t n, watched_set *out) FP_WARN_UNUSED;

/* Adds (or re-times) film_id. Returns 1 when the set changed. */
int watched_add(watched_set *w, int64_t film_id, int64_t at);
/* Returns 1 when film_id was there (and is gone now). */
int watched_remove(watched_set *w, int64_t film_id);
int watched_has(const watched_set *w, int64_t film_id);
/* Drops every watched film from ids (sorted ascending) in place; returns the
 * new length. */
size_t watched_filter(const watched_set *w, int64_t *ids, size_t n);
/* The entries marked at or after since, newest first, at most max: copies
 * into out (caller frees *out). */
size_t watched_recent(const watched_set *w, int64_t since, size_t max, watched_entry **out);
void watched_free(watched_set *w);

#endif

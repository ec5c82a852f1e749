/* watched.c - the "watched here" set of one person (watched.h). */
#include "watched.h"

#include <stdlib.h>
#include <string.h>

#include "core/mem.h"

fp_err watched_pack(const watched_set *w, int64_t **codes, size_t *n)
{
    *codes = NULL;
    *n = 0;
    int64_t *out = fp_malloc((w->n ? w->n : 1) * sizeof *out);
    for (size_t i = 0; i < w->n; i++) {
        const watched_entry *e = &w->items[i];
        if (e->film_id <= 0 || e->film_id >= WATCHED_MAX_FILM_ID || e->at < 0 ||
            e->at > (int64_t)UINT32_MAX || (i > 0 && e->film_id <= w->items[i - 1].film_id)) {
            fp_free(out);
            return FP_INVALID;
        }
        out[i] = (int64_t)((uint64_t)e->film_id << 32 | (uint64_t)e->at);
    }
    *codes = out;
    *n = w->n;
    return FP_OK;
}

fp_err watched_unpack(const int64_t *codes, size_t n, watched_set *out)
{
    out->items = NULL;
    out->n = 0;
    out->cap = 0;
    watched_entry *items = fp_malloc((n ? n : 1) * sizeof *items);
    for (size_t i = 0; i < n; i++) {
        uint64_t c = (uint64_t)codes[i];
        items[i].film_id = (int64_t)(c >> 32);
        items[i].at = (int64_t)(c & UINT32_MAX);
        if (codes[i] <= 0 || items[i].film_id == 0 ||
            (i > 0 && items[i].film_id <= items[i - 1].film_id)) {
            fp_free(items);
            return FP_CORRUPT;
        }
    }
    out->items = items;
    out->n = n;
    out->cap = n ? n : 1;
    return FP_OK;
}

/* Index of the first entry with film_id >= id. */
static size_t watched__lower(const watched_set *w, int64_t id)
{
    size_t lo = 0, hi = w->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (w->items[mid].film_id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int watched_has(const watched_set *w, int64_t film_id)
{
    size_t i = watched__lower(w, film_id);
    return i < w->n && w->items[i].film_id == film_id;
}

int watched_add(watched_set *w, int64_t film_id, int64_t at)
{
    size_t i = watched__lower(w, film_id);
    if (i < w->n && w->items[i].film_id == film_id) {
        if (w->items[i].at == at)
            return 0;
        w->items[i].at = at;
        return 1;
    }
    if (w->n >= WATCHED_MAX) { /* full: forget the entry marked longest ago */
        size_t oldest = 0;
        for (size_t k = 1; k < w->n; k++)
            if (w->items[k].at < w->items[oldest].at)
                oldest = k;
        memmove(w->items + oldest, w->items + oldest + 1,
                (w->n - oldest - 1) * sizeof *w->items);
        w->n--;
        i = watched__lower(w, film_id);
    }
    if (w->n + 1 > w->cap) { /* grow geometrically: adds stay O(n) in all */
        size_t cap = w->cap ? w->cap * 2 : 16;
        if (cap < w->n + 1)
            cap = w->n + 1;
        w->items = fp_reallocarray(w->items, cap, sizeof *w->items);
        w->cap = cap;
    }
    memmove(w->items + i + 1, w->items + i, (w->n - i) * sizeof *w->items);
    w->items[i] = (watched_entry){film_id, at};
    w->n++;
    return 1;
}

int watched_remove(watched_set *w, int64_t film_id)
{
    size_t i = watched__lower(w, film_id);
    if (i >= w->n || w->items[i].film_id != film_id)
        return 0;
    memmove(w->items + i, w->items + i + 1, (w->n - i - 1) * sizeof *w->items);
    w->n--;
    return 1;
}

size_t watched_filter(const watched_set *w, int64_t *ids, size_t n)
{
    if (w->n == 0)
        return n;
    size_t k = 0, j = 0;
    for (size_t i = 0; i < n; i++) {
        while (j < w->n && w->items[j].film_id < ids[i])
            j++;
        if (j < w->n && w->items[j].film_id == ids[i])
            continue;
        ids[k++] = ids[i];
    }
    return k;
}

static int watched__newest_first(const void *a, const void *b)
{
    const watched_entry *x = a, *y = b;
    if (x->at != y->at)
        return x->at < y->at ? 1 : -1;
    return (x->film_id > y->film_id) - (x->film_id < y->film_id);
}

size_t watched_recent(const watched_set *w, int64_t since, size_t max, watched_entry **out)
{
    watched_entry *r = fp_malloc((w->n ? w->n : 1) * sizeof *r);
    size_t k = 0;
    for (size_t i = 0; i < w->n; i++)
        if (w->items[i].at >= since)
            r[k++] = w->items[i];
    qsort(r, k, sizeof *r, watched__newest_first);
    *out = r;
    return k < max ? k : max;
}

void watched_free(watched_set *w)
{
    FP_FREE(w->items);
    w->n = 0;
    w->cap = 0;
}

/*
 * state.c - picks the shared-state backend from its URL and holds what
 * both backends share: the checks of names and tokens, stream ids.
 *
 * URLs: "inproc" or "inproc://" (this process, state_inproc.c);
 * "redis://..." (state_redis.c, the URL of redis/redis.h). "rediss://" is
 * taken by the Redis backend and refused by its open() with a clear log line
 * (no TLS in this hiredis), so that a TLS URL is not reported as unknown.
 */
#include "state/state.h"

#include <stdlib.h>
#include <string.h>

#include "state/state_internal.h"

const state_backend *state_backend_for(const char *url)
{
    static const state_backend *const all[] = {&state_backend_inproc, &state_backend_redis};
    if (!url)
        return NULL;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i]->accepts(url))
            return all[i];
    return NULL;
}

/* A decimal of 1..20 digits that fits 64 bits, ending at *end. */
static int state__u64(const char *s, const char **end, uint64_t *out)
{
    uint64_t v = 0;
    const char *p = s;
    while (*p >= '0' && *p <= '9') {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return 0;
        v = v * 10 + d;
        p++;
    }
    if (p == s)
        return 0;
    *end = p;
    *out = v;
    return 1;
}

int state__id_parse(const char *s, uint64_t *ms, uint64_t *seq)
{
    const char *p;
    if (!s || !state__u64(s, &p, ms))
        return 0;
    *seq = 0;
    if (*p == '\0')
        return 1;
    if (*p != '-' || !state__u64(p + 1, &p, seq))
        return 0;
    return *p == '\0';
}

int state_id_cmp(const char *a, const char *b)
{
    uint64_t am = 0, as = 0, bm = 0, bs = 0;
    int ao = state__id_parse(a, &am, &as), bo = state__id_parse(b, &bm, &bs);
    if (!ao || !bo)
        return ao - bo; /* a malformed id sorts first */
    if (am != bm)
        return am < bm ? -1 : 1;
    if (as != bs)
        return as < bs ? -1 : 1;
    return 0;
}

static int state__printable(const char *s, size_t max, int space_ok)
{
    if (!s)
        return 0;
    size_t n = strnlen(s, max + 1);
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c > 0x7e || c < (space_ok ? 0x20 : 0x21))
            return 0;
    }
    return 1;
}

int state__name_ok(const char *name)
{
    return state__printable(name, STATE_NAME_MAX, 1);
}

int state__token_ok(const char *token)
{
    return state__printable(token, STATE_TOKEN_MAX, 0);
}

/*
 * fb_catalog.c - fakeboxd's film universe and per-user watchlists.
 *
 * Titles come from small word lists mixed by a hash of the film number, with
 * fixed residues of n mod 12 reserved for the awkward cases (so films 1..20,
 * which every user has, include each of them): 3 '&', 5 apostrophe,
 * 7 non-ASCII, 9 double quotes, 11 one-word titles (many films share them),
 * 1 remakes (same title as film n-12, another year). Slugs are assigned in
 * film order, so film n's slug depends only on films 1..n.
 */
#include "fb_catalog.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *const fb__adjectives[] = {
    "Silent", "Last", "Burning", "Hidden", "Broken", "Golden", "Distant", "Crimson",
    "Lonely", "Electric", "Quiet", "Savage", "Endless", "Frozen", "Wild", "Secret",
    "Midnight", "Paper", "Iron", "Glass", "Velvet", "Hollow", "Restless", "Bitter",
    "Forgotten", "Sleeping", "Northern", "Scarlet", "Fading", "Little", "Infinite", "Dark",
};

static const char *const fb__nouns[] = {
    "River", "Summer", "Stranger", "Garden", "Highway", "Mirror", "Harbor", "Letter",
    "Empire", "Dream", "Orchard", "Kingdom", "Shadow", "Island", "Window", "Winter",
    "Station", "Voyage", "City", "Heart", "Horizon", "Lighthouse", "Circus", "Desert",
    "Forest", "Mountain", "Widow", "Detective", "Dancer", "Prophet", "Storm", "Harvest",
    "Machine", "Ghost", "Bridge", "Hotel", "Piano", "Soldier", "Sister", "Train",
    "Wedding", "Funeral", "Nightingale", "Tide", "Labyrinth", "Carnival", "Frontier", "Moon",
};

/* Non-ASCII titles with the ASCII slug Letterboxd would give them. */
static const struct {
    const char *title;
    const char *slug;
} fb__foreign[] = {
    {"Sir\xC4\x81t", "sirat"},
    {"L\xC3\xA9on", "leon"},
    {"Am\xC3\xA9lie", "amelie"},
    {"\xD0\xA1\xD0\xBE\xD0\xBB\xD1\x8F\xD1\x80\xD0\xB8\xD1\x81", "solyaris"},
    {"\xD0\x91\xD1\x80\xD0\xB0\xD1\x82", "brat"},
    {"\xD0\x81\xD0\xB6\xD0\xB8\xD0\xBA \xD0\xB2 \xD1\x82\xD1\x83\xD0\xBC\xD0\xB0\xD0\xBD\xD0\xB5",
     "yozhik-v-tumane"},
    {"Der Himmel \xC3\xBC" "ber Berlin", "der-himmel-uber-berlin"},
    {"Kr\xC3\xB3tki film o mi\xC5\x82o\xC5\x9B" "ci", "krotki-film-o-milosci"},
    {"\xC3\x87" "a ira", "ca-ira"},
    {"\xE6\x9D\xB1\xE4\xBA\xAC\xE7\x89\xA9\xE8\xAA\x9E", "tokyo-monogatari"},
    {"Les Mis\xC3\xA9rables", "les-miserables"},
    {"\xC5\x8C" "dishon", "odishon"},
};

#define FB__COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define FB__SLUG_MAX 200

static const char *fb__adj(uint64_t h)
{
    return fb__adjectives[h % FB__COUNT(fb__adjectives)];
}

static const char *fb__noun(uint64_t h)
{
    return fb__nouns[h % FB__COUNT(fb__nouns)];
}

/* Letterboxd-style slug of an ASCII title: apostrophes and quotes vanish,
 * any other run of non-alphanumerics becomes one hyphen. */
static void fb__slugify(const char *title, char *out, size_t cap)
{
    size_t o = 0;
    int pending_dash = 0;

    for (const unsigned char *p = (const unsigned char *)title; *p && o + 2 < cap; p++) {
        unsigned char ch = *p;
        if (ch == '\'' || ch == '"')
            continue;
        if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'Z')) {
            if (pending_dash && o > 0)
                out[o++] = '-';
            pending_dash = 0;
            out[o++] = (char)(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
        } else {
            pending_dash = 1;
        }
    }
    out[o] = '\0';
}

static int fb__year(long n)
{
    uint64_t h = fb_mix64((uint64_t)n ^ 0x5bd1e995ULL);
    return FB_YEAR_MIN + (int)(h % (uint64_t)(FB_YEAR_MAX - FB_YEAR_MIN + 1));
}

/* Remakes: n = 1 (mod 12) copies film n-12's title, except every third one,
 * so a title is shared by at most three films in a row. */
static int fb__is_remake(long n)
{
    return n > 12 && n % 12 == 1 && (n / 12) % 3 != 0;
}

/* Title and base slug (before de-duplication) of film n >= 1; caller frees both. */
static void fb__title(long n, char **title, char **base)
{
    char slug[FB__SLUG_MAX];
    char rest[FB__SLUG_MAX];

    while (fb__is_remake(n))
        n -= 12;

    uint64_t h = fb_mix64((uint64_t)n * 0x9e3779b97f4a7c15ULL + 0x632be59bd9b4e019ULL);
    const char *a1 = fb__adj(h);
    const char *n1 = fb__noun(h >> 8);
    const char *n2 = fb__noun(h >> 16);
    if (n1 == n2)
        n2 = fb__noun((h >> 16) + 1);

    *base = NULL;
    switch (n % 12) {
    case 3:
        *title = fb_printf("%s & %s", n1, n2);
        break;
    case 5:
        *title = (h >> 24) % 2 ? fb_printf("The %s's %s", n1, n2)
                               : fb_printf("The %s Who Wasn't There", n1);
        break;
    case 7: {
        size_t i = (size_t)((n / 12) % (long)FB__COUNT(fb__foreign));
        if ((n / 12) % 5 == 0) {
            *title = fb_strdup(fb__foreign[i].title);
            *base = fb_strdup(fb__foreign[i].slug);
        } else {
            char *sub = fb_printf("The %s %s", a1, n1);
            *title = fb_printf("%s: %s", fb__foreign[i].title, sub);
            fb__slugify(sub, rest, sizeof(rest));
            *base = fb_printf("%s-%s", fb__foreign[i].slug, rest);
            free(sub);
        }
        break;
    }
    case 9:
        *title = fb_printf("The \"%s\" %s", a1, n1);
        break;
    case 11:
        *title = fb_strdup(n1);
        break;
    default:
        switch ((h >> 32) % 7) {
        case 0: *title = fb_printf("The %s %s", a1, n1); break;
        case 1: *title = fb_printf("%s of the %s", n1, n2); break;
        case 2: *title = fb_printf("%s %s", a1, n1); break;
        case 3: *title = fb_printf("A %s for the %s", n1, n2); break;
        case 4: *title = fb_printf("%s, %s %s", n1, a1, n2); break;
        case 5: *title = fb_printf("%s 2: The %s %s", n1, a1, n2); break;
        default: *title = fb_printf("The %s and the %s", n1, n2); break;
        }
        break;
    }
    if (!*base) {
        fb__slugify(*title, slug, sizeof(slug));
        *base = fb_strdup(slug[0] ? slug : "film");
    }
}

static void fb__lid(long id, char out[8])
{
    static const char digits[] =
        "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    char rev[8];
    size_t k = 0;
    unsigned long v = (unsigned long)id;

    do {
        rev[k++] = digits[v % 62];
        v /= 62;
    } while (v && k < sizeof(rev) - 1);
    for (size_t i = 0; i < k; i++)
        out[i] = rev[k - 1 - i];
    out[k] = '\0';
}

/*
 * A fixed-size open-addressing map from strings to longs, sized for the
 * whole universe at once (jansson's hashtable was the start-up bottleneck
 * at a million films). Keys are borrowed: they must outlive the map.
 */
typedef struct fb__map {
    const char **keys;
    long *vals;
    size_t mask;
} fb__map;

static void fb__map_init(fb__map *m, size_t entries)
{
    size_t cap = 16;
    while (cap < entries * 2)
        cap *= 2;
    m->keys = fb_calloc(cap, sizeof(*m->keys));
    m->vals = fb_calloc(cap, sizeof(*m->vals));
    m->mask = cap - 1;
}

static void fb__map_free(fb__map *m)
{
    FB_FREE(m->keys);
    FB_FREE(m->vals);
}

/* The slot of key: where it is, or the empty slot where it would go. */
static size_t fb__map_slot(const fb__map *m, const char *key)
{
    size_t i = (size_t)fb_mix64(fb_hash_str(key)) & m->mask;
    while (m->keys[i] && strcmp(m->keys[i], key) != 0)
        i = (i + 1) & m->mask;
    return i;
}

/* Claims slug (borrowed) in the set; 1 when it was free. The map is sized
 * for every slug of the catalog, so it never fills up. */
static int fb__claim(fb__map *taken, const char *slug)
{
    size_t i = fb__map_slot(taken, slug);
    if (taken->keys[i])
        return 0;
    taken->keys[i] = slug;
    return 1;
}

fb_err fb_catalog_init(fb_catalog *c, long universe)
{
    fb_err err = FB_OK;
    fb__map taken = {0};    /* slugs in use */
    fb__map counters = {0}; /* base slug (owned copies) -> next number suffix to try */

    c->universe = 0;
    c->films = NULL;
    if (universe < 1 || universe > FB_UNIVERSE_MAX) {
        err = FB_INVALID;
        goto out;
    }
    fb__map_init(&taken, (size_t)universe + 1);
    fb__map_init(&counters, (size_t)universe + 1);
    c->films = fb_calloc((size_t)universe + 1, sizeof(fb_film));
    c->universe = universe;

    fb_film *x = &c->films[0];
    x->lb_id = FB_LB_ID_BASE;
    x->year = 2024;
    x->title = fb_strdup(FB_XSS_TITLE);
    x->slug = fb_strdup("img-src-x-onerror-alert-1");
    fb__lid(x->lb_id, x->lid);
    if (!fb__claim(&taken, x->slug)) {
        err = FB_INVALID;
        goto out;
    }

    for (long n = 1; n <= universe; n++) {
        fb_film *f = &c->films[n];
        char *base = NULL;
        f->lb_id = FB_LB_ID_BASE + n;
        f->year = fb__year(n);
        fb__title(n, &f->title, &base);
        if (fb__is_remake(n) && f->year == c->films[n - 12].year)
            f->year = f->year == FB_YEAR_MAX ? FB_YEAR_MIN : f->year + 1;
        fb__lid(f->lb_id, f->lid);
        if (fb__claim(&taken, base)) {
            f->slug = base;
            continue;
        }
        f->slug = fb_printf("%s-%d", base, f->year);
        if (!fb__claim(&taken, f->slug)) {
            /* Resume numbering where this base left off, or a one-word
             * title shared by thousands of films makes this quadratic. */
            size_t i = fb__map_slot(&counters, base);
            long k = counters.keys[i] ? counters.vals[i] : 2;
            do {
                free(f->slug);
                f->slug = fb_printf("%s-%ld", base, k++);
            } while (!fb__claim(&taken, f->slug));
            if (!counters.keys[i])
                counters.keys[i] = fb_strdup(base);
            counters.vals[i] = k;
        }
        free(base);
    }
out:
    if (counters.keys) {
        for (size_t i = 0; i <= counters.mask; i++)
            free((char *)counters.keys[i]);
    }
    fb__map_free(&counters);
    fb__map_free(&taken);
    if (err != FB_OK)
        fb_catalog_free(c);
    return err;
}

void fb_catalog_free(fb_catalog *c)
{
    if (c->films) {
        for (long n = 0; n <= c->universe; n++) {
            free(c->films[n].title);
            free(c->films[n].slug);
        }
    }
    FB_FREE(c->films);
    c->universe = 0;
}

static const struct {
    const char *prefix;
    fb_behaviour behaviour;
} fb__prefixes[] = {
    {"notfound", FB_USER_NOTFOUND},
    {"empty", FB_USER_EMPTY},
    {"private", FB_USER_PRIVATE},
    {"blocked", FB_USER_BLOCKED},
    {"down", FB_USER_DOWN},
    {"flaky", FB_USER_FLAKY},
    {"ratelimited", FB_USER_RATELIMITED},
    {"slow", FB_USER_SLOW},
    {"garbage", FB_USER_GARBAGE},
    {"xss", FB_USER_XSS},
};

fb_err fb_user_parse(const char *name, long default_size, fb_user *out)
{
    size_t len = name ? strlen(name) : 0;

    if (len == 0 || len > FB_USERNAME_MAX)
        return FB_INVALID;
    for (size_t i = 0; i < len; i++) {
        char ch = name[i];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                 (ch >= '0' && ch <= '9') || ch == '_';
        if (!ok)
            return FB_INVALID;
        out->name[i] = ch;
        out->key[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
    }
    out->name[len] = '\0';
    out->key[len] = '\0';

    out->behaviour = FB_USER_NORMAL;
    for (size_t i = 0; i < FB__COUNT(fb__prefixes); i++) {
        size_t plen = strlen(fb__prefixes[i].prefix);
        if (strncmp(out->key, fb__prefixes[i].prefix, plen) == 0) {
            out->behaviour = fb__prefixes[i].behaviour;
            break;
        }
    }

    out->size = default_size;
    const char *suffix = strrchr(out->key, '_');
    if (suffix && suffix[1] == 'n') {
        long v = 0;
        if (fb_parse_long(suffix + 2, 0, FB_UNIVERSE_MAX, &v) == FB_OK)
            out->size = v;
    }
    return FB_OK;
}

int fb_user_has_films(const fb_user *u)
{
    switch (u->behaviour) {
    case FB_USER_NORMAL:
    case FB_USER_FLAKY:
    case FB_USER_RATELIMITED:
    case FB_USER_SLOW:
    case FB_USER_XSS:
        return 1;
    default:
        return 0;
    }
}

void fb_user_list(const fb_catalog *c, const fb_user *u, long common, long **out, size_t *len)
{
    long universe = c->universe;
    long size = u->size;
    unsigned char *picked = NULL;
    fb_rng rng;

    *out = NULL;
    *len = 0;
    if (!fb_user_has_films(u) || size <= 0)
        goto out;
    if (size > universe)
        size = universe;
    if (common > universe)
        common = universe;
    if (common < 0)
        common = 0;
    long shared = common < size ? common : size;
    long drawn = size - shared;       /* <= universe - common */
    long pool = universe - common;    /* candidates common+1..universe */

    long *list = fb_calloc((size_t)size, sizeof(long));
    size_t k = 0;
    for (long n = 1; n <= shared; n++)
        list[k++] = n;

    /* Floyd's sampling: drawn distinct values of [0, pool) in O(drawn). */
    fb_rng_seed(&rng, fb_hash_str(u->key));
    picked = fb_calloc((size_t)pool / 8 + 1, 1);
    for (long j = pool - drawn; j < pool; j++) {
        long t = (long)fb_rng_below(&rng, (uint64_t)j + 1);
        long v = (picked[t / 8] & (1u << (t % 8))) ? j : t;
        picked[v / 8] |= (unsigned char)(1u << (v % 8));
        list[k++] = common + 1 + v;
    }

    /* Fisher-Yates, so the shared films are spread over the pages. */
    for (size_t i = k; i > 1; i--) {
        size_t j = (size_t)fb_rng_below(&rng, (uint64_t)i);
        long tmp = list[i - 1];
        list[i - 1] = list[j];
        list[j] = tmp;
    }

    if (u->behaviour == FB_USER_XSS) {
        /* Near the top (page 1 at any per-page of 20 or more), and not in
         * place of a film every user shares. */
        size_t at = k > 2 ? 2 : k - 1;
        for (size_t i = at; i < k && i < 20; i++) {
            if (list[i] > common) {
                at = i;
                break;
            }
        }
        list[at] = 0;
    }
    *out = list;
    *len = k;
out:
    free(picked);
}

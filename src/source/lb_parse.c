/*
 * lb_parse.c - turns one Letterboxd grid page (watchlist, list, /films/) into
 * films, with libxml2's forgiving HTML parser and XPath.
 *
 * Contract (see lb_parse.h): only the main poster grid counts; the markup
 * generation (classic / react2025 / react2026) is detected per page; a page
 * with no posters is an empty page only when Letterboxd's grid scaffolding is
 * there and empty, otherwise FP_FORMAT (the site changed) or FP_BLOCKED (a
 * Cloudflare challenge). Hostile input is bounded: libxml2 caps text nodes,
 * titles, slugs and JSON attributes have length limits here, and every
 * number read from the page is range-checked.
 *
 * Cost: every XPath below is a single descendant scan (linear in the page);
 * per-poster work walks only the poster's own ancestors and subtree.
 */
#include "source/lb_parse.h"

#include <ctype.h>
#include <jansson.h>
#include <libxml/HTMLparser.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"

/* The "has class token c" test, as XPath 1.0 has no class selector; the
 * plain contains() first is a cheap filter (XPath's "and" short-circuits). */
#define LB_CLASS(c) \
    "(contains(@class, '" c "') and contains(concat(' ', normalize-space(@class), ' '), ' " c " '))"

/* Poster candidates of every generation; filtered in C (lb_poster_kind). */
static const char lb_xp_posters[] =
    "//div[@data-film-slug or (@data-item-slug and @data-component-class)]";
/* Containers a main grid is made of (lb_is_grid_list mirrors the ul part). */
static const char lb_xp_grids[] =
    "//ul[" LB_CLASS("poster-list") " or " LB_CLASS("js-list-entries") " or " LB_CLASS("grid") "]"
    " | //div[" LB_CLASS("poster-grid") "]";
/* Element names are spelled out: an any-element step ("*" after "//") makes libxml2
 * collect every element before filtering, 3-4 times slower than "div". */
static const char lb_xp_num_entries[] = "//div[@data-num-entries]";
static const char lb_xp_count[] = "//span[" LB_CLASS("js-watchlist-count") "]";
static const char lb_xp_watchlist[] = "//div[" LB_CLASS("js-watchlist-content") "]";
static const char lb_xp_pages[] = "//div[" LB_CLASS("paginate-pages") "]//li";
static const char lb_xp_next[] =
    "//div[" LB_CLASS("pagination") "]//a[@href and " LB_CLASS("next") "]";

/* A watchlist far beyond any real one: larger claims are ignored. */
#define LB_NUM_ENTRIES_MAX 100000000L
/* The postered-identifier JSON is ~80 bytes; anything far longer is hostile. */
#define LB_JSON_MAX 4096

static pthread_once_t lb_xml_once = PTHREAD_ONCE_INIT;

static void lb_xml_init(void)
{
    xmlInitParser();
}

const char *lb_markup_name(lb_markup m)
{
    switch (m) {
    case LB_MARKUP_NONE: return "none";
    case LB_MARKUP_CLASSIC: return "classic";
    case LB_MARKUP_REACT2025: return "react2025";
    case LB_MARKUP_REACT2026: return "react2026";
    }
    return "unknown";
}

void lb_page_free(lb_page *p)
{
    if (!p)
        return;
    film_list_free(&p->films);
    p->markup = LB_MARKUP_NONE;
    p->num_entries = -1;
    p->last_page = 0;
    p->has_next = 0;
    p->skipped = 0;
}

int lb_page_count(const lb_page *first)
{
    long n = 1;
    if (first->last_page > 0)
        n = first->last_page;
    else if (first->num_entries > 0 && first->films.len > 0) {
        long per = (long)first->films.len;
        n = (first->num_entries + per - 1) / per;
    }
    if (n < 1)
        n = 1;
    if (n > LB_PAGES_MAX)
        n = LB_PAGES_MAX;
    return (int)n;
}

/* ---- body sniffing ------------------------------------------------------ */

/* Bounded substring search (memmem is a GNU extension, not in C17/POSIX). */
static int lb_contains(const char *body, size_t len, const char *needle)
{
    size_t nlen = strlen(needle);
    const char *p = body, *end = body + len;
    while ((size_t)(end - p) >= nlen) {
        const char *hit = memchr(p, needle[0], (size_t)(end - p) - nlen + 1);
        if (!hit)
            return 0;
        if (memcmp(hit, needle, nlen) == 0)
            return 1;
        p = hit + 1;
    }
    return 0;
}

int lb_is_challenge(const char *body, size_t len)
{
    static const char *const markers[] = {
        "<title>Just a moment...</title>",
        "<title>Just a moment...",
        "_cf_chl_",                      /* window._cf_chl_opt, __cf_chl_tk ... */
        "/cdn-cgi/challenge-platform/h/", /* the challenge orchestrator */
        "<title>Attention Required! | Cloudflare</title>",
    };
    if (!body || len == 0)
        return 0;
    for (size_t i = 0; i < sizeof markers / sizeof markers[0]; i++)
        if (lb_contains(body, len, markers[i]))
            return 1;
    return 0;
}

/* ---- small DOM helpers ---------------------------------------------------- */

static int lb_is_elem(const xmlNode *n, const char *name)
{
    return n && n->type == XML_ELEMENT_NODE && n->name &&
           strcmp((const char *)n->name, name) == 0;
}

/* 1 when the class attribute of n holds the whitespace-separated token. */
static int lb_has_class(xmlNode *n, const char *token)
{
    xmlChar *cls = xmlGetProp(n, (const xmlChar *)"class");
    int found = 0;
    size_t tlen = strlen(token);
    if (cls) {
        const char *p = (const char *)cls;
        while (*p && !found) {
            while (*p && isspace((unsigned char)*p))
                p++;
            const char *start = p;
            while (*p && !isspace((unsigned char)*p))
                p++;
            if ((size_t)(p - start) == tlen && memcmp(start, token, tlen) == 0)
                found = 1;
        }
        xmlFree(cls);
    }
    return found;
}

static int lb_is_grid_list(xmlNode *ul)
{
    return lb_has_class(ul, "poster-list") || lb_has_class(ul, "js-list-entries") ||
           lb_has_class(ul, "grid");
}

/* The main grid: the nearest <ul> around the poster is a grid list, or there
 * is no <ul> at all (a bare fragment). Anything else is a side list. */
static int lb_in_main_grid(xmlNode *poster)
{
    for (xmlNode *a = poster->parent; a && a->type == XML_ELEMENT_NODE; a = a->parent)
        if (lb_is_elem(a, "ul"))
            return lb_is_grid_list(a);
    return 1;
}

static int lb_has_element_child(const xmlNode *n)
{
    for (const xmlNode *c = n->children; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE)
            return 1;
    return 0;
}

/* First element called name below n, in document order. Iterative: hostile
 * pages may nest deeply and workers run on small stacks. */
static xmlNode *lb_find_descendant(xmlNode *root, const char *name)
{
    xmlNode *n = root->children;
    while (n) {
        if (n->type == XML_ELEMENT_NODE) {
            if (lb_is_elem(n, name))
                return n;
            if (n->children) {
                n = n->children;
                continue;
            }
        }
        while (n != root && !n->next)
            n = n->parent;
        if (n == root)
            break;
        n = n->next;
    }
    return NULL;
}

static xmlXPathObject *lb_xpath(xmlXPathContext *ctx, const char *expr)
{
    xmlXPathObject *o = xmlXPathEvalExpression((const xmlChar *)expr, ctx);
    if (o && (o->type != XPATH_NODESET || !o->nodesetval)) {
        xmlXPathFreeObject(o);
        return NULL;
    }
    return o;
}

static int lb_nodes(const xmlXPathObject *o)
{
    return o && o->nodesetval ? o->nodesetval->nodeNr : 0;
}

/* ---- numbers -------------------------------------------------------------- */

/* Positive decimal integer that is the whole string (surrounding ASCII space
 * allowed) and at most max; -1 otherwise. */
static long long lb_parse_uint(const char *s, long long max)
{
    while (isspace((unsigned char)*s))
        s++;
    if (!isdigit((unsigned char)*s))
        return -1;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    while (end && isspace((unsigned char)*end))
        end++;
    if (!end || *end || v < 0 || v > max)
        return -1;
    return v;
}

/*
 * Leading count of a text like "384 films" / "1,234&nbsp;films": digits,
 * optionally grouped by ',' or '.' in threes. -1 when the text does not
 * start with a number or the number is out of range.
 */
static long lb_parse_count(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (isspace(*p) || (p[0] == 0xC2 && p[1] == 0xA0))
        p += (*p == 0xC2) ? 2 : 1;
    if (!isdigit(*p))
        return -1;
    long v = 0;
    for (;;) {
        if (isdigit(*p)) {
            v = v * 10 + (*p - '0');
            p++;
        } else if ((*p == ',' || *p == '.') && isdigit(p[1]) && isdigit(p[2]) &&
                   isdigit(p[3]) && !isdigit(p[4])) {
            p++;
        } else {
            break;
        }
        if (v > LB_NUM_ENTRIES_MAX)
            return -1;
    }
    return v;
}

/* "film:51608" in the JSON of data-postered-identifier, parsed by jansson. */
static long long lb_uid_from_json(const char *text)
{
    long long id = 0;
    if (strlen(text) > LB_JSON_MAX)
        return 0;
    json_error_t jerr;
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return 0;
    const char *uid = json_string_value(json_object_get(root, "uid"));
    if (uid && strncmp(uid, "film:", 5) == 0) {
        long long v = lb_parse_uint(uid + 5, LLONG_MAX);
        if (v > 0)
            id = v;
    }
    json_decref(root);
    return id;
}

/* ---- posters ------------------------------------------------------------- */

typedef struct lb_poster {
    lb_markup kind;     /* CLASSIC, or REACT2025 when it has data-film-id, else REACT2026 */
    xmlChar *slug;
    xmlChar *film_id;
    xmlChar *postered;  /* data-postered-identifier JSON */
    xmlChar *name;      /* data-item-full-display-name, data-item-name, data-film-name */
    xmlChar *name2;     /* the other React name, tried when the first has no year */
    xmlChar *alt;       /* img alt, read only when there is no name (classic) */
    xmlChar *img_src;   /* img src: the poster image once the page's script set it */
} lb_poster;

static void lb_poster_free(lb_poster *p)
{
    xmlFree(p->slug);
    xmlFree(p->film_id);
    xmlFree(p->postered);
    xmlFree(p->name);
    xmlFree(p->name2);
    xmlFree(p->alt);
    xmlFree(p->img_src);
    memset(p, 0, sizeof *p);
}

static xmlChar *lb_prop(xmlNode *n, const char *name)
{
    return xmlGetProp(n, (const xmlChar *)name);
}

/* Reads a candidate node; kind stays LB_MARKUP_NONE when it is no poster. */
static void lb_poster_read(xmlNode *n, lb_poster *p)
{
    memset(p, 0, sizeof *p);
    xmlChar *component = lb_prop(n, "data-component-class");
    if (component) {
        const char *c = (const char *)component;
        size_t len = strlen(c);
        static const char suffix[] = "LazyPoster";
        size_t slen = sizeof suffix - 1;
        int lazy = len >= slen && strcmp(c + len - slen, suffix) == 0 &&
                   (len == slen || c[len - slen - 1] == '.');
        xmlFree(component);
        if (!lazy)
            return;
        p->slug = lb_prop(n, "data-item-slug");
        p->film_id = lb_prop(n, "data-film-id");
        p->name = lb_prop(n, "data-item-full-display-name");
        p->name2 = lb_prop(n, "data-item-name");
        if (!p->name) {
            p->name = p->name2;
            p->name2 = NULL;
        }
        p->kind = p->film_id ? LB_MARKUP_REACT2025 : LB_MARKUP_REACT2026;
    } else {
        p->slug = lb_prop(n, "data-film-slug");
        if (!p->slug)
            return;
        p->film_id = lb_prop(n, "data-film-id");
        p->name = lb_prop(n, "data-film-name");
        p->kind = LB_MARKUP_CLASSIC;
    }
    p->postered = lb_prop(n, "data-postered-identifier");
    xmlNode *img = lb_find_descendant(n, "img");
    if (img) {
        if (!p->name)
            p->alt = lb_prop(img, "alt");
        p->img_src = lb_prop(img, "src");
    }
}

/* The poster path of an image URL on Letterboxd's image host
 * ("https://a.ltrbxd.com/resized/film-poster/...jpg?v=..."), or NULL for
 * anything else: the placeholder ("empty-poster" under /static/), another
 * path, a damaged value. Only the path is kept: the server joins it to its
 * own configured image host, so a page cannot make it fetch elsewhere. */
static char *lb_poster_path(const char *src)
{
    static const char resized[] = "/resized/";
    const char *path = src;
    if (strncmp(src, "https://", 8) == 0 || strncmp(src, "http://", 7) == 0) {
        path = strchr(src + (src[4] == 's' ? 8 : 7), '/');
        if (!path)
            return NULL;
    }
    if (strncmp(path, resized, sizeof resized - 1) != 0)
        return NULL;
    path += sizeof resized - 1;
    return film_poster_path_ok(path) ? fp_strdup(path) : NULL;
}

/* Slug as Letterboxd writes it ("fail-safe"); old pages used "/film/fail-safe/". */
static char *lb_clean_slug(const char *raw)
{
    const char *s = raw;
    size_t len = strlen(s);
    if (len > 6 && strncmp(s, "/film/", 6) == 0) {
        s += 6;
        len -= 6;
        if (len && s[len - 1] == '/')
            len--;
    }
    if (len == 0 || len > LB_SLUG_MAX)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return NULL;
    }
    return fp_strndup(s, len);
}

/* Trimmed copy of a title, or NULL when it is empty or damaged. */
static char *lb_clean_title(const char *raw)
{
    const char *s = raw;
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    size_t len = strlen(s);
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\n' ||
                   s[len - 1] == '\r'))
        len--;
    /* Alt texts of newer pages say "Poster for Title (Year)". */
    static const char prefix[] = "Poster for ";
    if (len > sizeof prefix - 1 && strncmp(s, prefix, sizeof prefix - 1) == 0) {
        s += sizeof prefix - 1;
        len -= sizeof prefix - 1;
    }
    if (len == 0 || len > LB_TITLE_MAX)
        return NULL;
    /* A cut attribute swallows the following lines of markup. */
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7F)
            return NULL;
    return fp_strndup(s, len);
}

/* Fills f from p; 0 when the poster is damaged and must be dropped. */
static int lb_poster_to_film(const lb_poster *p, xmlNode *n, film *f)
{
    char *slug = NULL, *title = NULL, *clean = NULL;
    int year = 0, ok = 0;
    if (!lb_has_element_child(n)) /* start tag cut off: attributes may be partial */
        goto out;
    if (!p->slug || !(slug = lb_clean_slug((const char *)p->slug)))
        goto out;
    const xmlChar *raw = p->name ? p->name : p->alt;
    if (!raw || !(clean = lb_clean_title((const char *)raw)))
        goto out;
    film_split_display_name(clean, &title, &year);
    if (year == 0 && p->name2) {
        /* Either React name may be the one carrying the year. */
        char *clean2 = lb_clean_title((const char *)p->name2);
        if (clean2) {
            char *title2 = NULL;
            int year2 = 0;
            film_split_display_name(clean2, &title2, &year2);
            if (year2) {
                fp_free(title);
                title = title2;
                title2 = NULL;
                year = year2;
            }
            fp_free(title2);
            fp_free(clean2);
        }
    }
    if (title[0] == '\0')
        goto out;
    long long id = p->film_id ? lb_parse_uint((const char *)p->film_id, LLONG_MAX) : -1;
    if (id <= 0 && p->postered)
        id = lb_uid_from_json((const char *)p->postered);
    f->lb_id = id > 0 ? (int64_t)id : 0;
    f->poster = p->img_src ? lb_poster_path((const char *)p->img_src) : NULL;
    f->lb_slug = slug;
    f->title = title;
    f->year = year;
    slug = title = NULL;
    ok = 1;
out:
    fp_free(slug);
    fp_free(title);
    fp_free(clean);
    return ok;
}

/* ---- page-level facts ---------------------------------------------------- */

static long lb_read_num_entries(xmlXPathContext *ctx)
{
    long n = -1;
    xmlXPathObject *o = lb_xpath(ctx, lb_xp_num_entries);
    for (int i = 0; n < 0 && i < lb_nodes(o); i++) {
        xmlChar *v = lb_prop(o->nodesetval->nodeTab[i], "data-num-entries");
        if (v) {
            long long x = lb_parse_uint((const char *)v, LB_NUM_ENTRIES_MAX);
            if (x < 0)
                x = lb_parse_count((const char *)v); /* "1,234" */
            n = (long)x;
            xmlFree(v);
        }
    }
    xmlXPathFreeObject(o);
    if (n >= 0)
        return n;
    o = lb_xpath(ctx, lb_xp_count);
    for (int i = 0; n < 0 && i < lb_nodes(o); i++) {
        xmlChar *text = xmlNodeGetContent(o->nodesetval->nodeTab[i]);
        if (text) {
            n = lb_parse_count((const char *)text);
            xmlFree(text);
        }
    }
    xmlXPathFreeObject(o);
    return n;
}

/* Highest page number in the pagination: the numbered items' texts, and the
 * ".../page/N/" of their links (relative or absolute). "…" items are skipped. */
static int lb_read_last_page(xmlXPathContext *ctx)
{
    long long last = 0;
    xmlXPathObject *o = lb_xpath(ctx, lb_xp_pages);
    for (int i = 0; i < lb_nodes(o); i++) {
        xmlNode *li = o->nodesetval->nodeTab[i];
        xmlChar *text = xmlNodeGetContent(li);
        if (text) {
            long long v = lb_parse_uint((const char *)text, LB_PAGES_MAX);
            if (v > last)
                last = v;
            xmlFree(text);
        }
        xmlNode *a = lb_find_descendant(li, "a");
        xmlChar *href = a ? lb_prop(a, "href") : NULL;
        const char *pg = href ? strstr((const char *)href, "/page/") : NULL;
        if (pg) {
            char digits[16];
            size_t k = 0;
            for (pg += 6; k + 1 < sizeof digits && isdigit((unsigned char)pg[k]); k++)
                digits[k] = pg[k];
            digits[k] = '\0';
            long long v = lb_parse_uint(digits, LB_PAGES_MAX);
            if (v > last && (pg[k] == '/' || pg[k] == '\0'))
                last = v;
        }
        xmlFree(href);
    }
    xmlXPathFreeObject(o);
    return (int)last;
}

/* Scaffolding of a grid page: 1 when present and every grid is empty, 0 when
 * absent, -1 when a grid holds items (which then were not recognised). */
static int lb_empty_scaffolding(xmlXPathContext *ctx)
{
    int found = 0;
    xmlXPathObject *o = lb_xpath(ctx, lb_xp_grids);
    for (int i = 0; i < lb_nodes(o); i++) {
        xmlNode *g = o->nodesetval->nodeTab[i];
        found = 1;
        if (lb_is_elem(g, "ul") ? lb_has_element_child(g) : lb_find_descendant(g, "li") != NULL) {
            found = -1;
            break;
        }
    }
    xmlXPathFreeObject(o);
    if (found)
        return found;
    o = lb_xpath(ctx, lb_xp_watchlist);
    found = lb_nodes(o) > 0;
    xmlXPathFreeObject(o);
    if (found)
        return 1;
    o = lb_xpath(ctx, lb_xp_num_entries);
    found = lb_nodes(o) > 0;
    xmlXPathFreeObject(o);
    return found;
}

fp_err lb_parse_page(const char *html, size_t len, lb_page *out)
{
    fp_err rc = FP_FORMAT;
    htmlDocPtr doc = NULL;
    xmlXPathContext *ctx = NULL;
    xmlXPathObject *posters = NULL, *next = NULL;
    size_t candidates = 0;

    memset(out, 0, sizeof *out);
    film_list_init(&out->films);
    out->markup = LB_MARKUP_NONE;
    out->num_entries = -1;
    if (!html || len == 0)
        goto out;
    if (len > INT_MAX) {
        rc = FP_TOO_LARGE;
        goto out;
    }
    pthread_once(&lb_xml_once, lb_xml_init);
    doc = htmlReadMemory(html, (int)len, NULL, "UTF-8",
                         HTML_PARSE_RECOVER | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING |
                             HTML_PARSE_NONET | HTML_PARSE_COMPACT);
    if (!doc) {
        if (lb_is_challenge(html, len))
            rc = FP_BLOCKED;
        goto out;
    }
    ctx = xmlXPathNewContext(doc);
    if (!ctx) {
        rc = FP_NOMEM;
        goto out;
    }

    posters = lb_xpath(ctx, lb_xp_posters);
    for (int i = 0; i < lb_nodes(posters); i++) {
        xmlNode *n = posters->nodesetval->nodeTab[i];
        lb_poster p;
        lb_poster_read(n, &p);
        if (p.kind != LB_MARKUP_NONE && lb_in_main_grid(n)) {
            candidates++;
            film f = {0};
            if (lb_poster_to_film(&p, n, &f)) {
                *film_list_push(&out->films) = f;
                if (out->markup == LB_MARKUP_NONE || p.kind == LB_MARKUP_REACT2025)
                    out->markup = p.kind; /* one poster with data-film-id makes it 2025 */
            } else {
                out->skipped++;
            }
        }
        lb_poster_free(&p);
    }

    if (candidates == 0) {
        if (lb_is_challenge(html, len)) {
            rc = FP_BLOCKED;
            goto out;
        }
        if (lb_empty_scaffolding(ctx) != 1)
            goto out; /* FP_FORMAT: nothing we know, or a grid of unknown items */
    } else if (out->films.len == 0) {
        goto out; /* FP_FORMAT: posters there, none readable */
    }
    out->num_entries = lb_read_num_entries(ctx);
    out->last_page = lb_read_last_page(ctx);
    next = lb_xpath(ctx, lb_xp_next);
    out->has_next = lb_nodes(next) > 0;
    rc = FP_OK;
out:
    if (rc != FP_OK)
        lb_page_free(out);
    xmlXPathFreeObject(next);
    xmlXPathFreeObject(posters);
    xmlXPathFreeContext(ctx);
    xmlFreeDoc(doc);
    return rc;
}

/*
 * film.c - film records and the title normalisation that lets a Letterboxd
 * page, a Letterboxd export and other sources agree on "the same film".
 */
#include "film.h"

#include <libxml/xmlstring.h>
#include <string.h>

#include "core/buf.h"
#include "core/mem.h"

void film_clear(film *f)
{
    fp_free(f->lb_slug);
    fp_free(f->lb_uri);
    fp_free(f->imdb_id);
    fp_free(f->title);
    fp_free(f->poster);
    memset(f, 0, sizeof *f);
}

void film_copy(film *dst, const film *src)
{
    *dst = *src;
    dst->lb_slug = fp_strdup(src->lb_slug);
    dst->lb_uri = fp_strdup(src->lb_uri);
    dst->imdb_id = fp_strdup(src->imdb_id);
    dst->title = fp_strdup(src->title);
    dst->poster = fp_strdup(src->poster);
}

static int film__ends_with(const char *s, size_t len, const char *suffix)
{
    size_t n = strlen(suffix);
    return len > n && strncmp(s + len - n, suffix, n) == 0;
}

int film_poster_path_ok(const char *path)
{
    if (!path)
        return 0;
    const char *q = strchr(path, '?');
    size_t len = q ? (size_t)(q - path) : strlen(path);
    if (len == 0 || len > 200 || path[0] == '/' || strstr(path, ".."))
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = path[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '/' || c == '.' || c == '_' || c == '-'))
            return 0;
    }
    if (!film__ends_with(path, len, ".jpg") && !film__ends_with(path, len, ".jpeg") &&
        !film__ends_with(path, len, ".png") && !film__ends_with(path, len, ".webp"))
        return 0;
    if (!q)
        return 1;
    if (strncmp(q, "?v=", 3) != 0)
        return 0;
    size_t vlen = strlen(q + 3);
    if (vlen == 0 || vlen > 32)
        return 0;
    for (const char *v = q + 3; *v; v++)
        if (!((*v >= 'a' && *v <= 'z') || (*v >= 'A' && *v <= 'Z') || (*v >= '0' && *v <= '9')))
            return 0;
    return 1;
}

void film_list_init(film_list *l)
{
    l->items = NULL;
    l->len = l->cap = 0;
}

film *film_list_push(film_list *l)
{
    if (l->len == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 32;
        l->items = fp_reallocarray(l->items, l->cap, sizeof *l->items);
    }
    film *f = &l->items[l->len++];
    memset(f, 0, sizeof *f);
    return f;
}

void film_list_free(film_list *l)
{
    for (size_t i = 0; i < l->len; i++)
        film_clear(&l->items[i]);
    FP_FREE(l->items);
    l->len = l->cap = 0;
}

void film_split_display_name(const char *name, char **title, int *year)
{
    size_t len = strlen(name);
    *year = 0;
    /* "Title (YYYY)": a space, '(', four digits, ')' at the very end. */
    if (len >= 7 && name[len - 1] == ')' && name[len - 6] == '(' && name[len - 7] == ' ') {
        int y = 0, ok = 1;
        for (size_t i = len - 5; i < len - 1; i++) {
            if (name[i] < '0' || name[i] > '9') {
                ok = 0;
                break;
            }
            y = y * 10 + (name[i] - '0');
        }
        if (ok && y >= 1870 && y <= 2200) {
            *year = y;
            *title = fp_strndup(name, len - 7);
            return;
        }
    }
    *title = fp_strdup(name);
}

/* Base letter for U+00C0..U+017F (Latin-1 Supplement and Latin Extended-A). */
static const char fp_latin_fold[] =
    /* C0 */ "aaaaaaaceeeeiiii" "dnooooo*ouuuuyts"
    /* E0 */ "aaaaaaaceeeeiiii" "dnooooo/ouuuuyty"
    /* 100 */ "aaaaaaccccccccdd" "ddeeeeeeeeeegggg"
    /* 120 */ "gggghhhhiiiiiiii" "iiiijjkkklllllll"
    /* 140 */ "lllnnnnnnnnnoooo" "oooorrrrrrssssss"
    /* 160 */ "ssttttttuuuuuuuu" "uuuuwwyyyzzzzzzs";
_Static_assert(sizeof fp_latin_fold == 0x180 - 0xC0 + 1, "one letter per code point");

static void fp_put_utf8(fp_buf *b, int c)
{
    unsigned char out[4];
    size_t n;
    if (c < 0x80) {
        out[0] = (unsigned char)c;
        n = 1;
    } else if (c < 0x800) {
        out[0] = (unsigned char)(0xC0 | (c >> 6));
        out[1] = (unsigned char)(0x80 | (c & 0x3F));
        n = 2;
    } else if (c < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (c >> 12));
        out[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (c & 0x3F));
        n = 3;
    } else {
        out[0] = (unsigned char)(0xF0 | (c >> 18));
        out[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3F));
        out[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
        out[3] = (unsigned char)(0x80 | (c & 0x3F));
        n = 4;
    }
    fp_err rc = fp_buf_append(b, out, n); /* unlimited buffer: cannot fail */
    (void)rc;
}

char *film_normalize_title(const char *title)
{
    fp_buf b;
    fp_buf_init(&b, (size_t)-1);
    int pending_space = 0;
    const unsigned char *p = (const unsigned char *)(title ? title : "");
    while (*p) {
        int len = 4;
        int c = xmlGetUTF8Char(p, &len);
        if (c < 0 || len <= 0) { /* invalid UTF-8 byte: skip it */
            p++;
            continue;
        }
        p += len;
        int word = 0;
        if (c < 0x80) {
            if (c >= 'A' && c <= 'Z')
                c += 'a' - 'A';
            if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
                word = 1;
            else if (c == '&') {
                if (b.len)
                    pending_space = 1;
                if (pending_space)
                    fp_put_utf8(&b, ' ');
                fp_put_utf8(&b, 'a');
                fp_put_utf8(&b, 'n');
                fp_put_utf8(&b, 'd');
                pending_space = 1;
                continue;
            } else if (c == '\'')
                continue; /* "Wasn't" and "Wasnt" are the same word */
        } else if (c >= 0xC0 && c <= 0x17F) {
            char base = fp_latin_fold[c - 0xC0];
            if (base == '*' || base == '/')
                continue;
            c = base;
            word = 1;
        } else if (c == 0x2019 || c == 0x2018 || c == 0x02BC) {
            continue; /* typographic apostrophes */
        } else if (c >= 0x2000 && c <= 0x206F) {
            word = 0; /* general punctuation: dashes, ellipsis, marks */
        } else {
            if (c >= 0x0410 && c <= 0x042F)
                c += 0x20; /* Cyrillic capitals */
            else if (c >= 0x0400 && c <= 0x040F)
                c += 0x50;
            if (c == 0x0451)
                c = 0x0435; /* ё reads as е */
            word = 1;
        }
        if (!word) {
            if (b.len)
                pending_space = 1;
            continue;
        }
        if (pending_space) {
            fp_put_utf8(&b, ' ');
            pending_space = 0;
        }
        fp_put_utf8(&b, c);
    }
    return fp_buf_steal(&b, NULL);
}

char *film_match_key(const char *title, int year)
{
    char *norm = film_normalize_title(title);
    char *key = year > 0 ? fp_printf("%s|%d", norm, year) : fp_printf("%s|", norm);
    fp_free(norm);
    return key;
}

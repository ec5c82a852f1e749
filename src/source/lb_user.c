/*
 * lb_user.c - what a person typed into "Letterboxd profile" -> a username.
 *
 * Contract (lb_parse.h, lb_username_parse): accept a bare name, "@name", or
 * a letterboxd.com profile / watchlist URL, and nothing else. URLs go through
 * libcurl's URL parser (the same parser the fetcher uses) so that user info,
 * ports and odd hosts are judged the way the fetch would see them; only the
 * path segments are inspected by hand, against an allow-list. The username
 * is then used to build URLs and storage keys, so anything that is not
 * plain [a-z0-9_] is refused rather than repaired.
 */
#include "source/lb_parse.h"

#include <curl/curl.h>
#include <string.h>
#include <strings.h>

#include "core/mem.h"

/* Longest input considered at all (a URL with page number is far shorter). */
#define LB_INPUT_MAX 512
#define LB_SEGMENTS_MAX 8

/* First path segments that are site sections, not members. */
static const char *const lb_reserved[] = {
    "about", "account", "activity", "actor", "ajax", "api", "apps", "cast",
    "cdn-cgi", "contact", "create-account", "crew", "csi", "data", "director",
    "esi", "export", "film", "films", "gift-guide", "hq", "import", "invitations",
    "journal", "legal", "list", "lists", "members", "page", "patron", "people",
    "podcast", "popular", "pro", "producer", "reviewers", "reviews", "s",
    "search", "settings", "showdown", "sign-in", "sign-out", "static", "studio",
    "tag", "tags", "upcoming", "user", "users", "watchlist", "welcome",
    "writer", "year-in-review",
};

/* Second segments that are sections of a member's profile. */
static const char *const lb_profile_sections[] = {
    "activity", "diary", "films", "followers", "following", "likes", "list",
    "lists", "network", "reviews", "stats", "tags", "watchlist",
};

static int lb_in_table(const char *s, size_t len, const char *const *table, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(table[i]) == len && strncasecmp(s, table[i], len) == 0)
            return 1;
    return 0;
}

static int lb_is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_';
}

/* Copies a valid username of length len into out, lower-cased. */
static fp_err lb_take_name(const char *s, size_t len, char out[LB_USERNAME_MAX + 1])
{
    if (len == 0 || len > LB_USERNAME_MAX)
        return FP_BAD_USERNAME;
    for (size_t i = 0; i < len; i++)
        if (!lb_is_name_char(s[i]))
            return FP_BAD_USERNAME;
    if (lb_in_table(s, len, lb_reserved, sizeof lb_reserved / sizeof lb_reserved[0]))
        return FP_BAD_USERNAME;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        out[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    out[len] = '\0';
    return FP_OK;
}

/* The path of a profile URL: "/name", "/name/", "/name/section/...". */
static fp_err lb_take_path(const char *path, char out[LB_USERNAME_MAX + 1])
{
    const char *seg[LB_SEGMENTS_MAX];
    size_t seglen[LB_SEGMENTS_MAX];
    size_t n = 0;
    if (path[0] != '/')
        return FP_BAD_USERNAME;
    const char *p = path + 1;
    while (*p) {
        const char *start = p;
        while (*p && *p != '/')
            p++;
        size_t len = (size_t)(p - start);
        if (len == 0) {
            if (*p == '\0')
                break; /* the trailing slash */
            return FP_BAD_USERNAME; /* "//" */
        }
        if (n == LB_SEGMENTS_MAX)
            return FP_BAD_USERNAME;
        for (size_t i = 0; i < len; i++)
            if (!lb_is_name_char(start[i]) && start[i] != '-')
                return FP_BAD_USERNAME; /* ".", "..", "%2e", ... */
        seg[n] = start;
        seglen[n] = len;
        n++;
        if (*p == '/')
            p++;
    }
    if (n == 0)
        return FP_BAD_USERNAME;
    if (n >= 2 && !lb_in_table(seg[1], seglen[1], lb_profile_sections,
                               sizeof lb_profile_sections / sizeof lb_profile_sections[0]))
        return FP_BAD_USERNAME;
    return lb_take_name(seg[0], seglen[0], out);
}

static fp_err lb_take_url(const char *url, char out[LB_USERNAME_MAX + 1])
{
    fp_err rc = FP_BAD_USERNAME;
    char *scheme = NULL, *host = NULL, *path = NULL, *user = NULL, *port = NULL;
    CURLU *u = curl_url();
    if (!u) {
        rc = FP_NOMEM;
        goto out;
    }
    /* PATH_AS_IS keeps "/../" visible instead of silently resolving it. */
    if (curl_url_set(u, CURLUPART_URL, url, CURLU_DEFAULT_SCHEME | CURLU_PATH_AS_IS) != CURLUE_OK)
        goto out;
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcmp(scheme, "https") != 0 && strcmp(scheme, "http") != 0))
        goto out;
    if (curl_url_get(u, CURLUPART_USER, &user, 0) != CURLUE_NO_USER)
        goto out;
    if (curl_url_get(u, CURLUPART_PORT, &port, 0) != CURLUE_NO_PORT)
        goto out;
    if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        (strcasecmp(host, "letterboxd.com") != 0 && strcasecmp(host, "www.letterboxd.com") != 0))
        goto out;
    if (curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK)
        goto out;
    rc = lb_take_path(path, out);
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(path);
    curl_free(user);
    curl_free(port);
    curl_url_cleanup(u);
    return rc;
}

fp_err lb_username_parse(const char *input, char out[LB_USERNAME_MAX + 1])
{
    fp_err rc = FP_BAD_USERNAME;
    char *trimmed = NULL;
    out[0] = '\0';
    if (!input)
        goto out;
    size_t len = strnlen(input, LB_INPUT_MAX + 1);
    if (len > LB_INPUT_MAX)
        goto out;
    const char *s = input;
    while (len && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')) {
        s++;
        len--;
    }
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r' ||
                   s[len - 1] == '\n'))
        len--;
    if (len == 0)
        goto out;
    if (s[0] == '@') {
        rc = lb_take_name(s + 1, len - 1, out);
        goto out;
    }
    /* A bare name has no URL punctuation; anything with it must be a URL. */
    if (!memchr(s, '/', len) && !memchr(s, ':', len) && !memchr(s, '.', len)) {
        rc = lb_take_name(s, len, out);
        goto out;
    }
    trimmed = fp_strndup(s, len);
    rc = lb_take_url(trimmed, out);
out:
    if (rc != FP_OK)
        out[0] = '\0';
    fp_free(trimmed);
    return rc;
}

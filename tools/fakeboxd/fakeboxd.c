/*
 * fakeboxd - a fake Letterboxd for FilmPicker's integration tests and
 * benchmarks. A separate program: it does not link fpcore.
 *
 * It serves /USER/watchlist/ and /USER/watchlist/page/N/ (trailing slash
 * optional) in one of three markup generations (fb_render.h), with lists
 * drawn from a deterministic film universe (fb_catalog.h): the same flags
 * and username always give the same bytes. Username prefixes select failure
 * behaviours (see fb__usage()). /_fake/... endpoints let tests read the expected
 * data and the request counters (fb_stats.h).
 *
 * Binds 127.0.0.1 only. One thread per connection (libmicrohttpd), so
 * latency is a plain sleep; sleeps wake early when SIGTERM/SIGINT arrive, so
 * shutdown is prompt and clean (exit status 0).
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "fb_catalog.h"
#include "fb_render.h"
#include "fb_stats.h"
#include "fb_telegram.h"
#include "fb_util.h"

#define FB_SLEEP_MAX_MS 3600000L

typedef struct fb_config {
    int port;
    int any_address; /* --listen 0.0.0.0:PORT (in a container) */
    const char *port_file;
    fb_markup markup;
    long per_page;
    long latency_ms;
    long size;
    long common;
    long universe;
    long slow_ms;
    int gzip;
    int challenge;
    int posters;
} fb_config;

typedef struct fb_server {
    fb_config cfg;
    fb_catalog catalog;
    fb_stats *stats;
    fb_telegram *telegram;
    pthread_mutex_t stop_lock;
    pthread_cond_t stop_cond; /* CLOCK_MONOTONIC */
    int stopping;
} fb_server;

/* One response on its way out: status, body and the headers that vary. */
typedef struct fb_reply {
    unsigned status;
    fb_buf body;
    const char *content_type;
    int site;        /* a page of the fake site (not /_fake/): site headers, gzip */
    int challenge;   /* Cloudflare challenge headers */
    int retry_after; /* seconds; 0 = no header */
    int gzipped;     /* body is gzip-encoded */
    const char *allow;
} fb_reply;

static void fb__usage(FILE *to)
{
    fputs(
        "usage: fakeboxd [options]\n"
        "  --listen 127.0.0.1:PORT  address (default 127.0.0.1:0; port 0 picks a free port;\n"
        "                           0.0.0.0:PORT in a container)\n"
        "  --port-file FILE         write the chosen port there (atomically)\n"
        "  --markup classic|react2025|react2026   (default classic)\n"
        "  --per-page N             films per page (default 28)\n"
        "  --latency-ms N           sleep before every site response (default 0)\n"
        "  --size N                 films per user (default 100)\n"
        "  --common N               films 1..N are on every list (default 20)\n"
        "  --universe N             films that exist (default 20000)\n"
        "  --gzip                   gzip responses when the client accepts it\n"
        "  --posters                React posters show their image, served under /resized/\n"
        "                           (404 for films whose Letterboxd id is a multiple of 3)\n"
        "  --challenge              every site page answers the 403 Cloudflare challenge\n"
        "  --slow-ms N              delay of slow* users (default 30000)\n"
        "\n"
        "Usernames ([A-Za-z0-9_], case-insensitive): a suffix _nDIGITS sets the\n"
        "list size. Prefixes: notfound* 404; empty* 0 films; private* looks exactly\n"
        "like empty* (a private list shows a guest nothing); blocked* 403 challenge;\n"
        "down* 503; flaky* 503 the first time each page is asked for, then 200;\n"
        "ratelimited* 429 + Retry-After: 1 the first time, then 200; slow* waits\n"
        "--slow-ms; garbage* 200 in an unknown markup; xss* a normal list in which\n"
        "one film is titled <img src=x onerror=alert(1)>.\n"
        "\n"
        "Test endpoints: GET /_fake/films/USER (the user's films as JSON, in list\n"
        "order; [] for users whose pages show no posters), GET /_fake/stats,\n"
        "POST /_fake/reset (zeroes counters and flaky/ratelimited state, telegram).\n"
        "Telegram Bot API (the stack's alert test): POST /bot<TOKEN>/sendMessage with\n"
        "a JSON body; GET /_fake/telegram lists the messages received.\n",
        to);
}

/* Sleeps ms milliseconds, or less when the server is stopping. */
static void fb__sleep(fb_server *srv, long ms)
{
    struct timespec until;

    if (ms <= 0)
        return;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&srv->stop_lock);
    while (!srv->stopping) {
        if (pthread_cond_timedwait(&srv->stop_cond, &srv->stop_lock, &until) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&srv->stop_lock);
}

/*
 * Splits "/USER/watchlist[/]" and "/USER/watchlist/page/N[/]". Returns 1 and
 * fills user (cap bytes) and page when url is one of them.
 */
static int fb__parse_route(const char *url, char *user, size_t cap, long *page)
{
    char num[16];
    const char *p = url;

    if (*p != '/')
        return 0;
    const char *slash = strchr(p + 1, '/');
    if (!slash || slash == p + 1 || (size_t)(slash - (p + 1)) >= cap)
        return 0;
    memcpy(user, p + 1, (size_t)(slash - (p + 1)));
    user[slash - (p + 1)] = '\0';
    p = slash;
    if (strcmp(p, "/watchlist") == 0 || strcmp(p, "/watchlist/") == 0) {
        *page = 1;
        return 1;
    }
    if (strncmp(p, "/watchlist/page/", 16) != 0)
        return 0;
    p += 16;
    size_t n = strcspn(p, "/");
    if (n == 0 || n >= sizeof(num) || (p[n] == '/' && p[n + 1] != '\0'))
        return 0;
    memcpy(num, p, n);
    num[n] = '\0';
    if (num[0] == '0')
        return 0;
    return fb_parse_long(num, 1, FB_PAGE_MAX, page) == FB_OK;
}

/* Trims spaces and tabs off both ends of [*s, *s + *n). */
static void fb__trim(const char **s, size_t *n)
{
    while (*n > 0 && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
        (*n)--;
}

/* 1 when an Accept-Encoding value accepts gzip: a "gzip" or "x-gzip" coding
 * whose q parameter, if any, is not zero. */
static int fb__accepts_gzip(const char *ae)
{
    while (ae && *ae) {
        size_t len = strcspn(ae, ",");
        const char *name = ae;
        size_t nlen = strcspn(ae, ",;");
        const char *params = ae + nlen;
        size_t plen = len - nlen;
        fb__trim(&name, &nlen);
        int gzip = (nlen == 4 && strncasecmp(name, "gzip", 4) == 0) ||
                   (nlen == 6 && strncasecmp(name, "x-gzip", 6) == 0);
        if (gzip) {
            int zero = 0;
            /* params is ";q=0.000" or similar: q is zero when only 0s and a dot follow "q=". */
            for (size_t i = 0; i + 2 <= plen; i++) {
                if ((params[i] == 'q' || params[i] == 'Q') && params[i + 1] == '=') {
                    const char *v = params + i + 2;
                    size_t vlen = plen - i - 2;
                    fb__trim(&v, &vlen);
                    size_t zeros = 0;
                    while (zeros < vlen && (v[zeros] == '0' || v[zeros] == '.'))
                        zeros++;
                    zero = vlen > 0 && zeros == vlen;
                }
            }
            if (!zero)
                return 1;
        }
        ae += len;
        if (*ae == ',')
            ae++;
    }
    return 0;
}

/* Replaces the body with its gzip encoding. */
static fb_err fb__gzip(fb_buf *body)
{
    fb_err err = FB_OK;
    z_stream zs;
    unsigned char *outbuf = NULL;
    int inited = 0;

    memset(&zs, 0, sizeof(zs));
    if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        err = FB_COMPRESS;
        goto out;
    }
    inited = 1;
    uLong bound = deflateBound(&zs, (uLong)body->len);
    outbuf = fb_malloc(bound);
    zs.next_in = (Bytef *)(body->data ? body->data : "");
    zs.avail_in = (uInt)body->len;
    zs.next_out = outbuf;
    zs.avail_out = (uInt)bound;
    if (deflate(&zs, Z_FINISH) != Z_STREAM_END) {
        err = FB_COMPRESS;
        goto out;
    }
    fb_buf_free(body);
    fb_buf_init(body, FB_RENDER_LIMIT);
    err = fb_buf_append(body, outbuf, zs.total_out);
out:
    if (inited)
        deflateEnd(&zs);
    free(outbuf);
    return err;
}

static void fb__reply_text(fb_reply *r, unsigned status, const char *text)
{
    r->status = status;
    fb_buf_free(&r->body);
    if (fb_buf_puts(&r->body, text) != FB_OK)
        r->status = MHD_HTTP_INTERNAL_SERVER_ERROR;
}

static void fb__reply_page(fb_reply *r, unsigned status, fb_err rendered)
{
    r->status = status;
    if (rendered != FB_OK) {
        r->content_type = "text/plain; charset=utf-8";
        fb__reply_text(r, MHD_HTTP_INTERNAL_SERVER_ERROR, fb_err_name(rendered));
    }
}

/* The site proper: everything outside /_fake/. */
static void fb__site(fb_server *srv, const char *url, const char *method, fb_reply *r)
{
    const fb_config *cfg = &srv->cfg;
    char name[FB_USERNAME_MAX + 1];
    fb_user user;
    long page = 1;
    long *films = NULL;
    size_t nfilms = 0;

    r->site = 1;
    r->content_type = "text/html; charset=utf-8";
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        r->allow = "GET, HEAD";
        fb__reply_page(r, MHD_HTTP_METHOD_NOT_ALLOWED, fb_render_not_found(&r->body));
        goto out;
    }
    if (cfg->challenge) {
        r->challenge = 1;
        fb__reply_page(r, MHD_HTTP_FORBIDDEN, fb_render_challenge(url, &r->body));
        goto out;
    }
    if (strncmp(url, "/resized/", 9) == 0) {
        if (fb_render_poster(&srv->catalog, url, &r->body) == FB_OK) {
            r->status = MHD_HTTP_OK;
            r->content_type = "image/png";
        } else {
            fb__reply_page(r, MHD_HTTP_NOT_FOUND, fb_render_not_found(&r->body));
        }
        goto out;
    }
    if (!fb__parse_route(url, name, sizeof(name), &page) ||
        fb_user_parse(name, cfg->size, &user) != FB_OK) {
        fb__reply_page(r, MHD_HTTP_NOT_FOUND, fb_render_not_found(&r->body));
        goto out;
    }

    char *key = fb_printf("%s/%ld", user.key, page);
    int first = 0;
    if (user.behaviour == FB_USER_FLAKY || user.behaviour == FB_USER_RATELIMITED)
        first = fb_stats_first_time(srv->stats, user.behaviour == FB_USER_FLAKY ? "flaky" : "ratelimited", key);
    free(key);

    switch (user.behaviour) {
    case FB_USER_NOTFOUND:
        fb__reply_page(r, MHD_HTTP_NOT_FOUND, fb_render_not_found(&r->body));
        goto out;
    case FB_USER_BLOCKED:
        r->challenge = 1;
        fb__reply_page(r, MHD_HTTP_FORBIDDEN, fb_render_challenge(url, &r->body));
        goto out;
    case FB_USER_DOWN:
        fb__reply_page(r, MHD_HTTP_SERVICE_UNAVAILABLE, fb_render_unavailable(&r->body));
        goto out;
    case FB_USER_FLAKY:
        if (first) {
            fb__reply_page(r, MHD_HTTP_SERVICE_UNAVAILABLE, fb_render_unavailable(&r->body));
            goto out;
        }
        break;
    case FB_USER_RATELIMITED:
        if (first) {
            r->retry_after = 1;
            fb__reply_page(r, MHD_HTTP_TOO_MANY_REQUESTS, fb_render_rate_limited(&r->body));
            goto out;
        }
        break;
    case FB_USER_SLOW:
        fb__sleep(srv, cfg->slow_ms);
        break;
    default:
        break;
    }

    /* A garbage page still shows some of the films the user has, in its
     * unknown markup, so it can't pass for an empty list. */
    fb_user listed = user;
    if (user.behaviour == FB_USER_GARBAGE)
        listed.behaviour = FB_USER_NORMAL;
    fb_user_list(&srv->catalog, &listed, cfg->common, &films, &nfilms);
    fb_page_view view = {
        .catalog = &srv->catalog,
        .user = &user,
        .markup = cfg->markup,
        .films = films,
        .total = nfilms,
        .page = page,
        .per_page = cfg->per_page,
        .posters = cfg->posters,
    };
    if (user.behaviour == FB_USER_GARBAGE) {
        fb__reply_page(r, MHD_HTTP_OK, fb_render_garbage(&view, &r->body));
        goto out;
    }
    fb__reply_page(r, MHD_HTTP_OK, fb_render_watchlist(&view, &r->body));
out:
    free(films);
}

/* /_fake/...: test and operations endpoints, JSON, never counted or delayed. */
static void fb__fake(fb_server *srv, const char *url, const char *method, fb_reply *r)
{
    char *json = NULL;
    long *films = NULL;
    size_t nfilms = 0;
    fb_user user;

    r->content_type = "application/json";
    if (strncmp(url, "/_fake/films/", 13) == 0) {
        if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
            r->allow = "GET, HEAD";
            fb__reply_text(r, MHD_HTTP_METHOD_NOT_ALLOWED, "{\"error\":\"method not allowed\"}");
            goto out;
        }
        const char *name = url + 13;
        char buf[FB_USERNAME_MAX + 2];
        size_t n = strlen(name);
        if (n > 0 && n <= FB_USERNAME_MAX + 1 && name[n - 1] == '/') {
            memcpy(buf, name, n - 1);
            buf[n - 1] = '\0';
            name = buf;
        }
        if (fb_user_parse(name, srv->cfg.size, &user) != FB_OK) {
            fb__reply_text(r, MHD_HTTP_NOT_FOUND, "{\"error\":\"not a valid username\"}");
            goto out;
        }
        fb_user_list(&srv->catalog, &user, srv->cfg.common, &films, &nfilms);
        if (fb_render_films_json(&srv->catalog, films, nfilms, &json) != FB_OK) {
            fb__reply_text(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "{\"error\":\"internal\"}");
            goto out;
        }
        fb__reply_text(r, MHD_HTTP_OK, json);
    } else if (strcmp(url, "/_fake/stats") == 0) {
        if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
            r->allow = "GET, HEAD";
            fb__reply_text(r, MHD_HTTP_METHOD_NOT_ALLOWED, "{\"error\":\"method not allowed\"}");
            goto out;
        }
        if (fb_stats_json(srv->stats, &json) != FB_OK) {
            fb__reply_text(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "{\"error\":\"internal\"}");
            goto out;
        }
        fb__reply_text(r, MHD_HTTP_OK, json);
    } else if (strcmp(url, "/_fake/reset") == 0) {
        if (strcmp(method, "POST") != 0) {
            r->allow = "POST";
            fb__reply_text(r, MHD_HTTP_METHOD_NOT_ALLOWED, "{\"error\":\"method not allowed\"}");
            goto out;
        }
        fb_stats_reset(srv->stats);
        fb_telegram_reset(srv->telegram);
        fb__reply_text(r, MHD_HTTP_OK, "{\"ok\":true}");
    } else if (strcmp(url, "/_fake/telegram") == 0) {
        if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
            r->allow = "GET, HEAD";
            fb__reply_text(r, MHD_HTTP_METHOD_NOT_ALLOWED, "{\"error\":\"method not allowed\"}");
            goto out;
        }
        json = fb_telegram_json(srv->telegram);
        fb__reply_text(r, MHD_HTTP_OK, json);
    } else {
        fb__reply_text(r, MHD_HTTP_NOT_FOUND, "{\"error\":\"no such endpoint\"}");
    }
out:
    free(json);
    free(films);
}

static enum MHD_Result fb__send(struct MHD_Connection *conn, fb_reply *r)
{
    size_t len = 0;
    char *data = fb_buf_steal(&r->body, &len);
    struct MHD_Response *resp = MHD_create_response_from_buffer_with_free_callback(len, data, &free);
    enum MHD_Result ok = MHD_NO;

    if (!resp) {
        free(data);
        goto out;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
    if (r->site) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_SERVER, "cloudflare");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY, "Accept-Encoding");
        MHD_add_response_header(resp, "X-Frame-Options", "SAMEORIGIN");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
                                r->challenge ? "private, max-age=0, no-store, no-cache, must-revalidate, "
                                               "post-check=0, pre-check=0"
                                             : "no-cache");
    } else {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    }
    if (r->challenge) {
        MHD_add_response_header(resp, "cf-mitigated", "challenge");
        MHD_add_response_header(resp, "Cross-Origin-Embedder-Policy", "require-corp");
    }
    if (r->retry_after > 0) {
        char secs[16];
        snprintf(secs, sizeof(secs), "%d", r->retry_after);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, secs);
    }
    if (r->allow)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
    if (r->gzipped)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
    ok = MHD_queue_response(conn, r->status, resp);
    MHD_destroy_response(resp);
out:
    return ok;
}

/* Per request: whether its body is kept (a Bot API call) and the body. */
typedef struct fb_conn {
    int telegram;
    int too_large;
    fb_buf body;
} fb_conn;

static void fb__completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                          enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    fb_conn *c = *con_cls;
    if (c) {
        fb_buf_free(&c->body);
        free(c);
        *con_cls = NULL;
    }
}

static enum MHD_Result fb__handle(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    fb_server *srv = cls;
    fb_reply r;

    (void)version;
    if (*con_cls == NULL) {
        /* Headers only so far: answer once any body has gone by. Only a
         * Bot API call keeps its body (fb_telegram.h); others are ignored. */
        fb_conn *c = fb_malloc(sizeof *c);
        c->telegram = strncmp(url, "/bot", 4) == 0 && strcmp(method, "POST") == 0;
        c->too_large = 0;
        fb_buf_init(&c->body, FB_TELEGRAM_MAX_BODY);
        *con_cls = c;
        return MHD_YES;
    }
    fb_conn *c = *con_cls;
    if (*upload_data_size != 0) {
        if (c->telegram && fb_buf_append(&c->body, upload_data, *upload_data_size) != FB_OK)
            c->too_large = 1;
        *upload_data_size = 0;
        return MHD_YES;
    }

    memset(&r, 0, sizeof(r));
    fb_buf_init(&r.body, FB_RENDER_LIMIT);
    if (c->telegram) {
        char *json = NULL;
        unsigned status = c->too_large ? 413
                                       : fb_telegram_call(srv->telegram, url, c->body.data,
                                                          c->body.len, &json);
        r.content_type = "application/json";
        fb__reply_text(&r, status, json ? json : "{\"ok\":false,\"error_code\":413}");
        free(json);
    } else if (strncmp(url, "/_fake/", 7) == 0) {
        fb__fake(srv, url, method, &r);
    } else {
        const char *host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
        if (!host)
            host = "";
        fb_stats_begin(srv->stats, host, url);
        fb__sleep(srv, srv->cfg.latency_ms);
        fb__site(srv, url, method, &r);
        if (srv->cfg.gzip) {
            const char *ae = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                         MHD_HTTP_HEADER_ACCEPT_ENCODING);
            if (fb__accepts_gzip(ae)) {
                if (fb__gzip(&r.body) == FB_OK)
                    r.gzipped = 1;
                else
                    fb__reply_text(&r, MHD_HTTP_INTERNAL_SERVER_ERROR, "compression failed");
            }
        }
        fb_stats_end(srv->stats, host);
    }
    enum MHD_Result ok = fb__send(conn, &r);
    fb_buf_free(&r.body);
    return ok;
}

static fb_err fb__parse_listen(const char *s, int *port, int *any)
{
    long v = 0;
    const char *colon = strrchr(s, ':');

    if (!colon)
        return FB_INVALID;
    if ((size_t)(colon - s) == strlen("127.0.0.1") && strncmp(s, "127.0.0.1", 9) == 0)
        *any = 0;
    else if ((size_t)(colon - s) == strlen("0.0.0.0") && strncmp(s, "0.0.0.0", 7) == 0)
        *any = 1; /* in a container: reachable on its network */
    else
        return FB_INVALID;
    if (fb_parse_long(colon + 1, 0, 65535, &v) != FB_OK)
        return FB_INVALID;
    *port = (int)v;
    return FB_OK;
}

/* Writes "PORT\n" to path through a temporary file and rename(2), so a
 * reader never sees a half-written file. */
static fb_err fb__write_port_file(const char *path, int port)
{
    fb_err err = FB_OK;
    char *tmp = fb_printf("%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");

    if (!f) {
        err = FB_IO;
        goto out;
    }
    int wrote = fprintf(f, "%d\n", port);
    if (fclose(f) != 0 || wrote < 0) {
        err = FB_IO;
        unlink(tmp);
        goto out;
    }
    if (rename(tmp, path) != 0) {
        err = FB_IO;
        unlink(tmp);
    }
out:
    free(tmp);
    return err;
}

static fb_err fb__parse_args(int argc, char **argv, fb_config *cfg, int *help)
{
    enum { O_LISTEN = 1, O_PORT_FILE, O_MARKUP, O_PER_PAGE, O_LATENCY, O_SIZE, O_COMMON,
           O_UNIVERSE, O_GZIP, O_CHALLENGE, O_SLOW, O_POSTERS, O_HELP };
    static const struct option opts[] = {
        {"listen", required_argument, NULL, O_LISTEN},
        {"port-file", required_argument, NULL, O_PORT_FILE},
        {"markup", required_argument, NULL, O_MARKUP},
        {"per-page", required_argument, NULL, O_PER_PAGE},
        {"latency-ms", required_argument, NULL, O_LATENCY},
        {"size", required_argument, NULL, O_SIZE},
        {"common", required_argument, NULL, O_COMMON},
        {"universe", required_argument, NULL, O_UNIVERSE},
        {"gzip", no_argument, NULL, O_GZIP},
        {"challenge", no_argument, NULL, O_CHALLENGE},
        {"slow-ms", required_argument, NULL, O_SLOW},
        {"posters", no_argument, NULL, O_POSTERS},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    int c;

    *help = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        fb_err e = FB_OK;
        switch (c) {
        case O_LISTEN: e = fb__parse_listen(optarg, &cfg->port, &cfg->any_address); break;
        case O_PORT_FILE: cfg->port_file = optarg; break;
        case O_MARKUP: e = fb_markup_parse(optarg, &cfg->markup); break;
        case O_PER_PAGE: e = fb_parse_long(optarg, 1, FB_PER_PAGE_MAX, &cfg->per_page); break;
        case O_LATENCY: e = fb_parse_long(optarg, 0, FB_SLEEP_MAX_MS, &cfg->latency_ms); break;
        case O_SIZE: e = fb_parse_long(optarg, 0, FB_UNIVERSE_MAX, &cfg->size); break;
        case O_COMMON: e = fb_parse_long(optarg, 0, FB_UNIVERSE_MAX, &cfg->common); break;
        case O_UNIVERSE: e = fb_parse_long(optarg, 1, FB_UNIVERSE_MAX, &cfg->universe); break;
        case O_GZIP: cfg->gzip = 1; break;
        case O_CHALLENGE: cfg->challenge = 1; break;
        case O_SLOW: e = fb_parse_long(optarg, 0, FB_SLEEP_MAX_MS, &cfg->slow_ms); break;
        case O_POSTERS: cfg->posters = 1; break;
        case O_HELP: *help = 1; break;
        default: return FB_INVALID;
        }
        if (e != FB_OK) {
            fprintf(stderr, "fakeboxd: bad value for --%s: %s\n", opts[c - 1].name, optarg);
            return FB_INVALID;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "fakeboxd: unexpected argument: %s\n", argv[optind]);
        return FB_INVALID;
    }
    return FB_OK;
}

int main(int argc, char **argv)
{
    fb_server srv;
    struct MHD_Daemon *daemon = NULL;
    struct sockaddr_in sa;
    sigset_t sigs;
    pthread_condattr_t cattr;
    int help = 0;
    int status = 1;
    int catalog_ready = 0;

    /* Block the stop signals first, in every thread to come: one that arrives
     * while the catalog is being built waits for sigwait below, so even an
     * early SIGTERM ends in a clean exit. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    memset(&srv, 0, sizeof(srv));
    srv.cfg = (fb_config){
        .port = 0, .port_file = NULL, .markup = FB_MARKUP_CLASSIC, .per_page = 28,
        .latency_ms = 0, .size = 100, .common = 20, .universe = 20000, .slow_ms = 30000,
    };
    pthread_mutex_init(&srv.stop_lock, NULL);
    pthread_condattr_init(&cattr);
    pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
    pthread_cond_init(&srv.stop_cond, &cattr);
    pthread_condattr_destroy(&cattr);

    if (fb__parse_args(argc, argv, &srv.cfg, &help) != FB_OK) {
        fb__usage(stderr);
        status = 2;
        goto out;
    }
    if (help) {
        fb__usage(stdout);
        status = 0;
        goto out;
    }

    /* Out of memory inside jansson aborts too, as everywhere else here. */
    json_set_alloc_funcs(fb_malloc, free);
    if (fb_catalog_init(&srv.catalog, srv.cfg.universe) != FB_OK) {
        fprintf(stderr, "fakeboxd: cannot build the film catalog\n");
        goto out;
    }
    catalog_ready = 1;
    srv.telegram = fb_telegram_new();
    srv.stats = fb_stats_new();
    if (!srv.stats) {
        fprintf(stderr, "fakeboxd: cannot allocate counters\n");
        goto out;
    }

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)srv.cfg.port);
    sa.sin_addr.s_addr = htonl(srv.cfg.any_address ? INADDR_ANY : INADDR_LOOPBACK);
    daemon = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD |
                                  MHD_USE_ERROR_LOG,
                              0, NULL, NULL, fb__handle, &srv,
                              MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                              MHD_OPTION_NOTIFY_COMPLETED, fb__completed, NULL,
                              MHD_OPTION_CONNECTION_LIMIT, (unsigned int)10000,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)120,
                              MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned int)1024,
                              MHD_OPTION_THREAD_STACK_SIZE, (size_t)(512 * 1024),
                              MHD_OPTION_END);
    if (!daemon) {
        fprintf(stderr, "fakeboxd: cannot listen on %s:%d\n",
                srv.cfg.any_address ? "0.0.0.0" : "127.0.0.1", srv.cfg.port);
        goto out;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT);
    int port = info ? (int)info->port : srv.cfg.port;
    if (port <= 0) {
        fprintf(stderr, "fakeboxd: cannot learn the bound port\n");
        goto out;
    }
    if (srv.cfg.port_file && fb__write_port_file(srv.cfg.port_file, port) != FB_OK) {
        fprintf(stderr, "fakeboxd: cannot write %s: %s\n", srv.cfg.port_file, strerror(errno));
        goto out;
    }
    printf("listening on %s:%d\n", srv.cfg.any_address ? "0.0.0.0" : "127.0.0.1", port);
    fflush(stdout);

    int sig = 0;
    if (sigwait(&sigs, &sig) != 0)
        goto out;
    status = 0;
out:
    pthread_mutex_lock(&srv.stop_lock);
    srv.stopping = 1;
    pthread_cond_broadcast(&srv.stop_cond);
    pthread_mutex_unlock(&srv.stop_lock);
    if (daemon)
        MHD_stop_daemon(daemon);
    fb_stats_free(&srv.stats);
    fb_telegram_free(&srv.telegram);
    if (catalog_ready)
        fb_catalog_free(&srv.catalog);
    pthread_cond_destroy(&srv.stop_cond);
    pthread_mutex_destroy(&srv.stop_lock);
    return status;
}

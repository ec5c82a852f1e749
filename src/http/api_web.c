/*
 * api_web.c - the web app's files from web-dir (the Vite build in web/dist):
 * "/" and "/s/{id}" give index.html (no-cache), "/assets/{file}" the
 * content-hashed bundles (cached for a year, immutable), a few fixed root
 * files. Any other page a browser may open (a path outside /api/, /docs,
 * /healthz, /readyz, /metrics and /assets/ that does not name a file, or /s/ with an
 * id that is not 32 hex digits) is answered 404 with index.html, so the app
 * shows its own "page not found"; without a built app it is the JSON 404.
 * A file's precompressed .br or .gz twin (written by the build) is sent when
 * the browser accepts that encoding. Pages carry the app's strict
 * Content-Security-Policy: scripts, styles and connections only from here.
 */
#include <fcntl.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/mem.h"
#include "http/http_internal.h"

#define WEB_CSP                                                                                    \
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "connect-src 'self'; font-src 'self'; object-src 'none'; frame-ancestors 'none'; "             \
    "base-uri 'none'; form-action 'self'"

static const char *web__type(const char *name)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".webp", "image/webp"},
        {".json", "application/json"},
        {".webmanifest", "application/manifest+json"},
        {".woff2", "font/woff2"},
        {".txt", "text/plain; charset=utf-8"},
        {".map", "application/json"},
    };
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].type;
    return NULL;
}

/* 1 when Accept-Encoding lists coding without q=0. */
static int web__accepts(http_req *r, const char *coding)
{
    const char *ae = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Accept-Encoding");
    size_t clen = strlen(coding);
    while (ae && *ae) {
        while (*ae == ' ' || *ae == ',')
            ae++;
        size_t len = strcspn(ae, ",");
        size_t name = strcspn(ae, ";, ");
        if (name == clen && strncasecmp(ae, coding, clen) == 0) {
            const char *q = strstr(ae, "q=");
            int zero = q && q < ae + len && q[2] == '0' && strspn(q + 3, ".0") + 3 >=
                                                               strcspn(q, ", ;");
            return !zero;
        }
        ae += len;
    }
    return 0;
}

/* Sends web-dir/rel with status. missing_index: the error when rel is
 * index.html and the app is not built. */
static enum MHD_Result web__send(http_req *r, const char *rel, int immutable, int status,
                                 fp_err missing_index)
{
    const char *ctype = web__type(rel);
    if (!ctype)
        return http__error(r, FP_NOT_FOUND, "no such file", NULL);
    const char *dir = r->srv->cfg->web_dir;
    static const char *const encs[][2] = {{"br", ".br"}, {"gzip", ".gz"}, {NULL, ""}};
    int fd = -1;
    const char *enc = NULL;
    struct stat st;
    for (size_t i = 0; i < 3 && fd < 0; i++) {
        if (encs[i][0] && !web__accepts(r, encs[i][0]))
            continue;
        char *path = fp_printf("%s/%s%s", dir, rel, encs[i][1]);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        fp_free(path);
        if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))) {
            close(fd);
            fd = -1;
        }
        if (fd >= 0)
            enc = encs[i][0];
    }
    if (fd < 0) {
        if (strcmp(rel, "index.html") == 0 && missing_index == FP_UNAVAILABLE)
            return http__error(r, FP_UNAVAILABLE,
                               "the web app is not built: run `npm run build` in web/", NULL);
        if (strcmp(rel, "index.html") == 0)
            return http__error(r, missing_index, "no such route", NULL);
        return http__error(r, FP_NOT_FOUND, "no such file", NULL);
    }
    struct MHD_Response *resp = MHD_create_response_from_fd((uint64_t)st.st_size, fd);
    MHD_add_response_header(resp, "Content-Type", ctype);
    if (enc)
        MHD_add_response_header(resp, "Content-Encoding", enc);
    MHD_add_response_header(resp, "Vary", "Accept-Encoding");
    MHD_add_response_header(resp, "Cache-Control",
                            immutable ? "public, max-age=31536000, immutable" : "no-cache");
    MHD_add_response_header(resp, "X-Request-Id", r->id);
    http__security_headers(resp, WEB_CSP);
    return http__queue(r, status, resp);
}

int api_web_is_page(const char *path)
{
    static const char *const not_pages[] = {"/api", "/docs", "/healthz", "/readyz", "/metrics",
                                            "/assets"};
    for (size_t i = 0; i < sizeof not_pages / sizeof not_pages[0]; i++) {
        size_t n = strlen(not_pages[i]);
        if (strncmp(path, not_pages[i], n) == 0 && (path[n] == '\0' || path[n] == '/'))
            return 0;
    }
    const char *last = strrchr(path, '/');
    return last != NULL && strchr(last, '.') == NULL; /* "/favicon.ico": a file, not a page */
}

enum MHD_Result api_web_not_found(http_req *r)
{
    return web__send(r, "index.html", 0, 404, FP_NOT_FOUND);
}

enum MHD_Result api_web_index(http_req *r)
{
    const char *id = r->params[0]; /* "/s/{id}"; NULL for "/" */
    if (id && (strlen(id) != 32 || strspn(id, "0123456789abcdef") != 32))
        return api_web_not_found(r);
    return web__send(r, "index.html", 0, 200, FP_UNAVAILABLE);
}

enum MHD_Result api_web_asset(http_req *r)
{
    const char *name = r->params[0];
    /* plain file names only: no traversal, no hidden or precompressed files */
    if (name[0] == '.' || strstr(name, "..") || strspn(name, "abcdefghijklmnopqrstuvwxyz"
                                                             "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                             "0123456789-_.") != strlen(name))
        return http__error(r, FP_NOT_FOUND, "no such file", NULL);
    char *rel = fp_printf("assets/%s", name);
    enum MHD_Result res = web__send(r, rel, 1, 200, FP_NOT_FOUND);
    fp_free(rel);
    return res;
}

enum MHD_Result api_web_root_file(http_req *r)
{
    return web__send(r, r->path + 1, 0, 200, FP_NOT_FOUND); /* the route table lists the names */
}

/*
 * http_harness.c - the in-process server and loopback client of the HTTP
 * fuzz targets (see http_harness.h).
 *
 * One input is one TCP connection: the bytes are written (while the answer
 * is read, so a server that answers early never blocks us), the first answer
 * is read until its end (Content-Length, chunked, or the headers of an event
 * stream), and the connection is reset (SO_LINGER 0, so that thousands of
 * inputs a second leave no TIME_WAIT sockets behind). An input after which
 * the server still waits for more (a body shorter than its Content-Length,
 * headers without their blank line) gets no answer, so the silence after the
 * request is bounded: FZ_WAIT_DONE_MS for a request that looks complete
 * (fz__looks_complete: an answer is due, and slow sanitized builds get time
 * for it), FZ_WAIT_MS for one that does not (most mutations that cut a
 * request: waiting longer would only slow the fuzzer down); then the
 * connection is dropped. FP_FUZZ_HTTP_WAIT_MS overrides FZ_WAIT_MS;
 * FP_FUZZ_HTTP_TRACE=1 prints each request's method, path, status and time,
 * FP_FUZZ_HTTP_TRACE=2 the request and the answer too.
 */
#include "http_harness.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/netaddr.h"
#include "http/http.h"
#include "app/service.h"
#include "session.h"

#define FZ_WAIT_MS 10        /* silence after an incomplete request: no answer is coming */
#define FZ_WAIT_DONE_MS 300  /* the same after a request that looks complete */
#define FZ_ANSWER_MS 2000    /* an answer that has started must end within this */
#define FZ_ANSWER_MAX (4u * 1024u * 1024u)
#define FZ_SILENT_MAX 50     /* unanswered complete-looking requests before fz__alive */

static struct {
    fp_config cfg;
    service *svc;
    sessions *sess;
    http_server *http;
    int port;
    long wait_ms;
    int trace;             /* FP_FUZZ_HTTP_TRACE=1: one line per request on stderr, 2: and the answer */
    int silent;            /* complete-looking requests unanswered since the last answer */
    unsigned long inputs;
    long long fixtures_ms; /* when the fixtures were made */
    int epoch;
    char sid[64];
    char job[33];
    char imp[33];
    char csrf[VAULT_MAC_HEX + 1];
    char cookie[SVC_COOKIE_LEN + 1];
} fz;

static long long fz__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void fz__die(const char *what)
{
    fprintf(stderr, "http_harness: %s\n", what);
    abort();
}

/* ---- fixtures ----------------------------------------------------------- */

/* Two lists that share films 1-4; each has one of its own. */
static const char fz_csv_a[] = "Date,Name,Year,Letterboxd URI\n"
                               "2024-01-01,Fuzz Harbour,1961,https://boxd.it/fz01\n"
                               "2024-01-02,The Quiet Engine,1974,https://boxd.it/fz02\n"
                               "2024-01-03,Lanterns Over Ash,1988,https://boxd.it/fz03\n"
                               "2024-01-04,\"Noon, Again\",2003,https://boxd.it/fz04\n"
                               "2024-01-05,Only Alice,2011,https://boxd.it/fz05\n";
static const char fz_csv_b[] = "Date,Name,Year,Letterboxd URI\n"
                               "2024-02-01,Fuzz Harbour,1961,https://boxd.it/fz01\n"
                               "2024-02-02,The Quiet Engine,1974,https://boxd.it/fz02\n"
                               "2024-02-03,Lanterns Over Ash,1988,https://boxd.it/fz03\n"
                               "2024-02-04,\"Noon, Again\",2003,https://boxd.it/fz04\n"
                               "2024-02-05,Only Bob,2019,https://boxd.it/fz06\n";

static void fz__import(const svc_person *p, const char *csv, char token[33])
{
    svc_import_report rep;
    if (svc_import(fz.svc, p, (const unsigned char *)csv, strlen(csv), "watchlist.csv", &rep) !=
        FP_OK)
        fz__die("fixture import failed");
    if (token)
        snprintf(token, 33, "%s", rep.token);
    svc_import_report_free(&rep);
}

static int fz__job_done(const char *id)
{
    svc_job_view v;
    if (svc_job_view_get(fz.svc, id, &v) != FP_OK)
        return 1;
    int done = v.done;
    svc_job_view_free(&v);
    return done;
}

static int fz__session_searching(const char *id)
{
    json_t *view = NULL;
    if (sess_get(fz.sess, id, &view) != FP_OK)
        return 0;
    const char *st = json_string_value(json_object_get(view, "status"));
    int searching = st && strcmp(st, "searching") == 0;
    json_decref(view);
    return searching;
}

/* People fz<epoch>a and fz<epoch>b with stored lists, their finished job,
 * their searched session, an anonymous import. New people each epoch: the
 * earlier ones may have had films marked watched. */
static void fz__fixtures(void)
{
    char ua[32], ub[32];
    snprintf(ua, sizeof ua, "fz%da", fz.epoch);
    snprintf(ub, sizeof ub, "fz%db", fz.epoch);
    fz.epoch++;
    fz.fixtures_ms = fz__now_ms();
    svc_person people[2];
    if (svc_person_parse(fz.svc, "lb", ua, 0, &people[0]) != FP_OK ||
        svc_person_parse(fz.svc, "lb", ub, 0, &people[1]) != FP_OK)
        fz__die("fixture usernames refused");
    fz__import(&people[0], fz_csv_a, NULL);
    fz__import(&people[1], fz_csv_b, NULL);
    fz__import(NULL, fz_csv_a, fz.imp);
    if (svc_job_start(fz.svc, people, 2, fz.job) != FP_OK)
        fz__die("fixture job refused");

    json_t *view = NULL;
    fp_addr loopback;
    long retry_s = 0;
    if (fp_addr_parse("127.0.0.1", 9, &loopback) != FP_OK)
        fz__die("no loopback address");
    fp_addr from = fp_addr_limit_key(&loopback);
    if (sess_create(fz.sess, FZ_HTTP_CLIENT, from.b, &view, &retry_s) != FP_OK)
        fz__die("fixture session refused");
    snprintf(fz.sid, sizeof fz.sid, "%s", json_string_value(json_object_get(view, "id")));
    json_decref(view);
    for (int i = 0; i < 2; i++) {
        if (sess_add(fz.sess, fz.sid, &people[i], NULL, &view) != FP_OK)
            fz__die("fixture participant refused");
        json_decref(view);
    }
    if (sess_search(fz.sess, fz.sid, 0, &view) != FP_OK)
        fz__die("fixture search refused");
    json_decref(view);
    /* Both lists are stored: the job and the search end at once; bounded
     * anyway, since inputs only need the state, not its timing. */
    long long until = fz__now_ms() + 5000;
    while ((!fz__job_done(fz.job) || fz__session_searching(fz.sid)) && fz__now_ms() < until)
        usleep(1000);
}

static void fz__stop(void)
{
    http_server_stop(&fz.http, 2000);
    svc_close(&fz.svc);
    sessions_free(&fz.sess);
    config_free(&fz.cfg);
}

void fz_http_init(void)
{
    if (fz.http)
        return;
    static const char *const env[][2] = {
        {"FILMPICKER_LISTEN", "127.0.0.1:0"},
        {"FILMPICKER_DATABASE", ":memory:"},
        /* a fixed key, so that the CSRF token of FZ_HTTP_CLIENT is stable */
        {"FILMPICKER_SECRET_KEY", "f022f022f022f022f022f022f022f022f022f022f022f022f022f022f022f022"},
        {"FILMPICKER_LETTERBOXD_URL", "http://127.0.0.1:9"},
        {"FILMPICKER_LETTERBOXD_IMAGE_URL", "http://127.0.0.1:9"},
        {"FILMPICKER_LOG_LEVEL", "error"},
        {"FILMPICKER_WORKERS", "1"},
        {"FILMPICKER_HTTP_THREADS", "1"},
        {"FILMPICKER_FETCH_RETRIES", "0"},
        {"FILMPICKER_FETCH_TIMEOUT_MS", "1000"},
        {"FILMPICKER_COMPAT_WAIT_MS", "0"},
        {"FILMPICKER_REQUEST_TIMEOUT", "5"},
        {"FILMPICKER_MAX_SESSIONS_PER_CLIENT", "10000"},
        {"FILMPICKER_MAX_SESSIONS_PER_ADDRESS", "10000000"},
        {"FILMPICKER_MAX_SESSIONS", "10000000"},
        /* no rate limits: every input comes from 127.0.0.1, and a fuzzer
         * that gets 429 for nearly everything fuzzes nothing (the abuse
         * suite tests the limits) */
        {"FILMPICKER_RATE_FETCH_BURST", "0"},
        {"FILMPICKER_RATE_IMPORT_BURST", "0"},
        {"FILMPICKER_RATE_SESSION_BURST", "0"},
        {"FILMPICKER_RATE_CLIENT_BURST", "0"},
        {"FILMPICKER_RATE_JOB_BURST", "0"},
        /* the client is a trusted proxy: X-Forwarded-For and -Proto are read */
        {"FILMPICKER_TRUSTED_PROXIES", "127.0.0.1"},
        {"FILMPICKER_SESSION_TTL", "60"},
        {"FILMPICKER_JOB_TTL", "60"},
        {"FILMPICKER_MAX_UPLOAD_BYTES", "1048576"},
    };
    for (size_t i = 0; i < sizeof env / sizeof env[0]; i++)
        setenv(env[i][0], env[i][1], 1);
    signal(SIGPIPE, SIG_IGN);
    if (config_from_env(&fz.cfg) != FP_OK)
        fz__die("bad settings");
    fp_log_set_level(FP_LOG_ERROR);
    if (svc_open(&fz.cfg, SVC_ROLE_SERVE, &fz.svc) != FP_OK)
        fz__die("svc_open failed");
    if (sessions_open(&fz.cfg, fz.svc, &fz.sess) != FP_OK)
        fz__die("sessions_open failed");
    if (http_server_start(&fz.cfg, fz.svc, fz.sess, &fz.http) != FP_OK)
        fz__die("http_server_start failed");
    fz.port = http_server_port(fz.http);
    if (svc_client_cookie(fz.svc, FZ_HTTP_CLIENT, fz.cookie) != FP_OK ||
        svc_client_token(fz.svc, FZ_HTTP_CLIENT, fz.csrf) != FP_OK)
        fz__die("no client cookie or CSRF token");
    const char *w = getenv("FP_FUZZ_HTTP_WAIT_MS");
    fz.wait_ms = w ? strtol(w, NULL, 10) : 0;
    if (fz.wait_ms <= 0)
        fz.wait_ms = FZ_WAIT_MS;
    const char *tr = getenv("FP_FUZZ_HTTP_TRACE");
    fz.trace = tr ? (int)strtol(tr, NULL, 10) : 0;
    fz__fixtures();
    atexit(fz__stop);
}

/* ---- the client --------------------------------------------------------- */

typedef struct fz_answer {
    fp_buf raw;
    int status;
    int complete;     /* the whole answer was read */
    size_t interim;   /* bytes of interim answers (100 Continue) before it */
    size_t head_len;  /* bytes up to and with the blank line */
    size_t body_len;  /* of the first answer, once complete (Content-Length or chunks) */
    int chunked;
    char ctype[128];
    int request_id;   /* made by our handlers (they all set X-Request-Id) */
} fz_answer;

/* First occurrence of needle in the len bytes at hay (memmem is GNU). */
static const char *fz__find(const char *hay, size_t len, const char *needle)
{
    size_t nl = strlen(needle);
    for (size_t i = 0; nl <= len && i <= len - nl; i++)
        if (memcmp(hay + i, needle, nl) == 0)
            return hay + i;
    return NULL;
}

/* The value of header name in the head (NULL-terminated copy in out). */
static int fz__header(const char *head, size_t len, const char *name, char *out, size_t cap)
{
    size_t nlen = strlen(name);
    const char *p = memchr(head, '\n', len);
    while (p && (size_t)(p - head) < len) {
        p++;
        const char *eol = memchr(p, '\n', len - (size_t)(p - head));
        if (!eol)
            break;
        if ((size_t)(eol - p) > nlen && strncasecmp(p, name, nlen) == 0 && p[nlen] == ':') {
            const char *v = p + nlen + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            size_t vlen = (size_t)(eol - v);
            while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == ' '))
                vlen--;
            if (vlen >= cap)
                vlen = cap - 1;
            memcpy(out, v, vlen);
            out[vlen] = '\0';
            return 1;
        }
        p = eol;
    }
    return 0;
}

/* Whether a chunked body starting at p (len bytes) has ended. */
static int fz__chunked_done(const char *p, size_t len)
{
    size_t i = 0;
    for (;;) {
        const char *eol = memchr(p + i, '\n', len - i);
        if (!eol)
            return 0;
        unsigned long long n = 0; /* the chunk size, read within its line */
        int digits = 0;
        for (const char *c = p + i; c < eol && isxdigit((unsigned char)*c) && n < (1ull << 40);
             c++, digits++)
            n = n * 16 + (unsigned long long)(isdigit((unsigned char)*c) ? *c - '0'
                                                                        : (*c | 0x20) - 'a' + 10);
        if (!digits)
            return 0;
        i = (size_t)(eol - p) + 1;
        if (n == 0) /* then trailers, up to a blank line */
            return (len - i >= 2 && p[i] == '\r' && p[i + 1] == '\n') ||
                   fz__find(p + i, len - i, "\r\n\r\n") != NULL;
        if (len - i < n + 2)
            return 0;
        i += (size_t)n + 2;
    }
}

/* Parses what has arrived; sets complete when the first answer has ended
 * (interim 1xx answers are skipped). head_only: the request was HEAD. */
static void fz__parse(fz_answer *a, int head_only, int closed)
{
    const char *d = a->raw.data;
    size_t len = a->raw.len, off = 0;
    for (;;) {
        a->interim = off;
        const char *end = d ? fz__find(d + off, len - off, "\r\n\r\n") : NULL;
        if (!end)
            return;
        size_t head = (size_t)(end - d) + 4;
        int status = 0;
        if (len - off > 12 && strncmp(d + off, "HTTP/1.", 7) == 0)
            status = (int)strtol(d + off + 9, NULL, 10);
        if (status >= 100 && status < 200) {
            off = head;
            continue;
        }
        a->status = status;
        a->head_len = head;
        const char *h = d + off;
        size_t hl = head - off;
        char v[128];
        a->request_id = fz__header(h, hl, "X-Request-Id", v, sizeof v);
        if (!fz__header(h, hl, "Content-Type", a->ctype, sizeof a->ctype))
            a->ctype[0] = '\0';
        size_t body = len - head;
        if (head_only || status == 204 || status == 304 ||
            strncasecmp(a->ctype, "text/event-stream", 17) == 0)
            a->complete = 1;
        else if (fz__header(h, hl, "Content-Length", v, sizeof v)) {
            unsigned long long cl = strtoull(v, NULL, 10);
            a->complete = body >= cl;
            a->body_len = a->complete ? (size_t)cl : 0;
        } else if (fz__header(h, hl, "Transfer-Encoding", v, sizeof v) &&
                   fz__find(v, strlen(v), "chunked")) {
            a->chunked = 1;
            a->complete = fz__chunked_done(d + head, body);
        } else {
            a->complete = closed;
            a->body_len = body;
        }
        return;
    }
}

/* Method and path (without the query) of the request's first line. */
static void fz__request_line(const uint8_t *req, size_t len, char *method, size_t mcap,
                             char *path, size_t pcap)
{
    size_t i = 0, k = 0;
    while (i < len && (req[i] == '\r' || req[i] == '\n'))
        i++;
    while (i < len && req[i] != ' ' && req[i] != '\r' && req[i] != '\n' && k + 1 < mcap)
        method[k++] = (char)req[i++];
    method[k] = '\0';
    while (i < len && req[i] == ' ')
        i++;
    k = 0;
    while (i < len && req[i] != ' ' && req[i] != '?' && req[i] != '\r' && req[i] != '\n' &&
           k + 1 < pcap)
        path[k++] = (char)req[i++];
    path[k] = '\0';
}

/* Whether the first request of req looks complete to a plain reading of
 * HTTP/1.1: a request line of printable ASCII that starts with a letter, the
 * blank line after the headers, then the Content-Length bytes or the last
 * chunk. Only a hint for how long to wait for the answer: libmicrohttpd
 * waits silently (until the connection timeout) after some lines that are
 * not a request line, such as one starting with NUL bytes, which it reads
 * as an empty line. */
static int fz__looks_complete(const uint8_t *req, size_t len)
{
    const char *d = (const char *)req;
    size_t i = 0;
    while (i + 1 < len && d[i] == '\r' && d[i + 1] == '\n')
        i += 2;
    if (i >= len || !isupper((unsigned char)d[i]))
        return 0;
    for (; i < len && d[i] != '\r'; i++)
        if (!isprint((unsigned char)d[i]))
            return 0;
    const char *end = fz__find(d, len, "\r\n\r\n");
    if (!end)
        return 0;
    size_t head = (size_t)(end - d) + 4, body = len - head;
    char v[128];
    if (fz__header(d, head, "Transfer-Encoding", v, sizeof v))
        return fz__chunked_done(d + head, body);
    if (fz__header(d, head, "Content-Length", v, sizeof v))
        return body >= strtoull(v, NULL, 10);
    return 1;
}

static void fz__dump(const char *why, const uint8_t *req, size_t len, const fz_answer *a)
{
    fprintf(stderr, "\n==== http_harness: %s\n---- request (%zu bytes):\n", why, len);
    for (size_t i = 0; i < len && i < 4096; i++)
        fputc(isprint(req[i]) || req[i] == '\n' ? req[i] : '.', stderr);
    fprintf(stderr, "\n---- answer (%zu bytes):\n", a->raw.len);
    for (size_t i = 0; i < a->raw.len && i < 4096; i++)
        fputc(isprint((unsigned char)a->raw.data[i]) || a->raw.data[i] == '\n' ? a->raw.data[i]
                                                                                 : '.',
              stderr);
    fprintf(stderr, "\n====\n");
}

/* The rules of http_harness.h. */
static void fz__check(const uint8_t *req, size_t len, const fz_answer *a, const char *method,
                      const char *path)
{
    if (a->status == 500) {
        fz__dump("500 answer", req, len, a);
        abort();
    }
    if (!a->request_id || strncmp(path, "/api/", 5) != 0 || !a->complete ||
        strcmp(method, "HEAD") == 0 || a->status == 204 || a->status == 304)
        return;
    if (a->status == 200 && (strncasecmp(a->ctype, "text/event-stream", 17) == 0 ||
                             strncasecmp(a->ctype, "image/", 6) == 0))
        return; /* the session event stream; a poster */
    if (strncasecmp(a->ctype, "application/json", 16) != 0) {
        fz__dump("an /api/ answer that is not application/json", req, len, a);
        abort();
    }
    if (a->chunked)
        return; /* our JSON answers all have a Content-Length */
    json_error_t err;
    json_t *j = json_loadb(a->raw.data + a->head_len, a->body_len, 0, &err);
    if (!j) {
        fz__dump("an /api/ answer whose body is not JSON", req, len, a);
        abort();
    }
    json_t *e = json_object_get(j, "error");
    const char *code = json_string_value(json_object_get(e, "code"));
    if (code && strcmp(code, "internal_error") == 0) {
        fz__dump("internal_error answer", req, len, a);
        abort();
    }
    json_decref(j);
}

/* A connection to the server. The machine is shared (other tests may hold
 * thousands of sockets for a moment), so a refused connect is retried for a
 * while before the target gives up: a local shortage is not a finding. */
static int fz__connect(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)fz.port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int err = 0;
    for (int attempt = 0; attempt < 200; attempt++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
            return fd;
        err = errno;
        if (fd >= 0)
            close(fd);
        usleep(10 * 1000);
    }
    fprintf(stderr, "http_harness: cannot connect to the server for 2 s: %s\n", strerror(err));
    abort();
}

/* Sends req on a new connection and reads the first answer into *a (the
 * caller frees a->raw); done_ms: how long to wait for a complete-looking
 * request's answer to start. */
static void fz__exchange(const uint8_t *req, size_t len, const char *method, long done_ms,
                         fz_answer *a)
{
    int fd = fz__connect();
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);

    memset(a, 0, sizeof *a);
    fp_buf_init(&a->raw, FZ_ANSWER_MAX);
    size_t sent = 0;
    int closed = 0, send_failed = 0, started = 0;
    /* while sending; then the wait for an answer to start (also at once
     * for an empty input) */
    long long deadline = fz__now_ms() + (len ? FZ_ANSWER_MS : fz.wait_ms);
    while (!a->complete && !closed) {
        long long now = fz__now_ms();
        if (now >= deadline)
            break;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (sent < len && !send_failed)
            p.events |= POLLOUT;
        if (poll(&p, 1, (int)(deadline - now)) <= 0)
            continue;
        if ((p.revents & POLLOUT) && sent < len) {
            ssize_t n = send(fd, req + sent, len - sent, MSG_NOSIGNAL);
            if (n > 0)
                sent += (size_t)n;
            else if (n < 0 && errno != EAGAIN && errno != EINTR)
                send_failed = 1;
            if ((sent == len || send_failed) && !started)
                deadline = fz__now_ms() + (fz__looks_complete(req, len) ? done_ms : fz.wait_ms);
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            char buf[65536];
            ssize_t n = recv(fd, buf, sizeof buf, 0);
            if (n > 0) {
                if (fp_buf_append(&a->raw, buf, (size_t)n) != FP_OK)
                    break;
            } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                closed = 1;
            }
            fz__parse(a, strcmp(method, "HEAD") == 0, closed);
            /* The answer has started (a 100 Continue does not count: the
             * server may still wait for the body): let it finish. */
            if (!started && a->raw.len > a->interim) {
                started = 1;
                deadline = fz__now_ms() + FZ_ANSWER_MS;
            }
        }
    }
    close(fd);
}

/* After FZ_SILENT_MAX requests that looked complete but got no answer (and
 * no answer to any request in between), a plain GET /healthz must still be
 * answered: a server that stopped
 * answering everyone (a hang, a deadlock, a lost connection slot) is a
 * finding, not an incomplete request. */
static void fz__alive(const uint8_t *req, size_t len)
{
    static const char probe[] = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    fz_answer a;
    fz__exchange((const uint8_t *)probe, sizeof probe - 1, "GET", FZ_ANSWER_MS, &a);
    if (a.status == 0) {
        fz__dump("the server no longer answers GET /healthz; the last request was", req, len, &a);
        abort();
    }
    fp_buf_free(&a.raw);
}

int fz_http_send(const uint8_t *req, size_t len)
{
    char method[16], path[256];
    fz__request_line(req, len, method, sizeof method, path, sizeof path);
    long long started = fz__now_ms();
    fz_answer a;
    fz__exchange(req, len, method, FZ_WAIT_DONE_MS, &a);
    if (fz.trace)
        fprintf(stderr, "http_harness: %.16s %.80s -> %d%s (%lld ms)\n", method, path, a.status,
                a.complete ? "" : " incomplete", fz__now_ms() - started);
    if (fz.trace > 1)
        fz__dump("trace", req, len, &a);
    fz__check(req, len, &a, method, path);
    if (a.raw.len) {
        fz.silent = 0;
    } else if (fz__looks_complete(req, len) && ++fz.silent >= FZ_SILENT_MAX) {
        fz.silent = 0;
        fz__alive(req, len);
    }
    int status = a.status;
    fp_buf_free(&a.raw);
    return status;
}

/* Replaces {sid}, {job}, {imp}, {csrf} and {cookie}; caller frees. */
static uint8_t *fz__expand(const uint8_t *data, size_t size, size_t *out_len)
{
    const struct {
        const char *mark;
        const char *value;
    } marks[] = {{"{sid}", fz.sid},   {"{job}", fz.job},         {"{imp}", fz.imp},
                 {"{csrf}", fz.csrf}, {"{cookie}", fz.cookie}};
    fp_buf out;
    fp_buf_init(&out, size * 16 + 64);
    size_t i = 0;
    while (i < size) {
        const uint8_t *brace = memchr(data + i, '{', size - i);
        size_t run = brace ? (size_t)(brace - (data + i)) : size - i;
        if (run && fp_buf_append(&out, data + i, run) != FP_OK)
            fz__die("expansion too large");
        i += run;
        if (i == size)
            break;
        size_t k = 0, ml = 1;
        const char *value = "{";
        for (; k < sizeof marks / sizeof marks[0]; k++) {
            size_t l = strlen(marks[k].mark);
            if (size - i >= l && memcmp(data + i, marks[k].mark, l) == 0) {
                ml = l;
                value = marks[k].value;
                break;
            }
        }
        if (fp_buf_append(&out, value, strlen(value)) != FP_OK)
            fz__die("expansion too large");
        i += ml;
    }
    *out_len = out.len;
    uint8_t *bytes = (uint8_t *)fp_buf_steal(&out, NULL);
    return bytes ? bytes : (uint8_t *)fp_strdup("");
}

int fz_http_request(const uint8_t *data, size_t size)
{
    /* well before the session's 60 s TTL, however slow the inputs */
    if (++fz.inputs % FZ_HTTP_EPOCH == 0 || fz__now_ms() - fz.fixtures_ms > 30000)
        fz__fixtures();
    size_t len = 0;
    uint8_t *req = fz__expand(data, size, &len);
    int status = fz_http_send(req, len);
    fp_free(req);
    return status;
}

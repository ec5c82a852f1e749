/*
 * config.c - the settings table and its two readers (environment, flags).
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/mem.h"

typedef enum { CFG_STR, CFG_URL, CFG_LONG } cfg_type; /* CFG_URL: a CFG_STR that is an http(s) URL */

typedef struct cfg_opt {
    const char *flag;   /* without the leading "--" */
    const char *env;
    cfg_type type;
    size_t offset;
    const char *def;    /* NULL: unset */
    long min, max;
    const char *help;
} cfg_opt;

#define S(field) CFG_STR, offsetof(fp_config, field)
#define U(field) CFG_URL, offsetof(fp_config, field)
#define L(field) CFG_LONG, offsetof(fp_config, field)

static const cfg_opt cfg_opts[] = {
    {"listen", "FILMPICKER_LISTEN", S(listen), "127.0.0.1:8080", 0, 0,
     "HTTP API address, host:port"},
    {"database", "FILMPICKER_DATABASE", S(database), "filmpicker.db", 0, 0,
     "SQLite database path (or sqlite:PATH), or postgresql://USER:PASSWORD@HOST:PORT/DB (options pool_size=N, schema=NAME)"},
    {"queue", "FILMPICKER_QUEUE", S(queue), "inproc", 0, 0,
     "job queue backend: inproc, or amqp://user:password@host:port/ (RabbitMQ: fetches run "
     "in `filmpicker worker` processes)"},
    {"cache", "FILMPICKER_CACHE", S(cache), "inproc", 0, 0,
     "cache backend: inproc, or redis://[:password@]host:port/db (shared by every instance; "
     "also the shared state and rate-limit buckets unless those are set)"},
    {"state", "FILMPICKER_STATE", S(state), NULL, 0, 0,
     "shared-state backend (task documents, leases, the event bus): inproc or redis://...; "
     "unset: the cache's Redis, else inproc"},
    {"metrics-listen", "FILMPICKER_METRICS_LISTEN", S(metrics_listen), NULL, 0, 0,
     "worker only: host:port where `filmpicker worker` answers GET /metrics, /readyz and "
     "/healthz (for Prometheus and probes); unset: no listener (serve answers them on listen)"},
    {"letterboxd-url", "FILMPICKER_LETTERBOXD_URL", U(letterboxd_url), "https://letterboxd.com",
     0, 0, "Letterboxd base URL (point tests at a fake site)"},
    {"letterboxd-image-url", "FILMPICKER_LETTERBOXD_IMAGE_URL", U(letterboxd_image_url),
     "https://a.ltrbxd.com", 0, 0,
     "host of Letterboxd's poster images (posters are fetched from it, served from here)"},
    {"secret-key", "FILMPICKER_SECRET_KEY", S(secret_key), NULL, 0, 0,
     "server key, 64 hex digits (else the key file is used)"},
    {"secret-key-file", "FILMPICKER_SECRET_KEY_FILE", S(secret_key_file), "filmpicker.key", 0, 0,
     "server key file, created with mode 0600 when missing"},
    {"static-dir", "FILMPICKER_STATIC_DIR", S(static_dir),
     FP_SOURCE_DIR "/web/node_modules/swagger-ui-dist", 0, 0,
     "directory of the Swagger UI files served at /docs"},
    {"web-dir", "FILMPICKER_WEB_DIR", S(web_dir), FP_SOURCE_DIR "/web/dist", 0, 0,
     "directory of the built web app served at / (npm run build in web/)"},
    {"user-agent", "FILMPICKER_USER_AGENT", S(user_agent),
     "FilmPicker/" FP_VERSION " (group watchlist matcher; +https://github.com/filmpicker)", 0, 0,
     "User-Agent sent to watchlist sites"},
    {"log-level", "FILMPICKER_LOG_LEVEL", S(log_level), "info", 0, 0,
     "debug, info, warn or error"},
    {"workers", "FILMPICKER_WORKERS", L(workers), "4", 1, 256, "scrape job threads"},
    {"http-threads", "FILMPICKER_HTTP_THREADS", L(http_threads), "0", 0, 256,
     "HTTP server threads (0: one per CPU)"},
    {"host-concurrency", "FILMPICKER_HOST_CONCURRENCY", L(host_concurrency), "8", 1, 256,
     "simultaneous requests to one site (politeness)"},
    {"fetch-timeout-ms", "FILMPICKER_FETCH_TIMEOUT_MS", L(fetch_timeout_ms), "15000", 100,
     600000, "timeout of one page request"},
    {"fetch-retries", "FILMPICKER_FETCH_RETRIES", L(fetch_retries), "3", 0, 20,
     "retries on 429, 5xx and network errors"},
    {"fetch-backoff-ms", "FILMPICKER_FETCH_BACKOFF_MS", L(fetch_backoff_ms), "500", 0, 60000,
     "first retry delay, doubled on each retry"},
    {"retry-after-max-ms", "FILMPICKER_RETRY_AFTER_MAX_MS", L(retry_after_max_ms), "30000", 0,
     600000, "longest Retry-After honoured"},
    {"max-pages", "FILMPICKER_MAX_PAGES", L(max_pages), "400", 1, 100000,
     "pages fetched per watchlist at most"},
    {"max-age", "FILMPICKER_MAX_AGE", L(max_age_s), "86400", 0, LONG_MAX,
     "seconds a stored watchlist is reused before it is refetched"},
    {"max-participants", "FILMPICKER_MAX_PARTICIPANTS", L(max_participants), "16", 1, 64,
     "participants per request"},
    {"max-body-bytes", "FILMPICKER_MAX_BODY_BYTES", L(max_body_bytes), "65536", 1024,
     16777216, "largest JSON request body"},
    {"max-upload-bytes", "FILMPICKER_MAX_UPLOAD_BYTES", L(max_upload_bytes), "16777216", 1024,
     33554432, "largest uploaded export file"},
    {"compat-wait-ms", "FILMPICKER_COMPAT_WAIT_MS", L(compat_wait_ms), "50000", 0, 600000,
     "how long the first version's routes (POST /api/scrape/, /api/watchlist/remove) wait "
     "for lists being fetched before answering 503 still_fetching (the first version "
     "blocked; 50 s covers a cold fetch of typical lists and stays under a default nginx proxy_read_timeout of 60 s); 0..600000"},
    {"request-timeout", "FILMPICKER_REQUEST_TIMEOUT", L(request_timeout_s), "30", 1, 3600,
     "idle HTTP connection timeout, seconds"},
    {"log-client-address", "FILMPICKER_LOG_CLIENT_ADDRESS", L(log_client_address), "0", 0, 1,
     "1: each http_request log line carries the client's address (client.address: the peer, "
     "or what a trusted proxy forwarded); 0: no address is logged (it is personal data)"},
    {"fetch-lease-ms", "FILMPICKER_FETCH_LEASE_MS", L(fetch_lease_ms), "30000", 3000, 600000,
     "how long a worker's hold on a person's fetch lasts without renewal (renewed every third of "
     "it while pages come): a worker that dies lets another take over after this"},
    {"job-ttl", "FILMPICKER_JOB_TTL", L(job_ttl_s), "3600", 10, 604800,
     "seconds a finished job and its results are kept"},
    {"max-jobs", "FILMPICKER_MAX_JOBS", L(max_jobs), "1000", 1, 1000000,
     "unfinished jobs at once; more are refused with 429"},
    {"session-ttl", "FILMPICKER_SESSION_TTL", L(session_ttl_s), "21600", 60, 2592000,
     "seconds a group session lives after its last change"},
    {"max-sessions-per-client", "FILMPICKER_MAX_SESSIONS_PER_CLIENT",
     L(max_sessions_per_client), "20", 1, 10000,
     "group sessions one browser may have open; more are refused with 429"},
    {"public-url", "FILMPICKER_PUBLIC_URL", U(public_url), NULL, 0, 0,
     "the address people's phones reach this server at (join links and QR codes); "
     "unset: the address the browser used"},
    {"max-connections", "FILMPICKER_MAX_CONNECTIONS", L(max_connections), "0", 0, 1000000,
     "HTTP connections at once; 0: the file descriptor limit less 192, at most 4096"},
    {"connections-reserve", "FILMPICKER_CONNECTIONS_RESERVE", L(connections_reserve), "16", 1,
     100000, "connections kept for /healthz, /readyz and /metrics: past max-connections less "
     "this, other requests get 503 and idle connections are cut"},
    {"max-connections-per-address", "FILMPICKER_MAX_CONNECTIONS_PER_ADDRESS",
     L(max_connections_per_address), "0", 0, 1000000,
     "connections one client address (IPv6: one /64) may hold; 0: an eighth of "
     "max-connections (at least 16); trusted proxies are exempt"},
    {"header-timeout", "FILMPICKER_HEADER_TIMEOUT", L(header_timeout_s), "10", 1, 3600,
     "seconds a request's headers may take to arrive (slow senders are cut)"},
    {"body-timeout", "FILMPICKER_BODY_TIMEOUT", L(body_timeout_s), "60", 1, 3600,
     "seconds a request's body may take to arrive after its headers"},
    {"max-streams-per-address", "FILMPICKER_MAX_STREAMS_PER_ADDRESS",
     L(max_streams_per_address), "32", 1, 100000, "live event streams one client address may hold"},
    {"max-streams-per-session", "FILMPICKER_MAX_STREAMS_PER_SESSION",
     L(max_streams_per_session), "32", 1, 100000, "live event streams on one session"},
    {"stream-max-life", "FILMPICKER_STREAM_MAX_LIFE", L(stream_max_life_s), "900", 5, 86400,
     "seconds after which an event stream ends (the browser reconnects with Last-Event-ID)"},
    {"trusted-proxies", "FILMPICKER_TRUSTED_PROXIES", S(trusted_proxies), NULL, 0, 0,
     "comma-separated addresses or networks (10.0.0.0/8) of reverse proxies whose "
     "X-Forwarded-For and X-Forwarded-Proto are believed; unset: none"},
    {"allowed-hosts", "FILMPICKER_ALLOWED_HOSTS", S(allowed_hosts), NULL, 0, 0,
     "comma-separated host names accepted in the Host header besides the listen address, "
     "the public-url host, localhost and IP addresses"},
    {"ratelimit", "FILMPICKER_RATELIMIT", S(ratelimit), NULL, 0, 0,
     "rate-limit bucket backend: inproc or redis://...; unset: the cache's Redis, else inproc"},
    {"rate-fetch-burst", "FILMPICKER_RATE_FETCH_BURST", L(rate_fetch_burst), "20", 0, 1000000,
     "lists one client address may have fetched from a watchlist site at once (a browser: "
     "half); 0: no limit"},
    {"rate-fetch-per-minute", "FILMPICKER_RATE_FETCH_PER_MINUTE", L(rate_fetch_per_min), "10", 1,
     1000000, "lists fetched per minute once the burst is spent"},
    {"rate-import-burst", "FILMPICKER_RATE_IMPORT_BURST", L(rate_import_burst), "10", 0, 1000000,
     "export uploads one client address may make at once; 0: no limit"},
    {"rate-import-per-minute", "FILMPICKER_RATE_IMPORT_PER_MINUTE", L(rate_import_per_min), "5",
     1, 1000000, "export uploads per minute once the burst is spent"},
    {"rate-session-burst", "FILMPICKER_RATE_SESSION_BURST", L(rate_session_burst), "24", 0,
     1000000, "sessions one client address may create at once; 0: no limit"},
    {"rate-session-per-minute", "FILMPICKER_RATE_SESSION_PER_MINUTE", L(rate_session_per_min),
     "12", 1, 1000000, "sessions created per minute once the burst is spent"},
    {"rate-client-burst", "FILMPICKER_RATE_CLIENT_BURST", L(rate_client_burst), "24", 0, 1000000,
     "browser ids (fp_client cookies) one client address may be issued at once; 0: no limit"},
    {"rate-client-per-minute", "FILMPICKER_RATE_CLIENT_PER_MINUTE", L(rate_client_per_min), "12",
     1, 1000000, "browser ids issued per minute once the burst is spent"},
    {"rate-job-burst", "FILMPICKER_RATE_JOB_BURST", L(rate_job_burst), "60", 0, 1000000,
     "jobs (searches, a person's list being read) one client address may start at once, "
     "stored lists or not (a browser: half); 0: no limit"},
    {"rate-job-per-minute", "FILMPICKER_RATE_JOB_PER_MINUTE", L(rate_job_per_min), "30", 1,
     1000000, "jobs started per minute once the burst is spent"},
    {"max-sessions", "FILMPICKER_MAX_SESSIONS", L(max_sessions), "5000", 1, 10000000,
     "live group sessions in all; creating more answers 503 (a live one is never dropped)"},
    {"max-sessions-per-address", "FILMPICKER_MAX_SESSIONS_PER_ADDRESS",
     L(max_sessions_per_address), "200", 1, 10000000,
     "live sessions created from one client address (an IPv6 /64); more are refused with 429"},
    {"sessions-max-mb", "FILMPICKER_SESSIONS_MAX_MB", L(sessions_max_mb), "256", 1, 1000000,
     "MiB all live sessions may hold; changes that need more answer 503"},
    {"jobs-max-mb", "FILMPICKER_JOBS_MAX_MB", L(jobs_max_mb), "256", 1, 1000000,
     "MiB of lists finished jobs may hold until job-ttl; beyond it the oldest finished "
     "jobs are dropped early"},
    {"import-max-new-films", "FILMPICKER_IMPORT_MAX_NEW_FILMS", L(import_max_new_films), "5000",
     0, 1000000,
     "films one import may add to the catalogue (films already there do not count); a file "
     "that would add more is refused with 422 too_many_new_films and nothing is stored"},
    {"catalogue-sweep-interval", "FILMPICKER_CATALOGUE_SWEEP_INTERVAL", L(catalogue_sweep_s),
     "3600", 0, 2592000,
     "seconds between sweeps of the film catalogue, which remove films no stored watchlist or "
     "watched set uses any more (0: never; `filmpicker sweep` runs one)"},
    {"catalogue-grace", "FILMPICKER_CATALOGUE_GRACE", L(catalogue_grace_s), "86400", 0, 31536000,
     "seconds a film no stored list uses is kept after a sweep first finds it unused (keep it "
     "above session-ttl, so that open sessions still show their films)"},
};
#define CFG_N (sizeof cfg_opts / sizeof cfg_opts[0])

/* http_threads 0 means one per CPU. */
static void cfg_resolve_threads(fp_config *c)
{
    if (c->http_threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        c->http_threads = n > 0 ? n : 2;
    }
}

/* "http://" or "https://", a host, then an optional port and path; no
 * spaces, control characters, query or fragment. */
static int cfg_url_ok(const char *v)
{
    const char *rest = strncmp(v, "https://", 8) == 0 ? v + 8
                       : strncmp(v, "http://", 7) == 0 ? v + 7
                                                       : NULL;
    if (!rest || !*rest || *rest == '/' || *rest == ':')
        return 0;
    for (const char *p = v; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7F || *p == '?' || *p == '#' || *p == '@' ||
            *p == '\\')
            return 0;
    return 1;
}

/* A value read from a FILMPICKER_*_FILE is a secret: errors do not echo it. */
static const char *cfg_shown(const char *from, const char *value)
{
    size_t n = strlen(from);
    return n > 5 && strcmp(from + n - 5, "_FILE") == 0 ? "(the file's content)" : value;
}

static fp_err cfg_set(fp_config *c, const cfg_opt *o, const char *value, const char *from)
{
    void *field = (char *)c + o->offset;
    if ((!value || !*value) && o->def && o->type != CFG_LONG)
        value = o->def; /* given empty: as if not given (the default) */
    if (o->type == CFG_URL && value && *value && !cfg_url_ok(value)) {
        fprintf(stderr, "filmpicker: %s: '%s' is not an http:// or https:// URL of a host\n", from,
                cfg_shown(from, value));
        return FP_INVALID;
    }
    if (o->type == CFG_STR || o->type == CFG_URL) {
        char **s = field;
        fp_free(*s);
        *s = (value && *value) ? fp_strdup(value) : NULL;
        if (*s && o->type == CFG_URL) /* "https://x/" and "https://x" are one */
            for (size_t n = strlen(*s); n > 0 && (*s)[n - 1] == '/'; n--)
                (*s)[n - 1] = '\0';
        return FP_OK;
    }
    char *end = NULL;
    errno = 0;
    long v = strtol(value ? value : "", &end, 10);
    if (!value || !*value || errno || *end || v < o->min || v > o->max) {
        fprintf(stderr, "filmpicker: %s: '%s' is not a whole number in %ld..%ld\n", from,
                cfg_shown(from, value ? value : ""), o->min, o->max);
        return FP_INVALID;
    }
    *(long *)field = v;
    return FP_OK;
}

/* FILMPICKER_X_FILE names a file holding the value of FILMPICKER_X (the
 * container convention for secrets: a database URL with its password, say,
 * mounted from a secret file instead of written in the environment). Not for
 * a setting whose X_FILE is itself a setting (secret-key-file). The value is
 * the file's content less one trailing newline; at most 64 KiB. Returns
 * FP_NOT_FOUND when the variable is not set, FP_INVALID (said on stderr)
 * when the file cannot be read. */
static fp_err cfg_env_file(const char *env, char **out)
{
    char name[128];
    snprintf(name, sizeof name, "%s_FILE", env);
    for (size_t i = 0; i < CFG_N; i++)
        if (strcmp(cfg_opts[i].env, name) == 0)
            return FP_NOT_FOUND;
    const char *path = getenv(name);
    if (!path || !*path)
        return FP_NOT_FOUND;
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "filmpicker: %s: cannot read %s: %s\n", name, path, strerror(errno));
        return FP_INVALID;
    }
    enum { MAX = 64 * 1024 };
    char *buf = fp_malloc(MAX + 1);
    size_t n = fread(buf, 1, MAX + 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || n > MAX) {
        fprintf(stderr, "filmpicker: %s: %s is %s\n", name, path,
                bad ? "unreadable" : "larger than 64 KiB");
        fp_free(buf);
        return FP_INVALID;
    }
    if (n > 0 && buf[n - 1] == '\n')
        n--;
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    buf[n] = '\0';
    if (memchr(buf, '\0', n)) {
        fprintf(stderr, "filmpicker: %s: %s holds a NUL byte\n", name, path);
        fp_free(buf);
        return FP_INVALID;
    }
    *out = buf;
    return FP_OK;
}

fp_err config_from_env(fp_config *c)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < CFG_N; i++) {
        const char *v = getenv(cfg_opts[i].env);
        char *fv = NULL;
        fp_err frc = v ? FP_NOT_FOUND : cfg_env_file(cfg_opts[i].env, &fv);
        if (frc == FP_INVALID)
            return frc;
        if (fv) {
            char from[128];
            snprintf(from, sizeof from, "%s_FILE", cfg_opts[i].env);
            fp_err rc = cfg_set(c, &cfg_opts[i], fv, from);
            fp_free(fv);
            if (rc != FP_OK)
                return rc;
        } else if (v) {
            fp_err rc = cfg_set(c, &cfg_opts[i], v, cfg_opts[i].env);
            if (rc != FP_OK)
                return rc;
        } else if (cfg_opts[i].def) {
            fp_err rc = cfg_set(c, &cfg_opts[i], cfg_opts[i].def, "default");
            if (rc != FP_OK)
                return rc;
        }
    }
    cfg_resolve_threads(c);
    return FP_OK;
}

fp_err config_apply_flags(fp_config *c, int argc, char **argv, int first, char **rest, int *nrest)
{
    *nrest = 0;
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        const cfg_opt *o = NULL;
        const char *value = NULL;
        if (strncmp(a, "--", 2) == 0 && a[2]) {
            const char *name = a + 2, *eq = strchr(name, '=');
            size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
            for (size_t k = 0; k < CFG_N; k++)
                if (strlen(cfg_opts[k].flag) == nlen && strncmp(cfg_opts[k].flag, name, nlen) == 0)
                    o = &cfg_opts[k];
            if (o) {
                if (eq)
                    value = eq + 1;
                else if (i + 1 < argc)
                    value = argv[++i];
                else {
                    fprintf(stderr, "filmpicker: --%s needs a value\n", o->flag);
                    return FP_INVALID;
                }
            }
        }
        if (!o) {
            rest[(*nrest)++] = argv[i];
            continue;
        }
        fp_err rc = cfg_set(c, o, value, a);
        if (rc != FP_OK)
            return rc;
    }
    cfg_resolve_threads(c);
    return FP_OK;
}

void config_print_help(FILE *out)
{
    fputs("Settings (flag, environment variable, default):\n", out);
    for (size_t i = 0; i < CFG_N; i++)
        fprintf(out, "  --%-20s %-30s %s\n      %s\n", cfg_opts[i].flag, cfg_opts[i].env,
                cfg_opts[i].def ? cfg_opts[i].def : "(unset)", cfg_opts[i].help);
}

void config_free(fp_config *c)
{
    for (size_t i = 0; i < CFG_N; i++)
        if (cfg_opts[i].type == CFG_STR || cfg_opts[i].type == CFG_URL) {
            char **s = (char **)((char *)c + cfg_opts[i].offset);
            FP_FREE(*s);
        }
}

const char *cfg_shared_url(const fp_config *c, const char *url)
{
    if (url && *url)
        return url;
    if (c->cache && (strncmp(c->cache, "redis://", 8) == 0 || strncmp(c->cache, "rediss://", 9) == 0))
        return c->cache;
    return "inproc";
}

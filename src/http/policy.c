/*
 * policy.c - who is asking and may they: the client address (believing
 * X-Forwarded-For only from a trusted proxy), whether the request came over
 * HTTPS, the Host allow-list that stops DNS rebinding, and the rate-limit
 * classes with their budgets.
 *
 * Host allow-list: a browser tricked by DNS rebinding sends the attacker's
 * host name (the page it loaded) to our address, so a request is accepted
 * only for names we know: the listen address, the public-url host,
 * "localhost", the allowed-hosts setting, and IP literals (an IP literal
 * cannot be rebound; listening on 0.0.0.0 means every address of the
 * machine, which we do not enumerate). The port is not compared: rebinding
 * keeps it.
 *
 * Rate limits: each class has a budget per client address and, where the
 * browser sent a valid fp_client cookie, half that budget (but at least
 * max-participants, what one group asks for at once) for the browser, so
 * two browsers behind one home router each keep some. Both buckets are
 * taken together or not at all (ratelimit.h).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/mem.h"
#include "http/guard.h"
#include "http/http_internal.h"

static const char *const policy__class_names[HTTP_RL_NCLASSES] = {"fetch", "import", "session",
                                                                  "client", "job"};

const char *http__rl_class_name(http_rl_class c)
{
    return (unsigned)c < HTTP_RL_NCLASSES ? policy__class_names[c] : "?";
}

/* ---- client address ---------------------------------------------------- */

/* Joins every X-Forwarded-For line, in order, with commas. */
static enum MHD_Result policy__xff_collect(void *cls, enum MHD_ValueKind kind, const char *key,
                                           const char *value)
{
    (void)kind;
    fp_buf *all = cls;
    if (strcasecmp(key, "X-Forwarded-For") != 0 || !value)
        return MHD_YES;
    if (fp_buf_appendf(all, "%s%s", all->len ? "," : "", value) != FP_OK)
        return MHD_NO; /* absurdly long: what was read so far is used */
    return MHD_YES;
}

/* One X-Forwarded-For entry: an address, "a.b.c.d:port" or "[v6]:port". */
static fp_err policy__parse_forwarded(const char *item, size_t len, fp_addr *out)
{
    while (len && (*item == ' ' || *item == '\t')) {
        item++;
        len--;
    }
    while (len && (item[len - 1] == ' ' || item[len - 1] == '\t'))
        len--;
    if (fp_addr_parse(item, len, out) == FP_OK)
        return FP_OK;
    const char *colon = len ? memchr(item, ':', len) : NULL;
    if (len && item[0] == '[') { /* [v6]:port */
        const char *close = memchr(item, ']', len);
        if (close && close + 1 < item + len && close[1] == ':')
            return fp_addr_parse(item, (size_t)(close - item) + 1, out);
    } else if (colon && !memchr(colon + 1, ':', (size_t)(item + len - colon - 1))) {
        return fp_addr_parse(item, (size_t)(colon - item), out); /* a.b.c.d:port */
    }
    return FP_INVALID;
}

const fp_addr *http__client_addr(http_req *r)
{
    if (r->client_known)
        return &r->client;
    r->client_known = 1;
    const fp_addr *peer = guard_conn_addr(r->gc);
    if (!peer) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (!ci || fp_addr_from_sockaddr(ci->client_addr, &r->client) != FP_OK)
            memset(&r->client, 0, sizeof r->client);
    } else {
        r->client = *peer;
    }
    if (!fp_netlist_match(r->srv->trusted, &r->client))
        return &r->client;
    /* From a trusted proxy: the right-most X-Forwarded-For entry that is not
     * itself a trusted proxy is the client (entries to its left were written
     * by the client and prove nothing). Every X-Forwarded-For line counts,
     * in order: a proxy may add its own line rather than extend one. */
    fp_buf all;
    fp_buf_init(&all, 8192);
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, policy__xff_collect, &all);
    const char *xff = all.data;
    size_t len = all.len;
    while (xff && len > 0) {
        const char *comma = NULL;
        for (size_t i = len; i > 0; i--)
            if (xff[i - 1] == ',') {
                comma = xff + i - 1;
                break;
            }
        const char *item = comma ? comma + 1 : xff;
        size_t ilen = (size_t)(xff + len - item);
        fp_addr a;
        if (policy__parse_forwarded(item, ilen, &a) != FP_OK)
            break; /* garbage: keep the last address we could trust */
        r->client = a;
        if (!fp_netlist_match(r->srv->trusted, &a))
            break;
        len = comma ? (size_t)(comma - xff) : 0;
    }
    fp_buf_free(&all);
    return &r->client;
}

/* 1 when the connection's peer is a trusted proxy. */
static int policy__from_proxy(http_req *r)
{
    const fp_addr *peer = guard_conn_addr(r->gc);
    fp_addr a;
    if (!peer) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (!ci || fp_addr_from_sockaddr(ci->client_addr, &a) != FP_OK)
            return 0;
        peer = &a;
    }
    return fp_netlist_match(r->srv->trusted, peer);
}

/* The request id a trusted proxy chose (nginx's X-Request-Id, 16 hex
 * digits), so its access log and this server's lines share one trace.id. */
void http__proxy_request_id(http_req *r)
{
    if (!policy__from_proxy(r))
        return;
    const char *id = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Request-Id");
    if (!id || strlen(id) != sizeof r->id - 1)
        return;
    for (const char *p = id; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return;
    memcpy(r->id, id, sizeof r->id);
}

int http__https(http_req *r)
{
    if (!policy__from_proxy(r))
        return 0;
    const char *p = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Forwarded-Proto");
    return p && strcasecmp(p, "https") == 0;
}

/* ---- Host allow-list ----------------------------------------------------- */

/* The host part of a Host header value ("name:port", "[v6]:port") into
 * out, lower-cased. 0 when malformed. */
static int policy__host_name(const char *host, char *out, size_t cap)
{
    size_t len;
    if (host[0] == '[') {
        const char *end = strchr(host, ']');
        if (!end || (end[1] != '\0' && end[1] != ':'))
            return 0;
        len = (size_t)(end - host) + 1;
    } else {
        const char *colon = strchr(host, ':');
        len = colon ? (size_t)(colon - host) : strlen(host);
    }
    if (len > 1 && host[0] != '[' && host[len - 1] == '.')
        len--; /* "localhost." and "name." are the same names */
    if (len == 0 || len >= cap)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)host[i];
        if (c <= 0x20 || c >= 0x7f || c == '/' || c == '\\' || c == '@')
            return 0;
        out[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    out[len] = '\0';
    const char *port = host + len;
    if (*port == '.')
        port++;
    if (*port == ':' && (port[1] == '\0' || strspn(port + 1, "0123456789") != strlen(port + 1)))
        return 0;
    if (*port != '\0' && *port != ':')
        return 0;
    return 1;
}

int http__host_allowed(const http_server *srv, const char *host)
{
    if (!host)
        return 0;
    char name[256];
    if (!policy__host_name(host, name, sizeof name))
        return 0;
    fp_addr a;
    if (fp_addr_parse(name, strlen(name), &a) == FP_OK)
        return 1;
    if (strcmp(name, "localhost") == 0)
        return 1;
    for (size_t i = 0; i < srv->nhosts; i++)
        if (strcmp(srv->hosts[i], name) == 0)
            return 1;
    return 0;
}

/* Adds the host of a URL or "host:port" to the allow-list. */
static void policy__allow(http_server *srv, const char *what)
{
    if (!what || !*what)
        return;
    const char *p = strstr(what, "://");
    p = p ? p + 3 : what;
    size_t len = strcspn(p, "/?#");
    char hostport[256];
    if (len == 0 || len >= sizeof hostport)
        return;
    memcpy(hostport, p, len);
    hostport[len] = '\0';
    char name[256];
    if (!policy__host_name(hostport, name, sizeof name))
        return;
    srv->hosts = fp_realloc(srv->hosts, (srv->nhosts + 1) * sizeof *srv->hosts);
    srv->hosts[srv->nhosts++] = fp_strdup(name);
}

fp_err http__policy_init(http_server *srv)
{
    const fp_config *cfg = srv->cfg;
    char *bad = NULL;
    fp_err rc = fp_netlist_parse(cfg->trusted_proxies, &srv->trusted, &bad);
    if (rc != FP_OK) {
        fp_log(FP_LOG_ERROR, "bad_trusted_proxies", "{s:s}", "item", bad ? bad : "");
        fp_free(bad);
        return rc;
    }
    policy__allow(srv, cfg->listen);
    policy__allow(srv, cfg->public_url);
    const char *list = cfg->allowed_hosts ? cfg->allowed_hosts : "";
    while (*list) {
        size_t len = strcspn(list, ",");
        char item[256];
        size_t a = 0;
        while (a < len && (list[a] == ' ' || list[a] == '\t'))
            a++;
        size_t b = len;
        while (b > a && (list[b - 1] == ' ' || list[b - 1] == '\t'))
            b--;
        if (b - a >= sizeof item) {
            fp_log(FP_LOG_ERROR, "bad_allowed_hosts", "{s:s}", "reason", "a name is too long");
            return FP_INVALID;
        }
        if (b > a) {
            memcpy(item, list + a, b - a);
            item[b - a] = '\0';
            size_t before = srv->nhosts;
            policy__allow(srv, item);
            if (srv->nhosts == before) {
                fp_log(FP_LOG_ERROR, "bad_allowed_hosts", "{s:s}", "item", item);
                return FP_INVALID;
            }
        }
        list += len + (list[len] == ',');
    }
    const char *rl_url = cfg_shared_url(cfg, cfg->ratelimit);
    srv->rlb = ratelimit_backend_for(rl_url);
    if (!srv->rlb) {
        fp_log(FP_LOG_ERROR, "unknown_ratelimit_backend", "{s:s}", "ratelimit",
               rl_url);
        return FP_INVALID;
    }
    rc = srv->rlb->open(rl_url, &srv->rl);
    if (rc != FP_OK)
        return rc;
    const long burst[HTTP_RL_NCLASSES] = {cfg->rate_fetch_burst, cfg->rate_import_burst,
                                          cfg->rate_session_burst, cfg->rate_client_burst,
                                          cfg->rate_job_burst};
    const long per_min[HTTP_RL_NCLASSES] = {cfg->rate_fetch_per_min, cfg->rate_import_per_min,
                                            cfg->rate_session_per_min,
                                            cfg->rate_client_per_min, cfg->rate_job_per_min};
    for (int c = 0; c < HTTP_RL_NCLASSES; c++) {
        srv->rl_burst[c] = (double)burst[c];
        srv->rl_per_s[c] = (double)per_min[c] / 60.0;
    }
    return FP_OK;
}

void http__policy_free(http_server *srv)
{
    for (size_t i = 0; i < srv->nhosts; i++)
        fp_free(srv->hosts[i]);
    FP_FREE(srv->hosts);
    srv->nhosts = 0;
    fp_netlist_free(&srv->trusted);
    if (srv->rl)
        srv->rlb->close(srv->rl);
    srv->rl = NULL;
}

/* ---- rate limits ----------------------------------------------------------- */

static long long policy__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Adds the address's and (with client_id) the browser's asks for class c. */
static size_t policy__asks(http_req *r, http_rl_class c, const char *client_id, double cost,
                           rl_ask *asks)
{
    http_server *srv = r->srv;
    double burst = srv->rl_burst[c], per_s = srv->rl_per_s[c];
    if (burst <= 0 || cost <= 0)
        return 0;
    size_t n = 0;
    /* the address's bucket: class byte, 'a', 16 address bytes (an IPv6 /64) */
    fp_addr key = fp_addr_limit_key(http__client_addr(r));
    memset(&asks[0], 0, sizeof asks[0]);
    asks[0].key[0] = (uint8_t)c;
    asks[0].key[1] = 'a';
    memcpy(asks[0].key + 2, key.b, sizeof key.b);
    asks[0].klen = 2 + sizeof key.b;
    asks[0].burst = burst;
    asks[0].per_s = per_s;
    /* A request the server allows (16 people, say) may spend a whole
     * bucket, but is never refused for good because it is larger. */
    asks[0].cost = cost < burst ? cost : burst;
    n++;
    size_t idlen = client_id ? strlen(client_id) : 0;
    if (idlen > 0 && idlen <= RL_KEY_MAX - 2) {
        memset(&asks[1], 0, sizeof asks[1]);
        asks[1].key[0] = (uint8_t)c;
        asks[1].key[1] = 'c';
        memcpy(asks[1].key + 2, client_id, idlen);
        asks[1].klen = 2 + idlen;
        /* half the address's budget, but never less than a group of
         * max-participants asks for at once (16 people added by one phone) */
        double half = burst / 2, group = (double)srv->cfg->max_participants;
        asks[1].burst = half > group ? half : (group < burst ? group : burst);
        asks[1].per_s = per_s;
        asks[1].cost = cost < asks[1].burst ? cost : asks[1].burst;
        n++;
    }
    return n;
}

static fp_err policy__take(http_req *r, const rl_ask *asks, size_t n, long long *retry_ms,
                           size_t *limiting)
{
    if (n == 0)
        return FP_OK;
    fp_err rc = r->srv->rlb->take(r->srv->rl, asks, n, policy__now_ms(), retry_ms, limiting);
    if (rc != FP_OK && rc != FP_RATE_LIMITED) {
        fp_log(FP_LOG_ERROR, "ratelimit_failed", "{s:s}", "error", fp_err_code(rc));
        rc = FP_OK; /* a broken limiter must not lock everyone out */
    }
    return rc;
}

fp_err http__rate_take(http_req *r, http_rl_class c, const char *client_id, double cost,
                       long long *retry_ms)
{
    *retry_ms = 0;
    rl_ask asks[2];
    size_t n = policy__asks(r, c, client_id, cost, asks);
    fp_err rc = policy__take(r, asks, n, retry_ms, NULL);
    if (rc == FP_RATE_LIMITED)
        atomic_fetch_add(&r->srv->rl_refused[c], 1);
    return rc;
}

fp_err http__rate_take_job(http_req *r, const char *client_id, double fetches,
                           long long *retry_ms, http_rl_class *refused)
{
    *retry_ms = 0;
    *refused = HTTP_RL_JOB;
    rl_ask asks[4];
    size_t nj = policy__asks(r, HTTP_RL_JOB, client_id, 1, asks);
    size_t nf = policy__asks(r, HTTP_RL_FETCH, client_id, fetches, asks + nj);
    size_t limiting = 0;
    fp_err rc = policy__take(r, asks, nj + nf, retry_ms, &limiting);
    if (rc == FP_RATE_LIMITED) {
        *refused = limiting >= nj ? HTTP_RL_FETCH : HTTP_RL_JOB;
        atomic_fetch_add(&r->srv->rl_refused[*refused], 1);
    }
    return rc;
}

enum MHD_Result http__rate_limited(http_req *r, http_rl_class c, long long retry_ms)
{
    static const char *const what[HTTP_RL_NCLASSES] = {
        "too many watchlists fetched from this address or browser",
        "too many uploads from this address",
        "too many sessions created from this address or browser",
        "too many new browsers from this address",
        "too many searches started from this address or browser",
    };
    long secs = retry_ms < 0 ? 3600 : (long)((retry_ms + 999) / 1000);
    if (secs < 1)
        secs = 1;
    r->retry_after_s = secs;
    char *msg = fp_printf("%s; try again in %ld s", what[c], secs);
    enum MHD_Result res = http__error(r, FP_RATE_LIMITED, msg, NULL);
    fp_free(msg);
    return res;
}

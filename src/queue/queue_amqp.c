/*
 * queue_amqp.c - the job queue on RabbitMQ (rabbitmq-c), for several API
 * instances and worker processes. URL: amqp://USER:PASS@HOST:PORT/VHOST or
 * amqps://... (TLS, the peer and host name verified), with an optional query
 * ?queue=NAME (default filmpicker.fetch), &delivery-limit=N (default 10),
 * &cacert=PATH (amqps only). An empty vhost ("amqp://h:5672/") means "/".
 *
 * Topology, declared again on every connection (so a broker that lost it, or
 * a first start, gets it back), all on the default exchange:
 *
 *   NAME              quorum queue, durable; x-delivery-limit N (the broker
 *                     dead-letters a job whose consumers died N times: a job
 *                     that crashes its worker); x-dead-letter-exchange "" with
 *                     routing key NAME.dead.
 *   NAME.retry.<ms>   one quorum queue per backoff delay, x-message-ttl <ms>,
 *                     dead-lettering (at-least-once, with reject-publish
 *                     overflow as quorum queues need for it) back into NAME.
 *                     Declared by a consumer when it first needs that delay.
 *   NAME.dead         quorum queue, durable: jobs given up, never consumed by
 *                     FilmPicker (docs/operations.md: how to look and replay).
 *
 * A queue per delay (rather than a per-message expiration on one retry
 * queue) because RabbitMQ expires messages only at the head of a queue: a
 * 60 s retry in front would hold back a 1 s one behind it. With one delay per
 * queue every message behind the head expires later than the head.
 *
 * Messages: the body is the payload, delivery_mode 2 (persistent), a
 * message_id kept across retries, app_id "filmpicker", and headers
 * x-fp-attempt (the run number this copy starts at; absent: 1),
 * x-fp-reason (the last verdict's reason), and on dead letters
 * x-fp-attempts (runs made) and x-fp-verdict ("give-up" or
 * "retries-exhausted"). The attempt a handler sees is x-fp-attempt plus the
 * quorum queue's x-delivery-count (deliveries of this copy that ended with
 * no answer).
 *
 * Flow: submit hands the message to the publisher thread, which owns one
 * connection (channel 1 in confirm mode, mandatory publishes) and pipelines
 * every submitter's message on it; each submit waits for its own confirm,
 * at most submit_timeout_ms. A consumer thread owns its own connection
 * (rabbitmq-c connections are not thread-safe) with basic.qos prefetch and
 * manual acknowledgement, and runs the handler itself. DONE: basic.ack.
 * RETRY: publish a copy to NAME.retry.<backoff> with x-fp-attempt + 1, wait
 * for its confirm, then ack. GIVE_UP or out of attempts: publish a copy to
 * NAME.dead with the reason, wait for its confirm, then ack. So a job is
 * always in some queue until its acknowledgement; a consumer that dies (or
 * loses its connection) mid-job leaves it unacknowledged and the broker
 * delivers it again, flagged redelivered.
 *
 * Reconnection: any connection that fails is dropped and opened again with
 * backoff (100 ms doubling to 5 s); connections use no AMQP heartbeat (a
 * consumer runs its handler on the connection's thread, which would miss
 * them during a long fetch) but TCP keepalive. While the publisher has no
 * connection, submits wait for it up to their timeout; once it has been down
 * longer than that, submits fail at once with FP_UNAVAILABLE.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <amqp.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>

#include "core/log.h"
#include "core/mem.h"
#include "queue/queue.h"

#define QA_NAME_MAX 100             /* bytes of the queue name from the URL */
#define QA_MAX_BODY (1024 * 1024)   /* largest payload */
#define QA_IO_TIMEOUT_MS 5000       /* connect, login and every RPC */
#define QA_BACKOFF_MIN_MS 100       /* reconnection backoff */
#define QA_BACKOFF_MAX_MS 5000
#define QA_DEPTH_EVERY_MS 1000      /* how often the publisher reads the queue depth */
#define QA_CONSUMER_TICK_MS 200     /* how soon a consumer notices close */
#define QA_MAX_DELAYS 32            /* retry queues one connection remembers declaring */

enum { QA_OUT, QA_INFLIGHT, QA_DONE };

/* One submit, from its caller to the broker's confirm. */
typedef struct qa_pub {
    struct qa_pub *next;
    pthread_cond_t cv;
    int state;     /* QA_OUT, QA_INFLIGHT, QA_DONE; under q->mu */
    int abandoned; /* the submitter timed out while in flight: the publisher frees it */
    int returned;  /* the broker could not route it */
    fp_err result;
    uint64_t seq;  /* publish sequence number on the publisher's channel */
    long long t0_us;
    char msgid[64];
    size_t len;
    char *payload;
} qa_pub;

/* One connection and what was declared on it. */
typedef struct qa_conn {
    amqp_connection_state_t c;
    uint64_t seq; /* publishes so far on channel 1 (confirm sequence) */
    int broken;
    long delays[QA_MAX_DELAYS]; /* retry queues declared on this connection */
    size_t ndelays;
} qa_conn;

/* A delivery a consumer holds. */
typedef struct qa_msg {
    struct qa_msg *next;
    uint64_t tag;
    int redelivered;
    int attempt;
    char msgid[64];
    size_t len;
    char *body; /* NUL-terminated copy */
} qa_msg;

typedef struct qa_consumer {
    queue *q;
    long index;
    pthread_t th;
    int started;
    qa_conn k;
    qa_msg *head, *tail;
    uint64_t wait_seq; /* the republish whose confirm is awaited (0: none) */
    int wait_result;   /* 0 pending, 1 confirmed, -1 refused or unroutable */
} qa_consumer;

struct queue {
    /* configuration */
    char *url_buf; /* the URL without its query; ci points into it */
    struct amqp_connection_info ci;
    char *cacert;
    char main[QA_NAME_MAX + 1];
    char dead[QA_NAME_MAX + 8];
    long delivery_limit;
    queue_opts opts;
    queue_handler_fn handler;
    void *ctx;

    pthread_mutex_t mu;
    pthread_cond_t cv; /* close wakes threads sleeping in a backoff */
    int closing;
    qa_pub *out_head, *out_tail; /* waiting to be published */
    qa_pub *in_head, *in_tail;   /* published, waiting for a confirm (by seq) */
    int pub_up;                  /* the publisher has a connection */
    long cons_up;                /* consumers connected and consuming */
    long long pub_down_since_ms; /* when it lost it (or open, if it never had one) */
    unsigned long long msg_counter;
    queue_stats st; /* st.queued is the broker's count */
    int wake_fd;    /* eventfd: wakes the publisher for new submits and close */

    pthread_t pub_th;
    int pub_started;
    qa_consumer *cons;
    long ncons;
};

static long long qa__mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static long long qa__mono_ms(void)
{
    return qa__mono_us() / 1000;
}

static struct timespec qa__deadline(long ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

static void qa__cond_init(pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
}

/* Sleeps up to ms unless close starts. Called with q->mu held. */
static void qa__nap(queue *q, long ms)
{
    struct timespec ts = qa__deadline(ms);
    while (!q->closing && pthread_cond_timedwait(&q->cv, &q->mu, &ts) != ETIMEDOUT)
        ;
}

static void qa__wake(queue *q)
{
    uint64_t one = 1;
    ssize_t n = write(q->wake_fd, &one, sizeof one);
    (void)n; /* a full counter already wakes the publisher */
}

/* ---- URL ---------------------------------------------------------------- */

static int qa_accepts(const char *url)
{
    return url && (strncmp(url, "amqp://", 7) == 0 || strncmp(url, "amqps://", 8) == 0);
}

static int qa__name_ok(const char *s, size_t n)
{
    if (n == 0 || n > QA_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

/* Reads the query (k=v&k=v) into q. */
static fp_err qa__parse_query(queue *q, const char *query)
{
    while (*query) {
        const char *amp = strchr(query, '&');
        size_t n = amp ? (size_t)(amp - query) : strlen(query);
        const char *eq = memchr(query, '=', n);
        if (!eq)
            return FP_INVALID;
        size_t kn = (size_t)(eq - query), vn = n - kn - 1;
        const char *v = eq + 1;
        if (kn == 5 && memcmp(query, "queue", 5) == 0) {
            if (!qa__name_ok(v, vn))
                return FP_INVALID;
            memcpy(q->main, v, vn);
            q->main[vn] = '\0';
        } else if (kn == 14 && memcmp(query, "delivery-limit", 14) == 0) {
            char tmp[16];
            if (vn == 0 || vn >= sizeof tmp)
                return FP_INVALID;
            memcpy(tmp, v, vn);
            tmp[vn] = '\0';
            char *end = NULL;
            long l = strtol(tmp, &end, 10);
            if (*end || l < 1 || l > 1000)
                return FP_INVALID;
            q->delivery_limit = l;
        } else if (kn == 6 && memcmp(query, "cacert", 6) == 0 && vn > 0) {
            fp_free(q->cacert);
            q->cacert = fp_strndup(v, vn);
        } else {
            return FP_INVALID;
        }
        query += n + (amp ? 1 : 0);
    }
    return FP_OK;
}

static fp_err qa__parse_url(queue *q, const char *url)
{
    snprintf(q->main, sizeof q->main, "filmpicker.fetch");
    q->delivery_limit = 10;
    const char *qm = strchr(url, '?');
    q->url_buf = qm ? fp_strndup(url, (size_t)(qm - url)) : fp_strdup(url);
    if (qm) {
        fp_err rc = qa__parse_query(q, qm + 1);
        if (rc != FP_OK)
            return rc;
    }
    amqp_default_connection_info(&q->ci);
    if (amqp_parse_url(q->url_buf, &q->ci) != AMQP_STATUS_OK)
        return FP_INVALID;
    if (!q->ci.vhost || !q->ci.vhost[0])
        q->ci.vhost = "/";
    snprintf(q->dead, sizeof q->dead, "%s.dead", q->main);
    return FP_OK;
}

/* ---- connections -------------------------------------------------------- */

static fp_err qa__reply_check(amqp_rpc_reply_t r, const char *role, const char *what)
{
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return FP_OK;
    char text[200] = "";
    int code = 0;
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION) {
        snprintf(text, sizeof text, "%s", amqp_error_string2(r.library_error));
    } else if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.decoded) {
        amqp_bytes_t t = {0, NULL};
        if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            amqp_channel_close_t *m = r.reply.decoded;
            code = m->reply_code;
            t = m->reply_text;
        } else if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            amqp_connection_close_t *m = r.reply.decoded;
            code = m->reply_code;
            t = m->reply_text;
        }
        snprintf(text, sizeof text, "%.*s", (int)(t.len < 190 ? t.len : 190),
                 t.bytes ? (const char *)t.bytes : "");
    } else {
        snprintf(text, sizeof text, "no reply");
    }
    fp_log(FP_LOG_WARN, "queue_amqp_error", "{s:s,s:s,s:i,s:s}", "role", role, "op", what,
           "code", code, "message", text);
    return FP_UNAVAILABLE;
}

static amqp_table_entry_t qa__str(const char *k, const char *v)
{
    amqp_table_entry_t e;
    memset(&e, 0, sizeof e);
    e.key = amqp_cstring_bytes(k);
    e.value.kind = AMQP_FIELD_KIND_UTF8;
    e.value.value.bytes = amqp_cstring_bytes(v);
    return e;
}

static amqp_table_entry_t qa__int(const char *k, int64_t v)
{
    amqp_table_entry_t e;
    memset(&e, 0, sizeof e);
    e.key = amqp_cstring_bytes(k);
    e.value.kind = AMQP_FIELD_KIND_I64;
    e.value.value.i64 = v;
    return e;
}

static fp_err qa__declare(qa_conn *k, const char *name, amqp_table_entry_t *args, int n,
                          const char *role)
{
    amqp_table_t t = {n, args};
    amqp_queue_declare(k->c, 1, amqp_cstring_bytes(name), 0, 1, 0, 0, t);
    fp_err rc = qa__reply_check(amqp_get_rpc_reply(k->c), role, name);
    if (rc != FP_OK)
        k->broken = 1;
    return rc;
}

static fp_err qa__declare_topology(queue *q, qa_conn *k, const char *role)
{
    amqp_table_entry_t main_args[] = {
        qa__str("x-queue-type", "quorum"),
        qa__int("x-delivery-limit", q->delivery_limit),
        qa__str("x-dead-letter-exchange", ""),
        qa__str("x-dead-letter-routing-key", q->dead),
    };
    amqp_table_entry_t dead_args[] = {qa__str("x-queue-type", "quorum")};
    fp_err rc = qa__declare(k, q->main, main_args, 4, role);
    if (rc == FP_OK)
        rc = qa__declare(k, q->dead, dead_args, 1, role);
    return rc;
}

/* The retry queue for delay ms, declared on k when it was not yet. */
static fp_err qa__retry_queue(queue *q, qa_conn *k, long ms, char *name, size_t size)
{
    snprintf(name, size, "%s.retry.%ld", q->main, ms);
    for (size_t i = 0; i < k->ndelays; i++)
        if (k->delays[i] == ms)
            return FP_OK;
    amqp_table_entry_t args[] = {
        qa__str("x-queue-type", "quorum"),
        qa__int("x-message-ttl", ms),
        qa__str("x-dead-letter-exchange", ""),
        qa__str("x-dead-letter-routing-key", q->main),
        qa__str("x-dead-letter-strategy", "at-least-once"),
        qa__str("x-overflow", "reject-publish"),
    };
    fp_err rc = qa__declare(k, name, args, 6, "consumer");
    if (rc == FP_OK && k->ndelays < QA_MAX_DELAYS)
        k->delays[k->ndelays++] = ms;
    return rc;
}

static void qa__disconnect(qa_conn *k)
{
    if (!k->c)
        return;
    if (!k->broken) {
        amqp_channel_close(k->c, 1, AMQP_REPLY_SUCCESS);
        amqp_connection_close(k->c, AMQP_REPLY_SUCCESS);
    }
    amqp_destroy_connection(k->c);
    memset(k, 0, sizeof *k);
}

/* Opens a connection with channel 1 in confirm mode and the topology
 * declared. Logs a failure only when *logged_down is 0 (once per outage). */
static fp_err qa__connect(queue *q, qa_conn *k, const char *role, int *logged_down)
{
    memset(k, 0, sizeof *k);
    fp_err rc = FP_UNAVAILABLE;
    const char *why = "socket";
    struct timeval tv = {QA_IO_TIMEOUT_MS / 1000, (QA_IO_TIMEOUT_MS % 1000) * 1000};
    k->c = amqp_new_connection();
    amqp_socket_t *sock = q->ci.ssl ? amqp_ssl_socket_new(k->c) : amqp_tcp_socket_new(k->c);
    if (!sock)
        goto out;
    if (q->ci.ssl) {
        amqp_ssl_socket_set_verify_peer(sock, 1);
        amqp_ssl_socket_set_verify_hostname(sock, 1);
        if (q->cacert && amqp_ssl_socket_set_cacert(sock, q->cacert) != AMQP_STATUS_OK) {
            why = "cacert";
            goto out;
        }
    }
    why = "connect";
    if (amqp_socket_open_noblock(sock, q->ci.host, q->ci.port, &tv) != AMQP_STATUS_OK)
        goto out;
    int on = 1;
    setsockopt(amqp_get_sockfd(k->c), SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
    amqp_set_handshake_timeout(k->c, &tv);
    amqp_set_rpc_timeout(k->c, &tv);
    why = "login";
    amqp_rpc_reply_t lr = amqp_login(k->c, q->ci.vhost, 0, 131072, 0, AMQP_SASL_METHOD_PLAIN,
                                     q->ci.user, q->ci.password);
    if (lr.reply_type != AMQP_RESPONSE_NORMAL) {
        if (!*logged_down) /* e.g. ACCESS_REFUSED: a wrong password or vhost */
            qa__reply_check(lr, role, "login");
        goto out;
    }
    why = "channel";
    amqp_channel_open(k->c, 1);
    if (qa__reply_check(amqp_get_rpc_reply(k->c), role, "channel.open") != FP_OK)
        goto out;
    amqp_confirm_select(k->c, 1);
    if (qa__reply_check(amqp_get_rpc_reply(k->c), role, "confirm.select") != FP_OK)
        goto out;
    why = "declare";
    rc = qa__declare_topology(q, k, role);
out:
    if (rc != FP_OK) {
        if (!*logged_down)
            fp_log(FP_LOG_WARN, "queue_broker_unavailable", "{s:s,s:s,s:s,s:i}", "role", role,
                   "step", why, "host", q->ci.host, "port", q->ci.port);
        *logged_down = 1;
        k->broken = 1;
        qa__disconnect(k);
    } else {
        if (*logged_down)
            fp_log(FP_LOG_INFO, "queue_broker_connected", "{s:s,s:s,s:i}", "role", role, "host",
                   q->ci.host, "port", q->ci.port);
        *logged_down = 0;
    }
    return rc;
}

/* Publishes one persistent, mandatory message on channel 1 to queue rkey
 * through the default exchange. Returns its confirm sequence number, 0 when
 * the connection failed (k->broken is then set). */
static uint64_t qa__publish(qa_conn *k, const char *rkey, const char *msgid, const void *body,
                            size_t len, amqp_table_entry_t *hdrs, int nhdrs)
{
    amqp_basic_properties_t p;
    memset(&p, 0, sizeof p);
    p._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG |
               AMQP_BASIC_TIMESTAMP_FLAG | AMQP_BASIC_APP_ID_FLAG;
    p.delivery_mode = AMQP_DELIVERY_PERSISTENT;
    p.message_id = amqp_cstring_bytes(msgid);
    p.timestamp = (uint64_t)time(NULL);
    p.app_id = amqp_cstring_bytes("filmpicker");
    if (nhdrs > 0) {
        p._flags |= AMQP_BASIC_HEADERS_FLAG;
        p.headers.num_entries = nhdrs;
        p.headers.entries = hdrs;
    }
    amqp_bytes_t b = {len, (void *)body};
    if (amqp_basic_publish(k->c, 1, amqp_cstring_bytes(""), amqp_cstring_bytes(rkey), 1, 0, &p,
                           b) != AMQP_STATUS_OK) {
        k->broken = 1;
        return 0;
    }
    return ++k->seq;
}

static int qa__header_int(const amqp_table_t *t, const char *key, long long *out)
{
    size_t kl = strlen(key);
    for (int i = 0; i < t->num_entries; i++) {
        const amqp_table_entry_t *e = &t->entries[i];
        if (e->key.len != kl || memcmp(e->key.bytes, key, kl) != 0)
            continue;
        const amqp_field_value_t *v = &e->value;
        switch (v->kind) {
        case AMQP_FIELD_KIND_I8: *out = v->value.i8; return 1;
        case AMQP_FIELD_KIND_U8: *out = v->value.u8; return 1;
        case AMQP_FIELD_KIND_I16: *out = v->value.i16; return 1;
        case AMQP_FIELD_KIND_U16: *out = v->value.u16; return 1;
        case AMQP_FIELD_KIND_I32: *out = v->value.i32; return 1;
        case AMQP_FIELD_KIND_U32: *out = v->value.u32; return 1;
        case AMQP_FIELD_KIND_I64: *out = v->value.i64; return 1;
        case AMQP_FIELD_KIND_U64: *out = (long long)v->value.u64; return 1;
        default: return 0;
        }
    }
    return 0;
}

/* Reads the content of a message announced by a basic.deliver or
 * basic.return frame. 0 on success (caller destroys m). */
static int qa__read_message(qa_conn *k, amqp_channel_t ch, amqp_message_t *m)
{
    amqp_rpc_reply_t r = amqp_read_message(k->c, ch, m, 0);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        k->broken = 1;
        return -1;
    }
    return 0;
}

static void qa__msgid_of(const amqp_message_t *m, char *out, size_t size)
{
    out[0] = '\0';
    if (m->properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG) {
        size_t n = m->properties.message_id.len < size - 1 ? m->properties.message_id.len
                                                           : size - 1;
        memcpy(out, m->properties.message_id.bytes, n);
        out[n] = '\0';
    }
}

/* A frame that ends the channel or connection: logs it, marks k broken. */
static int qa__closing_frame(const amqp_frame_t *f, qa_conn *k, const char *role)
{
    if (f->frame_type != AMQP_FRAME_METHOD)
        return 0;
    amqp_method_number_t id = f->payload.method.id;
    if (id != AMQP_CHANNEL_CLOSE_METHOD && id != AMQP_CONNECTION_CLOSE_METHOD &&
        id != AMQP_BASIC_CANCEL_METHOD)
        return 0;
    amqp_rpc_reply_t r;
    memset(&r, 0, sizeof r);
    r.reply_type = AMQP_RESPONSE_SERVER_EXCEPTION;
    r.reply = f->payload.method;
    if (id == AMQP_BASIC_CANCEL_METHOD)
        fp_log(FP_LOG_WARN, "queue_amqp_error", "{s:s,s:s}", "role", role, "op",
               "consumer cancelled by the broker");
    else
        qa__reply_check(r, role, "closed by the broker");
    k->broken = 1;
    return 1;
}

/* ---- publisher ---------------------------------------------------------- */

/* Under q->mu: settles one submit. */
static void qa__finish(queue *q, qa_pub *r, fp_err result)
{
    if (r->returned)
        result = FP_UNAVAILABLE;
    r->state = QA_DONE;
    r->result = result;
    if (r->abandoned) { /* already counted as failed by its submitter */
        pthread_cond_destroy(&r->cv);
        fp_free(r->payload);
        fp_free(r);
        return;
    }
    if (result == FP_OK) {
        uint64_t us = (uint64_t)(qa__mono_us() - r->t0_us);
        q->st.published++;
        q->st.confirm_us_sum += us;
        if (us > q->st.confirm_us_max)
            q->st.confirm_us_max = us;
    } else {
        q->st.publish_failed++;
    }
    pthread_cond_signal(&r->cv);
}

/* Under q->mu: settles the in-flight submits a basic.ack/nack covers. */
static void qa__settle(queue *q, uint64_t tag, int multiple, fp_err result)
{
    qa_pub *prev = NULL, *r = q->in_head;
    while (r && r->seq <= tag) {
        qa_pub *next = r->next;
        if (r->seq == tag || multiple) {
            if (prev)
                prev->next = next;
            else
                q->in_head = next;
            if (q->in_tail == r)
                q->in_tail = prev;
            qa__finish(q, r, result);
        } else {
            prev = r;
        }
        r = next;
    }
}

/* Under q->mu: every in-flight submit fails (the connection is gone). */
static void qa__fail_inflight(queue *q)
{
    while (q->in_head) {
        qa_pub *r = q->in_head;
        q->in_head = r->next;
        qa__finish(q, r, FP_UNAVAILABLE);
    }
    q->in_tail = NULL;
}

static void qa__pub_frame(queue *q, qa_conn *k, const amqp_frame_t *f)
{
    if (qa__closing_frame(f, k, "publisher") || f->frame_type != AMQP_FRAME_METHOD)
        return;
    if (f->payload.method.id == AMQP_BASIC_ACK_METHOD) {
        amqp_basic_ack_t *a = f->payload.method.decoded;
        pthread_mutex_lock(&q->mu);
        qa__settle(q, a->delivery_tag, a->multiple, FP_OK);
        pthread_mutex_unlock(&q->mu);
    } else if (f->payload.method.id == AMQP_BASIC_NACK_METHOD) {
        amqp_basic_nack_t *a = f->payload.method.decoded;
        pthread_mutex_lock(&q->mu);
        qa__settle(q, a->delivery_tag, a->multiple, FP_UNAVAILABLE);
        pthread_mutex_unlock(&q->mu);
    } else if (f->payload.method.id == AMQP_BASIC_RETURN_METHOD) {
        /* Unroutable (the queue was deleted): the ack that follows must fail
         * it, and the topology is declared again on a new connection. */
        amqp_message_t m;
        if (qa__read_message(k, f->channel, &m) != 0)
            return;
        char id[64];
        qa__msgid_of(&m, id, sizeof id);
        amqp_destroy_message(&m);
        pthread_mutex_lock(&q->mu);
        for (qa_pub *r = q->in_head; r; r = r->next)
            if (strcmp(r->msgid, id) == 0)
                r->returned = 1;
        pthread_mutex_unlock(&q->mu);
        fp_log(FP_LOG_ERROR, "queue_publish_unroutable", "{s:s}", "queue", q->main);
        k->broken = 1;
    }
}

/* Handles the frames that arrive within timeout_ms, returning early when a
 * submit wakes the publisher. */
static void qa__pub_pump(queue *q, qa_conn *k, int timeout_ms)
{
    for (int handled = 0; !k->broken;) {
        if (!amqp_frames_enqueued(k->c) && !amqp_data_in_buffer(k->c)) {
            if (handled)
                break; /* back to publishing what came meanwhile */
            struct pollfd p[2] = {{amqp_get_sockfd(k->c), POLLIN, 0}, {q->wake_fd, POLLIN, 0}};
            if (poll(p, 2, timeout_ms) <= 0)
                break;
            if (p[1].revents & POLLIN) {
                uint64_t v;
                ssize_t n = read(q->wake_fd, &v, sizeof v);
                (void)n;
            }
            if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
                break;
        }
        amqp_frame_t f;
        struct timeval zero = {0, 0};
        int rc = amqp_simple_wait_frame_noblock(k->c, &f, &zero);
        if (rc == AMQP_STATUS_TIMEOUT)
            break; /* part of a frame so far */
        if (rc != AMQP_STATUS_OK) {
            k->broken = 1;
            break;
        }
        handled = 1;
        qa__pub_frame(q, k, &f);
    }
    if (!amqp_frames_enqueued(k->c))
        amqp_maybe_release_buffers(k->c);
}

/* The broker's count of ready messages in the main queue (passive declare). */
static void qa__refresh_depth(queue *q, qa_conn *k)
{
    amqp_queue_declare_ok_t *ok = amqp_queue_declare(k->c, 1, amqp_cstring_bytes(q->main), 1, 0,
                                                     0, 0, amqp_empty_table);
    if (qa__reply_check(amqp_get_rpc_reply(k->c), "publisher", "depth") != FP_OK || !ok) {
        k->broken = 1;
        return;
    }
    pthread_mutex_lock(&q->mu);
    q->st.queued = ok->message_count;
    pthread_mutex_unlock(&q->mu);
}

static void *qa__publisher(void *arg)
{
    queue *q = arg;
    qa_conn k;
    memset(&k, 0, sizeof k);
    long backoff = QA_BACKOFF_MIN_MS;
    long long next_depth = 0;
    int logged_down = 0;
    pthread_mutex_lock(&q->mu);
    while (!q->closing) {
        if (!k.c) {
            pthread_mutex_unlock(&q->mu);
            fp_err rc = qa__connect(q, &k, "publisher", &logged_down);
            pthread_mutex_lock(&q->mu);
            if (rc != FP_OK) {
                qa__nap(q, backoff);
                backoff = backoff * 2 > QA_BACKOFF_MAX_MS ? QA_BACKOFF_MAX_MS : backoff * 2;
                continue;
            }
            backoff = QA_BACKOFF_MIN_MS;
            q->pub_up = 1;
            next_depth = 0;
        }
        /* Everything waiting becomes in flight, then goes out unlocked: only
         * this thread settles in-flight submits, and a submitter that times
         * out meanwhile only marks its record abandoned. */
        qa_pub *batch = q->out_head;
        for (qa_pub *r = batch; r; r = r->next) {
            r->state = QA_INFLIGHT;
            r->seq = 0; /* set once published */
        }
        if (batch) {
            if (q->in_tail)
                q->in_tail->next = batch;
            else
                q->in_head = batch;
            q->in_tail = q->out_tail;
        }
        q->out_head = q->out_tail = NULL;
        pthread_mutex_unlock(&q->mu);

        for (qa_pub *r = batch; r && !k.broken; r = r->next)
            r->seq = qa__publish(&k, q->main, r->msgid, r->payload, r->len, NULL, 0);
        if (!k.broken && qa__mono_ms() >= next_depth) {
            qa__refresh_depth(q, &k);
            next_depth = qa__mono_ms() + QA_DEPTH_EVERY_MS;
        }
        if (!k.broken) {
            pthread_mutex_lock(&q->mu);
            int waiting = q->in_head != NULL;
            pthread_mutex_unlock(&q->mu);
            qa__pub_pump(q, &k, waiting ? 20 : 100);
        }

        pthread_mutex_lock(&q->mu);
        if (k.broken) {
            qa__fail_inflight(q);
            q->pub_up = 0;
            q->pub_down_since_ms = qa__mono_ms();
            pthread_mutex_unlock(&q->mu);
            qa__disconnect(&k);
            pthread_mutex_lock(&q->mu);
        }
    }
    qa__fail_inflight(q);
    q->pub_up = 0;
    pthread_mutex_unlock(&q->mu);
    qa__disconnect(&k);
    return NULL;
}

static fp_err qa_submit(queue *q, const char *payload, size_t len)
{
    if (len > QA_MAX_BODY)
        return FP_TOO_LARGE;
    qa_pub *r = fp_calloc(1, sizeof *r);
    qa__cond_init(&r->cv);
    r->payload = fp_malloc(len ? len : 1);
    memcpy(r->payload, payload, len);
    r->len = len;
    r->t0_us = qa__mono_us();
    struct timespec deadline = qa__deadline(q->opts.submit_timeout_ms);
    fp_err rc = FP_UNAVAILABLE;

    pthread_mutex_lock(&q->mu);
    snprintf(r->msgid, sizeof r->msgid, "fp-%ld-%lld-%llu", (long)getpid(), r->t0_us,
             ++q->msg_counter);
    /* A broker away for longer than a submit may wait: fail at once rather
     * than hold every caller for the whole timeout. */
    if (q->closing || (!q->pub_up && qa__mono_ms() - q->pub_down_since_ms >
                                          q->opts.submit_timeout_ms)) {
        q->st.publish_failed++;
        goto out_locked;
    }
    r->state = QA_OUT;
    if (q->out_tail)
        q->out_tail->next = r;
    else
        q->out_head = r;
    q->out_tail = r;
    pthread_mutex_unlock(&q->mu);
    qa__wake(q);
    pthread_mutex_lock(&q->mu);
    while (r->state != QA_DONE)
        if (pthread_cond_timedwait(&r->cv, &q->mu, &deadline) == ETIMEDOUT)
            break;
    if (r->state == QA_DONE) {
        rc = r->result;
    } else if (r->state == QA_OUT) {
        qa_pub *prev = NULL;
        for (qa_pub *x = q->out_head; x; prev = x, x = x->next)
            if (x == r) {
                if (prev)
                    prev->next = r->next;
                else
                    q->out_head = r->next;
                if (q->out_tail == r)
                    q->out_tail = prev;
                break;
            }
        q->st.publish_failed++;
    } else { /* in flight: the publisher frees it when it settles */
        r->abandoned = 1;
        q->st.publish_failed++;
        r = NULL;
    }
out_locked:
    pthread_mutex_unlock(&q->mu);
    if (r) {
        pthread_cond_destroy(&r->cv);
        fp_free(r->payload);
        fp_free(r);
    }
    return rc;
}

/* ---- consumers ---------------------------------------------------------- */

static void qa__cons_drop(qa_consumer *cs)
{
    while (cs->head) {
        qa_msg *m = cs->head;
        cs->head = m->next;
        fp_free(m->body);
        fp_free(m);
    }
    cs->tail = NULL;
}

static void qa__cons_deliver(qa_consumer *cs, const amqp_frame_t *f)
{
    amqp_basic_deliver_t *dv = f->payload.method.decoded;
    uint64_t tag = dv->delivery_tag;
    int redelivered = dv->redelivered != 0;
    amqp_message_t am;
    if (qa__read_message(&cs->k, f->channel, &am) != 0)
        return;
    if (am.body.len > QA_MAX_BODY) { /* never from FilmPicker: straight to NAME.dead */
        fp_log(FP_LOG_ERROR, "queue_message_too_large", "{s:i}", "bytes", (int)am.body.len);
        amqp_destroy_message(&am);
        if (amqp_basic_nack(cs->k.c, 1, tag, 0, 0) != AMQP_STATUS_OK)
            cs->k.broken = 1;
        return;
    }
    qa_msg *m = fp_calloc(1, sizeof *m);
    m->tag = tag;
    m->redelivered = redelivered;
    long long attempt = 1, count = 0;
    if (am.properties._flags & AMQP_BASIC_HEADERS_FLAG) {
        qa__header_int(&am.properties.headers, "x-fp-attempt", &attempt);
        qa__header_int(&am.properties.headers, "x-delivery-count", &count);
    }
    if (attempt < 1 || attempt > 1000000)
        attempt = 1;
    if (count < 0 || count > 1000000)
        count = 0;
    if (redelivered && count == 0)
        count = 1; /* a broker that does not count */
    m->attempt = (int)(attempt + count);
    qa__msgid_of(&am, m->msgid, sizeof m->msgid);
    m->len = am.body.len;
    m->body = fp_malloc(m->len + 1);
    if (m->len)
        memcpy(m->body, am.body.bytes, m->len);
    m->body[m->len] = '\0';
    amqp_destroy_message(&am);
    if (cs->tail)
        cs->tail->next = m;
    else
        cs->head = m;
    cs->tail = m;
}

/* Handles the frames that arrive within timeout_ms (at least one wait). */
static void qa__cons_pump(qa_consumer *cs, int timeout_ms)
{
    qa_conn *k = &cs->k;
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    for (int first = 1; !k->broken; first = 0) {
        if (!first && !amqp_frames_enqueued(k->c) && !amqp_data_in_buffer(k->c))
            break;
        amqp_frame_t f;
        struct timeval zero = {0, 0};
        int rc = amqp_simple_wait_frame_noblock(k->c, &f, first ? &tv : &zero);
        if (rc == AMQP_STATUS_TIMEOUT)
            break;
        if (rc != AMQP_STATUS_OK) {
            k->broken = 1;
            break;
        }
        if (qa__closing_frame(&f, k, "consumer") || f.frame_type != AMQP_FRAME_METHOD)
            continue;
        switch (f.payload.method.id) {
        case AMQP_BASIC_DELIVER_METHOD:
            qa__cons_deliver(cs, &f);
            break;
        case AMQP_BASIC_ACK_METHOD: {
            amqp_basic_ack_t *a = f.payload.method.decoded;
            if (cs->wait_seq && (a->delivery_tag == cs->wait_seq ||
                                 (a->multiple && a->delivery_tag >= cs->wait_seq)) &&
                cs->wait_result == 0)
                cs->wait_result = 1;
            break;
        }
        case AMQP_BASIC_NACK_METHOD: {
            amqp_basic_nack_t *a = f.payload.method.decoded;
            if (cs->wait_seq && (a->delivery_tag == cs->wait_seq ||
                                 (a->multiple && a->delivery_tag >= cs->wait_seq)))
                cs->wait_result = -1;
            break;
        }
        case AMQP_BASIC_RETURN_METHOD: {
            amqp_message_t am;
            if (qa__read_message(k, f.channel, &am) == 0)
                amqp_destroy_message(&am);
            cs->wait_result = -1; /* its ack follows; the copy went nowhere */
            k->broken = 1;        /* declare again */
            break;
        }
        default:
            break;
        }
    }
    if (k->c && !amqp_frames_enqueued(k->c))
        amqp_maybe_release_buffers(k->c);
}

/* Publishes a copy of m to queue rkey with headers and waits for its
 * confirm. FP_OK once the broker has it. */
static fp_err qa__republish(qa_consumer *cs, const qa_msg *m, const char *rkey,
                            amqp_table_entry_t *hdrs, int nhdrs)
{
    queue *q = cs->q;
    cs->wait_result = 0;
    cs->wait_seq = qa__publish(&cs->k, rkey, m->msgid, m->body, m->len, hdrs, nhdrs);
    long long until = qa__mono_ms() + q->opts.submit_timeout_ms;
    while (cs->wait_seq && cs->wait_result == 0 && !cs->k.broken && qa__mono_ms() < until)
        qa__cons_pump(cs, 50);
    fp_err rc = cs->wait_seq && cs->wait_result == 1 ? FP_OK : FP_UNAVAILABLE;
    cs->wait_seq = 0;
    if (rc != FP_OK)
        cs->k.broken = 1; /* the original is redelivered; nothing is lost */
    return rc;
}

static void qa__cons_run(qa_consumer *cs, qa_msg *m)
{
    queue *q = cs->q;
    queue_delivery d = {.payload = m->body,
                        .len = m->len,
                        .attempt = m->attempt,
                        .redelivered = m->redelivered};
    pthread_mutex_lock(&q->mu);
    q->st.running++;
    if (m->redelivered)
        q->st.redelivered++;
    pthread_mutex_unlock(&q->mu);
    long long t0 = qa__mono_us();
    queue_verdict v = q->handler(q->ctx, &d);
    long long took = qa__mono_us() - t0;
    d.reason[sizeof d.reason - 1] = '\0';

    int counted = 0; /* 1 acked, 2 retried, 3 dead-lettered */
    if (cs->k.broken) {
        /* The connection died under the handler: the broker gives the job to
         * a consumer again; acknowledging on a new connection is impossible. */
    } else if (v == QUEUE_DONE) {
        if (amqp_basic_ack(cs->k.c, 1, m->tag, 0) == AMQP_STATUS_OK)
            counted = 1;
        else
            cs->k.broken = 1;
    } else if (v == QUEUE_RETRY && m->attempt < q->opts.max_attempts) {
        char rq[QA_NAME_MAX + 32];
        long ms = queue_backoff_ms(&q->opts, m->attempt);
        amqp_table_entry_t h[] = {qa__int("x-fp-attempt", m->attempt + 1),
                                  qa__str("x-fp-reason", d.reason)};
        if (qa__retry_queue(q, &cs->k, ms, rq, sizeof rq) == FP_OK &&
            qa__republish(cs, m, rq, h, 2) == FP_OK) {
            if (amqp_basic_ack(cs->k.c, 1, m->tag, 0) == AMQP_STATUS_OK)
                counted = 2;
            else
                cs->k.broken = 1;
        }
        fp_log(FP_LOG_INFO, "job_retry", "{s:s,s:s,s:i,s:i}", "queue", q->main, "reason",
               d.reason, "attempt", m->attempt, "delay_ms", (int)ms);
    } else {
        const char *verdict = v == QUEUE_RETRY ? "retries-exhausted" : "give-up";
        if (!d.reason[0])
            snprintf(d.reason, sizeof d.reason, "%s", verdict);
        amqp_table_entry_t h[] = {qa__str("x-fp-reason", d.reason),
                                  qa__int("x-fp-attempts", m->attempt),
                                  qa__str("x-fp-verdict", verdict)};
        if (qa__republish(cs, m, q->dead, h, 3) == FP_OK) {
            if (amqp_basic_ack(cs->k.c, 1, m->tag, 0) == AMQP_STATUS_OK)
                counted = 3;
            else
                cs->k.broken = 1;
        }
        fp_log(FP_LOG_WARN, "job_dead_lettered", "{s:s,s:s,s:i,s:s}", "queue", q->main,
               "reason", d.reason, "attempts", m->attempt, "verdict", verdict);
    }
    pthread_mutex_lock(&q->mu);
    q->st.running--;
    q->st.runs++;
    q->st.run_us_sum += (uint64_t)took;
    if (counted == 1)
        q->st.acked++;
    else if (counted == 2)
        q->st.retried++;
    else if (counted == 3)
        q->st.dead_lettered++;
    pthread_mutex_unlock(&q->mu);
}

static fp_err qa__cons_start(qa_consumer *cs)
{
    qa_conn *k = &cs->k;
    amqp_basic_qos(k->c, 1, 0, (uint16_t)cs->q->opts.prefetch, 0);
    if (qa__reply_check(amqp_get_rpc_reply(k->c), "consumer", "basic.qos") != FP_OK)
        goto fail;
    amqp_basic_consume(k->c, 1, amqp_cstring_bytes(cs->q->main), amqp_empty_bytes, 0, 0, 0,
                       amqp_empty_table);
    if (qa__reply_check(amqp_get_rpc_reply(k->c), "consumer", "basic.consume") != FP_OK)
        goto fail;
    return FP_OK;
fail:
    k->broken = 1;
    return FP_UNAVAILABLE;
}

/* Counts a consumer connection that came up (+1) or went down (-1). */
static void qa__cons_up(queue *q, long delta)
{
    pthread_mutex_lock(&q->mu);
    q->cons_up += delta;
    pthread_mutex_unlock(&q->mu);
}

static void *qa__consumer(void *arg)
{
    qa_consumer *cs = arg;
    queue *q = cs->q;
    long backoff = QA_BACKOFF_MIN_MS;
    int logged_down = 0;
    for (;;) {
        pthread_mutex_lock(&q->mu);
        int closing = q->closing;
        pthread_mutex_unlock(&q->mu);
        if (closing)
            break;
        if (!cs->k.c) {
            if (qa__connect(q, &cs->k, "consumer", &logged_down) != FP_OK ||
                qa__cons_start(cs) != FP_OK) {
                qa__disconnect(&cs->k);
                pthread_mutex_lock(&q->mu);
                qa__nap(q, backoff);
                pthread_mutex_unlock(&q->mu);
                backoff = backoff * 2 > QA_BACKOFF_MAX_MS ? QA_BACKOFF_MAX_MS : backoff * 2;
                continue;
            }
            backoff = QA_BACKOFF_MIN_MS;
            qa__cons_up(q, 1);
        }
        if (cs->head) {
            qa_msg *m = cs->head;
            cs->head = m->next;
            if (!cs->head)
                cs->tail = NULL;
            qa__cons_run(cs, m);
            fp_free(m->body);
            fp_free(m);
        } else {
            qa__cons_pump(cs, QA_CONSUMER_TICK_MS);
        }
        if (cs->k.broken) {
            qa__cons_up(q, -1);
            qa__cons_drop(cs); /* their delivery tags die with the channel */
            qa__disconnect(&cs->k);
        }
    }
    /* Closing the channel hands the deliveries not run back to the broker. */
    if (cs->k.c)
        qa__cons_up(q, -1);
    qa__cons_drop(cs);
    qa__disconnect(&cs->k);
    return NULL;
}

/* ---- the backend -------------------------------------------------------- */

static void qa_close(queue *q);

static fp_err qa_open(const char *url, const queue_opts *opts, queue_handler_fn handler,
                      void *ctx, queue **out)
{
    *out = NULL;
    queue *q = fp_calloc(1, sizeof *q);
    queue_opts_resolve(opts, &q->opts);
    q->handler = handler;
    q->ctx = ctx;
    pthread_mutex_init(&q->mu, NULL);
    qa__cond_init(&q->cv);
    q->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    q->pub_down_since_ms = qa__mono_ms();
    fp_err rc = FP_INVALID;
    if (q->opts.consumers > 0 && !handler)
        goto fail;
    if (qa__parse_url(q, url) != FP_OK) {
        fp_log(FP_LOG_ERROR, "queue_url_invalid", "{s:s}", "backend", "amqp");
        goto fail;
    }
    rc = FP_INTERNAL;
    if (q->wake_fd < 0)
        goto fail;
    if (pthread_create(&q->pub_th, NULL, qa__publisher, q) != 0)
        goto fail;
    q->pub_started = 1;
    q->cons = fp_calloc((size_t)(q->opts.consumers ? q->opts.consumers : 1), sizeof *q->cons);
    for (long i = 0; i < q->opts.consumers; i++) {
        qa_consumer *cs = &q->cons[i];
        cs->q = q;
        cs->index = i;
        if (pthread_create(&cs->th, NULL, qa__consumer, cs) != 0)
            goto fail;
        cs->started = 1;
        q->ncons++;
    }
    fp_log(FP_LOG_INFO, "queue_open", "{s:s,s:s,s:i,s:s,s:i,s:i}", "backend", "amqp", "host",
           q->ci.host, "port", q->ci.port, "queue", q->main, "consumers", (int)q->opts.consumers,
           "prefetch", (int)q->opts.prefetch);
    *out = q;
    return FP_OK;
fail:
    qa_close(q);
    return rc;
}

static void qa_stats(queue *q, queue_stats *out)
{
    pthread_mutex_lock(&q->mu);
    *out = q->st;
    pthread_mutex_unlock(&q->mu);
}

static fp_err qa_health(queue *q, queue_health *out)
{
    pthread_mutex_lock(&q->mu);
    out->publisher_up = q->pub_up;
    out->consumers = q->ncons;
    out->consumers_up = q->cons_up;
    pthread_mutex_unlock(&q->mu);
    return out->publisher_up && (out->consumers == 0 || out->consumers_up > 0) ? FP_OK
                                                                                : FP_UNAVAILABLE;
}

static void qa_close(queue *q)
{
    if (!q)
        return;
    pthread_mutex_lock(&q->mu);
    q->closing = 1;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    if (q->wake_fd >= 0)
        qa__wake(q);
    for (long i = 0; i < q->ncons; i++)
        pthread_join(q->cons[i].th, NULL);
    if (q->pub_started)
        pthread_join(q->pub_th, NULL);
    while (q->out_head) { /* only submits that never waited (no caller is left) */
        qa_pub *r = q->out_head;
        q->out_head = r->next;
        pthread_cond_destroy(&r->cv);
        fp_free(r->payload);
        fp_free(r);
    }
    if (q->wake_fd >= 0)
        close(q->wake_fd);
    pthread_cond_destroy(&q->cv);
    pthread_mutex_destroy(&q->mu);
    fp_free(q->cons);
    fp_free(q->cacert);
    fp_free(q->url_buf);
    fp_free(q);
}

const queue_backend queue_backend_amqp = {
    .name = "amqp",
    .accepts = qa_accepts,
    .open = qa_open,
    .submit = qa_submit,
    .stats = qa_stats,
    .health = qa_health,
    .close = qa_close,
};

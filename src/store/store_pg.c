/*
 * store_pg.c - the PostgreSQL storage backend (libpq), for several API
 * instances and workers sharing one database. Same contract as the SQLite
 * backend (store.h, store_sqlite.c): the same catalogue matching rules, the
 * same compare-and-swap on row versions, the same privacy (a 32-byte keyed
 * hash and sealed blobs, bytea; never a username or a film list in plain
 * text).
 *
 * URL: postgresql://USER:PASSWORD@HOST:PORT/DB?PARAMS or postgres://...;
 * every libpq parameter works (sslmode=..., connect_timeout=...), plus two of
 * FilmPicker's own, taken out before libpq sees the URL:
 *   pool_size=N   connections of this process's pool (1..256, default 8)
 *   schema=NAME   the schema the tables live in (search_path; created by
 *                 `migrate`); without it the server's default (public)
 * The password is never logged: logs carry store_url_redacted().
 *
 * Connections: a pool of at most pool_size, opened lazily, each used by one
 * thread at a time (mutex + condvar; a caller waits at most
 * PG_ACQUIRE_WAIT_MS for one, then FP_UNAVAILABLE). Statements are prepared
 * once per connection, on first use (PQprepare), and run with
 * PQsendQueryPrepared: keys and blobs as binary parameters, everything else
 * as text; results come back in binary. A migration run by this process
 * bumps a generation counter so that each connection drops its prepared
 * statements (DEALLOCATE ALL) before it is used again.
 *
 * Reconnection: PostgreSQL restarting closes every connection. A connection
 * taken from the pool is checked first (its status, and a poll of its
 * socket: an idle connection never has input waiting, so input or a hang-up
 * means the server is closing it) and reset (PQreset) when it is dead, before
 * anything is sent on it. If a statement still fails with a connection-level
 * error, whether it is retried depends on whether it may have taken effect:
 *   - reads (one statement outside a transaction) are retried once on a reset
 *     connection;
 *   - writes always run in an explicit transaction (BEGIN ... COMMIT). A
 *     connection lost before COMMIT was sent cannot have committed anything
 *     (the server rolls back a transaction whose client went away), so the
 *     whole transaction is run again once on a new connection. A connection
 *     lost while COMMIT was on its way leaves the outcome unknown: that write
 *     is not retried and fails with FP_UNAVAILABLE (the caller's retry or the
 *     next fetch stores it again; replacing a list and CAS edits are both
 *     safe to repeat at that level).
 * While the server is down every call fails with FP_UNAVAILABLE (503
 * service_unavailable); the pool reconnects by itself once it is back.
 *
 * Concurrency between processes: single-row writes are single statements
 * (INSERT ... ON CONFLICT, UPDATE ... WHERE version = $n), atomic on their
 * own. Catalogue resolution and the sweep's deletes take a transaction-level
 * advisory lock (pg_advisory_xact_lock), so catalogue writers take turns as
 * they do in SQLite: title matching, which has no unique constraint to lean
 * on, never creates the same film twice when two instances resolve it at
 * once. Serialization failures, deadlocks and unique violations (a writer
 * outside FilmPicker) roll the transaction back and run it again (up to
 * PG_TX_ATTEMPTS times). Migrations take another advisory lock (per schema)
 * inside each step's transaction and re-read the version under it, so
 * several `filmpicker migrate up` or starting servers take turns: one
 * applies each step, the others then find it done.
 *
 * Errors: connection lost / server starting or stopping / too many
 * connections / lock or serialization trouble that outlived the retries ->
 * FP_UNAVAILABLE; data or index corruption -> FP_CORRUPT; disk full or I/O
 * -> FP_IO; out of memory -> FP_NOMEM; anything else (a missing table: run
 * `filmpicker migrate up`) -> FP_STORAGE. Each is logged once with the
 * SQLSTATE and the server's primary message, never with user data.
 */
#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/mem.h"
#include "store/store_pg.h"

#define PG_POOL_DEFAULT 8
#define PG_POOL_LIMIT 256
#define PG_ACQUIRE_WAIT_MS 10000
#define PG_TX_ATTEMPTS 4
#define PG_MAX_PARAMS 12
#define PG_LOAD_CHUNK 10000
#define PG_SCHEMA_MAX 63

/* The first key of the two-key advisory locks (the second is the schema's
 * hash, so two schemas of one database do not wait for each other). */
#define PG_LOCK_MIGRATE 0x46504d01   /* "FPM" 1 */
#define PG_LOCK_CATALOGUE 0x46504301 /* "FPC" 1 */

#define PG_FILM_COLS "id, lb_id, lb_slug, lb_uri, imdb_id, title, year, poster"

enum pg_stmt_id {
    PG_FILM_BY_LB_IDS,
    PG_FILM_BY_LB_ID,
    PG_FILM_BY_SLUG,
    PG_FILM_BY_URI,
    PG_FILM_BY_IMDB,
    PG_FILM_BY_KEY,
    PG_FILM_BY_NORM,
    PG_FILM_INSERT,
    PG_FILM_SET_LB_ID,
    PG_FILM_SET_SLUG,
    PG_FILM_SET_URI,
    PG_FILM_SET_IMDB,
    PG_FILM_SET_YEAR,
    PG_FILM_SET_POSTER,
    PG_FILM_LOAD,
    PG_FILM_UNORPHAN,
    PG_WL_GET,
    PG_WL_UPSERT,
    PG_WL_CREATE,
    PG_WL_CAS,
    PG_WL_DELETE,
    PG_WD_GET,
    PG_WD_UPSERT,
    PG_WD_CREATE,
    PG_WD_CAS,
    PG_PING,
    PG_DK_GET,
    PG_DK_CREATE,
    PG_DK_CAS,
    PG_DK_REPLACE,
    PG_WL_PAGE,
    PG_WD_PAGE,
    PG_WL_CLEAR,
    PG_WD_CLEAR,
    PG_FILM_PAGE,
    PG_FILM_MARK,
    PG_FILM_DELETE_ORPHANS,
    PG_LOCK,
    PG__COUNT
};

static const char *const pg_sql[PG__COUNT] = {
    /* The batch's Letterboxd ids in one query: most films of a refetched
     * list are found here, without a round trip each. */
    [PG_FILM_BY_LB_IDS] = "SELECT " PG_FILM_COLS " FROM films WHERE lb_id = ANY($1::bigint[])",
    [PG_FILM_BY_LB_ID] = "SELECT " PG_FILM_COLS " FROM films WHERE lb_id = $1",
    [PG_FILM_BY_SLUG] = "SELECT " PG_FILM_COLS " FROM films WHERE lb_slug = $1",
    [PG_FILM_BY_URI] = "SELECT " PG_FILM_COLS " FROM films WHERE lb_uri = $1",
    [PG_FILM_BY_IMDB] = "SELECT " PG_FILM_COLS " FROM films WHERE imdb_id = $1",
    [PG_FILM_BY_KEY] = "SELECT " PG_FILM_COLS " FROM films WHERE match_key = $1 ORDER BY id",
    /* Two rows are enough to know a title is not unique. */
    [PG_FILM_BY_NORM] = "SELECT " PG_FILM_COLS " FROM films WHERE norm_title = $1 ORDER BY id "
                        "LIMIT 2",
    [PG_FILM_INSERT] = "INSERT INTO films (lb_id, lb_slug, lb_uri, imdb_id, title, year, "
                       "match_key, norm_title, created_at, updated_at, poster) "
                       "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10) RETURNING id",
    /* SQLite's UPDATE OR IGNORE: a value another row already holds is simply
     * not copied (the catalogue lock keeps anyone from taking it meanwhile). */
    [PG_FILM_SET_LB_ID] = "UPDATE films SET lb_id = $2::bigint, updated_at = $3 "
                          "WHERE id = $1 AND lb_id IS NULL "
                          "AND NOT EXISTS (SELECT 1 FROM films o WHERE o.lb_id = $2::bigint)",
    [PG_FILM_SET_SLUG] = "UPDATE films SET lb_slug = $2::text, updated_at = $3 "
                         "WHERE id = $1 AND lb_slug IS NULL "
                         "AND NOT EXISTS (SELECT 1 FROM films o WHERE o.lb_slug = $2::text)",
    [PG_FILM_SET_URI] = "UPDATE films SET lb_uri = $2::text, updated_at = $3 "
                        "WHERE id = $1 AND lb_uri IS NULL "
                        "AND NOT EXISTS (SELECT 1 FROM films o WHERE o.lb_uri = $2::text)",
    [PG_FILM_SET_IMDB] = "UPDATE films SET imdb_id = $2::text, updated_at = $3 "
                         "WHERE id = $1 AND imdb_id IS NULL "
                         "AND NOT EXISTS (SELECT 1 FROM films o WHERE o.imdb_id = $2::text)",
    [PG_FILM_SET_YEAR] = "UPDATE films SET year = $2, match_key = $3, updated_at = $4 "
                         "WHERE id = $1 AND year IS NULL",
    /* The newest poster a page gave wins (its ?v= changes with the image). */
    [PG_FILM_SET_POSTER] = "UPDATE films SET poster = $2::text, updated_at = $3 "
                           "WHERE id = $1 AND poster IS DISTINCT FROM $2::text",
    [PG_FILM_LOAD] = "SELECT " PG_FILM_COLS " FROM films WHERE id = ANY($1::bigint[])",
    /* Lists use these films again: the sweep's marks go (no write if none). */
    [PG_FILM_UNORPHAN] = "UPDATE films SET orphaned_at = NULL "
                         "WHERE id = ANY($1::bigint[]) AND orphaned_at IS NOT NULL",
    [PG_WL_GET] = "SELECT sealed, fetched_at, version FROM watchlists WHERE key = $1",
    [PG_WL_UPSERT] = "INSERT INTO watchlists (key, sealed, fetched_at, version) "
                     "VALUES ($1, $2, $3, 1) ON CONFLICT (key) DO UPDATE SET "
                     "sealed = excluded.sealed, fetched_at = excluded.fetched_at, "
                     "version = watchlists.version + 1 RETURNING version",
    [PG_WL_CREATE] = "INSERT INTO watchlists (key, sealed, fetched_at, version) "
                     "VALUES ($1, $2, $3, 1) ON CONFLICT (key) DO NOTHING RETURNING version",
    [PG_WL_CAS] = "UPDATE watchlists SET sealed = $2, fetched_at = $3, version = version + 1 "
                  "WHERE key = $1 AND version = $4 RETURNING version",
    [PG_WL_DELETE] = "DELETE FROM watchlists WHERE key = $1",
    [PG_WD_GET] = "SELECT sealed, updated_at, version FROM watched WHERE key = $1",
    [PG_WD_UPSERT] = "INSERT INTO watched (key, sealed, updated_at, version) "
                     "VALUES ($1, $2, $3, 1) ON CONFLICT (key) DO UPDATE SET "
                     "sealed = excluded.sealed, updated_at = excluded.updated_at, "
                     "version = watched.version + 1 RETURNING version",
    [PG_WD_CREATE] = "INSERT INTO watched (key, sealed, updated_at, version) "
                     "VALUES ($1, $2, $3, 1) ON CONFLICT (key) DO NOTHING RETURNING version",
    [PG_WD_CAS] = "UPDATE watched SET sealed = $2, updated_at = $3, version = version + 1 "
                  "WHERE key = $1 AND version = $4 RETURNING version",
    [PG_PING] = "SELECT 1",
    [PG_DK_GET] = "SELECT wrapped, created_at, updated_at FROM data_key WHERE id = 1",
    [PG_DK_CREATE] = "INSERT INTO data_key (id, wrapped, created_at, updated_at) "
                     "VALUES (1, $1, $2, $2) ON CONFLICT (id) DO NOTHING",
    [PG_DK_CAS] = "UPDATE data_key SET wrapped = $1, updated_at = $2 WHERE id = 1 AND wrapped = $3",
    /* SQLite's INSERT OR REPLACE: the whole row is new. */
    [PG_DK_REPLACE] = "INSERT INTO data_key (id, wrapped, created_at, updated_at) "
                      "VALUES (1, $1, $2, $2) ON CONFLICT (id) DO UPDATE SET "
                      "wrapped = excluded.wrapped, created_at = excluded.created_at, "
                      "updated_at = excluded.updated_at",
    /* '' sorts before every key (bytea compares bytewise): the first page. */
    [PG_WL_PAGE] = "SELECT key, sealed FROM watchlists WHERE key > $1 ORDER BY key LIMIT $2",
    [PG_WD_PAGE] = "SELECT key, sealed FROM watched WHERE key > $1 ORDER BY key LIMIT $2",
    [PG_WL_CLEAR] = "DELETE FROM watchlists",
    [PG_WD_CLEAR] = "DELETE FROM watched",
    [PG_FILM_PAGE] = "SELECT id, coalesce(orphaned_at, 0) FROM films WHERE id > $1 "
                     "ORDER BY id LIMIT $2",
    [PG_FILM_MARK] = "UPDATE films SET orphaned_at = $2 "
                     "WHERE id = ANY($1::bigint[]) AND orphaned_at IS NULL",
    /* The sequence never hands an id out twice, but the contract (never the
     * highest id) is the same as SQLite's, whose ids are max(id) + 1. */
    [PG_FILM_DELETE_ORPHANS] = "DELETE FROM films WHERE id = ANY($1::bigint[]) "
                               "AND orphaned_at IS NOT NULL AND orphaned_at <= $2 "
                               "AND id < (SELECT max(id) FROM films)",
    [PG_LOCK] = "SELECT pg_advisory_xact_lock($1::int4, $2::int4)",
};

/* What a failed statement says about retrying it. */
typedef enum {
    PG_FAIL_NONE,
    PG_FAIL_CONN,  /* the connection is gone */
    PG_FAIL_RETRY, /* serialization failure, deadlock, unique violation: run it again */
    PG_FAIL_SQL,   /* anything else: running it again would fail again */
} pg_fail;

typedef struct pg_conn {
    PGconn *db;
    unsigned gen;  /* the store's schema generation its statements were prepared for */
    int sent;      /* the last statement reached the socket (it may have run) */
    pg_fail fail;  /* how the last failed statement failed */
    unsigned char prepared[PG__COUNT];
} pg_conn;

struct store {
    char *conninfo; /* the URL libpq gets: holds the password, never logged */
    char *display;  /* the URL without its password, for logs */
    char *schema;   /* NULL: the server's search_path */
    int32_t lock_ns; /* second key of the advisory locks */
    int pool_max;
    pthread_mutex_t mu; /* guards idle, n_idle, n_open */
    pthread_cond_t cv;  /* CLOCK_MONOTONIC */
    pg_conn **idle;
    int n_idle;
    int n_open; /* connections open or being opened */
    atomic_uint gen;
    const store_migration *migs;
    size_t n_migs;
    int crash_before_commit;
};

/* ---- parameters and results ---------------------------------------------- */

/* Parameters of one statement: numbers and text go as text, bytea as binary. */
typedef struct pg_args {
    int n;
    const char *val[PG_MAX_PARAMS];
    int len[PG_MAX_PARAMS];
    int fmt[PG_MAX_PARAMS];
    char num[PG_MAX_PARAMS][24];
} pg_args;

static void pa_i64(pg_args *a, int64_t v)
{
    int i = a->n++;
    snprintf(a->num[i], sizeof a->num[i], "%lld", (long long)v);
    a->val[i] = a->num[i];
    a->len[i] = 0;
    a->fmt[i] = 0;
}

/* NULL is SQL NULL. */
static void pa_text(pg_args *a, const char *s)
{
    int i = a->n++;
    a->val[i] = s;
    a->len[i] = 0;
    a->fmt[i] = 0;
}

static void pa_bytea(pg_args *a, const void *p, size_t len)
{
    int i = a->n++;
    /* A NULL pointer would be SQL NULL; an empty blob is still a blob. */
    a->val[i] = p ? (const char *)p : "";
    a->len[i] = (int)len;
    a->fmt[i] = 1;
}

/* A binary integer column (int2, int4 or int8, big-endian); NULL reads 0. */
static int64_t pg_int(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return 0;
    const unsigned char *p = (const unsigned char *)PQgetvalue(r, row, col);
    int len = PQgetlength(r, row, col);
    uint64_t v = 0;
    for (int i = 0; i < len && i < 8; i++)
        v = v << 8 | p[i];
    if (len == 4)
        return (int32_t)(uint32_t)v;
    if (len == 2)
        return (int16_t)(uint16_t)v;
    return (int64_t)v;
}

/* A text column (binary text is the UTF-8 bytes); NULL reads NULL. */
static char *pg_text(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return NULL;
    return fp_strndup(PQgetvalue(r, row, col), (size_t)PQgetlength(r, row, col));
}

/* A bytea column copied out (never NULL, even when empty). */
static uint8_t *pg_blob(const PGresult *r, int row, int col, size_t *len)
{
    *len = (size_t)PQgetlength(r, row, col);
    uint8_t *out = fp_malloc(*len ? *len : 1);
    if (*len)
        memcpy(out, PQgetvalue(r, row, col), *len);
    return out;
}

/* Rows changed by an INSERT, UPDATE or DELETE. */
static size_t pg_changes(PGresult *r)
{
    const char *t = PQcmdTuples(r);
    return t && *t ? (size_t)strtoull(t, NULL, 10) : 0;
}

/* "{1,2,3}": a bigint[] parameter. Caller frees. */
static char *pg_id_array(const int64_t *ids, size_t n)
{
    fp_buf b;
    fp_buf_init(&b, (size_t)-1);
    fp_err rc = fp_buf_append(&b, "{", 1);
    for (size_t i = 0; i < n && rc == FP_OK; i++)
        rc = fp_buf_appendf(&b, i ? ",%lld" : "%lld", (long long)ids[i]);
    if (rc == FP_OK)
        rc = fp_buf_append(&b, "}", 1);
    (void)rc; /* an unlimited buffer cannot fail */
    return fp_buf_steal(&b, NULL);
}

/* ---- errors --------------------------------------------------------------- */

/* Maps a failed result (or a failure without one) to the project's error,
 * records in c->fail how to treat it, and logs it once. */
static fp_err pg_fail_result(store *s, pg_conn *c, const PGresult *r, const char *op)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (!msg)
        msg = PQerrorMessage(c->db);
    if (!msg)
        msg = "";
    const char *event = "store_error";
    fp_log_level level = FP_LOG_ERROR;
    fp_err err = FP_STORAGE;
    c->fail = PG_FAIL_SQL;
    /* Class 08: connection exception; 57P01..57P03: the server is shutting
     * down, crashed or starting; no SQLSTATE at all: libpq lost the server. */
    if (PQstatus(c->db) != CONNECTION_OK || !state || strncmp(state, "08", 2) == 0 ||
        strncmp(state, "57P0", 4) == 0) {
        c->fail = PG_FAIL_CONN;
        event = "store_unavailable";
        level = FP_LOG_WARN;
        err = FP_UNAVAILABLE;
    } else if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 ||
               strcmp(state, "23505") == 0) {
        c->fail = PG_FAIL_RETRY;
        event = "store_retry";
        level = FP_LOG_INFO;
        err = FP_UNAVAILABLE;
    } else if (strcmp(state, "55P03") == 0 || strcmp(state, "57014") == 0 ||
               strcmp(state, "53300") == 0) {
        event = "store_busy";
        level = FP_LOG_WARN;
        err = FP_UNAVAILABLE;
    } else if (strncmp(state, "XX00", 4) == 0) {
        event = "store_corrupt";
        err = FP_CORRUPT;
    } else if (strcmp(state, "53100") == 0 || strncmp(state, "58", 2) == 0) {
        event = "store_io_error";
        err = FP_IO;
    } else if (strcmp(state, "53200") == 0) {
        err = FP_NOMEM;
    }
    /* libpq's own messages end with a newline: the log line should not. */
    size_t mlen = strlen(msg);
    while (mlen > 0 && (msg[mlen - 1] == '\n' || msg[mlen - 1] == ' '))
        mlen--;
    char *m = fp_strndup(msg, mlen);
    if (state && strcmp(state, "42P01") == 0) /* undefined table: nobody migrated */
        fp_log(level, event, "{s:s,s:s,s:s,s:s,s:s}", "op", op, "sqlstate", state, "error", m,
               "database", s->display, "hint", "run `filmpicker migrate up`");
    else
        fp_log(level, event, "{s:s,s:s,s:s,s:s}", "op", op, "sqlstate", state ? state : "",
               "error", m, "database", s->display);
    fp_free(m);
    return err;
}

/* ---- connections ---------------------------------------------------------- */

static void pg_notice(void *arg, const char *message)
{
    (void)arg;
    fp_log(FP_LOG_DEBUG, "store_notice", "{s:s}", "message", message ? message : "");
}

/* A one-off command (not prepared) that returns no rows. */
static fp_err pg_command(store *s, pg_conn *c, const char *sql, const char *op)
{
    c->sent = 1;
    PGresult *r = PQexec(c->db, sql);
    fp_err err = FP_OK;
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        err = pg_fail_result(s, c, r, op);
    PQclear(r);
    return err;
}

/* What every new or reset session needs: quiet notices, the schema. */
static fp_err pg_session_setup(store *s, pg_conn *c)
{
    memset(c->prepared, 0, sizeof c->prepared);
    c->gen = atomic_load(&s->gen);
    PQsetNoticeProcessor(c->db, pg_notice, NULL);
    fp_err err = pg_command(s, c, "SET client_min_messages = warning", "session");
    if (err == FP_OK && s->schema) {
        char *ident = PQescapeIdentifier(c->db, s->schema, strlen(s->schema));
        if (!ident)
            return pg_fail_result(s, c, NULL, "session");
        char *sql = fp_printf("SET search_path TO %s", ident);
        PQfreemem(ident);
        err = pg_command(s, c, sql, "session");
        fp_free(sql);
    }
    return err;
}

static fp_err pg_connect_failed(store *s, pg_conn *c, const char *op)
{
    const char *msg = c->db ? PQerrorMessage(c->db) : "out of memory";
    size_t mlen = strlen(msg);
    while (mlen > 0 && (msg[mlen - 1] == '\n' || msg[mlen - 1] == ' '))
        mlen--;
    char *m = fp_strndup(msg, mlen);
    fp_log(FP_LOG_WARN, "store_unavailable", "{s:s,s:s,s:s}", "op", op, "error", m, "database",
           s->display);
    fp_free(m);
    c->fail = PG_FAIL_CONN;
    return FP_UNAVAILABLE;
}

static fp_err pg_connect(store *s, pg_conn *c)
{
    /* Keywords before dbname are defaults the URL may override. */
    const char *keys[] = {"connect_timeout", "application_name", "dbname", NULL};
    const char *vals[] = {"5", "filmpicker", s->conninfo, NULL};
    c->db = PQconnectdbParams(keys, vals, 1);
    if (!c->db || PQstatus(c->db) != CONNECTION_OK)
        return pg_connect_failed(s, c, "connect");
    return pg_session_setup(s, c);
}

static fp_err pg_reconnect(store *s, pg_conn *c)
{
    PQreset(c->db);
    if (PQstatus(c->db) != CONNECTION_OK)
        return pg_connect_failed(s, c, "reconnect");
    fp_log(FP_LOG_INFO, "store_reconnected", "{s:s}", "database", s->display);
    return pg_session_setup(s, c);
}

/* An idle connection has nothing to read: input or a hang-up means the server
 * has closed it (a restart sends a FATAL message, then closes). */
static int pg_conn_dead(PGconn *db)
{
    if (PQstatus(db) != CONNECTION_OK || PQtransactionStatus(db) != PQTRANS_IDLE)
        return 1;
    struct pollfd p = {.fd = PQsocket(db), .events = POLLIN};
    if (p.fd < 0)
        return 1;
    int n;
    while ((n = poll(&p, 1, 0)) < 0 && errno == EINTR)
        ;
    return n != 0;
}

static void pg_conn_free(pg_conn *c)
{
    if (!c)
        return;
    PQfinish(c->db);
    fp_free(c);
}

/* Drops a connection that is not coming back to the pool. */
static void pg_discard(store *s, pg_conn *c)
{
    pg_conn_free(c);
    pthread_mutex_lock(&s->mu);
    s->n_open--;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static fp_err pg_acquire(store *s, pg_conn **out)
{
    pg_conn *c = NULL;
    int fresh = 0;
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += PG_ACQUIRE_WAIT_MS / 1000;
    *out = NULL;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        if (s->n_idle > 0) {
            c = s->idle[--s->n_idle];
            break;
        }
        if (s->n_open < s->pool_max) {
            s->n_open++;
            fresh = 1;
            break;
        }
        if (pthread_cond_timedwait(&s->cv, &s->mu, &deadline) == ETIMEDOUT) {
            pthread_mutex_unlock(&s->mu);
            fp_log(FP_LOG_WARN, "store_pool_exhausted", "{s:i,s:i}", "pool_size", s->pool_max,
                   "waited_ms", PG_ACQUIRE_WAIT_MS);
            return FP_UNAVAILABLE;
        }
    }
    pthread_mutex_unlock(&s->mu);
    /* Connecting is slow (network, authentication): outside the lock. */
    fp_err err = FP_OK;
    if (fresh) {
        c = fp_calloc(1, sizeof *c);
        err = pg_connect(s, c);
    } else if (pg_conn_dead(c->db)) {
        err = pg_reconnect(s, c);
    } else if (c->gen != atomic_load(&s->gen)) {
        /* A migration changed the schema: prepare everything again. */
        err = pg_command(s, c, "DEALLOCATE ALL", "deallocate");
        if (err == FP_OK) {
            memset(c->prepared, 0, sizeof c->prepared);
            c->gen = atomic_load(&s->gen);
        }
    }
    if (err != FP_OK) {
        pg_discard(s, c);
        return err;
    }
    c->fail = PG_FAIL_NONE;
    c->sent = 0;
    *out = c;
    return FP_OK;
}

static void pg_release(store *s, pg_conn *c)
{
    if (!c)
        return;
    if (PQstatus(c->db) == CONNECTION_OK && PQtransactionStatus(c->db) != PQTRANS_IDLE) {
        /* A transaction left open by an error path. */
        PGresult *r = PQexec(c->db, "ROLLBACK");
        PQclear(r);
    }
    if (PQstatus(c->db) != CONNECTION_OK || PQtransactionStatus(c->db) != PQTRANS_IDLE) {
        pg_discard(s, c); /* the next caller opens a new one */
        return;
    }
    pthread_mutex_lock(&s->mu);
    s->idle[s->n_idle++] = c;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/*
 * Runs statement id (prepared on this connection first if needed). On
 * success *out (when not NULL) is the result, the caller's to PQclear. On
 * failure c->fail and c->sent say whether it may have run.
 */
static fp_err pg_run(store *s, pg_conn *c, enum pg_stmt_id id, const pg_args *a, PGresult **out,
                     const char *op)
{
    char name[16];
    snprintf(name, sizeof name, "fp%d", (int)id);
    if (out)
        *out = NULL;
    c->sent = 0;
    c->fail = PG_FAIL_NONE;
    if (!c->prepared[id]) {
        PGresult *r = PQprepare(c->db, name, pg_sql[id], 0, NULL);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            fp_err err = pg_fail_result(s, c, r, op);
            PQclear(r);
            return err;
        }
        PQclear(r);
        c->prepared[id] = 1;
    }
    static const pg_args none = {0};
    if (!a)
        a = &none;
    if (!PQsendQueryPrepared(c->db, name, a->n, a->val, a->len, a->fmt, 1))
        return pg_fail_result(s, c, NULL, op); /* nothing reached the server */
    c->sent = 1;
    PGresult *res = NULL, *r;
    while ((r = PQgetResult(c->db)) != NULL) {
        if (!res)
            res = r;
        else
            PQclear(r);
    }
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        fp_err err = pg_fail_result(s, c, res, op);
        PQclear(res);
        return err;
    }
    if (out)
        *out = res;
    else
        PQclear(res);
    return FP_OK;
}

/* A read: one statement, run again once on a reset connection when the
 * connection failed under it (reading twice changes nothing). */
static fp_err pg_read(store *s, pg_conn *c, enum pg_stmt_id id, const pg_args *a, PGresult **out,
                      const char *op)
{
    fp_err err = pg_run(s, c, id, a, out, op);
    if (err != FP_OK && c->fail == PG_FAIL_CONN && pg_reconnect(s, c) == FP_OK)
        err = pg_run(s, c, id, a, out, op);
    return err;
}

/* ---- transactions --------------------------------------------------------- */

typedef enum {
    PG_TX_WRITE,     /* read committed */
    PG_TX_CATALOGUE, /* read committed, catalogue writers one at a time */
    PG_TX_SNAPSHOT,  /* read only, one snapshot */
} pg_tx_mode;

typedef fp_err (*pg_tx_fn)(store *s, pg_conn *c, void *ctx);

static void pg_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/*
 * Runs fn inside BEGIN ... COMMIT (ROLLBACK when fn fails), again when that
 * is safe: after a serialization failure, deadlock or unique violation (up to
 * PG_TX_ATTEMPTS runs in all), and once after the connection was lost before
 * COMMIT was sent. fn must start from scratch each time it is called.
 */
static fp_err pg_transact(store *s, pg_tx_mode mode, pg_tx_fn fn, void *ctx, const char *op)
{
    static const char *const begin_sql[] = {
        [PG_TX_WRITE] = "BEGIN",
        [PG_TX_CATALOGUE] = "BEGIN",
        [PG_TX_SNAPSHOT] = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
    };
    fp_err err = FP_UNAVAILABLE;
    int reconnected = 0;
    for (int attempt = 0; attempt < PG_TX_ATTEMPTS; attempt++) {
        pg_conn *c = NULL;
        err = pg_acquire(s, &c);
        if (err != FP_OK)
            return err;
        int committing = 0;
        err = pg_command(s, c, begin_sql[mode], op);
        if (err == FP_OK && mode == PG_TX_CATALOGUE) {
            pg_args a = {0};
            pa_i64(&a, PG_LOCK_CATALOGUE);
            pa_i64(&a, s->lock_ns);
            err = pg_run(s, c, PG_LOCK, &a, NULL, op);
        }
        if (err == FP_OK)
            err = fn(s, c, ctx);
        if (err == FP_OK) {
            if (s->crash_before_commit)
                _exit(1);
            committing = 1;
            err = pg_command(s, c, "COMMIT", op);
        }
        pg_fail fail = err == FP_OK ? PG_FAIL_NONE : c->fail;
        pg_release(s, c); /* rolls back what is left open */
        if (err == FP_OK)
            return FP_OK;
        if (fail == PG_FAIL_CONN && !committing && !reconnected) {
            /* The server never got COMMIT: the transaction died with the
             * connection. Once more on a new one. */
            reconnected = 1;
            continue;
        }
        if (fail == PG_FAIL_RETRY && attempt + 1 < PG_TX_ATTEMPTS) {
            pg_sleep_ms(5L << attempt); /* let the other writer finish */
            continue;
        }
        return err;
    }
    return err;
}

/* ---- open / close --------------------------------------------------------- */

static int pg_accepts(const char *url)
{
    return url && (strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0);
}

static int pg_schema_ok(const char *name, size_t len)
{
    if (len == 0 || len > PG_SCHEMA_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_'))
            return 0;
    }
    return !(name[0] >= '0' && name[0] <= '9');
}

fp_err store_pg__parse_url(const char *url, char **conninfo, char **schema, int *pool_size)
{
    *conninfo = *schema = NULL;
    *pool_size = PG_POOL_DEFAULT;
    if (!pg_accepts(url))
        return FP_INVALID;
    const char *q = strchr(url, '?');
    size_t base_len = q ? (size_t)(q - url) : strlen(url);
    const char *hash = q ? strchr(q, '#') : NULL;
    fp_buf b;
    fp_buf_init(&b, (size_t)-1);
    fp_err rc = fp_buf_append(&b, url, base_len);
    int kept = 0;
    for (const char *p = q ? q + 1 : NULL; rc == FP_OK && p && *p && p != hash;) {
        size_t len = strcspn(p, "&#");
        if (len > 10 && strncmp(p, "pool_size=", 10) == 0) {
            char num[16];
            size_t nlen = len - 10;
            char *end = NULL;
            long v = 0;
            if (nlen < sizeof num) {
                memcpy(num, p + 10, nlen);
                num[nlen] = '\0';
                v = strtol(num, &end, 10);
            }
            if (!end || *end || v < 1 || v > PG_POOL_LIMIT) {
                rc = FP_INVALID;
                fp_log(FP_LOG_ERROR, "store_bad_url", "{s:s}", "error",
                       "pool_size must be a whole number from 1 to 256");
                break;
            }
            *pool_size = (int)v;
        } else if (len > 7 && strncmp(p, "schema=", 7) == 0) {
            if (!pg_schema_ok(p + 7, len - 7)) {
                rc = FP_INVALID;
                fp_log(FP_LOG_ERROR, "store_bad_url", "{s:s}", "error",
                       "schema must be 1 to 63 letters, digits or _, not starting with a digit");
                break;
            }
            fp_free(*schema);
            *schema = fp_strndup(p + 7, len - 7);
        } else if (len > 0) {
            rc = fp_buf_append(&b, kept ? "&" : "?", 1);
            if (rc == FP_OK)
                rc = fp_buf_append(&b, p, len);
            kept = 1;
        }
        p += len;
        if (*p == '&')
            p++;
    }
    if (rc != FP_OK) {
        fp_buf_free(&b);
        FP_FREE(*schema);
        return rc;
    }
    *conninfo = fp_buf_steal(&b, NULL);
    return FP_OK;
}

/* FNV-1a of the schema name: the advisory locks' second key. */
static int32_t pg_lock_ns(const char *schema)
{
    uint32_t h = 2166136261u;
    for (const char *p = schema ? schema : ""; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return (int32_t)(h & 0x7fffffff);
}

static void pg_close(store *s)
{
    if (!s)
        return;
    /* Every connection must be back in the pool: callers close last. */
    for (int i = 0; i < s->n_idle; i++)
        pg_conn_free(s->idle[i]);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    fp_free(s->idle);
    fp_free(s->conninfo);
    fp_free(s->display);
    fp_free(s->schema);
    fp_free(s);
}

static fp_err pg_open(const char *url, store **out)
{
    *out = NULL;
    char *conninfo = NULL, *schema = NULL;
    int pool = 0;
    fp_err err = store_pg__parse_url(url, &conninfo, &schema, &pool);
    if (err != FP_OK) {
        if (!pg_accepts(url))
            fp_log(FP_LOG_ERROR, "store_bad_url", "{s:s}", "error", "not a postgresql:// URL");
        return err;
    }
    if (!PQisthreadsafe()) { /* the pool shares the library between threads */
        fp_free(conninfo);
        fp_free(schema);
        fp_log(FP_LOG_ERROR, "store_error", "{s:s}", "error",
               "the libpq library was built without thread support");
        return FP_STORAGE;
    }
    store *s = fp_calloc(1, sizeof *s);
    s->conninfo = conninfo;
    s->schema = schema;
    s->display = store_url_redacted(url);
    s->lock_ns = pg_lock_ns(schema);
    s->pool_max = pool;
    s->idle = fp_calloc((size_t)pool, sizeof *s->idle);
    s->migs = store_pg__migrations;
    s->n_migs = store_pg__migrations_len;
    atomic_init(&s->gen, 0);
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);

    /* One connection now, so that a wrong address or password fails at
     * start-up rather than on the first request. */
    pg_conn *c = fp_calloc(1, sizeof *c);
    err = pg_connect(s, c);
    if (err != FP_OK) {
        pg_conn_free(c);
        fp_log(FP_LOG_ERROR, "store_open_failed", "{s:s,s:s}", "database", s->display, "error",
               fp_err_message(err));
        pg_close(s);
        return err;
    }
    s->idle[s->n_idle++] = c;
    s->n_open = 1;
    *out = s;
    return FP_OK;
}

void store_pg__use_migrations(store *s, const store_migration *list, size_t n)
{
    s->migs = list ? list : store_pg__migrations;
    s->n_migs = list ? n : store_pg__migrations_len;
}

void store_pg__crash_before_commit(store *s, int on)
{
    s->crash_before_commit = on;
}

static void pg_pool_stats(store *s, store_pool_stats *out)
{
    pthread_mutex_lock(&s->mu);
    out->open = (size_t)s->n_open;
    out->in_use = (size_t)(s->n_open - s->n_idle);
    out->max = (size_t)s->pool_max;
    pthread_mutex_unlock(&s->mu);
}

/* ---- migrations ----------------------------------------------------------- */

static fp_err pg_check_migrations(const store *s)
{
    for (size_t i = 0; i < s->n_migs; i++)
        if (s->migs[i].version != (int)i + 1 || !s->migs[i].up || !s->migs[i].down) {
            fp_log(FP_LOG_ERROR, "store_bad_migration_list", "{s:i}", "index", (int)i);
            return FP_INTERNAL;
        }
    return FP_OK;
}

/* A one-off query with text parameters and a binary result. */
static fp_err pg_query(store *s, pg_conn *c, const char *sql, const pg_args *a, PGresult **out,
                       const char *op)
{
    static const pg_args none = {0};
    if (!a)
        a = &none;
    c->sent = 1;
    c->fail = PG_FAIL_NONE;
    PGresult *r = PQexecParams(c->db, sql, a->n, NULL, a->val, a->len, a->fmt, 1);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        fp_err err = pg_fail_result(s, c, r, op);
        PQclear(r);
        return err;
    }
    if (out)
        *out = r;
    else
        PQclear(r);
    return FP_OK;
}

/* Current schema version; 0 before the first migration (or without the
 * schema named in the URL). */
static fp_err pg_current_version(store *s, pg_conn *c, int *version)
{
    PGresult *r = NULL;
    *version = 0;
    fp_err err = pg_query(s, c, "SELECT to_regclass('schema_migrations') IS NOT NULL", NULL, &r,
                          "schema_version");
    if (err != FP_OK)
        return err;
    int exists = PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 1;
    PQclear(r);
    if (!exists)
        return FP_OK;
    err = pg_query(s, c, "SELECT coalesce(max(version), 0)::int4 FROM schema_migrations", NULL, &r,
                   "schema_version");
    if (err == FP_OK && PQntuples(r) == 1)
        *version = (int)pg_int(r, 0, 0);
    PQclear(r);
    return err;
}

typedef struct pg_migrate_ctx {
    int target;
    int reached;
} pg_migrate_ctx;

/*
 * One step toward target inside the caller's transaction. The advisory lock
 * is taken first and the version read after it, so instances migrating at
 * once take turns instead of applying a step twice; it is released with the
 * transaction.
 */
static fp_err pg_migrate_step(store *s, pg_conn *c, void *ctx)
{
    pg_migrate_ctx *m = ctx;
    const store_migration *step;
    int cur = 0, up;
    m->reached = 0;
    pg_args a = {0};
    pa_i64(&a, PG_LOCK_MIGRATE);
    pa_i64(&a, s->lock_ns);
    fp_err err = pg_run(s, c, PG_LOCK, &a, NULL, "migrate_lock");
    if (err == FP_OK && s->schema) {
        char *ident = PQescapeIdentifier(c->db, s->schema, strlen(s->schema));
        if (!ident)
            return pg_fail_result(s, c, NULL, "migrate");
        char *sql = fp_printf("CREATE SCHEMA IF NOT EXISTS %s", ident);
        PQfreemem(ident);
        err = pg_command(s, c, sql, "migrate");
        fp_free(sql);
    }
    if (err == FP_OK)
        err = pg_command(s, c,
                         "CREATE TABLE IF NOT EXISTS schema_migrations ("
                         " version integer PRIMARY KEY, name text NOT NULL,"
                         " applied_at bigint NOT NULL)",
                         "migrate");
    if (err == FP_OK)
        err = pg_current_version(s, c, &cur);
    if (err != FP_OK)
        return err;
    if ((size_t)cur > s->n_migs) {
        fp_log(FP_LOG_ERROR, "store_schema_too_new", "{s:i,s:i,s:s}", "current", cur, "latest",
               (int)s->n_migs, "error",
               "the database was migrated by a newer FilmPicker; this build cannot read or "
               "downgrade it");
        return FP_STORAGE;
    }
    if (cur == m->target) {
        m->reached = 1;
        return FP_OK;
    }
    up = cur < m->target;
    step = up ? &s->migs[cur] : &s->migs[cur - 1];
    err = pg_command(s, c, up ? step->up : step->down, up ? "migrate_up" : "migrate_down");
    if (err == FP_OK) {
        pg_args r = {0};
        pa_i64(&r, step->version);
        if (up) {
            pa_text(&r, step->name);
            pa_i64(&r, (int64_t)time(NULL));
        }
        err = pg_query(s, c,
                       up ? "INSERT INTO schema_migrations (version, name, applied_at) "
                            "VALUES ($1, $2, $3)"
                          : "DELETE FROM schema_migrations WHERE version = $1",
                       &r, NULL, "record_migration");
    }
    if (err == FP_OK)
        fp_log(FP_LOG_INFO, "store_migrated", "{s:s,s:i,s:s}", "direction", up ? "up" : "down",
               "version", up ? step->version : step->version - 1, "migration", step->name);
    return err;
}

static fp_err pg_migrate(store *s, int target)
{
    fp_err err = pg_check_migrations(s);
    if (err != FP_OK)
        return err;
    if (target < -1 || target > (int)s->n_migs) {
        fp_log(FP_LOG_ERROR, "store_bad_migration_target", "{s:i,s:i}", "target", target,
               "latest", (int)s->n_migs);
        return FP_INVALID;
    }
    pg_migrate_ctx m = {.target = target == -1 ? (int)s->n_migs : target};
    /* Bounded: each step moves one version, so at most latest*2 steps even if
     * another instance moves the schema the other way meanwhile. */
    for (size_t i = 0; i <= 2 * s->n_migs + 1; i++) {
        err = pg_transact(s, PG_TX_WRITE, pg_migrate_step, &m, "migrate");
        /* Whatever happened, the tables may have changed under the prepared
         * statements of every connection. */
        atomic_fetch_add(&s->gen, 1);
        if (err != FP_OK || m.reached)
            return err;
    }
    return FP_CONFLICT;
}

static fp_err pg_migration_status(store *s, int *current, int *latest)
{
    pg_conn *c = NULL;
    *current = 0;
    *latest = (int)s->n_migs;
    fp_err err = pg_acquire(s, &c);
    if (err != FP_OK)
        return err;
    err = pg_current_version(s, c, current);
    if (err != FP_OK && c->fail == PG_FAIL_CONN && pg_reconnect(s, c) == FP_OK)
        err = pg_current_version(s, c, current);
    pg_release(s, c);
    return err;
}

/* ---- the film catalogue --------------------------------------------------- */

/* Reads row `row` of a PG_FILM_COLS result. */
static void pg_read_film(const PGresult *r, int row, film *f)
{
    f->id = pg_int(r, row, 0);
    f->lb_id = pg_int(r, row, 1);
    f->lb_slug = pg_text(r, row, 2);
    f->lb_uri = pg_text(r, row, 3);
    f->imdb_id = pg_text(r, row, 4);
    f->title = pg_text(r, row, 5);
    f->year = (int)pg_int(r, row, 6);
    f->poster = pg_text(r, row, 7);
}

static int pg_str_compatible(const char *a, const char *b)
{
    return !a || !b || strcmp(a, b) == 0;
}

static int pg_lb_compatible(const film *row, const film *f)
{
    return !row->lb_id || !f->lb_id || row->lb_id == f->lb_id;
}

/* No identifier known on both sides disagrees. */
static int pg_compatible(const film *row, const film *f)
{
    return pg_lb_compatible(row, f) && pg_str_compatible(row->lb_slug, f->lb_slug) &&
           pg_str_compatible(row->lb_uri, f->lb_uri) && pg_str_compatible(row->imdb_id, f->imdb_id);
}

static int pg_has_ids(const film *f)
{
    return f->lb_id || f->lb_slug || f->lb_uri || f->imdb_id;
}

static int pg_cmp_film_id(const void *a, const void *b)
{
    int64_t x = ((const film *)a)->id, y = ((const film *)b)->id;
    return (x > y) - (x < y);
}

static int pg_cmp_film_lb_id(const void *a, const void *b)
{
    int64_t x = ((const film *)a)->lb_id, y = ((const film *)b)->lb_id;
    return (x > y) - (x < y);
}

/* A set of 64-bit values (open addressing, 0 never stored). */
typedef struct pg_set {
    uint64_t *slots;
    size_t cap, len;
} pg_set;

/* 1 when v was there already; adds it otherwise. */
static int pg_set_add(pg_set *hs, uint64_t v)
{
    if (!v)
        v = 1;
    if (2 * (hs->len + 1) > hs->cap) {
        size_t ncap = hs->cap ? 2 * hs->cap : 256;
        uint64_t *ns = fp_calloc(ncap, sizeof *ns);
        for (size_t i = 0; i < hs->cap; i++)
            if (hs->slots[i])
                for (size_t k = (hs->slots[i] * 0x9E3779B97F4A7C15ull) >> 7 & (ncap - 1);;
                     k = (k + 1) & (ncap - 1))
                    if (!ns[k]) {
                        ns[k] = hs->slots[i];
                        break;
                    }
        fp_free(hs->slots);
        hs->slots = ns;
        hs->cap = ncap;
    }
    for (size_t k = (v * 0x9E3779B97F4A7C15ull) >> 7 & (hs->cap - 1);; k = (k + 1) & (hs->cap - 1)) {
        if (hs->slots[k] == v)
            return 1;
        if (!hs->slots[k]) {
            hs->slots[k] = v;
            hs->len++;
            return 0;
        }
    }
}

static int pg_set_has(const pg_set *hs, uint64_t v)
{
    if (!v)
        v = 1;
    if (!hs->cap)
        return 0;
    for (size_t k = (v * 0x9E3779B97F4A7C15ull) >> 7 & (hs->cap - 1);; k = (k + 1) & (hs->cap - 1)) {
        if (hs->slots[k] == v)
            return 1;
        if (!hs->slots[k])
            return 0;
    }
}

static uint64_t pg_hash(char tag, const char *s, int64_t v)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    h = (h ^ (unsigned char)tag) * 1099511628211ull;
    if (s)
        for (; *s; s++)
            h = (h ^ (unsigned char)*s) * 1099511628211ull;
    else
        for (int i = 0; i < 8; i++)
            h = (h ^ (uint8_t)((uint64_t)v >> (8 * i))) * 1099511628211ull;
    return h ? h : 1;
}

/*
 * What one resolve transaction knows besides the database: the rows of the
 * batch's Letterboxd ids read in one query at the start (sorted by lb_id),
 * and the Letterboxd ids this transaction wrote since (an lb_id in neither
 * has no row, so it needs no query of its own).
 */
typedef struct pg_batch {
    film_list known;
    pg_set written;
    int64_t *used; /* rows matched: their orphan marks go at the end */
    size_t n_used, cap_used;
} pg_batch;

static void pg_batch_free(pg_batch *b)
{
    film_list_free(&b->known);
    fp_free(b->written.slots);
    fp_free(b->used);
    memset(b, 0, sizeof *b);
}

static fp_err pg_batch_prefetch(store *s, pg_conn *c, const film *films, size_t n, pg_batch *b)
{
    int64_t *ids = fp_calloc(n ? n : 1, sizeof *ids);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (films[i].lb_id > 0)
            ids[k++] = films[i].lb_id;
    fp_err err = FP_OK;
    if (k > 0) {
        char *arr = pg_id_array(ids, k);
        pg_args a = {0};
        pa_text(&a, arr);
        PGresult *r = NULL;
        err = pg_run(s, c, PG_FILM_BY_LB_IDS, &a, &r, "film_lookup");
        fp_free(arr);
        for (int i = 0; err == FP_OK && i < PQntuples(r); i++)
            pg_read_film(r, i, film_list_push(&b->known));
        PQclear(r);
        if (b->known.len > 1)
            qsort(b->known.items, b->known.len, sizeof *b->known.items, pg_cmp_film_lb_id);
    }
    fp_free(ids);
    return err;
}

static film *pg_batch_known(pg_batch *b, int64_t lb_id)
{
    film key = {.lb_id = lb_id};
    if (!b || b->known.len == 0)
        return NULL;
    return bsearch(&key, b->known.items, b->known.len, sizeof *b->known.items, pg_cmp_film_lb_id);
}

static void pg_batch_use(pg_batch *b, int64_t id)
{
    if (b->n_used == b->cap_used) {
        b->cap_used = b->cap_used ? 2 * b->cap_used : 64;
        b->used = fp_reallocarray(b->used, b->cap_used, sizeof *b->used);
    }
    b->used[b->n_used++] = id;
}

/* Looks up the one row (UNIQUE column) by an integer or text value; row->id
 * stays 0 when there is none. */
static fp_err pg_find_unique(store *s, pg_conn *c, enum pg_stmt_id id, int64_t ival,
                             const char *sval, film *row)
{
    pg_args a = {0};
    if (sval)
        pa_text(&a, sval);
    else
        pa_i64(&a, ival);
    PGresult *r = NULL;
    fp_err err = pg_run(s, c, id, &a, &r, "film_lookup");
    if (err == FP_OK && PQntuples(r) > 0)
        pg_read_film(r, 0, row);
    PQclear(r);
    return err;
}

/*
 * Title + year: among the rows with this match key whose ids do not
 * disagree with f, take the only one. Several candidates are ambiguous; an
 * f without any id then takes the oldest candidate without ids either (the
 * row an earlier id-less import created), as store_sqlite.c does.
 */
static fp_err pg_find_by_key(store *s, pg_conn *c, const char *key, const film *f, film *row)
{
    film_list cands;
    film_list_init(&cands);
    pg_args a = {0};
    pa_text(&a, key);
    PGresult *r = NULL;
    fp_err err = pg_run(s, c, PG_FILM_BY_KEY, &a, &r, "film_lookup");
    for (int i = 0; err == FP_OK && i < PQntuples(r); i++) {
        film tmp = {0};
        pg_read_film(r, i, &tmp);
        if (pg_compatible(&tmp, f))
            *film_list_push(&cands) = tmp;
        else
            film_clear(&tmp);
    }
    PQclear(r);
    size_t pick = cands.len;
    if (cands.len == 1) {
        pick = 0;
    } else if (cands.len > 1 && !pg_has_ids(f)) {
        for (size_t i = 0; i < cands.len && pick == cands.len; i++)
            if (!pg_has_ids(&cands.items[i]))
                pick = i;
    }
    if (err == FP_OK && pick < cands.len) {
        *row = cands.items[pick];
        memset(&cands.items[pick], 0, sizeof cands.items[pick]);
    }
    film_list_free(&cands);
    return err;
}

/* Title alone, when either side lacks the year: only if exactly one row in
 * the whole catalogue has this normalised title. */
static fp_err pg_find_by_norm(store *s, pg_conn *c, const char *norm, const film *f, film *row)
{
    pg_args a = {0};
    pa_text(&a, norm);
    PGresult *r = NULL;
    fp_err err = pg_run(s, c, PG_FILM_BY_NORM, &a, &r, "film_lookup");
    if (err == FP_OK && PQntuples(r) == 1) {
        film found = {0};
        pg_read_film(r, 0, &found);
        if ((found.year == 0 || f->year == 0) && pg_compatible(&found, f))
            *row = found;
        else
            film_clear(&found);
    }
    PQclear(r);
    return err;
}

/*
 * Finds f's row (Letterboxd id, slug, boxd.it link, IMDb id, title + year,
 * then title alone), exactly as store_sqlite.c's sq_find_row; row->id stays
 * 0 when there is none. taken[i] says which of slug/link/IMDb id a row that
 * names another Letterboxd film holds. *key and *norm (caller frees) are set
 * when the title lookups ran. b (may be NULL) answers Letterboxd ids without
 * a query when it can.
 */
static fp_err pg_find_row(store *s, pg_conn *c, pg_batch *b, const film *f, film *row,
                          int taken[3], char **key, char **norm)
{
    fp_err err = FP_OK;
    const struct {
        enum pg_stmt_id stmt;
        const char *value;
    } by_text[3] = {
        {PG_FILM_BY_SLUG, f->lb_slug},
        {PG_FILM_BY_URI, f->lb_uri},
        {PG_FILM_BY_IMDB, f->imdb_id},
    };
    *key = *norm = NULL;
    taken[0] = taken[1] = taken[2] = 0;
    if (f->lb_id > 0) {
        const film *hit = pg_batch_known(b, f->lb_id);
        if (hit) {
            film_copy(row, hit);
            return FP_OK;
        }
        if (!b || pg_set_has(&b->written, (uint64_t)f->lb_id)) {
            err = pg_find_unique(s, c, PG_FILM_BY_LB_ID, f->lb_id, NULL, row);
            if (err != FP_OK || row->id)
                return err;
        }
    }
    for (int i = 0; i < 3; i++) {
        if (!by_text[i].value || !*by_text[i].value)
            continue;
        err = pg_find_unique(s, c, by_text[i].stmt, 0, by_text[i].value, row);
        if (err != FP_OK || (row->id && pg_lb_compatible(row, f)))
            return err;
        if (row->id) {
            taken[i] = 1;
            film_clear(row);
        }
    }
    *key = film_match_key(f->title, f->year);
    err = pg_find_by_key(s, c, *key, f, row);
    if (err != FP_OK || row->id)
        return err;
    *norm = film_normalize_title(f->title);
    return pg_find_by_norm(s, c, *norm, f, row);
}

static fp_err pg_fill(store *s, pg_conn *c, enum pg_stmt_id id, int64_t row_id, const char *text,
                      int64_t num, const char *key, int64_t now)
{
    pg_args a = {0};
    pa_i64(&a, row_id);
    if (text)
        pa_text(&a, text);
    else
        pa_i64(&a, num);
    if (key) /* PG_FILM_SET_YEAR also rewrites the match key */
        pa_text(&a, key);
    pa_i64(&a, now);
    return pg_run(s, c, id, &a, NULL, "film_update");
}

/* Copies into the row what it lacked and f knows; known values stay. Most
 * re-resolved films lack nothing, so this usually writes nothing. The
 * batch's copy of the row (known, may be NULL) follows what was written. */
static fp_err pg_fill_in(store *s, pg_conn *c, pg_batch *b, const film *row, const film *f,
                         film *known, int64_t now)
{
    fp_err err = FP_OK;
    if (!row->lb_id && f->lb_id > 0) {
        err = pg_fill(s, c, PG_FILM_SET_LB_ID, row->id, NULL, f->lb_id, NULL, now);
        pg_set_add(&b->written, (uint64_t)f->lb_id);
    }
    if (err == FP_OK && !row->lb_slug && f->lb_slug && *f->lb_slug) {
        err = pg_fill(s, c, PG_FILM_SET_SLUG, row->id, f->lb_slug, 0, NULL, now);
        if (known && !known->lb_slug)
            known->lb_slug = fp_strdup(f->lb_slug);
    }
    if (err == FP_OK && !row->lb_uri && f->lb_uri && *f->lb_uri) {
        err = pg_fill(s, c, PG_FILM_SET_URI, row->id, f->lb_uri, 0, NULL, now);
        if (known && !known->lb_uri)
            known->lb_uri = fp_strdup(f->lb_uri);
    }
    if (err == FP_OK && !row->imdb_id && f->imdb_id && *f->imdb_id) {
        err = pg_fill(s, c, PG_FILM_SET_IMDB, row->id, f->imdb_id, 0, NULL, now);
        if (known && !known->imdb_id)
            known->imdb_id = fp_strdup(f->imdb_id);
    }
    if (err == FP_OK && !row->year && f->year > 0) {
        char *key = film_match_key(row->title, f->year);
        err = pg_fill(s, c, PG_FILM_SET_YEAR, row->id, NULL, f->year, key, now);
        fp_free(key);
        if (known && !known->year)
            known->year = f->year;
    }
    if (err == FP_OK && f->poster && (!row->poster || strcmp(row->poster, f->poster) != 0)) {
        err = pg_fill(s, c, PG_FILM_SET_POSTER, row->id, f->poster, 0, NULL, now);
        if (known) {
            fp_free(known->poster);
            known->poster = fp_strdup(f->poster);
        }
    }
    return err;
}

/* A new catalogue row for f; ids another row holds (taken) are left out. */
static fp_err pg_insert_film(store *s, pg_conn *c, pg_batch *b, film *f, const char *key,
                             const char *norm, const int taken[3], int64_t now)
{
    const char *text_ids[3] = {f->lb_slug, f->lb_uri, f->imdb_id};
    pg_args a = {0};
    if (f->lb_id > 0)
        pa_i64(&a, f->lb_id);
    else
        pa_text(&a, NULL);
    for (int i = 0; i < 3; i++)
        pa_text(&a, taken[i] || !text_ids[i] || !*text_ids[i] ? NULL : text_ids[i]);
    pa_text(&a, f->title);
    if (f->year > 0)
        pa_i64(&a, f->year);
    else
        pa_text(&a, NULL);
    pa_text(&a, key);
    pa_text(&a, norm);
    pa_i64(&a, now);
    pa_text(&a, f->poster);
    PGresult *r = NULL;
    fp_err err = pg_run(s, c, PG_FILM_INSERT, &a, &r, "film_insert");
    if (err == FP_OK && PQntuples(r) == 1)
        f->id = pg_int(r, 0, 0);
    else if (err == FP_OK)
        err = FP_STORAGE;
    PQclear(r);
    if (err == FP_OK && f->lb_id > 0)
        pg_set_add(&b->written, (uint64_t)f->lb_id);
    return err;
}

/* Finds or inserts f's row and sets f->id. An insert past max_new new rows
 * (*inserted counts them) is not made: FP_TOO_MANY_FILMS. */
static fp_err pg_resolve_one(store *s, pg_conn *c, pg_batch *b, film *f, int64_t now,
                             size_t max_new, size_t *inserted)
{
    film row = {0};
    char *norm = NULL, *key = NULL;
    int taken[3];
    fp_err err = pg_find_row(s, c, b, f, &row, taken, &key, &norm);
    if (err == FP_OK && row.id) {
        f->id = row.id;
        film *known = f->lb_id > 0 && row.lb_id == f->lb_id ? pg_batch_known(b, f->lb_id) : NULL;
        err = pg_fill_in(s, c, b, &row, f, known, now);
        pg_batch_use(b, row.id);
    } else if (err == FP_OK && *inserted >= max_new) {
        err = FP_TOO_MANY_FILMS;
    } else if (err == FP_OK) {
        if (!key)
            key = film_match_key(f->title, f->year);
        if (!norm)
            norm = film_normalize_title(f->title);
        err = pg_insert_film(s, c, b, f, key, norm, taken, now);
        if (err == FP_OK)
            (*inserted)++;
    }
    film_clear(&row);
    fp_free(key);
    fp_free(norm);
    return err;
}

typedef struct pg_resolve_ctx {
    film *films;
    size_t n, max_new, inserted, count;
} pg_resolve_ctx;

static fp_err pg_resolve_tx(store *s, pg_conn *c, void *ctx)
{
    pg_resolve_ctx *rc = ctx;
    pg_batch b = {0};
    film_list_init(&b.known);
    rc->inserted = 0;
    for (size_t i = 0; i < rc->n; i++) /* a run before this one may have set some */
        rc->films[i].id = 0;
    int64_t now = (int64_t)time(NULL);
    fp_err err = pg_batch_prefetch(s, c, rc->films, rc->n, &b);
    for (size_t i = 0; i < rc->n && err == FP_OK; i++)
        err = pg_resolve_one(s, c, &b, &rc->films[i], now, rc->max_new, &rc->inserted);
    if (err == FP_OK && b.n_used > 0) {
        char *arr = pg_id_array(b.used, b.n_used);
        pg_args a = {0};
        pa_text(&a, arr);
        err = pg_run(s, c, PG_FILM_UNORPHAN, &a, NULL, "film_update");
        fp_free(arr);
    }
    pg_batch_free(&b);
    return err;
}

/*
 * How many distinct films of the batch the catalogue lacks, reading only, in
 * one snapshot: each film's row is looked up as films_resolve would, and one
 * that has none counts unless an earlier one without a row shared one of its
 * ids or its title + year (so a film listed twice counts once).
 */
static fp_err pg_count_new_tx(store *s, pg_conn *c, void *ctx)
{
    pg_resolve_ctx *rc = ctx;
    pg_batch b = {0};
    pg_set seen = {0};
    film_list_init(&b.known);
    rc->count = 0;
    fp_err err = pg_batch_prefetch(s, c, rc->films, rc->n, &b);
    for (size_t i = 0; i < rc->n && err == FP_OK; i++) {
        const film *f = &rc->films[i];
        film row = {0};
        char *key = NULL, *norm = NULL;
        int taken[3];
        err = pg_find_row(s, c, &b, f, &row, taken, &key, &norm);
        if (err == FP_OK && !row.id) {
            int dup = 0;
            if (f->lb_id > 0)
                dup |= pg_set_add(&seen, pg_hash('i', NULL, f->lb_id));
            const char *text[3] = {f->lb_slug, f->lb_uri, f->imdb_id};
            for (int t = 0; t < 3; t++)
                if (text[t] && *text[t] && !taken[t])
                    dup |= pg_set_add(&seen, pg_hash((char)('s' + t), text[t], 0));
            if (key)
                dup |= pg_set_add(&seen, pg_hash('k', key, 0));
            if (!dup)
                rc->count++;
        }
        film_clear(&row);
        fp_free(key);
        fp_free(norm);
    }
    fp_free(seen.slots);
    pg_batch_free(&b);
    return err;
}

static fp_err pg_films_resolve_limited(store *s, film *films, size_t n, size_t max_new,
                                       size_t *new_films)
{
    if (new_films)
        *new_films = 0;
    if (n == 0)
        return FP_OK;
    for (size_t i = 0; i < n; i++)
        if (!films[i].title) {
            fp_log(FP_LOG_WARN, "store_film_without_title", "{s:i}", "index", (int)i);
            return FP_INVALID;
        }
    pg_resolve_ctx rc = {.films = films, .n = n, .max_new = max_new};
    fp_err err = pg_transact(s, PG_TX_CATALOGUE, pg_resolve_tx, &rc, "films_resolve");
    if (err != FP_OK) /* rolled back: the ids mean nothing */
        for (size_t i = 0; i < n; i++)
            films[i].id = 0;
    if (err == FP_OK && new_films)
        *new_films = rc.inserted;
    if (err == FP_TOO_MANY_FILMS && new_films) {
        /* The catalogue lock is released: count the rest by reading only. */
        fp_err cerr = pg_transact(s, PG_TX_SNAPSHOT, pg_count_new_tx, &rc, "count_new");
        *new_films = cerr == FP_OK && rc.count > max_new ? rc.count : max_new + 1;
    }
    return err;
}

static fp_err pg_films_resolve(store *s, film *films, size_t n)
{
    return pg_films_resolve_limited(s, films, n, SIZE_MAX, NULL);
}

static fp_err pg_films_load(store *s, const int64_t *ids, size_t n, film_list *out)
{
    pg_conn *c = NULL;
    film_list rows;
    film_list_init(&rows);
    if (n == 0)
        return FP_OK;
    fp_err err = pg_acquire(s, &c);
    if (err != FP_OK)
        return err;
    for (size_t base = 0; err == FP_OK && base < n; base += PG_LOAD_CHUNK) {
        size_t len = n - base < PG_LOAD_CHUNK ? n - base : PG_LOAD_CHUNK;
        char *arr = pg_id_array(ids + base, len);
        pg_args a = {0};
        pa_text(&a, arr);
        PGresult *r = NULL;
        err = pg_read(s, c, PG_FILM_LOAD, &a, &r, "films_load");
        fp_free(arr);
        for (int i = 0; err == FP_OK && i < PQntuples(r); i++)
            pg_read_film(r, i, film_list_push(&rows));
        PQclear(r);
        if (err != FP_OK || rows.len == 0)
            continue;
        qsort(rows.items, rows.len, sizeof *rows.items, pg_cmp_film_id);
        for (size_t i = 0; i < len; i++) {
            film key = {.id = ids[base + i]};
            const film *hit = bsearch(&key, rows.items, rows.len, sizeof *rows.items,
                                      pg_cmp_film_id);
            if (hit)
                film_copy(film_list_push(out), hit);
        }
        film_list_free(&rows);
    }
    film_list_free(&rows);
    pg_release(s, c);
    return err;
}

/* ---- watchlists and watched sets ------------------------------------------ */

/* The statements of one table of sealed rows (watchlists, watched). */
typedef struct pg_sealed_table {
    enum pg_stmt_id get, upsert, create, cas;
    const char *op_get, *op_put;
} pg_sealed_table;

static const pg_sealed_table pg_watchlists = {PG_WL_GET, PG_WL_UPSERT, PG_WL_CREATE, PG_WL_CAS,
                                              "watchlist_get", "watchlist_put"};
static const pg_sealed_table pg_watched = {PG_WD_GET, PG_WD_UPSERT, PG_WD_CREATE, PG_WD_CAS,
                                           "watched_get", "watched_put"};

static fp_err pg_sealed_get(store *s, const pg_sealed_table *t, const uint8_t key[STORE_KEY_BYTES],
                            store_watchlist *out)
{
    pg_conn *c = NULL;
    memset(out, 0, sizeof *out);
    fp_err err = pg_acquire(s, &c);
    if (err != FP_OK)
        return err;
    pg_args a = {0};
    pa_bytea(&a, key, STORE_KEY_BYTES);
    PGresult *r = NULL;
    err = pg_read(s, c, t->get, &a, &r, t->op_get);
    if (err == FP_OK && PQntuples(r) == 1) {
        out->sealed = pg_blob(r, 0, 0, &out->sealed_len);
        out->fetched_at = pg_int(r, 0, 1);
        out->version = pg_int(r, 0, 2);
    } else if (err == FP_OK) {
        err = FP_NOT_FOUND;
    }
    PQclear(r);
    pg_release(s, c);
    return err;
}

typedef struct pg_put_ctx {
    const pg_sealed_table *t;
    const uint8_t *key, *sealed;
    size_t sealed_len;
    int64_t stamp, expected, version;
} pg_put_ctx;

static fp_err pg_sealed_put_tx(store *s, pg_conn *c, void *ctx)
{
    pg_put_ctx *p = ctx;
    enum pg_stmt_id id = p->expected == -1  ? p->t->upsert
                         : p->expected == 0 ? p->t->create
                                            : p->t->cas;
    pg_args a = {0};
    pa_bytea(&a, p->key, STORE_KEY_BYTES);
    pa_bytea(&a, p->sealed, p->sealed_len);
    pa_i64(&a, p->stamp);
    if (id == p->t->cas)
        pa_i64(&a, p->expected);
    PGresult *r = NULL;
    fp_err err = pg_run(s, c, id, &a, &r, p->t->op_put);
    if (err == FP_OK && PQntuples(r) == 1)
        p->version = pg_int(r, 0, 0);
    else if (err == FP_OK)
        err = FP_CONFLICT; /* the row's version moved on (or it is gone / exists) */
    PQclear(r);
    return err;
}

static fp_err pg_sealed_put(store *s, const pg_sealed_table *t, const uint8_t key[STORE_KEY_BYTES],
                            const uint8_t *sealed, size_t sealed_len, int64_t stamp,
                            int64_t expected_version, int64_t *new_version)
{
    if ((!sealed && sealed_len) || expected_version < -1 || sealed_len > INT32_MAX)
        return FP_INVALID;
    pg_put_ctx p = {t, key, sealed, sealed_len, stamp, expected_version, 0};
    fp_err err = pg_transact(s, PG_TX_WRITE, pg_sealed_put_tx, &p, t->op_put);
    if (err == FP_OK && new_version)
        *new_version = p.version;
    return err;
}

static fp_err pg_watchlist_get(store *s, const uint8_t key[STORE_KEY_BYTES], store_watchlist *out)
{
    return pg_sealed_get(s, &pg_watchlists, key, out);
}

static fp_err pg_watchlist_put(store *s, const uint8_t key[STORE_KEY_BYTES], const uint8_t *sealed,
                               size_t sealed_len, int64_t fetched_at, int64_t expected_version,
                               int64_t *new_version)
{
    return pg_sealed_put(s, &pg_watchlists, key, sealed, sealed_len, fetched_at, expected_version,
                         new_version);
}

static fp_err pg_watched_get(store *s, const uint8_t key[STORE_KEY_BYTES], store_watchlist *out)
{
    return pg_sealed_get(s, &pg_watched, key, out);
}

static fp_err pg_watched_put(store *s, const uint8_t key[STORE_KEY_BYTES], const uint8_t *sealed,
                             size_t sealed_len, int64_t updated_at, int64_t expected_version,
                             int64_t *new_version)
{
    return pg_sealed_put(s, &pg_watched, key, sealed, sealed_len, updated_at, expected_version,
                         new_version);
}

static fp_err pg_watchlist_delete_tx(store *s, pg_conn *c, void *ctx)
{
    pg_args a = {0};
    pa_bytea(&a, ctx, STORE_KEY_BYTES);
    PGresult *r = NULL;
    fp_err err = pg_run(s, c, PG_WL_DELETE, &a, &r, "watchlist_delete");
    if (err == FP_OK && pg_changes(r) == 0)
        err = FP_NOT_FOUND;
    PQclear(r);
    return err;
}

static fp_err pg_watchlist_delete(store *s, const uint8_t key[STORE_KEY_BYTES])
{
    return pg_transact(s, PG_TX_WRITE, pg_watchlist_delete_tx, (void *)key, "watchlist_delete");
}

static fp_err pg_ping(store *s)
{
    pg_conn *c = NULL;
    fp_err err = pg_acquire(s, &c);
    if (err != FP_OK)
        return err;
    err = pg_read(s, c, PG_PING, NULL, NULL, "ping");
    pg_release(s, c);
    return err;
}

/* ---- the catalogue sweep -------------------------------------------------- */

static fp_err pg_films_page(store *s, int64_t after_id, size_t limit, store_film_mark *out,
                            size_t *n)
{
    pg_conn *c = NULL;
    *n = 0;
    if (limit == 0)
        return FP_OK;
    fp_err err = pg_acquire(s, &c);
    if (err != FP_OK)
        return err;
    pg_args a = {0};
    pa_i64(&a, after_id);
    pa_i64(&a, (int64_t)limit);
    PGresult *r = NULL;
    err = pg_read(s, c, PG_FILM_PAGE, &a, &r, "films_page");
    for (int i = 0; err == FP_OK && i < PQntuples(r) && *n < limit; i++) {
        out[*n].id = pg_int(r, i, 0);
        out[*n].orphaned_at = pg_int(r, i, 1);
        (*n)++;
    }
    PQclear(r);
    pg_release(s, c);
    if (err != FP_OK)
        *n = 0;
    return err;
}

typedef struct pg_ids_ctx {
    enum pg_stmt_id stmt;
    const int64_t *ids;
    size_t n;
    int64_t arg;
    const char *op;
    size_t changed;
} pg_ids_ctx;

static fp_err pg_ids_tx(store *s, pg_conn *c, void *ctx)
{
    pg_ids_ctx *x = ctx;
    char *arr = pg_id_array(x->ids, x->n);
    pg_args a = {0};
    pa_text(&a, arr);
    if (x->stmt != PG_FILM_UNORPHAN)
        pa_i64(&a, x->arg);
    PGresult *r = NULL;
    fp_err err = pg_run(s, c, x->stmt, &a, &r, x->op);
    x->changed = err == FP_OK ? pg_changes(r) : 0;
    PQclear(r);
    fp_free(arr);
    return err;
}

static fp_err pg_films_mark(store *s, const int64_t *ids, size_t n, int64_t at)
{
    if (at < 0)
        return FP_INVALID;
    if (n == 0)
        return FP_OK;
    pg_ids_ctx x = {at ? PG_FILM_MARK : PG_FILM_UNORPHAN, ids, n, at, "films_mark", 0};
    return pg_transact(s, PG_TX_WRITE, pg_ids_tx, &x, "films_mark");
}

static fp_err pg_films_delete_orphans(store *s, const int64_t *ids, size_t n,
                                      int64_t orphaned_before, size_t *deleted)
{
    if (deleted)
        *deleted = 0;
    if (n == 0)
        return FP_OK;
    /* Under the catalogue lock: a resolve that takes one of these films again
     * has either committed (its mark is gone, the film stays) or not begun. */
    pg_ids_ctx x = {PG_FILM_DELETE_ORPHANS, ids, n, orphaned_before, "films_delete", 0};
    fp_err err = pg_transact(s, PG_TX_CATALOGUE, pg_ids_tx, &x, "films_delete");
    if (err == FP_OK && deleted)
        *deleted = x.changed;
    return err;
}

/* ---- the data key --------------------------------------------------------- */

static fp_err pg_datakey_get(store *s, store_datakey *out)
{
    pg_conn *c = NULL;
    memset(out, 0, sizeof *out);
    fp_err err = pg_acquire(s, &c);
    if (err != FP_OK)
        return err;
    PGresult *r = NULL;
    err = pg_read(s, c, PG_DK_GET, NULL, &r, "datakey_get");
    if (err == FP_OK && PQntuples(r) == 1) {
        out->wrapped = pg_blob(r, 0, 0, &out->wrapped_len);
        out->created_at = pg_int(r, 0, 1);
        out->updated_at = pg_int(r, 0, 2);
    } else if (err == FP_OK) {
        err = FP_NOT_FOUND;
    }
    PQclear(r);
    pg_release(s, c);
    return err;
}

typedef struct pg_dk_ctx {
    const uint8_t *wrapped, *expected;
    size_t len, expected_len;
    size_t watchlists, watched;
} pg_dk_ctx;

static fp_err pg_datakey_put_tx(store *s, pg_conn *c, void *ctx)
{
    pg_dk_ctx *d = ctx;
    pg_args a = {0};
    pa_bytea(&a, d->wrapped, d->len);
    pa_i64(&a, (int64_t)time(NULL));
    if (d->expected)
        pa_bytea(&a, d->expected, d->expected_len);
    PGresult *r = NULL;
    fp_err err = pg_run(s, c, d->expected ? PG_DK_CAS : PG_DK_CREATE, &a, &r, "datakey_put");
    if (err == FP_OK && pg_changes(r) == 0)
        err = FP_CONFLICT;
    PQclear(r);
    return err;
}

static fp_err pg_datakey_put(store *s, const uint8_t *wrapped, size_t len, const uint8_t *expected,
                             size_t expected_len)
{
    if (!wrapped || !len || len > INT32_MAX || expected_len > INT32_MAX)
        return FP_INVALID;
    pg_dk_ctx d = {wrapped, expected, len, expected_len, 0, 0};
    return pg_transact(s, PG_TX_WRITE, pg_datakey_put_tx, &d, "datakey_put");
}

static fp_err pg_datakey_reset_tx(store *s, pg_conn *c, void *ctx)
{
    pg_dk_ctx *d = ctx;
    PGresult *r = NULL;
    d->watchlists = d->watched = 0;
    fp_err err = pg_run(s, c, PG_WL_CLEAR, NULL, &r, "datakey_reset");
    if (err == FP_OK)
        d->watchlists = pg_changes(r);
    PQclear(r);
    r = NULL;
    if (err == FP_OK)
        err = pg_run(s, c, PG_WD_CLEAR, NULL, &r, "datakey_reset");
    if (err == FP_OK)
        d->watched = pg_changes(r);
    PQclear(r);
    if (err == FP_OK) {
        pg_args a = {0};
        pa_bytea(&a, d->wrapped, d->len);
        pa_i64(&a, (int64_t)time(NULL));
        err = pg_run(s, c, PG_DK_REPLACE, &a, NULL, "datakey_reset");
    }
    return err;
}

static fp_err pg_datakey_reset(store *s, const uint8_t *wrapped, size_t len, size_t *watchlists,
                               size_t *watched)
{
    if (watchlists)
        *watchlists = 0;
    if (watched)
        *watched = 0;
    if (!wrapped || !len || len > INT32_MAX)
        return FP_INVALID;
    pg_dk_ctx d = {wrapped, NULL, len, 0, 0, 0};
    fp_err err = pg_transact(s, PG_TX_WRITE, pg_datakey_reset_tx, &d, "datakey_reset");
    if (err == FP_OK) { /* else rolled back: nothing was deleted */
        if (watchlists)
            *watchlists = d.watchlists;
        if (watched)
            *watched = d.watched;
    }
    return err;
}

/* ---- every sealed row, in pages ------------------------------------------- */

static fp_err pg_sealed_page(store *s, store_sealed_kind kind, const uint8_t *after, size_t limit,
                             store_sealed_row **rows, size_t *n)
{
    pg_conn *c = NULL;
    store_sealed_row *out = NULL;
    size_t len = 0;
    *rows = NULL;
    *n = 0;
    if (kind != STORE_SEALED_WATCHLISTS && kind != STORE_SEALED_WATCHED)
        return FP_INVALID;
    if (limit == 0)
        return FP_OK;
    if (limit > 100000)
        limit = 100000;
    fp_err err = pg_acquire(s, &c);
    if (err != FP_OK)
        return err;
    pg_args a = {0};
    pa_bytea(&a, after, after ? STORE_KEY_BYTES : 0);
    pa_i64(&a, (int64_t)limit);
    PGresult *r = NULL;
    err = pg_read(s, c, kind == STORE_SEALED_WATCHLISTS ? PG_WL_PAGE : PG_WD_PAGE, &a, &r,
                  "sealed_page");
    if (err == FP_OK && PQntuples(r) > 0) {
        out = fp_calloc(limit, sizeof *out);
        for (int i = 0; i < PQntuples(r) && len < limit; i++) {
            if (PQgetlength(r, i, 0) != STORE_KEY_BYTES)
                continue; /* the table's CHECK makes this impossible */
            store_sealed_row *row = &out[len++];
            memcpy(row->key, PQgetvalue(r, i, 0), STORE_KEY_BYTES);
            row->sealed = pg_blob(r, i, 1, &row->sealed_len);
        }
    }
    PQclear(r);
    pg_release(s, c);
    if (err != FP_OK || len == 0) {
        store_sealed_rows_free(out, len);
        return err;
    }
    *rows = out;
    *n = len;
    return FP_OK;
}

const store_backend store_backend_postgresql = {
    .name = "postgresql",
    .accepts = pg_accepts,
    .open = pg_open,
    .close = pg_close,
    .migrate = pg_migrate,
    .migration_status = pg_migration_status,
    .films_resolve = pg_films_resolve,
    .films_resolve_limited = pg_films_resolve_limited,
    .films_page = pg_films_page,
    .films_mark = pg_films_mark,
    .films_delete_orphans = pg_films_delete_orphans,
    .films_load = pg_films_load,
    .watchlist_get = pg_watchlist_get,
    .watchlist_put = pg_watchlist_put,
    .watchlist_delete = pg_watchlist_delete,
    .watched_get = pg_watched_get,
    .watched_put = pg_watched_put,
    .ping = pg_ping,
    .datakey_get = pg_datakey_get,
    .datakey_put = pg_datakey_put,
    .datakey_reset = pg_datakey_reset,
    .sealed_page = pg_sealed_page,
    .pool_stats = pg_pool_stats,
};

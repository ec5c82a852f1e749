/*
 * store_sqlite.c - the embedded storage backend (SQLite, one file).
 *
 * URL forms: a plain path, "sqlite:PATH" or "sqlite://PATH" ("sqlite:///abs"
 * is the absolute path /abs); ":memory:" gives a private in-memory database
 * for tests (one connection, since each :memory: connection is its own db).
 *
 * Concurrency: the HTTP server calls in from many threads, mostly to read.
 * The store keeps a small pool of connections (SQ_POOL_MAX), opened lazily
 * and handed out one thread at a time under a mutex/condvar; WAL lets the
 * readers run in parallel with the one writer. Each connection caches its
 * prepared statements. Writers inside this process queue on write_mu
 * before BEGIN IMMEDIATE, so they wait in order instead of spinning in
 * SQLite's busy handler; busy_timeout still covers other processes (the
 * migrate command, a second server). A lock that outlives the timeout is
 * FP_UNAVAILABLE.
 *
 * Durability: journal_mode=WAL with synchronous=NORMAL. In WAL mode NORMAL
 * loses nothing when the process crashes or is killed (the commit is in the
 * WAL file before COMMIT returns) and never corrupts the file; only an OS
 * crash or power loss can roll back the last few commits. Everything stored
 * here can be rebuilt (watchlists refetched, catalogue re-resolved), so the
 * fsync per commit that FULL would cost is not worth it.
 *
 * Files: the database, its -wal and its -shm are mode 0600. A missing file is
 * created here with that mode before SQLite opens it (SQLite gives -wal and
 * -shm the mode of the main file); existing files that grant anything to
 * group or others are tightened (store_file_mode_tightened). An existing
 * 0-byte file is refused (FP_EMPTY_DATABASE): SQLite would take it for a new
 * empty database, so a file truncated by a bad copy or a full disk would
 * silently start afresh. The first open of a WAL database writes its header,
 * so only the file this process has just created is ever empty; an flock()
 * held from creation until that header is written keeps a second process
 * starting at the same moment from taking it for a truncated one.
 *
 * Errors: not a database / corrupt -> FP_CORRUPT, cannot open or write the
 * file -> FP_IO, lock timeout -> FP_UNAVAILABLE, an empty file ->
 * FP_EMPTY_DATABASE, anything else FP_STORAGE; each is logged once with
 * SQLite's message, never with user data.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/mem.h"
#include "store/store_sqlite.h"

#define SQ_POOL_MAX 4
#define SQ_BUSY_TIMEOUT_MS 5000
#define SQ_LOAD_CHUNK 500

#define SQ_FILM_COLS "id, lb_id, lb_slug, lb_uri, imdb_id, title, year, poster"

enum sq_stmt_id {
    SQ_BEGIN,
    SQ_COMMIT,
    SQ_ROLLBACK,
    SQ_FILM_BY_LB_ID,
    SQ_FILM_BY_SLUG,
    SQ_FILM_BY_URI,
    SQ_FILM_BY_IMDB,
    SQ_FILM_BY_KEY,
    SQ_FILM_BY_NORM,
    SQ_FILM_INSERT,
    SQ_FILM_SET_LB_ID,
    SQ_FILM_SET_SLUG,
    SQ_FILM_SET_URI,
    SQ_FILM_SET_IMDB,
    SQ_FILM_SET_YEAR,
    SQ_FILM_SET_POSTER,
    SQ_FILM_LOAD,
    SQ_FILM_UNORPHAN,
    SQ_WL_GET,
    SQ_WL_UPSERT,
    SQ_WL_CREATE,
    SQ_WL_CAS,
    SQ_WL_DELETE,
    SQ_WD_GET,
    SQ_WD_UPSERT,
    SQ_WD_CREATE,
    SQ_WD_CAS,
    SQ_PING,
    SQ_DK_GET,
    SQ_DK_CREATE,
    SQ_DK_CAS,
    SQ_DK_REPLACE,
    SQ_WL_PAGE,
    SQ_WD_PAGE,
    SQ_WL_CLEAR,
    SQ_WD_CLEAR,
    SQ_FILM_PAGE,
    SQ_FILM_MARK,
    SQ_FILM_UNMARK,
    SQ_FILM_DELETE_ORPHAN,
    SQ__COUNT
};

static const char *const sq_sql[SQ__COUNT] = {
    [SQ_BEGIN] = "BEGIN IMMEDIATE",
    [SQ_COMMIT] = "COMMIT",
    [SQ_ROLLBACK] = "ROLLBACK",
    [SQ_FILM_BY_LB_ID] = "SELECT " SQ_FILM_COLS " FROM films WHERE lb_id = ?1",
    [SQ_FILM_BY_SLUG] = "SELECT " SQ_FILM_COLS " FROM films WHERE lb_slug = ?1",
    [SQ_FILM_BY_URI] = "SELECT " SQ_FILM_COLS " FROM films WHERE lb_uri = ?1",
    [SQ_FILM_BY_IMDB] = "SELECT " SQ_FILM_COLS " FROM films WHERE imdb_id = ?1",
    [SQ_FILM_BY_KEY] = "SELECT " SQ_FILM_COLS " FROM films WHERE match_key = ?1 ORDER BY id",
    /* Two rows are enough to know a title is not unique. */
    [SQ_FILM_BY_NORM] = "SELECT " SQ_FILM_COLS " FROM films WHERE norm_title = ?1 LIMIT 2",
    [SQ_FILM_INSERT] = "INSERT INTO films (lb_id, lb_slug, lb_uri, imdb_id, title, year, "
                       "match_key, norm_title, created_at, updated_at, poster) "
                       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10)",
    /* OR IGNORE: a value another row already holds is simply not copied. */
    [SQ_FILM_SET_LB_ID] = "UPDATE OR IGNORE films SET lb_id = ?2, updated_at = ?3 "
                          "WHERE id = ?1 AND lb_id IS NULL",
    [SQ_FILM_SET_SLUG] = "UPDATE OR IGNORE films SET lb_slug = ?2, updated_at = ?3 "
                         "WHERE id = ?1 AND lb_slug IS NULL",
    [SQ_FILM_SET_URI] = "UPDATE OR IGNORE films SET lb_uri = ?2, updated_at = ?3 "
                        "WHERE id = ?1 AND lb_uri IS NULL",
    [SQ_FILM_SET_IMDB] = "UPDATE OR IGNORE films SET imdb_id = ?2, updated_at = ?3 "
                         "WHERE id = ?1 AND imdb_id IS NULL",
    [SQ_FILM_SET_YEAR] = "UPDATE films SET year = ?2, match_key = ?3, updated_at = ?4 "
                         "WHERE id = ?1 AND year IS NULL",
    /* The newest poster a page gave wins (its ?v= changes with the image). */
    [SQ_FILM_SET_POSTER] = "UPDATE films SET poster = ?2, updated_at = ?3 "
                           "WHERE id = ?1 AND poster IS NOT ?2",
    [SQ_FILM_LOAD] = NULL, /* built by sq_load_sql(): SQ_LOAD_CHUNK parameters */
    /* A list uses the film again: the sweep's mark goes (no write if none). */
    [SQ_FILM_UNORPHAN] = "UPDATE films SET orphaned_at = NULL "
                         "WHERE id = ?1 AND orphaned_at IS NOT NULL",
    [SQ_WL_GET] = "SELECT sealed, fetched_at, version FROM watchlists WHERE key = ?1",
    [SQ_WL_UPSERT] = "INSERT INTO watchlists (key, sealed, fetched_at, version) "
                     "VALUES (?1, ?2, ?3, 1) ON CONFLICT (key) DO UPDATE SET "
                     "sealed = excluded.sealed, fetched_at = excluded.fetched_at, "
                     "version = watchlists.version + 1 RETURNING version",
    [SQ_WL_CREATE] = "INSERT INTO watchlists (key, sealed, fetched_at, version) "
                     "VALUES (?1, ?2, ?3, 1) ON CONFLICT (key) DO NOTHING RETURNING version",
    [SQ_WL_CAS] = "UPDATE watchlists SET sealed = ?2, fetched_at = ?3, version = version + 1 "
                  "WHERE key = ?1 AND version = ?4 RETURNING version",
    [SQ_WL_DELETE] = "DELETE FROM watchlists WHERE key = ?1",
    [SQ_WD_GET] = "SELECT sealed, updated_at, version FROM watched WHERE key = ?1",
    [SQ_WD_UPSERT] = "INSERT INTO watched (key, sealed, updated_at, version) "
                     "VALUES (?1, ?2, ?3, 1) ON CONFLICT (key) DO UPDATE SET "
                     "sealed = excluded.sealed, updated_at = excluded.updated_at, "
                     "version = watched.version + 1 RETURNING version",
    [SQ_WD_CREATE] = "INSERT INTO watched (key, sealed, updated_at, version) "
                     "VALUES (?1, ?2, ?3, 1) ON CONFLICT (key) DO NOTHING RETURNING version",
    [SQ_WD_CAS] = "UPDATE watched SET sealed = ?2, updated_at = ?3, version = version + 1 "
                  "WHERE key = ?1 AND version = ?4 RETURNING version",
    [SQ_PING] = "SELECT 1",
    [SQ_DK_GET] = "SELECT wrapped, created_at, updated_at FROM data_key WHERE id = 1",
    [SQ_DK_CREATE] = "INSERT INTO data_key (id, wrapped, created_at, updated_at) "
                     "VALUES (1, ?1, ?2, ?2) ON CONFLICT (id) DO NOTHING",
    [SQ_DK_CAS] = "UPDATE data_key SET wrapped = ?1, updated_at = ?2 WHERE id = 1 AND wrapped = ?3",
    [SQ_DK_REPLACE] = "INSERT OR REPLACE INTO data_key (id, wrapped, created_at, updated_at) "
                      "VALUES (1, ?1, ?2, ?2)",
    /* x'' sorts before every key: the first page. */
    [SQ_WL_PAGE] = "SELECT key, sealed FROM watchlists WHERE key > ?1 ORDER BY key LIMIT ?2",
    [SQ_WD_PAGE] = "SELECT key, sealed FROM watched WHERE key > ?1 ORDER BY key LIMIT ?2",
    [SQ_WL_CLEAR] = "DELETE FROM watchlists",
    [SQ_WD_CLEAR] = "DELETE FROM watched",
    [SQ_FILM_PAGE] = "SELECT id, coalesce(orphaned_at, 0) FROM films WHERE id > ?1 "
                     "ORDER BY id LIMIT ?2",
    [SQ_FILM_MARK] = "UPDATE films SET orphaned_at = ?2 WHERE id = ?1 AND orphaned_at IS NULL",
    [SQ_FILM_UNMARK] = "UPDATE films SET orphaned_at = NULL "
                       "WHERE id = ?1 AND orphaned_at IS NOT NULL",
    /* Without AUTOINCREMENT SQLite hands out max(id) + 1: keeping the highest
     * row keeps every deleted id from coming back as another film. */
    [SQ_FILM_DELETE_ORPHAN] = "DELETE FROM films WHERE id = ?1 AND orphaned_at IS NOT NULL "
                              "AND orphaned_at <= ?2 AND id < (SELECT max(id) FROM films)",
};

typedef struct sq_conn {
    sqlite3 *db;
    sqlite3_stmt *stmt[SQ__COUNT];
} sq_conn;

struct store {
    char *path;
    int open_flags;
    int pool_max;
    pthread_mutex_t mu; /* guards idle, n_idle, n_open */
    pthread_cond_t cv;
    sq_conn *idle[SQ_POOL_MAX];
    int n_idle;
    int n_open; /* connections open or being opened */
    pthread_mutex_t write_mu;
    const store_sqlite_migration *migs;
    size_t n_migs;
    int busy_timeout_ms;
    int crash_before_commit;
    int file_fd; /* the database file, open since sq_prepare_file (or -1) */
};

/* ---- errors ------------------------------------------------------------ */

/* Maps a SQLite result code to the project's error, logging it once. */
static fp_err sq_fail(sqlite3 *db, int rc, const char *op)
{
    const char *msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    const char *file = db ? sqlite3_db_filename(db, "main") : NULL;
    const char *event = "store_error";
    fp_log_level level = FP_LOG_ERROR;
    fp_err err = FP_STORAGE;
    switch (rc & 0xFF) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        event = "store_busy";
        level = FP_LOG_WARN;
        err = FP_UNAVAILABLE;
        break;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        event = "store_corrupt";
        err = FP_CORRUPT;
        break;
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_PERM:
        event = "store_io_error";
        err = FP_IO;
        break;
    case SQLITE_NOMEM:
        err = FP_NOMEM;
        break;
    default:
        break;
    }
    if (!msg)
        msg = "";
    if (!file)
        file = "";
    /* The usual cause of a missing table is a database nobody migrated. */
    if (strstr(msg, "no such table"))
        fp_log(level, event, "{s:s,s:i,s:s,s:s,s:s}", "op", op, "sqlite_code", rc, "error", msg,
               "file", file, "hint", "run `filmpicker migrate up`");
    else
        fp_log(level, event, "{s:s,s:i,s:s,s:s}", "op", op, "sqlite_code", rc, "error", msg,
               "file", file);
    return err;
}

/* ---- connections ------------------------------------------------------- */

static char *sq_load_sql(void)
{
    fp_buf b;
    fp_buf_init(&b, (size_t)-1);
    fp_err rc = fp_buf_appendf(&b, "SELECT " SQ_FILM_COLS " FROM films WHERE id IN (?1");
    for (int i = 2; rc == FP_OK && i <= SQ_LOAD_CHUNK; i++)
        rc = fp_buf_appendf(&b, ",?%d", i);
    if (rc == FP_OK)
        rc = fp_buf_append(&b, ")", 1);
    return fp_buf_steal(&b, NULL); /* unlimited buffer: rc cannot fail */
}

/* The cached statement id of c, prepared on first use. */
static fp_err sq_stmt(sq_conn *c, enum sq_stmt_id id, sqlite3_stmt **out)
{
    if (!c->stmt[id]) {
        char *built = id == SQ_FILM_LOAD ? sq_load_sql() : NULL;
        int rc = sqlite3_prepare_v3(c->db, built ? built : sq_sql[id], -1,
                                    SQLITE_PREPARE_PERSISTENT, &c->stmt[id], NULL);
        fp_free(built);
        if (rc != SQLITE_OK) {
            c->stmt[id] = NULL;
            return sq_fail(c->db, rc, "prepare");
        }
    }
    *out = c->stmt[id];
    return FP_OK;
}

static void sq_done(sqlite3_stmt *st)
{
    if (st) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
}

static void sq_conn_close(sq_conn *c)
{
    if (!c)
        return;
    for (int i = 0; i < SQ__COUNT; i++)
        sqlite3_finalize(c->stmt[i]);
    sqlite3_close(c->db);
    fp_free(c);
}

static fp_err sq_exec(sq_conn *c, const char *sql, const char *op)
{
    int rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? FP_OK : sq_fail(c->db, rc, op);
}

/* Runs a one-row text PRAGMA and copies the answer into out. */
static fp_err sq_pragma_text(sq_conn *c, const char *sql, char *out, size_t out_size)
{
    sqlite3_stmt *st = NULL;
    fp_err err = FP_OK;
    int rc = sqlite3_prepare_v2(c->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        snprintf(out, out_size, "%s", t ? (const char *)t : "");
    } else if (rc == SQLITE_DONE) {
        out[0] = '\0';
    } else {
        err = sq_fail(c->db, rc, sql);
    }
    sqlite3_finalize(st);
    return err;
}

static fp_err sq_conn_open(store *s, int first, sq_conn **out)
{
    fp_err err = FP_OK;
    char answer[256];
    sq_conn *c = fp_calloc(1, sizeof *c);
    *out = NULL;

    int rc = sqlite3_open_v2(s->path, &c->db, s->open_flags, NULL);
    if (rc != SQLITE_OK) {
        err = sq_fail(c->db, rc, "open");
        goto out;
    }
    sqlite3_extended_result_codes(c->db, 1);
    pthread_mutex_lock(&s->mu);
    sqlite3_busy_timeout(c->db, s->busy_timeout_ms);
    pthread_mutex_unlock(&s->mu);
    if (sqlite3_db_readonly(c->db, "main") == 1) {
        fp_log(FP_LOG_ERROR, "store_io_error", "{s:s,s:s}", "file", s->path, "error",
               "the database file is read-only");
        err = FP_IO;
        goto out;
    }
    /* The first statement reads the header: a file that is not a database
     * fails here with SQLITE_NOTADB. */
    err = sq_pragma_text(c, "PRAGMA journal_mode=WAL", answer, sizeof answer);
    if (err != FP_OK)
        goto out;
    if (strcmp(answer, "wal") != 0 && strcmp(answer, "memory") != 0)
        fp_log(FP_LOG_WARN, "store_no_wal", "{s:s,s:s}", "file", s->path, "journal_mode", answer);
    err = sq_exec(c, "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY",
                  "pragmas");
    if (err != FP_OK)
        goto out;
    if (first) {
        /* Once per open, not per connection: it reads every page, which is the
         * price of refusing a damaged file at start-up rather than mid-request. */
        err = sq_pragma_text(c, "PRAGMA quick_check(1)", answer, sizeof answer);
        if (err == FP_OK && strcmp(answer, "ok") != 0) {
            fp_log(FP_LOG_ERROR, "store_corrupt", "{s:s,s:s,s:s}", "op", "quick_check", "file",
                   s->path, "error", answer);
            err = FP_CORRUPT;
        }
        if (err != FP_OK)
            goto out;
    }
    *out = c;
    c = NULL;
out:
    sq_conn_close(c);
    return err;
}

static fp_err sq_acquire(store *s, sq_conn **out)
{
    pthread_mutex_lock(&s->mu);
    for (;;) {
        if (s->n_idle > 0) {
            *out = s->idle[--s->n_idle];
            pthread_mutex_unlock(&s->mu);
            return FP_OK;
        }
        if (s->n_open < s->pool_max) {
            s->n_open++;
            pthread_mutex_unlock(&s->mu);
            /* Opening is slow (file I/O): do it outside the lock. */
            fp_err err = sq_conn_open(s, 0, out);
            if (err != FP_OK) {
                pthread_mutex_lock(&s->mu);
                s->n_open--;
                pthread_cond_signal(&s->cv);
                pthread_mutex_unlock(&s->mu);
            }
            return err;
        }
        pthread_cond_wait(&s->cv, &s->mu);
    }
}

static void sq_release(store *s, sq_conn *c)
{
    if (!c)
        return;
    if (!sqlite3_get_autocommit(c->db)) /* a transaction left open by an error path */
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_lock(&s->mu);
    s->idle[s->n_idle++] = c;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* Runs a cached statement that returns no rows. */
static fp_err sq_run(sq_conn *c, enum sq_stmt_id id, const char *op)
{
    sqlite3_stmt *st;
    fp_err err = sq_stmt(c, id, &st);
    if (err != FP_OK)
        return err;
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        err = sq_fail(c->db, rc, op);
    sq_done(st);
    return err;
}

/* A write transaction: in-process writers queue on write_mu first. */
static fp_err sq_begin_write(store *s, sq_conn **c)
{
    pthread_mutex_lock(&s->write_mu);
    fp_err err = sq_acquire(s, c);
    if (err == FP_OK) {
        err = sq_run(*c, SQ_BEGIN, "begin");
        if (err != FP_OK) {
            sq_release(s, *c);
            *c = NULL;
        }
    }
    if (err != FP_OK)
        pthread_mutex_unlock(&s->write_mu);
    return err;
}

/* Commits when err is FP_OK, else rolls back; returns the final error. */
static fp_err sq_end_write(store *s, sq_conn *c, fp_err err)
{
    if (err == FP_OK)
        err = sq_run(c, SQ_COMMIT, "commit");
    if (err != FP_OK && !sqlite3_get_autocommit(c->db)) {
        fp_err ignored = sq_run(c, SQ_ROLLBACK, "rollback");
        (void)ignored;
    }
    sq_release(s, c);
    pthread_mutex_unlock(&s->write_mu);
    return err;
}

/* ---- open / close ------------------------------------------------------ */

static int sq_accepts(const char *url)
{
    if (!url || !*url)
        return 0;
    if (strncmp(url, "sqlite:", 7) == 0)
        return 1;
    /* Any other "scheme://" URL belongs to another backend. */
    const char *p = url;
    if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')) {
        while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
               *p == '+' || *p == '-' || *p == '.')
            p++;
        if (strncmp(p, "://", 3) == 0)
            return 0;
    }
    return 1;
}

static const char *sq_url_path(const char *url)
{
    if (strncmp(url, "sqlite://", 9) == 0)
        return url + 9;
    if (strncmp(url, "sqlite:", 7) == 0)
        return url + 7;
    return url;
}

/* Takes group and other permissions off an open file (fd) or, fd < 0, off
 * path when it exists; logs when it did. */
static void sq_tighten_mode(int fd, const char *path)
{
    struct stat st;
    int rc = fd >= 0 ? fstat(fd, &st) : stat(path, &st);
    if (rc != 0 || !S_ISREG(st.st_mode) || !(st.st_mode & 077))
        return;
    mode_t to = st.st_mode & 0700;
    char from_txt[8], to_txt[8];
    snprintf(from_txt, sizeof from_txt, "%04o", (unsigned)(st.st_mode & 07777));
    snprintf(to_txt, sizeof to_txt, "%04o", (unsigned)to);
    if ((fd >= 0 ? fchmod(fd, to) : chmod(path, to)) == 0)
        fp_log(FP_LOG_WARN, "store_file_mode_tightened", "{s:s,s:s,s:s}", "file", path, "from",
               from_txt, "to", to_txt);
    else
        fp_log(FP_LOG_WARN, "store_file_mode_insecure", "{s:s,s:s,s:s}", "file", path, "mode",
               from_txt, "error", strerror(errno));
}

/*
 * What happens to the file before SQLite opens it (see the top of the file):
 * creation with mode 0600, refusal of an empty file, tightened modes. *lock_fd
 * is an fd holding an flock() on the database file (or -1) that the caller
 * closes once the first connection has written the header; *created is 1
 * when the file was made here. Paths SQLite
 * will refuse anyway (missing directory, a directory) are left to it, so its
 * errors stay what they were.
 */
static fp_err sq_prepare_file(const char *path, int *lock_fd, int *created)
{
    *lock_fd = -1;
    *created = 0;
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
        *created = 1;
    } else if (errno == EEXIST) {
        fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0 && (errno == EACCES || errno == EROFS))
            fd = open(path, O_RDONLY | O_CLOEXEC);
    }
    if (fd < 0)
        return FP_OK;
    /* Another process may have created the file a moment ago: wait until it
     * has written the header (it holds this lock until then). */
    while (flock(fd, LOCK_EX) != 0 && errno == EINTR)
        ;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return FP_OK;
    }
    if (*created) {
        fchmod(fd, S_IRUSR | S_IWUSR); /* the umask can only have removed bits */
    } else if (st.st_size == 0) {
        fp_log(FP_LOG_ERROR, "store_empty_file", "{s:s,s:s}", "file", path, "error",
               "the database file is empty (0 bytes), probably truncated: restore it from a "
               "backup, or delete it to start afresh");
        close(fd);
        return FP_EMPTY_DATABASE;
    } else {
        sq_tighten_mode(fd, path);
    }
    static const char *const sidecars[] = {"-wal", "-shm"};
    for (size_t i = 0; i < 2; i++) {
        char *side = fp_printf("%s%s", path, sidecars[i]);
        sq_tighten_mode(-1, side);
        fp_free(side);
    }
    *lock_fd = fd;
    return FP_OK;
}

static void sq_close(store *s)
{
    if (!s)
        return;
    /* Every connection must be back in the pool: callers close last. */
    for (int i = 0; i < s->n_idle; i++)
        sq_conn_close(s->idle[i]);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->write_mu);
    if (s->file_fd >= 0)
        close(s->file_fd);
    fp_free(s->path);
    fp_free(s);
}

static fp_err sq_open(const char *url, store **out)
{
    fp_err err = FP_OK;
    store *s = NULL;
    sq_conn *c = NULL;
    int lock_fd = -1, created = 0;
    *out = NULL;
    if (!sq_accepts(url) || !*sq_url_path(url)) {
        fp_log(FP_LOG_ERROR, "store_bad_url", "{s:s}", "error", "no SQLite database path given");
        return FP_INVALID;
    }
    if (!sqlite3_threadsafe()) { /* the pool shares the library between threads */
        fp_log(FP_LOG_ERROR, "store_error", "{s:s}", "error",
               "the SQLite library was built without thread support");
        return FP_STORAGE;
    }
    s = fp_calloc(1, sizeof *s);
    s->file_fd = -1;
    s->path = fp_strdup(sq_url_path(url));
    /* NOMUTEX: the pool hands each connection to one thread at a time. */
    s->open_flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    s->pool_max = strcmp(s->path, ":memory:") == 0 ? 1 : SQ_POOL_MAX;
    s->migs = store_sqlite__migrations;
    s->n_migs = store_sqlite__migrations_len;
    s->busy_timeout_ms = SQ_BUSY_TIMEOUT_MS;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    pthread_mutex_init(&s->write_mu, NULL);

    if (strcmp(s->path, ":memory:") != 0) {
        err = sq_prepare_file(s->path, &lock_fd, &created);
        if (err != FP_OK)
            goto out;
    }
    /* Open one connection now so a bad path or file fails at start-up. */
    err = sq_conn_open(s, 1, &c);
    if (err != FP_OK && created) {
        /* Never leave behind an empty file that the next start would take
         * for a truncated database. */
        struct stat st;
        if (stat(s->path, &st) == 0 && st.st_size == 0)
            unlink(s->path);
    }
    if (lock_fd >= 0) { /* the header is written: the file is no longer empty */
        flock(lock_fd, LOCK_UN);
        /* Not closed before the connections are: closing any descriptor of
         * the file would drop the POSIX locks SQLite holds on it. */
        s->file_fd = lock_fd;
        lock_fd = -1;
    }
    if (err != FP_OK) {
        fp_log(FP_LOG_ERROR, "store_open_failed", "{s:s,s:s}", "file", s->path, "error",
               fp_err_message(err));
        goto out;
    }
    s->idle[s->n_idle++] = c;
    s->n_open = 1;
    *out = s;
    s = NULL;
out:
    sq_close(s);
    return err;
}

void store_sqlite__use_migrations(store *s, const store_sqlite_migration *list, size_t n)
{
    s->migs = list ? list : store_sqlite__migrations;
    s->n_migs = list ? n : store_sqlite__migrations_len;
}

void store_sqlite__set_busy_timeout(store *s, int ms)
{
    pthread_mutex_lock(&s->mu);
    s->busy_timeout_ms = ms;
    for (int i = 0; i < s->n_idle; i++)
        sqlite3_busy_timeout(s->idle[i]->db, ms);
    pthread_mutex_unlock(&s->mu);
}

void store_sqlite__crash_before_commit(store *s, int on)
{
    s->crash_before_commit = on;
}

/* ---- migrations -------------------------------------------------------- */

static fp_err sq_check_migrations(const store *s)
{
    for (size_t i = 0; i < s->n_migs; i++)
        if (s->migs[i].version != (int)i + 1 || !s->migs[i].up || !s->migs[i].down) {
            fp_log(FP_LOG_ERROR, "store_bad_migration_list", "{s:i}", "index", (int)i);
            return FP_INTERNAL;
        }
    return FP_OK;
}

/* Current schema version; 0 before the first migration. */
static fp_err sq_current_version(sq_conn *c, int *version)
{
    sqlite3_stmt *st = NULL;
    fp_err err = FP_OK;
    *version = 0;
    int rc = sqlite3_prepare_v2(c->db,
                                "SELECT count(*) FROM sqlite_master "
                                "WHERE type = 'table' AND name = 'schema_migrations'",
                                -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        err = sq_fail(c->db, rc, "schema_version");
        goto out;
    }
    int exists = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    if (!exists)
        goto out;
    rc = sqlite3_prepare_v2(c->db, "SELECT coalesce(max(version), 0) FROM schema_migrations", -1,
                            &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        err = sq_fail(c->db, rc, "schema_version");
        goto out;
    }
    *version = sqlite3_column_int(st, 0);
out:
    sqlite3_finalize(st);
    return err;
}

static fp_err sq_record_migration(sq_conn *c, const store_sqlite_migration *m, int up)
{
    sqlite3_stmt *st = NULL;
    fp_err err = FP_OK;
    const char *sql = up ? "INSERT INTO schema_migrations (version, name, applied_at) "
                           "VALUES (?1, ?2, ?3)"
                         : "DELETE FROM schema_migrations WHERE version = ?1";
    int rc = sqlite3_prepare_v2(c->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int(st, 1, m->version);
        if (up) {
            sqlite3_bind_text(st, 2, m->name, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 3, (sqlite3_int64)time(NULL));
        }
        rc = sqlite3_step(st);
    }
    if (rc != SQLITE_DONE)
        err = sq_fail(c->db, rc, "record_migration");
    sqlite3_finalize(st);
    return err;
}

/*
 * One step toward target inside its own transaction. The version is re-read
 * after BEGIN IMMEDIATE, so two processes migrating at once take turns
 * instead of applying a step twice. *reached is set when nothing is left.
 */
static fp_err sq_migrate_step(store *s, int target, int *reached)
{
    sq_conn *c = NULL;
    const store_sqlite_migration *m;
    int cur = 0, up;
    *reached = 0;
    fp_err err = sq_begin_write(s, &c);
    if (err != FP_OK)
        return err;
    err = sq_exec(c,
                  "CREATE TABLE IF NOT EXISTS schema_migrations ("
                  " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
                  "migrate");
    if (err == FP_OK)
        err = sq_current_version(c, &cur);
    if (err != FP_OK)
        goto out;
    if ((size_t)cur > s->n_migs) {
        fp_log(FP_LOG_ERROR, "store_schema_too_new", "{s:i,s:i,s:s}", "current", cur, "latest",
               (int)s->n_migs, "error",
               "the database was migrated by a newer FilmPicker; this build cannot read or "
               "downgrade it");
        err = FP_STORAGE;
        goto out;
    }
    if (cur == target) {
        *reached = 1;
        goto out;
    }
    up = cur < target;
    m = up ? &s->migs[cur] : &s->migs[cur - 1];
    err = sq_exec(c, up ? m->up : m->down, up ? "migrate_up" : "migrate_down");
    if (err == FP_OK)
        err = sq_record_migration(c, m, up);
    if (err == FP_OK)
        fp_log(FP_LOG_INFO, "store_migrated", "{s:s,s:i,s:s}", "direction", up ? "up" : "down",
               "version", up ? m->version : m->version - 1, "migration", m->name);
out:
    return sq_end_write(s, c, err);
}

static fp_err sq_migrate(store *s, int target)
{
    fp_err err = sq_check_migrations(s);
    if (err != FP_OK)
        return err;
    if (target < -1 || target > (int)s->n_migs) {
        fp_log(FP_LOG_ERROR, "store_bad_migration_target", "{s:i,s:i}", "target", target,
               "latest", (int)s->n_migs);
        return FP_INVALID;
    }
    if (target == -1)
        target = (int)s->n_migs;
    /* Bounded: each step moves one version, so at most latest*2 steps even if
     * another process moves the schema the other way meanwhile. */
    for (size_t i = 0; i <= 2 * s->n_migs + 1; i++) {
        int reached = 0;
        err = sq_migrate_step(s, target, &reached);
        if (err != FP_OK || reached)
            return err;
    }
    return FP_CONFLICT;
}

static fp_err sq_migration_status(store *s, int *current, int *latest)
{
    sq_conn *c = NULL;
    *current = 0;
    *latest = (int)s->n_migs;
    fp_err err = sq_acquire(s, &c);
    if (err != FP_OK)
        return err;
    err = sq_current_version(c, current);
    sq_release(s, c);
    return err;
}

/* ---- the film catalogue ------------------------------------------------ */

static char *sq_col_text(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return t ? fp_strdup((const char *)t) : NULL;
}

/* Reads a row of SQ_FILM_COLS. */
static void sq_read_film(sqlite3_stmt *st, film *f)
{
    f->id = sqlite3_column_int64(st, 0);
    f->lb_id = sqlite3_column_int64(st, 1); /* NULL reads as 0 */
    f->lb_slug = sq_col_text(st, 2);
    f->lb_uri = sq_col_text(st, 3);
    f->imdb_id = sq_col_text(st, 4);
    f->title = sq_col_text(st, 5);
    f->year = sqlite3_column_int(st, 6);
    f->poster = sq_col_text(st, 7);
}

static int sq_str_compatible(const char *a, const char *b)
{
    return !a || !b || strcmp(a, b) == 0;
}

static int sq_lb_compatible(const film *row, const film *f)
{
    return !row->lb_id || !f->lb_id || row->lb_id == f->lb_id;
}

/* No identifier known on both sides disagrees. */
static int sq_compatible(const film *row, const film *f)
{
    return sq_lb_compatible(row, f) && sq_str_compatible(row->lb_slug, f->lb_slug) &&
           sq_str_compatible(row->lb_uri, f->lb_uri) && sq_str_compatible(row->imdb_id, f->imdb_id);
}

static int sq_has_ids(const film *f)
{
    return f->lb_id || f->lb_slug || f->lb_uri || f->imdb_id;
}

static void sq_bind_text_or_null(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

/* Looks up the one row (UNIQUE column) by an integer or text value; row->id
 * stays 0 when there is none. */
static fp_err sq_find_unique(sq_conn *c, enum sq_stmt_id id, int64_t ival, const char *sval,
                             film *row)
{
    sqlite3_stmt *st;
    fp_err err = sq_stmt(c, id, &st);
    if (err != FP_OK)
        return err;
    if (sval)
        sqlite3_bind_text(st, 1, sval, -1, SQLITE_STATIC);
    else
        sqlite3_bind_int64(st, 1, ival);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        sq_read_film(st, row);
    else if (rc != SQLITE_DONE)
        err = sq_fail(c->db, rc, "film_lookup");
    sq_done(st);
    return err;
}

/*
 * Title + year: among the rows with this match key whose ids do not
 * disagree with f, take the only one. Several candidates are ambiguous; an
 * f without any id then takes the oldest candidate without ids either
 * (the row an earlier id-less import created), so repeating an import of
 * "Title (Year)" lines never adds a row per run.
 */
static fp_err sq_find_by_key(sq_conn *c, const char *key, const film *f, film *row)
{
    sqlite3_stmt *st;
    film_list cands;
    film_list_init(&cands);
    fp_err err = sq_stmt(c, SQ_FILM_BY_KEY, &st);
    if (err != FP_OK)
        return err;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        film tmp = {0};
        sq_read_film(st, &tmp);
        if (sq_compatible(&tmp, f))
            *film_list_push(&cands) = tmp;
        else
            film_clear(&tmp);
    }
    if (rc != SQLITE_DONE) {
        err = sq_fail(c->db, rc, "film_lookup");
        goto out;
    }
    size_t pick = cands.len;
    if (cands.len == 1) {
        pick = 0;
    } else if (cands.len > 1 && !sq_has_ids(f)) {
        for (size_t i = 0; i < cands.len && pick == cands.len; i++)
            if (!sq_has_ids(&cands.items[i]))
                pick = i;
    }
    if (pick < cands.len) {
        *row = cands.items[pick];
        memset(&cands.items[pick], 0, sizeof cands.items[pick]);
    }
out:
    sq_done(st);
    film_list_free(&cands);
    return err;
}

/* Title alone, when either side lacks the year: only if exactly one row in
 * the whole catalogue has this normalised title. */
static fp_err sq_find_by_norm(sq_conn *c, const char *norm, const film *f, film *row)
{
    sqlite3_stmt *st;
    film found[2] = {{0}, {0}};
    int n = 0, rc = SQLITE_DONE;
    fp_err err = sq_stmt(c, SQ_FILM_BY_NORM, &st);
    if (err != FP_OK)
        return err;
    sqlite3_bind_text(st, 1, norm, -1, SQLITE_STATIC);
    while (n < 2 && (rc = sqlite3_step(st)) == SQLITE_ROW)
        sq_read_film(st, &found[n++]);
    if (n < 2 && rc != SQLITE_DONE) {
        err = sq_fail(c->db, rc, "film_lookup");
        goto out;
    }
    if (n == 1 && (found[0].year == 0 || f->year == 0) && sq_compatible(&found[0], f)) {
        *row = found[0];
        memset(&found[0], 0, sizeof found[0]);
    }
out:
    sq_done(st);
    film_clear(&found[0]);
    film_clear(&found[1]);
    return err;
}

static fp_err sq_fill_text(sq_conn *c, enum sq_stmt_id id, int64_t row_id, const char *value,
                           int64_t now)
{
    sqlite3_stmt *st;
    fp_err err = sq_stmt(c, id, &st);
    if (err != FP_OK)
        return err;
    sqlite3_bind_int64(st, 1, row_id);
    sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE)
        err = sq_fail(c->db, rc, "film_update");
    sq_done(st);
    return err;
}

static fp_err sq_fill_int(sq_conn *c, enum sq_stmt_id id, int64_t row_id, int64_t value,
                          const char *text, int64_t now)
{
    sqlite3_stmt *st;
    fp_err err = sq_stmt(c, id, &st);
    if (err != FP_OK)
        return err;
    sqlite3_bind_int64(st, 1, row_id);
    sqlite3_bind_int64(st, 2, value);
    if (text) { /* SQ_FILM_SET_YEAR also rewrites the match key */
        sqlite3_bind_text(st, 3, text, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, now);
    } else {
        sqlite3_bind_int64(st, 3, now);
    }
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE)
        err = sq_fail(c->db, rc, "film_update");
    sq_done(st);
    return err;
}

/* Copies into the row what it lacked and f knows; known values stay. Most
 * re-resolved films lack nothing, so this usually writes nothing. */
static fp_err sq_fill_in(sq_conn *c, const film *row, const film *f, int64_t now)
{
    fp_err err = FP_OK;
    if (!row->lb_id && f->lb_id > 0)
        err = sq_fill_int(c, SQ_FILM_SET_LB_ID, row->id, f->lb_id, NULL, now);
    if (err == FP_OK && !row->lb_slug && f->lb_slug && *f->lb_slug)
        err = sq_fill_text(c, SQ_FILM_SET_SLUG, row->id, f->lb_slug, now);
    if (err == FP_OK && !row->lb_uri && f->lb_uri && *f->lb_uri)
        err = sq_fill_text(c, SQ_FILM_SET_URI, row->id, f->lb_uri, now);
    if (err == FP_OK && !row->imdb_id && f->imdb_id && *f->imdb_id)
        err = sq_fill_text(c, SQ_FILM_SET_IMDB, row->id, f->imdb_id, now);
    if (err == FP_OK && !row->year && f->year > 0) {
        char *key = film_match_key(row->title, f->year);
        err = sq_fill_int(c, SQ_FILM_SET_YEAR, row->id, f->year, key, now);
        fp_free(key);
    }
    if (err == FP_OK && f->poster && (!row->poster || strcmp(row->poster, f->poster) != 0))
        err = sq_fill_text(c, SQ_FILM_SET_POSTER, row->id, f->poster, now);
    return err;
}

/* A new catalogue row for f; ids another row holds (taken) are left out. */
static fp_err sq_insert_film(sq_conn *c, film *f, const char *key, const char *norm,
                             const int taken[3], int64_t now)
{
    const char *text_ids[3] = {f->lb_slug, f->lb_uri, f->imdb_id};
    sqlite3_stmt *st;
    fp_err err = sq_stmt(c, SQ_FILM_INSERT, &st);
    if (err != FP_OK)
        return err;
    if (f->lb_id > 0)
        sqlite3_bind_int64(st, 1, f->lb_id);
    else
        sqlite3_bind_null(st, 1);
    for (int i = 0; i < 3; i++)
        sq_bind_text_or_null(st, 2 + i, taken[i] || !text_ids[i] || !*text_ids[i] ? NULL : text_ids[i]);
    sqlite3_bind_text(st, 5, f->title, -1, SQLITE_STATIC);
    if (f->year > 0)
        sqlite3_bind_int(st, 6, f->year);
    else
        sqlite3_bind_null(st, 6);
    sqlite3_bind_text(st, 7, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, norm, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 9, now);
    sq_bind_text_or_null(st, 10, f->poster);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        f->id = sqlite3_last_insert_rowid(c->db);
    else
        err = sq_fail(c->db, rc, "film_insert");
    sq_done(st);
    return err;
}

static fp_err sq_unorphan(sq_conn *c, int64_t id)
{
    sqlite3_stmt *st;
    fp_err err = sq_stmt(c, SQ_FILM_UNORPHAN, &st);
    if (err != FP_OK)
        return err;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE)
        err = sq_fail(c->db, rc, "film_update");
    sq_done(st);
    return err;
}

/*
 * Finds f's row (Letterboxd id, slug, boxd.it link, IMDb id, title + year,
 * then title alone); row->id stays 0 when there is none. A row reached
 * through a slug/link/IMDb id that carries a different Letterboxd id is
 * another film: taken[i] says which of those ids such a row holds. *key and
 * *norm (caller frees) are set when the title lookups ran.
 */
static fp_err sq_find_row(sq_conn *c, const film *f, film *row, int taken[3], char **key,
                          char **norm)
{
    fp_err err = FP_OK;
    const struct {
        enum sq_stmt_id stmt;
        const char *value;
    } by_text[3] = {
        {SQ_FILM_BY_SLUG, f->lb_slug},
        {SQ_FILM_BY_URI, f->lb_uri},
        {SQ_FILM_BY_IMDB, f->imdb_id},
    };
    *key = *norm = NULL;
    taken[0] = taken[1] = taken[2] = 0;
    if (f->lb_id > 0) {
        err = sq_find_unique(c, SQ_FILM_BY_LB_ID, f->lb_id, NULL, row);
        if (err != FP_OK || row->id)
            return err;
    }
    for (int i = 0; i < 3; i++) {
        if (!by_text[i].value || !*by_text[i].value)
            continue;
        err = sq_find_unique(c, by_text[i].stmt, 0, by_text[i].value, row);
        if (err != FP_OK || (row->id && sq_lb_compatible(row, f)))
            return err;
        if (row->id) {
            taken[i] = 1;
            film_clear(row);
        }
    }
    *key = film_match_key(f->title, f->year);
    err = sq_find_by_key(c, *key, f, row);
    if (err != FP_OK || row->id)
        return err;
    *norm = film_normalize_title(f->title);
    return sq_find_by_norm(c, *norm, f, row);
}

/*
 * Finds or inserts f's row and sets f->id. An insert past max_new new rows
 * (*inserted counts them) is not made: FP_TOO_MANY_FILMS.
 */
static fp_err sq_resolve_one(sq_conn *c, film *f, int64_t now, size_t max_new, size_t *inserted)
{
    film row = {0};
    char *norm = NULL, *key = NULL;
    /* An id held by a row that names another Letterboxd film is not copied
     * to a new row (it would break UNIQUE, and one of the two is stale). */
    int taken[3];
    fp_err err = sq_find_row(c, f, &row, taken, &key, &norm);
    if (err == FP_OK && row.id) {
        f->id = row.id;
        err = sq_fill_in(c, &row, f, now);
        if (err == FP_OK)
            err = sq_unorphan(c, row.id);
    } else if (err == FP_OK && *inserted >= max_new) {
        err = FP_TOO_MANY_FILMS;
    } else if (err == FP_OK) {
        if (!norm)
            norm = film_normalize_title(f->title);
        err = sq_insert_film(c, f, key, norm, taken, now);
        if (err == FP_OK)
            (*inserted)++;
    }
    film_clear(&row);
    fp_free(key);
    fp_free(norm);
    return err;
}

/* A set of 64-bit hashes (open addressing), for counting distinct films. */
typedef struct sq_hashset {
    uint64_t *slots; /* 0 = empty */
    size_t cap, len;
} sq_hashset;

static uint64_t sq_hash(char tag, const char *s, int64_t v)
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

/* 1 when h was there already; adds it otherwise. */
static int sq_hashset_add(sq_hashset *hs, uint64_t h)
{
    if (2 * (hs->len + 1) > hs->cap) {
        size_t ncap = hs->cap ? 2 * hs->cap : 1024;
        uint64_t *ns = fp_calloc(ncap, sizeof *ns);
        for (size_t i = 0; i < hs->cap; i++)
            if (hs->slots[i])
                for (size_t k = hs->slots[i] & (ncap - 1);; k = (k + 1) & (ncap - 1))
                    if (!ns[k]) {
                        ns[k] = hs->slots[i];
                        break;
                    }
        fp_free(hs->slots);
        hs->slots = ns;
        hs->cap = ncap;
    }
    for (size_t k = h & (hs->cap - 1);; k = (k + 1) & (hs->cap - 1)) {
        if (hs->slots[k] == h)
            return 1;
        if (!hs->slots[k]) {
            hs->slots[k] = h;
            hs->len++;
            return 0;
        }
    }
}

/*
 * How many distinct films of the batch the catalogue lacks, reading only (no
 * write lock): each film's row is looked up as films_resolve would, and one
 * that has none counts unless an earlier one without a row shared one of its
 * ids or its title + year (so a film listed twice counts once).
 */
static fp_err sq_count_new(store *s, const film *films, size_t n, size_t *count)
{
    sq_conn *c = NULL;
    sq_hashset seen = {0};
    *count = 0;
    fp_err err = sq_acquire(s, &c);
    if (err != FP_OK)
        return err;
    /* One read transaction: one snapshot, and no lock taken per lookup. */
    err = sq_exec(c, "BEGIN", "count_new");
    for (size_t i = 0; i < n && err == FP_OK; i++) {
        const film *f = &films[i];
        film row = {0};
        char *key = NULL, *norm = NULL;
        int taken[3];
        err = sq_find_row(c, f, &row, taken, &key, &norm);
        if (err == FP_OK && !row.id) {
            int dup = 0;
            if (f->lb_id > 0)
                dup |= sq_hashset_add(&seen, sq_hash('i', NULL, f->lb_id));
            const char *text[3] = {f->lb_slug, f->lb_uri, f->imdb_id};
            for (int t = 0; t < 3; t++)
                if (text[t] && *text[t] && !taken[t])
                    dup |= sq_hashset_add(&seen, sq_hash((char)('s' + t), text[t], 0));
            if (key)
                dup |= sq_hashset_add(&seen, sq_hash('k', key, 0));
            if (!dup)
                (*count)++;
        }
        film_clear(&row);
        fp_free(key);
        fp_free(norm);
    }
    sq_release(s, c); /* ends the read transaction */
    fp_free(seen.slots);
    return err;
}

static fp_err sq_films_resolve_limited(store *s, film *films, size_t n, size_t max_new,
                                       size_t *new_films)
{
    sq_conn *c = NULL;
    size_t inserted = 0;
    if (new_films)
        *new_films = 0;
    if (n == 0)
        return FP_OK;
    for (size_t i = 0; i < n; i++)
        if (!films[i].title) {
            fp_log(FP_LOG_WARN, "store_film_without_title", "{s:i}", "index", (int)i);
            return FP_INVALID;
        }
    fp_err err = sq_begin_write(s, &c);
    if (err != FP_OK)
        return err;
    int64_t now = (int64_t)time(NULL);
    for (size_t i = 0; i < n && err == FP_OK; i++)
        err = sq_resolve_one(c, &films[i], now, max_new, &inserted);
    err = sq_end_write(s, c, err);
    if (err != FP_OK) /* the rows were rolled back: their ids mean nothing */
        for (size_t i = 0; i < n; i++)
            films[i].id = 0;
    if (err == FP_OK && new_films)
        *new_films = inserted;
    if (err == FP_TOO_MANY_FILMS && new_films) {
        /* The write lock is released: count the rest by reading only. */
        size_t count = 0;
        *new_films = sq_count_new(s, films, n, &count) == FP_OK && count > max_new ? count
                                                                                    : max_new + 1;
    }
    return err;
}

static fp_err sq_films_resolve(store *s, film *films, size_t n)
{
    return sq_films_resolve_limited(s, films, n, SIZE_MAX, NULL);
}

static int sq_cmp_film_id(const void *a, const void *b)
{
    int64_t x = ((const film *)a)->id, y = ((const film *)b)->id;
    return (x > y) - (x < y);
}

static fp_err sq_films_load(store *s, const int64_t *ids, size_t n, film_list *out)
{
    sq_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    film_list rows;
    film_list_init(&rows);
    if (n == 0)
        return FP_OK;
    fp_err err = sq_acquire(s, &c);
    if (err != FP_OK)
        return err;
    err = sq_stmt(c, SQ_FILM_LOAD, &st);
    for (size_t base = 0; err == FP_OK && base < n; base += SQ_LOAD_CHUNK) {
        size_t len = n - base < SQ_LOAD_CHUNK ? n - base : SQ_LOAD_CHUNK;
        /* A short last chunk repeats its last id: IN () ignores duplicates,
         * and one statement shape serves every chunk. */
        for (size_t i = 0; i < SQ_LOAD_CHUNK; i++)
            sqlite3_bind_int64(st, (int)i + 1, ids[base + (i < len ? i : len - 1)]);
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW)
            sq_read_film(st, film_list_push(&rows));
        if (rc != SQLITE_DONE)
            err = sq_fail(c->db, rc, "films_load");
        sq_done(st);
        if (err != FP_OK || rows.len == 0)
            continue;
        qsort(rows.items, rows.len, sizeof *rows.items, sq_cmp_film_id);
        for (size_t i = 0; i < len; i++) {
            film key = {.id = ids[base + i]};
            const film *hit = bsearch(&key, rows.items, rows.len, sizeof *rows.items, sq_cmp_film_id);
            if (hit)
                film_copy(film_list_push(out), hit);
        }
        film_list_free(&rows);
    }
    film_list_free(&rows);
    sq_release(s, c);
    return err;
}

/* ---- watchlists -------------------------------------------------------- */

/* The statements of one table of sealed rows (watchlists, watched). */
typedef struct sq_sealed_table {
    enum sq_stmt_id get, upsert, create, cas;
    const char *op_get, *op_put;
} sq_sealed_table;

static const sq_sealed_table sq_watchlists = {SQ_WL_GET, SQ_WL_UPSERT, SQ_WL_CREATE, SQ_WL_CAS,
                                              "watchlist_get", "watchlist_put"};
static const sq_sealed_table sq_watched = {SQ_WD_GET, SQ_WD_UPSERT, SQ_WD_CREATE, SQ_WD_CAS,
                                           "watched_get", "watched_put"};

static fp_err sq_sealed_get(store *s, const sq_sealed_table *t, const uint8_t key[STORE_KEY_BYTES],
                            store_watchlist *out)
{
    sq_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    memset(out, 0, sizeof *out);
    fp_err err = sq_acquire(s, &c);
    if (err != FP_OK)
        return err;
    err = sq_stmt(c, t->get, &st);
    if (err != FP_OK)
        goto out;
    sqlite3_bind_blob(st, 1, key, STORE_KEY_BYTES, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const void *blob = sqlite3_column_blob(st, 0);
        size_t len = (size_t)sqlite3_column_bytes(st, 0);
        out->sealed = fp_malloc(len);
        if (len)
            memcpy(out->sealed, blob, len);
        out->sealed_len = len;
        out->fetched_at = sqlite3_column_int64(st, 1);
        out->version = sqlite3_column_int64(st, 2);
    } else if (rc == SQLITE_DONE) {
        err = FP_NOT_FOUND;
    } else {
        err = sq_fail(c->db, rc, t->op_get);
    }
    sq_done(st);
out:
    sq_release(s, c);
    return err;
}

static fp_err sq_sealed_put(store *s, const sq_sealed_table *t, const uint8_t key[STORE_KEY_BYTES],
                            const uint8_t *sealed, size_t sealed_len, int64_t stamp,
                            int64_t expected_version, int64_t *new_version)
{
    sq_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    if ((!sealed && sealed_len) || expected_version < -1)
        return FP_INVALID;
    fp_err err = sq_begin_write(s, &c);
    if (err != FP_OK)
        return err;
    enum sq_stmt_id id = expected_version == -1 ? t->upsert
                         : expected_version == 0 ? t->create
                                                 : t->cas;
    err = sq_stmt(c, id, &st);
    if (err != FP_OK)
        goto out;
    sqlite3_bind_blob(st, 1, key, STORE_KEY_BYTES, SQLITE_STATIC);
    /* A NULL pointer would bind SQL NULL; an empty blob is still a blob. */
    sqlite3_bind_blob64(st, 2, sealed ? (const void *)sealed : (const void *)"",
                        (sqlite3_uint64)sealed_len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, stamp);
    if (id == t->cas)
        sqlite3_bind_int64(st, 4, expected_version);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        if (new_version)
            *new_version = sqlite3_column_int64(st, 0);
        rc = sqlite3_step(st);
    } else if (rc == SQLITE_DONE) {
        err = FP_CONFLICT; /* the row's version moved on (or it is gone / exists) */
    }
    if (rc != SQLITE_DONE)
        err = sq_fail(c->db, rc, t->op_put);
    sq_done(st);
    if (err == FP_OK && s->crash_before_commit)
        _exit(1);
out:
    return sq_end_write(s, c, err);
}

static fp_err sq_watchlist_get(store *s, const uint8_t key[STORE_KEY_BYTES], store_watchlist *out)
{
    return sq_sealed_get(s, &sq_watchlists, key, out);
}

static fp_err sq_watchlist_put(store *s, const uint8_t key[STORE_KEY_BYTES], const uint8_t *sealed,
                               size_t sealed_len, int64_t fetched_at, int64_t expected_version,
                               int64_t *new_version)
{
    return sq_sealed_put(s, &sq_watchlists, key, sealed, sealed_len, fetched_at, expected_version,
                         new_version);
}

static fp_err sq_watched_get(store *s, const uint8_t key[STORE_KEY_BYTES], store_watchlist *out)
{
    return sq_sealed_get(s, &sq_watched, key, out);
}

static fp_err sq_watched_put(store *s, const uint8_t key[STORE_KEY_BYTES], const uint8_t *sealed,
                             size_t sealed_len, int64_t updated_at, int64_t expected_version,
                             int64_t *new_version)
{
    return sq_sealed_put(s, &sq_watched, key, sealed, sealed_len, updated_at, expected_version,
                         new_version);
}

static fp_err sq_watchlist_delete(store *s, const uint8_t key[STORE_KEY_BYTES])
{
    sq_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    fp_err err = sq_begin_write(s, &c);
    if (err != FP_OK)
        return err;
    err = sq_stmt(c, SQ_WL_DELETE, &st);
    if (err != FP_OK)
        goto out;
    sqlite3_bind_blob(st, 1, key, STORE_KEY_BYTES, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE)
        err = sq_fail(c->db, rc, "watchlist_delete");
    else if (sqlite3_changes(c->db) == 0)
        err = FP_NOT_FOUND;
    sq_done(st);
out:
    return sq_end_write(s, c, err);
}

static fp_err sq_ping(store *s)
{
    sq_conn *c = NULL;
    fp_err err = sq_acquire(s, &c);
    if (err != FP_OK)
        return err;
    err = sq_run(c, SQ_PING, "ping");
    sq_release(s, c);
    return err;
}

/* ---- the catalogue sweep --------------------------------------------------- */

static fp_err sq_films_page(store *s, int64_t after_id, size_t limit, store_film_mark *out,
                            size_t *n)
{
    sq_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    *n = 0;
    if (limit == 0)
        return FP_OK;
    fp_err err = sq_acquire(s, &c);
    if (err != FP_OK)
        return err;
    err = sq_stmt(c, SQ_FILM_PAGE, &st);
    if (err == FP_OK) {
        sqlite3_bind_int64(st, 1, after_id);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)limit);
        int rc = SQLITE_DONE;
        while (*n < limit && (rc = sqlite3_step(st)) == SQLITE_ROW) {
            out[*n].id = sqlite3_column_int64(st, 0);
            out[*n].orphaned_at = sqlite3_column_int64(st, 1);
            (*n)++;
        }
        if (*n < limit && rc != SQLITE_DONE)
            err = sq_fail(c->db, rc, "films_page");
        sq_done(st);
    }
    sq_release(s, c);
    if (err != FP_OK)
        *n = 0;
    return err;
}

/* Runs one statement per id (?1 = the id, ?2 = arg) in one write
 * transaction; *changed counts the rows it changed. */
static fp_err sq_each_id(store *s, enum sq_stmt_id id, const int64_t *ids, size_t n, int64_t arg,
                         const char *op, size_t *changed)
{
    sq_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    size_t total = 0;
    if (changed)
        *changed = 0;
    if (n == 0)
        return FP_OK;
    fp_err err = sq_begin_write(s, &c);
    if (err != FP_OK)
        return err;
    err = sq_stmt(c, id, &st);
    for (size_t i = 0; err == FP_OK && i < n; i++) {
        sqlite3_bind_int64(st, 1, ids[i]);
        if (sqlite3_bind_parameter_count(st) >= 2)
            sqlite3_bind_int64(st, 2, arg);
        int rc = sqlite3_step(st);
        if (rc != SQLITE_DONE)
            err = sq_fail(c->db, rc, op);
        else
            total += (size_t)sqlite3_changes(c->db);
        sqlite3_reset(st);
    }
    sq_done(st);
    err = sq_end_write(s, c, err);
    if (err == FP_OK && changed)
        *changed = total;
    return err;
}

static fp_err sq_films_mark(store *s, const int64_t *ids, size_t n, int64_t at)
{
    if (at < 0)
        return FP_INVALID;
    return sq_each_id(s, at ? SQ_FILM_MARK : SQ_FILM_UNMARK, ids, n, at, "films_mark", NULL);
}

static fp_err sq_films_delete_orphans(store *s, const int64_t *ids, size_t n,
                                      int64_t orphaned_before, size_t *deleted)
{
    return sq_each_id(s, SQ_FILM_DELETE_ORPHAN, ids, n, orphaned_before, "films_delete",
                      deleted);
}

/* ---- the data key -------------------------------------------------------- */

static fp_err sq_datakey_get(store *s, store_datakey *out)
{
    sq_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    memset(out, 0, sizeof *out);
    fp_err err = sq_acquire(s, &c);
    if (err != FP_OK)
        return err;
    err = sq_stmt(c, SQ_DK_GET, &st);
    if (err != FP_OK)
        goto out;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        size_t len = (size_t)sqlite3_column_bytes(st, 0);
        out->wrapped = fp_malloc(len ? len : 1);
        if (len)
            memcpy(out->wrapped, sqlite3_column_blob(st, 0), len);
        out->wrapped_len = len;
        out->created_at = sqlite3_column_int64(st, 1);
        out->updated_at = sqlite3_column_int64(st, 2);
    } else if (rc == SQLITE_DONE) {
        err = FP_NOT_FOUND;
    } else {
        err = sq_fail(c->db, rc, "datakey_get");
    }
    sq_done(st);
out:
    sq_release(s, c);
    return err;
}

static fp_err sq_datakey_put(store *s, const uint8_t *wrapped, size_t len, const uint8_t *expected,
                             size_t expected_len)
{
    sq_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    if (!wrapped || !len)
        return FP_INVALID;
    fp_err err = sq_begin_write(s, &c);
    if (err != FP_OK)
        return err;
    err = sq_stmt(c, expected ? SQ_DK_CAS : SQ_DK_CREATE, &st);
    if (err != FP_OK)
        goto out;
    sqlite3_bind_blob(st, 1, wrapped, (int)len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)time(NULL));
    if (expected)
        sqlite3_bind_blob(st, 3, expected, (int)expected_len, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE)
        err = sq_fail(c->db, rc, "datakey_put");
    else if (sqlite3_changes(c->db) == 0)
        err = FP_CONFLICT;
    sq_done(st);
out:
    return sq_end_write(s, c, err);
}

/* Runs a cached statement that changes rows; *changed = how many. */
static fp_err sq_run_changes(sq_conn *c, enum sq_stmt_id id, const char *op, size_t *changed)
{
    fp_err err = sq_run(c, id, op);
    if (err == FP_OK && changed)
        *changed = (size_t)sqlite3_changes(c->db);
    return err;
}

static fp_err sq_datakey_reset(store *s, const uint8_t *wrapped, size_t len, size_t *watchlists,
                               size_t *watched)
{
    sq_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    if (watchlists)
        *watchlists = 0;
    if (watched)
        *watched = 0;
    if (!wrapped || !len)
        return FP_INVALID;
    fp_err err = sq_begin_write(s, &c);
    if (err != FP_OK)
        return err;
    err = sq_run_changes(c, SQ_WL_CLEAR, "datakey_reset", watchlists);
    if (err == FP_OK)
        err = sq_run_changes(c, SQ_WD_CLEAR, "datakey_reset", watched);
    if (err == FP_OK)
        err = sq_stmt(c, SQ_DK_REPLACE, &st);
    if (err == FP_OK) {
        sqlite3_bind_blob(st, 1, wrapped, (int)len, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)time(NULL));
        int rc = sqlite3_step(st);
        if (rc != SQLITE_DONE)
            err = sq_fail(c->db, rc, "datakey_reset");
        sq_done(st);
    }
    err = sq_end_write(s, c, err);
    if (err != FP_OK) { /* rolled back: nothing was deleted */
        if (watchlists)
            *watchlists = 0;
        if (watched)
            *watched = 0;
    }
    return err;
}

/* ---- every sealed row, in pages ----------------------------------------- */

static fp_err sq_sealed_page(store *s, store_sealed_kind kind, const uint8_t *after, size_t limit,
                             store_sealed_row **rows, size_t *n)
{
    sq_conn *c = NULL;
    sqlite3_stmt *st = NULL;
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
    fp_err err = sq_acquire(s, &c);
    if (err != FP_OK)
        return err;
    err = sq_stmt(c, kind == STORE_SEALED_WATCHLISTS ? SQ_WL_PAGE : SQ_WD_PAGE, &st);
    if (err != FP_OK)
        goto out;
    sqlite3_bind_blob(st, 1, after ? (const void *)after : (const void *)"",
                      after ? STORE_KEY_BYTES : 0, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)limit);
    out = fp_calloc(limit, sizeof *out);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && len < limit) {
        if (sqlite3_column_bytes(st, 0) != STORE_KEY_BYTES)
            continue; /* the table's CHECK makes this impossible */
        store_sealed_row *r = &out[len++];
        memcpy(r->key, sqlite3_column_blob(st, 0), STORE_KEY_BYTES);
        size_t blen = (size_t)sqlite3_column_bytes(st, 1);
        r->sealed = fp_malloc(blen ? blen : 1);
        if (blen)
            memcpy(r->sealed, sqlite3_column_blob(st, 1), blen);
        r->sealed_len = blen;
    }
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        err = sq_fail(c->db, rc, "sealed_page");
    sq_done(st);
out:
    sq_release(s, c);
    if (err != FP_OK || len == 0) {
        store_sealed_rows_free(out, len);
        return err;
    }
    *rows = out;
    *n = len;
    return FP_OK;
}

static void sq_pool_stats(store *s, store_pool_stats *out)
{
    pthread_mutex_lock(&s->mu);
    out->open = (size_t)s->n_open;
    out->in_use = (size_t)(s->n_open - s->n_idle);
    out->max = (size_t)s->pool_max;
    pthread_mutex_unlock(&s->mu);
}

const store_backend store_backend_sqlite = {
    .name = "sqlite",
    .accepts = sq_accepts,
    .open = sq_open,
    .close = sq_close,
    .migrate = sq_migrate,
    .migration_status = sq_migration_status,
    .films_resolve = sq_films_resolve,
    .films_resolve_limited = sq_films_resolve_limited,
    .films_page = sq_films_page,
    .films_mark = sq_films_mark,
    .films_delete_orphans = sq_films_delete_orphans,
    .films_load = sq_films_load,
    .watchlist_get = sq_watchlist_get,
    .watchlist_put = sq_watchlist_put,
    .watchlist_delete = sq_watchlist_delete,
    .watched_get = sq_watched_get,
    .watched_put = sq_watched_put,
    .ping = sq_ping,
    .datakey_get = sq_datakey_get,
    .datakey_put = sq_datakey_put,
    .datakey_reset = sq_datakey_reset,
    .sealed_page = sq_sealed_page,
    .pool_stats = sq_pool_stats,
};

/*
 * The storage suite: one set of tests that every storage backend must pass
 * unchanged (store.h's contract), run once per backend:
 *
 *   test_store               SQLite, each test in its own file under /tmp
 *   test_store postgresql    PostgreSQL: the server named by
 *                            FILMPICKER_DATABASE in the file $FP_SERVICES_ENV
 *                            (written by scripts/services.sh, the CTest
 *                            fixture "services"), each test in a schema of
 *                            its own (the URL's schema= option), dropped
 *                            afterwards. No server there is a failure.
 *
 * It covers reversible migrations (and several processes migrating at
 * once), the catalogue matching rules, batch loading, compare-and-swap of
 * watchlists and watched sets, the data key rows, paging through sealed
 * rows, atomic replace across a real process crash, what a row holds (only a
 * 32-byte key and a sealed blob), the pool's counters and concurrent use
 * from threads of two handles (two instances). The PostgreSQL run adds URL
 * handling and reconnection after the server ended every connection.
 * SQLite-only behaviour (files, modes, WAL, locks) is in test_store_sqlite.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/mem.h"
#include "store/store.h"
#include "store/store_pg.h"
#include "store/store_sqlite.h"
#include "vault.h"

/* ---- the backend under test ------------------------------------------- */

typedef struct test_backend {
    const char *name;
    const store_backend *b;
    const store_migration *migs;
    size_t n_migs;
    void (*use_migrations)(store *s, const store_migration *list, size_t n);
    void (*crash_before_commit)(store *s, int on);
} test_backend;

static const test_backend tb_sqlite = {"sqlite", &store_backend_sqlite, store_sqlite__migrations,
                                       5, store_sqlite__use_migrations,
                                       store_sqlite__crash_before_commit};
static const test_backend tb_pg = {"postgresql", &store_backend_postgresql, store_pg__migrations,
                                   5, store_pg__use_migrations, store_pg__crash_before_commit};

static const test_backend *TB = &tb_sqlite;
static const store_backend *B = &store_backend_sqlite;
static int PG;              /* testing PostgreSQL */
static char *pg_base;       /* FILMPICKER_DATABASE of the services */
static char pg_app[48];     /* application_name of this run's connections */
static unsigned fresh_seq;  /* numbers the schemas / directories */

/* The value of "export FILMPICKER_DATABASE=..." in the services' env file. */
static char *services_database(void)
{
    const char *path = getenv("FP_SERVICES_ENV");
    if (!path || !*path)
        return NULL;
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char line[4096];
    char *out = NULL;
    static const char key[] = "export FILMPICKER_DATABASE=";
    while (!out && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (strncmp(line, key, sizeof key - 1) == 0)
            out = fp_strdup(line + sizeof key - 1);
    }
    fclose(f);
    return out;
}

/* A libpq connection to url (FilmPicker's options honoured), for checks
 * behind the backend's back. */
static PGconn *pg_raw_connect(const char *url)
{
    char *conninfo = NULL, *schema = NULL;
    int pool = 0;
    assert_int_equal(store_pg__parse_url(url, &conninfo, &schema, &pool), FP_OK);
    PGconn *db = PQconnectdb(conninfo);
    if (PQstatus(db) != CONNECTION_OK)
        fail_msg("cannot connect to PostgreSQL: %s", PQerrorMessage(db));
    PQclear(PQexec(db, "SET client_min_messages = warning"));
    if (schema) {
        char *sql = fp_printf("SET search_path TO %s", schema); /* [A-Za-z0-9_] only */
        PGresult *r = PQexec(db, sql);
        assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
        PQclear(r);
        fp_free(sql);
    }
    fp_free(conninfo);
    fp_free(schema);
    return db;
}

/* The URL of a new, empty database (SQLite: a file in a new directory;
 * PostgreSQL: a schema nobody has used). Free with drop_db. */
static char *fresh_db(void)
{
    unsigned n = ++fresh_seq;
    if (PG) {
        const char *sep = strchr(pg_base, '?') ? "&" : "?";
        return fp_printf("%s%sschema=fpt_%ld_%u&application_name=%s", pg_base, sep,
                         (long)getpid(), n, pg_app);
    }
    char tmpl[] = "/tmp/fp-store-test-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    return fp_printf("%s/t%u.db", tmpl, n);
}

static void drop_db(char *url)
{
    if (PG) {
        const char *p = strstr(url, "schema=");
        assert_non_null(p);
        char *name = fp_strndup(p + 7, strcspn(p + 7, "&"));
        PGconn *db = pg_raw_connect(pg_base);
        char *sql = fp_printf("DROP SCHEMA IF EXISTS %s CASCADE", name);
        PGresult *r = PQexec(db, sql);
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            fail_msg("%s: %s", sql, PQresultErrorMessage(r));
        PQclear(r);
        PQfinish(db);
        fp_free(sql);
        fp_free(name);
    } else {
        char *dir = fp_strndup(url, (size_t)(strrchr(url, '/') - url));
        char *cmd = fp_printf("rm -rf '%s'", dir);
        assert_int_equal(system(cmd), 0);
        fp_free(cmd);
        fp_free(dir);
    }
    fp_free(url);
}

/* One value of a one-row query, read behind the backend's back. */
static char *raw_text(const char *url, const char *sql)
{
    char *out = NULL;
    if (PG) {
        PGconn *db = pg_raw_connect(url);
        PGresult *r = PQexec(db, sql);
        if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
            fail_msg("'%s': %s", sql, PQresultErrorMessage(r));
        out = fp_strdup(PQgetvalue(r, 0, 0));
        PQclear(r);
        PQfinish(db);
        return out;
    }
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(url, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("prepare '%s': %s", sql, sqlite3_errmsg(db));
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    const unsigned char *t = sqlite3_column_text(st, 0);
    out = fp_strdup(t ? (const char *)t : "");
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
}

static int64_t raw_int(const char *url, const char *sql)
{
    char *t = raw_text(url, sql);
    int64_t v = strtoll(t, NULL, 10);
    fp_free(t);
    return v;
}

/* 1 when the database has a table or index called name. */
static int64_t has_table(const char *url, const char *name)
{
    char *sql = PG ? fp_printf("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON "
                               "n.oid = c.relnamespace WHERE n.nspname = current_schema() "
                               "AND c.relname = '%s'",
                               name)
                   : fp_printf("SELECT count(*) FROM sqlite_master WHERE name = '%s'", name);
    int64_t v = raw_int(url, sql);
    fp_free(sql);
    return v;
}

static int64_t count_columns(const char *url, const char *table, const char *column)
{
    char *sql;
    if (PG)
        sql = fp_printf("SELECT count(*) FROM information_schema.columns WHERE table_schema = "
                        "current_schema() AND table_name = '%s'%s%s%s",
                        table, column ? " AND column_name = '" : "", column ? column : "",
                        column ? "'" : "");
    else
        sql = fp_printf("SELECT count(*) FROM pragma_table_info('%s')%s%s%s", table,
                        column ? " WHERE name = '" : "", column ? column : "", column ? "'" : "");
    int64_t v = raw_int(url, sql);
    fp_free(sql);
    return v;
}

static int64_t has_column(const char *url, const char *table, const char *column)
{
    return count_columns(url, table, column);
}

/* ---- helpers ----------------------------------------------------------- */

static store *open_url(const char *url)
{
    store *s = NULL;
    const store_backend *b = NULL;
    assert_int_equal(store_open(url, &b, &s), FP_OK);
    assert_ptr_equal(b, B);
    assert_non_null(s);
    return s;
}

static store *open_migrated(const char *url)
{
    store *s = open_url(url);
    assert_int_equal(B->migrate(s, -1), FP_OK);
    return s;
}

static void close_drop(store *s, char *url)
{
    B->close(s);
    drop_db(url);
}

static void fill_key(uint8_t key[STORE_KEY_BYTES], uint8_t seed)
{
    for (int i = 0; i < STORE_KEY_BYTES; i++)
        key[i] = (uint8_t)(seed * 31 + i);
}


static size_t count_films(store *s, int64_t max_id)
{
    int64_t *ids = fp_malloc((size_t)max_id * sizeof *ids);
    for (int64_t i = 0; i < max_id; i++)
        ids[i] = i + 1;
    film_list l;
    film_list_init(&l);
    assert_int_equal(B->films_load(s, ids, (size_t)max_id, &l), FP_OK);
    size_t n = l.len;
    film_list_free(&l);
    fp_free(ids);
    return n;
}

typedef struct fspec {
    int64_t lb_id;
    const char *slug, *uri, *imdb, *title;
    int year;
} fspec;

static void spec_to_film(const fspec *sp, film *f)
{
    memset(f, 0, sizeof *f);
    f->lb_id = sp->lb_id;
    f->lb_slug = fp_strdup(sp->slug);
    f->lb_uri = fp_strdup(sp->uri);
    f->imdb_id = fp_strdup(sp->imdb);
    f->title = fp_strdup(sp->title);
    f->year = sp->year;
}

static int64_t resolve_spec(store *s, const fspec *sp)
{
    film f;
    spec_to_film(sp, &f);
    assert_int_equal(B->films_resolve(s, &f, 1), FP_OK);
    int64_t id = f.id;
    assert_true(id > 0);
    film_clear(&f);
    return id;
}

static void assert_str_or_null(const char *what, const char *got, const char *want)
{
    if ((got == NULL) != (want == NULL) || (got && strcmp(got, want) != 0))
        fail_msg("%s: got '%s', want '%s'", what, got ? got : "(null)", want ? want : "(null)");
}

static void assert_row(store *s, int64_t id, const fspec *want, const char *name)
{
    film_list l;
    film_list_init(&l);
    assert_int_equal(B->films_load(s, &id, 1, &l), FP_OK);
    if (l.len != 1)
        fail_msg("%s: row %lld not found", name, (long long)id);
    const film *f = &l.items[0];
    assert_int_equal(f->id, id);
    if (f->lb_id != want->lb_id)
        fail_msg("%s: lb_id %lld, want %lld", name, (long long)f->lb_id, (long long)want->lb_id);
    assert_str_or_null(name, f->lb_slug, want->slug);
    assert_str_or_null(name, f->lb_uri, want->uri);
    assert_str_or_null(name, f->imdb_id, want->imdb);
    assert_str_or_null(name, f->title, want->title);
    if (f->year != want->year)
        fail_msg("%s: year %d, want %d", name, f->year, want->year);
    film_list_free(&l);
}

/* ---- URLs and opening -------------------------------------------------- */

/* ---- migrations -------------------------------------------------------- */

static void test_migrations_up_down_up(void **state)
{
    (void)state;
    char *path = fresh_db();
    store *s = open_url(path);
    int cur = -1, latest = -1;
    assert_int_equal(B->migration_status(s, &cur, &latest), FP_OK);
    assert_int_equal(cur, 0);
    assert_int_equal(latest, 5);

    /* Before migrating there is nothing to write to. */
    film f = {.title = fp_strdup("Alien"), .year = 1979};
    assert_int_equal(B->films_resolve(s, &f, 1), FP_STORAGE);
    assert_int_equal(f.id, 0);

    assert_int_equal(B->migrate(s, -1), FP_OK);
    assert_int_equal(B->migration_status(s, &cur, &latest), FP_OK);
    assert_int_equal(cur, 5);
    assert_int_equal(B->migrate(s, -1), FP_OK); /* idempotent */
    assert_int_equal(raw_int(path, "SELECT count(*) FROM schema_migrations"), 5);
    static const char *const names[] = {"catalogue_and_watchlists", "film_posters",
                                        "watched_sets", "wrapped_data_key", "film_orphan_marks"};
    for (int v = 1; v <= 5; v++) {
        char *sql = fp_printf("SELECT name FROM schema_migrations WHERE version = %d", v);
        char *name = raw_text(path, sql);
        assert_string_equal(name, names[v - 1]);
        fp_free(name);
        fp_free(sql);
    }
    assert_int_equal(has_table(path, "watched"), 1);
    assert_int_equal(has_table(path, "data_key"), 1);
    assert_int_equal(has_column(path, "films", "poster"), 1);
    assert_int_equal(has_column(path, "films", "orphaned_at"), 1);
    int64_t applied = raw_int(path, "SELECT applied_at FROM schema_migrations WHERE version = 1");
    assert_true(llabs(applied - (int64_t)time(NULL)) < 60);
    assert_int_equal(has_table(path, "films") + has_table(path, "watchlists") +
                         has_table(path, "films_match_key") + has_table(path, "films_norm_title"),
                     4);
    assert_int_equal(B->films_resolve(s, &f, 1), FP_OK);
    assert_int_equal(f.id, 1);
    static const uint8_t wrapped[] = "a wrapped data key";
    assert_int_equal(B->datakey_put(s, wrapped, sizeof wrapped, NULL, 0), FP_OK);

    /* Down one step: the orphan marks go; another: the data key goes; then
     * the watched sets; then the poster column; the catalogue stays. */
    assert_int_equal(B->migrate(s, 4), FP_OK);
    assert_int_equal(has_column(path, "films", "orphaned_at"), 0);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM data_key"), 1);
    assert_int_equal(B->migrate(s, 3), FP_OK);
    assert_int_equal(has_table(path, "data_key"), 0);
    assert_int_equal(B->migrate(s, 2), FP_OK);
    assert_int_equal(has_table(path, "watched"), 0);
    assert_int_equal(B->migrate(s, 1), FP_OK);
    assert_int_equal(has_column(path, "films", "poster"), 0);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM films"), 1);
    assert_int_equal(B->migrate(s, 5), FP_OK);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM films"), 1);
    store_datakey dk = {0};
    assert_int_equal(B->datakey_get(s, &dk), FP_NOT_FOUND); /* forgotten with version 4 */

    assert_int_equal(B->migrate(s, 0), FP_OK);
    assert_int_equal(B->migration_status(s, &cur, &latest), FP_OK);
    assert_int_equal(cur, 0);
    assert_int_equal(has_table(path, "films") + has_table(path, "watchlists") +
                         has_table(path, "watched") + has_table(path, "data_key"),
                     0);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM schema_migrations"), 0);

    assert_int_equal(B->migrate(s, -1), FP_OK);
    assert_int_equal(B->migration_status(s, &cur, &latest), FP_OK);
    assert_int_equal(cur, 5);
    f.id = 0;
    assert_int_equal(B->films_resolve(s, &f, 1), FP_OK);
    assert_int_equal(f.id, 1); /* a fresh table again */

    assert_int_equal(B->migrate(s, 6), FP_INVALID);
    assert_int_equal(B->migrate(s, -2), FP_INVALID);
    assert_int_equal(B->migration_status(s, &cur, &latest), FP_OK);
    assert_int_equal(cur, 5);

    film_clear(&f);
    B->close(s);
    drop_db(path);
}

/* What a later release could add: Kinopoisk ids, reversibly. */
static const store_migration later_steps[] = {
    {6, "films_kp_id",
     "ALTER TABLE films ADD COLUMN kp_id INTEGER;"
     "CREATE UNIQUE INDEX films_kp_id ON films (kp_id);",
     "DROP INDEX films_kp_id;"
     "ALTER TABLE films DROP COLUMN kp_id;"},
    /* Fails half-way: the table it created must not survive. */
    {7, "broken", "CREATE TABLE half_done (x INTEGER); INSERT INTO no_such_table VALUES (1);",
     "DROP TABLE half_done;"},
};

static void test_later_migrations(void **state)
{
    (void)state;
    char *path = fresh_db();
    /* The built-in steps (1..5), then the later ones (6, 7). */
    assert_int_equal(TB->n_migs, 5);
    store_migration list[7];
    memcpy(list, TB->migs, 5 * sizeof list[0]);
    memcpy(list + 5, later_steps, sizeof later_steps);

    store *s = open_migrated(path);
    fspec alien = {0, NULL, NULL, NULL, "Alien", 1979};
    int64_t id = resolve_spec(s, &alien);

    TB->use_migrations(s, list, 6);
    int cur = -1, latest = -1;
    assert_int_equal(B->migration_status(s, &cur, &latest), FP_OK);
    assert_int_equal(cur, 5);
    assert_int_equal(latest, 6);
    assert_int_equal(B->migrate(s, -1), FP_OK);
    assert_int_equal(B->migration_status(s, &cur, &latest), FP_OK);
    assert_int_equal(cur, 6);
    assert_int_equal(has_column(path, "films", "kp_id"), 1);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM schema_migrations"), 6);
    assert_row(s, id, &alien, "after up to 6");
    assert_int_equal(resolve_spec(s, &alien), id); /* statements survive the schema change */

    assert_int_equal(B->migrate(s, 5), FP_OK);
    assert_int_equal(has_column(path, "films", "kp_id"), 0);
    assert_int_equal(has_table(path, "films_kp_id"), 0);
    assert_row(s, id, &alien, "after down to 5");

    /* Down to nothing and straight up to 6, one step at a time. */
    assert_int_equal(B->migrate(s, 0), FP_OK);
    assert_int_equal(B->migrate(s, 6), FP_OK);
    assert_int_equal(raw_int(path, "SELECT count(*) * 1000 + sum(version) FROM schema_migrations"), 6021);

    /* A step that fails leaves the schema at the previous version. */
    TB->use_migrations(s, list, 7);
    assert_int_equal(B->migrate(s, -1), FP_STORAGE);
    assert_int_equal(B->migration_status(s, &cur, &latest), FP_OK);
    assert_int_equal(cur, 6);
    assert_int_equal(latest, 7);
    assert_int_equal(has_table(path, "half_done"), 0);

    /* An older build (the built-in steps) refuses a schema newer than it knows. */
    TB->use_migrations(s, NULL, 0);
    assert_int_equal(B->migration_status(s, &cur, &latest), FP_OK);
    assert_int_equal(cur, 6);
    assert_int_equal(latest, 5);
    assert_int_equal(B->migrate(s, -1), FP_STORAGE);
    assert_int_equal(B->migration_status(s, &cur, &latest), FP_OK);
    assert_int_equal(cur, 6);

    /* A malformed list is refused before touching anything. */
    store_migration gap[2] = {list[0], list[1]};
    gap[1].version = 3; /* 1 then 3: a gap */
    TB->use_migrations(s, gap, 2);
    assert_int_equal(B->migrate(s, -1), FP_INTERNAL);

    B->close(s);
    drop_db(path);
}

/* ---- the catalogue ----------------------------------------------------- */

#define NEW_ROW -1

static const struct {
    const char *name;
    fspec setup[3];
    size_t n_setup;
    fspec in;
    int match; /* index into setup, or NEW_ROW */
    fspec want;
} resolve_cases[] = {
    {"letterboxd id", {{51608, "fail-safe", NULL, NULL, "Fail Safe", 1964}}, 1,
     {51608, NULL, NULL, NULL, "Fail-Safe", 0}, 0,
     {51608, "fail-safe", NULL, NULL, "Fail Safe", 1964}},
    {"slug", {{0, "fail-safe", NULL, NULL, "Fail Safe", 1964}}, 1,
     {51608, "fail-safe", NULL, NULL, "Fail Safe", 1964}, 0,
     {51608, "fail-safe", NULL, NULL, "Fail Safe", 1964}},
    {"boxd.it link", {{0, NULL, "https://boxd.it/zEvs", NULL, "The Royal Hotel", 2023}}, 1,
     {0, NULL, "https://boxd.it/zEvs", NULL, "Royal Hotel", 0}, 0,
     {0, NULL, "https://boxd.it/zEvs", NULL, "The Royal Hotel", 2023}},
    {"imdb id", {{0, NULL, NULL, "tt0110413", "L\u00e9on: The Professional", 1994}}, 1,
     {0, NULL, "https://boxd.it/2b0k", "tt0110413", "Leon", 1994}, 0,
     {0, NULL, "https://boxd.it/2b0k", "tt0110413", "L\u00e9on: The Professional", 1994}},
    {"title and year", {{47000, "the-old-man-the-gun", NULL, NULL, "The Old Man & the Gun", 2018}}, 1,
     {0, NULL, "https://boxd.it/abc1", NULL, "The Old Man and the Gun", 2018}, 0,
     {47000, "the-old-man-the-gun", "https://boxd.it/abc1", NULL, "The Old Man & the Gun", 2018}},
    {"title folding", {{0, NULL, NULL, NULL, "L\u00e9on", 1994}}, 1,
     {0, NULL, "https://boxd.it/leon", NULL, "LEON", 1994}, 0,
     {0, NULL, "https://boxd.it/leon", NULL, "L\u00e9on", 1994}},
    {"same title, other year", {{0, NULL, NULL, NULL, "Dune", 1984}}, 1,
     {0, NULL, NULL, NULL, "Dune", 2021}, NEW_ROW,
     {0, NULL, NULL, NULL, "Dune", 2021}},
    {"year-less row, unique title", {{0, NULL, "https://boxd.it/Heat2", NULL, "Heat 2", 0}}, 1,
     {88, "heat-2", NULL, NULL, "Heat 2", 2027}, 0,
     {88, "heat-2", "https://boxd.it/Heat2", NULL, "Heat 2", 2027}},
    {"year-less film, unique title", {{50124, "naked-lunch", NULL, NULL, "Naked Lunch", 1991}}, 1,
     {0, NULL, NULL, NULL, "Naked Lunch", 0}, 0,
     {50124, "naked-lunch", NULL, NULL, "Naked Lunch", 1991}},
    {"year-less film, ambiguous title",
     {{1, "fatherland-3", NULL, NULL, "Fatherland", 2025}, {2, "fatherland", NULL, NULL, "Fatherland", 1994}}, 2,
     {0, NULL, NULL, NULL, "Fatherland", 0}, NEW_ROW,
     {0, NULL, NULL, NULL, "Fatherland", 0}},
    {"year-less row, ambiguous title",
     {{5, "heat-2-a", NULL, NULL, "Heat 2", 1999}, {6, "heat-2-b", NULL, NULL, "Heat 2", 0}}, 2,
     {0, NULL, NULL, NULL, "Heat 2", 2027}, NEW_ROW,
     {0, NULL, NULL, NULL, "Heat 2", 2027}},
    {"other letterboxd id, same title and year",
     {{1315318, "fatherland-3", NULL, NULL, "Fatherland", 2025}}, 1,
     {999, "fatherland-x", NULL, NULL, "Fatherland", 2025}, NEW_ROW,
     {999, "fatherland-x", NULL, NULL, "Fatherland", 2025}},
    {"other imdb id, same title and year", {{0, NULL, NULL, "tt0000001", "Same", 2000}}, 1,
     {0, NULL, NULL, "tt0000002", "Same", 2000}, NEW_ROW,
     {0, NULL, NULL, "tt0000002", "Same", 2000}},
    {"slug held by another letterboxd id", {{1, "remake", NULL, NULL, "Remake", 1990}}, 1,
     {2, "remake", NULL, NULL, "Remake", 2020}, NEW_ROW,
     {2, NULL, NULL, NULL, "Remake", 2020}},
    {"fill in every missing field", {{0, "x-film", NULL, NULL, "X", 0}}, 1,
     {9, "x-film", "https://boxd.it/X9", "tt0000009", "X", 2001}, 0,
     {9, "x-film", "https://boxd.it/X9", "tt0000009", "X", 2001}},
    {"known values never overwritten", {{1, "old-slug", NULL, "tt0000001", "Film", 2000}}, 1,
     {1, "new-slug", NULL, "tt0000002", "Film Renamed", 2001}, 0,
     {1, "old-slug", NULL, "tt0000001", "Film", 2000}},
    {"id-less film takes the id-less row among several",
     {{1, "twin-a", NULL, NULL, "Twin", 2000}, {2, "twin-b", NULL, NULL, "Twin", 2000},
      {0, NULL, NULL, NULL, "Twin", 2000}}, 3,
     {0, NULL, NULL, NULL, "Twin", 2000}, 2,
     {0, NULL, NULL, NULL, "Twin", 2000}},
    {"film with ids does not guess among several",
     {{1, "twin-a", NULL, NULL, "Twin", 2000}, {2, "twin-b", NULL, NULL, "Twin", 2000}}, 2,
     {0, NULL, "https://boxd.it/twin", NULL, "Twin", 2000}, NEW_ROW,
     {0, NULL, "https://boxd.it/twin", NULL, "Twin", 2000}},
};

static void test_resolve_rules(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof resolve_cases / sizeof resolve_cases[0]; c++) {
        const char *name = resolve_cases[c].name;
        char *url = fresh_db();
    store *s = open_migrated(url);
        int64_t ids[3] = {0, 0, 0};
        for (size_t i = 0; i < resolve_cases[c].n_setup; i++) {
            ids[i] = resolve_spec(s, &resolve_cases[c].setup[i]);
            for (size_t j = 0; j < i; j++)
                if (ids[i] == ids[j])
                    fail_msg("%s: setup rows %zu and %zu merged", name, i, j);
        }
        int64_t got = resolve_spec(s, &resolve_cases[c].in);
        if (resolve_cases[c].match == NEW_ROW) {
            for (size_t i = 0; i < resolve_cases[c].n_setup; i++)
                if (got == ids[i])
                    fail_msg("%s: merged into setup row %zu", name, i);
            assert_int_equal(count_films(s, 10), resolve_cases[c].n_setup + 1);
        } else {
            if (got != ids[resolve_cases[c].match])
                fail_msg("%s: got row %lld, want setup row %d", name, (long long)got,
                         resolve_cases[c].match);
            assert_int_equal(count_films(s, 10), resolve_cases[c].n_setup);
        }
        assert_row(s, got, &resolve_cases[c].want, name);
        /* Resolving the same film again is stable. */
        if (resolve_spec(s, &resolve_cases[c].in) != got)
            fail_msg("%s: not stable", name);
        close_drop(s, url);
    }
}

static void test_resolve_batch_semantics(void **state)
{
    (void)state;
    char *url = fresh_db();
    store *s = open_migrated(url);
    fspec specs[] = {
        {0, NULL, NULL, NULL, "Heat 2", 0},          /* 0: year-less */
        {88, "heat-2", NULL, NULL, "Heat 2", 2027},  /* 1: merges into 0, fills year */
        {0, NULL, NULL, NULL, "Heat 2", 2027},       /* 2: by the rewritten match key */
        {0, NULL, NULL, NULL, "Fatherland", 2025},   /* 3 */
        {0, NULL, NULL, NULL, "Fatherland", 2025},   /* 4: same as 3 inside one batch */
        {1, "fatherland-1", NULL, NULL, "Fatherland", 1994}, /* 5 */
        {2, "fatherland-2", NULL, NULL, "Fatherland", 1986}, /* 6 */
    };
    enum { N = sizeof specs / sizeof specs[0] };
    film films[N];
    for (size_t i = 0; i < N; i++)
        spec_to_film(&specs[i], &films[i]);
    assert_int_equal(B->films_resolve(s, films, N), FP_OK);
    assert_int_equal(films[1].id, films[0].id);
    assert_int_equal(films[2].id, films[0].id);
    assert_int_equal(films[4].id, films[3].id);
    assert_true(films[3].id != films[0].id);
    assert_true(films[5].id != films[3].id && films[6].id != films[3].id && films[5].id != films[6].id);
    assert_int_equal(count_films(s, 20), 4);
    fspec heat = {88, "heat-2", NULL, NULL, "Heat 2", 2027};
    assert_row(s, films[0].id, &heat, "heat 2 merged");

    /* Importing the same id-less "Fatherland" again and again adds no rows. */
    fspec ambiguous = {0, NULL, NULL, NULL, "Fatherland", 0};
    int64_t first = resolve_spec(s, &ambiguous);
    for (int i = 0; i < 3; i++)
        assert_int_equal(resolve_spec(s, &ambiguous), first);
    assert_int_equal(count_films(s, 20), 5);

    for (size_t i = 0; i < N; i++)
        film_clear(&films[i]);

    /* A film without a title fails the whole batch, which stores nothing. */
    film bad[2] = {{.title = fp_strdup("Fine"), .year = 2000}, {.lb_id = 77}};
    bad[1].id = 123;
    assert_int_equal(B->films_resolve(s, bad, 2), FP_INVALID);
    assert_int_equal(count_films(s, 20), 5);
    film_clear(&bad[0]);
    film_clear(&bad[1]);
    assert_int_equal(B->films_resolve(s, NULL, 0), FP_OK);
    close_drop(s, url);
}

static void make_films(film *films, size_t n, int64_t lb_base, int with_ids)
{
    for (size_t i = 0; i < n; i++) {
        memset(&films[i], 0, sizeof films[i]);
        if (with_ids) {
            films[i].lb_id = lb_base + (int64_t)i;
            films[i].lb_slug = fp_printf("film-number-%zu", i);
        } else {
            films[i].lb_uri = fp_printf("https://boxd.it/t%zu", i);
        }
        films[i].title = fp_printf("Film Number %zu", i);
        films[i].year = 1950 + (int)(i % 70);
    }
}

static double elapsed_ms(const struct timespec *a)
{
    struct timespec b;
    clock_gettime(CLOCK_MONOTONIC, &b);
    return (double)(b.tv_sec - a->tv_sec) * 1e3 + (double)(b.tv_nsec - a->tv_nsec) / 1e6;
}

static void test_resolve_1000_timing(void **state)
{
    (void)state;
    char *path = fresh_db();
    store *s = open_migrated(path);
    enum { N = 1000 };
    film *a = fp_calloc(N, sizeof *a), *b = fp_calloc(N, sizeof *b), *c = fp_calloc(N, sizeof *c);
    make_films(a, N, 100000, 1);
    make_films(b, N, 100000, 1);
    make_films(c, N, 0, 0);

    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    assert_int_equal(B->films_resolve(s, a, N), FP_OK);
    double insert_ms = elapsed_ms(&t);
    clock_gettime(CLOCK_MONOTONIC, &t);
    assert_int_equal(B->films_resolve(s, b, N), FP_OK);
    double match_ms = elapsed_ms(&t);
    clock_gettime(CLOCK_MONOTONIC, &t);
    assert_int_equal(B->films_resolve(s, c, N), FP_OK);
    double title_ms = elapsed_ms(&t);
    print_message("films_resolve x1000 on a file db: insert %.1f ms, match by id %.1f ms, "
                  "match by title+year with fill-in %.1f ms\n",
                  insert_ms, match_ms, title_ms);
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(a[i].id, b[i].id);
        assert_int_equal(a[i].id, c[i].id);
        if (i)
            assert_true(a[i].id != a[i - 1].id);
    }
    assert_int_equal(raw_int(path, "SELECT count(*) FROM films"), N);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM films WHERE lb_uri IS NOT NULL"), N);
    /* Generous bounds (sanitizer builds are slow); typical runs are ~10 ms. */
    assert_true(insert_ms < 3000 && match_ms < 3000 && title_ms < 3000);
    for (size_t i = 0; i < N; i++) {
        film_clear(&a[i]);
        film_clear(&b[i]);
        film_clear(&c[i]);
    }
    fp_free(a);
    fp_free(b);
    fp_free(c);
    B->close(s);
    drop_db(path);
}

/* films_resolve_limited: at most max_new inserts; one more stores nothing and
 * says how many distinct films were new. */
static void test_resolve_limited(void **state)
{
    (void)state;
    char *url = fresh_db();
    store *s = open_migrated(url);
    static const fspec known[] = {{0, NULL, "https://boxd.it/k1", NULL, "Known One", 2001},
                                  {77, "known-two", NULL, NULL, "Known Two", 2002}};
    for (size_t i = 0; i < 2; i++)
        resolve_spec(s, &known[i]);
    /* the two known (by link, by Letterboxd id, another title), three new:
     * one listed twice (the same link), one by title and year twice */
    static const fspec batch[] = {
        {0, NULL, "https://boxd.it/k1", NULL, "Known One (renamed)", 0},
        {77, NULL, NULL, NULL, "Known 2", 0},
        {0, NULL, "https://boxd.it/n1", NULL, "New One", 2010},
        {0, NULL, "https://boxd.it/n1", NULL, "New One again", 2010},
        {0, NULL, NULL, NULL, "New Two", 2011},
        {0, NULL, NULL, NULL, "new two", 2011},
        {0, NULL, NULL, "tt0000003", "New Three", 2012},
    };
    enum { N = sizeof batch / sizeof batch[0] };
    film f[N];
    for (size_t cap = 0; cap <= 3; cap++) {
        for (size_t i = 0; i < N; i++)
            spec_to_film(&batch[i], &f[i]);
        size_t nnew = 99;
        fp_err rc = B->films_resolve_limited(s, f, N, cap, &nnew);
        if (cap < 3) {
            assert_int_equal(rc, FP_TOO_MANY_FILMS);
            assert_int_equal(nnew, 3);
            for (size_t i = 0; i < N; i++)
                assert_int_equal(f[i].id, 0);
            assert_int_equal(count_films(s, 20), 2); /* nothing stored */
        } else {
            assert_int_equal(rc, FP_OK);
            assert_int_equal(nnew, 3);
            assert_int_equal(count_films(s, 20), 5);
            assert_int_equal(f[0].id, 1);
            assert_int_equal(f[1].id, 2);
            assert_int_equal(f[2].id, f[3].id);
            assert_int_equal(f[4].id, f[5].id);
        }
        for (size_t i = 0; i < N; i++)
            film_clear(&f[i]);
    }
    /* all known now: any cap will do, even 0 */
    for (size_t i = 0; i < N; i++)
        spec_to_film(&batch[i], &f[i]);
    size_t nnew = 99;
    assert_int_equal(B->films_resolve_limited(s, f, N, 0, &nnew), FP_OK);
    assert_int_equal(nnew, 0);
    for (size_t i = 0; i < N; i++)
        film_clear(&f[i]);
    assert_int_equal(B->films_resolve_limited(s, NULL, 0, 0, NULL), FP_OK);
    close_drop(s, url);
}

/* The sweep's side of the catalogue: pages of ids and marks, marking,
 * deleting marked films (never the highest id), a resolve clearing a mark. */
static void test_orphan_marks(void **state)
{
    (void)state;
    char *url = fresh_db();
    store *s = open_migrated(url);
    enum { N = 12 };
    int64_t ids[N];
    for (int i = 0; i < N; i++) {
        char title[32];
        snprintf(title, sizeof title, "Film %d", i);
        fspec sp = {0, NULL, NULL, NULL, title, 2000};
        ids[i] = resolve_spec(s, &sp);
    }
    store_film_mark page[5];
    size_t n = 0, seen = 0;
    int64_t after = 0;
    do { /* pages of 5, in id order, all unmarked */
        assert_int_equal(B->films_page(s, after, 5, page, &n), FP_OK);
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(page[i].id, ids[seen++]);
            assert_int_equal(page[i].orphaned_at, 0);
        }
        if (n)
            after = page[n - 1].id;
    } while (n == 5);
    assert_int_equal(seen, N);

    /* mark 0..5 at 1000, then 0..2 again at 2000: the first mark stays */
    assert_int_equal(B->films_mark(s, ids, 6, 1000), FP_OK);
    assert_int_equal(B->films_mark(s, ids, 3, 2000), FP_OK);
    assert_int_equal(B->films_page(s, 0, 5, page, &n), FP_OK);
    assert_int_equal(page[0].orphaned_at, 1000);
    assert_int_equal(B->films_mark(s, ids, 1, -1), FP_INVALID);
    /* film 1 is used again: unmarked */
    assert_int_equal(B->films_mark(s, &ids[1], 1, 0), FP_OK);
    /* film 2 is resolved again (a list takes it): its mark goes too */
    fspec again = {0, NULL, NULL, NULL, "Film 2", 2000};
    assert_int_equal(resolve_spec(s, &again), ids[2]);
    assert_int_equal(B->films_page(s, 0, 5, page, &n), FP_OK);
    assert_int_equal(page[1].orphaned_at, 0);
    assert_int_equal(page[2].orphaned_at, 0);

    /* delete 0..11 marked at or before 999: none (marks are 1000) */
    size_t deleted = 99;
    assert_int_equal(B->films_delete_orphans(s, ids, N, 999, &deleted), FP_OK);
    assert_int_equal(deleted, 0);
    /* at or before 1000: the marked ones only (0, 3, 4, 5) */
    assert_int_equal(B->films_delete_orphans(s, ids, N, 1000, &deleted), FP_OK);
    assert_int_equal(deleted, 4);
    assert_int_equal(count_films(s, N + 5), N - 4);
    /* the highest id is never deleted, so no id is handed out twice */
    assert_int_equal(B->films_mark(s, &ids[N - 1], 1, 5), FP_OK);
    assert_int_equal(B->films_mark(s, &ids[N - 2], 1, 5), FP_OK);
    assert_int_equal(B->films_delete_orphans(s, &ids[N - 2], 2, 10, &deleted), FP_OK);
    assert_int_equal(deleted, 1);
    fspec fresh = {0, NULL, NULL, NULL, "Brand new", 2024};
    assert_true(resolve_spec(s, &fresh) > ids[N - 1]);
    assert_int_equal(B->films_delete_orphans(s, NULL, 0, 10, NULL), FP_OK);
    close_drop(s, url);
}

static void test_films_load(void **state)
{
    (void)state;
    char *url = fresh_db();
    store *s = open_migrated(url);
    enum { N = 1200 };
    film *films = fp_calloc(N, sizeof *films);
    make_films(films, N, 5000, 1);
    films[7].year = 0;
    fp_free(films[7].lb_slug);
    films[7].lb_slug = NULL;
    films[8].imdb_id = fp_strdup("tt0000008");
    assert_int_equal(B->films_resolve(s, films, N), FP_OK);

    /* Scrambled, across chunk boundaries, with unknown ids and repeats. */
    enum { M = 1300 };
    int64_t *ids = fp_malloc(M * sizeof *ids);
    size_t *want = fp_malloc(M * sizeof *want); /* index into films, or N for unknown */
    for (size_t i = 0; i < M; i++) {
        if (i % 97 == 5) {
            ids[i] = 1000000 + (int64_t)i;
            want[i] = N;
        } else {
            size_t k = (i * 7919) % N;
            ids[i] = films[k].id;
            want[i] = k;
        }
    }
    film_list out;
    film_list_init(&out);
    film *pre = film_list_push(&out); /* results are appended */
    pre->title = fp_strdup("already here");
    assert_int_equal(B->films_load(s, ids, M, &out), FP_OK);
    size_t j = 1;
    for (size_t i = 0; i < M; i++) {
        if (want[i] == N)
            continue;
        assert_true(j < out.len);
        const film *got = &out.items[j++];
        const film *exp = &films[want[i]];
        assert_int_equal(got->id, exp->id);
        assert_int_equal(got->lb_id, exp->lb_id);
        assert_str_or_null("slug", got->lb_slug, exp->lb_slug);
        assert_str_or_null("imdb", got->imdb_id, exp->imdb_id);
        assert_string_equal(got->title, exp->title);
        assert_int_equal(got->year, exp->year);
    }
    assert_int_equal(j, out.len);
    assert_string_equal(out.items[0].title, "already here");
    film_list_free(&out);

    assert_int_equal(B->films_load(s, NULL, 0, &out), FP_OK);
    assert_int_equal(out.len, 0);
    int64_t none[] = {-1, 0, 999999};
    assert_int_equal(B->films_load(s, none, 3, &out), FP_OK);
    assert_int_equal(out.len, 0);

    for (size_t i = 0; i < N; i++)
        film_clear(&films[i]);
    fp_free(films);
    fp_free(ids);
    fp_free(want);
    close_drop(s, url);
}

/* ---- watchlists -------------------------------------------------------- */

static void expect_watchlist(store *s, const uint8_t key[32], const char *blob, int64_t fetched,
                             int64_t version)
{
    store_watchlist w;
    assert_int_equal(B->watchlist_get(s, key, &w), FP_OK);
    assert_int_equal(w.sealed_len, strlen(blob));
    assert_memory_equal(w.sealed, blob, w.sealed_len);
    assert_int_equal(w.fetched_at, fetched);
    assert_int_equal(w.version, version);
    store_watchlist_free(&w);
    assert_null(w.sealed);
}

static void test_watchlist_versions(void **state)
{
    (void)state;
    char *url = fresh_db();
    store *s = open_migrated(url);
    uint8_t k1[32], k2[32];
    fill_key(k1, 1);
    fill_key(k2, 2);
    store_watchlist w;
    int64_t v = -7;

    assert_int_equal(B->watchlist_get(s, k1, &w), FP_NOT_FOUND);
    assert_null(w.sealed);
    assert_int_equal(B->watchlist_put(s, k1, (const uint8_t *)"one", 3, 100, -1, &v), FP_OK);
    assert_int_equal(v, 1);
    expect_watchlist(s, k1, "one", 100, 1);
    assert_int_equal(B->watchlist_put(s, k1, (const uint8_t *)"two", 3, 200, -1, &v), FP_OK);
    assert_int_equal(v, 2);
    expect_watchlist(s, k1, "two", 200, 2);

    /* Compare-and-swap: a stale version loses and changes nothing. */
    assert_int_equal(B->watchlist_put(s, k1, (const uint8_t *)"stale", 5, 300, 1, &v), FP_CONFLICT);
    expect_watchlist(s, k1, "two", 200, 2);
    assert_int_equal(B->watchlist_put(s, k1, (const uint8_t *)"three", 5, 300, 2, &v), FP_OK);
    assert_int_equal(v, 3);
    expect_watchlist(s, k1, "three", 300, 3);
    assert_int_equal(B->watchlist_put(s, k1, (const uint8_t *)"again", 5, 300, 2, NULL), FP_CONFLICT);
    /* 0 = create only if absent. */
    assert_int_equal(B->watchlist_put(s, k1, (const uint8_t *)"new", 3, 1, 0, NULL), FP_CONFLICT);
    assert_int_equal(B->watchlist_put(s, k2, (const uint8_t *)"new", 3, 1, 5, NULL), FP_CONFLICT);
    assert_int_equal(B->watchlist_get(s, k2, &w), FP_NOT_FOUND);
    assert_int_equal(B->watchlist_put(s, k2, (const uint8_t *)"new", 3, 1, 0, &v), FP_OK);
    assert_int_equal(v, 1);
    expect_watchlist(s, k2, "new", 1, 1);
    expect_watchlist(s, k1, "three", 300, 3); /* keys are independent */

    /* Empty blobs are blobs; a NULL with a length is not. */
    assert_int_equal(B->watchlist_put(s, k2, NULL, 0, 2, 1, &v), FP_OK);
    expect_watchlist(s, k2, "", 2, 2);
    assert_int_equal(B->watchlist_put(s, k2, NULL, 4, 2, -1, &v), FP_INVALID);
    assert_int_equal(B->watchlist_put(s, k2, (const uint8_t *)"x", 1, 2, -2, &v), FP_INVALID);

    assert_int_equal(B->watchlist_delete(s, k1), FP_OK);
    assert_int_equal(B->watchlist_get(s, k1, &w), FP_NOT_FOUND);
    assert_int_equal(B->watchlist_delete(s, k1), FP_NOT_FOUND);
    assert_int_equal(B->watchlist_put(s, k1, (const uint8_t *)"back", 4, 9, 3, NULL), FP_CONFLICT);
    assert_int_equal(B->watchlist_put(s, k1, (const uint8_t *)"back", 4, 9, -1, &v), FP_OK);
    assert_int_equal(v, 1);
    expect_watchlist(s, k2, "", 2, 2);
    close_drop(s, url);
}

/* The data key row: create once, compare-and-swap, reset. */
static void test_datakey_rows(void **state)
{
    (void)state;
    char *path = fresh_db();
    store *s = open_migrated(path);
    store_datakey dk = {0};
    assert_int_equal(B->datakey_get(s, &dk), FP_NOT_FOUND);
    assert_null(dk.wrapped);
    static const uint8_t a[] = "first wrapped key", b[] = "second wrapped key",
                         c[] = "a fresh key after a reset";
    assert_int_equal(B->datakey_put(s, a, sizeof a, NULL, 0), FP_OK);
    /* only one first start: a second create loses */
    assert_int_equal(B->datakey_put(s, b, sizeof b, NULL, 0), FP_CONFLICT);
    assert_int_equal(B->datakey_get(s, &dk), FP_OK);
    assert_int_equal(dk.wrapped_len, sizeof a);
    assert_memory_equal(dk.wrapped, a, sizeof a);
    assert_true(llabs(dk.created_at - (int64_t)time(NULL)) < 60);
    assert_int_equal(dk.updated_at, dk.created_at);
    store_datakey_free(&dk);
    /* re-keying: only from the key that is there */
    assert_int_equal(B->datakey_put(s, b, sizeof b, b, sizeof b), FP_CONFLICT);
    assert_int_equal(B->datakey_put(s, b, sizeof b, a, sizeof a - 1), FP_CONFLICT);
    assert_int_equal(B->datakey_put(s, b, sizeof b, a, sizeof a), FP_OK);
    assert_int_equal(B->datakey_get(s, &dk), FP_OK);
    assert_memory_equal(dk.wrapped, b, sizeof b);
    store_datakey_free(&dk);
    assert_int_equal(B->datakey_put(s, NULL, 0, NULL, 0), FP_INVALID);

    /* a reset forgets every sealed row, keeps the catalogue */
    fspec alien = {0, NULL, NULL, NULL, "Alien", 1979};
    int64_t id = resolve_spec(s, &alien);
    uint8_t k1[STORE_KEY_BYTES], k2[STORE_KEY_BYTES];
    fill_key(k1, 1);
    fill_key(k2, 2);
    assert_int_equal(B->watchlist_put(s, k1, (const uint8_t *)"l1", 2, 1, -1, NULL), FP_OK);
    assert_int_equal(B->watchlist_put(s, k2, (const uint8_t *)"l2", 2, 1, -1, NULL), FP_OK);
    assert_int_equal(B->watched_put(s, k1, (const uint8_t *)"w1", 2, 1, -1, NULL), FP_OK);
    size_t nl = 9, nw = 9;
    assert_int_equal(B->datakey_reset(s, c, sizeof c, &nl, &nw), FP_OK);
    assert_int_equal(nl, 2);
    assert_int_equal(nw, 1);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM watchlists"), 0);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM watched"), 0);
    assert_row(s, id, &alien, "after a reset");
    assert_int_equal(B->datakey_get(s, &dk), FP_OK);
    assert_memory_equal(dk.wrapped, c, sizeof c);
    store_datakey_free(&dk);
    /* and on a database without any key yet */
    B->close(s);
    char *path2 = fresh_db();
    s = open_migrated(path2);
    assert_int_equal(B->datakey_reset(s, a, sizeof a, NULL, NULL), FP_OK);
    assert_int_equal(B->datakey_get(s, &dk), FP_OK);
    assert_memory_equal(dk.wrapped, a, sizeof a);
    store_datakey_free(&dk);
    close_drop(s, path2);
    drop_db(path);
}

/* Every sealed row of a table, in key order, a page at a time. */
static void test_sealed_pages(void **state)
{
    (void)state;
    char *url = fresh_db();
    store *s = open_migrated(url);
    enum { N = 23 };
    for (int i = 0; i < N; i++) {
        uint8_t k[STORE_KEY_BYTES];
        memset(k, 0, sizeof k);
        k[0] = (uint8_t)(200 - i * 7); /* inserted out of key order */
        char blob[16];
        int len = snprintf(blob, sizeof blob, "list-%d", i);
        assert_int_equal(B->watchlist_put(s, k, (const uint8_t *)blob, (size_t)len, 1, -1, NULL),
                         FP_OK);
        if (i % 3 == 0)
            assert_int_equal(B->watched_put(s, k, (const uint8_t *)"w", 1, 1, -1, NULL), FP_OK);
    }
    static const size_t limits[] = {1, 5, 23, 100};
    for (size_t li = 0; li < 4; li++) {
        uint8_t after[STORE_KEY_BYTES];
        int have_after = 0, seen = 0, last = -1;
        for (;;) {
            store_sealed_row *rows = NULL;
            size_t n = 0;
            assert_int_equal(B->sealed_page(s, STORE_SEALED_WATCHLISTS, have_after ? after : NULL,
                                            limits[li], &rows, &n),
                             FP_OK);
            assert_true(n <= limits[li]);
            for (size_t i = 0; i < n; i++) {
                assert_true(rows[i].key[0] > last); /* ascending, no repeats */
                last = rows[i].key[0];
                int idx = (200 - last) / 7;
                char want[16];
                int len = snprintf(want, sizeof want, "list-%d", idx);
                assert_int_equal(rows[i].sealed_len, (size_t)len);
                assert_memory_equal(rows[i].sealed, want, (size_t)len);
                seen++;
            }
            if (n)
                memcpy(after, rows[n - 1].key, STORE_KEY_BYTES);
            have_after = 1;
            store_sealed_rows_free(rows, n);
            if (n < limits[li])
                break;
        }
        assert_int_equal(seen, N);
    }
    store_sealed_row *rows = NULL;
    size_t n = 0;
    assert_int_equal(B->sealed_page(s, STORE_SEALED_WATCHED, NULL, 100, &rows, &n), FP_OK);
    assert_int_equal(n, (N + 2) / 3);
    store_sealed_rows_free(rows, n);
    assert_int_equal(B->sealed_page(s, STORE_SEALED_WATCHED, NULL, 0, &rows, &n), FP_OK);
    assert_int_equal(n, 0);
    assert_null(rows);
    assert_int_equal(B->sealed_page(s, (store_sealed_kind)7, NULL, 5, &rows, &n), FP_INVALID);
    close_drop(s, url);
}

static void fill_pattern(uint8_t *p, size_t len, uint8_t seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < len; i++) {
        x = x * 1103515245u + 12345u;
        p[i] = (uint8_t)(x >> 24);
    }
}

/* The watched sets are a table of their own: same versions, other rows. */
static void test_watched_rows(void **state)
{
    (void)state;
    char *path = fresh_db();
    store *s = open_migrated(path);
    uint8_t k[STORE_KEY_BYTES];
    memset(k, 7, sizeof k);
    store_watchlist w = {0};
    int64_t v = 0;
    assert_int_equal(B->watched_get(s, k, &w), FP_NOT_FOUND);
    assert_int_equal(B->watched_put(s, k, (const uint8_t *)"set1", 4, 10, 0, &v), FP_OK);
    assert_int_equal(v, 1);
    assert_int_equal(B->watched_put(s, k, (const uint8_t *)"x", 1, 11, 0, NULL), FP_CONFLICT);
    assert_int_equal(B->watched_put(s, k, (const uint8_t *)"set2", 4, 12, 1, &v), FP_OK);
    assert_int_equal(v, 2);
    assert_int_equal(B->watched_put(s, k, (const uint8_t *)"stale", 5, 13, 1, NULL), FP_CONFLICT);
    assert_int_equal(B->watched_get(s, k, &w), FP_OK);
    assert_int_equal(w.sealed_len, 4);
    assert_memory_equal(w.sealed, "set2", 4);
    assert_int_equal(w.fetched_at, 12);
    assert_int_equal(w.version, 2);
    store_watchlist_free(&w);
    /* the person's watchlist row is another row */
    assert_int_equal(B->watchlist_get(s, k, &w), FP_NOT_FOUND);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM watched"), 1);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM watchlists"), 0);
    B->close(s);
    drop_db(path);
}

static void test_replace_survives_crash(void **state)
{
    (void)state;
    char *path = fresh_db();
    char *wal = PG ? NULL : fp_printf("%s-wal", path);
    uint8_t key[32];
    fill_key(key, 9);
    enum { OLD_LEN = 300000, NEW_LEN = 8 << 20 };
    uint8_t *old_blob = fp_malloc(OLD_LEN);
    fill_pattern(old_blob, OLD_LEN, 1);

    store *s = open_migrated(path);
    int64_t v = 0;
    assert_int_equal(B->watchlist_put(s, key, old_blob, OLD_LEN, 1000, -1, &v), FP_OK);
    assert_int_equal(v, 1);
    B->close(s);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* The child: replace the blob and die before COMMIT. Large enough that
         * SQLite spills the uncommitted pages into the WAL file (and that
         * PostgreSQL has written the new row's TOAST chunks). */
        store *cs = NULL;
        if (store_open(path, NULL, &cs) != FP_OK)
            _exit(3);
        uint8_t *new_blob = fp_malloc(NEW_LEN);
        fill_pattern(new_blob, NEW_LEN, 2);
        TB->crash_before_commit(cs, 1);
        fp_err rc = B->watchlist_put(cs, key, new_blob, NEW_LEN, 2000, -1, NULL);
        _exit(rc == FP_OK ? 4 : 5); /* not reached when the hook works */
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);

    if (wal) { /* SQLite: the dead child left uncommitted frames behind */
        struct stat st;
        assert_int_equal(stat(wal, &st), 0);
        print_message("WAL after the crash: %lld bytes\n", (long long)st.st_size);
        assert_true(st.st_size > OLD_LEN);
    }

    s = open_url(path);
    store_watchlist w;
    assert_int_equal(B->watchlist_get(s, key, &w), FP_OK);
    assert_int_equal(w.version, 1);
    assert_int_equal(w.fetched_at, 1000);
    assert_int_equal(w.sealed_len, OLD_LEN);
    assert_memory_equal(w.sealed, old_blob, OLD_LEN);
    store_watchlist_free(&w);
    /* And the database still takes writes. */
    assert_int_equal(B->watchlist_put(s, key, (const uint8_t *)"after", 5, 3000, 1, &v), FP_OK);
    assert_int_equal(v, 2);
    B->close(s);

    fp_free(old_blob);
    fp_free(wal);
    drop_db(path);
}

/* ---- concurrency ------------------------------------------------------- */

enum { THREADS = 8, ROUNDS = 60, INCREMENTS = 25, SHARED_FILMS = 40 };

typedef struct worker {
    store *s;
    int index;
    int errors;
    int64_t film_ids[SHARED_FILMS];
} worker;

/* Adds one to the counter stored in the shared row, retrying on conflict. */
static int cas_increment(store *s, const uint8_t key[32])
{
    for (int attempt = 0; attempt < 10000; attempt++) {
        store_watchlist w;
        if (B->watchlist_get(s, key, &w) != FP_OK)
            return -1;
        uint64_t counter = 0;
        if (w.sealed_len == sizeof counter)
            memcpy(&counter, w.sealed, sizeof counter);
        counter++;
        fp_err rc = B->watchlist_put(s, key, (const uint8_t *)&counter, sizeof counter, 0,
                                     w.version, NULL);
        store_watchlist_free(&w);
        if (rc == FP_OK)
            return 0;
        if (rc != FP_CONFLICT)
            return -1;
    }
    return -1;
}

static void *worker_main(void *arg)
{
    worker *wk = arg;
    uint8_t own[32], shared[32];
    fill_key(own, (uint8_t)(100 + wk->index));
    fill_key(shared, 1);
    int incs = 0;
    for (int r = 0; r < ROUNDS; r++) {
        /* Everyone resolves the same films: one row each, whoever inserts. */
        film films[SHARED_FILMS];
        for (int i = 0; i < SHARED_FILMS; i++) {
            memset(&films[i], 0, sizeof films[i]);
            films[i].lb_id = 7000 + ((i + r + wk->index) % SHARED_FILMS);
            films[i].title = fp_printf("Shared %lld", (long long)films[i].lb_id);
            films[i].year = 2001;
        }
        if (B->films_resolve(wk->s, films, SHARED_FILMS) != FP_OK)
            wk->errors++;
        for (int i = 0; i < SHARED_FILMS; i++) {
            int slot = (int)(films[i].lb_id - 7000);
            if (wk->film_ids[slot] == 0)
                wk->film_ids[slot] = films[i].id;
            else if (wk->film_ids[slot] != films[i].id)
                wk->errors++;
        }
        film_list l;
        film_list_init(&l);
        int64_t want[3] = {films[0].id, films[1].id, films[2].id};
        if (B->films_load(wk->s, want, 3, &l) != FP_OK || l.len != 3)
            wk->errors++;
        film_list_free(&l);
        for (int i = 0; i < SHARED_FILMS; i++)
            film_clear(&films[i]);

        char blob[32];
        int len = snprintf(blob, sizeof blob, "w%d-r%d", wk->index, r);
        int64_t v = 0;
        if (B->watchlist_put(wk->s, own, (const uint8_t *)blob, (size_t)len, r, -1, &v) != FP_OK ||
            v != r + 1)
            wk->errors++;
        store_watchlist w;
        if (B->watchlist_get(wk->s, own, &w) != FP_OK || w.version != r + 1 ||
            w.sealed_len != (size_t)len || memcmp(w.sealed, blob, (size_t)len) != 0)
            wk->errors++;
        store_watchlist_free(&w);
        if (incs < INCREMENTS && r % 2 == 0) {
            if (cas_increment(wk->s, shared) != 0)
                wk->errors++;
            incs++;
        }
        if (B->ping(wk->s) != FP_OK)
            wk->errors++;
    }
    while (incs < INCREMENTS) {
        if (cas_increment(wk->s, shared) != 0)
            wk->errors++;
        incs++;
    }
    return NULL;
}

static void test_concurrent_use(void **state)
{
    (void)state;
    char *path = fresh_db();
    store *s = open_migrated(path);
    store *other = open_url(path); /* a second instance on the same database */
    uint8_t shared[32];
    fill_key(shared, 1);
    assert_int_equal(B->watchlist_put(s, shared, NULL, 0, 0, 0, NULL), FP_OK);

    worker workers[THREADS];
    pthread_t threads[THREADS];
    memset(workers, 0, sizeof workers);
    for (int i = 0; i < THREADS; i++) {
        workers[i].s = i % 2 ? other : s;
        workers[i].index = i;
        assert_int_equal(pthread_create(&threads[i], NULL, worker_main, &workers[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(threads[i], NULL), 0);
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(workers[i].errors, 0);
        assert_memory_equal(workers[i].film_ids, workers[0].film_ids, sizeof workers[0].film_ids);
    }

    /* No lost update: every increment landed exactly once. */
    store_watchlist w;
    assert_int_equal(B->watchlist_get(s, shared, &w), FP_OK);
    uint64_t counter = 0;
    assert_int_equal(w.sealed_len, sizeof counter);
    memcpy(&counter, w.sealed, sizeof counter);
    assert_int_equal(counter, THREADS * INCREMENTS);
    assert_int_equal(w.version, 1 + THREADS * INCREMENTS);
    store_watchlist_free(&w);
    assert_int_equal(count_films(s, 100), SHARED_FILMS);
    B->close(other);
    close_drop(s, path);
}


/* Several processes (here: handles) migrating one new database at once: all
 * succeed, and every step is applied exactly once. */
enum { MIGRATORS = 4 };

typedef struct migrator {
    const char *url;
    fp_err open_rc, migrate_rc;
    int cur;
} migrator;

static void *migrator_main(void *arg)
{
    migrator *m = arg;
    store *s = NULL;
    m->open_rc = store_open(m->url, NULL, &s);
    if (m->open_rc != FP_OK)
        return NULL;
    int latest = 0;
    m->migrate_rc = B->migrate(s, -1);
    if (m->migrate_rc == FP_OK)
        m->migrate_rc = B->migration_status(s, &m->cur, &latest);
    B->close(s);
    return NULL;
}

static void test_concurrent_migrations(void **state)
{
    (void)state;
    char *url = fresh_db();
    if (!PG) { /* the file must exist first: two processes creating it is another test */
        store *s = open_url(url);
        B->close(s);
    }
    migrator m[MIGRATORS];
    pthread_t t[MIGRATORS];
    for (int i = 0; i < MIGRATORS; i++) {
        m[i] = (migrator){.url = url, .open_rc = FP_INTERNAL, .migrate_rc = FP_INTERNAL};
        assert_int_equal(pthread_create(&t[i], NULL, migrator_main, &m[i]), 0);
    }
    for (int i = 0; i < MIGRATORS; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(m[i].open_rc, FP_OK);
        assert_int_equal(m[i].migrate_rc, FP_OK);
        assert_int_equal(m[i].cur, 5);
    }
    assert_int_equal(raw_int(url, "SELECT count(*) * 1000 + sum(version) FROM schema_migrations"),
                     5015);
    drop_db(url);
}

/* What a row holds: a 32-byte key and the sealed blob, nothing else. */
static void test_privacy_of_rows(void **state)
{
    (void)state;
    char *url = fresh_db();
    store *s = open_migrated(url);
    vault *v = NULL;
    assert_int_equal(vault_open("8f0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
                                NULL, &v),
                     FP_OK);
    uint8_t pk[32];
    vault_person_key(v, "lb", "alice_secret_name", pk);
    static const int64_t ids[] = {3, 17, 4242, 987654321123};
    uint8_t *blob = NULL;
    size_t blob_len = 0;
    assert_int_equal(vault_seal(v, pk, ids, 4, &blob, &blob_len), FP_OK);
    assert_int_equal(B->watchlist_put(s, pk, blob, blob_len, 1, -1, NULL), FP_OK);
    assert_int_equal(B->watched_put(s, pk, blob, blob_len, 1, -1, NULL), FP_OK);
    static const char *const tables[] = {"watchlists", "watched"};
    for (int i = 0; i < 2; i++) {
        char *sql = fp_printf("SELECT length(key) FROM %s", tables[i]);
        assert_int_equal(raw_int(url, sql), 32);
        fp_free(sql);
        sql = fp_printf("SELECT length(sealed) FROM %s", tables[i]);
        assert_int_equal(raw_int(url, sql), (int64_t)blob_len);
        fp_free(sql);
        /* key, sealed, a time, a version: no column for a name or a film */
        assert_int_equal(count_columns(url, tables[i], NULL), 4);
    }
    store_watchlist w;
    assert_int_equal(B->watchlist_get(s, pk, &w), FP_OK);
    int64_t *back = NULL;
    size_t n = 0;
    assert_int_equal(vault_unseal(v, pk, w.sealed, w.sealed_len, &back, &n), FP_OK);
    assert_int_equal(n, 4);
    assert_true(back[3] == 987654321123);
    fp_free(back);
    store_watchlist_free(&w);
    fp_free(blob);
    vault_free(&v);
    close_drop(s, url);
}

/* The pool's counters (the database pool gauges of /metrics). */
static void test_pool_stats(void **state)
{
    (void)state;
    char *url = fresh_db();
    store *s = open_migrated(url);
    assert_non_null(B->pool_stats);
    store_pool_stats ps = {9, 9, 9};
    B->pool_stats(s, &ps);
    assert_int_equal(ps.in_use, 0); /* nothing is being used between calls */
    assert_true(ps.open >= 1 && ps.open <= ps.max);
    assert_int_equal(ps.max, PG ? 8 : 4);
    close_drop(s, url);
    if (PG) { /* the pool size comes from the URL */
        url = fresh_db();
        char *sized = fp_printf("%s&pool_size=3", url);
        s = open_migrated(sized);
        B->pool_stats(s, &ps);
        assert_int_equal(ps.max, 3);
        B->close(s);
        fp_free(sized);
        drop_db(url);
    }
}

/* ---- URLs ---------------------------------------------------------------- */

static void test_urls(void **state)
{
    (void)state;
    static const struct {
        const char *url;
        const store_backend *b;
    } cases[] = {
        {"/var/lib/filmpicker/fp.db", &store_backend_sqlite},
        {"sqlite:fp.db", &store_backend_sqlite},
        {":memory:", &store_backend_sqlite},
        {"postgresql://user@localhost/fp", &store_backend_postgresql},
        {"postgres://localhost/fp", &store_backend_postgresql},
        {"postgresql://u:p@h:5432/db?sslmode=disable&pool_size=4", &store_backend_postgresql},
        {"redis://localhost", NULL},
        {"mysql://localhost/fp", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (store_backend_for(cases[i].url) != cases[i].b)
            fail_msg("url '%s'", cases[i].url);

    static const struct {
        const char *url, *shown;
    } redact[] = {
        {"postgresql://fp:s3cret@127.0.0.1:5432/fp", "postgresql://fp:***@127.0.0.1:5432/fp"},
        {"postgresql://fp@host/db", "postgresql://fp@host/db"},
        {"postgres://a:b:c@h/d?x=1", "postgres://a:***@h/d?x=1"},
        {"postgresql://h/db?user=u&password=pw&pool_size=2",
         "postgresql://h/db?user=u&password=***&pool_size=2"},
        {"/var/lib/fp.db", "/var/lib/fp.db"},
        {"sqlite:a:b@c.db", "sqlite:a:b@c.db"},
    };
    for (size_t i = 0; i < sizeof redact / sizeof redact[0]; i++) {
        char *got = store_url_redacted(redact[i].url);
        if (strcmp(got, redact[i].shown) != 0)
            fail_msg("redacted '%s': got '%s', want '%s'", redact[i].url, got, redact[i].shown);
        fp_free(got);
    }
    char *none = store_url_redacted(NULL);
    assert_string_equal(none, "");
    fp_free(none);

    static const struct {
        const char *url;
        fp_err rc;
        const char *conninfo, *schema;
        int pool;
    } parse[] = {
        {"postgresql://u:p@h/db", FP_OK, "postgresql://u:p@h/db", NULL, 8},
        {"postgresql://h/db?pool_size=3", FP_OK, "postgresql://h/db", NULL, 3},
        {"postgresql://h/db?sslmode=disable&schema=fp_a1&pool_size=256&connect_timeout=2",
         FP_OK, "postgresql://h/db?sslmode=disable&connect_timeout=2", "fp_a1", 256},
        {"postgres://h/db?schema=S", FP_OK, "postgres://h/db", "S", 8},
        {"postgresql://h/db?pool_size=0", FP_INVALID, NULL, NULL, 0},
        {"postgresql://h/db?pool_size=257", FP_INVALID, NULL, NULL, 0},
        {"postgresql://h/db?pool_size=4x", FP_INVALID, NULL, NULL, 0},
        {"postgresql://h/db?schema=bad-name", FP_INVALID, NULL, NULL, 0},
        {"postgresql://h/db?schema=1abc", FP_INVALID, NULL, NULL, 0},
        {"postgresql://h/db?schema=a%22b", FP_INVALID, NULL, NULL, 0},
        {"fp.db", FP_INVALID, NULL, NULL, 0},
    };
    for (size_t i = 0; i < sizeof parse / sizeof parse[0]; i++) {
        char *ci = NULL, *schema = NULL;
        int pool = 0;
        fp_err rc = store_pg__parse_url(parse[i].url, &ci, &schema, &pool);
        if (rc != parse[i].rc)
            fail_msg("parse '%s': %d", parse[i].url, (int)rc);
        if (rc == FP_OK) {
            assert_string_equal(ci, parse[i].conninfo);
            if ((schema == NULL) != (parse[i].schema == NULL) ||
                (schema && strcmp(schema, parse[i].schema) != 0))
                fail_msg("parse '%s': schema '%s'", parse[i].url, schema ? schema : "(null)");
            assert_int_equal(pool, parse[i].pool);
        } else {
            assert_null(ci);
            assert_null(schema);
        }
        fp_free(ci);
        fp_free(schema);
    }
    /* Nobody listens on port 1: unavailable, not an internal error. */
    store *s = (store *)&s;
    assert_int_equal(store_open("postgresql://fp:pw@127.0.0.1:1/fp?connect_timeout=2", NULL, &s),
                     FP_UNAVAILABLE);
    assert_null(s);
    assert_int_equal(store_open("postgresql://127.0.0.1:1/fp?pool_size=0", NULL, &s), FP_INVALID);
}

/* ---- PostgreSQL: reconnection -------------------------------------------- */

/* Ends every server process of this run's connections (what a restart does to
 * them); returns how many there were. */
static int64_t pg_kill_connections(void)
{
    char *sql = fp_printf("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                          "WHERE application_name = '%s' AND pid <> pg_backend_pid()",
                          pg_app);
    int64_t n = raw_int(pg_base, sql);
    fp_free(sql);
    /* pg_terminate_backend only signals: wait until they are gone. */
    sql = fp_printf("SELECT count(*) FROM pg_stat_activity WHERE application_name = '%s' "
                    "AND pid <> pg_backend_pid()",
                    pg_app);
    for (int i = 0; i < 100 && raw_int(pg_base, sql) > 0; i++)
        usleep(20000);
    fp_free(sql);
    return n;
}

typedef struct pinger {
    store *s;
    int errors;
} pinger;

static void *pinger_main(void *arg)
{
    pinger *p = arg;
    for (int i = 0; i < 20; i++)
        if (B->ping(p->s) != FP_OK)
            p->errors++;
    return NULL;
}

static void test_pg_reconnects(void **state)
{
    (void)state;
    char *url = fresh_db();
    store *s = open_migrated(url);
    uint8_t k[32];
    fill_key(k, 5);
    int64_t v = 0;
    assert_int_equal(B->watchlist_put(s, k, (const uint8_t *)"one", 3, 1, -1, &v), FP_OK);
    fspec alien = {1979, "alien", NULL, NULL, "Alien", 1979};
    int64_t id = resolve_spec(s, &alien);
    /* Several connections open: threads at once. */
    pinger p[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        p[i] = (pinger){s, 0};
        assert_int_equal(pthread_create(&t[i], NULL, pinger_main, &p[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(p[i].errors, 0);
    }
    store_pool_stats ps;
    B->pool_stats(s, &ps);
    print_message("pool before: %zu open\n", ps.open);

    /* Every connection ended under the pool: each call still works, on a
     * connection made again (reads, writes, transactions, status). */
    assert_true(pg_kill_connections() >= 1);
    expect_watchlist(s, k, "one", 1, 1);
    assert_true(pg_kill_connections() >= 1);
    assert_int_equal(B->watchlist_put(s, k, (const uint8_t *)"two", 3, 2, 1, &v), FP_OK);
    assert_int_equal(v, 2);
    assert_true(pg_kill_connections() >= 1);
    assert_int_equal(resolve_spec(s, &alien), id);
    assert_true(pg_kill_connections() >= 1);
    int cur = 0, latest = 0;
    assert_int_equal(B->migration_status(s, &cur, &latest), FP_OK);
    assert_int_equal(cur, 5);
    assert_true(pg_kill_connections() >= 1);
    for (int i = 0; i < 4; i++) {
        p[i] = (pinger){s, 0};
        assert_int_equal(pthread_create(&t[i], NULL, pinger_main, &p[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(p[i].errors, 0);
    }
    assert_true(pg_kill_connections() >= 1);
    assert_int_equal(B->datakey_put(s, (const uint8_t *)"dk", 2, NULL, 0), FP_OK);
    assert_true(pg_kill_connections() >= 1);
    film_list l;
    film_list_init(&l);
    assert_int_equal(B->films_load(s, &id, 1, &l), FP_OK);
    assert_int_equal(l.len, 1);
    film_list_free(&l);
    expect_watchlist(s, k, "two", 2, 2);
    B->pool_stats(s, &ps);
    assert_int_equal(ps.in_use, 0);
    close_drop(s, url);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "postgresql") == 0) {
        TB = &tb_pg;
        B = TB->b;
        PG = 1;
        pg_base = services_database();
        if (!pg_base) {
            fprintf(stderr, "test_store postgresql: no FILMPICKER_DATABASE in $FP_SERVICES_ENV "
                            "(%s): the CTest fixture 'services' starts PostgreSQL\n",
                    getenv("FP_SERVICES_ENV") ? getenv("FP_SERVICES_ENV") : "unset");
            return 1;
        }
        snprintf(pg_app, sizeof pg_app, "fp_test_store_%ld", (long)getpid());
    } else if (argc > 1 && strcmp(argv[1], "sqlite") != 0) {
        fprintf(stderr, "usage: test_store [sqlite|postgresql]\n");
        return 2;
    }
    const struct CMUnitTest common[] = {
        cmocka_unit_test(test_urls),
        cmocka_unit_test(test_migrations_up_down_up),
        cmocka_unit_test(test_later_migrations),
        cmocka_unit_test(test_concurrent_migrations),
        cmocka_unit_test(test_resolve_rules),
        cmocka_unit_test(test_resolve_batch_semantics),
        cmocka_unit_test(test_resolve_1000_timing),
        cmocka_unit_test(test_resolve_limited),
        cmocka_unit_test(test_orphan_marks),
        cmocka_unit_test(test_films_load),
        cmocka_unit_test(test_watchlist_versions),
        cmocka_unit_test(test_watched_rows),
        cmocka_unit_test(test_datakey_rows),
        cmocka_unit_test(test_sealed_pages),
        cmocka_unit_test(test_replace_survives_crash),
        cmocka_unit_test(test_privacy_of_rows),
        cmocka_unit_test(test_pool_stats),
        cmocka_unit_test(test_concurrent_use),
    };
    const struct CMUnitTest pg_only[] = {
        cmocka_unit_test(test_pg_reconnects),
    };
    int failed = PG ? cmocka_run_group_tests_name("storage suite on PostgreSQL", common, NULL, NULL)
                    : cmocka_run_group_tests_name("storage suite on SQLite", common, NULL, NULL);
    if (PG)
        failed += cmocka_run_group_tests_name("PostgreSQL reconnection", pg_only, NULL, NULL);
    fp_free(pg_base);
    return failed ? 1 : 0;
}

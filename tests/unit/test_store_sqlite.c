/*
 * Unit tests for the SQLite storage backend (store.c, store_sqlite.c,
 * migrations_sqlite.c): URL forms, reversible migrations, the catalogue
 * matching rules, batch loading, watchlist compare-and-swap, atomic replace
 * across a real process crash, damaged and unreachable files, the privacy
 * of what reaches the database file, and concurrent use from threads.
 * Every test works in its own directory under /tmp, removed afterwards.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
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
#include "store/store_sqlite.h"
#include "vault.h"

static const store_backend *B = &store_backend_sqlite;

/* ---- helpers ----------------------------------------------------------- */

static char *make_tmpdir(void)
{
    char tmpl[] = "/tmp/fp-store-test-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    return fp_strdup(tmpl);
}

static void remove_tree(char *dir)
{
    char *cmd = fp_printf("rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    fp_free(cmd);
    fp_free(dir);
}

static store *open_url(const char *url)
{
    store *s = NULL;
    const store_backend *b = NULL;
    assert_int_equal(store_open(url, &b, &s), FP_OK);
    assert_ptr_equal(b, &store_backend_sqlite);
    assert_non_null(s);
    return s;
}

static store *open_migrated(const char *url)
{
    store *s = open_url(url);
    assert_int_equal(B->migrate(s, -1), FP_OK);
    return s;
}

static void fill_key(uint8_t key[STORE_KEY_BYTES], uint8_t seed)
{
    for (int i = 0; i < STORE_KEY_BYTES; i++)
        key[i] = (uint8_t)(seed * 31 + i);
}

static uint8_t *read_file(const char *path, size_t *len)
{
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    uint8_t *data = NULL;
    size_t cap = 0;
    for (;;) {
        data = fp_realloc(data, cap + 65536);
        size_t got = fread(data + cap, 1, 65536, f);
        cap += got;
        if (got < 65536)
            break;
    }
    fclose(f);
    *len = cap;
    return data;
}

/* A one-shot query on a raw connection, for checking what is on disk. */
static int64_t raw_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("prepare '%s': %s", sql, sqlite3_errmsg(db));
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static char *raw_text(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    char *v = fp_strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
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

static void test_backend_for_url(void **state)
{
    (void)state;
    static const struct {
        const char *url;
        int sqlite;
    } cases[] = {
        {"/var/lib/filmpicker/fp.db", 1},
        {"fp.db", 1},
        {"sqlite:fp.db", 1},
        {"sqlite:///var/lib/fp.db", 1},
        {"sqlite://fp.db", 1},
        {":memory:", 1},
        {"C:/data/fp.db", 1},
        {"postgresql://user@localhost/fp", 0},
        {"postgres://localhost/fp", 0},
        {"redis://localhost", 0},
        {"", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const store_backend *b = store_backend_for(cases[i].url);
        if ((b == &store_backend_sqlite) != cases[i].sqlite)
            fail_msg("url '%s'", cases[i].url);
        if (!cases[i].sqlite)
            assert_null(b);
    }
    assert_null(store_backend_for(NULL));

    store *s = (store *)&s;
    const store_backend *b = NULL;
    assert_int_equal(store_open("redis://localhost", &b, &s), FP_INVALID);
    assert_null(s);
    assert_null(b);
    assert_int_equal(store_open("sqlite:", &b, &s), FP_INVALID);
    assert_int_equal(store_open("sqlite://", &b, &s), FP_INVALID);
    assert_null(s);
}

static void test_url_forms_open_the_path(void **state)
{
    (void)state;
    char *dir = make_tmpdir();
    const char *prefixes[] = {"", "sqlite:", "sqlite://"}; /* dir is absolute: sqlite:///tmp/... */
    const char *files[] = {"plain.db", "colon.db", "slashes.db"};
    for (size_t i = 0; i < 3; i++) {
        char *url = fp_printf("%s%s/%s", prefixes[i], dir, files[i]);
        char *path = fp_printf("%s/%s", dir, files[i]);
        store *s = open_url(url);
        assert_int_equal(B->ping(s), FP_OK);
        assert_int_equal(access(path, F_OK), 0);
        B->close(s);
        assert_int_equal(raw_int(path, "SELECT 1"), 1);
        char *mode = raw_text(path, "PRAGMA journal_mode");
        assert_string_equal(mode, "wal"); /* WAL is recorded in the file */
        fp_free(mode);
        fp_free(url);
        fp_free(path);
    }
    remove_tree(dir);
}

static void test_missing_directory_is_io(void **state)
{
    (void)state;
    char *dir = make_tmpdir();
    char *url = fp_printf("%s/no/such/dir/fp.db", dir);
    store *s = (store *)&s;
    const store_backend *b = NULL;
    assert_int_equal(store_open(url, &b, &s), FP_IO);
    assert_null(s);
    fp_free(url);
    /* A directory where the file should be. */
    assert_int_equal(store_open(dir, &b, &s), FP_IO);
    assert_null(s);
    remove_tree(dir);
}

static void write_bytes(const char *path, const uint8_t *data, size_t len, off_t at)
{
    int fd = open(path, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, data, len, at), (ssize_t)len);
    close(fd);
}

static void test_corrupt_files(void **state)
{
    (void)state;
    char *dir = make_tmpdir();
    uint8_t garbage[8192];
    for (size_t i = 0; i < sizeof garbage; i++)
        garbage[i] = (uint8_t)(i * 131 + 7);

    /* Not a database at all. */
    char *path = fp_printf("%s/garbage.db", dir);
    write_bytes(path, garbage, sizeof garbage, 0);
    store *s = (store *)&s;
    assert_int_equal(store_open(path, NULL, &s), FP_CORRUPT);
    assert_null(s);
    fp_free(path);

    /* A text file. */
    path = fp_printf("%s/text.db", dir);
    static const char text[] = "this is not a database, just some text\n";
    write_bytes(path, (const uint8_t *)text, sizeof text - 1, 0);
    assert_int_equal(store_open(path, NULL, &s), FP_CORRUPT);
    fp_free(path);

    /* A real database whose pages after the first were overwritten. */
    path = fp_printf("%s/damaged.db", dir);
    s = open_migrated(path);
    film *films = fp_calloc(3000, sizeof *films);
    for (int i = 0; i < 3000; i++) {
        films[i].lb_id = i + 1;
        films[i].title = fp_printf("A reasonably long film title number %d", i);
        films[i].year = 1900 + i % 120;
    }
    assert_int_equal(B->films_resolve(s, films, 3000), FP_OK);
    for (int i = 0; i < 3000; i++)
        film_clear(&films[i]);
    fp_free(films);
    B->close(s);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(st.st_size > 4 * 4096);
    for (off_t at = 4096; at + (off_t)sizeof garbage <= st.st_size; at += 3 * (off_t)sizeof garbage)
        write_bytes(path, garbage, sizeof garbage, at);
    s = (store *)&s;
    assert_int_equal(store_open(path, NULL, &s), FP_CORRUPT);
    assert_null(s);
    fp_free(path);

    /* An empty file that this process did not just create is refused: it is
     * most likely a truncated database, and SQLite would start afresh. */
    path = fp_printf("%s/empty.db", dir);
    write_bytes(path, garbage, 0, 0);
    s = (store *)&s;
    assert_int_equal(store_open(path, NULL, &s), FP_EMPTY_DATABASE);
    assert_null(s);
    struct stat est;
    assert_int_equal(stat(path, &est), 0); /* left as it was, for the operator */
    assert_int_equal(est.st_size, 0);
    char *ewal = fp_printf("%s-wal", path);
    assert_int_equal(access(ewal, F_OK), -1); /* SQLite never opened it */
    fp_free(ewal);
    fp_free(path);
    remove_tree(dir);
}

/* ---- file modes ---------------------------------------------------------- */

static mode_t file_mode(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_mode & 07777;
}

static void test_file_modes(void **state)
{
    (void)state;
    char *dir = make_tmpdir();
    char *path = fp_printf("%s/fresh.db", dir);
    char *wal = fp_printf("%s-wal", path), *shm = fp_printf("%s-shm", path);
    mode_t old_umask = umask(022); /* the usual umask would give 0644 */

    /* A new database, written to: the file, its -wal and its -shm are 0600. */
    store *s = open_migrated(path);
    uint8_t key[STORE_KEY_BYTES];
    fill_key(key, 1);
    assert_int_equal(B->watchlist_put(s, key, (const uint8_t *)"x", 1, 1, -1, NULL), FP_OK);
    assert_int_equal(file_mode(path), 0600);
    assert_int_equal(file_mode(wal), 0600);
    assert_int_equal(file_mode(shm), 0600);
    B->close(s);

    /* Opened again: a new file we created is not "empty" to us. */
    s = open_url(path);
    B->close(s);

    /* Wider modes left by an older build or a copy are tightened. */
    assert_int_equal(chmod(path, 0644), 0);
    s = open_url(path);
    assert_int_equal(file_mode(path), 0600);
    assert_int_equal(B->watchlist_put(s, key, (const uint8_t *)"y", 1, 2, -1, NULL), FP_OK);
    assert_int_equal(file_mode(wal), 0600);
    assert_int_equal(file_mode(shm), 0600);
    B->close(s);
    /* -wal and -shm left wide by someone else are tightened too (SQLite
     * removes both on a clean close; make them exist). */
    write_bytes(wal, (const uint8_t *)"", 0, 0);
    write_bytes(shm, (const uint8_t *)"", 0, 0);
    assert_int_equal(chmod(path, 0660), 0);
    assert_int_equal(chmod(wal, 0666), 0);
    assert_int_equal(chmod(shm, 0604), 0);
    s = open_url(path);
    assert_int_equal(file_mode(path), 0600);
    assert_int_equal(file_mode(wal), 0600);
    assert_int_equal(file_mode(shm), 0600);
    store_watchlist w = {0};
    assert_int_equal(B->watchlist_get(s, key, &w), FP_OK);
    assert_int_equal(w.sealed_len, 1);
    assert_memory_equal(w.sealed, "y", 1);
    store_watchlist_free(&w);
    B->close(s);

    umask(old_umask);
    fp_free(wal);
    fp_free(shm);
    fp_free(path);
    remove_tree(dir);
}

/* ---- migrations -------------------------------------------------------- */

static void test_migrations_up_down_up(void **state)
{
    (void)state;
    char *dir = make_tmpdir();
    char *path = fp_printf("%s/m.db", dir);
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
    assert_int_equal(raw_int(path, "SELECT count(*) FROM sqlite_master WHERE name = 'watched'"), 1);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM sqlite_master WHERE name = 'data_key'"), 1);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM pragma_table_info('films') WHERE name = 'poster'"), 1);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM pragma_table_info('films') WHERE name = 'orphaned_at'"), 1);
    int64_t applied = raw_int(path, "SELECT applied_at FROM schema_migrations WHERE version = 1");
    assert_true(llabs(applied - (int64_t)time(NULL)) < 60);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM sqlite_master WHERE name IN "
                                   "('films','watchlists','films_match_key','films_norm_title')"),
                     4);
    assert_int_equal(B->films_resolve(s, &f, 1), FP_OK);
    assert_int_equal(f.id, 1);
    static const uint8_t wrapped[] = "a wrapped data key";
    assert_int_equal(B->datakey_put(s, wrapped, sizeof wrapped, NULL, 0), FP_OK);

    /* Down one step: the orphan marks go; another: the data key goes; then
     * the watched sets; then the poster column; the catalogue stays. */
    assert_int_equal(B->migrate(s, 4), FP_OK);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM pragma_table_info('films') WHERE name = 'orphaned_at'"), 0);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM data_key"), 1);
    assert_int_equal(B->migrate(s, 3), FP_OK);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM sqlite_master WHERE name = 'data_key'"), 0);
    assert_int_equal(B->migrate(s, 2), FP_OK);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM sqlite_master WHERE name = 'watched'"), 0);
    assert_int_equal(B->migrate(s, 1), FP_OK);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM pragma_table_info('films') WHERE name = 'poster'"), 0);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM films"), 1);
    assert_int_equal(B->migrate(s, 5), FP_OK);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM films"), 1);
    store_datakey dk = {0};
    assert_int_equal(B->datakey_get(s, &dk), FP_NOT_FOUND); /* forgotten with version 4 */

    assert_int_equal(B->migrate(s, 0), FP_OK);
    assert_int_equal(B->migration_status(s, &cur, &latest), FP_OK);
    assert_int_equal(cur, 0);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM sqlite_master WHERE name IN "
                                   "('films','watchlists','watched','data_key')"),
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
    fp_free(path);
    remove_tree(dir);
}

/* What a later release could add: Kinopoisk ids, reversibly. */
static const store_sqlite_migration later_steps[] = {
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
    char *dir = make_tmpdir();
    char *path = fp_printf("%s/m2.db", dir);
    /* The built-in steps (1..5), then the later ones (6, 7). */
    assert_int_equal(store_sqlite__migrations_len, 5);
    store_sqlite_migration list[7];
    memcpy(list, store_sqlite__migrations, 5 * sizeof list[0]);
    memcpy(list + 5, later_steps, sizeof later_steps);

    store *s = open_migrated(path);
    fspec alien = {0, NULL, NULL, NULL, "Alien", 1979};
    int64_t id = resolve_spec(s, &alien);

    store_sqlite__use_migrations(s, list, 6);
    int cur = -1, latest = -1;
    assert_int_equal(B->migration_status(s, &cur, &latest), FP_OK);
    assert_int_equal(cur, 5);
    assert_int_equal(latest, 6);
    assert_int_equal(B->migrate(s, -1), FP_OK);
    assert_int_equal(B->migration_status(s, &cur, &latest), FP_OK);
    assert_int_equal(cur, 6);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM pragma_table_info('films') WHERE name = 'kp_id'"), 1);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM schema_migrations"), 6);
    assert_row(s, id, &alien, "after up to 6");
    assert_int_equal(resolve_spec(s, &alien), id); /* statements survive the schema change */

    assert_int_equal(B->migrate(s, 5), FP_OK);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM pragma_table_info('films') WHERE name = 'kp_id'"), 0);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM sqlite_master WHERE name = 'films_kp_id'"), 0);
    assert_row(s, id, &alien, "after down to 5");

    /* Down to nothing and straight up to 6, one step at a time. */
    assert_int_equal(B->migrate(s, 0), FP_OK);
    assert_int_equal(B->migrate(s, 6), FP_OK);
    assert_int_equal(raw_int(path, "SELECT group_concat(version, '') FROM schema_migrations"), 123456);

    /* A step that fails leaves the schema at the previous version. */
    store_sqlite__use_migrations(s, list, 7);
    assert_int_equal(B->migrate(s, -1), FP_STORAGE);
    assert_int_equal(B->migration_status(s, &cur, &latest), FP_OK);
    assert_int_equal(cur, 6);
    assert_int_equal(latest, 7);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM sqlite_master WHERE name = 'half_done'"), 0);

    /* An older build (the built-in steps) refuses a schema newer than it knows. */
    store_sqlite__use_migrations(s, NULL, 0);
    assert_int_equal(B->migration_status(s, &cur, &latest), FP_OK);
    assert_int_equal(cur, 6);
    assert_int_equal(latest, 5);
    assert_int_equal(B->migrate(s, -1), FP_STORAGE);
    assert_int_equal(B->migration_status(s, &cur, &latest), FP_OK);
    assert_int_equal(cur, 6);

    /* A malformed list is refused before touching anything. */
    store_sqlite_migration gap[2] = {list[0], list[1]};
    gap[1].version = 3; /* 1 then 3: a gap */
    store_sqlite__use_migrations(s, gap, 2);
    assert_int_equal(B->migrate(s, -1), FP_INTERNAL);

    B->close(s);
    fp_free(path);
    remove_tree(dir);
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
        store *s = open_migrated(":memory:");
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
        B->close(s);
    }
}

static void test_resolve_batch_semantics(void **state)
{
    (void)state;
    store *s = open_migrated(":memory:");
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
    B->close(s);
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
    char *dir = make_tmpdir();
    char *path = fp_printf("%s/perf.db", dir);
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
    fp_free(path);
    remove_tree(dir);
}

/* films_resolve_limited: at most max_new inserts; one more stores nothing and
 * says how many distinct films were new. */
static void test_resolve_limited(void **state)
{
    (void)state;
    store *s = open_migrated(":memory:");
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
    B->close(s);
}

/* The sweep's side of the catalogue: pages of ids and marks, marking,
 * deleting marked films (never the highest id), a resolve clearing a mark. */
static void test_orphan_marks(void **state)
{
    (void)state;
    store *s = open_migrated(":memory:");
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
    B->close(s);
}

static void test_films_load(void **state)
{
    (void)state;
    store *s = open_migrated(":memory:");
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
    B->close(s);
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
    store *s = open_migrated(":memory:");
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
    B->close(s);
}

/* The data key row: create once, compare-and-swap, reset. */
static void test_datakey_rows(void **state)
{
    (void)state;
    char *dir = make_tmpdir();
    char *path = fp_printf("%s/dk.db", dir);
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
    char *path2 = fp_printf("%s/dk2.db", dir);
    s = open_migrated(path2);
    assert_int_equal(B->datakey_reset(s, a, sizeof a, NULL, NULL), FP_OK);
    assert_int_equal(B->datakey_get(s, &dk), FP_OK);
    assert_memory_equal(dk.wrapped, a, sizeof a);
    store_datakey_free(&dk);
    B->close(s);
    fp_free(path2);
    fp_free(path);
    remove_tree(dir);
}

/* Every sealed row of a table, in key order, a page at a time. */
static void test_sealed_pages(void **state)
{
    (void)state;
    store *s = open_migrated(":memory:");
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
    B->close(s);
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
    char *dir = make_tmpdir();
    char *path = fp_printf("%s/wd.db", dir);
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
    fp_free(path);
    remove_tree(dir);
}

static void test_replace_survives_crash(void **state)
{
    (void)state;
    char *dir = make_tmpdir();
    char *path = fp_printf("%s/crash.db", dir);
    char *wal = fp_printf("%s-wal", path);
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
         * SQLite spills the uncommitted pages into the WAL file. */
        store *cs = NULL;
        if (store_open(path, NULL, &cs) != FP_OK)
            _exit(3);
        uint8_t *new_blob = fp_malloc(NEW_LEN);
        fill_pattern(new_blob, NEW_LEN, 2);
        store_sqlite__crash_before_commit(cs, 1);
        fp_err rc = B->watchlist_put(cs, key, new_blob, NEW_LEN, 2000, -1, NULL);
        _exit(rc == FP_OK ? 4 : 5); /* not reached when the hook works */
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);

    /* The dead child left uncommitted frames behind. */
    struct stat st;
    assert_int_equal(stat(wal, &st), 0);
    print_message("WAL after the crash: %lld bytes\n", (long long)st.st_size);
    assert_true(st.st_size > OLD_LEN);

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
    fp_free(path);
    remove_tree(dir);
}

/* Another process holding the write lock past the timeout: FP_UNAVAILABLE
 * for writers, while WAL readers carry on. */
static void test_lock_timeout_is_unavailable(void **state)
{
    (void)state;
    char *dir = make_tmpdir();
    char *path = fp_printf("%s/locked.db", dir);
    store *s = open_migrated(path);
    uint8_t key[32];
    fill_key(key, 3);
    assert_int_equal(B->watchlist_put(s, key, (const uint8_t *)"v1", 2, 1, -1, NULL), FP_OK);
    store_sqlite__set_busy_timeout(s, 150);

    sqlite3 *other = NULL;
    assert_int_equal(sqlite3_open(path, &other), SQLITE_OK);
    assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE; DELETE FROM watchlists;", NULL, NULL, NULL),
                     SQLITE_OK);

    assert_int_equal(B->watchlist_put(s, key, (const uint8_t *)"v2", 2, 2, -1, NULL), FP_UNAVAILABLE);
    assert_int_equal(B->watchlist_delete(s, key), FP_UNAVAILABLE);
    fspec f = {0, NULL, NULL, NULL, "Locked Out", 2000};
    film fl;
    spec_to_film(&f, &fl);
    assert_int_equal(B->films_resolve(s, &fl, 1), FP_UNAVAILABLE);
    assert_int_equal(fl.id, 0);
    film_clear(&fl);
    expect_watchlist(s, key, "v1", 1, 1); /* readers see the last commit */
    assert_int_equal(B->ping(s), FP_OK);

    assert_int_equal(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(other);
    assert_int_equal(B->watchlist_put(s, key, (const uint8_t *)"v2", 2, 2, 1, NULL), FP_OK);
    expect_watchlist(s, key, "v2", 2, 2);
    B->close(s);
    fp_free(path);
    remove_tree(dir);
}

/* ---- privacy ----------------------------------------------------------- */

/* memmem is a GNU extension; the build is POSIX + _DEFAULT_SOURCE. */
static int contains(const uint8_t *hay, size_t hay_len, const void *needle, size_t len)
{
    const uint8_t *n = needle;
    if (!hay || len == 0 || hay_len < len)
        return 0;
    for (size_t i = 0; i + len <= hay_len; i++)
        if (hay[i] == n[0] && memcmp(hay + i, n, len) == 0)
            return 1;
    return 0;
}

static void scan_files(const char *path, const char *username, const uint8_t *enc, size_t enc_len,
                       const uint8_t *idvar, size_t idvar_len, const uint8_t *blob,
                       size_t blob_len, int *blob_seen)
{
    const char *suffixes[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < 4; i++) {
        char *p = fp_printf("%s%s", path, suffixes[i]);
        size_t len = 0;
        uint8_t *data = read_file(p, &len);
        if (contains(data, len, username, strlen(username)))
            fail_msg("%s contains the username", p);
        if (contains(data, len, enc, enc_len))
            fail_msg("%s contains the plaintext watchlist", p);
        if (contains(data, len, idvar, idvar_len))
            fail_msg("%s contains the distinctive id's encoding", p);
        if (contains(data, len, "987654321123", 12))
            fail_msg("%s contains the distinctive id in decimal", p);
        if (contains(data, len, blob, blob_len))
            *blob_seen = 1;
        fp_free(data);
        fp_free(p);
    }
}

static void test_privacy_of_files(void **state)
{
    (void)state;
    char *dir = make_tmpdir();
    char *path = fp_printf("%s/private.db", dir);
    static const char username[] = "alice_secret_name";
    vault *v = NULL;
    assert_int_equal(vault_open("8f0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
                                NULL, &v),
                     FP_OK);
    uint8_t pk[32];
    vault_person_key(v, "lb", username, pk);
    static const int64_t ids[] = {3, 17, 4242, 987654321123};
    uint8_t *blob = NULL, *enc = NULL;
    size_t blob_len = 0, enc_len = 0;
    assert_int_equal(vault_seal(v, pk, ids, 4, &blob, &blob_len), FP_OK);
    assert_int_equal(vault_ids_encode(ids, 4, &enc, &enc_len), FP_OK);
    uint8_t *idvar = NULL;
    size_t idvar_len = 0;
    static const int64_t one[] = {987654321123};
    assert_int_equal(vault_ids_encode(one, 1, &idvar, &idvar_len), FP_OK);

    store *s = open_migrated(path);
    assert_int_equal(B->watchlist_put(s, pk, blob, blob_len, 1, -1, NULL), FP_OK);
    assert_int_equal(B->watchlist_put(s, pk, blob, blob_len, 2, -1, NULL), FP_OK);

    /* While open, the data sits in the WAL. */
    int blob_seen = 0;
    scan_files(path, username, enc, enc_len, idvar + 1, idvar_len - 1, blob, blob_len, &blob_seen);
    assert_true(blob_seen); /* the scan does look at the stored bytes */

    /* And the stored blob opens with alice's key only. */
    store_watchlist w;
    assert_int_equal(B->watchlist_get(s, pk, &w), FP_OK);
    int64_t *back = NULL;
    size_t n = 0;
    assert_int_equal(vault_unseal(v, pk, w.sealed, w.sealed_len, &back, &n), FP_OK);
    assert_int_equal(n, 4);
    assert_true(back[3] == 987654321123);
    fp_free(back);
    uint8_t bob[32];
    vault_person_key(v, "lb", "bob", bob);
    assert_int_equal(vault_unseal(v, bob, w.sealed, w.sealed_len, &back, &n), FP_CORRUPT);
    store_watchlist_free(&w);
    B->close(s);

    /* After close the WAL is checkpointed into the main file. */
    blob_seen = 0;
    scan_files(path, username, enc, enc_len, idvar + 1, idvar_len - 1, blob, blob_len, &blob_seen);
    assert_true(blob_seen);
    assert_int_equal(raw_int(path, "SELECT length(key) FROM watchlists"), 32);

    fp_free(idvar);
    fp_free(enc);
    fp_free(blob);
    vault_free(&v);
    fp_free(path);
    remove_tree(dir);
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
    char *dir = make_tmpdir();
    char *path = fp_printf("%s/busy.db", dir);
    store *s = open_migrated(path);
    uint8_t shared[32];
    fill_key(shared, 1);
    assert_int_equal(B->watchlist_put(s, shared, NULL, 0, 0, 0, NULL), FP_OK);

    worker workers[THREADS];
    pthread_t threads[THREADS];
    memset(workers, 0, sizeof workers);
    for (int i = 0; i < THREADS; i++) {
        workers[i].s = s;
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
    B->close(s);
    fp_free(path);
    remove_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backend_for_url),
        cmocka_unit_test(test_url_forms_open_the_path),
        cmocka_unit_test(test_missing_directory_is_io),
        cmocka_unit_test(test_corrupt_files),
        cmocka_unit_test(test_file_modes),
        cmocka_unit_test(test_migrations_up_down_up),
        cmocka_unit_test(test_later_migrations),
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
        cmocka_unit_test(test_lock_timeout_is_unavailable),
        cmocka_unit_test(test_privacy_of_files),
        cmocka_unit_test(test_concurrent_use),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Unit tests of what only the SQLite storage backend does (store_sqlite.c):
 * URL forms, damaged, empty and unreachable files, file modes, WAL, the lock
 * timeout, and the privacy of what reaches the database files. What every
 * backend must do is the storage suite, test_store.c, run on SQLite and on
 * PostgreSQL.
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
        /* postgresql:// belongs to the PostgreSQL backend (test_store.c) */
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backend_for_url),
        cmocka_unit_test(test_url_forms_open_the_path),
        cmocka_unit_test(test_missing_directory_is_io),
        cmocka_unit_test(test_corrupt_files),
        cmocka_unit_test(test_file_modes),
        cmocka_unit_test(test_lock_timeout_is_unavailable),
        cmocka_unit_test(test_privacy_of_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

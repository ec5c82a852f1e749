/*
 * Unit tests for vault.c: person keys, sealing, the plaintext codec, the
 * server key from hex and from a key file. Where the format is documented in
 * vault.h the tests rebuild it independently with libsodium, so a change of
 * construction (context, sub-key id, associated data, layout) fails here.
 */
#define _GNU_SOURCE /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/mem.h"
#include "vault.h"

#define MASTER_HEX "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

static vault *open_test_vault(const char *hex)
{
    vault *v = NULL;
    assert_int_equal(vault_open(hex, NULL, &v), FP_OK);
    assert_non_null(v);
    return v;
}

static void master_bytes(const char *hex, uint8_t master[32])
{
    size_t len = 0;
    assert_int_equal(sodium_hex2bin(master, 32, hex, 64, NULL, &len, NULL), 0);
    assert_int_equal(len, 32);
}

/* The sealing format rebuilt from vault.h, to seal arbitrary plaintexts. */
static uint8_t *seal_raw(const char *hex, const uint8_t pk[32], const uint8_t *pt, size_t pt_len,
                         size_t *blob_len)
{
    uint8_t master[32], key[32], ad[33];
    master_bytes(hex, master);
    assert_int_equal(crypto_kdf_derive_from_key(key, 32, 2, "FPvault1", master), 0);
    ad[0] = 1;
    memcpy(ad + 1, pk, 32);
    *blob_len = VAULT_BLOB_OVERHEAD + pt_len;
    uint8_t *blob = fp_malloc(*blob_len);
    blob[0] = 1;
    randombytes_buf(blob + 1, 24);
    unsigned long long clen = 0;
    assert_int_equal(crypto_aead_xchacha20poly1305_ietf_encrypt(blob + 25, &clen, pt, pt_len, ad,
                                                                 sizeof ad, NULL, blob + 1, key),
                     0);
    assert_int_equal(clen, pt_len + 16);
    return blob;
}

static void test_person_key_construction(void **state)
{
    (void)state;
    vault *v = open_test_vault(MASTER_HEX);
    uint8_t got[32], want[32], master[32], hkey[32];
    vault_person_key(v, "lb", "alice", got);

    master_bytes(MASTER_HEX, master);
    assert_int_equal(crypto_kdf_derive_from_key(hkey, 32, 1, "FPvault1", master), 0);
    static const char msg[] = "lb\0alice";
    assert_int_equal(crypto_generichash(want, 32, (const unsigned char *)msg, sizeof msg - 1, hkey, 32), 0);
    assert_memory_equal(got, want, 32);
    vault_free(&v);
    assert_null(v);
    vault_free(&v); /* freeing twice through the same pointer is harmless */
}

static void test_person_key_separation(void **state)
{
    (void)state;
    vault *v = open_test_vault(MASTER_HEX);
    vault *w = open_test_vault("ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
    static const struct {
        const char *source, *user;
    } inputs[] = {
        {"lb", "alice"}, {"kp", "alice"}, {"lb", "bob"}, {"lb", "alic"},
        {"ab", "c"},     {"a", "bc"},     {"lb", ""},    {"", "lb"},
    };
    enum { N = sizeof inputs / sizeof inputs[0] };
    uint8_t keys[N][32];
    for (size_t i = 0; i < N; i++) {
        uint8_t again[32];
        vault_person_key(v, inputs[i].source, inputs[i].user, keys[i]);
        vault_person_key(v, inputs[i].source, inputs[i].user, again);
        assert_memory_equal(keys[i], again, 32); /* deterministic */
    }
    for (size_t i = 0; i < N; i++)
        for (size_t j = i + 1; j < N; j++)
            assert_memory_not_equal(keys[i], keys[j], 32);
    uint8_t other[32];
    vault_person_key(w, "lb", "alice", other); /* another server key: another hash */
    assert_memory_not_equal(keys[0], other, 32);
    vault_free(&v);
    vault_free(&w);
}

static void test_codec_vectors(void **state)
{
    (void)state;
    static const int64_t ids[] = {1, 2, 300};
    static const uint8_t want[] = {0x03, 0x01, 0x01, 0xAA, 0x02};
    uint8_t *enc = NULL;
    size_t len = 0;
    assert_int_equal(vault_ids_encode(ids, 3, &enc, &len), FP_OK);
    assert_int_equal(len, sizeof want);
    assert_memory_equal(enc, want, sizeof want);
    fp_free(enc);

    assert_int_equal(vault_ids_encode(NULL, 0, &enc, &len), FP_OK);
    assert_int_equal(len, 1);
    assert_int_equal(enc[0], 0);
    fp_free(enc);

    static const int64_t big[] = {INT64_MAX};
    static const uint8_t want_big[] = {0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F};
    assert_int_equal(vault_ids_encode(big, 1, &enc, &len), FP_OK);
    assert_int_equal(len, sizeof want_big);
    assert_memory_equal(enc, want_big, sizeof want_big);
    int64_t *back = NULL;
    size_t n = 0;
    assert_int_equal(vault_ids_decode(enc, len, &back, &n), FP_OK);
    assert_int_equal(n, 1);
    assert_true(back[0] == INT64_MAX);
    fp_free(back);
    fp_free(enc);
}

static void test_codec_rejects_bad_lists(void **state)
{
    (void)state;
    static const struct {
        int64_t ids[3];
        size_t n;
    } cases[] = {
        {{2, 1, 3}, 3},  /* unsorted */
        {{1, 1, 3}, 3},  /* duplicate */
        {{0, 1, 3}, 3},  /* ids start at 1 */
        {{-5, 1, 3}, 3}, /* negative */
        {{-1, 0, 0}, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t *enc = (uint8_t *)&enc;
        size_t len = 99;
        assert_int_equal(vault_ids_encode(cases[i].ids, cases[i].n, &enc, &len), FP_INVALID);
        assert_null(enc);
        assert_int_equal(len, 0);
    }
}

/* Plaintexts that only a holder of the sealing key could produce, or a bug. */
static const struct {
    const char *what;
    uint8_t bytes[16];
    size_t len;
} hostile[] = {
    {"empty", {0}, 0},
    {"count 1, no id", {0x01}, 1},
    {"count 3, one id", {0x03, 0x05}, 2},
    {"huge count", {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F, 0x01}, 10},
    {"count 2^63", {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, 10},
    {"count varint 11 bytes", {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, 11},
    {"truncated varint", {0x01, 0x80}, 2},
    {"overlong zero", {0x01, 0x81, 0x00}, 3},
    {"overlong count", {0x80, 0x00}, 2},
    {"first id 0", {0x01, 0x00}, 2},
    {"zero delta", {0x02, 0x05, 0x00}, 3},
    {"trailing byte", {0x01, 0x05, 0x07}, 3},
    {"id past INT64_MAX", {0x02, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F, 0x01}, 11},
    {"10th byte too big", {0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02}, 11},
    {"2^64 - 1", {0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}, 11},
};

static void test_codec_hostile(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
        /* A copy of exactly len bytes, so ASan catches any over-read. */
        uint8_t *p = fp_malloc(hostile[i].len);
        memcpy(p, hostile[i].bytes, hostile[i].len);
        int64_t *ids = (int64_t *)&ids;
        size_t n = 99;
        fp_err rc = vault_ids_decode(p, hostile[i].len, &ids, &n);
        if (rc != FP_CORRUPT)
            fail_msg("case '%s': got %s", hostile[i].what, fp_err_code(rc));
        assert_null(ids);
        assert_int_equal(n, 0);
        fp_free(p);
    }
}

static void test_sealed_hostile(void **state)
{
    (void)state;
    vault *v = open_test_vault(MASTER_HEX);
    uint8_t pk[32];
    vault_person_key(v, "lb", "mallory", pk);
    for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
        size_t len = 0;
        uint8_t *blob = seal_raw(MASTER_HEX, pk, hostile[i].bytes, hostile[i].len, &len);
        int64_t *ids = NULL;
        size_t n = 0;
        fp_err rc = vault_unseal(v, pk, blob, len, &ids, &n);
        if (rc != FP_CORRUPT)
            fail_msg("sealed case '%s': got %s", hostile[i].what, fp_err_code(rc));
        assert_null(ids);
        fp_free(blob);
    }
    /* The independent construction really is the format: a good plaintext opens. */
    static const uint8_t good[] = {0x03, 0x01, 0x01, 0xAA, 0x02};
    size_t len = 0;
    uint8_t *blob = seal_raw(MASTER_HEX, pk, good, sizeof good, &len);
    int64_t *ids = NULL;
    size_t n = 0;
    assert_int_equal(vault_unseal(v, pk, blob, len, &ids, &n), FP_OK);
    assert_int_equal(n, 3);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], 2);
    assert_int_equal(ids[2], 300);
    fp_free(ids);
    fp_free(blob);
    vault_free(&v);
}

static void roundtrip(vault *v, const uint8_t pk[32], const int64_t *ids, size_t n)
{
    uint8_t *blob = NULL;
    size_t len = 0;
    assert_int_equal(vault_seal(v, pk, ids, n, &blob, &len), FP_OK);
    assert_non_null(blob);
    assert_true(len >= VAULT_BLOB_OVERHEAD + 1);
    assert_int_equal(blob[0], VAULT_BLOB_VERSION);
    int64_t *back = NULL;
    size_t m = 99;
    assert_int_equal(vault_unseal(v, pk, blob, len, &back, &m), FP_OK);
    assert_int_equal(m, n);
    if (n)
        assert_memory_equal(back, ids, n * sizeof *ids);
    else
        assert_null(back);
    fp_free(back);
    fp_free(blob);
}

static void test_seal_roundtrip(void **state)
{
    (void)state;
    vault *v = open_test_vault(MASTER_HEX);
    uint8_t pk[32];
    vault_person_key(v, "lb", "alice", pk);

    roundtrip(v, pk, NULL, 0);
    static const int64_t one[] = {42};
    roundtrip(v, pk, one, 1);
    static const int64_t edges[] = {1, 2, 127, 128, 16383, 16384, INT64_MAX / 2, INT64_MAX - 1, INT64_MAX};
    roundtrip(v, pk, edges, sizeof edges / sizeof edges[0]);

    int64_t *many = fp_malloc(100000 * sizeof *many);
    int64_t x = 0;
    for (size_t i = 0; i < 100000; i++) {
        x += 1 + (int64_t)randombytes_uniform(i % 3 == 0 ? 5000000 : 300);
        many[i] = x;
    }
    roundtrip(v, pk, many, 1000);
    roundtrip(v, pk, many, 100000);

    /* A catalogue of 100000 dense ids costs about one byte each. */
    uint8_t *blob = NULL;
    size_t len = 0;
    for (size_t i = 0; i < 100000; i++)
        many[i] = (int64_t)i + 1;
    assert_int_equal(vault_seal(v, pk, many, 100000, &blob, &len), FP_OK);
    assert_int_equal(len, VAULT_BLOB_OVERHEAD + 3 + 100000);
    fp_free(blob);
    fp_free(many);
    vault_free(&v);
}

/* Bytes sealed for a label open for that label only, never as a list, and
 * never after a bit flip or with another key. */
static void test_seal_bytes(void **state)
{
    (void)state;
    vault *v = open_test_vault(MASTER_HEX);
    static const char msg[] = "{\"src\":\"lb\",\"user\":\"alice\"}";
    uint8_t *blob = NULL, *pt = NULL;
    size_t len = 0, n = 0;
    assert_int_equal(vault_seal_bytes(v, "job", msg, strlen(msg), &blob, &len), FP_OK);
    assert_int_equal(len, VAULT_BLOB_OVERHEAD + strlen(msg));
    assert_null(memmem(blob, len, "alice", 5));
    assert_int_equal(vault_unseal_bytes(v, "job", blob, len, &pt, &n), FP_OK);
    assert_int_equal(n, strlen(msg));
    assert_string_equal((char *)pt, msg);
    fp_free(pt);
    assert_int_equal(vault_unseal_bytes(v, "sess:x", blob, len, &pt, &n), FP_CORRUPT);
    assert_null(pt);
    uint8_t pk[32];
    vault_person_key(v, "lb", "alice", pk);
    int64_t *ids = NULL;
    assert_int_equal(vault_unseal(v, pk, blob, len, &ids, &n), FP_CORRUPT);
    for (size_t i = 0; i < len; i++) {
        blob[i] ^= 0x10;
        assert_int_equal(vault_unseal_bytes(v, "job", blob, len, &pt, &n), FP_CORRUPT);
        blob[i] ^= 0x10;
    }
    vault *other = open_test_vault("1111111111111111111111111111111111111111111111111111111111111111");
    assert_int_equal(vault_unseal_bytes(other, "job", blob, len, &pt, &n), FP_CORRUPT);
    vault_free(&other);
    fp_free(blob);
    /* Empty bytes seal too. */
    assert_int_equal(vault_seal_bytes(v, "job", "", 0, &blob, &len), FP_OK);
    assert_int_equal(vault_unseal_bytes(v, "job", blob, len, &pt, &n), FP_OK);
    assert_int_equal(n, 0);
    fp_free(pt);
    fp_free(blob);
    vault_free(&v);
}

static void test_seal_is_randomised(void **state)
{
    (void)state;
    vault *v = open_test_vault(MASTER_HEX);
    uint8_t pk[32];
    vault_person_key(v, "lb", "alice", pk);
    static const int64_t ids[] = {5, 9, 77};
    uint8_t *a = NULL, *b = NULL;
    size_t la = 0, lb = 0;
    assert_int_equal(vault_seal(v, pk, ids, 3, &a, &la), FP_OK);
    assert_int_equal(vault_seal(v, pk, ids, 3, &b, &lb), FP_OK);
    assert_int_equal(la, lb);
    assert_int_equal(la, VAULT_BLOB_OVERHEAD + 4);
    assert_memory_not_equal(a + 1, b + 1, 24); /* fresh nonce */
    assert_memory_not_equal(a + 25, b + 25, la - 25);
    fp_free(a);
    fp_free(b);
    static const int64_t bad[] = {5, 5};
    assert_int_equal(vault_seal(v, pk, bad, 2, &a, &la), FP_INVALID);
    assert_null(a);
    vault_free(&v);
}

static void test_unseal_wrong_person_or_key(void **state)
{
    (void)state;
    vault *v = open_test_vault(MASTER_HEX);
    vault *w = open_test_vault("1f0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
    uint8_t alice[32], bob[32];
    vault_person_key(v, "lb", "alice", alice);
    vault_person_key(v, "lb", "bob", bob);
    static const int64_t ids[] = {3, 4, 1000};
    uint8_t *blob = NULL;
    size_t len = 0;
    assert_int_equal(vault_seal(v, alice, ids, 3, &blob, &len), FP_OK);
    int64_t *out = NULL;
    size_t n = 0;
    assert_int_equal(vault_unseal(v, bob, blob, len, &out, &n), FP_CORRUPT);
    assert_null(out);
    assert_int_equal(vault_unseal(w, alice, blob, len, &out, &n), FP_CORRUPT);
    assert_null(out);
    assert_int_equal(vault_unseal(v, alice, NULL, 0, &out, &n), FP_CORRUPT);
    fp_free(blob);
    vault_free(&v);
    vault_free(&w);
}

static void test_unseal_tampering(void **state)
{
    (void)state;
    vault *v = open_test_vault(MASTER_HEX);
    uint8_t pk[32];
    vault_person_key(v, "lb", "alice", pk);
    static const int64_t ids[] = {3, 4, 1000, 1000000};
    uint8_t *blob = NULL;
    size_t len = 0;
    assert_int_equal(vault_seal(v, pk, ids, 4, &blob, &len), FP_OK);
    for (size_t i = 0; i < len; i++) {
        static const uint8_t flips[] = {0x01, 0x80, 0xFF};
        for (size_t f = 0; f < sizeof flips; f++) {
            uint8_t *copy = fp_malloc(len);
            memcpy(copy, blob, len);
            copy[i] ^= flips[f];
            int64_t *out = NULL;
            size_t n = 0;
            fp_err rc = vault_unseal(v, pk, copy, len, &out, &n);
            if (rc != FP_CORRUPT)
                fail_msg("byte %zu ^ 0x%02x: got %s", i, flips[f], fp_err_code(rc));
            assert_null(out);
            fp_free(copy);
        }
    }
    /* Every truncation, each in a buffer of exactly that size. */
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *copy = fp_malloc(cut);
        memcpy(copy, blob, cut);
        int64_t *out = NULL;
        size_t n = 0;
        assert_int_equal(vault_unseal(v, pk, copy, cut, &out, &n), FP_CORRUPT);
        assert_null(out);
        fp_free(copy);
    }
    /* An extra byte at the end breaks the tag too. */
    uint8_t *longer = fp_malloc(len + 1);
    memcpy(longer, blob, len);
    longer[len] = 0;
    int64_t *out = NULL;
    size_t n = 0;
    assert_int_equal(vault_unseal(v, pk, longer, len + 1, &out, &n), FP_CORRUPT);
    fp_free(longer);
    fp_free(blob);
    vault_free(&v);
}

static void test_hex_keys(void **state)
{
    (void)state;
    static const struct {
        const char *hex;
        fp_err want;
    } cases[] = {
        {MASTER_HEX, FP_OK},
        {"000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F", FP_OK},
        {"", FP_INVALID},
        {"00", FP_INVALID},
        {"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1", FP_INVALID},
        {"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f0", FP_INVALID},
        {"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1g", FP_INVALID},
        {"0x0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", FP_INVALID},
        {" 00102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", FP_INVALID},
        {"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1\n", FP_INVALID},
        {"00:01:02:03:04:05:06:07:08:09:0a:0b:0c:0d:0e:0f:10:11:12:13:14:15", FP_INVALID},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        vault *v = (vault *)&v;
        fp_err rc = vault_open(cases[i].hex, NULL, &v);
        if (rc != cases[i].want)
            fail_msg("key '%s': got %s", cases[i].hex, fp_err_code(rc));
        if (rc == FP_OK)
            vault_free(&v);
        assert_null(v);
    }
    /* Upper and lower case name the same key. */
    vault *a = open_test_vault(MASTER_HEX);
    vault *b = open_test_vault("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F");
    uint8_t ka[32], kb[32];
    vault_person_key(a, "lb", "x", ka);
    vault_person_key(b, "lb", "x", kb);
    assert_memory_equal(ka, kb, 32);
    vault_free(&a);
    vault_free(&b);

    vault *none = (vault *)&none;
    assert_int_equal(vault_open(NULL, NULL, &none), FP_INVALID);
    assert_null(none);
}

/* ---- key files --------------------------------------------------------- */

static char *make_tmpdir(void)
{
    char tmpl[] = "/tmp/fp-vault-test-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    return fp_strdup(tmpl);
}

static void remove_tree(const char *dir)
{
    char *cmd = fp_printf("rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    fp_free(cmd);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static void test_key_file_created_and_reused(void **state)
{
    (void)state;
    char *dir = make_tmpdir();
    char *path = fp_printf("%s/secret.key", dir);
    vault *v = NULL;
    assert_int_equal(vault_open(NULL, path, &v), FP_OK);

    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0600);

    char text[200];
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t got = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[got] = '\0';
    assert_int_equal(got, 65);
    assert_int_equal(text[64], '\n');
    for (size_t i = 0; i < 64; i++)
        assert_non_null(strchr("0123456789abcdef", text[i]));
    text[64] = '\0';

    /* Reopening reads the same key: same person keys, old blobs still open. */
    uint8_t pk1[32], pk2[32], pk3[32];
    vault_person_key(v, "lb", "alice", pk1);
    static const int64_t ids[] = {7, 8, 9};
    uint8_t *blob = NULL;
    size_t len = 0;
    assert_int_equal(vault_seal(v, pk1, ids, 3, &blob, &len), FP_OK);
    vault_free(&v);

    assert_int_equal(vault_open(NULL, path, &v), FP_OK);
    vault_person_key(v, "lb", "alice", pk2);
    assert_memory_equal(pk1, pk2, 32);
    int64_t *out = NULL;
    size_t n = 0;
    assert_int_equal(vault_unseal(v, pk2, blob, len, &out, &n), FP_OK);
    assert_int_equal(n, 3);
    assert_int_equal(out[2], 9);
    fp_free(out);
    vault_free(&v);

    /* The file's text is the same key FILMPICKER_SECRET_KEY would take. */
    assert_int_equal(vault_open(text, NULL, &v), FP_OK);
    vault_person_key(v, "lb", "alice", pk3);
    assert_memory_equal(pk1, pk3, 32);
    vault_free(&v);

    /* No temporary file is left behind. */
    char *ls = fp_printf("test $(ls -A '%s' | wc -l) -eq 1", dir);
    assert_int_equal(system(ls), 0);
    fp_free(ls);

    /* Two fresh files get different keys. */
    char *path2 = fp_printf("%s/other.key", dir);
    assert_int_equal(vault_open(NULL, path2, &v), FP_OK);
    uint8_t pk4[32];
    vault_person_key(v, "lb", "alice", pk4);
    assert_memory_not_equal(pk1, pk4, 32);
    vault_free(&v);

    fp_free(blob);
    fp_free(path2);
    fp_free(path);
    remove_tree(dir);
    fp_free(dir);
}

static void test_key_file_permissions(void **state)
{
    (void)state;
    char *dir = make_tmpdir();
    char *path = fp_printf("%s/k", dir);
    static const struct {
        mode_t mode;
        fp_err want;
    } cases[] = {
        {0600, FP_OK}, {0400, FP_OK},      {0700, FP_OK},      {0644, FP_INVALID},
        {0604, FP_INVALID}, {0640, FP_INVALID}, {0660, FP_INVALID}, {0602, FP_INVALID},
        {0620, FP_INVALID}, {0666, FP_INVALID},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        unlink(path);
        write_file(path, MASTER_HEX "\n", cases[i].mode);
        vault *v = NULL;
        fp_err rc = vault_open(NULL, path, &v);
        if (rc != cases[i].want)
            fail_msg("mode %04o: got %s", (unsigned)cases[i].mode, fp_err_code(rc));
        if (rc == FP_OK) {
            /* and it is the key written in the file */
            vault *h = open_test_vault(MASTER_HEX);
            uint8_t a[32], b[32];
            vault_person_key(v, "lb", "z", a);
            vault_person_key(h, "lb", "z", b);
            assert_memory_equal(a, b, 32);
            vault_free(&h);
            vault_free(&v);
        }
        assert_null(v);
    }
    fp_free(path);
    remove_tree(dir);
    fp_free(dir);
}

static void test_key_file_bad(void **state)
{
    (void)state;
    char *dir = make_tmpdir();
    char *path = fp_printf("%s/k", dir);
    static const struct {
        const char *content;
        fp_err want;
    } cases[] = {
        {MASTER_HEX, FP_OK},
        {MASTER_HEX "\r\n", FP_OK},
        {"", FP_INVALID},
        {"\n", FP_INVALID},
        {MASTER_HEX "\n\n", FP_INVALID},
        {MASTER_HEX "00\n", FP_INVALID},
        {"zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n", FP_INVALID},
        {"not a key at all", FP_INVALID},
        /* 32 raw bytes are not the documented format */
        {"0123456789abcdef0123456789abcdef", FP_INVALID},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        unlink(path);
        write_file(path, cases[i].content, 0600);
        vault *v = NULL;
        fp_err rc = vault_open(NULL, path, &v);
        if (rc != cases[i].want)
            fail_msg("content case %zu: got %s", i, fp_err_code(rc));
        vault_free(&v);
    }
    /* A very long file is refused without reading it all. */
    unlink(path);
    char *big = fp_malloc(100001);
    memset(big, 'a', 100000);
    big[100000] = '\0';
    write_file(path, big, 0600);
    fp_free(big);
    vault *v = NULL;
    assert_int_equal(vault_open(NULL, path, &v), FP_INVALID);

    /* A directory is not a key file. */
    assert_int_equal(vault_open(NULL, dir, &v), FP_INVALID);
    assert_null(v);

    /* A missing directory cannot receive a new key. */
    char *missing = fp_printf("%s/no/such/dir/k", dir);
    assert_int_equal(vault_open(NULL, missing, &v), FP_IO);
    assert_null(v);
    fp_free(missing);

    fp_free(path);
    remove_tree(dir);
    fp_free(dir);
}

/* ---- wrapped data keys ----------------------------------------------- */

#define OTHER_HEX "8f0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

static vault_kek *open_kek(const char *hex)
{
    vault_kek *k = NULL;
    assert_int_equal(vault_kek_open(hex, NULL, 0, &k), FP_OK);
    assert_non_null(k);
    assert_int_equal(vault_kek_created(k), 0);
    return k;
}

/* 1 when a and b are vaults of the same data key: same person keys, and a
 * list sealed by one opens with the other. */
static int same_data_key(const vault *a, const vault *b)
{
    uint8_t pa[32], pb[32];
    vault_person_key(a, "lb", "alice", pa);
    vault_person_key(b, "lb", "alice", pb);
    static const int64_t ids[] = {3, 5, 8};
    uint8_t *blob = NULL;
    size_t len = 0, n = 0;
    int64_t *out = NULL;
    assert_int_equal(vault_seal(a, pa, ids, 3, &blob, &len), FP_OK);
    int same = memcmp(pa, pb, 32) == 0 && vault_unseal(b, pa, blob, len, &out, &n) == FP_OK &&
               n == 3 && out[2] == 8;
    char ma[VAULT_MAC_HEX + 1], mb[VAULT_MAC_HEX + 1];
    vault_mac_hex(a, "0123456789abcdef0123456789abcdef", ma);
    vault_mac_hex(b, "0123456789abcdef0123456789abcdef", mb);
    same = same && strcmp(ma, mb) == 0;
    fp_free(out);
    fp_free(blob);
    return same;
}

static void test_wrapped_key_construction(void **state)
{
    (void)state;
    vault_kek *k = open_kek(MASTER_HEX);
    vault *v = NULL;
    uint8_t wrapped[VAULT_WRAPPED_BYTES];
    assert_int_equal(vault_create(k, &v, wrapped), FP_OK);
    assert_int_equal(wrapped[0], VAULT_WRAPPED_VERSION);

    /* Rebuilt from vault.h: the wrapping key is kdf(1, "FPwrap01") of the
     * server key, the AD the version byte and "FilmPicker data key". */
    uint8_t master[32], wkey[32], dek[32], ad[1 + 19];
    master_bytes(MASTER_HEX, master);
    assert_int_equal(crypto_kdf_derive_from_key(wkey, 32, 1, "FPwrap01", master), 0);
    ad[0] = 1;
    memcpy(ad + 1, "FilmPicker data key", 19);
    unsigned long long mlen = 0;
    assert_int_equal(crypto_aead_xchacha20poly1305_ietf_decrypt(dek, &mlen, NULL, wrapped + 25,
                                                                 48, ad, sizeof ad, wrapped + 1,
                                                                 wkey),
                     0);
    assert_int_equal(mlen, 32);
    /* ... and the sub-keys derive from that data key as vault_open's do
     * from a server key. */
    char dek_hex[65];
    sodium_bin2hex(dek_hex, sizeof dek_hex, dek, 32);
    vault *direct = open_test_vault(dek_hex);
    assert_true(same_data_key(v, direct));
    vault *server = open_test_vault(MASTER_HEX); /* not the server key's sub-keys */
    assert_false(same_data_key(v, server));

    /* Every new data key is another one. */
    vault *v2 = NULL;
    uint8_t wrapped2[VAULT_WRAPPED_BYTES];
    assert_int_equal(vault_create(k, &v2, wrapped2), FP_OK);
    assert_false(same_data_key(v, v2));
    vault_free(&v);
    vault_free(&v2);
    vault_free(&direct);
    vault_free(&server);
    vault_kek_free(&k);
    assert_null(k);
    vault_kek_free(&k);
}

static void test_unwrap_and_mismatch(void **state)
{
    (void)state;
    vault_kek *k = open_kek(MASTER_HEX), *other = open_kek(OTHER_HEX);
    vault *v = NULL, *u = NULL;
    uint8_t wrapped[VAULT_WRAPPED_BYTES];
    assert_int_equal(vault_create(k, &v, wrapped), FP_OK);
    assert_int_equal(vault_unwrap(k, wrapped, sizeof wrapped, &u), FP_OK);
    assert_true(same_data_key(v, u));
    vault_free(&u);

    /* Another server key: a mismatch, never a vault of another key. */
    u = (vault *)&u;
    assert_int_equal(vault_unwrap(other, wrapped, sizeof wrapped, &u), FP_KEY_MISMATCH);
    assert_null(u);
    /* Any altered byte is a mismatch too (the tag fails). */
    for (size_t i = 1; i < sizeof wrapped; i++) {
        uint8_t bad[VAULT_WRAPPED_BYTES];
        memcpy(bad, wrapped, sizeof bad);
        bad[i] ^= 0x20;
        assert_int_equal(vault_unwrap(k, bad, sizeof bad, &u), FP_KEY_MISMATCH);
    }
    /* Not a wrapped key at all: corrupt. */
    uint8_t bad[VAULT_WRAPPED_BYTES + 1];
    memcpy(bad, wrapped, sizeof wrapped);
    bad[0] = 2;
    assert_int_equal(vault_unwrap(k, bad, VAULT_WRAPPED_BYTES, &u), FP_CORRUPT);
    memcpy(bad, wrapped, sizeof wrapped);
    assert_int_equal(vault_unwrap(k, bad, VAULT_WRAPPED_BYTES - 1, &u), FP_CORRUPT);
    assert_int_equal(vault_unwrap(k, bad, VAULT_WRAPPED_BYTES + 1, &u), FP_CORRUPT);
    assert_int_equal(vault_unwrap(k, NULL, 0, &u), FP_CORRUPT);
    assert_null(u);
    vault_free(&v);
    vault_kek_free(&k);
    vault_kek_free(&other);
}

static void test_adopt_server_key(void **state)
{
    (void)state;
    /* A database from before data keys: rows sealed by vault_open's sub-keys
     * of the server key. Adopting it keeps every one of them readable. */
    vault *old = open_test_vault(MASTER_HEX);
    vault_kek *k = open_kek(MASTER_HEX);
    vault *v = NULL, *u = NULL;
    uint8_t wrapped[VAULT_WRAPPED_BYTES];
    assert_int_equal(vault_adopt_server_key(k, &v, wrapped), FP_OK);
    assert_true(same_data_key(old, v));
    assert_int_equal(vault_unwrap(k, wrapped, sizeof wrapped, &u), FP_OK);
    assert_true(same_data_key(old, u));
    /* Wrapping is randomised: adopting again gives another blob, same key. */
    vault *v2 = NULL;
    uint8_t wrapped2[VAULT_WRAPPED_BYTES];
    assert_int_equal(vault_adopt_server_key(k, &v2, wrapped2), FP_OK);
    assert_memory_not_equal(wrapped, wrapped2, sizeof wrapped);
    assert_true(same_data_key(v, v2));
    vault_free(&old);
    vault_free(&v);
    vault_free(&v2);
    vault_free(&u);
    vault_kek_free(&k);
}

static void test_rewrap(void **state)
{
    (void)state;
    vault_kek *k1 = open_kek(MASTER_HEX), *k2 = open_kek(OTHER_HEX);
    vault *v = NULL, *u = NULL;
    uint8_t w1[VAULT_WRAPPED_BYTES], w2[VAULT_WRAPPED_BYTES];
    assert_int_equal(vault_create(k1, &v, w1), FP_OK);
    assert_int_equal(vault_rewrap(k1, k2, w1, sizeof w1, w2), FP_OK);
    /* The new server key opens the same data key; the old one no longer
     * opens the new blob. */
    assert_int_equal(vault_unwrap(k2, w2, sizeof w2, &u), FP_OK);
    assert_true(same_data_key(v, u));
    vault_free(&u);
    assert_int_equal(vault_unwrap(k1, w2, sizeof w2, &u), FP_KEY_MISMATCH);
    /* Re-keying needs the current key. */
    uint8_t w3[VAULT_WRAPPED_BYTES];
    assert_int_equal(vault_rewrap(k2, k1, w1, sizeof w1, w3), FP_KEY_MISMATCH);
    vault_free(&v);
    vault_kek_free(&k1);
    vault_kek_free(&k2);
}

static void test_kek_key_file(void **state)
{
    (void)state;
    char *dir = make_tmpdir();
    char *path = fp_printf("%s/server.key", dir);
    vault_kek *k = (vault_kek *)&k;
    /* Without VAULT_KEK_CREATE a missing file stays missing. */
    assert_int_equal(vault_kek_open(NULL, path, 0, &k), FP_NOT_FOUND);
    assert_null(k);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(vault_kek_open(NULL, path, VAULT_KEK_CREATE, &k), FP_OK);
    assert_int_equal(vault_kek_created(k), 1);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    vault *v = NULL, *u = NULL;
    uint8_t wrapped[VAULT_WRAPPED_BYTES];
    assert_int_equal(vault_create(k, &v, wrapped), FP_OK);
    vault_kek_free(&k);
    /* Read again (not created): the same key unwraps. */
    assert_int_equal(vault_kek_open(NULL, path, VAULT_KEK_CREATE, &k), FP_OK);
    assert_int_equal(vault_kek_created(k), 0);
    assert_int_equal(vault_unwrap(k, wrapped, sizeof wrapped, &u), FP_OK);
    assert_true(same_data_key(v, u));
    vault_kek_free(&k);
    /* The file's checks apply: a readable-by-others file is refused. */
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(vault_kek_open(NULL, path, 0, &k), FP_INVALID);
    assert_int_equal(vault_kek_open("zz", NULL, 0, &k), FP_INVALID);
    assert_int_equal(vault_kek_open(NULL, NULL, 0, &k), FP_INVALID);
    assert_null(k);
    vault_free(&v);
    vault_free(&u);
    fp_free(path);
    remove_tree(dir);
    fp_free(dir);
}

static void test_random_token(void **state)
{
    (void)state;
    char a[65], b[65];
    memset(a, 'X', sizeof a);
    vault_random_token(a, 32);
    vault_random_token(b, 32);
    assert_int_equal(strlen(a), 64);
    assert_int_equal(strspn(a, "0123456789abcdef"), 64);
    assert_string_not_equal(a, b);

    char small[17];
    memset(small, 'X', sizeof small);
    vault_random_token(small, 8);
    assert_int_equal(strlen(small), 16);

    char clamped[65 + 8];
    memset(clamped, 'X', sizeof clamped);
    vault_random_token(clamped, 40); /* more than 32: clamped */
    assert_int_equal(strlen(clamped), 64);
    assert_int_equal(clamped[66], 'X');

    char empty[1] = {'X'};
    vault_random_token(empty, 0);
    assert_int_equal(empty[0], '\0');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_person_key_construction),
        cmocka_unit_test(test_person_key_separation),
        cmocka_unit_test(test_codec_vectors),
        cmocka_unit_test(test_codec_rejects_bad_lists),
        cmocka_unit_test(test_codec_hostile),
        cmocka_unit_test(test_sealed_hostile),
        cmocka_unit_test(test_seal_roundtrip),
        cmocka_unit_test(test_seal_is_randomised),
        cmocka_unit_test(test_seal_bytes),
        cmocka_unit_test(test_unseal_wrong_person_or_key),
        cmocka_unit_test(test_unseal_tampering),
        cmocka_unit_test(test_hex_keys),
        cmocka_unit_test(test_key_file_created_and_reused),
        cmocka_unit_test(test_key_file_permissions),
        cmocka_unit_test(test_key_file_bad),
        cmocka_unit_test(test_wrapped_key_construction),
        cmocka_unit_test(test_unwrap_and_mismatch),
        cmocka_unit_test(test_adopt_server_key),
        cmocka_unit_test(test_rewrap),
        cmocka_unit_test(test_kek_key_file),
        cmocka_unit_test(test_random_token),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

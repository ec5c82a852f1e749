/*
 * vault.c - FilmPicker's privacy layer: the server key, keyed person hashes
 * and sealed watchlists, all with libsodium primitives (no home-made crypto).
 *
 * Contract (see vault.h for the formats): a vault holds only the derived
 * sub-keys, in sodium_malloc'd memory that is read-only while in use and
 * zeroed on vault_free; the data key never outlives the call that unwraps
 * or creates it. A vault_kek holds the server key and its wrapping sub-key
 * in the same kind of memory. Decoding a
 * blob trusts nothing: the AEAD tag is checked first, and the plaintext
 * decoder is bounds-checked as if the tag did not exist, so a leaked or buggy
 * sealing key still cannot make it over-read or over-allocate.
 *
 * Key material lives outside src/core/mem.h on purpose: sodium_malloc gives
 * guard pages and mlock, which the general allocator cannot.
 */
#include "vault.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/mem.h"

#define VAULT_HEX_LEN (2 * VAULT_KEY_BYTES)
#define VAULT_NONCE_BYTES crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define VAULT_TAG_BYTES crypto_aead_xchacha20poly1305_ietf_ABYTES
#define VAULT_KDF_CONTEXT "FPvault1"
#define VAULT_SUBKEY_HASH 1
#define VAULT_SUBKEY_SEAL 2
#define VAULT_SUBKEY_MAC 3
#define VAULT_WRAP_CONTEXT "FPwrap01"
#define VAULT_SUBKEY_WRAP 1
#define VAULT_WRAP_AD "FilmPicker data key"
/* A key file is 64 hex digits and a newline; anything much longer is not one. */
#define VAULT_KEY_FILE_MAX 128

_Static_assert(VAULT_NONCE_BYTES == 24, "blob layout assumes a 24-byte nonce");
_Static_assert(VAULT_TAG_BYTES == 16, "blob layout assumes a 16-byte tag");
_Static_assert(VAULT_BLOB_OVERHEAD == 1 + VAULT_NONCE_BYTES + VAULT_TAG_BYTES, "overhead");
_Static_assert(sizeof VAULT_KDF_CONTEXT - 1 == crypto_kdf_CONTEXTBYTES, "kdf context size");
_Static_assert(sizeof VAULT_WRAP_CONTEXT - 1 == crypto_kdf_CONTEXTBYTES, "kdf context size");
_Static_assert(VAULT_WRAPPED_BYTES == 1 + VAULT_NONCE_BYTES + VAULT_KEY_BYTES + VAULT_TAG_BYTES,
               "wrapped key layout");
_Static_assert(VAULT_KEY_BYTES == crypto_kdf_KEYBYTES, "master key size");
_Static_assert(VAULT_KEY_BYTES == crypto_aead_xchacha20poly1305_ietf_KEYBYTES, "seal key size");
_Static_assert(VAULT_KEY_BYTES >= crypto_generichash_KEYBYTES_MIN &&
                   VAULT_KEY_BYTES <= crypto_generichash_KEYBYTES_MAX,
               "hash key size");

struct vault {
    uint8_t hash_key[VAULT_KEY_BYTES];
    uint8_t seal_key[VAULT_KEY_BYTES];
    uint8_t mac_key[crypto_auth_KEYBYTES];
};
_Static_assert(crypto_auth_KEYBYTES == VAULT_KEY_BYTES, "mac key size");

/* ---- the server key ---------------------------------------------------- */

/* Exactly 64 hex digits, nothing before or after. */
static fp_err vault_parse_hex(const char *hex, size_t len, uint8_t key[VAULT_KEY_BYTES])
{
    size_t bin_len = 0;
    if (len != VAULT_HEX_LEN)
        return FP_INVALID;
    if (sodium_hex2bin(key, VAULT_KEY_BYTES, hex, len, NULL, &bin_len, NULL) != 0 ||
        bin_len != VAULT_KEY_BYTES) {
        sodium_memzero(key, VAULT_KEY_BYTES);
        return FP_INVALID;
    }
    return FP_OK;
}

static fp_err vault_read_key_file(const char *path, uint8_t key[VAULT_KEY_BYTES])
{
    fp_err rc = FP_OK;
    char text[VAULT_KEY_FILE_MAX + 1];
    size_t len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fp_log(FP_LOG_ERROR, "vault_key_file_unreadable", "{s:s,s:s}", "path", path, "error",
               strerror(errno));
        rc = FP_IO;
        goto out;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        fp_log(FP_LOG_ERROR, "vault_key_file_invalid", "{s:s,s:s}", "path", path, "error",
               "not a regular file");
        rc = FP_INVALID;
        goto out;
    }
    if (st.st_mode & (S_IRGRP | S_IWGRP | S_IROTH | S_IWOTH)) {
        char mode[8];
        snprintf(mode, sizeof mode, "%04o", (unsigned)(st.st_mode & 07777));
        fp_log(FP_LOG_ERROR, "vault_key_file_insecure", "{s:s,s:s,s:s}", "path", path, "mode",
               mode, "error", "the key file is accessible by group or others; chmod 600 it");
        rc = FP_INVALID;
        goto out;
    }
    for (;;) {
        ssize_t r = read(fd, text + len, sizeof text - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            fp_log(FP_LOG_ERROR, "vault_key_file_unreadable", "{s:s,s:s}", "path", path,
                   "error", strerror(errno));
            rc = FP_IO;
            goto out;
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len == sizeof text)
            break;
    }
    /* Editors and `echo` add a final newline; accept exactly one. */
    if (len > 0 && text[len - 1] == '\n')
        len--;
    if (len > 0 && text[len - 1] == '\r')
        len--;
    rc = vault_parse_hex(text, len, key);
    if (rc != FP_OK)
        fp_log(FP_LOG_ERROR, "vault_key_file_invalid", "{s:s,s:s}", "path", path, "error",
               "the key file must hold exactly 64 hex digits");
out:
    sodium_memzero(text, sizeof text);
    if (fd >= 0)
        close(fd);
    return rc;
}

static fp_err vault_write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return FP_IO;
        p += w;
        len -= (size_t)w;
    }
    return FP_OK;
}

/*
 * Creates path holding a fresh random key. The key is written in full under a
 * temporary name first and then link()ed to path, which fails if path exists:
 * a concurrent starter either wins or reads the winner's complete file, never
 * a half-written one. *created is 0 when someone else's file was there.
 */
static fp_err vault_create_key_file(const char *path, uint8_t key[VAULT_KEY_BYTES], int *created)
{
    fp_err rc = FP_OK;
    char hex[VAULT_HEX_LEN + 2];
    char token[17];
    vault_random_token(token, 8);
    char *tmp = fp_printf("%s.tmp-%s", path, token);
    int fd = -1, tmp_made = 0;
    *created = 0;

    randombytes_buf(key, VAULT_KEY_BYTES);
    sodium_bin2hex(hex, sizeof hex, key, VAULT_KEY_BYTES);
    hex[VAULT_HEX_LEN] = '\n';

    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        fp_log(FP_LOG_ERROR, "vault_key_file_create_failed", "{s:s,s:s}", "path", path, "error",
               strerror(errno));
        rc = FP_IO;
        goto out;
    }
    tmp_made = 1;
    /* umask can only remove bits, but say 0600 explicitly all the same. */
    if (fchmod(fd, S_IRUSR | S_IWUSR) != 0 || vault_write_all(fd, hex, VAULT_HEX_LEN + 1) != FP_OK ||
        fsync(fd) != 0) {
        fp_log(FP_LOG_ERROR, "vault_key_file_create_failed", "{s:s,s:s}", "path", path, "error",
               strerror(errno));
        rc = FP_IO;
        goto out;
    }
    if (link(tmp, path) != 0) {
        if (errno == EEXIST) {
            rc = vault_read_key_file(path, key);
            goto out;
        }
        fp_log(FP_LOG_ERROR, "vault_key_file_create_failed", "{s:s,s:s}", "path", path, "error",
               strerror(errno));
        rc = FP_IO;
        goto out;
    }
    *created = 1;
    fp_log(FP_LOG_WARN, "vault_key_file_created", "{s:s,s:s}", "path", path, "note",
           "a new server key was generated: back it up, stored watchlists cannot be read without it");
out:
    sodium_memzero(hex, sizeof hex);
    if (fd >= 0)
        close(fd);
    if (tmp_made)
        unlink(tmp);
    fp_free(tmp);
    if (rc != FP_OK)
        sodium_memzero(key, VAULT_KEY_BYTES);
    return rc;
}

/* The key file's key; a missing file is created when create is set (then
 * *created = 1), else FP_NOT_FOUND. */
static fp_err vault_load_key_file(const char *path, int create, uint8_t key[VAULT_KEY_BYTES],
                                  int *created)
{
    struct stat st;
    *created = 0;
    if (stat(path, &st) == 0 || errno != ENOENT)
        return vault_read_key_file(path, key);
    if (!create) {
        fp_log(FP_LOG_ERROR, "vault_key_file_unreadable", "{s:s,s:s}", "path", path, "error",
               "no such file");
        return FP_NOT_FOUND;
    }
    return vault_create_key_file(path, key, created);
}

/* The server key from the variable or the key file (vault_kek_open). */
static fp_err vault_server_key(const char *hex_key, const char *key_file, int create,
                               uint8_t master[VAULT_KEY_BYTES], int *created)
{
    fp_err rc;
    *created = 0;
    if (sodium_init() < 0) {
        fp_log(FP_LOG_ERROR, "vault_init_failed", NULL);
        return FP_CRYPTO;
    }
    if (hex_key) {
        rc = vault_parse_hex(hex_key, strlen(hex_key), master);
        if (rc != FP_OK)
            fp_log(FP_LOG_ERROR, "vault_bad_key", "{s:s}", "error",
                   "FILMPICKER_SECRET_KEY must be exactly 64 hex digits");
        return rc;
    }
    if (key_file && *key_file)
        return vault_load_key_file(key_file, create, master, created);
    fp_log(FP_LOG_ERROR, "vault_no_key", "{s:s}", "error", "neither a key nor a key file given");
    return FP_INVALID;
}

/* A vault whose sub-keys derive from the data key dek. */
static fp_err vault_from_key(const uint8_t dek[VAULT_KEY_BYTES], vault **out)
{
    fp_err rc = FP_OK;
    *out = NULL;
    vault *v = sodium_malloc(sizeof *v);
    if (!v)
        return FP_NOMEM;
    if (crypto_kdf_derive_from_key(v->hash_key, sizeof v->hash_key, VAULT_SUBKEY_HASH,
                                   VAULT_KDF_CONTEXT, dek) != 0 ||
        crypto_kdf_derive_from_key(v->seal_key, sizeof v->seal_key, VAULT_SUBKEY_SEAL,
                                   VAULT_KDF_CONTEXT, dek) != 0 ||
        crypto_kdf_derive_from_key(v->mac_key, sizeof v->mac_key, VAULT_SUBKEY_MAC,
                                   VAULT_KDF_CONTEXT, dek) != 0) {
        rc = FP_CRYPTO;
        goto out;
    }
    /* Nothing writes the keys after this: a stray write now faults. */
    sodium_mprotect_readonly(v);
    *out = v;
    v = NULL;
out:
    if (v) {
        sodium_memzero(v, sizeof *v);
        sodium_free(v);
    }
    return rc;
}

fp_err vault_open(const char *hex_key, const char *key_file, vault **out)
{
    uint8_t master[VAULT_KEY_BYTES];
    int created = 0;
    *out = NULL;
    fp_err rc = vault_server_key(hex_key, key_file, 1, master, &created);
    if (rc == FP_OK)
        rc = vault_from_key(master, out);
    sodium_memzero(master, sizeof master);
    return rc;
}

/* ---- the server key as a key-encryption key ------------------------------ */

struct vault_kek {
    uint8_t server_key[VAULT_KEY_BYTES]; /* the data key of a database from before data keys */
    uint8_t wrap_key[VAULT_KEY_BYTES];
    int created;
};

fp_err vault_kek_open(const char *hex_key, const char *key_file, int flags, vault_kek **out)
{
    fp_err rc;
    *out = NULL;
    if (sodium_init() < 0) {
        fp_log(FP_LOG_ERROR, "vault_init_failed", NULL);
        return FP_CRYPTO;
    }
    vault_kek *k = sodium_malloc(sizeof *k);
    if (!k)
        return FP_NOMEM;
    rc = vault_server_key(hex_key, key_file, flags & VAULT_KEK_CREATE, k->server_key,
                          &k->created);
    if (rc == FP_OK && crypto_kdf_derive_from_key(k->wrap_key, sizeof k->wrap_key,
                                                  VAULT_SUBKEY_WRAP, VAULT_WRAP_CONTEXT,
                                                  k->server_key) != 0)
        rc = FP_CRYPTO;
    if (rc != FP_OK) {
        sodium_memzero(k, sizeof *k);
        sodium_free(k);
        return rc;
    }
    sodium_mprotect_readonly(k);
    *out = k;
    return FP_OK;
}

void vault_kek_free(vault_kek **k)
{
    if (!k || !*k)
        return;
    sodium_mprotect_readwrite(*k);
    sodium_memzero(*k, sizeof **k);
    sodium_free(*k);
    *k = NULL;
}

int vault_kek_created(const vault_kek *k)
{
    return k && k->created;
}

static void vault_wrap_ad(uint8_t ad[1 + sizeof VAULT_WRAP_AD - 1])
{
    ad[0] = VAULT_WRAPPED_VERSION;
    memcpy(ad + 1, VAULT_WRAP_AD, sizeof VAULT_WRAP_AD - 1);
}

static fp_err vault_wrap(const vault_kek *k, const uint8_t dek[VAULT_KEY_BYTES],
                         uint8_t out[VAULT_WRAPPED_BYTES])
{
    uint8_t ad[1 + sizeof VAULT_WRAP_AD - 1];
    unsigned long long clen = 0;
    vault_wrap_ad(ad);
    out[0] = VAULT_WRAPPED_VERSION;
    randombytes_buf(out + 1, VAULT_NONCE_BYTES);
    if (crypto_aead_xchacha20poly1305_ietf_encrypt(out + 1 + VAULT_NONCE_BYTES, &clen, dek,
                                                   VAULT_KEY_BYTES, ad, sizeof ad, NULL, out + 1,
                                                   k->wrap_key) != 0 ||
        clen != VAULT_KEY_BYTES + VAULT_TAG_BYTES)
        return FP_CRYPTO;
    return FP_OK;
}

/* The data key inside wrapped, into dek (sodium_malloc'd by the caller). */
static fp_err vault_unwrap_key(const vault_kek *k, const uint8_t *wrapped, size_t len,
                               uint8_t dek[VAULT_KEY_BYTES])
{
    uint8_t ad[1 + sizeof VAULT_WRAP_AD - 1];
    unsigned long long mlen = 0;
    if (!wrapped || len != VAULT_WRAPPED_BYTES || wrapped[0] != VAULT_WRAPPED_VERSION)
        return FP_CORRUPT;
    vault_wrap_ad(ad);
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(dek, &mlen, NULL, wrapped + 1 + VAULT_NONCE_BYTES,
                                                   VAULT_KEY_BYTES + VAULT_TAG_BYTES, ad,
                                                   sizeof ad, wrapped + 1, k->wrap_key) != 0 ||
        mlen != VAULT_KEY_BYTES) {
        sodium_memzero(dek, VAULT_KEY_BYTES);
        return FP_KEY_MISMATCH;
    }
    return FP_OK;
}

/* Key material on the stack would outlive the call in a core dump; this is
 * sodium_malloc'd (guard pages, mlock) and zeroed on free. */
static uint8_t *vault_dek_alloc(void)
{
    return sodium_malloc(VAULT_KEY_BYTES);
}

static void vault_dek_free(uint8_t *dek)
{
    if (dek) {
        sodium_memzero(dek, VAULT_KEY_BYTES);
        sodium_free(dek);
    }
}

fp_err vault_create(const vault_kek *k, vault **out, uint8_t wrapped[VAULT_WRAPPED_BYTES])
{
    *out = NULL;
    uint8_t *dek = vault_dek_alloc();
    if (!dek)
        return FP_NOMEM;
    crypto_kdf_keygen(dek);
    fp_err rc = vault_wrap(k, dek, wrapped);
    if (rc == FP_OK)
        rc = vault_from_key(dek, out);
    vault_dek_free(dek);
    return rc;
}

fp_err vault_adopt_server_key(const vault_kek *k, vault **out, uint8_t wrapped[VAULT_WRAPPED_BYTES])
{
    *out = NULL;
    fp_err rc = vault_wrap(k, k->server_key, wrapped);
    if (rc == FP_OK)
        rc = vault_from_key(k->server_key, out);
    return rc;
}

fp_err vault_unwrap(const vault_kek *k, const uint8_t *wrapped, size_t len, vault **out)
{
    *out = NULL;
    uint8_t *dek = vault_dek_alloc();
    if (!dek)
        return FP_NOMEM;
    fp_err rc = vault_unwrap_key(k, wrapped, len, dek);
    if (rc == FP_OK)
        rc = vault_from_key(dek, out);
    vault_dek_free(dek);
    return rc;
}

fp_err vault_rewrap(const vault_kek *from, const vault_kek *to, const uint8_t *wrapped, size_t len,
                    uint8_t out[VAULT_WRAPPED_BYTES])
{
    uint8_t *dek = vault_dek_alloc();
    if (!dek)
        return FP_NOMEM;
    fp_err rc = vault_unwrap_key(from, wrapped, len, dek);
    if (rc == FP_OK)
        rc = vault_wrap(to, dek, out);
    vault_dek_free(dek);
    return rc;
}

void vault_free(vault **v)
{
    if (!v || !*v)
        return;
    sodium_mprotect_readwrite(*v);
    sodium_memzero(*v, sizeof **v);
    sodium_free(*v);
    *v = NULL;
}

/* ---- person keys ------------------------------------------------------- */

void vault_person_key(const vault *v, const char *source, const char *username,
                      uint8_t out[VAULT_KEY_BYTES])
{
    crypto_generichash_state st;
    const char *src = source ? source : "";
    const char *user = username ? username : "";
    crypto_generichash_init(&st, v->hash_key, sizeof v->hash_key, VAULT_KEY_BYTES);
    /* The NUL separator keeps ("ab","c") and ("a","bc") apart. */
    crypto_generichash_update(&st, (const unsigned char *)src, strlen(src) + 1);
    crypto_generichash_update(&st, (const unsigned char *)user, strlen(user));
    crypto_generichash_final(&st, out, VAULT_KEY_BYTES);
    sodium_memzero(&st, sizeof st);
}

/* ---- the plaintext codec ----------------------------------------------- */

#define VAULT_VARINT_MAX 10

static size_t vault_varint_put(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* Reads one minimal LEB128 varint at *pos; -1 on truncation, overflow or a
 * non-minimal encoding (so every list has exactly one encoding). */
static int vault_varint_get(const uint8_t *p, size_t len, size_t *pos, uint64_t *out)
{
    uint64_t v = 0;
    unsigned shift = 0;
    for (size_t i = *pos; i < len; i++) {
        uint8_t b = p[i];
        if (shift == 63 && b > 1)
            return -1;
        v |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80)) {
            if (b == 0 && shift > 0)
                return -1;
            *pos = i + 1;
            *out = v;
            return 0;
        }
        shift += 7;
    }
    return -1;
}

fp_err vault_ids_encode(const int64_t *ids, size_t n, uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (n > (SIZE_MAX / VAULT_VARINT_MAX) - 1)
        return FP_TOO_LARGE;
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 1 || (i > 0 && ids[i] <= ids[i - 1]))
            return FP_INVALID;
    uint8_t *p = fp_malloc((n + 1) * VAULT_VARINT_MAX);
    size_t len = vault_varint_put(p, (uint64_t)n);
    for (size_t i = 0; i < n; i++)
        len += vault_varint_put(p + len, i == 0 ? (uint64_t)ids[0]
                                                : (uint64_t)ids[i] - (uint64_t)ids[i - 1]);
    *out = p;
    *out_len = len;
    return FP_OK;
}

fp_err vault_ids_decode(const uint8_t *p, size_t len, int64_t **ids, size_t *n)
{
    fp_err rc = FP_OK;
    int64_t *list = NULL;
    size_t pos = 0;
    uint64_t count = 0;
    *ids = NULL;
    *n = 0;
    if (vault_varint_get(p, len, &pos, &count) != 0) {
        rc = FP_CORRUPT;
        goto out;
    }
    /* Every id takes at least one byte: a count the rest cannot hold is a lie,
     * and refusing it here bounds the allocation by the input size. */
    if (count > len - pos) {
        rc = FP_CORRUPT;
        goto out;
    }
    if (count > 0)
        list = fp_malloc((size_t)count * sizeof *list);
    uint64_t prev = 0;
    for (uint64_t i = 0; i < count; i++) {
        uint64_t d;
        if (vault_varint_get(p, len, &pos, &d) != 0 || d == 0 ||
            d > (uint64_t)INT64_MAX - prev) {
            rc = FP_CORRUPT;
            goto out;
        }
        prev += d;
        list[i] = (int64_t)prev;
    }
    if (pos != len) {
        rc = FP_CORRUPT;
        goto out;
    }
    *ids = list;
    *n = (size_t)count;
    list = NULL;
out:
    fp_free(list);
    return rc;
}

/* ---- sealing ----------------------------------------------------------- */

static void vault_ad(const uint8_t person_key[VAULT_KEY_BYTES], uint8_t ad[1 + VAULT_KEY_BYTES])
{
    ad[0] = VAULT_BLOB_VERSION;
    memcpy(ad + 1, person_key, VAULT_KEY_BYTES);
}

fp_err vault_seal(const vault *v, const uint8_t person_key[VAULT_KEY_BYTES], const int64_t *ids,
                  size_t n, uint8_t **blob, size_t *blob_len)
{
    fp_err rc;
    uint8_t *pt = NULL, *b = NULL;
    size_t pt_len = 0;
    uint8_t ad[1 + VAULT_KEY_BYTES];
    *blob = NULL;
    *blob_len = 0;

    rc = vault_ids_encode(ids, n, &pt, &pt_len);
    if (rc != FP_OK)
        goto out;
    size_t len = VAULT_BLOB_OVERHEAD + pt_len;
    b = fp_malloc(len);
    b[0] = VAULT_BLOB_VERSION;
    randombytes_buf(b + 1, VAULT_NONCE_BYTES);
    vault_ad(person_key, ad);
    unsigned long long clen = 0;
    if (crypto_aead_xchacha20poly1305_ietf_encrypt(b + 1 + VAULT_NONCE_BYTES, &clen, pt, pt_len,
                                                   ad, sizeof ad, NULL, b + 1, v->seal_key) != 0 ||
        clen != pt_len + VAULT_TAG_BYTES) {
        rc = FP_CRYPTO;
        goto out;
    }
    *blob = b;
    *blob_len = len;
    b = NULL;
out:
    if (pt) {
        sodium_memzero(pt, pt_len);
        fp_free(pt);
    }
    fp_free(b);
    return rc;
}

/* The additional data of a bytes blob: a domain byte no list blob's AD
 * starts with (theirs is VAULT_BLOB_VERSION followed by a person key of
 * fixed length), then the label. */
#define VAULT_BYTES_DOMAIN 0xB5
#define VAULT_LABEL_MAX 200

static fp_err vault_bytes_ad(const char *label, uint8_t ad[1 + VAULT_LABEL_MAX], size_t *ad_len)
{
    size_t n = label ? strlen(label) : 0;
    if (n > VAULT_LABEL_MAX)
        return FP_INVALID;
    ad[0] = VAULT_BYTES_DOMAIN;
    memcpy(ad + 1, label, n);
    *ad_len = 1 + n;
    return FP_OK;
}

fp_err vault_seal_bytes(const vault *v, const char *label, const void *pt, size_t len,
                        uint8_t **blob, size_t *blob_len)
{
    uint8_t ad[1 + VAULT_LABEL_MAX];
    size_t ad_len = 0;
    *blob = NULL;
    *blob_len = 0;
    fp_err rc = vault_bytes_ad(label, ad, &ad_len);
    if (rc != FP_OK)
        return rc;
    uint8_t *b = fp_malloc(VAULT_BLOB_OVERHEAD + len);
    b[0] = VAULT_BLOB_VERSION;
    randombytes_buf(b + 1, VAULT_NONCE_BYTES);
    unsigned long long clen = 0;
    if (crypto_aead_xchacha20poly1305_ietf_encrypt(b + 1 + VAULT_NONCE_BYTES, &clen, pt, len, ad,
                                                   ad_len, NULL, b + 1, v->seal_key) != 0 ||
        clen != len + VAULT_TAG_BYTES) {
        fp_free(b);
        return FP_CRYPTO;
    }
    *blob = b;
    *blob_len = VAULT_BLOB_OVERHEAD + len;
    return FP_OK;
}

fp_err vault_unseal_bytes(const vault *v, const char *label, const uint8_t *blob, size_t blob_len,
                          uint8_t **pt, size_t *len)
{
    uint8_t ad[1 + VAULT_LABEL_MAX];
    size_t ad_len = 0;
    *pt = NULL;
    *len = 0;
    fp_err rc = vault_bytes_ad(label, ad, &ad_len);
    if (rc != FP_OK)
        return rc;
    if (!blob || blob_len < VAULT_BLOB_OVERHEAD || blob[0] != VAULT_BLOB_VERSION)
        return FP_CORRUPT;
    size_t n = blob_len - VAULT_BLOB_OVERHEAD;
    uint8_t *out = fp_malloc(n + 1);
    unsigned long long mlen = 0;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(out, &mlen, NULL, blob + 1 + VAULT_NONCE_BYTES,
                                                   blob_len - 1 - VAULT_NONCE_BYTES, ad, ad_len,
                                                   blob + 1, v->seal_key) != 0 ||
        mlen != n) {
        fp_free(out);
        return FP_CORRUPT;
    }
    out[n] = 0;
    *pt = out;
    *len = n;
    return FP_OK;
}

fp_err vault_unseal(const vault *v, const uint8_t person_key[VAULT_KEY_BYTES], const uint8_t *blob,
                    size_t blob_len, int64_t **ids, size_t *n)
{
    fp_err rc = FP_OK;
    uint8_t *pt = NULL;
    size_t pt_len = 0;
    uint8_t ad[1 + VAULT_KEY_BYTES];
    *ids = NULL;
    *n = 0;

    if (!blob || blob_len < VAULT_BLOB_OVERHEAD || blob[0] != VAULT_BLOB_VERSION) {
        rc = FP_CORRUPT;
        goto out;
    }
    pt_len = blob_len - VAULT_BLOB_OVERHEAD;
    pt = fp_malloc(pt_len);
    vault_ad(person_key, ad);
    unsigned long long mlen = 0;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(pt, &mlen, NULL, blob + 1 + VAULT_NONCE_BYTES,
                                                   blob_len - 1 - VAULT_NONCE_BYTES, ad, sizeof ad,
                                                   blob + 1, v->seal_key) != 0 ||
        mlen != pt_len) {
        rc = FP_CORRUPT;
        goto out;
    }
    rc = vault_ids_decode(pt, pt_len, ids, n);
out:
    if (pt) {
        sodium_memzero(pt, pt_len);
        fp_free(pt);
    }
    return rc;
}

void vault_random_token(char *out, size_t nbytes)
{
    uint8_t raw[32];
    if (nbytes > sizeof raw)
        nbytes = sizeof raw;
    if (sodium_init() < 0) {
        /* libsodium cannot start: never hand out a predictable token. */
        fp_log(FP_LOG_ERROR, "vault_init_failed", NULL);
        abort();
    }
    randombytes_buf(raw, nbytes);
    sodium_bin2hex(out, 2 * nbytes + 1, raw, nbytes);
    sodium_memzero(raw, sizeof raw);
}

void vault_mac_hex(const vault *v, const char *msg, char out[VAULT_MAC_HEX + 1])
{
    uint8_t mac[crypto_auth_BYTES];
    crypto_auth(mac, (const unsigned char *)msg, strlen(msg), v->mac_key);
    sodium_bin2hex(out, VAULT_MAC_HEX + 1, mac, sizeof mac);
}

int vault_mac_check(const vault *v, const char *msg, const char *hex)
{
    char want[VAULT_MAC_HEX + 1];
    if (!hex || strlen(hex) != VAULT_MAC_HEX)
        return 0;
    vault_mac_hex(v, msg, want);
    return sodium_memcmp(want, hex, VAULT_MAC_HEX) == 0;
}

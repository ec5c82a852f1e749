/*
 * vault.h - FilmPicker's privacy layer (libsodium only).
 *
 * A server key (32 bytes) comes from FILMPICKER_SECRET_KEY (64 hex digits) or
 * from a key file, created with mode 0600 on first start when missing. Two
 * sub-keys are derived from it (crypto_kdf): one for keyed hashes, one for
 * sealing.
 *   - vault_person_key(): crypto_generichash keyed hash of source + NUL +
 *     canonical username, the only form in which a person reaches storage.
 *   - vault_seal()/vault_unseal(): a sorted list of catalogue ids sealed with
 *     XChaCha20-Poly1305 (random nonce), the person key as associated data, so
 *     a blob moved to another person's row fails to open (FP_CORRUPT).
 *
 * Key file: 64 hex digits (the same text FILMPICKER_SECRET_KEY takes, so a key
 * can move between the two), optionally followed by one newline. Hex rather
 * than raw bytes so that an operator can back it up or paste it into a secret
 * store without binary-safe tooling. A missing file is created atomically with
 * mode 0600 (written under a temporary name opened O_CREAT|O_EXCL, then
 * link()ed into place, so two processes starting at once agree on one key).
 * An existing key file that grants any read or write permission to group or
 * others is refused (FP_INVALID, with a log line naming the file and mode).
 *
 * Sub-keys: crypto_kdf_derive_from_key with context "FPvault1", sub-key id 1
 * for person keys, 2 for sealing, 3 for the CSRF MAC.
 *
 * Envelope: the sub-keys derive from a data key, not from the server key. The
 * server key only wraps the data key (vault_kek: a key-encryption key), and
 * the wrapped data key is stored in the database (datakey.h). So a server key
 * can be changed without touching any stored row (vault_rewrap), and a server
 * key that is not the database's fails to unwrap (FP_KEY_MISMATCH) instead of
 * silently reading nothing. A database from before wrapped keys has its rows
 * sealed under sub-keys of the server key itself: its data key *is* that
 * server key (vault_adopt_server_key), wrapped, so nothing stored changes.
 *
 * Wrapped data key layout (VAULT_WRAPPED_VERSION 1, VAULT_WRAPPED_BYTES):
 *   1 version byte | 24-byte random nonce | 32-byte key sealed + 16-byte tag
 * sealed with XChaCha20-Poly1305 under the wrapping key, which is
 * crypto_kdf_derive_from_key(id 1, context "FPwrap01") of the server key; the
 * associated data is the version byte and the text "FilmPicker data key".
 * vault_open() (kept for tests and tools) derives the sub-keys from the
 * server key directly, as a database from before wrapped keys expects.
 *
 * Sealed blob layout (VAULT_BLOB_VERSION 1):
 *   1 version byte | 24-byte random nonce | ciphertext + 16-byte tag
 * The associated data is the version byte followed by the 32-byte person key,
 * so neither the version nor the owner can be swapped without detection.
 * The plaintext is vault_ids_encode()'s output.
 */
#ifndef FP_VAULT_H
#define FP_VAULT_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define VAULT_KEY_BYTES 32

typedef struct vault vault;

/* hex_key: 64 hex digits, or NULL to use key_file (created if missing).
 * The sub-keys derive from this key itself (no data key). Caller frees *out
 * with vault_free. */
fp_err vault_open(const char *hex_key, const char *key_file, vault **out) FP_WARN_UNUSED;
void vault_free(vault **v);

/* ---- the server key as a key-encryption key ------------------------------ */

typedef struct vault_kek vault_kek;

#define VAULT_KEK_CREATE 1 /* create key_file with a fresh key when it is missing */

/* The server key: hex_key (64 hex digits), or NULL to read key_file (created
 * when missing only with VAULT_KEK_CREATE, else FP_NOT_FOUND). The same
 * checks as vault_open (mode of the file, its content). Caller frees *out
 * with vault_kek_free. */
fp_err vault_kek_open(const char *hex_key, const char *key_file, int flags,
                      vault_kek **out) FP_WARN_UNUSED;
void vault_kek_free(vault_kek **k);
/* 1 when vault_kek_open created the key file (a brand-new key). */
int vault_kek_created(const vault_kek *k);

#define VAULT_WRAPPED_VERSION 1
#define VAULT_WRAPPED_BYTES (1 + 24 + VAULT_KEY_BYTES + 16)

/* A new random data key: *out is the vault of its sub-keys and wrapped its
 * form wrapped under k. Caller frees *out. */
fp_err vault_create(const vault_kek *k, vault **out,
                    uint8_t wrapped[VAULT_WRAPPED_BYTES]) FP_WARN_UNUSED;
/* The server key itself as the data key (a database sealed before data keys
 * existed): *out derives its sub-keys from it, as vault_open does, and
 * wrapped is it wrapped under k. Caller frees *out. */
fp_err vault_adopt_server_key(const vault_kek *k, vault **out,
                              uint8_t wrapped[VAULT_WRAPPED_BYTES]) FP_WARN_UNUSED;
/* The vault of a wrapped data key. FP_KEY_MISMATCH when k is not the key it
 * was wrapped under (or the blob was altered), FP_CORRUPT when it is not a
 * wrapped key at all (length, version). Caller frees *out. */
fp_err vault_unwrap(const vault_kek *k, const uint8_t *wrapped, size_t len,
                    vault **out) FP_WARN_UNUSED;
/* The same data key wrapped under to instead of from (re-keying). Errors as
 * vault_unwrap for from. */
fp_err vault_rewrap(const vault_kek *from, const vault_kek *to, const uint8_t *wrapped,
                    size_t len, uint8_t out[VAULT_WRAPPED_BYTES]) FP_WARN_UNUSED;

/* out = keyed hash of (source, username). source is e.g. "lb". */
void vault_person_key(const vault *v, const char *source, const char *username,
                      uint8_t out[VAULT_KEY_BYTES]);

/* ids must be sorted ascending without duplicates. Caller frees *blob. */
fp_err vault_seal(const vault *v, const uint8_t person_key[VAULT_KEY_BYTES], const int64_t *ids,
                  size_t n, uint8_t **blob, size_t *blob_len) FP_WARN_UNUSED;
/* Caller frees *ids. FP_CORRUPT when the blob fails authentication or decoding. */
fp_err vault_unseal(const vault *v, const uint8_t person_key[VAULT_KEY_BYTES], const uint8_t *blob,
                    size_t blob_len, int64_t **ids, size_t *n) FP_WARN_UNUSED;

/* Seals any bytes (a queued job naming a person, a shared job or session
 * document) for `label`, which says what they are ("job", "sess:<id>"...):
 * a blob sealed for one label does not open for another, nor as a list.
 * Caller frees *blob. */
fp_err vault_seal_bytes(const vault *v, const char *label, const void *pt, size_t len,
                        uint8_t **blob, size_t *blob_len) FP_WARN_UNUSED;
/* Caller frees *pt (NUL-terminated beyond *len). FP_CORRUPT when the blob
 * fails authentication (wrong label, key or bytes). */
fp_err vault_unseal_bytes(const vault *v, const char *label, const uint8_t *blob, size_t blob_len,
                          uint8_t **pt, size_t *len) FP_WARN_UNUSED;

#define VAULT_MAC_HEX 64
/* HMAC-SHA-512-256 (crypto_auth, its own derived key) of msg as hex: the
 * CSRF token of a client id. */
void vault_mac_hex(const vault *v, const char *msg, char out[VAULT_MAC_HEX + 1]);
/* 1 when hex is msg's MAC (constant-time comparison). */
int vault_mac_check(const vault *v, const char *msg, const char *hex);

/* Random hex token of 2*nbytes characters (nbytes <= 32, larger values are
 * clamped to 32) into out, which must hold 2*nbytes+1 bytes (NUL included). */
void vault_random_token(char *out, size_t nbytes);

#define VAULT_BLOB_VERSION 1
/* Bytes a sealed blob adds around its plaintext: version, nonce, tag. */
#define VAULT_BLOB_OVERHEAD (1 + 24 + 16)

/*
 * The plaintext codec, public so that tests can build hostile plaintexts:
 * unsigned LEB128 varints, first the count, then the first id, then each
 * difference to the previous id. ids must be >= 1, ascending, without
 * duplicates (FP_INVALID otherwise). Caller frees *out.
 */
fp_err vault_ids_encode(const int64_t *ids, size_t n, uint8_t **out, size_t *out_len) FP_WARN_UNUSED;
/* Strict inverse of vault_ids_encode: FP_CORRUPT on a truncated or overlong
 * varint, a count larger than the bytes could hold, a zero difference, an id
 * past INT64_MAX or trailing bytes. Never reads past p+len. Caller frees *ids
 * (NULL when *n is 0). */
fp_err vault_ids_decode(const uint8_t *p, size_t len, int64_t **ids, size_t *n) FP_WARN_UNUSED;

#endif

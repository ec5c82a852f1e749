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
 */
#ifndef FP_VAULT_H
#define FP_VAULT_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define VAULT_KEY_BYTES 32

typedef struct vault vault;

/* hex_key: 64 hex digits, or NULL to use key_file (created if missing).
 * Caller frees *out with vault_free. */
fp_err vault_open(const char *hex_key, const char *key_file, vault **out) FP_WARN_UNUSED;
void vault_free(vault **v);

/* out = keyed hash of (source, username). source is e.g. "lb". */
void vault_person_key(const vault *v, const char *source, const char *username,
                      uint8_t out[VAULT_KEY_BYTES]);

/* ids must be sorted ascending without duplicates. Caller frees *blob. */
fp_err vault_seal(const vault *v, const uint8_t person_key[VAULT_KEY_BYTES], const int64_t *ids,
                  size_t n, uint8_t **blob, size_t *blob_len) FP_WARN_UNUSED;
/* Caller frees *ids. FP_CORRUPT when the blob fails authentication or decoding. */
fp_err vault_unseal(const vault *v, const uint8_t person_key[VAULT_KEY_BYTES], const uint8_t *blob,
                    size_t blob_len, int64_t **ids, size_t *n) FP_WARN_UNUSED;

/* Random hex token of 2*nbytes characters (nbytes <= 32) into out. */
void vault_random_token(char *out, size_t nbytes);

#endif

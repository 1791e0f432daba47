/*
 * aead.h - the two primitives the age payload needs from a crypto library:
 * one ChaCha20-Poly1305 seal/open of a buffer (12-byte nonce, no AAD, 16-byte
 * tag) and a streaming BLAKE2b-512.
 *
 * Two implementations, exactly one per binary: aead_openssl.c (OpenSSL 3's
 * libcrypto) and aead_none.c (builds without libcrypto - the Windows cross
 * build - where every call fails cleanly).  Nothing else in the engine knows
 * which library is behind these.
 *
 * Contexts are not thread-safe: each thread that seals or opens owns one
 * (creating one costs a few microseconds; a share of chunks reuses it).
 * Not part of the engine's contract; Cython never sees it.
 */
#ifndef NTDSB_AEAD_H
#define NTDSB_AEAD_H

#include <stddef.h>
#include <stdint.h>

#include "ntdsb_engine.h"

#define NTDSB_AEAD_KEY_SIZE   32u
#define NTDSB_AEAD_NONCE_SIZE 12u
#define NTDSB_AEAD_TAG_SIZE   16u

/* Results of ntdsb_aead_seal / ntdsb_aead_open besides 0 (success). */
#define NTDSB_AEAD_AUTH  1    /* open: the tag does not match */
#define NTDSB_AEAD_LIB  (-1)  /* the library failed (or is absent) */

/* 1 when this build has the primitives. */
int ntdsb_aead_available(void);

/* NTDSB_OK, or NTDSB_E_CONFIG with *err saying the build lacks a cipher
 * (digest: the same for BLAKE2b-512). */
int ntdsb_aead_require(ntdsb_error *err);
int ntdsb_digest_require(ntdsb_error *err);

/* A ChaCha20-Poly1305 context bound to one key and one direction.  NULL when
 * out of memory or unavailable. */
typedef struct ntdsb_aead ntdsb_aead;
ntdsb_aead *ntdsb_aead_new(const uint8_t key[NTDSB_AEAD_KEY_SIZE], int encrypt);
void ntdsb_aead_free(ntdsb_aead *a);

/* out (len + 16 bytes) = ciphertext || tag.  len <= INT_MAX.  0 or NTDSB_AEAD_LIB. */
int ntdsb_aead_seal(ntdsb_aead *a, const uint8_t nonce[NTDSB_AEAD_NONCE_SIZE],
                    const uint8_t *in, size_t len, uint8_t *out);
/* in = ciphertext || tag (len >= 16); out gets len - 16 bytes, meaningful only
 * when this returns 0.  NTDSB_AEAD_AUTH or NTDSB_AEAD_LIB otherwise. */
int ntdsb_aead_open(ntdsb_aead *a, const uint8_t nonce[NTDSB_AEAD_NONCE_SIZE],
                    const uint8_t *in, size_t len, uint8_t *out);

/* Streaming BLAKE2b-512 (64-byte digest, no key).  NULL when out of memory or
 * unavailable; update/final return 0 or NTDSB_AEAD_LIB. */
typedef struct ntdsb_digest ntdsb_digest;
ntdsb_digest *ntdsb_digest_new(void);
int ntdsb_digest_update(ntdsb_digest *d, const void *buf, size_t len);
int ntdsb_digest_final(ntdsb_digest *d, uint8_t out[64]);
void ntdsb_digest_free(ntdsb_digest *d);

#endif /* NTDSB_AEAD_H */

/*
 * aead_none.c - aead.h for a build without libcrypto (the Windows cross
 * build): nothing can be sealed, opened or digested, and every entry point
 * says so cleanly instead of the build failing to link.  The age functions
 * check ntdsb_aead_require / ntdsb_digest_require first, so the caller sees
 * NTDSB_E_CONFIG with the reason, never a half-done operation.
 */
#include <stddef.h>

#include "aead.h"
#include "engine_internal.h" /* ntdsb_err_set */

int ntdsb_aead_available(void)
{
    return 0;
}

int ntdsb_aead_require(ntdsb_error *err)
{
    ntdsb_err_set(err, NTDSB_E_CONFIG, NULL, 0, 0,
                  "this build has no ChaCha20-Poly1305 (built without libcrypto)");
    return NTDSB_E_CONFIG;
}

int ntdsb_digest_require(ntdsb_error *err)
{
    ntdsb_err_set(err, NTDSB_E_CONFIG, NULL, 0, 0,
                  "this build has no BLAKE2b-512 (built without libcrypto)");
    return NTDSB_E_CONFIG;
}

ntdsb_aead *ntdsb_aead_new(const uint8_t key[NTDSB_AEAD_KEY_SIZE], int encrypt)
{
    (void)key;
    (void)encrypt;
    return NULL;
}

void ntdsb_aead_free(ntdsb_aead *a)
{
    (void)a;
}

int ntdsb_aead_seal(ntdsb_aead *a, const uint8_t nonce[NTDSB_AEAD_NONCE_SIZE],
                    const uint8_t *in, size_t len, uint8_t *out)
{
    (void)a;
    (void)nonce;
    (void)in;
    (void)len;
    (void)out;
    return NTDSB_AEAD_LIB;
}

int ntdsb_aead_open(ntdsb_aead *a, const uint8_t nonce[NTDSB_AEAD_NONCE_SIZE],
                    const uint8_t *in, size_t len, uint8_t *out)
{
    (void)a;
    (void)nonce;
    (void)in;
    (void)len;
    (void)out;
    return NTDSB_AEAD_LIB;
}

ntdsb_digest *ntdsb_digest_new(void)
{
    return NULL;
}

int ntdsb_digest_update(ntdsb_digest *d, const void *buf, size_t len)
{
    (void)d;
    (void)buf;
    (void)len;
    return NTDSB_AEAD_LIB;
}

int ntdsb_digest_final(ntdsb_digest *d, uint8_t out[64])
{
    (void)d;
    (void)out;
    return NTDSB_AEAD_LIB;
}

void ntdsb_digest_free(ntdsb_digest *d)
{
    (void)d;
}

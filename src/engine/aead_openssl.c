/*
 * aead_openssl.c - aead.h over OpenSSL 3's libcrypto (EVP).
 *
 * The cipher is fetched once per context and the key set once: each chunk
 * then only re-initialises the nonce, which resets the Poly1305 state, so a
 * share of chunks costs one fetch and one key setup however long it is.
 */
#include <limits.h>
#include <stdlib.h>

#include <openssl/evp.h>
#include <openssl/opensslv.h>

/* EVP_CIPHER_fetch and the *_ex2 inits are OpenSSL 3's (setup.py asks
 * pkg-config for libcrypto >= 3.0 too). */
#if !defined(OPENSSL_VERSION_MAJOR) || OPENSSL_VERSION_MAJOR < 3
#  error "aead_openssl.c needs OpenSSL 3 (libcrypto >= 3.0)"
#endif

#include "aead.h"

struct ntdsb_aead {
    EVP_CIPHER *cipher; /* fetched: no implicit fetch on every init */
    EVP_CIPHER_CTX *ctx;
    int encrypt;
};

struct ntdsb_digest {
    EVP_MD *md;
    EVP_MD_CTX *ctx;
};

int ntdsb_aead_available(void)
{
    return 1;
}

int ntdsb_aead_require(ntdsb_error *err)
{
    (void)err;
    return NTDSB_OK;
}

int ntdsb_digest_require(ntdsb_error *err)
{
    (void)err;
    return NTDSB_OK;
}

ntdsb_aead *ntdsb_aead_new(const uint8_t key[NTDSB_AEAD_KEY_SIZE], int encrypt)
{
    ntdsb_aead *a = calloc(1, sizeof *a);
    if (a == NULL)
        return NULL;
    a->encrypt = encrypt ? 1 : 0;
    a->cipher = EVP_CIPHER_fetch(NULL, "ChaCha20-Poly1305", NULL);
    a->ctx = EVP_CIPHER_CTX_new();
    /* The key now; the nonce with each chunk. */
    if (a->cipher == NULL || a->ctx == NULL ||
        EVP_CipherInit_ex2(a->ctx, a->cipher, key, NULL, a->encrypt, NULL) != 1) {
        ntdsb_aead_free(a);
        return NULL;
    }
    return a;
}

void ntdsb_aead_free(ntdsb_aead *a)
{
    if (a == NULL)
        return;
    EVP_CIPHER_CTX_free(a->ctx);
    EVP_CIPHER_free(a->cipher);
    free(a);
}

int ntdsb_aead_seal(ntdsb_aead *a, const uint8_t nonce[NTDSB_AEAD_NONCE_SIZE],
                    const uint8_t *in, size_t len, uint8_t *out)
{
    int n = 0, fin = 0;

    if (!a->encrypt || len > INT_MAX ||
        EVP_CipherInit_ex2(a->ctx, NULL, NULL, nonce, 1, NULL) != 1)
        return NTDSB_AEAD_LIB;
    /* An empty chunk (the empty plaintext) is just a tag: no update at all. */
    if (len > 0 && EVP_EncryptUpdate(a->ctx, out, &n, in, (int)len) != 1)
        return NTDSB_AEAD_LIB;
    if (EVP_EncryptFinal_ex(a->ctx, out + n, &fin) != 1 || (size_t)n + (size_t)fin != len)
        return NTDSB_AEAD_LIB;
    if (EVP_CIPHER_CTX_ctrl(a->ctx, EVP_CTRL_AEAD_GET_TAG, NTDSB_AEAD_TAG_SIZE, out + len) != 1)
        return NTDSB_AEAD_LIB;
    return 0;
}

int ntdsb_aead_open(ntdsb_aead *a, const uint8_t nonce[NTDSB_AEAD_NONCE_SIZE],
                    const uint8_t *in, size_t len, uint8_t *out)
{
    size_t clen;
    int n = 0, fin = 0;

    if (a->encrypt || len < NTDSB_AEAD_TAG_SIZE || len - NTDSB_AEAD_TAG_SIZE > INT_MAX ||
        EVP_CipherInit_ex2(a->ctx, NULL, NULL, nonce, 0, NULL) != 1)
        return NTDSB_AEAD_LIB;
    clen = len - NTDSB_AEAD_TAG_SIZE;
    if (clen > 0 && EVP_DecryptUpdate(a->ctx, out, &n, in, (int)clen) != 1)
        return NTDSB_AEAD_LIB;
    /* The ctrl takes a non-const pointer but only copies the tag. */
    if (EVP_CIPHER_CTX_ctrl(a->ctx, EVP_CTRL_AEAD_SET_TAG, NTDSB_AEAD_TAG_SIZE,
                            (void *)(in + clen)) != 1)
        return NTDSB_AEAD_LIB;
    /* Final is where the tag is compared; a mismatch is the input's fault. */
    if (EVP_DecryptFinal_ex(a->ctx, out + n, &fin) != 1)
        return NTDSB_AEAD_AUTH;
    return (size_t)n + (size_t)fin == clen ? 0 : NTDSB_AEAD_LIB;
}

ntdsb_digest *ntdsb_digest_new(void)
{
    ntdsb_digest *d = calloc(1, sizeof *d);
    if (d == NULL)
        return NULL;
    d->md = EVP_MD_fetch(NULL, "BLAKE2B-512", NULL);
    d->ctx = EVP_MD_CTX_new();
    if (d->md == NULL || d->ctx == NULL || EVP_DigestInit_ex2(d->ctx, d->md, NULL) != 1) {
        ntdsb_digest_free(d);
        return NULL;
    }
    return d;
}

int ntdsb_digest_update(ntdsb_digest *d, const void *buf, size_t len)
{
    if (len == 0)
        return 0;
    return EVP_DigestUpdate(d->ctx, buf, len) == 1 ? 0 : NTDSB_AEAD_LIB;
}

int ntdsb_digest_final(ntdsb_digest *d, uint8_t out[64])
{
    unsigned int n = 0;
    if (EVP_DigestFinal_ex(d->ctx, out, &n) != 1 || n != 64)
        return NTDSB_AEAD_LIB;
    return 0;
}

void ntdsb_digest_free(ntdsb_digest *d)
{
    if (d == NULL)
        return;
    EVP_MD_CTX_free(d->ctx);
    EVP_MD_free(d->md);
    free(d);
}

/*
 * age_out.c - the output stage (ntdsb_out_*): what a backup writes, sealed as
 * an age payload and/or digested, handed to the caller's sink in order.
 *
 * Plaintext collects in a batch of BATCH_CHUNKS chunks (4 MiB).  A full batch
 * is sealed only when one more byte arrives, so every chunk it holds is known
 * not to be the last and the final flag always lands on the right chunk (the
 * one sealed by ntdsb_out_finish).  Each batch is sealed over the stage's
 * threads (ntdsb_age_seal) and given to the sink in one put.  The digest is of
 * the stored bytes: exactly what the sink received, raw header bytes included,
 * so a signature covers the file as written.
 *
 * The first failure is kept in the stage and every later call fails with it,
 * so the backup pipeline can use ntdsb_out_write as its sink callback and read
 * the reason afterwards.
 */
#include <stdlib.h>
#include <string.h>

#include "aead.h"
#include "engine_internal.h"
#include "ntdsb_age.h"

#define BATCH_CHUNKS 64u
#define BATCH_PLAIN  ((size_t)BATCH_CHUNKS * NTDSB_AGE_CHUNK_SIZE)
#define BATCH_SEALED ((size_t)BATCH_CHUNKS * NTDSB_AGE_SEALED_SIZE)

struct ntdsb_out {
    ntdsb_sink down;
    int sealing;
    uint8_t key[NTDSB_AGE_KEY_SIZE];
    ntdsb_digest *digest;   /* NULL: not wanted (or already taken) */
    int digest_plain;       /* NTDSB_DIGEST_PLAIN: of the plaintext, not the stored bytes */
    unsigned threads;
    uint8_t *plain;         /* BATCH_PLAIN bytes (sealing only) */
    uint8_t *sealed;        /* BATCH_SEALED bytes (sealing only) */
    size_t held;            /* plaintext bytes in `plain` */
    uint64_t next_index;    /* age chunk number of plain[0] */
    uint64_t plain_bytes, stored_bytes;
    int finished;
    int failed;
    ntdsb_error err;        /* the first failure */
};

/* Keep e as the stage's failure (the first one only) and return its status. */
static int fail(ntdsb_out *o, const ntdsb_error *e)
{
    if (!o->failed) {
        o->failed = 1;
        o->err = *e;
    }
    return o->err.status;
}

/* The stage's failure, copied to the caller's record (if any). */
static int failed_rc(const ntdsb_out *o, ntdsb_error *err)
{
    if (err != NULL)
        *err = o->err;
    return o->err.status;
}

static int digest_update(ntdsb_out *o, const void *buf, size_t len)
{
    ntdsb_error e;

    if (o->digest != NULL && ntdsb_digest_update(o->digest, buf, len) != 0) {
        ntdsb_err_set(&e, NTDSB_E_CONFIG, "EVP_DigestUpdate", 0, o->stored_bytes,
                      "BLAKE2b-512 failed in the crypto library");
        return fail(o, &e);
    }
    return NTDSB_OK;
}

/* Give stored bytes to the sink, digested first when the digest is of the
 * stored bytes (they are the file). */
static int put_down(ntdsb_out *o, const void *buf, size_t len)
{
    ntdsb_error e;
    int sys_errno = 0, rc;

    if (len == 0)
        return NTDSB_OK;
    if (!o->digest_plain && digest_update(o, buf, len) != NTDSB_OK)
        return o->err.status;
    rc = ntdsb_sink_put(&o->down, buf, len, &sys_errno);
    if (rc == NTDSB_E_WRITE) {
        char text[128];
        ntdsb_err_set(&e, rc, "write", 0, o->stored_bytes,
                      "writing the output failed at byte %llu: %s",
                      (unsigned long long)o->stored_bytes,
                      ntdsb_strerror(sys_errno, text, sizeof text));
        e.sys_errno = sys_errno;
        return fail(o, &e);
    }
    if (rc != NTDSB_OK) {
        ntdsb_err_set(&e, rc, NULL, 0, o->stored_bytes,
                      "the output callback failed at byte %llu",
                      (unsigned long long)o->stored_bytes);
        return fail(o, &e);
    }
    o->stored_bytes += len;
    return NTDSB_OK;
}

/* Seal what is held (final: the payload's last chunks) and hand it down. */
static int seal_held(ntdsb_out *o, int final)
{
    ntdsb_error e;
    size_t n = 0;
    int rc;

    ntdsb_err_clear(&e);
    rc = ntdsb_age_seal(o->key, o->next_index, o->plain, o->held, final, o->sealed, &n,
                        o->threads, &e);
    if (rc != NTDSB_OK)
        return fail(o, &e);
    o->next_index += o->held / NTDSB_AGE_CHUNK_SIZE;
    o->held = 0;
    return put_down(o, o->sealed, n);
}

int ntdsb_out_open(ntdsb_out **out, const ntdsb_sink *down, const uint8_t *payload_key,
                   int want_digest, unsigned threads, ntdsb_error *err)
{
    ntdsb_out *o;
    int rc;

    if (out == NULL) {
        ntdsb_err_set(err, NTDSB_E_CONFIG, NULL, 0, 0, "ntdsb_out_open: out is NULL");
        return NTDSB_E_CONFIG;
    }
    *out = NULL;
    if ((rc = ntdsb_sink_check(down, err)) != NTDSB_OK)
        return rc;
    if (payload_key != NULL && (rc = ntdsb_aead_require(err)) != NTDSB_OK)
        return rc;
    if (want_digest && (rc = ntdsb_digest_require(err)) != NTDSB_OK)
        return rc;
    o = calloc(1, sizeof *o);
    if (o == NULL)
        return ntdsb_err_nomem(err, "malloc", "the output stage");
    o->down = *down;
    o->threads = threads;
    ntdsb_err_clear(&o->err);
    if (payload_key != NULL) {
        o->sealing = 1;
        memcpy(o->key, payload_key, sizeof o->key);
        o->plain = ntdsb_alloc_aligned(BATCH_PLAIN);
        o->sealed = ntdsb_alloc_aligned(BATCH_SEALED);
        if (o->plain == NULL || o->sealed == NULL) {
            ntdsb_out_free(o);
            return ntdsb_err_nomem(err, "malloc", "the output stage's batch");
        }
    }
    o->digest_plain = want_digest == NTDSB_DIGEST_PLAIN;
    if (want_digest && (o->digest = ntdsb_digest_new()) == NULL) {
        ntdsb_out_free(o);
        return ntdsb_err_nomem(err, "EVP_MD_CTX_new", "a BLAKE2b-512 state");
    }
    *out = o;
    return NTDSB_OK;
}

int ntdsb_out_raw(ntdsb_out *o, const void *buf, size_t len, ntdsb_error *err)
{
    if (o->failed)
        return failed_rc(o, err);
    if (o->finished || (o->sealing && o->plain_bytes > 0)) {
        /* Raw bytes after sealed ones would land inside the payload. */
        ntdsb_error e;
        ntdsb_err_set(&e, NTDSB_E_CONFIG, NULL, 0, o->stored_bytes,
                      "ntdsb_out_raw: raw bytes after the payload started (or the stage "
                      "finished)");
        fail(o, &e);
        return failed_rc(o, err);
    }
    if (put_down(o, buf, len) != NTDSB_OK)
        return failed_rc(o, err);
    return NTDSB_OK;
}

int ntdsb_out_write(void *stage, const void *buf, size_t len)
{
    ntdsb_out *o = stage;
    const uint8_t *p = buf;

    if (o->failed)
        return -1;
    if (o->finished) {
        ntdsb_error e;
        ntdsb_err_set(&e, NTDSB_E_CONFIG, NULL, 0, o->stored_bytes,
                      "ntdsb_out_write after ntdsb_out_finish");
        fail(o, &e);
        return -1;
    }
    if (o->digest_plain && digest_update(o, buf, len) != NTDSB_OK)
        return -1;
    if (!o->sealing) {
        if (put_down(o, buf, len) != NTDSB_OK)
            return -1;
        o->plain_bytes += len;
        return 0;
    }
    while (len > 0) {
        size_t take;
        /* A full batch followed by more bytes: none of its chunks is final. */
        if (o->held == BATCH_PLAIN && seal_held(o, 0) != NTDSB_OK)
            return -1;
        take = BATCH_PLAIN - o->held;
        if (take > len)
            take = len;
        memcpy(o->plain + o->held, p, take);
        o->held += take;
        o->plain_bytes += take;
        p += take;
        len -= take;
    }
    return 0;
}

const ntdsb_error *ntdsb_out_error(const ntdsb_out *o)
{
    return &o->err;
}

uint64_t ntdsb_out_plain_bytes(const ntdsb_out *o)
{
    return o->plain_bytes;
}

uint64_t ntdsb_out_stored_bytes(const ntdsb_out *o)
{
    return o->stored_bytes;
}

int ntdsb_out_finish(ntdsb_out *o, uint8_t digest[NTDSB_DIGEST_SIZE], ntdsb_error *err)
{
    ntdsb_error e;

    if (o->failed)
        return failed_rc(o, err);
    if (o->finished) {
        ntdsb_err_set(&e, NTDSB_E_CONFIG, NULL, 0, o->stored_bytes,
                      "ntdsb_out_finish called twice");
        fail(o, &e);
        return failed_rc(o, err);
    }
    o->finished = 1;
    /* The held chunks end the payload (an empty plaintext: one empty chunk 0). */
    if (o->sealing && seal_held(o, 1) != NTDSB_OK)
        return failed_rc(o, err);
    if (o->digest != NULL && digest != NULL && ntdsb_digest_final(o->digest, digest) != 0) {
        ntdsb_err_set(&e, NTDSB_E_CONFIG, "EVP_DigestFinal_ex", 0, o->stored_bytes,
                      "BLAKE2b-512 failed in the crypto library");
        fail(o, &e);
        return failed_rc(o, err);
    }
    if (err != NULL)
        ntdsb_err_clear(err);
    return NTDSB_OK;
}

int ntdsb_out_take_digest(ntdsb_out *o, uint8_t digest[NTDSB_DIGEST_SIZE], ntdsb_error *err)
{
    ntdsb_error e;

    if (o->failed)
        return failed_rc(o, err);
    if (o->digest == NULL) {
        ntdsb_err_set(&e, NTDSB_E_CONFIG, NULL, 0, o->stored_bytes,
                      "ntdsb_out_take_digest: no digest wanted, or it was taken");
        fail(o, &e);
        return failed_rc(o, err);
    }
    if (ntdsb_digest_final(o->digest, digest) != 0) {
        ntdsb_err_set(&e, NTDSB_E_CONFIG, "EVP_DigestFinal_ex", 0, o->stored_bytes,
                      "BLAKE2b-512 failed in the crypto library");
        fail(o, &e);
        return failed_rc(o, err);
    }
    /* What follows (the signature over this digest) is not digested. */
    ntdsb_digest_free(o->digest);
    o->digest = NULL;
    if (err != NULL)
        ntdsb_err_clear(err);
    return NTDSB_OK;
}

void ntdsb_out_free(ntdsb_out *o)
{
    if (o == NULL)
        return;
    ntdsb_digest_free(o->digest);
    ntdsb_free_aligned(o->plain);
    ntdsb_free_aligned(o->sealed);
    /* The key is a secret: do not leave it in freed memory. */
    {
        volatile uint8_t *k = o->key;
        size_t i;
        for (i = 0; i < sizeof o->key; i++)
            k[i] = 0;
    }
    free(o);
}

/*
 * age_chunks.c - sealing and opening runs of age STREAM chunks
 * (ntdsb_age_seal, ntdsb_age_open), the payload size check
 * (ntdsb_age_plain_size) and ntdsb_age_available.
 *
 * A chunk's nonce depends only on its index and on whether it is final, so
 * the chunks of a run are independent: the run is cut into contiguous shares
 * of GRAIN chunks that up to `threads` threads (the calling thread one of
 * them) claim in order.  The lowest failing chunk over all threads is the one
 * reported, whatever the timing (see worker_main).  Threads are started per
 * call: a 64 KiB chunk costs some 30-50 us to seal, so a batch of dozens of
 * chunks dwarfs a thread start.
 */
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "aead.h"
#include "engine_internal.h"
#include "ntdsb_age.h"

/* Below this many chunks a run is done on the calling thread: a thread start
 * would cost more than it saves. */
#define SERIAL_BELOW 4u

int ntdsb_age_available(void)
{
    return ntdsb_aead_available();
}

/* nonce = index as 11 bytes big-endian || flag. */
static void make_nonce(uint8_t nonce[NTDSB_AEAD_NONCE_SIZE], uint64_t index, int final)
{
    int i;
    memset(nonce, 0, NTDSB_AEAD_NONCE_SIZE);
    for (i = 0; i < 8; i++)
        nonce[10 - i] = (uint8_t)(index >> (8 * i));
    nonce[11] = final ? 1 : 0;
}

static int corrupt_at(ntdsb_error *err, uint64_t index, const char *what)
{
    uint64_t off = index * (uint64_t)NTDSB_AGE_CHUNK_SIZE;
    ntdsb_err_set(err, NTDSB_E_CORRUPT, NULL, index, off,
                  "age chunk %llu (plaintext offset %llu): %s", (unsigned long long)index,
                  (unsigned long long)off, what);
    return NTDSB_E_CORRUPT;
}

/* ---- the threads of a run ------------------------------------------------------- */

/* Chunks a thread claims at a time: 256 KiB, about 100 us of work, so the
 * claiming (one atomic add) costs nothing and the last claims even out. */
#define GRAIN 4u

typedef struct run {
    const uint8_t *key;
    int encrypt;
    uint64_t first_index;   /* index of chunk 0 of the run */
    uint64_t nchunks;       /* of the run: the last one may be final */
    int final;
    const uint8_t *in;      /* the run's input and output, chunk 0 at offset 0 */
    uint8_t *out;
    size_t in_len;          /* of the run */
    atomic_uint_fast64_t next;     /* next chunk to claim */
    atomic_uint_fast64_t fail_at;  /* lowest failing chunk seen (nchunks: none) */
} run;

typedef struct worker {
    alignas(NTDSB_CACHE_LINE) run *r;
    int rc;                 /* its first failure (the lowest chunk it failed) */
    ntdsb_error err;
    int started;            /* on its own thread (else run by the caller) */
    ntdsb_thread thread;
} worker;

/* Seal or open chunk k of the run with a.  NTDSB_OK or the failure in *e. */
static int do_chunk(const run *r, ntdsb_aead *a, uint64_t k, ntdsb_error *e)
{
    const size_t in_step = r->encrypt ? NTDSB_AGE_CHUNK_SIZE : NTDSB_AGE_SEALED_SIZE;
    const size_t out_step = r->encrypt ? NTDSB_AGE_SEALED_SIZE : NTDSB_AGE_CHUNK_SIZE;
    const size_t at = (size_t)k * in_step;
    const size_t n = k + 1 == r->nchunks ? r->in_len - at : in_step;
    const uint64_t index = r->first_index + k;
    uint8_t nonce[NTDSB_AEAD_NONCE_SIZE];
    int rc;

    make_nonce(nonce, index, r->final && k + 1 == r->nchunks);
    if (r->encrypt)
        rc = ntdsb_aead_seal(a, nonce, r->in + at, n, r->out + (size_t)k * out_step);
    else
        rc = ntdsb_aead_open(a, nonce, r->in + at, n, r->out + (size_t)k * out_step);
    if (rc == 0)
        return NTDSB_OK;
    if (rc == NTDSB_AEAD_AUTH)
        return corrupt_at(e, index, "authentication failed");
    ntdsb_err_set(e, NTDSB_E_CONFIG, r->encrypt ? "EVP_EncryptUpdate" : "EVP_DecryptUpdate",
                  index, index * (uint64_t)NTDSB_AGE_CHUNK_SIZE,
                  "age chunk %llu: ChaCha20-Poly1305 failed in the crypto library",
                  (unsigned long long)index);
    return NTDSB_E_CONFIG;
}

/*
 * Claim contiguous shares of GRAIN chunks in order until none is left or a
 * lower chunk already failed.  Claims only grow, so when chunk k fails every
 * chunk below it was claimed by someone who finishes it (or fails lower):
 * the lowest failure over the workers is the run's first failing chunk.
 */
static void *worker_main(void *arg)
{
    worker *w = arg;
    run *r = w->r;
    ntdsb_aead *a = ntdsb_aead_new(r->key, r->encrypt);

    w->rc = NTDSB_OK;
    if (a == NULL) {
        /* No context for this thread: the others (or the caller) do its part,
         * unless nobody can, which the caller sees as chunks left undone. */
        return NULL;
    }
    for (;;) {
        uint64_t lo = atomic_fetch_add(&r->next, GRAIN), hi, k;
        if (lo >= r->nchunks || lo > atomic_load(&r->fail_at))
            break;
        hi = r->nchunks - lo < GRAIN ? r->nchunks : lo + GRAIN;
        for (k = lo; k < hi; k++)
            if ((w->rc = do_chunk(r, a, k, &w->err)) != NTDSB_OK)
                break;
        if (w->rc != NTDSB_OK) {
            uint_fast64_t seen = atomic_load(&r->fail_at);
            while (k < seen && !atomic_compare_exchange_weak(&r->fail_at, &seen, k)) {
            }
            break;
        }
    }
    ntdsb_aead_free(a);
    return NULL;
}

/*
 * Run the chunks of *r over up to `threads` threads, the calling thread one
 * of them (workers claim shares dynamically, so a helper that the scheduler
 * delays - the machine is shared - costs its share's time, not a stall of
 * the whole run).  The first failure in chunk order is reported.
 */
static int run_all(run *r, unsigned threads, ntdsb_error *err)
{
    worker local;
    worker *ws = &local;
    uint64_t nworkers, i, best = UINT64_MAX;
    int rc = NTDSB_OK;

    atomic_init(&r->next, 0);
    atomic_init(&r->fail_at, r->nchunks);
    if (threads == 0)
        threads = ntdsb_cpu_count();
    if (threads > NTDSB_THREADS_MAX)
        threads = NTDSB_THREADS_MAX;
    nworkers = r->nchunks < SERIAL_BELOW ? 1 : threads;
    if (nworkers > (r->nchunks + GRAIN - 1) / GRAIN)
        nworkers = (r->nchunks + GRAIN - 1) / GRAIN;
    if (nworkers > 1) {
        ws = ntdsb_alloc_zeroed((size_t)nworkers, sizeof *ws);
        if (ws == NULL) { /* no memory for the bookkeeping: do it serially */
            ws = &local;
            nworkers = 1;
        }
    }
    if (ws == &local)
        memset(&local, 0, sizeof local);
    for (i = 0; i < nworkers; i++) {
        ws[i].r = r;
        ntdsb_err_clear(&ws[i].err);
    }
    /* A thread that cannot start is no failure: the others claim its part. */
    for (i = 1; i < nworkers; i++)
        ws[i].started = ntdsb_thread_start(&ws[i].thread, worker_main, &ws[i]) == 0;
    worker_main(&ws[0]);
    for (i = 1; i < nworkers; i++)
        if (ws[i].started)
            ntdsb_thread_join(&ws[i].thread);
    for (i = 0; i < nworkers; i++)
        if (ws[i].rc != NTDSB_OK && ws[i].err.chunk_index < best) {
            best = ws[i].err.chunk_index;
            rc = ws[i].rc;
            if (err != NULL)
                *err = ws[i].err;
        }
    if (rc == NTDSB_OK && atomic_load(&r->next) < r->nchunks) {
        /* Chunks nobody could take: only when every context failed to be made. */
        ntdsb_err_set(err, NTDSB_E_NOMEM, "EVP_CIPHER_CTX_new", 0, 0,
                      "could not make a ChaCha20-Poly1305 context");
        rc = NTDSB_E_NOMEM;
    }
    if (ws != &local)
        ntdsb_free_aligned(ws);
    return rc;
}

/* ---- the entry points ------------------------------------------------------------ */

static int bad_call(ntdsb_error *err, const char *what)
{
    ntdsb_err_set(err, NTDSB_E_CONFIG, NULL, 0, 0, "%s", what);
    return NTDSB_E_CONFIG;
}

int ntdsb_age_seal(const uint8_t key[NTDSB_AGE_KEY_SIZE], uint64_t first_index,
                   const uint8_t *plain, size_t len, int final, uint8_t *out,
                   size_t *out_len, unsigned threads, ntdsb_error *err)
{
    run r;
    uint64_t n;
    int rc;

    if (out_len != NULL)
        *out_len = 0;
    if ((rc = ntdsb_aead_require(err)) != NTDSB_OK)
        return rc;
    if (key == NULL || out == NULL || out_len == NULL || (plain == NULL && len > 0))
        return bad_call(err, "ntdsb_age_seal: NULL argument");
    if (!final && (len == 0 || len % NTDSB_AGE_CHUNK_SIZE != 0))
        return bad_call(err, "ntdsb_age_seal: without final, len must be a positive "
                             "multiple of 65536");
    if (final && len == 0 && first_index != 0)
        return bad_call(err, "ntdsb_age_seal: an empty final chunk is valid only as chunk 0");
    n = len == 0 ? 1 : ((uint64_t)len + NTDSB_AGE_CHUNK_SIZE - 1) / NTDSB_AGE_CHUNK_SIZE;
    if (n > UINT64_MAX - first_index)
        return bad_call(err, "ntdsb_age_seal: chunk index overflow");

    memset(&r, 0, sizeof r);
    r.key = key;
    r.encrypt = 1;
    r.first_index = first_index;
    r.nchunks = n;
    r.final = final ? 1 : 0;
    r.in = plain;
    r.out = out;
    r.in_len = len;
    rc = run_all(&r, threads, err);
    if (rc == NTDSB_OK)
        *out_len = len + (size_t)n * NTDSB_AGE_TAG_SIZE;
    return rc;
}

int ntdsb_age_open(const uint8_t key[NTDSB_AGE_KEY_SIZE], uint64_t first_index,
                   const uint8_t *sealed, size_t len, int final, uint8_t *out,
                   size_t *out_len, unsigned threads, ntdsb_error *err)
{
    run r;
    uint64_t n, last_index;
    size_t last;
    int rc;

    if (out_len != NULL)
        *out_len = 0;
    if ((rc = ntdsb_aead_require(err)) != NTDSB_OK)
        return rc;
    if (key == NULL || out == NULL || out_len == NULL || (sealed == NULL && len > 0))
        return bad_call(err, "ntdsb_age_open: NULL argument");
    /* The sizes are the input's: a wrong one is damage (a cut), not a bad call. */
    if (len == 0)
        return corrupt_at(err, first_index, "truncated (no sealed bytes)");
    n = ((uint64_t)len + NTDSB_AGE_SEALED_SIZE - 1) / NTDSB_AGE_SEALED_SIZE;
    if (n > UINT64_MAX - first_index)
        return bad_call(err, "ntdsb_age_open: chunk index overflow");
    last_index = first_index + n - 1;
    last = len - (size_t)(n - 1) * NTDSB_AGE_SEALED_SIZE;
    if (!final && last != NTDSB_AGE_SEALED_SIZE)
        return corrupt_at(err, last_index, "truncated (a short chunk that is not the last)");
    if (last < NTDSB_AGE_TAG_SIZE)
        return corrupt_at(err, last_index, "truncated (shorter than a tag)");
    if (last == NTDSB_AGE_TAG_SIZE && last_index != 0)
        return corrupt_at(err, last_index, "empty final chunk after chunk 0");

    memset(&r, 0, sizeof r);
    r.key = key;
    r.encrypt = 0;
    r.first_index = first_index;
    r.nchunks = n;
    r.final = final ? 1 : 0;
    r.in = sealed;
    r.out = out;
    r.in_len = len;
    rc = run_all(&r, threads, err);
    if (rc == NTDSB_OK)
        *out_len = len - (size_t)n * NTDSB_AGE_TAG_SIZE;
    return rc;
}

int ntdsb_age_plain_size(uint64_t sealed_len, uint64_t *plain_len, ntdsb_error *err)
{
    /* n = ceil(L / 65552), P = L - 16 n; valid when n = ceil(P / 65536), or
     * P = 0 with n = 1 (the empty plaintext). */
    uint64_t n = sealed_len / NTDSB_AGE_SEALED_SIZE +
                 (sealed_len % NTDSB_AGE_SEALED_SIZE != 0 ? 1 : 0);
    uint64_t p;

    if (plain_len != NULL)
        *plain_len = 0;
    if (n == 0 || sealed_len < n * NTDSB_AGE_TAG_SIZE)
        goto bad;
    p = sealed_len - n * NTDSB_AGE_TAG_SIZE;
    if (!(p == 0 && n == 1) &&
        n != p / NTDSB_AGE_CHUNK_SIZE + (p % NTDSB_AGE_CHUNK_SIZE != 0 ? 1 : 0))
        goto bad;
    if (plain_len != NULL)
        *plain_len = p;
    return NTDSB_OK;
bad:
    ntdsb_err_set(err, NTDSB_E_CORRUPT, NULL, n > 0 ? n - 1 : 0, 0,
                  "age payload of %llu bytes: no valid payload has that length "
                  "(truncated or trailing bytes)",
                  (unsigned long long)sealed_len);
    return NTDSB_E_CORRUPT;
}

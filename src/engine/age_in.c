/*
 * age_in.c - reading a sealed age payload (ntdsb_age_in_*): random access on
 * a seekable file, sequential reads on anything.
 *
 * Decrypted plaintext lives in one batch buffer (up to BATCH_CHUNKS chunks,
 * 4 MiB) that doubles as the cache: a read inside it costs a memcpy.
 * pread decrypts exactly the chunks covering the range it misses; sequential
 * reads decrypt a whole batch ahead (over the reader's threads).  Memory is
 * one batch of sealed bytes and one of plaintext whatever the input.
 *
 * Seekable: the length says how many chunks there are and which is final
 * (ntdsb_age_plain_size), and the final chunk is authenticated at open, so
 * the size is trustworthy before any byte is returned.  Pipe: the final
 * chunk is the one followed by end of input, so the reader keeps one sealed
 * byte beyond each full batch before deciding that batch is not the last;
 * end of input before an authenticated final chunk is a truncation.  A pipe's
 * failure is sticky: the stream cannot be re-read.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "aead.h"
#include "engine_internal.h"
#include "ntdsb_age.h"

#define BATCH_CHUNKS 64u
#define BATCH_PLAIN  ((size_t)BATCH_CHUNKS * NTDSB_AGE_CHUNK_SIZE)
#define BATCH_SEALED ((size_t)BATCH_CHUNKS * NTDSB_AGE_SEALED_SIZE)

struct ntdsb_age_in {
    ntdsb_file f;           /* the caller's */
    ntdsb_file pos_f;       /* seekable: its positional twin (platform.h) */
    int seekable;
    int may_block;          /* pipe that is not a regular file */
    uint64_t payload_start;
    uint64_t sealed_size;   /* seekable only */
    uint64_t nchunks;       /* seekable only */
    uint64_t plain_size;    /* UINT64_MAX while unknown (pipe) */
    uint8_t key[NTDSB_AGE_KEY_SIZE];
    unsigned threads;
    uint64_t pos;           /* sequential position (plaintext) */

    uint8_t *sealed;        /* BATCH_SEALED + 1 bytes (the pipe's look-ahead byte) */
    uint8_t *plain;         /* BATCH_PLAIN bytes: the cache */
    uint64_t cache_off;     /* plaintext offset of plain[0] */
    size_t cache_len;       /* valid bytes in plain (0: empty) */

    /* Pipe only. */
    size_t have;            /* sealed bytes held, chunk next_k first */
    uint64_t next_k;
    int done;               /* the final chunk authenticated */
    int failed;
    ntdsb_error err;        /* the sticky failure */
    atomic_int stop;        /* never set: the flag when no caller lends one */
    atomic_int *stop_ref;   /* the restore's flag during ntdsb_age_in_source_read */
};

/* ---- errors ------------------------------------------------------------------------ */

static int corrupt_at(ntdsb_error *err, uint64_t k, const char *what)
{
    uint64_t off = k * (uint64_t)NTDSB_AGE_CHUNK_SIZE;
    ntdsb_err_set(err, NTDSB_E_CORRUPT, NULL, k, off,
                  "age chunk %llu (plaintext offset %llu): %s", (unsigned long long)k,
                  (unsigned long long)off, what);
    return NTDSB_E_CORRUPT;
}

static int read_error(ntdsb_error *err, uint64_t k, int sys_err)
{
    char text[128];
    uint64_t off = k * (uint64_t)NTDSB_AGE_CHUNK_SIZE;
    ntdsb_err_set(err, NTDSB_E_READ, "read", k, off,
                  "age chunk %llu (plaintext offset %llu): reading the payload failed: %s",
                  (unsigned long long)k, (unsigned long long)off,
                  ntdsb_strerror(sys_err, text, sizeof text));
    err->sys_errno = sys_err;
    return NTDSB_E_READ;
}

static int bad_call(ntdsb_error *err, const char *what)
{
    ntdsb_err_set(err, NTDSB_E_CONFIG, NULL, 0, 0, "%s", what);
    return NTDSB_E_CONFIG;
}

/*
 * Open sealed chunks k0... into the cache.  When the last chunk of the piece
 * fails, it is tried once with the other flag to say why: authenticating as
 * final where more bytes follow is trailing data; authenticating as
 * non-final where the input ends is a cut at a chunk boundary.
 */
static int open_into_cache(ntdsb_age_in *in, uint64_t k0, size_t len, int final,
                           ntdsb_error *err)
{
    size_t n = 0;
    int rc;

    in->cache_len = 0;
    rc = ntdsb_age_open(in->key, k0, in->sealed, len, final, in->plain, &n, in->threads, err);
    if (rc == NTDSB_E_CORRUPT && len > 0) {
        uint64_t nk = (len + NTDSB_AGE_SEALED_SIZE - 1) / NTDSB_AGE_SEALED_SIZE;
        uint64_t last = k0 + nk - 1;
        size_t at = (size_t)(nk - 1) * NTDSB_AGE_SEALED_SIZE;
        if (err != NULL && err->chunk_index == last && len - at > NTDSB_AGE_TAG_SIZE &&
            strstr(err->message, "authentication failed") != NULL) {
            ntdsb_error e2;
            size_t n2;
            /* Only a full chunk can be non-final. */
            if ((!final || len - at == NTDSB_AGE_SEALED_SIZE) &&
                ntdsb_age_open(in->key, last, in->sealed + at, len - at, !final,
                               in->plain + (size_t)(nk - 1) * NTDSB_AGE_CHUNK_SIZE, &n2, 1,
                               &e2) == NTDSB_OK)
                corrupt_at(err, last, final ? "truncated (the input ends after this chunk, "
                                              "which is not the final one)"
                                            : "data after the final chunk");
        }
        return rc;
    }
    if (rc != NTDSB_OK)
        return rc;
    in->cache_off = k0 * (uint64_t)NTDSB_AGE_CHUNK_SIZE;
    in->cache_len = n;
    return NTDSB_OK;
}

/* ---- seekable ---------------------------------------------------------------------- */

/* Exactly len sealed bytes at payload offset off. */
static int read_at(ntdsb_age_in *in, uint8_t *buf, size_t len, uint64_t off, uint64_t k,
                   ntdsb_error *err)
{
    size_t have = 0;
    while (have < len) {
        size_t got = 0;
        int sys_err = 0;
        if (ntdsb_file_pread(in->pos_f, buf + have, len - have, in->payload_start + off + have,
                             &got, &sys_err) != 0)
            return read_error(err, k, sys_err);
        if (got == 0) /* the file shrank after we measured it */
            return corrupt_at(err, k, "truncated (end of file inside the payload)");
        have += got;
    }
    return NTDSB_OK;
}

/* Decrypt chunks [k0, k0 + count) into the cache (count <= BATCH_CHUNKS). */
static int load(ntdsb_age_in *in, uint64_t k0, uint64_t count, ntdsb_error *err)
{
    const uint64_t k1 = k0 + count;
    const uint64_t start = k0 * (uint64_t)NTDSB_AGE_SEALED_SIZE;
    const uint64_t end =
        k1 == in->nchunks ? in->sealed_size : k1 * (uint64_t)NTDSB_AGE_SEALED_SIZE;
    int rc;

    in->cache_len = 0;
    if ((rc = read_at(in, in->sealed, (size_t)(end - start), start, k0, err)) != NTDSB_OK)
        return rc;
    return open_into_cache(in, k0, (size_t)(end - start), k1 == in->nchunks, err);
}

/* Copy up to len plaintext bytes at off (seekable; off < plain_size), loading
 * what the cache misses: exactly the chunks needed, or (ahead) a whole batch. */
static int fill(ntdsb_age_in *in, uint8_t *buf, size_t len, uint64_t off, int ahead,
                size_t *got, ntdsb_error *err)
{
    size_t done = 0;

    if (len > in->plain_size - off)
        len = (size_t)(in->plain_size - off);
    while (done < len) {
        const uint64_t cur = off + done;
        if (in->cache_len > 0 && cur >= in->cache_off && cur < in->cache_off + in->cache_len) {
            size_t at = (size_t)(cur - in->cache_off);
            size_t n = in->cache_len - at;
            if (n > len - done)
                n = len - done;
            memcpy(buf + done, in->plain + at, n);
            done += n;
        } else {
            uint64_t k = cur / NTDSB_AGE_CHUNK_SIZE;
            uint64_t klast = (off + len - 1) / NTDSB_AGE_CHUNK_SIZE;
            uint64_t count = klast - k + 1;
            int rc;
            if (ahead || count > BATCH_CHUNKS)
                count = BATCH_CHUNKS;
            if (count > in->nchunks - k)
                count = in->nchunks - k;
            if ((rc = load(in, k, count, err)) != NTDSB_OK) {
                *got = 0;
                return rc;
            }
        }
    }
    *got = done;
    return NTDSB_OK;
}

/* ---- pipe ---------------------------------------------------------------------------- */

/* Read the next batch (and one look-ahead byte) and decrypt it into the cache. */
static int pipe_next(ntdsb_age_in *in, ntdsb_error *err)
{
    const size_t target = BATCH_SEALED + 1;
    int rc;

    while (in->have < target) {
        size_t got = 0;
        int sys_err = 0;
        int io = ntdsb_file_read_some(in->f, in->sealed + in->have, target - in->have, &got,
                                      in->may_block, in->stop_ref ? in->stop_ref : &in->stop,
                                      &sys_err);
        if (io == NTDSB_IO_STOPPED) {
            ntdsb_err_set(err, NTDSB_E_CANCELLED, NULL, in->next_k, 0,
                          "age chunk %llu: the read was stopped",
                          (unsigned long long)in->next_k);
            return NTDSB_E_CANCELLED;
        }
        if (io == NTDSB_IO_DATA) {
            in->have += got;
            continue;
        }
        if (io == NTDSB_IO_EOF)
            break;
        return read_error(err, in->next_k, io == NTDSB_IO_ERROR ? sys_err : 0);
    }
    if (in->have == target) {
        /* A byte follows the batch: none of its chunks is the final one. */
        if ((rc = open_into_cache(in, in->next_k, BATCH_SEALED, 0, err)) != NTDSB_OK)
            return rc;
        in->next_k += BATCH_CHUNKS;
        in->sealed[0] = in->sealed[BATCH_SEALED];
        in->have = 1;
        return NTDSB_OK;
    }
    if (in->have == 0)
        return corrupt_at(err, in->next_k, "truncated (end of input before the final chunk)");
    /* End of input: what is held ends with the final chunk. */
    if ((rc = open_into_cache(in, in->next_k, in->have, 1, err)) != NTDSB_OK)
        return rc;
    in->plain_size = in->cache_off + in->cache_len;
    in->have = 0;
    in->done = 1;
    return NTDSB_OK;
}

/* ---- the API ------------------------------------------------------------------------- */

int ntdsb_age_in_open(ntdsb_age_in **out, ntdsb_file f, uint64_t payload_start,
                      uint64_t sealed_size, const uint8_t key[NTDSB_AGE_KEY_SIZE],
                      unsigned threads, ntdsb_error *err)
{
    ntdsb_age_in *in;
    int rc;

    if (out == NULL || key == NULL)
        return bad_call(err, "ntdsb_age_in_open: NULL argument");
    *out = NULL;
    if (!ntdsb_file_valid(f))
        return bad_call(err, "ntdsb_age_in_open: the file is invalid");
    if ((rc = ntdsb_aead_require(err)) != NTDSB_OK)
        return rc;
    in = ntdsb_alloc_zeroed(1, sizeof *in);
    if (in == NULL)
        return ntdsb_err_nomem(err, "malloc", "the age reader");
    in->f = f;
    in->pos_f = NTDSB_NO_FILE;
    in->payload_start = payload_start;
    in->threads = threads;
    in->plain_size = UINT64_MAX;
    memcpy(in->key, key, sizeof in->key);
    atomic_init(&in->stop, 0);
    ntdsb_err_clear(&in->err);
    in->sealed = ntdsb_alloc_aligned(BATCH_SEALED + 1);
    in->plain = ntdsb_alloc_aligned(BATCH_PLAIN);
    if (in->sealed == NULL || in->plain == NULL) {
        ntdsb_age_in_free(in);
        return ntdsb_err_nomem(err, "malloc", "the age reader's batch");
    }
    if (sealed_size == UINT64_MAX) {
        in->may_block = !ntdsb_file_is_regular(f);
        *out = in;
        return NTDSB_OK;
    }
    in->seekable = 1;
    in->sealed_size = sealed_size;
    in->pos_f = ntdsb_file_pos_open(f);
    if ((rc = ntdsb_age_plain_size(sealed_size, &in->plain_size, err)) != NTDSB_OK) {
        ntdsb_age_in_free(in);
        return rc;
    }
    in->nchunks = in->plain_size == 0
                      ? 1
                      : (in->plain_size + NTDSB_AGE_CHUNK_SIZE - 1) / NTDSB_AGE_CHUNK_SIZE;
    /* The final chunk first: until it authenticates the length is a claim. */
    if ((rc = load(in, in->nchunks - 1, 1, err)) != NTDSB_OK) {
        ntdsb_age_in_free(in);
        return rc;
    }
    *out = in;
    return NTDSB_OK;
}

uint64_t ntdsb_age_in_size(const ntdsb_age_in *in)
{
    return in->plain_size;
}

int ntdsb_age_in_pread(ntdsb_age_in *in, void *buf, size_t len, uint64_t off, size_t *got,
                       ntdsb_error *err)
{
    *got = 0;
    if (!in->seekable)
        return bad_call(err, "ntdsb_age_in_pread: the payload is not seekable (a pipe)");
    if (len == 0 || off >= in->plain_size)
        return NTDSB_OK;
    return fill(in, buf, len, off, 0, got, err);
}

int ntdsb_age_in_read(ntdsb_age_in *in, void *buf, size_t len, size_t *got, ntdsb_error *err)
{
    int rc;

    *got = 0;
    if (len == 0)
        return NTDSB_OK;
    if (in->seekable) {
        if (in->pos >= in->plain_size)
            return NTDSB_OK;
        rc = fill(in, buf, len, in->pos, 1, got, err);
        in->pos += *got;
        return rc;
    }
    for (;;) {
        if (in->cache_len > 0 && in->pos < in->cache_off + in->cache_len) {
            size_t at = (size_t)(in->pos - in->cache_off);
            size_t n = in->cache_len - at;
            if (n > len)
                n = len;
            memcpy(buf, in->plain + at, n);
            in->pos += n;
            *got = n;
            return NTDSB_OK;
        }
        if (in->done)
            return NTDSB_OK;
        if (in->failed) {
            if (err != NULL)
                *err = in->err;
            return in->err.status;
        }
        if ((rc = pipe_next(in, &in->err)) != NTDSB_OK) {
            in->failed = 1;
            in->cache_len = 0;
            if (err != NULL)
                *err = in->err;
            return rc;
        }
    }
}

int ntdsb_age_in_seek(ntdsb_age_in *in, uint64_t pos, ntdsb_error *err)
{
    if (!in->seekable)
        return bad_call(err, "ntdsb_age_in_seek: the payload is not seekable (a pipe)");
    if (pos > in->plain_size)
        return bad_call(err, "ntdsb_age_in_seek: position beyond the end of the plaintext");
    in->pos = pos;
    return NTDSB_OK;
}

uint64_t ntdsb_age_in_tell(const ntdsb_age_in *in)
{
    return in->pos;
}

int ntdsb_age_in_source_read(void *reader, void *buf, size_t len, size_t *got,
                             atomic_int *stop, ntdsb_error *err)
{
    ntdsb_age_in *in = reader;
    int rc;

    /* A pipe read watches the restore's own flag for the length of the call. */
    in->stop_ref = stop;
    rc = ntdsb_age_in_read(in, buf, len, got, err);
    in->stop_ref = NULL;
    return rc;
}

void ntdsb_age_in_free(ntdsb_age_in *in)
{
    if (in == NULL)
        return;
    if (in->seekable && in->pos_f != NTDSB_NO_FILE)
        ntdsb_file_pos_close(in->pos_f, in->f);
    ntdsb_free_aligned(in->sealed);
    ntdsb_free_aligned(in->plain);
    {
        volatile uint8_t *k = in->key; /* a secret: not left in freed memory */
        size_t i;
        for (i = 0; i < sizeof in->key; i++)
            k[i] = 0;
    }
    ntdsb_free_aligned(in);
}

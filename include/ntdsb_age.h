/*
 * ntdsb_age.h - the payload of an age v1 file (C2SP age, "STREAM"), sealed and
 * opened by the engine with the GIL released, and the two byte paths that use
 * it: an output stage (what a backup writes goes through it: sealed when
 * encrypting, digested with BLAKE2b-512 when signing) and a reader of a
 * sealed payload (sequential for the restore engine, random access for the
 * seek index).
 *
 * The age header (recipient stanzas, header MAC) is Python's business: it
 * gives the engine the 32-byte payload key (HKDF-SHA-256 of the file key,
 * salt = the 16-byte nonce, info "payload") and, when reading, the offset at
 * which the sealed chunks start (header length + 16).
 *
 * Geometry: the plaintext is cut into 64 KiB chunks; chunk i is sealed with
 * ChaCha20-Poly1305 under the payload key, no AAD, nonce = i as an 11-byte
 * big-endian counter followed by a flag byte (1 for the final chunk, else 0),
 * and stored as ciphertext || 16-byte tag.  The final chunk holds 1..65536
 * bytes, or 0 bytes only when the whole plaintext is empty.  Chunks are
 * independent given their index: every function here splits its chunks over
 * `threads` threads (0 = the number of CPUs).
 *
 * No Python here.  Errors fill an ntdsb_error (ntdsb_engine.h): a chunk that
 * fails authentication is NTDSB_E_CORRUPT with err.chunk_index = the age
 * chunk number and err.offset = its plaintext offset.
 */
#ifndef NTDSB_AGE_H
#define NTDSB_AGE_H

#include <stddef.h>
#include <stdint.h>

#include "ntdsb_engine.h"
#include "ntdsb_restore.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NTDSB_AGE_KEY_SIZE    32u
#define NTDSB_AGE_CHUNK_SIZE  65536u
#define NTDSB_AGE_TAG_SIZE    16u
#define NTDSB_AGE_SEALED_SIZE (NTDSB_AGE_CHUNK_SIZE + NTDSB_AGE_TAG_SIZE)
#define NTDSB_DIGEST_SIZE     64u   /* BLAKE2b-512 */

/* Whether this build can seal and open (it has a ChaCha20-Poly1305). */
int ntdsb_age_available(void);

/*
 * Seal `len` plaintext bytes as chunks first_index, first_index + 1, ...
 * Unless `final`, len must be a positive multiple of NTDSB_AGE_CHUNK_SIZE; with
 * `final` the last chunk gets flag 1 (len 0 gives one empty final chunk, valid
 * only as chunk 0).  out holds len + 16 * chunks bytes; *out_len is set.
 */
int ntdsb_age_seal(const uint8_t key[NTDSB_AGE_KEY_SIZE], uint64_t first_index,
                   const uint8_t *plain, size_t len, int final, uint8_t *out,
                   size_t *out_len, unsigned threads, ntdsb_error *err);

/*
 * Open sealed chunks first_index, ...: every chunk but the last is exactly
 * NTDSB_AGE_SEALED_SIZE bytes; with `final` the last one (17..SEALED_SIZE
 * bytes, or 16 as chunk 0) must authenticate with flag 1, otherwise it is
 * full size and flag 0.  out holds len bytes; *out_len = plaintext bytes.
 * Nothing in `out` may be used unless this returns NTDSB_OK.
 */
int ntdsb_age_open(const uint8_t key[NTDSB_AGE_KEY_SIZE], uint64_t first_index,
                   const uint8_t *sealed, size_t len, int final, uint8_t *out,
                   size_t *out_len, unsigned threads, ntdsb_error *err);

/*
 * The plaintext size of a payload of `sealed_len` bytes (after the nonce), or
 * NTDSB_E_CORRUPT when no valid payload has that length.
 */
int ntdsb_age_plain_size(uint64_t sealed_len, uint64_t *plain_len, ntdsb_error *err);

/* ---- output stage ---------------------------------------------------------- */

/*
 * Everything a backup writes, in order, to `down` (an ntdsb_sink: a file or a
 * callback).  With a payload key the bytes are sealed in batches of many
 * chunks (the last full chunk is held back until a byte follows it or the
 * stage finishes, so the final flag lands on the right one); with want_digest
 * a BLAKE2b-512 of every byte given to `down` (raw bytes included) is kept.
 * Neither: bytes pass straight through.  Memory: one batch (a few MiB).
 */
typedef struct ntdsb_out ntdsb_out;

/* want_digest: none, of every byte stored, or of the plaintext taken. */
#define NTDSB_DIGEST_NONE   0
#define NTDSB_DIGEST_STORED 1
#define NTDSB_DIGEST_PLAIN  2

int ntdsb_out_open(ntdsb_out **out, const ntdsb_sink *down,
                   const uint8_t *payload_key /* NULL: no sealing */,
                   int want_digest, unsigned threads, ntdsb_error *err);
/* Bytes written to `down` as they are (the age header and nonce), digested. */
int ntdsb_out_raw(ntdsb_out *o, const void *buf, size_t len, ntdsb_error *err);
/* An ntdsb_write_fn: plaintext in; 0, or -1 with the reason kept in the stage
 * (ntdsb_out_error).  So the stage can be the engine's sink callback. */
int ntdsb_out_write(void *o, const void *buf, size_t len);
const ntdsb_error *ntdsb_out_error(const ntdsb_out *o);
uint64_t ntdsb_out_plain_bytes(const ntdsb_out *o);   /* plaintext taken so far */
uint64_t ntdsb_out_stored_bytes(const ntdsb_out *o);  /* bytes given to down so far */
/* The digest of what went through so far, now; later bytes are not digested
 * (a signature over that digest is written after it).  Once only. */
int ntdsb_out_take_digest(ntdsb_out *o, uint8_t digest[NTDSB_DIGEST_SIZE], ntdsb_error *err);
/* Seal what is held (the final chunk), hand it down, and give the digest
 * (when wanted; may be NULL otherwise).  Once only. */
int ntdsb_out_finish(ntdsb_out *o, uint8_t digest[NTDSB_DIGEST_SIZE], ntdsb_error *err);
void ntdsb_out_free(ntdsb_out *o);

/* ---- reader ---------------------------------------------------------------- */

/*
 * A sealed payload in `f` starting at byte `payload_start` (the header length
 * + 16).  Seekable (sealed_size = the file's size - payload_start): the length
 * is checked and the final chunk authenticated when the reader is opened, so
 * the plaintext size is known and trustworthy; any chunk can then be read.
 * Not seekable (a pipe: sealed_size = UINT64_MAX): sequential reads only,
 * from f's current position (payload_start is not used: the caller has read
 * the header off the stream), the final chunk found by reading one chunk
 * ahead, and end of input before an authenticated final chunk is an error
 * (truncation); so is any byte after the final chunk (the payload runs to the
 * end of the input).  A pipe's failure is sticky.
 *
 * Plaintext handed out before the end of a pipe is provisional: a later read
 * can still fail (a cut, a bad chunk); success is a read giving *got = 0.
 * Errors: NTDSB_E_CORRUPT (chunk_index = age chunk, offset = its plaintext
 * offset), NTDSB_E_READ (sys_errno), NTDSB_E_CONFIG for calls the mode does
 * not allow.  Memory: one batch of sealed and one of plain chunks (~8 MiB),
 * whatever the input.  Not thread-safe: one caller at a time.
 */
typedef struct ntdsb_age_in ntdsb_age_in;

int ntdsb_age_in_open(ntdsb_age_in **in, ntdsb_file f, uint64_t payload_start,
                      uint64_t sealed_size, const uint8_t key[NTDSB_AGE_KEY_SIZE],
                      unsigned threads, ntdsb_error *err);
/* Plaintext size (UINT64_MAX while unknown on a pipe). */
uint64_t ntdsb_age_in_size(const ntdsb_age_in *in);
/* Random access (seekable only): up to len plaintext bytes at off (fewer only
 * at the end; *got = 0 at or past it).  Decrypts just the chunks the range
 * needs that are not in the reader's cache; the sequential position is not
 * moved. */
int ntdsb_age_in_pread(ntdsb_age_in *in, void *buf, size_t len, uint64_t off, size_t *got,
                       ntdsb_error *err);
/* Sequential reads from the current position (decrypting batches of chunks
 * ahead, in parallel); *got = 0 only at the end of the plaintext. */
int ntdsb_age_in_read(ntdsb_age_in *in, void *buf, size_t len, size_t *got,
                      ntdsb_error *err);
int ntdsb_age_in_seek(ntdsb_age_in *in, uint64_t pos, ntdsb_error *err); /* seekable only */
uint64_t ntdsb_age_in_tell(const ntdsb_age_in *in);
/* ntdsb_age_in_read as an ntdsb_read_fn (ntdsb_restore.h), `in` its context:
 * so the restore engine can take a sealed payload as its input
 * (ntdsb_source {NTDSB_NO_FILE, ntdsb_age_in_source_read, reader}).  A pipe
 * read in it watches `stop` (NTDSB_E_CANCELLED once it is set). */
int ntdsb_age_in_source_read(void *in, void *buf, size_t len, size_t *got, atomic_int *stop,
                             ntdsb_error *err);
void ntdsb_age_in_free(ntdsb_age_in *in);

#ifdef __cplusplus
}
#endif
#endif /* NTDSB_AGE_H */

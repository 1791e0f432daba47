/*
 * ntdsb_ese.h - ESE (JET Blue) page checksums, page verification and the
 * generator of realistic directory pages used by the emulated DC.
 *
 * Facts from the project's ESE notes (docs/ESE.md): header XOR checksum,
 * old XOR page format, XOR+ECC per 8 KiB block, large-page layout.
 * All integers on disk are little-endian.  No Python here; these functions
 * are pure (no I/O, no global state) and safe to call from any thread.
 */
#ifndef NTDSB_ESE_H
#define NTDSB_ESE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NTDSB_ESE_HEADER_SEED   0x89ABCDEFu
#define NTDSB_ESE_DB_MAGIC      0x89ABCDEFu
#define NTDSB_ESE_FLAG_NEW_CHECKSUM 0x2000u

/* Header checksum (DB header and shadow, log header, checkpoint copy):
 * 0x89ABCDEF XOR every little-endian u32 of buf except the first.
 * len must be a multiple of 4. */
uint32_t ntdsb_ese_header_checksum(const uint8_t *buf, size_t len);

/* XOR+ECC checksum of one block (cb = 1024..8192, a power of two).  With
 * is_header_block the first 8 bytes (the stored checksum) are skipped. */
uint64_t ntdsb_ese_ecc_block(const uint8_t *block, size_t cb, uint32_t pgno, int is_header_block);

/* Write the checksum(s) of a database page in place: sets the new-checksum
 * flag's scheme (the page's flag 0x2000 must already be set), the pgno at 64
 * for pages > 8192 bytes, blocks 1..3 first then block 0. */
void ntdsb_ese_set_page_checksum(uint8_t *page, size_t cb_page, uint32_t pgno);

/* Result of ntdsb_ese_verify_page. */
#define NTDSB_ESE_PAGE_OK            0  /* valid, new (XOR+ECC) format */
#define NTDSB_ESE_PAGE_OK_OLD        1  /* valid, old XOR format */
#define NTDSB_ESE_PAGE_UNINIT        2  /* all zero: acceptable */
#define NTDSB_ESE_PAGE_BAD_CHECKSUM (-1)
#define NTDSB_ESE_PAGE_BAD_PGNO     (-2) /* large page whose stored pgno differs */

int ntdsb_ese_verify_page(const uint8_t *page, size_t cb_page, uint32_t pgno);

/* Verify `count` consecutive pages starting at logical page first_pgno.
 * Returns the number of bad pages; *first_bad gets the first bad pgno (or 0),
 * counts[0..2] (if not NULL) get the number of OK, OK_OLD and UNINIT pages. */
uint64_t ntdsb_ese_verify_pages(const uint8_t *pages, size_t cb_page, uint32_t first_pgno,
                                uint32_t count, uint32_t *first_bad, uint64_t counts[3]);

/*
 * Fill `count` pages (cb_page each: 8192 or 32768) with realistic directory
 * content for logical pages first_pgno.. and write valid checksums.
 *
 * Content: objects with UTF-16LE distinguished names, SIDs, GUIDs, FILETIME
 * timestamps and attribute values in an ESE-like page layout (40/80-byte page
 * header, records from the top, a tag array at the end, free space zero).
 * Deterministic in (seed, pgno, dbtime): the same arguments give the same
 * bytes; every page differs from every other.  Compresses about 3-5x with
 * zstd -1.
 */
void ntdsb_ese_generate_pages(uint8_t *pages, size_t cb_page, uint32_t first_pgno,
                              uint32_t count, uint64_t seed, uint64_t dbtime);

/*
 * Fill `count` v8 log segments (cb_sec bytes each, normally 4096) for the
 * segment indices first_isec.. of log generation `generation`: a 40-byte
 * segment header (checksum @0, LGPOS {ib 0, isec, generation} @8, LOGTIME
 * @16 copied from logtime8 or zero if NULL, flags 0x2000 @36) and
 * log-record-like content, checksummed by the page rule with pgno = isec.
 * Deterministic in (seed, generation, isec).  cb_sec must be 1024..8192, a
 * power of two; first_isec >= 1 (segment 0 is the file header).
 */
void ntdsb_ese_generate_log_segments(uint8_t *buf, size_t cb_sec, uint32_t first_isec,
                                     uint32_t count, int32_t generation, uint64_t seed,
                                     const uint8_t *logtime8);

#ifdef __cplusplus
}
#endif
#endif /* NTDSB_ESE_H */

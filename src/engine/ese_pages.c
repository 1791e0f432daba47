/*
 * ese_pages.c - the per-file ESE page checker of ntdsb_pages.h.
 *
 * Verification is ese_checksum.c's (ntdsb_ese_verify_page, one
 * implementation): on good data every unit costs exactly that one pass.  The
 * diagnosis below runs only for units that fail, so its extra passes (the
 * ECC of each block, a corrected copy, a copy with the flag toggled) cost
 * nothing on healthy files.
 *
 * Threads: the in-order side owns everything in ntdsb_pages except `ready`
 * (atomic), the geometry fields it publishes through `ready` (read-only
 * afterwards) and the trailer fields, which only the one thread that checks
 * the file's last unit writes; workers touch only their own tally.
 */
#include <string.h>

#include "ntdsb_ese.h"
#include "ntdsb_pages.h"

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
    return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static uint32_t le16(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

/* ---- tallies ------------------------------------------------------------------ */

/* Keep the NTDSB_PAGES_LISTED lowest pgnos, ascending.  Callers add in
 * ascending order, so this is an append in practice; the insertion keeps the
 * list right even if they did not (it only runs for bad units). */
static void add_problem(ntdsb_page_tally *t, uint32_t pgno, int reason, uint64_t detail)
{
    uint32_t i = t->listed;
    while (i > 0 && t->problems[i - 1].pgno > pgno)
        i--;
    if (i >= NTDSB_PAGES_LISTED)
        return;
    if (t->listed == NTDSB_PAGES_LISTED)
        t->listed--; /* the highest one falls off */
    memmove(&t->problems[i + 1], &t->problems[i], (t->listed - i) * sizeof t->problems[0]);
    t->problems[i].pgno = pgno;
    t->problems[i].reason = reason;
    t->problems[i].detail = detail;
    t->listed++;
}

void ntdsb_pages_merge(ntdsb_pages *pg, const ntdsb_page_tally *t)
{
    ntdsb_page_tally *m = &pg->tally;
    ntdsb_page_problem out[NTDSB_PAGES_LISTED];
    uint32_t i = 0, j = 0, n = 0;

    m->ok += t->ok;
    m->ok_old += t->ok_old;
    m->uninit += t->uninit;
    m->bad += t->bad;
    m->correctable += t->correctable;
    /* Both lists are ascending and hold their own lowest pgnos (each worker
     * takes its chunks in ascending order, so its first 64 problems are its
     * lowest 64), hence the lowest 64 of the union are among them. */
    while (n < NTDSB_PAGES_LISTED && (i < m->listed || j < t->listed)) {
        if (j >= t->listed || (i < m->listed && m->problems[i].pgno <= t->problems[j].pgno))
            out[n++] = m->problems[i++];
        else
            out[n++] = t->problems[j++];
    }
    memcpy(m->problems, out, n * sizeof out[0]);
    m->listed = n;
}

/* ---- diagnosis of a failing unit ------------------------------------------------- */

/* Block size of the page checksum: the whole unit up to 8 KiB, else 4 KiB
 * blocks up to 16 KiB pages and 8 KiB blocks above (ese-format.md 4.2). */
static size_t block_size(size_t cb)
{
    return cb <= 8192 ? cb : cb <= 16384 ? 4096 : 8192;
}

/* Stored checksum of block k (block 0 at 0, blocks 1..3 at 40/48/56). */
static uint64_t stored_sum(const uint8_t *p, size_t k)
{
    return le64(k == 0 ? p : p + 40 + 8 * (k - 1));
}

/* E (ECC halves) and D (low halves) of block k of p against pgno. */
static void block_diff(const uint8_t *p, size_t cb, size_t k, uint32_t pgno, uint32_t *E,
                       uint32_t *D)
{
    size_t bs = block_size(cb), start = k * bs;
    size_t len = cb - start < bs ? cb - start : bs;
    uint64_t s = stored_sum(p, k), c = ntdsb_ese_ecc_block(p + start, len, pgno, k == 0);
    *E = (uint32_t)(s >> 32) ^ (uint32_t)(c >> 32);
    *D = (uint32_t)s ^ (uint32_t)c;
}

/*
 * ese-format.md 4.4: a block of cb bytes has one bad bit when the ECC
 * difference's two halves are complements over log2(cb*8) bits and the XOR
 * difference has exactly one bit set; the bit is at E & 0xFFFF.  Checked by
 * test_pages.c over every bit of an 8 KiB page and a sample of 16/32 KiB
 * pages (1 KiB blocks: the log case).  The offset is also bounded by the
 * block: a multi-bit error can mimic the pattern and name a bit outside it.
 */
static int correctable_bit(uint32_t E, uint32_t D, size_t cb, uint32_t *bit)
{
    uint32_t m = (uint32_t)(cb * 8 - 1);
    if ((((E >> 16) ^ E) & m) != m || D == 0 || (D & (D - 1)) != 0)
        return 0;
    if ((E & 0xFFFFu) >= cb * 8)
        return 0;
    *bit = E & 0xFFFFu;
    return 1;
}

/* Does the unit verify as the kind wants it?  DB: either format at pgno.
 * Log: new format only, at isec or isec - 1 (ESE's ErrVerifyLogSegments). */
static int unit_valid(int kind, const uint8_t *p, size_t cb, uint32_t pgno)
{
    int r = ntdsb_ese_verify_page(p, cb, pgno);
    if (kind == NTDSB_PAGES_DATABASE)
        return r == NTDSB_ESE_PAGE_OK || r == NTDSB_ESE_PAGE_OK_OLD;
    return r == NTDSB_ESE_PAGE_OK ||
           (pgno > 0 && ntdsb_ese_verify_page(p, cb, pgno - 1) == NTDSB_ESE_PAGE_OK);
}

/*
 * Why does unit p (cb bytes, checked as pgno) fail?  Returns a reason, with
 * *detail.  scratch: cb bytes of the caller's (a stack buffer: 32 KiB at most
 * is fine on every engine thread's stack, 1 MiB on Windows, 8 on Linux).
 *
 * Single-bit errors are confirmed, not just inferred: every failing block's
 * bit is flipped in a copy, block 0 first (its bytes 40..63 hold the stored
 * checksums of blocks 1..3, so a bad bit there also makes that block fail
 * until block 0 is corrected), and the copy must then verify.  The rule of
 * the reference alone would call such a page uncorrectable, and it cannot
 * see a "corrected" flag bit, which ESE never fixes: flipping bit 301 (flag
 * 0x2000) turns the page into an old-format one, reported FLAG_FLIPPED.
 *
 * Bits 0..63 (the stored checksum of block 0, excluded from its own ECC):
 * a bad bit in bytes 0..3 gives E == 0 and a one-bit D, which is exactly
 * what a page checksummed for pgno ^ D looks like: reported MISPLACED
 * (detail pgno ^ (1 << bit)); nothing in a small page tells the two apart.
 * A bad bit in bytes 4..7 (the stored ECC) gives a one-bit E and D == 0:
 * no rule applies, BAD_CHECKSUM.
 */
static int diagnose(int kind, const uint8_t *p, size_t cb, uint32_t pgno, uint8_t *scratch,
                    uint64_t *detail)
{
    const size_t bs = block_size(cb);
    const size_t nblk = (cb + bs - 1) / bs;
    const int is_new = (le32(p + 36) & NTDSB_ESE_FLAG_NEW_CHECKSUM) != 0;
    uint32_t E[4], D[4];
    size_t k;

    *detail = 0;
    if (is_new) {
        int failing = 0, fixable = 1, have_first = 0, misplaced;
        uint32_t first_bit = 0;

        for (k = 0; k < nblk; k++) {
            block_diff(p, cb, k, pgno, &E[k], &D[k]);
            failing |= (E[k] | D[k]) != 0;
        }
        if (!failing) {
            /* Every checksum is right: what failed is the large page's
             * stored pgno (ese-format.md 3.3). */
            if (cb > 8192 && le32(p + 64) != pgno) {
                *detail = le32(p + 64);
                return NTDSB_PAGE_BAD_PGNO;
            }
            return NTDSB_PAGE_BAD_CHECKSUM;
        }

        memcpy(scratch, p, cb);
        for (k = 0; k < nblk && fixable; k++) {
            uint32_t e, d, bit;
            block_diff(scratch, cb, k, pgno, &e, &d); /* after the earlier blocks' fixes */
            if ((e | d) == 0)
                continue;
            size_t len = cb - k * bs < bs ? cb - k * bs : bs;
            if (!correctable_bit(e, d, len, &bit)) {
                fixable = 0;
                break;
            }
            uint32_t at = (uint32_t)(k * bs * 8) + bit;
            if (!have_first) { /* blocks go up, so the first fix is the lowest bit */
                first_bit = at;
                have_first = 1;
            }
            scratch[at / 8] ^= (uint8_t)(1u << (at % 8));
        }
        if (fixable && ntdsb_ese_verify_page(scratch, cb, pgno) == NTDSB_ESE_PAGE_OK) {
            *detail = first_bit;
            return NTDSB_PAGE_CORRECTABLE;
        }

        /* The pgno enters only the low half of every block's checksum: a page
         * written for pgno Q and found at P has E == 0 and D == P ^ Q in
         * every block (a large page in all four; the reference's "the other
         * blocks fine" fits only a small page, so both are accepted). */
        misplaced = E[0] == 0 && D[0] != 0;
        for (k = 1; k < nblk && misplaced; k++)
            misplaced = (E[k] | D[k]) == 0 || (E[k] == 0 && D[k] == D[0]);
        if (misplaced) {
            *detail = pgno ^ D[0];
            return NTDSB_PAGE_MISPLACED;
        }
    } else if (le32(p) == ntdsb_ese_header_checksum(p, cb) && le32(p + 4) != pgno) {
        /* Old format: the XOR checksum covers the stored pgno word @4, so a
         * good checksum with another pgno is a page from elsewhere. */
        *detail = le32(p + 4);
        return NTDSB_PAGE_MISPLACED;
    }

    memcpy(scratch, p, cb);
    scratch[37] ^= 0x20; /* flag 0x2000: byte 37, bit 5 */
    if (unit_valid(kind, scratch, cb, pgno))
        return NTDSB_PAGE_FLAG_FLIPPED;
    return NTDSB_PAGE_BAD_CHECKSUM;
}

static void count_bad(ntdsb_page_tally *t, const uint8_t *p, size_t cb, uint32_t pgno, int kind)
{
    uint8_t scratch[NTDSB_PAGES_UNIT_MAX];
    uint64_t detail;
    int reason = diagnose(kind, p, cb, pgno, scratch, &detail);
    t->bad++;
    if (reason == NTDSB_PAGE_CORRECTABLE)
        t->correctable++;
    add_problem(t, pgno, reason, detail);
}

void ntdsb_pages_check_unit(ntdsb_pages *pg, ntdsb_page_tally *t, const uint8_t *p,
                            uint64_t u)
{
    const size_t cb = pg->unit_size;
    int r;

    if (pg->kind == NTDSB_PAGES_DATABASE) {
        uint32_t pgno = (uint32_t)(u - 1);
        r = ntdsb_ese_verify_page(p, cb, pgno);
        if (r == NTDSB_ESE_PAGE_OK) {
            t->ok++;
        } else if (r == NTDSB_ESE_PAGE_OK_OLD) {
            t->ok_old++;
        } else if (r == NTDSB_ESE_PAGE_UNINIT) {
            t->uninit++;
        } else if ((u + 1) * cb == pg->file_size && le32(p) == ntdsb_ese_header_checksum(p, cb)) {
            /* A streamed backup's trailer page (ese-format.md 7): header XOR,
             * no magic.  Only one thread ever checks the last unit, and the
             * caller reads this after the join. */
            pg->trailer = 1;
            memcpy(pg->trailer_page, p, cb);
        } else {
            count_bad(t, p, cb, pgno, pg->kind);
        }
        return;
    }
    /* Log segment: pgno = isec, isec - 1 also accepted; all zero is fine; a
     * segment valid only in the old format is bad (v8 logs never use it). */
    uint32_t isec = (uint32_t)u;
    r = ntdsb_ese_verify_page(p, cb, isec);
    if (r == NTDSB_ESE_PAGE_OK || (r != NTDSB_ESE_PAGE_UNINIT && isec > 0 &&
                                   ntdsb_ese_verify_page(p, cb, isec - 1) == NTDSB_ESE_PAGE_OK))
        t->ok++;
    else if (r == NTDSB_ESE_PAGE_UNINIT)
        t->uninit++;
    else
        count_bad(t, p, cb, isec, pg->kind);
}

/* ---- geometry --------------------------------------------------------------------- */

/* A database header copy at h (have bytes available) for page size cand? */
static int db_header_ok(const uint8_t *h, size_t have, uint32_t cand)
{
    uint32_t field;
    if (have < cand)
        return 0;
    field = le32(h + 236);
    if (field == 0)
        field = 4096;
    return le32(h) == ntdsb_ese_header_checksum(h, cand) && le32(h + 4) == NTDSB_ESE_DB_MAGIC &&
           field == cand;
}

/* Decide the geometry from head (ese-format.md 1, 5.1) and publish it. */
static void decide(ntdsb_pages *pg)
{
    const uint8_t *h = pg->head;
    const size_t have = pg->head_len;
    uint32_t unit = 0, first = 0, cand;

    if (pg->kind == NTDSB_PAGES_DATABASE) {
        /* ESE's order: every candidate on the primary, then on the shadow. */
        for (cand = 2048; cand <= 32768 && unit == 0; cand *= 2)
            if (db_header_ok(h, have, cand))
                unit = cand;
        for (cand = 2048; cand <= 32768 && unit == 0; cand *= 2)
            if (have >= cand && db_header_ok(h + cand, have - cand, cand))
                unit = cand;
        first = 2;
        /* Without room for header and shadow there is no page to check. */
        if (unit != 0 && pg->file_size < 2u * (uint64_t)unit)
            unit = 0;
    } else if (pg->kind == NTDSB_PAGES_LOG && have >= NTDSB_PAGES_LOG_HEAD &&
               le32(h) == ntdsb_ese_header_checksum(h, NTDSB_PAGES_LOG_HEAD)) {
        uint32_t cb_sec = le16(h + 8), csec_header = le16(h + 10);
        uint32_t major = le32(h + 32), minor = le32(h + 36);
        int pow2 = cb_sec >= 1024 && cb_sec <= 8192 && (cb_sec & (cb_sec - 1)) == 0;
        /* Older logs have LRCHECKSUM records instead of segments: not ours. */
        if (pow2 && csec_header >= 1 && (major > 8 || (major == 8 && minor >= 4000))) {
            unit = cb_sec;
            first = csec_header;
        }
    }
    pg->geometry = unit != 0;
    pg->unit_size = unit;
    pg->first_unit = unit != 0 ? first : 0;
    pg->decided = 1;
    /* Workers read unit_size/first_unit/geometry only after acquiring this. */
    atomic_store_explicit(&pg->ready, 1, memory_order_release);
}

/* ---- the two sides ------------------------------------------------------------------- */

void ntdsb_pages_init(ntdsb_pages *pg, int kind, uint64_t file_size)
{
    memset(pg, 0, sizeof *pg);
    pg->kind = kind == NTDSB_PAGES_DATABASE || kind == NTDSB_PAGES_LOG ? kind : NTDSB_PAGES_NONE;
    pg->file_size = file_size;
    if (pg->kind == NTDSB_PAGES_DATABASE)
        pg->head_want = file_size < NTDSB_PAGES_HEAD_MAX ? (uint32_t)file_size
                                                         : NTDSB_PAGES_HEAD_MAX;
    else if (pg->kind == NTDSB_PAGES_LOG)
        pg->head_want = file_size < NTDSB_PAGES_LOG_HEAD ? (uint32_t)file_size
                                                         : NTDSB_PAGES_LOG_HEAD;
    atomic_init(&pg->ready, 0);
    if (pg->kind == NTDSB_PAGES_NONE) {
        pg->decided = 1; /* nothing to find: workers return at once */
        atomic_store_explicit(&pg->ready, 1, memory_order_relaxed);
    }
}

/* First unit boundary at or after off that is a checked unit. */
static uint64_t first_whole(const ntdsb_pages *pg, uint64_t off)
{
    uint64_t us = pg->unit_size;
    uint64_t pos = (off + us - 1) / us * us;
    uint64_t min = (uint64_t)pg->first_unit * us;
    return pos < min ? min : pos;
}

int ntdsb_pages_worker(ntdsb_pages *pg, ntdsb_page_tally *t, const uint8_t *data, size_t len,
                       uint64_t off)
{
    uint64_t us, pos, end = off + len;
    if (!atomic_load_explicit(&pg->ready, memory_order_acquire))
        return 0;
    if (!pg->geometry)
        return 1; /* nothing in this file is checked */
    us = pg->unit_size;
    for (pos = first_whole(pg, off); pos + us <= end; pos += us)
        ntdsb_pages_check_unit(pg, t, data + (pos - off), pos / us);
    return 1;
}

/*
 * The in-order side's view of the bytes [off, off + len): complete a unit
 * carried over from earlier chunks, check the whole units (if check_whole:
 * no worker did), and carry the unit the chunk ends inside.  Units wholly
 * inside one chunk are exactly those ntdsb_pages_worker checks, so between
 * the two every unit is checked once.
 */
static void feed(ntdsb_pages *pg, const uint8_t *data, size_t len, uint64_t off,
                 int check_whole)
{
    const uint64_t us = pg->unit_size, end = off + len;
    uint64_t pos;

    if (pg->carry_len > 0) {
        size_t take = us - pg->carry_len < len ? (size_t)(us - pg->carry_len) : len;
        memcpy(pg->carry + pg->carry_len, data, take);
        pg->carry_len += (uint32_t)take;
        if (pg->carry_len < us)
            return; /* the chunk lies inside the unit */
        ntdsb_pages_check_unit(pg, &pg->tally, pg->carry, pg->carry_unit);
        pg->carry_len = 0;
        pos = off + take; /* a unit boundary */
    } else {
        pos = first_whole(pg, off);
    }
    for (; pos + us <= end; pos += us)
        if (check_whole)
            ntdsb_pages_check_unit(pg, &pg->tally, data + (pos - off), pos / us);
    if (pos < end) {
        pg->carry_unit = pos / us;
        pg->carry_len = (uint32_t)(end - pos);
        memcpy(pg->carry, data + (pos - off), pg->carry_len);
    }
}

void ntdsb_pages_in_order(ntdsb_pages *pg, const uint8_t *data, size_t len, uint64_t off,
                          int worker_checked)
{
    if (pg->kind == NTDSB_PAGES_NONE || pg->broken || len == 0)
        return;
    if (off != pg->fed) {
        /* A gap or an overlap would check the wrong bytes: stop instead. */
        pg->broken = 1;
        return;
    }
    pg->fed += len;
    if (pg->head_len < pg->head_want) {
        size_t take = pg->head_want - pg->head_len < len ? pg->head_want - pg->head_len : len;
        memcpy(pg->head + pg->head_len, data, take);
        pg->head_len += (uint32_t)take;
    }
    if (!pg->decided) {
        if (pg->head_len < pg->head_want)
            return;
        decide(pg);
        if (pg->geometry) {
            /* Every earlier chunk lies in head (head was not full before
             * this one) and no worker could check any of them, nor this one:
             * the geometry was not known when they ran. */
            feed(pg, pg->head, (size_t)off, 0, 1);
            feed(pg, data, len, off, !worker_checked);
        }
        return;
    }
    if (pg->geometry)
        feed(pg, data, len, off, !worker_checked);
}

void ntdsb_pages_finish(ntdsb_pages *pg)
{
    if (pg->kind == NTDSB_PAGES_NONE)
        return;
    if (!pg->decided && !pg->broken) {
        /* Fewer bytes than the head wanted came (the pipeline failed early):
         * decide from what there is; all of it is in head. */
        decide(pg);
        if (pg->geometry)
            feed(pg, pg->head, pg->head_len, 0, 1);
    }
    pg->carry_len = 0; /* a partial last unit is the tail, not a unit */
    pg->tail_bytes = pg->geometry ? (uint32_t)(pg->file_size % pg->unit_size) : 0;
}

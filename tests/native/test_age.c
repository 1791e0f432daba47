/*
 * test_age.c - standalone tests (and a benchmark) of the age payload
 * (ntdsb_age.h): the known-answer vectors of the wire-format reference
 * (age-minisign.md, section 4.1: payload key 10c0b07f..., nonce 0xaa x 16,
 * header of 168 bytes), round trips at every chunk
 * geometry and thread count, every rejection, random access, the output
 * stage and its digest, pipe-mode reading, and the restore engine taking a
 * sealed payload through a read callback (ntdsb_restore_from).
 *
 *   ./test_age              run the tests; last line "N passed, N failed"
 *   ./test_age --bench MB   seal/open throughput at 1 and 2 threads
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "aead.h"
#include "ntdsb_age.h"
#include "ntdsb_engine.h"
#include "ntdsb_restore.h"
#include "fake_provider.h"
#include "native_test.h"

#define CH NTDSB_AGE_CHUNK_SIZE
#define SEALED NTDSB_AGE_SEALED_SIZE

/* ---- helpers ---------------------------------------------------------------------- */

static void hex_to(uint8_t *out, const char *hex)
{
    size_t i, n = strlen(hex) / 2;
    for (i = 0; i < n; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
}

static void to_hex(char *out, const uint8_t *b, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

/* b's hex starts with `head` and ends with `tail` (the reference abbreviates
 * some values as head…tail). */
static int hex_matches(const uint8_t *b, size_t n, const char *head, const char *tail)
{
    char h[257];
    to_hex(h, b, n);
    return strncmp(h, head, strlen(head)) == 0 &&
           strcmp(h + 2 * n - strlen(tail), tail) == 0;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL) {
        perror("malloc");
        exit(2);
    }
    return p;
}

static uint8_t *gen(size_t n, uint64_t seed)
{
    uint8_t *b = xmalloc(n);
    uint64_t x = seed * 0x9E3779B97F4A7C15ULL + 1;
    size_t i;
    for (i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        /* Half the bytes repeat, so the zstd frames of the restore test shrink. */
        b[i] = (i & 64) ? (uint8_t)(i >> 9) : (uint8_t)x;
    }
    return b;
}

static uint8_t KEY[32];

static size_t sealed_len_of(size_t n)
{
    size_t chunks = n == 0 ? 1 : (n + CH - 1) / CH;
    return n + chunks * NTDSB_AGE_TAG_SIZE;
}

/* Seal a whole plaintext as one final run. */
static uint8_t *seal_all(const uint8_t *p, size_t n, unsigned threads, size_t *out_len)
{
    uint8_t *out = xmalloc(sealed_len_of(n));
    ntdsb_error err;
    int rc = ntdsb_age_seal(KEY, 0, p, n, 1, out, out_len, threads, &err);
    if (rc != NTDSB_OK) {
        fprintf(stderr, "seal failed: %s\n", err.message);
        exit(2);
    }
    return out;
}

static void blake2b(const uint8_t *b, size_t n, uint8_t out[64])
{
    unsigned int len = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    EVP_DigestInit_ex(c, EVP_blake2b512(), NULL);
    EVP_DigestUpdate(c, b, n);
    EVP_DigestFinal_ex(c, out, &len);
    EVP_MD_CTX_free(c);
}

/* ---- known answers ---------------------------------------------------------------- */

static const char HEADER[] =
    "age-encryption.org/v1\n"
    "-> X25519 pOCSkrZRwni5dyxWn1+puxPZBrRqtoyd+dwrRAn4ogk\n"
    "v4z6cVJwfIERh476BYl106tofN1IE2OED0vvzVg4rSc\n"
    "--- u/nfgwh3bxuPipocyR2rv4Mr1/14LEoC16ddmZfFq3g\n";

/* SHA-256 of header || nonce (0xaa x 16) || payload: the reference's file hash. */
static int file_sha_matches(const uint8_t *payload, size_t n, const char *head,
                            const char *tail)
{
    uint8_t nonce[16], md[32];
    unsigned int len = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    memset(nonce, 0xaa, sizeof nonce);
    EVP_DigestInit_ex(c, EVP_sha256(), NULL);
    EVP_DigestUpdate(c, HEADER, strlen(HEADER));
    EVP_DigestUpdate(c, nonce, sizeof nonce);
    EVP_DigestUpdate(c, payload, n);
    EVP_DigestFinal_ex(c, md, &len);
    EVP_MD_CTX_free(c);
    return hex_matches(md, 32, head, tail);
}

static void test_kat(void)
{
    const char *row1 = "age test vector\n";
    uint8_t want[32], *a, *out;
    size_t n = 0;
    uint64_t plain;
    ntdsb_error err;
    unsigned t;

    g_test = "known answers";
    CHECK(ntdsb_age_available());
    CHECK_EQ_INT(strlen(HEADER), 168);

    /* Row 1 in full: ciphertext || tag. */
    out = seal_all((const uint8_t *)row1, 16, 1, &n);
    CHECK_EQ_INT(n, 32);
    hex_to(want, "f79759ffd43b928c55c61c03add23d3c5cb8a125dc41913772cc228c8d1d7e53");
    CHECK(memcmp(out, want, 32) == 0);
    CHECK_EQ_INT(16 + n, 48);
    CHECK(file_sha_matches(out, n, "0264d2cd", "79e3e868"));
    free(out);

    /* Empty: one empty final chunk, the tag alone. */
    out = seal_all(NULL, 0, 1, &n);
    CHECK_EQ_INT(16 + n, 32);
    hex_to(want, "9e192adbbc8f3e48002730b8e0864f53");
    CHECK(memcmp(out, want, 16) == 0);
    CHECK(file_sha_matches(out, n, "e24e7554", "60a1fea0"));
    free(out);

    /* 64 KiB of 'a': one full chunk flagged final, no empty chunk after it. */
    a = xmalloc(131073);
    memset(a, 'a', 131073);
    out = seal_all(a, 65536, 1, &n);
    CHECK_EQ_INT(16 + n, 65568);
    hex_to(want, "824ee9d02f8f45d933af48c50440dc93");
    CHECK(memcmp(out + n - 16, want, 16) == 0);
    CHECK(file_sha_matches(out, n, "c2ca9eb2", "6fc84f55"));
    free(out);

    /* 131073 bytes: 3 chunks, the tags as the reference abbreviates them, at
     * every thread count. */
    for (t = 1; t <= 4; t++) {
        out = seal_all(a, 131073, t, &n);
        CHECK_EQ_INT(n, 131121);
        CHECK_EQ_INT(16 + n, 131137);
        CHECK(hex_matches(out + SEALED - 16, 16, "84218e89", "99e083f8"));
        CHECK(hex_matches(out + 2 * SEALED - 16, 16, "57966f5b", "ccb6dd17"));
        CHECK(hex_matches(out + n - 16, 16, "214bb6e8", "64969819"));
        CHECK(file_sha_matches(out, n, "a5721357", "49d2b59a"));
        CHECK_EQ_INT(ntdsb_age_plain_size(n, &plain, &err), NTDSB_OK);
        CHECK_EQ_INT(plain, 131073);
        free(out);
    }
    free(a);

    /* BLAKE2b-512("abc"), RFC 7693 appendix A. */
    {
        uint8_t md[64];
        ntdsb_digest *d = ntdsb_digest_new();
        CHECK(d != NULL);
        CHECK_EQ_INT(ntdsb_digest_update(d, "ab", 2), 0);
        CHECK_EQ_INT(ntdsb_digest_update(d, "c", 1), 0);
        CHECK_EQ_INT(ntdsb_digest_final(d, md), 0);
        CHECK(hex_matches(md, 64, "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6f"
                                  "dbffa2d17d87c5392aab792dc252d5de4533cc95",
                          "18d38aa8dbf1925ab92386edd4009923"));
        ntdsb_digest_free(d);
    }
}

/* ---- sizes ---------------------------------------------------------------------------- */

static void test_plain_size(void)
{
    static const struct {
        uint64_t sealed;
        int ok;
        uint64_t plain;
    } cases[] = {
        {0, 0, 0}, {1, 0, 0}, {15, 0, 0}, {16, 1, 0}, {17, 1, 1}, {SEALED, 1, CH},
        {SEALED + 1, 0, 0}, {SEALED + 15, 0, 0}, {SEALED + 16, 0, 0}, {SEALED + 17, 1, CH + 1},
        {2 * SEALED, 1, 2 * CH}, {3 * SEALED + 100, 1, 3 * CH + 84},
    };
    size_t i;
    g_test = "plain size";
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ntdsb_error err;
        uint64_t p = 99;
        int rc = ntdsb_age_plain_size(cases[i].sealed, &p, &err);
        CHECK_EQ_INT(rc, cases[i].ok ? NTDSB_OK : NTDSB_E_CORRUPT);
        if (cases[i].ok)
            CHECK_EQ_INT(p, cases[i].plain);
    }
    /* Every length the sealer makes is valid and gives its plaintext size back. */
    {
        static const size_t sizes[] = {0, 1, CH - 1, CH, CH + 1, 5 * CH, 5 * CH + 7};
        for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            uint64_t p = 0;
            CHECK_EQ_INT(ntdsb_age_plain_size(sealed_len_of(sizes[i]), &p, NULL), NTDSB_OK);
            CHECK_EQ_INT(p, sizes[i]);
        }
    }
}

/* ---- round trips ------------------------------------------------------------------------ */

static void test_round_trips(void)
{
    static const size_t sizes[] = {0, 1, CH - 1, CH, CH + 1, 3 * CH, 3 * 1024 * 1024 + 12345,
                                   64 * CH, 64 * CH + 1, 130 * CH};
    size_t i;
    g_test = "round trips";
    for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        const size_t n = sizes[i];
        uint8_t *p = gen(n, i + 1), *ref, *back = xmalloc(n);
        size_t rlen = 0;
        unsigned t;

        ref = seal_all(p, n, 1, &rlen);
        CHECK_EQ_INT(rlen, sealed_len_of(n));
        for (t = 1; t <= 4; t *= 2) {
            size_t slen = 0, olen = 99;
            uint8_t *s = seal_all(p, n, t, &slen);
            ntdsb_error err;
            CHECK(slen == rlen && memcmp(s, ref, rlen) == 0);
            CHECK_EQ_INT(ntdsb_age_open(KEY, 0, s, slen, 1, back, &olen, t, &err), NTDSB_OK);
            CHECK_EQ_INT(olen, n);
            CHECK(memcmp(back, p, n) == 0);
            free(s);
        }
        /* Sealed in two runs (the output stage's way) gives the same bytes. */
        if (n > 2 * CH) {
            size_t first = (n / CH / 2) * CH, l1 = 0, l2 = 0;
            uint8_t *s = xmalloc(rlen);
            ntdsb_error err;
            CHECK_EQ_INT(ntdsb_age_seal(KEY, 0, p, first, 0, s, &l1, 2, &err), NTDSB_OK);
            CHECK_EQ_INT(ntdsb_age_seal(KEY, first / CH, p + first, n - first, 1, s + l1, &l2,
                                        2, &err),
                         NTDSB_OK);
            CHECK(l1 + l2 == rlen && memcmp(s, ref, rlen) == 0);
            free(s);
        }
        free(ref);
        free(back);
        free(p);
    }
    CHECK_EQ_INT(threads_settled(g_base_threads), g_base_threads);
}

/* ---- rejections ------------------------------------------------------------------------ */

/* Open a damaged payload three ways: ntdsb_age_open at 1 and 4 threads and the
 * seekable reader (whole read): each must be CORRUPT at chunk k (k < 0: any). */
static void expect_bad(const char *name, const uint8_t *s, size_t len, long long k,
                       const char *needle)
{
    uint8_t *out = xmalloc(len);
    char first[256] = "";
    unsigned t;
    g_test = name;
    for (t = 1; t <= 4; t *= 4) {
        ntdsb_error err;
        size_t n = 0;
        int rc = ntdsb_age_open(KEY, 0, s, len, 1, out, &n, t, &err);
        CHECK_EQ_INT(rc, NTDSB_E_CORRUPT);
        if (t == 1)
            snprintf(first, sizeof first, "%s", err.message);
        if (k >= 0)
            CHECK_EQ_INT(err.chunk_index, k);
        if (k >= 0)
            CHECK_EQ_INT(err.offset, (uint64_t)k * CH);
    }
    {
        int fd = file_from_bytes(s, len);
        ntdsb_age_in *in = NULL;
        ntdsb_error err;
        int rc = ntdsb_age_in_open(&in, fd, 0, len, KEY, 2, &err);
        if (rc == NTDSB_OK) {
            size_t got;
            uint8_t *buf = xmalloc(len + 1);
            do {
                rc = ntdsb_age_in_read(in, buf, len + 1, &got, &err);
            } while (rc == NTDSB_OK && got > 0);
            free(buf);
        }
        CHECK_EQ_INT(rc, NTDSB_E_CORRUPT);
        /* The reader may know more (a cut at a boundary) or refuse sooner (a
         * length no payload has): the needle is in one of the two messages. */
        if (rc == NTDSB_E_CORRUPT && needle != NULL && strstr(err.message, needle) == NULL &&
            strstr(first, needle) == NULL) {
            fprintf(stderr, "FAIL [%s] messages: %s / %s\n", name, first, err.message);
            g_failed++;
        }
        if (getenv("NTDSB_TEST_VERBOSE"))
            printf("  %s: %s\n", name, err.message);
        ntdsb_age_in_free(in);
        close(fd);
    }
    free(out);
}

/* Seal one chunk by hand (what ntdsb_age_seal refuses to make). */
static void seal_chunk(uint8_t *out, uint64_t index, int final, const uint8_t *p, size_t n)
{
    uint8_t nonce[12] = {0};
    ntdsb_aead *a = ntdsb_aead_new(KEY, 1);
    int i;
    for (i = 0; i < 8; i++)
        nonce[10 - i] = (uint8_t)(index >> (8 * i));
    nonce[11] = (uint8_t)final;
    if (a == NULL || ntdsb_aead_seal(a, nonce, p, n, out) != 0)
        exit(2);
    ntdsb_aead_free(a);
}

static void test_rejections(void)
{
    const size_t n = 16 * CH + 1000; /* 17 chunks */
    uint8_t *p = gen(n, 7), *s, *d;
    size_t len = 0, k;

    s = seal_all(p, n, 2, &len);
    d = xmalloc(len + SEALED);

    /* A flipped bit in each chunk: that chunk, at any thread count. */
    for (k = 0; k < 17; k++) {
        memcpy(d, s, len);
        d[k * SEALED + (k * 7919) % (k == 16 ? 1016 : SEALED)] ^= 0x10;
        expect_bad("flipped bit", d, len, (long long)k, "authentication failed");
    }
    /* Two bad chunks: the first is reported, whatever the threads. */
    memcpy(d, s, len);
    d[12 * SEALED + 5] ^= 1;
    d[5 * SEALED + 5] ^= 1;
    expect_bad("first of two bad chunks", d, len, 5, "authentication failed");
    /* Every chunk from 3 on bad: still 3, however the threads claim them. */
    memcpy(d, s, len);
    for (k = 3; k < 17; k++)
        d[k * SEALED + 1] ^= 1;
    expect_bad("first of many bad chunks", d, len, 3, "authentication failed");

    /* Cut at a chunk boundary: every full chunk authenticates, none as final. */
    expect_bad("cut at a chunk boundary", s, 16 * SEALED, 15, "truncated");
    expect_bad("cut at a chunk boundary (one chunk)", s, SEALED, 0, "truncated");
    /* Cut inside a chunk. */
    expect_bad("cut inside the final chunk", s, len - 100, 16, NULL);
    expect_bad("cut inside a full chunk", s, 10 * SEALED + 5000, 10, NULL);
    expect_bad("cut inside a tag", s, 10 * SEALED + 9, -1, NULL);
    /* A trailing byte. */
    memcpy(d, s, len);
    d[len] = 0;
    expect_bad("trailing byte", d, len + 1, 16, NULL);
    /* Swapped chunks. */
    memcpy(d, s, len);
    memcpy(d, s + SEALED, SEALED);
    memcpy(d + SEALED, s, SEALED);
    expect_bad("swapped chunks", d, len, 0, "authentication failed");

    /* An empty final chunk after chunk 0: a full non-final chunk then a tag. */
    seal_chunk(d, 0, 0, p, CH);
    seal_chunk(d + SEALED, 1, 1, NULL, 0);
    expect_bad("empty final chunk after chunk 0", d, SEALED + 16, 1, "empty final chunk");
    /* A final flag on a non-final chunk. */
    seal_chunk(d, 0, 1, p, CH);
    seal_chunk(d + SEALED, 1, 1, p + CH, 500);
    expect_bad("final flag on chunk 0 of 2", d, SEALED + 516, 0, "authentication failed");
    /* A 64 KiB plaintext followed by a trailing full... i.e. final then more. */
    seal_chunk(d, 0, 1, p, CH);
    seal_chunk(d + SEALED, 1, 0, p + CH, CH);
    seal_chunk(d + 2 * SEALED, 2, 1, p + 2 * CH, 10);
    expect_bad("final flag in the middle", d, 2 * SEALED + 26, 0, NULL);
    /* Wrong key. */
    {
        uint8_t save = KEY[0];
        KEY[0] ^= 1;
        expect_bad("wrong key", s, len, 0, "authentication failed");
        KEY[0] = save;
    }
    /* Open's own size rules on non-final runs. */
    {
        ntdsb_error err;
        size_t got;
        g_test = "open sizes";
        CHECK_EQ_INT(ntdsb_age_open(KEY, 0, s, SEALED - 1, 0, d, &got, 1, &err),
                     NTDSB_E_CORRUPT);
        CHECK_EQ_INT(ntdsb_age_open(KEY, 0, s, 0, 1, d, &got, 1, &err), NTDSB_E_CORRUPT);
        CHECK_EQ_INT(ntdsb_age_open(KEY, 0, s, 2 * SEALED, 0, d, &got, 1, &err), NTDSB_OK);
        CHECK_EQ_INT(got, 2 * CH);
        CHECK_EQ_INT(ntdsb_age_open(KEY, 3, s + 3 * SEALED, 2 * SEALED, 0, d, &got, 2, &err),
                     NTDSB_OK);
        CHECK(memcmp(d, p + 3 * CH, 2 * CH) == 0);
        CHECK_EQ_INT(ntdsb_age_seal(KEY, 0, p, CH + 1, 0, d, &got, 1, &err), NTDSB_E_CONFIG);
        CHECK_EQ_INT(ntdsb_age_seal(KEY, 0, p, 0, 0, d, &got, 1, &err), NTDSB_E_CONFIG);
        CHECK_EQ_INT(ntdsb_age_seal(KEY, 1, p, 0, 1, d, &got, 1, &err), NTDSB_E_CONFIG);
    }
    /* The message format. */
    {
        ntdsb_error err;
        size_t got;
        memcpy(d, s, len);
        d[3 * SEALED] ^= 1;
        g_test = "message";
        CHECK_EQ_INT(ntdsb_age_open(KEY, 0, d, len, 1, d + 0, &got, 2, &err) != NTDSB_OK, 1);
        CHECK(strcmp(err.message,
                     "age chunk 3 (plaintext offset 196608): authentication failed") == 0);
    }
    free(d);
    free(s);
    free(p);
    CHECK_EQ_INT(threads_settled(g_base_threads), g_base_threads);
}

/* ---- random access ------------------------------------------------------------------- */

static void test_pread(void)
{
    const size_t n = 3 * 1024 * 1024 + 4321;
    const size_t hdr = 168 + 16; /* the payload after a header and nonce */
    uint8_t *p = gen(n, 3), *s, *file, *buf = xmalloc(n + 10);
    size_t len = 0, i;
    uint64_t x = 12345;
    ntdsb_age_in *in = NULL;
    ntdsb_error err;
    int fd;

    g_test = "pread";
    s = seal_all(p, n, 2, &len);
    file = xmalloc(hdr + len);
    memset(file, 'H', hdr);
    memcpy(file + hdr, s, len);
    fd = file_from_bytes(file, hdr + len);
    CHECK_EQ_INT(ntdsb_age_in_open(&in, fd, hdr, len, KEY, 2, &err), NTDSB_OK);
    CHECK_EQ_INT(ntdsb_age_in_size(in), n);
    for (i = 0; i < 300; i++) {
        uint64_t off;
        size_t want, got = 0;
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        off = (x >> 20) % (n + 5);
        want = (size_t)((x >> 8) % (i % 10 == 0 ? 600000 : 70000));
        CHECK_EQ_INT(ntdsb_age_in_pread(in, buf, want, off, &got, &err), NTDSB_OK);
        if (off >= n)
            CHECK_EQ_INT(got, 0);
        else
            CHECK_EQ_INT(got, want < n - off ? want : n - off);
        if (got > 0 && memcmp(buf, p + off, got) != 0) {
            fprintf(stderr, "FAIL [pread] bytes differ at %llu+%zu\n",
                    (unsigned long long)off, got);
            g_failed++;
        }
    }
    /* Sequential reads in odd sizes, after a seek. */
    {
        size_t have = 0, got;
        CHECK_EQ_INT(ntdsb_age_in_seek(in, 1000, &err), NTDSB_OK);
        CHECK_EQ_INT(ntdsb_age_in_tell(in), 1000);
        do {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            CHECK_EQ_INT(ntdsb_age_in_read(in, buf + have, 1 + (x >> 40) % 300000, &got, &err),
                         NTDSB_OK);
            have += got;
        } while (got > 0);
        CHECK_EQ_INT(have, n - 1000);
        CHECK(memcmp(buf, p + 1000, n - 1000) == 0);
        CHECK_EQ_INT(ntdsb_age_in_seek(in, n + 1, &err), NTDSB_E_CONFIG);
    }
    ntdsb_age_in_free(in);
    close(fd);

    /* A damaged middle chunk: pread elsewhere works, over it fails (chunk 20). */
    file[hdr + 20 * SEALED + 77] ^= 4;
    fd = file_from_bytes(file, hdr + len);
    CHECK_EQ_INT(ntdsb_age_in_open(&in, fd, hdr, len, KEY, 1, &err), NTDSB_OK);
    {
        size_t got;
        CHECK_EQ_INT(ntdsb_age_in_pread(in, buf, 100, 5 * CH, &got, &err), NTDSB_OK);
        CHECK(memcmp(buf, p + 5 * CH, 100) == 0);
        CHECK_EQ_INT(ntdsb_age_in_pread(in, buf, 3 * CH, 19 * CH, &got, &err), NTDSB_E_CORRUPT);
        CHECK_EQ_INT(err.chunk_index, 20);
        CHECK_EQ_INT(ntdsb_age_in_pread(in, buf, 100, 21 * CH, &got, &err), NTDSB_OK);
        CHECK(memcmp(buf, p + 21 * CH, 100) == 0);
    }
    ntdsb_age_in_free(in);
    close(fd);
    /* A damaged final chunk: refused at open. */
    file[hdr + 20 * SEALED + 77] ^= 4;
    file[hdr + len - 3] ^= 4;
    fd = file_from_bytes(file, hdr + len);
    CHECK_EQ_INT(ntdsb_age_in_open(&in, fd, hdr, len, KEY, 1, &err), NTDSB_E_CORRUPT);
    CHECK(in == NULL);
    close(fd);
    /* A length no payload has: refused at open. */
    fd = file_from_bytes(file, hdr + len);
    CHECK_EQ_INT(ntdsb_age_in_open(&in, fd, hdr, SEALED + 5, KEY, 1, &err), NTDSB_E_CORRUPT);
    close(fd);
    /* Empty plaintext. */
    {
        size_t el = 0, got = 7;
        uint8_t *e = seal_all(NULL, 0, 1, &el);
        fd = file_from_bytes(e, el);
        CHECK_EQ_INT(ntdsb_age_in_open(&in, fd, 0, el, KEY, 1, &err), NTDSB_OK);
        CHECK_EQ_INT(ntdsb_age_in_size(in), 0);
        CHECK_EQ_INT(ntdsb_age_in_read(in, buf, 10, &got, &err), NTDSB_OK);
        CHECK_EQ_INT(got, 0);
        ntdsb_age_in_free(in);
        close(fd);
        free(e);
    }
    free(file);
    free(s);
    free(p);
    free(buf);
}

/* ---- output stage ---------------------------------------------------------------------- */

typedef struct collect {
    uint8_t *buf;
    size_t len, cap;
    size_t calls;
    size_t fail_after; /* fail the call that would pass this many bytes (0: never) */
} collect;

static int collect_write(void *ctx, const void *b, size_t n)
{
    collect *c = ctx;
    if (c->fail_after != 0 && c->len + n > c->fail_after)
        return -1;
    if (c->len + n > c->cap) {
        c->cap = (c->len + n) * 2;
        c->buf = realloc(c->buf, c->cap);
        if (c->buf == NULL)
            exit(2);
    }
    memcpy(c->buf + c->len, b, n);
    c->len += n;
    c->calls++;
    return 0;
}

/* A sink that only counts (the benchmark). */
static int count_write(void *ctx, const void *b, size_t n)
{
    collect *c = ctx;
    (void)b;
    c->len += n;
    return 0;
}

/* Feed p through a stage in pieces of varying size; returns the digest check. */
static void run_stage(const uint8_t *p, size_t n, int seal, unsigned threads, uint64_t seed,
                      collect *c, uint8_t digest[64])
{
    ntdsb_sink down = {NTDSB_NO_FILE, collect_write, c};
    ntdsb_out *o = NULL;
    ntdsb_error err;
    size_t off = 0;
    uint64_t x = seed;

    memset(c, 0, sizeof *c);
    CHECK_EQ_INT(ntdsb_out_open(&o, &down, seal ? KEY : NULL, 1, threads, &err), NTDSB_OK);
    CHECK_EQ_INT(ntdsb_out_raw(o, HEADER, strlen(HEADER), &err), NTDSB_OK);
    while (off < n) {
        size_t piece;
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        piece = (x >> 33) % 4 == 0 ? 1 : 1 + (size_t)((x >> 20) % 1500000);
        if (piece > n - off)
            piece = n - off;
        CHECK_EQ_INT(ntdsb_out_write(o, p + off, piece), 0);
        off += piece;
    }
    CHECK_EQ_INT(ntdsb_out_plain_bytes(o), n);
    CHECK_EQ_INT(ntdsb_out_finish(o, digest, &err), NTDSB_OK);
    CHECK_EQ_INT(ntdsb_out_stored_bytes(o), c->len);
    CHECK_EQ_INT(ntdsb_out_finish(o, digest, &err), NTDSB_E_CONFIG); /* once only */
    ntdsb_out_free(o);
}

static void test_out_stage(void)
{
    static const size_t sizes[] = {0, 1, CH, 64 * CH, 64 * CH + 1, 128 * CH, 200 * CH + 3};
    const size_t hl = strlen(HEADER);
    size_t i;

    g_test = "output stage";
    for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        const size_t n = sizes[i];
        uint8_t *p = gen(n, 100 + i), *ref, md[64], want[64];
        size_t rlen = 0;
        unsigned t;
        collect c;

        ref = seal_all(p, n, 1, &rlen);
        for (t = 1; t <= 4; t *= 2) {
            run_stage(p, n, 1, t, i * 10 + t, &c, md);
            CHECK(c.len == hl + rlen && memcmp(c.buf, HEADER, hl) == 0 &&
                  memcmp(c.buf + hl, ref, rlen) == 0);
            blake2b(c.buf, c.len, want);
            CHECK(memcmp(md, want, 64) == 0);
            free(c.buf);
        }
        /* Pass-through: the bytes as they are, still digested. */
        run_stage(p, n, 0, 2, i, &c, md);
        CHECK(c.len == hl + n && memcmp(c.buf + hl, p, n) == 0);
        blake2b(c.buf, c.len, want);
        CHECK(memcmp(md, want, 64) == 0);
        free(c.buf);
        free(ref);
        free(p);
    }
    /* A failing sink: write returns -1, the reason stays in the stage. */
    {
        uint8_t *p = gen(100 * CH, 5);
        collect c;
        ntdsb_sink down = {NTDSB_NO_FILE, collect_write, &c};
        ntdsb_out *o = NULL;
        ntdsb_error err;
        int rc = 0;
        size_t off;
        memset(&c, 0, sizeof c);
        c.fail_after = 1000;
        CHECK_EQ_INT(ntdsb_out_open(&o, &down, KEY, 0, 2, &err), NTDSB_OK);
        for (off = 0; off < 100 * CH && rc == 0; off += CH)
            rc = ntdsb_out_write(o, p + off, CH);
        CHECK_EQ_INT(rc, -1);
        CHECK_EQ_INT(ntdsb_out_error(o)->status, NTDSB_E_CALLBACK);
        CHECK_EQ_INT(ntdsb_out_write(o, p, 1), -1);
        CHECK_EQ_INT(ntdsb_out_finish(o, NULL, &err), NTDSB_E_CALLBACK);
        ntdsb_out_free(o);
        free(c.buf);
        free(p);
    }
    /* Raw bytes after the payload started are refused; a bad sink too. */
    {
        collect c;
        ntdsb_sink down = {NTDSB_NO_FILE, collect_write, &c};
        ntdsb_sink bad = {NTDSB_NO_FILE, NULL, NULL};
        ntdsb_out *o = NULL;
        ntdsb_error err;
        memset(&c, 0, sizeof c);
        CHECK_EQ_INT(ntdsb_out_open(&o, &bad, KEY, 0, 1, &err), NTDSB_E_CONFIG);
        CHECK_EQ_INT(ntdsb_out_open(&o, &down, KEY, 0, 1, &err), NTDSB_OK);
        CHECK_EQ_INT(ntdsb_out_write(o, "x", 1), 0);
        CHECK_EQ_INT(ntdsb_out_raw(o, "y", 1, &err), NTDSB_E_CONFIG);
        ntdsb_out_free(o);
        free(c.buf);
    }
    /* An fd sink whose pipe is closed: NTDSB_E_WRITE with errno. */
    {
        int pfd[2];
        ntdsb_sink down;
        ntdsb_out *o = NULL;
        ntdsb_error err;
        uint8_t *p = gen(70 * CH, 9);
        size_t off;
        int rc = 0;
        if (pipe(pfd) != 0)
            exit(2);
        close(pfd[0]);
        down.fd = pfd[1];
        down.write = NULL;
        down.ctx = NULL;
        CHECK_EQ_INT(ntdsb_out_open(&o, &down, KEY, 1, 2, &err), NTDSB_OK);
        for (off = 0; off < 70 * CH && rc == 0; off += CH)
            rc = ntdsb_out_write(o, p + off, CH);
        CHECK_EQ_INT(rc, -1);
        CHECK_EQ_INT(ntdsb_out_error(o)->status, NTDSB_E_WRITE);
        CHECK_EQ_INT(ntdsb_out_error(o)->sys_errno, EPIPE);
        ntdsb_out_free(o);
        close(pfd[1]);
        free(p);
    }
    /* The digest also against Python's hashlib, when there is a python3. */
    if (system("command -v python3 >/dev/null 2>&1") == 0) {
        uint8_t *p = gen(3 * CH + 5, 11), md[64];
        char hex[129], cmd[512], line[256] = "";
        collect c;
        FILE *f;
        char path[] = "/tmp/ntdsb_test_age_py_XXXXXX";
        int fd = mkstemp(path);
        run_stage(p, 3 * CH + 5, 1, 2, 3, &c, md);
        if (fd >= 0 && write(fd, c.buf, c.len) == (ssize_t)c.len) {
            snprintf(cmd, sizeof cmd,
                     "python3 -c 'import hashlib,sys; "
                     "print(hashlib.blake2b(open(sys.argv[1],\"rb\").read()).hexdigest())' %s",
                     path);
            f = popen(cmd, "r");
            if (f != NULL) {
                if (fgets(line, sizeof line, f) == NULL)
                    line[0] = 0;
                pclose(f);
            }
            to_hex(hex, md, 64);
            CHECK(strncmp(line, hex, 128) == 0);
        }
        if (fd >= 0)
            close(fd);
        unlink(path);
        free(c.buf);
        free(p);
    }
    CHECK_EQ_INT(threads_settled(g_base_threads), g_base_threads);
}

/* ---- pipe mode -------------------------------------------------------------------------- */

typedef struct writer {
    int fd;
    const uint8_t *buf;
    size_t len;
    uint64_t rng;
} writer;

static void *writer_main(void *arg)
{
    writer *w = arg;
    size_t off = 0;
    while (off < w->len) {
        size_t n;
        ssize_t r;
        w->rng = w->rng * 6364136223846793005ULL + 1442695040888963407ULL;
        n = 1 + (size_t)(w->rng >> 33) % 200000;
        if (n > w->len - off)
            n = w->len - off;
        r = write(w->fd, w->buf + off, n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        off += (size_t)r;
        if ((w->rng >> 20) % 8 == 0)
            sleep_us(100);
    }
    close(w->fd);
    return NULL;
}

/* Read `len` sealed bytes through a pipe: rc of the first failing read (or
 * NTDSB_OK), the plaintext gathered into out (*outn bytes). */
static int pipe_read(const uint8_t *s, size_t len, unsigned threads, uint8_t *out, size_t cap,
                     size_t *outn, ntdsb_error *err, uint64_t *size_after)
{
    int pfd[2], rc;
    pthread_t t;
    writer w;
    ntdsb_age_in *in = NULL;
    size_t have = 0, got = 0;

    if (pipe(pfd) != 0)
        exit(2);
    w.fd = pfd[1];
    w.buf = s;
    w.len = len;
    w.rng = len;
    pthread_create(&t, NULL, writer_main, &w);
    rc = ntdsb_age_in_open(&in, pfd[0], 0, UINT64_MAX, KEY, threads, err);
    if (rc == NTDSB_OK) {
        CHECK_EQ_INT(ntdsb_age_in_size(in), UINT64_MAX);
        do {
            rc = ntdsb_age_in_read(in, out + have, cap - have > 100000 ? 100000 : cap - have,
                                   &got, err);
            have += got;
        } while (rc == NTDSB_OK && got > 0 && have < cap);
        *size_after = ntdsb_age_in_size(in);
        /* A failure stays. */
        if (rc != NTDSB_OK) {
            ntdsb_error e2;
            CHECK_EQ_INT(ntdsb_age_in_read(in, out, 10, &got, &e2), rc);
        }
        CHECK_EQ_INT(ntdsb_age_in_pread(in, out, 1, 0, &got, NULL), NTDSB_E_CONFIG);
        ntdsb_age_in_free(in);
    }
    /* Drain, so a writer blocked on a full pipe can finish. */
    {
        char sink[65536];
        while (read(pfd[0], sink, sizeof sink) > 0) {
        }
    }
    pthread_join(t, NULL);
    close(pfd[0]);
    *outn = have;
    return rc;
}

static void test_pipe(void)
{
    static const size_t sizes[] = {0, 1, CH, CH + 1, 64 * CH, 64 * CH + 1, 129 * CH + 17};
    size_t i;

    g_test = "pipe";
    for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        const size_t n = sizes[i];
        uint8_t *p = gen(n, 50 + i), *s, *out = xmalloc(n + 100);
        size_t len = 0, got = 0;
        uint64_t size = 0;
        ntdsb_error err;
        unsigned t;

        s = seal_all(p, n, 2, &len);
        for (t = 1; t <= 2; t++) {
            CHECK_EQ_INT(pipe_read(s, len, t, out, n + 100, &got, &err, &size), NTDSB_OK);
            CHECK_EQ_INT(got, n);
            CHECK_EQ_INT(size, n);
            CHECK(memcmp(out, p, n) == 0);
        }
        free(out);
        free(s);
        free(p);
    }
    /* Truncations and a trailing byte, through the pipe. */
    {
        const size_t n = 130 * CH + 100; /* 131 chunks: three batches */
        uint8_t *p = gen(n, 77), *s, *out = xmalloc(n + 100), *d;
        size_t len = 0, got = 0;
        uint64_t size;
        ntdsb_error err;
        static const struct {
            size_t cut; /* sealed bytes kept */
            uint64_t chunk;
            const char *needle;
        } cuts[] = {
            {0, 0, "truncated"},
            {64 * SEALED, 63, "truncated"},        /* at the end of a batch */
            {64 * SEALED + 1, 64, "truncated"},    /* one byte into the next */
            {100 * SEALED, 99, "truncated"},       /* at a chunk boundary */
            {100 * SEALED + 5000, 100, "authentication failed"}, /* inside a chunk */
            {130 * SEALED + 50, 130, "authentication failed"},   /* inside the final */
        };
        s = seal_all(p, n, 2, &len);
        for (i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
            int rc = pipe_read(s, cuts[i].cut, 2, out, n + 100, &got, &err, &size);
            CHECK_EQ_INT(rc, NTDSB_E_CORRUPT);
            CHECK_EQ_INT(err.chunk_index, cuts[i].chunk);
            CHECK(strstr(err.message, cuts[i].needle) != NULL);
            if (getenv("NTDSB_TEST_VERBOSE"))
                printf("  pipe cut %zu: %s\n", cuts[i].cut, err.message);
            /* What was released before the failure is the plaintext's start. */
            CHECK(got <= n && memcmp(out, p, got) == 0);
        }
        d = xmalloc(len + 1);
        memcpy(d, s, len);
        d[len] = 'x';
        CHECK_EQ_INT(pipe_read(d, len + 1, 2, out, n + 100, &got, &err, &size),
                     NTDSB_E_CORRUPT);
        free(d);
        /* Exactly one batch and a trailing byte: "data after the final chunk". */
        free(s);
        s = seal_all(p, 64 * CH, 2, &len);
        d = xmalloc(len + 1);
        memcpy(d, s, len);
        d[len] = 'x';
        CHECK_EQ_INT(pipe_read(d, len + 1, 2, out, n + 100, &got, &err, &size),
                     NTDSB_E_CORRUPT);
        CHECK_EQ_INT(err.chunk_index, 63);
        CHECK(strstr(err.message, "after the final chunk") != NULL);
        free(d);
        free(s);
        free(out);
        free(p);
    }
    CHECK_EQ_INT(threads_settled(g_base_threads), g_base_threads);
}

/* ---- restore through a callback -------------------------------------------------------- */

static const char MARKER[] = "NEXT-METADATA-FRAME";

/* The backup engine's chunk frames of data, then MARKER, collected in *c. */
static void make_stream(collect *c, const uint8_t *data, uint64_t size)
{
    ntdsb_provider prov;
    ntdsb_backup_config cfg;
    ntdsb_error err;
    ntdsb_sink sink = {NTDSB_NO_FILE, collect_write, c};
    fake f = {data, size, 0};

    memset(&prov, 0, sizeof prov);
    memset(c, 0, sizeof *c);
    prov.BackupRead = fake_read;
    ntdsb_backup_config_init(&cfg);
    cfg.chunk_size = 256 * 1024;
    cfg.threads = 2;
    if (ntdsb_backup_file(&prov, &f, size, &cfg, &sink, NULL, NULL, NULL, NULL, NULL, &err) !=
        NTDSB_OK) {
        fprintf(stderr, "backup failed: %s\n", err.message);
        exit(2);
    }
    collect_write(c, MARKER, strlen(MARKER));
}

/* The first `left` bytes of a real stream, then a failure. */
typedef struct failing {
    const uint8_t *buf;
    size_t left;
} failing;

static int failing_read(void *ctx, void *buf, size_t len, size_t *got, atomic_int *stop,
                        ntdsb_error *err)
{
    failing *f = ctx;
    (void)stop;
    *got = 0;
    if (f->left == 0) {
        memset(err, 0, sizeof *err);
        err->status = NTDSB_E_READ;
        err->chunk_index = 42;
        err->offset = 4242;
        snprintf(err->message, sizeof err->message, "the test's read failed");
        return NTDSB_E_READ;
    }
    *got = len < f->left ? len : f->left;
    memcpy(buf, f->buf, *got);
    f->buf += *got;
    f->left -= *got;
    return NTDSB_OK;
}

static void test_restore_from(void)
{
    const uint64_t size = 5 * 1024 * 1024 + 777;
    uint8_t *data = gen((size_t)size, 31), *s, *rest = xmalloc(64);
    ntdsb_restore_config rc = {2, 0, 0, NULL};
    ntdsb_hash128 h_plain, h_age;
    ntdsb_error err;
    size_t len = 0, got;
    collect c;
    int plain_fd, age_fd, out1, out2, r;
    ntdsb_age_in *in = NULL;
    ntdsb_source src;

    g_test = "restore from a callback";
    make_stream(&c, data, size);
    s = seal_all(c.buf, c.len, 2, &len);

    /* The backup engine writing through the output stage (its sink callback)
     * gives exactly the stream, sealed. */
    {
        ntdsb_provider prov;
        ntdsb_backup_config cfg;
        collect sealed;
        ntdsb_sink down = {NTDSB_NO_FILE, collect_write, &sealed};
        ntdsb_sink via;
        ntdsb_out *o = NULL;
        fake f = {data, size, 0};
        uint8_t md[64], want[64];

        memset(&prov, 0, sizeof prov);
        memset(&sealed, 0, sizeof sealed);
        prov.BackupRead = fake_read;
        ntdsb_backup_config_init(&cfg);
        cfg.chunk_size = 256 * 1024;
        cfg.threads = 2;
        CHECK_EQ_INT(ntdsb_out_open(&o, &down, KEY, 1, 2, &err), NTDSB_OK);
        via.fd = NTDSB_NO_FILE;
        via.write = ntdsb_out_write;
        via.ctx = o;
        CHECK_EQ_INT(ntdsb_backup_file(&prov, &f, size, &cfg, &via, NULL, NULL, NULL, NULL,
                                       NULL, &err),
                     NTDSB_OK);
        CHECK_EQ_INT(ntdsb_out_write(o, MARKER, strlen(MARKER)), 0);
        CHECK_EQ_INT(ntdsb_out_finish(o, md, &err), NTDSB_OK);
        CHECK(sealed.len == len && memcmp(sealed.buf, s, len) == 0);
        blake2b(s, len, want);
        CHECK(memcmp(md, want, 64) == 0);
        ntdsb_out_free(o);
        free(sealed.buf);
    }

    /* The reference: the stream from a descriptor. */
    plain_fd = file_from_bytes(c.buf, c.len);
    out1 = file_from_bytes(NULL, 0);
    r = ntdsb_restore_file(plain_fd, out1, size, &rc, NULL, NULL, NULL, &h_plain, &err);
    CHECK_EQ_INT(r, NTDSB_OK);

    /* The same stream sealed, seekable reader as the source. */
    age_fd = file_from_bytes(s, len);
    CHECK_EQ_INT(ntdsb_age_in_open(&in, age_fd, 0, len, KEY, 2, &err), NTDSB_OK);
    src.fd = NTDSB_NO_FILE;
    src.read = ntdsb_age_in_source_read;
    src.ctx = in;
    out2 = file_from_bytes(NULL, 0);
    r = ntdsb_restore_from(&src, out2, size, &rc, NULL, NULL, NULL, &h_age, &err);
    CHECK_EQ_INT(r, NTDSB_OK);
    CHECK(memcmp(h_plain.bytes, h_age.bytes, 16) == 0);
    {
        uint8_t *a = xmalloc((size_t)size), *b = xmalloc((size_t)size);
        CHECK(pread(out1, a, (size_t)size, 0) == (ssize_t)size);
        CHECK(pread(out2, b, (size_t)size, 0) == (ssize_t)size);
        CHECK(memcmp(a, data, (size_t)size) == 0 && memcmp(b, data, (size_t)size) == 0);
        free(a);
        free(b);
    }
    /* The restore stopped at the last frame: the marker is what is left. */
    CHECK_EQ_INT(ntdsb_age_in_read(in, rest, 64, &got, &err), NTDSB_OK);
    CHECK(got == strlen(MARKER) && memcmp(rest, MARKER, got) == 0);
    ntdsb_age_in_free(in);

    /* A bad source: both kinds at once, or neither. */
    src.fd = age_fd;
    CHECK_EQ_INT(ntdsb_restore_from(&src, -1, size, &rc, NULL, NULL, NULL, NULL, &err),
                 NTDSB_E_CONFIG);
    src.fd = NTDSB_NO_FILE;
    src.read = NULL;
    CHECK_EQ_INT(ntdsb_restore_from(&src, -1, size, &rc, NULL, NULL, NULL, NULL, &err),
                 NTDSB_E_CONFIG);

    /* A damaged sealed chunk: the callback's error, as it set it. */
    {
        uint8_t *d = xmalloc(len);
        int fd;
        memcpy(d, s, len);
        d[30 * SEALED + 3] ^= 1;
        fd = file_from_bytes(d, len);
        CHECK_EQ_INT(ntdsb_age_in_open(&in, fd, 0, len, KEY, 2, &err), NTDSB_OK);
        src.read = ntdsb_age_in_source_read;
        src.ctx = in;
        r = ntdsb_restore_from(&src, -1, size, &rc, NULL, NULL, NULL, NULL, &err);
        CHECK_EQ_INT(r, NTDSB_E_CORRUPT);
        CHECK_EQ_INT(err.chunk_index, 30);
        CHECK(strstr(err.message, "age chunk 30") != NULL);
        ntdsb_age_in_free(in);
        close(fd);
        free(d);
    }
    /* A callback failure: reported with the callback's own fields. */
    {
        failing f = {c.buf, 1000};
        src.read = failing_read;
        src.ctx = &f;
        r = ntdsb_restore_from(&src, -1, size, &rc, NULL, NULL, NULL, NULL, &err);
        CHECK_EQ_INT(r, NTDSB_E_READ);
        CHECK_EQ_INT(err.chunk_index, 42);
        CHECK(strcmp(err.message, "the test's read failed") == 0);
    }
    /* Through a pipe: the same result. */
    {
        int pfd[2];
        pthread_t t;
        writer w;
        ntdsb_hash128 h_pipe;
        if (pipe(pfd) != 0)
            exit(2);
        w.fd = pfd[1];
        w.buf = s;
        w.len = len;
        w.rng = 99;
        pthread_create(&t, NULL, writer_main, &w);
        CHECK_EQ_INT(ntdsb_age_in_open(&in, pfd[0], 0, UINT64_MAX, KEY, 2, &err), NTDSB_OK);
        src.fd = NTDSB_NO_FILE;
        src.read = ntdsb_age_in_source_read;
        src.ctx = in;
        r = ntdsb_restore_from(&src, -1, size, &rc, NULL, NULL, NULL, &h_pipe, &err);
        CHECK_EQ_INT(r, NTDSB_OK);
        CHECK(memcmp(h_plain.bytes, h_pipe.bytes, 16) == 0);
        CHECK_EQ_INT(ntdsb_age_in_read(in, rest, 64, &got, &err), NTDSB_OK);
        CHECK(got == strlen(MARKER) && memcmp(rest, MARKER, got) == 0);
        CHECK_EQ_INT(ntdsb_age_in_read(in, rest, 64, &got, &err), NTDSB_OK);
        CHECK_EQ_INT(got, 0);
        ntdsb_age_in_free(in);
        pthread_join(t, NULL);
        close(pfd[0]);
    }
    close(plain_fd);
    close(age_fd);
    close(out1);
    close(out2);
    free(c.buf);
    free(s);
    free(rest);
    free(data);
    CHECK_EQ_INT(threads_settled(g_base_threads), g_base_threads);
}

/* ---- benchmark -------------------------------------------------------------------------- */

static int bench(size_t mb)
{
    const size_t n = mb * 1024 * 1024;
    uint8_t *p = gen(n, 1), *s = xmalloc(sealed_len_of(n)), *back = xmalloc(n);
    unsigned t;
    for (t = 1; t <= 2; t++) {
        double best_seal = 1e9, best_open = 1e9;
        int run;
        for (run = 0; run < 3; run++) {
            size_t sl = 0, ol = 0;
            ntdsb_error err;
            double t0 = now();
            if (ntdsb_age_seal(KEY, 0, p, n, 1, s, &sl, t, &err) != NTDSB_OK)
                return 1;
            if (now() - t0 < best_seal)
                best_seal = now() - t0;
            t0 = now();
            if (ntdsb_age_open(KEY, 0, s, sl, 1, back, &ol, t, &err) != NTDSB_OK)
                return 1;
            if (now() - t0 < best_open)
                best_open = now() - t0;
        }
        printf("threads %u: seal %.0f MB/s, open %.0f MB/s (%zu MiB, best of 3)\n", t,
               (double)n / best_seal / 1e6, (double)n / best_open / 1e6, mb);
    }
    /* The stage (1 MiB writes, digest on, sink discarding) and the reader
     * (sequential 1 MiB reads of a file in the page cache). */
    for (t = 1; t <= 2; t++) {
        size_t sl = 0, got, total = 0;
        ntdsb_error err;
        collect c;
        ntdsb_sink down = {NTDSB_NO_FILE, count_write, &c};
        ntdsb_out *o = NULL;
        ntdsb_age_in *in = NULL;
        uint8_t md[64];
        double t0, t_out, t_in;
        size_t off;
        int fd;

        memset(&c, 0, sizeof c);
        t0 = now();
        if (ntdsb_out_open(&o, &down, KEY, 1, t, &err) != NTDSB_OK)
            return 1;
        for (off = 0; off < n; off += 1024 * 1024)
            if (ntdsb_out_write(o, p + off, n - off < 1024 * 1024 ? n - off : 1024 * 1024) != 0)
                return 1;
        if (ntdsb_out_finish(o, md, &err) != NTDSB_OK)
            return 1;
        ntdsb_out_free(o);
        t_out = now() - t0;

        if (ntdsb_age_seal(KEY, 0, p, n, 1, s, &sl, 2, &err) != NTDSB_OK)
            return 1;
        fd = file_from_bytes(s, sl);
        t0 = now();
        if (ntdsb_age_in_open(&in, fd, 0, sl, KEY, t, &err) != NTDSB_OK)
            return 1;
        do {
            if (ntdsb_age_in_read(in, back, 1024 * 1024, &got, &err) != NTDSB_OK)
                return 1;
            total += got;
        } while (got > 0);
        ntdsb_age_in_free(in);
        t_in = now() - t0;
        close(fd);
        printf("threads %u: output stage (seal + BLAKE2b) %.0f MB/s, reader %.0f MB/s\n", t,
               (double)n / t_out / 1e6, (double)total / t_in / 1e6);
    }
    free(p);
    free(s);
    free(back);
    return 0;
}

int main(int argc, char **argv)
{
    hex_to(KEY, "10c0b07f6870e5aecbac224763cae0b772965342b92e22919c4b5d4b60cfe74b");
    if (argc >= 3 && strcmp(argv[1], "--bench") == 0)
        return bench((size_t)atol(argv[2]));
    signal(SIGPIPE, SIG_IGN);
    count_base_threads();
    test_kat();
    test_plain_size();
    test_round_trips();
    test_rejections();
    test_pread();
    test_out_stage();
    test_pipe();
    test_restore_from();
    return test_report();
}

/*
 * test_age_none.c - the age functions of a build without libcrypto (the
 * engine linked with aead_none.c, as the Windows build is): every entry point
 * fails cleanly with NTDSB_E_CONFIG and says why, nothing crashes, and the
 * stage still passes bytes through when neither sealing nor a digest is
 * asked for.  Last line "N passed, N failed".
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <string.h>

#include "ntdsb_age.h"
#include "native_check.h"

static int sink_write(void *ctx, const void *buf, size_t len)
{
    size_t *n = ctx;
    (void)buf;
    *n += len;
    return 0;
}

int main(void)
{
    static uint8_t key[32], plain[100], sealed[200];
    ntdsb_error err;
    ntdsb_out *o = NULL;
    ntdsb_age_in *in = NULL;
    size_t n = 0, taken = 0;
    ntdsb_sink down = {NTDSB_NO_FILE, sink_write, &taken};
    const char *why = "this build has no ChaCha20-Poly1305 (built without libcrypto)";

    g_test = "no libcrypto";
    (void)g_base_threads; /* no engine threads here to count */
    CHECK_EQ_INT(ntdsb_age_available(), 0);
    CHECK_EQ_INT(ntdsb_age_seal(key, 0, plain, 100, 1, sealed, &n, 1, &err), NTDSB_E_CONFIG);
    CHECK(strcmp(err.message, why) == 0);
    CHECK_EQ_INT(ntdsb_age_open(key, 0, sealed, 116, 1, plain, &n, 1, &err), NTDSB_E_CONFIG);
    CHECK(strcmp(err.message, why) == 0);
    CHECK_EQ_INT(ntdsb_out_open(&o, &down, key, 0, 1, &err), NTDSB_E_CONFIG);
    CHECK(o == NULL && strcmp(err.message, why) == 0);
    CHECK_EQ_INT(ntdsb_out_open(&o, &down, NULL, 1, 1, &err), NTDSB_E_CONFIG);
    CHECK(strstr(err.message, "BLAKE2b-512") != NULL);
    CHECK_EQ_INT(ntdsb_age_in_open(&in, 0, 0, 116, key, 1, &err), NTDSB_E_CONFIG);
    CHECK(in == NULL);
    /* Nothing asked of the crypto library: the stage is a plain pass-through. */
    CHECK_EQ_INT(ntdsb_out_open(&o, &down, NULL, 0, 1, &err), NTDSB_OK);
    CHECK_EQ_INT(ntdsb_out_write(o, plain, 100), 0);
    CHECK_EQ_INT(ntdsb_out_finish(o, NULL, &err), NTDSB_OK);
    CHECK_EQ_INT(taken, 100);
    ntdsb_out_free(o);
    /* The size rule needs no cipher. */
    {
        uint64_t p = 0;
        CHECK_EQ_INT(ntdsb_age_plain_size(116, &p, &err), NTDSB_OK);
        CHECK_EQ_INT(p, 100);
    }
    return test_report();
}

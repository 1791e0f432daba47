/*
 * emu_auth.c - DsSetAuthIdentityW's identity and the per-DC access check.
 *
 * Like the real DLL, DsSetAuthIdentityW only stores the credentials
 * (process-wide); they are checked by the next call that reaches a server.
 * Without an identity the caller is the "process identity", whose privileges
 * are the DC's default_privileges.
 */
#include "emu_internal.h"

#include <stdlib.h>
#include <string.h>

static ntdsb_mutex id_mu = NTDSB_MUTEX_INIT;
static char *id_user, *id_domain, *id_password; /* NULL user: process identity */

static void clear_locked(void)
{
    if (id_password)
        emu_os_wipe(id_password, strlen(id_password));
    free(id_user);
    free(id_domain);
    free(id_password);
    id_user = id_domain = id_password = NULL;
}

void emu_identity_clear(void)
{
    ntdsb_mutex_lock(&id_mu);
    clear_locked();
    ntdsb_mutex_unlock(&id_mu);
}

HRESULT emu_identity_set(LPCWSTR user, LPCWSTR domain, LPCWSTR password)
{
    char *u = NULL, *d = NULL, *p = NULL;
    HRESULT hr;

    if (!user) {
        emu_identity_clear();
        return 0;
    }
    hr = emu_utf16_to_utf8(user, &u);
    if (!hr && domain)
        hr = emu_utf16_to_utf8(domain, &d);
    if (!hr && password)
        hr = emu_utf16_to_utf8(password, &p);
    if (!hr && !d && !(d = strdup("")))
        hr = ERROR_NOT_ENOUGH_MEMORY;
    if (!hr && !p && !(p = strdup("")))
        hr = ERROR_NOT_ENOUGH_MEMORY;
    if (hr) {
        if (p)
            emu_os_wipe(p, strlen(p));
        free(u);
        free(d);
        free(p);
        return hr;
    }
    ntdsb_mutex_lock(&id_mu);
    clear_locked();
    id_user = u;
    id_domain = d;
    id_password = p;
    ntdsb_mutex_unlock(&id_mu);
    return 0;
}

/* Privileges of user/domain/password on this DC, or -1 if they do not log on. */
static long logon(const emu_conf *c, const char *user, const char *domain, const char *pw)
{
    const char *bs;
    char dombuf[256];
    size_t i;

    /* "CORP\alice" in the user field with no domain: split it.  No domain at
     * all: the DC's own domain. */
    if (!*domain && (bs = strchr(user, '\\')) != NULL && (size_t)(bs - user) < sizeof dombuf) {
        memcpy(dombuf, user, (size_t)(bs - user));
        dombuf[bs - user] = '\0';
        domain = dombuf;
        user = bs + 1;
    }
    if (!*domain)
        domain = c->domain;
    for (i = 0; i < c->naccounts; i++) {
        const emu_account *a = &c->accounts[i];
        uint8_t got[32];
        int ok;
        if (emu_ascii_casecmp(a->user, user) != 0 ||
            emu_ascii_casecmp(a->domain ? a->domain : c->domain, domain) != 0)
            continue;
        if (emu_os_pbkdf2_sha256(pw, strlen(pw), a->salt, a->salt_len, a->iterations, got) != 0)
            return -1;
        ok = emu_os_memeq(got, a->hash, sizeof got);
        emu_os_wipe(got, sizeof got);
        /* First account with this name decides: a wrong password is not
         * retried against a later duplicate line. */
        return ok ? (long)a->privs : -1;
    }
    return -1;
}

HRESULT emu_auth_check(const emu_conf *c, unsigned need, unsigned need_any)
{
    char *u = NULL, *d = NULL, *p = NULL;
    int have_id, oom = 0;
    long privs;

    ntdsb_mutex_lock(&id_mu);
    have_id = id_user != NULL;
    if (have_id) {
        u = strdup(id_user);
        d = strdup(id_domain);
        p = strdup(id_password);
        oom = !u || !d || !p;
    }
    ntdsb_mutex_unlock(&id_mu);
    if (oom) {
        privs = -2;
    } else if (have_id) {
        /* PBKDF2 runs outside the lock: it is slow on purpose. */
        privs = logon(c, u, d, p);
    } else {
        privs = (long)c->default_privs;
    }
    if (p)
        emu_os_wipe(p, strlen(p));
    free(u);
    free(d);
    free(p);
    if (privs == -2)
        return ERROR_NOT_ENOUGH_MEMORY;
    if (privs < 0)
        return ERROR_ACCESS_DENIED;
    if (((unsigned)privs & need) != need)
        return ERROR_ACCESS_DENIED;
    if (need_any && !((unsigned)privs & need_any))
        return ERROR_ACCESS_DENIED;
    return 0;
}

/* dlclose / FreeLibrary: wipe and free the stored password rather than
 * leave it behind. */
__attribute__((destructor)) static void emu_auth_fini(void)
{
    emu_identity_clear();
}

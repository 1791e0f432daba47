/*
 * emu_conf.c - parse ROOT/<DC>/dc.conf into an immutable snapshot.
 *
 * One `key=value` per line, `#` comments, blank lines ignored.  Unknown keys
 * are ignored so older emulators read newer files; a known key with a value
 * that does not parse is ignored too (the default stays), so one typo does
 * not take a whole DC down.  Only `format=` other than 1 is fatal: a future
 * incompatible layout must not be half-understood.
 */
#include "emu_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONF_MAX_BYTES (1u << 20)

static char *trim(char *s)
{
    char *e;

    while (*s == ' ' || *s == '\t')
        s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
        *--e = '\0';
    return s;
}

/* Unsigned: decimal, or hex with 0x.  No sign, no octal surprise ("010" = 10). */
static int parse_u64(const char *s, uint64_t *v)
{
    int base = 10;
    char *end;
    unsigned long long r;

    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s += 2;
    }
    if (!((*s >= '0' && *s <= '9') || (base == 16 && strchr("abcdefABCDEF", *s) && *s)))
        return -1;
    errno = 0;
    r = strtoull(s, &end, base);
    if (errno || *end)
        return -1;
    *v = r;
    return 0;
}

static int parse_i64(const char *s, int64_t *v)
{
    char *end;
    long long r;

    if (!*s)
        return -1;
    errno = 0;
    r = strtoll(s, &end, 10);
    if (errno || *end)
        return -1;
    *v = r;
    return 0;
}

/* HRESULT: parsed as unsigned 32 then cast (0xC7FF000D and 3355377677 agree). */
static int parse_hr(const char *s, HRESULT *hr)
{
    uint64_t v;

    if (parse_u64(s, &v) || v > 0xFFFFFFFFu)
        return -1;
    *hr = (HRESULT)(uint32_t)v;
    return 0;
}

/* Comma list of backup/restore/admin; unknown words ignored (forward). */
static unsigned parse_privs(const char *s)
{
    unsigned p = 0;
    const char *w = s;

    while (*w) {
        const char *e = strchr(w, ',');
        size_t n = e ? (size_t)(e - w) : strlen(w);
        while (n && (*w == ' ' || *w == '\t'))
            w++, n--;
        while (n && (w[n - 1] == ' ' || w[n - 1] == '\t'))
            n--;
        if (n == 6 && emu_ascii_ncasecmp(w, "backup", 6) == 0)
            p |= EMU_PRIV_BACKUP;
        else if (n == 7 && emu_ascii_ncasecmp(w, "restore", 7) == 0)
            p |= EMU_PRIV_RESTORE;
        else if (n == 5 && emu_ascii_ncasecmp(w, "admin", 5) == 0)
            p |= EMU_PRIV_ADMIN;
        if (!e)
            break;
        w = e + 1;
    }
    return p;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int parse_hex(const char *s, uint8_t *out, size_t n)
{
    size_t i;

    if (strlen(s) != 2 * n)
        return -1;
    for (i = 0; i < n; i++) {
        int hi = hexval((unsigned char)s[2 * i]), lo = hexval((unsigned char)s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

static void account_free(emu_account *a)
{
    free(a->domain);
    free(a->user);
    free(a->salt);
}

/* DOMAIN\user:privs:iterations:salthex:hashhex.  0 ok, -1 malformed, -2 OOM. */
static int parse_account(char *v, emu_account *a)
{
    char *f[5], *p = v, *bs;
    size_t i, slen;
    uint64_t it;

    memset(a, 0, sizeof *a);
    for (i = 0; i < 5; i++) {
        f[i] = p;
        p = strchr(p, ':');
        if (i < 4) {
            if (!p)
                return -1;
            *p++ = '\0';
        } else if (p) {
            return -1;
        }
    }
    if (parse_u64(f[2], &it) || it == 0 || it > 0xFFFFFFFFu)
        return -1;
    slen = strlen(f[3]);
    if (slen % 2 || parse_hex(f[4], a->hash, 32))
        return -1;
    a->iterations = (uint32_t)it;
    a->privs = parse_privs(f[1]);
    a->salt_len = slen / 2;
    a->salt = malloc(a->salt_len ? a->salt_len : 1);
    if (!a->salt)
        return -2;
    if (parse_hex(f[3], a->salt, a->salt_len))
        goto bad;
    bs = strchr(f[0], '\\');
    if (bs) {
        *bs = '\0';
        a->domain = strdup(f[0]);
        a->user = strdup(bs + 1);
        if (!a->domain || !a->user)
            goto oom;
    } else {
        /* No domain part: the DC's own domain (decided at check time,
         * because `domain=` may come later in the file). */
        a->user = strdup(f[0]);
        if (!a->user)
            goto oom;
    }
    if (!*a->user)
        goto bad;
    return 0;
oom:
    account_free(a);
    return -2;
bad:
    account_free(a);
    return -1;
}

/* Apply one key; 0 ok (or ignored), -1 fatal (format), -2 OOM. */
static int apply(emu_conf *c, const char *k, char *v)
{
    uint64_t u;
    int64_t i;

    if (!strcmp(k, "format"))
        return (parse_u64(v, &u) == 0 && u == 1) ? 0 : -1;
    if (!strcmp(k, "name")) {
        /* A UNC name must survive the path rules of emu_dc_open. */
        if (*v && emu_utf8_valid(v) && !strpbrk(v, "\\/_")) {
            char *n = strdup(v);
            if (!n)
                return -2;
            free(c->name);
            c->name = n;
        }
    } else if (!strcmp(k, "domain")) {
        char *n = strdup(v);
        if (!n)
            return -2;
        free(c->domain);
        c->domain = n;
    } else if (!strcmp(k, "tombstone_days")) {
        if (!parse_u64(v, &u) && u <= 0xFFFFFFFFu)
            c->tombstone_days = (uint32_t)u;
    } else if (!strcmp(k, "clock_offset")) {
        if (!parse_i64(v, &i))
            c->clock_offset = i;
    } else if (!strcmp(k, "default_privileges")) {
        c->default_privs = parse_privs(v);
    } else if (!strcmp(k, "account")) {
        emu_account a, *na;
        int r = parse_account(v, &a);
        if (r == -2)
            return -2;
        if (r == 0) {
            na = realloc(c->accounts, (c->naccounts + 1) * sizeof *na);
            if (!na) {
                account_free(&a);
                return -2;
            }
            c->accounts = na;
            c->accounts[c->naccounts++] = a;
        }
    } else if (!strcmp(k, "trace")) {
        if (!parse_u64(v, &u))
            c->trace = u != 0;
    } else if (!strcmp(k, "fault_read_hr")) {
        HRESULT hr;
        /* 0 would be "success with no bytes": keep the default instead. */
        if (!parse_hr(v, &hr) && hr != 0)
            c->read_hr = hr;
    } else if (!strcmp(k, "fault_read_after")) {
        if (!parse_u64(v, &u)) {
            c->read_after = u;
            c->has_read_after = 1;
        }
    } else if (!strcmp(k, "fault_short_read")) {
        if (!parse_u64(v, &u) && u <= 0xFFFFFFFFu)
            c->short_read = (uint32_t)u;
    } else if (!strcmp(k, "fault_latency_us")) {
        if (!parse_u64(v, &u))
            c->latency_us = u;
    } else if (!strcmp(k, "fault_bandwidth")) {
        if (!parse_u64(v, &u))
            c->bandwidth = u;
    } else if (!strcmp(k, "fault_offline_after")) {
        if (!parse_u64(v, &u)) {
            c->offline_after = u;
            c->has_offline_after = 1;
        }
    } else if (!strcmp(k, "fault_truncate_hr")) {
        parse_hr(v, &c->truncate_hr);
    } else if (!strcmp(k, "fault_register_hr")) {
        parse_hr(v, &c->register_hr);
    }
    return 0;
}

void emu_conf_free(emu_conf *c)
{
    size_t i;

    if (!c)
        return;
    for (i = 0; i < c->naccounts; i++)
        account_free(&c->accounts[i]);
    free(c->accounts);
    free(c->dcdir);
    free(c->name);
    free(c->domain);
    free(c);
}

HRESULT emu_conf_load(const char *dcdir, const char *folder, emu_conf **out)
{
    emu_conf *c;
    char *path, *line = NULL;
    size_t cap = 0, total = 0;
    long n;
    FILE *f;
    HRESULT hr = 0;

    *out = NULL;
    c = calloc(1, sizeof *c);
    if (!c)
        return ERROR_NOT_ENOUGH_MEMORY;
    c->tombstone_days = 180;
    c->default_privs = EMU_PRIV_BACKUP | EMU_PRIV_RESTORE | EMU_PRIV_ADMIN;
    c->read_hr = hrCommunicationError;
    c->dcdir = strdup(dcdir);
    c->domain = strdup("");
    path = emu_join(dcdir, "dc.conf");
    if (!c->dcdir || !c->domain || !path) {
        free(path);
        emu_conf_free(c);
        return ERROR_NOT_ENOUGH_MEMORY;
    }
    f = emu_os_fopen_read(path);
    free(path);
    if (!f) {
        emu_conf_free(c);
        return hrCouldNotConnect;
    }
    while ((n = emu_os_getline(&line, &cap, f)) >= 0) {
        char *s, *eq;
        int r;
        total += (size_t)n;
        if (total > CONF_MAX_BYTES) {
            hr = hrCouldNotConnect;
            break;
        }
        s = trim(line);
        if (!*s || *s == '#')
            continue;
        eq = strchr(s, '=');
        if (!eq)
            continue;
        *eq = '\0';
        r = apply(c, trim(s), trim(eq + 1));
        if (r == -1) {
            hr = hrCouldNotConnect;
            break;
        }
        if (r == -2) {
            hr = ERROR_NOT_ENOUGH_MEMORY;
            break;
        }
    }
    if (!hr && ferror(f))
        hr = hrCouldNotConnect;
    free(line);
    fclose(f);
    if (!hr && !c->name) {
        /* No usable name=: the folder name is the server name. */
        if (!emu_utf8_valid(folder))
            hr = hrCouldNotConnect;
        else if (!(c->name = strdup(folder)))
            hr = ERROR_NOT_ENOUGH_MEMORY;
    }
    if (hr) {
        emu_conf_free(c);
        return hr;
    }
    *out = c;
    return 0;
}

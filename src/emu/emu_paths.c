/*
 * emu_paths.c - UTF-16 <-> UTF-8, the emulator root, and the mapping between
 * a DC's UNC paths (\\<name>\C$\Windows\NTDS\<file>) and ROOT/<DC>/NTDS/<file>.
 */
#include "emu_internal.h"

#include <stdlib.h>
#include <string.h>

HRESULT emu_utf16_to_utf8(LPCWSTR s, char **out)
{
    size_t n = 0, i, o = 0;
    char *buf;

    *out = NULL;
    if (!s)
        return ERROR_INVALID_PARAMETER;
    while (s[n]) {
        if (++n > EMU_MAX_WCHARS)
            return ERROR_INVALID_PARAMETER;
    }
    /* A BMP unit takes at most 3 bytes; a surrogate pair (2 units) takes 4. */
    buf = malloc(n * 3 + 1);
    if (!buf)
        return ERROR_NOT_ENOUGH_MEMORY;
    for (i = 0; i < n; i++) {
        uint32_t c = s[i];
        if (c >= 0xD800 && c <= 0xDBFF) {
            if (i + 1 >= n || s[i + 1] < 0xDC00 || s[i + 1] > 0xDFFF)
                goto bad;
            c = 0x10000u + ((c - 0xD800u) << 10) + (uint32_t)(s[i + 1] - 0xDC00u);
            i++;
        } else if (c >= 0xDC00 && c <= 0xDFFF) {
            goto bad; /* lone low surrogate: not text, refuse rather than guess */
        }
        if (c < 0x80) {
            buf[o++] = (char)c;
        } else if (c < 0x800) {
            buf[o++] = (char)(0xC0 | (c >> 6));
            buf[o++] = (char)(0x80 | (c & 0x3F));
        } else if (c < 0x10000) {
            buf[o++] = (char)(0xE0 | (c >> 12));
            buf[o++] = (char)(0x80 | ((c >> 6) & 0x3F));
            buf[o++] = (char)(0x80 | (c & 0x3F));
        } else {
            buf[o++] = (char)(0xF0 | (c >> 18));
            buf[o++] = (char)(0x80 | ((c >> 12) & 0x3F));
            buf[o++] = (char)(0x80 | ((c >> 6) & 0x3F));
            buf[o++] = (char)(0x80 | (c & 0x3F));
        }
    }
    buf[o] = '\0';
    *out = buf;
    return 0;
bad:
    free(buf);
    return ERROR_INVALID_PARAMETER;
}

/* Decode one UTF-8 sequence; returns its length or 0 when invalid (overlong,
 * surrogate, > U+10FFFF, truncated). */
static size_t utf8_decode(const unsigned char *s, uint32_t *cp)
{
    uint32_t c = s[0];
    size_t len, i;

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if ((c & 0xE0) == 0xC0) {
        len = 2;
        c &= 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3;
        c &= 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4;
        c &= 0x07;
    } else {
        return 0;
    }
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    if ((len == 2 && c < 0x80) || (len == 3 && c < 0x800) || (len == 4 && c < 0x10000) ||
        c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return len;
}

int emu_utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    uint32_t cp;

    while (*p) {
        size_t n = utf8_decode(p, &cp);
        if (!n)
            return 0;
        p += n;
    }
    return 1;
}

static int fold(int c)
{
    return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

/* ASCII-only folding: locale-independent, and non-ASCII bytes (UTF-8 of
 * "Ü") compare exactly, as the contract with the Python side says. */
int emu_ascii_ncasecmp(const char *a, const char *b, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        int ca = fold((unsigned char)a[i]), cb = fold((unsigned char)b[i]);
        if (ca != cb)
            return ca - cb;
        if (!ca)
            return 0;
    }
    return 0;
}

int emu_ascii_casecmp(const char *a, const char *b)
{
    return emu_ascii_ncasecmp(a, b, (size_t)-1);
}

char *emu_join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *r = malloc(la + lb + 2);

    if (!r)
        return NULL;
    memcpy(r, a, la);
    r[la] = '/';
    memcpy(r + la + 1, b, lb + 1);
    return r;
}

/* Read at each call (not cached) so tests and the Python side can point one
 * process at several roots over time. */
char *emu_root(void)
{
    static const struct {
        const char *var, *below;
    } order[] = {{"NTDSB_EMU_ROOT", NULL},
                 {"XDG_DATA_HOME", "ntdsbackup/emu"},
                 {"HOME", ".local/share/ntdsbackup/emu"}};
    size_t i;

    for (i = 0; i < sizeof order / sizeof order[0]; i++) {
        char *v = emu_os_getenv(order[i].var), *r;
        if (!v)
            continue;
        if (!*v) {
            free(v);
            continue; /* set but empty: as if unset */
        }
        if (!order[i].below)
            return v;
        r = emu_join(v, order[i].below);
        free(v);
        return r;
    }
    return NULL;
}

static const char unc_tail[] = "\\C$\\Windows\\NTDS";

char *emu_unc_dir(const emu_conf *c)
{
    size_t ln = strlen(c->name);
    char *r = malloc(2 + ln + sizeof unc_tail);

    if (!r)
        return NULL;
    r[0] = r[1] = '\\';
    memcpy(r + 2, c->name, ln);
    memcpy(r + 2 + ln, unc_tail, sizeof unc_tail);
    return r;
}

int emu_unc_map(const emu_conf *c, const char *unc, char **file)
{
    char *dir = emu_unc_dir(c);
    size_t ld;
    const char *rest;

    *file = NULL;
    if (!dir)
        return EMU_UNC_NOMEM;
    ld = strlen(dir);
    /* The prefix is compared case-insensitively (Windows paths are); a '/'
     * anywhere or a ".." component could escape the folder: refuse both. */
    if (strchr(unc, '/') || strstr(unc, "..") || emu_ascii_ncasecmp(unc, dir, ld) != 0) {
        free(dir);
        return EMU_UNC_OUTSIDE;
    }
    free(dir);
    rest = unc + ld;
    if (*rest == '\0' || (rest[0] == '\\' && rest[1] == '\0'))
        return EMU_UNC_DIR;
    if (rest[0] != '\\')
        return EMU_UNC_OUTSIDE; /* "\\DC\C$\Windows\NTDSX\..." */
    rest++;
    /* Only files directly in NTDS: no subdirectories, no ".", nothing the
     * system would take for a stream or a device (emu_os_name_unsafe). */
    if (strchr(rest, '\\') || strcmp(rest, ".") == 0 || emu_os_name_unsafe(rest))
        return EMU_UNC_OUTSIDE;
    *file = strdup(rest);
    return *file ? EMU_UNC_FILE : EMU_UNC_NOMEM;
}

/*
 * emu_dc.c - from a server name to a DC folder: ROOT/<name> matched exactly,
 * else case-insensitively (ASCII folding) among the root's entries; the folder
 * must hold a dc.conf.  The name rules are the real API's: leading
 * backslashes optional, no underscore (RPC_S_INVALID_BINDING).
 */
#include "emu_internal.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int has_conf(const char *dir)
{
    char *p = emu_join(dir, "dc.conf");
    struct stat st;
    int ok;

    if (!p)
        return -1;
    ok = stat(p, &st) == 0 && S_ISREG(st.st_mode);
    free(p);
    return ok;
}

/* Folder name for `name` under root: malloc'd, or NULL (*oom set on OOM). */
static char *find_folder(const char *root, const char *name, int *oom)
{
    char *dir = emu_join(root, name), *best = NULL;
    DIR *d;
    struct dirent *e;
    int r;

    *oom = 0;
    if (!dir) {
        *oom = 1;
        return NULL;
    }
    r = has_conf(dir);
    free(dir);
    if (r < 0) {
        *oom = 1;
        return NULL;
    }
    if (r)
        return strdup(name);

    d = opendir(root);
    if (!d)
        return NULL;
    while ((e = readdir(d)) != NULL) {
        char *cand;
        if (e->d_name[0] == '.' || emu_ascii_casecmp(e->d_name, name) != 0)
            continue;
        /* Several case variants: take the smallest by strcmp so every
         * process picks the same one whatever readdir's order. */
        if (best && strcmp(e->d_name, best) >= 0)
            continue;
        cand = emu_join(root, e->d_name);
        if (!cand) {
            *oom = 1;
            break;
        }
        r = has_conf(cand);
        free(cand);
        if (r < 0) {
            *oom = 1;
            break;
        }
        if (r) {
            char *nb = strdup(e->d_name);
            if (!nb) {
                *oom = 1;
                break;
            }
            free(best);
            best = nb;
        }
    }
    closedir(d);
    if (*oom) {
        free(best);
        return NULL;
    }
    return best;
}

HRESULT emu_dc_open(LPCWSTR server, emu_conf **out)
{
    char *u8, *root = NULL, *folder = NULL, *dcdir = NULL;
    const char *name;
    HRESULT hr;
    int oom;

    *out = NULL;
    if (!server)
        return ERROR_INVALID_PARAMETER;
    hr = emu_utf16_to_utf8(server, &u8);
    if (hr == ERROR_NOT_ENOUGH_MEMORY)
        return hr;
    if (hr)
        return RPC_S_INVALID_BINDING;
    name = u8;
    while (*name == '\\')
        name++;
    /* '/' and "."/".." would step outside the root; none is a NetBIOS name. */
    if (!*name || strpbrk(name, "_\\/") || !strcmp(name, ".") || !strcmp(name, "..")) {
        free(u8);
        return RPC_S_INVALID_BINDING;
    }
    root = emu_root();
    if (!root) {
        free(u8);
        return hrCouldNotConnect;
    }
    folder = find_folder(root, name, &oom);
    free(u8);
    if (!folder) {
        free(root);
        return oom ? ERROR_NOT_ENOUGH_MEMORY : hrCouldNotConnect;
    }
    dcdir = emu_join(root, folder);
    free(root);
    if (!dcdir) {
        free(folder);
        return ERROR_NOT_ENOUGH_MEMORY;
    }
    hr = emu_conf_load(dcdir, folder, out);
    free(dcdir);
    free(folder);
    return hr;
}

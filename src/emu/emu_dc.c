/*
 * emu_dc.c - from a server name to a DC folder: ROOT/<name> matched exactly,
 * else case-insensitively (ASCII folding) among the root's entries; the folder
 * must hold a dc.conf.  The name rules are the real API's: leading
 * backslashes optional, no underscore (RPC_S_INVALID_BINDING).  Where the
 * file system folds case (Windows), ROOT/<name> opens whatever the case, so
 * the folder's real spelling always comes from the directory listing: the
 * UNC name a DC reports must not depend on how the caller spelt it.
 */
#include "emu_internal.h"

#include <stdlib.h>
#include <string.h>

static int has_conf(const char *dir)
{
    char *p = emu_join(dir, "dc.conf");
    int ok;

    if (!p)
        return -1;
    ok = emu_os_is_regular(p);
    free(p);
    return ok;
}

/* Folder name for `name` under root: malloc'd, or NULL (*oom set on OOM). */
static char *find_folder(const char *root, const char *name, int *oom)
{
    char *dir = emu_join(root, name), *best = NULL;
    emu_dir *d;
    const char *entry;
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
    if (r && !emu_os_folds_case())
        return strdup(name);

    d = emu_os_opendir(root);
    if (!d)
        return NULL;
    while ((entry = emu_os_readdir(d)) != NULL) {
        char *cand;
        if (entry[0] == '.' || emu_ascii_casecmp(entry, name) != 0)
            continue;
        /* Several case variants: take the smallest by strcmp so every
         * process picks the same one whatever readdir's order. */
        if (best && strcmp(entry, best) >= 0)
            continue;
        cand = emu_join(root, entry);
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
            char *nb = strdup(entry);
            if (!nb) {
                *oom = 1;
                break;
            }
            free(best);
            best = nb;
        }
    }
    emu_os_closedir(d);
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

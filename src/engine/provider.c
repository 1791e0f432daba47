/*
 * provider.c - resolve the ntdsbcli entry points from a shared library.
 */
#include <stdio.h>
#include <string.h>

#include "ntdsb_provider.h"

#ifdef _WIN32
typedef HMODULE module_t;
#else
#include <dlfcn.h>
typedef void *module_t;
#endif

/* Export names, in the order of the struct's function pointers. */
struct symbol_slot {
    const char *name;
    size_t offset;
};

#define SLOT(field, export_name) { export_name, offsetof(ntdsb_provider, field) }
static const struct symbol_slot symbols[] = {
    SLOT(IsNTDSOnlineW, "DsIsNTDSOnlineW"),
    SLOT(BackupPrepareW, "DsBackupPrepareW"),
    SLOT(BackupGetDatabaseNamesW, "DsBackupGetDatabaseNamesW"),
    SLOT(BackupOpenFileW, "DsBackupOpenFileW"),
    SLOT(BackupRead, "DsBackupRead"),
    SLOT(BackupClose, "DsBackupClose"),
    SLOT(BackupGetBackupLogsW, "DsBackupGetBackupLogsW"),
    SLOT(BackupTruncateLogs, "DsBackupTruncateLogs"),
    SLOT(BackupEnd, "DsBackupEnd"),
    SLOT(BackupFree, "DsBackupFree"),
    SLOT(RestoreGetDatabaseLocationsW, "DsRestoreGetDatabaseLocationsW"),
    SLOT(RestorePrepareW, "DsRestorePrepareW"),
    SLOT(RestoreRegisterW, "DsRestoreRegisterW"),
    SLOT(RestoreRegisterComplete, "DsRestoreRegisterComplete"),
    SLOT(RestoreEnd, "DsRestoreEnd"),
    SLOT(SetCurrentBackupLogW, "DsSetCurrentBackupLogW"),
    SLOT(SetAuthIdentityW, "DsSetAuthIdentityW"),
};
#undef SLOT

static void set_err(char *err, size_t errlen, const char *fmt, const char *a, const char *b)
{
    if (err && errlen)
        snprintf(err, errlen, fmt, a, b);
}

#ifdef _WIN32
static module_t load_module(const char *path, char *err, size_t errlen)
{
    wchar_t wpath[32768];
    module_t m;

    if (!MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, path, -1, wpath, 32768)) {
        set_err(err, errlen, "%s: path is not valid UTF-8%s", path, "");
        return NULL;
    }
    m = LoadLibraryW(wpath);
    if (!m) {
        char code[32];
        snprintf(code, sizeof code, "%lu", (unsigned long)GetLastError());
        set_err(err, errlen, "cannot load %s: Windows error %s", path, code);
    }
    return m;
}
#define resolve(m, name) ((void *)GetProcAddress((m), (name)))
#define unload(m) FreeLibrary(m)
#else
static module_t load_module(const char *path, char *err, size_t errlen)
{
    /* RTLD_LOCAL: a provider's symbols must not satisfy anyone else's. */
    module_t m = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!m) {
        const char *why = dlerror();
        set_err(err, errlen, "cannot load %s: %s", path, why ? why : "unknown error");
    }
    return m;
}
#define resolve(m, name) dlsym((m), (name))
#define unload(m) dlclose(m)
#endif

int ntdsb_provider_open(ntdsb_provider *p, const char *path, char *err, size_t errlen)
{
    size_t i;
    module_t m;

    memset(p, 0, sizeof *p);
    m = load_module(path, err, errlen);
    if (!m)
        return NTDSB_PROVIDER_E_LOAD;

    for (i = 0; i < sizeof symbols / sizeof symbols[0]; i++) {
        void *fn = resolve(m, symbols[i].name);
        if (!fn) {
            set_err(err, errlen, "%s does not export %s", path, symbols[i].name);
            unload(m);
            memset(p, 0, sizeof *p);
            return NTDSB_PROVIDER_E_SYMBOL;
        }
        /* Function and object pointers share a representation on every
         * platform with dlsym/GetProcAddress (POSIX requires it). */
        memcpy((char *)p + symbols[i].offset, &fn, sizeof fn);
    }
    p->module = (void *)m;
    return NTDSB_PROVIDER_OK;
}

void ntdsb_provider_close(ntdsb_provider *p)
{
    if (p && p->module) {
        unload((module_t)p->module);
    }
    if (p)
        memset(p, 0, sizeof *p);
}

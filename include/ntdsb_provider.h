/*
 * ntdsb_provider.h - loading an ntdsbcli provider: the real ntdsbcli.dll on
 * Windows, the emulated domain controller (libntdsbemu.so) elsewhere.
 *
 * The engine cannot tell the two apart: both export the same names with the
 * same signatures (ntdsbcli_abi.h).  No Python here.
 */
#ifndef NTDSB_PROVIDER_H
#define NTDSB_PROVIDER_H

#include <stddef.h>
#include "ntdsbcli_abi.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Every entry point the engine calls.  All are required. */
typedef struct ntdsb_provider {
    void *module; /* dlopen() handle or HMODULE; NULL when closed */
    ntdsb_fn_IsNTDSOnlineW IsNTDSOnlineW;
    ntdsb_fn_BackupPrepareW BackupPrepareW;
    ntdsb_fn_BackupGetDatabaseNamesW BackupGetDatabaseNamesW;
    ntdsb_fn_BackupOpenFileW BackupOpenFileW;
    ntdsb_fn_BackupRead BackupRead;
    ntdsb_fn_BackupClose BackupClose;
    ntdsb_fn_BackupGetBackupLogsW BackupGetBackupLogsW;
    ntdsb_fn_BackupTruncateLogs BackupTruncateLogs;
    ntdsb_fn_BackupEnd BackupEnd;
    ntdsb_fn_BackupFree BackupFree;
    ntdsb_fn_RestoreGetDatabaseLocationsW RestoreGetDatabaseLocationsW;
    ntdsb_fn_RestorePrepareW RestorePrepareW;
    ntdsb_fn_RestoreRegisterW RestoreRegisterW;
    ntdsb_fn_RestoreRegisterComplete RestoreRegisterComplete;
    ntdsb_fn_RestoreEnd RestoreEnd;
    ntdsb_fn_SetCurrentBackupLogW SetCurrentBackupLogW;
    ntdsb_fn_SetAuthIdentityW SetAuthIdentityW;
} ntdsb_provider;

/* Status of ntdsb_provider_open. */
#define NTDSB_PROVIDER_OK           0
#define NTDSB_PROVIDER_E_LOAD      (-1) /* the library could not be loaded */
#define NTDSB_PROVIDER_E_SYMBOL    (-2) /* a required export is missing */

/*
 * Load the library at `path` (UTF-8; on Windows converted to UTF-16 for
 * LoadLibraryW) and resolve every entry point into *p.
 *
 * On failure *p is left closed (module == NULL) and `err` (if not NULL,
 * `errlen` bytes) receives a message naming the library and, for
 * NTDSB_PROVIDER_E_SYMBOL, the missing symbol.
 */
int ntdsb_provider_open(ntdsb_provider *p, const char *path, char *err, size_t errlen);

/* Unload; safe on a closed or zeroed provider. */
void ntdsb_provider_close(ntdsb_provider *p);

#ifdef __cplusplus
}
#endif
#endif /* NTDSB_PROVIDER_H */

# The ntdsbcli ABI and the provider loader, as Cython sees them
# (include/ntdsbcli_abi.h, include/ntdsb_provider.h).

from libc.stdint cimport int32_t, int64_t, uint16_t, uint32_t


cdef extern from "ntdsbcli_abi.h" nogil:
    ctypedef int32_t HRESULT
    ctypedef uint16_t WCHAR
    ctypedef int32_t BOOL
    ctypedef uint32_t DWORD
    ctypedef uint32_t ULONG
    ctypedef int32_t LONG
    ctypedef int64_t LARGE_INTEGER
    ctypedef void *PVOID
    ctypedef void *HBC
    ctypedef const WCHAR *LPCWSTR
    ctypedef WCHAR *LPWSTR

    ctypedef struct EDB_RSTMAPW:
        WCHAR *wszDatabaseName
        WCHAR *wszNewDatabaseName

    enum:
        BFT_DIRECTORY
        BFT_DATABASE_DIRECTORY
        BFT_LOG_DIRECTORY
        BFT_LOG
        BFT_LOG_DIR
        BFT_CHECKPOINT_DIR
        BFT_NTDS_DATABASE
        BFT_PATCH_FILE
        BFT_UNKNOWN
        BACKUP_TYPE_FULL
        BACKUP_TYPE_LOGS_ONLY
        BACKUP_TYPE_INCREMENTAL
        RESTORE_TYPE_AUTHORATATIVE
        RESTORE_TYPE_ONLINE
        RESTORE_TYPE_CATCHUP
        ERROR_HANDLE_EOF
        NTDSB_READ_GRANULE
        NTDSB_READ_MIN

    const char *ntdsb_hresult_name(HRESULT hr)


cdef extern from "ntdsb_provider.h" nogil:
    ctypedef struct ntdsb_provider:
        void *module
        HRESULT (*IsNTDSOnlineW)(LPCWSTR, BOOL *) noexcept nogil
        HRESULT (*BackupPrepareW)(LPCWSTR, ULONG, ULONG, PVOID *, DWORD *, HBC *) noexcept nogil
        HRESULT (*BackupGetDatabaseNamesW)(HBC, LPWSTR *, DWORD *) noexcept nogil
        HRESULT (*BackupOpenFileW)(HBC, LPCWSTR, DWORD, LARGE_INTEGER *) noexcept nogil
        HRESULT (*BackupRead)(HBC, PVOID, DWORD, DWORD *) noexcept nogil
        HRESULT (*BackupClose)(HBC) noexcept nogil
        HRESULT (*BackupGetBackupLogsW)(HBC, LPWSTR *, DWORD *) noexcept nogil
        HRESULT (*BackupTruncateLogs)(HBC) noexcept nogil
        HRESULT (*BackupEnd)(HBC) noexcept nogil
        void (*BackupFree)(PVOID) noexcept nogil
        HRESULT (*RestoreGetDatabaseLocationsW)(HBC, LPWSTR *, DWORD *) noexcept nogil
        HRESULT (*RestorePrepareW)(LPCWSTR, ULONG, PVOID, DWORD, HBC *) noexcept nogil
        HRESULT (*RestoreRegisterW)(HBC, LPCWSTR, LPCWSTR, EDB_RSTMAPW *, LONG, LPCWSTR,
                                    ULONG, ULONG) noexcept nogil
        HRESULT (*RestoreRegisterComplete)(HBC, HRESULT) noexcept nogil
        HRESULT (*RestoreEnd)(HBC) noexcept nogil
        HRESULT (*SetCurrentBackupLogW)(LPCWSTR, DWORD) noexcept nogil
        HRESULT (*SetAuthIdentityW)(LPCWSTR, LPCWSTR, LPCWSTR) noexcept nogil

    enum:
        NTDSB_PROVIDER_OK
        NTDSB_PROVIDER_E_LOAD
        NTDSB_PROVIDER_E_SYMBOL

    int ntdsb_provider_open(ntdsb_provider *p, const char *path, char *err, size_t errlen)
    void ntdsb_provider_close(ntdsb_provider *p)


# Python-visible constants: one source of truth, the C header.
BFT = {
    "DIRECTORY": BFT_DIRECTORY,
    "DATABASE_DIRECTORY": BFT_DATABASE_DIRECTORY,
    "LOG_DIRECTORY": BFT_LOG_DIRECTORY,
    "LOG": BFT_LOG,
    "LOG_DIR": BFT_LOG_DIR,
    "CHECKPOINT_DIR": BFT_CHECKPOINT_DIR,
    "NTDS_DATABASE": BFT_NTDS_DATABASE,
    "PATCH_FILE": BFT_PATCH_FILE,
    "UNKNOWN": BFT_UNKNOWN,
}
BACKUP_TYPE = {
    "FULL": BACKUP_TYPE_FULL,
    "LOGS_ONLY": BACKUP_TYPE_LOGS_ONLY,
    "INCREMENTAL": BACKUP_TYPE_INCREMENTAL,
}
RESTORE_TYPE = {
    "AUTHORATATIVE": RESTORE_TYPE_AUTHORATATIVE,
    "ONLINE": RESTORE_TYPE_ONLINE,
    "CATCHUP": RESTORE_TYPE_CATCHUP,
}
READ_GRANULE = NTDSB_READ_GRANULE
READ_MIN = NTDSB_READ_MIN


def hresult_name(hr):
    """Symbolic name of an HRESULT (signed or unsigned 32-bit), or None."""
    cdef const char *name = ntdsb_hresult_name(<HRESULT><uint32_t>(int(hr) & 0xFFFFFFFF))
    return None if name == NULL else name.decode("ascii")

/*
 * ntdsbcli_abi.h - the ntdsbcli.dll ABI as the engine and the emulator see it.
 *
 * On Windows the real SDK headers are the authority: <windows.h> first (the SDK
 * header does not include it), then <ntdsbcli.h> and <ntdsbmsg.h>, as UNICODE.
 * tests/test_windows_abi.py compiles this against mingw-w64's SDK headers and
 * checks every constant and signature below against them.
 *
 * Everywhere else this file defines the same types with the same sizes and the
 * same values, byte for byte, so a buffer or a struct that crosses the ABI has
 * one layout on every platform:
 *   - HRESULT is a signed 32-bit integer; success is hr == 0 only.  Win32 codes
 *     (ERROR_ACCESS_DENIED = 5 ...) are positive, so SUCCEEDED() must never be
 *     used on them.
 *   - WCHAR is a UTF-16LE code unit (uint16_t), never wchar_t (32 bits on Linux).
 *   - BOOL is a 32-bit int, DWORD/ULONG are 32-bit unsigned, LARGE_INTEGER is a
 *     64-bit signed integer (its QuadPart), HBC an opaque pointer.
 */
#ifndef NTDSBCLI_ABI_H
#define NTDSBCLI_ABI_H

#include <stdint.h>

#ifdef _WIN32
/* The engine uses the W entry points, where BFT is a WCHAR.  In an ANSI build
 * BFT is a signed CHAR and BFT_LOG_DIR/BFT_CHECKPOINT_DIR (0x82/0x83) come out
 * negative, so this header is always read as UNICODE. */
#  ifndef UNICODE
#    define UNICODE
#  endif
#  ifndef _UNICODE
#    define _UNICODE
#  endif
#  include <windows.h>
#  if defined(__GNUC__) && !defined(_stdcall)
/* The SDK header spells the calling convention `_stdcall`, which mingw-w64
 * defines only outside strict ISO mode: give -std=c11 builds the same. */
#    define _stdcall __stdcall
#  endif
#  include <ntdsbcli.h>
#  include <ntdsbmsg.h>
#  define NTDSB_WINAPI __stdcall
#  define NTDSB_LI_QUAD(li) ((li).QuadPart)
#else

#define NTDSB_WINAPI
#define NTDSB_LI_QUAD(li) (li)

typedef int32_t HRESULT;
typedef uint16_t WCHAR;
typedef int32_t BOOL;
typedef uint32_t DWORD;
typedef uint32_t ULONG;
typedef int32_t LONG;
typedef int64_t LARGE_INTEGER;
typedef void *PVOID;
typedef DWORD *LPDWORD;
typedef DWORD *PDWORD;
typedef WCHAR *LPWSTR;
typedef const WCHAR *LPCWSTR;
typedef void *HBC;

#ifndef TRUE
#  define TRUE 1
#  define FALSE 0
#endif

typedef struct tagEDB_RSTMAPW {
    WCHAR *wszDatabaseName;     /* name as it was backed up */
    WCHAR *wszNewDatabaseName;  /* new name, including its new location */
} EDB_RSTMAPW, *PEDB_RSTMAPW;

/* BFT_* file-type characters: the first code unit of every list entry. */
#define BFT_DIRECTORY           0x80
#define BFT_DATABASE_DIRECTORY  0x40
#define BFT_LOG_DIRECTORY       0x20
#define BFT_LOG                 (0x01 | BFT_LOG_DIRECTORY)      /* 0x21 '!' */
/* The header expressions give 0x82/0x83; a Docs page prints 0x22/0x23 (wrong). */
#define BFT_LOG_DIR             (0x02 | BFT_DIRECTORY)          /* 0x82 */
#define BFT_CHECKPOINT_DIR      (0x03 | BFT_DIRECTORY)          /* 0x83 */
#define BFT_NTDS_DATABASE       (0x04 | BFT_DATABASE_DIRECTORY) /* 0x44 'D' */
#define BFT_PATCH_FILE          (0x05 | BFT_LOG_DIRECTORY)      /* 0x25 '%' */
#define BFT_UNKNOWN             0x0F

#define BACKUP_TYPE_FULL          0x01
#define BACKUP_TYPE_LOGS_ONLY     0x02
#define BACKUP_TYPE_INCREMENTAL   0x04

#define RESTORE_TYPE_AUTHORATATIVE 0x01  /* sic, as in the SDK */
#define RESTORE_TYPE_ONLINE        0x02
#define RESTORE_TYPE_CATCHUP       0x04

#define BACKUP_DISABLE_INCREMENTAL 0xFFFFFFFFu

/* Success, and the Win32 / RPC codes the documentation names. */
#define S_OK                     ((HRESULT)0)
#define ERROR_SUCCESS            0
#define ERROR_ACCESS_DENIED      5
#define ERROR_NOT_ENOUGH_MEMORY  8
#define ERROR_HANDLE_EOF         38
#define ERROR_INVALID_PARAMETER  87
#define RPC_S_INVALID_BINDING    1702
#define RPC_S_ALREADY_LISTENING  1713

/* ntdsbmsg.h: severity << 30 | facility << 16 | code. */
#define NTDSB_HR_(v) ((HRESULT)(uint32_t)(v))
#define hrNone                      NTDSB_HR_(0x00000000u)
#define hrNyi                       NTDSB_HR_(0xC0000001u)
#define hrInvalidParam              NTDSB_HR_(0xC7FF0001u)
#define hrError                     NTDSB_HR_(0xC7FF0002u)
#define hrInvalidHandle             NTDSB_HR_(0xC7FF0003u)
#define hrRestoreInProgress         NTDSB_HR_(0xC7FF0004u)
#define hrAlreadyOpen               NTDSB_HR_(0xC7FF0005u)
#define hrInvalidRecips             NTDSB_HR_(0xC7FF0006u)
#define hrCouldNotConnect           NTDSB_HR_(0xC7FF0007u)
#define hrRestoreMapExists          NTDSB_HR_(0xC7FF0008u)
#define hrIncrementalBackupDisabled NTDSB_HR_(0xC7FF0009u)
#define hrLogFileNotFound           NTDSB_HR_(0xC7FF000Au)
#define hrCircularLogging           NTDSB_HR_(0xC7FF000Bu)
#define hrNoFullRestore             NTDSB_HR_(0xC7FF000Cu)
#define hrCommunicationError        NTDSB_HR_(0xC7FF000Du)
#define hrFullBackupNotTaken        NTDSB_HR_(0xC7FF000Eu)
#define hrMissingExpiryToken        NTDSB_HR_(0xC7FF000Fu)
#define hrUnknownExpiryTokenFormat  NTDSB_HR_(0xC7FF0010u)
#define hrContentsExpired           NTDSB_HR_(0xC7FF0011u)
#define hrAlreadyListening          ((HRESULT)RPC_S_ALREADY_LISTENING)

/* The ESE-derived codes the emulator and the engine can meet (0xC800xxxx). */
#define hrFileClose                 NTDSB_HR_(0xC8000066u)
#define hrOutOfThreads              NTDSB_HR_(0xC8000067u)
#define hrLogFileCorrupt            NTDSB_HR_(0xC80001F5u)
#define hrBackupInProgress          NTDSB_HR_(0xC80001F9u)
#define hrMissingPreviousLogFile    NTDSB_HR_(0xC80001FDu)
#define hrLogWriteFail              NTDSB_HR_(0xC80001FEu)
#define hrInvalidLogSequence        NTDSB_HR_(0xC8000203u)
#define hrLogSequenceEnd            NTDSB_HR_(0xC8000207u)
#define hrNoBackup                  NTDSB_HR_(0xC8000208u)
#define hrInvalidBackupSequence     NTDSB_HR_(0xC8000209u)
#define hrBackupNotAllowedYet       NTDSB_HR_(0xC800020Bu)
#define hrInvalidBackup             NTDSB_HR_(0xC800020Eu)
#define hrMissingLogFile            NTDSB_HR_(0xC8000210u)
#define hrLogDiskFull               NTDSB_HR_(0xC8000211u)
#define hrBadLogSignature           NTDSB_HR_(0xC8000212u)
#define hrBadDbSignature            NTDSB_HR_(0xC8000213u)
#define hrBadCheckpointSignature    NTDSB_HR_(0xC8000214u)
#define hrCheckpointCorrupt         NTDSB_HR_(0xC8000215u)
#define hrDatabaseInconsistent      NTDSB_HR_(0xC8000226u)
#define hrRestoreLogTooLow          NTDSB_HR_(0xC8000229u)
#define hrRestoreLogTooHigh         NTDSB_HR_(0xC800022Au)
#define hrGivenLogFileIsNotContiguous NTDSB_HR_(0xC800022Cu)
#define hrMissingRestoreLogFiles    NTDSB_HR_(0xC800022Du)
#define hrMissingFullBackup         NTDSB_HR_(0xC8000230u)
#define hrBadBackupDatabaseSize     NTDSB_HR_(0xC8000231u)
#define hrOutOfMemory               NTDSB_HR_(0xC80003F3u)
#define hrReadVerifyFailure         NTDSB_HR_(0xC80003FAu)
#define hrDiskIO                    NTDSB_HR_(0xC80003FEu)
#define hrInvalidPath               NTDSB_HR_(0xC80003FFu)
#define hrInvalidDatabase           NTDSB_HR_(0xC8000404u)
#define hrFileAccessDenied          NTDSB_HR_(0xC8000408u)
#define hrInvalidBufferSize         NTDSB_HR_(0xC8000417u)
#define hrDatabaseCorrupted         NTDSB_HR_(0xC80004B6u)
#define hrDiskFull                  NTDSB_HR_(0xC8000710u)
#define hrPermissionDenied          NTDSB_HR_(0xC8000711u)
#define hrFileNotFound              NTDSB_HR_(0xC8000713u)
#define hrAccessDenied              NTDSB_HR_(0xC8000773u)

#endif /* !_WIN32 */

/* Read-buffer rules of DsBackupOpenFile / DsBackupRead. */
#define NTDSB_READ_GRANULE 8192u
#define NTDSB_READ_MIN     24576u

/*
 * The entry points, as function-pointer types.  One typedef per export keeps
 * the provider struct (ntdsb_provider.h) and the emulator's definitions
 * checked against the same signatures.
 */
typedef HRESULT (NTDSB_WINAPI *ntdsb_fn_IsNTDSOnlineW)(LPCWSTR szServerName, BOOL *pfNTDSOnline);
typedef HRESULT (NTDSB_WINAPI *ntdsb_fn_BackupPrepareW)(LPCWSTR szBackupServer, ULONG grbit,
        ULONG btFlag, PVOID *ppvExpiryToken, LPDWORD pcbExpiryTokenSize, HBC *phbc);
typedef HRESULT (NTDSB_WINAPI *ntdsb_fn_BackupGetDatabaseNamesW)(HBC hbc, LPWSTR *pszAttachmentInfo,
        LPDWORD pcbSize);
typedef HRESULT (NTDSB_WINAPI *ntdsb_fn_BackupOpenFileW)(HBC hbc, LPCWSTR szAttachmentName,
        DWORD cbReadHintSize, LARGE_INTEGER *pliFileSize);
typedef HRESULT (NTDSB_WINAPI *ntdsb_fn_BackupRead)(HBC hbc, PVOID pvBuffer, DWORD cbBuffer,
        PDWORD pcbRead);
typedef HRESULT (NTDSB_WINAPI *ntdsb_fn_BackupClose)(HBC hbc);
typedef HRESULT (NTDSB_WINAPI *ntdsb_fn_BackupGetBackupLogsW)(HBC hbc, LPWSTR *pszBackupLogFiles,
        LPDWORD pcbSize);
typedef HRESULT (NTDSB_WINAPI *ntdsb_fn_BackupTruncateLogs)(HBC hbc);
typedef HRESULT (NTDSB_WINAPI *ntdsb_fn_BackupEnd)(HBC hbc);
typedef void (NTDSB_WINAPI *ntdsb_fn_BackupFree)(PVOID pvBuffer);
typedef HRESULT (NTDSB_WINAPI *ntdsb_fn_RestoreGetDatabaseLocationsW)(HBC hbc,
        LPWSTR *pszDatabaseLocationList, LPDWORD pcbSize);
typedef HRESULT (NTDSB_WINAPI *ntdsb_fn_RestorePrepareW)(LPCWSTR szServerName, ULONG rtFlag,
        PVOID pvExpiryToken, DWORD cbExpiryTokenSize, HBC *phbc);
typedef HRESULT (NTDSB_WINAPI *ntdsb_fn_RestoreRegisterW)(HBC hbc, LPCWSTR szCheckPointFilePath,
        LPCWSTR szLogPath, EDB_RSTMAPW rgrstmap[], LONG crstmap, LPCWSTR szBackupLogPath,
        ULONG genLow, ULONG genHigh);
typedef HRESULT (NTDSB_WINAPI *ntdsb_fn_RestoreRegisterComplete)(HBC hbc, HRESULT hrRestoreState);
typedef HRESULT (NTDSB_WINAPI *ntdsb_fn_RestoreEnd)(HBC hbc);
typedef HRESULT (NTDSB_WINAPI *ntdsb_fn_SetCurrentBackupLogW)(LPCWSTR szServerName, DWORD dwCurrentLog);
typedef HRESULT (NTDSB_WINAPI *ntdsb_fn_SetAuthIdentityW)(LPCWSTR szUserName, LPCWSTR szDomainName,
        LPCWSTR szPassword);

/*
 * Symbolic name of an HRESULT ("hrCouldNotConnect", "ERROR_HANDLE_EOF"), or
 * NULL when the code is not in the table.  The one table every message uses
 * (src/engine/hresult_names.c).
 */
const char *ntdsb_hresult_name(HRESULT hr);

#endif /* NTDSBCLI_ABI_H */

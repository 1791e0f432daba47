"""Exception classes, and the one place that maps error codes to them.

HRESULTs from the provider go through :func:`hresult_error`; engine status
codes through :func:`engine_error`.  Classes subclass the builtin that fits
(PermissionError, ConnectionError, ValueError...) so callers can catch either.
Every message carries the symbolic name and the hex value of the code, and,
where one helps, a hint saying what to do about it.
"""

from __future__ import annotations

__all__ = [
    "NtdsbackupError",
    "ProviderLoadError",
    "HResultError",
    "AccessDenied",
    "ServerUnreachable",
    "InvalidParameter",
    "InvalidHandle",
    "BackupInProgress",
    "RestoreInProgress",
    "ExpiryTokenError",
    "ContentsExpired",
    "CommunicationError",
    "HandleClosedError",
    "DCStateError",
    "ListFormatError",
    "EngineError",
    "ArchiveError",
    "DecryptionError",
    "SignatureError",
    "DatabaseDamaged",
    "KeyFormatError",
    "StorageError",
    "LocationError",
    "UsageError",
    "hresult_error",
    "engine_error",
    "format_hresult",
]


class NtdsbackupError(Exception):
    """Base of every error this package raises on purpose."""


class ProviderLoadError(NtdsbackupError, OSError):
    """The ntdsbcli library, or one of its exports, could not be loaded."""


class HandleClosedError(NtdsbackupError, ValueError):
    """A call on a backup or restore handle that has already been ended."""


class DCStateError(NtdsbackupError):
    """The DC is in the wrong state: offline for a backup, online for a restore."""


class ListFormatError(NtdsbackupError, ValueError):
    """A multi-string list from the provider is malformed."""


class KeyFileError(NtdsbackupError, ValueError):
    """A key, recipient or signature file given on the command line that
    cannot be used (unreadable, malformed, empty): a usage error."""


class ArchiveError(NtdsbackupError, ValueError):
    """An archive is truncated, corrupted, hostile or of an unknown version.

    What the message names is also an attribute, None where it does not
    apply: member (the member's name), chunk_index (the chunk within that
    member), file_offset (that chunk's offset in the file), archive_offset
    (where in the archive the problem is: the bad frame, or for a chunk its
    header).  Both readers set the same ones for the same damage.
    """

    def __init__(self, message: str, *, member: str | None = None,
                 chunk_index: int | None = None, file_offset: int | None = None,
                 archive_offset: int | None = None):
        super().__init__(message)
        self.member = member
        self.chunk_index = chunk_index
        self.file_offset = file_offset
        self.archive_offset = archive_offset


class DecryptionError(ArchiveError):
    """An age header that is malformed, that no given identity or passphrase
    opens, or whose MAC does not hold.  Messages never carry key material or
    passphrases (they end up in logs and JSON events)."""


class SignatureError(ArchiveError):
    """A minisign signature that is malformed, made by a key that is not
    trusted, or that does not verify over the digest or the trusted comment."""


class DatabaseDamaged(NtdsbackupError):
    """The database or its log set fails the ESE checks (bad pages, a bad
    header, a broken or incomplete log chain): a DC could not boot from it.
    verdict is the dbcheck.Verdict with every finding."""

    def __init__(self, message: str, verdict: object = None):
        super().__init__(message)
        self.verdict = verdict


class KeyFormatError(NtdsbackupError, ValueError):
    """An age identity or recipient, a minisign key, or a file of them, that
    cannot be read.  The message names the line, never the secret on it."""


class StorageError(NtdsbackupError, OSError):
    """An object-storage request that failed for good (after its retries), or
    an object that is not what was written.  The message names the bucket
    and key (s3://BUCKET/KEY), never a credential; code is the server's
    error code (NoSuchKey, AccessDenied...) or None for a network failure.
    An OSError, so that the commands exit with the I/O code (7)."""

    def __init__(self, message: str, *, url: str | None = None, code: str | None = None):
        super().__init__(message)
        self.url = url
        self.code = code

    def __str__(self) -> str:
        return str(self.args[0])


class LocationError(NtdsbackupError, ValueError):
    """An object-storage location that cannot be used: malformed, or of a
    kind (az://, gs://) this build does not serve."""


class UsageError(NtdsbackupError, ValueError):
    """What was asked cannot be done with what was given, found before any
    work starts (a retention asked of a target that cannot hold one): the
    command line's exit code 2, as for a bad option."""


def format_hresult(hr: int, name: str | None = None) -> str:
    """``hrCouldNotConnect (0xC7FF0007)``; the name is looked up if not given."""
    hr &= 0xFFFFFFFF
    if name is None:
        name = _name_of(hr)
    return f"{name} (0x{hr:08X})" if name else f"0x{hr:08X}"


class HResultError(NtdsbackupError, OSError):
    """An ntdsbcli call returned a non-zero HRESULT."""

    def __init__(self, call: str, hresult: int, name: str | None = None, hint: str = ""):
        self.call = call
        self.hresult = hresult & 0xFFFFFFFF
        self.name = name
        self.hint = hint
        msg = f"{call} failed: {format_hresult(self.hresult, name or '')}"
        if hint:
            msg += f": {hint}"
        super().__init__(msg)

    def __str__(self) -> str:
        return str(self.args[0])


class AccessDenied(HResultError, PermissionError):
    pass


class ServerUnreachable(HResultError, ConnectionError):
    pass


class InvalidParameter(HResultError, ValueError):
    pass


class InvalidHandle(HResultError):
    pass


class BackupInProgress(HResultError):
    pass


class RestoreInProgress(HResultError):
    pass


class ExpiryTokenError(HResultError):
    pass


class ContentsExpired(ExpiryTokenError):
    pass


class CommunicationError(HResultError, ConnectionError):
    pass


# name -> (class, hint).  Codes not listed map to HResultError with no hint.
_HRESULT_CLASSES: dict[str, tuple[type[HResultError], str]] = {
    "ERROR_ACCESS_DENIED": (
        AccessDenied,
        "the identity lacks the privilege (backup: SeBackupPrivilege; restore: "
        "SeRestorePrivilege and Administrators) or the password is wrong",
    ),
    "hrCouldNotConnect": (
        ServerUnreachable,
        "no such domain controller, or its directory service is not reachable",
    ),
    "RPC_S_INVALID_BINDING": (
        ServerUnreachable,
        "the server name is not valid (no underscores; it must be the local DC)",
    ),
    "ERROR_INVALID_PARAMETER": (InvalidParameter, ""),
    "hrInvalidParam": (InvalidParameter, ""),
    "hrInvalidHandle": (InvalidHandle, "no file is open on this handle"),
    "hrBackupInProgress": (
        BackupInProgress,
        "another backup of this DC is running; wait for it to finish",
    ),
    "hrRestoreInProgress": (
        RestoreInProgress,
        "another restore is registered on this DC",
    ),
    "hrMissingExpiryToken": (
        ExpiryTokenError,
        "the restore needs the expiry token saved with the backup",
    ),
    "hrUnknownExpiryTokenFormat": (
        ExpiryTokenError,
        "the expiry token in the archive is damaged or from another tool",
    ),
    "hrContentsExpired": (
        ContentsExpired,
        "the backup is older than the tombstone lifetime and can no longer be restored",
    ),
    "hrCommunicationError": (
        CommunicationError,
        "the connection to the directory service was lost",
    ),
}


def _name_of(hr: int) -> str | None:
    from ._ntdsbcli import hresult_name

    return hresult_name(hr)


def hresult_error(call: str, hresult: int, name: str | None = None) -> HResultError:
    """The exception for a failed ntdsbcli call (not raised: the caller raises)."""
    if name is None:
        name = _name_of(hresult)
    cls, hint = _HRESULT_CLASSES.get(name or "", (HResultError, ""))
    return cls(call, hresult, name, hint)


class EngineError(NtdsbackupError, OSError):
    """A failure inside the engine's GIL-free pipeline, recorded and re-raised.

    Attributes: status (NTDSB_E_*), status_name, hresult/call (provider
    failures), file, chunk_index and offset of the chunk being processed.
    """

    def __init__(self, message: str, *, status: int, status_name: str, file: str | None = None,
                 chunk_index: int | None = None, offset: int | None = None,
                 hresult: int | None = None, call: str | None = None,
                 sys_errno: int | None = None):
        self.status = status
        self.status_name = status_name
        self.file = file
        self.chunk_index = chunk_index
        self.offset = offset
        self.hresult = hresult
        self.call = call
        self.sys_errno = sys_errno
        self.detail = message     # the engine's own words; engine_error() may add more
        super().__init__(message)

    def __str__(self) -> str:
        return str(self.args[0])


def engine_error(status: int, status_name: str, detail: str, *, file: str | None = None,
                 chunk_index: int | None = None, offset: int | None = None,
                 hresult: int | None = None, call: str | None = None,
                 sys_errno: int | None = None) -> Exception:
    """The exception for an engine status code (not raised: the caller raises)."""
    where = ""
    if file is not None:
        where = f" in {file}"
        if chunk_index is not None:
            where += f" at chunk {chunk_index} (offset {offset})"
    if hresult is not None and status_name == "NTDSB_E_PROVIDER":
        base = hresult_error(call or "provider", hresult)
        msg = f"{base}{where}"
        err = EngineError(msg, status=status, status_name=status_name, file=file,
                          chunk_index=chunk_index, offset=offset, hresult=base.hresult,
                          call=call, sys_errno=sys_errno)
        err.__cause__ = base
        return err
    if status_name == "NTDSB_E_NOMEM":
        return MemoryError(f"out of memory{where}: {detail}")
    msg = f"{detail}{where}" if detail else f"{status_name}{where}"
    err = EngineError(msg, status=status, status_name=status_name, file=file,
                      chunk_index=chunk_index, offset=offset, hresult=hresult, call=call,
                      sys_errno=sys_errno)
    err.detail = detail
    return err

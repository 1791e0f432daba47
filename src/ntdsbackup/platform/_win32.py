"""The Windows calls behind platform.files: files and directories created
with an explicit security descriptor, the hidden attribute, and the OS
HANDLE behind a CRT descriptor.  Imported on Windows only (ctypes.windll).
"""

from __future__ import annotations

import ctypes
import msvcrt
import os
from ctypes import wintypes

__all__ = ["create_directory", "create_file", "get_osfhandle", "set_hidden"]

_GENERIC_READ = 0x80000000
_GENERIC_WRITE = 0x40000000
_FILE_SHARE_ALL = 0x1 | 0x2 | 0x4           # READ | WRITE | DELETE
_CREATE_NEW = 1
_FILE_ATTRIBUTE_HIDDEN = 0x2
_FILE_ATTRIBUTE_NORMAL = 0x80
_FILE_FLAG_OPEN_REPARSE_POINT = 0x00200000
_INVALID_FILE_ATTRIBUTES = 0xFFFFFFFF
_SDDL_REVISION_1 = 1
_INVALID_HANDLE_VALUE = wintypes.HANDLE(-1).value


class _SecurityAttributes(ctypes.Structure):
    _fields_ = [("nLength", wintypes.DWORD),
                ("lpSecurityDescriptor", wintypes.LPVOID),
                ("bInheritHandle", wintypes.BOOL)]


_kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
_advapi32 = ctypes.WinDLL("advapi32", use_last_error=True)

_CreateFileW = _kernel32.CreateFileW
_CreateFileW.argtypes = [wintypes.LPCWSTR, wintypes.DWORD, wintypes.DWORD,
                         ctypes.POINTER(_SecurityAttributes), wintypes.DWORD, wintypes.DWORD,
                         wintypes.HANDLE]
_CreateFileW.restype = wintypes.HANDLE
_CreateDirectoryW = _kernel32.CreateDirectoryW
_CreateDirectoryW.argtypes = [wintypes.LPCWSTR, ctypes.POINTER(_SecurityAttributes)]
_CreateDirectoryW.restype = wintypes.BOOL
_CloseHandle = _kernel32.CloseHandle
_CloseHandle.argtypes = [wintypes.HANDLE]
_LocalFree = _kernel32.LocalFree
_LocalFree.argtypes = [wintypes.LPVOID]
_LocalFree.restype = wintypes.LPVOID
_GetFileAttributesW = _kernel32.GetFileAttributesW
_GetFileAttributesW.argtypes = [wintypes.LPCWSTR]
_GetFileAttributesW.restype = wintypes.DWORD
_SetFileAttributesW = _kernel32.SetFileAttributesW
_SetFileAttributesW.argtypes = [wintypes.LPCWSTR, wintypes.DWORD]
_SetFileAttributesW.restype = wintypes.BOOL
_ConvertSddl = _advapi32.ConvertStringSecurityDescriptorToSecurityDescriptorW
_ConvertSddl.argtypes = [wintypes.LPCWSTR, wintypes.DWORD, ctypes.POINTER(wintypes.LPVOID),
                         ctypes.POINTER(wintypes.ULONG)]
_ConvertSddl.restype = wintypes.BOOL


def _error(path: str) -> OSError:
    # OSError maps the Windows code to the errno subclass (FileExistsError
    # for ERROR_FILE_EXISTS / ERROR_ALREADY_EXISTS).
    code = ctypes.get_last_error()
    return OSError(None, ctypes.FormatError(code), path, code)


class _Security:
    """SECURITY_ATTRIBUTES from an SDDL string, freed on exit."""

    def __init__(self, sddl: str):
        self.sd = wintypes.LPVOID()
        if not _ConvertSddl(sddl, _SDDL_REVISION_1, ctypes.byref(self.sd), None):
            raise _error(sddl)
        self.attrs = _SecurityAttributes(ctypes.sizeof(_SecurityAttributes), self.sd, False)

    def __enter__(self) -> _SecurityAttributes:
        return self.attrs

    def __exit__(self, *exc) -> None:
        _LocalFree(self.sd)


def create_file(path: str, sddl: str, *, hidden: bool, fd_flags: int) -> int:
    """A new file (CREATE_NEW: fails if the name exists, a link included,
    which is not followed) with the security descriptor `sddl`, as a CRT
    descriptor with `fd_flags`.  Every share mode is granted: the engine
    opens a second handle to the file (ReOpenFile), and the commit renames
    it."""
    attrs = _FILE_ATTRIBUTE_HIDDEN if hidden else _FILE_ATTRIBUTE_NORMAL
    with _Security(sddl) as sa:
        handle = _CreateFileW(path, _GENERIC_READ | _GENERIC_WRITE, _FILE_SHARE_ALL,
                              ctypes.byref(sa), _CREATE_NEW,
                              attrs | _FILE_FLAG_OPEN_REPARSE_POINT, None)
    if handle is None or handle == _INVALID_HANDLE_VALUE:
        raise _error(path)
    try:
        return msvcrt.open_osfhandle(handle, fd_flags)
    except BaseException:
        _CloseHandle(handle)
        raise


def create_directory(path: str, sddl: str, *, hidden: bool) -> None:
    """A new directory with the security descriptor `sddl`."""
    with _Security(sddl) as sa:
        if not _CreateDirectoryW(path, ctypes.byref(sa)):
            raise _error(path)
    if hidden:
        set_hidden(path, True)


def set_hidden(path: str, hidden: bool) -> None:
    """Set or clear FILE_ATTRIBUTE_HIDDEN, the other attributes kept."""
    now = _GetFileAttributesW(path)
    if now == _INVALID_FILE_ATTRIBUTES:
        raise _error(path)
    new = now | _FILE_ATTRIBUTE_HIDDEN if hidden else now & ~_FILE_ATTRIBUTE_HIDDEN
    if new != now and not _SetFileAttributesW(path, new or _FILE_ATTRIBUTE_NORMAL):
        raise _error(path)


def get_osfhandle(fd: int) -> int:
    return msvcrt.get_osfhandle(fd)


def set_binary(fd: int) -> None:
    msvcrt.setmode(fd, os.O_BINARY)


_OpenProcess = _kernel32.OpenProcess
_OpenProcess.argtypes = [wintypes.DWORD, wintypes.BOOL, wintypes.DWORD]
_OpenProcess.restype = wintypes.HANDLE
_GetExitCodeProcess = _kernel32.GetExitCodeProcess
_GetExitCodeProcess.argtypes = [wintypes.HANDLE, ctypes.POINTER(wintypes.DWORD)]
_GetExitCodeProcess.restype = wintypes.BOOL
_PROCESS_QUERY_LIMITED_INFORMATION = 0x1000
_STILL_ACTIVE = 259
_ERROR_INVALID_PARAMETER = 87


def process_exists(pid: int) -> bool:
    """Whether process `pid` runs (OpenProcess fails with
    ERROR_INVALID_PARAMETER for a pid that names no process).  When in doubt
    (access denied, an odd error, a process whose exit code happens to be
    STILL_ACTIVE), it counts as running: nobody's work is removed."""
    handle = _OpenProcess(_PROCESS_QUERY_LIMITED_INFORMATION, False, pid)
    if not handle:
        return ctypes.get_last_error() != _ERROR_INVALID_PARAMETER
    try:
        code = wintypes.DWORD()
        if not _GetExitCodeProcess(handle, ctypes.byref(code)):
            return True
        return code.value == _STILL_ACTIVE
    finally:
        _CloseHandle(handle)

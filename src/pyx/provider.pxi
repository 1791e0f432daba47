# Provider, BackupContext and RestoreContext: thin, GIL-releasing wrappers over
# the ntdsbcli entry points.  Phase sequencing lives in Python
# (ntdsbackup.backup / ntdsbackup.restore); these classes only own handles and
# DLL buffers, and turn HRESULTs into exceptions through ntdsbackup.errors.

from libc.stdlib cimport malloc, free

from ntdsbackup import errors as _errors


cdef bytes _wide(object s):
    """A str as a NUL-terminated UTF-16LE buffer (WCHAR is UTF-16, never wchar_t)."""
    if not isinstance(s, str):
        raise TypeError(f"expected str, got {type(s).__name__}")
    return (<str>s).encode("utf-16-le") + b"\x00\x00"


cdef inline LPCWSTR _wptr(bytes b):
    return <LPCWSTR><const char *>b


cdef int _check(HRESULT hr, str call) except -1:
    """Success is hr == 0 only: Win32 codes are positive (reference section 5)."""
    if hr != 0:
        raise _errors.hresult_error(call, <uint32_t>hr, hresult_name(<uint32_t>hr))
    return 0


cdef bytes _take_list(ntdsb_provider *prov, LPWSTR buf, DWORD cb):
    """Copy a DLL-allocated multi-string list and give it back with DsBackupFree."""
    cdef bytes data
    try:
        data = (<const char *>buf)[:cb] if buf != NULL else b""
    finally:
        if buf != NULL:
            prov.BackupFree(buf)
    return data


cdef class Provider:
    """An ntdsbcli provider loaded from a shared library.

    The library is never unloaded: handles and DLL buffers may outlive this
    object (garbage collection order is not ours to choose), and a provider
    is loaded once per process in practice (see ntdsbackup.provider).
    """

    cdef ntdsb_provider prov
    cdef readonly str path

    def __cinit__(self, path):
        cdef char err[512]
        cdef bytes bpath = _os.fsencode(path)
        err[0] = 0
        rc = ntdsb_provider_open(&self.prov, bpath, err, sizeof(err))
        if rc != NTDSB_PROVIDER_OK:
            raise _errors.ProviderLoadError(err.decode("utf-8", "replace"))
        self.path = _os.fsdecode(bpath)

    def __repr__(self):
        return f"<Provider {self.path!r}>"

    def set_auth_identity(self, user, domain, password):
        """DsSetAuthIdentityW; None for all three reverts to the process identity."""
        cdef bytes wu = _wide(user) if user is not None else None
        cdef bytes wd = _wide(domain) if domain is not None else None
        cdef bytes wp = _wide(password) if password is not None else None
        cdef LPCWSTR pu = _wptr(wu) if wu is not None else NULL
        cdef LPCWSTR pd = _wptr(wd) if wd is not None else NULL
        cdef LPCWSTR pp = _wptr(wp) if wp is not None else NULL
        cdef HRESULT hr
        with nogil:
            hr = self.prov.SetAuthIdentityW(pu, pd, pp)
        _check(hr, "DsSetAuthIdentityW")

    def is_ntds_online(self, server):
        """DsIsNTDSOnlineW: True when the directory service is running."""
        cdef bytes ws = _wide(server)
        cdef LPCWSTR pserver = _wptr(ws)
        cdef BOOL online = 0
        cdef HRESULT hr
        with nogil:
            hr = self.prov.IsNTDSOnlineW(pserver, &online)
        _check(hr, "DsIsNTDSOnlineW")
        return online != 0

    def backup_prepare(self, server, unsigned long backup_type=BACKUP_TYPE_FULL,
                       unsigned long grbit=0):
        """DsBackupPrepareW: a BackupContext owning the handle and the expiry token."""
        cdef bytes ws = _wide(server)
        cdef LPCWSTR pserver = _wptr(ws)
        cdef PVOID token = NULL
        cdef DWORD cb = 0
        cdef HBC hbc = NULL
        cdef HRESULT hr
        with nogil:
            hr = self.prov.BackupPrepareW(pserver, grbit, backup_type, &token, &cb, &hbc)
        if hr != 0:
            # A failed prepare owns nothing, but be defensive about a DLL that
            # handed out a token anyway.
            if token != NULL:
                self.prov.BackupFree(token)
            _check(hr, "DsBackupPrepareW")
        ctx = BackupContext.__new__(BackupContext)
        (<BackupContext>ctx)._init(&self.prov, hbc, token, cb, server)
        return ctx

    def restore_prepare(self, server, token, unsigned long restore_type=0):
        """DsRestorePrepareW.  token=None asks for the restricted handle
        (DsRestoreGetDatabaseLocationsW only)."""
        cdef bytes ws = _wide(server)
        cdef LPCWSTR pserver = _wptr(ws)
        cdef const unsigned char[::1] view
        cdef PVOID ptok = NULL
        cdef DWORD cb = 0
        cdef HBC hbc = NULL
        cdef HRESULT hr
        if token is not None:
            view = token
            cb = <DWORD>view.shape[0]
            ptok = <PVOID>&view[0] if cb else <PVOID><const char *>b""
        with nogil:
            hr = self.prov.RestorePrepareW(pserver, restore_type, ptok, cb, &hbc)
        _check(hr, "DsRestorePrepareW")
        ctx = RestoreContext.__new__(RestoreContext)
        (<RestoreContext>ctx)._init(&self.prov, hbc, server, token is None)
        return ctx

    def set_current_backup_log(self, server, unsigned long current_log):
        """DsSetCurrentBackupLogW."""
        cdef bytes ws = _wide(server)
        cdef LPCWSTR pserver = _wptr(ws)
        cdef HRESULT hr
        with nogil:
            hr = self.prov.SetCurrentBackupLogW(pserver, current_log)
        _check(hr, "DsSetCurrentBackupLogW")

    def _context_for_handle(self, size_t address, kind="backup"):
        """Test hook: a context over an arbitrary handle value, with the
        ended-handle guard off, so the provider's own checks can be exercised."""
        cls = BackupContext if kind == "backup" else RestoreContext
        ctx = cls.__new__(cls)
        (<_Context>ctx).prov = self.prov
        (<_Context>ctx).hbc = <HBC>address
        (<_Context>ctx).guard = False
        (<_Context>ctx).server = "?"
        return ctx


cdef class _Context:
    """What backup and restore contexts share: a copy of the provider's entry
    points (valid forever, the library is never unloaded) and the handle."""

    cdef ntdsb_provider prov
    cdef HBC hbc
    cdef readonly bint ended
    cdef public bint guard     # refuse calls on an ended handle (tests turn it off)
    cdef readonly str server

    cdef int _usable(self) except -1:
        if self.guard and (self.ended or self.hbc == NULL):
            raise _errors.HandleClosedError(f"the handle for {self.server!r} has been ended")
        return 0

    @property
    def handle(self):
        """The raw HBC value (for diagnostics)."""
        return <size_t>self.hbc

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if not self.ended:
            self.end()
        return False

    def get_database_locations(self):
        """DsRestoreGetDatabaseLocationsW: the raw multi-string list (bytes).
        The 2000-era SDK allows it on a backup handle too."""
        cdef LPWSTR buf = NULL
        cdef DWORD cb = 0
        cdef HRESULT hr
        self._usable()
        with nogil:
            hr = self.prov.RestoreGetDatabaseLocationsW(self.hbc, &buf, &cb)
        data = _take_list(&self.prov, buf, cb)
        _check(hr, "DsRestoreGetDatabaseLocationsW")
        return data


cdef class BackupContext(_Context):
    """A backup handle (DsBackupPrepareW).  end() calls DsBackupEnd; so do the
    context manager and, as a last resort, garbage collection."""

    cdef PVOID token_ptr
    cdef DWORD token_size

    cdef void _init(self, ntdsb_provider *prov, HBC hbc, PVOID token, DWORD cb, str server):
        self.prov = prov[0]
        self.hbc = hbc
        self.token_ptr = token
        self.token_size = cb
        self.guard = True
        self.server = server

    def __dealloc__(self):
        # Last resort only: the Python layer ends handles explicitly.  Plain C
        # calls, no Python objects (they may already be cleared).
        if self.token_ptr != NULL:
            self.prov.BackupFree(self.token_ptr)
            self.token_ptr = NULL
        if self.hbc != NULL and not self.ended and self.guard:
            self.prov.BackupEnd(self.hbc)
            self.hbc = NULL

    @property
    def token(self):
        """A copy of the expiry token bytes (None once freed)."""
        if self.token_ptr == NULL:
            return None
        return (<const char *>self.token_ptr)[:self.token_size]

    def free_token(self):
        """DsBackupFree on the token (reference section 7 step 7)."""
        if self.token_ptr != NULL:
            self.prov.BackupFree(self.token_ptr)
            self.token_ptr = NULL

    def get_database_names(self):
        """DsBackupGetDatabaseNamesW: the raw multi-string list (bytes)."""
        cdef LPWSTR buf = NULL
        cdef DWORD cb = 0
        cdef HRESULT hr
        self._usable()
        with nogil:
            hr = self.prov.BackupGetDatabaseNamesW(self.hbc, &buf, &cb)
        data = _take_list(&self.prov, buf, cb)
        _check(hr, "DsBackupGetDatabaseNamesW")
        return data

    def get_backup_logs(self):
        """DsBackupGetBackupLogsW: the raw multi-string list (bytes)."""
        cdef LPWSTR buf = NULL
        cdef DWORD cb = 0
        cdef HRESULT hr
        self._usable()
        with nogil:
            hr = self.prov.BackupGetBackupLogsW(self.hbc, &buf, &cb)
        data = _take_list(&self.prov, buf, cb)
        _check(hr, "DsBackupGetBackupLogsW")
        return data

    def open_file(self, name, unsigned long read_hint):
        """DsBackupOpenFileW: returns the file size in bytes."""
        cdef bytes wn = _wide(name)
        cdef LPCWSTR pname = _wptr(wn)
        cdef LARGE_INTEGER size = 0
        cdef HRESULT hr
        self._usable()
        with nogil:
            hr = self.prov.BackupOpenFileW(self.hbc, pname, read_hint, &size)
        _check(hr, "DsBackupOpenFileW")
        return size

    def read(self, unsigned char[::1] buf not None):
        """DsBackupRead into a writable buffer; returns the byte count, 0 at
        end of file (ERROR_HANDLE_EOF)."""
        cdef DWORD got = 0
        cdef DWORD cb = <DWORD>buf.shape[0]
        cdef HRESULT hr
        cdef PVOID p = <PVOID>&buf[0] if cb else NULL
        self._usable()
        with nogil:
            hr = self.prov.BackupRead(self.hbc, p, cb, &got)
        if hr == ERROR_HANDLE_EOF:
            return 0
        _check(hr, "DsBackupRead")
        return got

    def backup_file(self, unsigned long long file_size, str name, *, fd=None, write=None,
                    out=None, progress=None, unsigned int chunk_size=1048576,
                    unsigned int threads=0, unsigned int ring_depth=0, int level=1,
                    bint serial=False, pages=None):
        """Stream the open file through the engine (GIL released for the whole
        file): DsBackupRead into a ring of chunk_size buffers, XXH3-128 and
        zstd per chunk on `threads` workers, frames in order to `fd` (no GIL)
        or to write(bytes), or through an OutputStage `out` (sealed and
        digested, no GIL).  progress(done_bytes) is called between chunks.
        pages: a PageChecker, whose checks the workers run on every chunk.

        Returns {"stats", "xxh3_128" (16 bytes), "chunks": [(raw_offset,
        raw_size, frame_size, stream_offset, hash16), ...]}.  DsBackupClose is
        the caller's (phase sequencing stays in Python).
        """
        self._usable()
        if (fd is not None) + (write is not None) + (out is not None) != 1:
            raise ValueError("give exactly one of fd, write and out")
        return _run_backup_file(&self.prov, self.hbc, file_size, name, fd, write, out, progress,
                                chunk_size, threads, ring_depth, level, serial, pages)

    def close_file(self):
        """DsBackupClose."""
        cdef HRESULT hr
        self._usable()
        with nogil:
            hr = self.prov.BackupClose(self.hbc)
        _check(hr, "DsBackupClose")

    def truncate_logs(self):
        """DsBackupTruncateLogs."""
        cdef HRESULT hr
        self._usable()
        with nogil:
            hr = self.prov.BackupTruncateLogs(self.hbc)
        _check(hr, "DsBackupTruncateLogs")

    def end(self):
        """DsBackupEnd.  The handle counts as ended even when End reports an
        error: it must never be ended twice."""
        cdef HRESULT hr
        self._usable()
        if self.token_ptr != NULL:
            self.prov.BackupFree(self.token_ptr)
            self.token_ptr = NULL
        with nogil:
            hr = self.prov.BackupEnd(self.hbc)
        self.ended = True
        _check(hr, "DsBackupEnd")


cdef class RestoreContext(_Context):
    """A restore handle (DsRestorePrepareW).  end() calls DsRestoreEnd."""

    cdef readonly bint restricted
    # Set the moment the provider accepted the call, inside this compiled
    # method: no Python line runs between the call and the flag, so code that
    # must decide "roll forward or back" after an interruption knows exactly
    # whether the DC holds a registration (and whether it was completed).
    cdef readonly bint registered
    cdef readonly bint completed

    cdef void _init(self, ntdsb_provider *prov, HBC hbc, str server, bint restricted):
        self.prov = prov[0]
        self.hbc = hbc
        self.guard = True
        self.server = server
        self.restricted = restricted

    def __dealloc__(self):
        if self.hbc != NULL and not self.ended and self.guard:
            self.prov.RestoreEnd(self.hbc)
            self.hbc = NULL

    def register(self, checkpoint_dir, log_dir, restore_map, backup_log_dir,
                 unsigned long gen_low, unsigned long gen_high):
        """DsRestoreRegisterW.  restore_map: sequence of (old_name, new_name)."""
        cdef bytes wc = _wide(checkpoint_dir)
        cdef bytes wl = _wide(log_dir)
        cdef bytes wb = _wide(backup_log_dir)
        cdef LPCWSTR pc = _wptr(wc)
        cdef LPCWSTR pl = _wptr(wl)
        cdef LPCWSTR pb = _wptr(wb)
        cdef list keep = []
        cdef Py_ssize_t n = len(restore_map), i
        cdef EDB_RSTMAPW *rmap = NULL
        cdef HRESULT hr
        self._usable()
        if n:
            rmap = <EDB_RSTMAPW *>malloc(n * sizeof(EDB_RSTMAPW))
            if rmap == NULL:
                raise MemoryError()
        try:
            for i, (old, new) in enumerate(restore_map):
                wo = _wide(old)
                wn = _wide(new)
                keep += [wo, wn]
                rmap[i].wszDatabaseName = <WCHAR *><const char *>wo
                rmap[i].wszNewDatabaseName = <WCHAR *><const char *>wn
            with nogil:
                hr = self.prov.RestoreRegisterW(self.hbc, pc, pl, rmap, <LONG>n, pb,
                                                gen_low, gen_high)
        finally:
            free(rmap)
        if hr == 0:
            self.registered = True
        _check(hr, "DsRestoreRegisterW")

    def register_complete(self, hr_state):
        """DsRestoreRegisterComplete with S_OK (0) or the failure code."""
        cdef HRESULT state = <HRESULT><uint32_t>(int(hr_state) & 0xFFFFFFFF)
        cdef HRESULT hr
        self._usable()
        with nogil:
            hr = self.prov.RestoreRegisterComplete(self.hbc, state)
        if hr == 0 and state == 0:
            self.completed = True
        _check(hr, "DsRestoreRegisterComplete")

    def end(self):
        """DsRestoreEnd; the handle counts as ended even if End reports an error."""
        cdef HRESULT hr
        self._usable()
        with nogil:
            hr = self.prov.RestoreEnd(self.hbc)
        self.ended = True
        _check(hr, "DsRestoreEnd")

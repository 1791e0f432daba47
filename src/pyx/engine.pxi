# The backup engine (include/ntdsb_engine.h): one call per file, the GIL
# released for the whole file.  The engine records the first failure; it is
# turned into one exception here, after every engine thread has stopped.

from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.exc cimport PyErr_CheckSignals
from cpython.ref cimport PyObject
from libc.stdint cimport intptr_t, uint8_t, uint64_t
from libc.string cimport memset

from ntdsbackup import errors as _errors
from ntdsbackup.platform.files import os_handle as _os_handle


cdef extern from "ntdsb_engine.h" nogil:
    # An int (a descriptor) on POSIX, an intptr_t holding a HANDLE on
    # Windows: the header decides, Cython only needs an integer that holds
    # both.  Python descriptors become one through _os_handle (the engine's
    # C runtime need not be CPython's); NTDSB_NO_FILE (-1) is "none".
    ctypedef intptr_t ntdsb_file
    ntdsb_file NTDSB_NO_FILE

    enum:
        NTDSB_OK
        NTDSB_E_CANCELLED
        NTDSB_E_CALLBACK
        NTDSB_E_PROVIDER
        NTDSB_CHUNK_MIN
        NTDSB_CHUNK_MAX
        NTDSB_RING_MIN
        NTDSB_RING_MAX
        NTDSB_CHUNK_HEADER_SIZE

    ctypedef struct ntdsb_error:
        int status
        HRESULT hr
        const char *call
        size_t lib_code
        int sys_errno
        uint64_t chunk_index
        uint64_t offset
        char message[256]

    ctypedef struct ntdsb_backup_config:
        uint32_t chunk_size
        uint32_t ring_depth
        uint32_t threads
        int level
        int serial
        ntdsb_pages *pages

    ctypedef struct ntdsb_backup_stats:
        uint64_t bytes_read
        uint64_t bytes_written
        uint64_t chunks
        uint64_t read_calls
        double wall_seconds
        double read_seconds
        double compress_seconds
        double write_seconds
        double reader_wait_seconds
        double writer_wait_seconds

    ctypedef struct ntdsb_hash128:
        uint8_t bytes[16]

    ctypedef struct ntdsb_chunk_entry:
        uint64_t raw_offset
        uint32_t raw_size
        uint32_t frame_size
        uint64_t stream_offset
        ntdsb_hash128 hash

    ctypedef struct ntdsb_chunk_table:
        ntdsb_chunk_entry *entries
        uint64_t count
        uint64_t capacity

    ctypedef int (*ntdsb_write_fn)(void *ctx, const void *buf, size_t len) noexcept nogil
    ctypedef int (*ntdsb_cancel_fn)(void *ctx) noexcept nogil

    ctypedef struct ntdsb_sink:
        ntdsb_file fd
        ntdsb_write_fn write
        void *ctx

    const char *ntdsb_status_name(int status)
    void ntdsb_backup_config_init(ntdsb_backup_config *cfg)
    uint32_t ntdsb_cpu_count()
    void ntdsb_chunk_table_free(ntdsb_chunk_table *t)
    int ntdsb_backup_file(const ntdsb_provider *prov, HBC hbc, uint64_t file_size,
                          const ntdsb_backup_config *cfg, const ntdsb_sink *sink,
                          ntdsb_cancel_fn cancel, void *cancel_ctx,
                          ntdsb_backup_stats *stats, ntdsb_hash128 *file_hash,
                          ntdsb_chunk_table *table, ntdsb_error *err)


CHUNK_MIN = NTDSB_CHUNK_MIN
CHUNK_MAX = NTDSB_CHUNK_MAX
CHUNK_HEADER_SIZE = NTDSB_CHUNK_HEADER_SIZE


def cpu_count():
    """Online CPUs, as the engine counts them."""
    return ntdsb_cpu_count()


def default_backup_config():
    """The engine's defaults: chunk_size, ring_depth, threads, level, serial."""
    cdef ntdsb_backup_config cfg
    ntdsb_backup_config_init(&cfg)
    return {"chunk_size": cfg.chunk_size, "ring_depth": cfg.ring_depth,
            "threads": cfg.threads, "level": cfg.level, "serial": bool(cfg.serial)}


cdef class _HookState:
    """What the write callback and the cancel hook need, owned by one call."""

    cdef object write          # callable(bytes) or None
    cdef object progress       # callable(done_bytes) or None
    cdef object error          # the exception a hook caught, re-raised later
    cdef ntdsb_chunk_table *table
    cdef uint64_t chunk_size
    cdef uint64_t file_size


cdef int _hook_write(void *ctx, const void *buf, size_t n) noexcept nogil:
    # Called by the engine from this (the calling) thread, in order.
    with gil:
        state = <_HookState><PyObject *>ctx
        try:
            state.write(PyBytes_FromStringAndSize(<const char *>buf, n))
            return 0
        except BaseException as exc:
            state.error = exc
            return -1


cdef int _hook_cancel(void *ctx) noexcept nogil:
    # Between chunks and every 100 ms while waiting: run Python's signal
    # handlers (Ctrl-C raises KeyboardInterrupt here) and report progress.
    with gil:
        state = <_HookState><PyObject *>ctx
        try:
            PyErr_CheckSignals()
            if state.progress is not None:
                done = min(state.table.count * state.chunk_size, state.file_size)
                state.progress(done)
            return 0
        except BaseException as exc:
            state.error = exc
            return 1


cdef dict _stats_dict(ntdsb_backup_stats *s):
    return {
        "bytes_read": s.bytes_read, "bytes_written": s.bytes_written, "chunks": s.chunks,
        "read_calls": s.read_calls, "wall_seconds": s.wall_seconds,
        "read_seconds": s.read_seconds, "compress_seconds": s.compress_seconds,
        "write_seconds": s.write_seconds, "reader_wait_seconds": s.reader_wait_seconds,
        "writer_wait_seconds": s.writer_wait_seconds,
    }


cdef object _engine_exception(ntdsb_error *err, str file):
    hr = None
    if err.status == NTDSB_E_PROVIDER:
        hr = <uint32_t>err.hr
    return _errors.engine_error(
        err.status, ntdsb_status_name(err.status).decode("ascii"),
        err.message.decode("utf-8", "replace"), file=file,
        chunk_index=err.chunk_index, offset=err.offset, hresult=hr,
        call=err.call.decode("ascii") if err.call != NULL else None,
        sys_errno=err.sys_errno or None)


cdef object _run_backup_file(ntdsb_provider *prov, HBC hbc, uint64_t file_size, str name,
                             object fd, object write, object out, object progress,
                             uint32_t chunk_size,
                             uint32_t threads, uint32_t ring_depth, int level, bint serial,
                             object pages):
    cdef ntdsb_backup_config cfg
    cdef ntdsb_sink sink
    cdef ntdsb_backup_stats stats
    cdef ntdsb_hash128 digest
    cdef ntdsb_chunk_table table
    cdef ntdsb_error err
    cdef _HookState state = _HookState()
    cdef int rc
    cdef uint64_t i

    ntdsb_backup_config_init(&cfg)
    cfg.chunk_size = chunk_size
    cfg.threads = threads if threads else cfg.threads
    cfg.ring_depth = ring_depth
    cfg.level = level
    cfg.serial = serial
    cfg.pages = _pages_arg(pages)
    memset(&stats, 0, sizeof(stats))
    memset(&table, 0, sizeof(table))
    memset(&err, 0, sizeof(err))
    memset(&sink, 0, sizeof(sink))
    state.write = write
    state.progress = progress
    state.table = &table
    state.chunk_size = chunk_size
    state.file_size = file_size
    if out is not None:
        _stage_as_sink(out, &sink)
    elif fd is not None:
        sink.fd = _os_handle(fd)
    else:
        sink.fd = NTDSB_NO_FILE
        sink.write = _hook_write
        sink.ctx = <void *>state
    try:
        with nogil:
            rc = ntdsb_backup_file(prov, hbc, file_size, &cfg, &sink, _hook_cancel,
                                   <void *>state, &stats, &digest, &table, &err)
        if rc != NTDSB_OK:
            # A hook's own exception (KeyboardInterrupt, a failing writer) wins:
            # it is the cause, the engine status only says where it stopped.
            if state.error is not None and rc in (NTDSB_E_CANCELLED, NTDSB_E_CALLBACK):
                raise state.error
            if out is not None and rc == NTDSB_E_CALLBACK:
                raise out.engine_error()       # the stage's reason (disk full...)
            raise _engine_exception(&err, name)
        chunks = [(table.entries[i].raw_offset, table.entries[i].raw_size,
                   table.entries[i].frame_size, table.entries[i].stream_offset,
                   (<const char *>table.entries[i].hash.bytes)[:16])
                  for i in range(table.count)]
        return {"stats": _stats_dict(&stats), "xxh3_128": (<const char *>digest.bytes)[:16],
                "chunks": chunks}
    finally:
        ntdsb_chunk_table_free(&table)

# The restore/verify pipeline (include/ntdsb_restore.h): one file's chunk frames
# from an archive descriptor, decompressed in parallel, every chunk verified,
# written in order.  Same hook and error conventions as the backup engine.


cdef extern from "ntdsb_restore.h" nogil:
    ctypedef struct ntdsb_restore_config:
        uint32_t threads
        uint32_t ring_depth
        uint32_t max_raw_size
        ntdsb_pages *pages

    ctypedef struct ntdsb_restore_stats:
        uint64_t bytes_in
        uint64_t bytes_out
        uint64_t chunks
        double wall_seconds
        double read_seconds
        double decompress_seconds
        double write_seconds

    # stop is the engine's atomic_int flag, opaque here.
    ctypedef int (*ntdsb_read_fn)(void *ctx, void *buf, size_t len, size_t *got,
                                  void *stop, ntdsb_error *err) noexcept nogil

    ctypedef struct ntdsb_source:
        ntdsb_file fd
        ntdsb_read_fn read
        void *ctx

    int ntdsb_restore_from(const ntdsb_source *src, ntdsb_file out_fd, uint64_t file_size,
                           const ntdsb_restore_config *cfg,
                           ntdsb_cancel_fn cancel, void *cancel_ctx,
                           ntdsb_restore_stats *stats, ntdsb_hash128 *file_hash,
                           ntdsb_error *err)


cdef extern from "ntdsb_age.h" nogil:
    int ntdsb_age_in_source_read(void *r, void *buf, size_t len, size_t *got, void *stop,
                                 ntdsb_error *err)


cdef class _RestoreHook:
    cdef object progress
    cdef object error
    cdef ntdsb_restore_stats *stats


cdef int _restore_cancel(void *ctx) noexcept nogil:
    with gil:
        hook = <_RestoreHook><PyObject *>ctx
        try:
            PyErr_CheckSignals()
            if hook.progress is not None:
                hook.progress(hook.stats.bytes_out)
            return 0
        except BaseException as exc:
            hook.error = exc
            return 1


def restore_file(source, int out_fd, unsigned long long file_size, str name, *,
                 unsigned int threads=0, unsigned int ring_depth=0,
                 unsigned int max_raw_size=0, progress=None, pages=None):
    """Consume exactly one file's chunk frames from source (a descriptor, at
    its position, or an AgeReader: the plaintext of an encrypted archive),
    verify every chunk, write the data to out_fd (-1: verify only).  The GIL
    is released for the whole file.  pages: a PageChecker, whose checks the
    workers run on every chunk they decompress.  Returns {"stats",
    "xxh3_128"}; raises EngineError naming the file, chunk and offset on the
    first problem."""
    cdef ntdsb_restore_config cfg
    cdef ntdsb_restore_stats stats
    cdef ntdsb_hash128 digest
    cdef ntdsb_error err
    cdef _RestoreHook hook = _RestoreHook()
    cdef int rc
    # Descriptors in, what the engine takes out (HANDLEs on Windows); -1
    # stays -1, NTDSB_NO_FILE (verify only).
    cdef ntdsb_source src
    cdef ntdsb_file out_file = _os_handle(out_fd)
    cdef AgeReader reader
    memset(&src, 0, sizeof(src))
    memset(&cfg, 0, sizeof(cfg))
    cfg.pages = _pages_arg(pages)
    if isinstance(source, AgeReader):
        reader = <AgeReader>source
        src.fd = NTDSB_NO_FILE
        src.read = ntdsb_age_in_source_read
        src.ctx = <void *>reader._reader()
    else:
        src.fd = _os_handle(source)
    memset(&stats, 0, sizeof(stats))
    memset(&err, 0, sizeof(err))
    cfg.threads = threads
    cfg.ring_depth = ring_depth
    cfg.max_raw_size = max_raw_size
    hook.progress = progress
    hook.stats = &stats
    with nogil:
        rc = ntdsb_restore_from(&src, out_file, file_size, &cfg, _restore_cancel,
                                <void *>hook, &stats, &digest, &err)
    if rc != NTDSB_OK:
        if hook.error is not None and rc == NTDSB_E_CANCELLED:
            raise hook.error
        raise _engine_exception(&err, name)
    return {"stats": {"bytes_in": stats.bytes_in, "bytes_out": stats.bytes_out,
                      "chunks": stats.chunks, "wall_seconds": stats.wall_seconds,
                      "read_seconds": stats.read_seconds,
                      "decompress_seconds": stats.decompress_seconds,
                      "write_seconds": stats.write_seconds},
            "xxh3_128": (<const char *>digest.bytes)[:16]}

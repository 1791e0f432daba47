# The age payload (include/ntdsb_age.h): the output stage every encrypted or
# signed backup writes through, and the reader of a sealed payload.  The
# header (stanzas, MAC) is ntdsbackup.crypto's; here only the payload key.
from cpython.buffer cimport PyBUF_SIMPLE, PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer
from libc.stdint cimport UINT64_MAX


cdef extern from "ntdsb_age.h" nogil:
    enum:
        NTDSB_AGE_KEY_SIZE
        NTDSB_AGE_CHUNK_SIZE
        NTDSB_DIGEST_SIZE
        NTDSB_DIGEST_NONE
        NTDSB_DIGEST_STORED
        NTDSB_DIGEST_PLAIN
    ctypedef struct ntdsb_out:
        pass
    ctypedef struct ntdsb_age_in:
        pass
    int ntdsb_age_available()
    int ntdsb_age_plain_size(uint64_t sealed_len, uint64_t *plain_len, ntdsb_error *err)
    int ntdsb_out_open(ntdsb_out **out, const ntdsb_sink *down, const uint8_t *payload_key,
                       int want_digest, unsigned threads, ntdsb_error *err)
    int ntdsb_out_raw(ntdsb_out *o, const void *buf, size_t len, ntdsb_error *err)
    int ntdsb_out_write(void *o, const void *buf, size_t len)
    const ntdsb_error *ntdsb_out_error(const ntdsb_out *o)
    uint64_t ntdsb_out_plain_bytes(const ntdsb_out *o)
    uint64_t ntdsb_out_stored_bytes(const ntdsb_out *o)
    int ntdsb_out_take_digest(ntdsb_out *o, uint8_t *digest, ntdsb_error *err)
    int ntdsb_out_finish(ntdsb_out *o, uint8_t *digest, ntdsb_error *err)
    void ntdsb_out_free(ntdsb_out *o)
    int ntdsb_age_in_open(ntdsb_age_in **r, ntdsb_file f, uint64_t payload_start,
                          uint64_t sealed_size, const uint8_t *key, unsigned threads,
                          ntdsb_error *err)
    uint64_t ntdsb_age_in_size(const ntdsb_age_in *r)
    int ntdsb_age_in_pread(ntdsb_age_in *r, void *buf, size_t len, uint64_t off,
                           size_t *got, ntdsb_error *err)
    int ntdsb_age_in_read(ntdsb_age_in *r, void *buf, size_t len, size_t *got,
                          ntdsb_error *err)
    int ntdsb_age_in_seek(ntdsb_age_in *r, uint64_t pos, ntdsb_error *err)
    uint64_t ntdsb_age_in_tell(const ntdsb_age_in *r)
    void ntdsb_age_in_free(ntdsb_age_in *r)


AGE_CHUNK_SIZE = NTDSB_AGE_CHUNK_SIZE
DIGEST_NONE = NTDSB_DIGEST_NONE
DIGEST_STORED = NTDSB_DIGEST_STORED        # of every byte stored: a file's signature
DIGEST_PLAIN = NTDSB_DIGEST_PLAIN          # of the plaintext: a stream's embedded one


def age_available():
    """Whether this build can seal and open age payloads (libcrypto)."""
    return bool(ntdsb_age_available())


def age_plain_size(unsigned long long sealed_len):
    """The plaintext size of a sealed payload of that length; ArchiveError-
    style EngineError when no valid payload has it."""
    cdef uint64_t plain = 0
    cdef ntdsb_error err
    memset(&err, 0, sizeof(err))
    if ntdsb_age_plain_size(sealed_len, &plain, &err) != NTDSB_OK:
        raise _engine_exception(&err, None)
    return plain


cdef bytes _key_bytes(object key):
    if key is None:
        return None
    key = bytes(key)
    if len(key) != NTDSB_AGE_KEY_SIZE:
        raise ValueError(f"a payload key is {NTDSB_AGE_KEY_SIZE} bytes, not {len(key)}")
    return key


cdef class _DownWriter:
    """A Python write(bytes) below the output stage (a file object sink)."""
    cdef object write
    cdef object error


cdef int _down_write(void *ctx, const void *buf, size_t n) noexcept nogil:
    # Called by the stage from the thread that writes into it, in order.
    with gil:
        down = <_DownWriter><PyObject *>ctx
        try:
            done = down.write(PyBytes_FromStringAndSize(<const char *>buf, n))
            if done is not None and done != n:
                raise OSError(f"short write to the archive ({done} of {n} bytes)")
            return 0
        except BaseException as exc:
            down.error = exc
            return -1


cdef class OutputStage:
    """Everything an encrypted or signed backup writes, in order: sealed into
    age chunks when given a payload key, digested (BLAKE2b-512) of the bytes
    stored (digest=DIGEST_STORED) or of the plaintext (DIGEST_PLAIN), then
    written to `fd` (no GIL) or given to write(bytes).  The engine writes
    through it directly (backup_file(out=)).
    """
    cdef ntdsb_out *o
    cdef ntdsb_sink down
    cdef _DownWriter py_down
    cdef bint finished

    def __cinit__(self, *, fd=None, write=None, payload_key=None, int digest=0,
                  unsigned int threads=0):
        cdef ntdsb_error err
        cdef bytes key = _key_bytes(payload_key)
        cdef const uint8_t *key_ptr = NULL
        if (fd is None) == (write is None):
            raise ValueError("give exactly one of fd and write")
        if digest not in (NTDSB_DIGEST_NONE, NTDSB_DIGEST_STORED, NTDSB_DIGEST_PLAIN):
            raise ValueError(f"digest must be DIGEST_NONE, DIGEST_STORED or DIGEST_PLAIN, "
                             f"not {digest}")
        memset(&err, 0, sizeof(err))
        memset(&self.down, 0, sizeof(self.down))
        if fd is not None:
            self.down.fd = _os_handle(fd)
        else:
            self.py_down = _DownWriter()
            self.py_down.write = write
            self.down.fd = NTDSB_NO_FILE
            self.down.write = _down_write
            self.down.ctx = <void *>self.py_down
        if key is not None:
            key_ptr = <const uint8_t *>key
        if ntdsb_out_open(&self.o, &self.down, key_ptr, digest, threads, &err) != NTDSB_OK:
            raise _engine_exception(&err, None)

    def __dealloc__(self):
        if self.o != NULL:
            ntdsb_out_free(self.o)
            self.o = NULL

    cdef int _check(self, int rc, const ntdsb_error *err) except -1:
        if rc == NTDSB_OK:
            return 0
        if self.py_down is not None and self.py_down.error is not None:
            exc, self.py_down.error = self.py_down.error, None
            raise exc
        raise _engine_exception(<ntdsb_error *>err, None)

    cdef ntdsb_out *_open_stage(self) except NULL:
        if self.o == NULL or self.finished:
            raise ValueError("the output stage is finished")
        return self.o

    def raw(self, data):
        """Bytes stored as they are (the age header and nonce), digested."""
        cdef ntdsb_out *o = self._open_stage()
        cdef const unsigned char[::1] view = bytes(data)
        cdef ntdsb_error err
        cdef int rc
        memset(&err, 0, sizeof(err))
        rc = ntdsb_out_raw(o, &view[0] if view.shape[0] else NULL, view.shape[0], &err)
        self._check(rc, &err)

    def write(self, data):
        """Plaintext archive bytes (sealed in order with what the engine writes)."""
        cdef ntdsb_out *o = self._open_stage()
        cdef Py_buffer buf
        cdef int rc
        PyObject_GetBuffer(data, &buf, PyBUF_SIMPLE)
        try:
            if self.py_down is None:
                with nogil:
                    rc = ntdsb_out_write(o, buf.buf, buf.len)
            else:
                rc = ntdsb_out_write(o, buf.buf, buf.len)
        finally:
            PyBuffer_Release(&buf)
        self._check(0 if rc == 0 else -1, ntdsb_out_error(o))

    def engine_error(self):
        """After backup_file failed with NTDSB_E_CALLBACK: the stage's own
        reason (a write error of the file, or the file object's exception)."""
        if self.py_down is not None and self.py_down.error is not None:
            exc, self.py_down.error = self.py_down.error, None
            return exc
        if self.o == NULL:
            return None
        return _engine_exception(<ntdsb_error *>ntdsb_out_error(self.o), None)

    @property
    def plain_bytes(self):
        return ntdsb_out_plain_bytes(self.o) if self.o != NULL else 0

    @property
    def stored_bytes(self):
        return ntdsb_out_stored_bytes(self.o) if self.o != NULL else 0

    def take_digest(self):
        """The digest of what went through so far (64 bytes); what is written
        afterwards is not digested."""
        cdef ntdsb_out *o = self._open_stage()
        cdef uint8_t digest[64]
        cdef ntdsb_error err
        memset(&err, 0, sizeof(err))
        self._check(ntdsb_out_take_digest(o, digest, &err), &err)
        return (<const char *>digest)[:64]

    def finish(self):
        """Seal the final chunk and store it; the digest (64 bytes) or None."""
        cdef ntdsb_out *o = self._open_stage()
        cdef uint8_t digest[64]
        cdef ntdsb_error err
        cdef int rc
        memset(&err, 0, sizeof(err))
        self.finished = True
        if self.py_down is None:
            with nogil:
                rc = ntdsb_out_finish(o, digest, &err)
        else:
            rc = ntdsb_out_finish(o, digest, &err)
        self._check(rc, &err)
        return (<const char *>digest)[:64]


cdef int _stage_as_sink(object stage, ntdsb_sink *sink) except -1:
    # The engine's sink becomes the stage: its frames are sealed and
    # digested in order with what Python writes, all without the GIL.
    if not isinstance(stage, OutputStage):
        raise TypeError(f"out must be an OutputStage, not {type(stage).__name__}")
    sink.fd = NTDSB_NO_FILE
    sink.write = ntdsb_out_write
    sink.ctx = <void *>(<OutputStage>stage)._open_stage()
    return 0


cdef class AgeReader:
    """The plaintext of a sealed age payload in descriptor `fd` (left open),
    starting at payload_start.  sealed_size None: a pipe, read in order;
    otherwise the rest of a seekable file, checked (length, final chunk)
    here, read anywhere.  Every byte handed out has been authenticated."""
    cdef ntdsb_age_in *r
    cdef readonly object fd
    cdef readonly bint seekable

    def __cinit__(self, int fd, unsigned long long payload_start, sealed_size, payload_key,
                  *, unsigned int threads=0):
        cdef bytes key = _key_bytes(payload_key)
        cdef uint64_t sealed = UINT64_MAX if sealed_size is None else sealed_size
        cdef ntdsb_file f = _os_handle(fd)
        cdef ntdsb_error err
        cdef int rc
        cdef const uint8_t *key_ptr
        if key is None:
            raise ValueError("an age reader needs the payload key")
        key_ptr = <const uint8_t *>key
        memset(&err, 0, sizeof(err))
        self.fd = fd
        self.seekable = sealed_size is not None
        with nogil:
            rc = ntdsb_age_in_open(&self.r, f, payload_start, sealed, key_ptr, threads, &err)
        if rc != NTDSB_OK:
            raise _engine_exception(&err, None)

    def __dealloc__(self):
        if self.r != NULL:
            ntdsb_age_in_free(self.r)
            self.r = NULL

    cdef ntdsb_age_in *_reader(self) except NULL:
        if self.r == NULL:
            raise ValueError("I/O operation on a closed age reader")
        return self.r

    def close(self):
        if self.r != NULL:
            ntdsb_age_in_free(self.r)
            self.r = NULL

    @property
    def size(self):
        """The plaintext size, or None while unknown (a pipe)."""
        cdef uint64_t n = ntdsb_age_in_size(self._reader())
        return None if n == UINT64_MAX else n

    def readinto(self, buffer):
        cdef ntdsb_age_in *r = self._reader()
        cdef Py_buffer buf
        cdef size_t got = 0
        cdef ntdsb_error err
        cdef int rc
        memset(&err, 0, sizeof(err))
        PyObject_GetBuffer(buffer, &buf, PyBUF_WRITABLE)
        try:
            with nogil:
                rc = ntdsb_age_in_read(r, buf.buf, buf.len, &got, &err)
        finally:
            PyBuffer_Release(&buf)
        if rc != NTDSB_OK:
            raise _engine_exception(&err, None)
        return got

    def read(self, Py_ssize_t n):
        """Up to n bytes from the current position; b"" only at the end."""
        out = bytearray(n)
        got = self.readinto(out)
        del out[got:]
        return bytes(out)

    def pread(self, Py_ssize_t n, unsigned long long offset):
        """Up to n bytes at offset (seekable only); the position is unchanged."""
        cdef ntdsb_age_in *r = self._reader()
        cdef size_t got = 0
        cdef ntdsb_error err
        cdef int rc
        out = bytearray(n)
        cdef unsigned char[::1] view = out
        memset(&err, 0, sizeof(err))
        if n:
            with nogil:
                rc = ntdsb_age_in_pread(r, &view[0], n, offset, &got, &err)
            if rc != NTDSB_OK:
                raise _engine_exception(&err, None)
        del view
        del out[got:]
        return bytes(out)

    def seek(self, unsigned long long pos):
        cdef ntdsb_error err
        memset(&err, 0, sizeof(err))
        if ntdsb_age_in_seek(self._reader(), pos, &err) != NTDSB_OK:
            raise _engine_exception(&err, None)
        return pos

    def tell(self):
        return ntdsb_age_in_tell(self._reader())

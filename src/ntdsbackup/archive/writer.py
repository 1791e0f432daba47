"""Archive writer: metadata frames from Python, file chunks from the C engine,
both into one sink, with the offsets the seek index needs."""

from __future__ import annotations

import json
import os

import xxhash
import zstandard

from .framing import META_MAGIC, FrameHeader, pack_index, pack_signature
from .members import (
    MANIFEST_NAME,
    TRAILER_NAME,
    FileRecord,
    document_member,
    padding,
    tar_header,
)


class Sink:
    """Where archive bytes go: a file descriptor (the engine then writes with
    no GIL at all) or any object with write(bytes) (the engine calls back).
    Encrypted or signed archives go through an output stage in between
    (through()): the engine writes into it without the GIL as well.

    offset counts archive (plaintext) bytes: the seek index is in those."""

    def __init__(self, *, fd: int | None = None, fileobj=None):
        if (fd is None) == (fileobj is None):
            raise ValueError("give exactly one of fd and fileobj")
        self.fd = fd
        self.fileobj = fileobj
        self.offset = 0
        self.stage = None
        self._stored_digest = False

    def through(self, *, payload_key: bytes | None, digest: int, envelope: bytes = b"",
                threads: int = 0) -> None:
        """From now on, seal (with payload_key) and/or digest what is written
        (digest: _ntdsbcli.DIGEST_NONE, _STORED or _PLAIN); envelope (the age
        header and nonce) is stored first, as it is."""
        from .._ntdsbcli import DIGEST_STORED, OutputStage

        down = {"fd": self.fd} if self.fd is not None else {"write": self.fileobj.write}
        self.stage = OutputStage(payload_key=payload_key, digest=digest, threads=threads,
                                 **down)
        self._stored_digest = digest == DIGEST_STORED
        if envelope:
            self.stage.raw(envelope)

    def engine_target(self) -> dict:
        """The keyword backup_file() takes for this sink."""
        if self.stage is not None:
            return {"out": self.stage}
        return {"fd": self.fd} if self.fd is not None else {"write": self.engine_write}

    def take_digest(self) -> bytes:
        """The BLAKE2b-512 of the plaintext written so far (DIGEST_PLAIN): what
        a signature embedded after it covers."""
        assert self.stage is not None
        return self.stage.take_digest()

    def finish(self) -> bytes | None:
        """Seal and store the final chunk; the BLAKE2b-512 of every byte stored
        with DIGEST_STORED (a signature file's subject), else None."""
        if self.stage is None:
            return None
        digest = self.stage.finish()
        return digest if self._stored_digest else None

    @property
    def stored(self) -> int:
        """Bytes written to the destination (envelope and tags included)."""
        return self.stage.stored_bytes if self.stage is not None else self.offset

    def write(self, data: bytes) -> None:
        if self.stage is not None:
            self.stage.write(data)
        elif self.fd is not None:
            view = memoryview(data)
            while view:
                n = os.write(self.fd, view)
                view = view[n:]
        else:
            n = self.fileobj.write(data)
            if n is not None and n != len(data):
                raise OSError(f"short write to the archive ({n} of {len(data)} bytes)")
        self.offset += len(data)

    def engine_write(self, data) -> None:
        """Callback sink for the engine (called with the GIL held, in order)."""
        n = self.fileobj.write(data)
        if n is not None and n != len(data):
            raise OSError(f"short write to the archive ({n} of {len(data)} bytes)")

    def advance(self, n: int) -> None:
        """Account for n bytes the engine wrote."""
        self.offset += n

    def flush(self, durable: bool = True) -> None:
        if self.fd is not None:
            if durable:
                try:
                    os.fsync(self.fd)
                except OSError:
                    pass  # pipes and terminals cannot be synced
        else:
            flush = getattr(self.fileobj, "flush", None)
            if flush:
                flush()


class ArchiveWriter:
    def __init__(self, sink: Sink, *, level: int, mtime: int):
        self.sink = sink
        self.mtime = mtime
        self._cctx = zstandard.ZstdCompressor(level=level, write_checksum=True,
                                              write_content_size=True)
        self._meta_index = 0
        self._index_files: list[dict] = []

    def write_meta(self, raw: bytes) -> None:
        """One metadata frame: header, then raw compressed as one zstd frame."""
        frame = self._cctx.compress(raw)
        hdr = FrameHeader(META_MAGIC, len(raw), len(frame), self._meta_index,
                          xxhash.xxh3_128_digest(raw))
        self._meta_index += 1
        self.sink.write(hdr.pack() + frame)

    def write_manifest(self, doc: dict) -> None:
        self.write_meta(document_member(MANIFEST_NAME, doc, self.mtime))

    def begin_file(self, rec: FileRecord) -> None:
        self._index_files.append({"name": rec.name, "header_offset": self.sink.offset})
        self.write_meta(tar_header(rec.name, rec.size, self.mtime, rec.pax()))
        self._index_files[-1]["data_offset"] = self.sink.offset

    def end_file(self, rec: FileRecord, chunk_table: list[tuple], stream_start: int) -> None:
        """After the engine wrote the file's chunks starting at stream_start.
        chunk_table rows: (raw_offset, raw_size, frame_size, stream_offset, hash)."""
        entry = self._index_files[-1]
        entry["chunks"] = [[stream_start + row[3], row[0], row[1], row[2]] for row in chunk_table]
        pad = padding(rec.size)
        if pad:
            self.write_meta(bytes(pad))

    def sign(self, signature_text: str) -> None:
        """The signature frame, last (a signed stream: framing.pack_signature)."""
        self.sink.write(pack_signature(signature_text))

    def finish(self, trailer: dict) -> None:
        """Trailer member, end-of-archive blocks, then the seek index."""
        trailer_offset = self.sink.offset
        self.write_meta(document_member(TRAILER_NAME, trailer, self.mtime, end_of_archive=True))
        index = {"version": 1, "trailer_offset": trailer_offset, "files": self._index_files}
        self.sink.write(pack_index(json.dumps(index, separators=(",", ":")).encode()))

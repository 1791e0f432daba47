"""A backup location as the fleet view needs it, local or in a bucket:
what is there (one listing), a seekable reader of an archive's ends, small
objects (signatures, verify records) read, written and deleted, and locks.

The bucket's reader (_Ends) fetches the last TAIL bytes in one ranged GET
(the seek index, the trailer and, for a small archive, everything) and the
first piece for the manifest in another: a listing of 500 archives costs
about two GETs each, with no HEAD (the size and ETag come from the listing).
An encrypted archive read with keys (catalog.py) costs the same: its header
is in the first piece, its final chunk and usually its documents in the
tail (pread_of gives its AgeRanges the reads).
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import StorageError
from ..platform import files

ARCHIVE_SUFFIXES = (".tar.zst", ".tar.zst.age")
TAIL = 1 << 20
HEAD_PIECE = 256 << 10


@dataclass(frozen=True)
class Entry:
    name: str                      # relative to the location
    size: int
    identity: dict[str, Any]       # what a verify record is tied to
    version_id: str | None = None


def is_archive(name: str) -> bool:
    return name.endswith(ARCHIVE_SUFFIXES)


class LocalStore:
    def __init__(self, folder: str | os.PathLike[str]):
        self.folder = Path(folder)
        self.label = str(self.folder)
        if not self.folder.is_dir():
            raise FileNotFoundError(2, "no such folder", str(self.folder))

    def url(self, name: str) -> str:
        return str(self.folder / name)

    def entries(self) -> dict[str, Entry]:
        found = {}
        with os.scandir(self.folder) as it:
            for e in it:
                if e.is_file(follow_symlinks=False) and not e.name.startswith("."):
                    st = e.stat(follow_symlinks=False)
                    found[e.name] = Entry(e.name, st.st_size, _local_identity(st))
        return found

    def identity_of(self, name: str) -> dict[str, Any]:
        return _local_identity(os.stat(self.folder / name))

    def lock_enabled(self) -> bool:
        return False

    def lock_of(self, entry: Entry) -> Any:
        return None

    @contextlib.contextmanager
    def reader(self, entry: Entry) -> Iterator[Any]:
        with open(self.folder / entry.name, "rb") as fh:
            yield fh

    @staticmethod
    def pread_of(fh: Any) -> Callable[[int, int], bytes]:
        """Positioned reads of a file reader() gave."""
        fd = fh.fileno()
        return lambda size, offset: files.pread(fd, size, offset)

    def get(self, entry: Entry) -> bytes:
        with open(self.folder / entry.name, "rb") as fh:
            return fh.read(1 << 20)

    def put(self, name: str, data: bytes) -> None:
        fd, tmp = files.create_private(self.folder, prefix=f".{name[:200]}.", suffix=".partial")
        try:
            files.write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            files.commit(tmp, self.folder / name, overwrite=True)
        except BaseException:
            files.remove_quietly(tmp)
            raise

    def delete(self, entry: Entry) -> str:
        try:
            os.unlink(self.folder / entry.name)
        except FileNotFoundError:
            return "missing"
        return "deleted"


def _local_identity(st: os.stat_result) -> dict[str, Any]:
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


class S3Store:
    def __init__(self, url: str):
        from ..storage import parse_location

        self.location = parse_location(url)
        key = self.location.key
        self.prefix = key if not key or key.endswith("/") else key + "/"
        self.label = f"s3://{self.location.bucket}/{self.prefix}"
        self._lock_enabled: bool | None = None

    def url(self, name: str) -> str:
        return f"s3://{self.location.bucket}/{self.prefix}{name}"

    def _loc(self, name: str) -> Any:
        from ..storage import S3Location

        return S3Location(self.location.bucket, self.prefix + name)

    def entries(self) -> dict[str, Entry]:
        from ..storage import list_objects

        found = {}
        for obj in list_objects(self.location.bucket, self.prefix):
            name = obj.location.key[len(self.prefix):]
            if "/" in name:
                continue               # a deeper prefix: another location
            found[name] = Entry(name, obj.size, {"size": obj.size, "etag": obj.etag},
                                obj.version_id)
        return found

    def identity_of(self, name: str) -> dict[str, Any]:
        from ..storage.client import s3_client
        from ..storage.retry import with_retries

        loc = self._loc(name)
        head = with_retries(lambda: s3_client().head_object(Bucket=loc.bucket, Key=loc.key),
                            doing="looking at", url=loc.url)
        return {"size": int(head["ContentLength"]), "etag": str(head["ETag"]).strip('"')}

    def lock_enabled(self) -> bool:
        if self._lock_enabled is None:
            from ..storage import bucket_lock_enabled

            self._lock_enabled = bucket_lock_enabled(self.location.bucket)
        return self._lock_enabled

    def lock_of(self, entry: Entry) -> Any:
        """storage.Retention, or None (never asked in a bucket without locks)."""
        if not self.lock_enabled():
            return None
        from ..storage import retention_of

        return retention_of(self._loc(entry.name), entry.version_id)

    @contextlib.contextmanager
    def reader(self, entry: Entry) -> Iterator[Any]:
        yield _Ends(self._loc(entry.name), entry)

    @staticmethod
    def pread_of(fh: Any) -> Callable[[int, int], bytes]:
        """Positioned reads of an object reader() gave (its cached ranges)."""
        return fh.pread  # type: ignore[no-any-return]

    def get(self, entry: Entry) -> bytes:
        return _Ends(self._loc(entry.name), entry).fetch(0, min(entry.size, 1 << 20))

    def put(self, name: str, data: bytes) -> None:
        from ..storage import put_bytes

        put_bytes(self._loc(name), data)

    def delete(self, entry: Entry) -> str:
        """The version itself (a delete marker would leave the data, and in
        a lock bucket succeed over a locked version)."""
        from ..storage import delete

        return str(delete(self._loc(entry.name), entry.version_id))


class _Ends(io.RawIOBase):
    """A seekable view of an object that fetches what is read by ranged GETs:
    the last TAIL bytes at once on the first read there, other pieces of at
    least HEAD_PIECE; kept for the reader's life (a few MiB at most)."""

    def __init__(self, location: Any, entry: Entry):
        super().__init__()
        self.location, self.entry, self.size = location, entry, entry.size
        self.pos = 0
        self.pieces: list[tuple[int, bytes]] = []

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def pread(self, size: int, offset: int) -> bytes:
        """Up to `size` bytes at `offset`, the position unchanged (what an
        encrypted archive's AgeRanges reads the stored bytes with)."""
        n = max(0, min(size, self.size - offset))
        return self._bytes(offset, n) if n > 0 and offset >= 0 else b""

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        n = max(0, min(len(view), self.size - self.pos))
        if n == 0:
            return 0
        data = self._bytes(self.pos, n)
        view[:n] = data
        self.pos += n
        return n

    def _bytes(self, offset: int, n: int) -> bytes:
        for start, piece in self.pieces:
            if start <= offset and offset + n <= start + len(piece):
                return piece[offset - start:offset - start + n]
        if offset + n > self.size - TAIL:
            start = max(0, min(offset, self.size - TAIL))
            end = self.size
        else:
            start, end = offset, min(self.size, offset + max(n, HEAD_PIECE))
        piece = self.fetch(start, end - start)
        self.pieces.append((start, piece))
        return piece[offset - start:offset - start + n]

    def fetch(self, offset: int, size: int) -> bytes:
        from ..storage.client import s3_client
        from ..storage.reader import get_range

        return get_range(s3_client(), self.location, offset, size,
                         version_id=self.entry.version_id)


def open_store(location: str) -> LocalStore | S3Store:
    from ..storage import is_object_url

    return S3Store(location) if is_object_url(location) else LocalStore(location)


def open_store_for_archive(source: Any) -> tuple[LocalStore | S3Store, str] | None:
    """The store holding the archive `source` and its name there; None for a
    stream or a file object."""
    from ..storage import is_object_url, parse_location

    if is_object_url(source):
        loc = parse_location(source)
        folder, _, name = loc.key.rpartition("/")
        return S3Store(f"s3://{loc.bucket}/{folder}"), name
    if isinstance(source, (str, os.PathLike)) and source != "-":
        path = Path(source)
        try:
            return LocalStore(path.parent), path.name
        except OSError:
            return None
    return None


__all__ = ["ARCHIVE_SUFFIXES", "Entry", "LocalStore", "S3Store", "StorageError", "is_archive",
           "open_store", "open_store_for_archive"]

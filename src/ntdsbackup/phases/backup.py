"""Backup: the documented phase order (reference section 7), to an archive.

    1 DsSetAuthIdentityW (optional)     5 DsBackupGetBackupLogsW, same loop, DsBackupFree
    2 DsIsNTDSOnlineW (must be TRUE)     6 DsBackupTruncateLogs (after every byte is safe)
    3 DsBackupPrepareW                   7 token saved (in the manifest), DsBackupFree(token)
    4 DsBackupGetDatabaseNamesW, per     8 DsBackupEnd, on every path
      file Open, Read loop, Close; DsBackupFree

An output path that exists (a file, a directory, even a dangling symlink) is
refused before anything is asked of the DC, unless overwrite is given.
Nothing is written before step 2 succeeds.  A file destination is written to
a new hidden file with an unpredictable name beside it, created exclusively
(never through a symlink) with mode 0600 whatever the umask (the archive
holds every password hash of the domain), fsynced and then given its final
name, which must still be free unless overwrite is given (and then the entry
is replaced, never written through).  On any failure or signal the
temporary file is removed and no final archive exists.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Union

from .. import __version__
from .._ntdsbcli import DIGEST_NONE, DIGEST_PLAIN, DIGEST_STORED, BackupContext, Provider
from ..archive import signing
from ..archive.members import FORMAT_NAME, FORMAT_VERSION, FileRecord, member_name
from ..archive.writer import ArchiveWriter, Sink
from ..dbcheck import KIND_LOG, KIND_NONE, FileFacts, Verdict, judge, kind_of
from ..dbcheck.folder import log_generation
from ..dbcheck.pages import new_checker, result_of
from ..errors import DatabaseDamaged, DCStateError, NtdsbackupError, UsageError
from ..events import BackupEvent
from ..lists import BFT_LOG, ListEntry, parse_multistring
from ..platform import files
from ..platform.signals import deferred
from ..provider import open_provider
from ..storage.location import is_object_url
from .object_dest import ObjectDestination, RetentionRequest

if TYPE_CHECKING:
    from ..crypto import NewHeader, SigningKey, X25519Recipient

DEFAULT_CHUNK_SIZE = 1 << 20
DEFAULT_LEVEL = 1



class Writable(Protocol):
    """A binary file object backup() can write to: write(bytes) is all it uses."""

    def write(self, data: bytes, /) -> object: ...


# Where backup() writes: a path, "-" (stdout), an open descriptor, or a
# binary file object.
BackupDestination = Union[str, os.PathLike[str], int, Writable]


@dataclass
class Identity:
    user: str
    domain: str
    password: str = field(repr=False)      # never in a log line or a traceback


@dataclass
class BackupSummary:
    server: str
    archive: str
    files: list[dict[str, Any]]     # the trailer's entries: name, bft, source, size, xxh3_128...
    bytes_read: int
    bytes_written: int
    seconds: float
    log_generations: dict[str, int]  # {"low": first, "high": last}, {} without logs
    truncated: bool
    truncate_error: str | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    encrypted: bool = False
    signature: str | None = None     # NAME.minisig written beside the archive
    ese: dict[str, Any] | None = None  # the ESE verdict, as the trailer records it
    lock: dict[str, Any] | None = None  # object lock confirmed: {"mode", "until"}

    @property
    def mb_per_s(self) -> float:
        return self.bytes_read / self.seconds / 1e6 if self.seconds > 0 else 0.0

    @property
    def ratio(self) -> float:
        return self.bytes_read / self.bytes_written if self.bytes_written else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"server": self.server, "archive": self.archive, "files": self.files,
                "bytes_read": self.bytes_read, "bytes_written": self.bytes_written,
                "seconds": round(self.seconds, 3), "mb_per_s": round(self.mb_per_s, 1),
                "ratio": round(self.ratio, 3), "log_generations": self.log_generations,
                "truncated": self.truncated, "truncate_error": self.truncate_error,
                "stats": self.stats, "encrypted": self.encrypted, "signature": self.signature,
                "ese": self.ese, "lock": self.lock}


def _log_generation(path: str) -> int | None:
    """'\\\\DC01\\...\\edb0000A.log' -> 10 (dbcheck's reading of log names)."""
    return log_generation(path.replace("/", "\\").rsplit("\\", 1)[-1])


class _Destination:
    """Opens the sink: a path (a private temporary file beside it, given the
    final name at commit), '-' (stdout), an open descriptor, or a binary
    file-like object."""

    def __init__(self, dest: BackupDestination, *, overwrite: bool = False):
        self.dest = dest
        self.overwrite = overwrite
        self.final: Path | None = None
        self.tmp: Path | None = None
        self.fd: int | None = None
        self.signed = False          # NAME.minisig written (removed again on abort)
        self.label = "<stream>"
        if isinstance(dest, (str, os.PathLike)) and dest != "-":
            self.final = Path(dest)
            self.label = str(self.final)

    @property
    def signs_beside(self) -> bool:
        """A file's signature goes beside it, over the bytes stored; a
        stream's inside it."""
        return self.final is not None

    @property
    def name(self) -> str:
        return self.final.name if self.final is not None else "-"

    def lock_record(self) -> dict[str, Any] | None:
        return None                  # only object storage holds a retention

    @property
    def signature(self) -> Path | None:
        return signing.signature_path(self.final) if self.final is not None else None

    def check(self, signed: bool = False) -> None:
        """Refuse a taken name or a missing folder before the DC is asked anything."""
        if self.final is None:
            return
        names = [self.final] + ([signing.signature_path(self.final)] if signed else [])
        for name in names:
            if not self.overwrite and os.path.lexists(name):
                raise files.FileExists(name)
        parent = self.final.parent
        if not parent.is_dir():
            raise FileNotFoundError(errno.ENOENT, "the output's folder does not exist",
                                    str(parent))

    def open(self) -> Sink:
        if self.dest == "-":
            self.label = "<stdout>"
            sys.stdout.flush()
            files.set_binary(sys.stdout.fileno())
            return Sink(fd=sys.stdout.fileno())
        if isinstance(self.dest, int):
            self.label = f"<fd {self.dest}>"
            return Sink(fd=self.dest)
        if self.final is not None:
            self.fd, self.tmp = files.create_private(
                self.final.parent, prefix=f".{self.final.name[:200]}.", suffix=".partial")
            return Sink(fd=self.fd)
        if not hasattr(self.dest, "write"):
            raise TypeError("dest must be a path, '-', a descriptor or a binary file-like object")
        return Sink(fileobj=self.dest)

    def write_signature(self, text: str) -> None:
        """NAME.minisig, private and durable, before the archive takes its
        name: a crash in between leaves a signature of nothing, never an
        archive that looks unsigned."""
        assert self.signature is not None and self.final is not None
        fd, tmp = files.create_private(self.final.parent, prefix=f".{self.signature.name}.",
                                       suffix=".partial")
        try:
            files.write_all(fd, text.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            files.commit(tmp, self.signature, overwrite=self.overwrite)
        except BaseException:
            files.remove_quietly(tmp)
            raise
        self.signed = True

    def commit(self, sink: Sink, trailer: dict[str, Any] | None = None) -> None:
        sink.flush(durable=True)
        if self.tmp is not None:
            assert self.fd is not None and self.final is not None   # set together by open()
            os.close(self.fd)
            self.fd = None
            # Atomic: the name is taken now or never (FileExists), so a file
            # that appeared during the backup is not replaced either.
            files.commit(self.tmp, self.final, overwrite=self.overwrite)
            self.tmp = None
            files.fsync_dir(self.final.parent)

    def abort(self) -> None:
        if self.signed and self.tmp is not None and self.signature is not None:
            files.remove_quietly(self.signature)     # the archive it signs never appeared
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None
        if self.tmp is not None:
            files.remove_quietly(self.tmp)
            self.tmp = None


def destination(dest: BackupDestination, *, overwrite: bool = False,
                retention: RetentionRequest | None = None,
                encrypted: bool = False) -> _Destination | ObjectDestination:
    """The destination kind for `dest`: object storage for s3://..., else a
    path, '-', a descriptor or a file object."""
    if is_object_url(dest):
        assert isinstance(dest, str)
        return ObjectDestination(dest, overwrite=overwrite, retention=retention,
                                 encrypted=encrypted)
    if retention is not None:
        raise UsageError("--retain sets an object lock, so the output must be an object in a "
                         "bucket with object lock (s3://BUCKET/KEY); nothing was read from "
                         "the DC")
    return _Destination(dest, overwrite=overwrite)


def backup(server: str, dest: BackupDestination, *, provider: Provider | None = None,
           identity: Identity | None = None, level: int = DEFAULT_LEVEL, threads: int = 0,
           chunk_size: int = DEFAULT_CHUNK_SIZE, ring_depth: int = 0, serial: bool = False,
           truncate: bool = True, overwrite: bool = False,
           progress: Callable[[BackupEvent], None] | None = None,
           recipients: Sequence[X25519Recipient] = (), passphrase: str | None = None,
           signing_key: SigningKey | None = None, on_bad_page: str = "fail",
           page_checks: bool = True,
           retention: RetentionRequest | None = None) -> BackupSummary:
    """Back up the DC `server` to `dest` (a path, '-' for stdout, an open
    descriptor, or a binary file-like object).  An existing path is refused
    (platform.files.FileExists) unless overwrite.  progress(event: dict)
    receives 'file' and 'progress' events.  Returns a BackupSummary; raises
    on any failure, leaving no archive under the final name.

    recipients (age X25519 recipients) or passphrase: the output is an age
    file whose plaintext is the archive, readable only with a matching
    identity or the passphrase.  signing_key (a minisign key): a signature
    NAME.minisig is written beside the file (ntdsbackup.archive.signing).

    The workers also check every page of the database and every log segment
    as they stream (dbcheck), and the trailer records the verdict.  A set a
    DC could not boot from (a bad page, a bad header, a broken or incomplete
    log chain) raises DatabaseDamaged before the archive is committed when
    on_bad_page is "fail"; with "warn" the archive is kept and its trailer
    says why it is not bootable.  page_checks=False skips the checks (for
    measuring what they cost).

    dest "s3://BUCKET/KEY": the archive streams into a multipart upload
    (phases/object_dest.py); retention (only there) locks it once it is
    read back, and the backup fails unless the lock is confirmed."""
    if on_bad_page not in ("fail", "warn"):
        raise ValueError(f"on_bad_page must be 'fail' or 'warn', not {on_bad_page!r}")
    envelope = _envelope(recipients, passphrase)
    out = destination(dest, overwrite=overwrite, retention=retention,
                      encrypted=envelope is not None)
    out.check(signed=signing_key is not None)
    prov = provider or open_provider()
    emit: Callable[[BackupEvent], None] = progress or (lambda event: None)
    t0 = time.monotonic()

    if identity is not None:                                             # step 1
        prov.set_auth_identity(identity.user, identity.domain, identity.password)
    if not prov.is_ntds_online(server):                                  # step 2
        raise DCStateError(f"the directory service on {server} is not running (DSRM?): "
                           "an online backup needs it running; nothing was written")
    ctx = prov.backup_prepare(server)                                    # step 3
    try:
        sink = out.open()
        if envelope is not None or signing_key is not None:
            # A file's signature goes beside it, over the bytes stored; a
            # stream's inside it, last, over the archive bytes before it.
            digest_mode = DIGEST_NONE if signing_key is None else \
                DIGEST_STORED if out.signs_beside else DIGEST_PLAIN
            sink.through(payload_key=envelope.payload_key if envelope else None,
                         digest=digest_mode, threads=threads,
                         envelope=envelope.header + envelope.nonce if envelope else b"")
        now = int(time.time())
        writer = ArchiveWriter(sink, level=level, mtime=now)
        run = _Run(ctx, writer, sink, emit, page_checks, chunk_size=chunk_size,
                   threads=threads, ring_depth=ring_depth, level=level, serial=serial)

        databases = parse_multistring(ctx.get_database_names())         # step 4
        if not databases:
            raise NtdsbackupError(f"{server} reported no database files to back up")
        first = databases[0]
        first_size = ctx.open_file(first.path, chunk_size)
        writer.write_manifest(_manifest(server, ctx.token, now, chunk_size, level, databases,
                                        first_size))
        run.file(first, first_size)
        for entry in databases[1:]:
            run.file(entry, ctx.open_file(entry.path, chunk_size))

        logs = parse_multistring(ctx.get_backup_logs())                 # step 5
        for entry in logs:
            run.file(entry, ctx.open_file(entry.path, chunk_size))

        gens = sorted(g for g in (_log_generation(e.path) for e in logs
                                  if e.bft == BFT_LOG) if g is not None)
        log_generations = {"low": gens[0], "high": gens[-1]} if gens else {}
        if gens and gens != list(range(gens[0], gens[-1] + 1)) and not page_checks:
            # (With the checks on, the verdict names the missing generations.)
            raise NtdsbackupError(f"the DC returned a log set with gaps: generations {gens}")
        totals = run.totals()
        verdict = run.verdict(log_generations) if page_checks else None
        if verdict is not None and not verdict.ok and on_bad_page == "fail":
            raise DatabaseDamaged(
                f"{server}: the database or its logs fail the ESE checks, so a DC could "
                f"not boot from this backup; no archive was written "
                f"(--on-bad-page warn keeps it): " + "; ".join(verdict.problems[:5]),
                verdict)
        trailer = {
            "format": FORMAT_NAME, "version": FORMAT_VERSION, "complete": True,
            "files": [r.trailer_entry() for r in run.records],
            "log_generations": log_generations, "stats": totals, "tool": _tool(),
            "finished": _iso(time.time()),
        }
        if verdict is not None:
            trailer["ese"] = verdict.record()
        writer.finish(trailer)
        def signature(digest: bytes, file_name: str) -> str:
            return signing.sign(signing_key, digest, server=server.lstrip("\\"),
                                created_unix=now, token=ctx.token, file_name=file_name)
        if signing_key is not None and not out.signs_beside:
            writer.sign(signature(sink.take_digest(), "-"))
        digest = sink.finish()       # the final age chunk; the stored bytes' digest
        if signing_key is not None and out.signs_beside:
            assert digest is not None
            out.write_signature(signature(digest, out.name))
        with deferred():
            # Every byte is safely written (fsynced and renamed; or uploaded,
            # read back and locked as asked).
            out.commit(sink, trailer)

        truncated, truncate_error = False, None
        if truncate:                                                     # step 6
            try:
                ctx.truncate_logs()
                truncated = True
            except NtdsbackupError as exc:
                # The archive is complete and valid; the logs simply stay.
                truncate_error = str(exc)
        ctx.free_token()                                                 # step 7
    except BaseException:
        with deferred():             # a second signal must not cut the cleanup short
            out.abort()
        raise
    finally:
        if not ctx.ended:
            with deferred():
                ctx.end()                                                # step 8
    seconds = time.monotonic() - t0
    return BackupSummary(server, out.label, [r.trailer_entry() for r in run.records],
                         totals["bytes_read"], sink.stored, seconds, log_generations, truncated,
                         truncate_error, totals, encrypted=envelope is not None,
                         signature=(str(out.signature) if out.signature else "embedded")
                         if signing_key is not None else None,
                         ese=verdict.record() if verdict is not None else None,
                         lock=out.lock_record())


class _Run:
    """Per-backup state: streams one file after another into the writer."""

    def __init__(self, ctx: BackupContext, writer: ArchiveWriter, sink: Sink,
                 emit: Callable[[BackupEvent], None], page_checks: bool, **engine: Any):
        self.ctx = ctx
        self.writer = writer
        self.sink = sink
        self.emit = emit
        self.engine = engine
        self.page_checks = page_checks
        self.records: list[FileRecord] = []
        self.stats: list[dict[str, Any]] = []
        self.database: FileFacts | None = None
        self.logs: list[FileFacts] = []

    def file(self, entry: ListEntry, size: int) -> None:
        rec = FileRecord(member_name(entry.bft, entry.path), entry.bft, entry.path, size)
        if any(r.name == rec.name for r in self.records):
            raise NtdsbackupError(f"two files of the backup map to the same name {rec.name}")
        self.emit({"event": "file", "name": rec.name, "source": rec.source, "size": size})
        self.writer.begin_file(rec)
        start = self.sink.offset
        sink_kw = self.sink.engine_target()

        def on_progress(done: int, _name: str = rec.name, _size: int = size) -> None:
            self.emit({"event": "progress", "name": _name, "done": done, "size": _size})

        kind = kind_of(entry.bft) if self.page_checks else KIND_NONE
        checker = new_checker(kind, size) if kind != KIND_NONE else None
        result = self.ctx.backup_file(size, rec.name, progress=on_progress, **sink_kw,
                                      pages=checker, **self.engine)
        self.ctx.close_file()
        if checker is not None:
            facts = FileFacts(rec.name, result_of(checker), _log_generation(entry.path))
            if kind == KIND_LOG:
                self.logs.append(facts)
            elif self.database is None:
                self.database = facts
        stats = result["stats"]
        self.sink.advance(stats["bytes_written"])
        rec.xxh3_128 = result["xxh3_128"].hex()
        rec.chunks = len(result["chunks"])
        rec.compressed = stats["bytes_written"]
        rec.stats = stats
        self.writer.end_file(rec, result["chunks"], start)
        self.records.append(rec)
        self.stats.append(stats)
        self.emit({"event": "progress", "name": rec.name, "done": size, "size": size})

    def verdict(self, log_generations: dict[str, int]) -> Verdict:
        """What a DC would find after restoring this backup."""
        return judge(self.database, self.logs, gen_low=log_generations.get("low"),
                     gen_high=log_generations.get("high"))

    def totals(self) -> dict[str, Any]:
        keys = ("bytes_read", "bytes_written", "chunks", "read_calls", "wall_seconds",
                "read_seconds", "compress_seconds", "write_seconds", "reader_wait_seconds",
                "writer_wait_seconds")
        return {k: sum(s[k] for s in self.stats) for k in keys}


def _manifest(server: str, token: bytes | None, now: int, chunk_size: int, level: int,
              databases: list[ListEntry], first_size: int) -> dict[str, Any]:
    if token is None:
        raise NtdsbackupError(f"DsBackupPrepareW gave no expiry token for {server}")
    files = []
    for i, e in enumerate(databases):
        rec = FileRecord(member_name(e.bft, e.path), e.bft, e.path, first_size if i == 0 else None)
        files.append(rec.manifest_entry())
    return {
        "format": FORMAT_NAME, "version": FORMAT_VERSION, "tool": _tool(),
        "server": server.lstrip("\\"), "created": _iso(now), "created_unix": now,
        "backup_type": "full",
        "expiry_token": base64.b64encode(token).decode("ascii"),
        "chunk_size": chunk_size,
        "compression": {"algorithm": "zstd", "level": level, "frame_per_chunk": True},
        "hash": "xxh3-128",
        "files": files,
        # DsBackupGetBackupLogsW comes after the database in the documented
        # order, so the logs are listed in the trailer.
        "logs_listed_in": "trailer",
    }


def _envelope(recipients: Sequence[X25519Recipient],
              passphrase: str | None) -> NewHeader | None:
    """The age header for an encrypted backup, or None.  Made before the DC
    is asked anything: a bad recipient list fails first."""
    if not recipients and passphrase is None:
        return None
    if recipients and passphrase is not None:
        raise ValueError("encrypt to recipients or with a passphrase, not both (age allows a "
                         "passphrase only as the file's one recipient)")
    from ..crypto import new_header

    return new_header(recipients=list(recipients), passphrase=passphrase)


def _tool() -> str:
    return f"ntdsbackup {__version__}"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

"""The archive commands: backup, verify, ls, extract, restore."""

from __future__ import annotations

import functools
import os
import sys

from ..errors import DatabaseDamaged
from ..fsutil import format_size
from .argtypes import duration_arg, threads_arg
from .common import (
    THREADS_HELP,
    engine_options,
    identity_options,
    print_json,
    progress_for,
    read_identity,
    say,
    validate_identity,
)
from .crypto_options import (
    add_decryption_options,
    add_encryption_options,
    decryption_keys,
    encryption,
    trust,
)


def add_parsers(sub, common) -> None:
    p = sub.add_parser("backup", parents=[common], help="back up a DC to an archive")
    p.add_argument("--server", required=True, help="the DC, e.g. DC01 or \\\\DC01")
    p.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="archive to write (*.tar.zst), - for standard output, or an object "
                        "s3://BUCKET/PREFIX/NAME.tar.zst (streamed as a multipart upload, "
                        "nothing on local disk; endpoint from $NTDSB_S3_ENDPOINT, credentials "
                        "from the AWS chain); an existing FILE or object is refused unless "
                        "--overwrite")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing FILE (the entry itself: a symlink there is "
                        "replaced, never written through) or object")
    p.add_argument("--retain", type=duration_arg, metavar="DURATION",
                   help="lock the archive (and its NAME.minisig) in object storage for "
                        "DURATION (e.g. 30d; units h, d, w, y), confirmed before success is "
                        "reported; needs an s3:// output in a bucket with object lock "
                        "(checked before the DC is asked anything, exit 2)")
    p.add_argument("--lock-mode", choices=("compliance", "governance"), default=None,
                   help="with --retain: compliance (default: nobody can delete or shorten it "
                        "before the date) or governance (users with the bypass permission "
                        "can)")
    engine_options(p)
    p.add_argument("--no-truncate", action="store_true",
                   help="skip DsBackupTruncateLogs after the backup")
    p.add_argument("--on-bad-page", choices=("fail", "warn"), default="fail",
                   help="when a database page, a log segment or the log chain fails the "
                        "ESE checks made while streaming: fail (default: no archive, exit "
                        "8) or warn (keep the archive; its trailer records it as not "
                        "bootable)")
    p.add_argument("--json", action="store_true",
                   help="JSON-lines progress and a final JSON summary (on standard error "
                        "with -o -)")
    identity_options(p)
    add_encryption_options(p)
    p.set_defaults(_validate=functools.partial(_validate_backup, p))

    p = sub.add_parser("verify", parents=[common],
                       help="verify every frame, file hash and the trailer of an archive")
    p.add_argument("archive", help="archive path, or - for standard input")
    p.add_argument("--threads", type=threads_arg, default=0,
                   help=f"decompression {THREADS_HELP}")
    p.add_argument("--pure", action="store_true",
                   help="use the pure-Python reader (zstandard + xxhash) instead of the engine")
    p.add_argument("--deep", action="store_true",
                   help="also check every database page and log segment, the log chain and "
                        "the generations the database needs: the verdict the DC's "
                        "consistency check would give after restoring it (exit 8 if not "
                        "bootable)")
    p.add_argument("--json", action="store_true")
    _reader_options(p)

    p = sub.add_parser("ls", parents=[common], help="show an archive's manifest and files")
    p.add_argument("archive", help="archive path, or - for standard input")
    p.add_argument("--json", action="store_true")
    p.add_argument("--index", action="store_true",
                   help="also the seek index (with --json: every chunk's offset)")
    _reader_options(p)

    p = sub.add_parser("extract", parents=[common],
                       help="write the backed-up files to a folder (no DC involved)")
    p.add_argument("archive", help="archive path, or - for standard input")
    p.add_argument("directory")
    p.add_argument("--overwrite", action="store_true",
                   help="replace files that exist and symlinked folders below DIRECTORY (the "
                        "entries themselves, never what they point at)")
    p.add_argument("--threads", type=threads_arg, default=0,
                   help=f"decompression {THREADS_HELP}")
    p.add_argument("--pure", action="store_true", help="use the pure-Python reader")
    p.add_argument("--json", action="store_true")
    _reader_options(p)

    p = sub.add_parser("restore", parents=[common],
                       help="restore an archive onto a DC in Directory Services Restore Mode")
    p.add_argument("archive", nargs="?", default=None,
                   help="archive path, or - for standard input")
    p.add_argument("--recover", action="store_true",
                   help="instead, settle a restore of the DC that was killed (from its record)")
    p.add_argument("--server", required=True, help="the DC, e.g. DC01")
    p.add_argument("--dry-run", action="store_true",
                   help="run every check and print the plan; change nothing")
    p.add_argument("--threads", type=threads_arg, default=0,
                   help=f"decompression {THREADS_HELP}")
    p.add_argument("--allow-other-server", action="store_true",
                   help="restore a backup taken of another DC")
    p.add_argument("--spool-dir", metavar="DIR",
                   help="where an archive read from stdin is spooled (default: $TMPDIR)")
    p.add_argument("--json", action="store_true",
                   help="JSON-lines progress and a final JSON result")
    identity_options(p)
    add_decryption_options(p)
    p.set_defaults(_validate=functools.partial(validate_identity, p), restore_parser=p)
    for name, handler in (("backup", cmd_backup), ("verify", cmd_verify), ("ls", cmd_ls),
                          ("extract", cmd_extract), ("restore", cmd_restore)):
        sub.choices[name].set_defaults(handler=handler)


def _validate_backup(parser, args) -> None:
    validate_identity(parser, args)
    if args.lock_mode is not None and args.retain is None:
        parser.error("argument --lock-mode: needs --retain")


def _reader_options(p) -> None:
    add_decryption_options(p)
    p.add_argument("--spool-dir", metavar="DIR",
                   help="where an archive read from stdin is copied first when it is "
                        "encrypted or its signature must be checked (default: $TMPDIR)")


def stdout_carries_archive(args) -> bool:
    """backup -o -: standard output is the archive and nothing else."""
    return getattr(args, "command", None) == "backup" and getattr(args, "output", None) == "-"


def cmd_backup(args) -> int:
    from ..phases.backup import backup

    to_stdout = stdout_carries_archive(args)
    if to_stdout and sys.stdout.isatty():
        raise ValueError("refusing to write a binary archive to a terminal; use -o FILE "
                         "or redirect standard output")
    identity = read_identity(args)
    sealing = encryption(args)
    progress = progress_for(args, to_stdout)
    dest = _take_stdout() if to_stdout else args.output
    retention = None
    if args.retain is not None:
        from ..phases.object_dest import RetentionRequest

        retention = RetentionRequest(args.retain, (args.lock_mode or "compliance").upper())
    try:
        summary = backup(args.server, dest, identity=identity, level=args.level,
                         threads=args.threads, chunk_size=args.chunk_size,
                         ring_depth=args.ring, truncate=not args.no_truncate,
                         overwrite=args.overwrite, progress=progress,
                         on_bad_page=args.on_bad_page, retention=retention, **sealing)
    finally:
        if to_stdout:
            os.close(dest)
    progress.close()
    if to_stdout:
        summary.archive = "<stdout>"
    if args.json:
        progress.emit_json({"event": "summary", **summary.as_dict()})
        return 0
    out = sys.stderr if to_stdout else sys.stdout
    say(args, f"backed up {summary.server}: {len(summary.files)} files, "
              f"{format_size(summary.bytes_read)} -> {format_size(summary.bytes_written)} "
              f"(ratio {summary.ratio:.2f}) in {summary.seconds:.1f} s, "
              f"{summary.mb_per_s:.0f} MB/s", stream=out)
    st = summary.stats
    say(args, f"where the time went: DsBackupRead {st['read_seconds']:.2f} s, hash+compress "
              f"{st['compress_seconds']:.2f} s (summed over threads), writing "
              f"{st['write_seconds']:.2f} s; the reader waited "
              f"{st['reader_wait_seconds']:.2f} s for a free buffer, the writer "
              f"{st['writer_wait_seconds']:.2f} s for data", detail=True, stream=out)
    if summary.ese is not None:
        _say_recorded(args, summary.ese, out)
    gens = summary.log_generations
    if gens:
        say(args, f"log generations {gens['low']}..{gens['high']}; logs "
                  + ("truncated" if summary.truncated else
                     f"NOT truncated ({summary.truncate_error or '--no-truncate'})"),
            stream=out)
    say(args, f"archive: {summary.archive}", stream=out)
    if summary.lock is not None:
        say(args, f"locked: {summary.lock['mode']} until {summary.lock['until']} (confirmed "
                  "by the server)", stream=out)
    return 0


def _take_stdout() -> int:
    """The archive's own descriptor: standard output's, moved aside.  The
    process's standard output then points at standard error, so that
    nothing printed by anyone (this package, a library, the provider) can
    land inside the archive."""
    sys.stdout.flush()
    fd = os.dup(sys.stdout.fileno())
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    return fd


def archive_total(source, keys=None) -> int | None:
    """The raw bytes a seekable archive's trailer lists (read through its
    seek index, nothing decompressed), for the progress bar's total; None
    for a stream or when the documents cannot be read (the read itself then
    says what is wrong)."""
    if source == "-" or (keys is not None and keys.passphrase is not None):
        return None              # (scrypt is slow on purpose: not twice for a progress bar)
    from ..archive.ops import open_archive, read_documents
    from ..errors import ArchiveError

    try:
        with open_archive(source, keys) as opened:
            files = read_documents(opened.fh)["trailer"].get("files") or []
        return sum(f["size"] for f in files if isinstance(f.get("size"), int))
    except (OSError, ArchiveError, AttributeError, TypeError, KeyError):
        return None


def member_progress(progress):
    """The archive readers' progress(member, done) as the phases' events."""
    return lambda m, done: progress({"event": "progress", "name": m.name, "done": done,
                                     "size": m.size})


def cmd_verify(args) -> int:
    import time

    from ..archive import verify
    from ..archive.remote import open_source
    from ..errors import ArchiveError

    keys = decryption_keys(args, stdin_is_data=args.archive == "-")
    progress = progress_for(args)
    t0 = time.monotonic()
    with open_source(args.archive, trust=trust(args), keys=keys) as src:
        progress.expect(archive_total(args.archive, keys) if src.url is None else None)
        try:
            report = verify(src.source, threads=args.threads, pure=args.pure,
                            progress=member_progress(progress), keys=keys, trust=src.trust,
                            spool_dir=args.spool_dir, deep=args.deep)
        except ArchiveError:
            # A damaged archive is a verify result too: `list` shows it.
            _cache_verify(args, src, ok=False, manifest={})
            raise
    seconds = time.monotonic() - t0
    progress.close()
    result = {"event": "verified", "ok": True, "files": len(report.files),
              "raw_bytes": report.raw_bytes, "archive_bytes": report.archive_bytes,
              "chunk_frames": report.chunk_frames, "seconds": round(seconds, 3),
              "mb_per_s": round(report.raw_bytes / max(seconds, 1e-9) / 1e6, 1),
              "server": report.manifest.get("server"),
              "encrypted": report.encrypted,
              "signed": report.signed.as_dict() if report.signed is not None else None,
              "ese": report.ese.record() if report.ese is not None else None}
    if src.url is not None:
        result["lock"] = src.lock
    verdict = report.ese
    if verdict is not None and not verdict.ok:
        result["ok"] = False
    _cache_verify(args, src, ok=result["ok"], manifest=report.manifest)
    if args.json:
        print_json(result)
    else:
        say(args, *(f"{f.name}  {format_size(f.size)}  xxh3-128 {f.xxh3_128}"
                    for f in report.files), detail=True)
        say(args, f"{'OK' if result['ok'] else 'INTACT'}: {result['files']} files, "
                  f"{format_size(report.raw_bytes)} in {report.chunk_frames} chunks verified "
                  f"({result['mb_per_s']:.0f} MB/s); every chunk hash, file hash and the "
                  "trailer match")
        if src.url is not None:
            say(args, _lock_text(src.lock))
        if verdict is not None:
            say(args, *(f"warning: {w}" for w in verdict.warnings))
            say(args, f"ESE checks: {verdict.summary_text()}")
            say(args, "bootable: a DC restored from this archive passes its consistency check"
                if verdict.ok else "NOT bootable: a DC restored from this archive would fail "
                "its consistency check")
    if verdict is not None and not verdict.ok:
        raise DatabaseDamaged("not bootable: " + "; ".join(verdict.problems[:5]), verdict)
    return 0


def _cache_verify(args, src, *, ok: bool, manifest: dict) -> None:
    """NAME.verified.json beside the archive (fleet/verified.py), for list."""
    from ..fleet import verified

    problem = verified.write(args.archive, src.identity if src.url else None, ok=ok,
                             deep=args.deep, manifest=manifest)
    if problem:
        print(f"ntdsbackup: warning: {problem}", file=sys.stderr)


def _lock_text(lock) -> str:
    if lock is None:
        return "lock     none (the object can be deleted)"
    return f"lock     {lock['mode']} until {lock['until']}"


def _say_recorded(args, ese: dict, stream) -> None:
    """The backup's ESE verdict, as its trailer records it."""
    pages, logs = ese["pages"], ese["logs"]
    say(args, *(f"warning: {w}" for w in ese["warnings"]), stream=sys.stderr)
    say(args, *(f"warning: {p}" for p in ese["problems"]), stream=sys.stderr)
    say(args, f"ESE checks: {ese['verdict']}: {pages['ok'] + pages['old_format']} pages "
              f"valid, {pages['empty']} empty, {pages['bad']} bad, {pages['correctable']} "
              f"correctable; {logs['count']} logs, {logs['segments_bad']} bad segments",
        stream=stream)


def cmd_ls(args) -> int:
    from ..archive import describe
    from ..archive.remote import open_source

    keys = decryption_keys(args, stdin_is_data=args.archive == "-")
    # An object is read by ranges (an encrypted one: its header, final chunk
    # and the documents' chunks); a signature to check costs a download.
    with open_source(args.archive, trust=trust(args), keys=keys) as src:
        info = describe(src.source, keys=keys, trust=src.trust, spool_dir=args.spool_dir)
    if src.url is not None:
        info["lock"] = src.lock
    index = info.pop("index", None)
    if args.json:
        # The seek index lists every chunk's offset: only when asked for.
        print_json({"event": "listed", **info,
                    **({"index": index} if args.index and index is not None else {})})
        return 0
    m, t = info["manifest"], info["trailer"]
    lines = [f"server   {m.get('server')}   created {m.get('created')}   type "
             f"{m.get('backup_type')}   tool {m.get('tool')}",
             f"format   v{m.get('version')}, zstd level "
             f"{m.get('compression', {}).get('level')}, chunks of "
             f"{format_size(m.get('chunk_size', 0))}, {m.get('hash')}"]
    gens = t.get("log_generations") or {}
    if gens:
        lines.append(f"logs     generations {gens.get('low')}..{gens.get('high')}")
    ese = t.get("ese")
    if isinstance(ese, dict):
        pages = ese["pages"]
        lines.append(f"pages    {ese['verdict']} at backup: "
                     f"{pages.get('ok', 0) + pages.get('old_format', 0)} valid, "
                     f"{pages.get('bad', 0)} bad, {pages.get('correctable', 0)} correctable "
                     f"(verify --deep checks them again)")
    lines.append(f"{'type':<18} {'size':>12} {'stored':>12} {'ratio':>6}  name")
    total_raw = total_stored = 0
    for f in t.get("files", []):
        raw, stored = f.get("size") or 0, f.get("compressed") or 0
        total_raw += raw
        total_stored += stored
        ratio = raw / stored if stored else 0
        lines.append(f"{f.get('bft_name', '?'):<18} {format_size(raw):>12} "
                     f"{format_size(stored):>12} {ratio:6.2f}  {f.get('name')}")
    ratio = total_raw / total_stored if total_stored else 0
    lines.append(f"{'total':<18} {format_size(total_raw):>12} "
                 f"{format_size(info['archive_bytes']):>12} {ratio:6.2f}  "
                 f"({'verified' if info['verified'] else 'from the seek index'})")
    if src.url is not None:
        lines.append(_lock_text(src.lock))
    say(args, *lines)
    if args.index and index is not None:
        say(args, f"seek index: trailer at offset {index.get('trailer_offset')}, "
                  f"{len(index.get('files') or [])} files")
    return 0


def cmd_extract(args) -> int:
    from ..archive import extract
    from ..archive.remote import open_source

    keys = decryption_keys(args, stdin_is_data=args.archive == "-")
    progress = progress_for(args)
    with open_source(args.archive, trust=trust(args), keys=keys) as src:
        progress.expect(archive_total(args.archive, keys) if src.url is None else None)
        report = extract(src.source, args.directory, threads=args.threads, pure=args.pure,
                         overwrite=args.overwrite, progress=member_progress(progress),
                         keys=keys, trust=src.trust, spool_dir=args.spool_dir)
    progress.close()
    if args.json:
        print_json({"event": "extracted", "directory": os.fspath(args.directory),
                    "files": [f.name for f in report.files], "raw_bytes": report.raw_bytes})
        return 0
    say(args, *(f"{f.name}  {format_size(f.size)}  xxh3-128 {f.xxh3_128}"
                for f in report.files), detail=True)
    say(args, f"extracted {len(report.files)} files to {args.directory}, all verified")
    return 0


def cmd_restore(args) -> int:
    from ..phases.restore import recover, restore

    if args.recover and (args.archive is not None or args.dry_run):
        args.restore_parser.error("--recover takes no archive and no --dry-run")
    if not args.recover and args.archive is None:
        args.restore_parser.error("the archive is required (or --recover)")
    progress = progress_for(args)
    if args.recover:
        outcome = recover(args.server, identity=read_identity(args))
        if args.json:
            progress.emit_json({"event": "result", **outcome.as_dict()})
        else:
            say(args, outcome.text())
        return 0
    # Standard input may be the archive: the password never comes from there.
    identity = read_identity(args, stdin_is_data=args.archive == "-")
    keys = decryption_keys(args, stdin_is_data=args.archive == "-")
    from ..archive.remote import is_remote

    # An object is read in place (phases.restore: ranged reads and a
    # download per pass); a server that dies meanwhile fails the staging
    # pass before anything on the DC changes.
    progress.expect(None if is_remote(args.archive) else archive_total(args.archive, keys))
    result = restore(args.archive, args.server, identity=identity, dry_run=args.dry_run,
                     threads=args.threads, progress=progress,
                     allow_other_server=args.allow_other_server, spool_dir=args.spool_dir,
                     keys=keys, trust=trust(args))
    progress.close()
    if args.json:
        progress.emit_json({"event": "result", **result.as_dict()})
        return 0
    # A dry run's plan is its result; after a restore it is the detail.
    say(args, result.plan.text(), detail=not result.dry_run)
    if result.dry_run:
        say(args, f"dry run: every check passed (archive verified in "
                  f"{result.verify_seconds:.1f} s); nothing was changed")
    else:
        say(args, f"restored {format_size(result.plan.total_bytes)} in {result.seconds:.1f} s "
                  f"({result.mb_per_s:.0f} MB/s)")
        say(args, f"staged and verified in {result.stage_seconds:.1f} s, swap "
                  f"{result.swap_seconds:.2f} s", detail=True)
        say(args, "the restore is registered and complete: boot the DC normally "
                  f"(emulated DC: ntdsbackup dc start {args.server})")
    return 0

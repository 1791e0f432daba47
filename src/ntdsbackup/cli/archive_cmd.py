"""The archive commands: backup, verify, ls, extract, restore."""

from __future__ import annotations

import functools
import json
import os
import sys

from ..fsutil import format_size
from .argtypes import threads_arg
from .common import (
    THREADS_HELP,
    engine_options,
    identity_options,
    progress_for,
    read_identity,
    validate_identity,
)


def add_parsers(sub, common) -> None:
    p = sub.add_parser("backup", parents=[common], help="back up a DC to an archive")
    p.add_argument("--server", required=True, help="the DC, e.g. DC01 or \\\\DC01")
    p.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="archive to write (*.tar.zst), or - for standard output; an existing "
                        "FILE is refused unless --overwrite")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing FILE (the entry itself: a symlink there is "
                        "replaced, never written through)")
    engine_options(p)
    p.add_argument("--no-truncate", action="store_true",
                   help="skip DsBackupTruncateLogs after the backup")
    p.add_argument("--json", action="store_true",
                   help="JSON-lines progress and a final JSON summary (on standard error "
                        "with -o -)")
    identity_options(p)
    p.set_defaults(_validate=functools.partial(validate_identity, p))

    p = sub.add_parser("verify", parents=[common],
                       help="verify every frame, file hash and the trailer of an archive")
    p.add_argument("archive", help="archive path, or - for standard input")
    p.add_argument("--threads", type=threads_arg, default=0,
                   help=f"decompression {THREADS_HELP}")
    p.add_argument("--pure", action="store_true",
                   help="use the pure-Python reader (zstandard + xxhash) instead of the engine")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("ls", parents=[common], help="show an archive's manifest and files")
    p.add_argument("archive", help="archive path, or - for standard input")
    p.add_argument("--json", action="store_true")

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
    p.set_defaults(_validate=functools.partial(validate_identity, p), restore_parser=p)
    for name, handler in (("backup", cmd_backup), ("verify", cmd_verify), ("ls", cmd_ls),
                          ("extract", cmd_extract), ("restore", cmd_restore)):
        sub.choices[name].set_defaults(handler=handler)


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
    progress = progress_for(args, to_stdout)
    dest = _take_stdout() if to_stdout else args.output
    try:
        summary = backup(args.server, dest, identity=identity, level=args.level,
                         threads=args.threads, chunk_size=args.chunk_size,
                         ring_depth=args.ring, truncate=not args.no_truncate,
                         overwrite=args.overwrite, progress=progress)
    finally:
        if to_stdout:
            os.close(dest)
    if to_stdout:
        summary.archive = "<stdout>"
    if args.json:
        progress.emit_json({"event": "summary", **summary.as_dict()})
    else:
        out = sys.stderr if to_stdout else sys.stdout
        print(f"backed up {summary.server}: {len(summary.files)} files, "
              f"{format_size(summary.bytes_read)} -> {format_size(summary.bytes_written)} "
              f"(ratio {summary.ratio:.2f}) in {summary.seconds:.1f} s, "
              f"{summary.mb_per_s:.0f} MB/s", file=out)
        st = summary.stats
        print(f"where the time went: DsBackupRead {st['read_seconds']:.2f} s, hash+compress "
              f"{st['compress_seconds']:.2f} s (summed over threads), writing "
              f"{st['write_seconds']:.2f} s; the reader waited {st['reader_wait_seconds']:.2f} s "
              f"for a free buffer, the writer {st['writer_wait_seconds']:.2f} s for data",
              file=out)
        gens = summary.log_generations
        if gens:
            print(f"log generations {gens['low']}..{gens['high']}; logs "
                  + ("truncated" if summary.truncated else
                     f"NOT truncated ({summary.truncate_error or '--no-truncate'})"), file=out)
        print(f"archive: {summary.archive}", file=out)
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


def cmd_verify(args) -> int:
    import time

    from ..archive import verify

    t0 = time.monotonic()
    report = verify(args.archive, threads=args.threads, pure=args.pure)
    seconds = time.monotonic() - t0
    result = {"event": "verified", "ok": True, "files": len(report.files),
              "raw_bytes": report.raw_bytes, "archive_bytes": report.archive_bytes,
              "chunk_frames": report.chunk_frames, "seconds": round(seconds, 3),
              "mb_per_s": round(report.raw_bytes / max(seconds, 1e-9) / 1e6, 1),
              "server": report.manifest.get("server")}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"OK: {result['files']} files, {format_size(report.raw_bytes)} in "
              f"{report.chunk_frames} chunks verified ({result['mb_per_s']:.0f} MB/s); "
              f"every chunk hash, file hash and the trailer match")
    return 0


def cmd_ls(args) -> int:
    from ..archive import describe

    info = describe(args.archive)
    if args.json:
        print(json.dumps(info, default=str))
        return 0
    m, t = info["manifest"], info["trailer"]
    print(f"server   {m.get('server')}   created {m.get('created')}   type "
          f"{m.get('backup_type')}   tool {m.get('tool')}")
    print(f"format   v{m.get('version')}, zstd level {m.get('compression', {}).get('level')}, "
          f"chunks of {format_size(m.get('chunk_size', 0))}, {m.get('hash')}")
    gens = t.get("log_generations") or {}
    if gens:
        print(f"logs     generations {gens.get('low')}..{gens.get('high')}")
    print(f"{'type':<18} {'size':>12} {'stored':>12} {'ratio':>6}  name")
    total_raw = total_stored = 0
    for f in t.get("files", []):
        raw, stored = f.get("size") or 0, f.get("compressed") or 0
        total_raw += raw
        total_stored += stored
        ratio = raw / stored if stored else 0
        print(f"{f.get('bft_name', '?'):<18} {format_size(raw):>12} {format_size(stored):>12} "
              f"{ratio:6.2f}  {f.get('name')}")
    ratio = total_raw / total_stored if total_stored else 0
    print(f"{'total':<18} {format_size(total_raw):>12} {format_size(info['archive_bytes']):>12}"
          f" {ratio:6.2f}  ({'verified' if info['verified'] else 'from the seek index'})")
    return 0


def cmd_extract(args) -> int:
    from ..archive import extract

    report = extract(args.archive, args.directory, threads=args.threads, pure=args.pure,
                     overwrite=args.overwrite)
    if args.json:
        print(json.dumps({"event": "extracted", "directory": os.fspath(args.directory),
                          "files": [f.name for f in report.files],
                          "raw_bytes": report.raw_bytes}))
    else:
        for f in report.files:
            print(f"{f.name}  {format_size(f.size)}  xxh3-128 {f.xxh3_128}")
        print(f"extracted {len(report.files)} files to {args.directory}, all verified")
    return 0


def cmd_restore(args) -> int:
    from ..phases.restore import recover, restore
    from .progress import Progress

    if args.recover and (args.archive is not None or args.dry_run):
        args.restore_parser.error("--recover takes no archive and no --dry-run")
    if not args.recover and args.archive is None:
        args.restore_parser.error("the archive is required (or --recover)")
    progress = Progress("json", sys.stdout) if args.json else \
        Progress("bar" if sys.stderr.isatty() else "quiet", sys.stderr)
    if args.recover:
        outcome = recover(args.server, identity=read_identity(args))
        if args.json:
            progress.emit_json({"event": "result", **outcome.as_dict()})
        else:
            print(outcome.text())
        return 0
    # Standard input may be the archive: the password never comes from there.
    identity = read_identity(args, stdin_is_data=args.archive == "-")
    result = restore(args.archive, args.server, identity=identity, dry_run=args.dry_run,
                     threads=args.threads, progress=progress,
                     allow_other_server=args.allow_other_server, spool_dir=args.spool_dir)
    if args.json:
        progress.emit_json({"event": "result", **result.as_dict()})
        return 0
    print(result.plan.text())
    if result.dry_run:
        print(f"dry run: every check passed (archive verified in {result.verify_seconds:.1f} s);"
              " nothing was changed")
    else:
        print(f"restored {format_size(result.plan.total_bytes)} in {result.seconds:.1f} s "
              f"({result.mb_per_s:.0f} MB/s; staged and verified in "
              f"{result.stage_seconds:.1f} s, swap {result.swap_seconds:.2f} s)")
        print("the restore is registered and complete: boot the DC normally "
              f"(emulated DC: ntdsbackup dc start {args.server})")
    return 0



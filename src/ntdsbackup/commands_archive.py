"""backup, verify, ls and extract subcommands."""

from __future__ import annotations

import argparse
import json
import os
import sys

from .argtypes import size_arg
from .fsutil import format_size, parse_size


def _identity_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--user", help="DOMAIN\\user for DsSetAuthIdentity (password from "
                                  "$NTDSB_PASSWORD or a prompt); default: the process identity")


def add_parsers(sub, common) -> None:
    p = sub.add_parser("backup", parents=[common], help="back up a DC to an archive")
    p.add_argument("--server", required=True, help="the DC, e.g. DC01 or \\\\DC01")
    p.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="archive to write (*.tar.zst), or - for standard output")
    p.add_argument("--level", type=int, default=1, help="zstd level (default 1)")
    p.add_argument("--threads", type=int, default=0,
                   help="hash/compress threads (default: CPU count)")
    p.add_argument("--chunk-size", type=size_arg, default=1 << 20, metavar="SIZE",
                   help="bytes per chunk and per DsBackupRead: a multiple of 8KiB, at least "
                        "24KiB (default 1MiB)")
    p.add_argument("--ring", type=int, default=0, metavar="N",
                   help="buffers in the read ring (default threads + 2)")
    p.add_argument("--no-truncate", action="store_true",
                   help="skip DsBackupTruncateLogs after the backup")
    p.add_argument("--json", action="store_true",
                   help="JSON-lines progress and a final JSON summary")
    _identity_args(p)

    p = sub.add_parser("bench", parents=[common],
                       help="measure the engine side by side with its baselines")
    p.add_argument("--size", type=size_arg, default=parse_size("1GiB"),
                   help="size of the emulated ntds.dit (default 1GiB)")
    p.add_argument("--page-size", type=int, choices=(8192, 32768), default=8192)
    p.add_argument("--repeat", type=int, default=3, help="alternating runs per contender")
    p.add_argument("--level", type=int, default=1)
    p.add_argument("--threads", type=int, default=0, help="default: CPU count")
    p.add_argument("--chunk-size", type=size_arg, default=1 << 20, metavar="SIZE")
    p.add_argument("--ring", type=int, default=0, metavar="N")
    p.add_argument("--work-dir", metavar="DIR",
                   help="where the DC and every output live (default: /dev/shm if present)")
    p.add_argument("--no-restore", action="store_true", help="backup contenders only")
    p.add_argument("--sweep", metavar="AXES",
                   help="instead: sweep the engine over comma-separated axes "
                        "(threads,chunk,ring,level)")
    p.add_argument("--plot", metavar="FILE.png", help="with --sweep: draw the sweep")
    p.add_argument("--latency-model", action="store_true",
                   help="instead: the RPC latency model (read cost = compression cost)")
    p.add_argument("--json", action="store_true", help="the report as JSON")

    p = sub.add_parser("verify", parents=[common],
                       help="verify every frame, file hash and the trailer of an archive")
    p.add_argument("archive", help="archive path, or - for standard input")
    p.add_argument("--threads", type=int, default=0, help="decompression threads")
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
    p.add_argument("--threads", type=int, default=0, help="decompression threads")
    p.add_argument("--pure", action="store_true", help="use the pure-Python reader")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("restore", parents=[common],
                       help="restore an archive onto a DC in Directory Services Restore Mode")
    p.add_argument("archive", help="archive path, or - for standard input")
    p.add_argument("--server", required=True, help="the DC, e.g. DC01")
    p.add_argument("--dry-run", action="store_true",
                   help="run every check and print the plan; change nothing")
    p.add_argument("--threads", type=int, default=0, help="decompression threads")
    p.add_argument("--allow-other-server", action="store_true",
                   help="restore a backup taken of another DC")
    p.add_argument("--spool-dir", metavar="DIR",
                   help="where an archive read from stdin is spooled (default: $TMPDIR)")
    p.add_argument("--json", action="store_true",
                   help="JSON-lines progress and a final JSON result")
    _identity_args(p)


def dispatch(args) -> int:
    return {"backup": cmd_backup, "verify": cmd_verify, "ls": cmd_ls,
            "extract": cmd_extract, "restore": cmd_restore,
            "bench": cmd_bench}[args.command](args)


def _identity(args):
    if not getattr(args, "user", None):
        return None
    from .commands import _read_password
    from .phases.backup import Identity

    domain, sep, user = args.user.partition("\\")
    if not sep:
        raise ValueError("give --user as DOMAIN\\user")
    return Identity(user, domain, _read_password(f"password for {args.user}: "))


def _progress_for(args, to_stdout: bool):
    from .progress import Progress

    # With the archive on stdout, JSON lines go to stderr.
    if args.json:
        return Progress("json", sys.stderr if to_stdout else sys.stdout)
    return Progress("bar" if sys.stderr.isatty() else "quiet", sys.stderr)


def cmd_backup(args) -> int:
    from .phases.backup import backup

    to_stdout = args.output == "-"
    if to_stdout and sys.stdout.isatty():
        raise ValueError("refusing to write a binary archive to a terminal; use -o FILE "
                         "or redirect standard output")
    progress = _progress_for(args, to_stdout)
    summary = backup(args.server, args.output, identity=_identity(args), level=args.level,
                     threads=args.threads, chunk_size=args.chunk_size, ring_depth=args.ring,
                     truncate=not args.no_truncate, progress=progress)
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


def cmd_verify(args) -> int:
    import time

    from .archive import verify

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
    from .archive import describe

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
    from .archive import extract

    report = extract(args.archive, args.directory, threads=args.threads, pure=args.pure)
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
    from .phases.restore import restore
    from .progress import Progress

    progress = Progress("json", sys.stdout) if args.json else \
        Progress("bar" if sys.stderr.isatty() else "quiet", sys.stderr)
    result = restore(args.archive, args.server, identity=_identity(args), dry_run=args.dry_run,
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


def cmd_bench(args) -> int:
    from . import bench
    from .bench import report as render

    def on_run(i, contender, run):
        if not args.json:
            print(f"  run {i + 1}/{args.repeat} {contender.name:<22} {run.mb_per_s:8.1f} MB/s",
                  file=sys.stderr, flush=True)

    common = dict(work_dir=args.work_dir, repeat=args.repeat, level=args.level,
                  threads=args.threads, chunk_size=args.chunk_size, on_run=on_run)
    if args.sweep:
        result = bench.sweep(args.size, [a.strip() for a in args.sweep.split(",")], **common)
        text = render.sweep_text(result)
        if args.plot:
            from .bench.plot import plot_sweeps

            plot_sweeps(result, args.plot)
            result["plot"] = args.plot
    elif args.latency_model:
        result = bench.latency_model(args.size, **common)
        text = render.latency_text(result)
    else:
        result = bench.compare(args.size, page_size=args.page_size, ring=args.ring,
                               restore=not args.no_restore, **common)
        text = render.comparison_text(result)
    if args.json:
        print(json.dumps(result, default=str))
    else:
        print(text)
    return 0

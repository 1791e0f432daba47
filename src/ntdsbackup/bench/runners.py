"""The measured operations.  Each runs in its own child process (so its CPU
time and peak RSS are its own) and prints one JSON line: {"bytes", "seconds"}.

    python -m ntdsbackup.bench.runners KIND --root R --server S --out PATH [...]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time

from ..platform.processes import peak_rss_kib


def run_engine_backup(args) -> dict:
    from ..emulator import use_emu_root
    from ..phases.backup import backup

    use_emu_root(args.root)
    recipients = [i.recipient for i in _identities(args)]
    s = backup(args.server, args.out, level=args.level, threads=args.threads,
               chunk_size=args.chunk_size, ring_depth=args.ring, serial=args.serial,
               truncate=False, overwrite=True,      # each run replaces the previous output
               recipients=recipients, page_checks=not args.no_page_checks)
    # --count stored: the rate in archive bytes (what an object store receives).
    return {"bytes": s.bytes_written if args.count == "stored" else s.bytes_read,
            "seconds": s.seconds, "written": s.bytes_written, "stats": s.stats}


def run_python_loop(args) -> dict:
    """The baseline a user would write first: DsBackupRead 1 MiB at a time,
    xxhash, zstandard.compress, write.  Same phases and provider as the engine."""
    import xxhash
    import zstandard

    from ..emulator import use_emu_root
    from ..lists import parse_multistring
    from ..provider import open_provider

    use_emu_root(args.root)
    prov = open_provider()
    t0 = time.monotonic()
    total = written = 0
    cctx = zstandard.ZstdCompressor(level=args.level, write_checksum=True)
    buf = bytearray(args.chunk_size)
    # Written beside the previous output and renamed over it, as the engine
    # does with its .partial file (and as a careful script would).
    partial = args.out + ".partial"
    with open(partial, "wb") as out, prov.backup_prepare(args.server) as ctx:
        for entries in (lambda: ctx.get_database_names(), lambda: ctx.get_backup_logs()):
            for entry in parse_multistring(entries()):
                ctx.open_file(entry.path, args.chunk_size)
                whole = xxhash.xxh3_128()
                while True:
                    n = ctx.read(buf)
                    if n == 0:
                        break
                    data = bytes(buf[:n])
                    whole.update(data)
                    xxhash.xxh3_128_digest(data)
                    frame = cctx.compress(data)
                    out.write(frame)
                    total += n
                    written += len(frame)
                ctx.close_file()
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, args.out)
    return {"bytes": total, "seconds": time.monotonic() - t0, "written": written}


def _identities(args) -> list:
    """The age identities of --age-identity (an encrypted run), or []."""
    if not args.age_identity:
        return []
    from ..crypto import read_identities

    with open(args.age_identity, "rb") as fh:
        return read_identities(fh.read())


def run_engine_restore(args) -> dict:
    """The full restore onto the DC (which must be in DSRM): pre-flight checks,
    the staging pass that verifies everything, the swap; the same call the CLI
    makes."""
    from ..archive.envelope import DecryptionKeys
    from ..emulator import use_emu_root
    from ..phases.restore import restore

    use_emu_root(args.root)
    identities = _identities(args)
    r = restore(args.archive, args.server, threads=args.threads,
                keys=DecryptionKeys(identities) if identities else None)
    return {"bytes": r.plan.total_bytes, "seconds": r.seconds,
            "stage_seconds": r.stage_seconds, "swap_seconds": r.swap_seconds}


def run_engine_verify(args) -> dict:
    """ntdsbackup.archive.verify of an archive: the engine's parallel reader,
    every chunk decompressed and hashed, every file hash and the trailer
    checked; nothing written."""
    from ..archive import verify

    t0 = time.monotonic()
    report = verify(args.archive, threads=args.threads)
    return {"bytes": report.archive_bytes if args.count == "stored" else report.raw_bytes,
            "seconds": time.monotonic() - t0}


# The rates on zstd -b's result line, compression then decompression: "... (x1.327),
# 536.1 MB/s, 1324.6 MB/s" (1.5), "... (1.327),  536.1 MB/s , 1324.6 MB/s" (1.4), or
# with -q "-1   68325926 (1.327) 531.85 MB/s 1295.7 MB/s  file".  MB = 10^6 bytes.
_BENCH_RATES = re.compile(r"(\d+(?:\.\d+)?) MB/s\s*,?\s*(\d+(?:\.\d+)?) MB/s")


def parse_zstd_bench(output: str) -> tuple[float, float]:
    """(compression, decompression) MB/s of `zstd -b<L> -e<L>` output: its
    last result line (the progress lines before it are \r-separated)."""
    for line in reversed(re.split(r"[\r\n]", output)):
        m = _BENCH_RATES.search(line)
        if m:
            return float(m.group(1)), float(m.group(2))
    raise ValueError(f"no compression and decompression rates in zstd -b output: "
                     f"{output[-500:]!r}")


def run_zstd_bench(args) -> dict:
    """A limit: `zstd -b` on the file (in memory, one core), its compression or
    decompression rate times --threads.  "seconds" is the time that many
    cores would take for the file's bytes at that rate."""
    proc = subprocess.run(["zstd", f"-b{args.level}", f"-e{args.level}", f"-i{args.seconds}",
                           "-T1", args.file], capture_output=True, text=True, check=True)
    comp, decomp = parse_zstd_bench(proc.stdout + "\n" + proc.stderr)
    single = comp if args.mode == "compress" else decomp
    size = os.path.getsize(args.file)
    return {"bytes": size, "seconds": size / (single * 1e6 * args.threads),
            "single_core_mb_per_s": single, "cores": args.threads,
            "compress_mb_s": comp, "decompress_mb_s": decomp}


def run_read_only(args) -> dict:
    """DsBackupRead of every file and nothing else: the read rate."""
    from ..emulator import use_emu_root
    from ..lists import parse_multistring
    from ..provider import open_provider

    use_emu_root(args.root)
    prov = open_provider()
    buf = bytearray(args.chunk_size)
    total = 0
    t0 = time.monotonic()
    with prov.backup_prepare(args.server) as ctx:
        for entry in parse_multistring(ctx.get_database_names()):
            ctx.open_file(entry.path, args.chunk_size)
            while n := ctx.read(buf):
                total += n
            ctx.close_file()
    return {"bytes": total, "seconds": time.monotonic() - t0}


RUNNERS = {
    "engine-backup": run_engine_backup,
    "python-loop": run_python_loop,
    "engine-restore": run_engine_restore,
    "read-only": run_read_only,
    "engine-verify": run_engine_verify,
    "zstd-bench": run_zstd_bench,
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("kind", choices=sorted(RUNNERS))
    ap.add_argument("--root")
    ap.add_argument("--server", default="DC01")
    ap.add_argument("--out", required=True)
    ap.add_argument("--archive")
    ap.add_argument("--level", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0)  # zstd-bench: the cores it multiplies
    ap.add_argument("--chunk-size", type=int, default=1 << 20)
    ap.add_argument("--ring", type=int, default=0)
    ap.add_argument("--serial", action="store_true")
    ap.add_argument("--no-page-checks", action="store_true",
                    help="backup: skip the ESE page and log checks (their cost is the "
                         "difference)")
    ap.add_argument("--count", choices=("raw", "stored"), default="raw",
                    help="engine-backup, engine-verify: rate in database bytes (raw) or in "
                         "archive bytes (stored, as an object store sees them)")
    ap.add_argument("--file", help="zstd-bench: the file zstd -b measures")
    ap.add_argument("--mode", choices=("compress", "decompress"), default="compress")
    ap.add_argument("--seconds", type=int, default=1, help="zstd-bench: -i, per phase")
    ap.add_argument("--age-identity", help="encrypt to (backup) or decrypt with (restore) "
                                           "this identity file's key")
    args = ap.parse_args(argv)
    result = RUNNERS[args.kind](args)
    result["peak_rss_kib"] = peak_rss_kib()
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Rendering benchmark results as terminal tables."""

from __future__ import annotations


def _num(value: float | None, spec: str) -> str:
    """A measured number, or "n/a" where the platform cannot measure it."""
    return "n/a" if value is None else format(value, spec)


def _row(s: dict, what: str = "") -> str:
    return (f"  {s['name']:<20} {s['mb_per_s_median']:>9.1f} "
            f"{s['mb_per_s_min']:>8.1f}..{s['mb_per_s_max']:<8.1f} "
            f"{_num(s['cpu_seconds_median'], '.2f'):>8} {_num(s['max_rss_mib'], '.1f'):>9}"
            + (f"  {what}" if what else ""))


HEADER = (f"  {'contender':<20} {'MB/s':>9} {'spread':^18} {'CPU s':>8} {'peak RSS':>9}"
          f"  what the figure includes\n"
          f"  {'':<20} {'median':>9} {'min..max':^18} {'median':>8} {'MiB':>9}")

# What each figure includes, by contender: {n} threads, zstd level {level}.
# "same life cycle": the file life cycle of the engine's restore (written
# beside the file it replaces, fsynced, renamed over it, the old one deleted);
# for backups, written beside the previous output, fsynced, the previous deleted.
WHAT = {
    "engine": "DsBackupRead, 2 XXH3 passes, zstd -{level} on {n} threads, written beside the "
              "previous archive, fsynced, replacing it",
    "engine-serial": "the same on one buffer, no overlap",
    "python-loop": "DsBackupRead 1 MiB, xxhash, zstandard.compress, write, fsync, rename",
    "zstd-cli": "zstd -{level} -T{n} of ntds.dit, written beside the previous output, "
                "fsynced, the previous deleted",
    "pzstd": "pzstd -{level} -p {n} of ntds.dit, the same life cycle",
    "engine-age": "the engine, encrypted to one age X25519 recipient",
    "engine-no-pages": "the engine without its ESE page and log checks (what they cost)",
    "compression-limit": "LIMIT: {n} x zstd -b{level}'s single-core compression rate "
                         "(in memory: no reading, no writing)",
    "engine-verify": "the engine's archive read, every chunk decompressed on {n} threads and "
                     "hashed, file hashes, trailer; nothing written",
    "pzstd-t": "pzstd -t -p {n} of a pzstd-made ntds.dit.zst: decompressed to nothing, "
               "zstd checksum checked",
    "zstd-t": "zstd -t of ntds.dit.zst: one thread, decompressed to nothing, checksum checked",
    "decompression-limit": "LIMIT: {n} x zstd -b{level}'s single-core decompression rate "
                           "(in memory)",
    "engine-restore": "pre-flight, one pass that decompresses on {n} threads, stages and "
                      "verifies, fsync, swap over the DC's files, old ones deleted",
    "zstd-d": "zstd -d -T1 (writes on a second thread), beside the file it replaces, fsync, "
              "renamed over it, the old one deleted",
    "zstd-d-1thread": "the same with --no-asyncio: one thread",
    "pzstd-d": "pzstd -d -p {n} of the pzstd-made ntds.dit.zst, the same life cycle",
    "engine-restore-age": "the engine's restore of its age-encrypted archive",
    "copy-limit": "LIMIT: cp of the same ntds.dit, the same life cycle",
}


def _what(name: str, report: dict) -> str:
    return WHAT.get(name, "").format(n=report["threads"], level=report["level"])


def _table(report: dict, table: str, title: str) -> list[str]:
    lines = ["", title, HEADER]
    lines += [_row(s, _what(s["name"], report)) for s in report[table].values()]
    limit = report.get("limits", {}).get(table)
    if limit:
        lines.append(_row(limit, _what(limit["name"], report)))
    for k, v in report[f"{table}_ratios"].items():
        of = " of the limit" if limit and k.endswith("/" + limit["name"]) else ""
        lines.append(f"  {k:<34} {v:.2f}x{of}")
    return lines


def comparison_text(report: dict) -> str:
    lines = [f"emulated DC of {report['size'] / 2**30:.2f} GiB, {report['page_size']}-byte "
             f"pages; zstd level {report['level']}, {report['threads']} threads, chunks of "
             f"{report['chunk_size'] >> 10} KiB; {report['repeat']} alternating runs each; "
             f"files in {report['work_dir']}"]
    lines += _table(report, "backup", "backup")
    if "compression_ratio" in report:
        lines.append(f"  compression ratio (engine archive)  {report['compression_ratio']:.2f}")
    if "verify" in report:
        lines += _table(report, "verify", "verify (nothing written)")
    if "restore" in report:
        lines += _table(report, "restore", "restore (every peer: written beside the file it "
                                           "replaces, fsynced, renamed over it, old deleted)")
    return "\n".join(lines)


def sweep_text(report: dict) -> str:
    lines = []
    for axis, rows in report["sweeps"].items():
        lines += ["", f"sweep over {axis}", HEADER]
        lines += [_row(r) for r in rows]
    return "\n".join(lines).lstrip("\n")


def latency_text(r: dict) -> str:
    return "\n".join([
        f"RPC latency model: {r['latency_us']} us per call + a {r['bandwidth_cap'] / 1e6:.0f} "
        f"MB/s cap make reading cost what compressing costs",
        f"  compress rate C (engine, free reads)    {r['compress_rate_mb_s']:8.1f} MB/s",
        f"  read rate R (DsBackupRead only)         {r['read_rate_mb_s']:8.1f} MB/s",
        f"  pipelined engine                        {r['pipelined_mb_s']:8.1f} MB/s  = "
        f"{r['pipelined_over_min']:.2f} x min(R, C) = {r['min_read_compress_mb_s']:.1f}"
        f"  (target >= {r['target_pipelined_over_min']})",
        f"    per round, P / min(R, C) of that round: median {r['pipelined_over_min']:.3f}, "
        f"spread {r['pipelined_over_min_spread'][0]:.3f}..{r['pipelined_over_min_spread'][1]:.3f}"
        f", halves {r['pipelined_over_min_halves'][0]:.3f} / "
        f"{r['pipelined_over_min_halves'][1]:.3f} ({r['repeat']} rounds)",
        f"  serial engine                           {r['serial_mb_s']:8.1f} MB/s  = "
        f"{r['serial_over_model']:.2f} x 1/(1/R + 1/Cs) = {r['serial_model_mb_s']:.1f}"
        f"  (Cs = {r['serial_compress_rate_mb_s']:.1f})",
    ])


def scale_text(report: dict) -> str:
    ref = report["reference_size"] >> 20
    lines = [f"scaling with the database size ({report['work_dir']}; against {ref} MiB, "
             f"target within {report['target_within']:.0%}; {report['repeat']} runs each)",
             f"  {'size':>9} {'backup MB/s':>12} {'vs ref':>7} {'RSS MiB':>8} "
             f"{'restore MB/s':>13} {'vs ref':>7} {'RSS MiB':>8}"]
    for r in report["rows"]:
        b, s = r["backup"], r["restore"]
        lines.append(f"  {r['size'] >> 20:>5} MiB {b['mb_per_s_median']:>12.1f} "
                     f"{r['backup_vs_reference']:>7.2f} {_num(b['max_rss_mib'], '.1f'):>8} "
                     f"{s['mb_per_s_median']:>13.1f} {r['restore_vs_reference']:>7.2f} "
                     f"{_num(s['max_rss_mib'], '.1f'):>8}")
    return "\n".join(lines)


def object_text(report: dict) -> str:
    lines = [f"object storage: {report['target']} ({report['archive_bytes'] / 1e6:.1f} MB "
             f"archive of a {report['size'] / 2**30:.2f} GiB DC; rates in archive bytes; "
             f"{report['repeat']} alternating runs each)"]
    for table, what in (("upload", "upload (the engine: backup streamed into a multipart "
                                   "upload; rclone: copyto of the same archive file)"),
                        ("download", "download (the engine: verify over parallel ranged "
                                     "reads; rclone: cat of the same object to nothing)"),
                        ("transfer_upload", "upload, transfer only (the storage layer's "
                                            "multipart upload of the finished archive file)"),
                        ("transfer_download", "download, transfer only (the storage layer's "
                                              "parallel ranged reads into a pipe, drained)")):
        if table not in report:
            continue
        lines += ["", what, HEADER]
        lines += [_row(s) for s in report[table].values()]
        for k, v in report[f"{table}_ratios"].items():
            lo, hi = report[f"{table}_ratio_spreads"][k]
            lines.append(f"  {k:<34} {v:.2f}x  ({lo:.2f}..{hi:.2f} per round)")
    return "\n".join(lines)

"""Rendering benchmark results as terminal tables."""

from __future__ import annotations


def _num(value: float | None, spec: str) -> str:
    """A measured number, or "n/a" where the platform cannot measure it."""
    return "n/a" if value is None else format(value, spec)


def _row(s: dict) -> str:
    return (f"  {s['name']:<20} {s['mb_per_s_median']:>9.1f} "
            f"{s['mb_per_s_min']:>8.1f}..{s['mb_per_s_max']:<8.1f} "
            f"{_num(s['cpu_seconds_median'], '.2f'):>8} {_num(s['max_rss_mib'], '.1f'):>9}")


HEADER = (f"  {'contender':<20} {'MB/s':>9} {'spread':^18} {'CPU s':>8} {'peak RSS':>9}\n"
          f"  {'':<20} {'median':>9} {'min..max':^18} {'median':>8} {'MiB':>9}")


def comparison_text(report: dict) -> str:
    lines = [f"emulated DC of {report['size'] / 2**30:.2f} GiB, {report['page_size']}-byte "
             f"pages; zstd level {report['level']}, {report['threads']} threads, chunks of "
             f"{report['chunk_size'] >> 10} KiB; {report['repeat']} alternating runs each; "
             f"files in {report['work_dir']}", "", "backup", HEADER]
    lines += [_row(s) for s in report["backup"].values()]
    lines += [f"  {k:<34} {v:.2f}x" for k, v in report["backup_ratios"].items()]
    if "compression_ratio" in report:
        lines.append(f"  compression ratio (engine archive)  {report['compression_ratio']:.2f}")
    if "restore" in report:
        lines += ["", "restore (engine: pre-flight, one pass that stages and verifies, swap)",
                  HEADER]
        lines += [_row(s) for s in report["restore"].values()]
        lines += [f"  {k:<34} {v:.2f}x" for k, v in report["restore_ratios"].items()]
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
        f"  serial engine                           {r['serial_mb_s']:8.1f} MB/s  = "
        f"{r['serial_over_model']:.2f} x 1/(1/R + 1/Cs) = {r['serial_model_mb_s']:.1f}"
        f"  (Cs = {r['serial_compress_rate_mb_s']:.1f})",
    ])

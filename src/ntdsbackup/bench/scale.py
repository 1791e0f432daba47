"""How the engine scales with the size of the database: backup and restore
throughput and peak memory at each size, against the figure at 1 GiB (or
the size nearest it).

One emulated DC per size, all present at once, so that every round runs
every size back to back (the backups, then, with the DCs in DSRM, the
restores): a noisy neighbour then weighs on all sizes alike, and the ratios
to the reference are taken round by round.  The work directory needs room
for every database, its archive and the staging copy of the largest."""

from __future__ import annotations

import os
from contextlib import ExitStack

from .compare import Bench, bench_workspace
from .harness import alternate, paired_ratio

REFERENCE = 1 << 30          # the figure the others are compared with
SCALE_TARGET = 0.10          # within 10% of it


def scale(sizes: list[int], *, work_dir: str | None = None, repeat: int = 3, level: int = 1,
          threads: int = 0, chunk_size: int = 1 << 20, on_run=None) -> dict:
    """Backup and restore at every size in `sizes`; returns a JSON-ready report."""
    threads = threads or os.cpu_count() or 1
    sizes = sorted(set(sizes))
    with ExitStack() as stack:
        works = [stack.enter_context(bench_workspace(work_dir)) for _ in sizes]
        benches = [Bench(work, size=size) for work, size in zip(works, sizes)]
        backups = [b.engine(f"backup@{size >> 20}MiB", level=level, threads=threads,
                            chunk_size=chunk_size) for b, size in zip(benches, sizes)]
        alternate(backups, repeat, benches[0].env, on_run)
        for b in benches:
            b.dc.stop()
        restores = [b.engine_restore(b.out / f"{c.name}.tar.zst", threads,
                                     name=f"restore@{size >> 20}MiB")
                    for b, c, size in zip(benches, backups, sizes)]
        alternate(restores, repeat, benches[0].env, on_run)   # (each names its own root)
        place = str(works[0].parent)
    ref = min(range(len(sizes)), key=lambda i: abs(sizes[i] - REFERENCE))
    rows = []
    for i, size in enumerate(sizes):
        row = {"size": size}
        for op, contenders in (("backup", backups), ("restore", restores)):
            mine, theirs = contenders[i], contenders[ref]
            row[op] = mine.summary()
            ratio = paired_ratio(mine, theirs)
            row[f"{op}_vs_reference"] = round(ratio[0], 3) if ratio else None
            row[f"{op}_vs_reference_spread"] = [round(ratio[1], 3), round(ratio[2], 3)] \
                if ratio else None
            rss, ref_rss = row[op]["max_rss_mib"], theirs.summary()["max_rss_mib"]
            row[f"{op}_rss_vs_reference"] = round(rss / ref_rss, 3) if rss and ref_rss else None
        rows.append(row)
    return {"sizes": sizes, "repeat": repeat, "threads": threads, "level": level,
            "chunk_size": chunk_size, "work_dir": place, "reference_size": sizes[ref],
            "target_within": SCALE_TARGET, "rows": rows}

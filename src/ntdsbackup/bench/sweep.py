"""Sweeps of the engine's settings, and the RPC latency model."""

from __future__ import annotations

import os
import statistics

from .compare import Bench, bench_workspace
from .harness import alternate

SWEEPS = {
    "threads": [1, 2, 3, 4],
    "chunk": [64 << 10, 256 << 10, 1 << 20, 4 << 20],
    "ring": [2, 3, 4, 8],
    "level": [1, 3, 6],
}


def sweep(size: int, axes: list[str], *, work_dir: str | None = None, repeat: int = 3,
          level: int = 1, threads: int = 0, chunk_size: int = 1 << 20, on_run=None) -> dict:
    """For each axis, the engine at every value (others at their defaults),
    alternating values within each repeat."""
    threads = threads or os.cpu_count() or 1
    out: dict = {"size": size, "repeat": repeat, "sweeps": {}}
    with bench_workspace(work_dir) as work:
        b = Bench(work, size=size)
        for axis in axes:
            if axis not in SWEEPS:
                raise ValueError(f"unknown sweep {axis!r}; choose from {', '.join(SWEEPS)}")
            contenders = []
            for value in SWEEPS[axis]:
                kw = {"level": level, "threads": threads, "chunk_size": chunk_size}
                key = {"threads": "threads", "chunk": "chunk_size", "ring": "ring",
                       "level": "level"}[axis]
                kw[key] = value
                contenders.append(b.engine(f"{axis}={value}", **kw))
            alternate(contenders, repeat, b.env, on_run)
            out["sweeps"][axis] = [
                {"value": v, **c.summary()} for v, c in zip(SWEEPS[axis], contenders)]
    return out


def latency_model(size: int, *, work_dir: str | None = None, repeat: int = 5, level: int = 1,
                  threads: int = 0, chunk_size: int = 1 << 20, latency_us: int = 500,
                  on_run=None) -> dict:
    """Make reading cost as much as compressing, then show the overlap.

    1. Calibration (not recorded): C, the engine's rate with free reads (the
       DC's files are in memory), sets the emulator's bandwidth cap and
       per-call latency so that the read rate R is about C.
    2. Rounds: in each, back to back, the engine with free reads (C), the
       serial engine with free reads (Cs: it compresses on one core), reads
       only with the latency (R), the pipelined engine (P) and the serial
       engine (S) with the latency; each run sets the faults it needs first.
    3. Per round: P / min(R, C) (full overlap approaches 1) and
       S / (1 / (1/R + 1/Cs)) (no overlap approaches 1).  Rates taken in one
       round share the machine's mood; the median over the rounds is the
       figure, the spread and the two halves' medians say how far to trust
       it.
    """
    threads = threads or os.cpu_count() or 1
    with bench_workspace(work_dir) as work:
        b = Bench(work, size=size)
        free = b.engine("engine-free-reads", level=level, threads=threads,
                        chunk_size=chunk_size)
        alternate([free], 1, b.env)
        compress_rate = free.median_mb_per_s() * 1e6           # bytes/s
        free.runs.clear()
        # Per read: latency + chunk/cap seconds; choose the cap so that totals R = C.
        per_read = chunk_size / compress_rate
        rest = per_read - latency_us / 1e6
        if rest <= per_read * 0.2:       # latency alone would exceed the budget
            latency_us = int(per_read * 0.5 * 1e6)
            rest = per_read - latency_us / 1e6
        cap = int(chunk_size / rest)

        def faults(on: bool):
            return lambda: b.set_faults(latency_us=latency_us if on else None,
                                        bandwidth=cap if on else None)
        free.before = faults(False)
        free_serial = b.engine("serial-free-reads", level=level, chunk_size=chunk_size,
                               serial=True)
        free_serial.before = faults(False)
        contenders = [b.read_only(chunk_size),
                      b.engine("engine-pipelined", level=level, threads=threads,
                               chunk_size=chunk_size),
                      b.engine("engine-serial", level=level, chunk_size=chunk_size,
                               serial=True)]
        for c in contenders:
            c.before = faults(True)
        try:
            alternate([free, free_serial, *contenders], repeat, b.env, on_run)
        finally:
            b.set_faults(latency_us=None, bandwidth=None)
    reads, pipelined, serial = contenders
    rounds = []
    for c, cs, r, p, s_ in zip(free.runs, free_serial.runs, reads.runs, pipelined.runs,
                               serial.runs):
        rounds.append({"C": c.mb_per_s, "Cs": cs.mb_per_s, "R": r.mb_per_s, "P": p.mb_per_s,
                       "S": s_.mb_per_s,
                       "overlap": p.mb_per_s / min(r.mb_per_s, c.mb_per_s),
                       "serial_over_model": s_.mb_per_s * (1 / r.mb_per_s + 1 / cs.mb_per_s)})
    half = len(rounds) // 2 or 1

    def med(key: str, part=rounds) -> float:
        return round(statistics.median(x[key] for x in part), 3)
    comp, read_rate, comp_serial = (free.median_mb_per_s(), reads.median_mb_per_s(),
                                    free_serial.median_mb_per_s())
    return {
        "size": size, "repeat": repeat, "threads": threads, "chunk_size": chunk_size,
        "latency_us": latency_us, "bandwidth_cap": cap,
        "compress_rate_mb_s": round(comp, 1), "read_rate_mb_s": round(read_rate, 1),
        "serial_compress_rate_mb_s": round(comp_serial, 1),
        "pipelined_mb_s": round(pipelined.median_mb_per_s(), 1),
        "serial_mb_s": round(serial.median_mb_per_s(), 1),
        "min_read_compress_mb_s": round(min(read_rate, comp), 1),
        "serial_model_mb_s": round(1 / (1 / read_rate + 1 / comp_serial), 1),
        "pipelined_over_min": med("overlap"),
        "pipelined_over_min_spread": [round(min(x["overlap"] for x in rounds), 3),
                                      round(max(x["overlap"] for x in rounds), 3)],
        "pipelined_over_min_halves": [med("overlap", rounds[:half]),
                                      med("overlap", rounds[half:] or rounds[:half])],
        "serial_over_model": med("serial_over_model"),
        "target_pipelined_over_min": 0.9,
        "rounds": [{k: round(v, 3) for k, v in x.items()} for x in rounds],
        "runs": {c.name: c.summary() for c in [free, free_serial, *contenders]},
    }

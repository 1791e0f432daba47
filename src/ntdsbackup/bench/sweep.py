"""Sweeps of the engine's settings, and the RPC latency model."""

from __future__ import annotations

import os

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


def latency_model(size: int, *, work_dir: str | None = None, repeat: int = 3, level: int = 1,
                  threads: int = 0, chunk_size: int = 1 << 20, latency_us: int = 500,
                  on_run=None) -> dict:
    """Make reading cost as much as compressing, then show the overlap.

    1. C = the engine's rate with free reads (the DC's files are in memory).
    2. The emulator's bandwidth cap and per-call latency are set so that the
       read rate R is about C (the cap accounts for the latency).
    3. R is measured (reads only), then the pipelined engine P and the serial
       engine S, alternating.  With full overlap P approaches min(R, C); with
       none, S approaches 1 / (1/R + 1/Cs), Cs being the serial engine's own
       rate with free reads (it compresses on one core).
    """
    threads = threads or os.cpu_count() or 1
    with bench_workspace(work_dir) as work:
        b = Bench(work, size=size)
        free = b.engine("engine-free-reads", level=level, threads=threads,
                        chunk_size=chunk_size)
        free_serial = b.engine("serial-free-reads", level=level, chunk_size=chunk_size,
                               serial=True)
        alternate([free, free_serial], repeat, b.env, on_run)
        compress_rate = free.median_mb_per_s() * 1e6           # bytes/s
        # Per read: latency + chunk/cap seconds; choose the cap so that totals R = C.
        per_read = chunk_size / compress_rate
        rest = per_read - latency_us / 1e6
        if rest <= per_read * 0.2:       # latency alone would exceed the budget
            latency_us = int(per_read * 0.5 * 1e6)
            rest = per_read - latency_us / 1e6
        cap = int(chunk_size / rest)
        b.set_faults(latency_us=latency_us, bandwidth=cap)
        contenders = [b.read_only(chunk_size),
                      b.engine("engine-pipelined", level=level, threads=threads,
                               chunk_size=chunk_size),
                      b.engine("engine-serial", level=level, chunk_size=chunk_size,
                               serial=True)]
        alternate(contenders, repeat, b.env, on_run)
        b.set_faults(latency_us=None, bandwidth=None)
    read_rate = contenders[0].median_mb_per_s()
    comp = compress_rate / 1e6
    comp_serial = free_serial.median_mb_per_s()     # the serial loop compresses on one core
    pipe, serial = contenders[1].median_mb_per_s(), contenders[2].median_mb_per_s()
    bound = min(read_rate, comp)
    serial_model = 1 / (1 / read_rate + 1 / comp_serial)
    return {
        "size": size, "repeat": repeat, "threads": threads, "chunk_size": chunk_size,
        "latency_us": latency_us, "bandwidth_cap": cap,
        "compress_rate_mb_s": round(comp, 1), "read_rate_mb_s": round(read_rate, 1),
        "serial_compress_rate_mb_s": round(comp_serial, 1),
        "pipelined_mb_s": round(pipe, 1), "serial_mb_s": round(serial, 1),
        "min_read_compress_mb_s": round(bound, 1),
        "serial_model_mb_s": round(serial_model, 1),
        "pipelined_over_min": round(pipe / bound, 3),
        "serial_over_model": round(serial / serial_model, 3),
        "target_pipelined_over_min": 0.9,
        "runs": {c.name: c.summary() for c in [free, free_serial, *contenders]},
    }

"""Running measurements side by side: every measurement in a child process,
alternating between contenders on each round (so a noisy neighbour hits all of
them alike), repeated, summarised as median and spread."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field

from ..platform.processes import wait_child


@dataclass
class Run:
    bytes: int
    seconds: float
    cpu_seconds: float | None       # None: not measurable here (no wait4)
    max_rss_kib: int | None
    extra: dict = field(default_factory=dict)

    @property
    def mb_per_s(self) -> float:
        return self.bytes / self.seconds / 1e6 if self.seconds > 0 else 0.0


def _known(values: list) -> list:
    return [v for v in values if v is not None]


def _median_or_none(values: list, digits: int) -> float | None:
    known = _known(values)
    return round(statistics.median(known), digits) if known else None


# GNU time forks the measured command from its own small process, so the
# child's ru_maxrss is its own and not the parent interpreter's (Linux keeps
# a forking parent's high-water mark across exec).
GNU_TIME = "/usr/bin/time"


def _with_time(argv: list[str]) -> tuple[list[str], bool]:
    if os.path.exists(GNU_TIME) and argv[0] != sys.executable:
        return [GNU_TIME, "-f", "NTDSB_MAXRSS_KIB=%M", *argv], True
    return argv, False


@dataclass
class Contender:
    """A named measurement: argv of a child process, and how to read its result.

    If the child prints a JSON line with "bytes" and "seconds", those are used
    (timed inside the child: no interpreter start-up); otherwise the wall time
    of the whole child and `nbytes` count.  `before` runs in the parent before
    the child, untimed; `after` runs after it (e.g. fsync of a CLI tool's
    output) and is timed with it.
    """

    name: str
    argv: list[str]
    nbytes: int | None = None
    after: object = None
    before: object = None
    runs: list[Run] = field(default_factory=list)

    def median_mb_per_s(self) -> float:
        return statistics.median(r.mb_per_s for r in self.runs) if self.runs else 0.0

    def summary(self) -> dict:
        rates = [r.mb_per_s for r in self.runs]
        return {
            "name": self.name,
            "runs": len(self.runs),
            "mb_per_s_median": round(statistics.median(rates), 1) if rates else None,
            "mb_per_s_min": round(min(rates), 1) if rates else None,
            "mb_per_s_max": round(max(rates), 1) if rates else None,
            "cpu_seconds_median": _median_or_none([r.cpu_seconds for r in self.runs], 3),
            "max_rss_mib": round(max(rss) / 1024, 1) if (rss := _known(
                [r.max_rss_kib for r in self.runs])) else None,
            "bytes": self.runs[0].bytes if self.runs else None,
            "extra": self.runs[-1].extra if self.runs else {},
        }


def measure(contender: Contender, env: dict | None = None) -> Run:
    """One run of one contender.  CPU time and peak RSS come from wait4() on the
    child, so they are the child's own (None where there is no wait4; the
    child's own peak_rss_kib then still counts)."""
    argv, timed = _with_time(contender.argv)
    if contender.before is not None:
        contender.before()
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, cpu, rss = wait_child(proc)
    if proc.returncode != 0:
        raise RuntimeError(f"{contender.name} failed ({proc.returncode}): "
                           f"{err.decode(errors='replace')[-2000:]}")
    if contender.after is not None:
        contender.after()
    wall = time.monotonic() - t0
    nbytes, seconds, extra = contender.nbytes, wall, {}
    for line in reversed(out.decode().splitlines()):
        if line.startswith("{"):
            doc = json.loads(line)
            nbytes, seconds = doc["bytes"], doc["seconds"]
            rss = doc.pop("peak_rss_kib", None) or rss
            extra = {k: v for k, v in doc.items() if k not in ("bytes", "seconds")}
            break
    if timed:
        for line in err.decode(errors="replace").splitlines():
            if line.startswith("NTDSB_MAXRSS_KIB="):
                rss = int(line.split("=", 1)[1])
    return Run(int(nbytes or 0), seconds, cpu, rss, extra)


def paired_ratio(a: Contender, b: Contender) -> tuple[float, float, float] | None:
    """a's rate over b's, round by round (alternate() ran them back to back in
    each round, so a noisy neighbour weighs on both alike): the median and the
    spread (min, max) of the per-round ratios, or None without runs.  A ratio
    of two medians taken from different rounds would mix the drift in."""
    pairs = [x.mb_per_s / y.mb_per_s for x, y in zip(a.runs, b.runs) if y.mb_per_s > 0]
    if not pairs:
        return None
    return statistics.median(pairs), min(pairs), max(pairs)


def alternate(contenders: list[Contender], repeat: int, env: dict | None = None,
              on_run=None) -> None:
    """Round-robin: A B C, A B C, ... so drift hits every contender alike.

    One unrecorded round comes first.  On a virtual machine the first touch of
    a page of guest memory is several times dearer than reusing one: whichever
    contender first grows the working set (a new output file on tmpfs) would
    pay for it, and the contender after it would find its pages taken."""
    for c in contenders:
        measure(c, env)
    for i in range(repeat):
        for c in contenders:
            run = measure(c, env)
            c.runs.append(run)
            if on_run:
                on_run(i, c, run)

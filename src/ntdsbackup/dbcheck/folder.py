"""The consistency check of an NTDS folder on disk: what a DC runs when it
starts after a restore (the emulated DC's `dc start`)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from .. import ese
from .pages import KIND_DATABASE, KIND_LOG, PageResult, check_file
from .verdict import CURRENT_LOG, DATABASE_NAME, FileFacts, Verdict, judge

CHECKPOINT_NAME = "edb.chk"
# Windows names ignore case: EDB0000A.LOG is generation 10 too.
LOG_NAME = re.compile(r"^edb([0-9A-F]{5}|[0-9A-F]{8})\.log$", re.IGNORECASE)


def log_generation(name: str) -> int | None:
    """The generation an edbXXXXX.log name gives, or None."""
    m = LOG_NAME.match(name)
    return int(m.group(1), 16) if m else None


def _facts(path: Path, kind: int, v: Verdict, generation: int | None = None) -> FileFacts | None:
    try:
        return FileFacts(path.name, check_file(path, kind), generation)
    except OSError as e:
        v.problem(f"{path.name}: cannot read: {e.strerror}")
        return None


def check_folder(ntds_dir: str | os.PathLike[str], gen_low: int | None = None,
                 gen_high: int | None = None) -> Verdict:
    """Database header + shadow, every page, every log header and segment, the
    generation chain, edb.chk, and the required generations (the database's,
    and gen_low..gen_high when given)."""
    ntds = Path(ntds_dir)
    v = Verdict()
    database = _facts(ntds / DATABASE_NAME, KIND_DATABASE, v)
    logs = []
    for name in sorted(os.listdir(ntds)):
        gen = log_generation(name)
        if gen is not None:
            facts = _facts(ntds / name, KIND_LOG, v, gen)
            if facts is not None:
                logs.append(facts)
    current = None
    if (ntds / CURRENT_LOG).exists():
        current = _facts(ntds / CURRENT_LOG, KIND_LOG, v)
    if database is None:
        database = FileFacts(DATABASE_NAME, PageResult(KIND_DATABASE, 0))
    judge(database, logs, current=current, gen_low=gen_low, gen_high=gen_high, verdict=v)
    _check_checkpoint(ntds, database, v)
    return v


def _check_checkpoint(ntds: Path, database: FileFacts, v: Verdict) -> None:
    chk = ntds / CHECKPOINT_NAME
    if not chk.exists():
        v.warnings.append(f"{CHECKPOINT_NAME}: absent (recovery starts at the required "
                          "generation)")
        return
    cp, probs, warns = ese.read_checkpoint(chk.read_bytes())
    for p in probs:
        v.problem(f"{CHECKPOINT_NAME}: {p}")
    v.warnings += [f"{CHECKPOINT_NAME}: {w}" for w in warns]
    if cp is None:
        return
    v.checkpoint_gen = cp.lgpos_checkpoint.generation
    header = ese.read_db_header_pair(database.pages.head).header
    if header is not None and cp.sign_log != header.sign_log:
        v.problem(f"{CHECKPOINT_NAME}: signLog differs from the database's")
    gens = v.log_generations
    if gens and not gens[0] <= v.checkpoint_gen <= gens[-1] + 1:
        v.warnings.append(f"{CHECKPOINT_NAME}: checkpoint generation {v.checkpoint_gen} "
                          f"outside the logs present ({gens[0]}..{gens[-1]})")

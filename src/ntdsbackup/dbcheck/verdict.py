"""The verdict a DC's consistency check gives on a set of ESE files: the
database (header, shadow, every page) and its logs (headers, v8 segments,
the generation chain, the signatures, the required range).

One judge for every place that asks (docs/ESE.md, "Checks"): the emulated
DC when it boots after a restore (folder.py), the backup as it streams,
`verify --deep` on an archive and the restore on its staged files.  They
differ only in where the facts come from; the rules are these.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .. import ese
from ..ese import LogHeader, Signature
from .pages import CORRECTABLE, PageResult

DATABASE_NAME = "ntds.dit"
CURRENT_LOG = "edb.log"
MAX_LISTED = 20          # bad pages / segments listed one by one per file
SEGMENT_SIZES = (512, 1024, 2048, 4096, 8192)


@dataclass
class FileFacts:
    """One file as the checker saw it."""

    name: str                      # how the verdict names it ("ntds.dit", "edb0000A.log")
    pages: PageResult
    generation: int | None = None  # a closed log's generation, from its name


@dataclass
class Verdict:
    """What the checks found.  ok (bootable) is False iff problems is not empty."""

    ok: bool = True
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    page_size: int | None = None
    dbstate: int | None = None
    header_used: str = "none"
    pages_ok: int = 0
    pages_old: int = 0
    pages_uninit: int = 0
    pages_bad: int = 0           # not valid and not correctable
    pages_correctable: int = 0   # single-bit errors ESE's ECC corrects on read
    bad_pages: list[int] = field(default_factory=list)  # the first few bad page numbers
    trailer: bool = False        # a streamed-backup trailer page was found and accepted
    logs_checked: int = 0
    log_generations: list[int] = field(default_factory=list)
    segments_ok: int = 0
    segments_bad: int = 0
    required: tuple[int, int] | None = None
    checkpoint_gen: int | None = None

    @property
    def bootable(self) -> bool:
        return self.ok

    def problem(self, text: str) -> None:
        self.problems.append(text)
        self.ok = False

    def summary(self) -> dict[str, Any]:
        d = asdict(self)
        d["pages_total"] = (self.pages_ok + self.pages_old + self.pages_uninit + self.pages_bad
                            + self.pages_correctable)
        return d

    def summary_text(self) -> str:
        gens = self.log_generations
        span = f"{gens[0]}..{gens[-1]}" if gens else "none"
        text = (
            f"{self.pages_ok + self.pages_old} pages valid ({self.pages_old} old format), "
            f"{self.pages_uninit} empty, {self.pages_bad} bad, {self.pages_correctable} "
            f"correctable; {self.logs_checked} logs (generations {span}), "
            f"{self.segments_ok} log segments valid, {self.segments_bad} bad"
        )
        if self.problems:
            text += f"; {len(self.problems)} problem(s): " + "; ".join(self.problems[:5])
        return text

    def record(self) -> dict[str, Any]:
        """The verdict as the archive's trailer keeps it (docs/FORMAT.md "ese")."""
        gens = self.log_generations
        return {
            "verdict": "bootable" if self.ok else "not bootable",
            "page_size": self.page_size, "dbstate": self.dbstate,
            "header": self.header_used,
            "pages": {"ok": self.pages_ok, "old_format": self.pages_old,
                      "empty": self.pages_uninit, "bad": self.pages_bad,
                      "correctable": self.pages_correctable},
            "bad_pages": self.bad_pages[:MAX_LISTED],
            "trailer_page": self.trailer,
            "logs": {"count": self.logs_checked,
                     "low": gens[0] if gens else None, "high": gens[-1] if gens else None,
                     "segments_ok": self.segments_ok, "segments_bad": self.segments_bad},
            "required": list(self.required) if self.required else None,
            "problems": self.problems[:MAX_LISTED],
            "warnings": self.warnings[:MAX_LISTED],
        }


def judge(database: FileFacts | None, logs: list[FileFacts], *,
          current: FileFacts | None = None, gen_low: int | None = None,
          gen_high: int | None = None, verdict: Verdict | None = None) -> Verdict:
    """The verdict on a database and its closed logs (and a current edb.log,
    if there is one); gen_low..gen_high (inclusive), when given, must all be
    present, as the restore registered them.  Never raises for damaged
    files: every finding goes into the verdict."""
    v = verdict or Verdict()
    header = _judge_database(database, v) if database is not None else None
    if database is None:
        v.problem(f"no database ({DATABASE_NAME}) in the set")
    sign_log = header.sign_log if header is not None else None

    headers: dict[int, LogHeader] = {}
    names: dict[int, str] = {}
    closed = sorted((f.generation, f) for f in logs if f.generation is not None)
    for gen, facts in closed:
        lh = _judge_log(facts, gen, sign_log, v)
        if lh is not None:
            headers[gen] = lh
            names[gen] = facts.name
    for facts in logs:
        if facts.generation is None:
            v.problem(f"{facts.name}: not a log file name (edbXXXXX.log)")
    if current is not None:
        _judge_current(current, headers, names, sign_log, v)
    gens = sorted(headers)
    v.log_generations = gens
    for a, b in zip(gens, gens[1:]):
        if b != a + 1:
            v.problem(f"log generations {a + 1}..{b - 1} missing between {names[a]} and "
                      f"{names[b]}")
        elif headers[b].tm_prev_gen != headers[a].tm_create:
            v.problem(f"{names[b]}: generation {b}: tmPrevGen does not equal tmCreate of "
                      f"generation {a} (broken log chain)")

    def require(lo: int, hi: int, why: str) -> None:
        missing = [g for g in range(lo, hi + 1) if g not in headers]
        if missing:
            shown = ", ".join(str(g) for g in missing[:10]) + (" ..." if len(missing) > 10
                                                               else "")
            v.problem(f"missing log generation(s) {shown} ({why} {lo}..{hi})")

    if header is not None and header.dbstate != ese.DBSTATE_CLEAN_SHUTDOWN \
            and header.gen_min_required > 0:
        v.required = (header.gen_min_required,
                      max(header.gen_min_required, header.gen_max_required))
        require(*v.required, f"{database.name if database else DATABASE_NAME} requires")
    if header is not None and header.bk_full_cur.gen_low > 0 and gens:
        require(header.bk_full_cur.gen_low, max(gens[-1], header.bk_full_cur.gen_low),
                "the streamed backup began at")
    if gen_low is not None or gen_high is not None:
        lo = gen_low if gen_low is not None else (gens[0] if gens else 1)
        hi = gen_high if gen_high is not None else (gens[-1] if gens else lo)
        require(lo, hi, "the restore registered")
    return v


def _judge_database(facts: FileFacts, v: Verdict) -> ese.DbHeader | None:
    pages = facts.pages
    name = facts.name
    pair = ese.read_db_header_pair(pages.head)
    v.warnings += [f"{name}: {w}" for w in pair.warnings]
    for p in pair.problems:
        v.problem(f"{name}: {p}")
    v.header_used = pair.used
    h = pair.header
    if h is None:
        return None
    ps = h.page_size
    v.page_size, v.dbstate = ps, h.dbstate
    if pages.short:
        v.problem(f"{name}: {pages.short} bytes could not be read (the file shrank)")
    if pages.file_size % ps:
        v.problem(f"{name}: size {pages.file_size} is not a multiple of the page size {ps}")
    if not pages.geometry or pages.unit_size != ps:
        v.problem(f"{name}: the pages could not be checked (no usable page size)")
        return h
    v.pages_ok += pages.ok
    v.pages_old += pages.ok_old
    v.pages_uninit += pages.uninit
    v.pages_bad += pages.uncorrectable
    v.pages_correctable += pages.correctable
    listed = 0
    for unit in pages.listed:
        text = f"{name}: " + unit.describe("page")
        if unit.reason == CORRECTABLE:
            v.warnings.append(text)
            continue
        if listed < MAX_LISTED:
            v.problem(text)
            v.bad_pages.append(unit.number)
        listed += 1
    if pages.uncorrectable > listed:
        v.problem(f"{name}: {pages.uncorrectable - listed} more bad pages not listed")
    if pages.trailer is not None:
        last = pages.file_size // ps - 2
        t = ese.parse_backup_trailer(pages.trailer)
        if t is not None and t.sign_db == h.sign_db:
            v.trailer = True
        else:
            v.pages_bad += 1
            v.bad_pages.append(last)
            v.problem(f"{name}: page {last}: bad checksum (and not the backup trailer of "
                      "this database)")
    return h


def _judge_log(facts: FileFacts, expect_gen: int | None, sign_log: Signature | None,
               v: Verdict) -> LogHeader | None:
    pages, name = facts.pages, facts.name
    probs = ese.check_log_header(pages.head)
    for p in probs:
        v.problem(f"{name}: {p}")
    if probs:
        return None
    lh = ese.parse_log_header(pages.head)
    v.logs_checked += 1
    if expect_gen is not None and lh.generation != expect_gen:
        v.problem(f"{name}: header generation {lh.generation} does not match the file name")
    if sign_log is not None and lh.sign_log != sign_log:
        v.problem(f"{name}: generation {lh.generation}: signLog differs from the database's "
                  "(a log of another database)")
    if lh.cb_sec not in SEGMENT_SIZES or lh.csec_header < 1:
        v.problem(f"{name}: implausible geometry cbSec {lh.cb_sec}, csecHeader "
                  f"{lh.csec_header}")
        return lh
    if pages.file_size != lh.csec_lgfile * lh.cb_sec:
        v.problem(f"{name}: size {pages.file_size} != csecLGFile {lh.csec_lgfile} * cbSec "
                  f"{lh.cb_sec}")
    if pages.short:
        v.problem(f"{name}: {pages.short} bytes could not be read (the file shrank)")
    if lh.segmented and pages.geometry:
        v.segments_ok += pages.ok
        v.segments_bad += pages.bad
        for unit in pages.listed[:MAX_LISTED]:
            v.problem(f"{name}: generation {lh.generation}: " + unit.describe("segment"))
        if pages.bad > min(len(pages.listed), MAX_LISTED):
            v.problem(f"{name}: {pages.bad - min(len(pages.listed), MAX_LISTED)} more bad "
                      "segments not listed")
    elif lh.segmented:
        v.problem(f"{name}: the log segments could not be checked")
    return lh


def _judge_current(facts: FileFacts, headers: dict[int, LogHeader], names: dict[int, str],
                   sign_log: Signature | None, v: Verdict) -> None:
    lh = _judge_log(facts, None, sign_log, v)
    if lh is None:
        return
    top = max(headers) if headers else None
    if top is not None and lh.generation == top:
        # between link() and rename() of a log roll: the same log twice
        v.warnings.append(f"{facts.name}: same generation as {names[top]} (interrupted roll)")
    elif top is not None and lh.generation != top + 1:
        v.problem(f"{facts.name}: generation {lh.generation} does not follow the highest "
                  f"closed log {top}")
    else:
        headers[lh.generation] = lh
        names[lh.generation] = facts.name

"""Progress display: one bar per job on a terminal, JSON lines for scripts.

The bar counts the whole job, not one file: its total is every byte known
so far (a backup learns each file's size from DsBackupOpenFileW, so the
total grows when the logs are listed; a read of a seekable archive knows the
trailer's total up front, see `expect`).  Each redraw is one line that fits
the terminal: carriage return, the line, clear to the end of the line, so a
shorter line leaves nothing behind.  The job ends with one final line; an
error printed meanwhile first ends the bar's line (`end_line`), so it never
lands on it.
"""

from __future__ import annotations

import shutil
import sys
import time

from ..fsutil import format_size
from .jsonschema import SCHEMA_VERSION

CLEAR_TO_EOL = "\x1b[K"
REDRAW_INTERVAL = 0.1           # seconds between two redraws of the bar
BAR_MIN, BAR_MAX = 10, 30       # the bar's own width, in cells
NAME_MIN = 8                    # below this the name is dropped

# The bar that has a line open on the terminal, if any (see end_line).
_open_bar: Progress | None = None


def end_line() -> None:
    """Finish the line the bar is on, so that what is written next starts a
    line of its own (an error, a signal's message)."""
    if _open_bar is not None:
        _open_bar.break_line()


class Progress:
    """Receives the phases' events ({'event': 'file'|'progress'|'phase'|...})
    and renders them.

    mode 'bar' redraws one line on a terminal; 'json' prints one JSON object
    per line (progress throttled to `json_interval`); 'quiet' prints only
    what a person must know (how an interrupted restore was settled).
    """

    def __init__(self, mode: str, stream=None, json_interval: float = 1.0):
        self.mode = mode
        self.stream = stream or sys.stderr
        self.json_interval = json_interval
        self.expected: int | None = None    # the job's total, when known up front
        self._reset(time.monotonic())
        self._last_draw = self._last_json = 0.0
        self._drawn = False                 # a bar line is open on the terminal

    def _reset(self, now: float) -> None:
        self.t0 = now
        self.sizes: dict[str, int] = {}     # every file of the job seen so far
        self.done: dict[str, int] = {}
        self.phase: str | None = None
        self.current: str | None = None

    # -- what the command tells it ---------------------------------------------------
    def expect(self, total: int | None) -> None:
        """The job's total bytes, known before it starts (a seekable archive's
        trailer); without it the total is the sum of the files seen so far."""
        self.expected = total

    def close(self) -> None:
        """The job is over: its one final line."""
        if self.mode == "bar" and self.sizes:
            self._draw(time.monotonic(), final=True)

    def break_line(self) -> None:
        global _open_bar
        if self._drawn:
            self._write("\n")
            self._drawn = False
        if _open_bar is self:
            _open_bar = None

    # -- the events ---------------------------------------------------------------
    def __call__(self, event: dict) -> None:
        kind = event["event"]
        now = time.monotonic()
        if kind == "phase":
            # Restore runs phases over the same files: each is a job of its own.
            self.close()
            self._reset(now)
            self.phase = event["phase"]
            if self.mode == "json":
                self.emit_json(event)
        elif kind in ("settled", "recovered"):
            self._outcome(event)
        elif kind == "file":
            self._see(event["name"], event["size"])
            if self.mode == "json":
                self.emit_json({"event": "file", "name": event["name"], "size": event["size"],
                                **({"phase": self.phase} if self.phase else {})})
        elif kind == "progress":
            self._see(event["name"], event["size"])     # verify sends no file event
            if self.done[event["name"]] == event["done"] and event["done"]:
                return          # the engine's last report, then the phase's: said once
            self.done[event["name"]] = event["done"]
            self._progress(now, finished=event["done"] >= event["size"])

    def _see(self, name: str, size: int) -> None:
        if name not in self.sizes:
            self.sizes[name] = size
            self.done[name] = 0
        self.current = name

    def _outcome(self, event: dict) -> None:
        # How an interrupted restore ended ('settled', said even with -q: an
        # error follows it) or what recovery did first ('recovered').
        if self.mode == "json":
            self.emit_json(event)
        elif self.mode == "bar" or event["event"] == "settled":
            self.break_line()
            self._write(f"restore {event['event']}: {event['detail']}\n")

    def _progress(self, now: float, finished: bool) -> None:
        if self.mode == "bar" and now - self._last_draw >= REDRAW_INTERVAL:
            self._draw(now, final=False)
        elif self.mode == "json" and (finished or now - self._last_json >= self.json_interval):
            self._last_json = now
            name = self.current
            done, total = self.total_done(), self.total()
            self.emit_json({"event": "progress", "name": name, "done": self.done[name],
                            "size": self.sizes[name], "total_done": done, "total": total,
                            "mb_per_s": round(self._rate(now) / 1e6, 1),
                            "eta_seconds": self._eta(now),
                            **({"phase": self.phase} if self.phase else {})})

    # -- the numbers --------------------------------------------------------------
    def total(self) -> int:
        seen = sum(self.sizes.values())
        return max(self.expected or 0, seen)

    def total_done(self) -> int:
        return sum(self.done.values())

    def _rate(self, now: float) -> float:
        return self.total_done() / max(now - self.t0, 1e-9)

    def _eta(self, now: float) -> float | None:
        rate = self._rate(now)
        if rate <= 0:
            return None
        return round((self.total() - self.total_done()) / rate, 1)

    # -- the bar ------------------------------------------------------------------
    def _draw(self, now: float, final: bool) -> None:
        global _open_bar
        self._last_draw = now
        width = shutil.get_terminal_size().columns - 1   # the last column would wrap
        line = render(self._label(final), self.total_done(), self.total(),
                      self._rate(now), None if final else self._eta(now),
                      now - self.t0 if final else None, width)
        self._write("\r" + line + CLEAR_TO_EOL + ("\n" if final else ""))
        self._drawn = not final
        _open_bar = self if not final else None

    def _label(self, final: bool) -> str:
        what = f"{len(self.sizes)} files" if final or self.current is None else self.current
        return f"{self.phase}: {what}" if self.phase else what

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    def emit_json(self, obj: dict) -> None:
        self._write(json_line(obj))


def json_line(obj: dict) -> str:
    """One event as the documented JSON line (docs/JSON.md)."""
    import json

    return json.dumps({"event": obj["event"], "schema": SCHEMA_VERSION,
                       **{k: v for k, v in obj.items() if k != "event"}}, default=str) + "\n"


def render(label: str, done: int, total: int, rate: float, eta: float | None,
           elapsed: float | None, width: int) -> str:
    """One bar line of at most `width` characters.  When the terminal is
    narrow the fields go in this order: the ETA (or elapsed time), the rate,
    the byte counts, the bar, the name; the percentage stays."""
    frac = min(done / total, 1.0) if total else 1.0
    fields = [f"{frac * 100:5.1f}%", f"{format_size(done)}/{format_size(total)}",
              f"{rate / 1e6:.1f} MB/s"]
    if eta is not None:
        fields.append(f"ETA {_duration(eta)}")
    elif elapsed is not None:
        fields.append(f"in {_duration(elapsed)}")
    kept = [fields[0]]
    for field in fields[1:]:
        if len(" ".join([*kept, field])) + 1 + BAR_MIN + 3 + NAME_MIN <= width:
            kept.append(field)
    tail = " ".join(kept)
    room = width - len(tail) - 1
    bar_width = min(BAR_MAX, max(BAR_MIN, room // 3)) if room >= BAR_MIN + 3 + NAME_MIN else 0
    name_width = room - (bar_width + 3 if bar_width else 0)
    parts = []
    if name_width >= NAME_MIN:
        parts.append(_fit(label, name_width))
    if bar_width:
        filled = int(frac * bar_width)
        parts.append(f"[{'#' * filled}{'.' * (bar_width - filled)}]")
    parts.append(tail)
    return " ".join(parts)[:max(width, 0)]


def _fit(text: str, width: int) -> str:
    """`text` in exactly `width` cells: padded, or cut in the middle (a
    file's name says most at its end)."""
    if len(text) <= width:
        return text.ljust(width)
    keep = width - 2
    return text[:keep // 2] + ".." + text[len(text) - (keep - keep // 2):]


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"

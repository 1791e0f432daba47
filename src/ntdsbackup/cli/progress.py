"""Progress display: a bar on a terminal, JSON lines for scripts."""

from __future__ import annotations

import json
import sys
import time

from ..fsutil import format_size


class Progress:
    """Receives engine events {'event': 'file'|'progress', ...} and renders them.

    mode 'bar' redraws one line on a terminal; 'json' prints one JSON object
    per line (throttled to `json_interval`); 'quiet' prints nothing.
    """

    def __init__(self, mode: str, stream=None, json_interval: float = 1.0):
        self.mode = mode
        self.stream = stream or sys.stderr
        self.json_interval = json_interval
        self.t0 = time.monotonic()
        self.file_t0 = self.t0
        self.done_before = 0       # bytes of files already finished
        self.current = None
        self._last = 0.0

    def __call__(self, event: dict) -> None:
        now = time.monotonic()
        if event["event"] == "phase":
            # Restore runs phases over the same files: each starts its own count.
            self.done_before, self.current, self.t0 = 0, None, now
            if self.mode == "json":
                self.emit_json(event)
            elif self.mode == "bar":
                self.stream.write(f"-- {event['phase']}\n")
            return
        if event["event"] in ("settled", "recovered"):
            # How an interrupted restore ended, or what recovery did: said
            # whatever the mode, a person needs it.
            if self.mode == "json":
                self.emit_json(event)
            else:
                self.stream.write(f"\nrestore {event['event']}: {event['detail']}\n")
                self.stream.flush()
            return
        if event["event"] == "file":
            if self.current is not None:
                self.done_before += self.current["size"]
            self.current = {"name": event["name"], "size": event["size"], "done": 0}
            self.file_t0 = now
            if self.mode == "json":
                self.emit_json({"event": "file", "name": event["name"], "size": event["size"]})
            return
        if event["event"] != "progress":
            return
        if self.current is None or self.current["name"] != event["name"]:
            # A phase that reports progress without a file event first (verify).
            if self.current is not None:
                self.done_before += self.current["size"]
            self.current = {"name": event["name"], "size": event["size"], "done": 0}
            self.file_t0 = now
        self.current["done"] = event["done"]
        finished = event["done"] >= event["size"]
        if self.mode == "bar" and (finished or now - self._last >= 0.1):
            self._last = now
            self._bar(now, finished)
        elif self.mode == "json" and (finished or now - self._last >= self.json_interval):
            self._last = now
            total = self.done_before + event["done"]
            elapsed = max(now - self.t0, 1e-9)
            self.emit_json({"event": "progress", "name": event["name"], "done": event["done"],
                        "size": event["size"], "total_done": total,
                        "mb_per_s": round(total / elapsed / 1e6, 1),
                        "eta_seconds": self._eta(now)})

    def _eta(self, now: float) -> float | None:
        cur = self.current
        rate = cur["done"] / max(now - self.file_t0, 1e-9)
        if rate <= 0:
            return None
        return round((cur["size"] - cur["done"]) / rate, 1)

    def _bar(self, now: float, finished: bool) -> None:
        cur = self.current
        frac = cur["done"] / cur["size"] if cur["size"] else 1.0
        width = 24
        filled = int(frac * width)
        total = self.done_before + cur["done"]
        rate = total / max(now - self.t0, 1e-9) / 1e6
        eta = self._eta(now)
        eta_text = "" if finished or eta is None else f" ETA {eta:5.0f}s"
        line = (f"\r{cur['name'][:28]:<28} [{'#' * filled}{'.' * (width - filled)}] "
                f"{frac * 100:5.1f}% {format_size(cur['done'])}/{format_size(cur['size'])} "
                f"total {format_size(total)} {rate:7.1f} MB/s{eta_text}")
        self.stream.write(line.ljust(110) + ("\n" if finished else ""))
        self.stream.flush()

    def emit_json(self, obj: dict) -> None:
        self.stream.write(json.dumps(obj) + "\n")
        self.stream.flush()

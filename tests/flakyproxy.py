"""A loopback TCP proxy to radosgw that resets connections on purpose, for
the tests of transient failures (the storage layer's and the commands').

Three ways of failing, which combine:

* `drop`: the first `drop` connections are reset as they arrive;
* `cut`: the first `cut` connections that carry `cut_after` bytes (both
  directions counted) are reset there, in the middle of a request or of
  its answer;
* `outage()`: once `after_bytes` have passed in all, every open connection
  is reset, and every new one as it arrives, for `seconds` (or for good).

Every reset is a TCP RST ("connection reset by peer") and counts in
`dropped`.  Anything else is passed through unchanged.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
import time

__all__ = ["FlakyProxy"]

_LINGER_RST = struct.pack("ii", 1, 0)


def _reset(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
    sock.close()


class FlakyProxy:
    """Listens on 127.0.0.1:`port`, forwards to 127.0.0.1:`target_port`."""

    def __init__(self, target_port: int, drop: int = 0, *, cut: int = 0,
                 cut_after: int = 1 << 20):
        self.target_port = target_port
        self.drop = drop
        self.cut = cut
        self.cut_after = cut_after
        self.dropped = 0            # connections reset, whichever the way
        self.arrived_drops = 0      # ... of them on arrival (drop, outage)
        self.cuts = 0               # ... of them midway (cut, outage)
        self.passed = 0             # bytes passed through, both directions
        self._lock = threading.Lock()
        self._outage_after: int | None = None
        self._outage_seconds: float | None = None
        self._outage_from: float | None = None
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def outage(self, *, after_bytes: int = 0, seconds: float | None = None) -> None:
        """Once `after_bytes` more have passed, reset everything for
        `seconds` (None: until the proxy is closed)."""
        with self._lock:
            self._outage_after = self.passed + after_bytes
            self._outage_seconds = seconds
            self._outage_from = None
            self._check_outage()

    def _check_outage(self) -> None:
        if self._outage_after is not None and self._outage_from is None \
                and self.passed >= self._outage_after:
            self._outage_from = time.monotonic()

    def _in_outage(self) -> bool:
        if self._outage_from is None:
            return False
        return self._outage_seconds is None or \
            time.monotonic() - self._outage_from < self._outage_seconds

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with self._lock:
                refuse = self.arrived_drops < self.drop or self._in_outage()
                if refuse:
                    self.dropped += 1
                    self.arrived_drops += 1
            if refuse:
                _reset(conn)                     # RST: "connection reset by peer"
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                _reset(conn)
                continue
            threading.Thread(target=self._pump, args=(conn, upstream), daemon=True).start()

    def _pump(self, conn: socket.socket, upstream: socket.socket) -> None:
        """Both directions of one connection on one thread, so that a reset
        closes sockets nobody else is blocked on."""
        peer = {conn: upstream, upstream: conn}
        open_ends = {conn, upstream}
        carried = 0
        try:
            while open_ends:
                ready, _, _ = select.select(list(open_ends), [], [], 0.05)
                with self._lock:
                    if self._in_outage():
                        self.dropped += 1
                        self.cuts += 1
                        break
                for src in ready:
                    try:
                        data = src.recv(1 << 16)
                    except OSError:
                        data = b""
                    if not data:
                        open_ends.discard(src)
                        with contextlib.suppress(OSError):
                            peer[src].shutdown(socket.SHUT_WR)
                        continue
                    with self._lock:
                        carried += len(data)
                        self.passed += len(data)
                        self._check_outage()
                        cut = carried >= self.cut_after and self.cuts < self.cut
                        if cut:
                            self.cuts += 1
                            self.dropped += 1
                            # this connection is cut once only
                            carried = -(1 << 62)
                    if cut:
                        return              # the finally below resets both ends
                    peer[src].sendall(data)
            else:
                conn.close()
                upstream.close()
                return
        except OSError:
            pass
        finally:
            if conn.fileno() != -1:
                _reset(conn)
            if upstream.fileno() != -1:
                _reset(upstream)

    def close(self) -> None:
        self.server.close()

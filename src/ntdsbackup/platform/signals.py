"""Signals: termination requests as exceptions, and sections that must not be
interrupted.

Every command treats SIGINT, SIGTERM and SIGHUP (on Windows: Ctrl-C,
Ctrl-Break and the console's close event) alike: the signal becomes an
:class:`Interrupted` exception (a KeyboardInterrupt, so every cleanup path
written for Ctrl-C runs), handles are ended, partial files removed, and the
process exits with 128 + the signal number (130, 143, 129).

:func:`read_some` is the read every Python-level loop over a pipe uses: a
signal that lands just before a blocking read() begins would otherwise wait
for the next byte on the pipe, for ever if the writer has stalled.

:func:`deferred` holds those signals back for a short critical section (the
restore's registration and rename sequence): a signal that arrives inside it
is remembered and raised when the section ends, at a point where the state
on disk is whole again.  Only the main thread receives signals; elsewhere
both functions are no-ops.
"""

from __future__ import annotations

import contextlib
import io
import os
import select
import signal
import sys
import threading
from collections.abc import Iterator
from typing import BinaryIO

__all__ = ["Interrupted", "TERMINATION_SIGNALS", "deferred", "exit_code_for_interrupt",
           "install_termination_handlers", "read_some", "signal_ended_reader",
           "signal_name", "termination_handlers"]

# How long a read waits before it returns to the interpreter to let a signal
# handler run (the engine's NTDSB_IO_POLL_MS, for the same reason).
POLL_SECONDS = 0.1


def _termination_signals() -> tuple[int, ...]:
    names = ("SIGINT", "SIGTERM", "SIGBREAK") if sys.platform == "win32" else \
        ("SIGINT", "SIGTERM", "SIGHUP")
    return tuple(getattr(signal, n) for n in names if hasattr(signal, n))


TERMINATION_SIGNALS = _termination_signals()


class Interrupted(KeyboardInterrupt):
    """A termination signal, raised where the main thread was."""

    def __init__(self, signum: int):
        self.signum = signum
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = f"signal {signum}"
        super().__init__(name)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def exit_code_for_interrupt(exc: KeyboardInterrupt) -> int:
    """130 for Ctrl-C, 128 + N for signal N."""
    return exc.exit_code if isinstance(exc, Interrupted) else 128 + signal.SIGINT


def signal_name(exc: KeyboardInterrupt) -> str:
    """'SIGTERM' for Interrupted(SIGTERM); 'SIGINT' for a plain Ctrl-C."""
    signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _raise_interrupted(signum, _frame):
    raise Interrupted(signum)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def install_termination_handlers() -> None:
    """Make every termination signal raise Interrupted (the CLI calls this
    once, before any work).  A signal ignored by the parent (nohup) stays
    ignored."""
    if not _in_main_thread():
        return
    for signum in TERMINATION_SIGNALS:
        if signum != signal.SIGINT and signal.getsignal(signum) == signal.SIG_IGN:
            continue
        signal.signal(signum, _raise_interrupted)
    _console.install()


@contextlib.contextmanager
def termination_handlers() -> Iterator[None]:
    """install_termination_handlers() for the block, the previous handlers
    back afterwards (so a command run in-process leaves its host as it was)."""
    if not _in_main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in TERMINATION_SIGNALS}
    install_termination_handlers()
    try:
        yield
    finally:
        for signum, handler in previous.items():
            if handler is not None:
                signal.signal(signum, handler)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold termination signals until the block ends, then raise the first
    one that arrived (through the handler that was installed before)."""
    if not _in_main_thread():
        yield
        return
    pending: list[int] = []

    def remember(signum, _frame):
        pending.append(signum)

    previous = {}
    try:
        for signum in TERMINATION_SIGNALS:
            previous[signum] = signal.signal(signum, remember)
        with _console.holding():
            yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if pending:
        _deliver(pending[0], previous.get(pending[0]))


def read_some(fd: int, n: int) -> bytes:
    """os.read(fd, n) that a termination signal always ends.

    Python runs a signal's handler between bytecodes.  A signal that arrives
    after os.read has released the interpreter but before the read() call
    blocks (or one the kernel gave to another thread) only sets a flag, and
    the read sleeps until data comes: for ever on a stalled pipe.  So wait
    for data in short polls; each timeout returns to the interpreter, where
    the flag is seen and the handler raises.  A regular file or end of file
    is readable at once, so this costs a poll per read and no waiting.

    Windows: pipes cannot be polled there, and the read blocks as before
    (Ctrl-C on a console is delivered when the read returns)."""
    if not hasattr(select, "poll"):
        return os.read(fd, n)
    waiter = select.poll()
    waiter.register(fd, select.POLLIN)
    while not waiter.poll(POLL_SECONDS * 1000):
        pass
    return os.read(fd, n)


class _SignalEndedInput(io.RawIOBase):
    """A descriptor read through read_some (for a BufferedReader on top)."""

    def __init__(self, fd: int):
        super().__init__()
        self._fd = fd

    def readable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def readinto(self, buffer) -> int:
        data = read_some(self._fd, len(buffer))
        buffer[:len(data)] = data
        return len(data)


def signal_ended_reader(fd: int, buffer_size: int = 1 << 20) -> BinaryIO:
    """A buffered binary reader on `fd` (left open) whose reads a signal ends."""
    return io.BufferedReader(_SignalEndedInput(fd), buffer_size)  # type: ignore[return-value]


def _deliver(signum: int, handler) -> None:
    if callable(handler):
        handler(signum, None)
    elif handler == signal.SIG_IGN:
        return
    elif signum == signal.SIGINT:
        raise KeyboardInterrupt
    else:
        raise Interrupted(signum)


class _ConsoleControl:
    """Windows only: closing the console window, logging off or shutting
    down do not arrive as signals.  Windows calls a console control handler
    on its own thread and ends the process when the handler returns; ours
    waits (within the few seconds Windows grants) while a deferred section
    runs, so the section finishes first.  Ctrl-C and Ctrl-Break still come
    through the signal module."""

    CTRL_CLOSE_EVENT, CTRL_LOGOFF_EVENT, CTRL_SHUTDOWN_EVENT = 2, 5, 6
    WAIT_SECONDS = 4.5          # Windows allows about 5 s for a close event

    def __init__(self):
        self._idle = threading.Event()
        self._idle.set()
        self._callback = None   # kept alive: Windows holds only a raw pointer

    def install(self) -> None:
        if sys.platform != "win32" or self._callback is not None:
            return
        import ctypes
        from ctypes import wintypes

        proto = ctypes.WINFUNCTYPE(wintypes.BOOL, wintypes.DWORD)

        def on_event(event: int) -> bool:
            if event in (self.CTRL_CLOSE_EVENT, self.CTRL_LOGOFF_EVENT,
                         self.CTRL_SHUTDOWN_EVENT):
                self._idle.wait(self.WAIT_SECONDS)
            return False        # let the next handler (the default) run

        self._callback = proto(on_event)
        ctypes.windll.kernel32.SetConsoleCtrlHandler(self._callback, True)

    @contextlib.contextmanager
    def holding(self) -> Iterator[None]:
        outermost = self._idle.is_set()
        self._idle.clear()
        try:
            yield
        finally:
            if outermost:
                self._idle.set()


_console = _ConsoleControl()

"""JSON documents of untrusted archives, parsed within fixed bounds.

json.loads recurses once per nesting level (a few KB of brackets raise
RecursionError) and builds whatever it is given (a 4 MiB document of empty
objects takes 100 MiB).  This parser refuses, as it reads, a document nested
deeper than MAX_DEPTH, holding more than MAX_VALUES values or a string or
number longer than its limit, and anything that is not strict JSON (NaN,
Infinity, a repeated key, a lone surrogate, trailing data).  It reads a
stream block by block, so the seek index, which grows with the archive,
never has to be in memory: its chunk lists are checked and counted, not
kept (see `parse_stream`).  Time is linear in the input.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator

from ..errors import ArchiveError

MAX_DEPTH = 16
MAX_VALUES = 1 << 19            # keys and values kept, per document (30 per file listed)
MAX_STRING = 256 * 1024         # bytes of one string as written, escapes included
MAX_NUMBER = 32                 # characters of one number
_MAX_TOKEN = MAX_STRING + 2

_SPACE = re.compile(rb"[ \t\r\n]*")
# One token and the whitespace before it.  Token kinds are the group numbers.
_TOKEN = re.compile(rb"""[ \t\r\n]*(?:
    (\{) | (\}) | (\[) | (\]) | (,) | (:)                 # 1-6: punctuation
  | "((?:[^"\\\x00-\x1f]|\\[^\x00-\x1f])*)"              # 7: a string's body
  | (-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)   # 8: a number
  | (true|false|null)                                    # 9: a literal
)""", re.VERBOSE)
END, OPEN_OBJECT, CLOSE_OBJECT, OPEN_LIST, CLOSE_LIST, COMMA, COLON, STRING, NUMBER, \
    LITERAL = range(10)
_NAMES = {END: "the end of input", CLOSE_OBJECT: "'}'", CLOSE_LIST: "']'", COMMA: "','",
          COLON: "':'"}
_LITERALS = {b"true": True, b"false": False, b"null": None}
_MAX_INT = 10 ** 18             # integers in a counted tuple list (offsets, sizes)
# Runs of compact tuples "[1,2,3,4]," matched in one go: the bulk of a seek
# index, checked at the speed of the regex engine.
_TUPLE_RUN = {n: re.compile(rb"(?:\[(?:0|[1-9][0-9]{0,17})" + rb"(?:,(?:0|[1-9][0-9]{0,17}))"
                            * (n - 1) + rb"\],)*") for n in (2, 3, 4)}


class _Tokens:
    """Tokens of a JSON text given as blocks, holding at most one block plus
    one token in memory."""

    def __init__(self, blocks: Iterable[bytes], what: str):
        self._blocks: Iterator[bytes] = iter(blocks)
        self.what = what
        self.buf = b""
        self.pos = 0
        self.base = 0               # stream offset of buf[0], for messages
        self.done = False
        self._fill()

    def _fill(self) -> bool:
        """Append the next block, dropping what was consumed; False at the end."""
        for block in self._blocks:
            if block:
                self.base += self.pos
                self.buf = self.buf[self.pos:] + block
                self.pos = 0
                return True
        self.done = True
        return False

    def fail(self, why: str) -> ArchiveError:
        return ArchiveError(f"{self.what} is not valid JSON ({why} at byte "
                            f"{self.base + self.pos})")

    def too_long(self, what: str) -> ArchiveError:
        return ArchiveError(f"{self.what} holds {what} (at byte {self.base + self.pos})")

    def next(self) -> tuple[int, object]:
        """(kind, value) of the next token; (END, None) at the end of the text."""
        m = _TOKEN.match(self.buf, self.pos)
        # Strings and punctuation end in themselves; a number or literal
        # touching the end of the buffer may go on in the next block.
        if m is None or (m.lastindex >= NUMBER and m.end() == len(self.buf) and not self.done):
            m = self._refill()
            if m is None:
                return END, None
        self.pos = m.end()
        kind = m.lastindex
        if kind < STRING:
            return kind, None
        text = m.group(kind)
        if kind == STRING:
            return kind, self._string(text)
        if kind == NUMBER:
            return kind, self._number(text)
        return LITERAL, _LITERALS[text]

    def _refill(self) -> re.Match | None:
        """The next token where it needs more input than the buffer holds (None
        at the end of the text)."""
        while True:
            self.pos = _SPACE.match(self.buf, self.pos).end()
            m = _TOKEN.match(self.buf, self.pos)
            if m is not None and (m.lastindex < NUMBER or m.end() < len(self.buf) or self.done):
                return m
            if len(self.buf) - self.pos > _MAX_TOKEN:
                raise self.too_long(f"a string longer than {MAX_STRING} bytes")
            if not self._fill():
                if m is not None:
                    return m
                if self.pos == len(self.buf):
                    return None
                raise self.fail("unexpected input")

    def _string(self, body: bytes) -> str:
        if len(body) > MAX_STRING:
            raise self.too_long(f"a string longer than {MAX_STRING} bytes")
        try:
            if b"\\" not in body:
                return body.decode("utf-8")
            text = json.loads(b'"' + body + b'"')
            text.encode("utf-8")            # a lone surrogate cannot be
            return text
        except ValueError:                  # bad UTF-8, escape or surrogate
            raise self.fail("a malformed string") from None

    def _number(self, text: bytes):
        if len(text) > MAX_NUMBER:
            raise self.too_long(f"a number longer than {MAX_NUMBER} characters")
        if b"." in text or b"e" in text or b"E" in text:
            value = float(text)
            if not math.isfinite(value):
                raise self.fail("a number out of range")
            return value
        return int(text)

    def skip_run(self, run: re.Pattern) -> int:
        """Consume complete units of `run` (each holding one "["); how many."""
        count = 0
        while True:
            m = run.match(self.buf, self.pos)
            count += self.buf.count(b"[", self.pos, m.end())
            self.pos = m.end()
            # Stopped short of the end: the next unit is not compact, or the
            # list ends.  At the end: the block may have cut a unit in two.
            if len(self.buf) - self.pos > 100 or self.done or not self._fill():
                return count


class _Parser:
    def __init__(self, blocks: Iterable[bytes], what: str, counted: dict | None):
        self.tokens = _Tokens(blocks, what)
        self.what = what
        self.counted = counted
        self.values = 0

    def document(self):
        kind, value = self.tokens.next()
        result = self._value(kind, value, 1, self.counted, ())
        if self.tokens.next()[0] != END:
            raise self.tokens.fail("data after the document")
        return result

    def unexpected(self, kind: int, expected: str) -> ArchiveError:
        return self.tokens.fail(f"expected {expected}, found {_NAMES.get(kind, 'a value')}")

    def _value(self, kind: int, value, depth: int, spec, path: tuple):
        self.values += 1
        if self.values > MAX_VALUES:
            raise ArchiveError(f"{self.what} holds more than {MAX_VALUES} values")
        if isinstance(spec, int):
            if kind != OPEN_LIST:
                raise ArchiveError(f"{self.what}'s {_path(path)} is not a list")
            return self._tuples(spec, path)
        if kind >= STRING:
            return value
        if depth > MAX_DEPTH and kind in (OPEN_OBJECT, OPEN_LIST):
            raise ArchiveError(f"{self.what} is nested deeper than {MAX_DEPTH} levels")
        if kind == OPEN_OBJECT:
            return self._object(depth, spec, path)
        if kind == OPEN_LIST:
            return self._array(depth, spec, path)
        raise self.unexpected(kind, "a value")

    def _object(self, depth: int, spec, path: tuple) -> dict:
        out: dict = {}
        next_token = self.tokens.next
        kind, key = next_token()
        if kind == CLOSE_OBJECT:
            return out
        while True:
            if kind != STRING:
                raise self.unexpected(kind, "a key")
            if key in out:
                raise ArchiveError(f"{self.what} repeats the key {key!r}")
            kind, _ = next_token()
            if kind != COLON:
                raise self.unexpected(kind, "':'")
            child = spec.get(key) if spec else None
            kind, value = next_token()
            self.values += 1                  # the key
            out[key] = self._value(kind, value, depth + 1, child,
                                   path + (key,) if child is not None else path)
            kind, _ = next_token()
            if kind == CLOSE_OBJECT:
                return out
            if kind != COMMA:
                raise self.unexpected(kind, "',' or '}'")
            kind, key = next_token()

    def _array(self, depth: int, spec, path: tuple) -> list:
        out: list = []
        next_token = self.tokens.next
        child = spec.get("*") if spec else None
        kind, value = next_token()
        if kind == CLOSE_LIST:
            return out
        while True:
            out.append(self._value(kind, value, depth + 1, child,
                                   path + (len(out),) if child is not None else path))
            kind, _ = next_token()
            if kind == CLOSE_LIST:
                return out
            if kind != COMMA:
                raise self.unexpected(kind, "',' or ']'")
            kind, value = next_token()

    def _tuples(self, arity: int, path: tuple) -> int:
        """A list of lists of `arity` non-negative integers, counted, not kept."""
        next_token = self.tokens.next
        count = 0
        kind, _ = next_token()
        if kind == CLOSE_LIST:
            return 0
        while True:
            if kind != OPEN_LIST:
                raise self._not_tuple(path, count, arity)
            for i in range(arity):
                kind, value = next_token()
                if kind != NUMBER or type(value) is not int or not 0 <= value < _MAX_INT:
                    raise self._not_tuple(path, count, arity)
                if next_token()[0] != (COMMA if i < arity - 1 else CLOSE_LIST):
                    raise self._not_tuple(path, count, arity)
            count += 1
            kind, _ = next_token()
            if kind == CLOSE_LIST:
                return count
            if kind != COMMA:
                raise self.unexpected(kind, "',' or ']'")
            count += self.tokens.skip_run(_TUPLE_RUN[arity])
            kind, _ = next_token()

    def _not_tuple(self, path: tuple, index: int, arity: int) -> ArchiveError:
        return ArchiveError(f"{self.what}'s {_path(path)}[{index}] is not a list of {arity} "
                            f"integers in 0..{_MAX_INT - 1}")


def _path(path: tuple) -> str:
    """('files', 0, 'chunks') -> 'files[0].chunks'"""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def parse(data: bytes, what: str):
    """A whole document held in memory (the manifest, the trailer)."""
    return _Parser((data,), what, None).document()


def parse_stream(blocks: Iterable[bytes], what: str, counted: dict | None = None):
    """A document read block by block.  `counted` marks lists of integer
    tuples that are checked and replaced by their length: {"files": {"*":
    {"chunks": 4}}} for the seek index's chunk lists ("*" is any element of
    a list, an int the tuples' length)."""
    return _Parser(blocks, what, counted).document()

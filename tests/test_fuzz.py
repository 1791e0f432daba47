"""Fuzzing (hypothesis): both archive readers on mutated valid archives, the
seek-index reader, and the multi-string parser.

Properties: a reader only ever returns a report or raises ArchiveError
(never another exception, never a hang: each example has a deadline); the
two readers agree, accepting the same archives with the same report and
refusing the same archives in the same words (for a bad chunk, naming the
same member and chunk); parse_multistring only raises ListFormatError and
gives back what build_multistring made.

`make test` runs a short pass (NTDSB_FUZZ_EXAMPLES, default 300 per target);
`make fuzz` a long one, printing the executions of each target.
"""

from __future__ import annotations

import io
import os
import re
import struct
from datetime import timedelta
from pathlib import Path

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import forge
from ntdsbackup.archive import verify
from ntdsbackup.archive.ops import read_documents
from ntdsbackup.errors import ArchiveError, ListFormatError
from ntdsbackup.lists import build_multistring, parse_multistring

EXAMPLES = int(os.environ.get("NTDSB_FUZZ_EXAMPLES", "300"))
FUZZ = settings(max_examples=EXAMPLES, deadline=timedelta(seconds=20), database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
EXECUTIONS: dict[str, int] = {}


def _count(target: str) -> None:
    EXECUTIONS[target] = EXECUTIONS.get(target, 0) + 1


@pytest.fixture(scope="module", autouse=True)
def report_executions():
    yield
    for target, n in sorted(EXECUTIONS.items()):
        print(f"\nfuzz: {target}: {n} executions")


def _archives() -> list[bytes]:
    """Valid archives of several shapes: files with and without padding, an
    empty file, one larger than a chunk, and a log whose name needs a pax path."""
    long_log = forge.Member("logs/" + "x" * 120 + ".log", b"long name" * 100)
    far_log = forge.Member("logs/edb00003.log", b"far" * 1000,
                           source="\\\\DCÜ01\\C$\\" + "Ordner\\" * 150 + "edb00003.log")
    return [
        forge.build(),
        forge.build([forge.database(), forge.Member("logs/edb00001.log", b""), forge.log(2)]),
        forge.build([forge.database(2 * forge.FORGE_CHUNK), long_log, far_log]),
    ]


BASES = _archives()
TMP = Path(os.environ.get("TMPDIR", "/tmp"))


def _frames(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of every frame, where they can still be told apart."""
    out, pos = [], 0
    while pos + 8 <= len(data):
        magic, size = struct.unpack_from("<II", data, pos)
        length = 8 + size
        if magic in (forge.CHUNK_MAGIC, forge.META_MAGIC) and pos + 48 <= len(data):
            length = 48 + struct.unpack_from("<I", data, pos + 16)[0]
        out.append((pos, min(pos + length, len(data))))
        pos += length
    return out


def test_the_archives_fuzzed_are_valid():
    for data in BASES:
        assert _outcome(data, False)[0] == _outcome(data, True)[0] == "accepted"


@st.composite
def mutated(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(1, 3))):
        frames = _frames(bytes(data))
        kind = draw(st.sampled_from(["flip", "truncate", "overwrite", "splice", "insert",
                                     "delete", "swap", "foreign", "reframe", "reframe"]))
        if kind == "flip" or not frames:
            pos = draw(st.integers(0, len(data) - 1))
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del data[draw(st.integers(0, len(data) - 1)):]
        elif kind == "overwrite":
            pos = draw(st.integers(0, len(data) - 1))
            junk = draw(st.binary(min_size=1, max_size=16))
            data[pos:pos + len(junk)] = junk
        elif kind == "reframe":
            data = bytearray(_reframed(draw, bytes(data), frames))
        else:
            a, b = frames[draw(st.integers(0, len(frames) - 1))]
            piece = bytes(data[a:b])
            if kind == "splice":            # a frame from another archive in its place
                other = draw(st.sampled_from(BASES))
                c, d = draw(st.sampled_from(_frames(other)))
                data[a:b] = other[c:d]
            elif kind == "insert":          # a frame of this archive again, anywhere
                at = draw(st.sampled_from([f[0] for f in frames] + [len(data)]))
                data[at:at] = piece
            elif kind == "delete":
                del data[a:b]
            elif kind == "swap":
                c, d = draw(st.sampled_from(frames))
                if d <= a:
                    data[c:b] = piece + data[d:a] + data[c:d]
            else:                           # another tool's skippable frame
                junk = draw(st.binary(max_size=32))
                data[a:a] = struct.pack("<II", 0x184D2A50 + draw(st.integers(0, 14)),
                                        len(junk)) + junk
        if not data:
            break
    return bytes(data)


def _reframed(draw, data: bytes, frames: list[tuple[int, int]]) -> bytes:
    """A frame's decompressed content changed, then framed again with every
    hash right: what a reader sees past the frame checks (tar headers, JSON,
    the structure)."""
    a, b = draw(st.sampled_from(frames))
    magic = struct.unpack_from("<I", data, a)[0]
    if magic not in (forge.CHUNK_MAGIC, forge.META_MAGIC) or b - a <= 48:
        return data
    try:
        raw = bytearray(zstandard.ZstdDecompressor().decompress(data[a + 48:b]))
    except zstandard.ZstdError:
        return data
    how = draw(st.sampled_from(["flip", "overwrite", "insert", "delete", "digits"]))
    pos = draw(st.integers(0, max(len(raw) - 1, 0)))
    if how == "flip" and raw:
        raw[pos] ^= 1 << draw(st.integers(0, 7))
    elif how == "overwrite":
        junk = draw(st.binary(min_size=1, max_size=8))
        raw[pos:pos + len(junk)] = junk
    elif how == "insert":
        raw[pos:pos] = draw(st.sampled_from([b"[", b"{", b'"', b"\\", b",", b"0", b" ",
                                             b"\x00" * 512, b"\xff"]))
    elif how == "delete":
        del raw[pos:pos + draw(st.integers(1, 600))]
    else:                                   # a digit where digits are
        raw[pos:pos + 1] = bytes([draw(st.sampled_from(b"0123456789"))])
    index = struct.unpack_from("<Q", data, a + 24)[0]
    return data[:a] + forge.frame(magic, bytes(raw), index) + data[b:]


_CHUNK_ERROR = re.compile(r"^(first bad chunk|incomplete archive): (\S+) chunk (\d+) "
                          r"\(file offset (\d+)\)")


def _outcome(data: bytes, pure: bool):
    path = TMP / f"ntdsb-fuzz-{os.getpid()}.tar.zst"
    path.write_bytes(data)
    try:
        report = verify(io.BytesIO(data)) if pure else verify(path)
    except ArchiveError as exc:
        return "refused", str(exc)
    finally:
        path.unlink()
    return "accepted", [(f.name, f.size, f.xxh3_128) for f in report.files]


@FUZZ
@given(mutated())
def test_readers_refuse_or_agree_on_mutated_archives(data):
    _count("both readers on mutated archives")
    engine, pure = _outcome(data, False), _outcome(data, True)
    if engine[0] == pure[0] == "refused" and engine[1] != pure[1]:
        # A bad chunk is worded by the engine; the same member and chunk are named.
        where = [_CHUNK_ERROR.match(m) for m in (engine[1], pure[1])]
        assert all(where) and where[0].groups()[1:] == where[1].groups()[1:], (engine, pure)
    else:
        assert engine == pure


@FUZZ
@given(mutated())
def test_seek_index_reader_only_refuses(data):
    _count("read_documents on mutated archives")
    try:
        docs = read_documents(io.BytesIO(data))
    except ArchiveError:
        return
    assert {"manifest", "trailer", "index"} <= set(docs)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12)
_KEYS = ["format", "version", "chunk_size", "files", "server", "compression", "hash",
         "expiry_token", "created_unix"]


@FUZZ
@given(st.sampled_from(["manifest", "trailer", "entry"]), st.sampled_from(_KEYS + [
    "name", "bft", "source", "size", "xxh3_128", "log_generations", "stats"]), _JSON)
def test_readers_agree_on_documents_of_any_shape(where, key, value):
    """A document value of any JSON type in any key, in a frame whose hashes
    are all right: refused (exit 5) or accepted alike by both readers."""
    _count("both readers on documents of any shape")
    members = [forge.database(), forge.log(1)]
    manifest, trailer = forge.manifest_doc(members), forge.trailer_doc(members)
    target = {"manifest": manifest, "trailer": trailer, "entry": trailer["files"][0]}[where]
    target[key] = value
    data = forge.build(members, manifest=manifest, trailer=trailer)
    assert _outcome(data, False) == _outcome(data, True)


# Any UTF-16 code unit, often one of those a parser of UTF-16 lists gets wrong:
# NUL, the BFT codes, a backslash, either half of a surrogate pair, noncharacters.
_UNIT = st.one_of(st.integers(0, 0xFFFF), st.sampled_from(
    [0x0000, 0x0021, 0x0044, 0x005C, 0xD800, 0xDBFF, 0xDC00, 0xDFFF, 0xFFFE, 0xFFFF]))
# Lists shaped like the real thing (a unit, more units, a NUL, per entry; a
# final NUL), any unit anywhere: surrogates, NULs, BFT codes of any value.
_LIST_SHAPED = st.lists(st.tuples(_UNIT, st.lists(st.one_of(_UNIT, st.integers(0x20, 0x7E)),
                                                  max_size=6)), max_size=4).map(
    lambda entries: b"".join(struct.pack(f"<{len(path) + 2}H", bft, *path, 0)
                             for bft, path in entries) + b"\x00\x00")


@FUZZ
@given(st.one_of(st.binary(max_size=64),
                 st.lists(_UNIT, max_size=24).map(lambda u: struct.pack(f"<{len(u)}H", *u)),
                 _LIST_SHAPED))
def test_multistring_parser_only_refuses(data):
    _count("parse_multistring on any bytes")
    try:
        entries = parse_multistring(data)
    except ListFormatError:
        return
    for e in entries:               # a BFT is one UTF-16 code unit, a path is not empty
        assert 0 < e.bft <= 0xFFFF and e.path and "\x00" not in e.path
    if entries:
        assert build_multistring([(e.bft, e.path) for e in entries]) == data
    else:
        assert data in (b"\x00\x00", b"\x00" * 4)


def test_multistring_bft_code_is_one_code_unit():
    """Found by the fuzzer: a surrogate pair where the BFT code goes was read
    as one BFT code of 0x10000."""
    with pytest.raises(ListFormatError, match="one-unit BFT code"):
        parse_multistring(b"\x00\xd8\x00\xdc\x00\x01\x00\x00\x00\x00")


@FUZZ
@given(st.lists(st.tuples(st.integers(1, 0xFFFF).filter(lambda u: not 0xD800 <= u < 0xE000),
                          st.text(st.characters(blacklist_characters="\x00",
                                                blacklist_categories=("Cs",)), min_size=1,
                                  max_size=12)), max_size=6))
def test_multistring_round_trip(entries):
    _count("parse_multistring round trip")
    parsed = parse_multistring(build_multistring(entries))
    assert [(e.bft, e.path) for e in parsed] == entries

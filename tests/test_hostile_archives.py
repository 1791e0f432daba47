"""Hostile archives (docs/FORMAT.md, "Limits"): each is forged here frame by
frame, every hash right, so that the one lie under test is all a reader can
object to.  Both readers (the engine's fast path and the pure-Python one)
refuse each with the same ArchiveError; the CLI exits 5 without a traceback;
memory stays bounded and time linear whatever the input."""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

import forge
from forge import FORGE_CHUNK, META_MAGIC, Member, build, database, log, raw_document
from ntdsbackup import cli
from ntdsbackup.archive import extract, verify
from ntdsbackup.archive.framing import FrameHeader
from ntdsbackup.errors import ArchiveError

MANIFEST = "ntdsbackup/manifest.json"
TRAILER = "ntdsbackup/trailer.json"
PEAK_RSS_LIMIT = 128 << 20


def members() -> list[Member]:
    return [database(), log(1), log(2)]


def manifest_edit(**edits) -> bytes:
    ms = members()
    return build(ms, manifest=forge.manifest_doc(ms, **edits))


def trailer_edit(edit) -> bytes:
    ms = members()
    doc = forge.trailer_doc(ms)
    edit(doc)
    return build(ms, trailer=doc)


def raw_manifest(body: str) -> bytes:
    return build(members(), manifest=raw_document(MANIFEST, body.encode()))


def with_member_header(header: bytes) -> bytes:
    db = database()
    db.header = header
    return build([db, log(1), log(2)])


def bomb(inflate: int) -> bytes:
    """The manifest frame: a real manifest member, then `inflate` zero bytes,
    in a zstd frame that does not record its content size; the frame header
    claims 1 MiB (so that the frame's size is plausible)."""
    ms = members()
    member = forge.document_member(MANIFEST, forge.manifest_doc(ms), 0)
    zframe = forge.unsized_frame(member, inflate)
    return build(ms, manifest_frame=forge.frame(META_MAGIC, member, 0, zframe=zframe,
                                                raw_size=1 << 20))


def chunk_bomb(inflate: int) -> bytes:
    """A log whose only chunk inflates to `inflate` bytes, its content size unrecorded."""
    ms = members()
    data = build(ms)
    pos, _, length = _chunk_frames(data)[1][0]      # the first log's chunk 0
    raw = ms[1].data[:FORGE_CHUNK]
    zframe = forge.unsized_frame(raw, inflate)
    hdr = FrameHeader(forge.CHUNK_MAGIC, len(raw), len(zframe), 0,
                      forge.xxhash.xxh3_128_digest(raw))
    return data[:pos] + hdr.pack() + zframe + data[pos + length:]


def _chunk_frames(data: bytes) -> list[list[tuple[int, int, int]]]:
    """The chunk frames of each member, in order."""
    out: list[list[tuple[int, int, int]]] = []
    for f in forge.frames_of(data):
        if f[1] == forge.CHUNK_MAGIC:
            if forge.parse_header(data[f[0]:f[0] + forge.HEADER_SIZE]).index == 0:
                out.append([])
            out[-1].append(f)
    return out


def pax_member(pax: bytes, *, size: int | None = None, typeflag: bytes = b"x") -> bytes:
    db = database()
    return (forge.pax_block(pax, typeflag, size=size)
            + forge.ustar_block(db.name.encode(), len(db.data)))


def huge_pax() -> bytes:
    """A pax header that claims 1 GiB, the claim's bytes following in frames of
    zero bytes that each inflate to 64 MiB."""
    db = database()
    data = bytearray(build([db, log(1)]))
    frames = forge.frames_of(bytes(data))
    pos, _, length = frames[1]
    header = forge.ustar_block(b"././@PaxHeader", 1 << 30, b"x")
    body = forge.frame(META_MAGIC, header, 1)
    zeros = forge.frame(META_MAGIC, bytes(64 << 20), 2)
    return bytes(data[:pos]) + body + zeros * 16 + bytes(data[pos + length:])


def symlink_header() -> bytes:
    return forge.ustar_block(b"database/ntds.dit", 0, b"2", linkname=b"/etc/passwd")


def foreign_skippable() -> bytes:
    data = build()
    pos = forge.frames_of(data)[1][0]
    return data[:pos] + forge.struct.pack("<II", 0x184D2A50, 4) + b"hiya" + data[pos:]


def data_in_header_frame() -> bytes:
    """The database's header frame also carries its first 512 data bytes, the
    rest in chunk frames: the same tar stream, framed as no writer frames it."""
    db = database()
    data = build([db])
    pos = forge.frames_of(data)[1][0]
    end = sum(_chunk_frames(data)[0][0][::2])
    head = forge.frame(META_MAGIC, db.header + db.data[:512], 1)
    chunk = forge.frame(forge.CHUNK_MAGIC, db.data[512:FORGE_CHUNK], 0)
    return data[:pos] + head + chunk + data[end:]


def big_chunks() -> bytes:
    """Chunk frames larger than the manifest's chunk size."""
    ms = members()
    return build(ms, manifest=forge.manifest_doc(ms, chunk_size=FORGE_CHUNK - 8192))


def misnumbered_chunks() -> bytes:
    data = bytearray(build())
    for pos, magic, _ in forge.frames_of(bytes(data)):
        if magic == forge.CHUNK_MAGIC:
            data[pos + 24] += 5          # the chunk index
    return bytes(data)


def deep_index() -> bytes:
    ms = members()
    good = build(ms)
    index = json.loads(good[forge.frames_of(good)[-1][0] + 8:-12])
    text = json.dumps(index)[:-1] + ', "x": ' + forge.nested_json(50_000) + "}"
    return build(ms, index=text.encode())


# id -> (archive, what the refusal says)
CASES = {
    "bomb": (lambda: bomb(8 << 20), "does not record its content size"),
    "chunk-bomb": (lambda: chunk_bomb(8 << 20), "does not record its content size"),
    "quadratic-pax": (lambda: with_member_header(pax_member(b"1" * 16384)),
                      "malformed pax record"),
    "huge-pax": (huge_pax, "is 1073741824 bytes: over the limit 131072"),
    "global-pax": (lambda: with_member_header(pax_member(b"", typeflag=b"g")),
                   "global pax header"),
    "gnu-longname": (lambda: with_member_header(
        forge.ustar_block(b"././@LongLink", 10, b"L") + b"database/x" + bytes(502)
        + forge.ustar_block(b"database/ntds.dit", 99304)), "GNU long name"),
    "symlink": (lambda: with_member_header(symlink_header()), "is not a regular file"),
    "symlink-in-manifest-frame": (lambda: build(after_manifest=symlink_header()),
                                  "bytes after the manifest member"),
    "trailing-data-in-trailer-frame": (
        lambda: build(trailer=forge.document_member(
            TRAILER, forge.trailer_doc(members()), 0, end_of_archive=True) + bytes(512)),
        "bytes after the end-of-archive blocks"),
    "duplicate": (lambda: build([database(), log(1), log(1)]),
                  "duplicate member 'logs/edb00001.log'"),
    "duplicate-by-case": (
        lambda: build([database(), log(1), Member("logs/EDB00001.log", b"x" * 600)]),
        "duplicate member 'logs/EDB00001.log': the same file as 'logs/edb00001.log'"),
    "too-many-members": (lambda: build([database()] + [Member(f"logs/edb{n:05X}.log", b"")
                                                       for n in range(1, 16385)]),
                         "the archive holds more than 16384 members"),
    "foreign-skippable-frame": (foreign_skippable, "found frame magic 0x184D2A50"),
    "data-in-header-frame": (data_in_header_frame, "member header frame of "
                             "'database/ntds.dit' holds 512 bytes after the header"),
    "chunks-above-chunk-size": (big_chunks, "raw_size 32768 is above the limit 24576"),
    "misnumbered-chunks": (misnumbered_chunks, "chunk_index 5 where 0 was expected"),
    "deep-manifest": (lambda: raw_manifest(
        json.dumps(forge.manifest_doc(members()))[:-1] + ', "x": '
        + forge.nested_json(100_000) + "}"), "nested deeper than 16 levels"),
    "deep-trailer": (lambda: build(members(), trailer=raw_document(
        TRAILER, b'{"files": ' + forge.nested_json(100_000).encode() + b"}",
        end_of_archive=True)), "nested deeper than 16 levels"),
    "deep-index": (deep_index, "nested deeper than 16 levels"),
    "wide-manifest": (lambda: raw_manifest(
        json.dumps(forge.manifest_doc(members()))[:-1] + ', "x": ['
        + ",".join(["{}"] * 1_000_000) + "]}"), "more than 524288 values"),
    "chunk-size-string": (lambda: manifest_edit(chunk_size="big"),
                          "the manifest's chunk_size 'big' is not an integer"),
    "chunk-size-float": (lambda: manifest_edit(chunk_size=32768.0),
                         "the manifest's chunk_size 32768.0 is not an integer"),
    "chunk-size-bool": (lambda: manifest_edit(chunk_size=True),
                        "the manifest's chunk_size True is not an integer"),
    "version-bool": (lambda: manifest_edit(version=True), "version True is not supported"),
    "manifest-files-dict": (lambda: manifest_edit(files={}),
                            "the manifest's files is not a list"),
    "manifest-size-negative": (
        lambda: manifest_edit(files=[dict(database().entry(), size=-1)]),
        r"the manifest's files\[0\].size -1 is not an integer in 0\.\."),
    "manifest-long-string": (lambda: manifest_edit(server="A" * 100_000),
                             r"the manifest's server is 100000 characters long \(limit 256\)"),
    "manifest-huge-string": (lambda: manifest_edit(server="A" * (1 << 20)),
                             "the manifest holds a string longer than 262144 bytes"),
    "manifest-huge-number": (lambda: raw_manifest(
        json.dumps(forge.manifest_doc(members()))[:-1] + ', "x": 1' + "0" * 5000 + "}"),
        "the manifest holds a number longer than 32 characters"),
    "manifest-compression-list": (lambda: manifest_edit(compression=[]),
                                  "the manifest's compression is not an object"),
    "manifest-nan": (lambda: raw_manifest(json.dumps(forge.manifest_doc(members()))[:-1]
                                          + ', "x": NaN}'), "not valid JSON"),
    "manifest-duplicate-key": (lambda: raw_manifest(
        json.dumps(forge.manifest_doc(members()))[:-1] + ', "chunk_size": 65536}'),
        "the manifest repeats the key 'chunk_size'"),
    "trailer-files-strings": (lambda: trailer_edit(lambda t: t.update(files=["x"])),
                              r"the trailer's files\[0\] is not an object"),
    "trailer-size-negative": (lambda: trailer_edit(lambda t: t["files"][0].update(size=-1)),
                              r"the trailer's files\[0\].size -1 is not an integer"),
    "trailer-lists-a-name-twice": (
        lambda: trailer_edit(lambda t: t["files"].append(dict(t["files"][1]))),
        r"the trailer's files\[3\] repeats the name 'logs/edb00001.log'"),
    "trailer-log-generations-string": (
        lambda: trailer_edit(lambda t: t.update(log_generations="x")),
        "the trailer's log_generations is not an object"),
    "trailer-stats-list": (lambda: trailer_edit(lambda t: t.update(stats=[])),
                           "the trailer's stats is not an object"),
    "trailer-hash-number": (lambda: trailer_edit(lambda t: t["files"][0].update(xxh3_128=1)),
                            r"the trailer's files\[0\].xxh3_128 1 is not"),
    "index-files-string": (lambda: build(index=lambda ix: ix.update(files="x")),
                           "the seek index's files is not a list"),
    "index-offset-bool": (lambda: build(index=lambda ix: ix.update(trailer_offset=True)),
                          "the seek index's trailer_offset True is not an integer"),
    "index-chunk-not-a-list": (
        lambda: build(index=lambda ix: ix["files"][0].update(chunks=[[1, 2, 3, 4], 7])),
        r"the seek index's files\[0\].chunks\[1\] is not a list of 4 integers"),
}


def _write(tmp_path: Path, data: bytes, name: str = "hostile.tar.zst") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _refusal(path: Path, pure: bool) -> str:
    with pytest.raises(ArchiveError) as info:
        verify(path, pure=pure)
    return str(info.value)


_BUILT: dict[str, bytes] = {}


@pytest.fixture(params=list(CASES), ids=list(CASES))
def case(request, tmp_path):
    make, match = CASES[request.param]
    if request.param not in _BUILT:
        _BUILT[request.param] = make()
    return _write(tmp_path, _BUILT[request.param]), match


def test_forged_archives_are_valid_as_made(tmp_path):
    """The forgeries' baseline: the untouched forged archive passes both readers."""
    path = _write(tmp_path, build())
    for pure in (False, True):
        assert [f.name for f in verify(path, pure=pure).files] == [
            "database/ntds.dit", "logs/edb00001.log", "logs/edb00002.log"]


def test_both_readers_refuse_with_the_same_words(case):
    path, match = case
    engine, pure = _refusal(path, False), _refusal(path, True)
    assert re.search(match, engine), engine
    # Chunk-level reasons come from the engine in its own words; the member,
    # the chunk and the problem are the same.
    assert engine == pure or ("chunk" in engine and _same_chunk(engine, pure)), (engine, pure)


_WHERE = ("member", "chunk_index", "file_offset", "archive_offset")


def test_both_readers_give_the_same_attributes(case):
    """What the message names is on the exception too, the same from both readers."""
    path, _ = case
    found = []
    for pure in (False, True):
        with pytest.raises(ArchiveError) as info:
            verify(path, pure=pure)
        found.append({k: getattr(info.value, k) for k in _WHERE})
    assert found[0] == found[1]
    err = found[1]
    if err["chunk_index"] is not None:
        assert err["member"] and err["file_offset"] is not None
        assert err["archive_offset"] is not None


def _same_chunk(a: str, b: str) -> bool:
    where = re.compile(r"^(first bad chunk|incomplete archive): (\S+) chunk (\d+) "
                       r"\(file offset (\d+)")
    return bool(where.match(a)) and where.match(a).groups() == where.match(b).groups()


# The lie is in a member's frames only: `ls` of a seekable archive reads the
# documents through the seek index and does not look at members.
DOCUMENTS_INTACT = {"quadratic-pax", "global-pax", "gnu-longname", "symlink",
                    "chunks-above-chunk-size", "misnumbered-chunks"}


def test_the_cli_exits_5_without_a_traceback(request, case, tmp_path, capsys, monkeypatch):
    path, match = case
    monkeypatch.setenv("NTDSB_EMU_ROOT", str(tmp_path / "emu"))
    for argv in (["verify", str(path)], ["verify", "--pure", str(path)],
                 ["extract", str(path), str(tmp_path / "out")]):
        assert cli.main(argv) == cli.EXIT_ARCHIVE, argv
        err = capsys.readouterr().err
        assert err.startswith("ntdsbackup: error: ") and "Traceback" not in err, (argv, err)
        assert not [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    if request.node.callspec.id in DOCUMENTS_INTACT:
        assert cli.main(["ls", str(path)]) == 0
        assert "(from the seek index)" in capsys.readouterr().out
    else:
        assert cli.main(["ls", str(path)]) == cli.EXIT_ARCHIVE
        assert capsys.readouterr().err.startswith("ntdsbackup: error: ")


@pytest.mark.parametrize("pure", [False, True], ids=["engine", "pure"])
def test_duplicate_member_never_replaces_an_existing_file(tmp_path, pure):
    """Refused as the second copy appears, before its data reaches the
    extractor: even with overwrite, the file already in the target folder is
    untouched and no member lands under its final name."""
    path = _write(tmp_path, build([database(), log(1), log(1)]))
    out = tmp_path / "out"
    (out / "logs").mkdir(parents=True)
    (out / "logs" / "edb00001.log").write_bytes(b"keep me")
    with pytest.raises(ArchiveError, match="duplicate member 'logs/edb00001.log'"):
        extract(path, out, pure=pure, overwrite=True)
    assert (out / "logs" / "edb00001.log").read_bytes() == b"keep me"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "logs/edb00001.log"]


def test_duplicates_are_refused_up_front_from_the_seek_index(tmp_path):
    """A seekable archive's documents are read first (ls, restore's plan): a
    trailer listing a name twice is refused before any data is read."""
    from ntdsbackup.archive.ops import read_documents

    path = _write(tmp_path, build([database(), log(1), log(1)]))
    with open(path, "rb") as fh, pytest.raises(ArchiveError, match="repeats the name"):
        read_documents(fh)


# --- Bounds: peak RSS of a fresh process, and time linear in the input --------------


# Runs `ntdsbackup ARGS` and, at exit, writes the process's peak resident set
# (VmHWM, kB) to the file $NTDSB_TEST_PEAK.  Measured inside the process:
# the kernel's ru_maxrss of a child also counts the parent it was forked
# from (a pytest process hundreds of MiB large by the end of a run).
_MEASURED = """
import atexit, os, runpy, sys

def _peak():
    with open("/proc/self/status") as status:
        kb = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    with open(os.environ["NTDSB_TEST_PEAK"], "w") as out:
        out.write(kb)

atexit.register(_peak)
sys.argv[0] = "ntdsbackup"
runpy.run_module("ntdsbackup", run_name="__main__", alter_sys=True)
"""


def _run_measured(argv: list[str], timeout: float = 120) -> tuple[int, str, int]:
    """Exit code, stderr and peak RSS (bytes) of a fresh `ntdsbackup` process.
    Its address space is capped at 2 GiB, so a regression fails the test
    rather than the machine."""
    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    base = Path(os.environ.get("TMPDIR", "/tmp")) / f"ntdsb-rss-{os.getpid()}"
    peak_path, err_path = base.with_suffix(".peak"), base.with_suffix(".err")
    with open(err_path, "w+b") as err:
        proc = subprocess.Popen([sys.executable, "-c", _MEASURED, *argv],
                                env={**os.environ, "NTDSB_TEST_PEAK": str(peak_path)},
                                stdout=subprocess.DEVNULL, stderr=err, preexec_fn=cap)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        err.seek(0)
        text = err.read().decode(errors="replace")
    err_path.unlink()
    peak = int(peak_path.read_text()) * 1024 if peak_path.exists() else -1
    peak_path.unlink(missing_ok=True)
    assert peak >= 0, f"no peak measured (exit {proc.returncode}): {text}"
    return proc.returncode, text, peak


def big_index(entries: int) -> bytes:
    """A valid archive whose seek index lists `entries` chunks for the database
    (the lists are a map for seeking: a full read does not check them)."""
    def grow(ix):
        ix["files"][0]["chunks"] = "CHUNKS"

    ms = members()
    good = build(ms, index=grow)
    payload = good[forge.frames_of(good)[-1][0] + 8:-12]
    chunks = b"[" + b",".join([b"[123456789,98765432,32768,12345]"] * entries) + b"]"
    return build(ms, index=payload.replace(b'"CHUNKS"', chunks))


def zero_chunks(chunk: int) -> bytes:
    """A valid archive whose database is four chunks of `chunk` zero bytes."""
    return build([Member("database/ntds.dit", bytes(4 * chunk), 0x44), log(1)], chunk=chunk)


RSS_CASES = {
    "bomb-1GiB": (lambda: bomb(1 << 30), 5),
    "chunk-bomb-1GiB": (lambda: chunk_bomb(1 << 30), 5),
    "huge-pax": (huge_pax, 5),
    "deep-manifest": (CASES["deep-manifest"][0], 5),
    "wide-manifest": (CASES["wide-manifest"][0], 5),
    "index-of-a-million-chunks": (lambda: big_index(1_000_000), 0),
    "chunks-of-32MiB": (lambda: zero_chunks(32 << 20), 0),
    # Near both caps at once: 8 MiB of JSON, 430000 values.
    "largest-trailer": (lambda: trailer_edit(lambda t: t.update(x=[f"{i:012d}" for i in range(
        430_000)])), 0),
}


@pytest.fixture(scope="module", params=list(RSS_CASES), ids=list(RSS_CASES))
def rss_case(request, tmp_path_factory):
    make, code = RSS_CASES[request.param]
    path = tmp_path_factory.mktemp("rss") / f"{request.param}.tar.zst"
    path.write_bytes(make())
    return path, code


@pytest.mark.parametrize("command", ["verify", "verify --pure", "ls", "extract"])
def test_peak_rss_is_bounded(rss_case, command, tmp_path):
    path, code = rss_case
    argv = command.split() + [str(path)] + ([str(tmp_path / "out")] if command == "extract"
                                            else [])
    got, err, peak = _run_measured(argv)
    assert (got, "Traceback" in err) == (code, False), err
    assert peak < PEAK_RSS_LIMIT, f"peak RSS {peak / 2**20:.0f} MiB"


@pytest.mark.parametrize("command", ["verify --pure", "verify", "extract"])
def test_peak_rss_with_the_largest_chunks(tmp_path, command):
    """Chunks of 64 MiB, the largest a backup may choose: the engine would
    need two at once (double buffering), so the fast path decodes chunks this
    large one at a time; every reader stays below the bound."""
    path = _write(tmp_path, zero_chunks(64 << 20))
    argv = command.split() + [str(path)] + ([str(tmp_path / "out")] if command == "extract"
                                            else [])
    code, err, peak = _run_measured(argv)
    assert (code, peak < PEAK_RSS_LIMIT) == (0, True), (err, peak / 2**20)


def _best_time(path: Path, pure: bool, rounds: int = 5) -> float:
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        try:
            verify(path, pure=pure)
        except ArchiveError:
            pass
        best = min(best, time.perf_counter() - t0)
    return best


# Linear time: the time on an input 4 times larger is less than 8 times the
# time on the smaller one (quadratic: 16 times); the floor keeps inputs that
# are refused at once from failing on noise.
FLOOR = 0.01


# shape -> (archive of size about n, n)
LINEAR = {
    "pax-digits": (lambda n: with_member_header(pax_member(b"1" * n)), 4096),
    "index-chunks": (big_index, 50_000),
    "json-strings": (lambda n: raw_manifest(
        json.dumps(forge.manifest_doc(members()))[:-1] + ', "x": ['
        + ",".join(['"a\\"b"'] * n) + "]}"), 20_000),
    "json-nesting": (lambda n: raw_manifest(
        json.dumps(forge.manifest_doc(members()))[:-1] + ', "x": '
        + forge.nested_json(n) + "}"), 20_000),
}


@pytest.mark.parametrize("pure", [False, True], ids=["engine", "pure"])
@pytest.mark.parametrize("shape", list(LINEAR))
def test_time_is_linear_in_the_input(tmp_path, pure, shape):
    make, n = LINEAR[shape]
    small = _write(tmp_path, make(n), "small.tar.zst")
    large = _write(tmp_path, make(4 * n), "large.tar.zst")
    t_small, t_large = _best_time(small, pure), _best_time(large, pure)
    assert t_large < 8 * max(t_small, FLOOR), (t_small, t_large)

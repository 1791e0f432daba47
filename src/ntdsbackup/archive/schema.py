"""The manifest, the trailer and the seek index, checked against the format
(docs/FORMAT.md) before anything uses them: types, ranges, lengths, unique
names.  Both readers, read_documents (ls, restore) and anything else that
takes a document from an archive go through here, so they accept and refuse
the same documents, in the same words.

Keys the format does not define are accepted and left alone: additions that
old readers may ignore keep the version.  A document is returned as given.
"""

from __future__ import annotations

import re

from ..errors import ArchiveError
from .members import FORMAT_NAME, FORMAT_VERSION, member_name
from .tarheader import MAX_MEMBER_SIZE

CHUNK_MIN = 24 * 1024               # the engine's NTDSB_CHUNK_MIN
CHUNK_MAX = 64 * 1024 * 1024        # the engine's NTDSB_CHUNK_MAX
CHUNK_ALIGN = 8192
MAX_FILES = 16384
MAX_NAME = 300                      # a member name: folder, "/", a file name
MAX_PATH = 32767                    # a UNC path (Windows' longest)
MAX_TEXT = 256                      # server, tool, dates, type names
MAX_TOKEN = 64 * 1024               # the base64 expiry token
MAX_STATS = 64
MAX_OFFSET = 1 << 62
MAX_GENERATION = 0xFFFFFFFF
_HEX128 = re.compile(r"[0-9a-f]{32}")


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class _Checker:
    """Checks of one document, worded "the manifest's files[2].size ..."."""

    def __init__(self, what: str):
        self.what = what

    def fail(self, path: str, problem: str) -> ArchiveError:
        return ArchiveError(f"{self.what}'s {path} {problem}")

    def obj(self, value, path: str) -> dict:
        if not isinstance(value, dict):
            raise self.fail(path, "is not an object")
        return value

    def array(self, value, path: str, limit: int) -> list:
        if not isinstance(value, list):
            raise self.fail(path, "is not a list")
        if len(value) > limit:
            raise self.fail(path, f"has {len(value)} entries (limit {limit})")
        return value

    def integer(self, value, path: str, lo: int, hi: int, note: str = "") -> int:
        if type(value) is not int or not lo <= value <= hi:     # bool is not an integer
            raise self.fail(path, f"{_show(value)} is not an integer in {lo}..{hi}{note}")
        return value

    def number(self, value, path: str) -> None:
        if type(value) not in (int, float) or value < 0:
            raise self.fail(path, f"{_show(value)} is not a non-negative number")

    def text(self, value, path: str, limit: int, *, empty: bool = True) -> str:
        if not isinstance(value, str):
            raise self.fail(path, f"{_show(value)} is not a string")
        if len(value) > limit:
            raise self.fail(path, f"is {len(value)} characters long (limit {limit})")
        if not value and not empty:
            raise self.fail(path, "is empty")
        return value

    def optional(self, doc: dict, key: str, check, *args, **kwargs) -> None:
        if key in doc:
            check(doc[key], key, *args, **kwargs)

    def required(self, doc: dict, key: str):
        if key not in doc:
            raise ArchiveError(f"{self.what} has no {key}")
        return doc[key]


def same_file(name: str) -> str:
    """The file a member name lands on where names ignore case (Windows, and
    most Macs) and a trailing dot (Windows): two names of one key are one
    file to an extractor."""
    return name.lower().rstrip(".")


def _header(doc, what: str) -> _Checker:
    if not isinstance(doc, dict) or doc.get("format") != FORMAT_NAME:
        raise ArchiveError(f"{what} is not an ntdsbackup document")
    version = doc.get("version")
    if type(version) is not int or version != FORMAT_VERSION:
        raise ArchiveError(f"archive format version {_show(version)} is not supported "
                           f"(this reader: {FORMAT_VERSION})")
    return _Checker(what)


def _files(c: _Checker, doc: dict, *, trailer: bool) -> None:
    """The file list of the manifest or the trailer."""
    files = c.array(c.required(doc, "files"), "files", MAX_FILES)
    seen: dict[str, str] = {}
    for i, entry in enumerate(files):
        at = f"files[{i}]"
        c.obj(entry, at)
        name = c.text(c.required(entry, "name"), f"{at}.name", MAX_NAME, empty=False)
        bft = c.integer(c.required(entry, "bft"), f"{at}.bft", 0, 0xFFFF)
        source = c.text(c.required(entry, "source"), f"{at}.source", MAX_PATH, empty=False)
        c.optional(entry, "bft_name", c.text, MAX_TEXT)
        size = c.required(entry, "size")
        if size is not None or trailer:
            c.integer(size, f"{at}.size", 0, MAX_MEMBER_SIZE)
        if trailer:
            digest = c.required(entry, "xxh3_128")
            if not isinstance(digest, str) or not _HEX128.fullmatch(digest):
                raise c.fail(f"{at}.xxh3_128", f"{_show(digest)} is not 32 lowercase hex "
                             "digits")
            for key in ("chunks", "compressed"):
                if key in entry:
                    c.integer(entry[key], f"{at}.{key}", 0, MAX_OFFSET)
        if member_name(bft, source) != name:
            raise c.fail(f"{at}.name", f"{name!r} does not match its source {source!r}")
        key = same_file(name)
        if key in seen:
            raise c.fail(at, f"repeats the name {seen[key]!r}")
        seen[key] = name


def check_manifest(doc) -> dict:
    c = _header(doc, "the manifest")
    c.integer(c.required(doc, "chunk_size"), "chunk_size", CHUNK_MIN, CHUNK_MAX,
          f" (a multiple of {CHUNK_ALIGN})")
    if doc["chunk_size"] % CHUNK_ALIGN:
        raise c.fail("chunk_size", f"{doc['chunk_size']} is not a multiple of {CHUNK_ALIGN}")
    _files(c, doc, trailer=False)
    for key in ("tool", "server", "created", "backup_type", "logs_listed_in"):
        c.optional(doc, key, c.text, MAX_TEXT)
    c.optional(doc, "created_unix", c.integer, 0, MAX_OFFSET)
    c.optional(doc, "expiry_token", c.text, MAX_TOKEN)
    if doc.get("hash", "xxh3-128") != "xxh3-128":
        raise c.fail("hash", f"{_show(doc['hash'])} is not supported (this reader: xxh3-128)")
    if "compression" in doc:
        comp = c.obj(doc["compression"], "compression")
        if comp.get("algorithm", "zstd") != "zstd":
            raise c.fail("compression.algorithm", f"{_show(comp['algorithm'])} is not "
                         "supported (this reader: zstd)")
        if "level" in comp:
            c.integer(comp["level"], "compression.level", -(1 << 17), 22)
        if "frame_per_chunk" in comp and comp["frame_per_chunk"] is not True:
            raise c.fail("compression.frame_per_chunk", "is not true")
    return doc


def check_trailer(doc) -> dict:
    c = _header(doc, "the trailer")
    if doc.get("complete", True) is not True:
        raise ArchiveError("incomplete archive: the trailer does not say it is complete")
    _files(c, doc, trailer=True)
    if "log_generations" in doc:
        gens = c.obj(doc["log_generations"], "log_generations")
        if gens:
            low = c.integer(c.required(gens, "low"), "log_generations.low", 0, MAX_GENERATION)
            c.integer(c.required(gens, "high"), "log_generations.high", low, MAX_GENERATION)
    if "stats" in doc:
        stats = c.obj(doc["stats"], "stats")
        if len(stats) > MAX_STATS:
            raise c.fail("stats", f"has {len(stats)} entries (limit {MAX_STATS})")
        for key, value in stats.items():
            c.text(key, "stats key", MAX_TEXT)
            c.number(value, f"stats.{key}")
    for key in ("tool", "finished"):
        c.optional(doc, key, c.text, MAX_TEXT)
    if "ese" in doc:
        _ese(c, c.obj(doc["ese"], "ese"))
    return doc


MAX_FINDINGS = 20                   # problems, warnings and bad pages the trailer lists
MAX_FINDING = 1024
VERDICTS = ("bootable", "not bootable")


def _ese(c: _Checker, ese: dict) -> None:
    """The backup's ESE verdict (dbcheck.Verdict.record)."""
    if c.required(ese, "verdict") not in VERDICTS:
        raise c.fail("ese.verdict", f"{_show(ese['verdict'])} is not one of {VERDICTS}")
    for key in ("pages", "logs"):
        part = c.obj(c.required(ese, key), f"ese.{key}")
        for name, value in part.items():
            if name not in ("low", "high") or value is not None:
                c.integer(value, f"ese.{key}.{name}", 0, MAX_OFFSET)
    for key in ("problems", "warnings"):
        for i, text in enumerate(c.array(ese.get(key, []), f"ese.{key}", MAX_FINDINGS)):
            c.text(text, f"ese.{key}[{i}]", MAX_FINDING)
    for i, pgno in enumerate(c.array(ese.get("bad_pages", []), "ese.bad_pages", MAX_FINDINGS)):
        c.integer(pgno, f"ese.bad_pages[{i}]", 0, MAX_GENERATION)
    required = ese.get("required")
    if required is not None:
        lo, hi = c.array(required, "ese.required", 2) + [None, None][len(required):]
        c.integer(lo, "ese.required[0]", 0, MAX_GENERATION)
        c.integer(hi, "ese.required[1]", 0, MAX_GENERATION)


# The chunk lists of the seek index grow with the archive: they are read as
# a stream, checked to be lists of four non-negative integers and replaced by
# their length (boundedjson.parse_stream).
INDEX_COUNTED = {"files": {"*": {"chunks": 4}}}


def check_index(doc) -> dict:
    """The seek index as parse_stream(INDEX_COUNTED) gives it: each file's
    "chunks" is the length of its chunk list."""
    c = _Checker("the seek index")
    if not isinstance(doc, dict):
        raise ArchiveError("the seek index is not an object")
    version = doc.get("version")
    if type(version) is not int or version != 1:
        raise ArchiveError(f"the seek index's version {_show(version)} is not supported "
                           "(this reader: 1)")
    c.integer(c.required(doc, "trailer_offset"), "trailer_offset", 0, MAX_OFFSET)
    files = c.array(c.required(doc, "files"), "files", MAX_FILES)
    seen: set[str] = set()
    for i, entry in enumerate(files):
        at = f"files[{i}]"
        c.obj(entry, at)
        name = c.text(c.required(entry, "name"), f"{at}.name", MAX_NAME, empty=False)
        for key in ("header_offset", "data_offset"):
            c.integer(c.required(entry, key), f"{at}.{key}", 0, MAX_OFFSET)
        c.integer(c.required(entry, "chunks"), f"{at}.chunks", 0, MAX_OFFSET)   # a count
        if same_file(name) in seen:
            raise c.fail(at, f"repeats the name {name!r}")
        seen.add(same_file(name))
    return doc

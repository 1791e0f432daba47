"""The archive reader against truncated, corrupted and hostile input: every
case is refused with ArchiveError (never a crash, a hang or a partial file
under a final name)."""

from __future__ import annotations

import io
import random
import struct

import pytest
import zstandard

import forge
from forge import doc, forge_trailer, frames_of, meta_frame
from ntdsbackup.archive import describe, extract, verify
from ntdsbackup.archive.framing import (
    HEADER_SIZE,
    INDEX_MAGIC,
    META_MAGIC,
    pack_index,
)
from ntdsbackup.archive.members import document_member, tar_header
from ntdsbackup.errors import ArchiveError
from ntdsbackup.phases.backup import backup

CHUNK = 64 * 1024


@pytest.fixture
def archive(dc, tmp_path) -> bytes:
    path = tmp_path / "good.tar.zst"
    backup("DC01", path, chunk_size=CHUNK, truncate=False)
    return path.read_bytes()


def test_good_archive_verifies(archive):
    report = verify(io.BytesIO(archive))
    assert report.archive_bytes == len(archive)


@pytest.mark.parametrize("seed", range(6))
def test_truncation_anywhere_is_refused(archive, seed):
    cut = random.Random(seed).randrange(1, len(archive))
    with pytest.raises(ArchiveError):
        verify(io.BytesIO(archive[:cut]))


@pytest.mark.parametrize("which", ["first", "data", "last-meta", "index"])
def test_truncation_at_frame_boundaries(archive, which):
    frames = frames_of(archive)
    pick = {"first": frames[1], "data": frames[len(frames) // 2],
            "last-meta": frames[-2], "index": frames[-1]}[which]
    with pytest.raises(ArchiveError, match="incomplete|no trailer|no seek index"):
        verify(io.BytesIO(archive[:pick[0]]))


@pytest.mark.parametrize("seed", range(12))
def test_flipped_bit_anywhere_is_refused(archive, seed):
    rng = random.Random(seed)
    bad = bytearray(archive)
    pos = rng.randrange(len(bad) - 12)     # the index footer's own checks are separate
    bad[pos] ^= 1 << rng.randrange(8)
    with pytest.raises(ArchiveError):
        verify(io.BytesIO(bytes(bad)))


def test_first_bad_chunk_is_named_with_file_and_offset(archive):
    frames = [f for f in frames_of(archive) if f[1] == 0x184D2A5E]
    off = frames[5][0] + HEADER_SIZE + 20          # inside the sixth chunk's zstd frame
    bad = bytearray(archive)
    bad[off] ^= 0x10
    with pytest.raises(ArchiveError) as info:
        verify(io.BytesIO(bytes(bad)))
    msg = str(info.value)
    assert "database/ntds.dit chunk 5" in msg and f"file offset {5 * CHUNK}" in msg


def test_flipped_bit_in_a_stored_hash_is_refused(archive):
    frames = [f for f in frames_of(archive) if f[1] == 0x184D2A5E]
    bad = bytearray(archive)
    bad[frames[0][0] + 40] ^= 1                    # inside the XXH3-128 field
    with pytest.raises(ArchiveError, match="XXH3-128 mismatch"):
        verify(io.BytesIO(bytes(bad)))


def test_garbage_and_empty_input(tmp_path):
    for data in (b"", b"hello world, not an archive", bytes(4096), b"\x28\xb5\x2f\xfd" * 4):
        with pytest.raises(ArchiveError):
            verify(io.BytesIO(data))


def test_plain_zstd_tar_is_not_ours():
    raw = tar_header("x", 3, 0) + b"abc" + bytes(509) + bytes(1024)
    with pytest.raises(ArchiveError, match="without a frame header"):
        verify(io.BytesIO(zstandard.ZstdCompressor().compress(raw)))


def test_missing_trailer_is_incomplete():
    data = meta_frame(document_member("ntdsbackup/manifest.json",
                                      doc(files=[], chunk_size=CHUNK), 0))
    with pytest.raises(ArchiveError, match="incomplete"):
        verify(io.BytesIO(data))


def test_unknown_version_is_refused():
    data = meta_frame(document_member("ntdsbackup/manifest.json", {"format":
                                      "ntdsbackup-archive", "version": 99}, 0))
    with pytest.raises(ArchiveError, match="version 99"):
        verify(io.BytesIO(data))


def test_hostile_frame_sizes_are_refused_before_allocation():
    hdr = struct.pack("<IIIIIIQ16s", META_MAGIC, 40, 1, 0x7FFFFFFF, 100, 0, 0, bytes(16))
    with pytest.raises(ArchiveError, match="limit"):
        verify(io.BytesIO(hdr + bytes(100)))
    hdr = struct.pack("<IIIIIIQ16s", META_MAGIC, 40, 1, 10, 0x7FFFFFFF, 0, 0, bytes(16))
    with pytest.raises(ArchiveError, match="impossible"):
        verify(io.BytesIO(hdr))
    good = forge.build()
    huge_index = struct.pack("<II", INDEX_MAGIC, 0xFFFFFFF0)
    with pytest.raises(ArchiveError, match="impossible size"):
        verify(io.BytesIO(good[:frames_of(good)[-1][0]] + huge_index))


def test_lying_raw_size_is_refused():
    data = meta_frame(b"x" * 100, lie_size=99)
    with pytest.raises(ArchiveError, match="header says 99"):
        verify(io.BytesIO(data))


def test_path_traversal_member_is_refused(tmp_path):
    evil = tar_header("../../evil.dit", 4, 0, {"SCHILY.xattr.user.ntdsb.bft": "0x44",
                                               "SCHILY.xattr.user.ntdsb.source": "\\\\X\\a"})
    data = forge.build([forge.database(), forge.Member("../../evil.dit", b"evil", header=evil)])
    with pytest.raises(ArchiveError, match="does not match its source"):
        extract(io.BytesIO(data), tmp_path / "out")
    assert not (tmp_path / "evil.dit").exists()
    assert not list((tmp_path / "out").rglob("*"))


def test_symlink_member_is_refused(tmp_path):
    import tarfile

    manifest = document_member("ntdsbackup/manifest.json", doc(files=[], chunk_size=CHUNK), 0)
    info = tarfile.TarInfo("database/ntds.dit")
    info.type = tarfile.SYMTYPE
    info.linkname = "/etc/passwd"
    data = meta_frame(manifest, 0) + meta_frame(info.tobuf(format=tarfile.PAX_FORMAT), 1)
    with pytest.raises(ArchiveError, match="not a regular file"):
        extract(io.BytesIO(data), tmp_path / "out")


def test_data_after_the_index_is_refused(archive):
    with pytest.raises(ArchiveError, match="after the seek index"):
        verify(io.BytesIO(archive + pack_index(b"{}")))


def test_trailer_hash_mismatch_is_refused(archive):
    def wrong_hash(trailer):
        trailer["files"][0]["xxh3_128"] = "0" * 32

    with pytest.raises(ArchiveError, match="whole-file XXH3-128 mismatch"):
        verify(io.BytesIO(forge_trailer(archive, wrong_hash)))


def test_extract_leaves_no_partial_files_on_failure(archive, tmp_path):
    bad = bytearray(archive)
    bad[len(bad) // 2] ^= 0xFF
    with pytest.raises(ArchiveError):
        extract(io.BytesIO(bytes(bad)), tmp_path / "out")
    assert not [p for p in (tmp_path / "out").rglob("*") if p.is_file()]


def _with_index(archive: bytes, edit) -> bytes:
    """The archive with its seek index's JSON rewritten by edit(index)."""
    import json

    at, _, length = frames_of(archive)[-1]
    body = archive[at + 8:at + length]
    index = json.loads(body[:struct.unpack_from("<I", body, len(body) - 12)[0]])
    edit(index)
    return archive[:at] + pack_index(json.dumps(index).encode())


@pytest.mark.parametrize("where", ["missing", "a chunk frame", "past the index", "string"])
def test_seek_index_with_a_bad_trailer_offset(archive, tmp_path, where):
    """A damaged index is an ArchiveError for read_documents (which restore
    plans from), never a KeyError or a tar error; and a full read, by either
    reader, checks the index's trailer offset against the trailer it found."""
    from ntdsbackup.archive.ops import read_documents

    chunk_at = next(off for off, magic, _ in frames_of(archive) if magic == 0x184D2A5E)
    edits = {"missing": lambda ix: ix.pop("trailer_offset"),
             "a chunk frame": lambda ix: ix.update(trailer_offset=chunk_at),
             "past the index": lambda ix: ix.update(trailer_offset=len(archive) * 2),
             "string": lambda ix: ix.update(trailer_offset="12")}
    path = tmp_path / "a.tar.zst"
    path.write_bytes(_with_index(archive, edits[where]))
    with open(path, "rb") as fh, pytest.raises(ArchiveError):
        read_documents(fh)
    for pure in (False, True):
        with pytest.raises(ArchiveError, match="seek index.*trailer"):
            verify(path, pure=pure)
    with pytest.raises(ArchiveError):
        describe(path)


def test_describe_uses_the_seek_index(archive, tmp_path):
    path = tmp_path / "a.tar.zst"
    path.write_bytes(archive)
    info = describe(path)
    assert info["verified"] is False and info["manifest"]["server"] == "DC01"
    assert info["trailer"]["files"][0]["name"] == "database/ntds.dit"
    # A stream has no index access: it is read (and verified) in full.
    class Pipe(io.RawIOBase):
        def __init__(self, data):
            self._b = io.BytesIO(data)

        def readable(self):
            return True

        def readinto(self, b):
            return self._b.readinto(b)

    info = describe(Pipe(archive))
    assert info["verified"] is True and info["trailer"]["files"][0]["name"] == "database/ntds.dit"
    # A damaged index falls back to a full read, which then finds the damage.
    path.write_bytes(archive[:-3] + b"XYZ")
    with pytest.raises(ArchiveError):
        describe(path)


@pytest.mark.parametrize("pure", [False, True], ids=["engine", "pure-python"])
@pytest.mark.parametrize("seed", range(8))
def test_both_readers_refuse_damaged_files(archive, tmp_path, seed, pure):
    """The C fast path (a real file) and the pure-Python reader agree: a flipped
    bit or a cut anywhere is refused."""
    rng = random.Random(1000 + seed)
    bad = bytearray(archive)
    if seed % 2:
        bad = bad[: rng.randrange(1, len(bad))]
    else:
        pos = rng.randrange(len(bad) - 12)
        bad[pos] ^= 1 << rng.randrange(8)
    path = tmp_path / "bad.tar.zst"
    path.write_bytes(bytes(bad))
    with pytest.raises(ArchiveError):
        verify(path, pure=pure)


@pytest.mark.parametrize("pure", [False, True], ids=["engine", "pure-python"])
def test_both_readers_name_the_first_bad_chunk(archive, tmp_path, pure):
    frames = [f for f in frames_of(archive) if f[1] == 0x184D2A5E]
    bad = bytearray(archive)
    bad[frames[7][0] + HEADER_SIZE + 30] ^= 0x08
    path = tmp_path / "bad.tar.zst"
    path.write_bytes(bytes(bad))
    with pytest.raises(ArchiveError) as info:
        verify(path, pure=pure)
    assert info.value.member == "database/ntds.dit" and info.value.chunk_index == 7
    assert info.value.file_offset == 7 * CHUNK
    assert info.value.archive_offset == frames[7][0]        # the chunk's frame header
    assert str(info.value).startswith("first bad chunk: database/ntds.dit chunk 7 ")


@pytest.mark.parametrize("pure", [False, True], ids=["engine", "pure-python"])
def test_both_readers_give_the_archive_offset_of_a_cut(archive, tmp_path, pure):
    frames = frames_of(archive)
    meta = [f for f in frames if f[1] == 0x184D2A5D]
    cut = meta[-1][0] + 20                 # inside the trailer's frame header
    path = tmp_path / "cut.tar.zst"
    path.write_bytes(archive[:cut])
    with pytest.raises(ArchiveError) as info:
        verify(path, pure=pure)
    assert info.value.archive_offset == cut and info.value.member is None
    assert f"offset {cut}" in str(info.value)

"""The emulated DC's NTDS files: creation, activity and the consistency check,
verified with the independent checker (esecheck) and with dissect.esedb."""

from __future__ import annotations

import gzip
import os
import re
import shutil
import struct
from pathlib import Path

import pytest

import esecheck as E

pytest.importorskip("ntdsbackup._ntdsbcli", reason="extension not built")

from ntdsbackup import ese  # noqa: E402
from ntdsbackup.emulator import data as dcdata  # noqa: E402

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "ese-samples"
LOG_SIZE = 128 << 10  # 32 segments: small logs keep the tests fast
MIB = 1 << 20


@pytest.fixture(scope="module", params=[8192, 32768], ids=["8K", "32K"])
def dc(request, tmp_path_factory):
    """A fresh 8 MiB DC (read-only for the tests that use it)."""
    d = tmp_path_factory.mktemp(f"dc{request.param}") / "NTDS"
    dcdata.create_ntds(d, 8 * MIB, page_size=request.param, seed=11, log_size=LOG_SIZE, log_count=4)
    return d


def fresh_copy(dc: Path, tmp_path: Path) -> Path:
    out = tmp_path / "NTDS"
    shutil.copytree(dc, out)
    return out


def u32(b, off):
    return struct.unpack_from("<I", b, off)[0]


def independent_check(ntds: Path) -> dict:
    """Everything the reference says about the files, with esecheck only."""
    dit = (ntds / "ntds.dit").read_bytes()
    cb = u32(dit, 236)
    hdr = dit[:cb]
    assert u32(hdr, 4) == 0x89ABCDEF
    assert E.header_checksum(hdr) == u32(hdr, 0)
    assert dit[:cb] == dit[cb : 2 * cb]
    assert u32(hdr, 8) == 0x620 and u32(hdr, 12) == 0 and u32(hdr, 667) == 1
    counts = E.verify_file_pages(dit, cb)
    sign_log = hdr[108:136]
    gmin, gmax = struct.unpack_from("<ii", hdr, 296)

    logs = {}
    for name in os.listdir(ntds):
        m = re.fullmatch(r"edb([0-9A-F]{5})\.log", name)
        if m or name == "edb.log":
            data = (ntds / name).read_bytes()
            h = data[:4096]
            assert E.header_checksum(h) == u32(h, 0), name
            assert u32(h, 667) == 3, name
            assert h[44:72] == sign_log, name
            gen = struct.unpack_from("<i", h, 4)[0]
            if m:
                assert gen == int(m.group(1), 16)
            cb_sec, csec_h, csec_f = struct.unpack_from("<HHH", h, 8)
            assert (cb_sec, csec_h) == (4096, 1) and len(data) == csec_f * cb_sec
            assert struct.unpack_from("<III", h, 32)[:2] == (8, 4000)
            ok, zero, bad = E.verify_log_segments(data, cb_sec, csec_h)
            assert bad == 0, name
            logs[gen] = (h, name, ok, zero)
    gens = sorted(logs)
    assert gens == list(range(gens[0], gens[-1] + 1))
    assert logs[gens[-1]][1] == "edb.log"
    for a, b in zip(gens, gens[1:]):
        assert logs[b][0][24:32] == logs[a][0][16:24]  # tmPrevGen == previous tmCreate
    if gmin > 0:  # a clean database (samples) requires no logs
        assert all(g in logs for g in range(gmin, gmax + 1))

    chk = (ntds / "edb.chk").read_bytes()
    assert len(chk) == 8192 and chk[:4096] == chk[4096:]
    assert E.header_checksum(chk[:4096]) == u32(chk, 0)
    assert u32(chk, 667) == 4 and chk[20:48] == sign_log
    ckpt_gen = struct.unpack_from("<i", chk, 16)[0]
    return {
        "cb": cb,
        "counts": counts,
        "gens": gens,
        "ckpt": ckpt_gen,
        "gmin": gmin,
        "gmax": gmax,
        "logs": logs,
    }


# ------------------------------------------------------------ creation


def test_fresh_dc_is_valid(dc):
    info = independent_check(dc)
    hdr = (dc / "ntds.dit").read_bytes()[: info["cb"]]
    assert struct.unpack_from("<4I", hdr, 216) == (10, 0, 17763, 0)  # Server 2019
    assert u32(hdr, 52) == 2  # dirty, like a live DIT
    npages = 8 * MIB // info["cb"] - 2
    assert sum(info["counts"].values()) == npages
    assert info["counts"][E.PAGE_OK] == npages - npages // 64
    assert info["counts"].get(E.PAGE_UNINIT, 0) == npages // 64
    assert info["gens"] == [1, 2, 3, 4, 5]
    assert info["ckpt"] == info["gmin"] == 3 and info["gmax"] == 5
    # closed logs are full, edb.log partly written
    assert all(info["logs"][g][3] == 0 for g in range(1, 5))
    assert info["logs"][5][3] > 0


def test_fresh_dc_consistency_report(dc):
    rep = dcdata.check_consistency(dc)
    assert rep.ok, rep.problems
    assert not rep.warnings
    assert rep.pages_bad == 0 and rep.pages_ok > 0 and rep.pages_uninit > 0
    assert rep.logs_checked == 5 and rep.log_generations == [1, 2, 3, 4, 5]
    assert rep.segments_bad == 0 and rep.required == (3, 5) and rep.checkpoint_gen == 3
    assert "0 bad" in rep.summary_text()
    assert rep.summary()["pages_total"] == 8 * MIB // rep.page_size - 2


def test_page_layout(dc):
    """Header fields of generated pages agree with their records and tags."""
    dit = (dc / "ntds.dit").read_bytes()
    cb = u32(dit, 236)
    hdr = 40 if cb <= 8192 else 80
    for pgno in (1, 2, 100, 200):
        page = dit[(pgno + 1) * cb : (pgno + 2) * cb]
        cb_free, _, ib_mic, itag = struct.unpack_from("<HHHH", page, 28)
        flags = u32(page, 36)
        assert flags & 0x2000 and flags & 0x2
        assert cb_free == cb - hdr - ib_mic - 4 * itag
        assert cb_free > 0
        if cb > 8192:
            assert u32(page, 64) == pgno
        end = 0
        for t in range(1, itag):
            size, ib = struct.unpack_from("<HH", page, cb - 4 * (t + 1))
            assert ib == end  # records are contiguous from the top
            end += size
        assert end == ib_mic
        assert not any(page[hdr + ib_mic : cb - 4 * itag])  # free space is zero
        assert struct.unpack_from("<Q", page, 8)[0] <= struct.unpack_from("<Q", dit, 16)[0]


def test_content_looks_like_a_directory(dc):
    dit = (dc / "ntds.dit").read_bytes()
    assert ",DC=corp,DC=example,DC=com".encode("utf-16-le") in dit
    assert b"\x01\x05\x00\x00\x00\x00\x00\x05\x15\x00\x00\x00" in dit  # S-1-5-21 SIDs
    assert "@corp.example.com".encode("utf-16-le") in dit


def test_compression_ratio(dc):
    zstd = pytest.importorskip("zstandard", reason="ratio needs the zstandard package")
    dit = (dc / "ntds.dit").read_bytes()
    ratio = len(dit) / len(zstd.ZstdCompressor(level=1).compress(dit))
    assert 3.0 <= ratio <= 5.0, ratio


def test_deterministic_and_distinct(dc, tmp_path):
    cb = u32((dc / "ntds.dit").read_bytes(), 236)
    again = tmp_path / "again"
    dcdata.create_ntds(again, 8 * MIB, page_size=cb, seed=11, log_size=LOG_SIZE, log_count=4)
    for name in sorted(os.listdir(dc)):
        assert (dc / name).read_bytes() == (again / name).read_bytes(), name
    dit = (dc / "ntds.dit").read_bytes()
    pages = [dit[i * cb : (i + 1) * cb] for i in range(2, len(dit) // cb)]
    used = [p for p in pages if any(p)]
    assert len(set(used)) == len(used)
    other = tmp_path / "other"
    dcdata.create_ntds(other, 8 * MIB, page_size=cb, seed=12, log_size=LOG_SIZE, log_count=4)
    assert (other / "ntds.dit").read_bytes()[2 * cb : 3 * cb] != dit[2 * cb : 3 * cb]


# ------------------------------------------------------------ activity


def test_activity(dc, tmp_path):
    ntds = fresh_copy(dc, tmp_path)
    before = (ntds / "ntds.dit").read_bytes()
    cb = u32(before, 236)
    npages = len(before) // cb - 2
    res = dcdata.activity(ntds, 0.1, seed=5, new_generations=3)
    assert res["pages_rewritten"] == round(0.1 * npages)
    after = (ntds / "ntds.dit").read_bytes()
    changed = sum(
        before[i * cb : (i + 1) * cb] != after[i * cb : (i + 1) * cb] for i in range(2, npages + 2)
    )
    assert changed == res["pages_rewritten"]
    info = independent_check(ntds)
    assert info["counts"].get(E.PAGE_BAD_CHECKSUM, 0) == 0
    assert info["gens"] == list(range(1, 9))
    assert info["gmax"] == 8 and info["ckpt"] == 6
    assert struct.unpack_from("<Q", after, 16)[0] > struct.unpack_from("<Q", before, 16)[0]
    rep = dcdata.check_consistency(ntds)
    assert rep.ok, rep.problems
    # and again, with the default number of generations
    res2 = dcdata.activity(ntds, 0.5, seed=6)
    assert res2["current_generation"] > 8
    assert dcdata.check_consistency(ntds).ok


def test_activity_after_logs_truncated(dc, tmp_path):
    """Like after a backup truncated the logs below the checkpoint."""
    ntds = fresh_copy(dc, tmp_path)
    for g in (1, 2):
        (ntds / dcdata.log_name(g)).unlink()
    assert dcdata.check_consistency(ntds).ok
    dcdata.activity(ntds, 0.02, seed=1)
    assert dcdata.check_consistency(ntds).ok


# ------------------------------------------------------------ damage


def problems_after(dc, tmp_path, damage) -> list[str]:
    ntds = fresh_copy(dc, tmp_path)
    damage(ntds)
    rep = dcdata.check_consistency(ntds)
    assert not rep.ok
    return rep.problems


def flip(path: Path, offset: int, mask: int = 1) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([b ^ mask]))


def test_damage_one_flipped_bit_is_corrected(dc, tmp_path):
    # ESE's ECC corrects a single flipped bit when it reads the page: the DC
    # boots, and the check names the page and the bit.
    ntds = fresh_copy(dc, tmp_path)
    cb = u32((ntds / "ntds.dit").read_bytes()[:4096], 236)
    flip(ntds / "ntds.dit", (7 + 1) * cb + 1000, 0x10)
    rep = dcdata.check_consistency(ntds)
    assert rep.ok, rep.problems
    assert rep.pages_correctable == 1 and rep.pages_bad == 0
    assert any("ntds.dit: page 7: a single flipped bit (bit 8004)" in w
               for w in rep.warnings), rep.warnings


def test_damage_two_flipped_bits(dc, tmp_path):
    def damage(ntds):
        cb = u32((ntds / "ntds.dit").read_bytes()[:4096], 236)
        flip(ntds / "ntds.dit", (7 + 1) * cb + 1000, 0x11)

    probs = problems_after(dc, tmp_path, damage)
    assert any("ntds.dit: page 7: bad checksum" in p for p in probs), probs


def test_damage_header_both_copies(dc, tmp_path):
    def damage(ntds):
        cb = u32((ntds / "ntds.dit").read_bytes()[:4096], 236)
        flip(ntds / "ntds.dit", 300)
        flip(ntds / "ntds.dit", cb + 300)

    probs = problems_after(dc, tmp_path, damage)
    assert any("ntds.dit" in p and "header" in p for p in probs), probs


def test_damage_primary_header_only_is_a_warning(dc, tmp_path):
    ntds = fresh_copy(dc, tmp_path)
    flip(ntds / "ntds.dit", 300)
    rep = dcdata.check_consistency(ntds)
    assert rep.ok and rep.header_used == "shadow"
    assert any("primary header bad" in w for w in rep.warnings)


def test_damage_broken_log_chain(dc, tmp_path):
    def damage(ntds):
        path = ntds / "edb00003.log"
        data = bytearray(path.read_bytes())
        data[24] ^= 1  # tmPrevGen seconds
        struct.pack_into("<I", data, 0, E.header_checksum(bytes(data[:4096])))
        path.write_bytes(data)

    probs = problems_after(dc, tmp_path, damage)
    assert any("edb00003.log" in p and "tmPrevGen" in p for p in probs), probs


def test_damage_wrong_signlog(dc, tmp_path):
    def damage(ntds):
        path = ntds / "edb00004.log"
        data = bytearray(path.read_bytes())
        data[44] ^= 0xFF  # signLog.random
        struct.pack_into("<I", data, 0, E.header_checksum(bytes(data[:4096])))
        path.write_bytes(data)

    probs = problems_after(dc, tmp_path, damage)
    assert any("edb00004.log" in p and "signLog" in p for p in probs), probs


def test_damage_missing_generation(dc, tmp_path):
    probs = problems_after(dc, tmp_path, lambda ntds: (ntds / "edb00004.log").unlink())
    assert any("4" in p and "missing" in p for p in probs), probs


def test_damage_missing_required_from_restore(dc, tmp_path):
    ntds = fresh_copy(dc, tmp_path)
    (ntds / "edb00001.log").unlink()
    assert dcdata.check_consistency(ntds).ok  # the DB itself needs 3..5 only
    rep = dcdata.check_consistency(ntds, gen_low=1, gen_high=5)
    assert not rep.ok and any("restore" in p and "1" in p for p in rep.problems)


def test_damage_log_header_checksum_and_segment(dc, tmp_path):
    def damage(ntds):
        flip(ntds / "edb00002.log", 100)
        flip(ntds / "edb00003.log", 4096 * 5 + 700)

    probs = problems_after(dc, tmp_path, damage)
    assert any("edb00002.log" in p and "checksum" in p for p in probs), probs
    assert any("edb00003.log" in p and "segment 5" in p for p in probs), probs


def test_damage_bad_checkpoint(dc, tmp_path):
    def damage(ntds):
        flip(ntds / "edb.chk", 30)
        flip(ntds / "edb.chk", 4096 + 30)

    probs = problems_after(dc, tmp_path, damage)
    assert any("edb.chk" in p for p in probs), probs


def test_damage_checkpoint_signlog(dc, tmp_path):
    def damage(ntds):
        data = bytearray((ntds / "edb.chk").read_bytes())
        for base in (0, 4096):
            data[base + 20] ^= 0xFF
            struct.pack_into("<I", data, base, E.header_checksum(bytes(data[base : base + 4096])))
        (ntds / "edb.chk").write_bytes(data)

    probs = problems_after(dc, tmp_path, damage)
    assert any("edb.chk" in p and "signLog" in p for p in probs), probs


def test_streamed_trailer_page_is_accepted(dc, tmp_path):
    """A streamed backup ends with a trailer page checksummed like a header (7)."""
    ntds = fresh_copy(dc, tmp_path)
    dit = ntds / "ntds.dit"
    hdr = ese.parse_db_header(dit.read_bytes()[:32768])
    cb = hdr.page_size
    trailer = bytearray(cb)
    trailer[40:64] = ese.BkInfo(ese.LgPos(3, 1, 0), hdr.sign_db.created, 3, 6).pack()
    trailer[64:92] = hdr.sign_db.pack()
    trailer[92:120] = hdr.sign_log.pack()
    struct.pack_into("<iii", trailer, 120, 3, 5, 5)
    struct.pack_into("<I", trailer, 0, E.header_checksum(bytes(trailer)))
    with open(dit, "ab") as f:
        f.write(trailer)
    rep = dcdata.check_consistency(ntds)
    assert rep.ok and rep.trailer, rep.problems


# ------------------------------------------------------------ create_from_file


def test_create_from_sample(tmp_path):
    src = SAMPLES / "basic.edb.gz"
    if not src.exists():
        pytest.skip("sample basic.edb.gz not available")
    dit = tmp_path / "basic.edb"
    with gzip.open(src) as f:
        dit.write_bytes(f.read())
    ntds = tmp_path / "NTDS"
    desc = dcdata.create_from_file(ntds, dit, log_size=LOG_SIZE, log_count=2)
    assert (ntds / "ntds.dit").read_bytes() == dit.read_bytes()
    assert desc["page_size"] == 4096 and desc["dbstate_name"] == "clean"
    rep = dcdata.check_consistency(ntds)
    assert rep.ok, rep.problems
    assert rep.pages_ok == 23 and rep.pages_uninit == 231
    info = independent_check(ntds)
    assert info["gens"][-1] == desc["log_current"]


def test_create_from_file_rejects_garbage(tmp_path):
    bad = tmp_path / "x.dit"
    bad.write_bytes(os.urandom(3 * 8192))
    with pytest.raises(ese.EseFormatError):
        dcdata.create_from_file(tmp_path / "NTDS", bad)


# ------------------------------------------------------------ headers round trip


def test_header_builders_round_trip():
    t = ese.LogTime.from_datetime(__import__("datetime").datetime(2025, 12, 31, 23, 59, 58, 987000))
    assert ese.LogTime.unpack(t.pack()) == t and t.month == 12
    h = ese.DbHeader(
        page_size=32768,
        dbtime_dirtied=99,
        gen_min_required=4,
        gen_max_required=9,
        sign_log=ese.Signature(0x1234, t),
        sign_db=ese.Signature(0x99, t),
    )
    page = ese.build_db_header(h)
    assert len(page) == 32768 and not any(page[748:])
    assert ese.check_db_header(page) == []
    back = ese.parse_db_header(page)
    assert (back.gen_min_required, back.gen_max_required, back.sign_log) == (4, 9, h.sign_log)
    assert ese.header_checksum_py(page) == E.header_checksum(page) == u32(page, 0)
    lh = ese.LogHeader(generation=7, sign_log=h.sign_log, tm_create=t, csec_lgfile=32)
    raw = ese.build_log_header(lh)
    assert ese.check_log_header(raw) == [] and ese.parse_log_header(raw).generation == 7
    cp = ese.build_checkpoint(ese.Checkpoint(ese.LgPos(5, 1, 0), h.sign_log))
    got, probs, warns = ese.read_checkpoint(cp)
    assert got.lgpos_checkpoint.generation == 5 and not probs and not warns


# ------------------------------------------------------------ dissect.esedb cross-check


def test_dissect_reads_generated_header(dc):
    pytest.importorskip("dissect.esedb", reason="cross-check needs dissect.esedb (PyPI)")
    from dissect.esedb.c_esedb import c_esedb
    from dissect.esedb.page import Page

    with open(dc / "ntds.dit", "rb") as f:
        h = c_esedb.DBFILEHDR(f)
        assert h.ulMagic == 0x89ABCDEF and h.ulVersion == 0x620
        assert h.ulDaeUpdateMajor == 0x14 and h.dbstate == 2
        cb = h.cbPageSize
        assert cb in (8192, 32768)
        assert (h.lGenMinRequired, h.lGenMaxRequired) == (3, 5)
        mine = ese.parse_db_header((dc / "ntds.dit").read_bytes()[:cb])
        assert h.signLog.ulRandom == mine.sign_log.random
        assert h.signDb.ulRandom == mine.sign_db.random
        assert h.signLog.logtimeCreate.bMonth == mine.sign_log.created.month

        # Its page parser (without the catalog, which generated DBs lack)
        # reads our page headers, tags and leaf keys.
        class _Db:
            has_small_pages = cb <= 8192
            page_size = cb

        data = (dc / "ntds.dit").read_bytes()
        for pgno in (1, 3, 200):
            page = Page(_Db(), pgno, data[(pgno + 1) * cb : (pgno + 2) * cb])
            assert page.is_leaf and page.node_count > 0
            hdr = struct.unpack_from("<HHHH", data, (pgno + 1) * cb + 28)
            assert page.tag_count == hdr[3]
            for node in page.nodes():
                assert bytes(node.key)[:1] == b"\x7f"

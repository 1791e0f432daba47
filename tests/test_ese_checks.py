"""ESE checks end to end: every database page and log segment checked while
backing up, `verify --deep` giving the DC's verdict on an archive with no DC,
and the restore refusing a set the DC could not boot from.

Damage is made at random (seeded) positions of real sample databases and of
emulated DCs; each kind must be reported precisely (the page, the reason,
the bit or the other page number), identically by every reader, thread count
and chunk size, with the documented exit code."""

from __future__ import annotations

import gzip
import json
import os
import random
import struct

import pytest

import esecheck as E
from conftest import ese_sample
from dctools import cli, enable_trace, snapshot, trace_calls
from ntdsbackup import errors
from ntdsbackup.archive import schema, verify
from ntdsbackup.dbcheck import pages as P
from ntdsbackup.dbcheck.folder import check_folder
from ntdsbackup.emulator import data as dcdata
from ntdsbackup.phases.backup import backup
from ntdsbackup.phases.restore import restore

CHUNK = 64 * 1024
SAMPLES = [("basic.edb.gz", 4096, 23, 231), ("large.edb.gz", 32768, 381, 385)]


def u32(b, off: int) -> int:
    return struct.unpack_from("<I", b, off)[0]


def flip(path, offset: int, mask: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([b ^ mask]))


def unpacked(name: str, tmp_path):
    path = tmp_path / name.removesuffix(".gz")
    with gzip.open(ese_sample(name)) as src:
        path.write_bytes(src.read())
    return path


def used_pages(data: bytes, cb: int) -> list[int]:
    """pgnos of the initialised (not all-zero) pages, new checksum format."""
    return [pg for pg in range(1, len(data) // cb - 1)
            if any(data[(pg + 1) * cb:(pg + 2) * cb]) and u32(data, (pg + 1) * cb + 36) & 0x2000]


# ------------------------------------------------------------ the checker on real databases


@pytest.mark.parametrize("name,cb,n_ok,n_zero", SAMPLES)
def test_sample_databases_check_clean(tmp_path, name, cb, n_ok, n_zero):
    r = P.check_file(unpacked(name, tmp_path), P.KIND_DATABASE)
    assert (r.geometry, r.unit_size, r.first_unit) == (True, cb, 2)
    assert (r.ok, r.ok_old, r.uninit, r.bad, r.listed) == (n_ok, 0, n_zero, 0, [])
    assert r.trailer is None and r.tail_bytes == 0


def damage_kinds(data: bytes, cb: int, rng: random.Random):
    """(label, change(bytearray), expected BadUnit) at random positions."""
    pages = used_pages(data, cb)
    a, b = rng.sample(pages, 2)
    bit = rng.randrange(64, cb * 8)          # past the stored checksum, inside the page
    bs = cb if cb <= 8192 else 8192 if cb > 16384 else 4096
    if bit // 8 % bs < 8 or 40 <= bit // 8 < 64 and cb > 8192:
        bit += 64 * 8                         # not a stored block checksum either

    def data_bit(buf):
        buf[(a + 1) * cb + bit // 8] ^= 1 << (bit % 8)

    def flag_bit(buf):
        buf[(a + 1) * cb + 37] ^= 0x20

    def stale(buf):                            # page b's bytes written at page a
        buf[(a + 1) * cb:(a + 2) * cb] = data[(b + 1) * cb:(b + 2) * cb]

    def two_bits(buf):
        buf[(a + 1) * cb + 200] ^= 0x11

    stale_reason = P.MISPLACED
    return [("data bit", data_bit, P.BadUnit(a, P.CORRECTABLE, bit)),
            ("flag bit", flag_bit, P.BadUnit(a, P.FLAG_FLIPPED, 0)),
            ("stale page", stale, P.BadUnit(a, stale_reason, b)),
            ("two bits", two_bits, P.BadUnit(a, P.BAD_CHECKSUM, 0))]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("name,cb,n_ok,n_zero", SAMPLES)
def test_damage_at_random_positions_is_named_precisely(tmp_path, name, cb, n_ok, n_zero, seed):
    path = unpacked(name, tmp_path)
    clean = path.read_bytes()
    for label, change, expected in damage_kinds(clean, cb, random.Random(seed)):
        buf = bytearray(clean)
        change(buf)
        path.write_bytes(buf)
        r = P.check_file(path, P.KIND_DATABASE)
        got = r.listed[0] if r.listed else None
        if expected.reason == P.MISPLACED and cb > 8192 and got is not None \
                and got.reason == P.BAD_PGNO:
            expected = P.BadUnit(expected.number, P.BAD_PGNO, expected.detail)
        if expected.reason in (P.FLAG_FLIPPED, P.BAD_CHECKSUM):
            got = got and P.BadUnit(got.number, got.reason, 0)
        assert (r.bad, len(r.listed), got) == (1, 1, expected), label
        assert r.correctable == (expected.reason == P.CORRECTABLE), label
        assert r.ok == n_ok - 1 and r.uninit == n_zero, label
        # the independent checker agrees that exactly that page is bad
        assert E.verify_file_pages(bytes(buf), cb).get(E.PAGE_BAD_CHECKSUM, 0) + \
            E.verify_file_pages(bytes(buf), cb).get(E.PAGE_BAD_PGNO, 0) == 1, label


def test_every_single_bit_of_a_page_is_correctable_at_its_offset(tmp_path):
    """Each bit of one 8 KiB page, flipped alone, is named with its offset
    (bytes 0..7 hold the checksum itself)."""
    from ntdsbackup import _ntdsbcli as C

    cb = 8192
    page = bytearray(cb)
    C.ese_generate_pages(page, cb, 1, 11, 0x1000)
    for bit in range(64, cb * 8, 7):
        bad = bytearray(page)
        bad[bit // 8] ^= 1 << (bit % 8)
        checker = C.PageChecker(P.KIND_DATABASE, 3 * cb)
        checker.feed(header_pages(cb) + bytes(bad), 0)
        checker.finish()
        r = P.result_of(checker)
        assert (r.bad, r.correctable, r.listed) == (1, 1, [P.BadUnit(1, P.CORRECTABLE, bit)]), bit


def header_pages(cb: int) -> bytes:
    """A valid database header and its shadow, of page size cb."""
    from ntdsbackup import ese

    h = ese.DbHeader(page_size=cb)
    page = ese.build_db_header(h)
    return page + page


# ------------------------------------------------------------ backup, verify --deep, restore


@pytest.fixture
def sample_dc(make_dc, tmp_path):
    """A DC built around the 32 KiB-page sample database."""
    return make_dc("DC01", from_file=unpacked("large.edb.gz", tmp_path))


def test_backup_of_a_real_database_is_bootable_by_every_reader(sample_dc, tmp_path):
    archive = tmp_path / "a.tar.zst"
    summary = backup("DC01", archive, chunk_size=40960)   # pages straddle the chunks
    ese = summary.ese
    assert ese["verdict"] == "bootable" and ese["page_size"] == 32768
    assert ese["pages"] == {"ok": 381, "old_format": 0, "empty": 385, "bad": 0,
                            "correctable": 0}
    records = {(threads, pure): verify(archive, deep=True, threads=threads, pure=pure)
               .ese.record() for threads in (1, 2) for pure in (False, True)}
    assert all(r == ese for r in records.values()), records


def damage_dc(dc, rng: random.Random) -> list[P.BadUnit]:
    """Two uncorrectable pages and one single-bit error at random, in the DC's
    own database (8 KiB pages)."""
    dit = dc.ntds_dir / "ntds.dit"
    data = dit.read_bytes()
    a, b, c = sorted(rng.sample(used_pages(data, 8192), 3))
    bit = rng.randrange(64, 8192 * 8)
    flip(dit, (a + 1) * 8192 + 37, 0x20)
    flip(dit, (b + 1) * 8192 + 900, 0x81)
    flip(dit, (c + 1) * 8192 + bit // 8, 1 << (bit % 8))
    return [P.BadUnit(a, P.FLAG_FLIPPED, 0), P.BadUnit(b, P.BAD_CHECKSUM, 0),
            P.BadUnit(c, P.CORRECTABLE, bit)]


def test_a_backup_of_bad_pages_fails_and_writes_nothing(make_dc, tmp_path):
    dc = make_dc("DC01", size=6 << 20)
    damage_dc(dc, random.Random(7))
    enable_trace(dc)
    gens_before = sorted(dcdata._log_files(dc.ntds_dir))
    out = tmp_path / "out"
    out.mkdir()
    archive = out / "a.tar.zst"
    r = cli("backup", "--server", "DC01", "-o", archive, "--chunk-size", "64K")
    assert r.returncode == 8, r.stderr
    err = r.stderr.decode()
    assert "a DC could not boot from this backup; no archive was written" in err
    assert "flag bit (0x2000) is flipped" in err and "bad checksum" in err
    assert os.listdir(out) == []                          # not even a temporary file
    assert set(gens_before) <= set(dcdata._log_files(dc.ntds_dir))   # none truncated
    calls = trace_calls(dc)
    assert calls.count("DsBackupEnd") == calls.count("DsBackupPrepareW") == 1
    assert "DsBackupTruncateLogs" not in calls


@pytest.mark.parametrize("seed", [3, 4])
def test_warn_keeps_the_archive_and_deep_verify_names_each_page(make_dc, tmp_path, seed):
    dc = make_dc("DC01", size=6 << 20)
    bad = damage_dc(dc, random.Random(seed))
    archive = tmp_path / "a.tar.zst"
    summary = backup("DC01", archive, chunk_size=CHUNK, on_bad_page="warn")
    ese = summary.ese
    assert ese["verdict"] == "not bootable"
    assert ese["pages"]["bad"] == 2 and ese["pages"]["correctable"] == 1
    assert ese["bad_pages"] == [u.number for u in bad[:2]]
    # plain verify: the archive is intact
    assert cli("verify", archive).returncode == 0
    r = cli("verify", "--deep", archive)
    assert r.returncode == 8
    out = r.stdout.decode()
    assert f"page {bad[0].number}: the checksum-format flag bit (0x2000) is flipped" in out
    assert f"page {bad[1].number}: bad checksum" in out
    assert (f"warning: database/ntds.dit: page {bad[2].number}: a single flipped bit "
            f"(bit {bad[2].detail})") in out
    assert "NOT bootable" in out
    r = cli("verify", "--deep", "--json", archive)
    assert r.returncode == 8
    events = [json.loads(line) for line in r.stdout.decode().splitlines()]
    verified = next(e for e in events if e["event"] == "verified")
    assert verified["ok"] is False and verified["ese"] == ese
    # every reader, thread count and chunk size finds the same
    for kw in ({"threads": 1}, {"threads": 2}, {"pure": True}):
        assert verify(archive, deep=True, **kw).ese.record() == ese
    other = tmp_path / "b.tar.zst"
    again = backup("DC01", other, chunk_size=24576, threads=1, on_bad_page="warn",
                   truncate=False)
    assert again.ese["pages"] == ese["pages"] and again.ese["bad_pages"] == ese["bad_pages"]


def test_deep_verify_gives_the_verdict_of_the_dcs_own_check_on_the_restored_files(
        make_dc, tmp_path):
    """The archive's verdict and the DC's boot-time check on its files, put
    in one folder as a restore puts them, agree finding for finding."""
    from ntdsbackup.archive import extract

    dc = make_dc("DC01", size=6 << 20)
    damage_dc(dc, random.Random(11))
    archive = tmp_path / "a.tar.zst"
    backup("DC01", archive, chunk_size=CHUNK, on_bad_page="warn")
    report = extract(archive, tmp_path / "x")
    folder = tmp_path / "ntds"
    folder.mkdir()
    for f in report.files:
        os.replace(tmp_path / "x" / f.name, folder / f.name.rsplit("/", 1)[-1])
    gens = report.trailer["log_generations"]
    on_disk = check_folder(folder, gen_low=gens["low"], gen_high=gens["high"])
    deep = verify(archive, deep=True).ese

    def bare(texts):
        return [t.replace("database/", "").replace("logs/", "") for t in texts]
    assert not deep.ok and not on_disk.ok
    assert bare(deep.problems) == on_disk.problems
    assert bare(deep.warnings) == [w for w in on_disk.warnings if "edb.chk" not in w]
    assert (deep.pages_ok, deep.pages_bad, deep.pages_correctable, deep.segments_ok) == \
        (on_disk.pages_ok, on_disk.pages_bad, on_disk.pages_correctable, on_disk.segments_ok)


def test_restore_refuses_an_archive_recorded_not_bootable(make_dc, tmp_path):
    dc = make_dc("DC01", size=6 << 20)
    damage_dc(dc, random.Random(5))
    archive = tmp_path / "a.tar.zst"
    backup("DC01", archive, chunk_size=CHUNK, on_bad_page="warn")
    dc.stop()
    before = snapshot(dc.ntds_dir)
    r = cli("restore", archive, "--server", "DC01")
    assert r.returncode == 8, r.stderr
    assert b"the backup recorded that its database or logs fail the ESE checks" in r.stderr
    assert snapshot(dc.ntds_dir) == before and dc.restore_state() is None


def test_restore_checks_the_pages_it_stages(make_dc, tmp_path):
    """An archive made without the checks (no verdict recorded) of a damaged
    database: the staging pass finds the pages and refuses before
    DsRestoreRegister, the DC's files untouched."""
    dc = make_dc("DC01", size=6 << 20)
    bad = damage_dc(dc, random.Random(9))
    archive = tmp_path / "a.tar.zst"
    backup("DC01", archive, chunk_size=CHUNK, page_checks=False)
    dc.stop()
    enable_trace(dc)
    before = snapshot(dc.ntds_dir)
    with pytest.raises(errors.DatabaseDamaged, match=f"page {bad[0].number}: the checksum"):
        restore(archive, "DC01")
    assert snapshot(dc.ntds_dir) == before and dc.restore_state() is None
    assert "DsRestoreRegisterW" not in trace_calls(dc)
    with pytest.raises(errors.DatabaseDamaged):
        restore(archive, "DC01", dry_run=True)


def test_a_clean_restore_passes_the_staging_check_and_boots(make_dc, tmp_path):
    dc = make_dc("DC01", size=6 << 20, page_size=32768)
    archive = tmp_path / "a.tar.zst"
    backup("DC01", archive, chunk_size=CHUNK)
    dc.stop()
    result = restore(archive, "DC01")
    checks = {c.name: c for c in result.plan.checks}
    assert checks["database pages"].ok and checks["database at backup"].ok
    assert "bootable" in checks["database at backup"].detail
    dc.start()
    assert check_folder(dc.ntds_dir).ok


# ------------------------------------------------------------ the log set


def rewrite_log_header(path, **changes) -> None:
    from ntdsbackup import ese

    data = bytearray(path.read_bytes())
    h = ese.parse_log_header(bytes(data[:4096]))
    data[:4096] = ese.build_log_header(ese.replace(h, **changes))
    path.write_bytes(data)


def deep_problems(archive) -> list[str]:
    v = verify(archive, deep=True).ese
    assert not v.ok
    return v.problems


def test_a_missing_log_generation(make_dc, tmp_path):
    """A DC missing a log it must send fails the backup itself (as ESE does);
    an archive whose log set has a gap (a DC that lied, an archive put
    together by hand) is named precisely by the verdict."""
    from ntdsbackup.dbcheck.archive import ArchivePages

    dc = make_dc("DC01", size=4 << 20)
    dcdata.activity(dc.ntds_dir, 0.05, seed=2, new_generations=4)
    archive = tmp_path / "a.tar.zst"
    backup("DC01", archive, chunk_size=CHUNK, truncate=False)
    h = dcdata._read_dit_header(dc.ntds_dir).header
    gone = h.gen_max_required - 1
    assert h.gen_min_required < gone
    (dc.ntds_dir / dcdata.log_name(gone)).unlink()
    r = cli("backup", "--server", "DC01", "-o", tmp_path / "x.tar.zst")
    assert r.returncode == 6 and b"hrMissingLogFile" in r.stderr, r.stderr

    pages = ArchivePages()
    report = verify(archive)
    from ntdsbackup.archive.fastread import read_fd

    with open(archive, "rb") as fh:
        read_fd(fh.fileno(), pages=pages)
    del pages.results[f"logs/{dcdata.log_name(gone)}"]
    v = pages.verdict(report.trailer)
    assert not v.ok
    assert any(f"log generations {gone}..{gone} missing between logs/"
               f"{dcdata.log_name(gone - 1)} and logs/{dcdata.log_name(gone + 1)}" in p
               for p in v.problems), v.problems
    assert any(f"missing log generation(s) {gone} (" in p for p in v.problems), v.problems


def test_a_log_of_another_database(make_dc, tmp_path):
    from ntdsbackup import ese

    dc = make_dc("DC01", size=4 << 20)
    gens = sorted(dcdata._log_files(dc.ntds_dir))
    path = dc.ntds_dir / dcdata.log_name(gens[-1])
    h = ese.parse_log_header(path.read_bytes()[:4096])
    rewrite_log_header(path, sign_log=ese.replace(h.sign_log, random=h.sign_log.random ^ 0x5A5A))
    archive = tmp_path / "a.tar.zst"
    backup("DC01", archive, chunk_size=CHUNK, on_bad_page="warn")
    probs = deep_problems(archive)
    assert any(f"{dcdata.log_name(gens[-1])}: generation {gens[-1]}: signLog differs from "
               "the database's (a log of another database)" in p for p in probs), probs


def test_a_database_requiring_generations_the_archive_lacks(make_dc, tmp_path):
    dc = make_dc("DC01", size=4 << 20)
    low = min(dcdata._log_files(dc.ntds_dir))
    fd = os.open(dc.ntds_dir / "ntds.dit", os.O_RDWR)
    try:
        h = dcdata._read_dit_header(dc.ntds_dir).header
        h.gen_min_required = low - 1 if low > 1 else 1
        h.gen_max_required = max(h.gen_max_required, low)
        if low == 1:                      # nothing below: require one above the logs
            h.gen_min_required = h.gen_max_required = max(dcdata._log_files(dc.ntds_dir)) + 5
        dcdata._write_header_pair(fd, h)
    finally:
        os.close(fd)
    archive = tmp_path / "a.tar.zst"
    backup("DC01", archive, chunk_size=CHUNK, on_bad_page="warn")
    probs = deep_problems(archive)
    assert any("missing log generation(s)" in p and "database/ntds.dit requires" in p
               for p in probs), probs


def test_a_bad_log_segment_and_a_bad_log_header(make_dc, tmp_path):
    dc = make_dc("DC01", size=4 << 20)
    first = dcdata._read_dit_header(dc.ntds_dir).header.gen_min_required
    gens = [g for g in sorted(dcdata._log_files(dc.ntds_dir)) if g >= first]   # the ones sent
    seg_log, hdr_log = dc.ntds_dir / dcdata.log_name(gens[0]), \
        dc.ntds_dir / dcdata.log_name(gens[1])
    flip(seg_log, 3 * 4096 + 1234, 0x42)                 # segment isec 3
    flip(hdr_log, 100, 0x01)                              # its header checksum breaks
    archive = tmp_path / "a.tar.zst"
    backup("DC01", archive, chunk_size=CHUNK, on_bad_page="warn")
    probs = deep_problems(archive)
    assert any(f"{dcdata.log_name(gens[0])}: generation {gens[0]}: segment 3: bad checksum"
               in p for p in probs), probs
    assert any(f"{dcdata.log_name(gens[1])}: header checksum" in p for p in probs), probs


# ------------------------------------------------------------ headers


def test_one_bad_header_copy_is_a_warning_both_are_fatal(make_dc, tmp_path):
    dc = make_dc("DC01", size=4 << 20)
    dit = dc.ntds_dir / "ntds.dit"
    flip(dit, 8192 + 300, 0x04)                           # the shadow
    a = tmp_path / "a.tar.zst"
    summary = backup("DC01", a, chunk_size=CHUNK)
    assert summary.ese["verdict"] == "bootable" and summary.ese["header"] == "primary"
    assert any("shadow header bad" in w for w in summary.ese["warnings"])
    flip(dit, 300, 0x04)                                  # and now the primary too
    with pytest.raises(errors.DatabaseDamaged, match="no valid database header|header:"):
        backup("DC01", tmp_path / "b.tar.zst", chunk_size=CHUNK)


def test_encrypted_archives_are_checked_deep_through_their_envelope(make_dc, tmp_path):
    from ntdsbackup.archive.envelope import DecryptionKeys
    from ntdsbackup.crypto import X25519Identity

    make_dc("DC01", size=4 << 20)
    ident = X25519Identity.generate()
    archive = tmp_path / "a.tar.zst.age"
    summary = backup("DC01", archive, chunk_size=CHUNK, recipients=[ident.recipient])
    report = verify(archive, deep=True, keys=DecryptionKeys(identities=[ident]))
    assert report.encrypted and report.ese.ok
    assert report.ese.record() == summary.ese


# ------------------------------------------------------------ a hostile trailer


@pytest.mark.parametrize("change,words", [
    (lambda e: e.update(verdict="fine"), "ese.verdict"),
    (lambda e: e.update(problems=["x"] * 21), "ese.problems has 21 entries"),
    (lambda e: e.update(problems=["x" * 2000]), "ese.problems[0] is 2000 characters"),
    (lambda e: e["pages"].update(bad=-1), "ese.pages.bad"),
    (lambda e: e.update(bad_pages=["7"]), "ese.bad_pages[0]"),
    (lambda e: e.update(required=[1, 2, 3]), "ese.required has 3 entries"),
    (lambda e: e.pop("logs"), "has no logs"),
])
def test_a_hostile_verdict_in_the_trailer_is_refused(change, words):
    from ntdsbackup.dbcheck import Verdict

    trailer = {"format": "ntdsbackup-archive", "version": 1, "complete": True, "files": [],
               "ese": Verdict().record()}
    schema.check_trailer(json.loads(json.dumps(trailer)))
    change(trailer["ese"])
    with pytest.raises(errors.ArchiveError, match=words.replace("[", r"\[").replace("]", r"\]")):
        schema.check_trailer(trailer)

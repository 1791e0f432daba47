"""list and prune on a local folder of real backups of small emulated DCs
(the bucket's case is in test_s3_commands.py), the keep rules on their own,
and the tombstone lifetime from the expiry token."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from types import SimpleNamespace

from dctools import cli
from ntdsbackup.fleet.rules import kept_by_rules
from ntdsbackup.phases.backup import backup

DAY = 86400


def _json(r) -> dict:
    assert r.returncode == 0, (r.args, r.stdout, r.stderr)
    return json.loads(r.stdout.strip().splitlines()[-1])


def _small(make_dc, name: str, **kw):
    return make_dc(name, size=1 << 20, log_size=128 << 10, log_count=2, **kw)


def _expire(dc, days: int = 3) -> None:
    """Its clock set back: the token's backup time is `days` ago."""
    cfg = dc.config()
    cfg.clock_offset = -days * DAY
    dc.save_config(cfg)


def test_list_a_folder_of_several_dcs(make_dc, tmp_path):
    folder = tmp_path / "b"
    folder.mkdir()
    for name in ("DCA", "DCB", "DCC"):
        _small(make_dc, name)
        for i in range(3):
            backup(name, folder / f"{name}-{i}.tar.zst", truncate=False)
    (folder / "notes.txt").write_text("not an archive")
    assert cli("verify", folder / "DCA-1.tar.zst").returncode == 0
    fleet = _json(cli("list", folder, "--json", text=True))
    rows = {r["name"]: r for r in fleet["archives"]}
    assert len(rows) == 9
    assert rows["DCA-1.tar.zst"]["verified"] is True
    assert rows["DCA-0.tar.zst"]["verified"] is None
    assert all(r["restorable"] and 179 < r["days_left"] <= 180 for r in rows.values())
    assert {s["server"]: s["flagged"] for s in fleet["servers"]} == \
        {"DCA": False, "DCB": False, "DCC": False}
    # A changed archive has no cached result any more.
    with open(folder / "DCA-1.tar.zst", "ab") as fh:
        fh.write(b"x")
    fleet = _json(cli("list", folder, "--json", text=True))
    assert {r["name"]: r["verified"] for r in fleet["archives"]}["DCA-1.tar.zst"] is None


def test_a_backup_past_its_tombstone_lifetime_is_flagged(make_dc, tmp_path):
    dc = _small(make_dc, "OLD1", tombstone_days=2)
    _expire(dc)
    backup("OLD1", tmp_path / "old.tar.zst", truncate=False)
    fleet = _json(cli("list", tmp_path, "--json", text=True))
    row = fleet["archives"][0]
    assert row["days_left"] < 0 and row["restorable"] is False
    assert fleet["servers"] == [{"server": "OLD1", "archives": 1, "newest_restorable": None,
                                 "created": None, "days_left": None, "flagged": True}]
    assert "NO restorable backup" in cli("list", tmp_path, text=True).stdout


def test_prune_never_deletes_the_newest_restorable_backup(make_dc, tmp_path):
    dc = _small(make_dc, "DC01", tombstone_days=2)
    backup("DC01", tmp_path / "a-good.tar.zst", truncate=False)
    cli("verify", tmp_path / "a-good.tar.zst")
    _expire(dc)
    # Newer by the manifest, but its token says it is past the lifetime.
    backup("DC01", tmp_path / "b-expired.tar.zst", truncate=False)
    dry = _json(cli("prune", tmp_path, "--keep-last", "1", "--dry-run", "--json", text=True))
    assert {d["name"]: d["reason"] for d in dry["kept"]} == \
        {"b-expired.tar.zst": "last #1", "a-good.tar.zst": "newest restorable"}
    everything = _json(cli("prune", tmp_path, "--keep-last", "0", "--json", text=True))
    assert [d["name"] for d in everything["kept"]] == ["a-good.tar.zst"]
    assert everything["removed"][0]["removed"] == ["b-expired.tar.zst"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == \
        ["a-good.tar.zst", "a-good.tar.zst.verified.json"]


def test_prune_removes_sidecars_and_keeps_other_dcs(make_dc, tmp_path):
    for name in ("DCX", "DCY"):
        _small(make_dc, name)
        for i in range(3):
            backup(name, tmp_path / f"{name}-{i}.tar.zst", truncate=False)
    cli("verify", tmp_path / "DCX-0.tar.zst")
    pruned = _json(cli("prune", tmp_path, "--keep-last", "1", "--json", text=True))
    kept = sorted(d["name"] for d in pruned["kept"])
    assert len(kept) == 2 and {k[:3] for k in kept} == {"DCX", "DCY"}
    left = sorted(p.name for p in tmp_path.iterdir() if p.is_file())
    assert left == kept                 # the .verified.json went with its archive


def _at(*days: str):
    out = []
    for i, d in enumerate(days):
        ts = int(datetime.fromisoformat(d).replace(tzinfo=timezone.utc).timestamp())
        out.append(SimpleNamespace(name=f"n{i}", created_unix=ts))
    return out


def test_the_keep_rules_are_borgs():
    backups = _at("2024-03-31T10:00", "2024-03-31T08:00", "2024-03-30T10:00",
                  "2024-03-20T10:00", "2024-02-10T10:00", "2024-01-05T10:00")
    reasons = kept_by_rules(backups, {"daily": 2})
    assert sorted(reasons.values()) == ["daily #1", "daily #2"]
    assert id(backups[0]) in reasons and id(backups[2]) in reasons     # newest of each day
    reasons = kept_by_rules(backups, {"last": 1, "monthly": 3})
    kept = {b.name: reasons[id(b)] for b in backups if id(b) in reasons}
    # March's newest is kept already (by last): as in borg, it uses up the
    # month without counting for the monthly rule.
    assert kept == {"n0": "last #1", "n4": "monthly #1", "n5": "monthly #2"}
    reasons = kept_by_rules(backups, {"weekly": 10})
    assert sorted(reasons.values()) == [f"weekly #{i}" for i in range(1, 5)]
    reasons = kept_by_rules(backups[:2], {"daily": 3})
    assert reasons == {id(backups[0]): "daily #1", id(backups[1]): "daily #2 (oldest)"}


def _identity_file(path) -> object:
    from ntdsbackup.crypto import X25519Identity

    identity = X25519Identity.generate()
    path.write_text(identity.text + "\n")
    return identity


def test_list_and_prune_with_a_key_read_encrypted_archives_themselves(make_dc, tmp_path):
    folder = tmp_path / "b"
    folder.mkdir()
    mine = _identity_file(tmp_path / "mine.txt")
    theirs = _identity_file(tmp_path / "theirs.txt")
    for name in ("DCE", "DCF"):
        _small(make_dc, name)
    for i in range(2):
        backup("DCE", folder / f"DCE-{i}.tar.zst.age", truncate=False,
               recipients=[mine.recipient])
    backup("DCF", folder / "DCF-0.tar.zst", truncate=False)
    backup("DCF", folder / "DCF-x.tar.zst.age", truncate=False, recipients=[theirs.recipient])
    # Without a key: as before, the encrypted rows name no DC.
    fleet = _json(cli("list", folder, "--json", text=True))
    rows = {r["name"]: r for r in fleet["archives"]}
    assert [rows[n]["server"] for n in ("DCE-0.tar.zst.age", "DCE-1.tar.zst.age",
                                        "DCF-x.tar.zst.age")] == [None, None, None]
    assert rows["DCE-0.tar.zst.age"]["problem"] == \
        "encrypted, and no cached verify result names its DC (verify it once)"
    # With one: its own documents, read by ranges; a wrong key is one row's problem.
    fleet = _json(cli("list", folder, "-i", tmp_path / "mine.txt", "--json", text=True))
    rows = {r["name"]: r for r in fleet["archives"]}
    for name in ("DCE-0.tar.zst.age", "DCE-1.tar.zst.age"):
        row = rows[name]
        assert row["server"] == "DCE" and row["encrypted"] and row["problem"] is None, row
        assert row["restorable"] and 179 < row["days_left"] <= 180 and row["created"]
    assert rows["DCF-0.tar.zst"]["server"] == "DCF" and rows["DCF-0.tar.zst"]["restorable"]
    wrong = rows["DCF-x.tar.zst.age"]
    assert wrong["problem"] == "could not be decrypted: no identity matches"
    assert wrong["server"] is None and wrong["restorable"] is False
    assert {s["server"]: s["newest_restorable"] for s in fleet["servers"]} == \
        {"DCE": "DCE-1.tar.zst.age", "DCF": "DCF-0.tar.zst"}
    text = cli("list", folder, "-i", tmp_path / "mine.txt", text=True)
    assert text.returncode == 0
    line = next(ln for ln in text.stdout.splitlines() if "DCF-x.tar.zst.age" in ln)
    assert line.startswith("?") and "(could not be decrypted: no identity matches)" in line
    # Both keys: every row from its documents.
    both = _json(cli("list", folder, "-i", tmp_path / "mine.txt", "-i",
                     tmp_path / "theirs.txt", "--json", text=True))
    assert all(r["problem"] is None and r["server"] for r in both["archives"])
    # A verify record names the DC of the one the key does not open: the
    # row shows it, is not restorable, and prune keeps it ("unreadable").
    assert cli("verify", folder / "DCF-x.tar.zst.age", "-i", tmp_path / "theirs.txt"
               ).returncode == 0
    pruned = _json(cli("prune", folder, "--keep-last", "1", "-i", tmp_path / "mine.txt",
                       "--json", text=True))
    kept = {d["name"]: d["reason"] for d in pruned["kept"]}
    assert kept["DCF-x.tar.zst.age"] == "unreadable"
    assert kept["DCF-0.tar.zst"] == "last #1"
    assert [d["removed"] for d in pruned["removed"]] == [["DCE-0.tar.zst.age"]]
    assert sorted(p.name for p in folder.iterdir()) == \
        ["DCE-1.tar.zst.age", "DCF-0.tar.zst", "DCF-x.tar.zst.age",
         "DCF-x.tar.zst.age.verified.json"]
    # A missing identity file is a usage error, before anything is read.
    assert cli("list", folder, "-i", tmp_path / "nope.txt").returncode == 2

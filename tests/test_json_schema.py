"""Every line every command prints with --json follows the documented schema
(ntdsbackup.cli.jsonschema, rendered in docs/JSON.md)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from dctools import cli, set_faults
from ntdsbackup.cli.jsonschema import EVENTS, SCHEMA_VERSION, fields, problems
from ntdsbackup.emulator import EmulatedDC

DOC = Path(__file__).resolve().parents[1] / "docs" / "JSON.md"


def json_lines(r, stream: str = "stdout") -> list[dict]:
    text = getattr(r, stream)
    text = text.decode() if isinstance(text, bytes) else text
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    for obj in lines:
        assert problems(obj) == [], obj
    return lines


def test_every_command_follows_the_schema(emu_root, tmp_path):
    seen: dict[str, set[str]] = {}

    def run(*args, stream="stdout", code=0, **kw):
        r = cli(*args, "--json", text=stream != "archive", **kw)
        assert r.returncode == code, (args, r.stdout, r.stderr)
        lines = json_lines(r, "stderr" if stream == "archive" else stream)
        assert lines, args
        seen.setdefault(" ".join(map(str, args[:2])), set()).update(o["event"] for o in lines)
        return lines

    created = run("dc", "create", "DC01", "--size", "4MiB", "--log-size", "256KiB")
    assert problems({"event": "status", "schema": SCHEMA_VERSION,
                     **created[0]["status"]}) == []
    run("dc", "status", "DC01")
    run("dc", "activity", "DC01")
    run("dc", "account", "DC01", "CORP\\ann", "--password-command", "echo pw")
    run("dc", "account", "DC01", "-", "--default-privileges", "--privileges",
        "backup,restore,admin")
    run("dc", "fault", "DC01", "--clear")
    archive = tmp_path / "a.tar.zst"
    run("backup", "--server", "DC01", "-o", archive, "--chunk-size", "64KiB")
    run("backup", "--server", "DC01", "-o", "-", stream="archive")
    verified = run("verify", archive)
    run("verify", archive, "--pure")
    listed = run("ls", archive)
    assert "index" not in listed[-1]
    indexed = run("ls", archive, "--index")
    assert indexed[-1]["index"]["trailer_offset"] > 0
    run("extract", archive, tmp_path / "x")
    run("dc", "stop", "DC01")
    run("restore", archive, "--server", "DC01", "--dry-run")
    set_faults(EmulatedDC("DC01", emu_root), register_hr=0x8007001F)
    failed = run("restore", archive, "--server", "DC01", code=6)
    assert [o["event"] for o in failed][-2:] == ["settled", "error"]
    run("dc", "fault", "DC01", "--clear")
    run("restore", archive, "--server", "DC01")
    run("restore", "--recover", "--server", "DC01")
    run("dc", "start", "DC01")
    run("verify", tmp_path / "missing.tar.zst", code=7)
    key = run("key", "generate", "-o", tmp_path / "id.txt")[-1]
    run("key", "public", tmp_path / "id.txt")
    sign = run("key", "generate", "--signing", "-o", tmp_path / "sign.key")[-1]
    sealed = tmp_path / "a.tar.zst.age"
    run("backup", "--server", "DC01", "-o", sealed, "-r", key["public"], "--sign-key",
        tmp_path / "sign.key", "--no-truncate")
    signed = run("verify", sealed, "-i", tmp_path / "id.txt", "--trusted-key",
                 sign["public_file"])[-1]
    assert signed["encrypted"] and signed["signed"]["server"] == "DC01"
    run("ls", sealed, "-i", tmp_path / "id.txt", "--trusted-key", sign["public"])
    run("bench", "--size", "4MiB", "--repeat", "1", "--no-restore", "--work-dir", tmp_path)
    fleet = run("list", tmp_path)[-1]
    assert {r["name"] for r in fleet["archives"]} >= {"a.tar.zst", "a.tar.zst.age"}
    run("prune", tmp_path, "--keep-last", "1", "--dry-run")

    assert verified[-1]["event"] == "verified"
    every = set().union(*seen.values())
    # Each event the schema defines is produced by some command here, but
    # "recovered", which needs a restore killed part-way (test_restore_crash).
    assert set(EVENTS) - every == {"recovered"}, set(EVENTS) - every


def test_the_checker_rejects_what_the_schema_does_not_say():
    good = {"event": "stopped", "schema": SCHEMA_VERSION, "mode": "dsrm"}
    assert problems(good) == []
    assert problems({**good, "schema": 0})
    assert problems({**good, "extra": 1})
    assert problems({"event": "stopped", "schema": SCHEMA_VERSION})
    assert problems({**good, "mode": 3})
    assert problems({"event": "nope", "schema": SCHEMA_VERSION})
    assert problems({"event": "error", "schema": SCHEMA_VERSION, "error": "X", "message": "m",
                     "exit_code": True})              # a boolean is not an integer


def test_every_event_and_field_is_documented():
    text = DOC.read_text()
    assert f'"schema": {SCHEMA_VERSION}' in text
    for event in EVENTS:
        section = re.search(rf"^### `{event}`\n(.*?)(?=^### |\Z)", text, re.S | re.M)
        assert section, f"docs/JSON.md has no section for {event}"
        for name in fields(event):
            assert f"`{name}`" in section.group(1), f"{event}.{name} is not documented"


@pytest.mark.parametrize("event", sorted(EVENTS))
def test_every_event_has_a_description(event):
    assert EVENTS[event].get("_doc")
    for name, (types, required, what) in fields(event).items():
        names = (types,) if isinstance(types, str) else types
        assert set(names) <= {"string", "integer", "number", "boolean", "object", "array",
                              "null"}, (event, name)
        assert what and isinstance(required, bool), (event, name)

"""A small program embedding ntdsbackup, type-checked with mypy --strict
(tests/test_typing.py) and run against an emulated DC: back up to memory
with a progress callback, verify, restore with dry_run."""

from __future__ import annotations

import io
import sys

import ntdsbackup
from ntdsbackup.emulator import EmulatedDC


def run(server: str) -> ntdsbackup.RestorePlan:
    files: list[str] = []
    done: dict[str, int] = {}

    def progress(event: ntdsbackup.Event) -> None:
        if event["event"] == "file":
            files.append(event["name"])
        elif event["event"] == "progress":
            done[event["name"]] = event["done"]

    buf = io.BytesIO()
    summary: ntdsbackup.BackupSummary = ntdsbackup.backup(server, buf, progress=progress)
    assert files == [f["name"] for f in summary.files], files
    assert all(done[f["name"]] == f["size"] for f in summary.files), done
    buf.seek(0)
    report: ntdsbackup.ReadReport = ntdsbackup.verify(buf, pure=True)
    assert [m.name for m in report.files] == files

    dc = EmulatedDC(server)                     # under $NTDSB_EMU_ROOT
    dc.stop()                                   # restores run in DSRM
    try:
        buf.seek(0)
        result = ntdsbackup.restore(buf, server, dry_run=True, progress=progress)
        assert result.dry_run and all(check.ok for check in result.plan.checks)
        return result.plan
    except ntdsbackup.ArchiveError as exc:
        print(f"bad archive: {exc} (member {exc.member}, chunk {exc.chunk_index})",
              file=sys.stderr)
        raise
    finally:
        dc.start()


if __name__ == "__main__":
    plan = run(sys.argv[1] if len(sys.argv) > 1 else "DC01")
    print(f"{len(plan.files)} files would be restored")

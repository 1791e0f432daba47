"""The iterator form of a backup: pieces that concatenate to a valid archive,
each verified, bounded memory, failures and early stops handled."""

from __future__ import annotations

import io

import pytest

import ntdsbackup
from ntdsbackup import errors
from ntdsbackup.archive import verify
from ntdsbackup.stream import iter_backup

CHUNK = 64 * 1024


def test_pieces_concatenate_to_the_archive(dc):
    stream = iter_backup("DC01", chunk_size=CHUNK, truncate=False)
    pieces = list(stream)
    kinds = [p.kind for p in pieces]
    assert kinds[0] == "meta" and kinds[-1] == "index" and "chunk" in kinds
    chunks = [p for p in pieces if p.kind == "chunk"]
    assert chunks[0].index == 0 and chunks[0].raw_size == CHUNK and len(chunks[0].xxh3_128) == 16
    report = verify(io.BytesIO(b"".join(p.data for p in pieces)))
    assert report.files[0].size == (dc.ntds_dir / "ntds.dit").stat().st_size
    assert stream.summary.bytes_written == sum(len(p.data) for p in pieces)


def test_unverified_pieces_are_the_same_bytes(dc):
    a = b"".join(p.data for p in iter_backup("DC01", chunk_size=CHUNK, truncate=False,
                                             verify=False))
    verify(io.BytesIO(a))


def test_failure_is_raised_to_the_consumer(dc):
    cfg = dc.config()
    cfg.set_faults(read_hr=0xC7FF000D, read_after=4 * CHUNK)
    dc.save_config(cfg)
    got = []
    with pytest.raises(errors.EngineError, match="hrCommunicationError"):
        for piece in iter_backup("DC01", chunk_size=CHUNK):
            got.append(piece)
    assert 0 < len(got) < 10
    ntdsbackup.open_provider().backup_prepare("DC01").end()   # the handle was ended


def test_stopping_early_ends_the_backup(dc):
    enable = dc.config()
    enable.trace = True
    dc.save_config(enable)
    it = iter(iter_backup("DC01", chunk_size=CHUNK, queue_bytes=2 * CHUNK))
    next(it)
    next(it)
    it.close()
    calls = [line.split()[1] for line in (dc.path / "calls.log").read_text().splitlines()]
    assert calls.count("DsBackupEnd") == 1 and "DsBackupTruncateLogs" not in calls
    ntdsbackup.open_provider().backup_prepare("DC01").end()

"""Multi-string lists (reference section 6): exact bytes, hostile input."""

import pytest

from ntdsbackup import _ntdsbcli
from ntdsbackup.errors import ListFormatError
from ntdsbackup.lists import (
    BFT_CHECKPOINT_DIR,
    BFT_LOG,
    BFT_LOG_DIR,
    BFT_NTDS_DATABASE,
    ListEntry,
    build_multistring,
    parse_multistring,
)


def test_bft_values_match_the_c_header():
    assert _ntdsbcli.BFT["LOG"] == BFT_LOG == 0x21
    assert _ntdsbcli.BFT["LOG_DIR"] == BFT_LOG_DIR == 0x82
    assert _ntdsbcli.BFT["CHECKPOINT_DIR"] == BFT_CHECKPOINT_DIR == 0x83
    assert _ntdsbcli.BFT["NTDS_DATABASE"] == BFT_NTDS_DATABASE == 0x44
    assert _ntdsbcli.BFT["PATCH_FILE"] == 0x25
    assert _ntdsbcli.BACKUP_TYPE == {"FULL": 1, "LOGS_ONLY": 2, "INCREMENTAL": 4}


def test_exact_bytes_of_a_database_list():
    data = build_multistring([(BFT_NTDS_DATABASE, r"\\DC1\C$\Windows\NTDS\ntds.dit")])
    assert data[:2] == b"\x44\x00"
    assert data[2:6] == b"\\\x00\\\x00"
    assert data[-4:] == b"\x00\x00\x00\x00"  # entry NUL + list NUL
    assert len(data) == 2 * (1 + len(r"\\DC1\C$\Windows\NTDS\ntds.dit") + 2)
    assert parse_multistring(data) == [ListEntry(0x44, r"\\DC1\C$\Windows\NTDS\ntds.dit")]


def test_high_bft_codes_and_non_ascii_server_names():
    entries = [(BFT_CHECKPOINT_DIR, "\\\\DCÜ01\\C$\\Windows\\NTDS"),
               (BFT_LOG_DIR, "\\\\DCÜ01\\C$\\Windows\\NTDS"),
               (BFT_NTDS_DATABASE, "\\\\DCÜ01\\C$\\Windows\\NTDS\\ntds.dit"),
               (BFT_LOG, "\\\\東京-DC\\C$\\Windows\\NTDS\\edb0000A.log")]
    data = build_multistring(entries)
    assert data[:2] == b"\x83\x00"  # one code unit, compared unsigned
    parsed = parse_multistring(data)
    assert [(e.bft, e.path) for e in parsed] == entries
    assert parsed[0].bft_name == "BFT_CHECKPOINT_DIR"


@pytest.mark.parametrize("data", [b"\x00\x00", b"\x00\x00\x00\x00"])
def test_empty_lists(data):
    assert parse_multistring(data) == []


@pytest.mark.parametrize("data,why", [
    (b"", "does not end"),
    (b"\x44", "odd"),
    (b"\x44\x00a\x00b\x00", "does not end"),   # no NUL at all
    (b"\x44\x00a\x00\x00\x00", "double NUL"),  # one entry NUL, no list NUL
])
def test_malformed_lists_are_refused(data, why):
    with pytest.raises(ListFormatError, match=why):
        parse_multistring(data)


def test_missing_double_nul_and_lone_bft_code():
    one_nul = ("D" + "x:\\a").encode("utf-16-le") + b"\x00\x00"
    with pytest.raises(ListFormatError, match="double NUL"):
        parse_multistring(one_nul)
    lone = b"\x44\x00\x00\x00\x00\x00"
    with pytest.raises(ListFormatError, match="no path"):
        parse_multistring(lone)


def test_unpaired_surrogate_is_refused():
    data = b"\x44\x00\x00\xd8\x00\x00\x00\x00"
    with pytest.raises(ListFormatError, match="UTF-16LE"):
        parse_multistring(data)

"""Provider loading: the default, the NTDSB_PROVIDER override, and clear errors
for a missing library or a missing export."""

import subprocess
import sys

import pytest

from ntdsbackup import Provider, errors, hresult_name
from ntdsbackup.provider import default_provider_path, emulator_library_path

EXPORTS = [
    "DsIsNTDSOnlineW", "DsBackupPrepareW", "DsBackupGetDatabaseNamesW", "DsBackupOpenFileW",
    "DsBackupRead", "DsBackupClose", "DsBackupGetBackupLogsW", "DsBackupTruncateLogs",
    "DsBackupEnd", "DsBackupFree", "DsRestoreGetDatabaseLocationsW", "DsRestorePrepareW",
    "DsRestoreRegisterW", "DsRestoreRegisterComplete", "DsRestoreEnd",
    "DsSetCurrentBackupLogW", "DsSetAuthIdentityW",
]


def test_default_is_the_bundled_emulator(monkeypatch):
    monkeypatch.delenv("NTDSB_PROVIDER", raising=False)
    assert default_provider_path() == str(emulator_library_path())
    assert emulator_library_path().is_file()


def test_environment_override(monkeypatch, tmp_path):
    monkeypatch.setenv("NTDSB_PROVIDER", str(tmp_path / "other.so"))
    assert default_provider_path() == str(tmp_path / "other.so")


def test_emulator_exports_exactly_the_api():
    out = subprocess.run(["nm", "-D", "--defined-only", str(emulator_library_path())],
                         check=True, capture_output=True, text=True).stdout
    exported = {line.split()[-1] for line in out.splitlines() if " T " in line}
    assert set(EXPORTS) <= exported
    # Nothing else leaks out of the emulator (it is built with hidden visibility).
    assert {s for s in exported if not s.startswith("Ds")} <= {"_init", "_fini"}


def test_missing_library_names_it(tmp_path):
    missing = tmp_path / "no-such-ntdsbcli.so"
    with pytest.raises(errors.ProviderLoadError, match="no-such-ntdsbcli.so"):
        Provider(str(missing))


def _build_partial_library(tmp_path, leave_out):
    src = tmp_path / "partial.c"
    body = "\n".join(f"int {name}(void) {{ return 0; }}" for name in EXPORTS if name != leave_out)
    src.write_text(body + "\n")
    lib = tmp_path / "libpartial.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(lib), str(src)], check=True)
    return lib


@pytest.mark.parametrize("leave_out", ["DsBackupRead", "DsRestoreRegisterComplete",
                                       "DsSetAuthIdentityW"])
def test_missing_symbol_names_it(tmp_path, leave_out):
    lib = _build_partial_library(tmp_path, leave_out)
    with pytest.raises(errors.ProviderLoadError, match=leave_out) as info:
        Provider(str(lib))
    assert "libpartial.so" in str(info.value)


def test_hresult_table_names():
    assert hresult_name(0) == "ERROR_SUCCESS"
    assert hresult_name(5) == "ERROR_ACCESS_DENIED"
    assert hresult_name(38) == "ERROR_HANDLE_EOF"
    assert hresult_name(0xC7FF0007) == "hrCouldNotConnect"
    assert hresult_name(0xC7FF0011) == "hrContentsExpired"
    assert hresult_name(0xC80001F9) == "hrBackupInProgress"
    assert hresult_name(0x8800022E) == "hrExistingLogFileHasBadSignature"
    assert hresult_name(1713) == "RPC_S_ALREADY_LISTENING"
    # Signed and unsigned spellings of the same code agree.
    assert hresult_name(0xC7FF000F - (1 << 32)) == "hrMissingExpiryToken"
    assert hresult_name(0x12345678) is None


def test_every_reference_code_is_in_the_table():
    """Every ntdsbmsg.h name of the reference maps back to its value."""
    import re
    from pathlib import Path

    ref = Path(__file__).resolve().parents[2] / "shared" / "reference" / "ntdsbcli-api.md"
    if not ref.exists():
        pytest.skip("shared reference not present beside the project")
    text = ref.read_text()
    codes = {name: int(v, 16) for name, v in re.findall(r"\| (hr\w+) \| (0x[0-9A-F]{8})", text)}
    for kind, low, name in re.findall(r"\b([EW])([0-9A-F]{4}) (hr\w+)", text):
        codes[name] = (0xC8000000 if kind == "E" else 0x88000000) | int(low, 16)
    assert len(codes) > 150
    for name, value in codes.items():
        if value == 0:
            continue
        assert hresult_name(value) == name, name


def test_error_mapping_classes():
    err = errors.hresult_error("DsBackupPrepareW", 5)
    assert isinstance(err, errors.AccessDenied) and isinstance(err, PermissionError)
    assert "ERROR_ACCESS_DENIED (0x00000005)" in str(err)
    err = errors.hresult_error("DsIsNTDSOnlineW", 0xC7FF0007)
    assert isinstance(err, errors.ServerUnreachable) and isinstance(err, ConnectionError)
    assert str(err).startswith("DsIsNTDSOnlineW failed: hrCouldNotConnect (0xC7FF0007)")
    assert isinstance(errors.hresult_error("x", 0xC7FF0011), errors.ContentsExpired)
    assert isinstance(errors.hresult_error("x", 87), ValueError)
    unknown = errors.hresult_error("x", 0x12345678)
    assert type(unknown) is errors.HResultError and "0x12345678" in str(unknown)


def test_importing_does_not_load_a_provider():
    code = "import ntdsbackup, ntdsbackup.provider as p; print(len(p._loaded))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "0"

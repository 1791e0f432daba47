"""The emulated DC's contract, exercised through the engine's provider
(ntdsbackup._ntdsbcli.Provider): every function, the documented errors, and
sequence violations.  docs/EMULATOR.md is the specification."""

from __future__ import annotations

import hashlib
import struct
import threading

import pytest

from ntdsbackup import errors
from ntdsbackup.emulator.config import Account
from ntdsbackup.lists import (
    BFT_CHECKPOINT_DIR,
    BFT_LOG,
    BFT_LOG_DIR,
    BFT_NTDS_DATABASE,
    parse_multistring,
)

ERROR_ACCESS_DENIED = 5
ERROR_INVALID_PARAMETER = 87
RPC_S_INVALID_BINDING = 1702
hrInvalidParam = 0xC7FF0001
hrError = 0xC7FF0002
hrInvalidHandle = 0xC7FF0003
hrRestoreInProgress = 0xC7FF0004
hrAlreadyOpen = 0xC7FF0005
hrCouldNotConnect = 0xC7FF0007
hrCommunicationError = 0xC7FF000D
hrMissingExpiryToken = 0xC7FF000F
hrUnknownExpiryTokenFormat = 0xC7FF0010
hrContentsExpired = 0xC7FF0011
hrBackupInProgress = 0xC80001F9
hrInvalidBackupSequence = 0xC8000209
hrFileNotFound = 0xC8000713
CHUNK = 64 * 1024


def hr_of(excinfo) -> int:
    return excinfo.value.hresult


def unc(name, file=None):
    base = f"\\\\{name}\\C$\\Windows\\NTDS"
    return base if file is None else f"{base}\\{file}"


def read_all(ctx, name, chunk=CHUNK):
    size = ctx.open_file(name, chunk)
    buf = bytearray(chunk)
    out = bytearray()
    while True:
        n = ctx.read(buf)
        if n == 0:
            break
        out += buf[:n]
    ctx.close_file()
    assert len(out) == size
    return bytes(out)


# -- online check and server names ---------------------------------------------------

def test_online_and_offline(provider, dc):
    assert provider.is_ntds_online("DC01") is True
    assert provider.is_ntds_online("\\\\DC01") is True   # leading backslashes optional
    assert provider.is_ntds_online("dc01") is True        # names are case-insensitive
    dc.stop()
    assert provider.is_ntds_online("DC01") is False
    dc.start()
    assert provider.is_ntds_online("DC01") is True


def test_unknown_and_invalid_server_names(provider, emu_root):
    with pytest.raises(errors.ServerUnreachable) as e:
        provider.is_ntds_online("NOSUCHDC")
    assert hr_of(e) == hrCouldNotConnect
    with pytest.raises(errors.ServerUnreachable) as e:
        provider.is_ntds_online("DC_01")
    assert hr_of(e) == RPC_S_INVALID_BINDING
    with pytest.raises(errors.HResultError):
        provider.is_ntds_online("")


def test_non_ascii_server_name(provider, make_dc):
    make_dc("DCÜ01")
    assert provider.is_ntds_online("DCÜ01")
    with provider.backup_prepare("\\\\DCÜ01") as ctx:
        (entry,) = parse_multistring(ctx.get_database_names())
        assert entry.bft == BFT_NTDS_DATABASE
        assert entry.path == unc("DCÜ01", "ntds.dit")


# -- backup --------------------------------------------------------------------------

def test_full_backup_sequence_streams_the_files_exactly(provider, dc):
    ctx = provider.backup_prepare("DC01")
    try:
        token = ctx.token
        assert token[:8] == b"NTDSBEXP" and len(token) == 64
        names = parse_multistring(ctx.get_database_names())
        assert [(e.bft, e.path) for e in names] == [(BFT_NTDS_DATABASE, unc("DC01", "ntds.dit"))]
        dit = read_all(ctx, names[0].path)
        assert dit == (dc.ntds_dir / "ntds.dit").read_bytes()
        logs = parse_multistring(ctx.get_backup_logs())
        assert logs and all(e.bft == BFT_LOG for e in logs)
        gens = [int(e.path[-9:-4], 16) for e in logs]
        assert gens == list(range(gens[0], gens[0] + len(gens)))
        for e in logs:
            name = e.path.rsplit("\\", 1)[1]
            assert read_all(ctx, e.path) == (dc.ntds_dir / name).read_bytes()
        ctx.truncate_logs()
        ctx.free_token()
        assert ctx.token is None
    finally:
        ctx.end()
    assert ctx.ended


def test_token_layout(provider, dc):
    with provider.backup_prepare("DC01") as ctx:
        tok = ctx.token
    magic, version, size, when, tomb, _res = struct.unpack_from("<8sIIqII", tok)
    assert (magic, version, size, tomb) == (b"NTDSBEXP", 1, 64, 180)
    assert tok[32:60] == (dc.ntds_dir / "ntds.dit").read_bytes()[24:52]
    fnv = 0x811C9DC5
    for b in tok[:60]:
        fnv = ((fnv ^ b) * 0x01000193) & 0xFFFFFFFF
    assert struct.unpack_from("<I", tok, 60)[0] == fnv


def test_get_backup_logs_closes_the_current_log(provider, dc):
    before = dc.log_generations()
    with provider.backup_prepare("DC01") as ctx:
        logs = parse_multistring(ctx.get_backup_logs())
    after = dc.log_generations()
    assert after == before + [before[-1] + 1]          # edb.log became a closed generation
    assert int(logs[-1].path[-9:-4], 16) == after[-1]
    head = (dc.ntds_dir / "edb.log").read_bytes()[:8]
    assert struct.unpack_from("<i", head, 4)[0] == after[-1] + 1


def test_truncate_deletes_generations_below_the_checkpoint(provider, dc):
    from ntdsbackup.emulator import data as dcdata

    ckpt = dcdata.describe(dc.ntds_dir)["checkpoint_gen"]
    assert any(g < ckpt for g in dc.log_generations())
    with provider.backup_prepare("DC01") as ctx:
        with pytest.raises(errors.HResultError) as e:
            ctx.truncate_logs()                         # before GetBackupLogs
        assert hr_of(e) == hrInvalidBackupSequence
        ctx.get_backup_logs()
        ctx.truncate_logs()
    assert dc.log_generations() and min(dc.log_generations()) == ckpt


def test_backup_refused_when_offline(provider, dc):
    dc.stop()
    with pytest.raises(errors.ServerUnreachable) as e:
        provider.backup_prepare("DC01")
    assert hr_of(e) == hrCouldNotConnect


@pytest.mark.parametrize("btype", [2, 4, 3, 0])
def test_only_full_backups(provider, dc, btype):
    with pytest.raises(errors.InvalidParameter) as e:
        provider.backup_prepare("DC01", backup_type=btype)
    assert hr_of(e) == ERROR_INVALID_PARAMETER


def test_grbit_must_be_zero(provider, dc):
    with pytest.raises(errors.InvalidParameter):
        provider.backup_prepare("DC01", grbit=1)


def test_one_backup_at_a_time(provider, dc):
    first = provider.backup_prepare("DC01")
    try:
        with pytest.raises(errors.BackupInProgress) as e:
            provider.backup_prepare("DC01")
        assert hr_of(e) == hrBackupInProgress
    finally:
        first.end()
    provider.backup_prepare("DC01").end()   # free again once ended


def test_backup_lock_is_per_process_too(provider, dc, tmp_path):
    """A second process sees the backup in progress; a killed process leaves none."""
    import subprocess
    import sys

    code = ("import ntdsbackup as n; p = n.open_provider(); c = p.backup_prepare('DC01');"
            "print('ready', flush=True); import sys; sys.stdin.readline()")
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        with pytest.raises(errors.BackupInProgress):
            provider.backup_prepare("DC01")
    finally:
        proc.kill()
        proc.wait()
    provider.backup_prepare("DC01").end()


def test_read_buffer_rules(provider, dc):
    with provider.backup_prepare("DC01") as ctx:
        name = unc("DC01", "ntds.dit")
        for bad in (8192, 16384, 24576 + 4096, 0):
            with pytest.raises(errors.InvalidParameter):
                ctx.open_file(name, bad)
        size = ctx.open_file(name, 24576)
        assert size == (dc.ntds_dir / "ntds.dit").stat().st_size
        for bad in (8192, 30000):
            with pytest.raises(errors.InvalidParameter):
                ctx.read(bytearray(bad))
        assert ctx.read(bytearray(24576)) == 24576
        with pytest.raises(errors.HResultError) as e:
            ctx.open_file(name, 24576)                 # one open file per handle
        assert hr_of(e) == hrAlreadyOpen
        ctx.close_file()
        with pytest.raises(errors.InvalidHandle) as e:
            ctx.close_file()                           # nothing open
        assert hr_of(e) == hrInvalidHandle
        with pytest.raises(errors.InvalidHandle):
            ctx.read(bytearray(24576))


def test_eof_is_handle_eof(provider, dc):
    with provider.backup_prepare("DC01") as ctx:
        data = read_all(ctx, unc("DC01", "ntds.dit"), 1 << 20)
        assert len(data) > 0
        ctx.open_file(unc("DC01", "ntds.dit"), 1 << 20)
        buf = bytearray(1 << 20)
        while ctx.read(buf):
            pass
        assert ctx.read(buf) == 0                      # stays at EOF
        ctx.close_file()


@pytest.mark.parametrize("name,hr", [
    (unc("DC01", "nothere.dit"), hrFileNotFound),
    ("\\\\DC01\\C$\\Windows\\System32\\config\\SAM", ERROR_INVALID_PARAMETER),
    (unc("DC01", "..\\..\\dc.conf"), ERROR_INVALID_PARAMETER),
    ("D" + unc("DC01", "ntds.dit"), ERROR_INVALID_PARAMETER),   # BFT prefix not accepted
    (unc("OTHERDC", "ntds.dit"), ERROR_INVALID_PARAMETER),
])
def test_open_file_refuses_paths_outside_the_dc(provider, dc, name, hr):
    with provider.backup_prepare("DC01") as ctx:
        with pytest.raises(errors.HResultError) as e:
            ctx.open_file(name, CHUNK)
        assert hr_of(e) == hr


def test_stale_and_bogus_handles(provider, dc):
    ctx = provider.backup_prepare("DC01")
    ctx.end()
    with pytest.raises(errors.HandleClosedError):
        ctx.get_database_names()                       # our own guard
    ctx.guard = False                                  # let the provider judge
    for call in (ctx.get_database_names, ctx.end, ctx.truncate_logs, ctx.close_file):
        with pytest.raises(errors.InvalidParameter) as e:
            call()
        assert hr_of(e) == ERROR_INVALID_PARAMETER
    bogus = provider._context_for_handle(0xDEADBEEF0)
    with pytest.raises(errors.InvalidParameter):
        bogus.get_backup_logs()
    null = provider._context_for_handle(0)
    with pytest.raises(errors.InvalidParameter):
        null.read(bytearray(CHUNK))


def test_handle_kinds_are_not_interchangeable(provider, dc):
    with provider.backup_prepare("DC01") as bctx:
        token = bctx.token
        # A backup handle may ask for database locations (2000-era SDK).
        locs = parse_multistring(bctx.get_database_locations())
        assert [e.bft for e in locs] == [BFT_CHECKPOINT_DIR, BFT_LOG_DIR, BFT_NTDS_DATABASE]
    dc.stop()
    with provider.restore_prepare("DC01", token) as rctx:
        as_backup = provider._context_for_handle(rctx.handle, "backup")
        with pytest.raises(errors.InvalidParameter):
            as_backup.get_database_names()


def test_concurrent_reads_on_separate_dcs(provider, make_dc):
    make_dc("DCA")
    make_dc("DCB", seed=7)
    results = {}

    def worker(name):
        with provider.backup_prepare(name) as ctx:
            results[name] = hashlib.sha256(read_all(ctx, unc(name, "ntds.dit"))).hexdigest()

    threads = [threading.Thread(target=worker, args=(n,)) for n in ("DCA", "DCB")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results.values())) == 2


# -- identities -----------------------------------------------------------------------

@pytest.fixture
def accounts(dc):
    cfg = dc.config()
    cfg.set_account(Account.create("CORP", "backupop", "b4ckup!", "backup", iterations=1000))
    cfg.set_account(Account.create("CORP", "dsrmadmin", "r3store!", "restore,admin",
                                   iterations=1000))
    cfg.set_account(Account.create("CORP", "nobody", "n0thing", "", iterations=1000))
    dc.save_config(cfg)
    return dc


def test_identities_and_privileges(provider, accounts):
    try:
        provider.set_auth_identity("backupop", "CORP", "b4ckup!")
        provider.backup_prepare("DC01").end()
        provider.set_auth_identity("BACKUPOP", "corp", "b4ckup!")   # case-insensitive names
        provider.backup_prepare("DC01").end()
        provider.set_auth_identity("backupop", "CORP", "B4CKUP!")   # passwords are exact
        with pytest.raises(errors.AccessDenied):
            provider.is_ntds_online("DC01")
        provider.set_auth_identity("nobody", "CORP", "n0thing")
        assert provider.is_ntds_online("DC01")                       # any valid identity
        with pytest.raises(errors.AccessDenied):
            provider.backup_prepare("DC01")
        provider.set_auth_identity("dsrmadmin", "CORP", "r3store!")
        with pytest.raises(errors.AccessDenied):
            provider.backup_prepare("DC01")                          # restore, not backup
        provider.set_auth_identity("ghost", "CORP", "x")
        with pytest.raises(errors.AccessDenied):
            provider.is_ntds_online("DC01")
    finally:
        provider.set_auth_identity(None, None, None)
    provider.backup_prepare("DC01").end()                            # process identity


def test_restore_needs_restore_and_admin(provider, accounts):
    with provider.backup_prepare("DC01") as ctx:
        token = ctx.token
    accounts.stop()
    try:
        provider.set_auth_identity("backupop", "CORP", "b4ckup!")
        with pytest.raises(errors.AccessDenied):
            provider.restore_prepare("DC01", token)
        provider.set_auth_identity("dsrmadmin", "CORP", "r3store!")
        provider.restore_prepare("DC01", token).end()
    finally:
        provider.set_auth_identity(None, None, None)


def test_default_identity_privileges(provider, dc):
    cfg = dc.config()
    cfg.default_privileges = ()
    dc.save_config(cfg)
    assert provider.is_ntds_online("DC01")
    with pytest.raises(errors.AccessDenied):
        provider.backup_prepare("DC01")


# -- restore ----------------------------------------------------------------------------

@pytest.fixture
def token(provider, dc):
    with provider.backup_prepare("DC01") as ctx:
        tok = ctx.token
    dc.stop()
    return tok


def register_args(name="DC01", gen_low=1, gen_high=3):
    return (unc(name), unc(name), [(unc(name, "ntds.dit"), unc(name, "ntds.dit"))], unc(name),
            gen_low, gen_high)


def test_restore_sequence_records_state(provider, dc, token):
    with provider.restore_prepare("DC01", token) as ctx:
        locs = parse_multistring(ctx.get_database_locations())
        assert [(e.bft, e.path) for e in locs] == [
            (BFT_CHECKPOINT_DIR, unc("DC01")), (BFT_LOG_DIR, unc("DC01")),
            (BFT_NTDS_DATABASE, unc("DC01", "ntds.dit"))]
        ctx.register(*register_args(gen_low=2, gen_high=5))
        st = dc.restore_state()
        assert (st.state, st.hr, st.gen_low, st.gen_high) == ("registered", 0, 2, 5)
        ctx.register_complete(0)
    st = dc.restore_state()
    assert (st.state, st.hr) == ("complete", 0)
    assert st.fields["checkpoint_dir"] == unc("DC01")


def test_restore_refused_while_online(provider, dc):
    with provider.backup_prepare("DC01") as ctx:
        tok = ctx.token
    with pytest.raises(errors.HResultError) as e:
        provider.restore_prepare("DC01", tok)
    assert hr_of(e) == hrError


def test_restricted_handle_without_token(provider, dc, token):
    with provider.restore_prepare("DC01", None) as ctx:
        assert ctx.restricted
        assert len(parse_multistring(ctx.get_database_locations())) == 3
        with pytest.raises(errors.ExpiryTokenError) as e:
            ctx.register(*register_args())
        assert hr_of(e) == hrMissingExpiryToken


def test_token_errors(provider, dc, token):
    with pytest.raises(errors.ExpiryTokenError) as e:
        provider.restore_prepare("DC01", b"")
    assert hr_of(e) == hrMissingExpiryToken
    damaged = bytearray(token)
    damaged[20] ^= 1
    with pytest.raises(errors.ExpiryTokenError) as e:
        provider.restore_prepare("DC01", bytes(damaged))
    assert hr_of(e) == hrUnknownExpiryTokenFormat
    for bad in (b"NTDSBEXP", token[:-1], b"x" * 64):
        with pytest.raises(errors.ExpiryTokenError) as e:
            provider.restore_prepare("DC01", bad)
        assert hr_of(e) == hrUnknownExpiryTokenFormat


def test_token_expiry_with_injected_clock(provider, dc, token):
    cfg = dc.config()
    cfg.clock_offset = 179 * 86400
    dc.save_config(cfg)
    provider.restore_prepare("DC01", token).end()          # one day left
    cfg.clock_offset = 181 * 86400
    dc.save_config(cfg)
    with pytest.raises(errors.ContentsExpired) as e:
        provider.restore_prepare("DC01", token)
    assert hr_of(e) == hrContentsExpired


@pytest.mark.parametrize("rtype", [1, 2])
def test_unsupported_restore_types(provider, dc, token, rtype):
    with pytest.raises(errors.InvalidParameter):
        provider.restore_prepare("DC01", token, restore_type=rtype)


def test_catchup_restore_type_is_allowed(provider, dc, token):
    provider.restore_prepare("DC01", token, restore_type=4).end()


def test_one_restore_registered_at_a_time(provider, dc, token):
    first = provider.restore_prepare("DC01", token)
    try:
        first.register(*register_args())
        with pytest.raises(errors.RestoreInProgress):
            first.register(*register_args())
        with provider.restore_prepare("DC01", token) as second:
            with pytest.raises(errors.RestoreInProgress) as e:
                second.register(*register_args())
            assert hr_of(e) == hrRestoreInProgress
    finally:
        first.end()
    # Ended without RegisterComplete: the record stays "registered".
    assert dc.restore_state().state == "registered"
    with provider.restore_prepare("DC01", token) as third:
        third.register(*register_args())
        third.register_complete(0xC8000226)
    assert dc.restore_state().hr == 0xC8000226


@pytest.mark.parametrize("change", [
    {"gen_low": 5, "gen_high": 4},
    {"gen_high": 0x100000},
    {"checkpoint": "\\\\DC01\\C$\\Temp"},
    {"log": unc("OTHER")},
])
def test_register_validates_its_arguments(provider, dc, token, change):
    cp, lg, rmap, blp, lo, hi = register_args()
    cp = change.get("checkpoint", cp)
    lg = change.get("log", lg)
    lo = change.get("gen_low", lo)
    hi = change.get("gen_high", hi)
    with provider.restore_prepare("DC01", token) as ctx, pytest.raises(errors.InvalidParameter):
        ctx.register(cp, lg, rmap, blp, lo, hi)
    assert dc.restore_state() is None


def test_register_complete_before_register(provider, dc, token):
    with provider.restore_prepare("DC01", token) as ctx:
        with pytest.raises(errors.HResultError) as e:
            ctx.register_complete(0)
        assert hr_of(e) == hrInvalidBackupSequence


def test_set_current_backup_log(provider, dc):
    provider.set_current_backup_log("DC01", 0xFFFFFFFF)
    assert (dc.path / "current_backup_log").read_text().strip() == str(0xFFFFFFFF)
    with pytest.raises(errors.ServerUnreachable):
        provider.set_current_backup_log("NOPE", 1)


# -- faults ------------------------------------------------------------------------------

def set_faults(dc, **faults):
    cfg = dc.config()
    cfg.set_faults(**faults)
    dc.save_config(cfg)


def test_fault_read_hr_after_bytes(provider, dc):
    set_faults(dc, read_hr=hrCommunicationError, read_after=3 * CHUNK)
    with provider.backup_prepare("DC01") as ctx:
        ctx.open_file(unc("DC01", "ntds.dit"), CHUNK)
        buf = bytearray(CHUNK)
        for _ in range(3):
            assert ctx.read(buf) == CHUNK
        with pytest.raises(errors.CommunicationError) as e:
            ctx.read(buf)
        assert hr_of(e) == hrCommunicationError


def test_fault_short_reads(provider, dc):
    set_faults(dc, short_read=5000)
    with provider.backup_prepare("DC01") as ctx:
        size = ctx.open_file(unc("DC01", "ntds.dit"), CHUNK)
        buf = bytearray(CHUNK)
        sizes, total = [], 0
        while True:
            n = ctx.read(buf)
            if n == 0:
                break
            sizes.append(n)
            total += n
        assert total == size
        assert max(sizes) <= 5000 and min(sizes) >= 1 and len(set(sizes)) > 10


def test_fault_offline_after(provider, dc):
    set_faults(dc, offline_after=2 * CHUNK)
    with provider.backup_prepare("DC01") as ctx:
        ctx.open_file(unc("DC01", "ntds.dit"), CHUNK)
        buf = bytearray(CHUNK)
        ctx.read(buf)
        ctx.read(buf)
        with pytest.raises(errors.CommunicationError):
            ctx.read(buf)
    assert dc.mode == "dsrm"
    assert provider.is_ntds_online("DC01") is False


def test_fault_truncate_and_register(provider, dc):
    set_faults(dc, truncate_hr=0xC80001FE, register_hr=0xC8000710)
    before = dc.log_generations()
    with provider.backup_prepare("DC01") as ctx:
        tok = ctx.token
        ctx.get_backup_logs()
        with pytest.raises(errors.HResultError) as e:
            ctx.truncate_logs()
        assert hr_of(e) == 0xC80001FE
    assert dc.log_generations() == before + [before[-1] + 1]   # nothing deleted
    dc.stop()
    with provider.restore_prepare("DC01", tok) as ctx:
        with pytest.raises(errors.HResultError) as e:
            ctx.register(*register_args())
        assert hr_of(e) == 0xC8000710
    assert dc.restore_state() is None


def test_fault_latency_and_bandwidth(provider, dc):
    import time

    set_faults(dc, bandwidth=4 << 20)                  # 4 MiB/s
    with provider.backup_prepare("DC01") as ctx:
        t0 = time.monotonic()
        data = read_all(ctx, unc("DC01", "ntds.dit"), 1 << 20)
        elapsed = time.monotonic() - t0
    # 4 MiB at 4 MiB/s takes about a second; the cap can only slow reads down.
    assert elapsed >= 0.6 * len(data) / (4 << 20)
    set_faults(dc, bandwidth=None, latency_us=20000)
    with provider.backup_prepare("DC01") as ctx:
        t0 = time.monotonic()
        for _ in range(5):
            provider.is_ntds_online("DC01")
        assert time.monotonic() - t0 >= 5 * 0.02 * 0.9


def test_trace_journal(provider, dc):
    cfg = dc.config()
    cfg.trace = True
    dc.save_config(cfg)
    with provider.backup_prepare("DC01") as ctx:
        ctx.get_database_names()
    lines = (dc.path / "calls.log").read_text().splitlines()
    calls = [line.split()[1] for line in lines]
    assert calls == ["DsBackupPrepareW", "DsBackupGetDatabaseNamesW", "DsBackupFree",
                     "DsBackupFree", "DsBackupEnd"]
    assert all("hr=0x00000000" in line for line in lines)

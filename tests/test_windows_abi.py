"""The Windows side of the ABI, checked against the SDK headers of mingw-w64:

- include/ntdsbcli_abi.h and src/engine/provider.c compile for Windows
  (<windows.h> + <ntdsbcli.h> + <ntdsbmsg.h>, LoadLibraryW/GetProcAddress);
- every function-pointer typedef of ours accepts the SDK's declaration;
- every constant our portable (non-Windows) branch defines has the SDK's value;
- the types have the SDK's sizes, natively and for Windows.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MINGW = "x86_64-w64-mingw32-gcc"

pytestmark = pytest.mark.skipif(shutil.which(MINGW) is None,
                                reason=f"{MINGW} is not installed (make deps installs "
                                       "gcc-mingw-w64-x86-64-win32)")

FUNCTIONS = ["IsNTDSOnlineW", "BackupPrepareW", "BackupGetDatabaseNamesW", "BackupOpenFileW",
             "BackupRead", "BackupClose", "BackupGetBackupLogsW", "BackupTruncateLogs",
             "BackupEnd", "BackupFree", "RestoreGetDatabaseLocationsW", "RestorePrepareW",
             "RestoreRegisterW", "RestoreRegisterComplete", "RestoreEnd", "SetCurrentBackupLogW",
             "SetAuthIdentityW"]
SIZES = {"HRESULT": 4, "WCHAR": 2, "BOOL": 4, "DWORD": 4, "ULONG": 4, "LONG": 4,
         "LARGE_INTEGER": 8, "HBC": 8, "EDB_RSTMAPW": 16}


def _portable_constants(tmp_path: Path) -> dict[str, int]:
    """Name -> value of every constant of our non-Windows branch, evaluated by
    the native compiler."""
    macros = subprocess.run(["cc", "-E", "-dM", "-Iinclude", "-include",
                             "include/ntdsbcli_abi.h", "-x", "c", "/dev/null"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout
    names = sorted({m for m in re.findall(r"^#define (\w+) ", macros, re.MULTILINE)
                    if re.match(r"^(hr[A-Z]|BFT_|BACKUP_TYPE_|RESTORE_TYPE_|ERROR_|RPC_S_|"
                                r"BACKUP_DISABLE)", m)})
    src = tmp_path / "values.c"
    body = "".join(f'    printf("{n}=%lu\\n", (unsigned long)(uint32_t)({n}));\n' for n in names)
    src.write_text('#include <stdio.h>\n#include "ntdsbcli_abi.h"\nint main(void)\n{\n'
                   + body + "    return 0;\n}\n")
    exe = tmp_path / "values"
    subprocess.run(["cc", "-Wall", "-Wextra", "-Werror", "-Iinclude", str(src), "-o", str(exe)],
                   cwd=ROOT, check=True)
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    return {k: int(v) for k, v in (line.split("=") for line in out.splitlines())}


def _mingw(*args: str) -> subprocess.CompletedProcess:
    # gnu11, not c11: the SDK header spells the calling convention `_stdcall`,
    # which mingw-w64 only defines outside strict ANSI mode.
    return subprocess.run([MINGW, "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-Iinclude",
                           "-fsyntax-only", *args], cwd=ROOT, capture_output=True, text=True)


def test_engine_provider_loader_compiles_for_windows(tmp_path):
    for source in ("src/engine/provider.c", "src/engine/hresult_names.c"):
        r = _mingw(source)
        assert r.returncode == 0, r.stderr


def test_typedefs_and_constants_match_the_sdk(tmp_path):
    values = _portable_constants(tmp_path)
    assert len(values) > 60 and values["BFT_LOG_DIR"] == 0x82
    lines = ['#include "ntdsbcli_abi.h"', "#include <stdint.h>", ""]
    for name, value in values.items():
        # A constant the SDK does not define is a definition of ours; list it.
        lines += [f"#ifndef {name}", f"#  define MISSING_{name} 1", "#else",
                  f"_Static_assert((uint32_t)({name}) == {value}u, \"{name}\");", "#endif"]
    for name, size in SIZES.items():
        lines.append(f'_Static_assert(sizeof({name}) == {size}, "sizeof {name}");')
    lines.append("void ntdsb_check_signatures(void);")
    lines.append("void ntdsb_check_signatures(void)\n{")
    for fn in FUNCTIONS:
        lines.append(f"    ntdsb_fn_{fn} p_{fn} = Ds{fn};\n    (void)p_{fn};")
    lines.append("}")
    src = tmp_path / "sdk_check.c"
    src.write_text("\n".join(lines) + "\n")
    r = _mingw(str(src))
    assert r.returncode == 0, r.stderr[-4000:]
    # Which of our constants does the SDK lack?  Only those we know it lacks.
    r = subprocess.run([MINGW, "-E", "-dM", "-Iinclude", str(src)], cwd=ROOT,
                       capture_output=True, text=True, check=True)
    missing = set(re.findall(r"#define MISSING_(\w+) 1", r.stdout))
    assert missing <= {"BACKUP_DISABLE_INCREMENTAL", "ERROR_SUCCESS"} | {
        n for n in missing if n.startswith("RPC_S_")}, sorted(missing)


def test_native_sizes_match_windows(tmp_path):
    src = tmp_path / "sizes.c"
    src.write_text('#include "ntdsbcli_abi.h"\n' + "".join(
        f'_Static_assert(sizeof({n}) == {s}, "sizeof {n}");\n' for n, s in SIZES.items()))
    r = subprocess.run(["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-Iinclude",
                        "-fsyntax-only", str(src)], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr

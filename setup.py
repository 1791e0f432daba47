"""Build script: declares the compiled parts only (metadata is in pyproject.toml).

Two shared objects are built:

* ``ntdsbackup._ntdsbcli`` - the Cython module over the C engine (src/engine).
* ``ntdsbackup/libntdsbemu.so`` - the emulated domain controller, a plain shared
  library exporting the ntdsbcli ABI.  The engine loads it with dlopen; Python
  never imports it.  It is declared as an Extension so that setuptools builds
  and places it (also for editable installs), with its file name fixed below.

System libraries are found in a fixed order: NTDSB_<LIB>_PREFIX, then
pkg-config with a minimum version, then an error naming the Debian package.
Set NTDSB_WERROR=1 to turn warnings into errors.
"""

import glob
import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

# (pkg-config name, minimum version, prefix variable, library, Debian package)
SYSTEM_LIBS = {
    "zstd": ("libzstd", "1.5.0", "NTDSB_ZSTD_PREFIX", "zstd", "libzstd-dev"),
    "xxhash": ("libxxhash", "0.8.0", "NTDSB_XXHASH_PREFIX", "xxhash", "libxxhash-dev"),
    "crypto": ("libcrypto", "3.0.0", "NTDSB_CRYPTO_PREFIX", "crypto", "libssl-dev"),
}

WINDOWS = sys.platform == "win32"


def find_library(key):
    """Return include_dirs/library_dirs/libraries for one system library."""
    pc_name, min_version, prefix_var, lib, deb = SYSTEM_LIBS[key]
    prefix = os.environ.get(prefix_var)
    if prefix:
        return {
            "include_dirs": [os.path.join(prefix, "include")],
            "library_dirs": [os.path.join(prefix, "lib")],
            "libraries": [lib],
        }
    try:
        import pkgconfig
    except ImportError:
        pkgconfig = None
    if pkgconfig is not None and pkgconfig.installed(pc_name, ">=" + min_version):
        flags = pkgconfig.parse(pc_name)
        return {
            "include_dirs": list(flags["include_dirs"]),
            "library_dirs": list(flags["library_dirs"]),
            "libraries": list(flags["libraries"]) or [lib],
        }
    sys.exit(
        f"error: {pc_name} >= {min_version} not found (looked at ${prefix_var}, then "
        f"pkg-config). On Debian/Ubuntu: apt-get install {deb} pkg-config"
    )


def merge(*parts):
    out = {"include_dirs": [], "library_dirs": [], "libraries": []}
    for part in parts:
        for k in out:
            out[k] += [v for v in part.get(k, []) if v not in out[k]]
    return out


def warning_flags():
    if WINDOWS:
        # MSVC: C11 with <stdatomic.h> (Visual Studio 2022 17.5 or later).
        return ["/W4", "/std:c11", "/experimental:c11atomics"]
    flags = ["-Wall", "-Wextra", "-std=c11", "-D_GNU_SOURCE"]
    if os.environ.get("NTDSB_WERROR") == "1":
        flags.append("-Werror")
    return flags


# Each OS-specific concern has two halves, <name>_posix.c and <name>_win32.c
# (src/engine/platform_*.c, src/emu/emu_os_*.c); a build takes its own.
OTHER_OS_SUFFIX = "_posix.c" if WINDOWS else "_win32.c"


def sources(pattern):
    return sorted(p for p in glob.glob(pattern) if not p.endswith(OTHER_OS_SUFFIX))


# The age payload's ChaCha20-Poly1305 and BLAKE2b-512 come from libcrypto
# (src/engine/aead_openssl.c); a build without it takes aead_none.c, whose
# calls fail cleanly (NTDSB_E_CONFIG).  Windows builds have no libcrypto.
NO_CRYPTO = WINDOWS
OTHER_AEAD_SUFFIX = "_openssl.c" if NO_CRYPTO else "_none.c"

HEADERS = sorted(glob.glob("include/*.h"))
ENGINE_SOURCES = [p for p in sources("src/engine/*.c") if not p.endswith(OTHER_AEAD_SUFFIX)]
EMU_SOURCES = sources("src/emu/*.c") + [
    # The emulator shares the ESE checksums, the HRESULT table and the
    # platform layer (locks, clock, positioned reads) with the engine.
    "src/engine/ese_checksum.c",
    "src/engine/hresult_names.c",
    "src/engine/platform_win32.c" if WINDOWS else "src/engine/platform_posix.c",
]

EMU_NAME = "ntdsbackup.libntdsbemu"


class BuildExt(build_ext):
    """build_ext that gives the emulator a plain library file name."""

    def get_ext_filename(self, fullname):
        # Called with the full dotted name and with its last part alone.
        *package, last = fullname.split(".")
        if last == EMU_NAME.rsplit(".", 1)[1]:
            return os.path.join(*package, "ntdsbemu.dll" if WINDOWS else "libntdsbemu.so")
        return super().get_ext_filename(fullname)

    def get_export_symbols(self, ext):
        if ext.name == EMU_NAME:
            return []  # no PyInit_: it is not a Python module
        return super().get_export_symbols(ext)


def extensions():
    from Cython.Build import cythonize

    libs = merge(find_library("zstd"), find_library("xxhash"),
                 {} if NO_CRYPTO else find_library("crypto"))
    engine_libs = libs["libraries"] + ([] if WINDOWS else ["pthread", "dl"])
    ext = Extension(
        "ntdsbackup._ntdsbcli",
        sources=["src/_ntdsbcli.pyx"] + ENGINE_SOURCES,
        include_dirs=["include", "src/engine"] + libs["include_dirs"],
        library_dirs=libs["library_dirs"],
        libraries=engine_libs,
        extra_compile_args=warning_flags() + ([] if WINDOWS else ["-O2"]),
        depends=HEADERS + sorted(glob.glob("src/pyx/*.pxi")) + sorted(glob.glob("src/engine/*.h")),
    )
    exts = cythonize(
        [ext],
        compiler_directives={
            "language_level": "3",
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "embedsignature": True,
        },
        include_path=["src"],
    )
    if not WINDOWS:
        crypto = find_library("crypto")
        exts.append(
            Extension(
                EMU_NAME,
                sources=EMU_SOURCES,
                include_dirs=["include", "src/emu", "src/engine"] + crypto["include_dirs"],
                library_dirs=crypto["library_dirs"],
                libraries=crypto["libraries"] + ["pthread"],
                extra_compile_args=warning_flags() + ["-O2", "-fvisibility=hidden"],
                depends=HEADERS + sorted(glob.glob("src/emu/*.h")) + ["src/engine/platform.h"],
            )
        )
    return exts


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildExt})

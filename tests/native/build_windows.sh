#!/bin/sh
# build_windows.sh - build the engine, the emulated DC and the Windows driver
# for Windows with mingw-w64 (x86_64-w64-mingw32-gcc), into $BUILD_DIR
# (default build/windows):
#
#   bin/ntdsbcli.dll      the emulated DC, exporting exactly the real DLL's
#                         names (src/emu/ntdsbcli.def)
#   bin/test_windows.exe  tests/native/test_windows.c + the engine, linked
#                         against mingw-w64's import library of the real DLL
#   warnings.log          every compiler message about our sources; the last
#                         line printed is "warnings: N"
#
# zstd: the amalgamated zstd.c bundled in the source distribution of the
# `zstandard` Python package, at the version the venv has (fetched with pip
# into $BUILD_DIR/zstd at build time, never committed), compiled once.
# xxhash: the system's header-only xxhash.h (XXH_INLINE_ALL).  Running the
# result under Wine is tests/test_windows.py's job.
#
#   PYTHON       the Python whose pip fetches zstandard (default: .venv/bin/python)
#   MINGW_CC     the compiler (default: x86_64-w64-mingw32-gcc)
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build/windows}
CC=${MINGW_CC:-x86_64-w64-mingw32-gcc}
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
BIN=$BUILD_DIR/bin
mkdir -p "$BIN" "$BUILD_DIR/include" "$BUILD_DIR/obj"

command -v "$CC" >/dev/null 2>&1 || {
    echo "build_windows.sh: $CC not found (make deps-windows installs gcc-mingw-w64-x86-64-win32)" >&2
    exit 1
}

# ---- zstd from the zstandard source distribution ------------------------------------
ZSTD_VERSION=$("$PYTHON" -c 'import zstandard; print(zstandard.__version__)')
ZDIR=$BUILD_DIR/zstd/zstandard-$ZSTD_VERSION
if [ ! -f "$ZDIR/zstd.o" ]; then
    rm -rf "$BUILD_DIR/zstd"
    mkdir -p "$BUILD_DIR/zstd"
    echo "fetching the zstandard $ZSTD_VERSION source distribution"
    "$PYTHON" -m pip download -q --no-binary :all: --no-deps "zstandard==$ZSTD_VERSION" \
        -d "$BUILD_DIR/zstd"
    tar -xzf "$BUILD_DIR/zstd/zstandard-$ZSTD_VERSION.tar.gz" -C "$BUILD_DIR/zstd"
    [ -f "$ZDIR/zstd/zstd.c" ] || {
        echo "build_windows.sh: no zstd/zstd.c in zstandard-$ZSTD_VERSION" >&2
        exit 1
    }
    echo "compiling zstd.c for Windows"
    # Not our code: its own warnings are not counted.
    "$CC" -O2 -w -I"$ZDIR/zstd" -c "$ZDIR/zstd/zstd.c" -o "$ZDIR/zstd.o.part"
    mv "$ZDIR/zstd.o.part" "$ZDIR/zstd.o"
fi

# ---- xxhash: the system header, inlined -----------------------------------------------
XXH=$(printf '#include <xxhash.h>\n' | cc -E -M -x c - 2>/dev/null | tr ' \\' '\n\n' |
    grep '/xxhash\.h$' | head -n 1)
[ -n "$XXH" ] || {
    echo "build_windows.sh: xxhash.h not found (apt-get install libxxhash-dev)" >&2
    exit 1
}
cp "$XXH" "$BUILD_DIR/include/xxhash.h"

# ---- our sources -----------------------------------------------------------------------
# -std=c11 as on Linux; __USE_MINGW_ANSI_STDIO: C99 printf (%zu, %llu) in the
# engine's messages; the third-party headers as system headers.
CFLAGS="-std=c11 -O2 -g -Wall -Wextra -D__USE_MINGW_ANSI_STDIO=1 -DXXH_INLINE_ALL
        -I$ROOT/include -I$ROOT/src/engine -I$ROOT/src/emu -I$ROOT/tests/native
        -isystem $BUILD_DIR/include -isystem $ZDIR/zstd"
LOG=$BUILD_DIR/warnings.log
: >"$LOG"

compile() { # source object
    # shellcheck disable=SC2086
    if ! "$CC" $CFLAGS -c "$1" -o "$2" 2>>"$LOG"; then
        cat "$LOG" >&2
        echo "build_windows.sh: $1 does not compile for Windows" >&2
        exit 1
    fi
}

# Sources of one side: all but the POSIX halves (*_posix.c) of each concern,
# and, there being no libcrypto here, the halves that need it (*_openssl.c;
# their *_none.c twins, which fail cleanly, are compiled instead).  A POSIX
# build takes the *_openssl.c halves and never a *_none.c (setup.py).
windows_sources() {
    ls "$@" | grep -v -e '_posix\.c$' -e '_openssl\.c$'
}

EMU_OBJS=""
for src in $(windows_sources "$ROOT"/src/emu/*.c) "$ROOT/src/engine/platform_win32.c" \
    "$ROOT/src/engine/ese_checksum.c" "$ROOT/src/engine/hresult_names.c"; do
    obj=$BUILD_DIR/obj/emu_$(basename "$src" .c).o
    compile "$src" "$obj"
    EMU_OBJS="$EMU_OBJS $obj"
done
ENGINE_OBJS=""
for src in $(windows_sources "$ROOT"/src/engine/*.c) "$ROOT/tests/native/test_windows.c"; do
    obj=$BUILD_DIR/obj/$(basename "$src" .c).o
    compile "$src" "$obj"
    ENGINE_OBJS="$ENGINE_OBJS $obj"
done

# shellcheck disable=SC2086
"$CC" -shared -static-libgcc -o "$BIN/ntdsbcli.dll" $EMU_OBJS "$ROOT/src/emu/ntdsbcli.def" \
    -lbcrypt 2>>"$LOG"
# -lntdsbcli: mingw-w64's import library of the real ntdsbcli.dll.
# shellcheck disable=SC2086
"$CC" -static-libgcc -o "$BIN/test_windows.exe" $ENGINE_OBJS "$ZDIR/zstd.o" -lntdsbcli \
    2>>"$LOG"

# ---- exports: exactly the .def's names, all of them the real DLL's ----------------------
OBJDUMP=${CC%gcc}objdump
NM=${CC%gcc}nm
"$OBJDUMP" -p "$BIN/ntdsbcli.dll" | sed -n '/\[Ordinal\/Name Pointer\] Table/,/^$/p' |
    sed -n 's/^[[:space:]]*\[ *[0-9]*\] //p' | sort >"$BUILD_DIR/exports.txt"
sed -n 's/^[[:space:]]\{1,\}\(Ds[A-Za-z]*\)[[:space:]]*$/\1/p' "$ROOT/src/emu/ntdsbcli.def" |
    sort >"$BUILD_DIR/def.txt"
IMPLIB=$("$CC" -print-file-name=libntdsbcli.a)
"$NM" "$IMPLIB" | awk '$2 == "T" {print $3}' | sort -u >"$BUILD_DIR/implib.txt"
if ! cmp -s "$BUILD_DIR/exports.txt" "$BUILD_DIR/def.txt"; then
    echo "build_windows.sh: ntdsbcli.dll exports differ from ntdsbcli.def" >&2
    diff "$BUILD_DIR/def.txt" "$BUILD_DIR/exports.txt" >&2 || true
    exit 1
fi
extra=$(comm -23 "$BUILD_DIR/exports.txt" "$BUILD_DIR/implib.txt")
if [ -n "$extra" ]; then
    echo "build_windows.sh: exports the real DLL does not have: $extra" >&2
    exit 1
fi
# The driver imports from ntdsbcli.dll, as a program linked with the SDK would.
"$OBJDUMP" -p "$BIN/test_windows.exe" | grep -q 'DLL Name: ntdsbcli.dll' || {
    echo "build_windows.sh: test_windows.exe does not import ntdsbcli.dll" >&2
    exit 1
}

echo "exports: $(wc -l <"$BUILD_DIR/exports.txt") of the real DLL's $(wc -l <"$BUILD_DIR/implib.txt")" \
    "(missing: $(comm -13 "$BUILD_DIR/exports.txt" "$BUILD_DIR/implib.txt" | tr '\n' ' '))"
echo "built $BIN/ntdsbcli.dll and $BIN/test_windows.exe"
echo "warnings: $(grep -c 'warning:' "$LOG" || true)"

#!/bin/sh
# build_emu.sh - build the emulated DC (libntdsbemu.so) and its native test
# standalone, then run the test.
#
#   tests/native/build_emu.sh [plain|asan|valgrind] [OUTDIR]
#
#   plain     -O2 -g build, run test_emu                      (default)
#   asan      -fsanitize=address,undefined build, run test_emu
#   valgrind  plain build, run under valgrind --leak-check=full
#
# OUTDIR defaults to build/native/<mode>.  NTDSB_EMU_NO_RUN=1 only builds.
# The test gets a fresh scratch emulator root (mktemp -d), removed on success.
set -eu

mode=${1:-plain}
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
out=${2:-$top/build/native/$mode}
CC=${CC:-cc}
mkdir -p "$out"

case $mode in
plain | valgrind) san="" ;;
asan) san="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" ;;
*)
    echo "usage: $0 [plain|asan|valgrind] [OUTDIR]" >&2
    exit 2
    ;;
esac

# ese_checksum.c is written by someone else; until it exists, build a
# temporary copy of the one function the emulator needs (never into src/).
ese=$top/src/engine/ese_checksum.c
if [ ! -f "$ese" ]; then
    ese=$out/ese_checksum_tmp.c
    cat >"$ese" <<'C'
#include "ntdsb_ese.h"
uint32_t ntdsb_ese_header_checksum(const uint8_t *buf, size_t len)
{
    uint32_t x = NTDSB_ESE_HEADER_SEED;
    size_t i;
    for (i = 4; i + 4 <= len; i += 4)
        x ^= (uint32_t)buf[i] | (uint32_t)buf[i + 1] << 8 | (uint32_t)buf[i + 2] << 16 |
             (uint32_t)buf[i + 3] << 24;
    return x;
}
C
fi

flags="-std=c11 -Wall -Wextra -Werror -O2 -g $san"
# The emulator's sources: src/emu/*.c but the Windows halves (*_win32.c), and
# the POSIX half of the engine's platform layer (locks, clock, pread).
emu_srcs=$(ls "$top"/src/emu/*.c | grep -v '_win32\.c$')
# shellcheck disable=SC2086
$CC $flags -fPIC -shared -fvisibility=hidden -I"$top/include" -I"$top/src/engine" \
    $emu_srcs "$top/src/engine/platform_posix.c" "$top/src/engine/hresult_names.c" "$ese" \
    -lcrypto -lpthread -o "$out/libntdsbemu.so"
# shellcheck disable=SC2086
$CC $flags -I"$top/include" "$here/test_emu.c" "$top/src/engine/provider.c" \
    "$top/src/engine/hresult_names.c" "$ese" -lcrypto -lpthread -ldl -o "$out/test_emu"

# Exactly the 17 Ds* exports, nothing else from the emulator itself.
extra=$(nm -D --defined-only "$out/libntdsbemu.so" | awk '$2 == "T" || $2 == "D" || $2 == "B" {print $3}' |
    grep -v -e '^Ds' -e '^ntdsb_' || true)
if [ -n "$extra" ]; then
    echo "unexpected exports: $extra" >&2
    exit 1
fi
nds=$(nm -D --defined-only "$out/libntdsbemu.so" | awk '$2 == "T" {print $3}' | grep -c '^Ds')
if [ "$nds" -ne 17 ]; then
    echo "expected 17 Ds* exports, found $nds" >&2
    exit 1
fi

[ "${NTDSB_EMU_NO_RUN:-0}" = 1 ] && exit 0

scratch=$(mktemp -d "${TMPDIR:-/tmp}/ntdsbemu-test.XXXXXX")
case $mode in
valgrind)
    valgrind --leak-check=full --error-exitcode=1 --track-fds=no -q \
        "$out/test_emu" "$out/libntdsbemu.so" "$scratch/root"
    ;;
*)
    "$out/test_emu" "$out/libntdsbemu.so" "$scratch/root"
    ;;
esac
rm -rf "$scratch"

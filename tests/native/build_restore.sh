#!/bin/sh
# Build (and optionally run) the native restore/verify pipeline test.
#
#   tests/native/build_restore.sh            -O2 -Werror build -> build/native/test_restore
#   tests/native/build_restore.sh asan       + -fsanitize=address,undefined -> test_restore_asan
#   tests/native/build_restore.sh tsan       + -fsanitize=thread -> test_restore_tsan
#   tests/native/build_restore.sh all        plain, asan and tsan builds, run them, plus
#                                            valgrind memcheck on the plain build
#   build/native/test_restore --bench MB     restore throughput vs zstd -d -T1
#
# The test links with --wrap=posix_memalign,--wrap=free to count the engine's
# ring allocations (see test_restore.c).  Output goes to $BUILD_DIR (default:
# build/native under the repository root).
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build/native}
CC=${CC:-cc}
mkdir -p "$BUILD_DIR"

SRCS="$ROOT/tests/native/test_restore.c
      $ROOT/src/engine/restore_pipeline.c
      $ROOT/src/engine/backup_pipeline.c
      $ROOT/src/engine/engine_util.c
      $ROOT/src/engine/sink.c
      $ROOT/src/engine/chunk_header.c
      $ROOT/src/engine/hresult_names.c
      $ROOT/src/engine/ese_generate.c
      $ROOT/src/engine/ese_checksum.c"
CFLAGS="-std=c11 -Wall -Wextra -Werror -O2 -g -pthread -I$ROOT/include -I$ROOT/src/engine"
LDFLAGS="-Wl,--wrap=posix_memalign -Wl,--wrap=free"
LIBS=$(pkg-config --cflags --libs 'libzstd >= 1.5' 'libxxhash >= 0.8')

build() { # name extra-flags
    # shellcheck disable=SC2086
    $CC $CFLAGS $2 -o "$BUILD_DIR/$1" $SRCS $LDFLAGS $LIBS
    echo "built $BUILD_DIR/$1"
}

ASAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all"
mode=${1:-plain}
case $mode in
plain) build test_restore "" ;;
asan) build test_restore_asan "$ASAN" ;;
tsan) build test_restore_tsan "-fsanitize=thread" ;;
all)
    build test_restore ""
    build test_restore_asan "$ASAN"
    build test_restore_tsan "-fsanitize=thread"
    echo "== plain";      "$BUILD_DIR/test_restore"
    echo "== asan+ubsan"; "$BUILD_DIR/test_restore_asan"
    echo "== tsan";       "$BUILD_DIR/test_restore_tsan"
    echo "== valgrind memcheck"
    valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=all \
        "$BUILD_DIR/test_restore"
    ;;
*) echo "usage: $0 [plain|asan|tsan|all]" >&2; exit 2 ;;
esac

#!/bin/sh
# Build (and optionally run) the native pipeline test.
#
#   tests/native/build_pipeline.sh            -O2 -Werror build -> build/native/test_pipeline
#   tests/native/build_pipeline.sh asan       + -fsanitize=address,undefined -> test_pipeline_asan
#   tests/native/build_pipeline.sh tsan       + -fsanitize=thread -> test_pipeline_tsan
#   tests/native/build_pipeline.sh all        the three builds, then run them, plus valgrind
#                                             memcheck and helgrind on the plain build
#
# Output goes to $BUILD_DIR (default: build/native under the repository root).
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build/native}
CC=${CC:-cc}
mkdir -p "$BUILD_DIR"

SRCS="$ROOT/tests/native/test_pipeline.c
      $ROOT/src/engine/backup_pipeline.c
      $ROOT/src/engine/engine_util.c
      $ROOT/src/engine/sink.c
      $ROOT/src/engine/chunk_header.c
      $ROOT/src/engine/hresult_names.c"
CFLAGS="-std=c11 -Wall -Wextra -Werror -O2 -g -pthread -I$ROOT/include -I$ROOT/src/engine"
LIBS=$(pkg-config --cflags --libs 'libzstd >= 1.5' 'libxxhash >= 0.8')

build() { # name extra-flags
    # shellcheck disable=SC2086
    $CC $CFLAGS $2 -o "$BUILD_DIR/$1" $SRCS $LIBS
    echo "built $BUILD_DIR/$1"
}

mode=${1:-plain}
case $mode in
plain) build test_pipeline "" ;;
asan) build test_pipeline_asan "-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" ;;
tsan) build test_pipeline_tsan "-fsanitize=thread" ;;
all)
    build test_pipeline ""
    build test_pipeline_asan "-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all"
    build test_pipeline_tsan "-fsanitize=thread"
    echo "== plain";    "$BUILD_DIR/test_pipeline"
    echo "== asan+ubsan"; "$BUILD_DIR/test_pipeline_asan"
    echo "== tsan";     "$BUILD_DIR/test_pipeline_tsan"
    echo "== valgrind memcheck"
    NTDSB_TEST_TIMING_SCALE=10 valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=all \
        "$BUILD_DIR/test_pipeline"
    echo "== valgrind helgrind"
    NTDSB_TEST_TIMING_SCALE=10 NTDSB_TEST_QUICK=1 valgrind -q --error-exitcode=1 --tool=helgrind \
        --suppressions="$ROOT/tests/native/helgrind.supp" "$BUILD_DIR/test_pipeline"
    ;;
*) echo "usage: $0 [plain|asan|tsan|all]" >&2; exit 2 ;;
esac

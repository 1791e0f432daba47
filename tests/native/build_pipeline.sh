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
. "$(dirname "$0")/common.sh"

NAME=test_pipeline
SRCS="$ROOT/tests/native/test_pipeline.c
      $ROOT/src/engine/backup_pipeline.c"
MEMCHECK_ENV="NTDSB_TEST_TIMING_SCALE=10"

all_extra() {
    echo "== valgrind helgrind"
    NTDSB_TEST_TIMING_SCALE=10 NTDSB_TEST_QUICK=1 valgrind -q --error-exitcode=1 --tool=helgrind \
        --suppressions="$ROOT/tests/native/helgrind.supp" "$BUILD_DIR/$NAME"
}

run_mode "$@"

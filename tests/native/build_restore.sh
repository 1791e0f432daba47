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
. "$(dirname "$0")/common.sh"

NAME=test_restore
SRCS="$ROOT/tests/native/test_restore.c
      $ROOT/src/engine/restore_pipeline.c
      $ROOT/src/engine/backup_pipeline.c
      $ROOT/src/engine/ese_generate.c"
LDFLAGS="-Wl,--wrap=posix_memalign -Wl,--wrap=free"

run_mode "$@"

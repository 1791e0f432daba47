#!/bin/sh
# Build (and optionally run) the native test of the ESE page checker
# (ntdsb_pages.h) on its own and inside the backup and restore pipelines.
#
#   tests/native/build_pages.sh            -O2 -Werror build -> build/native/test_pages
#   tests/native/build_pages.sh asan       + -fsanitize=address,undefined -> test_pages_asan
#   tests/native/build_pages.sh tsan       + -fsanitize=thread -> test_pages_tsan
#   tests/native/build_pages.sh all        the three builds, run them, plus valgrind memcheck
#   build/native/test_pages --bench MB     checker throughput on MB of 8 KiB pages, one thread
#
# Output goes to $BUILD_DIR (default: build/native under the repository root).
set -eu
. "$(dirname "$0")/common.sh"

NAME=test_pages
SRCS="$ROOT/tests/native/test_pages.c
      $ROOT/src/engine/restore_pipeline.c
      $ROOT/src/engine/backup_pipeline.c
      $ROOT/src/engine/ese_generate.c"

run_mode "$@"

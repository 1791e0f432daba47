#!/bin/sh
# Build (and optionally run) the native test of the age payload (ntdsb_age.h:
# chunks, output stage, reader) and of the restore engine reading through a
# callback.
#
#   tests/native/build_age.sh            -O2 -Werror build -> build/native/test_age
#   tests/native/build_age.sh asan       + -fsanitize=address,undefined -> test_age_asan
#   tests/native/build_age.sh tsan       + -fsanitize=thread -> test_age_tsan
#   tests/native/build_age.sh all        the three builds, run them, plus valgrind memcheck
#   build/native/test_age --bench MB     seal/open throughput at 1 and 2 threads
#
# Every mode also builds test_age_none (plain, or with the mode's sanitizer):
# the same engine files with aead_none.c instead of aead_openssl.c, as the
# Windows build has them; `all` runs it too.
#
# Output goes to $BUILD_DIR (default: build/native under the repository root).
set -eu
. "$(dirname "$0")/common.sh"

NAME=test_age
SRCS="$ROOT/tests/native/test_age.c
      $ROOT/src/engine/aead_openssl.c
      $ROOT/src/engine/age_chunks.c
      $ROOT/src/engine/age_out.c
      $ROOT/src/engine/age_in.c
      $ROOT/src/engine/restore_pipeline.c
      $ROOT/src/engine/backup_pipeline.c"
LDFLAGS=$(pkg-config --libs 'libcrypto >= 3.0')
CFLAGS="$CFLAGS $(pkg-config --cflags 'libcrypto >= 3.0')"

# The no-libcrypto twin: its own sources, no libcrypto.
build_none() { # name extra-flags
    # shellcheck disable=SC2086
    $CC $CFLAGS $2 -o "$BUILD_DIR/$1" "$ROOT/tests/native/test_age_none.c" \
        "$ROOT/src/engine/aead_none.c" "$ROOT/src/engine/age_chunks.c" \
        "$ROOT/src/engine/age_out.c" "$ROOT/src/engine/age_in.c" $ENGINE_SRCS $LIBS
    echo "built $BUILD_DIR/$1"
}

all_extra() {
    echo "== test_age_none"
    "$BUILD_DIR/test_age_none"
}

case ${1:-plain} in
asan) build_none test_age_none_asan "$ASAN" ;;
tsan) build_none test_age_none_tsan "$TSAN" ;;
*) build_none test_age_none "" ;;
esac
run_mode "$@"

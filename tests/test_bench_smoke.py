"""A tiny run of every benchmark path, so the harness cannot rot.  No timing is
asserted here: the targets live in benchmarks/ (make bench)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ntdsbackup import bench

TINY = 8 << 20
ROOT = Path(__file__).resolve().parents[1]


def test_comparison_report_shape(tmp_path):
    r = bench.compare(TINY, repeat=1, work_dir=str(tmp_path), chunk_size=256 << 10)
    assert set(r["backup"]) == {"engine", "engine-serial", "python-loop", "zstd-cli",
                                "engine-age"}
    assert set(r["restore"]) == {"engine-restore", "zstd-d", "zstd-d-1thread",
                                 "engine-restore-age"}
    for s in [*r["backup"].values(), *r["restore"].values()]:
        assert s["runs"] == 1 and s["mb_per_s_median"] > 0 and s["bytes"] > 0
        assert 1 < s["max_rss_mib"] < 1024 and s["cpu_seconds_median"] >= 0
    assert set(r["backup_ratios"]) == {"engine/engine-serial", "engine/python-loop",
                                       "engine/zstd-cli", "engine/engine-age"}
    assert "engine-restore/engine-restore-age" in r["restore_ratios"]
    # Each backup rolls a log generation and none truncates, so the engine's
    # measured run (after a warm-up round of every contender) carries more
    # logs, which compress far better than pages, the more contenders there are.
    assert 2.5 < r["compression_ratio"] < 8
    assert not list(tmp_path.iterdir()), "the bench left files behind"


def test_sweep_and_plot(tmp_path):
    pytest.importorskip("matplotlib", reason="the plot extra (matplotlib) is not installed")
    from ntdsbackup.bench.plot import plot_sweeps

    r = bench.sweep(TINY, ["ring"], repeat=1, work_dir=str(tmp_path))
    rows = r["sweeps"]["ring"]
    assert [row["value"] for row in rows] == [2, 3, 4, 8]
    png = tmp_path / "sweep.png"
    plot_sweeps(r, str(png))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_latency_model_report(tmp_path):
    r = bench.latency_model(TINY, repeat=1, work_dir=str(tmp_path))
    for key in ("compress_rate_mb_s", "read_rate_mb_s", "pipelined_mb_s", "serial_mb_s",
                "pipelined_over_min", "serial_over_model"):
        assert r[key] > 0
    assert r["bandwidth_cap"] > 0 and r["latency_us"] > 0
    assert set(r["runs"]) == {"engine-free-reads", "serial-free-reads", "read-only",
                              "engine-pipelined", "engine-serial"}


def test_cli_bench_json(tmp_path):
    out = subprocess.run([sys.executable, "-m", "ntdsbackup", "bench", "--size", "4MiB",
                          "--repeat", "1", "--no-restore", "--json", "--work-dir",
                          str(tmp_path)], capture_output=True, text=True, check=True)
    line = json.loads(out.stdout)
    assert (line["event"], line["schema"], line["kind"]) == ("bench", 1, "compare")
    assert line["report"]["backup"]["engine"]["runs"] == 1


def test_benchmark_suite_still_runs(tmp_path):
    """The pytest-benchmark suite, once, tiny, with timing disabled."""
    env = dict(os.environ, NTDSB_BENCH_SIZE="4MiB", NTDSB_BENCH_WORK_DIR=str(tmp_path))
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "--benchmark-disable", str(ROOT / "benchmarks" / "test_throughput.py")],
                       capture_output=True, text=True, env=env, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert " passed" in r.stdout

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
from ntdsbackup.bench.compare import replacing
from ntdsbackup.bench.report import comparison_text
from ntdsbackup.bench.runners import parse_zstd_bench

TINY = 8 << 20
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def comparison(tmp_path_factory):
    work = tmp_path_factory.mktemp("bench")
    r = bench.compare(TINY, repeat=1, work_dir=str(work), chunk_size=256 << 10)
    assert not list(work.iterdir()), "the bench left files behind"
    return r


def test_comparison_report_shape(comparison):
    r = comparison
    assert set(r["backup"]) == {"engine", "engine-serial", "python-loop", "zstd-cli", "pzstd",
                                "engine-age", "engine-no-pages"}
    assert set(r["verify"]) == {"engine-verify", "pzstd-t", "zstd-t"}
    assert set(r["restore"]) == {"engine-restore", "zstd-d", "zstd-d-1thread", "pzstd-d",
                                 "engine-restore-age"}
    for s in [*r["backup"].values(), *r["verify"].values(), *r["restore"].values()]:
        assert s["runs"] == 1 and s["mb_per_s_median"] > 0 and s["bytes"] > 0
        assert 1 < s["max_rss_mib"] < 1024 and s["cpu_seconds_median"] >= 0
    assert set(r["backup_ratios"]) == {"engine/engine-serial", "engine/python-loop",
                                       "engine/zstd-cli", "engine/pzstd", "engine/engine-age",
                                       "engine/engine-no-pages", "engine/compression-limit"}
    assert set(r["verify_ratios"]) == {"engine-verify/pzstd-t", "engine-verify/zstd-t",
                                       "engine-verify/decompression-limit"}
    assert set(r["restore_ratios"]) == {
        "engine-restore/zstd-d", "engine-restore/zstd-d-1thread", "engine-restore/pzstd-d",
        "engine-restore/engine-restore-age", "engine-restore/copy-limit"}
    assert all(v > 0 for t in ("backup", "verify", "restore")
               for v in r[f"{t}_ratios"].values())
    # Each backup rolls a log generation and none truncates, so the engine's
    # measured run (after a warm-up round of every contender) carries more
    # logs, which compress far better than pages, the more contenders there are.
    assert 2.5 < r["compression_ratio"] < 8


def test_comparison_limits(comparison):
    limits = comparison["limits"]
    assert set(limits) == {"backup", "verify", "restore"}
    assert [limits[t]["name"] for t in ("backup", "verify", "restore")] == [
        "compression-limit", "decompression-limit", "copy-limit"]
    n = comparison["threads"]
    for table in ("backup", "verify"):
        lim = limits[table]
        # N x the single-core rate of zstd -b (MB/s of 10^6 bytes, as ours).
        assert lim["cores"] == n and lim["single_core_mb_per_s_median"] > 0
        assert lim["mb_per_s_median"] == pytest.approx(n * lim["single_core_mb_per_s_median"],
                                                       rel=0.01)
        assert lim["cpu_seconds_median"] is None and lim["max_rss_mib"] is None
        assert lim["bytes"] == comparison["backup"]["zstd-cli"]["bytes"]
    assert limits["restore"]["bytes"] == comparison["restore"]["pzstd-d"]["bytes"]
    for lim in limits.values():
        assert lim["what"] and lim["runs"] == 1 and lim["mb_per_s_median"] > 0
    eng = comparison["backup"]["engine"]["mb_per_s_median"]
    assert comparison["backup_ratios"]["engine/compression-limit"] == pytest.approx(
        eng / limits["backup"]["mb_per_s_median"], rel=0.01)


def test_comparison_text_has_every_row_and_says_what_it_includes(comparison):
    text = comparison_text(comparison)
    lines = text.splitlines()
    for name in ("pzstd", "compression-limit", "engine-verify", "pzstd-t", "zstd-t",
                 "decompression-limit", "pzstd-d", "copy-limit"):
        row = next(line for line in lines if line.split()[:1] == [name])
        assert len(row.split()) > 6, row          # the figures, then what they include
    n = comparison["threads"]
    assert f"pzstd -1 -p {n} of ntds.dit" in text and f"pzstd -t -p {n}" in text
    assert f"LIMIT: {n} x zstd -b1's single-core compression rate" in text
    assert f"LIMIT: {n} x zstd -b1's single-core decompression rate" in text
    assert "LIMIT: cp of the same ntds.dit, the same life cycle" in text
    for key in ("engine/pzstd", "engine/compression-limit", "engine-verify/pzstd-t",
                "engine-restore/pzstd-d", "engine-restore/copy-limit"):
        assert any(line.split()[:1] == [key] for line in lines), key
    assert any(line.startswith("  engine/compression-limit") and "of the limit" in line
               for line in lines)
    assert "verify (nothing written)" in lines


# zstd -b's result line as zstd prints it: 1.5.4 (\r-separated progress
# first), 1.5.4 with -q, and 1.4.x.
ZSTD_154 = ("Loading ntds.dit...       \r |-ntds.dit          :  90655837 -> \r"
            " |-ntds.dit          :  90655837 ->  68325926 (x1.327),  511.4 MB/s \r"
            " |-ntds.dit          :  90655837 ->  68325926 (x1.327),  511.4 MB/s, "
            "1325.5 MB/s\r 1#\n")
ZSTD_154_Q = ("bench 1.5.4 : input 90655837 bytes, 1 seconds, 0 KB blocks\n"
              "-1     68325926 (1.327) 531.85 MB/s 1295.7 MB/s  ntds.dit\n")
ZSTD_14 = " 1#ntds.dit          : 1073741824 -> 254301110 (4.222), 612.3 MB/s ,2045.1 MB/s \n"


@pytest.mark.parametrize("output,rates", [
    (ZSTD_154, (511.4, 1325.5)), (ZSTD_154_Q, (531.85, 1295.7)), (ZSTD_14, (612.3, 2045.1)),
])
def test_parse_zstd_bench(output, rates):
    assert parse_zstd_bench(output) == rates


def test_parse_zstd_bench_refuses_output_without_both_rates():
    with pytest.raises(ValueError, match="zstd -b"):
        parse_zstd_bench(" |-ntds.dit : 90655837 ->  68325926 (x1.327),  511.4 MB/s \r")


def test_replacing_gives_the_restore_life_cycle(tmp_path):
    target = tmp_path / "ntds.dit"
    target.write_bytes(b"old")
    staging, before, after = replacing(target)
    assert staging.parent == target.parent and staging != target
    staging.write_bytes(b"stale")
    before()                                  # untimed: a stale staging file is cleared
    assert not staging.exists() and target.read_bytes() == b"old"
    staging.write_bytes(b"new")               # the peer writes beside the old file
    after()
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ntds.dit"]   # old one deleted


def test_sweep_and_plot(tmp_path):
    pytest.importorskip("matplotlib", reason="the plot extra (matplotlib) is not installed")
    from ntdsbackup.bench.plot import plot_sweeps

    r = bench.sweep(TINY, ["ring"], repeat=1, work_dir=str(tmp_path))
    rows = r["sweeps"]["ring"]
    assert [row["value"] for row in rows] == [2, 3, 4, 8]
    png = tmp_path / "sweep.png"
    plot_sweeps(r, str(png))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_scale_report_and_plot(tmp_path):
    pytest.importorskip("matplotlib", reason="the plot extra (matplotlib) is not installed")
    from ntdsbackup.bench.plot import plot_scale
    from ntdsbackup.bench.report import scale_text

    r = bench.scale([TINY * 2, TINY], repeat=1, work_dir=str(tmp_path))
    assert r["sizes"] == [TINY, TINY * 2] and r["reference_size"] == TINY * 2
    for row in r["rows"]:
        assert row["backup"]["mb_per_s_median"] > 0 and row["restore"]["mb_per_s_median"] > 0
        assert row["backup"]["max_rss_mib"] > 1
    assert r["rows"][1]["backup_vs_reference"] == 1.0
    text = scale_text(r)
    assert f"{TINY >> 20:>5} MiB" in text and "against" in text
    png = tmp_path / "scale.png"
    plot_scale(r, str(png))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in tmp_path.iterdir() if p.name != "scale.png"], "files left behind"


def test_latency_model_report(tmp_path):
    r = bench.latency_model(TINY, repeat=1, work_dir=str(tmp_path))
    for key in ("compress_rate_mb_s", "read_rate_mb_s", "pipelined_mb_s", "serial_mb_s",
                "pipelined_over_min", "serial_over_model"):
        assert r[key] > 0
    assert r["bandwidth_cap"] > 0 and r["latency_us"] > 0
    # interleaved rounds: one per repeat, each with its own overlap figure
    assert len(r["rounds"]) == 1 and r["rounds"][0]["overlap"] == r["pipelined_over_min"]
    lo, hi = r["pipelined_over_min_spread"]
    assert lo <= r["pipelined_over_min"] <= hi
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

"""The performance targets, measured side by side in one run (ratios, never
absolute times): `ntdsbackup bench`'s comparison and its latency model."""

from __future__ import annotations

import json
import os

import pytest

from ntdsbackup import bench

from .conftest import REPEAT, SIZE, work_base

RESULTS = os.environ.get("NTDSB_BENCH_RESULTS", ".benchmarks/targets.json")


def _save(name: str, data: dict) -> None:
    os.makedirs(os.path.dirname(RESULTS) or ".", exist_ok=True)
    try:
        with open(RESULTS) as fh:
            all_results = json.load(fh)
    except (OSError, ValueError):
        all_results = {}
    all_results[name] = data
    with open(RESULTS, "w") as fh:
        json.dump(all_results, fh, indent=1)


@pytest.fixture(scope="module")
def comparison():
    report = bench.compare(SIZE, repeat=REPEAT, work_dir=work_base())
    _save("comparison", report)
    return report


def test_backup_vs_zstd_cli(comparison):
    assert comparison["backup_ratios"]["engine/zstd-cli"] >= 0.9


def test_backup_vs_python_loop(comparison):
    assert comparison["backup_ratios"]["engine/python-loop"] >= 1.7


def test_backup_peak_rss(comparison):
    assert comparison["backup"]["engine"]["max_rss_mib"] < 256


def test_restore_vs_zstd_d(comparison):
    # The target is against single-threaded zstd -d.  The zstd CLI's default
    # also writes on a second thread; that ratio is reported, not asserted.
    assert comparison["restore_ratios"]["engine-restore/zstd-d-1thread"] >= 1.5


# Issue 14: against the strongest stock parallel peer (pzstd, with as many
# threads as the engine) and against this machine's limits, 1 GiB on tmpfs.

def test_backup_vs_pzstd(comparison):
    assert comparison["backup_ratios"]["engine/pzstd"] >= 1.1


def test_backup_vs_compression_limit(comparison):
    # The limit: threads x zstd -b's single-core compression rate on the file.
    assert comparison["backup_ratios"]["engine/compression-limit"] >= 0.8


def test_restore_vs_pzstd_d(comparison):
    # pzstd -d has the restore's file life cycle (beside, fsync, rename, delete).
    assert comparison["restore_ratios"]["engine-restore/pzstd-d"] >= 1.2


def test_restore_vs_copy_limit(comparison):
    # The limit: cp of the same bytes with the same file life cycle.
    assert comparison["restore_ratios"]["engine-restore/copy-limit"] >= 0.9


def test_verify_vs_pzstd_t(comparison):
    # pzstd -t: its parallel decompression to nothing.
    assert comparison["verify_ratios"]["engine-verify/pzstd-t"] >= 1.1


def test_latency_model_overlap():
    report = bench.latency_model(min(SIZE, 512 << 20), repeat=REPEAT, work_dir=work_base())
    _save("latency_model", report)
    assert report["pipelined_over_min"] >= 0.9


def test_encryption_costs_at_most_ten_percent_of_a_backup(comparison):
    # engine/engine-age: plain over encrypted, same run, same DC.
    assert comparison["backup_ratios"]["engine/engine-age"] <= 1 / 0.9


def test_page_checks_cost_at_most_five_percent_of_a_backup(comparison):
    # engine/engine-no-pages: with the checks over without, same run, same DC.
    assert comparison["backup_ratios"]["engine/engine-no-pages"] >= 0.95


def test_decryption_costs_at_most_ten_percent_of_a_restore(comparison):
    assert comparison["restore_ratios"]["engine-restore/engine-restore-age"] <= 1 / 0.9


SCALE_SIZES = [256 << 20, 1 << 30, 4 << 30]


@pytest.fixture(scope="module")
def scaling():
    report = bench.scale(SCALE_SIZES, repeat=REPEAT, work_dir=work_base())
    _save("scale", report)
    return report


@pytest.mark.parametrize("op", ["backup", "restore"])
def test_throughput_holds_from_256_mib_to_4_gib(scaling, op):
    # Within 10% of the 1 GiB figure at every size (a small one may be
    # faster: nothing is asserted above).
    for row in scaling["rows"]:
        assert row[f"{op}_vs_reference"] >= 1 - scaling["target_within"], row


@pytest.mark.parametrize("op", ["backup", "restore"])
def test_peak_memory_does_not_grow_with_the_database(scaling, op):
    for row in scaling["rows"]:
        assert row[f"{op}_rss_vs_reference"] <= 1 + scaling["target_within"], row

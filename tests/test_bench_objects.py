"""`ntdsbackup bench --target s3://...`: the engine's upload and download,
and the storage layer's transfers alone, side by side with rclone on the
real radosgw of the `s3` fixture."""

from __future__ import annotations

import json
import subprocess
import sys

from ntdsbackup import bench
from ntdsbackup.bench.report import object_text
from ntdsbackup.storage import list_objects

TINY = 8 << 20


def test_engine_and_rclone_move_the_same_archive(s3, tmp_path):
    bucket = s3.create_bucket()
    r = bench.object_bench(f"s3://{bucket}/bench", TINY, repeat=1, work_dir=str(tmp_path))
    assert set(r["upload"]) == {"engine-upload", "rclone-upload"}
    assert set(r["download"]) == {"engine-download", "rclone-download"}
    for s in [*r["upload"].values(), *r["download"].values()]:
        # every rate counts archive bytes: rclone's the very file, the
        # engine's its own archive of the same DC (its times differ by a few bytes)
        assert s["runs"] == 1 and abs(s["bytes"] - r["archive_bytes"]) < 0.01 * s["bytes"]
        assert s["mb_per_s_median"] > 0 and s["max_rss_mib"] > 1
    assert r["upload"]["rclone-upload"]["bytes"] == r["archive_bytes"] > 0
    assert set(r["upload_ratios"]) == {"engine-upload/rclone-upload"}
    assert set(r["download_ratios"]) == {"engine-download/rclone-download"}
    text = object_text(r)
    assert "rclone" in text and "storage-upload/rclone-upload" in text
    assert "storage-download/rclone-download" in text
    # Transfer only: the storage layer moving the finished archive file, in
    # the same rounds as rclone, whose runs are those of the rows above.
    assert set(r["transfer_upload"]) == {"storage-upload", "rclone-upload"}
    assert set(r["transfer_download"]) == {"storage-download", "rclone-download"}
    assert r["transfer_upload"]["rclone-upload"] == r["upload"]["rclone-upload"]
    assert r["transfer_download"]["rclone-download"] == r["download"]["rclone-download"]
    for table in ("transfer_upload", "transfer_download"):
        for s in r[table].values():
            assert s["runs"] == 1 and s["bytes"] == r["archive_bytes"]
            assert s["mb_per_s_median"] > 0 and s["max_rss_mib"] > 1
    assert set(r["transfer_upload_ratios"]) == {"storage-upload/rclone-upload"}
    assert set(r["transfer_download_ratios"]) == {"storage-download/rclone-download"}
    _ratios_from_rates(r, "upload", "storage-upload", "rclone-upload")
    _ratios_from_rates(r, "download", "storage-download", "rclone-download")
    # the run cleans up after itself
    assert list(list_objects(bucket, "bench/", all_versions=True)) == []
    assert not list(tmp_path.iterdir())


def _ratios_from_rates(r: dict, kind: str, ours: str, peer: str) -> None:
    """The ratio is the measured rates' (one round: exactly their quotient,
    up to the rounding of the rates), and its spread that one round's."""
    table = r[f"transfer_{kind}"]
    key = f"{ours}/{peer}"
    expected = table[ours]["mb_per_s_median"] / table[peer]["mb_per_s_median"]
    assert abs(r[f"transfer_{kind}_ratios"][key] - expected) <= 0.01 * expected + 0.002
    lo, hi = r[f"transfer_{kind}_ratio_spreads"][key]
    assert lo == hi == r[f"transfer_{kind}_ratios"][key]


def test_storage_rows_for_other_settings(s3, tmp_path):
    bucket = s3.create_bucket()
    r = bench.object_bench(f"s3://{bucket}/bench", TINY, repeat=1, work_dir=str(tmp_path),
                           upload_settings=[{"part_size": 5 << 20, "max_in_flight": 2}],
                           download_settings=[{"block": 4 << 20, "parallel": 2}])
    assert set(r["transfer_upload"]) == {"storage-upload", "storage-upload-flight2-part5m",
                                         "rclone-upload"}
    assert set(r["transfer_download"]) == {"storage-download",
                                           "storage-download-block4m-par2",
                                           "rclone-download"}
    assert set(r["transfer_upload_ratios"]) == {"storage-upload/rclone-upload",
                                                "storage-upload-flight2-part5m/rclone-upload"}
    _ratios_from_rates(r, "upload", "storage-upload-flight2-part5m", "rclone-upload")
    _ratios_from_rates(r, "download", "storage-download-block4m-par2", "rclone-download")
    assert list(list_objects(bucket, "bench/", all_versions=True)) == []


def test_cli_target_needs_an_s3_prefix():
    r = subprocess.run([sys.executable, "-m", "ntdsbackup", "bench", "--target", "/tmp/x"],
                       capture_output=True)
    assert r.returncode == 2 and b"s3://BUCKET" in r.stderr


def test_cli_bench_target_json(s3, tmp_path):
    bucket = s3.create_bucket()
    r = subprocess.run([sys.executable, "-m", "ntdsbackup", "bench", "--target",
                        f"s3://{bucket}", "--size", "4MiB", "--repeat", "1", "--json",
                        "--work-dir", str(tmp_path)], capture_output=True)
    assert r.returncode == 0, r.stderr
    event = json.loads(r.stdout.decode().splitlines()[-1])
    assert event["event"] == "bench" and event["kind"] == "objects"
    assert event["report"]["upload_ratios"]["engine-upload/rclone-upload"] > 0
    assert event["report"]["transfer_upload_ratios"]["storage-upload/rclone-upload"] > 0
    assert event["report"]["transfer_download_ratios"]["storage-download/rclone-download"] > 0

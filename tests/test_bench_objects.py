"""`ntdsbackup bench --target s3://...`: the engine's upload and download
side by side with rclone on the real radosgw of the `s3` fixture."""

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
    assert "rclone" in object_text(r)
    # the run cleans up after itself
    assert list(list_objects(bucket, "bench/", all_versions=True)) == []
    assert not list(tmp_path.iterdir())


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

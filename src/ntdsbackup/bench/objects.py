"""The engine against rclone on the same object store (``ntdsbackup bench
--target s3://BUCKET/PREFIX``).

Upload: the engine's backup streaming its archive into a multipart upload
(compressing as it goes), against `rclone copyto` of that very archive file
to the same server.  Download: the engine's verify reading the object
through its parallel ranged reads (every chunk decompressed and checked),
against `rclone cat` of the same object to nothing.  Every rate counts
archive bytes, the bytes that cross the network; peak RSS beside it.  With
client and server on one small machine the absolute rates mean little: read
the ratios.

rclone is pointed at the server through its environment (an "s3" remote
named after the run, provider Ceph, credentials from the AWS variables):
nothing secret on a command line.  The run's objects are deleted at the end.
"""

from __future__ import annotations

import os
import shutil

from .compare import Bench, _py, bench_workspace, ratio_spreads, ratios
from .harness import Contender, alternate, measure

REMOTE = "NTDSBBENCH"


def rclone_environment() -> dict[str, str]:
    """RCLONE_CONFIG_* for the remote REMOTE: the server of $NTDSB_S3_ENDPOINT
    (or $AWS_ENDPOINT_URL), its keys read by rclone from the AWS variables."""
    from ..storage.location import endpoint_url

    env = {f"RCLONE_CONFIG_{REMOTE}_TYPE": "s3", f"RCLONE_CONFIG_{REMOTE}_PROVIDER": "Ceph",
           f"RCLONE_CONFIG_{REMOTE}_ENV_AUTH": "true",
           f"RCLONE_CONFIG_{REMOTE}_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1")}
    endpoint = endpoint_url()
    if endpoint:
        env[f"RCLONE_CONFIG_{REMOTE}_ENDPOINT"] = endpoint
    if os.environ.get("AWS_CA_BUNDLE"):
        # rclone's SDK cannot load AWS_CA_BUNDLE into its own HTTP client
        # (it refuses to start); its --ca-cert takes the same file.
        env["RCLONE_CA_CERT"] = os.environ["AWS_CA_BUNDLE"]
    return env


def _rclone(*args: str) -> list[str]:
    """An rclone command line without AWS_CA_BUNDLE in its environment (see
    rclone_environment), nothing secret on it."""
    return ["env", "-u", "AWS_CA_BUNDLE", "rclone", *args]


def object_bench(target: str, size: int, *, work_dir: str | None = None, repeat: int = 3,
                 level: int = 1, threads: int = 0, chunk_size: int = 1 << 20,
                 on_run=None) -> dict:
    """Upload and download side by side with rclone; a JSON-ready report."""
    from ..storage import delete, list_objects, parse_location

    if shutil.which("rclone") is None:
        raise RuntimeError("rclone is the peer here: apt-get install rclone")
    base = parse_location(target.rstrip("/") + "/")
    threads = threads or os.cpu_count() or 1

    def url(name: str) -> str:
        return f"s3://{base.bucket}/{base.key}{name}"

    def remote(name: str) -> str:
        return f"{REMOTE}:{base.bucket}/{base.key}{name}"

    with bench_workspace(work_dir) as work:
        b = Bench(work, size=size)
        env = dict(b.env, **rclone_environment())
        common = ["--root", b.root, "--server", b.dc.name, "--level", level, "--chunk-size",
                  chunk_size, "--threads", threads, "--count", "stored"]
        local = b.out / "archive.tar.zst"
        measure(Contender("archive", _py("engine-backup", *common, "--out", local)), env)
        stored = local.stat().st_size
        up = [Contender("engine-upload", _py("engine-backup", *common, "--out",
                                              url("engine.tar.zst"))),
              # --no-check-dest: upload every round (rclone skips an unchanged file)
              Contender("rclone-upload", _rclone("copyto", "--s3-no-check-bucket",
                                                 "--no-check-dest", str(local),
                                                 remote("rclone.tar.zst")), nbytes=stored)]
        try:
            alternate(up, repeat, env, on_run)
            down = [Contender("engine-download", _py("engine-verify", "--archive",
                                                    url("engine.tar.zst"), "--threads",
                                                    threads, "--count", "stored", "--out",
                                                    b.out / "unused")),
                    Contender("rclone-download",
                              ["sh", "-c", f'exec {" ".join(_rclone("cat"))} '
                                           f'"{remote("rclone.tar.zst")}" >/dev/null'],
                              nbytes=stored)]
            alternate(down, repeat, env, on_run)
        finally:
            for entry in list(list_objects(base.bucket, base.key, all_versions=True)):
                delete(entry.location, entry.version_id)
    return {"target": f"s3://{base.bucket}/{base.key}", "size": size, "archive_bytes": stored,
            "repeat": repeat, "threads": threads, "level": level, "chunk_size": chunk_size,
            "upload": {c.name: c.summary() for c in up},
            "upload_ratios": ratios(up[0], up[1:]), "upload_ratio_spreads":
                ratio_spreads(up[0], up[1:]),
            "download": {c.name: c.summary() for c in down},
            "download_ratios": ratios(down[0], down[1:]),
            "download_ratio_spreads": ratio_spreads(down[0], down[1:])}

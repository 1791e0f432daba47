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

Those rows compare unlike work (the engine compresses while it uploads and
decompresses and hashes while it reads), so transfer-only rows stand beside
them, alternated in the same rounds: the storage layer alone uploading the
finished archive file (S3Upload fed from the file in pieces, as the
backup's sink feeds it) against the same `rclone copyto`, and the storage
layer alone reading rclone's object to nothing (S3Reader's pipe feed, the
path verify takes) against the same `rclone cat`.  Both are timed inside
their child from the opening of the upload or reader to the end (the
HEAD check of a completed upload included); rclone's wall time includes its
start (a few ms).  Extra storage rows with other part sizes, parts in
flight, block sizes or parallelism can be asked for (`upload_settings`,
`download_settings`), to measure those settings side by side.

rclone is pointed at the server through its environment (an "s3" remote
named after the run, provider Ceph, credentials from the AWS variables):
nothing secret on a command line.  The run's objects are deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time

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


def _mib(n: int) -> str:
    return f"{n >> 20}m" if n % (1 << 20) == 0 else f"{n >> 10}k"


def _setting_name(kind: str, settings: dict) -> str:
    """storage-upload, or storage-upload-part16m-flight2 for other settings."""
    if not settings:
        return f"storage-{kind}"
    short = {"part_size": "part", "max_in_flight": "flight", "block": "block",
             "parallel": "par"}
    return f"storage-{kind}-" + "-".join(
        f"{short[k]}{_mib(v) if k in ('part_size', 'block') else v}"
        for k, v in sorted(settings.items()))


def _settings_args(settings: dict) -> list[str]:
    return [a for k, v in sorted(settings.items()) for a in (f"--{k.replace('_', '-')}", str(v))]


def object_bench(target: str, size: int, *, work_dir: str | None = None, repeat: int = 3,
                 level: int = 1, threads: int = 0, chunk_size: int = 1 << 20,
                 on_run=None, upload_settings: list[dict] | None = None,
                 download_settings: list[dict] | None = None) -> dict:
    """Upload and download side by side with rclone; a JSON-ready report.

    upload_settings / download_settings: extra storage-layer rows, each a
    dict of S3Upload options (part_size, max_in_flight) or S3Reader options
    (block, parallel); the defaults' row is always there."""
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
        # Transfer only, in the same rounds (rclone's runs serve both tables).
        up_only = [Contender(_setting_name("upload", o), _self(
            "storage-upload", str(local), url(f"storage-{i}.tar.zst"), *_settings_args(o)))
            for i, o in enumerate([{}, *(upload_settings or [])])]
        try:
            alternate(up + up_only, repeat, env, on_run)
            down = [Contender("engine-download", _py("engine-verify", "--archive",
                                                    url("engine.tar.zst"), "--threads",
                                                    threads, "--count", "stored", "--out",
                                                    b.out / "unused")),
                    Contender("rclone-download",
                              ["sh", "-c", f'exec {" ".join(_rclone("cat"))} '
                                           f'"{remote("rclone.tar.zst")}" >/dev/null'],
                              nbytes=stored)]
            down_only = [Contender(_setting_name("download", o), _self(
                "storage-download", url("rclone.tar.zst"), *_settings_args(o)))
                for o in [{}, *(download_settings or [])]]
            alternate(down + down_only, repeat, env, on_run)
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
            "download_ratio_spreads": ratio_spreads(down[0], down[1:]),
            **_transfer("upload", up_only, up[1]), **_transfer("download", down_only, down[1])}


def _transfer(kind: str, ours: list[Contender], rclone: Contender) -> dict:
    """transfer_KIND: the storage rows and rclone's; transfer_KIND_ratios
    and _ratio_spreads: each storage row's rate over rclone's, per round."""
    return {f"transfer_{kind}": {c.name: c.summary() for c in [*ours, rclone]},
            f"transfer_{kind}_ratios": {k: v for c in ours for k, v in ratios(c, [rclone]).items()},
            f"transfer_{kind}_ratio_spreads": {k: v for c in ours
                                               for k, v in ratio_spreads(c, [rclone]).items()}}


# -- the storage layer's own rows, each run in a child process ---------------

PIECE = 1 << 20          # the pieces the file is read and written in (the default chunk size)


def _self(*args: str) -> list[str]:
    return [sys.executable, "-m", __name__, *args]


def _storage_upload(args) -> dict:
    from ..storage import S3Upload, parse_location

    options = {k: v for k, v in (("part_size", args.part_size),
                                 ("max_in_flight", args.max_in_flight)) if v}
    with open(args.file, "rb", buffering=0) as fh:
        t0 = time.monotonic()
        with S3Upload(parse_location(args.url), **options) as upload:
            while piece := fh.read(PIECE):
                upload.write(piece)
            result = upload.commit()
        seconds = time.monotonic() - t0
    return {"bytes": result.size, "seconds": seconds}


def _storage_download(args) -> dict:
    from ..storage import S3Reader, parse_location

    options = {k: v for k, v in (("block", args.block), ("parallel", args.parallel)) if v}
    t0 = time.monotonic()
    got = 0
    with S3Reader(parse_location(args.url), **options) as reader:
        feed = reader.pipe_feed()
        try:
            buffer = bytearray(PIECE)
            while n := os.readv(feed.fd, [buffer]):
                got += n
        finally:
            feed.cancel()
            feed.join()
            os.close(feed.fd)
        feed.check()
        if got != reader.size:
            raise RuntimeError(f"read {got} of {reader.size} bytes")
    return {"bytes": got, "seconds": time.monotonic() - t0}


def main(argv: list[str] | None = None) -> int:
    from ..platform.processes import peak_rss_kib

    ap = argparse.ArgumentParser(prog="python -m ntdsbackup.bench.objects")
    sub = ap.add_subparsers(dest="kind", required=True)
    up = sub.add_parser("storage-upload")
    up.add_argument("file")
    up.add_argument("url")
    up.add_argument("--part-size", type=int, default=0)
    up.add_argument("--max-in-flight", type=int, default=0)
    down = sub.add_parser("storage-download")
    down.add_argument("url")
    down.add_argument("--block", type=int, default=0)
    down.add_argument("--parallel", type=int, default=0)
    args = ap.parse_args(argv)
    result = (_storage_upload if args.kind == "storage-upload" else _storage_download)(args)
    result["peak_rss_kib"] = peak_rss_kib()
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

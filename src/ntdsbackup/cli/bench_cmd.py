"""``ntdsbackup bench``: the engine measured side by side with its peers."""

from __future__ import annotations

import argparse
import functools
import sys

from ..fsutil import parse_size
from .argtypes import (
    check_dit_size,
    dit_size_arg,
    object_prefix_arg,
    repeat_arg,
    size_list_arg,
    sweep_axes_arg,
)
from .common import engine_options, print_json, say


def add_parsers(sub, common) -> None:
    p = sub.add_parser("bench", parents=[common],
                       help="measure the engine side by side with its baselines")
    p.add_argument("--size", type=dit_size_arg, default=parse_size("1GiB"),
                   help="size of the emulated ntds.dit (default 1GiB)")
    p.add_argument("--page-size", type=int, choices=(8192, 32768), default=8192)
    p.add_argument("--repeat", type=repeat_arg, default=3,
                   help="alternating runs per contender (1 to 1000, default 3)")
    engine_options(p)
    p.add_argument("--work-dir", metavar="DIR",
                   help="where the DC and every output live (default: /dev/shm if present)")
    p.add_argument("--no-restore", action="store_true", help="backup contenders only")
    p.add_argument("--sweep", metavar="AXES", type=sweep_axes_arg,
                   help="instead: sweep the engine over comma-separated axes "
                        "(threads,chunk,ring,level)")
    p.add_argument("--scale", metavar="SIZES", type=size_list_arg,
                   help="instead: backup and restore at each database size of a "
                        "comma-separated list (e.g. 256MiB,1GiB,4GiB), against the 1 GiB "
                        "figure, peak memory included")
    p.add_argument("--target", metavar="s3://BUCKET/PREFIX", type=object_prefix_arg,
                   help="instead: upload and download through that object store, side by "
                        "side with rclone (credentials from the standard AWS variables; the "
                        "run's objects are deleted afterwards)")
    p.add_argument("--plot", metavar="FILE.png", help="with --sweep or --scale: draw it")
    p.add_argument("--latency-model", action="store_true",
                   help="instead: the RPC latency model (read cost = compression cost)")
    p.add_argument("--json", action="store_true", help="the report as JSON")
    p.set_defaults(_validate=functools.partial(_validate_bench, p), handler=cmd_bench)


def _validate_bench(parser: argparse.ArgumentParser, args) -> None:
    problem = check_dit_size(args.size, args.page_size)
    if problem:
        parser.error(f"argument --size: {problem}")
    if args.plot and not (args.sweep or args.scale):
        parser.error("argument --plot: needs --sweep or --scale")
    for size in args.scale or []:
        problem = check_dit_size(size, 8192)
        if problem:
            parser.error(f"argument --scale: {problem}")


def cmd_bench(args) -> int:
    from .. import bench
    from ..bench import report as render

    def on_run(i, contender, run):
        if not (args.quiet or args.json):       # progress, on standard error
            print(f"  run {i + 1}/{args.repeat} {contender.name:<22} {run.mb_per_s:8.1f} MB/s",
                  file=sys.stderr, flush=True)

    common = dict(work_dir=args.work_dir, repeat=args.repeat, level=args.level,
                  threads=args.threads, chunk_size=args.chunk_size, on_run=on_run)
    kind = "sweep" if args.sweep else "scale" if args.scale else \
        "objects" if args.target else "latency_model" if args.latency_model else "compare"
    if args.target:
        result = bench.object_bench(args.target, args.size, **common)
        text = render.object_text(result)
    elif args.scale:
        result = bench.scale(args.scale, **common)
        text = render.scale_text(result)
        if args.plot:
            from ..bench.plot import plot_scale

            plot_scale(result, args.plot)
            result["plot"] = args.plot
    elif args.sweep:
        result = bench.sweep(args.size, args.sweep, **common)
        text = render.sweep_text(result)
        if args.plot:
            from ..bench.plot import plot_sweeps

            plot_sweeps(result, args.plot)
            result["plot"] = args.plot
    elif args.latency_model:
        result = bench.latency_model(args.size, **common)
        text = render.latency_text(result)
    else:
        result = bench.compare(args.size, page_size=args.page_size, ring=args.ring,
                               restore=not args.no_restore, **common)
        text = render.comparison_text(result)
    if args.json:
        print_json({"event": "bench", "kind": kind, "report": result})
    else:
        say(args, text)
    return 0

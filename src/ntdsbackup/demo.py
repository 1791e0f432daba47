"""`make demo`: an emulated DC, end to end, with the figures printed.

python -m ntdsbackup.demo --root DIR --size 1GiB
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time

from .emu import EmulatedDC, status_text, use_emu_root
from .fsutil import parse_size


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ntdsbackup.demo")
    ap.add_argument("--root", default="demo-root", help="emulator root for the demo")
    ap.add_argument("--size", default="1GiB", help="size of the emulated ntds.dit")
    ap.add_argument("--name", default="DC01")
    args = ap.parse_args(argv)

    root = use_emu_root(args.root)
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    size = parse_size(args.size)

    print(f"== creating emulated DC {args.name} ({args.size}) under {args.root}")
    dc = EmulatedDC(args.name, root)
    t0 = time.monotonic()
    dc.create(size, seed=1)
    created = time.monotonic() - t0
    print(f"   created in {created:.1f} s ({size / created / 1e6:.0f} MB/s)")
    print(status_text(dc.status()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""argparse value types shared by every subcommand."""

from __future__ import annotations

import argparse

from .fsutil import parse_size


def size_arg(text: str) -> int:
    """'64MiB', '1GiB', '8192' -> bytes."""
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def fraction_arg(text: str) -> float:
    """'1%' or '0.01' -> 0.01, in (0, 1]."""
    s = text.strip()
    try:
        value = float(s[:-1]) / 100 if s.endswith("%") else float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a fraction or a percentage") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a fraction in (0, 1] or a percentage")
    return value

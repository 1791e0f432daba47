"""The ``ntdsbackup`` command line: one module per command group (dc_cmd,
archive_cmd, bench_cmd), what they share (common: options, exit codes,
output), option types (argtypes), password sources (credentials) and the
progress display (progress); main assembles them."""

from .common import (
    EXIT_ACCESS,
    EXIT_ARCHIVE,
    EXIT_DC_STATE,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_IO,
    EXIT_NTDSBCLI,
    EXIT_OK,
    EXIT_USAGE,
    exit_code_for,
)
from .main import build_parser, main

__all__ = ["EXIT_ACCESS", "EXIT_ARCHIVE", "EXIT_DC_STATE", "EXIT_ERROR", "EXIT_INTERRUPTED",
           "EXIT_IO", "EXIT_NTDSBCLI", "EXIT_OK", "EXIT_USAGE", "build_parser", "exit_code_for",
           "main"]

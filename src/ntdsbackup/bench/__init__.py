"""The benchmark harness: side-by-side comparisons, sweeps, the RPC latency
model and plots (``ntdsbackup bench``, ``make bench``)."""

from .compare import run as compare
from .sweep import latency_model, sweep

__all__ = ["compare", "sweep", "latency_model"]

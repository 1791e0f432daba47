"""The benchmark harness: side-by-side comparisons, sweeps, the RPC latency
model and plots (``ntdsbackup bench``, ``make bench``)."""

from .compare import run as compare
from .objects import object_bench
from .scale import scale
from .sweep import latency_model, sweep

__all__ = ["compare", "sweep", "latency_model", "scale", "object_bench"]

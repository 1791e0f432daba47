"""ESE checks: every database page and log segment, the log chain, and the
verdict a DC's consistency check would give (bootable or not, and why)."""

from .pages import KIND_DATABASE, KIND_LOG, KIND_NONE, BadUnit, PageResult, kind_of
from .verdict import FileFacts, Verdict, judge

__all__ = ["KIND_DATABASE", "KIND_LOG", "KIND_NONE", "BadUnit", "FileFacts", "PageResult",
           "Verdict", "judge", "kind_of"]

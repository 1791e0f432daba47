"""`prune`: delete what the keep rules do not keep, per DC, with three
guards that no rule can override:

* the newest restorable backup of each DC is kept ("newest restorable"),
  even when every rule would delete it (say the rules keep newer backups
  that are past their tombstone lifetime);
* a locked object is never touched: kept as "locked" (and a delete the
  server refuses because of a lock is reported the same way);
* a backup whose documents could not be read (its DC unknown, or an
  encrypted one the keys given did not open) is kept ("unreadable"):
  nothing is deleted on a guess.

An archive's NAME.minisig and NAME.verified.json go with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .catalog import Catalog, Row, newest_restorable
from .rules import kept_by_rules


@dataclass
class Decision:
    row: Row
    keep: bool
    reason: str
    removed: list[str] = field(default_factory=list)   # names deleted with it

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.row.name, "server": self.row.server,
                "created": self.row.as_dict()["created"], "reason": self.reason,
                **({"removed": self.removed} if not self.keep else {})}


def decide(catalog: Catalog, keep: dict[str, int]) -> list[Decision]:
    decisions = []
    servers = {r.server for r in catalog.rows if r.server is not None}
    for server in sorted(servers):
        mine = [r for r in catalog.rows if r.server == server and r.created_unix is not None
                and r.problem is None]
        reasons = kept_by_rules(mine, keep)
        protected = newest_restorable(mine)
        for row in sorted(mine, key=lambda r: (r.created_unix, r.name), reverse=True):
            if id(row) in reasons:
                decisions.append(Decision(row, True, reasons[id(row)]))
            elif row is protected:
                decisions.append(Decision(row, True, "newest restorable"))
            elif row.locked():
                decisions.append(Decision(row, True, "locked"))
            else:
                decisions.append(Decision(row, False, "no rule keeps it"))
    decided = {id(d.row) for d in decisions}
    decisions += [Decision(r, True, "unreadable") for r in catalog.rows if id(r) not in decided]
    return decisions


def would_remove(decisions: list[Decision]) -> None:
    """--dry-run: name what carry_out would delete, deleting nothing."""
    for d in decisions:
        if not d.keep:
            d.removed = [d.row.name] + [s.name for s in d.row.sidecars]


def carry_out(decisions: list[Decision], store: Any) -> None:
    """Delete what is to go; a version the server will not delete because
    of a lock is kept and reported "locked"."""
    for d in decisions:
        if d.keep:
            continue
        assert d.row.entry is not None
        outcome = store.delete(d.row.entry)
        if outcome == "locked":
            d.keep, d.reason = True, "locked"
            continue
        d.removed.append(d.row.name)
        for side in d.row.sidecars:
            if store.delete(side) == "deleted":
                d.removed.append(side.name)

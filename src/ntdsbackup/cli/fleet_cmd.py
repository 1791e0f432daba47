"""The fleet commands: list (every archive of a folder or bucket prefix, by
DC, with what is left of each backup's tombstone lifetime) and prune.

With -i/--identity or a passphrase, an encrypted archive's row comes from
its own documents (read by ranges, fleet/catalog.py) instead of a cached
verify result."""

from __future__ import annotations

import argparse

from ..fsutil import format_size
from .argtypes import int_range
from .common import print_json, say
from .crypto_options import add_key_options, decryption_keys

workers_arg = int_range(1, 64)
keep_arg = int_range(0, 100000)


def add_parsers(sub, common) -> None:
    p = sub.add_parser("list", parents=[common],
                       help="every archive of a folder or an s3:// prefix, per DC, with the "
                            "newest restorable backup")
    p.add_argument("location", help="a folder, or s3://BUCKET/PREFIX")
    p.add_argument("--workers", type=workers_arg, default=16, metavar="N",
                   help="archives read at once (default 16; 1 to 64)")
    p.add_argument("--json", action="store_true")
    _key_options(p)
    p.set_defaults(handler=cmd_list)

    p = sub.add_parser("prune", parents=[common],
                       help="delete the backups no keep rule keeps; never the newest "
                            "restorable one of a DC, never a locked one")
    p.add_argument("location", help="a folder, or s3://BUCKET/PREFIX")
    for rule, what in (("last", "the N newest backups"),
                       ("daily", "the newest backup of each of the last N days with one"),
                       ("weekly", "the newest of each of the last N ISO weeks with one"),
                       ("monthly", "the newest of each of the last N months with one")):
        p.add_argument(f"--keep-{rule}", type=keep_arg, default=None, metavar="N",
                       help=f"per DC, keep {what}")
    p.add_argument("--dry-run", action="store_true", help="say what would go; delete nothing")
    p.add_argument("--workers", type=workers_arg, default=16, metavar="N",
                   help="archives read at once (default 16)")
    p.add_argument("--json", action="store_true")
    _key_options(p)
    p.set_defaults(handler=cmd_prune, _validate=lambda args, p=p: _validate_prune(p, args))


def _key_options(p: argparse.ArgumentParser) -> None:
    add_key_options(p.add_argument_group(
        "encrypted archives", "with a key, an encrypted archive's DC, time and tombstone "
        "lifetime are read from its own documents (its header, final chunk and the chunks "
        "holding them); without one, only from a cached verify result"))


def _validate_prune(parser: argparse.ArgumentParser, args) -> None:
    if all(getattr(args, f"keep_{r}") is None for r in ("last", "daily", "weekly", "monthly")):
        parser.error("give at least one of --keep-last, --keep-daily, --keep-weekly, "
                     "--keep-monthly")


def cmd_list(args) -> int:
    from ..fleet.catalog import scan

    catalog, _store = scan(args.location, workers=args.workers, keys=decryption_keys(args))
    if args.json:
        print_json({"event": "fleet", **catalog.as_dict()})
        return 0
    lines = [f"{'server':<12} {'backup time':<20} {'size':>10} {'enc':<3} {'sig':<3} "
             f"{'verified':<8} {'locked until':<20} {'days left':>9}  name"]
    for r in sorted(catalog.rows, key=lambda r: (r.server or "~", -(r.created_unix or 0))):
        d = r.as_dict()
        verified = {True: "ok", False: "FAILED", None: "-"}[r.verified]
        left = "-" if r.days_left is None else f"{r.days_left:.1f}"
        if r.problem is None and not r.restorable and r.days_left is not None:
            left += " EXPIRED"
        lines.append(f"{r.server or '?':<12} {d['created'] or '?':<20} "
                     f"{format_size(r.size):>10} {'yes' if r.encrypted else 'no':<3} "
                     f"{'yes' if r.signed else 'no':<3} {verified:<8} "
                     f"{d['locked_until'] or '-':<20} {left:>9}  {r.name}"
                     + (f"  ({r.problem})" if r.problem else ""))
    lines.append("")
    for s in catalog.servers():
        if s["flagged"]:
            lines.append(f"{s['server']}: NO restorable backup among {s['archives']}")
        else:
            lines.append(f"{s['server']}: newest restorable {s['newest_restorable']} "
                         f"({s['created']}, {s['days_left']} days of tombstone lifetime "
                         "left)")
    lines.append(f"{len(catalog.rows)} archives in {catalog.location} "
                 f"({catalog.seconds:.1f} s)")
    say(args, *lines)
    return 0


def cmd_prune(args) -> int:
    from ..fleet.catalog import scan
    from ..fleet.prune import carry_out, decide, would_remove

    keep = {r: getattr(args, f"keep_{r}") or 0 for r in ("last", "daily", "weekly", "monthly")}
    catalog, store = scan(args.location, workers=args.workers, keys=decryption_keys(args))
    decisions = decide(catalog, keep)
    if args.dry_run:
        would_remove(decisions)
    else:
        carry_out(decisions, store)
    kept = [d.as_dict() for d in decisions if d.keep]
    removed = [d.as_dict() for d in decisions if not d.keep]
    if args.json:
        print_json({"event": "pruned", "location": catalog.location, "dry_run": args.dry_run,
                    "kept": kept, "removed": removed})
        return 0
    verb = "would remove" if args.dry_run else "removed"
    say(args, *(f"keep    {d['server']:<12} {d['created']}  {d['name']}  ({d['reason']})"
                for d in kept))
    say(args, *(f"{verb}  {d['server']:<12} {d['created']}  {', '.join(d['removed'])}"
                for d in removed))
    say(args, f"{len(kept)} kept, {len(removed)} {verb} in {catalog.location}")
    return 0

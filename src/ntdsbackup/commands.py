"""What each ``ntdsbackup`` subcommand does (the parser is in cli.py)."""

from __future__ import annotations

import json

from .emu import EmulatedDC, status_text


def _print_json(obj) -> None:
    print(json.dumps(obj, default=str), flush=True)


def add_archive_commands(sub, common) -> None:
    """backup, verify, ls, extract, restore and bench register here."""
    from . import commands_archive

    commands_archive.add_parsers(sub, common)


def dispatch(args) -> int:
    if args.command == "dc":
        return _DC_ACTIONS[args.dc_command](args)
    from . import commands_archive

    return commands_archive.dispatch(args)


def dc_create(args) -> int:
    import time

    dc = EmulatedDC(args.name, args.emu_root)
    t0 = time.monotonic()
    dc.create(args.size, page_size=args.page_size, seed=args.seed, from_file=args.from_file,
              domain=args.domain, tombstone_days=args.tombstone_days, log_size=args.log_size,
              log_count=args.log_count, force=args.force)
    elapsed = time.monotonic() - t0
    st = dc.status()
    if args.json:
        _print_json({"event": "created", "seconds": round(elapsed, 3), "status": st})
    else:
        print(f"created {dc.name} in {elapsed:.1f} s")
        print(status_text(st))
    return 0


def dc_start(args) -> int:
    dc = EmulatedDC(args.name, args.emu_root)
    result = dc.start()
    report = result.get("report")
    if args.json:
        _print_json({"event": "started", "mode": result["mode"], "checked": result["checked"],
                     "report": None if report is None else report.summary()})
    else:
        if report is not None:
            print(f"consistency check passed: {report.summary_text()}")
        print(f"{dc.name} is online")
    return 0


def dc_stop(args) -> int:
    dc = EmulatedDC(args.name, args.emu_root)
    dc.stop()
    if args.json:
        _print_json({"event": "stopped", "mode": "dsrm"})
    else:
        print(f"{dc.name} is in Directory Services Restore Mode (offline)")
    return 0


def dc_status(args) -> int:
    st = EmulatedDC(args.name, args.emu_root).status()
    if args.json:
        _print_json(st)
    else:
        print(status_text(st))
    return 0


def dc_activity(args) -> int:
    result = EmulatedDC(args.name, args.emu_root).activity(args.pages, args.seed)
    if args.json:
        _print_json({"event": "activity", **result})
    else:
        print(", ".join(f"{k} {v}" for k, v in result.items()))
    return 0


def dc_account(args) -> int:
    from .emuconf import Account, check_privileges

    dc = EmulatedDC(args.name, args.emu_root)
    cfg = dc.config()
    if args.set_default:
        cfg.default_privileges = check_privileges(args.privileges)
        dc.save_config(cfg)
        print(f"callers without an identity now have: {','.join(cfg.default_privileges) or '-'}")
        return 0
    from .credentials import read_password

    domain, _, user = args.user.partition("\\")
    password = read_password(f"password for {args.user}: ", password_file=args.password_file,
                             password_command=args.password_command)
    cfg.set_account(Account.create(domain, user, password, args.privileges))
    dc.save_config(cfg)
    print(f"account {args.user} set on {dc.name}")
    return 0


def dc_fault(args) -> int:
    from .emuconf import FAULT_KEYS

    dc = EmulatedDC(args.name, args.emu_root)
    cfg = dc.config()
    if args.clear:
        cfg.faults.clear()
    updates = {k: getattr(args, f"fault_{k}") for k in FAULT_KEYS
               if getattr(args, f"fault_{k}") is not None}
    cfg.set_faults(**updates)
    if args.clock_offset is not None:
        cfg.clock_offset = args.clock_offset
    if args.trace is not None:
        cfg.trace = args.trace == "on"
    dc.save_config(cfg)
    print(f"{dc.name}: faults " + (", ".join(f"{k}={v}" for k, v in cfg.faults.items())
                                   or "none") + f"; clock offset {cfg.clock_offset} s")
    return 0


_DC_ACTIONS = {
    "create": dc_create,
    "start": dc_start,
    "stop": dc_stop,
    "status": dc_status,
    "activity": dc_activity,
    "account": dc_account,
    "fault": dc_fault,
}

"""``ntdsbackup dc``: create and manage emulated domain controllers (the
emulator package does the work; this is its command line)."""

from __future__ import annotations

import argparse
import functools

from ..emulator import EmulatedDC, status_text
from ..emulator.config import FAULT_KEYS
from ..fsutil import parse_size
from .argtypes import (
    UINT32_MAX,
    UINT64_MAX,
    check_dit_size,
    clock_offset_arg,
    dit_size_arg,
    domain_arg,
    fault_count_arg,
    fraction_arg,
    hresult_arg,
    log_count_arg,
    log_size_arg,
    privileges_arg,
    tombstone_days_arg,
    user_arg,
)
from .common import print_json, say
from .credentials import add_password_options

# Faults whose counter the emulator holds in 32 bits; the others in 64.
_FAULT_LIMITS = {"short_read": UINT32_MAX}


def add_parsers(sub, common) -> None:
    dc = sub.add_parser("dc", parents=[common], help="manage emulated domain controllers")
    dcsub = dc.add_subparsers(dest="dc_command", required=True, metavar="ACTION")

    p = dcsub.add_parser("create", parents=[common], help="create an emulated DC")
    p.add_argument("name")
    p.add_argument("--size", type=dit_size_arg, default=parse_size("64MiB"),
                   help="size of ntds.dit, a whole number of pages up to 16 TiB, e.g. 1GiB "
                        "(default 64MiB; K, M, G are binary)")
    p.add_argument("--page-size", type=int, choices=(8192, 32768), default=8192)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--from", dest="from_file", metavar="FILE",
                   help="build the DC around an existing ntds.dit (e.g. an IFM copy)")
    p.add_argument("--log-size", type=log_size_arg,
                   help="size of each log file: whole 4 KiB sectors, 8 KiB to 256 MiB - 4 KiB")
    p.add_argument("--log-count", type=log_count_arg,
                   help="number of closed log generations (0 to 1024)")
    p.add_argument("--domain", type=domain_arg, default="CORP")
    p.add_argument("--tombstone-days", type=tombstone_days_arg, default=180,
                   help="tombstone lifetime (2 to 36500 days, default 180)")
    p.add_argument("--force", action="store_true", help="replace an existing DC of that name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(_validate=functools.partial(_validate_dc_create, p))

    for action, text in (("start", "boot normally (runs the consistency check after a "
                                   "restore)"),
                         ("stop", "reboot into Directory Services Restore Mode")):
        p = dcsub.add_parser(action, parents=[common], help=text)
        p.add_argument("name")
        p.add_argument("--json", action="store_true")

    p = dcsub.add_parser("status", parents=[common], help="show a DC's state")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")

    p = dcsub.add_parser("activity", parents=[common],
                         help="simulate a running DC: rewrite pages, add log generations")
    p.add_argument("name")
    p.add_argument("--pages", type=fraction_arg, default=0.01, metavar="FRACTION",
                   help="fraction of pages to rewrite, e.g. 1%% (default) or 0.05")
    p.add_argument("--seed", type=int)
    p.add_argument("--json", action="store_true")

    p = dcsub.add_parser("account", parents=[common],
                         help="add or replace an account (password from --password-file, "
                              "--password-command, $NTDSB_PASSWORD or a prompt)")
    p.add_argument("name")
    p.add_argument("user", help="DOMAIN\\user")
    p.add_argument("--privileges", type=privileges_arg, default="backup,restore,admin",
                   help="comma list of backup, restore, admin (may be empty)")
    p.add_argument("--default-privileges", dest="set_default", action="store_true",
                   help="instead, set the privileges of callers that give no identity")
    add_password_options(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(_validate=functools.partial(_validate_dc_account, p))

    p = dcsub.add_parser("fault", parents=[common], help="set or clear injected faults")
    p.add_argument("name")
    p.add_argument("--clear", action="store_true", help="clear every fault first")
    for key, kind in FAULT_KEYS.items():
        kind_type = hresult_arg if kind == "hex" else \
            fault_count_arg(_FAULT_LIMITS.get(key, UINT64_MAX))
        p.add_argument(f"--{key.replace('_', '-')}", dest=f"fault_{key}", type=kind_type,
                       metavar="HR" if kind == "hex" else "N")
    p.add_argument("--clock-offset", type=clock_offset_arg, metavar="SECONDS",
                   help="shift the DC's clock (e.g. 16000000 to pass a tombstone lifetime)")
    p.add_argument("--trace", choices=("on", "off"), help="journal every API call to "
                                                          "calls.log")
    p.add_argument("--json", action="store_true")
    for name, handler in _DC_ACTIONS.items():
        dcsub.choices[name].set_defaults(handler=handler)


def _validate_dc_create(parser: argparse.ArgumentParser, args) -> None:
    if args.from_file is None:
        problem = check_dit_size(args.size, args.page_size)
        if problem:
            parser.error(f"argument --size: {problem}")


def _validate_dc_account(parser: argparse.ArgumentParser, args) -> None:
    if not args.set_default:
        try:
            user_arg(args.user)
        except argparse.ArgumentTypeError as exc:
            parser.error(f"argument user: {exc}")


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
        print_json({"event": "created", "seconds": round(elapsed, 3), "status": st})
    else:
        say(args, f"created {dc.name} in {elapsed:.1f} s")
        say(args, status_text(st), detail=True)
    return 0


def dc_start(args) -> int:
    dc = EmulatedDC(args.name, args.emu_root)
    result = dc.start()
    report = result.get("report")
    if args.json:
        print_json({"event": "started", "mode": result["mode"], "checked": result["checked"],
                     "report": None if report is None else report.summary()})
    else:
        if report is not None:
            say(args, f"consistency check passed: {report.summary_text()}")
        say(args, f"{dc.name} is online")
    return 0


def dc_stop(args) -> int:
    dc = EmulatedDC(args.name, args.emu_root)
    dc.stop()
    if args.json:
        print_json({"event": "stopped", "mode": "dsrm"})
    else:
        say(args, f"{dc.name} is in Directory Services Restore Mode (offline)")
    return 0


def dc_status(args) -> int:
    st = EmulatedDC(args.name, args.emu_root).status()
    if args.json:
        print_json({"event": "status", **st})
    else:
        say(args, status_text(st))
    return 0


def dc_activity(args) -> int:
    result = EmulatedDC(args.name, args.emu_root).activity(args.pages, args.seed)
    if args.json:
        print_json({"event": "activity", **result})
    else:
        say(args, ", ".join(f"{k} {v}" for k, v in result.items()))
    return 0


def dc_account(args) -> int:
    from ..emulator.config import Account, check_privileges

    dc = EmulatedDC(args.name, args.emu_root)
    cfg = dc.config()
    if args.set_default:
        cfg.default_privileges = check_privileges(args.privileges)
        dc.save_config(cfg)
        if args.json:
            print_json({"event": "account", "server": dc.name, "user": None,
                        "privileges": list(cfg.default_privileges)})
        else:
            say(args, "callers without an identity now have: "
                      f"{','.join(cfg.default_privileges) or '-'}")
        return 0
    from .credentials import read_password

    domain, _, user = args.user.partition("\\")
    password = read_password(f"password for {args.user}: ", password_file=args.password_file,
                             password_command=args.password_command)
    account = Account.create(domain, user, password, args.privileges)
    cfg.set_account(account)
    dc.save_config(cfg)
    if args.json:
        print_json({"event": "account", "server": dc.name, "user": args.user,
                    "privileges": list(account.privileges)})
    else:
        say(args, f"account {args.user} set on {dc.name}")
    return 0


def dc_fault(args) -> int:
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
    if args.json:
        print_json({"event": "fault", "server": dc.name, "faults": dict(cfg.faults),
                    "clock_offset": cfg.clock_offset, "trace": bool(cfg.trace)})
    else:
        say(args, f"{dc.name}: faults " + (", ".join(f"{k}={v}" for k, v in cfg.faults.items())
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

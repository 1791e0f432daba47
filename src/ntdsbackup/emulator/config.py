"""The emulated DC's configuration file, ``ROOT/<DC>/dc.conf``.

The emulator library reads it (src/emu); this module writes it.  One
``key=value`` per line; unknown keys are kept as they are so that an older
tool never drops a newer setting.  docs/EMULATOR.md describes every key.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from ..fsutil import atomic_write_text

PRIVILEGES = ("backup", "restore", "admin")
PBKDF2_ITERATIONS = 10_000

# Fault keys the emulator understands, with how each value is written.
FAULT_KEYS = {
    "read_hr": "hex",          # DsBackupRead fails with this HRESULT ...
    "read_after": "int",       # ... once this many bytes were returned on the handle
    "short_read": "int",       # each read returns at most N bytes (pseudo-random)
    "latency_us": "int",       # per-call latency
    "bandwidth": "int",        # DsBackupRead cap, bytes per second
    "offline_after": "int",    # the DC goes offline after this many bytes
    "truncate_hr": "hex",      # DsBackupTruncateLogs fails with this HRESULT
    "register_hr": "hex",      # DsRestoreRegisterW fails with this HRESULT
}


@dataclass
class Account:
    """A DC account: ``DOMAIN\\user`` with its privileges and salted hash."""

    domain: str
    user: str
    privileges: tuple[str, ...]
    iterations: int
    salt: bytes
    digest: bytes

    @classmethod
    def create(cls, domain: str, user: str, password: str, privileges, *,
               iterations: int = PBKDF2_ITERATIONS) -> Account:
        privs = check_privileges(privileges)
        salt = secrets.token_bytes(16)
        digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations, 32)
        return cls(domain, user, privs, iterations, salt, digest)

    def to_line(self) -> str:
        return (f"{self.domain}\\{self.user}:{','.join(self.privileges)}:{self.iterations}:"
                f"{self.salt.hex()}:{self.digest.hex()}")

    @classmethod
    def from_line(cls, value: str) -> Account:
        who, privs, iterations, salt, digest = value.rsplit(":", 4)
        domain, _, user = who.partition("\\")
        return cls(domain, user, tuple(p for p in privs.split(",") if p), int(iterations),
                   bytes.fromhex(salt), bytes.fromhex(digest))


def check_privileges(privileges) -> tuple[str, ...]:
    if isinstance(privileges, str):
        privileges = [p.strip() for p in privileges.split(",") if p.strip()]
    bad = [p for p in privileges if p not in PRIVILEGES]
    if bad:
        raise ValueError(f"unknown privilege(s) {', '.join(bad)}; use {', '.join(PRIVILEGES)}")
    return tuple(p for p in PRIVILEGES if p in privileges)


@dataclass
class DCConfig:
    name: str
    domain: str = "CORP"
    tombstone_days: int = 180
    clock_offset: int = 0
    default_privileges: tuple[str, ...] = PRIVILEGES
    trace: bool = False
    accounts: list[Account] = field(default_factory=list)
    faults: dict[str, int] = field(default_factory=dict)
    extra: list[tuple[str, str]] = field(default_factory=list)

    # -- file format -----------------------------------------------------
    def render(self) -> str:
        lines = [
            "# Emulated domain controller (see docs/EMULATOR.md). Managed by `ntdsbackup dc`.",
            "format=1",
            f"name={self.name}",
            f"domain={self.domain}",
            f"tombstone_days={self.tombstone_days}",
            f"clock_offset={self.clock_offset}",
            f"default_privileges={','.join(self.default_privileges)}",
            f"trace={1 if self.trace else 0}",
        ]
        lines += [f"account={a.to_line()}" for a in self.accounts]
        for key, value in sorted(self.faults.items()):
            kind = FAULT_KEYS[key]
            text = f"0x{value & 0xFFFFFFFF:08X}" if kind == "hex" else str(value)
            lines.append(f"fault_{key}={text}")
        lines += [f"{k}={v}" for k, v in self.extra]
        return "\n".join(lines) + "\n"

    @classmethod
    def parse(cls, text: str) -> DCConfig:
        cfg = cls(name="")
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            key, sep, value = line.partition("=")
            if not sep:
                continue
            if key == "format":
                continue
            if key == "name":
                cfg.name = value
            elif key == "domain":
                cfg.domain = value
            elif key == "tombstone_days":
                cfg.tombstone_days = int(value)
            elif key == "clock_offset":
                cfg.clock_offset = int(value)
            elif key == "default_privileges":
                cfg.default_privileges = check_privileges(value)
            elif key == "trace":
                cfg.trace = value.strip() == "1"
            elif key == "account":
                cfg.accounts.append(Account.from_line(value))
            elif key.startswith("fault_") and key[6:] in FAULT_KEYS:
                cfg.faults[key[6:]] = int(value, 0)
            else:
                cfg.extra.append((key, value))
        return cfg

    # -- files -----------------------------------------------------------
    @classmethod
    def load(cls, path: os.PathLike | str) -> DCConfig:
        return cls.parse(Path(path).read_text(encoding="utf-8"))

    def save(self, path: os.PathLike | str) -> None:
        atomic_write_text(Path(path), self.render())

    # -- edits -----------------------------------------------------------
    def set_account(self, account: Account) -> None:
        self.accounts = [a for a in self.accounts
                         if (a.domain.lower(), a.user.lower())
                         != (account.domain.lower(), account.user.lower())]
        self.accounts.append(account)

    def set_faults(self, **faults: int | None) -> None:
        for key, value in faults.items():
            if key not in FAULT_KEYS:
                raise ValueError(f"unknown fault {key!r}; known: {', '.join(FAULT_KEYS)}")
            if value is None:
                self.faults.pop(key, None)
            else:
                self.faults[key] = int(value)

"""age X25519 identities and recipients, and the files that hold them.

Text forms (C2SP age, "X25519 recipients"): a recipient is bech32 with HRP
``age`` in lower case (``age1…``), an identity bech32 with HRP
``AGE-SECRET-KEY-`` in upper case.  Like age's Go implementation, only the
canonical case is accepted, so that every key we read is one ``age`` reads
too.  Nothing here puts secret key text in an exception or a repr: those end
up in logs and JSON error events.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Iterable

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from ..errors import KeyFormatError
from . import bech32

__all__ = ["X25519Identity", "X25519Recipient", "identity_file_text", "read_identities",
           "read_recipients", "write_identity_file"]

IDENTITY_HRP = "AGE-SECRET-KEY-"
RECIPIENT_HRP = "age"
MAX_KEY_FILE = 16 << 20         # age's limit on identity files

# Key types a newer age (or a plugin) writes, which this X25519/scrypt
# implementation cannot use: named in the error instead of "not a key".
_OTHER_IDENTITIES = (("AGE-SECRET-KEY-PQ-", "post-quantum (AGE-SECRET-KEY-PQ-)"),
                     ("AGE-PLUGIN-", "plugin (AGE-PLUGIN-)"))
_OTHER_RECIPIENTS = (("age1pq", "post-quantum (age1pq)"), ("age1tag", "tag (age1tag)"),
                     ("ssh-", "SSH"))


class X25519Recipient:
    """An X25519 public key: what a backup is encrypted to."""

    __slots__ = ("_raw",)

    def __init__(self, raw: bytes):
        if len(raw) != 32:
            raise KeyFormatError("an X25519 recipient is 32 bytes")
        self._raw = bytes(raw)

    @classmethod
    def from_text(cls, text: str) -> X25519Recipient:
        if not text.startswith("age1"):
            raise KeyFormatError("not an age recipient (age1…, lower case)")
        try:
            hrp, data = bech32.decode(text)
        except bech32.Bech32Error as exc:
            raise KeyFormatError(f"malformed age recipient: {exc}") from None
        if hrp != RECIPIENT_HRP or len(data) != 32:
            raise KeyFormatError("malformed age recipient: not an X25519 key")
        return cls(data)

    @property
    def raw(self) -> bytes:
        return self._raw

    @property
    def text(self) -> str:
        return bech32.encode(RECIPIENT_HRP, self._raw)

    def public_key(self) -> X25519PublicKey:
        return X25519PublicKey.from_public_bytes(self._raw)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, X25519Recipient) and other._raw == self._raw

    def __hash__(self) -> int:
        return hash(self._raw)

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"X25519Recipient({self.text!r})"


class X25519Identity:
    """An X25519 secret key: what opens a backup."""

    __slots__ = ("_key", "_recipient")

    def __init__(self, raw: bytes):
        if len(raw) != 32:
            raise KeyFormatError("an X25519 identity is 32 bytes")
        self._key = X25519PrivateKey.from_private_bytes(bytes(raw))
        self._recipient = X25519Recipient(self._key.public_key().public_bytes_raw())

    @classmethod
    def generate(cls) -> X25519Identity:
        return cls(X25519PrivateKey.generate().private_bytes_raw())

    @classmethod
    def from_text(cls, text: str) -> X25519Identity:
        if not text.startswith(IDENTITY_HRP + "1"):
            raise KeyFormatError("not an age identity (AGE-SECRET-KEY-1…, upper case)")
        try:
            hrp, data = bech32.decode(text)
        except bech32.Bech32Error as exc:
            # Bech32Error never quotes its input.
            raise KeyFormatError(f"malformed age identity: {exc}") from None
        if hrp != IDENTITY_HRP or len(data) != 32:
            raise KeyFormatError("malformed age identity: not an X25519 key")
        return cls(data)

    @property
    def text(self) -> str:
        return bech32.encode(IDENTITY_HRP, self._key.private_bytes_raw())

    @property
    def recipient(self) -> X25519Recipient:
        return self._recipient

    def private_key(self) -> X25519PrivateKey:
        return self._key

    def __eq__(self, other: object) -> bool:
        return isinstance(other, X25519Identity) and other._recipient == self._recipient

    def __hash__(self) -> int:
        return hash(self._recipient)

    def __repr__(self) -> str:
        # The public half only: a repr may reach a log.
        return f"X25519Identity(recipient={self._recipient.text!r})"

    __str__ = __repr__


def _lines(text: str | bytes, what: str) -> Iterable[tuple[int, str]]:
    """(line number, line) of a key file, CRLF or LF, with the size limit."""
    size = len(text.encode("utf-8", "surrogatepass")) if isinstance(text, str) else len(text)
    if size > MAX_KEY_FILE:
        raise KeyFormatError(f"{what} file is larger than {MAX_KEY_FILE} bytes")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise KeyFormatError(f"{what} file is not UTF-8") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()           # the final newline ends a line, it does not start one
    for number, line in enumerate(lines, 1):
        if line.endswith("\r"):
            line = line[:-1]
        yield number, line


def _read_keys(text: str | bytes, what: str, noun: str, plural: str, others, parse):
    """The keys of a key file (identities or recipients): one a line, `#`
    in column 0 and empty lines skipped, other key types named, at least one."""
    found = []
    for number, line in _lines(text, what):
        if not line or line.startswith("#"):
            continue
        if line != line.strip():
            raise KeyFormatError(f"{what} file line {number}: whitespace around the key")
        for prefix, kind in others:
            if line.startswith(prefix):
                raise KeyFormatError(f"{what} file line {number}: {kind} {plural} are "
                                     "not supported")
        try:
            found.append(parse(line))
        except KeyFormatError as exc:
            raise KeyFormatError(f"{what} file line {number}: {exc}") from None
    if not found:
        raise KeyFormatError(f"{what} file holds no {noun}")
    return found


def read_identities(text: str | bytes) -> list[X25519Identity]:
    """The identities in an identity file's text (age-keygen's layout, or
    several keys): comments (``#`` in column 0) and empty lines skipped."""
    return _read_keys(text, "identity", "identity", "identities", _OTHER_IDENTITIES,
                      X25519Identity.from_text)


def read_recipients(text: str | bytes) -> list[X25519Recipient]:
    """The recipients in a recipients file: one ``age1…`` a line, comments
    (``#`` in column 0) and empty lines skipped."""
    return _read_keys(text, "recipients", "recipient", "recipients", _OTHER_RECIPIENTS,
                      X25519Recipient.from_text)


def identity_file_text(identity: X25519Identity, created: _dt.datetime | None = None) -> str:
    """The identity file age-keygen would write: when, the public key, the key."""
    if created is None:
        created = _dt.datetime.now(_dt.timezone.utc)
    if created.tzinfo is None:
        raise ValueError("created must carry a time zone (RFC 3339 needs the offset)")
    stamp = created.replace(microsecond=0).isoformat()
    if stamp.endswith("+00:00"):
        stamp = stamp[:-6] + "Z"
    return (f"# created: {stamp}\n"
            f"# public key: {identity.recipient.text}\n"
            f"{identity.text}\n")


def write_identity_file(path: os.PathLike[str] | str, identity: X25519Identity,
                        created: _dt.datetime | None = None) -> None:
    """Write a new identity file (mode 0600; FileExists if `path` exists)."""
    from .keyfiles import write_private_file

    write_private_file(path, identity_file_text(identity, created).encode("ascii"))

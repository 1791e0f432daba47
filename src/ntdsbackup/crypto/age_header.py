"""The age v1 header: writing one, parsing one strictly, unwrapping the file key.

The payload (STREAM chunks) is the engine's; this module hands it the
payload key and the nonce.  A header is::

    age-encryption.org/v1
    -> X25519 <share>           one or more stanzas: arguments, then a body in
    <body, 64-column base64>    64-character lines ending at a shorter one
    --- <MAC>

Reading follows C2SP age and age's Go parser, which are stricter than rage's
legacy one: anything they reject is rejected here (a CR anywhere, padding or
non-canonical base64, a double space, a body line over 64 characters, a body
of 48·k bytes without its empty last line).  The order of use is fixed:
parse, unwrap a file key, check the MAC in constant time, and only then
derive the payload key.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from ..errors import DecryptionError
from .age_keys import X25519Identity, X25519Recipient

__all__ = ["Header", "NewHeader", "Stanza", "new_header", "read_header", "read_nonce",
           "unwrap"]

VERSION_LINE = b"age-encryption.org/v1"
NONCE_SIZE = 16
FILE_KEY_SIZE = 16
MAC_SIZE = 32
COLUMNS = 64                         # body base64 characters a line
BYTES_PER_LINE = COLUMNS // 4 * 3    # 48
MAX_HEADER = 1 << 20                 # far above any real header (168 bytes a recipient)
MAX_STANZAS = 1024
DEFAULT_WORK_FACTOR = 18             # what age writes
MAX_WORK_FACTOR = 22                 # what age accepts
# What a reader accepts unless told otherwise: scrypt at 2^N takes 2^N KiB
# of memory, so a hostile header asking for age's 2^22 would take 4 GiB (and
# about 20 s here).  age and rage write 18 (256 MiB); rage tunes up to about
# a second of work, 19 or 20 on a fast machine.  2^20: 1 GiB, about 6 s.
READ_WORK_FACTOR = 20

_X25519_INFO = b"age-encryption.org/v1/X25519"
_SCRYPT_SALT_LABEL = b"age-encryption.org/v1/scrypt"
_ZERO_NONCE = bytes(12)
_B64 = re.compile(rb"[A-Za-z0-9+/]*")
_LOG_N = re.compile(r"[1-9][0-9]*")


def _malformed(what: str) -> DecryptionError:
    return DecryptionError(f"malformed age header: {what}")


# -- primitives ---------------------------------------------------------------

def _hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


def _b64encode(data: bytes) -> bytes:
    return base64.b64encode(data).rstrip(b"=")


def _b64decode(text: bytes) -> bytes | None:
    """Unpadded canonical base64, or None: the alphabet only, no '=', and the
    unused bits of the last character zero (one text for each value)."""
    if _B64.fullmatch(text) is None or len(text) % 4 == 1:
        return None
    try:
        data = base64.b64decode(text + b"=" * (-len(text) % 4), validate=True)
    except binascii.Error:
        return None
    return data if _b64encode(data) == text else None


def _seal_file_key(wrap_key: bytes, file_key: bytes) -> bytes:
    # A zero nonce is safe: every wrap key is used once (fresh share or salt).
    return ChaCha20Poly1305(wrap_key).encrypt(_ZERO_NONCE, file_key, None)


def _mac_key(file_key: bytes) -> bytes:
    return _hkdf(file_key, b"", b"header")


def payload_key(file_key: bytes, nonce: bytes) -> bytes:
    return _hkdf(file_key, nonce, b"payload")


def _scrypt_key(passphrase: bytes, salt: bytes, log_n: int) -> bytes:
    kdf = Scrypt(salt=_SCRYPT_SALT_LABEL + salt, length=32, n=1 << log_n, r=8, p=1)
    return kdf.derive(passphrase)


def _passphrase_bytes(passphrase: str | bytes) -> bytes:
    return passphrase.encode("utf-8") if isinstance(passphrase, str) else bytes(passphrase)


# -- stanzas and the header's text --------------------------------------------

@dataclass(frozen=True)
class Stanza:
    """One recipient stanza: its type, the arguments after the type, its body."""

    type: str
    args: tuple[str, ...]
    body: bytes = field(repr=False)

    def to_bytes(self) -> bytes:
        for arg in (self.type, *self.args):
            if not arg or any(not 0x21 <= ord(c) <= 0x7E for c in arg):
                raise ValueError("stanza arguments are non-empty printable ASCII")
        line = b" ".join([b"->", self.type.encode("ascii")]
                         + [a.encode("ascii") for a in self.args])
        text = _b64encode(self.body)
        # Full 64-column lines, then a shorter final one: empty when the body
        # is a multiple of 48 bytes, so that the reader knows where it ends.
        rows = [text[i:i + COLUMNS] for i in range(0, len(text) - len(text) % COLUMNS, COLUMNS)]
        rows.append(text[len(text) - len(text) % COLUMNS:])
        return line + b"\n" + b"\n".join(rows) + b"\n"


@dataclass(frozen=True)
class NewHeader:
    """A header written for a new file: its bytes (through the MAC line's LF),
    the 16-byte nonce that follows it, and the payload key for the engine."""

    header: bytes
    nonce: bytes
    payload_key: bytes = field(repr=False)


def wrap_x25519(recipient: X25519Recipient, file_key: bytes,
                ephemeral: bytes | None = None) -> Stanza:
    """An X25519 stanza; `ephemeral` (32 bytes) only for known-answer tests."""
    secret = (X25519PrivateKey.generate() if ephemeral is None
              else X25519PrivateKey.from_private_bytes(ephemeral))
    share = secret.public_key().public_bytes_raw()
    try:
        shared = secret.exchange(X25519PublicKey.from_public_bytes(recipient.raw))
    except ValueError:
        # An all-zero shared secret: a low-order "recipient" that would let
        # anyone recompute the wrap key.
        raise ValueError("the recipient is not a usable X25519 key (low order)") from None
    wrap_key = _hkdf(shared, share + recipient.raw, _X25519_INFO)
    return Stanza("X25519", (_b64encode(share).decode(),), _seal_file_key(wrap_key, file_key))


def wrap_scrypt(passphrase: str | bytes, file_key: bytes,
                work_factor: int = DEFAULT_WORK_FACTOR, salt: bytes | None = None) -> Stanza:
    """An scrypt stanza; `salt` (16 bytes) only for known-answer tests."""
    if not isinstance(work_factor, int) or not 1 <= work_factor <= MAX_WORK_FACTOR:
        raise ValueError(f"scrypt work factor must be 1 to {MAX_WORK_FACTOR}")
    if not passphrase:
        raise ValueError("an empty passphrase protects nothing")
    salt = os.urandom(16) if salt is None else salt
    if len(salt) != 16:
        raise ValueError("scrypt salt must be 16 bytes")
    wrap_key = _scrypt_key(_passphrase_bytes(passphrase), salt, work_factor)
    return Stanza("scrypt", (_b64encode(salt).decode(), str(work_factor)),
                  _seal_file_key(wrap_key, file_key))


def assemble(file_key: bytes, stanzas: Sequence[Stanza], nonce: bytes) -> NewHeader:
    """The header for these stanzas, MAC'd with `file_key`."""
    if len(file_key) != FILE_KEY_SIZE or len(nonce) != NONCE_SIZE:
        raise ValueError("file key and nonce must be 16 bytes")
    if not stanzas:
        raise ValueError("a header needs at least one stanza")
    covered = VERSION_LINE + b"\n" + b"".join(s.to_bytes() for s in stanzas) + b"---"
    mac = hmac.new(_mac_key(file_key), covered, "sha256").digest()
    return NewHeader(covered + b" " + _b64encode(mac) + b"\n", nonce,
                     payload_key(file_key, nonce))


def new_header(recipients: Iterable[X25519Recipient] = (), passphrase: str | bytes | None = None,
               work_factor: int = DEFAULT_WORK_FACTOR) -> NewHeader:
    """A header with a fresh file key and nonce, for X25519 recipients or for
    one passphrase (never both: an scrypt stanza must be the only one)."""
    recipients = list(recipients)
    if passphrase is not None and recipients:
        raise ValueError("encrypt to recipients or to a passphrase, not both")
    if passphrase is None and not recipients:
        raise ValueError("no recipient and no passphrase to encrypt to")
    file_key = os.urandom(FILE_KEY_SIZE)
    if passphrase is not None:
        stanzas = [wrap_scrypt(passphrase, file_key, work_factor)]
    else:
        stanzas = [wrap_x25519(r, file_key) for r in recipients]
    return assemble(file_key, stanzas, os.urandom(NONCE_SIZE))


# -- reading ------------------------------------------------------------------

@dataclass(frozen=True)
class Header:
    """A parsed header: its stanzas, its MAC, the bytes the MAC covers (from
    the first byte through the last line's ``---``) and its whole length
    (through the MAC line's LF, where the nonce starts)."""

    stanzas: tuple[Stanza, ...]
    mac: bytes
    mac_input: bytes = field(repr=False)
    length: int


# Until the MAC line begins, at least that line ("--- " + 43 + LF) is still
# to come in a valid header: reading that much ahead never takes a byte of
# the nonce, so the caller's next read gets it, without a read per byte.
_LOOKAHEAD = 4 + 43 + 1


class _LineReader:
    """Lines from `read`, never reading past the end of a valid header, and
    never more than `limit` bytes of header."""

    def __init__(self, read: Callable[[int], bytes], limit: int):
        self._read = read
        self._limit = limit
        self._taken = 0
        self._buffer = b""

    def _take(self, n: int, fill: int) -> bytes:
        """Up to `n` bytes; when the buffer is empty, one read of `fill`."""
        if not self._buffer:
            self._buffer = self._read(fill)
            if not self._buffer:
                raise _malformed("truncated")
        out, self._buffer = self._buffer[:n], self._buffer[n:]
        self._taken += len(out)
        if self._taken > self._limit:
            raise _malformed(f"longer than {self._limit} bytes")
        return out

    def exact(self, n: int, *, mac_line: bool = False) -> bytes:
        """`n` bytes.  In the MAC line (`mac_line`), the header ends exactly
        n bytes on: read no more than that."""
        out = b""
        while len(out) < n:
            want = n - len(out)
            out += self._take(want, want if mac_line else _LOOKAHEAD)
        return out

    def line(self, limit: int, start: bytes = b"") -> bytes:
        """The rest of a line (without its LF) that began with `start`; a
        line longer than `limit` bytes (LF excluded) is an error."""
        out = bytearray(start)
        while True:
            chunk = self._take(limit + 1 - len(out) + 1, _LOOKAHEAD)
            end = chunk.find(b"\n")
            if end >= 0:
                # Give back what follows the LF.
                self._buffer = chunk[end + 1:] + self._buffer
                self._taken -= len(chunk) - end - 1
                chunk = chunk[:end]
            if b"\r" in chunk:
                raise _malformed("carriage return")
            out += chunk
            if len(out) > limit:
                raise _malformed("line too long")
            if end >= 0:
                return bytes(out)


def _split_args(line: bytes, prefix: bytes) -> list[str]:
    """The arguments of a '-> …' or '--- …' line: single-space separated runs
    of 0x21–0x7E (so a double or trailing space is an error)."""
    parts = line.split(b" ")
    if parts[0] != prefix:
        raise _malformed("unexpected line")
    args = parts[1:]
    for a in args:
        if not a or any(not 0x21 <= c <= 0x7E for c in a):
            raise _malformed("invalid stanza argument")
    return [a.decode("ascii") for a in args]


def read_header(read: Callable[[int], bytes], *, max_size: int = MAX_HEADER,
                max_stanzas: int = MAX_STANZAS) -> Header:
    """Parse a header from `read` (a binary file's read), consuming exactly the
    header when it is valid: the next bytes read are the nonce.  (A read may
    return fewer bytes than asked, as a pipe's does; b"" is the end.)"""
    src = _LineReader(read, max_size)
    text = bytearray()

    def line(limit: int, start: bytes = b"") -> bytes:
        got = src.line(limit, start)
        text.extend(got + b"\n")
        return got

    first = line(256)
    if first != VERSION_LINE:
        if first.startswith(b"age-encryption.org/"):
            raise _malformed("unsupported version")
        if first.startswith(b"-----BEGIN AGE"):
            raise DecryptionError("ASCII-armored age files are not supported: dearmor it first")
        raise DecryptionError("not an age file")

    stanzas: list[Stanza] = []
    while True:
        start = src.exact(3)
        if b"\r" in start:
            raise _malformed("carriage return")
        if b"\n" in start:
            raise _malformed("expected a stanza or the MAC line")
        if start == b"---":
            # The rest of a valid MAC line is exactly " " + 43 + LF.
            rest = src.exact(_LOOKAHEAD - 3, mac_line=True)
            if b"\r" in rest:
                raise _malformed("carriage return")
            if rest.find(b"\n") != len(rest) - 1:
                raise _malformed("invalid MAC line")
            mac_line = start + rest[:-1]
            text.extend(start + rest)
            args = _split_args(mac_line, b"---")
            if len(args) != 1:
                raise _malformed("MAC line must have exactly one argument")
            mac = _b64decode(args[0].encode())
            if mac is None or len(mac) != MAC_SIZE:
                raise _malformed("invalid MAC encoding")
            break
        if not start.startswith(b"->"):
            raise _malformed("expected a stanza or the MAC line")
        if len(stanzas) >= max_stanzas:
            raise _malformed(f"more than {max_stanzas} stanzas")
        args = _split_args(line(max_size, start), b"->")
        if not args:
            raise _malformed("stanza without a type")
        body = bytearray()
        while True:
            row = line(COLUMNS)
            decoded = _b64decode(row)
            if decoded is None:
                raise _malformed("invalid stanza body encoding")
            body += decoded
            if len(row) < COLUMNS:
                break
        stanzas.append(Stanza(args[0], tuple(args[1:]), bytes(body)))
    if not stanzas:
        raise _malformed("no stanzas")
    mac_input = bytes(text[:len(text) - len(mac_line) - 1 + 3])
    return Header(tuple(stanzas), mac, mac_input, len(text))


def read_nonce(read: Callable[[int], bytes]) -> bytes:
    """The 16-byte nonce after the header."""
    out = bytearray()
    while len(out) < NONCE_SIZE:
        chunk = read(NONCE_SIZE - len(out))
        if not chunk:
            raise DecryptionError("truncated age file: no payload nonce")
        out += chunk
    return bytes(out)


# -- unwrapping ---------------------------------------------------------------

def _x25519_share(stanza: Stanza) -> bytes:
    """Stanza checks before any decryption (C2SP age: X25519 recipient type)."""
    if len(stanza.args) != 1:
        raise _malformed("X25519 stanza must have exactly one argument")
    share = _b64decode(stanza.args[0].encode())
    if share is None or len(share) != 32:
        raise _malformed("invalid X25519 share")
    if len(stanza.body) != 32:
        raise _malformed("X25519 stanza body must be 32 bytes")
    return share


def _unwrap_x25519(stanzas: Sequence[Stanza], identities: Sequence[X25519Identity]
                   ) -> bytes | None:
    checked = [(s, _x25519_share(s)) for s in stanzas if s.type == "X25519"]
    for identity in identities:
        key = identity.private_key()
        for stanza, share in checked:
            try:
                shared = key.exchange(X25519PublicKey.from_public_bytes(share))
            except ValueError:
                # The all-zero shared secret of a low-order share.
                raise _malformed("X25519 share is a low-order point") from None
            wrap_key = _hkdf(shared, share + identity.recipient.raw, _X25519_INFO)
            try:
                return ChaCha20Poly1305(wrap_key).decrypt(_ZERO_NONCE, stanza.body, None)
            except InvalidTag:
                continue      # a stanza for someone else
    return None


def _unwrap_scrypt(stanza: Stanza, passphrase: bytes, max_work_factor: int) -> bytes:
    if len(stanza.args) != 2:
        raise _malformed("scrypt stanza must have exactly two arguments")
    salt = _b64decode(stanza.args[0].encode())
    if salt is None or len(salt) != 16:
        raise _malformed("invalid scrypt salt")
    if _LOG_N.fullmatch(stanza.args[1]) is None:
        raise _malformed("invalid scrypt work factor")
    # The regex bounds the text, not the number: compare short ones only.
    log_n = int(stanza.args[1]) if len(stanza.args[1]) <= 3 else None
    if log_n is None or log_n > max_work_factor:
        raise DecryptionError(f"passphrase: scrypt work factor {stanza.args[1][:8]} exceeds "
                              f"the limit ({max_work_factor})")
    if len(stanza.body) != 32:
        raise _malformed("scrypt stanza body must be 32 bytes")
    wrap_key = _scrypt_key(passphrase, salt, log_n)
    try:
        return ChaCha20Poly1305(wrap_key).decrypt(_ZERO_NONCE, stanza.body, None)
    except InvalidTag:
        raise DecryptionError("incorrect passphrase") from None


def unwrap(header: Header, nonce: bytes, identities: Iterable[X25519Identity] = (),
           passphrase: str | bytes | None = None,
           max_work_factor: int = READ_WORK_FACTOR) -> bytes:
    """The payload key, once a file key is unwrapped and the header MAC holds.
    A scrypt work factor above max_work_factor is refused unread."""
    identities = list(identities)
    if not identities and passphrase is None:
        raise ValueError("no identity and no passphrase to decrypt with")
    if len(nonce) != NONCE_SIZE:
        raise DecryptionError("truncated age file: no payload nonce")
    stanzas = header.stanzas
    has_scrypt = any(s.type == "scrypt" for s in stanzas)
    if has_scrypt and len(stanzas) != 1:
        # Otherwise whoever holds an X25519 identity could re-wrap the file
        # key for any passphrase and pass the file off as passphrase-only.
        raise _malformed("an scrypt stanza must be the only stanza")
    file_key = None
    if has_scrypt:
        if passphrase is None:
            raise DecryptionError("no identity matches (the file is encrypted with a "
                                  "passphrase)")
        file_key = _unwrap_scrypt(stanzas[0], _passphrase_bytes(passphrase), max_work_factor)
    else:
        file_key = _unwrap_x25519(stanzas, identities)
        if file_key is None:
            if not identities:
                raise DecryptionError("the file is not encrypted with a passphrase")
            raise DecryptionError("no identity matches")
    if len(file_key) != FILE_KEY_SIZE:
        raise _malformed("file key is not 16 bytes")
    mac = hmac.new(_mac_key(file_key), header.mac_input, "sha256").digest()
    if not hmac.compare_digest(mac, header.mac):
        raise DecryptionError("header MAC mismatch")
    return payload_key(file_key, nonce)

"""minisign-compatible Ed25519 signatures over a BLAKE2b-512 digest.

Files (minisign's own formats, two lines each plus two more for a signature):

- public key: ``untrusted comment: …`` then base64 of ``Ed`` ‖ key ID (8) ‖
  Ed25519 public key (32);
- secret key: base64 of 158 bytes: ``Ed``, KDF (``Sc`` or 00 00), ``B2``,
  salt, scrypt limits, then key ID ‖ secret key ‖ BLAKE2b-256 checksum;
- signature: ``ED`` ‖ key ID ‖ Ed25519(BLAKE2b-512(file)), a trusted
  comment, and a global signature over that signature and the comment.

Only prehashed (``ED``) signatures are written or accepted: the legacy
``Ed`` form signs the whole file, which a streaming tool cannot hold, and
minisign's documentation asks new implementations to leave it off.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from ..errors import KeyFormatError, SignatureError

__all__ = ["PublicKey", "Signature", "SigningKey", "blake2b_file", "format_key_id", "sign",
           "verify"]

KEY_ALG = b"Ed"
PREHASHED = b"ED"
LEGACY = b"Ed"
KDF_NONE = b"\0\0"
KDF_SCRYPT = b"Sc"
CHECKSUM_ALG = b"B2"
DIGEST_SIZE = 64

UNTRUSTED_PREFIX = "untrusted comment: "
TRUSTED_PREFIX = "trusted comment: "
DEFAULT_SIG_COMMENT = "signature from minisign secret key"
# minisign reads lines with fgets into 1 024- and 8 192-byte buffers: a line,
# its LF included, must leave room for the terminating NUL.
MAX_UNTRUSTED_LINE = 1023
MAX_TRUSTED_LINE = 8191
MAX_SIGNATURE_FILE = 64 << 10    # four short lines; more is not a signature
MAX_KEY_FILE = 64 << 10

_B64_PADDED = re.compile(rb"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_SECRET_KEY_SIZE = 158
_ENCRYPTED = slice(54, 158)      # key ID, secret key, checksum: what scrypt output masks
# Bounds on what a secret key file may ask scrypt for (the defaults need
# N = 2^20, 1 GiB): a hostile file must not exhaust memory or time.
_MAX_SCRYPT_MEMORY = 2 << 30
# libsodium's SENSITIVE limits, which minisign -G stores in every key.
SCRYPT_OPSLIMIT = 33554432
SCRYPT_MEMLIMIT = 1073741824
_MAX_SCRYPT_P = 64


def format_key_id(key_id: bytes) -> str:
    """How minisign prints a key ID: %016X of the bytes as a little-endian u64."""
    return f"{struct.unpack('<Q', key_id)[0]:016X}"


def _b64decode(text: bytes) -> bytes | None:
    """Padded standard base64, canonical (stricter than minisign, which leaves
    the unused bits of the last character unchecked), or None."""
    if _B64_PADDED.fullmatch(text) is None:
        return None
    try:
        data = base64.b64decode(text, validate=True)
    except binascii.Error:
        return None
    return data if base64.b64encode(data) == text else None


def _file_lines(text: str | bytes, limit: int, what: str, error: type[Exception]) -> list[bytes]:
    """Lines as minisign reads them: one LF stripped, then one CR; any other
    CR is an error (minisign master), and so is a file over `limit`."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
    if len(data) > limit:
        raise error(f"{what}: longer than {limit} bytes")
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    out = []
    for raw in lines:
        line = raw[:-1] if raw.endswith(b"\r") else raw
        if b"\r" in line:
            raise error(f"{what}: stray carriage return")
        out.append(line)
    return out


# -- keys ---------------------------------------------------------------------

class PublicKey:
    """A minisign public key: a key ID and an Ed25519 public key."""

    __slots__ = ("_key", "key_id", "raw")

    def __init__(self, key_id: bytes, raw: bytes):
        if len(key_id) != 8 or len(raw) != 32:
            raise KeyFormatError("a minisign public key is an 8-byte ID and 32 bytes")
        self.key_id = bytes(key_id)
        self.raw = bytes(raw)
        self._key = Ed25519PublicKey.from_public_bytes(self.raw)

    @classmethod
    def from_text(cls, text: str | bytes) -> PublicKey:
        """From a public key file's text or its bare base64 line (`minisign -P`)."""
        lines = [x for x in _file_lines(text, MAX_KEY_FILE, "minisign public key",
                                        KeyFormatError)]
        if len(lines) >= 2 and lines[0].startswith(UNTRUSTED_PREFIX.encode()):
            line = lines[1]
        elif len(lines) == 1:
            line = lines[0].strip()
        else:
            raise KeyFormatError("minisign public key: expected the untrusted comment line "
                                 "and the key line, or the key line alone")
        data = _b64decode(line)
        if data is None or len(data) != 42:
            raise KeyFormatError("minisign public key: not base64 of 42 bytes")
        if data[:2] != KEY_ALG:
            raise KeyFormatError("minisign public key: unsupported algorithm")
        return cls(data[2:10], data[10:])

    @property
    def key_id_text(self) -> str:
        return format_key_id(self.key_id)

    @property
    def line(self) -> str:
        """The base64 line (what `minisign -P` takes)."""
        return base64.b64encode(KEY_ALG + self.key_id + self.raw).decode()

    @property
    def text(self) -> str:
        return f"{UNTRUSTED_PREFIX}minisign public key {self.key_id_text}\n{self.line}\n"

    def verify_raw(self, signature: bytes, message: bytes) -> bool:
        try:
            self._key.verify(signature, message)
        except InvalidSignature:
            return False
        return True

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, PublicKey) and other.key_id == self.key_id
                and other.raw == self.raw)

    def __hash__(self) -> int:
        return hash((self.key_id, self.raw))

    def __repr__(self) -> str:
        return f"PublicKey({self.key_id_text}, {self.line!r})"


def _pickparams(opslimit: int, memlimit: int) -> tuple[int, int, int]:
    """(log2 N, r, p) as libsodium's scryptsalsa208sha256 derives them from
    the two limits stored in a minisign secret key."""
    opslimit = max(opslimit, 32768)
    r = 8
    if opslimit < memlimit // 32:
        p = 1
        max_n = opslimit // (r * 4)
        log_n = _smallest_log_n(max_n)
    else:
        max_n = memlimit // (r * 128)
        log_n = _smallest_log_n(max_n)
        max_rp = min((opslimit // 4) // (1 << log_n), 0x3FFFFFFF)
        p = max_rp // r
    return log_n, r, p


def _smallest_log_n(max_n: int) -> int:
    log_n = 1
    while log_n < 63 and (1 << log_n) <= max_n // 2:
        log_n += 1
    return log_n


def _scrypt_mask(password: bytes, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    log_n, r, p = _pickparams(opslimit, memlimit)
    if p < 1 or p > _MAX_SCRYPT_P or 128 * r * (1 << log_n) > _MAX_SCRYPT_MEMORY:
        raise KeyFormatError("minisign secret key: scrypt parameters out of range")
    kdf = Scrypt(salt=salt, length=_ENCRYPTED.stop - _ENCRYPTED.start, n=1 << log_n, r=r, p=p)
    return kdf.derive(password)


def _checksum(key_id: bytes, secret: bytes) -> bytes:
    return hashlib.blake2b(KEY_ALG + key_id + secret, digest_size=32).digest()


class SigningKey:
    """A minisign secret key: key ID and Ed25519 seed."""

    __slots__ = ("_key", "key_id")

    def __init__(self, key_id: bytes, seed: bytes):
        if len(key_id) != 8 or len(seed) != 32:
            raise KeyFormatError("a minisign secret key is an 8-byte ID and a 32-byte seed")
        self.key_id = bytes(key_id)
        self._key = Ed25519PrivateKey.from_private_bytes(bytes(seed))

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(os.urandom(8), os.urandom(32))

    @property
    def public_key(self) -> PublicKey:
        return PublicKey(self.key_id, self._key.public_key().public_bytes_raw())

    def sign_raw(self, message: bytes) -> bytes:
        return self._key.sign(message)

    def _secret(self) -> bytes:
        return self._key.private_bytes_raw() + self._key.public_key().public_bytes_raw()

    def secret_key_text(self, comment: str | None = None, *,
                        password: str | bytes | None = None,
                        opslimit: int = SCRYPT_OPSLIMIT,
                        memlimit: int = SCRYPT_MEMLIMIT) -> str:
        """The secret key file.  Without `password`, unencrypted (what
        `minisign -G -W` writes, with the checksum filled in, which minisign
        ignores without a KDF); with one, `Sc`-encrypted as `minisign -G`
        does, under the scrypt limits given (minisign's defaults: N = 2^20)."""
        secret = self._secret()
        plain = self.key_id + secret + _checksum(self.key_id, secret)
        if password is None:
            head = KDF_NONE + CHECKSUM_ALG + bytes(32) + bytes(16)
            body = plain
            comment = "minisign unencrypted secret key" if comment is None else comment
        else:
            if not password:
                raise ValueError("an empty password protects nothing")
            salt = os.urandom(32)
            pw = password.encode("utf-8") if isinstance(password, str) else bytes(password)
            mask = _scrypt_mask(pw, salt, opslimit, memlimit)
            head = KDF_SCRYPT + CHECKSUM_ALG + salt + struct.pack("<QQ", opslimit, memlimit)
            body = bytes(a ^ b for a, b in zip(plain, mask))
            comment = "minisign encrypted secret key" if comment is None else comment
        blob = KEY_ALG + head + body
        return f"{UNTRUSTED_PREFIX}{_comment(comment, MAX_UNTRUSTED_LINE, UNTRUSTED_PREFIX)}\n" \
               f"{base64.b64encode(blob).decode()}\n"

    @classmethod
    def from_secret_key_text(cls, text: str | bytes,
                             password: str | bytes | None = None) -> SigningKey:
        """From a secret key file: unencrypted (KDF 00 00), or `Sc` with `password`."""
        lines = _file_lines(text, MAX_KEY_FILE, "minisign secret key", KeyFormatError)
        if len(lines) < 2 or not lines[0].startswith(UNTRUSTED_PREFIX.encode()):
            raise KeyFormatError("minisign secret key: expected the untrusted comment line "
                                 "and the key line")
        data = _b64decode(lines[1])
        if data is None or len(data) != _SECRET_KEY_SIZE:
            raise KeyFormatError(f"minisign secret key: not base64 of {_SECRET_KEY_SIZE} bytes")
        if data[:2] != KEY_ALG or data[4:6] != CHECKSUM_ALG:
            raise KeyFormatError("minisign secret key: unsupported algorithm")
        kdf = data[2:4]
        if kdf == KDF_SCRYPT:
            if password is None:
                raise KeyFormatError("minisign secret key is encrypted: a password is needed")
            pw = password.encode("utf-8") if isinstance(password, str) else bytes(password)
            opslimit, memlimit = struct.unpack("<QQ", data[38:54])
            mask = _scrypt_mask(pw, data[6:38], opslimit, memlimit)
            plain = bytes(a ^ b for a, b in zip(data[_ENCRYPTED], mask))
            data = data[:_ENCRYPTED.start] + plain
        elif kdf != KDF_NONE:
            raise KeyFormatError("minisign secret key: unsupported key derivation")
        key_id, secret, checksum = data[54:62], data[62:126], data[126:158]
        # minisign -G -W leaves the checksum zero; anything else must hold
        # (with Sc, a mismatch is what a wrong password looks like).
        if (kdf == KDF_SCRYPT or checksum != bytes(32)) and \
                not hmac.compare_digest(checksum, _checksum(key_id, secret)):
            raise KeyFormatError("minisign secret key: checksum mismatch (wrong password or "
                                 "damaged key)" if kdf == KDF_SCRYPT
                                 else "minisign secret key: checksum mismatch")
        key = cls(key_id, secret[:32])
        if key.public_key.raw != secret[32:]:
            raise KeyFormatError("minisign secret key: public half does not match the seed")
        return key

    def write(self, secret_path: os.PathLike[str] | str, public_path: os.PathLike[str] | str,
              *, password: str | bytes | None = None) -> None:
        """Write the secret key file (mode 0600; encrypted if `password` is
        given) and the public key file; FileExists if either name is taken
        (checked before writing)."""
        from .keyfiles import write_private_file

        for p in (secret_path, public_path):
            if os.path.lexists(p):
                from ..platform.files import FileExists

                raise FileExists(p)
        write_private_file(secret_path,
                           self.secret_key_text(password=password).encode("utf-8"))
        write_private_file(public_path, self.public_key.text.encode("ascii"))

    def __repr__(self) -> str:
        return f"SigningKey({format_key_id(self.key_id)})"


def _comment(text: str, max_line: int, prefix: str) -> str:
    """A comment checked to fit minisign's line buffer, on one line."""
    if "\n" in text or "\r" in text:
        raise ValueError("a minisign comment must be one line")
    if len((prefix + text).encode("utf-8")) + 1 > max_line:
        raise ValueError(f"a minisign comment line must fit in {max_line} bytes")
    return text


def _printable(text: bytes) -> bool:
    # minisign master: UTF-8 without control characters, TAB excepted.
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(c == "\t" or not (ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F) for c in decoded)


# -- signatures ---------------------------------------------------------------

@dataclass(frozen=True)
class Signature:
    """A parsed .minisig file."""

    algorithm: bytes
    key_id: bytes
    signature: bytes = field(repr=False)
    trusted_comment: str
    global_signature: bytes = field(repr=False)
    untrusted_comment: str = ""

    @property
    def key_id_text(self) -> str:
        return format_key_id(self.key_id)

    @classmethod
    def parse(cls, text: str | bytes) -> Signature:
        """Parse strictly, in the order `minisign -V` checks (after the key)."""
        lines = _file_lines(text, MAX_SIGNATURE_FILE, "minisign signature", SignatureError)
        raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
        raw_lines = raw.split(b"\n")
        if len(lines) < 4:
            raise SignatureError("minisign signature: fewer than four lines")
        untrusted, sig_line, trusted, global_line = lines[:4]
        # Line lengths as fgets sees them: the raw line with its LF.
        if not untrusted.startswith(UNTRUSTED_PREFIX.encode()):
            raise SignatureError("minisign signature: no untrusted comment line")
        if len(raw_lines[0]) + 1 > MAX_UNTRUSTED_LINE:
            raise SignatureError("minisign signature: untrusted comment line too long")
        blob = _b64decode(sig_line)
        if blob is None or len(blob) != 74:
            raise SignatureError("minisign signature: line 2 is not base64 of 74 bytes")
        if not trusted.startswith(TRUSTED_PREFIX.encode()):
            raise SignatureError("minisign signature: no trusted comment line")
        if len(raw_lines[2]) + 1 > MAX_TRUSTED_LINE:
            raise SignatureError("minisign signature: trusted comment line too long")
        comment = trusted[len(TRUSTED_PREFIX):]
        if not _printable(comment):
            raise SignatureError("minisign signature: trusted comment is not printable UTF-8")
        global_sig = _b64decode(global_line)
        if global_sig is None or len(global_sig) != 64:
            raise SignatureError("minisign signature: line 4 is not base64 of 64 bytes")
        algorithm = blob[:2]
        if algorithm not in (PREHASHED, LEGACY):
            raise SignatureError("minisign signature: unsupported algorithm")
        return cls(algorithm, blob[2:10], blob[10:], comment.decode("utf-8"), global_sig,
                   untrusted[len(UNTRUSTED_PREFIX):].decode("utf-8", "replace"))


def sign(signing_key: SigningKey, digest: bytes, trusted_comment: str,
         untrusted_comment: str = DEFAULT_SIG_COMMENT) -> str:
    """The .minisig text for a file whose BLAKE2b-512 digest is `digest`."""
    if len(digest) != DIGEST_SIZE:
        raise ValueError("the digest must be BLAKE2b-512 (64 bytes)")
    _comment(untrusted_comment, MAX_UNTRUSTED_LINE, UNTRUSTED_PREFIX)
    _comment(trusted_comment, MAX_TRUSTED_LINE, TRUSTED_PREFIX)
    if not _printable(trusted_comment.encode("utf-8")):
        raise ValueError("the trusted comment must be printable (TAB allowed)")
    sig = signing_key.sign_raw(digest)
    # The global signature binds the comment to this signature (and so to
    # the file): the comment cannot be swapped between signatures.
    global_sig = signing_key.sign_raw(sig + trusted_comment.encode("utf-8"))
    blob = PREHASHED + signing_key.key_id + sig
    return (f"{UNTRUSTED_PREFIX}{untrusted_comment}\n"
            f"{base64.b64encode(blob).decode()}\n"
            f"{TRUSTED_PREFIX}{trusted_comment}\n"
            f"{base64.b64encode(global_sig).decode()}\n")


def verify(signature: Signature | str | bytes, digest: bytes,
           trusted_keys: Iterable[PublicKey]) -> PublicKey:
    """The trusted key that made `signature` over `digest`; SignatureError
    otherwise.  The trusted comment is only trustworthy after this returns."""
    if not isinstance(signature, Signature):
        signature = Signature.parse(signature)
    if len(digest) != DIGEST_SIZE:
        raise ValueError("the digest must be BLAKE2b-512 (64 bytes)")
    if signature.algorithm != PREHASHED:
        raise SignatureError("legacy (non-prehashed, Ed) minisign signatures are not accepted")
    candidates = [k for k in trusted_keys if k.key_id == signature.key_id]
    if not candidates:
        raise SignatureError(f"signed by key {signature.key_id_text}, which is not trusted")
    # Key IDs are random, not bound to the key: two trusted keys may share one.
    key = next((k for k in candidates if k.verify_raw(signature.signature, digest)), None)
    if key is None:
        raise SignatureError(f"signature by key {signature.key_id_text} does not verify")
    if not key.verify_raw(signature.global_signature,
                          signature.signature + signature.trusted_comment.encode("utf-8")):
        raise SignatureError(f"trusted comment signature by key {signature.key_id_text} "
                             "does not verify")
    return key


def blake2b_file(read: Callable[[int], bytes], chunk_size: int = 1 << 20) -> bytes:
    """BLAKE2b-512 of everything `read` returns until EOF (what ED signs)."""
    h = hashlib.blake2b()
    while True:
        chunk = read(chunk_size)
        if not chunk:
            return h.digest()
        h.update(chunk)

"""Signed archives: a minisign signature (Ed25519 over the BLAKE2b-512 of
the archive file exactly as stored, encrypted or not) in a file beside it,
``NAME.minisig``, which stock ``minisign -Vm NAME -p KEY.pub`` verifies.  A
backup written to a stream carries the same kind of signature inside, as its
last frame (framing.pack_signature), over the archive bytes before it.

The signed trusted comment names what a relabelled or replayed archive would
have to change: the DC, the backup time, the expiry token (by its SHA-256)
and the file name.  The digest already commits to every byte, the manifest
included; the comment makes the same facts visible to minisign, and a
reader checks that they agree with the manifest, so a signature made for
one backup can never vouch for another.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SignatureError
from ..platform.files import PositionedReads

SIGNATURE_SUFFIX = ".minisig"
COMMENT_FORMAT = "ntdsbackup-1"
MAX_SIGNATURE_FILE = 16 << 10       # a .minisig is under 9 KiB by its own limits
_READ_BLOCK = 4 << 20


def signature_path(archive: os.PathLike[str] | str) -> Path:
    return Path(os.fspath(archive) + SIGNATURE_SUFFIX)


def token_digest(token: bytes) -> str:
    return hashlib.sha256(token).hexdigest()


def trusted_comment(*, server: str, created_unix: int, token: bytes, file_name: str) -> str:
    """Tab-separated key:value pairs, minisign's own first (timestamp, file)."""
    return "\t".join([f"timestamp:{created_unix}", f"file:{file_name}", f"server:{server}",
                      f"token-sha256:{token_digest(token)}", f"format:{COMMENT_FORMAT}"])


def sign(signing_key, digest: bytes, *, server: str, created_unix: int,
         token: bytes | None, file_name: str) -> str:
    """The .minisig text for an archive whose stored bytes have `digest`."""
    from ..crypto import minisign

    if token is None:
        raise SignatureError("no expiry token to sign (DsBackupPrepareW gave none)")
    comment = trusted_comment(server=server, created_unix=created_unix, token=token,
                              file_name=file_name)
    return minisign.sign(signing_key, digest, comment,
                         untrusted_comment=f"ntdsbackup archive of {server}")


@dataclass
class Trust:
    """What a reader demands: a valid signature by one of `keys` (minisign
    public keys), read from `signature` or else from NAME.minisig beside the
    archive.  An unsigned archive is then refused."""

    keys: Sequence[object]
    signature: str | os.PathLike[str] | None = None

    def detached_text(self, archive: object) -> str | None:
        """The signature file's text: --signature, else NAME.minisig beside a
        file; None when there is none (the archive may carry one inside)."""
        if self.signature is not None:
            return read_signature_file(self.signature)
        if isinstance(archive, (str, os.PathLike)) and archive != "-":
            beside = signature_path(archive)
            if os.path.lexists(beside):
                return read_signature_file(beside)
        return None


@dataclass(frozen=True)
class SignedFacts:
    """What a verified signature vouches for."""

    key_id: str                # as minisign prints it
    server: str
    created_unix: int
    token_sha256: str
    file_name: str

    def as_dict(self) -> dict[str, Any]:
        return {"key_id": self.key_id, "server": self.server,
                "created_unix": self.created_unix, "file": self.file_name}


def stored_digest(fd: int) -> bytes:
    """BLAKE2b-512 of a whole file, read by position (the descriptor's own
    position is left alone); hashlib releases the GIL on large blocks."""
    from ..crypto import blake2b_file

    return blake2b_file(PositionedReads(fd), _READ_BLOCK)


def read_signature_file(path: os.PathLike[str] | str) -> str:
    """The text of a .minisig, bounded; a missing file is the clear error a
    user needs when a trusted key was given."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_SIGNATURE_FILE + 1)
    except FileNotFoundError:
        raise SignatureError(f"the archive is not signed: no signature file {path} (a trusted "
                             "key was given, so an unsigned archive is refused)") from None
    return parse_signature_file(raw, path)


def parse_signature_file(raw: bytes, name: object) -> str:
    """The text of a .minisig read as `raw` (at most MAX_SIGNATURE_FILE + 1
    bytes of it) from `name`, a file or an object."""
    if len(raw) > MAX_SIGNATURE_FILE:
        raise SignatureError(f"{name} is not a minisign signature (larger than "
                             f"{MAX_SIGNATURE_FILE} bytes)")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SignatureError(f"{name} is not a minisign signature (not UTF-8)") from None


NOT_SIGNED = ("the archive is not signed: no signature file beside it (NAME.minisig or "
              "--signature) and none inside it; a trusted key was given, so an unsigned "
              "archive is refused")


def check_embedded(fh, signature: tuple[str, int], trusted_keys: Sequence[object]
                   ) -> SignedFacts:
    """A signed stream's own signature (text, offset of its frame), checked
    over the archive bytes before it, read from `fh` (the plaintext)."""
    from ..crypto import minisign

    text, offset = signature
    sig = minisign.Signature.parse(text)
    fh.seek(0)
    left = offset

    def before_the_frame(n: int) -> bytes:
        nonlocal left
        block = fh.read(min(n, left)) if left else b""
        if left and not block:
            raise SignatureError("the archive ends before its signature frame")
        left -= len(block)
        return block
    key = minisign.verify(sig, minisign.blake2b_file(before_the_frame, _READ_BLOCK),
                          trusted_keys)
    return _facts(sig.trusted_comment, key)


def check_embedded_archive(fh, trusted_keys: Sequence[object]) -> SignedFacts:
    """The signature a signed stream carries inside (its last frame), found
    through the documents of the archive `fh` (seekable; the plaintext of an
    encrypted one) and checked over every byte before it."""
    from .ops import read_documents

    signature = read_documents(fh).get("signature")
    if signature is None:
        raise SignatureError(NOT_SIGNED)
    return check_embedded(fh, signature, trusted_keys)


def check(fd: int, signature_text: str, trusted_keys: Sequence[object]) -> SignedFacts:
    """Verify the signature over the file at `fd` against the trusted keys;
    the facts its trusted comment states.  SignatureError otherwise."""
    return check_digest(stored_digest(fd), signature_text, trusted_keys)


def check_digest(digest: bytes, signature_text: str, trusted_keys: Sequence[object]
                 ) -> SignedFacts:
    """check() for stored bytes whose BLAKE2b-512 the caller took (an
    object read over the network)."""
    from ..crypto import minisign

    sig = minisign.Signature.parse(signature_text)
    key = minisign.verify(sig, digest, trusted_keys)
    return _facts(sig.trusted_comment, key)


def _facts(comment: str, key) -> SignedFacts:
    fields: dict[str, str] = {}
    for part in comment.split("\t"):
        name, sep, value = part.partition(":")
        if sep:
            fields.setdefault(name, value)
    if fields.get("format") != COMMENT_FORMAT:
        raise SignatureError("the signature is valid but was not made by ntdsbackup for an "
                             "archive (its trusted comment lacks format:ntdsbackup-1)")
    try:
        created = int(fields["timestamp"])
        return SignedFacts(key.key_id_text, fields["server"], created, fields["token-sha256"],
                           fields.get("file", ""))
    except (KeyError, ValueError):
        raise SignatureError("the signature's trusted comment lacks the server, the time "
                             "or the token") from None


def check_manifest(facts: SignedFacts, manifest: dict[str, Any]) -> None:
    """The signed facts must be the manifest's: same DC, same backup time,
    same expiry token."""
    try:
        token = base64.b64decode(str(manifest.get("expiry_token", "")), validate=True)
    except ValueError:
        token = b""
    problems = []
    if str(manifest.get("server", "")).lower() != facts.server.lower():
        problems.append(f"server {facts.server} signed, {manifest.get('server')} in the archive")
    if manifest.get("created_unix") != facts.created_unix:
        problems.append(f"backup time {facts.created_unix} signed, "
                        f"{manifest.get('created_unix')} in the archive")
    if token_digest(token) != facts.token_sha256:
        problems.append("another expiry token was signed")
    if problems:
        raise SignatureError("the signature does not belong to this archive: "
                             + "; ".join(problems))


__all__ = ["MAX_SIGNATURE_FILE", "NOT_SIGNED", "SIGNATURE_SUFFIX", "SignedFacts", "Trust",
           "check", "check_digest", "check_embedded", "check_embedded_archive", "check_manifest",
           "parse_signature_file", "read_signature_file", "sign", "signature_path",
           "stored_digest", "trusted_comment"]

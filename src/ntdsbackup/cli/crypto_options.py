"""The options that encrypt and sign a backup, and those that decrypt and
authenticate one, with what they become: recipients, a passphrase, a
signing key; DecryptionKeys and Trust for the readers.

Secrets never come from the command line: a passphrase is read from
--passphrase-file, $NTDSB_PASSPHRASE or a prompt (credentials.py), and key
material from files only."""

from __future__ import annotations

import argparse
import os

from ..archive.envelope import DecryptionKeys
from ..archive.signing import Trust
from ..errors import KeyFileError
from .credentials import PASSPHRASE, PasswordError, read_password

__all__ = ["KeyFileError", "add_decryption_options", "add_encryption_options", "add_key_options",
           "decryption_keys", "encryption", "identities_in", "read_key_file", "trust"]

MAX_KEY_FILE = 16 << 20          # age's own limit for an identity file


def add_encryption_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("encryption and signing (age, minisign)")
    g.add_argument("-r", "--recipient", action="append", default=[], metavar="AGE1...",
                   help="encrypt to this age recipient (public key; repeatable): only its "
                        "identity can read the archive, not this host")
    g.add_argument("-R", "--recipients-file", action="append", default=[], metavar="FILE",
                   help="encrypt to every recipient in FILE (one age1... per line; repeatable)")
    g.add_argument("--passphrase", action="store_true",
                   help="encrypt with a passphrase (scrypt), read from --passphrase-file, "
                        "$NTDSB_PASSPHRASE or a prompt, never from the command line")
    g.add_argument("--passphrase-file", metavar="FILE",
                   help="the passphrase is the first line of FILE (implies --passphrase)")
    g.add_argument("--sign-key", metavar="FILE",
                   help="sign the archive with this minisign secret key: the signature is "
                        "written beside it, NAME.minisig")


def add_key_options(g: argparse._ActionsContainer) -> None:
    """The keys a reader decrypts with (decryption_keys reads them)."""
    g.add_argument("-i", "--identity", dest="age_identities", action="append", default=[],
                   metavar="FILE", help="age identity file to decrypt with (repeatable)")
    g.add_argument("--passphrase", action="store_true",
                   help="decrypt with a passphrase (from --passphrase-file, "
                        "$NTDSB_PASSPHRASE or a prompt)")
    g.add_argument("--passphrase-file", metavar="FILE",
                   help="the passphrase is the first line of FILE (implies --passphrase)")


def add_decryption_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("encrypted and signed archives")
    add_key_options(g)
    g.add_argument("--trusted-key", action="append", default=[], metavar="PUB",
                   help="refuse the archive unless it carries a valid signature by this "
                        "minisign public key (a .pub file or its RW... line; repeatable)")
    g.add_argument("--signature", metavar="FILE",
                   help="the signature file (default: ARCHIVE.minisig)")


def read_key_file(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_KEY_FILE + 1)
    except OSError as exc:
        raise KeyFileError(f"{what} {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_KEY_FILE:
        raise KeyFileError(f"{what} {path} is larger than {MAX_KEY_FILE} bytes")
    return data


def _passphrase(args, *, stdin_is_data: bool, confirm: bool) -> str | None:
    if not (getattr(args, "passphrase", False) or getattr(args, "passphrase_file", None)):
        return None
    return read_password("passphrase: ", password_file=args.passphrase_file,
                         stdin_is_data=stdin_is_data, secret=PASSPHRASE, confirm=confirm)


def encryption(args) -> dict:
    """backup()'s recipients, passphrase and signing_key from the options."""
    from ..crypto import SigningKey, X25519Recipient, read_recipients

    recipients = []
    try:
        recipients += [X25519Recipient.from_text(r) for r in args.recipient]
        for path in args.recipients_file:
            recipients += read_recipients(read_key_file(path, "--recipients-file"))
    except ValueError as exc:
        raise KeyFileError(f"recipient: {exc}") from None
    passphrase = _passphrase(args, stdin_is_data=False, confirm=True)
    if recipients and passphrase is not None:
        raise PasswordError("encrypt to recipients or with a passphrase, not both (age allows "
                            "a passphrase only as a file's one recipient)")
    signing_key = None
    if args.sign_key:
        text = read_key_file(args.sign_key, "--sign-key")
        try:
            signing_key = SigningKey.from_secret_key_text(text)
        except ValueError as exc:
            raise KeyFileError(f"--sign-key {args.sign_key}: {exc}") from None
    return {"recipients": recipients, "passphrase": passphrase, "signing_key": signing_key}


def identities_in(data: bytes, where: str) -> list:
    """The age identities of an identity file's bytes (at least one)."""
    from ..crypto import read_identities

    try:
        return read_identities(data)
    except ValueError as exc:
        raise KeyFileError(f"{where}: {exc}") from None


def decryption_keys(args, *, stdin_is_data: bool = False) -> DecryptionKeys | None:
    """The identities and passphrase a reader may decrypt with, or None."""
    identities = []
    for path in args.age_identities:
        identities += identities_in(read_key_file(path, "--identity"), f"--identity {path}")
    passphrase = _passphrase(args, stdin_is_data=stdin_is_data, confirm=False)
    keys = DecryptionKeys(identities, passphrase)
    return keys if keys else None


def trust(args) -> Trust | None:
    """The trusted signing keys (and the signature file), or None."""
    from ..crypto import PublicKey

    if not args.trusted_key:
        if args.signature:
            raise KeyFileError("--signature needs --trusted-key (whose signature to accept)")
        return None
    keys = []
    for item in args.trusted_key:
        text = item if item.startswith("RW") and not os.path.exists(item) else \
            read_key_file(item, "--trusted-key")
        try:
            keys.append(PublicKey.from_text(text))
        except ValueError as exc:
            raise KeyFileError(f"--trusted-key {item}: {exc}") from None
    return Trust(keys, args.signature)

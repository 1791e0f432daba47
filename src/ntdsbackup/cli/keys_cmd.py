"""The key commands: ``key generate`` (an age identity, or with --signing a
minisign key pair) and ``key public`` (what to hand to the DC: the
recipient, or the public key)."""

from __future__ import annotations

from pathlib import Path

from .common import print_json, say
from .crypto_options import KeyFileError, identities_in, read_key_file


def add_parsers(sub, common) -> None:
    p = sub.add_parser("key", parents=[common],
                       help="make and show the keys that encrypt and sign archives")
    keys = p.add_subparsers(dest="key_command", required=True, metavar="ACTION")
    g = keys.add_parser("generate", parents=[common],
                        help="write a new age identity (mode 0600) and print its recipient; "
                             "with --signing a minisign key pair (FILE and FILE.pub)")
    g.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="the secret key file to create (an existing file is refused)")
    g.add_argument("--signing", action="store_true",
                   help="a minisign signing key pair instead: FILE (secret) and FILE.pub")
    g.add_argument("--json", action="store_true")
    g.set_defaults(handler=cmd_generate)
    s = keys.add_parser("public", parents=[common],
                        help="print the recipient of an age identity file, or the public key "
                             "of a minisign secret key")
    s.add_argument("file", metavar="FILE")
    s.add_argument("--json", action="store_true")
    s.set_defaults(handler=cmd_public)


def cmd_generate(args) -> int:
    from ..crypto import SigningKey, X25519Identity, write_identity_file

    out = Path(args.output)
    if args.signing:
        key = SigningKey.generate()
        public = Path(f"{out}.pub")
        key.write(out, public)
        result = {"event": "key", "kind": "minisign", "secret_file": str(out),
                  "public_file": str(public), "public": key.public_key.line,
                  "key_id": key.public_key.key_id_text}
        text = [f"signing key {result['key_id']} written to {out} (keep it on the backup "
                f"host only); public key in {public}:", key.public_key.line]
    else:
        identity = X25519Identity.generate()
        write_identity_file(out, identity)
        result = {"event": "key", "kind": "age", "secret_file": str(out), "public_file": None,
                  "public": identity.recipient.text, "key_id": None}
        text = [f"age identity written to {out} (keep it offline: it decrypts every "
                "backup made to its recipient); the recipient, for backup -r:",
                identity.recipient.text]
    if args.json:
        print_json(result)
    else:
        say(args, *text)
    return 0


def cmd_public(args) -> int:
    from ..crypto import SigningKey

    data = read_key_file(args.file, "key file")
    if data.lstrip().startswith(b"untrusted comment:"):
        try:
            key = SigningKey.from_secret_key_text(data)
        except ValueError as exc:
            raise KeyFileError(f"{args.file}: {exc}") from None
        kind, public = "minisign", [key.public_key.line]
    else:
        kind, public = "age", [i.recipient.text for i in identities_in(data, args.file)]
    if args.json:
        print_json({"event": "public", "kind": kind, "public": public})
    else:
        say(args, *public)
    return 0

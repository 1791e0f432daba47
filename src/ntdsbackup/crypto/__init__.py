"""The crypto layer around the engine: age v1 headers (X25519 recipients or
a passphrase), age key files, and minisign-compatible signatures.

The engine seals and opens the STREAM payload with the key and nonce this
package produces; everything before the payload (and the detached
signature after it) is here, in pure Python on the `cryptography` package.
"""

from __future__ import annotations

from .age_header import (
    Header,
    NewHeader,
    Stanza,
    new_header,
    read_header,
    read_nonce,
    unwrap,
)
from .age_keys import (
    X25519Identity,
    X25519Recipient,
    identity_file_text,
    read_identities,
    read_recipients,
    write_identity_file,
)
from .keyfiles import write_private_file
from .minisign import (
    PublicKey,
    Signature,
    SigningKey,
    blake2b_file,
    format_key_id,
    sign,
    verify,
)

__all__ = ["Header", "NewHeader", "PublicKey", "Signature", "SigningKey", "Stanza",
           "X25519Identity", "X25519Recipient", "blake2b_file", "format_key_id",
           "identity_file_text", "new_header", "read_header", "read_identities",
           "read_nonce", "read_recipients", "sign", "unwrap", "verify", "write_identity_file",
           "write_private_file"]

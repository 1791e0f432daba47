"""What a manifest says about restorability: its expiry token."""

from __future__ import annotations

import base64
import binascii
from typing import Any


def token_of(manifest: dict[str, Any]) -> bytes | None:
    try:
        return base64.b64decode(manifest["expiry_token"], validate=True)
    except (KeyError, TypeError, ValueError, binascii.Error):
        return None

"""Bech32 (BIP-173, checksum constant 1; not bech32m), as age uses it.

Two departures from BIP-173, both age's: no 90-character limit (an age
identity is 74 characters, post-quantum keys are far longer), and the data
is whole bytes, converted to and from 5-bit groups here.  A string is all
upper or all lower case; the checksum is always computed on the lowercase
form, so the case of a key is cosmetic once that rule holds.
"""

from __future__ import annotations

__all__ = ["Bech32Error", "decode", "encode"]

_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_VALUE = {c: i for i, c in enumerate(_CHARSET)}
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
_CHECKSUM_LEN = 6


class Bech32Error(ValueError):
    """A string that is not valid bech32.  The message never quotes the
    string: callers decode secret keys with this module."""


def _polymod(values: list[int]) -> int:
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            if (top >> i) & 1:
                chk ^= _GENERATOR[i]
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convert_bits(data: bytes | list[int], from_bits: int, to_bits: int, pad: bool) -> list[int]:
    acc = 0
    bits = 0
    out: list[int] = []
    mask = (1 << to_bits) - 1
    for value in data:
        acc = (acc << from_bits) | value
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            out.append((acc >> bits) & mask)
    if pad:
        if bits:
            out.append((acc << (to_bits - bits)) & mask)
    elif bits >= from_bits or (acc << (to_bits - bits)) & mask:
        # Decoding: at most 4 bits of padding, and all of them zero, so that
        # each byte string has exactly one encoding.
        raise Bech32Error("bech32: invalid padding bits")
    return out


def _check_hrp(hrp: str) -> None:
    if not hrp:
        raise Bech32Error("bech32: empty human-readable part")
    if any(not 33 <= ord(c) <= 126 for c in hrp):
        raise Bech32Error("bech32: invalid character in the human-readable part")


def encode(hrp: str, data: bytes) -> str:
    """`hrp` + "1" + data + checksum, upper case if `hrp` is upper case."""
    _check_hrp(hrp)
    lower = hrp.lower()
    if hrp not in (lower, hrp.upper()):
        raise Bech32Error("bech32: mixed-case human-readable part")
    values = _convert_bits(data, 8, 5, True)
    polymod = _polymod(_hrp_expand(lower) + values + [0] * _CHECKSUM_LEN) ^ 1
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(_CHECKSUM_LEN)]
    text = lower + "1" + "".join(_CHARSET[v] for v in values + checksum)
    return text.upper() if hrp != lower else text


def decode(text: str) -> tuple[str, bytes]:
    """(human-readable part in the case given, data bytes)."""
    if not text.isascii():
        raise Bech32Error("bech32: non-ASCII character")
    lower = text.lower()
    if text not in (lower, text.upper()):
        raise Bech32Error("bech32: mixed case")
    # The separator is the last "1": the human-readable part may hold others.
    pos = text.rfind("1")
    if pos < 1 or pos + 1 + _CHECKSUM_LEN > len(text):
        raise Bech32Error("bech32: separator missing or misplaced")
    hrp = text[:pos]
    _check_hrp(hrp)
    try:
        values = [_VALUE[c] for c in lower[pos + 1:]]
    except KeyError:
        raise Bech32Error("bech32: invalid character in the data part") from None
    if _polymod(_hrp_expand(lower[:pos]) + values) != 1:
        raise Bech32Error("bech32: invalid checksum")
    return hrp, bytes(_convert_bits(values[:-_CHECKSUM_LEN], 5, 8, False))

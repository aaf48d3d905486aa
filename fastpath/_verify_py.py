"""Ed25519 verification of many signatures at once (the specification; ``_verify_c.pyx``
mirrors it and runs the whole batch without the GIL)."""

from __future__ import annotations

from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError

__all__ = ["verify_batch"]


def verify_batch(items: list[tuple[bytes, bytes]]) -> list[bool]:
    """``items`` are (signature + message, public key) pairs; True where the signature holds.

    A public key that is not 32 bytes or a signed message shorter than 64 bytes is False.
    """
    out = []
    for signed, public_key in items:
        if len(public_key) != 32 or len(signed) < 64:
            out.append(False)
            continue
        try:
            crypto_sign_open(signed, public_key)
        except BadSignatureError:
            out.append(False)
        else:
            out.append(True)
    return out

"""Python client: wallet keys, signing, and posting bets (CLI, tests and load harness)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
from nacl.signing import SigningKey

from gateway.protocol import bet_message, read_message

__all__ = ["SEED_LABEL", "KeyFileError", "Wallet", "bet_body", "read_headers"]


# The line of a key file that holds the secret seed (hex follows the label).
SEED_LABEL = "ed25519-seed:"


class KeyFileError(ValueError):
    """A file given as a key that is not one (the message says what it holds instead)."""


@dataclass(frozen=True)
class Wallet:
    """An Ed25519 key pair; ``address`` is the public key in hex."""

    key: SigningKey

    @classmethod
    def generate(cls) -> Wallet:
        return cls(SigningKey.generate())

    @classmethod
    def from_seed_hex(cls, seed: str) -> Wallet:
        return cls(SigningKey(bytes.fromhex(seed)))

    @classmethod
    def load(cls, path: Path) -> Wallet:
        """The wallet of a key file ``save`` wrote; :class:`KeyFileError` for anything else.

        A seed and a wallet address are both 64 hex digits, so the seed carries a label: a
        file holding only the hex (an address saved by mistake) is refused, never signed with.
        """
        lines = [
            line.strip()
            for line in path.read_text(encoding="ascii").splitlines()
            if line.strip() and not line.startswith("#")
        ]
        if len(lines) == 1 and lines[0].startswith(SEED_LABEL):
            seed = lines[0][len(SEED_LABEL) :]
            if len(seed) == 64:
                return cls.from_seed_hex(seed)
        if len(lines) == 1 and len(lines[0]) == 64:
            raise KeyFileError(
                "holds 64 bare hex digits, the shape of a wallet address (public, not a key); "
                f"a key from tapgate keygen has the line {SEED_LABEL}<seed>"
            )
        raise KeyFileError("not a key file written by tapgate keygen")

    def save(self, path: Path) -> None:
        """Write the labelled secret seed to ``path``, readable by its owner only."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(f"# tapgate wallet key, keep it secret; its address is {self.address}\n")
            f.write(f"{SEED_LABEL}{self.key.encode().hex()}\n")

    @property
    def address(self) -> str:
        return self.key.verify_key.encode().hex()

    def sign(self, message: bytes) -> str:
        return self.key.sign(message).signature.hex()


def bet_body(
    wallet: Wallet,
    *,
    market: str,
    cell_id: str,
    amount: int,
    nonce: str | None = None,
    timestamp: int | None = None,
    min_multiplier: str | None = None,
) -> dict[str, Any]:
    """A signed bet, ready to post as JSON."""
    nonce = nonce if nonce is not None else os.urandom(12).hex()
    timestamp = timestamp if timestamp is not None else int(time.time() * 1000)
    message = bet_message(wallet.address, market, cell_id, amount, nonce, timestamp, min_multiplier)
    body: dict[str, Any] = {
        "wallet": wallet.address,
        "market": market,
        "cell_id": cell_id,
        "amount": amount,
        "nonce": nonce,
        "timestamp": timestamp,
    }
    if min_multiplier is not None:
        body["min_multiplier"] = min_multiplier
    body["signature"] = wallet.sign(message)
    return body


def read_headers(
    wallet: Wallet, method: str, target: str, timestamp: int | None = None
) -> dict[str, str]:
    """Headers that sign a read of ``target`` (path plus ``?query`` as sent)."""
    timestamp = timestamp if timestamp is not None else int(time.time() * 1000)
    return {
        "X-Tapgate-Wallet": wallet.address,
        "X-Tapgate-Timestamp": str(timestamp),
        "X-Tapgate-Signature": wallet.sign(read_message(method, target, timestamp)),
    }


def post_bet(client: httpx.Client, body: dict[str, Any]) -> httpx.Response:
    return client.post(
        "/api/bets", content=orjson.dumps(body), headers={"content-type": "application/json"}
    )

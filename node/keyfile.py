"""Key and identity files: JSON holding an Ed25519 seed, written readable by the owner only.

A key file: {"public_key": hex, "key_id": hex, "seed": hex}. An identity file (what a member's
client signs with) adds "member_id", "role" and "chain_id".
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from provledger.protocol.crypto import SigningKey


def new_signing_key() -> SigningKey:
    return SigningKey.from_seed(os.urandom(32))


def save_key(path: Path, key: SigningKey, **extra: Any) -> None:
    document = {
        **extra,
        "public_key": key.public_key.hex(),
        "key_id": key.key_id.hex(),
        "seed": key.seed.hex(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(document, handle, indent=2)
        handle.write("\n")


def load_key(path: Path) -> tuple[SigningKey, dict[str, Any]]:
    document = json.loads(Path(path).read_text())
    return SigningKey.from_seed(bytes.fromhex(document["seed"])), document

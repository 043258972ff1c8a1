"""Key and identity files: JSON holding an Ed25519 seed, written readable by the owner only.

A key file: {"public_key": hex, "key_id": hex, "seed": hex}. An identity file (what a member's
client signs with) adds "member_id", "role" and "chain_id".

`save_key` leaves the file 0600 whatever was there before (`--force` over a 0644 file
included): see node/private_files.py.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from provledger.node.private_files import write_private_file
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
    write_private_file(path, (json.dumps(document, indent=2) + "\n").encode())


def load_key(path: Path) -> tuple[SigningKey, dict[str, Any]]:
    document = json.loads(Path(path).read_text())
    return SigningKey.from_seed(bytes.fromhex(document["seed"])), document

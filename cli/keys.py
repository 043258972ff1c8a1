"""`provledger keys new`: an Ed25519 key file for a member or a validator."""

from __future__ import annotations

import argparse
from pathlib import Path

from provledger.cli.output import CommandError, emit
from provledger.node.keyfile import new_signing_key, save_key


def cmd_keys_new(args: argparse.Namespace) -> None:
    path = Path(args.out)
    if path.exists() and not args.force:
        raise CommandError(f"{path} exists (use --force to overwrite)")
    key = new_signing_key()
    extra = {"member_id": args.member_id} if args.member_id else {}
    save_key(path, key, **extra)
    emit(
        args,
        {"path": str(path), "public_key": key.public_key.hex(), "key_id": key.key_id.hex()},
        f"wrote {path}\npublic key {key.public_key.hex()}\nkey id     {key.key_id.hex()}",
    )

"""`provledger keys new|public`: Ed25519 key files for members and validators.

`keys new` writes a key file (with --member-id, --chain-id and --role, an identity file a
member's client signs with); `keys public` prints the public key and key id of a key file: what
an organisation hands to the consortium (for `governance propose add-member`), never the file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from provledger.cli.output import CommandError, emit
from provledger.node.keyfile import load_key, new_signing_key, save_key


def cmd_keys_new(args: argparse.Namespace) -> None:
    path = Path(args.out)
    if path.exists() and not args.force:
        raise CommandError(f"{path} exists (use --force to overwrite)")
    key = new_signing_key()
    extra = {
        name: value
        for name, value in (
            ("member_id", args.member_id),
            ("role", args.role),
            ("chain_id", args.chain_id),
        )
        if value
    }
    save_key(path, key, **extra)
    emit(
        args,
        {"path": str(path), "public_key": key.public_key.hex(), "key_id": key.key_id.hex()},
        f"wrote {path}\npublic key {key.public_key.hex()}\nkey id     {key.key_id.hex()}",
    )


def cmd_keys_public(args: argparse.Namespace) -> None:
    try:
        key, _ = load_key(Path(args.key))
    except (OSError, ValueError, KeyError) as error:
        raise CommandError(f"cannot read key file {args.key}: {error!r}") from None
    document = {"public_key": key.public_key.hex(), "key_id": key.key_id.hex()}
    emit(args, document, f"public key {document['public_key']}\nkey id     {document['key_id']}")

"""What every `provledger` command shares: printing its result as text for people or, with
--json, as JSON for scripts; `CommandError`, the failure it reports on standard error with exit
code 1 (cli/main.py does the reporting); and reading the arguments several command groups take
(hex ids, the genesis file to trust, a member's identity file).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from provledger.cli.client import Identity
from provledger.protocol.errors import Rejected
from provledger.protocol.genesis import Genesis, parse_genesis


class CommandError(Exception):
    """A failure to report on stderr with exit code 1."""


def emit(args: argparse.Namespace, document: Any, text: str) -> None:
    """Print `document` as JSON if the command was given --json, else `text`."""
    print(json.dumps(document, indent=2) if args.json else text)


def parse_hex(value: str, what: str) -> bytes:
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise CommandError(f"{what} must be hex, got {value!r}") from None


def load_genesis(path: str) -> Genesis:
    try:
        return parse_genesis(Path(path).read_bytes())
    except (OSError, Rejected) as error:
        raise CommandError(f"cannot use genesis {path}: {error}") from None


def load_identity(path: str) -> Identity:
    try:
        return Identity.load(path)
    except (OSError, ValueError, KeyError) as error:
        raise CommandError(f"cannot use identity {path}: {error!r}") from None

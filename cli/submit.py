"""`provledger submit`: sign an event with a member's identity and send it to a node.

The event is described either as JSON ({"<kind>": {...payload in protobuf JSON...}}, from a
file or standard input) or as --kind with one --set name=value per payload field.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from provledger.cli.client import EventSigner
from provledger.cli.connection import client_for
from provledger.cli.output import CommandError, emit, load_identity


def cmd_submit(args: argparse.Namespace) -> None:
    identity = load_identity(args.identity)
    if args.event_json:
        source = sys.stdin.read() if args.event_json == "-" else Path(args.event_json).read_text()
        document = json.loads(source)
    elif args.kind:
        fields: dict[str, Any] = {}
        for assignment in args.set or []:
            name, separator, value = assignment.partition("=")
            if not separator:
                raise CommandError(f"--set takes name=value, got {assignment!r}")
            fields[name] = _parse_value(value)
        document = {args.kind: fields}
    else:
        raise CommandError("describe the event with --json FILE or --kind KIND --set name=value")
    try:
        signed = EventSigner(identity).from_json(document)
    except (ValueError, json_format.ParseError) as error:
        raise CommandError(f"bad event description: {error}") from None
    with client_for(args) as client:
        if args.wait:
            receipt = client.submit_and_wait(signed)
            emit(
                args,
                json_format.MessageToDict(receipt),
                f"committed {receipt.event_id.hex()} at height {receipt.height}, "
                f"log index {receipt.log_index}",
            )
        else:
            identifier = client.submit(signed)
            emit(args, {"event_id": identifier.hex()}, f"accepted {identifier.hex()}")


def _parse_value(text: str) -> Any:
    """A --set value: JSON if it parses (numbers, lists, objects), else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text

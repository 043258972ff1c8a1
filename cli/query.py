"""`provledger event get` and `provledger lineage`: read what a node has committed.

`render_lineage_tree` is also how the demo shows a lineage.
"""

from __future__ import annotations

import argparse
import json

from google.protobuf import json_format

from provledger.cli.client import event_to_json
from provledger.cli.connection import client_for
from provledger.cli.output import emit, parse_hex
from provledger.v1 import api_pb2, ledger_pb2


def cmd_event_get(args: argparse.Namespace) -> None:
    with client_for(args) as client:
        response = client.get_event(parse_hex(args.event_id, "event id"))
    document = {
        **event_to_json(response.event),
        "height": response.height,
        "log_index": response.log_index,
    }
    emit(args, document, json.dumps(document, indent=2))


def cmd_lineage(args: argparse.Namespace) -> None:
    direction = (
        api_pb2.LINEAGE_DIRECTION_DOWNSTREAM
        if args.downstream
        else api_pb2.LINEAGE_DIRECTION_UPSTREAM
    )
    with client_for(args) as client:
        response = client.stub.GetLineage(
            api_pb2.GetLineageRequest(asset_id=args.asset_id, direction=direction, depth=args.depth)
        )
    if args.json:
        print(json.dumps(json_format.MessageToDict(response), indent=2))
        return
    print(render_lineage_tree(response, args.asset_id, upstream=not args.downstream))


def render_lineage_tree(response: api_pb2.GetLineageResponse, root_id: str, upstream: bool) -> str:
    """The lineage as an indented tree, one asset a line with its owner and classification."""
    assets = {a.asset_id: a for a in response.assets}
    children: dict[str, list[str]] = {}
    for edge in response.edges:
        start, end = (
            (edge.child_id, edge.parent_id) if upstream else (edge.parent_id, edge.child_id)
        )
        children.setdefault(start, []).append(end)
    lines: list[str] = []

    def describe(asset_id: str) -> str:
        asset = assets.get(asset_id)
        if asset is None:
            return asset_id
        level = (
            ledger_pb2.Classification.Name(asset.classification)
            .removeprefix("CLASSIFICATION_")
            .lower()
        )
        how = f", {asset.activity}" if asset.activity else ""
        return f"{asset_id}  (owner {asset.owner_id}, {level}{how})"

    def walk(asset_id: str, prefix: str, last: bool, depth: int, path: set[str]) -> None:
        branch = "" if depth == 0 else ("└─ " if last else "├─ ")
        lines.append(prefix + branch + describe(asset_id))
        below = [c for c in children.get(asset_id, []) if c not in path]
        extension = "" if depth == 0 else ("   " if last else "│  ")
        for index, child in enumerate(below):
            walk(child, prefix + extension, index == len(below) - 1, depth + 1, path | {child})

    walk(root_id, "", True, 0, {root_id})
    if response.truncated:
        lines.append("(truncated by the depth or node limit)")
    return "\n".join(lines)

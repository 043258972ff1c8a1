"""The `provledger` command: keys, consortium set-up, running a node, submitting, querying and
verifying proofs. Query commands print text for people or, with --json, JSON for scripts.
Errors go to standard error with a non-zero exit code.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format

from provledger.cli.client import (
    EventSigner,
    Identity,
    LedgerClient,
    describe_rpc_error,
    event_to_json,
)
from provledger.protocol import merkle
from provledger.protocol.blocks import verify_checkpoint
from provledger.protocol.errors import Rejected
from provledger.protocol.events import event_id, log_leaf
from provledger.protocol.genesis import parse_genesis, role_name
from provledger.protocol.limits import TOKEN_TTL_MS_DEFAULT
from provledger.v1 import api_pb2, ledger_pb2

DEFAULT_NODE = "127.0.0.1:7050"


class CommandError(Exception):
    """A failure to report on stderr with exit code 1."""


def _print(args: argparse.Namespace, document: Any, text: str) -> None:
    print(json.dumps(document, indent=2) if args.json else text)


def _hex(value: str, what: str) -> bytes:
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise CommandError(f"{what} must be hex, got {value!r}") from None


# --- keys and set-up -------------------------------------------------------------------------


def cmd_keys_new(args: argparse.Namespace) -> None:
    from provledger.node.keyfile import new_signing_key, save_key

    path = Path(args.out)
    if path.exists() and not args.force:
        raise CommandError(f"{path} exists (use --force to overwrite)")
    key = new_signing_key()
    extra = {"member_id": args.member_id} if args.member_id else {}
    save_key(path, key, **extra)
    _print(
        args,
        {"path": str(path), "public_key": key.public_key.hex(), "key_id": key.key_id.hex()},
        f"wrote {path}\npublic key {key.public_key.hex()}\nkey id     {key.key_id.hex()}",
    )


def cmd_consortium_init(args: argparse.Namespace) -> None:
    from provledger.cli.consortium import init_consortium

    try:
        layout = init_consortium(
            Path(args.dir),
            args.nodes,
            chain_id=args.chain_id,
            base_port=args.base_port,
            with_identities=not args.no_identities,
        )
    except (FileExistsError, ValueError) as error:
        raise CommandError(str(error)) from None
    document = {
        "genesis": str(layout.genesis_path),
        "nodes": [
            {"config": str(c), "grpc": a, "rest": r}
            for c, a, r in zip(
                layout.node_configs, layout.grpc_addresses, layout.rest_addresses, strict=True
            )
        ],
        "identities": {m: str(p) for m, p in layout.identities.items()},
    }
    lines = [f"genesis    {layout.genesis_path}"]
    lines += [
        f"node       {c}  (gRPC {a}, REST http://{r})"
        for c, a, r in zip(
            layout.node_configs, layout.grpc_addresses, layout.rest_addresses, strict=True
        )
    ]
    lines += [f"identity   {p}" for p in layout.identities.values()]
    lines.append(f"start a node: provledger node run --config {layout.node_configs[0]}")
    _print(args, document, "\n".join(lines))


def cmd_node_run(args: argparse.Namespace) -> None:
    from provledger.node.config import ConfigError, NodeConfig
    from provledger.node.server import run

    try:
        config = NodeConfig.load(args.config)
    except ConfigError as error:
        raise CommandError(str(error)) from None
    run(config)


# --- submitting ------------------------------------------------------------------------------


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def cmd_submit(args: argparse.Namespace) -> None:
    identity = Identity.load(args.identity)
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
    with LedgerClient(args.node) as client:
        if args.wait:
            receipt = client.submit_and_wait(signed)
            _print(
                args,
                json_format.MessageToDict(receipt),
                f"committed {receipt.event_id.hex()} at height {receipt.height}, "
                f"log index {receipt.log_index}",
            )
        else:
            identifier = client.submit(signed)
            _print(args, {"event_id": identifier.hex()}, f"accepted {identifier.hex()}")


# --- queries ---------------------------------------------------------------------------------


def cmd_event_get(args: argparse.Namespace) -> None:
    with LedgerClient(args.node) as client:
        response = client.get_event(_hex(args.event_id, "event id"))
    document = {
        **event_to_json(response.event),
        "height": response.height,
        "log_index": response.log_index,
    }
    _print(args, document, json.dumps(document, indent=2))


def cmd_lineage(args: argparse.Namespace) -> None:
    direction = (
        api_pb2.LINEAGE_DIRECTION_DOWNSTREAM
        if args.downstream
        else api_pb2.LINEAGE_DIRECTION_UPSTREAM
    )
    with LedgerClient(args.node) as client:
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


def _load_genesis(path: str):
    try:
        return parse_genesis(Path(path).read_bytes())
    except (OSError, Rejected) as error:
        raise CommandError(f"cannot use genesis {path}: {error}") from None


def cmd_proof_inclusion(args: argparse.Namespace) -> None:
    genesis = _load_genesis(args.genesis)
    with LedgerClient(args.node) as client:
        response = client.stub.GetInclusionProof(
            api_pb2.GetInclusionProofRequest(
                event_id=_hex(args.event_id, "event id"), height=args.height
            )
        )
    result = verify_inclusion_response(response, genesis, _hex(args.event_id, "event id"))
    _print(
        args,
        result,
        (
            f"event {args.event_id} is leaf {result['leaf_index']} of the log of size "
            f"{result['tree_size']} committed at height {result['height']} by "
            f"{result['signers']} of {result['validators']} validators: VERIFIED"
        ),
    )


def verify_inclusion_response(
    response: api_pb2.GetInclusionProofResponse, genesis, expected_event_id: bytes
) -> dict[str, Any]:
    """Check a node's inclusion answer against the genesis alone; raise CommandError if not."""
    try:
        header = verify_checkpoint(response.checkpoint, genesis)
        if event_id(response.event.body) != expected_event_id:
            raise CommandError("the node returned a different event than asked for")
        leaf_hash = merkle.hash_leaf(log_leaf(expected_event_id, response.event.signature))
        if leaf_hash != response.proof.leaf_hash:
            raise CommandError("the proof's leaf hash is not the event's")
        if response.proof.tree_size != header.log_size:
            raise CommandError("the proof is for a different tree size than the checkpoint")
        merkle.verify_inclusion(
            leaf_hash,
            response.proof.leaf_index,
            header.log_size,
            list(response.proof.hashes),
            header.log_root,
        )
    except (Rejected, merkle.ProofError) as error:
        raise CommandError(f"proof does NOT verify: {error}") from None
    return {
        "verified": True,
        "leaf_index": response.proof.leaf_index,
        "tree_size": header.log_size,
        "height": header.height,
        "log_root": header.log_root.hex(),
        "signers": len(response.checkpoint.certificate.signatures),
        "validators": len(genesis.validator_set.validators),
    }


def cmd_proof_consistency(args: argparse.Namespace) -> None:
    genesis = _load_genesis(args.genesis)
    with LedgerClient(args.node) as client:
        response = client.stub.GetConsistencyProof(
            api_pb2.GetConsistencyProofRequest(first_height=args.first, second_height=args.second)
        )
    result = verify_consistency_response(response, genesis)
    _print(
        args,
        result,
        (
            f"the log at height {result['first_height']} (size {result['first_size']}) is a prefix "
            f"of the log at height {result['second_height']} (size {result['second_size']}): "
            "VERIFIED"
        ),
    )


def verify_consistency_response(
    response: api_pb2.GetConsistencyProofResponse, genesis
) -> dict[str, Any]:
    try:
        first = verify_checkpoint(response.first, genesis)
        second = verify_checkpoint(response.second, genesis)
        if (response.proof.first_size, response.proof.second_size) != (
            first.log_size,
            second.log_size,
        ):
            raise CommandError("the proof's sizes do not match the checkpoints")
        if first.log_size == 0:  # the empty log is a prefix of every log
            if first.log_root != merkle.EMPTY_ROOT:
                raise CommandError("the first checkpoint's empty log has a wrong root")
        else:
            merkle.verify_consistency(
                first.log_size,
                second.log_size,
                list(response.proof.hashes),
                first.log_root,
                second.log_root,
            )
    except (Rejected, merkle.ProofError) as error:
        raise CommandError(f"proof does NOT verify: {error}") from None
    return {
        "verified": True,
        "first_height": first.height,
        "first_size": first.log_size,
        "second_height": second.height,
        "second_size": second.log_size,
    }


def cmd_demo(args: argparse.Namespace) -> None:
    from provledger.cli.demo import run_demo

    if args.nodes < 1:
        raise CommandError("--nodes must be at least 1")
    run_demo(keep_data=args.keep, nodes=args.nodes, serve=args.serve)


# --- evidence bundles ------------------------------------------------------------------------

EVIDENCE_SUBJECTS = {"event": "event_id", "lineage": "asset_id", "trade": "order_id"}
REST_TIMEOUT_S = 120
REST_ERROR_BYTES_MAX = 64 * 1024


def cmd_evidence_export(args: argparse.Namespace) -> None:
    kind = next(k for k in EVIDENCE_SUBJECTS if getattr(args, k) is not None)
    subject = getattr(args, kind)
    genesis = _load_genesis(args.genesis) if args.genesis else None
    if args.data_dir is not None:
        if genesis is None:
            raise CommandError("--data-dir needs --genesis, the chain's genesis file")
        data = _bundle_from_data_dir(Path(args.data_dir), genesis, kind, subject)
    else:
        data = _bundle_from_rest(args.rest, args.token, kind, subject)
    if genesis is not None:  # never write a bundle that does not verify
        _verify_bundle(data, genesis, "the exported bundle")
    out = Path(args.out)
    try:
        out.write_bytes(data)
    except OSError as error:
        raise CommandError(f"cannot write {out}: {error}") from None
    checked = "verified against the genesis" if genesis is not None else "not verified"
    _print(
        args,
        {"path": str(out), "bytes": len(data), "kind": kind, "subject": subject,
         "verified": genesis is not None},
        f"wrote {kind} evidence for {subject} to {out} ({len(data)} bytes, {checked})",
    )  # fmt: skip


def _bundle_from_data_dir(data_dir: Path, genesis, kind: str, subject: str) -> bytes:
    """Build the bundle from a stopped node's LevelDB folder."""
    import plyvel

    from provledger.node import bundles
    from provledger.node.store import Store, StoreError

    if not (data_dir / "CURRENT").is_file():
        raise CommandError(f"{data_dir} holds no ledger database (give a node's data folder)")
    try:
        store = Store(data_dir, genesis, create=False)
    except StoreError as error:
        raise CommandError(str(error)) from None
    except plyvel.Error as error:
        raise CommandError(
            f"cannot open the database in {data_dir} ({error}); is its node running? Stop it, "
            "or export over --rest"
        ) from None
    try:
        if kind == "event":
            identifier = _hex(subject, "event id")
            if len(identifier) != 32:
                raise CommandError("an event id is 32 bytes (64 hex digits)")
            return bundles.event_bundle(store, genesis, identifier)
        builder = bundles.lineage_bundle if kind == "lineage" else bundles.trade_bundle
        return builder(store, genesis, subject)
    except bundles.BundleBuildError as error:
        raise CommandError(error.reason) from None
    finally:
        store.close()


def _bundle_from_rest(base_url: str, token: str | None, kind: str, subject: str) -> bytes:
    """Fetch the bundle from a node's auditor REST API."""
    import urllib.error
    import urllib.parse
    import urllib.request

    from provledger.protocol.limits import BUNDLE_SIZE_BYTES_MAX

    parts = urllib.parse.urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise CommandError(f"--rest takes a URL such as http://127.0.0.1:7250, got {base_url!r}")
    if not token:
        raise CommandError("--rest needs --token (or PROVLEDGER_TOKEN): provledger token issue")
    query = urllib.parse.urlencode({EVIDENCE_SUBJECTS[kind]: subject})
    url = f"{base_url.rstrip('/')}/v1/evidence/{kind}?{query}"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=REST_TIMEOUT_S) as response:
            data = response.read(BUNDLE_SIZE_BYTES_MAX + 1)
    except urllib.error.HTTPError as error:
        raise CommandError(f"the node answered HTTP {error.code}: {_rest_error(error)}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise CommandError(f"cannot reach {base_url}: {reason}") from None
    if len(data) > BUNDLE_SIZE_BYTES_MAX:
        raise CommandError(f"the node's answer exceeds {BUNDLE_SIZE_BYTES_MAX} bytes")
    return data


def _rest_error(error) -> str:
    """The `error: reason` of a REST error response, or the start of its body."""
    try:
        body = error.read(REST_ERROR_BYTES_MAX)
        document = json.loads(body)
        return f"{document['error']}: {document['reason']}"
    except Exception:
        return str(error.reason)


def _verify_bundle(data: bytes, genesis, what: str):
    from provledger.protocol.evidence import BundleError, verify_bundle

    try:
        return verify_bundle(data, genesis)
    except BundleError as error:
        raise CommandError(f"{what} does NOT verify: {error.reason} [{error.code}]") from None


def cmd_verify(args: argparse.Namespace) -> None:
    genesis = _load_genesis(args.genesis)
    try:
        data = Path(args.bundle).read_bytes()
    except OSError as error:
        raise CommandError(f"cannot read {args.bundle}: {error}") from None
    verified = _verify_bundle(data, genesis, "bundle")
    _print(args, verified.to_json(), "\n".join(verified.summary_lines()))


# --- tokens for the auditor REST API --------------------------------------------------------


def cmd_token_issue(args: argparse.Namespace) -> None:
    import time

    from provledger.protocol.limits import TOKEN_TTL_MS_MAX
    from provledger.protocol.tokens import AUDITOR_LEDGER_ROLES, issue_token

    try:
        identity = Identity.load(args.identity)
    except (OSError, ValueError, KeyError) as error:
        raise CommandError(f"cannot use identity {args.identity}: {error!r}") from None
    ttl_ms = args.ttl_s * 1000
    if not 0 < ttl_ms <= TOKEN_TTL_MS_MAX:
        raise CommandError(f"--ttl-s must be 1..{TOKEN_TTL_MS_MAX // 1000} seconds")
    auditor_roles = {role_name(role) for role in AUDITOR_LEDGER_ROLES}
    if args.role == "auditor" and identity.role and identity.role not in auditor_roles:
        print(
            f"provledger: warning: {identity.member_id!r} was created as {identity.role}; "
            "nodes accept auditor tokens only from auditors and regulators",
            file=sys.stderr,
        )
    issued_at_ms = time.time_ns() // 1_000_000
    token = issue_token(
        identity.key, identity.member_id, args.role, identity.chain_id, issued_at_ms, ttl_ms
    )
    _print(
        args,
        {
            "token": token,
            "member_id": identity.member_id,
            "role": args.role,
            "chain_id": identity.chain_id,
            "issued_at_ms": issued_at_ms,
            "expires_at_ms": issued_at_ms + ttl_ms,
        },
        token,
    )


# --- the parser ------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="provledger", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    def with_output(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sub.add_argument("--json", action="store_true", help="print JSON for scripts")
        return sub

    def with_node(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sub.add_argument("--node", default=DEFAULT_NODE, help="host:port of a node's gRPC API")
        return with_output(sub)

    keys = commands.add_parser("keys", help="key files").add_subparsers(dest="keys", required=True)
    new = with_output(keys.add_parser("new", help="create an Ed25519 key file"))
    new.add_argument("--out", required=True)
    new.add_argument("--member-id")
    new.add_argument("--force", action="store_true")
    new.set_defaults(handler=cmd_keys_new)

    consortium = commands.add_parser("consortium", help="set up a consortium").add_subparsers(
        dest="consortium", required=True
    )
    init = with_output(consortium.add_parser("init", help="genesis, node folders, identities"))
    init.add_argument("--nodes", type=int, default=1)
    init.add_argument("--dir", required=True)
    init.add_argument("--chain-id", default="provledger-local")
    init.add_argument("--base-port", type=int, default=7050)
    init.add_argument(
        "--no-identities", action="store_true", help="do not create the sample member identities"
    )
    init.set_defaults(handler=cmd_consortium_init)

    node = commands.add_parser("node", help="run a node").add_subparsers(
        dest="node_cmd", required=True
    )
    run = node.add_parser("run", help="run a node until Ctrl-C")
    run.add_argument("--config", required=True)
    run.set_defaults(handler=cmd_node_run)

    submit = with_node(commands.add_parser("submit", help="sign and submit an event"))
    submit.add_argument("--identity", required=True, help="identity key file to sign with")
    submit.add_argument(
        "--event-json",
        metavar="FILE",
        help='event as {"<kind>": {...}} in protobuf JSON; - for stdin',
    )
    submit.add_argument("--kind", help="event kind, e.g. asset_registered")
    submit.add_argument(
        "--set",
        action="append",
        metavar="NAME=VALUE",
        help="a payload field (JSON values allowed); repeat",
    )
    submit.add_argument("--wait", action="store_true", help="wait for commit; print receipt")
    submit.set_defaults(handler=cmd_submit)

    event = commands.add_parser("event", help="events").add_subparsers(
        dest="event_cmd", required=True
    )
    get = with_node(event.add_parser("get", help="a committed event"))
    get.add_argument("event_id")
    get.set_defaults(handler=cmd_event_get)

    lineage = with_node(commands.add_parser("lineage", help="an asset's lineage"))
    lineage.add_argument("asset_id")
    lineage.add_argument("--downstream", action="store_true", help="derived assets instead")
    lineage.add_argument("--depth", type=int, default=0)
    lineage.set_defaults(handler=cmd_lineage)

    proof = commands.add_parser("proof", help="fetch and verify proofs").add_subparsers(
        dest="proof_cmd", required=True
    )
    inclusion = with_node(proof.add_parser("inclusion", help="an event is in the log"))
    inclusion.add_argument("event_id")
    inclusion.add_argument("--genesis", required=True, help="the genesis file to trust")
    inclusion.add_argument("--height", type=int, default=0, help="checkpoint height (0: latest)")
    inclusion.set_defaults(handler=cmd_proof_inclusion)
    consistency = with_node(proof.add_parser("consistency", help="one log extends another"))
    consistency.add_argument("--first", type=int, required=True, help="earlier height")
    consistency.add_argument("--second", type=int, default=0, help="later height (0: latest)")
    consistency.add_argument("--genesis", required=True, help="the genesis file to trust")
    consistency.set_defaults(handler=cmd_proof_consistency)

    demo = commands.add_parser("demo", help="run a local consortium and tell a provenance story")
    demo.add_argument("--keep", action="store_true", help="keep the demo's data folder")
    demo.add_argument("--nodes", type=int, default=4, help="validator node processes (default 4)")
    demo.add_argument(
        "--serve",
        action="store_true",
        help="afterwards keep the consortium running for the web explorer, until Ctrl-C",
    )
    demo.set_defaults(handler=cmd_demo)

    evidence = commands.add_parser("evidence", help="evidence bundles").add_subparsers(
        dest="evidence_cmd", required=True
    )
    export = with_output(
        evidence.add_parser("export", help="save an evidence bundle from a node or its data")
    )
    subject = export.add_mutually_exclusive_group(required=True)
    subject.add_argument("--event", metavar="EVENT_ID", help="one event (hex id)")
    subject.add_argument("--lineage", metavar="ASSET_ID", help="an asset's upstream lineage")
    subject.add_argument("--trade", metavar="ORDER_ID", help="an order, its life cycle, dispute")
    source = export.add_mutually_exclusive_group(required=True)
    source.add_argument("--rest", metavar="URL", help="a node's REST API, http://HOST:PORT")
    source.add_argument("--data-dir", metavar="DIR", help="a stopped node's data folder")
    export.add_argument(
        "--token", default=os.environ.get("PROVLEDGER_TOKEN"), help="REST bearer token"
    )
    export.add_argument(
        "--genesis", help="genesis file: needed with --data-dir; verifies before writing"
    )
    export.add_argument("--out", required=True, metavar="FILE")
    export.set_defaults(handler=cmd_evidence_export)

    verify = with_output(
        commands.add_parser("verify", help="check an evidence bundle offline against the genesis")
    )
    verify.add_argument("bundle", metavar="BUNDLE")
    verify.add_argument("--genesis", required=True, help="the genesis file to trust")
    verify.set_defaults(handler=cmd_verify)

    tokens = commands.add_parser("token", help="bearer tokens for the REST API").add_subparsers(
        dest="token_cmd", required=True
    )
    issue = with_output(
        tokens.add_parser("issue", help="sign a bearer token with a member's identity")
    )
    issue.add_argument("--identity", required=True, help="identity key file to sign with")
    issue.add_argument(
        "--role",
        required=True,
        choices=("auditor", "member"),
        help="auditor: read everything (auditors and regulators); member: what concerns it",
    )
    issue.add_argument(
        "--ttl-s",
        type=int,
        default=TOKEN_TTL_MS_DEFAULT // 1000,
        help=f"seconds the token is valid (default {TOKEN_TTL_MS_DEFAULT // 1000})",
    )
    issue.set_defaults(handler=cmd_token_issue)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except CommandError as error:
        print(f"provledger: {error}", file=sys.stderr)
        return 1
    except grpc.RpcError as error:
        print(f"provledger: the node answered {describe_rpc_error(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

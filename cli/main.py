"""The `provledger` command: keys, consortium set-up, running a node, submitting, querying and
verifying proofs. Query commands print text for people or, with --json, JSON for scripts.
Errors go to standard error with a non-zero exit code.

This module is the parser and the dispatch only: each command group lives in its own module
(cli/keys.py, consortium.py, ceremony.py, node.py, submit.py, query.py, proofs.py, evidence.py,
tokens.py, audit.py, governance.py and governance_offline.py, demo.py), which never imports
this one. A handler takes the parsed arguments and prints its result (cli/output.py); it fails
by raising CommandError, which `main` reports with exit code 1, as it does a gRPC error from
the node; Ctrl-C exits with 130. A handler whose outcome is more than success or failure
returns its own exit code (`audit watch`: 3 for a fork, 4 for an incomplete check)."""

from __future__ import annotations

import argparse
import os
import sys

import grpc

from provledger.cli import (
    audit,
    ceremony,
    connection,
    consortium,
    demo,
    evidence,
    governance,
    governance_offline,
    keys,
    node,
    proofs,
    query,
    submit,
    tokens,
)
from provledger.cli.client import describe_rpc_error
from provledger.cli.output import CommandError
from provledger.node.logs import LOG_FORMATS
from provledger.protocol.genesis import ROLE_NAMES
from provledger.protocol.limits import TOKEN_TTL_MS_DEFAULT


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="provledger", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    def with_output(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sub.add_argument("--json", action="store_true", help="print JSON for scripts")
        return sub

    def with_node(
        sub: argparse.ArgumentParser, reads: bool = True, many: bool = False
    ) -> argparse.ArgumentParser:
        connection.add_node_arguments(sub, reads, many)
        return with_output(sub)

    keys_group = commands.add_parser("keys", help="key files").add_subparsers(
        dest="keys", required=True
    )
    new = with_output(keys_group.add_parser("new", help="create an Ed25519 key file"))
    new.add_argument("--out", required=True)
    new.add_argument("--member-id")
    new.add_argument("--chain-id", help="with --member-id: an identity file for this chain")
    new.add_argument("--role", help="with --member-id: the member's role (for its read tokens)")
    new.add_argument("--force", action="store_true")
    new.set_defaults(handler=keys.cmd_keys_new)
    public = with_output(
        keys_group.add_parser("public", help="the public key and key id of a key file")
    )
    public.add_argument("--key", required=True, metavar="FILE")
    public.set_defaults(handler=keys.cmd_keys_public)

    governance_group = commands.add_parser(
        "governance",
        help="change the consortium: propose, approve and follow on the ledger, or draft, sign "
        "and submit off it",
    ).add_subparsers(dest="governance_cmd", required=True)
    propose = governance_group.add_parser(
        "propose", help="put a change to the members; prints its proposal id"
    )
    governance.add_kind_parsers(propose, with_node)
    approve = with_node(governance_group.add_parser("approve", help="approve an open proposal"))
    approve.add_argument("proposal_id", metavar="PROPOSAL_ID")
    approve.set_defaults(handler=governance.cmd_governance_approve)
    status = with_node(
        governance_group.add_parser("status", help="open proposals, or one, with approvals")
    )
    status.add_argument("proposal_id", metavar="PROPOSAL_ID", nargs="?")
    status.add_argument(
        "--all", action="store_true", help="applied, expired and superseded ones too"
    )
    status.set_defaults(handler=governance.cmd_governance_status)

    def with_draft_arguments(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sub.add_argument("--out", required=True, metavar="FILE", help="the change file to write")
        sub.add_argument("--identity", metavar="FILE", help="the drafter's identity (its chain)")
        sub.add_argument("--chain-id", help="the chain of the change (instead of --identity)")
        return with_output(sub)

    draft = governance_group.add_parser(
        "draft", help="write a change to a file for the members to sign off-ledger; no submit"
    )
    governance.add_kind_parsers(
        draft, with_draft_arguments, governance_offline.cmd_governance_draft
    )
    sign = with_output(
        governance_group.add_parser(
            "sign", help="show a drafted change and write this member's approval of it"
        )
    )
    sign.add_argument("change", metavar="CHANGE_FILE")
    sign.add_argument("--identity", required=True, metavar="FILE", help="the member who signs")
    sign.add_argument("--out", required=True, metavar="FILE", help="the approval file to write")
    sign.set_defaults(handler=governance_offline.cmd_governance_sign)
    submit_change = with_node(
        governance_group.add_parser(
            "submit",
            help="submit a drafted change with its approvals as one action; wait for its commit",
        )
    )
    submit_change.add_argument("change", metavar="CHANGE_FILE")
    submit_change.add_argument(
        "--approval",
        action="append",
        default=[],
        required=True,
        metavar="FILE",
        help="a member's approval file (`governance sign`); repeat for each",
    )
    submit_change.set_defaults(handler=governance_offline.cmd_governance_submit)

    consortium_group = commands.add_parser("consortium", help="set up a consortium").add_subparsers(
        dest="consortium", required=True
    )
    init = with_output(
        consortium_group.add_parser("init", help="genesis, node folders, identities")
    )
    init.add_argument("--nodes", type=int, default=1)
    init.add_argument("--dir", required=True)
    init.add_argument("--chain-id", default="provledger-local")
    init.add_argument("--base-port", type=int, default=7050)
    init.add_argument(
        "--market",
        action="store_true",
        help="add a second regulator (market-regulator) and a broker to the members",
    )
    init.add_argument(
        "--host",
        action="append",
        metavar="[NODE=]NAME_OR_IP",
        help="a name clients and peers dial, for node certificates: NAME for every node, "
        "node-K=NAME for node K; repeat",
    )
    init.add_argument(
        "--no-identities", action="store_true", help="do not create the sample member identities"
    )
    init.add_argument(
        "--listen-all",
        action="store_true",
        help="listen on 0.0.0.0 and have peers dial each node at its --host node-K=NAME "
        "(containers on one network: docker/compose.yaml)",
    )
    init.set_defaults(handler=consortium.cmd_consortium_init)

    org_group = commands.add_parser(
        "org", help="an organisation's own keys and node (the founding ceremony)"
    ).add_subparsers(dest="org_cmd", required=True)
    org_init = with_output(
        org_group.add_parser("init", help="an organisation's keys, TLS CA and public.json")
    )
    org_init.add_argument("--org", required=True, metavar="ID", help="its member id")
    org_init.add_argument("--name", required=True)
    org_init.add_argument("--role", required=True, choices=sorted(ROLE_NAMES))
    org_init.add_argument("--chain-id", required=True, help="the chain the consortium founds")
    org_init.add_argument("--dir", required=True, help="the organisation's own folder")
    org_init.add_argument("--node", metavar="NODE_ID", help="also a validator node with this id")
    org_init.add_argument(
        "--host",
        action="append",
        metavar="NAME_OR_IP",
        help="a name the node is dialled at; repeat",
    )
    org_init.add_argument("--peer-address", metavar="HOST:PORT", help="where peers reach the node")
    org_init.set_defaults(handler=ceremony.cmd_org_init)
    org_config = with_output(
        org_group.add_parser("node-config", help="the node's config, from the sealed genesis")
    )
    org_config.add_argument("--dir", required=True, help="the organisation's folder")
    org_config.add_argument("--genesis", required=True, help="the sealed genesis.json")
    org_config.add_argument("--peers", required=True, help="peers.json: node id -> peer address")
    org_config.add_argument("--listen", required=True, metavar="HOST:PORT", help="the client API")
    org_config.add_argument("--peer-listen", required=True, metavar="HOST:PORT")
    org_config.add_argument("--rest-listen", metavar="HOST:PORT", help="the auditor REST API")
    org_config.add_argument(
        "--joining",
        action="store_true",
        help="a validator the genesis does not name, which governance adds (add-validator); "
        "start it after the addition is committed",
    )
    org_config.set_defaults(handler=ceremony.cmd_org_node_config)

    genesis_group = commands.add_parser(
        "genesis", help="draft, sign and seal a genesis; its CA bundle"
    ).add_subparsers(dest="genesis_cmd", required=True)
    draft = with_output(
        genesis_group.add_parser("draft", help="gather organisations' public.json into a draft")
    )
    draft.add_argument("--chain-id", required=True)
    draft.add_argument("--org", action="append", required=True, metavar="PUBLIC_JSON")
    draft.add_argument("--out", required=True, metavar="FILE")
    draft.add_argument("--peers-out", metavar="FILE", help="write node id -> peer address")
    draft.set_defaults(handler=ceremony.cmd_genesis_draft)
    sign = with_output(genesis_group.add_parser("sign", help="a founding member signs the draft"))
    sign.add_argument("--draft", required=True)
    sign.add_argument("--identity", required=True, help="the member's identity.json")
    sign.add_argument("--out", required=True, metavar="FILE")
    sign.set_defaults(handler=ceremony.cmd_genesis_sign)
    seal = with_output(
        genesis_group.add_parser("seal", help="embed every founding member's signature")
    )
    seal.add_argument("--draft", required=True)
    seal.add_argument("--approval", action="append", required=True, metavar="FILE")
    seal.add_argument("--out", required=True, metavar="FILE")
    seal.set_defaults(handler=ceremony.cmd_genesis_seal)
    bundle = genesis_group.add_parser(
        "ca-bundle", help="print every organisation's TLS CA root the genesis names"
    )
    bundle.add_argument("--genesis", required=True)
    bundle.set_defaults(handler=ceremony.cmd_genesis_ca_bundle)

    node_group = commands.add_parser("node", help="run, check or repair a node").add_subparsers(
        dest="node_cmd", required=True
    )
    run = node_group.add_parser("run", help="run a node until Ctrl-C")
    run.add_argument("--config", required=True)
    run.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default="text",
        help="text lines, or one JSON object per line for a log shipper (node/logs.py)",
    )
    run.set_defaults(handler=node.cmd_node_run)
    check = with_output(
        node_group.add_parser(
            "check", help="check a stopped node's whole ledger: every block, root and index"
        )
    )
    check.add_argument("--config", required=True)
    check.set_defaults(handler=node.cmd_node_check)
    repair = with_output(
        node_group.add_parser(
            "repair", help="rebuild a stopped node's damaged ledger from its sound part and peers"
        )
    )
    repair.add_argument("--config", required=True)
    repair.set_defaults(handler=node.cmd_node_repair)
    backup = with_output(
        node_group.add_parser("backup", help="back up a running node's ledger to a file")
    )
    backup.add_argument("--config", required=True)
    backup.add_argument("--out", required=True, metavar="FILE", help="the backup file to write")
    backup.set_defaults(handler=node.cmd_node_backup)
    restore = with_output(
        node_group.add_parser("restore", help="restore a backup into a node's empty data folder")
    )
    restore.add_argument("file", metavar="FILE")
    restore.add_argument("--config", required=True)
    restore.add_argument(
        "--force", action="store_true", help="move a non-empty data folder aside first"
    )
    restore.set_defaults(handler=node.cmd_node_restore)
    verify_backup = with_output(
        node_group.add_parser("verify-backup", help="verify a backup file, restoring nothing")
    )
    verify_backup.add_argument("file", metavar="FILE")
    verify_backup.add_argument("--config", required=True)
    verify_backup.set_defaults(handler=node.cmd_node_verify_backup)

    submit_command = with_node(
        commands.add_parser("submit", help="sign and submit an event"), reads=False
    )
    submit_command.add_argument("--identity", required=True, help="identity key file to sign with")
    submit_command.add_argument(
        "--event-json",
        metavar="FILE",
        help='event as {"<kind>": {...}} in protobuf JSON; - for stdin',
    )
    submit_command.add_argument("--kind", help="event kind, e.g. asset_registered")
    submit_command.add_argument(
        "--set",
        action="append",
        metavar="NAME=VALUE",
        help="a payload field (JSON values allowed); repeat",
    )
    submit_command.add_argument(
        "--wait", action="store_true", help="wait for commit; print receipt"
    )
    submit_command.set_defaults(handler=submit.cmd_submit)

    event_group = commands.add_parser("event", help="events").add_subparsers(
        dest="event_cmd", required=True
    )
    get = with_node(event_group.add_parser("get", help="a committed event"))
    get.add_argument("event_id")
    get.set_defaults(handler=query.cmd_event_get)

    lineage = with_node(commands.add_parser("lineage", help="an asset's lineage"))
    lineage.add_argument("asset_id")
    lineage.add_argument("--downstream", action="store_true", help="derived assets instead")
    lineage.add_argument("--depth", type=int, default=0)
    lineage.set_defaults(handler=query.cmd_lineage)

    proof_group = commands.add_parser("proof", help="fetch and verify proofs").add_subparsers(
        dest="proof_cmd", required=True
    )
    inclusion = with_node(proof_group.add_parser("inclusion", help="an event is in the log"))
    inclusion.add_argument("event_id")
    inclusion.add_argument("--genesis", required=True, help="the genesis file to trust")
    inclusion.add_argument("--height", type=int, default=0, help="checkpoint height (0: latest)")
    inclusion.set_defaults(handler=proofs.cmd_proof_inclusion)
    consistency = with_node(proof_group.add_parser("consistency", help="one log extends another"))
    consistency.add_argument("--first", type=int, required=True, help="earlier height")
    consistency.add_argument("--second", type=int, default=0, help="later height (0: latest)")
    consistency.add_argument("--genesis", required=True, help="the genesis file to trust")
    consistency.set_defaults(handler=proofs.cmd_proof_consistency)

    demo_command = commands.add_parser(
        "demo", help="run a local consortium and tell a provenance story"
    )
    demo_command.add_argument("--keep", action="store_true", help="keep the demo's data folder")
    demo_command.add_argument(
        "--nodes", type=int, default=4, help="validator node processes (default 4)"
    )
    demo_command.add_argument(
        "--serve",
        action="store_true",
        help="afterwards keep the consortium running for the web explorer, until Ctrl-C",
    )
    demo_command.set_defaults(handler=demo.cmd_demo)

    evidence_group = commands.add_parser("evidence", help="evidence bundles").add_subparsers(
        dest="evidence_cmd", required=True
    )
    export = with_output(
        evidence_group.add_parser("export", help="save an evidence bundle from a node or its data")
    )
    subject = export.add_mutually_exclusive_group(required=True)
    subject.add_argument("--event", metavar="EVENT_ID", help="one event (hex id)")
    subject.add_argument("--lineage", metavar="ASSET_ID", help="an asset's upstream lineage")
    subject.add_argument("--trade", metavar="ORDER_ID", help="an order, its life cycle, dispute")
    subject.add_argument(
        "--case", metavar="CASE_ID", help="a case file: the case, what it is about, its remedies"
    )
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
    export.set_defaults(handler=evidence.cmd_evidence_export)

    verify = with_output(
        commands.add_parser(
            "verify",
            help="check an evidence bundle or a proof of a fork offline against the genesis",
        )
    )
    verify.add_argument("bundle", metavar="FILE", help="an evidence bundle or a fork proof")
    verify.add_argument("--genesis", required=True, help="the genesis file to trust")
    verify.set_defaults(handler=evidence.cmd_verify)

    audit_group = commands.add_parser(
        "audit", help="watch several nodes for a split view"
    ).add_subparsers(dest="audit_cmd", required=True)
    audit_watch = with_node(
        audit_group.add_parser(
            "watch",
            help="compare the nodes' checkpoints with proofs; exit 3 on a fork, 4 if incomplete",
        ),
        many=True,
    )
    audit_watch.add_argument("--genesis", required=True, help="the genesis file to trust")
    audit_watch.add_argument(
        "--state", metavar="FILE", help="remember each node's highest checkpoint here (JSON)"
    )
    audit_watch.add_argument(
        "--proof-out",
        metavar="FILE",
        help="where a fork's proof goes (default: beside --state, else "
        f"./{audit.DEFAULT_PROOF_FILE})",
    )
    audit_watch.set_defaults(handler=audit.cmd_audit_watch)

    token_group = commands.add_parser(
        "token", help="bearer tokens for reads over REST and gRPC"
    ).add_subparsers(dest="token_cmd", required=True)
    issue = with_output(
        token_group.add_parser("issue", help="sign a bearer token with a member's identity")
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
    issue.set_defaults(handler=tokens.cmd_token_issue)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = args.handler(args)
    except CommandError as error:
        print(f"provledger: {error}", file=sys.stderr)
        return 1
    except grpc.RpcError as error:
        print(f"provledger: the node answered {describe_rpc_error(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())

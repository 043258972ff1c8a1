"""`provledger governance draft|sign|submit`: a change approved off the ledger (ADR 005) and
submitted as one `GovernanceAction`; the way a validator-set change is made (ADR 013, 016).
The kinds and their arguments are cli/governance.py's `KINDS`; this module reads and writes
the change and approval files and submits them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor

from provledger.cli.client import EventSigner, Identity
from provledger.cli.connection import client_for
from provledger.cli.governance import build_change, signing_identity
from provledger.cli.output import CommandError, emit, load_identity, parse_hex
from provledger.protocol import crypto
from provledger.protocol.errors import Rejected
from provledger.protocol.limits import PUBLIC_KEY_SIZE_BYTES
from provledger.protocol.rules_governance import (
    approval_verifies,
    parse_change,
    proposal_id,
    sign_approval,
)
from provledger.v1 import ledger_pb2

# --- off the ledger: draft, sign, submit (ADR 005) -----------------------------------------

CHANGE_FORMAT = "provledger-governance-change/1"
APPROVAL_FORMAT = "provledger-governance-approval/1"


def change_summary(change: ledger_pb2.GovernanceChange, kind: str) -> dict[str, Any]:
    """What `change` does, readably, made from the parsed change: keys and ids in hex, a CA
    root by its SHA-256, a role by name."""
    body = getattr(change, kind)
    fields: dict[str, Any] = {}
    for field, value in body.ListFields():
        if field.type == FieldDescriptor.TYPE_BYTES:
            if field.name == "tls_ca":
                fields[field.name] = f"PEM CA root, SHA-256 {hashlib.sha256(value).hexdigest()}"
            else:
                fields[field.name] = value.hex()
        elif field.type == FieldDescriptor.TYPE_ENUM:
            fields[field.name] = field.enum_type.values_by_number[value].name
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            fields[field.name] = json_format.MessageToDict(value, preserving_proto_field_name=True)
        else:
            fields[field.name] = value
    return {"kind": kind, **fields, "proposal_nonce": change.proposal_nonce}


def summary_text(summary: dict[str, Any]) -> str:
    return "\n".join(f"    {name}: {value}" for name, value in summary.items())


def change_document(chain_id: str, change: bytes) -> dict[str, Any]:
    """The public file of a drafted change: what each member signs, and a summary of it."""
    parsed, kind = _parse(change)
    return {
        "format": CHANGE_FORMAT,
        "chain_id": chain_id,
        "kind": kind,
        "change": change.hex(),
        "proposal_id": proposal_id(change).hex(),
        "summary": change_summary(parsed, kind),
    }


def read_change(path: str) -> tuple[str, bytes, str, dict[str, Any]]:
    """(chain id, change bytes, kind, summary made from the bytes) of a drafted change file;
    its kind and id must be the bytes'."""
    document = _read_json(path, "the change", CHANGE_FORMAT)
    try:
        chain_id, change = str(document["chain_id"]), parse_hex(document["change"], "change")
        kind, identifier = document["kind"], document["proposal_id"]
    except (KeyError, TypeError):
        raise CommandError(
            f"{path} is not a drafted change: chain_id, kind or change missing"
        ) from None
    parsed, parsed_kind = _parse(change)
    if parsed_kind != kind or proposal_id(change).hex() != identifier:
        raise CommandError(f"{path}: its kind or proposal id is not its change's")
    return chain_id, change, kind, change_summary(parsed, kind)


def approval_document(identity: Identity, chain_id: str, change: bytes) -> dict[str, Any]:
    """`identity`'s approval of `change`: its signature over the bytes the rules verify."""
    if identity.chain_id != chain_id:
        raise CommandError(
            f"the change is for chain {chain_id!r}; this identity is of {identity.chain_id!r}"
        )
    return {
        "format": APPROVAL_FORMAT,
        "chain_id": chain_id,
        "proposal_id": proposal_id(change).hex(),
        "member_id": identity.member_id,
        "key_id": identity.key.key_id.hex(),
        "public_key": identity.key.public_key.hex(),
        "signature": sign_approval(identity.key, chain_id, change).hex(),
    }


def read_approval(path: str, chain_id: str, change: bytes) -> ledger_pb2.Approval:
    """The approval in file `path`, if it is a valid signature over `change` on `chain_id` by
    the key it names (whether that key is the member's in force, the rules judge)."""
    document = _read_json(path, "an approval", APPROVAL_FORMAT)
    try:
        member_id, approval_chain = str(document["member_id"]), str(document["chain_id"])
        identifier = str(document["proposal_id"])
        key_id = parse_hex(document["key_id"], "key_id")
        public_key = parse_hex(document["public_key"], "public_key")
        signature = parse_hex(document["signature"], "signature")
    except (KeyError, TypeError):
        raise CommandError(f"{path} is not an approval: a field is missing") from None
    if approval_chain != chain_id:
        raise CommandError(
            f"{path} approves a change on chain {approval_chain!r}, not {chain_id!r}"
        )
    if identifier != proposal_id(change).hex():
        raise CommandError(f"{path} approves another change ({identifier})")
    if len(public_key) != PUBLIC_KEY_SIZE_BYTES or crypto.key_id(public_key) != key_id:
        raise CommandError(f"{path}: its key id is not its public key's")
    if not approval_verifies(public_key, chain_id, change, signature):
        raise CommandError(f"{path}: {member_id}'s signature does not verify over this change")
    return ledger_pb2.Approval(
        approver=ledger_pb2.Author(member_id=member_id, key_id=key_id), signature=signature
    )


def cmd_governance_draft(args: argparse.Namespace) -> None:
    chain_id = args.chain_id or (load_identity(args.identity).chain_id if args.identity else None)
    if not chain_id:
        raise CommandError("--chain-id ID or --identity FILE is needed: the chain of the change")
    document = change_document(chain_id, build_change(args))
    out = Path(args.out)
    out.write_text(json.dumps(document, indent=2) + "\n")
    emit(
        args,
        document,
        f"drafted on chain {chain_id}, not submitted:\n{summary_text(document['summary'])}\n"
        f"proposal id {document['proposal_id']}\nchange      {out}  (send it to the members "
        "to sign: provledger governance sign)",
    )


def cmd_governance_sign(args: argparse.Namespace) -> None:
    chain_id, change, _, summary = read_change(args.change)
    identity = signing_identity(args)
    approval = approval_document(identity, chain_id, change)
    out = Path(args.out)
    out.write_text(json.dumps(approval, indent=2) + "\n")
    emit(
        args,
        {**approval, "summary": summary},
        f"signing as {identity.member_id} on chain {chain_id}:\n{summary_text(summary)}\n"
        f"proposal id {approval['proposal_id']}\napproval    {out}  (send it to the submitter)",
    )


def cmd_governance_submit(args: argparse.Namespace) -> None:
    chain_id, change, kind, summary = read_change(args.change)
    identity = signing_identity(args)
    if identity.chain_id != chain_id:
        raise CommandError(
            f"the change is for chain {chain_id!r}; this identity is of {identity.chain_id!r}"
        )
    approvals = [read_approval(path, chain_id, change) for path in args.approval]
    approvers = [a.approver.member_id for a in approvals]
    if len(set(approvers)) != len(approvers):
        raise CommandError(f"a member approved twice: {', '.join(sorted(approvers))}")
    signed = EventSigner(identity).event("governance", change=change, approvals=approvals)
    with client_for(args) as client:
        receipt = client.submit_and_wait(signed)
    document = {
        "event_id": receipt.event_id.hex(),
        "height": receipt.height,
        "log_index": receipt.log_index,
        "kind": kind,
        "proposal_id": proposal_id(change).hex(),
        "approvers": approvers,
        "summary": summary,
    }
    emit(
        args,
        document,
        f"committed {document['event_id']} at height {receipt.height}, log index "
        f"{receipt.log_index}\n{summary_text(summary)}\napproved by {', '.join(approvers)}",
    )


def _parse(change: bytes) -> tuple[ledger_pb2.GovernanceChange, str]:
    try:
        return parse_change(change)
    except Rejected as error:
        raise CommandError(f"not a governance change: {error}") from None


def _read_json(path: str, what: str, expected_format: str) -> dict[str, Any]:
    try:
        document = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise CommandError(f"cannot read {what} {path}: {error}") from None
    if not isinstance(document, dict) or document.get("format") != expected_format:
        raise CommandError(f"{path} is not {what} ({expected_format})")
    return document

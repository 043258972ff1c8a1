"""`provledger governance propose|approve|status|draft|sign|submit`: changing the consortium.

    provledger governance propose KIND ... --identity FILE --node ADDR --ca-cert CA
    provledger governance approve PROPOSAL_ID --identity FILE --node ADDR --ca-cert CA
    provledger governance status [PROPOSAL_ID] [--all] --identity FILE --node ADDR --ca-cert CA

    provledger governance draft KIND ... --identity FILE --out change.json
    provledger governance sign change.json --identity FILE --out approval.json
    provledger governance submit change.json --approval A.json ... --identity FILE --node ADDR

On the ledger: a proposal is a `GovernanceProposed` event signed by the proposer (whose event
counts as its approval); each approval a `GovernanceApproved` naming the proposal id; the
change applies in the block where its approvals first reach the threshold of its kind (ADR
016). Both commands wait for their event to be committed, then print the proposal as the node
sees it.

Off the ledger (ADR 005): `draft` writes the change to a file without submitting it; each
member `sign`s it in its own folder, after reading what it signs (the summary is made from the
change bytes, not from the file's text), and sends back its approval file, which holds no
secret; `submit` checks every approval and submits the change and its approvals as one
`GovernanceAction`, waiting for its commit. A validator-set change (add-validator,
remove-validator, replace-tls-ca) is made this way only: the walk of validator sets judges it
from that one event (ADR 013, ADR 016).

The kinds are a table (`KINDS`): each names the GovernanceChange field it fills, adds its own
arguments and builds the change from them; a kind added to the schema is one entry more. A
public key is given as 64 hex digits or as a key file, of which only the public part is read
(`provledger keys public --key FILE` prints it): nothing private travels.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provledger.cli.client import EventSigner, Identity, LedgerClient
from provledger.cli.connection import client_for
from provledger.cli.output import CommandError, emit, load_identity, parse_hex
from provledger.protocol import validators
from provledger.protocol.genesis import ROLE_NAMES, tls_ca_problem
from provledger.protocol.limits import KEY_ID_SIZE_BYTES, PUBLIC_KEY_SIZE_BYTES
from provledger.protocol.rules_governance import (
    CHANGE_KINDS,
    proposal_id,
)
from provledger.v1 import api_pb2, ledger_pb2

PROPOSAL_NONCE_MAX = 2**62  # a proposal nonce is drawn from 1..this: two changes never collide
_FRACTION = re.compile(r"([0-9]{1,9})/([0-9]{1,9})")
_STATUS_NAMES = {
    api_pb2.PROPOSAL_STATUS_OPEN: "open",
    api_pb2.PROPOSAL_STATUS_APPLIED: "applied",
    api_pb2.PROPOSAL_STATUS_EXPIRED: "expired",
    api_pb2.PROPOSAL_STATUS_SUPERSEDED: "superseded",
}


@dataclass(frozen=True)
class Kind:
    """One kind of change on the command line: the GovernanceChange field it fills, its help,
    its arguments, and how the field's message is built from them."""

    field: str
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    build: Callable[[argparse.Namespace], dict[str, Any]]


# --- argument readers ---------------------------------------------------------------------


def public_key_argument(value: str) -> bytes:
    """64 hex digits, or a key file whose `public_key` is read (and nothing else)."""
    path = Path(value)
    if path.is_file():
        try:
            text = json.loads(path.read_text())["public_key"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise CommandError(f"cannot read a public key from {value}: {error!r}") from None
    else:
        text = value
    key = parse_hex(str(text), "a public key")
    if len(key) != PUBLIC_KEY_SIZE_BYTES:
        raise CommandError(f"a public key is {PUBLIC_KEY_SIZE_BYTES} bytes, got {len(key)}")
    return key


def key_id_argument(value: str) -> bytes:
    key_id = parse_hex(value, "a key id")
    if len(key_id) != KEY_ID_SIZE_BYTES:
        raise CommandError(f"a key id is {KEY_ID_SIZE_BYTES} bytes, got {len(key_id)}")
    return key_id


def threshold_argument(value: str) -> dict[str, int]:
    match = _FRACTION.fullmatch(value)
    if match is None:
        raise CommandError(f'a threshold is a fraction such as "2/3", got {value!r}')
    return {"numerator": int(match[1]), "denominator": int(match[2])}


def _role(value: str) -> int:
    if value not in ROLE_NAMES:
        raise CommandError(f"--role must be one of {', '.join(sorted(ROLE_NAMES))}")
    return ROLE_NAMES[value]


# --- the kinds ----------------------------------------------------------------------------


def _member_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--member-id", required=True)


def _add_member_arguments(parser: argparse.ArgumentParser) -> None:
    _member_argument(parser)
    parser.add_argument("--name", help="the organisation's name (default: its id)")
    parser.add_argument("--role", required=True, choices=sorted(ROLE_NAMES))
    parser.add_argument(
        "--public-key",
        required=True,
        metavar="FILE_OR_HEX",
        help="the new member's public key: hex, or its key file (only the public part is read)",
    )


def _rotate_key_arguments(parser: argparse.ArgumentParser) -> None:
    _member_argument(parser)
    parser.add_argument("--new-public-key", required=True, metavar="FILE_OR_HEX")
    parser.add_argument("--retire-key-id", metavar="HEX", help="a key to retire with it")


def _revoke_key_arguments(parser: argparse.ArgumentParser) -> None:
    _member_argument(parser)
    parser.add_argument("--key-id", required=True, metavar="HEX")
    parser.add_argument(
        "--from-height",
        required=True,
        type=int,
        help="the last height whose events signed with the key are trusted",
    )
    parser.add_argument("--reason", default="", help="why, for the record")


def _change_role_arguments(parser: argparse.ArgumentParser) -> None:
    _member_argument(parser)
    parser.add_argument("--role", required=True, choices=sorted(ROLE_NAMES))


def _add_validator_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--validator-id", required=True, help="the node id")
    parser.add_argument(
        "--public-key",
        required=True,
        metavar="FILE_OR_HEX",
        help="its consensus key: hex, or its validator key file (only the public part is read)",
    )
    parser.add_argument(
        "--tls-ca",
        metavar="FILE",
        help="the PEM of its organisation's TLS CA root (public: ca/ca.pem of `org init`), "
        "required when the genesis names each organisation's CA (ADR 015); omitted with one "
        "consortium CA",
    )


def _remove_validator_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--validator-id", required=True)


def _replace_tls_ca_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--validator-id", required=True)
    parser.add_argument(
        "--tls-ca",
        required=True,
        metavar="FILE",
        help="the PEM of the validator's organisation's new TLS CA root",
    )


def tls_ca_argument(path: str | None) -> bytes:
    """The CA root PEM in file `path` (b"" without one), judged as the rules will judge it."""
    if path is None:
        return b""
    try:
        root = Path(path).read_bytes()
    except OSError as error:
        raise CommandError(f"cannot read --tls-ca {path}: {error}") from None
    problem = tls_ca_problem(root)
    if problem is not None:
        raise CommandError(f"--tls-ca {path}: {problem}")
    return root


def _change_thresholds_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--default",
        required=True,
        metavar="N/D",
        help="more than this fraction of the active members decides a change of any kind "
        "not named with --kind; at least 1/2",
    )
    parser.add_argument(
        "--kind",
        action="append",
        default=[],
        metavar="KIND=N/D",
        help=f"the threshold of one kind of change ({', '.join(CHANGE_KINDS)}); repeat. The "
        "table replaces the one in force: name every kind that keeps its own threshold",
    )


def _thresholds(args: argparse.Namespace) -> dict[str, Any]:
    by_kind = {}
    for entry in args.kind:
        name, separator, fraction = entry.partition("=")
        if not separator or name not in CHANGE_KINDS:
            raise CommandError(f"--kind takes KIND=N/D with KIND one of {', '.join(CHANGE_KINDS)}")
        by_kind[name] = threshold_argument(fraction)
    return {
        "thresholds": {"default_threshold": threshold_argument(args.default), "by_kind": by_kind}
    }


def _revocation(args: argparse.Namespace) -> dict[str, Any]:
    if args.from_height < 0:
        raise CommandError("--from-height is a height, 0 or more")
    return {
        "member_id": args.member_id,
        "key_id": key_id_argument(args.key_id),
        "from_height": args.from_height,
        "reason": args.reason,
    }


KINDS: dict[str, Kind] = {
    "add-member": Kind(
        "member_added",
        "admit a new member with its public key",
        _add_member_arguments,
        lambda a: {
            "member_id": a.member_id,
            "name": a.name or a.member_id,
            "role": _role(a.role),
            "public_key": public_key_argument(a.public_key),
        },
    ),
    "remove-member": Kind(
        "member_removed", "remove a member", _member_argument, lambda a: {"member_id": a.member_id}
    ),
    "rotate-key": Kind(
        "key_rotated",
        "give a member a new key (and retire an old one)",
        _rotate_key_arguments,
        lambda a: {
            "member_id": a.member_id,
            "new_public_key": public_key_argument(a.new_public_key),
            "retired_key_id": key_id_argument(a.retire_key_id) if a.retire_key_id else b"",
        },
    ),
    "revoke-key": Kind(
        "key_revoked",
        "revoke a member's key as compromised from a height on",
        _revoke_key_arguments,
        _revocation,
    ),
    "change-role": Kind(
        "role_changed",
        "change a member's role",
        _change_role_arguments,
        lambda a: {"member_id": a.member_id, "role": _role(a.role)},
    ),
    "add-validator": Kind(
        "validator_added",
        "add a validator (it signs from two blocks after the change, ADR 013)",
        _add_validator_arguments,
        lambda a: {
            "validator_id": a.validator_id,
            "public_key": public_key_argument(a.public_key),
            "tls_ca": tls_ca_argument(a.tls_ca),
        },
    ),
    "remove-validator": Kind(
        "validator_removed",
        "remove a validator",
        _remove_validator_arguments,
        lambda a: {"validator_id": a.validator_id},
    ),
    "replace-tls-ca": Kind(
        "tls_ca_replaced",
        "replace a validator's organisation's TLS CA root (from two blocks after the change; "
        "a new node certificate from the same CA needs no change)",
        _replace_tls_ca_arguments,
        lambda a: {"validator_id": a.validator_id, "tls_ca": tls_ca_argument(a.tls_ca)},
    ),
    "change-thresholds": Kind(
        "thresholds_changed",
        "replace the approval thresholds",
        _change_thresholds_arguments,
        _thresholds,
    ),
}


ACTION_ONLY = frozenset(
    name for name, kind in KINDS.items() if kind.field in validators.CHANGE_KINDS
)


def add_kind_parsers(
    parent: argparse.ArgumentParser,
    with_more: Callable[[argparse.ArgumentParser], Any],
    handler: Callable[[argparse.Namespace], None] | None = None,
) -> None:
    """A sub-command of `parent` (`propose`, or `draft` with its `handler`) per kind, each
    given its further arguments by `with_more` (the node's, or the draft's)."""
    kinds = parent.add_subparsers(dest="kind", required=True, metavar="KIND")
    for name, kind in KINDS.items():
        help_text = kind.help
        if handler is None and name in ACTION_ONLY:
            help_text += " (not proposed: use draft, sign and submit)"
        parser = kinds.add_parser(name, help=help_text)
        kind.arguments(parser)
        with_more(parser)
        parser.set_defaults(
            handler=handler or cmd_governance_propose, change_kind=kind, kind_name=name
        )


def build_change(args: argparse.Namespace, nonce: int | None = None) -> bytes:
    """The serialized GovernanceChange the arguments describe, with a fresh proposal nonce."""
    kind: Kind = args.change_kind
    change = ledger_pb2.GovernanceChange(
        proposal_nonce=nonce or secrets.randbelow(PROPOSAL_NONCE_MAX) + 1,
        **{kind.field: kind.build(args)},
    )
    return change.SerializeToString(deterministic=True)


# --- the commands -------------------------------------------------------------------------


def cmd_governance_propose(args: argparse.Namespace) -> None:
    name = getattr(args, "kind_name", "")
    if name in ACTION_ONLY:
        raise CommandError(
            f"a {name} change is not proposed on the ledger: draft it (`provledger governance "
            f"draft {name} ... --out change.json`), have the members sign it (`governance "
            "sign change.json --identity FILE --out approval.json`) and submit it with their "
            "approvals (`governance submit change.json --approval FILE ...`)"
        )
    identity = signing_identity(args)
    change = build_change(args)
    signed = EventSigner(identity).event("governance_proposed", change=change)
    with client_for(args) as client:
        receipt = client.submit_and_wait(signed)
        _report(args, client, proposal_id(change), receipt, "proposed")


def cmd_governance_approve(args: argparse.Namespace) -> None:
    identity = signing_identity(args)
    identifier = parse_hex(args.proposal_id, "the proposal id")
    signed = EventSigner(identity).event("governance_approved", proposal_id=identifier)
    with client_for(args) as client:
        receipt = client.submit_and_wait(signed)
        _report(args, client, identifier, receipt, "approved")


def cmd_governance_status(args: argparse.Namespace) -> None:
    with client_for(args) as client:
        if args.proposal_id:
            identifier = parse_hex(args.proposal_id, "the proposal id")
            proposals = [
                client.stub.GetProposal(api_pb2.GetProposalRequest(proposal_id=identifier))
            ]
        else:
            answer = client.stub.ListProposals(api_pb2.ListProposalsRequest(open_only=not args.all))
            proposals = list(answer.proposals)
    documents = [proposal_json(p) for p in proposals]
    if args.proposal_id:
        emit(args, documents[0], proposal_text(documents[0]))
        return
    text = "\n".join(proposal_text(d) for d in documents) or (
        "no open proposals" if not args.all else "no proposals within the proposal lifetime"
    )
    emit(args, {"proposals": documents}, text)


def signing_identity(args: argparse.Namespace) -> Identity:
    if not args.identity:
        raise CommandError("--identity FILE is needed: the member who signs")
    return load_identity(args.identity)


def _report(
    args: argparse.Namespace,
    client: LedgerClient,
    identifier: bytes,
    receipt: api_pb2.Receipt,
    done: str,
) -> None:
    proposal = client.stub.GetProposal(api_pb2.GetProposalRequest(proposal_id=identifier))
    document = {
        **proposal_json(proposal),
        "event_id": receipt.event_id.hex(),
        "height": receipt.height,
    }
    emit(
        args,
        document,
        f"{done} at height {receipt.height}\nproposal {identifier.hex()}\n"
        + proposal_text(document),
    )


def proposal_json(proposal: api_pb2.GovernanceProposal) -> dict[str, Any]:
    record = proposal.record
    return {
        "proposal_id": record.proposal_id.hex(),
        "kind": proposal.kind,
        "subject": record.subject,
        "status": _STATUS_NAMES.get(proposal.status, "unknown"),
        "proposer_id": record.proposer_id,
        "approvals": [a.member_id for a in record.approvals],
        "approvals_counted": proposal.approvals_counted,
        "approvals_needed": proposal.approvals_needed,
        "active_members": proposal.active_members,
        "threshold": f"{proposal.threshold.numerator}/{proposal.threshold.denominator}",
        "proposed_height": record.proposed_height,
        "expires_at_ms": record.expires_at_ms,
        "applied_height": record.applied_height if record.applied else None,
    }


def proposal_text(document: dict[str, Any]) -> str:
    applied = (
        f" at height {document['applied_height']}" if document["applied_height"] is not None else ""
    )
    return (
        f"{document['proposal_id']}  {document['kind']} ({document['subject']})  "
        f"{document['status']}{applied}\n"
        f"    approvals {document['approvals_counted']} of {document['approvals_needed']} needed "
        f"(more than {document['threshold']} of {document['active_members']} members): "
        f"{', '.join(document['approvals'])}"
    )

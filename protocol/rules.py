"""Validation rules: may this signed event be applied to this state, and what does it change?

Every rule is a pure function of (state, event, block time). It either returns the writes the
event makes, or raises `Rejected` with a precise code and reason, having changed nothing: a
rule reads first and returns its writes at the end, and only the caller applies them.

Who may do what (roles are in the genesis document and changed by governance):
- agencies and exchanges register and derive assets; a derivation needs every parent to exist
  and not be retired, to be owned by the author or covered by a derive grant the event names,
  and is classified at least as high as its most sensitive parent;
- only the owner, or a grantee whose grant covers the operation, may share or use an asset; a
  use's grant must name the asset, purpose and operation and be neither expired nor revoked at
  the block's time;
- moving important or core data abroad (a share or transfer with a destination region) needs
  a regulator's security assessment whose scope holds the asset or an ancestor of it, for that
  recipient, region and purpose, still valid (a one-shot cross-border approval no longer
  suffices, ADR 019); a grant marked no-cross-border never allows it, nor anything derived
  under it; the recipient reports once per period the assessment sets; a regulator's
  important-data catalogue refuses registrations and derivations below its minimum, and a
  regulator reclassifies an asset upwards only;
- exchanges list offers of an asset for its owner, and qualified brokers list them under the
  owner's mandate (protocol/rules_market.py: brokers, mandates, delistings, suspensions from
  trading); any member but the seller or an auditor
  orders; trades go listed -> ordered -> delivered (by the seller; the buyer then holds a copy
  of the asset) -> settled (by the listing exchange); only a party to the order opens a
  dispute, and a regulator resolves it;
- regulators approve cross-border moves, issue certificates and resolve disputes;
- auditors only read; every event they author is rejected, but for proposing and approving
  governance changes (they are members, and count in the threshold);
- governance changes need approvals from more than a threshold of the active members (by
  default two thirds), inside one event or as approvals of a proposal on the ledger;
- a key revoked as compromised signs nothing committed above the height it was revoked from.
Each (author, nonce) commits at most once, which makes a replayed event fail.

This module authenticates the author and dispatches by kind; the rules of each kind are in
protocol/rules_assets.py (provenance and authorization), rules_trade.py,
rules_governance.py and rules_customs.py (data customs and the catalogue), over the shared
checks of protocol/rule_checks.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from provledger.protocol import (
    crypto,
    rules_assets,
    rules_cases,
    rules_customs,
    rules_governance,
    rules_market,
    rules_trade,
)
from provledger.protocol.errors import duplicate, forbidden, invalid
from provledger.protocol.events import DecodedEvent
from provledger.protocol.rule_checks import AUDITOR
from provledger.protocol.rules_governance import find_key, governance_sign_bytes, key_revoked_at
from provledger.protocol.state import StateReader, Write
from provledger.protocol.validators import ValidatorContext
from provledger.v1 import state_pb2

__all__ = ["apply_event", "authenticate", "governance_sign_bytes"]


# --- authentication ----------------------------------------------------------------------


def authenticate(
    state: StateReader,
    decoded: DecodedEvent,
    *,
    height: int | None,
    verify_signature: bool = True,
) -> state_pb2.MemberRecord:
    """The author's member record, if the author is an active member whose current key, not
    revoked for a block at `height`, signed the event. `height` None judges no revocation (the
    evidence verifier's replay of a format 2 bundle, which proves no heights).
    `verify_signature=False` skips only the Ed25519 check, for an
    event whose signature this node already checked against the same key."""
    author = decoded.event.author
    member = state.load("member", author.member_id)
    if member is None:
        raise forbidden("unknown_author", f"{author.member_id!r} is not a consortium member")
    if member.removed:  # type: ignore[attr-defined]
        raise forbidden("member_removed", f"member {author.member_id!r} has been removed")
    key = find_key(member, author.key_id)  # type: ignore[arg-type]
    if key is None:
        raise forbidden(
            "unknown_key",
            f"key {author.key_id.hex()} is not a current key of member {author.member_id!r}",
        )
    if height is not None and key_revoked_at(key, height):
        raise forbidden(
            "key_revoked",
            f"key {author.key_id.hex()} of member {author.member_id!r} was revoked as "
            f"compromised after height {key.revoked_after_height}; this block is {height}",
        )
    if verify_signature and not crypto.verify(
        key.public_key, crypto.DOMAIN_EVENT, decoded.signed.body, decoded.signed.signature
    ):
        raise invalid("bad_signature", "the signature does not match the event body and key")
    return member  # type: ignore[return-value]


# --- the entry point ---------------------------------------------------------------------


def apply_event(
    state: StateReader,
    decoded: DecodedEvent,
    block_time_ms: int,
    *,
    height: int,
    verify_signature: bool = True,
    validator_context: ValidatorContext | None = None,
) -> list[Write]:
    """The writes `decoded` makes to `state` in the block at `height` and `block_time_ms`, or
    `Rejected`. A validator-set change also needs `validator_context` (the block's height and
    the genesis set); without it, it is refused (`no_validator_context`)."""
    author = authenticate(state, decoded, height=height, verify_signature=verify_signature)
    if author.role == AUDITOR and decoded.kind not in AUDITOR_KINDS:
        raise forbidden("wrong_role", "auditors only read; they cannot author events")
    if state.nonce_used(author.member_id, decoded.event.nonce):
        raise duplicate(
            "replayed_nonce",
            f"nonce {decoded.event.nonce} of {author.member_id!r} was already used",
        )
    if decoded.kind in GOVERNANCE_KINDS:
        writes = governance_writes(state, author, decoded, block_time_ms, height, validator_context)
    else:
        payload = getattr(decoded.event, decoded.kind)
        writes = _HANDLERS[decoded.kind](state, author, payload, decoded, block_time_ms)
    writes.append(Write(kind="nonce", record_id=author.member_id, nonce=decoded.event.nonce))
    return writes


_Handler = Callable[[StateReader, Any, Any, DecodedEvent, int], list[Write]]
_HANDLERS: dict[str, _Handler] = {
    "asset_registered": rules_assets.asset_registered,
    "asset_derived": rules_assets.asset_derived,
    "asset_shared": rules_assets.asset_shared,
    "asset_transferred": rules_assets.asset_transferred,
    "asset_used": rules_assets.asset_used,
    "certificate_issued": rules_assets.certificate_issued,
    "certificate_revoked": rules_assets.certificate_revoked,
    "asset_retired": rules_assets.asset_retired,
    "grant_issued": rules_assets.grant_issued,
    "grant_revoked": rules_assets.grant_revoked,
    "cross_border_approved": rules_assets.cross_border_approved,
    "offer_listed": rules_trade.offer_listed,
    "order_placed": rules_trade.order_placed,
    "order_delivered": rules_trade.order_delivered,
    "order_settled": rules_trade.order_settled,
    "dispute_opened": rules_trade.dispute_opened,
    "dispute_resolved": rules_trade.dispute_resolved,
    "complaint_filed": rules_cases.complaint_filed,
    "case_opened": rules_cases.case_opened,
    "case_step_recorded": rules_cases.case_step_recorded,
    "case_ruled": rules_cases.case_ruled,
    "ruling_appealed": rules_cases.ruling_appealed,
    "appeal_decided": rules_cases.appeal_decided,
    "broker_qualified": rules_market.broker_qualified,
    "mandate_granted": rules_market.mandate_granted,
    "mandate_revoked": rules_market.mandate_revoked,
    "offer_delisted": rules_market.offer_delisted,
    "trading_suspended": rules_market.trading_suspended,
    "security_assessed": rules_customs.security_assessed,
    "transfer_reported": rules_customs.transfer_reported,
    "data_catalogued": rules_customs.data_catalogued,
    "asset_reclassified": rules_customs.asset_reclassified,
}
# Governance also needs the block's height (key revocations are by height).
_GovernanceHandler = Callable[
    [StateReader, Any, Any, DecodedEvent, int, int | None, ValidatorContext | None], list[Write]
]
_GOVERNANCE_HANDLERS: dict[str, _GovernanceHandler] = {
    "governance": rules_governance.governance,
    "governance_proposed": rules_governance.governance_proposed,
    "governance_approved": rules_governance.governance_approved,
}
GOVERNANCE_KINDS = frozenset(_GOVERNANCE_HANDLERS)


def governance_writes(
    state: StateReader,
    author: state_pb2.MemberRecord,
    decoded: DecodedEvent,
    block_time_ms: int,
    height: int | None,
    validator_context: ValidatorContext | None,
) -> list[Write]:
    """The writes of the governance event `decoded` (an action, a proposal or an approval) by
    the authenticated `author` in the block at `height` and `block_time_ms`, or `Rejected`:
    the rules of rules_governance.py. What `apply_event` runs, and the evidence verifier's
    membership replay (protocol/evidence_governance.py), which learns each event's block from
    the bundle (`height` None: a format 2 bundle, whose one-event actions are judged without
    revocations)."""
    payload = getattr(decoded.event, decoded.kind)
    return _GOVERNANCE_HANDLERS[decoded.kind](
        state,
        author,
        payload,
        decoded,
        block_time_ms,
        height,
        validator_context,
    )


# What an auditor may author: a say in governance, as a member that counts in its threshold.
AUDITOR_KINDS = frozenset(("governance_proposed", "governance_approved"))

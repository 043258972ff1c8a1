"""The checks the rules share: roles, members, assets, new ids, covering grants and
cross-border moves (under a security assessment: protocol/customs.py). Each raises `Rejected`
with a precise code and reason, or returns what it looked up; none writes anything
(protocol/rules.py says how the rules fit together).
"""

from __future__ import annotations

from typing import Any

from google.protobuf.message import Message

from provledger.protocol import customs
from provledger.protocol.authorization import binding_failure, grant_failure, operation_name
from provledger.protocol.errors import duplicate, forbidden, invalid, precondition
from provledger.protocol.state import StateReader, Write
from provledger.v1 import ledger_pb2, state_pb2

AGENCY = ledger_pb2.ROLE_AGENCY
EXCHANGE = ledger_pb2.ROLE_EXCHANGE
REGULATOR = ledger_pb2.ROLE_REGULATOR
AUDITOR = ledger_pb2.ROLE_AUDITOR
BROKER = ledger_pb2.ROLE_BROKER
ROLE_NAMES = {
    AGENCY: "agency",
    EXCHANGE: "exchange",
    REGULATOR: "regulator",
    AUDITOR: "auditor",
    BROKER: "broker",
}
SENSITIVE = (ledger_pb2.CLASSIFICATION_IMPORTANT, ledger_pb2.CLASSIFICATION_CORE)


def copy_record(record: Any) -> Any:
    fresh = type(record)()
    fresh.CopyFrom(record)
    return fresh


def put(kind: str, record_id: str, record: Message) -> Write:
    return Write(kind=kind, record_id=record_id, record=record)


def member_key(member: state_pb2.MemberRecord, key_id: bytes) -> bytes | None:
    for key in member.keys:
        if key.key_id == key_id:
            return key.public_key
    return None


# --- shared checks -----------------------------------------------------------------------


def require_role(author: state_pb2.MemberRecord, roles: tuple[int, ...], action: str) -> None:
    if author.role not in roles:
        allowed = " or ".join(ROLE_NAMES[r] for r in roles)
        raise forbidden(
            "wrong_role",
            f"{action} needs the {allowed} role; {author.member_id!r} is "
            f"{ROLE_NAMES.get(author.role, 'unspecified')}",
        )


def active_member(state: StateReader, member_id: str, field: str) -> state_pb2.MemberRecord:
    member = state.load("member", member_id)
    if member is None or member.removed:  # type: ignore[attr-defined]
        raise precondition("unknown_member", f"{field} {member_id!r} is not an active member")
    return member  # type: ignore[return-value]


def live_asset(state: StateReader, asset_id: str) -> state_pb2.AssetRecord:
    asset = state.load("asset", asset_id)
    if asset is None:
        raise precondition("unknown_asset", f"asset {asset_id!r} does not exist")
    if asset.retired:  # type: ignore[attr-defined]
        raise precondition("asset_retired", f"asset {asset_id!r} has been retired")
    return asset  # type: ignore[return-value]


def owned_asset(
    state: StateReader, asset_id: str, author: state_pb2.MemberRecord, action: str
) -> state_pb2.AssetRecord:
    """The live asset, if `author` owns it; else a not_owner rejection naming the owner."""
    asset = live_asset(state, asset_id)
    if asset.owner_id != author.member_id:
        raise forbidden(
            "not_owner", f"only the owner {asset.owner_id!r} may {action} asset {asset_id!r}"
        )
    return asset


def new_id(state: StateReader, kind: str, record_id: str) -> None:
    if state.load(kind, record_id) is not None:
        raise duplicate(f"{kind}_exists", f"{kind} {record_id!r} already exists")


def covering_grant(
    state: StateReader,
    grant_id: str,
    grantee_id: str,
    asset_id: str,
    operation: int,
    purpose: str | None,
    block_time_ms: int,
) -> state_pb2.GrantRecord:
    """The grant `grant_id`, if it lets `grantee_id` do `operation` on `asset_id` now (the
    judgement is protocol/authorization.py's)."""
    if not grant_id:
        raise forbidden(
            "no_grant",
            f"{grantee_id!r} does not own asset {asset_id!r} and names no grant to "
            f"{operation_name(operation)} it",
        )
    record = state.load("grant", grant_id)
    if record is None:
        raise precondition("unknown_grant", f"grant {grant_id!r} does not exist")
    failure = grant_failure(
        grant_id,
        record.grant,  # type: ignore[attr-defined]
        grantee_id=grantee_id,
        asset_id=asset_id,
        operation=operation,
        purpose=purpose,
        at_ms=block_time_ms,
        revoked_at_ms=record.revoked_at_ms if record.revoked else None,  # type: ignore[attr-defined]
    )
    if failure is not None:
        raise forbidden(failure.code, failure.reason)
    return record  # type: ignore[return-value]


def require_bound_purpose(asset: state_pb2.AssetRecord, purpose: str) -> None:
    """Refuses `purpose` on an asset bound by its derivation to other purposes (the judgement
    is protocol/authorization.py's `binding_failure`; ADR 022)."""
    failure = binding_failure(asset.asset_id, asset.bound_purposes, purpose)
    if failure is not None:
        raise forbidden(failure.code, failure.reason)


def check_cross_border(
    state: StateReader,
    asset: state_pb2.AssetRecord,
    recipient_id: str,
    move: Any,
    grant: state_pb2.GrantRecord | None,
    block_time_ms: int,
) -> state_pb2.AssessmentRecord | None:
    """Whether the share or transfer `move` (its destination_region, assessment_id, purpose and
    approval_id) may take `asset` to `recipient_id`. Returns the security assessment it moves
    under, on which the caller records it (protocol/customs.py `record_move`), or None.

    Important or core data (by its effective classification: the catalogue's minimum counts)
    needs a covering assessment; a one-shot cross-border approval no longer suffices (ADR 019).
    An assessment named on any move abroad is checked and records the move."""
    region = move.destination_region
    if not region:
        if move.assessment_id:
            raise invalid(
                "assessment_not_abroad",
                f"assessment {move.assessment_id!r} is named on a move that stays in the country",
            )
        return None
    if grant is not None and grant.grant.no_cross_border:
        raise forbidden(
            "cross_border_forbidden",
            f"grant {grant.grant.grant_id!r} forbids moving asset {asset.asset_id!r} abroad",
        )
    if asset.no_cross_border_by:
        raise forbidden(
            "cross_border_forbidden",
            f"asset {asset.asset_id!r} may not leave the country: it derives from data kept in "
            f"it by {asset.no_cross_border_by}",
        )
    if move.assessment_id:
        return customs.covering_assessment(
            state.load,
            asset.asset_id,
            recipient_id,
            region,
            move.assessment_id,
            move.purpose,
            block_time_ms,
        )
    level = customs.effective_classification(state.load, asset)
    if level not in SENSITIVE:
        return None
    approval = (
        f"; approval {move.approval_id!r} is a one-shot approval, not an assessment"
        if move.approval_id
        else ""
    )
    raise forbidden(
        "assessment_required",
        f"asset {asset.asset_id!r} is {customs.level_name(level)} data: moving it to "
        f"{region!r} needs a regulator's security assessment covering it{approval}",
    )

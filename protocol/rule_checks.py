"""The checks the rules share: roles, members, assets, new ids, covering grants and
cross-border moves. Each raises `Rejected` with a precise code and reason, or returns what it
looked up; none writes anything (protocol/rules.py says how the rules fit together).
"""

from __future__ import annotations

from typing import Any

from google.protobuf.message import Message

from provledger.protocol.authorization import grant_failure, operation_name
from provledger.protocol.errors import duplicate, forbidden, precondition
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


def check_cross_border(
    state: StateReader,
    asset: state_pb2.AssetRecord,
    recipient_id: str,
    destination_region: str,
    approval_id: str,
    grant: state_pb2.GrantRecord | None,
    block_time_ms: int,
) -> None:
    if not destination_region:
        return
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
    if asset.classification not in SENSITIVE:
        return
    level = ledger_pb2.Classification.Name(asset.classification).removeprefix("CLASSIFICATION_")
    if not approval_id:
        raise forbidden(
            "cross_border_unapproved",
            f"asset {asset.asset_id!r} is {level.lower()} data: moving it to "
            f"{destination_region!r} needs a regulator's cross-border approval",
        )
    record = state.load("approval", approval_id)
    if record is None:
        raise precondition("unknown_approval", f"approval {approval_id!r} does not exist")
    approval = record.approval  # type: ignore[attr-defined]
    mismatch = [
        field
        for field, expected in (
            ("asset_id", asset.asset_id),
            ("recipient_id", recipient_id),
            ("destination_region", destination_region),
        )
        if getattr(approval, field) != expected
    ]
    if mismatch:
        raise forbidden(
            "approval_mismatch",
            f"approval {approval_id!r} does not match this move's {', '.join(mismatch)}",
        )
    if block_time_ms >= approval.expires_at_ms:
        raise forbidden("approval_expired", f"approval {approval_id!r} has expired")

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
  a regulator's cross-border approval for that asset, recipient and region, still valid; a
  grant marked no-cross-border never allows it;
- exchanges list offers of an asset for its owner; any member but the seller or an auditor
  orders; trades go listed -> ordered -> delivered (by the seller; the buyer then holds a copy
  of the asset) -> settled (by the listing exchange); only a party to the order opens a
  dispute, and a regulator resolves it;
- regulators approve cross-border moves, issue certificates and resolve disputes;
- auditors only read; every event they author is rejected;
- governance changes need approvals from more than two thirds of the active members.
Each (author, nonce) commits at most once, which makes a replayed event fail.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from google.protobuf.message import Message

from provledger.protocol import crypto
from provledger.protocol.authorization import grant_failure, operation_name
from provledger.protocol.errors import Rejected, duplicate, forbidden, invalid, precondition
from provledger.protocol.events import DecodedEvent, require_identifier
from provledger.protocol.limits import PUBLIC_KEY_SIZE_BYTES
from provledger.protocol.state import StateReader, Write
from provledger.v1 import ledger_pb2, state_pb2

AGENCY = ledger_pb2.ROLE_AGENCY
EXCHANGE = ledger_pb2.ROLE_EXCHANGE
REGULATOR = ledger_pb2.ROLE_REGULATOR
AUDITOR = ledger_pb2.ROLE_AUDITOR
_ROLE_NAMES = {AGENCY: "agency", EXCHANGE: "exchange", REGULATOR: "regulator", AUDITOR: "auditor"}
_SENSITIVE = (ledger_pb2.CLASSIFICATION_IMPORTANT, ledger_pb2.CLASSIFICATION_CORE)


def _copy(record: Any) -> Any:
    fresh = type(record)()
    fresh.CopyFrom(record)
    return fresh


def _put(kind: str, record_id: str, record: Message) -> Write:
    return Write(kind=kind, record_id=record_id, record=record)


# --- authentication ----------------------------------------------------------------------


def authenticate(
    state: StateReader, decoded: DecodedEvent, *, verify_signature: bool = True
) -> state_pb2.MemberRecord:
    """The author's member record, if the author is an active member whose current key signed
    the event. `verify_signature=False` skips only the Ed25519 check, for an event whose
    signature this node already checked against the same key."""
    author = decoded.event.author
    member = state.load("member", author.member_id)
    if member is None:
        raise forbidden("unknown_author", f"{author.member_id!r} is not a consortium member")
    if member.removed:  # type: ignore[attr-defined]
        raise forbidden("member_removed", f"member {author.member_id!r} has been removed")
    public_key = _member_key(member, author.key_id)  # type: ignore[arg-type]
    if public_key is None:
        raise forbidden(
            "unknown_key",
            f"key {author.key_id.hex()} is not a current key of member {author.member_id!r}",
        )
    if verify_signature and not crypto.verify(
        public_key, crypto.DOMAIN_EVENT, decoded.signed.body, decoded.signed.signature
    ):
        raise invalid("bad_signature", "the signature does not match the event body and key")
    return member  # type: ignore[return-value]


def _member_key(member: state_pb2.MemberRecord, key_id: bytes) -> bytes | None:
    for key in member.keys:
        if key.key_id == key_id:
            return key.public_key
    return None


# --- the entry point ---------------------------------------------------------------------


def apply_event(
    state: StateReader,
    decoded: DecodedEvent,
    block_time_ms: int,
    *,
    verify_signature: bool = True,
) -> list[Write]:
    """The writes `decoded` makes to `state` at `block_time_ms`, or `Rejected`."""
    author = authenticate(state, decoded, verify_signature=verify_signature)
    if author.role == AUDITOR:
        raise forbidden("wrong_role", "auditors only read; they cannot author events")
    if state.nonce_used(author.member_id, decoded.event.nonce):
        raise duplicate(
            "replayed_nonce",
            f"nonce {decoded.event.nonce} of {author.member_id!r} was already used",
        )
    handler = _HANDLERS[decoded.kind]
    writes = handler(state, author, getattr(decoded.event, decoded.kind), decoded, block_time_ms)
    writes.append(Write(kind="nonce", record_id=author.member_id, nonce=decoded.event.nonce))
    return writes


# --- shared checks -----------------------------------------------------------------------


def _require_role(author: state_pb2.MemberRecord, roles: tuple[int, ...], action: str) -> None:
    if author.role not in roles:
        allowed = " or ".join(_ROLE_NAMES[r] for r in roles)
        raise forbidden(
            "wrong_role",
            f"{action} needs the {allowed} role; {author.member_id!r} is "
            f"{_ROLE_NAMES.get(author.role, 'unspecified')}",
        )


def _member(state: StateReader, member_id: str, field: str) -> state_pb2.MemberRecord:
    member = state.load("member", member_id)
    if member is None or member.removed:  # type: ignore[attr-defined]
        raise precondition("unknown_member", f"{field} {member_id!r} is not an active member")
    return member  # type: ignore[return-value]


def _asset(state: StateReader, asset_id: str) -> state_pb2.AssetRecord:
    asset = state.load("asset", asset_id)
    if asset is None:
        raise precondition("unknown_asset", f"asset {asset_id!r} does not exist")
    if asset.retired:  # type: ignore[attr-defined]
        raise precondition("asset_retired", f"asset {asset_id!r} has been retired")
    return asset  # type: ignore[return-value]


def _owned_asset(
    state: StateReader, asset_id: str, author: state_pb2.MemberRecord, action: str
) -> state_pb2.AssetRecord:
    """The live asset, if `author` owns it; else a not_owner rejection naming the owner."""
    asset = _asset(state, asset_id)
    if asset.owner_id != author.member_id:
        raise forbidden(
            "not_owner", f"only the owner {asset.owner_id!r} may {action} asset {asset_id!r}"
        )
    return asset


def _new_id(state: StateReader, kind: str, record_id: str) -> None:
    if state.load(kind, record_id) is not None:
        raise duplicate(f"{kind}_exists", f"{kind} {record_id!r} already exists")


def _covering_grant(
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


def _check_cross_border(
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
    if asset.classification not in _SENSITIVE:
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


# --- provenance --------------------------------------------------------------------------


def _asset_registered(state, author, payload, decoded, block_time_ms) -> list[Write]:
    _require_role(author, (AGENCY, EXCHANGE), "registering an asset")
    _new_id(state, "asset", payload.asset_id)
    asset = state_pb2.AssetRecord(
        asset_id=payload.asset_id,
        owner_id=author.member_id,
        classification=payload.classification,
        content_digest=payload.content_digest,
        name=payload.name,
        origin_event_id=decoded.event_id,
    )
    return [_put("asset", payload.asset_id, asset)]


def _asset_derived(state, author, payload, decoded, block_time_ms) -> list[Write]:
    _require_role(author, (AGENCY, EXCHANGE), "deriving an asset")
    _new_id(state, "asset", payload.asset_id)
    grants = list(payload.grant_ids)
    highest = ledger_pb2.CLASSIFICATION_GENERAL
    for parent_id in payload.parent_ids:
        parent = _asset(state, parent_id)
        highest = max(highest, parent.classification)
        if parent.owner_id == author.member_id:
            continue
        covering = [g for g in grants if _grant_covers(state, g, author.member_id, parent_id)]
        if not covering:
            raise forbidden(
                "no_grant",
                f"{author.member_id!r} does not own parent {parent_id!r} and none of the named "
                "grants lets it derive from it",
            )
        _first_valid_grant(state, covering, author.member_id, parent_id, block_time_ms)
    if payload.classification < highest:
        raise forbidden(
            "classification_too_low",
            "a derived asset is classified at least as high as its most sensitive parent ("
            f"{ledger_pb2.Classification.Name(highest).removeprefix('CLASSIFICATION_').lower()})",
        )
    asset = state_pb2.AssetRecord(
        asset_id=payload.asset_id,
        owner_id=author.member_id,
        classification=payload.classification,
        content_digest=payload.content_digest,
        name=payload.name,
        parent_ids=list(payload.parent_ids),
        activity=payload.activity,
        origin_event_id=decoded.event_id,
    )
    return [_put("asset", payload.asset_id, asset)]


def _first_valid_grant(
    state: StateReader, grant_ids: list[str], grantee_id: str, asset_id: str, block_time_ms: int
) -> state_pb2.GrantRecord:
    """The first of the named grants that lets the grantee derive from the asset now; if none
    does, the reason the last one fails."""
    for position, grant_id in enumerate(grant_ids):
        try:
            return _covering_grant(
                state,
                grant_id,
                grantee_id,
                asset_id,
                ledger_pb2.OPERATION_DERIVE,
                None,
                block_time_ms,
            )
        except Rejected:
            if position == len(grant_ids) - 1:
                raise
    raise forbidden("no_grant", "no grant named")  # unreachable: grant_ids is never empty


def _grant_covers(state: StateReader, grant_id: str, grantee_id: str, asset_id: str) -> bool:
    record = state.load("grant", grant_id)
    return (
        record is not None
        and record.grant.asset_id == asset_id  # type: ignore[attr-defined]
        and record.grant.grantee_id == grantee_id  # type: ignore[attr-defined]
    )


def _asset_shared(state, author, payload, decoded, block_time_ms) -> list[Write]:
    asset = _asset(state, payload.asset_id)
    _member(state, payload.recipient_id, "recipient_id")
    if payload.recipient_id == author.member_id:
        raise invalid("self_share", "an asset cannot be shared with its own author")
    grant = None
    if asset.owner_id != author.member_id:
        grant = _covering_grant(
            state,
            payload.grant_id,
            author.member_id,
            asset.asset_id,
            ledger_pb2.OPERATION_SHARE,
            None,
            block_time_ms,
        )
    _check_cross_border(
        state,
        asset,
        payload.recipient_id,
        payload.destination_region,
        payload.approval_id,
        grant,
        block_time_ms,
    )
    updated = _copy(asset)
    if payload.recipient_id not in updated.holder_ids:
        updated.holder_ids.append(payload.recipient_id)
    return [_put("asset", asset.asset_id, updated)]


def _asset_transferred(state, author, payload, decoded, block_time_ms) -> list[Write]:
    asset = _owned_asset(state, payload.asset_id, author, "transfer")
    new_owner = _member(state, payload.new_owner_id, "new_owner_id")
    if new_owner.member_id == author.member_id:
        raise invalid("self_transfer", "the asset already belongs to its author")
    _check_cross_border(
        state,
        asset,
        payload.new_owner_id,
        payload.destination_region,
        payload.approval_id,
        None,
        block_time_ms,
    )
    updated = _copy(asset)
    updated.owner_id = payload.new_owner_id
    return [_put("asset", asset.asset_id, updated)]


def _asset_used(state, author, payload, decoded, block_time_ms) -> list[Write]:
    asset = _asset(state, payload.asset_id)
    if asset.owner_id != author.member_id:
        _covering_grant(
            state,
            payload.grant_id,
            author.member_id,
            asset.asset_id,
            payload.operation,
            payload.purpose,
            block_time_ms,
        )
    return []  # a use changes no state; the event itself is the record


def _certificate_issued(state, author, payload, decoded, block_time_ms) -> list[Write]:
    _require_role(author, (REGULATOR,), "issuing an asset certificate")
    _asset(state, payload.asset_id)
    if payload.expires_at_ms and payload.expires_at_ms <= block_time_ms:
        raise precondition(
            "already_expired", "the certificate's expiry is not after the block time"
        )
    _new_id(state, "certificate", payload.certificate_id)
    record = state_pb2.CertificateRecord(
        certificate=payload, issuer_id=author.member_id, event_id=decoded.event_id
    )
    return [_put("certificate", payload.certificate_id, record)]


def _certificate_revoked(state, author, payload, decoded, block_time_ms) -> list[Write]:
    record = state.load("certificate", payload.certificate_id)
    if record is None:
        raise precondition(
            "unknown_certificate", f"certificate {payload.certificate_id!r} does not exist"
        )
    if author.member_id != record.issuer_id and author.role != REGULATOR:
        raise forbidden("wrong_role", "only the issuer or a regulator revokes a certificate")
    if record.revoked:
        raise precondition(
            "already_revoked", f"certificate {payload.certificate_id!r} is already revoked"
        )
    updated = _copy(record)
    updated.revoked = True
    return [_put("certificate", payload.certificate_id, updated)]


def _asset_retired(state, author, payload, decoded, block_time_ms) -> list[Write]:
    asset = _owned_asset(state, payload.asset_id, author, "retire")
    updated = _copy(asset)
    updated.retired = True
    return [_put("asset", asset.asset_id, updated)]


# --- authorization -----------------------------------------------------------------------


def _grant_issued(state, author, payload, decoded, block_time_ms) -> list[Write]:
    _owned_asset(state, payload.asset_id, author, "grant use of")
    _member(state, payload.grantee_id, "grantee_id")
    if payload.grantee_id == author.member_id:
        raise invalid("self_grant", "an owner needs no grant on its own asset")
    if payload.expires_at_ms <= block_time_ms:
        raise precondition("already_expired", "the grant's expiry is not after the block time")
    _new_id(state, "grant", payload.grant_id)
    record = state_pb2.GrantRecord(
        grant=payload, grantor_id=author.member_id, event_id=decoded.event_id
    )
    return [_put("grant", payload.grant_id, record)]


def _grant_revoked(state, author, payload, decoded, block_time_ms) -> list[Write]:
    record = state.load("grant", payload.grant_id)
    if record is None:
        raise precondition("unknown_grant", f"grant {payload.grant_id!r} does not exist")
    if author.member_id != record.grantor_id and author.role != REGULATOR:
        raise forbidden("not_grantor", "only the grantor or a regulator may revoke a grant")
    if record.revoked:
        raise precondition("already_revoked", f"grant {payload.grant_id!r} is already revoked")
    updated = _copy(record)
    updated.revoked = True
    updated.revoked_at_ms = block_time_ms
    return [_put("grant", payload.grant_id, updated)]


def _cross_border_approved(state, author, payload, decoded, block_time_ms) -> list[Write]:
    _require_role(author, (REGULATOR,), "approving a cross-border move")
    _asset(state, payload.asset_id)
    _member(state, payload.recipient_id, "recipient_id")
    if payload.expires_at_ms <= block_time_ms:
        raise precondition("already_expired", "the approval's expiry is not after the block time")
    _new_id(state, "approval", payload.approval_id)
    record = state_pb2.ApprovalRecord(
        approval=payload, regulator_id=author.member_id, event_id=decoded.event_id
    )
    return [_put("approval", payload.approval_id, record)]


# --- trade -------------------------------------------------------------------------------


def _order(state: StateReader, order_id: str) -> state_pb2.OrderRecord:
    order = state.load("order", order_id)
    if order is None:
        raise precondition("unknown_order", f"order {order_id!r} does not exist")
    return order  # type: ignore[return-value]


def _require_status(order: state_pb2.OrderRecord, allowed: tuple[int, ...], action: str) -> None:
    if order.status not in allowed:
        status = state_pb2.OrderStatus.Name(order.status).removeprefix("ORDER_STATUS_").lower()
        raise precondition(
            "wrong_trade_state", f"order {order.order_id!r} is {status}; cannot {action}"
        )


def _advance(
    order: state_pb2.OrderRecord, status: int, decoded: DecodedEvent
) -> state_pb2.OrderRecord:
    updated = _copy(order)
    updated.status = status
    updated.event_ids.append(decoded.event_id)
    return updated  # type: ignore[no-any-return]


def _offer_listed(state, author, payload, decoded, block_time_ms) -> list[Write]:
    _require_role(author, (EXCHANGE,), "listing an offer")
    asset = _asset(state, payload.asset_id)
    if asset.owner_id != payload.seller_id:
        raise forbidden(
            "not_owner",
            f"seller {payload.seller_id!r} does not own asset {asset.asset_id!r}",
        )
    _new_id(state, "offer", payload.offer_id)
    record = state_pb2.OfferRecord(
        offer=payload, exchange_id=author.member_id, event_id=decoded.event_id
    )
    return [_put("offer", payload.offer_id, record)]


def _order_placed(state, author, payload, decoded, block_time_ms) -> list[Write]:
    _require_role(author, (AGENCY, EXCHANGE, REGULATOR), "placing an order")
    offer_record = state.load("offer", payload.offer_id)
    if offer_record is None:
        raise precondition("unknown_offer", f"offer {payload.offer_id!r} does not exist")
    offer = offer_record.offer  # type: ignore[attr-defined]
    if offer.seller_id == author.member_id:
        raise invalid("self_order", "a seller cannot order its own offer")
    asset = _asset(state, offer.asset_id)
    if asset.owner_id != offer.seller_id:
        raise precondition(
            "offer_stale",
            f"asset {asset.asset_id!r} no longer belongs to seller {offer.seller_id!r}",
        )
    _new_id(state, "order", payload.order_id)
    order = state_pb2.OrderRecord(
        order_id=payload.order_id,
        offer_id=payload.offer_id,
        buyer_id=author.member_id,
        seller_id=offer.seller_id,
        exchange_id=offer_record.exchange_id,  # type: ignore[attr-defined]
        status=state_pb2.ORDER_STATUS_ORDERED,
        event_ids=[offer_record.event_id, decoded.event_id],  # type: ignore[attr-defined]
    )
    return [_put("order", payload.order_id, order)]


def _order_delivered(state, author, payload, decoded, block_time_ms) -> list[Write]:
    order = _order(state, payload.order_id)
    if author.member_id != order.seller_id:
        raise forbidden("not_seller", f"only the seller {order.seller_id!r} delivers")
    _require_status(order, (state_pb2.ORDER_STATUS_ORDERED,), "deliver")
    updated = _advance(order, state_pb2.ORDER_STATUS_DELIVERED, decoded)
    updated.delivery_digest = payload.delivery_digest
    writes = [_put("order", order.order_id, updated)]
    # The buyer now holds a copy of the asset, as if it had been shared with it.
    offer = state.load("offer", order.offer_id)
    asset = state.load("asset", offer.offer.asset_id) if offer is not None else None  # type: ignore[attr-defined]
    if asset is not None and order.buyer_id not in asset.holder_ids:  # type: ignore[attr-defined]
        holder = _copy(asset)
        holder.holder_ids.append(order.buyer_id)
        writes.append(_put("asset", holder.asset_id, holder))
    return writes


def _order_settled(state, author, payload, decoded, block_time_ms) -> list[Write]:
    order = _order(state, payload.order_id)
    if author.member_id != order.exchange_id:
        raise forbidden("not_exchange", f"only the listing exchange {order.exchange_id!r} settles")
    _require_status(order, (state_pb2.ORDER_STATUS_DELIVERED,), "settle")
    updated = _advance(order, state_pb2.ORDER_STATUS_SETTLED, decoded)
    return [_put("order", order.order_id, updated)]


def _dispute_opened(state, author, payload, decoded, block_time_ms) -> list[Write]:
    order = _order(state, payload.order_id)
    if author.member_id not in (order.buyer_id, order.seller_id):
        raise forbidden(
            "not_a_party", f"only the buyer or the seller of order {order.order_id!r} disputes it"
        )
    _require_status(
        order,
        (
            state_pb2.ORDER_STATUS_ORDERED,
            state_pb2.ORDER_STATUS_DELIVERED,
            state_pb2.ORDER_STATUS_SETTLED,
        ),
        "open a dispute",
    )
    _new_id(state, "dispute", payload.dispute_id)
    updated = _advance(order, state_pb2.ORDER_STATUS_DISPUTED, decoded)
    updated.status_before_dispute = order.status
    updated.dispute_id = payload.dispute_id
    dispute = state_pb2.DisputeRecord(
        dispute_id=payload.dispute_id,
        order_id=order.order_id,
        opened_by=author.member_id,
        reason=payload.reason,
    )
    return [_put("order", order.order_id, updated), _put("dispute", payload.dispute_id, dispute)]


def _dispute_resolved(state, author, payload, decoded, block_time_ms) -> list[Write]:
    _require_role(author, (REGULATOR,), "resolving a dispute")
    dispute = state.load("dispute", payload.dispute_id)
    if dispute is None:
        raise precondition("unknown_dispute", f"dispute {payload.dispute_id!r} does not exist")
    if dispute.resolved:  # type: ignore[attr-defined]
        raise precondition("already_resolved", f"dispute {payload.dispute_id!r} is resolved")
    order = _order(state, dispute.order_id)  # type: ignore[attr-defined]
    resolved = _copy(dispute)
    resolved.resolved = True
    resolved.outcome = payload.outcome
    resolved.resolution = payload.resolution
    updated = _advance(order, state_pb2.ORDER_STATUS_RESOLVED, decoded)
    return [_put("dispute", payload.dispute_id, resolved), _put("order", order.order_id, updated)]


# --- governance --------------------------------------------------------------------------


def governance_sign_bytes(chain_id: str, change: bytes) -> bytes:
    return chain_id.encode() + b"\x00" + change


def _governance(state, author, payload, decoded, block_time_ms) -> list[Write]:
    change = ledger_pb2.GovernanceChange()
    try:
        change.ParseFromString(payload.change)
    except Exception:
        raise invalid("malformed", "governance change is not a GovernanceChange") from None
    kind = change.WhichOneof("change")
    if kind is None:
        raise invalid("missing_payload", "governance change names no change")
    change_key = crypto.key_id(payload.change).hex()
    if state.load("governance", change_key) is not None:
        raise duplicate("replayed_governance", "this governance change was already applied")

    active = [m for m in state.members() if not m.removed]
    message = governance_sign_bytes(decoded.event.chain_id, payload.change)
    approvers: set[str] = set()
    for approval in payload.approvals:
        member = state.load("member", approval.approver.member_id)
        if member is None or member.removed:  # type: ignore[attr-defined]
            raise forbidden(
                "unknown_approver", f"approver {approval.approver.member_id!r} is not a member"
            )
        key = _member_key(member, approval.approver.key_id)  # type: ignore[arg-type]
        if key is None or not crypto.verify(
            key, crypto.DOMAIN_GOVERNANCE, message, approval.signature
        ):
            raise invalid(
                "bad_approval",
                f"approval by {approval.approver.member_id!r} does not verify",
            )
        if approval.approver.member_id in approvers:
            raise invalid("duplicate_items", "a member approved twice")
        approvers.add(approval.approver.member_id)
    quorum = len(active) * 2 // 3 + 1
    if len(approvers) < quorum:
        raise forbidden(
            "no_quorum",
            f"{len(approvers)} of {len(active)} members approved; {quorum} are needed",
        )

    writes = [_put("governance", change_key, state_pb2.MemberKey(key_id=decoded.event_id))]
    body = getattr(change, kind)
    if kind == "member_added":
        require_identifier(body.member_id, "member_id")
        _new_id(state, "member", body.member_id)
        if body.role not in _ROLE_NAMES:
            raise invalid("bad_role", "role must be agency, exchange, regulator or auditor")
        _public_key(body.public_key)
        member = state_pb2.MemberRecord(
            member_id=body.member_id,
            name=body.name or body.member_id,
            role=body.role,
            keys=[
                state_pb2.MemberKey(
                    key_id=crypto.key_id(body.public_key), public_key=body.public_key
                )
            ],
        )
        writes.append(_put("member", body.member_id, member))
        return writes
    member = _member(state, body.member_id, "member_id")
    updated = _copy(member)
    if kind == "member_removed":
        updated.removed = True
    elif kind == "key_rotated":
        _public_key(body.new_public_key)
        new_key_id = crypto.key_id(body.new_public_key)
        if _member_key(member, new_key_id) is not None:
            raise duplicate("key_exists", "the member already holds this key")
        if body.retired_key_id:
            if _member_key(member, body.retired_key_id) is None:
                raise precondition("unknown_key", "the key to retire is not the member's")
            del updated.keys[:]
            updated.keys.extend(k for k in member.keys if k.key_id != body.retired_key_id)
        updated.keys.append(state_pb2.MemberKey(key_id=new_key_id, public_key=body.new_public_key))
    elif kind == "role_changed":
        if body.role not in _ROLE_NAMES:
            raise invalid("bad_role", "role must be agency, exchange, regulator or auditor")
        updated.role = body.role
    writes.append(_put("member", body.member_id, updated))
    return writes


def _public_key(public_key: bytes) -> None:
    if len(public_key) != PUBLIC_KEY_SIZE_BYTES:
        raise invalid("bad_key", f"a public key is {PUBLIC_KEY_SIZE_BYTES} bytes")


_Handler = Callable[[StateReader, Any, Any, DecodedEvent, int], list[Write]]
_HANDLERS: dict[str, _Handler] = {
    "asset_registered": _asset_registered,
    "asset_derived": _asset_derived,
    "asset_shared": _asset_shared,
    "asset_transferred": _asset_transferred,
    "asset_used": _asset_used,
    "certificate_issued": _certificate_issued,
    "certificate_revoked": _certificate_revoked,
    "asset_retired": _asset_retired,
    "grant_issued": _grant_issued,
    "grant_revoked": _grant_revoked,
    "cross_border_approved": _cross_border_approved,
    "offer_listed": _offer_listed,
    "order_placed": _order_placed,
    "order_delivered": _order_delivered,
    "order_settled": _order_settled,
    "dispute_opened": _dispute_opened,
    "dispute_resolved": _dispute_resolved,
    "governance": _governance,
}

"""The rules of provenance (an asset registered, derived, shared, transferred, used, certified,
retired) and of authorization (grants issued and revoked, cross-border approvals). Each is a
pure function of (state, author, payload, event, block time) returning its writes or raising
`Rejected`; protocol/rules.py dispatches to them.

Restrictions follow derivation. A grant's no_cross_border keeps everything derived under it in
the country (AssetRecord.no_cross_border_by). A grant's purposes bind everything derived under
it (ADR 022): the derived asset records the purposes common to every grant it was derived
under and to every parent's own binding (AssetRecord.bound_purposes, with what binds it in
bound_by); a parent its author owns and that carries no binding adds none, and a derivation
whose bindings share no purpose is refused purposes_disjoint (nothing could ever use it). On
a bound asset:
- a use (AssetUsed), by its owner or a grantee, must name a bound purpose, else
  purpose_not_bound (asked before the owner or the grant);
- a grant may grant bound purposes only, else purpose_not_bound;
- a share or transfer is allowed and the binding travels with it (it is on the asset record:
  a new owner is bound as the old one was); a purpose named on the move (for data customs)
  must be bound, else purpose_not_bound;
- an asset derived from it inherits the binding, narrowed by any further grants.
The grant's expiry does not bind the derived asset: the grant covered deriving until then,
and the derivation, once lawful, stays so (ADR 022 says why).
"""

from __future__ import annotations

from provledger.protocol import customs
from provledger.protocol.authorization import bind_purposes
from provledger.protocol.errors import Rejected, forbidden, invalid, precondition
from provledger.protocol.events import DecodedEvent
from provledger.protocol.rule_checks import (
    AGENCY,
    EXCHANGE,
    REGULATOR,
    active_member,
    check_cross_border,
    copy_record,
    covering_grant,
    live_asset,
    new_id,
    owned_asset,
    put,
    require_bound_purpose,
    require_role,
)
from provledger.protocol.state import StateReader, Write
from provledger.v1 import ledger_pb2, state_pb2

# --- provenance --------------------------------------------------------------------------


def _new_asset(
    payload,
    author: state_pb2.MemberRecord,
    decoded: DecodedEvent,
    no_cross_border_by: str = "",
    bound_purposes: list[str] | None = None,
    bound_by: list[str] | None = None,
) -> Write:
    """The record of an asset a registration or derivation creates, owned by its author."""
    asset = state_pb2.AssetRecord(
        asset_id=payload.asset_id,
        owner_id=author.member_id,
        classification=payload.classification,
        content_digest=payload.content_digest,
        name=payload.name,
        parent_ids=list(getattr(payload, "parent_ids", ())),
        activity=getattr(payload, "activity", ""),
        origin_event_id=decoded.event_id,
        no_cross_border_by=no_cross_border_by,
        bound_purposes=bound_purposes or [],
        bound_by=bound_by or [],
    )
    return put("asset", payload.asset_id, asset)


def asset_registered(state, author, payload, decoded, block_time_ms) -> list[Write]:
    require_role(author, (AGENCY, EXCHANGE), "registering an asset")
    new_id(state, "asset", payload.asset_id)
    customs.require_catalogue(state.load, payload.asset_id, payload.classification)
    return [_new_asset(payload, author, decoded)]


def asset_derived(state, author, payload, decoded, block_time_ms) -> list[Write]:
    require_role(author, (AGENCY, EXCHANGE), "deriving an asset")
    new_id(state, "asset", payload.asset_id)
    grants = list(payload.grant_ids)
    highest = ledger_pb2.CLASSIFICATION_GENERAL
    # A parent's "no cross-border" binds what is derived from it: the condition of a grant it
    # was derived under, or one its parent already carries.
    kept_by = ""
    # A parent's purposes bind what is derived from it: the purposes of the grant it was
    # derived under, and the binding it already carries.
    bindings: list[list[str]] = []
    bound_by: list[str] = []
    for parent_id in payload.parent_ids:
        parent = live_asset(state, parent_id)
        highest = max(highest, customs.effective_classification(state.load, parent))
        kept_by = kept_by or (f"asset {parent_id}" if parent.no_cross_border_by else "")
        if parent.bound_purposes:
            bindings.append(list(parent.bound_purposes))
            bound_by.append(f"asset {parent_id}")
        if parent.owner_id == author.member_id:
            continue
        covering = [g for g in grants if grant_covers(state, g, author.member_id, parent_id)]
        if not covering:
            raise forbidden(
                "no_grant",
                f"{author.member_id!r} does not own parent {parent_id!r} and none of the named "
                "grants lets it derive from it",
            )
        grant = first_valid_grant(state, covering, author.member_id, parent_id, block_time_ms)
        if grant.grant.no_cross_border:
            kept_by = kept_by or f"grant {grant.grant.grant_id}"
        bindings.append(list(grant.grant.purposes))
        bound_by.append(f"grant {grant.grant.grant_id}")
    bound_purposes = bind_purposes(bindings)
    if bindings and not bound_purposes:
        raise forbidden(
            "purposes_disjoint",
            f"the purposes binding asset {payload.asset_id!r} ({'; '.join(bound_by)}) have none "
            "in common: nothing could ever use it",
        )
    if payload.classification < highest:
        raise forbidden(
            "classification_too_low",
            "a derived asset is classified at least as high as its most sensitive parent ("
            f"{ledger_pb2.Classification.Name(highest).removeprefix('CLASSIFICATION_').lower()})",
        )
    customs.require_catalogue(state.load, payload.asset_id, payload.classification)
    return [_new_asset(payload, author, decoded, kept_by, bound_purposes, bound_by)]


def first_valid_grant(
    state: StateReader, grant_ids: list[str], grantee_id: str, asset_id: str, block_time_ms: int
) -> state_pb2.GrantRecord:
    """The first of the named grants that lets the grantee derive from the asset now; if none
    does, the reason the last one fails."""
    for position, grant_id in enumerate(grant_ids):
        try:
            return covering_grant(
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


def grant_covers(state: StateReader, grant_id: str, grantee_id: str, asset_id: str) -> bool:
    record = state.load("grant", grant_id)
    return (
        record is not None
        and record.grant.asset_id == asset_id  # type: ignore[attr-defined]
        and record.grant.grantee_id == grantee_id  # type: ignore[attr-defined]
    )


def asset_shared(state, author, payload, decoded, block_time_ms) -> list[Write]:
    asset = live_asset(state, payload.asset_id)
    active_member(state, payload.recipient_id, "recipient_id")
    if payload.recipient_id == author.member_id:
        raise invalid("self_share", "an asset cannot be shared with its own author")
    if payload.purpose:
        require_bound_purpose(asset, payload.purpose)
    grant = None
    if asset.owner_id != author.member_id:
        grant = covering_grant(
            state,
            payload.grant_id,
            author.member_id,
            asset.asset_id,
            ledger_pb2.OPERATION_SHARE,
            None,
            block_time_ms,
        )
    assessment = check_cross_border(
        state, asset, payload.recipient_id, payload, grant, block_time_ms
    )
    updated = copy_record(asset)
    if payload.recipient_id not in updated.holder_ids:
        updated.holder_ids.append(payload.recipient_id)
    return [put("asset", asset.asset_id, updated), *_moved(assessment, decoded, block_time_ms)]


def asset_transferred(state, author, payload, decoded, block_time_ms) -> list[Write]:
    asset = owned_asset(state, payload.asset_id, author, "transfer")
    new_owner = active_member(state, payload.new_owner_id, "new_owner_id")
    if new_owner.member_id == author.member_id:
        raise invalid("self_transfer", "the asset already belongs to its author")
    if payload.purpose:
        require_bound_purpose(asset, payload.purpose)
    assessment = check_cross_border(
        state, asset, payload.new_owner_id, payload, None, block_time_ms
    )
    updated = copy_record(asset)
    updated.owner_id = payload.new_owner_id
    return [put("asset", asset.asset_id, updated), *_moved(assessment, decoded, block_time_ms)]


def _moved(
    assessment: state_pb2.AssessmentRecord | None, decoded: DecodedEvent, block_time_ms: int
) -> list[Write]:
    """The assessment a move abroad went under, with the move recorded on it."""
    if assessment is None:
        return []
    return [customs.record_move(assessment, decoded.event_id, block_time_ms)]


def asset_used(state, author, payload, decoded, block_time_ms) -> list[Write]:
    asset = live_asset(state, payload.asset_id)
    require_bound_purpose(asset, payload.purpose)
    if asset.owner_id != author.member_id:
        covering_grant(
            state,
            payload.grant_id,
            author.member_id,
            asset.asset_id,
            payload.operation,
            payload.purpose,
            block_time_ms,
        )
    return []  # a use changes no state; the event itself is the record


def certificate_issued(state, author, payload, decoded, block_time_ms) -> list[Write]:
    require_role(author, (REGULATOR,), "issuing an asset certificate")
    live_asset(state, payload.asset_id)
    if payload.expires_at_ms and payload.expires_at_ms <= block_time_ms:
        raise precondition(
            "already_expired", "the certificate's expiry is not after the block time"
        )
    new_id(state, "certificate", payload.certificate_id)
    record = state_pb2.CertificateRecord(
        certificate=payload, issuer_id=author.member_id, event_id=decoded.event_id
    )
    return [put("certificate", payload.certificate_id, record)]


def certificate_revoked(state, author, payload, decoded, block_time_ms) -> list[Write]:
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
    updated = copy_record(record)
    updated.revoked = True
    return [put("certificate", payload.certificate_id, updated)]


def asset_retired(state, author, payload, decoded, block_time_ms) -> list[Write]:
    asset = owned_asset(state, payload.asset_id, author, "retire")
    updated = copy_record(asset)
    updated.retired = True
    return [put("asset", asset.asset_id, updated)]


# --- authorization -----------------------------------------------------------------------


def grant_issued(state, author, payload, decoded, block_time_ms) -> list[Write]:
    asset = owned_asset(state, payload.asset_id, author, "grant use of")
    for purpose in payload.purposes:
        require_bound_purpose(asset, purpose)
    active_member(state, payload.grantee_id, "grantee_id")
    if payload.grantee_id == author.member_id:
        raise invalid("self_grant", "an owner needs no grant on its own asset")
    if payload.expires_at_ms <= block_time_ms:
        raise precondition("already_expired", "the grant's expiry is not after the block time")
    new_id(state, "grant", payload.grant_id)
    record = state_pb2.GrantRecord(
        grant=payload, grantor_id=author.member_id, event_id=decoded.event_id
    )
    return [put("grant", payload.grant_id, record)]


def grant_revoked(state, author, payload, decoded, block_time_ms) -> list[Write]:
    record = state.load("grant", payload.grant_id)
    if record is None:
        raise precondition("unknown_grant", f"grant {payload.grant_id!r} does not exist")
    if author.member_id != record.grantor_id and author.role != REGULATOR:
        raise forbidden("not_grantor", "only the grantor or a regulator may revoke a grant")
    if record.revoked:
        raise precondition("already_revoked", f"grant {payload.grant_id!r} is already revoked")
    updated = copy_record(record)
    updated.revoked = True
    updated.revoked_at_ms = block_time_ms
    return [put("grant", payload.grant_id, updated)]


def cross_border_approved(state, author, payload, decoded, block_time_ms) -> list[Write]:
    require_role(author, (REGULATOR,), "approving a cross-border move")
    live_asset(state, payload.asset_id)
    active_member(state, payload.recipient_id, "recipient_id")
    if payload.expires_at_ms <= block_time_ms:
        raise precondition("already_expired", "the approval's expiry is not after the block time")
    new_id(state, "approval", payload.approval_id)
    record = state_pb2.ApprovalRecord(
        approval=payload, regulator_id=author.member_id, event_id=decoded.event_id
    )
    return [put("approval", payload.approval_id, record)]

"""JSON views of ledger records for the REST API: protobuf messages as JSON (bytes as
lower-case hex, enums as lower-case words), and the response models filled from records."""

from __future__ import annotations

import re
from typing import Any

from google.protobuf.message import DecodeError, Message

from provledger.node.cases import CaseAnswer
from provledger.node.cases import CasePage as CasePageAnswer
from provledger.node.queries import Block, LedgerQueries, ProposalAnswer
from provledger.node.rest.models import (
    AssetView,
    AuthorView,
    CaseDetail,
    CasePage,
    CatalogueOfferView,
    CertificateView,
    CheckpointView,
    EventView,
    GrantView,
    HeaderView,
    InclusionProofView,
    MemberKeyView,
    MemberView,
    OrderView,
    ProposalApprovalView,
    ProposalView,
    SignatureView,
    ThresholdView,
    TimelineEntryView,
)
from provledger.protocol import merkle
from provledger.protocol.access import decode_event
from provledger.protocol.events import event_id as compute_event_id
from provledger.protocol.events import log_leaf
from provledger.protocol.genesis import role_name
from provledger.v1 import api_pb2, ledger_pb2, state_pb2


def _hex(data: bytes) -> str:
    return data.hex()


def _enum_prefix(enum_name: str) -> str:
    """`DisputeOutcome` -> `DISPUTE_OUTCOME_`: the prefix of its value names."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", enum_name).upper() + "_"


def enum_text(enum_type, number: int) -> str:
    """An enum value as a lower-case word without its type prefix ("core", "read")."""
    value = enum_type.values_by_number.get(number)
    if value is None:
        return str(number)
    return value.name.removeprefix(_enum_prefix(enum_type.name)).lower()


def _field_value(field, value: Any) -> Any:
    if field.type == field.TYPE_BYTES:
        return value.hex()
    if field.type == field.TYPE_ENUM:
        return enum_text(field.enum_type, value)
    if field.type == field.TYPE_MESSAGE:
        return message_json(value)
    return value


def message_json(message: Message) -> dict[str, Any]:
    """Every field of `message` (defaults included) as JSON: bytes as hex, enums as words,
    field names as in the .proto files."""
    document: dict[str, Any] = {}
    for field in message.DESCRIPTOR.fields:
        value = getattr(message, field.name)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            document[field.name] = {
                str(key): _field_value(value_field, item) for key, item in sorted(value.items())
            }
        elif field.is_repeated:
            document[field.name] = [_field_value(field, item) for item in value]
        else:
            document[field.name] = _field_value(field, value)
    return document


def certificate_view(certificate: ledger_pb2.CommitCertificate) -> CertificateView:
    return CertificateView(
        height=certificate.height,
        round=certificate.round,
        block_id=certificate.block_id.hex(),
        signatures=[
            SignatureView(validator_id=s.validator_id, signature=s.signature.hex())
            for s in certificate.signatures
        ],
    )


def asset_view(asset: state_pb2.AssetRecord, redacted: bool = False) -> AssetView:
    return AssetView(
        redacted=redacted,
        asset_id=asset.asset_id,
        owner_id=asset.owner_id,
        classification=enum_text(ledger_pb2.Classification.DESCRIPTOR, asset.classification),
        content_digest=asset.content_digest.hex(),
        name=asset.name,
        parent_ids=list(asset.parent_ids),
        activity=asset.activity,
        origin_event_id=asset.origin_event_id.hex(),
        retired=asset.retired,
        holder_ids=list(asset.holder_ids),
        no_cross_border_by=asset.no_cross_border_by,
        bound_purposes=list(asset.bound_purposes),
        bound_by=list(asset.bound_by),
    )


def grant_view(record: state_pb2.GrantRecord) -> GrantView:
    grant = record.grant
    return GrantView(
        grant_id=grant.grant_id,
        asset_id=grant.asset_id,
        grantor_id=record.grantor_id,
        grantee_id=grant.grantee_id,
        purposes=list(grant.purposes),
        operations=[enum_text(ledger_pb2.Operation.DESCRIPTOR, o) for o in grant.operations],
        expires_at_ms=grant.expires_at_ms,
        no_cross_border=grant.no_cross_border,
        revoked=record.revoked,
        revoked_at_ms=record.revoked_at_ms if record.revoked else None,
        event_id=record.event_id.hex(),
    )


def header_view(block: Block) -> HeaderView:
    header = block.header
    return HeaderView(
        block_id=block.certificate.block_id.hex(),
        chain_id=header.chain_id,
        height=header.height,
        previous_block_id=header.previous_block_id.hex(),
        time_ms=header.time_ms,
        proposer_id=header.proposer_id,
        events_root=header.events_root.hex(),
        event_count=header.event_count,
        log_size=header.log_size,
        log_root=header.log_root.hex(),
        state_root=header.state_root.hex(),
        validators_hash=header.validators_hash.hex(),
        last_commit_hash=header.last_commit_hash.hex(),
        evidence_hash=header.evidence_hash.hex(),
    )


def checkpoint_view(block: Block) -> CheckpointView:
    return CheckpointView(
        height=block.height,
        header=header_view(block),
        header_raw=block.header_bytes.hex(),
        certificate=certificate_view(block.certificate),
    )


def event_view(queries: LedgerQueries, location: state_pb2.EventLocation) -> EventView:
    signed = location.event
    event = decode_event(signed)
    kind = event.WhichOneof("payload") or ""
    payload = message_json(getattr(event, kind)) if kind else {}
    if kind in ("governance", "governance_proposed"):
        change = ledger_pb2.GovernanceChange()
        try:
            change.ParseFromString(getattr(event, kind).change)
            payload["change_decoded"] = message_json(change)
        except DecodeError:
            pass
    return EventView(
        event_id=compute_event_id(signed.body).hex(),
        kind=kind,
        chain_id=event.chain_id,
        author=AuthorView(member_id=event.author.member_id, key_id=event.author.key_id.hex()),
        nonce=event.nonce,
        timestamp_ms=event.timestamp_ms,
        payload=payload,
        body=signed.body.hex(),
        signature=signed.signature.hex(),
        height=location.height,
        position=location.position,
        log_index=location.log_index,
        block_time_ms=queries.block_time_ms(location.height),
    )


def proof_view(
    queries: LedgerQueries, location: state_pb2.EventLocation, tree_size: int
) -> InclusionProofView:
    signed = location.event
    leaf_hash = merkle.hash_leaf(log_leaf(compute_event_id(signed.body), signed.signature))
    return InclusionProofView(
        leaf_index=location.log_index,
        tree_size=tree_size,
        leaf_hash=leaf_hash.hex(),
        hashes=[h.hex() for h in queries.store.inclusion_proof(location.log_index, tree_size)],
    )


def order_view(queries: LedgerQueries, order: state_pb2.OrderRecord) -> OrderView:
    offer = queries.store.load("offer", order.offer_id)
    return OrderView(
        order_id=order.order_id,
        offer_id=order.offer_id,
        asset_id=offer.offer.asset_id if offer is not None else "",
        buyer_id=order.buyer_id,
        seller_id=order.seller_id,
        exchange_id=order.exchange_id,
        status=enum_text(state_pb2.OrderStatus.DESCRIPTOR, order.status),
        status_before_dispute=(
            enum_text(state_pb2.OrderStatus.DESCRIPTOR, order.status_before_dispute)
            if order.status_before_dispute
            else None
        ),
        delivery_digest=order.delivery_digest.hex() if order.delivery_digest else None,
        dispute_id=order.dispute_id or None,
        event_ids=[identifier.hex() for identifier in order.event_ids],
    )


def member_view(member: state_pb2.MemberRecord) -> MemberView:
    return MemberView(
        member_id=member.member_id,
        name=member.name,
        role=role_name(member.role),
        removed=member.removed,
        keys=[
            MemberKeyView(
                key_id=key.key_id.hex(),
                public_key=key.public_key.hex(),
                revoked=key.revoked,
                revoked_after_height=key.revoked_after_height if key.revoked else None,
                revocation_event_id=key.revocation_event_id.hex() if key.revoked else None,
            )
            for key in member.keys
        ],
    )


def proposal_view(answer: ProposalAnswer) -> ProposalView:
    record = answer.record
    change = ledger_pb2.GovernanceChange()
    change.ParseFromString(record.change)  # canonical: the rules checked it
    return ProposalView(
        proposal_id=record.proposal_id.hex(),
        kind=answer.kind,
        status=answer.status,  # type: ignore[arg-type]
        change=message_json(change),
        change_raw=record.change.hex(),
        subject=record.subject,
        proposer_id=record.proposer_id,
        proposed_height=record.proposed_height,
        proposed_at_ms=record.proposed_at_ms,
        expires_at_ms=record.expires_at_ms,
        approvals=[
            ProposalApprovalView(
                member_id=a.member_id,
                key_id=a.key_id.hex(),
                event_id=a.event_id.hex(),
                height=a.height,
            )
            for a in record.approvals
        ],
        approvals_counted=answer.approvals_counted,
        approvals_needed=answer.approvals_needed,
        active_members=answer.active_members,
        threshold=ThresholdView(
            numerator=answer.threshold.numerator, denominator=answer.threshold.denominator
        ),
        applied_height=record.applied_height if record.applied else None,
        applied_event_id=record.applied_event_id.hex() if record.applied else None,
    )


def case_detail(answer: CaseAnswer) -> CaseDetail:
    """A case with its complaints and timeline (node/cases.py) as REST shows it."""
    return CaseDetail(
        case=case_json(answer.record),
        complaints=[message_json(complaint) for complaint in answer.complaints],
        timeline=[
            TimelineEntryView(
                event_id=entry.event_id.hex(),
                height=entry.height,
                log_index=entry.log_index,
                time_ms=entry.time_ms,
                kind=entry.kind,
                author_id=entry.author_id,
                summary=entry.summary,
            )
            for entry in answer.timeline
        ],
        appeal_deadline_ms=answer.appeal_deadline_ms,
        final=answer.final,
    )


def case_page(page: CasePageAnswer, next_cursor: str | None) -> CasePage:
    return CasePage(items=[case_json(case) for case in page.cases], next_cursor=next_cursor)


def remedies_json(remedies) -> list[dict[str, Any]]:
    """Remedies as JSON, each as the one thing it does: {"refund": {...}}."""
    shown = []
    for remedy in remedies:
        which = remedy.WhichOneof("remedy")
        shown.append({which: message_json(getattr(remedy, which))} if which else {})
    return shown


def case_json(case: state_pb2.CaseRecord) -> dict[str, Any]:
    """A case record as JSON (message_json), with its remedies as `remedies_json` shows them."""
    document = message_json(case)
    document["ruling"]["remedies"] = remedies_json(case.ruling.remedies)
    document["appeal_decision"]["remedies"] = remedies_json(case.appeal_decision.remedies)
    for vote, shown in zip(case.votes, document["votes"], strict=True):
        shown["decision"]["remedies"] = remedies_json(vote.decision.remedies)
    return document


def catalogue_offer_view(view: api_pb2.OfferView) -> CatalogueOfferView:
    record = view.record
    offer = record.offer
    delisted = view.status == state_pb2.OFFER_STATUS_DELISTED
    return CatalogueOfferView(
        offer_id=offer.offer_id,
        asset_id=offer.asset_id,
        asset_name=view.asset_name,
        classification=enum_text(ledger_pb2.Classification.DESCRIPTOR, view.classification),
        seller_id=offer.seller_id,
        broker_id=record.broker_id or None,
        mandate_id=offer.mandate_id or None,
        exchange_id=record.exchange_id,
        title=offer.title,
        price=offer.price,
        currency=offer.currency,
        terms=offer.terms,
        status="delisted" if delisted else "listed",
        event_id=record.event_id.hex(),
        delisted_by=record.delisted_by if delisted else None,
        delisting_reason=record.delisting_reason if delisted else None,
        delisted_event_id=record.delisted_event_id.hex() if delisted else None,
    )

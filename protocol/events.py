"""Signed events: decoding, the checks that need no ledger state, and signing.

An event travels as `SignedEvent{body, signature}`. The body is the serialized `Event`
exactly as its author signed it; the node never re-serialises it (ADR 001). The event id is
SHA-256(body); the log leaf is id || signature.

The body must also be canonical: the one encoding of what it says, so that no signed byte is
hidden from the rules. `decode` parses it and refuses fields this ledger does not define
(`unknown_fields`) and any other encoding than the deterministic serialisation of the parsed
Event (`non_canonical`: fields in number order, map entries sorted by key, no default values,
minimal varints, each field once). It compares bytes; it never substitutes the re-serialised
ones. Nested serialized messages (a governance change) obey the same rule: `parse_canonical`.

`decode` does everything that can be judged from the bytes alone (size, syntax, canonical
form, chain, author, nonce and timestamp ranges, field formats, closed enums). Whether the
author's key is real and the signature holds needs the member registry: that is
`rules.authenticate`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message

from provledger.protocol import crypto
from provledger.protocol.errors import invalid
from provledger.protocol.limits import (
    APPROVALS_PER_GOVERNANCE_MAX,
    ASSETS_PER_ASSESSMENT_MAX,
    ASSETS_PER_MANDATE_MAX,
    COMPLAINTS_PER_CASE_MAX,
    DIGEST_SIZE_BYTES,
    EVENT_BODY_SIZE_BYTES_MAX,
    EVENT_TIMESTAMP_MS_MAX,
    EVIDENCE_DIGESTS_MAX,
    GRANTS_PER_DERIVATION_MAX,
    IDENTIFIER_LENGTH_CHARS_MAX,
    KEY_ID_SIZE_BYTES,
    METADATA_ENTRIES_MAX,
    NONCE_MAX,
    PARENTS_PER_DERIVATION_MAX,
    PURPOSES_PER_ASSESSMENT_MAX,
    PURPOSES_PER_GRANT_MAX,
    REMEDIES_PER_RULING_MAX,
    REPORT_INTERVAL_MS_MIN,
    SIGNATURE_SIZE_BYTES,
    TEXT_LENGTH_CHARS_MAX,
)
from provledger.protocol.privacy import PersonalDataGuard
from provledger.v1 import ledger_pb2

_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]*")
_MessageT = TypeVar("_MessageT", bound=Message)


@dataclass(frozen=True)
class DecodedEvent:
    """A signed event whose bytes passed every state-free check."""

    signed: ledger_pb2.SignedEvent
    event: ledger_pb2.Event
    event_id: bytes
    kind: str  # the payload's field name, e.g. "asset_registered"

    @property
    def author_id(self) -> str:
        return self.event.author.member_id

    @property
    def leaf(self) -> bytes:
        return log_leaf(self.event_id, self.signed.signature)


def event_id(body: bytes) -> bytes:
    return hashlib.sha256(body).digest()


def log_leaf(event_identifier: bytes, signature: bytes) -> bytes:
    """The ledger log's leaf for an event: its id followed by its signature (96 bytes)."""
    return event_identifier + signature


def sign_event(event: ledger_pb2.Event, key: crypto.SigningKey) -> ledger_pb2.SignedEvent:
    body = event.SerializeToString(deterministic=True)
    return ledger_pb2.SignedEvent(body=body, signature=key.sign(crypto.DOMAIN_EVENT, body))


def decode(
    signed: ledger_pb2.SignedEvent, chain_id: str, guard: PersonalDataGuard | None = None
) -> DecodedEvent:
    """Check everything about a signed event that needs no ledger state; with a `guard`
    (the genesis's), also that its free text holds no personal data (protocol/privacy.py)."""
    if len(signed.body) > EVENT_BODY_SIZE_BYTES_MAX:
        raise invalid(
            "oversized",
            f"event body is {len(signed.body)} bytes; the limit is {EVENT_BODY_SIZE_BYTES_MAX}",
        )
    if len(signed.signature) != SIGNATURE_SIZE_BYTES:
        raise invalid(
            "bad_signature",
            f"signature is {len(signed.signature)} bytes, expected {SIGNATURE_SIZE_BYTES}",
        )
    event = parse_canonical(ledger_pb2.Event, signed.body, "event body")
    if event.chain_id != chain_id:
        raise invalid("wrong_chain", f"event is for chain {event.chain_id!r}, not {chain_id!r}")
    if not event.author.member_id:
        raise invalid("malformed", "event has no author")
    if len(event.author.key_id) != KEY_ID_SIZE_BYTES:
        raise invalid("malformed", f"author key id must be {KEY_ID_SIZE_BYTES} bytes")
    if not 1 <= event.nonce <= NONCE_MAX:
        raise invalid("bad_nonce", f"nonce must be 1..{NONCE_MAX}, got {event.nonce}")
    if not 0 < event.timestamp_ms <= EVENT_TIMESTAMP_MS_MAX:
        raise invalid(
            "bad_timestamp",
            f"timestamp_ms must be 1..{EVENT_TIMESTAMP_MS_MAX} (milliseconds since 1970, "
            f"before the year 10000), got {event.timestamp_ms}",
        )
    kind = event.WhichOneof("payload")
    if kind is None:
        raise invalid("missing_payload", "event carries no payload")
    _check_payload_fields(kind, getattr(event, kind))
    check_enums(event)
    if guard is not None:
        guard.check(kind, getattr(event, kind))
    return DecodedEvent(signed=signed, event=event, event_id=event_id(signed.body), kind=kind)


# --- canonical bytes and closed enums -------------------------------------------------------


def parse_canonical(message_type: type[_MessageT], data: bytes, what: str) -> _MessageT:
    """`data` parsed as a `message_type`, if it is the canonical encoding of one.

    Refused: bytes that do not parse (`malformed`); fields, at any depth, that the message
    does not define, which protobuf would keep and carry along unseen by every rule
    (`unknown_fields`); and any other encoding than the deterministic serialisation of what
    was parsed (`non_canonical`), so that the signed bytes say nothing the parsed message does
    not. A client that serialises deterministically (fields in number order, map entries
    sorted by key) produces canonical bytes."""
    name = message_type.DESCRIPTOR.name
    message = message_type()
    try:
        message.ParseFromString(data)
    except DecodeError as error:
        raise invalid("malformed", f"{what} is not a valid {name} message: {error}") from None
    known = message_type()
    known.CopyFrom(message)
    known.DiscardUnknownFields()  # recursively; an unknown field is at least one byte
    if known.ByteSize() != message.ByteSize():
        raise invalid(
            "unknown_fields",
            f"{what} holds fields that {name} does not define "
            f"({message.ByteSize() - known.ByteSize()} bytes)",
        )
    if message.SerializeToString(deterministic=True) != data:
        raise invalid(
            "non_canonical",
            f"{what} is not the canonical encoding of its {name}: serialise it "
            "deterministically (fields in number order, each once, map entries sorted by key, "
            "no default values, shortest varints)",
        )
    return message


def check_enums(message: Message, path: str = "") -> None:
    """Every enum value in `message`, at any depth, is one its enum defines; and no entry of a
    repeated field or map is an enum's zero (UNSPECIFIED) value, which says nothing.

    Protobuf keeps an undefined number in an open proto3 enum field as it is; the ledger's
    enums are closed, so such a value is refused (`bad_enum`) wherever it appears, in fields
    that have their own check (which runs first and names the field's meaning) and in those
    that do not. Whether a singular field may be UNSPECIFIED is that field's own rule."""
    for field, value in message.ListFields():
        name = path + field.name
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            _check_enum_values(value_field, list(value.values()), name, entries=True)
        elif field.is_repeated:
            _check_enum_values(field, list(value), name, entries=True)
        else:
            _check_enum_values(field, [value], name, entries=False)


def _check_enum_values(field: FieldDescriptor, values: list, name: str, entries: bool) -> None:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        for item in values:
            check_enums(item, name + ".")
    elif field.type == FieldDescriptor.TYPE_ENUM:
        defined = field.enum_type.values_by_number
        for number in values:
            if number not in defined or (entries and number == 0):
                raise invalid(
                    "bad_enum",
                    f"{name} holds {number}, not a defined {field.enum_type.name} value",
                )


# --- field formats -----------------------------------------------------------------------


def require_identifier(value: str, field: str) -> None:
    if not value:
        raise invalid("missing_field", f"{field} is required")
    if len(value) > IDENTIFIER_LENGTH_CHARS_MAX or not _IDENTIFIER.fullmatch(value):
        raise invalid(
            "bad_identifier",
            f"{field} {value[:40]!r} must be 1-{IDENTIFIER_LENGTH_CHARS_MAX} characters of "
            "letters, digits and . _ : / @ + -, starting with a letter or digit",
        )


def _optional_identifier(value: str, field: str) -> None:
    if value:
        require_identifier(value, field)


def _text(value: str, field: str) -> None:
    if len(value) > TEXT_LENGTH_CHARS_MAX:
        raise invalid("text_too_long", f"{field} exceeds {TEXT_LENGTH_CHARS_MAX} characters")


def _digest(value: bytes, field: str) -> None:
    if len(value) != DIGEST_SIZE_BYTES:
        raise invalid("bad_digest", f"{field} must be a {DIGEST_SIZE_BYTES}-byte SHA-256 digest")


def _classification(value: int) -> None:
    if value not in (
        ledger_pb2.CLASSIFICATION_GENERAL,
        ledger_pb2.CLASSIFICATION_IMPORTANT,
        ledger_pb2.CLASSIFICATION_CORE,
    ):
        raise invalid("bad_classification", "classification must be general, important or core")


def _metadata(entries: Iterable[tuple[str, str]]) -> None:
    items = list(entries)
    if len(items) > METADATA_ENTRIES_MAX:
        raise invalid("too_many_metadata", f"at most {METADATA_ENTRIES_MAX} metadata entries")
    for key, value in items:
        _text(key, "metadata key")
        _text(value, f"metadata[{key[:40]}]")


def _unique_identifiers(values: Iterable[str], field: str, limit: int) -> None:
    items = list(values)
    if len(items) > limit:
        raise invalid("too_many_items", f"{field} holds {len(items)} entries; the limit is {limit}")
    for value in items:
        require_identifier(value, field)
    if len(set(items)) != len(items):
        raise invalid("duplicate_items", f"{field} lists an entry twice")


def _operation(value: int, field: str) -> None:
    if value not in ledger_pb2.Operation.values() or value == ledger_pb2.OPERATION_UNSPECIFIED:
        raise invalid("bad_operation", f"{field} must be read, compute, derive or share")


def _check_payload_fields(kind: str, payload) -> None:
    if kind == "asset_registered":
        require_identifier(payload.asset_id, "asset_id")
        _digest(payload.content_digest, "content_digest")
        _classification(payload.classification)
        _text(payload.name, "name")
        _text(payload.schema_uri, "schema_uri")
        _metadata(payload.metadata.items())
    elif kind == "asset_derived":
        require_identifier(payload.asset_id, "asset_id")
        if not payload.parent_ids:
            raise invalid("missing_field", "a derivation needs at least one parent")
        _unique_identifiers(payload.parent_ids, "parent_ids", PARENTS_PER_DERIVATION_MAX)
        if payload.asset_id in payload.parent_ids:
            raise invalid("bad_lineage", "an asset cannot be its own parent")
        _unique_identifiers(payload.grant_ids, "grant_ids", GRANTS_PER_DERIVATION_MAX)
        _text(payload.activity, "activity")
        if not payload.activity:
            raise invalid("missing_field", "activity is required (cleaning, fusion, ...)")
        _digest(payload.content_digest, "content_digest")
        _classification(payload.classification)
        _text(payload.name, "name")
        _metadata(payload.metadata.items())
    elif kind in ("asset_shared", "asset_transferred"):
        require_identifier(payload.asset_id, "asset_id")
        recipient_field = "recipient_id" if kind == "asset_shared" else "new_owner_id"
        require_identifier(getattr(payload, recipient_field), recipient_field)
        if kind == "asset_shared":
            _optional_identifier(payload.grant_id, "grant_id")
        _optional_identifier(payload.destination_region, "destination_region")
        _optional_identifier(payload.approval_id, "approval_id")
        _optional_identifier(payload.assessment_id, "assessment_id")
        _text(payload.purpose, "purpose")
    elif kind == "asset_used":
        require_identifier(payload.asset_id, "asset_id")
        _optional_identifier(payload.grant_id, "grant_id")
        if not payload.purpose:
            raise invalid("missing_field", "purpose is required")
        _text(payload.purpose, "purpose")
        _operation(payload.operation, "operation")
    elif kind == "certificate_issued":
        require_identifier(payload.certificate_id, "certificate_id")
        require_identifier(payload.asset_id, "asset_id")
        _text(payload.scope, "scope")
    elif kind in ("certificate_revoked", "grant_revoked"):
        field = "certificate_id" if kind == "certificate_revoked" else "grant_id"
        require_identifier(getattr(payload, field), field)
        _text(payload.reason, "reason")
    elif kind == "asset_retired":
        require_identifier(payload.asset_id, "asset_id")
        _text(payload.reason, "reason")
    elif kind == "grant_issued":
        require_identifier(payload.grant_id, "grant_id")
        require_identifier(payload.asset_id, "asset_id")
        require_identifier(payload.grantee_id, "grantee_id")
        if not payload.purposes:
            raise invalid("missing_field", "a grant names at least one purpose")
        if len(payload.purposes) > PURPOSES_PER_GRANT_MAX:
            raise invalid("too_many_items", f"at most {PURPOSES_PER_GRANT_MAX} purposes")
        for purpose in payload.purposes:
            if not purpose:
                raise invalid("missing_field", "a purpose may not be empty")
            _text(purpose, "purpose")
        if not payload.operations:
            raise invalid("missing_field", "a grant names at least one operation")
        for operation in payload.operations:
            _operation(operation, "operations")
        if len(set(payload.operations)) != len(payload.operations):
            raise invalid("duplicate_items", "operations lists an operation twice")
        if payload.expires_at_ms <= 0:
            raise invalid("missing_field", "a grant needs an expiry (expires_at_ms)")
    elif kind == "cross_border_approved":
        require_identifier(payload.approval_id, "approval_id")
        require_identifier(payload.asset_id, "asset_id")
        require_identifier(payload.recipient_id, "recipient_id")
        require_identifier(payload.destination_region, "destination_region")
        if payload.expires_at_ms <= 0:
            raise invalid("missing_field", "an approval needs an expiry (expires_at_ms)")
    elif kind == "offer_listed":
        require_identifier(payload.offer_id, "offer_id")
        require_identifier(payload.asset_id, "asset_id")
        require_identifier(payload.seller_id, "seller_id")
        require_identifier(payload.currency, "currency")
        _text(payload.terms, "terms")
        _text(payload.title, "title")
        _optional_identifier(payload.mandate_id, "mandate_id")
        _optional_identifier(payload.exchange_id, "exchange_id")
        if bool(payload.mandate_id) != bool(payload.exchange_id):
            raise invalid(
                "missing_field",
                "a broker's listing names both its mandate_id and the settling exchange_id",
            )
    elif kind == "order_placed":
        require_identifier(payload.order_id, "order_id")
        require_identifier(payload.offer_id, "offer_id")
    elif kind == "order_delivered":
        require_identifier(payload.order_id, "order_id")
        _digest(payload.delivery_digest, "delivery_digest")
    elif kind == "order_settled":
        require_identifier(payload.order_id, "order_id")
        _text(payload.settlement_reference, "settlement_reference")
    elif kind == "dispute_opened":
        require_identifier(payload.dispute_id, "dispute_id")
        require_identifier(payload.order_id, "order_id")
        if not payload.reason:
            raise invalid("missing_field", "a dispute states its reason")
        _text(payload.reason, "reason")
    elif kind == "dispute_resolved":
        require_identifier(payload.dispute_id, "dispute_id")
        if payload.outcome == ledger_pb2.DISPUTE_OUTCOME_UNSPECIFIED:
            raise invalid("missing_field", "a resolution names its outcome")
        _text(payload.resolution, "resolution")
    elif kind == "governance":
        if not payload.approvals:
            raise invalid("missing_field", "a governance action needs approvals")
        if len(payload.approvals) > APPROVALS_PER_GOVERNANCE_MAX:
            raise invalid("too_many_items", f"at most {APPROVALS_PER_GOVERNANCE_MAX} approvals")
    elif kind == "governance_proposed":
        if not payload.change:
            raise invalid("missing_field", "a proposal carries the change it proposes")
    elif kind == "governance_approved":
        if len(payload.proposal_id) != DIGEST_SIZE_BYTES:
            raise invalid(
                "bad_proposal_id", f"a proposal id is {DIGEST_SIZE_BYTES} bytes (SHA-256)"
            )
    elif kind in _SUPERVISION_CHECKS:
        _SUPERVISION_CHECKS[kind](payload)
    else:  # a payload this node was not built for
        raise invalid("unknown_payload", f"event payload {kind!r} is not supported")


# --- market supervision: the market, cases, data customs (ADR 017) ------------------------


def _required_text(value: str, field: str) -> None:
    if not value:
        raise invalid("missing_field", f"{field} is required")
    _text(value, field)


def _digests(values: Iterable[bytes], field: str, limit: int) -> None:
    items = list(values)
    if len(items) > limit:
        raise invalid("too_many_items", f"{field} holds {len(items)} entries; the limit is {limit}")
    for value in items:
        _digest(value, field)


def _expiry(value: int, what: str) -> None:
    if value <= 0:
        raise invalid("missing_field", f"{what} needs an expiry (expires_at_ms)")


def _broker_qualified(payload) -> None:
    require_identifier(payload.qualification_id, "qualification_id")
    require_identifier(payload.broker_id, "broker_id")
    _text(payload.scope, "scope")
    _expiry(payload.expires_at_ms, "a qualification")


def _mandate_granted(payload) -> None:
    require_identifier(payload.mandate_id, "mandate_id")
    require_identifier(payload.broker_id, "broker_id")
    _unique_identifiers(payload.asset_ids, "asset_ids", ASSETS_PER_MANDATE_MAX)
    _expiry(payload.expires_at_ms, "a mandate")


def _withdrawn(field: str):
    def check(payload) -> None:
        require_identifier(getattr(payload, field), field)
        _text(payload.reason, "reason")

    return check


def _trading_suspended(payload) -> None:
    require_identifier(payload.suspension_id, "suspension_id")
    require_identifier(payload.member_id, "member_id")
    _required_text(payload.reason, "reason")
    if payload.until_ms <= 0:
        raise invalid("missing_field", "a suspension needs its end (until_ms)")


def _complaint_filed(payload) -> None:
    require_identifier(payload.complaint_id, "complaint_id")
    if payload.subject_kind == ledger_pb2.COMPLAINT_SUBJECT_UNSPECIFIED:
        raise invalid("missing_field", "a complaint names what it is about (subject_kind)")
    require_identifier(payload.subject_id, "subject_id")
    require_identifier(payload.respondent_id, "respondent_id")
    _digest(payload.statement_digest, "statement_digest")
    _digests(payload.evidence_digests, "evidence_digests", EVIDENCE_DIGESTS_MAX)
    _optional_identifier(payload.category, "category")


def _case_opened(payload) -> None:
    require_identifier(payload.case_id, "case_id")
    if not payload.complaint_ids:
        raise invalid("missing_field", "a case takes up at least one complaint")
    _unique_identifiers(payload.complaint_ids, "complaint_ids", COMPLAINTS_PER_CASE_MAX)
    _text(payload.summary, "summary")


def _case_step_recorded(payload) -> None:
    require_identifier(payload.case_id, "case_id")
    require_identifier(payload.step, "step")
    _text(payload.note, "note")
    _digests(payload.evidence_digests, "evidence_digests", EVIDENCE_DIGESTS_MAX)


def _remedies(remedies, field: str) -> None:
    items = list(remedies)
    if len(items) > REMEDIES_PER_RULING_MAX:
        raise invalid("too_many_items", f"at most {REMEDIES_PER_RULING_MAX} {field}")
    for remedy in items:
        which = remedy.WhichOneof("remedy")
        if which is None:
            raise invalid("missing_field", f"a remedy in {field} says what it does")
        body = getattr(remedy, which)
        if which == "refund":
            require_identifier(body.order_id, "refund.order_id")
            require_identifier(body.currency, "refund.currency")
            _text(body.reference, "refund.reference")
            if body.amount == 0:
                raise invalid("missing_field", "a refund names its amount")
        elif which == "delist":
            require_identifier(body.offer_id, "delist.offer_id")
        elif which == "revoke_grant":
            require_identifier(body.grant_id, "revoke_grant.grant_id")
        elif which == "suspend":
            require_identifier(body.member_id, "suspend.member_id")
            if body.until_ms <= 0:
                raise invalid("missing_field", "a suspension needs its end (suspend.until_ms)")
        else:
            require_identifier(body.member_id, "warning.member_id")
            _required_text(body.text, "warning.text")


def _case_ruled(payload) -> None:
    require_identifier(payload.case_id, "case_id")
    if payload.outcome == ledger_pb2.RULING_OUTCOME_UNSPECIFIED:
        raise invalid("missing_field", "a ruling names its outcome")
    _required_text(payload.findings, "findings")
    _digest(payload.decision_digest, "decision_digest")
    _remedies(payload.remedies, "remedies")


def _ruling_appealed(payload) -> None:
    require_identifier(payload.case_id, "case_id")
    _digest(payload.grounds_digest, "grounds_digest")
    _text(payload.grounds, "grounds")


def _appeal_decided(payload) -> None:
    require_identifier(payload.case_id, "case_id")
    if payload.decision == ledger_pb2.APPEAL_DECISION_UNSPECIFIED:
        raise invalid("missing_field", "an appeal decision names the decision")
    _required_text(payload.reasons, "reasons")
    _remedies(payload.remedies, "remedies")
    if payload.remedies and payload.decision != ledger_pb2.APPEAL_DECISION_VARIED:
        raise invalid("bad_remedies", "only a varied ruling adds remedies")


def _security_assessed(payload) -> None:
    require_identifier(payload.assessment_id, "assessment_id")
    if not payload.asset_ids:
        raise invalid("missing_field", "an assessment's scope names at least one asset")
    _unique_identifiers(payload.asset_ids, "asset_ids", ASSETS_PER_ASSESSMENT_MAX)
    require_identifier(payload.recipient_id, "recipient_id")
    require_identifier(payload.destination_region, "destination_region")
    if not payload.purposes:
        raise invalid("missing_field", "an assessment names at least one purpose")
    if len(payload.purposes) > PURPOSES_PER_ASSESSMENT_MAX:
        raise invalid("too_many_items", f"at most {PURPOSES_PER_ASSESSMENT_MAX} purposes")
    for purpose in payload.purposes:
        _required_text(purpose, "purpose")
    _expiry(payload.expires_at_ms, "an assessment")
    if payload.report_interval_ms < 0 or 0 < payload.report_interval_ms < REPORT_INTERVAL_MS_MIN:
        raise invalid(
            "bad_interval",
            f"report_interval_ms is 0 (no reports) or at least {REPORT_INTERVAL_MS_MIN}",
        )
    _digest(payload.report_digest, "report_digest")


def _transfer_reported(payload) -> None:
    require_identifier(payload.report_id, "report_id")
    require_identifier(payload.assessment_id, "assessment_id")
    if payload.period == 0:
        raise invalid("missing_field", "a report names its period (1 for the first)")
    _digest(payload.report_digest, "report_digest")
    _text(payload.summary, "summary")


def _data_catalogued(payload) -> None:
    require_identifier(payload.entry_id, "entry_id")
    if bool(payload.asset_id) == bool(payload.id_prefix):
        raise invalid("missing_field", "a catalogue entry names one of asset_id and id_prefix")
    _optional_identifier(payload.asset_id, "asset_id")
    _optional_identifier(payload.id_prefix, "id_prefix")
    if payload.id_prefix and not payload.id_prefix.endswith("/"):
        raise invalid("bad_identifier", "id_prefix ends with '/'")
    if payload.minimum not in (ledger_pb2.CLASSIFICATION_IMPORTANT, ledger_pb2.CLASSIFICATION_CORE):
        raise invalid("bad_classification", "a catalogue entry's minimum is important or core")
    _required_text(payload.reason, "reason")


def _asset_reclassified(payload) -> None:
    require_identifier(payload.asset_id, "asset_id")
    _classification(payload.classification)
    _required_text(payload.reason, "reason")


_SUPERVISION_CHECKS = {
    "broker_qualified": _broker_qualified,
    "mandate_granted": _mandate_granted,
    "mandate_revoked": _withdrawn("mandate_id"),
    "offer_delisted": _withdrawn("offer_id"),
    "trading_suspended": _trading_suspended,
    "complaint_filed": _complaint_filed,
    "case_opened": _case_opened,
    "case_step_recorded": _case_step_recorded,
    "case_ruled": _case_ruled,
    "ruling_appealed": _ruling_appealed,
    "appeal_decided": _appeal_decided,
    "security_assessed": _security_assessed,
    "transfer_reported": _transfer_reported,
    "data_catalogued": _data_catalogued,
    "asset_reclassified": _asset_reclassified,
}

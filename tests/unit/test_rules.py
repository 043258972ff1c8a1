"""Unit tests for provledger.protocol.rules (and the payload checks of events.decode).

Every rejection the rules and the payload-format checks can produce is exercised at each of its
distinct sites, through the same path a block takes (decode, then apply_event), against a fixed
scene built on a deterministic consortium. Each rejection test asserts the exact code and kind,
a meaningful fragment of the reason, and that the state did not change at all (a byte-level
snapshot is compared before and after). The accepted paths follow: every event kind, the trade
life cycle, disputes, grant expiry at block time, revocation, cross-border rules, lineage
classification, replay protection, governance and key rotation.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.memory_state import (
    GENESIS_TIME_MS,
    Consortium,
    Member,
    MemoryState,
    digest,
    signing_key,
)
from support.rule_cases import (
    BLOCK_TIME_MS,
    Case,
    Setup,
    SignedMaker,
    reject,
)

from provledger.protocol import crypto, events, rules, rules_governance, validators
from provledger.protocol.errors import Rejected, RejectionKind
from provledger.protocol.genesis import canonical_json, parse_genesis
from provledger.protocol.limits import (
    APPROVALS_PER_GOVERNANCE_MAX,
    EVENT_BODY_SIZE_BYTES_MAX,
    EVENT_TIMESTAMP_MS_MAX,
    GRANTS_PER_DERIVATION_MAX,
    IDENTIFIER_LENGTH_CHARS_MAX,
    METADATA_ENTRIES_MAX,
    NONCE_MAX,
    PARENTS_PER_DERIVATION_MAX,
    PROPOSAL_OPEN_MS_MAX,
    PURPOSES_PER_GRANT_MAX,
    TEXT_LENGTH_CHARS_MAX,
)
from provledger.protocol.state import Write
from provledger.protocol.validators import ValidatorContext
from provledger.v1 import ledger_pb2, state_pb2

INVALID = RejectionKind.INVALID
FORBIDDEN = RejectionKind.FORBIDDEN
PRECONDITION = RejectionKind.PRECONDITION
DUPLICATE = RejectionKind.DUPLICATE

GENERAL = ledger_pb2.CLASSIFICATION_GENERAL
IMPORTANT = ledger_pb2.CLASSIFICATION_IMPORTANT
CORE = ledger_pb2.CLASSIFICATION_CORE
READ = ledger_pb2.OPERATION_READ
COMPUTE = ledger_pb2.OPERATION_COMPUTE
DERIVE = ledger_pb2.OPERATION_DERIVE
SHARE = ledger_pb2.OPERATION_SHARE

SETUP_TIME_MS = GENESIS_TIME_MS + 1_000  # block time of the scene and of per-case setups
EXPIRY_MS = BLOCK_TIME_MS + 50_000  # when the scene's grants and approvals expire
SETUP_HEIGHT = 1  # the block height of the scene and of per-case setups

STRANGER = Member("stranger", "agency", signing_key("stranger"))
QUORUM = ("agency-a", "agency-b", "exchange", "regulator")  # 4 of the 5 members
TOO_LONG_TEXT = "x" * (TEXT_LENGTH_CHARS_MAX + 1)
# Field 99, a varint: a field no message of the ledger defines (tag 99 << 3 | 0 = 0x98 0x06).
UNKNOWN_FIELD = b"\x98\x06\x01"


# --- the scene -----------------------------------------------------------------------------


def _do(c: Consortium, s: MemoryState, author: Any, kind: str, **fields: Any) -> list[Write]:
    return c.apply(s, c.sign(author, kind, **fields), SETUP_TIME_MS)


def build_scene(c: Consortium) -> MemoryState:
    """agency-a owns a general, an important and a core asset; agency-b holds grants on the
    general one (read, share, derive, and a no-cross-border share grant); the regulator has
    approved moving the important asset to agency-b in region "hk" (a one-shot approval, which
    no longer moves it: ADR 019) and certified the general
    one; the exchange lists the general asset and agency-b has ordered it (order-1)."""
    s = c.state()
    for asset_id, level in (
        ("asset-general", GENERAL),
        ("asset-important", IMPORTANT),
        ("asset-core", CORE),
    ):
        _do(
            c,
            s,
            "agency-a",
            "asset_registered",
            asset_id=asset_id,
            content_digest=digest(asset_id),
            classification=level,
            name=asset_id,
        )
    for grant_id, operation, no_cross_border in (
        ("grant-read", READ, False),
        ("grant-share", SHARE, False),
        ("grant-derive", DERIVE, False),
        ("grant-no-cross-border", SHARE, True),
    ):
        _do(
            c,
            s,
            "agency-a",
            "grant_issued",
            grant_id=grant_id,
            asset_id="asset-general",
            grantee_id="agency-b",
            purposes=["research"],
            operations=[operation],
            expires_at_ms=EXPIRY_MS,
            no_cross_border=no_cross_border,
        )
    _do(
        c,
        s,
        "regulator",
        "cross_border_approved",
        approval_id="approval-important",
        asset_id="asset-important",
        recipient_id="agency-b",
        destination_region="hk",
        expires_at_ms=EXPIRY_MS,
    )
    _do(
        c,
        s,
        "regulator",
        "certificate_issued",
        certificate_id="cert-1",
        asset_id="asset-general",
        scope="quality",
    )
    _do(
        c,
        s,
        "exchange",
        "offer_listed",
        offer_id="offer-1",
        asset_id="asset-general",
        seller_id="agency-a",
        price=100,
        currency="CNY",
    )
    _do(c, s, "agency-b", "order_placed", order_id="order-1", offer_id="offer-1")
    return s


@pytest.fixture
def consortium() -> Consortium:
    return Consortium()


@pytest.fixture
def state(consortium: Consortium) -> MemoryState:
    return build_scene(consortium)


# A payload of every kind that the scene accepts at BLOCK_TIME_MS, with its author.
VALID: dict[str, tuple[str, dict[str, Any]]] = {
    "asset_registered": (
        "agency-a",
        dict(
            asset_id="asset-new",
            content_digest=digest("new"),
            classification=GENERAL,
            name="New",
            schema_uri="urn:schema:new",
            metadata={"source": "survey"},
        ),
    ),
    "asset_derived": (
        "agency-a",
        dict(
            asset_id="asset-derived",
            parent_ids=["asset-general"],
            activity="cleaning",
            content_digest=digest("derived"),
            classification=GENERAL,
            name="Derived",
        ),
    ),
    "asset_shared": ("agency-a", dict(asset_id="asset-general", recipient_id="agency-b")),
    "asset_transferred": ("agency-a", dict(asset_id="asset-general", new_owner_id="agency-b")),
    "asset_used": (
        "agency-b",
        dict(asset_id="asset-general", grant_id="grant-read", purpose="research", operation=READ),
    ),
    "certificate_issued": (
        "regulator",
        dict(certificate_id="cert-new", asset_id="asset-general", scope="completeness"),
    ),
    "certificate_revoked": ("regulator", dict(certificate_id="cert-1", reason="outdated")),
    "asset_retired": ("agency-a", dict(asset_id="asset-general", reason="destroyed")),
    "grant_issued": (
        "agency-a",
        dict(
            grant_id="grant-new",
            asset_id="asset-general",
            grantee_id="exchange",
            purposes=["research"],
            operations=[READ, COMPUTE],
            expires_at_ms=EXPIRY_MS,
        ),
    ),
    "grant_revoked": ("agency-a", dict(grant_id="grant-read", reason="project ended")),
    "cross_border_approved": (
        "regulator",
        dict(
            approval_id="approval-new",
            asset_id="asset-core",
            recipient_id="agency-b",
            destination_region="mo",
            expires_at_ms=EXPIRY_MS,
        ),
    ),
    "offer_listed": (
        "exchange",
        dict(
            offer_id="offer-new",
            asset_id="asset-important",
            seller_id="agency-a",
            price=500,
            currency="CNY",
            terms="one year",
        ),
    ),
    "order_placed": ("regulator", dict(order_id="order-new", offer_id="offer-1")),
    "order_delivered": ("agency-a", dict(order_id="order-1", delivery_digest=digest("delivery"))),
    "order_settled": ("exchange", dict(order_id="order-1", settlement_reference="ref-1")),
    "dispute_opened": ("agency-b", dict(dispute_id="dispute-new", order_id="order-1", reason="x")),
    "dispute_resolved": (
        "regulator",
        dict(
            dispute_id="dispute-1",
            outcome=ledger_pb2.DISPUTE_OUTCOME_FOR_BUYER,
            resolution="refund",
        ),
    ),
}

VALID_REGISTRATION = VALID["asset_registered"][1]


def valid(kind: str, author: Any = None, nonce: int | None = None, **overrides: Any) -> SignedMaker:
    """A maker of the VALID event of `kind`, with some fields (or the author) replaced."""
    default_author, fields = VALID[kind]
    return lambda c: c.sign(author or default_author, kind, nonce, **{**fields, **overrides})


def event(author: Any, kind: str, **fields: Any) -> SignedMaker:
    return lambda c: c.sign(author, kind, **fields)


def change(**fields: Any) -> ledger_pb2.GovernanceChange:
    fields.setdefault("proposal_nonce", 1)
    return ledger_pb2.GovernanceChange(**fields)


def governed(
    governance_change: ledger_pb2.GovernanceChange,
    approvers: tuple[Any, ...] = QUORUM,
    author: str = "agency-a",
) -> SignedMaker:
    return lambda c: c.govern(author, governance_change, approvers)


def governance_with(
    change_bytes: bytes, approvals: Callable[[Consortium, bytes], list[ledger_pb2.Approval]]
) -> SignedMaker:
    """A governance event with hand-made approvals (for approvals that must fail)."""
    return lambda c: c.sign(
        "agency-a", "governance", change=change_bytes, approvals=approvals(c, change_bytes)
    )


# setups, run on the scene before the event under test


def retire(asset_id: str) -> Setup:
    return lambda c, s: _do(c, s, "agency-a", "asset_retired", asset_id=asset_id)


def remove(member_id: str) -> Setup:
    removal = change(member_removed={"member_id": member_id}, proposal_nonce=900)
    return lambda c, s: c.apply(s, c.govern("agency-a", removal, QUORUM), SETUP_TIME_MS)


def revoke_grant(grant_id: str) -> Setup:
    return lambda c, s: _do(c, s, "agency-a", "grant_revoked", grant_id=grant_id)


def deliver(c: Consortium, s: MemoryState) -> None:
    _do(c, s, "agency-a", "order_delivered", order_id="order-1", delivery_digest=digest("d"))


def open_dispute(c: Consortium, s: MemoryState) -> None:
    _do(c, s, "agency-b", "dispute_opened", dispute_id="dispute-1", order_id="order-1", reason="x")


def dispute_and_resolve(c: Consortium, s: MemoryState) -> None:
    open_dispute(c, s)
    _do(
        c,
        s,
        "regulator",
        "dispute_resolved",
        dispute_id="dispute-1",
        outcome=ledger_pb2.DISPUTE_OUTCOME_FOR_SELLER,
    )


def dispute_then_second_order(c: Consortium, s: MemoryState) -> None:
    open_dispute(c, s)
    _do(c, s, "agency-b", "order_placed", order_id="order-2", offer_id="offer-1")


def add_roleless_member(c: Consortium, s: MemoryState) -> None:
    """A member with no role. Neither genesis nor governance can make one; the state is
    planted directly to reach the role check of placing an order (which every real role but
    the auditor passes, and the auditor is stopped earlier)."""
    key = signing_key("roleless")
    record = state_pb2.MemberRecord(
        member_id="roleless",
        role=ledger_pb2.ROLE_UNSPECIFIED,
        keys=[state_pb2.MemberKey(key_id=key.key_id, public_key=key.public_key)],
    )
    s.apply([Write("member", "roleless", record)])


ROLELESS = Member("roleless", "none", signing_key("roleless"))
ROLE_CHANGE = change(role_changed={"member_id": "agency-b", "role": ledger_pb2.ROLE_EXCHANGE})


# --- the rejection table -------------------------------------------------------------------


REQUIRED_IDENTIFIERS = {
    "asset_registered": ["asset_id"],
    "asset_derived": ["asset_id"],
    "asset_shared": ["asset_id", "recipient_id"],
    "asset_transferred": ["asset_id", "new_owner_id"],
    "asset_used": ["asset_id"],
    "certificate_issued": ["certificate_id", "asset_id"],
    "certificate_revoked": ["certificate_id"],
    "asset_retired": ["asset_id"],
    "grant_issued": ["grant_id", "asset_id", "grantee_id"],
    "grant_revoked": ["grant_id"],
    "cross_border_approved": ["approval_id", "asset_id", "recipient_id", "destination_region"],
    "offer_listed": ["offer_id", "asset_id", "seller_id", "currency"],
    "order_placed": ["order_id", "offer_id"],
    "order_delivered": ["order_id"],
    "order_settled": ["order_id"],
    "dispute_opened": ["dispute_id", "order_id"],
    "dispute_resolved": ["dispute_id"],
}
OPTIONAL_IDENTIFIERS = {
    "asset_shared": ["grant_id", "destination_region", "approval_id"],
    "asset_transferred": ["destination_region", "approval_id"],
    "asset_used": ["grant_id"],
}
TEXT_FIELDS = {
    "asset_registered": ["name", "schema_uri"],
    "asset_derived": ["activity", "name"],
    "asset_used": ["purpose"],
    "certificate_issued": ["scope"],
    "certificate_revoked": ["reason"],
    "asset_retired": ["reason"],
    "grant_revoked": ["reason"],
    "offer_listed": ["terms"],
    "order_settled": ["settlement_reference"],
    "dispute_opened": ["reason"],
    "dispute_resolved": ["resolution"],
}
DIGEST_FIELDS = {
    "asset_registered": ["content_digest"],
    "asset_derived": ["content_digest"],
    "order_delivered": ["delivery_digest"],
}
BAD_IDENTIFIERS = {
    "space": "has space",
    "leading_dash": "-leading",
    "too_long": "x" * (IDENTIFIER_LENGTH_CHARS_MAX + 1),
    "non_ascii": "资产",
}


def _payload_format_cases() -> list[Any]:
    """events.decode's field checks, generated per kind and field from the tables above."""
    cases = []
    for kind, fields in REQUIRED_IDENTIFIERS.items():
        for field in fields:
            cases.append(
                reject(
                    f"{kind}-{field}-missing",
                    valid(kind, **{field: ""}),
                    INVALID,
                    "missing_field",
                    f"{field} is required",
                )
            )
            for name, value in BAD_IDENTIFIERS.items():
                cases.append(
                    reject(
                        f"{kind}-{field}-{name}",
                        valid(kind, **{field: value}),
                        INVALID,
                        "bad_identifier",
                        f"{field} ",
                    )
                )
    for kind, fields in OPTIONAL_IDENTIFIERS.items():
        for field in fields:
            cases.append(
                reject(
                    f"{kind}-{field}-bad",
                    valid(kind, **{field: "bad id"}),
                    INVALID,
                    "bad_identifier",
                    f"{field} 'bad id'",
                )
            )
    for kind, fields in TEXT_FIELDS.items():
        for field in fields:
            cases.append(
                reject(
                    f"{kind}-{field}-too-long",
                    valid(kind, **{field: TOO_LONG_TEXT}),
                    INVALID,
                    "text_too_long",
                    f"{field} exceeds {TEXT_LENGTH_CHARS_MAX} characters",
                )
            )
    for kind, fields in DIGEST_FIELDS.items():
        for field in fields:
            for name, value in (("empty", b""), ("short", bytes(31)), ("long", bytes(33))):
                cases.append(
                    reject(
                        f"{kind}-{field}-{name}",
                        valid(kind, **{field: value}),
                        INVALID,
                        "bad_digest",
                        f"{field} must be a 32-byte SHA-256 digest",
                    )
                )
    for kind in ("asset_registered", "asset_derived"):
        for value in (ledger_pb2.CLASSIFICATION_UNSPECIFIED, 7):
            cases.append(
                reject(
                    f"{kind}-classification-{value}",
                    valid(kind, classification=value),
                    INVALID,
                    "bad_classification",
                    "general, important or core",
                )
            )
        many = {f"k{i}": "v" for i in range(METADATA_ENTRIES_MAX + 1)}
        cases += [
            reject(
                f"{kind}-metadata-too-many",
                valid(kind, metadata=many),
                INVALID,
                "too_many_metadata",
                f"at most {METADATA_ENTRIES_MAX} metadata entries",
            ),
            reject(
                f"{kind}-metadata-key-too-long",
                valid(kind, metadata={TOO_LONG_TEXT: "v"}),
                INVALID,
                "text_too_long",
                "metadata key exceeds",
            ),
            reject(
                f"{kind}-metadata-value-too-long",
                valid(kind, metadata={"source": TOO_LONG_TEXT}),
                INVALID,
                "text_too_long",
                "metadata[source] exceeds",
            ),
        ]
    for field, limit in (
        ("parent_ids", PARENTS_PER_DERIVATION_MAX),
        ("grant_ids", GRANTS_PER_DERIVATION_MAX),
    ):
        cases += [
            reject(
                f"asset_derived-{field}-too-many",
                valid("asset_derived", **{field: [f"id-{i}" for i in range(limit + 1)]}),
                INVALID,
                "too_many_items",
                f"{field} holds {limit + 1} entries; the limit is {limit}",
            ),
            reject(
                f"asset_derived-{field}-bad-entry",
                valid("asset_derived", **{field: ["asset-general", "bad id"]}),
                INVALID,
                "bad_identifier",
                f"{field} 'bad id'",
            ),
            reject(
                f"asset_derived-{field}-empty-entry",
                valid("asset_derived", **{field: ["asset-general", ""]}),
                INVALID,
                "missing_field",
                f"{field} is required",
            ),
            reject(
                f"asset_derived-{field}-twice",
                valid("asset_derived", **{field: ["asset-general", "asset-general"]}),
                INVALID,
                "duplicate_items",
                f"{field} lists an entry twice",
            ),
        ]
    return cases


PAYLOAD_FORMAT_CASES = [
    *_payload_format_cases(),
    # market supervision: the format checks written in events.py (the rules' own cases are in
    # test_rules_market.py, test_rules_cases.py and test_rules_customs.py)
    reject(
        "appeal_decided-upheld-with-remedies",
        event(
            "regulator",
            "appeal_decided",
            case_id="case-1",
            decision=ledger_pb2.APPEAL_DECISION_UPHELD,
            reasons="the ruling stands",
            remedies=[{"warning": {"member_id": "agency-a", "text": "be careful"}}],
        ),
        INVALID,
        "bad_remedies",
        "only a varied ruling adds remedies",
    ),
    reject(
        "security_assessed-interval-too-short",
        event(
            "regulator",
            "security_assessed",
            assessment_id="assessment-1",
            asset_ids=["asset-core"],
            recipient_id="agency-b",
            destination_region="mo",
            purposes=["research"],
            expires_at_ms=EXPIRY_MS,
            report_interval_ms=1_000,
            report_digest=digest("report"),
        ),
        INVALID,
        "bad_interval",
        "report_interval_ms is 0 (no reports) or at least",
    ),
    # asset_derived
    reject(
        "asset_derived-no-parents",
        valid("asset_derived", parent_ids=[]),
        INVALID,
        "missing_field",
        "at least one parent",
    ),
    reject(
        "asset_derived-own-parent",
        valid("asset_derived", parent_ids=["asset-general", "asset-derived"]),
        INVALID,
        "bad_lineage",
        "cannot be its own parent",
    ),
    reject(
        "asset_derived-no-activity",
        valid("asset_derived", activity=""),
        INVALID,
        "missing_field",
        "activity is required",
    ),
    # asset_used
    reject(
        "asset_used-no-purpose",
        valid("asset_used", purpose=""),
        INVALID,
        "missing_field",
        "purpose is required",
    ),
    reject(
        "asset_used-operation-unspecified",
        valid("asset_used", operation=ledger_pb2.OPERATION_UNSPECIFIED),
        INVALID,
        "bad_operation",
        "operation must be read, compute, derive or share",
    ),
    reject(
        "asset_used-operation-unknown",
        valid("asset_used", operation=99),
        INVALID,
        "bad_operation",
        "operation must be",
    ),
    # grant_issued
    reject(
        "grant_issued-no-purposes",
        valid("grant_issued", purposes=[]),
        INVALID,
        "missing_field",
        "at least one purpose",
    ),
    reject(
        "grant_issued-too-many-purposes",
        valid("grant_issued", purposes=[f"p{i}" for i in range(PURPOSES_PER_GRANT_MAX + 1)]),
        INVALID,
        "too_many_items",
        f"at most {PURPOSES_PER_GRANT_MAX} purposes",
    ),
    reject(
        "grant_issued-empty-purpose",
        valid("grant_issued", purposes=["research", ""]),
        INVALID,
        "missing_field",
        "a purpose may not be empty",
    ),
    reject(
        "grant_issued-purpose-too-long",
        valid("grant_issued", purposes=[TOO_LONG_TEXT]),
        INVALID,
        "text_too_long",
        "purpose exceeds",
    ),
    reject(
        "grant_issued-no-operations",
        valid("grant_issued", operations=[]),
        INVALID,
        "missing_field",
        "at least one operation",
    ),
    reject(
        "grant_issued-operation-unspecified",
        valid("grant_issued", operations=[READ, ledger_pb2.OPERATION_UNSPECIFIED]),
        INVALID,
        "bad_operation",
        "operations must be read, compute, derive or share",
    ),
    reject(
        "grant_issued-operation-twice",
        valid("grant_issued", operations=[READ, READ]),
        INVALID,
        "duplicate_items",
        "operations lists an operation twice",
    ),
    reject(
        "grant_issued-no-expiry",
        valid("grant_issued", expires_at_ms=0),
        INVALID,
        "missing_field",
        "a grant needs an expiry",
    ),
    reject(
        "grant_issued-negative-expiry",
        valid("grant_issued", expires_at_ms=-1),
        INVALID,
        "missing_field",
        "a grant needs an expiry",
    ),
    # cross_border_approved
    reject(
        "cross_border_approved-no-expiry",
        valid("cross_border_approved", expires_at_ms=0),
        INVALID,
        "missing_field",
        "an approval needs an expiry",
    ),
    # disputes
    reject(
        "dispute_opened-no-reason",
        valid("dispute_opened", reason=""),
        INVALID,
        "missing_field",
        "a dispute states its reason",
    ),
    reject(
        "dispute_resolved-no-outcome",
        valid("dispute_resolved", outcome=ledger_pb2.DISPUTE_OUTCOME_UNSPECIFIED),
        INVALID,
        "missing_field",
        "a resolution names its outcome",
    ),
    reject(
        "dispute_resolved-undefined-outcome",
        valid("dispute_resolved", outcome=77),
        INVALID,
        "bad_enum",
        "dispute_resolved.outcome holds 77, not a defined DisputeOutcome value",
    ),
    # governance
    reject(
        "governance-no-approvals",
        event("agency-a", "governance", change=ROLE_CHANGE.SerializeToString()),
        INVALID,
        "missing_field",
        "a governance action needs approvals",
    ),
    reject(
        "governance-too-many-approvals",
        lambda c: c.sign(
            "agency-a",
            "governance",
            change=ROLE_CHANGE.SerializeToString(),
            approvals=c.approvals(ROLE_CHANGE.SerializeToString(), ["agency-a"])
            * (APPROVALS_PER_GOVERNANCE_MAX + 1),
        ),
        INVALID,
        "too_many_items",
        f"at most {APPROVALS_PER_GOVERNANCE_MAX} approvals",
    ),
    reject(
        "identifier-trailing-newline",
        valid("asset_registered", asset_id="asset-1\n"),
        INVALID,
        "bad_identifier",
        "asset_id ",
    ),
]


def _with_signature(make: SignedMaker, signature: Callable[[Consortium, bytes], bytes]) -> Any:
    """`make`'s event with its signature replaced by signature(consortium, body)."""

    def remade(c: Consortium) -> ledger_pb2.SignedEvent:
        signed = make(c)
        return ledger_pb2.SignedEvent(body=signed.body, signature=signature(c, signed.body))

    return remade


def _unsigned(**event_fields: Any) -> SignedMaker:
    """An Event built field by field (so it can lack what `Consortium.event` always sets)."""

    def make(c: Consortium) -> ledger_pb2.SignedEvent:
        return events.sign_event(
            ledger_pb2.Event(
                chain_id=c.chain_id, nonce=1, timestamp_ms=GENESIS_TIME_MS, **event_fields
            ),
            c["agency-a"].key,
        )

    return make


def _body_rewritten(make: SignedMaker, rewrite: Callable[[Consortium, bytes], bytes]) -> Any:
    """`make`'s event with its body rewritten by rewrite(consortium, body) and signed again by
    its author, agency-a: a good signature over bytes the author chose."""

    def remade(c: Consortium) -> ledger_pb2.SignedEvent:
        body = rewrite(c, make(c).body)
        return ledger_pb2.SignedEvent(
            body=body, signature=c["agency-a"].key.sign(crypto.DOMAIN_EVENT, body)
        )

    return remade


ENVELOPE_CASES = [
    reject(
        "oversized-body",
        lambda c: ledger_pb2.SignedEvent(
            body=bytes(EVENT_BODY_SIZE_BYTES_MAX + 1), signature=bytes(64)
        ),
        INVALID,
        "oversized",
        f"the limit is {EVENT_BODY_SIZE_BYTES_MAX}",
    ),
    reject(
        "short-signature",
        _with_signature(valid("asset_registered"), lambda c, body: bytes(63)),
        INVALID,
        "bad_signature",
        "signature is 63 bytes, expected 64",
    ),
    reject(
        "unparseable-body",
        lambda c: ledger_pb2.SignedEvent(body=b"\xff", signature=bytes(64)),
        INVALID,
        "malformed",
        "event body is not a valid Event message",
    ),
    reject(
        "other-chain",
        lambda c: Consortium(chain_id="other-chain").sign(
            "agency-a", "asset_registered", **VALID_REGISTRATION
        ),
        INVALID,
        "wrong_chain",
        "event is for chain 'other-chain', not 'provledger-test'",
    ),
    reject(
        "no-author",
        _unsigned(asset_registered=VALID_REGISTRATION),
        INVALID,
        "malformed",
        "event has no author",
    ),
    reject(
        "short-key-id",
        _unsigned(
            author=ledger_pb2.Author(member_id="agency-a", key_id=bytes(15)),
            asset_registered=VALID_REGISTRATION,
        ),
        INVALID,
        "malformed",
        "author key id must be 16 bytes",
    ),
    reject(
        "no-payload",
        _unsigned(author=Consortium()["agency-a"].author),
        INVALID,
        "missing_payload",
        "event carries no payload",
    ),
    # the body is canonical: nothing signed that the parsed Event does not say
    reject(
        "unknown-field-in-body",
        _body_rewritten(valid("asset_registered"), lambda c, body: body + UNKNOWN_FIELD),
        INVALID,
        "unknown_fields",
        "event body holds fields that Event does not define (3 bytes)",
    ),
    reject(
        "unknown-field-in-payload",
        lambda c: events.sign_event(
            ledger_pb2.Event.FromString(
                c.event("agency-a", "asset_retired").SerializeToString()
                # the payload, field 17, again: its sub-message merges with the first
                + b"\x8a\x01\x03"
                + UNKNOWN_FIELD
            ),
            c["agency-a"].key,
        ),
        INVALID,
        "unknown_fields",
        "event body holds fields that Event does not define",
    ),
    reject(
        "field-repeated-in-body",
        _body_rewritten(
            valid("asset_registered"),
            # chain_id once more, the same value: it parses to the same Event
            lambda c, body: body + ledger_pb2.Event(chain_id=c.chain_id).SerializeToString(),
        ),
        INVALID,
        "non_canonical",
        "event body is not the canonical encoding of its Event",
    ),
    reject(
        "nonce-zero",
        valid("asset_registered", nonce=0),
        INVALID,
        "bad_nonce",
        f"nonce must be 1..{NONCE_MAX}, got 0",
    ),
    reject(
        "nonce-above-int64",
        valid("asset_registered", nonce=NONCE_MAX + 1),
        INVALID,
        "bad_nonce",
        f"got {NONCE_MAX + 1}",
    ),
    reject(
        "timestamp-negative",
        valid("asset_registered", timestamp_ms=-1),
        INVALID,
        "bad_timestamp",
        f"timestamp_ms must be 1..{EVENT_TIMESTAMP_MS_MAX}",
    ),
    reject(
        "timestamp-zero",
        valid("asset_registered", timestamp_ms=0),
        INVALID,
        "bad_timestamp",
        "got 0",
    ),
    reject(
        "timestamp-after-year-9999",
        valid("asset_registered", timestamp_ms=EVENT_TIMESTAMP_MS_MAX + 1),
        INVALID,
        "bad_timestamp",
        f"got {EVENT_TIMESTAMP_MS_MAX + 1}",
    ),
    reject(
        "signed-by-another-key",
        _with_signature(
            valid("asset_registered"),
            lambda c, body: c["agency-b"].key.sign(crypto.DOMAIN_EVENT, body),
        ),
        INVALID,
        "bad_signature",
        "the signature does not match the event body and key",
    ),
    reject(
        "signed-for-precommits",
        _with_signature(
            valid("asset_registered"),
            lambda c, body: c["agency-a"].key.sign(crypto.DOMAIN_PRECOMMIT, body),
        ),
        INVALID,
        "bad_signature",
        "the signature does not match",
    ),
    reject(
        "replayed-nonce",
        lambda c: c.sign("agency-a", "asset_registered", nonce=1, **VALID_REGISTRATION),
        DUPLICATE,
        "replayed_nonce",
        "nonce 1 of 'agency-a' was already used",
    ),
]

RULE_CASES = [
    # authentication
    reject(
        "unknown_author",
        valid("asset_registered", author=STRANGER),
        FORBIDDEN,
        "unknown_author",
        "'stranger' is not a consortium member",
    ),
    reject(
        "member_removed",
        valid("asset_registered", author="agency-b"),
        FORBIDDEN,
        "member_removed",
        "member 'agency-b' has been removed",
        setup=remove("agency-b"),
    ),
    reject(
        "unknown_key",
        lambda c: c.sign(
            "agency-a", "asset_registered", key=signing_key("agency-a/2"), **VALID_REGISTRATION
        ),
        FORBIDDEN,
        "unknown_key",
        "is not a current key of member 'agency-a'",
    ),
    # roles
    reject(
        "register-by-regulator",
        valid("asset_registered", author="regulator"),
        FORBIDDEN,
        "wrong_role",
        "registering an asset needs the agency or exchange role; 'regulator' is regulator",
    ),
    reject(
        "derive-by-regulator",
        valid("asset_derived", author="regulator"),
        FORBIDDEN,
        "wrong_role",
        "deriving an asset needs the agency or exchange role",
    ),
    reject(
        "certificate-by-agency",
        valid("certificate_issued", author="agency-a"),
        FORBIDDEN,
        "wrong_role",
        "issuing an asset certificate needs the regulator role",
    ),
    reject(
        "certificate-revoked-by-agency",
        valid("certificate_revoked", author="agency-a"),
        FORBIDDEN,
        "wrong_role",
        "only the issuer or a regulator revokes a certificate",
    ),
    reject(
        "approval-by-agency",
        valid("cross_border_approved", author="agency-a"),
        FORBIDDEN,
        "wrong_role",
        "approving a cross-border move needs the regulator role",
    ),
    reject(
        "offer-by-agency",
        valid("offer_listed", author="agency-a"),
        FORBIDDEN,
        "wrong_role",
        "listing an offer needs the exchange role",
    ),
    reject(
        "order-by-roleless-member",
        valid("order_placed", author=ROLELESS),
        FORBIDDEN,
        "wrong_role",
        "placing an order needs the agency or exchange or regulator role; 'roleless' is "
        "unspecified",
        setup=add_roleless_member,
    ),
    reject(
        "resolve-by-exchange",
        valid("dispute_resolved", author="exchange"),
        FORBIDDEN,
        "wrong_role",
        "resolving a dispute needs the regulator role",
        setup=open_dispute,
    ),
    # members named by an event
    reject(
        "share-to-stranger",
        valid("asset_shared", recipient_id="stranger"),
        PRECONDITION,
        "unknown_member",
        "recipient_id 'stranger' is not an active member",
    ),
    reject(
        "share-to-removed-member",
        valid("asset_shared", recipient_id="exchange"),
        PRECONDITION,
        "unknown_member",
        "recipient_id 'exchange' is not an active member",
        setup=remove("exchange"),
    ),
    reject(
        "transfer-to-stranger",
        valid("asset_transferred", new_owner_id="stranger"),
        PRECONDITION,
        "unknown_member",
        "new_owner_id 'stranger' is not an active member",
    ),
    reject(
        "grant-to-stranger",
        valid("grant_issued", grantee_id="stranger"),
        PRECONDITION,
        "unknown_member",
        "grantee_id 'stranger' is not an active member",
    ),
    reject(
        "approval-for-stranger",
        valid("cross_border_approved", recipient_id="stranger"),
        PRECONDITION,
        "unknown_member",
        "recipient_id 'stranger' is not an active member",
    ),
    # ids that already exist
    reject(
        "register-existing-asset",
        valid("asset_registered", asset_id="asset-core"),
        DUPLICATE,
        "asset_exists",
        "asset 'asset-core' already exists",
    ),
    reject(
        "derive-existing-asset",
        valid("asset_derived", asset_id="asset-core"),
        DUPLICATE,
        "asset_exists",
        "asset 'asset-core' already exists",
    ),
    reject(
        "certificate-exists",
        valid("certificate_issued", certificate_id="cert-1"),
        DUPLICATE,
        "certificate_exists",
        "certificate 'cert-1' already exists",
    ),
    reject(
        "grant-exists",
        valid("grant_issued", grant_id="grant-read"),
        DUPLICATE,
        "grant_exists",
        "grant 'grant-read' already exists",
    ),
    reject(
        "approval-exists",
        valid("cross_border_approved", approval_id="approval-important"),
        DUPLICATE,
        "approval_exists",
        "approval 'approval-important' already exists",
    ),
    reject(
        "offer-exists",
        valid("offer_listed", offer_id="offer-1"),
        DUPLICATE,
        "offer_exists",
        "offer 'offer-1' already exists",
    ),
    reject(
        "order-exists",
        valid("order_placed", order_id="order-1"),
        DUPLICATE,
        "order_exists",
        "order 'order-1' already exists",
    ),
    reject(
        "dispute-exists",
        event("agency-b", "dispute_opened", dispute_id="dispute-1", order_id="order-2", reason="x"),
        DUPLICATE,
        "dispute_exists",
        "dispute 'dispute-1' already exists",
        setup=dispute_then_second_order,
    ),
    # derivation
    reject(
        "derive-without-grant",
        valid("asset_derived", author="agency-b"),
        FORBIDDEN,
        "no_grant",
        "'agency-b' does not own parent 'asset-general'",
    ),
    reject(
        "derive-with-grant-of-another-asset",
        valid(
            "asset_derived",
            author="agency-b",
            parent_ids=["asset-core"],
            grant_ids=["grant-derive"],
        ),
        FORBIDDEN,
        "no_grant",
        "none of the named grants lets it derive",
    ),
    reject(
        "derive-with-read-grant",
        valid("asset_derived", author="agency-b", grant_ids=["grant-read"]),
        FORBIDDEN,
        "operation_not_granted",
        "grant 'grant-read' does not allow derive",
    ),
    reject(
        "derive-with-revoked-grant",
        valid("asset_derived", author="agency-b", grant_ids=["grant-derive"]),
        FORBIDDEN,
        "grant_revoked",
        "grant 'grant-derive' was revoked",
        setup=revoke_grant("grant-derive"),
    ),
    reject(
        "derive-with-expired-grant",
        valid("asset_derived", author="agency-b", grant_ids=["grant-derive"]),
        FORBIDDEN,
        "grant_expired",
        f"grant 'grant-derive' expired at {EXPIRY_MS} ms",
        time_ms=EXPIRY_MS,
    ),
    reject(
        "derive-classified-below-parent",
        valid("asset_derived", parent_ids=["asset-general", "asset-important"]),
        FORBIDDEN,
        "classification_too_low",
        "at least as high as its most sensitive parent (important)",
    ),
    reject(
        "derive-important-from-core",
        valid("asset_derived", parent_ids=["asset-core"], classification=IMPORTANT),
        FORBIDDEN,
        "classification_too_low",
        "(core)",
    ),
    reject(
        "derive-from-missing-parent",
        valid("asset_derived", parent_ids=["asset-general", "asset-missing"]),
        PRECONDITION,
        "unknown_asset",
        "asset 'asset-missing' does not exist",
    ),
    # grants named by shares and uses
    reject(
        "share-without-grant",
        valid("asset_shared", author="agency-b", recipient_id="exchange"),
        FORBIDDEN,
        "no_grant",
        "'agency-b' does not own asset 'asset-general' and names no grant to share it",
    ),
    reject(
        "use-without-grant",
        valid("asset_used", grant_id=""),
        FORBIDDEN,
        "no_grant",
        "names no grant to read it",
    ),
    reject(
        "use-with-unknown-grant",
        valid("asset_used", grant_id="grant-missing"),
        PRECONDITION,
        "unknown_grant",
        "grant 'grant-missing' does not exist",
    ),
    reject(
        "share-with-unknown-grant",
        valid("asset_shared", author="agency-b", recipient_id="exchange", grant_id="grant-x"),
        PRECONDITION,
        "unknown_grant",
        "grant 'grant-x' does not exist",
    ),
    reject(
        "use-with-grant-of-another-member",
        valid("asset_used", author="exchange"),
        FORBIDDEN,
        "grant_not_held",
        "grant 'grant-read' was issued to 'agency-b', not 'exchange'",
    ),
    reject(
        "use-with-grant-of-another-asset",
        valid("asset_used", asset_id="asset-important"),
        FORBIDDEN,
        "grant_wrong_asset",
        "grant 'grant-read' covers asset 'asset-general', not 'asset-important'",
    ),
    reject(
        "use-with-revoked-grant",
        valid("asset_used"),
        FORBIDDEN,
        "grant_revoked",
        "grant 'grant-read' was revoked",
        setup=revoke_grant("grant-read"),
    ),
    reject(
        "share-with-revoked-grant",
        valid("asset_shared", author="agency-b", recipient_id="exchange", grant_id="grant-share"),
        FORBIDDEN,
        "grant_revoked",
        "grant 'grant-share' was revoked",
        setup=revoke_grant("grant-share"),
    ),
    reject(
        "use-at-expiry",
        valid("asset_used"),
        FORBIDDEN,
        "grant_expired",
        f"grant 'grant-read' expired at {EXPIRY_MS} ms; the time is {EXPIRY_MS} ms",
        time_ms=EXPIRY_MS,
    ),
    reject(
        "share-after-expiry",
        valid("asset_shared", author="agency-b", recipient_id="exchange", grant_id="grant-share"),
        FORBIDDEN,
        "grant_expired",
        "grant 'grant-share' expired",
        time_ms=EXPIRY_MS + 1,
    ),
    reject(
        "use-operation-not-granted",
        valid("asset_used", operation=COMPUTE),
        FORBIDDEN,
        "operation_not_granted",
        "grant 'grant-read' does not allow compute",
    ),
    reject(
        "share-with-read-grant",
        valid("asset_shared", author="agency-b", recipient_id="exchange", grant_id="grant-read"),
        FORBIDDEN,
        "operation_not_granted",
        "grant 'grant-read' does not allow share",
    ),
    reject(
        "use-purpose-not-granted",
        valid("asset_used", purpose="marketing"),
        FORBIDDEN,
        "purpose_not_granted",
        "does not cover purpose 'marketing' (it covers research)",
    ),
    # cross-border moves
    reject(
        "share-abroad-under-no-cross-border-grant",
        valid(
            "asset_shared",
            author="agency-b",
            recipient_id="exchange",
            grant_id="grant-no-cross-border",
            destination_region="hk",
        ),
        FORBIDDEN,
        "cross_border_forbidden",
        "grant 'grant-no-cross-border' forbids moving asset 'asset-general' abroad",
    ),
    # important or core data abroad needs a security assessment (tests/unit/test_rules_customs.py
    # has its every refusal); a one-shot approval alone no longer suffices (ADR 019)
    reject(
        "share-important-abroad-unassessed",
        valid("asset_shared", asset_id="asset-important", destination_region="hk"),
        FORBIDDEN,
        "assessment_required",
        "asset 'asset-important' is important data: moving it to 'hk' needs a regulator's "
        "security assessment",
    ),
    reject(
        "transfer-core-abroad-unassessed",
        valid("asset_transferred", asset_id="asset-core", destination_region="hk"),
        FORBIDDEN,
        "assessment_required",
        "asset 'asset-core' is core data",
    ),
    reject(
        "share-abroad-under-an-approval-alone",
        valid(
            "asset_shared",
            asset_id="asset-important",
            destination_region="hk",
            approval_id="approval-important",
        ),
        FORBIDDEN,
        "assessment_required",
        "approval 'approval-important' is a one-shot approval, not an assessment",
    ),
    reject(
        "transfer-abroad-under-an-approval-alone",
        valid(
            "asset_transferred",
            asset_id="asset-important",
            destination_region="hk",
            approval_id="approval-important",
        ),
        FORBIDDEN,
        "assessment_required",
        "approval 'approval-important' is a one-shot approval, not an assessment",
        time_ms=EXPIRY_MS - 1,
    ),
    # shares, transfers, retirement
    reject(
        "share-with-self",
        valid("asset_shared", recipient_id="agency-a"),
        INVALID,
        "self_share",
        "cannot be shared with its own author",
    ),
    reject(
        "transfer-by-non-owner",
        valid("asset_transferred", author="agency-b", new_owner_id="exchange"),
        FORBIDDEN,
        "not_owner",
        "only the owner 'agency-a' may transfer asset 'asset-general'",
    ),
    reject(
        "transfer-to-self",
        valid("asset_transferred", new_owner_id="agency-a"),
        INVALID,
        "self_transfer",
        "already belongs to its author",
    ),
    reject(
        "retire-by-non-owner",
        valid("asset_retired", author="agency-b"),
        FORBIDDEN,
        "not_owner",
        "only the owner 'agency-a' may retire asset 'asset-general'",
    ),
    # certificates
    reject(
        "revoke-unknown-certificate",
        valid("certificate_revoked", certificate_id="cert-missing"),
        PRECONDITION,
        "unknown_certificate",
        "certificate 'cert-missing' does not exist",
    ),
    reject(
        "revoke-certificate-twice",
        valid("certificate_revoked"),
        PRECONDITION,
        "already_revoked",
        "certificate 'cert-1' is already revoked",
        setup=lambda c, s: _do(c, s, "regulator", "certificate_revoked", certificate_id="cert-1"),
    ),
    reject(
        "certificate-expiring-at-block-time",
        valid("certificate_issued", expires_at_ms=BLOCK_TIME_MS),
        PRECONDITION,
        "already_expired",
        "the certificate's expiry is not after the block time",
    ),
    reject(
        "certificate-with-negative-expiry",
        valid("certificate_issued", expires_at_ms=-1),
        PRECONDITION,
        "already_expired",
        "the certificate's expiry is not after the block time",
    ),
    # grants
    reject(
        "grant-by-non-owner",
        valid("grant_issued", author="agency-b"),
        FORBIDDEN,
        "not_owner",
        "only the owner 'agency-a' may grant use of asset 'asset-general'",
    ),
    reject(
        "grant-to-self",
        valid("grant_issued", grantee_id="agency-a"),
        INVALID,
        "self_grant",
        "an owner needs no grant on its own asset",
    ),
    reject(
        "grant-expiring-at-block-time",
        valid("grant_issued", expires_at_ms=BLOCK_TIME_MS),
        PRECONDITION,
        "already_expired",
        "the grant's expiry is not after the block time",
    ),
    reject(
        "revoke-unknown-grant",
        valid("grant_revoked", grant_id="grant-missing"),
        PRECONDITION,
        "unknown_grant",
        "grant 'grant-missing' does not exist",
    ),
    reject(
        "revoke-grant-by-grantee",
        valid("grant_revoked", author="agency-b"),
        FORBIDDEN,
        "not_grantor",
        "only the grantor or a regulator may revoke a grant",
    ),
    reject(
        "revoke-grant-twice",
        valid("grant_revoked"),
        PRECONDITION,
        "already_revoked",
        "grant 'grant-read' is already revoked",
        setup=revoke_grant("grant-read"),
    ),
    # cross-border approvals
    reject(
        "approval-expiring-at-block-time",
        valid("cross_border_approved", expires_at_ms=BLOCK_TIME_MS),
        PRECONDITION,
        "already_expired",
        "the approval's expiry is not after the block time",
    ),
    # trade
    reject(
        "offer-for-non-owner",
        valid("offer_listed", seller_id="agency-b"),
        FORBIDDEN,
        "not_owner",
        "seller 'agency-b' does not own asset 'asset-important'",
    ),
    reject(
        "order-unknown-offer",
        valid("order_placed", offer_id="offer-missing"),
        PRECONDITION,
        "unknown_offer",
        "offer 'offer-missing' does not exist",
    ),
    reject(
        "order-own-offer",
        valid("order_placed", author="agency-a"),
        INVALID,
        "self_order",
        "a seller cannot order its own offer",
    ),
    reject(
        "order-stale-offer",
        valid("order_placed"),
        PRECONDITION,
        "offer_stale",
        "asset 'asset-general' no longer belongs to seller 'agency-a'",
        setup=lambda c, s: _do(
            c, s, "agency-a", "asset_transferred", asset_id="asset-general", new_owner_id="exchange"
        ),
    ),
    reject(
        "deliver-unknown-order",
        valid("order_delivered", order_id="order-missing"),
        PRECONDITION,
        "unknown_order",
        "order 'order-missing' does not exist",
    ),
    reject(
        "deliver-by-buyer",
        valid("order_delivered", author="agency-b"),
        FORBIDDEN,
        "not_seller",
        "only the seller 'agency-a' delivers",
    ),
    reject(
        "deliver-twice",
        valid("order_delivered"),
        PRECONDITION,
        "wrong_trade_state",
        "order 'order-1' is delivered; cannot deliver",
        setup=deliver,
    ),
    reject(
        "settle-unknown-order",
        valid("order_settled", order_id="order-missing"),
        PRECONDITION,
        "unknown_order",
        "order 'order-missing' does not exist",
    ),
    reject(
        "settle-by-seller",
        valid("order_settled", author="agency-a"),
        FORBIDDEN,
        "not_exchange",
        "only the listing exchange 'exchange' settles",
    ),
    reject(
        "settle-before-delivery",
        valid("order_settled"),
        PRECONDITION,
        "wrong_trade_state",
        "order 'order-1' is ordered; cannot settle",
    ),
    reject(
        "dispute-unknown-order",
        valid("dispute_opened", order_id="order-missing"),
        PRECONDITION,
        "unknown_order",
        "order 'order-missing' does not exist",
    ),
    reject(
        "dispute-by-exchange",
        valid("dispute_opened", author="exchange"),
        FORBIDDEN,
        "not_a_party",
        "only the buyer or the seller of order 'order-1' disputes it",
    ),
    reject(
        "dispute-by-regulator",
        valid("dispute_opened", author="regulator"),
        FORBIDDEN,
        "not_a_party",
        "only the buyer or the seller",
    ),
    reject(
        "dispute-while-disputed",
        valid("dispute_opened", author="agency-a"),
        PRECONDITION,
        "wrong_trade_state",
        "order 'order-1' is disputed; cannot open a dispute",
        setup=open_dispute,
    ),
    reject(
        "dispute-after-resolution",
        valid("dispute_opened"),
        PRECONDITION,
        "wrong_trade_state",
        "order 'order-1' is resolved; cannot open a dispute",
        setup=dispute_and_resolve,
    ),
    reject(
        "resolve-unknown-dispute",
        valid("dispute_resolved", dispute_id="dispute-missing"),
        PRECONDITION,
        "unknown_dispute",
        "dispute 'dispute-missing' does not exist",
    ),
    reject(
        "resolve-twice",
        valid("dispute_resolved"),
        PRECONDITION,
        "already_resolved",
        "dispute 'dispute-1' is resolved",
        setup=dispute_and_resolve,
    ),
    # governance
    reject(
        "governance-malformed-change",
        governance_with(b"\xff", lambda c, change_bytes: c.approvals(change_bytes, QUORUM)),
        INVALID,
        "malformed",
        "governance change is not a valid GovernanceChange message",
    ),
    reject(
        "governance-change-unknown-field",
        governance_with(
            ROLE_CHANGE.SerializeToString(deterministic=True) + UNKNOWN_FIELD,
            lambda c, change_bytes: c.approvals(change_bytes, QUORUM),
        ),
        INVALID,
        "unknown_fields",
        "governance change holds fields that GovernanceChange does not define",
    ),
    reject(
        "governance-change-non-canonical",
        governance_with(
            # the change before the proposal nonce: fields out of number order
            change(role_changed=ROLE_CHANGE.role_changed, proposal_nonce=0).SerializeToString()
            + change(proposal_nonce=7).SerializeToString(),
            lambda c, change_bytes: c.approvals(change_bytes, QUORUM),
        ),
        INVALID,
        "non_canonical",
        "governance change is not the canonical encoding of its GovernanceChange",
    ),
    reject(
        "governance-change-undefined-role",
        governed(change(role_changed={"member_id": "agency-b", "role": 77})),
        INVALID,
        "bad_enum",
        "role_changed.role holds 77, not a defined Role value",
    ),
    reject(
        "governance-empty-change",
        governed(change()),
        INVALID,
        "missing_payload",
        "governance change names no change",
    ),
    reject(
        "governance-replayed",
        governed(ROLE_CHANGE),
        DUPLICATE,
        "replayed_governance",
        "this governance change was already applied",
        setup=lambda c, s: c.apply(s, c.govern("regulator", ROLE_CHANGE, QUORUM), SETUP_TIME_MS),
    ),
    reject(
        "governance-approval-by-stranger",
        governed(ROLE_CHANGE, (*QUORUM, STRANGER)),
        FORBIDDEN,
        "unknown_approver",
        "approver 'stranger' is not a member",
    ),
    reject(
        "governance-approval-by-removed-member",
        governed(ROLE_CHANGE, ("agency-a", "agency-b", "exchange", "auditor")),
        FORBIDDEN,
        "unknown_approver",
        "approver 'auditor' is not a member",
        setup=remove("auditor"),
    ),
    reject(
        "governance-approval-event-domain",
        governance_with(
            ROLE_CHANGE.SerializeToString(),
            lambda c, change_bytes: [
                ledger_pb2.Approval(
                    approver=c[m].author,
                    signature=c[m].key.sign(
                        crypto.DOMAIN_EVENT, rules.governance_sign_bytes(c.chain_id, change_bytes)
                    ),
                )
                for m in QUORUM
            ],
        ),
        INVALID,
        "bad_approval",
        "approval by 'agency-a' does not verify",
    ),
    reject(
        "governance-approval-other-chain",
        governance_with(
            ROLE_CHANGE.SerializeToString(),
            lambda c, change_bytes: Consortium(chain_id="other-chain").approvals(
                change_bytes, QUORUM
            ),
        ),
        INVALID,
        "bad_approval",
        "does not verify",
    ),
    reject(
        "governance-approval-unknown-key",
        governance_with(
            ROLE_CHANGE.SerializeToString(),
            lambda c, change_bytes: [
                *c.approvals(change_bytes, QUORUM[:3]),
                *c.approvals(
                    change_bytes, [Member("regulator", "regulator", signing_key("regulator/2"))]
                ),
            ],
        ),
        INVALID,
        "bad_approval",
        "approval by 'regulator' does not verify",
    ),
    reject(
        "governance-approved-twice",
        governed(ROLE_CHANGE, ("agency-a", "agency-b", "exchange", "agency-a")),
        INVALID,
        "duplicate_items",
        "a member approved twice",
    ),
    reject(
        "governance-without-quorum",
        governed(ROLE_CHANGE, ("agency-a", "agency-b", "exchange")),
        FORBIDDEN,
        "no_quorum",
        "3 of 5 members approved; 4 are needed",
    ),
    reject(
        "member-added-without-id",
        governed(change(member_added={"role": ledger_pb2.ROLE_AGENCY, "public_key": bytes(32)})),
        INVALID,
        "missing_field",
        "member_id is required",
    ),
    reject(
        "member-added-bad-id",
        governed(change(member_added={"member_id": "bad id", "role": ledger_pb2.ROLE_AGENCY})),
        INVALID,
        "bad_identifier",
        "member_id 'bad id'",
    ),
    reject(
        "member-added-exists",
        governed(
            change(
                member_added={
                    "member_id": "agency-b",
                    "role": ledger_pb2.ROLE_AGENCY,
                    "public_key": signing_key("agency-c").public_key,
                }
            )
        ),
        DUPLICATE,
        "member_exists",
        "member 'agency-b' already exists",
    ),
    reject(
        "member-added-without-role",
        governed(
            change(member_added={"member_id": "agency-c", "public_key": bytes(32)}),
        ),
        INVALID,
        "bad_role",
        "role must be agency, exchange, regulator or auditor",
    ),
    reject(
        "member-added-short-key",
        governed(
            change(
                member_added={
                    "member_id": "agency-c",
                    "role": ledger_pb2.ROLE_AGENCY,
                    "public_key": bytes(31),
                }
            )
        ),
        INVALID,
        "bad_key",
        "a public key is 32 bytes",
    ),
    reject(
        "key-rotated-short-key",
        governed(change(key_rotated={"member_id": "agency-b", "new_public_key": bytes(33)})),
        INVALID,
        "bad_key",
        "a public key is 32 bytes",
    ),
    reject(
        "key-rotated-to-current-key",
        lambda c: c.govern(
            "agency-a",
            change(
                key_rotated={
                    "member_id": "agency-b",
                    "new_public_key": c["agency-b"].key.public_key,
                }
            ),
            QUORUM,
        ),
        DUPLICATE,
        "key_exists",
        "the member already holds this key",
    ),
    reject(
        "key-rotated-retiring-unknown-key",
        governed(
            change(
                key_rotated={
                    "member_id": "agency-b",
                    "new_public_key": signing_key("agency-b/2").public_key,
                    "retired_key_id": bytes(16),
                }
            )
        ),
        PRECONDITION,
        "unknown_key",
        "the key to retire is not the member's",
    ),
    reject(
        "key-rotated-unknown-member",
        governed(
            change(
                key_rotated={
                    "member_id": "stranger",
                    "new_public_key": signing_key("stranger/2").public_key,
                }
            )
        ),
        PRECONDITION,
        "unknown_member",
        "member_id 'stranger' is not an active member",
    ),
    reject(
        "role-changed-unspecified",
        governed(change(role_changed={"member_id": "agency-b"})),
        INVALID,
        "bad_role",
        "role must be agency, exchange, regulator or auditor",
    ),
    reject(
        "role-changed-unknown-member",
        governed(change(role_changed={"member_id": "stranger", "role": ledger_pb2.ROLE_AGENCY})),
        PRECONDITION,
        "unknown_member",
        "member_id 'stranger' is not an active member",
    ),
    reject(
        "member-removed-twice",
        governed(change(member_removed={"member_id": "auditor"}), QUORUM[:3]),
        PRECONDITION,
        "unknown_member",
        "member_id 'auditor' is not an active member",
        setup=remove("auditor"),
    ),
]

# --- governance on the ledger: proposals, approvals, key revocation, thresholds ------------


def change_bytes_of(governance_change: ledger_pb2.GovernanceChange) -> bytes:
    return governance_change.SerializeToString(deterministic=True)


def propose(author: Any, governance_change: ledger_pb2.GovernanceChange) -> SignedMaker:
    return lambda c: c.sign(
        author, "governance_proposed", change=change_bytes_of(governance_change)
    )


def approve(author: Any, governance_change: ledger_pb2.GovernanceChange) -> SignedMaker:
    identifier = rules_governance.proposal_id(change_bytes_of(governance_change))
    return lambda c: c.sign(author, "governance_approved", proposal_id=identifier)


def setup_steps(*steps: tuple[SignedMaker, int]) -> Setup:
    """Apply each (event maker, block time) in order, at the setup height."""

    def run(c: Consortium, s: MemoryState) -> None:
        for make, time_ms in steps:
            c.apply(s, make(c), time_ms, SETUP_HEIGHT)

    return run


def revoke_key(member_id: str, from_height: int) -> Setup:
    def run(c: Consortium, s: MemoryState) -> None:
        revocation = change(
            key_revoked={
                "member_id": member_id,
                "key_id": c[member_id].key.key_id,
                "from_height": from_height,
            },
            proposal_nonce=901,
        )
        c.apply(s, c.govern("agency-a", revocation, QUORUM), SETUP_TIME_MS, SETUP_HEIGHT)

    return run


def thresholds_change(default: tuple[int, int], **by_kind: tuple[int, int]) -> Any:
    return change(
        thresholds_changed={
            "thresholds": {
                "default_threshold": {"numerator": default[0], "denominator": default[1]},
                "by_kind": {k: {"numerator": n, "denominator": d} for k, (n, d) in by_kind.items()},
            }
        }
    )


ADD_AGENCY_C = change(
    member_added={
        "member_id": "agency-c",
        "name": "Agency C",
        "role": ledger_pb2.ROLE_AGENCY,
        "public_key": signing_key("agency-c").public_key,
    }
)
ROLE_CHANGE_2 = change(
    role_changed={"member_id": "agency-b", "role": ledger_pb2.ROLE_REGULATOR}, proposal_nonce=2
)
PROPOSAL_EXPIRY_MS = SETUP_TIME_MS + PROPOSAL_OPEN_MS_MAX

GOVERNANCE_CASES = [
    reject(
        "proposal-without-change",
        event("agency-a", "governance_proposed"),
        INVALID,
        "missing_field",
        "a proposal carries the change it proposes",
    ),
    reject(
        "proposal-malformed-change",
        event("agency-a", "governance_proposed", change=b"\xff"),
        INVALID,
        "malformed",
        "governance change is not a valid GovernanceChange message",
    ),
    reject(
        "proposal-naming-no-change",
        propose("agency-a", change()),
        INVALID,
        "missing_payload",
        "governance change names no change",
    ),
    *(
        reject(
            f"proposal-of-a-validator-change-{kind}",
            propose("agency-a", change(**{kind: {"validator_id": "validator-3"}})),
            INVALID,
            "validator_change_needs_action",
            f"a {kind} change is not proposed on the ledger: collect the members' approvals "
            "off-ledger (`provledger governance draft`, `sign`, `submit`)",
        )
        for kind in validators.CHANGE_KINDS
    ),
    reject(
        "proposal-of-an-impossible-change",
        propose("agency-a", change(member_removed={"member_id": "stranger"})),
        PRECONDITION,
        "unknown_member",
        "member_id 'stranger' is not an active member",
    ),
    reject(
        "proposal-of-an-applied-change",
        propose("agency-a", ROLE_CHANGE),
        DUPLICATE,
        "replayed_governance",
        "this governance change was already applied",
        setup=lambda c, s: c.apply(s, c.govern("regulator", ROLE_CHANGE, QUORUM), SETUP_TIME_MS),
    ),
    reject(
        "proposal-while-open",
        propose("agency-b", ROLE_CHANGE),
        DUPLICATE,
        "proposal_open",
        "of this change is open: approve it",
        setup=setup_steps((propose("agency-a", ROLE_CHANGE), SETUP_TIME_MS)),
    ),
    reject(
        "proposal-again-after-expiry",
        propose("agency-b", ROLE_CHANGE),
        PRECONDITION,
        "proposal_closed",
        "of this change is expired; propose it again with another proposal_nonce",
        setup=setup_steps((propose("agency-a", ROLE_CHANGE), SETUP_TIME_MS)),
        time_ms=PROPOSAL_EXPIRY_MS,
    ),
    reject(
        "approval-bad-proposal-id",
        event("agency-b", "governance_approved", proposal_id=bytes(31)),
        INVALID,
        "bad_proposal_id",
        "a proposal id is 32 bytes (SHA-256)",
    ),
    reject(
        "approval-of-unknown-proposal",
        approve("agency-b", ROLE_CHANGE),
        PRECONDITION,
        "unknown_proposal",
        "no proposal ",
    ),
    reject(
        "approval-twice",
        approve("agency-b", ROLE_CHANGE),
        DUPLICATE,
        "already_approved",
        "'agency-b' already approved proposal",
        setup=setup_steps(
            (propose("agency-a", ROLE_CHANGE), SETUP_TIME_MS),
            (approve("agency-b", ROLE_CHANGE), SETUP_TIME_MS),
        ),
    ),
    reject(
        "approval-by-the-proposer",
        approve("agency-a", ROLE_CHANGE),
        DUPLICATE,
        "already_approved",
        "'agency-a' already approved proposal",
        setup=setup_steps((propose("agency-a", ROLE_CHANGE), SETUP_TIME_MS)),
    ),
    reject(
        "approval-of-expired-proposal",
        approve("agency-b", ROLE_CHANGE),
        PRECONDITION,
        "proposal_expired",
        "is expired: it takes no approvals",
        setup=setup_steps((propose("agency-a", ROLE_CHANGE), SETUP_TIME_MS)),
        time_ms=PROPOSAL_EXPIRY_MS,
    ),
    reject(
        "approval-of-applied-proposal",
        approve("regulator", ROLE_CHANGE),
        PRECONDITION,
        "proposal_applied",
        "is applied: it takes no approvals",
        setup=setup_steps(
            (propose("agency-a", ROLE_CHANGE), SETUP_TIME_MS),
            (approve("agency-b", ROLE_CHANGE), SETUP_TIME_MS),
            (approve("exchange", ROLE_CHANGE), SETUP_TIME_MS),
            (approve("auditor", ROLE_CHANGE), SETUP_TIME_MS),
        ),
    ),
    reject(
        "approval-of-a-change-applied-by-an-action",
        approve("agency-b", ROLE_CHANGE),
        PRECONDITION,
        "proposal_applied",
        "is applied: it takes no approvals",
        setup=setup_steps(
            (propose("agency-a", ROLE_CHANGE), SETUP_TIME_MS),
            (governed(ROLE_CHANGE, author="regulator"), SETUP_TIME_MS),
        ),
    ),
    reject(
        "approval-of-superseded-proposal",
        approve("agency-b", ROLE_CHANGE),
        PRECONDITION,
        "proposal_superseded",
        "is superseded: it takes no approvals",
        setup=setup_steps(
            (propose("agency-a", ROLE_CHANGE), SETUP_TIME_MS),
            (governed(ROLE_CHANGE_2, author="regulator"), SETUP_TIME_MS),
        ),
    ),
    # key revocation
    reject(
        "event-signed-with-a-revoked-key",
        valid("asset_registered"),
        FORBIDDEN,
        "key_revoked",
        "of member 'agency-a' was revoked as compromised after height 1; this block is 2",
        setup=revoke_key("agency-a", from_height=1),
    ),
    reject(
        "approval-signed-with-a-revoked-key",
        governed(ROLE_CHANGE),
        FORBIDDEN,
        "key_revoked",
        "approval by 'regulator' is signed with key",
        setup=revoke_key("regulator", from_height=0),
    ),
    reject(
        "key-revoked-bad-key-id",
        governed(change(key_revoked={"member_id": "agency-b", "key_id": bytes(15)})),
        INVALID,
        "bad_key_id",
        "a key id is 16 bytes",
    ),
    reject(
        "key-revoked-unknown-key",
        governed(change(key_revoked={"member_id": "agency-b", "key_id": bytes(16)})),
        PRECONDITION,
        "unknown_key",
        "is not a key of member 'agency-b'",
    ),
    reject(
        "key-revoked-unknown-member",
        governed(change(key_revoked={"member_id": "stranger", "key_id": bytes(16)})),
        PRECONDITION,
        "unknown_member",
        "member_id 'stranger' is not an active member",
    ),
    reject(
        "key-revoked-reason-too-long",
        lambda c: c.govern(
            "agency-a",
            change(
                key_revoked={
                    "member_id": "agency-b",
                    "key_id": c["agency-b"].key.key_id,
                    "reason": TOO_LONG_TEXT,
                }
            ),
            QUORUM,
        ),
        INVALID,
        "text_too_long",
        f"reason exceeds {TEXT_LENGTH_CHARS_MAX} characters",
    ),
    reject(
        "key-revoked-twice",
        lambda c: c.govern(
            "agency-a",
            change(
                key_revoked={
                    "member_id": "agency-b",
                    "key_id": c["agency-b"].key.key_id,
                    "from_height": 7,
                }
            ),
            QUORUM,
        ),
        DUPLICATE,
        "already_revoked",
        "was revoked after height 100",
        setup=revoke_key("agency-b", from_height=100),
    ),
    # thresholds
    reject(
        "thresholds-without-default",
        governed(change(thresholds_changed={"thresholds": {}})),
        INVALID,
        "missing_field",
        "a table of thresholds needs its default_threshold",
    ),
    reject(
        "thresholds-below-a-majority",
        governed(thresholds_change((2, 3), member_removed=(1, 3))),
        INVALID,
        "bad_threshold",
        "member_removed: more than 1/3 of the members would let less than a majority decide",
    ),
    reject(
        "thresholds-unreachable",
        governed(thresholds_change((3, 3))),
        INVALID,
        "bad_threshold",
        "default_threshold: more than 3/3 of the members can never be reached",
    ),
    reject(
        "thresholds-without-denominator",
        governed(thresholds_change((0, 0))),
        INVALID,
        "bad_threshold",
        "the denominator must be 1..1000, got 0",
    ),
    reject(
        "thresholds-of-an-unknown-kind",
        governed(thresholds_change((2, 3), asset_teleported=(2, 3))),
        INVALID,
        "unknown_change_kind",
        "'asset_teleported' is not a kind of governance change",
    ),
    reject(
        "governance-under-a-stricter-threshold",
        governed(ROLE_CHANGE),
        FORBIDDEN,
        "no_quorum",
        "4 of 5 members approved; 5 are needed",
        setup=lambda c, s: c.apply(
            s,
            c.govern("agency-a", thresholds_change((2, 3), role_changed=(4, 5)), QUORUM),
            SETUP_TIME_MS,
        ),
    ),
]

# asset_id (or the parents) replaced by a missing asset, or pointing at a retired one
ASSET_KINDS = {
    "asset_derived": "parent_ids",
    "asset_shared": "asset_id",
    "asset_transferred": "asset_id",
    "asset_used": "asset_id",
    "certificate_issued": "asset_id",
    "asset_retired": "asset_id",
    "grant_issued": "asset_id",
    "cross_border_approved": "asset_id",
    "offer_listed": "asset_id",
}


def _asset_state_cases() -> list[Any]:
    cases = []
    for kind, field in ASSET_KINDS.items():
        for asset_id, code, fragment, setup in (
            ("asset-missing", "unknown_asset", "asset 'asset-missing' does not exist", None),
            (
                "asset-important",
                "asset_retired",
                "asset 'asset-important' has been retired",
                retire("asset-important"),
            ),
        ):
            value = [asset_id] if field == "parent_ids" else asset_id
            overrides: dict[str, Any] = {field: value}
            if kind == "asset_derived":
                overrides["classification"] = CORE
            cases.append(
                reject(
                    f"{kind}-{code}",
                    valid(kind, **overrides),
                    PRECONDITION,
                    code,
                    fragment,
                    setup=setup,
                )
            )
    cases.append(
        reject(
            "order_placed-asset_retired",
            valid("order_placed"),
            PRECONDITION,
            "asset_retired",
            "asset 'asset-general' has been retired",
            setup=retire("asset-general"),
        )
    )
    return cases


ALL_CASES = (
    ENVELOPE_CASES + PAYLOAD_FORMAT_CASES + RULE_CASES + GOVERNANCE_CASES + _asset_state_cases()
)


@pytest.mark.parametrize("case", ALL_CASES)
def test_rejection_changes_nothing(case: Case, consortium: Consortium, state: MemoryState):
    if case.setup is not None:
        case.setup(consortium, state)
    signed = case.make(consortium)
    before = state.snapshot()
    with pytest.raises(Rejected) as raised:
        consortium.apply(state, signed, case.time_ms, case.height)
    assert (raised.value.code, raised.value.kind) == (case.code, case.kind), raised.value
    assert case.fragment in raised.value.reason
    assert state.snapshot() == before


def test_unknown_payload_kind_is_refused():
    """Every payload of the current schema has its checks; a payload a newer schema adds is
    refused until this node learns it. No Event of this schema reaches that branch, so the
    check is called directly."""
    with pytest.raises(Rejected) as raised:
        events._check_payload_fields("asset_teleported", ledger_pb2.AssetRetired())
    assert (raised.value.code, raised.value.kind) == ("unknown_payload", INVALID)
    assert "'asset_teleported' is not supported" in raised.value.reason


def test_every_code_in_the_sources_is_covered():
    """Each rejection code written literally in events.py or the rules has a case above."""
    written: set[str] = set()
    for module in (events, rules, rules_governance):
        source = Path(module.__file__).read_text()
        written |= set(
            re.findall(r'(?:invalid|forbidden|precondition|duplicate)\(\s*"(\w+)"', source)
        )
    covered = {p.values[0].code for p in ALL_CASES if not p.marks} | {"unknown_payload"}
    assert written, "no rejection codes found in the sources"
    assert written - covered == set()


def test_bad_signature_is_not_checked_twice_when_told_so(consortium, state):
    """verify_signature=False skips only the Ed25519 check (for events checked on arrival)."""
    signed = _with_signature(valid("asset_registered"), lambda c, body: bytes(64))(consortium)
    decoded = consortium.decode(signed)
    with pytest.raises(Rejected):
        rules.apply_event(state, decoded, BLOCK_TIME_MS, height=1)
    assert rules.apply_event(state, decoded, BLOCK_TIME_MS, height=1, verify_signature=False)


# --- accepted events -----------------------------------------------------------------------

# What must already be true for VALID[kind] to be accepted in the scene.
HAPPY_SETUPS: dict[str, Setup] = {"order_settled": deliver, "dispute_resolved": open_dispute}


def _load(state: MemoryState, kind: str, record_id: str) -> Any:
    record = state.load(kind, record_id)
    assert record is not None, f"no {kind} {record_id!r}"
    return record


@pytest.mark.parametrize("kind", sorted(VALID))
def test_every_kind_is_accepted(kind: str, consortium: Consortium, state: MemoryState):
    if kind in HAPPY_SETUPS:
        HAPPY_SETUPS[kind](consortium, state)
    author, fields = VALID[kind]
    signed = consortium.sign(author, kind, **fields)
    before = state.snapshot()
    writes = consortium.apply(state, signed, BLOCK_TIME_MS)
    nonce = consortium.decode(signed).event.nonce
    assert writes[-1] == Write(kind="nonce", record_id=author, nonce=nonce)
    assert state.nonce_used(author, nonce)
    assert state.snapshot() != before


@pytest.mark.parametrize("kind", [*sorted(VALID), "governance"])
def test_auditor_authors_nothing(kind: str, consortium: Consortium, state: MemoryState):
    if kind == "governance":
        signed = consortium.govern("auditor", ROLE_CHANGE, QUORUM)
    else:
        signed = consortium.sign("auditor", kind, **VALID[kind][1])
    before = state.snapshot()
    with pytest.raises(Rejected) as raised:
        consortium.apply(state, signed, BLOCK_TIME_MS)
    assert (raised.value.code, raised.value.kind) == ("wrong_role", FORBIDDEN)
    assert "auditors only read" in raised.value.reason
    assert state.snapshot() == before


def test_registration_records_owner_and_origin(consortium: Consortium, state: MemoryState):
    signed = consortium.sign("agency-a", "asset_registered", **VALID_REGISTRATION)
    consortium.apply(state, signed, BLOCK_TIME_MS)
    asset = _load(state, "asset", "asset-new")
    assert asset.owner_id == "agency-a"
    assert asset.classification == GENERAL
    assert asset.content_digest == digest("new")
    assert asset.origin_event_id == events.event_id(signed.body)
    assert not asset.parent_ids and not asset.activity and not asset.retired


def test_exchange_may_register(consortium: Consortium, state: MemoryState):
    consortium.apply(state, valid("asset_registered", author="exchange")(consortium), BLOCK_TIME_MS)
    assert _load(state, "asset", "asset-new").owner_id == "exchange"


# lineage


@pytest.mark.parametrize(
    ("parents", "classification"),
    [
        (["asset-general"], GENERAL),
        (["asset-general"], CORE),  # higher than the parent is fine
        (["asset-general", "asset-important"], IMPORTANT),  # equal to the highest parent
        (["asset-general", "asset-important"], CORE),
        (["asset-core", "asset-general"], CORE),
    ],
)
def test_derived_classification_at_least_highest_parent(
    parents: list[str], classification: int, consortium: Consortium, state: MemoryState
):
    signed = valid("asset_derived", parent_ids=parents, classification=classification)(consortium)
    consortium.apply(state, signed, BLOCK_TIME_MS)
    derived = _load(state, "asset", "asset-derived")
    assert list(derived.parent_ids) == parents
    assert derived.activity == "cleaning"
    assert derived.classification == classification
    assert derived.origin_event_id == events.event_id(signed.body)


def test_grantee_derives_under_derive_grant(consortium: Consortium, state: MemoryState):
    signed = valid("asset_derived", author="agency-b", grant_ids=["grant-derive"])(consortium)
    consortium.apply(state, signed, BLOCK_TIME_MS)
    assert _load(state, "asset", "asset-derived").owner_id == "agency-b"


def test_derivation_finds_the_derive_grant_among_several(consortium, state):
    """A named grant that covers the parent but not deriving does not hide a later one that
    does."""
    signed = valid("asset_derived", author="agency-b", grant_ids=["grant-read", "grant-derive"])
    consortium.apply(state, signed(consortium), BLOCK_TIME_MS)
    assert _load(state, "asset", "asset-derived").owner_id == "agency-b"


def test_derivation_mixing_own_and_granted_parents(consortium: Consortium, state: MemoryState):
    own = valid("asset_registered", author="agency-b", asset_id="asset-b")
    consortium.apply(state, own(consortium), SETUP_TIME_MS)
    signed = valid(
        "asset_derived",
        author="agency-b",
        parent_ids=["asset-b", "asset-general"],
        grant_ids=["grant-derive"],
        activity="fusion",
    )(consortium)
    consortium.apply(state, signed, BLOCK_TIME_MS)
    assert list(_load(state, "asset", "asset-derived").parent_ids) == ["asset-b", "asset-general"]


def test_a_no_cross_border_grant_binds_every_asset_derived_under_it(
    consortium: Consortium, state: MemoryState
):
    """Found as a rule bug (issue 10): an asset derived under a grant that forbids moving the
    parent abroad could itself be shared to Hong Kong. The condition now binds the derived
    asset, and everything derived from that in turn, for shares and transfers alike."""
    _do(
        consortium,
        state,
        "agency-a",
        "grant_issued",
        grant_id="grant-derive-domestic",
        asset_id="asset-general",
        grantee_id="agency-b",
        purposes=["research"],
        operations=[DERIVE],
        expires_at_ms=EXPIRY_MS,
        no_cross_border=True,
    )
    derive = valid("asset_derived", author="agency-b", grant_ids=["grant-derive-domestic"])
    consortium.apply(state, derive(consortium), BLOCK_TIME_MS)
    derived = _load(state, "asset", "asset-derived")
    assert derived.no_cross_border_by == "grant grant-derive-domestic"
    again = event(
        "agency-b",
        "asset_derived",
        asset_id="asset-derived-again",
        parent_ids=["asset-derived"],
        activity="modelling",
        content_digest=digest("again"),
        classification=GENERAL,
    )
    consortium.apply(state, again(consortium), BLOCK_TIME_MS)
    assert _load(state, "asset", "asset-derived-again").no_cross_border_by == (
        "asset asset-derived"
    )
    moves = {
        "share": lambda asset_id: event(
            "agency-b",
            "asset_shared",
            asset_id=asset_id,
            recipient_id="exchange",
            destination_region="hk",
        ),
        "transfer": lambda asset_id: event(
            "agency-b",
            "asset_transferred",
            asset_id=asset_id,
            new_owner_id="exchange",
            destination_region="hk",
        ),
    }
    for asset_id, by in (
        ("asset-derived", "grant grant-derive-domestic"),
        ("asset-derived-again", "asset asset-derived"),
    ):
        for move in moves.values():
            with pytest.raises(Rejected) as raised:
                consortium.apply(state, move(asset_id)(consortium), BLOCK_TIME_MS)
            assert raised.value.code == "cross_border_forbidden"
            assert f"kept in it by {by}" in raised.value.reason
    # Within the country the derived asset moves freely.
    consortium.apply(
        state,
        event("agency-b", "asset_shared", asset_id="asset-derived", recipient_id="exchange")(
            consortium
        ),
        BLOCK_TIME_MS,
    )


def test_an_asset_derived_under_an_unrestricted_grant_may_go_abroad(
    consortium: Consortium, state: MemoryState
):
    derive = valid("asset_derived", author="agency-b", grant_ids=["grant-derive"])
    consortium.apply(state, derive(consortium), BLOCK_TIME_MS)
    assert _load(state, "asset", "asset-derived").no_cross_border_by == ""
    share = event(
        "agency-b",
        "asset_shared",
        asset_id="asset-derived",
        recipient_id="exchange",
        destination_region="hk",
    )
    consortium.apply(state, share(consortium), BLOCK_TIME_MS)  # general data: no approval needed
    assert "exchange" in _load(state, "asset", "asset-derived").holder_ids


# shares, transfers, uses


def test_owner_shares_and_holders_accumulate_once(consortium: Consortium, state: MemoryState):
    for recipient in ("agency-b", "exchange", "agency-b"):
        consortium.apply(
            state, valid("asset_shared", recipient_id=recipient)(consortium), BLOCK_TIME_MS
        )
    assert list(_load(state, "asset", "asset-general").holder_ids) == ["agency-b", "exchange"]


def test_grantee_shares_under_share_grant(consortium: Consortium, state: MemoryState):
    signed = valid(
        "asset_shared", author="agency-b", recipient_id="exchange", grant_id="grant-share"
    )
    consortium.apply(state, signed(consortium), BLOCK_TIME_MS)
    assert "exchange" in _load(state, "asset", "asset-general").holder_ids


def test_transfer_changes_owner_and_moves_rights(consortium: Consortium, state: MemoryState):
    consortium.apply(state, valid("asset_transferred")(consortium), BLOCK_TIME_MS)
    assert _load(state, "asset", "asset-general").owner_id == "agency-b"
    # the new owner needs no grant any more; the old one now does
    consortium.apply(state, valid("asset_used", grant_id="")(consortium), BLOCK_TIME_MS)
    with pytest.raises(Rejected) as raised:
        consortium.apply(state, valid("asset_retired")(consortium), BLOCK_TIME_MS)
    assert raised.value.code == "not_owner"


@pytest.mark.parametrize("author", ["agency-a", "agency-b"])
def test_use_writes_nothing_but_the_nonce(author: str, consortium: Consortium, state):
    grant_id = "" if author == "agency-a" else "grant-read"
    writes = consortium.apply(
        state, valid("asset_used", author=author, grant_id=grant_id)(consortium), BLOCK_TIME_MS
    )
    assert [w.kind for w in writes] == ["nonce"]


def test_retired_asset_is_kept_but_frozen(consortium: Consortium, state: MemoryState):
    consortium.apply(state, valid("asset_retired")(consortium), BLOCK_TIME_MS)
    assert _load(state, "asset", "asset-general").retired
    with pytest.raises(Rejected) as raised:
        consortium.apply(state, valid("asset_used")(consortium), BLOCK_TIME_MS)
    assert raised.value.code == "asset_retired"


# certificates


def test_certificate_issue_and_revoke(consortium: Consortium, state: MemoryState):
    signed = valid("certificate_issued")(consortium)
    consortium.apply(state, signed, BLOCK_TIME_MS)
    record = _load(state, "certificate", "cert-new")
    assert (record.issuer_id, record.event_id, record.revoked) == (
        "regulator",
        events.event_id(signed.body),
        False,
    )
    consortium.apply(state, valid("certificate_revoked", certificate_id="cert-new")(consortium), 1)
    assert _load(state, "certificate", "cert-new").revoked


# grants: expiry at block time and revocation


@pytest.mark.parametrize(
    ("time_ms", "accepted"),
    [(EXPIRY_MS - 1, True), (EXPIRY_MS, False), (EXPIRY_MS + 1, False)],
    ids=["just-before-expiry", "at-expiry", "after-expiry"],
)
def test_grant_expiry_is_judged_at_block_time(
    time_ms: int, accepted: bool, consortium: Consortium, state: MemoryState
):
    signed = valid("asset_used")(consortium)
    if accepted:
        consortium.apply(state, signed, time_ms)
        return
    before = state.snapshot()
    with pytest.raises(Rejected) as raised:
        consortium.apply(state, signed, time_ms)
    assert (raised.value.code, raised.value.kind) == ("grant_expired", FORBIDDEN)
    assert state.snapshot() == before


def test_grant_issue_records_grantor(consortium: Consortium, state: MemoryState):
    signed = valid("grant_issued")(consortium)
    consortium.apply(state, signed, BLOCK_TIME_MS)
    record = _load(state, "grant", "grant-new")
    assert record.grantor_id == "agency-a"
    assert record.event_id == events.event_id(signed.body)
    assert list(record.grant.operations) == [READ, COMPUTE]
    consortium.apply(
        state,
        valid("asset_used", author="exchange", grant_id="grant-new", operation=COMPUTE)(consortium),
        BLOCK_TIME_MS,
    )


@pytest.mark.parametrize("revoker", ["agency-a", "regulator"])
def test_revocation_ends_a_grant(revoker: str, consortium: Consortium, state: MemoryState):
    consortium.apply(state, valid("asset_used")(consortium), BLOCK_TIME_MS)
    consortium.apply(state, valid("grant_revoked", author=revoker)(consortium), BLOCK_TIME_MS + 1)
    record = _load(state, "grant", "grant-read")
    assert record.revoked and record.revoked_at_ms == BLOCK_TIME_MS + 1
    with pytest.raises(Rejected) as raised:
        consortium.apply(state, valid("asset_used")(consortium), BLOCK_TIME_MS + 2)
    assert raised.value.code == "grant_revoked"


# cross-border moves


@pytest.mark.parametrize("kind", ["asset_shared", "asset_transferred"])
def test_general_data_goes_abroad_without_approval(kind, consortium, state):
    consortium.apply(state, valid(kind, destination_region="hk")(consortium), BLOCK_TIME_MS)


def test_an_approval_is_still_recorded_but_moves_nothing_abroad(consortium, state):
    """A cross_border_approved event is still a valid record (old events decode and apply);
    moving important or core data abroad needs a security assessment (ADR 019)."""
    consortium.apply(state, valid("cross_border_approved")(consortium), BLOCK_TIME_MS)
    record = _load(state, "approval", "approval-new")
    assert record.regulator_id == "regulator"
    signed = valid(
        "asset_shared", asset_id="asset-core", destination_region="mo", approval_id="approval-new"
    )(consortium)
    with pytest.raises(Rejected) as raised:
        consortium.apply(state, signed, BLOCK_TIME_MS)
    assert raised.value.code == "assessment_required"


def test_sensitive_data_stays_home_without_approval(consortium, state):
    consortium.apply(state, valid("asset_shared", asset_id="asset-core")(consortium), BLOCK_TIME_MS)


def test_no_cross_border_grant_still_allows_sharing_at_home(consortium, state):
    signed = valid(
        "asset_shared", author="agency-b", recipient_id="exchange", grant_id="grant-no-cross-border"
    )(consortium)
    consortium.apply(state, signed, BLOCK_TIME_MS)


# trade


def _order(state: MemoryState) -> Any:
    return _load(state, "order", "order-1")


def test_trade_life_cycle(consortium: Consortium, state: MemoryState):
    offer = _load(state, "offer", "offer-1")
    order = _order(state)
    assert offer.exchange_id == "exchange"
    assert (order.buyer_id, order.seller_id, order.exchange_id) == (
        "agency-b",
        "agency-a",
        "exchange",
    )
    assert order.status == state_pb2.ORDER_STATUS_ORDERED
    assert list(order.event_ids) == [offer.event_id, order.event_ids[1]]

    asset_id = offer.offer.asset_id
    assert "agency-b" not in _load(state, "asset", asset_id).holder_ids
    delivered = valid("order_delivered")(consortium)
    consortium.apply(state, delivered, BLOCK_TIME_MS)
    assert _order(state).status == state_pb2.ORDER_STATUS_DELIVERED
    assert _order(state).delivery_digest == digest("delivery")
    # the buyer now holds a copy of what it bought
    assert list(_load(state, "asset", asset_id).holder_ids).count("agency-b") == 1

    settled = valid("order_settled")(consortium)
    consortium.apply(state, settled, BLOCK_TIME_MS + 1)
    order = _order(state)
    assert order.status == state_pb2.ORDER_STATUS_SETTLED
    assert list(order.event_ids[2:]) == [
        events.event_id(delivered.body),
        events.event_id(settled.body),
    ]
    # a settled trade cannot be delivered or settled again
    for kind in ("order_delivered", "order_settled"):
        with pytest.raises(Rejected) as raised:
            consortium.apply(state, valid(kind)(consortium), BLOCK_TIME_MS + 2)
        assert raised.value.code == "wrong_trade_state"


def test_list_offer_and_order_it(consortium: Consortium, state: MemoryState):
    consortium.apply(state, valid("offer_listed")(consortium), BLOCK_TIME_MS)
    consortium.apply(
        state,
        event("agency-b", "order_placed", order_id="o-2", offer_id="offer-new")(consortium),
        1,
    )
    order = _load(state, "order", "o-2")
    assert (order.seller_id, order.buyer_id) == ("agency-a", "agency-b")


@pytest.mark.parametrize(
    ("opener", "before_dispute"),
    [
        ("agency-b", None),
        ("agency-a", None),
        ("agency-b", deliver),
        ("agency-a", "settled"),
    ],
    ids=["buyer-ordered", "seller-ordered", "buyer-delivered", "seller-settled"],
)
def test_dispute_opened_by_a_party_resolved_by_regulator(
    opener: str, before_dispute: Any, consortium: Consortium, state: MemoryState
):
    if before_dispute is not None:
        deliver(consortium, state)
        if before_dispute == "settled":
            _do(consortium, state, "exchange", "order_settled", order_id="order-1")
    status = _order(state).status
    consortium.apply(
        state,
        event(opener, "dispute_opened", dispute_id="dispute-1", order_id="order-1", reason="late")(
            consortium
        ),
        BLOCK_TIME_MS,
    )
    order = _order(state)
    dispute = _load(state, "dispute", "dispute-1")
    assert order.status == state_pb2.ORDER_STATUS_DISPUTED
    assert order.status_before_dispute == status
    assert order.dispute_id == "dispute-1"
    assert (dispute.opened_by, dispute.order_id, dispute.resolved) == (opener, "order-1", False)

    consortium.apply(state, valid("dispute_resolved")(consortium), BLOCK_TIME_MS + 1)
    dispute = _load(state, "dispute", "dispute-1")
    assert dispute.resolved
    assert dispute.outcome == ledger_pb2.DISPUTE_OUTCOME_FOR_BUYER
    assert dispute.resolution == "refund"
    assert _order(state).status == state_pb2.ORDER_STATUS_RESOLVED


# replay protection


def test_replayed_event_is_refused(consortium: Consortium, state: MemoryState):
    signed = valid("asset_registered")(consortium)
    consortium.apply(state, signed, BLOCK_TIME_MS)
    before = state.snapshot()
    with pytest.raises(Rejected) as raised:
        consortium.apply(state, signed, BLOCK_TIME_MS + 1)
    assert (raised.value.code, raised.value.kind) == ("replayed_nonce", DUPLICATE)
    assert state.snapshot() == before


def test_nonces_are_per_author(consortium: Consortium, state: MemoryState):
    nonce = 10_000
    for author, asset_id in (("agency-a", "asset-x"), ("agency-b", "asset-y")):
        signed = valid("asset_registered", author=author, nonce=nonce, asset_id=asset_id)
        consortium.apply(state, signed(consortium), BLOCK_TIME_MS)
    assert state.nonce_used("agency-a", nonce) and state.nonce_used("agency-b", nonce)


# governance


def test_member_added_with_quorum_can_author(consortium: Consortium, state: MemoryState):
    newcomer = Member("agency-c", "agency", signing_key("agency-c"))
    added = change(
        member_added={
            "member_id": "agency-c",
            "name": "Agency C",
            "role": ledger_pb2.ROLE_AGENCY,
            "public_key": newcomer.key.public_key,
        }
    )
    signed = consortium.govern("regulator", added, QUORUM)
    writes = consortium.apply(state, signed, BLOCK_TIME_MS)
    assert [w.kind for w in writes] == ["governance", "member", "governance_subject", "nonce"]
    member = _load(state, "member", "agency-c")
    assert (member.name, member.role) == ("Agency C", ledger_pb2.ROLE_AGENCY)
    assert [k.key_id for k in member.keys] == [newcomer.key.key_id]
    consortium.apply(state, valid("asset_registered", author=newcomer)(consortium), BLOCK_TIME_MS)
    # six members now: four approvals are no longer a quorum, five are
    again = change(role_changed={"member_id": "agency-b", "role": ledger_pb2.ROLE_EXCHANGE})
    with pytest.raises(Rejected) as raised:
        consortium.apply(state, consortium.govern("agency-a", again, QUORUM), BLOCK_TIME_MS)
    assert raised.value.reason == "4 of 6 members approved; 5 are needed"
    consortium.apply(
        state, consortium.govern("agency-a", again, (*QUORUM, newcomer)), BLOCK_TIME_MS
    )


def test_role_change_takes_effect(consortium: Consortium, state: MemoryState):
    demoted = change(role_changed={"member_id": "agency-b", "role": ledger_pb2.ROLE_AUDITOR})
    consortium.apply(state, consortium.govern("agency-a", demoted, QUORUM), BLOCK_TIME_MS)
    assert _load(state, "member", "agency-b").role == ledger_pb2.ROLE_AUDITOR
    with pytest.raises(Rejected) as raised:
        consortium.apply(state, valid("asset_used")(consortium), BLOCK_TIME_MS)
    assert raised.value.code == "wrong_role"


def test_removed_member_leaves_the_quorum(consortium: Consortium, state: MemoryState):
    remove("exchange")(consortium, state)
    assert _load(state, "member", "exchange").removed
    # four active members: a quorum is three
    consortium.apply(
        state,
        consortium.govern("agency-a", ROLE_CHANGE, ("agency-a", "agency-b", "regulator")),
        BLOCK_TIME_MS,
    )


def test_governance_change_applies_once(consortium: Consortium, state: MemoryState):
    consortium.apply(state, consortium.govern("agency-a", ROLE_CHANGE, QUORUM), BLOCK_TIME_MS)
    before = state.snapshot()
    replay = consortium.govern("agency-b", ROLE_CHANGE, QUORUM)  # a new event, the same change
    with pytest.raises(Rejected) as raised:
        consortium.apply(state, replay, BLOCK_TIME_MS)
    assert (raised.value.code, raised.value.kind) == ("replayed_governance", DUPLICATE)
    assert state.snapshot() == before
    # the same change with another proposal nonce is a new change
    fresh = ledger_pb2.GovernanceChange()
    fresh.CopyFrom(ROLE_CHANGE)
    fresh.proposal_nonce = 2
    consortium.apply(state, consortium.govern("agency-b", fresh, QUORUM), BLOCK_TIME_MS)


@pytest.mark.parametrize("retire_old", [True, False], ids=["retire-old-key", "keep-old-key"])
def test_key_rotation(retire_old: bool, consortium: Consortium, state: MemoryState):
    old, new = consortium["agency-a"].key, signing_key("agency-a/2")
    rotation = change(
        key_rotated={
            "member_id": "agency-a",
            "new_public_key": new.public_key,
            "retired_key_id": old.key_id if retire_old else b"",
        }
    )
    consortium.apply(state, consortium.govern("regulator", rotation, QUORUM), BLOCK_TIME_MS)
    key_ids = [k.key_id for k in _load(state, "member", "agency-a").keys]
    assert key_ids == ([new.key_id] if retire_old else [old.key_id, new.key_id])

    registration = {**VALID_REGISTRATION, "asset_id": "asset-new-key"}
    consortium.apply(
        state,
        consortium.sign("agency-a", "asset_registered", key=new, **registration),
        BLOCK_TIME_MS,
    )
    with_old_key = valid("asset_registered", asset_id="asset-old-key")(consortium)
    if not retire_old:
        consortium.apply(state, with_old_key, BLOCK_TIME_MS)
        return
    before = state.snapshot()
    with pytest.raises(Rejected) as raised:
        consortium.apply(state, with_old_key, BLOCK_TIME_MS)
    assert (raised.value.code, raised.value.kind) == ("unknown_key", FORBIDDEN)
    assert state.snapshot() == before
    # nor can the retired key approve governance any more
    approvals = consortium.approvals(ROLE_CHANGE.SerializeToString(), QUORUM)
    signed = consortium.sign(
        "regulator", "governance", change=ROLE_CHANGE.SerializeToString(), approvals=approvals
    )
    with pytest.raises(Rejected) as raised:
        consortium.apply(state, signed, BLOCK_TIME_MS)
    assert (raised.value.code, raised.value.reason) == (
        "bad_approval",
        "approval by 'agency-a' does not verify",
    )


# governance on the ledger (ADR 016)


def _proposal(state: MemoryState, governance_change: ledger_pb2.GovernanceChange) -> Any:
    identifier = rules_governance.proposal_id(change_bytes_of(governance_change))
    return _load(state, "proposal", identifier.hex())


def test_proposal_id_is_a_domain_separated_hash_of_the_change():
    change_bytes = change_bytes_of(ADD_AGENCY_C)
    assert (
        rules_governance.proposal_id(change_bytes)
        == hashlib.sha256(b"provledger/v1/governance-proposal\x00" + change_bytes).digest()
    )
    assert rules_governance.proposal_id(change_bytes) != hashlib.sha256(change_bytes).digest()


def test_a_proposal_applies_with_the_approval_that_reaches_the_threshold(
    consortium: Consortium, state: MemoryState
):
    writes = consortium.apply(state, propose("agency-a", ADD_AGENCY_C)(consortium), BLOCK_TIME_MS)
    assert [w.kind for w in writes] == ["proposal", "nonce"]
    record = _proposal(state, ADD_AGENCY_C)
    assert (record.proposer_id, record.proposed_at_ms, record.subject) == (
        "agency-a",
        BLOCK_TIME_MS,
        "member:agency-c",
    )
    assert record.expires_at_ms == BLOCK_TIME_MS + PROPOSAL_OPEN_MS_MAX
    assert rules_governance.tally(state, record, 2) == (1, 4, 5)
    for approver in ("agency-b", "exchange"):
        writes = consortium.apply(state, approve(approver, ADD_AGENCY_C)(consortium), BLOCK_TIME_MS)
        assert [w.kind for w in writes] == ["proposal", "nonce"]
        assert state.load("member", "agency-c") is None
    record = _proposal(state, ADD_AGENCY_C)
    assert [a.member_id for a in record.approvals] == ["agency-a", "agency-b", "exchange"]
    assert rules_governance.proposal_status(state, record, BLOCK_TIME_MS) == "open"
    # the fourth of five members: more than two thirds; an auditor's approval counts
    approval = approve("auditor", ADD_AGENCY_C)(consortium)
    writes = consortium.apply(state, approval, BLOCK_TIME_MS, height=7)
    assert [w.kind for w in writes] == [
        "proposal",
        "governance",
        "member",
        "governance_subject",
        "nonce",
    ]
    record = _proposal(state, ADD_AGENCY_C)
    assert (record.applied, record.applied_height) == (True, 7)
    assert record.applied_event_id == consortium.decode(approval).event_id
    assert rules_governance.proposal_status(state, record, BLOCK_TIME_MS) == "applied"
    assert _load(state, "member", "agency-c").role == ledger_pb2.ROLE_AGENCY
    newcomer = Member("agency-c", "agency", signing_key("agency-c"))
    consortium.apply(state, valid("asset_registered", author=newcomer)(consortium), BLOCK_TIME_MS)


def test_a_proposal_status_moves_to_expired_and_superseded(
    consortium: Consortium, state: MemoryState
):
    consortium.apply(state, propose("agency-a", ROLE_CHANGE)(consortium), BLOCK_TIME_MS)
    record = _proposal(state, ROLE_CHANGE)
    status = rules_governance.proposal_status
    assert status(state, record, BLOCK_TIME_MS + PROPOSAL_OPEN_MS_MAX - 1) == "open"
    assert status(state, record, BLOCK_TIME_MS + PROPOSAL_OPEN_MS_MAX) == "expired"
    # a change to another subject leaves it open; one to its subject supersedes it
    other = change(role_changed={"member_id": "exchange", "role": ledger_pb2.ROLE_AGENCY})
    consortium.apply(state, consortium.govern("agency-a", other, QUORUM), BLOCK_TIME_MS)
    assert status(state, record, BLOCK_TIME_MS) == "open"
    consortium.apply(state, consortium.govern("agency-a", ROLE_CHANGE_2, QUORUM), BLOCK_TIME_MS)
    assert status(state, record, BLOCK_TIME_MS) == "superseded"


def test_a_proposal_applies_at_once_when_its_proposer_is_enough():
    consortium = Consortium(member_roles={"agency-a": "agency"})
    state = consortium.state()
    writes = consortium.apply(state, propose("agency-a", ADD_AGENCY_C)(consortium), BLOCK_TIME_MS)
    assert [w.kind for w in writes][:3] == ["proposal", "governance", "member"]
    assert _proposal(state, ADD_AGENCY_C).applied


def test_approvals_of_removed_members_no_longer_count(consortium: Consortium, state: MemoryState):
    for make in (propose("agency-a", ROLE_CHANGE), approve("agency-b", ROLE_CHANGE)):
        consortium.apply(state, make(consortium), BLOCK_TIME_MS)
    consortium.apply(state, approve("exchange", ROLE_CHANGE)(consortium), BLOCK_TIME_MS)
    remove("exchange")(consortium, state)
    record = _proposal(state, ROLE_CHANGE)
    # four active members: three are needed, and the exchange's approval is gone
    assert rules_governance.tally(state, record, 2) == (2, 3, 4)
    consortium.apply(state, approve("regulator", ROLE_CHANGE)(consortium), BLOCK_TIME_MS)
    assert _load(state, "member", "agency-b").role == ledger_pb2.ROLE_EXCHANGE


def test_approvals_signed_with_a_key_revoked_before_them_do_not_count(
    consortium: Consortium, state: MemoryState
):
    consortium.apply(state, propose("agency-a", ROLE_CHANGE)(consortium), BLOCK_TIME_MS, height=3)
    consortium.apply(state, approve("agency-b", ROLE_CHANGE)(consortium), BLOCK_TIME_MS, height=5)
    record = _proposal(state, ROLE_CHANGE)
    assert rules_governance.tally(state, record, 6)[0] == 2
    revoke_key("agency-b", from_height=4)(consortium, state)
    assert rules_governance.tally(state, record, 6)[0] == 1
    revoke_key("agency-a", from_height=3)(consortium, state)  # its proposal was at height 3
    assert rules_governance.tally(state, record, 6)[0] == 1


def test_a_revoked_key_signs_until_its_height_and_auditors_see_it(
    consortium: Consortium, state: MemoryState
):
    key_id = consortium["agency-b"].key.key_id
    revocation = change(
        key_revoked={
            "member_id": "agency-b",
            "key_id": key_id,
            "from_height": 10,
            "reason": "laptop stolen",
        }
    )
    signed = consortium.govern("agency-a", revocation, QUORUM)
    consortium.apply(state, signed, BLOCK_TIME_MS, height=8)
    (key,) = _load(state, "member", "agency-b").keys
    assert (key.key_id, key.revoked, key.revoked_after_height) == (key_id, True, 10)
    assert key.revocation_event_id == consortium.decode(signed).event_id
    use = valid("asset_used")
    consortium.apply(state, use(consortium), BLOCK_TIME_MS, height=10)
    before = state.snapshot()
    with pytest.raises(Rejected) as raised:
        consortium.apply(state, use(consortium), BLOCK_TIME_MS, height=11)
    assert (raised.value.code, raised.value.kind) == ("key_revoked", FORBIDDEN)
    assert state.snapshot() == before
    # a rotation gives the member a key that works
    new = signing_key("agency-b/2")
    rotation = change(key_rotated={"member_id": "agency-b", "new_public_key": new.public_key})
    consortium.apply(state, consortium.govern("agency-a", rotation, QUORUM), BLOCK_TIME_MS)
    registration = {**VALID_REGISTRATION, "asset_id": "asset-after-revocation"}
    consortium.apply(
        state,
        consortium.sign("agency-b", "asset_registered", key=new, **registration),
        BLOCK_TIME_MS,
        height=12,
    )


def test_changed_thresholds_decide_the_next_changes(consortium: Consortium, state: MemoryState):
    assert rules_governance.thresholds(state).default_threshold.numerator == 2
    stricter = thresholds_change((1, 2), member_added=(4, 5))
    consortium.apply(state, consortium.govern("agency-a", stricter, QUORUM), BLOCK_TIME_MS)
    assert _load(state, "thresholds", "current") == stricter.thresholds_changed.thresholds
    # member_added: more than 4/5 of 5, all five; role_changed: more than half, three
    with pytest.raises(Rejected) as raised:
        consortium.apply(state, consortium.govern("agency-a", ADD_AGENCY_C, QUORUM), BLOCK_TIME_MS)
    assert raised.value.reason == "4 of 5 members approved; 5 are needed"
    consortium.apply(state, consortium.govern("agency-a", ROLE_CHANGE, QUORUM[:3]), BLOCK_TIME_MS)
    consortium.apply(state, propose("agency-a", ROLE_CHANGE_2)(consortium), BLOCK_TIME_MS)
    assert rules_governance.tally(state, _proposal(state, ROLE_CHANGE_2), 2) == (1, 3, 5)


def test_genesis_thresholds_are_state_from_the_first_block():
    consortium = Consortium()
    document = consortium.genesis_document()
    document["governance_thresholds"] = {"default": "3/4", "member_removed": "1/2"}
    genesis = parse_genesis(canonical_json(document))
    state = MemoryState.from_genesis(genesis)
    table = rules_governance.thresholds(state)
    assert (table.default_threshold.numerator, table.default_threshold.denominator) == (3, 4)
    assert (
        rules_governance.approvals_needed(
            rules_governance.threshold_for(table, "member_removed"), 5
        )
        == 3
    )
    # a genesis without them is the same chain as before: no record, the default
    assert Consortium().state().load("thresholds", "current") is None


@pytest.mark.parametrize(
    ("thresholds", "fragment"),
    [
        ({"default": "1/3"}, "would let less than a majority decide"),
        ({"member_added": "1/1"}, "can never be reached"),
        ({"default": "2/0"}, "the denominator must be 1..1000"),
        ({"default": "two thirds"}, 'must be a fraction such as "2/3"'),
        ({"default": 0.66}, 'must be a fraction such as "2/3"'),
        ({"asset_teleported": "2/3"}, "not a kind of change"),
        (["2/3"], "governance_thresholds must be an object"),
    ],
)
def test_bad_genesis_thresholds_are_refused(thresholds: Any, fragment: str):
    document = Consortium().genesis_document()
    document["governance_thresholds"] = thresholds
    with pytest.raises(Rejected) as raised:
        parse_genesis(canonical_json(document))
    assert raised.value.code == "bad_genesis"
    assert fragment in raised.value.reason


def test_auditors_propose_and_approve_but_author_nothing_else(
    consortium: Consortium, state: MemoryState
):
    consortium.apply(state, propose("auditor", ROLE_CHANGE)(consortium), BLOCK_TIME_MS)
    assert _proposal(state, ROLE_CHANGE).proposer_id == "auditor"


def test_a_validator_change_is_applied_as_an_action_with_its_block_context_never_proposed(
    consortium: Consortium, state: MemoryState
):
    new_key = signing_key("validator-4")
    added = change(
        validator_added={"validator_id": "validator-4", "public_key": new_key.public_key}
    )
    context = ValidatorContext(consortium.genesis.validator_set, 5)

    def run(signed: ledger_pb2.SignedEvent) -> list[Write]:
        writes = rules.apply_event(
            state, consortium.decode(signed), BLOCK_TIME_MS, height=5, validator_context=context
        )
        state.apply(writes)
        return writes

    # Proposed on the ledger, it is refused, in a block or not: the walk of validator sets
    # judges a change from its one event (ADR 016's amendment).
    for attempt in (
        lambda: run(propose("agency-a", added)(consortium)),
        lambda: consortium.apply(state, propose("agency-a", added)(consortium), BLOCK_TIME_MS),
    ):
        with pytest.raises(Rejected) as raised:
            attempt()
        assert raised.value.code == "validator_change_needs_action"
    assert (
        state.load("proposal", rules_governance.proposal_id(change_bytes_of(added)).hex()) is None
    )
    # outside a block, the action cannot apply
    with pytest.raises(Rejected) as raised:
        consortium.apply(state, consortium.govern("agency-a", added, QUORUM), BLOCK_TIME_MS)
    assert raised.value.code == "no_validator_context"
    writes = run(consortium.govern("agency-a", added, QUORUM))
    assert "validators" in [w.kind for w in writes]

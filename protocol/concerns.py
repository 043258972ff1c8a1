"""What an event is about: the one place that says which assets, members, grants and orders
each kind of event concerns.

Two judgements rest on it, and they must agree or the ledger leaks: the store's indexes (an
event joins the history of every asset it concerns; a derivation adds lineage edges; a grant
and an order are listed under the members and the asset they name) and the access policy
(protocol/access.py: a member sees an event that concerns it). Both call `concerns`.

The state-free checks of each kind's fields are in protocol/events.py; what each kind may do
to the state is in protocol/rules.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from provledger.v1 import ledger_pb2

# (kind, record id) -> the record, or None. Records are protobuf messages of the kinds in
# protocol/state.py; they are typed Any here because their fields differ by kind.
Lookup = Callable[[str, str], Any]

# Event kinds of governance, which concerns every member.
GOVERNANCE_KINDS = frozenset(("governance", "governance_proposed", "governance_approved"))
# Payload fields that name a member other than the author (a broker's listing names the
# exchange that settles; a qualification and a mandate name the broker).
_MEMBER_FIELDS = (
    "recipient_id",
    "new_owner_id",
    "grantee_id",
    "seller_id",
    "broker_id",
    "exchange_id",
)


@dataclass(frozen=True)
class Concerns:
    """What one event is about, beyond its author."""

    assets: tuple[str, ...]  # the assets whose history it joins, in this order
    members: tuple[str, ...]  # the members it names (a grantee, a recipient, a trade's parties)
    grant_id: str = ""  # the grant it issues or revokes
    order_id: str = ""  # the order it belongs to
    lineage_edges: tuple[tuple[str, str], ...] = ()  # (parent, child) edges it adds
    everyone: bool = False  # governance concerns every member
    # The assets whose readers may read the event; all of `assets` but for a derivation,
    # which carries the derived asset's name and digest: the parents' owners see that it
    # happened in the lineage, with those details redacted (ADR 007), not in the event.
    readable_through: tuple[str, ...] = ()


def concerns(kind: str, payload: Any, lookup: Lookup) -> Concerns:
    """What an event of `kind` with `payload` is about. `lookup` reads the records it refers
    to (a revoked grant's asset, an order's offer) as they stand when the event is applied
    or later: what an event refers to never changes those fields."""
    if kind in GOVERNANCE_KINDS:
        return Concerns(assets=(), members=(), everyone=True)
    if kind in CASE_KINDS:
        return _case_concerns(kind, payload, lookup)
    members = [value for name in _MEMBER_FIELDS if (value := getattr(payload, name, ""))]
    grant_id = getattr(payload, "grant_id", "") if kind.startswith("grant_") else ""
    order_id = _order_id(kind, payload, lookup)
    assets = _assets(kind, payload, lookup, order_id)
    if order_id or kind == "order_placed":
        members.extend(_order_parties(order_id, lookup))
    members.extend(_market_members(kind, payload, lookup))
    if kind == "transfer_reported":
        members.extend(_customs_members(payload, lookup))
    edges: tuple[tuple[str, str], ...] = ()
    if kind == "asset_derived":
        edges = tuple((parent_id, payload.asset_id) for parent_id in payload.parent_ids)
    unique = tuple(dict.fromkeys(assets))
    return Concerns(
        assets=unique,
        readable_through=unique[:1] if kind == "asset_derived" else unique,
        members=tuple(dict.fromkeys(members)),
        grant_id=grant_id,
        order_id=order_id,
        lineage_edges=edges,
    )


def _order_id(kind: str, payload: Any, lookup: Lookup) -> str:
    if kind == "dispute_resolved":
        dispute = lookup("dispute", payload.dispute_id)
        return dispute.order_id if dispute is not None else ""
    return getattr(payload, "order_id", "") or ""


def _order_parties(order_id: str, lookup: Lookup) -> list[str]:
    order = lookup("order", order_id) if order_id else None
    if order is None:
        return []
    offer = lookup("offer", order.offer_id)
    broker = [offer.broker_id] if offer is not None and offer.broker_id else []
    return [order.buyer_id, order.seller_id, order.exchange_id, *broker]


def _market_members(kind: str, payload: Any, lookup: Lookup) -> list[str]:
    """The members a market event names through the records it refers to: a revoked
    mandate's seller and broker; a delisted offer's seller, broker and settling exchange; the
    member suspended from trading."""
    if kind == "mandate_revoked":
        mandate = lookup("mandate", payload.mandate_id)
        return [mandate.seller_id, mandate.mandate.broker_id] if mandate is not None else []
    if kind == "offer_delisted":
        offer = lookup("offer", payload.offer_id)
        if offer is None:
            return []
        return [m for m in (offer.offer.seller_id, offer.broker_id, offer.exchange_id) if m]
    if kind == "trading_suspended":
        return [payload.member_id]
    return []


def _assets(kind: str, payload: Any, lookup: Lookup, order_id: str) -> list[str]:
    if kind == "asset_derived":
        return [payload.asset_id, *payload.parent_ids]
    if kind == "mandate_granted":  # the assets it names (none: every asset of the seller)
        return list(payload.asset_ids)
    if kind == "mandate_revoked":
        mandate = lookup("mandate", payload.mandate_id)
        return list(mandate.mandate.asset_ids) if mandate is not None else []
    if kind in _CUSTOMS_KINDS:
        return _customs_assets(kind, payload, lookup)
    if hasattr(payload, "asset_id"):
        return [payload.asset_id]
    if kind == "grant_revoked":
        grant = lookup("grant", payload.grant_id)
        return [grant.grant.asset_id] if grant is not None else []
    if kind == "certificate_revoked":
        certificate = lookup("certificate", payload.certificate_id)
        return [certificate.certificate.asset_id] if certificate is not None else []
    offer_id = (
        getattr(payload, "offer_id", "") if kind in ("order_placed", "offer_delisted") else ""
    )
    if order_id:
        order = lookup("order", order_id)
        offer_id = order.offer_id if order is not None else ""
    offer = lookup("offer", offer_id) if offer_id else None
    return [offer.offer.asset_id] if offer is not None else []


# --- supervision (ADR 018) -------------------------------------------------------------------

# Event kinds of complaints and cases: they concern the assets of what the complaints are
# about (so they join those assets' histories and PROV exports), the case's parties, and the
# order (or grant) a complaint is about.
CASE_KINDS = frozenset(
    (
        "complaint_filed",
        "case_opened",
        "case_step_recorded",
        "case_ruled",
        "ruling_appealed",
        "appeal_decided",
    )
)


def _case_concerns(kind: str, payload: Any, lookup: Lookup) -> Concerns:
    """A complaint is about its subject and names its respondent; a case's events are about
    its complaints' subjects and name its parties. A case's complaints and parties never change
    once it is opened, so any later state of the records answers alike."""
    if kind == "complaint_filed":
        subjects = [(payload.subject_kind, payload.subject_id)]
        members = [payload.respondent_id]
    else:
        if kind == "case_opened":
            complaint_ids = list(payload.complaint_ids)
        else:
            case = lookup("case", payload.case_id)
            complaint_ids = list(case.complaint_ids) if case is not None else []
        complaints = [c for c in (lookup("complaint", i) for i in complaint_ids) if c is not None]
        subjects = [(c.complaint.subject_kind, c.complaint.subject_id) for c in complaints]
        members = []
        for complaint in complaints:
            members.extend((complaint.complainant_id, complaint.complaint.respondent_id))
    orders = [
        subject_id
        for subject_kind, subject_id in subjects
        if subject_kind == ledger_pb2.COMPLAINT_SUBJECT_ORDER
    ]
    grants = [
        subject_id
        for subject_kind, subject_id in subjects
        if subject_kind == ledger_pb2.COMPLAINT_SUBJECT_GRANT
    ]
    assets = [
        _subject_asset(subject_kind, subject_id, lookup) for subject_kind, subject_id in subjects
    ]
    unique = tuple(dict.fromkeys(a for a in assets if a))
    return Concerns(
        assets=unique,
        readable_through=unique,
        members=tuple(dict.fromkeys(members)),
        grant_id=grants[0] if grants else "",
        order_id=orders[0] if orders else "",
    )


def _subject_asset(subject_kind: int, subject_id: str, lookup: Lookup) -> str:
    """The asset an order, offer, asset or grant is about; "" if it is not found."""
    if subject_kind == ledger_pb2.COMPLAINT_SUBJECT_ASSET:
        return subject_id
    if subject_kind == ledger_pb2.COMPLAINT_SUBJECT_GRANT:
        grant = lookup("grant", subject_id)
        return grant.grant.asset_id if grant is not None else ""
    offer_id = subject_id
    if subject_kind == ledger_pb2.COMPLAINT_SUBJECT_ORDER:
        order = lookup("order", subject_id)
        offer_id = order.offer_id if order is not None else ""
    offer = lookup("offer", offer_id) if offer_id else None
    return offer.offer.asset_id if offer is not None else ""


# Data customs and the catalogue: an assessment is about its scope's assets and its recipient;
# a report about its assessment's; a catalogue entry about its asset, if it names one (a prefix
# entry joins no history); a reclassification about its asset.
_CUSTOMS_KINDS = frozenset(("security_assessed", "transfer_reported", "data_catalogued"))


def _customs_assets(kind: str, payload: Any, lookup: Lookup) -> list[str]:
    if kind == "security_assessed":
        return list(payload.asset_ids)
    if kind == "transfer_reported":
        record = lookup("assessment", payload.assessment_id)
        return list(record.assessment.asset_ids) if record is not None else []
    return [payload.asset_id] if payload.asset_id else []


def _customs_members(payload: Any, lookup: Lookup) -> list[str]:
    record = lookup("assessment", payload.assessment_id)
    return [record.assessment.recipient_id] if record is not None else []

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

# (kind, record id) -> the record, or None. Records are protobuf messages of the kinds in
# protocol/state.py; they are typed Any here because their fields differ by kind.
Lookup = Callable[[str, str], Any]

# Event kinds of governance, which concerns every member.
GOVERNANCE_KINDS = frozenset(("governance", "governance_proposed", "governance_approved"))
# Payload fields that name a member other than the author.
_MEMBER_FIELDS = ("recipient_id", "new_owner_id", "grantee_id", "seller_id")


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
    members = [value for name in _MEMBER_FIELDS if (value := getattr(payload, name, ""))]
    grant_id = getattr(payload, "grant_id", "") if kind.startswith("grant_") else ""
    order_id = _order_id(kind, payload, lookup)
    assets = _assets(kind, payload, lookup, order_id)
    if order_id or kind == "order_placed":
        members.extend(_order_parties(order_id, lookup))
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
    return [order.buyer_id, order.seller_id, order.exchange_id]


def _assets(kind: str, payload: Any, lookup: Lookup, order_id: str) -> list[str]:
    if kind == "asset_derived":
        return [payload.asset_id, *payload.parent_ids]
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
    offer_id = getattr(payload, "offer_id", "") if kind == "order_placed" else ""
    if order_id:
        order = lookup("order", order_id)
        offer_id = order.offer_id if order is not None else ""
    offer = lookup("offer", offer_id) if offer_id else None
    return [offer.offer.asset_id] if offer is not None else []


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

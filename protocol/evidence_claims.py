"""What an evidence bundle claims, derived from its events: an event bundle names its
event; a lineage bundle, the upstream graph of an asset (every asset's registering or deriving
event, back to registrations); a trade bundle, an order's life cycle and dispute (and the
ruling or appeal decision that refunded it); a case file, a case with what it is about
(protocol/evidence_case.py).

The verifier (protocol/evidence.py) derives the claims from the verified events and requires
them to equal what the bundle states, so no claim can say more than its events show.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from provledger.protocol.errors import Rejected, RejectionKind
from provledger.protocol.events import DecodedEvent
from provledger.v1 import ledger_pb2


class BundleError(Rejected):
    """A bundle that does not verify (or cannot be built): `code` for programs, `reason` for
    people. (Re-exported by protocol/evidence.py, where most of them are raised.)"""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(RejectionKind.INVALID, code, reason)


@dataclass(frozen=True)
class Proven:
    """What a bundle of format 3 proves of its events beyond their bodies, by log index: the
    height and time of each one's block, and its author's role when it signed (in the
    membership replayed from the genesis); and the genesis's rules of supervision. A case
    file's claims read them; the other kinds need only the events."""

    heights: Mapping[int, int]
    times_ms: Mapping[int, int]
    roles: Mapping[int, int]  # ledger_pb2.Role
    appeal_window_ms: int
    appeal_panel_size: int


def _name(enum: Any, value: int, prefix: str) -> str:
    return enum.Name(value).removeprefix(prefix).lower() if value in enum.values() else str(value)


def enum_name(enum: Any, value: int, prefix: str) -> str:
    """An enumeration value as claims write it: its lower-case name without `prefix`, or its
    decimal number if the verifier does not know it."""
    return _name(enum, value, prefix)


def derive_claims(
    kind: str,
    subject_id: str,
    events: Sequence[tuple[int, DecodedEvent]],
    proven: Proven | None = None,
) -> Any:
    """What `events` (log index, event; in log order) show about the subject; a case file
    also reads what the bundle `proven` of them. Raises `BundleError` unless they are exactly
    the events a bundle of `kind` needs."""
    if kind == "case":
        # Imported here: protocol/evidence_case.py builds on this module's trade claims.
        from provledger.protocol.evidence_case import case_claims

        if proven is None:
            raise BundleError("malformed", "a case file is a bundle of format 3 only")
        return case_claims(subject_id, events, proven)
    if kind == "event":
        if len(events) != 1 or events[0][1].event_id.hex() != subject_id:
            raise BundleError("wrong_events", "an event bundle holds its subject event, only")
        log_index, event = events[0]
        author = event.event.author
        return {
            "event_id": subject_id,
            "kind": event.kind,
            "author": author.member_id,
            "key_id": author.key_id.hex(),
            "log_index": log_index,
        }
    if kind == "lineage":
        return _lineage_claims(subject_id, events)
    return trade_claims(subject_id, events)


def _lineage_claims(asset_id: str, events: Sequence[tuple[int, DecodedEvent]]) -> Any:
    """The upstream graph of `asset_id`: every asset's registering or deriving event, back to
    registrations. Each asset is created by exactly one event (the rules refuse a second)."""
    origins: dict[str, tuple[int, DecodedEvent]] = {}
    for log_index, event in events:
        if event.kind not in ("asset_registered", "asset_derived"):
            raise BundleError(
                "wrong_events", f"event {event.event_id.hex()} ({event.kind}) is not in a lineage"
            )
        created = getattr(event.event, event.kind).asset_id
        if created in origins:
            raise BundleError("wrong_events", f"two events create asset {created!r}")
        origins[created] = (log_index, event)
    assets, edges, pending, reached = [], [], [asset_id], {asset_id}
    while pending:
        current = pending.pop()
        if current not in origins:
            raise BundleError(
                "incomplete", f"no event in the bundle registers or derives asset {current!r}"
            )
        log_index, event = origins[current]
        payload = getattr(event.event, event.kind)
        parents = list(payload.parent_ids) if event.kind == "asset_derived" else []
        for parent in parents:
            if parent in origins and origins[parent][0] > log_index:
                raise BundleError("bad_lineage", f"{current!r} is older than its parent {parent!r}")
            edges.append({"parent": parent, "child": current})
            if parent not in reached:
                reached.add(parent)
                pending.append(parent)
        assets.append(
            {
                "asset_id": current,
                "event_id": event.event_id.hex(),
                "creator": event.author_id,
                "classification": _name(
                    ledger_pb2.Classification, payload.classification, "CLASSIFICATION_"
                ),
                "content_digest": payload.content_digest.hex(),
                "activity": payload.activity if event.kind == "asset_derived" else "",
            }
        )
    extra = sorted(set(origins) - reached)
    if extra:
        raise BundleError("wrong_events", f"asset {extra[0]!r} is not upstream of {asset_id!r}")
    return {
        "asset_id": asset_id,
        "assets": sorted(assets, key=lambda a: a["asset_id"]),
        "edges": sorted(edges, key=lambda e: (e["parent"], e["child"])),
    }


# kind: (the statuses it may follow, the status it leads to); the rules' trade life cycle.
_TRADE_STEPS = {
    "order_placed": (("listed",), "ordered"),
    "order_delivered": (("ordered",), "delivered"),
    "order_settled": (("delivered",), "settled"),
    "dispute_opened": (("ordered", "delivered", "settled"), "disputed"),
    "dispute_resolved": (("disputed",), "resolved"),
}
# A ruling or an appeal decision whose remedies refund the order (protocol/rules_cases.py):
# from any status once ordered; nothing follows a refund.
REFUNDING_KINDS = ("case_ruled", "appeal_decided")
_REFUND_FOLLOWS = ("ordered", "delivered", "settled", "disputed", "resolved")
TRADE_KINDS = ("offer_listed", *_TRADE_STEPS)


def refund_of(event: DecodedEvent, order_id: str) -> ledger_pb2.Refund | None:
    """The refund of `order_id` among the remedies of a ruling or an appeal decision, if it
    has one (the rules refuse a second refund of an order)."""
    if event.kind not in REFUNDING_KINDS:
        return None
    for remedy in getattr(event.event, event.kind).remedies:
        if remedy.WhichOneof("remedy") == "refund" and remedy.refund.order_id == order_id:
            return remedy.refund  # type: ignore[no-any-return]
    return None


def trade_claims(order_id: str, events: Sequence[tuple[int, DecodedEvent]]) -> Any:
    """The offer, the order and its life cycle, replayed in log order: the claims of a trade
    bundle, and of each order a case file holds."""
    if not events or events[0][1].kind != "offer_listed":
        raise BundleError("incomplete", "a trade bundle starts with its offer_listed event")
    offer = events[0][1].event.offer_listed
    claims: dict[str, Any] = {
        "order_id": order_id,
        "offer_id": offer.offer_id,
        "asset_id": offer.asset_id,
        "price": offer.price,
        "currency": offer.currency,
        "seller": offer.seller_id,
        # The settling exchange: the one a broker's listing names (ADR 017), else the lister.
        "exchange": offer.exchange_id or events[0][1].author_id,
        "buyer": "",
        "statuses": ["listed"],
        "delivery_digest": "",
        "dispute": None,
    }
    if offer.mandate_id:  # only then, so that claims of offers without brokers stay as they were
        claims["broker"] = events[0][1].author_id
    for _, event in events[1:]:
        payload = getattr(event.event, event.kind)
        refund = refund_of(event, order_id)
        if event.kind == "dispute_resolved":
            concerns = claims["dispute"] is not None
            concerns = concerns and payload.dispute_id == claims["dispute"]["dispute_id"]
        elif event.kind in REFUNDING_KINDS:
            concerns = refund is not None
        else:
            concerns = getattr(payload, "order_id", None) == order_id
            if event.kind == "order_placed":
                concerns = concerns and payload.offer_id == offer.offer_id
        if not concerns or (event.kind not in _TRADE_STEPS and refund is None):
            raise BundleError(
                "wrong_events",
                f"event {event.event_id.hex()} ({event.kind}) is not part of order {order_id!r}",
            )
        follows, status = _TRADE_STEPS.get(event.kind, (_REFUND_FOLLOWS, "refunded"))
        if claims["statuses"][-1] not in follows:
            raise BundleError(
                "bad_trade", f"{event.kind} cannot follow status {claims['statuses'][-1]}"
            )
        author = event.author_id
        parties = {
            "order_placed": author != claims["seller"],
            "order_delivered": author == claims["seller"],
            "order_settled": author == claims["exchange"],
            "dispute_opened": author in (claims["buyer"], claims["seller"]),
        }
        if not parties.get(event.kind, True):
            raise BundleError("bad_trade", f"{event.kind} by {author!r} breaks the trade rules")
        if event.kind == "order_placed":
            claims["buyer"] = author
        elif event.kind == "order_delivered":
            claims["delivery_digest"] = payload.delivery_digest.hex()
        elif event.kind == "dispute_opened":
            claims["dispute"] = {
                "dispute_id": payload.dispute_id,
                "opened_by": author,
                "outcome": "",
                "resolved_by": "",
            }
        elif event.kind == "dispute_resolved":
            outcome = _name(ledger_pb2.DisputeOutcome, payload.outcome, "DISPUTE_OUTCOME_")
            claims["dispute"].update(outcome=outcome, resolved_by=author)
        elif refund is not None:  # only then, so that claims without refunds stay as they were
            claims["refund"] = {
                "case_id": payload.case_id,
                "event_id": event.event_id.hex(),
                "event": event.kind,
                "by": author,
                "amount": refund.amount,
                "currency": refund.currency,
                "reference": refund.reference,
            }
        claims["statuses"].append(status)
    if len(claims["statuses"]) < 2:
        raise BundleError("incomplete", f"the bundle lacks the order_placed event of {order_id!r}")
    return claims


# --- the result --------------------------------------------------------------------------

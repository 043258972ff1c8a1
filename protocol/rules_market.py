"""The rules of the market's supervision (ADR 017): brokers qualified by a regulator, sellers'
mandates to them, listings by a broker under a mandate, delistings, and suspensions from
trading. Dispatched to by protocol/rules.py; the offer and order rules that call these checks
are in rules_trade.py.

- a regulator qualifies a member whose role is broker, until an expiry; the latest
  qualification of a broker stands (kind "broker", by broker id);
- a seller (an agency or exchange) mandates a qualified broker to list its assets (those
  named, which it must own; none named: every asset it owns) at no less than a price floor,
  until an expiry; the seller or a regulator revokes it;
- a broker lists an offer for the seller under a live mandate of that seller to that broker
  that covers the asset, at no less than the floor, while its qualification holds, naming
  the active exchange that settles the trade (`broker_listing`);
- an offer is delisted by its seller, the member who listed it, or a regulator; no order is
  placed on it afterwards (a ruling's remedy delists the same way, writing the record);
- a regulator suspends an active member from trading until a time, with a reason; a
  suspension that ends later is never shortened by one that ends earlier. While suspended, a
  member's trade events are refused `suspended` (`check_not_suspended`); a suspension a
  ruling imposed and an appeal lifted (`lifted`) suspends no one. Delisting is not a trade
  event: a suspended member may still withdraw its offers.
"""

from __future__ import annotations

from provledger.protocol.errors import duplicate, forbidden, precondition
from provledger.protocol.events import DecodedEvent
from provledger.protocol.rule_checks import (
    AGENCY,
    BROKER,
    EXCHANGE,
    REGULATOR,
    active_member,
    copy_record,
    new_id,
    owned_asset,
    put,
    require_role,
)
from provledger.protocol.state import StateReader, Write
from provledger.v1 import ledger_pb2, state_pb2

# --- the shared judgements ----------------------------------------------------------------


def check_not_suspended(state: StateReader, member_id: str, block_time_ms: int) -> None:
    """Refuse (`suspended`, with its end and reason) if `member_id` is suspended from trading
    at `block_time_ms`: its suspension record (a TradingSuspended's, or a ruling's remedy's)
    ends after the block time and was not lifted on appeal."""
    record = state.load("suspension", member_id)
    if record is None or record.lifted or block_time_ms >= record.until_ms:  # type: ignore[attr-defined]
        return
    by = f"case {record.case_id!r}" if record.case_id else f"{record.regulator_id!r}"  # type: ignore[attr-defined]
    raise forbidden(
        "suspended",
        f"member {member_id!r} is suspended from trading until {record.until_ms} "  # type: ignore[attr-defined]
        f"(block time; by {by}): {record.reason}",  # type: ignore[attr-defined]
    )


def replaces_suspension(
    current: state_pb2.SuspensionRecord | None, new: state_pb2.SuspensionRecord
) -> bool:
    """Whether a member's suspension record becomes `new` (a TradingSuspended's, or a
    ruling's remedy's) or stays `current`: the one that ends last stands (a lifted one ends
    nothing); on a tie, one no appeal can lift (not a ruling's) stands, so that lifting a
    ruling's suspension never frees a member another suspension still holds."""
    if current is None or current.lifted or new.until_ms > current.until_ms:
        return True
    return new.until_ms == current.until_ms and bool(current.case_id) and not new.case_id


def broker_member(state: StateReader, broker_id: str) -> state_pb2.MemberRecord:
    """The member `broker_id`, if it is active and has the broker role."""
    member = active_member(state, broker_id, "broker_id")
    if member.role != BROKER:
        raise forbidden("not_a_broker", f"member {broker_id!r} does not have the broker role")
    return member


def qualified_broker(
    state: StateReader, broker_id: str, block_time_ms: int
) -> state_pb2.BrokerRecord:
    """The qualification of `broker_id`, if it is an active broker member whose latest
    qualification has not expired at `block_time_ms`."""
    broker_member(state, broker_id)
    record = state.load("broker", broker_id)
    if record is None:
        raise forbidden("not_qualified", f"broker {broker_id!r} has no regulator's qualification")
    if block_time_ms >= record.qualification.expires_at_ms:  # type: ignore[attr-defined]
        raise forbidden(
            "qualification_expired",
            f"the qualification of broker {broker_id!r} expired at "
            f"{record.qualification.expires_at_ms}",  # type: ignore[attr-defined]
        )
    return record  # type: ignore[return-value]


def live_mandate(
    state: StateReader, mandate_id: str, block_time_ms: int
) -> state_pb2.MandateRecord:
    """The mandate `mandate_id`, if it exists, is not revoked and has not expired at
    `block_time_ms`."""
    record = state.load("mandate", mandate_id)
    if record is None:
        raise precondition("unknown_mandate", f"mandate {mandate_id!r} does not exist")
    if record.revoked:  # type: ignore[attr-defined]
        raise forbidden("mandate_revoked", f"mandate {mandate_id!r} was revoked by its seller")
    if block_time_ms >= record.mandate.expires_at_ms:  # type: ignore[attr-defined]
        raise forbidden(
            "mandate_expired",
            f"mandate {mandate_id!r} expired at {record.mandate.expires_at_ms}",  # type: ignore[attr-defined]
        )
    return record  # type: ignore[return-value]


def broker_listing(
    state: StateReader,
    author: state_pb2.MemberRecord,
    payload: ledger_pb2.OfferListed,
    block_time_ms: int,
) -> None:
    """Refuse a broker's listing unless it names a live mandate of the seller to this broker
    that covers the asset, asks at least the mandate's price floor, the broker's
    qualification holds, and the settling exchange is an active exchange. (Ownership of the
    asset and the new offer id are offer_listed's own checks.)"""
    broker_id = author.member_id
    if not payload.mandate_id:
        raise forbidden(
            "no_mandate",
            f"broker {broker_id!r} lists only under a seller's mandate (mandate_id, exchange_id)",
        )
    qualified_broker(state, broker_id, block_time_ms)
    record = live_mandate(state, payload.mandate_id, block_time_ms)
    mandate = record.mandate
    if record.seller_id != payload.seller_id or mandate.broker_id != broker_id:
        raise forbidden(
            "mandate_mismatch",
            f"mandate {payload.mandate_id!r} is from {record.seller_id!r} to "
            f"{mandate.broker_id!r}, not from {payload.seller_id!r} to {broker_id!r}",
        )
    if mandate.asset_ids and payload.asset_id not in mandate.asset_ids:
        raise forbidden(
            "mandate_scope",
            f"mandate {payload.mandate_id!r} does not cover asset {payload.asset_id!r}",
        )
    if payload.price < mandate.price_floor:
        raise forbidden(
            "below_price_floor",
            f"price {payload.price} is below the mandate's floor of {mandate.price_floor}",
        )
    exchange = active_member(state, payload.exchange_id, "exchange_id")
    if exchange.role != EXCHANGE:
        raise forbidden(
            "not_an_exchange",
            f"exchange_id {payload.exchange_id!r} is not an exchange: it cannot settle",
        )


# --- the events ---------------------------------------------------------------------------


def broker_qualified(state, author, payload, decoded: DecodedEvent, block_time_ms) -> list[Write]:
    require_role(author, (REGULATOR,), "qualifying a broker")
    broker_member(state, payload.broker_id)
    if payload.expires_at_ms <= block_time_ms:
        raise precondition(
            "already_expired", "the qualification's expiry is not after the block time"
        )
    current = state.load("broker", payload.broker_id)
    if current is not None and current.qualification.qualification_id == payload.qualification_id:  # type: ignore[attr-defined]
        raise duplicate(
            "qualification_exists",
            f"qualification {payload.qualification_id!r} of {payload.broker_id!r} is recorded",
        )
    record = state_pb2.BrokerRecord(
        qualification=payload, regulator_id=author.member_id, event_id=decoded.event_id
    )
    return [put("broker", payload.broker_id, record)]


def mandate_granted(state, author, payload, decoded: DecodedEvent, block_time_ms) -> list[Write]:
    require_role(author, (AGENCY, EXCHANGE), "mandating a broker")
    check_not_suspended(state, author.member_id, block_time_ms)
    qualified_broker(state, payload.broker_id, block_time_ms)
    for asset_id in payload.asset_ids:
        owned_asset(state, asset_id, author, "mandate a broker to list")
    if payload.expires_at_ms <= block_time_ms:
        raise precondition("already_expired", "the mandate's expiry is not after the block time")
    new_id(state, "mandate", payload.mandate_id)
    record = state_pb2.MandateRecord(
        mandate=payload, seller_id=author.member_id, event_id=decoded.event_id
    )
    return [put("mandate", payload.mandate_id, record)]


def mandate_revoked(state, author, payload, decoded: DecodedEvent, block_time_ms) -> list[Write]:
    record = state.load("mandate", payload.mandate_id)
    if record is None:
        raise precondition("unknown_mandate", f"mandate {payload.mandate_id!r} does not exist")
    if author.member_id != record.seller_id and author.role != REGULATOR:  # type: ignore[attr-defined]
        raise forbidden(
            "not_seller", "only the seller who gave a mandate, or a regulator, revokes it"
        )
    if record.revoked:  # type: ignore[attr-defined]
        raise precondition("already_revoked", f"mandate {payload.mandate_id!r} is revoked")
    updated = copy_record(record)
    updated.revoked = True
    updated.revoked_at_ms = block_time_ms
    return [put("mandate", payload.mandate_id, updated)]


def offer_delisted(state, author, payload, decoded: DecodedEvent, block_time_ms) -> list[Write]:
    record = state.load("offer", payload.offer_id)
    if record is None:
        raise precondition("unknown_offer", f"offer {payload.offer_id!r} does not exist")
    lister = record.broker_id or record.exchange_id  # type: ignore[attr-defined]
    seller = record.offer.seller_id  # type: ignore[attr-defined]
    if author.member_id not in (seller, lister) and author.role != REGULATOR:
        raise forbidden(
            "not_lister",
            f"only the seller {seller!r}, the lister {lister!r} or a regulator delists an offer",
        )
    if record.status == state_pb2.OFFER_STATUS_DELISTED:  # type: ignore[attr-defined]
        raise precondition("already_delisted", f"offer {payload.offer_id!r} is delisted")
    updated = delisted_offer(record, decoded.event_id, author.member_id, payload.reason)  # type: ignore[arg-type]
    return [put("offer", payload.offer_id, updated)]


def delisted_offer(
    record: state_pb2.OfferRecord, event_id: bytes, by: str, reason: str
) -> state_pb2.OfferRecord:
    """The offer as delisted by the event `event_id` (an OfferDelisted, or a ruling or appeal
    decision whose remedy delists it) of member `by`."""
    updated: state_pb2.OfferRecord = copy_record(record)
    updated.status = state_pb2.OFFER_STATUS_DELISTED
    updated.delisted_event_id = event_id
    updated.delisted_by = by
    updated.delisting_reason = reason
    return updated


def trading_suspended(state, author, payload, decoded: DecodedEvent, block_time_ms) -> list[Write]:
    require_role(author, (REGULATOR,), "suspending a member from trading")
    active_member(state, payload.member_id, "member_id")
    if payload.until_ms <= block_time_ms:
        raise precondition("already_expired", "the suspension's end is not after the block time")
    current = state.load("suspension", payload.member_id)
    record = state_pb2.SuspensionRecord(
        member_id=payload.member_id,
        suspension_id=payload.suspension_id,
        until_ms=payload.until_ms,
        reason=payload.reason,
        regulator_id=author.member_id,
        event_id=decoded.event_id,
    )
    if not replaces_suspension(current, record):  # type: ignore[arg-type]
        return []  # the suspension in force ends later: it stands (the event stays on record)
    return [put("suspension", payload.member_id, record)]

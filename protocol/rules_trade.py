"""The rules of trade: offers, orders, delivery, settlement and disputes, with the order's life
cycle listed -> ordered -> delivered -> settled, and disputed -> resolved. Dispatched to by
protocol/rules.py.

An offer is listed by an exchange for the asset's owner (as before brokers existed: the
seller's consent to an exchange's listing stays off the ledger, in the exchange's membership
terms, and the seller may delist any offer of its asset), or by a qualified broker under the
seller's mandate, naming the exchange that settles (rules_market.broker_listing; ADR 017).
The author of every trade event (listing, ordering, delivering, settling), and the seller of
a listing or an order, must not be suspended from trading (rules_market.check_not_suspended).
No order is placed on a delisted offer, nor on a broker's listing whose mandate was revoked
or has expired.
"""

from __future__ import annotations

from provledger.protocol.errors import forbidden, invalid, precondition
from provledger.protocol.events import DecodedEvent
from provledger.protocol.rule_checks import (
    AGENCY,
    BROKER,
    EXCHANGE,
    REGULATOR,
    copy_record,
    live_asset,
    new_id,
    put,
    require_role,
)
from provledger.protocol.rules_market import broker_listing, check_not_suspended, live_mandate
from provledger.protocol.state import StateReader, Write
from provledger.v1 import state_pb2

# --- trade -------------------------------------------------------------------------------


def existing_order(state: StateReader, order_id: str) -> state_pb2.OrderRecord:
    order = state.load("order", order_id)
    if order is None:
        raise precondition("unknown_order", f"order {order_id!r} does not exist")
    return order  # type: ignore[return-value]


def require_status(order: state_pb2.OrderRecord, allowed: tuple[int, ...], action: str) -> None:
    if order.status not in allowed:
        status = state_pb2.OrderStatus.Name(order.status).removeprefix("ORDER_STATUS_").lower()
        raise precondition(
            "wrong_trade_state", f"order {order.order_id!r} is {status}; cannot {action}"
        )


def advance(
    order: state_pb2.OrderRecord, status: int, decoded: DecodedEvent
) -> state_pb2.OrderRecord:
    updated = copy_record(order)
    updated.status = status
    updated.event_ids.append(decoded.event_id)
    return updated  # type: ignore[no-any-return]


def offer_listed(state, author, payload, decoded, block_time_ms) -> list[Write]:
    if author.role == BROKER:
        check_not_suspended(state, author.member_id, block_time_ms)
        broker_listing(state, author, payload, block_time_ms)
        # the exchange it names settles the trades: it must be free to trade as well
        check_not_suspended(state, payload.exchange_id, block_time_ms)
        exchange_id, broker_id = payload.exchange_id, author.member_id
    else:
        require_role(author, (EXCHANGE,), "listing an offer")
        if payload.mandate_id:
            raise forbidden(
                "not_a_broker",
                "only a broker lists under a mandate; an exchange lists without one",
            )
        check_not_suspended(state, author.member_id, block_time_ms)
        exchange_id, broker_id = author.member_id, ""
    check_not_suspended(state, payload.seller_id, block_time_ms)
    asset = live_asset(state, payload.asset_id)
    if asset.owner_id != payload.seller_id:
        raise forbidden(
            "not_owner",
            f"seller {payload.seller_id!r} does not own asset {asset.asset_id!r}",
        )
    new_id(state, "offer", payload.offer_id)
    record = state_pb2.OfferRecord(
        offer=payload,
        exchange_id=exchange_id,
        event_id=decoded.event_id,
        broker_id=broker_id,
        status=state_pb2.OFFER_STATUS_LISTED,
    )
    return [put("offer", payload.offer_id, record)]


def order_placed(state, author, payload, decoded, block_time_ms) -> list[Write]:
    require_role(author, (AGENCY, EXCHANGE, REGULATOR), "placing an order")
    check_not_suspended(state, author.member_id, block_time_ms)
    offer_record = state.load("offer", payload.offer_id)
    if offer_record is None:
        raise precondition("unknown_offer", f"offer {payload.offer_id!r} does not exist")
    offer = offer_record.offer  # type: ignore[attr-defined]
    if offer.seller_id == author.member_id:
        raise invalid("self_order", "a seller cannot order its own offer")
    if offer_record.status == state_pb2.OFFER_STATUS_DELISTED:  # type: ignore[attr-defined]
        raise precondition(
            "offer_delisted",
            f"offer {payload.offer_id!r} was delisted by {offer_record.delisted_by!r}",  # type: ignore[attr-defined]
        )
    if offer.mandate_id:
        live_mandate(state, offer.mandate_id, block_time_ms)
    check_not_suspended(state, offer.seller_id, block_time_ms)
    asset = live_asset(state, offer.asset_id)
    if asset.owner_id != offer.seller_id:
        raise precondition(
            "offer_stale",
            f"asset {asset.asset_id!r} no longer belongs to seller {offer.seller_id!r}",
        )
    new_id(state, "order", payload.order_id)
    order = state_pb2.OrderRecord(
        order_id=payload.order_id,
        offer_id=payload.offer_id,
        buyer_id=author.member_id,
        seller_id=offer.seller_id,
        exchange_id=offer_record.exchange_id,  # type: ignore[attr-defined]
        status=state_pb2.ORDER_STATUS_ORDERED,
        event_ids=[offer_record.event_id, decoded.event_id],  # type: ignore[attr-defined]
    )
    return [put("order", payload.order_id, order)]


def order_delivered(state, author, payload, decoded, block_time_ms) -> list[Write]:
    order = existing_order(state, payload.order_id)
    if author.member_id != order.seller_id:
        raise forbidden("not_seller", f"only the seller {order.seller_id!r} delivers")
    check_not_suspended(state, author.member_id, block_time_ms)
    require_status(order, (state_pb2.ORDER_STATUS_ORDERED,), "deliver")
    updated = advance(order, state_pb2.ORDER_STATUS_DELIVERED, decoded)
    updated.delivery_digest = payload.delivery_digest
    writes = [put("order", order.order_id, updated)]
    # The buyer now holds a copy of the asset, as if it had been shared with it.
    offer = state.load("offer", order.offer_id)
    asset = state.load("asset", offer.offer.asset_id) if offer is not None else None  # type: ignore[attr-defined]
    if asset is not None and order.buyer_id not in asset.holder_ids:  # type: ignore[attr-defined]
        holder = copy_record(asset)
        holder.holder_ids.append(order.buyer_id)
        writes.append(put("asset", holder.asset_id, holder))
    return writes


def order_settled(state, author, payload, decoded, block_time_ms) -> list[Write]:
    order = existing_order(state, payload.order_id)
    if author.member_id != order.exchange_id:
        raise forbidden("not_exchange", f"only the listing exchange {order.exchange_id!r} settles")
    check_not_suspended(state, author.member_id, block_time_ms)
    require_status(order, (state_pb2.ORDER_STATUS_DELIVERED,), "settle")
    updated = advance(order, state_pb2.ORDER_STATUS_SETTLED, decoded)
    return [put("order", order.order_id, updated)]


def dispute_opened(state, author, payload, decoded, block_time_ms) -> list[Write]:
    order = existing_order(state, payload.order_id)
    if author.member_id not in (order.buyer_id, order.seller_id):
        raise forbidden(
            "not_a_party", f"only the buyer or the seller of order {order.order_id!r} disputes it"
        )
    require_status(
        order,
        (
            state_pb2.ORDER_STATUS_ORDERED,
            state_pb2.ORDER_STATUS_DELIVERED,
            state_pb2.ORDER_STATUS_SETTLED,
        ),
        "open a dispute",
    )
    new_id(state, "dispute", payload.dispute_id)
    updated = advance(order, state_pb2.ORDER_STATUS_DISPUTED, decoded)
    updated.status_before_dispute = order.status
    updated.dispute_id = payload.dispute_id
    dispute = state_pb2.DisputeRecord(
        dispute_id=payload.dispute_id,
        order_id=order.order_id,
        opened_by=author.member_id,
        reason=payload.reason,
    )
    return [put("order", order.order_id, updated), put("dispute", payload.dispute_id, dispute)]


def dispute_resolved(state, author, payload, decoded, block_time_ms) -> list[Write]:
    require_role(author, (REGULATOR,), "resolving a dispute")
    dispute = state.load("dispute", payload.dispute_id)
    if dispute is None:
        raise precondition("unknown_dispute", f"dispute {payload.dispute_id!r} does not exist")
    if dispute.resolved:  # type: ignore[attr-defined]
        raise precondition("already_resolved", f"dispute {payload.dispute_id!r} is resolved")
    order = existing_order(state, dispute.order_id)  # type: ignore[attr-defined]
    resolved = copy_record(dispute)
    resolved.resolved = True
    resolved.outcome = payload.outcome
    resolved.resolution = payload.resolution
    updated = advance(order, state_pb2.ORDER_STATUS_RESOLVED, decoded)
    return [put("dispute", payload.dispute_id, resolved), put("order", order.order_id, updated)]

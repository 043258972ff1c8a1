"""The market's catalogue read from the store: offers in id order, each shown with its asset
as it stands now, filtered by protocol/catalogue.py's judgement (ADR 017).

A page holds at most `limit` matching offers and reads at most OFFERS_SCANNED_PER_PAGE_MAX
offers from the store, matching or not: a search that matches little ends its page early,
with `more` set and `next_after` naming the last offer read, so the next page goes on from
there. Who may read the catalogue is protocol/access.py's, asked by node/queries.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from provledger.node import schema
from provledger.node.store import Store
from provledger.protocol.catalogue import OfferFilters, offer_matches, offer_view
from provledger.protocol.limits import OFFERS_SCANNED_PER_PAGE_MAX
from provledger.v1 import api_pb2, state_pb2


@dataclass(frozen=True)
class OfferPage:
    offers: list[api_pb2.OfferView]  # by offer id
    more: bool  # offers after `next_after` may match
    next_after: str  # the cursor of the next page: the last offer read ("" without more)


def view_of(store: Store, record: state_pb2.OfferRecord) -> api_pb2.OfferView:
    """The catalogue's view of an offer record: with its asset's classification and name now."""
    asset = store.load("asset", record.offer.asset_id)
    return offer_view(record, asset)  # type: ignore[arg-type]


def offer(store: Store, offer_id: str) -> api_pb2.OfferView | None:
    record = store.load("offer", offer_id)
    return view_of(store, record) if record is not None else None  # type: ignore[arg-type]


def offers_page(
    store: Store,
    filters: OfferFilters,
    after: str | None,
    limit: int,
    scanned_max: int = OFFERS_SCANNED_PER_PAGE_MAX,
) -> OfferPage:
    """Up to `limit` offers after the offer id `after` that match `filters`, in id order."""
    found: list[api_pb2.OfferView] = []
    last = ""
    offers = store.records_after("offer", schema.state_kind_prefix("offer"), after)
    for scanned, (offer_id, record) in enumerate(offers):
        if len(found) == limit or scanned == scanned_max:
            return OfferPage(found, True, last)
        last = offer_id
        view = view_of(store, record)  # type: ignore[arg-type]
        if offer_matches(view, filters):
            found.append(view)
    return OfferPage(found, False, "")

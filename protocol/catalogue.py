"""The market's catalogue: which offers a search matches (ADR 017). Pure: the node reads the
offers in id order (node/market.py) and asks here about each one.

An offer is shown as an `OfferView`: its record, the status it stands in (a record written
before offers had a status is listed), and its asset's classification and name as they stand
now (a regulator's reclassification shows at once). A search names any of: the asset, the
seller, the broker, the classification, the status, a price range in minor units (both ends
inclusive), the currency, and words that must each occur in the title, ignoring case (a word
is what the query holds between white space, so a title in a script written without spaces
is searched by any part of it). Every filter given must match.
"""

from __future__ import annotations

from dataclasses import dataclass

from provledger.protocol.errors import CodedError
from provledger.protocol.limits import (
    IDENTIFIER_LENGTH_CHARS_MAX,
    TEXT_LENGTH_CHARS_MAX,
    TITLE_WORDS_PER_SEARCH_MAX,
)
from provledger.v1 import api_pb2, ledger_pb2, state_pb2

_CLASSIFICATIONS = (
    ledger_pb2.CLASSIFICATION_GENERAL,
    ledger_pb2.CLASSIFICATION_IMPORTANT,
    ledger_pb2.CLASSIFICATION_CORE,
)
_STATUSES = (state_pb2.OFFER_STATUS_LISTED, state_pb2.OFFER_STATUS_DELISTED)


class FilterError(CodedError):
    """A search that cannot be asked: the node answers it as a bad request."""


@dataclass(frozen=True)
class OfferFilters:
    """What a catalogue search asks for; an empty or None filter matches every offer."""

    asset_id: str = ""
    seller_id: str = ""
    broker_id: str = ""
    classification: int = ledger_pb2.CLASSIFICATION_UNSPECIFIED
    status: int = state_pb2.OFFER_STATUS_UNSPECIFIED
    price_min: int | None = None
    price_max: int | None = None
    currency: str = ""
    title_words: tuple[str, ...] = ()


def search_words(text: str) -> tuple[str, ...]:
    """The words of a title search, folded for caseless matching, without repeats."""
    return tuple(dict.fromkeys(word.casefold() for word in text.split()))


def check_filters(filters: OfferFilters) -> None:
    """Raise `FilterError` for a search no offer could be asked by: an unknown
    classification or status, a price range whose low end is above its high end, an id or
    currency too long to be one, or too many or too long title words."""
    if filters.classification and filters.classification not in _CLASSIFICATIONS:
        raise FilterError(
            "bad_classification", "classification is general, important or core (1, 2 or 3)"
        )
    if filters.status and filters.status not in _STATUSES:
        raise FilterError("bad_status", "status is listed or delisted (1 or 2)")
    if (
        filters.price_min is not None
        and filters.price_max is not None
        and filters.price_min > filters.price_max
    ):
        raise FilterError(
            "bad_price_range",
            f"price_min {filters.price_min} is above price_max {filters.price_max}",
        )
    for name in ("asset_id", "seller_id", "broker_id", "currency"):
        if len(getattr(filters, name)) > IDENTIFIER_LENGTH_CHARS_MAX:
            raise FilterError(
                "bad_filter", f"{name} is longer than {IDENTIFIER_LENGTH_CHARS_MAX} characters"
            )
    if len(filters.title_words) > TITLE_WORDS_PER_SEARCH_MAX:
        raise FilterError(
            "too_many_words",
            f"a search names at most {TITLE_WORDS_PER_SEARCH_MAX} title words, "
            f"not {len(filters.title_words)}",
        )
    if sum(len(word) for word in filters.title_words) > TEXT_LENGTH_CHARS_MAX:
        raise FilterError("bad_filter", f"title words exceed {TEXT_LENGTH_CHARS_MAX} characters")


def offer_status(record: state_pb2.OfferRecord) -> int:
    """The status an offer stands in: its record's, or listed for a record from before
    offers had one."""
    return record.status or state_pb2.OFFER_STATUS_LISTED


def offer_view(
    record: state_pb2.OfferRecord, asset: state_pb2.AssetRecord | None
) -> api_pb2.OfferView:
    """The catalogue's view of an offer, with its asset as it stands now."""
    return api_pb2.OfferView(
        record=record,
        classification=asset.classification if asset is not None else 0,
        asset_name=asset.name if asset is not None else "",
        status=offer_status(record),  # type: ignore[arg-type]
    )


def offer_matches(view: api_pb2.OfferView, filters: OfferFilters) -> bool:
    """Whether the offer shown as `view` matches every filter of `filters`."""
    record = view.record
    offer = record.offer
    exact = (
        (filters.asset_id, offer.asset_id),
        (filters.seller_id, offer.seller_id),
        (filters.broker_id, record.broker_id),
        (filters.currency, offer.currency),
        (filters.classification, view.classification),
        (filters.status, view.status),
    )
    if any(wanted and wanted != actual for wanted, actual in exact):
        return False
    if filters.price_min is not None and offer.price < filters.price_min:
        return False
    if filters.price_max is not None and offer.price > filters.price_max:
        return False
    title = offer.title.casefold()
    return all(word.casefold() in title for word in filters.title_words)

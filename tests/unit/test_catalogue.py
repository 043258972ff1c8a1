"""The catalogue's judgement (protocol/catalogue.py): which offers a search matches, how an
offer is shown, and which searches cannot be asked; then the catalogue read from a real
LevelDB store (node/market.py: id order, paging, the scan bound) through the REST routes."""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from support.memory_state import GENESIS_TIME_MS, MEMBER_ROLES, Consortium, digest

from provledger.node import market as market_module
from provledger.node.market import offers_page
from provledger.node.queries import LedgerQueries, QueryError, Reader
from provledger.node.rest import StoreView, create_app
from provledger.node.rest.cursors import encode_cursor
from provledger.node.settings import REST_CURSOR_LENGTH_CHARS_MAX
from provledger.node.store import Store
from provledger.protocol import blocks
from provledger.protocol.catalogue import (
    FilterError,
    OfferFilters,
    check_filters,
    offer_matches,
    offer_status,
    offer_view,
    search_words,
)
from provledger.protocol.limits import (
    IDENTIFIER_LENGTH_CHARS_MAX,
    OFFERS_PAGE_ITEMS_MAX,
    TITLE_WORDS_PER_SEARCH_MAX,
)
from provledger.protocol.tokens import issue_token
from provledger.v1 import api_pb2, ledger_pb2, state_pb2

GENERAL = ledger_pb2.CLASSIFICATION_GENERAL
IMPORTANT = ledger_pb2.CLASSIFICATION_IMPORTANT
CORE = ledger_pb2.CLASSIFICATION_CORE
LISTED = state_pb2.OFFER_STATUS_LISTED
DELISTED = state_pb2.OFFER_STATUS_DELISTED


def record(**fields: Any) -> state_pb2.OfferRecord:
    offer = dict(
        offer_id="offer-1",
        asset_id="health/visits",
        seller_id="agency-a",
        price=1_500,
        currency="CNY",
        title="Clinic Visits 2021, 医疗数据",
        mandate_id="mandate-1",
        exchange_id="exchange",
    )
    offer.update(fields.pop("offer", {}))
    values: dict[str, Any] = dict(
        exchange_id="exchange", broker_id="broker", status=LISTED, event_id=b"\x01" * 32
    )
    values.update(fields)
    return state_pb2.OfferRecord(offer=ledger_pb2.OfferListed(**offer), **values)


def asset(classification: int = IMPORTANT) -> state_pb2.AssetRecord:
    return state_pb2.AssetRecord(
        asset_id="health/visits", owner_id="agency-a", classification=classification, name="V"
    )


VIEW = offer_view(record(), asset())


def matches(**filters: Any) -> bool:
    return offer_matches(VIEW, OfferFilters(**filters))


def test_the_view_shows_the_asset_as_it_stands_now():
    view = offer_view(record(), asset(CORE))
    assert (view.classification, view.asset_name, view.status) == (CORE, "V", LISTED)
    assert view.record == record()
    missing = offer_view(record(), None)
    assert (missing.classification, missing.asset_name) == (0, "")


def test_a_record_without_a_status_is_listed():
    assert offer_status(record(status=state_pb2.OFFER_STATUS_UNSPECIFIED)) == LISTED
    assert offer_status(record(status=DELISTED)) == DELISTED
    assert offer_view(record(status=0), asset()).status == LISTED


def test_no_filter_matches_every_offer():
    assert matches()


@pytest.mark.parametrize(
    ("name", "hit", "miss"),
    [
        ("asset_id", "health/visits", "health/other"),
        ("seller_id", "agency-a", "agency-b"),
        ("broker_id", "broker", "broker-b"),
        ("currency", "CNY", "EUR"),
        ("classification", IMPORTANT, GENERAL),
        ("status", LISTED, DELISTED),
    ],
)
def test_each_exact_filter(name: str, hit: Any, miss: Any):
    assert matches(**{name: hit})
    assert not matches(**{name: miss})


def test_the_broker_filter_skips_an_exchanges_listing():
    direct = offer_view(record(broker_id=""), asset())
    assert not offer_matches(direct, OfferFilters(broker_id="broker"))
    assert offer_matches(direct, OfferFilters(seller_id="agency-a"))


def test_the_classification_is_the_assets_now_not_at_listing():
    reclassified = offer_view(record(), asset(CORE))
    assert offer_matches(reclassified, OfferFilters(classification=CORE))
    assert not offer_matches(reclassified, OfferFilters(classification=IMPORTANT))


def test_the_price_range_is_inclusive_at_both_ends():
    assert matches(price_min=1_500, price_max=1_500)
    assert matches(price_min=0) and matches(price_max=10**12)
    assert not matches(price_min=1_501)
    assert not matches(price_max=1_499)
    assert matches(price_min=1_000, price_max=2_000, currency="CNY")
    assert not matches(price_min=1_000, price_max=2_000, currency="USD")


def test_every_title_word_must_occur_ignoring_case():
    assert matches(title_words=search_words("clinic"))
    assert matches(title_words=search_words("VISITS clinic"))
    assert matches(title_words=search_words("visit"))  # a part of a word occurs too
    assert matches(title_words=search_words("数据"))  # a script written without spaces
    assert not matches(title_words=search_words("clinic bus"))
    assert matches(title_words=("CLINIC",))  # words not yet folded are folded here


def test_every_filter_must_match_at_once():
    assert matches(seller_id="agency-a", broker_id="broker", title_words=("clinic",))
    assert not matches(seller_id="agency-a", broker_id="broker", title_words=("bus",))


def test_search_words_are_folded_and_unique():
    assert search_words("  Clinic clinic\tVISITS\n") == ("clinic", "visits")
    assert search_words("") == ()


@pytest.mark.parametrize(
    ("filters", "code"),
    [
        (OfferFilters(classification=77), "bad_classification"),
        (OfferFilters(status=9), "bad_status"),
        (OfferFilters(price_min=2, price_max=1), "bad_price_range"),
        (OfferFilters(seller_id="x" * (IDENTIFIER_LENGTH_CHARS_MAX + 1)), "bad_filter"),
        (
            OfferFilters(title_words=tuple(f"w{i}" for i in range(TITLE_WORDS_PER_SEARCH_MAX + 1))),
            "too_many_words",
        ),
        (OfferFilters(title_words=("x" * 2_000,)), "bad_filter"),
    ],
)
def test_a_search_that_cannot_be_asked_is_refused(filters: OfferFilters, code: str):
    with pytest.raises(FilterError) as raised:
        check_filters(filters)
    assert raised.value.code == code


def test_a_search_that_can_be_asked_passes():
    filters = OfferFilters(
        asset_id="a",
        classification=CORE,
        status=DELISTED,
        price_min=1,
        price_max=1,
        title_words=tuple(f"w{i}" for i in range(TITLE_WORDS_PER_SEARCH_MAX)),
    )
    check_filters(filters)
    check_filters(replace(filters, price_min=None))


def test_views_are_api_messages():
    assert isinstance(VIEW, api_pb2.OfferView)


# --- the catalogue over a real store: node/market.py and the REST routes ----------------------

T = GENESIS_TIME_MS
NOW_MS = T + 100_000
EXPIRY_MS = T + 10_000_000


class StoreChain:
    """Blocks committed into a real `Store` the way a node commits them."""

    def __init__(self, consortium: Consortium, path: Path) -> None:
        self.consortium = consortium
        self.store = Store(path, consortium.genesis)
        self.last_commit: ledger_pb2.CommitCertificate | None = None

    def commit(self, signed: list[ledger_pb2.SignedEvent], time_ms: int) -> None:
        consortium = self.consortium
        executed = blocks.execute_block(
            state=self.store,
            log=self.store.log,
            tip=self.store.tip,
            chain_id=consortium.chain_id,
            candidates=[consortium.decode(s) for s in signed],
            time_ms=time_ms,
            proposer_id=next(iter(consortium.validator_keys)),
            genesis_validators=consortium.genesis.validator_set,
            last_commit=self.last_commit,
            strict=True,
        )
        certificate = consortium.certificate(executed)
        self.store.commit_block(executed, certificate)
        self.last_commit = certificate


# offer id -> (lister, asset, seller, price, title); the broker lists under mandate/m
OFFERS = {
    "offer/1": ("broker", "asset/visits", "agency-a", 1_000, "Clinic visits 2021"),
    "offer/2": ("exchange", "asset/trips", "agency-b", 500, "Bus trips"),
    "offer/3": ("broker", "asset/beds", "agency-a", 3_000, "Hospital beds, clinic"),
    "offer/4": ("exchange", "asset/visits", "agency-a", 2_000, "Clinic visits, raw"),
    "offer/5": ("broker", "asset/beds", "agency-a", 4_000, "Beds by ward"),
}


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory):
    consortium = Consortium(member_roles={**MEMBER_ROLES, "broker": "broker"})
    chain = StoreChain(consortium, tmp_path_factory.mktemp("catalogue"))
    sign = consortium.sign
    chain.commit(
        [
            sign(
                owner,
                "asset_registered",
                asset_id=asset_id,
                content_digest=digest(asset_id),
                classification=level,
                name=asset_id.upper(),
            )
            for owner, asset_id, level in (
                ("agency-a", "asset/visits", IMPORTANT),
                ("agency-a", "asset/beds", GENERAL),
                ("agency-b", "asset/trips", GENERAL),
            )
        ]
        + [
            sign(
                "regulator",
                "broker_qualified",
                qualification_id="q/1",
                broker_id="broker",
                expires_at_ms=EXPIRY_MS,
            )
        ],
        T + 1_000,
    )
    chain.commit(
        [
            sign(
                "agency-a",
                "mandate_granted",
                mandate_id="mandate/m",
                broker_id="broker",
                expires_at_ms=EXPIRY_MS,
            )
        ],
        T + 2_000,
    )
    listings = []
    for offer_id, (lister, asset_id, seller, price, title) in OFFERS.items():
        brokered = {"mandate_id": "mandate/m", "exchange_id": "exchange"}
        listings.append(
            sign(
                lister,
                "offer_listed",
                offer_id=offer_id,
                asset_id=asset_id,
                seller_id=seller,
                price=price,
                currency="CNY",
                title=title,
                **(brokered if lister == "broker" else {}),
            )
        )
    chain.commit(listings, T + 3_000)
    chain.commit([sign("agency-a", "offer_delisted", offer_id="offer/3", reason="sold")], T + 4_000)
    view = StoreView(chain.store, consortium.genesis, "validator-0", clock_ms=lambda: NOW_MS)
    client = TestClient(create_app(view))
    yield consortium, chain.store, client
    client.close()
    chain.store.close()


def _headers(consortium: Consortium, member_id: str, role: str = "member") -> dict[str, str]:
    key = consortium[member_id].key
    token = issue_token(key, member_id, role, consortium.chain_id, T, 3_600_000)
    return {"Authorization": f"Bearer {token}"}


def _offers(market, who: str = "agency-b", **params: Any) -> dict[str, Any]:
    consortium, _, client = market
    response = client.get("/v1/offers", params=params, headers=_headers(consortium, who))
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def _ids(page: dict[str, Any]) -> list[str]:
    return [item["offer_id"] for item in page["items"]]


def test_every_member_reads_the_whole_catalogue_in_id_order(market):
    for who in ("agency-b", "exchange", "broker", "auditor"):
        page = _offers(market, who)
        assert _ids(page) == sorted(OFFERS) and page["next_cursor"] is None
    first = _offers(market)["items"][0]
    assert first == {
        "offer_id": "offer/1",
        "asset_id": "asset/visits",
        "asset_name": "ASSET/VISITS",
        "classification": "important",
        "seller_id": "agency-a",
        "broker_id": "broker",
        "mandate_id": "mandate/m",
        "exchange_id": "exchange",
        "title": "Clinic visits 2021",
        "price": 1_000,
        "currency": "CNY",
        "terms": "",
        "status": "listed",
        "event_id": first["event_id"],
        "delisted_by": None,
        "delisting_reason": None,
        "delisted_event_id": None,
    }
    assert len(first["event_id"]) == 64


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"asset_id": "asset/visits"}, ["offer/1", "offer/4"]),
        ({"seller_id": "agency-b"}, ["offer/2"]),
        ({"broker_id": "broker"}, ["offer/1", "offer/3", "offer/5"]),
        ({"classification": "important"}, ["offer/1", "offer/4"]),
        ({"status": "delisted"}, ["offer/3"]),
        ({"status": "listed", "broker_id": "broker"}, ["offer/1", "offer/5"]),
        ({"price_min": 1_000, "price_max": 3_000}, ["offer/1", "offer/3", "offer/4"]),
        ({"price_max": 999, "currency": "CNY"}, ["offer/2"]),
        ({"currency": "EUR"}, []),
        ({"q": "CLINIC"}, ["offer/1", "offer/3", "offer/4"]),
        ({"q": "clinic visits"}, ["offer/1", "offer/4"]),
        ({"q": "clinic raw", "seller_id": "agency-a"}, ["offer/4"]),
    ],
)
def test_each_filter_over_rest(market, params: dict[str, Any], expected: list[str]):
    assert _ids(_offers(market, **params)) == expected


def test_a_delisted_offer_shows_who_delisted_it(market):
    consortium, _, client = market
    response = client.get(
        "/v1/offers/one", params={"offer_id": "offer/3"}, headers=_headers(consortium, "exchange")
    )
    assert response.status_code == 200, response.text
    offer = response.json()
    assert (offer["status"], offer["delisted_by"], offer["delisting_reason"]) == (
        "delisted",
        "agency-a",
        "sold",
    )
    assert len(offer["delisted_event_id"]) == 64


def _follow(market, **params: Any) -> list[list[str]]:
    """The offer ids of every page of a search, following next_cursor to the end."""
    pages: list[list[str]] = []
    cursor = None
    while True:
        page = _offers(market, **params, **({"cursor": cursor} if cursor else {}))
        pages.append(_ids(page))
        cursor = page["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) <= len(OFFERS), "the pages never end"


def test_pages_follow_next_cursor_to_the_end(market):
    assert _follow(market, limit=2, broker_id="broker") == [["offer/1", "offer/3"], ["offer/5"]]


def test_a_page_over_rest_ends_early_at_the_scan_bound_and_its_cursor_goes_on(market, monkeypatch):
    monkeypatch.setattr(market_module, "offers_page", partial(offers_page, scanned_max=2))
    # offer/3 is the only match; each page reads two offers, matching or not, so the first
    # page is empty and still has a cursor, which goes on after the last offer it read
    assert _follow(market, status="delisted") == [[], ["offer/3"], []]
    assert _follow(market, status="delisted", limit=1) == [[], ["offer/3"], []]


def test_a_cursor_belongs_to_its_search(market):
    consortium, _, client = market
    cursor = _offers(market, limit=1, broker_id="broker")["next_cursor"]
    assert _offers(market, limit=1, broker_id="broker", cursor=cursor)["items"][0]["offer_id"] == (
        "offer/3"
    )
    for other in (
        {"broker_id": "exchange"},
        {},
        {"broker_id": "broker", "status": "listed"},
        {"broker_id": "broker", "q": "clinic"},
        {"broker_id": "broker", "price_min": 0},
        {"broker_id": "broker", "currency": "CNY"},
        {"broker_id": "broker", "classification": "important"},
    ):
        response = client.get(
            "/v1/offers",
            params={**other, "limit": 1, "cursor": cursor},
            headers=_headers(consortium, "agency-b"),
        )
        assert (response.status_code, response.json()["error"]) == (400, "bad_cursor"), other
    for forged in ("not-a-cursor", encode_cursor("offers", "offer/1", "0" * 16)):
        response = client.get(
            "/v1/offers", params={"cursor": forged}, headers=_headers(consortium, "agency-b")
        )
        assert (response.status_code, response.json()["error"]) == (400, "bad_cursor")


def test_a_page_reads_at_most_its_scan_bound(market):
    _, store, _ = market
    filters = OfferFilters(seller_id="agency-b")  # only offer/2 matches
    page = offers_page(store, filters, None, limit=10, scanned_max=1)
    assert (page.offers, page.more, page.next_after) == ([], True, "offer/1")
    page = offers_page(store, filters, page.next_after, limit=10, scanned_max=1)
    assert ([v.record.offer.offer_id for v in page.offers], page.more) == (["offer/2"], True)
    page = offers_page(store, filters, "offer/4", limit=10, scanned_max=1)
    assert (page.offers, page.more, page.next_after) == ([], False, "")
    whole = offers_page(store, OfferFilters(), None, limit=5)
    assert (len(whole.offers), whole.more) == (5, False)


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"price_min": 5, "price_max": 4}, 400, "bad_price_range"),
        ({"classification": "secret"}, 422, "bad_parameter"),
        ({"status": "sold"}, 422, "bad_parameter"),
        ({"price_min": -1}, 422, "bad_parameter"),
        ({"limit": 0}, 422, "bad_parameter"),
        ({"limit": OFFERS_PAGE_ITEMS_MAX + 1}, 422, "bad_parameter"),
        ({"cursor": "x" * (REST_CURSOR_LENGTH_CHARS_MAX + 1)}, 422, "bad_parameter"),
        ({"cursor": "has space"}, 400, "bad_cursor"),
        (
            {"q": " ".join(f"w{i}" for i in range(TITLE_WORDS_PER_SEARCH_MAX + 1))},
            400,
            "too_many_words",
        ),
    ],
)
def test_a_bad_search_is_refused(market, params: dict[str, Any], status: int, code: str):
    consortium, _, client = market
    response = client.get("/v1/offers", params=params, headers=_headers(consortium, "agency-b"))
    assert (response.status_code, response.json()["error"]) == (status, code)


def test_the_catalogue_needs_a_token_and_a_known_offer(market):
    consortium, _, client = market
    assert client.get("/v1/offers").status_code == 401
    missing = client.get(
        "/v1/offers/one", params={"offer_id": "offer/9"}, headers=_headers(consortium, "broker")
    )
    assert (missing.status_code, missing.json()["error"]) == (404, "unknown_offer")


def test_a_cursor_longer_than_an_offer_id_is_refused(market):
    consortium, store, _ = market
    queries = LedgerQueries(store, consortium.genesis)
    reader = Reader("agency-b", "member")
    with pytest.raises(QueryError) as raised:
        queries.offers(reader, OfferFilters(), "x" * (IDENTIFIER_LENGTH_CHARS_MAX + 1), 10)
    assert (raised.value.kind, raised.value.code) == ("bad_request", "bad_cursor")
    page = queries.offers(reader, OfferFilters(), "offer/4", 10)
    assert [view.record.offer.offer_id for view in page.offers] == ["offer/5"]

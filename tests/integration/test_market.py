"""The market end to end, on real node processes: a broker joins the consortium by governance,
a regulator qualifies it, a seller mandates it, and it lists the seller's assets; an exchange
lists another seller's asset. The catalogue is then searched over gRPC (ListOffers, GetOffer)
and REST (/v1/offers) with a plain member's token, by every filter, page by page; the two
APIs answer alike. Refusals come back with their codes: a price under the mandate's floor
(`below_price_floor`), a listing by the broker once a regulator suspended it (`suspended`),
and an order on an offer its seller delisted (`offer_delisted`).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from support.processes import NodeCluster, ledger_client, wait_until
from support.rest_support import RestClient, init_rest_consortium, run_cli

from provledger.cli.client import EventSigner, Identity, LedgerClient
from provledger.cli.consortium import ConsortiumLayout
from provledger.protocol import crypto
from provledger.protocol.blocks import decode_header
from provledger.protocol.crypto import SigningKey
from provledger.protocol.rules import governance_sign_bytes
from provledger.protocol.tokens import ROLE_MEMBER, issue_token
from provledger.v1 import api_pb2, ledger_pb2, state_pb2

pytestmark = pytest.mark.integration

NODES = 2
READY_TIMEOUT_S = 60.0
COMMIT_TIMEOUT_MS = 30_000
RPC_TIMEOUT_S = 40.0
HOUR_MS = 3_600_000
MEMBERS = ("agency-a", "agency-b", "exchange", "regulator", "auditor")
BROKER = "broker-x"
BROKER_KEY = SigningKey.from_seed(hashlib.sha256(b"market broker-x").digest())
IMPORTANT = ledger_pb2.CLASSIFICATION_IMPORTANT
GENERAL = ledger_pb2.CLASSIFICATION_GENERAL


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class Market:
    layout: ConsortiumLayout
    signers: dict[str, EventSigner]
    ids: dict[str, str]  # role in the story -> id
    token: str  # agency-b's member token: a member that is neither seller nor broker

    def submit(self, author: str, kind: str, **fields: Any) -> api_pb2.Receipt:
        with ledger_client(self.layout.grpc_addresses[0]) as client:
            return client.stub.SubmitAndWait(
                api_pb2.SubmitAndWaitRequest(
                    event=self.signers[author].event(kind, **fields), timeout_ms=COMMIT_TIMEOUT_MS
                ),
                timeout=RPC_TIMEOUT_S,
            )

    def refused(self, author: str, kind: str, **fields: Any) -> tuple[grpc.StatusCode, str]:
        with pytest.raises(grpc.RpcError) as raised:
            self.submit(author, kind, **fields)
        return raised.value.code(), raised.value.details().split(":", 1)[0]

    def grpc(self, node: int = 0) -> LedgerClient:
        return ledger_client(self.layout.grpc_addresses[node], token=self.token)

    def rest(self, node: int = 1) -> RestClient:
        """A REST client on node `node`, once that node holds every block node-0 committed
        (the story is submitted to node-0)."""
        with self.grpc() as client:
            checkpoint = client.stub.GetCheckpoint(api_pb2.GetCheckpointRequest(), timeout=5)
        height = decode_header(checkpoint.header).height
        rest = RestClient(self.layout.rest_addresses[node], self.token)
        wait_until(lambda: rest.height() >= height, 30.0, f"node-{node} reaching height {height}")
        return rest


def add_broker(layout: ConsortiumLayout, signers: dict[str, EventSigner]) -> dict[str, Any]:
    """The governance event's fields adding BROKER with the broker role, approved by all."""
    chain_id = signers["agency-a"].identity.chain_id
    change = ledger_pb2.GovernanceChange(
        proposal_nonce=time.time_ns(),
        member_added=ledger_pb2.MemberAdded(
            member_id=BROKER,
            name="Licensed Data Broker",
            role=ledger_pb2.ROLE_BROKER,
            public_key=BROKER_KEY.public_key,
        ),
    )
    change_bytes = change.SerializeToString(deterministic=True)
    message = governance_sign_bytes(chain_id, change_bytes)
    approvals = [
        ledger_pb2.Approval(
            approver=ledger_pb2.Author(member_id=member, key_id=signer.identity.key.key_id),
            signature=signer.identity.key.sign(crypto.DOMAIN_GOVERNANCE, message),
        )
        for member, signer in signers.items()
    ]
    return {"change": change_bytes, "approvals": approvals}


def tell_the_story(layout: ConsortiumLayout) -> Market:
    suffix = str(now_ms())
    ids = {
        name: f"{name}/{suffix}"
        for name in ("visits", "rota", "trips", "mandate", "offer1", "offer2", "offer3")
    }
    signers = {m: EventSigner(Identity.load(layout.identities[m])) for m in MEMBERS}
    chain_id = signers["agency-a"].identity.chain_id
    token = issue_token(
        signers["agency-b"].identity.key, "agency-b", ROLE_MEMBER, chain_id, now_ms(), HOUR_MS
    )
    market = Market(layout, signers, ids, token)
    market.submit("agency-a", "governance", **add_broker(layout, signers))
    signers[BROKER] = EventSigner(Identity(BROKER, "broker", chain_id, BROKER_KEY))
    for owner, name, level, title in (
        ("agency-a", "visits", IMPORTANT, "Clinic visits"),
        ("agency-a", "rota", GENERAL, "Staff rota"),
        ("agency-b", "trips", GENERAL, "Bus trips"),
    ):
        market.submit(
            owner,
            "asset_registered",
            asset_id=ids[name],
            content_digest=hashlib.sha256(name.encode()).digest(),
            classification=level,
            name=title,
        )
    expires = now_ms() + 24 * HOUR_MS
    market.submit(
        "regulator",
        "broker_qualified",
        qualification_id=f"qualification/{suffix}",
        broker_id=BROKER,
        scope="health data",
        expires_at_ms=expires,
    )
    market.submit(
        "agency-a",
        "mandate_granted",
        mandate_id=ids["mandate"],
        broker_id=BROKER,
        asset_ids=[ids["visits"], ids["rota"]],
        expires_at_ms=expires,
        price_floor=1_000,
    )
    for offer, asset, price, title in (
        ("offer1", "visits", 1_500, "Clinic visits 2021"),
        ("offer2", "rota", 2_000, "Clinic staff rota"),
    ):
        market.submit(
            BROKER,
            "offer_listed",
            offer_id=ids[offer],
            asset_id=ids[asset],
            seller_id="agency-a",
            price=price,
            currency="CNY",
            title=title,
            mandate_id=ids["mandate"],
            exchange_id="exchange",
        )
    market.submit(
        "exchange",
        "offer_listed",
        offer_id=ids["offer3"],
        asset_id=ids["trips"],
        seller_id="agency-b",
        price=500,
        currency="CNY",
        title="Bus trips",
    )
    return market


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Market]:
    directory = tmp_path_factory.mktemp("market")
    layout = init_rest_consortium(directory, NODES, chain_id="provledger-market")
    with NodeCluster.for_layout(layout, directory / "logs"):
        for address in layout.rest_addresses:
            with RestClient(address) as anonymous:

                def rest_up(client: RestClient = anonymous) -> bool:
                    try:
                        return client.response("/v1/health").status_code == 200
                    except httpx.TransportError:  # not listening yet
                        return False

                wait_until(rest_up, READY_TIMEOUT_S, f"REST on {address} answering /v1/health")
        yield tell_the_story(layout)


def grpc_ids(market: Market, **filters: Any) -> list[str]:
    with market.grpc() as client:
        answer = client.stub.ListOffers(api_pb2.ListOffersRequest(**filters), timeout=RPC_TIMEOUT_S)
    return [view.record.offer.offer_id for view in answer.offers]


def rest_page(market: Market, **params: Any) -> dict[str, Any]:
    with market.rest() as rest:
        return rest.get("/v1/offers", **params)  # type: ignore[no-any-return]


def rest_ids(market: Market, **params: Any) -> list[str]:
    return [item["offer_id"] for item in rest_page(market, **params)["items"]]


def ours(market: Market, found: list[str]) -> list[str]:
    """The story's offers among `found`, named by their role."""
    names = {market.ids[name]: name for name in ("offer1", "offer2", "offer3")}
    return [names[offer_id] for offer_id in found if offer_id in names]


def test_a_broker_lists_under_its_mandate_and_the_catalogue_shows_it(market: Market):
    with market.grpc() as client:
        view = client.stub.GetOffer(
            api_pb2.GetOfferRequest(offer_id=market.ids["offer1"]), timeout=RPC_TIMEOUT_S
        )
    assert (view.record.broker_id, view.record.exchange_id) == (BROKER, "exchange")
    assert view.record.offer.mandate_id == market.ids["mandate"]
    assert (view.status, view.classification) == (state_pb2.OFFER_STATUS_LISTED, IMPORTANT)
    assert view.asset_name == "Clinic visits"
    with market.rest() as rest:
        offer = rest.get("/v1/offers/one", offer_id=market.ids["offer3"])
    assert (offer["broker_id"], offer["exchange_id"], offer["status"]) == (
        None,
        "exchange",
        "listed",
    )


@pytest.mark.parametrize(
    ("grpc_filters", "rest_params", "expected"),
    [
        ({}, {}, ["offer1", "offer2", "offer3"]),
        ({"broker_id": BROKER}, {"broker_id": BROKER}, ["offer1", "offer2"]),
        ({"seller_id": "agency-b"}, {"seller_id": "agency-b"}, ["offer3"]),
        ({"classification": IMPORTANT}, {"classification": "important"}, ["offer1"]),
        (
            {"price_min": 1_000, "price_max": 1_500, "currency": "CNY"},
            {"price_min": 1_000, "price_max": 1_500, "currency": "CNY"},
            ["offer1"],
        ),
        ({"title_words": "CLINIC"}, {"q": "CLINIC"}, ["offer1", "offer2"]),
        ({"title_words": "clinic rota"}, {"q": "clinic rota"}, ["offer2"]),
        (
            {"status": state_pb2.OFFER_STATUS_LISTED, "broker_id": BROKER},
            {"status": "listed", "broker_id": BROKER},
            ["offer1", "offer2"],
        ),
    ],
    ids=["all", "broker", "seller", "classification", "price", "word", "words", "status"],
)
def test_the_catalogue_answers_alike_over_grpc_and_rest(
    market: Market, grpc_filters: dict, rest_params: dict, expected: list[str]
):
    assert ours(market, grpc_ids(market, **grpc_filters)) == expected
    assert ours(market, rest_ids(market, **rest_params)) == expected


def test_the_catalogue_pages_by_offer_id(market: Market):
    # gRPC: one offer a page, following next_after_offer_id.
    seen: list[str] = []
    after = ""
    with market.grpc() as client:
        while True:
            page = client.stub.ListOffers(
                api_pb2.ListOffersRequest(broker_id=BROKER, limit=1, after_offer_id=after),
                timeout=RPC_TIMEOUT_S,
            )
            seen += [view.record.offer.offer_id for view in page.offers]
            if not page.more:
                break
            after = page.next_after_offer_id
    assert ours(market, seen) == ["offer1", "offer2"]
    # REST: the same pages.
    first = rest_page(market, broker_id=BROKER, limit=1)
    assert set(first) == {"items", "next_cursor"} and first["next_cursor"]
    second = rest_page(market, broker_id=BROKER, limit=1, cursor=first["next_cursor"])
    assert ours(market, [first["items"][0]["offer_id"], second["items"][0]["offer_id"]]) == [
        "offer1",
        "offer2",
    ]
    # the cursor belongs to its search: with another filter it is refused
    with market.rest() as client:
        refused = client.error(
            "/v1/offers", 400, broker_id=BROKER, currency="CNY", cursor=first["next_cursor"]
        )
    assert refused == "bad_cursor"
    # A bad search is refused alike.
    with market.grpc() as client, pytest.raises(grpc.RpcError) as raised:
        client.stub.ListOffers(
            api_pb2.ListOffersRequest(price_min=5, price_max=4), timeout=RPC_TIMEOUT_S
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details().startswith("bad_price_range:")
    with market.rest() as rest:
        assert rest.error("/v1/offers", 400, price_min=5, price_max=4) == "bad_price_range"


def test_refusals_come_back_with_their_codes(market: Market, tmp_path: Path):
    ids = market.ids
    listing = dict(
        asset_id=ids["rota"],
        seller_id="agency-a",
        currency="CNY",
        mandate_id=ids["mandate"],
        exchange_id="exchange",
    )
    assert market.refused(
        BROKER, "offer_listed", offer_id=f"{ids['offer1']}-cheap", price=999, **listing
    ) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "below_price_floor",
    )
    # The seller delists offer2: no order is placed on it.
    market.submit("agency-a", "offer_delisted", offer_id=ids["offer2"], reason="withdrawn")
    assert market.refused(
        "agency-b", "order_placed", order_id=f"order/{now_ms()}", offer_id=ids["offer2"]
    ) == (grpc.StatusCode.FAILED_PRECONDITION, "offer_delisted")
    assert ours(market, grpc_ids(market, status=state_pb2.OFFER_STATUS_DELISTED)) == ["offer2"]
    delisted = rest_page(market, status="delisted", broker_id=BROKER)["items"]
    assert [(o["status"], o["delisted_by"]) for o in delisted] == [("delisted", "agency-a")]
    # A regulator suspends the broker: its next listing is refused `suspended`.
    market.submit(
        "regulator",
        "trading_suspended",
        suspension_id=f"suspension/{now_ms()}",
        member_id=BROKER,
        until_ms=now_ms() + HOUR_MS,
        reason="misleading listings",
    )
    code, error = market.refused(
        BROKER, "offer_listed", offer_id=f"{ids['offer1']}-late", price=1_200, **listing
    )
    assert (code, error) == (grpc.StatusCode.PERMISSION_DENIED, "suspended")
    # Orders on the broker's live listing still go through (the seller is not suspended); the
    # exchange the broker named settles, and the trade's evidence bundle verifies offline.
    order_id = f"order/{now_ms()}"
    market.submit("agency-b", "order_placed", order_id=order_id, offer_id=ids["offer1"])
    market.submit(
        "agency-a",
        "order_delivered",
        order_id=order_id,
        delivery_digest=hashlib.sha256(b"delivered").digest(),
    )
    market.submit("exchange", "order_settled", order_id=order_id, settlement_reference="ref-1")
    with market.rest() as rest:
        bundle = rest.response("/v1/evidence/trade", order_id=order_id)
    assert bundle.status_code == 200, bundle.text
    path = tmp_path / "trade.json"
    path.write_bytes(bundle.content)
    result = run_cli("verify", str(path), "--genesis", str(market.layout.genesis_path))
    assert result.returncode == 0, result.stdout + result.stderr
    # The broker that listed the offer reads the order, and finds it among its trades.
    broker_token = issue_token(
        BROKER_KEY, BROKER, ROLE_MEMBER, market.signers[BROKER].identity.chain_id, now_ms(), HOUR_MS
    )
    with RestClient(market.layout.rest_addresses[0], broker_token) as broker_rest:
        assert broker_rest.get("/v1/trades/one", order_id=order_id)["order"]["exchange_id"] == (
            "exchange"
        )
        trades = broker_rest.get("/v1/trades", member_id=BROKER)["items"]
        assert order_id in [trade["order"]["order_id"] for trade in trades]
    claims = json.loads(bundle.content)["claims"]
    assert (claims["exchange"], claims["seller"], claims["statuses"][-1]) == (
        "exchange",
        "agency-a",
        "settled",
    )

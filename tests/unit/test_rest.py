"""Unit tests for the auditor REST API (node/rest/) over a real LevelDB store.

The app is built over a `Store` in a temporary folder, filled block by block through the same
`execute_block` + `commit_block` path a node takes, with the deterministic consortium of
tests/support/memory_state.py. One story serves the module: two agencies register data, one
transfers an asset and retires another, grants (one short-lived, one later revoked) let the
other derive a fused asset and use the first, an exchange lists the fused asset, a buyer
orders it, the seller delivers, the exchange settles, the buyer disputes and the regulator
resolves. Every endpoint is exercised on it: answers, proofs that verify against the genesis
alone, paging to the end, the error codes (400, 401, 403, 404, 422), access by token role, the
PROV-JSON export and the authorization question at chosen times. A second store holds a
lineage of 10,001 assets, paged breadth-first.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from support.memory_state import GENESIS_TIME_MS, Consortium, digest
from support.rest_support import checkpoint_message, verify_rest_inclusion

from provledger.cli.consortium import init_consortium
from provledger.node.config import ConfigError, NodeConfig, render, split_host_port
from provledger.node.rest import StoreView, create_app, encode_cursor
from provledger.node.settings import REST_PAGE_ITEMS_DEFAULT, REST_PAGE_ITEMS_MAX
from provledger.node.store import Store
from provledger.protocol import blocks, merkle
from provledger.protocol.blocks import verify_certificate, verify_checkpoint
from provledger.protocol.events import DecodedEvent
from provledger.protocol.limits import LINEAGE_DEPTH_DEFAULT, LINEAGE_DEPTH_MAX
from provledger.protocol.tokens import issue_token
from provledger.v1 import ledger_pb2

T = GENESIS_TIME_MS
NOW_MS = T + 100_000  # the node's clock in these tests
TOKEN_TTL_MS = 3_600_000
GENERAL = ledger_pb2.CLASSIFICATION_GENERAL
IMPORTANT = ledger_pb2.CLASSIFICATION_IMPORTANT
READ = ledger_pb2.OPERATION_READ
COMPUTE = ledger_pb2.OPERATION_COMPUTE
DERIVE = ledger_pb2.OPERATION_DERIVE
HEALTH = "health/records"
TRIPS = "transport/trips"
OLD = "health/archive"
TEMPORARY = "transport/tmp"
FUSED = "fused/mobility-health"
REPORT = "fused/report"


# --- building a store ---------------------------------------------------------------------


class StoreChain:
    """Blocks committed into a real `Store` the way a node commits them."""

    def __init__(self, consortium: Consortium, path: Path) -> None:
        self.consortium = consortium
        self.store = Store(path, consortium.genesis)
        self.last_commit: ledger_pb2.CommitCertificate | None = None
        self.time_ms = consortium.genesis_time_ms

    def commit(self, signed: list[ledger_pb2.SignedEvent], time_ms: int) -> list[DecodedEvent]:
        consortium = self.consortium
        decoded = [consortium.decode(s) for s in signed]
        executed = blocks.execute_block(
            state=self.store,
            log=self.store.log,
            tip=self.store.tip,
            chain_id=consortium.chain_id,
            candidates=decoded,
            time_ms=time_ms,
            proposer_id=next(iter(consortium.validator_keys)),
            genesis_validators=consortium.genesis.validator_set,
            last_commit=self.last_commit,
            strict=True,
            signatures_checked=True,
        )
        certificate = consortium.certificate(executed)
        self.store.commit_block(executed, certificate)
        self.last_commit = certificate
        self.time_ms = time_ms
        return decoded


@dataclass
class Story:
    consortium: Consortium
    store: Store
    client: TestClient
    ids: dict[str, str] = field(default_factory=dict)  # name -> event id (hex)
    heights: dict[str, int] = field(default_factory=dict)  # name -> height

    def token(self, member_id: str, role: str, issued_at_ms: int = T) -> str:
        key = self.consortium[member_id].key
        chain = self.consortium.chain_id
        return issue_token(key, member_id, role, chain, issued_at_ms, TOKEN_TTL_MS)

    def headers(self, member_id: str = "auditor", role: str | None = None) -> dict[str, str]:
        role = role or ("auditor" if member_id in ("auditor", "regulator") else "member")
        return {"Authorization": f"Bearer {self.token(member_id, role)}"}

    def get(self, path: str, who: str = "auditor", **params: Any) -> Any:
        """GET with a token of member `who`; the JSON of a 200 (anything else fails)."""
        response = self.client.get(path, params=params, headers=self.headers(who))
        assert response.status_code == 200, response.text
        return response.json()

    def error(self, path: str, status: int, who: str = "auditor", **params: Any) -> str:
        """GET expecting `status`; the error code of the JSON error body."""
        response = self.client.get(path, params=params, headers=self.headers(who))
        assert response.status_code == status, response.text
        body = response.json()
        assert set(body) == {"error", "reason"}, body
        assert body["reason"]
        return body["error"]


def build_story(path: Path) -> Story:
    consortium = Consortium()
    chain = StoreChain(consortium, path)
    sign = consortium.sign
    ids: dict[str, str] = {}
    heights: dict[str, int] = {}

    def commit(time_offset_ms: int, **named: ledger_pb2.SignedEvent) -> None:
        decoded = chain.commit(list(named.values()), T + time_offset_ms)
        for name, event in zip(named, decoded, strict=True):
            ids[name] = event.event_id.hex()
            heights[name] = chain.store.head_height

    commit(
        1_000,
        health=sign(
            "agency-a",
            "asset_registered",
            asset_id=HEALTH,
            content_digest=digest("health"),
            classification=IMPORTANT,
            name="Hospital records",
        ),
        trips=sign(
            "agency-b",
            "asset_registered",
            asset_id=TRIPS,
            content_digest=digest("trips"),
            classification=GENERAL,
            name="Bus trips",
        ),
        old=sign(
            "agency-a",
            "asset_registered",
            asset_id=OLD,
            content_digest=digest("old"),
            classification=GENERAL,
        ),
        temporary=sign(
            "agency-b",
            "asset_registered",
            asset_id=TEMPORARY,
            content_digest=digest("tmp"),
            classification=GENERAL,
        ),
    )
    commit(
        2_000,
        grant_analytics=sign(
            "agency-a",
            "grant_issued",
            grant_id="g/analytics",
            asset_id=HEALTH,
            grantee_id="agency-b",
            purposes=["analytics"],
            operations=[READ, COMPUTE, DERIVE],
            expires_at_ms=T + 1_000_000,
        ),
        grant_short=sign(
            "agency-a",
            "grant_issued",
            grant_id="g/short",
            asset_id=HEALTH,
            grantee_id="agency-b",
            purposes=["research"],
            operations=[READ],
            expires_at_ms=T + 3_500,
        ),
        grant_audit=sign(
            "agency-a",
            "grant_issued",
            grant_id="g/audit",
            asset_id=HEALTH,
            grantee_id="agency-b",
            purposes=["audit"],
            operations=[READ],
            expires_at_ms=T + 1_000_000,
        ),
        transfer=sign("agency-a", "asset_transferred", asset_id=OLD, new_owner_id="agency-b"),
    )
    commit(
        3_000,
        fused=sign(
            "agency-b",
            "asset_derived",
            asset_id=FUSED,
            parent_ids=[HEALTH, TRIPS],
            activity="fusion",
            content_digest=digest("fused"),
            classification=IMPORTANT,
            name="Mobility and health",
            grant_ids=["g/analytics"],
        ),
        use=sign(
            "agency-b",
            "asset_used",
            asset_id=HEALTH,
            grant_id="g/analytics",
            purpose="analytics",
            operation=COMPUTE,
        ),
    )
    commit(
        4_000,
        revoke=sign("agency-a", "grant_revoked", grant_id="g/audit", reason="audit over"),
        retire=sign("agency-b", "asset_retired", asset_id=TEMPORARY, reason="temporary"),
        report=sign(
            "agency-b",
            "asset_derived",
            asset_id=REPORT,
            parent_ids=[FUSED],
            activity="modelling",
            content_digest=digest("report"),
            classification=IMPORTANT,
        ),
        offer=sign(
            "exchange",
            "offer_listed",
            offer_id="offer/1",
            asset_id=FUSED,
            seller_id="agency-b",
            price=1_000,
            currency="CNY",
            terms="one year",
        ),
    )
    commit(5_000, order=sign("regulator", "order_placed", order_id="order/1", offer_id="offer/1"))
    commit(
        6_000,
        deliver=sign(
            "agency-b", "order_delivered", order_id="order/1", delivery_digest=digest("delivered")
        ),
    )
    commit(7_000, settle=sign("exchange", "order_settled", order_id="order/1"))
    commit(
        8_000,
        dispute=sign(
            "regulator", "dispute_opened", dispute_id="dispute/1", order_id="order/1", reason="late"
        ),
    )
    commit(
        9_000,
        resolve=sign(
            "regulator",
            "dispute_resolved",
            dispute_id="dispute/1",
            outcome=ledger_pb2.DISPUTE_OUTCOME_FOR_SELLER,
            resolution="delivered in time",
        ),
    )
    view = StoreView(chain.store, consortium.genesis, "validator-0", clock_ms=lambda: NOW_MS)
    client = TestClient(create_app(view), raise_server_exceptions=True)
    return Story(consortium, chain.store, client, ids, heights)


@pytest.fixture(scope="module")
def story(tmp_path_factory) -> Story:
    built = build_story(tmp_path_factory.mktemp("rest-story"))
    yield built
    built.client.close()
    built.store.close()


# --- helpers for checking proofs ------------------------------------------------------------


def verify_inclusion_view(story: Story, event: dict, proof: dict, checkpoint: dict) -> None:
    """Check an event and its proof against a checkpoint, trusting only the genesis."""
    verify_rest_inclusion(story.consortium.genesis, event, proof, checkpoint)


def all_pages(story: Story, path: str, who: str = "auditor", **params: Any) -> list[dict]:
    pages = []
    cursor = None
    while True:
        page = story.get(path, who, **params, **({"cursor": cursor} if cursor else {}))
        pages.append(page)
        cursor = page["next_cursor"]
        if cursor is None:
            return pages


# --- health, status, access -------------------------------------------------------------------

PROTECTED = [
    "/v1/status",
    "/v1/blocks",
    "/v1/blocks/1",
    "/v1/checkpoint",
    "/v1/events/" + "00" * 32,
    "/v1/proofs/inclusion/" + "00" * 32,
    "/v1/proofs/consistency?first=1",
    f"/v1/assets?asset_id={HEALTH}",
    f"/v1/assets/history?asset_id={HEALTH}",
    f"/v1/lineage?asset_id={HEALTH}",
    f"/v1/prov?asset_id={HEALTH}",
    f"/v1/grants?asset_id={HEALTH}",
    "/v1/grants/one?grant_id=g/analytics",
    f"/v1/authorization?member_id=agency-b&asset_id={HEALTH}&purpose=x&operation=read",
    f"/v1/trades?asset_id={FUSED}",
    "/v1/trades/one?order_id=order/1",
    "/v1/evidence/event?event_id=" + "00" * 32,
    f"/v1/evidence/lineage?asset_id={HEALTH}",
    "/v1/evidence/trade?order_id=order/1",
    "/v1/forks",
    "/v1/forks/1",
    "/v1/members?member_id=agency-a",
    "/v1/governance/proposals",
    "/v1/governance/proposals/one?proposal_id=" + "00" * 32,
    "/v1/cases",
    "/v1/cases/one?case_id=case-1",
    "/v1/evidence/case?case_id=case-1",
    "/v1/offers",
    "/v1/offers/one?offer_id=offer/1",
    "/v1/assessments?overdue=true",
    "/v1/assessments/one?assessment_id=assess-1",
]


def test_health_needs_no_token(story):
    response = story.client.get("/v1/health")
    assert (response.status_code, response.json()) == (200, {"status": "ok", "forks_seen": 0})


@pytest.mark.parametrize("path", PROTECTED)
def test_every_other_route_needs_a_token(story, path):
    response = story.client.get(path)
    assert response.status_code == 401
    assert response.json()["error"] == "missing_token"
    assert response.headers["www-authenticate"] == "Bearer"
    wrong_scheme = story.client.get(path, headers={"Authorization": "Basic YTpi"})
    assert wrong_scheme.status_code == 401


@pytest.mark.parametrize(
    ("make_token", "code"),
    [
        (lambda s: "garbage", "token_malformed"),
        (
            lambda s: s.token("auditor", "auditor", issued_at_ms=NOW_MS - TOKEN_TTL_MS),
            "token_expired",
        ),
        (
            lambda s: s.token("auditor", "auditor", issued_at_ms=NOW_MS + 3_600_000),
            "token_not_yet_valid",
        ),
        (lambda s: s.token("agency-a", "auditor"), "token_role_not_allowed"),
        (
            lambda s: (
                s.token("auditor", "auditor")[:-4]
                + ("AAAA" if not s.token("auditor", "auditor").endswith("AAAA") else "BBBB")
            ),
            "token_bad_signature",
        ),
        (
            lambda s: issue_token(
                s.consortium["auditor"].key, "auditor", "auditor", "other", T, TOKEN_TTL_MS
            ),
            "token_wrong_chain",
        ),
    ],
)
def test_a_bad_token_is_a_401_with_its_reason(story, make_token, code):
    response = story.client.get(
        "/v1/status", headers={"Authorization": f"Bearer {make_token(story)}"}
    )
    assert response.status_code == 401, response.text
    assert response.json()["error"] == code


def test_status(story):
    status = story.get("/v1/status")
    genesis = story.consortium.genesis
    head = story.store.header(story.store.head_height)
    assert status["chain_id"] == genesis.chain_id
    assert status["node_id"] == "validator-0"
    assert status["genesis_hash"] == genesis.genesis_hash.hex()
    assert status["height"] == story.store.head_height == 9
    assert status["head_block_id"] == story.store.tip.block_id.hex()
    assert status["log_size"] == head.log_size
    assert status["log_root"] == head.log_root.hex()
    assert status["head_time_ms"] == head.time_ms
    assert [v["validator_id"] for v in status["validators"]] == [
        v.validator_id for v in genesis.validator_set.validators
    ]
    assert status["quorum_size"] == 3
    # A member token reads the chain's status too: it names no data.
    assert story.get("/v1/status", "exchange")["height"] == 9


# --- blocks and checkpoints ---------------------------------------------------------------


def test_blocks_are_paged_newest_first_to_the_end(story):
    pages = all_pages(story, "/v1/blocks", limit=4)
    heights = [item["height"] for page in pages for item in page["items"]]
    assert heights == list(range(9, 0, -1))
    assert [len(page["items"]) for page in pages] == [4, 4, 1]
    default = story.get("/v1/blocks")
    assert len(default["items"]) == min(9, REST_PAGE_ITEMS_DEFAULT)
    assert default["next_cursor"] is None
    for item in default["items"]:
        header = story.store.header(item["height"])
        assert item["log_root"] == header.log_root.hex()
        assert item["time_ms"] == header.time_ms


def test_block_detail_verifies_and_lists_its_events(story):
    block = story.get("/v1/blocks/2")
    assert block["event_ids"] == [
        story.ids[n] for n in ("grant_analytics", "grant_short", "grant_audit", "transfer")
    ]
    header = ledger_pb2.BlockHeader()
    header.ParseFromString(bytes.fromhex(block["header_raw"]))
    assert header.height == 2 == block["header"]["height"]
    assert blocks.block_id(bytes.fromhex(block["header_raw"])).hex() == block["header"]["block_id"]
    certificate = checkpoint_message(block).certificate
    verify_certificate(
        certificate,
        header,
        bytes.fromhex(block["header_raw"]),
        story.consortium.genesis.validator_set,
    )
    assert block["last_commit"]["height"] == 1
    assert story.get("/v1/blocks/1")["last_commit"] is None
    assert block["evidence_count"] == 0


def test_checkpoints_verify_against_the_genesis_alone(story):
    latest = story.get("/v1/checkpoint")
    assert latest["height"] == 9
    header = verify_checkpoint(checkpoint_message(latest), story.consortium.genesis)
    assert header.height == 9
    third = story.get("/v1/checkpoint", height=3)
    assert verify_checkpoint(checkpoint_message(third), story.consortium.genesis).height == 3


@pytest.mark.parametrize(
    ("path", "params", "status", "code"),
    [
        ("/v1/blocks/10", {}, 404, "unknown_height"),
        ("/v1/blocks/0", {}, 422, "bad_parameter"),
        ("/v1/blocks/abc", {}, 422, "bad_parameter"),
        ("/v1/blocks/99999999999999999999", {}, 422, "bad_parameter"),
        ("/v1/checkpoint", {"height": 10}, 404, "unknown_height"),
        ("/v1/checkpoint", {"height": 0}, 422, "bad_parameter"),
        ("/v1/blocks", {"limit": REST_PAGE_ITEMS_MAX + 1}, 422, "bad_parameter"),
        ("/v1/blocks", {"limit": 0}, 422, "bad_parameter"),
        ("/v1/blocks", {"cursor": "not-a-cursor"}, 400, "bad_cursor"),
        ("/v1/blocks", {"cursor": encode_cursor("history", 3, "")}, 400, "bad_cursor"),
        ("/v1/blocks", {"cursor": encode_cursor("blocks", -1, "")}, 400, "bad_cursor"),
        ("/v1/blocks", {"cursor": encode_cursor("blocks", "x", "")}, 400, "bad_cursor"),
        ("/v1/blocks", {"cursor": "x" * 1000}, 422, "bad_parameter"),
    ],
)
def test_chain_errors(story, path, params, status, code):
    assert story.error(path, status, **params) == code


def test_a_fresh_chain_has_no_checkpoint(tmp_path):
    consortium = Consortium()
    store = Store(tmp_path / "empty", consortium.genesis)
    try:
        client = TestClient(create_app(StoreView(store, consortium.genesis, "n", lambda: NOW_MS)))
        token = issue_token(
            consortium["auditor"].key, "auditor", "auditor", consortium.chain_id, T, TOKEN_TTL_MS
        )
        headers = {"Authorization": f"Bearer {token}"}
        status = client.get("/v1/status", headers=headers).json()
        assert (status["height"], status["log_size"]) == (0, 0)
        assert status["head_block_id"] == consortium.genesis.genesis_hash.hex()
        assert status["log_root"] == merkle.EMPTY_ROOT.hex()
        assert client.get("/v1/blocks", headers=headers).json() == {
            "items": [],
            "next_cursor": None,
        }
        response = client.get("/v1/checkpoint", headers=headers)
        assert (response.status_code, response.json()["error"]) == (404, "empty_chain")
    finally:
        store.close()


# --- events and proofs ----------------------------------------------------------------------


def test_an_event_is_decoded_with_its_signed_bytes(story):
    event = story.get(f"/v1/events/{story.ids['grant_analytics']}")
    assert event["kind"] == "grant_issued"
    assert event["author"]["member_id"] == "agency-a"
    assert event["author"]["key_id"] == story.consortium["agency-a"].key.key_id.hex()
    assert event["payload"]["grant_id"] == "g/analytics"
    assert event["payload"]["operations"] == ["read", "compute", "derive"]
    assert event["payload"]["no_cross_border"] is False
    assert (event["height"], event["block_time_ms"]) == (2, T + 2_000)
    assert hashlib.sha256(bytes.fromhex(event["body"])).hexdigest() == event["event_id"]
    parsed = ledger_pb2.Event()
    parsed.ParseFromString(bytes.fromhex(event["body"]))
    assert parsed.grant_issued.grant_id == "g/analytics"
    location = story.store.event(bytes.fromhex(story.ids["grant_analytics"]))
    assert (event["log_index"], event["position"]) == (location.log_index, location.position)
    registered = story.get(f"/v1/events/{story.ids['health']}")
    assert registered["payload"]["classification"] == "important"
    assert registered["payload"]["content_digest"] == digest("health").hex()


def test_inclusion_proofs_verify_at_the_latest_and_an_earlier_checkpoint(story):
    for height in (None, 3, 9):
        params = {"height": height} if height else {}
        answer = story.get(f"/v1/proofs/inclusion/{story.ids['fused']}", **params)
        assert answer["checkpoint"]["height"] == (height or 9)
        verify_inclusion_view(story, answer["event"], answer["proof"], answer["checkpoint"])


def test_consistency_proofs_verify(story):
    genesis = story.consortium.genesis
    for first, second in ((1, 9), (2, 5), (4, 4), (3, None)):
        params = {"first": first} | ({"second": second} if second else {})
        answer = story.get("/v1/proofs/consistency", **params)
        old = verify_checkpoint(checkpoint_message(answer["first"]), genesis)
        new = verify_checkpoint(checkpoint_message(answer["second"]), genesis)
        assert (old.height, new.height) == (first, second or 9)
        assert (answer["proof"]["first_size"], answer["proof"]["second_size"]) == (
            old.log_size,
            new.log_size,
        )
        merkle.verify_consistency(
            old.log_size,
            new.log_size,
            [bytes.fromhex(h) for h in answer["proof"]["hashes"]],
            old.log_root,
            new.log_root,
        )


@pytest.mark.parametrize(
    ("path", "params", "status", "code"),
    [
        ("/v1/events/" + "ab" * 32, {}, 404, "unknown_event"),
        ("/v1/events/" + "AB" * 32, {}, 422, "bad_parameter"),
        ("/v1/events/abc", {}, 422, "bad_parameter"),
        ("/v1/proofs/inclusion/" + "ab" * 32, {}, 404, "unknown_event"),
        ("/v1/proofs/consistency", {"first": 5, "second": 3}, 400, "bad_range"),
        ("/v1/proofs/consistency", {"first": 1, "second": 10}, 404, "unknown_height"),
        ("/v1/proofs/consistency", {}, 422, "bad_parameter"),
        ("/v1/proofs/consistency", {"first": 0}, 422, "bad_parameter"),
    ],
)
def test_event_and_proof_errors(story, path, params, status, code):
    assert story.error(path, status, **params) == code


def test_an_inclusion_proof_before_the_event_is_a_400(story):
    path = f"/v1/proofs/inclusion/{story.ids['fused']}"
    assert story.error(path, 400, height=2) == "not_in_tree"
    assert story.error(path, 404, height=10) == "unknown_height"


# --- assets, history, lineage -----------------------------------------------------------------


def test_an_asset_record(story):
    asset = story.get("/v1/assets", asset_id=FUSED)
    assert asset == {
        "asset_id": FUSED,
        "owner_id": "agency-b",
        "classification": "important",
        "content_digest": digest("fused").hex(),
        "name": "Mobility and health",
        "parent_ids": [HEALTH, TRIPS],
        "activity": "fusion",
        "origin_event_id": story.ids["fused"],
        "retired": False,
        "holder_ids": ["regulator"],  # it bought the asset and got it delivered
        "no_cross_border_by": "",
        "bound_purposes": ["analytics"],  # derived under g/analytics (ADR 022)
        "bound_by": ["grant g/analytics"],
        "redacted": False,
    }
    assert story.get("/v1/assets", asset_id=TEMPORARY)["retired"] is True
    assert story.get("/v1/assets", asset_id=OLD)["owner_id"] == "agency-b"
    assert story.error("/v1/assets", 404, asset_id="no/such") == "unknown_asset"
    assert story.error("/v1/assets", 422) == "bad_parameter"
    assert story.error("/v1/assets", 422, asset_id="-starts-badly") == "bad_parameter"
    assert story.error("/v1/assets", 422, asset_id="x" * 129) == "bad_parameter"


def test_history_pages_through_the_events_of_an_asset_in_log_order(story):
    expected = [
        story.ids[n]
        for n in (
            "health",
            "grant_analytics",
            "grant_short",
            "grant_audit",
            "fused",
            "use",
            "revoke",
        )
    ]
    pages = all_pages(story, "/v1/assets/history", asset_id=HEALTH, limit=2)
    assert [e["event_id"] for page in pages for e in page["items"]] == expected
    assert [len(page["items"]) for page in pages] == [2, 2, 2, 1]
    log_indexes = [e["log_index"] for page in pages for e in page["items"]]
    assert log_indexes == sorted(log_indexes)
    whole = story.get("/v1/assets/history", asset_id=HEALTH)
    assert [e["event_id"] for e in whole["items"]] == expected
    cursor = pages[0]["next_cursor"]
    assert story.error("/v1/assets/history", 400, asset_id=TRIPS, cursor=cursor) == "bad_cursor"


def test_a_history_page_ends_before_its_bytes_pass_the_page_budget(story, monkeypatch):
    """A page also ends at HISTORY_PAGE_BYTES_MAX (1,000 events of 64 KiB would not fit a
    gRPC answer), listing at least one event, and the pages still hold the whole history."""
    from provledger.node import queries

    whole = [e["event_id"] for e in story.get("/v1/assets/history", asset_id=HEALTH)["items"]]
    assert len(whole) == 7
    monkeypatch.setattr(queries, "HISTORY_PAGE_BYTES_MAX", 1)  # one event a page, whatever
    pages = all_pages(story, "/v1/assets/history", asset_id=HEALTH, limit=100)
    assert [len(page["items"]) for page in pages] == [1] * 7
    assert [e["event_id"] for page in pages for e in page["items"]] == whole
    location = story.store.event(bytes.fromhex(whole[0]))
    monkeypatch.setattr(queries, "HISTORY_PAGE_BYTES_MAX", 3 * location.ByteSize())
    pages = all_pages(story, "/v1/assets/history", asset_id=HEALTH, limit=100)
    assert 1 < len(pages) < 7 and max(len(page["items"]) for page in pages) <= 3
    assert [e["event_id"] for page in pages for e in page["items"]] == whole


def test_a_history_cursor_beyond_the_log_index_range_is_bad_cursor(story):
    """A well-formed history cursor for the right query whose log index is 2^64 - 1 (or any
    number above a signed 64-bit integer) is a 400 bad_cursor, not an overflow in the store's
    keys; the largest one is a cursor after which nothing comes."""
    from provledger.node.rest.cursors import INT64_MAX
    from provledger.node.rest.cursors import scope as _scope

    scope = _scope("history", HEALTH)
    for log_index in (2**64 - 1, INT64_MAX + 1):
        cursor = encode_cursor("history", log_index, scope)
        assert story.error("/v1/assets/history", 400, asset_id=HEALTH, cursor=cursor) == (
            "bad_cursor"
        )
    last = encode_cursor("history", INT64_MAX, scope)
    page = story.get("/v1/assets/history", asset_id=HEALTH, cursor=last)
    assert (page["items"], page["next_cursor"]) == ([], None)


def test_lineage_upstream_and_downstream(story):
    upstream = story.get("/v1/lineage", asset_id=REPORT)
    assert upstream["root"] == REPORT
    assert (upstream["direction"], upstream["depth"]) == ("upstream", LINEAGE_DEPTH_DEFAULT)
    assert [n["asset_id"] for n in upstream["nodes"]] == [REPORT, FUSED, HEALTH, TRIPS]
    assert {(e["parent"], e["child"]) for e in upstream["edges"]} == {
        (FUSED, REPORT),
        (HEALTH, FUSED),
        (TRIPS, FUSED),
    }
    assert upstream["truncated"] is False
    assert upstream["next_cursor"] is None

    downstream = story.get("/v1/lineage", asset_id=HEALTH, direction="downstream")
    assert [n["asset_id"] for n in downstream["nodes"]] == [HEALTH, FUSED, REPORT]
    assert {(e["parent"], e["child"]) for e in downstream["edges"]} == {
        (HEALTH, FUSED),
        (FUSED, REPORT),
    }

    shallow = story.get("/v1/lineage", asset_id=REPORT, depth=1)
    assert [n["asset_id"] for n in shallow["nodes"]] == [REPORT, FUSED]
    assert shallow["truncated"] is True


def test_lineage_pages_hold_each_node_and_edge_once(story):
    pages = all_pages(story, "/v1/lineage", asset_id=REPORT, limit=1)
    assert [[n["asset_id"] for n in page["nodes"]] for page in pages] == [
        [REPORT],
        [FUSED],
        [HEALTH],
        [TRIPS],
    ]
    edges = [(e["parent"], e["child"]) for page in pages for e in page["edges"]]
    assert sorted(edges) == sorted([(FUSED, REPORT), (HEALTH, FUSED), (TRIPS, FUSED)])
    other_query = pages[0]["next_cursor"]
    assert (
        story.error("/v1/lineage", 400, asset_id=REPORT, depth=2, cursor=other_query)
        == "bad_cursor"
    )


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"direction": "sideways"}, "bad_parameter"),
        ({"depth": 0}, "bad_parameter"),
        ({"depth": LINEAGE_DEPTH_MAX + 1}, "bad_parameter"),
        ({"limit": REST_PAGE_ITEMS_MAX + 1}, "bad_parameter"),
    ],
)
def test_lineage_parameter_errors(story, params, code):
    assert story.error("/v1/lineage", 422, asset_id=REPORT, **params) == code


def test_prov_json_export(story):
    response = story.client.get("/v1/prov", params={"asset_id": REPORT}, headers=story.headers())
    assert response.status_code == 200
    assert response.headers["x-provledger-truncated"] == "false"
    document = response.json()
    assert set(document) == {
        "prefix",
        "entity",
        "activity",
        "agent",
        "wasGeneratedBy",
        "used",
        "wasDerivedFrom",
        "wasAssociatedWith",
        "wasAttributedTo",
    }
    assert document["prefix"]["prov"] == "http://www.w3.org/ns/prov#"
    chain = story.consortium.chain_id
    assert document["prefix"]["asset"] == f"urn:provledger:{chain}:asset:"

    def qualified(prefix: str, identifier: str) -> str:
        return f"{prefix}:" + identifier.replace("/", "%2F")

    assert set(document["entity"]) == {
        qualified("asset", a) for a in (REPORT, FUSED, HEALTH, TRIPS)
    }
    fused = document["entity"][qualified("asset", FUSED)]
    assert fused["prov:type"] == {"$": "provledger:Asset", "type": "prov:QUALIFIED_NAME"}
    assert fused["prov:label"] == "Mobility and health"
    assert fused["provledger:classification"] == "important"
    fusion = document["activity"][f"event:{story.ids['fused']}"]
    assert fusion["prov:type"]["$"] == "provledger:Derivation"
    assert fusion["provledger:activity"] == "fusion"
    assert fusion["prov:startTime"] == "2023-11-14T22:13:23.000Z"  # T + 3 s
    assert len(document["activity"]) == 2  # the fusion and the modelling
    agents = document["agent"]
    assert set(agents) == {"member:agency-a", "member:agency-b"}
    assert agents["member:agency-b"]["prov:type"] == {
        "$": "prov:Organization",
        "type": "prov:QUALIFIED_NAME",
    }
    derived = {
        (r["prov:generatedEntity"], r["prov:usedEntity"], r["prov:activity"])
        for r in document["wasDerivedFrom"].values()
    }
    assert derived == {
        (qualified("asset", FUSED), qualified("asset", HEALTH), f"event:{story.ids['fused']}"),
        (qualified("asset", FUSED), qualified("asset", TRIPS), f"event:{story.ids['fused']}"),
        (qualified("asset", REPORT), qualified("asset", FUSED), f"event:{story.ids['report']}"),
    }
    used = {(r["prov:activity"], r["prov:entity"]) for r in document["used"].values()}
    assert (f"event:{story.ids['fused']}", qualified("asset", HEALTH)) in used
    generated = {
        (r["prov:entity"], r["prov:activity"]) for r in document["wasGeneratedBy"].values()
    }
    assert generated == {
        (qualified("asset", FUSED), f"event:{story.ids['fused']}"),
        (qualified("asset", REPORT), f"event:{story.ids['report']}"),
    }
    associated = {
        (r["prov:activity"], r["prov:agent"]) for r in document["wasAssociatedWith"].values()
    }
    assert associated == {
        (f"event:{story.ids['fused']}", "member:agency-b"),
        (f"event:{story.ids['report']}", "member:agency-b"),
    }
    attributed = {(r["prov:entity"], r["prov:agent"]) for r in document["wasAttributedTo"].values()}
    assert (qualified("asset", HEALTH), "member:agency-a") in attributed
    assert (qualified("asset", TRIPS), "member:agency-b") in attributed
    assert all(key.startswith("_:") for key in document["wasDerivedFrom"])

    cut = story.client.get(
        "/v1/prov", params={"asset_id": REPORT, "depth": 1}, headers=story.headers()
    )
    assert cut.headers["x-provledger-truncated"] == "true"
    assert len(cut.json()["entity"]) == 2


# --- grants and the authorization question ------------------------------------------------


def test_grants_of_an_asset_and_one_grant(story):
    page = story.get("/v1/grants", asset_id=HEALTH)
    assert [g["grant_id"] for g in page["items"]] == ["g/analytics", "g/audit", "g/short"]
    audit = next(g for g in page["items"] if g["grant_id"] == "g/audit")
    assert audit == {
        "grant_id": "g/audit",
        "asset_id": HEALTH,
        "grantor_id": "agency-a",
        "grantee_id": "agency-b",
        "purposes": ["audit"],
        "operations": ["read"],
        "expires_at_ms": T + 1_000_000,
        "no_cross_border": False,
        "revoked": True,
        "revoked_at_ms": T + 4_000,
        "event_id": story.ids["grant_audit"],
    }
    paged = all_pages(story, "/v1/grants", asset_id=HEALTH, limit=2)
    assert [[g["grant_id"] for g in p["items"]] for p in paged] == [
        ["g/analytics", "g/audit"],
        ["g/short"],
    ]
    one = story.get("/v1/grants/one", grant_id="g/audit")
    assert one["grant"] == audit
    assert one["issued"]["event_id"] == story.ids["grant_audit"]
    assert one["revoked"]["event_id"] == story.ids["revoke"]
    assert story.get("/v1/grants/one", grant_id="g/analytics")["revoked"] is None
    assert story.error("/v1/grants/one", 404, grant_id="g/none") == "unknown_grant"


def test_grants_of_a_member_list_held_then_issued_across_pages(story):
    held = story.get("/v1/grants", member_id="agency-b")
    assert [g["grant_id"] for g in held["items"]] == ["g/analytics", "g/audit", "g/short"]
    issued = story.get("/v1/grants", member_id="agency-a")
    assert [g["grant_id"] for g in issued["items"]] == ["g/analytics", "g/audit", "g/short"]
    for limit in (1, 2, 3):
        pages = all_pages(story, "/v1/grants", member_id="agency-b", limit=limit)
        assert [g["grant_id"] for p in pages for g in p["items"]] == [
            "g/analytics",
            "g/audit",
            "g/short",
        ]
    assert story.get("/v1/grants", member_id="exchange") == {"items": [], "next_cursor": None}


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({}, 400, "bad_request"),
        ({"asset_id": HEALTH, "member_id": "agency-b"}, 400, "bad_request"),
        ({"asset_id": "no/such"}, 404, "unknown_asset"),
        ({"member_id": "agency-b", "cursor": "AAAA"}, 400, "bad_cursor"),
        (
            {"member_id": "agency-b", "cursor": encode_cursor("grants", ["lost", None], "x")},
            400,
            "bad_cursor",
        ),
    ],
)
def test_grant_list_errors(story, params, status, code):
    assert story.error("/v1/grants", status, **params) == code


def test_a_forged_member_grants_cursor_is_refused(story):
    from provledger.node.rest.cursors import scope as _scope

    scope = _scope("grants", "member", "agency-b")
    for value in (["held", 5], ["issued", "bad id!"], ["held"], "held", ["lost", None]):
        cursor = encode_cursor("grants", value, scope)
        assert story.error("/v1/grants", 400, member_id="agency-b", cursor=cursor) == "bad_cursor"
    issued = encode_cursor("grants", ["issued", None], scope)
    assert story.get("/v1/grants", member_id="agency-b", cursor=issued)["items"] == []


def ask(story: Story, who: str = "auditor", **question: Any) -> dict:
    answer = story.get("/v1/authorization", who, **question)
    for deciding in answer["deciding_events"]:
        verify_inclusion_view(story, deciding["event"], deciding["proof"], answer["checkpoint"])
    return answer


def roles_of(answer: dict) -> list[tuple[str, str]]:
    return [(d["role"], d["event"]["event_id"]) for d in answer["deciding_events"]]


def test_authorised_under_a_grant(story):
    answer = ask(
        story,
        member_id="agency-b",
        asset_id=HEALTH,
        purpose="analytics",
        operation="compute",
        time_ms=T + 3_000,
    )
    assert answer["authorised"] is True
    assert (answer["code"], answer["grant_id"]) == ("granted", "g/analytics")
    assert roles_of(answer) == [
        ("registered", story.ids["health"]),
        ("grant_issued", story.ids["grant_analytics"]),
    ]
    assert answer["checkpoint"]["height"] == 9
    assert (answer["member_id"], answer["asset_id"], answer["time_ms"]) == (
        "agency-b",
        HEALTH,
        T + 3_000,
    )


def test_the_time_defaults_to_the_latest_block(story):
    answer = ask(
        story, member_id="agency-b", asset_id=HEALTH, purpose="analytics", operation="read"
    )
    assert answer["time_ms"] == T + 9_000
    assert answer["authorised"] is True


def test_not_authorised_after_the_grant_expired(story):
    before = ask(
        story,
        member_id="agency-b",
        asset_id=HEALTH,
        purpose="research",
        operation="read",
        time_ms=T + 3_499,
    )
    assert (before["authorised"], before["grant_id"]) == (True, "g/short")
    after = ask(
        story,
        member_id="agency-b",
        asset_id=HEALTH,
        purpose="research",
        operation="read",
        time_ms=T + 3_500,
    )
    assert after["authorised"] is False
    assert after["code"] == "grant_expired"
    assert "g/short" in after["reason"]
    assert ("grant_issued", story.ids["grant_short"]) in roles_of(after)


def test_not_authorised_after_the_grant_was_revoked(story):
    before = ask(
        story,
        member_id="agency-b",
        asset_id=HEALTH,
        purpose="audit",
        operation="read",
        time_ms=T + 3_999,
    )
    assert (before["authorised"], before["grant_id"]) == (True, "g/audit")
    assert ("grant_revoked", story.ids["revoke"]) not in roles_of(before)
    after = ask(
        story,
        member_id="agency-b",
        asset_id=HEALTH,
        purpose="audit",
        operation="read",
        time_ms=T + 4_000,
    )
    assert (after["authorised"], after["code"]) == (False, "grant_revoked")
    assert ("grant_issued", story.ids["grant_audit"]) in roles_of(after)
    assert ("grant_revoked", story.ids["revoke"]) in roles_of(after)


@pytest.mark.parametrize(
    ("question", "code"),
    [
        (
            {"purpose": "marketing", "operation": "read", "time_ms": T + 3_000},
            "purpose_not_granted",
        ),
        (
            {"purpose": "analytics", "operation": "share", "time_ms": T + 3_000},
            "operation_not_granted",
        ),
        (
            {"purpose": "analytics", "operation": "read", "time_ms": T + 1_500},
            "grant_not_yet_issued",
        ),
        ({"purpose": "analytics", "operation": "read", "time_ms": T + 500}, "asset_not_registered"),
    ],
)
def test_not_authorised_for_the_wrong_purpose_operation_or_time(story, question, code):
    answer = ask(story, member_id="agency-b", asset_id=HEALTH, **question)
    assert (answer["authorised"], answer["code"], answer["grant_id"]) == (False, code, None)
    assert answer["reason"]


def test_owners_are_authorised_and_others_need_a_grant(story):
    owner = ask(story, member_id="agency-a", asset_id=HEALTH, purpose="anything", operation="share")
    assert (owner["authorised"], owner["code"]) == (True, "owner")
    nobody = ask(
        story, member_id="exchange", asset_id=HEALTH, purpose="analytics", operation="read"
    )
    assert (nobody["authorised"], nobody["code"]) == (False, "no_grant")
    assert roles_of(nobody) == [("registered", story.ids["health"])]


def test_ownership_follows_transfers_at_block_time(story):
    before = ask(
        story, member_id="agency-b", asset_id=OLD, purpose="x", operation="read", time_ms=T + 1_999
    )
    assert (before["authorised"], before["code"]) == (False, "no_grant")
    after = ask(
        story, member_id="agency-b", asset_id=OLD, purpose="x", operation="read", time_ms=T + 2_000
    )
    assert (after["authorised"], after["code"]) == (True, "owner")
    assert roles_of(after) == [
        ("registered", story.ids["old"]),
        ("transferred", story.ids["transfer"]),
    ]
    former = ask(
        story, member_id="agency-a", asset_id=OLD, purpose="x", operation="read", time_ms=T + 2_000
    )
    assert (former["authorised"], former["code"]) == (False, "no_grant")


def test_nobody_uses_a_retired_asset(story):
    before = ask(
        story,
        member_id="agency-b",
        asset_id=TEMPORARY,
        purpose="x",
        operation="read",
        time_ms=T + 3_999,
    )
    assert before["authorised"] is True
    after = ask(
        story,
        member_id="agency-b",
        asset_id=TEMPORARY,
        purpose="x",
        operation="read",
        time_ms=T + 4_000,
    )
    assert (after["authorised"], after["code"]) == (False, "asset_retired")
    assert ("retired", story.ids["retire"]) in roles_of(after)


@pytest.mark.parametrize(
    ("question", "status", "code"),
    [
        ({"asset_id": "no/such", "purpose": "x", "operation": "read"}, 404, "unknown_asset"),
        ({"asset_id": HEALTH, "purpose": "x", "operation": "delete"}, 422, "bad_parameter"),
        ({"asset_id": HEALTH, "purpose": "", "operation": "read"}, 422, "bad_parameter"),
        ({"asset_id": HEALTH, "operation": "read"}, 422, "bad_parameter"),
        (
            {"asset_id": HEALTH, "purpose": "x", "operation": "read", "time_ms": -1},
            422,
            "bad_parameter",
        ),
    ],
)
def test_authorization_errors(story, question, status, code):
    assert story.error("/v1/authorization", status, member_id="agency-b", **question) == code


# --- trades -------------------------------------------------------------------------------


def test_trades_of_an_asset_and_of_a_member(story):
    by_asset = story.get("/v1/trades", asset_id=FUSED)
    assert len(by_asset["items"]) == 1
    item = by_asset["items"][0]
    assert item["order"] == {
        "order_id": "order/1",
        "offer_id": "offer/1",
        "asset_id": FUSED,
        "buyer_id": "regulator",
        "seller_id": "agency-b",
        "exchange_id": "exchange",
        "status": "resolved",
        "status_before_dispute": "settled",
        "delivery_digest": digest("delivered").hex(),
        "dispute_id": "dispute/1",
        "event_ids": [
            story.ids[n] for n in ("offer", "order", "deliver", "settle", "dispute", "resolve")
        ],
    }
    assert [e["kind"] for e in item["life_cycle"]] == [
        "offer_listed",
        "order_placed",
        "order_delivered",
        "order_settled",
        "dispute_opened",
        "dispute_resolved",
    ]
    for member_id in ("regulator", "agency-b", "exchange"):
        assert [
            i["order"]["order_id"] for i in story.get("/v1/trades", member_id=member_id)["items"]
        ] == ["order/1"]
    assert story.get("/v1/trades", member_id="agency-a")["items"] == []
    assert story.get("/v1/trades", asset_id=HEALTH)["items"] == []


def test_one_trade_with_its_offer_life_cycle_and_dispute(story):
    trade = story.get("/v1/trades/one", order_id="order/1")
    assert trade["offer"] == {
        "offer_id": "offer/1",
        "asset_id": FUSED,
        "seller_id": "agency-b",
        "exchange_id": "exchange",
        "price": 1_000,
        "currency": "CNY",
        "terms": "one year",
        "event_id": story.ids["offer"],
    }
    assert [e["event_id"] for e in trade["life_cycle"]] == trade["order"]["event_ids"]
    assert trade["dispute"] == {
        "dispute_id": "dispute/1",
        "order_id": "order/1",
        "opened_by": "regulator",
        "reason": "late",
        "resolved": True,
        "outcome": "for_seller",
        "resolution": "delivered in time",
    }
    assert story.error("/v1/trades/one", 404, order_id="order/none") == "unknown_order"
    assert story.error("/v1/trades", 400) == "bad_request"
    assert story.error("/v1/trades", 400, asset_id=FUSED, member_id="exchange") == "bad_request"


# --- what a member token may read --------------------------------------------------------


@pytest.mark.parametrize(
    ("member_id", "path", "params", "allowed"),
    [
        # assets: the owner, a grantee, the registrant of an asset transferred away
        ("agency-a", "/v1/assets", {"asset_id": HEALTH}, True),
        ("agency-b", "/v1/assets", {"asset_id": HEALTH}, True),
        ("agency-a", "/v1/assets", {"asset_id": OLD}, True),
        ("exchange", "/v1/assets", {"asset_id": HEALTH}, False),
        ("agency-a", "/v1/assets", {"asset_id": TRIPS}, False),
        ("exchange", "/v1/assets/history", {"asset_id": HEALTH}, False),
        ("agency-b", "/v1/lineage", {"asset_id": REPORT}, True),
        ("exchange", "/v1/lineage", {"asset_id": REPORT}, False),
        ("exchange", "/v1/prov", {"asset_id": REPORT}, False),
        # grants: grantor, grantee, the asset's owner
        ("agency-b", "/v1/grants/one", {"grant_id": "g/audit"}, True),
        ("agency-a", "/v1/grants/one", {"grant_id": "g/audit"}, True),
        ("exchange", "/v1/grants/one", {"grant_id": "g/audit"}, False),
        ("agency-b", "/v1/grants", {"member_id": "agency-b"}, True),
        ("agency-b", "/v1/grants", {"member_id": "agency-a"}, False),
        ("exchange", "/v1/grants", {"asset_id": HEALTH}, False),
        # trades: buyer, seller, exchange
        ("regulator", "/v1/trades/one", {"order_id": "order/1"}, True),
        ("exchange", "/v1/trades/one", {"order_id": "order/1"}, True),
        ("agency-a", "/v1/trades/one", {"order_id": "order/1"}, False),
        ("exchange", "/v1/trades", {"member_id": "exchange"}, True),
        ("exchange", "/v1/trades", {"member_id": "agency-b"}, False),
        ("agency-a", "/v1/trades", {"asset_id": FUSED}, False),
        # the authorization question: about oneself, or about an asset one owns
        ("agency-b", "/v1/authorization", {"member_id": "agency-b", "asset_id": HEALTH}, True),
        ("agency-a", "/v1/authorization", {"member_id": "agency-b", "asset_id": HEALTH}, True),
        ("exchange", "/v1/authorization", {"member_id": "agency-b", "asset_id": HEALTH}, False),
        # the chain itself
        ("exchange", "/v1/blocks", {}, True),
        ("exchange", "/v1/checkpoint", {}, True),
        ("exchange", "/v1/proofs/consistency", {"first": 1}, True),
    ],
)
def test_a_member_token_reads_what_concerns_the_member(story, member_id, path, params, allowed):
    if path == "/v1/authorization":
        params = {**params, "purpose": "analytics", "operation": "read"}
    response = story.client.get(
        path, params=params, headers=story.headers(member_id, role="member")
    )
    if allowed:
        assert response.status_code == 200, response.text
    else:
        assert response.status_code == 403, response.text
        assert response.json()["error"] == "forbidden"


@pytest.mark.parametrize(
    ("member_id", "event", "allowed"),
    [
        ("agency-a", "health", True),  # its own
        ("agency-b", "grant_analytics", True),  # names it as grantee
        ("agency-b", "health", True),  # an asset it holds a grant on
        ("exchange", "health", False),
        ("exchange", "offer", True),  # its own listing
        ("regulator", "deliver", True),  # the buyer, for the order's life cycle
        ("agency-a", "deliver", False),
        ("agency-a", "revoke", True),
        ("exchange", "revoke", False),
        ("agency-b", "revoke", True),  # revokes its grant
    ],
)
def test_a_member_token_reads_the_events_that_concern_the_member(story, member_id, event, allowed):
    headers = story.headers(member_id, role="member")
    event_id = story.ids[event]
    for path in (f"/v1/events/{event_id}", f"/v1/proofs/inclusion/{event_id}"):
        response = story.client.get(path, headers=headers)
        assert response.status_code == (200 if allowed else 403), response.text


def test_member_lists_are_filtered_to_what_concerns_the_member(story):
    # The owner of the asset sees every grant on it; a grantee sees its own.
    assert len(story.get("/v1/grants", "agency-a", asset_id=HEALTH)["items"]) == 3
    assert len(story.get("/v1/grants", "agency-b", asset_id=HEALTH)["items"]) == 3
    assert len(story.get("/v1/trades", "agency-b", asset_id=FUSED)["items"]) == 1


def test_a_regulator_reads_everything_with_an_auditor_token(story):
    assert story.get("/v1/assets", "regulator", asset_id=HEALTH)["asset_id"] == HEALTH
    assert story.get("/v1/grants", "regulator", member_id="agency-b")["items"]


# --- evidence ------------------------------------------------------------------------------

BUNDLES_AVAILABLE = importlib.util.find_spec("provledger.node.bundles") is not None


@pytest.mark.parametrize(
    ("path", "params", "code"),
    [
        ("/v1/evidence/event", {"event_id": "ab" * 32}, "unknown_event"),
        ("/v1/evidence/lineage", {"asset_id": "no/such"}, "unknown_asset"),
        ("/v1/evidence/trade", {"order_id": "order/none"}, "unknown_order"),
        ("/v1/evidence/case", {"case_id": "case/none"}, "unknown_case"),
    ],
)
def test_evidence_of_unknown_ids_is_a_404(story, path, params, code):
    assert story.error(path, 404, **params) == code


def test_evidence_is_refused_to_members_it_does_not_concern(story):
    headers = story.headers("exchange", role="member")
    for path, params in (
        ("/v1/evidence/event", {"event_id": story.ids["health"]}),
        ("/v1/evidence/lineage", {"asset_id": HEALTH}),
        ("/v1/evidence/trade", {"order_id": "order/1"}),
    ):
        if path.endswith("trade"):
            headers = story.headers("agency-a", role="member")
        response = story.client.get(path, params=params, headers=headers)
        assert response.status_code == 403, response.text


@pytest.mark.skipif(not BUNDLES_AVAILABLE, reason="node/bundles.py has not landed yet")
@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/v1/evidence/event", {"event_id": "grant_analytics"}),
        ("/v1/evidence/lineage", {"asset_id": REPORT}),
        ("/v1/evidence/trade", {"order_id": "order/1"}),
    ],
)
def test_evidence_bundles_download_as_json(story, path, params):
    if "event_id" in params:
        params = {"event_id": story.ids[params["event_id"]]}
    response = story.client.get(path, params=params, headers=story.headers())
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["content-disposition"].startswith("attachment; filename=")
    assert isinstance(json.loads(response.content), dict)


# --- the app's edges --------------------------------------------------------------------------


def test_unknown_paths_and_methods_answer_json_errors(story):
    response = story.client.get("/v1/nothing", headers=story.headers())
    assert (response.status_code, response.json()["error"]) == (404, "not_found")
    response = story.client.post("/v1/status", headers=story.headers())
    assert (response.status_code, response.json()["error"]) == (405, "method_not_allowed")


def test_the_explorer_page_and_the_docs_need_no_token(story):
    page = story.client.get("/")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert story.client.get("/docs").status_code == 200


def test_the_openapi_schema_documents_every_route_its_errors_and_the_token(story):
    schema = story.client.get("/openapi.json").json()
    paths = schema["paths"]
    assert set(paths) == {p.split("?")[0] for p in PROTECTED} - {
        "/v1/blocks/1",
        "/v1/events/" + "00" * 32,
        "/v1/proofs/inclusion/" + "00" * 32,
        "/v1/forks/1",
    } | {
        "/v1/health",
        "/v1/forks/{number}",
        "/v1/blocks/{height}",
        "/v1/events/{event_id}",
        "/v1/proofs/inclusion/{event_id}",
    }
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    for path, operations in paths.items():
        operation = operations["get"]
        responses = set(operation["responses"])
        if path == "/v1/health":
            assert "security" not in operation
            continue
        assert {"200", "400", "401", "403", "404", "422"} <= responses, path
        assert operation["security"] == [{"HTTPBearer": []}]
        error = operation["responses"]["401"]["content"]["application/json"]["schema"]
        assert error == {"$ref": "#/components/schemas/ErrorBody"}


def test_a_bug_is_a_logged_500_with_a_json_body(story, caplog):
    app = create_app(StoreView(None, story.consortium.genesis, "n", lambda: NOW_MS))  # type: ignore[arg-type]
    client = TestClient(app, raise_server_exceptions=False)
    response = client.get("/v1/status", headers=story.headers())
    assert response.status_code == 500
    assert response.json()["error"] == "internal"
    assert any("failed" in record.getMessage() for record in caplog.records)


# --- a lineage of 10,001 assets -------------------------------------------------------------

WIDE_CHILDREN = 100
WIDE_GRANDCHILDREN = 99  # per child
WIDE_TOTAL = 1 + WIDE_CHILDREN * (1 + WIDE_GRANDCHILDREN)
BLOCK_EVENTS = 2_000


@pytest.fixture(scope="module")
def wide(tmp_path_factory) -> Story:
    """A root with 100 children, each with 99 children of its own: 10,001 assets."""
    consortium = Consortium()
    chain = StoreChain(consortium, tmp_path_factory.mktemp("rest-wide"))
    events = [
        consortium.sign(
            "agency-a",
            "asset_registered",
            asset_id="root",
            content_digest=digest("root"),
            classification=GENERAL,
        )
    ]
    for child in range(WIDE_CHILDREN):
        events.append(derivation(consortium, f"c/{child:03d}", "root"))
    for child in range(WIDE_CHILDREN):
        for grandchild in range(WIDE_GRANDCHILDREN):
            events.append(
                derivation(consortium, f"g/{child:03d}/{grandchild:02d}", f"c/{child:03d}")
            )
    time_ms = T
    for start in range(0, len(events), BLOCK_EVENTS):
        time_ms += 1_000
        chain.commit(events[start : start + BLOCK_EVENTS], time_ms)
    client = TestClient(create_app(StoreView(chain.store, consortium.genesis, "n", lambda: NOW_MS)))
    built = Story(consortium, chain.store, client)
    yield built
    client.close()
    chain.store.close()


def derivation(consortium: Consortium, asset_id: str, parent_id: str) -> ledger_pb2.SignedEvent:
    return consortium.sign(
        "agency-a",
        "asset_derived",
        asset_id=asset_id,
        parent_ids=[parent_id],
        activity="cleaning",
        content_digest=digest(asset_id),
        classification=GENERAL,
    )


def test_a_wide_lineage_answers_one_page_at_a_time(wide):
    assert wide.store.head_height == -(-WIDE_TOTAL // BLOCK_EVENTS)
    first = wide.get(
        "/v1/lineage", asset_id="root", direction="downstream", limit=REST_PAGE_ITEMS_MAX
    )
    assert len(first["nodes"]) == REST_PAGE_ITEMS_MAX
    assert first["nodes"][0]["asset_id"] == "root"
    assert [n["asset_id"] for n in first["nodes"][1:101]] == [f"c/{i:03d}" for i in range(100)]
    assert first["next_cursor"] is not None
    assert first["truncated"] is False


def test_paging_a_wide_lineage_visits_every_node_and_edge_once(wide):
    pages = all_pages(
        wide, "/v1/lineage", asset_id="root", direction="downstream", limit=REST_PAGE_ITEMS_MAX
    )
    assert len(pages) == -(-WIDE_TOTAL // REST_PAGE_ITEMS_MAX)
    nodes = [n["asset_id"] for page in pages for n in page["nodes"]]
    assert len(nodes) == len(set(nodes)) == WIDE_TOTAL
    edges = [(e["parent"], e["child"]) for page in pages for e in page["edges"]]
    assert len(edges) == len(set(edges)) == WIDE_TOTAL - 1
    assert all(len(page["nodes"]) <= REST_PAGE_ITEMS_MAX for page in pages)


def test_a_wide_lineage_cut_by_depth(wide):
    shallow = wide.get(
        "/v1/lineage", asset_id="root", direction="downstream", depth=1, limit=REST_PAGE_ITEMS_MAX
    )
    assert len(shallow["nodes"]) == 1 + WIDE_CHILDREN
    assert shallow["truncated"] is True
    assert shallow["next_cursor"] is None
    upstream = wide.get("/v1/lineage", asset_id="g/042/07")
    assert [n["asset_id"] for n in upstream["nodes"]] == ["g/042/07", "c/042", "root"]


def test_prov_of_a_wide_lineage_is_capped_and_says_so(wide):
    response = wide.client.get(
        "/v1/prov", params={"asset_id": "root", "direction": "downstream"}, headers=wide.headers()
    )
    assert response.status_code == 200
    assert response.headers["x-provledger-truncated"] == "true"
    document = response.json()
    assert len(document["entity"]) == 1_000


def test_cursor_encoding_is_opaque_base64url(story):
    page = story.get("/v1/blocks", limit=1)
    cursor = page["next_cursor"]
    assert "=" not in cursor
    assert json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))[0] == "blocks"


# --- where the API is served ------------------------------------------------------------------


def test_the_node_config_names_the_rest_address(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(
        render("node-0", "g.json", "k.json", "127.0.0.1:7050", rest_listen="[::1]:7250")
    )
    assert NodeConfig.load(path).rest_listen == "[::1]:7250"
    assert split_host_port("[::1]:7250") == ("::1", 7250)
    assert split_host_port("127.0.0.1:7250") == ("127.0.0.1", 7250)
    path.write_text(render("node-0", "g.json", "k.json", "127.0.0.1:7050"))
    assert NodeConfig.load(path).rest_listen is None
    for bad in ('listen = "7250"', 'listen = "host:"', 'listen = "host:70000"', "listen = 5"):
        path.write_text(
            render("node-0", "g.json", "k.json", "127.0.0.1:7050") + f"\n[rest]\n{bad}\n"
        )
        with pytest.raises(ConfigError, match=r"\[rest\] listen"):
            NodeConfig.load(path)
    path.write_text('rest = "x"\n' + render("node-0", "g.json", "k.json", "127.0.0.1:7050"))
    with pytest.raises(ConfigError, match=r"\[rest\] must be a table"):
        NodeConfig.load(path)


def test_consortium_init_gives_node_k_the_rest_port_base_plus_200_plus_k(tmp_path):
    layout = init_consortium(tmp_path / "chain", 2, base_port=20_000)
    assert layout.rest_addresses == ["127.0.0.1:20200", "127.0.0.1:20201"]
    assert [NodeConfig.load(c).rest_listen for c in layout.node_configs] == layout.rest_addresses


def test_a_member_sees_the_shape_of_a_lineage_but_not_others_details(story):
    """agency-a owns HEALTH; agency-b derived FUSED from it. agency-a may trace where its data
    went (ids, owners, classifications) but not read agency-b's asset details."""
    as_member = story.get("/v1/lineage", who="agency-a", asset_id=HEALTH, direction="downstream")
    nodes = {node["asset_id"]: node for node in as_member["nodes"]}
    assert nodes[HEALTH]["redacted"] is False and nodes[HEALTH]["content_digest"]
    fused = nodes[FUSED]
    assert fused["redacted"] is True
    assert (fused["owner_id"], fused["classification"], fused["activity"]) == (
        "agency-b",
        "important",
        "fusion",
    )
    assert fused["content_digest"] == fused["name"] == fused["origin_event_id"] == ""
    assert fused["holder_ids"] == []
    as_auditor = story.get("/v1/lineage", asset_id=HEALTH, direction="downstream")
    unredacted = {node["asset_id"]: node for node in as_auditor["nodes"]}[FUSED]
    assert unredacted["redacted"] is False and unredacted["content_digest"]
    prov = story.get("/v1/prov", who="agency-a", asset_id=HEALTH, direction="downstream")
    assert digest("fused").hex() not in str(prov)


def test_a_member_gets_no_lineage_bundle_holding_what_its_lineage_redacts(story):
    """The regulator bought FUSED: as a member it sees FUSED whole and its parents redacted.
    The bundle's signed events cannot be redacted, so it is refused, naming why; agency-b,
    which may see every asset upstream of REPORT, gets that bundle."""
    member = story.headers("regulator", role="member")
    lineage = story.client.get("/v1/lineage", params={"asset_id": FUSED}, headers=member).json()
    redacted = {node["asset_id"] for node in lineage["nodes"] if node["redacted"]}
    assert redacted == {HEALTH, TRIPS}
    response = story.client.get("/v1/evidence/lineage", params={"asset_id": FUSED}, headers=member)
    assert response.status_code == 403, response.text
    assert response.json()["error"] == "forbidden"
    assert HEALTH in response.json()["reason"]
    assert digest("health").hex() not in response.text
    allowed = story.client.get(
        "/v1/evidence/lineage",
        params={"asset_id": REPORT},
        headers=story.headers("agency-b", role="member"),
    )
    assert allowed.status_code == 200, allowed.text


def test_the_authorization_answer_withholds_events_the_member_may_not_see(story):
    question = {
        "member_id": "regulator",
        "asset_id": HEALTH,
        "purpose": "analytics",
        "operation": "read",
    }
    response = story.client.get(
        "/v1/authorization", params=question, headers=story.headers("regulator", role="member")
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["authorised"], answer["code"]) == (False, "no_grant")
    assert answer["deciding_events"] == [] and answer["withheld_events"] == 1
    for secret in (digest("health").hex(), "Hospital records", story.ids["health"]):
        assert secret not in response.text
    full = story.get("/v1/authorization", **question)
    assert [e["event"]["event_id"] for e in full["deciding_events"]] == [story.ids["health"]]
    assert full["withheld_events"] == 0


def test_a_parent_owner_sees_a_derivation_in_the_lineage_only(story):
    """agency-b derived FUSED from agency-a's HEALTH. The derivation event carries FUSED's
    name and digest, which /v1/lineage redacts for agency-a; so agency-a cannot read that
    event by id or in HEALTH's history either, while the lineage still shows the edge."""
    member = story.headers("agency-a", role="member")
    fused_event = story.ids["fused"]
    response = story.client.get(f"/v1/events/{fused_event}", headers=member)
    assert response.status_code == 403, response.text
    assert story.get(f"/v1/events/{fused_event}")["kind"] == "asset_derived"  # an auditor

    def history(who_headers: dict[str, str], limit: int) -> list[str]:
        ids, cursor = [], None
        while True:
            params = {"asset_id": HEALTH, "limit": limit, **({"cursor": cursor} if cursor else {})}
            page = story.client.get("/v1/assets/history", params=params, headers=who_headers)
            assert page.status_code == 200, page.text
            ids += [item["event_id"] for item in page.json()["items"]]
            cursor = page.json()["next_cursor"]
            if cursor is None:
                return ids

    everything = history(story.headers(), 500)
    assert fused_event in everything
    for limit in (1, 2, 500):  # pages are filled past the hidden event and end
        seen = history(member, limit)
        assert fused_event not in seen
        assert seen == [e for e in everything if e != fused_event]
    lineage = story.get("/v1/lineage", who="agency-a", asset_id=HEALTH, direction="downstream")
    assert {"parent": HEALTH, "child": FUSED} in lineage["edges"]

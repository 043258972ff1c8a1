"""Data customs through a real store and the REST API (node/assessments.py, node/rest/customs.py,
protocol/access.py `sees_assessment`): an assessment judged at the head block's time, its
overdue periods visible to an auditor and listed with `overdue=true`, who may read it, and a
reclassification joining its asset's history."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from support.memory_state import GENESIS_TIME_MS, Consortium, digest

from provledger.node.rest import StoreView, create_app
from provledger.node.store import Store
from provledger.protocol import blocks
from provledger.protocol.tokens import issue_token
from provledger.v1 import ledger_pb2

T = GENESIS_TIME_MS
HOUR_MS = 3_600_000
IMPORTANT = ledger_pb2.CLASSIFICATION_IMPORTANT
CORE = ledger_pb2.CLASSIFICATION_CORE


class StoreChain:
    """Blocks committed into a real `Store` the way a node commits them."""

    def __init__(self, consortium: Consortium, path: Path) -> None:
        self.consortium = consortium
        self.store = Store(path, consortium.genesis)
        self.last_commit: ledger_pb2.CommitCertificate | None = None

    def commit(self, time_ms: int, *signed: ledger_pb2.SignedEvent) -> None:
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
            signatures_checked=True,
        )
        certificate = consortium.certificate(executed)
        self.store.commit_block(executed, certificate)
        self.last_commit = certificate


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Consortium, StoreChain, TestClient]]:
    c = Consortium()
    chain = StoreChain(c, tmp_path / "store")
    chain.commit(
        T + 1_000,
        c.sign(
            "agency-a",
            "asset_registered",
            asset_id="raw/important",
            content_digest=digest("raw"),
            classification=IMPORTANT,
            name="raw",
        ),
        c.sign(
            "agency-a",
            "asset_registered",
            asset_id="raw/other",
            content_digest=digest("other"),
            classification=IMPORTANT,
            name="other",
        ),
    )
    chain.commit(
        T + 2_000,
        c.sign(
            "regulator",
            "security_assessed",
            assessment_id="assess-1",
            asset_ids=["raw/important"],
            recipient_id="agency-b",
            destination_region="hk",
            purposes=["research"],
            expires_at_ms=T + 10 * HOUR_MS,
            report_interval_ms=HOUR_MS,
            report_digest=digest("assessment"),
        ),
        c.sign(
            "regulator",
            "security_assessed",
            assessment_id="assess-2",
            asset_ids=["raw/other"],
            recipient_id="agency-b",
            destination_region="hk",
            purposes=["research"],
            expires_at_ms=T + 10 * HOUR_MS,
            report_digest=digest("assessment 2"),
        ),
    )
    chain.commit(
        T + 3_000,
        c.sign(
            "agency-a",
            "asset_shared",
            asset_id="raw/important",
            recipient_id="agency-b",
            destination_region="hk",
            assessment_id="assess-1",
            purpose="research",
        ),
    )
    client = TestClient(create_app(StoreView(chain.store, c.genesis, "n", lambda: T + HOUR_MS)))
    yield c, chain, client
    chain.store.close()


def _headers(c: Consortium, member_id: str, role: str) -> dict[str, str]:
    token = issue_token(c[member_id].key, member_id, role, c.chain_id, T, 24 * HOUR_MS)
    return {"Authorization": f"Bearer {token}"}


def _get(client: TestClient, c: Consortium, path: str, who: str, role: str = "member", **params):
    return client.get(path, params=params, headers=_headers(c, who, role))


def test_an_assessment_is_judged_at_the_head_and_its_missed_report_is_listed(world):
    c, chain, client = world
    one = _get(client, c, "/v1/assessments/one", "auditor", "auditor", assessment_id="assess-1")
    assert one.status_code == 200, one.text
    view = one.json()
    assert view["first_transfer_ms"] == T + 3_000
    assert len(view["transfer_event_ids"]) == 1
    assert view["overdue_periods"] == []
    assert view["next_report_due_ms"] == T + 3_000 + HOUR_MS
    assert view["judged_at_ms"] == T + 3_000
    listed = _get(client, c, "/v1/assessments", "auditor", "auditor", overdue="true").json()
    assert listed == {"items": [], "next_cursor": None}

    # the head passes the end of period 1 with no report: overdue, for an auditor to see
    chain.commit(
        T + 3_000 + HOUR_MS,
        c.sign(
            "agency-a",
            "asset_registered",
            asset_id="later",
            content_digest=digest("l"),
            classification=ledger_pb2.CLASSIFICATION_GENERAL,
        ),
    )
    view = _get(client, c, "/v1/assessments/one", "auditor", "auditor", assessment_id="assess-1")
    assert view.json()["overdue_periods"] == [1]
    assert view.json()["next_report_due_ms"] == T + 3_000 + 2 * HOUR_MS
    listed = _get(client, c, "/v1/assessments", "auditor", "auditor", overdue="true").json()
    assert [item["assessment_id"] for item in listed["items"]] == ["assess-1"]
    every = _get(client, c, "/v1/assessments", "auditor", "auditor").json()
    assert [item["assessment_id"] for item in every["items"]] == ["assess-1", "assess-2"]
    paged = _get(client, c, "/v1/assessments", "auditor", "auditor", limit=1).json()
    assert [item["assessment_id"] for item in paged["items"]] == ["assess-1"]
    rest = _get(client, c, "/v1/assessments", "auditor", "auditor", cursor=paged["next_cursor"])
    assert [item["assessment_id"] for item in rest.json()["items"]] == ["assess-2"]

    # the recipient files it; nothing is overdue any more
    chain.commit(
        T + 4_000 + HOUR_MS,
        c.sign(
            "agency-b",
            "transfer_reported",
            report_id="r-1",
            assessment_id="assess-1",
            period=1,
            report_digest=digest("r-1"),
        ),
    )
    view = _get(client, c, "/v1/assessments/one", "agency-b", assessment_id="assess-1").json()
    assert view["overdue_periods"] == []
    assert [r["report_id"] for r in view["reports"]] == ["r-1"]
    listed = _get(client, c, "/v1/assessments", "auditor", "auditor", overdue="true").json()
    assert listed["items"] == []


def test_who_may_read_an_assessment(world):
    c, _, client = world
    for who in ("agency-a", "agency-b", "regulator"):  # owner of the scope, recipient, author
        answer = _get(client, c, "/v1/assessments/one", who, assessment_id="assess-1")
        assert answer.status_code == 200, (who, answer.text)
    refused = _get(client, c, "/v1/assessments/one", "exchange", assessment_id="assess-1")
    assert (refused.status_code, refused.json()["error"]) == (403, "forbidden")
    listed = _get(client, c, "/v1/assessments", "exchange").json()
    assert listed["items"] == []
    unknown = _get(client, c, "/v1/assessments/one", "auditor", "auditor", assessment_id="nil")
    assert (unknown.status_code, unknown.json()["error"]) == (404, "unknown_assessment")
    bad = _get(client, c, "/v1/assessments", "auditor", "auditor", cursor="not-a-cursor")
    assert (bad.status_code, bad.json()["error"]) == (400, "bad_cursor")


def test_a_reclassification_and_an_assessment_join_the_asset_history(world):
    c, chain, client = world
    chain.commit(
        T + 5_000,
        c.sign(
            "regulator",
            "asset_reclassified",
            asset_id="raw/important",
            classification=CORE,
            reason="national security",
        ),
    )
    history = _get(client, c, "/v1/assets/history", "agency-a", asset_id="raw/important").json()
    kinds = [item["kind"] for item in history["items"]]
    assert kinds == ["asset_registered", "security_assessed", "asset_shared", "asset_reclassified"]
    asset = _get(client, c, "/v1/assets", "agency-a", asset_id="raw/important").json()
    assert asset["classification"] == "core"

"""Cases as the node reads them (node/cases.py over a real LevelDB store): the indexes by
party and by subject filled when a block commits, ListCases's filters and pages (and a page
that ends early after its scanning budget), GetCase's complaints, timeline, deadline and
finality, and who may read a case (protocol/access.py `sees_case`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from support.memory_state import GENESIS_TIME_MS, MEMBER_ROLES, Consortium, digest

from provledger.node import cases, schema
from provledger.node.queries import LedgerQueries, QueryError
from provledger.node.rest import StoreView, create_app
from provledger.node.store import Store
from provledger.protocol import blocks
from provledger.protocol.access import Reader
from provledger.protocol.tokens import issue_token
from provledger.v1 import ledger_pb2, state_pb2

T = GENESIS_TIME_MS
WINDOW_MS = 100_000
ORDER = ledger_pb2.COMPLAINT_SUBJECT_ORDER
OFFER = ledger_pb2.COMPLAINT_SUBJECT_OFFER
AUDITOR = Reader("auditor", "auditor")


class Chain:
    """Blocks committed into a real store the way a node commits them."""

    def __init__(self, consortium: Consortium, path: Path) -> None:
        self.consortium = consortium
        self.store = Store(path, consortium.genesis)
        self.last_commit: ledger_pb2.CommitCertificate | None = None

    def commit(self, time_ms: int, *events: tuple[str, str, dict[str, Any]]) -> None:
        c = self.consortium
        executed = blocks.execute_block(
            state=self.store,
            log=self.store.log,
            tip=self.store.tip,
            chain_id=c.chain_id,
            candidates=[
                c.decode(c.sign(author, kind, **fields)) for author, kind, fields in events
            ],
            time_ms=time_ms,
            proposer_id=next(iter(c.validator_keys)),
            genesis_validators=c.genesis.validator_set,
            last_commit=self.last_commit,
            strict=True,
        )
        certificate = c.certificate(executed)
        self.store.commit_block(executed, certificate)
        self.last_commit = certificate


def complaint(complaint_id: str, kind: int, subject_id: str, respondent_id: str) -> dict:
    return dict(
        complaint_id=complaint_id,
        subject_kind=kind,
        subject_id=subject_id,
        respondent_id=respondent_id,
        statement_digest=digest(complaint_id),
        category="misuse",
    )


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Chain:
    """case-1 (agency-b against agency-a about order-1) is ruled; case-2 (the exchange
    against agency-a about offer-1) is open; case-3 (agency-a against agency-b about order-1)
    is open."""
    c = Consortium(
        member_roles=MEMBER_ROLES | {"regulator-2": "regulator"},
        supervision={"appeal_window_ms": WINDOW_MS},
    )
    chain = Chain(c, tmp_path_factory.mktemp("cases") / "store")
    chain.commit(
        T + 1_000,
        (
            "agency-a",
            "asset_registered",
            dict(asset_id="asset-1", content_digest=digest("a"), classification=1, name="a"),
        ),
    )
    chain.commit(
        T + 2_000,
        (
            "exchange",
            "offer_listed",
            dict(
                offer_id="offer-1",
                asset_id="asset-1",
                seller_id="agency-a",
                price=9,
                currency="CNY",
            ),
        ),
    )
    chain.commit(
        T + 3_000, ("agency-b", "order_placed", dict(order_id="order-1", offer_id="offer-1"))
    )
    chain.commit(
        T + 4_000,
        ("agency-b", "complaint_filed", complaint("complaint-1", ORDER, "order-1", "agency-a")),
        ("exchange", "complaint_filed", complaint("complaint-2", OFFER, "offer-1", "agency-a")),
        ("agency-a", "complaint_filed", complaint("complaint-3", ORDER, "order-1", "agency-b")),
    )
    chain.commit(
        T + 5_000,
        ("regulator", "case_opened", dict(case_id="case-1", complaint_ids=["complaint-1"])),
        ("regulator", "case_opened", dict(case_id="case-2", complaint_ids=["complaint-2"])),
        ("regulator", "case_opened", dict(case_id="case-3", complaint_ids=["complaint-3"])),
    )
    chain.commit(
        T + 6_000,
        (
            "regulator",
            "case_ruled",
            dict(
                case_id="case-1",
                outcome=ledger_pb2.RULING_OUTCOME_DISMISSED,
                findings="nothing wrong",
                decision_digest=digest("decision"),
            ),
        ),
    )
    return chain


@pytest.fixture(scope="module")
def queries(chain: Chain) -> LedgerQueries:
    return LedgerQueries(chain.store, chain.consortium.genesis)


@pytest.fixture(scope="module")
def client(chain: Chain) -> Iterator[TestClient]:
    view = StoreView(chain.store, chain.consortium.genesis, "validator-0", clock_ms=lambda: T)
    with TestClient(create_app(view)) as client:
        yield client


def listed(queries: LedgerQueries, reader: Reader = AUDITOR, **filters: Any) -> tuple:
    arguments: dict[str, Any] = dict(
        member_id=None, subject_id=None, status=0, limit=10, after_case_id=None
    )
    page = cases.list_cases(queries, reader, **(arguments | filters))
    return [case.case_id for case in page.cases], page.more, page.next_after_case_id


def test_cases_are_listed_by_party_subject_and_status(queries: LedgerQueries):
    assert listed(queries) == (["case-1", "case-2", "case-3"], False, "")
    assert listed(queries, member_id="exchange") == (["case-2"], False, "")
    assert listed(queries, member_id="agency-a")[0] == ["case-1", "case-2", "case-3"]
    assert listed(queries, subject_id="order-1")[0] == ["case-1", "case-3"]
    assert listed(queries, subject_id="offer-1")[0] == ["case-1", "case-2", "case-3"]
    assert listed(queries, subject_id="asset-1")[0] == ["case-1", "case-2", "case-3"]
    assert listed(queries, member_id="exchange", subject_id="order-1")[0] == []
    assert listed(queries, member_id="agency-b", subject_id="order-1")[0] == ["case-1", "case-3"]
    assert listed(queries, status=state_pb2.CASE_STATUS_RULED)[0] == ["case-1"]
    assert listed(queries, status=state_pb2.CASE_STATUS_OPEN)[0] == ["case-2", "case-3"]


def test_cases_are_paged_by_case_id(queries: LedgerQueries):
    assert listed(queries, limit=2) == (["case-1", "case-2"], True, "case-2")
    assert listed(queries, limit=2, after_case_id="case-2") == (["case-3"], False, "")
    assert listed(queries, limit=1, after_case_id="case-2") == (["case-3"], False, "")


def test_a_page_ends_after_its_scanning_budget(queries: LedgerQueries, monkeypatch):
    monkeypatch.setattr(cases, "CASES_SCANNED_PER_PAGE_MAX", 1)
    # the first case scanned does not match: the page is empty and says where to go on
    status = state_pb2.CASE_STATUS_OPEN
    assert listed(queries, status=status) == ([], True, "case-1")
    assert listed(queries, status=status, after_case_id="case-1") == (["case-2"], True, "case-2")
    assert listed(queries, status=status, after_case_id="case-2") == (["case-3"], False, "")


def test_members_list_the_cases_they_may_read(queries: LedgerQueries):
    exchange = Reader("exchange", "member")
    assert listed(queries, exchange) == (["case-2"], False, "")
    assert listed(queries, exchange, member_id="agency-a")[0] == ["case-2"]
    regulator = Reader("regulator-2", "member")  # a regulator reads every case
    assert listed(queries, regulator)[0] == ["case-1", "case-2", "case-3"]
    auditor = Reader("auditor", "member")  # so does an auditor, with a member's token too
    assert listed(queries, auditor)[0] == ["case-1", "case-2", "case-3"]


def test_a_case_with_its_complaints_timeline_and_finality(queries: LedgerQueries):
    answer = cases.require_case(queries, Reader("agency-b", "member"), "case-1")
    assert answer.record.status == state_pb2.CASE_STATUS_RULED
    assert [c.complaint.complaint_id for c in answer.complaints] == ["complaint-1"]
    assert [e.kind for e in answer.timeline] == ["complaint_filed", "case_opened", "case_ruled"]
    assert [e.time_ms for e in answer.timeline] == [T + 4_000, T + 5_000, T + 6_000]
    assert answer.timeline[2].summary.startswith("ruled dismissed by regulator: no remedies")
    assert answer.appeal_deadline_ms == T + 6_000 + WINDOW_MS
    assert not answer.final  # the head's time is within the window
    message = cases.case_message(answer)
    assert [e.summary for e in message.timeline] == [e.summary for e in answer.timeline]
    assert message.appeal_deadline_ms == answer.appeal_deadline_ms
    open_case = cases.require_case(queries, AUDITOR, "case-2")
    assert (open_case.appeal_deadline_ms, open_case.final) == (0, False)


@pytest.mark.parametrize(
    ("reader", "case_id", "code"),
    [
        (Reader("exchange", "member"), "case-1", "forbidden"),
        (Reader("agency-b", "member"), "case-2", "forbidden"),
        (AUDITOR, "case-x", "unknown_case"),
    ],
)
def test_who_may_not_read_a_case(queries: LedgerQueries, reader: Reader, case_id: str, code: str):
    with pytest.raises(QueryError) as raised:
        cases.require_case(queries, reader, case_id)
    assert raised.value.code == code


def test_the_case_indexes_are_named():
    assert (
        schema.describe_key(schema.cases_by_member_prefix("a"))
        == "the cases-by-member index of 'a'"
    )
    assert schema.describe_key(schema.cases_by_subject_key("o", "c")).startswith(
        "the cases-by-subject index"
    )


@pytest.mark.parametrize("field", ["member_id", "subject_id", "after_case_id"])
def test_a_filter_that_is_no_identifier_is_a_bad_request(queries: LedgerQueries, field: str):
    with pytest.raises(QueryError) as raised:
        listed(queries, **{field: "x" * 300})
    assert (raised.value.kind, raised.value.code) == ("bad_request", "bad_identifier")


# --- over REST: /v1/cases (an opaque cursor bound to the filters) and /v1/cases/one ----------


def rest(chain: Chain, client: TestClient, who: str, path: str, **params: Any):
    key = chain.consortium[who].key
    token = issue_token(key, who, "member", chain.consortium.chain_id, T, 3_600_000)
    return client.get(path, params=params, headers={"Authorization": f"Bearer {token}"})


def rest_pages(chain: Chain, client: TestClient, **params: Any) -> list[list[str]]:
    """The case ids of every page of a listing (the auditor's), following next_cursor."""
    pages: list[list[str]] = []
    cursor = None
    while True:
        answer = rest(
            chain,
            client,
            "auditor",
            "/v1/cases",
            **params,
            **({"cursor": cursor} if cursor else {}),
        )
        assert answer.status_code == 200, answer.text
        assert set(answer.json()) == {"items", "next_cursor"}
        pages.append([case["case_id"] for case in answer.json()["items"]])
        cursor = answer.json()["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) <= 3, "the pages never end"


def test_rest_pages_cases_with_a_cursor(chain: Chain, client: TestClient):
    assert rest_pages(chain, client) == [["case-1", "case-2", "case-3"]]
    assert rest_pages(chain, client, limit=2) == [["case-1", "case-2"], ["case-3"]]
    assert rest_pages(chain, client, status="open", limit=1) == [["case-2"], ["case-3"]]


def test_a_rest_page_ends_after_its_scanning_budget_and_goes_on(chain, client, monkeypatch):
    monkeypatch.setattr(cases, "CASES_SCANNED_PER_PAGE_MAX", 1)
    assert rest_pages(chain, client, status="open") == [[], ["case-2"], ["case-3"]]


def test_a_rest_cursor_belongs_to_its_filters(chain: Chain, client: TestClient):
    cursor = rest(chain, client, "auditor", "/v1/cases", status="open", limit=1).json()
    assert cursor["next_cursor"] is not None
    for other in (
        {},
        {"status": "ruled"},
        {"status": "open", "member_id": "agency-a"},
        {"status": "open", "subject_id": "order-1"},
    ):
        answer = rest(chain, client, "auditor", "/v1/cases", cursor=cursor["next_cursor"], **other)
        assert (answer.status_code, answer.json()["error"]) == (400, "bad_cursor"), other
    answer = rest(chain, client, "auditor", "/v1/cases", cursor="case-2")
    assert (answer.status_code, answer.json()["error"]) == (400, "bad_cursor")


def test_rest_reads_one_case_by_its_id_as_a_query_parameter(chain: Chain, client: TestClient):
    answer = rest(chain, client, "agency-b", "/v1/cases/one", case_id="case-1")
    assert answer.status_code == 200, answer.text
    assert answer.json()["case"]["case_id"] == "case-1"
    assert [e["kind"] for e in answer.json()["timeline"]] == [
        "complaint_filed",
        "case_opened",
        "case_ruled",
    ]
    for who, case_id, status, code in (
        ("agency-b", "case-2", 403, "forbidden"),
        ("auditor", "case-x", 404, "unknown_case"),
        ("auditor", "has space", 422, "bad_parameter"),
    ):
        answer = rest(chain, client, who, "/v1/cases/one", case_id=case_id)
        assert (answer.status_code, answer.json()["error"]) == (status, code), case_id
    # the path form is gone: the id is a query parameter, as for every id that may hold "/"
    answer = rest(chain, client, "auditor", "/v1/cases/case-1")
    assert (answer.status_code, answer.json()["error"]) == (404, "not_found")

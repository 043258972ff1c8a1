"""A full case through real node processes, over gRPC and REST (issue 10, ADR 018).

One node serves a consortium to which governance adds a second regulator. A trade goes
listed -> ordered -> delivered; the buyer complains that nothing usable was delivered; the
regulator opens a case, records a step and rules with a refund and a delisting; the seller
appeals; the second regulator decides the appeal. Then the case is read over both APIs: its
record, complaints and timeline in words (one text, protocol/case_timeline.py), its finality,
the remedies where they act (the order refunded, the offer delisted), the lists of cases by
party, subject and status, and who may read it (parties, regulators, auditors; not others).
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest
from support.processes import NodeCluster, ledger_client, wait_until
from support.rest_support import RestClient, init_rest_consortium

from provledger.cli.client import EventSigner, Identity
from provledger.cli.consortium import ConsortiumLayout
from provledger.protocol import crypto
from provledger.protocol.crypto import SigningKey
from provledger.protocol.rules import governance_sign_bytes
from provledger.protocol.tokens import ROLE_AUDITOR, ROLE_MEMBER, issue_token
from provledger.v1 import api_pb2, ledger_pb2, state_pb2

pytestmark = pytest.mark.integration

RPC_TIMEOUT_S = 20.0
COMMIT_TIMEOUT_MS = 30_000
READY_TIMEOUT_S = 60.0
TOKEN_TTL_MS = 3_600_000
MEMBERS = ("agency-a", "agency-b", "exchange", "regulator", "auditor")
SECOND_REGULATOR = "regulator-2"
SECOND_REGULATOR_KEY = SigningKey.from_seed(hashlib.sha256(b"test_cases regulator-2").digest())
KINDS = [
    "complaint_filed",
    "case_opened",
    "case_step_recorded",
    "case_ruled",
    "ruling_appealed",
    "appeal_decided",
]


def digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclasses.dataclass(frozen=True)
class Story:
    layout: ConsortiumLayout
    chain_id: str
    ids: dict[str, str]
    events: dict[str, bytes]


def _governance_fields(layout: ConsortiumLayout) -> dict[str, Any]:
    """A change adding the second regulator, approved by every member."""
    identities = {m: Identity.load(layout.identities[m]) for m in MEMBERS}
    added = ledger_pb2.MemberAdded(
        member_id=SECOND_REGULATOR,
        name="Market Supervision Bureau",
        role=ledger_pb2.ROLE_REGULATOR,
        public_key=SECOND_REGULATOR_KEY.public_key,
    )
    change = ledger_pb2.GovernanceChange(proposal_nonce=time.time_ns(), member_added=added)
    change_bytes = change.SerializeToString(deterministic=True)
    message = governance_sign_bytes(identities["agency-a"].chain_id, change_bytes)
    approvals = [
        ledger_pb2.Approval(
            approver=ledger_pb2.Author(member_id=member, key_id=identity.key.key_id),
            signature=identity.key.sign(crypto.DOMAIN_GOVERNANCE, message),
        )
        for member, identity in identities.items()
    ]
    return {"change": change_bytes, "approvals": approvals}


def tell_the_case(layout: ConsortiumLayout) -> Story:
    suffix = str(now_ms())
    ids = {name: f"{name}/{suffix}" for name in ("asset", "offer", "order", "complaint", "case")}
    signers = {m: EventSigner(Identity.load(layout.identities[m])) for m in MEMBERS}
    chain_id = signers["agency-a"].identity.chain_id
    signers[SECOND_REGULATOR] = EventSigner(
        Identity(SECOND_REGULATOR, "regulator", chain_id, SECOND_REGULATOR_KEY)
    )
    refund = {"order_id": ids["order"], "amount": 500, "currency": "CNY", "reference": "pay-1"}
    steps: list[tuple[str, str, str, dict[str, Any]]] = [
        ("govern", "agency-a", "governance", _governance_fields(layout)),
        (
            "register",
            "agency-a",
            "asset_registered",
            dict(
                asset_id=ids["asset"],
                content_digest=digest("asset"),
                name="Clinic visits",
                classification=ledger_pb2.CLASSIFICATION_GENERAL,
            ),
        ),
        (
            "list",
            "exchange",
            "offer_listed",
            dict(
                offer_id=ids["offer"],
                asset_id=ids["asset"],
                seller_id="agency-a",
                price=500,
                currency="CNY",
                title="Clinic visits 2025",
            ),
        ),
        ("order", "agency-b", "order_placed", dict(order_id=ids["order"], offer_id=ids["offer"])),
        (
            "deliver",
            "agency-a",
            "order_delivered",
            dict(order_id=ids["order"], delivery_digest=digest("an empty file")),
        ),
        (
            "complain",
            "agency-b",
            "complaint_filed",
            dict(
                complaint_id=ids["complaint"],
                subject_kind=ledger_pb2.COMPLAINT_SUBJECT_ORDER,
                subject_id=ids["order"],
                respondent_id="agency-a",
                statement_digest=digest("statement"),
                evidence_digests=[digest("the empty file")],
                category="non_delivery",
            ),
        ),
        (
            "open",
            "regulator",
            "case_opened",
            dict(case_id=ids["case"], complaint_ids=[ids["complaint"]], summary="empty delivery"),
        ),
        (
            "step",
            "regulator",
            "case_step_recorded",
            dict(case_id=ids["case"], step="information_requested", note="asked the seller"),
        ),
        (
            "rule",
            "regulator",
            "case_ruled",
            dict(
                case_id=ids["case"],
                outcome=ledger_pb2.RULING_OUTCOME_UPHELD,
                findings="the delivered file was empty",
                decision_digest=digest("decision"),
                remedies=[
                    ledger_pb2.Remedy(refund=ledger_pb2.Refund(**refund)),
                    ledger_pb2.Remedy(delist=ledger_pb2.DelistOffer(offer_id=ids["offer"])),
                ],
            ),
        ),
        (
            "appeal",
            "agency-a",
            "ruling_appealed",
            dict(case_id=ids["case"], grounds_digest=digest("grounds"), grounds="it was a test"),
        ),
        (
            "decide",
            SECOND_REGULATOR,
            "appeal_decided",
            dict(
                case_id=ids["case"],
                decision=ledger_pb2.APPEAL_DECISION_UPHELD,
                reasons="the file was empty",
            ),
        ),
    ]
    events: dict[str, bytes] = {}
    with ledger_client(layout.grpc_addresses[0]) as client:
        for name, author, kind, fields in steps:
            request = api_pb2.SubmitAndWaitRequest(
                event=signers[author].event(kind, **fields), timeout_ms=COMMIT_TIMEOUT_MS
            )
            try:
                receipt = client.stub.SubmitAndWait(
                    request, timeout=COMMIT_TIMEOUT_MS / 1000 + RPC_TIMEOUT_S
                )
            except grpc.RpcError as error:
                raise AssertionError(f"step {name}: {error.details()}") from None
            events[name] = receipt.event_id
    return Story(layout=layout, chain_id=chain_id, ids=ids, events=events)


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    directory = tmp_path_factory.mktemp("cases")
    layout = init_rest_consortium(directory, 1)
    with NodeCluster.for_layout(layout, directory / "logs"):
        with RestClient(layout.rest_addresses[0]) as anonymous:

            def rest_up() -> bool:
                try:
                    return anonymous.response("/v1/health").status_code == 200
                except httpx.TransportError:  # not listening yet
                    return False

            wait_until(rest_up, READY_TIMEOUT_S, "the REST API answering /v1/health")
        yield tell_the_case(layout)


def token(story: Story, member_id: str, role: str = ROLE_MEMBER) -> str:
    key = Identity.load(story.layout.identities[member_id]).key
    return issue_token(key, member_id, role, story.chain_id, now_ms(), TOKEN_TTL_MS)


def rest(story: Story, member_id: str | None, role: str = ROLE_MEMBER) -> RestClient:
    address = story.layout.rest_addresses[0]
    return RestClient(address, token(story, member_id, role) if member_id else None)


def test_the_case_over_grpc(story: Story):
    ids, events = story.ids, story.events
    with ledger_client(story.layout.grpc_addresses[0]) as client:  # the auditor's token
        view = client.stub.GetCase(
            api_pb2.GetCaseRequest(case_id=ids["case"]), timeout=RPC_TIMEOUT_S
        )
        order = client.stub.GetOrder(
            api_pb2.GetOrderRequest(order_id=ids["order"]), timeout=RPC_TIMEOUT_S
        )
    record = view.record
    assert record.status == state_pb2.CASE_STATUS_APPEAL_DECIDED
    assert (record.ruled_by, record.appellant_id) == ("regulator", "agency-a")
    assert [vote.regulator_id for vote in record.votes] == [SECOND_REGULATOR]
    assert list(record.parties) == ["agency-b", "agency-a"]
    assert view.final
    assert view.appeal_deadline_ms == record.ruled_at_ms + 30 * 24 * 3_600_000
    assert [c.complaint.complaint_id for c in view.complaints] == [ids["complaint"]]
    names = ["complain", "open", "step", "rule", "appeal", "decide"]
    assert [entry.event_id for entry in view.timeline] == [events[n] for n in names]
    assert list(record.event_ids) == [events[n] for n in names]
    assert [entry.kind for entry in view.timeline] == KINDS
    log_indexes = [entry.log_index for entry in view.timeline]
    assert log_indexes == sorted(log_indexes)
    assert all(entry.time_ms > 0 and entry.height > 0 for entry in view.timeline)
    summaries = [entry.summary for entry in view.timeline]
    assert summaries[0] == (
        f"complaint {ids['complaint']} filed by agency-b against agency-a about order "
        f"{ids['order']} (non_delivery), with 1 piece of evidence"
    )
    assert summaries[3].startswith(
        f"ruled upheld by regulator: refund of 500 CNY (minor units) on order {ids['order']}, "
        f"reference pay-1; offer {ids['offer']} delisted"
    )
    assert summaries[5] == (
        f"appeal decided by {SECOND_REGULATOR}: ruling upheld; reasons: the file was empty"
    )
    # the remedies where they act
    assert order.status == state_pb2.ORDER_STATUS_REFUNDED
    assert (order.refund.amount, order.refund_case_id) == (500, ids["case"])
    assert order.event_ids[-1] == events["rule"]


def test_cases_are_listed_by_party_subject_and_status_over_grpc(story: Story):
    case_id = story.ids["case"]
    with ledger_client(story.layout.grpc_addresses[0]) as client:

        def listed(**fields: Any) -> list[str]:
            answer = client.stub.ListCases(
                api_pb2.ListCasesRequest(**fields), timeout=RPC_TIMEOUT_S
            )
            return [case.case_id for case in answer.cases]

        assert case_id in listed()
        assert case_id in listed(member_id="agency-b")
        assert case_id not in listed(member_id="exchange")
        assert case_id in listed(subject_id=story.ids["order"])
        assert case_id in listed(subject_id=story.ids["asset"])  # the order's asset
        assert case_id in listed(member_id="agency-a", subject_id=story.ids["order"])
        assert case_id not in listed(member_id="agency-a", subject_id="nothing")
        assert case_id in listed(status=state_pb2.CASE_STATUS_APPEAL_DECIDED)
        assert case_id not in listed(status=state_pb2.CASE_STATUS_OPEN)
        with pytest.raises(grpc.RpcError) as raised:
            client.stub.ListCases(api_pb2.ListCasesRequest(status=77), timeout=RPC_TIMEOUT_S)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.RpcError) as raised:
            client.stub.ListCases(
                api_pb2.ListCasesRequest(member_id="x" * 300), timeout=RPC_TIMEOUT_S
            )
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert raised.value.details().startswith("bad_identifier:")
        with pytest.raises(grpc.RpcError) as raised:
            client.stub.GetCase(api_pb2.GetCaseRequest(case_id="nothing"), timeout=RPC_TIMEOUT_S)
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    with ledger_client(story.layout.grpc_addresses[0], token(story, "exchange")) as client:
        with pytest.raises(grpc.RpcError) as raised:
            client.stub.GetCase(api_pb2.GetCaseRequest(case_id=case_id), timeout=RPC_TIMEOUT_S)
        assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
        answer = client.stub.ListCases(api_pb2.ListCasesRequest(), timeout=RPC_TIMEOUT_S)
        assert case_id not in [case.case_id for case in answer.cases]


def test_the_case_over_rest_tells_the_same_timeline(story: Story):
    case_id = story.ids["case"]
    with ledger_client(story.layout.grpc_addresses[0]) as client:
        view = client.stub.GetCase(api_pb2.GetCaseRequest(case_id=case_id), timeout=RPC_TIMEOUT_S)
    grpc_timeline = [
        (e.event_id.hex(), e.height, e.log_index, e.time_ms, e.kind, e.author_id, e.summary)
        for e in view.timeline
    ]
    # a party, a regulator reading with a member's token, and the auditor read it alike
    for member_id, role in (
        ("agency-b", ROLE_MEMBER),
        ("regulator", ROLE_MEMBER),
        ("auditor", ROLE_AUDITOR),
    ):
        with rest(story, member_id, role) as client:
            answer = client.get("/v1/cases/one", case_id=case_id)
        rest_timeline = [
            (
                e["event_id"],
                e["height"],
                e["log_index"],
                e["time_ms"],
                e["kind"],
                e["author_id"],
                e["summary"],
            )
            for e in answer["timeline"]
        ]
        assert rest_timeline == grpc_timeline, member_id
        assert answer["final"] is True
        assert answer["appeal_deadline_ms"] == view.appeal_deadline_ms
        assert answer["case"]["status"] == "appeal_decided"
        assert answer["case"]["event_ids"] == [e[0] for e in grpc_timeline]
        remedies = answer["case"]["ruling"]["remedies"]
        assert remedies == [
            {
                "refund": {
                    "order_id": story.ids["order"],
                    "amount": 500,
                    "currency": "CNY",
                    "reference": "pay-1",
                }
            },
            {"delist": {"offer_id": story.ids["offer"]}},
        ]
        assert [c["complaint"]["complaint_id"] for c in answer["complaints"]] == [
            story.ids["complaint"]
        ]
    with rest(story, "agency-a") as client:
        page = client.get("/v1/cases", member_id="agency-a", status="appeal_decided")
        assert case_id in [case["case_id"] for case in page["items"]]
        page = client.get("/v1/cases", subject_id=story.ids["offer"], limit=1)
        assert [case["case_id"] for case in page["items"]] == [case_id]
        assert set(page) == {"items", "next_cursor"}
        assert client.get("/v1/cases", status="open")["items"] == []
        bad = client.http.get("/v1/cases", params={"status": "closed"})
        assert (bad.status_code, bad.json()["error"]) == (422, "bad_parameter")
        assert client.error("/v1/cases/one", 404, case_id="nothing") == "unknown_case"
        trade = client.get("/v1/trades/one", order_id=story.ids["order"])
        assert trade["order"]["status"] == "refunded"
    with rest(story, "exchange") as client:
        assert client.error("/v1/cases/one", 403, case_id=case_id) == "forbidden"
        assert client.get("/v1/cases")["items"] == []
    with rest(story, None) as client:
        assert client.error("/v1/cases/one", 401, case_id=case_id) == "missing_token"


def test_the_complaint_and_the_ruling_join_the_assets_history(story: Story):
    with rest(story, "agency-a") as client:
        history = client.get("/v1/assets/history", asset_id=story.ids["asset"])
    kinds = [item["kind"] for item in history["items"]]
    for kind in KINDS:
        assert kind in kinds, kinds


def _grpc_case(story: Story, reader_token: str) -> tuple[str, list[str]]:
    """GetCase's outcome for the reader ("allowed" or the status), and ListCases's ids."""
    with ledger_client(story.layout.grpc_addresses[0], reader_token) as client:
        try:
            client.stub.GetCase(
                api_pb2.GetCaseRequest(case_id=story.ids["case"]), timeout=RPC_TIMEOUT_S
            )
            outcome = "allowed"
        except grpc.RpcError as error:
            outcome = error.code().name.lower()
        listed = client.stub.ListCases(api_pb2.ListCasesRequest(), timeout=RPC_TIMEOUT_S)
    return outcome, [case.case_id for case in listed.cases]


def _rest_case(story: Story, reader_token: str) -> tuple[str, list[str]]:
    with RestClient(story.layout.rest_addresses[0], reader_token) as client:
        answer = client.response("/v1/cases/one", case_id=story.ids["case"])
        outcome = {200: "allowed", 403: "permission_denied"}.get(
            answer.status_code, str(answer.status_code)
        )
        listed = client.get("/v1/cases")
    return outcome, [case["case_id"] for case in listed["items"]]


def test_grpc_and_rest_let_the_same_readers_read_the_case(story: Story):
    second = issue_token(
        SECOND_REGULATOR_KEY, SECOND_REGULATOR, ROLE_MEMBER, story.chain_id, now_ms(), TOKEN_TTL_MS
    )
    readers = {
        **{f"{m}/member": token(story, m) for m in MEMBERS},
        "auditor/auditor": token(story, "auditor", ROLE_AUDITOR),
        "regulator/auditor": token(story, "regulator", ROLE_AUDITOR),
        f"{SECOND_REGULATOR}/member": second,
    }
    outcomes = {}
    for name, reader_token in readers.items():
        over_grpc, over_rest = _grpc_case(story, reader_token), _rest_case(story, reader_token)
        assert over_grpc == over_rest, name
        outcomes[name] = over_grpc[0]
    assert outcomes == {
        "agency-a/member": "allowed",  # the respondent
        "agency-b/member": "allowed",  # the complainant
        "exchange/member": "permission_denied",  # a party to the order, not to the case
        "regulator/member": "allowed",
        "auditor/member": "allowed",  # an auditor's member token still belongs to an auditor
        "auditor/auditor": "allowed",
        "regulator/auditor": "allowed",
        f"{SECOND_REGULATOR}/member": "allowed",
    }

"""Data customs with real node processes (ADR 019): a consortium of four validators; a
regulator's security assessment of important data for one recipient abroad; a move of a
descendant of the assessed asset abroad under it (important data without one is refused); the
recipient's first report missed, visible to an auditor over REST (the assessment, and the
list of assessments with overdue reports) and over gRPC alike, each reader answered alike by
both; then the report filed.

Nothing here waits for a time to pass but the one it needs: the end of the first report
period, after which one more block is committed so that the head's block time is past it.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from pathlib import Path

import grpc
import pytest
from support.processes import init_consortium, ledger_client, member_token, running_nodes
from support.rest_support import RestClient

from provledger.cli.client import EventSigner, Identity
from provledger.v1 import api_pb2, ledger_pb2

pytestmark = pytest.mark.integration

HEIGHT_TIMEOUT_S = 60.0
INTERVAL_MS = 5_000  # REPORT_INTERVAL_MS_MIN: the shortest report period
IMPORTANT = ledger_pb2.CLASSIFICATION_IMPORTANT


def digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def same_answer(layout, reader: str, assessment_id: str) -> bool:
    """Whether REST /v1/assessments/one and gRPC GetAssessment answer `reader` alike: both the
    same moves (what heartbeat blocks between the two calls cannot change), both forbidden, or
    both unknown."""
    token = member_token(layout, reader)
    with RestClient(layout.rest_addresses[3], token) as rest:
        answer = rest.response("/v1/assessments/one", assessment_id=assessment_id)
    with ledger_client(layout.grpc_addresses[3], token=token) as client:
        try:
            view = client.stub.GetAssessment(
                api_pb2.GetAssessmentRequest(assessment_id=assessment_id)
            )
        except grpc.RpcError as error:
            refused = {grpc.StatusCode.PERMISSION_DENIED: 403, grpc.StatusCode.NOT_FOUND: 404}
            return answer.status_code == refused.get(error.code())
    body = answer.json() if answer.status_code == 200 else {}
    return (body.get("first_transfer_ms"), body.get("transfer_event_ids")) == (
        view.record.first_transfer_ms,
        [identifier.hex() for identifier in view.record.transfer_event_ids],
    )


def test_a_move_abroad_under_an_assessment_a_missed_report_and_a_report_filed(
    tmp_path: Path,
) -> None:
    layout = init_consortium(tmp_path, nodes=4)
    signers = {m: EventSigner(Identity.load(path)) for m, path in layout.identities.items()}

    with running_nodes(layout, tmp_path) as cluster, contextlib.ExitStack() as stack:
        client = stack.enter_context(ledger_client(layout.grpc_addresses[0]))
        auditor = stack.enter_context(
            RestClient(layout.rest_addresses[1], member_token(layout, "auditor"))
        )
        exchange = stack.enter_context(
            RestClient(layout.rest_addresses[2], member_token(layout, "exchange"))
        )

        def commit(member: str, kind: str, **fields) -> api_pb2.Receipt:
            receipt = client.submit_and_wait(signers[member].event(kind, **fields))
            cluster.wait_for_heights(receipt.height, timeout_s=HEIGHT_TIMEOUT_S)
            return receipt

        commit(
            "agency-a",
            "asset_registered",
            asset_id="customs/health",
            content_digest=digest("health"),
            classification=IMPORTANT,
            name="health",
        )
        commit(
            "agency-a",
            "asset_derived",
            asset_id="customs/health-summary",
            parent_ids=["customs/health"],
            activity="aggregation",
            content_digest=digest("summary"),
            classification=IMPORTANT,
        )
        commit(
            "regulator",
            "security_assessed",
            assessment_id="assess-hk",
            asset_ids=["customs/health"],
            recipient_id="agency-b",
            destination_region="hk",
            purposes=["research"],
            expires_at_ms=int(time.time() * 1000) + 600_000,
            report_interval_ms=INTERVAL_MS,
            report_digest=digest("assessment"),
        )

        # important data abroad without an assessment is refused, with a specific code
        with pytest.raises(grpc.RpcError) as refused:
            client.submit_and_wait(
                signers["agency-a"].event(
                    "asset_shared",
                    asset_id="customs/health",
                    recipient_id="agency-b",
                    destination_region="hk",
                )
            )
        assert (refused.value.details() or "").startswith("assessment_required: ")

        # a descendant of the assessed asset goes abroad under the assessment
        moved = commit(
            "agency-a",
            "asset_shared",
            asset_id="customs/health-summary",
            recipient_id="agency-b",
            destination_region="hk",
            assessment_id="assess-hk",
            purpose="research",
        )
        view = auditor.get("/v1/assessments/one", assessment_id="assess-hk")
        assert view["transfer_event_ids"] == [moved.event_id.hex()]
        first_transfer_ms = view["first_transfer_ms"]
        assert first_transfer_ms

        # the first period ends without a report; a block after it shows it overdue
        period_end_s = (first_transfer_ms + INTERVAL_MS) / 1000
        time.sleep(max(0.0, period_end_s - time.time()) + 0.2)
        commit(
            "agency-a",
            "asset_registered",
            asset_id="customs/later",
            content_digest=digest("later"),
            classification=ledger_pb2.CLASSIFICATION_GENERAL,
        )
        view = auditor.get("/v1/assessments/one", assessment_id="assess-hk")
        assert view["judged_at_ms"] >= first_transfer_ms + INTERVAL_MS
        assert 1 in view["overdue_periods"]
        overdue = auditor.get("/v1/assessments", overdue="true")
        assert [item["assessment_id"] for item in overdue["items"]] == ["assess-hk"]
        grpc_view = client.stub.GetAssessment(
            api_pb2.GetAssessmentRequest(assessment_id="assess-hk")
        )
        assert 1 in grpc_view.overdue_periods
        assert grpc_view.record.first_transfer_ms == first_transfer_ms
        # a member the assessment does not concern reads none of it
        assert exchange.error("/v1/assessments/one", 403, assessment_id="assess-hk") == "forbidden"
        assert exchange.get("/v1/assessments", overdue="true")["items"] == []
        # one access policy for both APIs: each reader gets the same answer from each
        for reader in ("auditor", "regulator", "agency-a", "agency-b", "exchange"):
            for assessment_id in ("assess-hk", "assess-none"):
                assert same_answer(layout, reader, assessment_id), (reader, assessment_id)

        # the recipient files the missed report
        report = commit(
            "agency-b",
            "transfer_reported",
            report_id="report-1",
            assessment_id="assess-hk",
            period=1,
            report_digest=digest("report 1"),
            summary="used for research only",
        )
        view = auditor.get("/v1/assessments/one", assessment_id="assess-hk")
        assert [(r["period"], r["event_id"]) for r in view["reports"]] == [
            (1, report.event_id.hex())
        ]
        assert 1 not in view["overdue_periods"]
        history = auditor.get("/v1/assets/history", asset_id="customs/health")
        assert [item["kind"] for item in history["items"]] == [
            "asset_registered",
            "asset_derived",
            "security_assessed",
            "transfer_reported",
        ]

"""Data customs reads (ADR 019): one security assessment as it stands at the head, with the
moves it allowed, the reports filed under it and its overdue periods; and the page of
assessments a reader may see, or only those with overdue reports (what an auditor watches).

Shared by gRPC (GetAssessment) and REST (/v1/assessments, /v1/assessments/one). Who may read
an assessment is protocol/access.py's `sees_assessment`; which periods are overdue and when the
next report is due is protocol/customs.py's judgement, made at the head block's time (the
time the ledger has reached, never the node's clock).
"""

from __future__ import annotations

from dataclasses import dataclass

from provledger.node.queries import LedgerQueries, forbidden, not_found
from provledger.protocol import access, customs
from provledger.protocol.access import Reader
from provledger.protocol.limits import ASSESSMENTS_SCANNED_PER_PAGE_MAX
from provledger.v1 import api_pb2, state_pb2


@dataclass(frozen=True)
class AssessmentAnswer:
    record: state_pb2.AssessmentRecord
    overdue_periods: list[int]
    next_report_due_ms: int  # 0: none due
    judged_at_ms: int  # the head block's time


def head_time_ms(queries: LedgerQueries) -> int:
    head = queries.store.head_height
    return queries.block_time_ms(head) if head else queries.genesis.genesis_time_ms


def judged(record: state_pb2.AssessmentRecord, at_ms: int) -> AssessmentAnswer:
    return AssessmentAnswer(
        record=record,
        overdue_periods=customs.overdue_periods(record, at_ms),
        next_report_due_ms=customs.next_report_due_ms(record, at_ms),
        judged_at_ms=at_ms,
    )


def require_assessment(
    queries: LedgerQueries, reader: Reader, assessment_id: str
) -> AssessmentAnswer:
    record = queries.store.load("assessment", assessment_id)
    if record is None:
        raise not_found("unknown_assessment", f"no assessment {assessment_id!r}")
    if not access.sees_assessment(queries.store, reader, record):  # type: ignore[arg-type]
        raise forbidden(f"assessment {assessment_id!r} does not concern {reader.member_id!r}")
    return judged(record, head_time_ms(queries))  # type: ignore[arg-type]


def assessments_page(
    queries: LedgerQueries, reader: Reader, overdue_only: bool, after_id: str | None, limit: int
) -> tuple[list[AssessmentAnswer], str | None]:
    """Up to `limit` assessments after `after_id` (by id) that `reader` may see, only those
    with overdue periods if `overdue_only`, reading at most ASSESSMENTS_SCANNED_PER_PAGE_MAX
    records; and the id to continue after (None: none left)."""
    at_ms = head_time_ms(queries)
    answers: list[AssessmentAnswer] = []
    cursor, scanned = after_id, 0
    while scanned < ASSESSMENTS_SCANNED_PER_PAGE_MAX:
        batch, more = queries.store.records_of_kind(
            "assessment", cursor, min(limit, ASSESSMENTS_SCANNED_PER_PAGE_MAX - scanned)
        )
        for position, record in enumerate(batch):
            scanned += 1
            cursor = record.assessment.assessment_id  # type: ignore[attr-defined]
            answer = judged(record, at_ms)  # type: ignore[arg-type]
            if overdue_only and not answer.overdue_periods:
                continue
            if access.sees_assessment(queries.store, reader, record):  # type: ignore[arg-type]
                answers.append(answer)
                if len(answers) == limit:
                    return answers, cursor if more or position < len(batch) - 1 else None
        if not more:
            return answers, None
    return answers, cursor


def assessment_message(answer: AssessmentAnswer) -> api_pb2.AssessmentView:
    return api_pb2.AssessmentView(
        record=answer.record,
        overdue_periods=answer.overdue_periods,
        next_report_due_ms=answer.next_report_due_ms,
    )

"""The REST shapes of data customs (ADR 019): a security assessment as judged at the head (the
moves it allowed, the reports filed, the periods overdue, the next report due) and a page of
them. The reads are node/assessments.py's, shared with gRPC GetAssessment."""

from __future__ import annotations

from pydantic import BaseModel, Field

from provledger.node.assessments import AssessmentAnswer


class AssessmentReportView(BaseModel):
    period: int
    report_id: str
    event_id: str
    reported_at_ms: int


class AssessmentView(BaseModel):
    assessment_id: str
    asset_ids: list[str] = Field(description="the scope: these assets and their descendants")
    recipient_id: str
    destination_region: str
    purposes: list[str]
    expires_at_ms: int
    report_interval_ms: int = Field(description="0: no reports required")
    report_digest: str
    regulator_id: str
    event_id: str
    first_transfer_ms: int | None = Field(description="block time of the first move; null: none")
    transfer_event_ids: list[str]
    reports: list[AssessmentReportView]
    overdue_periods: list[int] = Field(description="periods ended at the head without a report")
    next_report_due_ms: int | None = Field(description="null: none due")
    judged_at_ms: int = Field(description="the head block's time, at which it is judged")


class AssessmentPage(BaseModel):
    items: list[AssessmentView]
    next_cursor: str | None


def assessment_view(answer: AssessmentAnswer) -> AssessmentView:
    record = answer.record
    assessment = record.assessment
    return AssessmentView(
        assessment_id=assessment.assessment_id,
        asset_ids=list(assessment.asset_ids),
        recipient_id=assessment.recipient_id,
        destination_region=assessment.destination_region,
        purposes=list(assessment.purposes),
        expires_at_ms=assessment.expires_at_ms,
        report_interval_ms=assessment.report_interval_ms,
        report_digest=assessment.report_digest.hex(),
        regulator_id=record.regulator_id,
        event_id=record.event_id.hex(),
        first_transfer_ms=record.first_transfer_ms or None,
        transfer_event_ids=[identifier.hex() for identifier in record.transfer_event_ids],
        reports=[
            AssessmentReportView(
                period=report.period,
                report_id=report.report_id,
                event_id=report.event_id.hex(),
                reported_at_ms=report.reported_at_ms,
            )
            for report in record.reports
        ],
        overdue_periods=answer.overdue_periods,
        next_report_due_ms=answer.next_report_due_ms or None,
        judged_at_ms=answer.judged_at_ms,
    )

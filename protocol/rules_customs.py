"""The rules of data customs and the important-data catalogue (ADR 019): a regulator's security
assessment of a cross-border flow, the recipient's reports after a move under it, the
regulator's catalogue entries and upward reclassifications. Each is a pure function of
(state, author, payload, event, block time) returning its writes or raising `Rejected`;
protocol/rules.py dispatches to them. The judgements they share with the moves abroad
(protocol/rule_checks.py) and the node's queries are protocol/customs.py's.
"""

from __future__ import annotations

from provledger.protocol import customs
from provledger.protocol.errors import duplicate, forbidden, invalid, precondition
from provledger.protocol.limits import REPORT_PERIODS_MAX
from provledger.protocol.rule_checks import (
    REGULATOR,
    active_member,
    copy_record,
    live_asset,
    new_id,
    put,
    require_role,
)
from provledger.protocol.state import Write
from provledger.v1 import state_pb2


def security_assessed(state, author, payload, decoded, block_time_ms) -> list[Write]:
    require_role(author, (REGULATOR,), "recording a security assessment")
    new_id(state, "assessment", payload.assessment_id)
    for asset_id in payload.asset_ids:
        if state.load("asset", asset_id) is None:
            raise precondition(
                "unknown_asset", f"asset {asset_id!r} of the assessment's scope does not exist"
            )
    active_member(state, payload.recipient_id, "recipient_id")
    if payload.expires_at_ms <= block_time_ms:
        raise precondition("already_expired", "the assessment's expiry is not after the block time")
    periods = customs.periods_for(payload.report_interval_ms, block_time_ms, payload.expires_at_ms)
    if periods > REPORT_PERIODS_MAX:
        raise invalid(
            "too_many_periods",
            f"reports every {payload.report_interval_ms} ms until the expiry make {periods} "
            f"periods; at most {REPORT_PERIODS_MAX}",
        )
    record = state_pb2.AssessmentRecord(
        assessment=payload, regulator_id=author.member_id, event_id=decoded.event_id
    )
    return [put("assessment", payload.assessment_id, record)]


def transfer_reported(state, author, payload, decoded, block_time_ms) -> list[Write]:
    record = state.load("assessment", payload.assessment_id)
    if record is None:
        raise precondition(
            "unknown_assessment", f"assessment {payload.assessment_id!r} does not exist"
        )
    assessment = record.assessment
    if author.member_id != assessment.recipient_id:
        raise forbidden(
            "not_recipient",
            f"only the recipient {assessment.recipient_id!r} reports under assessment "
            f"{payload.assessment_id!r}",
        )
    if assessment.report_interval_ms <= 0:
        raise precondition(
            "reports_not_required",
            f"assessment {payload.assessment_id!r} requires no reports",
        )
    if not record.first_transfer_ms:
        raise precondition(
            "no_transfer",
            f"nothing has moved under assessment {payload.assessment_id!r}: no period has begun",
        )
    if payload.period > customs.periods_owed(record):
        raise precondition(
            "period_after_expiry",
            f"period {payload.period} begins after assessment {payload.assessment_id!r} "
            f"expires; {customs.periods_owed(record)} periods are owed",
        )
    begins_ms = customs.period_start_ms(record, payload.period)
    if block_time_ms < begins_ms:
        raise precondition(
            "period_not_begun",
            f"period {payload.period} begins at {begins_ms}; the block time is {block_time_ms}",
        )
    for report in record.reports:
        if report.period == payload.period:
            raise duplicate(
                "already_reported",
                f"period {payload.period} was reported by {report.report_id!r}",
            )
        if report.report_id == payload.report_id:
            raise duplicate(
                "report_exists",
                f"report {payload.report_id!r} already reported period {report.period}",
            )
    updated = copy_record(record)
    updated.reports.append(
        state_pb2.AssessmentReport(
            period=payload.period,
            report_id=payload.report_id,
            event_id=decoded.event_id,
            reported_at_ms=block_time_ms,
        )
    )
    return [put("assessment", payload.assessment_id, updated)]


def data_catalogued(state, author, payload, decoded, block_time_ms) -> list[Write]:
    require_role(author, (REGULATOR,), "cataloguing important data")
    key = customs.catalogue_key(payload.asset_id, payload.id_prefix)
    existing = state.load("catalogue", key)
    if existing is not None and existing.entry.minimum >= payload.minimum:  # type: ignore[attr-defined]
        raise precondition(
            "not_upward",
            f"{key} is already catalogued as at least "
            f"{customs.level_name(existing.entry.minimum)} (entry "  # type: ignore[attr-defined]
            f"{existing.entry.entry_id!r}); an entry only raises it",  # type: ignore[attr-defined]
        )
    record = state_pb2.CatalogueRecord(
        entry=payload, regulator_id=author.member_id, event_id=decoded.event_id
    )
    return [put("catalogue", key, record)]


def asset_reclassified(state, author, payload, decoded, block_time_ms) -> list[Write]:
    require_role(author, (REGULATOR,), "reclassifying an asset")
    asset = live_asset(state, payload.asset_id)
    if payload.classification <= asset.classification:
        raise precondition(
            "not_upward",
            f"asset {asset.asset_id!r} is {customs.level_name(asset.classification)}; a "
            "reclassification only raises it (not to "
            f"{customs.level_name(payload.classification)})",
        )
    customs.require_catalogue(state.load, asset.asset_id, payload.classification)
    updated = copy_record(asset)
    updated.classification = payload.classification
    return [put("asset", asset.asset_id, updated)]

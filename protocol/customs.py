"""Data customs and the important-data catalogue: the judgements the rules and the queries
share (ADR 019).

- The catalogue: a regulator's entry holds an asset id, or every id starting with a prefix
  ending in "/", at a minimum classification. `catalogue_minimum` finds the highest entry over
  an id (its own entry and the entry of each of its "/"-prefixes); `effective_classification`
  is an asset's recorded classification raised to it. A registration or derivation below it
  is refused (`require_catalogue`), and a move abroad is judged by the effective
  classification, so an entry binds an asset catalogued after it was registered at once,
  without rewriting the asset (the regulator raises the record itself with
  asset_reclassified).
- A move abroad under a security assessment (`covering_assessment`): the assessment names the
  recipient, the region and the purpose, has not expired, and its scope holds the asset or an
  ancestor of it (restrictions follow derivation: the walk is protocol/lineage.py's
  `reaches_any`). The move is recorded on the assessment (`record_move`).
- Reports after the first move: period p (1-based) covers [first + (p-1)·interval,
  first + p·interval) and is due at its end. Periods are owed while they begin before the
  assessment's expiry (`periods_owed`); one that has ended without a report is overdue
  (`overdue_periods`); `next_report_due_ms` is the end of the earliest owed period not yet
  ended and not yet reported.

Pure: the rules (protocol/rules_customs.py, rule_checks.py, rules_assets.py) and the node's
queries call these with a `load` over the state they read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from provledger.protocol.errors import forbidden, precondition
from provledger.protocol.limits import ASSESSMENT_ANCESTORS_MAX, TRANSFERS_PER_ASSESSMENT_MAX
from provledger.protocol.lineage import reaches_any
from provledger.protocol.state import Write
from provledger.v1 import ledger_pb2, state_pb2

# (kind, record id) -> the record or None: a StateReader's or a store's `load`.
Lookup = Callable[[str, str], Any]

UNSPECIFIED = ledger_pb2.CLASSIFICATION_UNSPECIFIED


def level_name(classification: int) -> str:
    """`important` for CLASSIFICATION_IMPORTANT, and so on."""
    name = ledger_pb2.Classification.Name(classification) if classification else "UNSPECIFIED"
    return name.removeprefix("CLASSIFICATION_").lower()


# --- the catalogue -------------------------------------------------------------------------


def catalogue_key(asset_id: str = "", id_prefix: str = "") -> str:
    """The state key of a catalogue entry: "asset:<id>" or "prefix:<id prefix>"."""
    return f"asset:{asset_id}" if asset_id else f"prefix:{id_prefix}"


def catalogue_keys(asset_id: str) -> list[str]:
    """The entries that can hold `asset_id`: its own, and one per prefix of it ending in "/"
    (at most one per character of an identifier, IDENTIFIER_LENGTH_CHARS_MAX)."""
    prefixes = [asset_id[: i + 1] for i, char in enumerate(asset_id) if char == "/"]
    return [catalogue_key(asset_id=asset_id)] + [catalogue_key(id_prefix=p) for p in prefixes]


def catalogue_entry(load: Lookup, asset_id: str) -> state_pb2.CatalogueRecord | None:
    """The entry with the highest minimum over `asset_id` (the first such in
    `catalogue_keys` order), or None when it is not catalogued."""
    found = None
    for key in catalogue_keys(asset_id):
        record = load("catalogue", key)
        if record is not None and (found is None or record.entry.minimum > found.entry.minimum):
            found = record
    return found


def catalogue_minimum(load: Lookup, asset_id: str) -> int:
    """The lowest classification the catalogue allows for `asset_id` (UNSPECIFIED: none)."""
    entry = catalogue_entry(load, asset_id)
    return entry.entry.minimum if entry is not None else UNSPECIFIED


def effective_classification(load: Lookup, asset: state_pb2.AssetRecord) -> int:
    """The asset's classification, raised to its catalogue minimum."""
    return max(asset.classification, catalogue_minimum(load, asset.asset_id))


def require_catalogue(load: Lookup, asset_id: str, classification: int) -> None:
    """Refuses (`below_catalogue`) an asset `asset_id` classified below its catalogue entry."""
    entry = catalogue_entry(load, asset_id)
    if entry is not None and classification < entry.entry.minimum:
        held_by = entry.entry.asset_id or f"the prefix {entry.entry.id_prefix!r}"
        raise forbidden(
            "below_catalogue",
            f"asset {asset_id!r} is catalogued as at least {level_name(entry.entry.minimum)} "
            f"data (entry {entry.entry.entry_id!r} on {held_by}); it cannot be "
            f"{level_name(classification)}",
        )


# --- moves abroad --------------------------------------------------------------------------


def covering_assessment(
    load: Lookup,
    asset_id: str,
    recipient_id: str,
    destination_region: str,
    assessment_id: str,
    purpose: str,
    block_time_ms: int,
) -> state_pb2.AssessmentRecord:
    """The assessment `assessment_id`, if it allows moving `asset_id` to `recipient_id` in
    `destination_region` for `purpose` at `block_time_ms`, and has room to record the move."""
    record = load("assessment", assessment_id)
    if record is None:
        raise precondition("unknown_assessment", f"assessment {assessment_id!r} does not exist")
    assessment = record.assessment
    mismatch = [
        field
        for field, expected in (
            ("recipient_id", recipient_id),
            ("destination_region", destination_region),
        )
        if getattr(assessment, field) != expected
    ]
    if mismatch:
        raise forbidden(
            "assessment_mismatch",
            f"assessment {assessment_id!r} does not match this move's {', '.join(mismatch)}",
        )
    if block_time_ms >= assessment.expires_at_ms:
        raise forbidden("assessment_expired", f"assessment {assessment_id!r} has expired")
    if purpose not in assessment.purposes:
        raise forbidden(
            "purpose_not_assessed",
            f"assessment {assessment_id!r} does not assess the purpose {purpose!r} (it assesses "
            f"{', '.join(assessment.purposes)})",
        )
    if not reaches_any(load, asset_id, frozenset(assessment.asset_ids), ASSESSMENT_ANCESTORS_MAX):
        raise forbidden(
            "assessment_scope",
            f"asset {asset_id!r} is not in the scope of assessment {assessment_id!r}: neither "
            f"it nor an ancestor within {ASSESSMENT_ANCESTORS_MAX} is one of its assets",
        )
    if len(record.transfer_event_ids) >= TRANSFERS_PER_ASSESSMENT_MAX:
        raise precondition(
            "assessment_full",
            f"assessment {assessment_id!r} has recorded {TRANSFERS_PER_ASSESSMENT_MAX} moves; "
            "a new assessment is needed",
        )
    return record  # type: ignore[no-any-return]


def record_move(record: state_pb2.AssessmentRecord, event_id: bytes, block_time_ms: int) -> Write:
    """The assessment with one more move made under it (the first starts its report periods)."""
    updated = state_pb2.AssessmentRecord()
    updated.CopyFrom(record)
    if not updated.first_transfer_ms:
        updated.first_transfer_ms = block_time_ms
    updated.transfer_event_ids.append(event_id)
    return Write(kind="assessment", record_id=record.assessment.assessment_id, record=updated)


# --- reports -------------------------------------------------------------------------------


def period_start_ms(record: state_pb2.AssessmentRecord, period: int) -> int:
    return record.first_transfer_ms + (period - 1) * record.assessment.report_interval_ms


def periods_for(interval_ms: int, from_ms: int, expires_at_ms: int) -> int:
    """How many periods of `interval_ms` begin in [from_ms, expires_at_ms) (0 without an
    interval): what a recipient owes after a first move at `from_ms`, and at most what it can
    owe under an assessment signed at `from_ms`."""
    if interval_ms <= 0 or from_ms >= expires_at_ms:
        return 0
    return -(-(expires_at_ms - from_ms) // interval_ms)


def periods_owed(record: state_pb2.AssessmentRecord) -> int:
    """How many report periods the recipient owes: none before a move or without an interval;
    else every period that begins before the assessment's expiry (at most REPORT_PERIODS_MAX,
    which security_assessed enforces)."""
    if not record.first_transfer_ms:
        return 0
    assessment = record.assessment
    return periods_for(
        assessment.report_interval_ms, record.first_transfer_ms, assessment.expires_at_ms
    )


def overdue_periods(record: state_pb2.AssessmentRecord, now_ms: int) -> list[int]:
    """The owed periods that ended at or before `now_ms` without a report, oldest first."""
    interval = record.assessment.report_interval_ms
    owed = periods_owed(record)
    if not owed or now_ms < record.first_transfer_ms:
        return []
    ended = min(owed, (now_ms - record.first_transfer_ms) // interval)
    reported = {report.period for report in record.reports}
    return [p for p in range(1, ended + 1) if p not in reported]


def next_report_due_ms(record: state_pb2.AssessmentRecord, now_ms: int) -> int:
    """The end of the earliest owed period that has not ended at `now_ms` and has no report
    yet; 0 when none is due."""
    interval = record.assessment.report_interval_ms
    owed = periods_owed(record)
    if not owed:
        return 0
    ended = max(0, min(owed, (now_ms - record.first_transfer_ms) // interval))
    reported = {report.period for report in record.reports}
    for period in range(ended + 1, owed + 1):
        if period not in reported:
            return period_start_ms(record, period) + interval
    return 0

"""Cases as readers get them (gRPC GetCase/ListCases, REST /v1/cases, the explorer): a case
with its complaints, its timeline in words (protocol/case_timeline.py), when its appeal window
closes and whether it is final (protocol/rules_cases.py), under the access policy
(protocol/access.py `sees_case`: its parties, regulators and auditors).
"""

from __future__ import annotations

from dataclasses import dataclass

from provledger.node.queries import LedgerQueries, QueryError, bad_request, forbidden, not_found
from provledger.protocol import access, case_timeline, rules_cases
from provledger.protocol.access import Reader, decode_event
from provledger.protocol.errors import Rejected
from provledger.protocol.events import require_identifier
from provledger.protocol.limits import CASES_SCANNED_PER_PAGE_MAX
from provledger.protocol.supervision import supervision_policy
from provledger.v1 import api_pb2, state_pb2


@dataclass(frozen=True)
class CaseAnswer:
    record: state_pb2.CaseRecord
    complaints: list[state_pb2.ComplaintRecord]
    timeline: list[case_timeline.TimelineEntry]
    appeal_deadline_ms: int  # 0 before the ruling
    final: bool  # at the head's block time


@dataclass(frozen=True)
class CasePage:
    cases: list[state_pb2.CaseRecord]  # by case id
    more: bool
    next_after_case_id: str  # with `more`: where the next page starts


def require_case(queries: LedgerQueries, reader: Reader, case_id: str) -> CaseAnswer:
    """The case `case_id` with its complaints and timeline, if `reader` may read it."""
    store = queries.store
    case = store.load("case", case_id)
    if case is None:
        raise not_found("unknown_case", f"no case {case_id!r}")
    if not access.sees_case(store, reader, case):  # type: ignore[arg-type]
        raise forbidden(
            f"case {case_id!r} is read by its parties, regulators and auditors, not "
            f"{reader.member_id!r}"
        )
    return case_answer(queries, case)  # type: ignore[arg-type]


def case_answer(queries: LedgerQueries, case: state_pb2.CaseRecord) -> CaseAnswer:
    store = queries.store
    complaints = []
    for complaint_id in case.complaint_ids:
        complaint = store.load("complaint", complaint_id)
        if complaint is None:
            raise QueryError("internal", "internal", f"complaint {complaint_id!r} is missing")
        complaints.append(complaint)
    events = []
    for identifier in case.event_ids:
        location = store.event(identifier)
        if location is None:
            raise QueryError("internal", "internal", f"event {identifier.hex()} is missing")
        events.append(
            case_timeline.CaseEvent(
                event_id=identifier,
                height=location.height,
                log_index=location.log_index,
                time_ms=queries.block_time_ms(location.height),
                event=decode_event(location.event),
            )
        )
    head_time_ms = queries.block_time_ms(store.head_height) if store.head_height else 0
    return CaseAnswer(
        record=case,
        complaints=complaints,  # type: ignore[arg-type]
        timeline=case_timeline.timeline(events, supervision_policy(store).appeal_panel_size),
        appeal_deadline_ms=rules_cases.appeal_deadline_ms(store, case),
        final=rules_cases.case_final(store, case, head_time_ms),
    )


def list_cases(
    queries: LedgerQueries,
    reader: Reader,
    *,
    member_id: str | None,
    subject_id: str | None,
    status: int,
    limit: int,
    after_case_id: str | None,
) -> CasePage:
    """Cases `reader` may read, by case id after `after_case_id`: where `member_id` is a
    party, about `subject_id` (an order, offer, asset or grant id), in `status` (0: any). A
    reader who may not read every case and names no member lists its own."""
    for field, value in (
        ("member_id", member_id),
        ("subject_id", subject_id),
        ("after_case_id", after_case_id),
    ):
        if value is not None:
            try:
                require_identifier(value, field)
            except Rejected as error:
                raise bad_request(error.code, error.reason) from None
    store = queries.store
    if member_id is None and subject_id is None and not _reads_every_case(queries, reader):
        member_id = reader.member_id
    found: list[state_pb2.CaseRecord] = []
    after = after_case_id
    scanned = 0
    while True:
        batch, more = store.cases_page(member_id, subject_id, after, limit)
        for case in batch:
            scanned += 1
            after = case.case_id
            if _matches(store, case, subject_id if member_id is not None else None, status) and (
                access.sees_case(store, reader, case)
            ):
                found.append(case)
                if len(found) == limit:
                    return (
                        CasePage(found, True, case.case_id)
                        if _more(batch, case, more)
                        else (CasePage(found, False, ""))
                    )
            if scanned >= CASES_SCANNED_PER_PAGE_MAX:
                last = _more(batch, case, more)
                return CasePage(found, last, case.case_id if last else "")
        if not more:
            return CasePage(found, False, "")


def _more(batch: list[state_pb2.CaseRecord], case: state_pb2.CaseRecord, more: bool) -> bool:
    """Whether cases follow `case`, the one just read of `batch`."""
    return more or case is not batch[-1]


def _matches(store, case: state_pb2.CaseRecord, subject_id: str | None, status: int) -> bool:
    if status and case.status != status:
        return False
    return subject_id is None or store.case_is_about(subject_id, case.case_id)


def _reads_every_case(queries: LedgerQueries, reader: Reader) -> bool:
    return access.sees_case(queries.store, reader, state_pb2.CaseRecord())


def case_message(answer: CaseAnswer) -> api_pb2.CaseView:
    """A case answer as gRPC's CaseView."""
    return api_pb2.CaseView(
        record=answer.record,
        complaints=answer.complaints,
        timeline=[
            api_pb2.TimelineEntry(
                event_id=entry.event_id,
                height=entry.height,
                log_index=entry.log_index,
                time_ms=entry.time_ms,
                kind=entry.kind,
                author_id=entry.author_id,
                summary=entry.summary,
            )
            for entry in answer.timeline
        ],
        appeal_deadline_ms=answer.appeal_deadline_ms,
        final=answer.final,
    )

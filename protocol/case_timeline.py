"""A case's timeline in words a judge can read: the one place those words are written.

`timeline` turns the events of a case (complaints, opening, steps, ruling, appeal, votes, and
any trade event a case file carries with them), each with where the log put it, into entries
in log order with a one-line summary, e.g.
  "complaint c-1 filed by agency-b against agency-a about order o-1 (non_delivery)"
  "ruled upheld by regulator: refund of 500 CNY (minor units) on order o-1; offer x delisted"
The node's CaseView (gRPC and REST), the explorer and the offline case-file verifier all show
these entries. Pure: it reads only what it is given.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from provledger.protocol.rules_cases import same_decision
from provledger.v1 import ledger_pb2


@dataclass(frozen=True)
class CaseEvent:
    """One committed event and where the log put it."""

    event_id: bytes
    height: int
    log_index: int
    time_ms: int  # the block's time
    event: ledger_pb2.Event


@dataclass(frozen=True)
class TimelineEntry:
    """One line of the timeline (api.proto's TimelineEntry, field for field)."""

    event_id: bytes
    height: int
    log_index: int
    time_ms: int
    kind: str
    author_id: str
    summary: str


def timeline(events: Iterable[CaseEvent], appeal_panel_size: int = 1) -> list[TimelineEntry]:
    """The entries of `events` in log order. `appeal_panel_size` (the genesis's) says which
    appeal vote decided the appeal."""
    entries: list[TimelineEntry] = []
    votes: list[ledger_pb2.AppealDecided] = []
    for item in sorted(events, key=lambda e: e.log_index):
        kind = item.event.WhichOneof("payload") or "unknown"
        author = item.event.author.member_id
        payload = getattr(item.event, kind) if kind != "unknown" else None
        if kind == "appeal_decided":
            votes.append(payload)  # type: ignore[arg-type]
            summary = _appeal_decided(author, payload, votes, appeal_panel_size)
        else:
            summary = summarize(kind, author, payload)
        entries.append(
            TimelineEntry(
                event_id=item.event_id,
                height=item.height,
                log_index=item.log_index,
                time_ms=item.time_ms,
                kind=kind,
                author_id=author,
                summary=summary,
            )
        )
    return entries


def _name(enum_type, value: int, prefix: str) -> str:
    """An enum value in words: RULING_OUTCOME_PARTLY_UPHELD -> "partly upheld"."""
    try:
        name = enum_type.Name(value)
    except ValueError:
        return f"value {value}"
    return name.removeprefix(prefix).lower().replace("_", " ")


def subject_words(kind: int, subject_id: str) -> str:
    """ "order o-1", "asset a-1", ..."""
    return f"{_name(ledger_pb2.ComplaintSubject, kind, 'COMPLAINT_SUBJECT_')} {subject_id}"


def remedy_words(remedy: ledger_pb2.Remedy) -> str:
    """One remedy in words."""
    which = remedy.WhichOneof("remedy")
    if which == "refund":
        r = remedy.refund
        reference = f", reference {r.reference}" if r.reference else ""
        return f"refund of {r.amount} {r.currency} (minor units) on order {r.order_id}{reference}"
    if which == "delist":
        return f"offer {remedy.delist.offer_id} delisted"
    if which == "revoke_grant":
        return f"grant {remedy.revoke_grant.grant_id} revoked"
    if which == "suspend":
        return (
            f"{remedy.suspend.member_id} suspended from trading until "
            f"{remedy.suspend.until_ms} (ms since the epoch)"
        )
    if which == "warning":
        return f"warning to {remedy.warning.member_id}: {remedy.warning.text}"
    return "an empty remedy"


def _remedies(remedies) -> str:
    return "; ".join(remedy_words(r) for r in remedies) if remedies else "no remedies"


def summarize(kind: str, author: str, payload) -> str:
    """The summary of one event of `kind` by `author` (appeal votes: see `timeline`)."""
    if kind == "complaint_filed":
        category = f" ({payload.category})" if payload.category else ""
        evidence = len(payload.evidence_digests)
        return (
            f"complaint {payload.complaint_id} filed by {author} against "
            f"{payload.respondent_id} about "
            f"{subject_words(payload.subject_kind, payload.subject_id)}{category}, with "
            f"{evidence} piece{'s' if evidence != 1 else ''} of evidence"
        )
    if kind == "case_opened":
        summary = f": {payload.summary}" if payload.summary else ""
        return (
            f"case {payload.case_id} opened by {author} on complaint"
            f"{'s' if len(payload.complaint_ids) > 1 else ''} "
            f"{', '.join(payload.complaint_ids)}{summary}"
        )
    if kind == "case_step_recorded":
        note = f": {payload.note}" if payload.note else ""
        return f"step {payload.step} recorded by {author}{note}"
    if kind == "case_ruled":
        outcome = _name(ledger_pb2.RulingOutcome, payload.outcome, "RULING_OUTCOME_")
        return (
            f"ruled {outcome} by {author}: {_remedies(payload.remedies)}; "
            f"findings: {payload.findings}"
        )
    if kind == "ruling_appealed":
        grounds = f": {payload.grounds}" if payload.grounds else ""
        return f"ruling appealed by {author}{grounds}"
    if kind == "offer_listed":
        return (
            f"offer {payload.offer_id} of asset {payload.asset_id} listed by {author} for "
            f"{payload.seller_id} at {payload.price} {payload.currency} (minor units)"
        )
    if kind == "order_placed":
        return f"order {payload.order_id} placed by {author} on offer {payload.offer_id}"
    if kind == "order_delivered":
        return f"order {payload.order_id} delivered by {author}"
    if kind == "order_settled":
        return f"order {payload.order_id} settled by {author}"
    if kind == "offer_delisted":
        return f"offer {payload.offer_id} delisted by {author}: {payload.reason}"
    return f"{kind.replace('_', ' ')} by {author}"


def _appeal_decided(
    author: str,
    payload: ledger_pb2.AppealDecided,
    votes: list[ledger_pb2.AppealDecided],
    panel_size: int,
) -> str:
    decision = _name(ledger_pb2.AppealDecision, payload.decision, "APPEAL_DECISION_")
    remedies = f" ({_remedies(payload.remedies)})" if payload.remedies else ""
    if panel_size <= 1:
        return (
            f"appeal decided by {author}: ruling {decision}{remedies}; reasons: {payload.reasons}"
        )
    alike = sum(1 for vote in votes if same_decision(vote, payload))
    decided = alike == panel_size
    return (
        f"appeal vote by {author}: ruling {decision}{remedies} ({alike} of {panel_size} alike"
        f"{'; the appeal is decided' if decided else ''}); reasons: {payload.reasons}"
    )

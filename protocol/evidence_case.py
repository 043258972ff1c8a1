"""The claims of a case file (evidence bundle kind "case", docs/evidence.md), derived from the
bundle's events and what the bundle proves of them (`Proven`: each event's block, its
author's role when it signed) alone.

A case file holds:
- the case's own events (`CaseRecord.event_ids`): its complaints, the opening, the steps, the
  ruling, the appeal and every vote on it, replayed in log order as the rules judge them
  (protocol/rules_cases.py, ADR 018): complaints, then the opening (a regulator's), steps and
  the ruling while open (a regulator's), an appeal once ruled (a party's, before the genesis's
  window closes), then the votes (each a regulator's who did not rule, once each) until
  `appeal_panel_size` of them decide alike (`rules_cases.same_decision`); nothing after;
- what its complaints are about and the records its remedies act on (those of the ruling and
  of every vote): an order's trade life cycle (its offer_listed and `OrderRecord.event_ids`,
  with the ruling or decision that refunded it), an offer's offer_listed, an asset's
  registering or deriving event, a grant's grant_issued; no other event.

The refusals, each with its code: an event of the case out of the case's order
(`case_order`); an opening, step, ruling or vote whose author was not a regulator in the
membership replayed from the genesis when it signed (`not_regulator`), or by a party to the
case (`regulator_is_party`); a vote by the regulator who ruled (`same_regulator`) or a
regulator's second vote (`already_voted`); an appeal by no party (`not_case_party`) or after
the window (`appeal_window_closed`); an event that nothing in the case needs
(`wrong_events`), or a needed one missing (`incomplete`); and the trade claims' own
(`bad_trade`). The claims are structured data only: kinds, ids, authors, log indexes,
heights, block times, enumeration names, remedies as objects, digests, and the free text the
signers wrote. The timeline's words (protocol/case_timeline.py) are presentation, rendered
from the verified events (`case_timeline`), never claimed.
Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from provledger.protocol.case_timeline import CaseEvent, TimelineEntry, timeline
from provledger.protocol.events import DecodedEvent
from provledger.protocol.evidence_claims import (
    REFUNDING_KINDS,
    TRADE_KINDS,
    BundleError,
    Proven,
    enum_name,
    refund_of,
    trade_claims,
)
from provledger.protocol.rules_cases import same_decision
from provledger.v1 import ledger_pb2

CASE_KINDS = (
    "complaint_filed",
    "case_opened",
    "case_step_recorded",
    "case_ruled",
    "ruling_appealed",
    "appeal_decided",
)
# What a complaint's subject kind is, in the claims' words.
_SUBJECT_KINDS = {
    ledger_pb2.COMPLAINT_SUBJECT_ORDER: "order",
    ledger_pb2.COMPLAINT_SUBJECT_OFFER: "offer",
    ledger_pb2.COMPLAINT_SUBJECT_ASSET: "asset",
    ledger_pb2.COMPLAINT_SUBJECT_GRANT: "grant",
}
_CREATING = {"offer": ("offer_listed",), "asset": ("asset_registered", "asset_derived"),
             "grant": ("grant_issued",)}  # fmt: skip
_REGULATOR = ledger_pb2.ROLE_REGULATOR


def remedy_json(remedy: ledger_pb2.Remedy) -> dict[str, Any]:
    """One remedy as claims write it: {"remedy": its kind, and its fields}."""
    which = remedy.WhichOneof("remedy") or ""
    shown: dict[str, Any] = {"remedy": which}
    if which == "refund":
        r = remedy.refund
        shown.update(
            order_id=r.order_id, amount=r.amount, currency=r.currency, reference=r.reference
        )
    elif which == "delist":
        shown.update(offer_id=remedy.delist.offer_id)
    elif which == "revoke_grant":
        shown.update(grant_id=remedy.revoke_grant.grant_id)
    elif which == "suspend":
        shown.update(member_id=remedy.suspend.member_id, until_ms=remedy.suspend.until_ms)
    elif which == "warning":
        shown.update(member_id=remedy.warning.member_id, text=remedy.warning.text)
    return shown


def remedy_targets(remedies: Sequence[ledger_pb2.Remedy]) -> dict[str, list[str]]:
    """The records remedies act on, whose creating events a case file carries: the orders
    refunded, the offers delisted and the grants revoked."""
    targets: dict[str, list[str]] = {"order": [], "offer": [], "grant": []}
    for remedy in remedies:
        which = remedy.WhichOneof("remedy")
        if which == "refund":
            targets["order"].append(remedy.refund.order_id)
        elif which == "delist":
            targets["offer"].append(remedy.delist.offer_id)
        elif which == "revoke_grant":
            targets["grant"].append(remedy.revoke_grant.grant_id)
    return targets


def _refused(code: str, event: DecodedEvent, log_index: int, why: str) -> BundleError:
    return BundleError(
        code, f"event {event.event_id.hex()} ({event.kind}) at log index {log_index} {why}"
    )


class _Case:
    """The case replayed from its own events, in log order, as the rules judge them."""

    def __init__(self, case_id: str, opening: ledger_pb2.CaseOpened, proven: Proven) -> None:
        self.case_id = case_id
        self.complaint_ids = list(opening.complaint_ids)
        self.proven = proven
        self.status = ""  # "" until opened
        self.complaints: dict[str, dict[str, Any]] = {}
        self.parties: list[str] = []
        self.claims: dict[str, Any] = {
            "case_id": case_id,
            "opened_by": "",
            "opening_event_id": "",
            "summary": opening.summary,
            "complaints": [],
            "parties": [],
            "steps": [],
            "ruling": None,
            "appeal": None,
            "appeal_votes": [],
            "appeal_decision": None,
            "appeal_deadline_ms": 0,
            "statuses": [],
        }
        self.ruled_at_ms = 0
        self.votes: list[tuple[str, ledger_pb2.AppealDecided]] = []
        self.remedies: list[ledger_pb2.Remedy] = []  # of the ruling and of every vote
        self.refunds: dict[str, list[tuple[int, DecodedEvent]]] = {}  # that took effect

    def owns(self, event: DecodedEvent) -> bool:
        """Whether `event` is one of the case's own events (its complaint or its case id)."""
        payload = getattr(event.event, event.kind)
        if event.kind == "complaint_filed":
            return payload.complaint_id in self.complaint_ids  # type: ignore[no-any-return]
        return event.kind in CASE_KINDS and payload.case_id == self.case_id  # type: ignore[no-any-return]

    def _needs(self, log_index: int, event: DecodedEvent, status: str) -> None:
        if self.status != status:
            now = self.status or "not yet opened"
            raise _refused(
                "case_order", event, log_index, f"needs the case {status}, but it is {now}"
            )

    def _regulator(self, log_index: int, event: DecodedEvent) -> None:
        """A regulator's event: by a regulator when it signed, who is no party to the case."""
        if self.proven.roles.get(log_index) != _REGULATOR:
            raise _refused(
                "not_regulator",
                event,
                log_index,
                f"is by {event.author_id!r}, not a regulator in the membership the genesis and "
                "the bundle's governance events give when it was signed",
            )
        if event.author_id in self.parties:
            raise _refused(
                "regulator_is_party",
                event,
                log_index,
                f"is by {event.author_id!r}, a party to the case",
            )

    def apply(self, log_index: int, event: DecodedEvent) -> None:
        payload = getattr(event.event, event.kind)
        author, identifier = event.author_id, event.event_id.hex()
        if event.kind == "complaint_filed":
            self._needs(log_index, event, "")
            if payload.complaint_id in self.complaints:
                raise _refused("wrong_events", event, log_index, "files a complaint twice")
            self.complaints[payload.complaint_id] = {
                "complaint_id": payload.complaint_id,
                "event_id": identifier,
                "complainant": author,
                "respondent": payload.respondent_id,
                "subject_kind": _SUBJECT_KINDS.get(payload.subject_kind, str(payload.subject_kind)),
                "subject_id": payload.subject_id,
                "statement_digest": payload.statement_digest.hex(),
                "evidence_digests": [d.hex() for d in payload.evidence_digests],
                "category": payload.category,
            }
            return
        if event.kind == "case_opened":
            self._needs(log_index, event, "")
            missing = [c for c in self.complaint_ids if c not in self.complaints]
            if missing:
                raise BundleError(
                    "incomplete", f"the bundle lacks the complaint_filed event of {missing[0]!r}"
                )
            for complaint_id in self.complaint_ids:
                complaint = self.complaints[complaint_id]
                self.claims["complaints"].append(complaint)
                self.parties.extend((complaint["complainant"], complaint["respondent"]))
            self.parties = list(dict.fromkeys(self.parties))
            self._regulator(log_index, event)
            self.claims.update(opened_by=author, opening_event_id=identifier, parties=self.parties)
            self._status("open")
        elif event.kind == "case_step_recorded":
            self._needs(log_index, event, "open")
            self._regulator(log_index, event)
            self.claims["steps"].append(
                {
                    "event_id": identifier,
                    "regulator": author,
                    "step": payload.step,
                    "note": payload.note,
                    "evidence_digests": [d.hex() for d in payload.evidence_digests],
                }
            )
        elif event.kind == "case_ruled":
            self._needs(log_index, event, "open")
            self._regulator(log_index, event)
            self.ruled_at_ms = self.proven.times_ms[log_index]
            self.claims["ruling"] = {
                "event_id": identifier,
                "regulator": author,
                "outcome": enum_name(ledger_pb2.RulingOutcome, payload.outcome, "RULING_OUTCOME_"),
                "findings": payload.findings,
                "decision_digest": payload.decision_digest.hex(),
                "remedies": [remedy_json(r) for r in payload.remedies],
            }
            self.claims["appeal_deadline_ms"] = self.ruled_at_ms + self.proven.appeal_window_ms
            self.remedies.extend(payload.remedies)
            self._refunds(log_index, event, payload.remedies)
            self._status("ruled")
        elif event.kind == "ruling_appealed":
            self._needs(log_index, event, "ruled")
            if author not in self.parties:
                raise _refused(
                    "not_case_party", event, log_index, f"is by {author!r}, no party to the case"
                )
            if self.proven.times_ms[log_index] >= self.claims["appeal_deadline_ms"]:
                raise _refused(
                    "appeal_window_closed",
                    event,
                    log_index,
                    f"comes after the window to appeal closed at "
                    f"{self.claims['appeal_deadline_ms']} (block time)",
                )
            self.claims["appeal"] = {
                "event_id": identifier,
                "appellant": author,
                "grounds_digest": payload.grounds_digest.hex(),
                "grounds": payload.grounds,
            }
            self._status("appealed")
        else:  # appeal_decided
            self._vote(log_index, event, payload)

    def _vote(self, log_index: int, event: DecodedEvent, payload: Any) -> None:
        self._needs(log_index, event, "appealed")
        self._regulator(log_index, event)
        author = event.author_id
        if author == self.claims["ruling"]["regulator"]:
            raise _refused(
                "same_regulator", event, log_index, f"is by {author!r}, who made the ruling"
            )
        if any(voter == author for voter, _ in self.votes):
            raise _refused("already_voted", event, log_index, f"is {author!r}'s second vote")
        self.votes.append((author, payload))
        self.remedies.extend(payload.remedies)
        decision = enum_name(ledger_pb2.AppealDecision, payload.decision, "APPEAL_DECISION_")
        self.claims["appeal_votes"].append(
            {
                "event_id": event.event_id.hex(),
                "regulator": author,
                "decision": decision,
                "reasons": payload.reasons,
                "remedies": [remedy_json(r) for r in payload.remedies],
            }
        )
        alike = [voter for voter, vote in self.votes if same_decision(vote, payload)]
        if len(alike) < self.proven.appeal_panel_size:
            return
        self.claims["appeal_decision"] = {
            "event_id": event.event_id.hex(),
            "decision": decision,
            "remedies": [remedy_json(r) for r in payload.remedies],
            "regulators": alike,
        }
        if payload.decision == ledger_pb2.APPEAL_DECISION_VARIED:  # its remedies apply now
            self._refunds(log_index, event, payload.remedies)
        self._status("appeal_decided")

    def _refunds(
        self, log_index: int, event: DecodedEvent, remedies: Sequence[ledger_pb2.Remedy]
    ) -> None:
        for order_id in remedy_targets(remedies)["order"]:
            self.refunds.setdefault(order_id, []).append((log_index, event))

    def _status(self, status: str) -> None:
        self.status = status
        self.claims["statuses"].append(status)


def case_claims(
    case_id: str, events: Sequence[tuple[int, DecodedEvent]], proven: Proven
) -> dict[str, Any]:
    """The claims of the case file of `case_id` over `events` (in log order)."""
    openings = [
        e.event.case_opened
        for _, e in events
        if e.kind == "case_opened" and e.event.case_opened.case_id == case_id
    ]
    if not openings:
        raise BundleError("incomplete", f"the bundle lacks the case_opened event of {case_id!r}")
    case = _Case(case_id, openings[0], proven)
    others: list[tuple[int, DecodedEvent]] = []
    for log_index, event in events:
        if case.owns(event):
            case.apply(log_index, event)
        else:
            others.append((log_index, event))
    claims = case.claims
    subjects: dict[str, list[str]] = {"order": [], "offer": [], "asset": [], "grant": []}
    for complaint in claims["complaints"]:
        subjects.setdefault(complaint["subject_kind"], []).append(complaint["subject_id"])
    for kind, ids in remedy_targets(case.remedies).items():
        subjects[kind].extend(ids)
    used: set[int] = set()
    claims["trades"] = [
        _trade(order_id, others, case, used) for order_id in sorted(set(subjects["order"]))
    ]
    for kind in ("offer", "asset", "grant"):
        claims[f"{kind}s"] = [
            _record(kind, record_id, others, used) for record_id in sorted(set(subjects[kind]))
        ]
    extra = [(i, e) for i, e in others if i not in used]
    if extra:
        log_index, event = extra[0]
        raise _refused("wrong_events", event, log_index, f"is not part of case {case_id!r}")
    claims["timeline"] = [
        {
            "event_id": entry.event_id.hex(),
            "log_index": entry.log_index,
            "height": entry.height,
            "time_ms": entry.time_ms,
            "kind": entry.kind,
            "author": entry.author_id,
        }
        for entry in case_timeline(events, proven)
    ]
    return claims


def case_timeline(
    events: Sequence[tuple[int, DecodedEvent]], proven: Proven
) -> list[TimelineEntry]:
    """The timeline of a case file's `events` (in log order) where the bundle `proven` them:
    the claims keep each entry's structured fields; `provledger verify` prints its summaries,
    the words of protocol/case_timeline.py, which are presentation and no part of the claims."""
    return timeline(
        (
            CaseEvent(
                event_id=event.event_id,
                height=proven.heights[log_index],
                log_index=log_index,
                time_ms=proven.times_ms[log_index],
                event=event.event,
            )
            for log_index, event in events
        ),
        proven.appeal_panel_size,
    )


def _trade(
    order_id: str, others: Sequence[tuple[int, DecodedEvent]], case: _Case, used: set[int]
) -> dict[str, Any]:
    """The trade claims of an order of the case: its offer's listing, its life cycle, and the
    rulings and decisions that refunded it (this case's that took effect, or another case's)."""
    placed = [
        e.event.order_placed.offer_id
        for _, e in others
        if e.kind == "order_placed" and e.event.order_placed.order_id == order_id
    ]
    offer_id = placed[0] if placed else None
    dispute_ids = {
        e.event.dispute_opened.dispute_id
        for _, e in others
        if e.kind == "dispute_opened" and e.event.dispute_opened.order_id == order_id
    }
    chosen = list(case.refunds.get(order_id, []))
    for log_index, event in others:
        payload = getattr(event.event, event.kind)
        if event.kind == "offer_listed":
            mine = payload.offer_id == offer_id
        elif event.kind == "dispute_resolved":
            mine = payload.dispute_id in dispute_ids
        elif event.kind in REFUNDING_KINDS:  # another case's
            mine = refund_of(event, order_id) is not None
        else:
            mine = event.kind in TRADE_KINDS and getattr(payload, "order_id", None) == order_id
        if mine:
            chosen.append((log_index, event))
            used.add(log_index)
    if offer_id is None:
        raise BundleError("incomplete", f"the bundle lacks the order_placed event of {order_id!r}")
    return trade_claims(order_id, sorted(chosen, key=lambda item: item[0]))  # type: ignore[no-any-return]


def _record(
    kind: str, record_id: str, others: Sequence[tuple[int, DecodedEvent]], used: set[int]
) -> dict[str, Any]:
    """The offer, asset or grant of the case, from the event that created it."""
    found = [
        (i, e)
        for i, e in others
        if e.kind in _CREATING[kind]
        and getattr(getattr(e.event, e.kind), f"{kind}_id") == record_id
    ]
    if not found:
        raise BundleError(
            "incomplete", f"the bundle lacks the event that created {kind} {record_id!r}"
        )
    if len(found) > 1:
        raise BundleError("wrong_events", f"two events create {kind} {record_id!r}")
    log_index, event = found[0]
    used.add(log_index)
    payload = getattr(event.event, event.kind)
    shown: dict[str, Any] = {f"{kind}_id": record_id, "event_id": event.event_id.hex()}
    if kind == "offer":
        shown.update(
            asset_id=payload.asset_id,
            seller=payload.seller_id,
            exchange=payload.exchange_id or event.author_id,
            listed_by=event.author_id,
            price=payload.price,
            currency=payload.currency,
            title=payload.title,
        )
    elif kind == "asset":
        shown.update(
            creator=event.author_id,
            classification=enum_name(
                ledger_pb2.Classification, payload.classification, "CLASSIFICATION_"
            ),
            content_digest=payload.content_digest.hex(),
            parent_ids=list(payload.parent_ids) if event.kind == "asset_derived" else [],
        )
    else:
        shown.update(
            asset_id=payload.asset_id,
            grantor=event.author_id,
            grantee=payload.grantee_id,
            purposes=list(payload.purposes),
            expires_at_ms=payload.expires_at_ms,
        )
    return shown

"""The rules of supervision: complaints, cases, rulings with remedies, and appeals (ADR 018).

A case goes OPEN -> RULED -> (APPEALED -> APPEAL_DECIDED); a ruled case nobody appealed
before its window closed is final. Every event that comes out of that order is refused with
a code that says where the case stands (`case_not_open`, `case_not_ruled`,
`case_not_appealed`, `already_appealed`, `case_final`). Dispatched to by protocol/rules.py.

- any member but an auditor complains about an order, offer, asset or grant, against a party
  to it (order: buyer, seller, exchange, the offer's broker; offer: seller, exchange, broker;
  asset: owner, holder; grant: grantor, grantee);
- a regulator opens a case on complaints no case holds yet, records its steps and rules; a
  regulator who is a party to it does none of that (`regulator_is_party`);
- the remedies of a ruling take effect in the same writes, and each must concern the case:
  a refund of an order the complaints are about (or one placed on an offer they are about),
  a delisting of an offer of the case's subjects, a revocation of a grant of its subjects,
  a suspension or a warning of one of its parties (`remedy_outside_case` otherwise);
- a party appeals within the genesis's window (protocol/supervision.py); a regulator who did
  not rule decides, or `appeal_panel_size` of them vote alike (same decision, same remedies).

`CaseRecord.event_ids` lists every event of the case; case files and the case timeline
(protocol/case_timeline.py) are built from it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from provledger.protocol.errors import Rejected, duplicate, forbidden, invalid, precondition
from provledger.protocol.events import DecodedEvent
from provledger.protocol.limits import APPEAL_VOTES_PER_CASE_MAX, CASE_EVENTS_MAX
from provledger.protocol.rule_checks import (
    REGULATOR,
    active_member,
    copy_record,
    new_id,
    put,
    require_role,
)
from provledger.protocol.rules_assets import grant_revoked
from provledger.protocol.rules_market import delisted_offer, replaces_suspension
from provledger.protocol.state import Overlay, StateReader, Write
from provledger.protocol.supervision import supervision_policy
from provledger.v1 import ledger_pb2, state_pb2

ORDER = ledger_pb2.COMPLAINT_SUBJECT_ORDER
OFFER = ledger_pb2.COMPLAINT_SUBJECT_OFFER
ASSET = ledger_pb2.COMPLAINT_SUBJECT_ASSET
GRANT = ledger_pb2.COMPLAINT_SUBJECT_GRANT
OPEN = state_pb2.CASE_STATUS_OPEN
RULED = state_pb2.CASE_STATUS_RULED
APPEALED = state_pb2.CASE_STATUS_APPEALED
APPEAL_DECIDED = state_pb2.CASE_STATUS_APPEAL_DECIDED
# Room a case keeps, once its steps stop, for its ruling, its appeal and the appeal's votes.
_ROOM_AFTER_STEPS = 2 + APPEAL_VOTES_PER_CASE_MAX


# --- the judgements others call ------------------------------------------------------------


def appeal_deadline_ms(state: StateReader, case: state_pb2.CaseRecord) -> int:
    """When the window to appeal the ruling of `case` closes (block time); 0 before a
    ruling."""
    if not case.ruled_at_ms:
        return 0
    return case.ruled_at_ms + supervision_policy(state).appeal_window_ms


def case_final(state: StateReader, case: state_pb2.CaseRecord, at_ms: int) -> bool:
    """Whether nothing can change `case` any more at block time `at_ms`: its appeal was
    decided, or it was ruled and the window to appeal closed unused."""
    if case.status == APPEAL_DECIDED:
        return True
    return case.status == RULED and at_ms >= appeal_deadline_ms(state, case)


def subject_parties(state: StateReader, subject_kind: int, subject_id: str) -> list[str]:
    """The members a complaint about the subject may name as respondent; `Rejected` if the
    subject does not exist."""
    if subject_kind == ORDER:
        order = state.load("order", subject_id)
        if order is None:
            raise precondition("unknown_order", f"order {subject_id!r} does not exist")
        offer = state.load("offer", order.offer_id)  # type: ignore[attr-defined]
        broker = [offer.broker_id] if offer is not None and offer.broker_id else []  # type: ignore[attr-defined]
        return [order.buyer_id, order.seller_id, order.exchange_id, *broker]  # type: ignore[attr-defined]
    if subject_kind == OFFER:
        offer = state.load("offer", subject_id)
        if offer is None:
            raise precondition("unknown_offer", f"offer {subject_id!r} does not exist")
        broker = [offer.broker_id] if offer.broker_id else []  # type: ignore[attr-defined]
        return [offer.offer.seller_id, offer.exchange_id, *broker]  # type: ignore[attr-defined]
    if subject_kind == ASSET:
        asset = state.load("asset", subject_id)
        if asset is None:
            raise precondition("unknown_asset", f"asset {subject_id!r} does not exist")
        return [asset.owner_id, *asset.holder_ids]  # type: ignore[attr-defined]
    grant = state.load("grant", subject_id)
    if grant is None:
        raise precondition("unknown_grant", f"grant {subject_id!r} does not exist")
    return [grant.grantor_id, grant.grant.grantee_id]  # type: ignore[attr-defined]


# --- complaints and cases ------------------------------------------------------------------


def complaint_filed(state, author, payload, decoded, block_time_ms) -> list[Write]:
    new_id(state, "complaint", payload.complaint_id)
    parties = subject_parties(state, payload.subject_kind, payload.subject_id)
    if payload.respondent_id == author.member_id:
        raise invalid("self_complaint", "a member cannot complain about itself")
    if payload.respondent_id not in parties:
        raise forbidden(
            "respondent_not_party",
            f"{payload.respondent_id!r} is not a party to {_subject_name(payload)}",
        )
    record = state_pb2.ComplaintRecord(
        complaint=payload,
        complainant_id=author.member_id,
        event_id=decoded.event_id,
        filed_at_ms=block_time_ms,
    )
    return [put("complaint", payload.complaint_id, record)]


def case_opened(state, author, payload, decoded, block_time_ms) -> list[Write]:
    require_role(author, (REGULATOR,), "opening a case")
    new_id(state, "case", payload.case_id)
    complaints: list[state_pb2.ComplaintRecord] = []
    for complaint_id in payload.complaint_ids:
        complaint = state.load("complaint", complaint_id)
        if complaint is None:
            raise precondition("unknown_complaint", f"complaint {complaint_id!r} does not exist")
        if complaint.case_id:  # type: ignore[attr-defined]
            raise precondition(
                "complaint_in_case",
                f"complaint {complaint_id!r} is already in case {complaint.case_id!r}",  # type: ignore[attr-defined]
            )
        complaints.append(complaint)  # type: ignore[arg-type]
    # In filing order (a stable sort keeps the case's order for complaints of one block).
    filed = sorted(complaints, key=lambda c: c.filed_at_ms)
    parties: list[str] = []
    for complaint in complaints:
        parties.extend((complaint.complainant_id, complaint.complaint.respondent_id))
    _not_a_party(author, parties, "open a case")
    case = state_pb2.CaseRecord(
        case_id=payload.case_id,
        complaint_ids=list(payload.complaint_ids),
        opened_by=author.member_id,
        status=OPEN,
        event_ids=[*(c.event_id for c in filed), decoded.event_id],
        opened_at_ms=block_time_ms,
        parties=list(dict.fromkeys(parties)),
    )
    writes = [put("case", payload.case_id, case)]
    for complaint in complaints:
        taken = copy_record(complaint)
        taken.case_id = payload.case_id
        writes.append(put("complaint", complaint.complaint.complaint_id, taken))
    return writes


def case_step_recorded(state, author, payload, decoded, block_time_ms) -> list[Write]:
    require_role(author, (REGULATOR,), "recording a case step")
    case = _case_in(state, payload.case_id, OPEN, block_time_ms)
    _not_a_party(author, case.parties, "investigate")
    updated = _with_event(case, decoded, room=_ROOM_AFTER_STEPS)
    updated.steps += 1
    return [put("case", case.case_id, updated)]


def case_ruled(state, author, payload, decoded, block_time_ms) -> list[Write]:
    require_role(author, (REGULATOR,), "ruling on a case")
    case = _case_in(state, payload.case_id, OPEN, block_time_ms)
    _not_a_party(author, case.parties, "rule")
    remedy_writes = remedies_writes(state, author, case, payload.remedies, decoded, block_time_ms)
    updated = _with_event(case, decoded, room=0)
    updated.status = RULED
    updated.ruling.CopyFrom(payload)
    updated.ruled_by = author.member_id
    updated.ruled_at_ms = block_time_ms
    return [*remedy_writes, put("case", case.case_id, updated)]


def ruling_appealed(state, author, payload, decoded, block_time_ms) -> list[Write]:
    case = _existing_case(state, payload.case_id)
    if author.member_id not in case.parties:
        raise forbidden(
            "not_case_party", f"only a party to case {case.case_id!r} may appeal its ruling"
        )
    if case.status == RULED and block_time_ms >= appeal_deadline_ms(state, case):
        raise precondition(
            "appeal_window_closed",
            f"the window to appeal the ruling of case {case.case_id!r} closed at "
            f"{appeal_deadline_ms(state, case)}",
        )
    case = _case_in(state, payload.case_id, RULED, block_time_ms)
    updated = _with_event(case, decoded, room=0)
    updated.status = APPEALED
    updated.appellant_id = author.member_id
    updated.appealed_at_ms = block_time_ms
    return [put("case", case.case_id, updated)]


def appeal_decided(state, author, payload, decoded, block_time_ms) -> list[Write]:
    require_role(author, (REGULATOR,), "deciding an appeal")
    case = _case_in(state, payload.case_id, APPEALED, block_time_ms)
    if author.member_id == case.ruled_by:
        raise forbidden(
            "same_regulator",
            f"{author.member_id!r} made the ruling of case {case.case_id!r}; another regulator "
            "decides the appeal",
        )
    _not_a_party(author, case.parties, "decide the appeal")
    if any(vote.regulator_id == author.member_id for vote in case.votes):
        raise duplicate(
            "already_voted", f"{author.member_id!r} already decided on the appeal of this case"
        )
    if len(case.votes) >= APPEAL_VOTES_PER_CASE_MAX:
        raise precondition(
            "too_many_votes",
            f"the appeal of case {case.case_id!r} has its {APPEAL_VOTES_PER_CASE_MAX} votes",
        )
    remedy_writes = remedies_writes(state, author, case, payload.remedies, decoded, block_time_ms)
    updated = _with_event(case, decoded, room=0)
    updated.votes.append(
        state_pb2.AppealVote(
            regulator_id=author.member_id, event_id=decoded.event_id, decision=payload
        )
    )
    alike = sum(1 for vote in updated.votes if same_decision(vote.decision, payload))
    if alike < supervision_policy(state).appeal_panel_size:
        return [put("case", case.case_id, updated)]
    updated.status = APPEAL_DECIDED
    updated.appeal_decision.CopyFrom(payload)
    updated.decided_at_ms = block_time_ms
    writes = remedy_writes if payload.decision == ledger_pb2.APPEAL_DECISION_VARIED else []
    if payload.decision == ledger_pb2.APPEAL_DECISION_OVERTURNED:
        writes = _lift_suspensions(state, case)
    return [*writes, put("case", case.case_id, updated)]


def same_decision(a: ledger_pb2.AppealDecided, b: ledger_pb2.AppealDecided) -> bool:
    """Whether two appeal votes decide alike: the same decision with the same remedies (their
    reasons may differ)."""
    return a.decision == b.decision and [
        r.SerializeToString(deterministic=True) for r in a.remedies
    ] == [r.SerializeToString(deterministic=True) for r in b.remedies]


# --- the case's state ----------------------------------------------------------------------


def _existing_case(state: StateReader, case_id: str) -> state_pb2.CaseRecord:
    case = state.load("case", case_id)
    if case is None:
        raise precondition("unknown_case", f"case {case_id!r} does not exist")
    return case  # type: ignore[return-value]


_STATE_REFUSALS = {
    # (status the event needs, status the case is in) -> the code that says why not
    (OPEN, RULED): ("case_not_open", "is ruled"),
    (OPEN, APPEALED): ("case_not_open", "is under appeal"),
    (RULED, OPEN): ("case_not_ruled", "is still open"),
    (RULED, APPEALED): ("already_appealed", "is already under appeal"),
    (APPEALED, OPEN): ("case_not_appealed", "is still open"),
    (APPEALED, RULED): ("case_not_appealed", "is ruled and not appealed"),
}


def _case_in(
    state: StateReader, case_id: str, needed: int, block_time_ms: int
) -> state_pb2.CaseRecord:
    """The case, if it is in status `needed` and not final; else the code of where it is."""
    case = _existing_case(state, case_id)
    if case_final(state, case, block_time_ms):
        raise precondition("case_final", f"case {case_id!r} is final; nothing changes it now")
    if case.status != needed:
        code, where = _STATE_REFUSALS[(needed, case.status)]
        raise precondition(code, f"case {case_id!r} {where}")
    return case


def _not_a_party(author: state_pb2.MemberRecord, parties, action: str) -> None:
    """No one judges their own case: a regulator who is a party may not open, investigate,
    rule or decide an appeal of it."""
    if author.member_id in parties:
        raise forbidden(
            "regulator_is_party",
            f"{author.member_id!r} is a party to the case and may not {action}",
        )


def _with_event(
    case: state_pb2.CaseRecord, decoded: DecodedEvent, room: int
) -> state_pb2.CaseRecord:
    """A copy of the case with the event appended, if it holds fewer than CASE_EVENTS_MAX
    less `room` events."""
    if len(case.event_ids) >= CASE_EVENTS_MAX - room:
        raise precondition(
            "case_full",
            f"case {case.case_id!r} holds {len(case.event_ids)} events; no more steps fit",
        )
    updated: state_pb2.CaseRecord = copy_record(case)
    updated.event_ids.append(decoded.event_id)
    return updated


# --- remedies ------------------------------------------------------------------------------


class CaseSubjects:
    """What a case is about: its complaints' subjects (orders, offers, assets, grants), the
    offers of its orders, and the assets of its offers and grants. A remedy must stay within
    them; the node lists a case under each of them (ListCases by subject)."""

    def __init__(self, load: Callable[[str, str], Any], complaint_ids: Iterable[str]) -> None:
        self.orders: set[str] = set()
        self.offers: set[str] = set()
        self.assets: set[str] = set()
        self.grants: set[str] = set()
        for complaint_id in complaint_ids:
            complaint = load("complaint", complaint_id).complaint
            kind, subject_id = complaint.subject_kind, complaint.subject_id
            {ORDER: self.orders, OFFER: self.offers, ASSET: self.assets, GRANT: self.grants}[
                kind
            ].add(subject_id)
        for order_id in self.orders:
            order = load("order", order_id)
            if order is not None:
                self.offers.add(order.offer_id)
        for offer_id in self.offers:
            offer = load("offer", offer_id)
            if offer is not None:
                self.assets.add(offer.offer.asset_id)
        for grant_id in self.grants:
            grant = load("grant", grant_id)
            if grant is not None:
                self.assets.add(grant.grant.asset_id)

    def ids(self) -> list[str]:
        """Every id the case is about, sorted."""
        return sorted(self.orders | self.offers | self.assets | self.grants)


def _outside(what: str, case: state_pb2.CaseRecord) -> Rejected:
    return forbidden("remedy_outside_case", f"{what} is not one of case {case.case_id!r}'s")


def remedies_writes(
    state: StateReader,
    author: state_pb2.MemberRecord,
    case: state_pb2.CaseRecord,
    remedies,
    decoded: DecodedEvent,
    block_time_ms: int,
) -> list[Write]:
    """The writes of the remedies of a ruling or a varied appeal on `case`, each judged
    against the state the earlier ones left; `Rejected` if one does not concern the case or
    cannot take effect."""
    pending = Overlay(state)
    subjects = CaseSubjects(state.load, case.complaint_ids)
    for remedy in remedies:
        which = remedy.WhichOneof("remedy")
        if which == "refund":
            pending.apply(_refund(pending, case, subjects, remedy.refund, decoded))
        elif which == "delist":
            pending.apply(_delist(pending, author, case, subjects, remedy.delist, decoded))
        elif which == "revoke_grant":
            grant_id = remedy.revoke_grant.grant_id
            grant = pending.load("grant", grant_id)
            if (
                grant is not None
                and grant_id not in subjects.grants
                and grant.grant.asset_id not in subjects.assets  # type: ignore[attr-defined]
            ):
                raise _outside(f"grant {grant_id!r}", case)
            if grant is None or not grant.revoked:  # type: ignore[attr-defined]
                # A grant already revoked stays as it was: the ruling records the remedy.
                revocation = ledger_pb2.GrantRevoked(grant_id=grant_id)
                pending.apply(grant_revoked(pending, author, revocation, decoded, block_time_ms))
        elif which == "suspend":
            pending.apply(_suspend(pending, author, case, remedy.suspend, decoded, block_time_ms))
        else:
            if remedy.warning.member_id not in case.parties:
                raise _outside(f"member {remedy.warning.member_id!r}", case)
    return pending.writes


def _refund(
    state: StateReader,
    case: state_pb2.CaseRecord,
    subjects: CaseSubjects,
    refund: ledger_pb2.Refund,
    decoded: DecodedEvent,
) -> list[Write]:
    order = state.load("order", refund.order_id)
    if order is None:
        raise precondition("unknown_order", f"order {refund.order_id!r} does not exist")
    if refund.order_id not in subjects.orders and order.offer_id not in subjects.offers:  # type: ignore[attr-defined]
        raise _outside(f"order {refund.order_id!r}", case)
    if order.status == state_pb2.ORDER_STATUS_REFUNDED:  # type: ignore[attr-defined]
        raise precondition(
            "already_refunded",
            f"order {refund.order_id!r} was refunded by case {order.refund_case_id!r}",  # type: ignore[attr-defined]
        )
    offer = state.load("offer", order.offer_id).offer  # type: ignore[union-attr, attr-defined]
    if refund.currency != offer.currency:
        raise invalid(
            "wrong_currency",
            f"order {refund.order_id!r} was priced in {offer.currency}, not {refund.currency}",
        )
    if refund.amount > offer.price:
        raise invalid(
            "refund_too_large",
            f"a refund of order {refund.order_id!r} is at most its price, {offer.price}",
        )
    updated = copy_record(order)
    updated.status = state_pb2.ORDER_STATUS_REFUNDED
    updated.refund.CopyFrom(refund)
    updated.refund_case_id = case.case_id
    updated.event_ids.append(decoded.event_id)
    return [put("order", refund.order_id, updated)]


def _delist(
    state: StateReader,
    author: state_pb2.MemberRecord,
    case: state_pb2.CaseRecord,
    subjects: CaseSubjects,
    delist: ledger_pb2.DelistOffer,
    decoded: DecodedEvent,
) -> list[Write]:
    offer = state.load("offer", delist.offer_id)
    if offer is None:
        raise precondition("unknown_offer", f"offer {delist.offer_id!r} does not exist")
    if delist.offer_id not in subjects.offers and offer.offer.asset_id not in subjects.assets:  # type: ignore[attr-defined]
        raise _outside(f"offer {delist.offer_id!r}", case)
    if offer.status == state_pb2.OFFER_STATUS_DELISTED:  # type: ignore[attr-defined]
        return []  # it stays as it was delisted first: the ruling records the remedy
    reason = f"remedy in case {case.case_id}"
    updated = delisted_offer(offer, decoded.event_id, author.member_id, reason)  # type: ignore[arg-type]
    return [put("offer", delist.offer_id, updated)]


def _suspend(
    state: StateReader,
    author: state_pb2.MemberRecord,
    case: state_pb2.CaseRecord,
    suspend: ledger_pb2.SuspendMember,
    decoded: DecodedEvent,
    block_time_ms: int,
) -> list[Write]:
    if suspend.member_id not in case.parties:
        raise _outside(f"member {suspend.member_id!r}", case)
    active_member(state, suspend.member_id, "suspend.member_id")
    if suspend.until_ms <= block_time_ms:
        raise precondition("already_expired", "the suspension's end is not after the block time")
    record = state_pb2.SuspensionRecord(
        member_id=suspend.member_id,
        suspension_id=case.case_id,
        until_ms=suspend.until_ms,
        reason=f"remedy in case {case.case_id}",
        regulator_id=author.member_id,
        event_id=decoded.event_id,
        case_id=case.case_id,
    )
    current = state.load("suspension", suspend.member_id)
    if not replaces_suspension(current, record):  # type: ignore[arg-type]
        return []  # a suspension that ends later stands; the ruling records the remedy
    return [put("suspension", suspend.member_id, record)]


def _lift_suspensions(state: StateReader, case: state_pb2.CaseRecord) -> list[Write]:
    """An overturned ruling's suspensions, lifted where the member's record is still one
    of this case's."""
    writes: list[Write] = []
    suspended = [
        r.suspend.member_id for r in case.ruling.remedies if r.WhichOneof("remedy") == "suspend"
    ]
    for member_id in dict.fromkeys(suspended):
        record = state.load("suspension", member_id)
        if record is None or record.case_id != case.case_id or record.lifted:  # type: ignore[attr-defined]
            continue
        lifted = copy_record(record)
        lifted.lifted = True
        writes.append(put("suspension", member_id, lifted))
    return writes


def _subject_name(complaint: ledger_pb2.ComplaintFiled) -> str:
    kind = ledger_pb2.ComplaintSubject.Name(complaint.subject_kind)
    return f"{kind.removeprefix('COMPLAINT_SUBJECT_').lower()} {complaint.subject_id!r}"

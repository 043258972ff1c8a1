"""The rules of complaints, cases, rulings with remedies and appeals (protocol/rules_cases.py,
ADR 018): every transition, every refusal (which changes nothing), remedies taking effect, an
appeal decided by a second regulator or a panel of k, the appeal window; what case events
concern (protocol/concerns.py) and the case timeline (protocol/case_timeline.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support.memory_state import (
    GENESIS_TIME_MS,
    MEMBER_ROLES,
    Consortium,
    MemoryState,
    digest,
)

from provledger.protocol import case_timeline, rules_cases
from provledger.protocol.concerns import concerns
from provledger.protocol.errors import Rejected, RejectionKind
from provledger.protocol.limits import APPEAL_VOTES_PER_CASE_MAX, CASE_EVENTS_MAX
from provledger.protocol.rules_market import replaces_suspension
from provledger.v1 import ledger_pb2, state_pb2

INVALID = RejectionKind.INVALID
FORBIDDEN = RejectionKind.FORBIDDEN
PRECONDITION = RejectionKind.PRECONDITION
DUPLICATE = RejectionKind.DUPLICATE

ORDER = ledger_pb2.COMPLAINT_SUBJECT_ORDER
OFFER = ledger_pb2.COMPLAINT_SUBJECT_OFFER
ASSET = ledger_pb2.COMPLAINT_SUBJECT_ASSET
GRANT = ledger_pb2.COMPLAINT_SUBJECT_GRANT
UPHELD = ledger_pb2.RULING_OUTCOME_UPHELD
APPEAL_UPHELD = ledger_pb2.APPEAL_DECISION_UPHELD
OVERTURNED = ledger_pb2.APPEAL_DECISION_OVERTURNED
VARIED = ledger_pb2.APPEAL_DECISION_VARIED

WINDOW_MS = 100_000
SCENE_MS = GENESIS_TIME_MS + 1_000
OPEN_MS = GENESIS_TIME_MS + 2_000
RULED_MS = GENESIS_TIME_MS + 3_000
APPEALED_MS = GENESIS_TIME_MS + 4_000
LATER_MS = GENESIS_TIME_MS + 5_000  # the event under test, unless a case says otherwise
SUSPENDED_UNTIL_MS = GENESIS_TIME_MS + 1_000_000
ROLES = MEMBER_ROLES | {"regulator-2": "regulator", "regulator-3": "regulator"}

Setup = Callable[[Consortium, MemoryState], Any]


def make_consortium(panel: int = 1) -> Consortium:
    return Consortium(
        member_roles=ROLES,
        supervision={"appeal_window_ms": WINDOW_MS, "appeal_panel_size": panel},
    )


def do(c: Consortium, s: MemoryState, author: str, kind: str, time_ms: int, **fields: Any):
    return c.apply(s, c.sign(author, kind, **fields), time_ms)


def build_scene(c: Consortium) -> MemoryState:
    """agency-a owns asset-1 and asset-2 and grants agency-b grant-1 on asset-1 and grant-2 on
    asset-2; the exchange lists offer-1 (asset-1, 500 CNY) and offer-2 (asset-2); agency-b
    orders order-1 on offer-1, which agency-a delivers, and order-2 on offer-2; agency-b
    complains about order-1 against agency-a (complaint-1)."""
    s = c.state()
    for asset_id in ("asset-1", "asset-2"):
        do(
            c,
            s,
            "agency-a",
            "asset_registered",
            SCENE_MS,
            asset_id=asset_id,
            content_digest=digest(asset_id),
            classification=ledger_pb2.CLASSIFICATION_GENERAL,
            name=asset_id,
        )
    for grant_id, asset_id in (("grant-1", "asset-1"), ("grant-2", "asset-2")):
        do(
            c,
            s,
            "agency-a",
            "grant_issued",
            SCENE_MS,
            grant_id=grant_id,
            asset_id=asset_id,
            grantee_id="agency-b",
            purposes=["research"],
            operations=[ledger_pb2.OPERATION_READ],
            expires_at_ms=SUSPENDED_UNTIL_MS,
        )
    for offer_id, asset_id in (("offer-1", "asset-1"), ("offer-2", "asset-2")):
        do(
            c,
            s,
            "exchange",
            "offer_listed",
            SCENE_MS,
            offer_id=offer_id,
            asset_id=asset_id,
            seller_id="agency-a",
            price=500,
            currency="CNY",
        )
    do(c, s, "agency-b", "order_placed", SCENE_MS, order_id="order-1", offer_id="offer-1")
    do(c, s, "agency-b", "order_placed", SCENE_MS, order_id="order-2", offer_id="offer-2")
    do(
        c,
        s,
        "agency-a",
        "order_delivered",
        SCENE_MS,
        order_id="order-1",
        delivery_digest=digest("d"),
    )
    do(c, s, "agency-b", "complaint_filed", SCENE_MS, **COMPLAINT)
    return s


COMPLAINT: dict[str, Any] = dict(
    complaint_id="complaint-1",
    subject_kind=ORDER,
    subject_id="order-1",
    respondent_id="agency-a",
    statement_digest=digest("statement"),
    evidence_digests=[digest("evidence")],
    category="non_delivery",
)


def complaint(**overrides: Any) -> dict[str, Any]:
    return COMPLAINT | {"complaint_id": "complaint-new"} | overrides


def refund(order_id: str = "order-1", amount: int = 500, currency: str = "CNY") -> dict:
    return {"refund": {"order_id": order_id, "amount": amount, "currency": currency}}


def delist(offer_id: str = "offer-1") -> dict:
    return {"delist": {"offer_id": offer_id}}


def revoke(grant_id: str = "grant-1") -> dict:
    return {"revoke_grant": {"grant_id": grant_id}}


def suspend(member_id: str = "agency-a", until_ms: int = SUSPENDED_UNTIL_MS) -> dict:
    return {"suspend": {"member_id": member_id, "until_ms": until_ms}}


def warning(member_id: str = "agency-a") -> dict:
    return {"warning": {"member_id": member_id, "text": "deliver what you sell"}}


def ruling(*remedies: dict, case_id: str = "case-1") -> dict[str, Any]:
    return dict(
        case_id=case_id,
        outcome=UPHELD,
        findings="the data was never delivered as described",
        decision_digest=digest("decision"),
        remedies=list(remedies),
    )


def decision(value: int = APPEAL_UPHELD, *remedies: dict, reasons: str = "reasons") -> dict:
    return dict(case_id="case-1", decision=value, reasons=reasons, remedies=list(remedies))


# --- the stages of case-1 --------------------------------------------------------------------


def opened(c: Consortium, s: MemoryState) -> None:
    do(c, s, "regulator", "case_opened", OPEN_MS, case_id="case-1", complaint_ids=["complaint-1"])


def ruled(c: Consortium, s: MemoryState) -> None:
    opened(c, s)
    do(c, s, "regulator", "case_ruled", RULED_MS, **ruling(suspend()))


def appealed(c: Consortium, s: MemoryState) -> None:
    ruled(c, s)
    do(
        c,
        s,
        "agency-a",
        "ruling_appealed",
        APPEALED_MS,
        case_id="case-1",
        grounds_digest=digest("g"),
    )


def decided(c: Consortium, s: MemoryState) -> None:
    appealed(c, s)
    do(c, s, "regulator-2", "appeal_decided", APPEALED_MS, **decision())


def put_case(**changes: Any) -> Setup:
    """Stage `opened`, then case-1's record with `changes` (a case at a limit)."""

    def setup(c: Consortium, s: MemoryState) -> None:
        opened(c, s)
        case = state_pb2.CaseRecord()
        case.CopyFrom(s.load("case", "case-1"))  # type: ignore[arg-type]
        for field, value in changes.items():
            if field == "status":
                case.status = value
            else:
                getattr(case, field).extend(value)
        s.records[("case", "case-1")] = case

    return setup


def then(*setups: Setup) -> Setup:
    def setup(c: Consortium, s: MemoryState) -> None:
        for step in setups:
            step(c, s)

    return setup


def regulator_2_complains(c: Consortium, s: MemoryState) -> None:
    """regulator-2, a holder of asset-1's copy by sharing, complains about the asset."""
    do(c, s, "agency-a", "asset_shared", SCENE_MS, asset_id="asset-1", recipient_id="regulator-2")
    do(c, s, "agency-b", "complaint_filed", SCENE_MS, **complaint(
        complaint_id="complaint-holder", subject_kind=ASSET, subject_id="asset-1",
        respondent_id="regulator-2"))  # fmt: skip


def opened_with_regulator_2(c: Consortium, s: MemoryState) -> None:
    """case-1 on complaint-1 and the complaint against regulator-2."""
    do(c, s, "regulator", "case_opened", OPEN_MS, case_id="case-1",
       complaint_ids=["complaint-1", "complaint-holder"])  # fmt: skip


# --- refusals --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    author: str
    kind: str
    fields: dict[str, Any]
    code: str
    rejection: RejectionKind
    fragment: str
    setup: Setup | None = None
    time_ms: int = LATER_MS
    panel: int = 1


def refusal(case_id: str, *args: Any, **kwargs: Any) -> Any:
    return pytest.param(Refusal(*args, **kwargs), id=case_id)


STEP = dict(case_id="case-1", step="hearing", note="both parties heard")
APPEAL = dict(case_id="case-1", grounds_digest=digest("grounds"), grounds="the refund is too high")
AFTER_WINDOW_MS = RULED_MS + WINDOW_MS

REFUSALS = [
    # complaint_filed
    refusal(
        "complaint-exists",
        "agency-b",
        "complaint_filed",
        COMPLAINT,
        "complaint_exists",
        DUPLICATE,
        "already exists",
    ),
    refusal(
        "complaint-unknown-order",
        "agency-b",
        "complaint_filed",
        complaint(subject_id="order-x"),
        "unknown_order",
        PRECONDITION,
        "order 'order-x' does not exist",
    ),
    refusal(
        "complaint-unknown-offer",
        "agency-b",
        "complaint_filed",
        complaint(subject_kind=OFFER, subject_id="offer-x"),
        "unknown_offer",
        PRECONDITION,
        "offer 'offer-x' does not exist",
    ),
    refusal(
        "complaint-unknown-asset",
        "agency-b",
        "complaint_filed",
        complaint(subject_kind=ASSET, subject_id="asset-x"),
        "unknown_asset",
        PRECONDITION,
        "asset 'asset-x' does not exist",
    ),
    refusal(
        "complaint-unknown-grant",
        "agency-b",
        "complaint_filed",
        complaint(subject_kind=GRANT, subject_id="grant-x"),
        "unknown_grant",
        PRECONDITION,
        "grant 'grant-x' does not exist",
    ),
    refusal(
        "complaint-against-oneself",
        "agency-a",
        "complaint_filed",
        complaint(),
        "self_complaint",
        INVALID,
        "cannot complain about itself",
    ),
    refusal(
        "complaint-respondent-not-party-to-order",
        "agency-b",
        "complaint_filed",
        complaint(respondent_id="regulator"),
        "respondent_not_party",
        FORBIDDEN,
        "'regulator' is not a party to order 'order-1'",
    ),
    refusal(
        "complaint-respondent-not-party-to-grant",
        "regulator",
        "complaint_filed",
        complaint(subject_kind=GRANT, subject_id="grant-1", respondent_id="exchange"),
        "respondent_not_party",
        FORBIDDEN,
        "'exchange' is not a party to grant 'grant-1'",
    ),
    refusal(
        "complaint-by-auditor",
        "auditor",
        "complaint_filed",
        complaint(),
        "wrong_role",
        FORBIDDEN,
        "auditors only read",
    ),
    # case_opened
    refusal(
        "open-not-regulator",
        "agency-b",
        "case_opened",
        dict(case_id="case-1", complaint_ids=["complaint-1"]),
        "wrong_role",
        FORBIDDEN,
        "opening a case needs the regulator role",
    ),
    refusal(
        "open-case-exists",
        "regulator",
        "case_opened",
        dict(case_id="case-1", complaint_ids=["complaint-1"]),
        "case_exists",
        DUPLICATE,
        "case 'case-1' already exists",
        setup=opened,
    ),
    refusal(
        "open-unknown-complaint",
        "regulator",
        "case_opened",
        dict(case_id="case-1", complaint_ids=["complaint-x"]),
        "unknown_complaint",
        PRECONDITION,
        "complaint 'complaint-x' does not exist",
    ),
    refusal(
        "open-complaint-in-case",
        "regulator",
        "case_opened",
        dict(case_id="case-2", complaint_ids=["complaint-1"]),
        "complaint_in_case",
        PRECONDITION,
        "complaint 'complaint-1' is already in case 'case-1'",
        setup=opened,
    ),
    refusal(
        "open-own-case",
        "regulator",
        "case_opened",
        dict(case_id="case-2", complaint_ids=["complaint-regulator"]),
        "regulator_is_party",
        FORBIDDEN,
        "'regulator' is a party to the case and may not open",
        setup=lambda c, s: do(
            c,
            s,
            "regulator",
            "complaint_filed",
            SCENE_MS,
            **complaint(
                complaint_id="complaint-regulator", subject_kind=GRANT, subject_id="grant-1"
            ),
        ),
    ),
    # case_step_recorded
    refusal(
        "step-not-regulator",
        "agency-a",
        "case_step_recorded",
        STEP,
        "wrong_role",
        FORBIDDEN,
        "the regulator role",
        setup=opened,
    ),
    refusal(
        "step-unknown-case",
        "regulator",
        "case_step_recorded",
        STEP,
        "unknown_case",
        PRECONDITION,
        "case 'case-1' does not exist",
    ),
    refusal(
        "step-on-ruled-case",
        "regulator",
        "case_step_recorded",
        STEP,
        "case_not_open",
        PRECONDITION,
        "case 'case-1' is ruled",
        setup=ruled,
    ),
    refusal(
        "step-on-appealed-case",
        "regulator",
        "case_step_recorded",
        STEP,
        "case_not_open",
        PRECONDITION,
        "case 'case-1' is under appeal",
        setup=appealed,
    ),
    refusal(
        "step-on-decided-case",
        "regulator",
        "case_step_recorded",
        STEP,
        "case_final",
        PRECONDITION,
        "case 'case-1' is final",
        setup=decided,
    ),
    refusal(
        "step-after-window",
        "regulator",
        "case_step_recorded",
        STEP,
        "case_final",
        PRECONDITION,
        "case 'case-1' is final",
        setup=ruled,
        time_ms=AFTER_WINDOW_MS,
    ),
    refusal(
        "step-on-full-case",
        "regulator",
        "case_step_recorded",
        STEP,
        "case_full",
        PRECONDITION,
        "no more steps fit",
        setup=put_case(
            event_ids=[b"x" * 32] * (CASE_EVENTS_MAX - 2 - APPEAL_VOTES_PER_CASE_MAX - 2)
        ),
    ),
    refusal(
        "step-by-a-party",
        "regulator-2",
        "case_step_recorded",
        STEP,
        "regulator_is_party",
        FORBIDDEN,
        "may not investigate",
        setup=then(regulator_2_complains, opened_with_regulator_2),
    ),
    # case_ruled
    refusal(
        "rule-by-a-party",
        "regulator-2",
        "case_ruled",
        ruling(),
        "regulator_is_party",
        FORBIDDEN,
        "may not rule",
        setup=then(regulator_2_complains, opened_with_regulator_2),
    ),
    refusal(
        "rule-not-regulator",
        "agency-b",
        "case_ruled",
        ruling(),
        "wrong_role",
        FORBIDDEN,
        "the regulator role",
        setup=opened,
    ),
    refusal(
        "rule-unknown-case",
        "regulator",
        "case_ruled",
        ruling(),
        "unknown_case",
        PRECONDITION,
        "does not exist",
    ),
    refusal(
        "rule-twice",
        "regulator",
        "case_ruled",
        ruling(),
        "case_not_open",
        PRECONDITION,
        "is ruled",
        setup=ruled,
    ),
    refusal(
        "rule-refund-outside-case",
        "regulator",
        "case_ruled",
        ruling(refund("order-2")),
        "remedy_outside_case",
        FORBIDDEN,
        "order 'order-2' is not one of case 'case-1''s",
        setup=opened,
    ),
    refusal(
        "rule-delist-outside-case",
        "regulator",
        "case_ruled",
        ruling(delist("offer-2")),
        "remedy_outside_case",
        FORBIDDEN,
        "offer 'offer-2'",
        setup=opened,
    ),
    refusal(
        "rule-revoke-outside-case",
        "regulator",
        "case_ruled",
        ruling(revoke("grant-2")),
        "remedy_outside_case",
        FORBIDDEN,
        "grant 'grant-2'",
        setup=opened,
    ),
    refusal(
        "rule-suspend-outside-case",
        "regulator",
        "case_ruled",
        ruling(suspend("exchange")),
        "remedy_outside_case",
        FORBIDDEN,
        "member 'exchange'",
        setup=opened,
    ),
    refusal(
        "rule-warn-outside-case",
        "regulator",
        "case_ruled",
        ruling(warning("exchange")),
        "remedy_outside_case",
        FORBIDDEN,
        "member 'exchange'",
        setup=opened,
    ),
    refusal(
        "rule-refund-unknown-order",
        "regulator",
        "case_ruled",
        ruling(refund("order-x")),
        "unknown_order",
        PRECONDITION,
        "order 'order-x' does not exist",
        setup=opened,
    ),
    refusal(
        "rule-delist-unknown-offer",
        "regulator",
        "case_ruled",
        ruling(delist("offer-x")),
        "unknown_offer",
        PRECONDITION,
        "offer 'offer-x' does not exist",
        setup=opened,
    ),
    refusal(
        "rule-revoke-unknown-grant",
        "regulator",
        "case_ruled",
        ruling(revoke("grant-x")),
        "unknown_grant",
        PRECONDITION,
        "grant 'grant-x' does not exist",
        setup=opened,
    ),
    refusal(
        "rule-refund-twice",
        "regulator",
        "case_ruled",
        ruling(refund(), refund(amount=1)),
        "already_refunded",
        PRECONDITION,
        "was refunded by case 'case-1'",
        setup=opened,
    ),
    refusal(
        "rule-refund-wrong-currency",
        "regulator",
        "case_ruled",
        ruling(refund(currency="USD")),
        "wrong_currency",
        INVALID,
        "priced in CNY, not USD",
        setup=opened,
    ),
    refusal(
        "rule-refund-too-large",
        "regulator",
        "case_ruled",
        ruling(refund(amount=501)),
        "refund_too_large",
        INVALID,
        "at most its price, 500",
        setup=opened,
    ),
    refusal(
        "rule-suspension-already-over",
        "regulator",
        "case_ruled",
        ruling(suspend(until_ms=LATER_MS)),
        "already_expired",
        PRECONDITION,
        "not after the block time",
        setup=opened,
    ),
    # ruling_appealed
    refusal(
        "appeal-not-party",
        "exchange",
        "ruling_appealed",
        APPEAL,
        "not_case_party",
        FORBIDDEN,
        "only a party to case 'case-1'",
        setup=ruled,
    ),
    refusal(
        "appeal-unknown-case",
        "agency-a",
        "ruling_appealed",
        APPEAL,
        "unknown_case",
        PRECONDITION,
        "does not exist",
    ),
    refusal(
        "appeal-open-case",
        "agency-a",
        "ruling_appealed",
        APPEAL,
        "case_not_ruled",
        PRECONDITION,
        "case 'case-1' is still open",
        setup=opened,
    ),
    refusal(
        "appeal-twice",
        "agency-b",
        "ruling_appealed",
        APPEAL,
        "already_appealed",
        PRECONDITION,
        "already under appeal",
        setup=appealed,
    ),
    refusal(
        "appeal-window-closed",
        "agency-a",
        "ruling_appealed",
        APPEAL,
        "appeal_window_closed",
        PRECONDITION,
        f"closed at {RULED_MS + WINDOW_MS}",
        setup=ruled,
        time_ms=AFTER_WINDOW_MS,
    ),
    refusal(
        "appeal-decided-case",
        "agency-b",
        "ruling_appealed",
        APPEAL,
        "case_final",
        PRECONDITION,
        "is final",
        setup=decided,
    ),
    # appeal_decided
    refusal(
        "decide-not-regulator",
        "agency-b",
        "appeal_decided",
        decision(),
        "wrong_role",
        FORBIDDEN,
        "the regulator role",
        setup=appealed,
    ),
    refusal(
        "decide-unknown-case",
        "regulator-2",
        "appeal_decided",
        decision(),
        "unknown_case",
        PRECONDITION,
        "does not exist",
    ),
    refusal(
        "decide-open-case",
        "regulator-2",
        "appeal_decided",
        decision(),
        "case_not_appealed",
        PRECONDITION,
        "is still open",
        setup=opened,
    ),
    refusal(
        "decide-unappealed-ruling",
        "regulator-2",
        "appeal_decided",
        decision(),
        "case_not_appealed",
        PRECONDITION,
        "is ruled and not appealed",
        setup=ruled,
    ),
    refusal(
        "decide-own-ruling",
        "regulator",
        "appeal_decided",
        decision(),
        "same_regulator",
        FORBIDDEN,
        "'regulator' made the ruling",
        setup=appealed,
    ),
    refusal(
        "decide-by-a-party",
        "regulator-2",
        "appeal_decided",
        decision(),
        "regulator_is_party",
        FORBIDDEN,
        "may not decide the appeal",
        setup=then(
            regulator_2_complains,
            opened_with_regulator_2,
            lambda c, s: do(c, s, "regulator", "case_ruled", RULED_MS, **ruling()),
            lambda c, s: do(c, s, "agency-a", "ruling_appealed", APPEALED_MS, **APPEAL),
        ),
    ),
    refusal(
        "decide-twice-on-a-panel",
        "regulator-2",
        "appeal_decided",
        decision(),
        "already_voted",
        DUPLICATE,
        "already decided on the appeal",
        setup=then(
            appealed, lambda c, s: do(c, s, "regulator-2", "appeal_decided", LATER_MS, **decision())
        ),
        panel=2,
    ),
    refusal(
        "decide-after-too-many-votes",
        "regulator-2",
        "appeal_decided",
        decision(),
        "too_many_votes",
        PRECONDITION,
        f"has its {APPEAL_VOTES_PER_CASE_MAX} votes",
        setup=put_case(
            status=state_pb2.CASE_STATUS_APPEALED,
            votes=[
                state_pb2.AppealVote(regulator_id=f"r{i}") for i in range(APPEAL_VOTES_PER_CASE_MAX)
            ],
        ),
        panel=2,
    ),
    refusal(
        "decide-decided-case",
        "regulator-3",
        "appeal_decided",
        decision(),
        "case_final",
        PRECONDITION,
        "is final",
        setup=decided,
    ),
    refusal(
        "varied-remedy-outside-case",
        "regulator-2",
        "appeal_decided",
        decision(VARIED, warning("exchange")),
        "remedy_outside_case",
        FORBIDDEN,
        "member 'exchange'",
        setup=appealed,
    ),
]


@pytest.mark.parametrize("case", REFUSALS)
def test_refusal_changes_nothing(case: Refusal):
    c = make_consortium(case.panel)
    s = build_scene(c)
    if case.setup is not None:
        case.setup(c, s)
    signed = c.sign(case.author, case.kind, **case.fields)
    before = s.snapshot()
    with pytest.raises(Rejected) as raised:
        c.apply(s, signed, case.time_ms)
    assert (raised.value.code, raised.value.kind) == (case.code, case.rejection), raised.value
    assert case.fragment in raised.value.reason
    assert s.snapshot() == before


def test_every_code_in_rules_cases_is_covered():
    """Each code written in rules_cases.py, in a refusal or in its table of case states, has a
    refusal above."""
    source = Path(rules_cases.__file__).read_text()
    written = set(re.findall(r'(?:invalid|forbidden|precondition|duplicate)\(\s*"(\w+)"', source))
    written |= {code for code, _ in rules_cases._STATE_REFUSALS.values()}
    covered = {p.values[0].code for p in REFUSALS}
    assert len(written) > 15, written
    assert written - covered == set()


def test_an_unknown_dispute_outcome_is_refused():
    """The old disputes: a resolution with an outcome DisputeOutcome does not define (77) is
    refused by events.check_enums before any rule runs, and changes nothing."""
    c = make_consortium()
    s = build_scene(c)
    do(
        c,
        s,
        "agency-b",
        "dispute_opened",
        SCENE_MS,
        dispute_id="dispute-1",
        order_id="order-2",
        reason="late",
    )
    before = s.snapshot()
    signed = c.sign("regulator", "dispute_resolved", dispute_id="dispute-1", outcome=77)
    with pytest.raises(Rejected) as raised:
        c.apply(s, signed, LATER_MS)
    assert (raised.value.code, raised.value.kind) == ("bad_enum", INVALID)
    assert "not a defined DisputeOutcome value" in raised.value.reason
    assert s.snapshot() == before


# --- transitions -------------------------------------------------------------------------------


@pytest.fixture
def c() -> Consortium:
    return make_consortium()


@pytest.fixture
def s(c: Consortium) -> MemoryState:
    return build_scene(c)


def load(s: MemoryState, kind: str, record_id: str) -> Any:
    record = s.load(kind, record_id)
    assert record is not None, f"no {kind} {record_id!r}"
    return record


def event_id(c: Consortium, signed: ledger_pb2.SignedEvent) -> bytes:
    return c.decode(signed).event_id


def test_a_complaint_is_recorded_with_its_complainant(c: Consortium, s: MemoryState):
    signed = c.sign(
        "regulator", "complaint_filed", **complaint(subject_kind=ASSET, subject_id="asset-1")
    )
    c.apply(s, signed, LATER_MS)
    record = load(s, "complaint", "complaint-new")
    assert record.complainant_id == "regulator"
    assert record.event_id == event_id(c, signed)
    assert record.filed_at_ms == LATER_MS
    assert record.case_id == ""
    assert record.complaint.respondent_id == "agency-a"


@pytest.mark.parametrize(
    ("subject_kind", "subject_id", "respondent_id"),
    [
        (ORDER, "order-1", "exchange"),
        (ORDER, "order-1", "agency-b"),
        (OFFER, "offer-1", "agency-a"),
        (OFFER, "offer-1", "exchange"),
        (ASSET, "asset-1", "agency-b"),  # a holder: order-1 was delivered
        (GRANT, "grant-1", "agency-b"),
        (GRANT, "grant-1", "agency-a"),
    ],
)
def test_any_party_to_the_subject_may_be_the_respondent(subject_kind, subject_id, respondent_id):
    c = make_consortium()
    s = build_scene(c)
    fields = complaint(
        subject_kind=subject_kind, subject_id=subject_id, respondent_id=respondent_id
    )
    do(c, s, "regulator-2", "complaint_filed", LATER_MS, **fields)
    assert load(s, "complaint", "complaint-new").complaint.subject_id == subject_id


def test_a_brokers_offer_names_the_broker_as_a_party(c: Consortium, s: MemoryState):
    offer = state_pb2.OfferRecord()
    offer.CopyFrom(load(s, "offer", "offer-1"))
    offer.broker_id = "regulator-3"  # any member id will do: the rule reads the record
    s.records[("offer", "offer-1")] = offer
    assert "regulator-3" in rules_cases.subject_parties(s, OFFER, "offer-1")
    assert "regulator-3" in rules_cases.subject_parties(s, ORDER, "order-1")


def test_opening_a_case_takes_up_its_complaints(c: Consortium, s: MemoryState):
    second = c.sign(
        "exchange", "complaint_filed", **complaint(subject_kind=OFFER, subject_id="offer-1")
    )
    c.apply(s, second, OPEN_MS)
    first_id = load(s, "complaint", "complaint-1").event_id
    signed = c.sign(
        "regulator", "case_opened", case_id="case-1", complaint_ids=["complaint-new", "complaint-1"]
    )
    c.apply(s, signed, LATER_MS)
    case = load(s, "case", "case-1")
    assert case.status == state_pb2.CASE_STATUS_OPEN
    assert case.opened_by == "regulator"
    assert case.opened_at_ms == LATER_MS
    assert list(case.parties) == ["exchange", "agency-a", "agency-b"]
    # The complaints' events in filing order, then the opening.
    assert list(case.event_ids) == [first_id, event_id(c, second), event_id(c, signed)]
    assert load(s, "complaint", "complaint-1").case_id == "case-1"
    assert load(s, "complaint", "complaint-new").case_id == "case-1"


def test_steps_are_counted_and_listed(c: Consortium, s: MemoryState):
    opened(c, s)
    for number in (1, 2):
        signed = c.sign("regulator-2", "case_step_recorded", **STEP)
        c.apply(s, signed, LATER_MS)
        case = load(s, "case", "case-1")
        assert case.steps == number
        assert case.event_ids[-1] == event_id(c, signed)
        assert case.status == state_pb2.CASE_STATUS_OPEN


def test_a_ruling_takes_its_remedies_in_the_same_writes(c: Consortium, s: MemoryState):
    opened(c, s)
    remedies = (refund(amount=300), delist(), revoke(), suspend(), warning())
    signed = c.sign("regulator", "case_ruled", **ruling(*remedies))
    c.apply(s, signed, LATER_MS)
    ruling_id = event_id(c, signed)
    case = load(s, "case", "case-1")
    assert case.status == state_pb2.CASE_STATUS_RULED
    assert (case.ruled_by, case.ruled_at_ms) == ("regulator", LATER_MS)
    assert len(case.ruling.remedies) == 5
    assert case.event_ids[-1] == ruling_id
    order = load(s, "order", "order-1")
    assert order.status == state_pb2.ORDER_STATUS_REFUNDED
    assert (order.refund.amount, order.refund.currency, order.refund_case_id) == (
        300,
        "CNY",
        "case-1",
    )
    assert order.event_ids[-1] == ruling_id
    offer = load(s, "offer", "offer-1")
    assert offer.status == state_pb2.OFFER_STATUS_DELISTED
    assert (offer.delisted_event_id, offer.delisted_by) == (ruling_id, "regulator")
    assert "case-1" in offer.delisting_reason
    grant = load(s, "grant", "grant-1")
    assert (grant.revoked, grant.revoked_at_ms) == (True, LATER_MS)
    suspension = load(s, "suspension", "agency-a")
    assert (suspension.suspension_id, suspension.case_id) == ("case-1", "case-1")
    assert (suspension.until_ms, suspension.event_id, suspension.lifted) == (
        SUSPENDED_UNTIL_MS,
        ruling_id,
        False,
    )


def test_remedies_may_reach_what_belongs_to_the_subjects(c: Consortium, s: MemoryState):
    """A complaint about an offer reaches its orders; one about an asset reaches its offers
    and grants."""
    do(
        c,
        s,
        "agency-b",
        "complaint_filed",
        SCENE_MS,
        **complaint(subject_kind=OFFER, subject_id="offer-2"),
    )
    do(
        c,
        s,
        "exchange",
        "complaint_filed",
        SCENE_MS,
        **complaint(complaint_id="complaint-asset", subject_kind=ASSET, subject_id="asset-1"),
    )
    do(
        c,
        s,
        "regulator",
        "case_opened",
        OPEN_MS,
        case_id="case-2",
        complaint_ids=["complaint-new", "complaint-asset"],
    )
    do(
        c,
        s,
        "regulator",
        "case_ruled",
        LATER_MS,
        **ruling(refund("order-2"), revoke("grant-1"), delist("offer-1"), case_id="case-2"),
    )
    assert load(s, "order", "order-2").refund_case_id == "case-2"
    assert load(s, "grant", "grant-1").revoked
    assert load(s, "offer", "offer-1").status == state_pb2.OFFER_STATUS_DELISTED


def test_delisting_or_revoking_what_is_already_withdrawn_keeps_the_first(
    c: Consortium, s: MemoryState
):
    opened(c, s)
    do(c, s, "agency-a", "grant_revoked", OPEN_MS, grant_id="grant-1", reason="ended")
    offer = state_pb2.OfferRecord()
    offer.CopyFrom(load(s, "offer", "offer-1"))
    offer.status = state_pb2.OFFER_STATUS_DELISTED
    offer.delisted_by = "agency-a"
    s.records[("offer", "offer-1")] = offer
    do(c, s, "regulator", "case_ruled", LATER_MS, **ruling(delist(), delist(), revoke()))
    assert load(s, "offer", "offer-1").delisted_by == "agency-a"
    assert load(s, "grant", "grant-1").revoked_at_ms == OPEN_MS
    assert load(s, "case", "case-1").status == state_pb2.CASE_STATUS_RULED


def test_a_suspension_keeps_the_one_ending_last(c: Consortium, s: MemoryState):
    opened(c, s)
    longer = state_pb2.SuspensionRecord(
        member_id="agency-a", suspension_id="s-1", until_ms=SUSPENDED_UNTIL_MS + 1
    )
    s.records[("suspension", "agency-a")] = longer
    do(c, s, "regulator", "case_ruled", LATER_MS, **ruling(suspend()))
    assert load(s, "suspension", "agency-a") == longer


@pytest.mark.parametrize(
    ("current", "new", "replaced"),
    [
        (None, dict(until_ms=5), True),
        (dict(until_ms=9), dict(until_ms=5), False),
        (dict(until_ms=9, lifted=True), dict(until_ms=5), True),
        (dict(until_ms=5), dict(until_ms=9, case_id="case-1"), True),
        # a tie: the suspension no appeal can lift stands
        (dict(until_ms=5), dict(until_ms=5, case_id="case-1"), False),
        (dict(until_ms=5, case_id="case-1"), dict(until_ms=5), True),
        (dict(until_ms=5, case_id="case-1"), dict(until_ms=5, case_id="case-2"), False),
    ],
)
def test_which_suspension_stands(current, new, replaced):
    record = state_pb2.SuspensionRecord(**current) if current is not None else None
    assert replaces_suspension(record, state_pb2.SuspensionRecord(**new)) is replaced


def test_an_overturn_does_not_free_a_member_another_suspension_holds(c: Consortium, s: MemoryState):
    """A TradingSuspended ending with the ruling's suspension stands; lifting the ruling's
    leaves it in force."""
    ruled(c, s)
    do(c, s, "regulator-2", "trading_suspended", RULED_MS, suspension_id="s-2",
       member_id="agency-a", until_ms=SUSPENDED_UNTIL_MS, reason="late filings")  # fmt: skip
    assert load(s, "suspension", "agency-a").suspension_id == "s-2"
    do(c, s, "agency-b", "ruling_appealed", APPEALED_MS, **APPEAL)
    do(c, s, "regulator-2", "appeal_decided", LATER_MS, **decision(OVERTURNED))
    record = load(s, "suspension", "agency-a")
    assert (record.suspension_id, record.lifted) == ("s-2", False)


def test_remedies_act_on_the_market(c: Consortium, s: MemoryState):
    """The ruling's delisting stops orders on the offer; its suspension stops the member's
    trade events (rules_market.check_not_suspended) until an overturn lifts it."""
    opened(c, s)
    do(c, s, "regulator", "case_ruled", RULED_MS, **ruling(delist(), suspend("agency-b")))
    for buyer, offer_id, code in (
        ("regulator-3", "offer-1", "offer_delisted"),
        ("agency-b", "offer-2", "suspended"),
    ):
        order = c.sign(buyer, "order_placed", order_id="order-y", offer_id=offer_id)
        with pytest.raises(Rejected) as raised:
            c.apply(s, order, APPEALED_MS)
        assert raised.value.code == code
    do(c, s, "agency-a", "ruling_appealed", APPEALED_MS, **APPEAL)
    do(c, s, "regulator-2", "appeal_decided", LATER_MS, **decision(OVERTURNED))
    do(c, s, "agency-b", "order_placed", LATER_MS, order_id="order-y", offer_id="offer-2")
    assert load(s, "order", "order-y").buyer_id == "agency-b"
    assert load(s, "offer", "offer-1").status == state_pb2.OFFER_STATUS_DELISTED  # not undone


def test_a_party_appeals_within_the_window(c: Consortium, s: MemoryState):
    ruled(c, s)
    signed = c.sign("agency-b", "ruling_appealed", **APPEAL)
    c.apply(s, signed, RULED_MS + WINDOW_MS - 1)
    case = load(s, "case", "case-1")
    assert case.status == state_pb2.CASE_STATUS_APPEALED
    assert (case.appellant_id, case.appealed_at_ms) == ("agency-b", RULED_MS + WINDOW_MS - 1)
    assert case.event_ids[-1] == event_id(c, signed)
    # under appeal, the window no longer matters: the appeal is decided after it
    do(c, s, "regulator-2", "appeal_decided", RULED_MS + 2 * WINDOW_MS, **decision())
    assert load(s, "case", "case-1").status == state_pb2.CASE_STATUS_APPEAL_DECIDED


def test_finality(c: Consortium, s: MemoryState):
    opened(c, s)
    case = load(s, "case", "case-1")
    assert not rules_cases.case_final(s, case, LATER_MS + 10 * WINDOW_MS)
    assert rules_cases.appeal_deadline_ms(s, case) == 0
    do(c, s, "regulator", "case_ruled", RULED_MS, **ruling())
    case = load(s, "case", "case-1")
    assert rules_cases.appeal_deadline_ms(s, case) == RULED_MS + WINDOW_MS
    assert not rules_cases.case_final(s, case, RULED_MS + WINDOW_MS - 1)
    assert rules_cases.case_final(s, case, RULED_MS + WINDOW_MS)


def test_a_second_regulator_upholds_the_ruling(c: Consortium, s: MemoryState):
    appealed(c, s)
    signed = c.sign("regulator-2", "appeal_decided", **decision())
    c.apply(s, signed, LATER_MS)
    case = load(s, "case", "case-1")
    assert case.status == state_pb2.CASE_STATUS_APPEAL_DECIDED
    assert case.appeal_decision.decision == APPEAL_UPHELD
    assert case.decided_at_ms == LATER_MS
    assert [(v.regulator_id, v.event_id) for v in case.votes] == [
        ("regulator-2", event_id(c, signed))
    ]
    assert case.event_ids[-1] == event_id(c, signed)
    assert not load(s, "suspension", "agency-a").lifted
    assert rules_cases.case_final(s, case, LATER_MS)


def test_an_overturned_ruling_lifts_its_suspensions_only(c: Consortium, s: MemoryState):
    appealed(c, s)
    do(c, s, "regulator-2", "appeal_decided", LATER_MS, **decision(OVERTURNED))
    assert load(s, "suspension", "agency-a").lifted
    assert load(s, "case", "case-1").appeal_decision.decision == OVERTURNED


def test_an_overturn_leaves_a_later_suspension_alone(c: Consortium, s: MemoryState):
    appealed(c, s)
    other = state_pb2.SuspensionRecord(
        member_id="agency-a", suspension_id="s-9", until_ms=SUSPENDED_UNTIL_MS + 5
    )
    s.records[("suspension", "agency-a")] = other
    do(c, s, "regulator-2", "appeal_decided", LATER_MS, **decision(OVERTURNED))
    assert load(s, "suspension", "agency-a") == other


def test_a_varied_ruling_adds_its_remedies(c: Consortium, s: MemoryState):
    appealed(c, s)
    signed = c.sign(
        "regulator-2", "appeal_decided", **decision(VARIED, refund(amount=100), delist())
    )
    c.apply(s, signed, LATER_MS)
    order = load(s, "order", "order-1")
    assert (order.status, order.refund.amount) == (state_pb2.ORDER_STATUS_REFUNDED, 100)
    assert order.event_ids[-1] == event_id(c, signed)
    assert load(s, "offer", "offer-1").delisted_event_id == event_id(c, signed)


def test_a_panel_of_two_counts_other_remedies_as_another_decision():
    c = make_consortium(panel=2)
    s = build_scene(c)
    appealed(c, s)
    do(c, s, "regulator-2", "appeal_decided", LATER_MS, **decision(VARIED, warning()))
    case = load(s, "case", "case-1")
    assert (case.status, len(case.votes)) == (state_pb2.CASE_STATUS_APPEALED, 1)
    # the same decision with other remedies is another decision; other reasons are not
    do(c, s, "regulator-3", "appeal_decided", LATER_MS, **decision(VARIED, warning("agency-b")))
    assert load(s, "case", "case-1").status == state_pb2.CASE_STATUS_APPEALED
    assert load(s, "order", "order-1").status != state_pb2.ORDER_STATUS_REFUNDED


def test_a_panel_of_two_decides_on_the_second_alike_vote():
    c = make_consortium(panel=2)
    s = build_scene(c)
    appealed(c, s)
    do(
        c,
        s,
        "regulator-2",
        "appeal_decided",
        LATER_MS,
        **decision(VARIED, refund(amount=50), reasons="one"),
    )
    assert load(s, "case", "case-1").status == state_pb2.CASE_STATUS_APPEALED
    assert load(s, "order", "order-1").status == state_pb2.ORDER_STATUS_DELIVERED  # not yet
    signed = c.sign(
        "regulator-3", "appeal_decided", **decision(VARIED, refund(amount=50), reasons="two")
    )
    c.apply(s, signed, LATER_MS + 1)
    case = load(s, "case", "case-1")
    assert case.status == state_pb2.CASE_STATUS_APPEAL_DECIDED
    assert case.appeal_decision.reasons == "two"
    assert case.decided_at_ms == LATER_MS + 1
    assert [v.regulator_id for v in case.votes] == ["regulator-2", "regulator-3"]
    assert load(s, "order", "order-1").refund.amount == 50


# --- what case events concern -------------------------------------------------------------------


def test_a_complaint_about_an_order_concerns_its_asset_order_and_respondent(c, s):
    about = concerns("complaint_filed", ledger_pb2.ComplaintFiled(**COMPLAINT), s.load)
    assert about.assets == ("asset-1",)
    assert about.readable_through == ("asset-1",)
    assert about.members == ("agency-a",)
    assert about.order_id == "order-1"


@pytest.mark.parametrize(
    ("subject_kind", "subject_id", "grant_id"),
    [(OFFER, "offer-1", ""), (ASSET, "asset-1", ""), (GRANT, "grant-1", "grant-1")],
)
def test_a_complaint_concerns_its_subjects_asset(c, s, subject_kind, subject_id, grant_id):
    payload = ledger_pb2.ComplaintFiled(
        **complaint(subject_kind=subject_kind, subject_id=subject_id)
    )
    about = concerns("complaint_filed", payload, s.load)
    assert (about.assets, about.grant_id, about.order_id) == (("asset-1",), grant_id, "")


def test_case_events_concern_the_parties_and_the_subjects(c: Consortium, s: MemoryState):
    do(
        c,
        s,
        "exchange",
        "complaint_filed",
        SCENE_MS,
        **complaint(subject_kind=OFFER, subject_id="offer-2", respondent_id="agency-a"),
    )
    opening = ledger_pb2.CaseOpened(
        case_id="case-1", complaint_ids=["complaint-1", "complaint-new"]
    )
    before = concerns("case_opened", opening, s.load)  # before the case is written
    do(
        c,
        s,
        "regulator",
        "case_opened",
        OPEN_MS,
        case_id="case-1",
        complaint_ids=["complaint-1", "complaint-new"],
    )
    for kind, payload in (
        ("case_opened", opening),
        ("case_step_recorded", ledger_pb2.CaseStepRecorded(case_id="case-1", step="hearing")),
        ("case_ruled", ledger_pb2.CaseRuled(case_id="case-1")),
        ("ruling_appealed", ledger_pb2.RulingAppealed(case_id="case-1")),
        ("appeal_decided", ledger_pb2.AppealDecided(case_id="case-1")),
    ):
        about = concerns(kind, payload, s.load)
        assert about == before, kind
    assert before.assets == ("asset-1", "asset-2")
    assert before.members == ("agency-b", "agency-a", "exchange")
    assert before.order_id == "order-1"
    unknown = concerns("case_ruled", ledger_pb2.CaseRuled(case_id="case-x"), s.load)
    assert (unknown.assets, unknown.members) == ((), ())


# --- the timeline ---------------------------------------------------------------------------------


def _case_events(
    c: Consortium, signed_events: list[ledger_pb2.SignedEvent]
) -> list[case_timeline.CaseEvent]:
    return [
        case_timeline.CaseEvent(
            event_id=c.decode(signed).event_id,
            height=10 + index,
            log_index=100 + index,
            time_ms=LATER_MS + index,
            event=c.decode(signed).event,
        )
        for index, signed in enumerate(signed_events)
    ]


def test_the_timeline_tells_a_case_in_words():
    c = make_consortium()
    made = [
        c.sign("agency-b", "complaint_filed", **COMPLAINT),
        c.sign(
            "regulator",
            "case_opened",
            case_id="case-1",
            complaint_ids=["complaint-1"],
            summary="no delivery",
        ),
        c.sign("regulator", "case_step_recorded", **STEP),
        c.sign(
            "regulator", "case_ruled", **ruling(refund(), delist(), revoke(), suspend(), warning())
        ),
        c.sign("agency-a", "ruling_appealed", **APPEAL),
        c.sign("regulator-2", "appeal_decided", **decision(reasons="the ruling is sound")),
        c.sign("exchange", "order_settled", order_id="order-1"),
    ]
    events = _case_events(c, made)
    entries = case_timeline.timeline(reversed(events))  # any order in, log order out
    assert [e.log_index for e in entries] == [100, 101, 102, 103, 104, 105, 106]
    assert entries[0] == case_timeline.TimelineEntry(
        event_id=events[0].event_id,
        height=10,
        log_index=100,
        time_ms=LATER_MS,
        kind="complaint_filed",
        author_id="agency-b",
        summary="complaint complaint-1 filed by agency-b against agency-a about order order-1 "
        "(non_delivery), with 1 piece of evidence",
    )
    summaries = [e.summary for e in entries]
    assert summaries[1] == "case case-1 opened by regulator on complaint complaint-1: no delivery"
    assert summaries[2] == "step hearing recorded by regulator: both parties heard"
    assert summaries[3] == (
        "ruled upheld by regulator: refund of 500 CNY (minor units) on order order-1; "
        "offer offer-1 delisted; grant grant-1 revoked; agency-a suspended from trading until "
        f"{SUSPENDED_UNTIL_MS} (ms since the epoch); warning to agency-a: deliver what you sell; "
        "findings: the data was never delivered as described"
    )
    assert summaries[4] == "ruling appealed by agency-a: the refund is too high"
    assert summaries[5] == (
        "appeal decided by regulator-2: ruling upheld; reasons: the ruling is sound"
    )
    assert summaries[6] == "order order-1 settled by exchange"


def test_the_timeline_counts_a_panels_votes():
    c = make_consortium(panel=2)
    made = [
        c.sign("regulator-2", "appeal_decided", **decision(VARIED, warning(), reasons="a")),
        c.sign("regulator-3", "appeal_decided", **decision(OVERTURNED, reasons="b")),
        c.sign("regulator", "appeal_decided", **decision(VARIED, warning(), reasons="c")),
    ]
    summaries = [
        e.summary for e in case_timeline.timeline(_case_events(c, made), appeal_panel_size=2)
    ]
    assert summaries == [
        "appeal vote by regulator-2: ruling varied (warning to agency-a: deliver what you sell) "
        "(1 of 2 alike); reasons: a",
        "appeal vote by regulator-3: ruling overturned (1 of 2 alike); reasons: b",
        "appeal vote by regulator: ruling varied (warning to agency-a: deliver what you sell) "
        "(2 of 2 alike; the appeal is decided); reasons: c",
    ]


def test_remedy_and_subject_words():
    assert case_timeline.subject_words(GRANT, "g-1") == "grant g-1"
    assert case_timeline.remedy_words(ledger_pb2.Remedy()) == "an empty remedy"
    words = case_timeline.remedy_words(
        ledger_pb2.Remedy(
            refund={"order_id": "o", "amount": 5, "currency": "EUR", "reference": "pay-1"}
        )
    )
    assert words == "refund of 5 EUR (minor units) on order o, reference pay-1"
    assert (
        case_timeline.summarize("asset_registered", "agency-a", None)
        == "asset registered by agency-a"
    )

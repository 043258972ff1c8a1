"""Unit tests for data customs and the important-data catalogue (protocol/rules_customs.py,
protocol/customs.py, and the moves abroad of protocol/rule_checks.py): every transition, every
refusal (with its code, kind, a fragment of its reason, and the state unchanged byte for
byte), the scope of an assessment covering descendants, the catalogue refusing registrations
and derivations below its minimum, upward-only reclassification, and overdue report periods.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from support.memory_state import GENESIS_TIME_MS, Consortium, MemoryState, digest
from support.rule_cases import BLOCK_TIME_MS, Case, Setup, SignedMaker, reject

from provledger.protocol import concerns, customs, events, lineage, rule_checks, rules_customs
from provledger.protocol.errors import Rejected, RejectionKind
from provledger.protocol.limits import (
    REPORT_PERIODS_MAX,
    TRANSFERS_PER_ASSESSMENT_MAX,
)
from provledger.protocol.state import Write
from provledger.v1 import ledger_pb2, state_pb2

INVALID = RejectionKind.INVALID
FORBIDDEN = RejectionKind.FORBIDDEN
PRECONDITION = RejectionKind.PRECONDITION
DUPLICATE = RejectionKind.DUPLICATE

GENERAL = ledger_pb2.CLASSIFICATION_GENERAL
IMPORTANT = ledger_pb2.CLASSIFICATION_IMPORTANT
CORE = ledger_pb2.CLASSIFICATION_CORE

HOUR_MS = 3_600_000
SETUP_MS = GENESIS_TIME_MS + 1_000  # the scene's block time
MOVE_MS = GENESIS_TIME_MS + 2_000  # the block time of a move a case sets up
EXPIRY_MS = SETUP_MS + 10 * HOUR_MS  # when the scene's assessments expire


# --- the scene -------------------------------------------------------------------------------


def _do(c: Consortium, s: MemoryState, author: str, kind: str, time_ms: int = SETUP_MS, **f: Any):
    return c.apply(s, c.sign(author, kind, **f), time_ms)


def build_scene(c: Consortium) -> MemoryState:
    """agency-a owns raw/general, raw/important (with a child and a grandchild derived from
    it), other/important and late/general; the regulator has assessed moving raw/important and
    its descendants to agency-b in "hk" for research, with hourly reports ("assess-1"), and the
    same without reports ("assess-quiet"); it has catalogued the prefix "health/" as important
    and the asset "tax/1" as core."""
    s = c.state()
    for asset_id, level in (
        ("raw/general", GENERAL),
        ("raw/important", IMPORTANT),
        ("other/important", IMPORTANT),
        ("late/general", GENERAL),
    ):
        _do(
            c,
            s,
            "agency-a",
            "asset_registered",
            asset_id=asset_id,
            content_digest=digest(asset_id),
            classification=level,
            name=asset_id,
        )
    for child, parent in (
        ("derived/child", "raw/important"),
        ("derived/grandchild", "derived/child"),
    ):
        _do(
            c,
            s,
            "agency-a",
            "asset_derived",
            asset_id=child,
            parent_ids=[parent],
            activity="cleaning",
            content_digest=digest(child),
            classification=IMPORTANT,
        )
    for assessment_id, interval in (("assess-1", HOUR_MS), ("assess-quiet", 0)):
        _do(c, s, "regulator", "security_assessed", **assessment(assessment_id, interval))
    _do(
        c,
        s,
        "regulator",
        "data_catalogued",
        entry_id="cat-health",
        id_prefix="health/",
        minimum=IMPORTANT,
        reason="health records",
    )
    _do(
        c,
        s,
        "regulator",
        "data_catalogued",
        entry_id="cat-tax",
        asset_id="tax/1",
        minimum=CORE,
        reason="tax base",
    )
    return s


def assessment(assessment_id: str = "assess-new", interval: int = HOUR_MS, **over: Any) -> dict:
    return {
        "assessment_id": assessment_id,
        "asset_ids": ["raw/important"],
        "recipient_id": "agency-b",
        "destination_region": "hk",
        "purposes": ["research"],
        "expires_at_ms": EXPIRY_MS,
        "report_interval_ms": interval,
        "report_digest": digest(f"report of {assessment_id}"),
    } | over


def share(asset_id: str = "raw/important", **over: Any) -> dict:
    return {
        "asset_id": asset_id,
        "recipient_id": "agency-b",
        "destination_region": "hk",
        "assessment_id": "assess-1",
        "purpose": "research",
    } | over


def report(period: int = 1, **over: Any) -> dict:
    return {
        "report_id": f"report-{period}",
        "assessment_id": "assess-1",
        "period": period,
        "report_digest": digest(f"period {period}"),
        "summary": "used for research only",
    } | over


def event(author: str, kind: str, **fields: Any) -> SignedMaker:
    return lambda c: c.sign(author, kind, **fields)


def moved(assessment_id: str = "assess-1", time_ms: int = MOVE_MS) -> Setup:
    """A share of raw/important abroad under the assessment at `time_ms`."""

    def setup(c: Consortium, s: MemoryState) -> None:
        _do(c, s, "agency-a", "asset_shared", time_ms, **share(assessment_id=assessment_id))

    return setup


def then(*setups: Setup) -> Setup:
    def setup(c: Consortium, s: MemoryState) -> None:
        for each in setups:
            each(c, s)

    return setup


def reported(period: int, time_ms: int, **over: Any) -> Setup:
    def setup(c: Consortium, s: MemoryState) -> None:
        _do(c, s, "agency-b", "transfer_reported", time_ms, **report(period, **over))

    return setup


def catalogued(time_ms: int = SETUP_MS, **fields: Any) -> Setup:
    def setup(c: Consortium, s: MemoryState) -> None:
        _do(c, s, "regulator", "data_catalogued", time_ms, reason="listed", **fields)

    return setup


def full_assessment(c: Consortium, s: MemoryState) -> None:
    """assess-1 with TRANSFERS_PER_ASSESSMENT_MAX moves recorded on it."""
    record = state_pb2.AssessmentRecord()
    record.CopyFrom(s.load("assessment", "assess-1"))  # type: ignore[arg-type]
    record.first_transfer_ms = MOVE_MS
    record.transfer_event_ids.extend(
        digest(f"move {n}") for n in range(TRANSFERS_PER_ASSESSMENT_MAX)
    )
    s.apply([Write(kind="assessment", record_id="assess-1", record=record)])


@pytest.fixture
def consortium() -> Consortium:
    return Consortium()


@pytest.fixture
def state(consortium: Consortium) -> MemoryState:
    return build_scene(consortium)


# --- refusals --------------------------------------------------------------------------------


CASES = [
    # security_assessed
    reject(
        "assessment-by-agency",
        event("agency-a", "security_assessed", **assessment()),
        FORBIDDEN,
        "wrong_role",
        "recording a security assessment needs the regulator role",
    ),
    reject(
        "assessment-exists",
        event("regulator", "security_assessed", **assessment("assess-1")),
        DUPLICATE,
        "assessment_exists",
        "assessment 'assess-1' already exists",
    ),
    reject(
        "assessment-of-unknown-asset",
        event("regulator", "security_assessed", **assessment(asset_ids=["raw/important", "nil"])),
        PRECONDITION,
        "unknown_asset",
        "asset 'nil' of the assessment's scope does not exist",
    ),
    reject(
        "assessment-for-stranger",
        event("regulator", "security_assessed", **assessment(recipient_id="stranger")),
        PRECONDITION,
        "unknown_member",
        "recipient_id 'stranger' is not an active member",
    ),
    reject(
        "assessment-already-expired",
        event("regulator", "security_assessed", **assessment(expires_at_ms=BLOCK_TIME_MS)),
        PRECONDITION,
        "already_expired",
        "the assessment's expiry is not after the block time",
    ),
    reject(
        "assessment-with-too-many-periods",
        event(
            "regulator",
            "security_assessed",
            **assessment(expires_at_ms=BLOCK_TIME_MS + (REPORT_PERIODS_MAX + 1) * HOUR_MS),
        ),
        INVALID,
        "too_many_periods",
        f"make {REPORT_PERIODS_MAX + 1} periods; at most {REPORT_PERIODS_MAX}",
    ),
    # transfer_reported
    reject(
        "report-unknown-assessment",
        event("agency-b", "transfer_reported", **report(assessment_id="assess-nil")),
        PRECONDITION,
        "unknown_assessment",
        "assessment 'assess-nil' does not exist",
    ),
    reject(
        "report-by-other-than-recipient",
        event("agency-a", "transfer_reported", **report()),
        FORBIDDEN,
        "not_recipient",
        "only the recipient 'agency-b' reports under assessment 'assess-1'",
        setup=moved(),
    ),
    reject(
        "report-not-required",
        event("agency-b", "transfer_reported", **report(assessment_id="assess-quiet")),
        PRECONDITION,
        "reports_not_required",
        "assessment 'assess-quiet' requires no reports",
        setup=moved("assess-quiet"),
    ),
    reject(
        "report-before-any-transfer",
        event("agency-b", "transfer_reported", **report()),
        PRECONDITION,
        "no_transfer",
        "nothing has moved under assessment 'assess-1'",
    ),
    reject(
        "report-period-after-expiry",
        event("agency-b", "transfer_reported", **report(11)),
        PRECONDITION,
        "period_after_expiry",
        "period 11 begins after assessment 'assess-1' expires; 10 periods are owed",
        setup=moved(),
        time_ms=EXPIRY_MS + 2 * HOUR_MS,
    ),
    reject(
        "report-period-not-begun",
        event("agency-b", "transfer_reported", **report(2)),
        PRECONDITION,
        "period_not_begun",
        f"period 2 begins at {MOVE_MS + HOUR_MS}; the block time is {MOVE_MS + HOUR_MS - 1}",
        setup=moved(),
        time_ms=MOVE_MS + HOUR_MS - 1,
    ),
    reject(
        "report-period-twice",
        event("agency-b", "transfer_reported", **report(1, report_id="report-again")),
        DUPLICATE,
        "already_reported",
        "period 1 was reported by 'report-1'",
        setup=then(moved(), reported(1, BLOCK_TIME_MS - 1)),
    ),
    reject(
        "report-id-twice",
        event("agency-b", "transfer_reported", **report(2, report_id="report-1")),
        DUPLICATE,
        "report_exists",
        "report 'report-1' already reported period 1",
        setup=then(moved(), reported(1, BLOCK_TIME_MS - 1)),
        time_ms=MOVE_MS + HOUR_MS,
    ),
    # moves abroad under an assessment
    reject(
        "share-at-home-naming-an-assessment",
        event("agency-a", "asset_shared", **share(destination_region="")),
        INVALID,
        "assessment_not_abroad",
        "assessment 'assess-1' is named on a move that stays in the country",
    ),
    reject(
        "share-important-abroad-without-assessment",
        event("agency-a", "asset_shared", **share(assessment_id="", purpose="")),
        FORBIDDEN,
        "assessment_required",
        "asset 'raw/important' is important data: moving it to 'hk' needs a regulator's "
        "security assessment covering it",
    ),
    reject(
        "share-catalogued-general-asset-abroad-without-assessment",
        event("agency-a", "asset_shared", **share("late/general", assessment_id="", purpose="")),
        FORBIDDEN,
        "assessment_required",
        "asset 'late/general' is core data",
        setup=catalogued(asset_id="late/general", entry_id="cat-late", minimum=CORE),
    ),
    reject(
        "share-under-unknown-assessment",
        event("agency-a", "asset_shared", **share(assessment_id="assess-nil")),
        PRECONDITION,
        "unknown_assessment",
        "assessment 'assess-nil' does not exist",
    ),
    reject(
        "share-to-other-recipient",
        event("agency-a", "asset_shared", **share(recipient_id="exchange")),
        FORBIDDEN,
        "assessment_mismatch",
        "assessment 'assess-1' does not match this move's recipient_id",
    ),
    reject(
        "transfer-to-other-region",
        event(
            "agency-a",
            "asset_transferred",
            asset_id="raw/important",
            new_owner_id="agency-b",
            destination_region="sg",
            assessment_id="assess-1",
            purpose="research",
        ),
        FORBIDDEN,
        "assessment_mismatch",
        "does not match this move's destination_region",
    ),
    reject(
        "share-after-expiry",
        event("agency-a", "asset_shared", **share()),
        FORBIDDEN,
        "assessment_expired",
        "assessment 'assess-1' has expired",
        time_ms=EXPIRY_MS,
    ),
    reject(
        "share-for-unassessed-purpose",
        event("agency-a", "asset_shared", **share(purpose="marketing")),
        FORBIDDEN,
        "purpose_not_assessed",
        "does not assess the purpose 'marketing' (it assesses research)",
    ),
    reject(
        "share-without-purpose",
        event("agency-a", "asset_shared", **share(purpose="")),
        FORBIDDEN,
        "purpose_not_assessed",
        "does not assess the purpose ''",
    ),
    reject(
        "share-outside-the-scope",
        event("agency-a", "asset_shared", **share("other/important")),
        FORBIDDEN,
        "assessment_scope",
        "asset 'other/important' is not in the scope of assessment 'assess-1'",
    ),
    reject(
        "share-an-ancestor-of-the-scope",
        event("agency-a", "asset_shared", **share("raw/important", assessment_id="assess-new")),
        FORBIDDEN,
        "assessment_scope",
        "asset 'raw/important' is not in the scope of assessment 'assess-new'",
        setup=lambda c, s: _do(
            c, s, "regulator", "security_assessed", **assessment(asset_ids=["derived/child"])
        ),
    ),
    reject(
        "share-under-a-full-assessment",
        event("agency-a", "asset_shared", **share()),
        PRECONDITION,
        "assessment_full",
        f"has recorded {TRANSFERS_PER_ASSESSMENT_MAX} moves",
        setup=full_assessment,
    ),
    # data_catalogued
    reject(
        "catalogue-by-agency",
        event("agency-a", "data_catalogued", entry_id="e", asset_id="x", minimum=CORE, reason="r"),
        FORBIDDEN,
        "wrong_role",
        "cataloguing important data needs the regulator role",
    ),
    reject(
        "catalogue-not-upward",
        event(
            "regulator",
            "data_catalogued",
            entry_id="cat-health-again",
            id_prefix="health/",
            minimum=IMPORTANT,
            reason="again",
        ),
        PRECONDITION,
        "not_upward",
        "prefix:health/ is already catalogued as at least important (entry 'cat-health')",
    ),
    # asset_reclassified
    reject(
        "reclassify-by-agency",
        event(
            "agency-a",
            "asset_reclassified",
            asset_id="raw/general",
            classification=CORE,
            reason="r",
        ),
        FORBIDDEN,
        "wrong_role",
        "reclassifying an asset needs the regulator role",
    ),
    reject(
        "reclassify-unknown-asset",
        event("regulator", "asset_reclassified", asset_id="nil", classification=CORE, reason="r"),
        PRECONDITION,
        "unknown_asset",
        "asset 'nil' does not exist",
    ),
    reject(
        "reclassify-retired-asset",
        event(
            "regulator",
            "asset_reclassified",
            asset_id="raw/general",
            classification=CORE,
            reason="r",
        ),
        PRECONDITION,
        "asset_retired",
        "asset 'raw/general' has been retired",
        setup=lambda c, s: _do(c, s, "agency-a", "asset_retired", asset_id="raw/general"),
    ),
    reject(
        "reclassify-downwards",
        event(
            "regulator",
            "asset_reclassified",
            asset_id="raw/important",
            classification=GENERAL,
            reason="r",
        ),
        PRECONDITION,
        "not_upward",
        "asset 'raw/important' is important; a reclassification only raises it (not to general)",
    ),
    reject(
        "reclassify-sideways",
        event(
            "regulator",
            "asset_reclassified",
            asset_id="raw/important",
            classification=IMPORTANT,
            reason="r",
        ),
        PRECONDITION,
        "not_upward",
        "(not to important)",
    ),
    reject(
        "reclassify-below-the-catalogue",
        event(
            "regulator",
            "asset_reclassified",
            asset_id="late/general",
            classification=IMPORTANT,
            reason="r",
        ),
        FORBIDDEN,
        "below_catalogue",
        "asset 'late/general' is catalogued as at least core data (entry 'cat-late' on "
        "late/general); it cannot be important",
        setup=catalogued(asset_id="late/general", entry_id="cat-late", minimum=CORE),
    ),
    # the catalogue binds registrations and derivations
    reject(
        "register-below-a-prefix-entry",
        event(
            "agency-a",
            "asset_registered",
            asset_id="health/records/2026",
            content_digest=digest("h"),
            classification=GENERAL,
        ),
        FORBIDDEN,
        "below_catalogue",
        "asset 'health/records/2026' is catalogued as at least important data (entry "
        "'cat-health' on the prefix 'health/'); it cannot be general",
    ),
    reject(
        "register-below-an-asset-entry",
        event(
            "agency-a",
            "asset_registered",
            asset_id="tax/1",
            content_digest=digest("t"),
            classification=IMPORTANT,
        ),
        FORBIDDEN,
        "below_catalogue",
        "asset 'tax/1' is catalogued as at least core data (entry 'cat-tax' on tax/1)",
    ),
    reject(
        "register-below-the-highest-entry",
        event(
            "agency-a",
            "asset_registered",
            asset_id="health/core/x",
            content_digest=digest("h"),
            classification=IMPORTANT,
        ),
        FORBIDDEN,
        "below_catalogue",
        "(entry 'cat-health-core' on the prefix 'health/core/'); it cannot be important",
        setup=catalogued(id_prefix="health/core/", entry_id="cat-health-core", minimum=CORE),
    ),
    reject(
        "derive-below-a-prefix-entry",
        event(
            "agency-a",
            "asset_derived",
            asset_id="health/summary",
            parent_ids=["raw/general"],
            activity="summary",
            content_digest=digest("s"),
            classification=GENERAL,
        ),
        FORBIDDEN,
        "below_catalogue",
        "asset 'health/summary' is catalogued as at least important data",
    ),
    reject(
        "derive-below-a-catalogued-parent",
        event(
            "agency-a",
            "asset_derived",
            asset_id="late/summary",
            parent_ids=["late/general"],
            activity="summary",
            content_digest=digest("s"),
            classification=GENERAL,
        ),
        FORBIDDEN,
        "classification_too_low",
        "at least as high as its most sensitive parent (important)",
        setup=catalogued(asset_id="late/general", entry_id="cat-late", minimum=IMPORTANT),
    ),
]


@pytest.mark.parametrize("case", CASES)
def test_refusal_changes_nothing(case: Case, consortium: Consortium, state: MemoryState):
    if case.setup is not None:
        case.setup(consortium, state)
    signed = case.make(consortium)
    before = state.snapshot()
    with pytest.raises(Rejected) as raised:
        consortium.apply(state, signed, case.time_ms)
    assert (raised.value.code, raised.value.kind) == (case.code, case.kind), raised.value
    assert case.fragment in raised.value.reason, raised.value.reason
    assert state.snapshot() == before


def test_every_code_of_data_customs_is_covered():
    """Each code written literally in rules_customs.py and customs.py, and each code of the
    moves abroad in rule_checks.py, has a refusal case above."""
    written: set[str] = set()
    for module in (rules_customs, customs):
        written |= set(
            re.findall(
                r'(?:invalid|forbidden|precondition|duplicate)\(\s*"(\w+)"',
                Path(module.__file__).read_text(),
            )
        )
    assert written, "no rejection codes found in the sources"
    checks = Path(rule_checks.__file__).read_text()
    for code in ("assessment_not_abroad", "assessment_required"):
        assert f'"{code}"' in checks, code
        written.add(code)
    written |= {"assessment_exists"}  # rule_checks.new_id's f-string
    covered = {p.values[0].code for p in CASES}
    assert written - covered == set()


# --- transitions -----------------------------------------------------------------------------


def test_an_assessment_is_recorded(consortium: Consortium, state: MemoryState):
    signed = consortium.sign("regulator", "security_assessed", **assessment())
    writes = consortium.apply(state, signed, BLOCK_TIME_MS)
    assert [w.kind for w in writes] == ["assessment", "nonce"]
    record = state.load("assessment", "assess-new")
    assert record.regulator_id == "regulator"
    assert record.event_id == consortium.decode(signed).event_id
    assert record.assessment.asset_ids == ["raw/important"]
    assert not record.first_transfer_ms and not record.transfer_event_ids


@pytest.mark.parametrize("asset_id", ["raw/important", "derived/child", "derived/grandchild"])
def test_the_scope_covers_the_asset_and_its_descendants(
    asset_id: str, consortium: Consortium, state: MemoryState
):
    signed = consortium.sign("agency-a", "asset_shared", **share(asset_id))
    writes = consortium.apply(state, signed, MOVE_MS)
    assert [w.kind for w in writes] == ["asset", "assessment", "nonce"]
    assert "agency-b" in state.load("asset", asset_id).holder_ids
    record = state.load("assessment", "assess-1")
    assert record.first_transfer_ms == MOVE_MS
    assert list(record.transfer_event_ids) == [consortium.decode(signed).event_id]


def test_every_move_is_recorded_and_the_first_starts_the_periods(
    consortium: Consortium, state: MemoryState
):
    first = consortium.sign("agency-a", "asset_shared", **share())
    consortium.apply(state, first, MOVE_MS)
    second = consortium.sign(
        "agency-a",
        "asset_transferred",
        asset_id="derived/child",
        new_owner_id="agency-b",
        destination_region="hk",
        assessment_id="assess-1",
        purpose="research",
    )
    consortium.apply(state, second, BLOCK_TIME_MS)
    assert state.load("asset", "derived/child").owner_id == "agency-b"
    record = state.load("assessment", "assess-1")
    assert record.first_transfer_ms == MOVE_MS
    assert list(record.transfer_event_ids) == [
        consortium.decode(first).event_id,
        consortium.decode(second).event_id,
    ]


def test_general_data_abroad_under_a_named_assessment_is_recorded_on_it(
    consortium: Consortium, state: MemoryState
):
    _do(
        consortium, state, "regulator", "security_assessed", **assessment(asset_ids=["raw/general"])
    )
    consortium.apply(
        state,
        consortium.sign(
            "agency-a", "asset_shared", **share("raw/general", assessment_id="assess-new")
        ),
        BLOCK_TIME_MS,
    )
    assert len(state.load("assessment", "assess-new").transfer_event_ids) == 1
    # and without one, general data still goes abroad, recorded nowhere
    consortium.apply(
        state,
        consortium.sign(
            "agency-a",
            "asset_shared",
            **share("raw/general", recipient_id="exchange", assessment_id="", purpose=""),
        ),
        BLOCK_TIME_MS,
    )


def test_a_no_cross_border_condition_still_wins_over_an_assessment(
    consortium: Consortium, state: MemoryState
):
    """A derivation under a no-cross-border grant stays in the country even when an assessment
    covers its parent (the grant's condition binds derivations)."""
    _do(
        consortium,
        state,
        "agency-b",
        "asset_registered",
        asset_id="b/raw",
        content_digest=digest("b"),
        classification=IMPORTANT,
    )
    _do(
        consortium,
        state,
        "agency-b",
        "grant_issued",
        grant_id="g-domestic",
        asset_id="b/raw",
        grantee_id="agency-a",
        purposes=["research"],
        operations=[ledger_pb2.OPERATION_DERIVE],
        expires_at_ms=EXPIRY_MS,
        no_cross_border=True,
    )
    _do(
        consortium,
        state,
        "agency-a",
        "asset_derived",
        asset_id="a/from-b",
        parent_ids=["b/raw"],
        grant_ids=["g-domestic"],
        activity="fusion",
        content_digest=digest("ab"),
        classification=IMPORTANT,
    )
    _do(
        consortium,
        state,
        "regulator",
        "security_assessed",
        **assessment(asset_ids=["b/raw"], recipient_id="exchange"),
    )
    signed = consortium.sign(
        "agency-a",
        "asset_shared",
        **share("a/from-b", recipient_id="exchange", assessment_id="assess-new"),
    )
    before = state.snapshot()
    with pytest.raises(Rejected) as raised:
        consortium.apply(state, signed, BLOCK_TIME_MS)
    assert raised.value.code == "cross_border_forbidden"
    assert state.snapshot() == before


def test_reports_are_appended_period_by_period(consortium: Consortium, state: MemoryState):
    moved()(consortium, state)
    first = consortium.sign("agency-b", "transfer_reported", **report(1))
    consortium.apply(state, first, MOVE_MS)  # a period may be reported as soon as it begins
    consortium.apply(
        state, consortium.sign("agency-b", "transfer_reported", **report(3)), MOVE_MS + 2 * HOUR_MS
    )
    record = state.load("assessment", "assess-1")
    assert [(r.period, r.report_id) for r in record.reports] == [(1, "report-1"), (3, "report-3")]
    assert record.reports[0].event_id == consortium.decode(first).event_id
    assert record.reports[0].reported_at_ms == MOVE_MS
    # period 2 ended unreported at MOVE_MS + 2 h; period 4 is the next due
    now = MOVE_MS + 2 * HOUR_MS
    assert customs.overdue_periods(record, now) == [2]
    assert customs.next_report_due_ms(record, now) == MOVE_MS + 4 * HOUR_MS


def test_a_catalogue_entry_is_recorded_and_only_raised(consortium: Consortium, state: MemoryState):
    entry = state.load("catalogue", "prefix:health/")
    assert (entry.entry.entry_id, entry.regulator_id) == ("cat-health", "regulator")
    signed = consortium.sign(
        "regulator",
        "data_catalogued",
        entry_id="cat-health-core",
        id_prefix="health/",
        minimum=CORE,
        reason="raised",
    )
    consortium.apply(state, signed, BLOCK_TIME_MS)
    record = state.load("catalogue", "prefix:health/")
    assert record.entry.minimum == CORE
    assert record.event_id == consortium.decode(signed).event_id
    assert customs.catalogue_minimum(state.load, "health/a/b") == CORE
    assert customs.catalogue_minimum(state.load, "healthy") == ledger_pb2.CLASSIFICATION_UNSPECIFIED


def test_registrations_and_derivations_at_the_minimum_are_accepted(
    consortium: Consortium, state: MemoryState
):
    _do(
        consortium,
        state,
        "agency-a",
        "asset_registered",
        asset_id="health/records",
        content_digest=digest("h"),
        classification=IMPORTANT,
    )
    _do(
        consortium,
        state,
        "agency-a",
        "asset_registered",
        asset_id="tax/1",
        content_digest=digest("t"),
        classification=CORE,
    )
    _do(
        consortium,
        state,
        "agency-a",
        "asset_derived",
        asset_id="health/summary",
        parent_ids=["raw/general"],
        activity="summary",
        content_digest=digest("s"),
        classification=IMPORTANT,
    )
    assert state.load("asset", "health/summary").classification == IMPORTANT


def test_an_entry_on_an_existing_asset_changes_no_record_but_binds_it(
    consortium: Consortium, state: MemoryState
):
    catalogued(asset_id="late/general", entry_id="cat-late", minimum=IMPORTANT)(consortium, state)
    asset = state.load("asset", "late/general")
    assert asset.classification == GENERAL  # the regulator reclassifies it explicitly
    assert customs.effective_classification(state.load, asset) == IMPORTANT
    signed = consortium.sign(
        "regulator",
        "asset_reclassified",
        asset_id="late/general",
        classification=IMPORTANT,
        reason="catalogued",
    )
    writes = consortium.apply(state, signed, BLOCK_TIME_MS)
    assert [w.kind for w in writes] == ["asset", "nonce"]
    assert state.load("asset", "late/general").classification == IMPORTANT


def test_reclassification_raises_only(consortium: Consortium, state: MemoryState):
    signed = consortium.sign(
        "regulator",
        "asset_reclassified",
        asset_id="raw/important",
        classification=CORE,
        reason="national security",
    )
    consortium.apply(state, signed, BLOCK_TIME_MS)
    asset = state.load("asset", "raw/important")
    assert asset.classification == CORE
    assert asset.owner_id == "agency-a" and asset.name == "raw/important"


# --- the judgements --------------------------------------------------------------------------


def record_with(interval: int, first: int, expires: int, reported: tuple[int, ...] = ()):
    return state_pb2.AssessmentRecord(
        assessment=ledger_pb2.SecurityAssessed(
            assessment_id="a", report_interval_ms=interval, expires_at_ms=expires
        ),
        first_transfer_ms=first,
        reports=[state_pb2.AssessmentReport(period=p, report_id=f"r{p}") for p in reported],
    )


def test_periods_end_at_their_due_time():
    """Period p covers [first + (p-1)·interval, first + p·interval) and is due at its end."""
    record = record_with(100, 1_000, 1_450)  # periods begin at 1000, 1100, ..., 1400: five
    assert customs.periods_owed(record) == 5
    assert customs.overdue_periods(record, 1_099) == []
    assert customs.next_report_due_ms(record, 1_099) == 1_100
    assert customs.overdue_periods(record, 1_100) == [1]  # due at its end, overdue from then
    assert customs.next_report_due_ms(record, 1_100) == 1_200
    assert customs.overdue_periods(record, 10_000) == [1, 2, 3, 4, 5]  # never more than owed
    assert customs.next_report_due_ms(record, 10_000) == 0


def test_reported_periods_are_neither_overdue_nor_due():
    record = record_with(100, 1_000, 1_450, reported=(1, 3, 4))
    assert customs.overdue_periods(record, 1_350) == [2]
    assert customs.next_report_due_ms(record, 1_350) == 1_500  # period 4 is done: period 5
    assert customs.next_report_due_ms(record, 1_250) == 1_500


def test_nothing_is_due_without_a_transfer_or_an_interval():
    assert customs.overdue_periods(record_with(100, 0, 1_450), 5_000) == []
    assert customs.next_report_due_ms(record_with(100, 0, 1_450), 5_000) == 0
    assert customs.overdue_periods(record_with(0, 1_000, 1_450), 5_000) == []
    assert customs.next_report_due_ms(record_with(0, 1_000, 1_450), 5_000) == 0
    assert customs.overdue_periods(record_with(100, 1_000, 1_450), 999) == []


def test_the_ancestor_walk_is_bounded(state: MemoryState):
    targets = frozenset({"raw/important"})
    assert lineage.reaches_any(state.load, "derived/grandchild", targets, 2)
    assert not lineage.reaches_any(state.load, "derived/grandchild", targets, 1)
    assert lineage.reaches_any(state.load, "raw/important", targets, 0)
    assert not lineage.reaches_any(state.load, "other/important", targets, 10)


def test_catalogue_keys_are_the_id_and_its_slash_prefixes():
    assert customs.catalogue_keys("a/b/c") == ["asset:a/b/c", "prefix:a/", "prefix:a/b/"]
    assert customs.catalogue_keys("plain") == ["asset:plain"]


# --- what the events concern ------------------------------------------------------------------


def _concerns(state: MemoryState, consortium: Consortium, kind: str, **fields: Any):
    decoded = events.decode(consortium.sign("regulator", kind, **fields), consortium.chain_id)
    return concerns.concerns(kind, getattr(decoded.event, kind), state.load)


def test_what_customs_events_concern(consortium: Consortium, state: MemoryState):
    about = _concerns(
        state,
        consortium,
        "security_assessed",
        **assessment(asset_ids=["raw/important", "raw/general"]),
    )
    assert about.assets == ("raw/important", "raw/general")
    assert about.members == ("agency-b",)
    about = _concerns(state, consortium, "transfer_reported", **report())
    assert (about.assets, about.members) == (("raw/important",), ("agency-b",))
    about = _concerns(
        state,
        consortium,
        "data_catalogued",
        entry_id="e",
        id_prefix="health/",
        minimum=CORE,
        reason="r",
    )
    assert about.assets == ()
    about = _concerns(
        state,
        consortium,
        "data_catalogued",
        entry_id="e",
        asset_id="tax/1",
        minimum=CORE,
        reason="r",
    )
    assert about.assets == ("tax/1",)
    about = _concerns(
        state,
        consortium,
        "asset_reclassified",
        asset_id="raw/general",
        classification=CORE,
        reason="r",
    )
    assert about.assets == ("raw/general",)

"""Purpose binding follows derivation (issue 10, ADR 022).

An asset derived under grants is bound to the purposes common to those grants and to its
parents' own bindings (AssetRecord.bound_purposes, bound_by); everything derived from it
inherits the binding. A use of a bound asset, by its owner or a grantee, and a grant on it must
name bound purposes; a share or transfer carries the binding along. Every refusal is checked
for its exact code and kind and for leaving the state unchanged (a byte-level snapshot); the
auditor's question (protocol/authorization.py `judge_use`, behind /v1/authorization) answers
as the rules do.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support.memory_state import GENESIS_TIME_MS, Consortium, MemoryState, digest

from provledger.protocol import access, authorization, rules_assets
from provledger.protocol.errors import Rejected, RejectionKind
from provledger.v1 import ledger_pb2, state_pb2

FORBIDDEN = RejectionKind.FORBIDDEN
GENERAL = ledger_pb2.CLASSIFICATION_GENERAL
COMPUTE = ledger_pb2.OPERATION_COMPUTE
DERIVE = ledger_pb2.OPERATION_DERIVE
SETUP_TIME_MS = GENESIS_TIME_MS + 1_000
BLOCK_TIME_MS = GENESIS_TIME_MS + 10_000
EXPIRY_MS = BLOCK_TIME_MS + 50_000
EPIDEMIC, PLANNING, AUDIT, MARKETING = "epidemic-modelling", "planning", "audit", "marketing"

# The codes purpose binding adds; each must be written in the sources and refused below.
CODES = {"purposes_disjoint", "purpose_not_bound"}


def _do(c: Consortium, s: MemoryState, author: str, kind: str, **fields: Any) -> None:
    c.apply(s, c.sign(author, kind, **fields), SETUP_TIME_MS)


def _grant(
    c: Consortium, s: MemoryState, grant_id: str, asset_id: str, purposes: list[str], **more: Any
) -> None:
    grantor = more.pop("grantor", "agency-a")
    _do(
        c,
        s,
        grantor,
        "grant_issued",
        grant_id=grant_id,
        asset_id=asset_id,
        grantee_id=more.pop("grantee", "agency-b"),
        purposes=purposes,
        operations=more.pop("operations", [DERIVE, COMPUTE]),
        expires_at_ms=EXPIRY_MS,
    )


def _derive(
    c: Consortium, s: MemoryState, author: str, asset_id: str, parents: list[str], grants=()
) -> None:
    _do(
        c,
        s,
        author,
        "asset_derived",
        asset_id=asset_id,
        parent_ids=parents,
        activity="fusion",
        content_digest=digest(asset_id),
        classification=GENERAL,
        grant_ids=list(grants),
    )


def build_scene(c: Consortium) -> MemoryState:
    """agency-a owns "clinic" and "registry"; agency-b owns "trips" (unbound). agency-a grants
    agency-b: g-epi on clinic (epidemic-modelling, planning), g-plan on registry (planning,
    audit), g-ads on registry (marketing). agency-b has derived "fused" from clinic and trips
    under g-epi, so fused is bound to epidemic-modelling and planning."""
    s = c.state()
    for owner, asset_id in (
        ("agency-a", "clinic"),
        ("agency-a", "registry"),
        ("agency-b", "trips"),
    ):
        _do(
            c,
            s,
            owner,
            "asset_registered",
            asset_id=asset_id,
            content_digest=digest(asset_id),
            classification=GENERAL,
            name=asset_id,
        )
    _grant(c, s, "g-epi", "clinic", [EPIDEMIC, PLANNING])
    _grant(c, s, "g-plan", "registry", [PLANNING, AUDIT])
    _grant(c, s, "g-ads", "registry", [MARKETING])
    _derive(c, s, "agency-b", "fused", ["clinic", "trips"], ["g-epi"])
    return s


@pytest.fixture
def consortium() -> Consortium:
    return Consortium()


@pytest.fixture
def state(consortium: Consortium) -> MemoryState:
    return build_scene(consortium)


def _asset(state: MemoryState, asset_id: str) -> state_pb2.AssetRecord:
    record = state.load("asset", asset_id)
    assert isinstance(record, state_pb2.AssetRecord), asset_id
    return record


def _binding(state: MemoryState, asset_id: str) -> tuple[list[str], list[str]]:
    asset = _asset(state, asset_id)
    return list(asset.bound_purposes), list(asset.bound_by)


# --- what a derivation records ---------------------------------------------------------------


def test_a_derivation_under_a_grant_is_bound_to_the_grants_purposes(state):
    assert _binding(state, "fused") == ([EPIDEMIC, PLANNING], ["grant g-epi"])


def test_registered_assets_and_derivations_from_unbound_owned_parents_are_unbound(
    consortium, state
):
    for asset_id in ("clinic", "registry", "trips"):
        assert _binding(state, asset_id) == ([], [])
    _derive(consortium, state, "agency-b", "trips-clean", ["trips"])
    assert _binding(state, "trips-clean") == ([], [])
    # agency-a owns clinic outright: deriving from its own unbound asset binds nothing.
    _derive(consortium, state, "agency-a", "clinic-clean", ["clinic"])
    assert _binding(state, "clinic-clean") == ([], [])


def test_derived_under_several_grants_the_binding_is_their_intersection(consortium, state):
    _derive(consortium, state, "agency-b", "joint", ["clinic", "registry"], ["g-epi", "g-plan"])
    assert _binding(state, "joint") == ([PLANNING], ["grant g-epi", "grant g-plan"])


def test_the_binding_is_inherited_through_two_levels_and_narrowed_by_further_grants(
    consortium, state
):
    # Level 1 -> 2: agency-b owns fused, but fused carries a binding, so "model" inherits it.
    _derive(consortium, state, "agency-b", "model", ["fused", "trips"])
    assert _binding(state, "model") == ([EPIDEMIC, PLANNING], ["asset fused"])
    # Level 2 -> 3: the exchange derives from model under agency-b's grant for planning only.
    _grant(
        consortium, state, "g-model", "model", [PLANNING], grantor="agency-b", grantee="exchange"
    )
    _derive(consortium, state, "exchange", "forecast", ["model"], ["g-model"])
    assert _binding(state, "forecast") == ([PLANNING], ["asset model", "grant g-model"])
    # And the binding holds at level 3, for its owner.
    use = consortium.sign(
        "exchange", "asset_used", asset_id="forecast", purpose=EPIDEMIC, operation=COMPUTE
    )
    with pytest.raises(Rejected) as raised:
        consortium.apply(state, use, BLOCK_TIME_MS)
    assert raised.value.code == "purpose_not_bound"
    assert "bound by its derivation to planning" in raised.value.reason


# --- refusals --------------------------------------------------------------------------------

Setup = Callable[[Consortium, MemoryState], None]


@dataclass(frozen=True)
class Case:
    make: Callable[[Consortium], ledger_pb2.SignedEvent]
    code: str
    fragment: str
    setup: Setup | None = None


def event(author: str, kind: str, **fields: Any) -> Callable[[Consortium], Any]:
    return lambda c: c.sign(author, kind, **fields)


def derivation(author: str, parents: list[str], grants: list[str]) -> Callable[[Consortium], Any]:
    return event(
        author,
        "asset_derived",
        asset_id="refused",
        parent_ids=parents,
        activity="fusion",
        content_digest=digest("refused"),
        classification=GENERAL,
        grant_ids=grants,
    )


def _grant_on_fused_to_exchange(c: Consortium, s: MemoryState) -> None:
    _grant(c, s, "g-fused", "fused", [PLANNING], grantor="agency-b", grantee="exchange")


def _fused_to_agency_a(c: Consortium, s: MemoryState) -> None:
    _do(c, s, "agency-b", "asset_transferred", asset_id="fused", new_owner_id="agency-a")


REFUSALS = [
    pytest.param(
        Case(
            derivation("agency-b", ["clinic", "registry"], ["g-epi", "g-ads"]),
            "purposes_disjoint",
            "(grant g-epi; grant g-ads) have none in common",
        ),
        id="derive-under-grants-with-disjoint-purposes",
    ),
    pytest.param(
        Case(
            derivation("agency-b", ["fused", "registry"], ["g-ads"]),
            "purposes_disjoint",
            "(asset fused; grant g-ads) have none in common",
        ),
        id="derive-from-a-bound-parent-under-a-grant-for-another-purpose",
    ),
    pytest.param(
        Case(
            event("agency-b", "asset_used", asset_id="fused", purpose=MARKETING, operation=COMPUTE),
            "purpose_not_bound",
            "'marketing' is not among them",
        ),
        id="owner-uses-a-bound-asset-for-another-purpose",
    ),
    pytest.param(
        Case(
            event(
                "exchange",
                "asset_used",
                asset_id="fused",
                grant_id="g-fused",
                purpose=MARKETING,
                operation=COMPUTE,
            ),
            "purpose_not_bound",
            "bound by its derivation to epidemic-modelling, planning",
            setup=_grant_on_fused_to_exchange,
        ),
        id="grantee-uses-a-bound-asset-for-another-purpose",
    ),
    pytest.param(
        Case(
            event(
                "agency-b",
                "grant_issued",
                grant_id="g-launder",
                asset_id="fused",
                grantee_id="exchange",
                purposes=[PLANNING, MARKETING],
                operations=[COMPUTE],
                expires_at_ms=EXPIRY_MS,
            ),
            "purpose_not_bound",
            "'marketing' is not among them",
        ),
        id="grant-on-a-bound-asset-for-another-purpose",
    ),
    pytest.param(
        Case(
            event(
                "agency-b",
                "asset_shared",
                asset_id="fused",
                recipient_id="exchange",
                purpose=MARKETING,
            ),
            "purpose_not_bound",
            "asset 'fused' is bound",
        ),
        id="share-naming-another-purpose",
    ),
    pytest.param(
        Case(
            event(
                "agency-b",
                "asset_transferred",
                asset_id="fused",
                new_owner_id="exchange",
                purpose=MARKETING,
            ),
            "purpose_not_bound",
            "asset 'fused' is bound",
        ),
        id="transfer-naming-another-purpose",
    ),
    pytest.param(
        Case(
            event("agency-a", "asset_used", asset_id="fused", purpose=MARKETING, operation=COMPUTE),
            "purpose_not_bound",
            "'marketing' is not among them",
            setup=_fused_to_agency_a,
        ),
        id="new-owner-after-a-transfer-is-bound-too",
    ),
]


@pytest.mark.parametrize("case", REFUSALS)
def test_a_refusal_changes_nothing(case: Case, consortium: Consortium, state: MemoryState):
    if case.setup is not None:
        case.setup(consortium, state)
    signed = case.make(consortium)
    before = state.snapshot()
    with pytest.raises(Rejected) as raised:
        consortium.apply(state, signed, BLOCK_TIME_MS)
    assert (raised.value.code, raised.value.kind) == (case.code, FORBIDDEN), raised.value
    assert case.fragment in raised.value.reason
    assert state.snapshot() == before


def test_every_code_purpose_binding_adds_is_written_and_refused():
    """The codes are written literally in their homes, and each has a refusal case above."""
    written: set[str] = set()
    for module in (rules_assets, authorization):
        source = Path(module.__file__).read_text()
        written |= set(re.findall(r'"(purpose\w*_(?:bound|disjoint))"', source))
    covered = {p.values[0].code for p in REFUSALS}
    assert written == CODES
    assert CODES - covered == set()


# --- what a binding allows -------------------------------------------------------------------


def test_bound_purposes_stay_usable_by_owner_and_grantee_and_after_the_grant_expires(
    consortium, state
):
    """The grant covered deriving until its expiry; the derived asset outlives it, bound to its
    purposes (ADR 022): its owner still uses it for them after the grant expired or was
    revoked."""
    owner_use = event(
        "agency-b", "asset_used", asset_id="fused", purpose=PLANNING, operation=COMPUTE
    )
    consortium.apply(state, owner_use(consortium), BLOCK_TIME_MS)
    _grant_on_fused_to_exchange(consortium, state)
    grantee_use = event(
        "exchange",
        "asset_used",
        asset_id="fused",
        grant_id="g-fused",
        purpose=PLANNING,
        operation=COMPUTE,
    )
    consortium.apply(state, grantee_use(consortium), BLOCK_TIME_MS)
    _do(consortium, state, "agency-a", "grant_revoked", grant_id="g-epi")
    late = event("agency-b", "asset_used", asset_id="fused", purpose=EPIDEMIC, operation=COMPUTE)
    consortium.apply(state, late(consortium), EXPIRY_MS + 1)
    assert _binding(state, "fused") == ([EPIDEMIC, PLANNING], ["grant g-epi"])


def test_a_share_or_transfer_carries_the_binding_along(consortium, state):
    share = event("agency-b", "asset_shared", asset_id="fused", recipient_id="exchange")
    consortium.apply(state, share(consortium), BLOCK_TIME_MS)
    _fused_to_agency_a(consortium, state)
    fused = _asset(state, "fused")
    assert (fused.owner_id, list(fused.holder_ids)) == ("agency-a", ["exchange"])
    assert _binding(state, "fused") == ([EPIDEMIC, PLANNING], ["grant g-epi"])
    use = event("agency-a", "asset_used", asset_id="fused", purpose=EPIDEMIC, operation=COMPUTE)
    consortium.apply(state, use(consortium), BLOCK_TIME_MS)


# --- the auditor's question answers as the rules do ------------------------------------------


def _history(consortium: Consortium, state: MemoryState) -> list[authorization.HistoryEntry]:
    """fused's history as /v1/authorization reads it: its derivation, then a grant on it to the
    exchange for planning (both applied to `state` too)."""
    entries = []
    for index, (author, kind, fields) in enumerate(
        (
            (
                "agency-b",
                "asset_derived",
                {
                    "asset_id": "fused-again",
                    "parent_ids": ["clinic", "trips"],
                    "activity": "fusion",
                    "content_digest": digest("fused-again"),
                    "classification": GENERAL,
                    "grant_ids": ["g-epi"],
                },
            ),
            (
                "agency-b",
                "grant_issued",
                {
                    "grant_id": "g-again",
                    "asset_id": "fused-again",
                    "grantee_id": "exchange",
                    "purposes": [PLANNING],
                    "operations": [COMPUTE],
                    "expires_at_ms": EXPIRY_MS,
                },
            ),
        )
    ):
        signed = consortium.sign(author, kind, **fields)
        consortium.apply(state, signed, SETUP_TIME_MS)
        entries.append(
            authorization.HistoryEntry(consortium.decode(signed).event, index, SETUP_TIME_MS, index)
        )
    return entries


@pytest.mark.parametrize(
    ("member", "purpose", "code"),
    [
        ("agency-b", EPIDEMIC, "owner"),
        ("agency-b", MARKETING, "purpose_not_bound"),
        ("exchange", PLANNING, "granted"),
        ("exchange", MARKETING, "purpose_not_bound"),
        ("exchange", EPIDEMIC, "purpose_not_granted"),
    ],
)
def test_the_authorization_question_judges_the_binding_as_the_rules_do(
    consortium, state, member, purpose, code
):
    history = _history(consortium, state)
    bound = _asset(state, "fused-again").bound_purposes
    question = authorization.UseQuestion(member, "fused-again", purpose, COMPUTE, BLOCK_TIME_MS)
    judgement = authorization.judge_use(history, question, bound)
    assert judgement.code == code, judgement.reason
    use = consortium.sign(
        member,
        "asset_used",
        asset_id="fused-again",
        grant_id="" if member == "agency-b" else "g-again",
        purpose=purpose,
        operation=COMPUTE,
    )
    if judgement.authorised:
        consortium.apply(state, use, BLOCK_TIME_MS)
    else:
        with pytest.raises(Rejected) as raised:
            consortium.apply(state, use, BLOCK_TIME_MS)
        assert raised.value.code == code


def test_the_pure_binding_judgements():
    assert authorization.bind_purposes([]) == []
    assert authorization.bind_purposes([["a", "b", "a"], ["b", "a", "c"]]) == ["a", "b"]
    assert authorization.bind_purposes([["a"], ["b"]]) == []
    assert authorization.binding_failure("x", [], "anything") is None
    assert authorization.binding_failure("x", ["a"], "a") is None
    failure = authorization.binding_failure("x", ["a"], "b")
    assert failure is not None and failure.code == "purpose_not_bound"


# --- what a lineage shows of it --------------------------------------------------------------


class _Ledger:
    def __init__(self, asset: state_pb2.AssetRecord) -> None:
        self.asset = asset

    def load(self, kind: str, record_id: str) -> Any:
        return self.asset if (kind, record_id) == ("asset", self.asset.asset_id) else None

    def event(self, event_identifier: bytes) -> None:
        return None

    def grants_of_asset(self, asset_id, after_grant_id, limit):
        return [], False


def test_a_redacted_lineage_node_leaves_the_binding_out(state):
    """The binding repeats the purposes of grants a stranger may not see, and names them."""
    fused = _asset(state, "fused")
    ledger = _Ledger(fused)
    shown, redacted = access.redact_asset(ledger, access.Reader("regulator", "member"), fused)
    assert redacted and (list(shown.bound_purposes), list(shown.bound_by)) == ([], [])
    assert shown.parent_ids == fused.parent_ids
    whole, hidden = access.redact_asset(ledger, access.Reader("agency-b", "member"), fused)
    assert not hidden and list(whole.bound_purposes) == [EPIDEMIC, PLANNING]

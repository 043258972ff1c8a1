"""Case files (evidence bundles of kind "case", protocol/evidence_case.py) over a real LevelDB
store, built by node/bundles.py and checked against the genesis alone.

The story: agency-a registers two assets and grants agency-b one of them; the exchange lists
an offer of each; agency-b orders on the first, agency-a delivers. agency-b complains about
the order, the exchange about the second asset; the regulator opens a case on both, records a
hearing and rules: a refund of the order, the offer delisted, the grant revoked, a warning.
agency-a appeals and a second regulator upholds the ruling. An unrelated order and a second
case (a complaint a third regulator rules on) run beside it, with a derivation from the first
asset and a complaint about it; then the regulator is made an agency by governance, after its
ruling.

The case file verifies and says what the events say, as structured data (its timeline holds
no words: `provledger verify` renders them from the verified events with
protocol/case_timeline.py, and other words change no claim); each refusal of the derivation
has its code; tampering with any event or claim is caught; the trade bundle of the refunded
order verifies; the REST API hands the case file to those who may read the case; the PROV
export shows the complaints, rulings and appeal decisions about its assets that the reader may
see, and parses with the W3C `prov` package.
"""

from __future__ import annotations

import base64
import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import prov.model
import pytest
from fastapi.testclient import TestClient
from support.memory_state import GENESIS_TIME_MS, MEMBER_ROLES, Consortium, digest

from provledger.cli.evidence import summary_lines
from provledger.node import bundles
from provledger.node.queries import LedgerQueries
from provledger.node.rest import StoreView, create_app
from provledger.node.store import Store
from provledger.protocol import blocks, case_timeline, evidence, evidence_case
from provledger.protocol.access import Reader
from provledger.protocol.events import DecodedEvent
from provledger.protocol.evidence import BundleError, encode_canonical, verify_bundle
from provledger.protocol.evidence_claims import Proven, derive_claims
from provledger.protocol.prov import iso_time
from provledger.protocol.tokens import issue_token
from provledger.v1 import ledger_pb2

BLOCK_INTERVAL_MS = 1_000
WINDOW_MS = 100_000
ROLES = MEMBER_ROLES | {
    "regulator-2": "regulator", "regulator-3": "regulator", "broker": "broker",
}  # fmt: skip
ORDER = ledger_pb2.COMPLAINT_SUBJECT_ORDER
ASSET = ledger_pb2.COMPLAINT_SUBJECT_ASSET
GENERAL = ledger_pb2.CLASSIFICATION_GENERAL
EXPIRY_MS = GENESIS_TIME_MS + 10**9
STEP = dict(case_id="case-1", step="hearing", note="both parties heard")
APPEAL = dict(case_id="case-1", grounds_digest=digest("grounds"), grounds="the refund is too high")


def remedy(**fields: Any) -> dict[str, Any]:
    return fields


RULING = dict(
    case_id="case-1",
    outcome=ledger_pb2.RULING_OUTCOME_UPHELD,
    findings="the data was never delivered as described",
    decision_digest=digest("decision"),
    remedies=[
        remedy(refund=dict(order_id="order-1", amount=500, currency="CNY", reference="pay-9")),
        remedy(delist=dict(offer_id="offer-1")),
        remedy(revoke_grant=dict(grant_id="grant-1")),
        remedy(warning=dict(member_id="agency-a", text="deliver what you sell")),
    ],
)
DECISION = dict(
    case_id="case-1", decision=ledger_pb2.APPEAL_DECISION_UPHELD, reasons="the ruling is sound"
)


def make_consortium(panel: int = 1) -> Consortium:
    return Consortium(
        member_roles=ROLES,
        supervision={"appeal_window_ms": WINDOW_MS, "appeal_panel_size": panel},
    )


def _story(c: Consortium) -> list[list[tuple[str, ledger_pb2.SignedEvent]]]:
    demoted = ledger_pb2.GovernanceChange(
        proposal_nonce=1,
        role_changed=ledger_pb2.RoleChanged(member_id="regulator", role=ledger_pb2.ROLE_AGENCY),
    )
    voters = ["agency-a", "agency-b", "exchange", "regulator", "regulator-2", "regulator-3"]
    return [
        [
            ("asset-1", c.sign("agency-a", "asset_registered", asset_id="asset-1",
                               content_digest=digest("asset-1"), classification=GENERAL,
                               name="Asset one")),
            ("asset-2", c.sign("agency-a", "asset_registered", asset_id="asset-2",
                               content_digest=digest("asset-2"), classification=GENERAL)),
        ],
        [
            ("grant-1", c.sign("agency-a", "grant_issued", grant_id="grant-1", asset_id="asset-1",
                               grantee_id="agency-b", purposes=["research"],
                               operations=[ledger_pb2.OPERATION_READ], expires_at_ms=EXPIRY_MS)),
            ("offer-1", c.sign("exchange", "offer_listed", offer_id="offer-1", asset_id="asset-1",
                               seller_id="agency-a", price=500, currency="CNY", title="One")),
            ("offer-2", c.sign("exchange", "offer_listed", offer_id="offer-2", asset_id="asset-2",
                               seller_id="agency-a", price=700, currency="CNY")),
            ("asset-3", c.sign("agency-a", "asset_derived", asset_id="asset-3",
                               parent_ids=["asset-1"], activity="cleaning",
                               content_digest=digest("asset-3"), classification=GENERAL)),
        ],
        [
            ("order-1", c.sign("agency-b", "order_placed", order_id="order-1",
                               offer_id="offer-1")),
            ("order-2", c.sign("agency-b", "order_placed", order_id="order-2",
                               offer_id="offer-2")),
            ("order-3", c.sign("agency-b", "order_placed", order_id="order-3",
                               offer_id="offer-2")),
        ],
        [("delivered", c.sign("agency-a", "order_delivered", order_id="order-1",
                              delivery_digest=digest("delivery")))],
        [
            ("complaint-1", c.sign("agency-b", "complaint_filed", complaint_id="complaint-1",
                                   subject_kind=ORDER, subject_id="order-1",
                                   respondent_id="agency-a", statement_digest=digest("s1"),
                                   evidence_digests=[digest("e1"), digest("e2")],
                                   category="non_delivery")),
            ("complaint-2", c.sign("exchange", "complaint_filed", complaint_id="complaint-2",
                                   subject_kind=ASSET, subject_id="asset-2",
                                   respondent_id="agency-a", statement_digest=digest("s2"),
                                   category="misdescribed")),
            ("complaint-3", c.sign("agency-b", "complaint_filed", complaint_id="complaint-3",
                                   subject_kind=ORDER, subject_id="order-2",
                                   respondent_id="agency-a", statement_digest=digest("s3"))),
            ("complaint-4", c.sign("exchange", "complaint_filed", complaint_id="complaint-4",
                                   subject_kind=ASSET, subject_id="asset-3",
                                   respondent_id="agency-a", statement_digest=digest("s4"))),
        ],
        [
            ("opened", c.sign("regulator", "case_opened", case_id="case-1",
                              complaint_ids=["complaint-1", "complaint-2"],
                              summary="an order never delivered as described")),
            ("opened-2", c.sign("regulator-3", "case_opened", case_id="case-2",
                                complaint_ids=["complaint-3"])),
        ],
        [("step", c.sign("regulator", "case_step_recorded", **STEP,
                         evidence_digests=[digest("minutes")]))],
        [
            ("ruled", c.sign("regulator", "case_ruled", **RULING)),
            ("ruled-2", c.sign("regulator-3", "case_ruled", case_id="case-2",
                               outcome=ledger_pb2.RULING_OUTCOME_DISMISSED,
                               findings="not proven", decision_digest=digest("decision 2"))),
        ],
        [
            ("appealed", c.sign("agency-a", "ruling_appealed", **APPEAL)),
            ("appealed-2", c.sign("agency-b", "ruling_appealed", case_id="case-2",
                                  grounds_digest=digest("grounds 2"))),
        ],
        [
            ("decided", c.sign("regulator-2", "appeal_decided", **DECISION)),
            ("decided-2", c.sign("regulator-2", "appeal_decided", case_id="case-2",
                                 decision=ledger_pb2.APPEAL_DECISION_VARIED,
                                 reasons="the order was not delivered",
                                 remedies=[remedy(refund=dict(order_id="order-2", amount=300,
                                                              currency="CNY"))])),
        ],
        [("demoted", c.govern("agency-b", demoted, voters))],
    ]  # fmt: skip


@dataclass
class Chain:
    consortium: Consortium
    store: Store
    ids: dict[str, bytes]
    heights: dict[str, int]

    @property
    def genesis(self):
        return self.consortium.genesis


def build_chain(path: Path, consortium: Consortium, story) -> Chain:
    store = Store(path, consortium.genesis)
    ids: dict[str, bytes] = {}
    heights: dict[str, int] = {}
    last_commit = None
    for height, block in enumerate(story, start=1):
        executed = blocks.execute_block(
            state=store,
            log=store.log,
            tip=store.tip,
            chain_id=consortium.chain_id,
            candidates=[consortium.decode(s) for _, s in block],
            time_ms=GENESIS_TIME_MS + height * BLOCK_INTERVAL_MS,
            proposer_id="validator-0",
            genesis_validators=consortium.genesis.validator_set,
            last_commit=last_commit,
            strict=True,
        )
        last_commit = consortium.certificate(executed)
        store.commit_block(executed, last_commit)
        for label, signed in block:
            ids[label] = consortium.decode(signed).event_id
            heights[label] = height
    return Chain(consortium, store, ids, heights)


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    consortium = make_consortium()
    built = build_chain(tmp_path_factory.mktemp("case-file") / "db", consortium, _story(consortium))
    try:
        yield built
    finally:
        built.store.close()


@pytest.fixture(scope="module")
def case_bytes(chain: Chain) -> bytes:
    return bundles.case_bundle(chain.store, chain.genesis, "case-1")


@pytest.fixture(scope="module")
def verified(chain: Chain, case_bytes: bytes) -> evidence.VerifiedBundle:
    return verify_bundle(case_bytes, chain.genesis)


def rejection(data: bytes, genesis) -> BundleError:
    with pytest.raises(BundleError) as caught:
        verify_bundle(data, genesis)
    assert caught.value.reason
    return caught.value


# --- what a case file holds and says -------------------------------------------------------


def test_the_case_file_holds_the_case_and_what_it_is_about(
    chain: Chain, verified: evidence.VerifiedBundle
) -> None:
    labels = {identifier: label for label, identifier in chain.ids.items()}
    held = [labels[e.event_id] for _, e in verified.events]
    assert held == [
        "asset-2", "grant-1", "offer-1", "order-1", "delivered", "complaint-1",
        "complaint-2", "opened", "step", "ruled", "appealed", "decided",
    ]  # fmt: skip
    assert verified.kind == "case" and verified.subject_id == "case-1"
    # The regulator's role change after its ruling is carried (its history), and judged at
    # its place: the ruling was by a regulator.
    assert [g["change"] for g in verified.governance_json()] == ["role_changed"]


def test_the_claims_say_what_the_events_say(chain: Chain, verified: evidence.VerifiedBundle):
    claims = verified.claims
    ids = {label: identifier.hex() for label, identifier in chain.ids.items()}
    assert claims["opened_by"] == "regulator" and claims["opening_event_id"] == ids["opened"]
    assert claims["summary"] == "an order never delivered as described"
    assert claims["complaints"][0] == {
        "complaint_id": "complaint-1",
        "event_id": ids["complaint-1"],
        "complainant": "agency-b",
        "respondent": "agency-a",
        "subject_kind": "order",
        "subject_id": "order-1",
        "statement_digest": digest("s1").hex(),
        "evidence_digests": [digest("e1").hex(), digest("e2").hex()],
        "category": "non_delivery",
    }
    assert claims["complaints"][1]["complainant"] == "exchange"
    assert claims["parties"] == ["agency-b", "agency-a", "exchange"]
    assert claims["steps"] == [
        {
            "event_id": ids["step"],
            "regulator": "regulator",
            "step": "hearing",
            "note": "both parties heard",
            "evidence_digests": [digest("minutes").hex()],
        }
    ]
    ruling = claims["ruling"]
    assert (ruling["regulator"], ruling["outcome"]) == ("regulator", "upheld")
    assert ruling["decision_digest"] == digest("decision").hex()
    assert ruling["remedies"] == [
        {"remedy": "refund", "order_id": "order-1", "amount": 500, "currency": "CNY",
         "reference": "pay-9"},
        {"remedy": "delist", "offer_id": "offer-1"},
        {"remedy": "revoke_grant", "grant_id": "grant-1"},
        {"remedy": "warning", "member_id": "agency-a", "text": "deliver what you sell"},
    ]  # fmt: skip
    ruled_ms = GENESIS_TIME_MS + chain.heights["ruled"] * BLOCK_INTERVAL_MS
    assert claims["appeal_deadline_ms"] == ruled_ms + WINDOW_MS
    assert claims["appeal"] == {
        "event_id": ids["appealed"],
        "appellant": "agency-a",
        "grounds_digest": digest("grounds").hex(),
        "grounds": "the refund is too high",
    }
    assert claims["appeal_votes"] == [
        {"event_id": ids["decided"], "regulator": "regulator-2", "decision": "upheld",
         "reasons": "the ruling is sound", "remedies": []},
    ]  # fmt: skip
    assert claims["appeal_decision"] == {
        "event_id": ids["decided"],
        "decision": "upheld",
        "remedies": [],
        "regulators": ["regulator-2"],
    }
    assert claims["statuses"] == ["open", "ruled", "appealed", "appeal_decided"]
    (trade,) = claims["trades"]
    assert trade["statuses"] == ["listed", "ordered", "delivered", "refunded"]
    assert trade["refund"] == {
        "case_id": "case-1", "event_id": ids["ruled"], "event": "case_ruled", "by": "regulator",
        "amount": 500, "currency": "CNY", "reference": "pay-9",
    }  # fmt: skip
    assert [o["offer_id"] for o in claims["offers"]] == ["offer-1"]
    assert claims["offers"][0]["title"] == "One"
    assert [a["asset_id"] for a in claims["assets"]] == ["asset-2"]
    assert claims["grants"] == [
        {"grant_id": "grant-1", "event_id": ids["grant-1"], "asset_id": "asset-1",
         "grantor": "agency-a", "grantee": "agency-b", "purposes": ["research"],
         "expires_at_ms": EXPIRY_MS},
    ]  # fmt: skip


def test_the_timeline_is_every_event_in_log_order(chain: Chain, verified: evidence.VerifiedBundle):
    timeline = verified.claims["timeline"]
    assert [entry["log_index"] for entry in timeline] == [i for i, _ in verified.events]
    assert [entry["event_id"] for entry in timeline] == [
        e.event_id.hex() for _, e in verified.events
    ]
    ruled = next(entry for entry in timeline if entry["kind"] == "case_ruled")
    assert ruled == {
        "event_id": chain.ids["ruled"].hex(),
        "log_index": _index(verified, "case_ruled"),
        "height": chain.heights["ruled"],
        "time_ms": GENESIS_TIME_MS + chain.heights["ruled"] * BLOCK_INTERVAL_MS,
        "kind": "case_ruled",
        "author": "regulator",
    }
    # Structured data only: no entry carries words of ours.
    assert all(
        set(entry) == {"event_id", "log_index", "height", "time_ms", "kind", "author"}
        for entry in timeline
    )


def test_the_claims_hold_no_words_of_ours(
    chain: Chain, case_bytes: bytes, verified: evidence.VerifiedBundle, monkeypatch
) -> None:
    """The timeline's wording is presentation: with other words, the same case file verifies
    with the same claims, and only what `provledger verify` prints changes."""
    before = "\n".join(summary_lines(verified))
    monkeypatch.setattr(case_timeline, "summarize", lambda kind, author, payload: f"<{kind}>")
    monkeypatch.setattr(case_timeline, "_appeal_decided", lambda *args: "<vote>")
    monkeypatch.setattr(case_timeline, "remedy_words", lambda remedy: "<remedy>")
    again = verify_bundle(case_bytes, chain.genesis)
    assert again.claims == verified.claims
    rebuilt = bundles.case_bundle(chain.store, chain.genesis, "case-1")
    assert json.loads(rebuilt)["claims"] == json.loads(case_bytes)["claims"]
    after = "\n".join(summary_lines(again))
    assert after != before
    assert re.search(r"Z  height \d+  regulator  <case_ruled>$", after, re.MULTILINE), after
    assert re.search(r"Z  height \d+  regulator-2  <vote>$", after, re.MULTILINE), after


def test_verify_prints_the_case_as_a_timeline(verified: evidence.VerifiedBundle) -> None:
    text = "\n".join(summary_lines(verified))
    assert "VERIFIED case evidence for case_id case-1" in text
    # One line per event: its time (ISO UTC), height, author and summary.
    assert re.search(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z  height \d+  regulator  ruled upheld by "
        r"regulator: refund of 500 CNY",
        text,
    ), text
    assert "ruling: upheld by regulator" in text
    assert "  remedy: refund of 500 CNY (minor units) on order order-1, reference pay-9" in text
    assert "appeal by agency-a" in text
    assert "appeal decided: ruling upheld, by regulator-2" in text
    assert text.splitlines()[-1].startswith("verified against the genesis")


def test_verify_renders_every_events_summary_from_the_verified_events(
    chain: Chain, verified: evidence.VerifiedBundle
) -> None:
    """The readable timeline is rendered from the verified events by protocol/case_timeline.py
    (the claims hold none of its words): one line per event, in log order."""
    lines = summary_lines(verified)
    shown = [line for line in lines if re.match(r"    \d{4}-\d\d-\d\dT[\d:.]+Z  height ", line)]
    assert len(shown) == len(verified.events) == len(verified.claims["timeline"])
    labels = {identifier: label for label, identifier in chain.ids.items()}
    assert verified.proven is not None
    rendered = evidence_case.case_timeline(list(verified.events), verified.proven)
    for line, entry, claimed in zip(shown, rendered, verified.claims["timeline"], strict=True):
        assert entry.event_id.hex() == claimed["event_id"], labels[entry.event_id]
        assert line.endswith(f"  height {claimed['height']}  {claimed['author']}  {entry.summary}")
    by_label = {labels[e.event_id]: e.summary for e in rendered}
    assert by_label["complaint-1"] == (
        "complaint complaint-1 filed by agency-b against agency-a about order order-1 "
        "(non_delivery), with 2 pieces of evidence"
    )
    assert by_label["ruled"].startswith(
        "ruled upheld by regulator: refund of 500 CNY (minor units) on order order-1"
    )
    assert by_label["decided"] == (
        "appeal decided by regulator-2: ruling upheld; reasons: the ruling is sound"
    )


def test_the_trade_bundle_of_a_refunded_order_verifies(chain: Chain) -> None:
    data = bundles.trade_bundle(chain.store, chain.genesis, "order-1")
    shown = verify_bundle(data, chain.genesis)
    assert shown.claims["statuses"] == ["listed", "ordered", "delivered", "refunded"]
    assert shown.claims["refund"]["case_id"] == "case-1"
    assert "refunded" in "\n".join(summary_lines(shown))
    # An order without a refund has no refund claim, as before.
    plain = verify_bundle(
        bundles.trade_bundle(chain.store, chain.genesis, "order-3"), chain.genesis
    )
    assert "refund" not in plain.claims
    # One refunded by the decision on an appeal.
    varied = verify_bundle(
        bundles.trade_bundle(chain.store, chain.genesis, "order-2"), chain.genesis
    )
    assert varied.claims["statuses"] == ["listed", "ordered", "refunded"]
    assert varied.claims["refund"]["event"] == "appeal_decided"
    assert varied.claims["refund"]["by"] == "regulator-2"


def test_a_ruling_varied_on_appeal_refunds_in_the_case_file(chain: Chain) -> None:
    """case-2 was dismissed by regulator-3; on agency-b's appeal regulator-2 varied it with a
    refund of order-2: the decision's remedies took effect, so the trade shows the refund."""
    other = verify_bundle(bundles.case_bundle(chain.store, chain.genesis, "case-2"), chain.genesis)
    claims = other.claims
    assert claims["statuses"] == ["open", "ruled", "appealed", "appeal_decided"]
    assert claims["ruling"]["outcome"] == "dismissed"
    assert claims["appeal_decision"]["decision"] == "varied"
    assert claims["appeal_decision"]["remedies"] == [
        {"remedy": "refund", "order_id": "order-2", "amount": 300, "currency": "CNY",
         "reference": ""},
    ]  # fmt: skip
    (trade,) = claims["trades"]
    assert trade["order_id"] == "order-2"
    assert trade["statuses"] == ["listed", "ordered", "refunded"]
    assert trade["refund"]["event_id"] == chain.ids["decided-2"].hex()
    text = "\n".join(summary_lines(other))
    assert "  remedy added on appeal: refund of 300 CNY (minor units) on order order-2" in text
    with pytest.raises(bundles.BundleNotFound):
        bundles.case_bundle(chain.store, chain.genesis, "case-none")


def test_a_brokers_listing_names_the_settling_exchange_and_the_broker(chain: Chain) -> None:
    c = chain.consortium
    made = [
        c.sign("broker", "offer_listed", offer_id="offer-b", asset_id="asset-1",
               seller_id="agency-a", price=90, currency="CNY", mandate_id="mandate-1",
               exchange_id="exchange"),
        c.sign("agency-b", "order_placed", order_id="order-b", offer_id="offer-b"),
        c.sign("agency-a", "order_delivered", order_id="order-b", delivery_digest=digest("b")),
        c.sign("exchange", "order_settled", order_id="order-b", settlement_reference="bank-1"),
    ]  # fmt: skip
    events = [(index, c.decode(signed)) for index, signed in enumerate(made)]
    claims = derive_claims("trade", "order-b", events)
    assert (claims["exchange"], claims["broker"]) == ("exchange", "broker")
    assert claims["statuses"][-1] == "settled"


# --- refusals of the derivation, with hand-built events ------------------------------------


def _events(verified: evidence.VerifiedBundle) -> list[tuple[int, DecodedEvent]]:
    return list(verified.events)


def _proven(verified: evidence.VerifiedBundle, **changes: Any) -> Proven:
    """What the bundle proved of its events, as the verifier hands it to the claims."""
    roles = {
        i: verified.authors[e.author_id].role
        if e.author_id != "regulator"
        else ledger_pb2.ROLE_REGULATOR
        for i, e in verified.events
    }
    proven = Proven(
        heights=dict(verified.heights),
        times_ms=dict(verified.times_ms),
        roles=roles,
        appeal_window_ms=WINDOW_MS,
        appeal_panel_size=1,
    )
    return replace(proven, **changes)


def _claims(events, proven) -> Any:
    return derive_claims("case", "case-1", sorted(events, key=lambda item: item[0]), proven)


def _added(
    chain: Chain, proven: Proven, signed: ledger_pb2.SignedEvent, log_index: int, like: int
) -> tuple[tuple[int, DecodedEvent], Proven]:
    """A hand-built event at `log_index`, in the block of the event at log index `like`."""
    event = chain.consortium.decode(signed)
    return (log_index, event), replace(
        proven,
        heights={**proven.heights, log_index: proven.heights[like]},
        times_ms={**proven.times_ms, log_index: proven.times_ms[like]},
        roles={**proven.roles, log_index: ROLES_PB[event.author_id]},
    )


ROLES_PB = {member: getattr(ledger_pb2, f"ROLE_{role.upper()}") for member, role in ROLES.items()}


def _index(verified: evidence.VerifiedBundle, kind: str) -> int:
    return next(i for i, e in verified.events if e.kind == kind)


def test_the_derivation_equals_the_claims(verified: evidence.VerifiedBundle) -> None:
    assert _claims(_events(verified), _proven(verified)) == verified.claims


def test_an_event_out_of_case_order_is_refused(chain: Chain, verified) -> None:
    events, proven = _events(verified), _proven(verified)
    # A step after the ruling, in the ruling's block.
    ruled = _index(verified, "case_ruled")
    late = chain.consortium.sign("regulator-3", "case_step_recorded", **STEP)
    added, proven = _added(chain, proven, late, ruled + 1000, ruled)
    with pytest.raises(BundleError) as caught:
        _claims([*events, added], proven)
    assert caught.value.code == "case_order"
    assert "needs the case open, but it is" in caught.value.reason
    # An appeal decided before any appeal: the appeal left out.
    appealed = _index(verified, "ruling_appealed")
    with pytest.raises(BundleError) as caught:
        _claims([(i, e) for i, e in events if i != appealed], _proven(verified))
    assert caught.value.code == "case_order"


def test_a_ruler_or_decider_who_was_no_regulator_is_refused(verified) -> None:
    for kind in ("case_opened", "case_step_recorded", "case_ruled", "appeal_decided"):
        proven = _proven(verified)
        roles = {**proven.roles, _index(verified, kind): ledger_pb2.ROLE_AGENCY}
        with pytest.raises(BundleError) as caught:
            _claims(_events(verified), replace(proven, roles=roles))
        assert caught.value.code == "not_regulator", kind


def test_a_regulator_who_is_a_party_is_refused(chain: Chain, verified) -> None:
    """A regulator that complained, or is complained about, neither opens, investigates,
    rules nor decides (rules_cases' regulator_is_party)."""
    for kind in ("case_opened", "case_step_recorded", "case_ruled", "appeal_decided"):
        at = _index(verified, kind)
        event = dict(verified.events)[at]
        # The exchange, a party (it filed complaint-2), in the role of a regulator.
        payload = getattr(event.event, kind)
        fields = {f.name: v for f, v in payload.ListFields()}
        forged = chain.consortium.sign("exchange", kind, **fields)
        added, proven = _added(chain, _proven(verified), forged, at, at)
        proven = replace(proven, roles={**proven.roles, at: ledger_pb2.ROLE_REGULATOR})
        rest = [(i, e) for i, e in _events(verified) if i != at]
        with pytest.raises(BundleError) as caught:
            _claims([*rest, added], proven)
        assert caught.value.code == "regulator_is_party", kind


def test_an_appeal_decided_by_the_ruler_is_refused(chain: Chain, verified) -> None:
    decided = _index(verified, "appeal_decided")
    events = [(i, e) for i, e in _events(verified) if i != decided]
    vote = chain.consortium.sign("regulator", "appeal_decided", **DECISION)
    added, proven = _added(chain, _proven(verified), vote, decided, decided)
    with pytest.raises(BundleError) as caught:
        _claims([*events, added], proven)
    assert caught.value.code == "same_regulator"


def test_a_second_vote_by_one_regulator_is_refused(chain: Chain, verified) -> None:
    decided = _index(verified, "appeal_decided")
    again = chain.consortium.sign(
        "regulator-2", "appeal_decided", **(DECISION | {"reasons": "again"})
    )
    added, proven = _added(chain, _proven(verified, appeal_panel_size=2), again, decided + 1000,
                           decided)  # fmt: skip
    with pytest.raises(BundleError) as caught:
        _claims([*_events(verified), added], proven)
    assert caught.value.code == "already_voted"


def test_a_panel_of_two_decides_on_the_second_alike_vote(chain: Chain, verified) -> None:
    decided = _index(verified, "appeal_decided")
    second = chain.consortium.sign(
        "regulator-3", "appeal_decided", **(DECISION | {"reasons": "also"})
    )
    proven = _proven(verified, appeal_panel_size=2)
    open_claims = _claims(_events(verified), proven)
    assert open_claims["statuses"][-1] == "appealed" and open_claims["appeal_decision"] is None
    added, proven = _added(chain, proven, second, decided + 1000, decided)
    claims = _claims([*_events(verified), added], proven)
    assert claims["statuses"][-1] == "appeal_decided"
    assert claims["appeal_decision"]["regulators"] == ["regulator-2", "regulator-3"]
    rendered = evidence_case.case_timeline([*_events(verified), added], proven)
    assert "(2 of 2 alike; the appeal is decided)" in rendered[-1].summary


def test_an_appeal_by_no_party_or_after_the_window_is_refused(chain: Chain, verified) -> None:
    appealed = _index(verified, "ruling_appealed")
    events = [(i, e) for i, e in _events(verified) if i != appealed]
    outsider = chain.consortium.sign("regulator-3", "ruling_appealed", **APPEAL)
    added, proven = _added(chain, _proven(verified), outsider, appealed, appealed)
    with pytest.raises(BundleError) as caught:
        _claims([*events, added], proven)
    assert caught.value.code == "not_case_party"
    # The window closes at the ruling's time plus the genesis's appeal window.
    ruled = _index(verified, "case_ruled")
    gap = verified.times_ms[appealed] - verified.times_ms[ruled]
    with pytest.raises(BundleError) as caught:
        _claims(_events(verified), _proven(verified, appeal_window_ms=gap))
    assert caught.value.code == "appeal_window_closed"
    assert _claims(_events(verified), _proven(verified, appeal_window_ms=gap + 1))


def test_events_the_case_does_not_need_are_refused(chain: Chain, verified) -> None:
    events, proven = _events(verified), _proven(verified)
    last = max(i for i, _ in events)
    for label in ("order-2", "complaint-3", "ruled-2", "offer-2", "decided-2", "order-3"):
        stray = chain.store.event(chain.ids[label])
        event = chain.consortium.decode(stray.event)
        added, more = _added(chain, proven, stray.event, stray.log_index, last)
        with pytest.raises(BundleError) as caught:
            _claims([*events, added], more)
        assert caught.value.code == "wrong_events", (label, event.kind)


def test_events_the_case_needs_are_missing(chain: Chain, verified) -> None:
    """Each event left out is refused, or (a later event of a life cycle that still makes
    sense: presence, not absence) derives other claims than the bundle states."""
    labels = {identifier: label for label, identifier in chain.ids.items()}
    outcomes = {}
    for left_out, event in _events(verified):
        rest = [(i, e) for i, e in _events(verified) if i != left_out]
        try:
            claims = _claims(rest, _proven(verified))
        except BundleError as error:
            outcomes[labels[event.event_id]] = error.code
        else:
            assert claims != verified.claims
            outcomes[labels[event.event_id]] = "other claims"
    assert outcomes == {
        "asset-2": "incomplete",  # complaint-2's asset
        "grant-1": "incomplete",  # the revoked grant
        "offer-1": "incomplete",  # the order's offer, and the delisted one
        "order-1": "incomplete",
        "delivered": "other claims",  # refunded once ordered
        "complaint-1": "incomplete",
        "complaint-2": "incomplete",
        "opened": "incomplete",
        "step": "other claims",
        "ruled": "case_order",  # the appeal finds the case open
        "appealed": "case_order",  # the vote finds the case ruled
        "decided": "other claims",  # the appeal still undecided
    }


def test_every_code_of_the_case_derivation_is_covered() -> None:
    """Each code protocol/evidence_case.py writes has its test above: adding a code without
    one fails here."""
    source = Path(evidence_case.__file__).read_text()
    written = set(re.findall(r'(?:BundleError|_refused)\(\s*"([a-z_]+)"', source))
    tested = {
        "case_order": test_an_event_out_of_case_order_is_refused,
        "not_regulator": test_a_ruler_or_decider_who_was_no_regulator_is_refused,
        "regulator_is_party": test_a_regulator_who_is_a_party_is_refused,
        "same_regulator": test_an_appeal_decided_by_the_ruler_is_refused,
        "already_voted": test_a_second_vote_by_one_regulator_is_refused,
        "not_case_party": test_an_appeal_by_no_party_or_after_the_window_is_refused,
        "appeal_window_closed": test_an_appeal_by_no_party_or_after_the_window_is_refused,
        "wrong_events": test_events_the_case_does_not_need_are_refused,
        "incomplete": test_events_the_case_needs_are_missing,
    }
    assert written == set(tested)


# --- tampering -----------------------------------------------------------------------------


def _leaves(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _leaves(value, (*path, index))
    else:
        yield path, node


def _changed(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return 1
    if isinstance(value, int):
        return value + 1
    return value + "x"


def test_tampering_with_any_claim_is_caught(chain: Chain, case_bytes: bytes) -> None:
    document = json.loads(case_bytes)
    count = 0
    for path, value in _leaves(document["claims"]):
        mutated = copy.deepcopy(document)
        target = mutated["claims"]
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = _changed(value)
        error = rejection(encode_canonical(mutated), chain.genesis)
        assert error.code == "claims_mismatch", (path, error)
        count += 1
    assert count > 100


def test_tampering_with_any_event_is_caught(chain: Chain, case_bytes: bytes) -> None:
    document = json.loads(case_bytes)
    for index, entry in enumerate(document["events"]):
        dropped = copy.deepcopy(document)
        del dropped["events"][index]
        assert rejection(encode_canonical(dropped), chain.genesis).code in (
            "claims_mismatch", "incomplete", "case_order", "wrong_blocks", "wrong_events",
            "bad_trade",
        ), index  # fmt: skip
        changed = copy.deepcopy(document)
        body = bytearray(base64.b64decode(entry["body"]))
        body[-1] ^= 0x01
        changed["events"][index]["body"] = base64.b64encode(bytes(body)).decode()
        assert rejection(encode_canonical(changed), chain.genesis).code in (
            "bad_event", "malformed"
        ), index  # fmt: skip


def test_the_kind_subject_and_format_are_bound(chain: Chain, case_bytes: bytes) -> None:
    document = json.loads(case_bytes)
    other = copy.deepcopy(document)
    other["subject"] = {"case_id": "case-2"}
    assert rejection(encode_canonical(other), chain.genesis).code in ("incomplete", "case_order")
    other["kind"] = "trade"
    assert rejection(encode_canonical(other), chain.genesis).code == "malformed"
    other["subject"] = {"order_id": "order-1"}  # its events are no trade's
    assert rejection(encode_canonical(other), chain.genesis).code == "incomplete"
    # A case file is of format 3 only.
    older = {k: v for k, v in document.items() if k != "blocks"}
    older["format"] = evidence.FORMAT_V2
    error = rejection(encode_canonical(older), chain.genesis)
    assert error.code == "malformed" and "format" in error.reason


# --- over REST -----------------------------------------------------------------------------


def test_the_case_file_is_served_to_its_parties_regulators_and_auditors(chain: Chain) -> None:
    now_ms = GENESIS_TIME_MS + 100_000
    client = TestClient(create_app(StoreView(chain.store, chain.genesis, "n", lambda: now_ms)))

    def get(member_id: str, role: str, case_id: str = "case-1") -> Any:
        key = chain.consortium[member_id].key
        token = issue_token(key, member_id, role, chain.genesis.chain_id, GENESIS_TIME_MS, 10**6)
        return client.get(
            "/v1/evidence/case",
            params={"case_id": case_id},
            headers={"Authorization": f"Bearer {token}"},
        )

    with client:
        for member_id, role in (("agency-b", "member"), ("regulator-3", "member"),
                                ("auditor", "auditor")):  # fmt: skip
            response = get(member_id, role)
            assert response.status_code == 200, (member_id, response.text)
            assert response.headers["content-disposition"] == (
                'attachment; filename="evidence-case-case-1.json"'
            )
            assert verify_bundle(response.content, chain.genesis).subject_id == "case-1"
        # The regulator who ruled is an agency now, and no party: refused.
        refused = get("regulator", "member")
        assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
        missing = get("auditor", "auditor", "case-none")
        assert missing.status_code == 404 and missing.json()["error"] == "unknown_case"


# --- PROV ----------------------------------------------------------------------------------


def _prov(chain: Chain, reader: Reader, asset_id: str, upstream: bool) -> dict[str, Any]:
    document, truncated = LedgerQueries(chain.store, chain.genesis).prov(
        reader, asset_id, upstream=upstream, depth=5
    )
    assert not truncated
    return document


def _case_activities(document: dict[str, Any]) -> dict[str, str]:
    """The supervision activities of a PROV-JSON document: event id -> prov:type."""
    return {
        name.removeprefix("event:"): activity["prov:type"]["$"]
        for name, activity in document["activity"].items()
        if activity["prov:type"]["$"] != "provledger:Derivation"
    }


def test_prov_shows_complaints_rulings_and_appeal_decisions_about_the_assets(chain: Chain):
    ids = {label: identifier.hex() for label, identifier in chain.ids.items()}
    document = _prov(chain, Reader("auditor", "auditor"), "asset-1", upstream=False)
    assert _case_activities(document) == {
        ids["complaint-1"]: "provledger:Complaint",  # about order-1, an order of asset-1
        ids["complaint-4"]: "provledger:Complaint",  # about asset-3, derived from asset-1
        ids["ruled"]: "provledger:Ruling",
        ids["decided"]: "provledger:AppealDecision",
    }
    ruling = document["activity"][f"event:{ids['ruled']}"]
    ruled_ms = GENESIS_TIME_MS + chain.heights["ruled"] * BLOCK_INTERVAL_MS
    assert ruling["prov:startTime"] == iso_time(ruled_ms)
    assert ruling["provledger:caseId"] == "case-1" and ruling["provledger:outcome"] == "upheld"
    assert ruling["prov:label"].startswith("ruled upheld by regulator: refund of 500 CNY")
    used = {(r["prov:activity"], r["prov:entity"]) for r in document["used"].values()}
    assert (f"event:{ids['ruled']}", "asset:asset-1") in used
    assert (f"event:{ids['complaint-4']}", "asset:asset-3") in used
    associated = {
        (r["prov:activity"], r["prov:agent"]) for r in document["wasAssociatedWith"].values()
    }
    assert (f"event:{ids['complaint-1']}", "member:agency-b") in associated
    assert (f"event:{ids['ruled']}", "member:regulator") in associated
    assert (f"event:{ids['decided']}", "member:regulator-2") in associated
    assert "member:regulator-2" in document["agent"]


def test_prov_leaves_out_what_the_reader_may_not_see(chain: Chain) -> None:
    """agency-b holds a grant on asset-1 and is a party to case-1; asset-3, derived from
    asset-1, is redacted for it, and the exchange's complaint about asset-3 does not concern
    it."""
    ids = {label: identifier.hex() for label, identifier in chain.ids.items()}
    document = _prov(chain, Reader("agency-b", "member"), "asset-1", upstream=False)
    shown = _case_activities(document)
    assert ids["complaint-4"] not in shown
    assert {ids["complaint-1"], ids["ruled"], ids["decided"]} <= set(shown)


def test_a_prov_export_with_a_complaint_and_a_ruling_round_trips_through_the_w3c_package(
    chain: Chain,
) -> None:
    document = _prov(chain, Reader("auditor", "auditor"), "asset-1", upstream=False)
    text = json.dumps(document)
    parsed = prov.model.ProvDocument.deserialize(content=text, format="json")
    types = {
        str(record.identifier): {str(t) for t in record.get_asserted_types()}
        for record in parsed.get_records(prov.model.ProvActivity)
    }
    ids = {label: identifier.hex() for label, identifier in chain.ids.items()}
    assert any("Complaint" in " ".join(t) for t in types.values()), types
    ruling = next(name for name in types if name.endswith(ids["ruled"]))
    assert any(t.endswith("Ruling") for t in types[ruling])
    usages = parsed.get_records(prov.model.ProvUsage)
    assert any(str(u.formal_attributes[0][1]).endswith(ids["ruled"]) for u in usages)
    again = prov.model.ProvDocument.deserialize(
        content=parsed.serialize(format="json"), format="json"
    )
    assert again == parsed


def test_the_prov_export_reads_a_bounded_history(chain: Chain, monkeypatch) -> None:
    queries = LedgerQueries(chain.store, chain.genesis)
    monkeypatch.setattr("provledger.node.queries.PROV_HISTORY_EVENTS_SCANNED_MAX", 2)
    document, truncated = queries.prov(
        Reader("auditor", "auditor"), "asset-1", upstream=False, depth=5
    )
    assert truncated
    assert len(_case_activities(document)) <= 2

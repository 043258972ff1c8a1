"""Unit tests for the market's rules (protocol/rules_market.py and the offer and order rules of
rules_trade.py that call them): brokers qualified by a regulator, sellers' mandates, listings
by a broker under a mandate, delistings, and suspensions from trading.

Every refusal is exercised through the path a block takes (decode, then apply_event) against
a fixed scene, asserting the code, the kind, a fragment of the reason and that the state did
not change at all; then every transition, including the suspension and delisting records a
ruling's remedy writes (another rule's, planted here as records).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from support.memory_state import GENESIS_TIME_MS, MEMBER_ROLES, Consortium, MemoryState, digest
from support.rule_cases import BLOCK_TIME_MS, Case, Setup, SignedMaker, reject

from provledger.protocol import access, concerns, rules_market
from provledger.protocol.errors import Rejected, RejectionKind
from provledger.protocol.state import Write
from provledger.v1 import ledger_pb2, state_pb2

INVALID = RejectionKind.INVALID
FORBIDDEN = RejectionKind.FORBIDDEN
PRECONDITION = RejectionKind.PRECONDITION
DUPLICATE = RejectionKind.DUPLICATE
GENERAL = ledger_pb2.CLASSIFICATION_GENERAL
IMPORTANT = ledger_pb2.CLASSIFICATION_IMPORTANT

SETUP_TIME_MS = GENESIS_TIME_MS + 1_000
EXPIRY_MS = BLOCK_TIME_MS + 50_000  # qualifications and mandates of the scene
LATER_MS = EXPIRY_MS + 1  # a block time past them
ROLES = {**MEMBER_ROLES, "broker": "broker", "broker-b": "broker"}


def _do(c: Consortium, s: MemoryState, author: str, kind: str, **fields: Any) -> list[Write]:
    return c.apply(s, c.sign(author, kind, **fields), SETUP_TIME_MS)


def build_scene(c: Consortium) -> MemoryState:
    """agency-a owns asset-a (general) and asset-a2 (important); agency-b owns asset-b. The
    regulator qualified `broker` (not broker-b) until EXPIRY_MS. agency-a gave `broker`
    mandate-a (asset-a only, floor 100) and mandate-all (every asset, no floor). The broker
    listed offer-brokered (asset-a at 150, settled by the exchange) under mandate-a; the
    exchange listed offer-direct (asset-b for agency-b)."""
    s = c.state()
    for owner, asset_id, level in (
        ("agency-a", "asset-a", GENERAL),
        ("agency-a", "asset-a2", IMPORTANT),
        ("agency-b", "asset-b", GENERAL),
    ):
        _do(
            c,
            s,
            owner,
            "asset_registered",
            asset_id=asset_id,
            content_digest=digest(asset_id),
            classification=level,
            name=asset_id,
        )
    _do(
        c,
        s,
        "regulator",
        "broker_qualified",
        qualification_id="qual-1",
        broker_id="broker",
        scope="health data",
        expires_at_ms=EXPIRY_MS,
    )
    _do(
        c,
        s,
        "agency-a",
        "mandate_granted",
        mandate_id="mandate-a",
        broker_id="broker",
        asset_ids=["asset-a"],
        expires_at_ms=EXPIRY_MS,
        price_floor=100,
    )
    _do(
        c,
        s,
        "agency-a",
        "mandate_granted",
        mandate_id="mandate-all",
        broker_id="broker",
        expires_at_ms=EXPIRY_MS,
    )
    _do(
        c,
        s,
        "broker",
        "offer_listed",
        offer_id="offer-brokered",
        asset_id="asset-a",
        seller_id="agency-a",
        price=150,
        currency="CNY",
        title="Clinic visits",
        mandate_id="mandate-a",
        exchange_id="exchange",
    )
    _do(
        c,
        s,
        "exchange",
        "offer_listed",
        offer_id="offer-direct",
        asset_id="asset-b",
        seller_id="agency-b",
        price=80,
        currency="CNY",
    )
    return s


@pytest.fixture
def consortium() -> Consortium:
    return Consortium(member_roles=ROLES)


@pytest.fixture
def state(consortium: Consortium) -> MemoryState:
    return build_scene(consortium)


# A payload of each kind that the scene accepts at BLOCK_TIME_MS, with its author.
VALID: dict[str, tuple[str, dict[str, Any]]] = {
    "broker_qualified": (
        "regulator",
        dict(qualification_id="qual-2", broker_id="broker-b", expires_at_ms=EXPIRY_MS),
    ),
    "mandate_granted": (
        "agency-b",
        dict(
            mandate_id="mandate-b",
            broker_id="broker",
            asset_ids=["asset-b"],
            expires_at_ms=EXPIRY_MS,
            price_floor=10,
        ),
    ),
    "mandate_revoked": ("agency-a", dict(mandate_id="mandate-a", reason="ended")),
    "offer_listed": (
        "broker",
        dict(
            offer_id="offer-new",
            asset_id="asset-a",
            seller_id="agency-a",
            price=100,
            currency="CNY",
            title="Clinic visits again",
            mandate_id="mandate-a",
            exchange_id="exchange",
        ),
    ),
    "offer_delisted": ("agency-a", dict(offer_id="offer-brokered", reason="sold elsewhere")),
    "trading_suspended": (
        "regulator",
        dict(suspension_id="susp-1", member_id="broker", until_ms=EXPIRY_MS, reason="misleading"),
    ),
    "order_placed": ("agency-b", dict(order_id="order-new", offer_id="offer-brokered")),
}


def valid(kind: str, author: str | None = None, **overrides: Any) -> SignedMaker:
    default_author, fields = VALID[kind]
    return lambda c: c.sign(author or default_author, kind, **{**fields, **overrides})


def event(author: str, kind: str, **fields: Any) -> SignedMaker:
    return lambda c: c.sign(author, kind, **fields)


# setups run on the scene before the event under test


def steps(*setups: Setup) -> Setup:
    def run(c: Consortium, s: MemoryState) -> None:
        for setup in setups:
            setup(c, s)

    return run


def suspend(member_id: str, until_ms: int = EXPIRY_MS, **record: Any) -> Setup:
    return lambda c, s: _do(
        c,
        s,
        "regulator",
        "trading_suspended",
        suspension_id=f"susp-{member_id}",
        member_id=member_id,
        until_ms=until_ms,
        reason="market abuse",
    )


def ruling_suspension(member_id: str, lifted: bool = False) -> Setup:
    """A suspension as a ruling's remedy writes it (another rule's record, planted)."""
    record = state_pb2.SuspensionRecord(
        member_id=member_id,
        suspension_id="case-7",
        until_ms=EXPIRY_MS,
        reason="ruled in case-7",
        regulator_id="regulator",
        case_id="case-7",
        lifted=lifted,
    )
    return lambda c, s: s.apply([Write("suspension", member_id, record)])


def ruling_delisting(offer_id: str) -> Setup:
    """An offer delisted by a ruling's remedy (another rule's record, planted)."""

    def plant(c: Consortium, s: MemoryState) -> None:
        record = state_pb2.OfferRecord()
        record.CopyFrom(s.load("offer", offer_id))
        record.status = state_pb2.OFFER_STATUS_DELISTED
        record.delisted_by = "regulator"
        s.apply([Write("offer", offer_id, record)])

    return plant


def revoke_mandate(mandate_id: str) -> Setup:
    return lambda c, s: _do(c, s, "agency-a", "mandate_revoked", mandate_id=mandate_id)


def delist(offer_id: str) -> Setup:
    return lambda c, s: _do(c, s, "agency-a", "offer_delisted", offer_id=offer_id)


def order(c: Consortium, s: MemoryState) -> None:
    _do(c, s, "agency-b", "order_placed", order_id="order-1", offer_id="offer-brokered")


def deliver(c: Consortium, s: MemoryState) -> None:
    order(c, s)
    _do(c, s, "agency-a", "order_delivered", order_id="order-1", delivery_digest=digest("d"))


def remove(member_id: str) -> Setup:
    """A member removed by governance (the whole consortium approves)."""
    change = ledger_pb2.GovernanceChange(
        proposal_nonce=900, member_removed=ledger_pb2.MemberRemoved(member_id=member_id)
    )
    approvers = [m for m in ROLES if m != member_id]
    return lambda c, s: c.apply(s, c.govern("agency-a", change, approvers), SETUP_TIME_MS)


# --- refusals -----------------------------------------------------------------------------


REFUSALS = [
    # broker_qualified
    reject(
        "qualify-by-agency",
        valid("broker_qualified", author="agency-a"),
        FORBIDDEN,
        "wrong_role",
        "qualifying a broker needs the regulator role",
    ),
    reject(
        "qualify-unknown-member",
        valid("broker_qualified", broker_id="nobody"),
        PRECONDITION,
        "unknown_member",
        "broker_id 'nobody' is not an active member",
    ),
    reject(
        "qualify-removed-broker",
        valid("broker_qualified"),
        PRECONDITION,
        "unknown_member",
        "broker_id 'broker-b'",
        setup=remove("broker-b"),
    ),
    reject(
        "qualify-non-broker",
        valid("broker_qualified", broker_id="agency-a"),
        FORBIDDEN,
        "not_a_broker",
        "'agency-a' does not have the broker role",
    ),
    reject(
        "qualify-already-expired",
        valid("broker_qualified", expires_at_ms=BLOCK_TIME_MS),
        PRECONDITION,
        "already_expired",
        "qualification's expiry is not after the block time",
    ),
    reject(
        "qualify-same-id-again",
        valid("broker_qualified", broker_id="broker", qualification_id="qual-1"),
        DUPLICATE,
        "qualification_exists",
        "'qual-1' of 'broker' is recorded",
    ),
    # mandate_granted
    reject(
        "mandate-by-regulator",
        valid("mandate_granted", author="regulator"),
        FORBIDDEN,
        "wrong_role",
        "mandating a broker needs the agency or exchange role",
    ),
    reject(
        "mandate-by-suspended-seller",
        valid("mandate_granted"),
        FORBIDDEN,
        "suspended",
        "'agency-b' is suspended from trading until",
        setup=suspend("agency-b"),
    ),
    reject(
        "mandate-to-unknown-member",
        valid("mandate_granted", broker_id="nobody"),
        PRECONDITION,
        "unknown_member",
        "broker_id 'nobody'",
    ),
    reject(
        "mandate-to-non-broker",
        valid("mandate_granted", broker_id="exchange"),
        FORBIDDEN,
        "not_a_broker",
        "'exchange' does not have the broker role",
    ),
    reject(
        "mandate-to-unqualified-broker",
        valid("mandate_granted", broker_id="broker-b"),
        FORBIDDEN,
        "not_qualified",
        "broker 'broker-b' has no regulator's qualification",
    ),
    reject(
        "mandate-to-broker-whose-qualification-expired",
        valid("mandate_granted"),
        FORBIDDEN,
        "qualification_expired",
        "qualification of broker 'broker' expired",
        time_ms=LATER_MS,
    ),
    reject(
        "mandate-for-unknown-asset",
        valid("mandate_granted", asset_ids=["asset-b", "asset-missing"]),
        PRECONDITION,
        "unknown_asset",
        "asset 'asset-missing' does not exist",
    ),
    reject(
        "mandate-for-another-members-asset",
        valid("mandate_granted", asset_ids=["asset-a"]),
        FORBIDDEN,
        "not_owner",
        "only the owner 'agency-a' may mandate a broker to list asset 'asset-a'",
    ),
    reject(
        "mandate-already-expired",
        valid("mandate_granted", expires_at_ms=BLOCK_TIME_MS),
        PRECONDITION,
        "already_expired",
        "mandate's expiry is not after the block time",
    ),
    reject(
        "mandate-id-taken",
        valid("mandate_granted", mandate_id="mandate-a"),
        DUPLICATE,
        "mandate_exists",
        "mandate 'mandate-a' already exists",
    ),
    # mandate_revoked
    reject(
        "revoke-unknown-mandate",
        valid("mandate_revoked", mandate_id="mandate-missing"),
        PRECONDITION,
        "unknown_mandate",
        "mandate 'mandate-missing' does not exist",
    ),
    reject(
        "revoke-by-the-broker",
        valid("mandate_revoked", author="broker"),
        FORBIDDEN,
        "not_seller",
        "only the seller who gave a mandate, or a regulator, revokes it",
    ),
    reject(
        "revoke-twice",
        valid("mandate_revoked"),
        PRECONDITION,
        "already_revoked",
        "mandate 'mandate-a' is revoked",
        setup=revoke_mandate("mandate-a"),
    ),
    # offer_listed by a broker
    reject(
        "broker-lists-while-suspended",
        valid("offer_listed"),
        FORBIDDEN,
        "suspended",
        "member 'broker' is suspended from trading until",
        setup=suspend("broker"),
    ),
    reject(
        "broker-lists-while-a-ruling-suspends-it",
        valid("offer_listed"),
        FORBIDDEN,
        "suspended",
        "by case 'case-7'",
        setup=ruling_suspension("broker"),
    ),
    reject(
        "broker-lists-for-a-suspended-seller",
        valid("offer_listed"),
        FORBIDDEN,
        "suspended",
        "member 'agency-a' is suspended",
        setup=suspend("agency-a"),
    ),
    reject(
        "broker-lists-naming-a-suspended-exchange",
        valid("offer_listed"),
        FORBIDDEN,
        "suspended",
        "member 'exchange' is suspended",
        setup=suspend("exchange"),
    ),
    reject(
        "broker-lists-without-a-mandate",
        valid("offer_listed", mandate_id="", exchange_id=""),
        FORBIDDEN,
        "no_mandate",
        "lists only under a seller's mandate",
    ),
    reject(
        "unqualified-broker-lists",
        valid("offer_listed", author="broker-b"),
        FORBIDDEN,
        "not_qualified",
        "broker 'broker-b' has no regulator's qualification",
    ),
    reject(
        "broker-lists-after-its-qualification-expired",
        valid("offer_listed"),
        FORBIDDEN,
        "qualification_expired",
        "qualification of broker 'broker' expired",
        time_ms=LATER_MS,
    ),
    reject(
        "broker-lists-under-an-unknown-mandate",
        valid("offer_listed", mandate_id="mandate-missing"),
        PRECONDITION,
        "unknown_mandate",
        "mandate 'mandate-missing' does not exist",
    ),
    reject(
        "broker-lists-under-a-revoked-mandate",
        valid("offer_listed"),
        FORBIDDEN,
        "mandate_revoked",
        "mandate 'mandate-a' was revoked",
        setup=revoke_mandate("mandate-a"),
    ),
    reject(
        "broker-lists-under-an-expired-mandate",
        valid("offer_listed"),
        FORBIDDEN,
        "mandate_expired",
        "mandate 'mandate-a' expired",
        setup=lambda c, s: _do(
            c,
            s,
            "regulator",
            "broker_qualified",
            qualification_id="qual-longer",
            broker_id="broker",
            expires_at_ms=LATER_MS + 1,
        ),
        time_ms=LATER_MS,
    ),
    reject(
        "broker-lists-for-another-seller",
        valid("offer_listed", seller_id="agency-b", asset_id="asset-b"),
        FORBIDDEN,
        "mandate_mismatch",
        "is from 'agency-a' to 'broker', not from 'agency-b' to 'broker'",
    ),
    reject(
        "broker-lists-an-asset-the-mandate-does-not-name",
        valid("offer_listed", asset_id="asset-a2"),
        FORBIDDEN,
        "mandate_scope",
        "mandate 'mandate-a' does not cover asset 'asset-a2'",
    ),
    reject(
        "broker-lists-below-the-floor",
        valid("offer_listed", price=99),
        FORBIDDEN,
        "below_price_floor",
        "price 99 is below the mandate's floor of 100",
    ),
    reject(
        "broker-names-an-unknown-exchange",
        valid("offer_listed", exchange_id="nobody"),
        PRECONDITION,
        "unknown_member",
        "exchange_id 'nobody'",
    ),
    reject(
        "broker-names-a-non-exchange",
        valid("offer_listed", exchange_id="agency-b"),
        FORBIDDEN,
        "not_an_exchange",
        "'agency-b' is not an exchange",
    ),
    reject(
        "broker-lists-an-asset-the-seller-no-longer-owns",
        valid("offer_listed", asset_id="asset-a2", mandate_id="mandate-all"),
        FORBIDDEN,
        "not_owner",
        "seller 'agency-a' does not own asset 'asset-a2'",
        setup=lambda c, s: _do(
            c, s, "agency-a", "asset_transferred", asset_id="asset-a2", new_owner_id="agency-b"
        ),
    ),
    reject(
        "broker-reuses-an-offer-id",
        valid("offer_listed", offer_id="offer-brokered"),
        DUPLICATE,
        "offer_exists",
        "offer 'offer-brokered' already exists",
    ),
    # offer_listed by an exchange
    reject(
        "exchange-lists-under-a-mandate",
        valid("offer_listed", author="exchange"),
        FORBIDDEN,
        "not_a_broker",
        "only a broker lists under a mandate",
    ),
    reject(
        "suspended-exchange-lists",
        valid("offer_listed", author="exchange", mandate_id="", exchange_id=""),
        FORBIDDEN,
        "suspended",
        "member 'exchange' is suspended",
        setup=suspend("exchange"),
    ),
    reject(
        "exchange-lists-for-a-suspended-seller",
        valid("offer_listed", author="exchange", mandate_id="", exchange_id=""),
        FORBIDDEN,
        "suspended",
        "member 'agency-a' is suspended",
        setup=suspend("agency-a"),
    ),
    # offer_delisted
    reject(
        "delist-unknown-offer",
        valid("offer_delisted", offer_id="offer-missing"),
        PRECONDITION,
        "unknown_offer",
        "offer 'offer-missing' does not exist",
    ),
    reject(
        "delist-by-a-stranger",
        valid("offer_delisted", author="agency-b"),
        FORBIDDEN,
        "not_lister",
        "only the seller 'agency-a', the lister 'broker' or a regulator delists",
    ),
    reject(
        "delist-by-the-settling-exchange-of-a-brokered-offer",
        valid("offer_delisted", author="exchange"),
        FORBIDDEN,
        "not_lister",
        "the lister 'broker'",
    ),
    reject(
        "delist-twice",
        valid("offer_delisted"),
        PRECONDITION,
        "already_delisted",
        "offer 'offer-brokered' is delisted",
        setup=delist("offer-brokered"),
    ),
    reject(
        "delist-what-a-ruling-delisted",
        valid("offer_delisted"),
        PRECONDITION,
        "already_delisted",
        "offer 'offer-brokered' is delisted",
        setup=ruling_delisting("offer-brokered"),
    ),
    # trading_suspended
    reject(
        "suspend-by-an-agency",
        valid("trading_suspended", author="agency-a"),
        FORBIDDEN,
        "wrong_role",
        "suspending a member from trading needs the regulator role",
    ),
    reject(
        "suspend-an-unknown-member",
        valid("trading_suspended", member_id="nobody"),
        PRECONDITION,
        "unknown_member",
        "member_id 'nobody' is not an active member",
    ),
    reject(
        "suspend-until-the-past",
        valid("trading_suspended", until_ms=BLOCK_TIME_MS),
        PRECONDITION,
        "already_expired",
        "suspension's end is not after the block time",
    ),
    # orders and the trade events of suspended members
    reject(
        "order-a-delisted-offer",
        valid("order_placed"),
        PRECONDITION,
        "offer_delisted",
        "offer 'offer-brokered' was delisted by 'agency-a'",
        setup=delist("offer-brokered"),
    ),
    reject(
        "order-an-offer-a-ruling-delisted",
        valid("order_placed"),
        PRECONDITION,
        "offer_delisted",
        "was delisted by 'regulator'",
        setup=ruling_delisting("offer-brokered"),
    ),
    reject(
        "order-under-a-revoked-mandate",
        valid("order_placed"),
        FORBIDDEN,
        "mandate_revoked",
        "mandate 'mandate-a' was revoked",
        setup=revoke_mandate("mandate-a"),
    ),
    reject(
        "order-under-an-expired-mandate",
        valid("order_placed"),
        FORBIDDEN,
        "mandate_expired",
        "mandate 'mandate-a' expired",
        time_ms=LATER_MS,
    ),
    reject(
        "suspended-buyer-orders",
        valid("order_placed"),
        FORBIDDEN,
        "suspended",
        "member 'agency-b' is suspended",
        setup=suspend("agency-b"),
    ),
    reject(
        "order-from-a-suspended-seller",
        valid("order_placed"),
        FORBIDDEN,
        "suspended",
        "member 'agency-a' is suspended",
        setup=suspend("agency-a"),
    ),
    reject(
        "suspended-seller-delivers",
        event("agency-a", "order_delivered", order_id="order-1", delivery_digest=digest("d")),
        FORBIDDEN,
        "suspended",
        "member 'agency-a' is suspended",
        setup=steps(order, suspend("agency-a")),
    ),
    reject(
        "suspended-exchange-settles",
        event("exchange", "order_settled", order_id="order-1"),
        FORBIDDEN,
        "suspended",
        "member 'exchange' is suspended",
        setup=steps(deliver, suspend("exchange")),
    ),
]


@pytest.mark.parametrize("case", REFUSALS)
def test_a_refusal_changes_nothing(case: Case, consortium: Consortium, state: MemoryState):
    if case.setup is not None:
        case.setup(consortium, state)
    signed = case.make(consortium)
    before = state.snapshot()
    with pytest.raises(Rejected) as raised:
        consortium.apply(state, signed, case.time_ms)
    assert (raised.value.code, raised.value.kind) == (case.code, case.kind), raised.value
    assert case.fragment in raised.value.reason, raised.value.reason
    assert state.snapshot() == before


def test_every_code_in_the_market_rules_is_covered():
    """Each code written literally in rules_market.py, and each the market added to
    rules_trade.py, has a refusal above."""
    source = Path(rules_market.__file__).read_text()
    written = set(re.findall(r'(?:invalid|forbidden|precondition|duplicate)\(\s*"(\w+)"', source))
    written |= {"offer_delisted", "not_a_broker"}  # rules_trade.py's market codes
    covered = {p.values[0].code for p in REFUSALS}
    assert len(written) >= 15, written
    assert written - covered == set()


# --- transitions --------------------------------------------------------------------------


def _load(state: MemoryState, kind: str, record_id: str) -> Any:
    record = state.load(kind, record_id)
    assert record is not None, f"no {kind} {record_id!r}"
    return record


def _apply(c: Consortium, s: MemoryState, kind: str, time_ms: int = BLOCK_TIME_MS, **kw: Any):
    signed = valid(kind, **kw)(c)
    return signed, c.apply(s, signed, time_ms)


@pytest.mark.parametrize("kind", sorted(VALID))
def test_every_market_kind_is_accepted(kind: str, consortium: Consortium, state: MemoryState):
    author = VALID[kind][0]
    before = state.snapshot()
    signed, writes = _apply(consortium, state, kind)
    nonce = consortium.decode(signed).event.nonce
    assert writes[-1] == Write(kind="nonce", record_id=author, nonce=nonce)
    assert len(writes) >= 2 and state.snapshot() != before


def test_a_regulator_qualifies_a_broker_and_requalifies_it(consortium, state):
    signed, _ = _apply(consortium, state, "broker_qualified")
    record = _load(state, "broker", "broker-b")
    assert (record.regulator_id, record.qualification.expires_at_ms) == ("regulator", EXPIRY_MS)
    assert record.event_id == consortium.decode(signed).event_id
    # The latest qualification stands, even a shorter one.
    _apply(
        consortium,
        state,
        "broker_qualified",
        qualification_id="qual-3",
        expires_at_ms=EXPIRY_MS - 1,
    )
    assert _load(state, "broker", "broker-b").qualification.qualification_id == "qual-3"


def test_a_mandate_is_granted_then_revoked_by_a_regulator(consortium, state):
    _apply(consortium, state, "mandate_granted")
    record = _load(state, "mandate", "mandate-b")
    assert (record.seller_id, record.mandate.broker_id, record.revoked) == (
        "agency-b",
        "broker",
        False,
    )
    _apply(consortium, state, "mandate_revoked", author="regulator", mandate_id="mandate-b")
    record = _load(state, "mandate", "mandate-b")
    assert record.revoked and record.revoked_at_ms == BLOCK_TIME_MS


def test_a_broker_lists_under_a_mandate_and_the_named_exchange_settles(consortium, state):
    offer = _load(state, "offer", "offer-brokered")
    assert (offer.broker_id, offer.exchange_id) == ("broker", "exchange")
    assert offer.status == state_pb2.OFFER_STATUS_LISTED
    # A mandate naming no asset covers every asset of the seller.
    _apply(
        consortium, state, "offer_listed", asset_id="asset-a2", mandate_id="mandate-all", price=1
    )
    assert _load(state, "offer", "offer-new").broker_id == "broker"
    # The trade goes through, settled by the exchange the broker named.
    deliver(consortium, state)
    consortium.apply(
        state, event("exchange", "order_settled", order_id="order-1")(consortium), BLOCK_TIME_MS
    )
    order_record = _load(state, "order", "order-1")
    assert (order_record.exchange_id, order_record.status) == (
        "exchange",
        state_pb2.ORDER_STATUS_SETTLED,
    )


def test_an_exchange_still_lists_without_the_sellers_mandate(consortium, state):
    offer = _load(state, "offer", "offer-direct")
    assert (offer.exchange_id, offer.broker_id, offer.status) == (
        "exchange",
        "",
        state_pb2.OFFER_STATUS_LISTED,
    )


@pytest.mark.parametrize("delister", ["agency-a", "broker", "regulator"])
def test_the_seller_the_lister_or_a_regulator_delists(delister, consortium, state):
    signed, _ = _apply(consortium, state, "offer_delisted", author=delister)
    record = _load(state, "offer", "offer-brokered")
    assert record.status == state_pb2.OFFER_STATUS_DELISTED
    assert (record.delisted_by, record.delisting_reason) == (delister, "sold elsewhere")
    assert record.delisted_event_id == consortium.decode(signed).event_id
    # Orders placed before go on: the delisting only stops new ones.


def test_an_order_placed_before_a_delisting_goes_on(consortium, state):
    order(consortium, state)
    delist("offer-brokered")(consortium, state)
    consortium.apply(
        state,
        event("agency-a", "order_delivered", order_id="order-1", delivery_digest=digest("x"))(
            consortium
        ),
        BLOCK_TIME_MS,
    )
    assert _load(state, "order", "order-1").status == state_pb2.ORDER_STATUS_DELIVERED


def test_a_suspended_member_may_still_delist(consortium, state):
    suspend("agency-a")(consortium, state)
    _apply(consortium, state, "offer_delisted")
    assert _load(state, "offer", "offer-brokered").status == state_pb2.OFFER_STATUS_DELISTED


def test_a_suspension_ends_at_its_time(consortium, state):
    suspend("agency-b", until_ms=BLOCK_TIME_MS + 5)(consortium, state)
    with pytest.raises(Rejected):
        consortium.apply(state, valid("order_placed")(consortium), BLOCK_TIME_MS + 4)
    consortium.apply(state, valid("order_placed")(consortium), BLOCK_TIME_MS + 5)
    assert _load(state, "order", "order-new").buyer_id == "agency-b"


def test_a_suspension_lifted_on_appeal_suspends_no_one(consortium, state):
    ruling_suspension("agency-b", lifted=True)(consortium, state)
    _apply(consortium, state, "order_placed")
    assert _load(state, "order", "order-new").buyer_id == "agency-b"


def test_the_suspension_that_ends_last_stands(consortium, state):
    _apply(consortium, state, "trading_suspended")
    record = _load(state, "suspension", "broker")
    assert (record.suspension_id, record.until_ms, record.regulator_id) == (
        "susp-1",
        EXPIRY_MS,
        "regulator",
    )
    # A shorter one commits (it is on record) but leaves the longer one in force.
    _, writes = _apply(
        consortium, state, "trading_suspended", suspension_id="susp-2", until_ms=EXPIRY_MS - 1
    )
    assert [w.kind for w in writes] == ["nonce"]
    assert _load(state, "suspension", "broker").suspension_id == "susp-1"
    # A longer one replaces it; so does any one once a ruling's suspension was lifted.
    _apply(consortium, state, "trading_suspended", suspension_id="susp-3", until_ms=EXPIRY_MS + 9)
    assert _load(state, "suspension", "broker").until_ms == EXPIRY_MS + 9
    ruling_suspension("broker", lifted=True)(consortium, state)
    _apply(consortium, state, "trading_suspended", suspension_id="susp-4", until_ms=EXPIRY_MS - 5)
    assert _load(state, "suspension", "broker").suspension_id == "susp-4"


def test_check_not_suspended_is_one_judgement_of_the_record():
    state = MemoryState()
    rules_market.check_not_suspended(state, "m", BLOCK_TIME_MS)  # no record: not suspended
    record = state_pb2.SuspensionRecord(member_id="m", until_ms=BLOCK_TIME_MS + 1, reason="r")
    state.apply([Write("suspension", "m", record)])
    with pytest.raises(Rejected) as raised:
        rules_market.check_not_suspended(state, "m", BLOCK_TIME_MS)
    assert (raised.value.code, raised.value.kind) == ("suspended", FORBIDDEN)
    assert str(BLOCK_TIME_MS + 1) in raised.value.reason and raised.value.reason.endswith(": r")
    rules_market.check_not_suspended(state, "m", BLOCK_TIME_MS + 1)  # ended


# --- what the market's events concern -------------------------------------------------------


def _concerns(state: MemoryState, kind: str, **fields: Any) -> concerns.Concerns:
    payload = getattr(ledger_pb2.Event(**{kind: fields}), kind)
    return concerns.concerns(kind, payload, state.load)


def test_the_market_events_concern_the_broker_the_seller_and_the_asset(state):
    qualified = _concerns(state, "broker_qualified", broker_id="broker")
    assert (qualified.assets, qualified.members) == ((), ("broker",))
    granted = _concerns(state, "mandate_granted", broker_id="broker", asset_ids=["asset-a"])
    assert (granted.assets, granted.members) == (("asset-a",), ("broker",))
    revoked = _concerns(state, "mandate_revoked", mandate_id="mandate-a")
    assert (revoked.assets, revoked.members) == (("asset-a",), ("agency-a", "broker"))
    listed = _concerns(
        state, "offer_listed", asset_id="asset-a", seller_id="agency-a", exchange_id="exchange"
    )
    assert (listed.assets, listed.members) == (("asset-a",), ("agency-a", "exchange"))
    delisted = _concerns(state, "offer_delisted", offer_id="offer-brokered")
    assert (delisted.assets, delisted.members) == (("asset-a",), ("agency-a", "broker", "exchange"))
    suspended = _concerns(state, "trading_suspended", member_id="agency-b")
    assert (suspended.assets, suspended.members) == ((), ("agency-b",))
    unknown = _concerns(state, "offer_delisted", offer_id="offer-missing")
    assert (unknown.assets, unknown.members) == ((), ())


def test_an_order_on_a_brokered_offer_concerns_the_broker(consortium, state):
    order(consortium, state)
    placed = _concerns(state, "order_placed", order_id="order-1", offer_id="offer-brokered")
    assert placed.members == ("agency-b", "agency-a", "exchange", "broker")
    record = _load(state, "order", "order-1")
    assert access.sees_order(state, access.Reader("broker", "member"), record)
    assert not access.sees_order(state, access.Reader("broker-b", "member"), record)

"""The valid seeds every fuzz target starts from: one consortium, one short story, and events,
blocks, tokens and bundles that are valid on it.

The story (seven blocks, by the deterministic consortium of tests/support/memory_state.py):
three registrations; a grant, a cross-border approval, a security assessment and a
certificate; a derivation under the grant and an offer; three orders; deliveries; a
settlement; a dispute. After it, `EVENT_SEEDS` holds one event of every kind (and governance
changes of every kind) that the rules accept on the story's state at `SEED_TIME_MS`: each
seed applied alone, to the same state.

`memory_world()` is the story in memory (a `MemoryState` and a `MemoryChainStore`);
`leveldb_world()` commits it into a real LevelDB `Store` in a temporary folder, removed at exit,
for the targets that read through the node (bundles, REST, gRPC). Both are built once per
process and never written to afterwards: every target checks that they did not change.
"""

from __future__ import annotations

import atexit
import copy
import shutil
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from google.protobuf.message import DecodeError
from sim.memory_store import MemoryChainStore
from support.memory_state import GENESIS_TIME_MS, Consortium, MemoryState, digest, signing_key

from provledger.protocol import blocks, crypto, events, rules
from provledger.protocol.events import DecodedEvent
from provledger.v1 import ledger_pb2

T = GENESIS_TIME_MS
BLOCK_INTERVAL_MS = 1_000
SEED_TIME_MS = T + 100_000  # block time of every seed, after the story
EXPIRY_MS = T + 10**9
IMPORTANT = ledger_pb2.CLASSIFICATION_IMPORTANT
GENERAL = ledger_pb2.CLASSIFICATION_GENERAL
READ = ledger_pb2.OPERATION_READ
COMPUTE = ledger_pb2.OPERATION_COMPUTE
DERIVE = ledger_pb2.OPERATION_DERIVE
SHARE = ledger_pb2.OPERATION_SHARE

# Every identifier the story uses: mutators draw from it so that changed fields often name
# something that exists.
VOCABULARY = (
    "raw-a", "raw-b", "raw-c", "fused", "g-1", "ap-1", "as-1", "cert-1", "offer-1", "order-1",
    "order-2", "order-3", "d-1", "agency-a", "agency-b", "exchange", "regulator", "auditor",
    "validator-0", "validator-1", "eu", "analytics", "CNY", "seed/new", "provledger-test",
)  # fmt: skip

Labelled = list[tuple[str, ledger_pb2.SignedEvent]]


def _story(c: Consortium) -> list[Labelled]:
    register, derive = "asset_registered", "asset_derived"
    return [
        [
            ("raw-a", c.sign("agency-a", register, asset_id="raw-a", content_digest=digest("a"),
                             classification=IMPORTANT, name="Raw A",
                             metadata={"source": "survey"})),
            ("raw-b", c.sign("agency-b", register, asset_id="raw-b", content_digest=digest("b"),
                             classification=GENERAL)),
            ("raw-c", c.sign("agency-a", register, asset_id="raw-c", content_digest=digest("c"),
                             classification=GENERAL)),
        ],
        [
            ("g-1", c.sign("agency-a", "grant_issued", grant_id="g-1", asset_id="raw-a",
                           grantee_id="agency-b", purposes=["analytics"],
                           operations=[READ, COMPUTE, DERIVE, SHARE], expires_at_ms=EXPIRY_MS)),
            ("ap-1", c.sign("regulator", "cross_border_approved", approval_id="ap-1",
                            asset_id="raw-a", recipient_id="agency-b", destination_region="eu",
                            expires_at_ms=EXPIRY_MS)),
            ("as-1", c.sign("regulator", "security_assessed", assessment_id="as-1",
                            asset_ids=["raw-a"], recipient_id="agency-b",
                            destination_region="eu", purposes=["analytics"],
                            expires_at_ms=EXPIRY_MS, report_digest=digest("assessment"))),
            ("cert-1", c.sign("regulator", "certificate_issued", certificate_id="cert-1",
                              asset_id="raw-a", scope="quality")),
        ],
        [
            ("fused", c.sign("agency-b", derive, asset_id="fused", parent_ids=["raw-a", "raw-b"],
                             grant_ids=["g-1"], activity="fusion", content_digest=digest("f"),
                             classification=IMPORTANT)),
            ("offer-1", c.sign("exchange", "offer_listed", offer_id="offer-1", asset_id="raw-a",
                               seller_id="agency-a", price=1_000, currency="CNY",
                               terms="one copy")),
        ],
        [
            ("order-1", c.sign("agency-b", "order_placed", order_id="order-1",
                               offer_id="offer-1")),
            ("order-2", c.sign("regulator", "order_placed", order_id="order-2",
                               offer_id="offer-1")),
            ("order-3", c.sign("agency-b", "order_placed", order_id="order-3",
                               offer_id="offer-1")),
        ],
        [
            ("delivered-1", c.sign("agency-a", "order_delivered", order_id="order-1",
                                   delivery_digest=digest("delivery 1"))),
            ("delivered-2", c.sign("agency-a", "order_delivered", order_id="order-2",
                                   delivery_digest=digest("delivery 2"))),
        ],
        [("settled-1", c.sign("exchange", "order_settled", order_id="order-1",
                              settlement_reference="bank-42"))],
        [("d-1", c.sign("agency-b", "dispute_opened", dispute_id="d-1", order_id="order-1",
                        reason="not as listed"))],
    ]  # fmt: skip


def _governance_seeds(c: Consortium) -> Labelled:
    approvers = ("agency-a", "agency-b", "exchange", "regulator")  # 4 of 5: a quorum
    agency_c = signing_key("agency-c")
    changes = {
        "member_added": ledger_pb2.GovernanceChange(
            proposal_nonce=1,
            member_added=ledger_pb2.MemberAdded(
                member_id="agency-c", name="C", role=ledger_pb2.ROLE_AGENCY,
                public_key=agency_c.public_key,
            ),
        ),
        "member_removed": ledger_pb2.GovernanceChange(
            proposal_nonce=2, member_removed=ledger_pb2.MemberRemoved(member_id="exchange")
        ),
        "key_rotated": ledger_pb2.GovernanceChange(
            proposal_nonce=3,
            key_rotated=ledger_pb2.KeyRotated(
                member_id="agency-b",
                new_public_key=signing_key("agency-b/2").public_key,
                retired_key_id=c["agency-b"].key.key_id,
            ),
        ),
        "role_changed": ledger_pb2.GovernanceChange(
            proposal_nonce=4,
            role_changed=ledger_pb2.RoleChanged(
                member_id="auditor", role=ledger_pb2.ROLE_REGULATOR
            ),
        ),
    }  # fmt: skip
    return [
        (f"governance/{name}", c.govern("regulator", change, approvers))
        for name, change in changes.items()
    ]


def _event_seeds(c: Consortium) -> Labelled:
    s = c.sign
    return [
        ("asset_registered", s("agency-b", "asset_registered", asset_id="seed/new",
                               content_digest=digest("new"), classification=GENERAL,
                               name="New", schema_uri="https://example.org/s",
                               metadata={"k": "v"})),
        ("asset_derived", s("agency-a", "asset_derived", asset_id="seed/derived",
                            parent_ids=["raw-a", "raw-c"], activity="cleaning",
                            content_digest=digest("derived"), classification=IMPORTANT)),
        ("asset_shared", s("agency-a", "asset_shared", asset_id="raw-a", recipient_id="agency-b",
                           destination_region="eu", assessment_id="as-1",
                           purpose="analytics")),
        ("asset_shared/grant", s("agency-b", "asset_shared", asset_id="raw-a",
                                 recipient_id="exchange", grant_id="g-1")),
        ("asset_transferred", s("agency-a", "asset_transferred", asset_id="raw-c",
                                new_owner_id="agency-b")),
        ("asset_used", s("agency-b", "asset_used", asset_id="raw-a", grant_id="g-1",
                         purpose="analytics", operation=READ)),
        ("certificate_issued", s("regulator", "certificate_issued", certificate_id="cert-2",
                                 asset_id="raw-b", scope="accuracy", expires_at_ms=EXPIRY_MS)),
        ("certificate_revoked", s("regulator", "certificate_revoked", certificate_id="cert-1",
                                  reason="superseded")),
        ("asset_retired", s("agency-a", "asset_retired", asset_id="raw-c", reason="old")),
        ("grant_issued", s("agency-b", "grant_issued", grant_id="g-2", asset_id="raw-b",
                           grantee_id="agency-a", purposes=["research", "audit"],
                           operations=[READ], expires_at_ms=EXPIRY_MS, no_cross_border=True)),
        ("grant_revoked", s("agency-a", "grant_revoked", grant_id="g-1", reason="ended")),
        ("cross_border_approved", s("regulator", "cross_border_approved", approval_id="ap-2",
                                    asset_id="fused", recipient_id="agency-a",
                                    destination_region="us", expires_at_ms=EXPIRY_MS)),
        ("offer_listed", s("exchange", "offer_listed", offer_id="offer-2", asset_id="raw-b",
                           seller_id="agency-b", price=5, currency="EUR")),
        ("order_placed", s("agency-b", "order_placed", order_id="order-4", offer_id="offer-1")),
        ("order_delivered", s("agency-a", "order_delivered", order_id="order-3",
                              delivery_digest=digest("delivery 3"))),
        ("order_settled", s("exchange", "order_settled", order_id="order-2",
                            settlement_reference="bank-43")),
        ("dispute_opened", s("regulator", "dispute_opened", dispute_id="d-2",
                             order_id="order-2", reason="late")),
        ("dispute_resolved", s("regulator", "dispute_resolved", dispute_id="d-1",
                               outcome=ledger_pb2.DISPUTE_OUTCOME_FOR_BUYER,
                               resolution="refund")),
        *_governance_seeds(c),
    ]  # fmt: skip


def story_time(index: int) -> int:
    """The block time of the story's block `index` (from 0)."""
    return T + BLOCK_INTERVAL_MS * (index + 1)


@dataclass(frozen=True)
class MemoryWorld:
    consortium: Consortium
    story: list[Labelled]
    state: MemoryState  # the state after the story (never written after building)
    chain: MemoryChainStore  # the story as blocks (never written after building)
    event_seeds: Labelled  # each valid on `state` at SEED_TIME_MS
    compatible_seeds: Labelled  # seeds that are valid together, in this order, in one block

    def fresh_state(self) -> MemoryState:
        """A copy of the story's state, for one example to change if it must."""
        state = MemoryState()
        state.records = copy.deepcopy(self.state.records)
        state.nonces = set(self.state.nonces)
        return state


# Seeds that all apply, in this order, in one block on the story's state.
COMPATIBLE = (
    "asset_registered", "asset_used", "certificate_issued", "grant_issued", "offer_listed",
    "order_placed", "order_delivered", "dispute_resolved", "cross_border_approved",
)  # fmt: skip


@cache
def memory_world() -> MemoryWorld:
    consortium = Consortium()
    story = _story(consortium)
    state = consortium.state()
    chain = MemoryChainStore(consortium.genesis)
    last_commit = None
    for index, block in enumerate(story):
        for _, signed in block:
            consortium.apply(state, signed, story_time(index))
        executed = blocks.execute_block(
            state=chain,
            log=chain.log,
            tip=chain.tip,
            chain_id=consortium.chain_id,
            candidates=[consortium.decode(s) for _, s in block],
            time_ms=story_time(index),
            proposer_id="validator-0",
            genesis_validators=consortium.genesis.validator_set,
            last_commit=last_commit,
            strict=True,
        )
        last_commit = consortium.certificate(executed)
        chain.commit_block(executed, last_commit)
    seeds = _event_seeds(consortium)
    by_label = dict(seeds)
    return MemoryWorld(
        consortium=consortium,
        story=story,
        state=state,
        chain=chain,
        event_seeds=seeds,
        compatible_seeds=[(label, by_label[label]) for label in COMPATIBLE],
    )


def decode_and_apply(state: MemoryState, signed: ledger_pb2.SignedEvent, time_ms: int) -> list:
    """Decode `signed` and run the rules over `state` (not applying the writes)."""
    decoded: DecodedEvent = events.decode(signed, memory_world().consortium.chain_id)
    return rules.apply_event(state, decoded, time_ms, height=1)


def resign(body: bytes) -> ledger_pb2.SignedEvent:
    """`body` signed by the key of the author it names (any member's key if it names none)."""
    consortium = memory_world().consortium
    event = ledger_pb2.Event()
    key = consortium["agency-a"].key
    try:
        event.ParseFromString(body)
    except DecodeError:
        return ledger_pb2.SignedEvent(body=body, signature=key.sign(b"", b""))
    member = consortium.members.get(event.author.member_id)
    if member is not None:
        key = member.key
    elif event.author.member_id:
        key = signing_key(event.author.member_id)
    return ledger_pb2.SignedEvent(body=body, signature=key.sign(crypto.DOMAIN_EVENT, body))


# --- the story in LevelDB ------------------------------------------------------------------


@dataclass(frozen=True)
class LevelDbWorld:
    consortium: Consortium
    store: object  # provledger.node.store.Store (imported lazily: the node is heavy)
    path: Path
    event_ids: dict[str, bytes]  # story label -> event id


@cache
def leveldb_world() -> LevelDbWorld:
    """The story committed into a real LevelDB store in a temporary folder."""
    from provledger.node.store import Store

    world = memory_world()
    consortium = world.consortium
    path = Path(tempfile.mkdtemp(prefix="provledger-fuzz-"))
    store = Store(path / "ledger", consortium.genesis)

    def close() -> None:
        store.close()
        shutil.rmtree(path, ignore_errors=True)

    atexit.register(close)
    for block, _ in world.chain.blocks:
        executed = blocks.validate_block(
            block=block,
            state=store,
            log=store.log,
            tip=store.tip,
            genesis=consortium.genesis,
            signatures_checked=lambda _: True,
        )
        _, certificate = world.chain.blocks[executed.header.height - 1]
        store.commit_block(executed, certificate)
    ids = {label: events.event_id(signed.body) for block in world.story for label, signed in block}
    return LevelDbWorld(consortium=consortium, store=store, path=path, event_ids=ids)

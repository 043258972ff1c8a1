"""The ledger application (protocol/application.py) and the node's one admission and commit
path over it (node/ledger.py).

Admission judges a client's event by every rule and a peer's by author, key, signature and
nonce only (ADR 008); a proposal leaves out what the rules now reject and reports it; the one
commit sequence writes through the caller's writer and forgets what the block made obsolete,
refuses a synced block whose certificate does not hold, and never overlaps. On the node, every
admission sends its signatures to the verifier, a waiter registered before admission is woken
by the commit, and a waiter whose event a proposal left out learns why. Everything runs in one
thread; the node's tests run its coroutines on a private event loop, with no timing involved.

The byte budget (ADR 011): a proposal fills a block up to `BLOCK_SIZE_BYTES_MAX` and leaves the
rest queued in order for the next blocks; a block of exactly the budget is valid and one byte
more is refused, proposed or synced with a quorum's certificate.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest
from sim.memory_store import MemoryChainStore
from support.memory_state import GENESIS_TIME_MS, Consortium, MemoryChain, digest, signing_key

from provledger.node.ledger import Committed, LedgerNode
from provledger.node.store import Store
from provledger.protocol import blocks, crypto
from provledger.protocol.application import (
    Admission,
    InvalidProposal,
    LedgerApplication,
    LeftOut,
    Origin,
    commit_now,
)
from provledger.protocol.errors import InvariantViolation, Rejected
from provledger.protocol.events import DecodedEvent, event_id
from provledger.protocol.limits import (
    BLOCK_SIZE_BYTES_MAX,
    METADATA_ENTRIES_MAX,
    TEXT_LENGTH_CHARS_MAX,
)
from provledger.protocol.votes import PREVOTE, make_evidence, sign_vote
from provledger.v1 import ledger_pb2

NOW_MS = GENESIS_TIME_MS + 1_000


@pytest.fixture
def consortium() -> Consortium:
    return Consortium()


def registration(consortium: Consortium, member: str, asset_id: str) -> ledger_pb2.SignedEvent:
    return consortium.sign(
        member,
        "asset_registered",
        asset_id=asset_id,
        content_digest=digest(asset_id),
        classification=ledger_pb2.CLASSIFICATION_GENERAL,
    )


def admit(
    app: LedgerApplication, events: Sequence[ledger_pb2.SignedEvent], origin: Origin
) -> list[Admission]:
    return app.admit(app.decode_all(events), NOW_MS, origin)


def certificate_for(
    consortium: Consortium, block: ledger_pb2.Block, signers: Sequence[str] | None = None
) -> ledger_pb2.CommitCertificate:
    """`block`'s commit certificate, signed by `signers` (default: every validator)."""
    header = blocks.decode_header(block.header)
    decided = SimpleNamespace(header=header, block_id=blocks.block_id(block.header))
    return consortium.certificate(decided, signers)


def written_to(store: MemoryChainStore):
    async def write(executed, certificate) -> None:
        store.commit_block(executed, certificate)

    return write


# --- admission ----------------------------------------------------------------------------


def test_a_clients_event_meets_every_rule_a_peers_only_author_key_signature_nonce(consortium):
    app = LedgerApplication(consortium.genesis, MemoryChainStore(consortium.genesis), "validator-0")
    by_auditor = registration(consortium, "auditor", "auditors-asset")  # wrong role

    [as_client] = admit(app, [by_auditor], Origin.CLIENT)
    assert isinstance(as_client, Rejected) and as_client.code == "wrong_role"
    assert len(app.mempool) == 0

    [as_peer] = admit(app, [by_auditor], Origin.PEER)
    assert isinstance(as_peer, DecodedEvent)
    assert as_peer.event_id in app.mempool

    forged = ledger_pb2.SignedEvent()
    forged.CopyFrom(registration(consortium, "agency-a", "forged"))
    forged.signature = bytes(64)
    for origin in Origin:
        [outcome] = admit(app, [forged], origin)
        assert isinstance(outcome, Rejected) and outcome.code == "bad_signature"
    [again] = admit(app, [by_auditor], Origin.PEER)
    assert isinstance(again, Rejected) and again.code == "duplicate_event"


def test_a_batch_gets_one_outcome_per_event_in_order(consortium):
    app = LedgerApplication(consortium.genesis, MemoryChainStore(consortium.genesis), "validator-0")
    good = registration(consortium, "agency-a", "first")
    malformed = ledger_pb2.SignedEvent(body=b"not an event", signature=bytes(64))
    second = registration(consortium, "agency-b", "second")

    outcomes = admit(app, [good, malformed, second, good], Origin.CLIENT)

    assert [type(o) for o in outcomes] == [DecodedEvent, Rejected, DecodedEvent, Rejected]
    assert [d.event_id for d in app.mempool.peek(10)] == [
        event_id(good.body),
        event_id(second.body),
    ]


def test_signature_checks_are_asked_once_and_only_for_known_keys(consortium):
    app = LedgerApplication(consortium.genesis, MemoryChainStore(consortium.genesis), "validator-0")
    known = registration(consortium, "agency-a", "known")
    unknown_key = consortium.sign(
        "agency-b",
        "asset_registered",
        key=signing_key("not-agency-b"),
        asset_id="unknown-key",
        content_digest=digest("unknown-key"),
        classification=ledger_pb2.CLASSIFICATION_GENERAL,
    )
    decoded = app.decode_all([known, unknown_key])

    checks = app.signature_checks(decoded)
    assert [event.event_id for event, _ in checks] == [event_id(known.body)]
    [(known_decoded, (public_key, message, signature))] = checks
    assert crypto.verify(public_key, b"", message, signature)

    app.mark_verified([known_decoded])
    assert app.signature_checks(decoded) == []
    [admitted, refused] = app.admit(decoded, NOW_MS, Origin.CLIENT)
    assert isinstance(admitted, DecodedEvent)
    assert isinstance(refused, Rejected) and refused.code == "unknown_key"


# --- proposals ----------------------------------------------------------------------------


def test_a_proposal_leaves_out_what_the_rules_now_reject_and_reports_it(consortium):
    app = LedgerApplication(consortium.genesis, MemoryChainStore(consortium.genesis), "validator-0")
    first = registration(consortium, "agency-a", "contested")
    second = registration(consortium, "agency-b", "contested")  # each valid alone
    assert all(isinstance(o, DecodedEvent) for o in admit(app, [first, second], Origin.CLIENT))

    block = app.propose(1, 0, NOW_MS)

    assert [event_id(e.body) for e in block.events] == [event_id(first.body)]
    [report] = app.take_reports()
    assert isinstance(report, LeftOut)
    assert report.event.event_id == event_id(second.body)
    assert report.rejection.code == "asset_exists"
    assert event_id(second.body) not in app.mempool
    assert app.take_reports() == []


def test_an_invalid_proposal_is_reported_with_its_reason(consortium):
    proposer = LedgerApplication(
        consortium.genesis, MemoryChainStore(consortium.genesis), "validator-1"
    )
    admit(proposer, [registration(consortium, "agency-a", "a")], Origin.CLIENT)
    block = proposer.propose(1, 0, NOW_MS)
    tampered = ledger_pb2.Block()
    tampered.CopyFrom(block)
    del tampered.events[:]
    validator = LedgerApplication(
        consortium.genesis, MemoryChainStore(consortium.genesis), "validator-0"
    )

    assert not validator.validate(tampered, NOW_MS)  # its header promises an event
    [report] = validator.take_reports()
    assert isinstance(report, InvalidProposal)
    assert report.block_id == blocks.block_id(tampered.header)
    assert report.rejection.code == "bad_block"

    assert validator.validate(block, NOW_MS)
    assert validator.take_reports() == []


# --- the byte budget (ADR 011) ------------------------------------------------------------

AUTHORS = ("agency-a", "agency-b", "exchange")  # the members who may register assets
PADDING_VALUE_CHARS = 800  # one metadata entry adds ~810 bytes, less than the name's range
NAME_CHARS_MIN = 128  # from here to TEXT_LENGTH_CHARS_MAX, a name's length prefix is 2 bytes


def padded_registration(
    consortium: Consortium, member: str, asset_id: str, entries: int, name_chars: int
) -> ledger_pb2.SignedEvent:
    """A legal registration whose size is set by its metadata `entries` of 800 characters
    and its name of `name_chars` characters (one more character, one more byte)."""
    return consortium.sign(
        member,
        "asset_registered",
        asset_id=asset_id,
        content_digest=digest(asset_id),
        classification=ledger_pb2.CLASSIFICATION_GENERAL,
        name="n" * name_chars,
        metadata={f"k{j:02d}": "v" * PADDING_VALUE_CHARS for j in range(entries)},
    )


def big_registrations(consortium: Consortium, label: str, count: int) -> list:
    """`count` registrations of ~26 KiB each, by the authors in turn."""
    return [
        padded_registration(
            consortium,
            AUTHORS[number % len(AUTHORS)],
            f"{label}/{number}",
            METADATA_ENTRIES_MAX,
            NAME_CHARS_MIN,
        )
        for number in range(count)
    ]


def block_of_exactly(consortium: Consortium, size_bytes: int) -> ledger_pb2.Block:
    """A valid first block of exactly `size_bytes` bytes, made by `execute_block` (which knows
    no budget, as a Byzantine proposer's code would not): big registrations, then one whose
    metadata and name make up the last bytes, one character per byte."""
    labels = itertools.count()

    def build(events: list) -> ledger_pb2.Block:
        executed = MemoryChain(consortium).execute(events, NOW_MS, proposer_id="validator-1")
        assert not executed.rejected
        return executed.to_block()

    def last(entries: int, name_chars: int) -> ledger_pb2.SignedEvent:
        number = next(labels)
        member = AUTHORS[number % len(AUTHORS)]
        return padded_registration(consortium, member, f"last/{number}", entries, name_chars)

    # Fill up to where a last event with metadata and name at their least can make up the rest.
    fill: list[ledger_pb2.SignedEvent] = []
    smallest_last = blocks.entry_size_bytes(last(0, NAME_CHARS_MIN))
    room = size_bytes - build([]).ByteSize() - smallest_last
    step = blocks.entry_size_bytes(last(1, NAME_CHARS_MIN)) - smallest_last
    while room > METADATA_ENTRIES_MAX * step:
        [event] = big_registrations(consortium, f"fill/{len(fill)}", 1)
        fill.append(event)
        room -= blocks.entry_size_bytes(event)
    entries = room // step
    name_chars = NAME_CHARS_MIN + room - entries * step
    for _ in range(8):  # the header's counts may take a byte more or less: settle it
        block = build([*fill, last(entries, name_chars)])
        if block.ByteSize() == size_bytes:
            return block
        name_chars += size_bytes - block.ByteSize()
        assert NAME_CHARS_MIN <= name_chars <= TEXT_LENGTH_CHARS_MAX
    raise AssertionError(f"no block of exactly {size_bytes} bytes")


def test_what_an_entry_adds_to_a_block_and_the_room_a_header_and_last_commit_take(consortium):
    event = registration(consortium, "agency-a", "sized")
    assert ledger_pb2.Block(events=[event]).ByteSize() == blocks.entry_size_bytes(event)
    a, b = (
        ledger_pb2.Vote(
            type=PREVOTE, height=1, round=0, block_id=digest(label), validator_id="validator-3"
        )
        for label in ("A", "B")
    )
    for vote in (a, b):
        vote.signature = sign_vote(
            consortium.validator_keys["validator-3"], consortium.chain_id, vote
        )
    evidence = make_evidence(a, b)
    assert ledger_pb2.Block(evidence=[evidence]).ByteSize() == blocks.entry_size_bytes(evidence)

    store = MemoryChainStore(consortium.genesis)
    app = LedgerApplication(consortium.genesis, store, "validator-1")
    first = app.propose(1, 0, NOW_MS)
    commit_now(app.commit(first, certificate_for(consortium, first), written_to(store)))
    second = app.propose(2, 0, NOW_MS)  # empty, with the first block's certificate
    assert second.ByteSize() <= blocks.size_before_events_bytes_max(
        consortium.chain_id, "validator-1", second.last_commit
    )


def test_a_proposal_fills_the_budget_and_the_rest_commits_next_in_order(consortium):
    store = MemoryChainStore(consortium.genesis)
    proposer = LedgerApplication(consortium.genesis, store, "validator-1")
    events = big_registrations(consortium, "queued", 300)  # ~2.5 budgets of ~26 KiB events
    assert all(isinstance(o, DecodedEvent) for o in admit(proposer, events, Origin.CLIENT))
    submitted = [event_id(e.body) for e in events]

    committed: list[bytes] = []
    for height in itertools.count(1):
        block = proposer.propose(height, 0, NOW_MS)
        in_block = [event_id(e.body) for e in block.events]
        assert block.ByteSize() <= BLOCK_SIZE_BYTES_MAX
        pending = [d.event_id for d in proposer.mempool.peek(len(submitted))]
        assert committed + pending == submitted  # nothing lost, nothing reordered
        assert pending[: len(in_block)] == in_block  # they leave the mempool when committed
        queued = pending[len(in_block) :]
        if queued:  # the block is full: the next event in line would not have fitted
            next_event = events[len(committed) + len(in_block)]
            assert block.ByteSize() + blocks.entry_size_bytes(next_event) > BLOCK_SIZE_BYTES_MAX
        assert proposer.take_reports() == []
        validator = LedgerApplication(consortium.genesis, store, "validator-0")
        assert validator.validate(block, NOW_MS)
        commit_now(proposer.commit(block, certificate_for(consortium, block), written_to(store)))
        committed += in_block
        if not queued:
            break
    assert committed == submitted and height == 3


@pytest.fixture(scope="module")
def budget_blocks() -> tuple[Consortium, ledger_pb2.Block, ledger_pb2.Block]:
    """A consortium, and a valid first block of exactly the budget and one of a byte more."""
    consortium = Consortium()
    at_budget = block_of_exactly(consortium, BLOCK_SIZE_BYTES_MAX)
    over_budget = block_of_exactly(consortium, BLOCK_SIZE_BYTES_MAX + 1)
    return consortium, at_budget, over_budget


def test_a_block_of_the_budget_is_valid_and_one_byte_more_is_refused(budget_blocks):
    consortium, at_budget, over_budget = budget_blocks
    validator = LedgerApplication(
        consortium.genesis, MemoryChainStore(consortium.genesis), "validator-0"
    )

    assert validator.validate(at_budget, NOW_MS)
    assert validator.take_reports() == []

    assert not validator.validate(over_budget, NOW_MS)
    [report] = validator.take_reports()
    assert isinstance(report, InvalidProposal)
    assert report.block_id == blocks.block_id(over_budget.header)
    assert report.rejection.code == "block_too_large"
    assert report.rejection.reason == (
        f"block is {BLOCK_SIZE_BYTES_MAX + 1} bytes; the limit is {BLOCK_SIZE_BYTES_MAX}"
    )


def test_a_synced_block_over_the_budget_is_refused_despite_a_quorum_certificate(budget_blocks):
    consortium, at_budget, over_budget = budget_blocks
    store = MemoryChainStore(consortium.genesis)
    app = LedgerApplication(consortium.genesis, store, "validator-0")

    with pytest.raises(Rejected) as refused:
        certificate = certificate_for(consortium, over_budget)
        commit_now(app.commit(over_budget, certificate, written_to(store), synced=True))
    assert refused.value.code == "block_too_large"
    assert store.head_height == 0

    certificate = certificate_for(consortium, at_budget)
    assert commit_now(app.commit(at_budget, certificate, written_to(store), synced=True))
    assert store.head_height == 1


# --- the one commit sequence ------------------------------------------------------------


def test_commit_writes_through_the_caller_and_forgets_what_the_block_made_obsolete(consortium):
    store = MemoryChainStore(consortium.genesis)
    app = LedgerApplication(consortium.genesis, store, "validator-0")
    event = registration(consortium, "agency-a", "a")
    admit(app, [event], Origin.CLIENT)
    block = app.propose(1, 0, NOW_MS)
    certificate = certificate_for(consortium, block)

    executed = commit_now(app.commit(block, certificate, written_to(store)))

    assert executed is not None and executed.header.height == 1
    assert store.head_height == 1 and store.has_event(event_id(event.body))
    assert len(app.mempool) == 0
    # the same height again: another path got there first, nothing is done
    assert commit_now(app.commit(block, certificate, written_to(store))) is None
    assert store.head_height == 1


def test_a_synced_block_commits_only_with_a_quorum_certificate(consortium):
    source = MemoryChainStore(consortium.genesis)
    proposer = LedgerApplication(consortium.genesis, source, "validator-1")
    admit(proposer, [registration(consortium, "agency-a", "a")], Origin.CLIENT)
    block = proposer.propose(1, 0, NOW_MS)
    store = MemoryChainStore(consortium.genesis)
    app = LedgerApplication(consortium.genesis, store, "validator-0")
    too_few = certificate_for(consortium, block, ["validator-0", "validator-1"])

    with pytest.raises(Rejected, match="quorum"):
        commit_now(app.commit(block, too_few, written_to(store), synced=True))
    assert store.head_height == 0

    full = certificate_for(consortium, block)
    executed = commit_now(app.commit(block, full, written_to(store), synced=True))
    assert executed is not None and store.head_height == 1


def test_commits_never_overlap(consortium):
    store = MemoryChainStore(consortium.genesis)
    app = LedgerApplication(consortium.genesis, store, "validator-0")
    block = app.propose(1, 0, NOW_MS)
    certificate = certificate_for(consortium, block)

    async def scenario() -> None:
        release = asyncio.Event()

        async def slow_write(executed, certificate) -> None:
            await release.wait()
            store.commit_block(executed, certificate)

        first = asyncio.create_task(app.commit(block, certificate, slow_write))
        await asyncio.sleep(0)  # the first commit is now inside its write
        with pytest.raises(InvariantViolation, match="overlap"):
            await app.commit(block, certificate, slow_write)
        release.set()
        assert (await first) is not None

    asyncio.run(scenario())
    assert store.head_height == 1


# --- the node: one admission path, waiters --------------------------------------------------


@dataclass
class RecordingVerifier:
    """Stands in for the SignatureVerifier's worker pool: checks inline, records each call."""

    calls: list[int] = field(default_factory=list)

    async def verify(self, checks) -> list[bool]:
        self.calls.append(len(checks))
        return [crypto.verify(key, b"", message, sig) for key, message, sig in checks]


@pytest.fixture
def node_parts(tmp_path, consortium):
    store = Store(tmp_path / "ledger", consortium.genesis)
    verifier = RecordingVerifier()
    yield store, verifier
    store.close()


def make_node(consortium, store, verifier) -> tuple[LedgerNode, list[tuple[int, Origin]]]:
    node = LedgerNode(consortium.genesis, store, "validator-0", verifier, lambda: NOW_MS)
    heard: list[tuple[int, Origin]] = []
    node.admission_listeners.append(lambda admitted, origin: heard.append((len(admitted), origin)))
    return node, heard


def test_every_admission_sends_its_signatures_to_the_verifier(consortium, node_parts):
    store, verifier = node_parts
    node, heard = make_node(consortium, store, verifier)
    batch = [registration(consortium, "agency-a", f"batch-{i}") for i in range(3)]
    gossiped = [registration(consortium, "agency-b", "gossiped")]

    async def scenario() -> None:
        [single] = await node.admit([registration(consortium, "agency-a", "one")], Origin.CLIENT)
        assert isinstance(single, DecodedEvent)
        outcomes = await node.admit(batch, Origin.CLIENT)
        assert all(isinstance(o, DecodedEvent) for o in outcomes)
        await node.admit(gossiped, Origin.PEER)
        await node.admit(gossiped, Origin.PEER)  # a duplicate: no new check, nothing heard

    asyncio.run(scenario())
    assert verifier.calls == [1, 3, 1]
    assert heard == [(1, Origin.CLIENT), (3, Origin.CLIENT), (1, Origin.PEER)]


def test_a_waiter_registered_before_admission_is_woken_by_the_commit(consortium, node_parts):
    store, verifier = node_parts
    node, _ = make_node(consortium, store, verifier)
    event = registration(consortium, "agency-a", "awaited")

    async def scenario() -> Committed:
        waiter = node.watch(event_id(event.body))
        [admitted] = await node.admit([event], Origin.CLIENT)
        assert isinstance(admitted, DecodedEvent)
        block = node.app.propose(1, 0, NOW_MS)
        assert await node.commit(block, certificate_for(consortium, block)) is not None
        assert waiter.done()
        node.unwatch(event_id(event.body), waiter)
        return waiter.result()

    assert asyncio.run(scenario()) == Committed(1)
    assert store.head_height == 1


def test_a_waiter_whose_event_a_proposal_left_out_learns_why(consortium, node_parts):
    store, verifier = node_parts
    node, _ = make_node(consortium, store, verifier)
    first = registration(consortium, "agency-a", "contested")
    second = registration(consortium, "agency-b", "contested")

    async def scenario() -> Committed:
        waiter = node.watch(event_id(second.body))
        await node.admit([first, second], Origin.CLIENT)
        node.app.propose(1, 0, NOW_MS)
        node.handle_reports()
        return await waiter

    outcome = asyncio.run(scenario())
    assert outcome.height == 0
    assert outcome.rejection is not None and outcome.rejection.code == "asset_exists"


def test_a_verified_signature_vouches_only_for_itself_not_for_its_event_id(consortium):
    """The event id covers the body, not the signature: once a valid copy was verified and
    then left the mempool, a copy with the same body and a forged signature must still be
    verified (else it could be admitted, and a proposal would put it on the ledger)."""
    app = LedgerApplication(consortium.genesis, MemoryChainStore(consortium.genesis), "validator-0")
    first = registration(consortium, "agency-a", "contested")
    second = registration(consortium, "agency-b", "contested")
    admit(app, [first, second], Origin.CLIENT)
    app.propose(1, 0, NOW_MS)  # leaves `second` out, its signature verified
    forged = ledger_pb2.SignedEvent(body=second.body, signature=bytes(64))

    for origin in Origin:
        [outcome] = admit(app, [forged], origin)
        assert isinstance(outcome, Rejected)
    assert app.signature_checks(app.decode_all([forged])) != []
    [as_peer] = admit(app, [forged], Origin.PEER)
    assert isinstance(as_peer, Rejected) and as_peer.code == "bad_signature"

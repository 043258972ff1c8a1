"""The consensus vote log: `Store.save_signed` / `load_signed` over a real LevelDB store.

A validator writes every vote and proposal it signs here (synced) before sending it, so that
after a restart it re-sends them instead of signing something conflicting (ADR 006, 6). The
log must give back exactly what was saved, in (height, round, type) order, from a height on;
it keeps a precommit's block so the lock can be re-taken; committing a block drops what is
no longer needed (everything at or below that height). The last test restarts a validator
from the log on disk and checks that it never signs twice.
"""

from __future__ import annotations

from contextlib import closing

import pytest
from support.consensus_inputs import make_block, sign_proposal, sign_vote_as
from support.memory_state import GENESIS_TIME_MS, Consortium, digest

from provledger.node.store import Store
from provledger.protocol import blocks, consensus
from provledger.protocol.application import LedgerApplication, Origin
from provledger.protocol.events import DecodedEvent
from provledger.protocol.votes import PRECOMMIT, PREVOTE
from provledger.v1 import ledger_pb2, peer_pb2

OTHERS = ("validator-1", "validator-2", "validator-3")


@pytest.fixture
def consortium() -> Consortium:
    return Consortium()


@pytest.fixture
def store(tmp_path, consortium):
    opened = Store(tmp_path / "ledger", consortium.genesis)
    yield opened
    opened.close()


def vote(consortium, vote_type, height, round_number, block, validator_id="validator-0"):
    return sign_vote_as(consortium, validator_id, vote_type, height, round_number, block)


def commit_empty_block(consortium: Consortium, store: Store, last_commit):
    """Execute an empty block on the store's tip and commit it with a full certificate."""
    executed = blocks.execute_block(
        state=store,
        log=store.log,
        tip=store.tip,
        chain_id=consortium.chain_id,
        candidates=[],
        time_ms=store.tip.time_ms + 1_000,
        proposer_id="validator-1",
        genesis_validators=consortium.genesis.validator_set,
        last_commit=last_commit,
        strict=True,
    )
    certificate = consortium.certificate(executed)
    store.commit_block(executed, certificate)
    return certificate


def heights(entries) -> list[int]:
    return [message.height for message, _ in entries]


def test_votes_and_proposals_round_trip_with_their_blocks(tmp_path, consortium):
    block = make_block(consortium.chain_id, 1, "A")
    proposal = sign_proposal(consortium, block, 0)
    prevote = vote(consortium, PREVOTE, 1, 0, block)
    precommit = vote(consortium, PRECOMMIT, 1, 0, block)
    nil_prevote = vote(consortium, PREVOTE, 1, 2, None)
    late_precommit = vote(consortium, PRECOMMIT, 1, 10, block)
    expected = [
        (proposal, None),
        (prevote, None),
        (precommit, block),
        (nil_prevote, None),
        (late_precommit, block),
    ]
    path = tmp_path / "ledger"
    with closing(Store(path, consortium.genesis)) as store:
        # saved out of order: the log reads back by (height, round, type), rounds numerically
        for message, saved_block in reversed(expected):
            store.save_signed(message, saved_block)
        loaded = store.load_signed(1)

    assert loaded == expected
    assert isinstance(loaded[0][0], peer_pb2.Proposal)
    assert all(isinstance(message, ledger_pb2.Vote) for message, _ in loaded[1:])
    # durable: the same after closing and opening the database again
    with closing(Store(path, consortium.genesis)) as store:
        assert store.load_signed(1) == expected


def test_load_signed_returns_the_entries_from_a_height_on(consortium, store):
    all_heights = [1, 2, 3, 255, 256, 70_000]
    for height in reversed(all_heights):
        store.save_signed(vote(consortium, PREVOTE, height, 0, None), None)

    assert heights(store.load_signed(0)) == all_heights
    assert heights(store.load_signed(1)) == all_heights
    assert heights(store.load_signed(3)) == [3, 255, 256, 70_000]
    assert heights(store.load_signed(256)) == [256, 70_000]
    assert store.load_signed(70_001) == []


def test_committing_a_block_prunes_the_entries_at_or_below_its_height(consortium, store):
    block_1 = make_block(consortium.chain_id, 1, "A")
    store.save_signed(vote(consortium, PREVOTE, 1, 0, block_1), None)
    store.save_signed(vote(consortium, PRECOMMIT, 1, 5, block_1), block_1)
    store.save_signed(vote(consortium, PREVOTE, 2, 0, None), None)
    store.save_signed(vote(consortium, PREVOTE, 3, 1, None), None)

    certificate = commit_empty_block(consortium, store, None)
    assert heights(store.load_signed(0)) == [2, 3]

    commit_empty_block(consortium, store, certificate)
    assert heights(store.load_signed(0)) == [3]
    assert store.head_height == 2


class LoggingValidator:
    """validator-0 as the consensus driver runs it: restored from the store's vote log when it
    starts, and every `Persist` saved there (synced) before the outputs after it."""

    def __init__(self, consortium: Consortium, store: Store) -> None:
        self.consortium = consortium
        self.store = store
        self.app = LedgerApplication(consortium.genesis, store, "validator-0")
        self.state = consensus.ConsensusState(
            chain_id=consortium.chain_id,
            validators=consortium.genesis.validator_set,
            key=consortium.validator_keys["validator-0"],
            validator_id="validator-0",
        )
        consensus.restore_signed(self.state, store.load_signed(store.head_height + 1))
        self.now_ms = GENESIS_TIME_MS + 1_000

    def feed(self, make_input) -> list[consensus.Output]:
        self.now_ms += 1
        self.state, outputs = consensus.step(self.state, make_input(self.now_ms), self.app)
        for output in outputs:
            if isinstance(output, consensus.Persist):
                self.store.save_signed(output.message, output.block)
        return outputs

    def receive(self, *messages) -> list[consensus.Output]:
        outputs: list[consensus.Output] = []
        for message in messages:
            if isinstance(message, peer_pb2.Proposal):
                outputs += self.feed(lambda now, m=message: consensus.ProposalReceived(m, now))
            else:
                outputs += self.feed(lambda now, m=message: consensus.VoteReceived(m, now))
        return outputs


def test_a_validator_restarted_from_the_log_resends_instead_of_signing_again(tmp_path, consortium):
    """validator-0 prevotes and precommits block A at (1, 0) and dies; restarted from the log
    on disk, it re-takes its lock, re-sends what it logged, and when a conflicting proposal B
    (from an equivocating proposer) and a quorum of nil prevotes would make it vote
    otherwise, it sends its logged votes again and signs nothing."""
    genesis = consortium.genesis
    path = tmp_path / "ledger"
    with closing(Store(path, genesis)) as store:
        # two real blocks for height 1 from validator-1's ledger: same event, another time
        proposer_app = LedgerApplication(genesis, store, "validator-1")
        event = consortium.sign(
            "agency-a",
            "asset_registered",
            asset_id="asset-1",
            content_digest=digest("asset-1"),
            classification=ledger_pb2.CLASSIFICATION_GENERAL,
        )
        [admitted] = proposer_app.admit(
            proposer_app.decode_all([event]), GENESIS_TIME_MS, Origin.CLIENT
        )
        assert isinstance(admitted, DecodedEvent)
        block_a = proposer_app.propose(1, 0, GENESIS_TIME_MS + 1_000)
        block_b = proposer_app.propose(1, 0, GENESIS_TIME_MS + 1_001)
        assert blocks.block_id(block_a.header) != blocks.block_id(block_b.header)

        validator = LoggingValidator(consortium, store)
        validator.feed(lambda now: consensus.StartHeight(1, now))
        validator.receive(
            sign_proposal(consortium, block_a, 0),
            vote(consortium, PREVOTE, 1, 0, block_a, "validator-1"),
            vote(consortium, PREVOTE, 1, 0, block_a, "validator-2"),
        )
        prevote_a = vote(consortium, PREVOTE, 1, 0, block_a)
        precommit_a = vote(consortium, PRECOMMIT, 1, 0, block_a)
        logged = store.load_signed(1)
        assert logged == [(prevote_a, None), (precommit_a, block_a)]

    with closing(Store(path, genesis)) as store:
        validator = LoggingValidator(consortium, store)
        outputs = validator.feed(lambda now: consensus.StartHeight(1, now))
        state = validator.state
        assert (state.locked_round, state.locked_block) == (0, block_a)  # from the precommit
        # sent before the crash or not, what was logged goes out again
        outputs += validator.feed(consensus.Rebroadcast)
        outputs += validator.receive(
            sign_proposal(consortium, block_b, 0),  # lines 22-27 would prevote (nil)
            *[vote(consortium, PREVOTE, 1, 0, None, v) for v in OTHERS],  # 44-46: precommit nil
        )

        assert [o for o in outputs if isinstance(o, consensus.Persist)] == []
        own = [
            o.message
            for o in outputs
            if isinstance(o, consensus.Broadcast)
            and isinstance(o.message, ledger_pb2.Vote)
            and o.message.validator_id == "validator-0"
        ]
        assert own == [prevote_a, precommit_a, prevote_a, precommit_a]
        assert store.load_signed(1) == logged

"""Unit tests of protocol/consensus.py, one rule of Algorithm 1 at a time.

The deterministic simulator (tests/sim) runs whole consortia through drops, partitions,
crashes and equivocators; these tests instead drive ONE validator's `consensus.step` with
hand-made inputs (signed with the test consortium's keys) and check what it does against
each rule of Buchman, Kwon and Milosevic, "The latest gossip on BFT consensus"
(arXiv:1807.04938), Algorithm 1; line numbers refer to it.

Unless a test says otherwise the validator under test is validator-0 of four (f = 1, a
quorum is three), at height 1, where the proposers of rounds 0, 1, 2, 3 are validator-1,
validator-2, validator-3 and validator-0. Timeouts use distinct base values so that a
mix-up between kinds shows.
"""

from __future__ import annotations

import pytest
from support.consensus_inputs import (
    FakeApplication,
    block_id_of,
    make_block,
    sign_proposal,
    sign_vote_as,
)
from support.memory_state import GENESIS_TIME_MS, VALIDATOR_IDS, Consortium

from provledger.protocol import blocks, consensus
from provledger.protocol.consensus import (
    NIL,
    Broadcast,
    Decide,
    EvidenceFound,
    Persist,
    ScheduleTimeout,
    Step,
    Timeout,
)
from provledger.protocol.errors import InvariantViolation
from provledger.protocol.limits import BLOCK_SIZE_BYTES_MAX, FUTURE_MESSAGES_MAX
from provledger.protocol.votes import PRECOMMIT, PREVOTE, make_evidence, verify_evidence
from provledger.v1 import ledger_pb2, peer_pb2

PARAMS = consensus.Params(
    propose_timeout_ms=3_000,
    prevote_timeout_ms=1_000,
    precommit_timeout_ms=1_200,
    timeout_delta_ms=500,
    empty_block_wait_ms=700,
)
OTHERS = ("validator-1", "validator-2", "validator-3")


class Validator:
    """One validator's consensus state, fed by hand; the clock advances 1 ms per input."""

    def __init__(
        self,
        validator_id: str = "validator-0",
        consortium: Consortium | None = None,
        *,
        pending: bool = True,
    ) -> None:
        self.consortium = consortium or Consortium()
        self.validator_id = validator_id
        self.app = FakeApplication(
            self.consortium.chain_id, self.consortium.genesis.validator_set, pending=pending
        )
        self.state = consensus.ConsensusState(
            chain_id=self.consortium.chain_id,
            validators=self.consortium.genesis.validator_set,
            key=self.consortium.validator_keys[validator_id],
            validator_id=validator_id,
            params=PARAMS,
        )
        self.now_ms = GENESIS_TIME_MS

    # --- inputs ---------------------------------------------------------------------------

    def step(self, make_input) -> list[consensus.Output]:
        self.now_ms += 1
        self.state, outputs = consensus.step(self.state, make_input(self.now_ms), self.app)
        return outputs

    def start(self, height: int = 1) -> list[consensus.Output]:
        return self.step(lambda now: consensus.StartHeight(height, now))

    def receive(self, *messages: peer_pb2.Proposal | ledger_pb2.Vote) -> list[consensus.Output]:
        outputs: list[consensus.Output] = []
        for message in messages:
            if isinstance(message, peer_pb2.Proposal):
                outputs += self.step(lambda now, m=message: consensus.ProposalReceived(m, now))
            else:
                outputs += self.step(lambda now, m=message: consensus.VoteReceived(m, now))
        return outputs

    def fire(
        self, kind: Timeout, round_number: int | None = None, height: int | None = None
    ) -> list[consensus.Output]:
        """The timer `kind` fires; by default for the current height and round."""
        height = self.state.height if height is None else height
        round_number = self.state.round if round_number is None else round_number
        return self.step(lambda now: consensus.TimeoutFired(kind, height, round_number, now))

    def events_available(self) -> list[consensus.Output]:
        return self.step(consensus.EventsAvailable)

    def rebroadcast(self) -> list[consensus.Output]:
        return self.step(consensus.Rebroadcast)

    def skip_round(self) -> list[consensus.Output]:
        """Let every timeout of the current round fire: prevote nil, precommit nil (when not
        already voted) and on to the next round."""
        round_number = self.state.round
        outputs = self.fire(Timeout.PROPOSE) + self.fire(Timeout.PREVOTE)
        outputs += self.fire(Timeout.PRECOMMIT)
        assert self.state.round == round_number + 1
        return outputs

    # --- messages -------------------------------------------------------------------------

    def block(self, label: str, height: int = 1) -> ledger_pb2.Block:
        return make_block(self.consortium.chain_id, height, label)

    def proposal(self, block: ledger_pb2.Block, round_number: int, pol_round: int = -1, **kw):
        return sign_proposal(self.consortium, block, round_number, pol_round, **kw)

    def prevote(self, validator_id: str, round_number: int, block, height: int = 1):
        return sign_vote_as(self.consortium, validator_id, PREVOTE, height, round_number, block)

    def precommit(self, validator_id: str, round_number: int, block, height: int = 1):
        return sign_vote_as(self.consortium, validator_id, PRECOMMIT, height, round_number, block)

    def lock_in_round_0(self, block: ledger_pb2.Block) -> list[consensus.Output]:
        """Lines 22-27 and 36-43 at round 0: prevote `block`, see a quorum for it, lock on it
        and precommit it."""
        height = self.state.height
        outputs = self.receive(self.proposal(block, 0))
        outputs += self.receive(
            *[self.prevote(v, 0, block, height=height) for v in ("validator-1", "validator-2")]
        )
        assert (self.state.locked_round, self.state.locked_block) == (0, block)
        return outputs


# --- reading outputs ---------------------------------------------------------------------


def signed_votes(outputs: list[consensus.Output]) -> list[tuple[int, int, bytes]]:
    """(type, round, block id) of every vote newly signed (persisted) in `outputs`."""
    return [
        (o.message.type, o.message.round, o.message.block_id)
        for o in outputs
        if isinstance(o, Persist) and isinstance(o.message, ledger_pb2.Vote)
    ]


def persisted(outputs: list[consensus.Output]) -> list[ledger_pb2.Vote | peer_pb2.Proposal]:
    return [o.message for o in outputs if isinstance(o, Persist)]


def broadcast(outputs: list[consensus.Output]) -> list:
    return [o.message for o in outputs if isinstance(o, Broadcast)]


def scheduled(outputs: list[consensus.Output]) -> list[ScheduleTimeout]:
    return [o for o in outputs if isinstance(o, ScheduleTimeout)]


def decisions(outputs: list[consensus.Output]) -> list[Decide]:
    return [o for o in outputs if isinstance(o, Decide)]


def encoded(message) -> bytes:
    return message.SerializeToString(deterministic=True)


def assert_persisted_before_broadcast(outputs: list[consensus.Output], validator_id: str) -> None:
    """Every own vote or proposal is broadcast only after it was persisted."""
    persisted_so_far: set[bytes] = set()
    for output in outputs:
        if isinstance(output, Persist):
            persisted_so_far.add(encoded(output.message))
        elif isinstance(output, Broadcast):
            message = output.message
            own = (
                isinstance(message, ledger_pb2.Vote) and message.validator_id == validator_id
            ) or (isinstance(message, peer_pb2.Proposal) and message.proposer_id == validator_id)
            if own:
                assert encoded(message) in persisted_so_far


# --- a consortium of one -----------------------------------------------------------------


def test_a_consortium_of_one_decides_its_own_proposal_in_a_single_step():
    # n = 1: f = 0 and a quorum is one vote, so StartHeight runs lines 11-19 (propose),
    # 22-27 (prevote), 34-35, 36-43 (lock, precommit) and 49-54 (decide) in one step.
    consortium = Consortium(validator_ids=("validator-0",))
    validator = Validator("validator-0", consortium)

    outputs = validator.start(1)

    assert validator.app.proposed == [(1, 0)]
    assert [type(o) for o in outputs] == [
        Persist,  # the proposal
        Broadcast,
        Persist,  # the prevote
        Broadcast,
        ScheduleTimeout,  # lines 34-35: the prevote quorum is there
        Persist,  # the precommit, with its block
        Broadcast,
        Decide,
    ]
    assert_persisted_before_broadcast(outputs, "validator-0")
    proposal, _, precommit = persisted(outputs)
    assert isinstance(proposal, peer_pb2.Proposal)
    block_id = blocks.block_id(proposal.block.header)
    assert signed_votes(outputs) == [(PREVOTE, 0, block_id), (PRECOMMIT, 0, block_id)]
    assert outputs[5].block == proposal.block
    (decision,) = decisions(outputs)
    assert (decision.block, decision.block_id) == (proposal.block, block_id)
    blocks.verify_commit_signatures(
        decision.certificate, consortium.chain_id, 1, block_id, consortium.genesis.validator_set
    )
    assert [s.signature for s in decision.certificate.signatures] == [precommit.signature]
    assert validator.state.step == Step.COMMITTED


# --- proposals ---------------------------------------------------------------------------


def test_the_proposer_rotates_with_height_and_round():
    # Algorithm 1 leaves proposer(h, r) to the application; here it is validators in id order,
    # starting at (h + r) mod n.
    validators = Consortium().genesis.validator_set
    ids = VALIDATOR_IDS
    assert [consensus.proposer(validators, 1, r) for r in range(6)] == [
        ids[1],
        ids[2],
        ids[3],
        ids[0],
        ids[1],
        ids[2],
    ]
    assert [consensus.proposer(validators, h, 0) for h in range(1, 6)] == [
        ids[1],
        ids[2],
        ids[3],
        ids[0],
        ids[1],
    ]


@pytest.mark.parametrize("validator_id", VALIDATOR_IDS)
def test_only_the_proposer_of_the_round_proposes(validator_id):
    # Lines 11-21: StartRound proposes when proposer(h, r) = p, else schedules OnTimeoutPropose.
    for round_number in range(4):
        validator = Validator(validator_id)
        outputs = validator.start(1)
        for _ in range(round_number):
            outputs = validator.skip_round()
        proposals = [m for m in persisted(outputs) if isinstance(m, peer_pb2.Proposal)]
        proposer = consensus.proposer(validator.state.validators, 1, round_number)
        if validator_id == proposer:
            assert [(p.height, p.round, p.proposer_id) for p in proposals] == [
                (1, round_number, validator_id)
            ]
        else:
            assert proposals == []
            assert scheduled(outputs)[-1] == ScheduleTimeout(
                Timeout.PROPOSE, 1, round_number, 3_000 + 500 * round_number
            )


@pytest.mark.parametrize(
    "case",
    [
        "not the proposer of the round",
        "signed with another key",
        "signature over another pol_round",
        "pol_round equal to the round",
        "pol_round above the round",
        "block header of another height",
    ],
)
def test_a_proposal_that_breaks_the_rules_is_ignored(case):
    # Line 22 accepts only a PROPOSAL from proposer(h_p, round_p), validly signed, with
    # -1 <= vr < round; its value must be a block of height h_p.
    validator = Validator()
    validator.start(1)
    consortium = validator.consortium
    block = validator.block("A")
    if case == "not the proposer of the round":
        proposal = validator.proposal(block, 0, proposer_id="validator-2")
    elif case == "signed with another key":
        proposal = validator.proposal(block, 0, key=consortium.validator_keys["validator-2"])
    elif case == "signature over another pol_round":
        proposal = validator.proposal(block, 1)  # validator-2's, signed with pol_round -1
        proposal.pol_round = 0
    elif case == "pol_round equal to the round":
        proposal = validator.proposal(block, 0, pol_round=0)
    elif case == "pol_round above the round":
        proposal = validator.proposal(block, 0, pol_round=3)
    else:
        proposal = validator.proposal(validator.block("A", height=2), 0, height=1)

    assert validator.receive(proposal) == []
    assert validator.state.proposals == {}
    assert validator.app.validated == []
    # the round goes on as if nothing came: the propose timeout prevotes nil
    assert signed_votes(validator.fire(Timeout.PROPOSE)) == [(PREVOTE, 0, NIL)]


def test_a_later_round_proposal_is_kept_for_its_round():
    # Lines 28 and 55 need proposals of rounds other than round_p, so a valid one is kept.
    validator = Validator()
    validator.start(1)
    proposal = validator.proposal(validator.block("A"), 2)
    assert validator.receive(proposal) == []
    assert list(validator.state.proposals) == [2]


# --- lines 22-27: prevote on a fresh proposal --------------------------------------------


def test_lines_22_27_an_unlocked_validator_prevotes_a_valid_proposal():
    validator = Validator()
    validator.start(1)
    block = validator.block("A")
    outputs = validator.receive(validator.proposal(block, 0))
    assert signed_votes(outputs) == [(PREVOTE, 0, block_id_of(block))]
    assert validator.app.validated == [block_id_of(block)]
    assert validator.state.step == Step.PREVOTE
    assert_persisted_before_broadcast(outputs, "validator-0")


def test_lines_22_27_a_proposal_the_application_finds_invalid_is_prevoted_nil():
    validator = Validator()
    validator.start(1)
    block = validator.block("A")
    validator.app.invalid.add(block_id_of(block))
    outputs = validator.receive(validator.proposal(block, 0))
    assert signed_votes(outputs) == [(PREVOTE, 0, NIL)]
    assert validator.state.step == Step.PREVOTE


@pytest.mark.parametrize("proposed", ["the locked block", "another block"])
def test_lines_22_27_a_locked_validator_prevotes_only_its_locked_block(proposed):
    validator = Validator()
    validator.start(1)
    locked, other = validator.block("A"), validator.block("B")
    validator.lock_in_round_0(locked)
    validator.fire(Timeout.PRECOMMIT)  # round 1, proposer validator-2

    block = locked if proposed == "the locked block" else other
    outputs = validator.receive(validator.proposal(block, 1))

    expected = block_id_of(locked) if block is locked else NIL
    assert signed_votes(outputs) == [(PREVOTE, 1, expected)]
    assert validator.state.locked_round == 0


# --- lines 28-33: prevote on a re-proposal with a proof of lock --------------------------


def reach_round_2_with_prevotes_at_round_1(validator, block, voters):
    """Lock on A at round 0; at round 1 `voters` prevote `block` (this validator, having no
    round-1 proposal, times out to nil); then on to round 2 (proposer validator-3)."""
    validator.start(1)
    validator.lock_in_round_0(validator.block("A"))
    validator.fire(Timeout.PRECOMMIT)
    validator.receive(*[validator.prevote(v, 1, block) for v in voters])
    validator.skip_round()
    assert (validator.state.round, validator.state.locked_round) == (2, 0)


def test_lines_28_33_a_reproposal_with_a_quorum_at_its_pol_round_is_prevoted_despite_a_lock():
    validator = Validator()
    block = validator.block("B")
    reach_round_2_with_prevotes_at_round_1(validator, block, OTHERS)
    outputs = validator.receive(validator.proposal(block, 2, pol_round=1))
    # lockedRound (0) <= vr (1): the quorum at vr overrides the lock on A
    assert signed_votes(outputs) == [(PREVOTE, 2, block_id_of(block))]


def test_lines_28_33_a_reproposal_without_a_quorum_at_its_pol_round_waits():
    validator = Validator()
    block = validator.block("B")
    reach_round_2_with_prevotes_at_round_1(validator, block, OTHERS[:2])
    assert validator.receive(validator.proposal(block, 2, pol_round=1)) == []
    assert validator.state.step == Step.PROPOSE
    assert signed_votes(validator.fire(Timeout.PROPOSE)) == [(PREVOTE, 2, NIL)]


def test_lines_28_33_a_lock_in_the_pol_round_itself_gives_way_to_the_reproposal():
    # lockedRound <= vr, boundary included. Two quorums in one round take more than f
    # equivocators (validator-1 and validator-3 here), but the rule is the rule.
    validator = Validator()
    validator.start(1)
    a, b = validator.block("A"), validator.block("B")
    validator.skip_round()
    validator.receive(validator.proposal(a, 1))
    validator.receive(
        validator.prevote("validator-1", 1, a), validator.prevote("validator-3", 1, a)
    )
    assert (validator.state.locked_round, validator.state.locked_block) == (1, a)
    validator.receive(*[validator.prevote(v, 1, b) for v in OTHERS])
    validator.fire(Timeout.PRECOMMIT)
    outputs = validator.receive(validator.proposal(b, 2, pol_round=1))
    assert signed_votes(outputs) == [(PREVOTE, 2, block_id_of(b))]


def test_lines_28_33_a_lock_later_than_pol_round_on_another_block_prevotes_nil():
    validator = Validator()
    validator.start(1)
    a, b = validator.block("A"), validator.block("B")
    # round 0: B gets a prevote quorum this validator never saw the proposal for
    validator.fire(Timeout.PROPOSE)
    validator.receive(*[validator.prevote(v, 0, b) for v in OTHERS])
    validator.fire(Timeout.PREVOTE)
    validator.fire(Timeout.PRECOMMIT)
    # round 1: lock on A
    validator.receive(validator.proposal(a, 1))
    validator.receive(
        validator.prevote("validator-1", 1, a), validator.prevote("validator-3", 1, a)
    )
    assert validator.state.locked_round == 1
    validator.fire(Timeout.PRECOMMIT)
    # round 2: B again, justified by round 0 < lockedRound
    outputs = validator.receive(validator.proposal(b, 2, pol_round=0))
    assert signed_votes(outputs) == [(PREVOTE, 2, NIL)]


# --- lines 34-35 and 47-48: the prevote and precommit timeouts ---------------------------


@pytest.mark.parametrize("round_number", [0, 1, 2])
def test_lines_34_35_the_prevote_timeout_is_scheduled_once_on_the_first_quorum_of_any_prevotes(
    round_number,
):
    validator = Validator()
    validator.start(1)
    for _ in range(round_number):
        validator.skip_round()
    a, b = validator.block("A"), validator.block("B")
    # a quorum of prevotes exists only with this validator's own: before it prevotes (step
    # propose) nothing is scheduled
    early = validator.receive(
        validator.prevote("validator-1", round_number, None),
        validator.prevote("validator-2", round_number, a),
    )
    assert scheduled(early) == []
    outputs = validator.fire(Timeout.PROPOSE)  # prevote nil: three prevotes, no two alike
    assert signed_votes(outputs) == [(PREVOTE, round_number, NIL)]
    assert scheduled(outputs) == [
        ScheduleTimeout(Timeout.PREVOTE, 1, round_number, 1_000 + 500 * round_number)
    ]
    assert scheduled(validator.receive(validator.prevote("validator-3", round_number, b))) == []


@pytest.mark.parametrize("round_number", [0, 1, 2])
def test_lines_47_48_the_precommit_timeout_is_scheduled_once_on_the_first_quorum_of_any_precommits(
    round_number,
):
    validator = Validator()
    validator.start(1)
    for _ in range(round_number):
        validator.skip_round()
    a, b = validator.block("A"), validator.block("B")
    # in any step (here still propose); no two alike, and no proposal: nothing is decided
    outputs = validator.receive(
        validator.precommit("validator-1", round_number, None),
        validator.precommit("validator-2", round_number, a),
    )
    assert scheduled(outputs) == []
    outputs = validator.receive(validator.precommit("validator-3", round_number, b))
    assert outputs == [
        ScheduleTimeout(Timeout.PRECOMMIT, 1, round_number, 1_200 + 500 * round_number)
    ]
    # this validator's own precommit (the fourth) schedules nothing more
    outputs = validator.fire(Timeout.PROPOSE) + validator.fire(Timeout.PREVOTE)
    assert signed_votes(outputs) == [(PREVOTE, round_number, NIL), (PRECOMMIT, round_number, NIL)]
    assert scheduled(outputs) == []


def test_timeouts_grow_with_the_round_except_the_empty_block_wait():
    validator = Validator()
    delays = [scheduled(validator.start(1))[-1].delay_ms]
    for _ in range(2):
        delays.append(scheduled(validator.skip_round())[-1].delay_ms)
    assert delays == [3_000, 3_500, 4_000]
    assert [PARAMS.timeout_ms(Timeout.PRECOMMIT, r) for r in range(3)] == [1_200, 1_700, 2_200]
    assert [PARAMS.timeout_ms(Timeout.EMPTY_BLOCK, r) for r in range(3)] == [700, 700, 700]


# --- lines 36-46: precommit --------------------------------------------------------------


def test_lines_36_43_a_prevote_quorum_for_the_proposal_locks_and_precommits_it():
    validator = Validator()
    validator.start(1)
    block = validator.block("A")
    validator.receive(validator.proposal(block, 0), validator.prevote("validator-1", 0, block))
    outputs = validator.receive(validator.prevote("validator-2", 0, block))

    assert signed_votes(outputs) == [(PRECOMMIT, 0, block_id_of(block))]
    (precommit,) = [o for o in outputs if isinstance(o, Persist)]
    assert precommit.block == block  # kept so that a restarted validator re-takes its lock
    assert_persisted_before_broadcast(outputs, "validator-0")
    state = validator.state
    assert (state.locked_round, state.locked_block) == (0, block)
    assert (state.valid_round, state.valid_block) == (0, block)
    assert state.step == Step.PRECOMMIT


def test_lines_36_43_in_step_precommit_only_the_valid_value_is_updated():
    validator = Validator()
    validator.start(1)
    block = validator.block("A")
    validator.fire(Timeout.PROPOSE)  # prevote nil: the proposal comes late
    validator.receive(validator.proposal(block, 0))
    validator.receive(validator.prevote("validator-1", 0, block))
    validator.receive(validator.prevote("validator-2", 0, block))  # 3 prevotes, 2 for A
    assert signed_votes(validator.fire(Timeout.PREVOTE)) == [(PRECOMMIT, 0, NIL)]

    outputs = validator.receive(validator.prevote("validator-3", 0, block))  # 3 for A

    assert outputs == []
    state = validator.state
    assert (state.valid_round, state.valid_block) == (0, block)
    assert (state.locked_round, state.locked_block) == (-1, None)
    assert state.step == Step.PRECOMMIT


def test_lines_44_46_a_quorum_of_nil_prevotes_precommits_nil():
    validator = Validator()
    validator.start(1)
    validator.fire(Timeout.PROPOSE)
    outputs = validator.receive(
        validator.prevote("validator-1", 0, None), validator.prevote("validator-2", 0, None)
    )
    assert signed_votes(outputs) == [(PRECOMMIT, 0, NIL)]
    assert validator.state.step == Step.PRECOMMIT
    assert validator.state.locked_round == -1


# --- lines 49-54: decide -----------------------------------------------------------------


def assert_certificate(validator, decision: Decide, round_number: int, signers) -> None:
    consortium = validator.consortium
    certificate = decision.certificate
    assert (certificate.height, certificate.round) == (1, round_number)
    assert [s.validator_id for s in certificate.signatures] == list(signers)
    blocks.verify_commit_signatures(
        certificate, consortium.chain_id, 1, decision.block_id, consortium.genesis.validator_set
    )


def test_lines_49_54_a_precommit_quorum_for_the_proposal_decides_it():
    validator = Validator()
    validator.start(1)
    block = validator.block("A")
    validator.receive(validator.proposal(block, 0))
    assert (
        decisions(validator.receive(*[validator.precommit(v, 0, block) for v in OTHERS[:2]])) == []
    )

    outputs = validator.receive(validator.precommit("validator-3", 0, block))

    (decision,) = decisions(outputs)
    assert outputs == [decision]
    assert (decision.block, decision.block_id) == (block, block_id_of(block))
    assert_certificate(validator, decision, 0, OTHERS)
    assert validator.state.step == Step.COMMITTED


def test_lines_49_54_a_precommit_quorum_of_a_past_round_decides_it():
    validator = Validator()
    validator.start(1)
    block = validator.block("A")
    validator.receive(validator.proposal(block, 0))
    validator.skip_round()
    validator.fire(Timeout.PROPOSE)  # round 1, step prevote

    outputs = validator.receive(*[validator.precommit(v, 0, block) for v in OTHERS])

    (decision,) = decisions(outputs)
    assert decision.block == block
    assert_certificate(validator, decision, 0, OTHERS)


def test_lines_49_54_a_precommit_quorum_waits_for_its_proposal():
    validator = Validator()
    validator.start(1)
    block = validator.block("A")
    assert decisions(validator.receive(*[validator.precommit(v, 0, block) for v in OTHERS])) == []
    (decision,) = decisions(validator.receive(validator.proposal(block, 0)))
    assert decision.block == block


def test_lines_49_54_an_invalid_block_is_never_decided():
    validator = Validator()
    validator.start(1)
    block = validator.block("A")
    validator.app.invalid.add(block_id_of(block))
    validator.receive(validator.proposal(block, 0))
    assert decisions(validator.receive(*[validator.precommit(v, 0, block) for v in OTHERS])) == []


# --- lines 55-56: catch up with a later round --------------------------------------------


def test_lines_55_56_f_plus_one_senders_from_a_later_round_start_it():
    validator = Validator()
    validator.start(1)
    assert validator.receive(validator.prevote("validator-1", 2, None)) == []  # f senders
    assert validator.receive(validator.precommit("validator-1", 2, None)) == []  # same sender
    assert validator.receive(validator.prevote("validator-2", 3, None)) == []  # another round
    assert validator.state.round == 0

    outputs = validator.receive(validator.prevote("validator-3", 2, None))

    assert validator.state.round == 2
    assert validator.state.step == Step.PROPOSE
    assert outputs == [ScheduleTimeout(Timeout.PROPOSE, 1, 2, 4_000)]


def test_lines_55_56_a_proposal_counts_as_a_message_from_its_proposer():
    validator = Validator()
    validator.start(1)
    block = validator.block("A")
    assert validator.receive(validator.proposal(block, 2)) == []  # validator-3's: f senders
    outputs = validator.receive(validator.prevote("validator-1", 2, None))
    assert validator.state.round == 2
    # the round starts, and its proposal is already there to prevote (lines 22-27)
    assert scheduled(outputs) == [ScheduleTimeout(Timeout.PROPOSE, 1, 2, 4_000)]
    assert signed_votes(outputs) == [(PREVOTE, 2, block_id_of(block))]


# --- timeouts (lines 57-67) --------------------------------------------------------------


def test_the_propose_timeout_prevotes_nil():
    validator = Validator()
    validator.start(1)
    outputs = validator.fire(Timeout.PROPOSE)
    assert signed_votes(outputs) == [(PREVOTE, 0, NIL)]
    assert validator.state.step == Step.PREVOTE


def test_the_prevote_timeout_precommits_nil():
    validator = Validator()
    validator.start(1)
    validator.fire(Timeout.PROPOSE)
    outputs = validator.fire(Timeout.PREVOTE)
    assert signed_votes(outputs) == [(PRECOMMIT, 0, NIL)]
    assert validator.state.step == Step.PRECOMMIT


def test_the_precommit_timeout_starts_the_next_round():
    validator = Validator()
    validator.start(1)
    validator.fire(Timeout.PROPOSE)
    validator.fire(Timeout.PREVOTE)
    outputs = validator.fire(Timeout.PRECOMMIT)
    assert (validator.state.round, validator.state.step) == (1, Step.PROPOSE)
    assert outputs == [ScheduleTimeout(Timeout.PROPOSE, 1, 1, 3_500)]


@pytest.mark.parametrize("kind", list(Timeout))
@pytest.mark.parametrize(("height", "round_number"), [(1, 0), (1, 2), (2, 1), (0, 1)], ids=str)
def test_a_stale_timeout_does_nothing(kind, height, round_number):
    # Lines 57, 61, 65: a timeout acts only at the height and round it was scheduled for.
    validator = Validator("validator-2", pending=False)  # proposer of (1, 1): it waits
    validator.start(1)
    validator.skip_round()
    before = (validator.state.round, validator.state.step, validator.state.awaiting_events)
    assert before == (1, Step.PROPOSE, True)
    assert validator.fire(kind, round_number, height) == []
    assert (validator.state.round, validator.state.step, validator.state.awaiting_events) == before


@pytest.mark.parametrize(
    ("steps", "kind"),
    [
        ([], Timeout.PREVOTE),  # step propose
        ([Timeout.PROPOSE], Timeout.PROPOSE),  # step prevote
        ([Timeout.PROPOSE, Timeout.PREVOTE], Timeout.PROPOSE),  # step precommit
        ([Timeout.PROPOSE, Timeout.PREVOTE], Timeout.PREVOTE),
    ],
)
def test_a_timeout_for_an_earlier_step_does_nothing(steps, kind):
    validator = Validator()
    validator.start(1)
    for earlier in steps:
        validator.fire(earlier)
    step = validator.state.step
    assert validator.fire(kind) == []
    assert validator.state.step == step


def test_no_timeout_acts_after_a_decision():
    validator = Validator()
    validator.start(1)
    block = validator.block("A")
    validator.receive(validator.proposal(block, 0))
    validator.receive(*[validator.precommit(v, 0, block) for v in OTHERS])
    assert validator.state.step == Step.COMMITTED
    for kind in Timeout:
        assert validator.fire(kind) == []
    assert (validator.state.round, validator.state.step) == (0, Step.COMMITTED)


# --- the empty-block wait (ADR 006, 4) ---------------------------------------------------


def test_a_proposer_without_pending_events_waits_for_them():
    validator = Validator("validator-1", pending=False)
    outputs = validator.start(1)
    assert outputs == [ScheduleTimeout(Timeout.EMPTY_BLOCK, 1, 0, 700)]
    assert validator.app.proposed == []
    assert validator.state.step == Step.PROPOSE


@pytest.mark.parametrize("trigger", ["events available", "empty-block timeout"])
def test_a_waiting_proposer_proposes_on_events_or_when_the_wait_ends(trigger):
    validator = Validator("validator-1", pending=False)
    validator.start(1)
    if trigger == "events available":
        validator.app.pending = True
        outputs = validator.events_available()
    else:
        outputs = validator.fire(Timeout.EMPTY_BLOCK)
    assert validator.app.proposed == [(1, 0)]
    proposal, prevote = persisted(outputs)
    assert isinstance(proposal, peer_pb2.Proposal)
    assert (proposal.height, proposal.round, proposal.pol_round) == (1, 0, -1)
    assert prevote.block_id == blocks.block_id(proposal.block.header)
    assert_persisted_before_broadcast(outputs, "validator-1")
    # proposed once: neither trigger proposes again
    assert validator.events_available() == []
    assert validator.fire(Timeout.EMPTY_BLOCK) == []
    assert validator.app.proposed == [(1, 0)]


def test_a_proposer_with_pending_events_proposes_at_once():
    validator = Validator("validator-1", pending=True)
    outputs = validator.start(1)
    assert isinstance(persisted(outputs)[0], peer_pb2.Proposal)
    assert scheduled(outputs) == []


def test_events_and_the_empty_block_timeout_do_not_make_a_non_proposer_propose():
    validator = Validator("validator-0", pending=False)
    validator.start(1)
    assert validator.events_available() == []
    assert validator.fire(Timeout.EMPTY_BLOCK) == []
    assert validator.app.proposed == []


# --- never double-sign: the restored vote log --------------------------------------------


@pytest.mark.parametrize("temptation", ["a proposal for B", "the propose timeout (nil)"])
def test_a_restored_prevote_is_sent_again_and_nothing_conflicting_is_signed(temptation):
    validator = Validator()
    a, b = validator.block("A"), validator.block("B")
    earlier = validator.prevote("validator-0", 0, a)
    consensus.restore_signed(validator.state, [(earlier, None)])
    validator.start(1)

    if temptation == "a proposal for B":
        outputs = validator.receive(validator.proposal(b, 0))  # lines 22-27 would prevote B
    else:
        outputs = validator.fire(Timeout.PROPOSE)  # line 59 would prevote nil

    assert outputs == [Broadcast(earlier)]
    assert validator.state.step == Step.PREVOTE


def test_a_restored_precommit_is_sent_again_instead_of_a_nil_precommit():
    validator = Validator()
    a = validator.block("A")
    prevote, precommit = (
        validator.prevote("validator-0", 0, a),
        validator.precommit("validator-0", 0, a),
    )
    consensus.restore_signed(validator.state, [(prevote, None), (precommit, a)])
    validator.start(1)

    outputs = validator.fire(Timeout.PROPOSE)
    outputs += validator.receive(*[validator.prevote(v, 0, None) for v in OTHERS])  # lines 44-46
    outputs += validator.fire(Timeout.PREVOTE)  # line 63

    assert persisted(outputs) == []
    own = [m for m in broadcast(outputs) if m.validator_id == "validator-0"]
    assert own == [prevote, precommit]


def test_a_restored_proposal_is_sent_again_not_rebuilt():
    validator = Validator("validator-1")
    earlier = validator.proposal(validator.block("A"), 0)
    consensus.restore_signed(validator.state, [(earlier, None)])

    outputs = validator.start(1)

    assert validator.app.proposed == []
    assert outputs[0] == Broadcast(earlier)
    assert [m for m in persisted(outputs) if isinstance(m, peer_pb2.Proposal)] == []
    assert signed_votes(outputs) == [(PREVOTE, 0, block_id_of(earlier.block))]


def block_of_size(validator: Validator, label: str, size_bytes: int) -> ledger_pb2.Block:
    """A height-1 block (its id set by `label`) of exactly `size_bytes` serialised bytes."""
    block = validator.block(label)
    padding = block.events.add(signature=bytes(64))
    while block.ByteSize() != size_bytes:
        padding.body = bytes(len(padding.body) + size_bytes - block.ByteSize())
    return block


def test_a_restored_proposal_over_the_byte_budget_is_withheld_and_its_round_passes():
    # ADR 011: before blocks had a byte budget, validator-1 signed a proposal no peer would
    # take (over the message cap); re-sending it after a restart crashed the node again. Now
    # it is kept (so nothing else is ever signed for height 1, round 0) and never sent.
    validator = Validator("validator-1")  # the proposer of height 1, round 0
    oversized = block_of_size(validator, "A", BLOCK_SIZE_BYTES_MAX + 1)
    earlier = validator.proposal(oversized, 0)
    assert consensus.restore_signed(validator.state, [(earlier, None)]) == [(1, 0)]

    outputs = validator.start(1)
    outputs += validator.rebroadcast() + validator.fire(Timeout.PROPOSE)
    everything = list(outputs)

    assert validator.app.proposed == []  # no other block proposed instead
    assert not [
        m for m in persisted(outputs) + broadcast(outputs) if isinstance(m, peer_pb2.Proposal)
    ]
    assert validator.state.signed[(1, 0, 0)] == earlier
    assert signed_votes(outputs) == [(PREVOTE, 0, NIL)]  # at once, as the timeout would have
    assert validator.state.step == Step.PREVOTE

    # The round passes like any round whose proposer crashed; the next proposer's block is
    # prevoted, and the withheld proposal is never sent, not even by a later rebroadcast.
    outputs = validator.receive(
        *[validator.prevote(v, 0, None) for v in ("validator-0", "validator-2")]
    )
    assert signed_votes(outputs) == [(PRECOMMIT, 0, NIL)]
    everything += outputs
    everything += validator.receive(
        *[validator.precommit(v, 0, None) for v in ("validator-0", "validator-2")]
    )
    everything += validator.fire(Timeout.PRECOMMIT)
    assert validator.state.round == 1
    b = validator.block("B")
    outputs = validator.receive(validator.proposal(b, 1)) + validator.rebroadcast()
    everything += outputs
    assert signed_votes(outputs) == [(PREVOTE, 1, block_id_of(b))]
    assert [m for m in broadcast(everything) if isinstance(m, peer_pb2.Proposal)] == [
        validator.proposal(b, 1)  # relayed: the round's proposal, from validator-2
    ]
    assert_persisted_before_broadcast(everything, "validator-1")


def test_a_restored_proposal_of_exactly_the_byte_budget_is_sent_again():
    validator = Validator("validator-1")
    earlier = validator.proposal(block_of_size(validator, "A", BLOCK_SIZE_BYTES_MAX), 0)
    assert consensus.restore_signed(validator.state, [(earlier, None)]) == []

    outputs = validator.start(1)

    assert outputs[0] == Broadcast(earlier)
    assert signed_votes(outputs) == [(PREVOTE, 0, block_id_of(earlier.block))]


def test_a_withheld_proposal_of_an_earlier_round_is_never_rebroadcast_and_goes_with_its_height():
    validator = Validator("validator-1")
    earlier = validator.proposal(block_of_size(validator, "A", BLOCK_SIZE_BYTES_MAX + 1), 0)
    prevote = validator.prevote("validator-1", 2, None)
    consensus.restore_signed(validator.state, [(earlier, None), (prevote, None)])

    validator.start(1)  # resumes in round 2, the latest it signed in

    assert validator.state.round == 2
    assert broadcast(validator.rebroadcast()) == [prevote]
    validator.start(2)
    assert validator.state.withheld == set()


def test_the_lock_is_restored_from_a_persisted_precommit_with_its_block():
    validator = Validator()
    a, b = validator.block("A"), validator.block("B")
    consensus.restore_signed(
        validator.state,
        [
            (validator.prevote("validator-0", 0, a), None),
            (validator.precommit("validator-0", 0, a), a),
        ],
    )
    validator.start(1)
    state = validator.state
    assert (state.locked_round, state.locked_block) == (0, a)
    assert (state.valid_round, state.valid_block) == (0, a)

    assert persisted(validator.skip_round()) == []  # round 0: re-sends, signs nothing
    outputs = validator.receive(validator.proposal(b, 1))
    assert signed_votes(outputs) == [(PREVOTE, 1, NIL)]  # lines 22-27: locked on A


def test_a_restored_nil_precommit_restores_no_lock():
    validator = Validator()
    consensus.restore_signed(validator.state, [(validator.precommit("validator-0", 0, None), None)])
    validator.start(1)
    assert (validator.state.locked_round, validator.state.locked_block) == (-1, None)


def test_a_restored_lock_is_never_traded_for_a_block_of_an_earlier_round():
    # The validator precommitted A at round 2 (it jumped there by lines 55-56 without
    # signing at rounds 0 and 1), then restarted. In Algorithm 1 lockedRound <= round_p
    # always, and a validator at round 2 never acts on round-0 messages. After the restart it
    # is at round 0 with lockedRound 2, and a prevote quorum for B at round 0 (honest votes a
    # Byzantine peer can replay) makes it precommit B at round 0 and lock on B: with one
    # Byzantine validator, B can then be decided at round 0 while A was decided at round 2.
    validator = Validator()
    a, b = validator.block("A"), validator.block("B")
    consensus.restore_signed(
        validator.state,
        [
            (validator.prevote("validator-0", 2, a), None),
            (validator.precommit("validator-0", 2, a), a),
        ],
    )
    validator.start(1)
    assert (validator.state.locked_round, validator.state.locked_block) == (2, a)

    outputs = validator.receive(validator.proposal(b, 0))
    outputs += validator.receive(*[validator.prevote(v, 0, b) for v in OTHERS])

    assert (PRECOMMIT, 0, block_id_of(b)) not in signed_votes(outputs)
    assert (validator.state.locked_round, validator.state.locked_block) == (2, a)
    # and a fresh proposal of B in a later round is not prevoted (lines 22-27)
    outputs = validator.receive(validator.proposal(b, 4), validator.prevote("validator-2", 4, None))
    assert validator.state.round == 4
    assert signed_votes(outputs) == [(PREVOTE, 4, NIL)]


def own_votes(outputs, validator: Validator, vote_type: int) -> list[ledger_pb2.Vote]:
    return [
        m
        for m in broadcast(outputs)
        if isinstance(m, ledger_pb2.Vote)
        and m.validator_id == validator.validator_id
        and m.type == vote_type
    ]


def test_a_restart_does_not_let_two_honest_validators_decide_different_blocks():
    # Three honest state machines (R = validator-0, H1 = validator-1, H2 = validator-2) and a
    # Byzantine validator-3 whose messages the test signs; messages are delivered by hand.
    consortium = Consortium()
    r, h1, h2 = (Validator(v, consortium) for v in ("validator-0", "validator-1", "validator-2"))

    def byzantine(vote_type: int, round_number: int, block) -> ledger_pb2.Vote:
        return sign_vote_as(consortium, "validator-3", vote_type, 1, round_number, block)

    # Round 0: H1 proposes B; H1, H2 and the Byzantine validator prevote it. H1 sees the
    # quorum, locks on B and precommits it; H2 misses the Byzantine prevote and times out.
    h1_outputs = h1.start(1)
    (proposal_b,) = [m for m in broadcast(h1_outputs) if isinstance(m, peer_pb2.Proposal)]
    b = proposal_b.block
    (h1_prevote_b,) = own_votes(h1_outputs, h1, PREVOTE)
    h2.start(1)
    (h2_prevote_b,) = own_votes(h2.receive(proposal_b, h1_prevote_b), h2, PREVOTE)
    h1.receive(h2_prevote_b, byzantine(PREVOTE, 0, b))
    assert h1.state.locked_block == b
    h2.fire(Timeout.PREVOTE)
    assert h2.state.locked_round == -1
    # Both time out through rounds 0 and 1 (H2's round-1 proposal reaches nobody).
    for honest in (h1, h2):
        honest.fire(Timeout.PRECOMMIT)
        honest.skip_round()
        assert honest.state.round == 2

    # Round 2: the Byzantine proposer proposes A. R, slow, signed nothing yet at height 1; it
    # jumps to round 2 (lines 55-56) and, with H2 and the Byzantine validator, prevotes and
    # precommits A. H2 decides A. R crashes before it sees the precommits.
    a = make_block(consortium.chain_id, 1, "A")
    proposal_a = sign_proposal(consortium, a, 2)
    (h2_prevote_a,) = own_votes(h2.receive(proposal_a), h2, PREVOTE)
    r_outputs = r.start(1) + r.receive(proposal_a, h2_prevote_a, byzantine(PREVOTE, 2, a))
    (r_prevote_a,) = own_votes(r_outputs, r, PREVOTE)
    (r_precommit_a,) = own_votes(r_outputs, r, PRECOMMIT)
    h2_outputs = h2.receive(r_prevote_a, byzantine(PREVOTE, 2, a))
    h2_outputs += h2.receive(r_precommit_a, byzantine(PRECOMMIT, 2, a))
    decided = [(d.block_id, "H2") for d in decisions(h2_outputs)]
    assert decided == [(block_id_of(a), "H2")]

    # R restarts from its vote log. The Byzantine validator replays round 0 to it: H1's
    # proposal and the prevotes for B, honest ones included.
    log = [(o.message, o.block) for o in r_outputs if isinstance(o, Persist)]
    restarted = Validator("validator-0", consortium)
    consensus.restore_signed(restarted.state, log)
    restarted.start(1)
    replayed = restarted.receive(proposal_b, h1_prevote_b, h2_prevote_b, byzantine(PREVOTE, 0, b))

    # H1, still at height 1, hears whatever R precommitted, and the Byzantine precommit for B.
    h1_outputs = h1.receive(*own_votes(replayed, r, PRECOMMIT), byzantine(PRECOMMIT, 0, b))
    decided += [(d.block_id, "H1") for d in decisions(h1_outputs)]
    assert len({block_id for block_id, _ in decided}) == 1, decided


# --- equivocation (ADR 006, 3) -----------------------------------------------------------


def test_two_conflicting_votes_are_reported_once_as_canonical_evidence():
    validator = Validator()
    validator.start(1)
    a, b = validator.block("A"), validator.block("B")
    first, second = validator.prevote("validator-1", 0, b), validator.prevote("validator-1", 0, a)

    assert validator.receive(first) == []
    outputs = validator.receive(second)

    (found,) = [o for o in outputs if isinstance(o, EvidenceFound)]
    assert outputs == [found, Broadcast(found.evidence)]
    evidence = found.evidence
    consortium = validator.consortium
    assert verify_evidence(consortium.chain_id, consortium.genesis.validator_set, evidence)
    assert evidence.first.block_id < evidence.second.block_id  # canonical: by block id
    assert encoded(evidence) == encoded(make_evidence(second, first))
    # a third conflicting vote is no new evidence, nor is the first one again
    assert validator.receive(validator.prevote("validator-1", 0, None), first) == []


def test_a_nil_vote_and_a_block_vote_are_an_equivocation():
    validator = Validator()
    validator.start(1)
    block = validator.block("A")
    outputs = validator.receive(
        validator.precommit("validator-2", 3, block), validator.precommit("validator-2", 3, None)
    )
    (found,) = [o for o in outputs if isinstance(o, EvidenceFound)]
    assert found.evidence.first.block_id == NIL


def test_both_votes_of_an_equivocator_count_toward_their_blocks():
    validator = Validator()
    validator.start(1)
    a, b = validator.block("A"), validator.block("B")
    validator.receive(validator.proposal(b, 0))
    # validator-1 precommits A, then B; with validator-2 and -3 that is a quorum for B
    validator.receive(validator.precommit("validator-1", 0, a))
    outputs = validator.receive(
        validator.precommit("validator-1", 0, b),
        validator.precommit("validator-2", 0, b),
        validator.precommit("validator-3", 0, b),
    )
    (decision,) = decisions(outputs)
    assert decision.block == b
    assert_certificate(validator, decision, 0, OTHERS)


def test_a_validator_is_counted_once_for_a_block():
    validator = Validator()
    validator.start(1)
    block = validator.block("A")
    validator.receive(validator.proposal(block, 0))
    twice = validator.precommit("validator-1", 0, block)
    outputs = validator.receive(twice, twice, validator.precommit("validator-2", 0, block))
    assert outputs == []  # two validators, whatever the number of messages
    (decision,) = decisions(validator.receive(validator.precommit("validator-3", 0, block)))
    assert_certificate(validator, decision, 0, OTHERS)


def test_a_third_conflicting_vote_is_ignored():
    validator = Validator()
    validator.start(1)
    a, b, c = validator.block("A"), validator.block("B"), validator.block("C")
    validator.receive(validator.proposal(c, 0))
    outputs = validator.receive(
        validator.precommit("validator-1", 0, a),
        validator.precommit("validator-1", 0, b),
        validator.precommit("validator-1", 0, c),  # the third: not counted
        validator.precommit("validator-2", 0, c),
        validator.precommit("validator-3", 0, c),
    )
    assert decisions(outputs) == []
    assert len([o for o in outputs if isinstance(o, EvidenceFound)]) == 1


# --- messages for other heights ----------------------------------------------------------


def test_messages_for_the_next_height_are_replayed_when_it_starts():
    validator = Validator()
    validator.start(1)
    block = validator.block("A", height=2)
    proposal = validator.proposal(block, 0)  # validator-2 proposes (2, 0)
    prevotes = [validator.prevote(v, 0, block, height=2) for v in ("validator-1", "validator-2")]
    assert validator.receive(proposal, *prevotes) == []
    assert validator.state.proposals == {}
    assert len(validator.state.future) == 3

    outputs = validator.start(2)

    # the proposal is prevoted, and with the two buffered prevotes that is a quorum
    assert signed_votes(outputs) == [
        (PREVOTE, 0, block_id_of(block)),
        (PRECOMMIT, 0, block_id_of(block)),
    ]
    assert validator.state.future == []


@pytest.mark.parametrize("height", [0, 3, 10])
def test_messages_for_heights_other_than_the_current_and_next_are_dropped(height):
    validator = Validator()
    validator.start(1)
    block = validator.block("A", height=height)
    assert validator.receive(validator.proposal(block, 0, height=height)) == []
    assert validator.receive(validator.prevote("validator-1", 0, block, height=height)) == []
    assert validator.state.future == []
    assert validator.state.proposals == {}


def test_messages_for_a_decided_height_are_dropped():
    validator = Validator()
    validator.start(1)
    block = validator.block("A")
    validator.receive(validator.proposal(block, 0))
    validator.receive(*[validator.precommit(v, 0, block) for v in OTHERS])
    assert validator.receive(validator.prevote("validator-1", 0, block)) == []
    assert validator.state.future == []


def test_the_buffer_of_next_height_messages_is_bounded():
    validator = Validator()
    validator.start(1)
    vote = validator.prevote("validator-1", 0, None, height=2)
    for _ in range(FUTURE_MESSAGES_MAX + 10):
        validator.receive(vote)
    assert len(validator.state.future) == FUTURE_MESSAGES_MAX


def test_a_skipped_height_drops_its_buffered_messages():
    validator = Validator()
    validator.start(1)
    block = validator.block("A", height=2)
    validator.receive(validator.proposal(block, 0))
    outputs = validator.start(3)  # block sync jumped over height 2
    assert signed_votes(outputs) == []
    assert validator.state.proposals == {}


# --- Rebroadcast (ADR 006, 2) ------------------------------------------------------------


def test_rebroadcast_resends_own_messages_and_relays_votes_of_this_round_and_the_last():
    validator = Validator()
    validator.start(1)
    a, b = validator.block("A"), validator.block("B")
    # round 0: prevote A, precommit nil; validator-1's prevote (round 0) will be too old
    validator.receive(validator.proposal(a, 0), validator.prevote("validator-1", 0, a))
    validator.fire(Timeout.PREVOTE)
    validator.fire(Timeout.PRECOMMIT)
    # round 1: validator-2 proposes B and prevotes it
    round_1_proposal = validator.proposal(b, 1)
    round_1_prevote = validator.prevote("validator-2", 1, b)
    validator.receive(round_1_proposal, round_1_prevote)
    validator.fire(Timeout.PREVOTE)
    validator.fire(Timeout.PRECOMMIT)
    # round 2: validator-3 precommits nil already
    round_2_precommit = validator.precommit("validator-3", 2, None)
    validator.receive(round_2_precommit)
    assert validator.state.round == 2

    outputs = validator.rebroadcast()

    own = [
        validator.prevote("validator-0", 0, a),
        validator.precommit("validator-0", 0, None),
        validator.prevote("validator-0", 1, b),
        validator.precommit("validator-0", 1, None),
    ]
    assert all(isinstance(o, Broadcast) for o in outputs)
    assert [encoded(m) for m in broadcast(outputs)] == [
        encoded(m) for m in [*own, round_1_proposal, round_1_prevote, round_2_precommit]
    ]


def test_rebroadcast_relays_the_prevotes_behind_the_valid_block():
    validator = Validator()
    validator.start(1)
    a = validator.block("A")
    prevotes = [validator.prevote(v, 0, a) for v in OTHERS[:2]]
    validator.receive(validator.proposal(a, 0), *prevotes)
    assert validator.state.valid_round == 0
    validator.skip_round()
    validator.skip_round()  # now round 2: round 0 is neither this round nor the last
    relayed = {encoded(m) for m in broadcast(validator.rebroadcast())}
    for vote in prevotes:
        assert encoded(vote) in relayed


def test_rebroadcast_sends_nothing_after_a_decision():
    validator = Validator()
    validator.start(1)
    block = validator.block("A")
    validator.receive(validator.proposal(block, 0))
    validator.receive(*[validator.precommit(v, 0, block) for v in OTHERS])
    assert validator.state.step == Step.COMMITTED
    assert validator.rebroadcast() == []


def test_rebroadcast_does_not_resend_messages_of_a_finished_height():
    validator = Validator()
    validator.start(1)
    validator.fire(Timeout.PROPOSE)  # a prevote at height 1
    validator.start(2)
    assert broadcast(validator.rebroadcast()) == []


# --- heights -----------------------------------------------------------------------------


def test_heights_never_go_backwards():
    validator = Validator()
    validator.start(2)
    with pytest.raises(InvariantViolation):
        validator.start(1)


def test_precommitted_blocks_of_finished_heights_are_forgotten():
    # A limit on everything: what the state keeps must not grow with the chain.
    validator = Validator()
    for height in (1, 2, 3):
        validator.start(height)
        block = validator.block(f"block {height}", height=height)
        validator.lock_in_round_0(block)  # the precommitted block is kept for the vote log
        validator.receive(*[validator.precommit(v, 0, block, height=height) for v in OTHERS])
        assert validator.state.step == Step.COMMITTED
    validator.start(4)
    assert validator.state.signed_blocks == {}

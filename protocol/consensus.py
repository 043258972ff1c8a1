"""Tendermint BFT consensus as a pure state machine.

Theory of operation
-------------------
This is Algorithm 1 of Buchman, Kwon and Milosevic, "The latest gossip on BFT consensus"
(arXiv:1807.04938), for n validators of equal power tolerating f < n/3 Byzantine ones. A
quorum is more than two thirds of n (2f+1 when n = 3f+1).

Each height runs rounds. In round r the proposer (validators in id order, rotating by
height + round) proposes a block; every validator prevotes for it if the block is valid and
does not contradict its lock, else prevotes nil. A validator that sees a quorum of prevotes
for a block *locks* on it and precommits it; a quorum of prevotes for nil makes it precommit
nil. A quorum of precommits for a block decides it: with those precommits as its commit
certificate the block is final. Timeouts, growing with the round, move a stuck round on;
seeing f+1 messages from a later round jumps to it. Locks make decisions safe (two quorums
intersect in an honest validator, which never prevotes against its lock), growing timeouts
make them live once the network is synchronous.

Shape (as in h11, and CometBFT's `consensus/state.go`): `step(state, input, app)` feeds one
input (a message, a timer firing, "start height h", "events are available") and returns the
outputs the shell must carry out, in order: persist a vote (synced) before it is broadcast,
broadcast, schedule a timeout, commit a block. Time arrives in inputs; randomness is never
needed; I/O is the shell's. The `Application` is the ledger: it builds a block for a
proposal and says whether a proposed block is valid (re-validating every event). The same
code runs a consortium of one: its own votes make a quorum.

Never double-sign: every vote and proposal this validator signs is recorded in
`state.signed` and emitted as `Persist` *before* its `Broadcast`. A restarted validator
reloads them (`restore_signed`) and will only ever re-send the same vote for a height, round
and type; it also re-takes its lock from its own precommits.

Never re-send what cannot be sent: a restored proposal whose block is over the byte budget
(`BLOCK_SIZE_BYTES_MAX`, ADR 011; signed by a version of the node that had none) is *withheld*.
It stays in `state.signed`, so no other proposal is ever signed for its height and round, but
it is never broadcast; in that round the validator proposes nothing and prevotes nil at once.
Dropping one's own proposal is always safe (a proposer that crashed before sending does the
same): it costs the round, and the next proposer moves the height on.

The validators change with the height (docs/adr/013): every height is run by the set the
application names for it (`Application.validator_set`), taken when the height starts; messages
buffered for the next height are checked against the next height's set. A node with a key
votes and proposes only at heights whose set holds its id with that key: a validator added at
height h starts there, a removed one stops, and a node outside the set follows without voting.

Invariants (checked by the simulator on every step): no two honest validators decide
different blocks at a height; heights never go backwards; an honest validator never signs two
different votes of the same type for the same height and round.
"""

from __future__ import annotations

from provledger.protocol import blocks, crypto
from provledger.protocol.consensus_state import ConsensusState, restore_signed
from provledger.protocol.consensus_types import (
    NIL,
    Application,
    Broadcast,
    Decide,
    EventsAvailable,
    EvidenceFound,
    Input,
    Output,
    Params,
    Persist,
    ProposalReceived,
    Rebroadcast,
    ScheduleTimeout,
    StartHeight,
    Step,
    Timeout,
    TimeoutFired,
    VoteReceived,
    proposal_sign_bytes,
    proposer,
)
from provledger.protocol.errors import check
from provledger.protocol.limits import (
    FUTURE_MESSAGES_MAX,
    FUTURE_ROUNDS_MAX,
    ROUND_MAX,
    VOTES_PER_VALIDATOR_MAX,
)
from provledger.protocol.votes import (
    PRECOMMIT,
    PREVOTE,
    make_evidence,
    sign_vote,
    verify_vote,
)
from provledger.v1 import ledger_pb2, peer_pb2

# The state and restoring what was signed before a restart: protocol/consensus_state.py.
# The machine's vocabulary (consensus_types.py) is read through this module by the shell and
# the tests, as one interface.
__all__ = [
    "NIL", "Application", "Broadcast", "ConsensusState", "Decide", "EventsAvailable",
    "EvidenceFound", "Input", "Output", "Params", "Persist", "ProposalReceived", "Rebroadcast",
    "ScheduleTimeout", "StartHeight", "Step", "Timeout", "TimeoutFired", "VoteReceived",
    "proposal_sign_bytes", "proposer", "restore_signed", "step",
]  # fmt: skip


def step(
    state: ConsensusState, event: Input, app: Application
) -> tuple[ConsensusState, list[Output]]:
    """Feed one input; return the next state and what the shell must do, in order. For speed
    the state is updated in place and returned: the caller owns it and never shares it."""
    machine = _Machine(state, app, getattr(event, "now_ms", 0))
    machine.handle(event)
    return state, machine.outputs


class _Machine:
    """One step's worth of work on a ConsensusState; collects outputs."""

    def __init__(self, state: ConsensusState, app: Application, now_ms: int) -> None:
        self.s = state
        self.app = app
        self.now_ms = now_ms
        self.outputs: list[Output] = []

    # --- dispatch ----------------------------------------------------------------------------

    def handle(self, event: Input) -> None:
        s = self.s
        if isinstance(event, StartHeight):
            self._start_height(event.height)
        elif isinstance(event, EventsAvailable):
            if s.step == Step.PROPOSE and s.awaiting_events:
                self._propose()
        elif isinstance(event, TimeoutFired):
            self._on_timeout(event)
        elif isinstance(event, Rebroadcast):
            self._rebroadcast()
        elif isinstance(event, ProposalReceived):
            if self._buffered(event, event.proposal.height):
                return
            self._add_proposal(event.proposal)
        elif isinstance(event, VoteReceived):
            if self._buffered(event, event.vote.height):
                return
            self._add_vote(event.vote)
        self._evaluate()

    def _rebroadcast(self) -> None:
        """Re-send this validator's own messages at the current height, and relay the votes
        that matter for progress: those of the current round and the one before, and the
        prevotes that justify its valid block. Relaying lets a quorum seen by one honest
        node become visible to all, even when the original senders' messages were lost or an
        equivocator showed different votes to different nodes."""
        s = self.s
        if s.step == Step.COMMITTED:
            return
        for (height, round_number, kind), message in sorted(
            s.signed.items(), key=lambda item: item[0]
        ):
            if height == s.height and not (kind == 0 and (height, round_number) in s.withheld):
                self.outputs.append(Broadcast(message))
        rounds = sorted({s.round, s.round - 1, s.valid_round} - {-1})
        for round_number in rounds:
            proposal = s.proposals.get(round_number)
            if proposal is not None and proposal[0].proposer_id != s.validator_id:
                self.outputs.append(Broadcast(proposal[0]))
            for vote_type in (PREVOTE, PRECOMMIT):
                for validator_id, known in s.votes.get((vote_type, round_number), {}).items():
                    if validator_id != s.validator_id:
                        self.outputs.extend(Broadcast(vote) for vote in known)

    def _buffered(self, event: Input, height: int) -> bool:
        """Messages for the next height wait until it starts; older or farther ones go."""
        s = self.s
        if height == s.height and s.step != Step.COMMITTED:
            return False
        if (
            height == s.height + 1
            and len(s.future) < FUTURE_MESSAGES_MAX
            and self._authentic(event)
        ):
            s.future.append(event)
        return True

    def _authentic(self, event: Input) -> bool:
        """Only signed messages from validators may take a place in the bounded buffer."""
        s = self.s
        validators = self.app.validator_set(s.height + 1)
        if isinstance(event, VoteReceived):
            return verify_vote(s.chain_id, validators, event.vote)
        if isinstance(event, ProposalReceived):
            proposal = event.proposal
            public_key = validators.public_key(proposal.proposer_id)
            return public_key is not None and crypto.verify(
                public_key,
                crypto.DOMAIN_PROPOSAL,
                proposal_sign_bytes(s.chain_id, proposal, blocks.block_id(proposal.block.header)),
                proposal.signature,
            )
        return False

    # --- heights and rounds ------------------------------------------------------------------

    def _start_height(self, height: int) -> None:
        s = self.s
        check(height > s.height or s.height == 0, "consensus heights never go backwards")
        s.height = height
        s.validators = self.app.validator_set(height)
        s.locked_round, s.locked_block = -1, None
        s.valid_round, s.valid_block = -1, None
        s.proposals.clear()
        s.votes.clear()
        s.validity.clear()
        s.fired.clear()
        s.decided_block_id = None
        s.signed = {key: value for key, value in s.signed.items() if key[0] >= height}
        s.withheld = {key for key in s.withheld if key[0] >= height}
        kept = {
            message.block_id
            for message in s.signed.values()
            if isinstance(message, ledger_pb2.Vote) and message.block_id
        }
        s.signed_blocks = {i: b for i, b in s.signed_blocks.items() if i in kept}
        self._restore_lock()
        pending, s.future = s.future, []
        # A restarted validator resumes in the latest round it signed anything in: its
        # restored lock may come from that round, and a lock must never be older than the
        # round it acts in (else it could lock, and precommit, a block of an earlier round).
        resume = max((r for (h, r, _) in s.signed if h == height), default=0)
        self._start_round(resume)
        for event in pending:
            if isinstance(event, ProposalReceived) and event.proposal.height == height:
                self._add_proposal(event.proposal)
            elif isinstance(event, VoteReceived) and event.vote.height == height:
                self._add_vote(event.vote)

    def _restore_lock(self) -> None:
        """After a restart: a validator that precommitted a block at this height is locked."""
        s = self.s
        for (height, round_number, vote_type), message in s.signed.items():
            if height != s.height or vote_type != PRECOMMIT or not message.block_id:
                continue
            block = s.signed_blocks.get(message.block_id)
            if block is not None and round_number > s.locked_round:
                s.locked_round, s.locked_block = round_number, block
                s.valid_round, s.valid_block = round_number, block

    def _start_round(self, round_number: int) -> None:
        s = self.s
        s.round = min(round_number, ROUND_MAX)
        check(s.round >= s.locked_round, "a validator never acts in a round before its lock")
        s.step = Step.PROPOSE
        s.awaiting_events = False
        if self._voting() and proposer(s.validators, s.height, s.round) == s.validator_id:
            if (s.height, s.round) in s.withheld:
                self._withhold_proposal()
            elif s.valid_block is None and not self.app.has_pending_events():
                s.awaiting_events = True
                self._schedule(Timeout.EMPTY_BLOCK)
            else:
                self._propose()
        else:
            self._schedule(Timeout.PROPOSE)

    def _withhold_proposal(self) -> None:
        """This validator signed a proposal for this round before a restart, over the byte
        budget: no peer would accept it, and signing another for the same round is not
        allowed. It proposes nothing and prevotes nil at once, as its propose timeout would
        make it do (a prevote it signed before the restart is re-sent instead)."""
        s = self.s
        self._vote(PREVOTE, NIL)
        s.step = Step.PREVOTE

    def _propose(self) -> None:
        s = self.s
        check((s.height, s.round) not in s.withheld, "a withheld proposal is never sent")
        s.awaiting_events = False
        earlier = s.signed.get((s.height, s.round, 0))
        if isinstance(earlier, peer_pb2.Proposal):  # proposed before a restart: same again
            proposal = earlier
        else:
            if s.valid_block is not None:
                block, pol_round = s.valid_block, s.valid_round
            else:
                block, pol_round = self.app.propose(s.height, s.round, self.now_ms), -1
            block_identifier = blocks.block_id(block.header)
            proposal = peer_pb2.Proposal(
                height=s.height,
                round=s.round,
                pol_round=pol_round,
                block=block,
                proposer_id=s.validator_id,
            )
            check(s.key is not None, "only a validator with a key proposes")
            proposal.signature = s.key.sign(  # type: ignore[union-attr]
                crypto.DOMAIN_PROPOSAL,
                proposal_sign_bytes(s.chain_id, proposal, block_identifier),
            )
            s.signed[(s.height, s.round, 0)] = proposal
            self.outputs.append(Persist(proposal))
        self.outputs.append(Broadcast(proposal))
        self._add_proposal(proposal)

    def _schedule(self, kind: Timeout) -> None:
        s = self.s
        self.outputs.append(
            ScheduleTimeout(kind, s.height, s.round, s.params.timeout_ms(kind, s.round))
        )

    def _on_timeout(self, event: TimeoutFired) -> None:
        s = self.s
        if event.height != s.height or event.round != s.round:
            return
        if event.kind is Timeout.EMPTY_BLOCK:
            if s.step == Step.PROPOSE and s.awaiting_events:
                self._propose()
        elif event.kind is Timeout.PROPOSE:
            if s.step == Step.PROPOSE:
                self._vote(PREVOTE, NIL)
                s.step = Step.PREVOTE
        elif event.kind is Timeout.PREVOTE:
            if s.step == Step.PREVOTE:
                self._vote(PRECOMMIT, NIL)
                s.step = Step.PRECOMMIT
        elif event.kind is Timeout.PRECOMMIT and s.step != Step.COMMITTED:
            self._start_round(s.round + 1)

    # --- messages ----------------------------------------------------------------------------

    def _add_proposal(self, proposal: peer_pb2.Proposal) -> None:
        s = self.s
        if proposal.round in s.proposals or proposal.round > min(
            ROUND_MAX, s.round + FUTURE_ROUNDS_MAX
        ):
            return  # a proposal holds a whole block: only a bounded window of rounds ahead
        if proposal.proposer_id != proposer(s.validators, proposal.height, proposal.round):
            return
        if not -1 <= proposal.pol_round < proposal.round:
            return
        header = _header_or_none(proposal.block.header)
        if header is None or header.height != proposal.height:
            return
        block_identifier = blocks.block_id(proposal.block.header)
        public_key = s.validators.public_key(proposal.proposer_id)
        if public_key is None or not crypto.verify(
            public_key,
            crypto.DOMAIN_PROPOSAL,
            proposal_sign_bytes(s.chain_id, proposal, block_identifier),
            proposal.signature,
        ):
            return
        s.proposals[proposal.round] = (proposal, block_identifier)

    def _add_vote(self, vote: ledger_pb2.Vote) -> None:
        s = self.s
        if vote.round > ROUND_MAX or not verify_vote(s.chain_id, s.validators, vote):
            return
        # A validator's votes of one type and round: normally one. An equivocator's second,
        # conflicting vote is kept too (and becomes evidence): a quorum for a block that some
        # nodes saw only through the equivocator's other vote must still be countable by all,
        # or the equivocator could keep honest nodes from agreeing that a quorum exists.
        # Counting both is safe: any two quorums still share an honest validator.
        votes = s.votes.setdefault((vote.type, vote.round), {})
        known = votes.setdefault(vote.validator_id, [])
        if any(earlier.block_id == vote.block_id for earlier in known):
            return
        if known:
            key = (vote.validator_id, vote.height, vote.round, vote.type)
            if key not in s.evidence_seen:
                s.evidence_seen.add(key)
                evidence = make_evidence(known[0], vote)
                self.outputs.append(EvidenceFound(evidence))
                self.outputs.append(Broadcast(evidence))
            if len(known) >= VOTES_PER_VALIDATOR_MAX:
                return
        known.append(vote)

    def _voting(self) -> bool:
        """Whether this node signs at the current height: its id is in the height's set, with
        its key."""
        s = self.s
        return (
            s.key is not None
            and s.validator_id is not None
            and s.validators.public_key(s.validator_id) == s.key.public_key
        )

    def _vote(self, vote_type: int, block_identifier: bytes) -> None:
        s = self.s
        if not self._voting():
            return
        key = (s.height, s.round, vote_type)
        earlier = s.signed.get(key)
        if isinstance(earlier, ledger_pb2.Vote):  # never sign twice; re-send the first
            self.outputs.append(Broadcast(earlier))
            self._add_vote(earlier)
            return
        vote = ledger_pb2.Vote(
            type=vote_type,
            height=s.height,
            round=s.round,
            block_id=block_identifier,
            validator_id=s.validator_id,
        )
        vote.signature = sign_vote(s.key, s.chain_id, vote)
        s.signed[key] = vote
        block = None
        if vote_type == PRECOMMIT and block_identifier:
            block = self._block(block_identifier)
            if block is not None:
                s.signed_blocks[block_identifier] = block
        self.outputs.append(Persist(vote, block))
        self.outputs.append(Broadcast(vote))
        self._add_vote(vote)

    # --- the rules of Algorithm 1 ---------------------------------------------------------

    def _count(self, vote_type: int, round_number: int, block_identifier: bytes | None) -> int:
        """Votes of a type in a round; for one block id, or for anything with None."""
        votes = self.s.votes.get((vote_type, round_number), {})
        if block_identifier is None:
            return len(votes)
        return sum(
            1 for known in votes.values() if any(v.block_id == block_identifier for v in known)
        )

    def _quorum(self) -> int:
        return self.s.validators.quorum_size

    def _valid(self, block: ledger_pb2.Block, block_identifier: bytes) -> bool:
        s = self.s
        if block_identifier not in s.validity:
            s.validity[block_identifier] = self.app.validate(block, self.now_ms)
        return s.validity[block_identifier]

    def _block(self, block_identifier: bytes) -> ledger_pb2.Block | None:
        for proposal, identifier in self.s.proposals.values():
            if identifier == block_identifier:
                return proposal.block
        return self.s.signed_blocks.get(block_identifier)

    def _first_time(self, rule: str, round_number: int) -> bool:
        if (rule, round_number) in self.s.fired:
            return False
        self.s.fired.add((rule, round_number))
        return True

    def _evaluate(self) -> None:
        """Apply every rule whose condition holds, until none does."""
        progressed = True
        while progressed:
            progressed = self._evaluate_once()

    def _evaluate_once(self) -> bool:
        s = self.s
        if s.step == Step.COMMITTED or s.height == 0:
            return False
        if self._try_decide():
            return True
        r = s.round
        quorum = self._quorum()
        current = s.proposals.get(r)

        if current is not None and s.step == Step.PROPOSE:
            proposal, block_identifier = current
            vr = proposal.pol_round
            if vr == -1:
                # lines 22-27
                acceptable = s.locked_round == -1 or (
                    s.locked_block is not None
                    and blocks.block_id(s.locked_block.header) == block_identifier
                )
                good = acceptable and self._valid(proposal.block, block_identifier)
                self._vote(PREVOTE, block_identifier if good else NIL)
                s.step = Step.PREVOTE
                return True
            if vr < r and self._count(PREVOTE, vr, block_identifier) >= quorum:
                # lines 28-33
                acceptable = s.locked_round <= vr or (
                    s.locked_block is not None
                    and blocks.block_id(s.locked_block.header) == block_identifier
                )
                good = acceptable and self._valid(proposal.block, block_identifier)
                self._vote(PREVOTE, block_identifier if good else NIL)
                s.step = Step.PREVOTE
                return True

        if (
            s.step == Step.PREVOTE
            and self._count(PREVOTE, r, None) >= quorum
            and self._first_time("prevote_timeout", r)
        ):
            # lines 34-35
            self._schedule(Timeout.PREVOTE)
            return True

        if (
            current is not None
            and s.step >= Step.PREVOTE
            and self._count(PREVOTE, r, current[1]) >= quorum
            and self._valid(current[0].block, current[1])
            and self._first_time("lock", r)
        ):
            # lines 36-43
            proposal, block_identifier = current
            if s.step == Step.PREVOTE:
                s.locked_round, s.locked_block = r, proposal.block
                self._vote(PRECOMMIT, block_identifier)
                s.step = Step.PRECOMMIT
            s.valid_round, s.valid_block = r, proposal.block
            return True

        if s.step == Step.PREVOTE and self._count(PREVOTE, r, NIL) >= quorum:
            # lines 44-46
            self._vote(PRECOMMIT, NIL)
            s.step = Step.PRECOMMIT
            return True

        if self._count(PRECOMMIT, r, None) >= quorum and self._first_time("precommit_timeout", r):
            # lines 47-48
            self._schedule(Timeout.PRECOMMIT)
            return True

        # lines 55-56: f+1 validators are in a later round: join it
        later = self._later_round()
        if later is not None:
            self._start_round(later)
            return True
        return False

    def _try_decide(self) -> bool:
        """Lines 49-54: a proposal with a quorum of precommits in its round is decided."""
        s = self.s
        quorum = self._quorum()
        for round_number, (proposal, block_identifier) in sorted(s.proposals.items()):
            if self._count(PRECOMMIT, round_number, block_identifier) < quorum:
                continue
            if not self._valid(proposal.block, block_identifier):
                continue
            precommits = [
                vote
                for known in s.votes[(PRECOMMIT, round_number)].values()
                for vote in known
                if vote.block_id == block_identifier
            ]
            precommits.sort(key=lambda vote: vote.validator_id)
            certificate = ledger_pb2.CommitCertificate(
                height=s.height,
                round=round_number,
                block_id=block_identifier,
                signatures=[
                    ledger_pb2.CommitSignature(
                        validator_id=vote.validator_id, signature=vote.signature
                    )
                    for vote in precommits
                ],
            )
            s.step = Step.COMMITTED
            s.decided_block_id = block_identifier
            self.outputs.append(Decide(proposal.block, block_identifier, certificate))
            return True
        return False

    def _later_round(self) -> int | None:
        s = self.s
        senders: dict[int, set[str]] = {}
        for (_, round_number), votes in s.votes.items():
            if round_number > s.round:
                senders.setdefault(round_number, set()).update(votes)
        for round_number, (proposal, _) in s.proposals.items():
            if round_number > s.round:
                senders.setdefault(round_number, set()).add(proposal.proposer_id)
        weak_quorum = (len(s.validators.validators) - 1) // 3 + 1  # f + 1
        candidates = [r for r, who in senders.items() if len(who) >= weak_quorum]
        return min(candidates) if candidates else None


def _header_or_none(header_bytes: bytes) -> ledger_pb2.BlockHeader | None:
    header = ledger_pb2.BlockHeader()
    try:
        header.ParseFromString(header_bytes)
    except Exception:
        return None
    return header

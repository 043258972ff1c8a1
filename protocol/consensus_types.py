"""The vocabulary of the consensus state machine (protocol/consensus.py): its parameters,
the inputs the shell feeds it, the outputs it returns, the `Application` it asks, and the
bytes a proposal signs. Plain data and pure functions; the transitions live in consensus.py.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from provledger.protocol.genesis import ValidatorSet
from provledger.v1 import ledger_pb2, peer_pb2

NIL = b""


@dataclass(frozen=True)
class Params:
    """Timeouts grow linearly with the round, so that a synchronous network always ends one."""

    propose_timeout_ms: int = 3_000
    prevote_timeout_ms: int = 1_000
    precommit_timeout_ms: int = 1_000
    timeout_delta_ms: int = 500
    # How long a proposer with an empty mempool waits for events before proposing an empty
    # block; below propose_timeout_ms, so an idle chain commits a heartbeat block instead of
    # changing rounds.
    empty_block_wait_ms: int = 1_000

    def timeout_ms(self, kind: Timeout, round_number: int) -> int:
        base = {
            Timeout.PROPOSE: self.propose_timeout_ms,
            Timeout.PREVOTE: self.prevote_timeout_ms,
            Timeout.PRECOMMIT: self.precommit_timeout_ms,
            Timeout.EMPTY_BLOCK: self.empty_block_wait_ms,
        }[kind]
        if kind is Timeout.EMPTY_BLOCK:
            return base
        return base + round_number * self.timeout_delta_ms


class Step(enum.IntEnum):
    PROPOSE = 0
    PREVOTE = 1
    PRECOMMIT = 2
    COMMITTED = 3  # decided; waiting for the shell to apply the block and start the next height


class Timeout(enum.Enum):
    PROPOSE = "propose"
    PREVOTE = "prevote"
    PRECOMMIT = "precommit"
    EMPTY_BLOCK = "empty_block"


# --- inputs ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StartHeight:
    """The block before `height` is committed and applied; begin `height` at round 0."""

    height: int
    now_ms: int


@dataclass(frozen=True)
class ProposalReceived:
    proposal: peer_pb2.Proposal
    now_ms: int


@dataclass(frozen=True)
class VoteReceived:
    vote: ledger_pb2.Vote
    now_ms: int


@dataclass(frozen=True)
class TimeoutFired:
    kind: Timeout
    height: int
    round: int
    now_ms: int


@dataclass(frozen=True)
class EventsAvailable:
    now_ms: int


@dataclass(frozen=True)
class Rebroadcast:
    """Send again what this validator signed at the current height. The algorithm assumes
    every message between correct validators eventually arrives; a network that loses
    messages (a partition, a reconnect) meets that assumption only if they are re-sent, so
    the shell feeds this every few hundred milliseconds."""

    now_ms: int


Input = StartHeight | ProposalReceived | VoteReceived | TimeoutFired | EventsAvailable | Rebroadcast


# --- outputs -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Persist:
    """Make this signed vote or proposal durable (synced) before anything after it happens.
    `block` is kept with a precommit so a restarted validator can restore its lock."""

    message: ledger_pb2.Vote | peer_pb2.Proposal
    block: ledger_pb2.Block | None = None


@dataclass(frozen=True)
class Broadcast:
    message: ledger_pb2.Vote | peer_pb2.Proposal | ledger_pb2.Evidence


@dataclass(frozen=True)
class ScheduleTimeout:
    kind: Timeout
    height: int
    round: int
    delay_ms: int


@dataclass(frozen=True)
class Decide:
    """`block` is final at its height with `certificate`; the shell commits it, then sends
    StartHeight for the next height."""

    block: ledger_pb2.Block
    block_id: bytes
    certificate: ledger_pb2.CommitCertificate


@dataclass(frozen=True)
class EvidenceFound:
    """A validator signed two conflicting votes; the shell records and gossips this."""

    evidence: ledger_pb2.Evidence


Output = Persist | Broadcast | ScheduleTimeout | Decide | EvidenceFound


class Application(Protocol):
    """The ledger, as consensus sees it. Every call judges against the last committed block."""

    def has_pending_events(self) -> bool: ...

    def validator_set(self, height: int) -> ValidatorSet:
        """The validators that sign `height`; asked for the height being started and the
        one after it, both final once the block before `height` is committed (a change
        committed at H signs from H + 2)."""

    def propose(self, height: int, round_number: int, now_ms: int) -> ledger_pb2.Block:
        """A new block for `height` on top of the committed chain."""

    def validate(self, block: ledger_pb2.Block, now_ms: int) -> bool:
        """Whether `block` is a valid next block (every event re-validated)."""


# --- signing -----------------------------------------------------------------------------


def proposal_sign_bytes(chain_id: str, proposal: peer_pb2.Proposal, block: bytes) -> bytes:
    return (
        chain_id.encode()
        + b"\x00"
        + proposal.height.to_bytes(8, "big")
        + proposal.round.to_bytes(4, "big")
        + (proposal.pol_round + 1).to_bytes(4, "big")
        + block
    )


def proposer(validators: ValidatorSet, height: int, round_number: int) -> str:
    members = validators.validators
    return members[(height + round_number) % len(members)].validator_id

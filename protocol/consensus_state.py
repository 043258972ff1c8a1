"""The consensus state machine's state (`ConsensusState`) and the loading of what a validator
signed before a restart (`restore_signed`), so that it never signs a conflict. The
transitions are protocol/consensus.py's; its docstring says how they fit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from provledger.protocol import blocks, crypto
from provledger.protocol.consensus_types import (
    Input,
    Params,
    Step,
)
from provledger.protocol.genesis import ValidatorSet
from provledger.v1 import ledger_pb2, peer_pb2

# --- state -------------------------------------------------------------------------------


@dataclass
class ConsensusState:
    chain_id: str
    validators: ValidatorSet  # the set of the current height (replaced as each height starts)
    key: crypto.SigningKey | None  # None for a node that follows without ever voting
    validator_id: str | None
    params: Params = field(default_factory=Params)

    height: int = 0
    round: int = 0
    step: Step = Step.COMMITTED
    locked_round: int = -1
    locked_block: ledger_pb2.Block | None = None
    valid_round: int = -1
    valid_block: ledger_pb2.Block | None = None
    awaiting_events: bool = False

    proposals: dict[int, tuple[peer_pb2.Proposal, bytes]] = field(default_factory=dict)
    votes: dict[tuple[int, int], dict[str, list[ledger_pb2.Vote]]] = field(default_factory=dict)
    validity: dict[bytes, bool] = field(default_factory=dict)
    fired: set[tuple[str, int]] = field(default_factory=set)
    # (height, round, type) -> what this validator signed; type 0 is the proposal.
    signed: dict[tuple[int, int, int], ledger_pb2.Vote | peer_pb2.Proposal] = field(
        default_factory=dict
    )
    signed_blocks: dict[bytes, ledger_pb2.Block] = field(default_factory=dict)
    # (height, round) of restored proposals in `signed` that are never sent (over the budget).
    withheld: set[tuple[int, int]] = field(default_factory=set)
    future: list[Input] = field(default_factory=list)
    evidence_seen: set[tuple[str, int, int, int]] = field(default_factory=set)
    decided_block_id: bytes | None = None


def restore_signed(
    state: ConsensusState,
    persisted: Iterable[tuple[ledger_pb2.Vote | peer_pb2.Proposal, ledger_pb2.Block | None]],
) -> list[tuple[int, int]]:
    """Load what this validator signed before a restart, so it never signs a conflict.

    Returns the (height, round) of every restored proposal that will be withheld, never sent,
    because its block is over the byte budget (see the module docstring), for the shell to log.
    """
    withheld: list[tuple[int, int]] = []
    for message, block in persisted:
        if isinstance(message, peer_pb2.Proposal):
            state.signed[(message.height, message.round, 0)] = message
            if not blocks.within_size_budget(message.block):
                state.withheld.add((message.height, message.round))
                withheld.append((message.height, message.round))
        else:
            state.signed[(message.height, message.round, message.type)] = message
            if block is not None and message.block_id:
                state.signed_blocks[message.block_id] = block
    return withheld

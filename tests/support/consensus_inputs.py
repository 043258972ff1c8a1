"""Hand-made inputs for unit tests of `protocol.consensus`, and a fake Application.

The state machine needs of a block only that its header decodes (with the right height) and
that `block_id(header)` is stable, so `make_block` crafts one from a label: different labels,
different block ids. Proposals and votes are signed with a `Consortium`'s deterministic
validator keys, exactly as validators sign them (`proposal_sign_bytes` under
DOMAIN_PROPOSAL, `protocol.votes.sign_vote`), so every signature the state machine checks is
real.

`FakeApplication` is consensus's view of the ledger with answers the test sets: whether events
are pending, which block ids are invalid, which validators sign from which height; it records
what it was asked.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from support.memory_state import GENESIS_TIME_MS, Consortium, digest

from provledger.protocol import blocks, consensus, crypto
from provledger.protocol.genesis import ValidatorSet
from provledger.protocol.votes import sign_vote
from provledger.v1 import ledger_pb2, peer_pb2


def make_block(chain_id: str, height: int, label: str) -> ledger_pb2.Block:
    """A block whose header decodes at `height`; its id is determined by `label`."""
    header = ledger_pb2.BlockHeader(
        chain_id=chain_id,
        height=height,
        previous_block_id=digest(label),
        time_ms=GENESIS_TIME_MS + height,
    )
    return ledger_pb2.Block(header=blocks.encode_header(header))


def block_id_of(block: ledger_pb2.Block | None) -> bytes:
    """The id a vote carries for `block`; None stands for nil (the empty id)."""
    return consensus.NIL if block is None else blocks.block_id(block.header)


def sign_proposal(
    consortium: Consortium,
    block: ledger_pb2.Block,
    round_number: int,
    pol_round: int = -1,
    *,
    height: int | None = None,
    proposer_id: str | None = None,
    key: crypto.SigningKey | None = None,
) -> peer_pb2.Proposal:
    """A proposal of `block` at (height, round), by the round's proposer unless `proposer_id`
    says otherwise, signed with the proposer's key unless `key` says otherwise. The height
    defaults to the block header's."""
    if height is None:
        height = blocks.decode_header(block.header).height
    if proposer_id is None:
        proposer_id = consensus.proposer(consortium.genesis.validator_set, height, round_number)
    proposal = peer_pb2.Proposal(
        height=height,
        round=round_number,
        pol_round=pol_round,
        block=block,
        proposer_id=proposer_id,
    )
    signing_key = key or consortium.validator_keys[proposer_id]
    proposal.signature = signing_key.sign(
        crypto.DOMAIN_PROPOSAL,
        consensus.proposal_sign_bytes(consortium.chain_id, proposal, blocks.block_id(block.header)),
    )
    return proposal


def sign_vote_as(
    consortium: Consortium,
    validator_id: str,
    vote_type: int,
    height: int,
    round_number: int,
    block: ledger_pb2.Block | None,
) -> ledger_pb2.Vote:
    """`validator_id`'s vote of `vote_type` for `block` (None: nil), signed with its key."""
    vote = ledger_pb2.Vote(
        type=vote_type,
        height=height,
        round=round_number,
        block_id=block_id_of(block),
        validator_id=validator_id,
    )
    vote.signature = sign_vote(consortium.validator_keys[validator_id], consortium.chain_id, vote)
    return vote


@dataclass
class FakeApplication:
    """`consensus.Application` with set answers: every block is valid unless its id is in
    `invalid`; `propose` builds a block labelled by height and round; `validators` sign from
    height 1 unless `changes` names another set from a later height."""

    chain_id: str
    validators: ValidatorSet
    pending: bool = True
    invalid: set[bytes] = field(default_factory=set)
    proposed: list[tuple[int, int]] = field(default_factory=list)
    validated: list[bytes] = field(default_factory=list)
    changes: dict[int, ValidatorSet] = field(default_factory=dict)  # from height -> set

    def has_pending_events(self) -> bool:
        return self.pending

    def validator_set(self, height: int) -> ValidatorSet:
        found = self.validators
        for from_height, validators in sorted(self.changes.items()):
            if from_height <= height:
                found = validators
        return found

    def propose(self, height: int, round_number: int, now_ms: int) -> ledger_pb2.Block:
        self.proposed.append((height, round_number))
        return make_block(self.chain_id, height, f"proposed at {height}/{round_number}")

    def validate(self, block: ledger_pb2.Block, now_ms: int) -> bool:
        identifier = blocks.block_id(block.header)
        self.validated.append(identifier)
        return identifier not in self.invalid

"""Votes and equivocation evidence: how they are signed and checked.

A vote signs `domain || chain_id || 0x00 || height (8 bytes BE) || round (4 bytes BE) ||
block_id`, with the prevote or precommit domain; a nil vote has an empty block id. A commit
certificate is a quorum of precommit signatures. Two votes of one type by one validator for
the same height and round but different blocks are evidence of equivocation.
"""

from __future__ import annotations

from provledger.protocol import crypto
from provledger.protocol.genesis import ValidatorSet
from provledger.v1 import ledger_pb2

PREVOTE = ledger_pb2.VOTE_TYPE_PREVOTE
PRECOMMIT = ledger_pb2.VOTE_TYPE_PRECOMMIT


def vote_sign_bytes(chain_id: str, height: int, round_number: int, block: bytes) -> bytes:
    return (
        chain_id.encode()
        + b"\x00"
        + height.to_bytes(8, "big")
        + round_number.to_bytes(4, "big")
        + block
    )


def vote_domain(vote_type: int) -> bytes:
    return crypto.DOMAIN_PREVOTE if vote_type == PREVOTE else crypto.DOMAIN_PRECOMMIT


def sign_vote(key: crypto.SigningKey, chain_id: str, vote: ledger_pb2.Vote) -> bytes:
    return key.sign(
        vote_domain(vote.type), vote_sign_bytes(chain_id, vote.height, vote.round, vote.block_id)
    )


def verify_vote(chain_id: str, validators: ValidatorSet, vote: ledger_pb2.Vote) -> bool:
    public_key = validators.public_key(vote.validator_id)
    return (
        public_key is not None
        and vote.type in (PREVOTE, PRECOMMIT)
        and crypto.verify(
            public_key,
            vote_domain(vote.type),
            vote_sign_bytes(chain_id, vote.height, vote.round, vote.block_id),
            vote.signature,
        )
    )


def verify_evidence(chain_id: str, validators: ValidatorSet, evidence: ledger_pb2.Evidence) -> bool:
    """True when the two votes are a real equivocation by one validator."""
    first, second = evidence.first, evidence.second
    return (
        first.validator_id == second.validator_id
        and first.type == second.type
        and first.height == second.height
        and first.round == second.round
        and first.block_id != second.block_id
        and verify_vote(chain_id, validators, first)
        and verify_vote(chain_id, validators, second)
    )


def make_evidence(first: ledger_pb2.Vote, second: ledger_pb2.Vote) -> ledger_pb2.Evidence:
    """Evidence in canonical order (by block id), so every node records the same bytes."""
    ordered = sorted((first, second), key=lambda vote: vote.block_id)
    return ledger_pb2.Evidence(first=ordered[0], second=ordered[1])


def evidence_key(vote: ledger_pb2.Vote) -> str:
    """Where evidence against this vote's signer is recorded: one record per equivocation."""
    return f"{vote.validator_id}/{vote.height}/{vote.round}/{vote.type}"

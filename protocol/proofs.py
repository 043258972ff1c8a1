"""Checking a node's answers to proof requests against the genesis document alone.

A node answers "is this event in the log?" with the signed event, an RFC 9162 inclusion proof
and a checkpoint (a block header and the validators' commit certificate), and "does today's
log extend the log at height h?" with a consistency proof and two checkpoints. The node is
not trusted: every part of its answer is checked here, in this order, and the first failure
raises `ProofAnswerError` with a stable `code`. Once governance has changed the validators,
the answer also carries the walk of the validator sets from the genesis set to the one that
signs its checkpoint (a `ValidatorChain`, protocol/validator_chain.py), checked first:

both
    bad_validator_chain  the walk of the validator sets does not verify (its reason says why);
inclusion (`verify_inclusion_answer`)
    bad_checkpoint   the checkpoint is not committed by a quorum of the validators of its
                     height, the genesis set or the set the walk names (wrong chain, malformed
                     header, a signature that does not verify, another set named, ...);
    wrong_event      the event's id, SHA-256(body), is not the id that was asked for;
    wrong_leaf_hash  the proof's leaf hash is not SHA-256(0x00 || event id || signature);
    wrong_tree_size  the proof is for another tree size than the checkpoint's log;
    bad_proof        the proof does not lead from that leaf to the checkpoint's log root.
consistency (`verify_consistency_answer`)
    bad_checkpoint   either checkpoint is not committed by a quorum;
    wrong_sizes      the proof's sizes are not the two checkpoints' log sizes;
    wrong_empty_root the first log is empty but its checkpoint names a root other than the
                     empty tree's (an empty log is a prefix of every log: nothing to prove);
    bad_proof        the proof does not show the second log extending the first.

On success they return a small frozen record of what was verified. Pure: no I/O, no clock;
the caller fetches the answer and reports the outcome (`provledger proof`, the demo).
"""

from __future__ import annotations

from dataclasses import dataclass

from provledger.protocol import merkle
from provledger.protocol.blocks import verify_checkpoint
from provledger.protocol.errors import CodedError, Rejected
from provledger.protocol.events import event_id, log_leaf
from provledger.protocol.genesis import Genesis
from provledger.protocol.validator_chain import ValidatorChainError, verify_validator_chain
from provledger.protocol.validators import ValidatorHistory
from provledger.v1 import ledger_pb2


class ProofAnswerError(CodedError):
    """A node's proof answer that does not verify: `code` for programs, `reason` for people."""


@dataclass(frozen=True)
class VerifiedInclusion:
    """An event that is leaf `leaf_index` of the log of `tree_size` leaves whose root is
    `log_root`, committed at `height` by `signers` of that height's `validators`."""

    event_id: bytes
    leaf_index: int
    tree_size: int
    height: int
    log_root: bytes
    signers: tuple[str, ...]
    validators: int
    proof_hashes: int


@dataclass(frozen=True)
class VerifiedConsistency:
    """The log of `first_size` leaves at `first_height` is a prefix of the log of
    `second_size` leaves at `second_height`."""

    first_height: int
    first_size: int
    second_height: int
    second_size: int
    proof_hashes: int


def verify_inclusion_answer(
    signed: ledger_pb2.SignedEvent,
    proof: ledger_pb2.InclusionProof,
    checkpoint: ledger_pb2.Checkpoint,
    genesis: Genesis,
    expected_event_id: bytes,
    validator_chain: ledger_pb2.ValidatorChain | None = None,
) -> VerifiedInclusion:
    """Check that `signed`, the event asked for by `expected_event_id`, is in the log that
    `checkpoint` commits, by `proof`. Raises ProofAnswerError (codes in the module docstring)."""
    history = _walk(validator_chain, genesis)
    header = _trusted_header(checkpoint, genesis, history)
    if event_id(signed.body) != expected_event_id:
        raise ProofAnswerError("wrong_event", "the node returned a different event than asked for")
    leaf_hash = merkle.hash_leaf(log_leaf(expected_event_id, signed.signature))
    if leaf_hash != proof.leaf_hash:
        raise ProofAnswerError("wrong_leaf_hash", "the proof's leaf hash is not the event's")
    if proof.tree_size != header.log_size:
        raise ProofAnswerError(
            "wrong_tree_size", "the proof is for a different tree size than the checkpoint"
        )
    try:
        merkle.verify_inclusion(
            leaf_hash, proof.leaf_index, header.log_size, list(proof.hashes), header.log_root
        )
    except merkle.ProofError as error:
        raise ProofAnswerError("bad_proof", str(error)) from None
    return VerifiedInclusion(
        event_id=expected_event_id,
        leaf_index=proof.leaf_index,
        tree_size=header.log_size,
        height=header.height,
        log_root=header.log_root,
        signers=tuple(entry.validator_id for entry in checkpoint.certificate.signatures),
        validators=len(history.at(header.height).validators),
        proof_hashes=len(proof.hashes),
    )


def verify_consistency_answer(
    proof: ledger_pb2.ConsistencyProof,
    first: ledger_pb2.Checkpoint,
    second: ledger_pb2.Checkpoint,
    genesis: Genesis,
    validator_chain: ledger_pb2.ValidatorChain | None = None,
) -> VerifiedConsistency:
    """Check that the log `second` commits extends the log `first` commits, by `proof`.
    Raises ProofAnswerError (codes in the module docstring)."""
    history = _walk(validator_chain, genesis)
    first_header = _trusted_header(first, genesis, history)
    second_header = _trusted_header(second, genesis, history)
    if (proof.first_size, proof.second_size) != (first_header.log_size, second_header.log_size):
        raise ProofAnswerError("wrong_sizes", "the proof's sizes do not match the checkpoints")
    if first_header.log_size == 0:
        # merkle.verify_consistency refuses size 0 (a claim about the empty log proves
        # nothing); the answer is still right if the checkpoint names the empty root.
        if first_header.log_root != merkle.EMPTY_ROOT:
            raise ProofAnswerError(
                "wrong_empty_root", "the first checkpoint's empty log has a wrong root"
            )
    else:
        try:
            merkle.verify_consistency(
                first_header.log_size,
                second_header.log_size,
                list(proof.hashes),
                first_header.log_root,
                second_header.log_root,
            )
        except merkle.ProofError as error:
            raise ProofAnswerError("bad_proof", str(error)) from None
    return VerifiedConsistency(
        first_height=first_header.height,
        first_size=first_header.log_size,
        second_height=second_header.height,
        second_size=second_header.log_size,
        proof_hashes=len(proof.hashes),
    )


def _walk(chain: ledger_pb2.ValidatorChain | None, genesis: Genesis) -> ValidatorHistory:
    """The validator sets `chain` proves (the genesis set alone without one)."""
    try:
        return verify_validator_chain(chain or ledger_pb2.ValidatorChain(), genesis)
    except ValidatorChainError as error:
        raise ProofAnswerError("bad_validator_chain", str(error)) from None


def _trusted_header(
    checkpoint: ledger_pb2.Checkpoint, genesis: Genesis, history: ValidatorHistory
) -> ledger_pb2.BlockHeader:
    try:
        return verify_checkpoint(checkpoint, genesis, history)
    except Rejected as error:
        raise ProofAnswerError("bad_checkpoint", str(error)) from None

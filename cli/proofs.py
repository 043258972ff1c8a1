"""`provledger proof inclusion` and `provledger proof consistency`: fetch a proof and its
checkpoints from a node and verify them locally, trusting only the genesis file (after
validator-set changes, the node's answer carries the walk of the validator sets, checked too).

The checking itself is protocol/proofs.py; `fetch_verified_inclusion` and
`fetch_verified_consistency` (also the demo's steps 12 and 13) ask the node and turn a failed
check into a CommandError.
"""

from __future__ import annotations

import argparse

from provledger.cli.connection import client_for
from provledger.cli.output import CommandError, emit, load_genesis, parse_hex
from provledger.protocol.genesis import Genesis
from provledger.protocol.proofs import (
    ProofAnswerError,
    VerifiedConsistency,
    VerifiedInclusion,
    verify_consistency_answer,
    verify_inclusion_answer,
)
from provledger.v1 import api_pb2, api_pb2_grpc

# A signature or a hash path that does not hold reads "proof does NOT verify: <why>"; an
# answer about something other than what was asked reads as its reason alone.
_CHECK_FAILURES = frozenset({"bad_checkpoint", "bad_proof", "bad_validator_chain"})


def cmd_proof_inclusion(args: argparse.Namespace) -> None:
    genesis = load_genesis(args.genesis)
    with client_for(args) as client:
        verified = fetch_verified_inclusion(
            client.stub, genesis, parse_hex(args.event_id, "event id"), args.height
        )
    emit(
        args,
        {
            "verified": True,
            "leaf_index": verified.leaf_index,
            "tree_size": verified.tree_size,
            "height": verified.height,
            "log_root": verified.log_root.hex(),
            "signers": len(verified.signers),
            "validators": verified.validators,
        },
        f"event {args.event_id} is leaf {verified.leaf_index} of the log of size "
        f"{verified.tree_size} committed at height {verified.height} by "
        f"{len(verified.signers)} of {verified.validators} validators: VERIFIED",
    )


def cmd_proof_consistency(args: argparse.Namespace) -> None:
    genesis = load_genesis(args.genesis)
    with client_for(args) as client:
        verified = fetch_verified_consistency(client.stub, genesis, args.first, args.second)
    emit(
        args,
        {
            "verified": True,
            "first_height": verified.first_height,
            "first_size": verified.first_size,
            "second_height": verified.second_height,
            "second_size": verified.second_size,
        },
        f"the log at height {verified.first_height} (size {verified.first_size}) is a prefix "
        f"of the log at height {verified.second_height} (size {verified.second_size}): "
        "VERIFIED",
    )


def fetch_verified_inclusion(
    stub: api_pb2_grpc.LedgerServiceStub, genesis: Genesis, event_id: bytes, height: int = 0
) -> VerifiedInclusion:
    """Ask for the inclusion of `event_id` under the checkpoint at `height` (0: the latest)
    and verify the answer; raise CommandError if it does not verify."""
    response = stub.GetInclusionProof(
        api_pb2.GetInclusionProofRequest(event_id=event_id, height=height)
    )
    try:
        return verify_inclusion_answer(
            response.event,
            response.proof,
            response.checkpoint,
            genesis,
            event_id,
            response.validator_chain,
        )
    except ProofAnswerError as error:
        raise _failure(error) from None


def fetch_verified_consistency(
    stub: api_pb2_grpc.LedgerServiceStub,
    genesis: Genesis,
    first_height: int,
    second_height: int = 0,
) -> VerifiedConsistency:
    """Ask whether the log at `second_height` (0: the latest) extends the log at
    `first_height` and verify the answer; raise CommandError if it does not verify."""
    response = stub.GetConsistencyProof(
        api_pb2.GetConsistencyProofRequest(first_height=first_height, second_height=second_height)
    )
    try:
        return verify_consistency_answer(
            response.proof, response.first, response.second, genesis, response.validator_chain
        )
    except ProofAnswerError as error:
        raise _failure(error) from None


def _failure(error: ProofAnswerError) -> CommandError:
    if error.code in _CHECK_FAILURES:
        return CommandError(f"proof does NOT verify: {error.reason}")
    return CommandError(error.reason)

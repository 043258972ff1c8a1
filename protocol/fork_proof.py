"""Proofs of a fork: two checkpoints, each committed by a quorum of the validators of its
height, that cannot both be on one chain. Found by `provledger audit watch` (cli/audit.py) and
by nodes comparing their peers' checkpoints with their own (node/forks.py); checked offline by
`provledger verify` against the genesis alone.

Which validators sign a height is proven, as for every proof answer, by a walk of the chain of
validator sets from the genesis (protocol/validator_chain.py, ADR 013): each side of a fork
proof carries the walk that its checkpoint is verified with (empty while the genesis set
signs). The two walks may be one (a node that checks a peer's checkpoint against the sets of
its own chain gives both sides its own walk) or two (two nodes of two branches, each serving
its own); either way each checkpoint is committed by a quorum of a set that a chain of
quorum-signed blocks from the genesis made.

Two quorum-signed checkpoints conflict when (`find_conflict`):
same_height        they are at one height and commit different blocks. Any two quorums
                   of one set share more than a third of the validators; when both
                   certificates are of one round, each validator that signed both (with one
                   key: of the set of that height on both sides) signed two precommits for
                   different blocks at one height and round: an equivocation, provable by
                   these signatures alone (`VerifiedFork.equivocators`). In different rounds
                   an honest validator may precommit again after a quorum of prevotes, so the
                   signatures prove the fork, not who caused it.
inconsistent_logs  the second is at a greater height, and its log cannot extend the first's:
                   it is smaller, or of the same size with another root, or an RFC 6962
                   consistency proof leads to the second checkpoint's log root and, for the
                   first `first_size` leaves, to a root other than the first checkpoint's.
                   (A consistency proof that leads nowhere proves nothing: anyone can write
                   wrong hashes. When `first_size` is a power of two a standard proof leaves
                   that prefix's root out, so only the cases above can show the conflict.)

Format "provledger-fork/2": canonical JSON exactly as evidence bundles are written
(protocol/evidence_format.py: sorted keys, no spaces, ASCII, one final newline; checkpoints
as `evidence_format.checkpoint_json` writes them, walks as `validator_chain.chain_to_json` does):

    {"format": "provledger-fork/2", "kind": "same_height" | "inconsistent_logs",
     "chain_id": str, "genesis_hash": hex,
     "first":  {"source": str, "checkpoint": {...},     # the lower (or equal) height
                "validator_chain": {"steps": [...]}},  # the walk to its height's set
     "second": {"source": str, "checkpoint": {...}, "validator_chain": {"steps": [...]}},
     "consistency": null | {"first_size": int, "second_size": int, "hashes": [b64, ...]}}

Format "provledger-fork/1" (written before 2026-12-02) is the same without `validator_chain`:
such files still verify, each checkpoint against the genesis set alone (what an empty walk
says), so a /1 fork after a validator-set change does not verify (bad_checkpoint). Only /2 is
written.

`source` says where each checkpoint was seen (a node's address, a peer's id); it is not
signed, and the verifier does not rely on it. Verification (`verify_fork_proof`), in order;
the first failure raises `ForkProofError` with a code:
    too_large, not_canonical, malformed   the bytes are not canonical JSON of this shape;
    unsupported_format                    another format;
    wrong_genesis                         another chain or genesis document;
    bad_validator_chain                   either walk of the validator sets does not verify
                                          from the genesis (or is not the JSON of a walk);
    bad_checkpoint                        either checkpoint is not committed by a quorum of
                                          the set its walk says signs its height;
    wrong_heights                         same_height at two heights, or inconsistent_logs
                                          whose second is not above its first;
    wrong_sizes                           the consistency proof's sizes are not the logs';
    unbound_proof                         the consistency proof does not lead to the second
                                          checkpoint's log root, and nothing else conflicts;
    not_conflicting                       the two checkpoints can be on one chain.
Pure: no I/O, no clock.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from provledger.protocol import merkle
from provledger.protocol.blocks import block_id, verify_checkpoint
from provledger.protocol.errors import CodedError, Rejected
from provledger.protocol.evidence import read_checkpoint
from provledger.protocol.evidence_claims import BundleError
from provledger.protocol.evidence_format import checkpoint_json, encode_canonical, parse_canonical
from provledger.protocol.genesis import Genesis, ValidatorSet
from provledger.protocol.limits import FORK_PROOF_SIZE_BYTES_MAX
from provledger.protocol.validator_chain import (
    ValidatorChainError,
    chain_from_json,
    chain_to_json,
    verify_validator_chain,
)
from provledger.protocol.validators import ValidatorHistory
from provledger.protocol.votes import PRECOMMIT, make_evidence
from provledger.v1 import ledger_pb2

FORMAT = "provledger-fork/2"
FORMAT_1 = "provledger-fork/1"  # still verified: no walks, the genesis set signs every height
SAME_HEIGHT = "same_height"
INCONSISTENT_LOGS = "inconsistent_logs"
KINDS = (SAME_HEIGHT, INCONSISTENT_LOGS)
_TOP_FIELDS = ("chain_id", "consistency", "first", "format", "genesis_hash", "kind", "second")


class ForkProofError(CodedError):
    """A fork proof that does not verify, or two checkpoints that cannot be compared: `code`
    for programs (listed in the module docstring), `reason` for people."""


@dataclass(frozen=True)
class Sighting:
    """A checkpoint, where it was seen (unsigned: for people, not for the verifier), and the
    walk of the validator sets from the genesis to the set that signs its height (empty while
    the genesis set does)."""

    source: str
    checkpoint: ledger_pb2.Checkpoint
    validator_chain: ledger_pb2.ValidatorChain = field(default_factory=ledger_pb2.ValidatorChain)


@dataclass(frozen=True)
class ForkProof:
    """Two conflicting quorum-signed checkpoints, `first` at the lower (or equal) height, and
    the consistency proof that shows the conflict, if one does."""

    kind: str
    first: Sighting
    second: Sighting
    consistency: ledger_pb2.ConsistencyProof | None = None
    reason: str = ""


@dataclass(frozen=True)
class VerifiedFork:
    """What a verified fork proof shows."""

    proof: ForkProof
    genesis: Genesis
    first_header: ledger_pb2.BlockHeader
    second_header: ledger_pb2.BlockHeader
    first_block_id: bytes
    second_block_id: bytes
    first_signers: tuple[str, ...]
    second_signers: tuple[str, ...]
    first_validators: ValidatorSet  # the set that signs the first's height, by its walk
    second_validators: ValidatorSet

    @property
    def signed_both(self) -> tuple[str, ...]:
        """Validators whose signatures are in both certificates."""
        return tuple(sorted(set(self.first_signers) & set(self.second_signers)))

    @property
    def _one_key(self) -> tuple[str, ...]:
        """Of `signed_both`, those whose key is one in both sides' sets (so one key signed
        both precommits)."""
        first, second = self.first_validators, self.second_validators
        return tuple(
            v
            for v in self.signed_both
            if first.public_key(v) is not None and first.public_key(v) == second.public_key(v)
        )

    @property
    def same_round(self) -> bool:
        first, second = self.proof.first.checkpoint, self.proof.second.checkpoint
        return first.certificate.round == second.certificate.round

    @property
    def equivocators(self) -> tuple[str, ...]:
        """Validators provably Byzantine by these signatures alone: at one height and round,
        each precommitted two different blocks."""
        return self._one_key if self.proof.kind == SAME_HEIGHT and self.same_round else ()

    def to_json(self) -> dict[str, Any]:
        def side(sighting: Sighting, header: ledger_pb2.BlockHeader, identifier: bytes,
                 signers: tuple[str, ...], validators: ValidatorSet) -> dict[str, Any]:  # fmt: skip
            return {
                "source": sighting.source,
                "height": header.height,
                "round": sighting.checkpoint.certificate.round,
                "block_id": identifier.hex(),
                "log_size": header.log_size,
                "log_root": header.log_root.hex(),
                "signers": list(signers),
                "validators": len(validators.validators),
                "quorum": validators.quorum_size,
            }

        return {
            "verified": True,
            "format": FORMAT,
            "kind": self.proof.kind,
            "chain_id": self.genesis.chain_id,
            "genesis_hash": self.genesis.genesis_hash.hex(),
            "reason": self.proof.reason,
            "first": side(
                self.proof.first,
                self.first_header,
                self.first_block_id,
                self.first_signers,
                self.first_validators,
            ),
            "second": side(
                self.proof.second,
                self.second_header,
                self.second_block_id,
                self.second_signers,
                self.second_validators,
            ),
            "signed_both": list(self.signed_both),
            "equivocators": list(self.equivocators),
            # The set of the first's height (the fork's, for same_height), by its walk.
            "validators": len(self.first_validators.validators),
            "quorum": self.first_validators.quorum_size,
        }


# --- finding a conflict ------------------------------------------------------------------


def find_conflict(
    one: Sighting,
    other: Sighting,
    genesis: Genesis,
    consistency: ledger_pb2.ConsistencyProof | None = None,
    history: ValidatorHistory | None = None,
) -> ForkProof | None:
    """The proof that two checkpoints conflict, or None if nothing shows they do. Raises
    `ForkProofError` unless both are committed by a quorum of the validators of their
    heights: by `history` if given (sets the caller already trusts, such as a node's own
    store; the sightings' walks are then not read), else by each sighting's walk, verified
    from the genesis (bad_validator_chain, bad_checkpoint). `consistency`, if given, is a
    proof that the log of the higher checkpoint extends the lower one's; it is kept in the
    answer only if it is what shows the conflict."""
    one_header = _verified_header(one, "a checkpoint", genesis, history)
    other_header = _verified_header(other, "a checkpoint", genesis, history)
    if one_header.height > other_header.height:
        one, other, one_header, other_header = other, one, other_header, one_header
    if one_header.height == other_header.height:
        if block_id(one.checkpoint.header) == block_id(other.checkpoint.header):
            return None
        return ForkProof(
            SAME_HEIGHT, one, other, None, f"two blocks committed at height {one_header.height}"
        )
    reason = _logs_conflict(one_header, other_header, None)
    if reason is not None:
        return ForkProof(INCONSISTENT_LOGS, one, other, None, reason)
    if consistency is not None:
        reason = _logs_conflict(one_header, other_header, consistency)
        if reason is not None:
            return ForkProof(INCONSISTENT_LOGS, one, other, consistency, reason)
    return None


def equivocation_evidence(verified: VerifiedFork) -> list[ledger_pb2.Evidence]:
    """For each of `verified.equivocators`, its two precommits as ledger `Evidence` (the same
    votes a certificate's signatures are), in validator order."""
    evidence = []
    first, second = verified.proof.first.checkpoint, verified.proof.second.checkpoint
    for validator_id in verified.equivocators:
        votes = [
            ledger_pb2.Vote(
                type=PRECOMMIT,
                height=checkpoint.certificate.height,
                round=checkpoint.certificate.round,
                block_id=checkpoint.certificate.block_id,
                validator_id=validator_id,
                signature=next(
                    s.signature
                    for s in checkpoint.certificate.signatures
                    if s.validator_id == validator_id
                ),
            )
            for checkpoint in (first, second)
        ]
        evidence.append(make_evidence(votes[0], votes[1]))
    return evidence


def walked_history(sighting: Sighting, genesis: Genesis) -> ValidatorHistory:
    """The validator sets `sighting`'s walk proves from the genesis; raises ForkProofError
    (bad_validator_chain)."""
    try:
        return verify_validator_chain(sighting.validator_chain, genesis)
    except ValidatorChainError as error:
        raise ForkProofError(
            "bad_validator_chain",
            f"the walk of the validator sets seen at {sighting.source} does not verify: {error}",
        ) from None


def _verified_header(
    sighting: Sighting, what: str, genesis: Genesis, history: ValidatorHistory | None
) -> ledger_pb2.BlockHeader:
    if history is None:
        history = walked_history(sighting, genesis)
    try:
        return verify_checkpoint(sighting.checkpoint, genesis, history)
    except Rejected as error:
        raise ForkProofError(
            "bad_checkpoint", f"{what} seen at {sighting.source} does not verify: {error}"
        ) from None


def _logs_conflict(
    first: ledger_pb2.BlockHeader,
    second: ledger_pb2.BlockHeader,
    consistency: ledger_pb2.ConsistencyProof | None,
) -> str | None:
    """Why the log of `second` (at a greater height) cannot extend the log of `first`, or
    None. With `consistency`, only what that proof shows; raises ForkProofError (wrong_sizes,
    unbound_proof) for a proof that shows nothing about these two logs."""
    if consistency is None:
        if first.log_size > second.log_size:
            return (
                f"the log shrank from {first.log_size} leaves at height {first.height} to "
                f"{second.log_size} at height {second.height}"
            )
        if first.log_size == second.log_size and first.log_root != second.log_root:
            return (
                f"the log of {first.log_size} leaves has root {first.log_root.hex()} at height "
                f"{first.height} and {second.log_root.hex()} at height {second.height}"
            )
        return None
    if (consistency.first_size, consistency.second_size) != (first.log_size, second.log_size):
        raise ForkProofError("wrong_sizes", "the consistency proof's sizes are not the logs'")
    if not 0 < first.log_size < second.log_size:
        return None  # an empty or equal log: there is nothing between them to prove
    try:
        prefix_root, root = merkle.roots_from_consistency_proof(
            first.log_size, second.log_size, list(consistency.hashes), first.log_root
        )
    except merkle.ProofError as error:
        raise ForkProofError(
            "unbound_proof", f"the consistency proof is malformed: {error}"
        ) from None
    if root != second.log_root:
        raise ForkProofError(
            "unbound_proof",
            "the consistency proof does not lead to the second checkpoint's log root, so it "
            "shows nothing about either log",
        )
    if prefix_root == first.log_root:
        return None
    return (
        f"the first {first.log_size} leaves of the log at height {second.height} have root "
        f"{prefix_root.hex()}, not the root {first.log_root.hex()} signed at height "
        f"{first.height}"
    )


# --- the file ----------------------------------------------------------------------------


def encode_fork_proof(proof: ForkProof, genesis: Genesis) -> bytes:
    """The canonical bytes of `proof` (format in the module docstring)."""
    consistency = None
    if proof.consistency is not None:
        consistency = {
            "first_size": proof.consistency.first_size,
            "second_size": proof.consistency.second_size,
            "hashes": [_b64(h) for h in proof.consistency.hashes],
        }
    return encode_canonical(
        {
            "format": FORMAT,
            "kind": proof.kind,
            "chain_id": genesis.chain_id,
            "genesis_hash": genesis.genesis_hash.hex(),
            "first": _sighting_json(proof.first),
            "second": _sighting_json(proof.second),
            "consistency": consistency,
        }
    )


def verify_fork_proof(data: bytes, genesis: Genesis) -> VerifiedFork:
    """Check a fork proof's bytes against `genesis` alone; what it shows, or ForkProofError
    (codes in the module docstring)."""
    try:
        document = _field_object(parse_canonical(data, FORK_PROOF_SIZE_BYTES_MAX), "the proof")
        if set(document) != set(_TOP_FIELDS):
            raise _malformed(f"the proof must have exactly the fields {list(_TOP_FIELDS)}")
        if document["format"] not in (FORMAT, FORMAT_1):
            raise ForkProofError(
                "unsupported_format", f"format is not {FORMAT!r} (or {FORMAT_1!r})"
            )
        walks = document["format"] == FORMAT
        if document["chain_id"] != genesis.chain_id:
            raise ForkProofError(
                "wrong_genesis", f"the proof is not for chain {genesis.chain_id!r}"
            )
        if document["genesis_hash"] != genesis.genesis_hash.hex():
            raise ForkProofError("wrong_genesis", "the proof is for another genesis document")
        kind = document["kind"]
        if kind not in KINDS:
            raise _malformed(f"kind must be one of {list(KINDS)}")
        first, first_header, first_id, first_signers, first_set = _read_sighting(
            document["first"], "first", genesis, walks
        )
        second, second_header, second_id, second_signers, second_set = _read_sighting(
            document["second"], "second", genesis, walks
        )
        consistency = _read_consistency(document["consistency"])
    except BundleError as error:  # the shared canonical JSON and checkpoint readers
        raise ForkProofError(error.code, error.reason) from None
    if kind == SAME_HEIGHT:
        if consistency is not None:
            raise _malformed("a same_height proof holds no consistency proof")
        if first_header.height != second_header.height:
            raise ForkProofError(
                "wrong_heights",
                f"same_height checkpoints are at heights {first_header.height} and "
                f"{second_header.height}",
            )
        if first_id == second_id:
            raise ForkProofError("not_conflicting", "both checkpoints commit the same block")
        reason = f"two blocks committed at height {first_header.height}"
    else:
        if first_header.height >= second_header.height:
            raise ForkProofError(
                "wrong_heights",
                f"the second checkpoint (height {second_header.height}) must be above the "
                f"first (height {first_header.height})",
            )
        found = _logs_conflict(first_header, second_header, None)
        if found is None and consistency is not None:
            found = _logs_conflict(first_header, second_header, consistency)
        if found is None:
            raise ForkProofError(
                "not_conflicting", "the second checkpoint's log can extend the first's"
            )
        reason = found
    return VerifiedFork(
        proof=ForkProof(kind, first, second, consistency, reason),
        genesis=genesis,
        first_header=first_header,
        second_header=second_header,
        first_block_id=first_id,
        second_block_id=second_id,
        first_signers=first_signers,
        second_signers=second_signers,
        first_validators=first_set,
        second_validators=second_set,
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _sighting_json(sighting: Sighting) -> dict[str, Any]:
    return {
        "source": sighting.source,
        "checkpoint": checkpoint_json(sighting.checkpoint),
        "validator_chain": chain_to_json(sighting.validator_chain),
    }


def _malformed(reason: str) -> ForkProofError:
    return ForkProofError("malformed", reason)


def _field_object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _malformed(f"{where} must be an object")
    return value


def _read_sighting(
    value: Any, where: str, genesis: Genesis, walks: bool
) -> tuple[Sighting, ledger_pb2.BlockHeader, bytes, tuple[str, ...], ValidatorSet]:
    """A side of the proof; `walks`: it carries a walk (format 2), else the genesis set signs
    (format 1)."""
    entry = _field_object(value, where)
    names = {"checkpoint", "source", "validator_chain"} if walks else {"checkpoint", "source"}
    if set(entry) != names:
        raise _malformed(f"{where} must have exactly the fields {sorted(names)}")
    source = entry["source"]
    if not isinstance(source, str):
        raise _malformed(f"{where}.source must be a string")
    walk = ledger_pb2.ValidatorChain()
    if walks:
        try:
            walk = chain_from_json(entry["validator_chain"])
        except ValidatorChainError as error:
            raise ForkProofError(
                "bad_validator_chain", f"{where}.validator_chain is not a walk: {error}"
            ) from None
    history = walked_history(Sighting(source, ledger_pb2.Checkpoint(), walk), genesis)
    checkpoint, header, identifier, signers = read_checkpoint(
        entry["checkpoint"], genesis, f"{where}.checkpoint", history
    )
    validators = history.at(header.height)
    return Sighting(source, checkpoint, walk), header, identifier, signers, validators


def _read_consistency(value: Any) -> ledger_pb2.ConsistencyProof | None:
    if value is None:
        return None
    entry = _field_object(value, "consistency")
    if set(entry) != {"first_size", "hashes", "second_size"}:
        raise _malformed("consistency must have exactly first_size, hashes and second_size")
    sizes = [entry["first_size"], entry["second_size"]]
    if any(not isinstance(s, int) or isinstance(s, bool) or not 0 <= s < 2**64 for s in sizes):
        raise _malformed("consistency sizes must be integers in [0, 2^64)")
    hashes = entry["hashes"]
    if not isinstance(hashes, list) or len(hashes) > merkle.PROOF_HASHES_MAX:
        raise _malformed(f"consistency.hashes must be at most {merkle.PROOF_HASHES_MAX} hashes")
    decoded = [_hash(h, f"consistency.hashes[{i}]") for i, h in enumerate(hashes)]
    return ledger_pb2.ConsistencyProof(first_size=sizes[0], second_size=sizes[1], hashes=decoded)


def _hash(value: Any, where: str) -> bytes:
    if isinstance(value, str):
        try:
            data = base64.b64decode(value, validate=True)
        except ValueError:
            data = b""
        if _b64(data) == value and len(data) == merkle.HASH_SIZE_BYTES:
            return data
    raise _malformed(f"{where} must be {merkle.HASH_SIZE_BYTES} bytes in canonical base64")

"""Blocks, their ids, execution, and the commit certificates that make them final.

A block is a header, its ordered events, and the certificate of the block before it. The
header commits to everything: the previous block id (at height 1, the genesis hash), the
events root (RFC 6962 root over this block's log leaves), the whole log's size and root after
the block, the state root after it, and the validator set. Its id is
SHA-256("provledger/v1/header\\x00" || header bytes), over the bytes as transmitted.

`execute_block` is the one way a block comes to be: the proposer runs it over candidate events
(dropping those the rules reject) and every validator runs it again over a proposal (where any
rejection makes the proposal invalid). Both get the same header, byte for byte.

A commit certificate holds precommit signatures over the block id from more than two thirds
of the validators; a header with its certificate is a checkpoint, verifiable with nothing but
the genesis document.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from google.protobuf.message import DecodeError

from provledger.protocol import crypto, merkle
from provledger.protocol.errors import Rejected, check, invalid
from provledger.protocol.events import DecodedEvent
from provledger.protocol.genesis import Genesis, ValidatorSet
from provledger.protocol.rules import apply_event
from provledger.protocol.state import Overlay, StateReader, Write, next_state_root
from provledger.v1 import ledger_pb2

DOMAIN_HEADER = b"provledger/v1/header\x00"


def block_id(header_bytes: bytes) -> bytes:
    return hashlib.sha256(DOMAIN_HEADER + header_bytes).digest()


def encode_header(header: ledger_pb2.BlockHeader) -> bytes:
    return header.SerializeToString(deterministic=True)


def decode_header(header_bytes: bytes) -> ledger_pb2.BlockHeader:
    header = ledger_pb2.BlockHeader()
    try:
        header.ParseFromString(header_bytes)
    except DecodeError:
        raise invalid("malformed", "block header is not a valid BlockHeader message") from None
    return header


def certificate_hash(certificate: ledger_pb2.CommitCertificate | None) -> bytes:
    """What a header's last_commit_hash holds: 32 zero bytes when there is no certificate."""
    if certificate is None or not certificate.block_id:
        return bytes(32)
    return hashlib.sha256(certificate.SerializeToString(deterministic=True)).digest()


def precommit_sign_bytes(chain_id: str, height: int, round_number: int, block: bytes) -> bytes:
    return (
        chain_id.encode()
        + b"\x00"
        + height.to_bytes(8, "big")
        + round_number.to_bytes(4, "big")
        + block
    )


def sign_precommit(
    key: crypto.SigningKey, chain_id: str, height: int, round_number: int, block: bytes
) -> bytes:
    return key.sign(
        crypto.DOMAIN_PRECOMMIT, precommit_sign_bytes(chain_id, height, round_number, block)
    )


# --- the chain tip -----------------------------------------------------------------------


@dataclass(frozen=True)
class Tip:
    """What the next block builds on: the last committed block, or genesis (height 0)."""

    height: int
    block_id: bytes
    time_ms: int
    log_size: int
    state_root: bytes

    @classmethod
    def from_header(cls, header: ledger_pb2.BlockHeader, header_bytes: bytes) -> Tip:
        return cls(
            height=header.height,
            block_id=block_id(header_bytes),
            time_ms=header.time_ms,
            log_size=header.log_size,
            state_root=header.state_root,
        )


def genesis_tip(genesis: Genesis) -> Tip:
    return Tip(
        height=0,
        block_id=genesis.genesis_hash,
        time_ms=genesis.genesis_time_ms,
        log_size=0,
        state_root=genesis_state_root(genesis),
    )


def genesis_writes(genesis: Genesis) -> list[Write]:
    return [Write("member", m.member_id, m) for m in genesis.members]


def genesis_state_root(genesis: Genesis) -> bytes:
    return next_state_root(genesis.genesis_hash, genesis_writes(genesis))


# --- execution ---------------------------------------------------------------------------


@dataclass
class ExecutedBlock:
    header: ledger_pb2.BlockHeader
    header_bytes: bytes
    block_id: bytes
    events: list[DecodedEvent]
    writes: list[Write]
    log: merkle.CompactRange  # the log after this block
    merkle_nodes: list[tuple[int, int, bytes]]  # perfect subtrees this block completed
    rejected: list[tuple[DecodedEvent, Rejected]] = field(default_factory=list)

    def to_block(self, last_commit: ledger_pb2.CommitCertificate | None) -> ledger_pb2.Block:
        block = ledger_pb2.Block(header=self.header_bytes, events=[d.signed for d in self.events])
        if last_commit is not None:
            block.last_commit.CopyFrom(last_commit)
        return block


def execute_block(
    *,
    state: StateReader,
    log: merkle.CompactRange,
    tip: Tip,
    chain_id: str,
    candidates: Sequence[DecodedEvent],
    time_ms: int,
    proposer_id: str,
    validators: ValidatorSet,
    last_commit: ledger_pb2.CommitCertificate | None,
    strict: bool,
    signatures_checked: bool = False,
) -> ExecutedBlock:
    """Apply `candidates` in order on top of `tip`. With `strict`, any rejection raises (a
    validator checking a proposal); without, rejected events are left out and reported (a
    proposer filling a block). `log` is not modified."""
    if time_ms <= tip.time_ms:
        raise invalid(
            "time_not_monotonic",
            f"block time {time_ms} ms is not after the previous block's {tip.time_ms} ms",
        )
    check(log.size == tip.log_size, "the log does not match the tip it builds on")
    overlay = Overlay(state)
    accepted: list[DecodedEvent] = []
    rejected: list[tuple[DecodedEvent, Rejected]] = []
    seen: set[bytes] = set()
    for decoded in candidates:
        try:
            if decoded.event_id in seen:
                raise invalid("duplicate_event", "the event appears twice in the block")
            writes = apply_event(overlay, decoded, time_ms, verify_signature=not signatures_checked)
        except Rejected as rejection:
            if strict:
                raise
            rejected.append((decoded, rejection))
            continue
        seen.add(decoded.event_id)
        overlay.apply(writes)
        accepted.append(decoded)

    new_log = copy.deepcopy(log)
    leaf_hashes = [merkle.hash_leaf(d.leaf) for d in accepted]
    nodes: list[tuple[int, int, bytes]] = []
    for leaf_hash in leaf_hashes:
        nodes.extend(new_log.append(leaf_hash))
    header = ledger_pb2.BlockHeader(
        chain_id=chain_id,
        height=tip.height + 1,
        previous_block_id=tip.block_id,
        time_ms=time_ms,
        proposer_id=proposer_id,
        events_root=merkle.root_from_leaf_hashes(leaf_hashes),
        event_count=len(accepted),
        log_size=new_log.size,
        log_root=new_log.root(),
        state_root=next_state_root(tip.state_root, overlay.writes),
        validators_hash=validators.hash(),
        last_commit_hash=certificate_hash(last_commit),
    )
    header_bytes = encode_header(header)
    return ExecutedBlock(
        header=header,
        header_bytes=header_bytes,
        block_id=block_id(header_bytes),
        events=accepted,
        writes=overlay.writes,
        log=new_log,
        merkle_nodes=nodes,
        rejected=rejected,
    )


# --- certificates and checkpoints --------------------------------------------------------


def verify_certificate(
    certificate: ledger_pb2.CommitCertificate,
    header: ledger_pb2.BlockHeader,
    header_bytes: bytes,
    validators: ValidatorSet,
) -> None:
    """Raise `Rejected` unless `certificate` commits this header with a quorum."""
    expected_id = block_id(header_bytes)
    if certificate.block_id != expected_id:
        raise invalid("bad_certificate", "the certificate is for a different block")
    if certificate.height != header.height:
        raise invalid(
            "bad_certificate",
            f"the certificate is for height {certificate.height}, the header is {header.height}",
        )
    if header.validators_hash != validators.hash():
        raise invalid("bad_certificate", "the header names a different validator set")
    message = precommit_sign_bytes(header.chain_id, header.height, certificate.round, expected_id)
    signers: set[str] = set()
    for entry in certificate.signatures:
        public_key = validators.public_key(entry.validator_id)
        if public_key is None:
            raise invalid("bad_certificate", f"{entry.validator_id!r} is not a validator")
        if entry.validator_id in signers:
            raise invalid("bad_certificate", f"{entry.validator_id!r} signed twice")
        if not crypto.verify(public_key, crypto.DOMAIN_PRECOMMIT, message, entry.signature):
            raise invalid(
                "bad_certificate", f"the signature of {entry.validator_id!r} does not verify"
            )
        signers.add(entry.validator_id)
    if len(signers) < validators.quorum_size:
        raise invalid(
            "bad_certificate",
            f"{len(signers)} validators signed; a quorum is {validators.quorum_size}",
        )


def verify_checkpoint(
    checkpoint: ledger_pb2.Checkpoint, genesis: Genesis
) -> ledger_pb2.BlockHeader:
    """The checkpoint's header, if a quorum of the genesis validators committed it."""
    header = decode_header(checkpoint.header)
    if header.chain_id != genesis.chain_id:
        raise invalid("wrong_chain", f"checkpoint is for chain {header.chain_id!r}")
    verify_certificate(checkpoint.certificate, header, checkpoint.header, genesis.validator_set)
    return header

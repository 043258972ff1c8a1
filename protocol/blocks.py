"""Blocks, their ids, execution, and the commit certificates that make them final.

A block is a header, its ordered events, and the certificate of the block before it. The
header commits to everything: the previous block id (at height 1, the genesis hash), the
events root (RFC 6962 root over this block's log leaves), the whole log's size and root after
the block, the state root after it, and the validator set. Its id is
SHA-256("provledger/v1/header\\x00" || header bytes), over the bytes as transmitted.

`execute_block` is the one way a block comes to be: the proposer runs it over candidate events
(dropping those the rules reject) and every validator runs it again over a proposal (where any
rejection makes the proposal invalid). Both get the same header, byte for byte.

A block's serialised size never exceeds `BLOCK_SIZE_BYTES_MAX` (ADR 011), so that every message
carrying one fits the peers' message cap. `validate_block` refuses a larger one, proposed or
synced (`check_block_size`); a proposer picks its candidates with `size_before_events_bytes_max`
and `entry_size_bytes`, which bound the bytes each part adds.

A commit certificate holds precommit signatures over the block id from more than two thirds
of the validators; a header with its certificate is a checkpoint, verifiable with nothing but
the genesis document and, once the validator set has changed, the chain of validator sets
(protocol/validators.py, protocol/validator_chain.py): every height is signed by the set in
force at that height, which the header's `validators_hash` names.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from google.protobuf.message import DecodeError

from provledger.protocol import crypto, merkle
from provledger.protocol.errors import Rejected, check, invalid
from provledger.protocol.events import DecodedEvent, decode
from provledger.protocol.genesis import Genesis, ValidatorSet
from provledger.protocol.limits import (
    BLOCK_EVENTS_MAX,
    BLOCK_SIZE_BYTES_MAX,
    EQUIVOCATIONS_LISTED_MAX,
    EVENT_TIMESTAMP_MS_MAX,
)
from provledger.protocol.rules import apply_event
from provledger.protocol.state import Overlay, StateReader, Write, next_state_root
from provledger.protocol.supervision import SUPERVISION_RECORD_ID
from provledger.protocol.thresholds import THRESHOLDS_RECORD_ID
from provledger.protocol.validators import ValidatorContext, ValidatorHistory, validator_set_at
from provledger.protocol.votes import evidence_key, verify_evidence, vote_sign_bytes
from provledger.v1 import ledger_pb2, state_pb2

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
    """What a precommit for `block` signs (after the precommit domain tag)."""
    return vote_sign_bytes(chain_id, height, round_number, block)


def sign_precommit(
    key: crypto.SigningKey, chain_id: str, height: int, round_number: int, block: bytes
) -> bytes:
    return key.sign(crypto.DOMAIN_PRECOMMIT, vote_sign_bytes(chain_id, height, round_number, block))


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
    writes = [Write("member", m.member_id, m) for m in genesis.members]
    if genesis.thresholds is not None:  # else the default: a genesis without them is unchanged
        writes.append(Write("thresholds", THRESHOLDS_RECORD_ID, genesis.thresholds))
    if genesis.supervision is not None:  # likewise: absent, the defaults of limits.py
        writes.append(Write("supervision", SUPERVISION_RECORD_ID, genesis.supervision))
    return writes


def genesis_state_root(genesis: Genesis) -> bytes:
    return next_state_root(genesis.genesis_hash, genesis_writes(genesis))


# --- the byte budget ---------------------------------------------------------------------

_UINT64_MAX = 2**64 - 1
_HASH_SIZE_BYTES = 32


def within_size_budget(block: ledger_pb2.Block) -> bool:
    """Whether `block`'s serialised size is within the budget (ADR 011)."""
    return block.ByteSize() <= BLOCK_SIZE_BYTES_MAX


def check_block_size(block: ledger_pb2.Block) -> None:
    """Raise `Rejected` if `block`'s serialised size exceeds the budget (ADR 011)."""
    if not within_size_budget(block):
        size = block.ByteSize()
        raise invalid(
            "block_too_large",
            f"block is {size} bytes; the limit is {BLOCK_SIZE_BYTES_MAX}",
        )


def size_before_events_bytes_max(
    chain_id: str,
    proposer_id: str,
    last_commit: ledger_pb2.CommitCertificate | None,
) -> int:
    """The most bytes a block by `proposer_id` takes before any event or evidence is added: its
    header at its widest (every hash 32 bytes, every number at its longest varint) and its
    last commit, each with its field tag and length. A real header is a few bytes shorter."""
    widest = ledger_pb2.BlockHeader(
        chain_id=chain_id,
        height=_UINT64_MAX,
        previous_block_id=bytes(_HASH_SIZE_BYTES),
        time_ms=-1,  # a negative int64 takes the longest varint, 10 bytes
        proposer_id=proposer_id,
        events_root=bytes(_HASH_SIZE_BYTES),
        event_count=_UINT64_MAX,
        log_size=_UINT64_MAX,
        log_root=bytes(_HASH_SIZE_BYTES),
        state_root=bytes(_HASH_SIZE_BYTES),
        validators_hash=bytes(_HASH_SIZE_BYTES),
        last_commit_hash=bytes(_HASH_SIZE_BYTES),
        evidence_hash=bytes(_HASH_SIZE_BYTES),
    )
    block = ledger_pb2.Block(header=encode_header(widest))
    if last_commit is not None:
        block.last_commit.CopyFrom(last_commit)
    return block.ByteSize()


def entry_size_bytes(entry: ledger_pb2.SignedEvent | ledger_pb2.Evidence) -> int:
    """The bytes `entry` adds to a block as one more of its `events` or `evidence`: a one-byte
    field tag (both field numbers are below 16), its length as a varint, then itself."""
    size = entry.ByteSize()
    return 1 + _varint_size_bytes(size) + size


def _varint_size_bytes(value: int) -> int:
    return max(1, (value.bit_length() + 6) // 7)


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
    evidence: list[ledger_pb2.Evidence] = field(default_factory=list)
    last_commit: ledger_pb2.CommitCertificate | None = None

    def to_block(self) -> ledger_pb2.Block:
        block = ledger_pb2.Block(
            header=self.header_bytes,
            events=[d.signed for d in self.events],
            evidence=self.evidence,
        )
        if self.last_commit is not None:
            block.last_commit.CopyFrom(self.last_commit)
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
    genesis_validators: ValidatorSet,
    last_commit: ledger_pb2.CommitCertificate | None,
    strict: bool,
    signatures_checked: bool | Callable[[bytes], bool] = False,
    evidence: Sequence[ledger_pb2.Evidence] = (),
) -> ExecutedBlock:
    """Apply `candidates` in order on top of `tip`. With `strict`, any rejection raises (a
    validator checking a proposal); without, rejected events are left out and reported (a
    proposer filling a block). `signatures_checked` says (for all events, or per event id)
    whose signature this node already verified. `log` is not modified. The validator sets
    (the one signing this block, those of the evidence's votes, the one a validator-set change
    builds on) are read from `state` over `genesis_validators`."""
    if time_ms <= tip.time_ms:
        raise invalid(
            "time_not_monotonic",
            f"block time {time_ms} ms is not after the previous block's {tip.time_ms} ms",
        )
    check(log.size == tip.log_size, "the log does not match the tip it builds on")
    height = tip.height + 1
    context = ValidatorContext(genesis_validators, height)
    overlay = Overlay(state)
    accepted: list[DecodedEvent] = []
    rejected: list[tuple[DecodedEvent, Rejected]] = []
    seen: set[bytes] = set()
    for decoded in candidates:
        try:
            if decoded.event_id in seen:
                raise invalid("duplicate_event", "the event appears twice in the block")
            checked = (
                signatures_checked(decoded.event_id)
                if callable(signatures_checked)
                else signatures_checked
            )
            writes = apply_event(
                overlay,
                decoded,
                time_ms,
                height=height,
                verify_signature=not checked,
                validator_context=context,
            )
        except Rejected as rejection:
            if strict:
                raise
            rejected.append((decoded, rejection))
            continue
        seen.add(decoded.event_id)
        overlay.apply(writes)
        accepted.append(decoded)

    evidence_writes = _evidence_writes(state, overlay, chain_id, context, evidence)
    overlay.apply(evidence_writes)

    new_log = copy.deepcopy(log)
    leaf_hashes = [merkle.hash_leaf(d.leaf) for d in accepted]
    nodes: list[tuple[int, int, bytes]] = []
    for leaf_hash in leaf_hashes:
        nodes.extend(new_log.append(leaf_hash))
    header = ledger_pb2.BlockHeader(
        chain_id=chain_id,
        height=height,
        previous_block_id=tip.block_id,
        time_ms=time_ms,
        proposer_id=proposer_id,
        events_root=merkle.root_from_leaf_hashes(leaf_hashes),
        event_count=len(accepted),
        log_size=new_log.size,
        log_root=new_log.root(),
        state_root=next_state_root(tip.state_root, overlay.writes),
        validators_hash=validator_set_at(state, genesis_validators, height).hash(),
        last_commit_hash=certificate_hash(last_commit),
        evidence_hash=evidence_hash(evidence),
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
        evidence=list(evidence),
        last_commit=last_commit,
    )


def evidence_hash(evidence: Sequence[ledger_pb2.Evidence]) -> bytes:
    if not evidence:
        return b""
    digest = hashlib.sha256(b"provledger/v1/evidence\x00")
    for item in evidence:
        encoded = item.SerializeToString(deterministic=True)
        digest.update(len(encoded).to_bytes(4, "big") + encoded)
    return digest.digest()


def _evidence_writes(
    before: StateReader,
    overlay: StateReader,
    chain_id: str,
    context: ValidatorContext,
    evidence: Sequence[ledger_pb2.Evidence],
) -> list[Write]:
    """Evidence must be a real equivocation by a validator of the set of its votes' height
    (at most this block's), recorded once; its validator is marked as an equivocator for
    good, with where it equivocated (ADR 014)."""
    writes = []
    keys = set()
    marked: dict[str, state_pb2.EquivocatorRecord] = {}
    for item in evidence:
        if item.first.height > context.height or not verify_evidence(
            chain_id,
            validator_set_at(before, context.genesis_validators, item.first.height),
            item,
        ):
            raise invalid("bad_evidence", "evidence is not two conflicting signed votes")
        key = evidence_key(item.first)
        if key in keys or overlay.load("evidence", key) is not None:
            raise invalid("duplicate_evidence", f"evidence {key} is already recorded")
        keys.add(key)
        writes.append(Write("evidence", key, item))
        vote = item.first
        record = marked.get(vote.validator_id)
        if record is None:
            record = state_pb2.EquivocatorRecord(validator_id=vote.validator_id)
            recorded = overlay.load("equivocator", vote.validator_id)
            if recorded is not None:
                record.CopyFrom(recorded)  # never mutate what a reader returns
            marked[vote.validator_id] = record
        record.equivocations += 1
        if len(record.listed) < EQUIVOCATIONS_LISTED_MAX:
            record.listed.add(
                height=vote.height,
                round=vote.round,
                vote_type=vote.type,
                evidence_key=key,
                recorded_at_height=context.height,
            )
    writes += [Write("equivocator", v, record) for v, record in sorted(marked.items())]
    return writes


def validate_block(
    *,
    block: ledger_pb2.Block,
    state: StateReader,
    log: merkle.CompactRange,
    tip: Tip,
    genesis: Genesis,
    signatures_checked: Callable[[bytes], bool],
    time_drift_ms_max: int | None = None,
    now_ms: int = 0,
    decode_event: Callable[[ledger_pb2.SignedEvent], DecodedEvent] | None = None,
) -> ExecutedBlock:
    """Re-execute a proposed (or synced) block on top of `tip`; return it executed if its
    header is exactly what executing its events gives, else raise `Rejected`."""
    check_block_size(block)
    header = decode_header(block.header)
    if header.chain_id != genesis.chain_id or header.height != tip.height + 1:
        raise invalid("bad_block", f"block is not the next block of chain {genesis.chain_id}")
    if header.previous_block_id != tip.block_id:
        raise invalid("bad_block", "block does not extend the committed chain")
    if time_drift_ms_max is not None and header.time_ms > now_ms + time_drift_ms_max:
        raise invalid("bad_block", "block time is too far in the future")
    if header.time_ms > EVENT_TIMESTAMP_MS_MAX:  # whatever the clocks: after the year 9999
        raise invalid("bad_block", f"block time {header.time_ms} ms is after the year 9999")
    if (
        validator_set_at(state, genesis.validator_set, header.height).public_key(header.proposer_id)
        is None
    ):
        raise invalid("bad_block", f"proposer {header.proposer_id!r} is not a validator")
    if len(block.events) > BLOCK_EVENTS_MAX:
        raise invalid(
            "bad_block", f"block holds {len(block.events)} events; the limit is {BLOCK_EVENTS_MAX}"
        )
    last_commit = block.last_commit if block.HasField("last_commit") else None
    if tip.height == 0:
        if last_commit is not None:
            raise invalid("bad_block", "the first block carries no previous certificate")
    else:
        if last_commit is None:
            raise invalid("bad_block", "block lacks the previous block's certificate")
        verify_commit_signatures(
            last_commit,
            genesis.chain_id,
            tip.height,
            tip.block_id,
            validator_set_at(state, genesis.validator_set, tip.height),
        )
    if decode_event is None:
        candidates = [
            decode(signed, genesis.chain_id, genesis.personal_data) for signed in block.events
        ]
    else:  # the caller may reuse events it decoded before; they must be these exact bytes
        candidates = [decode_event(signed) for signed in block.events]
    executed = execute_block(
        state=state,
        log=log,
        tip=tip,
        chain_id=genesis.chain_id,
        candidates=candidates,
        time_ms=header.time_ms,
        proposer_id=header.proposer_id,
        genesis_validators=genesis.validator_set,
        last_commit=last_commit,
        strict=True,
        signatures_checked=signatures_checked,
        evidence=list(block.evidence),
    )
    if executed.header_bytes != block.header:
        raise invalid("bad_block", "the header does not match the result of its events")
    return executed


# --- certificates and checkpoints --------------------------------------------------------


def verify_certificate(
    certificate: ledger_pb2.CommitCertificate,
    header: ledger_pb2.BlockHeader,
    header_bytes: bytes,
    validators: ValidatorSet,
) -> None:
    """Raise `Rejected` unless `certificate` commits this header with a quorum."""
    if header.validators_hash != validators.hash():
        raise invalid("bad_certificate", "the header names a different validator set")
    verify_commit_signatures(
        certificate, header.chain_id, header.height, block_id(header_bytes), validators
    )


def verify_commit_signatures(
    certificate: ledger_pb2.CommitCertificate,
    chain_id: str,
    height: int,
    expected_id: bytes,
    validators: ValidatorSet,
) -> None:
    """Raise `Rejected` unless a quorum of `validators` precommitted `expected_id`."""
    if certificate.block_id != expected_id:
        raise invalid("bad_certificate", "the certificate is for a different block")
    if certificate.height != height:
        raise invalid(
            "bad_certificate",
            f"the certificate is for height {certificate.height}, the block is {height}",
        )
    message = vote_sign_bytes(chain_id, height, certificate.round, expected_id)
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
    checkpoint: ledger_pb2.Checkpoint,
    genesis: Genesis,
    history: ValidatorHistory | None = None,
) -> ledger_pb2.BlockHeader:
    """The checkpoint's header, if a quorum of the validators of its height committed it:
    the genesis set, or the set `history` (a verified walk of the chain of validator sets,
    protocol/validator_chain.py) names for that height."""
    header = decode_header(checkpoint.header)
    if header.chain_id != genesis.chain_id:
        raise invalid("wrong_chain", f"checkpoint is for chain {header.chain_id!r}")
    validators = genesis.validator_set if history is None else history.at(header.height)
    verify_certificate(checkpoint.certificate, header, checkpoint.header, validators)
    return header

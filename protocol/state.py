"""The world state as the rules see it: a read interface, an overlay that collects writes,
and the state root that commits to every write.

The world state is derived: it is whatever replaying the blocks from genesis produces. The
rules read it through `StateReader` (the node backs it with LevelDB, tests with dicts) and
never write to it directly; they return `Write`s, which an `Overlay` applies so that later
events in the same block see earlier ones. The node persists an overlay's writes in the
block's one atomic batch.

State root: `next_state_root(previous, writes)` hashes the previous root with every write of
the block, in order. Two nodes that agree on the state root agree on every state transition
since genesis. (It is a hash chain, not a tree: it detects divergence but does not give
per-record proofs; records are proven through the events that made them, which are in the
log. See docs/adr/003-state-root-hash-chain.md.)
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from google.protobuf.message import Message

from provledger.protocol.errors import check
from provledger.v1 import ledger_pb2, state_pb2

RECORD_TYPES: dict[str, type[Message]] = {
    "member": state_pb2.MemberRecord,
    "asset": state_pb2.AssetRecord,
    "grant": state_pb2.GrantRecord,
    "approval": state_pb2.ApprovalRecord,
    "certificate": state_pb2.CertificateRecord,
    "offer": state_pb2.OfferRecord,
    "order": state_pb2.OrderRecord,
    "dispute": state_pb2.DisputeRecord,
    # A governance change that was applied, by the hex of the first 16 bytes of SHA-256 of
    # its bytes (no replays).
    "governance": state_pb2.MemberKey,
    # Governance proposals (ADR 016), by the hex of the proposal id.
    "proposal": state_pb2.ProposalRecord,
    # Changes applied per subject ("member:<id>", "thresholds"): supersedes older proposals.
    "governance_subject": state_pb2.SubjectVersion,
    # The approval thresholds in force, under "current" (absent: the default, two thirds).
    "thresholds": ledger_pb2.Thresholds,
    # Market supervision (ADR 017): a broker's qualification by broker id, a seller's mandate,
    # a member's suspension from trading by member id, complaints, cases, security
    # assessments, catalogue entries ("asset:<id>", "prefix:<id prefix>") and the genesis's
    # rules of supervision under "current" (absent: the defaults of protocol/limits.py).
    "broker": state_pb2.BrokerRecord,
    "mandate": state_pb2.MandateRecord,
    "suspension": state_pb2.SuspensionRecord,
    "complaint": state_pb2.ComplaintRecord,
    "case": state_pb2.CaseRecord,
    "assessment": state_pb2.AssessmentRecord,
    "catalogue": state_pb2.CatalogueRecord,
    "supervision": state_pb2.SupervisionPolicy,
    # Equivocation recorded, by "<validator>/<height>/<round>/<vote type>".
    "evidence": ledger_pb2.Evidence,
    # The validator sets after genesis, by index and "latest" (protocol/validators.py).
    "validators": state_pb2.ValidatorSetRecord,
    # A validator marked for equivocating, by validator id (never removed: ADR 014).
    "equivocator": state_pb2.EquivocatorRecord,
}
STATE_ROOT_GENESIS_PARENT = bytes(32)
_STATE_DOMAIN = b"provledger/v1/state\x00"


@dataclass(frozen=True)
class Write:
    """Set record `kind`/`record_id` to `record`. `nonce` writes mark (author, nonce) used."""

    kind: str
    record_id: str
    record: Message | None = None
    nonce: int | None = None


class StateReader(Protocol):
    def load(self, kind: str, record_id: str) -> Message | None:
        """The record, or None. Callers must not mutate what they get."""

    def nonce_used(self, member_id: str, nonce: int) -> bool: ...

    def members(self) -> Iterable[state_pb2.MemberRecord]:
        """Every member ever added (removed ones too, flagged)."""


class Overlay:
    """Pending writes on top of a reader; reads see the writes."""

    def __init__(self, base: StateReader) -> None:
        self._base = base
        self._records: dict[tuple[str, str], Message] = {}
        self._nonces: set[tuple[str, int]] = set()
        self.writes: list[Write] = []

    def load(self, kind: str, record_id: str) -> Message | None:
        record = self._records.get((kind, record_id))
        if record is not None:
            return record
        return self._base.load(kind, record_id)

    def nonce_used(self, member_id: str, nonce: int) -> bool:
        return (member_id, nonce) in self._nonces or self._base.nonce_used(member_id, nonce)

    def members(self) -> Iterable[state_pb2.MemberRecord]:
        seen: dict[str, state_pb2.MemberRecord] = {m.member_id: m for m in self._base.members()}
        for (kind, record_id), record in self._records.items():
            if kind == "member":
                seen[record_id] = record  # type: ignore[assignment]
        return seen.values()

    def apply(self, writes: Iterable[Write]) -> None:
        for write in writes:
            if write.nonce is not None:
                self._nonces.add((write.record_id, write.nonce))
            else:
                check(write.record is not None, f"write of {write.kind} without a record")
                self._records[(write.kind, write.record_id)] = write.record  # type: ignore[assignment]
            self.writes.append(write)


def encode_write(write: Write) -> bytes:
    """A write's bytes for the state root: kind, id, then the record or the nonce."""
    kind = write.kind.encode()
    record_id = write.record_id.encode()
    if write.nonce is not None:
        value = write.nonce.to_bytes(8, "big")
    else:
        check(write.record is not None, f"write of {write.kind} without a record")
        value = write.record.SerializeToString(deterministic=True)  # type: ignore[union-attr]
    return b"".join(
        (
            len(kind).to_bytes(1, "big"),
            kind,
            len(record_id).to_bytes(2, "big"),
            record_id,
            len(value).to_bytes(4, "big"),
            value,
        )
    )


def next_state_root(previous: bytes, writes: Iterable[Write]) -> bytes:
    digest = hashlib.sha256(_STATE_DOMAIN + previous)
    for write in writes:
        digest.update(encode_write(write))
    return digest.digest()

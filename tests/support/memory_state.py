"""An in-memory world state and a deterministic consortium, for unit tests.

`MemoryState` is the dict-backed `StateReader` the rules and `execute_block` read through; it
applies `Write`s the way the node's store does and can `snapshot()` itself, so a test can show
that a rejected event changed nothing.

`Consortium` is a fixed cast of members (two agencies, an exchange, a regulator, an auditor)
and validators. Every key is `SigningKey.from_seed(sha256(name))`, so the same names always
give the same keys, signatures, event ids and block ids: tests and the golden vectors under
tests/vectors/ are reproducible byte for byte.

`MemoryChain` strings blocks together over a `MemoryState`: execute, sign, commit, repeat.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from google.protobuf.message import Message

from provledger.protocol import blocks, crypto, events, merkle, rules
from provledger.protocol.genesis import Genesis, canonical_json, parse_genesis
from provledger.protocol.state import Write
from provledger.v1 import ledger_pb2, state_pb2

CHAIN_ID = "provledger-test"
GENESIS_TIME_MS = 1_700_000_000_000
MEMBER_ROLES: dict[str, str] = {
    "agency-a": "agency",
    "agency-b": "agency",
    "exchange": "exchange",
    "regulator": "regulator",
    "auditor": "auditor",
}
VALIDATOR_IDS = ("validator-0", "validator-1", "validator-2", "validator-3")


def signing_key(name: str) -> crypto.SigningKey:
    """The deterministic key named `name`: its seed is SHA-256(name)."""
    return crypto.SigningKey.from_seed(hashlib.sha256(name.encode()).digest())


def digest(label: str) -> bytes:
    """A stand-in content digest: SHA-256 of a label."""
    return hashlib.sha256(label.encode()).digest()


# --- the state ---------------------------------------------------------------------------


class MemoryState:
    """A `StateReader` over plain dicts; `apply` plays the role of the node's store."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, str], Message] = {}
        self.nonces: set[tuple[str, int]] = set()

    @classmethod
    def from_genesis(cls, genesis: Genesis) -> MemoryState:
        state = cls()
        state.apply(blocks.genesis_writes(genesis))
        return state

    def load(self, kind: str, record_id: str) -> Message | None:
        return self.records.get((kind, record_id))

    def nonce_used(self, member_id: str, nonce: int) -> bool:
        return (member_id, nonce) in self.nonces

    def members(self) -> Iterable[state_pb2.MemberRecord]:
        return [r for (kind, _), r in sorted(self.records.items()) if kind == "member"]  # type: ignore[misc]

    def apply(self, writes: Iterable[Write]) -> None:
        for write in writes:
            if write.nonce is not None:
                self.nonces.add((write.record_id, write.nonce))
            else:
                self.records[(write.kind, write.record_id)] = write.record  # type: ignore[assignment]

    def snapshot(self) -> tuple[tuple[tuple[str, str, bytes], ...], frozenset[tuple[str, int]]]:
        """Everything the state holds, as bytes: equal snapshots mean equal states (and a rule
        that mutated a record it loaded would show up here too)."""
        records = tuple(
            (kind, record_id, record.SerializeToString(deterministic=True))
            for (kind, record_id), record in sorted(self.records.items())
        )
        return records, frozenset(self.nonces)


def apply(
    state: MemoryState,
    signed: ledger_pb2.SignedEvent,
    time_ms: int,
    chain_id: str = CHAIN_ID,
    height: int = 1,
) -> list[Write]:
    """Decode `signed`, run the rules in the block at `height` and block time `time_ms`, and
    apply the writes to `state`.
    Raises `Rejected` (having changed nothing) when the event is refused."""
    decoded = events.decode(signed, chain_id)
    writes = rules.apply_event(state, decoded, time_ms, height=height)
    state.apply(writes)
    return writes


# --- the consortium ----------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    member_id: str
    role: str
    key: crypto.SigningKey

    @property
    def author(self) -> ledger_pb2.Author:
        return ledger_pb2.Author(member_id=self.member_id, key_id=self.key.key_id)


class Consortium:
    """Fixed members and validators with deterministic keys, and event builders for them.

    Nonces are handed out per member from 1 upwards unless a test names one, so a fresh
    consortium always produces the same events."""

    def __init__(
        self,
        chain_id: str = CHAIN_ID,
        member_roles: dict[str, str] = MEMBER_ROLES,
        validator_ids: Sequence[str] = VALIDATOR_IDS,
        genesis_time_ms: int = GENESIS_TIME_MS,
        tls_cas: dict[str, bytes] | None = None,
        supervision: dict[str, int] | None = None,
    ) -> None:
        self.chain_id = chain_id
        # The genesis's rules of supervision ({"appeal_window_ms": N, "appeal_panel_size": k}).
        self.supervision = supervision
        # Each validator's organisation's TLS CA root in the genesis (ADR 015), or none.
        self.tls_cas = tls_cas or {}
        self.genesis_time_ms = genesis_time_ms
        self.members = {
            member_id: Member(member_id, role, signing_key(member_id))
            for member_id, role in member_roles.items()
        }
        self.validator_keys = {v: signing_key(v) for v in validator_ids}
        self._last_nonce: dict[str, int] = {}

    def __getitem__(self, member_id: str) -> Member:
        return self.members[member_id]

    def genesis_document(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "genesis_time_ms": self.genesis_time_ms,
            "members": [
                {
                    "member_id": m.member_id,
                    "name": m.member_id,
                    "role": m.role,
                    "public_keys": [m.key.public_key.hex()],
                }
                for m in self.members.values()
            ],
            "validators": [
                {"validator_id": v, "public_key": key.public_key.hex()}
                | ({"tls_ca": self.tls_cas[v].decode()} if v in self.tls_cas else {})
                for v, key in self.validator_keys.items()
            ],
        } | ({"supervision": self.supervision} if self.supervision else {})

    @cached_property
    def genesis(self) -> Genesis:
        return parse_genesis(canonical_json(self.genesis_document()))

    def state(self) -> MemoryState:
        return MemoryState.from_genesis(self.genesis)

    # events

    def event(
        self,
        member: Member | str,
        kind: str,
        nonce: int | None = None,
        *,
        key: crypto.SigningKey | None = None,
        timestamp_ms: int | None = None,
        **fields: Any,
    ) -> ledger_pb2.Event:
        """An unsigned Event by `member` whose payload `kind` holds `fields`."""
        member = self.members[member] if isinstance(member, str) else member
        if nonce is None:
            nonce = self._last_nonce.get(member.member_id, 0) + 1
        self._last_nonce[member.member_id] = max(nonce, self._last_nonce.get(member.member_id, 0))
        return ledger_pb2.Event(
            chain_id=self.chain_id,
            author=ledger_pb2.Author(member_id=member.member_id, key_id=(key or member.key).key_id),
            nonce=nonce,
            timestamp_ms=self.genesis_time_ms if timestamp_ms is None else timestamp_ms,
            **{kind: fields},
        )

    def sign(
        self,
        member: Member | str,
        kind: str,
        nonce: int | None = None,
        *,
        key: crypto.SigningKey | None = None,
        **fields: Any,
    ) -> ledger_pb2.SignedEvent:
        """A SignedEvent by `member` (signed with its genesis key unless `key` is given)."""
        member = self.members[member] if isinstance(member, str) else member
        event = self.event(member, kind, nonce, key=key, **fields)
        return events.sign_event(event, key or member.key)

    def decode(self, signed: ledger_pb2.SignedEvent) -> events.DecodedEvent:
        return events.decode(signed, self.chain_id)

    def apply(
        self, state: MemoryState, signed: ledger_pb2.SignedEvent, time_ms: int, height: int = 1
    ) -> list[Write]:
        return apply(state, signed, time_ms, self.chain_id, height)

    # governance

    def approvals(
        self, change: bytes, approvers: Iterable[Member | str]
    ) -> list[ledger_pb2.Approval]:
        """Each approver's signature over the change (DOMAIN_GOVERNANCE, chain-bound)."""
        message = rules.governance_sign_bytes(self.chain_id, change)
        result = []
        for approver in approvers:
            member = self.members[approver] if isinstance(approver, str) else approver
            result.append(
                ledger_pb2.Approval(
                    approver=member.author,
                    signature=member.key.sign(crypto.DOMAIN_GOVERNANCE, message),
                )
            )
        return result

    def govern(
        self,
        author: Member | str,
        change: ledger_pb2.GovernanceChange,
        approvers: Iterable[Member | str],
        nonce: int | None = None,
    ) -> ledger_pb2.SignedEvent:
        """A governance event carrying `change`, approved by `approvers`."""
        change_bytes = change.SerializeToString(deterministic=True)
        return self.sign(
            author,
            "governance",
            nonce,
            change=change_bytes,
            approvals=self.approvals(change_bytes, approvers),
        )

    # blocks

    def certificate(
        self,
        executed: blocks.ExecutedBlock,
        signers: Iterable[str] | None = None,
        round_number: int = 0,
    ) -> ledger_pb2.CommitCertificate:
        """A commit certificate for `executed`, signed by `signers` (default: every validator)."""
        height = executed.header.height
        return ledger_pb2.CommitCertificate(
            height=height,
            round=round_number,
            block_id=executed.block_id,
            signatures=[
                ledger_pb2.CommitSignature(
                    validator_id=validator_id,
                    signature=blocks.sign_precommit(
                        self.validator_keys[validator_id],
                        self.chain_id,
                        height,
                        round_number,
                        executed.block_id,
                    ),
                )
                for validator_id in (self.validator_keys if signers is None else signers)
            ],
        )


class MemoryChain:
    """A chain of blocks over a MemoryState: `execute` builds the next block without changing
    anything, `commit` makes it the tip."""

    def __init__(self, consortium: Consortium) -> None:
        self.consortium = consortium
        self.state = consortium.state()
        self.log = merkle.CompactRange()
        self.tip = blocks.genesis_tip(consortium.genesis)
        self.last_commit: ledger_pb2.CommitCertificate | None = None

    def execute(
        self,
        candidates: Sequence[ledger_pb2.SignedEvent | events.DecodedEvent],
        time_ms: int,
        *,
        strict: bool = True,
        proposer_id: str | None = None,
    ) -> blocks.ExecutedBlock:
        consortium = self.consortium
        decoded = [
            c if isinstance(c, events.DecodedEvent) else consortium.decode(c) for c in candidates
        ]
        return blocks.execute_block(
            state=self.state,
            log=self.log,
            tip=self.tip,
            chain_id=consortium.chain_id,
            candidates=decoded,
            time_ms=time_ms,
            proposer_id=proposer_id or next(iter(consortium.validator_keys)),
            genesis_validators=consortium.genesis.validator_set,
            last_commit=self.last_commit,
            strict=strict,
        )

    def commit(
        self, executed: blocks.ExecutedBlock, certificate: ledger_pb2.CommitCertificate
    ) -> None:
        self.state.apply(executed.writes)
        self.log = copy.deepcopy(executed.log)
        self.tip = blocks.Tip.from_header(executed.header, executed.header_bytes)
        self.last_commit = certificate

"""The ledger as consensus's `Application`: builds proposals, validates them, commits them.

It sits between the consensus state machine and the store. It owns the mempool (events
accepted but not yet committed), the set of event ids whose signatures this node already
verified (so every event is verified once, when it first arrives), and the evidence pool
(equivocations seen but not yet recorded).

It works on any store with the `ChainStore` interface: the LevelDB `Store` in a node, an
in-memory one in the deterministic simulator. Everything here is synchronous and
deterministic given its inputs.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Protocol

from provledger.node.mempool import Mempool
from provledger.node.settings import (
    EVIDENCE_POOL_MAX,
    EXECUTED_BLOCKS_CACHED_MAX,
    VERIFIED_EVENTS_REMEMBERED_MAX,
)
from provledger.protocol import blocks, crypto, merkle
from provledger.protocol.errors import Rejected, duplicate
from provledger.protocol.events import DecodedEvent, decode, event_id
from provledger.protocol.genesis import Genesis
from provledger.protocol.limits import BLOCK_EVENTS_MAX
from provledger.protocol.rules import apply_event, authenticate
from provledger.protocol.state import Overlay, StateReader
from provledger.protocol.votes import evidence_key, verify_evidence
from provledger.v1 import ledger_pb2

log = logging.getLogger("provledger.node")


class ChainStore(StateReader, Protocol):
    @property
    def tip(self) -> blocks.Tip: ...

    @property
    def log(self) -> merkle.CompactRange: ...

    @property
    def head_height(self) -> int: ...

    def has_event(self, event_id: bytes) -> bool: ...

    def checkpoint(self, height: int) -> ledger_pb2.Checkpoint | None: ...

    def commit_block(
        self, executed: blocks.ExecutedBlock, certificate: ledger_pb2.CommitCertificate
    ) -> None: ...


class LedgerApplication:
    def __init__(self, genesis: Genesis, store: ChainStore, node_id: str) -> None:
        self.genesis = genesis
        self.store = store
        self.node_id = node_id
        self.mempool = Mempool()
        self._verified: OrderedDict[bytes, None] = OrderedDict()
        self._executed: OrderedDict[bytes, blocks.ExecutedBlock] = OrderedDict()
        self._evidence: dict[str, ledger_pb2.Evidence] = {}
        # Told about events a proposal left out because the rules now reject them.
        self.on_rejected: Callable[[list[tuple[DecodedEvent, Rejected]]], None] | None = None

    # --- admission --------------------------------------------------------------------------

    def check(self, signed: ledger_pb2.SignedEvent, time_ms: int) -> DecodedEvent:
        """Every check that needs no ordering; raises `Rejected`. Changes nothing but the
        memory of verified signatures."""
        decoded = decode(signed, self.genesis.chain_id)
        self.admissible(decoded, time_ms)
        return decoded

    def admissible(self, decoded: DecodedEvent, time_ms: int, *, rules: bool = True) -> None:
        """Raise `Rejected` unless `decoded` may enter the mempool. With `rules`, every rule
        is checked against the committed state (a client learns at once why an event would
        fail); without, only the author, its key, the signature and the nonce (for events a
        peer forwarded: nobody waits for their verdict, and the block rules judge them)."""
        if decoded.event_id in self.mempool or self.store.has_event(decoded.event_id):
            raise duplicate("duplicate_event", "this event was already submitted")
        verify = decoded.event_id not in self._verified
        if rules:
            apply_event(
                Overlay(self.store),
                decoded,
                max(time_ms, self.store.tip.time_ms + 1),
                verify_signature=verify,
            )
        else:
            author = authenticate(self.store, decoded, verify_signature=verify)
            if self.store.nonce_used(author.member_id, decoded.event.nonce):
                raise duplicate("replayed_nonce", "the author already used this nonce")
        self._remember_verified(decoded.event_id)

    def submit(self, signed: ledger_pb2.SignedEvent, time_ms: int) -> DecodedEvent:
        decoded = self.check(signed, time_ms)
        self.mempool.add(decoded)
        return decoded

    def decode_all(self, events: Iterable[ledger_pb2.SignedEvent]) -> list[DecodedEvent | Rejected]:
        """Each event decoded, or why it cannot be."""
        decoded: list[DecodedEvent | Rejected] = []
        for signed in events:
            try:
                decoded.append(decode(signed, self.genesis.chain_id))
            except Rejected as rejection:
                decoded.append(rejection)
        return decoded

    def decode_known(self, signed: ledger_pb2.SignedEvent) -> DecodedEvent:
        """`signed` decoded, reusing the mempool's copy when it holds the same event."""
        queued = self.mempool.get(event_id(signed.body))
        if queued is not None and queued.signed.signature == signed.signature:
            return queued
        return decode(signed, self.genesis.chain_id)

    def signature_checks(
        self, events: Iterable[DecodedEvent | Rejected]
    ) -> list[tuple[bytes, tuple[bytes, bytes, bytes]]]:
        """(event id, (public key, signed message, signature)) for each decoded event whose
        signature is not yet verified and whose author's key is known; the rest are left to
        `admissible`, which reports why they fail."""
        checks = []
        for decoded in events:
            if isinstance(decoded, Rejected) or decoded.event_id in self._verified:
                continue
            member = self.store.load("member", decoded.author_id)
            key = None
            for candidate in getattr(member, "keys", ()):
                if candidate.key_id == decoded.event.author.key_id:
                    key = candidate.public_key
            if key is not None:
                signed = decoded.signed
                checks.append(
                    (decoded.event_id, (key, crypto.DOMAIN_EVENT + signed.body, signed.signature))
                )
        return checks

    def mark_verified(self, event_ids: Iterable[bytes]) -> None:
        for identifier in event_ids:
            self._remember_verified(identifier)

    def _remember_verified(self, event_id: bytes) -> None:
        self._verified[event_id] = None
        self._verified.move_to_end(event_id)
        while len(self._verified) > VERIFIED_EVENTS_REMEMBERED_MAX:
            self._verified.popitem(last=False)

    def signature_verified(self, event_id: bytes) -> bool:
        return event_id in self._verified

    def add_evidence(self, evidence: ledger_pb2.Evidence) -> bool:
        """Keep real, unrecorded evidence for a coming block; False if it is not new."""
        key = evidence_key(evidence.first)
        if (
            key in self._evidence
            or len(self._evidence) >= EVIDENCE_POOL_MAX
            or self.store.load("evidence", key) is not None
            or not verify_evidence(self.genesis.chain_id, self.genesis.validator_set, evidence)
        ):
            return False
        self._evidence[key] = evidence
        return True

    # --- consensus's Application --------------------------------------------------------------

    def has_pending_events(self) -> bool:
        return len(self.mempool) > 0 or bool(self._evidence)

    def propose(self, height: int, round_number: int, now_ms: int) -> ledger_pb2.Block:
        store = self.store
        tip = store.tip
        if height != tip.height + 1:
            raise ValueError(f"asked to propose height {height} on a chain at {tip.height}")
        last_commit = None
        if tip.height > 0:
            checkpoint = store.checkpoint(tip.height)
            last_commit = checkpoint.certificate if checkpoint is not None else None
        executed = blocks.execute_block(
            state=store,
            log=store.log,
            tip=tip,
            chain_id=self.genesis.chain_id,
            candidates=self.mempool.peek(BLOCK_EVENTS_MAX),
            time_ms=max(now_ms, tip.time_ms + 1),
            proposer_id=self.node_id,
            validators=self.genesis.validator_set,
            last_commit=last_commit,
            strict=False,
            signatures_checked=self.signature_verified,
            evidence=sorted(self._evidence.values(), key=lambda e: evidence_key(e.first)),
        )
        for decoded, rejection in executed.rejected:
            log.info("left out event %s: %s", decoded.event_id.hex(), rejection)
        self.mempool.remove([d.event_id for d, _ in executed.rejected])
        if executed.rejected and self.on_rejected is not None:
            self.on_rejected(executed.rejected)
        self._cache(executed)
        return executed.to_block()

    def validate(self, block: ledger_pb2.Block, now_ms: int) -> bool:
        identifier = blocks.block_id(block.header)
        if identifier in self._executed:
            return True
        try:
            executed = self.execute(block)
        except Rejected as rejection:
            log.warning("invalid proposal %s: %s", identifier.hex()[:16], rejection)
            return False
        self._cache(executed)
        return True

    def execute(self, block: ledger_pb2.Block, certified: bool = False) -> blocks.ExecutedBlock:
        """Re-execute `block` on the committed tip; raise `Rejected` if it is not valid.

        `certified`: the caller checked a quorum's commit certificate for this block, so at
        least one honest validator verified every event's signature before precommitting it;
        the rules still run (they make the state), the signature checks are skipped. This is
        what lets a lagging node catch up much faster than the consortium commits."""
        store = self.store
        return blocks.validate_block(
            block=block,
            state=store,
            log=store.log,
            tip=store.tip,
            genesis=self.genesis,
            signatures_checked=(lambda _: True) if certified else self.signature_verified,
            decode_event=self.decode_known,
        )

    def _cache(self, executed: blocks.ExecutedBlock) -> None:
        self._executed[executed.block_id] = executed
        while len(self._executed) > EXECUTED_BLOCKS_CACHED_MAX:
            self._executed.popitem(last=False)

    # --- committing -------------------------------------------------------------------------

    def executed(
        self, block: ledger_pb2.Block, block_id: bytes, certified: bool = False
    ) -> blocks.ExecutedBlock:
        """The decided `block`, executed on the tip (from the cache when this node already
        validated or proposed it). Raises `Rejected` if it is not valid here."""
        executed = self._executed.get(block_id)
        if executed is None or executed.header.height != self.store.tip.height + 1:
            executed = self.execute(block, certified)
        return executed

    def commit(
        self,
        block: ledger_pb2.Block,
        block_id: bytes,
        certificate: ledger_pb2.CommitCertificate,
    ) -> blocks.ExecutedBlock:
        """Persist a decided block, then forget what it made obsolete: committed events,
        recorded evidence, executions on the old tip. (Synchronous; the node splits these
        steps to write off its event loop.)"""
        executed = self.executed(block, block_id)
        self.store.commit_block(executed, certificate)
        self.forget(executed.events, executed.evidence)
        return executed

    def forget(
        self, events: Iterable[DecodedEvent], evidence: Iterable[ledger_pb2.Evidence]
    ) -> None:
        self.mempool.remove([d.event_id for d in events])
        for item in evidence:
            self._evidence.pop(evidence_key(item.first), None)
        self._executed.clear()

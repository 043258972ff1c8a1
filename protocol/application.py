"""The ledger as consensus's `Application`: admits events, builds and validates proposals,
commits decided blocks.

It sits between the consensus state machine and a store with the `ChainStore` interface (the
node's LevelDB store, or the simulator's in-memory one) and owns what a node keeps in memory
between blocks:
- the mempool: events admitted but not yet committed (protocol/mempool.py);
- the signatures this node already verified, by event id, so that every signature is
  verified once, when the event first arrives (ADR 008), and block execution skips it. The
  signature is kept with the id because the id covers the body only: a copy of a verified
  event with another signature is verified again;
- the blocks it executed while proposing or validating, so that a decided block is not
  executed twice;
- the evidence pool: equivocations seen but not yet recorded on the ledger.

It also tells consensus and the shell which validators sign a height (`validator_set`,
`validator_history`): the genesis set followed by the sets that governance changes made,
read from the committed state (protocol/validators.py).

Theory of operation
-------------------
Admission (`admit`) judges a batch of decoded events against the last committed block and
queues those that pass. How much it judges depends on the event's `Origin` (ADR 008): a
client's event meets every rule now, because the client waits for the answer; a peer's
meets only the checks that make it worth holding (author, key, signature, nonce), because the
rules judge it anyway when a block is built or validated. Signatures are the costly part: a
shell may verify a batch's signatures elsewhere first (`signature_checks`, then
`mark_verified`); whatever it did not verify, admission verifies here.

Consensus calls `has_pending_events`, `propose` and `validate`, always against the committed
tip. A proposal takes the mempool's oldest events, in order, while they fit the block's byte
budget (`BLOCK_SIZE_BYTES_MAX`, ADR 011); the first that does not fit and every event after it
stay queued, in order, for a later block. It leaves out the events the rules now reject; they
leave the mempool and are reported (`take_reports`), with the proposals `validate` found
invalid (a block over the budget among them), for the shell to act on (tell a waiting client
why) and to log. Nothing here logs.

`commit` is the one commit sequence, for consensus decisions and synced blocks alike:
execute the block on the tip (or take the execution cached by `propose` or `validate`), have
the caller's `write` persist it, then forget what it made obsolete (committed events,
recorded evidence, executions on the old tip). The write is the only I/O and belongs to the
caller, which is why `commit` is a coroutine: the node awaits a synced LevelDB batch in a
thread, the simulator writes to memory and never suspends (`commit_now`).

Everything else here is synchronous and deterministic given its inputs: no clock (time is an
argument), no randomness, no I/O.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias, TypeVar

from provledger.protocol import blocks, crypto, merkle
from provledger.protocol.errors import Rejected, check, duplicate
from provledger.protocol.events import DecodedEvent, decode, event_id
from provledger.protocol.genesis import Genesis, ValidatorSet
from provledger.protocol.limits import (
    BLOCK_EVENTS_MAX,
    BLOCK_SIZE_BYTES_MAX,
    BLOCK_TIME_DRIFT_MS_MAX,
    EVIDENCE_POOL_MAX,
    EXECUTED_BLOCKS_CACHED_MAX,
    VERIFIED_EVENTS_REMEMBERED_MAX,
)
from provledger.protocol.mempool import Mempool, MempoolFull
from provledger.protocol.rules import apply_event, authenticate
from provledger.protocol.state import Overlay, StateReader
from provledger.protocol.validators import (
    ValidatorContext,
    ValidatorHistory,
    validator_history,
    validator_set_at,
)
from provledger.protocol.votes import evidence_key, verify_evidence
from provledger.v1 import ledger_pb2


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


class Origin(enum.Enum):
    """Where events come from, which decides how much admission judges them (ADR 008)."""

    CLIENT = "client"  # every rule, now: the client waits for the verdict
    PEER = "peer"  # author, key, signature and nonce: the block rules judge the rest

    @property
    def rules_now(self) -> bool:
        return self is Origin.CLIENT


# What admission made of one event: queued (decoded), refused with the reason, or no room.
Admission: TypeAlias = DecodedEvent | Rejected | MempoolFull

# (public key, signed message including its domain, signature)
SignatureCheck: TypeAlias = tuple[bytes, bytes, bytes]

# Persists an executed block with its certificate; the caller's I/O (see `commit`).
BlockWriter: TypeAlias = Callable[
    [blocks.ExecutedBlock, ledger_pb2.CommitCertificate], Awaitable[None]
]


@dataclass(frozen=True)
class LeftOut:
    """A proposal left `event` out because the rules now reject it; it left the mempool."""

    event: DecodedEvent
    rejection: Rejected


@dataclass(frozen=True)
class InvalidProposal:
    """`validate` found the proposed block `block_id` invalid (consensus prevotes nil)."""

    block_id: bytes
    rejection: Rejected


Report: TypeAlias = LeftOut | InvalidProposal


class LedgerApplication:
    def __init__(self, genesis: Genesis, store: ChainStore, node_id: str) -> None:
        self.genesis = genesis
        self.store = store
        self.node_id = node_id
        self.mempool = Mempool()
        self._verified: OrderedDict[bytes, bytes] = OrderedDict()  # event id -> signature
        self._executed: OrderedDict[bytes, blocks.ExecutedBlock] = OrderedDict()
        self._evidence: dict[str, ledger_pb2.Evidence] = {}
        # Bounded: `propose` adds at most BLOCK_EVENTS_MAX, `validate` one, and the shell
        # takes them after every consensus step.
        self._reports: list[Report] = []
        self._committing = False

    # --- admission --------------------------------------------------------------------------

    def decode_all(self, events: Iterable[ledger_pb2.SignedEvent]) -> list[DecodedEvent | Rejected]:
        """Each event decoded, or why it cannot be."""
        decoded: list[DecodedEvent | Rejected] = []
        for signed in events:
            try:
                decoded.append(decode(signed, self.genesis.chain_id, self.genesis.personal_data))
            except Rejected as rejection:
                decoded.append(rejection)
        return decoded

    def signature_checks(
        self, events: Iterable[DecodedEvent | Rejected]
    ) -> list[tuple[DecodedEvent, SignatureCheck]]:
        """(event, check) for each decoded event whose signature is not yet verified and
        whose author's key is known; the rest are left to `admit`, which says why they fail."""
        checks = []
        for decoded in events:
            if isinstance(decoded, Rejected) or self._already_verified(decoded):
                continue
            member = self.store.load("member", decoded.author_id)
            key = None
            for candidate in getattr(member, "keys", ()):
                if candidate.key_id == decoded.event.author.key_id:
                    key = candidate.public_key
            if key is not None:
                signed = decoded.signed
                checks.append((decoded, (key, crypto.DOMAIN_EVENT + signed.body, signed.signature)))
        return checks

    def mark_verified(self, events: Iterable[DecodedEvent]) -> None:
        """Remember that these events' signatures hold (the caller verified them)."""
        for decoded in events:
            self._remember_verified(decoded)

    def admit(
        self, events: Sequence[DecodedEvent | Rejected], now_ms: int, origin: Origin
    ) -> list[Admission]:
        """Judge each event as its `origin` requires and queue those that pass; each gets its
        outcome, in order. Events already refused by decoding keep their rejection."""
        outcomes: list[Admission] = []
        for item in events:
            if isinstance(item, Rejected):
                outcomes.append(item)
                continue
            try:
                self._admissible(item, now_ms, rules=origin.rules_now)
                self.mempool.add(item)
                outcomes.append(item)
            except (Rejected, MempoolFull) as error:
                outcomes.append(error)
        return outcomes

    def _admissible(self, decoded: DecodedEvent, now_ms: int, *, rules: bool) -> None:
        """Raise `Rejected` unless `decoded` may enter the mempool. With `rules`, every rule
        is checked against the committed state; without, only the author, its key, the
        signature and the nonce."""
        if decoded.event_id in self.mempool or self.store.has_event(decoded.event_id):
            raise duplicate("duplicate_event", "this event was already submitted")
        verify = not self._already_verified(decoded)
        if rules:
            apply_event(
                Overlay(self.store),
                decoded,
                max(now_ms, self.store.tip.time_ms + 1),
                height=self.store.tip.height + 1,
                verify_signature=verify,
                validator_context=ValidatorContext(
                    self.genesis.validator_set, self.store.tip.height + 1
                ),
            )
        else:
            author = authenticate(
                self.store, decoded, height=self.store.tip.height + 1, verify_signature=verify
            )
            if self.store.nonce_used(author.member_id, decoded.event.nonce):
                raise duplicate("replayed_nonce", "the author already used this nonce")
        self._remember_verified(decoded)

    def _remember_verified(self, decoded: DecodedEvent) -> None:
        self._verified[decoded.event_id] = decoded.signed.signature
        self._verified.move_to_end(decoded.event_id)
        while len(self._verified) > VERIFIED_EVENTS_REMEMBERED_MAX:
            self._verified.popitem(last=False)

    def _already_verified(self, decoded: DecodedEvent | None) -> bool:
        """Whether this node verified `decoded`'s signature (this very signature) before."""
        return (
            decoded is not None and self._verified.get(decoded.event_id) == decoded.signed.signature
        )

    def _decode_known(self, signed: ledger_pb2.SignedEvent) -> DecodedEvent:
        """`signed` decoded, reusing the mempool's copy when it holds the same event."""
        queued = self.mempool.get(event_id(signed.body))
        if queued is not None and queued.signed.signature == signed.signature:
            return queued
        return decode(signed, self.genesis.chain_id, self.genesis.personal_data)

    def add_evidence(self, evidence: ledger_pb2.Evidence) -> bool:
        """Keep real, unrecorded evidence for a coming block; False if it is not new, or if
        its votes are for a height after the next block's (whose set is not final here)."""
        key = evidence_key(evidence.first)
        height = evidence.first.height
        if (
            key in self._evidence
            or len(self._evidence) >= EVIDENCE_POOL_MAX
            or height > self.store.tip.height + 1
            or self.store.load("evidence", key) is not None
            or not verify_evidence(self.genesis.chain_id, self.validator_set(height), evidence)
        ):
            return False
        self._evidence[key] = evidence
        return True

    # --- validator sets ----------------------------------------------------------------------

    def validator_set(self, height: int) -> ValidatorSet:
        """The set that signs `height`; final up to the committed tip + 2."""
        check(
            height <= self.store.tip.height + 2,
            f"the validator set of height {height} is not final at {self.store.tip.height}",
        )
        return validator_set_at(self.store, self.genesis.validator_set, height)

    def validator_history(self) -> ValidatorHistory:
        """Every set, the genesis set first, as the committed state knows them."""
        return validator_history(self.store, self.genesis.validator_set)

    # --- consensus's Application --------------------------------------------------------------

    def has_pending_events(self) -> bool:
        return len(self.mempool) > 0 or bool(self._evidence)

    def propose(self, height: int, round_number: int, now_ms: int) -> ledger_pb2.Block:
        store = self.store
        tip = store.tip
        check(height == tip.height + 1, f"asked to propose height {height} on {tip.height}")
        last_commit = None
        if tip.height > 0:
            checkpoint = store.checkpoint(tip.height)
            last_commit = checkpoint.certificate if checkpoint is not None else None
        evidence, candidates = self._within_budget(last_commit)
        executed = blocks.execute_block(
            state=store,
            log=store.log,
            tip=tip,
            chain_id=self.genesis.chain_id,
            candidates=candidates,
            time_ms=max(now_ms, tip.time_ms + 1),
            proposer_id=self.node_id,
            genesis_validators=self.genesis.validator_set,
            last_commit=last_commit,
            strict=False,
            signatures_checked=lambda identifier: self._already_verified(
                self.mempool.get(identifier)
            ),
            evidence=evidence,
        )
        self.mempool.remove([d.event_id for d, _ in executed.rejected])
        self._reports.extend(LeftOut(d, rejection) for d, rejection in executed.rejected)
        block = executed.to_block()
        check(
            block.ByteSize() <= BLOCK_SIZE_BYTES_MAX,
            f"proposed a block of {block.ByteSize()} bytes, over {BLOCK_SIZE_BYTES_MAX}",
        )
        self._cache(executed)
        return block

    def _within_budget(
        self, last_commit: ledger_pb2.CommitCertificate | None
    ) -> tuple[list[ledger_pb2.Evidence], list[DecodedEvent]]:
        """The evidence, then the mempool's oldest events, in order, that fit in one block's
        byte budget beside its header and `last_commit` (counted at their widest). The first
        item that does not fit ends its list: what follows waits for a later block, in order
        (a derivation never overtakes its parent's registration)."""
        room = BLOCK_SIZE_BYTES_MAX - blocks.size_before_events_bytes_max(
            self.genesis.chain_id, self.node_id, last_commit
        )
        evidence: list[ledger_pb2.Evidence] = []
        for item in sorted(self._evidence.values(), key=lambda e: evidence_key(e.first)):
            size = blocks.entry_size_bytes(item)
            if size > room:
                break
            evidence.append(item)
            room -= size
        candidates: list[DecodedEvent] = []
        for decoded in self.mempool.peek(BLOCK_EVENTS_MAX):
            size = blocks.entry_size_bytes(decoded.signed)
            if size > room:
                break
            candidates.append(decoded)
            room -= size
        return evidence, candidates

    def validate(self, block: ledger_pb2.Block, now_ms: int) -> bool:
        identifier = blocks.block_id(block.header)
        if identifier in self._executed:
            return True
        try:
            # A proposal's time may run ahead of this validator's clock by at most
            # BLOCK_TIME_DRIFT_MS_MAX: a Byzantine proposer cannot move the chain's time (which
            # only grows) years ahead, where grants expire and later proposals could not follow.
            executed = self._execute(block, certified=False, now_ms=now_ms)
        except Rejected as rejection:
            self._reports.append(InvalidProposal(identifier, rejection))
            return False
        self._cache(executed)
        return True

    def take_reports(self) -> list[Report]:
        """What `propose` and `validate` found since the last call, oldest first."""
        reports, self._reports = self._reports, []
        return reports

    def _execute(
        self, block: ledger_pb2.Block, *, certified: bool, now_ms: int | None = None
    ) -> blocks.ExecutedBlock:
        """Re-execute `block` on the committed tip; raise `Rejected` if it is not valid.

        `certified`: the caller checked a quorum's commit certificate for this block, so at
        least one honest validator verified every event's signature before precommitting it;
        the rules still run (they make the state), the signature checks are skipped. This is
        what lets a lagging node catch up much faster than the consortium commits."""
        decoded: dict[bytes, DecodedEvent] = {}  # this block's events, as decoded below

        def decode_event(signed: ledger_pb2.SignedEvent) -> DecodedEvent:
            event = self._decode_known(signed)
            decoded[event.event_id] = event
            return event

        def signature_checked(identifier: bytes) -> bool:
            return certified or self._already_verified(decoded.get(identifier))

        store = self.store
        return blocks.validate_block(
            block=block,
            state=store,
            log=store.log,
            tip=store.tip,
            genesis=self.genesis,
            signatures_checked=signature_checked,
            decode_event=decode_event,
            time_drift_ms_max=None if now_ms is None else BLOCK_TIME_DRIFT_MS_MAX,
            now_ms=0 if now_ms is None else now_ms,
        )

    def _cache(self, executed: blocks.ExecutedBlock) -> None:
        self._executed[executed.block_id] = executed
        while len(self._executed) > EXECUTED_BLOCKS_CACHED_MAX:
            self._executed.popitem(last=False)

    # --- committing -------------------------------------------------------------------------

    async def commit(
        self,
        block: ledger_pb2.Block,
        certificate: ledger_pb2.CommitCertificate,
        write: BlockWriter,
        *,
        synced: bool = False,
    ) -> blocks.ExecutedBlock | None:
        """Commit a decided block: execute it on the tip, `write` it, forget what it made
        obsolete. Returns the executed block, or None when it is not the next block (another
        path committed that height first). Raises `Rejected` if the block is not valid here.

        `synced`: the block came from a peer by block sync, not from this node's consensus.
        Its certificate is checked against the validators of its height first; once it holds, the
        events' signatures are not checked again (ADR 008, decision 3).

        Commits must not overlap (the caller serialises them): the tip read before `write`
        must still be the tip after it."""
        check(not self._committing, "commits overlap")
        header = blocks.decode_header(block.header)
        if header.height != self.store.tip.height + 1:
            return None
        if synced:
            blocks.verify_certificate(
                certificate, header, block.header, self.validator_set(header.height)
            )
        identifier = blocks.block_id(block.header)
        executed = self._executed.get(identifier)
        if executed is None or executed.header.height != header.height:
            executed = self._execute(block, certified=synced)
        self._committing = True
        try:
            await write(executed, certificate)
        finally:
            self._committing = False
        self.mempool.remove([d.event_id for d in executed.events])
        for item in executed.evidence:
            self._evidence.pop(evidence_key(item.first), None)
        self._executed.clear()
        return executed


Result = TypeVar("Result")


def commit_now(coroutine: Coroutine[Any, Any, Result]) -> Result:
    """Run a coroutine that never suspends (every await in it completes at once, as a
    synchronous `BlockWriter`'s does) to its result, without an event loop."""
    try:
        coroutine.send(None)
    except StopIteration as finished:
        return finished.value  # type: ignore[no-any-return]
    coroutine.close()
    raise RuntimeError("the coroutine suspended; it needs an event loop")

"""The node's core: admission of events, the block producer seam, commit notifications.

`LedgerNode` owns the store and the mempool and is driven by one asyncio loop:
- `submit` runs every check an event can pass before it is ordered (state-free checks,
  author and signature, and the rules against the committed state), then queues it. Each
  signature is verified once, here, and remembered: the block producer does not verify again.
- a block producer (`SoloProducer` today; BFT consensus later, behind the same two calls
  `take_candidates` and `commit`) builds and commits blocks;
- `commit` persists a block in one synced batch (off the event loop), then wakes whoever
  waits: SubmitAndWait callers by event id, block subscribers by height.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from provledger.node.mempool import Mempool
from provledger.node.store import Store
from provledger.protocol import blocks
from provledger.protocol.crypto import SigningKey
from provledger.protocol.errors import Rejected, duplicate
from provledger.protocol.events import DecodedEvent, decode
from provledger.protocol.genesis import Genesis
from provledger.protocol.limits import BLOCK_EVENTS_MAX, BLOCK_INTERVAL_MS, SUBMIT_WAITERS_MAX
from provledger.protocol.rules import apply_event
from provledger.protocol.state import Overlay
from provledger.v1 import ledger_pb2

log = logging.getLogger("provledger.node")


@dataclass(frozen=True)
class Committed:
    """What a waiter learns when its event is decided."""

    height: int
    rejection: Rejected | None = None


class TooManyWaiters(Exception):
    pass


class LedgerNode:
    def __init__(self, genesis: Genesis, store: Store, node_id: str) -> None:
        self.genesis = genesis
        self.store = store
        self.node_id = node_id
        self.mempool = Mempool()
        self._waiters: dict[bytes, list[asyncio.Future[Committed]]] = {}
        self._waiter_count = 0
        self._head_changed = asyncio.Condition()

    # --- admission --------------------------------------------------------------------------

    def check(self, signed: ledger_pb2.SignedEvent) -> DecodedEvent:
        """Every check that needs no ordering; raises `Rejected`. Changes nothing."""
        decoded = decode(signed, self.genesis.chain_id)
        if decoded.event_id in self.mempool or self.store.has_event(decoded.event_id):
            raise duplicate("duplicate_event", "this event was already submitted")
        apply_event(Overlay(self.store), decoded, self._admission_time_ms())
        return decoded

    def submit(self, signed: ledger_pb2.SignedEvent) -> DecodedEvent:
        decoded = self.check(signed)
        self.mempool.add(decoded)
        return decoded

    def _admission_time_ms(self) -> int:
        # Rules are judged at block time; the next block's time is at least the tip's + 1.
        return self.store.tip.time_ms + 1

    # --- the producer seam ------------------------------------------------------------------

    def take_candidates(self) -> list[DecodedEvent]:
        return self.mempool.peek(BLOCK_EVENTS_MAX)

    async def commit(
        self, executed: blocks.ExecutedBlock, certificate: ledger_pb2.CommitCertificate
    ) -> None:
        await asyncio.to_thread(self.store.commit_block, executed, certificate)
        height = executed.header.height
        self.mempool.remove([d.event_id for d in executed.events])
        for decoded in executed.events:
            self._resolve(decoded.event_id, Committed(height))
        self.discard(executed.rejected)
        async with self._head_changed:
            self._head_changed.notify_all()

    def discard(self, rejected: list[tuple[DecodedEvent, Rejected]]) -> None:
        """Drop events the block rules rejected; tell their waiters why."""
        self.mempool.remove([d.event_id for d, _ in rejected])
        for decoded, rejection in rejected:
            log.info("dropped event %s: %s", decoded.event_id.hex(), rejection)
            self._resolve(decoded.event_id, Committed(self.store.head_height, rejection))

    # --- waiting ----------------------------------------------------------------------------

    def watch(self, event_id: bytes) -> asyncio.Future[Committed]:
        if self._waiter_count >= SUBMIT_WAITERS_MAX:
            raise TooManyWaiters(f"{SUBMIT_WAITERS_MAX} clients are already waiting")
        future: asyncio.Future[Committed] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(event_id, []).append(future)
        self._waiter_count += 1
        return future

    def unwatch(self, event_id: bytes, future: asyncio.Future[Committed]) -> None:
        futures = self._waiters.get(event_id)
        if futures and future in futures:
            futures.remove(future)
            self._waiter_count -= 1
            if not futures:
                del self._waiters[event_id]

    def _resolve(self, event_id: bytes, outcome: Committed) -> None:
        for future in self._waiters.pop(event_id, []):
            self._waiter_count -= 1
            if not future.done():
                future.set_result(outcome)

    async def wait_for_height(self, height: int) -> None:
        """Return once the head is at or above `height`."""
        async with self._head_changed:
            await self._head_changed.wait_for(lambda: self.store.head_height >= height)


class SoloProducer:
    """Block production for a consortium of one validator: every `BLOCK_INTERVAL_MS` that the
    mempool holds events, execute a block, sign it (a quorum of one) and commit it.

    This is the seam BFT consensus replaces: it only calls `take_candidates` and `commit`."""

    def __init__(
        self,
        node: LedgerNode,
        validator_key: SigningKey,
        clock_ms: Callable[[], int],
    ) -> None:
        validators = node.genesis.validator_set
        if len(validators.validators) != 1 or validators.validators[0].validator_id != (
            node.node_id
        ):
            raise ValueError("the solo producer needs a genesis whose only validator is this node")
        if validators.validators[0].public_key != validator_key.public_key:
            raise ValueError("the validator key does not match the genesis validator")
        self._node = node
        self._key = validator_key
        self._clock_ms = clock_ms
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        """Produce blocks until `stop`; a block being committed is always finished."""
        while not self._stopping.is_set():
            try:
                await asyncio.wait_for(self._stopping.wait(), BLOCK_INTERVAL_MS / 1000)
            except TimeoutError:
                candidates = self._node.take_candidates()
                if candidates:
                    await self.produce(candidates)

    def stop(self) -> None:
        self._stopping.set()

    async def produce(self, candidates: list[DecodedEvent]) -> None:
        node = self._node
        store = node.store
        tip = store.tip
        last_commit = None
        if tip.height > 0:
            previous = store.checkpoint(tip.height)
            last_commit = previous.certificate if previous is not None else None
        executed = blocks.execute_block(
            state=store,
            log=store.log,
            tip=tip,
            chain_id=node.genesis.chain_id,
            candidates=candidates,
            time_ms=max(self._clock_ms(), tip.time_ms + 1),
            proposer_id=node.node_id,
            validators=node.genesis.validator_set,
            last_commit=last_commit,
            strict=False,
            signatures_checked=True,
        )
        if not executed.events:  # nothing to commit; the rejected leave with their reasons
            node.discard(executed.rejected)
            return
        certificate = ledger_pb2.CommitCertificate(
            height=executed.header.height,
            round=0,
            block_id=executed.block_id,
            signatures=[
                ledger_pb2.CommitSignature(
                    validator_id=node.node_id,
                    signature=blocks.sign_precommit(
                        self._key,
                        node.genesis.chain_id,
                        executed.header.height,
                        0,
                        executed.block_id,
                    ),
                )
            ],
        )
        await node.commit(executed, certificate)

"""The node's hub: admission of client events, commits, and who waits for them.

`LedgerNode` owns the `LedgerApplication` (mempool, verified signatures, evidence pool) and
is driven by one asyncio loop:
- `submit` runs every check an event can pass before it is ordered (state-free checks, author
  and signature, the rules against the committed state), queues it, and tells the listeners
  (consensus, to propose; the gossip batcher, to forward it to peers);
- `commit` persists a decided block in one synced batch, off the event loop, then wakes
  whoever waits: SubmitAndWait callers by event id, block subscribers by height.
Consensus (`node.consensus_driver`) decides what to commit; this module only carries it out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from provledger.node.application import LedgerApplication
from provledger.node.mempool import MempoolFull
from provledger.node.settings import SUBMIT_WAITERS_MAX
from provledger.node.store import Store
from provledger.node.verifier import SignatureVerifier
from provledger.protocol import blocks
from provledger.protocol.errors import Rejected
from provledger.protocol.events import DecodedEvent
from provledger.protocol.genesis import Genesis
from provledger.v1 import ledger_pb2

log = logging.getLogger("provledger.node")


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class Committed:
    """What a waiter learns when its event is decided."""

    height: int
    rejection: Rejected | None = None


class TooManyWaiters(Exception):
    pass


class LedgerNode:
    def __init__(
        self,
        genesis: Genesis,
        store: Store,
        node_id: str,
        clock_ms: Callable[[], int] = wall_clock_ms,
        verifier: SignatureVerifier | None = None,
    ) -> None:
        self.genesis = genesis
        self.store = store
        self.node_id = node_id
        self.clock_ms = clock_ms
        self.verifier = verifier
        self.app = LedgerApplication(genesis, store, node_id)
        self.mempool = self.app.mempool
        self.app.on_rejected = self.discard
        self.submit_listeners: list[Callable[[list[DecodedEvent]], None]] = []
        self._waiters: dict[bytes, list[asyncio.Future[Committed]]] = {}
        self._waiter_count = 0
        self._head_changed = asyncio.Condition()

    # --- admission --------------------------------------------------------------------------

    def check(self, signed: ledger_pb2.SignedEvent) -> DecodedEvent:
        """Every check that needs no ordering; raises `Rejected`. Changes nothing."""
        return self.app.check(signed, self.clock_ms())

    def submit(self, signed: ledger_pb2.SignedEvent) -> DecodedEvent:
        decoded = self.app.submit(signed, self.clock_ms())
        self._announce([decoded])
        return decoded

    async def _verify_signatures(self, decoded: list[DecodedEvent | Rejected]) -> None:
        """Verify a batch's signatures in the worker pool (if any) and remember which hold,
        so admission skips the crypto for them."""
        if self.verifier is None:
            return
        checks = self.app.signature_checks(decoded)
        if not checks:
            return
        results = await self.verifier.verify([check for _, check in checks])
        self.app.mark_verified(
            identifier for (identifier, _), ok in zip(checks, results, strict=True) if ok
        )

    async def _admit_batch(
        self, events: list[ledger_pb2.SignedEvent], rules: bool
    ) -> list[DecodedEvent | Rejected | MempoolFull]:
        decoded = self.app.decode_all(events)
        await self._verify_signatures(decoded)
        now_ms = self.clock_ms()
        outcomes: list[DecodedEvent | Rejected | MempoolFull] = []
        for item in decoded:
            if isinstance(item, Rejected):
                outcomes.append(item)
                continue
            try:
                self.app.admissible(item, now_ms, rules=rules)
                self.mempool.add(item)
                outcomes.append(item)
            except (Rejected, MempoolFull) as error:
                outcomes.append(error)
        return outcomes

    async def submit_many(
        self, events: list[ledger_pb2.SignedEvent]
    ) -> list[DecodedEvent | Rejected | MempoolFull]:
        """Admit a batch; each event gets its own outcome, in order. Listeners hear once."""
        outcomes = await self._admit_batch(events, rules=True)
        self._announce([o for o in outcomes if isinstance(o, DecodedEvent)])
        return outcomes

    def queue(self, decoded: DecodedEvent) -> None:
        """Queue an event that passed `check`."""
        self.mempool.add(decoded)
        self._announce([decoded])

    async def accept_gossip(self, events: list[ledger_pb2.SignedEvent]) -> None:
        """Events a peer forwarded: authenticated and queued, not forwarded again. The rules
        judge them when a block is built (see LedgerApplication.admissible)."""
        outcomes = await self._admit_batch(events, rules=False)
        for outcome in outcomes:
            if isinstance(outcome, MempoolFull):
                log.debug("dropped a gossiped event: %s", outcome)
        for listener in self.submit_listeners:
            listener([])

    def _announce(self, decoded: list[DecodedEvent]) -> None:
        for listener in self.submit_listeners:
            listener(decoded)

    # --- committing -------------------------------------------------------------------------

    async def commit(
        self, executed: blocks.ExecutedBlock, certificate: ledger_pb2.CommitCertificate
    ) -> None:
        """Persist a decided block (synced, off the loop), then wake its waiters."""
        await asyncio.to_thread(self.store.commit_block, executed, certificate)
        self.app.forget(executed.events, executed.evidence)
        height = executed.header.height
        for decoded in executed.events:
            self._resolve(decoded.event_id, Committed(height))
        async with self._head_changed:
            self._head_changed.notify_all()

    def discard(self, rejected: list[tuple[DecodedEvent, Rejected]]) -> None:
        """Events the block rules rejected leave the mempool; their waiters learn why."""
        self.mempool.remove([d.event_id for d, _ in rejected])
        for decoded, rejection in rejected:
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

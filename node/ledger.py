"""The node's hub: the one way events are admitted, the one way blocks are committed, and who
waits for them.

`LedgerNode` wraps the pure `protocol.application.LedgerApplication` (mempool, verified
signatures, evidence pool, the commit sequence) with what is I/O, on the node's one asyncio
loop:
- `admit` is the only way into the mempool: a client's single event (SubmitEvent,
  SubmitAndWait), a client's batch (SubmitEvents) and a peer's gossiped batch all come
  through it, with their `Origin`. The signatures go to the `SignatureVerifier` (a worker
  pool for large batches, inline for small ones), then the application judges each event
  (every rule for a client's, ADR 008) and queues it; the admission listeners hear what was
  queued (consensus, to propose; the gossip batcher, to forward a client's events to peers).
- `commit` runs the application's commit sequence with the synced LevelDB write off the
  event loop, one commit at a time (consensus decisions and synced blocks both come here),
  then wakes whoever waits: SubmitAndWait callers by event id, block subscribers by height.
- `handle_reports` acts on what the application reported during a consensus step: a waiter
  whose event a proposal left out learns why.

No lost wake-up: a waiter is registered (`watch`) before its event is admitted, and the
waiter is only resolved by a commit or a left-out report that comes after admission.
Consensus (`node.consensus_driver`) decides what to commit; this module only carries it out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from provledger.node.forks import ForkLog
from provledger.node.metrics import NodeMetrics
from provledger.node.settings import SUBMIT_WAITERS_MAX
from provledger.node.store import Store
from provledger.node.verifier import SignatureVerifier
from provledger.protocol import blocks
from provledger.protocol.application import (
    Admission,
    LedgerApplication,
    LeftOut,
    Origin,
)
from provledger.protocol.errors import Rejected
from provledger.protocol.events import DecodedEvent
from provledger.protocol.genesis import Genesis
from provledger.v1 import ledger_pb2

log = logging.getLogger("provledger.node")

AdmissionListener = Callable[[list[DecodedEvent], Origin], None]


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
        verifier: SignatureVerifier,
        clock_ms: Callable[[], int] = wall_clock_ms,
    ) -> None:
        self.genesis = genesis
        self.store = store
        self.node_id = node_id
        self.clock_ms = clock_ms
        self.verifier = verifier
        self.app = LedgerApplication(genesis, store, node_id)
        # Peers' conflicting blocks; their equivocations go to the evidence pool.
        self.forks = ForkLog(store, genesis, node_id, clock_ms, self.app.add_evidence)
        self.admission_listeners: list[AdmissionListener] = []
        self.metrics = NodeMetrics()  # a registry of this node's own (node/metrics.py)
        self._commit_lock = asyncio.Lock()
        self._waiters: dict[bytes, list[asyncio.Future[Committed]]] = {}
        self._waiter_count = 0
        self._head_changed = asyncio.Condition()

    # --- admission --------------------------------------------------------------------------

    async def admit(
        self, events: Sequence[ledger_pb2.SignedEvent], origin: Origin
    ) -> list[Admission]:
        """Admit `events` from `origin`: each gets its outcome, in order (queued as a
        `DecodedEvent`, or the `Rejected` / `MempoolFull` that says why not). The listeners
        hear once, with what was queued."""
        decoded = self.app.decode_all(events)
        checks = self.app.signature_checks(decoded)
        if checks:
            results = await self.verifier.verify([check for _, check in checks])
            self.app.mark_verified(
                event for (event, _), ok in zip(checks, results, strict=True) if ok
            )
        outcomes = self.app.admit(decoded, self.clock_ms(), origin)
        self.metrics.admitted(outcomes, origin)
        admitted = [outcome for outcome in outcomes if isinstance(outcome, DecodedEvent)]
        if admitted:
            for listener in self.admission_listeners:
                listener(admitted, origin)
        return outcomes

    # --- committing -------------------------------------------------------------------------

    async def commit(
        self,
        block: ledger_pb2.Block,
        certificate: ledger_pb2.CommitCertificate,
        *,
        synced: bool = False,
    ) -> blocks.ExecutedBlock | None:
        """Commit a decided (or, with `synced`, a fetched) block and wake its waiters; None
        if that height is already committed. Raises `Rejected` if the block is not valid."""
        async with self._commit_lock:
            executed = await self.app.commit(block, certificate, self._write, synced=synced)
            if executed is None:
                return None
            height = executed.header.height
            for decoded in executed.events:
                self._resolve(decoded.event_id, Committed(height))
            self.metrics.committed(executed, block.ByteSize(), certificate.round, synced=synced)
        async with self._head_changed:
            self._head_changed.notify_all()
        return executed

    async def _write(
        self, executed: blocks.ExecutedBlock, certificate: ledger_pb2.CommitCertificate
    ) -> None:
        """One synced LevelDB batch, in a thread: the loop keeps serving meanwhile (reads see
        the last committed block through the store's snapshot)."""
        await asyncio.to_thread(self.store.commit_block, executed, certificate)

    async def commits_finished(self) -> None:
        """Return once no commit is in progress (before the store is closed)."""
        async with self._commit_lock:
            pass

    def handle_reports(self) -> None:
        """Act on what the application found during the last consensus step: events a
        proposal left out (out of the mempool already) tell their waiters why; invalid
        proposals are logged."""
        for report in self.app.take_reports():
            if isinstance(report, LeftOut):
                event_hex = report.event.event_id.hex()
                log.info("left out event %s: %s", event_hex, report.rejection)
                outcome = Committed(self.store.head_height, report.rejection)
                self._resolve(report.event.event_id, outcome)
            else:
                log.warning("invalid proposal %s: %s", report.block_id.hex()[:16], report.rejection)

    # --- waiting ----------------------------------------------------------------------------

    def watch(self, event_id: bytes) -> asyncio.Future[Committed]:
        """A future resolved when `event_id` is committed or left out. Call it before the
        event is admitted, and `unwatch` when done waiting."""
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

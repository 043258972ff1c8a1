"""The node's Prometheus metrics: every definition lives here (docs/operations.md, Monitoring
lists them).

One `NodeMetrics` per node, on a registry of its own (never prometheus_client's global one),
so that several nodes in one process keep theirs apart; the process metrics (CPU, memory,
open files, Python and its garbage collector) are on that registry too. Served at `/metrics`
on the operations listener (node/operations.py).

Two kinds:
- what happens, counted where it happens, by the seams that see it (`LedgerNode.admit`
  calls `admitted`, `LedgerNode.commit` calls `committed`): a counter increment or a
  histogram observation per event or block, nothing more;
- what is, read when scraped: a `Gauges` snapshot from the callable `watch` is given
  (node/operations.py `NodeProbe.gauges`), so the hot path never updates a gauge.

Submit-to-commit latency is measured on the node that admitted a client's event: from its
admission to the commit of the block holding it. The admission times of at most
`MEMPOOL_EVENTS_MAX` events are remembered (the oldest are forgotten: an event left out of a
block is never observed).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from provledger.protocol.application import Admission, Origin
from provledger.protocol.blocks import ExecutedBlock
from provledger.protocol.errors import Rejected
from provledger.protocol.events import DecodedEvent
from provledger.protocol.limits import MEMPOOL_EVENTS_MAX
from provledger.protocol.mempool import MempoolFull

PREFIX = "provledger"
LATENCY_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
ROUNDS_BUCKETS = (1, 2, 3, 4, 6, 10, 20)
BLOCK_BYTES_BUCKETS = (1_024, 4_096, 16_384, 65_536, 262_144, 1_048_576, 4_194_304)
MEMPOOL_FULL_CODE = "mempool_full"  # the refusal code of an event the full mempool turned away


@dataclass(frozen=True)
class Gauges:
    """What is, at one moment (node/operations.py `NodeProbe.gauges`)."""

    height: int
    round: int
    mempool_events: int
    mempool_bytes: int
    peers_connected: int
    sync_lag_blocks: int
    store_bytes: int
    ready: bool


# (name, help) of each gauge read at scrape time, in `Gauges` order.
_GAUGES = (
    ("height", "the height of the last committed block"),
    ("round", "the consensus round at the height being decided"),
    ("mempool_events", "events admitted and waiting for a block"),
    ("mempool_bytes", "bytes of the signed events waiting for a block"),
    ("peers_connected", "peers with an open gossip stream from this node"),
    ("sync_lag_blocks", "blocks behind the highest height a peer reported (0 if none is ahead)"),
    ("store_size_bytes", "bytes of the node's data folder on disk (LevelDB and its files)"),
    ("ready", "1 if the node is ready (/ready), else 0"),
)


class _GaugeCollector(Collector):
    def __init__(self, read: Callable[[], Gauges]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        gauges = self._read()
        values = (
            gauges.height,
            gauges.round,
            gauges.mempool_events,
            gauges.mempool_bytes,
            gauges.peers_connected,
            gauges.sync_lag_blocks,
            gauges.store_bytes,
            int(gauges.ready),
        )
        for (name, help_text), value in zip(_GAUGES, values, strict=True):
            yield GaugeMetricFamily(f"{PREFIX}_{name}", help_text, value=value)

    def describe(self) -> Iterable[Metric]:
        return [GaugeMetricFamily(f"{PREFIX}_{name}", help_text) for name, help_text in _GAUGES]


class NodeMetrics:
    def __init__(self, clock_s: Callable[[], float] = time.monotonic) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._clock_s = clock_s
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.events_admitted = Counter(
            f"{PREFIX}_events_admitted_total",
            "events admitted into the mempool, by where they came from",
            ["origin"],
            registry=self.registry,
        )
        self.events_refused = Counter(
            f"{PREFIX}_events_refused_total",
            "events refused admission, by where they came from and error code",
            ["origin", "code"],
            registry=self.registry,
        )
        self.blocks_committed = Counter(
            f"{PREFIX}_blocks_committed_total",
            "blocks committed, by how this node learned them (consensus or sync)",
            ["source"],
            registry=self.registry,
        )
        self.events_committed = Counter(
            f"{PREFIX}_events_committed_total",
            "events committed in blocks",
            registry=self.registry,
        )
        self.commit_latency = Histogram(
            f"{PREFIX}_commit_latency_seconds",
            "from the admission of a client's event on this node to the commit of its block",
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.rounds_per_height = Histogram(
            f"{PREFIX}_rounds_per_height",
            "consensus rounds a committed height took (its commit certificate's round + 1)",
            buckets=ROUNDS_BUCKETS,
            registry=self.registry,
        )
        self.block_bytes = Histogram(
            f"{PREFIX}_block_bytes",
            "bytes of each committed block (header, events, certificate of the last block)",
            buckets=BLOCK_BYTES_BUCKETS,
            registry=self.registry,
        )
        for origin in Origin:
            self.events_admitted.labels(origin.value)  # present at 0 from the start
        self.blocks_committed.labels("consensus")
        self.blocks_committed.labels("sync")
        self._admitted_at: OrderedDict[bytes, float] = OrderedDict()
        self._watching = False
        self.last_commit_s: float | None = None  # when the last block was committed (clock_s)

    def watch(self, read: Callable[[], Gauges]) -> None:
        """Read the gauges with `read` at every scrape (once per registry)."""
        if self._watching:
            raise RuntimeError("the gauges are already watched")
        self.registry.register(_GaugeCollector(read))
        self._watching = True

    # --- the seams ----------------------------------------------------------------------------

    def admitted(self, outcomes: Sequence[Admission], origin: Origin) -> None:
        """`LedgerNode.admit`'s outcomes: counted; a client's admitted events timed."""
        admitted = 0
        now = self._clock_s()
        for outcome in outcomes:
            if isinstance(outcome, DecodedEvent):
                admitted += 1
                if origin is Origin.CLIENT:
                    self._admitted_at[outcome.event_id] = now
            elif isinstance(outcome, Rejected):
                self.events_refused.labels(origin.value, outcome.code).inc()
            elif isinstance(outcome, MempoolFull):
                self.events_refused.labels(origin.value, MEMPOOL_FULL_CODE).inc()
        if admitted:
            self.events_admitted.labels(origin.value).inc(admitted)
        while len(self._admitted_at) > MEMPOOL_EVENTS_MAX:
            self._admitted_at.popitem(last=False)

    def committed(
        self, executed: ExecutedBlock, block_bytes: int, round_number: int, *, synced: bool
    ) -> None:
        """A block `LedgerNode.commit` committed."""
        self.last_commit_s = self._clock_s()
        self.blocks_committed.labels("sync" if synced else "consensus").inc()
        self.events_committed.inc(len(executed.events))
        self.block_bytes.observe(block_bytes)
        self.rounds_per_height.observe(round_number + 1)
        if self._admitted_at:
            now = self.last_commit_s
            for decoded in executed.events:
                admitted_at = self._admitted_at.pop(decoded.event_id, None)
                if admitted_at is not None:
                    self.commit_latency.observe(now - admitted_at)

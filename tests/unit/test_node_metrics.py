"""node/metrics.py and the mempool's byte count: what the seams count, a registry per node,
and gauges read only when scraped. (The metrics moving on real nodes: tests/integration/
test_metrics.py.)"""

from __future__ import annotations

from types import SimpleNamespace

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from provledger.node.metrics import MEMPOOL_FULL_CODE, Gauges, NodeMetrics
from provledger.protocol.application import Origin
from provledger.protocol.errors import duplicate
from provledger.protocol.events import DecodedEvent
from provledger.protocol.mempool import Mempool, MempoolFull
from provledger.v1 import ledger_pb2


def decoded(number: int, body_bytes: int = 100) -> DecodedEvent:
    signed = ledger_pb2.SignedEvent(body=bytes([number]) * body_bytes, signature=b"s" * 64)
    return DecodedEvent(signed, ledger_pb2.Event(), bytes([number]) * 32, "asset_registered")


def samples(metrics: NodeMetrics) -> dict[tuple[str, frozenset], float]:
    text = generate_latest(metrics.registry).decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_admission_and_commit_are_counted_and_timed():
    clock = Clock()
    metrics = NodeMetrics(clock)
    first, second, third = decoded(1), decoded(2), decoded(3)
    refused = duplicate("duplicate_event", "again")
    metrics.admitted([first, second, refused, MempoolFull("full")], Origin.CLIENT)
    metrics.admitted([third], Origin.PEER)
    clock.now = 102.5
    block = SimpleNamespace(events=[first, third])
    metrics.committed(block, 4_000, 1, synced=False)  # type: ignore[arg-type]
    found = samples(metrics)
    assert found[("provledger_events_admitted_total", frozenset({("origin", "client")}))] == 2
    assert found[("provledger_events_admitted_total", frozenset({("origin", "peer")}))] == 1
    refusals = {
        dict(labels)["code"]: value
        for (name, labels), value in found.items()
        if name == "provledger_events_refused_total"
    }
    assert refusals == {"duplicate_event": 1, MEMPOOL_FULL_CODE: 1}
    # Only the client's event committed here is timed (the peer's is not).
    assert found[("provledger_commit_latency_seconds_count", frozenset())] == 1
    assert found[("provledger_commit_latency_seconds_sum", frozenset())] == 2.5
    assert found[("provledger_rounds_per_height_sum", frozenset())] == 2
    assert found[("provledger_block_bytes_sum", frozenset())] == 4_000
    assert found[("provledger_events_committed_total", frozenset())] == 2
    consensus = frozenset({("source", "consensus")})
    assert found[("provledger_blocks_committed_total", consensus)] == 1
    assert metrics.last_commit_s == 102.5
    # The second event's time is remembered until its block commits.
    metrics.committed(SimpleNamespace(events=[second]), 10, 0, synced=True)  # type: ignore[arg-type]
    found = samples(metrics)
    assert found[("provledger_commit_latency_seconds_count", frozenset())] == 2
    assert found[("provledger_blocks_committed_total", frozenset({("source", "sync")}))] == 1


def test_each_node_has_its_own_registry_with_process_metrics_and_gauges_read_at_scrape():
    one, two = NodeMetrics(), NodeMetrics()
    one.admitted([decoded(1)], Origin.CLIENT)
    reads = []

    def gauges() -> Gauges:
        reads.append(1)
        return Gauges(7, 1, 2, 300, 3, 4, 5_000, True)

    one.watch(gauges)
    assert reads == []  # registering reads nothing: describe() names the gauges
    found = samples(one)
    assert len(reads) == 1
    assert found[("provledger_height", frozenset())] == 7
    assert found[("provledger_mempool_bytes", frozenset())] == 300
    assert found[("provledger_store_size_bytes", frozenset())] == 5_000
    assert found[("provledger_ready", frozenset())] == 1
    assert found[("provledger_events_admitted_total", frozenset({("origin", "client")}))] == 1
    assert any(name == "process_resident_memory_bytes" for name, _ in found)
    other = samples(two)
    assert other[("provledger_events_admitted_total", frozenset({("origin", "client")}))] == 0
    assert ("provledger_height", frozenset()) not in other


def test_the_mempool_counts_its_bytes():
    mempool = Mempool(events_max=2)
    first, second = decoded(1, 100), decoded(2, 50)
    assert mempool.bytes_held == 0
    assert mempool.add(first)
    assert not mempool.add(first)  # already held: counted once
    assert mempool.add(second)
    assert mempool.bytes_held == first.signed.ByteSize() + second.signed.ByteSize()
    mempool.remove([first.event_id, b"unknown"])
    assert mempool.bytes_held == second.signed.ByteSize()
    mempool.remove([second.event_id, second.event_id])
    assert mempool.bytes_held == 0

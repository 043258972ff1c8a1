"""One load phase: streams pre-sign, block watchers open, a common start, and the figures.

`load_phase` spawns the streams (see `load`), waits until they have signed everything, opens a
`SubscribeBlocks` stream on every loaded node from the next height (`BlockWatcher`), takes a
/proc snapshot and sends every stream ("go", start). It then collects the streams' results
and waits until every accepted event is in a block on the primary node (the first loaded
one) and every other watcher has seen that block too, or until no block came for
`COMMIT_IDLE_TIMEOUT_S`. Figures (`LoadFigures`):
- committed events/s: accepted events seen in a block on the primary node / (first submit ->
  the arrival there of the block holding the last of them), also over each fifth of them;
- admitted events/s: accepted events / (first submit -> last SubmitEvents answer);
- submit->commit latency per batch: from its first send to the arrival, on the node it was
  sent to, of the block holding its last event (retries included; batches with an event
  that never committed are left out); per event: from the send that got it accepted to the
  arrival of its block on that node. Percentiles are nearest-rank;
- the CPU of every node, the load client and other processes over the phase (`machine`).
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import grpc

from harness import BenchmarkError
from harness.load import (
    LoadPlan,
    StreamResult,
    collect_results,
    spawned_streams,
    stream_specs,
    wait_ready,
)
from harness.machine import PhaseUsage, snapshot, usage_between
from harness.nodes import Cluster, head_header, reader
from provledger.protocol.blocks import decode_header
from provledger.protocol.events import event_id
from provledger.v1 import api_pb2

COMMIT_IDLE_TIMEOUT_S = 60.0
PACED_START_DELAY_S = 0.5  # paced streams start together a little after "go" is sent
PROGRESS_INTERVAL_S = 5.0
POLL_INTERVAL_S = 0.01
STREAM_POLL_INTERVAL_S = 1.0
WATCHER_STOP_TIMEOUT_S = 5.0
RUN_PARTS = 5  # committed events/s is also given over each fifth of the committed events


class BlockWatcher(threading.Thread):
    """Follows SubscribeBlocks on one node from a height and notes when each block arrived;
    the primary watcher also notes which block holds each event."""

    def __init__(self, node_name: str, address: str, from_height: int, primary: bool) -> None:
        super().__init__(name=f"watch-{node_name}", daemon=True)
        self.node_name = node_name
        self.primary = primary
        self._client = reader(address)  # whole blocks are an auditor's read
        self._call = self._client.stub.SubscribeBlocks(
            api_pb2.SubscribeBlocksRequest(from_height=from_height)
        )
        self.arrival_by_height: dict[int, float] = {}
        self.arrivals: list[tuple[float, int]] = []  # (arrival, events) of blocks with events
        self.height_by_event: dict[bytes, int] = {}
        self.proposers: Counter[str] = Counter()  # of blocks holding events
        self.events_seen = 0
        self.highest = from_height - 1
        self.last_events_height = 0  # of the latest block holding events
        self.last_arrival_s = time.monotonic()
        self.error: str | None = None
        self._stopping = False

    def run(self) -> None:
        try:
            for block in self._call:
                arrived = time.monotonic()
                header = decode_header(block.header)
                self.arrival_by_height[header.height] = arrived
                if block.events:
                    self.arrivals.append((arrived, len(block.events)))
                    self.proposers[header.proposer_id] += 1
                    self.last_events_height = header.height
                    if self.primary:
                        for signed in block.events:
                            self.height_by_event[event_id(signed.body)] = header.height
                self.events_seen += len(block.events)
                self.highest = header.height
                self.last_arrival_s = arrived
        except grpc.RpcError as error:
            if not self._stopping:
                self.error = (
                    f"SubscribeBlocks on {self.node_name} ended: "
                    f"{error.code().name}: {error.details()}"
                )

    def stop(self) -> None:
        self._stopping = True
        self._call.cancel()
        self.join(timeout=WATCHER_STOP_TIMEOUT_S)
        self._client.close()


@dataclass
class LoadFigures:
    phase: str
    streams: int
    batch_size: int  # events per SubmitEvents call
    nodes_loaded: int
    events: int
    accepted: int
    committed: int  # seen in a block on the primary node
    elapsed_s: float  # first submit -> the primary node's block holding the last event
    committed_per_s: float
    committed_per_s_by_part: list[float]  # over each fifth of the committed events, in order
    admitted_per_s: float  # first submit -> last SubmitEvents answer
    offered_per_s: float  # events / (first send -> last send)
    blocks: int  # holding events
    block_events_max: int
    proposers: dict[str, int]
    latency_ms: dict[str, float]  # per batch, on the node it was sent to
    event_latency_ms: dict[str, float]
    batches: int
    mempool_full_retries: int
    rejections: dict[str, int]
    send_lag_max_ms: float
    sign_s: float
    usage: PhaseUsage


def load_phase(phase_name: str, cluster: Cluster, plan: LoadPlan) -> LoadFigures:
    """Spawn the streams, let them pre-sign, run the load; the figures."""
    specs = stream_specs(
        plan,
        [node.address for node in cluster.nodes],
        cluster.ca_certificate_path,
        cluster.identity_paths,
    )
    print(
        f"\n{phase_name}: pre-signing {plan.events:,} events in {len(specs)} streams over "
        f"{', '.join(cluster.nodes[i].name for i in plan.node_indexes)} "
        f"(batches of {plan.batch_size}, {plan.pace})",
        flush=True,
    )
    with spawned_streams(specs) as spawned:
        sign_s = wait_ready(spawned)
        print(f"{phase_name}: pre-signed in {sign_s:.1f} s; load starts", flush=True)
        primary_index = plan.node_indexes[0]
        with reader(cluster.nodes[primary_index].address) as client:
            from_height = head_header(client).height + 1
        watchers = {
            index: BlockWatcher(
                cluster.nodes[index].name,
                cluster.nodes[index].address,
                from_height,
                primary=index == primary_index,
            )
            for index in plan.node_indexes
        }
        for watcher in watchers.values():
            watcher.start()
        try:
            before = snapshot(cluster.pids())
            start_s = time.monotonic() + (PACED_START_DELAY_S if plan.rate_per_s else 0.0)
            for stream in spawned:
                stream.connection.send(("go", start_s))
            progress = Progress(phase_name, watchers[primary_index], start_s)

            def check() -> None:
                cluster.check_alive()
                watchers_ok(watchers.values())
                progress.print()

            results = collect_results(spawned, STREAM_POLL_INTERVAL_S, check)
            accepted = sum(result.accepted for result in results)
            wait_for_commits(phase_name, watchers, primary_index, accepted, check)
            after = snapshot(cluster.pids())
        finally:
            for watcher in watchers.values():
                watcher.stop()
        client_pids = {os.getpid(), *(stream.pid for stream in spawned)}
    usage = usage_between(before, after, cluster.members(), client_pids)
    return load_figures(phase_name, plan, results, watchers, primary_index, sign_s, usage)


def watchers_ok(watchers: Iterable[BlockWatcher]) -> None:
    for watcher in watchers:
        if watcher.error is not None:
            raise BenchmarkError(watcher.error)


class Progress:
    """A line now and then on how many events the primary node has committed."""

    def __init__(self, phase_name: str, primary: BlockWatcher, start_s: float) -> None:
        self.phase_name, self.primary, self.start_s = phase_name, primary, start_s
        self.last_s = time.monotonic()

    def print(self) -> None:
        now = time.monotonic()
        if now - self.last_s < PROGRESS_INTERVAL_S:
            return
        self.last_s = now
        print(
            f"  {self.phase_name}: {now - self.start_s:6.1f} s: "
            f"{self.primary.events_seen:,} events committed on {self.primary.node_name} in "
            f"{len(self.primary.arrivals)} blocks",
            flush=True,
        )


def wait_for_commits(
    phase_name: str,
    watchers: dict[int, BlockWatcher],
    primary_index: int,
    accepted: int,
    check: Callable[[], None],
) -> None:
    """Until the primary watcher has seen every accepted event and every other watcher has
    seen the blocks that hold them (or no block came for COMMIT_IDLE_TIMEOUT_S)."""
    primary = watchers[primary_index]
    while True:
        check()
        top = primary.last_events_height
        if primary.events_seen >= accepted and all(w.highest >= top for w in watchers.values()):
            return
        idle_s = time.monotonic() - max(w.last_arrival_s for w in watchers.values())
        if idle_s > COMMIT_IDLE_TIMEOUT_S:
            heights = {w.node_name: w.highest for w in watchers.values()}
            print(
                f"{phase_name}: no block for {COMMIT_IDLE_TIMEOUT_S:.0f} s with "
                f"{accepted - primary.events_seen:,} accepted events not seen on "
                f"{primary.node_name}; heights seen {heights}; giving up (see the node logs)",
                file=sys.stderr,
            )
            return
        time.sleep(POLL_INTERVAL_S)


def load_figures(
    phase_name: str,
    plan: LoadPlan,
    results: list[StreamResult],
    watchers: dict[int, BlockWatcher],
    primary_index: int,
    sign_s: float,
    usage: PhaseUsage,
) -> LoadFigures:
    primary = watchers[primary_index]
    first_send = min(result.first_send_s for result in results)
    last_send = max(result.last_send_s for result in results)
    last_accept = max(result.last_accept_s for result in results)
    accepted = sum(result.accepted for result in results)
    committed = 0
    last_commit = first_send
    batch_latencies: list[float] = []
    event_latencies: list[float] = []
    for result in results:
        arrival_by_height = watchers[result.node_index].arrival_by_height
        for batch in result.batches:
            arrivals = []
            for identifier, sent in zip(batch.accepted_ids, batch.accepted_send_s, strict=True):
                height = primary.height_by_event.get(identifier)
                if height is None:
                    continue
                committed += 1
                last_commit = max(last_commit, primary.arrival_by_height[height])
                arrived = arrival_by_height.get(height)
                if arrived is not None:
                    arrivals.append(arrived)
                    event_latencies.append(arrived - sent)
            if arrivals and len(arrivals) == len(batch.accepted_ids):
                batch_latencies.append(max(arrivals) - batch.first_send_s)
    elapsed_s = last_commit - first_send
    rejections: Counter[str] = Counter()
    for result in results:
        rejections.update(result.rejections)
    return LoadFigures(
        phase=phase_name,
        streams=len(results),
        batch_size=plan.batch_size,
        nodes_loaded=len(watchers),
        events=plan.events,
        accepted=accepted,
        committed=committed,
        elapsed_s=elapsed_s,
        committed_per_s=committed / elapsed_s if elapsed_s > 0 else 0.0,
        committed_per_s_by_part=rates_by_part(primary.arrivals, first_send, RUN_PARTS),
        admitted_per_s=accepted / (last_accept - first_send) if last_accept > first_send else 0.0,
        offered_per_s=plan.events / (last_send - first_send) if last_send > first_send else 0.0,
        blocks=len(primary.arrivals),
        block_events_max=max((count for _, count in primary.arrivals), default=0),
        proposers=dict(sorted(primary.proposers.items())),
        latency_ms=percentiles_ms(batch_latencies),
        event_latency_ms=percentiles_ms(event_latencies),
        batches=sum(len(result.batches) for result in results),
        mempool_full_retries=sum(result.mempool_full_retries for result in results),
        rejections=dict(rejections),
        send_lag_max_ms=max(result.send_lag_max_s for result in results) * 1000,
        sign_s=sign_s,
        usage=usage,
    )


def rates_by_part(arrivals: list[tuple[float, int]], start_s: float, parts: int) -> list[float]:
    """Committed events/s over each of `parts` equal shares of the committed events, in order,
    from (arrival, events) of each block: does the node slow down as its ledger grows?"""
    total = sum(count for _, count in arrivals)
    rates: list[float] = []
    committed, part_start_s, part_start_events = 0, start_s, 0
    for arrived, count in arrivals:
        committed += count
        if total and committed >= total * (len(rates) + 1) / parts:
            span_s = arrived - part_start_s
            rates.append((committed - part_start_events) / span_s if span_s > 0 else 0.0)
            part_start_s, part_start_events = arrived, committed
    return rates


def percentiles_ms(values_s: Sequence[float]) -> dict[str, float]:
    """Nearest-rank p50, p90, p99 and max, in milliseconds (NaN for no values)."""
    if not values_s:
        return {"p50": math.nan, "p90": math.nan, "p99": math.nan, "max": math.nan}
    ordered = sorted(values_s)

    def rank(percent: float) -> float:
        return ordered[max(0, math.ceil(percent / 100 * len(ordered)) - 1)] * 1000

    return {"p50": rank(50), "p90": rank(90), "p99": rank(99), "max": ordered[-1] * 1000}

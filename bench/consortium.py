"""Four-node benchmark: a consortium of four validator processes sharing this one machine.

Theory of operation
-------------------
A fresh four-validator consortium goes into a temporary folder (`init_consortium` on a base
port whose ports are all free) and four REAL node processes are started on it
(`python -m provledger.cli.main node run`, through tests/support/processes.py's `NodeProcess`:
each node in a process group of its own, stopped by its PID — SIGTERM, wait, SIGKILL, then
its leftover signature workers — whatever happens). The run has three measured phases:

1. Peak throughput. `--streams` load processes (spawned, one gRPC channel each, stream k on
   node k mod 4) pre-sign their share of `--events` `asset_registered` events before anything
   is timed: fresh asset ids, authors round-robin over agency-a, agency-b and exchange, nonces
   unique per author (`EventSigner` with a range of its own per stream and phase). A
   `SubscribeBlocks` stream on every node is opened before the load. On a common signal the
   streams submit `SubmitEvents` batches of 200, one call after the other; a `mempool_full`
   result is retried after a short sleep and counted. Committed events/s = accepted events /
   (first submit -> arrival on node-0 of the block holding the last of them).
2. Latency at half load. Streams pace `SubmitEvents` batches of 20, staggered, at 50% of the
   peak rate just measured, for `--paced-seconds`. Latency per batch: from its first send to
   the arrival, through `SubscribeBlocks` on the node it was sent to, of the block holding its
   last accepted event. Percentiles are nearest-rank.
3. Catch-up. node-3 is stopped (SIGTERM); `--catch-up-events` events are committed by the
   other three (the same streams, over nodes 0-2; their throughput is reported too); node-3 is
   restarted and `GetCheckpoint` is polled on node-3 and node-0 until node-3's height equals
   node-0's. Catch-up speed = events (and blocks) node-3 committed / (restart -> equal
   height); the time to serve (restart -> gRPC health SERVING) is reported on its own, and
   the speed from SERVING too, since a restart's fixed cost weighs on a short catch-up.

Before the load, the idle consortium (heartbeat blocks only) is measured for a few seconds.
In each phase the CPU of every node is measured from /proc (utime+stime): its event-loop
thread (the main thread), its other threads, and the other processes of its process group
(its signature-check worker); so are its peak RSS (VmHWM of /proc/PID/status: the peak since
the process started), the load client's CPU (streams and this process) and the CPU that
other processes on the machine used (/proc/stat busy time minus ours; `--wait-quiet` waits
for a quiet machine first). At the end the node logs are searched for what the figures
should be read with: proposals judged invalid, blocks a running validator had to fetch by
block sync, events a proposer left out, ERROR lines. Figures are printed, summarised on one
`RESULT {json}` line, and written between the `consortium` markers of docs/PERFORMANCE.md.

With `--profile` (or `--profile peak`), node-1 runs under cProfile (bench/_profiled_node.py,
per-thread CPU clock) and only the peak phase runs; node-1 is then stopped by SIGTERM, which
writes the profile, and its top entries go between the `consortium_profile` markers.
`--profile half --half-rate R` profiles the half-load phase alone, offered at R events/s
(`consortium_profile_half`). A profiled node slows the consortium (it is on the critical
path whenever it proposes, and it falls behind), so those throughput figures are not
comparable and are not written to the main section.

Small /proc and report helpers are copied from bench/single_node.py rather than imported:
that file is being changed by another engineer and the two benchmarks should not break each
other.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import itertools
import json
import math
import multiprocessing
import multiprocessing.connection
import os
import platform
import pstats
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import grpc

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
sys.path.insert(0, str(REPO_ROOT / "tests"))  # tests/support: nodes as processes, by PID

from _measure import (  # noqa: E402 - bench/ is the script's folder
    CLOCK_TICKS_PER_S,
    QUIET_CORES_MAX,
    BenchmarkError,
    _exit_on_sigterm,
    cpu_model,
    machine_busy_seconds,
    percentiles_ms,
    replace_section,
    wait_until_quiet,
)
from support.processes import NodeProcess, NodeStartError, init_consortium  # noqa: E402

from provledger.cli.client import CHANNEL_OPTIONS, EventSigner, Identity  # noqa: E402
from provledger.protocol.limits import SUBMIT_BATCH_EVENTS_MAX  # noqa: E402
from provledger.v1 import api_pb2, api_pb2_grpc, ledger_pb2  # noqa: E402

REPORT_PATH = REPO_ROOT / "docs" / "PERFORMANCE.md"
PROFILED_NODE_SCRIPT = BENCH_DIR / "_profiled_node.py"
REPORT_KEY = "consortium"
REPORT_TITLE = "Four nodes on one machine"
# The phases --profile can profile: {phase: (report marker key, section title)}.
PROFILE_REPORTS = {
    "peak": ("consortium_profile", "Where the time goes (four nodes, peak)"),
    "half": ("consortium_profile_half", "Where the time goes (four nodes, half load)"),
}

NODES = 4
LAGGING_NODE = 3  # the node stopped and restarted in the catch-up phase
LAGGING_NODE_NAME = f"node-{LAGGING_NODE}"
PROFILED_NODE = 1  # under --profile; not node-0, whose SubscribeBlocks stream times the run
AUTHORS = ("agency-a", "agency-b", "exchange")
NODE_SOURCE_DIRS = ("node", "protocol", "cli", "proto")  # what the measured nodes run

# Targets from the design document ("Targets").
TARGET_COMMITTED_PER_S = 3_500
TARGET_HALF_LOAD_P99_MS = 1_000
TARGET_CATCH_UP_PER_S = 20_000
TARGET_RESTART_TO_SERVING_S = 5.0  # stated for a node holding 1,000,000 events

PEAK_BATCH_EVENTS = 200
PACED_BATCH_EVENTS = 20
PACED_LOAD_SHARE = 0.5
STREAMS_PER_PHASE_MAX = 64
NONCES_PER_STREAM_MAX = 1_000_000_000  # stream k of phase p: nonces from (p*64+k) * this
NODE_START_TIMEOUT_S = 120.0  # four nodes importing on two busy cores
NODE_STOP_TIMEOUT_S = 60.0  # a profiled node writes its stats on the way out
STREAM_READY_TIMEOUT_S = 600.0
SUBMIT_TIMEOUT_S = 120.0
COMMIT_IDLE_TIMEOUT_S = 60.0
CATCH_UP_TIMEOUT_S = 300.0
FIRST_BLOCKS_TIMEOUT_S = 60.0
PACED_START_DELAY_S = 0.5
IDLE_WINDOW_S = 5.0
SATURATED_SHARE = 0.9  # CPU busy above this share of the cores: the machine was saturated
MEMPOOL_FULL_BACKOFF_S = 0.05
HEIGHT_POLL_INTERVAL_S = 0.02
RPC_TIMEOUT_S = 10.0
PROGRESS_INTERVAL_S = 5.0
OTHER_PROCESSES_LISTED = 3
PROFILE_ENTRIES_PRINTED = 25
PROFILE_ENTRIES_REPORTED = 15

LOG_TIME_FORMAT = "%Y-%m-%d %H:%M:%S,%f"  # logging's asctime, as node/server.py configures it
CAUGHT_UP_LINE = re.compile(r"^(\S+ \S+) INFO \S+: caught up block (\d+) from (\S+)", re.M)
SERVING_LINE = re.compile(r"serving gRPC on .* at height (\d+)")


# --- the machine and /proc -------------------------------------------------------------------


def git_revision() -> str:
    """The short commit, plus the node code changed in the working tree (if any)."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--", *NODE_SOURCE_DIRS],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    changed = [line[3:] for line in status.splitlines() if line.strip()]
    if not changed:
        return commit
    listed = ", ".join(changed[:6]) + (f" and {len(changed) - 6} more" if len(changed) > 6 else "")
    return f"{commit} + uncommitted changes to {listed}"


def describe_machine() -> dict[str, str | int]:
    return {
        "cpus": os.cpu_count() or 0,
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "kernel": f"{platform.system()} {platform.release()}",
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": git_revision(),
    }


@dataclass(frozen=True)
class ProcessSample:
    name: str
    group: int  # the process group id
    cpu_s: float  # utime + stime, all threads


def sample_processes() -> dict[int, ProcessSample]:
    """Every process on the machine: {pid: (command name, process group, CPU so far)}."""
    samples = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            text = (entry / "stat").read_text()
            open_paren, close_paren = text.index("("), text.rindex(")")
            fields = text[close_paren + 2 :].split()  # fields[0] is the state
            samples[int(entry.name)] = ProcessSample(
                name=text[open_paren + 1 : close_paren],
                group=int(fields[2]),
                cpu_s=(int(fields[11]) + int(fields[12])) / CLOCK_TICKS_PER_S,
            )
    return samples


def memory_kib(pid: int, field_name: str) -> int:
    """A `Vm...` line of /proc/PID/status in KiB (VmHWM: peak RSS); 0 if the process is gone."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    return 0


def main_thread_cpu_seconds(pid: int) -> float:
    """utime + stime of a process's main thread (a node's event loop); 0 if it is gone."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        text = Path(f"/proc/{pid}/task/{pid}/stat").read_text()
        fields = text[text.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS_PER_S
    return 0.0


@dataclass(frozen=True)
class Snapshot:
    at_s: float
    busy_s: float
    processes: dict[int, ProcessSample]
    main_threads: dict[int, float]  # the nodes' main threads: {pid: CPU so far}


def snapshot(nodes: Sequence[NodeProcess]) -> Snapshot:
    pids = [node.pid for node in nodes if node.pid is not None and node.running]
    return Snapshot(
        time.monotonic(),
        machine_busy_seconds(),
        sample_processes(),
        {pid: main_thread_cpu_seconds(pid) for pid in pids},
    )


@dataclass
class NodeUsage:
    name: str
    running: bool  # at the end of the window
    main_cpu_s: float  # the node process itself, all its threads
    loop_cpu_s: float  # of which its main thread: the event loop (gRPC handlers, consensus)
    workers_cpu_s: float  # the rest of its process group: signature-check workers
    peak_rss_mib: float  # VmHWM of the node process: its peak since it started
    workers_peak_rss_mib: float  # the largest VmHWM among its workers


@dataclass
class PhaseUsage:
    window_s: float
    nodes: list[NodeUsage]
    client_cpu_s: float  # load streams + this process (block watchers, polling)
    other_cores: float  # CPU other processes on the machine used, in cores
    busiest_others: list[tuple[str, float]]  # ("name[pid]", cores), busiest first

    @property
    def nodes_cpu_s(self) -> float:
        return sum(node.main_cpu_s + node.workers_cpu_s for node in self.nodes)


def usage_between(
    before: Snapshot,
    after: Snapshot,
    nodes: Sequence[NodeProcess],
    client_pids: set[int],
) -> PhaseUsage:
    """CPU each node (and its process group), the load client and everything else used
    between two snapshots. A process that started in between counts from zero; one that
    came and went in between is not seen."""

    def spent(pid: int) -> float:
        now = after.processes.get(pid)
        if now is None:
            return 0.0
        then = before.processes.get(pid)
        return max(0.0, now.cpu_s - (then.cpu_s if then is not None else 0.0))

    ours: set[int] = {pid for pid in client_pids if pid in after.processes}
    node_usages = []
    for node in nodes:
        pid = node.pid if node.running else None
        group = [p for p, s in after.processes.items() if pid is not None and s.group == pid]
        workers = [p for p in group if p != pid]
        ours.update(group)
        node_usages.append(
            NodeUsage(
                name=node.name,
                running=pid is not None,
                main_cpu_s=spent(pid) if pid is not None else 0.0,
                loop_cpu_s=(
                    max(0.0, after.main_threads.get(pid, 0.0) - before.main_threads.get(pid, 0.0))
                    if pid is not None
                    else 0.0
                ),
                workers_cpu_s=sum(spent(p) for p in workers),
                peak_rss_mib=memory_kib(pid, "VmHWM") / 1024 if pid is not None else 0.0,
                workers_peak_rss_mib=max(
                    (memory_kib(p, "VmHWM") / 1024 for p in workers), default=0.0
                ),
            )
        )
    window_s = after.at_s - before.at_s
    ours_cpu_s = sum(spent(pid) for pid in ours)
    others = []
    for pid, sample in after.processes.items():
        if pid in ours:
            continue
        cores = spent(pid) / window_s if window_s > 0 else 0.0
        if cores >= 0.01:
            others.append((f"{sample.name}[{pid}]", cores))
    others.sort(key=lambda item: -item[1])
    return PhaseUsage(
        window_s=window_s,
        nodes=node_usages,
        client_cpu_s=sum(spent(pid) for pid in client_pids),
        other_cores=max(0.0, after.busy_s - before.busy_s - ours_cpu_s) / window_s
        if window_s > 0
        else 0.0,
        busiest_others=others[:OTHER_PROCESSES_LISTED],
    )


# --- the load streams (one spawned process each) ---------------------------------------------


@dataclass(frozen=True)
class StreamSpec:
    phase: int  # 0 peak, 1 half load, 2 catch-up load: keeps nonces and asset ids apart
    index: int
    node_index: int  # the node this stream submits to
    address: str
    identity_paths: dict[str, str]
    first_event: int  # this stream's events are numbered first_event .. + event_count - 1
    event_count: int
    batch_size: int
    interval_s: float  # between this stream's batches; 0: each as soon as the last is answered
    offset_s: float  # this stream's first batch is due this long after the common start
    run_tag: str


@dataclass
class StreamResult:
    index: int
    node_index: int
    sign_s: float = 0.0
    first_send_s: float = math.inf
    last_send_s: float = 0.0
    last_accept_s: float = 0.0
    send_lag_max_s: float = 0.0  # paced: how late the latest batch went out, against its due
    batches: list[tuple[float, list[bytes]]] = field(default_factory=list)  # (first send, ids)
    accepted: int = 0
    mempool_full_retries: int = 0
    rejections: Counter[str] = field(default_factory=Counter)


def presign(spec: StreamSpec) -> list[tuple[list[bytes], api_pb2.SubmitEventsRequest]]:
    """This stream's events, signed and cut into (event ids, request) batches."""
    nonce_range = spec.phase * STREAMS_PER_PHASE_MAX + spec.index
    signers = [
        EventSigner(
            Identity.load(spec.identity_paths[author]),
            first_nonce=1 + nonce_range * NONCES_PER_STREAM_MAX,
        )
        for author in AUTHORS
    ]
    batches = []
    for start in range(0, spec.event_count, spec.batch_size):
        ids, events = [], []
        for number in range(start, min(start + spec.batch_size, spec.event_count)):
            event_number = spec.first_event + number
            asset_id = f"bench4-{spec.run_tag}/p{spec.phase}/asset-{event_number}"
            signed = signers[event_number % len(signers)].event(
                "asset_registered",
                asset_id=asset_id,
                content_digest=hashlib.sha256(asset_id.encode()).digest(),
                classification=ledger_pb2.CLASSIFICATION_GENERAL,
                name=f"benchmark asset {event_number}",
                schema_uri="https://example.org/schemas/benchmark/v1",
            )
            ids.append(hashlib.sha256(signed.body).digest())
            events.append(signed)
        batches.append((ids, api_pb2.SubmitEventsRequest(events=events)))
    return batches


def run_stream(spec: StreamSpec, connection: multiprocessing.connection.Connection) -> None:
    """A load process: pre-sign, say "ready", wait for ("go", start), submit, send results."""
    try:
        result = StreamResult(index=spec.index, node_index=spec.node_index)
        started = time.monotonic()
        batches = presign(spec)
        result.sign_s = time.monotonic() - started
        channel = grpc.insecure_channel(spec.address, options=CHANNEL_OPTIONS)
        grpc.channel_ready_future(channel).result(timeout=NODE_START_TIMEOUT_S)
        stub = api_pb2_grpc.LedgerServiceStub(channel)
        connection.send(("ready", result.sign_s))
        _, start_s = connection.recv()  # ("go", common start on the monotonic clock)
        for batch_index, (ids, request) in enumerate(batches):
            if spec.interval_s:
                due = start_s + spec.offset_s + batch_index * spec.interval_s
                now = time.monotonic()
                if now < due:
                    time.sleep(due - now)
                else:
                    result.send_lag_max_s = max(result.send_lag_max_s, now - due)
            submit_batch(stub, ids, request, result)
        channel.close()
        connection.send(("done", result))
    except BaseException as error:  # report anything to the parent, which stops the run
        connection.send(("error", f"stream {spec.index}: {type(error).__name__}: {error}"))


def submit_batch(
    stub: api_pb2_grpc.LedgerServiceStub,
    ids: list[bytes],
    request: api_pb2.SubmitEventsRequest,
    result: StreamResult,
) -> None:
    """Submit one batch until every event is accepted or rejected for good."""
    pending = list(zip(ids, request.events, strict=True))
    accepted: list[bytes] = []
    first_send = time.monotonic()
    result.first_send_s = min(result.first_send_s, first_send)
    while pending:
        result.last_send_s = time.monotonic()
        response = stub.SubmitEvents(request, timeout=SUBMIT_TIMEOUT_S)
        answered = time.monotonic()
        retry = []
        for (identifier, signed), outcome in zip(pending, response.results, strict=True):
            if outcome.accepted:
                accepted.append(identifier)
                result.last_accept_s = answered
            elif outcome.error_code == "mempool_full":
                retry.append((identifier, signed))
            else:
                result.rejections[outcome.error_code] += 1
        if retry:
            result.mempool_full_retries += len(retry)
            time.sleep(MEMPOOL_FULL_BACKOFF_S)
            request = api_pb2.SubmitEventsRequest(events=[signed for _, signed in retry])
        pending = retry
    result.accepted += len(accepted)
    result.batches.append((first_send, accepted))


@dataclass
class Stream:
    spec: StreamSpec
    process: multiprocessing.process.BaseProcess
    connection: multiprocessing.connection.Connection


@contextlib.contextmanager
def spawned_streams(specs: Sequence[StreamSpec]) -> Iterator[list[Stream]]:
    """One spawned process per spec (gRPC and fork do not mix); ended on the way out."""
    context = multiprocessing.get_context("spawn")
    streams: list[Stream] = []
    try:
        for spec in specs:
            parent_end, child_end = context.Pipe()
            process = context.Process(target=run_stream, args=(spec, child_end), daemon=True)
            process.start()
            child_end.close()
            streams.append(Stream(spec, process, parent_end))
        yield streams
    finally:
        for stream in streams:
            stream.connection.close()
            if stream.process.is_alive():
                stream.process.terminate()
            stream.process.join(timeout=5)


def wait_ready(streams: Sequence[Stream]) -> float:
    """Wait until every stream has pre-signed its events; the longest signing time."""
    sign_s = 0.0
    for stream in streams:
        if not stream.connection.poll(STREAM_READY_TIMEOUT_S):
            raise BenchmarkError(f"stream process {stream.process.pid} never became ready")
        try:
            kind, payload = stream.connection.recv()
        except EOFError:
            raise BenchmarkError(f"stream process {stream.process.pid} died") from None
        if kind != "ready":
            raise BenchmarkError(payload)
        sign_s = max(sign_s, payload)
    return sign_s


# --- watching commits ------------------------------------------------------------------------


class BlockWatcher(threading.Thread):
    """Follows SubscribeBlocks on one node from a height and notes when each block arrived;
    the primary watcher also notes which block holds each event."""

    def __init__(self, node: NodeProcess, from_height: int, primary: bool) -> None:
        super().__init__(name=f"watch-{node.name}", daemon=True)
        self.node = node
        self.primary = primary
        self._channel = grpc.insecure_channel(node.address, options=CHANNEL_OPTIONS)
        stub = api_pb2_grpc.LedgerServiceStub(self._channel)
        self._call = stub.SubscribeBlocks(api_pb2.SubscribeBlocksRequest(from_height=from_height))
        self.arrival_by_height: dict[int, float] = {}
        self.height_by_event: dict[bytes, int] = {}
        self.proposers: Counter[str] = Counter()  # of blocks holding events
        self.block_events_max = 0
        self.blocks_with_events = 0
        self.events_seen = 0
        self.highest = from_height - 1
        self.last_arrival_s = time.monotonic()
        self.error: str | None = None
        self._stopping = False

    def run(self) -> None:
        try:
            for block in self._call:
                arrived = time.monotonic()
                header = ledger_pb2.BlockHeader.FromString(block.header)
                self.arrival_by_height[header.height] = arrived
                if block.events:
                    self.blocks_with_events += 1
                    self.block_events_max = max(self.block_events_max, len(block.events))
                    self.proposers[header.proposer_id] += 1
                    if self.primary:
                        for signed in block.events:
                            self.height_by_event[hashlib.sha256(signed.body).digest()] = (
                                header.height
                            )
                self.events_seen += len(block.events)
                self.highest = header.height
                self.last_arrival_s = arrived
        except grpc.RpcError as error:
            if not self._stopping:
                self.error = (
                    f"SubscribeBlocks on {self.node.name} ended: "
                    f"{error.code().name}: {error.details()}"
                )

    def stop(self) -> None:
        self._stopping = True
        self._call.cancel()
        self.join(timeout=5)
        self._channel.close()


class HeadReader:
    """GetCheckpoint on one node over a channel kept open, for polling."""

    def __init__(self, address: str) -> None:
        self._channel = grpc.insecure_channel(address, options=CHANNEL_OPTIONS)
        self._stub = api_pb2_grpc.LedgerServiceStub(self._channel)

    def header(self, height: int = 0) -> ledger_pb2.BlockHeader:
        """The header at `height` (0: the head); an empty header for an empty chain."""
        try:
            checkpoint = self._stub.GetCheckpoint(
                api_pb2.GetCheckpointRequest(height=height), timeout=RPC_TIMEOUT_S
            )
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.FAILED_PRECONDITION:  # empty_chain
                return ledger_pb2.BlockHeader()
            raise
        return ledger_pb2.BlockHeader.FromString(checkpoint.header)

    def close(self) -> None:
        self._channel.close()


@contextlib.contextmanager
def head_reader(address: str) -> Iterator[HeadReader]:
    reader = HeadReader(address)
    try:
        yield reader
    finally:
        reader.close()


def head_height(node: NodeProcess) -> int:
    with head_reader(node.address) as reader:
        return reader.header().height


# --- the consortium --------------------------------------------------------------------------


@dataclass
class Cluster:
    directory: Path
    nodes: list[NodeProcess]
    identity_paths: dict[str, str]
    stopped: set[str] = field(default_factory=set)  # names of the nodes stopped on purpose

    def check_alive(self) -> None:
        for node in self.nodes:
            if node.name not in self.stopped and node.process is not None and not node.running:
                raise BenchmarkError(f"{node.name} exited during the run\n{node.log_tail()}")

    def stop_node(self, index: int) -> int | None:
        """Stop one node by its PID (SIGTERM, wait, SIGKILL); its exit code."""
        node = self.nodes[index]
        self.stopped.add(node.name)
        return node.stop()

    def start_node(self, index: int) -> None:
        """Start a stopped node again on its data folder, without waiting for it to serve."""
        node = self.nodes[index]
        node.start(wait=False)
        self.stopped.discard(node.name)

    def wait_for_height(self, minimum: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            self.check_alive()
            heights = {node.name: head_height(node) for node in self.nodes if node.running}
            if all(height >= minimum for height in heights.values()):
                return
            if time.monotonic() > deadline:
                raise BenchmarkError(f"heights {heights} after {timeout_s} s, wanted {minimum}")
            time.sleep(0.2)


@contextlib.contextmanager
def running_cluster(workdir: Path, profile_out: Path | None) -> Iterator[Cluster]:
    """Four nodes of a fresh consortium, serving; every one stopped by its PID on the way out."""
    layout = init_consortium(workdir, nodes=NODES, chain_id="provledger-bench")
    nodes = [
        NodeProcess.for_node(
            layout,
            index,
            workdir / "logs",
            start_timeout_s=NODE_START_TIMEOUT_S,
            stop_timeout_s=NODE_STOP_TIMEOUT_S,
        )
        for index in range(NODES)
    ]
    if profile_out is not None:
        profiled = nodes[PROFILED_NODE]
        profiled.command = [sys.executable, str(PROFILED_NODE_SCRIPT)]
        profiled.command += ["--config", str(profiled.config), "--out", str(profile_out)]
        profiled.command += ["--clock", "cpu"]
    cluster = Cluster(
        workdir,
        nodes,
        {author: str(layout.identities[author]) for author in AUTHORS},
    )
    try:
        for node in nodes:
            node.start(wait=False)
        yield cluster
    finally:
        stop_all(nodes)


def stop_all(nodes: Sequence[NodeProcess]) -> None:
    """SIGTERM to every running node first (their graceful stops overlap), then wait for each
    and SIGKILL it (and its process group) after its timeout; each is tried whatever the
    others do."""
    for node in nodes:
        with contextlib.suppress(OSError):
            node.terminate()
    for node in nodes:
        try:
            node.stop()
        except Exception as error:  # keep stopping the others
            print(f"stopping {node.name} (pid {node.pid}) failed: {error}", file=sys.stderr)


# --- a load phase ----------------------------------------------------------------------------


@dataclass
class LoadFigures:
    phase: str
    streams: int
    nodes_loaded: int
    events: int
    accepted: int
    committed: int  # seen in a block on the primary node (node-0)
    elapsed_s: float  # first submit -> the primary node's block holding the last event
    committed_per_s: float
    admitted_per_s: float  # first submit -> last SubmitEvents answer
    offered_per_s: float  # events / (first send -> last send)
    blocks: int  # holding events
    block_events_max: int
    proposers: dict[str, int]
    latency_ms: dict[str, float]  # per batch, on the node it was sent to
    batches: int
    mempool_full_retries: int
    rejections: dict[str, int]
    send_lag_max_ms: float
    sign_s: float
    usage: PhaseUsage


def split_events(total: int, parts: int, multiple: int) -> list[int]:
    """`total` cut into `parts` shares, each a multiple of `multiple` but the last ones."""
    batches = -(-total // multiple)
    shares = [batches // parts + (1 if index < batches % parts else 0) for index in range(parts)]
    counts = [share * multiple for share in shares]
    excess = sum(counts) - total
    for index in reversed(range(parts)):
        cut = min(excess, counts[index])
        counts[index] -= cut
        excess -= cut
    return counts


def stream_specs(
    cluster: Cluster,
    *,
    phase: int,
    events: int,
    streams: int,
    node_indexes: Sequence[int],
    batch_size: int,
    rate_per_s: float,
    run_tag: str,
) -> list[StreamSpec]:
    """Specs for `streams` streams over `node_indexes` (stream k on the k-th, round-robin).
    With a rate, each stream's batches are paced at its share and the streams are staggered
    evenly over one interval."""
    counts = split_events(events, streams, batch_size)
    interval_s = batch_size * streams / rate_per_s if rate_per_s else 0.0
    specs = []
    for index, count in enumerate(counts):
        node_index = node_indexes[index % len(node_indexes)]
        specs.append(
            StreamSpec(
                phase=phase,
                index=index,
                node_index=node_index,
                address=cluster.nodes[node_index].address,
                identity_paths=cluster.identity_paths,
                first_event=sum(counts[:index]),
                event_count=count,
                batch_size=batch_size,
                interval_s=interval_s,
                offset_s=index * interval_s / streams,
                run_tag=run_tag,
            )
        )
    return specs


def run_load(
    phase_name: str,
    cluster: Cluster,
    streams: list[Stream],
    node_indexes: Sequence[int],
    start_delay_s: float,
    sign_s: float,
) -> LoadFigures:
    """Open the block watchers, signal the ready streams, collect their results, wait until
    every accepted event is in a block on every loaded node; the phase's figures."""
    primary_index = node_indexes[0]
    from_height = min(head_height(cluster.nodes[index]) for index in node_indexes) + 1
    watchers = {
        index: BlockWatcher(cluster.nodes[index], from_height, primary=index == primary_index)
        for index in node_indexes
    }
    for watcher in watchers.values():
        watcher.start()
    client_pids = {os.getpid(), *(stream.process.pid for stream in streams)}
    try:
        before = snapshot(cluster.nodes)
        start_s = time.monotonic() + start_delay_s
        for stream in streams:
            stream.connection.send(("go", start_s))
        results = collect_results(phase_name, cluster, streams, watchers[primary_index], start_s)
        accepted = sum(result.accepted for result in results)
        wait_for_commits(phase_name, cluster, watchers, primary_index, accepted, start_s)
        after = snapshot(cluster.nodes)
    finally:
        for watcher in watchers.values():
            watcher.stop()
    usage = usage_between(before, after, cluster.nodes, client_pids)
    return load_figures(phase_name, streams, results, watchers, primary_index, sign_s, usage)


def collect_results(
    phase_name: str,
    cluster: Cluster,
    streams: list[Stream],
    primary: BlockWatcher,
    start_s: float,
) -> list[StreamResult]:
    waiting = {stream.connection: stream for stream in streams}
    results: list[StreamResult] = []
    last_progress = time.monotonic()
    while waiting:
        for connection in multiprocessing.connection.wait(list(waiting), timeout=1.0):
            try:
                kind, payload = connection.recv()  # type: ignore[union-attr]
            except EOFError:
                pid = waiting[connection].process.pid  # type: ignore[index]
                raise BenchmarkError(f"stream process {pid} died") from None
            if kind != "done":
                raise BenchmarkError(payload)
            results.append(payload)
            del waiting[connection]  # type: ignore[arg-type]
        cluster.check_alive()
        if primary.error is not None:
            raise BenchmarkError(primary.error)
        last_progress = print_progress(phase_name, primary, start_s, last_progress)
    return sorted(results, key=lambda result: result.index)


def wait_for_commits(
    phase_name: str,
    cluster: Cluster,
    watchers: dict[int, BlockWatcher],
    primary_index: int,
    accepted: int,
    start_s: float,
) -> None:
    """Until the primary watcher has seen every accepted event and every other watcher has
    seen the blocks that hold them (or no block came for COMMIT_IDLE_TIMEOUT_S)."""
    primary = watchers[primary_index]
    last_progress = time.monotonic()
    while True:
        cluster.check_alive()
        for watcher in watchers.values():
            if watcher.error is not None:
                raise BenchmarkError(watcher.error)
        top = max(primary.height_by_event.values(), default=0)
        if primary.events_seen >= accepted and all(w.highest >= top for w in watchers.values()):
            return
        idle_s = time.monotonic() - max(w.last_arrival_s for w in watchers.values())
        if idle_s > COMMIT_IDLE_TIMEOUT_S:
            heights = {w.node.name: w.highest for w in watchers.values()}
            print(
                f"{phase_name}: no block for {COMMIT_IDLE_TIMEOUT_S:.0f} s with "
                f"{accepted - primary.events_seen:,} accepted events not seen on "
                f"{primary.node.name}; heights seen {heights}; giving up (see the node logs)",
                file=sys.stderr,
            )
            return
        time.sleep(0.01)
        last_progress = print_progress(phase_name, primary, start_s, last_progress)


def print_progress(
    phase_name: str, primary: BlockWatcher, start_s: float, last_progress: float
) -> float:
    now = time.monotonic()
    if now - last_progress < PROGRESS_INTERVAL_S:
        return last_progress
    print(
        f"  {phase_name}: {now - start_s:6.1f} s: {primary.events_seen:,} events committed "
        f"on {primary.node.name} in {primary.blocks_with_events} blocks",
        flush=True,
    )
    return now


def load_figures(
    phase_name: str,
    streams: list[Stream],
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
    committed = 0
    last_commit = first_send
    latencies: list[float] = []
    for result in results:
        watcher = watchers[result.node_index]
        for sent, ids in result.batches:
            heights = [primary.height_by_event.get(identifier) for identifier in ids]
            known = [height for height in heights if height is not None]
            committed += len(known)
            if known:
                last_commit = max(last_commit, primary.arrival_by_height[max(known)])
            arrivals = [watcher.arrival_by_height.get(height) for height in known]
            if ids and len(known) == len(ids) and None not in arrivals:
                latencies.append(max(arrivals) - sent)  # type: ignore[type-var]
    elapsed_s = last_commit - first_send
    rejections: Counter[str] = Counter()
    for result in results:
        rejections.update(result.rejections)
    events = sum(stream.spec.event_count for stream in streams)
    return LoadFigures(
        phase=phase_name,
        streams=len(streams),
        nodes_loaded=len(watchers),
        events=events,
        accepted=sum(result.accepted for result in results),
        committed=committed,
        elapsed_s=elapsed_s,
        committed_per_s=committed / elapsed_s if elapsed_s > 0 else 0.0,
        admitted_per_s=(
            sum(result.accepted for result in results) / (last_accept - first_send)
            if last_accept > first_send
            else 0.0
        ),
        offered_per_s=events / (last_send - first_send) if last_send > first_send else 0.0,
        blocks=primary.blocks_with_events,
        block_events_max=primary.block_events_max,
        proposers=dict(sorted(primary.proposers.items())),
        latency_ms=percentiles_ms(latencies),
        batches=sum(len(result.batches) for result in results),
        mempool_full_retries=sum(result.mempool_full_retries for result in results),
        rejections=dict(rejections),
        send_lag_max_ms=max(result.send_lag_max_s for result in results) * 1000,
        sign_s=sign_s,
        usage=usage,
    )


def load_phase(
    phase_name: str,
    cluster: Cluster,
    *,
    phase: int,
    events: int,
    streams: int,
    node_indexes: Sequence[int],
    batch_size: int,
    rate_per_s: float,
    run_tag: str,
) -> LoadFigures:
    """Spawn the streams, let them pre-sign, run the load; the figures."""
    specs = stream_specs(
        cluster,
        phase=phase,
        events=events,
        streams=streams,
        node_indexes=node_indexes,
        batch_size=batch_size,
        rate_per_s=rate_per_s,
        run_tag=run_tag,
    )
    pace = f"paced at {rate_per_s:,.0f} events/s" if rate_per_s else "as fast as accepted"
    print(
        f"\n{phase_name}: pre-signing {events:,} events in {len(specs)} streams over "
        f"{', '.join(cluster.nodes[i].name for i in node_indexes)} "
        f"(batches of {batch_size}, {pace})",
        flush=True,
    )
    with spawned_streams(specs) as spawned:
        sign_s = wait_ready(spawned)
        print(f"{phase_name}: pre-signed in {sign_s:.1f} s; load starts", flush=True)
        delay_s = PACED_START_DELAY_S if rate_per_s else 0.0
        return run_load(phase_name, cluster, spawned, node_indexes, delay_s, sign_s)


# --- catching up -----------------------------------------------------------------------------


@dataclass
class CatchUpFigures:
    three_node_load: LoadFigures  # the events committed while the lagging node was down
    node: str
    stop_s: float  # SIGTERM -> exited
    start_height: int  # the lagging node's head when it started again
    start_log_size: int  # the events it held then
    end_height: int
    events: int  # committed by the lagging node while catching up
    blocks: int
    blocks_with_events: int
    serve_s: float  # restart -> gRPC health SERVING
    caught_up_s: float  # restart -> height equal to node-0's
    first_synced_block_s: float | None  # restart -> the first "caught up block" log line
    last_synced_block_s: float | None
    synced_gap_max_s: float  # the longest wait between two synced blocks' commits
    synced_blocks_logged: int
    synced_from: dict[str, int]
    events_per_s: float  # from the restart
    blocks_per_s: float
    events_per_s_serving: float  # from SERVING
    usage: PhaseUsage


def catch_up_phase(cluster: Cluster, options: Options, run_tag: str) -> CatchUpFigures:
    lagging = cluster.nodes[LAGGING_NODE]
    others = [index for index in range(NODES) if index != LAGGING_NODE]
    print(f"\ncatch-up: stopping {lagging.name} (pid {lagging.pid}) with SIGTERM", flush=True)
    stopping = time.monotonic()
    code = cluster.stop_node(LAGGING_NODE)
    stop_s = time.monotonic() - stopping
    print(f"catch-up: {lagging.name} exited with code {code} after {stop_s:.2f} s", flush=True)
    load = load_phase(
        "catch-up load (three nodes)",
        cluster,
        phase=2,
        events=options.catch_up_events,
        streams=options.streams,
        node_indexes=others,
        batch_size=PEAK_BATCH_EVENTS,
        rate_per_s=0.0,
        run_tag=run_tag,
    )
    print_load(load)
    reference = cluster.nodes[others[0]]
    with head_reader(reference.address) as reference_reader:
        target = reference_reader.header().height
        print(
            f"catch-up: the others are at height {target}; restarting {lagging.name}",
            flush=True,
        )
        before = snapshot(cluster.nodes)
        restart_wall = time.time()
        restarted = time.monotonic()
        cluster.start_node(LAGGING_NODE)
        lagging.wait_serving()
        serving = time.monotonic()
        start_height = starting_height(lagging)
        print(
            f"catch-up: {lagging.name} (pid {lagging.pid}) serving after "
            f"{serving - restarted:.2f} s at height {start_height}",
            flush=True,
        )
        with head_reader(lagging.address) as lagging_reader:
            deadline = serving + CATCH_UP_TIMEOUT_S
            while True:
                reference_height = reference_reader.header().height
                lagging_header = lagging_reader.header()
                if lagging_header.height >= reference_height:
                    caught_up = time.monotonic()
                    break
                if time.monotonic() > deadline:
                    raise BenchmarkError(
                        f"{lagging.name} at height {lagging_header.height} after "
                        f"{CATCH_UP_TIMEOUT_S:.0f} s; the others at {reference_height}\n"
                        f"{lagging.log_tail()}"
                    )
                cluster.check_alive()
                time.sleep(HEIGHT_POLL_INTERVAL_S)
        after = snapshot(cluster.nodes)
        start_log_size = reference_reader.header(start_height).log_size if start_height else 0
        blocks_with_events = blocks_holding_events(
            reference_reader, start_height, lagging_header.height
        )
    usage = usage_between(before, after, cluster.nodes, {os.getpid()})
    synced = synced_blocks(lagging, restart_wall)
    events = lagging_header.log_size - start_log_size
    blocks_count = lagging_header.height - start_height
    window_s = caught_up - restarted
    serving_window_s = caught_up - serving
    return CatchUpFigures(
        three_node_load=load,
        node=lagging.name,
        stop_s=stop_s,
        start_height=start_height,
        start_log_size=start_log_size,
        end_height=lagging_header.height,
        events=events,
        blocks=blocks_count,
        blocks_with_events=blocks_with_events,
        serve_s=serving - restarted,
        caught_up_s=window_s,
        first_synced_block_s=synced[0][0] if synced else None,
        last_synced_block_s=synced[-1][0] if synced else None,
        synced_gap_max_s=max(
            (later[0] - earlier[0] for earlier, later in itertools.pairwise(synced)),
            default=0.0,
        ),
        synced_blocks_logged=len(synced),
        synced_from=dict(sorted(Counter(peer for _, _, peer in synced).items())),
        events_per_s=events / window_s if window_s > 0 else 0.0,
        blocks_per_s=blocks_count / window_s if window_s > 0 else 0.0,
        events_per_s_serving=events / serving_window_s if serving_window_s > 0 else 0.0,
        usage=usage,
    )


def starting_height(node: NodeProcess) -> int:
    """The head a node reported when it last started ("serving gRPC ... at height N")."""
    latest_start = node.log_text().rsplit("=== start ", 1)[-1]
    found = SERVING_LINE.search(latest_start)
    if found is None:
        raise BenchmarkError(f"{node.name}'s log does not say at which height it started")
    return int(found.group(1))


def blocks_holding_events(reader: HeadReader, after_height: int, up_to_height: int) -> int:
    """How many blocks in (after_height, up_to_height] hold events (the rest are heartbeats)."""
    return sum(
        1
        for height in range(after_height + 1, up_to_height + 1)
        if reader.header(height).event_count
    )


def synced_blocks(node: NodeProcess, since_wall: float) -> list[tuple[float, int, str]]:
    """(seconds after `since_wall`, height, peer) of each "caught up block N from PEER" line
    the node logged in its latest start. Log times are local wall-clock times to the ms."""
    latest_start = node.log_text().rsplit("=== start ", 1)[-1]
    found = []
    for stamp, height, peer in CAUGHT_UP_LINE.findall(latest_start):
        with contextlib.suppress(ValueError):
            logged = datetime.datetime.strptime(stamp, LOG_TIME_FORMAT).timestamp()
            found.append((logged - since_wall, int(height), peer))
    return found


# --- a run -----------------------------------------------------------------------------------


@dataclass
class Options:
    events: int
    streams: int
    catch_up_events: int
    paced_seconds: float
    half_rate: float  # events/s of the half-load phase; 0: half the measured peak
    profile: str | None  # the phase whose node-1 profile is taken: "peak", "half" or None
    profile_out: Path | None
    wait_quiet_s: float
    keep: bool
    report: bool
    json_out: Path | None


# What the node logs say that the figures should be read with: (label, pattern). Counted in
# each node's first start only (the lagging node's own catch-up after its restart is measured
# above, not counted here).
LOG_PATTERNS = (
    ("proposals a validator judged invalid", re.compile(r"WARNING \S+: invalid proposal")),
    ("blocks a running validator fetched by block sync", re.compile(r"caught up block \d+")),
    ("events a proposer left out", re.compile(r"INFO \S+: left out event")),
    ("ERROR lines", re.compile(r"^\S+ \S+ ERROR ", re.M)),
)
LOG_EXAMPLE_CHARS_MAX = 240


@dataclass
class LogFinding:
    label: str
    counts: dict[str, int]  # by node
    example: str  # the first matching line, with the one after it


def log_findings(nodes: Sequence[NodeProcess]) -> list[LogFinding]:
    first_starts = {
        node.name: node.log_text().split("=== start 2:", 1)[0].splitlines() for node in nodes
    }
    findings = []
    for label, pattern in LOG_PATTERNS:
        counts: dict[str, int] = {}
        example = ""
        for name, lines in first_starts.items():
            for number, line in enumerate(lines):
                if not pattern.search(line):
                    continue
                counts[name] = counts.get(name, 0) + 1
                if not example:
                    following = lines[number + 1] if number + 1 < len(lines) else ""
                    example = f"{name}: {line[:LOG_EXAMPLE_CHARS_MAX]}" + (
                        f" / next line: {following[:LOG_EXAMPLE_CHARS_MAX]}" if following else ""
                    )
        if counts:
            findings.append(LogFinding(label, dict(sorted(counts.items())), example))
    return findings


@dataclass
class Measurement:
    start_s: float  # the four nodes' start to all serving
    idle: PhaseUsage | None = None  # the consortium with no load (heartbeat blocks only)
    peak: LoadFigures | None = None  # None when only the half-load phase is profiled
    paced: LoadFigures | None = None
    catch_up: CatchUpFigures | None = None
    log_findings: list[LogFinding] = field(default_factory=list)


def run_benchmark(options: Options, workdir: Path) -> Measurement:
    run_tag = format(time.time_ns() // 1_000_000, "x")
    profile_out = options.profile_out if options.profile else None
    with running_cluster(workdir, profile_out) as cluster:
        started = time.monotonic()
        print(f"starting {NODES} nodes (logs: {workdir / 'logs'})", flush=True)
        for node in cluster.nodes:
            node.wait_serving()
        start_s = time.monotonic() - started
        cluster.wait_for_height(1, FIRST_BLOCKS_TIMEOUT_S)
        pids = ", ".join(f"{node.name} {node.pid}" for node in cluster.nodes)
        print(f"{NODES} nodes serving after {start_s:.1f} s and committing (pids: {pids})")
        measurement = Measurement(start_s=start_s, idle=idle_usage(cluster))
        if options.profile != "half":
            measurement.peak = load_phase(
                "peak",
                cluster,
                phase=0,
                events=options.events,
                streams=options.streams,
                node_indexes=range(NODES),
                batch_size=PEAK_BATCH_EVENTS,
                rate_per_s=0.0,
                run_tag=run_tag,
            )
            print_load(measurement.peak)
            if options.profile == "peak":
                stop_profiled_node(cluster)
                return measurement
            if measurement.peak.committed_per_s <= 0:
                raise BenchmarkError("nothing was committed in the peak phase")
        rate = options.half_rate
        if not rate and measurement.peak is not None:
            rate = PACED_LOAD_SHARE * measurement.peak.committed_per_s
        measurement.paced = load_phase(
            "half load",
            cluster,
            phase=1,
            events=max(PACED_BATCH_EVENTS, round(rate * options.paced_seconds)),
            streams=NODES,
            node_indexes=range(NODES),
            batch_size=PACED_BATCH_EVENTS,
            rate_per_s=rate,
            run_tag=run_tag,
        )
        print_load(measurement.paced)
        if options.profile == "half":
            stop_profiled_node(cluster)
            return measurement
        if options.catch_up_events > 0:
            measurement.catch_up = catch_up_phase(cluster, options, run_tag)
            print_catch_up(measurement.catch_up)
        measurement.log_findings = log_findings(cluster.nodes)
        print_log_findings(measurement.log_findings)
        return measurement


def print_log_findings(findings: Sequence[LogFinding]) -> None:
    if not findings:
        print("\nnode logs: no invalid proposals, block syncs, left-out events or errors")
        return
    print("\nnode logs (each node's first start):")
    for finding in findings:
        counts = ", ".join(f"{name} {count}" for name, count in finding.counts.items())
        print(f"  {finding.label}: {counts}\n    e.g. {finding.example}")


def idle_usage(cluster: Cluster) -> PhaseUsage:
    """What the consortium uses with no load: heartbeat blocks, rebroadcasts, status polls."""
    before = snapshot(cluster.nodes)
    time.sleep(IDLE_WINDOW_S)
    cluster.check_alive()
    usage = usage_between(before, snapshot(cluster.nodes), cluster.nodes, {os.getpid()})
    print(
        f"idle for {usage.window_s:.1f} s: the nodes used {usage.nodes_cpu_s / usage.window_s:.2f}"
        f" cores; other processes {usage.other_cores:.2f} cores",
        flush=True,
    )
    return usage


def stop_profiled_node(cluster: Cluster) -> None:
    profiled = cluster.nodes[PROFILED_NODE]
    print(f"stopping {profiled.name} (pid {profiled.pid}) so that it writes its profile")
    cluster.stop_node(PROFILED_NODE)


# --- output ----------------------------------------------------------------------------------


def node_cells(usage: PhaseUsage) -> list[str]:
    cells = []
    for node in usage.nodes:
        if not node.running and node.main_cpu_s == 0:
            cells.append("down")
            continue
        total_s = node.main_cpu_s + node.workers_cpu_s
        cores = total_s / usage.window_s if usage.window_s else 0
        cells.append(
            f"{total_s:.1f} s = {node.loop_cpu_s:.1f} + {node.main_cpu_s - node.loop_cpu_s:.1f}"
            f" + {node.workers_cpu_s:.1f} ({cores:.2f} cores)"
        )
    return cells


def rss_cells(usage: PhaseUsage) -> list[str]:
    return [
        f"{node.peak_rss_mib:,.0f} + {node.workers_peak_rss_mib:,.0f} MiB" if node.running else "-"
        for node in usage.nodes
    ]


def us_per_event(usage: PhaseUsage, events: int) -> float:
    return usage.nodes_cpu_s / events * 1e6 if events else math.nan


def fmt_us(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:,.0f} µs"


def print_usage(usage: PhaseUsage, events: int) -> None:
    for node, cpu, rss in zip(usage.nodes, node_cells(usage), rss_cells(usage), strict=True):
        print(
            f"    {node.name}: CPU event loop + other threads + workers: {cpu}; "
            f"peak RSS node + worker {rss}"
        )
    others = ", ".join(f"{name} {cores:.2f}" for name, cores in usage.busiest_others)
    print(
        f"    all nodes: {usage.nodes_cpu_s:.1f} s CPU = {usage.nodes_cpu_s / usage.window_s:.2f}"
        f" cores over {usage.window_s:.1f} s, {fmt_us(us_per_event(usage, events))} per "
        f"committed event; load client {usage.client_cpu_s:.1f} s; other processes "
        f"{usage.other_cores:.2f} cores"
        + (" -- DISTURBED" if usage.other_cores > QUIET_CORES_MAX else "")
        + (f" (busiest: {others})" if others else "")
    )


def print_load(figures: LoadFigures) -> None:
    f = figures
    lat = f.latency_ms
    rejected = ", ".join(f"{code} {count}" for code, count in f.rejections.items()) or "none"
    print(
        f"  {f.phase}: committed {f.committed_per_s:,.0f} events/s ({f.committed:,} of "
        f"{f.events:,} events, first submit -> last commit on node-0 {f.elapsed_s:.2f} s); "
        f"admitted {f.admitted_per_s:,.0f}/s; offered {f.offered_per_s:,.0f}/s\n"
        f"    latency per batch ({f.batches:,} batches) p50 {lat['p50']:,.0f} ms, "
        f"p90 {lat['p90']:,.0f} ms, p99 {lat['p99']:,.0f} ms, max {lat['max']:,.0f} ms; "
        f"send lag max {f.send_lag_max_ms:,.0f} ms\n"
        f"    {f.blocks} blocks with events (up to {f.block_events_max:,}), proposers "
        f"{f.proposers}; mempool_full retries {f.mempool_full_retries:,}; "
        f"other rejections: {rejected}",
        flush=True,
    )
    print_usage(f.usage, f.committed)


def print_catch_up(figures: CatchUpFigures) -> None:
    c = figures
    first = f"{c.first_synced_block_s:.2f}" if c.first_synced_block_s is not None else "-"
    last = f"{c.last_synced_block_s:.2f}" if c.last_synced_block_s is not None else "-"
    print(
        f"  catch-up: {c.node} committed {c.events:,} events in {c.blocks} blocks "
        f"(heights {c.start_height + 1}-{c.end_height}, {c.blocks_with_events} holding events) "
        f"in {c.caught_up_s:.2f} s from its restart = {c.events_per_s:,.0f} events/s, "
        f"{c.blocks_per_s:,.1f} blocks/s; from SERVING {c.events_per_s_serving:,.0f} events/s\n"
        f"    restart -> SERVING {c.serve_s:.2f} s; first / last synced block logged at "
        f"{first} / {last} s (longest gap between two {c.synced_gap_max_s:.2f} s); "
        f"{c.synced_blocks_logged} blocks synced (from {c.synced_from}); "
        f"graceful stop took {c.stop_s:.2f} s",
        flush=True,
    )
    print_usage(c.usage, c.events)


def result_summary(measurement: Measurement, options: Options) -> dict[str, object]:
    m = measurement
    summary: dict[str, object] = {
        "nodes": NODES,
        "events": options.events,
        "streams": options.streams,
        "profiled": options.profile,
        "nodes_start_s": round(m.start_s, 2),
    }
    if m.peak is not None:
        peak = m.peak
        summary |= {
            "peak_committed_events_per_s": round(peak.committed_per_s),
            "peak_admitted_events_per_s": round(peak.admitted_per_s),
            "peak_batch_latency_p50_ms": round(peak.latency_ms["p50"]),
            "peak_batch_latency_p99_ms": round(peak.latency_ms["p99"]),
            "peak_committed": peak.committed,
            "peak_mempool_full_retries": peak.mempool_full_retries,
            "peak_rejections": peak.rejections,
            "peak_nodes_cpu_us_per_event": round(us_per_event(peak.usage, peak.committed)),
            "peak_node_cpu_s": [
                round(node.main_cpu_s + node.workers_cpu_s, 1) for node in peak.usage.nodes
            ],
            "peak_node_rss_mib": [round(node.peak_rss_mib) for node in peak.usage.nodes],
            "peak_other_processes_cores": round(peak.usage.other_cores, 2),
        }
    if m.paced is not None:
        paced = m.paced
        summary |= {
            "half_load_offered_events_per_s": round(paced.offered_per_s),
            "half_load_committed_events_per_s": round(paced.committed_per_s),
            "half_load_batch_latency_p50_ms": round(paced.latency_ms["p50"]),
            "half_load_batch_latency_p99_ms": round(paced.latency_ms["p99"]),
            "half_load_batch_latency_max_ms": round(paced.latency_ms["max"]),
            "half_load_nodes_cpu_us_per_event": round(us_per_event(paced.usage, paced.committed)),
            "half_load_other_processes_cores": round(paced.usage.other_cores, 2),
        }
    if m.catch_up is not None:
        c = m.catch_up
        summary |= {
            "three_node_committed_events_per_s": round(c.three_node_load.committed_per_s),
            "catch_up_events": c.events,
            "catch_up_blocks": c.blocks,
            "catch_up_events_per_s": round(c.events_per_s),
            "catch_up_blocks_per_s": round(c.blocks_per_s, 1),
            "catch_up_events_per_s_from_serving": round(c.events_per_s_serving),
            "restart_to_serving_s": round(c.serve_s, 2),
            "catch_up_s": round(c.caught_up_s, 2),
            "catch_up_other_processes_cores": round(c.usage.other_cores, 2),
        }
    return summary


def exact_command(options: Options) -> str:
    python = Path(sys.executable)
    with contextlib.suppress(ValueError):
        python = python.relative_to(REPO_ROOT)
    arguments = [str(python), "bench/consortium.py", "--events", str(options.events)]
    arguments += ["--streams", str(options.streams)]
    arguments += ["--catch-up-events", str(options.catch_up_events)]
    arguments += ["--paced-seconds", f"{options.paced_seconds:g}"]
    if options.half_rate:
        arguments += ["--half-rate", f"{options.half_rate:g}"]
    if options.profile:
        arguments += ["--profile", options.profile]
    if options.wait_quiet_s:
        arguments += ["--wait-quiet", f"{options.wait_quiet_s:g}"]
    return shlex.join(arguments)


def verdict(value: float, target: float, higher_is_better: bool = True) -> str:
    if math.isnan(value):
        return "not measured"
    if higher_is_better:
        return f"{'met' if value >= target else 'NOT met'} ({value / target:.0%} of the target)"
    return f"{'met' if value <= target else 'NOT met'} ({value / target:.2f}× the limit)"


def usage_table(rows: list[tuple[str, PhaseUsage, int]]) -> list[str]:
    names = [node.name for node in rows[0][1].nodes]
    lines = [
        "| phase | window | "
        + " | ".join(names)
        + " | all nodes per committed event | load client | other processes |",
        "|---|---:|" + "---:|" * len(names) + "---:|---:|---:|",
    ]
    for label, usage, events in rows:
        lines.append(
            f"| {label} | {usage.window_s:.1f} s | "
            + " | ".join(node_cells(usage))
            + f" | {fmt_us(us_per_event(usage, events))} | {usage.client_cpu_s:.1f} s | "
            f"{usage.other_cores:.2f} cores |"
        )
    lines += [
        "",
        "Peak RSS (VmHWM, the peak since each process started) at the end of each phase, "
        "node process + its largest worker:",
        "",
        "| phase | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for label, usage, _ in rows:
        lines.append(f"| {label} | " + " | ".join(rss_cells(usage)) + " |")
    return lines


def where_the_time_goes(measurement: Measurement, machine: dict[str, str | int]) -> list[str]:
    """A few sentences computed from the figures (the report is rewritten on every run, so
    nothing here is written by hand)."""
    peak = measurement.peak
    if peak is None:
        return []
    usage = peak.usage
    cores = int(machine["cpus_usable"])

    def cores_used(seconds: float, window_s: float) -> float:
        return seconds / window_s if window_s else 0.0

    nodes_s = usage.nodes_cpu_s
    loop_s = sum(node.loop_cpu_s for node in usage.nodes)
    workers_s = sum(node.workers_cpu_s for node in usage.nodes)
    threads_s = nodes_s - loop_s - workers_s
    per_node_us = us_per_event(usage, peak.committed) / NODES
    ceiling = cores * 1e6 / (per_node_us * NODES) if per_node_us else math.nan
    lines = []
    if measurement.idle is not None:
        idle = measurement.idle
        lines.append(
            f"- Idle (heartbeat blocks only) the four nodes used "
            f"{cores_used(idle.nodes_cpu_s, idle.window_s):.2f} cores."
        )
    busy = (
        cores_used(nodes_s + usage.client_cpu_s, usage.window_s) + usage.other_cores
        >= SATURATED_SHARE * cores
    )
    lines += [
        f"- At peak the four nodes used {cores_used(nodes_s, usage.window_s):.2f} of the "
        f"{cores} cores, the load client {cores_used(usage.client_cpu_s, usage.window_s):.2f} "
        f"and other processes {usage.other_cores:.2f}"
        + (": the machine was saturated" if busy else ": the machine was not saturated")
        + ". Each node spent "
        f"{per_node_us:,.0f} µs of CPU per committed event (every node admits, checks and "
        "commits every event, whether submitted to it or gossiped): "
        f"{loop_s / nodes_s:.0%} on its event-loop thread, {threads_s / nodes_s:.0%} in its "
        f"other threads and {workers_s / nodes_s:.0%} in its signature-check worker. At that "
        f"cost {cores} cores can commit at most {ceiling:,.0f} events/s with four validators; "
        f"the target of {TARGET_COMMITTED_PER_S:,} needs at most "
        f"{cores * 1e6 / TARGET_COMMITTED_PER_S / NODES:,.0f} µs per event per node.",
    ]
    busiest = max(usage.nodes, key=lambda node: node.main_cpu_s + node.workers_cpu_s)
    quietest = min(usage.nodes, key=lambda node: node.main_cpu_s + node.workers_cpu_s)
    lines.append(
        f"- The load is even across nodes: the busiest ({busiest.name}) used "
        f"{busiest.main_cpu_s + busiest.workers_cpu_s:.1f} s, the least busy "
        f"({quietest.name}) {quietest.main_cpu_s + quietest.workers_cpu_s:.1f} s; "
        f"proposers of the {peak.blocks} blocks: "
        + ", ".join(f"{name} {count}" for name, count in peak.proposers.items())
        + f". Blocks were large (up to {peak.block_events_max:,} events): at peak an event "
        f"waits in a mempool behind the blocks before it, hence submit→commit "
        f"p50 {peak.latency_ms['p50']:,.0f} ms."
    )
    if measurement.paced is not None:
        paced = measurement.paced
        paced_us = us_per_event(paced.usage, paced.committed) / NODES
        lines.append(
            f"- At half load ({paced.offered_per_s:,.0f} events/s offered in batches of "
            f"{PACED_BATCH_EVENTS}) the nodes used "
            f"{cores_used(paced.usage.nodes_cpu_s, paced.usage.window_s):.2f} cores: "
            f"{paced_us:,.0f} µs per event per node, {paced_us / per_node_us:.1f}× the cost at "
            f"peak, with {paced.committed / max(1, paced.blocks):,.0f} events per block on "
            f"average (up to {paced.block_events_max:,}) instead of "
            f"{peak.committed / max(1, peak.blocks):,.0f}"
            + (
                ". Half the peak rate is not half the work: costs per call, per gossip batch "
                "and per block weigh more."
                if paced_us > 1.2 * per_node_us
                else "."
            )
        )
    if measurement.catch_up is not None:
        c = measurement.catch_up
        three = c.three_node_load
        lagging = next(node for node in c.usage.nodes if node.name == c.node)
        lagging_cpu_s = lagging.main_cpu_s + lagging.workers_cpu_s
        three_cores = cores_used(three.usage.nodes_cpu_s, three.usage.window_s)
        lines.append(
            f"- With {c.node} down the three others committed {three.committed_per_s:,.0f} "
            f"events/s using {three_cores:.2f} cores"
            + (
                "; they were not short of CPU"
                if three_cores + three.usage.other_cores < SATURATED_SHARE * cores
                else ""
            )
            + f". One height in {NODES} has the stopped node as its round-0 proposer "
            "(height + round mod 4) and waits for the propose timeout before round 1 "
            "(proposers of the blocks: "
            + ", ".join(f"{name} {count}" for name, count in three.proposers.items())
            + ")."
        )
        lines.append(
            f"- Catching up, {c.node} used {lagging_cpu_s:.1f} s of CPU "
            f"({cores_used(lagging_cpu_s, c.usage.window_s):.2f} cores, "
            f"{lagging.loop_cpu_s:.1f} s on its event loop) over {c.usage.window_s:.1f} s, "
            f"start-up included: {lagging_cpu_s / max(1, c.events) * 1e6:,.0f} µs per event "
            "(each synced block's certificate checked and its events re-executed: decode, "
            "signature, rules, Merkle log, one synced batch per block). The target of "
            f"{TARGET_CATCH_UP_PER_S:,} events/s allows {1e6 / TARGET_CATCH_UP_PER_S:,.0f} µs "
            "per event."
        )
    return lines


def consortium_section(
    measurement: Measurement, options: Options, machine: dict[str, str | int]
) -> str:
    m = measurement
    peak, paced, catch_up = m.peak, m.paced, m.catch_up
    if peak is None:
        raise BenchmarkError("the report needs the peak phase")
    lat = peak.latency_ms
    rows = [
        "| figure | value | target |",
        "|---|---|---|",
        f"| committed events/s at peak, 4 validators | **{peak.committed_per_s:,.0f}** "
        f"({peak.committed:,} events in {peak.elapsed_s:.2f} s; admitted "
        f"{peak.admitted_per_s:,.0f}/s) | ≥ {TARGET_COMMITTED_PER_S:,}: "
        f"{verdict(peak.committed_per_s, TARGET_COMMITTED_PER_S)} |",
        f"| submit→commit per batch of {PEAK_BATCH_EVENTS} at peak, p50 / p90 / p99 / max | "
        f"{lat['p50']:,.0f} / {lat['p90']:,.0f} / {lat['p99']:,.0f} / {lat['max']:,.0f} ms "
        "| (none at peak) |",
        f"| blocks at peak | {peak.blocks} holding events, up to {peak.block_events_max:,} "
        f"events each ({peak.committed / max(1, peak.blocks):,.0f} on average) | |",
    ]
    if paced is not None:
        pl = paced.latency_ms
        rows += [
            f"| half load: offered / committed events/s | {paced.offered_per_s:,.0f} / "
            f"{paced.committed_per_s:,.0f} ({paced.committed:,} events, batches of "
            f"{PACED_BATCH_EVENTS}, {paced.elapsed_s:.1f} s; latest send "
            f"{paced.send_lag_max_ms:,.0f} ms behind schedule) | |",
            f"| half load: submit→commit per batch, p50 / p90 / p99 / max | "
            f"{pl['p50']:,.0f} / {pl['p90']:,.0f} / **{pl['p99']:,.0f}** / {pl['max']:,.0f} ms "
            f"({paced.batches:,} batches) | p99 ≤ {TARGET_HALF_LOAD_P99_MS:,} ms: "
            f"{verdict(pl['p99'], TARGET_HALF_LOAD_P99_MS, higher_is_better=False)} |",
        ]
    if catch_up is not None:
        c = catch_up
        three = c.three_node_load
        rows += [
            f"| catch-up of {c.node}: events/s from its restart to equal height | "
            f"**{c.events_per_s:,.0f}** ({c.events:,} events, {c.blocks} blocks in "
            f"{c.caught_up_s:.2f} s = {c.blocks_per_s:,.1f} blocks/s) | "
            f"≥ {TARGET_CATCH_UP_PER_S:,}: {verdict(c.events_per_s, TARGET_CATCH_UP_PER_S)} |",
            f"| catch-up: events/s from SERVING to equal height | "
            f"{c.events_per_s_serving:,.0f} ({c.caught_up_s - c.serve_s:.2f} s) | |",
            f"| restart of {c.node} to gRPC SERVING (holding {c.start_log_size:,} events in "
            f"{c.start_height} blocks) | {c.serve_s:.2f} s | ≤ "
            f"{TARGET_RESTART_TO_SERVING_S:g} s, but at 1,000,000 events (not measured here) |",
            f"| blocks fetched by block sync (SyncBlocks) | {c.synced_blocks_logged} of "
            f"{c.blocks}; the first committed {fmt_s(c.first_synced_block_s)} after the "
            f"restart ({fmt_s(sub(c.first_synced_block_s, c.serve_s))} after SERVING), the "
            f"last {fmt_s(c.last_synced_block_s)}; longest wait between two "
            f"{c.synced_gap_max_s:.2f} s | |",
            f"| three validators while {c.node} was down: committed events/s | "
            f"{three.committed_per_s:,.0f} ({three.committed:,} events) | |",
        ]
    retries = peak.mempool_full_retries + (paced.mempool_full_retries if paced else 0)
    rejections: Counter[str] = Counter(peak.rejections)
    if paced is not None:
        rejections.update(paced.rejections)
    if catch_up is not None:
        retries += catch_up.three_node_load.mempool_full_retries
        rejections.update(catch_up.three_node_load.rejections)
    rejected = ", ".join(f"`{code}` {count}" for code, count in rejections.items()) or "none"
    rows += [
        f"| `mempool_full` results retried / other rejections | {retries:,} / {rejected} | |",
        f"| four nodes: start to all SERVING | {m.start_s:.1f} s | |",
    ]
    for finding in m.log_findings:
        counts = ", ".join(f"{name} {count}" for name, count in finding.counts.items())
        example = finding.example.replace("|", "\\|").replace("`", "'")
        rows.append(f"| node logs: {finding.label} | {counts}; e.g. `{example}` | |")
    usage_rows = [("idle (no load)", m.idle, 0)] if m.idle is not None else []
    usage_rows.append(("peak", peak.usage, peak.committed))
    if paced is not None:
        usage_rows.append(("half load", paced.usage, paced.committed))
    if catch_up is not None:
        three = catch_up.three_node_load
        usage_rows.append((f"load while {catch_up.node} is down", three.usage, three.committed))
        usage_rows.append((f"{catch_up.node} catching up", catch_up.usage, catch_up.events))
    disturbed = [label for label, usage, _ in usage_rows if usage.other_cores > QUIET_CORES_MAX]
    lines = [
        f"Measured {machine['date']} at commit {machine['commit']}.",
        "",
        *rows,
        "",
        "CPU by phase, per node: total = its event-loop thread + its other threads (gRPC's "
        "C-core threads, the block-commit worker thread, LevelDB compaction) + the other "
        "processes of its process group (its signature-check worker), from utime+stime in "
        "`/proc`; in brackets the share of a core it used:",
        "",
        *usage_table(usage_rows),
        "",
        "CPU used by other processes is the machine's busy time (`/proc/stat`) minus the "
        "nodes' and the load client's"
        + (
            f"; more than {QUIET_CORES_MAX} cores during: {', '.join(disturbed)} — the figures "
            "of those phases are lower than a quiet machine would give."
            if disturbed
            else "."
        ),
        "",
        "Where the time goes (from the figures above; see the profile section below, if "
        "present, for inside one node):",
        "",
        *where_the_time_goes(measurement, machine),
        "",
        f"Command: `{exact_command(options)}`",
        "",
        f"Machine: {machine['cpus']} CPUs ({machine['cpus_usable']} usable), "
        f"{machine['cpu_model']}; {machine['kernel']}; Python {machine['python']}. The four "
        "nodes, their signature-check workers and the load client all share these cores.",
        "",
        "Method: a fresh four-validator consortium (`init_consortium`, mutual TLS between "
        "validators) in a temporary folder; four real node processes (`provledger node "
        "run`), each in a process group of its own and stopped by its PID at the end. Load: "
        "`asset_registered` events with fresh asset ids from agency-a, agency-b and exchange "
        "in turn, all signed before the clock starts, submitted by spawned stream processes "
        f"(one gRPC channel each, stream k on node k mod 4) with `SubmitEvents`; a "
        f"`mempool_full` result is retried after {MEMPOOL_FULL_BACKOFF_S * 1000:.0f} ms. "
        f"Peak: {options.events:,} events, {options.streams} streams, batches of "
        f"{PEAK_BATCH_EVENTS} one call after the other; throughput is committed events over "
        "first submit → arrival on node-0 (through a `SubscribeBlocks` stream opened before "
        f"the load) of the block holding the last one. Half load: batches of "
        f"{PACED_BATCH_EVENTS} from 4 streams, staggered and paced at "
        f"{PACED_LOAD_SHARE:.0%} of the measured peak for {options.paced_seconds:g} s; "
        "latency per batch from its first send to the arrival, through `SubscribeBlocks` on "
        "the node it was sent to, of the block holding its last event (nearest-rank "
        f"percentiles; the same at peak). Catch-up: {LAGGING_NODE_NAME} stopped with "
        f"SIGTERM, {options.catch_up_events:,} events committed by the other three "
        f"({options.streams} streams), {LAGGING_NODE_NAME} restarted; `GetCheckpoint` polled "
        f"every {HEIGHT_POLL_INTERVAL_S * 1000:.0f} ms on it and on node-0 until its height "
        "equals node-0's; events = its log size then minus at its start. Idle validators "
        "commit empty heartbeat blocks, so block counts include some. CPU is utime+stime "
        "from `/proc/PID/stat` between the start and the end of each phase; peak RSS is "
        "`VmHWM` from `/proc/PID/status`.",
    ]
    return "\n".join(lines)


def fmt_s(value: float | None) -> str:
    return f"{value:.2f} s" if value is not None else "-"


def sub(value: float | None, minus: float) -> float | None:
    return value - minus if value is not None else None


def update_report(key: str, title: str, body: str) -> None:
    """Rewrite one marked section of docs/PERFORMANCE.md, read just before, the rest as it is."""
    if not REPORT_PATH.exists():
        raise BenchmarkError(f"{REPORT_PATH} does not exist; not creating it")
    updated = replace_section(REPORT_PATH.read_text(), key, title, body)
    scratch = REPORT_PATH.with_name(f".{REPORT_PATH.name}.{os.getpid()}.tmp")
    scratch.write_text(updated)
    os.replace(scratch, REPORT_PATH)
    print(f"updated {REPORT_PATH.relative_to(REPO_ROOT)} (section {title!r})")


# --- the profile -----------------------------------------------------------------------------

# Entry points, the event loop and thread machinery: they hold everything cumulatively.
PROFILE_PLUMBING_PATHS = (
    "/asyncio/",
    "/concurrent/futures/",
    "threading.py",
    "selectors.py",
    "cli/main.py",
    "node/server.py",
    "_profiled_node.py",
)
# (label, (file suffix, function)): inclusive CPU of a node's main jobs. Not nested: several
# are called from more than one place (admission from SubmitEvents and from gossip; block
# execution from proposing, validating a proposal and block sync), so the rows overlap.
PROFILE_JOBS: tuple[tuple[str, tuple[str, str]], ...] = (
    ("SubmitEvents handler: admission of client batches", ("node/grpc_api.py", "SubmitEvents")),
    ("accept_gossip: admission of events peers forwarded", ("node/ledger.py", "accept_gossip")),
    (
        "LedgerApplication.check, both paths: decode, duplicate check, rules",
        ("node/application.py", "check"),
    ),
    (
        "presign_check, both paths: decode and key lookup for the worker, then wait",
        ("node/ledger.py", "presign_check"),
    ),
    (
        "consensus driver: state machine, proposing, validating",
        ("node/consensus_driver.py", "_feed"),
    ),
    (
        "block sync of a node behind: fetch, verify, execute, commit",
        ("node/consensus_driver.py", "_sync_from"),
    ),
    (
        "blocks.execute_block, every caller: rules, Merkle log, state root",
        ("protocol/blocks.py", "execute_block"),
    ),
    ("events.decode, every caller: protobuf parse, field checks", ("protocol/events.py", "decode")),
    ("Store.commit_block: one synced batch, in a worker thread", ("node/store.py", "commit_block")),
    ("Store.save_signed: the vote log, a synced put per vote", ("node/store.py", "save_signed")),
    ("peer messages in: dispatch", ("node/peers.py", "_received")),
    ("peer gossip out: write streams", ("node/peers.py", "_write_queue")),
    (
        "SubscribeBlocks handler: blocks read back for clients",
        ("node/grpc_api.py", "SubscribeBlocks"),
    ),
    ("crypto.verify in the node process: votes, small batches", ("protocol/crypto.py", "verify")),
)


def short_location(file_name: str, line: int, function: str) -> str:
    if file_name == "~":
        return function
    path = file_name
    if "site-packages/" in path:
        path = path.split("site-packages/", 1)[1]
    elif path.startswith(str(REPO_ROOT)):
        path = os.path.relpath(path, REPO_ROOT)
    elif "/lib/python" in path:
        path = path.split("/lib/python", 1)[1].split("/", 1)[-1]
    return f"{path}:{line}({function})"


def profile_rows(
    stats: pstats.Stats, sort_index: int, count: int, skip_plumbing: bool = False
) -> list[tuple[str, int, float, float]]:
    """(location, calls, tottime, cumtime) of the top `count` functions; sort_index 2 is
    tottime, 3 cumtime."""
    rows = []
    for (file_name, line, function), entry in stats.stats.items():  # type: ignore[attr-defined]
        if skip_plumbing and (
            function == "<method 'run' of '_contextvars.Context' objects>"
            or any(part in file_name for part in PROFILE_PLUMBING_PATHS)
        ):
            continue
        _, calls, tottime, cumtime, _ = entry
        rows.append((short_location(file_name, line, function), calls, tottime, cumtime))
    rows.sort(key=lambda row: -row[sort_index])
    return rows[:count]


def function_totals(stats: pstats.Stats, suffix: str, function: str) -> tuple[int, float]:
    """(calls, cumulative seconds) of a function, summed over the profile's entries."""
    calls, cumulative = 0, 0.0
    for (file_name, _, name), entry in stats.stats.items():  # type: ignore[attr-defined]
        if name == function and file_name.endswith(suffix):
            calls += entry[1]
            cumulative += entry[3]
    return calls, cumulative


def job_times(stats: pstats.Stats) -> list[tuple[str, int, float]]:
    """(label, calls, inclusive CPU) of each job in PROFILE_JOBS the profile holds."""
    times = []
    for label, (suffix, function) in PROFILE_JOBS:
        calls, cumulative = function_totals(stats, suffix, function)
        if cumulative > 0:
            times.append((label, calls, cumulative))
    return times


def profile_observations(stats: pstats.Stats, figures: LoadFigures) -> list[str]:
    """Sentences about the profile that the figures support, each followed by a blank line."""
    found = []
    decodes, _ = function_totals(stats, "protocol/events.py", "decode")
    applies, _ = function_totals(stats, "protocol/rules.py", "apply_event")
    if figures.committed and decodes:
        found.append(
            f"Each event was decoded {decodes / figures.committed:.1f} times "
            f"({decodes:,} calls of `events.decode` for {figures.committed:,} events) and "
            f"checked by the rules {applies / figures.committed:.1f} times "
            f"({applies:,} calls of `rules.apply_event`): at admission, when the signature "
            "check is prepared, and when a block holding it is executed."
        )
    sync_calls, sync_s = function_totals(stats, "node/consensus_driver.py", "_sync_from")
    total = stats.total_tt  # type: ignore[attr-defined]
    if total and sync_s > 0.1 * total:
        found.append(
            f"The profiled node, slowed by the profiler, fell behind the others and spent "
            f"{sync_s:.1f} s ({sync_s / total:.0%}) in block sync (`_sync_from`, {sync_calls:,} "
            "calls) instead of following consensus; the block execution it did there would "
            "otherwise happen when validating proposals."
        )
    return [line for sentence in found for line in (sentence, "")]


def profile_section(
    stats: pstats.Stats,
    figures: LoadFigures,
    options: Options,
    machine: dict[str, str | int],
) -> str:
    """Where the profiled node's CPU went during the phase whose `figures` are given."""
    total = stats.total_tt  # type: ignore[attr-defined]
    usage = figures.usage
    profiled = usage.nodes[PROFILED_NODE]
    others = [
        n.main_cpu_s + n.workers_cpu_s for i, n in enumerate(usage.nodes) if i != PROFILED_NODE
    ]
    if options.profile == "half":
        phase = (
            f"the half-load phase only: {figures.events:,} events offered at "
            f"{options.half_rate:,.0f} events/s in batches of {PACED_BATCH_EVENTS} from 4 streams"
        )
    else:
        phase = (
            f"the peak phase only: {figures.events:,} events in batches of "
            f"{PEAK_BATCH_EVENTS} from {figures.streams} streams, as fast as accepted"
        )

    def share(seconds: float) -> str:
        return f"{100 * seconds / total:.0f}%" if total else "-"

    lines = [
        f"Profiled {machine['date']} at commit {machine['commit']}: "
        f"`{exact_command(options)}` ({phase}). node-{PROFILED_NODE} ran under "
        "cProfile (`bench/_profiled_node.py`, per-thread CPU clock, every Python thread) from "
        "its start to its SIGTERM after that phase; the other three ran unprofiled. The "
        f"profile holds {total:.1f} s; during the load `/proc` counted "
        f"{profiled.main_cpu_s:.1f} s for the profiled node process and "
        f"{profiled.workers_cpu_s:.1f} s for its signature-check worker (not profiled), and "
        f"{min(others):.1f}-{max(others):.1f} s for each unprofiled node with its worker. "
        f"Under the profiler the consortium committed {figures.committed_per_s:,.0f} events/s "
        f"({figures.committed:,} events in {figures.blocks} blocks; submit→commit p50 / p99 "
        f"{figures.latency_ms['p50']:,.0f} / {figures.latency_ms['p99']:,.0f} ms; not "
        "comparable with an unprofiled run). Other processes used "
        f"{usage.other_cores:.2f} cores.",
        "",
        *profile_observations(stats, figures),
        "Inclusive CPU of the node's main jobs (cumulative time; rows overlap, since some "
        "jobs call others and some functions have several callers):",
        "",
        "| job | calls | CPU s | share |",
        "|---|---:|---:|---:|",
    ]
    for label, calls, seconds in job_times(stats):
        lines.append(f"| {label} | {calls:,} | {seconds:.2f} | {share(seconds)} |")
    lines += [
        "",
        f"Top {PROFILE_ENTRIES_REPORTED} functions by own time (tottime):",
        "",
        "| function | calls | tottime s | share | cumtime s |",
        "|---|---:|---:|---:|---:|",
    ]
    for location, calls, tottime, cumtime in profile_rows(stats, 2, PROFILE_ENTRIES_REPORTED):
        lines.append(
            f"| `{location}` | {calls:,} | {tottime:.2f} | {share(tottime)} | {cumtime:.2f} |"
        )
    lines += [
        "",
        f"Top {PROFILE_ENTRIES_REPORTED} functions by cumulative time (entry points, the event "
        "loop and thread machinery left out):",
        "",
        "| function | calls | cumtime s | share |",
        "|---|---:|---:|---:|",
    ]
    for location, calls, _, cumtime in profile_rows(
        stats, 3, PROFILE_ENTRIES_REPORTED, skip_plumbing=True
    ):
        lines.append(f"| `{location}` | {calls:,} | {cumtime:.2f} | {share(cumtime)} |")
    return "\n".join(lines)


def print_profile(stats: pstats.Stats) -> None:
    print("\n--- node profile: main jobs (inclusive CPU s) ---")
    for label, calls, seconds in job_times(stats):
        print(f"  {seconds:8.2f} s  {calls:>9,} calls  {label}")
    for order in ("tottime", "cumulative"):
        print(f"\n--- node profile: top {PROFILE_ENTRIES_PRINTED} by {order} ---")
        stats.sort_stats(order).print_stats(PROFILE_ENTRIES_PRINTED)


# --- the command -----------------------------------------------------------------------------


def parse_options(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        description="Benchmark a four-validator consortium on this machine: peak committed "
        "events/s, submit->commit latency at half of it, a lagging node's catch-up speed; "
        "figures go to docs/PERFORMANCE.md."
    )
    parser.add_argument("--events", type=int, default=40_000, help="events in the peak phase")
    parser.add_argument(
        "--streams", type=int, default=4, help="submit processes in the peak and catch-up loads"
    )
    parser.add_argument(
        "--catch-up-events",
        type=int,
        default=30_000,
        help="events committed while node-3 is down (0: no catch-up phase)",
    )
    parser.add_argument(
        "--paced-seconds",
        type=float,
        default=25.0,
        help="length of the half-load phase, in seconds",
    )
    parser.add_argument(
        "--half-rate",
        type=float,
        default=0.0,
        metavar="EVENTS_PER_S",
        help="offer the half-load phase at this rate instead of half the measured peak",
    )
    parser.add_argument(
        "--profile",
        nargs="?",
        const="peak",
        choices=sorted(PROFILE_REPORTS),
        help=f"run node-{PROFILED_NODE} under cProfile during one phase and report where its "
        "CPU goes: peak (the default; the peak phase only) or half (the half-load phase only, "
        "at --half-rate); the throughput is then not written to the report",
    )
    parser.add_argument("--profile-out", type=Path, help="the pstats file (default: in /tmp)")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="first wait up to this long for other processes to leave the CPUs alone "
        f"(at most {QUIET_CORES_MAX} cores busy); the CPU they use in each phase is reported",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs)")
    parser.add_argument("--no-report", action="store_true", help="do not touch PERFORMANCE.md")
    parser.add_argument("--json", type=Path, help="also write the figures here as JSON")
    args = parser.parse_args(argv)
    if args.events < PEAK_BATCH_EVENTS:
        parser.error(f"--events must be at least {PEAK_BATCH_EVENTS}")
    if not 1 <= args.streams <= STREAMS_PER_PHASE_MAX:
        parser.error(f"--streams must be 1..{STREAMS_PER_PHASE_MAX}")
    if args.catch_up_events < 0 or args.paced_seconds <= 0:
        parser.error("--catch-up-events must be >= 0 and --paced-seconds > 0")
    if args.half_rate < 0 or (args.profile == "half" and not args.half_rate):
        parser.error("--half-rate must be positive, and is needed with --profile half")
    if PEAK_BATCH_EVENTS > SUBMIT_BATCH_EVENTS_MAX:
        parser.error(f"batches of {PEAK_BATCH_EVENTS} exceed the node's limit")
    profile_out = args.profile_out
    if args.profile and profile_out is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        profile_out = Path(tempfile.gettempdir()) / f"provledger-consortium-{stamp}.pstats"
    return Options(
        events=args.events,
        streams=args.streams,
        catch_up_events=args.catch_up_events,
        paced_seconds=args.paced_seconds,
        half_rate=args.half_rate,
        profile=args.profile,
        profile_out=profile_out.resolve() if profile_out else None,
        wait_quiet_s=args.wait_quiet,
        keep=args.keep,
        report=not args.no_report,
        json_out=args.json,
    )


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    machine = describe_machine()
    print(
        f"provledger four-node benchmark: {options.events:,} events at peak, "
        f"{options.streams} streams, half load for {options.paced_seconds:g} s, catch-up of "
        f"{options.catch_up_events:,} events"
        + (
            f"; node-{PROFILED_NODE} under cProfile, {options.profile} phase only"
            if options.profile
            else ""
        )
    )
    print(
        f"machine: {machine['cpus']} CPUs ({machine['cpus_usable']} usable), "
        f"{machine['cpu_model']}, Python {machine['python']}, commit {machine['commit']}"
    )
    if options.wait_quiet_s > 0:
        cores_busy = wait_until_quiet(options.wait_quiet_s)
        print(f"other processes use {cores_busy:.2f} cores; starting", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="provledger-bench4-"))
    started = time.monotonic()
    try:
        measurement = run_benchmark(options, workdir)
    except (BenchmarkError, NodeStartError) as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 1
    finally:
        if options.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"\nthe run took {time.monotonic() - started:.0f} s")
    summary = result_summary(measurement, options)
    print(f"\nRESULT {json.dumps(summary, sort_keys=True)}")
    if options.json_out is not None:
        document = {"result": summary, "machine": machine, "measurement": asdict(measurement)}
        options.json_out.write_text(json.dumps(document, indent=2, default=str) + "\n")
    loads = [measurement.peak, measurement.paced]
    if measurement.catch_up is not None:
        loads.append(measurement.catch_up.three_node_load)
    if any(load is not None and load.committed != load.events for load in loads):
        print("not every submitted event was committed; the report was not updated")
        return 1
    if options.profile:
        if options.profile_out is None or not options.profile_out.exists():
            print(f"node-{PROFILED_NODE} wrote no profile to {options.profile_out}")
            return 1
        stats = pstats.Stats(str(options.profile_out))
        print_profile(stats)
        print(f"pstats file: {options.profile_out}")
        figures = measurement.peak if options.profile == "peak" else measurement.paced
        if options.report and figures is not None:
            key, title = PROFILE_REPORTS[options.profile]
            update_report(key, title, profile_section(stats, figures, options, machine))
    elif options.report:
        update_report(REPORT_KEY, REPORT_TITLE, consortium_section(measurement, options, machine))
    return 0


if __name__ == "__main__":
    sys.exit(main())

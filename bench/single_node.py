"""Single-node benchmark: how many signed events a one-validator node commits per second.

Theory of operation
-------------------
1. A fresh consortium of one validator goes into a temporary folder (`init_consortium`, a free
   port), and a REAL node process is started on it (`python -m provledger.cli.main node run`).
   Whatever happens, the node is stopped by its PID at the end (SIGTERM, then SIGKILL).
2. `--streams` load processes (spawned, each with its own gRPC channel) pre-sign their share of
   `--events` `asset_registered` events before anything is timed. Every event is valid: a fresh
   asset id, authors spread round-robin over the agency-a, agency-b and exchange identities,
   nonces unique per author.
3. A `SubscribeBlocks` stream from height 1 is opened in this process before the load starts;
   it notes the arrival time of every block.
4. On a common signal the streams submit their events with `SubmitEvents`, `--batch` at a time,
   one call after the other (optionally paced by `--rate`). A `mempool_full` result is retried
   after a short sleep and counted; any other rejection is counted and reported.
5. The run ends when every accepted event has been seen in a block (or nothing arrives for
   `COMMIT_IDLE_TIMEOUT_S`). Figures:
   - committed events/s: committed events / (first submit -> arrival of the block that holds
     the last one), also per fifth of the events (does the node slow down as it grows?);
   - submit->commit latency per batch: from the batch's first send to the arrival of the block
     holding its last event (retries included); per event: from the send that got it accepted
     to the arrival of its block. Percentiles are nearest-rank;
   - the node's CPU time during the load (/proc/PID/stat utime+stime, all threads) and its
     peak RSS (/proc/PID/status VmHWM), and the CPU of each of its threads.
   The figures are printed, summarised on one `RESULT {json}` line for comparing runs, and
   written into docs/PERFORMANCE.md between markers (other sections are left as they are).

Comparing runs (before/after an optimisation) on a shared machine:
- `--source REV` benchmarks a committed revision (extracted with `git archive`, put first on
  PYTHONPATH for the node and the client) instead of a working tree others are editing;
- the CPU that other processes used during the load is measured (/proc/stat) and flagged;
  `--wait-quiet S` waits for a quiet machine first, `--retry-disturbed N` reruns a disturbed
  run, `--repeat N` reports the run with the median throughput;
- node CPU per committed event (all threads, and the event loop's thread alone) hardly moves
  when the machine is busy, while events/s does: compare those too.

With `--profile` the node runs under cProfile (bench/_profiled_node.py, per-thread CPU clock);
the top functions are printed and written to the "Where the time goes (single node)" section.
The throughput of a profiled run is not comparable and is not written to the report.

The load client shares the machine with the node: on a 2-core machine the streams' CPU
(reported) is CPU the node does not get.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import io
import json
import math
import multiprocessing
import multiprocessing.connection
import os
import platform
import pstats
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import grpc
from _measure import (
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

from provledger.cli.client import CHANNEL_OPTIONS, EventSigner, Identity
from provledger.cli.consortium import init_consortium
from provledger.node.settings import MEMPOOL_EVENTS_MAX, SUBMIT_BATCH_EVENTS_MAX
from provledger.protocol.events import event_id
from provledger.v1 import api_pb2, api_pb2_grpc, ledger_pb2

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
REPORT_PATH = REPO_ROOT / "docs" / "PERFORMANCE.md"
PROFILED_NODE_SCRIPT = BENCH_DIR / "_profiled_node.py"

AUTHORS = ("agency-a", "agency-b", "exchange")
NODE_SOURCE_DIRS = ("node", "protocol", "cli", "proto")  # what the measured node runs
PACKAGE_DIRS = ("proto/provledger", "protocol", "node", "cli")  # pyproject's package-dir
SOURCE_ENV = "PROVLEDGER_BENCH_SOURCE"  # set when running a committed revision (--source)
NONCES_PER_STREAM_MAX = 1_000_000_000  # stream k uses nonces from k * this, per author
NODE_START_TIMEOUT_S = 30
NODE_STOP_TIMEOUT_S = 60  # a profiled node writes its stats on the way out
STREAM_READY_TIMEOUT_S = 600  # pre-signing 100,000 events takes a while on 2 cores
SUBMIT_TIMEOUT_S = 120
COMMIT_IDLE_TIMEOUT_S = 60
MEMPOOL_FULL_BACKOFF_S = 0.05
PROGRESS_INTERVAL_S = 5.0
OTHER_PROCESSES_LISTED = 3
PROFILE_ENTRIES_PRINTED = 25
PROFILE_ENTRIES_REPORTED = 15
LOG_TAIL_LINES = 20
RUN_PARTS = 5  # throughput is also reported per fifth of the committed events

REPORT_INTRO = """# provledger performance

Figures measured by the benchmarks in `bench/` on the machine each section names. The sections
between `<!-- bench:... -->` markers are rewritten by the benchmarks; everything else is
written by hand. Targets are in the design document ("Targets").
"""


# --- the machine ---------------------------------------------------------------------------


def git_revision() -> str:
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
        "commit": os.environ.get(SOURCE_ENV) or git_revision(),
    }


# --- the node process, seen through /proc ----------------------------------------------------


def _stat_fields(stat_path: Path) -> tuple[str, list[str]]:
    """(comm, the fields after it) of a /proc stat file; comm may hold spaces and parens."""
    text = stat_path.read_text()
    open_paren, close_paren = text.index("("), text.rindex(")")
    return text[open_paren + 1 : close_paren], text[close_paren + 2 :].split()


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, all its threads included."""
    _, fields = _stat_fields(Path(f"/proc/{pid}/stat"))
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS_PER_S


def thread_cpu_seconds(pid: int) -> dict[int, tuple[str, float]]:
    """{thread id: (thread name, utime + stime)} for every thread of a process."""
    threads = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, ValueError):
            name, fields = _stat_fields(task / "stat")
            threads[int(task.name)] = (
                name,
                (int(fields[11]) + int(fields[12])) / CLOCK_TICKS_PER_S,
            )
    return threads


def process_cpu_seconds() -> dict[int, tuple[str, float]]:
    """{pid: (command name, utime + stime)} of every process on the machine."""
    processes = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError):
                name, fields = _stat_fields(entry / "stat")
                processes[int(entry.name)] = (
                    name,
                    (int(fields[11]) + int(fields[12])) / CLOCK_TICKS_PER_S,
                )
    return processes


def busiest_others(
    before: dict[int, tuple[str, float]],
    after: dict[int, tuple[str, float]],
    ours: set[int],
    window_s: float,
) -> list[tuple[str, float]]:
    """('name[pid]', cores) of the processes that are not ours and used the most CPU (those
    that came and went within the window are not seen)."""
    others = []
    for pid, (name, seconds) in after.items():
        if pid in ours:
            continue
        cores = (seconds - before.get(pid, (name, 0.0))[1]) / window_s
        if cores >= 0.01:
            others.append((f"{name}[{pid}]", cores))
    return sorted(others, key=lambda item: -item[1])[:OTHER_PROCESSES_LISTED]


def memory_kib(pid: int, field_name: str) -> int:
    """A `Vm...` line of /proc/PID/status, in KiB (VmHWM: peak RSS, VmRSS: current RSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise LookupError(f"/proc/{pid}/status has no {field_name}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_base_port(nodes: int) -> int:
    """A base port where every port `init_consortium` gives the nodes is free."""
    try:
        from provledger.cli.consortium import consortium_ports
    except ImportError:  # revisions before the REST API used one port per node

        def consortium_ports(base_port: int, nodes: int) -> list[int]:
            return [base_port + index for index in range(nodes)]

    for _ in range(100):
        base = free_port()
        wanted = consortium_ports(base, nodes)
        if max(wanted) < 65536 and all(port_free(port) for port in wanted):
            return base
    raise BenchmarkError("found no free ports on 127.0.0.1 for the consortium")


def log_tail(log_path: Path) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(log_path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:])
    return "(no log)"


@contextlib.contextmanager
def node_process(
    config: Path, log_path: Path, profile_path: Path | None, profile_clock: str = "cpu"
) -> Iterator[subprocess.Popen[bytes]]:
    """A node process on `config`; stopped by its PID on the way out, whatever happened."""
    if profile_path is None:
        command = [sys.executable, "-m", "provledger.cli.main", "node", "run"]
        command += ["--config", str(config)]
    else:
        command = [sys.executable, str(PROFILED_NODE_SCRIPT), "--config", str(config)]
        command += ["--out", str(profile_path), "--clock", profile_clock]
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
        try:
            yield process
        finally:
            stop_process(process)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=NODE_STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        print(f"node (pid {process.pid}) ignored SIGTERM; killing it", file=sys.stderr)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()


def wait_until_serving(address: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + NODE_START_TIMEOUT_S
    with grpc.insecure_channel(address, options=CHANNEL_OPTIONS) as channel:
        stub = api_pb2_grpc.LedgerServiceStub(channel)
        while True:
            if process.poll() is not None:
                raise BenchmarkError(f"the node exited at start:\n{log_tail(log_path)}")
            try:
                stub.GetCheckpoint(api_pb2.GetCheckpointRequest(), timeout=1)
                return
            except grpc.RpcError as error:
                if error.code() == grpc.StatusCode.FAILED_PRECONDITION:  # empty chain: serving
                    return
            if time.monotonic() > deadline:
                raise BenchmarkError(f"the node did not serve within {NODE_START_TIMEOUT_S} s")
            time.sleep(0.1)


# --- the load streams (one spawned process each) ---------------------------------------------


@dataclass(frozen=True)
class StreamSpec:
    index: int
    address: str
    identity_paths: dict[str, str]
    first_event: int  # this stream's events are numbered first_event .. + event_count - 1
    event_count: int
    batch_size: int
    events_per_s: float  # this stream's share of --rate; 0: as fast as the node answers
    run_tag: str


@dataclass
class StreamResult:
    index: int
    sign_s: float = 0.0
    cpu_s: float = 0.0  # the stream process's CPU during the load
    first_send_s: float = math.inf
    last_accept_s: float = 0.0
    batch_first_send_s: list[float] = field(default_factory=list)
    accepted_ids: list[bytes] = field(default_factory=list)
    accepted_send_s: list[float] = field(default_factory=list)  # aligned with accepted_ids
    accepted_batch: list[int] = field(default_factory=list)  # aligned with accepted_ids
    mempool_full_retries: int = 0
    rejections: Counter[str] = field(default_factory=Counter)


def presign(spec: StreamSpec) -> list[tuple[list[bytes], list[ledger_pb2.SignedEvent]]]:
    """This stream's events, signed and cut into batches of (event ids, signed events)."""
    signers = [
        EventSigner(
            Identity.load(spec.identity_paths[author]),
            first_nonce=1 + spec.index * NONCES_PER_STREAM_MAX,
        )
        for author in AUTHORS
    ]
    batches: list[tuple[list[bytes], list[ledger_pb2.SignedEvent]]] = []
    for start in range(0, spec.event_count, spec.batch_size):
        ids, events = [], []
        for number in range(start, min(start + spec.batch_size, spec.event_count)):
            event_number = spec.first_event + number
            asset_id = f"bench-{spec.run_tag}/asset-{event_number}"
            signed = signers[event_number % len(signers)].event(
                "asset_registered",
                asset_id=asset_id,
                content_digest=hashlib.sha256(asset_id.encode()).digest(),
                classification=ledger_pb2.CLASSIFICATION_GENERAL,
                name=f"benchmark asset {event_number}",
                schema_uri="https://example.org/schemas/benchmark/v1",
            )
            ids.append(event_id(signed.body))
            events.append(signed)
        batches.append((ids, events))
    return batches


def run_stream(spec: StreamSpec, connection: multiprocessing.connection.Connection) -> None:
    """A load process: pre-sign, say "ready", wait for "go", submit everything, send results."""
    try:
        result = StreamResult(index=spec.index)
        started = time.monotonic()
        batches = presign(spec)
        requests = [api_pb2.SubmitEventsRequest(events=events) for _, events in batches]
        result.sign_s = time.monotonic() - started
        channel = grpc.insecure_channel(spec.address, options=CHANNEL_OPTIONS)
        grpc.channel_ready_future(channel).result(timeout=NODE_START_TIMEOUT_S)
        stub = api_pb2_grpc.LedgerServiceStub(channel)
        connection.send(("ready", result.sign_s))
        connection.recv()  # "go"
        cpu_before = resource.getrusage(resource.RUSAGE_SELF)
        go = time.monotonic()
        for batch_index, ((ids, events), request) in enumerate(zip(batches, requests, strict=True)):
            if spec.events_per_s:
                due = go + batch_index * spec.batch_size / spec.events_per_s
                time.sleep(max(0.0, due - time.monotonic()))
            submit_batch(stub, batch_index, ids, events, request, result)
        cpu_after = resource.getrusage(resource.RUSAGE_SELF)
        result.cpu_s = (cpu_after.ru_utime - cpu_before.ru_utime) + (
            cpu_after.ru_stime - cpu_before.ru_stime
        )
        channel.close()
        connection.send(("done", result))
    except BaseException as error:  # report anything to the parent, which stops the run
        connection.send(("error", f"stream {spec.index}: {type(error).__name__}: {error}"))


def submit_batch(
    stub: api_pb2_grpc.LedgerServiceStub,
    batch_index: int,
    ids: list[bytes],
    events: list[ledger_pb2.SignedEvent],
    request: api_pb2.SubmitEventsRequest,
    result: StreamResult,
) -> None:
    """Submit one batch until every event is accepted or rejected for good."""
    pending = list(zip(ids, events, strict=True))
    first_send = time.monotonic()
    result.first_send_s = min(result.first_send_s, first_send)
    result.batch_first_send_s.append(first_send)
    while pending:
        sent = time.monotonic()
        response = stub.SubmitEvents(request, timeout=SUBMIT_TIMEOUT_S)
        answered = time.monotonic()
        retry = []
        for (identifier, signed), outcome in zip(pending, response.results, strict=True):
            if outcome.accepted:
                result.accepted_ids.append(identifier)
                result.accepted_send_s.append(sent)
                result.accepted_batch.append(batch_index)
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


# --- watching commits ------------------------------------------------------------------------


class BlockWatcher(threading.Thread):
    """Follows SubscribeBlocks from height 1 and notes when each block arrived."""

    def __init__(self, address: str) -> None:
        super().__init__(name="block-watcher", daemon=True)
        self._channel = grpc.insecure_channel(address, options=CHANNEL_OPTIONS)
        stub = api_pb2_grpc.LedgerServiceStub(self._channel)
        self._call = stub.SubscribeBlocks(api_pb2.SubscribeBlocksRequest(from_height=1))
        self.arrivals: list[tuple[float, ledger_pb2.Block]] = []
        self.events_seen = 0
        self.last_arrival_s = time.monotonic()
        self.error: str | None = None
        self._stopping = False

    def run(self) -> None:
        try:
            for block in self._call:
                arrived = time.monotonic()
                self.arrivals.append((arrived, block))
                self.events_seen += len(block.events)
                self.last_arrival_s = arrived
        except grpc.RpcError as error:
            if not self._stopping:
                self.error = f"SubscribeBlocks ended: {error.code().name}: {error.details()}"

    def stop(self) -> None:
        self._stopping = True
        self._call.cancel()
        self.join(timeout=5)
        self._channel.close()


# --- a run -----------------------------------------------------------------------------------


@dataclass
class RunOptions:
    events: int
    streams: int
    batch: int
    rate: float
    profile: bool
    profile_out: Path | None
    profile_clock: str
    wait_quiet_s: float
    source: str | None
    repeat: int
    retry_disturbed: int
    keep: bool
    report: bool
    json_out: Path | None


@dataclass
class Measurement:
    events_submitted: int
    events_accepted: int
    events_committed: int
    blocks: int
    block_events_max: int
    log_size: int
    elapsed_s: float
    committed_per_s: float
    accepted_per_s: float
    batch_latency_ms: dict[str, float]
    event_latency_ms: dict[str, float]
    mempool_full_retries: int
    rejections: dict[str, int]
    node_cpu_s: float
    rate_by_fifth: list[float]  # committed events/s over each fifth of the events, in order
    node_cores_used: float
    node_cpu_us_per_event: float  # all threads; robust to a busy machine, unlike events/s
    main_cpu_us_per_event: float  # the event loop's thread alone
    node_peak_rss_mib: float
    node_threads: list[tuple[str, float]]
    client_cpu_s: float
    other_cores: float  # CPU other processes on the machine used during the load, in cores
    busiest_others: list[tuple[str, float]]  # ("name[pid]", cores), the busiest first
    sign_s: float


def split_events(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if index < total % parts else 0) for index in range(parts)]


def run_benchmark(options: RunOptions, workdir: Path) -> Measurement:
    layout = init_consortium(workdir / "consortium", nodes=1, base_port=free_base_port(1))
    address = layout.grpc_addresses[0]
    log_path = workdir / "node-0.log"
    run_tag = format(time.time_ns() // 1_000_000, "x")
    counts = split_events(options.events, options.streams)
    context = multiprocessing.get_context("spawn")  # gRPC and fork do not mix
    streams: list[tuple[multiprocessing.process.BaseProcess, multiprocessing.connection.Connection]]
    streams = []
    print(
        f"pre-signing {options.events:,} events in {options.streams} processes; "
        f"starting the node (log: {log_path})",
        flush=True,
    )
    signing_started = time.monotonic()
    try:
        for index, count in enumerate(counts):
            spec = StreamSpec(
                index=index,
                address=address,
                identity_paths={author: str(layout.identities[author]) for author in AUTHORS},
                first_event=sum(counts[:index]),
                event_count=count,
                batch_size=options.batch,
                events_per_s=options.rate / options.streams if options.rate else 0.0,
                run_tag=run_tag,
            )
            parent_end, child_end = context.Pipe()
            process = context.Process(target=run_stream, args=(spec, child_end), daemon=True)
            process.start()
            child_end.close()
            streams.append((process, parent_end))
        with node_process(
            layout.node_configs[0],
            log_path,
            options.profile_out if options.profile else None,
            options.profile_clock,
        ) as node:
            wait_until_serving(address, node, log_path)
            for process, connection in streams:
                if not connection.poll(STREAM_READY_TIMEOUT_S):
                    raise BenchmarkError(f"stream process {process.pid} never became ready")
                message = connection.recv()
                if message[0] != "ready":
                    raise BenchmarkError(message[1])
            sign_s = time.monotonic() - signing_started
            print(f"pre-signed in {sign_s:.1f} s; node pid {node.pid}; load starts", flush=True)
            measurement = drive_load(options, address, node, log_path, streams, sign_s)
        return measurement
    finally:
        for process, connection in streams:
            connection.close()
            if process.is_alive():
                process.terminate()
            process.join(timeout=5)


def drive_load(
    options: RunOptions,
    address: str,
    node: subprocess.Popen[bytes],
    log_path: Path,
    streams: list[
        tuple[multiprocessing.process.BaseProcess, multiprocessing.connection.Connection]
    ],
    sign_s: float,
) -> Measurement:
    watcher = BlockWatcher(address)
    watcher.start()
    try:
        node_cpu_before = cpu_seconds(node.pid)
        node_threads_before = thread_cpu_seconds(node.pid)
        client_cpu_before = resource.getrusage(resource.RUSAGE_SELF)
        machine_busy_before = machine_busy_seconds()
        processes_before = process_cpu_seconds()
        go = time.monotonic()
        for _, connection in streams:
            connection.send("go")
        results = collect_stream_results(streams, watcher, node, log_path, go)
        accepted = sum(len(r.accepted_ids) for r in results)
        wait_for_commits(watcher, accepted, node, log_path, go)
        node_cpu_s = cpu_seconds(node.pid) - node_cpu_before
        machine_busy_s = machine_busy_seconds() - machine_busy_before
        window_s = time.monotonic() - go
        processes_after = process_cpu_seconds()
        node_threads_after = thread_cpu_seconds(node.pid)
        peak_rss_kib = memory_kib(node.pid, "VmHWM")
        client_cpu_after = resource.getrusage(resource.RUSAGE_SELF)
        log_size = committed_log_size(address)
    finally:
        watcher.stop()
    client_cpu_s = (
        sum(r.cpu_s for r in results)
        + (client_cpu_after.ru_utime - client_cpu_before.ru_utime)
        + (client_cpu_after.ru_stime - client_cpu_before.ru_stime)
    )
    return measure(
        results=results,
        watcher=watcher,
        options=options,
        log_size=log_size,
        node_cpu_s=node_cpu_s,
        peak_rss_kib=peak_rss_kib,
        node_threads=thread_deltas(
            node.pid,
            node_threads_before,
            node_threads_after,
            python_thread_names(options.profile_out if options.profile else None),
        ),
        client_cpu_s=client_cpu_s,
        other_cores=max(0.0, machine_busy_s - node_cpu_s - client_cpu_s) / window_s,
        busiest_others=busiest_others(
            processes_before,
            processes_after,
            {os.getpid(), node.pid, *(process.pid for process, _ in streams)},
            window_s,
        ),
        sign_s=sign_s,
    )


def committed_log_size(address: str) -> int:
    """The log size at the node's head, from GetCheckpoint (0 for an empty chain)."""
    with grpc.insecure_channel(address, options=CHANNEL_OPTIONS) as channel:
        try:
            checkpoint = api_pb2_grpc.LedgerServiceStub(channel).GetCheckpoint(
                api_pb2.GetCheckpointRequest(), timeout=10
            )
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.FAILED_PRECONDITION:  # no block yet
                return 0
            raise
    return ledger_pb2.BlockHeader.FromString(checkpoint.header).log_size


def collect_stream_results(
    streams: list[
        tuple[multiprocessing.process.BaseProcess, multiprocessing.connection.Connection]
    ],
    watcher: BlockWatcher,
    node: subprocess.Popen[bytes],
    log_path: Path,
    go: float,
) -> list[StreamResult]:
    waiting = {connection: process for process, connection in streams}
    results: list[StreamResult] = []
    last_progress = go
    while waiting:
        for connection in multiprocessing.connection.wait(list(waiting), timeout=1.0):
            try:
                kind, payload = connection.recv()
            except EOFError:
                raise BenchmarkError(f"stream process {waiting[connection].pid} died") from None
            if kind != "done":
                raise BenchmarkError(payload)
            results.append(payload)
            del waiting[connection]
        if node.poll() is not None:
            raise BenchmarkError(f"the node exited during the load:\n{log_tail(log_path)}")
        if watcher.error is not None:
            raise BenchmarkError(watcher.error)
        last_progress = print_progress(watcher, go, last_progress)
    return sorted(results, key=lambda r: r.index)


def wait_for_commits(
    watcher: BlockWatcher,
    accepted: int,
    node: subprocess.Popen[bytes],
    log_path: Path,
    go: float,
) -> None:
    last_progress = time.monotonic()
    while watcher.events_seen < accepted:
        if node.poll() is not None:
            raise BenchmarkError(f"the node exited before committing:\n{log_tail(log_path)}")
        if watcher.error is not None:
            raise BenchmarkError(watcher.error)
        if time.monotonic() - watcher.last_arrival_s > COMMIT_IDLE_TIMEOUT_S:
            print(
                f"no block for {COMMIT_IDLE_TIMEOUT_S} s with {accepted - watcher.events_seen:,}"
                " accepted events uncommitted; giving up (see the node log)",
                file=sys.stderr,
            )
            return
        time.sleep(0.01)
        last_progress = print_progress(watcher, go, last_progress)


def print_progress(watcher: BlockWatcher, go: float, last_progress: float) -> float:
    now = time.monotonic()
    if now - last_progress < PROGRESS_INTERVAL_S:
        return last_progress
    print(
        f"  {now - go:6.1f} s: {watcher.events_seen:,} events committed in "
        f"{len(watcher.arrivals)} blocks",
        flush=True,
    )
    return now


def python_thread_names(profile_out: Path | None) -> dict[int, str]:
    """{native id: name} of the node's Python threads, when it runs under the profiling
    wrapper (which records them, see bench/_profiled_node.py); empty otherwise."""
    if profile_out is None:
        return {}
    names = {}
    with contextlib.suppress(OSError):
        for line in Path(f"{profile_out}.threads").read_text().splitlines():
            thread_id, _, name = line.partition("\t")
            names[int(thread_id)] = name
    return names


def thread_deltas(
    pid: int,
    before: dict[int, tuple[str, float]],
    after: dict[int, tuple[str, float]],
    python_threads: dict[int, str],
) -> list[tuple[str, float]]:
    """(label, CPU seconds during the load) per node thread that used any, busiest first.

    Labels: `main` is the event loop's thread; others are OS-name-TID. Python 3.11 does not
    name OS threads and a thread started from C inherits its creator's name, so Python's
    worker threads (the asyncio executor that runs `Store.commit_block`, gRPC's poller) and
    LevelDB's compaction thread are all "python". Under `--profile` the wrapper tells which
    are Python's: they become `py:NAME-TID`, and the other "python" ones `C-TID`."""
    deltas = []
    for thread_id, (name, seconds) in after.items():
        spent = seconds - before.get(thread_id, (name, 0.0))[1]
        if spent <= 0:
            continue
        if thread_id == pid:
            label = "main"
        elif thread_id in python_threads:
            label = f"py:{python_threads[thread_id]}-{thread_id}"
        elif python_threads and name == "python":
            label = f"C-{thread_id}"
        else:
            label = f"{name}-{thread_id}"
        if thread_id not in before:
            label += " (new)"
        deltas.append((label, spent))
    return sorted(deltas, key=lambda item: -item[1])


def rates_by_part(
    arrivals: list[tuple[float, ledger_pb2.Block]], start_s: float, parts: int
) -> list[float]:
    """Committed events/s over each of `parts` equal shares of the committed events, in
    order: does the node slow down as its ledger grows?"""
    total = sum(len(block.events) for _, block in arrivals)
    if total == 0:
        return []
    rates, committed, part_start_s, part_start_events = [], 0, start_s, 0
    for arrived, block in arrivals:
        committed += len(block.events)
        if committed >= total * (len(rates) + 1) / parts:
            span_s = arrived - part_start_s
            rates.append((committed - part_start_events) / span_s if span_s > 0 else math.nan)
            part_start_s, part_start_events = arrived, committed
    return rates


def measure(
    *,
    results: list[StreamResult],
    watcher: BlockWatcher,
    options: RunOptions,
    log_size: int,
    node_cpu_s: float,
    peak_rss_kib: int,
    node_threads: list[tuple[str, float]],
    client_cpu_s: float,
    other_cores: float,
    busiest_others: list[tuple[str, float]],
    sign_s: float,
) -> Measurement:
    committed_at: dict[bytes, float] = {}
    block_events_max = 0
    for arrived, block in watcher.arrivals:
        block_events_max = max(block_events_max, len(block.events))
        for signed in block.events:
            committed_at[event_id(signed.body)] = arrived
    first_send = min(r.first_send_s for r in results)
    accepted = sum(len(r.accepted_ids) for r in results)
    batch_latencies: list[float] = []
    event_latencies: list[float] = []
    committed = 0
    last_commit = first_send
    for result in results:
        batch_done: dict[int, float] = {}
        for identifier, sent, batch_index in zip(
            result.accepted_ids, result.accepted_send_s, result.accepted_batch, strict=True
        ):
            arrived = committed_at.get(identifier)
            if arrived is None:
                continue
            committed += 1
            last_commit = max(last_commit, arrived)
            event_latencies.append(arrived - sent)
            batch_done[batch_index] = max(batch_done.get(batch_index, 0.0), arrived)
        for batch_index, done in batch_done.items():
            batch_latencies.append(done - result.batch_first_send_s[batch_index])
    elapsed_s = last_commit - first_send
    rate_by_fifth = rates_by_part(watcher.arrivals, first_send, RUN_PARTS)
    last_accept = max(r.last_accept_s for r in results)
    rejections: Counter[str] = Counter()
    for result in results:
        rejections.update(result.rejections)
    return Measurement(
        events_submitted=options.events,
        events_accepted=accepted,
        events_committed=committed,
        blocks=len(watcher.arrivals),
        block_events_max=block_events_max,
        log_size=log_size,
        elapsed_s=elapsed_s,
        committed_per_s=committed / elapsed_s if elapsed_s > 0 else 0.0,
        accepted_per_s=accepted / (last_accept - first_send) if last_accept > first_send else 0.0,
        batch_latency_ms=percentiles_ms(batch_latencies),
        event_latency_ms=percentiles_ms(event_latencies),
        mempool_full_retries=sum(r.mempool_full_retries for r in results),
        rejections=dict(rejections),
        node_cpu_s=node_cpu_s,
        rate_by_fifth=rate_by_fifth,
        node_cores_used=node_cpu_s / elapsed_s if elapsed_s > 0 else 0.0,
        node_cpu_us_per_event=node_cpu_s / committed * 1e6 if committed else math.nan,
        main_cpu_us_per_event=(
            sum(seconds for label, seconds in node_threads if label == "main") / committed * 1e6
            if committed
            else math.nan
        ),
        node_peak_rss_mib=peak_rss_kib / 1024,
        node_threads=node_threads,
        client_cpu_s=client_cpu_s,
        other_cores=other_cores,
        busiest_others=busiest_others,
        sign_s=sign_s,
    )


# --- output ----------------------------------------------------------------------------------


def load_description(options: RunOptions) -> str:
    pace = f"offered at {options.rate:,.0f} events/s" if options.rate else "as fast as accepted"
    return (
        f"{options.events:,} asset_registered events from {len(AUTHORS)} members, "
        f"{options.streams} streams, SubmitEvents batches of {options.batch}, {pace}"
    )


def exact_command(options: RunOptions) -> str:
    python = Path(sys.executable)
    with contextlib.suppress(ValueError):
        python = python.relative_to(REPO_ROOT)
    arguments = [str(python), "bench/single_node.py", "--events", str(options.events)]
    arguments += ["--streams", str(options.streams), "--batch", str(options.batch)]
    if options.rate:
        arguments += ["--rate", f"{options.rate:g}"]
    if options.profile:
        arguments += ["--profile", "--profile-clock", options.profile_clock]
    if options.repeat > 1:
        arguments += ["--repeat", str(options.repeat)]
    if os.environ.get(SOURCE_ENV):
        arguments += ["--source", os.environ[SOURCE_ENV]]
    return shlex.join(arguments)


def figures_lines(measurement: Measurement, machine: dict[str, str | int]) -> list[str]:
    m = measurement
    cores = machine["cpus_usable"]
    batch, event = m.batch_latency_ms, m.event_latency_ms
    rejected = ", ".join(f"{code} {count}" for code, count in m.rejections.items()) or "none"
    threads = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in m.node_threads[:6])
    others = ", ".join(f"{name} {cores:.2f}" for name, cores in m.busiest_others)
    fifths = " / ".join(f"{rate:,.0f}" for rate in m.rate_by_fifth)
    return [
        f"committed             {m.committed_per_s:,.0f} events/s "
        f"({m.events_committed:,} events, first submit -> last commit {m.elapsed_s:.2f} s)",
        f"by fifth of the run   {fifths} events/s (does it slow down as the ledger grows?)",
        f"admitted              {m.accepted_per_s:,.0f} events/s "
        f"(first submit -> last SubmitEvents answer)",
        f"latency per batch     p50 {batch['p50']:,.0f} ms, p90 {batch['p90']:,.0f} ms, "
        f"p99 {batch['p99']:,.0f} ms, max {batch['max']:,.0f} ms (submit -> block observed)",
        f"latency per event     p50 {event['p50']:,.0f} ms, p90 {event['p90']:,.0f} ms, "
        f"p99 {event['p99']:,.0f} ms, max {event['max']:,.0f} ms",
        f"blocks                {m.blocks} (up to {m.block_events_max:,} events; "
        f"log size {m.log_size:,})",
        f"node CPU              {m.node_cpu_s:.1f} s during the load = "
        f"{m.node_cores_used:.2f} of {cores} cores",
        f"node CPU per event    {m.node_cpu_us_per_event:,.0f} µs, of which the event loop's "
        f"thread {m.main_cpu_us_per_event:,.0f} µs (compare these on a busy machine)",
        f"node peak RSS         {m.node_peak_rss_mib:,.0f} MiB (VmHWM)",
        f"node threads (CPU)    {threads}",
        f"load client CPU       {m.client_cpu_s:.1f} s (streams + block watcher)",
        f"other processes       {m.other_cores:.2f} cores during the load"
        + (" -- DISTURBED: figures are low" if m.other_cores > QUIET_CORES_MAX else "")
        + (f" (busiest: {others})" if others else ""),
        f"mempool_full retries  {m.mempool_full_retries:,}; other rejections: {rejected}",
        f"pre-signing           {m.sign_s:.1f} s (not timed)",
    ]


def result_summary(measurement: Measurement, options: RunOptions) -> dict[str, object]:
    m = measurement
    return {
        "events": options.events,
        "streams": options.streams,
        "batch": options.batch,
        "rate": options.rate,
        "profiled": options.profile,
        "committed_events_per_s": round(m.committed_per_s),
        "admitted_events_per_s": round(m.accepted_per_s),
        "committed_events_per_s_by_fifth": [round(rate) for rate in m.rate_by_fifth],
        "batch_latency_p50_ms": round(m.batch_latency_ms["p50"]),
        "batch_latency_p99_ms": round(m.batch_latency_ms["p99"]),
        "event_latency_p50_ms": round(m.event_latency_ms["p50"]),
        "event_latency_p99_ms": round(m.event_latency_ms["p99"]),
        "node_cpu_s": round(m.node_cpu_s, 2),
        "node_cpu_us_per_event": round(m.node_cpu_us_per_event),
        "main_thread_cpu_us_per_event": round(m.main_cpu_us_per_event),
        "node_peak_rss_mib": round(m.node_peak_rss_mib),
        "other_processes_cores": round(m.other_cores, 2),
        "mempool_full_retries": m.mempool_full_retries,
        "committed": m.events_committed,
        "accepted": m.events_accepted,
    }


def single_node_section(
    measurement: Measurement,
    runs_per_s: list[float],
    options: RunOptions,
    machine: dict[str, str | int],
) -> str:
    m = measurement
    batch, event = m.batch_latency_ms, m.event_latency_ms
    rejected = ", ".join(f"`{code}` {count}" for code, count in m.rejections.items()) or "none"
    threads = ", ".join(f"`{name}` {seconds:.1f} s" for name, seconds in m.node_threads[:6])
    others = ", ".join(f"`{name}` {cores:.2f}" for name, cores in m.busiest_others)
    cores = machine["cpus_usable"]
    return "\n".join(
        [
            f"Measured {machine['date']} at commit {machine['commit']}.",
            "",
            "| figure | value |",
            "|---|---|",
            f"| committed events/s | **{m.committed_per_s:,.0f}** "
            f"({m.events_committed:,} events in {m.elapsed_s:.2f} s; "
            + (f"offered {options.rate:,.0f}/s)" if options.rate else "target ≥ 15,000)")
            + (
                f"; the median of {len(runs_per_s)} runs: "
                + ", ".join(f"{value:,.0f}" for value in runs_per_s)
                if len(runs_per_s) > 1
                else ""
            )
            + " |",
            f"| committed events/s over each fifth of the events, in order | "
            f"{' / '.join(f'{rate:,.0f}' for rate in m.rate_by_fifth)} |",
            f"| admitted events/s (SubmitEvents answered) | {m.accepted_per_s:,.0f} |",
            f"| submit→commit latency per batch, p50 / p90 / p99 / max | "
            f"{batch['p50']:,.0f} / {batch['p90']:,.0f} / {batch['p99']:,.0f} / "
            f"{batch['max']:,.0f} ms |",
            f"| submit→commit latency per event, p50 / p90 / p99 / max | "
            f"{event['p50']:,.0f} / {event['p90']:,.0f} / {event['p99']:,.0f} / "
            f"{event['max']:,.0f} ms |",
            f"| blocks | {m.blocks} (up to {m.block_events_max:,} events each) |",
            f"| node CPU during the load | {m.node_cpu_s:.1f} s = {m.node_cores_used:.2f} of "
            f"{cores} cores |",
            f"| node CPU per committed event (all threads / event-loop thread) | "
            f"{m.node_cpu_us_per_event:,.0f} / {m.main_cpu_us_per_event:,.0f} µs |",
            f"| node CPU by thread | {threads} |",
            f"| node peak RSS (VmHWM) | {m.node_peak_rss_mib:,.0f} MiB |",
            f"| load client CPU (streams + watcher) | {m.client_cpu_s:.1f} s |",
            f"| CPU used by other processes during the load | {m.other_cores:.2f} cores"
            + (f" (busiest: {others})" if others else "")
            + " |",
            f"| `mempool_full` results retried | {m.mempool_full_retries:,} |",
            f"| other rejections | {rejected} |",
            "",
            f"Command: `{exact_command(options)}`",
            "",
            f"Load: {load_description(options)}.",
            "",
            f"Machine: {machine['cpus']} CPUs ({machine['cpus_usable']} usable), "
            f"{machine['cpu_model']}; {machine['kernel']}; Python {machine['python']}. "
            "The load client runs on the same machine and its CPU is CPU the node does not get.",
            "",
            "Method: a fresh one-validator consortium in a temporary folder and a real node "
            "process (`provledger node run`). Each stream is a spawned process with its own gRPC "
            "channel; all events are pre-signed before the clock starts. Streams submit their "
            "batches one call after the other; a `mempool_full` result is retried after "
            f"{MEMPOOL_FULL_BACKOFF_S * 1000:.0f} ms. A `SubscribeBlocks` stream opened before "
            "the load notes when each block arrives. Throughput is committed events over the "
            "time from the first submit to the arrival of the block holding the last event. "
            "Latency per batch runs from its first send to the arrival of the block holding its "
            "last event (retries included); per event, from the send that got it accepted to its "
            "block's arrival; nearest-rank percentiles. Node CPU is utime+stime from "
            "`/proc/PID/stat` (all threads) between the start of the load and the last commit; "
            "peak RSS is `VmHWM` from `/proc/PID/status`. Node threads: `main` runs the event "
            "loop (gRPC handlers, admission, consensus, block execution); the others are named "
            'as the OS sees them, "(new)" when started during the load. Python\'s worker '
            "threads and LevelDB's compaction thread all show as `python` (see the profile "
            "section, which tells them apart). CPU used by other processes is the machine's "
            "busy time (`/proc/stat`) minus the node's and the load client's.",
        ]
    )


def update_report(key: str, title: str, body: str) -> None:
    """Rewrite one marked section of docs/PERFORMANCE.md, leaving the rest as it is."""
    REPORT_PATH.parent.mkdir(parents=True, exist_ok=True)
    text = REPORT_PATH.read_text() if REPORT_PATH.exists() else REPORT_INTRO
    updated = replace_section(text, key, title, body)
    scratch = REPORT_PATH.with_name(f".{REPORT_PATH.name}.{os.getpid()}.tmp")
    scratch.write_text(updated)
    os.replace(scratch, REPORT_PATH)
    print(f"updated {REPORT_PATH.relative_to(REPO_ROOT)} (section {title!r})")


# --- the profile -----------------------------------------------------------------------------

_STDLIB = sysconfig.get_paths()["stdlib"]

# Inclusive CPU of the node's main jobs: (label, file suffix, function name). Overlapping;
# each is the cumulative time of one function over all its callers.
PROFILE_PLUMBING_PATHS = (
    "/asyncio/",
    "/concurrent/futures/",
    "threading.py",
    "selectors.py",
    "cli/main.py",
    "node/server.py",
    "_profiled_node.py",
)
PROFILE_JOBS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    # (label, the first (file suffix, function) that the profile holds); leading spaces nest.
    ("SubmitEvents handler (admission of a batch)", (("node/grpc_api.py", "SubmitEvents"),)),
    (
        "  admission checks (decode, duplicate check, rules)",
        (("node/application.py", "check"), ("node/ledger.py", "check")),
    ),
    ("    events.decode (protobuf parse, field checks)", (("protocol/events.py", "decode"),)),
    (
        "    rules.authenticate (member lookup, Ed25519 verify)",
        (("protocol/rules.py", "authenticate"),),
    ),
    ("      crypto.verify (PyNaCl crypto_sign_open)", (("protocol/crypto.py", "verify"),)),
    ("    Store.has_event (LevelDB get)", (("node/store.py", "has_event"),)),
    (
        "consensus driver (state machine, vote log, proposals)",
        (("node/consensus_driver.py", "_feed"),),
    ),
    (
        "  block proposal (execute the mempool's oldest events)",
        (("node/application.py", "propose"), ("node/ledger.py", "produce")),
    ),
    (
        "    blocks.execute_block (rules again, Merkle, state root)",
        (("protocol/blocks.py", "execute_block"),),
    ),
    ("  Store.save_signed (vote log: a synced put per vote)", (("node/store.py", "save_signed"),)),
    (
        "Store.commit_block (one synced LevelDB batch, in a worker thread)",
        (("node/store.py", "commit_block"),),
    ),
    (
        "SubscribeBlocks handler (blocks read back for the watcher)",
        (("node/grpc_api.py", "SubscribeBlocks"),),
    ),
    ("  Store.block (event-by-event LevelDB reads)", (("node/store.py", "block"),)),
)


def short_location(file_name: str, line: int, function: str) -> str:
    if file_name == "~":
        return function
    path = file_name
    if "/proto/provledger/" in path:  # a revision extracted by --source
        path = path.split("/proto/provledger/", 1)[1]
    elif "site-packages/" in path:
        path = path.split("site-packages/", 1)[1]
    elif path.startswith(str(REPO_ROOT)):
        path = os.path.relpath(path, REPO_ROOT)
    elif path.startswith(_STDLIB):
        path = os.path.relpath(path, _STDLIB)
    return f"{path}:{line}({function})"


def is_plumbing(file_name: str, function: str) -> bool:
    """Entry points, the event loop and thread machinery: they hold everything cumulatively."""
    return function == "<method 'run' of '_contextvars.Context' objects>" or any(
        part in file_name for part in PROFILE_PLUMBING_PATHS
    )


def profile_rows(
    stats: pstats.Stats, sort_index: int, count: int, skip_plumbing: bool = False
) -> list[tuple[str, int, float, float]]:
    """(location, calls, tottime, cumtime) of the top `count` functions; sort_index 2 is
    tottime, 3 cumtime."""
    rows = []
    for (file_name, line, function), entry in stats.stats.items():  # type: ignore[attr-defined]
        if skip_plumbing and is_plumbing(file_name, function):
            continue
        _, calls, tottime, cumtime, _ = entry
        rows.append((short_location(file_name, line, function), calls, tottime, cumtime))
    rows.sort(key=lambda row: -row[sort_index])
    return rows[:count]


def job_times(stats: pstats.Stats) -> list[tuple[str, float]]:
    """(label, inclusive CPU) of each job in PROFILE_JOBS that the profiled node has."""
    times = []
    for label, candidates in PROFILE_JOBS:
        for suffix, function in candidates:
            cumulative = sum(
                entry[3]
                for (file_name, _, name), entry in stats.stats.items()  # type: ignore[attr-defined]
                if name == function and file_name.endswith(suffix)
            )
            if cumulative > 0:
                times.append((label, cumulative))
                break
    return times


def print_profile(stats: pstats.Stats) -> None:
    for order in ("cumulative", "tottime"):
        print(f"\n--- node profile: top {PROFILE_ENTRIES_PRINTED} by {order} ---")
        stats.sort_stats(order).print_stats(PROFILE_ENTRIES_PRINTED)


def profile_section(
    stats: pstats.Stats,
    measurement: Measurement,
    options: RunOptions,
    machine: dict[str, str | int],
) -> str:
    total = stats.total_tt  # type: ignore[attr-defined]
    threads = ", ".join(
        f"`{name}` {seconds:.1f} s" for name, seconds in measurement.node_threads[:4]
    )
    clock = (
        "per-thread CPU clock"
        if options.profile_clock == "cpu"
        else "wall clock: waits for the GIL count as time"
    )

    def share(seconds: float) -> str:
        return f"{100 * seconds / total:.0f}%" if total else "-"

    lines = [
        f"Profiled {machine['date']} at commit {machine['commit']}: `{exact_command(options)}` "
        f"({load_description(options)}). The node ran under cProfile "
        f"(`bench/_profiled_node.py`, {clock}) in each of its Python threads: the event "
        "loop and the worker that commits blocks. The profile holds "
        f"{total:.1f} s; `/proc` counted {measurement.node_cpu_s:.1f} s of CPU for the whole "
        f"process during the load, by thread: {threads} (`C-` threads were started from C: "
        "LevelDB's compaction; they and gRPC's own threads are not profiled). "
        f"Under the profiler the node committed {measurement.committed_per_s:,.0f} events/s "
        "(not comparable with an unprofiled run).",
        "",
        "Inclusive CPU of the node's main jobs (cumulative time, so nested rows overlap):",
        "",
        "| job | CPU s | share |",
        "|---|---:|---:|",
    ]
    for label, seconds in job_times(stats):
        indent = "&nbsp;" * (len(label) - len(label.lstrip()))
        lines.append(f"| {indent}{label.strip()} | {seconds:.2f} | {share(seconds)} |")
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
        f"Top {PROFILE_ENTRIES_REPORTED} functions by cumulative time (entry points, the "
        "event loop and thread machinery left out):",
        "",
        "| function | calls | cumtime s | share |",
        "|---|---:|---:|---:|",
    ]
    for location, calls, _, cumtime in profile_rows(
        stats, 3, PROFILE_ENTRIES_REPORTED, skip_plumbing=True
    ):
        lines.append(f"| `{location}` | {calls:,} | {cumtime:.2f} | {share(cumtime)} |")
    return "\n".join(lines)


# --- the command -----------------------------------------------------------------------------


def parse_options(argv: Sequence[str] | None) -> RunOptions:
    parser = argparse.ArgumentParser(
        description="Benchmark one provledger node: committed events/s, submit->commit "
        "latency, node CPU and peak RSS; figures go to docs/PERFORMANCE.md."
    )
    parser.add_argument("--events", type=int, default=100_000, help="events to commit")
    parser.add_argument("--streams", type=int, default=4, help="concurrent submit processes")
    parser.add_argument("--batch", type=int, default=200, help="events per SubmitEvents call")
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="offered load in events/s over all streams; "
        "0 (the default): each stream submits as fast as the node answers",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="run the node under cProfile and report where "
        "its CPU goes (throughput figures are then not written to the report)",
    )
    parser.add_argument("--profile-out", type=Path, help="the pstats file (default: in /tmp)")
    parser.add_argument(
        "--profile-clock",
        choices=("cpu", "wall"),
        default="cpu",
        help="cpu: per-thread CPU time (where the CPU goes; more overhead); wall: cProfile's "
        "own wall clock (cheaper; a thread's waits for the GIL count as time in the function)",
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="first wait up to this long for other processes to leave the CPUs alone "
        f"(at most {QUIET_CORES_MAX} cores busy); the CPU they use during the load is reported",
    )
    parser.add_argument(
        "--source",
        metavar="REVISION",
        help="benchmark this git revision's node and client code (e.g. HEAD, HEAD~1, a hash) "
        "instead of the working tree, which other work may be changing",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="runs, each on a fresh node; the run with the median throughput is reported",
    )
    parser.add_argument(
        "--retry-disturbed",
        type=int,
        default=0,
        metavar="N",
        help=f"run again, up to N times, a run during which other processes used more than "
        f"{QUIET_CORES_MAX} cores (the figures of the last attempt are kept either way)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--no-report", action="store_true", help="do not touch PERFORMANCE.md")
    parser.add_argument("--json", type=Path, help="also write the figures here as JSON")
    args = parser.parse_args(argv)
    if args.events < 1 or args.streams < 1:
        parser.error("--events and --streams must be at least 1")
    if not 1 <= args.batch <= SUBMIT_BATCH_EVENTS_MAX:
        parser.error(f"--batch must be 1..{SUBMIT_BATCH_EVENTS_MAX} (the node's limit)")
    if args.repeat < 1 or (args.profile and args.repeat != 1):
        parser.error("--repeat must be at least 1, and 1 with --profile")
    if args.rate < 0:
        parser.error("--rate must be positive, or 0 for no pacing")
    profile_out = args.profile_out
    if args.profile and profile_out is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        profile_out = Path(tempfile.gettempdir()) / f"provledger-node-{stamp}.pstats"
    return RunOptions(
        events=args.events,
        streams=args.streams,
        batch=args.batch,
        rate=args.rate,
        profile=args.profile,
        profile_out=profile_out.resolve() if profile_out else None,
        profile_clock=args.profile_clock,
        wait_quiet_s=args.wait_quiet,
        source=args.source,
        repeat=args.repeat,
        retry_disturbed=args.retry_disturbed,
        keep=args.keep,
        report=not args.no_report,
        json_out=args.json,
    )


def extract_revision(revision: str, directory: Path) -> tuple[Path, str]:
    """`revision`'s packages, extracted into `directory` and laid out as an import root (the
    `package-dir` mapping of pyproject.toml); (that root, the commit's short hash)."""
    try:
        commit = subprocess.run(
            [
                "git",
                "-C",
                str(REPO_ROOT),
                "rev-parse",
                "--short",
                "--verify",
                f"{revision}^{{commit}}",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        archive = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "archive", "--format=tar", commit, "--", *PACKAGE_DIRS],
            capture_output=True,
            check=True,
        ).stdout
    except subprocess.CalledProcessError as error:
        raise BenchmarkError(f"cannot extract {revision!r}: {error.stderr.strip()}") from None
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(directory, filter="data")
    package = directory / "proto" / "provledger"
    for name in ("protocol", "node", "cli"):
        (directory / name).rename(package / name)
    return directory / "proto", commit


def run_revision(revision: str, argv: Sequence[str]) -> int:
    """Run this benchmark again with `revision`'s code first on the import path, for the
    node, the load client and the block watcher alike (PYTHONPATH precedes the editable
    install's finder). The working tree is not touched; the report still goes to its docs/."""
    directory = Path(tempfile.mkdtemp(prefix="provledger-source-"))
    try:
        import_root, commit = extract_revision(revision, directory)
        print(f"benchmarking commit {commit} (extracted to {directory})", flush=True)
        environment = dict(os.environ)
        environment["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(import_root), environment.get("PYTHONPATH")])
        )
        environment[SOURCE_ENV] = commit
        command = [sys.executable, str(Path(__file__).resolve()), *argv]
        return subprocess.run(command, env=environment, check=False).returncode
    except BenchmarkError as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def without_source_option(argv: Sequence[str]) -> list[str]:
    remaining, skip = [], False
    for argument in argv:
        if skip:
            skip = False
        elif argument == "--source":
            skip = True
        elif not argument.startswith("--source="):
            remaining.append(argument)
    return remaining


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    options = parse_options(arguments)
    if options.source is not None:
        return run_revision(options.source, without_source_option(arguments))
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    if os.environ.get(SOURCE_ENV):
        import provledger.node

        node_package = Path(provledger.node.__file__).resolve()
        if REPO_ROOT / "node" in node_package.parents:
            raise SystemExit(f"--source: the node code still comes from {node_package}")
    machine = describe_machine()
    print(f"provledger single-node benchmark: {load_description(options)}")
    print(
        f"machine: {machine['cpus']} CPUs ({machine['cpus_usable']} usable), "
        f"{machine['cpu_model']}, Python {machine['python']}, commit {machine['commit']}"
    )
    if options.events > MEMPOOL_EVENTS_MAX:
        print(f"note: more events than the mempool holds ({MEMPOOL_EVENTS_MAX:,}); expect retries")
    measurements: list[Measurement] = []
    for run_number in range(1, options.repeat + 1):
        if options.repeat > 1:
            print(f"\n=== run {run_number} of {options.repeat} ===")
        retries_left = options.retry_disturbed
        while True:
            measurement = run_once(options, machine)
            if measurement is None:
                return 1
            if measurement.other_cores <= QUIET_CORES_MAX or retries_left == 0:
                break
            retries_left -= 1
            print(
                f"other processes used {measurement.other_cores:.2f} cores during the run; "
                f"running it again ({retries_left} more retries)"
            )
        measurements.append(measurement)
        if options.repeat > 1:
            print(f"RUN {json.dumps(result_summary(measurement, options), sort_keys=True)}")
        if measurement.events_committed != options.events:
            print(
                f"only {measurement.events_committed:,} of {options.events:,} events were "
                "committed; the report was not updated",
                file=sys.stderr,
            )
            return 1

    # The run with the median throughput stands for all of them (the lower middle one when
    # there is an even number): every figure reported comes from that one run.
    ranked = sorted(measurements, key=lambda m: m.committed_per_s)
    chosen = ranked[(len(ranked) - 1) // 2]
    runs_per_s = [m.committed_per_s for m in measurements]
    summary = result_summary(chosen, options)
    if options.repeat > 1:
        summary["runs_committed_events_per_s"] = [round(value) for value in runs_per_s]
        print(
            f"\nmedian of {options.repeat} runs: {chosen.committed_per_s:,.0f} events/s "
            f"(runs: {', '.join(f'{value:,.0f}' for value in runs_per_s)})"
        )
    print(f"\nRESULT {json.dumps(summary, sort_keys=True)}")
    if options.json_out is not None:
        document = {
            "result": summary,
            "machine": machine,
            "runs": [asdict(m) for m in measurements],
        }
        options.json_out.write_text(json.dumps(document, indent=2) + "\n")

    if options.profile:
        if options.profile_out is None or not options.profile_out.exists():
            print(f"the node wrote no profile to {options.profile_out}", file=sys.stderr)
            return 1
        stats = pstats.Stats(str(options.profile_out))
        print_profile(stats)
        print(f"pstats file: {options.profile_out}")
        if options.report:
            update_report(
                "single_node_profile",
                "Where the time goes (single node)",
                profile_section(stats, chosen, options, machine),
            )
    elif options.report:
        key, title = "single_node", "Single node"
        if options.rate:
            key, title = "single_node_paced", "Single node at a fixed offered load"
        update_report(key, title, single_node_section(chosen, runs_per_s, options, machine))
    return 0


def run_once(options: RunOptions, machine: dict[str, str | int]) -> Measurement | None:
    """One run on a fresh consortium and node; its figures printed. None if it failed."""
    if options.wait_quiet_s > 0:
        cores_busy = wait_until_quiet(options.wait_quiet_s)
        print(f"other processes use {cores_busy:.2f} cores; starting")
    workdir = Path(tempfile.mkdtemp(prefix="provledger-bench-"))
    try:
        measurement = run_benchmark(options, workdir)
    except BenchmarkError as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return None
    finally:
        if options.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    heading = "figures under the profiler (not comparable)" if options.profile else "figures"
    print(f"\n{heading}:")
    for line in figures_lines(measurement, machine):
        print(f"  {line}")
    return measurement


if __name__ == "__main__":
    sys.exit(main())

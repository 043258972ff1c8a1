"""Pre-signed load, submitted by spawned stream processes.

A stream is a process of its own (spawned: gRPC and fork do not mix) with its own gRPC
channel to one node: TLS, trusting the consortium CA whose certificate's path its spec
carries (a spawned process shares nothing else with the parent), and no bearer token, since
submitting needs none (each event is signed by its author). It signs all its events before
anything is timed, says "ready", waits for ("go", start), then submits them with
`SubmitEvents`, one batch after the other, each as soon as the last is answered or paced at
its share of an offered rate; and sends back what it saw. Every event is valid:
`asset_registered` with a fresh asset id, authors round-robin over agency-a, agency-b and
exchange, nonces unique per author (each stream of each phase has a range of its own). A
`mempool_full` result is retried after a short sleep and counted; any other rejection is
counted and reported.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import multiprocessing
import multiprocessing.connection
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness import BenchmarkError
from provledger.cli.client import EventSigner, Identity, LedgerClient
from provledger.protocol.events import event_id
from provledger.v1 import api_pb2, api_pb2_grpc, ledger_pb2

AUTHORS = ("agency-a", "agency-b", "exchange")
STREAMS_PER_PHASE_MAX = 64
NONCES_PER_STREAM_MAX = 1_000_000_000  # stream k of phase p: nonces from (p * 64 + k) * this
CHANNEL_READY_TIMEOUT_S = 120.0
STREAM_READY_TIMEOUT_S = 600.0  # pre-signing 100,000 events takes a while on 2 cores
STREAM_STOP_TIMEOUT_S = 5.0
SUBMIT_TIMEOUT_S = 120.0
MEMPOOL_FULL_BACKOFF_S = 0.05


@dataclass(frozen=True)
class StreamSpec:
    phase: int  # keeps the nonces and asset ids of a run's phases apart
    index: int
    node_index: int  # the node this stream submits to
    address: str
    ca_certificate_path: str  # the consortium CA's certificate, which the channel trusts
    identity_paths: dict[str, str]
    first_event: int  # this stream's events are numbered first_event .. + event_count - 1
    event_count: int
    batch_size: int
    interval_s: float  # between this stream's batches; 0: each as soon as the last is answered
    offset_s: float  # this stream's first batch is due this long after the common start


@dataclass
class BatchRecord:
    first_send_s: float
    accepted_ids: list[bytes] = field(default_factory=list)
    accepted_send_s: list[float] = field(default_factory=list)  # the send that got each in


@dataclass
class StreamResult:
    index: int
    node_index: int
    sign_s: float = 0.0
    first_send_s: float = math.inf
    last_send_s: float = 0.0
    last_accept_s: float = 0.0
    send_lag_max_s: float = 0.0  # paced: how late the latest batch went out, against its due
    batches: list[BatchRecord] = field(default_factory=list)
    mempool_full_retries: int = 0
    rejections: Counter[str] = field(default_factory=Counter)

    @property
    def accepted(self) -> int:
        return sum(len(batch.accepted_ids) for batch in self.batches)


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


@dataclass(frozen=True)
class LoadPlan:
    """One phase's load: how many events, from how many streams, onto which nodes, how."""

    phase: int  # keeps the nonces and asset ids of a run's phases apart
    events: int
    streams: int
    node_indexes: Sequence[int]  # stream k submits to the k-th of these, round-robin
    batch_size: int
    rate_per_s: float = 0.0  # offered over all streams; 0: each as fast as answered
    stagger: bool = True  # paced: spread the streams' first batches over one interval

    @property
    def pace(self) -> str:
        if self.rate_per_s:
            return f"paced at {self.rate_per_s:,.0f} events/s"
        return "as fast as accepted"


def stream_specs(
    plan: LoadPlan,
    addresses: Sequence[str],
    ca_certificate_path: str,
    identity_paths: dict[str, str],
) -> list[StreamSpec]:
    """A spec per stream of `plan`, each onto its node's address under the consortium CA at
    `ca_certificate_path`. With a rate, each stream's batches are paced at its share of it."""
    counts = split_events(plan.events, plan.streams, plan.batch_size)
    interval_s = plan.batch_size * plan.streams / plan.rate_per_s if plan.rate_per_s else 0.0
    specs = []
    for index, count in enumerate(counts):
        node_index = plan.node_indexes[index % len(plan.node_indexes)]
        specs.append(
            StreamSpec(
                phase=plan.phase,
                index=index,
                node_index=node_index,
                address=addresses[node_index],
                ca_certificate_path=ca_certificate_path,
                identity_paths={author: identity_paths[author] for author in AUTHORS},
                first_event=sum(counts[:index]),
                event_count=count,
                batch_size=plan.batch_size,
                interval_s=interval_s,
                offset_s=index * interval_s / plan.streams if plan.stagger else 0.0,
            )
        )
    return specs


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
            asset_id = f"bench/p{spec.phase}/asset-{event_number}"  # a fresh chain each run
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
        batches.append((ids, api_pb2.SubmitEventsRequest(events=events)))
    return batches


def run_stream(spec: StreamSpec, connection: multiprocessing.connection.Connection) -> None:
    """A load process: pre-sign, say "ready", wait for ("go", start), submit, send results."""
    try:
        result = StreamResult(index=spec.index, node_index=spec.node_index)
        started = time.monotonic()
        batches = presign(spec)
        result.sign_s = time.monotonic() - started
        ca_certificate_pem = Path(spec.ca_certificate_path).read_bytes()
        with LedgerClient(spec.address, ca_certificate_pem=ca_certificate_pem) as client:
            client.wait_ready(CHANNEL_READY_TIMEOUT_S)
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
                submit_batch(client.stub, ids, request, result)
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
    batch = BatchRecord(first_send_s=time.monotonic())
    result.first_send_s = min(result.first_send_s, batch.first_send_s)
    while pending:
        sent = result.last_send_s = time.monotonic()
        response = stub.SubmitEvents(request, timeout=SUBMIT_TIMEOUT_S)
        answered = time.monotonic()
        retry = []
        for (identifier, signed), outcome in zip(pending, response.results, strict=True):
            if outcome.accepted:
                batch.accepted_ids.append(identifier)
                batch.accepted_send_s.append(sent)
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
    result.batches.append(batch)


@dataclass
class Stream:
    spec: StreamSpec
    process: multiprocessing.process.BaseProcess
    connection: multiprocessing.connection.Connection

    @property
    def pid(self) -> int:
        if self.process.pid is None:
            raise BenchmarkError(f"stream {self.spec.index} was never started")
        return self.process.pid


@contextlib.contextmanager
def spawned_streams(specs: Sequence[StreamSpec]) -> Iterator[list[Stream]]:
    """One spawned process per spec; ended on the way out."""
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
            stream.process.join(timeout=STREAM_STOP_TIMEOUT_S)


def wait_ready(streams: Sequence[Stream]) -> float:
    """Wait until every stream has pre-signed its events; the longest signing time."""
    sign_s = 0.0
    for stream in streams:
        if not stream.connection.poll(STREAM_READY_TIMEOUT_S):
            raise BenchmarkError(f"stream process {stream.pid} never became ready")
        kind, payload = receive(stream)
        if kind != "ready" or not isinstance(payload, float):
            raise BenchmarkError(str(payload))
        sign_s = max(sign_s, payload)
    return sign_s


def receive(stream: Stream) -> tuple[str, object]:
    """The next message from a stream process: ("ready", sign_s), ("done", StreamResult) or
    ("error", text)."""
    try:
        kind, payload = stream.connection.recv()
    except EOFError:
        raise BenchmarkError(f"stream process {stream.pid} died") from None
    return kind, payload


def collect_results(
    streams: Sequence[Stream], poll_s: float, between_polls: Callable[[], None]
) -> list[StreamResult]:
    """Every stream's result, in stream order; `between_polls` runs every `poll_s` meanwhile
    (to check the nodes and print progress)."""
    waiting = {stream.connection: stream for stream in streams}
    results: list[StreamResult] = []
    while waiting:
        for ready in multiprocessing.connection.wait(list(waiting), timeout=poll_s):
            stream = waiting.pop(ready)  # type: ignore[call-overload]
            kind, payload = receive(stream)
            if kind != "done" or not isinstance(payload, StreamResult):
                raise BenchmarkError(str(payload))
            results.append(payload)
        between_polls()
    return sorted(results, key=lambda result: result.index)

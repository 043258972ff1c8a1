"""A consortium of real node processes for a benchmark run, and reading a node's head.

Each node is a tests/support/processes.py `NodeProcess`: `provledger node run` in a process
group of its own, started on its consortium folder, stopped by its PID (SIGTERM, wait,
SIGKILL, then whatever it left in its group). `running_cluster` builds a fresh consortium
(`init_consortium` on a base port whose ports are all free), starts every node, waits until
each serves, and stops them all on the way out, whatever happened. One node may run under
cProfile instead (bench/_profiled_node.py), which writes its stats when it stops.

A node's client API is served over TLS under the consortium CA, and reads need a member's
bearer token: `reader` is a client that trusts the consortium's CA and reads as its auditor
(what `init_consortium` noted for the consortium's addresses; SubscribeBlocks and whole blocks
are an auditor's read). The load streams, spawned processes that only submit (which needs no
token), are given the CA certificate's path (`Cluster.ca_certificate_path`).

A restarted node has started when its LedgerService is SERVING (`wait_started`), not when
the server's overall health is: grpc_health answers that SERVING from the moment the gRPC
server starts, before the node has started REST and consensus and logged the height it
started at.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2
from support.processes import (
    NodeCluster,
    NodeProcess,
    NodeStartError,
    health_status,
    init_consortium,
    ledger_client,
)

from harness import BENCH_DIR, BenchmarkError
from provledger.cli.client import LedgerClient
from provledger.protocol.blocks import decode_header
from provledger.v1 import api_pb2, ledger_pb2

__all__ = [
    "Cluster",
    "NodeProcess",
    "NodeStartError",
    "ProfiledNode",
    "reader",
    "running_cluster",
    "wait_started",
]

PROFILED_NODE_SCRIPT = BENCH_DIR / "_profiled_node.py"
CHAIN_ID = "provledger-bench"
NODE_START_TIMEOUT_S = 120.0  # several nodes importing on two busy cores
NODE_STOP_TIMEOUT_S = 60.0  # a profiled node writes its stats on the way out
RPC_TIMEOUT_S = 10.0
HEIGHT_POLL_INTERVAL_S = 0.02  # how often a benchmark asks a node for its head
SERVING_POLL_INTERVAL_S = 0.02  # how often `wait_started` asks a node's health
LEDGER_SERVICE = api_pb2.DESCRIPTOR.services_by_name["LedgerService"].full_name


@dataclass(frozen=True)
class ProfiledNode:
    """Which node runs under cProfile, where its pstats go, and its clock ("cpu", "wall")."""

    index: int
    out: Path
    clock: str = "cpu"


@dataclass
class Cluster:
    processes: NodeCluster
    identity_paths: dict[str, str]  # member id -> its key file, as `consortium init` wrote
    ca_certificate_path: str  # the consortium CA's certificate, which every client trusts
    start_s: float = 0.0  # from starting the nodes until every one served
    stopped: set[str] = field(default_factory=set)  # names of the nodes stopped on purpose

    @property
    def nodes(self) -> list[NodeProcess]:
        return self.processes.nodes

    def pids(self) -> list[int]:
        """The running nodes' PIDs."""
        return [node.pid for node in self.processes.live_nodes if node.pid is not None]

    def members(self) -> list[tuple[str, int | None]]:
        """(name, PID or None if it is down) of every node, for `machine.usage_between`."""
        return [(node.name, node.pid if node.running else None) for node in self.nodes]

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
        """Until every running node has committed height `minimum`."""
        try:
            self.processes.wait_for_heights(minimum, timeout_s=timeout_s)
        except AssertionError as error:  # how the tests' waits say they timed out
            raise BenchmarkError(str(error)) from None


@contextlib.contextmanager
def running_cluster(
    workdir: Path, nodes: int, profiled: ProfiledNode | None = None
) -> Iterator[Cluster]:
    """The nodes of a fresh consortium in `workdir`, all serving; every one stopped by its
    PID on the way out (each tried whatever the others do). Logs go to
    `workdir/logs/node-K.log`."""
    layout = init_consortium(workdir, nodes=nodes, chain_id=CHAIN_ID)
    processes = NodeCluster.for_layout(
        layout,
        workdir / "logs",
        start_timeout_s=NODE_START_TIMEOUT_S,
        stop_timeout_s=NODE_STOP_TIMEOUT_S,
    )
    if profiled is not None:
        node = processes[profiled.index]
        node.command = [sys.executable, str(PROFILED_NODE_SCRIPT), "--config", str(node.config)]
        node.command += ["--out", str(profiled.out), "--clock", profiled.clock]
    identities = {member: str(path) for member, path in layout.identities.items()}
    started = time.monotonic()
    with processes:  # started and serving; stopped on the way out
        yield Cluster(
            processes,
            identities,
            str(layout.ca_certificate),
            start_s=time.monotonic() - started,
        )


def reader(address: str) -> LedgerClient:
    """A client of the node at `address` (of a consortium `running_cluster` made): TLS under
    its consortium's CA, reading as its auditor, who may read everything, whole blocks too."""
    return ledger_client(address)


def wait_started(node: NodeProcess, timeout_s: float = NODE_START_TIMEOUT_S) -> None:
    """Until `node` (just started) says its LedgerService is SERVING, which it does last in
    starting, right before it logs the height it started at (raises `NodeStartError` if it
    exits first, `BenchmarkError` past `timeout_s`)."""
    deadline = time.monotonic() + timeout_s
    node.wait_serving(timeout_s)  # the gRPC server answers
    while health_status(node.address, LEDGER_SERVICE) != health_pb2.HealthCheckResponse.SERVING:
        if not node.running:
            raise NodeStartError(f"{node.name} exited while starting\n{node.log_tail()}")
        if time.monotonic() > deadline:
            raise BenchmarkError(
                f"{node.name}'s LedgerService was not SERVING after {timeout_s:.0f} s\n"
                f"{node.log_tail()}"
            )
        time.sleep(SERVING_POLL_INTERVAL_S)


def head_header(client: LedgerClient, height: int = 0) -> ledger_pb2.BlockHeader:
    """The header at `height` (0: the head) through GetCheckpoint; an empty header for an
    empty chain."""
    try:
        checkpoint = client.stub.GetCheckpoint(
            api_pb2.GetCheckpointRequest(height=height), timeout=RPC_TIMEOUT_S
        )
    except grpc.RpcError as error:
        if error.code() == grpc.StatusCode.FAILED_PRECONDITION:  # empty_chain
            return ledger_pb2.BlockHeader()
        raise
    return decode_header(checkpoint.header)

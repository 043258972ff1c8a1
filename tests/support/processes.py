"""Real node processes for integration tests: consortium folders, free ports, start and stop.

A test builds a consortium with `init_consortium` (every node gets its own free port on
127.0.0.1) and runs its nodes as child processes with `NodeProcess` or `NodeCluster`:

    layout = init_consortium(tmp_path, nodes=1)
    with NodeProcess.for_node(layout, 0, tmp_path) as node:
        ...  # node.address is serving gRPC
    # the process is stopped here by its PID, even if the body raised

Invariants:
- every process this module starts is stopped by its PID (SIGTERM, wait, SIGKILL) when its
  context exits, and, as a last resort, when the interpreter exits;
- a start is not done until the node's gRPC health check says SERVING; a start that fails
  raises `NodeStartError` with the tail of the node's log;
- nodes only ever listen on 127.0.0.1.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from provledger.cli import consortium

LOOPBACK = "127.0.0.1"
NODE_START_TIMEOUT_S = 30.0
NODE_STOP_TIMEOUT_S = 10.0
HEALTH_POLL_INTERVAL_S = 0.05
LOG_TAIL_BYTES = 4_000

# Every process started here, by PID, until it is reaped: the atexit safety net.
_running: dict[int, subprocess.Popen[bytes]] = {}


class NodeStartError(RuntimeError):
    """A node did not reach SERVING in time, or exited while starting."""


# --- ports and consortium folders ---------------------------------------------------------


def free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports on 127.0.0.1 that were free a moment ago.

    The sockets stay bound until all ports are chosen, so the ports differ from each other;
    another process may still take one before the caller binds it (an accepted, rare race)."""
    probes = []
    try:
        for _ in range(count):
            probe = socket.socket()
            probes.append(probe)
            probe.bind((LOOPBACK, 0))
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def free_port() -> int:
    return free_ports(1)[0]


def init_consortium(
    tmp_path: Path,
    nodes: int = 1,
    chain_id: str = "provledger-test",
    directory_name: str = "consortium",
) -> consortium.ConsortiumLayout:
    """`consortium init` into `tmp_path/directory_name`, every node on its own free port.

    `init_consortium` numbers ports from a base; consecutive ports need not be free, so every
    address it wrote is replaced, in every node's config file, by a freshly chosen free one."""
    layout = consortium.init_consortium(
        tmp_path / directory_name, nodes, chain_id=chain_id, base_port=free_port()
    )
    new_addresses = [f"{LOOPBACK}:{port}" for port in free_ports(nodes)]
    replacements = dict(zip(layout.grpc_addresses, new_addresses, strict=True))
    pattern = re.compile("|".join(re.escape(address) for address in replacements))
    for config in layout.node_configs:
        text = config.read_text()
        config.write_text(pattern.sub(lambda match: replacements[match.group(0)], text))
    return dataclasses.replace(layout, grpc_addresses=new_addresses)


# --- one node -----------------------------------------------------------------------------


def node_command(config: Path) -> list[str]:
    """The command line that runs a node: the `provledger` CLI of this interpreter."""
    return [sys.executable, "-m", "provledger.cli.main", "node", "run", "--config", str(config)]


def health_status(address: str, service: str = "", timeout_s: float = 1.0) -> int | None:
    """The gRPC health status of `service` at `address`, or None if it does not answer."""
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout_s)
        except grpc.RpcError:
            return None
    return response.status


class NodeProcess:
    """One `provledger node run` child process, its log file and its gRPC address.

    `start` waits for SERVING; `stop` ends the process by PID (SIGTERM, then SIGKILL after a
    timeout); `kill9` is a crash; `restart` starts it again on the same config and data."""

    def __init__(
        self,
        config: Path,
        address: str,
        log_path: Path,
        name: str = "node",
        command: Sequence[str] | None = None,
        start_timeout_s: float = NODE_START_TIMEOUT_S,
        stop_timeout_s: float = NODE_STOP_TIMEOUT_S,
    ) -> None:
        self.config = Path(config)
        self.address = address
        self.log_path = Path(log_path)
        self.name = name
        self.command = list(command) if command is not None else node_command(self.config)
        self.start_timeout_s = start_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @classmethod
    def for_node(
        cls, layout: consortium.ConsortiumLayout, index: int, log_dir: Path, **options
    ) -> NodeProcess:
        return cls(
            config=layout.node_configs[index],
            address=layout.grpc_addresses[index],
            log_path=Path(log_dir) / f"node-{index}.log",
            name=f"node-{index}",
            **options,
        )

    # --- lifecycle ------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, wait: bool = True) -> NodeProcess:
        if self.running:
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        self.starts += 1
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log_file:
            log_file.write(f"=== start {self.starts}: {' '.join(self.command)}\n".encode())
            log_file.flush()
            self.process = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C on the test run does not reach the node
            )
        _running[self.process.pid] = self.process
        if wait:
            try:
                self.wait_serving()
            except BaseException:
                self.stop()
                raise
        return self

    def wait_serving(self, timeout_s: float | None = None) -> None:
        """Return once the node's health check says SERVING; raise `NodeStartError` if the
        process exits first or the timeout passes."""
        timeout_s = self.start_timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout_s
        while True:
            if self.process is None or self.process.poll() is not None:
                code = None if self.process is None else self.process.returncode
                raise NodeStartError(
                    f"{self.name} exited with code {code} while starting\n{self.log_tail()}"
                )
            if health_status(self.address) == health_pb2.HealthCheckResponse.SERVING:
                return
            if time.monotonic() > deadline:
                raise NodeStartError(
                    f"{self.name} (pid {self.pid}) was not SERVING on {self.address} after "
                    f"{timeout_s} s\n{self.log_tail()}"
                )
            time.sleep(HEALTH_POLL_INTERVAL_S)

    def stop(self) -> int | None:
        """Stop the process by its PID: SIGTERM, wait, SIGKILL. Its exit code, if it ran."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=self.stop_timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        _running.pop(process.pid, None)
        return process.returncode

    def kill9(self) -> None:
        """Crash the node: SIGKILL by PID, no chance to clean up, then reap it."""
        process = self.process
        if process is None or process.poll() is not None:
            raise RuntimeError(f"{self.name} is not running")
        process.send_signal(signal.SIGKILL)
        process.wait()
        _running.pop(process.pid, None)

    def restart(self, wait: bool = True) -> NodeProcess:
        """Start again from the same config and data folder (stopping it first if it runs)."""
        self.stop()
        return self.start(wait=wait)

    def log_tail(self, size_bytes: int = LOG_TAIL_BYTES) -> str:
        try:
            data = self.log_path.read_bytes()
        except FileNotFoundError:
            return f"(no log at {self.log_path})"
        return f"--- last {size_bytes} bytes of {self.log_path} ---\n" + data[-size_bytes:].decode(
            errors="replace"
        )

    def channel(self) -> grpc.Channel:
        """A new insecure channel to the node (the caller closes it)."""
        return client_channel(self.address)

    def __enter__(self) -> NodeProcess:
        if not self.running:
            self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"NodeProcess({self.name}, {self.address}, pid={self.pid})"


# --- several nodes ------------------------------------------------------------------------


class NodeCluster:
    """The nodes of a consortium as processes: started together, stopped together."""

    def __init__(self, nodes: Sequence[NodeProcess]) -> None:
        self.nodes = list(nodes)

    @classmethod
    def for_layout(
        cls, layout: consortium.ConsortiumLayout, log_dir: Path, **options
    ) -> NodeCluster:
        return cls(
            [
                NodeProcess.for_node(layout, index, log_dir, **options)
                for index in range(len(layout.node_configs))
            ]
        )

    def __len__(self) -> int:
        return len(self.nodes)

    def __getitem__(self, index: int) -> NodeProcess:
        return self.nodes[index]

    def __iter__(self) -> Iterator[NodeProcess]:
        return iter(self.nodes)

    def start(self) -> NodeCluster:
        """Start every node, then wait for each to serve (nodes may need each other to)."""
        try:
            for node in self.nodes:
                node.start(wait=False)
            for node in self.nodes:
                node.wait_serving()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every node by PID; each is tried even if stopping another fails."""
        errors = []
        for node in self.nodes:
            try:
                node.stop()
            except Exception as error:  # keep stopping the others
                errors.append(error)
        if errors:
            raise errors[0]

    def __enter__(self) -> NodeCluster:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


@contextlib.contextmanager
def running_nodes(
    layout: consortium.ConsortiumLayout, log_dir: Path, **options
) -> Iterator[NodeCluster]:
    """Every node of `layout` running and serving for the body of the `with`."""
    with NodeCluster.for_layout(layout, log_dir, **options) as cluster:
        yield cluster


# --- clients ------------------------------------------------------------------------------

GRPC_CLIENT_OPTIONS = [
    # Above the node's 8 MiB limit, so that a test can send an oversized message and see the
    # node (not the client) refuse it.
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
]


def client_channel(address: str) -> grpc.Channel:
    return grpc.insecure_channel(address, options=GRPC_CLIENT_OPTIONS)


@atexit.register
def _kill_leftovers() -> None:
    """Last resort if a test run is torn down without its fixtures' finally blocks."""
    for process in list(_running.values()):
        if process.poll() is None:
            process.kill()
            process.wait()
    _running.clear()

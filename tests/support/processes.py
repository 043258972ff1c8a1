"""Real node processes for integration tests: consortium folders, free ports, start and stop.

A test builds a consortium with `init_consortium` (a base port is probed so that every port
the consortium's layout uses on 127.0.0.1 is free) and runs its nodes as child processes with
`NodeProcess` or `NodeCluster`:

    layout = init_consortium(tmp_path, nodes=1)
    with NodeProcess.for_node(layout, 0, tmp_path) as node:
        ...  # node.address is serving gRPC
    # the process is stopped here by its PID, even if the body raised

    layout = init_consortium(tmp_path, nodes=4)         # client API on base+K, peers on base+100+K
    with running_nodes(layout, tmp_path) as cluster:
        cluster.wait_for_heights(1)                     # every node committed a block
        cluster[3].kill9(); cluster[3].start()          # crash and restart from its data folder

Invariants:
- every process this module starts is stopped by its PID (SIGTERM, wait, SIGKILL) when its
  context exits, and, as a last resort, when the interpreter exits;
- a node runs in a session and process group of its own, whose id is its PID; whatever the
  node leaves behind in that group (worker processes orphaned by a `kill -9`) is SIGKILLed
  before the node is reaped, while that id cannot yet belong to any other process;
- a start is not done until the node's gRPC health check of its LedgerService says SERVING
  (it has started: liveness; the overall service "" is readiness); a start that fails
  raises `NodeStartError` with the tail of the node's log;
- nodes only ever listen on 127.0.0.1;
- clients speak TLS to a node's client API, trusting its consortium's CA, and read as the
  consortium's auditor (`client_channel`; `init_consortium` notes, per gRPC address, the CA
  and an auditor token: `client_access`); a test that wants another reader, or none, says so;
- `wait_until` and the waits built on it poll with a deadline; none sleeps a fixed time.
"""

from __future__ import annotations

import atexit
import contextlib
import enum
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from provledger.cli import consortium
from provledger.cli.client import Identity, LedgerClient, open_channel, read_token
from provledger.node.config import NodeConfig
from provledger.protocol.blocks import decode_header
from provledger.v1 import api_pb2, api_pb2_grpc

LOOPBACK = "127.0.0.1"
NODE_START_TIMEOUT_S = 30.0
NODE_STOP_TIMEOUT_S = 10.0
HEALTH_POLL_INTERVAL_S = 0.05
LOG_TAIL_BYTES = 4_000
WAIT_POLL_INTERVAL_S = 0.1
RPC_TIMEOUT_S = 5.0
# Base ports are probed below Linux's ephemeral range (32768-60999 by default), where `bind(0)`
# and every outgoing connection take their ports, so a node's port is not taken by a client.
BASE_PORT_MIN = 10_000
BASE_PORT_MAX = 30_000
BASE_PORT_ATTEMPTS_MAX = 200

T = TypeVar("T")
TEST_TOKEN_TTL_MS = 24 * 3_600_000  # a test's read tokens outlive any test


@dataclass(frozen=True)
class ClientAccess:
    """What a client of one node's API needs: the CA to trust and a token to read with (or
    plaintext, for a development node configured so)."""

    ca_certificate_pem: bytes | None
    token: str | None
    plaintext: bool = False


class _Default(enum.Enum):
    TOKEN = "the consortium auditor's token"


DEFAULT = _Default.TOKEN


# Per gRPC address of a consortium made by `init_consortium`: its CA and an auditor's token.
_access: dict[str, ClientAccess] = {}

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


def consortium_ports(base_port: int, nodes: int) -> list[int]:
    """Every port `consortium.init_consortium(..., nodes, base_port=base_port)` writes."""
    return consortium.consortium_ports(base_port, nodes)


def ports_free(ports: Iterable[int]) -> bool:
    """Whether every port in `ports` can be bound on 127.0.0.1 right now (all at once)."""
    probes = []
    try:
        for port in ports:
            probe = socket.socket()
            probes.append(probe)
            probe.bind((LOOPBACK, port))
        return True
    except OSError:
        return False
    finally:
        for probe in probes:
            probe.close()


def free_base_port(nodes: int, rng: random.Random | None = None) -> int:
    """A base port for a consortium of `nodes` whose ports (see `consortium_ports`) are all
    free a moment ago. Another process may still take one before a node binds it (an
    accepted, rare race: that node then fails to start, loudly)."""
    rng = rng or random.Random()
    highest = BASE_PORT_MAX - consortium.OPERATIONS_PORT_OFFSET - nodes
    for _ in range(BASE_PORT_ATTEMPTS_MAX):
        base_port = rng.randrange(BASE_PORT_MIN, highest)
        if ports_free(consortium_ports(base_port, nodes)):
            return base_port
    raise RuntimeError(
        f"no base port in {BASE_PORT_MIN}-{highest} with {nodes} nodes' ports free after "
        f"{BASE_PORT_ATTEMPTS_MAX} attempts"
    )


def init_consortium(
    tmp_path: Path,
    nodes: int = 1,
    chain_id: str = "provledger-test",
    directory_name: str = "consortium",
    base_port: int | None = None,
    market: bool = False,
    supervision: dict[str, int] | None = None,
) -> consortium.ConsortiumLayout:
    """`consortium init` into `tmp_path/directory_name`, on a base port whose ports are free.

    The layout is the one `consortium init` writes (client API on base+K, PeerService on
    base+100+K), so a test sees the addresses an operator would. Every loopback address in
    the configs written is checked, not only those `consortium_ports` knows of (a port kind
    added later is covered too); if one is taken, the folder is made again on another base.
    `market` adds `consortium init --market`'s members (a second regulator and a broker);
    `supervision` is the genesis's rules of supervision."""
    directory = tmp_path / directory_name
    for _ in range(BASE_PORT_ATTEMPTS_MAX):
        chosen = free_base_port(nodes) if base_port is None else base_port
        layout = consortium.init_consortium(
            directory,
            nodes,
            chain_id=chain_id,
            base_port=chosen,
            members=consortium.DEFAULT_MEMBERS + (consortium.MARKET_MEMBERS if market else ()),
            supervision=supervision,
        )
        if base_port is not None or ports_free(configured_ports(layout.node_configs)):
            note_client_access(layout)
            return layout
        shutil.rmtree(directory)
    raise RuntimeError(f"no base port with all of {nodes} nodes' configured ports free")


def member_token(
    layout: consortium.ConsortiumLayout, member_id: str, ttl_ms: int = TEST_TOKEN_TTL_MS
) -> str:
    """A bearer token signed by `member_id`'s identity in `layout` (an auditor's token for an
    auditor or a regulator, a member's for anyone else: `read_token`)."""
    return read_token(Identity.load(layout.identities[member_id]), ttl_ms)


def note_client_access(layout: consortium.ConsortiumLayout) -> None:
    """Remember how to reach `layout`'s nodes: its CA, and its auditor's token to read with."""
    token = member_token(layout, "auditor") if "auditor" in layout.identities else None
    note_access(layout.grpc_addresses, ClientAccess(layout.ca_certificate.read_bytes(), token))


def note_access(addresses: Iterable[str], access: ClientAccess) -> None:
    """Remember how clients reach the nodes at `addresses` (a consortium `init_consortium`
    did not make, such as one the CLI made)."""
    for address in addresses:
        _access[address] = access


def client_access(address: str) -> ClientAccess:
    try:
        return _access[address]
    except KeyError:
        raise KeyError(f"no consortium made by init_consortium serves {address}") from None


def configured_ports(configs: Iterable[Path]) -> set[int]:
    """Every port of a 127.0.0.1 address in the given node config files."""
    pattern = re.compile(re.escape(LOOPBACK) + r":(\d+)")
    return {int(port) for config in configs for port in pattern.findall(Path(config).read_text())}


def wait_until(
    condition: Callable[[], T],
    timeout_s: float,
    describe: Callable[[], str] | str = "",
    interval_s: float = WAIT_POLL_INTERVAL_S,
) -> T:
    """Poll `condition` until it returns something truthy, and return that; raise
    AssertionError (with `describe`, a string or a callable for the latest state) once
    `timeout_s` passed."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            text = describe() if callable(describe) else describe
            raise AssertionError(f"not true after {timeout_s} s: {text}")
        time.sleep(interval_s)


# --- one node -----------------------------------------------------------------------------


def node_command(config: Path) -> list[str]:
    """The command line that runs a node: the `provledger` CLI of this interpreter."""
    return [sys.executable, "-m", "provledger.cli.main", "node", "run", "--config", str(config)]


def provledger_command() -> list[str]:
    """The installed `provledger` console script of this interpreter's environment, as an
    operator would type it (falling back to `python -m provledger.cli.main`)."""
    script = Path(sys.executable).parent / "provledger"
    if script.exists():
        return [str(script)]
    found = shutil.which("provledger")
    if found:
        return [found]
    return [sys.executable, "-m", "provledger.cli.main"]


LEDGER_SERVICE = api_pb2.DESCRIPTOR.services_by_name["LedgerService"].full_name


def health_status(address: str, service: str = "", timeout_s: float = 1.0) -> int | None:
    """The gRPC health status of `service` at `address`, or None if it does not answer.
    Health answers anyone: no token is sent."""
    with client_channel(address, token=None) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout_s)
        except grpc.RpcError:
            return None
    return response.status


def _has_exited(process: subprocess.Popen[bytes]) -> bool:
    """Whether `process` has exited, without reaping it: until it is reaped, its PID (which
    is also its process group id) cannot be given to another process."""
    if process.returncode is not None:
        return True
    try:
        return os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:  # reaped already
        return True


def _wait_exited(process: subprocess.Popen[bytes], timeout_s: float) -> bool:
    """Poll until `process` has exited (without reaping it); False if `timeout_s` passed."""
    deadline = time.monotonic() + timeout_s
    while not _has_exited(process):
        if time.monotonic() > deadline:
            return False
        time.sleep(HEALTH_POLL_INTERVAL_S)
    return True


def _end_group_and_reap(process: subprocess.Popen[bytes]) -> int:
    """Reap an exited (or SIGKILLed) node after SIGKILLing what is left of its process group;
    return its exit code.

    A node runs in a session of its own (`start_new_session`), so its process group id is its
    PID, and the processes it starts (signature worker processes, multiprocessing's resource
    tracker) are in that group. A node killed with SIGKILL cannot stop them, and they do not
    notice (they live on, orphaned, indefinitely). The group is signalled before the node is
    reaped: until then its PID, and so the group id, cannot belong to an unrelated process."""
    if process.returncode is None:
        with contextlib.suppress(ChildProcessError):
            os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    _running.pop(process.pid, None)
    return process.returncode


def head_height(address: str, timeout_s: float = RPC_TIMEOUT_S) -> int:
    """The height of the node's latest committed block (0 for an empty chain)."""
    with client_channel(address) as channel:
        stub = api_pb2_grpc.LedgerServiceStub(channel)
        try:
            checkpoint = stub.GetCheckpoint(api_pb2.GetCheckpointRequest(), timeout=timeout_s)
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.FAILED_PRECONDITION:  # empty_chain
                return 0
            raise
    return decode_header(checkpoint.header).height


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
        peer_address: str | None = None,
    ) -> None:
        self.config = Path(config)
        self.address = address
        self.log_path = Path(log_path)
        self.name = name
        self.peer_address = peer_address  # its PeerService (mutual TLS), if it has peers
        self.command = list(command) if command is not None else node_command(self.config)
        self.start_timeout_s = start_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._terminated_pid: int | None = None

    @classmethod
    def for_node(
        cls, layout: consortium.ConsortiumLayout, index: int, log_dir: Path, **options
    ) -> NodeProcess:
        config = layout.node_configs[index]
        return cls(
            config=config,
            address=layout.grpc_addresses[index],
            log_path=Path(log_dir) / f"node-{index}.log",
            name=f"node-{index}",
            peer_address=NodeConfig.load(config).peer_listen,
            **options,
        )

    # --- lifecycle ------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def running(self) -> bool:
        return self.process is not None and not _has_exited(self.process)

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
            if self.process is None or _has_exited(self.process):
                code = None if self.process is None else _end_group_and_reap(self.process)
                raise NodeStartError(
                    f"{self.name} exited with code {code} while starting\n{self.log_tail()}"
                )
            if (
                health_status(self.address, LEDGER_SERVICE)
                == health_pb2.HealthCheckResponse.SERVING
            ):
                return
            if time.monotonic() > deadline:
                raise NodeStartError(
                    f"{self.name} (pid {self.pid}) was not SERVING on {self.address} after "
                    f"{timeout_s} s\n{self.log_tail()}"
                )
            time.sleep(HEALTH_POLL_INTERVAL_S)

    def terminate(self) -> None:
        """Begin a graceful stop without waiting: SIGTERM by PID, once per start.

        Once. A node restores the default SIGTERM action when its event loop has closed, so a
        second SIGTERM while it finishes exiting would kill it (exit code -15) and hide
        whether its graceful stop succeeded."""
        process = self.process
        if process is None or _has_exited(process) or self._terminated_pid == process.pid:
            return
        # Not Popen.terminate, which reaps an exited node first (see `_end_group_and_reap`).
        os.kill(process.pid, signal.SIGTERM)  # not reaped, so the PID is still the node's
        self._terminated_pid = process.pid

    def stop(self) -> int | None:
        """Stop the process by its PID: SIGTERM, wait, SIGKILL. Its exit code, if it ran.

        Whatever the node leaves behind in its process group is SIGKILLed before it is reaped
        (see `_end_group_and_reap`)."""
        process = self.process
        if process is None:
            return None
        if process.returncode is None:
            self.terminate()
            if not _wait_exited(process, self.stop_timeout_s):
                os.kill(process.pid, signal.SIGKILL)
            _end_group_and_reap(process)
        return process.returncode

    def kill9(self) -> None:
        """Crash the node: SIGKILL by PID, no chance to clean up. Then the processes it
        started and left orphaned (its signature workers) are SIGKILLed too, and it is reaped."""
        process = self.process
        if process is None or _has_exited(process):
            raise RuntimeError(f"{self.name} is not running")
        os.kill(process.pid, signal.SIGKILL)
        _end_group_and_reap(process)

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

    def log_text(self) -> str:
        """The node's whole log so far (every start), or "" before the first."""
        try:
            return self.log_path.read_bytes().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def channel(self, token: str | _Default | None = DEFAULT) -> grpc.Channel:
        """A new channel to the node, reading as `client_channel` says (the caller closes
        it)."""
        return client_channel(self.address, token=token)

    def height(self, timeout_s: float = RPC_TIMEOUT_S) -> int:
        """The node's head height (see `head_height`); raises grpc.RpcError if it is down."""
        return head_height(self.address, timeout_s)

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

    @property
    def live_nodes(self) -> list[NodeProcess]:
        """The nodes whose process is running."""
        return [node for node in self.nodes if node.running]

    def heights(self, nodes: Iterable[NodeProcess] | None = None) -> dict[str, int]:
        """Head height by node name, of `nodes` (default: the running ones)."""
        chosen = self.live_nodes if nodes is None else list(nodes)
        return {node.name: node.height() for node in chosen}

    def wait_for_heights(
        self,
        minimum: int,
        nodes: Iterable[NodeProcess] | None = None,
        timeout_s: float = NODE_START_TIMEOUT_S,
    ) -> dict[str, int]:
        """Poll until every one of `nodes` (default: the running ones) has committed height
        `minimum`; return their heights then."""
        chosen = self.live_nodes if nodes is None else list(nodes)
        latest: dict[str, int] = {}

        def reached() -> bool:
            latest.update(self.heights(chosen))
            return all(latest[node.name] >= minimum for node in chosen)

        wait_until(reached, timeout_s, lambda: f"heights {latest}, wanted every one >= {minimum}")
        return dict(latest)

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

    def stop(self) -> dict[str, int | None]:
        """Stop every node by PID; each is tried even if stopping another fails. Returns each
        node's exit code (None for one never started).

        Every running node is sent SIGTERM first, so that their graceful shutdowns overlap;
        then each is waited for (and SIGKILLed after its timeout) in turn."""
        errors = []
        for node in self.nodes:
            with contextlib.suppress(OSError):
                node.terminate()
        codes: dict[str, int | None] = {}
        for node in self.nodes:
            try:
                codes[node.name] = node.stop()
            except Exception as error:  # keep stopping the others
                errors.append(error)
        if errors:
            raise errors[0]
        return codes

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


def client_channel(
    address: str,
    token: str | _Default | None = DEFAULT,
    extra_options: Sequence[tuple[str, str | int]] = (),
) -> grpc.Channel:
    """A TLS channel to the client API at `address`, trusting its consortium's CA; every call
    carries `token`: by default the consortium auditor's, None for an anonymous client.
    `extra_options` are further channel arguments (a connection of its own, a target name)."""
    access = client_access(address)
    return open_channel(
        address,
        ca_certificate_pem=access.ca_certificate_pem,
        token=access.token if token is DEFAULT else token,
        plaintext=access.plaintext,
        options=[*GRPC_CLIENT_OPTIONS, *extra_options],
    )


def ledger_client(address: str, token: str | _Default | None = DEFAULT) -> LedgerClient:
    """A `LedgerClient` for the node at `address`, reading as `client_channel` says."""
    access = client_access(address)
    return LedgerClient(
        address,
        ca_certificate_pem=access.ca_certificate_pem,
        token=access.token if token is DEFAULT else token,
        plaintext=access.plaintext,
    )


@atexit.register
def _kill_leftovers() -> None:
    """Last resort if a test run is torn down without its fixtures' finally blocks."""
    for process in list(_running.values()):
        if not _has_exited(process):
            os.kill(process.pid, signal.SIGKILL)
        _end_group_and_reap(process)
    _running.clear()

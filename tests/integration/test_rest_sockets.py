"""The REST API stays open to an auditor while sockets pile up against it (issue 8).

One `provledger node run` process with its REST API on 127.0.0.1 serves the module. Each test
opens hundreds of raw TCP sockets to the REST port (idle ones, and ones that send a request
head without its end), then asks an authenticated question with a fresh HTTP client, which
must be answered, with a 200, within `ANSWER_TIMEOUT_S`: a bound on a failure (before the fix
such a request got a 503 for as long as the sockets stayed open), not a speed measurement.

The defences are node/rest_connections.py's, with node/settings.py's limits:
- from one address (127.0.0.1), the per-address cap displaces the pile as it grows;
- spread over 127.0.0.2..127.0.0.N (Linux routes all of 127/8 to the loopback interface), no
  address reaches the cap and the pile stays under the server's connection limit, so nothing
  is displaced: idle connections do not count against the request limit, and the node then
  closes every one of them itself (keep-alive idle timeout, request deadline), including
  sockets that keep trickling header bytes. Those closes are waited for with a generous
  deadline.

Every socket a test opens is closed by the test; the node is stopped by its PID.
"""

from __future__ import annotations

import contextlib
import errno
import resource
import selectors
import socket
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from support.processes import NodeProcess, init_consortium
from support.rest_support import cli_token

from provledger.node.config import NodeConfig, split_host_port
from provledger.node.settings import (
    FILE_DESCRIPTORS_MIN,
    REST_CONNECTIONS_MAX,
    REST_CONNECTIONS_PER_ADDRESS_MAX,
    REST_KEEP_ALIVE_TIMEOUT_S,
    REST_REQUEST_RECEIVE_TIMEOUT_S,
)

pytestmark = pytest.mark.integration

IDLE_SOCKETS = 700
HALF_SENT_REQUESTS = 600
ANSWER_TIMEOUT_S = 5.0
# Generous: the node's own timeouts plus a wide margin for a loaded machine.
REAPED_TIMEOUT_S = REST_REQUEST_RECEIVE_TIMEOUT_S + REST_KEEP_ALIVE_TIMEOUT_S + 60.0
HALF_SENT_HEAD = b"GET /v1/status HTTP/1.1\r\nHost: provledger\r\nAccept: application/json\r\n"
TRICKLE_SOCKETS = 40
TRICKLE_INTERVAL_S = 0.5
# Sockets opened beside the test's own descriptors, with room to spare.
FILE_DESCRIPTORS_NEEDED = 4_096


@dataclass
class RestNode:
    node: NodeProcess
    host: str
    port: int
    token: str

    def status(self) -> httpx.Response:
        """GET /v1/status with the auditor's token, on a new connection from 127.0.0.1."""
        with httpx.Client(
            base_url=f"http://{self.host}:{self.port}",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=ANSWER_TIMEOUT_S,
        ) as client:
            return client.get("/v1/status")


@pytest.fixture(scope="module")
def file_descriptors() -> Iterator[None]:
    """This process may open the sockets the tests need."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = FILE_DESCRIPTORS_NEEDED if hard == resource.RLIM_INFINITY else hard
    wanted = min(max(soft, FILE_DESCRIPTORS_NEEDED), wanted)
    assert wanted >= IDLE_SOCKETS + 200, f"RLIMIT_NOFILE hard limit {hard} is too low"
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.fixture(scope="module")
def rest_node(
    tmp_path_factory: pytest.TempPathFactory, file_descriptors: None
) -> Iterator[RestNode]:
    tmp_path = tmp_path_factory.mktemp("rest-sockets")
    layout = init_consortium(tmp_path, nodes=1)
    rest_listen = NodeConfig.load(layout.node_configs[0]).rest_listen
    assert rest_listen is not None
    host, port = split_host_port(rest_listen)
    token = cli_token(layout.identities["auditor"], "auditor")
    with NodeProcess.for_node(layout, 0, tmp_path) as node:
        rest = RestNode(node, host, port, token)
        assert rest.status().status_code == 200
        yield rest


# --- sockets --------------------------------------------------------------------------------


@contextlib.contextmanager
def open_sockets(
    rest: RestNode, sources: list[str], payload: bytes = b""
) -> Iterator[list[socket.socket]]:
    """One connected socket to the REST port from each address in `sources` (an address may
    repeat), each having sent `payload`; all closed when the block ends. A socket the node
    closed before the payload was sent is kept (and counts as closed)."""
    sockets: list[socket.socket] = []
    try:
        for source in sources:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.bind((source, 0))
            sock.connect((rest.host, rest.port))
            if payload:
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    sock.sendall(payload)
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


def closed_by_peer(sock: socket.socket) -> bool:
    """Whether the node has closed `sock` (end of stream or reset); never blocks."""
    try:
        data = sock.recv(4096, socket.MSG_DONTWAIT | socket.MSG_PEEK)
    except BlockingIOError:
        return False
    except OSError as error:
        return error.errno in (errno.ECONNRESET, errno.EPIPE, errno.ENOTCONN)
    if data:  # an answer (a 400, say): read past it and look again later
        sock.recv(len(data), socket.MSG_DONTWAIT)
        return False
    return True


def wait_all_closed(
    sockets: list[socket.socket], timeout_s: float, trickle: Sequence[socket.socket] = ()
) -> None:
    """Wait until the node has closed every socket in `sockets`; meanwhile send one more
    header byte every TRICKLE_INTERVAL_S on each socket in `trickle` that is still open."""
    open_ones = set(sockets)
    trickling = set(trickle)
    deadline = time.monotonic() + timeout_s
    with selectors.DefaultSelector() as selector:
        for sock in open_ones:
            selector.register(sock, selectors.EVENT_READ)
        next_trickle = time.monotonic() + TRICKLE_INTERVAL_S
        while open_ones:
            now = time.monotonic()
            if now > deadline:
                raise AssertionError(
                    f"{len(open_ones)} of {len(sockets)} sockets still open after {timeout_s} s"
                )
            if trickling and now >= next_trickle:
                for sock in list(trickling & open_ones):
                    with contextlib.suppress(OSError):  # closed: seen by recv below
                        sock.send(b"X", socket.MSG_DONTWAIT)
                next_trickle = now + TRICKLE_INTERVAL_S
            for key, _ in selector.select(timeout=TRICKLE_INTERVAL_S / 2):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if closed_by_peer(sock):
                    open_ones.discard(sock)
                    selector.unregister(sock)


def count_closed(sockets: list[socket.socket]) -> int:
    return sum(closed_by_peer(sock) for sock in sockets)


def spread_sources(count: int) -> list[str]:
    """`count` source addresses from 127.0.0.2 on, each used at most half the per-address
    cap times, so that no address comes near it."""
    per_address = max(1, REST_CONNECTIONS_PER_ADDRESS_MAX // 2)
    return [f"127.0.0.{2 + index // per_address}" for index in range(count)]


def assert_answered(rest: RestNode) -> None:
    response = rest.status()
    assert response.status_code == 200, response.text
    assert response.json()["height"] >= 0


# --- the tests ------------------------------------------------------------------------------


def test_the_node_may_hold_the_sockets_it_accepts(rest_node: RestNode) -> None:
    limits = Path(f"/proc/{rest_node.node.pid}/limits").read_text()
    (line,) = [line for line in limits.splitlines() if line.startswith("Max open files")]
    soft, hard = line.split()[3:5]
    hard_limit = float("inf") if hard == "unlimited" else int(hard)
    soft_limit = float("inf") if soft == "unlimited" else int(soft)
    assert soft_limit >= min(FILE_DESCRIPTORS_MIN, hard_limit), line
    assert soft_limit > REST_CONNECTIONS_MAX + 1_000, line  # every connection, and LevelDB's


def test_idle_sockets_from_one_address_do_not_lock_the_api_out(rest_node: RestNode) -> None:
    with open_sockets(rest_node, ["127.0.0.1"] * IDLE_SOCKETS) as sockets:
        assert_answered(rest_node)
        # The pile is cut back to the per-address cap as it grows (and the rest goes later).
        wait_all_closed(
            sockets[: IDLE_SOCKETS - REST_CONNECTIONS_PER_ADDRESS_MAX], REAPED_TIMEOUT_S
        )
        assert_answered(rest_node)


def test_half_sent_requests_from_one_address_do_not_lock_the_api_out(rest_node: RestNode) -> None:
    with open_sockets(rest_node, ["127.0.0.1"] * HALF_SENT_REQUESTS, HALF_SENT_HEAD) as sockets:
        assert_answered(rest_node)
        wait_all_closed(
            sockets[: HALF_SENT_REQUESTS - REST_CONNECTIONS_PER_ADDRESS_MAX], REAPED_TIMEOUT_S
        )
        assert_answered(rest_node)


def test_idle_sockets_spread_over_addresses_are_not_counted_and_are_reaped(
    rest_node: RestNode,
) -> None:
    assert IDLE_SOCKETS < REST_CONNECTIONS_MAX  # nothing is displaced: the timeouts must act
    with open_sockets(rest_node, spread_sources(IDLE_SOCKETS)) as sockets:
        assert_answered(rest_node)
        wait_all_closed(sockets, REAPED_TIMEOUT_S)
        assert_answered(rest_node)


def test_half_sent_requests_spread_over_addresses_are_reaped_even_while_trickling(
    rest_node: RestNode,
) -> None:
    sources = spread_sources(HALF_SENT_REQUESTS)
    with open_sockets(rest_node, sources, HALF_SENT_HEAD) as sockets:
        assert_answered(rest_node)
        # Some keep sending a header byte now and then, which restarts no clock of the node.
        wait_all_closed(sockets, REAPED_TIMEOUT_S, trickle=sockets[:TRICKLE_SOCKETS])
        assert_answered(rest_node)


def test_a_kept_alive_connection_left_idle_is_closed(rest_node: RestNode) -> None:
    with open_sockets(rest_node, ["127.0.0.1"]) as (sock,):
        request = (
            b"GET /v1/status HTTP/1.1\r\nHost: provledger\r\n"
            b"Authorization: Bearer " + rest_node.token.encode() + b"\r\n\r\n"
        )
        sock.sendall(request)
        sock.settimeout(ANSWER_TIMEOUT_S)
        answer = sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
        sock.settimeout(None)
        wait_all_closed([sock], REAPED_TIMEOUT_S)

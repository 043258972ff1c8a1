"""The REST benchmark's client side (bench/rest.py): a minimal HTTP/1.1 client kept alive or
new per request, and piles of idle sockets held open against the node.
"""

from __future__ import annotations

import contextlib
import errno
import http.client
import resource
import socket
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from harness import BenchmarkError

from provledger.node.settings import REST_CONNECTIONS_PER_ADDRESS_MAX

HTTP_TIMEOUT_S = 30.0


@dataclass
class Answered:
    """One request's outcome."""

    route: str
    latency_s: float
    answer_bytes: int = 0
    error: str = ""


# --- the client ---------------------------------------------------------------------------------


class RestClient:
    """GETs to one node's REST API with a bearer token, timed (http.client: small, and its
    connections set TCP_NODELAY as the node's do)."""

    def __init__(self, host: str, port: int, token: str) -> None:
        self.host, self.port = host, port
        self.headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}

    def connection(self) -> KeptAlive:
        return KeptAlive(self, http.client.HTTPConnection(self.host, self.port, HTTP_TIMEOUT_S))

    @contextlib.contextmanager
    def kept_alive(self) -> Iterator[KeptAlive]:
        connection = self.connection()
        try:
            yield connection
        finally:
            connection.close()

    def once(self, route: str, target: str) -> Answered:
        """One request on a new connection, closed after the answer."""
        started = time.perf_counter()
        connection = http.client.HTTPConnection(self.host, self.port, timeout=HTTP_TIMEOUT_S)
        try:
            size = _get(connection, target, self.headers)
        except (OSError, http.client.HTTPException, BenchmarkError) as error:
            return Answered(route, time.perf_counter() - started, error=describe(error))
        finally:
            connection.close()
        return Answered(route, time.perf_counter() - started, size)

    def json(self, target: str) -> dict:
        import json

        connection = http.client.HTTPConnection(self.host, self.port, timeout=HTTP_TIMEOUT_S)
        try:
            connection.request("GET", target, headers=self.headers)
            response = connection.getresponse()
            body = response.read()
        finally:
            connection.close()
        if response.status != 200:
            raise BenchmarkError(f"GET {target}: {response.status} {body[:300]!r}")
        document: dict = json.loads(body)
        return document


@dataclass
class KeptAlive:
    client: RestClient
    connection: http.client.HTTPConnection

    def get(self, target: str) -> int:
        return _get(self.connection, target, self.client.headers)

    def timed(self, route: str, target: str) -> Answered:
        started = time.perf_counter()
        size = self.get(target)
        return Answered(route, time.perf_counter() - started, size)

    def close(self) -> None:
        self.connection.close()


def _get(connection: http.client.HTTPConnection, target: str, headers: dict[str, str]) -> int:
    """GET `target` on `connection` and read the whole answer; its size in bytes (a non-200
    answer raises BenchmarkError)."""
    connection.request("GET", target, headers=headers)
    response = connection.getresponse()
    body = response.read()
    if response.status != 200:
        raise BenchmarkError(f"GET {target}: {response.status} {body[:300]!r}")
    return len(body)


def describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:200]


# --- piles of idle sockets (as tests/integration/test_rest_sockets.py makes them) ---------------


@contextlib.contextmanager
def socket_pile(host: str, port: int, sources: Sequence[str]) -> Iterator[list[socket.socket]]:
    """One connected TCP socket to (host, port) from each address in `sources` (an address
    may repeat), sending nothing; all closed when the block ends."""
    sockets: list[socket.socket] = []
    try:
        for source in sources:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.bind((source, 0))
            sock.connect((host, port))
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


def spread_sources(count: int) -> list[str]:
    """`count` source addresses from 127.0.0.2 on, each used at most half the per-address cap
    times (Linux routes all of 127/8 to the loopback interface)."""
    per_address = max(1, REST_CONNECTIONS_PER_ADDRESS_MAX // 2)
    return [f"127.0.0.{2 + index // per_address}" for index in range(count)]


def closed_by_peer(sock: socket.socket) -> bool:
    """Whether the node has closed `sock` (end of stream or reset); never blocks."""
    try:
        data = sock.recv(1, socket.MSG_DONTWAIT | socket.MSG_PEEK)
    except BlockingIOError:
        return False
    except OSError as error:
        return error.errno in (errno.ECONNRESET, errno.EPIPE, errno.ENOTCONN)
    return not data


def count_closed(sockets: Sequence[socket.socket]) -> int:
    return sum(closed_by_peer(sock) for sock in sockets)


@contextlib.contextmanager
def enough_file_descriptors(wanted: int) -> Iterator[None]:
    """This process may hold `wanted` descriptors (a pile's sockets and its own)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if limit < wanted:
        raise SystemExit(f"RLIMIT_NOFILE's hard limit {hard} is below the {wanted} needed")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, limit), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

"""The REST server's connection guard (node/rest_connections.py), with small limits.

The table is tested as plain bookkeeping; the protocol and the request limit through the
node's own `start_rest` on this test's event loop, with raw sockets on 127.0.0.x. A test that
shows a connection being displaced sets the timeouts far beyond its own wait, so that only
displacement can have closed it; a test of a timeout sets it short and waits for it with a
generous bound. No test measures how long anything took.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import resource
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import pytest

from provledger.node.rest_connections import ConnectionTable, GuardedH11Protocol, RestLimits
from provledger.node.server import start_rest, stop_rest

WAIT_S = 20.0  # a bound on a failure
LONG_S = 600  # a timeout no test waits for
HEAD = b"GET /ok HTTP/1.1\r\nHost: test\r\n\r\n"


# --- the table ------------------------------------------------------------------------------


@dataclass(eq=False)
class Connection:
    name: str
    idle: bool = True

    def is_idle(self) -> bool:
        return self.idle


def test_a_connection_beyond_the_address_cap_displaces_that_addresses_oldest_idle_one() -> None:
    table = ConnectionTable(connections_max=10, connections_per_address_max=2)
    first, second, third = Connection("1"), Connection("2"), Connection("3")
    other = Connection("other")
    assert table.admit(first, "127.0.0.1") == []
    assert table.admit(other, "127.0.0.2") == []
    assert table.admit(second, "127.0.0.1") == []
    assert table.admit(third, "127.0.0.1") == [first]
    assert (table.count("127.0.0.1"), table.count("127.0.0.2"), len(table)) == (2, 1, 3)


def test_busy_connections_are_never_displaced_and_then_the_newcomer_is_refused() -> None:
    table = ConnectionTable(connections_max=10, connections_per_address_max=2)
    busy, idle = Connection("busy", idle=False), Connection("idle")
    table.admit(busy, "a")
    table.admit(idle, "a")
    assert table.admit(Connection("new", idle=False), "a") == [idle]
    assert table.admit(Connection("newer"), "a") is None  # both left are busy
    assert table.count("a") == 2


def test_the_server_limit_displaces_the_oldest_idle_connection_of_any_address() -> None:
    table = ConnectionTable(connections_max=3, connections_per_address_max=3)
    connections = [Connection(str(index)) for index in range(3)]
    connections[0].idle = False
    for index, connection in enumerate(connections):
        table.admit(connection, f"10.0.0.{index}")
    assert table.admit(Connection("new"), "10.0.0.9") == [connections[1]]
    assert len(table) == 3


def test_one_displacement_can_serve_both_limits() -> None:
    table = ConnectionTable(connections_max=2, connections_per_address_max=2)
    first, second = Connection("1"), Connection("2")
    table.admit(first, "a")
    table.admit(second, "a")
    assert table.admit(Connection("3"), "a") == [first]
    assert len(table) == 2


def test_a_connection_that_answered_becomes_the_youngest() -> None:
    table = ConnectionTable(connections_max=10, connections_per_address_max=2)
    first, second = Connection("1"), Connection("2")
    table.admit(first, "a")
    table.admit(second, "a")
    table.ready_again(first)
    assert table.admit(Connection("3"), "a") == [second]


def test_removing_is_idempotent_and_forgets_empty_addresses() -> None:
    table = ConnectionTable(connections_max=10, connections_per_address_max=2)
    connection = Connection("1")
    table.admit(connection, "a")
    table.remove(connection)
    table.remove(connection)
    table.ready_again(connection)
    assert (len(table), table.count("a")) == (0, 0)


def test_limits_must_make_sense() -> None:
    with pytest.raises(ValueError):
        ConnectionTable(connections_max=2, connections_per_address_max=3)
    with pytest.raises(ValueError):
        ConnectionTable(connections_max=2, connections_per_address_max=0)


# --- the server -----------------------------------------------------------------------------


@dataclass
class App:
    """/ok answers at once; /hold waits until `release` is set."""

    release: asyncio.Event = field(default_factory=asyncio.Event)
    holding: int = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        if scope["path"] == "/hold":
            self.holding += 1
            await self.release.wait()
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
        )
        await send({"type": "http.response.body", "body": b"ok"})


@contextlib.asynccontextmanager
async def serving(limits: RestLimits, app: App | None = None) -> AsyncIterator[tuple[int, App]]:
    app = app or App()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server, task = await start_rest(app, sock, limits)
    try:
        yield port, app
    finally:
        app.release.set()
        await stop_rest(server, task)
        sock.close()


def limits(**changes: Any) -> RestLimits:
    values: dict[str, Any] = {
        "connections_max": 100,
        "connections_per_address_max": 100,
        "requests_in_progress_max": 100,
        "request_receive_timeout_s": LONG_S,
        "keep_alive_timeout_s": LONG_S,
    }
    values.update(changes)
    return RestLimits(**values)


@dataclass
class Client:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def closed_by_server(self) -> bool:
        """Read until the server closes the connection (True), or WAIT_S passes (False)."""
        try:
            async with asyncio.timeout(WAIT_S):
                while await self.reader.read(65536):
                    pass
        except TimeoutError:
            return False
        except ConnectionResetError:
            return True
        return True

    async def answer(self) -> bytes:
        async with asyncio.timeout(WAIT_S):
            head = await self.reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            return head + await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


async def connect(port: int, source: str = "127.0.0.1", payload: bytes = b"") -> Client:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    if payload:
        writer.write(payload)
        await writer.drain()
    return Client(reader, writer)


async def eventually(condition: Callable[[], bool | Awaitable[bool]]) -> None:
    async with asyncio.timeout(WAIT_S):
        while True:
            result = condition()
            if not isinstance(result, bool):
                result = await result
            if result:
                return
            await asyncio.sleep(0.01)


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(test())


def test_requests_are_answered_on_kept_alive_and_pipelined_connections() -> None:
    async def test() -> None:
        async with serving(limits()) as (port, _):
            client = await connect(port, payload=HEAD)
            assert (await client.answer()).startswith(b"HTTP/1.1 200 ")
            client.writer.write(HEAD + HEAD)
            assert (await client.answer()).endswith(b"ok")
            assert (await client.answer()).endswith(b"ok")
            client.close()

    run(test)


def test_answers_are_sent_without_waiting_for_the_clients_acknowledgement() -> None:
    """Every connection the REST server takes has TCP_NODELAY (found as 40 ms added to each
    answer on a kept-alive connection: Nagle's algorithm held the body until the client's
    delayed ACK; asyncio sets the option only on sockets made with proto=IPPROTO_TCP, and
    this test's listening socket, like the node's once, is made without)."""

    async def test() -> None:
        async with serving(limits()) as (port, _):
            client = await connect(port, payload=HEAD)
            assert (await client.answer()).startswith(b"HTTP/1.1 200 ")
            protocols = [obj for obj in gc.get_objects() if isinstance(obj, GuardedH11Protocol)]
            open_ones = [p for p in protocols if not p.transport.is_closing()]
            assert open_ones
            for protocol in open_ones:
                sock = protocol.transport.get_extra_info("socket")
                assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
            client.close()

    run(test)


def test_sockets_from_one_address_displace_each_other_and_a_new_request_gets_in() -> None:
    async def test() -> None:
        async with serving(limits(connections_per_address_max=3)) as (port, _):
            idle = [await connect(port) for _ in range(10)]
            half_sent = [await connect(port, payload=b"GET /ok HTTP/1.1\r\n") for _ in range(3)]
            client = await connect(port, payload=HEAD)
            assert (await client.answer()).startswith(b"HTTP/1.1 200 ")
            # Everything older than the last two half-sent sockets was closed to make room.
            for old in [*idle, half_sent[0]]:
                assert await old.closed_by_server()
            for client_socket in [*idle, *half_sent, client]:
                client_socket.close()

    run(test)


def test_a_connection_being_answered_is_never_displaced() -> None:
    async def test() -> None:
        async with serving(limits(connections_per_address_max=1)) as (port, app):
            held = await connect(port, payload=b"GET /hold HTTP/1.1\r\nHost: test\r\n\r\n")
            await eventually(lambda: app.holding == 1)
            newcomer = await connect(port, payload=HEAD)
            assert await newcomer.closed_by_server()  # refused: nothing idle to displace
            app.release.set()
            assert (await held.answer()).endswith(b"ok")
            # Answered, the held connection is idle again, and may now be displaced.
            later = await connect(port, payload=HEAD)
            assert (await later.answer()).endswith(b"ok")
            assert await held.closed_by_server()
            for client in (held, newcomer, later):
                client.close()

    run(test)


def test_the_server_limit_displaces_the_oldest_idle_connection_across_addresses() -> None:
    async def test() -> None:
        async with serving(limits(connections_max=4, connections_per_address_max=4)) as (port, _):
            idle = [await connect(port, source=f"127.0.0.{2 + index}") for index in range(4)]
            client = await connect(port, payload=HEAD)
            assert (await client.answer()).endswith(b"ok")
            assert await idle[0].closed_by_server()
            for other in [*idle, client]:
                other.close()

    run(test)


def test_idle_and_trickling_connections_are_closed_by_their_timeouts() -> None:
    async def test() -> None:
        async with serving(limits(request_receive_timeout_s=1, keep_alive_timeout_s=1)) as (
            port,
            _,
        ):
            idle = await connect(port)  # never says a word
            answered = await connect(port, payload=HEAD)  # then says nothing more
            assert (await answered.answer()).endswith(b"ok")
            trickling = await connect(port, payload=b"GET /ok HTTP/1.1\r\n")

            async def trickle() -> None:  # one header byte at a time: restarts no clock
                with contextlib.suppress(ConnectionError):
                    for _ in range(int(WAIT_S * 10)):
                        trickling.writer.write(b"X")
                        await trickling.writer.drain()
                        await asyncio.sleep(0.1)

            trickler = asyncio.create_task(trickle())
            assert await idle.closed_by_server()
            assert await answered.closed_by_server()
            assert await trickling.closed_by_server()
            trickler.cancel()
            for client in (idle, answered, trickling):
                client.close()

    run(test)


def test_requests_beyond_the_limit_are_answered_503_and_idle_connections_do_not_count() -> None:
    async def test() -> None:
        async with serving(limits(requests_in_progress_max=1)) as (port, app):
            idle = [await connect(port, source=f"127.0.0.{2 + index}") for index in range(20)]
            first = await connect(port, payload=HEAD)
            assert (await first.answer()).endswith(b"ok")
            held = await connect(port, payload=b"GET /hold HTTP/1.1\r\nHost: test\r\n\r\n")
            await eventually(lambda: app.holding == 1)
            refused = await connect(port, payload=HEAD)
            busy = await refused.answer()
            assert busy.startswith(b"HTTP/1.1 503 ")
            assert b"connection: close" in busy.lower()
            body = json.loads(busy.split(b"\r\n\r\n", 1)[1])
            assert body["error"] == "busy"
            app.release.set()
            assert (await held.answer()).endswith(b"ok")
            assert await refused.closed_by_server()
            for client in [*idle, first, held, refused]:
                client.close()

    run(test)


def test_a_request_head_still_incomplete_past_its_size_limit_is_refused() -> None:
    async def test() -> None:
        async with serving(limits(request_head_size_bytes_max=1024)) as (port, _):
            client = await connect(port, payload=b"GET /ok HTTP/1.1\r\nX-Padding: " + b"a" * 2048)
            async with asyncio.timeout(WAIT_S):
                answer = await client.reader.read(65536)
            assert answer.startswith(b"HTTP/1.1 400 ")
            assert await client.closed_by_server()
            client.close()

    run(test)


# --- the process's open-file limit -------------------------------------------------------

RAISE_IN_CHILD = """
import logging, resource, sys
logging.basicConfig(level=logging.WARNING, stream=sys.stdout, format="%(message)s")
soft, hard = int(sys.argv[1]), int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
from provledger.node.server import raise_file_descriptor_limit
print(raise_file_descriptor_limit(int(sys.argv[3])), *resource.getrlimit(resource.RLIMIT_NOFILE))
"""


def limits_in_child(soft: int, hard: int, minimum: int) -> list[str]:
    """What `raise_file_descriptor_limit(minimum)` does in a child process started with
    these limits (a child, so this process keeps its own): its log lines, then the soft limit
    it returned, and the soft and hard limits after."""
    result = subprocess.run(
        [sys.executable, "-c", RAISE_IN_CHILD, str(soft), str(hard), str(minimum)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.splitlines()


def test_the_node_raises_its_soft_open_file_limit_within_the_hard_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    hard = 4_096 if hard == resource.RLIM_INFINITY else hard
    assert hard >= 2_048, "this test needs a hard RLIMIT_NOFILE of at least 2,048"
    assert limits_in_child(256, hard, 2_048) == [f"2048 2048 {hard}"]  # raised
    assert limits_in_child(1_024, hard, 512) == [f"1024 1024 {hard}"]  # never lowered
    *warning, figures = limits_in_child(256, 1_024, 2_048)  # as far as the hard limit goes
    assert figures == "1024 1024 1024"
    assert "limited to 1024" in " ".join(warning)

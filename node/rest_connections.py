"""The REST server's connections: how many, from where, and for how long; and how many
requests it answers at once.

uvicorn serves the REST API with h11 on the node's own event loop. Left to itself it keeps a
connection that never sends a complete request for ever (it times out only the wait *between*
requests, and any byte stops that clock), and its `limit_concurrency` counts open connections
as well as requests, so 700 idle sockets made every request a 503. This module bounds the
connections below the HTTP layer, and bounds requests separately:

- **Per address and in all.** At most `connections_per_address_max` connections from one IP
  address and `connections_max` in all. A connection beyond either limit displaces the
  oldest *idle* connection (of that address, or of the server): one not answering a request
  and with nothing left to send. If none is idle the newcomer is closed at once. So sockets
  piled up from one address only ever displace each other, and a client never waits for a
  timeout to get in while some connection is merely waiting.
- **A deadline for each request.** From the moment a connection is ready for a request (it
  opened, or the previous answer has been sent), the whole request (its head and any body;
  the API's requests have none) must arrive within `request_receive_timeout_s`, however it
  trickles in; else the connection is closed. uvicorn's keep-alive clock restarts on every
  byte and so cannot do this.
- **Idle connections.** A connection with no request in progress that sends nothing for
  `timeout_keep_alive` seconds (uvicorn's setting) is closed, a new one included (uvicorn
  starts that clock only after a first answer).
- **Requests.** `RequestLimit` answers 503 to requests beyond `requests_max` in progress; idle
  connections never count.

Invariants:
- a connection being answered (h11's server state SEND_RESPONSE), or still sending its
  answer out, is never displaced; the request deadline never runs while a request is being
  answered and the whole request has arrived;
- every connection in the `ConnectionTable` is one uvicorn still tracks: it is added when
  made and removed when displaced or lost (removing twice is harmless), and WebSocket
  upgrades, which would hand the socket to another protocol object, are switched off
  (`ws="none"` in node/server.py).

`ConnectionTable` is plain bookkeeping (no I/O, no clock), tested on its own;
`guarded_protocol` makes the h11 protocol class for one server, with its own table;
`uvicorn_config` puts the pieces together with the limits of node/settings.py (`RestLimits`;
tests pass smaller ones).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from provledger.node.settings import (
    REST_CONNECTIONS_MAX,
    REST_CONNECTIONS_PER_ADDRESS_MAX,
    REST_GRACEFUL_SHUTDOWN_S,
    REST_KEEP_ALIVE_TIMEOUT_S,
    REST_REQUEST_HEAD_SIZE_BYTES_MAX,
    REST_REQUEST_RECEIVE_TIMEOUT_S,
    REST_REQUESTS_IN_PROGRESS_MAX,
)

log = logging.getLogger("provledger.rest")

BUSY_BODY = (
    b'{"error":"busy","reason":"the node is answering too many requests; try again shortly"}'
)


class Tracked(Protocol):
    """What the table needs of a connection: whether it may be displaced now."""

    def is_idle(self) -> bool: ...


class ConnectionTable:
    """The open connections of one server, by address, oldest first.

    A connection's place is the last time it became ready for a request (opened, or finished
    answering one), so a connection that trickles bytes cannot keep itself young."""

    def __init__(self, connections_max: int, connections_per_address_max: int) -> None:
        if not 0 < connections_per_address_max <= connections_max:
            raise ValueError("need 0 < connections per address <= connections in all")
        self.connections_max = connections_max
        self.connections_per_address_max = connections_per_address_max
        self._addresses: dict[Tracked, str] = {}
        self._all: OrderedDict[Tracked, None] = OrderedDict()
        self._by_address: dict[str, OrderedDict[Tracked, None]] = {}

    def __len__(self) -> int:
        return len(self._all)

    def count(self, address: str) -> int:
        return len(self._by_address.get(address, ()))

    def admit(self, connection: Tracked, address: str) -> list[Tracked] | None:
        """Add `connection` from `address`. Returns the connections to close to make room for
        it (already removed from the table), or None if there is no room: then it was not
        added and must be closed itself."""
        victims: list[Tracked] = []
        same_address = self._by_address.get(address, OrderedDict())
        if len(same_address) >= self.connections_per_address_max:
            victim = _oldest_idle(same_address, ())
            if victim is None:
                return None
            victims.append(victim)
        if len(self._all) - len(victims) >= self.connections_max:
            victim = _oldest_idle(self._all, victims)
            if victim is None:
                return None
            victims.append(victim)
        for victim in victims:
            self.remove(victim)
        self._addresses[connection] = address
        self._all[connection] = None
        self._by_address.setdefault(address, OrderedDict())[connection] = None
        return victims

    def ready_again(self, connection: Tracked) -> None:
        """`connection` finished answering a request: it is now the youngest."""
        address = self._addresses.get(connection)
        if address is not None:
            self._all.move_to_end(connection)
            self._by_address[address].move_to_end(connection)

    def remove(self, connection: Tracked) -> None:
        address = self._addresses.pop(connection, None)
        if address is None:
            return
        del self._all[connection]
        same_address = self._by_address[address]
        del same_address[connection]
        if not same_address:
            del self._by_address[address]


def _oldest_idle(
    connections: OrderedDict[Tracked, None], excluded: list[Tracked] | tuple[()]
) -> Tracked | None:
    # Connections being answered are few (RequestLimit bounds them), so this scan is short.
    for connection in connections:
        if connection not in excluded and connection.is_idle():
            return connection
    return None


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with the connection limits and the request deadline above.

    A subclass for one server (`guarded_protocol`) sets `table` and `receive_timeout_s`."""

    table: ClassVar[ConnectionTable]
    receive_timeout_s: ClassVar[float]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._receive_deadline: asyncio.TimerHandle | None = None

    def is_idle(self) -> bool:
        """Not answering a request, and with nothing left to send: safe to close."""
        return (
            self.conn.our_state is not h11.SEND_RESPONSE
            and self.transport.get_write_buffer_size() == 0
        )

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # Answers go out at once: asyncio sets TCP_NODELAY only on sockets made with
        # proto=IPPROTO_TCP, and without it every answer on a kept-alive connection waited
        # about 40 ms for the client's delayed ACK (Nagle's algorithm holding its body back).
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        address = self.client[0] if self.client is not None else ""
        victims = self.table.admit(self, address)
        if victims is None:
            log.debug("REST connection from %s refused: no idle connection to displace", address)
            transport.abort()
            return
        for victim in victims:
            if isinstance(victim, GuardedH11Protocol):
                victim.transport.abort()
        # uvicorn starts its keep-alive clock only after an answer; a new connection that
        # says nothing is idle too.
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler
        )
        self._follow_request()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow_request()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self.table.ready_again(self)
        self._follow_request()

    def connection_lost(self, exc: Exception | None) -> None:
        self.table.remove(self)
        self._cancel_deadline()
        super().connection_lost(exc)

    def _follow_request(self) -> None:
        """Run the request deadline while a request is awaited or arriving, not otherwise."""
        if self.transport.is_closing():
            self._cancel_deadline()
        elif self.conn.their_state in (h11.IDLE, h11.SEND_BODY):
            if self._receive_deadline is None:
                self._receive_deadline = self.loop.call_later(
                    self.receive_timeout_s, self._deadline_passed
                )
        else:
            self._cancel_deadline()

    def _deadline_passed(self) -> None:
        self._receive_deadline = None
        if self.transport.is_closing():
            return
        if self.transport.get_write_buffer_size() > 0:
            # The previous answer is still going out (a slow reader): the client cannot be
            # expected to send its next request yet, so the clock starts once it has gone.
            self._follow_request()
            return
        self.transport.abort()

    def _cancel_deadline(self) -> None:
        if self._receive_deadline is not None:
            self._receive_deadline.cancel()
            self._receive_deadline = None


def guarded_protocol(
    connections_max: int, connections_per_address_max: int, request_receive_timeout_s: float
) -> type[GuardedH11Protocol]:
    """The protocol class for one uvicorn server (`uvicorn.Config(http=...)`), with a table
    of its own."""

    class ServerProtocol(GuardedH11Protocol):
        table = ConnectionTable(connections_max, connections_per_address_max)
        receive_timeout_s = request_receive_timeout_s

    return ServerProtocol


Scope = dict[str, Any]
Receive = Any
Send = Any


class AsgiApp(Protocol):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None: ...


class RequestLimit:
    """ASGI middleware: at most `requests_max` HTTP requests in progress; beyond that, a 503
    in the API's error shape (`{"error": "busy", ...}`), and the connection is closed."""

    def __init__(self, app: AsgiApp, requests_max: int) -> None:
        if requests_max < 1:
            raise ValueError("requests_max must be at least 1")
        self.app = app
        self.requests_max = requests_max
        self.in_progress = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.in_progress >= self.requests_max:
            await send(
                {
                    "type": "http.response.start",
                    "status": 503,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(BUSY_BODY)).encode()),
                        (b"retry-after", b"1"),
                        (b"connection", b"close"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": BUSY_BODY})
            return
        self.in_progress += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_progress -= 1


@dataclass(frozen=True)
class RestLimits:
    """The REST server's limits; the defaults are node/settings.py's."""

    connections_max: int = REST_CONNECTIONS_MAX
    connections_per_address_max: int = REST_CONNECTIONS_PER_ADDRESS_MAX
    requests_in_progress_max: int = REST_REQUESTS_IN_PROGRESS_MAX
    request_receive_timeout_s: float = REST_REQUEST_RECEIVE_TIMEOUT_S
    keep_alive_timeout_s: int = REST_KEEP_ALIVE_TIMEOUT_S
    request_head_size_bytes_max: int = REST_REQUEST_HEAD_SIZE_BYTES_MAX
    graceful_shutdown_s: int = REST_GRACEFUL_SHUTDOWN_S


def uvicorn_config(app: AsgiApp, limits: RestLimits | None = None) -> uvicorn.Config:
    """uvicorn's configuration for serving `app` on the node's event loop within `limits`.

    uvicorn's `limit_concurrency`, which counted idle connections as requests, is not used:
    `RequestLimit` counts requests and the guarded protocol bounds connections. h11 is named,
    not "auto" (which would take httptools if it were installed), because the guard is an h11
    protocol; WebSockets are off (the API has none, and an upgrade would take a socket out of
    the guard's table). The node owns the loop, the signals and the logging."""
    limits = limits or RestLimits()
    return uvicorn.Config(
        RequestLimit(app, limits.requests_in_progress_max),
        http=guarded_protocol(
            limits.connections_max,
            limits.connections_per_address_max,
            limits.request_receive_timeout_s,
        ),
        ws="none",
        loop="none",
        lifespan="off",
        log_level="warning",
        access_log=False,  # node/rest/access_log.py writes it
        log_config=None,  # the node sets up logging (node/logs.py)
        timeout_graceful_shutdown=limits.graceful_shutdown_s,
        timeout_keep_alive=limits.keep_alive_timeout_s,
        h11_max_incomplete_event_size=limits.request_head_size_bytes_max,
    )

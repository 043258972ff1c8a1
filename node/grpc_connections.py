"""Bounds on each client connection to the gRPC API: how fast it calls, how much it holds.

gRPC bounds a connection's streams (`grpc.max_concurrent_streams`) and each message's size;
this bounds what one connection can make the node do with them:

- **rate**: a token bucket per connection, `calls_per_s_max` refilled per second up to
  `call_burst_max`; a call that finds it empty is answered RESOURCE_EXHAUSTED `rate_limited`
  before its method runs;
- **bytes in flight**: the request bytes of the connection's calls in progress, at most
  `in_flight_bytes_max`; a call that would pass it is answered RESOURCE_EXHAUSTED
  `too_much_in_flight`, and its bytes are released when an admitted call ends, however it
  ends.

A connection is the peer address gRPC reports (`context.peer()`, for example
"ipv4:10.0.0.7:51234"): one TCP connection. The guard keeps the state of at most
`connections_tracked_max` of them; past that it forgets the least recently seen one that has
nothing in flight (a forgotten connection starts again with a full bucket, which only the
connection itself could have used).

The clock is injected (`time.monotonic` by default), so the tests drive it by hand.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from provledger.node.settings import (
    GRPC_CONNECTION_CALL_BURST_MAX,
    GRPC_CONNECTION_CALLS_PER_S_MAX,
    GRPC_CONNECTION_IN_FLIGHT_BYTES_MAX,
    GRPC_CONNECTIONS_TRACKED_MAX,
)


@dataclass(frozen=True)
class ConnectionLimits:
    calls_per_s_max: float = GRPC_CONNECTION_CALLS_PER_S_MAX
    call_burst_max: int = GRPC_CONNECTION_CALL_BURST_MAX
    in_flight_bytes_max: int = GRPC_CONNECTION_IN_FLIGHT_BYTES_MAX
    connections_tracked_max: int = GRPC_CONNECTIONS_TRACKED_MAX

    def __post_init__(self) -> None:
        if not self.calls_per_s_max > 0:
            raise ValueError("calls_per_s_max must be more than 0")
        for name in ("call_burst_max", "in_flight_bytes_max", "connections_tracked_max"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")


@dataclass(frozen=True)
class Refused:
    """Why a call was not admitted: a stable code and a reason for people."""

    code: str
    reason: str


@dataclass
class _Connection:
    tokens: float
    refilled_at_s: float
    in_flight_bytes: int = 0
    calls_in_flight: int = 0


@dataclass
class Admitted:
    """A call that holds `size_bytes` of its connection's allowance until `release`d."""

    peer: str
    size_bytes: int
    released: bool = field(default=False)


class ConnectionGuard:
    def __init__(
        self,
        limits: ConnectionLimits | None = None,
        clock_s: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = limits or ConnectionLimits()
        self._clock_s = clock_s
        self._connections: OrderedDict[str, _Connection] = OrderedDict()

    def admit(self, peer: str, size_bytes: int) -> Admitted | Refused:
        """Take one call of `size_bytes` request bytes on connection `peer`, or say why not."""
        limits = self.limits
        now_s = self._clock_s()
        connection = self._connections.get(peer)
        if connection is None:
            connection = _Connection(tokens=float(limits.call_burst_max), refilled_at_s=now_s)
            self._connections[peer] = connection
            self._forget_idle()
        else:
            self._connections.move_to_end(peer)
            elapsed_s = max(0.0, now_s - connection.refilled_at_s)
            connection.tokens = min(
                float(limits.call_burst_max),
                connection.tokens + elapsed_s * limits.calls_per_s_max,
            )
            connection.refilled_at_s = now_s
        if connection.tokens < 1:
            return Refused(
                "rate_limited",
                f"this connection made more than {limits.call_burst_max} calls at once or "
                f"{limits.calls_per_s_max:g} a second; slow down",
            )
        if connection.in_flight_bytes + size_bytes > limits.in_flight_bytes_max:
            return Refused(
                "too_much_in_flight",
                f"this connection's calls in progress hold {connection.in_flight_bytes} request "
                f"bytes; with this call's {size_bytes} that is more than "
                f"{limits.in_flight_bytes_max}; wait for answers first",
            )
        connection.tokens -= 1
        connection.in_flight_bytes += size_bytes
        connection.calls_in_flight += 1
        return Admitted(peer, size_bytes)

    def release(self, call: Admitted) -> None:
        """The call ended: its bytes no longer count against its connection (once)."""
        if call.released:
            return
        call.released = True
        connection = self._connections.get(call.peer)
        if connection is not None:
            connection.in_flight_bytes -= call.size_bytes
            connection.calls_in_flight -= 1

    def in_flight_bytes(self, peer: str) -> int:
        connection = self._connections.get(peer)
        return connection.in_flight_bytes if connection is not None else 0

    @property
    def connections_tracked(self) -> int:
        return len(self._connections)

    def _forget_idle(self) -> None:
        excess = len(self._connections) - self.limits.connections_tracked_max
        if excess <= 0:
            return
        idle = []
        for peer, connection in self._connections.items():  # least recently seen first
            if connection.calls_in_flight == 0:
                idle.append(peer)
                if len(idle) == excess:
                    break
        for peer in idle:
            del self._connections[peer]

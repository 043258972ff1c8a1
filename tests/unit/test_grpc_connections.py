"""Each client connection's bounds on the gRPC API (node/grpc_connections.py): its call rate
and the request bytes its calls in progress hold, under a clock the test turns by hand."""

from __future__ import annotations

import pytest

from provledger.node.grpc_connections import (
    Admitted,
    ConnectionGuard,
    ConnectionLimits,
    Refused,
)


class Clock:
    def __init__(self) -> None:
        self.now_s = 1_000.0

    def __call__(self) -> float:
        return self.now_s


def guard_with(clock: Clock, **limits: float) -> ConnectionGuard:
    return ConnectionGuard(ConnectionLimits(**limits), clock_s=clock)  # type: ignore[arg-type]


def test_a_connection_past_its_burst_is_rate_limited_until_its_bucket_refills() -> None:
    clock = Clock()
    guard = guard_with(clock, calls_per_s_max=2.0, call_burst_max=3)
    calls = [guard.admit("ipv4:10.0.0.1:5000", 10) for _ in range(3)]
    assert all(isinstance(call, Admitted) for call in calls)
    refused = guard.admit("ipv4:10.0.0.1:5000", 10)
    assert isinstance(refused, Refused) and refused.code == "rate_limited"
    assert "slow down" in refused.reason
    clock.now_s += 0.5  # one call's worth at 2 a second
    assert isinstance(guard.admit("ipv4:10.0.0.1:5000", 10), Admitted)
    assert isinstance(guard.admit("ipv4:10.0.0.1:5000", 10), Refused)
    clock.now_s += 100  # refills to the burst, never past it
    admitted = [guard.admit("ipv4:10.0.0.1:5000", 0) for _ in range(4)]
    assert [isinstance(call, Admitted) for call in admitted] == [True, True, True, False]


def test_one_connections_calls_do_not_use_up_anothers() -> None:
    clock = Clock()
    guard = guard_with(clock, calls_per_s_max=1.0, call_burst_max=1)
    assert isinstance(guard.admit("ipv4:10.0.0.1:5000", 0), Admitted)
    assert isinstance(guard.admit("ipv4:10.0.0.1:5000", 0), Refused)
    assert isinstance(guard.admit("ipv4:10.0.0.1:5001", 0), Admitted)


def test_bytes_in_flight_are_bounded_and_released_when_calls_end() -> None:
    clock = Clock()
    guard = guard_with(clock, in_flight_bytes_max=1_000)
    first = guard.admit("peer", 600)
    assert isinstance(first, Admitted)
    refused = guard.admit("peer", 500)
    assert isinstance(refused, Refused) and refused.code == "too_much_in_flight"
    assert "600" in refused.reason and "1000" in refused.reason
    assert guard.in_flight_bytes("peer") == 600  # a refused call holds nothing
    second = guard.admit("peer", 400)
    assert isinstance(second, Admitted)
    guard.release(first)
    guard.release(first)  # released once, however often it is said
    assert guard.in_flight_bytes("peer") == 400
    assert isinstance(guard.admit("peer", 600), Admitted)


def test_a_single_request_larger_than_the_allowance_is_refused() -> None:
    guard = guard_with(Clock(), in_flight_bytes_max=100)
    refused = guard.admit("peer", 101)
    assert isinstance(refused, Refused) and refused.code == "too_much_in_flight"


def test_the_guard_forgets_idle_connections_past_its_bound_but_never_busy_ones() -> None:
    clock = Clock()
    guard = guard_with(clock, connections_tracked_max=3, in_flight_bytes_max=100)
    busy = guard.admit("busy", 100)
    assert isinstance(busy, Admitted)
    for index in range(10):
        assert isinstance(guard.admit(f"idle-{index}", 1), Admitted)
        guard.release(Admitted(f"idle-{index}", 1))
    assert guard.connections_tracked == 3
    # The busy connection is still known, with its bytes: a second call is still refused.
    assert guard.in_flight_bytes("busy") == 100
    assert isinstance(guard.admit("busy", 1), Refused)


@pytest.mark.parametrize(
    "limits",
    [
        {"calls_per_s_max": 0.0},
        {"call_burst_max": 0},
        {"in_flight_bytes_max": 0},
        {"connections_tracked_max": 0},
    ],
)
def test_limits_that_would_refuse_everything_are_refused(limits: dict) -> None:
    with pytest.raises(ValueError):
        ConnectionLimits(**limits)

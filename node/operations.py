"""What an operator's monitoring reads: the node's state as metrics and readiness, and the
operations listener that serves them.

`NodeProbe` takes a snapshot of a running node (ledger, consensus driver, peer network) for
the readiness judgement (node/readiness.py `judge`, the one home of that judgement) and for
the gauges of the metrics (node/metrics.py). It runs on the node's event loop (the peer
network is not thread-safe), so the routes that call it are `async`.

The operations listener (`[operations] listen`, node/config.py), plain HTTP, no token: bind
it to loopback or a monitoring network only.
- `GET /metrics`: the Prometheus text format, from the node's own registry;
- `GET /live`: 200 `{"live": true}` while the process serves;
- `GET /ready`: 200 when ready, else 503; the body is `{"ready", "reasons": [{"code",
  "detail"}]}` listing every reason it is not.
The REST API answers the same at `/v1/health/live` and `/v1/health/ready`; gRPC health says
the same with the overall service "" (`follow_readiness`), while
`provledger.v1.LedgerService` says SERVING once the node has started (liveness).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from grpc_health.v1 import health, health_pb2
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from provledger.node.consensus_driver import ConsensusDriver
from provledger.node.ledger import LedgerNode
from provledger.node.metrics import Gauges
from provledger.node.peers import PeerNetwork
from provledger.node.readiness import NodeSnapshot, Readiness, ReadinessSettings, judge

log = logging.getLogger("provledger.operations")

READINESS_POLL_INTERVAL_S = 1.0  # how often gRPC health follows readiness
STORE_FILES_COUNTED_MAX = 100_000  # a bound on the walk that sizes the data folder


class NodeProbe:
    def __init__(
        self,
        node: LedgerNode,
        driver: ConsensusDriver,
        network: PeerNetwork | None,
        settings: ReadinessSettings,
        clock_s: Callable[[], float] = time.monotonic,
    ) -> None:
        self._node = node
        self._driver = driver
        self._network = network
        self.settings = settings
        self._clock_s = clock_s
        self._started = False
        self._quorum_at = clock_s()  # the last moment a quorum was seen (start counts as one)

    def mark_started(self) -> None:
        self._started = True
        self._quorum_at = max(self._quorum_at, self._clock_s())

    def snapshot(self) -> NodeSnapshot:
        node = self._node
        head = node.store.head_height
        validators = self._driver.state.validators  # no store read: a damaged store refuses
        ids = {validator.validator_id for validator in validators.validators}
        connected = self._network.connected_peers() if self._network is not None else set()
        validators_connected = len(connected & ids) + (1 if node.node_id in ids else 0)
        now = self._clock_s()
        last_commit = node.metrics.last_commit_s
        if last_commit is not None and last_commit > self._quorum_at:
            self._quorum_at = last_commit
        if validators_connected >= validators.quorum_size:
            self._quorum_at = now
        damage = node.store.damage
        return NodeSnapshot(
            started=self._started,
            syncing=self._driver.syncing,
            head_height=head,
            highest_peer_height=max(self._driver.peer_heights.values(), default=0),
            validators_connected=validators_connected,
            quorum_size=validators.quorum_size,
            seconds_since_quorum=max(0.0, now - self._quorum_at),
            store_damage=None if damage is None else str(damage),
            forks_seen=node.forks.count(),
        )

    def readiness(self) -> Readiness:
        return judge(self.snapshot(), self.settings)

    def gauges(self) -> Gauges:
        snapshot = self.snapshot()
        mempool = self._node.app.mempool
        return Gauges(
            height=snapshot.head_height,
            round=self._driver.state.round,
            mempool_events=len(mempool),
            mempool_bytes=mempool.bytes_held,
            peers_connected=len(self._network.connected_peers()) if self._network else 0,
            sync_lag_blocks=snapshot.sync_lag_blocks,
            store_bytes=folder_bytes(self._node.store.path),
            ready=judge(snapshot, self.settings).ready,
        )


def folder_bytes(folder: Path, files_max: int = STORE_FILES_COUNTED_MAX) -> int:
    """The bytes of the files under `folder` (at most `files_max` files are counted); files
    that vanish meanwhile (LevelDB compacts) count 0."""
    total = 0
    counted = 0
    for root, _, names in os.walk(folder):
        for name in names:
            if counted >= files_max:
                return total
            counted += 1
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(root, name)).st_size
    return total


def readiness_response(readiness: Readiness) -> JSONResponse:
    """200 when ready, else 503; the body lists every reason (REST and operations alike)."""
    return JSONResponse(readiness.as_json(), 200 if readiness.ready else 503)


def live_response() -> JSONResponse:
    return JSONResponse({"live": True})


def create_operations_app(node: LedgerNode, probe: NodeProbe) -> Starlette:
    """/metrics, /live and /ready (see the module docstring)."""
    registry = node.metrics.registry

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    async def live(request: Request) -> JSONResponse:
        return live_response()

    async def ready(request: Request) -> JSONResponse:
        return readiness_response(probe.readiness())

    return Starlette(
        routes=[
            Route("/metrics", metrics, methods=["GET"]),
            Route("/live", live, methods=["GET"]),
            Route("/ready", ready, methods=["GET"]),
        ]
    )


class ReadinessFollower:
    """Keeps gRPC health of `names` SERVING while the node is ready, NOT_SERVING while not,
    and logs every change with its reasons: `update` once, `run` until cancelled."""

    def __init__(
        self,
        probe: NodeProbe,
        servicer: health.aio.HealthServicer,
        names: Sequence[str],
        interval_s: float = READINESS_POLL_INTERVAL_S,
    ) -> None:
        self._probe = probe
        self._servicer = servicer
        self._names = tuple(names)
        self._interval_s = interval_s
        self._serving: bool | None = None

    async def update(self) -> None:
        readiness = self._probe.readiness()
        if readiness.ready == self._serving:
            return
        self._serving = readiness.ready
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if readiness.ready
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in self._names:
            await self._servicer.set(name, status)
        if readiness.ready:
            log.info("ready")
        else:
            reasons = "; ".join(f"{r.code}: {r.detail}" for r in readiness.reasons)
            log.warning("not ready: %s", reasons)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.update()
            except Exception:  # a bug here must not leave health stuck: log, judge again
                log.exception("judging readiness failed")

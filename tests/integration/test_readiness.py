"""Issue 11, readiness on real nodes: it goes false, with the reason, and comes back.

A consortium of four, with `ready_quorum_silence_s_max = 2` and `ready_lag_blocks_max = 5`:
- two nodes stop, so the other two can neither commit nor see a quorum connected: within the
  silence both say not ready with `no_quorum` (operations /ready and REST /v1/health/ready
  503, gRPC health of "" NOT_SERVING) while they stay live (/live 200, LedgerService
  SERVING); the two start again and all four are ready again;
- a node whose peer reports a head far above its own says not ready with `behind_peers`
  until that stops. The peer is a stand-in for node-2 (the real one stopped): a PeerService
  with node-2's certificate that answers every status with a height 1,000 above the chain's
  and has no block to sync, so the lag lasts, deterministically, and node-3 commits with the
  others meanwhile. Block sync itself (`catching_up`) is over too soon on a real node to
  be seen without timing; tests/unit/test_readiness_judgement.py covers that reason.

Every wait polls a condition with a generous deadline; none depends on timing.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2
from support.lying_node import issued_material
from support.processes import (
    LEDGER_SERVICE,
    NodeCluster,
    health_status,
    init_consortium,
    wait_until,
)

from provledger.cli.consortium import ConsortiumLayout
from provledger.node import tls
from provledger.node.peers import NODE_ID_METADATA_KEY
from provledger.v1 import peer_pb2, peer_pb2_grpc

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NODES = 4
SILENCE_S = 2
LAG_MAX = 5
CLAIMED_LEAD = 1_000
WAIT_S = 90.0
HTTP_TIMEOUT_S = 10.0
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def http_get(address: str, path: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://{address}{path}", timeout=HTTP_TIMEOUT_S) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def reason_codes(address: str) -> list[str] | None:
    """The reasons /ready gives at the operations `address`; None when ready (200)."""
    status, body = http_get(address, "/ready")
    if status == 200:
        assert body == {"ready": True, "reasons": []}
        return None
    assert status == 503 and body["ready"] is False
    return [reason["code"] for reason in body["reasons"]]


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> ConsortiumLayout:
    layout = init_consortium(tmp_path_factory.mktemp("readiness"), nodes=NODES)
    for config in layout.node_configs:
        text = config.read_text()
        assert text.rstrip().splitlines()[-2] == "[operations]"  # the last table: append to it
        config.write_text(
            f"{text}ready_quorum_silence_s_max = {SILENCE_S}\nready_lag_blocks_max = {LAG_MAX}\n"
        )
    return layout


@pytest.fixture(scope="module")
def cluster(layout: ConsortiumLayout) -> Iterator[NodeCluster]:
    cluster = NodeCluster.for_layout(layout, Path(layout.directory))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def wait_all_ready(layout: ConsortiumLayout, cluster: NodeCluster, indexes: range) -> None:
    for index in indexes:
        ops = layout.operations_addresses[index]
        wait_until(lambda ops=ops: reason_codes(ops) is None, WAIT_S, f"node-{index} ready")
        node = cluster[index]
        wait_until(
            lambda node=node: health_status(node.address) == SERVING,
            WAIT_S,
            f'node-{index}\'s gRPC health of "" SERVING',
        )


def test_quorum_lost_makes_the_rest_not_ready_and_its_return_ready(layout, cluster):
    wait_all_ready(layout, cluster, range(NODES))
    cluster[2].stop()
    cluster[3].stop()
    try:
        for index in (0, 1):
            ops = layout.operations_addresses[index]
            wait_until(
                lambda ops=ops: reason_codes(ops) == ["no_quorum"],
                WAIT_S,
                f"node-{index} not ready for no_quorum",
            )
            node = cluster[index]
            wait_until(
                lambda node=node: health_status(node.address) == NOT_SERVING,
                WAIT_S,
                f'node-{index}\'s gRPC health of "" NOT_SERVING',
            )
            # Not ready, but live: the process serves, and says so.
            assert health_status(node.address, LEDGER_SERVICE) == SERVING
            assert http_get(ops, "/live") == (200, {"live": True})
            rest = layout.rest_addresses[index]
            status, body = http_get(rest, "/v1/health/ready")
            assert status == 503
            assert [reason["code"] for reason in body["reasons"]] == ["no_quorum"]
            assert "validators a quorum needs" in body["reasons"][0]["detail"]
            assert http_get(rest, "/v1/health/live") == (200, {"live": True})
    finally:
        cluster[2].start(wait=False)
        cluster[3].start(wait=False)
        cluster[2].wait_serving()
        cluster[3].wait_serving()
    wait_all_ready(layout, cluster, range(NODES))


class _StandIn(peer_pb2_grpc.PeerServiceServicer):
    """node-2's PeerService, as a liar: far ahead, with nothing to sync."""

    def __init__(self, node_id: str, height: int) -> None:
        self._node_id = node_id
        self._height = height

    def Gossip(self, request_iterator, context):  # type: ignore[no-untyped-def]
        context.send_initial_metadata(((NODE_ID_METADATA_KEY, self._node_id),))
        for _ in request_iterator:
            pass
        return peer_pb2.GossipAck()

    def SyncBlocks(self, request, context):  # type: ignore[no-untyped-def]
        return iter(())

    def Status(self, request, context):  # type: ignore[no-untyped-def]
        return peer_pb2.StatusResponse(node_id=self._node_id, height=self._height)


def test_a_node_far_behind_its_peers_is_not_ready(layout, cluster):
    wait_all_ready(layout, cluster, range(NODES))
    height = max(cluster.heights().values())
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    peer_pb2_grpc.add_PeerServiceServicer_to_server(
        _StandIn("node-2", height + CLAIMED_LEAD), server
    )
    port = server.add_secure_port(
        "127.0.0.1:0", tls.server_credentials(issued_material(layout, "node-2"))
    )
    server.start()
    config = layout.node_configs[3]
    original = config.read_text()
    real_node_2 = f'node-2 = "{_peer_address(original, "node-2")}"'
    try:
        cluster[2].stop()
        cluster[3].stop()
        config.write_text(original.replace(real_node_2, f'node-2 = "127.0.0.1:{port}"'))
        cluster[3].start()
        ops = layout.operations_addresses[3]

        def behind() -> bool:
            codes = reason_codes(ops)
            return codes is not None and "behind_peers" in codes

        wait_until(behind, WAIT_S, "node-3 not ready for behind_peers")
        wait_until(
            lambda: health_status(cluster[3].address) == NOT_SERVING,
            WAIT_S,
            'node-3\'s gRPC health of "" NOT_SERVING',
        )
        status, body = http_get(ops, "/ready")
        assert status == 503
        assert any(
            reason["code"] == "behind_peers" and f"at most {LAG_MAX} allowed" in reason["detail"]
            for reason in body["reasons"]
        )
        # node-0, which no peer lies to, is ready (once node-3 is back, node-0, node-1 and
        # node-3 are a quorum), while node-3 is still not.
        wait_until(
            lambda: reason_codes(layout.operations_addresses[0]) is None, WAIT_S, "node-0 ready"
        )
        assert behind()
    finally:
        cluster[3].stop()
        config.write_text(original)
        server.stop(1).wait()
        cluster[2].start(wait=False)
        cluster[3].start(wait=False)
        cluster[2].wait_serving()
        cluster[3].wait_serving()
    wait_all_ready(layout, cluster, range(NODES))


def _peer_address(config_text: str, peer_id: str) -> str:
    for line in config_text.splitlines():
        if line.startswith(f"{peer_id} = "):
            return line.split("=", 1)[1].strip().strip('"')
    raise AssertionError(f"no {peer_id} in [peers]")

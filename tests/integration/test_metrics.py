"""Issue 11, metrics: a real consortium of four under a small load, scraped at `/metrics` on the
operations listener and parsed with prometheus_client's own parser.

What moves, compared before and after (never on timing): the height, the events admitted and
refused by code, the submit-to-commit latency's count (one per event the node admitted and
committed), the committed blocks and their bytes and rounds, the mempool (an event held while
two nodes are down, so no block can commit, then gone once they are back) and the peers
connected (3, then 1, then 3). The process metrics and the store's size are there. The
operations listener's /live and /ready, and the REST API's /v1/health/live and ready, answer.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families
from support.processes import NodeCluster, client_channel, init_consortium, wait_until

from provledger.cli.client import EventSigner, Identity
from provledger.cli.consortium import ConsortiumLayout
from provledger.v1 import api_pb2, api_pb2_grpc, ledger_pb2

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NODES = 4
EVENTS = 12
MEMBER = "agency-a"
RPC_TIMEOUT_S = 30.0
WAIT_S = 90.0
HTTP_TIMEOUT_S = 10.0

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def http_get(address: str, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://{address}{path}", timeout=HTTP_TIMEOUT_S) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def scrape(address: str) -> Samples:
    """Every sample at /metrics on the operations listener at `address`, parsed with
    prometheus_client's parser: (name, labels) -> value."""
    status, body = http_get(address, "/metrics")
    assert status == 200
    samples: Samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@dataclass
class Setup:
    layout: ConsortiumLayout
    cluster: NodeCluster
    signer: EventSigner
    labels: Iterator[int]

    def event(self) -> ledger_pb2.SignedEvent:
        asset_id = f"metrics/{next(self.labels)}"
        return self.signer.event(
            "asset_registered",
            asset_id=asset_id,
            content_digest=hashlib.sha256(asset_id.encode()).digest(),
            classification=ledger_pb2.CLASSIFICATION_GENERAL,
        )


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    directory = tmp_path_factory.mktemp("metrics")
    layout = init_consortium(directory, nodes=NODES)
    cluster = NodeCluster.for_layout(layout, directory)
    try:
        cluster.start()
        signer = EventSigner(Identity.load(layout.identities[MEMBER]))
        yield Setup(layout, cluster, signer, itertools.count())
    finally:
        cluster.stop()


def test_the_named_metrics_move_under_load(setup):
    ops = setup.layout.operations_addresses[0]
    wait_until(
        lambda: value(scrape(ops), "provledger_peers_connected") == NODES - 1,
        WAIT_S,
        "node-0 connected to its three peers",
    )
    before = scrape(ops)
    with client_channel(setup.cluster[0].address) as channel:
        stub = api_pb2_grpc.LedgerServiceStub(channel)
        heights = []
        for _ in range(EVENTS):
            receipt = stub.SubmitAndWait(
                api_pb2.SubmitAndWaitRequest(event=setup.event()), timeout=RPC_TIMEOUT_S
            )
            heights.append(receipt.height)
        # The same event again is refused: duplicate_event.
        again = setup.event()
        stub.SubmitAndWait(api_pb2.SubmitAndWaitRequest(event=again), timeout=RPC_TIMEOUT_S)
        with pytest.raises(grpc.RpcError):
            stub.SubmitEvent(api_pb2.SubmitEventRequest(event=again), timeout=RPC_TIMEOUT_S)
    after = scrape(ops)

    assert value(after, "provledger_height") >= max(heights) > value(before, "provledger_height")
    admitted = "provledger_events_admitted_total"
    assert value(after, admitted, origin="client") - value(before, admitted, origin="client") == (
        EVENTS + 1
    )
    refused = "provledger_events_refused_total"
    assert (
        value(after, refused, origin="client", code="duplicate_event")
        - value(before, refused, origin="client", code="duplicate_event")
        == 1
    )
    # Every event node-0 admitted was committed there, and timed: one observation each.
    latency = "provledger_commit_latency_seconds_count"
    assert value(after, latency) - value(before, latency) == EVENTS + 1
    assert value(after, "provledger_commit_latency_seconds_sum") > value(
        before, "provledger_commit_latency_seconds_sum"
    )
    committed = value(after, "provledger_events_committed_total") - value(
        before, "provledger_events_committed_total"
    )
    assert committed >= EVENTS + 1
    blocks = value(after, "provledger_block_bytes_count") - value(
        before, "provledger_block_bytes_count"
    )
    assert blocks >= 1
    assert (
        value(after, "provledger_rounds_per_height_count")
        - value(before, "provledger_rounds_per_height_count")
        == blocks
    )
    new_blocks = sum(
        value(after, "provledger_blocks_committed_total", source=source)
        - value(before, "provledger_blocks_committed_total", source=source)
        for source in ("consensus", "sync")
    )
    assert new_blocks == blocks
    assert value(after, "provledger_block_bytes_sum") > value(before, "provledger_block_bytes_sum")
    assert value(after, "provledger_store_size_bytes") > 0
    assert value(after, "provledger_sync_lag_blocks") >= 0
    assert value(after, "provledger_ready") == 1
    # Process metrics, on the node's own registry.
    assert value(after, "process_resident_memory_bytes") > 0
    assert value(after, "process_cpu_seconds_total") > 0
    assert any(name == "python_info" for name, _ in after)


def test_the_mempool_and_peers_move_when_two_nodes_stop(setup):
    ops = setup.layout.operations_addresses[0]
    cluster = setup.cluster
    cluster[2].stop()
    cluster[3].stop()
    try:
        wait_until(
            lambda: value(scrape(ops), "provledger_peers_connected") == 1,
            WAIT_S,
            "node-0 sees only node-1",
        )
        before = scrape(ops)
        with client_channel(cluster[0].address) as channel:
            stub = api_pb2_grpc.LedgerServiceStub(channel)
            stub.SubmitEvent(api_pb2.SubmitEventRequest(event=setup.event()), timeout=RPC_TIMEOUT_S)
        held = scrape(ops)
        # Two of four cannot commit: the event waits in the mempool.
        assert (
            value(held, "provledger_mempool_events")
            == value(before, "provledger_mempool_events") + 1
        )
        assert value(held, "provledger_mempool_bytes") > value(before, "provledger_mempool_bytes")
        assert value(held, "provledger_height") == value(before, "provledger_height")
    finally:
        cluster[2].start(wait=False)
        cluster[3].start(wait=False)
        cluster[2].wait_serving()
        cluster[3].wait_serving()
    wait_until(
        lambda: value(scrape(ops), "provledger_mempool_events") == 0,
        WAIT_S,
        "the held event committed once a quorum was back",
    )
    back = scrape(ops)
    assert value(back, "provledger_mempool_bytes") == 0
    assert value(back, "provledger_height") > value(held, "provledger_height")
    wait_until(
        lambda: value(scrape(ops), "provledger_peers_connected") == NODES - 1,
        WAIT_S,
        "node-0 connected to its three peers again",
    )


def test_health_endpoints_answer(setup):
    ops = setup.layout.operations_addresses[0]
    assert http_get(ops, "/live") == (200, b'{"live":true}')
    wait_until(lambda: http_get(ops, "/ready")[0] == 200, WAIT_S, "node-0 ready")
    assert json.loads(http_get(ops, "/ready")[1]) == {"ready": True, "reasons": []}
    rest = setup.layout.rest_addresses[0]
    # The REST API answers the same, without a token (its TLS is the client API's; REST here
    # is plain HTTP on loopback, as consortium init writes it).
    assert http_get(rest, "/v1/health/live")[0] == 200
    assert json.loads(http_get(rest, "/v1/health/ready")[1])["ready"] is True
    assert json.loads(http_get(rest, "/v1/health")[1])["status"] == "ok"
    assert http_get(ops, "/nothing")[0] == 404

"""The client port of a real node process is secure by default: TLS under the consortium CA,
reads only with a token, each connection bounded, plaintext only on loopback when asked for.

(What each reader may read, call by call against REST, is tests/integration/
test_access_parity.py; the bounds' arithmetic is tests/unit/test_grpc_connections.py.)
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from support.processes import (
    ClientAccess,
    NodeProcess,
    client_channel,
    init_consortium,
    member_token,
    node_command,
    note_access,
)

from provledger.cli.client import EventSigner, Identity, open_channel
from provledger.cli.consortium import ConsortiumLayout
from provledger.cli.consortium import init_consortium as write_consortium
from provledger.v1 import api_pb2, api_pb2_grpc, ledger_pb2

RPC_TIMEOUT_S = 10
NODE_EXIT_TIMEOUT_S = 30
# Every LedgerService read, with a request that would be answered if the caller could read.
READS = [
    ("GetEvent", api_pb2.GetEventRequest(event_id=b"\x01" * 32)),
    ("GetBlock", api_pb2.GetBlockRequest()),
    ("GetCheckpoint", api_pb2.GetCheckpointRequest()),
    ("GetInclusionProof", api_pb2.GetInclusionProofRequest(event_id=b"\x01" * 32)),
    # A height past the head: the answer must not tell an anonymous caller the head height.
    ("GetInclusionProof", api_pb2.GetInclusionProofRequest(event_id=b"\x01" * 32, height=10**9)),
    ("GetBlock", api_pb2.GetBlockRequest(height=10**9)),
    ("GetCheckpoint", api_pb2.GetCheckpointRequest(height=10**9)),
    ("GetConsistencyProof", api_pb2.GetConsistencyProofRequest(first_height=1)),
    ("GetAsset", api_pb2.GetAssetRequest(asset_id="port/asset")),
    ("GetGrant", api_pb2.GetGrantRequest(grant_id="port/grant")),
    ("GetOrder", api_pb2.GetOrderRequest(order_id="port/order")),
    ("GetAssetHistory", api_pb2.GetAssetHistoryRequest(asset_id="port/asset")),
    (
        "GetLineage",
        api_pb2.GetLineageRequest(
            asset_id="port/asset", direction=api_pb2.LINEAGE_DIRECTION_UPSTREAM
        ),
    ),
]


def rejected(call) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        call()
    return raised.value


def set_grpc(layout: ConsortiumLayout, settings: str) -> None:
    """Replace the [grpc] lines after `listen` in node-0's config (a one-node layout, whose
    [grpc] table holds listen and tls_dir only) with `settings`."""
    config = layout.node_configs[0]
    text = config.read_text()
    assert text.count('tls_dir = "tls"\n') == 1, text
    config.write_text(text.replace('tls_dir = "tls"\n', settings))


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory):
    """One node, with a small call burst that no refill reaches during the test, so that the
    rate limit shows deterministically, and the default byte allowance."""
    tmp_path = tmp_path_factory.mktemp("client-port")
    layout = init_consortium(tmp_path, nodes=1)
    set_grpc(
        layout,
        'tls_dir = "tls"\nconnection_call_burst_max = 40\nconnection_calls_per_s_max = 0.001\n'
        "connection_in_flight_bytes_max = 4096\n",
    )
    with NodeProcess.for_node(layout, 0, tmp_path) as process:
        signer = EventSigner(Identity.load(layout.identities["agency-a"]))
        with client_channel(process.address) as channel:
            api_pb2_grpc.LedgerServiceStub(channel).SubmitAndWait(
                api_pb2.SubmitAndWaitRequest(
                    event=signer.event(
                        "asset_registered",
                        asset_id="port/asset",
                        content_digest=b"\x02" * 32,
                        classification=ledger_pb2.CLASSIFICATION_GENERAL,
                    )
                ),
                timeout=RPC_TIMEOUT_S,
            )
        yield process, layout


def own_connection(address: str, **options) -> grpc.Channel:
    """A channel on a TCP connection of its own (gRPC shares connections between channels
    with the same arguments unless told not to), so each test starts with a full bucket."""
    return client_channel(address, extra_options=[("grpc.use_local_subchannel_pool", 1)], **options)


def test_an_anonymous_client_reads_nothing_but_health_and_reflection(node) -> None:
    process, _ = node
    with own_connection(process.address, token=None) as channel:
        stub = api_pb2_grpc.LedgerServiceStub(channel)
        for method, request in READS:
            error = rejected(lambda m=method, r=request: getattr(stub, m)(r, timeout=RPC_TIMEOUT_S))
            assert error.code() == grpc.StatusCode.UNAUTHENTICATED, method
            assert error.details().startswith("missing_token: "), (method, error.details())
        stream = stub.SubscribeBlocks(api_pb2.SubscribeBlocksRequest(from_height=1))
        error = rejected(lambda: next(iter(stream)))
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        assert error.details().startswith("missing_token: ")

        health = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=RPC_TIMEOUT_S
        )
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        services = set(ProtoReflectionDescriptorDatabase(channel).get_services())
        assert "provledger.v1.LedgerService" in services


def test_a_members_token_reads_what_concerns_it_and_whole_blocks_need_an_auditor(node) -> None:
    process, layout = node
    owner = member_token(layout, "agency-a")
    stranger = member_token(layout, "agency-b")
    request = api_pb2.GetAssetRequest(asset_id="port/asset")
    with own_connection(process.address, token=owner) as channel:
        stub = api_pb2_grpc.LedgerServiceStub(channel)
        assert stub.GetAsset(request, timeout=RPC_TIMEOUT_S).owner_id == "agency-a"
        assert stub.GetCheckpoint(api_pb2.GetCheckpointRequest(), timeout=RPC_TIMEOUT_S).header
        error = rejected(lambda: stub.GetBlock(api_pb2.GetBlockRequest(), timeout=RPC_TIMEOUT_S))
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
        assert error.details().startswith("blocks_need_auditor: ")
    with own_connection(process.address, token=stranger) as channel:
        stub = api_pb2_grpc.LedgerServiceStub(channel)
        error = rejected(lambda: stub.GetAsset(request, timeout=RPC_TIMEOUT_S))
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    # The scheme is case-insensitive, as HTTP's: "bearer" reads as "Bearer" does.
    with own_connection(process.address, token=None) as channel:
        answer = api_pb2_grpc.LedgerServiceStub(channel).GetAsset(
            request, metadata=(("authorization", f"bearer {owner}"),), timeout=RPC_TIMEOUT_S
        )
        assert answer.owner_id == "agency-a"
    with own_connection(process.address) as channel:  # the auditor's token
        block = api_pb2_grpc.LedgerServiceStub(channel).GetBlock(
            api_pb2.GetBlockRequest(), timeout=RPC_TIMEOUT_S
        )
        assert block.block.header


def test_plaintext_and_strangers_certificates_never_reach_the_service(node, tmp_path) -> None:
    process, layout = node
    token = member_token(layout, "auditor")
    request = api_pb2.GetCheckpointRequest()
    stranger = write_consortium(tmp_path / "stranger", 1)
    attempts = {
        "plaintext": open_channel(process.address, plaintext=True, token=token),
        "another CA": open_channel(
            process.address,
            ca_certificate_pem=stranger.ca_certificate.read_bytes(),
            token=token,
        ),
        # The right CA, but the client dials a name the node's certificate does not carry.
        "a name not in the certificate": open_channel(
            process.address,
            ca_certificate_pem=layout.ca_certificate.read_bytes(),
            token=token,
            options=[("grpc.ssl_target_name_override", "elsewhere.example")],
        ),
    }
    for what, channel in attempts.items():
        with channel:
            stub = api_pb2_grpc.LedgerServiceStub(channel)
            error = rejected(lambda stub=stub: stub.GetCheckpoint(request, timeout=RPC_TIMEOUT_S))
            assert error.code() == grpc.StatusCode.UNAVAILABLE, what
    # The names every certificate carries work: localhost, and the address itself.
    port = process.address.rsplit(":", 1)[1]
    with open_channel(
        f"localhost:{port}", ca_certificate_pem=layout.ca_certificate.read_bytes(), token=token
    ) as channel:
        assert (
            api_pb2_grpc.LedgerServiceStub(channel)
            .GetCheckpoint(request, timeout=RPC_TIMEOUT_S)
            .header
        )


def test_a_connection_past_its_call_burst_is_rate_limited_and_others_are_not(node) -> None:
    process, _ = node
    request = api_pb2.GetCheckpointRequest()
    with own_connection(process.address) as channel:
        stub = api_pb2_grpc.LedgerServiceStub(channel)
        answered = 0
        while answered < 100:
            try:
                stub.GetCheckpoint(request, timeout=RPC_TIMEOUT_S)
            except grpc.RpcError as error:
                assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                assert error.details().startswith("rate_limited: ")
                break
            answered += 1
        assert answered == 40  # the burst; at 0.001 calls/s no call is refilled meanwhile
        # The refusal holds for this connection only.
        with own_connection(process.address) as other:
            api_pb2_grpc.LedgerServiceStub(other).GetCheckpoint(request, timeout=RPC_TIMEOUT_S)


def test_a_request_larger_than_the_connections_byte_allowance_is_refused(node) -> None:
    process, layout = node
    signer = EventSigner(Identity.load(layout.identities["agency-a"]))
    events = [
        signer.event(
            "asset_registered",
            asset_id=f"port/bulk-{index}",
            content_digest=bytes([index]) * 32,
            classification=ledger_pb2.CLASSIFICATION_GENERAL,
        )
        for index in range(40)
    ]
    request = api_pb2.SubmitEventsRequest(events=events)
    assert request.ByteSize() > 4096
    with own_connection(process.address) as channel:
        stub = api_pb2_grpc.LedgerServiceStub(channel)
        error = rejected(lambda: stub.SubmitEvents(request, timeout=RPC_TIMEOUT_S))
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert error.details().startswith("too_much_in_flight: ")
        # Nothing of it was admitted (its first event is new to the node), and a request
        # within the allowance is.
        small = api_pb2.SubmitEventsRequest(events=events[:1])
        assert small.ByteSize() <= 4096
        [result] = stub.SubmitEvents(small, timeout=RPC_TIMEOUT_S).results
        assert result.accepted, result.error


def test_plaintext_serves_only_on_loopback_and_only_when_asked_for(tmp_path: Path) -> None:
    layout = init_consortium(tmp_path, nodes=1)
    address = layout.grpc_addresses[0]
    port = address.rsplit(":", 1)[1]

    # Asked for on 0.0.0.0: the node refuses to start, naming the setting.
    set_grpc(layout, "insecure_plaintext = true\n")
    config = layout.node_configs[0]
    config.write_text(config.read_text().replace(address, f"0.0.0.0:{port}", 1))
    refused = subprocess.run(
        node_command(config), capture_output=True, text=True, timeout=NODE_EXIT_TIMEOUT_S
    )
    assert refused.returncode != 0
    assert "insecure_plaintext is refused on 0.0.0.0" in refused.stderr

    # On loopback, with the flag: plaintext, and reads still need a token.
    config.write_text(config.read_text().replace(f"0.0.0.0:{port}", address, 1))
    note_access([address], ClientAccess(None, member_token(layout, "auditor"), plaintext=True))
    with NodeProcess.for_node(layout, 0, tmp_path) as process:
        assert "is PLAINTEXT: for development only" in process.log_text()  # before SERVING
        with client_channel(process.address, token=None) as channel:
            error = rejected(
                lambda: api_pb2_grpc.LedgerServiceStub(channel).GetCheckpoint(
                    api_pb2.GetCheckpointRequest(), timeout=RPC_TIMEOUT_S
                )
            )
            assert error.code() == grpc.StatusCode.UNAUTHENTICATED

"""A running node's gRPC server reflection, over `grpc.reflection.v1` and `v1alpha`; and the
node's data folder, which it leaves readable by itself alone.

A reflection client here does what grpcurl does: it lists the services, fetches the file that
declares a service (with every file it imports), builds a descriptor pool from them, and
reads the service's methods out of it. v1 and v1alpha carry the same messages on the wire, so
one set of message classes speaks both; what differs is the method path, which is what a v1
client (grpcurl, Postman) calls first.
"""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection_pb2
from support.processes import RPC_TIMEOUT_S, NodeProcess, init_consortium

from provledger.node.config import NodeConfig
from provledger.v1 import api_pb2

pytestmark = pytest.mark.integration

V1 = "grpc.reflection.v1.ServerReflection"
V1ALPHA = "grpc.reflection.v1alpha.ServerReflection"
LEDGER_SERVICE = "provledger.v1.LedgerService"
HEALTH_SERVICE = "grpc.health.v1.Health"
NOT_FOUND = grpc.StatusCode.NOT_FOUND.value[0]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NodeProcess, Path]]:
    tmp_path = tmp_path_factory.mktemp("reflection-node")
    layout = init_consortium(tmp_path, nodes=1)
    data_dir = NodeConfig.load(layout.node_configs[0]).data_dir
    data_dir.mkdir()
    data_dir.chmod(0o755)  # made open by hand: the node narrows it
    with NodeProcess.for_node(layout, 0, tmp_path) as process:
        yield process, data_dir


@pytest.fixture(scope="module")
def channel(node: tuple[NodeProcess, Path]) -> Iterator[grpc.Channel]:
    with node[0].channel() as opened:
        yield opened


def reflect(
    channel: grpc.Channel, service: str, *requests: reflection_pb2.ServerReflectionRequest
) -> list[reflection_pb2.ServerReflectionResponse]:
    call = channel.stream_stream(
        f"/{service}/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    return list(call(iter(requests), timeout=RPC_TIMEOUT_S))


def pool_of(response: reflection_pb2.ServerReflectionResponse) -> descriptor_pool.DescriptorPool:
    """A pool of the files in a file_descriptor_response, added dependencies first."""
    files = {}
    for raw in response.file_descriptor_response.file_descriptor_proto:
        parsed = descriptor_pb2.FileDescriptorProto.FromString(raw)
        files[parsed.name] = parsed
    pool = descriptor_pool.DescriptorPool()
    added: set[str] = set()

    def add(name: str) -> None:
        if name in added:
            return
        for dependency in files[name].dependency:
            add(dependency)
        pool.Add(files[name])
        added.add(name)

    for name in files:
        add(name)
    return pool


@pytest.mark.parametrize("service", [V1, V1ALPHA])
def test_reflection_lists_every_service(channel: grpc.Channel, service: str) -> None:
    (response,) = reflect(
        channel, service, reflection_pb2.ServerReflectionRequest(list_services="")
    )
    names = {entry.name for entry in response.list_services_response.service}
    assert names == {LEDGER_SERVICE, HEALTH_SERVICE, V1, V1ALPHA}


@pytest.mark.parametrize("service", [V1, V1ALPHA])
def test_reflection_describes_the_ledger_service_with_its_imports(
    channel: grpc.Channel, service: str
) -> None:
    (response,) = reflect(
        channel,
        service,
        reflection_pb2.ServerReflectionRequest(file_containing_symbol=LEDGER_SERVICE),
    )
    assert not response.HasField("error_response"), response.error_response
    described = pool_of(response).FindServiceByName(LEDGER_SERVICE)
    expected = api_pb2.DESCRIPTOR.services_by_name["LedgerService"]
    assert {method.name for method in described.methods} == {
        method.name for method in expected.methods
    }
    submit = described.methods_by_name["SubmitEvent"]
    assert submit.input_type.full_name == "provledger.v1.SubmitEventRequest"
    assert submit.input_type.fields_by_name["event"].message_type.full_name == (
        "provledger.v1.SignedEvent"  # declared in ledger.proto, an import
    )


def test_reflection_v1_describes_itself(channel: grpc.Channel) -> None:
    (response,) = reflect(
        channel, V1, reflection_pb2.ServerReflectionRequest(file_containing_symbol=V1)
    )
    assert not response.HasField("error_response"), response.error_response
    (method,) = pool_of(response).FindServiceByName(V1).methods
    assert method.input_type.full_name == "grpc.reflection.v1.ServerReflectionRequest"


def test_reflection_answers_several_questions_on_one_stream_and_unknown_names(
    channel: grpc.Channel,
) -> None:
    responses = reflect(
        channel,
        V1,
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="no.such.Service"),
        reflection_pb2.ServerReflectionRequest(file_by_filename="no/such.proto"),
    )
    assert len(responses) == 3
    assert responses[0].HasField("list_services_response")
    assert [r.error_response.error_code for r in responses[1:]] == [NOT_FOUND, NOT_FOUND]
    assert responses[1].original_request.file_containing_symbol == "no.such.Service"


def test_the_nodes_data_folder_is_readable_by_the_node_alone(
    node: tuple[NodeProcess, Path],
) -> None:
    _, data_dir = node
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert any(data_dir.iterdir())  # the LevelDB files are in it

"""gRPC server reflection on the client port, as `grpc.reflection.v1` and `v1alpha`.

grpcio-reflection implements only `grpc.reflection.v1alpha.ServerReflection`; current tools
(grpcurl, Postman, grpc-java's reflection client) ask for `grpc.reflection.v1` first. The two
versions are the same protocol: v1 is v1alpha promoted under a new package name, with every
message, field name, field number and type unchanged, and a message's package never reaches
the wire. So one servicer answers both:

- v1alpha through grpcio-reflection's own registration;
- v1 through a generic handler for `/grpc.reflection.v1.ServerReflection/ServerReflectionInfo`
  that decodes and encodes with the v1alpha message classes;
- and so that a v1 client may describe the service it is talking to, the v1 file
  (`grpc/reflection/v1/reflection.proto`, package `grpc.reflection.v1`) is derived from the
  v1alpha descriptor (package, file name and type references renamed, file options dropped)
  and added to the default descriptor pool, unless a file of that name is already there.

`tests/unit/test_reflection_descriptor.py` checks that the derived messages keep v1's field
numbers and types; `tests/integration/test_node_reflection.py` asks a running node over both.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

V1_PACKAGE = "grpc.reflection.v1"
V1_FILE_NAME = "grpc/reflection/v1/reflection.proto"
V1_SERVICE_NAME = f"{V1_PACKAGE}.ServerReflection"
V1ALPHA_SERVICE_NAME = reflection.SERVICE_NAME
METHOD_NAME = "ServerReflectionInfo"


def v1_file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    """The v1 reflection file, derived from grpcio-reflection's v1alpha one."""
    alpha = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(alpha)
    old_prefix = f".{alpha.package}."
    new_prefix = f".{V1_PACKAGE}."

    def rename(type_name: str) -> str:
        if type_name.startswith(old_prefix):
            return new_prefix + type_name[len(old_prefix) :]
        return type_name

    def rename_fields(messages: Iterable[descriptor_pb2.DescriptorProto]) -> None:
        for message in messages:
            for field in message.field:
                if field.type_name:
                    field.type_name = rename(field.type_name)
            rename_fields(message.nested_type)

    derived = descriptor_pb2.FileDescriptorProto()
    derived.CopyFrom(alpha)
    derived.name = V1_FILE_NAME
    derived.package = V1_PACKAGE
    derived.ClearField("options")
    rename_fields(derived.message_type)
    for service in derived.service:
        for method in service.method:
            method.input_type = rename(method.input_type)
            method.output_type = rename(method.output_type)
    return derived


def _add_v1_file(pool: descriptor_pool.DescriptorPool) -> None:
    try:
        pool.FindFileByName(V1_FILE_NAME)
    except KeyError:
        pool.AddSerializedFile(v1_file_descriptor().SerializeToString())


def enable_reflection(server: grpc.aio.Server, service_names: Iterable[str]) -> None:
    """Serve reflection v1 and v1alpha on `server`, listing `service_names` and both
    reflection services."""
    _add_v1_file(descriptor_pool.Default())
    names = (*service_names, V1_SERVICE_NAME, V1ALPHA_SERVICE_NAME)
    servicer = reflection.aio.ReflectionServicer(names)
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    v1 = grpc.method_handlers_generic_handler(
        V1_SERVICE_NAME,
        {
            METHOD_NAME: grpc.stream_stream_rpc_method_handler(
                servicer.ServerReflectionInfo,
                request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
                response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
            )
        },
    )
    server.add_generic_rpc_handlers((v1,))

"""The v1 reflection file node/reflection.py derives from grpcio-reflection's v1alpha one.

v1 serves v1alpha's messages under a new name, which is sound only while the two agree on the
wire: every message, field number, type and label. The expected v1 shape is written out here
from grpc's published `grpc/reflection/v1/reflection.proto` (its numbers, not its text).
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool

from provledger.node.reflection import V1_FILE_NAME, V1_PACKAGE, v1_file_descriptor

F = descriptor_pb2.FieldDescriptorProto
STRING, MESSAGE, INT32, BYTES = F.TYPE_STRING, F.TYPE_MESSAGE, F.TYPE_INT32, F.TYPE_BYTES
REPEATED = F.LABEL_REPEATED

# message -> field name -> (number, type, message type or "", repeated)
V1_MESSAGES: dict[str, dict[str, tuple[int, int, str, bool]]] = {
    "ServerReflectionRequest": {
        "host": (1, STRING, "", False),
        "file_by_filename": (3, STRING, "", False),
        "file_containing_symbol": (4, STRING, "", False),
        "file_containing_extension": (5, MESSAGE, "ExtensionRequest", False),
        "all_extension_numbers_of_type": (6, STRING, "", False),
        "list_services": (7, STRING, "", False),
    },
    "ExtensionRequest": {
        "containing_type": (1, STRING, "", False),
        "extension_number": (2, INT32, "", False),
    },
    "ServerReflectionResponse": {
        "valid_host": (1, STRING, "", False),
        "original_request": (2, MESSAGE, "ServerReflectionRequest", False),
        "file_descriptor_response": (4, MESSAGE, "FileDescriptorResponse", False),
        "all_extension_numbers_response": (5, MESSAGE, "ExtensionNumberResponse", False),
        "list_services_response": (6, MESSAGE, "ListServiceResponse", False),
        "error_response": (7, MESSAGE, "ErrorResponse", False),
    },
    "FileDescriptorResponse": {"file_descriptor_proto": (1, BYTES, "", True)},
    "ExtensionNumberResponse": {
        "base_type_name": (1, STRING, "", False),
        "extension_number": (2, INT32, "", True),
    },
    "ListServiceResponse": {"service": (1, MESSAGE, "ServiceResponse", True)},
    "ServiceResponse": {"name": (1, STRING, "", False)},
    "ErrorResponse": {
        "error_code": (1, INT32, "", False),
        "error_message": (2, STRING, "", False),
    },
}
ONEOFS = {
    "ServerReflectionRequest": {
        "file_by_filename",
        "file_containing_symbol",
        "file_containing_extension",
        "all_extension_numbers_of_type",
        "list_services",
    },
    "ServerReflectionResponse": {
        "file_descriptor_response",
        "all_extension_numbers_response",
        "list_services_response",
        "error_response",
    },
}


def test_the_derived_file_has_v1s_name_package_messages_and_numbers() -> None:
    derived = v1_file_descriptor()
    assert (derived.name, derived.package) == (V1_FILE_NAME, V1_PACKAGE)
    assert not derived.HasField("options")
    shapes = {
        message.name: {
            field.name: (
                field.number,
                field.type,
                field.type_name.removeprefix(f".{V1_PACKAGE}."),
                field.label == REPEATED,
            )
            for field in message.field
        }
        for message in derived.message_type
    }
    assert shapes == V1_MESSAGES
    for message in derived.message_type:
        in_oneof = {field.name for field in message.field if field.HasField("oneof_index")}
        assert in_oneof == ONEOFS.get(message.name, set())


def test_the_derived_file_names_the_v1_service_and_builds_alone() -> None:
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(v1_file_descriptor().SerializeToString())
    service = pool.FindServiceByName(f"{V1_PACKAGE}.ServerReflection")
    (method,) = service.methods
    assert method.name == "ServerReflectionInfo"
    assert method.input_type.full_name == f"{V1_PACKAGE}.ServerReflectionRequest"
    assert method.output_type.full_name == f"{V1_PACKAGE}.ServerReflectionResponse"
    assert method.client_streaming and method.server_streaming
    assert "v1alpha" not in v1_file_descriptor().SerializeToString().decode("latin-1")

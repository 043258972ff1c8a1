"""A small client for the gRPC API: signs events with a member identity and calls the node.

Used by the CLI, the demo, the benchmark and the tests. Programs in other languages do the
same with code generated from `proto/` (see README).
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format

from provledger.node.keyfile import load_key
from provledger.node.settings import GRPC_MESSAGE_SIZE_BYTES_MAX
from provledger.protocol.crypto import SigningKey
from provledger.protocol.events import event_id, sign_event
from provledger.v1 import api_pb2, api_pb2_grpc, ledger_pb2

CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", GRPC_MESSAGE_SIZE_BYTES_MAX),
    ("grpc.max_send_message_length", GRPC_MESSAGE_SIZE_BYTES_MAX),
]


@dataclass
class Identity:
    """A member's signing identity, as `consortium init` writes it."""

    member_id: str
    role: str
    chain_id: str
    key: SigningKey

    @classmethod
    def load(cls, path: Path | str) -> Identity:
        key, document = load_key(Path(path))
        return cls(
            member_id=document["member_id"],
            role=document.get("role", ""),
            chain_id=document["chain_id"],
            key=key,
        )


class EventSigner:
    """Builds and signs events for one identity, with fresh nonces.

    Nonces start at the current time in microseconds and count up, so that two runs of a
    client never reuse one (each (author, nonce) commits at most once)."""

    def __init__(self, identity: Identity, first_nonce: int | None = None) -> None:
        self.identity = identity
        start = first_nonce if first_nonce is not None else time.time_ns() // 1_000
        self._nonces = itertools.count(start)

    def event(self, kind: str, **fields: Any) -> ledger_pb2.SignedEvent:
        """Sign an event whose payload `kind` has `fields` (protobuf JSON names allowed)."""
        event = ledger_pb2.Event(
            chain_id=self.identity.chain_id,
            author=ledger_pb2.Author(
                member_id=self.identity.member_id, key_id=self.identity.key.key_id
            ),
            nonce=next(self._nonces),
            timestamp_ms=time.time_ns() // 1_000_000,
        )
        payload = getattr(event, kind)
        payload.SetInParent()
        for name, value in fields.items():
            if isinstance(value, dict):
                getattr(payload, name).update(value)
            elif isinstance(value, list | tuple):
                getattr(payload, name).extend(value)
            else:
                setattr(payload, name, value)
        return sign_event(event, self.identity.key)

    def from_json(self, document: dict[str, Any]) -> ledger_pb2.SignedEvent:
        """Sign an event described as {"<kind>": {...payload in protobuf JSON...}}."""
        if len(document) != 1:
            raise ValueError('describe one event as {"<kind>": {...}}')
        ((kind, payload_json),) = document.items()
        template = ledger_pb2.Event()
        if kind not in template.DESCRIPTOR.fields_by_name or kind in (
            "chain_id",
            "author",
            "nonce",
            "timestamp_ms",
        ):
            raise ValueError(f"unknown event kind {kind!r}")
        payload = getattr(template, kind)
        json_format.ParseDict(payload_json, payload)
        event = ledger_pb2.Event(
            chain_id=self.identity.chain_id,
            author=ledger_pb2.Author(
                member_id=self.identity.member_id, key_id=self.identity.key.key_id
            ),
            nonce=next(self._nonces),
            timestamp_ms=time.time_ns() // 1_000_000,
        )
        getattr(event, kind).CopyFrom(payload)
        return sign_event(event, self.identity.key)


class LedgerClient:
    """A blocking client for one node."""

    def __init__(self, address: str) -> None:
        self.address = address
        self._channel = grpc.insecure_channel(address, options=CHANNEL_OPTIONS)
        self.stub = api_pb2_grpc.LedgerServiceStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> LedgerClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def wait_ready(self, timeout_s: float) -> None:
        grpc.channel_ready_future(self._channel).result(timeout=timeout_s)

    def submit(self, signed: ledger_pb2.SignedEvent) -> bytes:
        return self.stub.SubmitEvent(api_pb2.SubmitEventRequest(event=signed)).event_id

    def submit_and_wait(
        self, signed: ledger_pb2.SignedEvent, timeout_ms: int = 0
    ) -> api_pb2.Receipt:
        return self.stub.SubmitAndWait(
            api_pb2.SubmitAndWaitRequest(event=signed, timeout_ms=timeout_ms)
        )

    def get_event(self, identifier: bytes) -> api_pb2.GetEventResponse:
        return self.stub.GetEvent(api_pb2.GetEventRequest(event_id=identifier))


def describe_rpc_error(error: grpc.RpcError) -> str:
    """'<STATUS>: <details>' for an error a call raised."""
    return f"{error.code().name}: {error.details()}"  # type: ignore[attr-defined]


def decode_event(signed: ledger_pb2.SignedEvent) -> ledger_pb2.Event:
    event = ledger_pb2.Event()
    event.ParseFromString(signed.body)
    return event


def event_to_json(signed: ledger_pb2.SignedEvent) -> dict[str, Any]:
    return {
        "event_id": event_id(signed.body).hex(),
        "event": json_format.MessageToDict(decode_event(signed)),
        "signature": signed.signature.hex(),
    }

"""A small client for the gRPC API: signs events with a member identity and calls the node.

Used by the CLI, the demo, the benchmark and the tests. Programs in other languages do the
same with code generated from `proto/` (see README and docs/clients.md).

A node's client API is served over TLS: a client trusts the consortium CA's certificate
(`ca/ca.pem` of `consortium init`), or the system's roots if a public CA issued the node's.
Reads need a member's bearer token (`read_token` signs a short-lived one with an identity),
sent as `authorization: Bearer <token>` metadata on every call; submitting needs none.
`open_channel` makes such a channel; plaintext is for a development node on loopback only.
"""

from __future__ import annotations

import itertools
import random
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
from provledger.protocol.genesis import role_name
from provledger.protocol.limits import NONCE_MAX
from provledger.protocol.tokens import AUDITOR_LEDGER_ROLES, ROLE_AUDITOR, ROLE_MEMBER, issue_token
from provledger.v1 import api_pb2, api_pb2_grpc, ledger_pb2

CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", GRPC_MESSAGE_SIZE_BYTES_MAX),
    ("grpc.max_send_message_length", GRPC_MESSAGE_SIZE_BYTES_MAX),
]
READ_TOKEN_TTL_MS_DEFAULT = 10 * 60 * 1000  # what `read_token` signs for unless told


class _BearerToken(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
):
    """Adds `authorization: Bearer <token>` to every call's metadata."""

    def __init__(self, token: str) -> None:
        self._metadata = ("authorization", f"Bearer {token}")

    def _with_token(self, details: Any) -> Any:
        metadata = [*(details.metadata or ()), self._metadata]
        return details._replace(metadata=metadata)

    def intercept_unary_unary(self, continuation, client_call_details, request):  # type: ignore[no-untyped-def]
        return continuation(self._with_token(client_call_details), request)

    def intercept_unary_stream(self, continuation, client_call_details, request):  # type: ignore[no-untyped-def]
        return continuation(self._with_token(client_call_details), request)


def open_channel(
    address: str,
    *,
    ca_certificate_pem: bytes | None = None,
    token: str | None = None,
    plaintext: bool = False,
    options: list[tuple[str, Any]] | None = None,
) -> grpc.Channel:
    """A channel to a node's client API at `address`: TLS trusting `ca_certificate_pem` (the
    system's roots if None), or plaintext if asked (a development node on loopback); every
    call carries `token`, if given."""
    options = CHANNEL_OPTIONS if options is None else options
    if plaintext:
        channel = grpc.insecure_channel(address, options=options)
    else:
        credentials = grpc.ssl_channel_credentials(root_certificates=ca_certificate_pem)
        channel = grpc.secure_channel(address, credentials, options=options)
    if token is not None:
        channel = grpc.intercept_channel(channel, _BearerToken(token))
    return channel


def read_token(identity: Identity, ttl_ms: int = READ_TOKEN_TTL_MS_DEFAULT) -> str:
    """A bearer token signed by `identity`, valid `ttl_ms` from now: an auditor's token for an
    auditor or a regulator (who read everything), a member's for anyone else."""
    role = ROLE_AUDITOR if identity.role in _AUDITOR_ROLE_NAMES else ROLE_MEMBER
    return issue_token(
        identity.key,
        identity.member_id,
        role,
        identity.chain_id,
        time.time_ns() // 1_000_000,
        ttl_ms,
    )


_AUDITOR_ROLE_NAMES = {role_name(role) for role in AUDITOR_LEDGER_ROLES}


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


# Nonces are 1..NONCE_MAX = 2^63-1 (ADR 004; events.decode refuses others). A signer starts
# at a random value at most NONCE_START_MAX, which leaves 2^62 nonces to count up through.
NONCE_START_MAX = 2**62


class EventSigner:
    """Builds and signs events for one identity, with fresh nonces.

    Each (author, nonce) commits at most once (ADR 004). A signer starts its nonces at a
    random value in 1..2^62 and counts up, so that signers for one identity, in one process
    or many, started at the same moment or not, do not collide: two signers issuing n events
    each overlap with a chance of about 2n / 2^62. (They used to start at the time in
    microseconds, and two processes started together collided on most of their nonces.)
    `random_source` is the system's secure random numbers unless a test passes a seeded one;
    `first_nonce` fixes the start, as given (a test may pass one the node must refuse)."""

    def __init__(
        self,
        identity: Identity,
        first_nonce: int | None = None,
        random_source: random.Random | None = None,
    ) -> None:
        self.identity = identity
        if first_nonce is None:
            first_nonce = (random_source or random.SystemRandom()).randint(1, NONCE_START_MAX)
        self.first_nonce = first_nonce
        self._nonces = itertools.count(first_nonce)

    def next_nonce(self) -> int:
        nonce = next(self._nonces)
        if nonce > NONCE_MAX >= self.first_nonce:  # counted past the top of the range
            raise ValueError("this signer has used every nonce up to 2^63-1; make a new one")
        return nonce

    def event(self, kind: str, **fields: Any) -> ledger_pb2.SignedEvent:
        """Sign an event whose payload `kind` has `fields` (protobuf JSON names allowed)."""
        event = ledger_pb2.Event(
            chain_id=self.identity.chain_id,
            author=ledger_pb2.Author(
                member_id=self.identity.member_id, key_id=self.identity.key.key_id
            ),
            nonce=self.next_nonce(),
            timestamp_ms=time.time_ns() // 1_000_000,
        )
        payload = getattr(event, kind)
        payload.SetInParent()
        for name, value in fields.items():
            if isinstance(value, dict):
                getattr(payload, name).update(value)
            elif isinstance(value, list | tuple):
                items = getattr(payload, name)
                for item in value:  # a message may be given as a dict of its fields
                    if isinstance(item, dict):
                        items.add(**item)
                    else:
                        items.extend([item])
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
            nonce=self.next_nonce(),
            timestamp_ms=time.time_ns() // 1_000_000,
        )
        getattr(event, kind).CopyFrom(payload)
        return sign_event(event, self.identity.key)


class LedgerClient:
    """A blocking client for one node (see `open_channel` for the arguments)."""

    def __init__(
        self,
        address: str,
        *,
        ca_certificate_pem: bytes | None = None,
        token: str | None = None,
        plaintext: bool = False,
    ) -> None:
        self.address = address
        self._channel = open_channel(
            address, ca_certificate_pem=ca_certificate_pem, token=token, plaintext=plaintext
        )
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

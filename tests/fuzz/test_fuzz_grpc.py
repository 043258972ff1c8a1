"""Fuzzing the gRPC LedgerService: request bytes sent to a real in-process `grpc.aio` server on
127.0.0.1 (the node's `LedgerService` over a `LedgerNode` on the story's LevelDB store, with
its signature verifier), through a client channel that sends the bytes as they are, so the
server's own deserialisation is exercised.

The server is reached as a node's client API is: over TLS with a node certificate issued by a
consortium CA made for this process, which the client channel trusts, and with a member's
bearer token in the `authorization` metadata of each call. Reads need one, so the seeds, and
the changed requests unless it is their metadata that changes (one choice in four), carry the
auditor's token (who may read everything, whole blocks too): a changed request then reaches
the handler behind the token check.

Seeds are requests every method answers (a valid event to submit, a batch, real heights and
ids, a history page, a lineage, a subscription). Inputs change them: the request's wire bytes;
its fields (boundary values, unknown fields, a submitted event changed and signed again);
arbitrary bytes; and, one time in four, the `authorization` metadata (a member's token, a
changed token, another scheme, none, two of them). There is no consensus in this process:
nothing is ever committed, and events that were admitted are taken out of the mempool again
after each call.

The property: every call ends with OK (and a response that parses as the method's response
type) or a status other than UNKNOWN and INTERNAL, whose details read "<code>: <reason>"
(request bytes that do not parse: INVALID_ARGUMENT; an event id that is not 32 bytes is
INVALID_ARGUMENT, not NOT_FOUND; a lineage direction must be one the enum defines); a read is
answered OK only for a token issued here (whole blocks only for the auditor's), and a
submission, which needs no token, is never UNAUTHENTICATED; nothing but a submission that was
answered OK (or, for SubmitAndWait, one queued and not yet committed) adds to the mempool; the
store never changes; no call hangs. The service is registered as node/server.py registers it
(`grpc_api.add_to_server`, with the default bounds per connection), and served with the
credentials node/server.py serves it with (`tls.client_api_server_credentials`).
"""

from __future__ import annotations

import asyncio
import atexit
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import grpc
from fuzz._harness import Finding, count, fuzz_settings, show, timed, unexpected
from fuzz._mutate import (
    Choices,
    DrawChoices,
    ProviderChoices,
    interesting_text,
    mutate_bytes,
    mutate_message,
    mutate_text,
    pick,
)
from fuzz._story import SEED_TIME_MS, VOCABULARY, leveldb_world, resign
from google.protobuf.message import DecodeError, Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import given
from hypothesis import strategies as st

from provledger.cli.client import open_channel
from provledger.protocol.tokens import issue_token
from provledger.v1 import api_pb2

TARGET = "grpc"
NOW_MS = SEED_TIME_MS + 1_000  # the node's clock
SERVICE = "/provledger.v1.LedgerService/"
CALL_TIMEOUT_S = 8.0
WAIT_TIMEOUT_S = 1.5  # SubmitAndWait: nothing commits here, so a queued event waits this long
STREAM_TIMEOUT_S = 0.3  # SubscribeBlocks from above the head waits for blocks that never come
STREAM_ITEMS_MAX = 3
TOKEN_TTL_MS = 3_600_000
INT64_MAX = 2**63 - 1
DETAILS = re.compile(r"[a-z][a-z0-9_]*: .")
# (status, what the client library says) that come from gRPC itself, not from the servicer.
_TRANSPORT_STATUSES = (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED)


@dataclass(frozen=True)
class Method:
    name: str
    request: type[Message]
    response: type[Message]
    streaming: bool = False


_SERVICE_DESCRIPTOR = api_pb2.DESCRIPTOR.services_by_name["LedgerService"]
SUBMISSIONS = frozenset({"SubmitEvent", "SubmitEvents", "SubmitAndWait"})  # need no token
WHOLE_BLOCKS = frozenset({"GetBlock", "SubscribeBlocks"})  # an auditor's read only


METHODS = {
    method.name: Method(
        method.name,
        GetMessageClass(method.input_type),
        GetMessageClass(method.output_type),
        streaming=method.name == "SubscribeBlocks",
    )
    for method in _SERVICE_DESCRIPTOR.methods
}


# --- the server --------------------------------------------------------------------------


class Server:
    """LedgerService on 127.0.0.1 over TLS, in a thread of its own with its own event loop;
    `channel` trusts its CA and sends no token of its own (each call's metadata says)."""

    def __init__(self) -> None:
        from provledger.node.grpc_api import LedgerService, add_to_server
        from provledger.node.ledger import LedgerNode
        from provledger.node.server import GRPC_OPTIONS
        from provledger.node.tls import (
            TlsMaterial,
            client_api_server_credentials,
            create_ca,
            issue_node_certificate,
        )
        from provledger.node.verifier import SignatureVerifier

        world = leveldb_world()
        ca_certificate_pem, ca_key_pem = create_ca(world.consortium.chain_id)
        certificate_pem, key_pem = issue_node_certificate(
            ca_certificate_pem, ca_key_pem, "validator-0"
        )
        credentials = client_api_server_credentials(
            TlsMaterial(ca_certificate_pem, certificate_pem, key_pem)
        )
        self.verifier = SignatureVerifier(workers=1)  # before gRPC starts its threads
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fuzz-grpc", daemon=True)
        self.thread.start()

        async def start() -> tuple[Any, Any, int]:
            node = LedgerNode(
                world.consortium.genesis,
                world.store,  # type: ignore[arg-type]
                "validator-0",
                self.verifier,
                clock_ms=lambda: NOW_MS,
            )
            server = grpc.aio.server(options=GRPC_OPTIONS)
            add_to_server(LedgerService(node), server)
            port = server.add_secure_port("127.0.0.1:0", credentials)
            await server.start()
            return node, server, port

        self.node, self.server, port = self.run(start())
        self.channel = open_channel(f"127.0.0.1:{port}", ca_certificate_pem=ca_certificate_pem)

    def run(self, coroutine) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=30)

    def mempool_ids(self) -> list[bytes]:
        async def ids() -> list[bytes]:
            mempool = self.node.app.mempool
            return [d.event_id for d in mempool.peek(len(mempool))]

        return self.run(ids())  # type: ignore[no-any-return]

    def forget(self, event_ids: list[bytes]) -> None:
        """Take these events out of the mempool again (in the server's loop)."""

        async def remove() -> None:
            self.node.app.mempool.remove(event_ids)

        self.run(remove())

    def close(self) -> None:
        self.channel.close()
        self.run(self.server.stop(grace=0))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.verifier.close()


@cache
def server() -> Server:
    running = Server()
    atexit.register(running.close)  # before the store closes (atexit runs in reverse order)
    return running


# --- seeds -------------------------------------------------------------------------------


@cache
def tokens() -> dict[str, str]:
    """A token of the auditor's and of two members', valid at the node's clock."""
    consortium = leveldb_world().consortium
    chain = consortium.chain_id
    made = {}
    for member_id, role in (("auditor", "auditor"), ("agency-b", "member"), ("exchange", "member")):
        key = consortium[member_id].key
        made[member_id] = issue_token(key, member_id, role, chain, SEED_TIME_MS, TOKEN_TTL_MS)
    return made


def bearer(member_id: str = "auditor") -> list[tuple[str, str]]:
    """The metadata of a call that reads as `member_id`."""
    return [("authorization", "Bearer " + tokens()[member_id])]


@cache
def seeds() -> tuple[tuple[str, bytes], ...]:
    """(method, request bytes) every method answers."""
    from fuzz._story import memory_world

    world = leveldb_world()
    by_label = dict(memory_world().event_seeds)
    compatible = [signed for _, signed in memory_world().compatible_seeds]
    fused, raw_a = world.event_ids["fused"], world.event_ids["raw-a"]
    requests: list[tuple[str, Message]] = [
        ("SubmitEvent", api_pb2.SubmitEventRequest(event=by_label["asset_registered"])),
        ("SubmitEvent", api_pb2.SubmitEventRequest(event=by_label["governance/key_rotated"])),
        ("SubmitEvents", api_pb2.SubmitEventsRequest(events=compatible[:4])),
        (
            "SubmitAndWait",
            api_pb2.SubmitAndWaitRequest(event=by_label["asset_used"], timeout_ms=50),
        ),
        ("GetEvent", api_pb2.GetEventRequest(event_id=fused)),
        ("GetBlock", api_pb2.GetBlockRequest(height=0)),
        ("GetBlock", api_pb2.GetBlockRequest(height=3)),
        ("GetCheckpoint", api_pb2.GetCheckpointRequest(height=5)),
        ("GetInclusionProof", api_pb2.GetInclusionProofRequest(event_id=raw_a, height=6)),
        (
            "GetConsistencyProof",
            api_pb2.GetConsistencyProofRequest(first_height=2, second_height=7),
        ),
        ("GetAsset", api_pb2.GetAssetRequest(asset_id="fused")),
        (
            "GetAssetHistory",
            api_pb2.GetAssetHistoryRequest(
                asset_id="raw-a", limit=2, after_log_index=1, has_cursor=True
            ),
        ),
        (
            "GetLineage",
            api_pb2.GetLineageRequest(
                asset_id="fused",
                direction=api_pb2.LINEAGE_DIRECTION_UPSTREAM,
                depth=3,
                max_nodes=10,
            ),
        ),
        ("GetGrant", api_pb2.GetGrantRequest(grant_id="g-1")),
        ("GetOrder", api_pb2.GetOrderRequest(order_id="order-1")),
        ("SubscribeBlocks", api_pb2.SubscribeBlocksRequest(from_height=6)),
    ]
    return tuple((name, request.SerializeToString()) for name, request in requests)


# --- the property --------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    status: grpc.StatusCode
    details: str
    response: bytes | None


def _call(method: Method, request: bytes, metadata: Sequence[tuple[str, str]]) -> Outcome:
    channel = server().channel
    if method.streaming:
        stream = channel.unary_stream(SERVICE + method.name)(
            request, timeout=STREAM_TIMEOUT_S, metadata=metadata
        )
        received = 0
        try:
            for item in stream:
                method.response.FromString(item)
                received += 1
                if received >= STREAM_ITEMS_MAX:
                    stream.cancel()
                    break
        except grpc.RpcError as error:
            code = error.code()  # type: ignore[attr-defined]
            if not (received and code == grpc.StatusCode.DEADLINE_EXCEEDED):
                return Outcome(code, error.details() or "", None)  # type: ignore[attr-defined]
        # Blocks arrived, then the stream waited for the next one (live): that is an answer.
        return Outcome(grpc.StatusCode.OK, "", None)
    timeout = WAIT_TIMEOUT_S if method.name == "SubmitAndWait" else CALL_TIMEOUT_S
    call = channel.unary_unary(SERVICE + method.name)
    try:
        response = call(request, timeout=timeout, metadata=metadata)
    except grpc.RpcError as error:
        return Outcome(error.code(), error.details() or "", None)  # type: ignore[attr-defined]
    return Outcome(grpc.StatusCode.OK, "", response)


def check_call(
    name: str, request: bytes, metadata: Sequence[tuple[str, str]], *, valid: bool = False
) -> Outcome:
    """Call method `name` with `request` bytes and `metadata`. `valid`: a seed, which must be
    answered."""
    method = METHODS[name]
    running = server()
    store = leveldb_world().store
    head = store.head_height  # type: ignore[attr-defined]
    queued_before = set(running.mempool_ids())

    def what() -> str:
        return f"{name}({show(request, 300)}) metadata={[(k, v[:40]) for k, v in metadata]}"

    with timed(what):
        try:
            outcome = _call(method, request, metadata)
        except Exception as error:
            raise unexpected(error, what()) from error
    added = [i for i in running.mempool_ids() if i not in queued_before]
    running.forget(added)
    status = outcome.status
    said = f"{what()} -> {status.name} {outcome.details[:200]!r}"
    if store.head_height != head:  # type: ignore[attr-defined]
        raise Finding("state_changed", f"the head moved: {said}")
    if status in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL):
        raise Finding("unknown_or_internal_status", said)
    _check_status_fits(method, request, status, said)
    _check_authorised(name, metadata, status, said)
    if (
        status != grpc.StatusCode.OK
        and status not in _TRANSPORT_STATUSES
        and not DETAILS.match(outcome.details)
    ):
        raise Finding("details_not_coded", said)
    if status == grpc.StatusCode.OK and outcome.response is not None:
        try:
            answer = method.response.FromString(outcome.response)
        except DecodeError:
            raise Finding("answer_unparsable", said) from None
        _check_queued(name, request, answer, added, said)
    elif added and not (name == "SubmitAndWait" and status == grpc.StatusCode.DEADLINE_EXCEEDED):
        raise Finding("state_changed", f"a refused call queued {len(added)} events: {said}")
    if valid and status != grpc.StatusCode.OK:
        waiting = name == "SubmitAndWait" and outcome.details.startswith("not_committed_yet")
        if not waiting:
            raise Finding("valid_request_refused", said)
    count(TARGET, f"{'submit' if name in SUBMISSIONS else 'read'}_{status.name}")
    return outcome


def _check_status_fits(method: Method, request: bytes, status: grpc.StatusCode, said: str) -> None:
    """Input the service must call malformed is answered INVALID_ARGUMENT."""
    try:
        parsed = method.request.FromString(request)
    except DecodeError:
        if status != grpc.StatusCode.INVALID_ARGUMENT:
            raise Finding("malformed_request_not_invalid", said) from None
        return
    identifier = getattr(parsed, "event_id", None)
    if identifier is not None and len(identifier) != 32 and status == grpc.StatusCode.NOT_FOUND:
        raise Finding("malformed_id_not_found", said)
    direction = getattr(parsed, "direction", None)
    defined = api_pb2.LineageDirection.values()
    if direction is not None and direction not in defined and status == grpc.StatusCode.OK:
        raise Finding("undefined_direction_accepted", said)


def _presented_tokens(metadata: Sequence[tuple[str, str]]) -> set[str]:
    """The tokens a call's `authorization` metadata presents as bearer tokens."""
    presented = set()
    for key, value in metadata:
        scheme, _, token = value.partition(" ")
        if key == "authorization" and scheme.lower() == "bearer":
            presented.add(token.strip())
    return presented


def _check_authorised(
    name: str, metadata: Sequence[tuple[str, str]], status: grpc.StatusCode, said: str
) -> None:
    """A read is answered only for a token issued here, whole blocks only for the auditor's;
    a submission needs no token, so it is never refused for one."""
    if name in SUBMISSIONS:
        if status == grpc.StatusCode.UNAUTHENTICATED:
            raise Finding("submission_unauthenticated", said)
        return
    if status != grpc.StatusCode.OK:
        return
    presented = _presented_tokens(metadata)
    allowed = {tokens()["auditor"]} if name in WHOLE_BLOCKS else set(tokens().values())
    if not presented & allowed:
        raise Finding("read_without_token_answered", said)


def _check_queued(name: str, request: bytes, answer: Any, added: list[bytes], said: str) -> None:
    """What an OK submission queued is what it said it accepted; other methods queue nothing."""
    if name == "SubmitEvent":
        expected = [answer.event_id]
    elif name == "SubmitEvents":
        expected = [r.event_id for r in answer.results if r.accepted]
    else:
        expected = []
    if sorted(added) != sorted(set(expected)):
        raise Finding("state_changed", f"queued {len(added)}, answered {len(expected)}: {said}")


# --- the inputs ----------------------------------------------------------------------------


def _metadata(choices: Choices) -> list[tuple[str, str]]:
    """A call's metadata: the auditor's token three times in four (so that a changed request
    is judged by its handler, not refused at the token check), else changed."""
    if choices.integer(0, 3) < 3:
        return bearer()
    auditor, every = tokens()["auditor"], list(tokens().values())
    kind = choices.integer(0, 6)
    if kind == 0:
        return []
    if kind == 1:
        return bearer(pick(choices, ("agency-b", "exchange")))  # sees less, no whole blocks
    if kind == 2:
        values = ["Bearer " + mutate_text(pick(choices, every), choices)]
    elif kind == 3:
        values = [pick(choices, ("Bearer", "Bearer ", "bearer x", "Basic YTpi", "Bearer  a.b"))]
    elif kind == 4:
        values = ["Bearer " + interesting_text(choices, VOCABULARY)]
    elif kind == 5:
        joined = pick(choices, (" ", ".", "x", " extra", "." + pick(choices, every)))
        values = ["Bearer " + auditor + joined]
    else:  # two of them: a member's or a broken one, and the auditor's, in either order
        other = pick(choices, ["Bearer " + pick(choices, every), "Bearer x", "Basic YTpi"])
        values = [other, "Bearer " + auditor]
        if choices.integer(0, 1):
            values.reverse()
    # Metadata values are printable ASCII (the client library refuses anything else).
    return [
        ("authorization", "".join(c if " " <= c <= "~" else "?" for c in value)) for value in values
    ]


def _event_hook(message, field, choices: Choices):
    if field.message_type is not None and field.message_type.name == "SignedEvent":
        from fuzz._story import memory_world

        seed = pick(choices, [s for _, s in memory_world().event_seeds])
        if choices.integer(0, 1):
            return seed
        return resign(mutate_bytes(seed.body, choices, 2))
    return None


def request_from(choices: Choices) -> tuple[str, bytes, list[tuple[str, str]]]:
    name, data = pick(choices, seeds())
    kind = choices.integer(0, 5)
    if kind <= 1:  # the wire bytes
        data = mutate_bytes(data, choices)
    elif kind <= 3:  # the fields
        message = METHODS[name].request.FromString(data)
        mutate_message(message, choices, VOCABULARY, value_hook=_event_hook)
        data = message.SerializeToString()
    elif kind == 4:  # arbitrary bytes, to any method
        name = pick(choices, sorted(METHODS))
        data = choices.binary(64)
    return name, data, _metadata(choices)


# --- bounded runs (make test) --------------------------------------------------------------


def test_every_seed_request_is_answered() -> None:
    for name, data in seeds():
        check_call(name, data, bearer(), valid=True)


def test_reads_need_a_token_and_whole_blocks_an_auditors() -> None:
    for name, data in seeds():
        anonymous = check_call(name, data, [], valid=name in SUBMISSIONS)
        if name not in SUBMISSIONS:
            assert anonymous.status == grpc.StatusCode.UNAUTHENTICATED, (name, anonymous)
            assert anonymous.details.startswith("missing_token: "), (name, anonymous)
        if name in WHOLE_BLOCKS:
            member = check_call(name, data, bearer("agency-b"))
            assert member.status == grpc.StatusCode.PERMISSION_DENIED, (name, member)
            assert member.details.startswith("blocks_need_auditor: "), (name, member)


@fuzz_settings(examples=200)
@given(st.data())
def test_changed_requests_get_a_coded_status(data) -> None:
    name, request, metadata = request_from(DrawChoices(data))
    check_call(name, request, metadata)


HYPOTHESIS_TESTS = (test_changed_requests_get_a_coded_status,)


# --- coverage-guided runs (make fuzz, with atheris) ----------------------------------------

_NAMES = sorted(METHODS)


def atheris_corpus() -> Sequence[bytes]:
    corpus = [bytes([0, _NAMES.index(name)]) + data for name, data in seeds()]
    corpus.extend(bytes([1, index]) + bytes(12) for index in range(8))
    return corpus


def atheris_one_input(data: bytes) -> None:
    if len(data) < 2:
        return
    if data[0] % 2 == 0:  # a method and its request's wire bytes, read as the auditor
        check_call(_NAMES[data[1] % len(_NAMES)], data[2:], bearer())
        return
    import atheris

    choices = ProviderChoices(atheris.FuzzedDataProvider(data[1:]))
    check_call(*request_from(choices))

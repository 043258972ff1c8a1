"""The gRPC `LedgerService` of a real node process, over the wire.

One node serves the whole module. Tests that submit wait until what they submitted is
committed (or refused), so that each test starts with an empty mempool; the bad-input tests
rely on that to show that a refused request changed nothing (see `state_unchanged`): the
refused events are nowhere in the ledger, the records they would touch are the same, their
authors' nonces are still unused, and nothing was queued.

The head moves on its own: an idle node commits an empty heartbeat block about once a second
(`empty_block_wait_ms`, ADR 006), at any moment, however fast or slow the machine. So no test
compares the head height, the log size or a block count across two reads, or expects the next
event to land in the very next block; where "the latest" is read twice it is bracketed by the
heads read before and after.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pool
from google.protobuf.message import DecodeError
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from support.processes import NodeProcess, client_channel, init_consortium, wait_until

from provledger.cli.client import EventSigner, Identity
from provledger.node.settings import GRPC_MESSAGE_SIZE_BYTES_MAX, SUBMIT_BATCH_EVENTS_MAX
from provledger.protocol import crypto, merkle
from provledger.protocol.blocks import (
    block_id,
    certificate_hash,
    decode_header,
    verify_certificate,
    verify_checkpoint,
)
from provledger.protocol.crypto import SigningKey
from provledger.protocol.events import event_id, log_leaf, sign_event
from provledger.protocol.genesis import Genesis, canonical_json, parse_genesis
from provledger.protocol.limits import (
    EVENT_BODY_SIZE_BYTES_MAX,
    EVENT_TIMESTAMP_MS_MAX,
    HISTORY_PAGE_EVENTS_DEFAULT,
    HISTORY_PAGE_EVENTS_MAX,
    LOG_INDEX_MAX,
    NONCE_MAX,
)
from provledger.protocol.proofs import (
    ProofAnswerError,
    VerifiedInclusion,
    verify_consistency_answer,
    verify_inclusion_answer,
)
from provledger.protocol.rules import governance_sign_bytes
from provledger.protocol.tokens import issue_token
from provledger.v1 import api_pb2, api_pb2_grpc, ledger_pb2, state_pb2

pytestmark = pytest.mark.integration

SERVICE = "provledger.v1.LedgerService"
COMMIT_TIMEOUT_S = 15.0
RPC_TIMEOUT_S = 20.0
STREAM_TIMEOUT_S = 60.0  # a whole SubscribeBlocks call: the chain's replay, then live blocks
DAY_MS = 24 * 3600 * 1000
PROBE_ASSET = "probe/asset"


def digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclasses.dataclass
class Ledger:
    """A running node and what a test needs to talk to it."""

    node: NodeProcess
    channel: grpc.Channel
    stub: api_pb2_grpc.LedgerServiceStub
    genesis: Genesis
    identities: dict[str, Identity]
    signers: dict[str, EventSigner]

    # --- submitting -------------------------------------------------------------------------

    def commit(self, signed: ledger_pb2.SignedEvent) -> api_pb2.Receipt:
        return self.stub.SubmitAndWait(
            api_pb2.SubmitAndWaitRequest(event=signed), timeout=RPC_TIMEOUT_S
        )

    def event(self, member: str, kind: str, **fields) -> ledger_pb2.SignedEvent:
        return self.signers[member].event(kind, **fields)

    def register(self, member: str, asset_id: str, **fields) -> api_pb2.Receipt:
        fields.setdefault("content_digest", digest(asset_id))
        fields.setdefault("classification", ledger_pb2.CLASSIFICATION_GENERAL)
        return self.commit(self.event(member, "asset_registered", asset_id=asset_id, **fields))

    def derive(self, member: str, asset_id: str, parents: list[str], **fields) -> api_pb2.Receipt:
        fields.setdefault("content_digest", digest(asset_id))
        fields.setdefault("classification", ledger_pb2.CLASSIFICATION_GENERAL)
        fields.setdefault("activity", "cleaning")
        return self.commit(
            self.event(member, "asset_derived", asset_id=asset_id, parent_ids=parents, **fields)
        )

    def wait_committed(self, event_ids: list[bytes]) -> list[api_pb2.GetEventResponse]:
        """Poll GetEvent until every event is committed."""
        deadline = time.monotonic() + COMMIT_TIMEOUT_S
        found: dict[bytes, api_pb2.GetEventResponse] = {}
        while True:
            for identifier in event_ids:
                if identifier in found:
                    continue
                try:
                    found[identifier] = self.stub.GetEvent(
                        api_pb2.GetEventRequest(event_id=identifier), timeout=RPC_TIMEOUT_S
                    )
                except grpc.RpcError as error:
                    if error.code() != grpc.StatusCode.NOT_FOUND:
                        raise
            if len(found) == len(event_ids):
                return [found[identifier] for identifier in event_ids]
            if time.monotonic() > deadline:
                missing = [i.hex() for i in event_ids if i not in found]
                raise AssertionError(f"not committed after {COMMIT_TIMEOUT_S} s: {missing}")
            time.sleep(0.02)

    # --- reading ----------------------------------------------------------------------------

    def head_height(self) -> int:
        checkpoint = self.stub.GetCheckpoint(api_pb2.GetCheckpointRequest(), timeout=RPC_TIMEOUT_S)
        return decode_header(checkpoint.header).height

    def block(self, height: int) -> api_pb2.GetBlockResponse:
        return self.stub.GetBlock(api_pb2.GetBlockRequest(height=height), timeout=RPC_TIMEOUT_S)

    def asset(self, asset_id: str) -> state_pb2.AssetRecord:
        return self.stub.GetAsset(api_pb2.GetAssetRequest(asset_id=asset_id), timeout=RPC_TIMEOUT_S)


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ledger]:
    tmp_path = tmp_path_factory.mktemp("grpc-node")
    layout = init_consortium(tmp_path, nodes=1)
    node = NodeProcess.for_node(layout, 0, tmp_path)
    node.start()
    channel = client_channel(node.address)
    try:
        identities = {member: Identity.load(path) for member, path in layout.identities.items()}
        ledger = Ledger(
            node=node,
            channel=channel,
            stub=api_pb2_grpc.LedgerServiceStub(channel),
            genesis=parse_genesis(layout.genesis_path.read_bytes()),
            identities=identities,
            signers={member: EventSigner(identity) for member, identity in identities.items()},
        )
        ledger.register("agency-a", PROBE_ASSET)
        yield ledger
    finally:
        channel.close()
        node.stop()


# --- helpers for bad input ----------------------------------------------------------------


def rejected(call: Callable[[], object]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value


def assert_status(error: grpc.RpcError, status: grpc.StatusCode, code: str | None) -> None:
    assert error.code() == status, error.details()
    if code is not None:
        assert error.details().startswith(f"{code}: "), error.details()


def probe(ledger: Ledger) -> api_pb2.Receipt:
    """Commit a harmless event (the owner using its own asset), which changes no record."""
    return ledger.commit(
        ledger.event(
            "agency-a",
            "asset_used",
            asset_id=PROBE_ASSET,
            purpose="probe",
            operation=ledger_pb2.OPERATION_READ,
        )
    )


NONCE_PROBE_ASSET = "nonce-probe/never-registered"


def committed_location(ledger: Ledger, signed: ledger_pb2.SignedEvent) -> tuple[int, int]:
    """(height, log index) of a committed event."""
    found = ledger.stub.GetEvent(
        api_pb2.GetEventRequest(event_id=event_id(signed.body)), timeout=RPC_TIMEOUT_S
    )
    assert found.event == signed
    return found.height, found.log_index


def nonce_holder(ledger: Ledger, signed: ledger_pb2.SignedEvent) -> tuple[str, int] | None:
    """(member id, nonce) of `signed` if it could consume a nonce of one of the consortium's
    members: its body parses, its author is one of them, and not the auditor (an auditor's
    event is refused before its nonce is looked at, and none ever commits)."""
    try:
        event = ledger_pb2.Event.FromString(signed.body)
    except DecodeError:
        return None
    member_id = event.author.member_id
    if member_id not in ledger.identities or member_id == "auditor":
        return None
    if not 1 <= event.nonce <= NONCE_MAX:  # refused before any nonce is looked up or used
        return None
    return member_id, event.nonce


def assert_nonce_unused(ledger: Ledger, member_id: str, nonce: int) -> None:
    """`nonce` of `member_id` is unused: an event by it with that nonce gets past the nonce
    check (ALREADY_EXISTS replayed_nonce had the nonce been used) and is refused by the first
    rule after it, a use of an asset nobody registered, so that this probe changes nothing."""
    signed = EventSigner(ledger.identities[member_id], first_nonce=nonce).event(
        "asset_used",
        asset_id=NONCE_PROBE_ASSET,
        purpose="nonce probe",
        operation=ledger_pb2.OPERATION_READ,
    )
    error = rejected(
        lambda: ledger.stub.SubmitEvent(api_pb2.SubmitEventRequest(event=signed), timeout=5)
    )
    assert_status(error, grpc.StatusCode.FAILED_PRECONDITION, "unknown_asset")


@contextlib.contextmanager
def state_unchanged(
    ledger: Ledger,
    refused: tuple[ledger_pb2.SignedEvent, ...] = (),
    asset_ids: tuple[str, ...] = (),
    committed: tuple[ledger_pb2.SignedEvent, ...] = (),
) -> Iterator[None]:
    """The body's requests, all refused, change nothing, whenever heartbeat blocks land:

    - no event of `refused` is committed (GetEvent NOT_FOUND), and each one's nonce (if its
      author is a member that could use one) is still unused, unless an event of `committed`
      holds it;
    - every event of `committed` (committed before the body) is still where it was;
    - the records of `asset_ids` are the same, byte for byte;
    - nothing the body sent was queued: a probe submitted afterwards commits, and every block
      from the body's start through the probe's holds the probe or nothing (heartbeat blocks
      are empty; the module's tests leave nothing in the mempool).

    The head height is not compared: an idle node commits an empty block about once a second."""
    start = ledger.head_height()
    records = {a: ledger.asset(a).SerializeToString(deterministic=True) for a in asset_ids}
    locations = {event_id(e.body): committed_location(ledger, e) for e in committed}
    yield
    for asset_id, record in records.items():
        assert ledger.asset(asset_id).SerializeToString(deterministic=True) == record, asset_id
    for signed in committed:
        assert committed_location(ledger, signed) == locations[event_id(signed.body)]
    held = {nonce_holder(ledger, signed) for signed in committed}
    for signed in refused:
        assert_not_committed(ledger, signed)
        holder = nonce_holder(ledger, signed)
        if holder is not None and holder not in held:
            assert_nonce_unused(ledger, *holder)
    receipt = probe(ledger)
    for height in range(start + 1, receipt.height + 1):
        events = [event_id(e.body) for e in ledger.block(height).block.events]
        expected = [receipt.event_id] if height == receipt.height else []
        assert events == expected, f"block {height} holds {[e.hex() for e in events]}"


def assert_not_committed(ledger: Ledger, signed: ledger_pb2.SignedEvent) -> None:
    error = rejected(
        lambda: ledger.stub.GetEvent(api_pb2.GetEventRequest(event_id=event_id(signed.body)))
    )
    assert_status(error, grpc.StatusCode.NOT_FOUND, "unknown_event")


def assert_above_head_not_found(ledger: Ledger, read_header: Callable[[int], bytes]) -> None:
    """`read_header(head + 1)` is NOT_FOUND unknown_height. A heartbeat block may commit
    between reading the head and asking: then what is read must be that very block, and the
    check is made again over the new head."""
    answered: list[int] = []

    def not_found_above_head() -> bool:
        head = ledger.head_height()
        try:
            header = read_header(head + 1)
        except grpc.RpcError as error:
            assert_status(error, grpc.StatusCode.NOT_FOUND, "unknown_height")
            return True
        assert decode_header(header).height == head + 1
        answered.append(head + 1)
        return False

    wait_until(not_found_above_head, COMMIT_TIMEOUT_S, lambda: f"found heights {answered}")


def foreign_event(
    chain_id: str, member_id: str, key: SigningKey, **payload
) -> ledger_pb2.SignedEvent:
    """An asset registration signed by `key`, claiming to be `member_id`."""
    event = ledger_pb2.Event(
        chain_id=chain_id,
        author=ledger_pb2.Author(member_id=member_id, key_id=key.key_id),
        nonce=time.time_ns(),
        timestamp_ms=now_ms(),
        asset_registered=ledger_pb2.AssetRegistered(
            asset_id=payload.get("asset_id", "foreign/asset"),
            content_digest=digest("foreign"),
            classification=ledger_pb2.CLASSIFICATION_GENERAL,
        ),
    )
    return sign_event(event, key)


def verify_receipt_proof(
    genesis: Genesis,
    checkpoint: ledger_pb2.Checkpoint,
    proof: ledger_pb2.InclusionProof,
    signed: ledger_pb2.SignedEvent,
) -> VerifiedInclusion:
    """Check an inclusion proof against its checkpoint, trusting only the genesis (the same
    check the CLI and the demo make: protocol/proofs.py)."""
    return verify_inclusion_answer(signed, proof, checkpoint, genesis, event_id(signed.body))


# --- health and reflection ----------------------------------------------------------------


def test_health_reports_serving(ledger: Ledger) -> None:
    stub = health_pb2_grpc.HealthStub(ledger.channel)
    for service in ("", SERVICE):
        response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_the_ledger_service(ledger: Ledger) -> None:
    database = ProtoReflectionDescriptorDatabase(ledger.channel)
    services = database.get_services()
    assert SERVICE in services
    assert "grpc.health.v1.Health" in services
    pool = descriptor_pool.DescriptorPool(database)
    service = pool.FindServiceByName(SERVICE)
    methods = {method.name for method in service.methods}
    assert {"SubmitAndWait", "GetInclusionProof", "SubscribeBlocks"} <= methods
    event = pool.FindMessageTypeByName("provledger.v1.Event")
    assert "asset_registered" in event.fields_by_name


# --- submitting ---------------------------------------------------------------------------


def test_submit_and_wait_receipt_proof_verifies(ledger: Ledger) -> None:
    signed = ledger.event(
        "agency-a",
        "asset_registered",
        asset_id="grpc/receipt",
        content_digest=digest("receipt"),
        classification=ledger_pb2.CLASSIFICATION_IMPORTANT,
        name="Receipt test",
    )
    receipt = ledger.commit(signed)
    assert receipt.event_id == hashlib.sha256(signed.body).digest()
    header = verify_receipt_proof(ledger.genesis, receipt.checkpoint, receipt.proof, signed)
    assert header.height == receipt.height
    assert receipt.proof.leaf_index == receipt.log_index
    # The proof does not verify for another event or a tampered path.
    with pytest.raises(ProofAnswerError) as other_event:
        verify_inclusion_answer(
            signed, receipt.proof, receipt.checkpoint, ledger.genesis, bytes(32)
        )
    assert other_event.value.code == "wrong_event"
    if receipt.proof.hashes:
        tampered = ledger_pb2.InclusionProof()
        tampered.CopyFrom(receipt.proof)
        tampered.hashes[0] = digest("tampered")
        with pytest.raises(ProofAnswerError) as bad_path:
            verify_inclusion_answer(
                signed, tampered, receipt.checkpoint, ledger.genesis, receipt.event_id
            )
        assert bad_path.value.code == "bad_proof"
    asset = ledger.asset("grpc/receipt")
    assert asset.owner_id == "agency-a"
    assert asset.origin_event_id == receipt.event_id
    assert asset.classification == ledger_pb2.CLASSIFICATION_IMPORTANT


def test_submit_event_then_get_event(ledger: Ledger) -> None:
    signed = ledger.event(
        "agency-b",
        "asset_registered",
        asset_id="grpc/submit-event",
        content_digest=digest("submit-event"),
        classification=ledger_pb2.CLASSIFICATION_GENERAL,
    )
    response = ledger.stub.SubmitEvent(api_pb2.SubmitEventRequest(event=signed), timeout=5)
    assert response.event_id == event_id(signed.body)
    (found,) = ledger.wait_committed([response.event_id])
    assert found.event_id == response.event_id
    assert found.event.body == signed.body
    assert found.event.signature == signed.signature
    block = ledger.block(found.height).block
    assert signed in block.events
    header = decode_header(block.header)
    position = list(block.events).index(signed)
    assert found.log_index == header.log_size - header.event_count + position


def test_submit_events_reports_each_result_in_order(ledger: Ledger) -> None:
    first = ledger.event(
        "agency-a",
        "asset_registered",
        asset_id="grpc/batch-1",
        content_digest=digest("batch-1"),
        classification=ledger_pb2.CLASSIFICATION_GENERAL,
    )
    second = ledger.event(
        "agency-b",
        "asset_registered",
        asset_id="grpc/batch-2",
        content_digest=digest("batch-2"),
        classification=ledger_pb2.CLASSIFICATION_GENERAL,
    )
    forged = ledger.event(
        "agency-a",
        "asset_registered",
        asset_id="grpc/batch-forged",
        content_digest=digest("forged"),
        classification=ledger_pb2.CLASSIFICATION_GENERAL,
    )
    forged = ledger_pb2.SignedEvent(body=forged.body, signature=bytes(64))
    response = ledger.stub.SubmitEvents(
        api_pb2.SubmitEventsRequest(events=[first, second, forged, first]), timeout=5
    )
    results = list(response.results)
    assert [r.accepted for r in results] == [True, True, False, False]
    assert [r.error_code for r in results] == ["", "", "bad_signature", "duplicate_event"]
    assert results[0].event_id == event_id(first.body)
    assert results[1].event_id == event_id(second.body)
    assert all(r.error for r in results[2:])
    committed = ledger.wait_committed([results[0].event_id, results[1].event_id])
    assert [c.log_index for c in committed] == sorted(c.log_index for c in committed)
    assert_not_committed(ledger, forged)


def test_conflicting_registrations_only_one_commits(ledger: Ledger) -> None:
    futures = [
        ledger.stub.SubmitAndWait.future(
            api_pb2.SubmitAndWaitRequest(
                event=ledger.event(
                    member,
                    "asset_registered",
                    asset_id="grpc/contested",
                    content_digest=digest(member),
                    classification=ledger_pb2.CLASSIFICATION_GENERAL,
                )
            ),
            timeout=RPC_TIMEOUT_S,
        )
        for member in ("agency-a", "agency-b")
    ]
    receipts, errors = [], []
    for future in futures:
        try:
            receipts.append(future.result())
        except grpc.RpcError as error:
            errors.append(error)
    assert len(receipts) == 1 and len(errors) == 1
    assert_status(errors[0], grpc.StatusCode.ALREADY_EXISTS, "asset_exists")
    winner = ledger.asset("grpc/contested")
    assert winner.origin_event_id == receipts[0].event_id


# --- reading blocks, checkpoints and proofs -----------------------------------------------


def test_get_block_header_events_and_certificate(ledger: Ledger) -> None:
    signed = ledger.event(
        "agency-a",
        "asset_registered",
        asset_id="grpc/block",
        content_digest=digest("block"),
        classification=ledger_pb2.CLASSIFICATION_GENERAL,
    )
    receipt = ledger.commit(signed)
    response = ledger.block(receipt.height)
    block, certificate = response.block, response.certificate
    header = decode_header(block.header)
    assert header.chain_id == ledger.genesis.chain_id
    assert header.height == receipt.height
    assert header.event_count == len(block.events)
    assert signed in block.events
    leaf_hashes = [merkle.hash_leaf(log_leaf(event_id(e.body), e.signature)) for e in block.events]
    assert header.events_root == merkle.root_from_leaf_hashes(leaf_hashes)
    assert certificate.block_id == block_id(block.header)
    verify_certificate(certificate, header, block.header, ledger.genesis.validator_set)
    # The header matches the receipt's checkpoint, byte for byte.
    assert receipt.checkpoint.header == block.header
    # It chains onto the block before it (or the genesis), and carries its certificate.
    if header.height == 1:
        assert header.previous_block_id == ledger.genesis.genesis_hash
    else:
        previous = ledger.block(header.height - 1)
        assert header.previous_block_id == block_id(previous.block.header)
        assert block.last_commit == previous.certificate
        assert header.last_commit_hash == certificate_hash(previous.certificate)
        previous_header = decode_header(previous.block.header)
        assert header.log_size == previous_header.log_size + header.event_count
    # Height 0 is the latest block: one at or after the head before the call, and at or
    # before the head after it (a heartbeat block may commit in between).
    before = ledger.head_height()
    latest = decode_header(ledger.block(0).block.header).height
    assert receipt.height <= before <= latest <= ledger.head_height()


def test_get_checkpoint_latest_and_at_height(ledger: Ledger) -> None:
    before = ledger.head_height()
    latest = ledger.stub.GetCheckpoint(api_pb2.GetCheckpointRequest(height=0), timeout=5)
    assert before <= verify_checkpoint(latest, ledger.genesis).height <= ledger.head_height()
    at_one = ledger.stub.GetCheckpoint(api_pb2.GetCheckpointRequest(height=1), timeout=5)
    header = verify_checkpoint(at_one, ledger.genesis)
    assert header.height == 1
    block = ledger.block(1)
    assert at_one.header == block.block.header
    assert at_one.certificate == block.certificate
    assert_above_head_not_found(
        ledger,
        lambda height: (
            ledger.stub.GetCheckpoint(api_pb2.GetCheckpointRequest(height=height), timeout=5).header
        ),
    )


def test_inclusion_proof_at_an_older_height(ledger: Ledger) -> None:
    signed = ledger.event(
        "agency-a",
        "asset_registered",
        asset_id="grpc/old-proof",
        content_digest=digest("old-proof"),
        classification=ledger_pb2.CLASSIFICATION_GENERAL,
    )
    receipt = ledger.commit(signed)
    for _ in range(3):  # grow the log past the event's block
        probe(ledger)
    at_commit = ledger.stub.GetInclusionProof(
        api_pb2.GetInclusionProofRequest(event_id=receipt.event_id, height=receipt.height),
        timeout=5,
    )
    latest = ledger.stub.GetInclusionProof(
        api_pb2.GetInclusionProofRequest(event_id=receipt.event_id), timeout=5
    )
    old_header = verify_receipt_proof(ledger.genesis, at_commit.checkpoint, at_commit.proof, signed)
    new_header = verify_receipt_proof(ledger.genesis, latest.checkpoint, latest.proof, signed)
    assert old_header.height == receipt.height
    assert receipt.height + 3 <= new_header.height <= ledger.head_height()
    assert at_commit.proof.tree_size < latest.proof.tree_size
    assert at_commit.proof.leaf_index == latest.proof.leaf_index == receipt.log_index
    assert at_commit.event == latest.event == signed
    # Before the event was committed there is nothing to prove.
    error = rejected(
        lambda: ledger.stub.GetInclusionProof(
            api_pb2.GetInclusionProofRequest(event_id=receipt.event_id, height=receipt.height - 1),
            timeout=5,
        )
    )
    assert_status(error, grpc.StatusCode.FAILED_PRECONDITION, "not_in_tree")
    error = rejected(
        lambda: ledger.stub.GetInclusionProof(
            api_pb2.GetInclusionProofRequest(event_id=bytes(32)), timeout=5
        )
    )
    assert_status(error, grpc.StatusCode.NOT_FOUND, "unknown_event")


def test_consistency_proof_between_heights(ledger: Ledger) -> None:
    probe(ledger)
    head = ledger.head_height()
    for first_height in (1, 2, head - 1, head):
        response = ledger.stub.GetConsistencyProof(
            api_pb2.GetConsistencyProofRequest(first_height=first_height, second_height=head),
            timeout=5,
        )
        verified = verify_consistency_answer(
            response.proof, response.first, response.second, ledger.genesis
        )
        assert (verified.first_height, verified.second_height) == (first_height, head)
        first = verify_checkpoint(response.first, ledger.genesis)
        second = verify_checkpoint(response.second, ledger.genesis)
        if first.log_size < second.log_size:  # a wrong old root does not verify
            with pytest.raises(merkle.ProofError):
                merkle.verify_consistency(
                    first.log_size,
                    second.log_size,
                    list(response.proof.hashes),
                    digest("wrong"),
                    second.log_root,
                )
    error = rejected(
        lambda: ledger.stub.GetConsistencyProof(
            api_pb2.GetConsistencyProofRequest(first_height=0), timeout=5
        )
    )
    assert_status(error, grpc.StatusCode.INVALID_ARGUMENT, "bad_range")


# --- world-state queries ------------------------------------------------------------------


@pytest.fixture(scope="module")
def history(ledger: Ledger) -> tuple[str, list[bytes], api_pb2.Receipt]:
    """An asset with more history than one page can hold: its registration and
    HISTORY_PAGE_EVENTS_MAX + 1 uses. Returns (asset id, event ids in log order, registration)."""
    asset_id = "grpc/history"
    registration = ledger.register("agency-a", asset_id)
    uses = [
        ledger.event(
            "agency-a",
            "asset_used",
            asset_id=asset_id,
            purpose=f"use-{index}",
            operation=ledger_pb2.OPERATION_READ,
        )
        for index in range(HISTORY_PAGE_EVENTS_MAX + 1)
    ]
    use_ids = []
    for start in range(0, len(uses), SUBMIT_BATCH_EVENTS_MAX):
        response = ledger.stub.SubmitEvents(
            api_pb2.SubmitEventsRequest(events=uses[start : start + SUBMIT_BATCH_EVENTS_MAX]),
            timeout=RPC_TIMEOUT_S,
        )
        assert all(result.accepted for result in response.results)
        use_ids += [result.event_id for result in response.results]
    ledger.wait_committed(use_ids)
    return asset_id, [registration.event_id, *use_ids], registration


def history_page(
    ledger: Ledger, asset_id: str, limit: int, after: int | None = None
) -> api_pb2.GetAssetHistoryResponse:
    request = api_pb2.GetAssetHistoryRequest(asset_id=asset_id, limit=limit)
    if after is not None:
        request.after_log_index = after
        request.has_cursor = True
    return ledger.stub.GetAssetHistory(request, timeout=RPC_TIMEOUT_S)


def test_asset_history_limit_defaults_and_is_capped(ledger: Ledger, history) -> None:
    asset_id, expected, _ = history
    default = history_page(ledger, asset_id, 0)
    assert len(default.entries) == HISTORY_PAGE_EVENTS_DEFAULT and default.more
    assert [entry.event_id for entry in default.entries] == expected[:HISTORY_PAGE_EVENTS_DEFAULT]
    capped = history_page(ledger, asset_id, HISTORY_PAGE_EVENTS_MAX * 5)
    assert len(capped.entries) == HISTORY_PAGE_EVENTS_MAX and capped.more
    rest = history_page(ledger, asset_id, HISTORY_PAGE_EVENTS_MAX, capped.entries[-1].log_index)
    assert len(rest.entries) == len(expected) - HISTORY_PAGE_EVENTS_MAX and not rest.more
    assert [e.event_id for e in [*capped.entries, *rest.entries]] == expected


def test_asset_history_pages_with_a_cursor(ledger: Ledger, history) -> None:
    asset_id, expected, registration = history
    # Walking every page with a cursor yields the whole history once, in log order.
    seen: list[api_pb2.HistoryEntry] = []
    cursor = None
    while True:
        response = history_page(ledger, asset_id, 333, cursor)
        seen += response.entries
        if not response.more:
            break
        cursor = response.entries[-1].log_index
    assert [entry.event_id for entry in seen] == expected
    log_indexes = [entry.log_index for entry in seen]
    assert log_indexes == sorted(set(log_indexes))
    for entry in seen[:3]:
        assert entry.event_id == event_id(entry.event.body)
    assert seen[0].log_index == registration.log_index
    assert seen[0].height == registration.height
    # A cursor at log index 0 is a real cursor (has_cursor), not "from the start": the probe
    # asset's registration is the chain's first event, at log index 0.
    from_start = history_page(ledger, PROBE_ASSET, 2)
    assert from_start.entries[0].log_index == 0
    after_zero = history_page(ledger, PROBE_ASSET, 2, after=0)
    assert after_zero.entries[0].log_index > 0
    assert after_zero.entries[0].event_id == from_start.entries[1].event_id
    after_registration = history_page(ledger, asset_id, 5, after=registration.log_index)
    assert after_registration.entries[0].event_id == expected[1]
    past_the_end = history_page(ledger, asset_id, 5, after=seen[-1].log_index)
    assert list(past_the_end.entries) == [] and not past_the_end.more


def test_asset_history_of_an_unknown_asset_is_not_found(ledger: Ledger) -> None:
    error = rejected(
        lambda: ledger.stub.GetAssetHistory(
            api_pb2.GetAssetHistoryRequest(asset_id="grpc/no-such-asset"), timeout=5
        )
    )
    assert_status(error, grpc.StatusCode.NOT_FOUND, "unknown_asset")


def test_lineage_upstream_and_downstream_with_depth_limits(ledger: Ledger) -> None:
    # root -> a -> b -> c, and root -> side; c also derives from other.
    ledger.register("agency-a", "lineage/root")
    ledger.register("agency-a", "lineage/other")
    ledger.derive("agency-a", "lineage/a", ["lineage/root"])
    ledger.derive("agency-a", "lineage/side", ["lineage/root"], activity="fusion")
    ledger.derive("agency-a", "lineage/b", ["lineage/a"])
    ledger.derive("agency-a", "lineage/c", ["lineage/b", "lineage/other"], activity="modelling")

    def lineage(asset_id: str, direction: int, depth: int = 0, max_nodes: int = 0):
        response = ledger.stub.GetLineage(
            api_pb2.GetLineageRequest(
                asset_id=asset_id, direction=direction, depth=depth, max_nodes=max_nodes
            ),
            timeout=5,
        )
        assets = [asset.asset_id for asset in response.assets]
        edges = {(edge.parent_id, edge.child_id) for edge in response.edges}
        return assets, edges, response.truncated

    upstream = api_pb2.LINEAGE_DIRECTION_UPSTREAM
    downstream = api_pb2.LINEAGE_DIRECTION_DOWNSTREAM

    assets, edges, truncated = lineage("lineage/c", upstream)
    assert assets[0] == "lineage/c"
    assert set(assets) == {"lineage/c", "lineage/b", "lineage/other", "lineage/a", "lineage/root"}
    assert edges == {
        ("lineage/b", "lineage/c"),
        ("lineage/other", "lineage/c"),
        ("lineage/a", "lineage/b"),
        ("lineage/root", "lineage/a"),
    }
    assert not truncated

    assets, edges, truncated = lineage("lineage/c", upstream, depth=1)
    assert assets[0] == "lineage/c" and set(assets) == {"lineage/c", "lineage/b", "lineage/other"}
    assert edges == {("lineage/b", "lineage/c"), ("lineage/other", "lineage/c")}
    assert truncated

    assets, edges, truncated = lineage("lineage/root", downstream, depth=1)
    assert assets[0] == "lineage/root" and set(assets) == {
        "lineage/root",
        "lineage/a",
        "lineage/side",
    }
    assert edges == {("lineage/root", "lineage/a"), ("lineage/root", "lineage/side")}
    assert truncated

    assets, _, truncated = lineage("lineage/root", downstream)
    assert set(assets) == {"lineage/root", "lineage/a", "lineage/side", "lineage/b", "lineage/c"}
    assert not truncated

    assets, _, truncated = lineage("lineage/root", downstream, max_nodes=2)
    assert len(assets) == 2 and assets[0] == "lineage/root" and truncated

    # A leaf's downstream is itself alone, not truncated.
    assert lineage("lineage/c", downstream) == (["lineage/c"], set(), False)

    record = ledger.asset("lineage/c")
    assert list(record.parent_ids) == ["lineage/b", "lineage/other"]
    assert record.activity == "modelling"


def test_grant_and_order_records(ledger: Ledger) -> None:
    asset_id = "grpc/traded"
    ledger.register("agency-a", asset_id)
    expires_at_ms = now_ms() + 30 * DAY_MS
    grant_receipt = ledger.commit(
        ledger.event(
            "agency-a",
            "grant_issued",
            grant_id="grant/grpc",
            asset_id=asset_id,
            grantee_id="agency-b",
            purposes=["research"],
            operations=[ledger_pb2.OPERATION_COMPUTE],
            expires_at_ms=expires_at_ms,
        )
    )
    grant = ledger.stub.GetGrant(api_pb2.GetGrantRequest(grant_id="grant/grpc"), timeout=5)
    assert grant.grantor_id == "agency-a"
    assert grant.event_id == grant_receipt.event_id
    assert grant.grant.grantee_id == "agency-b"
    assert list(grant.grant.purposes) == ["research"]
    assert grant.grant.expires_at_ms == expires_at_ms
    assert not grant.revoked

    offer_receipt = ledger.commit(
        ledger.event(
            "exchange",
            "offer_listed",
            offer_id="offer/grpc",
            asset_id=asset_id,
            seller_id="agency-a",
            price=1000,
            currency="CNY",
        )
    )
    order_receipt = ledger.commit(
        ledger.event("agency-b", "order_placed", order_id="order/grpc", offer_id="offer/grpc")
    )
    order = ledger.stub.GetOrder(api_pb2.GetOrderRequest(order_id="order/grpc"), timeout=5)
    assert order.status == state_pb2.ORDER_STATUS_ORDERED
    assert (order.buyer_id, order.seller_id, order.exchange_id) == (
        "agency-b",
        "agency-a",
        "exchange",
    )
    assert list(order.event_ids) == [offer_receipt.event_id, order_receipt.event_id]

    ledger.commit(ledger.event("agency-a", "grant_revoked", grant_id="grant/grpc", reason="done"))
    revoked = ledger.stub.GetGrant(api_pb2.GetGrantRequest(grant_id="grant/grpc"), timeout=5)
    assert revoked.revoked and revoked.revoked_at_ms > 0

    for call, request, code in (
        (ledger.stub.GetGrant, api_pb2.GetGrantRequest(grant_id="grant/none"), "unknown_grant"),
        (ledger.stub.GetOrder, api_pb2.GetOrderRequest(order_id="order/none"), "unknown_order"),
        (ledger.stub.GetAsset, api_pb2.GetAssetRequest(asset_id="asset/none"), "unknown_asset"),
    ):
        error = rejected(lambda call=call, request=request: call(request, timeout=5))
        assert_status(error, grpc.StatusCode.NOT_FOUND, code)


# --- subscriptions ------------------------------------------------------------------------


def test_subscribe_blocks_replays_then_goes_live(ledger: Ledger) -> None:
    probe(ledger)
    head = ledger.head_height()
    assert head >= 2
    stream = ledger.stub.SubscribeBlocks(
        api_pb2.SubscribeBlocksRequest(from_height=1), timeout=STREAM_TIMEOUT_S
    )
    try:
        previous_id = ledger.genesis.genesis_hash
        for height in range(1, head + 1):
            block = next(stream)
            header = decode_header(block.header)
            assert header.height == height
            assert header.previous_block_id == previous_id
            assert block == ledger.block(height).block
            previous_id = block_id(block.header)
        # Later blocks do not exist yet: each arrives when it commits, in order, the one
        # holding a new event among them (heartbeat blocks may come before it, empty).
        live_event = ledger.event(
            "agency-a",
            "asset_used",
            asset_id=PROBE_ASSET,
            purpose="live",
            operation=ledger_pb2.OPERATION_READ,
        )
        pending = ledger.stub.SubmitAndWait.future(
            api_pb2.SubmitAndWaitRequest(event=live_event), timeout=RPC_TIMEOUT_S
        )
        height = head
        while True:
            block = next(stream)
            header = decode_header(block.header)
            height += 1
            assert header.height == height
            assert header.previous_block_id == previous_id
            previous_id = block_id(block.header)
            if live_event in block.events:
                break
            assert list(block.events) == [], f"block {height} holds events nobody sent"
        assert list(block.events) == [live_event]
        assert pending.result().height == height
        assert block == ledger.block(height).block
    finally:
        stream.cancel()

    # From a later height, the stream starts there.
    stream = ledger.stub.SubscribeBlocks(
        api_pb2.SubscribeBlocksRequest(from_height=2), timeout=RPC_TIMEOUT_S
    )
    try:
        assert decode_header(next(stream).header).height == 2
    finally:
        stream.cancel()


# --- bad input ----------------------------------------------------------------------------


def test_personal_data_in_free_text_is_refused_and_never_reaches_another_member(
    ledger: Ledger,
) -> None:
    """The attack: a record with a name, a PRC resident ID number and a diagnosis was
    committed and read from another node. Now every free-text field is checked against the
    genesis's personal-data patterns (the defaults here), at admission and in every block."""
    leak = ledger.event(
        "agency-a",
        "asset_registered",
        asset_id="clinic/patient-record",
        content_digest=digest("record"),
        classification=ledger_pb2.CLASSIFICATION_CORE,
        name="Zhang San 11010519491231002X type 2 diabetes",
        metadata={"contact": "13812345678"},
    )
    with state_unchanged(ledger, refused=(leak,), asset_ids=()):
        error = rejected(
            lambda: ledger.stub.SubmitEvent(api_pb2.SubmitEventRequest(event=leak), timeout=5)
        )
        assert_status(error, grpc.StatusCode.INVALID_ARGUMENT, "personal_data")
        assert "11010519491231002X" not in error.details()
        assert_status(
            rejected(lambda: ledger.commit(leak)), grpc.StatusCode.INVALID_ARGUMENT, "personal_data"
        )
    assert_status(
        rejected(lambda: ledger.asset("clinic/patient-record")),
        grpc.StatusCode.NOT_FOUND,
        "unknown_asset",
    )


def test_malformed_body_is_invalid_argument(ledger: Ledger) -> None:
    key = ledger.identities["agency-a"].key
    body = b"\x0a\x05ab"  # field 1 claims 5 bytes, 2 follow
    signed = ledger_pb2.SignedEvent(body=body, signature=key.sign(b"provledger/v1/event\x00", body))
    # An empty body is an event without author or payload.
    empty = ledger_pb2.SignedEvent(body=b"", signature=bytes(64))
    with state_unchanged(ledger, refused=(signed, empty)):
        for call in (
            lambda: ledger.stub.SubmitEvent(api_pb2.SubmitEventRequest(event=signed), timeout=5),
            lambda: ledger.commit(signed),
        ):
            assert_status(rejected(call), grpc.StatusCode.INVALID_ARGUMENT, "malformed")
        error = rejected(
            lambda: ledger.stub.SubmitEvent(api_pb2.SubmitEventRequest(event=empty), timeout=5)
        )
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_bad_signature_is_invalid_argument(ledger: Ledger) -> None:
    signed = ledger.event(
        "agency-a",
        "asset_registered",
        asset_id="bad/signature",
        content_digest=digest("bad"),
        classification=ledger_pb2.CLASSIFICATION_GENERAL,
    )
    flipped = bytearray(signed.signature)
    flipped[10] ^= 0x01
    tampered = ledger_pb2.SignedEvent(body=signed.body, signature=bytes(flipped))
    other_key = ledger.identities["agency-b"].key
    signed_by_other = ledger_pb2.SignedEvent(
        body=signed.body, signature=other_key.sign(b"provledger/v1/event\x00", signed.body)
    )
    short = ledger_pb2.SignedEvent(body=signed.body, signature=signed.signature[:63])
    with state_unchanged(ledger, refused=(tampered, signed_by_other, short)):
        for bad in (tampered, signed_by_other, short):
            error = rejected(
                lambda bad=bad: ledger.stub.SubmitEvent(
                    api_pb2.SubmitEventRequest(event=bad), timeout=5
                )
            )
            assert_status(error, grpc.StatusCode.INVALID_ARGUMENT, "bad_signature")
        error = rejected(lambda: ledger.commit(tampered))
        assert_status(error, grpc.StatusCode.INVALID_ARGUMENT, "bad_signature")
    assert_status(
        rejected(lambda: ledger.asset("bad/signature")), grpc.StatusCode.NOT_FOUND, "unknown_asset"
    )


def test_replayed_event_is_already_exists(ledger: Ledger) -> None:
    signed = ledger.event(
        "agency-a",
        "asset_registered",
        asset_id="replay/event",
        content_digest=digest("replay"),
        classification=ledger_pb2.CLASSIFICATION_GENERAL,
    )
    ledger.commit(signed)
    with state_unchanged(ledger, asset_ids=("replay/event",), committed=(signed,)):
        for call in (
            lambda: ledger.stub.SubmitEvent(api_pb2.SubmitEventRequest(event=signed), timeout=5),
            lambda: ledger.commit(signed),
        ):
            assert_status(rejected(call), grpc.StatusCode.ALREADY_EXISTS, "duplicate_event")
        response = ledger.stub.SubmitEvents(api_pb2.SubmitEventsRequest(events=[signed]), timeout=5)
        assert response.results[0].error_code == "duplicate_event"
        assert not response.results[0].accepted


def test_replayed_nonce_with_a_different_body_is_already_exists(ledger: Ledger) -> None:
    identity = ledger.identities["agency-b"]
    nonce = time.time_ns() // 1_000 + 10**12  # far from the shared signer's nonces
    first = EventSigner(identity, first_nonce=nonce).event(
        "asset_registered",
        asset_id="replay/nonce-1",
        content_digest=digest("nonce-1"),
        classification=ledger_pb2.CLASSIFICATION_GENERAL,
    )
    second = EventSigner(identity, first_nonce=nonce).event(
        "asset_registered",
        asset_id="replay/nonce-2",
        content_digest=digest("nonce-2"),
        classification=ledger_pb2.CLASSIFICATION_GENERAL,
    )
    assert first.body != second.body
    ledger.commit(first)
    with state_unchanged(
        ledger, refused=(second,), asset_ids=("replay/nonce-1",), committed=(first,)
    ):
        for call in (
            lambda: ledger.stub.SubmitEvent(api_pb2.SubmitEventRequest(event=second), timeout=5),
            lambda: ledger.commit(second),
        ):
            assert_status(rejected(call), grpc.StatusCode.ALREADY_EXISTS, "replayed_nonce")
    assert_status(rejected(lambda: ledger.asset("replay/nonce-2")), grpc.StatusCode.NOT_FOUND, None)


def test_unknown_author_and_unknown_key_are_permission_denied(ledger: Ledger) -> None:
    stranger_key = SigningKey.from_seed(digest("stranger"))
    stranger = foreign_event(ledger.genesis.chain_id, "stranger", stranger_key)
    impostor = foreign_event(ledger.genesis.chain_id, "agency-a", stranger_key)
    with state_unchanged(ledger, refused=(stranger, impostor)):
        error = rejected(lambda: ledger.commit(stranger))
        assert_status(error, grpc.StatusCode.PERMISSION_DENIED, "unknown_author")
        error = rejected(lambda: ledger.commit(impostor))
        assert_status(error, grpc.StatusCode.PERMISSION_DENIED, "unknown_key")


def test_wrong_role_is_permission_denied(ledger: Ledger) -> None:
    registrations = [
        ledger.event(
            member,
            "asset_registered",
            asset_id=f"role/{member}",
            content_digest=digest(member),
            classification=ledger_pb2.CLASSIFICATION_GENERAL,
        )
        for member in ("auditor", "regulator")
    ]
    # An exchange cannot issue a certificate (a regulator's act).
    certificate = ledger.event(
        "exchange", "certificate_issued", certificate_id="cert/x", asset_id=PROBE_ASSET
    )
    with state_unchanged(ledger, refused=(*registrations, certificate), asset_ids=(PROBE_ASSET,)):
        for signed in (*registrations, certificate):
            error = rejected(lambda signed=signed: ledger.commit(signed))
            assert_status(error, grpc.StatusCode.PERMISSION_DENIED, "wrong_role")


def test_rule_violations(ledger: Ledger) -> None:
    asset_id = "rules/owned-by-a"
    ledger.register("agency-a", asset_id)
    use_without_grant = ledger.event(
        "agency-b",
        "asset_used",
        asset_id=asset_id,
        purpose="curiosity",
        operation=ledger_pb2.OPERATION_READ,
    )
    derive_from_unknown = ledger.event(
        "agency-b",
        "asset_derived",
        asset_id="rules/orphan",
        parent_ids=["rules/never-registered"],
        activity="cleaning",
        content_digest=digest("orphan"),
        classification=ledger_pb2.CLASSIFICATION_GENERAL,
    )
    derive_without_grant = ledger.event(
        "agency-b",
        "asset_derived",
        asset_id="rules/stolen",
        parent_ids=[asset_id],
        activity="cleaning",
        content_digest=digest("stolen"),
        classification=ledger_pb2.CLASSIFICATION_GENERAL,
    )
    register_twice = ledger.event(
        "agency-b",
        "asset_registered",
        asset_id=asset_id,
        content_digest=digest("again"),
        classification=ledger_pb2.CLASSIFICATION_GENERAL,
    )
    refused = (use_without_grant, derive_without_grant, derive_from_unknown, register_twice)
    with state_unchanged(ledger, refused=refused, asset_ids=(asset_id,)):
        for signed, status, code in (
            (use_without_grant, grpc.StatusCode.PERMISSION_DENIED, "no_grant"),
            (derive_without_grant, grpc.StatusCode.PERMISSION_DENIED, "no_grant"),
            (derive_from_unknown, grpc.StatusCode.FAILED_PRECONDITION, "unknown_asset"),
            (register_twice, grpc.StatusCode.ALREADY_EXISTS, "asset_exists"),
        ):
            for call in (
                lambda signed=signed: ledger.stub.SubmitEvent(
                    api_pb2.SubmitEventRequest(event=signed), timeout=5
                ),
                lambda signed=signed: ledger.commit(signed),
            ):
                assert_status(rejected(call), status, code)
    for missing in ("rules/orphan", "rules/stolen"):
        assert_status(
            rejected(lambda missing=missing: ledger.asset(missing)), grpc.StatusCode.NOT_FOUND, None
        )


def test_wrong_chain_id_is_invalid_argument(ledger: Ledger) -> None:
    identity = dataclasses.replace(ledger.identities["agency-a"], chain_id="some-other-chain")
    signed = EventSigner(identity).event(
        "asset_registered",
        asset_id="chain/wrong",
        content_digest=digest("wrong chain"),
        classification=ledger_pb2.CLASSIFICATION_GENERAL,
    )
    with state_unchanged(ledger, refused=(signed,)):
        error = rejected(lambda: ledger.commit(signed))
        assert_status(error, grpc.StatusCode.INVALID_ARGUMENT, "wrong_chain")


def test_oversized_body_is_invalid_argument(ledger: Ledger) -> None:
    signed = ledger.event(
        "agency-a",
        "asset_registered",
        asset_id="size/oversized",
        content_digest=digest("big"),
        classification=ledger_pb2.CLASSIFICATION_GENERAL,
        name="x" * (EVENT_BODY_SIZE_BYTES_MAX + 1),
    )
    assert len(signed.body) > EVENT_BODY_SIZE_BYTES_MAX
    with state_unchanged(ledger, refused=(signed,)):
        for call in (
            lambda: ledger.stub.SubmitEvent(api_pb2.SubmitEventRequest(event=signed), timeout=5),
            lambda: ledger.commit(signed),
        ):
            assert_status(rejected(call), grpc.StatusCode.INVALID_ARGUMENT, "oversized")


def test_message_over_the_grpc_limit_is_resource_exhausted(ledger: Ledger) -> None:
    body = b"\x00" * (GRPC_MESSAGE_SIZE_BYTES_MAX + 1024)
    huge = ledger_pb2.SignedEvent(body=body, signature=bytes(64))
    with state_unchanged(ledger, refused=(huge,)):
        error = rejected(
            lambda: ledger.stub.SubmitEvent(api_pb2.SubmitEventRequest(event=huge), timeout=20)
        )
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error.details()
    # The node still answers on the same channel.
    assert ledger.head_height() > 0


def test_batch_over_the_limit_is_invalid_argument(ledger: Ledger) -> None:
    signed = ledger.event(
        "agency-a",
        "asset_registered",
        asset_id="batch/too-large",
        content_digest=digest("too large"),
        classification=ledger_pb2.CLASSIFICATION_GENERAL,
    )
    request = api_pb2.SubmitEventsRequest(events=[signed] * (SUBMIT_BATCH_EVENTS_MAX + 1))
    with state_unchanged(ledger, refused=(signed,)):
        error = rejected(lambda: ledger.stub.SubmitEvents(request, timeout=10))
        assert_status(error, grpc.StatusCode.INVALID_ARGUMENT, "batch_too_large")


def test_unknown_ids_and_heights_are_not_found(ledger: Ledger) -> None:
    error = rejected(
        lambda: ledger.stub.GetEvent(api_pb2.GetEventRequest(event_id=bytes(32)), timeout=5)
    )
    assert_status(error, grpc.StatusCode.NOT_FOUND, "unknown_event")
    assert_above_head_not_found(ledger, lambda height: ledger.block(height).block.header)
    error = rejected(lambda: ledger.block(2**63))
    assert_status(error, grpc.StatusCode.NOT_FOUND, "unknown_height")


def test_lineage_without_direction_is_invalid_argument(ledger: Ledger) -> None:
    error = rejected(
        lambda: ledger.stub.GetLineage(api_pb2.GetLineageRequest(asset_id=PROBE_ASSET), timeout=5)
    )
    assert_status(error, grpc.StatusCode.INVALID_ARGUMENT, "missing_field")
    error = rejected(
        lambda: ledger.stub.GetLineage(
            api_pb2.GetLineageRequest(
                asset_id="lineage/none", direction=api_pb2.LINEAGE_DIRECTION_UPSTREAM
            ),
            timeout=5,
        )
    )
    assert_status(error, grpc.StatusCode.NOT_FOUND, "unknown_asset")


def submit_refused(
    ledger: Ledger, signed: ledger_pb2.SignedEvent, status: grpc.StatusCode, code: str
) -> None:
    """`signed` is refused with `status` and `code` by SubmitEvent, SubmitAndWait and, as its
    own result, SubmitEvents."""
    for call in (
        lambda: ledger.stub.SubmitEvent(api_pb2.SubmitEventRequest(event=signed), timeout=5),
        lambda: ledger.commit(signed),
    ):
        assert_status(rejected(call), status, code)
    response = ledger.stub.SubmitEvents(api_pb2.SubmitEventsRequest(events=[signed]), timeout=5)
    assert (response.results[0].accepted, response.results[0].error_code) == (False, code)


def resigned(
    ledger: Ledger, member: str, signed: ledger_pb2.SignedEvent, change: Callable[..., None]
) -> ledger_pb2.SignedEvent:
    """`signed`'s Event changed by `change(event)` and signed again by `member`'s own key."""
    event = ledger_pb2.Event.FromString(signed.body)
    change(event)
    return sign_event(event, ledger.identities[member].key)


def signed_body(ledger: Ledger, member: str, body: bytes) -> ledger_pb2.SignedEvent:
    """The bytes `body`, whatever they are, with `member`'s good signature over them."""
    return ledger_pb2.SignedEvent(
        body=body, signature=ledger.identities[member].key.sign(crypto.DOMAIN_EVENT, body)
    )


UNKNOWN_FIELD = b"\x98\x06\x01"  # field 99, a varint: defined by no message of the ledger


def test_out_of_range_nonce_and_timestamp_are_invalid_argument(ledger: Ledger) -> None:
    def registration(asset_id: str) -> ledger_pb2.SignedEvent:
        return ledger.event(
            "agency-a",
            "asset_registered",
            asset_id=asset_id,
            content_digest=digest(asset_id),
            classification=ledger_pb2.CLASSIFICATION_GENERAL,
        )

    nonce_zero = EventSigner(ledger.identities["agency-a"], first_nonce=0).event(
        "asset_registered",
        asset_id="range/nonce-zero",
        content_digest=digest("nonce zero"),
        classification=ledger_pb2.CLASSIFICATION_GENERAL,
    )
    cases = [
        (nonce_zero, "bad_nonce"),
        (resigned(ledger, "agency-a", registration("range/nonce-big"), _set(nonce=2**64 - 1)),
         "bad_nonce"),
        (resigned(ledger, "agency-a", registration("range/time-negative"), _set(timestamp_ms=-1)),
         "bad_timestamp"),
        (resigned(ledger, "agency-a", registration("range/time-zero"), _set(timestamp_ms=0)),
         "bad_timestamp"),
        (resigned(ledger, "agency-a", registration("range/time-far"),
                  _set(timestamp_ms=EVENT_TIMESTAMP_MS_MAX + 1)),
         "bad_timestamp"),
    ]  # fmt: skip
    refused = tuple(signed for signed, _ in cases)
    with state_unchanged(ledger, refused=refused):
        for signed, code in cases:
            submit_refused(ledger, signed, grpc.StatusCode.INVALID_ARGUMENT, code)
    for asset_id in ("range/nonce-zero", "range/time-negative", "range/time-far"):
        assert_status(
            rejected(lambda asset_id=asset_id: ledger.asset(asset_id)),
            grpc.StatusCode.NOT_FOUND,
            "unknown_asset",
        )


def _set(**fields: int) -> Callable[[ledger_pb2.Event], None]:
    def change(event: ledger_pb2.Event) -> None:
        for name, value in fields.items():
            setattr(event, name, value)

    return change


def test_an_undefined_enum_value_is_invalid_argument(ledger: Ledger) -> None:
    """Enums are closed: a dispute outcome of 77 (nobody's dispute: the value is refused
    before any rule looks for the dispute) and a classification of 9."""
    outcome = ledger.event(
        "regulator", "dispute_resolved", dispute_id="enum/dispute", outcome=77, resolution="r"
    )
    classification = ledger.event(
        "agency-a",
        "asset_registered",
        asset_id="enum/classification",
        content_digest=digest("enum"),
        classification=9,
    )
    with state_unchanged(ledger, refused=(outcome, classification)):
        submit_refused(ledger, outcome, grpc.StatusCode.INVALID_ARGUMENT, "bad_enum")
        submit_refused(
            ledger, classification, grpc.StatusCode.INVALID_ARGUMENT, "bad_classification"
        )
    assert_status(
        rejected(lambda: ledger.asset("enum/classification")), grpc.StatusCode.NOT_FOUND, None
    )


def test_hidden_bytes_in_a_signed_body_are_invalid_argument(ledger: Ledger) -> None:
    """A well-signed body with an unknown field (field 99 appended) or in another encoding than
    the canonical one (a field written twice, the same value) is refused, not committed."""
    honest = ledger.event(
        "agency-a",
        "asset_registered",
        asset_id="hidden/bytes",
        content_digest=digest("hidden"),
        classification=ledger_pb2.CLASSIFICATION_GENERAL,
    )
    chain_again = ledger_pb2.Event(chain_id=ledger.genesis.chain_id).SerializeToString()
    appended = signed_body(ledger, "agency-a", honest.body + UNKNOWN_FIELD)
    repeated = signed_body(ledger, "agency-a", honest.body + chain_again)
    with state_unchanged(ledger, refused=(appended, repeated, honest)):
        submit_refused(ledger, appended, grpc.StatusCode.INVALID_ARGUMENT, "unknown_fields")
        submit_refused(ledger, repeated, grpc.StatusCode.INVALID_ARGUMENT, "non_canonical")
    assert_status(rejected(lambda: ledger.asset("hidden/bytes")), grpc.StatusCode.NOT_FOUND, None)
    # The honest body, canonical, is accepted.
    ledger.commit(honest)
    assert ledger.asset("hidden/bytes").owner_id == "agency-a"


def test_hidden_bytes_in_a_governance_change_are_invalid_argument(ledger: Ledger) -> None:
    """The change a quorum approves obeys the body's rule: unknown fields and non-canonical
    encodings are refused even with every approval good, and nothing is committed."""
    change = ledger_pb2.GovernanceChange(
        proposal_nonce=time.time_ns(),
        role_changed=ledger_pb2.RoleChanged(member_id="agency-b", role=ledger_pb2.ROLE_EXCHANGE),
    )
    canonical = change.SerializeToString(deterministic=True)
    nonce_only = ledger_pb2.GovernanceChange(proposal_nonce=change.proposal_nonce)
    out_of_order = (
        ledger_pb2.GovernanceChange(role_changed=change.role_changed).SerializeToString()
        + nonce_only.SerializeToString()
    )

    def governance(change_bytes: bytes) -> ledger_pb2.SignedEvent:
        message = governance_sign_bytes(ledger.genesis.chain_id, change_bytes)
        approvals = [
            ledger_pb2.Approval(
                approver=ledger_pb2.Author(member_id=member, key_id=identity.key.key_id),
                signature=identity.key.sign(crypto.DOMAIN_GOVERNANCE, message),
            )
            for member, identity in ledger.identities.items()
        ]
        return ledger.event("agency-a", "governance", change=change_bytes, approvals=approvals)

    unknown = governance(canonical + UNKNOWN_FIELD)
    reordered = governance(out_of_order)
    with state_unchanged(ledger, refused=(unknown, reordered)):
        submit_refused(ledger, unknown, grpc.StatusCode.INVALID_ARGUMENT, "unknown_fields")
        submit_refused(ledger, reordered, grpc.StatusCode.INVALID_ARGUMENT, "non_canonical")


def test_event_ids_that_are_not_32_bytes_are_invalid_argument(ledger: Ledger) -> None:
    committed = probe(ledger)
    for length in (0, 1, 31, 33, 64):
        identifier = (committed.event_id * 2)[:length]
        for call in (
            lambda identifier=identifier: ledger.stub.GetEvent(
                api_pb2.GetEventRequest(event_id=identifier), timeout=5
            ),
            lambda identifier=identifier: ledger.stub.GetInclusionProof(
                api_pb2.GetInclusionProofRequest(event_id=identifier), timeout=5
            ),
        ):
            assert_status(rejected(call), grpc.StatusCode.INVALID_ARGUMENT, "bad_event_id")
    # Its 32 bytes find it; 32 bytes of nothing are not found.
    found = ledger.stub.GetEvent(
        api_pb2.GetEventRequest(event_id=committed.event_id), timeout=RPC_TIMEOUT_S
    )
    assert (found.height, found.log_index) == (committed.height, committed.log_index)
    error = rejected(
        lambda: ledger.stub.GetInclusionProof(
            api_pb2.GetInclusionProofRequest(event_id=bytes(32)), timeout=5
        )
    )
    assert_status(error, grpc.StatusCode.NOT_FOUND, "unknown_event")


def test_a_history_cursor_beyond_the_log_index_range_is_invalid_argument(ledger: Ledger) -> None:
    with state_unchanged(ledger, asset_ids=(PROBE_ASSET,)):
        for cursor in (2**64 - 1, LOG_INDEX_MAX + 1):
            error = rejected(lambda cursor=cursor: history_page(ledger, PROBE_ASSET, 5, cursor))
            assert_status(error, grpc.StatusCode.INVALID_ARGUMENT, "bad_cursor")
        # The largest cursor is a cursor: nothing comes after it.
        last = history_page(ledger, PROBE_ASSET, 5, LOG_INDEX_MAX)
        assert list(last.entries) == [] and not last.more
    # Without has_cursor the number is not a cursor, however large.
    request = api_pb2.GetAssetHistoryRequest(asset_id=PROBE_ASSET, after_log_index=2**64 - 1)
    assert ledger.stub.GetAssetHistory(request, timeout=5).entries[0].log_index == 0


def test_an_undefined_lineage_direction_is_invalid_argument(ledger: Ledger) -> None:
    for direction in (3, 7, 2**31 - 1, -1):
        error = rejected(
            lambda direction=direction: ledger.stub.GetLineage(
                api_pb2.GetLineageRequest(asset_id=PROBE_ASSET, direction=direction), timeout=5
            )
        )
        assert_status(error, grpc.StatusCode.INVALID_ARGUMENT, "bad_direction")
    for direction in (api_pb2.LINEAGE_DIRECTION_UPSTREAM, api_pb2.LINEAGE_DIRECTION_DOWNSTREAM):
        lineage = ledger.stub.GetLineage(
            api_pb2.GetLineageRequest(asset_id=PROBE_ASSET, direction=direction), timeout=5
        )
        assert lineage.assets[0].asset_id == PROBE_ASSET


def test_a_token_that_is_not_canonical_is_unauthenticated(ledger: Ledger) -> None:
    """A bearer token re-signed by its member's own key over a payload spelled otherwise than
    the canonical JSON (with spaces) is refused; the canonical one reads."""
    key = ledger.identities["auditor"].key
    token = issue_token(key, "auditor", "auditor", ledger.genesis.chain_id, now_ms(), 60_000)
    head = token.split(".")[0]
    claims = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    assert canonical_json(claims) == base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))
    spaced = json.dumps(claims, sort_keys=True).encode()

    def encode(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    forged = encode(spaced) + "." + encode(key.sign(b"provledger/v1/token\x00", spaced))
    request = api_pb2.GetAssetRequest(asset_id=PROBE_ASSET)
    error = rejected(
        lambda: ledger.stub.GetAsset(
            request, metadata=(("authorization", f"Bearer {forged}"),), timeout=5
        )
    )
    assert_status(error, grpc.StatusCode.UNAUTHENTICATED, "token_non_canonical")
    answer = ledger.stub.GetAsset(
        request, metadata=(("authorization", f"Bearer {token}"),), timeout=5
    )
    assert answer.asset_id == PROBE_ASSET


# --- request bytes that are not a request -------------------------------------------------


MALFORMED_REQUEST = b"\x0a\x05ab"  # field 1 claims 5 bytes, 2 follow


def test_malformed_request_bytes_are_invalid_argument(ledger: Ledger) -> None:
    """Bytes that are not the method's request message answer INVALID_ARGUMENT
    `malformed_request` on the node (the generated registration lets the parse error escape,
    which gRPC answers UNKNOWN), for unary and streaming methods alike, and a good request on
    the same channel is still served."""
    channel = ledger.channel
    for method in ("SubmitEvent", "GetEvent", "GetAssetHistory", "GetLineage"):
        call = channel.unary_unary(f"/{SERVICE}/{method}")
        with pytest.raises(grpc.RpcError) as raised:
            call(MALFORMED_REQUEST, timeout=5)
        assert_status(raised.value, grpc.StatusCode.INVALID_ARGUMENT, "malformed_request")
        assert f"provledger.v1.{method}Request" in raised.value.details()
    stream = channel.unary_stream(f"/{SERVICE}/SubscribeBlocks")
    with pytest.raises(grpc.RpcError) as raised:
        for _ in stream(MALFORMED_REQUEST, timeout=5):
            pass
    assert_status(raised.value, grpc.StatusCode.INVALID_ARGUMENT, "malformed_request")
    # A well-formed request reaches the method.
    with pytest.raises(grpc.RpcError) as raised:
        ledger.stub.GetEvent(api_pb2.GetEventRequest(event_id=bytes(32)), timeout=5)
    assert_status(raised.value, grpc.StatusCode.NOT_FOUND, "unknown_event")


def test_node_log_is_written(ledger: Ledger) -> None:
    assert isinstance(ledger.node.log_path, Path)
    assert "serving gRPC" in ledger.node.log_path.read_text()

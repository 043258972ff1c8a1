"""Crash safety: nothing acknowledged as committed is lost to a `kill -9`.

A background thread keeps many SubmitAndWait calls in flight from several identities and
records every event whose receipt came back. Mid-load the node is killed with SIGKILL, then
restarted on the same data folder. Afterwards every acknowledged event must be there, at the
height and log index its receipt named; the chain must re-verify from height 1 to the head
(hash links, certificates, log sizes); and the log root recomputed here from every committed
event's leaf must equal the head header's. Two crash rounds, the second on the recovered node.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from support.processes import NodeProcess, client_channel, init_consortium

from provledger.cli.client import EventSigner, Identity
from provledger.protocol import merkle
from provledger.protocol.blocks import (
    block_id,
    certificate_hash,
    decode_header,
    verify_certificate,
    verify_checkpoint,
)
from provledger.protocol.events import event_id, log_leaf
from provledger.protocol.genesis import Genesis, parse_genesis
from provledger.protocol.proofs import verify_inclusion_answer
from provledger.v1 import api_pb2, api_pb2_grpc, ledger_pb2

pytestmark = pytest.mark.integration

LOADING_MEMBERS = ("agency-a", "agency-b", "exchange")
IN_FLIGHT_MAX = 96
ACKNOWLEDGED_BEFORE_CRASH = 300
LOAD_TIMEOUT_S = 60.0
RPC_TIMEOUT_S = 30.0
CRASH_ROUNDS = 2


@dataclasses.dataclass(frozen=True)
class Acknowledged:
    signed: ledger_pb2.SignedEvent
    height: int
    log_index: int


class Load(threading.Thread):
    """Keeps up to IN_FLIGHT_MAX SubmitAndWait calls in flight until stopped; remembers every
    event whose receipt arrived (acknowledged as committed) and counts the failures."""

    def __init__(self, address: str, signers: list[EventSigner], label: str) -> None:
        super().__init__(name=f"load-{label}", daemon=True)
        self._address = address
        self._signers = signers
        self._label = label
        self._stopping = threading.Event()
        self._slots = threading.BoundedSemaphore(IN_FLIGHT_MAX)
        self._lock = threading.Lock()
        self._futures: list[grpc.Future] = []
        self.acknowledged: dict[bytes, Acknowledged] = {}
        self.failures: Counter[str] = Counter()
        self.crashed: BaseException | None = None

    def acknowledged_count(self) -> int:
        with self._lock:
            return len(self.acknowledged)

    def stop(self) -> None:
        self._stopping.set()
        self.join(timeout=LOAD_TIMEOUT_S)
        assert not self.is_alive(), "the load thread did not stop"
        if self.crashed is not None:
            raise self.crashed

    def run(self) -> None:
        channel = client_channel(self._address)
        stub = api_pb2_grpc.LedgerServiceStub(channel)
        try:
            for number in itertools.count():
                while not self._slots.acquire(timeout=0.05):
                    if self._stopping.is_set():
                        break
                if self._stopping.is_set():
                    break
                signer = self._signers[number % len(self._signers)]
                signed = signer.event(
                    "asset_registered",
                    asset_id=f"crash/{self._label}/{signer.identity.member_id}/{number}",
                    content_digest=hashlib.sha256(f"{self._label}/{number}".encode()).digest(),
                    classification=ledger_pb2.CLASSIFICATION_GENERAL,
                )
                future = stub.SubmitAndWait.future(
                    api_pb2.SubmitAndWaitRequest(event=signed), timeout=RPC_TIMEOUT_S
                )
                future.add_done_callback(lambda done, signed=signed: self._settle(done, signed))
                self._futures.append(future)
            for future in self._futures:  # those in flight when the node died fail fast
                future.exception(timeout=RPC_TIMEOUT_S)
        except BaseException as error:  # reported by stop()
            self.crashed = error
        finally:
            channel.close()

    def _settle(self, future: grpc.Future, signed: ledger_pb2.SignedEvent) -> None:
        try:
            receipt = future.result()
        except grpc.RpcError as error:
            with self._lock:
                self.failures[error.code().name] += 1
            return
        except BaseException as error:
            with self._lock:
                self.failures[type(error).__name__] += 1
            return
        finally:
            self._slots.release()
        identifier = event_id(signed.body)
        with self._lock:
            if receipt.event_id != identifier:
                self.failures["receipt_for_another_event"] += 1
                return
            self.acknowledged[identifier] = Acknowledged(
                signed=signed, height=receipt.height, log_index=receipt.log_index
            )


def load_then_crash(node: NodeProcess, signers: list[EventSigner], label: str) -> Load:
    """Run a load until ACKNOWLEDGED_BEFORE_CRASH receipts arrived, then SIGKILL the node."""
    load = Load(node.address, signers, label)
    load.start()
    try:
        deadline = time.monotonic() + LOAD_TIMEOUT_S
        while load.acknowledged_count() < ACKNOWLEDGED_BEFORE_CRASH:
            assert load.is_alive(), f"the load stopped: {load.crashed!r}"
            assert time.monotonic() < deadline, (
                f"only {load.acknowledged_count()} acknowledged after {LOAD_TIMEOUT_S} s; "
                f"failures {dict(load.failures)}\n{node.log_tail()}"
            )
            time.sleep(0.01)
        node.kill9()
    finally:
        load.stop()
    return load


def verify_recovered_chain(
    stub: api_pb2_grpc.LedgerServiceStub,
    genesis: Genesis,
    acknowledged: dict[bytes, Acknowledged],
) -> int:
    """Check the node against everything acknowledged and re-verify its whole chain; return
    the head height."""
    for identifier, expected in acknowledged.items():
        found = stub.GetEvent(api_pb2.GetEventRequest(event_id=identifier), timeout=RPC_TIMEOUT_S)
        assert found.event == expected.signed
        assert (found.height, found.log_index) == (expected.height, expected.log_index)

    head_checkpoint = stub.GetCheckpoint(api_pb2.GetCheckpointRequest(), timeout=RPC_TIMEOUT_S)
    head = verify_checkpoint(head_checkpoint, genesis)
    assert head.height >= max(a.height for a in acknowledged.values())

    previous_id = genesis.genesis_hash
    previous_certificate: ledger_pb2.CommitCertificate | None = None
    log_size = 0
    leaf_hashes: list[bytes] = []
    for height in range(1, head.height + 1):
        response = stub.GetBlock(api_pb2.GetBlockRequest(height=height), timeout=RPC_TIMEOUT_S)
        block, certificate = response.block, response.certificate
        header = decode_header(block.header)
        assert header.height == height
        assert header.chain_id == genesis.chain_id
        assert header.previous_block_id == previous_id, f"broken hash link at {height}"
        verify_certificate(certificate, header, block.header, genesis.validator_set)
        assert header.last_commit_hash == certificate_hash(previous_certificate)
        if previous_certificate is not None:
            assert block.last_commit == previous_certificate
        block_leaves = [
            merkle.hash_leaf(log_leaf(event_id(e.body), e.signature)) for e in block.events
        ]
        assert header.event_count == len(block.events)  # empty heartbeat blocks allowed
        assert header.events_root == merkle.root_from_leaf_hashes(block_leaves)
        log_size += len(block.events)
        assert header.log_size == log_size, f"log sizes do not add up at {height}"
        leaf_hashes += block_leaves
        previous_id = block_id(block.header)
        previous_certificate = certificate

    assert block.header == head_checkpoint.header
    assert merkle.root_from_leaf_hashes(leaf_hashes) == head.log_root
    for expected in acknowledged.values():
        leaf = merkle.hash_leaf(log_leaf(event_id(expected.signed.body), expected.signed.signature))
        assert leaf_hashes[expected.log_index] == leaf
    return head.height


@pytest.fixture
def crash_node(tmp_path: Path) -> Iterator[tuple]:
    layout = init_consortium(tmp_path, nodes=1)
    node = NodeProcess.for_node(layout, 0, tmp_path)
    try:
        node.start()
        yield layout, node
    finally:
        node.stop()


def test_kill_9_mid_load_loses_nothing_acknowledged(crash_node) -> None:
    layout, node = crash_node
    genesis = parse_genesis(layout.genesis_path.read_bytes())
    signers = [EventSigner(Identity.load(layout.identities[m])) for m in LOADING_MEMBERS]
    acknowledged: dict[bytes, Acknowledged] = {}
    heads = []
    for round_number in range(CRASH_ROUNDS):
        load = load_then_crash(node, signers, label=f"round-{round_number}")
        assert len(load.acknowledged) >= ACKNOWLEDGED_BEFORE_CRASH
        assert set(load.failures) <= {"UNAVAILABLE", "CANCELLED"}, load.failures
        acknowledged.update(load.acknowledged)
        print(
            f"round {round_number}: {len(load.acknowledged)} acknowledged, "
            f"failed in flight or after the kill: {dict(load.failures)}"
        )

        node.restart()
        with client_channel(node.address) as channel:
            stub = api_pb2_grpc.LedgerServiceStub(channel)
            heads.append(verify_recovered_chain(stub, genesis, acknowledged))
            print(f"round {round_number}: recovered at height {heads[-1]}")
            # The recovered node remembers what it committed: a replay is refused.
            replay = next(iter(load.acknowledged.values())).signed
            with pytest.raises(grpc.RpcError) as info:
                stub.SubmitEvent(api_pb2.SubmitEventRequest(event=replay), timeout=RPC_TIMEOUT_S)
            assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS
            assert info.value.details().startswith("duplicate_event: ")
    assert heads == sorted(heads)

    # After two crashes the node still commits, and a graceful stop exits cleanly.
    with client_channel(node.address) as channel:
        stub = api_pb2_grpc.LedgerServiceStub(channel)
        signed = signers[0].event(
            "asset_registered",
            asset_id="crash/after-recovery",
            content_digest=hashlib.sha256(b"after").digest(),
            classification=ledger_pb2.CLASSIFICATION_GENERAL,
        )
        receipt = stub.SubmitAndWait(
            api_pb2.SubmitAndWaitRequest(event=signed), timeout=RPC_TIMEOUT_S
        )
        assert receipt.height > heads[-1]
        verify_inclusion_answer(
            signed, receipt.proof, receipt.checkpoint, genesis, event_id(signed.body)
        )
    assert node.stop() == 0, node.log_tail()

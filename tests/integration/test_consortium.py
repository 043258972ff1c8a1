"""A consortium of four real node processes on 127.0.0.1, talking PeerService over mutual TLS.

What only real processes show: events submitted to different nodes commit everywhere in the
same blocks, with checkpoints cosigned by a quorum (3 of 4) that verify against the genesis
alone; a `kill -9` of one node under load does not stop the other three, and the restarted
node catches up by block sync to the same chain; with two of four down nothing commits (no
quorum), and commits resume when one returns; and a process without a certificate from the
consortium's CA, or with one for a node id outside the validator set, never gets a peer
connection.

One consortium serves the whole module (starting four nodes costs seconds on two cores).
Tests crash nodes; the `consortium` fixture gives every test all four nodes running again and
agreeing on a height, so the tests do not depend on their order.

Heights keep moving even when nobody submits (an idle proposer commits a heartbeat block after
`empty_block_wait_ms`), so nodes are compared at a *common* height: the lowest head among them
once every one has passed the height that matters.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import shutil
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import grpc
import pytest
from support.processes import (
    ClientAccess,
    NodeCluster,
    NodeProcess,
    client_access,
    client_channel,
    free_ports,
    init_consortium,
    note_access,
    wait_until,
)

from provledger.cli.client import EventSigner, Identity
from provledger.cli.consortium import ConsortiumLayout
from provledger.node import config as node_config
from provledger.node.keyfile import new_signing_key, save_key
from provledger.node.tls import create_ca, issue_node_certificate, save_tls_material
from provledger.protocol import merkle
from provledger.protocol.blocks import block_id, decode_header, verify_checkpoint
from provledger.protocol.events import event_id, log_leaf
from provledger.protocol.genesis import Genesis, parse_genesis
from provledger.protocol.proofs import verify_inclusion_answer
from provledger.v1 import api_pb2, api_pb2_grpc, ledger_pb2, peer_pb2, peer_pb2_grpc

pytestmark = pytest.mark.integration

NODES = 4
QUORUM = 3
MEMBERS = ("agency-a", "agency-b", "exchange")
RPC_TIMEOUT_S = 30.0
COMMIT_TIMEOUT_S = 60.0
CATCH_UP_TIMEOUT_S = 60.0
IN_FLIGHT_MAX = 32
NO_QUORUM_WAIT_MS = 3_000


# --- the consortium -------------------------------------------------------------------------


@dataclasses.dataclass
class Consortium:
    layout: ConsortiumLayout
    cluster: NodeCluster
    genesis: Genesis
    signers: dict[str, EventSigner]
    labels: Iterator[int] = dataclasses.field(default_factory=itertools.count)

    def register(self, member: str, label: str) -> ledger_pb2.SignedEvent:
        """A fresh, valid event: `member` registers a new asset named after `label`."""
        asset_id = f"consortium/{label}/{member}/{next(self.labels)}"
        return self.signers[member].event(
            "asset_registered",
            asset_id=asset_id,
            content_digest=hashlib.sha256(asset_id.encode()).digest(),
            classification=ledger_pb2.CLASSIFICATION_GENERAL,
        )

    def logs(self) -> str:
        return "\n".join(node.log_tail(1_500) for node in self.cluster)


@pytest.fixture(scope="module")
def running_consortium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Consortium]:
    directory = tmp_path_factory.mktemp("consortium")
    layout = init_consortium(directory, nodes=NODES)
    cluster = NodeCluster.for_layout(layout, directory)
    running: list[NodeProcess] = []
    try:
        cluster.start()
        identities = {m: Identity.load(layout.identities[m]) for m in MEMBERS}
        yield Consortium(
            layout=layout,
            cluster=cluster,
            genesis=parse_genesis(layout.genesis_path.read_bytes()),
            signers={m: EventSigner(identity) for m, identity in identities.items()},
        )
        running = cluster.live_nodes
    finally:
        codes = cluster.stop()
    # Every node still running at the end stops gracefully on SIGTERM.
    failed = [node for node in running if codes[node.name] != 0]
    assert not failed, "\n".join(f"{n.name} exit {codes[n.name]}\n{n.log_tail()}" for n in failed)


@pytest.fixture
def consortium(running_consortium: Consortium) -> Consortium:
    """The module's consortium with all four nodes running (a node an earlier test left
    down is restarted) and every node at least at the height the highest had."""
    cluster = running_consortium.cluster
    for node in cluster:
        if not node.running:
            node.start()
    target = max(cluster.heights().values())
    cluster.wait_for_heights(max(target, 1), timeout_s=CATCH_UP_TIMEOUT_S)
    return running_consortium


# --- talking to nodes -----------------------------------------------------------------------


def get_event(address: str, identifier: bytes) -> api_pb2.GetEventResponse | None:
    """The committed event, or None if the node has not committed it."""
    with client_channel(address) as channel:
        try:
            return api_pb2_grpc.LedgerServiceStub(channel).GetEvent(
                api_pb2.GetEventRequest(event_id=identifier), timeout=RPC_TIMEOUT_S
            )
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise


def wait_committed(
    nodes: Sequence[NodeProcess], identifiers: Sequence[bytes], timeout_s: float
) -> dict[bytes, tuple[int, int]]:
    """Poll until every node has committed every event, each at the same (height, log index)
    on every node; return those locations."""
    found: dict[tuple[str, bytes], api_pb2.GetEventResponse] = {}

    def all_found() -> bool:
        for node in nodes:
            for identifier in identifiers:
                if (node.name, identifier) not in found:
                    response = get_event(node.address, identifier)
                    if response is None:
                        return False
                    found[node.name, identifier] = response
        return True

    wait_until(
        all_found,
        timeout_s,
        lambda: f"{len(found)} of {len(nodes) * len(identifiers)} (node, event) found",
    )
    locations = {}
    for identifier in identifiers:
        responses = [found[node.name, identifier] for node in nodes]
        assert all(r.event == responses[0].event for r in responses)
        assert {(r.height, r.log_index) for r in responses} == {
            (responses[0].height, responses[0].log_index)
        }, f"event {identifier.hex()} is at different places on different nodes"
        locations[identifier] = (responses[0].height, responses[0].log_index)
    return locations


def read_block(address: str, height: int) -> api_pb2.GetBlockResponse:
    with client_channel(address) as channel:
        return api_pb2_grpc.LedgerServiceStub(channel).GetBlock(
            api_pb2.GetBlockRequest(height=height), timeout=RPC_TIMEOUT_S
        )


def read_checkpoint(address: str, height: int) -> ledger_pb2.Checkpoint:
    with client_channel(address) as channel:
        return api_pb2_grpc.LedgerServiceStub(channel).GetCheckpoint(
            api_pb2.GetCheckpointRequest(height=height), timeout=RPC_TIMEOUT_S
        )


def common_height(cluster: NodeCluster, nodes: Sequence[NodeProcess], at_least: int) -> int:
    """Wait until every node of `nodes` has committed `at_least`; the lowest head then."""
    heights = cluster.wait_for_heights(at_least, nodes, timeout_s=CATCH_UP_TIMEOUT_S)
    return min(heights.values())


def assert_same_checkpoint(
    consortium: Consortium, nodes: Sequence[NodeProcess], height: int
) -> ledger_pb2.BlockHeader:
    """Every node has the same block at `height`, and its checkpoint there is cosigned by a
    quorum of the genesis validators; return the header."""
    headers = {node.name: read_block(node.address, height).block.header for node in nodes}
    assert len(set(headers.values())) == 1, f"different blocks at height {height}"
    (header_bytes,) = set(headers.values())
    decoded = []
    for node in nodes:
        checkpoint = read_checkpoint(node.address, height)
        assert checkpoint.header == header_bytes
        header = verify_checkpoint(checkpoint, consortium.genesis)
        signers = {s.validator_id for s in checkpoint.certificate.signatures}
        assert len(signers) >= QUORUM, f"{node.name}: {len(signers)} signers at {height}"
        assert signers <= {v.validator_id for v in consortium.genesis.validator_set.validators}
        decoded.append(header)
    assert all(h.height == height for h in decoded)
    assert len({(h.log_size, h.log_root) for h in decoded}) == 1
    return decoded[0]


def assert_same_chain(nodes: Sequence[NodeProcess], height: int) -> None:
    """Every node has the same block id at every height from 1 to `height`, and no block
    records an equivocation: no validator signed two conflicting votes, not even one that
    was killed and restarted (its signed votes are in its vote log before they are sent)."""
    for number in range(1, height + 1):
        found = {node.name: read_block(node.address, number).block for node in nodes}
        identifiers = {name: block_id(block.header) for name, block in found.items()}
        assert len(set(identifiers.values())) == 1, f"fork at height {number}: {identifiers}"
        evidence = [e for block in found.values() for e in block.evidence]
        assert not evidence, f"equivocation recorded at height {number}: {evidence[0]}"


# --- a load of SubmitAndWait calls ----------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Acknowledged:
    signed: ledger_pb2.SignedEvent
    height: int
    log_index: int


class Load(threading.Thread):
    """Keeps up to IN_FLIGHT_MAX SubmitAndWait calls in flight, spread round-robin over some
    nodes, until stopped; remembers every event whose receipt came back."""

    def __init__(self, consortium: Consortium, nodes: Sequence[NodeProcess], label: str) -> None:
        super().__init__(name=f"load-{label}", daemon=True)
        self._consortium = consortium
        self._addresses = [node.address for node in nodes]
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
        self.join(timeout=RPC_TIMEOUT_S + 10)
        assert not self.is_alive(), "the load thread did not stop"
        if self.crashed is not None:
            raise self.crashed

    def run(self) -> None:
        channels = [client_channel(address) for address in self._addresses]
        stubs = [api_pb2_grpc.LedgerServiceStub(channel) for channel in channels]
        try:
            for number in itertools.count():
                while not self._slots.acquire(timeout=0.05):
                    if self._stopping.is_set():
                        break
                if self._stopping.is_set():
                    break
                member = MEMBERS[number % len(MEMBERS)]
                signed = self._consortium.register(member, self._label)
                future = stubs[number % len(stubs)].SubmitAndWait.future(
                    api_pb2.SubmitAndWaitRequest(event=signed), timeout=RPC_TIMEOUT_S
                )
                future.add_done_callback(lambda done, signed=signed: self._settle(done, signed))
                self._futures.append(future)
            for future in self._futures:  # wait for the receipts still in flight
                future.exception(timeout=RPC_TIMEOUT_S + 5)
        except BaseException as error:  # reported by stop()
            self.crashed = error
        finally:
            for channel in channels:
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
            self.acknowledged[identifier] = Acknowledged(signed, receipt.height, receipt.log_index)


# --- a: submitting anywhere ---------------------------------------------------------------


def verify_receipt(receipt: api_pb2.Receipt, signed: ledger_pb2.SignedEvent, genesis) -> None:
    assert len(receipt.checkpoint.certificate.signatures) >= QUORUM
    assert receipt.event_id == event_id(signed.body)
    verified = verify_inclusion_answer(
        signed, receipt.proof, receipt.checkpoint, genesis, receipt.event_id
    )
    assert (verified.height, verified.leaf_index) == (receipt.height, receipt.log_index)


def test_events_submitted_to_different_nodes_commit_on_every_node(consortium) -> None:
    """SubmitAndWait and SubmitEvents to all four nodes, from three members: every event is
    on every node at the same place, and at a common height all four have the same block and
    a checkpoint cosigned by at least three validators."""
    cluster, genesis = consortium.cluster, consortium.genesis
    channels = [client_channel(node.address) for node in cluster]
    try:
        stubs = [api_pb2_grpc.LedgerServiceStub(channel) for channel in channels]
        # SubmitAndWait: three calls to each node, from the three members in turn, all in
        # flight at once.
        waiting = []
        for number in range(3 * NODES):
            signed = consortium.register(MEMBERS[number % len(MEMBERS)], "submit-and-wait")
            future = stubs[number % NODES].SubmitAndWait.future(
                api_pb2.SubmitAndWaitRequest(event=signed), timeout=RPC_TIMEOUT_S
            )
            waiting.append((signed, future))
        # SubmitEvents: a batch to each node, mixing the members.
        batched: list[bytes] = []
        for index, stub in enumerate(stubs):
            batch = [
                consortium.register(MEMBERS[number % len(MEMBERS)], f"batch-{index}")
                for number in range(25)
            ]
            response = stub.SubmitEvents(
                api_pb2.SubmitEventsRequest(events=batch), timeout=RPC_TIMEOUT_S
            )
            assert [r.accepted for r in response.results] == [True] * len(batch), response
            assert [r.event_id for r in response.results] == [event_id(e.body) for e in batch]
            batched += [r.event_id for r in response.results]
        receipts = []
        for signed, future in waiting:
            receipt = future.result()
            verify_receipt(receipt, signed, genesis)
            receipts.append(receipt)
    finally:
        for channel in channels:
            channel.close()

    identifiers = [r.event_id for r in receipts] + batched
    locations = wait_committed(list(cluster), identifiers, COMMIT_TIMEOUT_S)
    for receipt in receipts:
        assert locations[receipt.event_id] == (receipt.height, receipt.log_index)
    assert len({index for _, index in locations.values()}) == len(identifiers)

    last = max(height for height, _ in locations.values())
    height = common_height(cluster, list(cluster), last)
    header = assert_same_checkpoint(consortium, list(cluster), height)

    # Every event's inclusion proof from one node, whichever node the event was submitted
    # to, verifies against the common checkpoint.
    header_bytes = read_block(cluster[1].address, height).block.header
    with client_channel(cluster[1].address) as channel:
        stub = api_pb2_grpc.LedgerServiceStub(channel)
        for identifier in identifiers:
            response = stub.GetInclusionProof(
                api_pb2.GetInclusionProofRequest(event_id=identifier, height=height),
                timeout=RPC_TIMEOUT_S,
            )
            assert response.checkpoint.header == header_bytes
            assert response.proof.leaf_index == locations[identifier][1]
            assert response.proof.tree_size == header.log_size
            merkle.verify_inclusion(
                merkle.hash_leaf(log_leaf(identifier, response.event.signature)),
                response.proof.leaf_index,
                header.log_size,
                list(response.proof.hashes),
                header.log_root,
            )


# --- b: one node crashes under load -------------------------------------------------------


def test_kill_9_one_node_under_load_the_others_commit_and_it_catches_up(consortium) -> None:
    """SIGKILL node-3 while a load goes to the other three: they keep committing; node-3,
    restarted from its data folder, syncs the blocks it missed and has the same chain."""
    cluster = consortium.cluster
    victim = cluster[3]
    survivors = [node for node in cluster if node is not victim]
    load = Load(consortium, survivors, label="one-down")
    load.start()
    try:
        wait_until(
            lambda: load.acknowledged_count() >= 20 or not load.is_alive(),
            COMMIT_TIMEOUT_S,
            lambda: f"acknowledged {load.acknowledged_count()}, failures {dict(load.failures)}",
        )
        victim.kill9()
        at_kill = cluster.heights(survivors)
        acknowledged_at_kill = load.acknowledged_count()

        # The three keep committing: past four more heights (so through at least one at which
        # the dead node is the proposer of round 0) and 60 more acknowledged events.
        cluster.wait_for_heights(max(at_kill.values()) + 4, survivors, COMMIT_TIMEOUT_S)
        wait_until(
            lambda: load.acknowledged_count() >= acknowledged_at_kill + 60,
            COMMIT_TIMEOUT_S,
            lambda: (
                f"acknowledged {load.acknowledged_count()}, failures {dict(load.failures)}"
                f"\n{consortium.logs()}"
            ),
        )
        assert load.is_alive(), load.crashed
        while_down = cluster.heights(survivors)

        # The victim comes back from its data folder while the load goes on.
        victim.start()
        cluster.wait_for_heights(max(while_down.values()), [victim], CATCH_UP_TIMEOUT_S)
    finally:
        load.stop()
    assert not load.failures, f"failures {dict(load.failures)}\n{consortium.logs()}"
    print(
        f"heights at the kill {at_kill}, while down {while_down}; "
        f"{len(load.acknowledged)} acknowledged ({acknowledged_at_kill} before the kill)"
    )
    assert "caught up block" in victim.log_text(), victim.log_tail()

    acknowledged = load.acknowledged
    locations = wait_committed(list(cluster), list(acknowledged), COMMIT_TIMEOUT_S)
    for identifier, expected in acknowledged.items():
        assert locations[identifier] == (expected.height, expected.log_index)
    last = max(a.height for a in acknowledged.values())
    height = common_height(cluster, list(cluster), last)
    assert_same_chain(list(cluster), height)
    assert_same_checkpoint(consortium, list(cluster), height)


# --- c: two nodes down, no quorum -----------------------------------------------------------


def head_header(node: NodeProcess) -> ledger_pb2.BlockHeader:
    """The header of the node's latest committed block."""
    return decode_header(read_checkpoint(node.address, 0).header)


def test_two_of_four_down_nothing_commits_until_one_returns(consortium) -> None:
    """With node-2 and node-3 killed, two validators are no quorum: a submitted event waits
    in vain and no block proposed after the kill commits. When node-2 returns, the queued
    event commits.

    Blocks the dead validators precommitted before they died may still reach the live nodes
    afterwards (they were on the wire), however long that takes on a busy machine; so the
    live heads are not compared over time. What cannot happen is the commit of a block
    proposed after the kill: a block's time is its proposer's clock when it proposed
    (strictly increasing, one clock for every node on this host), so every block the live
    nodes hold must be from before the kill."""
    cluster = consortium.cluster
    live, down = [cluster[0], cluster[1]], [cluster[2], cluster[3]]
    for node in down:
        node.kill9()
    killed_at_ms = time.time_ns() // 1_000_000

    signed = consortium.register("agency-a", "no-quorum")
    identifier = event_id(signed.body)
    with client_channel(live[0].address) as channel:
        stub = api_pb2_grpc.LedgerServiceStub(channel)
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as info:
            stub.SubmitAndWait(
                api_pb2.SubmitAndWaitRequest(event=signed, timeout_ms=NO_QUORUM_WAIT_MS),
                timeout=RPC_TIMEOUT_S,
            )
        waited_s = time.monotonic() - started
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED, info.value.details()
    assert info.value.details().startswith("not_committed_yet: "), info.value.details()
    # A lower bound only (the node kept the call for the wait asked): slowness cannot break it.
    assert waited_s >= NO_QUORUM_WAIT_MS / 1000 * 0.9
    heads = {node.name: head_header(node) for node in live}
    late = {name: h.height for name, h in heads.items() if h.time_ms > killed_at_ms}
    assert not late, f"blocks proposed after the kill were committed without a quorum: {late}"
    # Read after the heads: the event is in no block up to them.
    assert all(get_event(node.address, identifier) is None for node in live)

    # One returns: three of four is a quorum again, the queued event commits.
    returning = down[0]
    returning.start()
    together = [*live, returning]
    locations = wait_committed(together, [identifier], COMMIT_TIMEOUT_S)
    committed_at, _ = locations[identifier]
    assert committed_at > max(header.height for header in heads.values())
    height = common_height(cluster, together, committed_at)
    assert_same_chain(together, height)
    assert_same_checkpoint(consortium, together, height)


# --- d: outsiders cannot join ---------------------------------------------------------------


def make_intruder(consortium: Consortium, directory: Path) -> NodeProcess:
    """A node process of its own making: a CA nobody in the consortium trusts, a certificate
    from it that claims to be node-1, its own validator key, a copy of the genesis, and the
    four nodes' peer addresses as its peers. Its node id, node-9, is not a validator, so it
    starts (as an observer) and dials the consortium."""
    directory.mkdir(parents=True)
    shutil.copy(consortium.layout.genesis_path, directory / "genesis.json")
    save_key(directory / "validator-key.json", new_signing_key(), validator_id="node-9")
    ca_certificate, ca_key = create_ca(consortium.genesis.chain_id)
    certificate, key = issue_node_certificate(ca_certificate, ca_key, "node-1")
    save_tls_material(directory / "tls", ca_certificate, certificate, key)
    client_port, peer_port = free_ports(2)
    address = f"127.0.0.1:{client_port}"
    config = directory / "config.toml"
    config.write_text(
        node_config.render(
            "node-9",
            "genesis.json",
            "validator-key.json",
            address,
            peer_listen=f"127.0.0.1:{peer_port}",
            peers={node.name: node.peer_address for node in consortium.cluster},
        )
    )
    # Its clients trust its own CA and read with the consortium auditor's token (the intruder
    # has the genesis, so it knows that member).
    auditor_token = client_access(consortium.cluster[0].address).token
    note_access([address], ClientAccess(ca_certificate, auditor_token))
    return NodeProcess(config, address, directory / "intruder.log", name="intruder")


def test_a_node_with_a_certificate_from_another_ca_never_connects(consortium, tmp_path) -> None:
    """A fifth `provledger node run` with TLS material from its own CA dials all four peer
    ports: every handshake fails, it never syncs a block, and the consortium goes on."""
    cluster = consortium.cluster
    intruder = make_intruder(consortium, tmp_path / "intruder")
    try:
        intruder.start()
        start_height = max(cluster.heights().values())
        with client_channel(cluster[2].address) as channel:
            receipt = api_pb2_grpc.LedgerServiceStub(channel).SubmitAndWait(
                api_pb2.SubmitAndWaitRequest(event=consortium.register("agency-b", "intruder")),
                timeout=RPC_TIMEOUT_S,
            )

        def every_peer_failed() -> bool:
            """The intruder's log has a failed TLS handshake with every node's peer port."""
            failures = [
                line
                for line in intruder.log_text().splitlines()
                if "gossip to peer" in line and "handshake" in line.lower()
            ]
            prefixes = [f"gossip to peer {n.name} at {n.peer_address} failed" for n in cluster]
            return all(any(p in line for line in failures) for p in prefixes)

        wait_until(every_peer_failed, COMMIT_TIMEOUT_S, intruder.log_tail)
        # The consortium went on (past a status poll of the intruder's, were it connected),
        # without the intruder.
        cluster.wait_for_heights(max(start_height, receipt.height) + 3, list(cluster))
        assert intruder.running, intruder.log_tail()
        assert intruder.height() == 0
        log = intruder.log_text()
        assert "connected to peer" not in log, log
        assert "caught up block" not in log, log
        # Nor did any node see a call from it: a refusal after the handshake would be logged
        # with the node id its certificate claims.
        for node in cluster:
            assert "node id 'node-1'" not in node.log_text(), node.log_tail()
    finally:
        intruder.stop()


def peer_status(
    consortium: Consortium,
    node: NodeProcess,
    certificate: bytes | None = None,
    key: bytes | None = None,
) -> peer_pb2.StatusResponse:
    """PeerService.Status on `node`'s peer port, trusting the consortium's CA (so the server
    is accepted) and presenting `certificate` (if any) as the client."""
    credentials = grpc.ssl_channel_credentials(
        root_certificates=(consortium.layout.directory / "ca" / "ca.pem").read_bytes(),
        private_key=key,
        certificate_chain=certificate,
    )
    with grpc.secure_channel(node.peer_address, credentials) as channel:
        return peer_pb2_grpc.PeerServiceStub(channel).Status(peer_pb2.StatusRequest(), timeout=10.0)


def test_peer_service_refuses_other_cas_and_non_validators(consortium) -> None:
    """PeerService.Status called directly: no certificate or another CA's fails the TLS
    handshake (UNAVAILABLE); the consortium CA's for a non-validator is PERMISSION_DENIED."""
    node = consortium.cluster[0]
    ca_directory = consortium.layout.directory / "ca"
    consortium_ca = (
        (ca_directory / "ca.pem").read_bytes(),
        (ca_directory / "ca-key.pem").read_bytes(),
    )

    # The control: a certificate from the consortium's CA for a validator is served, so the
    # refusals below are about the certificates, not about how the channel is set up.
    status = peer_status(consortium, node, *issue_node_certificate(*consortium_ca, "node-1"))
    assert status.node_id == node.name and status.height >= 1

    # No client certificate at all: the TLS handshake fails, no call is made.
    with pytest.raises(grpc.RpcError) as info:
        peer_status(consortium, node)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE, info.value.details()

    # A certificate from a CA of one's own, even one claiming a validator's id: the same.
    own_ca = create_ca(consortium.genesis.chain_id)
    for claimed in ("node-1", "node-9"):
        with pytest.raises(grpc.RpcError) as info:
            peer_status(consortium, node, *issue_node_certificate(*own_ca, claimed))
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE, info.value.details()

    # The consortium's CA, but a node id outside the validator set: the handshake succeeds and
    # the call is refused.
    with pytest.raises(grpc.RpcError) as info:
        peer_status(consortium, node, *issue_node_certificate(*consortium_ca, "node-9"))
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED, info.value.details()
    assert info.value.details().startswith("unknown_peer: "), info.value.details()
    wait_until(
        lambda: "node id 'node-9' is not another validator" in node.log_text(),
        10.0,
        node.log_tail,
    )

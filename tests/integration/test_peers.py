"""The peer transport over real gRPC and mutual TLS on 127.0.0.1, in one process.

Each test runs its own asyncio loop with up to three `PeerNetwork`s, each behind its own
grpc.aio server on a free loopback port. What is checked: gossip in every direction and in
order, block sync and status, automatic reconnection to a restarted peer, refusal of
certificates from another CA and of CA-issued certificates outside the validator set, with
each organisation's CA in the genesis (ADR 015) refusal of a certificate one organisation's CA
issued for another's node, whichever side presents it, the
bounded outbound queue while a peer is down, and that a network takes its handler once, before
it serves.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import grpc
import pytest

from provledger.node import peers
from provledger.node.peers import PeerNetwork, PeerRequestError
from provledger.node.tls import (
    PeerTrust,
    TlsMaterial,
    create_ca,
    issue_node_certificate,
    peer_trust,
)
from provledger.v1 import ledger_pb2, peer_pb2, peer_pb2_grpc

pytestmark = pytest.mark.integration

NODE_IDS = ("node-a", "node-b", "node-c")
TEST_TIMEOUT_S = 60.0
WAIT_TIMEOUT_S = 15.0


@pytest.fixture(scope="module")
def ca() -> tuple[bytes, bytes]:
    return create_ca("provledger-test")


@pytest.fixture(scope="module")
def materials(ca: tuple[bytes, bytes]) -> dict[str, TlsMaterial]:
    return {
        node_id: TlsMaterial(ca[0], *issue_node_certificate(*ca, node_id))
        for node_id in (*NODE_IDS, "outsider")
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def synced_block(height: int) -> peer_pb2.SyncedBlock:
    return peer_pb2.SyncedBlock(block=ledger_pb2.Block(header=height.to_bytes(8, "big")))


def block_height(block: peer_pb2.SyncedBlock) -> int:
    return int.from_bytes(block.block.header, "big")


def status_message(node_id: str, height: int) -> peer_pb2.PeerMessage:
    return peer_pb2.PeerMessage(status=peer_pb2.StatusResponse(node_id=node_id, height=height))


@dataclass
class Recorder:
    """A test node's `PeerHandler`: records every message (and fails on a status message at
    `failing_height`, as a buggy consumer would), serves made-up blocks up to `head_height`."""

    node_id: str
    head_height: int
    failing_height: int | None
    received: list[tuple[str, peer_pb2.PeerMessage]] = field(default_factory=list)
    blocks_from_calls: list[tuple[int, int]] = field(default_factory=list)

    def on_peer_message(self, sender_id: str, message: peer_pb2.PeerMessage) -> None:
        if message.status.height == self.failing_height:
            raise RuntimeError("a bug in the consumer")
        self.received.append((sender_id, message))

    def blocks_from(self, from_height: int, max_blocks: int) -> list[peer_pb2.SyncedBlock]:
        self.blocks_from_calls.append((from_height, max_blocks))
        last = min(from_height + max_blocks - 1, self.head_height)
        return [synced_block(height) for height in range(from_height, last + 1)]

    def status(self) -> peer_pb2.StatusResponse:
        return peer_pb2.StatusResponse(
            node_id=self.node_id, height=self.head_height, block_id=b"\x01" * 32
        )


@dataclass
class Node:
    """One PeerNetwork with its server and everything it was handed."""

    node_id: str
    port: int
    network: PeerNetwork
    server: grpc.aio.Server
    received: list[tuple[str, peer_pb2.PeerMessage]] = field(default_factory=list)
    blocks_from_calls: list[tuple[int, int]] = field(default_factory=list)

    def heights_from(self, sender_id: str) -> list[int]:
        return [message.status.height for sender, message in self.received if sender == sender_id]

    async def stop(self) -> None:
        await self.network.stop()
        await self.server.stop(grace=None)


async def start_node(
    node_id: str,
    ports: dict[str, int],
    materials: dict[str, TlsMaterial],
    *,
    validator_ids: tuple[str, ...] = NODE_IDS,
    head_height: int = 1_000_000,
    failing_height: int | None = None,
    trust: PeerTrust | None = None,
    **options: int,
) -> Node:
    recorder = Recorder(node_id, head_height, failing_height)
    network = PeerNetwork(
        node_id,
        {peer_id: f"127.0.0.1:{port}" for peer_id, port in ports.items() if peer_id != node_id},
        materials[node_id],
        validator_ids,
        rng=random.Random(7),
        trust=trust,
        **options,
    )
    network.attach(recorder)
    server = peers.create_peer_server()
    port = network.add_to_server(server, f"127.0.0.1:{ports[node_id]}")
    assert port == ports[node_id]
    await server.start()
    await network.start()
    return Node(node_id, port, network, server, recorder.received, recorder.blocks_from_calls)


async def eventually(condition: Callable[[], bool], what: str) -> None:
    async with asyncio.timeout(WAIT_TIMEOUT_S):
        while not condition():
            await asyncio.sleep(0.02)
    assert condition(), what


def refusals_of(caplog: pytest.LogCaptureFixture, node_id: str) -> int:
    """How many peer calls claiming `node_id` were refused, by the refusal count in the latest
    log line about it (each refusal is logged, the rarer ones at DEBUG)."""
    counts = [
        record.args[-1]
        for record in caplog.records
        if record.name == peers.log.name
        and record.msg.startswith("refused a peer call from")
        and record.args[1] == node_id
    ]
    return max(counts, default=0)


def failed_attempts(caplog: pytest.LogCaptureFixture, peer_id: str, reason: str) -> int:
    """How many attempts in a row to reach `peer_id` failed for `reason`, by the latest log
    line about them (each failure is logged, the rarer ones at DEBUG)."""
    counts = [
        record.args[2]
        for record in caplog.records
        if record.name == peers.log.name
        and record.msg.startswith("gossip to peer")
        and record.args[0] == peer_id
        and reason in record.getMessage()
    ]
    return max(counts, default=0)


def run(test: Callable[[], Awaitable[None]]) -> None:
    async def bounded() -> None:
        async with asyncio.timeout(TEST_TIMEOUT_S):
            await test()

    asyncio.run(bounded())


async def start_cluster(materials: dict[str, TlsMaterial]) -> dict[str, Node]:
    ports = {node_id: free_port() for node_id in NODE_IDS}
    nodes = {}
    for node_id in NODE_IDS:
        nodes[node_id] = await start_node(node_id, ports, materials)
    return nodes


async def stop_all(nodes: dict[str, Node]) -> None:
    for node in nodes.values():
        await node.stop()


def test_broadcast_reaches_every_peer_in_order_both_ways(
    materials: dict[str, TlsMaterial],
) -> None:
    async def scenario() -> None:
        nodes = await start_cluster(materials)
        try:
            for node in nodes.values():
                others = set(NODE_IDS) - {node.node_id}
                await eventually(
                    lambda node=node, others=others: node.network.connected_peers() == others,
                    f"{node.node_id} connects to {others}",
                )
            for node in nodes.values():
                for height in range(100):
                    node.network.broadcast(status_message(node.node_id, height))
            for receiver in nodes.values():
                for sender_id in set(NODE_IDS) - {receiver.node_id}:
                    await eventually(
                        lambda r=receiver, s=sender_id: len(r.heights_from(s)) == 100,
                        f"{receiver.node_id} hears 100 messages from {sender_id}",
                    )
                    assert receiver.heights_from(sender_id) == list(range(100))
                    assert all(
                        message.status.node_id == sender for sender, message in receiver.received
                    )
            nodes["node-a"].network.send("node-c", status_message("node-a", 1_000))
            await eventually(
                lambda: nodes["node-c"].heights_from("node-a")[-1:] == [1_000],
                "node-c hears the message sent to it alone",
            )
            # node-b's stream from node-a is ordered: once it hears a later broadcast, it has
            # heard everything node-a ever sent it, whatever the machine's speed.
            nodes["node-a"].network.broadcast(status_message("node-a", 1_001))
            await eventually(
                lambda: nodes["node-b"].heights_from("node-a")[-1:] == [1_001],
                "node-b hears the later broadcast",
            )
            assert nodes["node-b"].heights_from("node-a") == [*range(100), 1_001]
            stats = nodes["node-a"].network.stats()
            assert stats["node-b"].sent_messages == 101
            assert stats["node-c"].sent_messages == 102
            assert stats["node-b"].received_messages == 100
            assert stats["node-b"].dropped_messages == 0
            assert stats["node-b"].queued_messages == 0
        finally:
            await stop_all(nodes)

    run(scenario)


def test_sync_blocks_returns_what_blocks_from_gives_and_status_answers(
    materials: dict[str, TlsMaterial],
) -> None:
    async def scenario() -> None:
        ports = {node_id: free_port() for node_id in NODE_IDS[:2]}
        a = await start_node("node-a", ports, materials, head_height=1_000)
        b = await start_node("node-b", ports, materials, head_height=1_000)
        try:
            blocks = await a.network.fetch_blocks("node-b", 5, 10)
            assert [block_height(block) for block in blocks] == list(range(5, 15))
            assert b.blocks_from_calls == [(5, 10)]
            capped = await a.network.fetch_blocks("node-b", 1, 10_000)
            assert [block_height(block) for block in capped] == list(
                range(1, 1 + peers.SYNC_BLOCKS_MAX)
            )
            # The server reads the store a chunk at a time.
            assert all(count <= peers.SYNC_BLOCKS_CHUNK_MAX for _, count in b.blocks_from_calls[1:])
            at_head = await a.network.fetch_blocks("node-b", 990, 50)
            assert [block_height(block) for block in at_head] == list(range(990, 1_001))
            assert await a.network.fetch_blocks("node-b", 1_001, 50) == []
            assert await a.network.fetch_blocks("node-b", 1, 0) == []
            status = await a.network.peer_status("node-b")
            assert status == peer_pb2.StatusResponse(
                node_id="node-b", height=1_000, block_id=b"\x01" * 32
            )
            await b.stop()
            assert await a.network.peer_status("node-b") is None
            with pytest.raises(PeerRequestError) as raised:
                await a.network.fetch_blocks("node-b", 1, 10)
            assert raised.value.code == grpc.StatusCode.UNAVAILABLE
            with pytest.raises(ValueError, match="unknown peer"):
                await a.network.fetch_blocks("node-z", 1, 10)
        finally:
            await a.stop()

    run(scenario)


def test_a_restarted_peer_is_reconnected_and_hears_later_messages(
    materials: dict[str, TlsMaterial],
) -> None:
    async def scenario() -> None:
        ports = {node_id: free_port() for node_id in NODE_IDS[:2]}
        a = await start_node("node-a", ports, materials)
        b = await start_node("node-b", ports, materials)
        try:
            await eventually(lambda: a.network.connected_peers() == {"node-b"}, "a connects")
            a.network.broadcast(status_message("node-a", 1))
            await eventually(lambda: b.heights_from("node-a") == [1], "b hears 1")

            await b.stop()
            await eventually(lambda: a.network.connected_peers() == set(), "a notices b left")
            b = await start_node("node-b", ports, materials)  # same port, fresh process state
            await eventually(lambda: a.network.connected_peers() == {"node-b"}, "a reconnects")
            a.network.broadcast(status_message("node-a", 2))
            await eventually(lambda: b.heights_from("node-a") == [2], "restarted b hears 2")
            await eventually(lambda: a.network.connected_peers() == {"node-b"}, "b reconnects")
            b.network.broadcast(status_message("node-b", 3))
            await eventually(lambda: a.heights_from("node-b") == [3], "a hears the new b")
            assert a.network.stats()["node-b"].connections == 2
        finally:
            await a.stop()
            await b.stop()

    run(scenario)


async def _gossip_with(
    port: int, credentials: grpc.ChannelCredentials
) -> grpc.aio.AioRpcError | None:
    """Open a Gossip call with `credentials`, send one message, return the call's error."""

    async def messages():  # type: ignore[no-untyped-def]
        yield status_message("intruder", 666)

    async with grpc.aio.secure_channel(f"127.0.0.1:{port}", credentials) as channel:
        stub = peer_pb2_grpc.PeerServiceStub(channel)
        try:
            await stub.Gossip(messages(), timeout=5)
        except grpc.aio.AioRpcError as error:
            return error
    return None


def test_a_certificate_from_another_ca_never_gets_a_call_through(
    materials: dict[str, TlsMaterial],
) -> None:
    # A self-made CA issuing a certificate that even claims a validator's node id.
    rogue_ca = create_ca("provledger-test")
    rogue_certificate, rogue_key = issue_node_certificate(*rogue_ca, "node-a")
    trusts_our_ca = grpc.ssl_channel_credentials(
        materials["node-b"].ca_certificate_pem, rogue_key, rogue_certificate
    )
    trusts_rogue_ca = grpc.ssl_channel_credentials(rogue_ca[0], rogue_key, rogue_certificate)

    async def scenario() -> None:
        ports = {"node-b": free_port(), "node-a": free_port()}
        b = await start_node("node-b", ports, materials)
        a = None
        try:
            for credentials in (trusts_our_ca, trusts_rogue_ca):
                error = await _gossip_with(b.port, credentials)
                assert error is not None
                assert error.code() == grpc.StatusCode.UNAVAILABLE
            # The real node-a, started after the refused calls had ended, gets its message
            # through: node-b receives, and what it received is that message alone.
            a = await start_node("node-a", ports, materials)
            a.network.broadcast(status_message("node-a", 1))
            await eventually(lambda: b.received != [], "b hears the real node-a")
            assert [(sender, m.status.height) for sender, m in b.received] == [("node-a", 1)]
        finally:
            if a is not None:
                await a.stop()
            await b.stop()

    run(scenario)


def test_a_ca_issued_certificate_outside_the_validator_set_is_denied(
    materials: dict[str, TlsMaterial], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=peers.log.name)
    outsider = materials["outsider"]
    credentials = grpc.ssl_channel_credentials(
        outsider.ca_certificate_pem, outsider.key_pem, outsider.certificate_pem
    )

    async def scenario() -> None:
        ports = {"node-a": free_port(), "node-b": free_port()}
        b = await start_node("node-b", ports, materials)
        # node-a runs, but node-b's validator set does not include it either way round.
        a = await start_node(
            "node-a", ports, materials, validator_ids=("node-a", "node-b", "node-c")
        )
        try:
            error = await _gossip_with(b.port, credentials)
            assert error is not None
            assert error.code() == grpc.StatusCode.PERMISSION_DENIED
            assert "unknown_peer" in (error.details() or "")
            async with grpc.aio.secure_channel(f"127.0.0.1:{b.port}", credentials) as channel:
                stub = peer_pb2_grpc.PeerServiceStub(channel)
                with pytest.raises(grpc.aio.AioRpcError) as status_error:
                    await stub.Status(peer_pb2.StatusRequest(), timeout=5)
                assert status_error.value.code() == grpc.StatusCode.PERMISSION_DENIED
                with pytest.raises(grpc.aio.AioRpcError) as sync_error:
                    async for _ in stub.SyncBlocks(
                        peer_pb2.SyncBlocksRequest(from_height=1, max_blocks=5), timeout=5
                    ):
                        pass
                assert sync_error.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert b.received == []
            assert b.blocks_from_calls == []

            # A validator removed from node-b's set is refused from then on.
            await eventually(lambda: a.network.connected_peers() == {"node-b"}, "a connects")
            b.network.set_validator_ids(("node-b", "node-c"))
            await b.server.stop(grace=None)
            b.server = peers.create_peer_server()
            b.network.add_to_server(b.server, f"127.0.0.1:{b.port}")
            await b.server.start()
            await eventually(lambda: a.network.connected_peers() == set(), "a loses b")
            a.network.broadcast(status_message("node-a", 5))
            # node-a keeps trying with the message queued; two more refusals by node-b show
            # that it tried (and was refused) after the message was queued.
            refused_before = refusals_of(caplog, "node-a")
            await eventually(
                lambda: refusals_of(caplog, "node-a") >= refused_before + 2,
                "b refuses a's reconnections",
            )
            assert a.network.connected_peers() == set()
            assert b.received == []
            assert a.network.stats()["node-b"].queued_messages == 1
        finally:
            await a.stop()
            await b.stop()

    run(scenario)


@pytest.fixture(scope="module")
def organisations() -> dict[str, tuple[bytes, bytes]]:
    """Each validator's organisation's own TLS CA, as `org init` makes them: node-a's is
    org-x's, node-b's org-y's, node-c's org-z's."""
    return {
        node_id: create_ca("provledger-test", organisation=org)
        for node_id, org in zip(NODE_IDS, ("org-x", "org-y", "org-z"), strict=True)
    }


@pytest.fixture(scope="module")
def organisation_materials(
    organisations: dict[str, tuple[bytes, bytes]],
) -> dict[str, TlsMaterial]:
    return {
        node_id: TlsMaterial(ca[0], *issue_node_certificate(*ca, node_id))
        for node_id, ca in organisations.items()
    }


def genesis_trust(
    organisations: dict[str, tuple[bytes, bytes]], material: TlsMaterial
) -> PeerTrust:
    """What a node trusts with every organisation's root in the genesis."""
    return peer_trust(material, [(node_id, ca[0]) for node_id, ca in organisations.items()])


def test_a_certificate_one_organisations_ca_issued_for_anothers_node_is_refused(
    organisations: dict[str, tuple[bytes, bytes]],
    organisation_materials: dict[str, TlsMaterial],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger=peers.log.name)
    # org-x (node-a's) issues a certificate claiming node-b, org-y's node, to call node-c.
    forged_certificate, forged_key = issue_node_certificate(*organisations["node-a"], "node-b")
    node_c_trust = genesis_trust(organisations, organisation_materials["node-c"])
    forged = grpc.ssl_channel_credentials(
        node_c_trust.handshake_roots(), forged_key, forged_certificate
    )

    async def scenario() -> None:
        ports = {"node-c": free_port(), "node-b": free_port()}
        c = await start_node("node-c", ports, organisation_materials, trust=node_c_trust)
        b = None
        try:
            # The union of the roots lets it through the handshake; the binding refuses it.
            error = await _gossip_with(c.port, forged)
            assert error is not None
            assert error.code() == grpc.StatusCode.PERMISSION_DENIED
            assert (error.details() or "").startswith("wrong_issuer: ")
            async with grpc.aio.secure_channel(f"127.0.0.1:{c.port}", forged) as channel:
                stub = peer_pb2_grpc.PeerServiceStub(channel)
                with pytest.raises(grpc.aio.AioRpcError) as status_error:
                    await stub.Status(peer_pb2.StatusRequest(), timeout=5)
                assert status_error.value.code() == grpc.StatusCode.PERMISSION_DENIED
                with pytest.raises(grpc.aio.AioRpcError) as sync_error:
                    async for _ in stub.SyncBlocks(
                        peer_pb2.SyncBlocksRequest(from_height=1, max_blocks=5), timeout=5
                    ):
                        pass
                assert sync_error.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert c.received == [] and c.blocks_from_calls == []
            assert refusals_of(caplog, "node-b") == 3  # logged with the id it claimed
            assert any(
                "'node-b' was refused: the certificate for 'node-b' was not issued by its "
                "organisation's CA" in record.getMessage()
                for record in caplog.records
            )
            # The real node-b, certified by org-y, gets through to org-z's node.
            b_trust = genesis_trust(organisations, organisation_materials["node-b"])
            b = await start_node("node-b", ports, organisation_materials, trust=b_trust)
            b.network.broadcast(status_message("node-b", 1))
            await eventually(lambda: c.received != [], "c hears the real node-b")
            assert [(sender, m.status.height) for sender, m in c.received] == [("node-b", 1)]
        finally:
            if b is not None:
                await b.stop()
            await c.stop()

    run(scenario)


def test_a_node_answering_for_another_organisations_node_is_not_a_connection(
    organisations: dict[str, tuple[bytes, bytes]],
    organisation_materials: dict[str, TlsMaterial],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger=peers.log.name)
    # An impostor with an org-x certificate claiming node-b listens where node-a dials node-b.
    impostor = {
        "node-b": TlsMaterial(
            organisations["node-a"][0], *issue_node_certificate(*organisations["node-a"], "node-b")
        )
    }

    async def scenario() -> None:
        ports = {"node-a": free_port(), "node-b": free_port()}
        roots = [(node_id, ca[0]) for node_id, ca in organisations.items()]
        fake_b = await start_node(
            "node-b",
            ports,
            impostor,
            trust=PeerTrust(impostor["node-b"].ca_certificate_pem, tuple(roots)),
        )
        a_trust = genesis_trust(organisations, organisation_materials["node-a"])
        a = await start_node("node-a", ports, organisation_materials, trust=a_trust)
        try:
            a.network.broadcast(status_message("node-a", 1))
            # node-a's channel to node-b trusts org-y's root alone: the handshake fails.
            await eventually(
                lambda: failed_attempts(caplog, "node-b", "UNAVAILABLE") >= 2,
                "a tries node-b's address twice",
            )
            assert a.network.connected_peers() == set()
            assert fake_b.received == []
        finally:
            await a.stop()
            await fake_b.stop()

    run(scenario)


def test_a_validator_of_a_new_organisation_added_by_governance_is_accepted_from_its_ca_alone(
    organisations: dict[str, tuple[bytes, bytes]],
    organisation_materials: dict[str, TlsMaterial],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """node-d, of org-w (its own CA, never in the genesis), calls node-c. Refused until the
    validator sets name it with org-w's root; then node-c's port, opened before, lets it in
    (the handshake reads the roots again: dynamic credentials), its gossip is heard and
    node-c's channel to it trusts org-w's root. A certificate for node-d that org-x issued is
    still refused `wrong_issuer`: the application check decides. ADR 015, 2026-12-02."""
    caplog.set_level(logging.DEBUG, logger=peers.log.name)
    org_w = create_ca("provledger-test", organisation="org-w")
    d_material = TlsMaterial(org_w[0], *issue_node_certificate(*org_w, "node-d"))
    materials = {**organisation_materials, "node-d": d_material}
    genesis_roots = [(node_id, ca[0]) for node_id, ca in organisations.items()]
    with_d = [*genesis_roots, ("node-d", org_w[0])]
    every_root = [root for _, root in with_d]
    forged_certificate, forged_key = issue_node_certificate(*organisations["node-a"], "node-d")

    async def scenario() -> None:
        ports = {"node-c": free_port(), "node-d": free_port()}
        c = await start_node(
            "node-c",
            ports,
            materials,
            trust=peer_trust(materials["node-c"], genesis_roots),
        )
        d = await start_node(
            "node-d",
            ports,
            materials,
            validator_ids=(*NODE_IDS, "node-d"),
            trust=peer_trust(d_material, with_d, every_root=every_root),
        )
        try:
            # Before governance: org-w is no root of node-c's port; the handshake fails.
            d.network.broadcast(status_message("node-d", 1))
            await eventually(
                lambda: failed_attempts(caplog, "node-c", "UNAVAILABLE") >= 1,
                "d is refused by c",
            )
            assert c.received == []
            # The addition decided: the consensus driver hands node-c the new sets' roots.
            c.network.set_validator_ids((*NODE_IDS, "node-d"))
            c.network.set_tls_roots(with_d, every_root)
            await eventually(lambda: c.heights_from("node-d") != [], "c hears node-d")
            assert c.network.issuer_problem("node-d", d_material.certificate_pem) is None
            # node-c's channel to node-d trusts org-w's root: its gossip reaches node-d.
            c.network.broadcast(status_message("node-c", 2))
            await eventually(lambda: d.heights_from("node-c") == [2], "d hears node-c")
            # A certificate org-x issued for node-d passes the handshake (the union of the
            # roots) and no further.
            forged = grpc.ssl_channel_credentials(
                org_w[0] + organisations["node-c"][0], forged_key, forged_certificate
            )
            error = await _gossip_with(c.port, forged)
            assert error is not None and error.code() == grpc.StatusCode.PERMISSION_DENIED
            assert (error.details() or "").startswith("wrong_issuer: ")
            assert c.heights_from("node-d") == [1]
        finally:
            await d.stop()
            await c.stop()

    run(scenario)


def test_a_replaced_tls_ca_is_followed_by_the_peers(
    organisations: dict[str, tuple[bytes, bytes]],
    organisation_materials: dict[str, TlsMaterial],
) -> None:
    """node-b's organisation replaces its CA (TlsCaReplaced): while the change is decided and
    not active, node-c accepts node-b's certificates from either root; once active, from the
    new root alone, and a certificate from the old CA is refused `wrong_issuer`."""
    new_ca = create_ca("provledger-test", organisation="org-y-2026")
    new_b = TlsMaterial(new_ca[0], *issue_node_certificate(*new_ca, "node-b"))
    old_b = organisation_materials["node-b"]
    genesis_roots = [(node_id, ca[0]) for node_id, ca in organisations.items()]
    every_root = [root for _, root in genesis_roots] + [new_ca[0]]
    decided = [*genesis_roots, ("node-b", new_ca[0])]
    active = [(v, r) for v, r in decided if (v, r) != ("node-b", organisations["node-b"][0])]

    def credentials(material: TlsMaterial) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            organisations["node-c"][0], material.key_pem, material.certificate_pem
        )

    async def scenario() -> None:
        ports = {"node-c": free_port()}
        c = await start_node(
            "node-c",
            ports,
            organisation_materials,
            trust=peer_trust(organisation_materials["node-c"], genesis_roots),
        )
        try:
            assert (await _gossip_with(c.port, credentials(new_b))) is not None  # not yet
            c.network.set_tls_roots(decided, every_root)
            assert (await _gossip_with(c.port, credentials(old_b))) is None
            assert (await _gossip_with(c.port, credentials(new_b))) is None
            c.network.set_tls_roots(active, every_root)
            assert (await _gossip_with(c.port, credentials(new_b))) is None
            error = await _gossip_with(c.port, credentials(old_b))
            assert error is not None and (error.details() or "").startswith("wrong_issuer: ")
        finally:
            await c.stop()

    run(scenario)


def test_gossip_streams_per_sender_are_bounded(materials: dict[str, TlsMaterial]) -> None:
    a = materials["node-a"]
    credentials = grpc.ssl_channel_credentials(a.ca_certificate_pem, a.key_pem, a.certificate_pem)

    async def scenario() -> None:
        b = await start_node("node-b", {"node-b": free_port()}, materials)
        try:
            async with grpc.aio.secure_channel(f"127.0.0.1:{b.port}", credentials) as channel:
                stub = peer_pb2_grpc.PeerServiceStub(channel)
                calls = [stub.Gossip() for _ in range(peers.PEER_INBOUND_STREAMS_MAX)]
                for call in calls:
                    metadata = await call.initial_metadata()
                    assert metadata.get(peers.NODE_ID_METADATA_KEY) == "node-b"
                one_too_many = stub.Gossip()
                with pytest.raises(grpc.aio.AioRpcError) as raised:
                    await one_too_many
                assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                await calls[0].write(status_message("node-a", 1))
                await calls[0].done_writing()
                assert await calls[0] == peer_pb2.GossipAck()
                replacement = stub.Gossip()  # a slot is free again
                await replacement.write(status_message("node-a", 2))
                await replacement.done_writing()
                assert await replacement == peer_pb2.GossipAck()
                assert b.heights_from("node-a") == [1, 2]
                for call in calls[1:]:
                    call.cancel()
        finally:
            await b.stop()

    run(scenario)


def test_a_failing_consumer_closes_the_stream_and_the_sender_reconnects(
    materials: dict[str, TlsMaterial],
) -> None:
    async def scenario() -> None:
        ports = {node_id: free_port() for node_id in NODE_IDS[:2]}
        a = await start_node("node-a", ports, materials)
        b = await start_node("node-b", ports, materials, failing_height=2)
        try:
            await eventually(lambda: a.network.connected_peers() == {"node-b"}, "a connects")
            a.network.broadcast(status_message("node-a", 1))
            a.network.broadcast(status_message("node-a", 2))
            await eventually(lambda: a.network.stats()["node-b"].connections == 2, "reconnect")
            a.network.broadcast(status_message("node-a", 3))
            await eventually(lambda: 3 in b.heights_from("node-a"), "b hears 3")
            assert b.heights_from("node-a") == [1, 3]
        finally:
            await a.stop()
            await b.stop()

    run(scenario)


class FreezingProxy:
    """A TCP relay to a target port that can go silent, like a peer whose host froze."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.frozen = False
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        target_reader, target_writer = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65_536):
                    if not self.frozen:  # frozen: swallow everything, answer nothing
                        sink.write(data)
                        await sink.drain()
            except ConnectionError:
                pass
            finally:
                sink.close()

        await asyncio.gather(pump(reader, target_writer), pump(target_reader, writer))


@pytest.mark.slow
def test_a_silent_peer_is_noticed_by_keepalive(materials: dict[str, TlsMaterial]) -> None:
    async def scenario() -> None:
        b = await start_node("node-b", {"node-b": free_port()}, materials)
        proxy = FreezingProxy(b.port)
        await proxy.start()
        a = await start_node("node-a", {"node-a": free_port(), "node-b": proxy.port}, materials)
        try:
            await eventually(lambda: a.network.connected_peers() == {"node-b"}, "a connects")
            proxy.frozen = True
            loop = asyncio.get_running_loop()
            frozen_at = loop.time()
            async with asyncio.timeout(
                (2 * peers.PEER_KEEPALIVE_INTERVAL_MS + peers.PEER_KEEPALIVE_TIMEOUT_MS) / 1000
            ):
                while a.network.connected_peers():
                    await asyncio.sleep(0.1)
            noticed_after_s = loop.time() - frozen_at
            assert noticed_after_s > 1.0  # by keepalive, not by a closed connection
        finally:
            await a.stop()
            await proxy.stop()
            await b.stop()

    run(scenario)


def test_a_node_answering_at_the_wrong_address_is_not_a_connection(
    materials: dict[str, TlsMaterial], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=peers.log.name)

    async def scenario() -> None:
        c_port = free_port()
        c = await start_node("node-c", {"node-c": c_port}, materials)
        # node-a believes node-b is at node-c's address.
        a = await start_node("node-a", {"node-a": free_port(), "node-b": c_port}, materials)
        try:
            a.network.broadcast(status_message("node-a", 1))
            # Two attempts, each answered by node-c under its own name, are not connections.
            await eventually(
                lambda: failed_attempts(caplog, "node-b", "answers as node 'node-c'") >= 2,
                "a tries node-b's address twice",
            )
            assert a.network.connected_peers() == set()
            assert a.network.stats()["node-b"].connections == 0
            assert c.received == []
        finally:
            await a.stop()
            await c.stop()

    run(scenario)


def test_the_queue_for_a_dead_peer_stays_bounded_and_drops_the_oldest(
    materials: dict[str, TlsMaterial],
) -> None:
    async def scenario() -> None:
        ports = {"node-a": free_port(), "node-b": free_port()}  # node-b is not running
        a = await start_node("node-a", ports, materials)
        small = await start_node(
            "node-c",
            {"node-c": free_port(), "node-b": ports["node-b"]},
            materials,
            queue_messages_max=100,
        )
        try:
            for height in range(peers.PEER_QUEUE_MESSAGES_MAX + 500):
                a.network.broadcast(status_message("node-a", height))
            for height in range(250):
                small.network.broadcast(status_message("node-c", height))
            # Bounded as each message is queued: nothing to wait for.
            stats = a.network.stats()["node-b"]
            assert not stats.connected
            assert stats.queued_messages == peers.PEER_QUEUE_MESSAGES_MAX
            assert stats.dropped_messages == 500
            assert stats.queued_bytes <= peers.PEER_QUEUE_BYTES_MAX
            assert small.network.stats()["node-b"].queued_messages == 100
            assert small.network.stats()["node-b"].dropped_messages == 150

            # When node-b comes up, it hears the newest messages, oldest dropped first.
            b = await start_node("node-b", ports, materials)
            try:
                await eventually(lambda: len(b.heights_from("node-c")) == 100, "b hears c's queue")
                assert b.heights_from("node-c") == list(range(150, 250))
                await eventually(
                    lambda: len(b.heights_from("node-a")) == peers.PEER_QUEUE_MESSAGES_MAX,
                    "b hears a's queue",
                )
                assert b.heights_from("node-a")[0] == 500
            finally:
                await b.stop()
        finally:
            await a.stop()
            await small.stop()

    run(scenario)


def test_an_oversized_message_is_refused_when_queued(materials: dict[str, TlsMaterial]) -> None:
    network = PeerNetwork("node-a", {"node-b": "127.0.0.1:1"}, materials["node-a"], NODE_IDS)
    huge = peer_pb2.PeerMessage(
        events=peer_pb2.EventBatch(
            events=[ledger_pb2.SignedEvent(body=b"x" * (1024 * 1024)) for _ in range(9)]
        )
    )
    with pytest.raises(ValueError, match="exceeds"):
        network.broadcast(huge)
    with pytest.raises(ValueError, match="exceeds"):
        network.send("node-b", huge)
    assert network.stats()["node-b"].queued_messages == 0
    # A configured peer outside the validator set (one still to be added) is dialled; it may
    # read (sync, status) at once, and gossip once the set holds it. Another outsider may not.
    follower = PeerNetwork("node-a", {"node-z": "127.0.0.1:1"}, materials["node-a"], NODE_IDS)
    assert follower.dials("node-z") and not follower.dials("node-b")
    assert not follower.is_authorised("node-z") and follower.may_read("node-z")
    assert not follower.may_read("node-y") and not follower.may_read(None)
    follower.set_validator_ids((*NODE_IDS, "node-z"))
    assert follower.is_authorised("node-z")


def test_a_configured_follower_syncs_but_gossips_only_once_it_is_a_validator(
    materials: dict[str, TlsMaterial], caplog: pytest.LogCaptureFixture
) -> None:
    """A node outside the validator set that node-b is configured with (a validator still to be
    added, ADR 013) may fetch blocks and status from node-b, so it is caught up when its
    addition activates; its gossip is refused until node-b's set holds it."""
    caplog.set_level(logging.DEBUG, logger=peers.log.name)

    async def scenario() -> None:
        ports = {"node-b": free_port(), "outsider": free_port()}
        b = await start_node("node-b", ports, materials, head_height=7)
        follower = await start_node("outsider", ports, materials)
        try:
            synced = await follower.network.fetch_blocks("node-b", 3, 100)
            assert [block_height(block) for block in synced] == [3, 4, 5, 6, 7]
            status = await follower.network.peer_status("node-b")
            assert status is not None and status.height == 7
            await eventually(lambda: refusals_of(caplog, "outsider") >= 2, "gossip refused")
            assert follower.network.connected_peers() == set()
            follower.network.broadcast(status_message("outsider", 9))
            assert b.received == []
            # The follower hears node-b, which dials it (a configured peer).
            b.network.broadcast(status_message("node-b", 7))
            await eventually(lambda: follower.heights_from("node-b") == [7], "b gossips")

            b.network.set_validator_ids((*NODE_IDS, "outsider"))
            await eventually(lambda: b.heights_from("outsider") == [9], "the queue arrives")
        finally:
            await follower.stop()
            await b.stop()

    run(scenario)


def test_a_network_takes_its_handler_once_before_it_serves(
    materials: dict[str, TlsMaterial],
) -> None:
    """Nothing a peer sends may arrive before there is someone to hand it to."""

    async def scenario() -> None:
        network = PeerNetwork("node-a", {"node-b": "127.0.0.1:1"}, materials["node-a"], NODE_IDS)
        server = peers.create_peer_server()
        with pytest.raises(RuntimeError, match="attach"):
            network.add_to_server(server, f"127.0.0.1:{free_port()}")
        network.attach(Recorder("node-a", 0, None))
        with pytest.raises(RuntimeError, match="attach called twice"):
            network.attach(Recorder("node-a", 0, None))
        await server.stop(grace=None)

    run(scenario)

"""The consensus driver (node/consensus_driver.py): nothing that fails to be sent stops it.

Issue 8, item 1: a proposal over the peers' message cap made `PeerNetwork.broadcast` raise in
the middle of a consensus step; the step's later outputs were lost, the rebroadcast loop died
and the node stopped. Here a network that refuses what it is given shows that the driver logs
and drops the message and still carries out the rest of the step (the prevote after the
proposal is persisted and sent), that the periodic loops go on after a run that raised, and
that forwarded client events go out in batches that fit the message cap.

Each test runs the driver over a real LevelDB store and `LedgerNode` on a private event loop,
with a fake network that records what it is asked to send. Waits are on conditions with a
deadline, never on time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from support.memory_state import Consortium, digest

from provledger.node import consensus_driver
from provledger.node.consensus_driver import ConsensusDriver
from provledger.node.ledger import LedgerNode
from provledger.node.settings import GOSSIP_BATCH_BYTES_MAX, GRPC_MESSAGE_SIZE_BYTES_MAX
from provledger.node.store import Store
from provledger.protocol import consensus, crypto
from provledger.protocol.application import Origin
from provledger.protocol.events import DecodedEvent, event_id
from provledger.protocol.limits import METADATA_ENTRIES_MAX
from provledger.protocol.votes import PREVOTE
from provledger.v1 import ledger_pb2, peer_pb2

PROPOSER = "validator-1"  # proposes height 1, round 0
CONDITION_TIMEOUT_S = 30.0


@dataclass
class InlineVerifier:
    """The SignatureVerifier's interface, checking in the calling thread."""

    async def verify(self, checks) -> list[bool]:
        return [crypto.verify(key, b"", message, signature) for key, message, signature in checks]


@dataclass
class RefusingNetwork:
    """A PeerNetwork stand-in with no peers: records every message it is asked to broadcast,
    and raises as the real one does for a message over the cap when `refuse` says so."""

    refuse: Callable[[peer_pb2.PeerMessage], bool] = lambda message: False
    sent: list[peer_pb2.PeerMessage] = field(default_factory=list)
    refused: list[peer_pb2.PeerMessage] = field(default_factory=list)

    def broadcast(self, message: peer_pb2.PeerMessage) -> None:
        if self.refuse(message):
            self.refused.append(message)
            raise ValueError(f"peer message of {message.ByteSize()} bytes exceeds the cap")
        self.sent.append(message)

    def connected_peers(self) -> set[str]:
        return set()

    def set_validator_ids(self, validator_ids) -> None:
        self.validator_ids = frozenset(validator_ids)

    def set_tls_roots(self, validator_tls_cas, every_root) -> None:
        self.tls_roots = (tuple(validator_tls_cas), tuple(every_root))


@pytest.fixture
def consortium() -> Consortium:
    return Consortium()


@pytest.fixture
def store(tmp_path, consortium):
    store = Store(tmp_path / "ledger", consortium.genesis)
    yield store
    store.close()


def make_driver(
    consortium: Consortium, store: Store, network: RefusingNetwork
) -> tuple[ConsensusDriver, LedgerNode]:
    node = LedgerNode(consortium.genesis, store, PROPOSER, InlineVerifier())  # type: ignore[arg-type]
    key = consortium.validator_keys[PROPOSER]
    driver = ConsensusDriver(node, key, network, consensus.Params())  # type: ignore[arg-type]
    return driver, node


def registration(consortium: Consortium, member: str, label: str, entries: int = 0):
    return consortium.sign(
        member,
        "asset_registered",
        asset_id=label,
        content_digest=digest(label),
        classification=ledger_pb2.CLASSIFICATION_GENERAL,
        metadata={f"k{j:02d}": "v" * 1_000 for j in range(entries)},
    )


async def eventually(condition: Callable[[], bool], what: str) -> None:
    deadline = asyncio.get_running_loop().time() + CONDITION_TIMEOUT_S
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not true after {CONDITION_TIMEOUT_S} s: {what}")
        await asyncio.sleep(0.01)


def test_a_proposal_the_network_refuses_is_dropped_and_the_rest_of_the_step_happens(
    consortium, store, caplog
):
    network = RefusingNetwork(refuse=lambda message: message.HasField("proposal"))
    driver, node = make_driver(consortium, store, network)

    async def scenario() -> None:
        [admitted] = await node.admit(
            [registration(consortium, "agency-a", "pending")], Origin.CLIENT
        )
        assert isinstance(admitted, DecodedEvent)
        with caplog.at_level(logging.ERROR, logger="provledger.consensus"):
            driver.start()  # StartHeight: propose (refused), then prevote it
        try:
            assert not driver.failed.is_set()
        finally:
            await driver.stop()

    asyncio.run(scenario())

    [refused] = network.refused
    assert refused.proposal.height == 1 and refused.proposal.proposer_id == PROPOSER
    signed = [message for message, _ in store.load_signed(1)]
    assert [type(m) for m in signed] == [peer_pb2.Proposal, ledger_pb2.Vote]
    prevote = signed[1]
    assert prevote.type == PREVOTE and prevote.block_id  # for its own block, persisted...
    assert [m.vote for m in network.sent if m.HasField("vote")] == [prevote]  # ...and sent
    assert "dropped the proposal for height 1 round 0 instead of sending it" in caplog.text


def test_the_rebroadcast_loop_goes_on_after_a_run_that_raised(
    consortium, store, caplog, monkeypatch
):
    monkeypatch.setattr(consensus_driver, "REBROADCAST_INTERVAL_MS", 1)
    driver, _ = make_driver(consortium, store, RefusingNetwork())
    runs: list[int] = []

    def flaky_rebroadcast() -> None:
        runs.append(len(runs))
        if len(runs) == 1:
            raise RuntimeError("one bad run")

    flaky_rebroadcast.__name__ = "_rebroadcast"
    monkeypatch.setattr(driver, "_rebroadcast", flaky_rebroadcast)

    async def scenario() -> None:
        with caplog.at_level(logging.ERROR, logger="provledger.consensus"):
            driver.start()
            try:
                await eventually(
                    lambda: len(runs) >= 3 or driver.failed.is_set(), "three rebroadcast runs"
                )
                assert not driver.failed.is_set()
            finally:
                await driver.stop()

    asyncio.run(scenario())
    [failure] = [r for r in caplog.records if "failed" in r.getMessage()]
    assert failure.getMessage() == "_rebroadcast failed (1 times so far); it runs again in 1 ms"
    assert failure.exc_info is not None and "one bad run" in str(failure.exc_info[1])


def test_forwarded_client_events_go_out_in_batches_that_fit_the_message_cap(consortium, store):
    network = RefusingNetwork(refuse=lambda m: m.ByteSize() > GRPC_MESSAGE_SIZE_BYTES_MAX)
    driver, node = make_driver(consortium, store, network)
    members = ("agency-a", "agency-b", "exchange")
    # 300 events of ~32 KiB: under the 500-event batch count, over the 8 MiB cap in bytes
    events = [
        registration(consortium, members[n % 3], f"big/{n}", METADATA_ENTRIES_MAX)
        for n in range(300)
    ]
    assert sum(e.ByteSize() for e in events) > GRPC_MESSAGE_SIZE_BYTES_MAX

    def forwarded() -> list[bytes]:
        return [
            event_id(e.body) for m in network.sent if m.HasField("events") for e in m.events.events
        ]

    async def scenario() -> None:
        driver.start()
        try:
            outcomes = await node.admit(events, Origin.CLIENT)
            assert all(isinstance(o, DecodedEvent) for o in outcomes)
            await eventually(lambda: len(forwarded()) == len(events), "every event forwarded")
        finally:
            await driver.stop()

    asyncio.run(scenario())
    assert network.refused == []
    assert forwarded() == [event_id(e.body) for e in events]  # all, once, in order
    batches = [m for m in network.sent if m.HasField("events")]
    assert len(batches) >= 3
    assert all(m.ByteSize() <= GOSSIP_BATCH_BYTES_MAX for m in batches)


@dataclass
class ConfiguredNetwork(RefusingNetwork):
    """A network configured with some peers (`dialled`), of which `connected` hold a stream;
    asking it for blocks from any other peer raises, as PeerNetwork does."""

    dialled: frozenset[str] = frozenset()
    connected: frozenset[str] = frozenset()
    fetched_from: list[str] = field(default_factory=list)

    def dials(self, peer_id: str) -> bool:
        return peer_id in self.dialled

    def connected_peers(self) -> set[str]:
        return set(self.connected)

    async def fetch_blocks(self, peer_id: str, from_height: int, max_blocks: int) -> list:
        if peer_id not in self.dialled:
            raise ValueError(f"unknown peer {peer_id!r}")
        self.fetched_from.append(peer_id)
        return []


@pytest.mark.parametrize("connected", [frozenset({"validator-2"}), frozenset()])
def test_a_message_from_a_validator_this_node_cannot_dial_syncs_from_a_configured_peer(
    consortium, store, connected
):
    """A validator added by governance may call before its address is in this node's config
    (ADR 013). A message of it from a later height used to start block sync *from it*, which
    the network refuses (not a configured peer): the sync task raised and the node stopped.
    Now the blocks come from a connected peer, or wait for the status polls."""
    network = ConfiguredNetwork(dialled=frozenset({"validator-2"}), connected=connected)
    driver, _ = make_driver(consortium, store, network)
    ahead = peer_pb2.PeerMessage(status=peer_pb2.StatusResponse(node_id="validator-9", height=5))

    async def scenario() -> None:
        driver.on_peer_message("validator-9", ahead)
        if not connected:  # nobody to ask yet; the next message from a configured peer is
            driver.on_peer_message("validator-2", ahead)
        try:
            await eventually(lambda: network.fetched_from or driver.failed.is_set(), "synced")
            assert not driver.failed.is_set()
        finally:
            await driver.stop()

    asyncio.run(scenario())
    assert network.fetched_from == ["validator-2"]

"""Issue 8, item 1, on a real consortium of four: big legal events never halt the chain.

The attack: 4 × 1,000 legal events of about 6 KiB each, submitted with SubmitEvents to all four
nodes. Before blocks had a byte budget, a proposer put 2,000 of them (about 12.5 MB) into one
proposal, over the peers' 8 MiB message cap; sending it raised inside consensus, the node
stopped, and after a restart it re-sent the same proposal from its vote log and stopped again.

Here (ADR 011) every block stays within `BLOCK_SIZE_BYTES_MAX`, so the 4,000 events commit in
several blocks and every node keeps committing. Then all four nodes are stopped by PID
(SIGTERM), and one of them is given what the attack left behind: a signed proposal of those
2,000 events for the next height in its vote log. After all four restart, that node withholds
the proposal (it never re-sends it), and the chain commits new events on every node again.

Everything waits on conditions (log sizes, committed events, heights) with generous limits,
never on timing, and never on when heartbeat blocks come.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from support.processes import NodeCluster, NodeProcess, client_channel, init_consortium, wait_until

from provledger.cli.client import EventSigner, Identity
from provledger.cli.consortium import ConsortiumLayout
from provledger.node.config import NodeConfig
from provledger.node.keyfile import load_key
from provledger.node.settings import GRPC_MESSAGE_SIZE_BYTES_MAX, SUBMIT_BATCH_EVENTS_MAX
from provledger.node.store import Store
from provledger.protocol import blocks, consensus, crypto
from provledger.protocol.events import event_id
from provledger.protocol.genesis import Genesis, parse_genesis
from provledger.protocol.limits import BLOCK_EVENTS_MAX, BLOCK_SIZE_BYTES_MAX
from provledger.v1 import api_pb2, api_pb2_grpc, ledger_pb2, peer_pb2

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NODES = 4
BATCH_EVENTS = SUBMIT_BATCH_EVENTS_MAX  # 1,000: one SubmitEvents call per node
AUTHORS = ("agency-a", "agency-b", "exchange")  # may register assets; one signer each
METADATA_ENTRIES = 6
METADATA_VALUE_CHARS = 1_000  # under TEXT_LENGTH_CHARS_MAX: six make an event of ~6 KiB
RPC_TIMEOUT_S = 60.0
FLOOD_TIMEOUT_S = 240.0
COMMIT_TIMEOUT_S = 120.0
WITHHELD_LOG_LINE = "withholding the proposal signed for height"


# --- events ---------------------------------------------------------------------------------


def big_registration(signer: EventSigner, label: str) -> ledger_pb2.SignedEvent:
    """A legal asset registration of about 6 KiB: six metadata values of 1,000 characters."""
    asset_id = f"budget/{label}"
    return signer.event(
        "asset_registered",
        asset_id=asset_id,
        content_digest=hashlib.sha256(asset_id.encode()).digest(),
        classification=ledger_pb2.CLASSIFICATION_GENERAL,
        name=f"bulky dataset {label}",
        metadata={
            f"part-{j}": (f"{label}:{j}:" * METADATA_VALUE_CHARS)[:METADATA_VALUE_CHARS]
            for j in range(METADATA_ENTRIES)
        },
    )


def small_registration(signer: EventSigner, label: str) -> ledger_pb2.SignedEvent:
    asset_id = f"budget/after/{label}"
    return signer.event(
        "asset_registered",
        asset_id=asset_id,
        content_digest=hashlib.sha256(asset_id.encode()).digest(),
        classification=ledger_pb2.CLASSIFICATION_GENERAL,
    )


# --- talking to nodes -----------------------------------------------------------------------


def submit(address: str, events: Sequence[ledger_pb2.SignedEvent]) -> list[api_pb2.SubmitResult]:
    with client_channel(address) as channel:
        response = api_pb2_grpc.LedgerServiceStub(channel).SubmitEvents(
            api_pb2.SubmitEventsRequest(events=events), timeout=RPC_TIMEOUT_S
        )
    return list(response.results)


def log_size(node: NodeProcess) -> int:
    """How many events the node has committed (its latest checkpoint's log size)."""
    with client_channel(node.address) as channel:
        try:
            checkpoint = api_pb2_grpc.LedgerServiceStub(channel).GetCheckpoint(
                api_pb2.GetCheckpointRequest(), timeout=RPC_TIMEOUT_S
            )
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.FAILED_PRECONDITION:  # nothing committed yet
                return 0
            raise
    return blocks.decode_header(checkpoint.header).log_size


def event_location(node: NodeProcess, identifier: bytes) -> tuple[int, int] | None:
    """(height, log index) of a committed event on `node`, or None if it has not got it."""
    with client_channel(node.address) as channel:
        try:
            response = api_pb2_grpc.LedgerServiceStub(channel).GetEvent(
                api_pb2.GetEventRequest(event_id=identifier), timeout=RPC_TIMEOUT_S
            )
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise
    return response.height, response.log_index


def read_block(node: NodeProcess, height: int) -> ledger_pb2.Block:
    with client_channel(node.address) as channel:
        return (
            api_pb2_grpc.LedgerServiceStub(channel)
            .GetBlock(api_pb2.GetBlockRequest(height=height), timeout=RPC_TIMEOUT_S)
            .block
        )


def wait_committed_everywhere(
    cluster: NodeCluster, identifiers: Sequence[bytes], timeout_s: float
) -> dict[bytes, tuple[int, int]]:
    """Poll until every node has committed every event, each at the same place on all."""
    found: dict[tuple[str, bytes], tuple[int, int]] = {}

    def all_found() -> bool:
        for node in cluster:
            for identifier in identifiers:
                if (node.name, identifier) not in found:
                    location = event_location(node, identifier)
                    if location is None:
                        return False
                    found[node.name, identifier] = location
        return True

    wait_until(
        all_found,
        timeout_s,
        lambda: f"{len(found)} of {len(cluster) * len(identifiers)} (node, event) committed",
    )
    locations = {}
    for identifier in identifiers:
        places = {found[node.name, identifier] for node in cluster}
        assert len(places) == 1, f"event {identifier.hex()} is at {places} on different nodes"
        (locations[identifier],) = places
    return locations


def commit_fresh_events(cluster: NodeCluster, signers: dict[str, EventSigner], label: str) -> int:
    """Submit one small new event to each node; wait until every node committed all four;
    return the highest height they landed at."""
    identifiers = []
    for index, node in enumerate(cluster):
        signer = signers[AUTHORS[index % len(AUTHORS)]]
        [result] = submit(node.address, [small_registration(signer, f"{label}/{index}")])
        assert result.accepted, f"{node.name} refused a fresh event: {result.error}"
        identifiers.append(result.event_id)
    locations = wait_committed_everywhere(cluster, identifiers, COMMIT_TIMEOUT_S)
    return max(height for height, _ in locations.values())


def assert_alive(cluster: NodeCluster) -> None:
    """Every node runs, no consensus task failed, and no proposal was ever too big to send
    (the driver logs and drops one it cannot queue)."""
    for node in cluster:
        assert node.running, f"{node.name} stopped\n{node.log_tail()}"
        log = node.log_text()
        assert "consensus task failed" not in log, node.log_tail()
        assert "dropped the proposal" not in log, node.log_tail()


# --- what the attack left behind -------------------------------------------------------------


def plant_oversized_proposal(
    layout: ConsortiumLayout, genesis: Genesis, flood: Sequence[ledger_pb2.SignedEvent]
) -> tuple[str, int, int]:
    """With every node stopped: write into one validator's vote log the proposal the attack
    made it sign, 2,000 of the flood's events (over 12 MB) for the height after its head, in
    the first round it proposes in. One validator only: like the attack's proposer, and
    within the f = 1 faults the consortium tolerates. Returns (node index, height, round)."""
    validators = genesis.validator_set
    choices = []
    for index, config_path in enumerate(layout.node_configs):
        config = NodeConfig.load(config_path)
        store = Store(config.data_dir, genesis, create=False)
        tip = store.tip
        store.close()
        round_number = next(
            r
            for r in range(NODES)
            if consensus.proposer(validators, tip.height + 1, r) == config.node_id
        )
        choices.append((round_number, index, config, tip))
    round_number, index, config, tip = min(choices, key=lambda choice: choice[:2])
    node_id = config.node_id

    header = ledger_pb2.BlockHeader(
        chain_id=genesis.chain_id,
        height=tip.height + 1,
        previous_block_id=tip.block_id,
        time_ms=tip.time_ms + 1,
        proposer_id=node_id,
    )
    block = ledger_pb2.Block(
        header=blocks.encode_header(header), events=list(flood[:BLOCK_EVENTS_MAX])
    )
    assert block.ByteSize() > GRPC_MESSAGE_SIZE_BYTES_MAX  # the attack's 12.5 MB proposal
    proposal = peer_pb2.Proposal(
        height=tip.height + 1,
        round=round_number,
        pol_round=-1,
        block=block,
        proposer_id=node_id,
    )
    key, _ = load_key(config.validator_key_path)
    proposal.signature = key.sign(
        crypto.DOMAIN_PROPOSAL,
        consensus.proposal_sign_bytes(genesis.chain_id, proposal, blocks.block_id(block.header)),
    )
    store = Store(config.data_dir, genesis, create=False)
    try:
        store.save_signed(proposal, None)
    finally:
        store.close()
    return index, tip.height + 1, round_number


# --- the test ---------------------------------------------------------------------------------


def test_big_legal_events_never_halt_the_consortium_even_across_a_restart(tmp_path: Path):
    layout = init_consortium(tmp_path, nodes=NODES)
    genesis = parse_genesis(layout.genesis_path.read_bytes())
    signers = {m: EventSigner(Identity.load(layout.identities[m])) for m in AUTHORS}
    flood = [  # authors take turns; each signer's nonces count up, so none collide
        big_registration(signers[AUTHORS[number % len(AUTHORS)]], f"flood/{number}")
        for number in range(NODES * BATCH_EVENTS)
    ]
    sizes = [event.ByteSize() for event in flood]
    assert min(sizes) > 5_500 and max(sizes) < 6_500, (min(sizes), max(sizes))
    batches = [flood[k * BATCH_EVENTS : (k + 1) * BATCH_EVENTS] for k in range(NODES)]

    with NodeCluster.for_layout(layout, tmp_path) as cluster:
        cluster.wait_for_heights(1)
        before = {node.name: log_size(node) for node in cluster}

        # The flood: 1,000 big events to each node at once.
        with ThreadPoolExecutor(NODES) as pool:
            answers = list(
                pool.map(submit, [node.address for node in cluster], batches, timeout=None)
            )
        for node, results in zip(cluster, answers, strict=True):
            refused = [r for r in results if not r.accepted]
            assert not refused, f"{node.name} refused {len(refused)}: {refused[0].error}"

        # Every node commits all 4,000, in the same places, in blocks within the budget.
        latest: dict[str, int] = {}

        def flood_committed() -> bool:
            assert_alive(cluster)  # before the budget, a node died here within seconds
            latest.update({node.name: log_size(node) for node in cluster})
            return all(latest[n] >= before[n] + len(flood) for n in latest)

        wait_until(flood_committed, FLOOD_TIMEOUT_S, lambda: f"log sizes {latest}")
        assert_alive(cluster)
        samples = [event_id(event.body) for batch in batches for event in (batch[0], batch[-1])]
        locations = wait_committed_everywhere(cluster, samples, COMMIT_TIMEOUT_S)
        flood_top = max(height for height, _ in locations.values())
        carrying = 0
        for height in range(1, flood_top + 1):
            block = read_block(cluster[0], height)
            assert block.ByteSize() <= BLOCK_SIZE_BYTES_MAX, f"block {height}"
            carrying += bool(block.events)
        assert carrying >= math.ceil(sum(sizes) / BLOCK_SIZE_BYTES_MAX), carrying

        # And the chain moves on: new events commit on every node.
        after_flood = commit_fresh_events(cluster, signers, "after-flood")
        heights_before_stop = cluster.heights()
        assert_alive(cluster)

        # Stop all four by PID (SIGTERM): each stops gracefully.
        codes = cluster.stop()
        assert all(code == 0 for code in codes.values()), codes
        planted = plant_oversized_proposal(layout, genesis, flood)

        cluster.start()
        heights_at_restart = cluster.heights()
        after_restart = commit_fresh_events(cluster, signers, "after-restart")
        heights_after_restart = cluster.heights()
        assert_alive(cluster)
        index, height, round_number = planted
        withholder = cluster[index]
        assert f"{WITHHELD_LOG_LINE} {height} round {round_number}" in withholder.log_text(), (
            withholder.log_tail()
        )
        assert after_restart > after_flood
        assert all(
            heights_after_restart[name] > heights_before_stop[name] for name in heights_before_stop
        ), (heights_before_stop, heights_after_restart)
        print(
            f"\nflood committed by height {flood_top} in {carrying} blocks carrying events; "
            f"fresh events at height {after_flood}; heights before the stop "
            f"{heights_before_stop}; planted {planted}; heights at restart {heights_at_restart}; "
            f"fresh events after the restart at height {after_restart}; heights then "
            f"{heights_after_restart}"
        )

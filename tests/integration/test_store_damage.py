"""A damaged LevelDB folder on a real node: refused, named, repaired, never served with a hole.

Each damage is done to a stopped node's data folder, as a failing disk or a careless hand
would: (a) a byte flipped in the middle of the newest LevelDB `.log`, (b) a byte flipped in a
`.ldb` table (the folder is first compacted into uncompressed tables, so that the bytes of a
chosen record can be found), (c) the newest `.log` truncated, (d) a byte flipped in the
MANIFEST. For each, on a single node:
- `provledger node run` exits 1 before serving, with one line naming the damage and the hint
  to run `node check` and `node repair`;
- `provledger node check` exits 1 and names what is damaged (and the first bad height where
  one is known).
A table block the open-time window does not read (world-state records) lets the node start;
the first query that meets it is refused (never NOT_FOUND), the node stops itself, and it
refuses to start again. On a consortium of four, a node whose folder was damaged while it was
down is rebuilt by `provledger node repair` from its peers, and afterwards holds every event
the consortium acknowledged, at the same height and log index; `node check` then finds it
sound.

Every process is stopped by its PID. Nothing waits on time: each wait is on a condition, with
a generous limit.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import plyvel
import pytest
from support.processes import (
    NodeCluster,
    NodeProcess,
    client_channel,
    init_consortium,
    provledger_command,
    wait_until,
)

from provledger.cli.client import EventSigner, Identity
from provledger.cli.consortium import ConsortiumLayout
from provledger.node import schema
from provledger.node.config import NodeConfig
from provledger.protocol.events import event_id
from provledger.v1 import api_pb2, api_pb2_grpc, ledger_pb2

pytestmark = pytest.mark.integration

RPC_TIMEOUT_S = 30.0
CLI_TIMEOUT_S = 120.0
EXIT_TIMEOUT_S = 60.0
CATCH_UP_TIMEOUT_S = 90.0
EVENTS_PER_ROUND = 40
FILLER_ASSETS = 200  # world-state records enough to fill several LevelDB blocks
MEMBERS = ("agency-a", "agency-b", "exchange")
REFUSAL = "is damaged, so this node does not serve it"


@dataclasses.dataclass(frozen=True)
class Acknowledged:
    event_id: bytes
    height: int
    log_index: int


@dataclasses.dataclass
class Ledger:
    """A consortium folder and a client for it."""

    layout: ConsortiumLayout
    signers: dict[str, EventSigner]
    labels: Iterator[int] = dataclasses.field(default_factory=itertools.count)

    @classmethod
    def create(cls, tmp_path: Path, nodes: int) -> Ledger:
        layout = init_consortium(tmp_path, nodes=nodes)
        signers = {m: EventSigner(Identity.load(layout.identities[m])) for m in MEMBERS}
        return cls(layout, signers)

    def data_dir(self, index: int) -> Path:
        return NodeConfig.load(self.layout.node_configs[index]).data_dir

    def config(self, index: int) -> str:
        return str(self.layout.node_configs[index])

    def registration(self, member: str, asset_id: str | None = None) -> ledger_pb2.SignedEvent:
        number = next(self.labels)
        return self.signers[member].event(
            "asset_registered",
            asset_id=asset_id or f"damage/{member}/{number}",
            content_digest=hashlib.sha256(f"damage/{number}".encode()).digest(),
            classification=ledger_pb2.CLASSIFICATION_GENERAL,
        )

    def commit(self, address: str, events: list[ledger_pb2.SignedEvent]) -> list[Acknowledged]:
        """Submit `events` at once and wait for every receipt: the acknowledged events."""
        with client_channel(address) as channel:
            stub = api_pb2_grpc.LedgerServiceStub(channel)
            futures = [
                stub.SubmitAndWait.future(
                    api_pb2.SubmitAndWaitRequest(event=signed), timeout=RPC_TIMEOUT_S
                )
                for signed in events
            ]
            receipts = [future.result() for future in futures]
        return [
            Acknowledged(event_id(signed.body), receipt.height, receipt.log_index)
            for signed, receipt in zip(events, receipts, strict=True)
        ]

    def commit_some(self, address: str, count: int = EVENTS_PER_ROUND) -> list[Acknowledged]:
        members = itertools.cycle(MEMBERS)
        return self.commit(address, [self.registration(next(members)) for _ in range(count)])


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*provledger_command(), *args],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )


def node_check(ledger: Ledger, index: int) -> subprocess.CompletedProcess[str]:
    return run_cli("node", "check", "--config", ledger.config(index))


def start_refused(node: NodeProcess) -> str:
    """Start the node and see it exit 1 without serving; what it printed this time."""
    before = len(node.log_text())
    node.start(wait=False)
    wait_until(lambda: not node.running, EXIT_TIMEOUT_S, lambda: node.log_tail())
    code = node.stop()
    text = node.log_text()[before:]
    assert code == 1, f"exit code {code}\n{text}"
    assert "serving gRPC" not in text, text
    return text


def assert_refusal(text: str, ledger: Ledger, index: int, damage: str) -> None:
    lines = [line for line in text.splitlines() if line.startswith("provledger: ")]
    assert len(lines) == 1, text  # one line, then the hint on the next
    assert REFUSAL in lines[0] and damage in lines[0], text
    hint = text.splitlines()[text.splitlines().index(lines[0]) + 1]
    config = ledger.config(index)
    assert f"provledger node check --config {config}" in hint, text
    assert f"provledger node repair --config {config}" in hint, text
    assert "Traceback" not in text, text


def assert_events_held(address: str, acknowledged: list[Acknowledged]) -> None:
    """Every acknowledged event is served, at the height and log index of its receipt."""
    with client_channel(address) as channel:
        stub = api_pb2_grpc.LedgerServiceStub(channel)
        for event in acknowledged:
            found = stub.GetEvent(
                api_pb2.GetEventRequest(event_id=event.event_id), timeout=RPC_TIMEOUT_S
            )
            assert (found.event_id, found.height, found.log_index) == (
                event.event_id,
                event.height,
                event.log_index,
            )


# --- ways to damage a stopped node's folder -----------------------------------------------------


def newest_log(data_dir: Path) -> Path:
    return max(data_dir.glob("*.log"), key=lambda path: int(path.stem))


def flip_byte(path: Path, offset: int) -> None:
    with path.open("r+b") as file:
        file.seek(offset)
        byte = file.read(1)
        file.seek(offset)
        file.write(bytes([byte[0] ^ 0x55]))


def flip_in_newest_log(data_dir: Path) -> None:
    log_file = newest_log(data_dir)
    flip_byte(log_file, log_file.stat().st_size // 2)


def truncate_newest_log(data_dir: Path) -> None:
    """Cut the newest .log to half: LevelDB reads a cut record as a crash in mid-write."""
    log_file = newest_log(data_dir)
    os.truncate(log_file, log_file.stat().st_size // 2)


def flip_in_manifest(data_dir: Path) -> None:
    (manifest,) = data_dir.glob("MANIFEST-*")
    flip_byte(manifest, manifest.stat().st_size // 2)


def flip_in_table(data_dir: Path, key: Callable[[plyvel.DB], bytes]) -> bytes:
    """Compact the folder into uncompressed tables, then flip a byte in the middle of the
    value stored under `key(db)`, where a table holds it; return that key."""
    db = plyvel.DB(str(data_dir), compression=None)
    try:
        chosen = key(db)
        value = db.get(chosen)
        db.compact_range()
    finally:
        db.close()
    for table in data_dir.glob("*.ldb"):
        offset = table.read_bytes().find(value)
        if offset >= 0:
            flip_byte(table, offset + len(value) // 2)
            return chosen
    raise AssertionError(f"no table holds the value of {schema.describe_key(chosen)}")


def head_block_key(db: plyvel.DB) -> bytes:
    return schema.block_key(schema.decode_number(db.get(schema.META_HEAD_HEIGHT)))


# --- one node: refused and named --------------------------------------------------------------


@pytest.fixture
def single(tmp_path: Path) -> Iterator[tuple[Ledger, NodeProcess]]:
    ledger = Ledger.create(tmp_path, nodes=1)
    node = NodeProcess.for_node(ledger.layout, 0, tmp_path)
    try:
        node.start()
        ledger.commit_some(node.address)
        node.stop()
        yield ledger, node
    finally:
        node.stop()


@pytest.mark.parametrize(
    ("damage", "refusal", "named"),
    [
        pytest.param(
            flip_in_newest_log,
            ".log is damaged, LevelDB reports: dropping",
            "examined on a copy salvaged",
            id="a-log-byte",
        ),
        pytest.param(
            lambda data_dir: flip_in_table(data_dir, head_block_key),
            "LevelDB cannot read block",
            "block checksum mismatch",
            id="b-table-byte",
        ),
        pytest.param(
            truncate_newest_log,
            "LevelDB lost committed blocks",
            "but this node committed up to block",
            id="c-log-truncated",
        ),
        pytest.param(
            flip_in_manifest,
            "the MANIFEST, LevelDB's list of its files, is damaged",
            "the MANIFEST, LevelDB's list of its files, is damaged",
            id="d-manifest-byte",
        ),
    ],
)
def test_a_damaged_folder_is_refused_and_named(single, damage, refusal, named):
    ledger, node = single
    damage(ledger.data_dir(0))

    text = start_refused(node)
    assert_refusal(text, ledger, 0, refusal)

    checked = node_check(ledger, 0)
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert named in checked.stdout, checked.stdout
    assert "DAMAGED" in checked.stdout, checked.stdout
    assert "provledger: the ledger in" in checked.stderr and "node repair" in checked.stderr
    assert "Traceback" not in checked.stderr, checked.stderr
    # Refused again: the damage does not go away by itself.
    assert_refusal(start_refused(node), ledger, 0, refusal)


def test_a_first_bad_height_is_named_for_lost_blocks(single):
    ledger, _ = single
    witness = schema.decode_head_witness(
        (ledger.data_dir(0) / schema.HEAD_WITNESS_FILE).read_bytes()
    )
    assert witness is not None
    truncate_newest_log(ledger.data_dir(0))
    checked = node_check(ledger, 0)
    assert checked.returncode == 1
    assert f"committed up to {witness[0]}" in checked.stdout
    assert "first bad height" in checked.stdout, checked.stdout


def test_a_sound_folder_checks_sound(single):
    ledger, _ = single
    checked = node_check(ledger, 0)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.splitlines()[-1].startswith("sound: blocks 1-")
    assert "checked block" in checked.stderr  # progress


def test_a_damaged_table_outside_the_window_is_refused_when_met(tmp_path):
    """World-state records are not read at open: the node starts. The first query that meets
    the damaged block is refused (never NOT_FOUND), the node stops, and stays refused."""
    ledger = Ledger.create(tmp_path, nodes=1)
    node = NodeProcess.for_node(ledger.layout, 0, tmp_path)
    target = "filler/100"
    try:
        node.start()
        ledger.commit(
            node.address,
            [ledger.registration("agency-a", f"filler/{n:03}") for n in range(FILLER_ASSETS)],
        )
        node.stop()
        flip_in_table(ledger.data_dir(0), lambda db: schema.state_key("asset", target))
        node.start()
        with client_channel(node.address) as channel:
            stub = api_pb2_grpc.LedgerServiceStub(channel)
            with pytest.raises(grpc.RpcError) as refused:
                stub.GetAsset(api_pb2.GetAssetRequest(asset_id=target), timeout=RPC_TIMEOUT_S)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, refused.value
        assert refused.value.details().startswith("store_damaged: ")
        wait_until(lambda: not node.running, EXIT_TIMEOUT_S, lambda: node.log_tail())
        assert node.stop() == 1
        assert REFUSAL in node.log_text() and "world-state record asset/" in node.log_text()
        text = start_refused(node)
        assert_refusal(text, ledger, 0, "this node found damage while it served")
        checked = node_check(ledger, 0)
        assert checked.returncode == 1
        assert "block checksum mismatch" in checked.stdout
        assert "first bad height" in checked.stdout
    finally:
        node.stop()


# --- a consortium: repaired from the peers --------------------------------------------------------


def test_a_damaged_node_is_repaired_from_its_peers(tmp_path):
    ledger = Ledger.create(tmp_path, nodes=4)
    cluster = NodeCluster.for_layout(ledger.layout, tmp_path)
    try:
        cluster.start()
        acknowledged = ledger.commit_some(cluster[0].address)
        in_use = node_check(ledger, 0)
        assert in_use.returncode == 1 and "in use by another process" in in_use.stderr
        for index, damage in ((3, flip_in_newest_log), (2, truncate_newest_log)):
            node = cluster[index]
            acknowledged += ledger.commit_some(node.address)
            node.stop()
            damage(ledger.data_dir(index))
            # The other three still commit; node `index` refuses to serve meanwhile.
            acknowledged += ledger.commit_some(cluster[(index + 1) % 4].address)
            start_refused(node)
            assert node_check(ledger, index).returncode == 1

            repaired = run_cli("node", "repair", "--config", ledger.config(index))
            assert repaired.returncode == 0, repaired.stdout + repaired.stderr
            summary = repaired.stdout.splitlines()[-1]
            assert summary.startswith("repaired: blocks 1-"), repaired.stdout
            assert "fetched from peers" in summary and "from node-" in summary, summary
            assert ledger.data_dir(index).with_name("data.damaged-1").is_dir()

            checked = node_check(ledger, index)
            assert checked.returncode == 0, checked.stdout + checked.stderr
            node.start()
            heights = cluster.wait_for_heights(max(a.height for a in acknowledged), [node])
            assert heights
            assert_events_held(node.address, acknowledged)
            acknowledged += ledger.commit_some(node.address)  # it takes part again
        cluster.wait_for_heights(max(a.height for a in acknowledged), timeout_s=CATCH_UP_TIMEOUT_S)
        for node in cluster:
            assert_events_held(node.address, acknowledged)
    finally:
        cluster.stop()

"""`provledger node backup` / `node restore` / `node check` on a real 4-node consortium.

Node 0 is backed up online, through its admin socket, while events are being submitted to it;
node 3 is stopped and its data folder replaced by the backup (`--force` moves the old one
aside); `node check` finds the restored ledger sound; its checkpoint at the backup's height is
the source's; the restored node starts and catches up with the consortium. A truncated backup
and one with a flipped byte are refused by `node restore` (the data folder left as it was) and
by `node verify-backup`, which passes the whole file; a backup asked of a node that is not
running says so. A node configured with the admin socket another node serves refuses to start.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import stat
import subprocess
import threading
from pathlib import Path

import pytest
from support.processes import (
    NodeCluster,
    client_channel,
    init_consortium,
    provledger_command,
)

from provledger.cli.client import EventSigner, Identity
from provledger.node.backup import BackupReader
from provledger.node.config import NodeConfig
from provledger.protocol.blocks import decode_header
from provledger.v1 import api_pb2, api_pb2_grpc, ledger_pb2

pytestmark = pytest.mark.integration

RPC_TIMEOUT_S = 30.0
CLI_TIMEOUT_S = 180.0
CATCH_UP_TIMEOUT_S = 90.0
EVENTS_BEFORE = 120
MEMBERS = ("agency-a", "agency-b")


class Load:
    """Events submitted to one node, one after another, from a thread, until stopped."""

    def __init__(self, layout, address: str) -> None:
        self.signers = {m: EventSigner(Identity.load(layout.identities[m])) for m in MEMBERS}
        self.address = address
        self.labels = itertools.count()
        self.committed = 0
        self.errors: list[Exception] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def event(self) -> ledger_pb2.SignedEvent:
        number = next(self.labels)
        member = MEMBERS[number % len(MEMBERS)]
        return self.signers[member].event(
            "asset_registered",
            asset_id=f"backup/{member}/{number}",
            content_digest=hashlib.sha256(f"backup/{number}".encode()).digest(),
            classification=ledger_pb2.CLASSIFICATION_GENERAL,
        )

    def submit(self, count: int) -> None:
        with client_channel(self.address) as channel:
            stub = api_pb2_grpc.LedgerServiceStub(channel)
            futures = [
                stub.SubmitAndWait.future(
                    api_pb2.SubmitAndWaitRequest(event=self.event()), timeout=RPC_TIMEOUT_S
                )
                for _ in range(count)
            ]
            for future in futures:
                future.result()
                self.committed += 1

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self.submit(10)
        except Exception as error:  # reported by stop()
            self.errors.append(error)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(RPC_TIMEOUT_S * 2)
        assert not self._thread.is_alive()
        assert not self.errors, self.errors


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*provledger_command(), *args],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )


def checkpoint_at(address: str, height: int) -> ledger_pb2.Checkpoint:
    with client_channel(address) as channel:
        stub = api_pb2_grpc.LedgerServiceStub(channel)
        answer = stub.GetCheckpoint(
            api_pb2.GetCheckpointRequest(height=height), timeout=RPC_TIMEOUT_S
        )
    return ledger_pb2.Checkpoint(header=answer.header, certificate=answer.certificate)


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_backup_under_load_restores_a_node_that_checks_and_catches_up(tmp_path):
    layout = init_consortium(tmp_path, nodes=4)
    configs = [str(c) for c in layout.node_configs]
    source_config = NodeConfig.load(configs[0])
    target_data = NodeConfig.load(configs[3]).data_dir
    backup_file = tmp_path / "node-0.backup"

    cluster = NodeCluster.for_layout(layout, tmp_path)
    with cluster:
        load = Load(layout, cluster[0].address)
        load.submit(EVENTS_BEFORE)
        mode = stat.S_IMODE(os.stat(source_config.admin_socket).st_mode)  # type: ignore[arg-type]
        assert mode == 0o600

        # Online, under load: events keep being committed while the backup streams.
        load.start()
        committed_before = load.committed
        backed_up = run_cli("node", "backup", "--config", configs[0], "--out", str(backup_file))
        load.submit(10)  # the load goes on after the backup, and the consortium with it
        load.stop()
        assert backed_up.returncode == 0, backed_up.stdout + backed_up.stderr
        assert load.committed > committed_before
        assert "100% backed up entry" in backed_up.stderr  # progress, not on a terminal
        with backup_file.open("rb") as file:
            header = BackupReader(file).header()
        height = header.height
        assert height > 0 and header.node_id == source_config.node_id
        assert f"height {height}" in backed_up.stdout
        assert checkpoint_at(cluster[0].address, height) == header.checkpoint

        # Refusals leave node 3's folder as it was (it is stopped, so it does not change).
        cluster[3].stop()
        # A node never takes over the admin socket another node serves.
        shared = Path(configs[3]).with_name("shared-socket.toml")
        socket_path = source_config.admin_socket
        shared.write_text(Path(configs[3]).read_text() + f'\n[admin]\nsocket = "{socket_path}"\n')
        taken = run_cli("node", "run", "--config", str(shared))
        assert taken.returncode == 1, taken.stdout + taken.stderr
        assert "another process serves the admin socket" in taken.stderr, taken.stderr
        assert "Traceback" not in taken.stderr
        before = files_of(target_data)
        whole = backup_file.read_bytes()
        truncated = tmp_path / "truncated.backup"
        truncated.write_bytes(whole[: len(whole) // 2])
        flipped = tmp_path / "flipped.backup"
        middle = len(whole) // 3  # inside a chunk
        flipped.write_bytes(whole[:middle] + bytes([whole[middle] ^ 1]) + whole[middle + 1 :])
        for bad, words in ((truncated, "truncated"), (flipped, "SHA-256")):
            answer = run_cli("node", "restore", str(bad), "--config", configs[3], "--force")
            assert answer.returncode == 1, answer.stdout + answer.stderr
            assert words in answer.stderr and "not restored" in answer.stderr, answer.stderr
            assert "Traceback" not in answer.stderr
            assert files_of(target_data) == before
            verified = run_cli("node", "verify-backup", str(bad), "--config", configs[3])
            assert verified.returncode == 1 and words in verified.stderr, verified.stderr
        verified = run_cli(
            "node", "verify-backup", str(backup_file), "--config", configs[3], "--json"
        )
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert json.loads(verified.stdout)["height"] == height
        not_empty = run_cli("node", "restore", str(backup_file), "--config", configs[3])
        assert not_empty.returncode == 1 and "folder_not_empty" in not_empty.stderr

        # The restore, then the whole-chain check.
        restored = run_cli("node", "restore", str(backup_file), "--config", configs[3], "--force")
        assert restored.returncode == 0, restored.stdout + restored.stderr
        assert "100% restored entry" in restored.stderr
        assert f"{target_data.name}.before-restore-1" in restored.stdout
        checked = run_cli("node", "check", "--config", configs[3])
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert checked.stdout.splitlines()[-1].startswith(f"sound: blocks 1-{height} ")
        assert "100% checked block" in checked.stderr

        # The restored node serves the source's checkpoint at H and catches up.
        cluster[3].start()
        assert checkpoint_at(cluster[3].address, height) == header.checkpoint
        target = cluster.heights([cluster[0]])["node-0"]
        cluster.wait_for_heights(target, [cluster[3]], timeout_s=CATCH_UP_TIMEOUT_S)
        assert decode_header(checkpoint_at(cluster[3].address, target).header).height == target
        assert checkpoint_at(cluster[3].address, target) == checkpoint_at(
            cluster[0].address, target
        )

    # A backup asked of a stopped node says what is wrong.
    refused = run_cli("node", "backup", "--config", configs[0], "--out", str(tmp_path / "x"))
    assert refused.returncode == 1
    assert "is the node running?" in refused.stderr, refused.stderr
    assert not (tmp_path / "x").exists()

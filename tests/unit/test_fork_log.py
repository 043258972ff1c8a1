"""node/forks.py: a node compares its peers' checkpoints with its own chain (a real LevelDB
store holding blocks of the deterministic consortium). A quorum-signed block at a height it
committed differently is a fork: kept once, logged as an ERROR naming the height and the peer,
bounded; anything else (its own block, a height above its head, a checkpoint no quorum signed)
is not. Its REST API says so: /v1/health for anyone, /v1/forks and the proof for auditors.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from support.memory_state import GENESIS_TIME_MS, Consortium

from provledger.node import forks as forks_module
from provledger.node.forks import ForkLog
from provledger.node.rest import StoreView, create_app
from provledger.node.store import Store
from provledger.protocol import blocks
from provledger.protocol.fork_proof import verify_fork_proof
from provledger.protocol.tokens import issue_token
from provledger.v1 import ledger_pb2

NOW_MS = GENESIS_TIME_MS + 100_000
HEIGHTS = 3
TOKEN_TTL_MS = 3_600_000


@dataclass
class Node:
    consortium: Consortium
    store: Store
    log: ForkLog

    def forged(
        self, height: int, signers: tuple[str, ...] | None = None, shift_ms: int = 1
    ) -> ledger_pb2.Checkpoint:
        """Another block at `height` (its time shifted), signed by `signers` (default all)."""
        header = blocks.decode_header(self.store.checkpoint(height).header)  # type: ignore[union-attr]
        header.time_ms += shift_ms
        header_bytes = blocks.encode_header(header)
        identifier = blocks.block_id(header_bytes)
        keys = self.consortium.validator_keys
        return ledger_pb2.Checkpoint(
            header=header_bytes,
            certificate=ledger_pb2.CommitCertificate(
                height=height,
                block_id=identifier,
                signatures=[
                    ledger_pb2.CommitSignature(
                        validator_id=v,
                        signature=blocks.sign_precommit(
                            keys[v], self.consortium.chain_id, height, 0, identifier
                        ),
                    )
                    for v in (signers or tuple(keys))
                ],
            ),
        )

    def headers(self, member_id: str) -> dict[str, str]:
        role = "auditor" if member_id == "auditor" else "member"
        key = self.consortium[member_id].key
        token = issue_token(
            key, member_id, role, self.consortium.chain_id, NOW_MS - 1_000, TOKEN_TTL_MS
        )
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    consortium = Consortium()
    store = Store(tmp_path / "ledger", consortium.genesis)
    last_commit = None
    for height in range(1, HEIGHTS + 1):
        executed = blocks.execute_block(
            state=store,
            log=store.log,
            tip=store.tip,
            chain_id=consortium.chain_id,
            candidates=[],
            time_ms=GENESIS_TIME_MS + height * 1_000,
            proposer_id="validator-0",
            validators=consortium.genesis.validator_set,
            last_commit=last_commit,
            strict=True,
        )
        last_commit = consortium.certificate(executed)
        store.commit_block(executed, last_commit)
    try:
        yield Node(
            consortium, store, ForkLog(store, consortium.genesis, "validator-0", lambda: NOW_MS)
        )
    finally:
        store.close()


def test_a_quorum_signed_block_at_a_committed_height_is_a_fork_kept_once(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    forged = node.forged(2)
    with caplog.at_level(logging.ERROR, "provledger.forks"):
        seen = node.log.observe("validator-3", forged)
        assert node.log.observe("validator-2", forged) is None  # the same block again
    assert seen is not None and seen.height == 2 and seen.peer_id == "validator-3"
    assert node.log.count() == 1 and node.log.forks() == [seen]
    verified = verify_fork_proof(seen.proof_file, node.consortium.genesis)
    assert verified.second_block_id == blocks.block_id(forged.header)
    assert verified.proof.second.source == "peer validator-3"
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "FORK at height 2" in record.getMessage()
    assert "peer validator-3" in record.getMessage()


def test_its_own_blocks_and_heights_above_its_head_are_no_fork(node: Node) -> None:
    for height in range(1, HEIGHTS + 1):
        assert node.log.observe("validator-1", node.store.checkpoint(height)) is None  # type: ignore[arg-type]
    assert node.log.observe("validator-1", ledger_pb2.Checkpoint()) is None  # height 0
    above = node.forged(HEIGHTS)
    header = blocks.decode_header(above.header)
    header.height = HEIGHTS + 1
    beyond = ledger_pb2.Checkpoint(header=blocks.encode_header(header))
    assert node.log.observe("validator-1", beyond) is None
    assert node.log.observe("validator-1", ledger_pb2.Checkpoint(header=b"\xff")) is None
    assert node.log.count() == 0


def test_a_conflicting_checkpoint_no_quorum_signed_is_refused_once(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    unsigned = node.forged(2, signers=("validator-0", "validator-1"))
    with caplog.at_level(logging.WARNING, "provledger.forks"):
        assert node.log.observe("validator-1", unsigned) is None
        assert node.log.observe("validator-1", unsigned) is None  # not checked again
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "not quorum-signed" in warnings[0].getMessage()
    assert node.log.count() == 0


def test_the_forks_kept_are_bounded_and_the_rest_counted(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(forks_module, "FORKS_KEPT_MAX", 2)
    for shift_ms in (1, 2, 3, 3):
        node.log.observe("validator-3", node.forged(2, shift_ms=shift_ms))
    assert [seen.number for seen in node.log.forks()] == [1, 2]
    assert node.log.not_kept == 1 and node.log.count() == 3


def test_rest_health_says_a_fork_was_seen_and_auditors_get_its_proof(node: Node) -> None:
    view = StoreView(node.store, node.consortium.genesis, "validator-0", lambda: NOW_MS, node.log)
    with TestClient(create_app(view)) as client:
        assert client.get("/v1/health").json() == {"status": "ok", "forks_seen": 0}
        assert client.get("/v1/forks", headers=node.headers("auditor")).json() == {
            "items": [],
            "not_kept": 0,
        }
        node.log.observe("validator-3", node.forged(2))
        assert client.get("/v1/health").json() == {"status": "fork_seen", "forks_seen": 1}
        listed = client.get("/v1/forks", headers=node.headers("auditor")).json()
        (fork,) = listed["items"]
        assert (fork["number"], fork["height"], fork["peer_id"]) == (1, 2, "validator-3")
        assert fork["kind"] == "same_height"
        assert fork["equivocators"] == list(node.consortium.validator_keys)
        proof = client.get("/v1/forks/1", headers=node.headers("auditor"))
        assert proof.status_code == 200
        assert verify_fork_proof(proof.content, node.consortium.genesis).equivocators
        assert client.get("/v1/forks/2", headers=node.headers("auditor")).status_code == 404
        for path in ("/v1/forks", "/v1/forks/1"):
            assert client.get(path, headers=node.headers("agency-a")).status_code == 403
            assert client.get(path).status_code == 401

"""node/forks.py: a node compares its peers' checkpoints with its own chain (a real LevelDB
store holding blocks of the deterministic consortium). A quorum-signed block at a height it
committed differently is a fork: kept once, logged as an ERROR naming the height and the peer,
bounded; anything else (its own block, a height above its head, a checkpoint no quorum signed)
is not. Its REST API says so: /v1/health for anyone, /v1/forks and the proof for auditors.

After validator-set changes, a peer's checkpoint is checked with the sets of the node's own
chain at its height: a fork by the set of that height is seen, with a proof whose walks verify
from the genesis; a checkpoint of a set that no longer signs that height is refused.

And the consequence (ADR 014): the equivocators of a one-round fork go to the evidence pool;
a block that records evidence marks its validator in the ledger state, for good, with the
heights, and /v1/status shows the mark.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from support.memory_state import GENESIS_TIME_MS, Consortium
from support.validator_changes import Chain as VChain
from support.validator_changes import changed_chain

from provledger.node import forks as forks_module
from provledger.node.forks import ForkLog
from provledger.node.rest import StoreView, create_app
from provledger.node.store import Store
from provledger.protocol import blocks, merkle
from provledger.protocol.errors import Rejected
from provledger.protocol.fork_proof import verify_fork_proof
from provledger.protocol.tokens import issue_token
from provledger.protocol.votes import make_evidence, sign_vote, verify_evidence
from provledger.v1 import ledger_pb2, state_pb2

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


def commit_empty_block(
    store: Store, consortium: Consortium, evidence: list[ledger_pb2.Evidence] | None = None
) -> blocks.ExecutedBlock:
    """The next block, with no events and `evidence`, committed as a node commits it."""
    height = store.head_height + 1
    stored = store.block(height - 1) if height > 1 else None
    executed = blocks.execute_block(
        state=store,
        log=store.log,
        tip=store.tip,
        chain_id=consortium.chain_id,
        candidates=[],
        time_ms=GENESIS_TIME_MS + height * 1_000,
        proposer_id="validator-0",
        genesis_validators=consortium.genesis.validator_set,
        last_commit=stored[1] if stored is not None else None,
        strict=True,
        evidence=evidence or [],
    )
    store.commit_block(executed, consortium.certificate(executed))
    return executed


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    consortium = Consortium()
    store = Store(tmp_path / "ledger", consortium.genesis)
    for _ in range(HEIGHTS):
        commit_empty_block(store, consortium)
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


# --- the consequence: evidence, then the mark ----------------------------------------------


def test_the_equivocators_of_a_one_round_fork_go_to_the_evidence_pool(node: Node) -> None:
    reported: list[ledger_pb2.Evidence] = []
    log = ForkLog(
        node.store, node.consortium.genesis, "validator-0", lambda: NOW_MS, reported.append
    )
    log.observe(
        "validator-3", node.forged(2, signers=("validator-1", "validator-2", "validator-3"))
    )
    assert [e.first.validator_id for e in reported] == ["validator-1", "validator-2", "validator-3"]
    genesis = node.consortium.genesis
    assert all(verify_evidence(genesis.chain_id, genesis.validator_set, e) for e in reported)
    assert {e.first.height for e in reported} == {2}


def test_recorded_evidence_marks_its_validator_for_good_and_status_shows_it(node: Node) -> None:
    reported: list[ledger_pb2.Evidence] = []
    log = ForkLog(
        node.store, node.consortium.genesis, "validator-0", lambda: NOW_MS, reported.append
    )
    log.observe(
        "validator-3", node.forged(2, signers=("validator-1", "validator-2", "validator-3"))
    )
    once = node.forged(1, signers=("validator-1", "validator-2", "validator-3"))
    log.observe("validator-3", once)
    by_height = sorted(reported, key=lambda e: (e.first.validator_id, e.first.height))
    executed = commit_empty_block(node.store, node.consortium, [by_height[0]])  # v-1 at height 1
    assert ("equivocator", "validator-1") in {(w.kind, w.record_id) for w in executed.writes}
    commit_empty_block(node.store, node.consortium, by_height[1:])  # the other five
    commit_empty_block(node.store, node.consortium)  # a later block changes nothing
    marked = node.store.load("equivocator", "validator-1")
    assert isinstance(marked, state_pb2.EquivocatorRecord)
    assert marked.equivocations == 2
    assert [(e.height, e.recorded_at_height) for e in marked.listed] == [
        (1, HEIGHTS + 1),
        (2, HEIGHTS + 2),
    ]
    assert node.store.load("equivocator", "validator-0") is None
    # Recorded once: the same evidence again makes the block invalid.
    with pytest.raises(Rejected) as caught:
        commit_empty_block(node.store, node.consortium, [by_height[0]])
    assert caught.value.code == "duplicate_evidence"
    view = StoreView(node.store, node.consortium.genesis, "validator-0", lambda: NOW_MS)
    with TestClient(create_app(view)) as client:
        status = client.get("/v1/status", headers=node.headers("auditor")).json()
    validators = {v["validator_id"]: v for v in status["validators"]}
    assert validators["validator-0"]["equivocations"] == 0
    assert validators["validator-0"]["equivocated"] == []
    assert validators["validator-1"]["equivocations"] == 2
    assert validators["validator-1"]["equivocated"][1] == {
        "height": 2,
        "round": 0,
        "vote_type": "precommit",
        "evidence_key": "validator-1/2/0/2",
        "recorded_at_height": HEIGHTS + 2,
    }


def test_an_equivocators_record_lists_a_bounded_number_and_counts_all(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from provledger.protocol import blocks as blocks_module

    monkeypatch.setattr(blocks_module, "EQUIVOCATIONS_LISTED_MAX", 2)
    consortium = Consortium()
    state = consortium.state()
    key = consortium.validator_keys["validator-1"]
    evidence = []
    for round_number in range(3):
        votes = []
        for block in (b"\x01" * 32, b"\x02" * 32):
            vote = ledger_pb2.Vote(
                type=ledger_pb2.VOTE_TYPE_PREVOTE,
                height=1,
                round=round_number,
                block_id=block,
                validator_id="validator-1",
            )
            vote.signature = sign_vote(key, consortium.chain_id, vote)
            votes.append(vote)
        evidence.append(make_evidence(*votes))
    executed = blocks.execute_block(
        state=state,
        log=merkle.CompactRange(),
        tip=blocks.genesis_tip(consortium.genesis),
        chain_id=consortium.chain_id,
        candidates=[],
        time_ms=GENESIS_TIME_MS + 1_000,
        proposer_id="validator-0",
        genesis_validators=consortium.genesis.validator_set,
        last_commit=None,
        strict=True,
        evidence=evidence,
    )
    (marked,) = [w.record for w in executed.writes if w.kind == "equivocator"]
    assert isinstance(marked, state_pb2.EquivocatorRecord)
    assert marked.equivocations == 3 and [e.round for e in marked.listed] == [0, 1]


# --- after validator-set changes -----------------------------------------------------------
# Blocks 1-7 (tests/support/validator_changes.py): validator-4 added at 1 (signs from 3),
# validator-0 removed at 4 (signs from 6). The node checks a peer's checkpoint with the sets
# of its own chain at that height.


@pytest.fixture
def changed(tmp_path: Path) -> Iterator[VChain]:
    consortium = Consortium()
    leader = Store(tmp_path / "leader", consortium.genesis)
    follower = Store(tmp_path / "follower", consortium.genesis)
    yield changed_chain(consortium, leader, follower)
    leader.close()
    follower.close()


def test_a_fork_after_validator_set_changes_is_seen_with_the_nodes_own_sets(
    changed: VChain,
) -> None:
    genesis = changed.genesis
    store: Store = changed.leader.store  # type: ignore[assignment]
    reported: list[ledger_pb2.Evidence] = []
    log = ForkLog(store, genesis, "validator-1", lambda: NOW_MS, reported.append)
    for height in (2, 4, 7):  # its own blocks, of the genesis set, of five, of the last four
        assert log.observe("validator-2", changed.checkpoint(height)) is None
    after = changed.leader.validator_set(7)
    seen = log.observe("validator-2", changed.forged(7))
    assert seen is not None and seen.height == 7
    verified = verify_fork_proof(seen.proof_file, genesis)  # from the genesis, by the walks
    assert verified.first_validators == verified.second_validators == after
    names = ("validator-1", "validator-2", "validator-3", "validator-4")
    assert verified.equivocators == names
    assert [e.first.validator_id for e in reported] == list(names)
    assert all(verify_evidence(genesis.chain_id, after, e) for e in reported)
    # At a height the five signed, a quorum of the five is a fork too.
    five = changed.signers(4)
    assert log.observe("validator-2", changed.forged(4, five[1:])) is not None
    assert log.count() == 2


def test_a_checkpoint_of_a_set_that_no_longer_signs_that_height_is_refused(
    changed: VChain, caplog: pytest.LogCaptureFixture
) -> None:
    """The genesis set, validator-0 included, signs a second block 7 whose header names it:
    on this node's chain that set stopped signing at height 6, so it is not a fork here."""
    genesis = changed.genesis
    log = ForkLog(changed.leader.store, genesis, "validator-1", lambda: NOW_MS)  # type: ignore[arg-type]
    stale = changed.forged(
        7,
        ("validator-0", "validator-1", "validator-2", "validator-3"),
        validators_hash=genesis.validator_set.hash(),
    )
    with caplog.at_level(logging.WARNING, "provledger.forks"):
        assert log.observe("validator-0", stale) is None
    assert log.count() == 0
    assert any("not quorum-signed" in r.getMessage() for r in caplog.records)
    # The same signers at height 2, where the genesis set signs, are a fork.
    assert log.observe("validator-0", changed.forged(2)) is not None

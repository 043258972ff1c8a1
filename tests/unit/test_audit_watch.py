"""cli/audit.py: `audit watch`'s comparisons over fake nodes that serve the checkpoints and
proofs of two forked in-memory chains (tests/support/forked_chains.py), its state file, and
its exit codes. Honest nodes at any heights agree; a node on the other chain, now or since the
last run, is a fork with a proof that verifies; answers that do not verify are reported as
incomplete, never as a fork. After validator-set changes, each checkpoint is verified with the
walk of the validator sets its node serves: honest nodes agree, a fork is caught, and a forged
walk is incomplete."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.forked_chains import FORK_HEIGHT, Chain, ForkedChains, forked_chains
from support.memory_state import Consortium
from support.validator_changes import Chain as VChain
from support.validator_changes import changed_chain

from provledger.cli import audit
from provledger.cli.main import main
from provledger.cli.output import CommandError
from provledger.node.store import Store
from provledger.node.walks import validator_chain
from provledger.protocol.blocks import block_id
from provledger.protocol.evidence import encode_canonical
from provledger.protocol.fork_proof import (
    INCONSISTENT_LOGS,
    SAME_HEIGHT,
    ForkProof,
    Sighting,
    encode_fork_proof,
    verify_fork_proof,
)
from provledger.protocol.genesis import canonical_json
from provledger.v1 import api_pb2, ledger_pb2


class FakeNode:
    """A node at `height` of `chain`; `lie` replaces parts of its consistency answers."""

    def __init__(self, address: str, chain: Chain | None, height: int = 0, **lie) -> None:
        self.address = address
        self.chain = chain
        self.height = height
        self.lie = lie
        self.asked: list[tuple[int, int]] = []

    def latest_checkpoint(self) -> tuple[ledger_pb2.Checkpoint, ledger_pb2.ValidatorChain] | None:
        if self.chain is None:
            raise ConnectionError("connection refused")
        walk = ledger_pb2.ValidatorChain()  # these chains keep the genesis set
        if "latest" in self.lie:
            return self.lie["latest"], walk
        return (self.chain.checkpoint(self.height), walk) if self.height else None

    def consistency(self, first: int, second: int) -> api_pb2.GetConsistencyProofResponse:
        assert self.chain is not None
        self.asked.append((first, second))
        return api_pb2.GetConsistencyProofResponse(
            proof=self.lie.get("proof", self.chain.consistency(first, second)),
            first=self.lie.get("first", self.chain.checkpoint(first)),
            second=self.chain.checkpoint(second),
        )


@pytest.fixture(scope="module")
def chains() -> ForkedChains:
    return forked_chains()


def run(chains: ForkedChains, *nodes: FakeNode, remembered=None) -> audit.WatchReport:
    before = {a: Sighting(a, c) for a, c in (remembered or {}).items()}
    return audit.watch(chains.consortium.genesis, nodes, before)


def test_honest_nodes_at_different_heights_are_not_a_fork(chains: ForkedChains) -> None:
    nodes = [FakeNode(f"n{h}", chains.honest, h) for h in (4, 2, 3, 1)]
    report = run(chains, *nodes, FakeNode("empty", chains.honest, 0))
    assert report.forks == [] and report.problems == []
    assert report.exit_code == 0
    assert report.comparisons == 6  # every lower height, proven by the higher node
    assert nodes[0].asked == [(2, 4), (3, 4), (1, 4)]
    assert report.latest["empty"] is None
    assert {a: decode_height(s.checkpoint) for a, s in report.remember.items()} == {
        "n4": 4, "n2": 2, "n3": 3, "n1": 1,
    }  # fmt: skip


def decode_height(checkpoint: ledger_pb2.Checkpoint) -> int:
    return checkpoint.certificate.height


def test_nodes_on_two_chains_at_one_height_are_a_fork(chains: ForkedChains) -> None:
    report = run(
        chains,
        FakeNode("honest", chains.honest, FORK_HEIGHT),
        FakeNode("liar", chains.forked, FORK_HEIGHT),
    )
    assert report.exit_code == audit.EXIT_FORK
    (proof,) = report.forks
    assert proof.kind == SAME_HEIGHT
    assert {proof.first.source, proof.second.source} == {"honest", "liar"}
    genesis = chains.consortium.genesis
    assert verify_fork_proof(encode_fork_proof(proof, genesis), genesis).equivocators


def test_a_node_ahead_proves_its_own_block_at_the_lower_height(chains: ForkedChains) -> None:
    """The honest node is ahead: its answer holds its own checkpoint at the liar's height."""
    report = run(
        chains,
        FakeNode("honest", chains.honest, 4),
        FakeNode("liar", chains.forked, FORK_HEIGHT),
    )
    (proof,) = report.forks
    assert proof.kind == SAME_HEIGHT
    assert {proof.first.source, proof.second.source} == {
        "liar",
        "honest (consistency answer)",
    }


def test_a_liar_that_copies_the_lower_checkpoint_is_caught_by_its_own_proof(
    chains: ForkedChains,
) -> None:
    """The liar, ahead, claims the honest block at height 3 as its own; its proof of its own
    log leads to its signed root and shows that the logs conflict."""
    liar = FakeNode("liar", chains.forked, 4, first=chains.honest.checkpoint(FORK_HEIGHT))
    report = run(chains, FakeNode("honest", chains.honest, FORK_HEIGHT), liar)
    (proof,) = report.forks
    assert proof.kind == INCONSISTENT_LOGS and proof.consistency is not None
    assert report.exit_code == audit.EXIT_FORK


def test_what_a_node_served_before_is_compared_with_what_it_serves_now(
    chains: ForkedChains,
) -> None:
    before = {"flip": chains.honest.checkpoint(FORK_HEIGHT)}
    report = run(
        chains,
        FakeNode("flip", chains.forked, 4),
        FakeNode("early", chains.honest, 2),
        remembered=before,
    )
    (proof,) = report.forks
    assert proof.kind == SAME_HEIGHT
    assert "flip (seen before)" in (proof.first.source, proof.second.source)
    # The same history later: no fork, and the state moves up to the new height.
    again = run(
        chains,
        FakeNode("flip", chains.honest, 4),
        FakeNode("early", chains.honest, 2),
        remembered=before,
    )
    assert again.exit_code == 0 and decode_height(again.remember["flip"].checkpoint) == 4


def test_a_node_that_went_back_keeps_its_highest_checkpoint(chains: ForkedChains) -> None:
    before = {"back": chains.honest.checkpoint(4)}
    report = run(
        chains,
        FakeNode("back", chains.honest, 2),
        FakeNode("other", chains.honest, 3),
        remembered=before,
    )
    assert report.exit_code == 0
    assert report.remember["back"].checkpoint == chains.honest.checkpoint(4)


def test_unverifiable_answers_are_incomplete_not_a_fork(chains: ForkedChains) -> None:
    wrong = chains.honest.consistency(3, 4)
    wrong.hashes[0] = bytes(32)
    unsigned = chains.resign(chains.forked.checkpoint(4), ("validator-0", "validator-1"))
    cases = {
        "a proof that leads nowhere": FakeNode("bad-proof", chains.honest, 4, proof=wrong),
        "a checkpoint without a quorum": FakeNode("unsigned", chains.honest, 4, latest=unsigned),
        "no answer": FakeNode("down", None),
        "an answer at another height": FakeNode(
            "shifted", chains.honest, 4, first=chains.honest.checkpoint(2)
        ),
    }
    for what, node in cases.items():
        report = run(chains, FakeNode("honest", chains.honest, 3), node)
        assert report.forks == [], what
        assert report.exit_code == audit.EXIT_INCOMPLETE, what
        assert any(node.address in p for p in report.problems), (what, report.problems)


def test_the_state_file_round_trips_and_refuses_edits(chains: ForkedChains, tmp_path: Path) -> None:
    genesis = chains.consortium.genesis
    path = tmp_path / "watch.json"
    assert audit.read_state(path, genesis) == {}
    remember = {
        "a:1": Sighting("a:1", chains.honest.checkpoint(4)),
        "b:2": Sighting("b:2", chains.forked.checkpoint(3)),
    }
    audit.write_state(path, genesis, remember)
    assert audit.read_state(path, genesis) == remember
    assert [p.name for p in tmp_path.iterdir()] == ["watch.json"]  # no temporary left
    document = json.loads(path.read_bytes())
    document["nodes"]["a:1"]["checkpoint"]["header"] = document["nodes"]["b:2"]["checkpoint"][
        "header"
    ]
    path.write_text(json.dumps(document, sort_keys=True, separators=(",", ":")) + "\n")
    with pytest.raises(CommandError, match="bad_checkpoint"):
        audit.read_state(path, genesis)
    path.write_text("{}\n")
    with pytest.raises(CommandError, match="not usable"):
        audit.read_state(path, genesis)
    # A provledger-audit-state/1 file (no walks) is still read, against the genesis set.
    audit.write_state(path, genesis, remember)
    document = json.loads(path.read_bytes())
    document["format"] = audit.STATE_FORMAT_1
    for entry in document["nodes"].values():
        del entry["validator_chain"]
    path.write_bytes(encode_canonical(document))
    assert audit.read_state(path, genesis) == remember


def test_the_proof_goes_beside_the_state_file(tmp_path: Path) -> None:
    assert audit.default_proof_path(tmp_path / "watch.json") == tmp_path / (
        "watch" + audit.PROOF_FILE_SUFFIX
    )
    assert audit.default_proof_path(None) == Path(audit.DEFAULT_PROOF_FILE)


def test_one_fork_seen_in_several_ways_is_reported_once(chains: ForkedChains) -> None:
    report = run(
        chains,
        FakeNode("honest-a", chains.honest, FORK_HEIGHT),
        FakeNode("honest-b", chains.honest, FORK_HEIGHT),
        FakeNode("liar", chains.forked, FORK_HEIGHT),
    )
    (proof,) = report.forks  # honest-a and honest-b saw one block: one fork, not two
    assert block_id(proof.second.checkpoint.header) == block_id(
        chains.forked.checkpoint(FORK_HEIGHT).header
    )


def test_provledger_verify_checks_a_fork_proof_and_names_who_signed_both(
    chains: ForkedChains, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    genesis = chains.consortium.genesis
    genesis_file = tmp_path / "genesis.json"
    genesis_file.write_bytes(canonical_json(chains.consortium.genesis_document()))
    second = chains.resign(
        chains.forked.checkpoint(FORK_HEIGHT), ("validator-1", "validator-2", "validator-3")
    )
    proof = ForkProof(
        SAME_HEIGHT,
        Sighting("node-a", chains.honest.checkpoint(FORK_HEIGHT)),
        Sighting("node-b", second),
    )
    proof_file = tmp_path / "fork.json"
    proof_file.write_bytes(encode_fork_proof(proof, genesis))
    assert main(["verify", str(proof_file), "--genesis", str(genesis_file)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("VERIFIED fork: two blocks committed at height 3")
    assert "provably Byzantine" in printed
    assert printed.splitlines()[-2].endswith("validator-1, validator-2, validator-3")
    assert main(["verify", str(proof_file), "--genesis", str(genesis_file), "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["equivocators"] == ["validator-1", "validator-2", "validator-3"]
    honest = chains.honest.checkpoint(FORK_HEIGHT)
    same = ForkProof(SAME_HEIGHT, Sighting("a", honest), Sighting("b", honest))
    proof_file.write_bytes(encode_fork_proof(same, genesis))
    assert main(["verify", str(proof_file), "--genesis", str(genesis_file)]) == 1
    assert "[not_conflicting]" in capsys.readouterr().err
    # A provledger-fork/1 file (no walks) still verifies; another version is refused.
    document = json.loads(encode_fork_proof(proof, genesis))
    for side in ("first", "second"):
        del document[side]["validator_chain"]
    for version, code in (("1", 0), ("3", 1)):
        document["format"] = f"provledger-fork/{version}"
        proof_file.write_bytes(encode_canonical(document))
        assert main(["verify", str(proof_file), "--genesis", str(genesis_file)]) == code
    assert "[unsupported_format]" in capsys.readouterr().err


# --- after validator-set changes -----------------------------------------------------------
# Blocks 1-7 on real stores (tests/support/validator_changes.py): validator-4 added at 1,
# validator-0 removed at 4; validator-1 to validator-4 sign heights 6 and 7.


class ChangedNode:
    """A node at `height` of the chain with validator-set changes, serving the walk to each
    checkpoint's height as the node does; `latest` replaces its checkpoint at `height`, and
    `walk` every walk it serves."""

    def __init__(
        self,
        address: str,
        chain: VChain,
        height: int,
        latest: ledger_pb2.Checkpoint | None = None,
        walk: ledger_pb2.ValidatorChain | None = None,
    ) -> None:
        self.address = address
        self.chain = chain
        self.height = height
        self.latest = latest
        self.walk = walk

    def _checkpoint(self, height: int) -> ledger_pb2.Checkpoint:
        if self.latest is not None and height == self.height:
            return self.latest
        return self.chain.checkpoint(height)

    def _walk(self, height: int) -> ledger_pb2.ValidatorChain:
        return self.walk if self.walk is not None else validator_chain(self.store, height)

    @property
    def store(self) -> Store:
        return self.chain.leader.store  # type: ignore[return-value]

    def latest_checkpoint(self) -> tuple[ledger_pb2.Checkpoint, ledger_pb2.ValidatorChain]:
        return self._checkpoint(self.height), self._walk(self.height)

    def consistency(self, first: int, second: int) -> api_pb2.GetConsistencyProofResponse:
        second = second or self.height
        sizes = [self.store.header(h).log_size for h in (first, second)]  # type: ignore[union-attr]
        return api_pb2.GetConsistencyProofResponse(
            proof=ledger_pb2.ConsistencyProof(
                first_size=sizes[0],
                second_size=sizes[1],
                hashes=self.store.consistency_proof(*sizes) if sizes[0] else [],
            ),
            first=self._checkpoint(first),
            second=self._checkpoint(second),
            validator_chain=self._walk(second),
        )


@pytest.fixture(scope="module")
def changed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VChain]:
    consortium = Consortium()
    folder = tmp_path_factory.mktemp("changed")
    leader = Store(folder / "leader", consortium.genesis)
    follower = Store(folder / "follower", consortium.genesis)
    yield changed_chain(consortium, leader, follower)
    leader.close()
    follower.close()


def broken_walk(changed: VChain) -> ledger_pb2.ValidatorChain:
    """The walk to height 7 with the removal of validator-0 left out of its step."""
    walk = validator_chain(changed.leader.store, 7)  # type: ignore[arg-type]
    del walk.steps[1].changes[:]
    return walk


def test_honest_nodes_after_validator_set_changes_are_not_reported(changed: VChain) -> None:
    nodes = [ChangedNode(f"n{h}", changed, h) for h in (7, 5, 2, 6, 1)]
    report = audit.watch(changed.genesis, nodes, {})
    assert report.forks == [] and report.problems == [], report.problems
    assert report.exit_code == 0 and report.comparisons == 10
    # Without its walk, the checkpoint of a later set cannot be checked: incomplete, no fork.
    walkless = ChangedNode("walkless", changed, 7, walk=ledger_pb2.ValidatorChain())
    report = audit.watch(changed.genesis, [nodes[1], walkless], {})
    assert report.forks == [] and report.exit_code == audit.EXIT_INCOMPLETE
    assert "quorum of the validators of its height" in report.problems[0]


def test_a_fork_after_validator_set_changes_is_caught_and_its_proof_verifies(
    changed: VChain, tmp_path: Path
) -> None:
    genesis = changed.genesis
    liar = ChangedNode("liar", changed, 7, latest=changed.forged(7))
    nodes = [ChangedNode("honest", changed, 7), liar, ChangedNode("behind", changed, 5)]
    report = audit.watch(genesis, nodes, {})
    assert report.exit_code == audit.EXIT_FORK and report.problems == []
    (proof,) = report.forks
    assert proof.kind == SAME_HEIGHT
    verified = verify_fork_proof(encode_fork_proof(proof, genesis), genesis)
    assert verified.equivocators == ("validator-1", "validator-2", "validator-3", "validator-4")
    # The state file keeps the walks: the liar's block, remembered, is still a fork next time.
    path = tmp_path / "watch.json"
    audit.write_state(path, genesis, report.remember)
    remembered = audit.read_state(path, genesis)
    assert {a: s.validator_chain for a, s in remembered.items()} == {
        a: s.validator_chain for a, s in report.remember.items()
    }
    assert len(remembered["liar"].validator_chain.steps) == 2
    again = audit.watch(genesis, [nodes[0], nodes[2]], remembered)
    (proof,) = again.forks
    assert "liar (seen before)" in (proof.first.source, proof.second.source)


def test_a_forged_walk_is_incomplete_not_a_fork(changed: VChain, tmp_path: Path) -> None:
    genesis = changed.genesis
    honest = ChangedNode("honest", changed, 7)
    forged_latest = ChangedNode("forged-walk", changed, 7, walk=broken_walk(changed))
    report = audit.watch(genesis, [ChangedNode("low", changed, 2), forged_latest], {})
    assert report.forks == [] and report.exit_code == audit.EXIT_INCOMPLETE
    (problem,) = report.problems
    assert problem.startswith("forged-walk:") and "bad_validator_chain" in problem

    class ForgedAnswer(ChangedNode):  # a good latest walk, a forged one in its answers
        def consistency(self, first: int, second: int) -> api_pb2.GetConsistencyProofResponse:
            answer = super().consistency(first, second)
            answer.validator_chain.CopyFrom(broken_walk(self.chain))
            return answer

    report = audit.watch(
        genesis, [ChangedNode("low", changed, 2), ForgedAnswer("x", changed, 7)], {}
    )
    assert report.forks == [] and report.exit_code == audit.EXIT_INCOMPLETE
    assert "bad_validator_chain" in report.problems[0], report.problems
    # In the state file, a forged walk makes the file unusable.
    path = tmp_path / "watch.json"
    audit.write_state(path, genesis, {"honest": Sighting("honest", *honest.latest_checkpoint())})
    document = json.loads(path.read_bytes())
    document["nodes"]["honest"]["validator_chain"]["steps"][1]["changes"] = []
    path.write_bytes(encode_canonical(document))
    with pytest.raises(CommandError, match="bad_validator_chain"):
        audit.read_state(path, genesis)

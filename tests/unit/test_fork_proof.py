"""protocol/fork_proof.py: two quorum-signed checkpoints that cannot be on one chain, found,
written as a portable file, and checked against the genesis alone; forged, tampered and
non-conflicting inputs refused, each with its own code; after validator-set changes, each
checkpoint verified with its walk of the validator sets from the genesis, and a forged walk
refused. Also the Merkle walk it relies on (`merkle.roots_from_consistency_proof`)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest
from support.forked_chains import FORK_HEIGHT, ForkedChains, forked_chains
from support.memory_state import Consortium
from support.validator_changes import Chain, changed_chain

from provledger.node.store import Store
from provledger.node.walks import validator_chain
from provledger.protocol import blocks, merkle
from provledger.protocol.blocks import block_id
from provledger.protocol.evidence import encode_canonical
from provledger.protocol.fork_proof import (
    FORMAT_1,
    INCONSISTENT_LOGS,
    SAME_HEIGHT,
    ForkProof,
    ForkProofError,
    Sighting,
    encode_fork_proof,
    equivocation_evidence,
    find_conflict,
    verify_fork_proof,
)
from provledger.protocol.limits import FORK_PROOF_SIZE_BYTES_MAX
from provledger.protocol.votes import verify_evidence
from provledger.v1 import ledger_pb2

VALIDATORS = ("validator-0", "validator-1", "validator-2", "validator-3")


@pytest.fixture(scope="module")
def chains() -> ForkedChains:
    return forked_chains()


def sighting(source: str, checkpoint: ledger_pb2.Checkpoint) -> Sighting:
    return Sighting(source, checkpoint)


def refused(code: str, data: bytes, chains: ForkedChains) -> ForkProofError:
    with pytest.raises(ForkProofError) as caught:
        verify_fork_proof(data, chains.consortium.genesis)
    assert caught.value.code == code, caught.value
    assert caught.value.reason
    return caught.value


def same_height_file(chains: ForkedChains, first=None, second=None) -> bytes:
    first = first or chains.honest.checkpoint(FORK_HEIGHT)
    second = second or chains.forked.checkpoint(FORK_HEIGHT)
    proof = ForkProof(SAME_HEIGHT, sighting("node-a", first), sighting("node-b", second))
    return encode_fork_proof(proof, chains.consortium.genesis)


def edited(data: bytes, edit) -> bytes:
    document = json.loads(data)
    edit(document)
    return encode_canonical(document)


# --- finding a conflict --------------------------------------------------------------------


def test_two_blocks_at_one_height_are_a_fork_whose_proof_verifies(chains: ForkedChains) -> None:
    genesis = chains.consortium.genesis
    honest, forked = chains.honest.checkpoint(FORK_HEIGHT), chains.forked.checkpoint(FORK_HEIGHT)
    proof = find_conflict(sighting("node-a", honest), sighting("node-b", forked), genesis)
    assert proof is not None and proof.kind == SAME_HEIGHT
    assert proof.consistency is None
    verified = verify_fork_proof(encode_fork_proof(proof, genesis), genesis)
    assert verified.first_block_id == block_id(honest.header)
    assert verified.second_block_id == block_id(forked.header)
    assert verified.first_header.height == verified.second_header.height == FORK_HEIGHT
    # Every validator signed both blocks in round 0: each equivocated, provably.
    assert verified.signed_both == verified.equivocators == VALIDATORS
    assert verified.to_json()["equivocators"] == list(VALIDATORS)
    assert verified.proof.first.source == "node-a"  # where it was seen, as written


def test_the_signers_of_both_are_named_and_the_equivocation_is_ledger_evidence(
    chains: ForkedChains,
) -> None:
    genesis = chains.consortium.genesis
    first = chains.resign(chains.honest.checkpoint(FORK_HEIGHT), VALIDATORS[:3])
    second = chains.resign(chains.forked.checkpoint(FORK_HEIGHT), VALIDATORS[1:])
    verified = verify_fork_proof(same_height_file(chains, first, second), genesis)
    assert verified.first_signers == VALIDATORS[:3]
    assert verified.signed_both == verified.equivocators == ("validator-1", "validator-2")
    evidence = equivocation_evidence(verified)
    assert [e.first.validator_id for e in evidence] == ["validator-1", "validator-2"]
    assert all(verify_evidence(genesis.chain_id, genesis.validator_set, e) for e in evidence)


def test_certificates_of_different_rounds_prove_the_fork_but_name_no_equivocator(
    chains: ForkedChains,
) -> None:
    genesis = chains.consortium.genesis
    second = chains.resign(chains.forked.checkpoint(FORK_HEIGHT), round_number=1)
    verified = verify_fork_proof(same_height_file(chains, second=second), genesis)
    assert verified.signed_both == VALIDATORS
    assert verified.equivocators == ()
    assert equivocation_evidence(verified) == []


def test_one_chain_at_any_two_heights_is_no_fork(chains: ForkedChains) -> None:
    genesis = chains.consortium.genesis
    honest = chains.honest
    for low in range(1, 5):
        for high in range(low, 5):
            consistency = honest.consistency(low, high) if low < high else None
            found = find_conflict(
                sighting("a", honest.checkpoint(low)),
                sighting("b", honest.checkpoint(high)),
                genesis,
                consistency,
            )
            assert found is None, (low, high)
    # Both chains share heights 1 and 2: at those, nothing conflicts.
    assert find_conflict(
        sighting("a", chains.honest.checkpoint(2)),
        sighting("b", chains.forked.checkpoint(4)),
        genesis,
        chains.forked.consistency(2, 4),
    ) is None  # fmt: skip


def test_a_consistency_proof_bound_to_the_later_root_shows_inconsistent_logs(
    chains: ForkedChains,
) -> None:
    """The forked node's honest proof of its own log (5 -> 9 leaves) leads to its signed root,
    and to a root of its first 5 leaves other than the one signed at height 3 on the other
    chain: the logs conflict, whatever each chain's checkpoint at height 3 says."""
    genesis = chains.consortium.genesis
    consistency = chains.forked.consistency(FORK_HEIGHT, 4)
    proof = find_conflict(
        sighting("node-b", chains.forked.checkpoint(4)),  # order does not matter
        sighting("node-a", chains.honest.checkpoint(FORK_HEIGHT)),
        genesis,
        consistency,
    )
    assert proof is not None and proof.kind == INCONSISTENT_LOGS
    assert proof.first.source == "node-a" and proof.consistency == consistency
    verified = verify_fork_proof(encode_fork_proof(proof, genesis), genesis)
    assert verified.second_header.height == 4
    assert "have root" in verified.proof.reason
    assert verified.equivocators == ()  # different heights name nobody


def test_a_log_that_shrinks_or_changes_its_root_at_one_size_needs_no_proof(
    chains: ForkedChains,
) -> None:
    genesis = chains.consortium.genesis
    third = chains.honest.checkpoint(3)  # 5 leaves
    shrunk = ledger_pb2.BlockHeader()
    shrunk.CopyFrom(chains.honest.header(4))
    shrunk.log_size = 3
    same_size = ledger_pb2.BlockHeader()
    same_size.CopyFrom(chains.honest.header(4))
    same_size.log_size = 5
    for header, words in ((shrunk, "shrank"), (same_size, "has root")):
        later = chains.resign(third, header=header)
        proof = find_conflict(sighting("a", third), sighting("b", later), genesis)
        assert proof is not None and proof.kind == INCONSISTENT_LOGS and words in proof.reason
        assert verify_fork_proof(encode_fork_proof(proof, genesis), genesis).proof.reason


def test_merkle_roots_from_a_consistency_proof_give_the_prefix_root() -> None:
    leaves = [merkle.hash_leaf(bytes([i])) for i in range(9)]
    nodes: dict[tuple[int, int], bytes] = {}
    log = merkle.CompactRange()
    for leaf in leaves:
        nodes.update(((level, index), node) for level, index, node in log.append(leaf))
    root5 = merkle.root_from_leaf_hashes(leaves[:5])
    root9 = merkle.root_from_leaf_hashes(leaves)
    proof = merkle.consistency_proof(5, 9, lambda level, index: nodes[(level, index)])
    assert merkle.roots_from_consistency_proof(5, 9, proof, root5) == (root5, root9)
    # The old root does not seed the walk when 5 is not a power of two: a wrong one changes
    # nothing, and the walk still names the true prefix root.
    assert merkle.roots_from_consistency_proof(5, 9, proof, bytes(32)) == (root5, root9)
    # When it is a power of two, the proof leaves it out and the given root seeds the walk.
    root4 = merkle.root_from_leaf_hashes(leaves[:4])
    proof4 = merkle.consistency_proof(4, 9, lambda level, index: nodes[(level, index)])
    assert merkle.roots_from_consistency_proof(4, 9, proof4, root4) == (root4, root9)
    assert merkle.roots_from_consistency_proof(4, 9, proof4, bytes(32))[1] != root9
    for sizes in ((0, 9), (9, 9), (10, 9)):
        with pytest.raises(merkle.ProofError):
            merkle.roots_from_consistency_proof(*sizes, proof, root5)


# --- refusals ------------------------------------------------------------------------------


def test_a_checkpoint_without_a_quorum_is_refused_when_finding_and_verifying(
    chains: ForkedChains,
) -> None:
    genesis = chains.consortium.genesis
    two_signers = chains.resign(chains.forked.checkpoint(FORK_HEIGHT), VALIDATORS[:2])
    with pytest.raises(ForkProofError) as caught:
        find_conflict(
            sighting("a", chains.honest.checkpoint(FORK_HEIGHT)),
            sighting("liar", two_signers),
            genesis,
        )
    assert caught.value.code == "bad_checkpoint" and "liar" in caught.value.reason
    error = refused("bad_checkpoint", same_height_file(chains, second=two_signers), chains)
    assert "second.checkpoint" in error.reason


def test_a_forged_signature_is_refused(chains: ForkedChains) -> None:
    def forge(document) -> None:
        entry = document["second"]["checkpoint"]["certificate"]["signatures"][0]
        entry["signature"] = document["first"]["checkpoint"]["certificate"]["signatures"][0][
            "signature"
        ]

    refused("bad_checkpoint", edited(same_height_file(chains), forge), chains)


def test_a_header_swapped_under_a_certificate_is_refused(chains: ForkedChains) -> None:
    def swap(document) -> None:
        document["second"]["checkpoint"]["header"] = document["first"]["checkpoint"]["header"]

    refused("bad_checkpoint", edited(same_height_file(chains), swap), chains)


def test_the_same_block_twice_is_not_a_fork(chains: ForkedChains) -> None:
    honest = chains.honest.checkpoint(FORK_HEIGHT)
    refused("not_conflicting", same_height_file(chains, honest, honest), chains)
    # Even with another set of signers, or another round: one block is one block.
    resigned = chains.resign(honest, VALIDATORS[1:], round_number=2)
    refused("not_conflicting", same_height_file(chains, honest, resigned), chains)


def test_honest_checkpoints_at_two_heights_are_not_a_fork(chains: ForkedChains) -> None:
    genesis = chains.consortium.genesis
    honest = chains.honest
    proof = ForkProof(
        INCONSISTENT_LOGS,
        sighting("a", honest.checkpoint(3)),
        sighting("b", honest.checkpoint(4)),
        honest.consistency(3, 4),
    )
    refused("not_conflicting", encode_fork_proof(proof, genesis), chains)
    without = ForkProof(INCONSISTENT_LOGS, proof.first, proof.second, None)
    refused("not_conflicting", encode_fork_proof(without, genesis), chains)


def test_a_consistency_proof_that_leads_nowhere_proves_nothing(chains: ForkedChains) -> None:
    genesis = chains.consortium.genesis
    honest = chains.honest
    consistency = honest.consistency(3, 4)
    wrong = ledger_pb2.ConsistencyProof()
    wrong.CopyFrom(consistency)
    wrong.hashes[-1] = bytes(32)  # anyone can write wrong hashes
    first, second = sighting("a", honest.checkpoint(3)), sighting("b", honest.checkpoint(4))
    proof = ForkProof(INCONSISTENT_LOGS, first, second, wrong)
    refused("unbound_proof", encode_fork_proof(proof, genesis), chains)
    with pytest.raises(ForkProofError) as caught:
        find_conflict(first, second, genesis, wrong)
    assert caught.value.code == "unbound_proof"
    sized = ledger_pb2.ConsistencyProof(first_size=4, second_size=9, hashes=consistency.hashes)
    refused(
        "wrong_sizes",
        encode_fork_proof(ForkProof(INCONSISTENT_LOGS, first, second, sized), genesis),
        chains,
    )


def test_heights_must_match_the_kind(chains: ForkedChains) -> None:
    genesis = chains.consortium.genesis
    low = sighting("a", chains.honest.checkpoint(3))
    high = sighting("b", chains.forked.checkpoint(4))
    refused("wrong_heights", encode_fork_proof(ForkProof(SAME_HEIGHT, low, high), genesis), chains)
    refused(
        "wrong_heights",
        encode_fork_proof(ForkProof(INCONSISTENT_LOGS, high, low), genesis),
        chains,
    )


def test_another_genesis_is_refused(chains: ForkedChains) -> None:
    data = same_height_file(chains)
    other = Consortium(chain_id="provledger-other")
    with pytest.raises(ForkProofError) as caught:
        verify_fork_proof(data, other.genesis)
    assert caught.value.code == "wrong_genesis"

    def other_hash(document) -> None:
        document["genesis_hash"] = "00" * 32

    refused("wrong_genesis", edited(data, other_hash), chains)


def test_the_file_must_be_canonical_json_of_its_shape(chains: ForkedChains) -> None:
    data = same_height_file(chains)
    refused("not_canonical", data.replace(b":", b": ", 1), chains)
    refused("not_canonical", data.rstrip(b"\n"), chains)
    refused("malformed", b"[1, 2", chains)
    refused("too_large", b" " * (FORK_PROOF_SIZE_BYTES_MAX + 1), chains)

    def extra(document) -> None:
        document["comment"] = "trust me"

    def no_source(document) -> None:
        del document["first"]["source"]

    def unknown_kind(document) -> None:
        document["kind"] = "rumour"

    def consistency_on_same_height(document) -> None:
        document["consistency"] = {"first_size": 5, "second_size": 5, "hashes": []}

    def short_hash(document) -> None:
        document["kind"] = INCONSISTENT_LOGS
        document["consistency"] = {"first_size": 5, "second_size": 9, "hashes": ["AAAA"]}

    for edit in (extra, no_source, unknown_kind, consistency_on_same_height, short_hash):
        refused("malformed", edited(data, edit), chains)

    def other_format(document) -> None:
        document["format"] = "provledger-fork/3"

    refused("unsupported_format", edited(data, other_format), chains)

    def walkless(document) -> None:  # a /2 side must carry its walk, even an empty one
        del document["second"]["validator_chain"]

    refused("malformed", edited(data, walkless), chains)


def test_a_format_1_file_still_verifies_against_the_genesis_set(chains: ForkedChains) -> None:
    """`provledger-fork/1` (no walks, written before validator-set changes existed) is read as
    a /2 file whose walks are empty: each checkpoint against the genesis set."""

    def as_format_1(document) -> None:
        document["format"] = FORMAT_1
        for side in ("first", "second"):
            assert document[side].pop("validator_chain") == {"steps": []}

    data = edited(same_height_file(chains), as_format_1)
    verified = verify_fork_proof(data, chains.consortium.genesis)
    assert verified.equivocators == VALIDATORS

    def with_walk(document) -> None:  # a /1 side holds no walk
        document["first"]["validator_chain"] = {"steps": []}

    refused("malformed", edited(data, with_walk), chains)


# --- after validator-set changes -----------------------------------------------------------
# Blocks 1-7 on real stores (tests/support/validator_changes.py): validator-4 added at 1,
# validator-0 removed at 4, so validator-1 to validator-4 sign height 7.

AFTER = ("validator-1", "validator-2", "validator-3", "validator-4")


@pytest.fixture(scope="module")
def changed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    consortium = Consortium()
    folder = tmp_path_factory.mktemp("changed")
    leader = Store(folder / "leader", consortium.genesis)
    follower = Store(folder / "follower", consortium.genesis)
    yield changed_chain(consortium, leader, follower)
    leader.close()
    follower.close()


def walked(chain: Chain, source: str, checkpoint: ledger_pb2.Checkpoint) -> Sighting:
    """`checkpoint` with the walk the chain's node serves for its height."""
    height = blocks.decode_header(checkpoint.header).height
    return Sighting(source, checkpoint, validator_chain(chain.leader.store, height))


def test_a_fork_after_validator_set_changes_is_proven_with_the_walks_and_names_that_set(
    changed: Chain,
) -> None:
    genesis = changed.genesis
    honest = walked(changed, "node-a", changed.checkpoint(7))
    forged = walked(changed, "node-b", changed.forged(7))
    # Against the genesis set alone, neither checkpoint verifies (what /1 and its readers did).
    with pytest.raises(ForkProofError) as caught:
        find_conflict(Sighting("node-a", honest.checkpoint), forged, genesis)
    assert caught.value.code == "bad_checkpoint"
    proof = find_conflict(honest, forged, genesis)
    assert proof is not None and proof.kind == SAME_HEIGHT
    data = encode_fork_proof(proof, genesis)
    assert json.loads(data)["format"] == "provledger-fork/2"
    verified = verify_fork_proof(data, genesis)
    assert (
        verified.first_validators == verified.second_validators == changed.leader.validator_set(7)
    )
    assert verified.equivocators == AFTER  # the set of height 7, not the genesis set
    assert verified.to_json()["validators"] == 4
    evidence = equivocation_evidence(verified)
    assert all(verify_evidence(genesis.chain_id, verified.first_validators, e) for e in evidence)


def test_a_quorum_of_an_old_set_signing_after_its_time_is_a_fork_naming_only_who_signed_both(
    changed: Chain,
) -> None:
    """The genesis set signs a second block 7 whose header names itself, with an empty walk
    (as if validator-0 were never removed): a fork two walks from the genesis prove. Only
    validators of both sets, with one key, that signed both blocks are named."""
    genesis = changed.genesis
    stale = changed.forged(
        7, VALIDATORS, validators_hash=genesis.validator_set.hash()
    )  # validator-0 to validator-3
    proof = find_conflict(
        walked(changed, "node-a", changed.checkpoint(7)), Sighting("stale", stale), genesis
    )
    assert proof is not None and proof.kind == SAME_HEIGHT
    verified = verify_fork_proof(encode_fork_proof(proof, genesis), genesis)
    assert verified.signed_both == verified.equivocators == AFTER[:3]


def test_honest_checkpoints_across_validator_set_changes_are_not_a_fork(changed: Chain) -> None:
    genesis = changed.genesis
    store = changed.leader.store
    for low, high in ((2, 7), (3, 5), (6, 7), (1, 4)):
        first_size, second_size = store.header(low).log_size, store.header(high).log_size
        consistency = ledger_pb2.ConsistencyProof(
            first_size=first_size,
            second_size=second_size,
            hashes=store.consistency_proof(first_size, second_size) if first_size else [],
        )
        found = find_conflict(
            walked(changed, "a", changed.checkpoint(low)),
            walked(changed, "b", changed.checkpoint(high)),
            genesis,
            consistency,
        )
        assert found is None, (low, high)


def test_a_forged_walk_is_refused_with_bad_validator_chain(changed: Chain) -> None:
    genesis = changed.genesis
    honest = walked(changed, "node-a", changed.checkpoint(7))
    forged = walked(changed, "node-b", changed.forged(7))
    proof = find_conflict(honest, forged, genesis)
    assert proof is not None
    data = encode_fork_proof(proof, genesis)
    second_step = changed.checkpoint(2)  # a block without validator-set changes

    def swap_step(document) -> None:
        step = document["second"]["validator_chain"]["steps"][0]
        step["checkpoint"] = base64.b64encode(
            second_step.SerializeToString(deterministic=True)
        ).decode()

    def drop_changes(document) -> None:
        document["first"]["validator_chain"]["steps"][1]["changes"] = []

    def not_a_walk(document) -> None:
        document["first"]["validator_chain"] = {"steps": "none"}

    for edit in (swap_step, drop_changes, not_a_walk):
        with pytest.raises(ForkProofError) as caught:
            verify_fork_proof(edited(data, edit), genesis)
        assert caught.value.code == "bad_validator_chain", (edit.__name__, caught.value)
    # And when finding one: a walk whose step lost its change proves nothing.
    broken = ledger_pb2.ValidatorChain()
    broken.CopyFrom(forged.validator_chain)
    del broken.steps[0].changes[:]
    with pytest.raises(ForkProofError) as caught:
        find_conflict(honest, Sighting("node-b", forged.checkpoint, broken), genesis)
    assert caught.value.code == "bad_validator_chain"

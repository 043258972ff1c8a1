"""The walk of the validator sets (protocol/validator_chain.py) as the node builds it
(`LedgerQueries.validator_chain`, over real LevelDB stores) and as a verifier that trusts only
the genesis checks it: an inclusion or consistency answer after a validator is added and one
removed verifies with the walk and not without; every way of tampering with the walk fails
with its code; the JSON form round-trips and binds every byte.
"""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
from support.memory_state import Consortium, digest
from support.validator_changes import QUORUM, Chain, add, change, remove

from provledger.node.grpc_api import LedgerService
from provledger.node.queries import LedgerQueries
from provledger.node.store import Store
from provledger.node.walks import inclusion_proof
from provledger.protocol import blocks, merkle, proofs
from provledger.protocol.events import event_id, log_leaf
from provledger.protocol.validator_chain import (
    ValidatorChainError,
    chain_from_json,
    chain_to_json,
    verify_validator_chain,
)
from provledger.v1 import ledger_pb2


@pytest.fixture
def built(tmp_path):
    """Blocks 1-8 on real stores: validator-4 added at 1 (signs from 3), validator-0 removed
    at 4 (signs from 6), a member added at 5 (not a validator change), an asset at 8."""
    consortium = Consortium()
    leader = Store(tmp_path / "leader", consortium.genesis)
    follower = Store(tmp_path / "follower", consortium.genesis)
    chain = Chain(consortium, leader, follower)
    chain.block([add(consortium, "validator-4", 1)])
    chain.block()
    chain.block()
    chain.block([remove(consortium, "validator-0", 2)])
    member = consortium.govern(
        "agency-a",
        change(
            "member_added",
            3,
            member_id="agency-c",
            role=1,
            public_key=consortium["agency-a"].key.public_key[::-1],
        ),
        QUORUM,
    )
    chain.block([member])
    chain.block()
    chain.block()
    asset = consortium.sign(
        "agency-b",
        "asset_registered",
        asset_id="late-asset",
        content_digest=digest("late"),
        classification=ledger_pb2.CLASSIFICATION_GENERAL,
    )
    chain.block([asset])
    yield consortium, follower, asset, member
    leader.close()
    follower.close()


def answer(store: Store, signed: ledger_pb2.SignedEvent, height: int):
    location = store.event(event_id(signed.body))
    tree_size = store.header(height).log_size
    return inclusion_proof(store, location, tree_size), store.checkpoint(height)


def test_an_event_after_the_changes_verifies_against_the_genesis_with_the_walk(built) -> None:
    consortium, store, asset, _ = built
    genesis = consortium.genesis
    walk = LedgerQueries(store, genesis).validator_chain(8)
    assert [len(step.changes) for step in walk.steps] == [1, 1]
    history = verify_validator_chain(walk, genesis)
    assert [epoch.from_height for epoch in history.epochs] == [1, 3, 6]
    assert [v.validator_id for v in history.at(8).validators] == [
        "validator-1",
        "validator-2",
        "validator-3",
        "validator-4",
    ]
    proof, checkpoint = answer(store, asset, 8)
    verified = proofs.verify_inclusion_answer(
        asset, proof, checkpoint, genesis, event_id(asset.body), walk
    )
    assert verified.height == 8 and verified.validators == 4
    with pytest.raises(proofs.ProofAnswerError) as error:
        proofs.verify_inclusion_answer(asset, proof, checkpoint, genesis, event_id(asset.body))
    assert error.value.code == "bad_checkpoint"


def test_a_submit_and_wait_receipt_carries_the_walk_and_verifies_from_the_genesis(built) -> None:
    """SubmitAndWait's receipt (`LedgerService._receipt`) carries the walk, as
    GetInclusionProof's answer does: with the genesis alone it verifies after both changes, and
    a receipt from before the first change carries an empty walk."""
    consortium, store, asset, _ = built
    service = LedgerService(SimpleNamespace(store=store, genesis=consortium.genesis))  # type: ignore[arg-type]
    identifier = event_id(asset.body)
    receipt = service._receipt(identifier, 8)
    assert receipt.validator_chain == LedgerQueries(store, consortium.genesis).validator_chain(8)
    assert len(receipt.validator_chain.steps) == 2
    verified = proofs.verify_inclusion_answer(
        asset,
        receipt.proof,
        receipt.checkpoint,
        consortium.genesis,
        receipt.event_id,
        receipt.validator_chain,
    )
    assert (verified.height, verified.validators) == (8, 4)
    block, _ = store.block(1)  # the genesis set signs it: the walk is empty
    [addition] = block.events
    early = service._receipt(event_id(addition.body), 1)
    assert early.height == 1 and not early.validator_chain.steps
    proofs.verify_inclusion_answer(
        addition, early.proof, early.checkpoint, consortium.genesis, early.event_id
    )


def test_a_walk_to_a_height_holds_only_the_sets_that_sign_by_then(built) -> None:
    consortium, store, _, _ = built
    queries = LedgerQueries(store, consortium.genesis)
    assert len(queries.validator_chain(2).steps) == 0  # the change at 1 signs from 3
    assert len(queries.validator_chain(3).steps) == 1
    assert len(queries.validator_chain(5).steps) == 1
    assert len(queries.validator_chain(6).steps) == 2


def test_a_consistency_answer_across_the_changes_verifies_with_the_walk(built) -> None:
    consortium, store, _, _ = built
    first, second = store.header(2), store.header(8)
    proof = ledger_pb2.ConsistencyProof(
        first_size=first.log_size,
        second_size=second.log_size,
        hashes=store.consistency_proof(first.log_size, second.log_size),
    )
    walk = LedgerQueries(store, consortium.genesis).validator_chain(8)
    verified = proofs.verify_consistency_answer(
        proof, store.checkpoint(2), store.checkpoint(8), consortium.genesis, walk
    )
    assert (verified.first_height, verified.second_height) == (2, 8)
    with pytest.raises(proofs.ProofAnswerError, match="bad_checkpoint"):
        proofs.verify_consistency_answer(
            proof, store.checkpoint(2), store.checkpoint(8), consortium.genesis
        )


# --- tampering --------------------------------------------------------------------------------


def walk_error(walk: ledger_pb2.ValidatorChain, consortium: Consortium) -> str:
    with pytest.raises(ValidatorChainError) as error:
        verify_validator_chain(walk, consortium.genesis)
    return error.value.code


def test_a_walk_that_leaves_a_step_out_does_not_verify_a_later_checkpoint(built) -> None:
    consortium, store, asset, _ = built
    walk = LedgerQueries(store, consortium.genesis).validator_chain(8)
    del walk.steps[1]
    verify_validator_chain(walk, consortium.genesis)  # what is left is a true, shorter walk
    proof, checkpoint = answer(store, asset, 8)
    with pytest.raises(proofs.ProofAnswerError) as error:
        proofs.verify_inclusion_answer(
            asset, proof, checkpoint, consortium.genesis, event_id(asset.body), walk
        )
    assert error.value.code == "bad_checkpoint"
    assert "different validator set" in error.value.reason


def test_every_tampering_with_a_walk_has_its_code(built) -> None:
    consortium, store, asset, member = built
    original = LedgerQueries(store, consortium.genesis).validator_chain(8)

    def tampered(change_it) -> ledger_pb2.ValidatorChain:
        walk = copy.deepcopy(original)
        change_it(walk)
        return walk

    swapped = tampered(lambda w: (w.steps.add().CopyFrom(w.steps[0]), w.steps.pop(0)))
    assert walk_error(swapped, consortium) == "bad_checkpoint"  # step 4 is not signed by 0..3
    twice = tampered(lambda w: w.steps.add().CopyFrom(w.steps[1]))
    assert walk_error(twice, consortium) == "steps_out_of_order"
    assert walk_error(tampered(lambda w: w.steps[0].ClearField("changes")), consortium) == (
        "no_changes"
    )
    # The member_added event at height 5, proved in block 5, as if it changed the validators.
    member_location = store.event(event_id(member.body))
    not_validators = tampered(
        lambda w: (
            w.steps[1].checkpoint.CopyFrom(store.checkpoint(5)),
            w.steps[1].changes[0].event.CopyFrom(member),
            w.steps[1]
            .changes[0]
            .proof.CopyFrom(inclusion_proof(store, member_location, store.header(5).log_size)),
        )
    )
    assert walk_error(not_validators, consortium) == "not_a_validator_change"
    # The removal proved in a later checkpoint's log: not in that block.
    later_proof, later_checkpoint = answer(store, _removal(store, original), 5)
    elsewhere = tampered(
        lambda w: (
            w.steps[1].checkpoint.CopyFrom(later_checkpoint),
            w.steps[1].changes[0].proof.CopyFrom(later_proof),
        )
    )
    assert walk_error(elsewhere, consortium) == "not_in_block"

    def break_hash(w: ledger_pb2.ValidatorChain) -> None:
        hashes = w.steps[1].changes[0].proof.hashes  # block 4's change: the log has 2 leaves
        hashes[0] = bytes(32)

    assert walk_error(tampered(break_hash), consortium) == "bad_proof"
    other_event = tampered(lambda w: w.steps[0].changes[0].event.CopyFrom(asset))
    assert walk_error(other_event, consortium) == "wrong_leaf_hash"
    doubled = tampered(lambda w: w.steps[0].changes.add().CopyFrom(w.steps[0].changes[0]))
    assert walk_error(doubled, consortium) == "changes_out_of_order"


def _removal(store: Store, walk: ledger_pb2.ValidatorChain) -> ledger_pb2.SignedEvent:
    return walk.steps[1].changes[0].event


def test_a_walk_whose_change_breaks_the_rules_is_refused() -> None:
    """A block a Byzantine quorum certified that adds two validators to four at once (the
    rules refuse the second: validator_quorum_lost) is not a walk: bad_change."""
    consortium = Consortium()
    genesis = consortium.genesis
    events = [add(consortium, "validator-4", 1), add(consortium, "validator-5", 2)]
    leaf_hashes = [merkle.hash_leaf(log_leaf(event_id(e.body), e.signature)) for e in events]
    header = ledger_pb2.BlockHeader(
        chain_id=consortium.chain_id,
        height=1,
        previous_block_id=genesis.genesis_hash,
        time_ms=genesis.genesis_time_ms + 1,
        proposer_id="validator-0",
        events_root=merkle.root_from_leaf_hashes(leaf_hashes),
        event_count=2,
        log_size=2,
        log_root=merkle.root_from_leaf_hashes(leaf_hashes),
        validators_hash=genesis.validator_set.hash(),
    )
    header_bytes = blocks.encode_header(header)
    forged = SimpleNamespace(header=header, block_id=blocks.block_id(header_bytes))
    checkpoint = ledger_pb2.Checkpoint(
        header=header_bytes, certificate=consortium.certificate(forged)
    )
    walk = ledger_pb2.ValidatorChain()
    step = walk.steps.add(checkpoint=checkpoint)
    for index, event in enumerate(events):
        step.changes.add(
            event=event,
            proof=ledger_pb2.InclusionProof(
                leaf_index=index,
                tree_size=2,
                leaf_hash=leaf_hashes[index],
                hashes=[leaf_hashes[1 - index]],
            ),
        )
    with pytest.raises(ValidatorChainError) as error:
        verify_validator_chain(walk, genesis)
    assert error.value.code == "bad_change" and "validator_quorum_lost" in error.value.reason
    del step.changes[1]  # the first addition alone is a sound walk of that block
    assert len(verify_validator_chain(walk, genesis).latest.validators.validators) == 5


def test_the_json_form_round_trips_and_binds_every_byte(built) -> None:
    consortium, store, _, _ = built
    walk = LedgerQueries(store, consortium.genesis).validator_chain(8)
    document = chain_to_json(walk)
    assert chain_from_json(document) == walk
    assert [len(step["changes"]) for step in document["steps"]] == [1, 1]
    unpadded = copy.deepcopy(document)
    unpadded["steps"][0]["checkpoint"] = unpadded["steps"][0]["checkpoint"].rstrip("=") + "?"
    for broken in (
        {"steps": [], "extra": 1},
        {"steps": [{"checkpoint": document["steps"][0]["checkpoint"]}]},
        unpadded,
        {"steps": "none"},
    ):
        with pytest.raises(ValidatorChainError, match="malformed"):
            chain_from_json(broken)


def test_too_long_a_walk_is_refused_before_any_check() -> None:
    consortium = Consortium()
    walk = ledger_pb2.ValidatorChain(steps=[ledger_pb2.ValidatorChangeStep()] * 513)
    assert walk_error(walk, consortium) == "too_many_steps"


def test_a_walk_across_a_tls_ca_replacement_verifies_from_the_genesis(tmp_path) -> None:
    """A TlsCaReplaced makes a step of the walk whose signers are unchanged (ADR 015)."""
    from support.validator_changes import replace_tls_ca

    from provledger.node import tls

    roots = {org: tls.create_ca("provledger-test", organisation=org)[0] for org in "ab"}
    consortium = Consortium(
        tls_cas={v: roots["a"] for v in ("validator-0", "validator-1", "validator-2")}
        | {"validator-3": roots["b"]}
    )
    leader = Store(tmp_path / "leader", consortium.genesis)
    follower = Store(tmp_path / "follower", consortium.genesis)
    try:
        chain = Chain(consortium, leader, follower)
        new_root = tls.create_ca("provledger-test", organisation="b-2026")[0]
        chain.block([replace_tls_ca(consortium, "validator-3", 1, new_root)])
        chain.block()
        chain.block()
        walk = LedgerQueries(follower, consortium.genesis).validator_chain(3)
        assert [len(step.changes) for step in walk.steps] == [1]
        history = verify_validator_chain(walk, consortium.genesis)
        assert history.at(3).validators[3].tls_ca == new_root
        assert history.at(3).hash() == consortium.genesis.validator_set.hash()
    finally:
        leader.close()
        follower.close()

"""Validator-set changes (protocol/validators.py, docs/adr/013): governance adds and removes
validators; a change committed at height H signs from H + 2; every refusal has its code; the
header's validators_hash, commit certificates (proposed and synced), proposers and evidence
all follow the set of their height; consensus votes only at heights whose set holds it.

A chain here is a proposing `LedgerApplication` and a follower that commits every block as a
synced one (certificate checked, block re-executed), both over in-memory stores.
"""

from __future__ import annotations

import pytest
from sim.memory_store import MemoryChainStore
from support.consensus_inputs import FakeApplication, make_block, sign_proposal
from support.memory_state import GENESIS_TIME_MS, Consortium, signing_key
from support.validator_changes import QUORUM, Chain, add, change, remove, replace_tls_ca, writer

from provledger.node import tls
from provledger.protocol import blocks, consensus, validators
from provledger.protocol.application import commit_now
from provledger.protocol.errors import Rejected
from provledger.protocol.events import DecodedEvent
from provledger.protocol.genesis import Validator, ValidatorSet
from provledger.protocol.votes import PREVOTE, evidence_key, make_evidence, sign_vote
from provledger.v1 import ledger_pb2, peer_pb2


@pytest.fixture
def consortium() -> Consortium:
    return Consortium()


def memory_chain(consortium: Consortium) -> Chain:
    genesis = consortium.genesis
    return Chain(consortium, MemoryChainStore(genesis), MemoryChainStore(genesis))


@pytest.fixture
def chain(consortium: Consortium) -> Chain:
    return memory_chain(consortium)


def ids(validator_set: ValidatorSet) -> list[str]:
    return [v.validator_id for v in validator_set.validators]


GENESIS_IDS = ["validator-0", "validator-1", "validator-2", "validator-3"]


# --- taking effect at H + 2 -------------------------------------------------------------------


def test_a_validator_added_at_h_signs_from_h_plus_2(chain: Chain) -> None:
    chain.block()
    chain.block([add(chain.consortium, "validator-4", 1)])  # H = 2
    for app in (chain.leader, chain.follower):
        assert ids(app.validator_set(2)) == GENESIS_IDS
        assert ids(app.validator_set(3)) == GENESIS_IDS
        assert ids(app.validator_set(4)) == [*GENESIS_IDS, "validator-4"]
    chain.block()  # 3: still the genesis set
    chain.block(proposer="validator-4")  # 4: the new one proposes, five sign
    genesis_hash = chain.genesis.validator_set.hash()
    assert [h.validators_hash == genesis_hash for h in chain.headers] == [1, 1, 1, 0]
    assert chain.headers[3].validators_hash == chain.leader.validator_set(4).hash()
    history = chain.follower.validator_history()
    assert [e.from_height for e in history.epochs] == [1, 4]
    record = chain.follower.store.load("validators", "latest")
    assert record.index == 1 and record.from_height == 4 and len(record.event_ids) == 1


def test_a_removed_validator_stops_signing_at_h_plus_2_and_the_chain_goes_on(chain: Chain) -> None:
    chain.block([remove(chain.consortium, "validator-3", 1)])  # H = 1
    chain.block()  # 2: four still sign
    assert ids(chain.follower.validator_set(2)) == GENESIS_IDS
    assert ids(chain.follower.validator_set(3)) == GENESIS_IDS[:3]
    chain.block()  # 3: three sign (the follower checked their certificate)
    chain.block()
    assert chain.headers[-1].validators_hash == chain.follower.validator_set(4).hash()


def test_two_changes_in_one_block_make_one_set(chain: Chain) -> None:
    consortium = chain.consortium
    chain.block([add(consortium, "validator-4", 1), remove(consortium, "validator-0", 2)])
    history = chain.follower.validator_history()
    assert [e.from_height for e in history.epochs] == [1, 3]
    assert ids(history.latest.validators) == [*GENESIS_IDS[1:], "validator-4"]
    assert len(chain.follower.store.load("validators", "latest").event_ids) == 2
    chain.block()
    chain.block(proposer="validator-4")


def test_changes_in_consecutive_blocks_chain_up(chain: Chain) -> None:
    consortium = chain.consortium
    chain.block([add(consortium, "validator-4", 1)])  # from 3
    chain.block([add(consortium, "validator-5", 2)])  # from 4, over the set from 3
    history = chain.follower.validator_history()
    assert [(e.from_height, len(e.validators.validators)) for e in history.epochs] == [
        (1, 4),
        (3, 5),
        (4, 6),
    ]
    for _ in range(3):
        chain.block()
    assert ids(chain.follower.validator_set(5))[-2:] == ["validator-4", "validator-5"]


# --- the refusals, each with its code ------------------------------------------------------------


def refusal(chain: Chain, event: ledger_pb2.SignedEvent) -> Rejected:
    (outcome,) = chain.admit([event])
    assert isinstance(outcome, Rejected), outcome
    return outcome


def test_adding_a_validator_twice_is_refused(chain: Chain) -> None:
    error = refusal(chain, add(chain.consortium, "validator-1", 1, key=signing_key("fresh")))
    assert error.code == "validator_exists"


def test_a_key_another_validator_holds_is_refused(chain: Chain) -> None:
    error = refusal(chain, add(chain.consortium, "validator-9", 1, key=signing_key("validator-2")))
    assert error.code == "validator_key_exists"


def test_removing_an_unknown_validator_is_refused(chain: Chain) -> None:
    assert refusal(chain, remove(chain.consortium, "validator-9", 1)).code == "unknown_validator"


def test_the_last_validator_is_never_removed() -> None:
    chain = memory_chain(Consortium(validator_ids=("validator-0",)))
    assert refusal(chain, remove(chain.consortium, "validator-0", 1)).code == "last_validator"


def test_a_set_the_validators_before_cannot_make_quorum_of_is_refused(chain: Chain) -> None:
    """Four validators add a fifth in one block (4 of 5 kept: a quorum), not a sixth too."""
    consortium = chain.consortium
    first, second = add(consortium, "validator-4", 1), add(consortium, "validator-5", 2)
    outcomes = chain.admit([first])
    assert isinstance(outcomes[0], DecodedEvent)
    height = chain.height + 1
    chain.leader.node_id = chain.signers(height)[0]
    # Judged by the proposer in the same block as the first: left out, with the reason.
    chain.admit([second])  # admission judges it alone, against the committed state
    block = chain.leader.propose(height, 0, chain.now_ms + 1_000)
    (left_out,) = chain.leader.take_reports()
    assert left_out.rejection.code == "validator_quorum_lost"
    assert len(block.events) == 1
    # And as a block's event, it makes the block invalid for a validator.
    forged = blocks.execute_block(
        state=chain.leader.store,
        log=chain.leader.store.log,
        tip=chain.leader.store.tip,
        chain_id=consortium.chain_id,
        candidates=[consortium.decode(first), consortium.decode(second)],
        time_ms=chain.now_ms + 1_000,
        proposer_id="validator-1",
        genesis_validators=chain.genesis.validator_set,
        last_commit=None,
        strict=False,
    )
    assert [r.code for _, r in forged.rejected] == ["validator_quorum_lost"]


def test_a_bad_validator_id_or_key_is_refused(chain: Chain) -> None:
    consortium = chain.consortium
    bad_id = consortium.govern(
        "agency-a",
        change("validator_added", 1, validator_id="no spaces", public_key=bytes(32)),
        QUORUM,
    )
    assert refusal(chain, bad_id).code == "bad_identifier"
    short_key = consortium.govern(
        "agency-a",
        change("validator_added", 2, validator_id="validator-9", public_key=b"short"),
        QUORUM,
    )
    assert refusal(chain, short_key).code == "bad_key"


def test_a_validator_change_needs_the_members_quorum(chain: Chain) -> None:
    event = chain.consortium.govern(
        "agency-a",
        change("validator_removed", 1, validator_id="validator-3"),
        ("agency-a", "agency-b"),
    )
    assert refusal(chain, event).code == "no_quorum"


def test_outside_a_block_a_validator_change_is_refused(consortium: Consortium) -> None:
    state = consortium.state()
    with pytest.raises(Rejected) as error:
        consortium.apply(state, remove(consortium, "validator-3", 1), GENESIS_TIME_MS + 1)
    assert error.value.code == "no_validator_context"


def test_apply_change_measures_the_quorum_against_the_set_before_the_block() -> None:
    four = ValidatorSet(
        tuple(Validator(f"v{i}", signing_key(f"v{i}").public_key) for i in range(4))
    )
    body = ledger_pb2.ValidatorAdded(validator_id="v4", public_key=signing_key("v4").public_key)
    five = validators.apply_change(four, four, "validator_added", body)
    assert ids(five) == ["v0", "v1", "v2", "v3", "v4"]
    sixth = ledger_pb2.ValidatorAdded(validator_id="v5", public_key=signing_key("v5").public_key)
    assert ids(validators.apply_change(five, five, "validator_added", sixth))[-1] == "v5"
    with pytest.raises(Rejected, match="validator_quorum_lost"):
        validators.apply_change(four, five, "validator_added", sixth)


# --- certificates, proposers and evidence follow the height's set ------------------------------


def test_a_synced_block_certified_by_the_old_set_after_a_change_is_refused(chain: Chain) -> None:
    consortium = chain.consortium
    chain.block([remove(consortium, "validator-0", 1), add(consortium, "validator-4", 2)])
    chain.block()  # 2
    leader = chain.leader
    leader.node_id = "validator-1"
    chain.now_ms += 1_000
    block = leader.propose(3, 0, chain.now_ms)
    old = chain.certificate(block, GENESIS_IDS)  # validator-0 is no longer a validator
    with pytest.raises(Rejected, match="'validator-0' is not a validator"):
        commit_now(chain.follower.commit(block, old, writer(chain.follower.store), synced=True))
    too_few = chain.certificate(block, ["validator-1", "validator-2"])
    with pytest.raises(Rejected, match="a quorum is 3"):
        commit_now(chain.follower.commit(block, too_few, writer(chain.follower.store), synced=True))
    right = chain.certificate(block, ["validator-1", "validator-2", "validator-4"])
    assert commit_now(
        chain.follower.commit(block, right, writer(chain.follower.store), synced=True)
    )


def test_a_removed_validator_may_not_propose(chain: Chain) -> None:
    chain.block([remove(chain.consortium, "validator-0", 1)])
    chain.block()
    leader = chain.leader
    leader.node_id = "validator-0"
    chain.now_ms += 1_000
    block = leader.propose(3, 0, chain.now_ms)
    certificate = chain.certificate(block, GENESIS_IDS[1:])
    with pytest.raises(Rejected, match="proposer 'validator-0' is not a validator"):
        commit_now(
            chain.follower.commit(block, certificate, writer(chain.follower.store), synced=True)
        )


def equivocation(chain: Chain, validator_id: str, height: int) -> ledger_pb2.Evidence:
    key = signing_key(validator_id)
    votes = []
    for label in (b"a" * 32, b"b" * 32):
        vote = ledger_pb2.Vote(
            type=PREVOTE, height=height, round=0, block_id=label, validator_id=validator_id
        )
        vote.signature = sign_vote(key, chain.consortium.chain_id, vote)
        votes.append(vote)
    return make_evidence(*votes)


def test_evidence_is_judged_by_the_set_of_its_votes_height(chain: Chain) -> None:
    chain.block([add(chain.consortium, "validator-4", 1)])  # signs from 3
    chain.block()
    # validator-4 equivocating at height 2 is nobody's evidence: it was not a validator then.
    assert not chain.leader.add_evidence(equivocation(chain, "validator-4", 2))
    # At height 3 it is.
    at_3 = equivocation(chain, "validator-4", 3)
    assert chain.leader.add_evidence(at_3)
    chain.block()  # height 3 records it from the pool (the follower re-checks it)
    assert chain.follower.store.load("evidence", validators_key(at_3)) is not None
    # A vote for a height after the next block's is refused: its set is not final.
    assert not chain.leader.add_evidence(equivocation(chain, "validator-1", chain.height + 2))


def validators_key(evidence: ledger_pb2.Evidence) -> str:
    return evidence_key(evidence.first)


# --- consensus votes at the heights whose set holds it -----------------------------------------


def test_consensus_takes_each_heights_set_and_votes_only_in_it() -> None:
    consortium = Consortium()
    four = consortium.genesis.validator_set
    newcomer = Validator("validator-4", signing_key("validator-4").public_key)
    five = ValidatorSet((*four.validators, newcomer))
    app = FakeApplication(consortium.chain_id, four, changes={3: five})
    state = consensus.ConsensusState(
        chain_id=consortium.chain_id,
        validators=four,
        key=signing_key("validator-4"),
        validator_id="validator-4",
    )
    state, outputs = consensus.step(state, consensus.StartHeight(2, GENESIS_TIME_MS), app)
    assert state.validators == four
    proposal = sign_proposal(consortium, make_block(consortium.chain_id, 2, "b2"), 0)
    state, outputs = consensus.step(state, consensus.ProposalReceived(proposal, 1), app)
    assert not [o for o in outputs if isinstance(o, consensus.Persist)], "not a validator at 2"
    state.step = consensus.Step.COMMITTED
    state, outputs = consensus.step(state, consensus.StartHeight(3, GENESIS_TIME_MS), app)
    assert state.validators == five
    proposer = consensus.proposer(five, 3, 0)
    assert proposer == "validator-3"
    block = make_block(consortium.chain_id, 3, "b3")
    proposal = peer_proposal(consortium, block, proposer)
    state, outputs = consensus.step(state, consensus.ProposalReceived(proposal, 2), app)
    persisted = [o.message for o in outputs if isinstance(o, consensus.Persist)]
    assert persisted and persisted[0].height == 3, "votes (or proposes) at 3"
    # Removed from 4 on: it follows without voting.
    app.changes[4] = four
    state.step = consensus.Step.COMMITTED
    state, outputs = consensus.step(state, consensus.StartHeight(4, GENESIS_TIME_MS), app)
    block = make_block(consortium.chain_id, 4, "b4")
    proposal = peer_proposal(consortium, block, consensus.proposer(four, 4, 0))
    state, outputs = consensus.step(state, consensus.ProposalReceived(proposal, 3), app)
    assert not [o for o in outputs if isinstance(o, consensus.Persist)]


def peer_proposal(
    consortium: Consortium, block: ledger_pb2.Block, proposer_id: str
) -> peer_pb2.Proposal:
    """A round-0 proposal of `block` by `proposer_id`, who need not be a genesis validator."""
    return sign_proposal(
        consortium, block, 0, proposer_id=proposer_id, key=signing_key(proposer_id)
    )


def test_a_message_for_the_next_height_is_buffered_by_the_next_heights_set() -> None:
    consortium = Consortium()
    four = consortium.genesis.validator_set
    newcomer = Validator("validator-4", signing_key("validator-4").public_key)
    five = ValidatorSet((*four.validators, newcomer))
    app = FakeApplication(consortium.chain_id, four, changes={3: five})
    state = consensus.ConsensusState(
        chain_id=consortium.chain_id, validators=four, key=None, validator_id=None
    )
    state, _ = consensus.step(state, consensus.StartHeight(2, GENESIS_TIME_MS), app)
    vote = ledger_pb2.Vote(
        type=PREVOTE, height=3, round=0, block_id=b"x" * 32, validator_id="validator-4"
    )
    vote.signature = sign_vote(signing_key("validator-4"), consortium.chain_id, vote)
    state, _ = consensus.step(state, consensus.VoteReceived(vote, 1), app)
    assert len(state.future) == 1


# --- each organisation's TLS CA root (ADR 015): ValidatorAdded.tls_ca and TlsCaReplaced ---------

_ROOTS = {
    organisation: tls.create_ca("provledger-test", organisation=organisation)
    for organisation in ("org-0", "org-1", "org-new", "org-other")
}


def root(organisation: str) -> bytes:
    return _ROOTS[organisation][0]


@pytest.fixture
def per_org_chain() -> Chain:
    """The genesis names a TLS CA root per validator: validator-0 and -1 of org-0, -2 and -3
    of org-1."""
    tls_cas = {v: root("org-0" if v in GENESIS_IDS[:2] else "org-1") for v in GENESIS_IDS}
    return memory_chain(Consortium(tls_cas=tls_cas))


def test_a_validator_added_with_its_organisations_ca_carries_it_in_the_set_from_h_plus_2(
    per_org_chain: Chain,
) -> None:
    chain = per_org_chain
    chain.block([add(chain.consortium, "validator-4", 1, tls_ca=root("org-new"))])  # H = 1
    record = chain.follower.store.load("validators", "latest")
    assert [e.tls_ca for e in record.validators][-1] == root("org-new")
    history = chain.follower.validator_history()
    assert history.at(3).validators[-1].tls_ca == root("org-new")
    # The genesis set's roots come from the genesis; the hash is of ids and keys only.
    assert history.at(1).validators[0].tls_ca == root("org-0")
    assert (
        history.at(3).hash()
        == ValidatorSet(
            tuple(Validator(v.validator_id, v.public_key) for v in history.at(3).validators)
        ).hash()
    )
    # Decided at H, so a node accepts the newcomer's root from H + 1 on, as it does its id.
    assert ("validator-4", root("org-new")) in history.tls_cas_from(2)
    assert root("org-new") in history.every_tls_ca()
    chain.block()
    chain.block(proposer="validator-4")  # 3: the newcomer proposes and signs


@pytest.mark.parametrize(
    "tls_ca",
    [
        b"",  # missing
        b"not a certificate",
        b"-----BEGIN CERTIFICATE-----\nQUFBQQ==\n-----END CERTIFICATE-----\n",  # not DER
        root("org-new") + root("org-other"),  # two blocks
        b"-----BEGIN CERTIFICATE-----\n" + b"QUFB\n" * 2000 + b"-----END CERTIFICATE-----\n",
    ],
)
def test_a_validator_added_without_a_ca_root_is_refused_when_the_genesis_names_roots(
    per_org_chain: Chain, tls_ca: bytes
) -> None:
    event = add(per_org_chain.consortium, "validator-4", 1, tls_ca=tls_ca)
    assert refusal(per_org_chain, event).code == "bad_tls_ca"


def test_a_node_certificate_is_not_a_ca_root(per_org_chain: Chain) -> None:
    certificate, key = _ROOTS["org-new"]
    node_certificate, _ = tls.issue_node_certificate(certificate, key, "validator-4")
    event = add(per_org_chain.consortium, "validator-4", 1, tls_ca=node_certificate)
    assert refusal(per_org_chain, event).code == "bad_tls_ca"


def test_with_one_consortium_ca_a_change_carries_no_root(chain: Chain) -> None:
    consortium = chain.consortium
    with_root = add(consortium, "validator-4", 1, tls_ca=root("org-new"))
    assert refusal(chain, with_root).code == "no_tls_cas"
    replaced = replace_tls_ca(consortium, "validator-1", 2, root("org-new"))
    assert refusal(chain, replaced).code == "no_tls_cas"
    chain.block([add(consortium, "validator-4", 3)])  # without a root, as before
    assert chain.follower.validator_history().tls_cas_from(1) == ()


def test_a_replaced_tls_ca_takes_effect_from_h_plus_2_and_leaves_the_signers_alone(
    per_org_chain: Chain,
) -> None:
    chain = per_org_chain
    before = chain.leader.validator_set(1)
    chain.block([replace_tls_ca(chain.consortium, "validator-1", 1, root("org-other"))])  # H=1
    chain.block()
    chain.block()  # 3: signed by the same four, under the same validators_hash
    history = chain.follower.validator_history()
    assert [e.from_height for e in history.epochs] == [1, 3]
    assert history.at(3) == before and history.at(3).hash() == before.hash()
    assert [v.tls_ca for v in history.at(2).validators][1] == root("org-0")
    assert [v.tls_ca for v in history.at(3).validators][1] == root("org-other")
    # Until it activates, both roots are accepted for validator-1; from then on the new alone.
    assert {r for v, r in history.tls_cas_from(2) if v == "validator-1"} == {
        root("org-0"),
        root("org-other"),
    }
    assert {r for v, r in history.tls_cas_from(3) if v == "validator-1"} == {root("org-other")}
    # validator-0, of the same organisation, keeps org-0's root.
    assert ("validator-0", root("org-0")) in history.tls_cas_from(3)


def test_replacing_a_tls_ca_is_refused_with_its_code(per_org_chain: Chain) -> None:
    consortium = per_org_chain.consortium
    unknown = replace_tls_ca(consortium, "validator-9", 1, root("org-new"))
    assert refusal(per_org_chain, unknown).code == "unknown_validator"
    same = replace_tls_ca(consortium, "validator-2", 2, root("org-1"))
    assert refusal(per_org_chain, same).code == "same_tls_ca"
    bad = replace_tls_ca(consortium, "validator-2", 3, b"-----BEGIN CERTIFICATE-----\nQQ==\n")
    assert refusal(per_org_chain, bad).code == "bad_tls_ca"
    empty = replace_tls_ca(consortium, "validator-2", 4, b"")
    assert refusal(per_org_chain, empty).code == "bad_tls_ca"


def test_the_walk_replays_a_tls_ca_replacement(per_org_chain: Chain) -> None:
    """apply_change is what a verifier walking the sets replays: the replacement changes the
    root, not the set a checkpoint's validators_hash names."""
    genesis_set = per_org_chain.genesis.validator_set
    body = ledger_pb2.TlsCaReplaced(validator_id="validator-3", tls_ca=root("org-new"))
    replaced = validators.apply_change(genesis_set, genesis_set, "tls_ca_replaced", body)
    assert replaced.hash() == genesis_set.hash()
    assert replaced.validators[3].tls_ca == root("org-new")

"""The deterministic simulator over many seeds: safety invariants on every step, liveness
after faults stop, evidence against every equivocator, and exact replay of a seed.

`make test` runs SIM_SEEDS seeds (default 500, even seeds with 4 validators, odd with 7) in
chunks of SEEDS_PER_CHUNK, one test per chunk, so that no single test comes near pytest's
timeout however slow or busy the machine (a seed takes about 0.3 s on one core, the slowest
about 1.5 s); each chunk's seeds are spread over the machine's cores by one worker pool that
the module shares. `make sim SEEDS=N` runs more. A failure names its seed and the one-line
command that replays it.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.pool
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sim.simulator import InvariantBroken, Scenario, Simulation

from provledger.protocol import blocks, consensus, crypto
from provledger.protocol.limits import BLOCK_SIZE_BYTES_MAX
from provledger.v1 import ledger_pb2, peer_pb2

SIM_SEEDS = int(os.environ.get("SIM_SEEDS", "500"))
SEEDS_PER_CHUNK = 25
WORKERS_MAX = 4
ROOT = Path(__file__).resolve().parents[2]


def replay_command(seed: int, validators: int) -> str:
    return f".venv/bin/python tests/sim/run.py --seed {seed} --validators {validators}"


def validators_for(seed: int) -> int:
    return 4 if seed % 2 == 0 else 7


def run_seed(seed_and_validators: tuple[int, int]) -> tuple[int, int, str | None, dict | None]:
    seed, validators = seed_and_validators
    try:
        result = Simulation(Scenario.from_seed(seed, validators)).run()
    except InvariantBroken as error:
        return seed, validators, str(error), None
    return seed, validators, None, result


@pytest.fixture(scope="module")
def workers() -> Iterator[multiprocessing.pool.Pool]:
    """Worker processes for the chunks, started once for the module; stopped (terminated,
    then joined) at its end, even if a chunk failed or timed out mid-map."""
    context = multiprocessing.get_context("spawn")
    pool = context.Pool(processes=max(1, min(os.cpu_count() or 1, WORKERS_MAX)))
    try:
        yield pool
    finally:
        pool.terminate()
        pool.join()


SEED_CHUNKS = [
    range(first, min(first + SEEDS_PER_CHUNK, SIM_SEEDS))
    for first in range(0, SIM_SEEDS, SEEDS_PER_CHUNK)
]


def test_the_chunks_cover_every_seed_once() -> None:
    assert [seed for chunk in SEED_CHUNKS for seed in chunk] == list(range(SIM_SEEDS))
    assert all(len(chunk) <= SEEDS_PER_CHUNK for chunk in SEED_CHUNKS)


@pytest.mark.parametrize(
    "seeds", SEED_CHUNKS, ids=[f"seeds-{chunk[0]}-{chunk[-1]}" for chunk in SEED_CHUNKS]
)
def test_many_seeds_keep_every_invariant(seeds: range, workers: multiprocessing.pool.Pool) -> None:
    cases = [(seed, validators_for(seed)) for seed in seeds]
    outcomes = workers.map(run_seed, cases, chunksize=1)
    failures = [
        f"{error}\n  replay: {replay_command(seed, validators)}"
        for seed, validators, error, _ in outcomes
        if error is not None
    ]
    assert not failures, "\n".join(failures)
    # The runs did real work: every run committed blocks.
    for seed, validators, _, result in outcomes:
        assert result is not None and min(result["heights"]) >= 3, (
            f"seed {seed} committed too little: heights {result and result['heights']}\n"
            f"  replay: {replay_command(seed, validators)}"
        )


def test_the_seeds_exercise_byzantine_validators() -> None:
    """At least a quarter of the seeds `make test` runs have equivocating validators (drawn
    from the seed alone, so this needs no run)."""
    byzantine = [s for s in range(SIM_SEEDS) if Scenario.from_seed(s, validators_for(s)).byzantine]
    assert len(byzantine) >= SIM_SEEDS // 4


def test_a_seed_replays_step_for_step() -> None:
    first = Simulation(Scenario.from_seed(7, 7)).run()
    second = Simulation(Scenario.from_seed(7, 7)).run()
    assert first == second
    different = Simulation(Scenario.from_seed(8, 7)).run()
    assert different["trace"] != first["trace"]


def test_replay_is_independent_of_the_process() -> None:
    """The printed command reproduces the run in a fresh interpreter, whatever its hash seed."""
    outputs = []
    for hash_seed in ("1", "2"):
        completed = subprocess.run(
            [sys.executable, "tests/sim/run.py", "--seed", "11", "--validators", "4"],
            cwd=ROOT,
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
            capture_output=True,
            text=True,
            check=True,
        )
        outputs.append(completed.stdout)
    assert outputs[0] == outputs[1]
    assert "'trace'" in outputs[0]


def test_the_seeds_exercise_validator_set_changes() -> None:
    """At least a quarter of the seeds add a validator and remove one (drawn from the seed
    alone), and some of those have equivocators too."""
    scenarios = [Scenario.from_seed(s, validators_for(s)) for s in range(SIM_SEEDS)]
    changing = [s for s in scenarios if s.validator_changes]
    assert len(changing) >= SIM_SEEDS // 4
    assert any(s.byzantine for s in changing) and any(s.crash_count for s in changing)


@pytest.mark.parametrize("validators", [4, 7])
def test_a_validator_added_by_governance_signs_and_a_removed_one_stops(validators: int) -> None:
    seed = next(
        s
        for s in range(1_000)
        if Scenario.from_seed(s, validators).validator_changes
        and Scenario.from_seed(s, validators).byzantine
    )
    simulation = Simulation(Scenario.from_seed(seed, validators))
    simulation.run()
    spare = simulation.node_ids[-1]
    epochs = simulation.expected.epochs
    assert len(epochs) >= 2, "both changes committed"
    node = simulation.honest()[0]
    for height in range(1, node.store.head_height + 1):
        _, certificate = node.store.block(height)
        signers = {entry.validator_id for entry in certificate.signatures}
        assert signers <= {v.validator_id for v in simulation.expected.at(height).validators}, (
            f"height {height}"
        )
    added_from = next(e.from_height for e in epochs if e.validators.public_key(spare))
    signed_by_spare = [
        height
        for height in range(added_from, node.store.head_height + 1)
        if any(e.validator_id == spare for e in node.store.block(height)[1].signatures)
    ]
    if simulation.expected.latest.validators.public_key(spare) is not None:
        assert signed_by_spare, "the added validator signs commits"
    assert simulation.expected.latest.validators != simulation.consortium.genesis.validator_set


def test_a_wrong_activation_height_breaks_an_invariant(monkeypatch) -> None:
    """The simulator's own expectation of the sets can fail: expecting changes at H + 1
    instead of H + 2, the first block after a change names another set than expected."""
    import sim.simulator as simulator

    monkeypatch.setattr(simulator, "VALIDATOR_CHANGE_DELAY_BLOCKS", 1)
    seed = next(s for s in range(1_000) if Scenario.from_seed(s, 4).validator_changes)
    with pytest.raises(InvariantBroken, match="names another validator set"):
        Simulation(Scenario.from_seed(seed, 4)).run()


@pytest.mark.parametrize("validators", [4, 7])
def test_a_byzantine_equivocator_is_recorded(validators: int) -> None:
    seed = next(
        s
        for s in range(1_000)
        if Scenario.from_seed(s, validators).byzantine
        and not Scenario.from_seed(s, validators).validator_changes  # none removed
    )
    simulation = Simulation(Scenario.from_seed(seed, validators))
    simulation.run()
    byzantine_ids = {simulation.nodes[i].node_id for i in simulation.scenario.byzantine}
    assert byzantine_ids <= simulation.equivocations
    for node in simulation.honest():
        assert byzantine_ids <= node.store.evidence_against


def test_a_validator_restarted_with_an_unsendable_proposal_withholds_it_and_all_commit():
    """ADR 011, the second half of issue 8's attack: every validator restarts, one of them with
    a signed proposal over the byte budget in its write-ahead log for the next height, in the
    first round it proposes in. It must never send it (the simulator fails any node that
    sends one) nor sign another for that round, and every node commits again."""
    scenario = Scenario(
        seed=0,
        validators=4,
        byzantine=(),
        drop_probability=0.0,
        duplicate_probability=0.0,
        delay_ms_max=5,
        fault_phase_ms=0,
        crash_count=0,
        partition_count=0,
        event_interval_ms=150,
    )
    simulation = Simulation(scenario)
    simulation.faults_active = False
    simulation.plan_faults()  # no faults in this scenario: client events only
    simulation.run_until(3_000)
    assert min(node.store.head_height for node in simulation.nodes) >= 1
    for node in simulation.nodes:
        node.crash()

    validators = simulation.consortium.genesis.validator_set

    def first_round_proposing(node) -> int:
        height = node.store.head_height + 1
        return next(
            r
            for r in range(len(simulation.nodes))
            if consensus.proposer(validators, height, r) == node.node_id
        )

    node = min(simulation.nodes, key=lambda n: (first_round_proposing(n), n.index))
    tip = node.store.tip
    header = ledger_pb2.BlockHeader(
        chain_id=simulation.consortium.chain_id,
        height=tip.height + 1,
        previous_block_id=tip.block_id,
        time_ms=tip.time_ms + 1,
        proposer_id=node.node_id,
    )
    block = ledger_pb2.Block(
        header=blocks.encode_header(header),
        events=[ledger_pb2.SignedEvent(body=bytes(BLOCK_SIZE_BYTES_MAX), signature=bytes(64))],
    )
    planted = peer_pb2.Proposal(
        height=tip.height + 1,
        round=first_round_proposing(node),
        pol_round=-1,
        block=block,
        proposer_id=node.node_id,
    )
    planted.signature = simulation.consortium.validator_keys[node.node_id].sign(
        crypto.DOMAIN_PROPOSAL,
        consensus.proposal_sign_bytes(
            simulation.consortium.chain_id, planted, blocks.block_id(block.header)
        ),
    )
    node.store.wal.append((planted, None))
    logged_before_restart = len(node.store.wal)

    for restarted in simulation.nodes:
        restarted.boot()
    assert node.state.withheld == {(planted.height, planted.round)}
    assert node.state.signed[(planted.height, planted.round, 0)] == planted
    target = max(n.store.head_height for n in simulation.nodes) + 3

    assert simulation.run_until(
        simulation.time_ms + 60_000,
        lambda: all(n.store.head_height >= target for n in simulation.nodes),
    ), {n.node_id: n.store.head_height for n in simulation.nodes}
    signed_since = [message for message, _ in node.store.wal[logged_before_restart:]]
    assert not [
        m
        for m in signed_since
        if isinstance(m, peer_pb2.Proposal)
        and (m.height, m.round) == (planted.height, planted.round)
    ], "another proposal was signed for the withheld proposal's round"

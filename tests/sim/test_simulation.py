"""The deterministic simulator over many seeds: safety invariants on every step, liveness
after faults stop, evidence against every equivocator, and exact replay of a seed.

`make test` runs SIM_SEEDS seeds (default 500, half with 4 validators, half with 7), spread
over the machine's cores; `make sim SEEDS=N` runs more. A failure names its seed and the
one-line command that replays it.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sim.simulator import InvariantBroken, Scenario, Simulation

SIM_SEEDS = int(os.environ.get("SIM_SEEDS", "500"))
ROOT = Path(__file__).resolve().parents[2]


def replay_command(seed: int, validators: int) -> str:
    return f".venv/bin/python tests/sim/run.py --seed {seed} --validators {validators}"


def run_seed(seed_and_validators: tuple[int, int]) -> tuple[int, int, str | None, dict | None]:
    seed, validators = seed_and_validators
    try:
        result = Simulation(Scenario.from_seed(seed, validators)).run()
    except InvariantBroken as error:
        return seed, validators, str(error), None
    return seed, validators, None, result


def test_many_seeds_keep_every_invariant() -> None:
    cases = [(seed, 4 if seed % 2 == 0 else 7) for seed in range(SIM_SEEDS)]
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes=max(1, min(os.cpu_count() or 1, 4))) as pool:
        outcomes = pool.map(run_seed, cases, chunksize=4)
    failures = [
        f"{error}\n  replay: {replay_command(seed, validators)}"
        for seed, validators, error, _ in outcomes
        if error is not None
    ]
    assert not failures, "\n".join(failures)
    results = [result for *_, result in outcomes if result is not None]
    # The runs did real work: every run committed blocks, and faults were exercised.
    assert all(min(r["heights"]) >= 3 for r in results)
    assert sum(1 for seed, v in cases if Scenario.from_seed(seed, v).byzantine) >= SIM_SEEDS // 4


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


@pytest.mark.parametrize("validators", [4, 7])
def test_a_byzantine_equivocator_is_recorded(validators: int) -> None:
    seed = next(s for s in range(1_000) if Scenario.from_seed(s, validators).byzantine)
    simulation = Simulation(Scenario.from_seed(seed, validators))
    simulation.run()
    byzantine_ids = {simulation.nodes[i].node_id for i in simulation.scenario.byzantine}
    assert byzantine_ids <= simulation.equivocations
    for node in simulation.honest():
        assert byzantine_ids <= node.store.evidence_against

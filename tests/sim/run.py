"""Run the deterministic simulator from the command line.

python tests/sim/run.py --seed 1234 --validators 4      # replay one seed
python tests/sim/run.py --seeds 2000                      # many seeds, n = 4 and 7 (default 500)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sim.simulator import InvariantBroken, Scenario, Simulation


def replay_command(seed: int, validators: int) -> str:
    return f".venv/bin/python tests/sim/run.py --seed {seed} --validators {validators}"


def run_one(seed: int, validators: int) -> dict:
    return Simulation(Scenario.from_seed(seed, validators)).run()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, help="run this one seed")
    parser.add_argument("--validators", type=int, default=4)
    parser.add_argument(
        "--seeds", type=int, default=500, help="how many seeds to run (make test runs 500)"
    )
    parser.add_argument("--first-seed", type=int, default=0)
    args = parser.parse_args()
    if args.seed is not None:
        print(Scenario.from_seed(args.seed, args.validators))
        print(run_one(args.seed, args.validators))
        return 0
    started = time.monotonic()
    failures = 0
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        validators = 4 if seed % 2 == 0 else 7
        try:
            run_one(seed, validators)
        except InvariantBroken as error:
            failures += 1
            print(f"FAIL {error}\n  replay: {replay_command(seed, validators)}")
    print(f"{args.seeds} seeds, {failures} failed, {time.monotonic() - started:.1f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

"""What the benchmarks share: loading real nodes and reporting what they did.

A benchmark script (bench/single_node.py, consortium.py, rest.py, integrity.py) is the
scenario: it sets up a consortium, runs its phases and writes its report sections. Everything
it does the same way as the others lives here, once:

- `machine`: the machine (CPUs, commit, waiting for quiet) and what /proc says about
  processes: CPU by process, process group and thread, peak RSS, usage between snapshots;
- `nodes`: a consortium of real node processes, each stopped by its PID; a client of a node's
  API (TLS under the consortium CA, reading as its auditor) and a node's head;
- `node_logs`: what the node logs say (the height a node started at, blocks it synced,
  invalid proposals, errors);
- `load`: pre-signed load, submitted by spawned stream processes;
- `phases`: one load phase: block watchers, the common start, the figures it gives
  (nearest-rank percentiles among them);
- `report`: figures as text, the marked sections of docs/PERFORMANCE.md, the
  options and output every benchmark has;
- `profile`: a profiled node's pstats as tables (the jobs it reports: profile_jobs.toml);
- `revision`: benchmarking a committed revision instead of the working tree (`--source`).

The node processes themselves are tests/support/processes.py's `NodeProcess` (the one place
that starts a node in a process group of its own and stops it by its PID), so the tests'
folder goes on the import path here, before anything imports it.
"""

from __future__ import annotations

import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent.parent
REPO_ROOT = BENCH_DIR.parent
TESTS_DIR = REPO_ROOT / "tests"  # its `support` package: node processes by PID
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))


class BenchmarkError(Exception):
    """A run that cannot give figures (a node or a stream died, nothing was committed...)."""

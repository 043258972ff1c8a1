"""Single-node benchmark: how many signed events a one-validator node commits per second.

Theory of operation
-------------------
1. A fresh consortium of one validator goes into a temporary folder and a REAL node process
   is started on it (`provledger node run`, in a process group of its own); whatever
   happens, it is stopped by its PID at the end.
2. `--streams` spawned load processes pre-sign their share of `--events` `asset_registered`
   events before anything is timed, then, on a common signal, submit them with
   `SubmitEvents`, `--batch` at a time, one call after the other (paced by `--rate` if
   given). A `SubscribeBlocks` stream notes when each block arrives.
3. The figures (see bench/harness/phases.py): committed events/s, also over each fifth of the
   events (does the node slow down as its ledger grows?); admitted events/s; submit->commit
   latency per batch and per event; the node's CPU (its process and its signature-check
   worker; the event loop's thread on its own; every thread by name) and peak RSS; the load
   client's CPU and other processes'. They are printed, summarised on one `RESULT {json}`
   line for comparing runs, and written between markers in docs/PERFORMANCE.md.

Comparing runs (before/after an optimisation) on a shared machine:
- `--source REV` benchmarks a committed revision instead of a working tree others are
  editing (bench/harness/revision.py);
- the CPU other processes used during the load is measured and flagged; `--wait-quiet S`
  waits for a quiet machine first, `--retry-disturbed N` reruns a disturbed run, `--repeat N`
  reports the run with the median throughput;
- node CPU per committed event (all of it, and the event loop's thread alone) hardly moves
  when the machine is busy, while events/s does: compare those too.

With `--profile` the node runs under cProfile (bench/_profiled_node.py); the top functions
are printed and written to the "Where the time goes (single node)" section. The throughput
of a profiled run is not comparable and is not written to the report.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from harness import BenchmarkError
from harness.begin import begin
from harness.load import LoadPlan
from harness.machine import QUIET_CORES_MAX, wait_until_quiet
from harness.node_logs import log_findings, print_log_findings
from harness.nodes import NodeStartError, ProfiledNode, running_cluster
from harness.phases import LoadFigures, load_phase
from harness.profile import print_profile, read_stats
from harness.report import (
    CommonOptions,
    add_common_options,
    command_line,
    print_load,
    profile_path,
    scratch_folder,
    update_report,
    write_result,
)
from single_node_report import (
    PROFILE_JOBS,
    load_description,
    profile_section,
    result_summary,
    single_node_section,
    threads_text,
)

from provledger.node.settings import SUBMIT_BATCH_EVENTS_MAX
from provledger.protocol.limits import MEMPOOL_EVENTS_MAX


@dataclass(frozen=True)
class Options(CommonOptions):
    events: int
    streams: int
    batch: int
    rate: float  # offered events/s over all streams; 0: as fast as the node answers
    profile: bool
    profile_clock: str
    source: str | None
    repeat: int
    retry_disturbed: int

    @property
    def command(self) -> str:
        """The command that repeats this run."""
        arguments = ["--events", str(self.events), "--streams", str(self.streams)]
        arguments += ["--batch", str(self.batch)]
        if self.rate:
            arguments += ["--rate", f"{self.rate:g}"]
        if self.profile:
            arguments += ["--profile", "--profile-clock", self.profile_clock]
        if self.repeat > 1:
            arguments += ["--repeat", str(self.repeat)]
        if self.source:
            arguments += ["--source", self.source]
        return command_line("single_node.py", arguments)


def main(argv: Sequence[str] | None = None) -> int:
    begun = begin(
        __file__,
        sys.argv[1:] if argv is None else argv,
        parse_options,
        lambda o: f"provledger single-node benchmark: {load_description(o)}",
        wait_quiet=False,
    )
    if isinstance(begun, int):
        return begun
    options, machine = begun
    if options.events > MEMPOOL_EVENTS_MAX:
        print(f"note: more events than the mempool holds ({MEMPOOL_EVENTS_MAX:,}); expect retries")

    runs: list[LoadFigures] = []
    for run_number in range(1, options.repeat + 1):
        if options.repeat > 1:
            print(f"\n=== run {run_number} of {options.repeat} ===")
        figures = run_until_undisturbed(options)
        if figures is None:
            return 1
        runs.append(figures)
        if options.repeat > 1:
            print(f"RUN {json.dumps(result_summary(figures, options), sort_keys=True)}")
        if figures.committed != options.events:
            print(
                f"only {figures.committed:,} of {options.events:,} events were committed; "
                "the report was not updated",
                file=sys.stderr,
            )
            return 1

    # The run with the median throughput stands for all of them (the lower middle one when
    # there is an even number): every figure reported comes from that one run.
    chosen = sorted(runs, key=lambda figures: figures.committed_per_s)[(len(runs) - 1) // 2]
    runs_per_s = [figures.committed_per_s for figures in runs]
    summary = result_summary(chosen, options)
    if options.repeat > 1:
        summary["runs_committed_events_per_s"] = [round(value) for value in runs_per_s]
        print(
            f"\nmedian of {options.repeat} runs: {chosen.committed_per_s:,.0f} events/s "
            f"(runs: {', '.join(f'{value:,.0f}' for value in runs_per_s)})"
        )
    document = {"result": summary, "machine": machine, "runs": [asdict(run) for run in runs]}
    write_result(summary, options.json_out, document)

    if options.profile:
        stats = read_stats(options.profile_out)
        if stats is None:
            print(f"the node wrote no profile to {options.profile_out}", file=sys.stderr)
            return 1
        print_profile(stats, PROFILE_JOBS)
        print(f"pstats file: {options.profile_out}")
        if options.report:
            body = profile_section(stats, chosen, options, machine)
            update_report("single_node_profile", "Where the time goes (single node)", body)
    elif options.report:
        body = single_node_section(chosen, runs_per_s, options, machine)
        if options.rate:
            update_report("single_node_paced", "Single node at a fixed offered load", body)
        else:
            update_report("single_node", "Single node", body)
    return 0


def run_until_undisturbed(options: Options) -> LoadFigures | None:
    """A run, run again (up to --retry-disturbed times) while other processes took more
    than QUIET_CORES_MAX cores; the last one's figures, or None if a run failed."""
    retries_left = options.retry_disturbed
    while True:
        figures = run_once(options)
        if figures is None or figures.usage.other_cores <= QUIET_CORES_MAX or not retries_left:
            return figures
        retries_left -= 1
        print(
            f"other processes used {figures.usage.other_cores:.2f} cores during the run; "
            f"running it again ({retries_left} more retries)"
        )


def run_once(options: Options) -> LoadFigures | None:
    """One run on a fresh consortium and node; its figures printed. None if it failed."""
    if options.wait_quiet_s > 0:
        cores_busy = wait_until_quiet(options.wait_quiet_s)
        print(f"other processes use {cores_busy:.2f} cores; starting")
    profiled = None
    if options.profile_out is not None:
        profiled = ProfiledNode(0, options.profile_out, options.profile_clock)
    with scratch_folder("provledger-bench-", options.keep) as workdir:
        try:
            with running_cluster(workdir, nodes=1, profiled=profiled) as cluster:
                node = cluster.nodes[0]
                print(f"node pid {node.pid} serving after {cluster.start_s:.1f} s", flush=True)
                plan = LoadPlan(
                    phase=0,
                    events=options.events,
                    streams=options.streams,
                    node_indexes=[0],
                    batch_size=options.batch,
                    rate_per_s=options.rate,
                    stagger=False,  # paced streams send together, as they always have here
                )
                figures = load_phase("load", cluster, plan)
                print_log_findings(log_findings(cluster.nodes))
        except (BenchmarkError, NodeStartError) as error:
            print(f"benchmark failed: {error}", file=sys.stderr)
            return None
    print("\nfigures under the profiler (not comparable):" if options.profile else "\nfigures:")
    print_load(figures)
    print(f"    node threads: {threads_text(figures.usage.nodes[0], options.profile_out)}")
    return figures


def parse_options(argv: Sequence[str]) -> Options:
    parser = argparse.ArgumentParser(
        description="Benchmark one provledger node: committed events/s, submit->commit "
        "latency, node CPU and peak RSS; figures go to docs/PERFORMANCE.md."
    )
    load = parser.add_argument_group("the load")
    load.add_argument("--events", type=int, default=100_000, help="events to commit")
    load.add_argument("--streams", type=int, default=4, help="concurrent submit processes")
    load.add_argument("--batch", type=int, default=200, help="events per SubmitEvents call")
    load.add_argument("--rate", type=float, default=0.0, help="offered events/s (0: no pacing)")
    comparing = parser.add_argument_group(
        "comparing runs on a shared machine",
        "a committed revision instead of the working tree, which other work may be changing; "
        "the median of several runs; runs again while other processes disturb them",
    )
    comparing.add_argument("--source", metavar="REVISION", help="e.g. HEAD, HEAD~1, a hash")
    comparing.add_argument("--repeat", type=int, default=1, help="runs, each on a fresh node")
    comparing.add_argument(
        "--retry-disturbed",
        metavar="N",
        type=int,
        default=0,
        help=f"run again, up to N times, a run during which other processes used more than "
        f"{QUIET_CORES_MAX} cores (the figures of the last attempt are kept either way)",
    )
    profiling = parser.add_argument_group(
        "profiling", "the node under cProfile; its throughput is then not written to the report"
    )
    profiling.add_argument("--profile", action="store_true", help="where the node's CPU goes")
    profiling.add_argument(
        "--profile-clock",
        choices=("cpu", "wall"),
        default="cpu",
        help="cpu: per-thread CPU time (where the CPU goes; more overhead); wall: cProfile's "
        "own wall clock (cheaper; a thread's waits for the GIL count as time in the function)",
    )
    add_common_options(parser)
    args = parser.parse_args(argv)
    if args.events < 1 or args.streams < 1:
        parser.error("--events and --streams must be at least 1")
    if not 1 <= args.batch <= SUBMIT_BATCH_EVENTS_MAX:
        parser.error(f"--batch must be 1..{SUBMIT_BATCH_EVENTS_MAX} (the node's limit)")
    if args.repeat < 1 or (args.profile and args.repeat != 1):
        parser.error("--repeat must be at least 1, and 1 with --profile")
    if args.rate < 0:
        parser.error("--rate must be positive, or 0 for no pacing")
    args.profile_out = profile_path(args.profile_out, args.profile, "provledger-node")
    return Options(**vars(args))


if __name__ == "__main__":
    sys.exit(main())

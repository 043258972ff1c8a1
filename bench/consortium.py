"""Four-node benchmark: a consortium of four validator processes sharing this one machine.

Theory of operation
-------------------
A fresh four-validator consortium goes into a temporary folder and four REAL node processes
are started on it (each in a process group of its own, all stopped by their PIDs at the end,
whatever happens; see bench/harness/nodes.py). Before the load, the idle consortium
(heartbeat blocks only) is measured for a few seconds. Then three measured phases, each with
its own pre-signed load from spawned streams (bench/harness/load.py, phases.py):

1. Peak throughput. `--streams` streams, stream k on node k mod 4, submit batches of 200 one
   call after the other. Committed events/s = accepted events / (first submit -> arrival on
   node-0 of the block holding the last of them).
2. Latency at half load. Four streams pace batches of 20, staggered, at 50% of the peak rate
   just measured, for `--paced-seconds`; latency per batch on the node it was sent to.
3. Catch-up. node-3 is stopped (SIGTERM); `--catch-up-events` events are committed by the
   other three (their throughput is reported too); node-3 is restarted and `GetCheckpoint`
   is polled on it and on node-0 until its height equals node-0's. Catch-up speed = events
   (and blocks) node-3 committed / (restart -> equal height); the time to serve (restart ->
   the health of its LedgerService SERVING) is reported on its own, and the speed from
   SERVING too, since a restart's fixed cost weighs on a short catch-up.

In each phase the CPU of every node (its event loop, its other threads, its signature-check
worker), its peak RSS, the load client's CPU and other processes' are measured from /proc. At
the end the node logs are searched for what the figures should be read with (invalid
proposals, block syncs of running validators, left-out events, ERROR lines). Figures are
printed, summarised on one `RESULT {json}` line, and written between the `consortium`
markers of docs/PERFORMANCE.md (bench/consortium_report.py).

With `--profile` (or `--profile peak`), node-1 runs under cProfile (bench/_profiled_node.py)
and only the peak phase runs; node-1 is then stopped by SIGTERM, which writes the profile,
and its top entries go between the `consortium_profile` markers. `--profile half
--half-rate R` profiles the half-load phase alone, offered at R events/s
(`consortium_profile_half`). A profiled node slows the consortium (it is on the critical
path whenever it proposes, and it falls behind), so those throughput figures are not
comparable and are not written to the main section.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from consortium_report import (
    PROFILE_JOBS,
    consortium_section,
    print_catch_up,
    profile_section,
    result_summary,
)
from harness import BenchmarkError
from harness.load import STREAMS_PER_PHASE_MAX, LoadPlan
from harness.machine import (
    PhaseUsage,
    describe_machine,
    snapshot,
    usage_between,
    wait_until_quiet,
)
from harness.node_logs import (
    LogFinding,
    log_findings,
    print_log_findings,
    starting_height,
    synced_blocks,
)
from harness.nodes import (
    HEIGHT_POLL_INTERVAL_S,
    Cluster,
    NodeStartError,
    ProfiledNode,
    head_header,
    reader,
    running_cluster,
    wait_started,
)
from harness.phases import LoadFigures, load_phase
from harness.profile import print_profile, read_stats
from harness.report import (
    CommonOptions,
    add_common_options,
    command_line,
    print_load,
    print_machine,
    print_usage,
    profile_path,
    scratch_folder,
    stop_on_sigterm,
    update_report,
    write_result,
)

from provledger.node.settings import SUBMIT_BATCH_EVENTS_MAX

NODES = 4
LAGGING_NODE = 3  # the node stopped and restarted in the catch-up phase
PROFILED_NODE = 1  # under --profile; not node-0, whose SubscribeBlocks stream times the run
# The phases --profile can profile: {phase: (report marker key, section title)}.
PROFILE_REPORTS = {
    "peak": ("consortium_profile", "Where the time goes (four nodes, peak)"),
    "half": ("consortium_profile_half", "Where the time goes (four nodes, half load)"),
}
PEAK_BATCH_EVENTS = 200
PACED_BATCH_EVENTS = 20
PACED_LOAD_SHARE = 0.5
IDLE_WINDOW_S = 5.0
FIRST_BLOCKS_TIMEOUT_S = 60.0
CATCH_UP_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Options(CommonOptions):
    events: int
    streams: int
    catch_up_events: int
    paced_seconds: float
    half_rate: float  # events/s of the half-load phase; 0: half the measured peak
    profile: str | None  # the phase whose node-1 profile is taken: "peak", "half" or None

    @property
    def command(self) -> str:
        """The command that repeats this run."""
        arguments = ["--events", str(self.events), "--streams", str(self.streams)]
        arguments += ["--catch-up-events", str(self.catch_up_events)]
        arguments += ["--paced-seconds", f"{self.paced_seconds:g}"]
        if self.half_rate:
            arguments += ["--half-rate", f"{self.half_rate:g}"]
        if self.profile:
            arguments += ["--profile", self.profile]
        if self.wait_quiet_s:
            arguments += ["--wait-quiet", f"{self.wait_quiet_s:g}"]
        return command_line("consortium.py", arguments)


@dataclass
class CatchUpFigures:
    three_node_load: LoadFigures  # the events committed while the lagging node was down
    node: str
    stop_s: float  # SIGTERM -> exited
    start_height: int  # the lagging node's head when it started again
    start_log_size: int  # the events it held then
    end_height: int
    events: int  # committed by the lagging node while catching up
    blocks: int
    blocks_with_events: int
    serve_s: float  # restart -> its LedgerService's health SERVING (`wait_started`)
    caught_up_s: float  # restart -> height equal to node-0's
    first_synced_block_s: float | None  # restart -> the first "caught up block" log line
    last_synced_block_s: float | None
    synced_gap_max_s: float  # the longest wait between two synced blocks' commits
    synced_blocks_logged: int
    synced_from: dict[str, int]
    events_per_s: float  # from the restart
    blocks_per_s: float
    events_per_s_serving: float  # from SERVING
    usage: PhaseUsage


@dataclass
class Measurement:
    start_s: float  # the four nodes' start to all serving
    idle: PhaseUsage | None = None  # the consortium with no load (heartbeat blocks only)
    peak: LoadFigures | None = None  # None when only the half-load phase is profiled
    paced: LoadFigures | None = None
    catch_up: CatchUpFigures | None = None
    log_findings: list[LogFinding] = field(default_factory=list)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    stop_on_sigterm()
    machine = describe_machine()
    print(
        f"provledger four-node benchmark: {options.events:,} events at peak, "
        f"{options.streams} streams, half load for {options.paced_seconds:g} s, catch-up of "
        f"{options.catch_up_events:,} events"
        + (
            f"; node-{PROFILED_NODE} profiled, {options.profile} phase only"
            if options.profile
            else ""
        )
    )
    print_machine(machine)
    if options.wait_quiet_s > 0:
        cores_busy = wait_until_quiet(options.wait_quiet_s)
        print(f"other processes use {cores_busy:.2f} cores; starting", flush=True)
    started = time.monotonic()
    with scratch_folder("provledger-bench4-", options.keep) as workdir:
        try:
            measurement = run_benchmark(options, workdir)
        except (BenchmarkError, NodeStartError) as error:
            print(f"benchmark failed: {error}", file=sys.stderr)
            return 1
    print(f"\nthe run took {time.monotonic() - started:.0f} s")
    summary = result_summary(measurement, options)
    document = {"result": summary, "machine": machine, "measurement": asdict(measurement)}
    write_result(summary, options.json_out, document)
    loads = [measurement.peak, measurement.paced]
    if measurement.catch_up is not None:
        loads.append(measurement.catch_up.three_node_load)
    if any(load is not None and load.committed != load.events for load in loads):
        print("not every submitted event was committed; the report was not updated")
        return 1
    if options.profile:
        stats = read_stats(options.profile_out)
        if stats is None:
            print(f"node-{PROFILED_NODE} wrote no profile to {options.profile_out}")
            return 1
        print_profile(stats, PROFILE_JOBS)
        print(f"pstats file: {options.profile_out}")
        figures = measurement.peak if options.profile == "peak" else measurement.paced
        if options.report and figures is not None:
            key, title = PROFILE_REPORTS[options.profile]
            body = profile_section(stats, figures, options, machine, PROFILED_NODE)
            update_report(key, title, body)
    elif options.report:
        body = consortium_section(measurement, options, machine)
        update_report("consortium", "Four nodes on one machine", body)
    return 0


def run_benchmark(options: Options, workdir: Path) -> Measurement:
    profiled = None
    if options.profile_out is not None:
        profiled = ProfiledNode(PROFILED_NODE, options.profile_out)
    print(f"starting {NODES} nodes (logs: {workdir / 'logs'})", flush=True)
    with running_cluster(workdir, NODES, profiled) as cluster:
        cluster.wait_for_height(1, FIRST_BLOCKS_TIMEOUT_S)
        pids = ", ".join(f"{node.name} {node.pid}" for node in cluster.nodes)
        print(f"{NODES} nodes serving after {cluster.start_s:.1f} s and committing (pids: {pids})")
        measurement = Measurement(start_s=cluster.start_s, idle=idle_usage(cluster))
        if options.profile != "half":
            plan = LoadPlan(0, options.events, options.streams, range(NODES), PEAK_BATCH_EVENTS)
            measurement.peak = load_phase("peak", cluster, plan)
            print_load(measurement.peak)
            if options.profile == "peak":
                stop_profiled_node(cluster)
                return measurement
            if measurement.peak.committed_per_s <= 0:
                raise BenchmarkError("nothing was committed in the peak phase")
        rate = options.half_rate
        if not rate and measurement.peak is not None:
            rate = PACED_LOAD_SHARE * measurement.peak.committed_per_s
        plan = LoadPlan(
            phase=1,
            events=max(PACED_BATCH_EVENTS, round(rate * options.paced_seconds)),
            streams=NODES,
            node_indexes=range(NODES),
            batch_size=PACED_BATCH_EVENTS,
            rate_per_s=rate,
        )
        measurement.paced = load_phase("half load", cluster, plan)
        print_load(measurement.paced)
        if options.profile == "half":
            stop_profiled_node(cluster)
            return measurement
        if options.catch_up_events > 0:
            measurement.catch_up = catch_up_phase(cluster, options)
            print_catch_up(measurement.catch_up)
        measurement.log_findings = log_findings(cluster.nodes)
        print_log_findings(measurement.log_findings)
        return measurement


def idle_usage(cluster: Cluster) -> PhaseUsage:
    """What the consortium uses with no load: heartbeat blocks, rebroadcasts, status polls."""
    before = snapshot(cluster.pids())
    time.sleep(IDLE_WINDOW_S)
    cluster.check_alive()
    after = snapshot(cluster.pids())
    usage = usage_between(before, after, cluster.members(), {os.getpid()})
    print(f"idle for {usage.window_s:.1f} s:")
    print_usage(usage, 0)
    return usage


def stop_profiled_node(cluster: Cluster) -> None:
    profiled = cluster.nodes[PROFILED_NODE]
    print(f"stopping {profiled.name} (pid {profiled.pid}) so that it writes its profile")
    cluster.stop_node(PROFILED_NODE)


def catch_up_phase(cluster: Cluster, options: Options) -> CatchUpFigures:
    """Stop the lagging node, load the other three, restart it and time its catching up."""
    lagging = cluster.nodes[LAGGING_NODE]
    others = [index for index in range(NODES) if index != LAGGING_NODE]
    print(f"\ncatch-up: stopping {lagging.name} (pid {lagging.pid}) with SIGTERM", flush=True)
    stopping = time.monotonic()
    code = cluster.stop_node(LAGGING_NODE)
    stop_s = time.monotonic() - stopping
    print(f"catch-up: {lagging.name} exited with code {code} after {stop_s:.2f} s", flush=True)
    plan = LoadPlan(2, options.catch_up_events, options.streams, others, PEAK_BATCH_EVENTS)
    load = load_phase(f"load while {lagging.name} is down", cluster, plan)
    print_load(load)
    with reader(cluster.nodes[others[0]].address) as reference:
        target = head_header(reference).height
        print(f"catch-up: the others are at height {target}; restarting {lagging.name}")
        before = snapshot(cluster.pids())
        restart_wall, restarted = time.time(), time.monotonic()
        cluster.start_node(LAGGING_NODE)
        wait_started(lagging)
        serving = time.monotonic()
        start_height = starting_height(lagging)
        print(
            f"catch-up: {lagging.name} (pid {lagging.pid}) serving after "
            f"{serving - restarted:.2f} s at height {start_height}",
            flush=True,
        )
        with reader(lagging.address) as lagging_client:
            while True:
                reference_height = head_header(reference).height
                lagging_header = head_header(lagging_client)
                if lagging_header.height >= reference_height:
                    caught_up = time.monotonic()
                    break
                if time.monotonic() > serving + CATCH_UP_TIMEOUT_S:
                    raise BenchmarkError(
                        f"{lagging.name} at height {lagging_header.height} after "
                        f"{CATCH_UP_TIMEOUT_S:.0f} s; the others at {reference_height}\n"
                        f"{lagging.log_tail()}"
                    )
                cluster.check_alive()
                time.sleep(HEIGHT_POLL_INTERVAL_S)
        after = snapshot(cluster.pids())
        start_log_size = head_header(reference, start_height).log_size if start_height else 0
        heights = range(start_height + 1, lagging_header.height + 1)
        blocks_with_events = sum(1 for h in heights if head_header(reference, h).event_count)
    synced = synced_blocks(lagging, restart_wall)
    events = lagging_header.log_size - start_log_size
    blocks = lagging_header.height - start_height

    def per_s(count: int, since: float) -> float:
        return count / (caught_up - since) if caught_up > since else 0.0

    return CatchUpFigures(
        three_node_load=load,
        node=lagging.name,
        stop_s=stop_s,
        start_height=start_height,
        start_log_size=start_log_size,
        end_height=lagging_header.height,
        events=events,
        blocks=blocks,
        blocks_with_events=blocks_with_events,
        serve_s=serving - restarted,
        caught_up_s=caught_up - restarted,
        first_synced_block_s=synced[0][0] if synced else None,
        last_synced_block_s=synced[-1][0] if synced else None,
        synced_gap_max_s=max(
            (later[0] - earlier[0] for earlier, later in itertools.pairwise(synced)),
            default=0.0,
        ),
        synced_blocks_logged=len(synced),
        synced_from=dict(sorted(Counter(peer for _, _, peer in synced).items())),
        events_per_s=per_s(events, restarted),
        blocks_per_s=per_s(blocks, restarted),
        events_per_s_serving=per_s(events, serving),
        usage=usage_between(before, after, cluster.members(), {os.getpid()}),
    )


def parse_options(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        description="Benchmark a four-validator consortium on this machine: peak committed "
        "events/s, submit->commit latency at half of it, a lagging node's catch-up speed; "
        "figures go to docs/PERFORMANCE.md."
    )
    phases = parser.add_argument_group("the phases")
    phases.add_argument("--events", type=int, default=40_000, help="events in the peak phase")
    phases.add_argument("--streams", type=int, default=4, help="streams at peak and in catch-up")
    phases.add_argument("--paced-seconds", type=float, default=25.0, help="half load lasts this")
    phases.add_argument(
        "--half-rate",
        type=float,
        default=0.0,
        metavar="EVENTS_PER_S",
        help="offer the half-load phase at this rate instead of half the measured peak",
    )
    phases.add_argument(
        "--catch-up-events",
        type=int,
        default=30_000,
        help=f"events committed while node-{LAGGING_NODE} is down (0: no catch-up phase)",
    )
    parser.add_argument(
        "--profile",
        nargs="?",
        const="peak",
        choices=sorted(PROFILE_REPORTS),
        help=f"run node-{PROFILED_NODE} under cProfile during one phase and report where its "
        "CPU goes: peak (the default; the peak phase only) or half (the half-load phase only, "
        "at --half-rate); the throughput is then not written to the report",
    )
    add_common_options(parser)
    args = parser.parse_args(argv)
    if args.events < PEAK_BATCH_EVENTS:
        parser.error(f"--events must be at least {PEAK_BATCH_EVENTS}")
    if not 1 <= args.streams <= STREAMS_PER_PHASE_MAX:
        parser.error(f"--streams must be 1..{STREAMS_PER_PHASE_MAX}")
    if args.catch_up_events < 0 or args.paced_seconds <= 0:
        parser.error("--catch-up-events must be >= 0 and --paced-seconds > 0")
    if args.half_rate < 0 or (args.profile == "half" and not args.half_rate):
        parser.error("--half-rate must be positive, and is needed with --profile half")
    if PEAK_BATCH_EVENTS > SUBMIT_BATCH_EVENTS_MAX:
        parser.error(f"batches of {PEAK_BATCH_EVENTS} exceed the node's limit")
    args.profile_out = profile_path(args.profile_out, bool(args.profile), "provledger-consortium")
    return Options(**vars(args))


if __name__ == "__main__":
    sys.exit(main())

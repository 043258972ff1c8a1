"""What bench/consortium.py prints and writes to docs/PERFORMANCE.md: the figures of a run
against the targets (`consortium_section`, `result_summary`), a few sentences computed from
them (`where_the_time_goes`; the section is rewritten on every run, so nothing in it is
written by hand), and where a profiled node's CPU went (`profile_section`)."""

from __future__ import annotations

import math
import pstats
from collections import Counter
from typing import TYPE_CHECKING

from harness import BenchmarkError
from harness.load import MEMPOOL_FULL_BACKOFF_S
from harness.machine import QUIET_CORES_MAX, PhaseUsage
from harness.nodes import HEIGHT_POLL_INTERVAL_S
from harness.phases import LoadFigures
from harness.profile import load_jobs, observations, profile_tables
from harness.report import (
    counts_text,
    fmt_s,
    fmt_us,
    latency_text,
    load_summary,
    machine_sentence,
    node_cells,
    print_usage,
    rss_cells,
    us_per_event,
)

if TYPE_CHECKING:
    from consortium import CatchUpFigures, Measurement, Options

# The targets the figures are compared with (docs/PERFORMANCE.md, "Targets").
TARGET_COMMITTED_PER_S = 3_500
TARGET_HALF_LOAD_P99_MS = 1_000
TARGET_CATCH_UP_PER_S = 20_000
TARGET_RESTART_TO_SERVING_S = 5.0  # stated for a node holding 1,000,000 events
SATURATED_SHARE = 0.9  # CPU busy above this share of the cores: the machine was saturated
COSTLIER_AT_HALF_LOAD = 1.2  # per-event cost at half load above this × peak's is pointed out

PROFILE_JOBS = load_jobs("consortium")  # see bench/harness/profile_jobs.toml


def print_catch_up(figures: CatchUpFigures) -> None:
    c = figures
    print(
        f"  catch-up: {c.node} committed {c.events:,} events in {c.blocks} blocks "
        f"(heights {c.start_height + 1}-{c.end_height}, {c.blocks_with_events} holding events) "
        f"in {c.caught_up_s:.2f} s from its restart = {c.events_per_s:,.0f} events/s, "
        f"{c.blocks_per_s:,.1f} blocks/s; from SERVING {c.events_per_s_serving:,.0f} events/s\n"
        f"    restart -> SERVING {c.serve_s:.2f} s; first / last synced block logged at "
        f"{fmt_s(c.first_synced_block_s)} / {fmt_s(c.last_synced_block_s)} (longest gap "
        f"between two {c.synced_gap_max_s:.2f} s); {c.synced_blocks_logged} blocks synced "
        f"(from {c.synced_from}); graceful stop took {c.stop_s:.2f} s",
        flush=True,
    )
    print_usage(c.usage, c.events)


def result_summary(measurement: Measurement, options: Options) -> dict[str, object]:
    m = measurement
    summary: dict[str, object] = {
        "nodes": len(m.idle.nodes) if m.idle is not None else None,
        "events": options.events,
        "streams": options.streams,
        "profiled": options.profile,
        "nodes_start_s": round(m.start_s, 2),
    }
    if m.peak is not None:
        summary |= load_summary(m.peak, "peak_")
        summary["peak_node_cpu_s"] = [round(node.cpu_s, 1) for node in m.peak.usage.nodes]
        summary["peak_node_rss_mib"] = [round(node.peak_rss_mib) for node in m.peak.usage.nodes]
    if m.paced is not None:
        summary |= load_summary(m.paced, "half_load_")
    if m.catch_up is not None:
        c = m.catch_up
        summary |= load_summary(c.three_node_load, "three_node_")
        summary |= {
            "catch_up_events": c.events,
            "catch_up_blocks": c.blocks,
            "catch_up_events_per_s": round(c.events_per_s),
            "catch_up_blocks_per_s": round(c.blocks_per_s, 1),
            "catch_up_events_per_s_from_serving": round(c.events_per_s_serving),
            "restart_to_serving_s": round(c.serve_s, 2),
            "catch_up_s": round(c.caught_up_s, 2),
            "catch_up_other_processes_cores": round(c.usage.other_cores, 2),
        }
    return summary


def verdict(value: float, target: float, higher_is_better: bool = True) -> str:
    if math.isnan(value):
        return "not measured"
    if higher_is_better:
        return f"{'met' if value >= target else 'NOT met'} ({value / target:.0%} of the target)"
    return f"{'met' if value <= target else 'NOT met'} ({value / target:.2f}× the limit)"


def usage_table(rows: list[tuple[str, PhaseUsage, int]]) -> list[str]:
    """CPU by phase and node, then peak RSS by phase and node."""
    names = [node.name for node in rows[0][1].nodes]
    lines = [
        "| phase | window | "
        + " | ".join(names)
        + " | all nodes per committed event | load client | other processes |",
        "|---|---:|" + "---:|" * len(names) + "---:|---:|---:|",
    ]
    for label, usage, events in rows:
        lines.append(
            f"| {label} | {usage.window_s:.1f} s | "
            + " | ".join(node_cells(usage))
            + f" | {fmt_us(us_per_event(usage, events))} | {usage.client_cpu_s:.1f} s | "
            f"{usage.other_cores:.2f} cores |"
        )
    lines += [
        "",
        "Peak RSS (VmHWM, the peak since each process started) at the end of each phase, "
        "node process + its largest worker:",
        "",
        "| phase | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for label, usage, _ in rows:
        lines.append(f"| {label} | " + " | ".join(rss_cells(usage)) + " |")
    return lines


def where_the_time_goes(measurement: Measurement, machine: dict[str, str | int]) -> list[str]:
    """A few sentences computed from the figures."""
    peak = measurement.peak
    if peak is None:
        return []
    usage = peak.usage
    nodes = len(usage.nodes)
    cores = int(machine["cpus_usable"])
    nodes_s = usage.nodes_cpu_s
    loop_s = sum(node.loop_cpu_s for node in usage.nodes)
    workers_s = sum(node.workers_cpu_s for node in usage.nodes)
    threads_s = nodes_s - loop_s - workers_s
    per_node_us = us_per_event(usage, peak.committed) / nodes
    ceiling = cores * 1e6 / (per_node_us * nodes) if per_node_us else math.nan
    lines = []
    if measurement.idle is not None:
        idle = measurement.idle
        lines.append(
            f"- Idle (heartbeat blocks only) the {nodes} nodes used "
            f"{idle.cores(idle.nodes_cpu_s):.2f} cores."
        )
    saturated = (
        usage.cores(nodes_s + usage.client_cpu_s) + usage.other_cores >= SATURATED_SHARE * cores
    )
    lines += [
        f"- At peak the {nodes} nodes used {usage.cores(nodes_s):.2f} of the {cores} cores, the "
        f"load client {usage.cores(usage.client_cpu_s):.2f} and other processes "
        f"{usage.other_cores:.2f}: the machine was {'' if saturated else 'not '}saturated. "
        f"Each node spent {per_node_us:,.0f} µs of CPU per committed event (every node "
        "admits, checks and commits every event, whether submitted to it or gossiped): "
        f"{loop_s / nodes_s:.0%} on its event-loop thread, {threads_s / nodes_s:.0%} in its "
        f"other threads and {workers_s / nodes_s:.0%} in its signature-check worker. At that "
        f"cost {cores} cores can commit at most {ceiling:,.0f} events/s with {nodes} "
        f"validators; the target of {TARGET_COMMITTED_PER_S:,} needs at most "
        f"{cores * 1e6 / TARGET_COMMITTED_PER_S / nodes:,.0f} µs per event per node.",
    ]
    busiest = max(usage.nodes, key=lambda node: node.cpu_s)
    quietest = min(usage.nodes, key=lambda node: node.cpu_s)
    lines.append(
        f"- The load is even across nodes: the busiest ({busiest.name}) used "
        f"{busiest.cpu_s:.1f} s, the least busy ({quietest.name}) {quietest.cpu_s:.1f} s; "
        f"proposers of the {peak.blocks} blocks: {counts_text(peak.proposers)}. Blocks were "
        f"large (up to {peak.block_events_max:,} events): at peak an event waits in a mempool "
        "behind the blocks before it, hence submit→commit p50 "
        f"{peak.latency_ms['p50']:,.0f} ms."
    )
    if measurement.paced is not None:
        paced = measurement.paced
        paced_us = us_per_event(paced.usage, paced.committed) / nodes
        lines.append(
            f"- At half load ({paced.offered_per_s:,.0f} events/s offered in batches of "
            f"{paced.batch_size}) the nodes used {paced.usage.cores(paced.usage.nodes_cpu_s):.2f}"
            f" cores: {paced_us:,.0f} µs per event per node, {paced_us / per_node_us:.1f}× the "
            f"cost at peak, with {paced.committed / max(1, paced.blocks):,.0f} events per block "
            f"on average (up to {paced.block_events_max:,}) instead of "
            f"{peak.committed / max(1, peak.blocks):,.0f}"
            + (
                ". Half the peak rate is not half the work: costs per call, per gossip batch "
                "and per block weigh more."
                if paced_us > COSTLIER_AT_HALF_LOAD * per_node_us
                else "."
            )
        )
    if measurement.catch_up is not None:
        lines += catch_up_sentences(measurement.catch_up, nodes, cores)
    return lines


def catch_up_sentences(c: CatchUpFigures, nodes: int, cores: int) -> list[str]:
    three = c.three_node_load
    lagging = next(node for node in c.usage.nodes if node.name == c.node)
    three_cores = three.usage.cores(three.usage.nodes_cpu_s)
    short_of_cpu = three_cores + three.usage.other_cores >= SATURATED_SHARE * cores
    return [
        f"- With {c.node} down the others committed {three.committed_per_s:,.0f} events/s "
        f"using {three_cores:.2f} cores{'' if short_of_cpu else '; they were not short of CPU'}"
        f". One height in {nodes} has the stopped node as its round-0 proposer "
        f"(height + round mod {nodes}) and waits for the propose timeout before round 1 "
        f"(proposers of the blocks: {counts_text(three.proposers)}).",
        f"- Catching up, {c.node} used {lagging.cpu_s:.1f} s of CPU "
        f"({c.usage.cores(lagging.cpu_s):.2f} cores, {lagging.loop_cpu_s:.1f} s on its event "
        f"loop) over {c.usage.window_s:.1f} s, start-up included: "
        f"{lagging.cpu_s / max(1, c.events) * 1e6:,.0f} µs per event (each synced block's "
        "certificate checked and its events re-executed: decode, signature, rules, Merkle log, "
        f"one synced batch per block). The target of {TARGET_CATCH_UP_PER_S:,} events/s allows "
        f"{1e6 / TARGET_CATCH_UP_PER_S:,.0f} µs per event.",
    ]


def figure_rows(measurement: Measurement) -> list[str]:
    """The table of figures against the targets."""
    peak, paced, catch_up = measurement.peak, measurement.paced, measurement.catch_up
    if peak is None:
        raise BenchmarkError("the report needs the peak phase")
    nodes = len(peak.usage.nodes)
    rows = [
        "| figure | value | target |",
        "|---|---|---|",
        f"| committed events/s at peak, {nodes} validators | **{peak.committed_per_s:,.0f}** "
        f"({peak.committed:,} events in {peak.elapsed_s:.2f} s; admitted "
        f"{peak.admitted_per_s:,.0f}/s) | ≥ {TARGET_COMMITTED_PER_S:,}: "
        f"{verdict(peak.committed_per_s, TARGET_COMMITTED_PER_S)} |",
        f"| submit→commit per batch of {peak.batch_size} at peak, p50 / p90 / p99 / max | "
        f"{latency_text(peak.latency_ms)} ms | (none at peak) |",
        f"| blocks at peak | {peak.blocks} holding events, up to {peak.block_events_max:,} "
        f"events each ({peak.committed / max(1, peak.blocks):,.0f} on average) | |",
    ]
    loads = [peak]
    if paced is not None:
        loads.append(paced)
        p99 = paced.latency_ms["p99"]
        rows += [
            f"| half load: offered / committed events/s | {paced.offered_per_s:,.0f} / "
            f"{paced.committed_per_s:,.0f} ({paced.committed:,} events, batches of "
            f"{paced.batch_size}, {paced.elapsed_s:.1f} s; latest send "
            f"{paced.send_lag_max_ms:,.0f} ms behind schedule) | |",
            "| half load: submit→commit per batch, p50 / p90 / p99 / max | "
            f"{latency_text(paced.latency_ms, bold='p99')} ms ({paced.batches:,} batches) | "
            f"p99 ≤ {TARGET_HALF_LOAD_P99_MS:,} ms: "
            f"{verdict(p99, TARGET_HALF_LOAD_P99_MS, higher_is_better=False)} |",
        ]
    if catch_up is not None:
        c = catch_up
        loads.append(c.three_node_load)
        first_after_serving = (
            c.first_synced_block_s - c.serve_s if c.first_synced_block_s is not None else None
        )
        rows += [
            f"| catch-up of {c.node}: events/s from its restart to equal height | "
            f"**{c.events_per_s:,.0f}** ({c.events:,} events, {c.blocks} blocks in "
            f"{c.caught_up_s:.2f} s = {c.blocks_per_s:,.1f} blocks/s) | "
            f"≥ {TARGET_CATCH_UP_PER_S:,}: {verdict(c.events_per_s, TARGET_CATCH_UP_PER_S)} |",
            "| catch-up: events/s from SERVING to equal height | "
            f"{c.events_per_s_serving:,.0f} ({c.caught_up_s - c.serve_s:.2f} s) | |",
            f"| restart of {c.node} to gRPC SERVING (holding {c.start_log_size:,} events in "
            f"{c.start_height} blocks) | {c.serve_s:.2f} s | ≤ "
            f"{TARGET_RESTART_TO_SERVING_S:g} s, but at 1,000,000 events (not measured here) |",
            f"| blocks fetched by block sync (SyncBlocks) | {c.synced_blocks_logged} of "
            f"{c.blocks}; the first committed {fmt_s(c.first_synced_block_s)} after the "
            f"restart ({fmt_s(first_after_serving)} after SERVING), the last "
            f"{fmt_s(c.last_synced_block_s)}; longest wait between two "
            f"{c.synced_gap_max_s:.2f} s | |",
            f"| validators other than {c.node}, while it was down: committed events/s | "
            f"{c.three_node_load.committed_per_s:,.0f} ({c.three_node_load.committed:,} "
            "events) | |",
        ]
    rejections: Counter[str] = Counter()
    for load in loads:
        rejections.update(load.rejections)
    rows += [
        "| `mempool_full` results retried / other rejections | "
        f"{sum(load.mempool_full_retries for load in loads):,} / "
        f"{counts_text(dict(rejections), quote='`')} | |",
        f"| {nodes} nodes: start to all SERVING | {measurement.start_s:.1f} s | |",
    ]
    for finding in measurement.log_findings:
        example = finding.example.replace("|", "\\|").replace("`", "'")
        rows.append(
            f"| node logs: {finding.label} | {counts_text(finding.counts)}; e.g. `{example}` | |"
        )
    return rows


def consortium_section(
    measurement: Measurement, options: Options, machine: dict[str, str | int]
) -> str:
    m = measurement
    peak, paced, catch_up = m.peak, m.paced, m.catch_up
    if peak is None:
        raise BenchmarkError("the report needs the peak phase")
    nodes = len(peak.usage.nodes)
    usage_rows = [("idle (no load)", m.idle, 0)] if m.idle is not None else []
    usage_rows.append(("peak", peak.usage, peak.committed))
    if paced is not None:
        usage_rows.append(("half load", paced.usage, paced.committed))
    if catch_up is not None:
        three = catch_up.three_node_load
        usage_rows.append((f"load while {catch_up.node} is down", three.usage, three.committed))
        usage_rows.append((f"{catch_up.node} catching up", catch_up.usage, catch_up.events))
    disturbed = [label for label, usage, _ in usage_rows if usage.other_cores > QUIET_CORES_MAX]
    pace = f"{options.half_rate:,.0f} events/s" if options.half_rate else "half the measured peak"
    lines = [
        f"Measured {machine['date']} at commit {machine['commit']}.",
        "",
        *figure_rows(measurement),
        "",
        "CPU by phase, per node: total = its event-loop thread + its other threads (gRPC's "
        "C-core threads, the block-commit worker thread, LevelDB compaction) + the other "
        "processes of its process group (its signature-check worker), from utime+stime in "
        "`/proc`; in brackets the share of a core it used:",
        "",
        *usage_table(usage_rows),
        "",
        "CPU used by other processes is the machine's busy time (`/proc/stat`) minus the "
        "nodes' and the load client's"
        + (
            f"; more than {QUIET_CORES_MAX} cores during: {', '.join(disturbed)} — the figures "
            "of those phases are lower than a quiet machine would give."
            if disturbed
            else "."
        ),
        "",
        "Where the time goes (from the figures above; see the profile section below, if "
        "present, for inside one node):",
        "",
        *where_the_time_goes(measurement, machine),
        "",
        f"Command: `{options.command}`",
        "",
        machine_sentence(
            machine,
            f"The {nodes} nodes, their signature-check workers and the load client all share "
            "these cores.",
        ),
        "",
        f"Method: a fresh {nodes}-validator consortium (`consortium init`, mutual TLS between "
        f"validators) in a temporary folder; {nodes} real node processes (`provledger node "
        "run`), each in a process group of its own and stopped by its PID at the end. Load: "
        "`asset_registered` events with fresh asset ids from agency-a, agency-b and exchange "
        "in turn, all signed before the clock starts, submitted by spawned stream processes "
        "(one gRPC channel each, over TLS under the consortium CA as every client's, stream "
        f"k on node k mod {nodes}) with `SubmitEvents`; a "
        f"`mempool_full` result is retried after {MEMPOOL_FULL_BACKOFF_S * 1000:.0f} ms. "
        f"Peak: {options.events:,} events, {options.streams} streams, batches of "
        f"{peak.batch_size} one call after the other; throughput is committed events over "
        "first submit → arrival on node-0 (through a `SubscribeBlocks` stream opened before "
        "the load) of the block holding the last one. Half load: batches of "
        f"{paced.batch_size if paced else '-'} from {paced.streams if paced else '-'} "
        f"streams, staggered and paced at {pace} for {options.paced_seconds:g} s; latency per "
        "batch from its first send to the arrival, through `SubscribeBlocks` on the node it "
        "was sent to, of the block holding its last event (nearest-rank percentiles; the same "
        "at peak). Catch-up: the last node stopped with SIGTERM, "
        f"{options.catch_up_events:,} events committed by the others ({options.streams} "
        "streams), the last node restarted; `GetCheckpoint` polled every "
        f"{HEIGHT_POLL_INTERVAL_S * 1000:.0f} ms on it and on node-0 until its height equals "
        "node-0's; events = its log size then minus at its start. Idle validators commit "
        "empty heartbeat blocks, so block counts include some. CPU is utime+stime from "
        "`/proc/PID/stat` between the start and the end of each phase; peak RSS is `VmHWM` "
        "from `/proc/PID/status`.",
    ]
    return "\n".join(lines)


def profile_section(
    stats: pstats.Stats,
    figures: LoadFigures,
    options: Options,
    machine: dict[str, str | int],
    profiled_node: int,
) -> str:
    """Where the profiled node's CPU went during the phase whose `figures` are given."""
    total = stats.total_tt  # type: ignore[attr-defined]
    usage = figures.usage
    profiled = usage.nodes[profiled_node]
    others = [node.cpu_s for index, node in enumerate(usage.nodes) if index != profiled_node]
    phase = (
        f"the peak phase only: {figures.events:,} events in batches of {figures.batch_size} "
        f"from {figures.streams} streams, as fast as accepted"
    )
    if options.profile == "half":
        phase = (
            f"the half-load phase only: {figures.events:,} events offered at "
            f"{options.half_rate:,.0f} events/s in batches of {figures.batch_size} from "
            f"{figures.streams} streams"
        )
    lines = [
        f"Profiled {machine['date']} at commit {machine['commit']}: `{options.command}` "
        f"({phase}). {profiled.name} ran under cProfile (`bench/_profiled_node.py`, per-thread "
        "CPU clock, every Python thread) from its start to its SIGTERM after that phase; the "
        f"others ran unprofiled. The profile holds {total:.1f} s; during the load `/proc` "
        f"counted {profiled.main_cpu_s:.1f} s for the profiled node process and "
        f"{profiled.workers_cpu_s:.1f} s for its signature-check worker (not profiled), and "
        f"{min(others):.1f}-{max(others):.1f} s for each unprofiled node with its worker. "
        f"Under the profiler the consortium committed {figures.committed_per_s:,.0f} events/s "
        f"({figures.committed:,} events in {figures.blocks} blocks; submit→commit p50 / p99 "
        f"{figures.latency_ms['p50']:,.0f} / {figures.latency_ms['p99']:,.0f} ms; not "
        f"comparable with an unprofiled run). Other processes used {usage.other_cores:.2f} "
        "cores.",
        "",
        *observations(stats, figures.committed),
        "An event is decoded and checked by the rules at admission (on the node it was sent "
        "to, and on every node it is gossiped to), when its signature check is prepared, and "
        "when a block holding it is executed.",
        "",
        *profile_tables(stats, PROFILE_JOBS),
    ]
    return "\n".join(lines)

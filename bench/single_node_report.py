"""What bench/single_node.py prints and writes to docs/PERFORMANCE.md: the figures of a run
(`single_node_section`, `result_summary`) and where a profiled node's CPU went
(`profile_section`)."""

from __future__ import annotations

import math
import pstats
from pathlib import Path
from typing import TYPE_CHECKING

from harness.load import AUTHORS, MEMPOOL_FULL_BACKOFF_S
from harness.machine import NodeUsage, thread_label
from harness.phases import LoadFigures
from harness.profile import load_jobs, observations, profile_tables, python_thread_names
from harness.report import (
    counts_text,
    latency_text,
    load_summary,
    machine_sentence,
    others_text,
    rates_text,
)

if TYPE_CHECKING:
    from single_node import Options

TARGET_COMMITTED_PER_S = 15_000  # one node (see docs/PERFORMANCE.md, "Targets")
THREADS_REPORTED = 6
PROFILE_THREADS_REPORTED = 4

PROFILE_JOBS = load_jobs("single_node")  # see bench/harness/profile_jobs.toml

METHOD = (
    "Method: a fresh one-validator consortium in a temporary folder and a real node process "
    "(`provledger node run`, in a process group of its own). Each stream is a spawned process "
    "with its own gRPC channel, over TLS under the consortium CA as every client's; all "
    "events are pre-signed before the clock starts. Streams "
    "submit their batches one call after the other; a `mempool_full` result is retried after "
    f"{MEMPOOL_FULL_BACKOFF_S * 1000:.0f} ms. A `SubscribeBlocks` stream opened before the "
    "load notes when each block arrives. Throughput is committed events over the time from "
    "the first submit to the arrival of the block holding the last event. Latency per batch "
    "runs from its first send to the arrival of the block holding its last event (retries "
    "included); per event, from the send that got it accepted to its block's arrival; "
    "nearest-rank percentiles. Node CPU is utime+stime from `/proc/PID/stat` between the "
    "start of the load and the last commit, of the node process (all its threads) and of "
    "the other processes of its process group (its signature-check worker); peak RSS is "
    "`VmHWM` from `/proc/PID/status`. Node threads: `main` runs the event loop (gRPC "
    "handlers, admission, consensus, block execution); the others are named as the OS sees "
    "them, \"(new)\" when started during the load. Python's worker threads and LevelDB's "
    "compaction thread all show as `python` (see the profile section, which tells them "
    "apart). CPU used by other processes is the machine's busy time (`/proc/stat`) minus the "
    "node's and the load client's."
)


def load_description(options: Options) -> str:
    pace = f"offered at {options.rate:,.0f} events/s" if options.rate else "as fast as accepted"
    return (
        f"{options.events:,} asset_registered events from {len(AUTHORS)} members, "
        f"{options.streams} streams, SubmitEvents batches of {options.batch}, {pace}"
    )


def per_event_us(cpu_s: float, events: int) -> float:
    return cpu_s / events * 1e6 if events else math.nan


def threads_text(node: NodeUsage, profile_out: Path | None, count: int = THREADS_REPORTED) -> str:
    """The node's busiest threads, labelled (see `machine.thread_label`)."""
    names = python_thread_names(profile_out)
    return ", ".join(
        f"`{thread_label(thread, names)}` {thread.cpu_s:.1f} s" for thread in node.threads[:count]
    )


def result_summary(figures: LoadFigures, options: Options) -> dict[str, object]:
    node = figures.usage.nodes[0]
    return {
        "events": options.events,
        "streams": options.streams,
        "batch": options.batch,
        "rate": options.rate,
        "profiled": options.profile,
        **load_summary(figures),
        "committed_events_per_s_by_fifth": [round(r) for r in figures.committed_per_s_by_part],
        "event_latency_p50_ms": round(figures.event_latency_ms["p50"]),
        "event_latency_p99_ms": round(figures.event_latency_ms["p99"]),
        "node_cpu_s": round(node.cpu_s, 2),
        "node_cpu_us_per_event": round(per_event_us(node.cpu_s, figures.committed)),
        "main_thread_cpu_us_per_event": round(per_event_us(node.loop_cpu_s, figures.committed)),
        "node_peak_rss_mib": round(node.peak_rss_mib),
    }


def single_node_section(
    figures: LoadFigures,
    runs_per_s: list[float],
    options: Options,
    machine: dict[str, str | int],
) -> str:
    f, usage = figures, figures.usage
    node = usage.nodes[0]
    compared = f"target ≥ {TARGET_COMMITTED_PER_S:,}"
    if options.rate:
        compared = f"offered {options.rate:,.0f}/s"
    if len(runs_per_s) > 1:
        compared += f"; the median of {len(runs_per_s)} runs: {rates_text(runs_per_s)}"
    rows = [
        "| figure | value |",
        "|---|---|",
        f"| committed events/s | **{f.committed_per_s:,.0f}** ({f.committed:,} events in "
        f"{f.elapsed_s:.2f} s; {compared}) |",
        "| committed events/s over each fifth of the events, in order | "
        f"{rates_text(f.committed_per_s_by_part)} |",
        f"| admitted events/s (SubmitEvents answered) | {f.admitted_per_s:,.0f} |",
        "| submit→commit latency per batch, p50 / p90 / p99 / max | "
        f"{latency_text(f.latency_ms)} ms |",
        "| submit→commit latency per event, p50 / p90 / p99 / max | "
        f"{latency_text(f.event_latency_ms)} ms |",
        f"| blocks holding events | {f.blocks} (up to {f.block_events_max:,} events each) |",
        f"| node CPU during the load (process + signature-check worker) | {node.cpu_s:.1f} s "
        f"= {node.main_cpu_s:.1f} + {node.workers_cpu_s:.1f} s = "
        f"{usage.cores(node.cpu_s):.2f} of {machine['cpus_usable']} cores |",
        "| node CPU per committed event (all / event-loop thread) | "
        f"{per_event_us(node.cpu_s, f.committed):,.0f} / "
        f"{per_event_us(node.loop_cpu_s, f.committed):,.0f} µs |",
        f"| node CPU by thread | {threads_text(node, options.profile_out, THREADS_REPORTED)} |",
        f"| node peak RSS (VmHWM), process + worker | {node.peak_rss_mib:,.0f} + "
        f"{node.workers_peak_rss_mib:,.0f} MiB |",
        f"| load client CPU (streams + watcher) | {usage.client_cpu_s:.1f} s |",
        f"| CPU used by other processes during the load | {others_text(usage, quote='`')} |",
        f"| `mempool_full` results retried | {f.mempool_full_retries:,} |",
        f"| other rejections | {counts_text(f.rejections, quote='`')} |",
    ]
    return "\n".join(
        [
            f"Measured {machine['date']} at commit {machine['commit']}.",
            "",
            *rows,
            "",
            f"Command: `{options.command}`",
            "",
            f"Load: {load_description(options)}.",
            "",
            machine_sentence(
                machine,
                "The load client runs on the same machine and its CPU is CPU the node does "
                "not get.",
            ),
            "",
            METHOD,
        ]
    )


def profile_section(
    stats: pstats.Stats,
    figures: LoadFigures,
    options: Options,
    machine: dict[str, str | int],
) -> str:
    total = stats.total_tt  # type: ignore[attr-defined]
    node = figures.usage.nodes[0]
    clock = (
        "per-thread CPU clock"
        if options.profile_clock == "cpu"
        else "wall clock: waits for the GIL count as time"
    )
    lines = [
        f"Profiled {machine['date']} at commit {machine['commit']}: `{options.command}` "
        f"({load_description(options)}). The node ran under cProfile "
        f"(`bench/_profiled_node.py`, {clock}) in each of its Python threads: the event "
        f"loop and the worker that commits blocks. The profile holds {total:.1f} s; `/proc` "
        f"counted {node.main_cpu_s:.1f} s of CPU for the whole process during the load "
        f"(and {node.workers_cpu_s:.1f} s for its signature-check worker, not profiled), by "
        f"thread: {threads_text(node, options.profile_out, PROFILE_THREADS_REPORTED)} (`C-` "
        "threads were started from C: LevelDB's compaction; they and gRPC's own threads are "
        "not profiled). Under the profiler the node committed "
        f"{figures.committed_per_s:,.0f} events/s (not comparable with an unprofiled run).",
        "",
        *observations(stats, figures.committed),
        *profile_tables(stats, PROFILE_JOBS),
    ]
    return "\n".join(lines)

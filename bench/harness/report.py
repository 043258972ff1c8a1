"""What every benchmark prints and writes the same way: its options and output, figures as
text, and the marked sections of docs/PERFORMANCE.md.

A benchmark rewrites only the part of docs/PERFORMANCE.md between its markers
(`<!-- bench:KEY:start -->` and `<!-- bench:KEY:end -->`), read just before; everything else in
the file is written by hand and left as it is. A section whose markers are missing is
appended, with a title.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shlex
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness import REPO_ROOT
from harness.machine import QUIET_CORES_MAX, PhaseUsage
from harness.phases import LoadFigures

REPORT_PATH = REPO_ROOT / "docs" / "PERFORMANCE.md"
REPORT_INTRO = """# provledger performance

Figures measured by the benchmarks in `bench/` on the machine each section names. The sections
between `<!-- bench:... -->` markers are rewritten by the benchmarks; everything else is
written by hand.
"""


# --- the command line and the run's folder ---------------------------------------------------


@dataclass(frozen=True)
class CommonOptions:
    """The options every benchmark has (`add_common_options`); a benchmark's options extend
    these, so that `Options(**vars(parser.parse_args()))` builds them."""

    profile_out: Path | None  # where a profiled node writes its pstats (`profile_path`)
    wait_quiet_s: float
    keep: bool
    report: bool
    json_out: Path | None


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """The options every benchmark has, named as the fields of `CommonOptions`."""
    parser.add_argument("--profile-out", type=Path, help="the pstats file (default: in /tmp)")
    parser.add_argument(
        "--wait-quiet",
        dest="wait_quiet_s",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="first wait up to this long for other processes to leave the CPUs alone "
        f"(at most {QUIET_CORES_MAX} cores busy); the CPU they use meanwhile is reported",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs)")
    parser.add_argument(
        "--no-report", dest="report", action="store_false", help="do not touch PERFORMANCE.md"
    )
    parser.add_argument("--json", dest="json_out", type=Path, help="also write the figures here")


def profile_path(chosen: Path | None, profiled: bool, prefix: str) -> Path | None:
    """Where a profiled node writes its pstats: the path chosen, or a fresh one in /tmp."""
    if not profiled:
        return None
    if chosen is None:
        chosen = Path(tempfile.gettempdir()) / f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}.pstats"
    return chosen.resolve()


def command_line(script: str, arguments: Sequence[str]) -> str:
    """The command that repeats a run, as typed from the repository's root."""
    python = Path(sys.executable)
    with contextlib.suppress(ValueError):
        python = python.relative_to(REPO_ROOT)
    return shlex.join([str(python), f"bench/{script}", *arguments])


def stop_on_sigterm() -> None:
    """SIGTERM ends the benchmark like Ctrl-C would: every `finally` runs, so the nodes and
    streams it started are stopped by their PIDs."""
    signal.signal(signal.SIGTERM, _exit_on_sigterm)


def _exit_on_sigterm(signal_number: int, frame: object) -> None:
    raise SystemExit(128 + signal_number)


@contextlib.contextmanager
def scratch_folder(prefix: str, keep: bool) -> Iterator[Path]:
    """A temporary folder for a run's consortium and logs; removed afterwards unless kept."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield workdir
    finally:
        if keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def print_machine(machine: dict[str, str | int]) -> None:
    print(
        f"machine: {machine['cpus']} CPUs ({machine['cpus_usable']} usable), "
        f"{machine['cpu_model']}, Python {machine['python']}, commit {machine['commit']}"
    )


def write_result(summary: dict[str, object], json_out: Path | None, document: object) -> None:
    """The RESULT line (one JSON object, for comparing runs) and, if asked, a JSON file."""
    print(f"\nRESULT {json.dumps(summary, sort_keys=True)}")
    if json_out is not None:
        json_out.write_text(json.dumps(document, indent=2, default=str) + "\n")


# --- docs/PERFORMANCE.md ---------------------------------------------------------------------


def replace_section(text: str, key: str, title: str, body: str) -> str:
    """`text` with the part between the markers of `key` replaced by `body`; a section with
    `title` and the markers is appended when the markers are missing."""
    start, end = f"<!-- bench:{key}:start -->", f"<!-- bench:{key}:end -->"
    block = f"{start}\n{body.strip()}\n{end}"
    if start in text and end in text and text.index(start) < text.index(end):
        before, rest = text.split(start, 1)
        _, after = rest.split(end, 1)
        return before + block + after
    return text.rstrip("\n") + f"\n\n## {title}\n\n{block}\n"


def update_report(key: str, title: str, body: str) -> None:
    """Rewrite one marked section of docs/PERFORMANCE.md, leaving the rest as it is."""
    REPORT_PATH.parent.mkdir(parents=True, exist_ok=True)
    text = REPORT_PATH.read_text() if REPORT_PATH.exists() else REPORT_INTRO
    scratch = REPORT_PATH.with_name(f".{REPORT_PATH.name}.{os.getpid()}.tmp")
    scratch.write_text(replace_section(text, key, title, body))
    os.replace(scratch, REPORT_PATH)
    print(f"updated {REPORT_PATH.relative_to(REPO_ROOT)} (section {title!r})")


def machine_sentence(machine: dict[str, str | int], sharing: str) -> str:
    """The report's "Machine:" paragraph; `sharing` says who shares its cores."""
    return (
        f"Machine: {machine['cpus']} CPUs ({machine['cpus_usable']} usable), "
        f"{machine['cpu_model']}; {machine['kernel']}; Python {machine['python']}. {sharing}"
    )


# --- figures as text -------------------------------------------------------------------------


def latency_text(latency_ms: dict[str, float], bold: str = "") -> str:
    """p50 / p90 / p99 / max in ms, e.g. "204 / 275 / 339 / 376"; the one named `bold` in
    Markdown bold."""
    return " / ".join(
        f"**{latency_ms[key]:,.0f}**" if key == bold else f"{latency_ms[key]:,.0f}"
        for key in ("p50", "p90", "p99", "max")
    )


def rates_text(rates: Sequence[float]) -> str:
    return " / ".join(f"{rate:,.0f}" for rate in rates) or "-"


def counts_text(counts: dict[str, int], quote: str = "") -> str:
    return ", ".join(f"{quote}{name}{quote} {count:,}" for name, count in counts.items()) or "none"


def us_per_event(usage: PhaseUsage, events: int) -> float:
    """All nodes' CPU per committed event, in µs."""
    return usage.nodes_cpu_s / events * 1e6 if events else math.nan


def fmt_us(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:,.0f} µs"


def fmt_s(value: float | None) -> str:
    return f"{value:.2f} s" if value is not None else "-"


def node_cells(usage: PhaseUsage) -> list[str]:
    """Per node: total CPU = event loop + other threads + workers (share of a core)."""
    cells = []
    for node in usage.nodes:
        if not node.running and node.main_cpu_s == 0:
            cells.append("down")
            continue
        cells.append(
            f"{node.cpu_s:.1f} s = {node.loop_cpu_s:.1f} + {node.main_cpu_s - node.loop_cpu_s:.1f}"
            f" + {node.workers_cpu_s:.1f} ({usage.cores(node.cpu_s):.2f} cores)"
        )
    return cells


def rss_cells(usage: PhaseUsage) -> list[str]:
    """Per node: peak RSS of the node process + its largest worker."""
    return [
        f"{node.peak_rss_mib:,.0f} + {node.workers_peak_rss_mib:,.0f} MiB" if node.running else "-"
        for node in usage.nodes
    ]


def others_text(usage: PhaseUsage, quote: str = "") -> str:
    """The CPU other processes used, with the busiest named."""
    busiest = ", ".join(f"{quote}{name}{quote} {cores:.2f}" for name, cores in usage.busiest_others)
    return f"{usage.other_cores:.2f} cores" + (f" (busiest: {busiest})" if busiest else "")


def load_summary(figures: LoadFigures, prefix: str = "") -> dict[str, object]:
    """A load phase's main figures for the RESULT line, each key starting with `prefix`."""
    f = figures
    summary: dict[str, object] = {
        "committed_events_per_s": round(f.committed_per_s),
        "admitted_events_per_s": round(f.admitted_per_s),
        "offered_events_per_s": round(f.offered_per_s),
        "batch_latency_p50_ms": round(f.latency_ms["p50"]),
        "batch_latency_p99_ms": round(f.latency_ms["p99"]),
        "batch_latency_max_ms": round(f.latency_ms["max"]),
        "nodes_cpu_us_per_event": round(us_per_event(f.usage, f.committed)),
        "other_processes_cores": round(f.usage.other_cores, 2),
        "committed": f.committed,
        "accepted": f.accepted,
        "mempool_full_retries": f.mempool_full_retries,
        "rejections": f.rejections,
    }
    return {prefix + key: value for key, value in summary.items()}


def print_usage(usage: PhaseUsage, events: int) -> None:
    for node, cpu, rss in zip(usage.nodes, node_cells(usage), rss_cells(usage), strict=True):
        print(
            f"    {node.name}: CPU event loop + other threads + workers: {cpu}; "
            f"peak RSS node + worker {rss}"
        )
    print(
        f"    all nodes: {usage.nodes_cpu_s:.1f} s CPU = {usage.cores(usage.nodes_cpu_s):.2f}"
        f" cores over {usage.window_s:.1f} s, {fmt_us(us_per_event(usage, events))} per "
        f"committed event; load client {usage.client_cpu_s:.1f} s; other processes "
        + others_text(usage)
        + (" -- DISTURBED: figures are low" if usage.other_cores > QUIET_CORES_MAX else "")
    )


def print_load(figures: LoadFigures) -> None:
    f = figures
    print(
        f"  {f.phase}: committed {f.committed_per_s:,.0f} events/s ({f.committed:,} of "
        f"{f.events:,} events, first submit -> last commit {f.elapsed_s:.2f} s); "
        f"admitted {f.admitted_per_s:,.0f}/s; offered {f.offered_per_s:,.0f}/s\n"
        f"    committed events/s by fifth of the events: {rates_text(f.committed_per_s_by_part)}"
        "\n"
        f"    latency per batch ({f.batches:,} batches) p50 / p90 / p99 / max "
        f"{latency_text(f.latency_ms)} ms; per event {latency_text(f.event_latency_ms)} ms; "
        f"send lag max {f.send_lag_max_ms:,.0f} ms\n"
        f"    {f.blocks} blocks with events (up to {f.block_events_max:,}), proposers "
        f"{f.proposers}; mempool_full retries {f.mempool_full_retries:,}; "
        f"other rejections: {counts_text(f.rejections)}; pre-signing {f.sign_s:.1f} s",
        flush=True,
    )
    print_usage(f.usage, f.committed)

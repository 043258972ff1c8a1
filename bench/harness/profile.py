"""A profiled node's pstats (written by bench/_profiled_node.py) as the report's tables.

cProfile's cumulative time of a function includes everything it calls, so the "main jobs"
of a node are read as the cumulative time of the functions that start them (`Job`); jobs
overlap where one calls another or a function has several callers. The top tables leave out
the plumbing that holds everything cumulatively: entry points, the event loop, threads.
"""

from __future__ import annotations

import contextlib
import os
import pstats
import sysconfig
import tomllib
from dataclasses import dataclass
from pathlib import Path

from harness import REPO_ROOT

JOBS_PATH = Path(__file__).with_name("profile_jobs.toml")
ENTRIES_PRINTED = 25
ENTRIES_REPORTED = 15
SYNC_SHARE_NOTED = 0.1  # block sync above this share of the profile is pointed out
PLUMBING_PATHS = (
    "/asyncio/",
    "/concurrent/futures/",
    "threading.py",
    "selectors.py",
    "cli/main.py",
    "node/server.py",
    "_profiled_node.py",
)
PLUMBING_FUNCTIONS = ("<method 'run' of '_contextvars.Context' objects>",)
_STDLIB = sysconfig.get_paths()["stdlib"]


@dataclass(frozen=True)
class Job:
    """A node's job, measured as the cumulative time of the first of `functions` (file suffix,
    function name) that the profile holds: code moves between revisions. `depth` nests it
    under the job above."""

    label: str
    functions: tuple[tuple[str, str], ...]
    depth: int = 0


def load_jobs(benchmark: str) -> tuple[Job, ...]:
    """The jobs a benchmark's profile section reports, from JOBS_PATH."""
    with JOBS_PATH.open("rb") as jobs_file:
        table = tomllib.load(jobs_file)[benchmark]
    return tuple(
        Job(
            label=job["job"],
            functions=tuple(name.partition(":")[::2] for name in job["functions"]),
            depth=job.get("depth", 0),
        )
        for job in table
    )


def read_stats(path: Path | None) -> pstats.Stats | None:
    """The pstats a profiled node wrote; None if it wrote none."""
    if path is None or not path.exists():
        return None
    return pstats.Stats(str(path))


def python_thread_names(profile_out: Path | None) -> dict[int, str]:
    """{native id: name} of a profiled node's Python threads, which the wrapper writes to
    OUT.threads (see bench/_profiled_node.py); empty for a node that is not profiled."""
    names = {}
    if profile_out is not None:
        with contextlib.suppress(OSError):
            for line in Path(f"{profile_out}.threads").read_text().splitlines():
                thread_id, _, name = line.partition("\t")
                names[int(thread_id)] = name
    return names


def short_location(file_name: str, line: int, function: str) -> str:
    """file:line(function), the file relative to the package or the standard library."""
    if file_name == "~":
        return function
    path = file_name
    if "/proto/provledger/" in path:  # a revision extracted by --source
        path = path.split("/proto/provledger/", 1)[1]
    elif "site-packages/" in path:
        path = path.split("site-packages/", 1)[1]
    elif path.startswith(str(REPO_ROOT)):
        path = os.path.relpath(path, REPO_ROOT)
    elif path.startswith(_STDLIB):
        path = os.path.relpath(path, _STDLIB)
    return f"{path}:{line}({function})"


def _entries(stats: pstats.Stats) -> dict[tuple[str, int, str], tuple[int, int, float, float]]:
    """{(file, line, function): (primitive calls, calls, tottime, cumtime)}."""
    return {key: entry[:4] for key, entry in stats.stats.items()}  # type: ignore[attr-defined]


def profile_rows(
    stats: pstats.Stats, by_cumulative: bool, count: int, skip_plumbing: bool = False
) -> list[tuple[str, int, float, float]]:
    """(location, calls, tottime, cumtime) of the top `count` functions by own time, or by
    cumulative time."""
    rows = []
    for (file_name, line, function), (_, calls, tottime, cumtime) in _entries(stats).items():
        if skip_plumbing and (
            function in PLUMBING_FUNCTIONS or any(part in file_name for part in PLUMBING_PATHS)
        ):
            continue
        rows.append((short_location(file_name, line, function), calls, tottime, cumtime))
    rows.sort(key=lambda row: -(row[3] if by_cumulative else row[2]))
    return rows[:count]


def function_totals(stats: pstats.Stats, suffix: str, function: str) -> tuple[int, float]:
    """(calls, cumulative seconds) of a function, summed over the profile's entries."""
    calls, cumulative = 0, 0.0
    for (file_name, _, name), (_, entry_calls, _, entry_cumulative) in _entries(stats).items():
        if name == function and file_name.endswith(suffix):
            calls += entry_calls
            cumulative += entry_cumulative
    return calls, cumulative


def job_times(stats: pstats.Stats, jobs: tuple[Job, ...]) -> list[tuple[Job, int, float]]:
    """(job, calls, inclusive CPU) of each job the profile holds."""
    times = []
    for job in jobs:
        for suffix, function in job.functions:
            calls, cumulative = function_totals(stats, suffix, function)
            if cumulative > 0:
                times.append((job, calls, cumulative))
                break
    return times


def observations(stats: pstats.Stats, committed: int) -> list[str]:
    """Sentences about the profile that the figures support, each followed by a blank line."""
    found = []
    decodes, _ = function_totals(stats, "protocol/events.py", "decode")
    applies, _ = function_totals(stats, "protocol/rules.py", "apply_event")
    if committed and decodes:
        found.append(
            f"Each event was decoded {decodes / committed:.1f} times "
            f"({decodes:,} calls of `events.decode` for {committed:,} events) and "
            f"checked by the rules {applies / committed:.1f} times "
            f"({applies:,} calls of `rules.apply_event`)."
        )
    sync_calls, sync_s = function_totals(stats, "node/consensus_driver.py", "_sync_from")
    total = stats.total_tt  # type: ignore[attr-defined]
    if total and sync_s > SYNC_SHARE_NOTED * total:
        found.append(
            f"The profiled node, slowed by the profiler, fell behind the others and spent "
            f"{sync_s:.1f} s ({sync_s / total:.0%}) in block sync (`_sync_from`, {sync_calls:,} "
            "calls) instead of following consensus; the block execution it did there would "
            "otherwise happen when validating proposals."
        )
    return [line for sentence in found for line in (sentence, "")]


def profile_tables(stats: pstats.Stats, jobs: tuple[Job, ...]) -> list[str]:
    """The main jobs' inclusive CPU, and the top functions by own and by cumulative time."""
    total = stats.total_tt  # type: ignore[attr-defined]

    def share(seconds: float) -> str:
        return f"{100 * seconds / total:.0f}%" if total else "-"

    lines = [
        "Inclusive CPU of the node's main jobs (cumulative time; rows overlap: an indented row "
        "is part of the one above, and some functions have several callers):",
        "",
        "| job | calls | CPU s | share |",
        "|---|---:|---:|---:|",
    ]
    for job, calls, seconds in job_times(stats, jobs):
        indent = "&nbsp;" * 2 * job.depth
        lines.append(f"| {indent}{job.label} | {calls:,} | {seconds:.2f} | {share(seconds)} |")
    lines += [
        "",
        f"Top {ENTRIES_REPORTED} functions by own time (tottime):",
        "",
        "| function | calls | tottime s | share | cumtime s |",
        "|---|---:|---:|---:|---:|",
    ]
    for location, calls, tottime, cumtime in profile_rows(stats, False, ENTRIES_REPORTED):
        lines.append(
            f"| `{location}` | {calls:,} | {tottime:.2f} | {share(tottime)} | {cumtime:.2f} |"
        )
    lines += [
        "",
        f"Top {ENTRIES_REPORTED} functions by cumulative time (entry points, the event loop "
        "and thread machinery left out):",
        "",
        "| function | calls | cumtime s | share |",
        "|---|---:|---:|---:|",
    ]
    for location, calls, _, cumtime in profile_rows(
        stats, True, ENTRIES_REPORTED, skip_plumbing=True
    ):
        lines.append(f"| `{location}` | {calls:,} | {cumtime:.2f} | {share(cumtime)} |")
    return lines


def print_profile(stats: pstats.Stats, jobs: tuple[Job, ...]) -> None:
    print("\n--- node profile: main jobs (inclusive CPU s) ---")
    for job, calls, seconds in job_times(stats, jobs):
        print(f"  {seconds:8.2f} s  {calls:>9,} calls  {'  ' * job.depth}{job.label}")
    for order in ("tottime", "cumulative"):
        print(f"\n--- node profile: top {ENTRIES_PRINTED} by {order} ---")
        stats.sort_stats(order).print_stats(ENTRIES_PRINTED)

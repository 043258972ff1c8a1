"""What a node's log says that the figures should be read with.

`NodeProcess` appends every start of a node to the same log, after a line
"=== start N: COMMAND"; the node logs with `logging`'s asctime (local wall-clock time, to the
millisecond) as node/server.py configures it. So a restarted node's latest start is the text
after its last "=== start " line.
"""

from __future__ import annotations

import contextlib
import datetime
import re
from collections.abc import Sequence
from dataclasses import dataclass

from harness import BenchmarkError
from harness.nodes import NodeProcess

LOG_TIME_FORMAT = "%Y-%m-%d %H:%M:%S,%f"
START_MARK = "=== start "
CAUGHT_UP_LINE = re.compile(r"^(\S+ \S+) INFO \S+: caught up block (\d+) from (\S+)", re.M)
SERVING_LINE = re.compile(r"serving gRPC on .* at height (\d+)")
EXAMPLE_CHARS_MAX = 240

# (label, pattern) of the lines worth counting in a run: what went differently than planned.
FINDINGS = (
    ("proposals a validator judged invalid", re.compile(r"WARNING \S+: invalid proposal")),
    ("blocks a running validator fetched by block sync", re.compile(r"caught up block \d+")),
    ("events a proposer left out", re.compile(r"INFO \S+: left out event")),
    ("ERROR lines", re.compile(r"^\S+ \S+ ERROR ", re.M)),
)


def latest_start(node: NodeProcess) -> str:
    return node.log_text().rsplit(START_MARK, 1)[-1]


def starting_height(node: NodeProcess) -> int:
    """The head a node reported when it last started ("serving gRPC ... at height N")."""
    found = SERVING_LINE.search(latest_start(node))
    if found is None:
        raise BenchmarkError(f"{node.name}'s log does not say at which height it started")
    return int(found.group(1))


def synced_blocks(node: NodeProcess, since_wall: float) -> list[tuple[float, int, str]]:
    """(seconds after `since_wall`, height, peer) of each "caught up block N from PEER" line
    the node logged in its latest start."""
    found = []
    for stamp, height, peer in CAUGHT_UP_LINE.findall(latest_start(node)):
        with contextlib.suppress(ValueError):
            logged = datetime.datetime.strptime(stamp, LOG_TIME_FORMAT).timestamp()
            found.append((logged - since_wall, int(height), peer))
    return found


@dataclass
class LogFinding:
    label: str
    counts: dict[str, int]  # by node
    example: str  # the first matching line, with the one after it


def log_findings(nodes: Sequence[NodeProcess]) -> list[LogFinding]:
    """The FINDINGS in each node's first start (a restarted node's catch-up is measured, not
    counted here)."""
    first_starts = {
        node.name: node.log_text().split(f"{START_MARK}2:", 1)[0].splitlines() for node in nodes
    }
    findings = []
    for label, pattern in FINDINGS:
        counts: dict[str, int] = {}
        example = ""
        for name, lines in first_starts.items():
            for number, line in enumerate(lines):
                if not pattern.search(line):
                    continue
                counts[name] = counts.get(name, 0) + 1
                if not example:
                    following = lines[number + 1] if number + 1 < len(lines) else ""
                    example = f"{name}: {line[:EXAMPLE_CHARS_MAX]}" + (
                        f" / next line: {following[:EXAMPLE_CHARS_MAX]}" if following else ""
                    )
        if counts:
            findings.append(LogFinding(label, dict(sorted(counts.items())), example))
    return findings


def print_log_findings(findings: Sequence[LogFinding]) -> None:
    if not findings:
        print("\nnode logs: no invalid proposals, block syncs, left-out events or errors")
        return
    print("\nnode logs (each node's first start):")
    for finding in findings:
        counts = ", ".join(f"{name} {count}" for name, count in finding.counts.items())
        print(f"  {finding.label}: {counts}\n    e.g. {finding.example}")

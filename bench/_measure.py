"""What both benchmarks measure the same way: the machine, its load, percentiles, and the
marked sections of docs/PERFORMANCE.md they rewrite."""

from __future__ import annotations

import contextlib
import math
import os
import platform
import time
from collections.abc import Sequence
from pathlib import Path

CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
QUIET_SAMPLE_S = 2.0
QUIET_CORES_MAX = 0.2  # other processes may use this much CPU before a run counts as disturbed


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine_busy_seconds() -> float:
    """CPU seconds all CPUs have spent busy since boot (/proc/stat: all but idle and iowait)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS_PER_S


def wait_until_quiet(timeout_s: float) -> float:
    """Wait (up to `timeout_s`) until other processes leave the CPUs alone; the cores they
    used in the last sample."""
    deadline = time.monotonic() + timeout_s
    while True:
        busy_before, started = machine_busy_seconds(), time.monotonic()
        time.sleep(QUIET_SAMPLE_S)
        cores_busy = (machine_busy_seconds() - busy_before) / (time.monotonic() - started)
        if cores_busy <= QUIET_CORES_MAX or time.monotonic() > deadline:
            return cores_busy
        print(f"the machine is busy ({cores_busy:.2f} cores used by others); waiting", flush=True)


class BenchmarkError(Exception):
    pass


def percentiles_ms(values_s: Sequence[float]) -> dict[str, float]:
    """Nearest-rank p50, p90, p99 and max, in milliseconds."""
    if not values_s:
        return {"p50": math.nan, "p90": math.nan, "p99": math.nan, "max": math.nan}
    ordered = sorted(values_s)

    def rank(percent: float) -> float:
        return ordered[max(0, math.ceil(percent / 100 * len(ordered)) - 1)] * 1000

    return {"p50": rank(50), "p90": rank(90), "p99": rank(99), "max": ordered[-1] * 1000}


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


def _exit_on_sigterm(signal_number: int, frame: object) -> None:
    raise SystemExit(128 + signal_number)

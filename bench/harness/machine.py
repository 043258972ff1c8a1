"""The machine a benchmark runs on, and what /proc says about the processes on it.

CPU time is utime + stime from /proc/PID/stat (a process, all its threads) or
/proc/PID/task/TID/stat (one thread); peak RSS is VmHWM from /proc/PID/status, the peak since
the process started. A node is its process group: the node process (whose main thread runs
its event loop) and the processes it started (its signature-check worker). A snapshot holds
every process on the machine and the threads of the nodes, so that the CPU used between two
snapshots can be split into the nodes', the load client's and everybody else's; a process
that started in between counts from zero, one that came and went in between is not seen.
Linux only.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import platform
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness import REPO_ROOT

CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
QUIET_SAMPLE_S = 2.0
QUIET_CORES_MAX = 0.2  # other processes may use this much CPU before a run counts as disturbed
OTHER_PROCESSES_LISTED = 3
OTHER_PROCESS_CORES_MIN = 0.01  # a process that used less is not listed among the busiest
NODE_SOURCE_DIRS = ("node", "protocol", "cli", "proto")  # what the measured nodes run
SOURCE_ENV = "PROVLEDGER_BENCH_SOURCE"  # the commit, when running a committed revision


# --- the machine -----------------------------------------------------------------------------


def git_revision() -> str:
    """The short commit, plus the node code changed in the working tree (if any)."""
    try:
        commit = _git("rev-parse", "--short", "HEAD").strip()
        status = _git("status", "--porcelain", "--", *NODE_SOURCE_DIRS)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    changed = [line[3:] for line in status.splitlines() if line.strip()]
    if not changed:
        return commit
    listed = ", ".join(changed[:6]) + (f" and {len(changed) - 6} more" if len(changed) > 6 else "")
    return f"{commit} + uncommitted changes to {listed}"


def _git(*arguments: str) -> str:
    command = ["git", "-C", str(REPO_ROOT), *arguments]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def describe_machine() -> dict[str, str | int]:
    return {
        "cpus": os.cpu_count() or 0,
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "kernel": f"{platform.system()} {platform.release()}",
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": os.environ.get(SOURCE_ENV) or git_revision(),
    }


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


# --- processes and threads -------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessSample:
    name: str
    group: int  # the process group id
    cpu_s: float  # utime + stime, all threads


def _read_stat(stat_path: Path) -> tuple[str, list[str]]:
    """(comm, the fields after it) of a /proc stat file; comm may hold spaces and parens.
    fields[0] is the state, [2] the process group, [11] utime and [12] stime in ticks."""
    text = stat_path.read_text()
    open_paren, close_paren = text.index("("), text.rindex(")")
    return text[open_paren + 1 : close_paren], text[close_paren + 2 :].split()


def _cpu_s(fields: Sequence[str]) -> float:
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS_PER_S


def sample_processes() -> dict[int, ProcessSample]:
    """Every process on the machine: {pid: (command name, process group, CPU so far)}."""
    samples = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                name, fields = _read_stat(entry / "stat")
                samples[int(entry.name)] = ProcessSample(name, int(fields[2]), _cpu_s(fields))
    return samples


def sample_threads(pid: int) -> dict[int, tuple[str, float]]:
    """{thread id: (thread name, CPU so far)} of every thread of a process; {} if it is gone."""
    threads = {}
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError, ValueError, IndexError):
                name, fields = _read_stat(task / "stat")
                threads[int(task.name)] = (name, _cpu_s(fields))
    return threads


def memory_kib(pid: int, field_name: str) -> int:
    """A `Vm...` line of /proc/PID/status in KiB (VmHWM: peak RSS); 0 if the process is gone."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    return 0


# --- usage between two snapshots -------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    at_s: float
    busy_s: float
    processes: dict[int, ProcessSample]
    threads: dict[int, dict[int, tuple[str, float]]]  # the nodes' threads, by node pid


def snapshot(node_pids: Iterable[int]) -> Snapshot:
    return Snapshot(
        time.monotonic(),
        machine_busy_seconds(),
        sample_processes(),
        {pid: sample_threads(pid) for pid in node_pids},
    )


@dataclass(frozen=True)
class ThreadUsage:
    thread_id: int
    name: str  # as the OS sees it
    cpu_s: float
    new: bool  # started during the window
    main: bool  # the process's main thread: a node's event loop


@dataclass
class NodeUsage:
    name: str
    running: bool  # at the end of the window
    main_cpu_s: float  # the node process itself, all its threads
    loop_cpu_s: float  # of which its main thread: the event loop (gRPC handlers, consensus)
    workers_cpu_s: float  # the rest of its process group: signature-check workers
    peak_rss_mib: float  # VmHWM of the node process: its peak since it started
    workers_peak_rss_mib: float  # the largest VmHWM among its workers
    threads: list[ThreadUsage]  # those that used CPU in the window, the busiest first

    @property
    def cpu_s(self) -> float:
        return self.main_cpu_s + self.workers_cpu_s


@dataclass
class PhaseUsage:
    window_s: float
    nodes: list[NodeUsage]
    client_cpu_s: float  # load streams + this process (block watchers, polling)
    other_cores: float  # CPU other processes on the machine used, in cores
    busiest_others: list[tuple[str, float]]  # ("name[pid]", cores), busiest first

    @property
    def nodes_cpu_s(self) -> float:
        return sum(node.cpu_s for node in self.nodes)

    def cores(self, cpu_s: float) -> float:
        """CPU seconds spent over this window, as cores used."""
        return cpu_s / self.window_s if self.window_s > 0 else 0.0


def usage_between(
    before: Snapshot,
    after: Snapshot,
    nodes: Sequence[tuple[str, int | None]],
    client_pids: set[int],
) -> PhaseUsage:
    """CPU each node (name, pid or None if down) and its process group, the load client and
    everything else used between two snapshots."""

    def spent(pid: int) -> float:
        now, then = after.processes.get(pid), before.processes.get(pid)
        if now is None:
            return 0.0
        return max(0.0, now.cpu_s - (then.cpu_s if then is not None else 0.0))

    ours = {pid for pid in client_pids if pid in after.processes}
    node_usages = []
    for name, pid in nodes:
        if pid is None or pid not in after.processes:
            node_usages.append(NodeUsage(name, False, 0.0, 0.0, 0.0, 0.0, 0.0, []))
            continue
        group = [p for p, sample in after.processes.items() if sample.group == pid]
        workers = [p for p in group if p != pid]
        ours.update(group)
        threads = _thread_usage(pid, before.threads.get(pid, {}), after.threads.get(pid, {}))
        node_usages.append(
            NodeUsage(
                name=name,
                running=True,
                main_cpu_s=spent(pid),
                loop_cpu_s=sum(thread.cpu_s for thread in threads if thread.main),
                workers_cpu_s=sum(spent(p) for p in workers),
                peak_rss_mib=memory_kib(pid, "VmHWM") / 1024,
                workers_peak_rss_mib=max(
                    (memory_kib(p, "VmHWM") / 1024 for p in workers), default=0.0
                ),
                threads=threads,
            )
        )
    window_s = after.at_s - before.at_s
    others = []
    for pid, sample in after.processes.items():
        cores = spent(pid) / window_s if window_s > 0 else 0.0
        if pid not in ours and cores >= OTHER_PROCESS_CORES_MIN:
            others.append((f"{sample.name}[{pid}]", cores))
    others.sort(key=lambda item: -item[1])
    ours_cpu_s = sum(spent(pid) for pid in ours)
    return PhaseUsage(
        window_s=window_s,
        nodes=node_usages,
        client_cpu_s=sum(spent(pid) for pid in client_pids),
        other_cores=(
            max(0.0, after.busy_s - before.busy_s - ours_cpu_s) / window_s if window_s > 0 else 0.0
        ),
        busiest_others=others[:OTHER_PROCESSES_LISTED],
    )


def _thread_usage(
    pid: int, before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]
) -> list[ThreadUsage]:
    threads = []
    for thread_id, (name, seconds) in after.items():
        spent = seconds - before.get(thread_id, (name, 0.0))[1]
        if spent > 0:
            new = thread_id not in before
            threads.append(ThreadUsage(thread_id, name, spent, new, main=thread_id == pid))
    return sorted(threads, key=lambda thread: -thread.cpu_s)


def thread_label(thread: ThreadUsage, python_threads: dict[int, str]) -> str:
    """`main` for the event loop's thread, else OS-name-TID, "(new)" if it started during the
    window. Python 3.11 does not name OS threads and a thread started from C inherits its
    creator's name, so Python's worker threads (the executor that runs `Store.commit_block`,
    gRPC's poller) and LevelDB's compaction thread are all "python". Under the profiler, the
    wrapper tells which are Python's (`python_threads`, {native id: name}): they become
    `py:NAME-TID`, and the other "python" ones `C-TID`."""
    if thread.main:
        label = "main"
    elif thread.thread_id in python_threads:
        label = f"py:{python_threads[thread.thread_id]}-{thread.thread_id}"
    elif python_threads and thread.name == "python":
        label = f"C-{thread.thread_id}"
    else:
        label = f"{thread.name}-{thread.thread_id}"
    return label + (" (new)" if thread.new else "")

"""Integrity benchmark: what a node's checks of its own ledger cost, as the ledger grows.

Theory of operation
-------------------
1. A fresh consortium of one validator goes into a temporary folder and a REAL node process
   is started on it (`provledger node run`, in a process group of its own, stopped by its PID
   whatever happens; bench/harness/nodes.py). It is loaded with `--events` `asset_registered`
   events (the harness's pre-signed load, bench/harness/load.py: 4 streams, batches of 200)
   and stopped (SIGTERM).
2. (d) Disk: the bytes of its LevelDB folder (apparent and allocated) per committed event, as
   the node left it, and at the end after a full LevelDB compaction of the folder.
3. (a) The open check (node/store.py opens a ledger for serving only after
   node/integrity.py's `check_recent` has checked the newest blocks):
   - the node restarted `--repeat` times on its folder, each time from the process start
     (`provledger node run` spawned) to its LedgerService's health SERVING (the harness's
     `wait_started`), then stopped again; the first restart is the first open after the
     loaded node stopped (LevelDB replays its .log then);
   - the interpreter's start and the node's imports alone (`python -c "import
     provledger.node.server"`), which are most of a restart;
   - in this process, `--repeat` times: LevelDB's open alone (`Store(..., examine=True)`),
     `check_recent` alone on that store, and a whole `Store(...)` open for serving;
   - cold, if this process may drop the page cache (`echo 3 > /proc/sys/vm/drop_caches`, as
     root): the same whole store open and node restart, each after a drop. Otherwise cold is
     reported as not measured.
4. (b) `provledger node check --config C --json` on the stopped node: wall time, CPU and peak
   RSS (`os.wait4`), events and blocks per second of wall time; it must find the ledger sound.
5. (c) `provledger node repair` needs peers for the blocks its folder lost, so it is measured
   on a consortium of four (`--repair-events`, loaded the same way over the four nodes):
   node-3 is stopped and the records of its newest blocks, those holding the newest half of
   its events, are deleted from its LevelDB; `provledger node check` on it (the walk a repair
   starts with) and then `provledger node repair` are timed while the other three serve;
   the blocks fetched from peers per second are the fetched blocks over (repair - that
   check). node-3 is then started on the repaired folder and must serve and catch up.
Figures are printed, summarised on one `RESULT {json}` line and written between the
`integrity` markers of docs/PERFORMANCE.md (bench/integrity_report.py).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypeVar

import plyvel
from harness import BenchmarkError
from harness.begin import begin
from harness.load import LoadPlan
from harness.machine import machine_busy_seconds
from harness.node_logs import starting_height
from harness.nodes import (
    Cluster,
    NodeStartError,
    head_header,
    reader,
    running_cluster,
    wait_started,
)
from harness.phases import LoadFigures, load_phase
from harness.report import (
    CommonOptions,
    add_common_options,
    command_line,
    print_load,
    scratch_folder,
    update_report,
    write_result,
)
from integrity_report import integrity_section, print_figures, result_summary
from support.processes import provledger_command

from provledger.node import schema
from provledger.node.config import NodeConfig
from provledger.node.integrity import check_recent
from provledger.node.settings import (
    LEVELDB_BLOOM_FILTER_BITS,
    OPEN_CHECK_BLOCKS_MAX,
    OPEN_CHECK_EVENTS_MAX,
)
from provledger.node.store import Store
from provledger.protocol.genesis import Genesis, parse_genesis

LOAD_STREAMS = 4
LOAD_BATCH = 200
REPAIR_NODES = 4
REPAIRED_NODE = 3
DROP_CACHES = Path("/proc/sys/vm/drop_caches")
CATCH_UP_TIMEOUT_S = 300.0

T = TypeVar("T")


@dataclass(frozen=True)
class Options(CommonOptions):
    events: int
    repair_events: int  # 0: no repair phase
    repeat: int
    source: str | None

    @property
    def command(self) -> str:
        arguments = ["--events", str(self.events), "--repair-events", str(self.repair_events)]
        arguments += ["--repeat", str(self.repeat)]
        if self.source:
            arguments += ["--source", self.source]
        return command_line("integrity.py", arguments)


@dataclass
class Disk:
    bytes: int  # apparent size of every file in the folder
    allocated_bytes: int  # st_blocks * 512
    files: dict[str, int]  # by kind: tables, logs, other


@dataclass
class Timed:
    """A command run to its end: its exit code, wall time and the rusage `os.wait4` gave."""

    returncode: int
    wall_s: float
    cpu_s: float
    peak_rss_mib: float
    other_cores: float  # CPU other processes used meanwhile
    stdout: str
    stderr: str


@dataclass
class OpenFigures:
    head_height: int
    window_blocks: int  # the blocks `check_recent` checks at this head
    window_events: int
    restarts_s: list[float]  # process start -> LedgerService SERVING, the first one first
    imports_s: list[float]  # python -c "import provledger.node.server"
    leveldb_open_s: list[float]  # Store(examine=True)
    check_recent_s: list[float]
    store_open_s: list[float]  # Store(...) for serving: LevelDB open + check_recent + witness
    cold_measured: bool = False
    cold_why_not: str = ""
    cold_store_open_s: list[float] = field(default_factory=list)
    cold_restarts_s: list[float] = field(default_factory=list)


@dataclass
class RepairFigures:
    events: int  # in the consortium's ledger
    head_height: int  # node-3's head when it stopped
    cut_height: int  # blocks cut_height..head_height were deleted
    removed_blocks: int
    removed_events: int
    check: Timed  # node check of the damaged folder
    repair: Timed
    local_height: int  # blocks the repair rebuilt from the folder itself
    repaired_head: int
    fetched: dict[str, int]  # blocks, by peer
    fetched_events: int
    restart_serve_s: float  # node-3 on the repaired folder: restart -> SERVING
    load: LoadFigures | None = None

    @property
    def fetched_blocks(self) -> int:
        return sum(self.fetched.values())

    @property
    def fetch_s(self) -> float:
        return self.repair.wall_s - self.check.wall_s


@dataclass
class Measurement:
    load: LoadFigures
    disk: Disk
    disk_compacted: Disk | None
    open: OpenFigures
    check: Timed
    check_report: dict
    repair: RepairFigures | None


def main(argv: Sequence[str] | None = None) -> int:
    begun = begin(
        __file__,
        sys.argv[1:] if argv is None else argv,
        parse_options,
        lambda o: (
            f"provledger integrity benchmark: {o.events:,} events; repair on four nodes "
            f"holding {o.repair_events:,}"
        ),
    )
    if isinstance(begun, int):
        return begun
    options, machine = begun
    try:
        with scratch_folder("provledger-bench-integrity-", options.keep) as workdir:
            measurement = measure(options, workdir)
    except (BenchmarkError, NodeStartError) as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 1
    print_figures(measurement)
    summary = result_summary(measurement, options)
    document = {"result": summary, "machine": machine, "measurement": asdict(measurement)}
    write_result(summary, options.json_out, document)
    if options.report:
        body = integrity_section(measurement, options, machine)
        update_report("integrity", "Ledger integrity checks", body)
    return 0


def measure(options: Options, workdir: Path) -> Measurement:
    with running_cluster(workdir / "single", nodes=1) as cluster:
        node = cluster.nodes[0]
        print(f"node pid {node.pid} serving after {cluster.start_s:.1f} s", flush=True)
        load = load_ledger(cluster, options.events, [0])
        config = NodeConfig.load(node.config)
        genesis = parse_genesis(config.genesis_path.read_bytes())
        code = cluster.stop_node(0)
        print(f"node stopped (exit code {code})", flush=True)
        disk = disk_usage(config.data_dir)
        print(
            f"\n(d) disk: {disk.bytes:,} bytes = {disk.bytes / load.committed:,.0f} per event "
            f"({disk.allocated_bytes:,} allocated; files {disk.files})",
            flush=True,
        )
        opens = measure_open(cluster, config, genesis, options.repeat)
        print(f"\n(b) provledger node check --config {node.config}", flush=True)
        check = run_timed(
            [*provledger_command(), "node", "check", "--config", str(node.config), "--json"],
            workdir / "node-check",
        )
        if check.returncode != 0:
            raise BenchmarkError(f"node check failed ({check.returncode}): {check.stderr[-2000:]}")
        check_report = json.loads(check.stdout)
        if not check_report["sound"]:
            raise BenchmarkError(f"node check did not find the ledger sound: {check.stdout}")
        print(f"  {check.wall_s:.1f} s, {check_report['events']:,} events", flush=True)
        compacted = compact_and_measure(config.data_dir)
    repair = None
    if options.repair_events:
        repair = measure_repair(workdir / "four", options.repair_events)
    return Measurement(load, disk, compacted, opens, check, check_report, repair)


def load_ledger(cluster: Cluster, events: int, node_indexes: list[int]) -> LoadFigures:
    plan = LoadPlan(
        phase=0,
        events=events,
        streams=LOAD_STREAMS,
        node_indexes=node_indexes,
        batch_size=LOAD_BATCH,
    )
    load = load_phase("load", cluster, plan)
    print_load(load)
    if load.committed != events:
        raise BenchmarkError(f"only {load.committed:,} of {events:,} events were committed")
    return load


# --- (d) disk -----------------------------------------------------------------------------------


def disk_usage(folder: Path) -> Disk:
    apparent = allocated = 0
    files = {"tables": 0, "logs": 0, "other": 0}
    for path in folder.rglob("*"):
        if not path.is_file():
            continue
        stat = path.stat()
        apparent += stat.st_size
        allocated += stat.st_blocks * 512
        kind = {".ldb": "tables", ".sst": "tables", ".log": "logs"}.get(path.suffix, "other")
        files[kind] += 1
    return Disk(apparent, allocated, files)


def compact_and_measure(folder: Path) -> Disk:
    """The folder's size after a full LevelDB compaction (the node's own options)."""
    db = plyvel.DB(str(folder), bloom_filter_bits=LEVELDB_BLOOM_FILTER_BITS)
    try:
        db.compact_range()
    finally:
        db.close()
    return disk_usage(folder)


# --- (a) the open check -------------------------------------------------------------------------


def measure_open(
    cluster: Cluster, config: NodeConfig, genesis: Genesis, repeat: int
) -> OpenFigures:
    node = cluster.nodes[0]
    head, window_blocks, window_events = open_window(config.data_dir, genesis)
    print(
        f"\n(a) open check at height {head}: the newest {window_blocks} blocks "
        f"({window_events:,} events)",
        flush=True,
    )
    figures = OpenFigures(head, window_blocks, window_events, [], [], [], [], [])
    for _ in range(repeat):
        figures.restarts_s.append(restart(cluster))
        if starting_height(node) != head:
            raise BenchmarkError(f"{node.name} started at height {starting_height(node)}")
    print(f"  restart -> SERVING: {seconds_text(figures.restarts_s)}", flush=True)
    for _ in range(repeat):
        started = time.monotonic()
        subprocess.run([sys.executable, "-c", "import provledger.node.server"], check=True)
        figures.imports_s.append(time.monotonic() - started)
    print(f"  interpreter and imports: {seconds_text(figures.imports_s)}", flush=True)
    for _ in range(repeat):
        examined, leveldb_open_s = timed(
            lambda: Store(config.data_dir, genesis, create=False, examine=True)
        )
        figures.leveldb_open_s.append(leveldb_open_s)
        try:
            _, check_s = timed(functools.partial(check_recent, examined, genesis))
            figures.check_recent_s.append(check_s)
        finally:
            examined.close()
        store, store_open_s = timed(lambda: Store(config.data_dir, genesis, create=False))
        store.close()
        figures.store_open_s.append(store_open_s)
    print(
        f"  in this process: LevelDB open {seconds_text(figures.leveldb_open_s)}; "
        f"check_recent {seconds_text(figures.check_recent_s)}; whole store open "
        f"{seconds_text(figures.store_open_s)}",
        flush=True,
    )
    why_not = cannot_drop_caches()
    if why_not:
        figures.cold_why_not = why_not
        print(f"  cold cache: not measured ({why_not})", flush=True)
        return figures
    figures.cold_measured = True
    for _ in range(repeat):
        drop_page_cache()
        store, store_open_s = timed(lambda: Store(config.data_dir, genesis, create=False))
        store.close()
        figures.cold_store_open_s.append(store_open_s)
        drop_page_cache()
        figures.cold_restarts_s.append(restart(cluster))
    print(
        f"  cold cache: whole store open {seconds_text(figures.cold_store_open_s)}; "
        f"restart -> SERVING {seconds_text(figures.cold_restarts_s)}",
        flush=True,
    )
    return figures


def open_window(folder: Path, genesis: Genesis) -> tuple[int, int, int]:
    """(head height, blocks, events) that `check_recent` checks (its bounds, as it applies
    them: whole blocks, from the head down)."""
    store = Store(folder, genesis, create=False, examine=True)
    try:
        head = store.head_height
        blocks = events = 0
        height = head
        while height > 0:
            header = store.header(height)
            if header is None:
                raise BenchmarkError(f"block {height} is not stored")
            blocks += 1
            events += header.event_count
            height -= 1
            if blocks >= OPEN_CHECK_BLOCKS_MAX or events >= OPEN_CHECK_EVENTS_MAX:
                break
    finally:
        store.close()
    return head, blocks, events


def restart(cluster: Cluster, index: int = 0) -> float:
    """Start the stopped node and stop it again; process start -> LedgerService SERVING."""
    node = cluster.nodes[index]
    started = time.monotonic()
    cluster.start_node(index)
    wait_started(node)
    serving_s = time.monotonic() - started
    cluster.stop_node(index)
    return serving_s


def timed(make: Callable[[], T]) -> tuple[T, float]:
    """What `make` made, and how long it took."""
    started = time.monotonic()
    made = make()
    return made, time.monotonic() - started


def cannot_drop_caches() -> str:
    """Why this process may not drop the page cache ("" if it may)."""
    if os.geteuid() != 0:
        return "dropping the page cache needs root"
    if not os.access(DROP_CACHES, os.W_OK):
        return f"{DROP_CACHES} is not writable here"
    try:
        drop_page_cache()
    except OSError as error:
        return f"writing {DROP_CACHES} failed: {error}"
    return ""


def drop_page_cache() -> None:
    os.sync()
    DROP_CACHES.write_text("3\n")


def seconds_text(values: Sequence[float]) -> str:
    if not values:
        return "-"
    return (
        f"median {statistics.median(values):.3f} s ("
        + ", ".join(f"{value:.3f}" for value in values)
        + ")"
    )


# --- (b) and (c): commands timed to their end -----------------------------------------------------


def run_timed(command: Sequence[str], output_prefix: Path) -> Timed:
    """Run `command` to its end, its output in files; stopped by its PID if this process is."""
    output_prefix.parent.mkdir(parents=True, exist_ok=True)
    out_path = output_prefix.with_suffix(".out")
    err_path = output_prefix.with_suffix(".err")
    own_before = os.times()
    busy_before = machine_busy_seconds()
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started = time.monotonic()
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        try:
            _, status, usage = os.wait4(process.pid, 0)
        except BaseException:
            process.kill()
            process.wait()
            raise
        wall_s = time.monotonic() - started
        process.returncode = os.waitstatus_to_exitcode(status)
    own_after = os.times()
    cpu_s = usage.ru_utime + usage.ru_stime
    own_s = (own_after.user + own_after.system) - (own_before.user + own_before.system)
    others_s = machine_busy_seconds() - busy_before - cpu_s - own_s
    return Timed(
        returncode=process.returncode,
        wall_s=wall_s,
        cpu_s=cpu_s,
        peak_rss_mib=usage.ru_maxrss / 1024,
        other_cores=max(0.0, others_s) / wall_s if wall_s > 0 else 0.0,
        stdout=out_path.read_text(errors="replace"),
        stderr=err_path.read_text(errors="replace"),
    )


def measure_repair(workdir: Path, events: int) -> RepairFigures:
    print(f"\n(c) repair: a consortium of {REPAIR_NODES} loaded with {events:,} events", flush=True)
    with running_cluster(workdir, nodes=REPAIR_NODES) as cluster:
        load = load_ledger(cluster, events, list(range(REPAIR_NODES)))
        node = cluster.nodes[REPAIRED_NODE]
        config = NodeConfig.load(node.config)
        genesis = parse_genesis(config.genesis_path.read_bytes())
        cluster.stop_node(REPAIRED_NODE)
        head, cut, removed_events = remove_newest_blocks(config.data_dir, genesis)
        print(
            f"  {node.name} stopped at height {head}; blocks {cut}-{head} ({removed_events:,} "
            "events) deleted from its LevelDB",
            flush=True,
        )
        config_path = str(node.config)
        check = run_timed(
            [*provledger_command(), "node", "check", "--config", config_path, "--json"],
            workdir / "damaged-check",
        )
        if check.returncode != 1:
            raise BenchmarkError(f"node check of the damaged folder exited {check.returncode}")
        print(f"  node check of the damaged folder: {check.wall_s:.1f} s", flush=True)
        repair = run_timed(
            [*provledger_command(), "node", "repair", "--config", config_path, "--json"],
            workdir / "repair",
        )
        if repair.returncode != 0:
            raise BenchmarkError(f"node repair failed ({repair.returncode}): {repair.stdout}")
        report = json.loads(repair.stdout)
        if not report["repaired"]:
            raise BenchmarkError(f"node repair did not repair: {repair.stdout}")
        print(f"  node repair: {repair.wall_s:.1f} s; {report['fetched']}", flush=True)
        fetched_events = events_above(config.data_dir, genesis, report["local_height"])
        started = time.monotonic()
        cluster.start_node(REPAIRED_NODE)
        wait_started(node)
        serve_s = time.monotonic() - started
        with reader(cluster.nodes[0].address) as client:
            target = head_header(client).height
        cluster.wait_for_height(target, CATCH_UP_TIMEOUT_S)
        print(f"  {node.name} serves on the repaired folder ({serve_s:.2f} s) and caught up")
    return RepairFigures(
        events=load.committed,
        head_height=head,
        cut_height=cut,
        removed_blocks=head - cut + 1,
        removed_events=removed_events,
        check=check,
        repair=repair,
        local_height=report["local_height"],
        repaired_head=report["head_height"],
        fetched=report["fetched"],
        fetched_events=fetched_events,
        restart_serve_s=serve_s,
        load=load,
    )


def remove_newest_blocks(folder: Path, genesis: Genesis) -> tuple[int, int, int]:
    """Delete the records of the newest blocks, those holding the newest half of the events
    (a lost write of the block records; the head, the head witness and everything derived
    stay); (head, the lowest height deleted, the events those blocks held)."""
    store = Store(folder, genesis, create=False, examine=True)
    try:
        head = store.head_height
        top = store.header(head)
        if top is None:
            raise BenchmarkError(f"block {head} is not stored")
        half = top.log_size // 2
        cut, removed = head, 0
        while cut > 1:
            header = store.header(cut)
            if header is None:
                raise BenchmarkError(f"block {cut} is not stored")
            removed += header.event_count
            if header.log_size - header.event_count <= half:
                break
            cut -= 1
    finally:
        store.close()
    db = plyvel.DB(str(folder))
    try:
        with db.write_batch(sync=True) as batch:
            for height in range(cut, head + 1):
                batch.delete(schema.block_key(height))
    finally:
        db.close()
    return head, cut, removed


def events_above(folder: Path, genesis: Genesis, height: int) -> int:
    """Events in the blocks above `height` in the (repaired) ledger in `folder`."""
    store = Store(folder, genesis, create=False, examine=True)
    try:
        top = store.header(store.head_height)
        base = store.header(height) if height > 0 else None
    finally:
        store.close()
    if top is None:
        raise BenchmarkError("the repaired ledger has no head block")
    return top.log_size - (base.log_size if base is not None else 0)


def parse_options(argv: Sequence[str]) -> Options:
    parser = argparse.ArgumentParser(
        description="Benchmark a node's ledger checks: the open check at start, `provledger "
        "node check`, `provledger node repair` from peers, and disk bytes per event; figures "
        "go to docs/PERFORMANCE.md."
    )
    parser.add_argument("--events", type=int, default=200_000, help="events in the ledger")
    parser.add_argument(
        "--repair-events",
        type=int,
        default=50_000,
        help="events in the four-node consortium a repair is measured on (0: no repair)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="opens and restarts, each way")
    parser.add_argument(
        "--source", metavar="REVISION", help="benchmark a committed revision's node code"
    )
    add_common_options(parser)
    args = parser.parse_args(argv)
    if args.events < 1 or args.repeat < 1 or args.repair_events < 0:
        parser.error("--events and --repeat must be at least 1, --repair-events at least 0")
    args.profile_out = None
    return Options(**vars(args))


if __name__ == "__main__":
    sys.exit(main())

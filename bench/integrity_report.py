"""What bench/integrity.py prints and writes to docs/PERFORMANCE.md: the open check, `node
check`, `node repair` and disk figures (`integrity_section`, `result_summary`,
`print_figures`)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import TYPE_CHECKING

from harness.machine import QUIET_CORES_MAX
from harness.report import machine_sentence

from provledger.node.settings import (
    LEVELDB_WRITE_BUFFER_BYTES,
    OPEN_CHECK_BLOCKS_MAX,
    OPEN_CHECK_EVENTS_MAX,
)

if TYPE_CHECKING:
    from integrity import Disk, Measurement, Options, RepairFigures, Timed

METHOD = (
    "Method: a fresh one-validator consortium in a temporary folder and a real node process "
    "(`provledger node run`, in a process group of its own), loaded through gRPC with the "
    "harness's pre-signed `asset_registered` events (4 streams, batches of 200, as fast as "
    "accepted), then stopped with SIGTERM. Restart to SERVING: the node is started again on "
    "its folder (`provledger node run` spawned) and its LedgerService's gRPC health polled "
    "every 20 ms until SERVING, which it says last in starting (store opened and checked, "
    "gRPC and REST serving, height logged), then stopped; the first restart is the first "
    "open after the load, when LevelDB replays the .log the node left (up to its "
    f"{LEVELDB_WRITE_BUFFER_BYTES // 2**20} MiB write buffer). Interpreter and imports: "
    '`python -c "import provledger.node.server"`. In the benchmark\'s own process: '
    "`Store(folder, genesis, examine=True)` (LevelDB's open and the metadata, nothing "
    "checked), `check_recent` on that store (node/integrity.py: the newest blocks, at most "
    f"{OPEN_CHECK_BLOCKS_MAX} and no more once {OPEN_CHECK_EVENTS_MAX:,} of their events "
    "were checked, each with its certificate, events root, indexes and log root, linked to "
    "the one below), and `Store(folder, genesis)`, the open a node makes (both, and the "
    "head witness). Cold: `sync; echo 3 > /proc/sys/vm/drop_caches` before each. `node "
    "check` and `node repair`: the CLI (`provledger ... --json`) run to its end, wall time "
    "by the monotonic clock, CPU and peak RSS from `os.wait4`; events/s is the events it "
    "checked over its wall time. Repair: a fresh four-validator consortium loaded the same "
    "way over its four nodes; node-3 is stopped and the `b` records (stored blocks) of its "
    "newest blocks, those holding the newest half of its events, are deleted with plyvel "
    "(the head height, the head witness and everything derived from those blocks stay, as "
    "after a lost write); `node check` on it is timed (the walk a repair starts with: "
    "every sound block re-executed on a scratch store), then `node repair` while the other "
    "three serve; blocks fetched per second are the blocks it fetched from peers (SyncBlocks "
    "over mutual TLS, each block's certificate checked and its events re-executed) over the "
    "repair's wall time minus that check's; node-3 is then started on the repaired folder "
    "and must serve and catch up. Disk: every file in the LevelDB folder, apparent size "
    "(`st_size`) and allocated (`st_blocks` × 512), over the events committed; at the end "
    "also after `compact_range()` over the whole database. CPU used by other processes is "
    "the machine's busy time (`/proc/stat`) minus the command's and the benchmark's."
)


def seconds(values: Sequence[float]) -> str:
    return ", ".join(f"{value:.2f}" for value in values)


def median_text(values: Sequence[float], unit: str = "s") -> str:
    if not values:
        return "-"
    runs = f" (runs: {seconds(values)})" if len(values) > 1 else ""
    return f"{statistics.median(values):.3f} {unit}{runs}"


def disk_text(disk: Disk, events: int) -> str:
    return (
        f"{disk.bytes / events:,.0f} bytes per event ({disk.bytes / 2**20:,.1f} MiB; "
        f"allocated {disk.allocated_bytes / events:,.0f} per event; {disk.files['tables']} "
        f"tables, {disk.files['logs']} .log)"
    )


def timed_text(timed: Timed) -> str:
    disturbed = " -- DISTURBED" if timed.other_cores > QUIET_CORES_MAX else ""
    return (
        f"CPU {timed.cpu_s:.1f} s, peak RSS {timed.peak_rss_mib:,.0f} MiB, other processes "
        f"{timed.other_cores:.2f} cores{disturbed}"
    )


def check_events_per_s(measurement: Measurement) -> float:
    return measurement.check_report["events"] / measurement.check.wall_s


def repair_rates(repair: RepairFigures) -> tuple[float, float]:
    """(blocks/s, events/s) fetched from peers."""
    fetch_s = repair.fetch_s
    if fetch_s <= 0:
        return float("nan"), float("nan")
    return repair.fetched_blocks / fetch_s, repair.fetched_events / fetch_s


def print_figures(measurement: Measurement) -> None:
    m = measurement
    o = m.open
    events = m.load.committed
    print("\nfigures:")
    print(f"  ledger: {events:,} events in {o.head_height} blocks")
    print(
        f"  (a) restart -> SERVING: first {o.restarts_s[0]:.3f} s, then "
        f"{seconds(o.restarts_s[1:]) or '-'}; imports {median_text(o.imports_s)}; "
        f"check_recent {median_text(o.check_recent_s)}; LevelDB open "
        f"{median_text(o.leveldb_open_s)}; store open {median_text(o.store_open_s)}"
    )
    if o.cold_measured:
        print(
            f"      cold: store open {median_text(o.cold_store_open_s)}; restart -> SERVING "
            f"{median_text(o.cold_restarts_s)}"
        )
    else:
        print(f"      cold: not measured ({o.cold_why_not})")
    print(
        f"  (b) node check: {m.check.wall_s:.1f} s = {check_events_per_s(m):,.0f} events/s; "
        + timed_text(m.check)
    )
    if m.repair is not None:
        r = m.repair
        blocks_per_s, events_per_s = repair_rates(r)
        print(
            f"  (c) repair: damaged check {r.check.wall_s:.1f} s, repair {r.repair.wall_s:.1f} s;"
            f" {r.fetched_blocks} blocks ({r.fetched_events:,} events) fetched: "
            f"{blocks_per_s:,.1f} blocks/s, {events_per_s:,.0f} events/s from peers"
        )
    print(f"  (d) disk: {disk_text(m.disk, events)}")
    if m.disk_compacted is not None:
        print(f"      after a full compaction: {disk_text(m.disk_compacted, events)}")


def result_summary(measurement: Measurement, options: Options) -> dict[str, object]:
    m = measurement
    o = m.open
    summary: dict[str, object] = {
        "events": m.load.committed,
        "blocks": o.head_height,
        "restart_to_serving_first_s": round(o.restarts_s[0], 3),
        "restart_to_serving_s": [round(value, 3) for value in o.restarts_s],
        "imports_s": round(statistics.median(o.imports_s), 3),
        "check_recent_s": round(statistics.median(o.check_recent_s), 3),
        "store_open_s": round(statistics.median(o.store_open_s), 3),
        "cold_store_open_s": (
            round(statistics.median(o.cold_store_open_s), 3) if o.cold_store_open_s else None
        ),
        "cold_restart_to_serving_s": (
            round(statistics.median(o.cold_restarts_s), 3) if o.cold_restarts_s else None
        ),
        "node_check_s": round(m.check.wall_s, 1),
        "node_check_events_per_s": round(check_events_per_s(m)),
        "node_check_peak_rss_mib": round(m.check.peak_rss_mib),
        "node_check_other_processes_cores": round(m.check.other_cores, 2),
        "disk_bytes_per_event": round(m.disk.bytes / m.load.committed),
        "disk_bytes_per_event_compacted": (
            round(m.disk_compacted.bytes / m.load.committed) if m.disk_compacted else None
        ),
    }
    if m.repair is not None:
        blocks_per_s, events_per_s = repair_rates(m.repair)
        summary |= {
            "repair_events": m.repair.events,
            "repair_s": round(m.repair.repair.wall_s, 1),
            "repair_damaged_check_s": round(m.repair.check.wall_s, 1),
            "repair_fetched_blocks": m.repair.fetched_blocks,
            "repair_fetched_events": m.repair.fetched_events,
            # NaN when the repair took no longer than the check (a small ledger on a busy
            # machine): the subtraction then says nothing.
            "repair_blocks_per_s": None if math.isnan(blocks_per_s) else round(blocks_per_s, 1),
            "repair_events_per_s": None if math.isnan(events_per_s) else round(events_per_s),
        }
    return summary


def figure_rows(measurement: Measurement) -> list[str]:
    m = measurement
    o = m.open
    events = m.load.committed
    rows = [
        "| figure | value |",
        "|---|---|",
        f"| ledger | {events:,} events in {o.head_height:,} blocks (loaded at "
        f"{m.load.committed_per_s:,.0f} events/s) |",
        f"| (a) restart to SERVING, warm cache: the first after the load / the others | "
        f"**{o.restarts_s[0]:.2f} s** / {seconds(o.restarts_s[1:]) or '-'} s |",
        "| (a) of which the interpreter's start and the node's imports | "
        f"{median_text(o.imports_s)} |",
        f"| (a) the open check alone (`check_recent`: the newest {o.window_blocks} blocks, "
        f"{o.window_events:,} events), warm | **{median_text(o.check_recent_s)}** |",
        "| (a) LevelDB's open alone / the whole store open for serving, warm | "
        f"{median_text(o.leveldb_open_s)} / {median_text(o.store_open_s)} |",
    ]
    if o.cold_measured:
        rows.append(
            "| (a) cold page cache: the whole store open / restart to SERVING | "
            f"{median_text(o.cold_store_open_s)} / {median_text(o.cold_restarts_s)} |"
        )
    else:
        rows.append(f"| (a) cold page cache | not measured: {o.cold_why_not} |")
    rows.append(
        f"| (b) `provledger node check` | **{m.check.wall_s:,.1f} s = "
        f"{check_events_per_s(m):,.0f} events/s** ({o.head_height / m.check.wall_s:,.1f} "
        f"blocks/s; {m.check_report['entries_compared']:,} entries compared); "
        f"{timed_text(m.check)} |"
    )
    if m.repair is not None:
        rows += repair_rows(m.repair)
    else:
        rows.append("| (c) `provledger node repair` | not measured (`--repair-events 0`) |")
    rows.append(f"| (d) disk, as the node left it | **{disk_text(m.disk, events)}** |")
    if m.disk_compacted is not None:
        rows.append(
            f"| (d) disk after a full LevelDB compaction | {disk_text(m.disk_compacted, events)} |"
        )
    return rows


def repair_rows(r: RepairFigures) -> list[str]:
    blocks_per_s, events_per_s = repair_rates(r)
    fetched = ", ".join(f"{peer} {count}" for peer, count in sorted(r.fetched.items()))
    return [
        f"| (c) the damage: node-3 of four, holding {r.events:,} events at height "
        f"{r.head_height} | blocks {r.cut_height}-{r.head_height} deleted ({r.removed_blocks} "
        f"blocks, {r.removed_events:,} events) |",
        f"| (c) `provledger node check` of the damaged folder (the walk a repair starts with) "
        f"| {r.check.wall_s:.1f} s; {timed_text(r.check)} |",
        f"| (c) `provledger node repair` | {r.repair.wall_s:.1f} s: blocks 1-{r.local_height} "
        f"rebuilt from the folder, {r.fetched_blocks} blocks ({r.fetched_events:,} events) "
        f"fetched from peers ({fetched}), head {r.repaired_head}; {timed_text(r.repair)} |",
        f"| (c) fetched from peers (repair minus that check: {r.fetch_s:.1f} s) | "
        f"**{blocks_per_s:,.1f} blocks/s = {events_per_s:,.0f} events/s** |",
        f"| (c) node-3 restarted on the repaired folder: to SERVING | {r.restart_serve_s:.2f} s |",
    ]


def integrity_section(
    measurement: Measurement, options: Options, machine: dict[str, str | int]
) -> str:
    lines = [
        f"Measured {machine['date']} at commit {machine['commit']}.",
        "",
        *figure_rows(measurement),
        "",
        f"Command: `{options.command}`",
        "",
        machine_sentence(
            machine,
            "Every command runs on the same machine; the four nodes of the repair share it.",
        ),
        "",
        METHOD,
    ]
    return "\n".join(lines)

"""What bench/rest.py prints and writes to docs/PERFORMANCE.md: the latency and requests/s of
each mode and route (`rest_section`, `result_summary`, `print_mode`)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from harness.machine import QUIET_CORES_MAX
from harness.report import machine_sentence, others_text

from provledger.node.settings import (
    REST_CONNECTIONS_PER_ADDRESS_MAX,
    REST_KEEP_ALIVE_TIMEOUT_S,
)

if TYPE_CHECKING:
    from rest import Measurement, ModeFigures, Options

HISTORY_USES = 60  # bench/rest.py's: asset_used events on the history route's asset
LINEAGE_DEPTH = 16  # bench/rest.py's: derivations in the lineage route's chain

ANSWER_BOUND_S = 5.0  # issue 8: an auditor is answered within this while sockets pile up

MODE_LABELS = {
    "kept alive": "(a) one kept-alive connection",
    "new connection": "(b) a new connection per request",
    "pile from one address": "(c) a new connection per request, under a pile from 127.0.0.1",
    "pile spread over addresses": "(c) a new connection per request, under a pile spread "
    "over addresses",
}

SHORT_LABELS = {
    "kept alive": "(a) kept alive",
    "new connection": "(b) new connection",
    "pile from one address": "(c) pile from one address",
    "pile spread over addresses": "(c) pile spread",
}

METHOD = (
    "Method: a fresh one-validator consortium in a temporary folder and a real node process "
    "(`provledger node run`: LevelDB, gRPC and REST on 127.0.0.1, in a process group of its "
    "own). It is loaded through gRPC with the harness's pre-signed `asset_registered` "
    "events (4 streams, batches of 200), then agency-a uses its first asset "
    f"{HISTORY_USES} times and derives a chain of {LINEAGE_DEPTH} assets, each from the one "
    "before and one more of its registered assets. The routes are asked in turn, one "
    "request at a time, by one client process (Python's `http.client`, which sets "
    "TCP_NODELAY), every request with the auditor's bearer token (`/v1/health` needs "
    "none): `/v1/health`; `/v1/events/{id}` over 256 event "
    "ids sampled from the blocks; `/v1/assets/history` of the used asset (its first page: "
    "50 events); `/v1/lineage` upstream from the last derived asset (the whole chain: 33 "
    "assets, 32 edges). Every answer is read whole and must be a 200. Latency runs from the "
    "request's first byte (from the connect, with a new connection) to its answer's last, "
    "by `time.perf_counter`; nearest-rank percentiles; requests/s is answered requests over "
    "the mode's wall time. Ten requests per route on a kept-alive connection warm the node "
    "up first, untimed. Under a pile: idle TCP sockets, sending nothing, are opened to the "
    "REST port from 127.0.0.1 alone, or from 127.0.0.2, 127.0.0.3, ... at most "
    f"{REST_CONNECTIONS_PER_ADDRESS_MAX // 2} from each (as "
    "tests/integration/test_rest_sockets.py does), and held open by the client; as soon as "
    "the pile is open, the three authenticated routes are asked in turn on a new connection "
    "each from 127.0.0.1 for the window; then the pile is closed, and after a second the "
    "next round starts with a fresh pile. The node closes idle connections after "
    f"{REST_KEEP_ALIVE_TIMEOUT_S} s and displaces the oldest idle one of an address beyond "
    f"{REST_CONNECTIONS_PER_ADDRESS_MAX} (node/rest_connections.py); a pile's sockets it "
    "had closed are counted at the end of each window (a read that finds the end of the "
    "stream or a reset). A failed request is counted, not retried. Node CPU is utime+stime "
    "from `/proc/PID/stat` of the node's process group over each mode; CPU used by other "
    "processes is the machine's busy time (`/proc/stat`) minus the node's and the client's."
)


def fmt_ms(value: float) -> str:
    """Milliseconds with the decimals a sub-millisecond figure needs."""
    if math.isnan(value):
        return "-"
    if value < 10:
        return f"{value:.2f}"
    if value < 100:
        return f"{value:.1f}"
    return f"{value:,.0f}"


def latency_cell(latency_ms: dict[str, float], keys: tuple[str, ...], bold: str = "") -> str:
    return " / ".join(
        f"**{fmt_ms(latency_ms[key])}**" if key == bold else fmt_ms(latency_ms[key]) for key in keys
    )


def print_mode(figures: ModeFigures) -> None:
    f = figures
    print(
        f"  {f.mode}: {f.requests - f.errors:,} of {f.requests:,} requests answered in "
        f"{f.elapsed_s:.2f} s = {f.per_s:,.0f}/s; latency p50 / p90 / p99 / max "
        f"{latency_cell(f.latency_ms, ('p50', 'p90', 'p99', 'max'))} ms; node CPU "
        f"{f.node_cpu_us_per_request:,.0f} µs per request; client {f.usage.client_cpu_s:.1f} s;"
        f" other processes {others_text(f.usage)}"
        + (" -- DISTURBED" if f.usage.other_cores > QUIET_CORES_MAX else ""),
        flush=True,
    )
    for route, latency in f.latency_ms_by_route.items():
        print(
            f"    {route}: p50 / p90 / p99 / max "
            f"{latency_cell(latency, ('p50', 'p90', 'p99', 'max'))} ms, answer "
            f"{f.answer_bytes_by_route[route]:,} bytes"
        )
    for number, pile_round in enumerate(f.rounds, 1):
        print(
            f"    round {number}: pile of {f.pile_sockets} opened in {pile_round.open_s:.2f} s;"
            f" first answer {pile_round.first_answer_s * 1000:,.1f} ms after; the node had "
            f"closed {pile_round.closed_by_node} of its sockets by the end of the window"
        )
    if f.errors:
        print(f"    failed requests: {f.errors} (e.g. {'; '.join(f.error_examples)})")


def result_summary(measurement: Measurement, options: Options) -> dict[str, object]:
    summary: dict[str, object] = {
        "events": options.events,
        "requests_per_route": options.requests,
        "pile_sockets": options.pile_sockets,
        "lineage_nodes": measurement.lineage_nodes,
        "history_page_events": measurement.history_events,
    }
    for mode in measurement.modes:
        key = mode.mode.replace(" ", "_")
        summary |= {
            f"{key}_per_s": round(mode.per_s),
            f"{key}_p50_ms": round(mode.latency_ms["p50"], 3),
            f"{key}_p99_ms": round(mode.latency_ms["p99"], 3),
            f"{key}_max_ms": round(mode.latency_ms["max"], 3),
            f"{key}_errors": mode.errors,
            f"{key}_node_cpu_us_per_request": round(mode.node_cpu_us_per_request),
            f"{key}_other_processes_cores": round(mode.usage.other_cores, 2),
        }
        if mode.rounds:
            summary[f"{key}_first_answer_max_ms"] = round(
                max(r.first_answer_s for r in mode.rounds) * 1000, 1
            )
    return summary


def mode_rows(measurement: Measurement) -> list[str]:
    rows = [
        "| mode | requests | requests/s | latency p50 / p90 / **p99** / max | node CPU per "
        "request | other processes |",
        "|---|---:|---:|---|---:|---|",
    ]
    for mode in measurement.modes:
        failed = f" ({mode.errors} failed)" if mode.errors else ""
        rows.append(
            f"| {MODE_LABELS.get(mode.mode, mode.mode)} | {mode.requests:,}{failed} | "
            f"**{mode.per_s:,.0f}** | "
            f"{latency_cell(mode.latency_ms, ('p50', 'p90', 'p99', 'max'), bold='p99')} ms | "
            f"{mode.node_cpu_us_per_request:,.0f} µs | {others_text(mode.usage, quote='`')} |"
        )
    return rows


def route_rows(measurement: Measurement) -> list[str]:
    modes = measurement.modes
    header = " | ".join(SHORT_LABELS.get(mode.mode, mode.mode) for mode in modes)
    rows = [
        f"| route | answer | {header} |",
        "|---|---:|" + "---|" * len(modes),
    ]
    for route in measurement.routes:
        size = max(mode.answer_bytes_by_route.get(route.name, 0) for mode in modes)
        cells = []
        for mode in modes:
            latency = mode.latency_ms_by_route.get(route.name)
            cells.append(
                latency_cell(latency, ("p50", "p99"))
                if latency is not None and not math.isnan(latency["p50"])
                else "-"
            )
        rows.append(f"| `{route.name}` | {size:,} B | " + " | ".join(cells) + " |")
    return rows


def span(values: list[float] | list[int], form: str) -> str:
    """ "low-high" of `values` in `form`, or one figure when they are all equal."""
    low, high = form.format(min(values)), form.format(max(values))
    return low if low == high else f"{low}-{high}"


def pile_sentences(measurement: Measurement) -> list[str]:
    piles = [mode for mode in measurement.modes if mode.rounds]
    if not piles:
        return []
    first_max_s = max(r.first_answer_s for mode in piles for r in mode.rounds)
    worst_s = max(mode.latency_ms["max"] for mode in piles) / 1000
    failed = sum(mode.errors for mode in piles)
    met = "met" if max(first_max_s, worst_s) <= ANSWER_BOUND_S and not failed else "NOT met"
    sentences = []
    for mode in piles:
        opened = [r.open_s for r in mode.rounds]
        closed = [r.closed_by_node for r in mode.rounds]
        where = (
            "from 127.0.0.1"
            if mode.pile_sources == 1
            else f"spread over {mode.pile_sources} addresses"
        )
        sentences.append(
            f"{mode.pile_sockets} idle sockets {where}: opened in "
            f"{span(opened, '{:.2f}')} s; the first request after the pile was open answered "
            f"in at most {max(r.first_answer_s for r in mode.rounds) * 1000:,.1f} ms; by the "
            f"end of each window the node had closed {span(closed, '{:,}')} of the pile's "
            f"sockets; failed requests: {mode.errors}"
            + (f" (e.g. {mode.error_examples[0]})" if mode.error_examples else "")
            + "."
        )
    return [
        f"Under the piles ({len(piles[0].rounds)} rounds each, a fresh pile each round): "
        + " ".join(sentences)
        + f" The bound of issue 8, an auditor answered within {ANSWER_BOUND_S:.0f} s while "
        f"sockets pile up: {met} (slowest answer under a pile {worst_s * 1000:,.1f} ms)."
    ]


def rest_section(measurement: Measurement, options: Options, machine: dict[str, str | int]) -> str:
    load = measurement.load
    lines = [
        f"Measured {machine['date']} at commit {machine['commit']}.",
        "",
        *mode_rows(measurement),
        "",
        "Latency by route, p50 / p99 in ms (the answer's size in bytes, body only):",
        "",
        *route_rows(measurement),
        "",
        *pile_sentences(measurement),
        "",
        f"Command: `{options.command}`",
        "",
        f"Ledger: {load.committed:,} `asset_registered` events committed in {load.blocks} "
        f"blocks, then {HISTORY_USES} uses of one asset and {LINEAGE_DEPTH} derivations; the "
        f"history page read holds {measurement.history_events} events, the lineage "
        f"{measurement.lineage_nodes} assets. Before and after a change to the node, add "
        "`--source REV` (and `--no-report --json FILE` for the run that is not kept).",
        "",
        machine_sentence(
            machine,
            "The client runs on the same machine and its CPU is CPU the node does not get.",
        ),
        "",
        METHOD,
    ]
    return "\n".join(lines)

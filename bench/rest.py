"""REST benchmark: how fast one node answers its auditor REST API, on a kept-alive connection,
on a new connection per request, and while idle sockets pile up against it.

Theory of operation
-------------------
1. A fresh consortium of one validator goes into a temporary folder and a REAL node process
   is started on it (`provledger node run`: LevelDB, gRPC and REST on 127.0.0.1, in a process
   group of its own, stopped by its PID at the end whatever happens; bench/harness/nodes.py).
2. It is loaded with `--events` `asset_registered` events (the harness's pre-signed load,
   bench/harness/load.py), then with a lineage and a history: agency-a derives a chain of
   `LINEAGE_DEPTH` assets, each from the one before and one more of its registered assets,
   and uses its first asset `HISTORY_USES` times. Event ids are sampled from the committed
   blocks.
3. Four routes are asked, in turn, one request at a time, every request with the auditor's
   bearer token (`/v1/health` needs none and ignores it): `/v1/health`, `/v1/events/{id}`
   (the sampled ids in turn), `/v1/assets/history` (the used asset: a first page of 50
   events) and `/v1/lineage` (upstream from the last derived asset: every asset of the
   chain). Each answer must be a 200 and is read whole; latency runs from the request's
   first byte (the connect, for a new connection) to its answer's last.
4. The modes, each measured on its own:
   (a) kept alive: every request on one HTTP/1.1 connection;
   (b) a new connection per request (connect, request, answer, close);
   (c) under a pile: `--pile-sockets` idle TCP sockets are opened to the REST port (from
       127.0.0.1 alone, then spread over 127.0.0.2, .3, ..., as tests/integration/
       test_rest_sockets.py does) and held open by this process; for `--pile-window`
       seconds after the pile is open, the authenticated routes are asked on a new
       connection each from 127.0.0.1 (so a newcomer must get in past the pile; the guard,
       node/rest_connections.py, displaces the oldest idle connection of an address over its
       cap and closes idle connections after its keep-alive timeout). `--pile-rounds`
       rounds, each with a fresh pile. A failed request is counted, not retried.
5. Figures: per mode and per route, nearest-rank p50 / p90 / p99 / max latency and
   requests/s (requests / the mode's wall time); the node's CPU per request, the client's
   and other processes' from /proc (bench/harness/machine.py). Under a pile also: how long
   opening it took, the first answer after it was open (the issue's bound: answered within
   5 s) and how many of its sockets the node had closed by the end of each window. They are
   printed, summarised on one `RESULT {json}` line and written between the `rest` markers of
   docs/PERFORMANCE.md (bench/rest_report.py).

Before and after a change to the node (TCP_NODELAY, edcc018), `--source REV` benchmarks a
committed revision's node code instead of the working tree (bench/harness/revision.py);
`--no-report --json FILE` keeps such a run out of the report.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import sys
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from harness import BenchmarkError
from harness.begin import begin
from harness.load import AUTHORS, LoadPlan
from harness.machine import PhaseUsage, snapshot, usage_between
from harness.node_logs import log_findings, print_log_findings
from harness.nodes import Cluster, NodeStartError, reader, running_cluster
from harness.phases import LoadFigures, load_phase, percentiles_ms
from harness.report import (
    CommonOptions,
    add_common_options,
    command_line,
    print_load,
    scratch_folder,
    update_report,
    write_result,
)
from rest_client import (
    Answered,
    RestClient,
    count_closed,
    enough_file_descriptors,
    socket_pile,
    spread_sources,
)
from rest_report import HISTORY_USES, LINEAGE_DEPTH, print_mode, rest_section, result_summary

from provledger.cli.client import EventSigner, Identity, read_token
from provledger.node.config import NodeConfig, split_host_port
from provledger.v1 import api_pb2, ledger_pb2

LOAD_STREAMS = 4
LOAD_BATCH = 200
READER = "auditor"  # whose token every request carries
DERIVER = AUTHORS[0]  # agency-a: it registered every third asset of the load, asset 0 first
EVENT_IDS_SAMPLED = 256
SAMPLE_SEED = 20261202
WARM_UP_PER_ROUTE = 10  # untimed requests per route before the first mode
COMMIT_TIMEOUT_MS = 30_000
RPC_TIMEOUT_S = 30.0
PILE_SETTLE_S = 1.0  # after a pile is closed, before the next round or mode
FILE_DESCRIPTORS_SPARE = 512  # beyond the pile: the client's own, the node's gRPC channel
TOKEN_TTL_MS = 6 * 3_600_000  # outlives any run

KEPT_ALIVE = "kept alive"
NEW_CONNECTION = "new connection"
PILE_ONE_ADDRESS = "pile from one address"
PILE_SPREAD = "pile spread over addresses"


@dataclass(frozen=True)
class Options(CommonOptions):
    events: int
    requests: int  # per route, in modes (a) and (b)
    pile_sockets: int
    pile_rounds: int
    pile_window_s: float
    source: str | None

    @property
    def command(self) -> str:
        arguments = ["--events", str(self.events), "--requests", str(self.requests)]
        arguments += ["--pile-sockets", str(self.pile_sockets)]
        arguments += ["--pile-rounds", str(self.pile_rounds)]
        arguments += ["--pile-window", f"{self.pile_window_s:g}"]
        if self.source:
            arguments += ["--source", self.source]
        return command_line("rest.py", arguments)


@dataclass(frozen=True)
class Route:
    name: str  # as reported, e.g. "/v1/events/{id}"
    targets: tuple[str, ...]  # the request targets, taken in turn
    authenticated: bool


@dataclass
class PileRound:
    open_s: float  # opening every socket of the pile
    first_answer_s: float  # the first request after the pile was open, from its start
    closed_by_node: int  # of the pile's sockets, by the end of the window


@dataclass
class ModeFigures:
    mode: str
    requests: int
    errors: int
    error_examples: list[str]
    elapsed_s: float
    latency_ms: dict[str, float]  # every answered request
    latency_ms_by_route: dict[str, dict[str, float]]
    answer_bytes_by_route: dict[str, int]
    usage: PhaseUsage
    pile_sockets: int = 0
    pile_sources: int = 0  # distinct source addresses of the pile
    rounds: list[PileRound] = field(default_factory=list)

    @property
    def per_s(self) -> float:
        return (self.requests - self.errors) / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def node_cpu_us_per_request(self) -> float:
        answered = self.requests - self.errors
        return self.usage.nodes_cpu_s / answered * 1e6 if answered else float("nan")


@dataclass
class Measurement:
    load: LoadFigures
    routes: list[Route]
    lineage_nodes: int
    history_events: int  # on the history route's first page
    modes: list[ModeFigures]


def main(argv: Sequence[str] | None = None) -> int:
    begun = begin(
        __file__,
        sys.argv[1:] if argv is None else argv,
        parse_options,
        lambda o: (
            f"provledger REST benchmark: {o.events:,} events, {o.requests} requests "
            f"per route and mode, piles of {o.pile_sockets} sockets"
        ),
    )
    if isinstance(begun, int):
        return begun
    options, machine = begun
    with enough_file_descriptors(options.pile_sockets + FILE_DESCRIPTORS_SPARE):
        try:
            measurement = measure(options)
        except (BenchmarkError, NodeStartError) as error:
            print(f"benchmark failed: {error}", file=sys.stderr)
            return 1
    summary = result_summary(measurement, options)
    document = {
        "result": summary,
        "machine": machine,
        "modes": [asdict(mode) for mode in measurement.modes],
    }
    write_result(summary, options.json_out, document)
    if options.report:
        update_report("rest", "REST API", rest_section(measurement, options, machine))
    return 0


def measure(options: Options) -> Measurement:
    with (
        scratch_folder("provledger-bench-rest-", options.keep) as workdir,
        running_cluster(workdir, nodes=1) as cluster,
    ):
        node = cluster.nodes[0]
        print(f"node pid {node.pid} serving after {cluster.start_s:.1f} s", flush=True)
        plan = LoadPlan(
            phase=0,
            events=options.events,
            streams=LOAD_STREAMS,
            node_indexes=[0],
            batch_size=LOAD_BATCH,
        )
        load = load_phase("load", cluster, plan)
        print_load(load)
        if load.committed != options.events:
            raise BenchmarkError(f"only {load.committed:,} of {options.events:,} were committed")
        history_asset, lineage_asset = add_history_and_lineage(cluster)
        rest_listen = NodeConfig.load(node.config).rest_listen
        if rest_listen is None:
            raise BenchmarkError(f"{node.config} has no [rest] listen address")
        host, port = split_host_port(rest_listen)
        token = read_token(Identity.load(cluster.identity_paths[READER]), TOKEN_TTL_MS)
        client = RestClient(host, port, token)
        routes = [
            Route("/v1/health", ("/v1/health",), authenticated=False),
            Route(
                "/v1/events/{id}",
                tuple(f"/v1/events/{e}" for e in sampled_event_ids(client)),
                authenticated=True,
            ),
            Route(
                "/v1/assets/history",
                (query("/v1/assets/history", asset_id=history_asset),),
                authenticated=True,
            ),
            Route(
                "/v1/lineage",
                (query("/v1/lineage", asset_id=lineage_asset, direction="upstream"),),
                authenticated=True,
            ),
        ]
        history = client.json(routes[2].targets[0])
        lineage = client.json(routes[3].targets[0])
        print(
            f"routes: {len(routes[1].targets)} event ids; history page of "
            f"{len(history['items'])} events; lineage of {len(lineage['nodes'])} assets",
            flush=True,
        )
        with client.kept_alive() as connection:
            for _ in range(WARM_UP_PER_ROUTE):
                for route in routes:
                    connection.get(route.targets[0])

        modes = []
        total = options.requests * len(routes)
        modes.append(run_mode(cluster, client, KEPT_ALIVE, routes, total, kept_alive=True))
        modes.append(run_mode(cluster, client, NEW_CONNECTION, routes, total, kept_alive=False))
        authenticated = [route for route in routes if route.authenticated]
        for mode, sources in (
            (PILE_ONE_ADDRESS, [host] * options.pile_sockets),
            (PILE_SPREAD, spread_sources(options.pile_sockets)),
        ):
            modes.append(run_pile_mode(cluster, client, mode, authenticated, sources, options))
        cluster.check_alive()
        print_log_findings(log_findings(cluster.nodes))
    return Measurement(
        load=load,
        routes=routes,
        lineage_nodes=len(lineage["nodes"]),
        history_events=len(history["items"]),
        modes=modes,
    )


# --- the ledger the routes read -----------------------------------------------------------------


def load_asset_id(number: int) -> str:
    """The asset the harness's load registered as its event `number` (phase 0)."""
    return f"bench/p0/asset-{number}"


def add_history_and_lineage(cluster: Cluster) -> tuple[str, str]:
    """agency-a uses its first asset HISTORY_USES times and derives a chain of LINEAGE_DEPTH
    assets, each from the one before and one more asset it registered; (the used asset, the
    last derived one). Every event is committed when this returns."""
    signer = EventSigner(Identity.load(cluster.identity_paths[DERIVER]))
    history_asset = load_asset_id(0)
    uses = [
        signer.event(
            "asset_used",
            asset_id=history_asset,
            purpose="benchmark",
            operation=ledger_pb2.OPERATION_READ,
        )
        for _ in range(HISTORY_USES)
    ]
    with reader(cluster.nodes[0].address) as client:
        answer = client.stub.SubmitEvents(
            api_pb2.SubmitEventsRequest(events=uses), timeout=RPC_TIMEOUT_S
        )
        refused = [result.error_code for result in answer.results if not result.accepted]
        if refused:
            raise BenchmarkError(f"asset_used events refused: {sorted(set(refused))}")
        parent = history_asset
        for depth in range(1, LINEAGE_DEPTH + 1):
            child = f"bench/lineage/derived-{depth}"
            signed = signer.event(
                "asset_derived",
                asset_id=child,
                parent_ids=[parent, load_asset_id(len(AUTHORS) * depth)],  # agency-a's
                activity="fusion",
                content_digest=hashlib.sha256(child.encode()).digest(),
                classification=ledger_pb2.CLASSIFICATION_GENERAL,
                name=f"benchmark derivation {depth}",
            )
            client.submit_and_wait(signed, COMMIT_TIMEOUT_MS)  # the next derives from it
            parent = child
        # The uses went into the mempool before the first derivation: committed by now.
    return history_asset, parent


def sampled_event_ids(client: RestClient) -> list[str]:
    """Up to EVENT_IDS_SAMPLED ids of committed events, from every block, in a fixed order."""
    height = int(client.json("/v1/status")["height"])
    ids: list[str] = []
    for block_height in range(1, height + 1):
        ids += client.json(f"/v1/blocks/{block_height}")["event_ids"]
    chosen = random.Random(SAMPLE_SEED).sample(ids, min(EVENT_IDS_SAMPLED, len(ids)))
    if not chosen:
        raise BenchmarkError("the node holds no events")
    return chosen


def query(path: str, **parameters: str) -> str:
    return f"{path}?{urllib.parse.urlencode(parameters)}"


# --- the modes ----------------------------------------------------------------------------------


def run_mode(
    cluster: Cluster,
    client: RestClient,
    mode: str,
    routes: Sequence[Route],
    requests: int,
    kept_alive: bool,
) -> ModeFigures:
    """`requests` requests, the routes in turn, on one connection or a new one each."""
    print(f"\n{mode}: {requests:,} requests over {len(routes)} routes", flush=True)
    answered: list[Answered] = []
    before = snapshot(cluster.pids())
    started = time.monotonic()
    with client.kept_alive() as connection:  # connects at its first request, if any
        for number in range(requests):
            route = routes[number % len(routes)]
            target = route.targets[(number // len(routes)) % len(route.targets)]
            if kept_alive:
                answered.append(connection.timed(route.name, target))
                continue
            outcome = client.once(route.name, target)
            if outcome.error:
                raise BenchmarkError(f"{mode}: GET {target}: {outcome.error}")
            answered.append(outcome)
    elapsed_s = time.monotonic() - started
    after = snapshot(cluster.pids())
    usage = usage_between(before, after, cluster.members(), {os.getpid()})
    figures = mode_figures(mode, answered, elapsed_s, routes, usage)
    print_mode(figures)
    return figures


def run_pile_mode(
    cluster: Cluster,
    client: RestClient,
    mode: str,
    routes: Sequence[Route],
    sources: Sequence[str],
    options: Options,
) -> ModeFigures:
    """Rounds of: a fresh pile of idle sockets from `sources`, then the routes in turn on a new
    connection each for the window, then the pile closed."""
    print(
        f"\n{mode}: {options.pile_rounds} rounds of {len(sources)} idle sockets from "
        f"{len(set(sources))} address(es), {options.pile_window_s:g} s of requests each",
        flush=True,
    )
    answered: list[Answered] = []
    rounds: list[PileRound] = []
    elapsed_s = 0.0
    before = snapshot(cluster.pids())
    for _ in range(options.pile_rounds):
        opening = time.monotonic()
        with socket_pile(client.host, client.port, sources) as pile:
            opened = time.monotonic()
            number = 0
            first_answer_s = 0.0
            while number == 0 or time.monotonic() - opened < options.pile_window_s:
                route = routes[number % len(routes)]
                target = route.targets[(number // len(routes)) % len(route.targets)]
                outcome = client.once(route.name, target)
                if number == 0:
                    first_answer_s = time.monotonic() - opened
                answered.append(outcome)
                number += 1
            elapsed_s += time.monotonic() - opened
            rounds.append(PileRound(opened - opening, first_answer_s, count_closed(pile)))
        cluster.check_alive()
        time.sleep(PILE_SETTLE_S)  # the node lets go of the closed pile
    after = snapshot(cluster.pids())
    usage = usage_between(before, after, cluster.members(), {os.getpid()})
    figures = mode_figures(mode, answered, elapsed_s, routes, usage)
    figures.pile_sockets = len(sources)
    figures.pile_sources = len(set(sources))
    figures.rounds = rounds
    print_mode(figures)
    return figures


def mode_figures(
    mode: str,
    answered: Sequence[Answered],
    elapsed_s: float,
    routes: Sequence[Route],
    usage: PhaseUsage,
) -> ModeFigures:
    good = [outcome for outcome in answered if not outcome.error]
    errors = [outcome.error for outcome in answered if outcome.error]
    by_route: dict[str, dict[str, float]] = {}
    sizes: dict[str, int] = {}
    for route in routes:
        mine = [outcome for outcome in good if outcome.route == route.name]
        by_route[route.name] = percentiles_ms([outcome.latency_s for outcome in mine])
        sizes[route.name] = max((outcome.answer_bytes for outcome in mine), default=0)
    return ModeFigures(
        mode=mode,
        requests=len(answered),
        errors=len(errors),
        error_examples=sorted(set(errors))[:3],
        elapsed_s=elapsed_s,
        latency_ms=percentiles_ms([outcome.latency_s for outcome in good]),
        latency_ms_by_route=by_route,
        answer_bytes_by_route=sizes,
        usage=usage,
    )


def parse_options(argv: Sequence[str]) -> Options:
    parser = argparse.ArgumentParser(
        description="Benchmark one provledger node's REST API: latency and requests/s on a "
        "kept-alive connection, on a new connection per request, and under piles of idle "
        "sockets; figures go to docs/PERFORMANCE.md."
    )
    parser.add_argument("--events", type=int, default=5_000, help="events loaded first")
    parser.add_argument(
        "--requests", type=int, default=300, help="requests per route, kept alive and new"
    )
    parser.add_argument("--pile-sockets", type=int, default=700, help="idle sockets per pile")
    parser.add_argument("--pile-rounds", type=int, default=3, help="piles of each kind")
    parser.add_argument(
        "--pile-window",
        dest="pile_window_s",
        type=float,
        default=3.0,
        metavar="SECONDS",
        help="requests this long after each pile is open (the node closes idle sockets after 5 s)",
    )
    parser.add_argument(
        "--source", metavar="REVISION", help="benchmark a committed revision's node code"
    )
    add_common_options(parser)
    args = parser.parse_args(argv)
    if args.events < 1 or args.requests < 1 or args.pile_rounds < 1:
        parser.error("--events, --requests and --pile-rounds must be at least 1")
    if args.pile_sockets < 1 or args.pile_window_s <= 0:
        parser.error("--pile-sockets and --pile-window must be positive")
    args.profile_out = None
    return Options(**vars(args))


if __name__ == "__main__":
    sys.exit(main())

"""`provledger demo`: a consortium of four validator node processes on loopback (each with its
own LevelDB folder, talking over mutual TLS) and a provenance story told through their gRPC
APIs, each step sent to a different node. Everything it starts, it stops, by PID; it exits 0
only if every step did what the story says (including the rejection it expects).
"""

from __future__ import annotations

import argparse
import hashlib
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import grpc

from provledger.cli.client import EventSigner, Identity, LedgerClient, describe_rpc_error
from provledger.cli.consortium import (
    DEFAULT_MEMBERS,
    MARKET_MEMBERS,
    OPERATIONS_PORT_OFFSET,
    ConsortiumLayout,
    consortium_ports,
    init_consortium,
)
from provledger.cli.demo_dispute import CASE_ID, tell_dispute
from provledger.cli.output import CommandError
from provledger.cli.proofs import fetch_verified_consistency, fetch_verified_inclusion
from provledger.cli.query import render_lineage_tree
from provledger.protocol.blocks import decode_header
from provledger.protocol.genesis import Genesis, parse_genesis
from provledger.protocol.tokens import issue_token
from provledger.v1 import api_pb2, ledger_pb2, state_pb2

NODE_START_TIMEOUT_S = 30
NODE_READY_POLL_S = 0.25  # how often a starting node's process is checked while it is awaited
PORT_RETRIES_MAX = 3  # consortia started again on other ports when a port was taken meanwhile
# Demo ports are drawn from this range: below the kernel's ephemeral ports (32768 and up by
# default), so no outgoing connection takes one while the nodes start.
BASE_PORT_MIN = 10_000
BASE_PORT_MAX = 30_000
BASE_PORT_ATTEMPTS_MAX = 200
NODE_STOP_TIMEOUT_S = 10
NODE_CATCH_UP_TIMEOUT_S = 10
CLI_TIMEOUT_S = 60
DEMO_TOKEN_TTL_MS = 24 * 3600 * 1000
DAY_MS = 24 * 3600 * 1000
OFFER_PRICE = 1_200_000  # CNY minor units: 12,000.00


def cmd_demo(args: argparse.Namespace) -> None:
    if args.nodes < 1:
        raise CommandError("--nodes must be at least 1")
    run_demo(keep_data=args.keep, nodes=args.nodes, serve=args.serve)


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_base_port(nodes: int, rng: random.Random) -> int:
    """A base port where every port the consortium needs on 127.0.0.1 is free. Bases are drawn
    below the kernel's ephemeral range, so an outgoing connection cannot take a node's port
    between this check and the node's bind."""
    highest = BASE_PORT_MAX - OPERATIONS_PORT_OFFSET - nodes
    for _ in range(BASE_PORT_ATTEMPTS_MAX):
        base = rng.randrange(BASE_PORT_MIN, highest)
        if all(_port_free(port) for port in consortium_ports(base, nodes)):
            return base
    raise CommandError("found no free ports on 127.0.0.1 for the demo")


class PortTaken(Exception):
    """A node found one of its ports taken after the demo chose them (another program bound it
    in between): the demo starts again on other ports."""


def wait_started(
    clients: list[LedgerClient], processes: list[subprocess.Popen], logs: Path
) -> None:
    """Wait until every node serves gRPC. A node that exits is reported at once, from its log;
    one that exited because a port was taken meanwhile raises PortTaken."""
    for index, (client, process) in enumerate(zip(clients, processes, strict=True)):
        deadline = time.monotonic() + NODE_START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                log = logs / f"node-{index}.log"
                text = log.read_text(errors="replace") if log.exists() else ""
                if "cannot listen" in text:
                    raise PortTaken(f"node-{index}: {text.strip().splitlines()[-1]}")
                raise CommandError(f"node-{index} exited while starting; see {log}")
            try:
                client.wait_ready(NODE_READY_POLL_S)
                break
            except grpc.FutureTimeoutError:
                if time.monotonic() > deadline:
                    raise CommandError(
                        f"node-{index} did not start; see {logs / f'node-{index}.log'}"
                    ) from None
        print(f"node-{index} serves gRPC on {client.address} (pid {process.pid})")


@contextmanager
def node_processes(configs: list[Path], log_dir: Path):
    """Start `provledger node run` for each config; stop every one by PID on the way out."""
    processes: list[subprocess.Popen] = []
    try:
        for config in configs:
            log_file = (log_dir / f"{config.parent.name}.log").open("wb")
            processes.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "provledger.cli.main",
                        "node",
                        "run",
                        "--config",
                        str(config),
                    ],
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                )
            )
            log_file.close()
        yield processes
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=NODE_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def step(number: int, text: str) -> None:
    print(f"\n[{number:2d}] {text}")


def digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def run_demo(keep_data: bool = False, nodes: int = 4, serve: bool = False) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="provledger-demo-"))
    try:
        _story(workdir, nodes, serve)
    finally:
        if keep_data:
            print(f"\ndata kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _story(workdir: Path, nodes: int, serve: bool) -> None:
    rng = random.Random()
    for attempt in range(PORT_RETRIES_MAX + 1):
        directory = workdir / ("consortium" if attempt == 0 else f"consortium-{attempt}")
        layout = init_consortium(
            directory,
            nodes=nodes,
            base_port=free_base_port(nodes, rng),
            members=DEFAULT_MEMBERS + MARKET_MEMBERS,
        )
        genesis = parse_genesis(layout.genesis_path.read_bytes())
        signer = {m: EventSigner(Identity.load(p)) for m, p in layout.identities.items()}
        print(
            f"provledger demo: {nodes} validator node processes on 127.0.0.1, chain "
            f"{genesis.chain_id!r}, each with its own LevelDB folder under {layout.directory}; "
            f"clients reach them over TLS under the consortium CA ({layout.ca_certificate.name})"
        )
        # The clients speak TLS to each node's client API, trusting the consortium CA, and
        # read with an auditor's token (submitting needs none: each event is signed).
        token = issue_token(
            Identity.load(layout.identities["auditor"]).key,
            "auditor",
            "auditor",
            genesis.chain_id,
            time.time_ns() // 1_000_000,
            DEMO_TOKEN_TTL_MS,
        )
        ca_certificate_pem = layout.ca_certificate.read_bytes()
        with node_processes(layout.node_configs, workdir) as processes:
            clients = [
                LedgerClient(address, ca_certificate_pem=ca_certificate_pem, token=token)
                for address in layout.grpc_addresses
            ]
            try:
                try:
                    wait_started(clients, processes, workdir)
                except PortTaken as taken:
                    print(f"{taken}; starting again on other ports")
                    continue
                sender = RoundRobin(clients)
                _tell(sender, signer, genesis)
                _export_and_verify(layout, token, workdir, 14, "--trade", "order/1")
                after_dispute = tell_dispute(
                    sender,
                    signer,
                    order_id="order/1",
                    offer_id="offer/mobility-health",
                    price=OFFER_PRICE,
                    first_step=15,
                    step=step,
                    commit=_commit,
                )
                _export_and_verify(layout, token, workdir, after_dispute, "--case", CASE_ID)
                if serve:
                    _serve(layout, token)
            finally:
                for client in clients:
                    client.close()
            pids = ", ".join(str(process.pid) for process in processes)
            print(f"\nstopping the {nodes} nodes (pids {pids})")
        break
    else:
        raise CommandError(f"ports were taken {PORT_RETRIES_MAX + 1} times while nodes started")
    print("demo finished: every step behaved as the story says")


def _export_and_verify(
    layout: ConsortiumLayout, token: str, workdir: Path, number: int, kind: str, subject: str
) -> None:
    """The auditor's part: download an evidence bundle (`kind` is `--trade` or `--case`) from a
    node's REST API, then check it offline with `provledger verify`, trusting only
    genesis.json."""
    what = {"--trade": "the trade's evidence bundle", "--case": "the case file"}[kind]
    bundle = workdir / f"{kind.removeprefix('--')}-{subject.replace('/', '-')}.evidence.json"
    rest = f"http://{layout.rest_addresses[-1]}"
    step(number, f"an auditor exports {what} from {rest} and verifies it offline")
    _run_cli(
        "evidence",
        "export",
        kind,
        subject,
        "--rest",
        rest,
        "--token",
        token,
        "--genesis",
        str(layout.genesis_path),
        "--out",
        str(bundle),
    )
    print(
        f"     wrote {bundle.name} ({bundle.stat().st_size:,} bytes); "
        f"$ provledger verify {bundle.name} --genesis genesis.json"
    )
    output = _run_cli("verify", str(bundle), "--genesis", str(layout.genesis_path))
    print("\n".join("     " + line for line in output.strip().splitlines()))


def _run_cli(*arguments: str) -> str:
    completed = subprocess.run(
        [sys.executable, "-m", "provledger.cli.main", *arguments],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
    )
    if completed.returncode != 0:
        raise CommandError(f"provledger {arguments[0]} failed: {completed.stderr.strip()}")
    return completed.stdout


def _serve(layout: ConsortiumLayout, token: str) -> None:
    """Keep the consortium running for a person to explore, until Ctrl-C."""
    url = f"http://{layout.rest_addresses[0]}/#token={token}&asset=fused%2Fmobility-health-2021"
    print("\nthe consortium keeps running. Explore it in a browser:")
    print(f"  {url}")
    print(f"auditor token (for curl -H 'Authorization: Bearer ...'):\n  {token}")
    print(f"genesis: {layout.genesis_path}")
    print("the gRPC client API (TLS; reads need the token):")
    print(
        f"  grpcurl -cacert {layout.ca_certificate} -H 'authorization: Bearer <token>' "
        f"{layout.grpc_addresses[0]} provledger.v1.LedgerService/GetCheckpoint"
    )
    print("press Ctrl-C to stop every node")
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        print()


class RoundRobin:
    """Sends each submission to the next node in turn (any node takes any member's event and
    gossips it to the others); queries go to the first node."""

    def __init__(self, clients: list[LedgerClient]) -> None:
        self._clients = clients
        self._turn = 0
        self.stub = clients[0].stub

    def submit_and_wait(self, signed: ledger_pb2.SignedEvent) -> api_pb2.Receipt:
        client = self._clients[self._turn % len(self._clients)]
        self._turn += 1
        print(f"     sent to {client.address}")
        receipt = client.submit_and_wait(signed)
        self.wait_for_height(receipt.height)
        return receipt

    def wait_for_height(self, height: int) -> None:
        """Wait until every node has applied `height`: a validator may commit a moment after
        the one that answered, and the next step goes to another node."""
        deadline = time.monotonic() + NODE_CATCH_UP_TIMEOUT_S
        for client in self._clients:
            while True:
                if _head_height(client) >= height:
                    break
                if time.monotonic() > deadline:
                    raise CommandError(f"{client.address} did not reach height {height}")
                time.sleep(0.02)


def _head_height(client: LedgerClient) -> int:
    """The node's committed height; 0 while it has committed no block (it answers
    FAILED_PRECONDITION `empty_chain` then)."""
    try:
        checkpoint = client.stub.GetCheckpoint(api_pb2.GetCheckpointRequest())
    except grpc.RpcError as error:
        if error.code() == grpc.StatusCode.FAILED_PRECONDITION:  # type: ignore[attr-defined]
            return 0
        raise
    return decode_header(checkpoint.header).height


def _commit(client: RoundRobin, signed: ledger_pb2.SignedEvent) -> api_pb2.Receipt:
    receipt = client.submit_and_wait(signed)
    signers = len(receipt.checkpoint.certificate.signatures)
    print(
        f"     committed at height {receipt.height}, log index {receipt.log_index}, under "
        f"{signers} validator signatures (event {receipt.event_id.hex()[:16]}…)"
    )
    return receipt


def _tell(client: RoundRobin, signer: dict[str, EventSigner], genesis: Genesis) -> None:
    now_ms = time.time_ns() // 1_000_000
    clinic, bus, fused = (
        "health/clinic-visits-2021",
        "transport/bus-trips-2021",
        "fused/mobility-health-2021",
    )

    step(1, f"agency-a registers dataset {clinic!r} (important data; only its digest)")
    first = _commit(
        client,
        signer["agency-a"].event(
            "asset_registered",
            asset_id=clinic,
            content_digest=digest("clinic visits"),
            classification=ledger_pb2.CLASSIFICATION_IMPORTANT,
            name="Clinic visits 2021",
        ),
    )

    step(2, f"agency-b registers dataset {bus!r} (general data)")
    _commit(
        client,
        signer["agency-b"].event(
            "asset_registered",
            asset_id=bus,
            content_digest=digest("bus trips"),
            classification=ledger_pb2.CLASSIFICATION_GENERAL,
            name="Bus trips 2021",
        ),
    )

    step(
        3,
        "agency-a grants agency-b use of its dataset for 'epidemic-modelling' "
        "(derive, compute), expiring in 30 days, no cross-border",
    )
    _commit(
        client,
        signer["agency-a"].event(
            "grant_issued",
            grant_id="grant/clinic-to-transport",
            asset_id=clinic,
            grantee_id="agency-b",
            purposes=["epidemic-modelling"],
            operations=[ledger_pb2.OPERATION_DERIVE, ledger_pb2.OPERATION_COMPUTE],
            expires_at_ms=now_ms + 30 * DAY_MS,
            no_cross_border=True,
        ),
    )

    step(4, f"agency-b derives {fused!r} from both datasets (fusion, under the grant)")
    _commit(
        client,
        signer["agency-b"].event(
            "asset_derived",
            asset_id=fused,
            parent_ids=[clinic, bus],
            activity="fusion",
            grant_ids=["grant/clinic-to-transport"],
            content_digest=digest("fused"),
            classification=ledger_pb2.CLASSIFICATION_IMPORTANT,
            name="Mobility and health 2021",
        ),
    )

    step(5, "agency-b uses agency-a's dataset to compute, for 'epidemic-modelling'")
    _commit(
        client,
        signer["agency-b"].event(
            "asset_used",
            asset_id=clinic,
            grant_id="grant/clinic-to-transport",
            purpose="epidemic-modelling",
            operation=ledger_pb2.OPERATION_COMPUTE,
        ),
    )

    step(6, "agency-b tries to use the same dataset for 'marketing': the ledger refuses")
    try:
        client.submit_and_wait(
            signer["agency-b"].event(
                "asset_used",
                asset_id=clinic,
                grant_id="grant/clinic-to-transport",
                purpose="marketing",
                operation=ledger_pb2.OPERATION_COMPUTE,
            )
        )
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.PERMISSION_DENIED:  # type: ignore[attr-defined]
            raise
        print(f"     rejected as expected: {describe_rpc_error(error)}")
    else:
        raise CommandError("an unauthorised use was accepted")

    step(7, "the exchange lists agency-b's fused product for sale")
    _commit(
        client,
        signer["exchange"].event(
            "offer_listed",
            offer_id="offer/mobility-health",
            asset_id=fused,
            seller_id="agency-b",
            price=OFFER_PRICE,
            currency="CNY",
            terms="research licence, 1 year",
            title="Mobility and health 2021, research licence",
        ),
    )

    step(8, "agency-a (the buyer) orders it")
    _commit(
        client,
        signer["agency-a"].event(
            "order_placed", order_id="order/1", offer_id="offer/mobility-health"
        ),
    )

    step(9, "agency-b delivers (the digest of what it sent is recorded)")
    _commit(
        client,
        signer["agency-b"].event(
            "order_delivered", order_id="order/1", delivery_digest=digest("delivered package")
        ),
    )

    step(10, "the exchange settles the trade")
    settled = _commit(
        client,
        signer["exchange"].event(
            "order_settled", order_id="order/1", settlement_reference="bank-transfer-0001"
        ),
    )
    order = client.stub.GetOrder(api_pb2.GetOrderRequest(order_id="order/1"))
    print(
        f"     order/1 is now {state_pb2.OrderStatus.Name(order.status)}; its life "
        f"cycle is {len(order.event_ids)} events"
    )

    step(11, f"the lineage of {fused!r}, upstream:")
    lineage = client.stub.GetLineage(
        api_pb2.GetLineageRequest(asset_id=fused, direction=api_pb2.LINEAGE_DIRECTION_UPSTREAM)
    )
    print(
        "\n".join(
            "     " + line
            for line in render_lineage_tree(lineage, fused, upstream=True).splitlines()
        )
    )

    step(12, "verify, trusting only genesis.json, that the settlement is in the ledger")
    inclusion = fetch_verified_inclusion(client.stub, genesis, settled.event_id)
    print(
        f"     inclusion proof: leaf {inclusion.leaf_index} of {inclusion.tree_size}, "
        f"{inclusion.proof_hashes} hashes, checkpoint at height {inclusion.height} "
        f"signed by {len(inclusion.signers)}/{inclusion.validators} validators: VERIFIED"
    )

    step(13, "verify that the log when the first dataset was registered is a prefix of today's log")
    consistency = fetch_verified_consistency(client.stub, genesis, first.height)
    print(
        f"     consistency proof: size {consistency.first_size} (height "
        f"{consistency.first_height}) -> size {consistency.second_size} (height "
        f"{consistency.second_height}), {consistency.proof_hashes} hashes: VERIFIED"
    )

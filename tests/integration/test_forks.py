"""A split view caught end to end. A four-node consortium runs as real processes; a Byzantine
quorum (three validators, their keys taken from their node folders) signs a second block at a
height the chain already committed; a lying node (tests/support/lying_node.py: LedgerService
over TLS with a certificate from the consortium CA) serves it. `provledger audit watch`, run
as an operator would, against a real node and the liar, exits with the fork code and writes a
proof that `provledger verify` accepts, naming the validators that signed both blocks.
Honest nodes at different heights, watched twice with a state file, are not a fork. A real
node shown the forged block over the peer protocol (a peer certificate issued by the
consortium CA, whose key is in the consortium folder) raises the alarm in its log and in REST
health, and hands auditors the proof; the equivocations it proves reach a block, and every
node's ledger marks the equivocators.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from support.lying_node import LyingNode, forge_checkpoint, issued_material
from support.processes import (
    NodeCluster,
    client_channel,
    init_consortium,
    member_token,
    provledger_command,
    running_nodes,
    wait_until,
)

from provledger.cli.audit import EXIT_FORK
from provledger.cli.consortium import ConsortiumLayout
from provledger.node.config import NodeConfig
from provledger.node.tls import channel_credentials
from provledger.protocol.blocks import block_id, decode_header, verify_checkpoint
from provledger.protocol.genesis import parse_genesis
from provledger.v1 import api_pb2, api_pb2_grpc, ledger_pb2, peer_pb2, peer_pb2_grpc

pytestmark = pytest.mark.integration

CLI_TIMEOUT_S = 60
ALARM_TIMEOUT_S = 20
EVIDENCE_TIMEOUT_S = 60  # node-0 proposes one height in four
FORKED_HEIGHT = 2  # the height the Byzantine quorum signs a second block for
BYZANTINE = ("node-1", "node-2", "node-3")


@dataclass
class Consortium:
    layout: ConsortiumLayout
    cluster: NodeCluster
    chain_id: str
    tmp_path: Path

    def connection_arguments(self) -> list[str]:
        auditor = str(self.layout.identities["auditor"])
        return ["--ca-cert", str(self.layout.ca_certificate), "--identity", auditor]


@pytest.fixture(scope="module")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Consortium]:
    tmp_path = tmp_path_factory.mktemp("forks")
    layout = init_consortium(tmp_path, nodes=4)
    chain_id = parse_genesis(layout.genesis_path.read_bytes()).chain_id
    with running_nodes(layout, tmp_path) as cluster:
        cluster.wait_for_heights(FORKED_HEIGHT + 2)
        yield Consortium(layout, cluster, chain_id, tmp_path)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*provledger_command(), *args], capture_output=True, text=True, timeout=CLI_TIMEOUT_S
    )


def real_proofs(consortium: Consortium):  # type: ignore[no-untyped-def]
    """The real chain's consistency answers, which also hold for the forged block: it keeps
    the real block's log."""

    def proofs(first: int, second: int) -> api_pb2.GetConsistencyProofResponse:
        with client_channel(consortium.layout.grpc_addresses[0]) as channel:
            return api_pb2_grpc.LedgerServiceStub(channel).GetConsistencyProof(
                api_pb2.GetConsistencyProofRequest(first_height=first, second_height=second)
            )

    return proofs


def checkpoints(consortium: Consortium, heights: range) -> dict[int, ledger_pb2.Checkpoint]:
    with client_channel(consortium.layout.grpc_addresses[0]) as channel:
        stub = api_pb2_grpc.LedgerServiceStub(channel)
        return {h: stub.GetCheckpoint(api_pb2.GetCheckpointRequest(height=h)) for h in heights}


@pytest.fixture(scope="module")
def forged(consortium: Consortium) -> ledger_pb2.Checkpoint:
    (real,) = checkpoints(consortium, range(FORKED_HEIGHT, FORKED_HEIGHT + 1)).values()
    return forge_checkpoint(consortium.layout, consortium.chain_id, real, BYZANTINE)


def test_audit_watch_catches_a_byzantine_quorums_second_block_and_verify_names_it(
    consortium: Consortium, forged: ledger_pb2.Checkpoint, tmp_path: Path
) -> None:
    real = checkpoints(consortium, range(1, FORKED_HEIGHT + 1))
    lies = {**real, FORKED_HEIGHT: forged}
    state = tmp_path / "watch.json"
    with LyingNode(consortium.layout, lies, real_proofs(consortium)) as liar:
        honest = consortium.layout.grpc_addresses[0]
        watched = run_cli(
            "audit", "watch", "--node", honest, "--node", liar.address,
            "--genesis", str(consortium.layout.genesis_path), "--state", str(state),
            *consortium.connection_arguments(),
        )  # fmt: skip
        assert "GetConsistencyProof(1, 0)" in liar.servicer.calls  # it was asked, over TLS
    assert watched.returncode == EXIT_FORK, watched.stdout + watched.stderr
    fork_lines = [line for line in watched.stdout.splitlines() if line.startswith("FORK:")]
    assert fork_lines and liar.address in fork_lines[0] and honest in fork_lines[0]
    proof_file = tmp_path / "watch.fork-proof.json"
    assert proof_file.exists() and state.exists()

    verified = run_cli(
        "verify", str(proof_file), "--genesis", str(consortium.layout.genesis_path), "--json"
    )
    assert verified.returncode == 0, verified.stderr
    answer = json.loads(verified.stdout)
    assert answer["kind"] == "same_height"
    assert {answer["first"]["block_id"], answer["second"]["block_id"]} == {
        block_id(real[FORKED_HEIGHT].header).hex(),
        block_id(forged.header).hex(),
    }
    real_signers = {s.validator_id for s in real[FORKED_HEIGHT].certificate.signatures}
    assert answer["equivocators"] == sorted(real_signers & set(BYZANTINE))
    assert len(answer["equivocators"]) >= 2  # any two quorums of four share two
    text = run_cli("verify", str(proof_file), "--genesis", str(consortium.layout.genesis_path))
    assert "provably Byzantine" in text.stdout


def test_honest_nodes_at_different_heights_are_not_a_fork(
    consortium: Consortium, tmp_path: Path
) -> None:
    state = tmp_path / "watch.json"
    arguments = [
        "audit", "watch",
        *[arg for address in consortium.layout.grpc_addresses for arg in ("--node", address)],
        "--genesis", str(consortium.layout.genesis_path), "--state", str(state), "--json",
        *consortium.connection_arguments(),
    ]  # fmt: skip
    first = run_cli(*arguments)
    assert first.returncode == 0, first.stdout + first.stderr
    remembered = json.loads(first.stdout)["nodes"]
    highest = max(node["height"] for node in remembered.values())
    consortium.cluster.wait_for_heights(highest + 2)
    second = run_cli(*arguments)
    assert second.returncode == 0, second.stdout + second.stderr
    report = json.loads(second.stdout)
    assert report["forks"] == [] and report["problems"] == []
    # Every node is now above what every node was seen at: each earlier checkpoint was
    # proven a prefix of each node's chain.
    assert all(node["height"] > highest for node in report["nodes"].values())
    assert report["comparisons"] >= len(remembered) * len(report["nodes"])
    assert not (tmp_path / "watch.fork-proof.json").exists()


def test_the_forged_checkpoint_is_a_valid_quorum_signature(
    consortium: Consortium, forged: ledger_pb2.Checkpoint
) -> None:
    """The premise: the liar's block is signed as well as a real one (else it proves nothing)."""
    genesis = parse_genesis(consortium.layout.genesis_path.read_bytes())
    assert decode_header(forged.header).height == FORKED_HEIGHT
    verify_checkpoint(forged, genesis)


def rest_get(consortium: Consortium, path: str, token: str | None = None, node: int = 0) -> bytes:
    request = urllib.request.Request(f"http://{consortium.layout.rest_addresses[node]}{path}")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read()  # type: ignore[no-any-return]


def test_a_node_shown_the_forged_block_by_a_peer_raises_the_alarm(
    consortium: Consortium, forged: ledger_pb2.Checkpoint, tmp_path: Path
) -> None:
    node = consortium.cluster[0]
    assert json.loads(rest_get(consortium, "/v1/health")) == {"status": "ok", "forks_seen": 0}
    # node-1, one of the Byzantine quorum, pushes its status with the forged checkpoint.
    material = issued_material(consortium.layout, "node-1")
    peer_address = NodeConfig.load(consortium.layout.node_configs[0]).peer_listen
    status = peer_pb2.StatusResponse(
        node_id="node-1",
        height=FORKED_HEIGHT,
        block_id=block_id(forged.header),
        checkpoint=forged,
    )
    with grpc.secure_channel(peer_address, channel_credentials(material)) as channel:
        peer_pb2_grpc.PeerServiceStub(channel).Gossip(
            iter([peer_pb2.PeerMessage(status=status)]), timeout=ALARM_TIMEOUT_S
        )
    wait_until(
        lambda: f"FORK at height {FORKED_HEIGHT}: peer node-1" in node.log_text(),
        ALARM_TIMEOUT_S,
        node.log_tail,
    )
    alarm = next(line for line in node.log_text().splitlines() if "FORK at height" in line)
    assert " ERROR " in alarm
    assert json.loads(rest_get(consortium, "/v1/health")) == {
        "status": "fork_seen",
        "forks_seen": 1,
    }
    auditor = member_token(consortium.layout, "auditor")
    (listed,) = json.loads(rest_get(consortium, "/v1/forks", auditor))["items"]
    assert (listed["height"], listed["peer_id"]) == (FORKED_HEIGHT, "node-1")
    proof_file = tmp_path / "fork-1.json"
    proof_file.write_bytes(rest_get(consortium, "/v1/forks/1", auditor))
    verified = run_cli(
        "verify", str(proof_file), "--genesis", str(consortium.layout.genesis_path), "--json"
    )
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["equivocators"] == listed["equivocators"]
    assert set(listed["equivocators"]) <= set(BYZANTINE) and len(listed["equivocators"]) >= 2
    # The other nodes were not shown it, and consensus goes on.
    assert json.loads(rest_get(consortium, "/v1/health", node=1))["status"] == "ok"
    height = node.height()
    consortium.cluster.wait_for_heights(height + 2)

    # The consequence: node-0's evidence pool hands the equivocations to a coming block, and
    # every node's ledger state marks the equivocators (ADR 014).
    def marked() -> dict[str, int]:
        status = json.loads(rest_get(consortium, "/v1/status", auditor, node=2))
        return {v["validator_id"]: v["equivocations"] for v in status["validators"]}

    wait_until(
        lambda: all(marked()[v] == 1 for v in listed["equivocators"]),
        EVIDENCE_TIMEOUT_S,
        lambda: f"equivocations by validator: {marked()}",
    )
    assert {v for v, count in marked().items() if count} == set(listed["equivocators"])

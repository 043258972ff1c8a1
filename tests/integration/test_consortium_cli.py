"""A four-node consortium set up and used with the `provledger` command alone, as a user would.

    provledger consortium init --nodes 4 --dir X --base-port P
    provledger node run --config X/node-K/config.toml          (four times, in the background)
    provledger submit --node <node-3> --ca-cert X/ca/ca.pem \\
        --identity X/identities/agency-a.json --kind asset_registered --set ... --wait --json
    provledger proof inclusion <event id> --node <node-0> --ca-cert X/ca/ca.pem \\
        --identity X/identities/auditor.json --genesis X/genesis.json --json

The event is submitted to one node and proved by another, against nothing but the genesis
file: the proof's checkpoint carries the signatures of at least three of the four validators.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.processes import (
    ClientAccess,
    NodeCluster,
    NodeProcess,
    configured_ports,
    free_base_port,
    note_access,
    ports_free,
    provledger_command,
    wait_until,
)

pytestmark = pytest.mark.integration

NODES = 4
QUORUM = 3
CLI_TIMEOUT_S = 60
PROOF_TIMEOUT_S = 30.0
INIT_ATTEMPTS_MAX = 5


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*provledger_command(), *args], capture_output=True, text=True, timeout=CLI_TIMEOUT_S
    )


def cli_json(*args: str) -> dict:
    """Run a command that must succeed with --json, and parse what it printed."""
    result = run_cli(*args, "--json")
    assert result.returncode == 0, f"{args}: exit {result.returncode}\n{result.stderr}"
    return json.loads(result.stdout)


@pytest.fixture
def cli_consortium(tmp_path: Path) -> Iterator[tuple[Path, dict, NodeCluster]]:
    directory = tmp_path / "consortium"
    for _ in range(INIT_ATTEMPTS_MAX):
        init = cli_json(
            "consortium", "init", "--nodes", str(NODES), "--dir", str(directory),
            "--base-port", str(free_base_port(NODES)),
        )  # fmt: skip
        # Every port the configs name must be free, whatever kinds of port init writes.
        if ports_free(configured_ports(Path(entry["config"]) for entry in init["nodes"])):
            break
        shutil.rmtree(directory)
    else:
        pytest.fail(f"no free base port for {NODES} nodes in {INIT_ATTEMPTS_MAX} attempts")
    nodes = []
    for index, entry in enumerate(init["nodes"]):
        config = directory / f"node-{index}" / "config.toml"
        assert Path(entry["config"]) == config
        nodes.append(
            NodeProcess(
                config=config,
                address=entry["grpc"],
                log_path=tmp_path / f"node-{index}.log",
                name=f"node-{index}",
                command=[*provledger_command(), "node", "run", "--config", str(config)],
            )
        )
    # The test's own health checks trust the CA `consortium init` made, as the CLI does.
    ca_certificate_pem = Path(init["ca_certificate"]).read_bytes()
    note_access([entry["grpc"] for entry in init["nodes"]], ClientAccess(ca_certificate_pem, None))
    cluster = NodeCluster(nodes)
    try:
        cluster.start()
        yield directory, init, cluster
    finally:
        cluster.stop()


def test_submit_to_one_node_and_prove_inclusion_from_another(cli_consortium) -> None:
    directory, init, cluster = cli_consortium
    node_0, node_3 = init["nodes"][0]["grpc"], init["nodes"][3]["grpc"]
    assert init["identities"]["agency-a"] == str(directory / "identities" / "agency-a.json")
    digest = base64.b64encode(hashlib.sha256(b"survey 2021").digest()).decode()

    receipt = cli_json(
        "submit", "--node", node_3, "--ca-cert", init["ca_certificate"],
        "--identity", str(directory / "identities" / "agency-a.json"),
        "--kind", "asset_registered",
        "--set", "asset_id=cli-consortium/survey-2021",
        "--set", f"content_digest={digest}",
        "--set", "classification=CLASSIFICATION_GENERAL",
        "--set", "name=Survey 2021",
        "--wait",
    )  # fmt: skip
    event_id = base64.b64decode(receipt["eventId"]).hex()
    height = int(receipt["height"])
    assert height >= 1
    assert len(receipt["checkpoint"]["certificate"]["signatures"]) >= QUORUM

    # node-0 may commit the block a moment after node-3 answered: ask until it has.
    attempts: list[subprocess.CompletedProcess[str]] = []
    genesis = str(directory / "genesis.json")

    def proved() -> subprocess.CompletedProcess[str] | None:
        command = (
            "proof", "inclusion", event_id, "--node", node_0, "--ca-cert", init["ca_certificate"],
            "--identity", str(directory / "identities" / "auditor.json"), "--genesis", genesis,
        )  # fmt: skip
        attempts.append(run_cli(*command, "--json"))
        return attempts[-1] if attempts[-1].returncode == 0 else None

    result = wait_until(
        proved,
        PROOF_TIMEOUT_S,
        lambda: f"{attempts[-1].stderr}\n{cluster[0].log_tail()}",
        interval_s=0.5,
    )
    proof = json.loads(result.stdout)
    assert proof["verified"] is True
    assert proof["signers"] >= QUORUM
    assert proof["validators"] == NODES
    assert proof["height"] >= height
    assert proof["leaf_index"] == int(receipt.get("logIndex", 0))
    assert proof["tree_size"] > proof["leaf_index"]

"""Helpers for tests of the auditor REST API against real node processes.

`init_rest_consortium` runs `consortium init` on a base port where every port the layout names
is free: gRPC on base+K, PeerService on base+100+K and REST on base+200+K, all on 127.0.0.1,
probed below Linux's ephemeral range so that no client connection takes one meanwhile. Nodes
are run with `support.processes` (`NodeCluster`), which stops them by PID.

`RestClient` is a small JSON client for one node; `cli_token` issues a bearer token the way an
auditor does, with the `provledger token issue` command.
"""

from __future__ import annotations

import json
import random
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from support.processes import note_client_access

from provledger.cli import consortium
from provledger.protocol.proofs import VerifiedInclusion, verify_inclusion_answer
from provledger.v1 import ledger_pb2

LOOPBACK = "127.0.0.1"
BASE_PORT_MIN = 10_000
BASE_PORT_MAX = 30_000
BASE_PORT_ATTEMPTS_MAX = 200
HTTP_TIMEOUT_S = 30.0
CLI_TIMEOUT_S = 60.0
POLL_INTERVAL_S = 0.1


def consortium_ports(base_port: int, nodes: int) -> list[int]:
    """Every port `consortium init --base-port base_port` writes for `nodes` nodes."""
    offsets = [0, consortium.REST_PORT_OFFSET, consortium.OPERATIONS_PORT_OFFSET]
    if nodes > 1:
        offsets.append(consortium.PEER_PORT_OFFSET)
    return [base_port + offset + index for offset in offsets for index in range(nodes)]


def ports_free(ports: list[int]) -> bool:
    probes = []
    try:
        for port in ports:
            probe = socket.socket()
            probes.append(probe)
            probe.bind((LOOPBACK, port))
        return True
    except OSError:
        return False
    finally:
        for probe in probes:
            probe.close()


def free_base_port(nodes: int, rng: random.Random | None = None) -> int:
    rng = rng or random.Random()
    highest = BASE_PORT_MAX - consortium.OPERATIONS_PORT_OFFSET - nodes
    for _ in range(BASE_PORT_ATTEMPTS_MAX):
        base_port = rng.randrange(BASE_PORT_MIN, highest)
        if ports_free(consortium_ports(base_port, nodes)):
            return base_port
    raise RuntimeError(f"no base port with {nodes} nodes' gRPC, peer and REST ports free")


def init_rest_consortium(
    tmp_path: Path, nodes: int, chain_id: str = "provledger-test"
) -> consortium.ConsortiumLayout:
    """`consortium init` into tmp_path/consortium with every port of the layout free; its
    gRPC clients trust its CA and read as its auditor (support.processes.client_channel)."""
    layout = consortium.init_consortium(
        tmp_path / "consortium", nodes, chain_id=chain_id, base_port=free_base_port(nodes)
    )
    note_client_access(layout)
    return layout


def provledger_command() -> list[str]:
    """The `provledger` console script of this interpreter's environment."""
    script = Path(sys.executable).parent / "provledger"
    if script.exists():
        return [str(script)]
    found = shutil.which("provledger")
    return [found] if found else [sys.executable, "-m", "provledger.cli.main"]


def run_cli(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*provledger_command(), *arguments],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )


def cli_token(identity: Path, role: str, ttl_s: int = 3_600) -> str:
    """A bearer token from `provledger token issue` (asserting that it succeeds)."""
    result = run_cli(
        "token", "issue", "--identity", str(identity), "--role", role, "--ttl-s", str(ttl_s)
    )
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert token.count(".") == 1 and "\n" not in token, result.stdout
    return token


class RestClient:
    """JSON over HTTP to one node's REST API, with a bearer token."""

    def __init__(self, address: str, token: str | None = None) -> None:
        self.base_url = f"http://{address}"
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=self.base_url, headers=headers, timeout=HTTP_TIMEOUT_S)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> RestClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def response(self, path: str, **params: Any) -> httpx.Response:
        return self.http.get(path, params={k: v for k, v in params.items() if v is not None})

    def get(self, path: str, **params: Any) -> Any:
        """The JSON of a 200 answer; AssertionError with the body otherwise."""
        answer = self.response(path, **params)
        assert answer.status_code == 200, f"GET {path} {params}: {answer.status_code} {answer.text}"
        return answer.json()

    def error(self, path: str, status: int, **params: Any) -> str:
        """The error code of an answer that must have `status`."""
        answer = self.response(path, **params)
        assert answer.status_code == status, f"GET {path}: {answer.status_code} {answer.text}"
        body = json.loads(answer.text)
        assert set(body) == {"error", "reason"}, body
        return body["error"]

    def height(self) -> int:
        return int(self.get("/v1/status")["height"])


def wait_until(condition: Callable[[], Any], timeout_s: float, describe: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout_s} s: {describe}")
        time.sleep(POLL_INTERVAL_S)


# --- REST answers checked with protocol/proofs.py --------------------------------------------


def checkpoint_message(view: dict) -> ledger_pb2.Checkpoint:
    """A REST CheckpointView as the protobuf checkpoint it encodes."""
    certificate = ledger_pb2.CommitCertificate(
        height=view["certificate"]["height"],
        round=view["certificate"]["round"],
        block_id=bytes.fromhex(view["certificate"]["block_id"]),
        signatures=[
            ledger_pb2.CommitSignature(
                validator_id=s["validator_id"], signature=bytes.fromhex(s["signature"])
            )
            for s in view["certificate"]["signatures"]
        ],
    )
    return ledger_pb2.Checkpoint(header=bytes.fromhex(view["header_raw"]), certificate=certificate)


def verify_rest_inclusion(genesis, event: dict, proof: dict, checkpoint: dict) -> VerifiedInclusion:
    """Check a REST event view and its inclusion proof against a checkpoint view, trusting only
    the genesis: the same check the CLI and the demo make (protocol/proofs.py)."""
    signed = ledger_pb2.SignedEvent(
        body=bytes.fromhex(event["body"]), signature=bytes.fromhex(event["signature"])
    )
    message = ledger_pb2.InclusionProof(
        leaf_index=proof["leaf_index"],
        tree_size=proof["tree_size"],
        leaf_hash=bytes.fromhex(proof["leaf_hash"]),
        hashes=[bytes.fromhex(h) for h in proof["hashes"]],
    )
    verified = verify_inclusion_answer(
        signed, message, checkpoint_message(checkpoint), genesis, bytes.fromhex(event["event_id"])
    )
    assert verified.leaf_index == event["log_index"]
    return verified

"""Evidence bundles end to end, as an auditor would make and check them: a real node commits a
small story, is stopped, `provledger evidence export --data-dir` writes bundles from its
LevelDB folder, and `provledger verify` (a separate process, no network) checks them against
the genesis file alone. One changed byte makes `verify` fail with the reason.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import subprocess
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.processes import NodeProcess, init_consortium, ledger_client, provledger_command

from provledger.cli.client import EventSigner, Identity
from provledger.v1 import ledger_pb2

pytestmark = pytest.mark.integration

CLI_TIMEOUT_S = 60


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*provledger_command(), *args], capture_output=True, text=True, timeout=CLI_TIMEOUT_S
    )


@dataclass
class StoppedNode:
    genesis: Path
    data_dir: Path
    event_ids: dict[str, str]  # story label -> hex event id
    node: NodeProcess


@pytest.fixture(scope="module")
def stopped_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoppedNode]:
    tmp_path = tmp_path_factory.mktemp("evidence-cli")
    layout = init_consortium(tmp_path, nodes=1)
    signers = {
        member: EventSigner(Identity.load(path)) for member, path in layout.identities.items()
    }
    story = [
        ("raw", "agency-a", "asset_registered",
         {"asset_id": "story/raw", "content_digest": hashlib.sha256(b"raw").digest(),
          "classification": ledger_pb2.CLASSIFICATION_IMPORTANT}),
        ("other", "agency-b", "asset_registered",
         {"asset_id": "story/other", "content_digest": hashlib.sha256(b"other").digest(),
          "classification": ledger_pb2.CLASSIFICATION_GENERAL}),
        ("grant", "agency-b", "grant_issued",
         {"grant_id": "story/g", "asset_id": "story/other", "grantee_id": "agency-a",
          "purposes": ["fusion"], "operations": [ledger_pb2.OPERATION_DERIVE],
          "expires_at_ms": 2**62}),
        ("clean", "agency-a", "asset_derived",
         {"asset_id": "story/clean", "parent_ids": ["story/raw"], "activity": "cleaning",
          "content_digest": hashlib.sha256(b"clean").digest(),
          "classification": ledger_pb2.CLASSIFICATION_IMPORTANT}),
        ("fused", "agency-a", "asset_derived",
         {"asset_id": "story/fused", "parent_ids": ["story/clean", "story/other"],
          "grant_ids": ["story/g"], "activity": "fusion",
          "content_digest": hashlib.sha256(b"fused").digest(),
          "classification": ledger_pb2.CLASSIFICATION_IMPORTANT}),
        ("offer", "exchange", "offer_listed",
         {"offer_id": "story/offer", "asset_id": "story/fused", "seller_id": "agency-a",
          "price": 500, "currency": "CNY"}),
        ("order", "agency-b", "order_placed",
         {"order_id": "story/order", "offer_id": "story/offer"}),
        ("delivered", "agency-a", "order_delivered",
         {"order_id": "story/order", "delivery_digest": hashlib.sha256(b"copy").digest()}),
        ("disputed", "agency-b", "dispute_opened",
         {"dispute_id": "story/dispute", "order_id": "story/order", "reason": "late"}),
        ("resolved", "regulator", "dispute_resolved",
         {"dispute_id": "story/dispute", "outcome": ledger_pb2.DISPUTE_OUTCOME_FOR_SELLER}),
    ]  # fmt: skip
    node = NodeProcess.for_node(layout, 0, tmp_path)
    event_ids = {}
    with node, ledger_client(node.address) as client:
        for label, member, kind, fields in story:
            receipt = client.submit_and_wait(signers[member].event(kind, **fields))
            event_ids[label] = receipt.event_id.hex()
    assert not node.running
    yield StoppedNode(
        genesis=layout.genesis_path,
        data_dir=layout.node_configs[0].parent / "data",
        event_ids=event_ids,
        node=node,
    )


def export(stopped: StoppedNode, *subject: str, out: Path) -> subprocess.CompletedProcess[str]:
    return run_cli(
        "evidence", "export", *subject, "--data-dir", str(stopped.data_dir),
        "--genesis", str(stopped.genesis), "--out", str(out),
    )  # fmt: skip


def test_exported_bundles_verify_offline(stopped_node: StoppedNode, tmp_path: Path) -> None:
    subjects = {
        "event": ("--event", stopped_node.event_ids["fused"]),
        "lineage": ("--lineage", "story/fused"),
        "trade": ("--trade", "story/order"),
    }
    for kind, subject in subjects.items():
        out = tmp_path / f"{kind}.json"
        result = export(stopped_node, *subject, out=out)
        assert result.returncode == 0, result.stderr
        assert f"wrote {kind} evidence for {subject[1]}" in result.stdout
        assert "verified against the genesis" in result.stdout

        result = run_cli("verify", str(out), "--genesis", str(stopped_node.genesis))
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"VERIFIED {kind} evidence for")
        assert "signed by 1 of 1 validators (quorum 1): node-0" in result.stdout

        result = run_cli("verify", str(out), "--genesis", str(stopped_node.genesis), "--json")
        assert result.returncode == 0, result.stderr
        document = json.loads(result.stdout)
        assert document["verified"] is True and document["kind"] == kind

    trade = json.loads(
        run_cli(
            "verify", str(tmp_path / "trade.json"), "--genesis", str(stopped_node.genesis), "--json"
        ).stdout
    )
    assert trade["claims"]["statuses"] == ["listed", "ordered", "delivered", "disputed", "resolved"]
    assert trade["claims"]["dispute"]["outcome"] == "for_seller"
    lineage = run_cli(
        "verify", str(tmp_path / "lineage.json"), "--genesis", str(stopped_node.genesis)
    ).stdout
    assert "4 assets, 3 derivation edges" in lineage
    assert "story/fused: derived by fusion from story/clean, story/other" in lineage


def test_one_changed_byte_fails_with_the_reason(stopped_node: StoppedNode, tmp_path: Path) -> None:
    out = tmp_path / "event.json"
    assert export(stopped_node, "--event", stopped_node.event_ids["raw"], out=out).returncode == 0
    data = out.read_bytes()
    # A character inside the event's base64 signature, and one of the structure.
    signature_at = data.index(b'"signature":"', data.index(b'"events":')) + len('"signature":"')
    for position in (signature_at + 5, len(data) // 2, 0):
        tampered = tmp_path / f"tampered-{position}.json"
        changed = bytes([data[position] ^ 0x01])
        tampered.write_bytes(data[:position] + changed + data[position + 1 :])
        result = run_cli("verify", str(tampered), "--genesis", str(stopped_node.genesis))
        assert result.returncode == 1, (position, result.stdout)
        assert result.stdout == ""
        assert result.stderr.startswith("provledger: bundle does NOT verify: "), result.stderr


def test_export_errors_are_clear(stopped_node: StoppedNode, tmp_path: Path) -> None:
    out = tmp_path / "x.json"
    result = export(stopped_node, "--trade", "no/such/order", out=out)
    assert result.returncode == 1 and "no order has id 'no/such/order'" in result.stderr
    result = export(stopped_node, "--event", "zz", out=out)
    assert result.returncode == 1 and "event id must be hex" in result.stderr
    result = run_cli(
        "evidence", "export", "--lineage", "story/raw", "--data-dir", str(tmp_path),
        "--genesis", str(stopped_node.genesis), "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 1 and "holds no ledger database" in result.stderr
    result = run_cli(
        "evidence", "export", "--lineage", "story/raw", "--data-dir", str(stopped_node.data_dir),
        "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 1 and "--data-dir needs --genesis" in result.stderr
    result = run_cli(
        "evidence", "export", "--lineage", "story/raw", "--rest", "http://127.0.0.1:9",
        "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 1 and "needs --token" in result.stderr
    assert not out.exists()


def test_export_from_a_running_nodes_folder_is_refused(
    stopped_node: StoppedNode, tmp_path: Path
) -> None:
    with stopped_node.node:
        result = export(stopped_node, "--lineage", "story/raw", out=tmp_path / "x.json")
    assert result.returncode == 1
    assert "is its node running?" in result.stderr, result.stderr


TOKEN = "test-token"


@contextmanager
def rest_stub(bundle: bytes) -> Iterator[tuple[str, list[str]]]:
    """A stand-in for a node's REST API on 127.0.0.1: it serves `bundle` for the lineage of
    story/fused to the bearer of TOKEN and answers like the API's contract otherwise. Yields
    its base URL and the request paths it saw."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            url = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(url.query)
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self.answer(401, {"error": "unauthorized", "reason": "no or bad token"})
            elif url.path == "/v1/evidence/lineage" and query == {"asset_id": ["story/fused"]}:
                self.answer(200, bundle)
            else:
                self.answer(404, {"error": "not_found", "reason": f"nothing at {url.path}"})

        def answer(self, status: int, body: bytes | dict) -> None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_export_over_rest(stopped_node: StoppedNode, tmp_path: Path) -> None:
    built = tmp_path / "built.json"
    assert export(stopped_node, "--lineage", "story/fused", out=built).returncode == 0
    out = tmp_path / "fetched.json"
    genesis = ("--genesis", str(stopped_node.genesis))
    with rest_stub(built.read_bytes()) as (url, seen):
        result = run_cli(
            "evidence", "export", "--lineage", "story/fused", "--rest", url, "--token", TOKEN,
            *genesis, "--out", str(out),
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert seen[-1] == "/v1/evidence/lineage?asset_id=story%2Ffused"
        assert out.read_bytes() == built.read_bytes()
        assert run_cli("verify", str(out), *genesis).returncode == 0

        fail = tmp_path / "fail.json"
        result = run_cli(
            "evidence", "export", "--trade", "story/order", "--rest", url, "--token", TOKEN,
            "--out", str(fail),
        )  # fmt: skip
        assert result.returncode == 1
        assert "the node answered HTTP 404: not_found: nothing at /v1/evidence/trade" in (
            result.stderr
        )
        result = run_cli(
            "evidence", "export", "--lineage", "story/fused", "--rest", url, "--token", "bad",
            "--out", str(fail),
        )  # fmt: skip
        assert result.returncode == 1 and "HTTP 401: unauthorized" in result.stderr
        assert not fail.exists()

    # A node that serves a bundle that does not verify: nothing is written.
    tampered = built.read_bytes().replace(b'"activity":"fusion"', b'"activity":"fusiom"')
    with rest_stub(tampered) as (url, _):
        result = run_cli(
            "evidence", "export", "--lineage", "story/fused", "--rest", url, "--token", TOKEN,
            *genesis, "--out", str(tmp_path / "bad.json"),
        )  # fmt: skip
    assert result.returncode == 1
    assert "the exported bundle does NOT verify: claims.assets" in result.stderr
    assert not (tmp_path / "bad.json").exists()

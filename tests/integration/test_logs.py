"""A real node's logs with `--log-format json`: every line it writes is one JSON object.

Four nodes run with JSON logs. They connect to each other, commit a submitted event, node-0
answers REST requests with a member's token, without one and with a bad one; then node-3
stops, the others lose their peer, and at a height node-3 was to propose they change rounds.
Then:
- every line either node wrote parses as a JSON object with time, level, logger and message
  (the test harness's own "=== start" marker lines are the only other lines in the files);
- the structured fields are there: `peer` on connects and disconnects, `height` and `round`
  on commits, `round` on round changes;
- the access log names the token's member (`-` without a valid token) and the token itself
  appears nowhere in either node's output.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.processes import (
    NodeCluster,
    NodeProcess,
    init_consortium,
    ledger_client,
    member_token,
    node_command,
    wait_until,
)

from provledger.cli.client import EventSigner, Identity
from provledger.node.config import NodeConfig
from provledger.v1 import ledger_pb2

pytestmark = pytest.mark.integration

HARNESS_MARKER = "=== start "  # written into the log file by NodeProcess.start, not the node
EVENT_TIMEOUT_MS = 30_000
ROUND_CHANGE_EVENTS_MAX = 8  # node-3 proposes at least once in any 4 heights
LOG_TIMEOUT_S = 30.0
HTTP_TIMEOUT_S = 10.0
CLI_TIMEOUT_S = 60.0


def log_lines(node: NodeProcess) -> list[str]:
    return [line for line in node.log_text().splitlines() if not line.startswith(HARNESS_MARKER)]


def json_records(node: NodeProcess) -> list[dict[str, Any]]:
    """Every line of the node's output as JSON; AssertionError naming a line that is not."""
    records = []
    for line in log_lines(node):
        try:
            document = json.loads(line)
        except json.JSONDecodeError:
            raise AssertionError(f"{node.name} wrote a line that is not JSON: {line!r}") from None
        assert isinstance(document, dict), line
        assert {"time", "level", "logger", "message"} <= set(document), line
        records.append(document)
    return records


def having(node: NodeProcess, **wanted: Any) -> list[dict[str, Any]]:
    """The node's JSON records with every field in `wanted` (a value of ... means: present)."""
    return [
        record
        for record in json_records(node)
        if all(k in record and (v is ... or record[k] == v) for k, v in wanted.items())
    ]


def register(signer: EventSigner, asset_id: str) -> ledger_pb2.SignedEvent:
    return signer.event(
        "asset_registered",
        asset_id=asset_id,
        content_digest=hashlib.sha256(asset_id.encode()).digest(),
        classification=ledger_pb2.CLASSIFICATION_GENERAL,
    )


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NodeCluster, Any]]:
    directory = tmp_path_factory.mktemp("logs")
    layout = init_consortium(directory, nodes=4)
    nodes = [
        NodeProcess.for_node(
            layout, index, directory, command=[*node_command(config), "--log-format", "json"]
        )
        for index, config in enumerate(layout.node_configs)
    ]
    running = NodeCluster(nodes)
    try:
        running.start()
        yield running, layout
    finally:
        running.stop()


def test_the_json_logs_carry_the_fields_and_the_access_log_names_the_member(
    cluster: tuple[NodeCluster, Any],
) -> None:
    nodes, layout = cluster
    node_0, node_1 = nodes[0], nodes[1]
    wait_until(
        lambda: having(node_0, peer="node-1") and having(node_1, peer="node-0"),
        LOG_TIMEOUT_S,
        "both nodes log their peer's connection",
    )

    signer = EventSigner(Identity.load(layout.identities["agency-a"]))
    asset_id = "logs-asset-1"
    with ledger_client(node_0.address) as client:
        receipt = client.submit_and_wait(register(signer, asset_id), EVENT_TIMEOUT_MS)
    committed = wait_until(
        lambda: having(node_0, height=receipt.height, round=...),
        LOG_TIMEOUT_S,
        f"node-0 logs the commit of height {receipt.height}",
    )
    assert "committed block" in committed[0]["message"]

    token = member_token(layout, "auditor")
    rest = NodeConfig.load(layout.node_configs[0]).rest_listen
    with httpx.Client(base_url=f"http://{rest}", timeout=HTTP_TIMEOUT_S) as http:
        read = http.get(
            "/v1/assets",
            params={"asset_id": asset_id, "note": "not-logged"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert read.status_code == 200, read.text
        assert http.get("/v1/health").status_code == 200
        refused = http.get("/v1/status", headers={"Authorization": "Bearer not.valid"})
        assert refused.status_code == 401

    wait_until(
        lambda: len(having(node_0, logger="provledger.rest.access")) >= 3,
        LOG_TIMEOUT_S,
        "node-0 logs three REST requests",
    )
    access = having(node_0, logger="provledger.rest.access")
    by_path = {record["path"]: record for record in access}
    assert by_path["/v1/assets"]["member"] == "auditor"
    assert by_path["/v1/assets"]["status"] == 200
    assert by_path["/v1/assets"]["method"] == "GET"
    assert isinstance(by_path["/v1/assets"]["duration_ms"], float)
    assert by_path["/v1/health"]["member"] == "-"
    assert (by_path["/v1/status"]["status"], by_path["/v1/status"]["member"]) == (401, "-")

    # node-3 stops: the others lose a peer, and at the heights it was to propose, they wait
    # out its proposal and go on in round 1 (one event per height until that is logged).
    node_3 = nodes[3]
    node_3.stop()
    wait_until(
        lambda: having(node_0, peer="node-3", level="WARNING"),
        LOG_TIMEOUT_S,
        "node-0 logs the loss of node-3",
    )
    for index in range(ROUND_CHANGE_EVENTS_MAX):
        if [r for r in having(node_0, round=...) if r["round"] > 0]:
            break
        with ledger_client(node_0.address) as client:
            client.submit_and_wait(register(signer, f"logs-round-{index}"), EVENT_TIMEOUT_MS)
    else:
        raise AssertionError(f"no round change logged in {ROUND_CHANGE_EVENTS_MAX} heights")
    nodes.stop()

    for node in nodes:
        json_records(node)  # every line, to the last one written while stopping
        text = node.log_text()
        assert token not in text and token.split(".")[1] not in text
        assert "not-logged" not in text


def test_a_refused_start_is_a_json_line_too(tmp_path: Path) -> None:
    missing = tmp_path / "no-config.toml"
    finished = subprocess.run(
        [*node_command(missing), "--log-format", "json"],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )
    assert finished.returncode == 1
    lines = [json.loads(line) for line in (finished.stdout + finished.stderr).splitlines()]
    assert [(d["level"], d["logger"]) for d in lines] == [("CRITICAL", "provledger.node")]
    assert f"no config file at {missing}" in lines[0]["message"]

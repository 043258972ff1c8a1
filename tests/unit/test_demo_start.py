"""The demo's start-up: a node that exits while starting is reported at once, and one whose
port was taken after the demo chose it makes the demo start again on other ports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from support.processes import free_port

from provledger.cli.client import LedgerClient
from provledger.cli.demo import PortTaken, wait_started
from provledger.cli.output import CommandError


def exited_node(log_dir: Path, text: str) -> subprocess.Popen:
    """A process that writes `text` to node-0.log and exits 1, as a failed node would."""
    with (log_dir / "node-0.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", f"import sys; print({text!r}); sys.exit(1)"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    process.wait(timeout=30)
    return process


@pytest.mark.parametrize(
    ("log_text", "error"),
    [
        ("OSError: cannot listen on 127.0.0.1:11000", PortTaken),
        ("ValueError: the validator key does not match node-0", CommandError),
    ],
)
def test_a_node_that_exits_while_starting_is_reported_at_once(tmp_path, log_text, error):
    process = exited_node(tmp_path, log_text)
    client = LedgerClient(f"127.0.0.1:{free_port()}", plaintext=True)  # nothing listens there
    try:
        with pytest.raises(error) as raised:
            wait_started([client], [process], tmp_path)
    finally:
        client.close()
    assert "node-0" in str(raised.value)


def test_a_node_with_no_block_yet_is_at_height_zero(tmp_path):
    """The demo waits for every node to reach each step's height; a node that has committed
    nothing yet answers FAILED_PRECONDITION empty_chain, which means height 0, not a failure
    (found as a rare demo failure when the first block reached one node before another)."""
    import asyncio
    import threading

    import grpc
    from support.memory_state import Consortium

    from provledger.cli.demo import _head_height
    from provledger.node.grpc_api import LedgerService, add_to_server
    from provledger.node.ledger import LedgerNode, wall_clock_ms
    from provledger.node.store import Store
    from provledger.protocol.tokens import issue_token

    consortium = Consortium()
    store = Store(tmp_path / "ledger", consortium.genesis)
    started, stop = threading.Event(), threading.Event()
    port: list[int] = []

    async def serve() -> None:
        node = LedgerNode(consortium.genesis, store, "validator-0", verifier=None)  # type: ignore[arg-type]
        server = grpc.aio.server()
        add_to_server(LedgerService(node), server)
        port.append(server.add_insecure_port("127.0.0.1:0"))
        await server.start()
        started.set()
        while not stop.is_set():
            await asyncio.sleep(0.01)
        await server.stop(None)

    thread = threading.Thread(target=lambda: asyncio.run(serve()))
    thread.start()
    try:
        assert started.wait(30)
        token = issue_token(
            consortium["auditor"].key,
            "auditor",
            "auditor",
            consortium.genesis.chain_id,
            wall_clock_ms(),
            60_000,
        )
        client = LedgerClient(f"127.0.0.1:{port[0]}", plaintext=True, token=token)
        try:
            assert _head_height(client) == 0
        finally:
            client.close()
    finally:
        stop.set()
        thread.join(30)
        store.close()

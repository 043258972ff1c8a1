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
    client = LedgerClient(f"127.0.0.1:{free_port()}")  # nothing listens there
    try:
        with pytest.raises(error) as raised:
            wait_started([client], [process], tmp_path)
    finally:
        client.close()
    assert "node-0" in str(raised.value)

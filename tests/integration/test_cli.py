"""The `provledger` command, run as an operator or auditor would: as separate processes.

`consortium init` makes the folders, `node run` serves in the background, and submit, event
get, lineage and the proof commands talk to it, printing JSON with --json. Errors go to
standard error with a non-zero exit code. `provledger demo` runs its whole story.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.processes import ClientAccess, NodeProcess, free_port, note_access

pytestmark = pytest.mark.integration

CLI_TIMEOUT_S = 60
DEMO_TIMEOUT_S = 120


def provledger_command() -> list[str]:
    """The installed `provledger` console script of this interpreter's environment."""
    script = Path(sys.executable).parent / "provledger"
    if script.exists():
        return [str(script)]
    found = shutil.which("provledger")
    if found:
        return [found]
    return [sys.executable, "-m", "provledger.cli.main"]


def run_cli(*args: str, stdin: str | None = None, timeout: float = CLI_TIMEOUT_S):
    return subprocess.run(
        [*provledger_command(), *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=timeout,
    )


def cli_json(*args: str, stdin: str | None = None):
    """Run a command that must succeed, and parse its JSON output."""
    result = run_cli(*args, "--json", stdin=stdin)
    assert result.returncode == 0, f"{args}: exit {result.returncode}\n{result.stderr}"
    return json.loads(result.stdout)


def digest_base64(text: str) -> str:
    """A SHA-256 digest as protobuf JSON writes bytes: base64."""
    return base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


@dataclass
class CliConsortium:
    directory: Path
    init_output: dict
    node: NodeProcess

    @property
    def address(self) -> str:
        return self.node.address

    @property
    def genesis(self) -> str:
        return self.init_output["genesis"]

    @property
    def ca_certificate(self) -> str:
        return self.init_output["ca_certificate"]

    @property
    def node_args(self) -> list[str]:
        """Where the node is, and the CA its TLS certificate chains to."""
        return ["--node", self.address, "--ca-cert", self.ca_certificate]

    @property
    def read_args(self) -> list[str]:
        """The node, read as the consortium's auditor (a token signed for the command)."""
        return [*self.node_args, "--identity", self.identity("auditor")]

    def identity(self, member: str) -> str:
        return self.init_output["identities"][member]


@pytest.fixture(scope="module")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CliConsortium]:
    tmp_path = tmp_path_factory.mktemp("cli")
    directory = tmp_path / "consortium"
    init_output = cli_json(
        "consortium", "init", "--nodes", "1", "--dir", str(directory),
        "--base-port", str(free_port()),
    )  # fmt: skip
    (node_entry,) = init_output["nodes"]
    config = Path(node_entry["config"])
    ca_certificate_pem = Path(init_output["ca_certificate"]).read_bytes()
    note_access([node_entry["grpc"]], ClientAccess(ca_certificate_pem, token=None))
    node = NodeProcess(
        config=config,
        address=node_entry["grpc"],
        log_path=tmp_path / "node-0.log",
        name="node-0",
        command=[*provledger_command(), "node", "run", "--config", str(config)],
    )
    try:
        node.start()
        yield CliConsortium(directory=directory, init_output=init_output, node=node)
    finally:
        node.stop()


def test_consortium_init_writes_genesis_config_and_identities(consortium: CliConsortium) -> None:
    directory = consortium.directory
    assert Path(consortium.genesis) == directory / "genesis.json"
    genesis = json.loads((directory / "genesis.json").read_text())
    assert [v["validator_id"] for v in genesis["validators"]] == ["node-0"]
    assert set(consortium.init_output["identities"]) == {m["member_id"] for m in genesis["members"]}
    config = (directory / "node-0" / "config.toml").read_text()
    assert f'listen = "{consortium.address}"' in config
    assert consortium.address.startswith("127.0.0.1:")
    identity = json.loads(Path(consortium.identity("agency-a")).read_text())
    assert identity["member_id"] == "agency-a" and identity["chain_id"] == genesis["chain_id"]
    assert Path(consortium.identity("agency-a")).stat().st_mode & 0o077 == 0
    # A second init into the same folder is refused.
    result = run_cli("consortium", "init", "--nodes", "1", "--dir", str(directory))
    assert result.returncode != 0
    assert "exists" in result.stderr


def test_submit_query_and_verify_proofs(consortium: CliConsortium) -> None:
    node = consortium.node_args
    reader = consortium.read_args
    raw = cli_json(
        "submit", *node, "--identity", consortium.identity("agency-a"),
        "--kind", "asset_registered",
        "--set", "asset_id=cli/raw-survey",
        "--set", f"content_digest={digest_base64('raw survey')}",
        "--set", "classification=CLASSIFICATION_IMPORTANT",
        "--set", "name=Raw survey",
        "--set", 'metadata={"source": "field teams"}',
        "--wait",
    )  # fmt: skip
    raw_id = base64.b64decode(raw["eventId"]).hex()
    raw_height = int(raw["height"])
    assert raw_height >= 1
    assert int(raw["proof"].get("treeSize", 0)) >= 1
    assert raw["checkpoint"]["certificate"]["signatures"][0]["validatorId"] == "node-0"

    derived = cli_json(
        "submit", *node, "--identity", consortium.identity("agency-a"),
        "--kind", "asset_derived",
        "--set", "asset_id=cli/clean-survey",
        "--set", 'parent_ids=["cli/raw-survey"]',
        "--set", "activity=cleaning",
        "--set", f"content_digest={digest_base64('clean survey')}",
        "--set", "classification=CLASSIFICATION_IMPORTANT",
        "--wait",
    )  # fmt: skip
    derived_id = base64.b64decode(derived["eventId"]).hex()
    assert int(derived["height"]) > raw_height

    # An event described as JSON on standard input.
    event_json = json.dumps(
        {
            "asset_used": {
                "assetId": "cli/clean-survey",
                "purpose": "quality check",
                "operation": "OPERATION_READ",
            }
        }
    )
    used = cli_json(
        "submit", *node, "--identity", consortium.identity("agency-a"),
        "--event-json", "-", "--wait",
        stdin=event_json,
    )  # fmt: skip
    assert int(used["height"]) > int(derived["height"])

    event = cli_json("event", "get", raw_id, *reader)
    assert event["event_id"] == raw_id
    assert event["height"] == raw_height
    assert event["log_index"] == int(raw.get("logIndex", 0))
    registered = event["event"]["assetRegistered"]
    assert registered["assetId"] == "cli/raw-survey"
    assert registered["classification"] == "CLASSIFICATION_IMPORTANT"
    assert registered["metadata"] == {"source": "field teams"}
    assert event["event"]["author"]["memberId"] == "agency-a"
    assert len(bytes.fromhex(event["signature"])) == 64

    upstream = cli_json("lineage", "cli/clean-survey", *reader)
    assert [a["assetId"] for a in upstream["assets"]] == ["cli/clean-survey", "cli/raw-survey"]
    assert upstream["edges"] == [{"parentId": "cli/raw-survey", "childId": "cli/clean-survey"}]
    assert not upstream.get("truncated", False)
    downstream = cli_json("lineage", "cli/raw-survey", "--downstream", *reader)
    assert [a["assetId"] for a in downstream["assets"]] == ["cli/raw-survey", "cli/clean-survey"]
    text = run_cli("lineage", "cli/clean-survey", *reader)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0].startswith("cli/clean-survey  (owner agency-a, important, cleaning)")
    assert "cli/raw-survey" in lines[1]

    inclusion = cli_json("proof", "inclusion", raw_id, "--genesis", consortium.genesis, *reader)
    assert inclusion["verified"] is True
    assert inclusion["leaf_index"] == event["log_index"]
    assert inclusion["tree_size"] > inclusion["leaf_index"]
    assert (inclusion["signers"], inclusion["validators"]) == (1, 1)
    at_commit = cli_json(
        "proof", "inclusion", derived_id, "--genesis", consortium.genesis,
        "--height", derived["height"], *reader,
    )  # fmt: skip
    assert at_commit["verified"] is True and at_commit["height"] == int(derived["height"])
    text = run_cli("proof", "inclusion", raw_id, "--genesis", consortium.genesis, *reader)
    assert text.returncode == 0 and text.stdout.strip().endswith("VERIFIED"), text.stderr

    consistency = cli_json(
        "proof", "consistency", "--first", str(raw_height), "--genesis", consortium.genesis,
        *reader,
    )  # fmt: skip
    assert consistency["verified"] is True
    assert consistency["first_height"] == raw_height
    assert consistency["second_height"] >= int(used["height"])
    assert consistency["first_size"] < consistency["second_size"]


def test_proofs_against_another_genesis_do_not_verify(
    consortium: CliConsortium, tmp_path: Path
) -> None:
    node = consortium.node_args
    receipt = cli_json(
        "submit", *node, "--identity", consortium.identity("agency-b"),
        "--kind", "asset_registered",
        "--set", "asset_id=cli/other-genesis",
        "--set", f"content_digest={digest_base64('other genesis')}",
        "--set", "classification=CLASSIFICATION_GENERAL",
        "--wait",
    )  # fmt: skip
    event_id = base64.b64decode(receipt["eventId"]).hex()
    # The same chain id, but other validators: their keys never signed this chain's blocks.
    other = cli_json("consortium", "init", "--nodes", "1", "--dir", str(tmp_path / "other"))
    for command in (
        ["proof", "inclusion", event_id],
        ["proof", "consistency", "--first", receipt["height"]],
    ):
        result = run_cli(*command, "--genesis", other["genesis"], *consortium.read_args)
        assert result.returncode == 1, command
        assert result.stdout == ""
        assert result.stderr == (
            "provledger: proof does NOT verify: bad_certificate: the header names a different "
            "validator set\n"
        )


def test_submit_without_wait_prints_the_event_id(consortium: CliConsortium) -> None:
    accepted = cli_json(
        "submit", *consortium.node_args, "--identity", consortium.identity("agency-b"),
        "--kind", "asset_registered",
        "--set", "asset_id=cli/no-wait",
        "--set", f"content_digest={digest_base64('no wait')}",
        "--set", "classification=CLASSIFICATION_GENERAL",
    )  # fmt: skip
    assert len(bytes.fromhex(accepted["event_id"])) == 32


def test_unknown_event_id_fails_with_a_message(consortium: CliConsortium) -> None:
    result = run_cli("event", "get", "00" * 32, *consortium.read_args)
    assert result.returncode != 0
    assert result.stdout == ""
    assert "NOT_FOUND" in result.stderr and "unknown_event" in result.stderr

    result = run_cli("event", "get", "not-hex", *consortium.read_args)
    assert result.returncode != 0
    assert "event id must be hex" in result.stderr


def test_bad_submissions_fail_with_a_message(consortium: CliConsortium) -> None:
    base = ["submit", *consortium.node_args, "--identity", consortium.identity("agency-a")]
    result = run_cli(*base, "--kind", "asset_registered", "--set", "asset_id")
    assert result.returncode != 0
    assert "--set takes name=value" in result.stderr

    result = run_cli(*base, "--kind", "asset_registered", "--set", "no_such_field=1")
    assert result.returncode != 0
    assert "bad event description" in result.stderr

    result = run_cli(*base, "--kind", "no_such_kind", "--set", "asset_id=x")
    assert result.returncode != 0
    assert "unknown event kind" in result.stderr

    result = run_cli(*base, "--set", "asset_id=x")
    assert result.returncode != 0
    assert "--kind" in result.stderr

    # A rule the node enforces: auditors only read.
    result = run_cli(
        "submit", *consortium.node_args, "--identity", consortium.identity("auditor"),
        "--kind", "asset_registered",
        "--set", "asset_id=cli/by-auditor",
        "--set", f"content_digest={digest_base64('auditor')}",
        "--set", "classification=CLASSIFICATION_GENERAL",
        "--wait",
    )  # fmt: skip
    assert result.returncode != 0
    assert "PERMISSION_DENIED" in result.stderr and "wrong_role" in result.stderr


def test_reads_need_a_token_and_tls_under_the_consortium_ca(
    consortium: CliConsortium, tmp_path: Path
) -> None:
    """The client API is TLS under the consortium CA, and reads need a member's token: the CLI
    reads with `--token` or a token it signs with `--identity`, as that member."""
    receipt = cli_json(
        "submit", *consortium.node_args, "--identity", consortium.identity("agency-a"),
        "--kind", "asset_registered",
        "--set", "asset_id=cli/agency-a-only",
        "--set", f"content_digest={digest_base64('agency a only')}",
        "--set", "classification=CLASSIFICATION_GENERAL",
        "--wait",
    )  # fmt: skip
    event_id = base64.b64decode(receipt["eventId"]).hex()

    anonymous = run_cli("event", "get", event_id, *consortium.node_args)
    assert anonymous.returncode == 1 and anonymous.stdout == ""
    assert "UNAUTHENTICATED: missing_token" in anonymous.stderr

    # agency-b reads with a token it issued itself, passed as --token: not its event.
    token = cli_json(
        "token", "issue", "--identity", consortium.identity("agency-b"), "--role", "member"
    )["token"]
    other = run_cli("event", "get", event_id, *consortium.node_args, "--token", token)
    assert other.returncode == 1 and "PERMISSION_DENIED: forbidden" in other.stderr
    own = cli_json(
        "event",
        "get",
        event_id,
        *consortium.node_args,
        "--identity",
        consortium.identity("agency-a"),
    )
    assert own["event_id"] == event_id

    # Plaintext to a TLS port, and TLS trusting another CA, never reach the service.
    plaintext = run_cli("event", "get", event_id, *consortium.read_args, "--plaintext")
    assert plaintext.returncode == 1 and "UNAVAILABLE" in plaintext.stderr
    stranger = cli_json("consortium", "init", "--nodes", "1", "--dir", str(tmp_path / "other"))
    wrong_ca = run_cli(
        "event", "get", event_id, "--node", consortium.address,
        "--ca-cert", stranger["ca_certificate"], "--identity", consortium.identity("auditor"),
    )  # fmt: skip
    assert wrong_ca.returncode == 1 and "UNAVAILABLE" in wrong_ca.stderr
    assert "Traceback" not in plaintext.stderr + wrong_ca.stderr


def test_unreachable_node_and_missing_config_fail(tmp_path: Path) -> None:
    result = run_cli("event", "get", "00" * 32, "--node", f"127.0.0.1:{free_port()}")
    assert result.returncode != 0
    assert "UNAVAILABLE" in result.stderr

    result = run_cli("node", "run", "--config", str(tmp_path / "missing.toml"))
    assert result.returncode != 0
    assert "no config file" in result.stderr

    missing = tmp_path / "missing-identity.json"
    for command in (
        ["submit", "--identity", str(missing), "--kind", "asset_registered"],
        ["token", "issue", "--identity", str(missing), "--role", "member"],
    ):
        result = run_cli(*command)
        assert result.returncode == 1, command
        assert result.stderr.startswith(f"provledger: cannot use identity {missing}: ")
        assert "Traceback" not in result.stderr


def test_demo_runs_its_story() -> None:
    result = run_cli("demo", timeout=DEMO_TIMEOUT_S)
    assert result.returncode == 0, f"{result.stderr}\n{result.stdout}"
    # two proofs, the trade's evidence and the case file
    assert result.stdout.count("VERIFIED") == 4, result.stdout
    assert "rejected as expected" in result.stdout
    # the dispute: a refund and a delisting take effect, a new order on the offer is refused,
    # a second regulator decides the appeal, and the case file verifies with its timeline
    assert "order/1 is now ORDER_STATUS_REFUNDED" in result.stdout, result.stdout
    assert "offer/mobility-health is OFFER_STATUS_DELISTED" in result.stdout
    assert "a new order on it is rejected as expected: FAILED_PRECONDITION: offer_delisted" in (
        result.stdout
    )
    assert "case/2026-001 is CASE_STATUS_APPEAL_DECIDED" in result.stdout
    assert "VERIFIED case evidence for case_id case/2026-001" in result.stdout
    assert "appeal decided by market-regulator" in result.stdout

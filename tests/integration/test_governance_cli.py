"""Changing a running four-node consortium with the `provledger` command alone (ADR 016).

    provledger keys new --out agency-c.json --member-id agency-c --chain-id C --role agency
    provledger keys public --key agency-c.json                     (its public part only)
    provledger governance propose add-member --member-id agency-c --role agency \\
        --public-key <hex> --identity agency-a.json --node N --ca-cert CA
    provledger governance approve <proposal id> --identity agency-b.json ...   (until applied)
    provledger governance status [<proposal id>] --identity ... --node N --ca-cert CA
    provledger submit --identity agency-c.json ...                 (the new member writes)
    provledger governance propose rotate-key / revoke-key ...      (and their approvals)

Commands go to different nodes; `status` is read after every step. The new organisation's
key file never leaves its folder: only the public key printed by `keys public` is passed on.
After the revocation, an event signed with the revoked key is refused with `key_revoked`, and
one signed with the rotated-in key is committed.

Evidence of what the new member wrote (`provledger evidence export --event ... --rest`, then
`provledger verify --genesis` in a separate process, against the ORIGINAL genesis file): its
first event's bundle carries the proposal and approvals that admitted it and verifies. Once
its first key is revoked from height 0, the node exports no bundle of that event any more
(`key_revoked`: the event proves nothing of its author); the bundle exported before still
verifies, since it does not hold the revocation (a bundle proves presence, not absence). The
rotated-in key's event's bundle carries the rotation and the revocation, each decided by
proposal, and verifies.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from support.processes import init_consortium, member_token, provledger_command, running_nodes

pytestmark = pytest.mark.integration

CLI_TIMEOUT_S = 60
CHAIN_ID = "provledger-test"


class Cli:
    def __init__(self, layout) -> None:
        self.layout = layout

    def export(self, event_id: str, out: Path, index: int) -> subprocess.CompletedProcess:
        """The event's evidence bundle from node `index`'s REST API, checked by the exporter
        against the genesis file, written to `out`."""
        return self.run(
            "evidence", "export", "--event", event_id,
            "--rest", f"http://{self.layout.rest_addresses[index]}",
            "--token", member_token(self.layout, "auditor"),
            "--genesis", str(self.layout.genesis_path), "--out", str(out),
        )  # fmt: skip

    def verify(self, bundle: Path) -> dict:
        """`provledger verify --genesis` against the original genesis file, no network."""
        return self.json("verify", str(bundle), "--genesis", str(self.layout.genesis_path))

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*provledger_command(), *args], capture_output=True, text=True, timeout=CLI_TIMEOUT_S
        )

    def json(self, *args: str) -> dict:
        result = self.run(*args, "--json")
        assert result.returncode == 0, f"{args}: exit {result.returncode}\n{result.stderr}"
        return json.loads(result.stdout)

    def node(self, index: int, identity: str | Path) -> tuple[str, ...]:
        path = self.layout.identities.get(str(identity), identity)
        return (
            "--node", self.layout.grpc_addresses[index],
            "--ca-cert", str(self.layout.ca_certificate),
            "--identity", str(path),
        )  # fmt: skip

    def status(self, proposal_id: str, index: int = 0) -> dict:
        return self.json("governance", "status", proposal_id, *self.node(index, "auditor"))

    def approve_until_applied(self, proposal_id: str, approvers: list[str]) -> list[dict]:
        """Each approver approves (on nodes in turn) until the change applies; each step's
        answer, which the status read from another node must agree with."""
        steps = []
        for turn, member_id in enumerate(approvers):
            answer = self.json(
                "governance", "approve", proposal_id, *self.node(turn % 4, member_id)
            )
            steps.append(answer)
            seen = self.status(proposal_id, (turn + 1) % 4)
            assert seen["approvals"] == answer["approvals"]
            if answer["status"] == "applied":
                assert seen["status"] == "applied"
                return steps
            assert seen["status"] == "open"
        raise AssertionError(f"proposal {proposal_id} not applied after {approvers}")

    def register(self, identity: Path, asset_id: str, index: int) -> subprocess.CompletedProcess:
        digest = base64.b64encode(hashlib.sha256(asset_id.encode()).digest()).decode()
        return self.run(
            "submit", *self.node(index, identity)[:4], "--identity", str(identity),
            "--kind", "asset_registered",
            "--set", f"asset_id={asset_id}",
            "--set", f"content_digest={digest}",
            "--set", "classification=CLASSIFICATION_GENERAL",
            "--wait", "--json",
        )  # fmt: skip


def test_a_member_is_admitted_rotated_and_revoked_with_the_cli(tmp_path: Path) -> None:
    layout = init_consortium(tmp_path, nodes=4, chain_id=CHAIN_ID)
    cli = Cli(layout)
    organisation = tmp_path / "agency-c"  # the new organisation's own folder
    organisation.mkdir()
    key_file = organisation / "agency-c.json"
    with running_nodes(layout, tmp_path):
        made = cli.json(
            "keys", "new", "--out", str(key_file), "--member-id", "agency-c",
            "--chain-id", CHAIN_ID, "--role", "agency",
        )  # fmt: skip
        public = cli.json("keys", "public", "--key", str(key_file))
        assert public == {"public_key": made["public_key"], "key_id": made["key_id"]}

        # nothing open yet
        assert cli.json("governance", "status", *cli.node(1, "agency-b")) == {"proposals": []}
        proposed = cli.json(
            "governance", "propose", "add-member", "--member-id", "agency-c",
            "--name", "Agency C", "--role", "agency", "--public-key", public["public_key"],
            *cli.node(0, "agency-a"),
        )  # fmt: skip
        proposal_id = proposed["proposal_id"]
        assert (proposed["status"], proposed["kind"], proposed["subject"]) == (
            "open",
            "member_added",
            "member:agency-c",
        )
        assert (proposed["approvals_counted"], proposed["approvals_needed"]) == (1, 4)
        assert proposed["threshold"] == "2/3"
        listed = cli.json("governance", "status", *cli.node(2, "exchange"))
        assert [p["proposal_id"] for p in listed["proposals"]] == [proposal_id]

        # approving twice is refused with its own code, and changes nothing
        twice = cli.run("governance", "approve", proposal_id, *cli.node(3, "agency-a"))
        assert twice.returncode == 1
        assert "already_approved" in twice.stderr

        steps = cli.approve_until_applied(proposal_id, ["agency-b", "exchange", "regulator"])
        assert [s["approvals_counted"] for s in steps] == [2, 3, 4]
        assert steps[-1]["applied_height"] == steps[-1]["height"]
        assert cli.json("governance", "status", *cli.node(1, "agency-b")) == {"proposals": []}
        everything = cli.json("governance", "status", "--all", *cli.node(1, "agency-b"))
        assert [p["status"] for p in everything["proposals"]] == ["applied"]
        late = cli.run("governance", "approve", proposal_id, *cli.node(0, "auditor"))
        assert (late.returncode, "proposal_applied" in late.stderr) == (1, True), late.stderr

        # the new member writes, with the key it made itself
        written = cli.register(key_file, "agency-c/first", 3)
        assert written.returncode == 0, written.stderr
        first_id = base64.b64decode(json.loads(written.stdout)["eventId"]).hex()

        # its evidence: the proposal and the approvals that admitted it, from the genesis alone
        first_bundle = tmp_path / "agency-c-first.evidence.json"
        exported = cli.export(first_id, first_bundle, 2)
        assert exported.returncode == 0, exported.stderr
        proven = cli.verify(first_bundle)
        assert proven["format"] == "provledger-evidence/3"
        assert proven["claims"]["author"] == "agency-c"
        assert [(g["event"], g["change"], g["applies"]) for g in proven["governance"]] == [
            ("governance_proposed", "member_added", False),
            ("governance_approved", "member_added", False),
            ("governance_approved", "member_added", False),
            ("governance_approved", "member_added", True),
        ]
        assert {g["proposal_id"] for g in proven["governance"]} == {proposal_id}

        # a second key for agency-c, then its first key revoked as compromised
        second_key = organisation / "agency-c-2.json"
        cli.json(
            "keys", "new", "--out", str(second_key), "--member-id", "agency-c",
            "--chain-id", CHAIN_ID, "--role", "agency",
        )  # fmt: skip
        rotation = cli.json(
            "governance", "propose", "rotate-key", "--member-id", "agency-c",
            "--new-public-key", str(second_key), *cli.node(1, "agency-a"),
        )  # fmt: skip
        assert (rotation["approvals_counted"], rotation["approvals_needed"]) == (1, 5)
        cli.approve_until_applied(
            rotation["proposal_id"], ["agency-b", "exchange", "regulator", "auditor"]
        )
        revocation = cli.json(
            "governance", "propose", "revoke-key", "--member-id", "agency-c",
            "--key-id", made["key_id"], "--from-height", "0", "--reason", "laptop stolen",
            *cli.node(2, "regulator"),
        )  # fmt: skip
        cli.approve_until_applied(
            revocation["proposal_id"], ["agency-a", "agency-b", "exchange", "auditor"]
        )

        refused = cli.register(key_file, "agency-c/after-revocation", 0)
        assert refused.returncode == 1
        assert "PERMISSION_DENIED: key_revoked" in refused.stderr, refused.stderr
        accepted = cli.register(second_key, "agency-c/with-the-new-key", 1)
        assert accepted.returncode == 0, accepted.stderr

        # The first key is revoked from height 0: the node exports no bundle of its event, which
        # proves nothing of agency-c any more; the new key's event's bundle carries the
        # rotation and the revocation, each decided by proposal, and verifies.
        refused = cli.export(first_id, tmp_path / "refused.evidence.json", 1)
        assert refused.returncode == 1 and "key_revoked" in refused.stderr, refused.stderr
        assert cli.verify(first_bundle)["claims"]["author"] == "agency-c"
        later_id = base64.b64decode(json.loads(accepted.stdout)["eventId"]).hex()
        later_bundle = tmp_path / "agency-c-later.evidence.json"
        exported = cli.export(later_id, later_bundle, 3)
        assert exported.returncode == 0, exported.stderr
        proven = cli.verify(later_bundle)
        applied = [g["change"] for g in proven["governance"] if g["applies"]]
        assert applied == ["member_added", "key_rotated", "key_revoked"]
        [author] = proven["authors"]
        assert author["revoked_after_height"] == [0, None]

"""A consortium of separate organisations over its life (issue 9), with the `provledger`
command alone, each organisation in a folder of its own and no private file ever copied out
of it (ADR 015, ADR 016, ADR 013).

1. Four organisations found the consortium through the ceremony (`org init`, `genesis draft`,
   `genesis sign`, `genesis seal`, `org node-config`) and run their nodes.
2. A fifth, water-authority, makes its own keys and CA (`org init`); it is admitted as a
   member by quorum (`governance propose add-member`, `approve`), and its validator added
   (`governance draft add-validator --tls-ca`, its public CA root; each approving
   organisation `sign`s the change in its own folder; `submit` with the approvals: a
   validator-set change is one governance action, never a proposal). Its node (`org node-config
   --joining`) starts once the addition is committed, syncs, and its precommit is in the
   commit certificates after the activation height (GetBlock, read with an auditor's token).
   The four learn its peer address in their configs and are restarted one at a time.
3. transport-dept's validator is removed (`draft remove-validator`, `sign`, `submit`) and its
   node stopped.
4. data-exchange's member key is rotated (`propose rotate-key`, the old one retired); it signs
   with the new key.
5. transport-dept's key is revoked as compromised (`propose revoke-key --from-height H`): its
   later events are refused (`key_revoked`).

After each step an event is submitted and committed (the chain keeps committing), and its
evidence bundle (`evidence export --rest`, read with data-bureau's auditor token) verifies
with `provledger verify --genesis` against the original sealed genesis alone; bundles of
events from before the changes are exported again at the end and verify too. Clients speak
TLS to a node trusting its organisation's CA, or every founding organisation's
(`genesis ca-bundle`). At the end no private file of any organisation is outside its folder.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from support.ceremony import (
    add_peer_to_config,
    assert_no_private_file_outside,
    cli_json,
    courier,
    found_consortium,
    init_organisation,
    run_cli,
)
from support.processes import (
    ClientAccess,
    NodeCluster,
    NodeProcess,
    client_channel,
    free_ports,
    note_access,
    provledger_command,
    wait_until,
)

from provledger.protocol.limits import VALIDATOR_CHANGE_DELAY_BLOCKS
from provledger.v1 import api_pb2, api_pb2_grpc

pytestmark = pytest.mark.integration

CHAIN_ID = "consortium-of-organisations"
FOUNDERS = (
    ("health-commission", "agency", "node-a"),
    ("transport-dept", "agency", "node-b"),
    ("data-exchange", "exchange", "node-c"),
    ("data-bureau", "regulator", "node-d"),
)
NEWCOMER, NEWCOMER_NODE = "water-authority", "node-e"
NODE_IDS = {org: node_id for org, _, node_id in FOUNDERS} | {NEWCOMER: NEWCOMER_NODE}
AUDITOR = "data-bureau"  # a regulator: its tokens read everything; its node serves REST
COMMIT_TIMEOUT_S = 60.0
RPC_TIMEOUT_S = 5.0


class Consortium:
    """The organisations, each acting with the files of its own folder (and public files it
    was sent), and the nodes they run."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.founded = found_consortium(root, CHAIN_ID, FOUNDERS, rest=[AUDITOR])
        self.folders = dict(self.founded.organisations)
        self.folders[NEWCOMER] = root / "organisations" / NEWCOMER
        self.addresses = {org: self.founded.grpc_address(org) for org, _, _ in FOUNDERS}
        self.nodes: dict[str, NodeProcess] = {}
        self.bundles: dict[str, Path] = {}
        self.token = cli_json(
            "token", "issue", "--identity", str(self.identity(AUDITOR)), "--role", "auditor"
        )["token"]
        for org, _, _ in FOUNDERS:  # each trusts every founding organisation's CA too
            self.write_ca_bundle(org)

    def identity(self, org: str, name: str = "identity.json") -> Path:
        return self.folders[org] / name

    def write_ca_bundle(self, org: str) -> None:
        bundle = run_cli(
            "genesis", "ca-bundle", "--genesis", str(self.folders[org] / "genesis.json")
        )
        assert bundle.returncode == 0, bundle.stderr
        (self.folders[org] / "trusted").mkdir(exist_ok=True)
        (self.folders[org] / "trusted" / "ca-bundle.pem").write_text(bundle.stdout)

    def node_process(self, org: str) -> NodeProcess:
        """`org`'s node; the test's health checks and reads trust its organisation's CA and
        carry the auditor's token."""
        folder, address = self.folders[org], self.addresses[org]
        config = folder / "node" / "config.toml"
        note_access([address], ClientAccess((folder / "ca" / "ca.pem").read_bytes(), self.token))
        node = NodeProcess(
            config=config,
            address=address,
            log_path=self.root / "logs" / f"{org}.log",
            name=NODE_IDS[org],
            command=[*provledger_command(), "node", "run", "--config", str(config)],
        )
        self.nodes[org] = node
        return node

    def connect(self, org: str, via: str | None = None, key: str = "identity.json") -> list[str]:
        """`org` reaches `via`'s node (its own by default, trusting its own CA; another's,
        trusting every founding organisation's CA) and signs with its key file `key`."""
        via = via or org
        ca = (
            self.folders[org] / "ca" / "ca.pem"
            if via == org
            else self.folders[org] / "trusted" / "ca-bundle.pem"
        )
        return [
            "--node", self.addresses[via], "--ca-cert", str(ca),
            "--identity", str(self.identity(org, key)),
        ]  # fmt: skip

    # --- events and evidence --------------------------------------------------------------

    def register(
        self, org: str, asset: str, via: str | None = None, key: str = "identity.json"
    ) -> subprocess.CompletedProcess[str]:
        digest = base64.b64encode(hashlib.sha256(asset.encode()).digest()).decode()
        return run_cli(
            "submit", *self.connect(org, via, key), "--kind", "asset_registered",
            "--set", f"asset_id={org}/{asset}", "--set", f"content_digest={digest}",
            "--set", "classification=CLASSIFICATION_GENERAL", "--wait", "--json",
        )  # fmt: skip

    def committed(
        self, org: str, asset: str, via: str | None = None, key: str = "identity.json"
    ) -> tuple[str, int]:
        """Submit an event as `org` and wait for its commit: its id (hex) and height."""
        result = self.register(org, asset, via, key)
        assert result.returncode == 0, f"{org}/{asset}: {result.stderr}"
        receipt = json.loads(result.stdout)
        return base64.b64decode(receipt["eventId"]).hex(), int(receipt["height"])

    def export(self, event_id: str, name: str) -> subprocess.CompletedProcess[str]:
        """data-bureau exports the event's evidence bundle from its node's REST API."""
        out = self.folders[AUDITOR] / "evidence" / f"{name}.json"
        out.parent.mkdir(exist_ok=True)
        return run_cli(
            "evidence", "export", "--event", event_id,
            "--rest", f"http://127.0.0.1:{self.founded.rest_ports[AUDITOR]}",
            "--token", self.token, "--out", str(out),
        )  # fmt: skip

    def evidence(self, event_id: str, name: str) -> dict:
        """The event's bundle, exported, then verified offline against data-bureau's copy of
        the original sealed genesis alone; what `provledger verify` proved."""
        exported = self.export(event_id, name)
        assert exported.returncode == 0, f"{name}: {exported.stderr}"
        self.bundles[name] = self.folders[AUDITOR] / "evidence" / f"{name}.json"
        return self.verify(name)

    def verify(self, name: str) -> dict:
        proven = cli_json(
            "verify", str(self.bundles[name]),
            "--genesis", str(self.folders[AUDITOR] / "genesis.json"),
        )  # fmt: skip
        assert proven["verified"] is True, proven
        return proven

    # --- governance -----------------------------------------------------------------------

    def propose(self, org: str, kind: str, *args: str, key: str = "identity.json") -> dict:
        return cli_json("governance", "propose", kind, *args, *self.connect(org, key=key))

    def change_validators(
        self, submitter: str, kind: str, *args: str, approvers: tuple[str, ...]
    ) -> dict:
        """A validator-set change as one governance action: `submitter` drafts it in its
        folder; the change file travels to each approver, which signs it in its own folder
        with its own identity; the approval files travel back; `submitter` submits the change
        with them through its node. What `governance submit` printed."""
        home = self.folders[submitter]
        change = home / "governance" / f"{kind}.change.json"
        change.parent.mkdir(exist_ok=True)
        drafted = cli_json(
            "governance", "draft", kind, *args,
            "--identity", str(self.identity(submitter)), "--out", str(change),
        )  # fmt: skip
        approvals = []
        for org in approvers:
            folder = self.folders[org]
            received = (
                change if org == submitter else courier(change, folder / "received" / change.name)
            )
            approval = folder / "governance" / f"{kind}.approval.{org}.json"
            approval.parent.mkdir(exist_ok=True)
            signed = cli_json(
                "governance", "sign", str(received),
                "--identity", str(self.identity(org)), "--out", str(approval),
            )  # fmt: skip
            assert signed["summary"] == drafted["summary"], signed
            if org != submitter:
                approval = courier(approval, home / "received" / approval.name)
            approvals += ["--approval", str(approval)]
        submitted = cli_json(
            "governance", "submit", str(change), *approvals, *self.connect(submitter)
        )
        assert submitted["proposal_id"] == drafted["proposal_id"], submitted
        assert submitted["approvers"] == list(approvers), submitted
        return submitted

    def approve_until_applied(self, proposal: dict, approvers: list[tuple[str, str]]) -> dict:
        """Each (organisation, key file) approves through its own node until the change
        applies; the last answer."""
        answer = proposal
        for org, key in approvers:
            assert answer["status"] == "open", answer
            answer = cli_json(
                "governance", "approve", proposal["proposal_id"], *self.connect(org, key=key)
            )
        assert answer["status"] == "applied", answer
        return answer

    # --- reads ----------------------------------------------------------------------------

    def commit_signers(self, org: str, height: int) -> set[str]:
        """The validators whose precommits block `height` carries for block `height - 1`, as
        `org`'s node answers GetBlock read with the auditor's token."""
        with client_channel(self.addresses[org]) as channel:
            stub = api_pb2_grpc.LedgerServiceStub(channel)
            answer = stub.GetBlock(api_pb2.GetBlockRequest(height=height), timeout=RPC_TIMEOUT_S)
        assert answer.block.last_commit.height == height - 1
        return {signature.validator_id for signature in answer.block.last_commit.signatures}


def test_organisations_found_change_and_audit_a_consortium(tmp_path: Path) -> None:
    consortium = Consortium(tmp_path)
    folders = consortium.folders
    genesis = consortium.founded.genesis
    assert (folders[AUDITOR] / "genesis.json").read_bytes() == genesis.read_bytes()
    founders = [consortium.node_process(org) for org, _, _ in FOUNDERS]
    with contextlib.ExitStack() as stack:
        cluster = stack.enter_context(NodeCluster(founders))

        # 1. The founded consortium commits; the evidence of its first event verifies.
        founded_event, _ = consortium.committed("health-commission", "founded")
        proven = consortium.evidence(founded_event, "1-founded")
        assert proven["claims"]["author"] == "health-commission"
        assert proven["governance"] == []

        # 2a. water-authority makes its keys and CA at home; only public.json and its CA root
        # (public) travel, to health-commission, which proposes its admission.
        newcomer = folders[NEWCOMER]
        grpc_port, peer_port = free_ports(2)
        init_organisation(newcomer, NEWCOMER, "agency", NEWCOMER_NODE, CHAIN_ID, peer_port)
        proposer = folders["health-commission"] / "received"
        public = json.loads(
            courier(newcomer / "public.json", proposer / f"{NEWCOMER}.public.json").read_text()
        )
        ca_root = courier(newcomer / "ca" / "ca.pem", proposer / f"{NEWCOMER}-ca.pem")
        admission = consortium.propose(
            "health-commission", "add-member", "--member-id", NEWCOMER,
            "--name", "Water Authority", "--role", "agency",
            "--public-key", public["member"]["public_keys"][0],
        )  # fmt: skip
        assert (admission["approvals_counted"], admission["approvals_needed"]) == (1, 3)
        consortium.approve_until_applied(
            admission, [("transport-dept", "identity.json"), ("data-exchange", "identity.json")]
        )
        # It writes through health-commission's node, trusting the founders' CAs (from the
        # genesis it was sent): its evidence carries its admission.
        for name in ("genesis.json", "peers.json"):
            courier(consortium.founded.coordinator / name, newcomer / "received" / name)
        consortium.addresses[NEWCOMER] = f"127.0.0.1:{grpc_port}"
        bundle = run_cli(
            "genesis", "ca-bundle", "--genesis", str(newcomer / "received" / "genesis.json")
        )
        assert bundle.returncode == 0, bundle.stderr
        (newcomer / "trusted").mkdir()
        (newcomer / "trusted" / "ca-bundle.pem").write_text(bundle.stdout)
        admitted_event, _ = consortium.committed(NEWCOMER, "admitted", via="health-commission")
        proven = consortium.evidence(admitted_event, "2-admitted")
        assert proven["claims"]["author"] == NEWCOMER
        assert [g["change"] for g in proven["governance"] if g["applies"]] == ["member_added"]

        # 2b. Its validator is added, with its CA root; five members now, four approvals,
        # collected off-ledger: proposed on the ledger, the change is refused.
        addition = (
            "add-validator", "--validator-id", NEWCOMER_NODE,
            "--public-key", public["validator"]["public_key"], "--tls-ca", str(ca_root),
        )  # fmt: skip
        proposed = run_cli(
            "governance", "propose", *addition, *consortium.connect("health-commission")
        )
        assert proposed.returncode == 1
        assert "governance draft" in proposed.stderr, proposed.stderr
        added = consortium.change_validators(
            "health-commission", *addition,
            approvers=("health-commission", "transport-dept", "data-exchange", "data-bureau"),
        )  # fmt: skip
        activation = added["height"] + VALIDATOR_CHANGE_DELAY_BLOCKS

        # 2c. Its node, configured for a validator the genesis does not name, starts now that
        # the addition is committed, and syncs.
        cli_json(
            "org", "node-config", "--dir", str(newcomer), "--joining",
            "--genesis", str(newcomer / "received" / "genesis.json"),
            "--peers", str(newcomer / "received" / "peers.json"),
            "--listen", consortium.addresses[NEWCOMER],
            "--peer-listen", f"127.0.0.1:{peer_port}",
        )  # fmt: skip
        fifth = stack.enter_context(consortium.node_process(NEWCOMER))
        wait_until(
            lambda: fifth.height() >= activation,
            COMMIT_TIMEOUT_S,
            lambda: f"{NEWCOMER_NODE} height {fifth.height()} < {activation}\n{fifth.log_tail()}",
        )

        # 2d. The four learn its peer address (configuration, not on the ledger) and are
        # restarted one at a time; the chain commits through each after its restart.
        for (org, _, _), node in zip(FOUNDERS, founders, strict=True):
            add_peer_to_config(node.config, NEWCOMER_NODE, public["peer_address"])
            node.restart()
            consortium.committed("health-commission", f"after-restart-of-{node.name}", via=org)

        # 2e. node-e signs commit certificates after the activation height.
        def signed_by_newcomer() -> int | None:
            _, height = consortium.committed(NEWCOMER, f"signed-{fifth.height()}")
            for candidate in range(max(activation + 1, height - 3), height + 1):
                if NEWCOMER_NODE in consortium.commit_signers(NEWCOMER, candidate):
                    return candidate
            return None

        signed_at = wait_until(signed_by_newcomer, COMMIT_TIMEOUT_S, fifth.log_tail)
        assert signed_at > activation
        validator_event, _ = consortium.committed(NEWCOMER, "validator")
        consortium.evidence(validator_event, "3-validator-added")

        # 3. transport-dept's validator is removed; once the removal is active its node stops
        # and the four left commit on (transport-dept writes through another's node).
        removed = consortium.change_validators(
            "data-exchange", "remove-validator", "--validator-id", NODE_IDS["transport-dept"],
            approvers=("data-exchange", "health-commission", "data-bureau", NEWCOMER),
        )  # fmt: skip
        remaining = [node for node in cluster if node.name != NODE_IDS["transport-dept"]]
        cluster.wait_for_heights(
            removed["height"] + VALIDATOR_CHANGE_DELAY_BLOCKS, [*remaining, fifth]
        )
        consortium.nodes["transport-dept"].stop()
        before_revocation, trusted_height = consortium.committed(
            "transport-dept", "after-removal", via="health-commission"
        )
        proven = consortium.evidence(before_revocation, "4-validator-removed")
        assert proven["claims"]["author"] == "transport-dept"

        # 4. data-exchange rotates its member key (the old one retired) and signs with the new.
        exchange = folders["data-exchange"]
        new_key = cli_json(
            "keys", "new", "--out", str(exchange / "identity-2.json"),
            "--member-id", "data-exchange", "--chain-id", CHAIN_ID, "--role", "exchange",
        )  # fmt: skip
        old_key = cli_json("keys", "public", "--key", str(exchange / "identity.json"))
        rotation = consortium.propose(
            "data-exchange", "rotate-key", "--member-id", "data-exchange",
            "--new-public-key", new_key["public_key"], "--retire-key-id", old_key["key_id"],
        )  # fmt: skip
        consortium.approve_until_applied(
            rotation,
            [(org, "identity.json") for org in ("health-commission", "data-bureau", NEWCOMER)],
        )
        refused = consortium.register("data-exchange", "with-the-retired-key")
        assert refused.returncode == 1, refused.stdout
        rotated_event, _ = consortium.committed("data-exchange", "rotated", key="identity-2.json")
        proven = consortium.evidence(rotated_event, "5-key-rotated")
        assert proven["claims"]["author"] == "data-exchange"
        assert "key_rotated" in [g["change"] for g in proven["governance"] if g["applies"]]

        # 5. transport-dept's key is revoked as compromised from the height of its last event
        # on: what it signs after is refused; its event before still has evidence.
        transport_key = cli_json(
            "keys", "public", "--key", str(folders["transport-dept"] / "identity.json")
        )
        revocation = consortium.propose(
            "data-bureau", "revoke-key", "--member-id", "transport-dept",
            "--key-id", transport_key["key_id"], "--from-height", str(trusted_height),
            "--reason", "laptop stolen",
        )  # fmt: skip
        consortium.approve_until_applied(
            revocation,
            [("health-commission", "identity.json"), ("data-exchange", "identity-2.json"),
             (NEWCOMER, "identity.json")],
        )  # fmt: skip
        refused = consortium.register("transport-dept", "after-revocation", via="health-commission")
        assert refused.returncode == 1
        assert "key_revoked" in refused.stderr, refused.stderr
        revoked_event, _ = consortium.committed("health-commission", "revoked")
        proven = consortium.evidence(revoked_event, "6-key-revoked")
        applied = [g["change"] for g in proven["governance"] if g["applies"]]
        assert applied == [], applied  # health-commission's own key never changed
        proven = consortium.evidence(before_revocation, "4-validator-removed-again")
        assert proven["claims"]["author"] == "transport-dept"

        # Bundles of events from before every change still export and verify after them all,
        # as does every bundle exported before.
        for event_id, name in ((founded_event, "1-founded"), (admitted_event, "2-admitted")):
            consortium.evidence(event_id, f"{name}-again")
        for name in list(consortium.bundles):
            consortium.verify(name)
        assert all(node.running for node in (*remaining, fifth))

    # No private file, nor its secret, of any organisation is outside its folder.
    assert_no_private_file_outside(tmp_path, folders, extra={"data-exchange": ["identity-2.json"]})

"""Validator-set changes on real node processes: a validator added by governance, another
removed, the chain committing throughout, and a verifier that trusts only the genesis.

The story (one consortium, one test, in order):
1. `consortium init` makes four validators; they commit events.
2. A fifth node, `node-4`, is made as an operator would: its own validator key, a certificate
   for `node-4` issued by the consortium CA (the folder's ca/), its own data folder and
   config listing the four as peers. The four learn its peer address from their configs
   (peer addresses are not on the ledger) and are restarted one at a time. It starts as an
   observer: it follows the chain without voting.
3. A governance event approved by more than two thirds of the members adds node-4. From the
   activation height (H + 2) its precommits are in commit certificates, it answers clients,
   and the chain goes on.
4. Another governance event removes node-1, which is then stopped; the four that remain
   commit on (a quorum of four is three).
5. The receipt of an event committed after both changes verifies with the genesis alone
   (it carries the walk), and `provledger proof inclusion` for it prints VERIFIED:
   the node's answer carries the walk of the validator sets from the genesis; `provledger
   proof consistency` from before the first change to after the last verifies too.
6. `provledger node check` walks the removed node's ledger whole, and a validator restarted
   after both changes opens its ledger (the open check) and commits on.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import grpc
import pytest
from support.ceremony import add_peer_to_config
from support.processes import (
    NodeCluster,
    NodeProcess,
    client_access,
    client_channel,
    free_base_port,
    init_consortium,
    note_access,
    provledger_command,
    wait_until,
)

from provledger.cli.client import EventSigner, Identity
from provledger.cli.consortium import PEER_PORT_OFFSET, ConsortiumLayout
from provledger.node import config as node_config
from provledger.node.keyfile import new_signing_key, save_key
from provledger.node.tls import issue_node_certificate, save_tls_material
from provledger.protocol import crypto
from provledger.protocol.blocks import decode_header
from provledger.protocol.genesis import parse_genesis
from provledger.protocol.limits import VALIDATOR_CHANGE_DELAY_BLOCKS
from provledger.protocol.proofs import verify_inclusion_answer
from provledger.protocol.rules import governance_sign_bytes
from provledger.v1 import api_pb2, api_pb2_grpc, ledger_pb2

pytestmark = pytest.mark.integration

NODES = 4
NEW_NODE = "node-4"
REMOVED_NODE = "node-1"
APPROVERS = ("agency-a", "agency-b", "exchange", "regulator")  # 4 of 5 members: > 2/3
RPC_TIMEOUT_S = 30.0
COMMIT_TIMEOUT_S = 90.0
CLI_TIMEOUT_S = 60.0


# --- the consortium and the fifth node -----------------------------------------------------


def make_fifth_node(layout: ConsortiumLayout, base_port: int, log_dir: Path) -> NodeProcess:
    """node-4 made by an operator of the consortium: its own validator key, a certificate for
    `node-4` from the consortium CA, a config with the four as peers, on the ports `consortium
    init --nodes 5` would have given it."""
    directory = layout.directory / NEW_NODE
    directory.mkdir(mode=0o700)
    save_key(directory / "validator-key.json", new_signing_key(), validator_id=NEW_NODE)
    ca_certificate = (layout.directory / "ca" / "ca.pem").read_bytes()
    ca_key = (layout.directory / "ca" / "ca-key.pem").read_bytes()
    certificate, key = issue_node_certificate(ca_certificate, ca_key, NEW_NODE)
    save_tls_material(directory / "tls", ca_certificate, certificate, key)
    address = f"127.0.0.1:{base_port + NODES}"
    peer_address = f"127.0.0.1:{base_port + PEER_PORT_OFFSET + NODES}"
    peers = {
        f"node-{index}": f"127.0.0.1:{base_port + PEER_PORT_OFFSET + index}"
        for index in range(NODES)
    }
    config = directory / "config.toml"
    config.write_text(
        node_config.render(
            NEW_NODE,
            "../genesis.json",
            "validator-key.json",
            address,
            peer_listen=peer_address,
            peers=peers,
        )
    )
    # Clients reach it as they reach the four: the consortium CA, the auditor's token.
    note_access([address], client_access(layout.grpc_addresses[0]))
    return NodeProcess(
        config, address, log_dir / f"{NEW_NODE}.log", name=NEW_NODE, peer_address=peer_address
    )


class Governance:
    """Governance events changing the validators, each approved by APPROVERS."""

    def __init__(self, layout: ConsortiumLayout) -> None:
        self.identities = {m: Identity.load(layout.identities[m]) for m in APPROVERS}
        self.signer = EventSigner(self.identities["agency-a"])
        self.proposals = itertools.count(time.time_ns())

    def event(self, **change: object) -> ledger_pb2.SignedEvent:
        governance_change = ledger_pb2.GovernanceChange(
            proposal_nonce=next(self.proposals),
            **change,  # type: ignore[arg-type]
        )
        change_bytes = governance_change.SerializeToString(deterministic=True)
        message = governance_sign_bytes(self.signer.identity.chain_id, change_bytes)
        approvals = [
            ledger_pb2.Approval(
                approver=ledger_pb2.Author(member_id=member, key_id=identity.key.key_id),
                signature=identity.key.sign(crypto.DOMAIN_GOVERNANCE, message),
            )
            for member, identity in self.identities.items()
        ]
        return self.signer.event("governance", change=change_bytes, approvals=approvals)

    def add(self, validator_id: str, public_key: bytes) -> ledger_pb2.SignedEvent:
        added = ledger_pb2.ValidatorAdded(validator_id=validator_id, public_key=public_key)
        return self.event(validator_added=added)

    def remove(self, validator_id: str) -> ledger_pb2.SignedEvent:
        return self.event(validator_removed=ledger_pb2.ValidatorRemoved(validator_id=validator_id))


# --- talking to nodes ----------------------------------------------------------------------


def submit_and_wait(address: str, signed: ledger_pb2.SignedEvent) -> api_pb2.Receipt:
    with client_channel(address, token=None) as channel:
        return api_pb2_grpc.LedgerServiceStub(channel).SubmitAndWait(
            api_pb2.SubmitAndWaitRequest(event=signed), timeout=RPC_TIMEOUT_S
        )


def register(signer: EventSigner, label: str) -> ledger_pb2.SignedEvent:
    asset_id = f"validator-changes/{label}/{time.time_ns()}"
    return signer.event(
        "asset_registered",
        asset_id=asset_id,
        content_digest=hashlib.sha256(asset_id.encode()).digest(),
        classification=ledger_pb2.CLASSIFICATION_GENERAL,
    )


def read_block(address: str, height: int) -> api_pb2.GetBlockResponse:
    """The block and its certificate, read with the auditor's token (whole blocks are an
    auditor's read)."""
    with client_channel(address) as channel:
        return api_pb2_grpc.LedgerServiceStub(channel).GetBlock(
            api_pb2.GetBlockRequest(height=height), timeout=RPC_TIMEOUT_S
        )


def signers_by_height(address: str, first: int, last: int) -> dict[int, set[str]]:
    """Who signed each height's commit certificate, from `first` to `last`: the block's own
    certificate and, for the height before it, the block's last_commit."""
    signers: dict[int, set[str]] = {}
    for height in range(first, last + 1):
        answer = read_block(address, height)
        assert decode_header(answer.block.header).height == height
        own = {s.validator_id for s in answer.certificate.signatures}
        signers.setdefault(height, set()).update(own)
        if height > first and answer.block.HasField("last_commit"):
            previous = answer.block.last_commit
            assert previous.height == height - 1
            signers.setdefault(height - 1, set()).update(
                s.validator_id for s in previous.signatures
            )
    return signers


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*provledger_command(), *args], capture_output=True, text=True, timeout=CLI_TIMEOUT_S
    )


def wait_for_log(node: NodeProcess, text: str) -> None:
    wait_until(lambda: text in node.log_text(), COMMIT_TIMEOUT_S, node.log_tail)


def wait_for_heights(cluster: NodeCluster, minimum: int, nodes: Sequence[NodeProcess]) -> int:
    """Every one of `nodes` has committed `minimum`; the lowest head then."""
    return min(cluster.wait_for_heights(minimum, nodes, timeout_s=COMMIT_TIMEOUT_S).values())


# --- the story -----------------------------------------------------------------------------


def test_a_validator_joins_another_leaves_and_the_walk_from_the_genesis_verifies(
    tmp_path: Path,
) -> None:
    base_port = free_base_port(NODES + 1)  # node-4's ports too, as `--nodes 5` would lay out
    layout = init_consortium(tmp_path, nodes=NODES, base_port=base_port)
    cluster = NodeCluster.for_layout(layout, tmp_path)
    new_node = make_fifth_node(layout, base_port, tmp_path)
    everyone = NodeCluster([*cluster, new_node])
    governance = Governance(layout)
    member = EventSigner(Identity.load(layout.identities["agency-b"]))
    try:
        cluster.start()

        # 1. Four validators commit.
        before = [submit_and_wait(node.address, register(member, "before")) for node in cluster]
        first_height = min(receipt.height for receipt in before)
        assert {s.validator_id for s in before[-1].checkpoint.certificate.signatures} <= {
            f"node-{index}" for index in range(NODES)
        }

        # 2. The four learn node-4's peer address, restarted one at a time; node-4 starts,
        # an observer that follows the chain.
        for node in cluster:
            add_peer_to_config(node.config, NEW_NODE, new_node.peer_address)  # type: ignore[arg-type]
            head = max(cluster.heights().values())
            node.restart()
            wait_for_heights(cluster, head + 1, list(cluster))
        new_node.start()
        wait_for_log(new_node, f"node {NEW_NODE} follows without voting")
        head = max(cluster.heights().values())
        wait_for_heights(everyone, head, [new_node])

        # 3. Governance adds node-4: from H + 2 it signs.
        new_key = json.loads((layout.directory / NEW_NODE / "validator-key.json").read_text())
        added = submit_and_wait(
            cluster[0].address, governance.add(NEW_NODE, bytes.fromhex(new_key["public_key"]))
        )
        activation = added.height + VALIDATOR_CHANGE_DELAY_BLOCKS
        wait_for_log(new_node, f"node {NEW_NODE} votes as a validator")
        signed_by_new: list[int] = []

        def new_node_signed() -> bool:
            last = cluster[0].height()
            signers = signers_by_height(cluster[0].address, added.height, last)
            assert not [h for h, ids in signers.items() if h < activation and NEW_NODE in ids]
            signed_by_new[:] = [h for h, ids in signers.items() if NEW_NODE in ids]
            return bool(signed_by_new)

        wait_until(new_node_signed, COMMIT_TIMEOUT_S, everyone.nodes[-1].log_tail)
        # node-4 serves clients, and what it is sent commits everywhere.
        through_new = submit_and_wait(new_node.address, register(member, "through-node-4"))
        wait_for_heights(everyone, through_new.height, list(everyone))

        # 4. Governance removes node-1, which is then stopped; the four left commit on.
        removed = submit_and_wait(cluster[2].address, governance.remove(REMOVED_NODE))
        removal = removed.height + VALIDATOR_CHANGE_DELAY_BLOCKS
        leaving = cluster[1]
        assert leaving.name == REMOVED_NODE
        wait_for_log(leaving, f"node {REMOVED_NODE} follows without voting")
        assert leaving.stop() == 0, leaving.log_tail()
        remaining = [node for node in everyone if node is not leaving]
        late_event = register(member, "after")
        after = submit_and_wait(new_node.address, late_event)
        assert after.height >= removal
        # Its receipt carries the walk: it verifies with the genesis alone.
        trusted = parse_genesis(layout.genesis_path.read_bytes())
        receipt_check = verify_inclusion_answer(
            late_event,
            after.proof,
            after.checkpoint,
            trusted,
            after.event_id,
            after.validator_chain,
        )
        assert receipt_check.height == after.height and receipt_check.validators == 4
        last = wait_for_heights(everyone, after.height + 1, remaining)
        signers = signers_by_height(cluster[0].address, removal, last)
        assert all(REMOVED_NODE not in ids and len(ids) >= 3 for ids in signers.values()), signers
        assert {s.validator_id for s in after.checkpoint.certificate.signatures} <= {
            "node-0",
            "node-2",
            "node-3",
            NEW_NODE,
        }

        # 5. A verifier with the genesis alone: the walk crosses both changes.
        with client_channel(new_node.address) as channel:
            answer = api_pb2_grpc.LedgerServiceStub(channel).GetInclusionProof(
                api_pb2.GetInclusionProofRequest(event_id=after.event_id), timeout=RPC_TIMEOUT_S
            )
        walk = [
            decode_header(step.checkpoint.header).height for step in answer.validator_chain.steps
        ]
        assert walk == [added.height, removed.height]
        auditor = ["--ca-cert", str(layout.ca_certificate)]
        auditor += ["--identity", str(layout.identities["auditor"])]
        genesis = ["--genesis", str(layout.genesis_path)]
        for node in (new_node, cluster[0]):
            proved = run_cli(
                "proof", "inclusion", after.event_id.hex(), *genesis, "--node", node.address,
                *auditor,
            )  # fmt: skip
            assert proved.returncode == 0, proved.stderr
            assert proved.stdout.strip().endswith("of 4 validators: VERIFIED"), proved.stdout
        consistent = run_cli(
            "proof", "consistency", "--first", str(first_height), *genesis,
            "--node", new_node.address, *auditor, "--json",
        )  # fmt: skip
        assert consistent.returncode == 0, consistent.stderr
        document = json.loads(consistent.stdout)
        assert document["verified"] is True
        assert document["first_height"] == first_height < added.height
        assert document["second_height"] >= after.height > removal

        # 6. The ledgers hold up across the changes: the removed node's folder checks whole
        # (every block re-executed, every certificate by its height's set), and a validator
        # restarted after both changes passes the open check and commits on.
        checked = run_cli("node", "check", "--config", str(leaving.config), "--json")
        assert checked.returncode == 0, checked.stderr
        report = json.loads(checked.stdout)
        assert report["sound"] is True and report["replayed_height"] >= removed.height, report
        restarted = cluster[0]
        head = restarted.height()
        restarted.restart()
        wait_for_heights(everyone, head + 1, remaining)
    except grpc.RpcError as error:
        raise AssertionError(f"{error}\n{logs(everyone)}") from None
    finally:
        codes = everyone.stop()
    failed = {name: code for name, code in codes.items() if code not in (0, None)}
    assert not failed, f"{failed}\n{logs(everyone)}"


def logs(cluster: NodeCluster) -> str:
    return "\n".join(node.log_tail(2_000) for node in cluster)

"""Evidence bundles across membership changes, with real node processes: a consortium of four
validators admits a fifth member by governance after the genesis, the member registers and
sells an asset, its key is rotated and it signs with the new key. Before and after each change,
event, lineage and trade bundles are exported over a node's REST API
(`provledger evidence export --rest`) and checked by `provledger verify` (a separate process,
no network) against the ORIGINAL genesis file alone; at the end, every bundle exported on the
way still verifies.

The governance events are built in Python with their approvals, as the other tests build them
(ADR 005: the approvals of more than two thirds of the active members inside one event).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
from pathlib import Path

import grpc
import pytest
from support.processes import (
    init_consortium,
    ledger_client,
    member_token,
    provledger_command,
    running_nodes,
)

from provledger.cli.client import EventSigner, Identity
from provledger.protocol import crypto
from provledger.protocol.rules import governance_sign_bytes
from provledger.v1 import ledger_pb2

pytestmark = pytest.mark.integration

CLI_TIMEOUT_S = 60
HEIGHT_TIMEOUT_S = 60.0
GENESIS_MEMBERS = ("agency-a", "agency-b", "exchange", "regulator")


def digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*provledger_command(), *args], capture_output=True, text=True, timeout=CLI_TIMEOUT_S
    )


def governance_event(
    author: EventSigner,
    change: ledger_pb2.GovernanceChange,
    approvers: dict[str, crypto.SigningKey],
) -> ledger_pb2.SignedEvent:
    """A GovernanceAction carrying `change`, approved by each member with the key given."""
    change_bytes = change.SerializeToString(deterministic=True)
    message = governance_sign_bytes(author.identity.chain_id, change_bytes)
    approvals = [
        ledger_pb2.Approval(
            approver=ledger_pb2.Author(member_id=member_id, key_id=key.key_id),
            signature=key.sign(crypto.DOMAIN_GOVERNANCE, message),
        )
        for member_id, key in approvers.items()
    ]
    return author.event("governance", change=change_bytes, approvals=approvals)


def test_bundles_exported_before_and_after_each_change_verify_against_the_genesis(
    tmp_path: Path,
) -> None:
    layout = init_consortium(tmp_path, nodes=4)
    genesis = str(layout.genesis_path)
    genesis_bytes = layout.genesis_path.read_bytes()
    token = member_token(layout, "auditor")
    identities = {m: Identity.load(path) for m, path in layout.identities.items()}
    signers = {m: EventSigner(identity) for m, identity in identities.items()}
    keys = {m: identity.key for m, identity in identities.items()}
    chain_id = identities["agency-a"].chain_id
    key_c = crypto.SigningKey.from_seed(os.urandom(32))  # agency-c's, made by agency-c alone
    key_c_rotated = crypto.SigningKey.from_seed(os.urandom(32))
    exported: list[tuple[str, Path]] = []

    with running_nodes(layout, tmp_path) as cluster, contextlib.ExitStack() as stack:
        clients = [stack.enter_context(ledger_client(a)) for a in layout.grpc_addresses]

        def commit(signed: ledger_pb2.SignedEvent, node: int = 0) -> str:
            receipt = clients[node].submit_and_wait(signed)
            cluster.wait_for_heights(receipt.height, timeout_s=HEIGHT_TIMEOUT_S)
            return receipt.event_id.hex()

        def export_and_verify(stage: str, node: int, **subjects: str) -> dict[str, dict]:
            """Export a bundle of each kind in `subjects` from node `node`'s REST API; check
            each with `provledger verify` against the genesis file; their --json answers."""
            answers = {}
            for kind, subject in subjects.items():
                out = tmp_path / f"{stage}-{kind}.evidence.json"
                result = run_cli(
                    "evidence", "export", f"--{kind}", subject,
                    "--rest", f"http://{layout.rest_addresses[node]}", "--token", token,
                    "--genesis", genesis, "--out", str(out),
                )  # fmt: skip
                assert result.returncode == 0, (stage, kind, result.stderr)
                result = run_cli("verify", str(out), "--genesis", genesis)
                assert result.returncode == 0, (stage, kind, result.stderr)
                assert result.stdout.startswith(f"VERIFIED {kind} evidence for"), result.stdout
                assert "signed by" in result.stdout and "of 4 validators" in result.stdout
                result = run_cli("verify", str(out), "--genesis", genesis, "--json")
                assert result.returncode == 0, (stage, kind, result.stderr)
                answers[kind] = json.loads(result.stdout)
                assert answers[kind]["format"] == "provledger-evidence/3"
                exported.append((f"{stage} {kind}", out))
            return answers

        def changes(answer: dict) -> list[tuple[str, str]]:
            return [(g["change"], g["member_id"]) for g in answer["governance"]]

        # --- before any change: the genesis members -------------------------------------
        raw = commit(
            signers["agency-a"].event(
                "asset_registered", asset_id="gov/raw", content_digest=digest("raw"),
                classification=ledger_pb2.CLASSIFICATION_GENERAL,
            )
        )  # fmt: skip
        commit(
            signers["exchange"].event(
                "offer_listed", offer_id="gov/offer-1", asset_id="gov/raw", seller_id="agency-a",
                price=100, currency="CNY",
            )
        )  # fmt: skip
        commit(signers["agency-b"].event("order_placed", order_id="gov/order-1",
                                         offer_id="gov/offer-1"))  # fmt: skip
        before = export_and_verify("genesis", 1, event=raw, lineage="gov/raw", trade="gov/order-1")
        assert all(answer["governance"] == [] for answer in before.values())

        # --- agency-c is admitted by four of the five genesis members --------------------
        admitted = governance_event(
            signers["agency-a"],
            ledger_pb2.GovernanceChange(
                proposal_nonce=1,
                member_added=ledger_pb2.MemberAdded(
                    member_id="agency-c", name="Provincial Water Bureau",
                    role=ledger_pb2.ROLE_AGENCY, public_key=key_c.public_key,
                ),
            ),
            {m: keys[m] for m in GENESIS_MEMBERS},
        )  # fmt: skip
        commit(admitted, node=2)
        agency_c = EventSigner(
            Identity(member_id="agency-c", role="agency", chain_id=chain_id, key=key_c)
        )
        c_raw = commit(
            agency_c.event(
                "asset_registered", asset_id="gov/c-raw", content_digest=digest("c raw"),
                classification=ledger_pb2.CLASSIFICATION_GENERAL,
            ),
            node=3,
        )  # fmt: skip
        commit(
            signers["exchange"].event(
                "offer_listed", offer_id="gov/offer-2", asset_id="gov/c-raw",
                seller_id="agency-c", price=200, currency="CNY",
            )
        )  # fmt: skip
        commit(signers["agency-b"].event("order_placed", order_id="gov/order-2",
                                         offer_id="gov/offer-2"))  # fmt: skip
        added = export_and_verify("added", 2, event=c_raw, lineage="gov/c-raw", trade="gov/order-2")
        assert (
            changes(added["event"]) == changes(added["lineage"]) == [("member_added", "agency-c")]
        )
        # agency-c sells but signed nothing of the trade yet: its bundle needs no governance.
        assert added["trade"]["claims"]["seller"] == "agency-c"
        assert changes(added["trade"]) == []
        assert added["event"]["claims"]["author"] == "agency-c"

        # --- agency-c's key is rotated (the old one retired) by five of the six ----------
        rotated = governance_event(
            signers["regulator"],
            ledger_pb2.GovernanceChange(
                proposal_nonce=2,
                key_rotated=ledger_pb2.KeyRotated(
                    member_id="agency-c", new_public_key=key_c_rotated.public_key,
                    retired_key_id=key_c.key_id,
                ),
            ),
            {**{m: keys[m] for m in GENESIS_MEMBERS}, "agency-c": key_c},
        )  # fmt: skip
        commit(rotated, node=1)
        with pytest.raises(grpc.RpcError) as refused:  # the retired key signs no more
            clients[0].submit_and_wait(agency_c.event("asset_retired", asset_id="gov/c-raw"))
        assert (refused.value.details() or "").startswith("unknown_key: ")
        agency_c = EventSigner(
            Identity(member_id="agency-c", role="agency", chain_id=chain_id, key=key_c_rotated)
        )
        c_clean = commit(
            agency_c.event(
                "asset_derived", asset_id="gov/c-clean", parent_ids=["gov/c-raw"],
                activity="cleaning", content_digest=digest("c clean"),
                classification=ledger_pb2.CLASSIFICATION_GENERAL,
            )
        )  # fmt: skip
        commit(agency_c.event("order_delivered", order_id="gov/order-2",
                              delivery_digest=digest("c copy")))  # fmt: skip
        after = export_and_verify(
            "rotated", 3, event=c_clean, lineage="gov/c-clean", trade="gov/order-2"
        )
        for answer in after.values():
            assert changes(answer) == [
                ("member_added", "agency-c"),
                ("key_rotated", "agency-c"),
            ]
        assert after["event"]["claims"]["key_id"] == key_c_rotated.key_id.hex()
        # The lineage holds agency-c's events by both keys; the trade, the delivery by the new.
        lineage_keys = {e["author"] for e in after["lineage"]["events"]}
        assert lineage_keys == {"agency-c"} and len(after["lineage"]["events"]) == 2
        assert after["trade"]["claims"]["statuses"] == ["listed", "ordered", "delivered"]
        # The bundles of before, exported again now, verify too.
        again = export_and_verify("again", 0, event=raw, lineage="gov/raw", trade="gov/order-1")
        assert all(answer["governance"] == [] for answer in again.values())
        verified_again = export_and_verify("again-c", 0, event=c_raw)
        assert changes(verified_again["event"]) == [
            ("member_added", "agency-c"),
            ("key_rotated", "agency-c"),
        ]

    # Every bundle exported on the way verifies against the original genesis, alone.
    assert layout.genesis_path.read_bytes() == genesis_bytes
    for label, path in exported:
        result = run_cli("verify", str(path), "--genesis", genesis)
        assert result.returncode == 0, (label, result.stderr)
    assert len(exported) == 13

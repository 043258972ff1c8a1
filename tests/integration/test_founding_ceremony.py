"""Four organisations found a consortium with the `provledger` command alone, each in a folder
of its own, and no private file ever leaves its organisation's folder (ADR 015).

    each organisation:  provledger org init --org O --name N --role R --chain-id C --dir O/ \\
                            --node node-O --host node-O.example.org --peer-address 127.0.0.1:P
    the coordinator:    provledger genesis draft --chain-id C --org O/public.json ... \\
                            --out draft.json --peers-out peers.json
    each organisation:  provledger genesis sign --draft O/draft.json --identity O/identity.json \\
                            --out O/approval.json
    the coordinator:    provledger genesis seal --draft draft.json --approval ... --out genesis.json
    each organisation:  provledger org node-config --dir O/ --genesis genesis.json \\
                            --peers peers.json --listen ... --peer-listen ...
                        provledger node run --config O/node/config.toml

Only public files travel between folders (public.json, the draft, approvals, the genesis, the
peers' addresses), copied by the test as a courier would. An event submitted to one node is
read from another organisation's node, over TLS trusting that node's organisation's CA (from
the genesis), and again trusting `genesis ca-bundle`. Before that, `node run` refuses a genesis
whose founding signature is missing or forged, with the refusal's code.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from support.ceremony import (
    assert_no_private_file_outside,
    cli_json,
    found_consortium,
    run_cli,
)
from support.processes import (
    ClientAccess,
    NodeCluster,
    NodeProcess,
    note_access,
    provledger_command,
    wait_until,
)

pytestmark = pytest.mark.integration

CHAIN_ID = "founding-test"
# (member id, role, node id): four organisations, each running one validator.
ORGANISATIONS = (
    ("health-commission", "agency", "node-a"),
    ("transport-dept", "agency", "node-b"),
    ("data-exchange", "exchange", "node-c"),
    ("data-bureau", "regulator", "node-d"),
)
READ_TIMEOUT_S = 30.0


def test_four_organisations_found_a_consortium_and_no_private_file_leaves_its_folder(
    tmp_path: Path,
) -> None:
    # 1-5. Each organisation makes its keys at home (`org init`); the coordinator drafts the
    # genesis from the public parts alone; each organisation signs the draft it was sent; the
    # coordinator seals it; each organisation configures its node (`org node-config`).
    founded = found_consortium(tmp_path, CHAIN_ID, ORGANISATIONS)
    organisations, coordinator = founded.organisations, founded.coordinator
    configs, grpc_ports = founded.configs, founded.grpc_ports

    # 6. A genesis with a founding signature missing, or forged, is refused by `node run`.
    first = next(iter(organisations))
    sealed_text = (organisations[first] / "genesis.json").read_text()
    sealed = json.loads(sealed_text)
    missing = {**sealed, "founding_signatures": sealed["founding_signatures"][1:]}
    forged = json.loads(sealed_text)
    signature = bytearray.fromhex(forged["founding_signatures"][2]["signature"])
    signature[5] ^= 0x40
    forged["founding_signatures"][2]["signature"] = signature.hex()
    for document, code in (
        (missing, "founding_signature_missing"),
        (forged, "founding_signature_invalid"),
    ):
        (organisations[first] / "genesis.json").write_text(json.dumps(document, indent=2))
        refused = run_cli("node", "run", "--config", str(configs[first]))
        assert refused.returncode == 1, refused.stderr
        assert code in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr
        assert not (organisations[first] / "node" / "data").exists()
    (organisations[first] / "genesis.json").write_text(sealed_text)

    # 7. Every organisation runs its node; the test's health checks trust each one's own CA.
    nodes = []
    for index, (org, folder) in enumerate(organisations.items()):
        address = f"127.0.0.1:{grpc_ports[org]}"
        note_access([address], ClientAccess((folder / "ca" / "ca.pem").read_bytes(), None))
        nodes.append(
            NodeProcess(
                config=configs[org],
                address=address,
                log_path=tmp_path / "logs" / f"{org}.log",
                name=ORGANISATIONS[index][2],
                command=[*provledger_command(), "node", "run", "--config", str(configs[org])],
            )
        )
    with NodeCluster(nodes) as cluster:
        # 8. health-commission submits to its own node, trusting its own CA.
        submitter = organisations["health-commission"]
        digest = base64.b64encode(hashlib.sha256(b"vaccination survey").digest()).decode()
        receipt = cli_json(
            "submit", "--node", nodes[0].address, "--ca-cert", str(submitter / "ca" / "ca.pem"),
            "--identity", str(submitter / "identity.json"), "--kind", "asset_registered",
            "--set", "asset_id=founding/vaccination-survey", "--set", f"content_digest={digest}",
            "--set", "classification=CLASSIFICATION_GENERAL", "--set", "name=Vaccination survey",
            "--wait",
        )  # fmt: skip
        event_id = base64.b64decode(receipt["eventId"]).hex()

        # 9. data-bureau (a regulator: an auditor's token) reads it from data-exchange's node,
        # trusting data-exchange's CA as the genesis names it, then from transport-dept's
        # node trusting every organisation's CA (`genesis ca-bundle`).
        reader = organisations["data-bureau"]
        exchange_ca = reader / "trusted" / "data-exchange-ca.pem"
        exchange_ca.parent.mkdir()
        exchange_ca.write_text(
            next(v["tls_ca"] for v in sealed["validators"] if v["validator_id"] == "node-c")
        )
        bundle = run_cli("genesis", "ca-bundle", "--genesis", str(reader / "genesis.json"))
        assert bundle.returncode == 0, bundle.stderr
        (reader / "trusted" / "bundle.pem").write_text(bundle.stdout)
        attempts: list[subprocess.CompletedProcess[str]] = []

        def read_from(node: NodeProcess, ca: Path) -> dict | None:
            command = (
                "event", "get", event_id, "--node", node.address, "--ca-cert", str(ca),
                "--identity", str(reader / "identity.json"), "--json",
            )  # fmt: skip
            attempts.append(run_cli(*command))
            return json.loads(attempts[-1].stdout) if attempts[-1].returncode == 0 else None

        for node, ca in ((nodes[2], exchange_ca), (nodes[1], reader / "trusted" / "bundle.pem")):
            event = wait_until(
                lambda node=node, ca=ca: read_from(node, ca),
                READ_TIMEOUT_S,
                lambda node=node: f"{attempts[-1].stderr}\n{node.log_tail()}",
                interval_s=0.5,
            )
            assert event["event_id"] == event_id
            assert event["height"] == int(receipt["height"])
            assert event["event"]["author"]["memberId"] == "health-commission"
            assert event["event"]["assetRegistered"]["assetId"] == "founding/vaccination-survey"
        # Another organisation's CA does not vouch for data-exchange's node.
        wrong = run_cli(
            "event", "get", event_id, "--node", nodes[2].address,
            "--ca-cert", str(submitter / "ca" / "ca.pem"),
            "--identity", str(reader / "identity.json"),
        )  # fmt: skip
        assert wrong.returncode == 1
        assert cluster[0].running and cluster[3].running

    # 10. No private file, nor its secret, is anywhere outside its organisation's folder.
    assert_no_private_file_outside(tmp_path, organisations)
    assert sorted(path.name for path in coordinator.iterdir()) == sorted(
        ["draft.json", "genesis.json", "peers.json"]
        + [f"{org}.{kind}.json" for org in organisations for kind in ("public", "approval")]
    )

"""A case file end to end, as a regulator would hand one to a court: a real node commits a
trade and a whole case (two complaints, the opening, a step, a ruling with a refund and a
delisting, an appeal, a decision by a second regulator); `provledger evidence export --case`
fetches the case file over REST with a party's token and checks it; `provledger verify` (a
separate process, no network) prints the case as a timeline and exits 0, its words rendered
from the verified events, while `--json` prints the structured claims (no words of ours). A
changed claim makes it fail with a non-zero exit and the reason.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.processes import NodeProcess, init_consortium, ledger_client
from support.rest_support import cli_token, run_cli

from provledger.cli.client import EventSigner, Identity
from provledger.protocol.evidence import encode_canonical
from provledger.v1 import ledger_pb2

pytestmark = pytest.mark.integration

WINDOW_MS = 3_600_000


def sha(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


@dataclass
class RunningCase:
    genesis: Path
    rest_url: str
    tokens: dict[str, str]  # member -> a member token
    event_ids: dict[str, str]  # story label -> hex event id
    node: NodeProcess
    data_dir: Path


@pytest.fixture(scope="module")
def running_case(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCase]:
    tmp_path = tmp_path_factory.mktemp("case-file-cli")
    layout = init_consortium(
        tmp_path, nodes=1, market=True, supervision={"appeal_window_ms": WINDOW_MS}
    )
    signers = {m: EventSigner(Identity.load(path)) for m, path in layout.identities.items()}
    refund = ledger_pb2.Refund(order_id="case/order", amount=500, currency="CNY", reference="pay-1")
    delist = ledger_pb2.DelistOffer(offer_id="case/offer")
    story = [
        ("asset", "agency-a", "asset_registered",
         {"asset_id": "case/asset", "content_digest": sha("asset"),
          "classification": ledger_pb2.CLASSIFICATION_GENERAL}),
        ("offer", "exchange", "offer_listed",
         {"offer_id": "case/offer", "asset_id": "case/asset", "seller_id": "agency-a",
          "price": 500, "currency": "CNY", "title": "Traffic counts"}),
        ("order", "agency-b", "order_placed", {"order_id": "case/order", "offer_id": "case/offer"}),
        ("delivered", "agency-a", "order_delivered",
         {"order_id": "case/order", "delivery_digest": sha("copy")}),
        ("complaint", "agency-b", "complaint_filed",
         {"complaint_id": "case/complaint", "subject_kind": ledger_pb2.COMPLAINT_SUBJECT_ORDER,
          "subject_id": "case/order", "respondent_id": "agency-a",
          "statement_digest": sha("statement"), "evidence_digests": [sha("evidence")],
          "category": "not_as_described"}),
        ("opened", "regulator", "case_opened",
         {"case_id": "case/1", "complaint_ids": ["case/complaint"],
          "summary": "data not as described"}),
        ("step", "regulator", "case_step_recorded",
         {"case_id": "case/1", "step": "hearing", "note": "both parties heard"}),
        ("ruled", "regulator", "case_ruled",
         {"case_id": "case/1", "outcome": ledger_pb2.RULING_OUTCOME_UPHELD,
          "findings": "the copy was not the listed data", "decision_digest": sha("decision"),
          "remedies": [ledger_pb2.Remedy(refund=refund), ledger_pb2.Remedy(delist=delist)]}),
        ("appealed", "agency-a", "ruling_appealed",
         {"case_id": "case/1", "grounds_digest": sha("grounds"), "grounds": "it was"}),
        ("decided", "market-regulator", "appeal_decided",
         {"case_id": "case/1", "decision": ledger_pb2.APPEAL_DECISION_UPHELD,
          "reasons": "the ruling is sound"}),
    ]  # fmt: skip
    node = NodeProcess.for_node(layout, 0, tmp_path)
    event_ids = {}
    with node, ledger_client(node.address) as client:
        for label, member, kind, fields in story:
            receipt = client.submit_and_wait(signers[member].event(kind, **fields))
            event_ids[label] = receipt.event_id.hex()
        tokens = {
            member: cli_token(layout.identities[member], "member")
            for member in ("agency-b", "exchange")
        }
        yield RunningCase(
            genesis=layout.genesis_path,
            rest_url=f"http://{layout.rest_addresses[0]}",
            tokens=tokens,
            event_ids=event_ids,
            node=node,
            data_dir=layout.node_configs[0].parent / "data",
        )
    assert not node.running


def export(running: RunningCase, token: str, out: Path):
    return run_cli(
        "evidence", "export", "--case", "case/1", "--rest", running.rest_url, "--token", token,
        "--genesis", str(running.genesis), "--out", str(out),
    )  # fmt: skip


def test_a_case_file_is_exported_over_rest_and_verified_offline(
    running_case: RunningCase, tmp_path: Path
) -> None:
    out = tmp_path / "case.json"
    result = export(running_case, running_case.tokens["agency-b"], out)
    assert result.returncode == 0, result.stderr
    assert "wrote case evidence for case/1" in result.stdout
    assert "verified against the genesis" in result.stdout

    result = run_cli("verify", str(out), "--genesis", str(running_case.genesis))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "VERIFIED case evidence for case_id case/1"
    timeline = [line for line in lines if re.match(r"    \d{4}-\d\d-\d\dT[\d:.]+Z  height ", line)]
    # The listing, the order's life cycle and the case's events (the asset is no subject).
    assert len(timeline) == 9
    assert re.search(
        r"  height \d+  agency-b  complaint case/complaint filed by agency-b", result.stdout
    )
    assert re.search(
        r"  height \d+  regulator  ruled upheld by regulator: refund of 500 CNY", result.stdout
    )
    assert "  remedy: refund of 500 CNY (minor units) on order case/order, reference pay-1" in lines
    assert "  remedy: offer case/offer delisted" in lines
    assert "  appeal decided: ruling upheld, by market-regulator" in lines
    assert lines[-1].startswith("verified against the genesis ")

    document = json.loads(
        run_cli("verify", str(out), "--genesis", str(running_case.genesis), "--json").stdout
    )
    claims = document["claims"]
    assert claims["statuses"] == ["open", "ruled", "appealed", "appeal_decided"]
    assert claims["trades"][0]["statuses"] == ["listed", "ordered", "delivered", "refunded"]
    assert claims["appeal_decision"]["event_id"] == running_case.event_ids["decided"]
    # The claims are structured: the timeline's entries carry no words; the words printed
    # above are rendered from the verified events, one line per entry, in the same order.
    entries = claims["timeline"]
    assert [set(entry) for entry in entries] == [
        {"event_id", "log_index", "height", "time_ms", "kind", "author"}
    ] * len(timeline)
    assert [e["event_id"] for e in entries] == [e["event_id"] for e in document["events"]]
    for line, entry in zip(timeline, entries, strict=True):
        assert f"  height {entry['height']}  {entry['author']}  " in line
    assert entries[-1]["kind"] == "appeal_decided"
    assert timeline[-1].endswith(
        "  market-regulator  appeal decided by market-regulator: ruling upheld; reasons: "
        "the ruling is sound"
    )

    # A changed claim, re-encoded canonically so that only the claims are wrong.
    tampered = json.loads(out.read_bytes())
    tampered["claims"]["ruling"]["findings"] = "the copy was the listed data"
    changed = tmp_path / "tampered.json"
    changed.write_bytes(encode_canonical(tampered))
    result = run_cli("verify", str(changed), "--genesis", str(running_case.genesis))
    assert result.returncode != 0
    assert "does NOT verify" in result.stderr and "[claims_mismatch]" in result.stderr
    # One byte of an event's signature changed.
    raw = out.read_bytes()
    signature = json.loads(raw)["events"][0]["signature"]
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    changed.write_bytes(raw.replace(signature.encode(), flipped.encode()))
    result = run_cli("verify", str(changed), "--genesis", str(running_case.genesis))
    assert result.returncode != 0 and "does NOT verify" in result.stderr


def test_a_member_who_is_no_party_gets_no_case_file(
    running_case: RunningCase, tmp_path: Path
) -> None:
    result = export(running_case, running_case.tokens["exchange"], tmp_path / "refused.json")
    assert result.returncode != 0
    assert "HTTP 403" in result.stderr
    assert not (tmp_path / "refused.json").exists()


def test_a_stopped_nodes_data_gives_the_same_case_file(
    running_case: RunningCase, tmp_path: Path
) -> None:
    """Last (it stops the node): the case file from the data folder claims what the one over
    REST claims, over the same events (the checkpoints may differ: the node may commit an
    empty block in between)."""
    over_rest = tmp_path / "rest.json"
    assert export(running_case, running_case.tokens["agency-b"], over_rest).returncode == 0
    running_case.node.stop()
    from_data = tmp_path / "data.json"
    result = run_cli(
        "evidence", "export", "--case", "case/1", "--data-dir", str(running_case.data_dir),
        "--genesis", str(running_case.genesis), "--out", str(from_data),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data, rest = json.loads(from_data.read_bytes()), json.loads(over_rest.read_bytes())
    assert data["claims"] == rest["claims"]
    assert [e["event_id"] for e in data["events"]] == [e["event_id"] for e in rest["events"]]

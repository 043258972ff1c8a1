"""The auditor REST API of a real four-node consortium, over HTTP.

One consortium (four `provledger node run` processes, each serving gRPC, PeerService and REST
on 127.0.0.1) serves the module. A provenance story is committed through gRPC, each event to
a different node: two agencies register data, a grant lets one derive from the other's data
and use it, a second grant is issued and revoked, an exchange lists the derived asset, a
regulator buys it, the seller delivers and the exchange settles. Then, with tokens issued by
the `provledger token issue` command:
- two different nodes give the same answers about that history (assets, lineage, PROV-JSON,
  grants, trades, events, blocks, checkpoints and proofs at a common height);
- what either node says verifies against the genesis file alone;
- member tokens read what concerns their member and no more, on any node;
- an evidence bundle exported over REST with the CLI verifies with `provledger verify`;
- schemathesis, driven by the node's own /openapi.json, finds no 5xx answer and no answer
  that breaks the schema (random inputs, then the story's real ids).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from support.processes import NodeCluster, ledger_client
from support.rest_support import (
    RestClient,
    checkpoint_message,
    cli_token,
    init_rest_consortium,
    run_cli,
    verify_rest_inclusion,
    wait_until,
)

from provledger.cli.client import EventSigner, Identity, LedgerClient
from provledger.cli.consortium import ConsortiumLayout
from provledger.protocol.blocks import decode_header, verify_checkpoint
from provledger.protocol.evidence import verify_bundle
from provledger.protocol.genesis import Genesis, parse_genesis
from provledger.v1 import api_pb2, ledger_pb2

pytestmark = pytest.mark.integration

NODES = 4
COMMIT_TIMEOUT_MS = 30_000
HEIGHT_TIMEOUT_S = 60.0
DAY_MS = 24 * 3600 * 1000
MEMBERS = ("agency-a", "agency-b", "exchange", "regulator")
# Schemathesis: examples per operation, for random inputs and then for the story's real ids.
RANDOM_EXAMPLES = 25
STORY_EXAMPLES = 10
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]


def digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclasses.dataclass
class Story:
    layout: ConsortiumLayout
    cluster: NodeCluster
    genesis: Genesis
    auditor_token: str
    ids: dict[str, str]  # event name -> event id (hex)
    height: int  # a height at which every event of the story is committed
    assets: dict[str, str]  # role in the story -> asset id

    def rest(self, node: int, token: str | None = "auditor") -> RestClient:
        chosen = self.auditor_token if token == "auditor" else token
        return RestClient(self.layout.rest_addresses[node], chosen)


@pytest.fixture(scope="module")
def story(tmp_path_factory) -> Iterator[Story]:
    directory = tmp_path_factory.mktemp("rest-consortium")
    layout = init_rest_consortium(directory, NODES)
    genesis = parse_genesis(layout.genesis_path.read_bytes())
    with NodeCluster.for_layout(layout, directory / "logs") as cluster:
        ids, height, assets = tell_the_story(layout)
        token = cli_token(layout.identities["auditor"], "auditor")
        built = Story(layout, cluster, genesis, token, ids, height, assets)
        for node in range(NODES):  # every node has committed the whole story
            with built.rest(node) as client:
                wait_until(
                    lambda client=client: client.height() >= height,
                    HEIGHT_TIMEOUT_S,
                    f"node-{node} reaching height {height}",
                )
        yield built


def tell_the_story(layout: ConsortiumLayout) -> tuple[dict[str, str], int, dict[str, str]]:
    signers = {m: EventSigner(Identity.load(layout.identities[m])) for m in MEMBERS}
    clients = [ledger_client(address) for address in layout.grpc_addresses]
    suffix = str(now_ms())
    assets = {
        "health": f"health/{suffix}",
        "trips": f"trips/{suffix}",
        "fused": f"fused/{suffix}",
    }
    expires = now_ms() + DAY_MS
    steps = [
        (
            "health",
            "agency-a",
            "asset_registered",
            {
                "asset_id": assets["health"],
                "content_digest": digest("health"),
                "classification": ledger_pb2.CLASSIFICATION_IMPORTANT,
                "name": "Hospital records",
            },
        ),
        (
            "trips",
            "agency-b",
            "asset_registered",
            {
                "asset_id": assets["trips"],
                "content_digest": digest("trips"),
                "classification": ledger_pb2.CLASSIFICATION_GENERAL,
            },
        ),
        (
            "grant",
            "agency-a",
            "grant_issued",
            {
                "grant_id": f"g/analytics/{suffix}",
                "asset_id": assets["health"],
                "grantee_id": "agency-b",
                "purposes": ["analytics"],
                "operations": [ledger_pb2.OPERATION_READ, ledger_pb2.OPERATION_DERIVE],
                "expires_at_ms": expires,
            },
        ),
        (
            "fused",
            "agency-b",
            "asset_derived",
            {
                "asset_id": assets["fused"],
                "parent_ids": [assets["health"], assets["trips"]],
                "activity": "fusion",
                "content_digest": digest("fused"),
                "classification": ledger_pb2.CLASSIFICATION_IMPORTANT,
                "grant_ids": [f"g/analytics/{suffix}"],
            },
        ),
        (
            "use",
            "agency-b",
            "asset_used",
            {
                "asset_id": assets["health"],
                "grant_id": f"g/analytics/{suffix}",
                "purpose": "analytics",
                "operation": ledger_pb2.OPERATION_READ,
            },
        ),
        (
            "audit_grant",
            "agency-a",
            "grant_issued",
            {
                "grant_id": f"g/audit/{suffix}",
                "asset_id": assets["health"],
                "grantee_id": "agency-b",
                "purposes": ["audit"],
                "operations": [ledger_pb2.OPERATION_READ],
                "expires_at_ms": expires,
            },
        ),
        ("revoke", "agency-a", "grant_revoked", {"grant_id": f"g/audit/{suffix}"}),
        (
            "offer",
            "exchange",
            "offer_listed",
            {
                "offer_id": f"offer/{suffix}",
                "asset_id": assets["fused"],
                "seller_id": "agency-b",
                "price": 5_000,
                "currency": "CNY",
            },
        ),
        (
            "order",
            "regulator",
            "order_placed",
            {"order_id": f"order/{suffix}", "offer_id": f"offer/{suffix}"},
        ),
        (
            "deliver",
            "agency-b",
            "order_delivered",
            {"order_id": f"order/{suffix}", "delivery_digest": digest("delivery")},
        ),
        ("settle", "exchange", "order_settled", {"order_id": f"order/{suffix}"}),
    ]
    ids: dict[str, str] = {}
    height = 0
    try:
        for index, (name, member, kind, fields) in enumerate(steps):
            client = clients[index % NODES]
            # The node admits an event against what it has committed: let it see the last one.
            wait_until(
                lambda client=client, height=height: head_height(client) >= height,
                HEIGHT_TIMEOUT_S,
                f"{client.address} reaching height {height}",
            )
            signed = signers[member].event(kind, **fields)
            receipt = client.submit_and_wait(signed, COMMIT_TIMEOUT_MS)
            ids[name] = receipt.event_id.hex()
            height = max(height, receipt.height)
    finally:
        for client in clients:
            client.close()
    assets.update(
        grant=f"g/analytics/{suffix}", audit_grant=f"g/audit/{suffix}", order=f"order/{suffix}"
    )
    return ids, height, assets


def head_height(client: LedgerClient) -> int:
    try:
        checkpoint = client.stub.GetCheckpoint(api_pb2.GetCheckpointRequest(), timeout=10)
    except grpc.RpcError as error:
        if error.code() == grpc.StatusCode.FAILED_PRECONDITION:  # no block yet
            return 0
        raise
    return decode_header(checkpoint.header).height


# --- tokens ------------------------------------------------------------------------------


def test_tokens_issued_with_the_cli_open_the_api_on_every_node(story):
    member_token = cli_token(story.layout.identities["agency-b"], "member", ttl_s=600)
    for node in range(NODES):
        with story.rest(node, token=None) as anonymous:
            assert anonymous.get("/v1/health") == {"status": "ok", "forks_seen": 0}
            assert anonymous.error("/v1/status", 401) == "missing_token"
        with story.rest(node) as auditor:
            assert auditor.get("/v1/status")["node_id"] == f"node-{node}"
        with story.rest(node, member_token) as member:
            assert member.get("/v1/assets", asset_id=story.assets["fused"])["owner_id"] == (
                "agency-b"
            )


def test_an_auditor_token_is_refused_to_an_agency(story):
    result = run_cli(
        "token",
        "issue",
        "--identity",
        str(story.layout.identities["agency-a"]),
        "--role",
        "auditor",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    assert "warning" in result.stderr
    token = json.loads(result.stdout)["token"]
    with story.rest(1, token) as client:
        assert client.error("/v1/status", 401) == "token_role_not_allowed"


def test_the_cli_refuses_a_bad_lifetime_or_identity(story, tmp_path):
    identity = str(story.layout.identities["auditor"])
    for arguments in (
        ("--ttl-s", "0"),
        ("--ttl-s", str(31 * 24 * 3600)),
    ):
        result = run_cli("token", "issue", "--identity", identity, "--role", "auditor", *arguments)
        assert result.returncode == 1
        assert "--ttl-s" in result.stderr
    missing = run_cli(
        "token", "issue", "--identity", str(tmp_path / "nothing.json"), "--role", "member"
    )
    assert missing.returncode == 1
    assert "cannot use identity" in missing.stderr


# --- two nodes, one history -----------------------------------------------------------------


def comparable_queries(story: Story) -> list[tuple[str, dict]]:
    assets, ids, height = story.assets, story.ids, story.height
    return [
        ("/v1/assets", {"asset_id": assets["fused"]}),
        ("/v1/assets", {"asset_id": assets["health"]}),
        ("/v1/assets/history", {"asset_id": assets["health"]}),
        ("/v1/lineage", {"asset_id": assets["fused"]}),
        ("/v1/lineage", {"asset_id": assets["health"], "direction": "downstream"}),
        ("/v1/prov", {"asset_id": assets["fused"]}),
        ("/v1/grants", {"asset_id": assets["health"]}),
        ("/v1/grants", {"member_id": "agency-b"}),
        ("/v1/grants/one", {"grant_id": assets["audit_grant"]}),
        ("/v1/trades", {"asset_id": assets["fused"]}),
        ("/v1/trades", {"member_id": "exchange"}),
        ("/v1/trades/one", {"order_id": assets["order"]}),
        (f"/v1/events/{ids['fused']}", {}),
        (f"/v1/blocks/{height}", {}),
        ("/v1/blocks", {"cursor": None, "limit": 3}),  # replaced by a page ending at `height`
        ("/v1/checkpoint", {"height": height}),
        (f"/v1/proofs/inclusion/{ids['use']}", {"height": height}),
        ("/v1/proofs/consistency", {"first": 1, "second": height}),
        (
            "/v1/authorization",
            {
                "member_id": "agency-b",
                "asset_id": assets["health"],
                "purpose": "analytics",
                "operation": "read",
                "time_ms": 0,  # replaced by the block time at `height`
            },
        ),
    ]


def blocks_upto(client: RestClient, height: int) -> list[dict]:
    """Every block header at or below `height`, paging /v1/blocks from the node's head."""
    items, cursor = [], None
    while True:
        page = client.get("/v1/blocks", limit=50, cursor=cursor)
        items += [block for block in page["items"] if block["height"] <= height]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def without_certificates(document):
    """The answer less the commit certificates of its checkpoints: each node holds its own
    quorum of precommits for a block (any 3 of the 4 validators), so certificates may
    differ while the blocks are the same."""
    if isinstance(document, dict):
        return {k: without_certificates(v) for k, v in document.items() if k != "certificate"}
    if isinstance(document, list):
        return [without_certificates(item) for item in document]
    return document


def verify_checkpoints_within(genesis: Genesis, document) -> None:
    """Every checkpoint (header_raw + certificate) inside an answer verifies."""
    if isinstance(document, dict):
        if "header_raw" in document and "certificate" in document:
            verify_checkpoint(checkpoint_message(document), genesis)
        for value in document.values():
            verify_checkpoints_within(genesis, value)
    elif isinstance(document, list):
        for item in document:
            verify_checkpoints_within(genesis, item)


def test_two_nodes_give_the_same_answers(story):
    with story.rest(0) as first, story.rest(2) as second:
        block_time = first.get("/v1/checkpoint", height=story.height)["header"]["time_ms"]
        for path, params in comparable_queries(story):
            if path == "/v1/blocks":
                # Pages start at each node's own head; the blocks up to `height` must agree.
                assert blocks_upto(first, story.height) == blocks_upto(second, story.height)
                continue
            if path == "/v1/authorization":
                params = {**params, "time_ms": block_time}
                one, two = first.get(path, **params), second.get(path, **params)
                # Each node proves against its own latest checkpoint; the judgement is shared.
                for answer in (one, two):
                    del answer["checkpoint"]
                    for deciding in answer["deciding_events"]:
                        del deciding["proof"]
                assert one == two
                assert one["authorised"] is True
                continue
            one, two = first.get(path, **params), second.get(path, **params)
            for answer in (one, two):
                verify_checkpoints_within(story.genesis, answer)
            assert without_certificates(one) == without_certificates(two), path


def verify_inclusion(genesis: Genesis, event: dict, proof: dict, checkpoint: dict) -> int:
    verify_rest_inclusion(genesis, event, proof, checkpoint)
    return len(checkpoint["certificate"]["signatures"])


def test_what_any_node_says_verifies_against_the_genesis(story):
    for node in (1, 3):
        with story.rest(node) as client:
            answer = client.get(f"/v1/proofs/inclusion/{story.ids['fused']}")
            signers = verify_inclusion(
                story.genesis, answer["event"], answer["proof"], answer["checkpoint"]
            )
            assert signers >= 3  # a quorum of the four validators
            decided = client.get(
                "/v1/authorization",
                member_id="agency-b",
                asset_id=story.assets["health"],
                purpose="audit",
                operation="read",
            )
            assert (decided["authorised"], decided["code"]) == (False, "grant_revoked")
            # Every grant the member holds on the asset decides a refusal: the analytics grant
            # does not cover the purpose, the audit grant was revoked.
            deciding = [(d["role"], d["event"]["event_id"]) for d in decided["deciding_events"]]
            assert deciding == [
                ("registered", story.ids["health"]),
                ("grant_issued", story.ids["grant"]),
                ("grant_issued", story.ids["audit_grant"]),
                ("grant_revoked", story.ids["revoke"]),
            ]
            for deciding in decided["deciding_events"]:
                verify_inclusion(
                    story.genesis, deciding["event"], deciding["proof"], decided["checkpoint"]
                )


def test_member_tokens_read_only_what_concerns_their_member(story):
    exchange = cli_token(story.layout.identities["exchange"], "member")
    with story.rest(3, exchange) as client:
        assert client.error("/v1/assets", 403, asset_id=story.assets["health"]) == "forbidden"
        assert client.error("/v1/events/" + story.ids["health"], 403) == "forbidden"
        assert client.error("/v1/grants", 403, member_id="agency-b") == "forbidden"
        trade = client.get("/v1/trades/one", order_id=story.assets["order"])
        assert trade["order"]["status"] == "settled"
        assert client.get("/v1/events/" + story.ids["offer"])["kind"] == "offer_listed"


def test_an_evidence_bundle_exported_over_rest_verifies_offline(story, tmp_path):
    with story.rest(2) as client:
        response = client.response("/v1/evidence/lineage", asset_id=story.assets["fused"])
        assert response.status_code == 200, response.text
        verified = verify_bundle(response.content, story.genesis)
        assert verified is not None
    out = tmp_path / "lineage.json"
    export = run_cli(
        "evidence",
        "export",
        "--lineage",
        story.assets["fused"],
        "--rest",
        f"http://{story.layout.rest_addresses[1]}",
        "--token",
        story.auditor_token,
        "--genesis",
        str(story.layout.genesis_path),
        "--out",
        str(out),
    )
    assert export.returncode == 0, export.stderr
    check = run_cli("verify", str(out), "--genesis", str(story.layout.genesis_path))
    assert check.returncode == 0, check.stderr


# --- one lineage, every interface ------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SeenAsset:
    """An asset of a lineage as one interface showed it to one reader."""

    redacted: bool
    owner_id: str
    content_digest: str  # hex; empty when redacted
    name: str


def lineage_over_rest(client: RestClient, asset_id: str) -> tuple[dict[str, SeenAsset], set]:
    nodes: dict[str, SeenAsset] = {}
    edges: set[tuple[str, str]] = set()
    cursor = None
    while True:
        page = client.get(
            "/v1/lineage",
            asset_id=asset_id,
            direction="upstream",
            **({"cursor": cursor} if cursor else {}),
        )
        for node in page["nodes"]:
            nodes[node["asset_id"]] = SeenAsset(
                node["redacted"], node["owner_id"], node["content_digest"], node["name"]
            )
        edges |= {(edge["parent"], edge["child"]) for edge in page["edges"]}
        cursor = page["next_cursor"]
        if cursor is None:
            return nodes, edges


def lineage_over_grpc(address: str, token: str, asset_id: str) -> tuple[dict[str, SeenAsset], set]:
    with ledger_client(address, token=token) as client:
        response = client.stub.GetLineage(
            api_pb2.GetLineageRequest(
                asset_id=asset_id, direction=api_pb2.LINEAGE_DIRECTION_UPSTREAM
            ),
            timeout=10,
        )
    redacted = set(response.redacted_asset_ids)
    nodes = {
        asset.asset_id: SeenAsset(
            asset.asset_id in redacted, asset.owner_id, asset.content_digest.hex(), asset.name
        )
        for asset in response.assets
    }
    edges = {(edge.parent_id, edge.child_id) for edge in response.edges}
    assert not response.truncated
    return nodes, edges


def lineage_over_prov(client: RestClient, asset_id: str) -> tuple[dict[str, SeenAsset], set]:
    document = client.get("/v1/prov", asset_id=asset_id, direction="upstream")
    nodes = {}
    for entity in document["entity"].values():
        digest_hex = entity["provledger:contentDigest"]
        owner = entity["provledger:owner"]["$"].split(":", 1)[1]
        label = entity["prov:label"]
        name = "" if label == entity["provledger:assetId"] else label
        nodes[entity["provledger:assetId"]] = SeenAsset(not digest_hex, owner, digest_hex, name)
    prefix = document["prefix"]["asset"]

    def asset_of(qualified: str) -> str:
        from urllib.parse import unquote

        assert qualified.startswith("asset:"), qualified
        return unquote(qualified.removeprefix("asset:"))

    edges = {
        (asset_of(d["prov:usedEntity"]), asset_of(d["prov:generatedEntity"]))
        for d in document["wasDerivedFrom"].values()
    }
    assert prefix.endswith(":asset:")
    return nodes, edges


@pytest.mark.parametrize("reader", ["auditor", "regulator-as-member"])
def test_one_lineage_with_one_redaction_through_grpc_rest_prov_and_the_bundle(story, reader):
    """The regulator bought the fused asset, so as a member it sees that asset whole and its
    parents (agency-a's and agency-b's data, which it has no grant on) only as places in the
    graph. Every interface must show exactly that; the bundle, whose signed events cannot be
    redacted, is whole for an auditor and refused to the member."""
    fused = story.assets["fused"]
    token = (
        story.auditor_token
        if reader == "auditor"
        else cli_token(story.layout.identities["regulator"], "member")
    )
    with story.rest(1, token) as client:
        rest = lineage_over_rest(client, fused)
        prov = lineage_over_prov(client, fused)
        bundle = client.response("/v1/evidence/lineage", asset_id=fused)
    grpc_view = lineage_over_grpc(story.layout.grpc_addresses[2], token, fused)

    nodes, edges = rest
    assert set(nodes) == {fused, story.assets["health"], story.assets["trips"]}
    assert edges == {(story.assets["health"], fused), (story.assets["trips"], fused)}
    assert grpc_view == rest
    prov_nodes, prov_edges = prov
    assert prov_edges == edges
    assert {a: (s.redacted, s.owner_id, s.content_digest) for a, s in prov_nodes.items()} == {
        a: (s.redacted, s.owner_id, s.content_digest) for a, s in nodes.items()
    }
    hidden = {a for a, seen in nodes.items() if seen.redacted}
    if reader == "auditor":
        assert hidden == set()
        assert bundle.status_code == 200, bundle.text
        claims = verify_bundle(bundle.content, story.genesis).claims
        assert {a["asset_id"]: a["content_digest"] for a in claims["assets"]} == {
            a: seen.content_digest for a, seen in nodes.items()
        }
        assert {(e["parent"], e["child"]) for e in claims["edges"]} == edges
    else:
        assert hidden == {story.assets["health"], story.assets["trips"]}
        assert all(nodes[a].content_digest == "" and nodes[a].name == "" for a in hidden)
        assert nodes[fused].content_digest == digest("fused").hex()
        assert bundle.status_code == 403, bundle.text
        assert bundle.json()["error"] == "forbidden"
        assert digest("health").hex() not in bundle.text


def test_a_derived_asset_shows_its_binding_and_the_authorization_answer_applies_it(story):
    """ADR 022: agency-b derived the fused asset under agency-a's grant for analytics, so it
    is bound to analytics; the asset view shows it (REST and gRPC), and its owner is not
    authorised to use it for anything else."""
    fused, grant = story.assets["fused"], story.assets["grant"]
    with story.rest(0) as client:
        asset = client.get("/v1/assets", asset_id=fused)
        health = client.get("/v1/assets", asset_id=story.assets["health"])
        answers = {
            purpose: client.get(
                "/v1/authorization",
                member_id="agency-b",
                asset_id=fused,
                purpose=purpose,
                operation="compute",
            )
            for purpose in ("analytics", "marketing")
        }
    assert (asset["bound_purposes"], asset["bound_by"]) == (["analytics"], [f"grant {grant}"])
    assert (health["bound_purposes"], health["bound_by"]) == ([], [])
    assert (answers["analytics"]["authorised"], answers["analytics"]["code"]) == (True, "owner")
    assert (answers["marketing"]["authorised"], answers["marketing"]["code"]) == (
        False,
        "purpose_not_bound",
    )
    assert "bound by its derivation to analytics" in answers["marketing"]["reason"]
    client_grpc = ledger_client(story.layout.grpc_addresses[1], story.auditor_token)
    try:
        record = client_grpc.stub.GetAsset(api_pb2.GetAssetRequest(asset_id=fused), timeout=10)
    finally:
        client_grpc.close()
    assert (list(record.bound_purposes), list(record.bound_by)) == (
        ["analytics"],
        [f"grant {grant}"],
    )


def test_the_authorization_question_discloses_nothing_lineage_redacts(story):
    """The regulator (as a member) may ask whether it could use agency-a's data; the answer
    must not hand it agency-a's registration event, which /v1/lineage redacts for it."""
    member = cli_token(story.layout.identities["regulator"], "member")
    with story.rest(0, member) as client:
        answer = client.response(
            "/v1/authorization",
            member_id="regulator",
            asset_id=story.assets["health"],
            purpose="analytics",
            operation="read",
        )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["authorised"], body["code"]) == (False, "no_grant")
    assert body["deciding_events"] == [] and body["withheld_events"] == 1
    for secret in (digest("health").hex(), "Hospital records", story.ids["health"]):
        assert secret not in answer.text
    with story.rest(0) as auditor:  # an auditor gets the deciding event itself
        full = auditor.get(
            "/v1/authorization",
            member_id="regulator",
            asset_id=story.assets["health"],
            purpose="analytics",
            operation="read",
        )
    assert [e["event"]["event_id"] for e in full["deciding_events"]] == [story.ids["health"]]
    assert full["withheld_events"] == 0


# --- schemathesis ---------------------------------------------------------------------------


def run_schemathesis(url: str, headers: dict[str, str], fixed: dict[str, dict], examples: int):
    """Every GET operation of the live schema, `examples` generated cases each; `fixed` pins
    some query or path parameters per operation path (the rest is generated)."""
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json", timeout=30)
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        pinned = fixed.get(operation.path)
        if fixed and pinned is None:
            continue
        strategy = operation.as_strategy(
            headers=headers,
            query=(pinned or {}).get("query"),
            path_parameters=(pinned or {}).get("path"),
        )

        @hypothesis.settings(
            max_examples=examples,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @hypothesis.given(case=strategy)
        def check(case) -> None:
            response = case.call(base_url=url, headers=headers, timeout=30)
            case.validate_response(response, checks=CHECKS, headers=headers)

        check()
        operations += 1
    return operations


def test_schemathesis_finds_no_server_error_and_no_answer_outside_the_schema(story):
    url = f"http://{story.layout.rest_addresses[0]}"
    headers = {"Authorization": f"Bearer {story.auditor_token}"}
    random_operations = run_schemathesis(url, headers, {}, RANDOM_EXAMPLES)
    # every GET route: governance, forks, cases, offers, customs, case files, health live/ready
    assert random_operations == 34
    assets, ids = story.assets, story.ids
    fixed = {
        "/v1/assets": {"query": {"asset_id": assets["health"]}},
        "/v1/assets/history": {"query": {"asset_id": assets["health"]}},
        "/v1/lineage": {"query": {"asset_id": assets["fused"]}},
        "/v1/prov": {"query": {"asset_id": assets["fused"]}},
        "/v1/grants/one": {"query": {"grant_id": assets["audit_grant"]}},
        "/v1/trades/one": {"query": {"order_id": assets["order"]}},
        "/v1/authorization": {"query": {"member_id": "agency-b", "asset_id": assets["health"]}},
        "/v1/events/{event_id}": {"path": {"event_id": ids["use"]}},
        "/v1/proofs/inclusion/{event_id}": {"path": {"event_id": ids["use"]}},
        "/v1/evidence/trade": {"query": {"order_id": assets["order"]}},
    }
    assert run_schemathesis(url, headers, fixed, STORY_EXAMPLES) == len(fixed)


def test_no_node_logged_a_server_error(story):
    """Runs last: nothing any test sent made a node log a failure of its REST API."""
    for node in story.cluster:
        text = Path(node.log_path).read_text(errors="replace")
        lines = text.splitlines()
        assert not [line for line in lines if " provledger.rest: " in line], node.log_tail()
        # The access log (provledger.rest.access) writes every request: none answered 5xx.
        answered = [line for line in lines if " provledger.rest.access: " in line]
        assert answered, node.log_tail()
        assert not [line for line in answered if " status=5" in line], node.log_tail()
        assert "Exception in ASGI application" not in text, node.log_tail()

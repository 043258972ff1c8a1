"""The web explorer in a real browser, against a real four-node consortium.

The consortium is started as `provledger node run` processes; a provenance story is told
through the gRPC API (two registrations, a grant, a fusion, a use under the grant, and a trade
listed, ordered, delivered and settled), each step sent to a different node. Then Debian's
Chromium, driven by Playwright, opens node-0's REST address with an auditor token (from
`provledger token issue`) in the URL fragment, as `provledger demo --serve` would print it, and
the test checks what an auditor sees: the consortium's height, the fused asset's layered
lineage graph, classifications, timeline, trade, the grant on a parent reached by clicking it
in the graph, and evidence bundles downloaded from the page that `provledger verify` accepts
against the genesis file.
A second tab with a bad token, then an unknown asset, must show readable messages. A broker
then joins by governance and lists the bus trips under agency-b's mandate (one listing later
delisted): the Market page lists the offers with their asset, seller, broker, classification,
price and status, filters them, pages through them and opens an offer's asset.

The browser is never downloaded: the test uses /usr/bin/chromium and skips (or fails under
CI=...) when it is missing. A full-page screenshot is kept at tests/artifacts/explorer.png.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest
from support.processes import NodeCluster, ledger_client, running_nodes
from support.rest_support import RestClient, cli_token, init_rest_consortium, run_cli, wait_until

from provledger.cli.client import EventSigner, Identity, LedgerClient
from provledger.node.config import NodeConfig
from provledger.protocol import crypto
from provledger.protocol.blocks import decode_header
from provledger.protocol.crypto import SigningKey
from provledger.protocol.rules import governance_sign_bytes
from provledger.v1 import api_pb2, ledger_pb2

pytestmark = pytest.mark.integration

CHROMIUM_PATH = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
NODES = 4
REST_START_TIMEOUT_S = 30.0
COMMIT_TIMEOUT_S = 30.0
BROWSER_TIMEOUT_MS = 20_000
TOKEN_TTL_S = 3_600
DAY_MS = 24 * 3600 * 1000
ARTIFACTS_DIR = Path(__file__).resolve().parents[1] / "artifacts"
SCREENSHOT_PATH = ARTIFACTS_DIR / "explorer.png"

CLINIC = "health/clinic-visits-2021"
BUS = "transport/bus-trips-2021"
FUSED = "fused/mobility-health-2021"
GRANT = "grant/clinic-to-transport"
OFFER = "offer/mobility-health"
ORDER = "order/1"
MISSING_ASSET = "nowhere/no-such-asset"
COMPLAINT = "complaint/misdescribed"
CASE = "case/2021-001"
BROKER = "broker-x"
BROKER_KEY = SigningKey.from_seed(hashlib.sha256(b"explorer broker-x").digest())
MANDATE = "mandate/bus-trips"
OFFER_BUS = "offer/bus-trips"
OFFER_BUS_OLD = "offer/bus-trips-first"


def _require_browser() -> None:
    """Skip (or fail under CI) without Chromium or Playwright; never download a browser."""
    missing = None
    if not CHROMIUM_PATH.is_file():
        missing = f"{CHROMIUM_PATH} is missing (apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = "the playwright Python package is not installed"
    if missing is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"the explorer browser test needs a browser: {missing}", pytrace=False)
    pytest.skip(f"explorer browser test: {missing}")


# --- the consortium and its story ---------------------------------------------------------


def digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def rest_address(config: Path) -> str:
    """The `[rest] listen` address of a node's config (consortium init writes one)."""
    address = NodeConfig.load(config).rest_listen
    assert address is not None, f"{config} has no [rest] listen: the node serves no REST API"
    return address


def rest_answers(client: RestClient) -> bool:
    try:
        return client.response("/v1/health").status_code == 200
    except httpx.HTTPError:
        return False


class RoundRobin:
    """Sends each event to the next node in turn and waits for its commit.

    A node checks an event against the state it has committed, so before an event goes to a
    node, that node is given time to commit the block the previous event landed in (the next
    step of the story depends on it: an order on its offer, a delivery on its order)."""

    def __init__(self, addresses: list[str]) -> None:
        self.clients = [ledger_client(address) for address in addresses]
        self.turn = 0
        self.height = 0

    def commit(self, signed: ledger_pb2.SignedEvent) -> int:
        client = self.clients[self.turn % len(self.clients)]
        self.turn += 1
        wait_until(
            lambda: node_height(client) >= self.height,
            COMMIT_TIMEOUT_S,
            f"{client.address} reaching height {self.height}",
        )
        self.height = client.submit_and_wait(signed).height
        return self.height

    def close(self) -> None:
        for client in self.clients:
            client.close()


def node_height(client: LedgerClient) -> int:
    """The node's head height (0 before its first block)."""
    try:
        checkpoint = client.stub.GetCheckpoint(api_pb2.GetCheckpointRequest(), timeout=5)
    except grpc.RpcError as error:
        if error.code() == grpc.StatusCode.FAILED_PRECONDITION:  # empty_chain
            return 0
        raise
    return decode_header(checkpoint.header).height


def tell_story(addresses: list[str], identities: dict[str, Path]) -> int:
    """The provenance story; returns the height of its last commit."""
    signer = {member: EventSigner(Identity.load(path)) for member, path in identities.items()}
    now_ms = time.time_ns() // 1_000_000
    sender = RoundRobin(addresses)
    try:
        sender.commit(
            signer["agency-a"].event(
                "asset_registered", asset_id=CLINIC, content_digest=digest("clinic visits"),
                classification=ledger_pb2.CLASSIFICATION_IMPORTANT, name="Clinic visits 2021",
            )
        )  # fmt: skip
        sender.commit(
            signer["agency-b"].event(
                "asset_registered", asset_id=BUS, content_digest=digest("bus trips"),
                classification=ledger_pb2.CLASSIFICATION_GENERAL, name="Bus trips 2021",
            )
        )  # fmt: skip
        sender.commit(
            signer["agency-a"].event(
                "grant_issued", grant_id=GRANT, asset_id=CLINIC, grantee_id="agency-b",
                purposes=["epidemic-modelling"],
                operations=[ledger_pb2.OPERATION_DERIVE, ledger_pb2.OPERATION_COMPUTE],
                expires_at_ms=now_ms + 30 * DAY_MS, no_cross_border=True,
            )
        )  # fmt: skip
        sender.commit(
            signer["agency-b"].event(
                "asset_derived", asset_id=FUSED, parent_ids=[CLINIC, BUS], activity="fusion",
                grant_ids=[GRANT], content_digest=digest("fused"),
                classification=ledger_pb2.CLASSIFICATION_CORE, name="Mobility and health 2021",
            )
        )  # fmt: skip
        sender.commit(
            signer["agency-b"].event(
                "asset_used", asset_id=CLINIC, grant_id=GRANT, purpose="epidemic-modelling",
                operation=ledger_pb2.OPERATION_COMPUTE,
            )
        )  # fmt: skip
        sender.commit(
            signer["exchange"].event(
                "offer_listed", offer_id=OFFER, asset_id=FUSED, seller_id="agency-b",
                price=1_200_000, currency="CNY", terms="research licence, 1 year",
            )
        )  # fmt: skip
        sender.commit(signer["agency-a"].event("order_placed", order_id=ORDER, offer_id=OFFER))
        sender.commit(
            signer["agency-b"].event(
                "order_delivered", order_id=ORDER, delivery_digest=digest("delivered package")
            )
        )
        sender.commit(
            signer["exchange"].event(
                "order_settled", order_id=ORDER, settlement_reference="bank-transfer-0001"
            )
        )
        return tell_market_story(sender, signer, now_ms)
    finally:
        sender.close()


def tell_case(addresses: list[str], identities: dict[str, Path]) -> int:
    """A case about the story's order: the buyer complains that the data was misdescribed,
    the regulator opens a case, records a hearing and rules with a warning to the seller.
    Returns the height of its last commit."""
    signer = {member: EventSigner(Identity.load(path)) for member, path in identities.items()}
    sender = RoundRobin(addresses)
    warning = ledger_pb2.Remedy(
        warning=ledger_pb2.Warning(member_id="agency-b", text="describe what you sell")
    )
    try:
        sender.commit(
            signer["agency-a"].event(
                "complaint_filed", complaint_id=COMPLAINT,
                subject_kind=ledger_pb2.COMPLAINT_SUBJECT_ORDER, subject_id=ORDER,
                respondent_id="agency-b", statement_digest=digest("statement"),
                evidence_digests=[digest("the delivered package")], category="misdescribed",
            )
        )  # fmt: skip
        sender.commit(
            signer["regulator"].event(
                "case_opened", case_id=CASE, complaint_ids=[COMPLAINT], summary="misdescription"
            )
        )
        sender.commit(
            signer["regulator"].event(
                "case_step_recorded", case_id=CASE, step="hearing", note="both parties heard"
            )
        )
        return sender.commit(
            signer["regulator"].event(
                "case_ruled", case_id=CASE, outcome=ledger_pb2.RULING_OUTCOME_PARTLY_UPHELD,
                findings="the description overstated the coverage",
                decision_digest=digest("decision"), remedies=[warning],
            )
        )  # fmt: skip
    finally:
        sender.close()


def tell_market_story(sender: RoundRobin, signer: dict[str, EventSigner], now_ms: int) -> int:
    """A broker joins by governance, is qualified, and lists the bus trips for agency-b under
    its mandate, twice; agency-b delists the older listing. Returns the last commit's height."""
    chain_id = signer["agency-a"].identity.chain_id
    change = ledger_pb2.GovernanceChange(
        proposal_nonce=time.time_ns(),
        member_added=ledger_pb2.MemberAdded(
            member_id=BROKER, name="Licensed Data Broker", role=ledger_pb2.ROLE_BROKER,
            public_key=BROKER_KEY.public_key,
        ),
    )  # fmt: skip
    change_bytes = change.SerializeToString(deterministic=True)
    message = governance_sign_bytes(chain_id, change_bytes)
    approvals = [
        ledger_pb2.Approval(
            approver=ledger_pb2.Author(member_id=member, key_id=each.identity.key.key_id),
            signature=each.identity.key.sign(crypto.DOMAIN_GOVERNANCE, message),
        )
        for member, each in signer.items()
    ]
    sender.commit(signer["agency-a"].event("governance", change=change_bytes, approvals=approvals))
    broker = EventSigner(Identity(BROKER, "broker", chain_id, BROKER_KEY))
    sender.commit(
        signer["regulator"].event(
            "broker_qualified", qualification_id="qualification/broker-x", broker_id=BROKER,
            scope="transport data", expires_at_ms=now_ms + 30 * DAY_MS,
        )
    )  # fmt: skip
    sender.commit(
        signer["agency-b"].event(
            "mandate_granted", mandate_id=MANDATE, broker_id=BROKER, asset_ids=[BUS],
            expires_at_ms=now_ms + 30 * DAY_MS, price_floor=10_000,
        )
    )  # fmt: skip
    for offer_id, price, title in (
        (OFFER_BUS, 45_000, "Bus trips 2021, by route"),
        (OFFER_BUS_OLD, 30_000, "Bus trips 2021, first release"),
    ):
        sender.commit(
            broker.event(
                "offer_listed", offer_id=offer_id, asset_id=BUS, seller_id="agency-b",
                price=price, currency="CNY", title=title, mandate_id=MANDATE,
                exchange_id="exchange",
            )
        )  # fmt: skip
    return sender.commit(
        signer["agency-b"].event("offer_delisted", offer_id=OFFER_BUS_OLD, reason="superseded")
    )


@dataclass(frozen=True)
class Ledger:
    cluster: NodeCluster
    rest: RestClient  # node-0's REST API with the auditor token: the node the browser opens
    token: str  # an auditor token, from `provledger token issue`
    genesis_path: Path
    story_height: int

    @property
    def rest_url(self) -> str:
        return self.rest.base_url


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ledger]:
    _require_browser()
    directory = tmp_path_factory.mktemp("explorer")
    layout = init_rest_consortium(directory, nodes=NODES, chain_id="provledger-explorer")
    address = rest_address(layout.node_configs[0])
    with running_nodes(layout, directory) as cluster:
        probe = RestClient(address)
        try:
            wait_until(lambda: rest_answers(probe), REST_START_TIMEOUT_S, f"REST on {address}")
        finally:
            probe.close()
        tell_story(layout.grpc_addresses, layout.identities)
        story_height = tell_case(layout.grpc_addresses, layout.identities)
        token = cli_token(layout.identities["auditor"], "auditor", ttl_s=TOKEN_TTL_S)
        with RestClient(address, token) as rest:
            # node-0 may commit the last block a moment after the node that answered.
            wait_until(
                lambda: rest.height() >= story_height,
                COMMIT_TIMEOUT_S,
                f"node-0 reaching height {story_height}",
            )
            yield Ledger(cluster, rest, token, layout.genesis_path, story_height)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory, ledger: Ledger):
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM_PATH),
            args=CHROMIUM_ARGS,
            headless=True,
            accept_downloads=True,
            viewport={"width": 1280, "height": 900},
        )
        context.set_default_timeout(BROWSER_TIMEOUT_MS)
        try:
            yield context
        finally:
            context.close()


class ConsoleWatch:
    """Console errors and uncaught exceptions (unhandled rejections among them) of a page."""

    def __init__(self, page) -> None:
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))

    def _console(self, message) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text}")


def verify_bundle_file(path: Path, genesis: Path):
    """`provledger verify FILE --genesis genesis.json`, as an auditor runs it offline."""
    return run_cli("verify", str(path), "--genesis", str(genesis))


# --- the tests ----------------------------------------------------------------------------


def test_explorer_shows_the_provenance_story(ledger: Ledger, browser, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    page = browser.new_page()
    console = ConsoleWatch(page)
    page.goto(f"{ledger.rest_url}/#token={ledger.token}")

    # The token moved to the tab's storage, out of the address bar.
    expect(page.locator("#health-chain-id")).to_have_text("provledger-explorer")
    assert ledger.token not in page.url
    assert page.evaluate("() => sessionStorage.length") == 1

    # Consortium health: the current height, and the checkpoint's signers.
    expect(page.locator("#health-height")).to_have_text(re.compile(r"^\d+$"))
    shown_height = int(page.locator("#health-height").inner_text())
    status = ledger.rest.get("/v1/status")
    assert ledger.story_height <= shown_height <= status["height"]
    assert page.locator("#health-node-id").inner_text() == "node-0"
    expect(page.locator("#health-validators li[data-signed=true]")).not_to_have_count(0)
    signed = page.locator("#health-validators li[data-signed=true]").count()
    assert signed >= status["quorum_size"]
    assert page.locator("#health-validators li").count() == NODES

    # Search by keyboard: type the id, press Enter.
    page.locator("#search-input").fill(FUSED)
    page.locator("#search-input").press("Enter")
    expect(page.locator("#asset-heading")).to_have_text("Asset: Mobility and health 2021")

    # The record, with its classification shown as a badge.
    expect(page.locator("#asset-badges .badge--core")).to_have_text("core")
    facts = page.locator("#asset-facts").inner_text()
    assert "agency-b" in facts and CLINIC in facts and BUS in facts and "fusion" in facts

    # The lineage graph: three assets, two derivations, upstream to the left of the asset.
    graph = page.locator("svg#lineage-graph")
    expect(graph).to_be_visible()
    nodes = graph.locator("a.node")
    expect(nodes).to_have_count(3)
    expect(graph.locator("path.edge")).to_have_count(2)
    edges = {
        (edge.get_attribute("data-parent"), edge.get_attribute("data-child"))
        for edge in graph.locator("path.edge").all()
    }
    assert edges == {(CLINIC, FUSED), (BUS, FUSED)}
    classification = {
        node.get_attribute("data-asset-id"): node.get_attribute("data-classification")
        for node in nodes.all()
    }
    assert classification == {CLINIC: "important", BUS: "general", FUSED: "core"}
    for asset_id, label in ((CLINIC, "IMPORTANT"), (BUS, "GENERAL"), (FUSED, "CORE")):
        node = graph.locator(f'a.node[data-asset-id="{asset_id}"]')
        expect(node.locator("text.node__class")).to_have_text(label)
    boxes = {
        asset_id: graph.locator(f'a.node[data-asset-id="{asset_id}"] rect').bounding_box()
        for asset_id in (CLINIC, BUS, FUSED)
    }
    assert boxes[CLINIC]["x"] < boxes[FUSED]["x"] and boxes[BUS]["x"] < boxes[FUSED]["x"]
    assert graph.locator("a.node.node--root").get_attribute("data-asset-id") == FUSED

    # The timeline: the asset's events in log order, as the API lists them.
    history = ledger.rest.get("/v1/assets/history", asset_id=FUSED, limit=500)["items"]
    entries = page.locator("#history-list > li[data-kind]")
    expect(entries).to_have_count(len(history))
    assert [entry.get_attribute("data-kind") for entry in entries.all()] == [
        item["kind"] for item in history
    ]
    assert [item["kind"] for item in history][:2] == ["asset_derived", "offer_listed"]
    first_entry = entries.first.inner_text()
    assert "asset derived" in first_entry and "by agency-b" in first_entry
    assert f"height {history[0]['height']}" in first_entry

    # The trade, settled, with its life cycle.
    trade = page.locator(f'#trades-list article.trade[data-order-id="{ORDER}"]')
    expect(trade).to_have_attribute("data-status", "settled")
    expect(trade.locator(".badge")).to_have_text("settled")
    steps = trade.locator(".trade__cycle li")
    expect(steps).to_have_count(4)
    assert [step.get_attribute("data-kind") for step in steps.all()] == [
        "offer_listed", "order_placed", "order_delivered", "order_settled",
    ]  # fmt: skip
    order = ledger.rest.get("/v1/trades/one", order_id=ORDER)["order"]
    assert [step.get_attribute("data-event-id") for step in steps.all()] == order["event_ids"]
    assert "12000.00 CNY" in trade.inner_text()

    # Evidence: the lineage bundle and the trade bundle, downloaded through the page.
    for button, name in (
        (page.locator("#download-lineage"), "lineage.json"),
        (trade.locator("button.button--evidence"), "trade.json"),
    ):
        with page.expect_download() as download_info:
            button.click()
        path = tmp_path / name
        download_info.value.save_as(path)
        result = verify_bundle_file(path, ledger.genesis_path)
        assert result.returncode == 0, f"{name}: {result.stdout}\n{result.stderr}"
    lineage_bundle = json.loads((tmp_path / "lineage.json").read_text())
    assert lineage_bundle["kind"] == "lineage"
    assert lineage_bundle["subject"] == {"asset_id": FUSED}
    assert len(lineage_bundle["events"]) == 3
    expect(page.locator("#message")).to_contain_text("Downloaded")
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT_PATH), full_page=True)

    # Clicking a parent in the graph opens it: its grant and the use under it.
    graph.locator(f'a.node[data-asset-id="{CLINIC}"]').click()
    expect(page.locator("#asset-heading")).to_have_text("Asset: Clinic visits 2021")
    assert page.url.endswith("#asset=" + CLINIC.replace("/", "%2F"))
    expect(page.locator("#asset-badges .badge--important")).to_have_text("important")
    expect(page.locator("svg#lineage-graph a.node")).to_have_count(2)  # itself and its child
    clinic_graph = page.locator("svg#lineage-graph")
    child_box = clinic_graph.locator(f'a.node[data-asset-id="{FUSED}"] rect').bounding_box()
    root_box = clinic_graph.locator(f'a.node[data-asset-id="{CLINIC}"] rect').bounding_box()
    assert root_box["x"] < child_box["x"]  # downstream to the right
    grant = page.locator(f'#grants-body tr[data-grant-id="{GRANT}"]')
    expect(grant).to_have_count(1)
    grant_text = grant.inner_text().lower()  # badges are upper-cased by the stylesheet
    for expected in ("agency-a", "agency-b", "epidemic-modelling", "derive", "compute",
                     "no cross-border", "active"):  # fmt: skip
        assert expected in grant_text, f"{expected!r} not in the grant row: {grant_text!r}"
    kinds = [e.get_attribute("data-kind") for e in page.locator("#history-list > li").all()]
    assert kinds == ["asset_registered", "grant_issued", "asset_derived", "asset_used"]
    expect(page.locator("#trades-list")).to_contain_text("no trades")

    # The back button returns to the fused asset.
    page.go_back()
    expect(page.locator("#asset-heading")).to_have_text("Asset: Mobility and health 2021")

    # The graph works from the keyboard: a node is a link; Enter opens it.
    page.locator(f'svg#lineage-graph a.node[data-asset-id="{BUS}"]').focus()
    page.keyboard.press("Enter")
    expect(page.locator("#asset-heading")).to_have_text("Asset: Bus trips 2021")
    expect(page.locator("#asset-badges .badge--general")).to_have_text("general")

    assert console.errors == []
    page.close()


def test_explorer_shows_a_case_timeline(ledger: Ledger, browser, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    page = browser.new_page()
    console = ConsoleWatch(page)
    page.goto(f"{ledger.rest_url}/#token={ledger.token}")
    expect(page.locator("#health-chain-id")).to_have_text("provledger-explorer")

    # The cases the token may read are listed; one is opened from the form.
    expect(page.locator(f'#case-list li[data-case-id="{CASE}"]')).to_contain_text("ruled")
    page.locator("#case-input").fill(CASE)
    page.locator("#case-input").press("Enter")
    expect(page.locator("#case-heading")).to_have_text(f"Case {CASE}")
    assert page.url.endswith("#case=" + CASE.replace("/", "%2F"))
    expect(page.locator("#case-badges")).to_have_attribute("data-status", "ruled")
    facts = page.locator("#case-facts").inner_text()
    assert "agency-a" in facts and "agency-b" in facts and "partly upheld" in facts
    expect(page.locator(f'#case-complaints li[data-complaint-id="{COMPLAINT}"]')).to_contain_text(
        f"agency-a against agency-b about order {ORDER} (misdescribed)"
    )

    # The timeline: the case's events in log order, each in the words the API gives.
    answer = ledger.rest.get("/v1/cases/one", case_id=CASE)
    entries = page.locator("#case-timeline > li[data-kind]")
    expect(entries).to_have_count(4)
    assert [entry.get_attribute("data-kind") for entry in entries.all()] == [
        "complaint_filed", "case_opened", "case_step_recorded", "case_ruled",
    ]  # fmt: skip
    assert [entry.get_attribute("data-event-id") for entry in entries.all()] == [
        item["event_id"] for item in answer["timeline"]
    ]
    summaries = [entry.locator(".case-summary").inner_text() for entry in entries.all()]
    assert summaries == [item["summary"] for item in answer["timeline"]]
    assert summaries[3].startswith(
        "ruled partly upheld by regulator: warning to agency-b: describe what you sell"
    )

    # The case file, downloaded from the case view, verifies offline and tells the timeline.
    with page.expect_download() as download_info:
        page.locator("#download-case").click()
    path = tmp_path / "case.json"
    download_info.value.save_as(path)
    result = verify_bundle_file(path, ledger.genesis_path)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    assert result.stdout.startswith(f"VERIFIED case evidence for case_id {CASE}")
    assert summaries[3] in result.stdout
    expect(page.locator("#message")).to_contain_text("Downloaded the case file")
    assert console.errors == []
    page.close()

    # The case's events join the history of the asset traded, and lead back to the case.
    page = browser.new_page()  # a new tab: its sessionStorage holds no token
    console = ConsoleWatch(page)
    page.goto(f"{ledger.rest_url}/#token={ledger.token}&asset={FUSED.replace('/', '%2F')}")
    ruled = page.locator('#history-list > li[data-kind="case_ruled"]')
    expect(ruled).to_have_count(1)
    expect(page.locator("#case-view")).to_be_hidden()
    ruled.locator("a.case-link").click()
    expect(page.locator("#case-heading")).to_have_text(f"Case {CASE}")
    assert page.url.endswith("#case=" + CASE.replace("/", "%2F"))
    assert console.errors == []
    page.close()


def test_explorer_explains_a_bad_token_and_an_unknown_asset(ledger: Ledger, browser) -> None:
    from playwright.sync_api import expect

    page = browser.new_page()  # a new tab: its sessionStorage holds no token
    console = ConsoleWatch(page)
    page.goto(f"{ledger.rest_url}/#token=not-a-token.at-all&asset={FUSED.replace('/', '%2F')}")
    message = page.locator("#message")
    expect(message).to_be_visible()
    expect(message).to_contain_text("did not accept the access token")
    expect(message).to_contain_text("provledger token issue")
    expect(page.locator("#results")).to_be_hidden()
    expect(page.locator("#health-state")).to_contain_text("did not accept")

    # With a good token pasted in, an unknown asset is a readable "not found".
    page.locator("#token-input").fill(ledger.token)
    page.locator("#token-form button[type=submit]").click()
    expect(page.locator("#results")).to_be_visible()  # the fused asset from the fragment
    expect(message).to_be_hidden()
    page.locator("#search-input").fill(MISSING_ASSET)
    page.locator("#search-form button[type=submit]").click()
    expect(message).to_contain_text(f"Not found: asset {MISSING_ASSET}")
    expect(page.locator("#results")).to_be_hidden()

    # The only console errors are the browser's own reports of the 401 and 404 answers.
    unexpected = [
        error for error in console.errors
        if not re.search(r"Failed to load resource: .*status of (401|404)", error)
    ]  # fmt: skip
    assert unexpected == []
    assert any("401" in error for error in console.errors)
    page.close()


def market_rows(page) -> list[str]:
    return [
        row.get_attribute("data-offer-id")
        for row in page.locator("#market-body tr[data-offer-id]").all()
    ]


def test_explorer_market_page_lists_filters_and_pages_offers(ledger: Ledger, browser) -> None:
    from playwright.sync_api import expect

    page = browser.new_page()
    console = ConsoleWatch(page)
    page.goto(f"{ledger.rest_url}/#token={ledger.token}&market")
    expect(page.locator("#market")).to_be_visible()
    expect(page.locator("#search")).to_be_hidden()
    assert page.locator("#tab-market").get_attribute("aria-current") == "page"

    # Every offer, by offer id, as the API lists it.
    rows = page.locator("#market-body tr[data-offer-id]")
    expect(rows).to_have_count(3)
    assert market_rows(page) == [OFFER_BUS, OFFER_BUS_OLD, OFFER]
    listed = ledger.rest.get("/v1/offers")["items"]
    assert [item["offer_id"] for item in listed] == market_rows(page)

    # Each offer shows its asset, seller, broker, classification, price and status.
    brokered = page.locator(f'#market-body tr[data-offer-id="{OFFER_BUS}"]')
    text = brokered.inner_text()
    for expected in (BUS, "Bus trips 2021, by route", "agency-b", BROKER, "exchange", "450.00 CNY"):
        assert expected in text, f"{expected!r} not in the row: {text!r}"
    expect(brokered.locator(".badge--general")).to_have_text("general")
    expect(brokered.locator(".badge--listed")).to_have_text("listed")
    direct = page.locator(f'#market-body tr[data-offer-id="{OFFER}"]')
    expect(direct.locator(".offer-broker")).to_have_text("none (exchange listing)")
    expect(direct.locator(".badge--core")).to_have_text("core")
    expect(direct.locator(".offer-price")).to_have_text("12000.00 CNY")
    withdrawn = page.locator(f'#market-body tr[data-offer-id="{OFFER_BUS_OLD}"]')
    expect(withdrawn).to_have_attribute("data-status", "delisted")
    assert "agency-b" in (withdrawn.locator(".badge--delisted").get_attribute("title") or "")

    # Filters: by broker and status, by title words, by classification, by price.
    page.locator("#market-broker").fill(BROKER)
    page.locator("#market-status").select_option("listed")
    page.locator("#market-form button[type=submit]").click()
    expect(rows).to_have_count(1)
    assert market_rows(page) == [OFFER_BUS]
    page.locator("#market-form button[type=reset]").click()
    expect(rows).to_have_count(3)
    page.locator("#market-q").fill("BUS release")
    page.locator("#market-q").press("Enter")
    expect(rows).to_have_count(1)
    assert market_rows(page) == [OFFER_BUS_OLD]
    page.locator("#market-q").fill("")
    page.locator("#market-classification").select_option("core")
    page.locator("#market-form button[type=submit]").click()
    expect(rows.first).to_have_attribute("data-offer-id", OFFER)
    assert market_rows(page) == [OFFER]
    page.locator("#market-classification").select_option("")
    page.locator("#market-price-min").fill("30000")
    page.locator("#market-price-max").fill("45000")
    page.locator("#market-form button[type=submit]").click()
    expect(rows).to_have_count(2)
    assert market_rows(page) == [OFFER_BUS, OFFER_BUS_OLD]
    page.locator("#market-form button[type=reset]").click()
    expect(rows).to_have_count(3)

    # Paging: one offer a page, forward to the end and back.
    page.locator("#market-limit").fill("1")
    page.locator("#market-form button[type=submit]").click()
    seen = []
    for number in (1, 2, 3):
        expect(page.locator("#market-page")).to_have_text(f"page {number}, 1 offer")
        seen += market_rows(page)
        if number < 3:
            page.locator("#market-next").click()
    assert seen == [OFFER_BUS, OFFER_BUS_OLD, OFFER]
    expect(page.locator("#market-next")).to_be_disabled()
    page.locator("#market-previous").click()
    expect(page.locator("#market-page")).to_have_text("page 2, 1 offer")
    assert market_rows(page) == [OFFER_BUS_OLD]

    # An offer's asset opens the asset page.
    page.locator(f'#market-body tr[data-offer-id="{OFFER_BUS_OLD}"] a.asset-link').click()
    expect(page.locator("#asset-heading")).to_have_text("Asset: Bus trips 2021")
    expect(page.locator("#market")).to_be_hidden()
    assert page.locator("#tab-assets").get_attribute("aria-current") == "page"
    page.locator("#tab-market").click()
    expect(page.locator("#market")).to_be_visible()
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS_DIR / "explorer-market.png"), full_page=True)
    assert console.errors == []
    page.close()

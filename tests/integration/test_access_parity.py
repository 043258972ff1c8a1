"""One access policy, two APIs: every gRPC read, for every kind of reader, answers what the
auditor REST API answers that reader.

The issue's done-when line: "An anonymous client on the gRPC port reads nothing but health and
reflection. A member's token reads exactly what REST lets it read, shown by one test that runs
every query through both APIs."

A one-node consortium is told a provenance story that walks every rule path of
protocol/access.py: assets owned, held (shared, bought), made (registered, then transferred
away) and granted; a derivation readable only through the asset it creates (the parents'
owners see it in the lineage, redacted, and not in their assets' history); grants issued and
revoked; a settled trade and a disputed one resolved by the regulator; an asset certificate
issued and revoked; a retired asset; and a governance event that adds a member, which every
member sees (the added member, concerned by nothing else, is one of the readers).

The market's catalogue (GetOffer, ListOffers paged) is asked the same way: every member reads
it.

Then each reader (each member with a `member` token, the auditor and the regulator with an
`auditor` token, no token, and tokens that do not verify) asks every gRPC read about every
subject of the story (and unknown ones), and the same question over REST. Both answers are
classified (allowed with content, unauthenticated, forbidden, not found) with their error
code, and the allowed contents normalised from the two wire shapes into one; every
disagreement is collected and the test fails listing them all. The one documented difference
is asserted as such: whole blocks (GetBlock, SubscribeBlocks) are an auditor's read over gRPC,
while REST /v1/blocks/{h} shows any token holder the header and event ids. Every event body
gRPC hands out is also checked to be one REST hands the same reader.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from support.processes import NodeCluster, client_channel, ledger_client, wait_until
from support.rest_support import RestClient, init_rest_consortium

from provledger.cli.client import EventSigner, Identity
from provledger.cli.consortium import ConsortiumLayout
from provledger.protocol import crypto
from provledger.protocol.access import REDACTED_ASSET_FIELDS
from provledger.protocol.blocks import decode_header
from provledger.protocol.crypto import SigningKey
from provledger.protocol.events import event_id
from provledger.protocol.limits import LINEAGE_DEPTH_DEFAULT
from provledger.protocol.rules import governance_sign_bytes
from provledger.protocol.tokens import ROLE_AUDITOR, ROLE_MEMBER, issue_token
from provledger.v1 import api_pb2, api_pb2_grpc, ledger_pb2, state_pb2

pytestmark = pytest.mark.integration

RPC_TIMEOUT_S = 20.0
COMMIT_TIMEOUT_MS = 30_000
READY_TIMEOUT_S = 60.0
DAY_MS = 24 * 3_600_000
TOKEN_TTL_MS = 3_600_000
PAGE_ITEMS = 2  # history and lineage pages this small, so that both APIs page
SHALLOW_DEPTH = 1  # a lineage depth that cuts the story's deeper graphs
BEYOND_HEAD = 2**62  # a height no block has
UNKNOWN_EVENT = hashlib.sha256(b"no such event").digest()
UNKNOWN_ID = "nothing/here"
MEMBERS = ("agency-a", "agency-b", "exchange", "regulator", "auditor")
ADDED_MEMBER = "lab-c"  # added by the story's governance event
ADDED_MEMBER_KEY = SigningKey.from_seed(hashlib.sha256(b"access parity lab-c").digest())

ALLOWED = "allowed"
ANONYMOUS = ("unauthenticated", "missing_token")  # what every read answers without a token
WHOLE_UPSTREAM = f"GetLineage/upstream/depth{LINEAGE_DEPTH_DEFAULT}"
WHOLE_DOWNSTREAM = f"GetLineage/downstream/depth{LINEAGE_DEPTH_DEFAULT}"
REST_KINDS = {401: "unauthenticated", 403: "forbidden", 404: "not_found"}
GRPC_KINDS = {
    grpc.StatusCode.UNAUTHENTICATED: "unauthenticated",
    grpc.StatusCode.PERMISSION_DENIED: "forbidden",
    grpc.StatusCode.NOT_FOUND: "not_found",
}


def digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# --- the story ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Story:
    layout: ConsortiumLayout
    chain_id: str
    events: dict[str, bytes]  # step name -> event id
    height: int  # every event of the story is committed at or below it
    assets: dict[str, str]  # role in the story -> asset id
    grants: dict[str, str]
    orders: dict[str, str]
    offers: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def grpc_address(self) -> str:
        return self.layout.grpc_addresses[0]

    @property
    def rest_address(self) -> str:
        return self.layout.rest_addresses[0]


Step = tuple[str, str, str, dict[str, Any]]  # (name, author, kind, payload fields)


def step(name: str, author: str, kind: str, /, **fields: Any) -> Step:
    return name, author, kind, fields


def story_waves(layout: ConsortiumLayout, ids: dict[str, str]) -> list[list[Step]]:
    """The story as waves: the events of a wave are independent of each other and need only
    those of earlier waves committed, so each wave is submitted at once."""
    important, general = ledger_pb2.CLASSIFICATION_IMPORTANT, ledger_pb2.CLASSIFICATION_GENERAL
    read, derive = ledger_pb2.OPERATION_READ, ledger_pb2.OPERATION_DERIVE
    expires = now_ms() + DAY_MS

    def registered(asset: str, author: str, classification: int) -> Step:
        return step(
            asset,
            author,
            "asset_registered",
            asset_id=ids[asset],
            content_digest=digest(asset),
            name=asset.title(),
            classification=classification,
        )

    def derived(asset: str, author: str, parents: list[str], **fields: Any) -> Step:
        return step(
            asset,
            author,
            "asset_derived",
            asset_id=ids[asset],
            content_digest=digest(asset),
            name=asset.title(),
            classification=important,
            parent_ids=[ids[p] for p in parents],
            **fields,
        )

    return [
        [
            registered("health", "agency-a", important),
            registered("trips", "agency-b", general),
            registered("survey", "agency-a", general),
            registered("roads", "agency-b", general),
            step("governance", "agency-a", "governance", **governance_fields(layout)),
        ],
        [
            step(
                "grant",
                "agency-a",
                "grant_issued",
                grant_id=ids["grant"],
                asset_id=ids["health"],
                grantee_id="agency-b",
                purposes=["analytics"],
                operations=[read, derive],
                expires_at_ms=expires,
            ),
            step(
                "audit_grant",
                "agency-a",
                "grant_issued",
                grant_id=ids["audit_grant"],
                asset_id=ids["health"],
                grantee_id="agency-b",
                purposes=["audit"],
                operations=[read],
                expires_at_ms=expires,
            ),
            derived("model", "agency-a", ["health"], activity="modelling"),
            step(
                "share", "agency-a", "asset_shared", asset_id=ids["survey"], recipient_id="exchange"
            ),
            step(
                "transfer",
                "agency-b",
                "asset_transferred",
                asset_id=ids["roads"],
                new_owner_id="agency-a",
            ),
            step(
                "offer2",
                "exchange",
                "offer_listed",
                offer_id=ids["offer2"],
                asset_id=ids["trips"],
                seller_id="agency-b",
                price=700,
                currency="CNY",
            ),
            step(
                "certify",
                "regulator",
                "certificate_issued",
                certificate_id=ids["certificate"],
                asset_id=ids["trips"],
                scope="quality",
            ),
        ],
        [
            derived(
                "fused",
                "agency-b",
                ["health", "trips"],
                activity="fusion",
                grant_ids=[ids["grant"]],
            ),
            step(
                "use",
                "agency-b",
                "asset_used",
                asset_id=ids["health"],
                grant_id=ids["grant"],
                purpose="analytics",
                operation=read,
            ),
            step("revoke", "agency-a", "grant_revoked", grant_id=ids["audit_grant"]),
            step(
                "order2", "agency-a", "order_placed", order_id=ids["order2"], offer_id=ids["offer2"]
            ),
            step(
                "uncertify", "regulator", "certificate_revoked", certificate_id=ids["certificate"]
            ),
            step("retire", "agency-a", "asset_retired", asset_id=ids["survey"], reason="old"),
        ],
        [
            derived("report", "agency-b", ["fused"], activity="reporting"),
            step(
                "offer",
                "exchange",
                "offer_listed",
                offer_id=ids["offer"],
                asset_id=ids["fused"],
                seller_id="agency-b",
                price=5_000,
                currency="CNY",
            ),
            step(
                "dispute",
                "agency-a",
                "dispute_opened",
                dispute_id=ids["dispute"],
                order_id=ids["order2"],
                reason="late",
            ),
        ],
        [
            step(
                "order", "regulator", "order_placed", order_id=ids["order"], offer_id=ids["offer"]
            ),
            step(
                "resolve",
                "regulator",
                "dispute_resolved",
                dispute_id=ids["dispute"],
                outcome=ledger_pb2.DISPUTE_OUTCOME_FOR_BUYER,
                resolution="refund",
            ),
        ],
        [
            step(
                "deliver",
                "agency-b",
                "order_delivered",
                order_id=ids["order"],
                delivery_digest=digest("delivery"),
            ),
        ],
        [step("settle", "exchange", "order_settled", order_id=ids["order"])],
    ]


def governance_fields(layout: ConsortiumLayout) -> dict[str, Any]:
    """A change adding ADDED_MEMBER, approved by every member."""
    identities = {m: Identity.load(layout.identities[m]) for m in MEMBERS}
    chain_id = identities["agency-a"].chain_id
    added = ledger_pb2.MemberAdded(
        member_id=ADDED_MEMBER,
        name="Survey Lab",
        role=ledger_pb2.ROLE_AGENCY,
        public_key=ADDED_MEMBER_KEY.public_key,
    )
    change = ledger_pb2.GovernanceChange(proposal_nonce=time.time_ns(), member_added=added)
    change_bytes = change.SerializeToString(deterministic=True)
    message = governance_sign_bytes(chain_id, change_bytes)
    approvals = [
        ledger_pb2.Approval(
            approver=ledger_pb2.Author(member_id=member, key_id=identity.key.key_id),
            signature=identity.key.sign(crypto.DOMAIN_GOVERNANCE, message),
        )
        for member, identity in identities.items()
    ]
    return {"change": change_bytes, "approvals": approvals}


ASSETS = ("health", "trips", "survey", "roads", "fused", "model", "report")
GRANTS = ("grant", "audit_grant")
ORDERS = ("order", "order2")


def tell_the_story(layout: ConsortiumLayout) -> Story:
    suffix = str(now_ms())
    names = (*ASSETS, *GRANTS, *ORDERS, "offer", "offer2", "dispute", "certificate")
    ids = {name: f"{name}/{suffix}" for name in names}
    signers = {m: EventSigner(Identity.load(layout.identities[m])) for m in MEMBERS}
    events: dict[str, bytes] = {}
    height = 0
    with ledger_client(layout.grpc_addresses[0]) as client:
        for wave in story_waves(layout, ids):
            # Each event of a wave is admitted against the committed state; all are awaited
            # together, each call with its own deadline.
            pending: list[tuple[str, Future]] = [
                (
                    name,
                    client.stub.SubmitAndWait.future(
                        api_pb2.SubmitAndWaitRequest(
                            event=signers[author].event(kind, **fields),
                            timeout_ms=COMMIT_TIMEOUT_MS,
                        ),
                        timeout=COMMIT_TIMEOUT_MS / 1000 + RPC_TIMEOUT_S,
                    ),
                )
                for name, author, kind, fields in wave
            ]
            for name, future in pending:
                try:
                    receipt = future.result()
                except grpc.RpcError as error:
                    raise AssertionError(f"story step {name}: {error.details()}") from None
                events[name] = receipt.event_id
                height = max(height, receipt.height)
    return Story(
        layout=layout,
        chain_id=signers["agency-a"].identity.chain_id,
        events=events,
        height=height,
        assets={name: ids[name] for name in ASSETS},
        grants={name: ids[name] for name in GRANTS},
        orders={name: ids[name] for name in ORDERS},
        offers={name: ids[name] for name in ("offer", "offer2")},
    )


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    directory = tmp_path_factory.mktemp("access-parity")
    layout = init_rest_consortium(directory, 1)
    with NodeCluster.for_layout(layout, directory / "logs"):
        with RestClient(layout.rest_addresses[0]) as anonymous:

            def rest_up() -> bool:
                try:
                    return anonymous.response("/v1/health").status_code == 200
                except httpx.TransportError:  # not listening yet
                    return False

            wait_until(rest_up, READY_TIMEOUT_S, "the REST API answering /v1/health")
        yield tell_the_story(layout)


def rest_client(story: Story, token: str | None) -> RestClient:
    """A REST client on one kept-alive connection."""
    return RestClient(story.rest_address, token)


# --- readers -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Reader:
    name: str
    token: str | None
    auditor: bool = False  # reads with a token whose role is auditor


def token_for(
    story: Story,
    member_id: str,
    role: str,
    *,
    chain_id: str | None = None,
    issued_at_ms: int | None = None,
    key: SigningKey | None = None,
) -> str:
    if key is None:
        key = Identity.load(story.layout.identities[member_id]).key
    return issue_token(
        key,
        member_id,
        role,
        chain_id or story.chain_id,
        now_ms() if issued_at_ms is None else issued_at_ms,
        TOKEN_TTL_MS,
    )


def readers(story: Story) -> list[Reader]:
    members = [Reader(f"{m}/member", token_for(story, m, ROLE_MEMBER)) for m in MEMBERS]
    added = token_for(story, ADDED_MEMBER, ROLE_MEMBER, key=ADDED_MEMBER_KEY)
    return [
        *members,
        Reader(f"{ADDED_MEMBER}/member", added),
        Reader("auditor/auditor", token_for(story, "auditor", ROLE_AUDITOR), auditor=True),
        Reader("regulator/auditor", token_for(story, "regulator", ROLE_AUDITOR), auditor=True),
        Reader("anonymous", None),
        Reader(
            "agency-a/other-chain",
            token_for(story, "agency-a", ROLE_MEMBER, chain_id="another-chain"),
        ),
        Reader(
            "auditor/expired",
            token_for(story, "auditor", ROLE_AUDITOR, issued_at_ms=now_ms() - 2 * TOKEN_TTL_MS),
        ),
    ]


# --- answers, as classes with normalised content -----------------------------------------


@dataclasses.dataclass(frozen=True)
class Answer:
    kind: str  # allowed, unauthenticated, forbidden, not_found, or the status otherwise
    code: str  # the error code; "" when allowed
    content: Any = None  # normalised, when allowed

    def brief(self) -> str:
        return self.kind if self.kind == ALLOWED else f"{self.kind} {self.code}"


def rest_refusal(response) -> Answer:
    try:
        code = response.json().get("error", "")
    except ValueError:
        code = response.text[:80]
    return Answer(REST_KINDS.get(response.status_code, f"http_{response.status_code}"), code)


def grpc_refusal(error: grpc.RpcError) -> Answer:
    code = (error.details() or "").split(":", 1)[0]
    return Answer(GRPC_KINDS.get(error.code(), f"grpc_{error.code().name}"), code)


def rest_get(client: RestClient, path: str, normalise: Callable[[dict], Any], **params) -> Answer:
    response = client.response(path, **params)
    if response.status_code != 200:
        return rest_refusal(response)
    return Answer(ALLOWED, "", normalise(response.json()))


def grpc_get(call: Callable[[], Any], normalise: Callable[[Any], Any]) -> Answer:
    try:
        response = call()
    except grpc.RpcError as error:
        return grpc_refusal(error)
    return Answer(ALLOWED, "", normalise(response))


def enum_word(enum_type, number: int) -> str:
    """An enum value as REST writes it: the lower-case name without the type's prefix."""
    name = enum_type.Name(number)
    prefix = "".join("_" + c if c.isupper() else c for c in enum_type.DESCRIPTOR.name)
    return name.removeprefix(prefix.upper().lstrip("_") + "_").lower()


def certificate_from_rest(view: dict) -> tuple:
    return (
        view["height"],
        view["round"],
        view["block_id"],
        tuple((s["validator_id"], s["signature"]) for s in view["signatures"]),
    )


def certificate_from_grpc(certificate: ledger_pb2.CommitCertificate) -> tuple:
    return (
        certificate.height,
        certificate.round,
        certificate.block_id.hex(),
        tuple((s.validator_id, s.signature.hex()) for s in certificate.signatures),
    )


def checkpoint_from_rest(view: dict) -> dict:
    return {
        "height": view["height"],
        "header": view["header_raw"],
        "certificate": certificate_from_rest(view["certificate"]),
    }


def checkpoint_from_grpc(checkpoint: ledger_pb2.Checkpoint) -> dict:
    return {
        "height": decode_header(checkpoint.header).height,
        "header": checkpoint.header.hex(),
        "certificate": certificate_from_grpc(checkpoint.certificate),
    }


def event_from_rest(view: dict) -> dict:
    return {
        "event_id": view["event_id"],
        "kind": view["kind"],
        "author": view["author"]["member_id"],
        "body": view["body"],
        "signature": view["signature"],
    }


def event_from_grpc(signed: ledger_pb2.SignedEvent) -> dict:
    event = ledger_pb2.Event()
    event.ParseFromString(signed.body)
    return {
        "event_id": event_id(signed.body).hex(),
        "kind": event.WhichOneof("payload") or "",
        "author": event.author.member_id,
        "body": signed.body.hex(),
        "signature": signed.signature.hex(),
    }


def located_from_rest(view: dict) -> dict:
    return {**event_from_rest(view), "height": view["height"], "log_index": view["log_index"]}


def located_from_grpc(signed: ledger_pb2.SignedEvent, height: int, log_index: int) -> dict:
    return {**event_from_grpc(signed), "height": height, "log_index": log_index}


def asset_from_rest(view: dict) -> dict:
    return {
        "asset_id": view["asset_id"],
        "owner_id": view["owner_id"],
        "classification": view["classification"],
        "content_digest": view["content_digest"],
        "name": view["name"],
        "parent_ids": tuple(view["parent_ids"]),
        "activity": view["activity"],
        "origin_event_id": view["origin_event_id"],
        "retired": view["retired"],
        "holder_ids": tuple(view["holder_ids"]),
        "no_cross_border_by": view["no_cross_border_by"],
        "bound_purposes": tuple(view["bound_purposes"]),
        "bound_by": tuple(view["bound_by"]),
        "redacted": view["redacted"],
    }


def asset_from_grpc(asset: state_pb2.AssetRecord, redacted: bool = False) -> dict:
    return {
        "asset_id": asset.asset_id,
        "owner_id": asset.owner_id,
        "classification": enum_word(ledger_pb2.Classification, asset.classification),
        "content_digest": asset.content_digest.hex(),
        "name": asset.name,
        "parent_ids": tuple(asset.parent_ids),
        "activity": asset.activity,
        "origin_event_id": asset.origin_event_id.hex(),
        "retired": asset.retired,
        "holder_ids": tuple(asset.holder_ids),
        "no_cross_border_by": asset.no_cross_border_by,
        "bound_purposes": tuple(asset.bound_purposes),
        "bound_by": tuple(asset.bound_by),
        "redacted": redacted,
    }


def grant_from_rest(detail: dict) -> dict:
    grant = detail["grant"]
    return {
        "grant_id": grant["grant_id"],
        "asset_id": grant["asset_id"],
        "grantor_id": grant["grantor_id"],
        "grantee_id": grant["grantee_id"],
        "purposes": tuple(grant["purposes"]),
        "operations": tuple(grant["operations"]),
        "expires_at_ms": grant["expires_at_ms"],
        "no_cross_border": grant["no_cross_border"],
        "revoked": grant["revoked"],
        "revoked_at_ms": grant["revoked_at_ms"],
        "event_id": grant["event_id"],
    }


def grant_from_grpc(record: state_pb2.GrantRecord) -> dict:
    grant = record.grant
    return {
        "grant_id": grant.grant_id,
        "asset_id": grant.asset_id,
        "grantor_id": record.grantor_id,
        "grantee_id": grant.grantee_id,
        "purposes": tuple(grant.purposes),
        "operations": tuple(enum_word(ledger_pb2.Operation, o) for o in grant.operations),
        "expires_at_ms": grant.expires_at_ms,
        "no_cross_border": grant.no_cross_border,
        "revoked": record.revoked,
        "revoked_at_ms": record.revoked_at_ms if record.revoked else None,
        "event_id": record.event_id.hex(),
    }


def order_from_rest(detail: dict) -> dict:
    order = detail["order"]
    return {
        "order_id": order["order_id"],
        "offer_id": order["offer_id"],
        "buyer_id": order["buyer_id"],
        "seller_id": order["seller_id"],
        "exchange_id": order["exchange_id"],
        "status": order["status"],
        "status_before_dispute": order["status_before_dispute"],
        "delivery_digest": order["delivery_digest"],
        "dispute_id": order["dispute_id"],
        "event_ids": tuple(order["event_ids"]),
    }


def order_from_grpc(order: state_pb2.OrderRecord) -> dict:
    status = state_pb2.OrderStatus
    return {
        "order_id": order.order_id,
        "offer_id": order.offer_id,
        "buyer_id": order.buyer_id,
        "seller_id": order.seller_id,
        "exchange_id": order.exchange_id,
        "status": enum_word(status, order.status),
        "status_before_dispute": (
            enum_word(status, order.status_before_dispute) if order.status_before_dispute else None
        ),
        "delivery_digest": order.delivery_digest.hex() if order.delivery_digest else None,
        "dispute_id": order.dispute_id or None,
        "event_ids": tuple(identifier.hex() for identifier in order.event_ids),
    }


def offer_from_rest(view: dict) -> dict:
    return {
        key: view[key]
        for key in (
            "offer_id", "asset_id", "asset_name", "classification", "seller_id", "broker_id",
            "mandate_id", "exchange_id", "title", "price", "currency", "terms", "status",
            "event_id",
        )
    }  # fmt: skip


def offer_from_grpc(view: api_pb2.OfferView) -> dict:
    record = view.record
    offer = record.offer
    return {
        "offer_id": offer.offer_id,
        "asset_id": offer.asset_id,
        "asset_name": view.asset_name,
        "classification": enum_word(ledger_pb2.Classification, view.classification),
        "seller_id": offer.seller_id,
        "broker_id": record.broker_id or None,
        "mandate_id": offer.mandate_id or None,
        "exchange_id": record.exchange_id,
        "title": offer.title,
        "price": offer.price,
        "currency": offer.currency,
        "terms": offer.terms,
        "status": enum_word(state_pb2.OfferStatus, view.status),
        "event_id": record.event_id.hex(),
    }


def block_from_rest(view: dict, with_certificate: bool = True) -> dict:
    shown = {
        "header": view["header_raw"],
        "event_ids": tuple(view["event_ids"]),
        "last_commit": (
            certificate_from_rest(view["last_commit"]) if view["last_commit"] else None
        ),
        "evidence_count": view["evidence_count"],
    }
    if with_certificate:
        shown["certificate"] = certificate_from_rest(view["certificate"])
    return shown


def block_from_grpc(block: ledger_pb2.Block, certificate=None) -> dict:
    shown = {
        "header": block.header.hex(),
        "event_ids": tuple(event_id(signed.body).hex() for signed in block.events),
        "last_commit": (
            certificate_from_grpc(block.last_commit) if block.HasField("last_commit") else None
        ),
        "evidence_count": len(block.evidence),
    }
    if certificate is not None:
        shown["certificate"] = certificate_from_grpc(certificate)
    return shown


def lineage_content(nodes: list[dict], edges: set[tuple[str, str]], truncated: bool) -> dict:
    """A lineage: its assets in the order listed (the root first, then breadth-first), each
    as shown (redacted or not), its edges and whether it was cut."""
    return {
        "order": tuple(node["asset_id"] for node in nodes),
        "nodes": {node["asset_id"]: node for node in nodes},
        "edges": frozenset(edges),
        "truncated": truncated,
    }


# --- the queries, each through both APIs -------------------------------------------------


class Asker:
    """One reader's gRPC stub and REST client, and every question asked both ways. Each
    method returns (REST answer, gRPC answer); gRPC event bodies handed out are noted in
    `handed_out` (event id -> body, hex)."""

    def __init__(self, channel: grpc.Channel, rest: RestClient) -> None:
        self.stub = api_pb2_grpc.LedgerServiceStub(channel)
        self.rest = rest
        self.handed_out: dict[str, str] = {}

    def _note(self, answer: Answer, shown: list[dict]) -> Answer:
        if answer.kind == ALLOWED:
            self.handed_out.update((event["event_id"], event["body"]) for event in shown)
        return answer

    def event(self, identifier: bytes) -> tuple[Answer, Answer]:
        rest = rest_get(self.rest, f"/v1/events/{identifier.hex()}", located_from_rest)
        request = api_pb2.GetEventRequest(event_id=identifier)
        answer = grpc_get(
            lambda: self.stub.GetEvent(request, timeout=RPC_TIMEOUT_S),
            lambda r: located_from_grpc(r.event, r.height, r.log_index),
        )
        return rest, self._note(answer, [answer.content] if answer.content else [])

    def inclusion(self, identifier: bytes, height: int) -> tuple[Answer, Answer]:
        def from_rest(view: dict) -> dict:
            proof = view["proof"]
            return {
                "event": event_from_rest(view["event"]),
                "proof": (
                    proof["leaf_index"],
                    proof["tree_size"],
                    proof["leaf_hash"],
                    tuple(proof["hashes"]),
                ),
                "checkpoint": checkpoint_from_rest(view["checkpoint"]),
            }

        def from_grpc(response: api_pb2.GetInclusionProofResponse) -> dict:
            proof = response.proof
            return {
                "event": event_from_grpc(response.event),
                "proof": (
                    proof.leaf_index,
                    proof.tree_size,
                    proof.leaf_hash.hex(),
                    tuple(h.hex() for h in proof.hashes),
                ),
                "checkpoint": checkpoint_from_grpc(response.checkpoint),
            }

        rest = rest_get(
            self.rest, f"/v1/proofs/inclusion/{identifier.hex()}", from_rest, height=height
        )
        request = api_pb2.GetInclusionProofRequest(event_id=identifier, height=height)
        answer = grpc_get(
            lambda: self.stub.GetInclusionProof(request, timeout=RPC_TIMEOUT_S), from_grpc
        )
        return rest, self._note(answer, [answer.content["event"]] if answer.content else [])

    def asset(self, asset_id: str) -> tuple[Answer, Answer]:
        rest = rest_get(self.rest, "/v1/assets", asset_from_rest, asset_id=asset_id)
        request = api_pb2.GetAssetRequest(asset_id=asset_id)
        return rest, grpc_get(
            lambda: self.stub.GetAsset(request, timeout=RPC_TIMEOUT_S), asset_from_grpc
        )

    def history(self, asset_id: str) -> tuple[Answer, Answer]:
        """Every page, PAGE_ITEMS events a page, through both: the pages' events compared."""
        pages: list[tuple[dict, ...]] = []
        cursor = None
        while True:
            response = self.rest.response(
                "/v1/assets/history", asset_id=asset_id, cursor=cursor, limit=PAGE_ITEMS
            )
            if response.status_code != 200:
                rest = rest_refusal(response)
                if pages:
                    rest = dataclasses.replace(rest, code=f"{rest.code} (page {len(pages)})")
                break
            page = response.json()
            pages.append(tuple(located_from_rest(item) for item in page["items"]))
            cursor = page["next_cursor"]
            if cursor is None:
                rest = Answer(ALLOWED, "", tuple(pages))
                break
        pages = []
        after: int | None = None
        while True:
            request = api_pb2.GetAssetHistoryRequest(
                asset_id=asset_id,
                limit=PAGE_ITEMS,
                after_log_index=after or 0,
                has_cursor=after is not None,
            )
            try:
                response = self.stub.GetAssetHistory(request, timeout=RPC_TIMEOUT_S)
            except grpc.RpcError as error:
                answer = grpc_refusal(error)
                if pages:
                    answer = dataclasses.replace(answer, code=f"{answer.code} (page {len(pages)})")
                break
            entries = response.entries
            for entry in entries:
                assert entry.event_id == event_id(entry.event.body), "entry id is not its body's"
            pages.append(tuple(located_from_grpc(e.event, e.height, e.log_index) for e in entries))
            if not response.more:
                answer = Answer(ALLOWED, "", tuple(pages))
                break
            after = entries[-1].log_index
        shown = [event for page in pages for event in page]
        return rest, self._note(answer, shown)

    def lineage(self, asset_id: str, upstream: bool, depth: int) -> tuple[Answer, Answer]:
        """The whole graph through both (REST in pages of PAGE_ITEMS nodes): assets in order,
        each with what it shows and whether it is redacted, edges, and whether it was cut."""
        direction = "upstream" if upstream else "downstream"
        nodes: list[dict] = []
        edges: set[tuple[str, str]] = set()
        truncated = False
        cursor = None
        pages = 0
        while True:
            response = self.rest.response(
                "/v1/lineage",
                asset_id=asset_id,
                direction=direction,
                depth=depth,
                cursor=cursor,
                limit=PAGE_ITEMS,
            )
            if response.status_code != 200:
                rest = rest_refusal(response)
                if pages:
                    rest = dataclasses.replace(rest, code=f"{rest.code} (page {pages})")
                break
            page = response.json()
            pages += 1
            nodes += [asset_from_rest(node) for node in page["nodes"]]
            edges |= {(edge["parent"], edge["child"]) for edge in page["edges"]}
            truncated = truncated or page["truncated"]
            cursor = page["next_cursor"]
            if cursor is None:
                rest = Answer(ALLOWED, "", lineage_content(nodes, edges, truncated))
                break

        def from_grpc(response: api_pb2.GetLineageResponse) -> dict:
            redacted = set(response.redacted_asset_ids)
            return lineage_content(
                [asset_from_grpc(a, a.asset_id in redacted) for a in response.assets],
                {(e.parent_id, e.child_id) for e in response.edges},
                response.truncated,
            )

        request = api_pb2.GetLineageRequest(
            asset_id=asset_id,
            direction=(
                api_pb2.LINEAGE_DIRECTION_UPSTREAM
                if upstream
                else api_pb2.LINEAGE_DIRECTION_DOWNSTREAM
            ),
            depth=depth,
        )
        return rest, grpc_get(
            lambda: self.stub.GetLineage(request, timeout=RPC_TIMEOUT_S), from_grpc
        )

    def grant(self, grant_id: str) -> tuple[Answer, Answer]:
        rest = rest_get(self.rest, "/v1/grants/one", grant_from_rest, grant_id=grant_id)
        request = api_pb2.GetGrantRequest(grant_id=grant_id)
        return rest, grpc_get(
            lambda: self.stub.GetGrant(request, timeout=RPC_TIMEOUT_S), grant_from_grpc
        )

    def order(self, order_id: str) -> tuple[Answer, Answer]:
        rest = rest_get(self.rest, "/v1/trades/one", order_from_rest, order_id=order_id)
        request = api_pb2.GetOrderRequest(order_id=order_id)
        return rest, grpc_get(
            lambda: self.stub.GetOrder(request, timeout=RPC_TIMEOUT_S), order_from_grpc
        )

    def offer(self, offer_id: str) -> tuple[Answer, Answer]:
        rest = rest_get(self.rest, "/v1/offers/one", offer_from_rest, offer_id=offer_id)
        request = api_pb2.GetOfferRequest(offer_id=offer_id)
        return rest, grpc_get(
            lambda: self.stub.GetOffer(request, timeout=RPC_TIMEOUT_S), offer_from_grpc
        )

    def offers(self) -> tuple[Answer, Answer]:
        """The whole catalogue, PAGE_ITEMS offers a page, through both."""
        rest_items: list[dict] = []
        cursor = None
        while True:
            response = self.rest.response("/v1/offers", cursor=cursor, limit=PAGE_ITEMS)
            if response.status_code != 200:
                rest = rest_refusal(response)
                break
            page = response.json()
            rest_items += [offer_from_rest(item) for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                rest = Answer(ALLOWED, "", tuple(o["offer_id"] for o in rest_items))
                break
        grpc_items: list[dict] = []
        after = ""
        while True:
            request = api_pb2.ListOffersRequest(limit=PAGE_ITEMS, after_offer_id=after)
            answer = grpc_get(
                lambda r=request: self.stub.ListOffers(r, timeout=RPC_TIMEOUT_S), lambda r: r
            )
            if answer.kind != ALLOWED:
                return rest, answer
            grpc_items += [offer_from_grpc(view) for view in answer.content.offers]
            after = answer.content.next_after_offer_id
            if not answer.content.more:
                break
        if rest.kind == ALLOWED and rest_items != grpc_items:
            return rest, Answer(ALLOWED, "", ("differs", tuple(o["offer_id"] for o in grpc_items)))
        return rest, Answer(ALLOWED, "", tuple(o["offer_id"] for o in grpc_items))

    def checkpoint(self, height: int) -> tuple[Answer, Answer]:
        rest = rest_get(self.rest, "/v1/checkpoint", checkpoint_from_rest, height=height)
        request = api_pb2.GetCheckpointRequest(height=height)
        return rest, grpc_get(
            lambda: self.stub.GetCheckpoint(request, timeout=RPC_TIMEOUT_S),
            checkpoint_from_grpc,
        )

    def consistency(self, first: int, second: int) -> tuple[Answer, Answer]:
        def from_rest(view: dict) -> dict:
            proof = view["proof"]
            return {
                "proof": (proof["first_size"], proof["second_size"], tuple(proof["hashes"])),
                "first": checkpoint_from_rest(view["first"]),
                "second": checkpoint_from_rest(view["second"]),
            }

        def from_grpc(response: api_pb2.GetConsistencyProofResponse) -> dict:
            proof = response.proof
            return {
                "proof": (
                    proof.first_size,
                    proof.second_size,
                    tuple(h.hex() for h in proof.hashes),
                ),
                "first": checkpoint_from_grpc(response.first),
                "second": checkpoint_from_grpc(response.second),
            }

        rest = rest_get(self.rest, "/v1/proofs/consistency", from_rest, first=first, second=second)
        request = api_pb2.GetConsistencyProofRequest(first_height=first, second_height=second)
        return rest, grpc_get(
            lambda: self.stub.GetConsistencyProof(request, timeout=RPC_TIMEOUT_S), from_grpc
        )

    def _block_bodies(self, answer: Answer, block: ledger_pb2.Block | None) -> Answer:
        if answer.kind == ALLOWED and block is not None:
            self._note(answer, [event_from_grpc(signed) for signed in block.events])
        return answer

    def block(self, height: int) -> tuple[Answer, Answer]:
        rest = rest_get(self.rest, f"/v1/blocks/{height}", block_from_rest)
        received: list[ledger_pb2.Block] = []

        def from_grpc(response: api_pb2.GetBlockResponse) -> dict:
            received.append(response.block)
            return block_from_grpc(response.block, response.certificate)

        request = api_pb2.GetBlockRequest(height=height)
        answer = grpc_get(lambda: self.stub.GetBlock(request, timeout=RPC_TIMEOUT_S), from_grpc)
        return rest, self._block_bodies(answer, received[0] if received else None)

    def subscription(self, height: int) -> tuple[Answer, Answer]:
        """SubscribeBlocks from `height` (a committed one): its first message."""
        rest = rest_get(
            self.rest, f"/v1/blocks/{height}", lambda v: block_from_rest(v, with_certificate=False)
        )
        stream = self.stub.SubscribeBlocks(
            api_pb2.SubscribeBlocksRequest(from_height=height), timeout=RPC_TIMEOUT_S
        )
        received: list[ledger_pb2.Block] = []

        def first() -> dict:
            received.append(next(stream))
            return block_from_grpc(received[0])

        try:
            answer = grpc_get(first, lambda shown: shown)
        finally:
            stream.cancel()
        return rest, self._block_bodies(answer, received[0] if received else None)


def expected_block_answer(reader: Reader, rest: Answer) -> Answer:
    """What gRPC must answer for a whole block, given what REST /v1/blocks/{h} answers the
    same reader. The documented difference (protocol/access.py, `sees_block_events`): a block
    carries every member's event bodies, so gRPC gives it to an auditor's token only, while
    REST gives any token holder its header and event ids (no content). An unauthenticated
    caller is refused alike; a member's token is refused every block, even one that does not
    exist."""
    if reader.auditor or rest.kind == "unauthenticated":
        return rest
    return Answer("forbidden", "blocks_need_auditor")


# --- comparing ---------------------------------------------------------------------------


def difference(rest: Any, grpc_content: Any, path: str = "") -> list[str]:
    """Where two normalised contents differ, as short lines."""
    if isinstance(rest, dict) and isinstance(grpc_content, dict):
        lines = []
        for key in sorted(set(rest) | set(grpc_content), key=str):
            lines += difference(rest.get(key), grpc_content.get(key), f"{path}.{key}")
        return lines
    if (
        isinstance(rest, tuple)
        and isinstance(grpc_content, tuple)
        and len(rest) == len(grpc_content)
    ):
        lines = []
        for index, (one, two) in enumerate(zip(rest, grpc_content, strict=True)):
            lines += difference(one, two, f"{path}[{index}]")
        return lines
    if rest != grpc_content:
        return [f"{path or '.'}: REST {str(rest)[:160]} / gRPC {str(grpc_content)[:160]}"]
    return []


def compare(where: str, expected: Answer, grpc_answer: Answer, source: str = "REST") -> list[str]:
    """The class and code must be the same; and the content, when allowed."""
    if (expected.kind, expected.code) != (grpc_answer.kind, grpc_answer.code):
        return [f"{where}: {source} {expected.brief()} / gRPC {grpc_answer.brief()}"]
    if expected.kind != ALLOWED:
        return []
    return [f"{where}: {line}" for line in difference(expected.content, grpc_answer.content)]


def redaction_leaks(reader: Reader, subject: str, answer: Answer) -> list[str]:
    """A lineage both APIs agree on must still leave out what redaction hides."""
    if answer.kind != ALLOWED:
        return []
    return [
        f"{reader.name} GetLineage {subject}: redacted {node['asset_id']} shows {hidden}"
        for node in answer.content["nodes"].values()
        if node["redacted"]
        for hidden in REDACTED_ASSET_FIELDS
        if node[hidden] not in ("", ())
    ]


def questions(story: Story) -> list[tuple[str, str, Callable[[Asker], tuple[Answer, Answer]]]]:
    """Every (query, subject) asked of every reader, with how to ask it both ways."""
    head = story.height
    events = {**story.events, "unknown": UNKNOWN_EVENT}
    assets = {**story.assets, "unknown": UNKNOWN_ID}
    asked: list[tuple[str, str, Callable[[Asker], tuple[Answer, Answer]]]] = []
    for name, identifier in events.items():
        asked.append(("GetEvent", name, lambda a, i=identifier: a.event(i)))
        # Beyond the head too: a proof's height must say nothing to a caller who may not
        # read its event, nor to one without a token.
        for height, label in ((head, f"@{head}"), (BEYOND_HEAD, "@beyond-head")):
            asked.append(
                (
                    "GetInclusionProof",
                    f"{name}{label}",
                    lambda a, i=identifier, h=height: a.inclusion(i, h),
                )
            )
    for name, asset_id in assets.items():
        asked.append(("GetAsset", name, lambda a, i=asset_id: a.asset(i)))
        asked.append(("GetAssetHistory", name, lambda a, i=asset_id: a.history(i)))
        for upstream in (True, False):
            for depth in (LINEAGE_DEPTH_DEFAULT, SHALLOW_DEPTH):
                query = f"GetLineage/{'upstream' if upstream else 'downstream'}/depth{depth}"
                asked.append(
                    (query, name, lambda a, i=asset_id, u=upstream, d=depth: a.lineage(i, u, d))
                )
    for name, grant_id in {**story.grants, "unknown": UNKNOWN_ID}.items():
        asked.append(("GetGrant", name, lambda a, i=grant_id: a.grant(i)))
    for name, order_id in {**story.orders, "unknown": UNKNOWN_ID}.items():
        asked.append(("GetOrder", name, lambda a, i=order_id: a.order(i)))
    for name, offer_id in {**story.offers, "unknown": UNKNOWN_ID}.items():
        asked.append(("GetOffer", name, lambda a, i=offer_id: a.offer(i)))
    asked.append(("ListOffers", "catalogue", lambda a: a.offers()))
    for height in [*range(1, head + 1), BEYOND_HEAD]:
        label = "beyond-head" if height == BEYOND_HEAD else str(height)
        asked.append(("GetCheckpoint", label, lambda a, h=height: a.checkpoint(h)))
        asked.append(("GetBlock", label, lambda a, h=height: a.block(h)))
        if height != BEYOND_HEAD:  # a subscription from beyond the head waits for blocks
            asked.append(("SubscribeBlocks", label, lambda a, h=height: a.subscription(h)))
            asked.append(
                (
                    "GetConsistencyProof",
                    f"{label}..{head}",
                    lambda a, h=height: a.consistency(h, head),
                )
            )
    asked.append(("GetConsistencyProof", "1..beyond-head", lambda a: a.consistency(1, BEYOND_HEAD)))
    return asked


def judge(reader: Reader, query: str, subject: str, rest: Answer, answer: Answer) -> list[str]:
    """What is wrong with gRPC's answer to one (reader, query, subject), given REST's."""
    where = f"{reader.name} {query} {subject}"
    if query in ("GetBlock", "SubscribeBlocks"):
        expected = expected_block_answer(reader, rest)
        source = "REST" if expected is rest else f"REST {rest.brief()}, so expected"
        problems = compare(where, expected, answer, source)
    else:
        problems = compare(where, rest, answer)
    if query.startswith("GetLineage"):
        problems += redaction_leaks(reader, f"{query} {subject}", answer)
        problems += redaction_leaks(reader, f"{query} {subject} (REST)", rest)
    # An anonymous client reads nothing (but health and reflection), whatever REST says.
    if reader.token is None and not problems and (answer.kind, answer.code) != ANONYMOUS:
        problems.append(f"anonymous {query} {subject}: gRPC {answer.brief()}")
    return problems


# Answers REST must give, so that the story is known to walk each rule path of the policy
# (reader, query, subject, kind): parity alone would also hold if everyone were refused.
RULE_PATHS = [
    ("agency-b/member", "GetAsset", "health", ALLOWED),  # a grant's grantee
    ("exchange/member", "GetAsset", "survey", ALLOWED),  # a holder (shared with it)
    ("regulator/member", "GetAsset", "fused", ALLOWED),  # a holder (bought it)
    ("agency-b/member", "GetAsset", "roads", ALLOWED),  # registered it, then transferred it
    ("agency-a/member", "GetAsset", "roads", ALLOWED),  # its owner now
    ("exchange/member", "GetAsset", "health", "forbidden"),
    ("agency-a/member", "GetEvent", "fused", "forbidden"),  # a parent's owner: not the event
    ("agency-a/member", "GetEvent", "use", ALLOWED),  # a use of its asset
    ("lab-c/member", "GetEvent", "governance", ALLOWED),  # governance concerns every member
    ("exchange/member", "GetEvent", "governance", ALLOWED),
    ("lab-c/member", "GetEvent", "health", "forbidden"),
    ("agency-a/member", "GetGrant", "grant", ALLOWED),  # its grantor
    ("exchange/member", "GetGrant", "grant", "forbidden"),
    ("exchange/member", "GetOrder", "order", ALLOWED),  # the listing exchange
    ("agency-b/member", "GetOrder", "order2", ALLOWED),  # the seller
    ("agency-a/member", "GetOrder", "order", "forbidden"),
    ("regulator/member", "GetOrder", "order2", "forbidden"),
    ("regulator/member", "GetEvent", "resolve", ALLOWED),  # its own resolution of order2
    ("regulator/member", "GetEvent", "dispute", "forbidden"),
    ("agency-b/member", "GetEvent", "uncertify", ALLOWED),  # about its asset's certificate
    ("regulator/auditor", "GetEvent", "health", ALLOWED),
    ("regulator/member", WHOLE_UPSTREAM, "fused", ALLOWED),
    ("agency-a/member", WHOLE_DOWNSTREAM, "health", ALLOWED),
    ("exchange/member", "GetCheckpoint", "1", ALLOWED),
    ("lab-c/member", "GetBlock", "1", ALLOWED),  # REST: the header and the event ids
    ("lab-c/member", "GetOffer", "offer", ALLOWED),  # the catalogue is every member's
    ("lab-c/member", "ListOffers", "catalogue", ALLOWED),
]


def check_rule_paths(story: Story, answers: dict[tuple[str, str, str], Answer]) -> None:
    for reader, query, subject, kind in RULE_PATHS:
        assert answers[reader, query, subject].kind == kind, (reader, query, subject)
    # The derivation of `fused` is seen by agency-a, owner of its parent `health`, as a
    # redacted place in the lineage only: not in the history of `health`.
    downstream = answers["agency-a/member", WHOLE_DOWNSTREAM, "health"].content
    assert downstream["nodes"][story.assets["fused"]]["redacted"] is True
    assert downstream["nodes"][story.assets["model"]]["redacted"] is False
    history = answers["agency-a/member", "GetAssetHistory", "health"].content
    listed = {event["event_id"] for page in history for event in page}
    assert story.events["fused"].hex() not in listed and story.events["use"].hex() in listed
    assert len(history) > 1  # it was paged
    upstream = answers["regulator/member", WHOLE_UPSTREAM, "fused"].content
    hidden = {a for a, node in upstream["nodes"].items() if node["redacted"]}
    assert hidden == {story.assets["health"], story.assets["trips"]}


def test_every_grpc_read_answers_each_reader_what_rest_does(story: Story) -> None:
    address = story.grpc_address
    # Health and reflection answer an anonymous client on the same TLS port.
    with client_channel(address, token=None) as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=RPC_TIMEOUT_S
        )
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        services = set(ProtoReflectionDescriptorDatabase(channel).get_services())
        assert {"provledger.v1.LedgerService", "grpc.health.v1.Health"} <= services, services

    mismatches: list[str] = []
    disagreeing = 0
    rest_answers: dict[tuple[str, str, str], Answer] = {}
    bodies_checked = 0
    asked = questions(story)
    names = {identifier.hex(): name for name, identifier in story.events.items()}
    for reader in readers(story):
        with (
            client_channel(address, token=reader.token) as channel,
            rest_client(story, reader.token) as http,
        ):
            asker = Asker(channel, http)
            for query, subject, ask in asked:
                rest, answer = ask(asker)
                rest_answers[reader.name, query, subject] = rest
                problems = judge(reader, query, subject, rest, answer)
                disagreeing += bool(problems)
                mismatches += problems
            # Every event body gRPC handed this reader (in an event, a proof, a history or a
            # block) is one REST hands the same reader.
            for identifier, body in sorted(asker.handed_out.items()):
                name = names.get(identifier, identifier)
                rest = rest_answers.get((reader.name, "GetEvent", name))
                if rest is None:
                    rest = rest_get(http, f"/v1/events/{identifier}", located_from_rest)
                bodies_checked += 1
                if rest.kind != ALLOWED or rest.content["body"] != body:
                    shown = "another body" if rest.kind == ALLOWED else rest.brief()
                    mismatches.append(f"{reader.name}: gRPC handed out {name}; REST: {shown}")

    compared = len(rest_answers)
    print(
        f"{compared} (reader, query, subject) cases compared through gRPC and REST; "
        f"{bodies_checked} event bodies handed out over gRPC checked against REST"
    )
    assert not mismatches, (
        f"{disagreeing} of {compared} cases disagree (and event bodies):\n" + "\n".join(mismatches)
    )
    # The story exercised every class of answer, and each rule path of the policy.
    kinds: dict[str, set[str]] = {}
    for (_, query, _), rest in rest_answers.items():
        kinds.setdefault(query, set()).add(rest.kind)
    for query, seen in kinds.items():
        wanted = {ALLOWED, "unauthenticated"}
        if query not in ("SubscribeBlocks", "ListOffers"):  # asked from committed heights only
            wanted.add("not_found")
        # The chain's headers and the market's catalogue are every member's to read.
        chain_reads = ("GetCheckpoint", "GetConsistencyProof", "GetBlock", "SubscribeBlocks")
        if query not in (*chain_reads, "GetOffer", "ListOffers"):
            wanted.add("forbidden")
        assert wanted <= seen, (query, seen)
    check_rule_paths(story, rest_answers)

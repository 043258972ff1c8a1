"""The auditor REST API (FastAPI): read-only JSON views of the ledger, with proofs.

`create_app(view)` builds the app over a `NodeView`: anything with a `store`, a `genesis`, a
`node_id` and a `clock_ms()` (the running `LedgerNode` is one; tests use `StoreView` over a
bare `Store`). The contract is docs/rest-api.md; this module keeps to it:
- every answer is JSON, bytes as lower-case hex; every error is `{"error", "reason"}` with
  400 (bad request), 401 (no or bad token), 403 (not the caller's to see), 404 (unknown id)
  or 422 (bad parameter); a 500 means a bug here and is logged;
- every request but the health check, the docs and the explorer carries a bearer token
  (protocol/tokens.py), checked against the ledger's member registry at the node's clock;
- an `auditor` token reads everything; a `member` token reads what concerns the member (its
  assets, grants and trades, and the chain's headers and checkpoints, which name no data);
- lists are pages of at most REST_PAGE_ITEMS_MAX items with an opaque cursor, which binds the
  query it was issued for (reusing it for another query is a 400).

Handlers are plain functions: FastAPI runs them in its thread pool, so a long query never
holds the node's event loop (consensus and gRPC run there). The store is safe for that: one
writer, many readers, and records returned by `Store.load` are never mutated here.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import json
import logging
import re
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Protocol

from fastapi import Depends, FastAPI, Query, Request
from fastapi import Path as PathParameter
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from google.protobuf.message import DecodeError, Message
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from provledger.node import explorer
from provledger.node.settings import (
    REST_CURSOR_LENGTH_CHARS_MAX,
    REST_LINEAGE_NODES_TOTAL_MAX,
    REST_PAGE_ITEMS_DEFAULT,
    REST_PAGE_ITEMS_MAX,
)
from provledger.node.store import Store
from provledger.protocol import merkle
from provledger.protocol.blocks import decode_header
from provledger.protocol.errors import check
from provledger.protocol.events import event_id as compute_event_id
from provledger.protocol.events import log_leaf
from provledger.protocol.genesis import Genesis, role_name
from provledger.protocol.limits import (
    HISTORY_PAGE_EVENTS_MAX,
    IDENTIFIER_LENGTH_CHARS_MAX,
    LINEAGE_DEPTH_DEFAULT,
    LINEAGE_DEPTH_MAX,
    LINEAGE_NODES_MAX,
    TEXT_LENGTH_CHARS_MAX,
)
from provledger.protocol.tokens import ROLE_AUDITOR, TokenError, verify_token
from provledger.v1 import ledger_pb2, state_pb2

log = logging.getLogger("provledger.rest")

HEADERS_CACHED_MAX = 4_096
INT64_MAX = 2**63 - 1
IDENTIFIER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$"
_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]*")
EVENT_ID_PATTERN = r"^[0-9a-f]{64}$"
OPERATIONS = ("read", "compute", "derive", "share")
TRUNCATED_HEADER = "X-Provledger-Truncated"


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class NodeView(Protocol):
    """What the API reads: the store, the genesis, the node's id and its clock."""

    @property
    def store(self) -> Store: ...

    @property
    def genesis(self) -> Genesis: ...

    @property
    def node_id(self) -> str: ...

    @property
    def clock_ms(self) -> Callable[[], int]: ...


@dataclass(frozen=True)
class StoreView:
    """A `NodeView` over a bare store (tests, tools)."""

    store: Store
    genesis: Genesis
    node_id: str
    clock_ms: Callable[[], int] = wall_clock_ms


class ApiError(Exception):
    """An answer other than 200: the status, a stable code and a reason for people."""

    def __init__(self, status: int, error: str, reason: str) -> None:
        super().__init__(f"{status} {error}: {reason}")
        self.status = status
        self.error = error
        self.reason = reason


def not_found(error: str, reason: str) -> ApiError:
    return ApiError(404, error, reason)


def forbidden(reason: str) -> ApiError:
    return ApiError(403, "forbidden", reason)


def bad_request(error: str, reason: str) -> ApiError:
    return ApiError(400, error, reason)


# --- JSON views of protobuf messages ---------------------------------------------------------


def _hex(data: bytes) -> str:
    return data.hex()


def _enum_prefix(enum_name: str) -> str:
    """`DisputeOutcome` -> `DISPUTE_OUTCOME_`: the prefix of its value names."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", enum_name).upper() + "_"


def enum_text(enum_type, number: int) -> str:
    """An enum value as a lower-case word without its type prefix ("core", "read")."""
    value = enum_type.values_by_number.get(number)
    if value is None:
        return str(number)
    return value.name.removeprefix(_enum_prefix(enum_type.name)).lower()


def _field_value(field, value: Any) -> Any:
    if field.type == field.TYPE_BYTES:
        return value.hex()
    if field.type == field.TYPE_ENUM:
        return enum_text(field.enum_type, value)
    if field.type == field.TYPE_MESSAGE:
        return message_json(value)
    return value


def message_json(message: Message) -> dict[str, Any]:
    """Every field of `message` (defaults included) as JSON: bytes as hex, enums as words,
    field names as in the .proto files."""
    document: dict[str, Any] = {}
    for field in message.DESCRIPTOR.fields:
        value = getattr(message, field.name)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            document[field.name] = {
                str(key): _field_value(value_field, item) for key, item in sorted(value.items())
            }
        elif field.is_repeated:
            document[field.name] = [_field_value(field, item) for item in value]
        else:
            document[field.name] = _field_value(field, value)
    return document


def iso_time(time_ms: int) -> str:
    moment = datetime.datetime.fromtimestamp(time_ms / 1000, tz=datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- response models (the OpenAPI schema is built from these) ------------------------------


class ErrorBody(BaseModel):
    error: str = Field(description="a stable code for programs")
    reason: str = Field(description="what went wrong, for people")


class Health(BaseModel):
    status: Literal["ok"]


class ValidatorView(BaseModel):
    validator_id: str
    public_key: str


class StatusView(BaseModel):
    chain_id: str
    node_id: str
    genesis_hash: str
    height: int
    head_block_id: str = Field(description="the genesis hash while there is no block")
    head_time_ms: int
    log_size: int
    log_root: str
    validators: list[ValidatorView]
    quorum_size: int


class HeaderView(BaseModel):
    block_id: str
    chain_id: str
    height: int
    previous_block_id: str
    time_ms: int
    proposer_id: str
    events_root: str
    event_count: int
    log_size: int
    log_root: str
    state_root: str
    validators_hash: str
    last_commit_hash: str
    evidence_hash: str


class SignatureView(BaseModel):
    validator_id: str
    signature: str


class CertificateView(BaseModel):
    height: int
    round: int
    block_id: str
    signatures: list[SignatureView]


class BlockPage(BaseModel):
    items: list[HeaderView]
    next_cursor: str | None


class BlockView(BaseModel):
    header: HeaderView
    header_raw: str = Field(description="the serialized BlockHeader, hex: what the id hashes")
    certificate: CertificateView = Field(description="the certificate that commits this block")
    last_commit: CertificateView | None = Field(description="the previous block's, carried here")
    event_ids: list[str]
    evidence_count: int


class CheckpointView(BaseModel):
    height: int
    header: HeaderView
    header_raw: str = Field(description="the serialized BlockHeader, hex: what the id hashes")
    certificate: CertificateView


class AuthorView(BaseModel):
    member_id: str
    key_id: str


class EventView(BaseModel):
    event_id: str
    kind: str = Field(description='the payload\'s name, e.g. "asset_registered"')
    chain_id: str
    author: AuthorView
    nonce: int
    timestamp_ms: int = Field(description="the author's clock; informational")
    payload: dict[str, Any]
    body: str = Field(description="the signed bytes (a serialized Event), hex")
    signature: str
    height: int
    position: int = Field(description="index within its block")
    log_index: int
    block_time_ms: int


class EventPage(BaseModel):
    items: list[EventView]
    next_cursor: str | None


class InclusionProofView(BaseModel):
    leaf_index: int
    tree_size: int
    leaf_hash: str
    hashes: list[str]


class InclusionView(BaseModel):
    event: EventView
    proof: InclusionProofView
    checkpoint: CheckpointView


class ConsistencyProofView(BaseModel):
    first_size: int
    second_size: int
    hashes: list[str]


class ConsistencyView(BaseModel):
    proof: ConsistencyProofView
    first: CheckpointView
    second: CheckpointView


class AssetView(BaseModel):
    asset_id: str
    owner_id: str
    classification: str
    content_digest: str
    name: str
    parent_ids: list[str]
    activity: str = Field(description="empty for a registered (not derived) asset")
    origin_event_id: str
    retired: bool
    holder_ids: list[str]
    redacted: bool = Field(
        default=False,
        description="true when the reader may see this asset's place in a lineage but not its "
        "details: name, content digest, holders and origin event are then left empty",
    )


class EdgeView(BaseModel):
    parent: str
    child: str


class LineageView(BaseModel):
    root: str
    direction: Literal["upstream", "downstream"]
    depth: int
    nodes: list[AssetView]
    edges: list[EdgeView]
    truncated: bool = Field(
        description="the depth limit hid lineage of a node on this page, or the graph has "
        f"more than {REST_LINEAGE_NODES_TOTAL_MAX} nodes"
    )
    next_cursor: str | None


class GrantView(BaseModel):
    grant_id: str
    asset_id: str
    grantor_id: str
    grantee_id: str
    purposes: list[str]
    operations: list[str]
    expires_at_ms: int
    no_cross_border: bool
    revoked: bool
    revoked_at_ms: int | None
    event_id: str


class GrantPage(BaseModel):
    items: list[GrantView]
    next_cursor: str | None


class GrantDetail(BaseModel):
    grant: GrantView
    issued: EventView
    revoked: EventView | None


class DecidingEvent(BaseModel):
    role: Literal[
        "registered", "derived", "transferred", "retired", "grant_issued", "grant_revoked"
    ]
    event: EventView
    proof: InclusionProofView = Field(description="against the response's checkpoint")


class AuthorizationView(BaseModel):
    member_id: str
    asset_id: str
    purpose: str
    operation: str
    time_ms: int
    authorised: bool
    code: str = Field(
        description="owner, granted, or why not: asset_not_registered, asset_retired, "
        "no_grant, grant_not_yet_issued, grant_revoked, grant_expired, "
        "operation_not_granted, purpose_not_granted"
    )
    reason: str
    grant_id: str | None = Field(description="the grant that covers the use, if one does")
    deciding_events: list[DecidingEvent]
    checkpoint: CheckpointView


class OrderView(BaseModel):
    order_id: str
    offer_id: str
    asset_id: str
    buyer_id: str
    seller_id: str
    exchange_id: str
    status: str
    status_before_dispute: str | None
    delivery_digest: str | None
    dispute_id: str | None
    event_ids: list[str]


class LifecycleEntry(BaseModel):
    event_id: str
    kind: str
    author_id: str
    height: int
    log_index: int
    block_time_ms: int


class TradeItem(BaseModel):
    order: OrderView
    life_cycle: list[LifecycleEntry]


class TradePage(BaseModel):
    items: list[TradeItem]
    next_cursor: str | None


class OfferView(BaseModel):
    offer_id: str
    asset_id: str
    seller_id: str
    exchange_id: str
    price: int
    currency: str
    terms: str
    event_id: str


class DisputeView(BaseModel):
    dispute_id: str
    order_id: str
    opened_by: str
    reason: str
    resolved: bool
    outcome: str | None
    resolution: str


class TradeDetail(BaseModel):
    order: OrderView
    offer: OfferView
    life_cycle: list[EventView]
    dispute: DisputeView | None


class ProvDocument(BaseModel):
    """W3C PROV-JSON (https://www.w3.org/submissions/prov-json/)."""

    prefix: dict[str, str]
    entity: dict[str, dict[str, Any]]
    activity: dict[str, dict[str, Any]]
    agent: dict[str, dict[str, Any]]
    wasGeneratedBy: dict[str, dict[str, Any]]
    used: dict[str, dict[str, Any]]
    wasDerivedFrom: dict[str, dict[str, Any]]
    wasAssociatedWith: dict[str, dict[str, Any]]
    wasAttributedTo: dict[str, dict[str, Any]]


# --- cursors -------------------------------------------------------------------------------


def _scope(*parts: object) -> str:
    """A short fingerprint of the query a cursor belongs to."""
    return hashlib.sha256(json.dumps([str(p) for p in parts]).encode()).hexdigest()[:16]


def encode_cursor(kind: str, value: Any, scope: str) -> str:
    text = json.dumps([kind, value, scope], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


def decode_cursor(cursor: str, kind: str, scope: str) -> Any:
    """The value inside a cursor this API issued for the same query; else a 400."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        decoded_kind, value, decoded_scope = json.loads(raw)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise bad_request("bad_cursor", "the cursor is not one this API issued") from None
    if decoded_kind != kind or decoded_scope != scope:
        raise bad_request("bad_cursor", "the cursor belongs to another query")
    return value


def _cursor_number(cursor: str, kind: str, scope: str) -> int:
    value = decode_cursor(cursor, kind, scope)
    if type(value) is not int or not 0 <= value <= INT64_MAX:
        raise bad_request("bad_cursor", "the cursor is not one this API issued")
    return value


def _is_identifier(value: object) -> bool:
    return (
        isinstance(value, str)
        and len(value) <= IDENTIFIER_LENGTH_CHARS_MAX
        and _IDENTIFIER.fullmatch(value) is not None
    )


def _cursor_identifier(cursor: str, kind: str, scope: str) -> str:
    value = decode_cursor(cursor, kind, scope)
    if not _is_identifier(value):
        raise bad_request("bad_cursor", "the cursor is not one this API issued")
    return value  # type: ignore[no-any-return]


# --- access --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reader:
    """Who is asking: a member, with an auditor or a member token."""

    member_id: str
    role: str

    @property
    def auditor(self) -> bool:
        return self.role == ROLE_AUDITOR


# --- the queries ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    height: int
    header: ledger_pb2.BlockHeader
    header_bytes: bytes
    certificate: ledger_pb2.CommitCertificate


class Ledger:
    """The queries behind the routes: read the store, check access, build the views.

    Raises `ApiError` for every answer that is not a 200."""

    def __init__(self, view: NodeView) -> None:
        self.view = view
        self._blocks: dict[int, Block] = {}

    @property
    def store(self) -> Store:
        return self.view.store

    # --- access ----------------------------------------------------------------------------

    def authenticate(self, token: str) -> Reader:
        try:
            claims = verify_token(
                token,
                lambda member_id: self.store.load("member", member_id),  # type: ignore[arg-type,return-value]
                self.view.genesis.chain_id,
                self.view.clock_ms(),
            )
        except TokenError as error:
            raise ApiError(401, f"token_{error.code}", error.reason) from None
        return Reader(member_id=claims.member_id, role=claims.role)

    def sees_asset(self, reader: Reader, asset: state_pb2.AssetRecord) -> bool:
        """An asset concerns a member that owns it, holds a copy, registered or derived it,
        or holds a grant on it."""
        member_id = reader.member_id
        if reader.auditor or member_id == asset.owner_id or member_id in asset.holder_ids:
            return True
        origin = self.store.event(asset.origin_event_id)
        if origin is not None and _decode_event(origin).author.member_id == member_id:
            return True
        after = None
        while True:
            grants, more = self.store.grants_of_asset(asset.asset_id, after, REST_PAGE_ITEMS_MAX)
            if any(g.grant.grantee_id == member_id for g in grants):
                return True
            if not more:
                return False
            after = grants[-1].grant.grant_id

    def lineage_record(
        self, reader: Reader, asset: state_pb2.AssetRecord
    ) -> tuple[state_pb2.AssetRecord, bool]:
        """An asset as it may appear in a lineage the reader asked for: whole if it concerns
        the reader, else only its place in the graph (id, owner, classification, parents,
        activity), so that provenance stays traceable without disclosing other members'
        data. Returns the record and whether it was redacted."""
        if self.sees_asset(reader, asset):
            return asset, False
        redacted = state_pb2.AssetRecord(
            asset_id=asset.asset_id,
            owner_id=asset.owner_id,
            classification=asset.classification,
            parent_ids=asset.parent_ids,
            activity=asset.activity,
            retired=asset.retired,
        )
        return redacted, True

    def require_asset(self, reader: Reader, asset_id: str) -> state_pb2.AssetRecord:
        asset = self.store.load("asset", asset_id)
        if asset is None:
            raise not_found("unknown_asset", f"no asset {asset_id!r}")
        if not self.sees_asset(reader, asset):  # type: ignore[arg-type]
            raise forbidden(f"asset {asset_id!r} does not concern {reader.member_id!r}")
        return asset  # type: ignore[return-value]

    def sees_grant(self, reader: Reader, grant: state_pb2.GrantRecord) -> bool:
        if reader.auditor or reader.member_id in (grant.grantor_id, grant.grant.grantee_id):
            return True
        asset = self.store.load("asset", grant.grant.asset_id)
        return asset is not None and asset.owner_id == reader.member_id  # type: ignore[attr-defined]

    def sees_order(self, reader: Reader, order: state_pb2.OrderRecord) -> bool:
        return reader.auditor or reader.member_id in (
            order.buyer_id,
            order.seller_id,
            order.exchange_id,
        )

    def sees_event(self, reader: Reader, event: ledger_pb2.Event) -> bool:
        """An event concerns its author, the members it names, and whoever may see the asset,
        grant or order it is about. Governance concerns every member."""
        if reader.auditor or event.author.member_id == reader.member_id:
            return True
        kind = event.WhichOneof("payload")
        if kind is None:
            return False
        if kind == "governance":
            return True
        payload = getattr(event, kind)
        for name in ("recipient_id", "new_owner_id", "grantee_id", "seller_id"):
            if getattr(payload, name, None) == reader.member_id:
                return True
        store = self.store
        asset_ids = list(getattr(payload, "parent_ids", ()))
        if getattr(payload, "asset_id", ""):
            asset_ids.append(payload.asset_id)
        if kind == "grant_revoked":
            grant = store.load("grant", payload.grant_id)
            if grant is not None and self.sees_grant(reader, grant):  # type: ignore[arg-type]
                return True
        if kind == "certificate_revoked":
            certificate = store.load("certificate", payload.certificate_id)
            if certificate is not None:
                asset_ids.append(certificate.certificate.asset_id)  # type: ignore[attr-defined]
        order_id = getattr(payload, "order_id", "")
        if kind == "dispute_resolved":
            dispute = store.load("dispute", payload.dispute_id)
            order_id = dispute.order_id if dispute is not None else ""  # type: ignore[attr-defined]
        if order_id:
            order = store.load("order", order_id)
            if order is not None and self.sees_order(reader, order):  # type: ignore[arg-type]
                return True
        for asset_id in asset_ids:
            asset = store.load("asset", asset_id)
            if asset is not None and self.sees_asset(reader, asset):  # type: ignore[arg-type]
                return True
        return False

    # --- blocks ----------------------------------------------------------------------------

    def block(self, height: int) -> Block | None:
        cached = self._blocks.get(height)
        if cached is not None:
            return cached
        stored = self.store.stored_block(height)
        if stored is None:
            return None
        block = Block(height, decode_header(stored.header), stored.header, stored.certificate)
        if len(self._blocks) >= HEADERS_CACHED_MAX:
            self._blocks.clear()
        self._blocks[height] = block
        return block

    def require_block(self, height: int) -> Block:
        head = self.store.head_height
        block = self.block(height) if height <= head else None
        if block is None:
            raise not_found("unknown_height", f"no block at height {height}; the head is {head}")
        return block

    def head_block(self) -> Block:
        head = self.store.head_height
        if head == 0:
            raise not_found("empty_chain", "no block has been committed yet")
        return self.require_block(head)

    def header_view(self, block: Block) -> HeaderView:
        header = block.header
        return HeaderView(
            block_id=block.certificate.block_id.hex(),
            chain_id=header.chain_id,
            height=header.height,
            previous_block_id=header.previous_block_id.hex(),
            time_ms=header.time_ms,
            proposer_id=header.proposer_id,
            events_root=header.events_root.hex(),
            event_count=header.event_count,
            log_size=header.log_size,
            log_root=header.log_root.hex(),
            state_root=header.state_root.hex(),
            validators_hash=header.validators_hash.hex(),
            last_commit_hash=header.last_commit_hash.hex(),
            evidence_hash=header.evidence_hash.hex(),
        )

    def checkpoint_view(self, block: Block) -> CheckpointView:
        return CheckpointView(
            height=block.height,
            header=self.header_view(block),
            header_raw=block.header_bytes.hex(),
            certificate=certificate_view(block.certificate),
        )

    def status(self) -> StatusView:
        genesis = self.view.genesis
        head = self.store.head_height
        block = self.block(head) if head else None
        return StatusView(
            chain_id=genesis.chain_id,
            node_id=self.view.node_id,
            genesis_hash=genesis.genesis_hash.hex(),
            height=head,
            head_block_id=(block.certificate.block_id if block else genesis.genesis_hash).hex(),
            head_time_ms=block.header.time_ms if block else genesis.genesis_time_ms,
            log_size=block.header.log_size if block else 0,
            log_root=(block.header.log_root if block else merkle.EMPTY_ROOT).hex(),
            validators=[
                ValidatorView(validator_id=v.validator_id, public_key=v.public_key.hex())
                for v in genesis.validator_set.validators
            ],
            quorum_size=genesis.validator_set.quorum_size,
        )

    def blocks(self, cursor: str | None, limit: int) -> BlockPage:
        head = self.store.head_height
        start = head if cursor is None else min(_cursor_number(cursor, "blocks", ""), head)
        heights = range(start, max(start - limit, 0), -1)
        items = [self.header_view(self.require_block(h)) for h in heights]
        last = start - limit
        return BlockPage(
            items=items, next_cursor=encode_cursor("blocks", last, "") if last >= 1 else None
        )

    def block_detail(self, height: int) -> BlockView:
        self.require_block(height)
        stored = self.store.stored_block(height)
        if stored is None:
            raise not_found("unknown_height", f"no block at height {height}")
        block = self.require_block(height)
        return BlockView(
            header=self.header_view(block),
            header_raw=block.header_bytes.hex(),
            certificate=certificate_view(stored.certificate),
            last_commit=(
                certificate_view(stored.last_commit) if stored.HasField("last_commit") else None
            ),
            event_ids=[identifier.hex() for identifier in stored.event_ids],
            evidence_count=len(stored.evidence),
        )

    def checkpoint(self, height: int | None) -> CheckpointView:
        block = self.head_block() if height is None else self.require_block(height)
        return self.checkpoint_view(block)

    # --- events and proofs -----------------------------------------------------------------

    def location(self, event_hex: str) -> state_pb2.EventLocation:
        location = self.store.event(bytes.fromhex(event_hex))
        if location is None:
            raise not_found("unknown_event", f"no committed event {event_hex}")
        return location

    def event_view(self, location: state_pb2.EventLocation) -> EventView:
        signed = location.event
        event = _decode_event(location)
        kind = event.WhichOneof("payload") or ""
        payload = message_json(getattr(event, kind)) if kind else {}
        if kind == "governance":
            change = ledger_pb2.GovernanceChange()
            try:
                change.ParseFromString(event.governance.change)
                payload["change_decoded"] = message_json(change)
            except DecodeError:
                pass
        block = self.require_block(location.height)
        return EventView(
            event_id=compute_event_id(signed.body).hex(),
            kind=kind,
            chain_id=event.chain_id,
            author=AuthorView(member_id=event.author.member_id, key_id=event.author.key_id.hex()),
            nonce=event.nonce,
            timestamp_ms=event.timestamp_ms,
            payload=payload,
            body=signed.body.hex(),
            signature=signed.signature.hex(),
            height=location.height,
            position=location.position,
            log_index=location.log_index,
            block_time_ms=block.header.time_ms,
        )

    def readable_location(self, reader: Reader, event_hex: str) -> state_pb2.EventLocation:
        location = self.location(event_hex)
        if not self.sees_event(reader, _decode_event(location)):
            raise forbidden(f"event {event_hex} does not concern {reader.member_id!r}")
        return location

    def event(self, reader: Reader, event_hex: str) -> EventView:
        return self.event_view(self.readable_location(reader, event_hex))

    def proof_view(self, location: state_pb2.EventLocation, tree_size: int) -> InclusionProofView:
        signed = location.event
        leaf_hash = merkle.hash_leaf(log_leaf(compute_event_id(signed.body), signed.signature))
        return InclusionProofView(
            leaf_index=location.log_index,
            tree_size=tree_size,
            leaf_hash=leaf_hash.hex(),
            hashes=[h.hex() for h in self.store.inclusion_proof(location.log_index, tree_size)],
        )

    def inclusion(self, reader: Reader, event_hex: str, height: int | None) -> InclusionView:
        location = self.readable_location(reader, event_hex)
        block = self.head_block() if height is None else self.require_block(height)
        if location.height > block.height:
            raise bad_request(
                "not_in_tree",
                f"the event was committed at height {location.height}, after height {block.height}",
            )
        return InclusionView(
            event=self.event_view(location),
            proof=self.proof_view(location, block.header.log_size),
            checkpoint=self.checkpoint_view(block),
        )

    def consistency(self, first: int, second: int | None) -> ConsistencyView:
        second_block = self.head_block() if second is None else self.require_block(second)
        if first > second_block.height:
            raise bad_request(
                "bad_range", f"first ({first}) must not be above second ({second_block.height})"
            )
        first_block = self.require_block(first)
        first_size = first_block.header.log_size
        second_size = second_block.header.log_size
        hashes = self.store.consistency_proof(first_size, second_size) if first_size else []
        return ConsistencyView(
            proof=ConsistencyProofView(
                first_size=first_size, second_size=second_size, hashes=[h.hex() for h in hashes]
            ),
            first=self.checkpoint_view(first_block),
            second=self.checkpoint_view(second_block),
        )

    # --- assets and lineage ----------------------------------------------------------------

    def asset(self, reader: Reader, asset_id: str) -> AssetView:
        return asset_view(self.require_asset(reader, asset_id))

    def history_locations(
        self, asset_id: str, after: int | None = None
    ) -> Iterator[state_pb2.EventLocation]:
        """Every event of the asset's history, in log order, after log index `after`."""
        while True:
            locations, more = self.store.asset_history(asset_id, after, HISTORY_PAGE_EVENTS_MAX)
            yield from locations
            if not more or not locations:
                return
            after = locations[-1].log_index

    def history(self, reader: Reader, asset_id: str, cursor: str | None, limit: int) -> EventPage:
        self.require_asset(reader, asset_id)
        scope = _scope("history", asset_id)
        after = None if cursor is None else _cursor_number(cursor, "history", scope)
        locations, more = self.store.asset_history(asset_id, after, limit)
        next_cursor = None
        if more and locations:
            next_cursor = encode_cursor("history", locations[-1].log_index, scope)
        return EventPage(items=[self.event_view(x) for x in locations], next_cursor=next_cursor)

    def lineage(
        self,
        reader: Reader,
        asset_id: str,
        direction: str,
        depth: int,
        cursor: str | None,
        limit: int,
    ) -> LineageView:
        self.require_asset(reader, asset_id)
        scope = _scope("lineage", asset_id, direction, depth)
        offset = 0 if cursor is None else _cursor_number(cursor, "lineage", scope)
        if offset >= REST_LINEAGE_NODES_TOTAL_MAX:
            raise bad_request("bad_cursor", "the cursor is not one this API issued")
        page = self.store.lineage_page(
            asset_id,
            upstream=direction == "upstream",
            depth=depth,
            offset=offset,
            limit=limit,
            total_max=REST_LINEAGE_NODES_TOTAL_MAX,
        )
        return LineageView(
            root=asset_id,
            direction=direction,  # type: ignore[arg-type]
            depth=depth,
            nodes=[asset_view(*self.lineage_record(reader, a)) for a in page.assets],
            edges=[EdgeView(parent=p, child=c) for p, c in page.edges],
            truncated=page.truncated,
            next_cursor=(
                encode_cursor("lineage", page.next_offset, scope)
                if page.next_offset is not None
                else None
            ),
        )

    def prov(
        self, reader: Reader, asset_id: str, direction: str, depth: int
    ) -> tuple[ProvDocument, bool]:
        """The lineage (at most LINEAGE_NODES_MAX nodes) as PROV-JSON; and whether it was cut."""
        self.require_asset(reader, asset_id)
        page = self.store.lineage_page(
            asset_id,
            upstream=direction == "upstream",
            depth=depth,
            offset=0,
            limit=LINEAGE_NODES_MAX,
            total_max=LINEAGE_NODES_MAX,
        )
        assets = [self.lineage_record(reader, a)[0] for a in page.assets]
        return ProvExport(self).document(assets, page.edges), (
            page.truncated or page.next_offset is not None
        )

    # --- grants ----------------------------------------------------------------------------

    def grants(
        self,
        reader: Reader,
        asset_id: str | None,
        member_id: str | None,
        cursor: str | None,
        limit: int,
    ) -> GrantPage:
        if (asset_id is None) == (member_id is None):
            raise bad_request("bad_request", "give exactly one of asset_id and member_id")
        if asset_id is not None:
            asset = self.require_asset(reader, asset_id)
            scope = _scope("grants", "asset", asset_id)
            after = None if cursor is None else _cursor_identifier(cursor, "grants", scope)
            records, more = self.store.grants_of_asset(asset_id, after, limit)
            next_cursor = (
                encode_cursor("grants", records[-1].grant.grant_id, scope) if more else None
            )
            if not (reader.auditor or reader.member_id == asset.owner_id):
                records = [r for r in records if self.sees_grant(reader, r)]
            return GrantPage(items=[grant_view(r) for r in records], next_cursor=next_cursor)
        return self._member_grants(reader, str(member_id), cursor, limit)

    def _member_grants(
        self, reader: Reader, member_id: str, cursor: str | None, limit: int
    ) -> GrantPage:
        if not reader.auditor and member_id != reader.member_id:
            raise forbidden(f"{reader.member_id!r} may only list its own grants")
        # Grants held (as grantee) first, then grants issued (as grantor).
        scope = _scope("grants", "member", member_id)
        phase, after = "held", None
        if cursor is not None:
            value = decode_cursor(cursor, "grants", scope)
            if (
                not isinstance(value, list)
                or len(value) != 2
                or value[0] not in ("held", "issued")
                or not (value[1] is None or _is_identifier(value[1]))
            ):
                raise bad_request("bad_cursor", "the cursor is not one this API issued")
            phase, after = value
        items: list[state_pb2.GrantRecord] = []
        next_cursor = None
        if phase == "held":
            held, more = self.store.grants_held_by(member_id, after, limit)
            items.extend(held)
            if more:
                next_cursor = encode_cursor("grants", ["held", held[-1].grant.grant_id], scope)
            else:
                phase, after = "issued", None
        if phase == "issued" and next_cursor is None:
            room = limit - len(items)
            if room == 0:
                next_cursor = encode_cursor("grants", ["issued", None], scope)
            else:
                issued, more = self.store.grants_issued_by(member_id, after, room)
                items.extend(issued)
                if more:
                    next_cursor = encode_cursor(
                        "grants", ["issued", issued[-1].grant.grant_id], scope
                    )
        return GrantPage(items=[grant_view(r) for r in items], next_cursor=next_cursor)

    def grant_detail(self, reader: Reader, grant_id: str) -> GrantDetail:
        record = self.store.load("grant", grant_id)
        if record is None:
            raise not_found("unknown_grant", f"no grant {grant_id!r}")
        if not self.sees_grant(reader, record):  # type: ignore[arg-type]
            raise forbidden(f"grant {grant_id!r} does not concern {reader.member_id!r}")
        issued = self.store.event(record.event_id)  # type: ignore[attr-defined]
        if issued is None:
            raise ApiError(500, "internal", f"the issuing event of grant {grant_id!r} is missing")
        revoked = None
        if record.revoked:  # type: ignore[attr-defined]
            revoked = self._revocation(record)  # type: ignore[arg-type]
        return GrantDetail(
            grant=grant_view(record),  # type: ignore[arg-type]
            issued=self.event_view(issued),
            revoked=self.event_view(revoked) if revoked is not None else None,
        )

    def _revocation(self, record: state_pb2.GrantRecord) -> state_pb2.EventLocation | None:
        """The event that revoked a grant: in the history of its asset, after its issue."""
        issued = self.store.event(record.event_id)
        after = issued.log_index if issued is not None else None
        for location in self.history_locations(record.grant.asset_id, after):
            event = _decode_event(location)
            if (
                event.WhichOneof("payload") == "grant_revoked"
                and event.grant_revoked.grant_id == record.grant.grant_id
            ):
                return location
        return None

    # --- the authorization question --------------------------------------------------------

    def authorization(
        self,
        reader: Reader,
        member_id: str,
        asset_id: str,
        purpose: str,
        operation: str,
        time_ms: int | None,
    ) -> AuthorizationView:
        """Was `member_id` authorised to use `asset_id` for `purpose` (`operation`) at
        `time_ms` (default: the latest block's time)? The same judgement the rules make at a
        block time: the owner may; anyone else needs a grant to them on the asset, issued at
        or before the time, not revoked by then, not expired (time < expiry), naming the
        operation and the purpose; a retired asset is used by nobody."""
        asset = self.store.load("asset", asset_id)
        if asset is None:
            raise not_found("unknown_asset", f"no asset {asset_id!r}")
        if not (
            reader.auditor or reader.member_id == member_id or reader.member_id == asset.owner_id  # type: ignore[attr-defined]
        ):
            raise forbidden(
                f"{reader.member_id!r} may ask only about itself or about assets it owns"
            )
        checkpoint = self.head_block()
        at = checkpoint.header.time_ms if time_ms is None else time_ms
        operation_number = ledger_pb2.Operation.Value("OPERATION_" + operation.upper())

        # One pass over the asset's history collects every event that can decide.
        ownership: list[tuple[str, state_pb2.EventLocation, int]] = []  # role, event, time
        owner_at = ""
        retired: tuple[state_pb2.EventLocation, int] | None = None
        grants: dict[str, tuple[state_pb2.EventLocation, int, ledger_pb2.GrantIssued]] = {}
        revocations: dict[str, tuple[state_pb2.EventLocation, int]] = {}
        registered_at: int | None = None
        for location in self.history_locations(asset_id):
            event = _decode_event(location)
            kind = event.WhichOneof("payload")
            block_time = self.require_block(location.height).header.time_ms
            if kind in ("asset_registered", "asset_derived"):
                if getattr(event, kind).asset_id == asset_id:
                    registered_at = block_time
                    ownership.append(
                        ("registered" if kind == "asset_registered" else "derived", location, 0)
                    )
                    owner_at = event.author.member_id
            elif kind == "asset_transferred" and block_time <= at:
                ownership.append(("transferred", location, block_time))
                owner_at = event.asset_transferred.new_owner_id
            elif kind == "asset_retired" and block_time <= at and retired is None:
                retired = (location, block_time)
            elif (
                kind == "grant_issued"
                and event.grant_issued.grantee_id == member_id
                and event.grant_issued.asset_id == asset_id
            ):
                grants[event.grant_issued.grant_id] = (location, block_time, event.grant_issued)
            elif kind == "grant_revoked" and event.grant_revoked.grant_id in grants:
                revocations.setdefault(event.grant_revoked.grant_id, (location, block_time))

        deciding: list[tuple[str, state_pb2.EventLocation]] = [(r, x) for r, x, _ in ownership]
        grant_id = None
        if registered_at is None or registered_at > at:
            code, reason = (
                "asset_not_registered",
                f"asset {asset_id!r} was registered after {at} ms",
            )
        elif retired is not None:
            deciding.append(("retired", retired[0]))
            code, reason = "asset_retired", f"asset {asset_id!r} was retired at {retired[1]} ms"
        elif owner_at == member_id:
            code, reason = "owner", f"{member_id!r} owned asset {asset_id!r} at {at} ms"
        else:
            code, reason, grant_id = self._judge_grants(
                grants, revocations, at, operation_number, operation, purpose, member_id
            )
            for identifier, (location, _, _) in grants.items():
                if grant_id is None or identifier == grant_id:
                    deciding.append(("grant_issued", location))
                revocation = revocations.get(identifier)
                if revocation is not None and revocation[1] <= at and grant_id is None:
                    deciding.append(("grant_revoked", revocation[0]))
        deciding.sort(key=lambda entry: entry[1].log_index)
        tree_size = checkpoint.header.log_size
        return AuthorizationView(
            member_id=member_id,
            asset_id=asset_id,
            purpose=purpose,
            operation=operation,
            time_ms=at,
            authorised=code in ("owner", "granted"),
            code=code,
            reason=reason,
            grant_id=grant_id,
            deciding_events=[
                DecidingEvent(
                    role=role,  # type: ignore[arg-type]
                    event=self.event_view(location),
                    proof=self.proof_view(location, tree_size),
                )
                for role, location in deciding
            ],
            checkpoint=self.checkpoint_view(checkpoint),
        )

    @staticmethod
    def _judge_grants(
        grants: dict[str, tuple[state_pb2.EventLocation, int, ledger_pb2.GrantIssued]],
        revocations: dict[str, tuple[state_pb2.EventLocation, int]],
        at: int,
        operation_number: int,
        operation: str,
        purpose: str,
        member_id: str,
    ) -> tuple[str, str, str | None]:
        """(code, reason, covering grant id) over the member's grants on the asset.

        With no covering grant, the answer is the failure of the grant that came closest:
        each grant is checked from the least to the most specific reason (purpose, operation,
        then time: not yet issued, revoked, expired), and the grant that failed latest wins.
        So a grant for the asked purpose and operation that was revoked explains the refusal
        better than one for another purpose."""
        if not grants:
            return "no_grant", f"{member_id!r} holds no grant on the asset", None
        best: tuple[int, str, str] | None = None
        for grant_id, (_, issued_at, grant) in grants.items():
            revocation = revocations.get(grant_id)
            failures = (
                (
                    purpose not in grant.purposes,
                    "purpose_not_granted",
                    f"grant {grant_id!r} does not cover purpose {purpose!r} (it covers "
                    f"{', '.join(grant.purposes)})",
                ),
                (
                    operation_number not in grant.operations,
                    "operation_not_granted",
                    f"grant {grant_id!r} does not allow {operation}",
                ),
                (
                    issued_at > at,
                    "grant_not_yet_issued",
                    f"grant {grant_id!r} was issued at {issued_at} ms, after {at} ms",
                ),
                (
                    revocation is not None and revocation[1] <= at,
                    "grant_revoked",
                    f"grant {grant_id!r} was revoked at {revocation[1] if revocation else 0} ms",
                ),
                (
                    at >= grant.expires_at_ms,
                    "grant_expired",
                    f"grant {grant_id!r} expired at {grant.expires_at_ms} ms",
                ),
            )
            for stage, (failed, code, reason) in enumerate(failures):
                if failed:
                    if best is None or stage > best[0]:
                        best = (stage, code, reason)
                    break
            else:
                return "granted", f"grant {grant_id!r} covered the use at {at} ms", grant_id
        check(best is not None, "a grant neither covered the use nor failed a check")
        return best[1], best[2], None  # type: ignore[index]

    # --- trades ----------------------------------------------------------------------------

    def order_view(self, order: state_pb2.OrderRecord) -> OrderView:
        offer = self.store.load("offer", order.offer_id)
        return OrderView(
            order_id=order.order_id,
            offer_id=order.offer_id,
            asset_id=offer.offer.asset_id if offer is not None else "",  # type: ignore[attr-defined]
            buyer_id=order.buyer_id,
            seller_id=order.seller_id,
            exchange_id=order.exchange_id,
            status=enum_text(state_pb2.OrderStatus.DESCRIPTOR, order.status),
            status_before_dispute=(
                enum_text(state_pb2.OrderStatus.DESCRIPTOR, order.status_before_dispute)
                if order.status_before_dispute
                else None
            ),
            delivery_digest=order.delivery_digest.hex() if order.delivery_digest else None,
            dispute_id=order.dispute_id or None,
            event_ids=[identifier.hex() for identifier in order.event_ids],
        )

    def life_cycle(self, order: state_pb2.OrderRecord) -> list[state_pb2.EventLocation]:
        locations = []
        for identifier in order.event_ids:
            location = self.store.event(identifier)
            if location is not None:
                locations.append(location)
        return locations

    def trades(
        self,
        reader: Reader,
        asset_id: str | None,
        member_id: str | None,
        cursor: str | None,
        limit: int,
    ) -> TradePage:
        if (asset_id is None) == (member_id is None):
            raise bad_request("bad_request", "give exactly one of asset_id and member_id")
        see_all = reader.auditor
        if asset_id is not None:
            asset = self.require_asset(reader, asset_id)
            see_all = see_all or reader.member_id == asset.owner_id
            scope = _scope("trades", "asset", asset_id)
            after = None if cursor is None else _cursor_identifier(cursor, "trades", scope)
            orders, more = self.store.orders_of_asset(asset_id, after, limit)
        else:
            member = str(member_id)
            if not reader.auditor and member != reader.member_id:
                raise forbidden(f"{reader.member_id!r} may only list its own trades")
            scope = _scope("trades", "member", member)
            after = None if cursor is None else _cursor_identifier(cursor, "trades", scope)
            orders, more = self.store.orders_of_member(member, after, limit)
        next_cursor = encode_cursor("trades", orders[-1].order_id, scope) if more else None
        items = []
        for order in orders:
            if not (see_all or self.sees_order(reader, order)):
                continue
            entries = []
            for location in self.life_cycle(order):
                event = _decode_event(location)
                entries.append(
                    LifecycleEntry(
                        event_id=compute_event_id(location.event.body).hex(),
                        kind=event.WhichOneof("payload") or "",
                        author_id=event.author.member_id,
                        height=location.height,
                        log_index=location.log_index,
                        block_time_ms=self.require_block(location.height).header.time_ms,
                    )
                )
            items.append(TradeItem(order=self.order_view(order), life_cycle=entries))
        return TradePage(items=items, next_cursor=next_cursor)

    def require_order(self, reader: Reader, order_id: str) -> state_pb2.OrderRecord:
        order = self.store.load("order", order_id)
        if order is None:
            raise not_found("unknown_order", f"no order {order_id!r}")
        if not self.sees_order(reader, order):  # type: ignore[arg-type]
            raise forbidden(f"order {order_id!r} does not concern {reader.member_id!r}")
        return order  # type: ignore[return-value]

    def trade(self, reader: Reader, order_id: str) -> TradeDetail:
        order = self.require_order(reader, order_id)
        offer = self.store.load("offer", order.offer_id)
        if offer is None:
            raise ApiError(500, "internal", f"the offer of order {order_id!r} is missing")
        listing = offer.offer  # type: ignore[attr-defined]
        dispute = self.store.load("dispute", order.dispute_id) if order.dispute_id else None
        return TradeDetail(
            order=self.order_view(order),
            offer=OfferView(
                offer_id=listing.offer_id,
                asset_id=listing.asset_id,
                seller_id=listing.seller_id,
                exchange_id=offer.exchange_id,  # type: ignore[attr-defined]
                price=listing.price,
                currency=listing.currency,
                terms=listing.terms,
                event_id=offer.event_id.hex(),  # type: ignore[attr-defined]
            ),
            life_cycle=[self.event_view(location) for location in self.life_cycle(order)],
            dispute=(
                DisputeView(
                    dispute_id=dispute.dispute_id,  # type: ignore[attr-defined]
                    order_id=dispute.order_id,  # type: ignore[attr-defined]
                    opened_by=dispute.opened_by,  # type: ignore[attr-defined]
                    reason=dispute.reason,  # type: ignore[attr-defined]
                    resolved=dispute.resolved,  # type: ignore[attr-defined]
                    outcome=(
                        enum_text(ledger_pb2.DisputeOutcome.DESCRIPTOR, dispute.outcome)  # type: ignore[attr-defined]
                        if dispute.resolved  # type: ignore[attr-defined]
                        else None
                    ),
                    resolution=dispute.resolution,  # type: ignore[attr-defined]
                )
                if dispute is not None
                else None
            ),
        )

    # --- evidence bundles ------------------------------------------------------------------

    def evidence(self, builder_name: str, identifier: str | bytes) -> bytes:
        """A bundle from node/bundles.py, which is imported when first asked for (so that this
        API serves without it). Its build errors map to answers: not found 404, too large
        400, unavailable (the head moved meanwhile, or an author the bundle format cannot
        name) 409."""
        try:
            from provledger.node import bundles
        except ImportError:
            raise ApiError(
                404, "evidence_unavailable", "this node was built without evidence bundles"
            ) from None
        try:
            return getattr(bundles, builder_name)(self.store, self.view.genesis, identifier)
        except bundles.BundleBuildError as error:
            status = {"not_found": 404, "too_large": 400}.get(error.code, 409)
            raise ApiError(status, f"bundle_{error.code}", error.reason) from None


def _decode_event(location: state_pb2.EventLocation) -> ledger_pb2.Event:
    event = ledger_pb2.Event()
    event.ParseFromString(location.event.body)
    return event


def certificate_view(certificate: ledger_pb2.CommitCertificate) -> CertificateView:
    return CertificateView(
        height=certificate.height,
        round=certificate.round,
        block_id=certificate.block_id.hex(),
        signatures=[
            SignatureView(validator_id=s.validator_id, signature=s.signature.hex())
            for s in certificate.signatures
        ],
    )


def asset_view(asset: state_pb2.AssetRecord, redacted: bool = False) -> AssetView:
    return AssetView(
        redacted=redacted,
        asset_id=asset.asset_id,
        owner_id=asset.owner_id,
        classification=enum_text(ledger_pb2.Classification.DESCRIPTOR, asset.classification),
        content_digest=asset.content_digest.hex(),
        name=asset.name,
        parent_ids=list(asset.parent_ids),
        activity=asset.activity,
        origin_event_id=asset.origin_event_id.hex(),
        retired=asset.retired,
        holder_ids=list(asset.holder_ids),
    )


def grant_view(record: state_pb2.GrantRecord) -> GrantView:
    grant = record.grant
    return GrantView(
        grant_id=grant.grant_id,
        asset_id=grant.asset_id,
        grantor_id=record.grantor_id,
        grantee_id=grant.grantee_id,
        purposes=list(grant.purposes),
        operations=[enum_text(ledger_pb2.Operation.DESCRIPTOR, o) for o in grant.operations],
        expires_at_ms=grant.expires_at_ms,
        no_cross_border=grant.no_cross_border,
        revoked=record.revoked,
        revoked_at_ms=record.revoked_at_ms if record.revoked else None,
        event_id=record.event_id.hex(),
    )


# --- PROV-JSON -----------------------------------------------------------------------------


def _qualified(prefix: str, identifier: str) -> str:
    """A PROV qualified name; the local part percent-encoded (ids may hold '/' and ':')."""
    return f"{prefix}:{urllib.parse.quote(identifier, safe='')}"


def _qualified_value(name: str) -> dict[str, str]:
    return {"$": name, "type": "prov:QUALIFIED_NAME"}


class ProvExport:
    """A lineage graph as W3C PROV-JSON: assets are entities, derivations activities (named
    by the event that made them), members agents (organisations); wasGeneratedBy, used and
    wasDerivedFrom tie derived assets to their parents, wasAssociatedWith and wasAttributedTo
    to the members who made them."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.chain_id = ledger.view.genesis.chain_id

    def document(
        self, assets: list[state_pb2.AssetRecord], edges: list[tuple[str, str]]
    ) -> ProvDocument:
        ledger = self.ledger
        base = f"urn:provledger:{urllib.parse.quote(self.chain_id, safe='')}:"
        document = ProvDocument(
            prefix={
                "prov": "http://www.w3.org/ns/prov#",
                "xsd": "http://www.w3.org/2001/XMLSchema#",
                "provledger": "urn:provledger:vocabulary#",
                "asset": base + "asset:",
                "member": base + "member:",
                "event": base + "event:",
            },
            entity={},
            activity={},
            agent={},
            wasGeneratedBy={},
            used={},
            wasDerivedFrom={},
            wasAssociatedWith={},
            wasAttributedTo={},
        )
        in_graph = {asset.asset_id for asset in assets}
        activity_of: dict[str, str] = {}
        agents: set[str] = set()
        for asset in assets:
            entity = _qualified("asset", asset.asset_id)
            document.entity[entity] = {
                "prov:type": _qualified_value("provledger:Asset"),
                "prov:label": asset.name or asset.asset_id,
                "provledger:assetId": asset.asset_id,
                "provledger:classification": enum_text(
                    ledger_pb2.Classification.DESCRIPTOR, asset.classification
                ),
                "provledger:contentDigest": asset.content_digest.hex(),
                "provledger:owner": _qualified_value(_qualified("member", asset.owner_id)),
                "provledger:retired": asset.retired,
                "provledger:originEvent": asset.origin_event_id.hex(),
            }
            agents.add(asset.owner_id)
            origin = ledger.store.event(asset.origin_event_id)
            if origin is None:
                continue
            creator = _decode_event(origin).author.member_id
            when = iso_time(ledger.require_block(origin.height).header.time_ms)
            agents.add(creator)
            agent = _qualified("member", creator)
            document.wasAttributedTo[f"_:attributed-{len(document.wasAttributedTo)}"] = {
                "prov:entity": entity,
                "prov:agent": agent,
            }
            if not asset.parent_ids:
                continue
            activity = _qualified("event", asset.origin_event_id.hex())
            activity_of[asset.asset_id] = activity
            document.activity[activity] = {
                "prov:type": _qualified_value("provledger:Derivation"),
                "prov:label": asset.activity,
                "provledger:activity": asset.activity,
                "prov:startTime": when,
                "prov:endTime": when,
                "provledger:height": origin.height,
            }
            document.wasGeneratedBy[f"_:generated-{len(document.wasGeneratedBy)}"] = {
                "prov:entity": entity,
                "prov:activity": activity,
                "prov:time": when,
            }
            document.wasAssociatedWith[f"_:associated-{len(document.wasAssociatedWith)}"] = {
                "prov:activity": activity,
                "prov:agent": agent,
            }
        for parent, child in edges:
            if parent not in in_graph or child not in in_graph:
                continue
            derivation = {
                "prov:generatedEntity": _qualified("asset", child),
                "prov:usedEntity": _qualified("asset", parent),
            }
            derived_by = activity_of.get(child)
            if derived_by is not None:
                derivation["prov:activity"] = derived_by
                document.used[f"_:used-{len(document.used)}"] = {
                    "prov:activity": derived_by,
                    "prov:entity": _qualified("asset", parent),
                }
            document.wasDerivedFrom[f"_:derived-{len(document.wasDerivedFrom)}"] = derivation
        for member_id in sorted(agents):
            member = ledger.store.load("member", member_id)
            document.agent[_qualified("member", member_id)] = {
                "prov:type": _qualified_value("prov:Organization"),
                "prov:label": member.name if member is not None else member_id,  # type: ignore[attr-defined]
                "provledger:role": role_name(member.role) if member is not None else "unknown",  # type: ignore[attr-defined]
            }
        return document


# --- the app -------------------------------------------------------------------------------

_ERRORS = {
    400: "bad request (a parameter combination or a cursor this API did not issue)",
    401: "no bearer token, or a token that is not valid",
    403: "the token's member may not see this",
    404: "unknown id or height",
    422: "a parameter is missing or malformed",
}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text} for status, text in _ERRORS.items()
}
PUBLIC_RESPONSES: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorBody, "description": _ERRORS[422]}
}

Identifier = Annotated[
    str,
    Query(
        min_length=1,
        max_length=IDENTIFIER_LENGTH_CHARS_MAX,
        pattern=IDENTIFIER_PATTERN,
        description="an asset, member, grant or order id",
    ),
]
OptionalIdentifier = Annotated[
    str | None,
    Query(min_length=1, max_length=IDENTIFIER_LENGTH_CHARS_MAX, pattern=IDENTIFIER_PATTERN),
]
Cursor = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=REST_CURSOR_LENGTH_CHARS_MAX,
        description="next_cursor of the previous page",
    ),
]
Limit = Annotated[int, Query(ge=1, le=REST_PAGE_ITEMS_MAX, description="items per page")]
Height = Annotated[int, PathParameter(ge=1, le=INT64_MAX)]
OptionalHeight = Annotated[int | None, Query(ge=1, le=INT64_MAX)]
EventId = Annotated[
    str, PathParameter(pattern=EVENT_ID_PATTERN, description="64 lower-case hex digits")
]
EventIdQuery = Annotated[str, Query(pattern=EVENT_ID_PATTERN)]
Direction = Annotated[Literal["upstream", "downstream"], Query()]
Depth = Annotated[int, Query(ge=1, le=LINEAGE_DEPTH_MAX)]


_bearer = HTTPBearer(
    auto_error=False,
    description="a token from `provledger token issue --identity FILE --role ROLE`",
)


def _caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Reader:
    """Who is asking, from the bearer token; a 401 without a valid one."""
    if credentials is None:
        raise ApiError(401, "missing_token", "send Authorization: Bearer <token>")
    ledger: Ledger = request.app.state.ledger
    return ledger.authenticate(credentials.credentials)


Caller = Annotated[Reader, Depends(_caller)]


def _ledger(request: Request) -> Ledger:
    # Routes reach the ledger through the app, never through a closure: FastAPI caches
    # endpoint functions module-wide, and a closure would keep the store alive with them.
    return request.app.state.ledger  # type: ignore[no-any-return]


Api = Annotated[Ledger, Depends(_ledger)]


def create_app(view: NodeView) -> FastAPI:
    """The auditor API over `view`; see docs/rest-api.md."""
    app = FastAPI(
        title="provledger auditor API",
        version="1",
        description=(
            "Read-only views of a provledger node's ledger, with proofs checkable offline "
            "against the consortium's genesis file. Every /v1 route but /v1/health needs "
            "`Authorization: Bearer <token>` (`provledger token issue`)."
        ),
    )
    app.state.ledger = Ledger(view)

    # --- errors ----------------------------------------------------------------------------

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> JSONResponse:
        if error.status >= 500:
            log.error("%s %s: %s", request.method, request.url.path, error)
        headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
        return JSONResponse(
            {"error": error.error, "reason": error.reason}, error.status, headers=headers
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(part) for part in problem.get('loc', ()))}: {problem.get('msg', '')}"
            for problem in error.errors()
        ]
        return JSONResponse({"error": "bad_parameter", "reason": "; ".join(problems)}, 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        return JSONResponse(
            {"error": code, "reason": str(error.detail)},
            error.status_code,
            headers=getattr(error, "headers", None),
        )

    @app.exception_handler(Exception)
    async def internal_error(request: Request, error: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return JSONResponse(
            {"error": "internal", "reason": "the node failed to answer; see its log"}, 500
        )

    # --- the explorer and health -----------------------------------------------------------

    explorer.mount(app)  # the web page at / and /explorer/*

    @app.get("/v1/health", response_model=Health, tags=["node"])
    def health() -> Health:
        """Whether the node answers (no token needed)."""
        return Health(status="ok")

    # --- the chain -------------------------------------------------------------------------

    @app.get("/v1/status", response_model=StatusView, responses=ERROR_RESPONSES, tags=["chain"])
    def status(ledger: Api, caller: Caller) -> StatusView:
        """The chain, this node and its head."""
        return ledger.status()

    @app.get("/v1/blocks", response_model=BlockPage, responses=ERROR_RESPONSES, tags=["chain"])
    def blocks(
        ledger: Api, caller: Caller, cursor: Cursor = None, limit: Limit = REST_PAGE_ITEMS_DEFAULT
    ) -> BlockPage:
        """Block headers, newest first."""
        return ledger.blocks(cursor, limit)

    @app.get(
        "/v1/blocks/{height}", response_model=BlockView, responses=ERROR_RESPONSES, tags=["chain"]
    )
    def block(ledger: Api, caller: Caller, height: Height) -> BlockView:
        """One block: its header, event ids and the certificate that commits it."""
        return ledger.block_detail(height)

    @app.get(
        "/v1/checkpoint", response_model=CheckpointView, responses=ERROR_RESPONSES, tags=["chain"]
    )
    def checkpoint(ledger: Api, caller: Caller, height: OptionalHeight = None) -> CheckpointView:
        """A header with its commit certificate (the latest if no height): a signed tree head."""
        return ledger.checkpoint(height)

    # --- events and proofs -----------------------------------------------------------------

    @app.get(
        "/v1/events/{event_id}",
        response_model=EventView,
        responses=ERROR_RESPONSES,
        tags=["events"],
    )
    def event(ledger: Api, caller: Caller, event_id: EventId) -> EventView:
        """One committed event: decoded, with its signed bytes, height and log index."""
        return ledger.event(caller, event_id)

    @app.get(
        "/v1/proofs/inclusion/{event_id}",
        response_model=InclusionView,
        responses=ERROR_RESPONSES,
        tags=["proofs"],
    )
    def inclusion(
        ledger: Api, caller: Caller, event_id: EventId, height: OptionalHeight = None
    ) -> InclusionView:
        """RFC 6962 inclusion proof of an event in the log at a checkpoint (default latest)."""
        return ledger.inclusion(caller, event_id, height)

    @app.get(
        "/v1/proofs/consistency",
        response_model=ConsistencyView,
        responses=ERROR_RESPONSES,
        tags=["proofs"],
    )
    def consistency(
        ledger: Api,
        caller: Caller,
        first: Annotated[int, Query(ge=1, le=INT64_MAX)],
        second: OptionalHeight = None,
    ) -> ConsistencyView:
        """RFC 6962 consistency proof: the log at `first` is a prefix of the log at `second`."""
        return ledger.consistency(first, second)

    # --- assets ----------------------------------------------------------------------------

    @app.get("/v1/assets", response_model=AssetView, responses=ERROR_RESPONSES, tags=["assets"])
    def asset(ledger: Api, caller: Caller, asset_id: Identifier) -> AssetView:
        """An asset record: owner, classification, parents, holders, retired."""
        return ledger.asset(caller, asset_id)

    @app.get(
        "/v1/assets/history",
        response_model=EventPage,
        responses=ERROR_RESPONSES,
        tags=["assets"],
    )
    def history(
        ledger: Api,
        caller: Caller,
        asset_id: Identifier,
        cursor: Cursor = None,
        limit: Limit = REST_PAGE_ITEMS_DEFAULT,
    ) -> EventPage:
        """Events concerning the asset, in log order."""
        return ledger.history(caller, asset_id, cursor, limit)

    @app.get("/v1/lineage", response_model=LineageView, responses=ERROR_RESPONSES, tags=["assets"])
    def lineage(
        ledger: Api,
        caller: Caller,
        asset_id: Identifier,
        direction: Direction = "upstream",
        depth: Depth = LINEAGE_DEPTH_DEFAULT,
        cursor: Cursor = None,
        limit: Limit = REST_PAGE_ITEMS_DEFAULT,
    ) -> LineageView:
        """The lineage graph breadth-first from the asset, `limit` nodes a page; each edge is on
        the page of the node it leads away from."""
        return ledger.lineage(caller, asset_id, direction, depth, cursor, limit)

    @app.get(
        "/v1/prov",
        response_model=ProvDocument,
        responses={
            **ERROR_RESPONSES,
            200: {
                "description": f"PROV-JSON; the header {TRUNCATED_HEADER}: true says the graph "
                f"was cut by depth or at {LINEAGE_NODES_MAX} nodes",
            },
        },
        tags=["assets"],
    )
    def prov(
        ledger: Api,
        caller: Caller,
        response: Response,
        asset_id: Identifier,
        direction: Direction = "upstream",
        depth: Depth = LINEAGE_DEPTH_DEFAULT,
    ) -> ProvDocument:
        """The lineage as W3C PROV-JSON."""
        document, truncated = ledger.prov(caller, asset_id, direction, depth)
        response.headers[TRUNCATED_HEADER] = "true" if truncated else "false"
        return document

    # --- grants and authorization ----------------------------------------------------------

    @app.get("/v1/grants", response_model=GrantPage, responses=ERROR_RESPONSES, tags=["grants"])
    def grants(
        ledger: Api,
        caller: Caller,
        asset_id: OptionalIdentifier = None,
        member_id: OptionalIdentifier = None,
        cursor: Cursor = None,
        limit: Limit = REST_PAGE_ITEMS_DEFAULT,
    ) -> GrantPage:
        """Grants on an asset, or held (then issued) by a member: give exactly one id."""
        return ledger.grants(caller, asset_id, member_id, cursor, limit)

    @app.get(
        "/v1/grants/one", response_model=GrantDetail, responses=ERROR_RESPONSES, tags=["grants"]
    )
    def grant(ledger: Api, caller: Caller, grant_id: Identifier) -> GrantDetail:
        """One grant with its issuing and (if revoked) revoking events."""
        return ledger.grant_detail(caller, grant_id)

    @app.get(
        "/v1/authorization",
        response_model=AuthorizationView,
        responses=ERROR_RESPONSES,
        tags=["grants"],
    )
    def authorization(
        ledger: Api,
        caller: Caller,
        member_id: Identifier,
        asset_id: Identifier,
        purpose: Annotated[str, Query(min_length=1, max_length=TEXT_LENGTH_CHARS_MAX)],
        operation: Annotated[Literal["read", "compute", "derive", "share"], Query()],
        time_ms: Annotated[int | None, Query(ge=0, le=INT64_MAX)] = None,
    ) -> AuthorizationView:
        """Was the member authorised to use the asset for the purpose at the time (default:
        the latest block's)? With the events that decide it, each with an inclusion proof
        against the checkpoint returned."""
        return ledger.authorization(caller, member_id, asset_id, purpose, operation, time_ms)

    # --- trades ----------------------------------------------------------------------------

    @app.get("/v1/trades", response_model=TradePage, responses=ERROR_RESPONSES, tags=["trades"])
    def trades(
        ledger: Api,
        caller: Caller,
        asset_id: OptionalIdentifier = None,
        member_id: OptionalIdentifier = None,
        cursor: Cursor = None,
        limit: Limit = REST_PAGE_ITEMS_DEFAULT,
    ) -> TradePage:
        """Orders of an asset, or where a member is buyer, seller or exchange: give exactly one."""
        return ledger.trades(caller, asset_id, member_id, cursor, limit)

    @app.get(
        "/v1/trades/one", response_model=TradeDetail, responses=ERROR_RESPONSES, tags=["trades"]
    )
    def trade(ledger: Api, caller: Caller, order_id: Identifier) -> TradeDetail:
        """One order, its offer, its life cycle and its dispute."""
        return ledger.trade(caller, order_id)

    # --- evidence --------------------------------------------------------------------------

    bundle_response: dict[int | str, dict[str, Any]] = {
        **ERROR_RESPONSES,
        409: {
            "model": ErrorBody,
            "description": "the bundle cannot be built now (a block landed meanwhile: try "
            "again) or in the bundle format (an author key outside the genesis)",
        },
        200: {
            "description": "an evidence bundle (docs/evidence.md), as a download",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
    }

    def download(bundle: bytes, name: str) -> Response:
        return Response(
            bundle,
            media_type="application/json",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    @app.get(
        "/v1/evidence/event",
        response_class=Response,
        responses=bundle_response,
        tags=["evidence"],
    )
    def evidence_event(ledger: Api, caller: Caller, event_id: EventIdQuery) -> Response:
        """The evidence bundle for one event."""
        ledger.readable_location(caller, event_id)
        bundle = ledger.evidence("event_bundle", bytes.fromhex(event_id))
        return download(bundle, f"evidence-event-{event_id[:16]}.json")

    @app.get(
        "/v1/evidence/lineage",
        response_class=Response,
        responses=bundle_response,
        tags=["evidence"],
    )
    def evidence_lineage(ledger: Api, caller: Caller, asset_id: Identifier) -> Response:
        """The evidence bundle for an asset's upstream lineage."""
        ledger.require_asset(caller, asset_id)
        bundle = ledger.evidence("lineage_bundle", asset_id)
        return download(bundle, f"evidence-lineage-{_file_name(asset_id)}.json")

    @app.get(
        "/v1/evidence/trade",
        response_class=Response,
        responses=bundle_response,
        tags=["evidence"],
    )
    def evidence_trade(ledger: Api, caller: Caller, order_id: Identifier) -> Response:
        """The evidence bundle for a trade and its dispute."""
        ledger.require_order(caller, order_id)
        bundle = ledger.evidence("trade_bundle", order_id)
        return download(bundle, f"evidence-trade-{_file_name(order_id)}.json")

    return app


def _file_name(identifier: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", identifier)[:64]

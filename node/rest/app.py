"""The auditor REST API (FastAPI): routes, the bearer token, errors. See docs/rest-api.md.

`create_app(view)` builds the app over a `NodeView`: anything with a `store`, a `genesis`, a
`node_id`, a `clock_ms()` and the `forks` it saw (the running `LedgerNode` is one; tests use
`StoreView` over a bare `Store`). The contract:
- every answer is JSON, bytes as lower-case hex; every error is `{"error", "reason"}` with
  400 (bad request), 401 (no or bad token), 403 (not the caller's to see), 404 (unknown id),
  409 (a bundle that cannot be built now) or 422 (bad parameter); a 500 means a bug here and
  is logged;
- every request but the health check, the docs and the explorer carries a bearer token
  (protocol/tokens.py), checked against the ledger's member registry at the node's clock;
- what a token's member may read is protocol/access.py's judgement, asked through
  node/queries.py; lists are pages of at most REST_PAGE_ITEMS_MAX items with an opaque cursor
  (node/rest/cursors.py).

Routes are thin: each parses its parameters (FastAPI, from the annotations below) and returns
what node/rest/answers.py answers. They are plain functions: FastAPI runs them in its thread
pool, so a long query never holds the node's event loop (consensus and gRPC run there). The
store is safe for that: one writer, many readers, and records it returns are never mutated.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Protocol

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from provledger.node import explorer
from provledger.node.forks import ForkLog
from provledger.node.queries import LedgerQueries, QueryError
from provledger.node.readiness import Readiness
from provledger.node.rest import supervision
from provledger.node.rest.access_log import AccessLog
from provledger.node.rest.answers import Answers
from provledger.node.rest.cursors import INT64_MAX
from provledger.node.rest.models import (
    AssetView,
    AuthorizationView,
    BlockPage,
    BlockView,
    CheckpointView,
    ConsistencyView,
    ErrorBody,
    EventPage,
    EventView,
    ForkList,
    GrantDetail,
    GrantPage,
    Health,
    InclusionView,
    LineageView,
    MemberView,
    ProposalPage,
    ProposalView,
    ProvDocument,
    StatusView,
    TradeDetail,
    TradePage,
)
from provledger.node.rest.parameters import (
    ERROR_RESPONSES,
    Api,
    Caller,
    Cursor,
    Depth,
    Direction,
    EventId,
    EventIdQuery,
    Height,
    Identifier,
    Limit,
    OptionalHeight,
    OptionalIdentifier,
    ProposalId,
    ProposalLimit,
)
from provledger.node.settings import (
    REST_PAGE_ITEMS_DEFAULT,
)
from provledger.node.store import Store, StoreDamaged
from provledger.protocol.genesis import Genesis
from provledger.protocol.limits import (
    LINEAGE_DEPTH_DEFAULT,
    LINEAGE_NODES_MAX,
    PROPOSALS_PAGE_ITEMS_DEFAULT,
    PROV_HISTORY_EVENTS_SCANNED_MAX,
    TEXT_LENGTH_CHARS_MAX,
)

log = logging.getLogger("provledger.rest")

TRUNCATED_HEADER = "X-Provledger-Truncated"
# What each kind of QueryError answers.
STATUS = {
    "bad_request": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "unavailable": 409,
    "internal": 500,
}


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

    @property
    def forks(self) -> ForkLog | None: ...


@dataclass(frozen=True)
class StoreView:
    """A `NodeView` over a bare store (tests, tools)."""

    store: Store
    genesis: Genesis
    node_id: str
    clock_ms: Callable[[], int] = wall_clock_ms
    forks: ForkLog | None = None


# /docs. FastAPI's Swagger UI and ReDoc pages load their code from a public CDN, so on a
# consortium's isolated network they are blank; shipping that code in the node instead would
# put third-party script beside the explorer and its bearer tokens (the explorer's CSP allows
# nothing but its own files). So no interactive viewer is served: /docs is this page, which
# points to the OpenAPI document (docs/rest-api.md says how to view it offline).
DOCS_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>provledger auditor API</title></head>
<body>
<h1>provledger auditor API</h1>
<p>This node serves no interactive API viewer: one would load its code from the internet,
which a consortium's network may not reach.</p>
<ul>
<li>The OpenAPI 3 document: <a href="/openapi.json">/openapi.json</a>. Save it
(<code>curl -s -o provledger-openapi.json http://HOST:PORT/openapi.json</code>) and open it
in any OpenAPI viewer or editor installed where you are.</li>
<li>The contract, with the access rules and error codes: <code>docs/rest-api.md</code> in
the provledger source.</li>
<li>The web explorer: <a href="/">/</a>.</li>
</ul>
</body>
</html>
"""
DOCS_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def create_app(view: NodeView, readiness: Callable[[], Readiness] | None = None) -> FastAPI:
    """The auditor API over `view`; see docs/rest-api.md. With `readiness` (a running node's
    `NodeProbe.readiness`, node/operations.py), also /v1/health/live and /v1/health/ready."""
    app = FastAPI(
        docs_url=None,  # see DOCS_PAGE
        redoc_url=None,
        title="provledger auditor API",
        version="1",
        description=(
            "Read-only views of a provledger node's ledger, with proofs checkable offline "
            "against the consortium's genesis file. Every /v1 route but /v1/health needs "
            "`Authorization: Bearer <token>` (`provledger token issue`)."
        ),
    )
    queries = LedgerQueries(view.store, view.genesis)
    app.state.queries = queries
    app.state.answers = Answers(queries, view.node_id, view.forks)
    app.state.clock_ms = view.clock_ms
    app.add_middleware(AccessLog)  # one line per request (node/rest/access_log.py)

    # --- errors ----------------------------------------------------------------------------

    @app.exception_handler(StoreDamaged)
    async def store_damaged(request: Request, error: StoreDamaged) -> JSONResponse:
        log.error("%s %s: %s", request.method, request.url.path, error)
        return JSONResponse(
            {"error": "store_damaged", "reason": f"this node's ledger is damaged: {error}"}, 503
        )

    @app.exception_handler(QueryError)
    async def query_error(request: Request, error: QueryError) -> JSONResponse:
        status = STATUS[error.kind]
        if status >= 500:
            log.error("%s %s: %s", request.method, request.url.path, error)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse({"error": error.code, "reason": error.reason}, status, headers=headers)

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

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(DOCS_PAGE, headers=DOCS_HEADERS)

    @app.get("/v1/health", response_model=Health, tags=["node"])
    def health(ledger: Api) -> Health:
        """Whether the node answers, and whether it saw a fork (no token needed)."""
        return ledger.health()

    if readiness is not None:
        judge_readiness = readiness

        # async: on the node's loop, where the probe reads the peer network.
        @app.get("/v1/health/live", tags=["node"])
        async def health_live() -> JSONResponse:
            """The node's process serves (liveness; no token needed)."""
            return JSONResponse({"live": True})

        @app.get(
            "/v1/health/ready",
            tags=["node"],
            responses={503: {"description": "not ready; `reasons` says why"}},
        )
        async def health_ready() -> JSONResponse:
            """200 `{"ready": true, "reasons": []}` when ready, else 503 with every reason
            (node/readiness.py; no token needed)."""
            answer = judge_readiness()
            return JSONResponse(answer.as_json(), 200 if answer.ready else 503)

    @app.get("/v1/forks", response_model=ForkList, responses=ERROR_RESPONSES, tags=["node"])
    def forks(ledger: Api, caller: Caller) -> ForkList:
        """Quorum-signed blocks peers showed this node that conflict with its own (auditors)."""
        return ledger.fork_list(caller)

    @app.get(
        "/v1/forks/{number}",
        response_class=Response,
        responses={
            **ERROR_RESPONSES,
            200: {
                "description": "the proof of the fork (provledger-fork/1), as a download for "
                "`provledger verify`",
                "content": {"application/json": {"schema": {"type": "object"}}},
            },
        },
        tags=["node"],
    )
    def fork_proof(ledger: Api, caller: Caller, number: Height) -> Response:
        """The proof of one fork this node saw (auditors)."""
        return Response(
            ledger.fork_proof(caller, number),
            media_type="application/json",
            headers={"Content-Disposition": f'attachment; filename="fork-{number}.json"'},
        )

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
                f"was cut by depth or at {LINEAGE_NODES_MAX} nodes, or its complaints and "
                f"rulings after {PROV_HISTORY_EVENTS_SCANNED_MAX} history events",
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

    # --- governance ------------------------------------------------------------------------

    @app.get(
        "/v1/members", response_model=MemberView, responses=ERROR_RESPONSES, tags=["governance"]
    )
    def member(ledger: Api, caller: Caller, member_id: Identifier) -> MemberView:
        """A member: role, removed or not, and its keys with their revocations."""
        return ledger.member(caller, member_id)

    @app.get(
        "/v1/governance/proposals",
        response_model=ProposalPage,
        responses=ERROR_RESPONSES,
        tags=["governance"],
    )
    def proposals(
        ledger: Api,
        caller: Caller,
        open_only: bool = False,
        limit: ProposalLimit = PROPOSALS_PAGE_ITEMS_DEFAULT,
    ) -> ProposalPage:
        """The proposals recorded within the proposal lifetime of the head (the only ones that
        may be open), oldest first, each with its status and approvals."""
        return ledger.proposals(caller, open_only, limit)

    @app.get(
        "/v1/governance/proposals/one",
        response_model=ProposalView,
        responses=ERROR_RESPONSES,
        tags=["governance"],
    )
    def proposal(ledger: Api, caller: Caller, proposal_id: ProposalId) -> ProposalView:
        """One proposal, with its status, approvals and threshold."""
        return ledger.proposal(caller, proposal_id)

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

    app.include_router(supervision.router)

    # --- evidence --------------------------------------------------------------------------

    bundle_response: dict[int | str, dict[str, Any]] = {
        **ERROR_RESPONSES,
        409: {
            "model": ErrorBody,
            "description": "the bundle cannot be built now (a block landed meanwhile: try again)",
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
        bundle = ledger.queries.event_bundle(caller, bytes.fromhex(event_id))
        return download(bundle, f"evidence-event-{event_id[:16]}.json")

    @app.get(
        "/v1/evidence/lineage",
        response_class=Response,
        responses=bundle_response,
        tags=["evidence"],
    )
    def evidence_lineage(ledger: Api, caller: Caller, asset_id: Identifier) -> Response:
        """The evidence bundle for an asset's upstream lineage."""
        bundle = ledger.queries.lineage_bundle(caller, asset_id)
        return download(bundle, f"evidence-lineage-{_file_name(asset_id)}.json")

    @app.get(
        "/v1/evidence/trade",
        response_class=Response,
        responses=bundle_response,
        tags=["evidence"],
    )
    def evidence_trade(ledger: Api, caller: Caller, order_id: Identifier) -> Response:
        """The evidence bundle for a trade and its dispute."""
        bundle = ledger.queries.trade_bundle(caller, order_id)
        return download(bundle, f"evidence-trade-{_file_name(order_id)}.json")

    @app.get(
        "/v1/evidence/case",
        response_class=Response,
        responses=bundle_response,
        tags=["evidence"],
    )
    def evidence_case(ledger: Api, caller: Caller, case_id: Identifier) -> Response:
        """The case file of a case: its complaints, steps, ruling, remedies and appeal, with the
        trades and records they are about (its parties, regulators and auditors)."""
        bundle = ledger.queries.case_bundle(caller, case_id)
        return download(bundle, f"evidence-case-{_file_name(case_id)}.json")

    return app


def _file_name(identifier: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", identifier)[:64]

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

from fastapi import Depends, FastAPI, Query, Request
from fastapi import Path as PathParameter
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from provledger.node import assessments, cases, explorer
from provledger.node.forks import ForkLog
from provledger.node.queries import LedgerQueries, QueryError
from provledger.node.readiness import Readiness
from provledger.node.rest import cursors
from provledger.node.rest.access_log import AccessLog, note_member
from provledger.node.rest.answers import Answers
from provledger.node.rest.cursors import INT64_MAX
from provledger.node.rest.customs import AssessmentPage, AssessmentView, assessment_view
from provledger.node.rest.models import (
    AssetView,
    AuthorizationView,
    BlockPage,
    BlockView,
    CaseDetail,
    CasePage,
    CatalogueOfferView,
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
    OfferPage,
    ProposalPage,
    ProposalView,
    ProvDocument,
    StatusView,
    TradeDetail,
    TradePage,
)
from provledger.node.rest.views import case_detail, case_page
from provledger.node.settings import (
    REST_CURSOR_LENGTH_CHARS_MAX,
    REST_PAGE_ITEMS_DEFAULT,
    REST_PAGE_ITEMS_MAX,
)
from provledger.node.store import Store, StoreDamaged
from provledger.protocol.access import Reader
from provledger.protocol.catalogue import OfferFilters, search_words
from provledger.protocol.genesis import Genesis
from provledger.protocol.limits import (
    CASES_PAGE_ITEMS_DEFAULT,
    CASES_PAGE_ITEMS_MAX,
    IDENTIFIER_LENGTH_CHARS_MAX,
    LINEAGE_DEPTH_DEFAULT,
    LINEAGE_DEPTH_MAX,
    LINEAGE_NODES_MAX,
    OFFERS_PAGE_ITEMS_DEFAULT,
    OFFERS_PAGE_ITEMS_MAX,
    PROPOSALS_PAGE_ITEMS_DEFAULT,
    PROPOSALS_PAGE_ITEMS_MAX,
    PROV_HISTORY_EVENTS_SCANNED_MAX,
    TEXT_LENGTH_CHARS_MAX,
)
from provledger.v1 import state_pb2

log = logging.getLogger("provledger.rest")

IDENTIFIER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$"
EVENT_ID_PATTERN = r"^[0-9a-f]{64}$"
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
ProposalId = Annotated[str, Query(pattern=EVENT_ID_PATTERN, description="64 lower-case hex digits")]
ProposalLimit = Annotated[
    int, Query(ge=1, le=PROPOSALS_PAGE_ITEMS_MAX, description="proposals at most")
]
CASE_STATUSES = {
    "open": state_pb2.CASE_STATUS_OPEN,
    "ruled": state_pb2.CASE_STATUS_RULED,
    "appealed": state_pb2.CASE_STATUS_APPEALED,
    "appeal_decided": state_pb2.CASE_STATUS_APPEAL_DECIDED,
}
CaseStatusQuery = Annotated[Literal["open", "ruled", "appealed", "appeal_decided"] | None, Query()]
CaseLimit = Annotated[int, Query(ge=1, le=CASES_PAGE_ITEMS_MAX, description="cases at most")]
Direction = Annotated[Literal["upstream", "downstream"], Query()]
OfferLimit = Annotated[int, Query(ge=1, le=OFFERS_PAGE_ITEMS_MAX, description="offers at most")]
Price = Annotated[int | None, Query(ge=0, le=2**64 - 1, description="minor units, inclusive")]
CLASSIFICATION_NUMBERS = {"general": 1, "important": 2, "core": 3}
OFFER_STATUS_NUMBERS = {"listed": 1, "delisted": 2}
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
    queries: LedgerQueries = request.app.state.queries
    token = credentials.credentials if credentials is not None else None
    reader = queries.authenticate(token, request.app.state.clock_ms())
    note_member(request, reader.member_id)  # the access log names the member, not the token
    return reader


Caller = Annotated[Reader, Depends(_caller)]


def _answers(request: Request) -> Answers:
    # Routes reach the ledger through the app, never through a closure: FastAPI caches
    # endpoint functions module-wide, and a closure would keep the store alive with them.
    return request.app.state.answers  # type: ignore[no-any-return]


Api = Annotated[Answers, Depends(_answers)]


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

    # --- supervision: cases (node/cases.py) -------------------------------------------------

    @app.get("/v1/cases", response_model=CasePage, responses=ERROR_RESPONSES, tags=["cases"])
    def list_cases(
        ledger: Api,
        caller: Caller,
        member_id: OptionalIdentifier = None,
        subject_id: OptionalIdentifier = None,
        status: CaseStatusQuery = None,
        cursor: Cursor = None,
        limit: CaseLimit = CASES_PAGE_ITEMS_DEFAULT,
    ) -> CasePage:
        """Cases the caller may read, by case id: where `member_id` is a party, about
        `subject_id` (an order, offer, asset or grant), in `status`. Without member_id and
        subject_id, a member that is not a regulator or auditor lists its own."""
        scope = cursors.scope("cases", member_id, subject_id, status)
        after = None if cursor is None else cursors.cursor_identifier(cursor, "cases", scope)
        page = cases.list_cases(
            ledger.queries,
            caller,
            member_id=member_id,
            subject_id=subject_id,
            status=CASE_STATUSES[status] if status is not None else 0,
            limit=limit,
            after_case_id=after,
        )
        next_cursor = (
            cursors.encode_cursor("cases", page.next_after_case_id, scope) if page.more else None
        )
        return case_page(page, next_cursor)

    @app.get("/v1/cases/one", response_model=CaseDetail, responses=ERROR_RESPONSES, tags=["cases"])
    def case(ledger: Api, caller: Caller, case_id: Identifier) -> CaseDetail:
        """One case: its record, complaints, timeline in words, appeal deadline and finality."""
        return case_detail(cases.require_case(ledger.queries, caller, case_id))

    # --- the market's catalogue ------------------------------------------------------------

    @app.get("/v1/offers", response_model=OfferPage, responses=ERROR_RESPONSES, tags=["market"])
    def offers(
        ledger: Api,
        caller: Caller,
        asset_id: OptionalIdentifier = None,
        seller_id: OptionalIdentifier = None,
        broker_id: OptionalIdentifier = None,
        classification: Annotated[Literal["general", "important", "core"] | None, Query()] = None,
        status: Annotated[Literal["listed", "delisted"] | None, Query()] = None,
        price_min: Price = None,
        price_max: Price = None,
        currency: OptionalIdentifier = None,
        q: Annotated[
            str | None,
            Query(max_length=TEXT_LENGTH_CHARS_MAX, description="words the title must hold"),
        ] = None,
        cursor: Cursor = None,
        limit: OfferLimit = OFFERS_PAGE_ITEMS_DEFAULT,
    ) -> OfferPage:
        """The market's catalogue (every member's read): offers matching every filter given,
        by offer id, with their asset's classification and name as they stand now."""
        filters = OfferFilters(
            asset_id=asset_id or "",
            seller_id=seller_id or "",
            broker_id=broker_id or "",
            classification=CLASSIFICATION_NUMBERS[classification] if classification else 0,
            status=OFFER_STATUS_NUMBERS[status] if status else 0,
            price_min=price_min,
            price_max=price_max,
            currency=currency or "",
            title_words=search_words(q or ""),
        )
        return ledger.offers(caller, filters, cursor, limit)

    @app.get(
        "/v1/offers/one",
        response_model=CatalogueOfferView,
        responses=ERROR_RESPONSES,
        tags=["market"],
    )
    def offer(ledger: Api, caller: Caller, offer_id: Identifier) -> CatalogueOfferView:
        """One offer of the catalogue."""
        return ledger.offer(caller, offer_id)

    # --- data customs ----------------------------------------------------------------------

    @app.get(
        "/v1/assessments",
        response_model=AssessmentPage,
        responses=ERROR_RESPONSES,
        tags=["customs"],
    )
    def assessments_list(
        ledger: Api,
        caller: Caller,
        overdue: Annotated[bool, Query(description="only those with overdue reports")] = False,
        cursor: Cursor = None,
        limit: Limit = REST_PAGE_ITEMS_DEFAULT,
    ) -> AssessmentPage:
        """Security assessments the caller may see, by id; with `overdue=true` only those whose
        recipient missed a report (judged at the head block's time)."""
        scope = cursors.scope("assessments", overdue)
        after = None if cursor is None else cursors.cursor_identifier(cursor, "assessments", scope)
        answers, next_id = assessments.assessments_page(
            ledger.queries, caller, overdue, after, limit
        )
        items = [assessment_view(answer) for answer in answers]
        if next_id is None:
            return AssessmentPage(items=items, next_cursor=None)
        next_cursor = cursors.encode_cursor("assessments", next_id, scope)
        return AssessmentPage(items=items, next_cursor=next_cursor)

    @app.get(
        "/v1/assessments/one",
        response_model=AssessmentView,
        responses=ERROR_RESPONSES,
        tags=["customs"],
    )
    def assessment(ledger: Api, caller: Caller, assessment_id: Identifier) -> AssessmentView:
        """One security assessment: its scope, the moves it allowed, the reports filed under it,
        its overdue periods and the next report due."""
        answer = assessments.require_assessment(ledger.queries, caller, assessment_id)
        return assessment_view(answer)

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

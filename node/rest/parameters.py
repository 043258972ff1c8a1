"""The REST API's parameters and dependencies, shared by every route module: the annotated
query and path parameters (with their bounds), the error responses each route declares, the
caller (`Caller`, from the bearer token) and the answers (`Api`). node/rest/app.py builds the
app; node/rest/supervision.py routes the market, cases and data customs.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Depends, Query, Request
from fastapi import Path as PathParameter
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from provledger.node.queries import LedgerQueries
from provledger.node.rest.access_log import note_member
from provledger.node.rest.answers import Answers
from provledger.node.rest.cursors import INT64_MAX
from provledger.node.rest.models import (
    ErrorBody,
)
from provledger.node.settings import (
    REST_CURSOR_LENGTH_CHARS_MAX,
    REST_PAGE_ITEMS_MAX,
)
from provledger.protocol.access import Reader
from provledger.protocol.limits import (
    CASES_PAGE_ITEMS_MAX,
    IDENTIFIER_LENGTH_CHARS_MAX,
    LINEAGE_DEPTH_MAX,
    OFFERS_PAGE_ITEMS_MAX,
    PROPOSALS_PAGE_ITEMS_MAX,
)
from provledger.v1 import state_pb2

IDENTIFIER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$"
EVENT_ID_PATTERN = r"^[0-9a-f]{64}$"

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

"""The REST access log: one line per request, at INFO on the logger `provledger.rest.access`,
in the node's log format (node/logs.py).

A line names the method, the path (never the query string, which may carry what a caller did
not mean to publish), the status, the duration in milliseconds and the MEMBER whose token
authenticated the request, or `-` without a valid token. The token itself is never logged:
the route's authentication (`_caller` in node/rest/app.py) calls `note_member` with the member
it found, and this middleware reads only that.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.requests import Request

log = logging.getLogger("provledger.rest.access")

NO_MEMBER = "-"
_MEMBER_STATE = "access_log_member"

Scope = dict[str, Any]


def note_member(request: Request, member_id: str) -> None:
    """Record who a request's token authenticated, for its access log line."""
    setattr(request.state, _MEMBER_STATE, member_id)


def access_fields(scope: Scope, status: int, duration_s: float) -> dict[str, Any]:
    """The access log's fields for a finished request (see node/logs.py FIELDS)."""
    state = scope.get("state") or {}
    return {
        "method": scope.get("method", "-"),
        "path": scope.get("path", "-"),
        "status": status,
        "duration_ms": round(duration_s * 1000, 1),
        "member": state.get(_MEMBER_STATE, NO_MEMBER),
    }


class AccessLog:
    """ASGI middleware writing one access log line per HTTP request, answered or failed (a
    request that raises is logged with status 500, then the error goes on up)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            if log.isEnabledFor(logging.INFO):
                fields = access_fields(scope, status, time.perf_counter() - started)
                log.info(
                    "%s %s %d %.1f ms %s",
                    fields["method"],
                    fields["path"],
                    fields["status"],
                    fields["duration_ms"],
                    fields["member"],
                    extra=fields,
                )

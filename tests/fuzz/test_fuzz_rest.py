"""Fuzzing the auditor REST API: requests through FastAPI's TestClient to the app
`create_app` builds over the story committed into a real LevelDB store.

Seeds are requests every route answers with a 200: real heights, event ids, asset, grant,
order and member ids, and cursors the API issued (the next page of each list), with an
auditor's token. Inputs change them: a parameter's value changed (text edits, boundary
numbers, other ids), dropped, repeated or added; a path segment changed; the method changed;
the Authorization header replaced (a member's token, which sees less; a changed token;
another scheme; none); or a raw path of arbitrary characters.

The property: every answer is a 200 or a 4xx (never a 5xx, never an exception out of the app,
never longer than HANG_SECONDS); every 4xx is the JSON error body `{"error", "reason"}`; an
answer labelled JSON is JSON; the store is unchanged (the API only reads).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from urllib.parse import quote

from fuzz._harness import Finding, count, fuzz_settings, timed, unexpected
from fuzz._mutate import (
    INTERESTING_INTEGERS,
    Choices,
    DrawChoices,
    ProviderChoices,
    interesting_text,
    mutate_json,
    mutate_text,
    pick,
)
from fuzz._story import SEED_TIME_MS, VOCABULARY, leveldb_world
from hypothesis import given
from hypothesis import strategies as st

from provledger.protocol.tokens import issue_token

TARGET = "rest"
NOW_MS = SEED_TIME_MS + 1_000  # the node's clock
TOKEN_TTL_MS = 3_600_000
METHODS = ("GET", "GET", "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH")


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    params: tuple[tuple[str, str], ...] = ()
    authorization: str | None = None
    raw_path: bool = False  # `path` is sent as it is (already encoded)
    labels: dict[str, str] = field(default_factory=dict, compare=False)

    def describe(self) -> str:
        token = None if self.authorization is None else self.authorization[:60]
        return f"{self.method} {self.path} params={list(self.params)} authorization={token!r}"


@cache
def _client():
    from fastapi.testclient import TestClient

    from provledger.node.rest import StoreView, create_app

    world = leveldb_world()
    view = StoreView(
        world.store,  # type: ignore[arg-type]
        world.consortium.genesis,
        "validator-0",
        clock_ms=lambda: NOW_MS,
    )
    return TestClient(create_app(view), raise_server_exceptions=True)


@cache
def tokens() -> dict[str, str]:
    consortium = leveldb_world().consortium
    chain = consortium.chain_id
    made = {}
    for member_id, role in (("auditor", "auditor"), ("agency-b", "member"), ("exchange", "member")):
        key = consortium[member_id].key
        made[member_id] = issue_token(key, member_id, role, chain, SEED_TIME_MS, TOKEN_TTL_MS)
    return made


def _auditor() -> str:
    return "Bearer " + tokens()["auditor"]


@cache
def seeds() -> tuple[Request, ...]:
    world = leveldb_world()
    ids = {label: identifier.hex() for label, identifier in world.event_ids.items()}
    auth = _auditor()

    def get(path: str, **params: object) -> Request:
        return Request("GET", path, tuple((k, str(v)) for k, v in params.items()), auth)

    made = [
        Request("GET", "/v1/health"),
        get("/v1/status"),
        get("/v1/blocks", limit=2),
        get("/v1/blocks/3"),
        get("/v1/checkpoint"),
        get("/v1/checkpoint", height=5),
        get(f"/v1/events/{ids['fused']}"),
        get(f"/v1/proofs/inclusion/{ids['raw-a']}", height=6),
        get("/v1/proofs/consistency", first=2, second=7),
        get("/v1/assets", asset_id="fused"),
        get("/v1/assets/history", asset_id="raw-a", limit=2),
        get("/v1/lineage", asset_id="fused", direction="upstream", depth=3, limit=1),
        get("/v1/lineage", asset_id="raw-a", direction="downstream"),
        get("/v1/prov", asset_id="fused"),
        get("/v1/grants", asset_id="raw-a"),
        get("/v1/grants", member_id="agency-b", limit=1),
        get("/v1/grants/one", grant_id="g-1"),
        get(
            "/v1/authorization",
            member_id="agency-b",
            asset_id="raw-a",
            purpose="analytics",
            operation="read",
            time_ms=SEED_TIME_MS,
        ),
        get("/v1/trades", asset_id="raw-a", limit=1),
        get("/v1/trades", member_id="agency-b"),
        get("/v1/trades/one", order_id="order-1"),
        get("/v1/evidence/event", event_id=ids["g-1"]),
        get("/v1/evidence/lineage", asset_id="fused"),
        get("/v1/evidence/trade", order_id="order-1"),
        get("/v1/offers", limit=1),
        get("/v1/offers", seller_id="agency-a", status="listed", q="raw", limit=1),
        get("/v1/offers/one", offer_id="offer-1"),
        get("/v1/cases", limit=1),
        get("/v1/cases", member_id="agency-b", status="open", limit=1),
        Request("GET", "/"),
        Request("GET", "/openapi.json"),
    ]
    return tuple(made) + tuple(_next_pages(made))


def _next_pages(requests: Sequence[Request]) -> list[Request]:
    """The next page of every list seed, with the cursor the API issued."""
    pages = []
    for request in requests:
        if not any(name == "limit" for name, _ in request.params):
            continue
        response = _send(request)
        cursor = response.json().get("next_cursor")
        if cursor:
            pages.append(replace(request, params=(*request.params, ("cursor", cursor))))
    return pages


def _send(request: Request):
    client = _client()
    headers = {}
    if request.authorization is not None:  # as bytes: a header may carry any octet but CR LF
        value = request.authorization.encode("utf-8", errors="replace")
        headers["Authorization"] = value.replace(b"\r", b"").replace(b"\n", b"")
    if request.raw_path:
        return client.request(request.method, request.path, headers=headers)
    return client.request(request.method, request.path, params=request.params, headers=headers)


def _store_state() -> tuple:
    store = leveldb_world().store
    return store.head_height, store.tip, store.log.size  # type: ignore[attr-defined]


# --- the property --------------------------------------------------------------------------


def check_request(request: Request, *, valid: bool = False) -> int:
    """Send `request`; `valid`: it must be answered 200. Returns the status."""
    before = _store_state()
    with timed(request.describe):
        try:
            response = _send(request)
        except Exception as error:
            raise unexpected(error, request.describe()) from error
    status = response.status_code
    what = f"{request.describe()} -> {status} {response.text[:300]!r}"
    if status >= 500:
        raise Finding("server_error", what)
    if valid and status != 200:
        raise Finding("valid_request_refused", what)
    if status >= 400 and request.method != "HEAD":
        try:
            body = response.json()
        except ValueError:
            raise Finding("error_not_json", what) from None
        if not isinstance(body, dict) or set(body) != {"error", "reason"}:
            raise Finding("error_body_shape", what)
        if not isinstance(body["error"], str) or not isinstance(body["reason"], str):
            raise Finding("error_body_shape", what)
    elif request.method != "HEAD" and response.headers.get("content-type", "").startswith(
        "application/json"
    ):
        try:
            json.loads(response.content)
        except ValueError:
            raise Finding("answer_not_json", what) from None
    if _store_state() != before:
        raise Finding("state_changed", f"a read changed the store: {what}")
    count(TARGET, f"status_{status}")
    return status


# --- the inputs ----------------------------------------------------------------------------


def _number_text(choices: Choices) -> str:
    kind = choices.integer(0, 3)
    if kind == 0:
        return str(pick(choices, INTERESTING_INTEGERS))
    if kind == 1:
        return pick(choices, ("1.5", "1e3", "+1", " 1", "0x1", "٣", "1_0", "nan", "-0", "9" * 40))
    return str(choices.integer(-10, 12))


def _authorization(choices: Choices) -> str | None:
    kind = choices.integer(0, 7)
    if kind == 0:
        return None
    if kind == 1:
        return "Bearer " + pick(choices, list(tokens().values()))
    if kind == 2:
        return "Bearer " + mutate_text(tokens()["auditor"], choices)
    if kind == 3:
        return pick(choices, ("Bearer", "Bearer ", "bearer " + tokens()["auditor"], "Basic YTpi"))
    if kind == 4:
        return "Bearer " + interesting_text(choices, VOCABULARY)
    if kind == 5:
        return "Bearer " + tokens()["auditor"] + pick(choices, (" ", ".", "x", " extra"))
    return _auditor()


def _cursor(old: str, choices: Choices) -> str:
    """A cursor whose JSON inside was changed (kind, value or scope), encoded as the API
    encodes its own."""
    try:
        document = json.loads(base64.urlsafe_b64decode(old + "=" * (-len(old) % 4)))
    except ValueError:
        document = ["history", 0, ""]
    text = json.dumps(mutate_json(document, choices), separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


def _value(name: str, old: str, choices: Choices) -> str:
    if name == "cursor" and choices.integer(0, 1):
        return _cursor(old, choices)
    kind = choices.integer(0, 3)
    if kind == 0:
        return mutate_text(old, choices)
    if kind == 1 or name in ("limit", "height", "first", "second", "depth", "time_ms"):
        return _number_text(choices)
    return interesting_text(choices, VOCABULARY)


_PARAMETERS = (
    "asset_id", "member_id", "grant_id", "order_id", "event_id", "cursor", "limit", "height",
    "first", "second", "depth", "direction", "purpose", "operation", "time_ms", "unknown",
    "offer_id", "case_id", "seller_id", "status", "q",
)  # fmt: skip


def changed_request(choices: Choices) -> Request:
    request = pick(choices, seeds())
    for _ in range(choices.integer(1, 3)):
        params = list(request.params)
        operation = choices.integer(0, 7)
        if operation <= 1 and params:  # change a value
            index = choices.integer(0, len(params) - 1)
            name, old = params[index]
            params[index] = (name, _value(name, old, choices))
        elif operation == 2 and params:  # drop one
            del params[choices.integer(0, len(params) - 1)]
        elif operation == 3 and params:  # repeat one, with another value
            name, old = pick(choices, params)
            params.append((name, _value(name, old, choices)))
        elif operation == 4:  # add one
            name = pick(choices, _PARAMETERS)
            params.append((name, _value(name, pick(choices, VOCABULARY), choices)))
        elif operation == 5:  # a path segment
            head, _, last = request.path.rpartition("/")
            request = replace(request, path=head + "/" + quote(_value("path", last, choices)))
        elif operation == 6:
            request = replace(request, authorization=_authorization(choices))
        else:
            request = replace(request, method=pick(choices, METHODS))
        request = replace(request, params=tuple(params))
    return request


def raw_path(choices: Choices) -> Request:
    base = pick(choices, seeds()).path
    path = base + pick(choices, ("", "/", "//", "/..", "%2F", "?", "#", "%", "%zz", "/%00"))
    path += quote(choices.binary(12).decode("latin-1"), safe="/?=&%")
    return Request(pick(choices, METHODS), path, (), _authorization(choices), raw_path=True)


def request_from(choices: Choices) -> Request:
    return raw_path(choices) if choices.integer(0, 7) == 0 else changed_request(choices)


# --- bounded runs (make test) --------------------------------------------------------------


def test_every_seed_request_is_answered_200() -> None:
    for request in seeds():
        assert check_request(request, valid=True) == 200, request.describe()


@fuzz_settings(examples=250)
@given(st.data())
def test_changed_requests_get_a_200_or_a_json_4xx(data) -> None:
    check_request(request_from(DrawChoices(data)))


HYPOTHESIS_TESTS = (test_changed_requests_get_a_200_or_a_json_4xx,)


# --- coverage-guided runs (make fuzz, with atheris) ----------------------------------------


def atheris_corpus() -> Sequence[bytes]:
    return [bytes([index % 256]) + bytes(index // 256) + bytes(12) for index in range(40)]


def atheris_one_input(data: bytes) -> None:
    import atheris

    check_request(request_from(ProviderChoices(atheris.FuzzedDataProvider(data))))

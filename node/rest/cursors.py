"""Opaque cursors for the REST API's pages.

A cursor is base64url of `[kind, value, scope]`, where the scope fingerprints the query it was
issued for: reusing it for another query, or forging one, is a 400 `bad_cursor`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from typing import Any

from provledger.node.queries import bad_request
from provledger.protocol.limits import IDENTIFIER_LENGTH_CHARS_MAX

INT64_MAX = 2**63 - 1
_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]*")


def scope(*parts: object) -> str:
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


def cursor_number(cursor: str, kind: str, scope: str) -> int:
    value = decode_cursor(cursor, kind, scope)
    if type(value) is not int or not 0 <= value <= INT64_MAX:
        raise bad_request("bad_cursor", "the cursor is not one this API issued")
    return value


def is_identifier(value: object) -> bool:
    return (
        isinstance(value, str)
        and len(value) <= IDENTIFIER_LENGTH_CHARS_MAX
        and _IDENTIFIER.fullmatch(value) is not None
    )


def cursor_identifier(cursor: str, kind: str, scope: str) -> str:
    value = decode_cursor(cursor, kind, scope)
    if not is_identifier(value):
        raise bad_request("bad_cursor", "the cursor is not one this API issued")
    return value  # type: ignore[no-any-return]

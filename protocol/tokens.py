"""Bearer tokens for reads (REST and gRPC): issued by a member's key, checked against the ledger.

A token is `base64url(payload) "." base64url(signature)` (no padding). The payload is the
canonical JSON (sorted keys, no spaces, UTF-8) of

    {"chain_id", "member_id", "key_id" (lowercase hex), "role", "issued_at_ms", "expires_at_ms"}

and the signature is Ed25519 over `DOMAIN_TOKEN || payload bytes` by the member key the
payload names. Only that canonical encoding is a token: payload bytes that parse to the same
claims but are written otherwise (spaces, another key order, needless escapes, a key twice,
uppercase hex) are refused (`non_canonical`), so a signed token has exactly one spelling and
carries no bytes its claims do not say.

There is no shared secret and no session: any node checks any token against its own member
registry (the ledger), so a key rotated away or a member removed stops its tokens everywhere
at the next block.

Roles: `auditor` reads everything and is only valid for members whose ledger role is auditor
or regulator; `member` reads what concerns the member, and any active member may hold one.

Pure: time comes in as `issued_at_ms` / `now_ms`, the member registry as a lookup function.
Every failure raises `TokenError` with a stable `code` (see `TOKEN_ERRORS`) and a reason.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import re
from collections.abc import Callable
from dataclasses import dataclass

from provledger.protocol import crypto
from provledger.protocol.errors import CodedError
from provledger.protocol.genesis import canonical_json, role_name
from provledger.protocol.limits import (
    KEY_ID_SIZE_BYTES,
    SIGNATURE_SIZE_BYTES,
    TOKEN_CLOCK_SKEW_MS_MAX,
    TOKEN_SIZE_BYTES_MAX,
    TOKEN_TTL_MS_MAX,
)
from provledger.v1 import ledger_pb2, state_pb2

DOMAIN_TOKEN = b"provledger/v1/token\x00"
ROLE_AUDITOR = "auditor"
ROLE_MEMBER = "member"
TOKEN_ROLES = (ROLE_AUDITOR, ROLE_MEMBER)
# Ledger roles whose members may hold an auditor token.
AUDITOR_LEDGER_ROLES = (ledger_pb2.ROLE_AUDITOR, ledger_pb2.ROLE_REGULATOR)
_PAYLOAD_FIELDS = frozenset(
    ("chain_id", "member_id", "key_id", "role", "issued_at_ms", "expires_at_ms")
)
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")
_TIME_MS_MAX = 2**63 - 1

# Every code `verify_token` can raise, and what it means.
TOKEN_ERRORS = {
    "malformed": "not a provledger token: bad encoding, JSON, fields or lifetime",
    "non_canonical": "the payload is not the canonical JSON of its claims",
    "wrong_chain": "issued for another chain",
    "unknown_member": "the member is not in the ledger's registry",
    "member_removed": "the member has been removed",
    "unknown_key": "the key is not a current key of the member",
    "key_revoked": "the key was revoked as compromised",
    "bad_signature": "the signature does not match the payload and key",
    "not_yet_valid": "issued in the future (beyond the tolerated clock skew)",
    "expired": "past its expiry",
    "role_not_allowed": "the token's role is not allowed for the member's ledger role",
}

MembersLookup = Callable[[str], state_pb2.MemberRecord | None]


class TokenError(CodedError):
    """A token that must not be accepted; `code` is one of `TOKEN_ERRORS`."""


@dataclass(frozen=True)
class TokenClaims:
    chain_id: str
    member_id: str
    key_id: bytes
    role: str
    issued_at_ms: int
    expires_at_ms: int
    ledger_role: int  # the member's role in the ledger when the token was checked


def _encode_payload(claims: TokenClaims) -> bytes:
    """The one encoding of a token's claims: canonical JSON of exactly the documented fields."""
    return canonical_json(
        {
            "chain_id": claims.chain_id,
            "member_id": claims.member_id,
            "key_id": claims.key_id.hex(),
            "role": claims.role,
            "issued_at_ms": claims.issued_at_ms,
            "expires_at_ms": claims.expires_at_ms,
        }
    )


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _decode(text: str, what: str) -> bytes:
    if not _BASE64URL.fullmatch(text):
        raise TokenError("malformed", f"the {what} is not base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise TokenError("malformed", f"the {what} is not base64url") from None
    # One spelling per token: unused trailing bits set would be another text for the same bytes.
    if base64.urlsafe_b64encode(data).rstrip(b"=").decode() != text:
        raise TokenError("non_canonical", f"the {what} is not canonical base64url")
    return data


def issue_token(
    key: crypto.SigningKey,
    member_id: str,
    role: str,
    chain_id: str,
    issued_at_ms: int,
    ttl_ms: int,
) -> str:
    """A token for `member_id` signed by `key`, valid from `issued_at_ms` for `ttl_ms`.

    Raises ValueError for a role that is not `auditor` or `member`, or a lifetime outside
    1..TOKEN_TTL_MS_MAX. Whether the member may hold the role is the verifier's question."""
    if role not in TOKEN_ROLES:
        raise ValueError(f"role must be one of {TOKEN_ROLES}, got {role!r}")
    if not 0 < ttl_ms <= TOKEN_TTL_MS_MAX:
        raise ValueError(f"the lifetime must be 1..{TOKEN_TTL_MS_MAX} ms, got {ttl_ms}")
    if not member_id:
        raise ValueError("member_id is required")
    if not 0 <= issued_at_ms <= _TIME_MS_MAX - ttl_ms:
        raise ValueError(f"issued_at_ms out of range: {issued_at_ms}")
    payload = _encode_payload(
        TokenClaims(
            chain_id=chain_id,
            member_id=member_id,
            key_id=key.key_id,
            role=role,
            issued_at_ms=issued_at_ms,
            expires_at_ms=issued_at_ms + ttl_ms,
            ledger_role=ledger_pb2.ROLE_UNSPECIFIED,
        )
    )
    token = _encode(payload) + "." + _encode(key.sign(DOMAIN_TOKEN, payload))
    if len(token) > TOKEN_SIZE_BYTES_MAX:
        raise ValueError(
            f"the token would be {len(token)} bytes; the limit is "
            f"{TOKEN_SIZE_BYTES_MAX} (member or chain id too long)"
        )
    return token


def _time(payload: dict, name: str) -> int:
    value = payload[name]
    if type(value) is not int or not 0 <= value <= _TIME_MS_MAX:
        raise TokenError("malformed", f"{name} must be a non-negative 64-bit integer")
    return value


def _text(payload: dict, name: str) -> str:
    value = payload[name]
    if not isinstance(value, str) or not value:
        raise TokenError("malformed", f"{name} must be a non-empty string")
    return value


def decode_token(token: str) -> tuple[TokenClaims, bytes, bytes]:
    """The claims a token states, its payload bytes and its signature, checked for form only
    (nothing here says the token is valid: see `verify_token`)."""
    if not isinstance(token, str) or len(token) > TOKEN_SIZE_BYTES_MAX:
        raise TokenError(
            "malformed", f"a token is a string of at most {TOKEN_SIZE_BYTES_MAX} bytes"
        )
    parts = token.split(".")
    if len(parts) != 2:
        raise TokenError("malformed", "a token is two base64url parts joined by '.'")
    payload_bytes = _decode(parts[0], "payload")
    signature = _decode(parts[1], "signature")
    if len(signature) != SIGNATURE_SIZE_BYTES:
        raise TokenError("malformed", f"the signature must be {SIGNATURE_SIZE_BYTES} bytes")
    try:
        payload = json.loads(payload_bytes)
    except (ValueError, UnicodeDecodeError):
        raise TokenError("malformed", "the payload is not JSON") from None
    if not isinstance(payload, dict) or set(payload) != _PAYLOAD_FIELDS:
        raise TokenError("malformed", f"the payload must hold exactly {sorted(_PAYLOAD_FIELDS)}")
    key_text = _text(payload, "key_id")
    try:
        key_id = bytes.fromhex(key_text)
    except ValueError:
        raise TokenError("malformed", "key_id must be hex") from None
    if len(key_id) != KEY_ID_SIZE_BYTES:
        raise TokenError("malformed", f"key_id must be {KEY_ID_SIZE_BYTES} bytes")
    role = _text(payload, "role")
    if role not in TOKEN_ROLES:
        raise TokenError("malformed", f"role must be one of {TOKEN_ROLES}")
    issued_at_ms = _time(payload, "issued_at_ms")
    expires_at_ms = _time(payload, "expires_at_ms")
    if not 0 < expires_at_ms - issued_at_ms <= TOKEN_TTL_MS_MAX:
        raise TokenError(
            "malformed", f"the lifetime must be 1..{TOKEN_TTL_MS_MAX} ms after issued_at_ms"
        )
    claims = TokenClaims(
        chain_id=_text(payload, "chain_id"),
        member_id=_text(payload, "member_id"),
        key_id=key_id,
        role=role,
        issued_at_ms=issued_at_ms,
        expires_at_ms=expires_at_ms,
        ledger_role=ledger_pb2.ROLE_UNSPECIFIED,
    )
    try:
        canonical = _encode_payload(claims)
    except UnicodeEncodeError:  # a lone surrogate, escaped in the JSON text: not Unicode
        raise TokenError("malformed", "the payload holds text that is not Unicode") from None
    if canonical != payload_bytes:
        raise TokenError(
            "non_canonical",
            "the payload is not the canonical JSON of its claims (keys sorted, each once, no "
            "spaces, lowercase hex, UTF-8 text escaped only where JSON must)",
        )
    return claims, payload_bytes, signature


def verify_token(
    token: str, members_lookup: MembersLookup, chain_id: str, now_ms: int
) -> TokenClaims:
    """The token's claims if it is valid on `chain_id` at `now_ms` for a current key of an
    active member allowed its role; else raise `TokenError`."""
    claims, payload_bytes, signature = decode_token(token)
    if claims.chain_id != chain_id:
        raise TokenError("wrong_chain", f"the token is for chain {claims.chain_id!r}")
    member = members_lookup(claims.member_id)
    if member is None:
        raise TokenError("unknown_member", f"{claims.member_id!r} is not a member")
    if member.removed:
        raise TokenError("member_removed", f"member {claims.member_id!r} has been removed")
    key = next((k for k in member.keys if k.key_id == claims.key_id), None)
    if key is None:
        raise TokenError(
            "unknown_key",
            f"key {claims.key_id.hex()} is not a current key of member {claims.member_id!r}",
        )
    # A token is read now, not in a block: a key revoked from any height reads nothing.
    if key.revoked:
        raise TokenError(
            "key_revoked",
            f"key {claims.key_id.hex()} of member {claims.member_id!r} was revoked as compromised",
        )
    if not crypto.verify(key.public_key, DOMAIN_TOKEN, payload_bytes, signature):
        raise TokenError("bad_signature", "the signature does not match the payload and key")
    if now_ms + TOKEN_CLOCK_SKEW_MS_MAX < claims.issued_at_ms:
        raise TokenError(
            "not_yet_valid", f"issued at {claims.issued_at_ms} ms; the time is {now_ms} ms"
        )
    if now_ms >= claims.expires_at_ms:
        raise TokenError(
            "expired", f"expired at {claims.expires_at_ms} ms; the time is {now_ms} ms"
        )
    if claims.role == ROLE_AUDITOR and member.role not in AUDITOR_LEDGER_ROLES:
        raise TokenError(
            "role_not_allowed",
            f"an auditor token needs the auditor or regulator role; {claims.member_id!r} is "
            f"{role_name(member.role)}",
        )
    return dataclasses.replace(claims, ledger_role=member.role)

"""Unit tests for provledger.protocol.tokens: bearer tokens of the auditor API.

A token issued by a member's key verifies against the member registry at a time inside its
lifetime; every way it can be wrong fails with its own code: the encoding, the JSON, each
field, a payload spelled otherwise than the canonical JSON of its claims, the chain, the
member (unknown, removed), the key (unknown, rotated away), the signature (over another
payload, by another key, with another domain), the time (expired, not yet valid beyond the
tolerated skew) and the role (auditor tokens only for auditors and regulators).
"""

from __future__ import annotations

import base64
import json

import pytest
from support.memory_state import CHAIN_ID, GENESIS_TIME_MS, Consortium, signing_key

from provledger.protocol import crypto
from provledger.protocol.genesis import canonical_json
from provledger.protocol.limits import (
    TOKEN_CLOCK_SKEW_MS_MAX,
    TOKEN_SIZE_BYTES_MAX,
    TOKEN_TTL_MS_MAX,
)
from provledger.protocol.tokens import (
    DOMAIN_TOKEN,
    TOKEN_ERRORS,
    TokenError,
    decode_token,
    issue_token,
    verify_token,
)
from provledger.v1 import ledger_pb2, state_pb2

ISSUED_MS = GENESIS_TIME_MS + 1_000
TTL_MS = 3_600_000
NOW_MS = ISSUED_MS + 60_000

CONSORTIUM = Consortium()
MEMBERS = {member.member_id: member for member in CONSORTIUM.genesis.members}


def lookup(member_id: str) -> state_pb2.MemberRecord | None:
    return MEMBERS.get(member_id)


def token_for(member_id: str, role: str, **overrides) -> str:
    options = {"issued_at_ms": ISSUED_MS, "ttl_ms": TTL_MS, "chain_id": CHAIN_ID}
    options.update(overrides)
    return issue_token(
        CONSORTIUM[member_id].key,
        member_id,
        role,
        options["chain_id"],
        options["issued_at_ms"],
        options["ttl_ms"],
    )


def encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(payload: dict, key: crypto.SigningKey | None = None, domain: bytes = DOMAIN_TOKEN) -> str:
    """A token over an arbitrary payload, signed (by default with the named member's key)."""
    raw = canonical_json(payload)
    signer = key or CONSORTIUM[payload["member_id"]].key
    return encode(raw) + "." + encode(signer.sign(domain, raw))


def payload_of(token: str) -> dict:
    head = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))


def reject(token: object, code: str, now_ms: int = NOW_MS, members=lookup) -> TokenError:
    with pytest.raises(TokenError) as caught:
        verify_token(token, members, CHAIN_ID, now_ms)  # type: ignore[arg-type]
    assert caught.value.code == code, caught.value
    assert code in TOKEN_ERRORS
    return caught.value


# --- the happy paths ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("member_id", "role", "ledger_role"),
    [
        ("auditor", "auditor", ledger_pb2.ROLE_AUDITOR),
        ("regulator", "auditor", ledger_pb2.ROLE_REGULATOR),
        ("agency-a", "member", ledger_pb2.ROLE_AGENCY),
        ("exchange", "member", ledger_pb2.ROLE_EXCHANGE),
        ("auditor", "member", ledger_pb2.ROLE_AUDITOR),
    ],
)
def test_a_token_verifies_for_its_member_and_role(member_id, role, ledger_role):
    token = token_for(member_id, role)
    claims = verify_token(token, lookup, CHAIN_ID, NOW_MS)
    assert claims.member_id == member_id
    assert claims.role == role
    assert claims.chain_id == CHAIN_ID
    assert claims.key_id == CONSORTIUM[member_id].key.key_id
    assert (claims.issued_at_ms, claims.expires_at_ms) == (ISSUED_MS, ISSUED_MS + TTL_MS)
    assert claims.ledger_role == ledger_role


def test_the_payload_is_canonical_json_with_exactly_the_documented_fields():
    token = token_for("auditor", "auditor")
    head, signature = token.split(".")
    assert "=" not in token
    raw = base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))
    document = json.loads(raw)
    assert raw == canonical_json(document)
    assert document == {
        "chain_id": CHAIN_ID,
        "member_id": "auditor",
        "key_id": CONSORTIUM["auditor"].key.key_id.hex(),
        "role": "auditor",
        "issued_at_ms": ISSUED_MS,
        "expires_at_ms": ISSUED_MS + TTL_MS,
    }
    signature_bytes = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    assert crypto.verify(CONSORTIUM["auditor"].key.public_key, DOMAIN_TOKEN, raw, signature_bytes)


def test_tokens_are_deterministic_and_decode_reports_the_claims():
    assert token_for("agency-a", "member") == token_for("agency-a", "member")
    claims, payload, signature = decode_token(token_for("agency-a", "member"))
    assert claims.member_id == "agency-a"
    assert len(signature) == 64
    assert json.loads(payload)["role"] == "member"


def test_time_bounds_are_inclusive_of_issue_and_exclusive_of_expiry():
    token = token_for("auditor", "auditor")
    verify_token(token, lookup, CHAIN_ID, ISSUED_MS)
    verify_token(token, lookup, CHAIN_ID, ISSUED_MS + TTL_MS - 1)
    reject(token, "expired", now_ms=ISSUED_MS + TTL_MS)
    verify_token(token, lookup, CHAIN_ID, ISSUED_MS - TOKEN_CLOCK_SKEW_MS_MAX)
    reject(token, "not_yet_valid", now_ms=ISSUED_MS - TOKEN_CLOCK_SKEW_MS_MAX - 1)


# --- issuing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "ttl_ms", "issued_at_ms", "member_id"),
    [
        ("admin", TTL_MS, ISSUED_MS, "auditor"),
        ("auditor", 0, ISSUED_MS, "auditor"),
        ("auditor", -5, ISSUED_MS, "auditor"),
        ("auditor", TOKEN_TTL_MS_MAX + 1, ISSUED_MS, "auditor"),
        ("auditor", TTL_MS, -1, "auditor"),
        ("auditor", TTL_MS, 2**63 - 1, "auditor"),
        ("auditor", TTL_MS, ISSUED_MS, ""),
        ("auditor", TTL_MS, ISSUED_MS, "m" * TOKEN_SIZE_BYTES_MAX),
    ],
)
def test_issue_refuses_bad_arguments(role, ttl_ms, issued_at_ms, member_id):
    with pytest.raises(ValueError):
        issue_token(CONSORTIUM["auditor"].key, member_id, role, CHAIN_ID, issued_at_ms, ttl_ms)


def test_the_longest_lifetime_is_allowed():
    token = token_for("auditor", "auditor", ttl_ms=TOKEN_TTL_MS_MAX)
    verify_token(token, lookup, CHAIN_ID, ISSUED_MS + TOKEN_TTL_MS_MAX - 1)


# --- malformed tokens -------------------------------------------------------------------


GOOD = token_for("auditor", "auditor")
GOOD_PAYLOAD = payload_of(GOOD)


@pytest.mark.parametrize(
    "token",
    [
        "",
        ".",
        "abc",
        GOOD + ".extra",
        GOOD.replace(".", ""),
        "!!!." + GOOD.split(".")[1],
        GOOD.split(".")[0] + ".!!!",
        GOOD.split(".")[0] + "." + encode(b"short"),
        encode(b"not json") + "." + GOOD.split(".")[1],
        encode(b"[1, 2]") + "." + GOOD.split(".")[1],
        encode(b"\xff\xfe") + "." + GOOD.split(".")[1],
        "a" * (TOKEN_SIZE_BYTES_MAX + 1),
        GOOD + "=",
    ],
)
def test_malformed_encodings_are_rejected(token):
    reject(token, "malformed")


def test_a_token_that_is_not_a_string_is_malformed():
    reject(None, "malformed")
    reject(b"bytes", "malformed")


@pytest.mark.parametrize(
    "change",
    [
        {"extra": 1},
        {"role": "admin"},
        {"role": ""},
        {"role": None},
        {"member_id": ""},
        {"member_id": 7},
        {"chain_id": ""},
        {"key_id": "zz"},
        {"key_id": "00" * 15},
        {"key_id": 5},
        {"issued_at_ms": "1"},
        {"issued_at_ms": True},
        {"issued_at_ms": -1},
        {"issued_at_ms": 1.5},
        {"expires_at_ms": ISSUED_MS},
        {"expires_at_ms": ISSUED_MS - 1},
        {"expires_at_ms": ISSUED_MS + TOKEN_TTL_MS_MAX + 1},
        {"expires_at_ms": 2**64},
    ],
)
def test_bad_payload_fields_are_malformed(change):
    payload = {**GOOD_PAYLOAD, **change}
    reject(forge(payload, key=CONSORTIUM["auditor"].key), "malformed")


def test_a_missing_field_is_malformed():
    payload = dict(GOOD_PAYLOAD)
    del payload["issued_at_ms"]
    reject(forge(payload), "malformed")


def signed_payload(raw: bytes, member_id: str = "auditor") -> str:
    """A token over the payload bytes `raw` exactly, signed by the member's own key."""
    return encode(raw) + "." + encode(CONSORTIUM[member_id].key.sign(DOMAIN_TOKEN, raw))


def _reordered(payload: dict) -> bytes:
    text = json.dumps(dict(reversed(list(payload.items()))), separators=(",", ":"))
    return text.encode()


NON_CANONICAL_PAYLOADS = {
    "spaces": lambda payload: json.dumps(payload, sort_keys=True).encode(),
    "keys-unsorted": _reordered,
    "trailing-newline": lambda payload: canonical_json(payload) + b"\n",
    "needless-escape": lambda payload: canonical_json(payload).replace(
        b'"auditor"', b'"\\u0061uditor"'
    ),
    "key-twice": lambda payload: b'{"chain_id":"another-chain",' + canonical_json(payload)[1:],
    "uppercase-hex": lambda payload: canonical_json(
        {**payload, "key_id": payload["key_id"].upper()}
    ),
}


@pytest.mark.parametrize("spelling", sorted(NON_CANONICAL_PAYLOADS))
def test_a_payload_that_is_not_canonical_is_refused(spelling):
    """A payload that parses to a good token's claims, signed by the right key, but spelled
    otherwise than the canonical JSON of those claims is refused: one token, one spelling."""
    raw = NON_CANONICAL_PAYLOADS[spelling](GOOD_PAYLOAD)
    assert raw != canonical_json(GOOD_PAYLOAD)
    parsed = json.loads(raw)
    parsed["key_id"] = parsed["key_id"].lower()
    assert parsed == GOOD_PAYLOAD
    with pytest.raises(TokenError) as caught:
        decode_token(signed_payload(raw))
    assert caught.value.code == "non_canonical"
    assert "not the canonical JSON of its claims" in caught.value.reason
    reject(signed_payload(raw), "non_canonical")
    # The canonical spelling of the same claims, signed by the same key, verifies.
    assert verify_token(signed_payload(canonical_json(GOOD_PAYLOAD)), lookup, CHAIN_ID, NOW_MS)


def test_a_payload_with_text_that_is_not_unicode_is_malformed():
    raw = canonical_json(GOOD_PAYLOAD).replace(b'"auditor"', b'"\\ud800"', 1)
    error = reject(signed_payload(raw), "malformed")
    assert "not Unicode" in error.reason


# --- who signed, and for whom -------------------------------------------------------------


def test_a_token_for_another_chain_is_refused():
    reject(token_for("auditor", "auditor", chain_id="other-chain"), "wrong_chain")


def test_an_unknown_member_is_refused():
    payload = {**GOOD_PAYLOAD, "member_id": "stranger"}
    reject(forge(payload, key=signing_key("stranger")), "unknown_member")


def test_a_removed_member_is_refused():
    removed = state_pb2.MemberRecord()
    removed.CopyFrom(MEMBERS["auditor"])
    removed.removed = True
    reject(GOOD, "member_removed", members=lambda m: removed if m == "auditor" else lookup(m))


def test_a_key_that_is_not_the_members_is_refused():
    other = signing_key("not-the-auditor")
    payload = {**GOOD_PAYLOAD, "key_id": other.key_id.hex()}
    reject(forge(payload, key=other), "unknown_key")


def test_a_key_rotated_away_stops_its_tokens():
    rotated = state_pb2.MemberRecord()
    rotated.CopyFrom(MEMBERS["auditor"])
    new_key = signing_key("auditor-2")
    del rotated.keys[:]
    rotated.keys.append(state_pb2.MemberKey(key_id=new_key.key_id, public_key=new_key.public_key))
    members = {**MEMBERS, "auditor": rotated}
    reject(GOOD, "unknown_key", members=members.get)
    fresh = issue_token(new_key, "auditor", "auditor", CHAIN_ID, ISSUED_MS, TTL_MS)
    assert verify_token(fresh, members.get, CHAIN_ID, NOW_MS).key_id == new_key.key_id


def test_a_revoked_key_stops_its_tokens_whatever_the_height():
    revoked = state_pb2.MemberRecord()
    revoked.CopyFrom(MEMBERS["auditor"])
    revoked.keys[0].revoked = True
    revoked.keys[0].revoked_after_height = 1_000_000  # its events are still good until then
    error = reject(GOOD, "key_revoked", members={**MEMBERS, "auditor": revoked}.get)
    assert "was revoked as compromised" in error.reason


def test_a_signature_by_another_key_is_refused():
    reject(forge(GOOD_PAYLOAD, key=signing_key("someone-else")), "bad_signature")


def test_a_signature_with_another_domain_is_refused():
    reject(forge(GOOD_PAYLOAD, domain=crypto.DOMAIN_EVENT), "bad_signature")


def test_a_signature_over_another_payload_is_refused():
    other = token_for("auditor", "member")
    spliced = GOOD.split(".")[0] + "." + other.split(".")[1]
    reject(spliced, "bad_signature")


def test_a_changed_claim_breaks_the_signature():
    payload = {**GOOD_PAYLOAD, "expires_at_ms": GOOD_PAYLOAD["expires_at_ms"] + 1}
    spliced = encode(canonical_json(payload)) + "." + GOOD.split(".")[1]
    reject(spliced, "bad_signature")


def test_flipping_any_signature_bit_is_refused():
    head, signature = GOOD.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=="))
    for position in (0, 31, 63):
        flipped = bytearray(raw)
        flipped[position] ^= 0x01
        reject(head + "." + encode(bytes(flipped)), "bad_signature")


# --- roles --------------------------------------------------------------------------------


@pytest.mark.parametrize("member_id", ["agency-a", "agency-b", "exchange"])
def test_an_auditor_token_needs_the_auditor_or_regulator_role(member_id):
    error = reject(token_for(member_id, "auditor"), "role_not_allowed")
    assert member_id in error.reason


def test_a_role_change_on_the_ledger_takes_effect_at_once():
    demoted = state_pb2.MemberRecord()
    demoted.CopyFrom(MEMBERS["regulator"])
    demoted.role = ledger_pb2.ROLE_AGENCY
    token = token_for("regulator", "auditor")
    verify_token(token, lookup, CHAIN_ID, NOW_MS)
    reject(token, "role_not_allowed", members={**MEMBERS, "regulator": demoted}.get)

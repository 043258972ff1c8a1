"""Fuzzing bearer tokens: `tokens.verify_token` against the story's member registry.

Seeds are tokens issued by `tokens.issue_token` for every member and every role it may hold.
Inputs change them:
- the token text (characters deleted, inserted, replaced; parts cut, repeated), not signed
  again: every change must be refused, unless it decodes to the very same payload and
  signature;
- the payload's JSON (values changed, retyped, removed, added; spelled with spaces, unsorted
  keys or repeated keys), signed again by the key the payload names;
- the payload's bytes, signed again;
- the clock the token is checked at.

The property: `verify_token` returns claims or raises `TokenError`; nothing else escapes; the
registry is unchanged; the claims of an accepted token hold (its member is active and holds
the key, the role fits the member's ledger role, the clock is inside its lifetime); its
payload is the canonical JSON of its claims.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from functools import cache

from fuzz._harness import Finding, count, fuzz_settings, hang_checked, unexpected
from fuzz._mutate import (
    Choices,
    DrawChoices,
    ProviderChoices,
    mutate_bytes,
    mutate_json,
    mutate_text,
    pick,
)
from fuzz._story import SEED_TIME_MS, memory_world
from hypothesis import given
from hypothesis import strategies as st
from support.memory_state import signing_key

from provledger.protocol import tokens
from provledger.protocol.genesis import canonical_json
from provledger.protocol.limits import TOKEN_CLOCK_SKEW_MS_MAX, TOKEN_TTL_MS_MAX
from provledger.protocol.tokens import TokenError, issue_token, verify_token
from provledger.v1 import ledger_pb2

TARGET = "tokens"
ISSUED_AT_MS = SEED_TIME_MS
TTL_MS = 3_600_000
NOW_MS = ISSUED_AT_MS + 1_000
CLOCKS_MS = (
    NOW_MS, 0, ISSUED_AT_MS - TOKEN_CLOCK_SKEW_MS_MAX - 1, ISSUED_AT_MS - TOKEN_CLOCK_SKEW_MS_MAX,
    ISSUED_AT_MS + TTL_MS - 1, ISSUED_AT_MS + TTL_MS, 2**63 - 1, -1,
)  # fmt: skip


@cache
def seeds() -> tuple[str, ...]:
    consortium = memory_world().consortium
    made = []
    for member in consortium.members.values():
        roles = ["member"]
        if member.role in ("auditor", "regulator"):
            roles.append("auditor")
        for role in roles:
            made.append(
                issue_token(
                    member.key, member.member_id, role, consortium.chain_id, ISSUED_AT_MS, TTL_MS
                )
            )
    return tuple(made)


def _lookup(member_id: str):
    return memory_world().state.load("member", member_id)


def _parts(token: str) -> tuple[bytes, bytes] | None:
    """The payload and signature bytes a token's text decodes to, if it decodes."""
    pieces = token.split(".")
    if len(pieces) != 2:
        return None
    try:
        return tuple(  # type: ignore[return-value]
            base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)) for p in pieces
        )
    except ValueError:
        return None


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def sign_payload(payload: bytes) -> str:
    """A token of `payload` signed by the key of the member it names (a stranger's key when it
    names none)."""
    consortium = memory_world().consortium
    key = consortium["agency-a"].key
    try:
        member_id = json.loads(payload).get("member_id")
    except (ValueError, AttributeError, UnicodeDecodeError):
        member_id = None
    if isinstance(member_id, str):
        member = consortium.members.get(member_id)
        key = member.key if member is not None else signing_key(member_id)
    return _encode(payload) + "." + _encode(key.sign(tokens.DOMAIN_TOKEN, payload))


# --- the property --------------------------------------------------------------------------


@hang_checked
def check_token(token: str, *, now_ms: int = NOW_MS, signed_again: bool = False) -> str:
    """Verify `token` at `now_ms`. Without `signed_again`, the token was changed from a seed
    without a new signature, so it must be refused unless it says exactly what a seed says."""
    world = memory_world()
    before = world.state.snapshot()
    chain_id = world.consortium.chain_id
    try:
        claims = verify_token(token, _lookup, chain_id, now_ms)
    except TokenError as error:
        if error.code not in tokens.TOKEN_ERRORS:
            raise Finding("untyped_token_error", f"code {error.code!r} for {token!r}") from None
        outcome = "rejected"
    except Exception as error:
        raise unexpected(error, f"verify_token({token!r}, now_ms={now_ms})") from error
    else:
        _check_claims(token, claims, now_ms, signed_again)
        outcome = "accepted"
    if world.state.snapshot() != before:
        raise Finding("state_changed", f"verifying {token!r} changed the member registry")
    count(TARGET, outcome)
    return outcome


def _check_claims(token: str, claims: tokens.TokenClaims, now_ms: int, signed_again: bool) -> None:
    what = f"{token!r} at {now_ms}"
    parts = _parts(token)
    if parts is None:
        raise Finding("malformed_token_accepted", what)
    payload, _ = parts
    if not signed_again and token not in seeds():
        if parts in {_parts(seed) for seed in seeds()}:
            raise Finding("token_spelling_not_canonical", f"another spelling passed: {what}")
        else:
            raise Finding("forged_token_accepted", f"a changed, unsigned token passed: {what}")
    if canonical_json(json.loads(payload)) != payload:
        raise Finding("non_canonical_token_accepted", what)
    member = _lookup(claims.member_id)
    problems = []
    if member is None or member.removed:
        problems.append("not an active member")
    elif claims.key_id not in [k.key_id for k in member.keys]:
        problems.append("not a key of the member")
    elif claims.ledger_role != member.role:
        problems.append("ledger role differs")
    if claims.chain_id != memory_world().consortium.chain_id:
        problems.append("another chain")
    if not claims.issued_at_ms - TOKEN_CLOCK_SKEW_MS_MAX <= now_ms < claims.expires_at_ms:
        problems.append("outside its lifetime")
    if not 0 < claims.expires_at_ms - claims.issued_at_ms <= TOKEN_TTL_MS_MAX:
        problems.append("lifetime out of range")
    if claims.role not in tokens.TOKEN_ROLES:
        problems.append("unknown role")
    auditor_roles = (ledger_pb2.ROLE_AUDITOR, ledger_pb2.ROLE_REGULATOR)
    if claims.role == tokens.ROLE_AUDITOR and claims.ledger_role not in auditor_roles:
        problems.append("auditor token for a member that is neither auditor nor regulator")
    if problems:
        raise Finding("bad_claims_accepted", f"{'; '.join(problems)}: {what} -> {claims}")


# --- the inputs ----------------------------------------------------------------------------


def _clock(choices: Choices) -> int:
    return pick(choices, CLOCKS_MS) if choices.integer(0, 3) == 0 else NOW_MS


def text_unsigned(choices: Choices) -> None:
    token = pick(choices, seeds())
    for _ in range(choices.integer(1, 3)):
        token = mutate_text(token, choices)
    check_token(token, now_ms=_clock(choices))


def signature_unsigned(choices: Choices) -> None:
    payload, signature = pick(choices, seeds()).split(".")
    raw = base64.urlsafe_b64decode(signature + "==")
    check_token(payload + "." + _encode(mutate_bytes(raw, choices)), now_ms=_clock(choices))


def json_signed_again(choices: Choices) -> None:
    parts = _parts(pick(choices, seeds()))
    assert parts is not None
    document = mutate_json(json.loads(parts[0]), choices)
    spelling = choices.integer(0, 4)
    if spelling == 0:  # spaces
        text = json.dumps(document, sort_keys=True)
    elif spelling == 1 and isinstance(document, dict):  # keys in reverse order
        text = json.dumps(dict(reversed(list(document.items()))), separators=(",", ":"))
    elif spelling == 2 and isinstance(document, dict) and document:  # a key twice
        key = sorted(document)[0]
        text = canonical_json(document).decode()
        text = text[:-1] + "," + json.dumps(key) + ":" + json.dumps(document[key]) + "}"
    else:
        text = json.dumps(document, sort_keys=True, separators=(",", ":"))
    check_token(sign_payload(text.encode()), now_ms=_clock(choices), signed_again=True)


def bytes_signed_again(choices: Choices) -> None:
    parts = _parts(pick(choices, seeds()))
    assert parts is not None
    payload = mutate_bytes(parts[0], choices)
    check_token(sign_payload(payload), now_ms=_clock(choices), signed_again=True)


# --- bounded runs (make test) --------------------------------------------------------------


def test_every_seed_token_is_accepted() -> None:
    for token in seeds():
        assert check_token(token) == "accepted", token


@fuzz_settings(examples=40)
@given(
    member_id=st.sampled_from(["agency-a", "agency-b", "exchange", "regulator", "auditor"]),
    issued_at_ms=st.integers(0, NOW_MS + TOKEN_CLOCK_SKEW_MS_MAX),
    ttl_ms=st.integers(1, TOKEN_TTL_MS_MAX),
)
def test_issued_tokens_are_accepted_within_their_lifetime(member_id, issued_at_ms, ttl_ms) -> None:
    consortium = memory_world().consortium
    member = consortium[member_id]
    token = issue_token(member.key, member_id, "member", consortium.chain_id, issued_at_ms, ttl_ms)
    expected = "accepted" if issued_at_ms + ttl_ms > NOW_MS else "rejected"
    assert check_token(token, signed_again=True) == expected


@fuzz_settings(examples=150)
@given(st.data())
def test_changed_token_text_is_refused(data) -> None:
    text_unsigned(DrawChoices(data))


@fuzz_settings(examples=60)
@given(st.data())
def test_changed_signatures_are_refused(data) -> None:
    signature_unsigned(DrawChoices(data))


@fuzz_settings(examples=150)
@given(st.data())
def test_changed_payloads_signed_again_are_judged_cleanly(data) -> None:
    json_signed_again(DrawChoices(data))


@fuzz_settings(examples=80)
@given(st.data())
def test_changed_payload_bytes_signed_again_are_judged_cleanly(data) -> None:
    bytes_signed_again(DrawChoices(data))


HYPOTHESIS_TESTS = (
    test_issued_tokens_are_accepted_within_their_lifetime,
    test_changed_token_text_is_refused,
    test_changed_signatures_are_refused,
    test_changed_payloads_signed_again_are_judged_cleanly,
    test_changed_payload_bytes_signed_again_are_judged_cleanly,
)


# --- coverage-guided runs (make fuzz, with atheris) ----------------------------------------

_MODES = ("token_text", "payload_signed_again", "structured")


def atheris_corpus() -> Sequence[bytes]:
    corpus = []
    for token in seeds():
        corpus.append(bytes([0]) + token.encode())
        parts = _parts(token)
        assert parts is not None
        corpus.append(bytes([1]) + parts[0])
    corpus.extend(bytes([2, index]) + bytes(8) for index in range(4))
    return corpus


def atheris_one_input(data: bytes) -> None:
    if not data:
        return
    mode = _MODES[data[0] % len(_MODES)]
    if mode == "token_text":
        check_token(data[1:].decode("utf-8", errors="replace"))
    elif mode == "payload_signed_again":
        check_token(sign_payload(data[1:]), signed_again=True)
    else:
        import atheris

        choices = ProviderChoices(atheris.FuzzedDataProvider(data[1:]))
        pick(choices, (text_unsigned, signature_unsigned, json_signed_again, bytes_signed_again))(
            choices
        )

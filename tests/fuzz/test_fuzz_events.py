"""Fuzzing event decoding and the rules: `events.decode`, then `rules.apply_event` over a
memory state holding the story of tests/fuzz/_story.py.

Inputs start from the valid seeds (one event of every kind) and are changed three ways:
- bytes changed without signing again (body, signature, or the SignedEvent's wire bytes): the
  signature no longer holds, so every change must be refused; accepting one is a forgery;
- body bytes changed, then signed again by the author the body names (half of the time
  written back canonically first, when they still parse): this reaches the rules;
- fields changed in the parsed Event (boundary values, other authors, unknown fields, a
  switched payload), serialised and signed again.

The property: `decode` and `apply_event` either return or raise `Rejected`; nothing else
escapes; the state is never changed by judging (a rejected event, or the writes not yet
applied); an accepted event replayed is refused; an accepted body is canonical (the
deterministic serialisation of what it says, ADR 010), defines every field it holds, names
only defined enum values, and has a nonce in 1..NONCE_MAX and a timestamp in
1..EVENT_TIMESTAMP_MS_MAX (and so does a governance change inside it).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from fuzz._harness import Finding, count, fuzz_settings, hang_checked, show, unexpected
from fuzz._mutate import (
    Choices,
    DrawChoices,
    ProviderChoices,
    enums_out_of_range,
    has_unknown_fields,
    mutate_bytes,
    mutate_message,
    pick,
)
from fuzz._story import SEED_TIME_MS, VOCABULARY, T, decode_and_apply, memory_world, resign
from google.protobuf.message import DecodeError, Message
from hypothesis import given
from hypothesis import strategies as st

from provledger.protocol import events
from provledger.protocol.errors import Rejected
from provledger.protocol.limits import (
    EVENT_TIMESTAMP_MS_MAX,
    IDENTIFIER_LENGTH_CHARS_MAX,
    NONCE_MAX,
)
from provledger.v1 import ledger_pb2

TARGET = "events"
BLOCK_TIMES_MS = (SEED_TIME_MS, T + 1, T + 10**9, T + 10**9 + 1, 2**63 - 1)


def _seeds() -> list[ledger_pb2.SignedEvent]:
    return [signed for _, signed in memory_world().event_seeds]


def _author_hook(message, field, choices: Choices):
    """Other authors and keys: a real member's, the wrong member's key, a stranger's."""
    if field.message_type is not None and field.message_type.name == "Author":
        consortium = memory_world().consortium
        member = pick(choices, list(consortium.members.values()))
        key = pick(choices, [m.key for m in consortium.members.values()])
        return ledger_pb2.Author(member_id=member.member_id, key_id=key.key_id)
    return None


# --- the property --------------------------------------------------------------------------


@hang_checked
def check_event(
    signed: ledger_pb2.SignedEvent,
    *,
    original: ledger_pb2.SignedEvent | None = None,
    block_time_ms: int = SEED_TIME_MS,
) -> str:
    """Judge `signed` on a copy of the story's state. `original`: the seed `signed` was
    changed from without signing again (so it must be refused unless it is the same bytes).
    Returns "accepted" or "rejected"; raises `Finding`."""
    world = memory_world()
    state = world.fresh_state()
    before = state.snapshot()

    def what() -> str:
        return f"body={show(signed.body)} signature={show(signed.signature)} at {block_time_ms}"

    try:
        writes = decode_and_apply(state, signed, block_time_ms)
    except Rejected as rejection:
        if state.snapshot() != before:
            message = f"a rejected event ({rejection.code}) changed the state: {what()}"
            raise Finding("state_changed", message) from None
        count(TARGET, "rejected")
        return "rejected"
    except Exception as error:
        raise unexpected(error, what()) from error
    if state.snapshot() != before:
        raise Finding("state_changed", f"judging an event changed the state: {what()}")
    if original is not None and (signed.body, signed.signature) != (
        original.body,
        original.signature,
    ):
        raise Finding("forgery_accepted", f"changed bytes, signature not redone: {what()}")
    _check_accepted(signed, what)
    state.apply(writes)
    try:
        decode_and_apply(state, signed, block_time_ms + 1)
    except Rejected:
        pass
    except Exception as error:
        raise unexpected(error, f"the replay of {what()}") from error
    else:
        raise Finding("replay_accepted", f"an accepted event was accepted again: {what()}")
    count(TARGET, "accepted")
    return "accepted"


def _check_accepted(signed: ledger_pb2.SignedEvent, what) -> None:
    """An accepted body (and a governance change inside it) says nothing its fields do not."""
    event = ledger_pb2.Event.FromString(signed.body)
    encoded: list[tuple[Message, bytes]] = [(event, signed.body)]
    if event.WhichOneof("payload") == "governance":
        change = ledger_pb2.GovernanceChange.FromString(event.governance.change)
        encoded.append((change, event.governance.change))
    for message, data in encoded:
        name = type(message).__name__
        if has_unknown_fields(message):
            raise Finding("unknown_fields_accepted", f"{name}: {what()}")
        if message.SerializeToString(deterministic=True) != data:
            raise Finding("non_canonical_accepted", f"{name}: {what()}")
        if enums_out_of_range(message):
            raise Finding("enum_out_of_range_accepted", f"{enums_out_of_range(message)}: {what()}")
    if not 1 <= event.nonce <= NONCE_MAX:
        raise Finding("bad_nonce_accepted", f"nonce {event.nonce}: {what()}")
    if not 1 <= event.timestamp_ms <= EVENT_TIMESTAMP_MS_MAX:
        raise Finding("bad_timestamp_accepted", f"timestamp {event.timestamp_ms}: {what()}")


# --- the inputs ----------------------------------------------------------------------------


def bytes_unsigned(choices: Choices) -> None:
    seed = pick(choices, _seeds())
    part = choices.integer(0, 2)
    if part == 2:  # the SignedEvent's wire bytes
        try:
            signed = ledger_pb2.SignedEvent.FromString(
                mutate_bytes(seed.SerializeToString(), choices)
            )
        except DecodeError:
            count(TARGET, "unparsable")
            return
    else:
        signed = ledger_pb2.SignedEvent()
        signed.CopyFrom(seed)
        if part == 0:
            signed.body = mutate_bytes(seed.body, choices)
        else:
            signed.signature = mutate_bytes(seed.signature, choices)
    check_event(signed, original=seed)


def bytes_resigned(choices: Choices) -> None:
    """Body bytes changed and signed again; half of the time written back canonically first
    (when they still parse), so that the change reaches past the canonical-form check."""
    seed = pick(choices, _seeds())
    body = mutate_bytes(seed.body, choices)
    if choices.integer(0, 1):
        with contextlib.suppress(DecodeError):
            body = ledger_pb2.Event.FromString(body).SerializeToString(deterministic=True)
    check_event(resign(body), block_time_ms=_time(choices))


def fields_resigned(choices: Choices) -> None:
    seed = pick(choices, _seeds())
    event = ledger_pb2.Event.FromString(seed.body)
    if event.WhichOneof("payload") == "governance" and choices.integer(0, 1):
        _mutate_governance(event, choices)
    else:
        mutate_message(event, choices, VOCABULARY, value_hook=_author_hook)
    check_event(resign(event.SerializeToString(deterministic=True)), block_time_ms=_time(choices))


def _mutate_governance(event: ledger_pb2.Event, choices: Choices) -> None:
    """Change the change itself, and have the approvers sign the changed change."""
    consortium = memory_world().consortium
    change = ledger_pb2.GovernanceChange.FromString(event.governance.change)
    mutate_message(change, choices, VOCABULARY)
    change_bytes = change.SerializeToString(deterministic=True)
    approvers = [a.approver.member_id for a in event.governance.approvals]
    event.governance.change = change_bytes
    del event.governance.approvals[:]
    event.governance.approvals.extend(consortium.approvals(change_bytes, approvers))
    if choices.integer(0, 1):
        mutate_message(event.governance, choices, VOCABULARY, value_hook=_author_hook)


def _time(choices: Choices) -> int:
    return pick(choices, BLOCK_TIMES_MS) if choices.integer(0, 3) == 0 else SEED_TIME_MS


# --- bounded runs (make test) --------------------------------------------------------------


def test_every_seed_is_accepted_alone_on_the_story() -> None:
    for label, signed in memory_world().event_seeds:
        assert check_event(signed, original=signed) == "accepted", label


_IDENTIFIERS = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,40}", fullmatch=True)
_TEXT = st.text(max_size=60)


@fuzz_settings(examples=60)
@given(
    asset_id=_IDENTIFIERS.filter(lambda v: v not in VOCABULARY),
    digest=st.binary(min_size=32, max_size=32),
    classification=st.sampled_from([1, 2, 3]),
    name=_TEXT,
    metadata=st.dictionaries(_TEXT, _TEXT, max_size=4),
    nonce=st.integers(1000, NONCE_MAX),
    timestamp_ms=st.integers(1, EVENT_TIMESTAMP_MS_MAX),
)
def test_generated_registrations_are_accepted(
    asset_id, digest, classification, name, metadata, nonce, timestamp_ms
) -> None:
    consortium = memory_world().consortium
    event = consortium.event(
        "agency-a",
        "asset_registered",
        nonce,
        timestamp_ms=timestamp_ms,
        asset_id=asset_id[:IDENTIFIER_LENGTH_CHARS_MAX],
        content_digest=digest,
        classification=classification,
        name=name,
        metadata=metadata,
    )
    signed = events.sign_event(event, consortium["agency-a"].key)
    assert check_event(signed, original=signed) == "accepted"


@fuzz_settings(examples=40)
@given(
    grant_id=_IDENTIFIERS.filter(lambda v: v not in VOCABULARY),
    purposes=st.lists(_TEXT.filter(bool), min_size=1, max_size=16),
    operations=st.lists(st.sampled_from([1, 2, 3, 4]), min_size=1, max_size=4, unique=True),
    expires_at_ms=st.integers(SEED_TIME_MS + 1, 2**63 - 1),
    no_cross_border=st.booleans(),
)
def test_generated_grants_are_accepted(
    grant_id, purposes, operations, expires_at_ms, no_cross_border
) -> None:
    consortium = memory_world().consortium
    event = consortium.event(
        "agency-a",
        "grant_issued",
        10**6,
        grant_id=grant_id,
        asset_id="raw-c",
        grantee_id="agency-b",
        purposes=purposes,
        operations=operations,
        expires_at_ms=expires_at_ms,
        no_cross_border=no_cross_border,
    )
    signed = events.sign_event(event, consortium["agency-a"].key)
    assert check_event(signed, original=signed) == "accepted"


@fuzz_settings(examples=200)
@given(st.data())
def test_changed_bytes_without_a_new_signature_are_refused(data) -> None:
    bytes_unsigned(DrawChoices(data))


@fuzz_settings(examples=200)
@given(st.data())
def test_changed_bytes_signed_again_are_judged_cleanly(data) -> None:
    bytes_resigned(DrawChoices(data))


@fuzz_settings(examples=400)
@given(st.data())
def test_changed_fields_signed_again_are_judged_cleanly(data) -> None:
    fields_resigned(DrawChoices(data))


HYPOTHESIS_TESTS = (
    test_generated_registrations_are_accepted,
    test_changed_bytes_without_a_new_signature_are_refused,
    test_changed_bytes_signed_again_are_judged_cleanly,
    test_changed_fields_signed_again_are_judged_cleanly,
)


# --- coverage-guided runs (make fuzz, with atheris) ----------------------------------------

# The first input byte picks how the rest is read.
_MODES = ("signed_wire", "body_resigned", "structured")


def atheris_corpus() -> Sequence[bytes]:
    corpus = []
    for signed in _seeds():
        corpus.append(bytes([0]) + signed.SerializeToString())
        corpus.append(bytes([1]) + signed.body)
    corpus.extend(bytes([2, index]) + bytes(16) for index in range(len(_seeds())))
    return corpus


def atheris_one_input(data: bytes) -> None:
    if not data:
        return
    mode = _MODES[data[0] % len(_MODES)]
    rest = data[1:]
    if mode == "signed_wire":
        try:
            signed = ledger_pb2.SignedEvent.FromString(rest)
        except DecodeError:
            return
        check_event(signed)
    elif mode == "body_resigned":
        check_event(resign(rest))
    else:
        import atheris

        choices = ProviderChoices(atheris.FuzzedDataProvider(rest))
        pick(choices, (bytes_unsigned, bytes_resigned, fields_resigned))(choices)

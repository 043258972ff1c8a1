"""Unit tests for provledger.protocol.events (decoding and signatures) and
provledger.protocol.blocks (execution, certificates and checkpoints).

Decoding is judged from the bytes alone: size, signature length, syntax, canonical form (no
unknown fields, no other encoding than the deterministic one), chain, author, nonce and
timestamp ranges, field formats and closed enums. Signatures are domain-separated, so a
signature made for anything else never verifies as an event. A block is a deterministic
function of its inputs; its header commits to the RFC 6962 roots of its events and of the
whole log (checked here against protocol.merkle) and to the state transition. A certificate
is accepted only with a quorum of good, distinct validator signatures over exactly that block.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from support.memory_state import (
    GENESIS_TIME_MS,
    Consortium,
    MemoryChain,
    digest,
    signing_key,
)

from provledger.protocol import blocks, crypto, events, merkle, rules
from provledger.protocol.errors import Rejected, RejectionKind
from provledger.protocol.limits import (
    EVENT_BODY_SIZE_BYTES_MAX,
    EVENT_TIMESTAMP_MS_MAX,
    IDENTIFIER_LENGTH_CHARS_MAX,
    NONCE_MAX,
)
from provledger.protocol.state import next_state_root
from provledger.v1 import ledger_pb2

INVALID = RejectionKind.INVALID
TIME_MS = GENESIS_TIME_MS + 1_000


@pytest.fixture
def consortium() -> Consortium:
    return Consortium()


def registration(consortium: Consortium, asset_id: str, author: str = "agency-a", **extra: Any):
    return consortium.sign(
        author,
        "asset_registered",
        asset_id=asset_id,
        content_digest=digest(asset_id),
        classification=ledger_pb2.CLASSIFICATION_GENERAL,
        **extra,
    )


def rejection(call, *args: Any, **kwargs: Any) -> Rejected:
    with pytest.raises(Rejected) as raised:
        call(*args, **kwargs)
    return raised.value


# --- decode --------------------------------------------------------------------------------


def test_decode_returns_the_event_its_id_and_leaf(consortium: Consortium):
    signed = registration(consortium, "asset-1")
    decoded = events.decode(signed, consortium.chain_id)
    assert decoded.kind == "asset_registered"
    assert decoded.author_id == "agency-a"
    assert decoded.event_id == hashlib.sha256(signed.body).digest()
    assert decoded.leaf == decoded.event_id + signed.signature
    assert len(decoded.leaf) == 96
    assert decoded.event.asset_registered.asset_id == "asset-1"


def _signed_body(consortium: Consortium, body: bytes) -> ledger_pb2.SignedEvent:
    """`body` with agency-a's good signature: the author chose these bytes."""
    return ledger_pb2.SignedEvent(
        body=body, signature=consortium["agency-a"].key.sign(crypto.DOMAIN_EVENT, body)
    )


def _registration_event(consortium: Consortium, **extra: Any) -> ledger_pb2.Event:
    return consortium.event(
        "agency-a",
        "asset_registered",
        asset_id="asset-1",
        content_digest=digest("a"),
        classification=ledger_pb2.CLASSIFICATION_GENERAL,
        **extra,
    )


def _payload_first(event: ledger_pb2.Event) -> bytes:
    """The event's fields out of number order: the payload (field 10) before the rest."""
    payload_only = ledger_pb2.Event(asset_registered=event.asset_registered)
    rest = ledger_pb2.Event()
    rest.CopyFrom(event)
    rest.ClearField("asset_registered")
    return payload_only.SerializeToString() + rest.SerializeToString()


def _maps_reversed(event: ledger_pb2.Event) -> bytes:
    """The event with its metadata map entries in reverse key order (field 6 of the payload)."""
    payload = ledger_pb2.AssetRegistered()
    payload.CopyFrom(event.asset_registered)
    entries = sorted(payload.metadata.items(), reverse=True)
    payload.ClearField("metadata")
    encoded = payload.SerializeToString(deterministic=True)
    for key, value in entries:
        one = ledger_pb2.AssetRegistered()
        one.metadata[key] = value
        encoded += one.SerializeToString()
    rest = ledger_pb2.Event()
    rest.CopyFrom(event)
    rest.ClearField("asset_registered")
    return rest.SerializeToString(deterministic=True) + b"\x52" + bytes([len(encoded)]) + encoded


def _default_written_out(event: ledger_pb2.Event) -> bytes:
    """The event with a default value written out: schema_uri (field 5) = "" in the payload."""
    payload = event.asset_registered.SerializeToString(deterministic=True) + b"\x2a\x00"
    rest = ledger_pb2.Event()
    rest.CopyFrom(event)
    rest.ClearField("asset_registered")
    return rest.SerializeToString(deterministic=True) + b"\x52" + bytes([len(payload)]) + payload


def _long_varint_nonce(event: ledger_pb2.Event) -> bytes:
    """The event with its nonce (field 3) in a varint padded with a needless 0x80 byte."""
    assert 0 < event.nonce < 128
    head = ledger_pb2.Event(chain_id=event.chain_id, author=event.author)
    rest = ledger_pb2.Event()
    rest.CopyFrom(event)
    for field in ("chain_id", "author", "nonce"):
        rest.ClearField(field)
    return (
        head.SerializeToString(deterministic=True)
        + bytes([0x18, 0x80 | event.nonce, 0x00])
        + rest.SerializeToString(deterministic=True)
    )


NON_CANONICAL_ENCODINGS = {
    "fields-out-of-order": _payload_first,
    "map-entries-unsorted": _maps_reversed,
    "default-value-written-out": _default_written_out,
    "padded-varint": _long_varint_nonce,
    "field-twice": lambda event: (
        event.SerializeToString(deterministic=True)
        + ledger_pb2.Event(chain_id=event.chain_id).SerializeToString()
    ),
}


@pytest.mark.parametrize("encoding", sorted(NON_CANONICAL_ENCODINGS))
def test_a_body_must_be_canonical(encoding: str, consortium: Consortium):
    """Only the deterministic serialisation of the parsed Event is accepted: each other
    encoding of the same Event, however well signed, is refused; the node compares bytes and
    never substitutes the re-serialised ones (ADR 001)."""
    event = _registration_event(consortium, metadata={"a": "1", "b": "2", "c": "3"})
    body = NON_CANONICAL_ENCODINGS[encoding](event)
    assert ledger_pb2.Event.FromString(body) == event
    assert body != event.SerializeToString(deterministic=True)
    error = rejection(events.decode, _signed_body(consortium, body), consortium.chain_id)
    assert (error.code, error.kind) == ("non_canonical", INVALID)
    assert "event body is not the canonical encoding of its Event" in error.reason
    # The canonical bytes of the same event are accepted, and are exactly what was signed.
    canonical = _signed_body(consortium, event.SerializeToString(deterministic=True))
    decoded = events.decode(canonical, consortium.chain_id)
    assert decoded.event == event
    assert decoded.signed.body == canonical.body
    assert decoded.event_id == hashlib.sha256(canonical.body).digest()
    rules.authenticate(consortium.state(), decoded, height=1)


# Field 99, a varint: defined by no message of the ledger.
UNKNOWN_FIELD = b"\x98\x06\x01"


@pytest.mark.parametrize(
    ("where", "make_body"),
    [
        ("appended", lambda event: event.SerializeToString(deterministic=True) + UNKNOWN_FIELD),
        (
            "in-the-payload",
            lambda event: (
                event.SerializeToString(deterministic=True)
                + b"\x52"  # the payload, field 10, again: merged into the first
                + bytes([len(UNKNOWN_FIELD)])
                + UNKNOWN_FIELD
            ),
        ),
        (
            "in-the-author",
            lambda event: (
                event.SerializeToString(deterministic=True)
                + b"\x12"  # the author, field 2, again
                + bytes([len(UNKNOWN_FIELD)])
                + UNKNOWN_FIELD
            ),
        ),
        (
            # a known field number with another wire type is kept as an unknown field
            "nonce-as-bytes",
            lambda event: event.SerializeToString(deterministic=True) + b"\x1a\x01\x07",
        ),
    ],
)
def test_unknown_fields_are_refused(where: str, make_body, consortium: Consortium):
    """Protobuf keeps the fields it does not know and writes them out again: signed bytes
    that no rule ever reads. An event carrying any, at any depth, is refused."""
    event = _registration_event(consortium)
    body = make_body(event)
    parsed = ledger_pb2.Event.FromString(body)
    parsed.DiscardUnknownFields()
    assert parsed == event
    error = rejection(events.decode, _signed_body(consortium, body), consortium.chain_id)
    assert (error.code, error.kind) == ("unknown_fields", INVALID)
    assert "event body holds fields that Event does not define" in error.reason


def test_parse_canonical_on_a_nested_message():
    """The governance change obeys the same rule as the event body (protocol/rules_governance):
    the canonical bytes parse; unknown fields and other encodings are refused."""
    change = ledger_pb2.GovernanceChange(
        proposal_nonce=3,
        member_added=ledger_pb2.MemberAdded(member_id="m", role=ledger_pb2.ROLE_AGENCY),
    )
    canonical = change.SerializeToString(deterministic=True)
    assert events.parse_canonical(ledger_pb2.GovernanceChange, canonical, "change") == change
    for body, code in (
        (canonical + UNKNOWN_FIELD, "unknown_fields"),
        (canonical + b"\x08\x03", "non_canonical"),  # proposal_nonce written twice
        (b"\x08", "malformed"),
    ):
        error = rejection(events.parse_canonical, ledger_pb2.GovernanceChange, body, "change")
        assert (error.code, error.kind) == (code, INVALID)
        assert "GovernanceChange" in error.reason


@pytest.mark.parametrize("nonce", [0, NONCE_MAX + 1, 2**64 - 1])
def test_nonce_out_of_range(nonce: int, consortium: Consortium):
    signed = events.sign_event(
        _registration_event(consortium, nonce=nonce), consortium["agency-a"].key
    )
    error = rejection(events.decode, signed, consortium.chain_id)
    assert (error.code, error.kind) == ("bad_nonce", INVALID)
    assert error.reason == f"nonce must be 1..{NONCE_MAX}, got {nonce}"


@pytest.mark.parametrize("nonce", [1, NONCE_MAX])
def test_nonce_bounds_are_accepted(nonce: int, consortium: Consortium):
    signed = events.sign_event(
        _registration_event(consortium, nonce=nonce), consortium["agency-a"].key
    )
    assert events.decode(signed, consortium.chain_id).event.nonce == nonce


@pytest.mark.parametrize("timestamp_ms", [0, -1, -(2**63), EVENT_TIMESTAMP_MS_MAX + 1, 2**63 - 1])
def test_timestamp_out_of_range(timestamp_ms: int, consortium: Consortium):
    event = _registration_event(consortium, timestamp_ms=timestamp_ms)
    error = rejection(
        events.decode, events.sign_event(event, consortium["agency-a"].key), consortium.chain_id
    )
    assert (error.code, error.kind) == ("bad_timestamp", INVALID)
    assert f"timestamp_ms must be 1..{EVENT_TIMESTAMP_MS_MAX}" in error.reason
    assert error.reason.endswith(f"got {timestamp_ms}")


@pytest.mark.parametrize("timestamp_ms", [1, EVENT_TIMESTAMP_MS_MAX])
def test_timestamp_bounds_are_accepted(timestamp_ms: int, consortium: Consortium):
    event = _registration_event(consortium, timestamp_ms=timestamp_ms)
    signed = events.sign_event(event, consortium["agency-a"].key)
    assert events.decode(signed, consortium.chain_id).event.timestamp_ms == timestamp_ms


def test_every_enum_is_closed(consortium: Consortium):
    """An undefined number in any enum field is refused (`bad_enum`), with or without a check
    of its own for that field; a field with its own check keeps that check's code."""
    resolved = consortium.event(
        "regulator", "dispute_resolved", dispute_id="d", outcome=77, resolution="r"
    )
    error = rejection(
        events.decode, events.sign_event(resolved, consortium["regulator"].key), consortium.chain_id
    )
    assert (error.code, error.kind) == ("bad_enum", INVALID)
    assert error.reason == "dispute_resolved.outcome holds 77, not a defined DisputeOutcome value"
    registered = _registration_event(consortium)
    registered.asset_registered.classification = 77  # type: ignore[assignment]
    error = rejection(
        events.decode,
        events.sign_event(registered, consortium["agency-a"].key),
        consortium.chain_id,
    )
    assert error.code == "bad_classification"


def test_check_enums_walks_every_depth():
    """Nested messages, repeated fields and map values are walked; an entry of a repeated
    field may not be UNSPECIFIED; a singular UNSPECIFIED is the field's own rule."""
    events.check_enums(ledger_pb2.GovernanceChange(role_changed=ledger_pb2.RoleChanged()))
    nested = ledger_pb2.GovernanceChange(
        member_added=ledger_pb2.MemberAdded(member_id="m", role=9)  # type: ignore[arg-type]
    )
    error = rejection(events.check_enums, nested)
    assert error.reason == "member_added.role holds 9, not a defined Role value"
    for operations in ([1, 5], [1, 0]):
        grant = ledger_pb2.Event(grant_issued=ledger_pb2.GrantIssued(operations=operations))
        error = rejection(events.check_enums, grant)
        assert error.code == "bad_enum"
        assert error.reason.startswith(f"grant_issued.operations holds {operations[1]}")
    events.check_enums(ledger_pb2.Event(grant_issued=ledger_pb2.GrantIssued(operations=[1, 4])))


def test_oversized_body(consortium: Consortium):
    over = ledger_pb2.SignedEvent(body=bytes(EVENT_BODY_SIZE_BYTES_MAX + 1), signature=bytes(64))
    error = rejection(events.decode, over, consortium.chain_id)
    assert (error.code, error.kind) == ("oversized", INVALID)
    assert f"{EVENT_BODY_SIZE_BYTES_MAX + 1} bytes" in error.reason
    # exactly at the limit the size passes (and the zero bytes then fail to parse)
    at_limit = ledger_pb2.SignedEvent(body=bytes(EVENT_BODY_SIZE_BYTES_MAX), signature=bytes(64))
    assert rejection(events.decode, at_limit, consortium.chain_id).code == "malformed"


@pytest.mark.parametrize("length", [0, 1, 63, 65, 128])
def test_bad_signature_length(length: int, consortium: Consortium):
    signed = registration(consortium, "asset-1")
    signed.signature = bytes(length)
    error = rejection(events.decode, signed, consortium.chain_id)
    assert (error.code, error.kind) == ("bad_signature", INVALID)
    assert f"signature is {length} bytes, expected 64" == error.reason


@pytest.mark.parametrize(
    "body",
    [
        b"\xff",  # a truncated varint tag
        b"\x0a\x05abc",  # a length running past the end
        b"\x0a\x02\xff\xfe",  # chain_id that is not UTF-8
        b"\x07",  # wire type 7 does not exist
    ],
    ids=["truncated-tag", "truncated-length", "bad-utf8", "bad-wire-type"],
)
def test_malformed_bytes(body: bytes, consortium: Consortium):
    signed = ledger_pb2.SignedEvent(body=body, signature=bytes(64))
    error = rejection(events.decode, signed, consortium.chain_id)
    assert (error.code, error.kind) == ("malformed", INVALID)
    assert "not a valid Event message" in error.reason


def test_truncated_real_body_is_malformed(consortium: Consortium):
    signed = registration(consortium, "asset-1")
    signed.body = signed.body[:-1]
    assert rejection(events.decode, signed, consortium.chain_id).code == "malformed"


@pytest.mark.parametrize("chain_id", ["other-chain", "", "provledger-test ", "PROVLEDGER-TEST"])
def test_wrong_chain(chain_id: str, consortium: Consortium):
    event = consortium.event("agency-a", "asset_retired", asset_id="asset-1")
    event.chain_id = chain_id
    signed = events.sign_event(event, consortium["agency-a"].key)
    error = rejection(events.decode, signed, consortium.chain_id)
    assert (error.code, error.kind) == ("wrong_chain", INVALID)
    assert error.reason == f"event is for chain {chain_id!r}, not 'provledger-test'"


def test_missing_payload(consortium: Consortium):
    event = ledger_pb2.Event(
        chain_id=consortium.chain_id,
        author=consortium["agency-a"].author,
        nonce=1,
        timestamp_ms=GENESIS_TIME_MS,
    )
    signed = events.sign_event(event, consortium["agency-a"].key)
    error = rejection(events.decode, signed, consortium.chain_id)
    assert (error.code, error.kind, error.reason) == (
        "missing_payload",
        INVALID,
        "event carries no payload",
    )


@pytest.mark.parametrize(
    ("author", "reason"),
    [
        (None, "event has no author"),
        (ledger_pb2.Author(key_id=bytes(16)), "event has no author"),
        (ledger_pb2.Author(member_id="agency-a"), "author key id must be 16 bytes"),
        (ledger_pb2.Author(member_id="agency-a", key_id=bytes(32)), "author key id must be 16"),
    ],
    ids=["no-author", "no-member-id", "no-key-id", "long-key-id"],
)
def test_bad_author(author: Any, reason: str, consortium: Consortium):
    event = ledger_pb2.Event(
        chain_id=consortium.chain_id, asset_retired=ledger_pb2.AssetRetired(asset_id="a")
    )
    if author is not None:
        event.author.CopyFrom(author)
    signed = events.sign_event(event, consortium["agency-a"].key)
    error = rejection(events.decode, signed, consortium.chain_id)
    assert (error.code, error.kind) == ("malformed", INVALID)
    assert reason in error.reason


@pytest.mark.parametrize(
    "identifier",
    [
        "a",
        "asset-1",
        "A.b_c:d/e@f+g-h",
        "0",
        "x" * IDENTIFIER_LENGTH_CHARS_MAX,
    ],
)
def test_good_identifiers(identifier: str, consortium: Consortium):
    signed = consortium.sign("agency-a", "asset_retired", asset_id=identifier)
    assert events.decode(signed, consortium.chain_id).event.asset_retired.asset_id == identifier


@pytest.mark.parametrize(
    "identifier",
    [
        "x" * (IDENTIFIER_LENGTH_CHARS_MAX + 1),
        "-starts-with-dash",
        ".starts-with-dot",
        "has space",
        "tab\there",
        "trailing-newline\n",
        "\nleading-newline",
        "nul\x00byte",
        "数据",
        "a#b",
        "a,b",
    ],
    ids=repr,
)
def test_bad_identifiers(identifier: str, consortium: Consortium):
    signed = consortium.sign("agency-a", "asset_retired", asset_id=identifier)
    error = rejection(events.decode, signed, consortium.chain_id)
    assert (error.code, error.kind) == ("bad_identifier", INVALID)
    assert error.reason.startswith("asset_id ")


def test_empty_identifier_is_missing(consortium: Consortium):
    signed = consortium.sign("agency-a", "asset_retired", asset_id="")
    error = rejection(events.decode, signed, consortium.chain_id)
    assert (error.code, error.reason) == ("missing_field", "asset_id is required")


# --- signatures ----------------------------------------------------------------------------


def test_event_signature_is_over_domain_and_body(consortium: Consortium):
    member = consortium["agency-a"]
    signed = registration(consortium, "asset-1")
    assert crypto.verify(member.key.public_key, crypto.DOMAIN_EVENT, signed.body, signed.signature)
    assert signed.signature == member.key.sign(crypto.DOMAIN_EVENT, signed.body)
    assert len(signed.signature) == 64


@pytest.mark.parametrize(
    "domain",
    [crypto.DOMAIN_PRECOMMIT, crypto.DOMAIN_GOVERNANCE, blocks.DOMAIN_HEADER, b""],
    ids=["precommit", "governance", "header", "no-domain"],
)
def test_signature_for_another_domain_is_not_an_event_signature(domain: bytes, consortium):
    member = consortium["agency-a"]
    signed = registration(consortium, "asset-1")
    forged = ledger_pb2.SignedEvent(
        body=signed.body, signature=member.key.sign(domain, signed.body)
    )
    assert not crypto.verify(
        member.key.public_key, crypto.DOMAIN_EVENT, forged.body, forged.signature
    )
    decoded = events.decode(forged, consortium.chain_id)  # the bytes alone look fine
    error = rejection(rules.authenticate, consortium.state(), decoded, height=1)
    assert (error.code, error.kind) == ("bad_signature", INVALID)


def test_event_signature_does_not_verify_in_another_domain(consortium: Consortium):
    member = consortium["agency-a"]
    signed = registration(consortium, "asset-1")
    for domain in (crypto.DOMAIN_PRECOMMIT, crypto.DOMAIN_GOVERNANCE):
        assert not crypto.verify(member.key.public_key, domain, signed.body, signed.signature)


@pytest.mark.parametrize(
    ("public_key", "signature"),
    [(bytes(31), bytes(64)), (bytes(32), bytes(63)), (b"", b""), (bytes(32), bytes(64))],
)
def test_verify_refuses_malformed_keys_and_signatures(public_key: bytes, signature: bytes):
    assert not crypto.verify(public_key, crypto.DOMAIN_EVENT, b"body", signature)


def test_flipped_bits_do_not_verify(consortium: Consortium):
    member = consortium["agency-a"]
    signed = registration(consortium, "asset-1")
    for position in (0, len(signed.body) // 2, len(signed.body) - 1):
        body = bytearray(signed.body)
        body[position] ^= 0x01
        assert not crypto.verify(
            member.key.public_key, crypto.DOMAIN_EVENT, bytes(body), signed.signature
        )
    for position in (0, 31, 32, 63):
        signature = bytearray(signed.signature)
        signature[position] ^= 0x80
        assert not crypto.verify(
            member.key.public_key, crypto.DOMAIN_EVENT, signed.body, bytes(signature)
        )


def test_keys_are_deterministic():
    assert signing_key("agency-a").public_key == signing_key("agency-a").public_key
    assert signing_key("agency-a").public_key != signing_key("agency-b").public_key
    key = signing_key("agency-a")
    assert key.key_id == hashlib.sha256(key.public_key).digest()[:16]
    with pytest.raises(ValueError):
        crypto.SigningKey.from_seed(bytes(31))


# --- execute_block -------------------------------------------------------------------------


def _three_registrations(consortium: Consortium) -> list[ledger_pb2.SignedEvent]:
    return [
        registration(consortium, "asset-1"),
        registration(consortium, "asset-2", author="agency-b"),
        registration(consortium, "asset-3", author="exchange"),
    ]


def test_execution_is_deterministic():
    results = []
    for _ in range(2):
        consortium = Consortium()
        chain = MemoryChain(consortium)
        executed = chain.execute(_three_registrations(consortium), TIME_MS)
        results.append((executed.header_bytes, executed.block_id))
    assert results[0] == results[1]
    assert results[0][1] == blocks.block_id(results[0][0])
    assert results[0][1] == hashlib.sha256(b"provledger/v1/header\x00" + results[0][0]).digest()


def test_execution_changes_nothing_it_is_given(consortium: Consortium):
    chain = MemoryChain(consortium)
    state_before, log_root, log_size = chain.state.snapshot(), chain.log.root(), chain.log.size
    chain.execute(_three_registrations(consortium), TIME_MS)
    assert chain.state.snapshot() == state_before
    assert (chain.log.root(), chain.log.size) == (log_root, log_size)


def test_header_fields(consortium: Consortium):
    chain = MemoryChain(consortium)
    first = chain.execute(_three_registrations(consortium), TIME_MS, proposer_id="validator-2")
    header = first.header
    assert blocks.decode_header(first.header_bytes) == header
    assert header.chain_id == consortium.chain_id
    assert header.height == 1
    assert header.previous_block_id == consortium.genesis.genesis_hash
    assert header.time_ms == TIME_MS
    assert header.proposer_id == "validator-2"
    assert header.event_count == 3
    assert header.validators_hash == consortium.genesis.validator_set.hash()
    assert header.last_commit_hash == bytes(32)
    certificate = consortium.certificate(first)
    chain.commit(first, certificate)
    second = chain.execute([registration(consortium, "asset-4")], TIME_MS + 1)
    assert second.header.height == 2
    assert second.header.previous_block_id == first.block_id
    assert second.header.last_commit_hash == blocks.certificate_hash(certificate)
    assert (
        blocks.certificate_hash(certificate)
        == hashlib.sha256(certificate.SerializeToString(deterministic=True)).digest()
    )


def test_roots_match_the_merkle_log(consortium: Consortium):
    chain = MemoryChain(consortium)
    leaves: list[bytes] = []
    for height, batch in enumerate(
        (
            _three_registrations(consortium),
            [registration(consortium, f"asset-b{i}") for i in range(5)],
            [],
        ),
        start=1,
    ):
        executed = chain.execute(batch, TIME_MS + height)
        block_leaves = [events.event_id(s.body) + s.signature for s in batch]
        leaves += block_leaves
        header = executed.header
        assert [d.leaf for d in executed.events] == block_leaves
        assert header.events_root == merkle.root_from_leaf_hashes(
            [merkle.hash_leaf(leaf) for leaf in block_leaves]
        )
        assert header.log_size == len(leaves) == executed.log.size
        assert header.log_root == merkle.root_from_leaf_hashes(
            [merkle.hash_leaf(leaf) for leaf in leaves]
        )
        chain.commit(executed, consortium.certificate(executed))
    assert header.events_root == merkle.EMPTY_ROOT  # the last block was empty
    assert header.event_count == 0


def test_state_root_chains_the_writes(consortium: Consortium):
    chain = MemoryChain(consortium)
    executed = chain.execute(_three_registrations(consortium), TIME_MS)
    assert executed.header.state_root == next_state_root(chain.tip.state_root, executed.writes)
    assert chain.tip.state_root == blocks.genesis_state_root(consortium.genesis)


def test_state_root_changes_iff_writes_differ():
    consortium = Consortium()
    chain = MemoryChain(consortium)
    batch = _three_registrations(consortium)
    early = chain.execute(batch, TIME_MS)
    late = chain.execute(batch, TIME_MS + 500, proposer_id="validator-3")
    # same writes at another time, by another proposer: another block, the same state
    assert early.writes == late.writes
    assert early.block_id != late.block_id
    assert early.header.state_root == late.header.state_root
    # different writes: a different state
    other = chain.execute([registration(consortium, "asset-9")], TIME_MS)
    assert other.writes != early.writes
    assert other.header.state_root != early.header.state_root
    # the same events in another order make the same records but other writes
    reordered = chain.execute(list(reversed(batch)), TIME_MS)
    assert reordered.header.state_root != early.header.state_root


def _bad_use(consortium: Consortium) -> ledger_pb2.SignedEvent:
    return consortium.sign(
        "agency-b",
        "asset_used",
        asset_id="asset-missing",
        purpose="research",
        operation=ledger_pb2.OPERATION_READ,
    )


def test_strict_execution_raises_on_a_bad_event(consortium: Consortium):
    chain = MemoryChain(consortium)
    good = _three_registrations(consortium)
    error = rejection(chain.execute, [good[0], _bad_use(consortium), good[1]], TIME_MS)
    assert (error.code, error.kind) == ("unknown_asset", RejectionKind.PRECONDITION)


def test_lenient_execution_drops_a_bad_event(consortium: Consortium):
    good = _three_registrations(consortium)
    bad = _bad_use(consortium)
    chain = MemoryChain(consortium)
    executed = chain.execute([good[0], bad, good[1], good[2]], TIME_MS, strict=False)
    assert [d.signed for d in executed.events] == good
    assert [(d.signed, r.code) for d, r in executed.rejected] == [(bad, "unknown_asset")]
    # the block is exactly the block of the good events alone
    alone = chain.execute(good, TIME_MS)
    assert executed.header_bytes == alone.header_bytes


def test_event_twice_in_a_block(consortium: Consortium):
    chain = MemoryChain(consortium)
    signed = registration(consortium, "asset-1")
    error = rejection(chain.execute, [signed, signed], TIME_MS)
    assert (error.code, error.kind) == ("duplicate_event", INVALID)
    lenient = chain.execute([signed, signed], TIME_MS, strict=False)
    assert len(lenient.events) == 1
    assert [r.code for _, r in lenient.rejected] == ["duplicate_event"]


def test_later_events_see_earlier_ones_in_the_block(consortium: Consortium):
    chain = MemoryChain(consortium)
    registered = registration(consortium, "asset-1")
    retired = consortium.sign("agency-a", "asset_retired", asset_id="asset-1")
    executed = chain.execute([registered, retired], TIME_MS)
    assert executed.header.event_count == 2
    # and in the other order the retirement finds nothing
    assert rejection(chain.execute, [retired, registered], TIME_MS).code == "unknown_asset"


def _forged(consortium: Consortium) -> ledger_pb2.SignedEvent:
    """agency-a's registration, with a signature by agency-b's key."""
    signed = registration(consortium, "asset-forged")
    return ledger_pb2.SignedEvent(
        body=signed.body,
        signature=consortium["agency-b"].key.sign(crypto.DOMAIN_EVENT, signed.body),
    )


def _execute_with(chain: MemoryChain, candidates, signatures_checked) -> blocks.ExecutedBlock:
    consortium = chain.consortium
    return blocks.execute_block(
        state=chain.state,
        log=chain.log,
        tip=chain.tip,
        chain_id=consortium.chain_id,
        candidates=[consortium.decode(c) for c in candidates],
        time_ms=TIME_MS,
        proposer_id="validator-0",
        genesis_validators=consortium.genesis.validator_set,
        last_commit=None,
        strict=True,
        signatures_checked=signatures_checked,
    )


def test_forged_signature_fails_execution(consortium: Consortium):
    chain = MemoryChain(consortium)
    error = rejection(_execute_with, chain, [_forged(consortium)], False)
    assert (error.code, error.kind) == ("bad_signature", INVALID)
    # a node that already checked every signature itself skips the check (its promise)
    assert _execute_with(chain, [_forged(consortium)], True).header.event_count == 1


def test_signatures_not_checked_per_event_are_verified(consortium: Consortium):
    chain = MemoryChain(consortium)
    good = registration(consortium, "asset-1")
    forged = _forged(consortium)
    checked = {events.event_id(good.body)}  # this node only ever saw and verified `good`
    error = rejection(_execute_with, chain, [good, forged], lambda event_id: event_id in checked)
    assert (error.code, error.kind) == ("bad_signature", INVALID)


@pytest.mark.parametrize("offset_ms", [0, -1, -1_000])
def test_block_time_must_increase(offset_ms: int, consortium: Consortium):
    chain = MemoryChain(consortium)
    error = rejection(chain.execute, [], GENESIS_TIME_MS + offset_ms)
    assert (error.code, error.kind) == ("time_not_monotonic", INVALID)
    first = chain.execute([], GENESIS_TIME_MS + 1)
    chain.commit(first, consortium.certificate(first))
    error = rejection(chain.execute, [], GENESIS_TIME_MS + 1 + offset_ms)
    assert error.code == "time_not_monotonic"
    assert f"not after the previous block's {GENESIS_TIME_MS + 1} ms" in error.reason


# --- certificates and checkpoints ----------------------------------------------------------


@pytest.fixture
def committed(consortium: Consortium) -> blocks.ExecutedBlock:
    chain = MemoryChain(consortium)
    first = chain.execute(_three_registrations(consortium), TIME_MS)
    chain.commit(first, consortium.certificate(first))
    return chain.execute([registration(consortium, "asset-4")], TIME_MS + 1)


def _verify(consortium: Consortium, executed, certificate) -> None:
    blocks.verify_certificate(
        certificate, executed.header, executed.header_bytes, consortium.genesis.validator_set
    )


@pytest.mark.parametrize(
    "signers",
    [
        ("validator-0", "validator-1", "validator-2", "validator-3"),
        ("validator-0", "validator-1", "validator-2"),
        ("validator-3", "validator-1", "validator-0"),
    ],
    ids=["all", "quorum", "quorum-unordered"],
)
def test_good_certificate(signers: tuple[str, ...], consortium, committed):
    assert consortium.genesis.validator_set.quorum_size == 3
    _verify(consortium, committed, consortium.certificate(committed, signers))
    _verify(consortium, committed, consortium.certificate(committed, signers, round_number=7))


def _signature(consortium: Consortium, name: str, executed, round_number: int = 0) -> bytes:
    key = signing_key(name)
    height = executed.header.height
    return blocks.sign_precommit(key, consortium.chain_id, height, round_number, executed.block_id)


CERTIFICATE_MUTATIONS = {
    "missing-signer": (
        lambda c, e, cert: cert.signatures.pop(),
        "2 validators signed; a quorum is 3",
    ),
    "no-signers": (lambda c, e, cert: cert.ClearField("signatures"), "0 validators signed"),
    "duplicate-signer": (
        lambda c, e, cert: cert.signatures.append(cert.signatures[0]),
        "'validator-0' signed twice",
    ),
    "duplicate-signer-to-reach-quorum": (
        lambda c, e, cert: cert.signatures[2].CopyFrom(cert.signatures[0]),
        "'validator-0' signed twice",
    ),
    "non-validator": (
        lambda c, e, cert: cert.signatures.append(
            ledger_pb2.CommitSignature(
                validator_id="validator-9", signature=_signature(c, "validator-9", e)
            )
        ),
        "'validator-9' is not a validator",
    ),
    "wrong-block-id": (
        lambda c, e, cert: setattr(cert, "block_id", bytes(32)),
        "the certificate is for a different block",
    ),
    "wrong-height": (
        lambda c, e, cert: setattr(cert, "height", e.header.height + 1),
        "the certificate is for height 3",
    ),
    "wrong-round": (
        lambda c, e, cert: setattr(cert, "round", 1),
        "the signature of 'validator-0' does not verify",
    ),
    "flipped-signature-bit": (
        lambda c, e, cert: setattr(
            cert.signatures[1],
            "signature",
            bytes([cert.signatures[1].signature[0] ^ 1]) + cert.signatures[1].signature[1:],
        ),
        "the signature of 'validator-1' does not verify",
    ),
    "signed-by-another-key": (
        lambda c, e, cert: setattr(
            cert.signatures[2], "signature", _signature(c, "validator-3", e)
        ),
        "the signature of 'validator-2' does not verify",
    ),
    "signature-for-events-domain": (
        lambda c, e, cert: setattr(
            cert.signatures[0],
            "signature",
            signing_key("validator-0").sign(
                crypto.DOMAIN_EVENT,
                blocks.precommit_sign_bytes(c.chain_id, e.header.height, 0, e.block_id),
            ),
        ),
        "the signature of 'validator-0' does not verify",
    ),
}


@pytest.mark.parametrize("mutation", sorted(CERTIFICATE_MUTATIONS))
def test_bad_certificate(mutation: str, consortium: Consortium, committed):
    change, fragment = CERTIFICATE_MUTATIONS[mutation]
    certificate = consortium.certificate(committed, ("validator-0", "validator-1", "validator-2"))
    change(consortium, committed, certificate)
    error = rejection(_verify, consortium, committed, certificate)
    assert (error.code, error.kind) == ("bad_certificate", INVALID)
    assert fragment in error.reason


def test_certificate_against_another_validator_set(consortium: Consortium, committed):
    certificate = consortium.certificate(committed)
    others = Consortium(validator_ids=("validator-0", "validator-1", "validator-2"))
    error = rejection(
        blocks.verify_certificate,
        certificate,
        committed.header,
        committed.header_bytes,
        others.genesis.validator_set,
    )
    assert (error.code, error.reason) == (
        "bad_certificate",
        "the header names a different validator set",
    )


def test_verify_checkpoint(consortium: Consortium, committed):
    checkpoint = ledger_pb2.Checkpoint(
        header=committed.header_bytes, certificate=consortium.certificate(committed)
    )
    assert blocks.verify_checkpoint(checkpoint, consortium.genesis) == committed.header


def test_verify_checkpoint_wrong_chain(consortium: Consortium, committed):
    checkpoint = ledger_pb2.Checkpoint(
        header=committed.header_bytes, certificate=consortium.certificate(committed)
    )
    other = Consortium(chain_id="other-chain")
    error = rejection(blocks.verify_checkpoint, checkpoint, other.genesis)
    assert (error.code, error.kind) == ("wrong_chain", INVALID)
    assert "checkpoint is for chain 'provledger-test'" in error.reason


def test_verify_checkpoint_malformed_header(consortium: Consortium, committed):
    checkpoint = ledger_pb2.Checkpoint(
        header=b"\xff", certificate=consortium.certificate(committed)
    )
    error = rejection(blocks.verify_checkpoint, checkpoint, consortium.genesis)
    assert (error.code, error.kind) == ("malformed", INVALID)


def test_checkpoint_with_a_tampered_header(consortium: Consortium, committed):
    header = ledger_pb2.BlockHeader()
    header.CopyFrom(committed.header)
    header.log_size += 1
    checkpoint = ledger_pb2.Checkpoint(
        header=blocks.encode_header(header), certificate=consortium.certificate(committed)
    )
    error = rejection(blocks.verify_checkpoint, checkpoint, consortium.genesis)
    assert (error.code, error.reason) == (
        "bad_certificate",
        "the certificate is for a different block",
    )

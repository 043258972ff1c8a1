"""Fuzzing evidence bundles: `evidence.verify_bundle` against the genesis alone.

Seeds are bundles the node hands out (node/bundles.py) from the story committed into a real
LevelDB store: event bundles, the lineage bundle of the derived asset, the trade bundle of the
settled and disputed order. Inputs change them:
- the file's bytes (almost always caught by the canonical-form check);
- the JSON document, written back canonically so the deeper checks are reached: values
  changed, retyped, removed, added, wrapped; arrays shortened, lengthened, reordered;
- an event's body changed field by field and signed again by its author (new event id), so
  that decoding, the signature and the inclusion proof are reached;
- the checkpoint's header changed and its certificate signed again by every validator, so
  that the events' proofs are checked against another log;
- proof hashes changed.

The property: `verify_bundle` returns what the bundle proves or raises `BundleError` with a
code; nothing else escapes; a changed bundle it accepts proves exactly what its seed proves
(the one change known to keep a bundle valid is dropping certificate signatures down to a
quorum, see tests/unit/test_evidence.py).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from functools import cache

from fuzz._harness import Finding, count, fuzz_settings, hang_checked, show, unexpected
from fuzz._mutate import (
    Choices,
    DrawChoices,
    ProviderChoices,
    canonical_or_none,
    mutate_bytes,
    mutate_json,
    mutate_message,
    pick,
)
from fuzz._story import VOCABULARY, leveldb_world, resign
from hypothesis import given
from hypothesis import strategies as st

from provledger.protocol import blocks
from provledger.protocol.evidence import BundleError, VerifiedBundle, verify_bundle
from provledger.v1 import ledger_pb2

TARGET = "bundles"
# The codes docs/evidence.md documents ("Error codes").
BUNDLE_ERRORS = frozenset(
    (
        "too_large", "malformed", "not_canonical", "unsupported_format", "bundle_version",
        "wrong_genesis", "bad_checkpoint", "bad_event", "unknown_author", "member_removed",
        "unknown_key", "unsupported_author", "bad_signature", "bad_proof", "bad_governance",
        "bad_validator_chain", "wrong_blocks", "missing_proposal", "key_revoked",
        "wrong_members", "wrong_events", "incomplete", "bad_lineage", "bad_trade",
        "claims_mismatch", "case_order", "not_regulator", "regulator_is_party",
        "same_regulator", "already_voted", "not_case_party", "appeal_window_closed",
    )
)  # fmt: skip


@cache
def seeds() -> tuple[bytes, ...]:
    from provledger.node import bundles

    world = leveldb_world()
    store, genesis = world.store, world.consortium.genesis
    made = [
        bundles.event_bundle(store, genesis, world.event_ids[label])  # type: ignore[arg-type]
        for label in ("raw-a", "g-1", "d-1")
    ]
    made.append(bundles.lineage_bundle(store, genesis, "fused"))  # type: ignore[arg-type]
    made.append(bundles.trade_bundle(store, genesis, "order-1"))  # type: ignore[arg-type]
    return tuple(made)


def _proves(verified: VerifiedBundle, *, checkpoint: bool = True) -> tuple:
    """What a verified bundle proves, for comparison (under which checkpoint, too, unless
    `checkpoint` is False)."""
    return (
        verified.kind,
        verified.subject_id,
        json.dumps(verified.claims, sort_keys=True),
        verified.block_id if checkpoint else None,
        tuple((index, event.event_id) for index, event in verified.events),
    )


@cache
def _seed_proofs(checkpoint: bool) -> frozenset[tuple]:
    genesis = leveldb_world().consortium.genesis
    return frozenset(_proves(verify_bundle(s, genesis), checkpoint=checkpoint) for s in seeds())


# --- the property --------------------------------------------------------------------------


@hang_checked
def check_bundle(data: bytes, *, checkpoint_signed_again: bool = False) -> str:
    """Verify `data`. `checkpoint_signed_again`: every validator signed the (changed)
    checkpoint, so it may be another checkpoint; the events and claims must still be a seed's."""
    genesis = leveldb_world().consortium.genesis
    try:
        verified = verify_bundle(data, genesis)
    except BundleError as error:
        if error.code not in BUNDLE_ERRORS:
            raise Finding("untyped_bundle_error", f"code {error.code!r}: {error}") from None
        count(TARGET, "rejected")
        return "rejected"
    except Exception as error:
        raise unexpected(error, f"verify_bundle({show(data, 600)})") from error
    same_checkpoint = not checkpoint_signed_again
    if _proves(verified, checkpoint=same_checkpoint) not in _seed_proofs(same_checkpoint):
        raise Finding("changed_bundle_accepted", f"it proves something else: {show(data, 2000)}")
    count(TARGET, "accepted")
    return "accepted"


# --- the inputs ----------------------------------------------------------------------------


def _document(choices: Choices) -> dict:
    return json.loads(pick(choices, seeds()))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _check_document(document: object, *, checkpoint_signed_again: bool = False) -> None:
    data = canonical_or_none(document)
    if data is None:
        count(TARGET, "unwritable")
        return
    check_bundle(data, checkpoint_signed_again=checkpoint_signed_again)


def file_bytes(choices: Choices) -> None:
    check_bundle(mutate_bytes(pick(choices, seeds()), choices))


def json_values(choices: Choices) -> None:
    _check_document(mutate_json(_document(choices), choices))


def event_body(choices: Choices) -> None:
    document = _document(choices)
    entry = pick(choices, document["events"])
    event = ledger_pb2.Event.FromString(base64.b64decode(entry["body"]))
    mutate_message(event, choices, VOCABULARY)
    signed = resign(event.SerializeToString(deterministic=True))
    entry["body"] = _b64(signed.body)
    entry["signature"] = _b64(signed.signature)
    entry["event_id"] = hashlib.sha256(signed.body).hexdigest()
    _check_document(document)


def checkpoint_header(choices: Choices) -> None:
    document = _document(choices)
    checkpoint = document["checkpoint"]
    header = blocks.decode_header(base64.b64decode(checkpoint["header"]))
    mutate_message(header, choices, VOCABULARY)
    header_bytes = header.SerializeToString()
    consortium = leveldb_world().consortium
    block_id = blocks.block_id(header_bytes)
    certificate = checkpoint["certificate"]
    round_number = certificate["round"]
    try:
        signatures = [
            {
                "validator_id": validator_id,
                "signature": _b64(
                    blocks.sign_precommit(
                        key, consortium.chain_id, header.height, round_number, block_id
                    )
                ),
            }
            for validator_id, key in sorted(consortium.validator_keys.items())
        ]
    except OverflowError:  # a height the precommit's 8 bytes cannot hold
        count(TARGET, "unsignable")
        return
    checkpoint["header"] = _b64(header_bytes)
    certificate.update(height=header.height, block_id=block_id.hex(), signatures=signatures)
    _check_document(document, checkpoint_signed_again=True)


def proof_hashes(choices: Choices) -> None:
    document = _document(choices)
    entry = pick(choices, document["events"])
    proof = entry["proof"]
    if proof and choices.integer(0, 2):
        index = choices.integer(0, len(proof) - 1)
        proof[index] = _b64(mutate_bytes(base64.b64decode(proof[index]), choices))
    else:
        proof.append(_b64(choices.binary(40)))
    _check_document(document)


# --- bounded runs (make test) --------------------------------------------------------------


def test_every_seed_bundle_verifies() -> None:
    for seed in seeds():
        assert check_bundle(seed) == "accepted"


@fuzz_settings(examples=40)
@given(st.data())
def test_fewer_certificate_signatures_still_a_quorum_verify(data) -> None:
    document = json.loads(data.draw(st.sampled_from(seeds())))
    signatures = document["checkpoint"]["certificate"]["signatures"]
    dropped = data.draw(st.integers(0, len(signatures) - 1))
    del signatures[dropped]
    assert check_bundle(canonical_or_none(document)) == "accepted"  # type: ignore[arg-type]


@fuzz_settings(examples=100)
@given(st.data())
def test_changed_file_bytes_are_refused(data) -> None:
    file_bytes(DrawChoices(data))


@fuzz_settings(examples=200)
@given(st.data())
def test_changed_json_values_are_refused(data) -> None:
    json_values(DrawChoices(data))


@fuzz_settings(examples=100)
@given(st.data())
def test_changed_events_signed_again_are_refused(data) -> None:
    event_body(DrawChoices(data))


@fuzz_settings(examples=80)
@given(st.data())
def test_changed_checkpoints_signed_again_are_refused(data) -> None:
    checkpoint_header(DrawChoices(data))


@fuzz_settings(examples=60)
@given(st.data())
def test_changed_proofs_are_refused(data) -> None:
    proof_hashes(DrawChoices(data))


HYPOTHESIS_TESTS = (
    test_changed_file_bytes_are_refused,
    test_changed_json_values_are_refused,
    test_changed_events_signed_again_are_refused,
    test_changed_checkpoints_signed_again_are_refused,
    test_changed_proofs_are_refused,
)


# --- coverage-guided runs (make fuzz, with atheris) ----------------------------------------

_MODES = ("file_bytes", "structured")


def atheris_corpus() -> Sequence[bytes]:
    corpus = [bytes([0]) + seed for seed in seeds()]
    corpus.extend(bytes([1, index]) + bytes(8) for index in range(5))
    return corpus


def atheris_one_input(data: bytes) -> None:
    if not data:
        return
    if _MODES[data[0] % len(_MODES)] == "file_bytes":
        check_bundle(data[1:])
        return
    import atheris

    choices = ProviderChoices(atheris.FuzzedDataProvider(data[1:]))
    pick(choices, (json_values, event_body, checkpoint_header, proof_hashes))(choices)

"""Evidence bundles: one self-contained JSON file that proves a piece of ledger history to
someone who trusts nothing but the consortium's genesis document.

A bundle holds signed events, an RFC 6962 inclusion proof for each, ONE checkpoint (a block
header and its commit certificate) that every proof is checked against, the validator set and
the authors' keys, and the `claims`: what the events show, in plain JSON. The verifier
re-derives the claims from the events and accepts the bundle only if they are equal, so a
bundle that verifies says nothing its signed events do not say. This module is pure (no I/O,
no clock); `node/bundles.py` builds bundles from the store, `provledger verify` checks them and
prints what they prove (cli/evidence.py).

The format (the fields, the canonical encoding, the encoding of bytes, versions 1 to 3, and
what formats 1 and 2 lack) is described, built and read by protocol/evidence_format.py; its
public names are importable from here too.

Verification, in order; the first failure raises `BundleError` with a code and a reason:
1. the bytes are canonical JSON of the shape protocol/evidence_format.py describes (at most
   BUNDLE_SIZE_BYTES_MAX bytes, BUNDLE_EVENTS_MAX events and BUNDLE_GOVERNANCE_EVENTS_MAX
   governance events);
2. chain id, genesis hash and validators equal the genesis document's;
3. the walk of the validator sets verifies from the genesis (protocol/validator_chain.py) and
   ends at or before the checkpoint's height; the checkpoint verifies: certificate signatures
   sorted by validator id, a quorum of the validators that sign its height (`signing_validators`,
   by the walk) precommitted the header's block id; so does each of `blocks`, and each event
   lies in the log range one of them committed (`_places`: its height and time);
4. every event of `events` and `governance`, together in log order: its id is SHA-256(body);
   it decodes for this chain (events.decode); its author is an active member whose current key
   signed it, in the membership replayed from the genesis through the governance events before
   it, at its block's height (protocol/evidence_governance.py, with the rules' own
   functions); log_index < the
   checkpoint's log size and the proof shows leaf SHA-256(0x00 || event_id || signature) at
   log_index in the checkpoint's log root (RFC 9162 §2.1.3.2); a governance event (an action,
   a proposal, an approval) is judged by the rules in its block against the membership in
   force before it (ADR 005, ADR 016); then each of `events` is refused if its key is revoked
   for its height in the membership the replay ends with (`key_revoked`);
5. `governance` is exactly the governance events that `events` need
   (evidence_governance.needed_governance);
6. the claims re-derived from the events (derive_claims) equal `claims`, and the events are
   exactly those the kind needs: no event is missing and none is extra. A case file's claims
   (kind "case", format 3 only; protocol/evidence_case.py) also read what steps 3 and 4
   proved of each event: its block's height and time, and its author's role when it signed.

What a bundle cannot show: that no OTHER events exist. It proves presence, not absence (the
state root is a hash chain, not a tree: docs/adr/003).
"""

from __future__ import annotations

import bisect
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from provledger.protocol import merkle
from provledger.protocol.blocks import block_id, decode_header, verify_certificate
from provledger.protocol.errors import Rejected, invalid
from provledger.protocol.events import DecodedEvent, decode
from provledger.protocol.evidence_claims import BundleError, Proven, derive_claims
from provledger.protocol.evidence_format import (
    FORMAT,
    FORMAT_V1,
    FORMAT_V2,
    PROVEN_KINDS,
    SUBJECT_FIELDS,
    EventEntry,
    ListedEntry,
    bundle_document,
    checkpoint_json,
    encode_canonical,
    malformed,
    member_json,
    parse_canonical,
    read_array,
    read_base64,
    read_entries,
    read_hex,
    read_integer,
    read_object,
    read_string,
    top_fields,
    validators_json,
)
from provledger.protocol.evidence_governance import (
    GOVERNANCE_KINDS,
    Block,
    MembershipReplay,
    needed_governance,
)
from provledger.protocol.evidence_result import VerifiedBundle
from provledger.protocol.genesis import Genesis, ValidatorSet
from provledger.protocol.limits import (
    BUNDLE_EVENTS_MAX,
    BUNDLE_GOVERNANCE_EVENTS_MAX,
    IDENTIFIER_LENGTH_CHARS_MAX,
    VALIDATORS_MAX,
)
from provledger.protocol.validator_chain import (
    ValidatorChainError,
    chain_from_json,
    verify_validator_chain,
)
from provledger.protocol.validators import ValidatorHistory
from provledger.v1 import ledger_pb2

__all__ = [
    "FORMAT", "FORMAT_V1", "FORMAT_V2", "SUBJECT_FIELDS", "BundleError", "EventEntry",
    "VerifiedBundle", "checkpoint_json", "encode_bundle", "encode_canonical", "parse_canonical",
    "read_checkpoint", "signing_validators", "verify_bundle",
]  # fmt: skip


def signing_validators(history: ValidatorHistory, height: int) -> ValidatorSet:
    """The validator set whose quorum signs the block at `height`, as the bundle's walk of the
    validator sets from the genesis (`history`, verified by protocol/validator_chain.py) says:
    the one place where the verification of a bundle asks it."""
    return history.at(height)


def _walk(value: Any, genesis: Genesis) -> ValidatorHistory:
    """The validator sets the bundle's `validator_chain` proves, from the genesis set on."""
    try:
        return verify_validator_chain(chain_from_json(value), genesis)
    except ValidatorChainError as error:
        raise BundleError(
            "bad_validator_chain", f"the walk of the validator sets does not verify: {error}"
        ) from None


def encode_bundle(
    kind: str,
    subject_id: str,
    genesis: Genesis,
    checkpoint: ledger_pb2.Checkpoint,
    entries: Sequence[EventEntry],
    governance: Sequence[EventEntry] = (),
    validator_chain: ledger_pb2.ValidatorChain | None = None,
    blocks: Sequence[ledger_pb2.Checkpoint] = (),
) -> bytes:
    """The canonical bytes of the bundle of `kind` about `subject_id` over `entries`, with the
    governance events they need (`evidence_governance.needed_governance` says which) and the
    walk of the validator sets to the checkpoint's height (empty while the genesis set signs;
    node/walks.py builds it), and the checkpoints of the `blocks` that committed them, one per
    block, which prove each event's height and time. Raises
    `BundleError` if the events are not what such a bundle needs; the builder verifies the
    bytes it gets (`verify_bundle`) before it hands them out."""
    document = bundle_document(
        kind, subject_id, genesis, checkpoint, entries, governance, validator_chain, blocks
    )
    entries = sorted(entries, key=lambda e: e.log_index)
    if kind in PROVEN_KINDS:
        # Its claims read what the bundle proves of each event: verified as a verifier does.
        events, proven = _replayed(document, genesis).own
        document["claims"] = derive_claims(kind, subject_id, events, proven)
    else:
        decoded = [(e.log_index, decode(e.signed, genesis.chain_id)) for e in entries]
        document["claims"] = derive_claims(kind, subject_id, decoded)
    return encode_canonical(document)


# --- verification ------------------------------------------------------------------------


def read_checkpoint(
    value: Any,
    genesis: Genesis,
    where: str = "checkpoint",
    history: ValidatorHistory | None = None,
) -> tuple[ledger_pb2.Checkpoint, ledger_pb2.BlockHeader, bytes, tuple[str, ...]]:
    """The checkpoint written by `checkpoint_json`, its header, block id and signers, if a
    quorum of the validators that sign its height (`signing_validators`: by the walk
    `history`, or the genesis set) committed it; else `BundleError` (malformed,
    bad_checkpoint)."""
    checkpoint = read_object(value, where, ("certificate", "header"))
    place = where
    where = f"{place}.certificate"
    fields = read_object(
        checkpoint["certificate"], where, ("block_id", "height", "round", "signatures")
    )
    header_bytes = read_base64(checkpoint["header"], f"{place}.header")
    certificate = ledger_pb2.CommitCertificate(
        height=read_integer(fields["height"], f"{where}.height"),
        round=read_integer(fields["round"], f"{where}.round", 2**32 - 1),
        block_id=read_hex(fields["block_id"], f"{where}.block_id", 32),
    )
    try:
        header = decode_header(header_bytes)
    except Rejected as error:
        raise BundleError("bad_checkpoint", f"the {place} does not verify: {error}") from None
    walked = ValidatorHistory.of_genesis(genesis.validator_set) if history is None else history
    validators = signing_validators(walked, header.height)
    entries = read_array(fields["signatures"], f"{where}.signatures", VALIDATORS_MAX)
    signers: list[str] = []
    for index, entry in enumerate(entries):
        item = f"{where}.signatures[{index}]"
        entry = read_object(entry, item, ("signature", "validator_id"))
        signer = read_string(entry["validator_id"], f"{item}.validator_id")
        if signers and signer <= signers[-1]:
            raise malformed(f"{where}.signatures must be sorted by validator_id, each once")
        signers.append(signer)
        certificate.signatures.add(
            validator_id=signer, signature=read_base64(entry["signature"], f"{item}.signature")
        )
    message = ledger_pb2.Checkpoint(header=header_bytes, certificate=certificate)
    try:
        if header.chain_id != genesis.chain_id:
            raise invalid("wrong_chain", f"checkpoint is for chain {header.chain_id!r}")
        verify_certificate(certificate, header, header_bytes, validators)
    except Rejected as error:
        raise BundleError("bad_checkpoint", f"the {place} does not verify: {error}") from None
    return message, header, block_id(header_bytes), tuple(signers)


def _verify_event(
    entry: ListedEntry,
    genesis: Genesis,
    header: ledger_pb2.BlockHeader,
    replay: MembershipReplay,
    legacy: bool,
    block: Block | None,
    roles: dict[int, int],
) -> DecodedEvent:
    """The entry's event, if its id, body, author, signature and proof hold; a governance
    event is judged and applied by the replay once its proof holds."""
    identifier = entry.event_id
    if hashlib.sha256(entry.signed.body).digest() != identifier:
        raise BundleError("bad_event", f"{entry.where}.event_id is not SHA-256 of its body")
    try:
        event = decode(entry.signed, genesis.chain_id)
    except Rejected as error:
        raise BundleError("bad_event", f"event {identifier.hex()}: {error}") from None
    if legacy:
        _genesis_author(genesis, event)
    if entry.listed == "governance" and event.kind not in GOVERNANCE_KINDS:
        raise BundleError(
            "wrong_events",
            f"event {identifier.hex()} at log index {entry.log_index} ({event.kind}) is listed "
            "under governance but is no governance action, proposal or approval",
        )
    # The author, key and signature, against the membership in force at this log index, in
    # its block (format 3).
    roles[entry.log_index] = replay.authenticate(entry.log_index, event, block).role
    try:
        merkle.verify_inclusion(
            merkle.hash_leaf(event.leaf),
            entry.log_index,
            header.log_size,
            entry.proof,
            header.log_root,
        )
    except merkle.ProofError as error:
        raise BundleError(
            "bad_proof",
            f"event {identifier.hex()} is not proven at log index {entry.log_index} of the "
            f"checkpoint's log (size {header.log_size}): {error}",
        ) from None
    if event.kind in GOVERNANCE_KINDS and not legacy:
        replay.apply(entry.log_index, event, block)
    return event


def _genesis_author(genesis: Genesis, event: DecodedEvent) -> None:
    """Format 1 proves only genesis keys: its authors must be genesis members, by such a key."""
    author = event.event.author
    member = genesis.member(author.member_id)
    if member is None or all(k.key_id != author.key_id for k in member.keys):
        raise BundleError(
            "unsupported_author",
            f"event {event.event_id.hex()}: key {author.key_id.hex()} of {author.member_id!r} "
            f"is not in the genesis document ({FORMAT_V1} only proves authors' genesis keys)",
        )


def _places(
    value: Any,
    genesis: Genesis,
    history: ValidatorHistory,
    header: ledger_pb2.BlockHeader,
    checkpoint_id: bytes,
    entries: Sequence[ListedEntry],
) -> dict[int, Block]:
    """The block of each entry, by log index, from `blocks` (format 3): the checkpoints of the
    blocks that committed the bundle's events, in height order, each signed by a quorum of
    the validators of its height (the walk `history`), each holding at least one of the
    events; a block's header names the log indexes it committed (`log_size - event_count` up
    to `log_size`), its height and time. `BundleError` malformed, bad_checkpoint or
    wrong_blocks."""
    items = read_array(value, "blocks", BUNDLE_EVENTS_MAX + BUNDLE_GOVERNANCE_EVENTS_MAX)
    starts: list[int] = []
    ends: list[int] = []
    found: list[Block] = []
    for index, item in enumerate(items):
        where = f"blocks[{index}]"
        _, block_header, identifier, _ = read_checkpoint(item, genesis, where, history)
        height, first = block_header.height, block_header.log_size - block_header.event_count
        if found and height <= found[-1].height:
            raise malformed("blocks must be in strictly increasing height order")
        if height > header.height or (height == header.height and identifier != checkpoint_id):
            raise BundleError(
                "wrong_blocks", f"{where} (height {height}) is not a block under the checkpoint"
            )
        if block_header.event_count == 0 or (ends and first < ends[-1]):
            raise BundleError("wrong_blocks", f"{where} (height {height}) commits no new events")
        starts.append(first)
        ends.append(block_header.log_size)
        found.append(Block(height=height, time_ms=block_header.time_ms))
    places: dict[int, Block] = {}
    used: set[int] = set()
    for entry in entries:
        number = bisect.bisect_right(starts, entry.log_index) - 1
        if number < 0 or entry.log_index >= ends[number]:
            raise BundleError(
                "wrong_blocks",
                f"no block of blocks committed the event at log index {entry.log_index}: its "
                "height is not proven",
            )
        places[entry.log_index] = found[number]
        used.add(number)
    unused = sorted(set(range(len(found))) - used)
    if unused:
        raise BundleError(
            "wrong_blocks", f"blocks[{unused[0]}] committed none of the bundle's events"
        )
    return places


@dataclass(frozen=True)
class _Replayed:
    """A bundle checked up to its claims (steps 1 to 5 of the module's docstring)."""

    bundle: dict[str, Any]
    kind: str
    subject_id: str
    header: ledger_pb2.BlockHeader
    checkpoint_id: bytes
    signers: tuple[str, ...]
    validators: ValidatorSet
    events: list[tuple[int, DecodedEvent]]
    governance: list[tuple[int, DecodedEvent]]
    places: dict[int, Block]
    roles: dict[int, int]  # the role of each event's author when it signed, by log index
    replay: MembershipReplay

    @property
    def own(self) -> tuple[list[tuple[int, DecodedEvent]], Proven | None]:
        """The bundle's own events, and what it proves of them (format 3)."""
        if not self.places:
            return self.events, None
        policy = self.replay.supervision()
        indexes = [i for i, _ in self.events]
        proven = Proven(
            heights={i: self.places[i].height for i in indexes},
            times_ms={i: self.places[i].time_ms for i in indexes},
            roles={i: self.roles[i] for i in indexes},
            appeal_window_ms=policy.appeal_window_ms,
            appeal_panel_size=policy.appeal_panel_size,
        )
        return self.events, proven


def verify_bundle(data: bytes, genesis: Genesis) -> VerifiedBundle:
    """Check a bundle's bytes against `genesis` alone; what it proves, or `BundleError`."""
    replayed = _replayed(parse_canonical(data), genesis)
    bundle, kind, subject_id = replayed.bundle, replayed.kind, replayed.subject_id
    events, proven = replayed.own
    claims = derive_claims(kind, subject_id, events, proven)
    difference = _first_difference(bundle["claims"], claims, "claims")
    if difference is not None:
        path, stated, derived = difference
        raise BundleError(
            "claims_mismatch",
            f"{path} says {_show(stated)} but the events show {_show(derived)}",
        )
    replay = replayed.replay
    return VerifiedBundle(
        format=bundle["format"],
        kind=kind,
        subject_id=subject_id,
        claims=claims,
        genesis=genesis,
        validators=replayed.validators,
        header=replayed.header,
        block_id=replayed.checkpoint_id,
        signers=replayed.signers,
        events=tuple(events),
        governance=tuple(replayed.governance),
        facts=dict(replay.facts),
        heights={i: b.height for i, b in replayed.places.items()},
        authors={a: replay.member(a) for a in sorted({e.author_id for _, e in events})},  # type: ignore[misc]
        times_ms={i: b.time_ms for i, b in replayed.places.items()},
        proven=proven,
    )


def _replayed(document: Any, genesis: Genesis) -> _Replayed:
    """The bundle `document` checked against `genesis` up to its claims; else `BundleError`."""
    bundle = read_object(document, "the bundle", top_fields(document))
    legacy = bundle["format"] == FORMAT_V1
    kind = read_string(bundle["kind"], "kind")
    if kind not in SUBJECT_FIELDS:
        raise malformed(f"kind must be one of {sorted(SUBJECT_FIELDS)}")
    if kind in PROVEN_KINDS and bundle["format"] != FORMAT:
        raise malformed(f"a bundle of kind {kind!r} is of format {FORMAT!r} only")
    subject = read_object(bundle["subject"], "subject", (SUBJECT_FIELDS[kind],))
    subject_id = read_string(subject[SUBJECT_FIELDS[kind]], "subject")
    if len(subject_id) > IDENTIFIER_LENGTH_CHARS_MAX:
        raise malformed(f"the subject is longer than {IDENTIFIER_LENGTH_CHARS_MAX} characters")
    if bundle["chain_id"] != genesis.chain_id:
        raise BundleError("wrong_genesis", f"the bundle is not for chain {genesis.chain_id!r}")
    if read_hex(bundle["genesis_hash"], "genesis_hash", 32) != genesis.genesis_hash:
        raise BundleError("wrong_genesis", "the bundle is for another genesis document")
    if bundle["validators"] != validators_json(genesis):
        raise BundleError("wrong_genesis", "the validators differ from the genesis document's")
    history = (
        ValidatorHistory.of_genesis(genesis.validator_set)
        if legacy
        else _walk(bundle["validator_chain"], genesis)
    )
    _, header, checkpoint_id, signers = read_checkpoint(
        bundle["checkpoint"], genesis, history=history
    )
    if history.latest.from_height > header.height:
        raise BundleError(
            "bad_validator_chain",
            f"the walk of the validator sets goes past the checkpoint (height {header.height})",
        )
    validators = signing_validators(history, header.height)

    own = read_entries(bundle["events"], "events", BUNDLE_EVENTS_MAX)
    supporting = (
        []
        if legacy
        else read_entries(bundle["governance"], "governance", BUNDLE_GOVERNANCE_EVENTS_MAX)
    )
    shared = {e.log_index for e in own} & {e.log_index for e in supporting}
    if shared:
        raise malformed(f"log index {min(shared)} is in both events and governance")
    places = (
        _places(bundle["blocks"], genesis, history, header, checkpoint_id, [*own, *supporting])
        if bundle["format"] == FORMAT
        else {}
    )
    replay = MembershipReplay(genesis)
    verified: dict[str, list[tuple[int, DecodedEvent]]] = {"events": [], "governance": []}
    roles: dict[int, int] = {}
    for entry in sorted([*own, *supporting], key=lambda e: e.log_index):
        block = places.get(entry.log_index)
        event = _verify_event(entry, genesis, header, replay, legacy, block, roles)
        verified[entry.listed].append((entry.log_index, event))
    events, governance = verified["events"], verified["governance"]
    for log_index, event in events if places else ():
        # A revocation later in the log may reach back below an event's height.
        replay.judge_revocation(log_index, event, places[log_index])

    if legacy:
        authors = sorted({event.author_id for _, event in events})
        expected = [member_json(genesis.member(a)) for a in authors]  # type: ignore[arg-type]
        if bundle["members"] != expected:
            raise BundleError(
                "wrong_members",
                "members must be exactly the authors' genesis records, by member_id",
            )
    needed = needed_governance(replay.facts.values(), events, header.log_size)
    extra = sorted({i for i, _ in governance} - set(needed))
    if extra:
        raise BundleError(
            "wrong_events",
            f"the governance event at log index {extra[0]} is not one the bundle's events need",
        )
    return _Replayed(
        bundle=bundle,
        kind=kind,
        subject_id=subject_id,
        header=header,
        checkpoint_id=checkpoint_id,
        signers=signers,
        validators=validators,
        events=events,
        governance=governance,
        places=places,
        roles=roles,
        replay=replay,
    )


_MISSING = object()  # a field one side lacks


def _first_difference(stated: Any, derived: Any, path: str) -> tuple[str, Any, Any] | None:
    """The first place where `stated` and `derived` differ: its path and both values."""
    if isinstance(stated, dict) and isinstance(derived, dict):
        for name in sorted(set(stated) | set(derived)):
            found = _first_difference(
                stated.get(name, _MISSING), derived.get(name, _MISSING), f"{path}.{name}"
            )
            if found:
                return found
        return None
    if isinstance(stated, list) and isinstance(derived, list) and len(stated) == len(derived):
        for index, (left, right) in enumerate(zip(stated, derived, strict=True)):
            found = _first_difference(left, right, f"{path}[{index}]")
            if found:
                return found
        return None
    same = type(stated) is type(derived) and stated == derived
    return None if same else (path, stated, derived)


def _show(value: Any) -> str:
    text = "(nothing)" if value is _MISSING else json.dumps(value, sort_keys=True)
    return text if len(text) <= 80 else text[:77] + "..."

"""Walking the chain of validator sets with nothing but the genesis (docs/adr/013).

A checkpoint is trusted because a quorum of its height's validators signed it. The genesis
names the first set; every later set was made by governance events (ValidatorAdded,
ValidatorRemoved) committed in some block H and signing from H + 2 (protocol/validators.py).
A `ValidatorChain` (ledger.proto) carries, for every block that changed the set, in height
order, its checkpoint and each of its validator-set changes with an inclusion proof in that
checkpoint's log. `verify_validator_chain` walks it:

1. start from the genesis set, signing from height 1;
2. for each step: its checkpoint verifies against the set the walk so far says signs its
   height (so the first steps are signed by the genesis set);
3. each change is a governance event of a validator-set kind for this chain; its proof shows
   its leaf at a log index inside that very block (between the log sizes before and after
   it: `log_size - event_count` <= index < `log_size`), in increasing log order;
4. the changes, replayed in order over the set before the block by `validators.apply_change`
   (the rules' own function), give the set that signs from H + 2.

The result is a `ValidatorHistory`, which `blocks.verify_checkpoint` takes to check a later
checkpoint against the set of its height. A walk that leaves a change out does not verify
anything it should not: the next checkpoint it checks names (`validators_hash`) the set the
chain really had, which the walk's own set does not match. What a walk cannot show is that
no block after its last step changed the set; a checkpoint after such a change fails to
verify, it is never accepted against a stale set.

Failures raise `ValidatorChainError` with a code: malformed, too_many_steps,
steps_out_of_order, no_changes, bad_checkpoint, not_in_block, changes_out_of_order,
wrong_leaf_hash, bad_proof, not_a_validator_change, bad_change.

The JSON form (`chain_to_json`, `chain_from_json`), for a proof answer or an evidence bundle:
    {"steps": [{"checkpoint": b64 (a serialized Checkpoint),
                "changes": [{"event": b64 (a serialized SignedEvent),
                             "proof": b64 (a serialized InclusionProof)}]}]}
each serialization deterministic and each base64 canonical (RFC 4648, padded), so the JSON
binds every byte. Pure: no I/O, no clock.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from google.protobuf.message import DecodeError, Message

from provledger.protocol import merkle
from provledger.protocol.blocks import verify_checkpoint
from provledger.protocol.errors import CodedError, Rejected
from provledger.protocol.events import decode, event_id, log_leaf, parse_canonical
from provledger.protocol.genesis import Genesis
from provledger.protocol.limits import VALIDATOR_CHAIN_STEPS_MAX, VALIDATOR_CHANGE_DELAY_BLOCKS
from provledger.protocol.validators import CHANGE_KINDS, Epoch, ValidatorHistory, apply_change
from provledger.v1 import ledger_pb2


class ValidatorChainError(CodedError):
    """A walk of the validator sets that does not verify: `code` and `reason`."""


def verify_validator_chain(chain: ledger_pb2.ValidatorChain, genesis: Genesis) -> ValidatorHistory:
    """The validator sets `chain` proves, from the genesis set on; raises ValidatorChainError
    (codes in the module docstring)."""
    if len(chain.steps) > VALIDATOR_CHAIN_STEPS_MAX:
        raise ValidatorChainError(
            "too_many_steps", f"a walk holds at most {VALIDATOR_CHAIN_STEPS_MAX} steps"
        )
    history = ValidatorHistory.of_genesis(genesis.validator_set)
    previous_height = 0
    for step in chain.steps:
        try:
            header = verify_checkpoint(step.checkpoint, genesis, history)
        except Rejected as error:
            raise ValidatorChainError("bad_checkpoint", str(error)) from None
        height = header.height
        if height <= previous_height:
            raise ValidatorChainError(
                "steps_out_of_order", f"the step at height {height} is not after {previous_height}"
            )
        if not step.changes:
            raise ValidatorChainError("no_changes", f"the step at height {height} has no change")
        base = current = history.latest.validators
        first_index = header.log_size - header.event_count
        last_index = -1
        for item in step.changes:
            proof = item.proof
            where = f"the change at log index {proof.leaf_index} (height {height})"
            if not first_index <= proof.leaf_index < header.log_size:
                raise ValidatorChainError("not_in_block", f"{where} is not in that block")
            if proof.tree_size != header.log_size:
                raise ValidatorChainError("not_in_block", f"{where}: the proof is for another log")
            if proof.leaf_index <= last_index:
                raise ValidatorChainError("changes_out_of_order", f"{where} is out of log order")
            last_index = proof.leaf_index
            signed = item.event
            leaf_hash = merkle.hash_leaf(log_leaf(event_id(signed.body), signed.signature))
            if leaf_hash != proof.leaf_hash:
                raise ValidatorChainError("wrong_leaf_hash", f"{where}: not the event's leaf")
            try:
                merkle.verify_inclusion(
                    leaf_hash,
                    proof.leaf_index,
                    header.log_size,
                    list(proof.hashes),
                    header.log_root,
                )
            except merkle.ProofError as error:
                raise ValidatorChainError("bad_proof", f"{where}: {error}") from None
            kind, body = _validator_change(signed, genesis, where)
            try:
                current = apply_change(base, current, kind, body)
            except Rejected as error:
                raise ValidatorChainError("bad_change", f"{where}: {error}") from None
        history = history.with_epoch(Epoch(height + VALIDATOR_CHANGE_DELAY_BLOCKS, current))
        previous_height = height
    return history


def _validator_change(
    signed: ledger_pb2.SignedEvent, genesis: Genesis, where: str
) -> tuple[str, Any]:
    """The kind and body of the validator-set change `signed` carries."""
    try:
        decoded = decode(signed, genesis.chain_id, genesis.personal_data)
        if decoded.kind != "governance":
            raise ValidatorChainError("not_a_validator_change", f"{where} is not governance")
        change = parse_canonical(
            ledger_pb2.GovernanceChange, decoded.event.governance.change, "governance change"
        )
    except Rejected as error:
        raise ValidatorChainError("not_a_validator_change", f"{where}: {error}") from None
    kind = change.WhichOneof("change")
    if kind not in CHANGE_KINDS:
        raise ValidatorChainError(
            "not_a_validator_change", f"{where} changes {kind or 'nothing'}, not the validators"
        )
    return kind, getattr(change, kind)


# --- the JSON form -----------------------------------------------------------------------------


def chain_to_json(chain: ledger_pb2.ValidatorChain) -> dict[str, Any]:
    return {
        "steps": [
            {
                "checkpoint": _b64(step.checkpoint),
                "changes": [
                    {"event": _b64(item.event), "proof": _b64(item.proof)} for item in step.changes
                ],
            }
            for step in chain.steps
        ]
    }


def chain_from_json(document: Any) -> ledger_pb2.ValidatorChain:
    """The ValidatorChain of its JSON form; raises ValidatorChainError("malformed", ...)."""
    steps = _fields(document, ("steps",), "the walk")["steps"]
    if not isinstance(steps, list) or len(steps) > VALIDATOR_CHAIN_STEPS_MAX:
        raise ValidatorChainError(
            "malformed", f"steps must be a list of at most {VALIDATOR_CHAIN_STEPS_MAX}"
        )
    chain = ledger_pb2.ValidatorChain()
    for number, step_json in enumerate(steps):
        step_fields = _fields(step_json, ("changes", "checkpoint"), f"step {number}")
        step = chain.steps.add()
        step.checkpoint.CopyFrom(_message(ledger_pb2.Checkpoint, step_fields["checkpoint"]))
        changes = step_fields["changes"]
        if not isinstance(changes, list):
            raise ValidatorChainError("malformed", f"step {number}: changes must be a list")
        for item_json in changes:
            item_fields = _fields(item_json, ("event", "proof"), f"a change of step {number}")
            item = step.changes.add()
            item.event.CopyFrom(_message(ledger_pb2.SignedEvent, item_fields["event"]))
            item.proof.CopyFrom(_message(ledger_pb2.InclusionProof, item_fields["proof"]))
    return chain


def _b64(message: Message) -> str:
    return base64.b64encode(message.SerializeToString(deterministic=True)).decode("ascii")


def _fields(value: Any, names: tuple[str, ...], what: str) -> dict[str, Any]:
    if not isinstance(value, dict) or sorted(value) != sorted(names):
        raise ValidatorChainError("malformed", f"{what} must be an object with {list(names)}")
    return value


def _message(kind: type[Message], text: Any) -> Any:
    try:
        if not isinstance(text, str):
            raise ValueError
        raw = base64.b64decode(text.encode("ascii"), validate=True)
        if base64.b64encode(raw).decode("ascii") != text:
            raise ValueError
        message = kind()
        message.ParseFromString(raw)
    except (ValueError, UnicodeError, binascii.Error, DecodeError):
        raise ValidatorChainError("malformed", f"not the base64 of a {kind.__name__}") from None
    if message.SerializeToString(deterministic=True) != raw:
        raise ValidatorChainError("malformed", f"not the canonical bytes of a {kind.__name__}")
    return message

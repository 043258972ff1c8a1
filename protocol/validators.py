"""The chain of validator sets: which validators sign each height (docs/adr/013).

The genesis document names the first set, which signs from height 1. A governance change
(`ValidatorAdded`, `ValidatorRemoved`, `TlsCaReplaced`, approved as every change is, ADR 005)
committed in the
block at height H makes the set that signs from height H + VALIDATOR_CHANGE_DELAY_BLOCKS
(2, as CometBFT's). So when a node starts height h, the sets of h and of h + 1 are both final:
consensus knows who votes now, and whose messages for the next height it may buffer.

Where the sets live: the genesis set in the genesis document only (so a chain without changes
has the genesis state root it always had); every later set in the world state, kind
"validators", as a `ValidatorSetRecord` (its index, the height it signs from, the validators
by id, the events that made it) under its index ("1", "2", ...) and under "latest". All the
changes of one block make one set. A set is never changed once its block is committed, so the
state at height T answers for every height up to T + 2; readers never ask beyond.

The rules of a change (`apply_change`, also what a verifier replays when it walks the chain,
protocol/validator_chain.py), each refusal with its code:
- validator_exists (duplicate): the id is already in the set;
- validator_key_exists (duplicate): another validator of the set holds that key;
- unknown_validator (precondition): the id to remove is not in the set;
- last_validator (precondition): the change would leave the set empty;
- too_many_validators (precondition): more than VALIDATORS_MAX;
- validator_quorum_lost (precondition): the validators the new set keeps from the set before
  the block (same id and key) are not a quorum of the new set. So the validators that signed
  until now can always make the next set's quorum without the newcomers, and at most a third
  of a set (rounded down) is new: 4 validators may add a fifth in one block, not a second one.
  Removals always keep this (every validator left is kept).
- no_validator_context (precondition): the change is judged outside a block (no height).

Each validator also carries its organisation's TLS CA root (`Validator.tls_ca`, ADR 015) when
the genesis names one per validator; then every set does, and a change keeps it so:
- bad_tls_ca (invalid): a ValidatorAdded without a TLS CA root, or a ValidatorAdded or
  TlsCaReplaced whose root is not one (`genesis.tls_ca_problem`: one PEM certificate block of
  at most TLS_CA_PEM_SIZE_BYTES_MAX bytes, a self-signed CA certificate);
- no_tls_cas (precondition): a TLS CA root in a chain whose genesis names none (one
  consortium CA, each node's tls/ca.pem): ValidatorAdded.tls_ca must be empty and there is
  no CA to replace;
- unknown_validator (precondition): the validator whose CA is replaced is not in the set;
- same_tls_ca (duplicate): the replacement is the validator's root already.
A TlsCaReplaced makes a new set like the other changes (from H + 2) whose signers are the same:
its `hash()` and the quorum are unchanged; only who may speak for the node changes.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from provledger.protocol.errors import check, duplicate, invalid, precondition
from provledger.protocol.events import require_identifier
from provledger.protocol.genesis import Validator, ValidatorSet, tls_ca_problem
from provledger.protocol.limits import (
    NODE_ID_LENGTH_CHARS_MAX,
    PUBLIC_KEY_SIZE_BYTES,
    VALIDATOR_CHANGE_DELAY_BLOCKS,
    VALIDATORS_MAX,
)
from provledger.protocol.state import StateReader, Write
from provledger.v1 import state_pb2

KIND = "validators"
LATEST_ID = "latest"
CHANGE_KINDS = ("validator_added", "validator_removed", "tls_ca_replaced")


@dataclass(frozen=True)
class ValidatorContext:
    """What judging a validator-set change needs beyond the state: the height of the block it
    is judged for, and the genesis set that the state's sets follow. `walked`: the change's
    effect on the sets is proven elsewhere, by a walk of the validator sets
    (protocol/validator_chain.py), so judging it here writes no set: what the evidence
    verifier's membership replay passes (protocol/evidence_governance.py), which judges such a
    change's approvals as the rules do but does not hold the sets."""

    genesis_validators: ValidatorSet
    height: int
    walked: bool = False


@dataclass(frozen=True)
class Epoch:
    """A validator set and the first height it signs."""

    from_height: int
    validators: ValidatorSet


@dataclass(frozen=True)
class ValidatorHistory:
    """Validator sets in height order, the first (the genesis set) from height 1."""

    epochs: tuple[Epoch, ...]

    def __post_init__(self) -> None:
        check(bool(self.epochs) and self.epochs[0].from_height == 1, "a history starts at 1")
        heights = [epoch.from_height for epoch in self.epochs]
        check(heights == sorted(set(heights)), "a history's sets start at increasing heights")

    @classmethod
    def of_genesis(cls, genesis_validators: ValidatorSet) -> ValidatorHistory:
        return cls((Epoch(1, genesis_validators),))

    def at(self, height: int) -> ValidatorSet:
        """The set that signs `height` (the genesis set for heights 0 and 1)."""
        found = self.epochs[0].validators
        for epoch in self.epochs:
            if epoch.from_height > height:
                break
            found = epoch.validators
        return found

    @property
    def latest(self) -> Epoch:
        return self.epochs[-1]

    def with_epoch(self, epoch: Epoch) -> ValidatorHistory:
        return ValidatorHistory((*self.epochs, epoch))

    def validator_ids_from(self, height: int) -> frozenset[str]:
        """Every validator of the sets that sign `height` and later (those that may sign a
        message this node receives from now on)."""
        ids = set(v.validator_id for v in self.at(height).validators)
        for epoch in self.epochs:
            if epoch.from_height > height:
                ids.update(v.validator_id for v in epoch.validators.validators)
        return frozenset(ids)

    def tls_cas_from(self, height: int) -> tuple[tuple[str, bytes], ...]:
        """(validator id, TLS CA root) of the validators of the sets that sign `height` and
        later, sorted and once each: the roots a node accepts for them now. A validator whose
        root a decided change replaces has both until the new one activates. Empty with one
        consortium CA."""
        roots = {(v.validator_id, v.tls_ca) for v in self.at(height).validators if v.tls_ca}
        for epoch in self.epochs:
            if epoch.from_height > height:
                roots.update(
                    (v.validator_id, v.tls_ca) for v in epoch.validators.validators if v.tls_ca
                )
        return tuple(sorted(roots))

    def every_tls_ca(self) -> tuple[bytes, ...]:
        """Every TLS CA root any set of the history names, sorted, once each."""
        return tuple(
            sorted({v.tls_ca for e in self.epochs for v in e.validators.validators if v.tls_ca})
        )


# --- reading the sets from the state -----------------------------------------------------


def _set_of(record: state_pb2.ValidatorSetRecord) -> ValidatorSet:
    return ValidatorSet(
        tuple(Validator(v.validator_id, v.public_key, v.tls_ca) for v in record.validators)
    )


def _load(state: StateReader, record_id: str) -> state_pb2.ValidatorSetRecord | None:
    return state.load(KIND, record_id)  # type: ignore[return-value]


def validator_set_at(
    state: StateReader, genesis_validators: ValidatorSet, height: int
) -> ValidatorSet:
    """The set that signs `height`, per `state` (final for heights up to the state's + 2)."""
    record = _load(state, LATEST_ID)
    while record is not None and record.from_height > height:
        record = _load(state, str(record.index - 1)) if record.index > 1 else None
    return genesis_validators if record is None else _set_of(record)


def validator_history(state: StateReader, genesis_validators: ValidatorSet) -> ValidatorHistory:
    """Every set, the genesis set first."""
    records = []
    record = _load(state, LATEST_ID)
    while record is not None:
        records.append(record)
        record = _load(state, str(record.index - 1)) if record.index > 1 else None
    epochs = [Epoch(1, genesis_validators)]
    epochs.extend(Epoch(r.from_height, _set_of(r)) for r in reversed(records))
    return ValidatorHistory(tuple(epochs))


def set_records(state: StateReader, up_to_height: int) -> list[state_pb2.ValidatorSetRecord]:
    """The records of the sets after genesis that sign from `up_to_height` or earlier, oldest
    first: those a walk to a checkpoint at `up_to_height` must prove."""
    records = []
    record = _load(state, LATEST_ID)
    while record is not None:
        if record.from_height <= up_to_height:
            records.append(record)
        record = _load(state, str(record.index - 1)) if record.index > 1 else None
    return records[::-1]


# --- changing the set --------------------------------------------------------------------


def apply_change(base: ValidatorSet, current: ValidatorSet, kind: str, body: Any) -> ValidatorSet:
    """The set after the change `body` (a ValidatorAdded, ValidatorRemoved or TlsCaReplaced,
    by `kind`) to `current`, which is `base` (the set before the block) with the block's
    earlier changes. Raises `Rejected` with the codes in the module docstring."""
    validators = list(current.validators)
    # Every set names a root per validator, or none does (the genesis decided: ADR 015).
    per_organisation = any(v.tls_ca for v in base.validators)
    if kind == "validator_added":
        _require_validator_id(body.validator_id)
        if len(body.public_key) != PUBLIC_KEY_SIZE_BYTES:
            raise invalid("bad_key", f"a public key is {PUBLIC_KEY_SIZE_BYTES} bytes")
        if current.public_key(body.validator_id) is not None:
            raise duplicate("validator_exists", f"{body.validator_id!r} is already a validator")
        if any(v.public_key == body.public_key for v in validators):
            raise duplicate("validator_key_exists", "another validator holds this key")
        if len(validators) >= VALIDATORS_MAX:
            raise precondition(
                "too_many_validators", f"a validator set holds at most {VALIDATORS_MAX}"
            )
        _require_tls_ca(body.tls_ca, per_organisation, body.validator_id)
        validators.append(Validator(body.validator_id, body.public_key, body.tls_ca))
        validators.sort(key=lambda v: v.validator_id)
    elif kind == "validator_removed":
        _require_validator_id(body.validator_id)
        if current.public_key(body.validator_id) is None:
            raise precondition("unknown_validator", f"{body.validator_id!r} is not a validator")
        validators = [v for v in validators if v.validator_id != body.validator_id]
        if not validators:
            raise precondition("last_validator", "the last validator cannot be removed")
    elif kind == "tls_ca_replaced":
        _require_validator_id(body.validator_id)
        if not per_organisation:
            raise precondition(
                "no_tls_cas", "the genesis names no TLS CA per validator: there is none to replace"
            )
        if current.public_key(body.validator_id) is None:
            raise precondition("unknown_validator", f"{body.validator_id!r} is not a validator")
        _require_tls_ca(body.tls_ca, per_organisation, body.validator_id)
        old = next(v for v in validators if v.validator_id == body.validator_id)
        if old.tls_ca == body.tls_ca:
            raise duplicate(
                "same_tls_ca", f"{body.validator_id!r}'s organisation's TLS CA root is this one"
            )
        validators = [
            Validator(v.validator_id, v.public_key, body.tls_ca) if v is old else v
            for v in validators
        ]
    else:
        raise invalid("missing_payload", f"{kind!r} is not a validator-set change")
    changed = ValidatorSet(tuple(validators))
    kept = len(set(changed.validators) & set(base.validators))
    if kept < changed.quorum_size:
        raise precondition(
            "validator_quorum_lost",
            f"the new set of {len(changed.validators)} keeps {kept} validators of the set "
            f"before; a quorum of it is {changed.quorum_size}",
        )
    return changed


def _require_tls_ca(tls_ca: bytes, per_organisation: bool, validator_id: str) -> None:
    if not per_organisation:
        if tls_ca:
            raise precondition(
                "no_tls_cas",
                "the genesis names no TLS CA per validator (one consortium CA): tls_ca must be "
                "empty",
            )
        return
    if not tls_ca:
        raise invalid("bad_tls_ca", f"{validator_id!r} needs its organisation's TLS CA root")
    problem = tls_ca_problem(tls_ca)
    if problem is not None:
        raise invalid("bad_tls_ca", f"the TLS CA root of {validator_id!r}: {problem}")


def _require_validator_id(validator_id: str) -> None:
    require_identifier(validator_id, "validator_id")
    if len(validator_id) > NODE_ID_LENGTH_CHARS_MAX:
        raise invalid(
            "bad_identifier",
            f"a validator id (a node id) is at most {NODE_ID_LENGTH_CHARS_MAX} characters",
        )


def change_writes(
    state: StateReader,
    context: ValidatorContext | None,
    kind: str,
    body: Any,
    event_id: bytes,
) -> list[Write]:
    """The writes of a validator-set change by event `event_id` in the block at
    `context.height`: the set signing from that height + VALIDATOR_CHANGE_DELAY_BLOCKS, under
    its index and "latest". A second change in the same block rewrites that same set."""
    if context is None:
        raise precondition(
            "no_validator_context", "a validator-set change is judged only for a block"
        )
    if context.walked:
        return []
    from_height = context.height + VALIDATOR_CHANGE_DELAY_BLOCKS
    latest = _load(state, LATEST_ID)
    if latest is not None and latest.from_height == from_height:  # not the block's first change
        index = latest.index
        before = _load(state, str(index - 1)) if index > 1 else None
        base = context.genesis_validators if before is None else _set_of(before)
        current = _set_of(latest)
        event_ids = [*latest.event_ids, event_id]
    else:
        check(
            latest is None or latest.from_height < from_height,
            "validator sets start at increasing heights",
        )
        index = 1 if latest is None else latest.index + 1
        base = current = context.genesis_validators if latest is None else _set_of(latest)
        event_ids = [event_id]
    changed = apply_change(base, current, kind, body)
    record = state_pb2.ValidatorSetRecord(
        index=index,
        from_height=from_height,
        validators=[
            state_pb2.ValidatorEntry(
                validator_id=v.validator_id, public_key=v.public_key, tls_ca=v.tls_ca
            )
            for v in changed.validators
        ],
        event_ids=event_ids,
    )
    return [Write(KIND, str(index), record), Write(KIND, LATEST_ID, record)]

"""The rules of governance: members added and removed, keys rotated, roles changed, validators
added and removed, each by a change that more than two thirds of the active members approved
with signatures inside the one event (ADR 005). Dispatched to by protocol/rules.py. A
validator-set change also needs the block's height (`ValidatorContext`); its rules are
protocol/validators.py's.

The change travels as bytes that the approvers sign, so it obeys the event body's rule
(`events.parse_canonical`): no unknown fields, only its canonical encoding, and closed enums.

`action_writes` is the whole judgement of one governance action, in parts that each
have one home here: whether the approvals suffice (`judge_approvals`), and what the change
does (`change_writes`). The evidence verifier replays the governance events a bundle carries
through the same function, over the membership it rebuilds from the genesis
(protocol/evidence_governance.py), so what a change does is written once.
"""

from __future__ import annotations

from collections.abc import Iterable

from provledger.protocol import crypto, validators
from provledger.protocol.errors import duplicate, forbidden, invalid, precondition
from provledger.protocol.events import (
    DecodedEvent,
    check_enums,
    parse_canonical,
    require_identifier,
)
from provledger.protocol.limits import PUBLIC_KEY_SIZE_BYTES
from provledger.protocol.rule_checks import (
    ROLE_NAMES,
    active_member,
    copy_record,
    member_key,
    new_id,
    put,
)
from provledger.protocol.state import StateReader, Write
from provledger.v1 import ledger_pb2, state_pb2

# --- governance --------------------------------------------------------------------------


def governance_sign_bytes(chain_id: str, change: bytes) -> bytes:
    return chain_id.encode() + b"\x00" + change


def governance(
    state,
    author,
    payload,
    decoded,
    block_time_ms,
    *,
    validator_context: validators.ValidatorContext | None = None,
) -> list[Write]:
    """The rule of a `GovernanceAction` event; the block's time plays no part in it."""
    return action_writes(state, payload, decoded, validator_context=validator_context)


def action_writes(
    state: StateReader,
    payload: ledger_pb2.GovernanceAction,
    decoded: DecodedEvent,
    *,
    validator_context: validators.ValidatorContext | None = None,
) -> list[Write]:
    """What the governance action `payload` of the event `decoded` does to `state`: its change
    parsed, not applied before, approved by enough of the members in force, and applied; or
    `Rejected`. The one judgement of a governance change: the ledger's rules apply it to the
    world state, and the evidence verifier to the membership it replays from the genesis
    (protocol/evidence_governance.py). A validator-set change needs `validator_context`."""
    change, kind = parse_change(payload.change)
    require_not_applied(state, payload.change)
    judge_approvals(state, decoded.event.chain_id, payload.change, kind, payload.approvals)
    return change_writes(
        state,
        change,
        kind,
        payload.change,
        decoded.event_id,
        validator_context=validator_context,
    )


def parse_change(change_bytes: bytes) -> tuple[ledger_pb2.GovernanceChange, str]:
    """The change and the name of its kind (`member_added`, ...), if it obeys the body's rule."""
    change = parse_canonical(ledger_pb2.GovernanceChange, change_bytes, "governance change")
    check_enums(change)
    kind = change.WhichOneof("change")
    if kind is None:
        raise invalid("missing_payload", "governance change names no change")
    return change, kind


def change_key(change_bytes: bytes) -> str:
    """The record id under which an applied change is remembered (no replays)."""
    return crypto.key_id(change_bytes).hex()


def remembered(change_bytes: bytes, event_id: bytes) -> Write:
    """The record that the change was applied, by the event `event_id`."""
    return put("governance", change_key(change_bytes), state_pb2.MemberKey(key_id=event_id))


def require_not_applied(state: StateReader, change_bytes: bytes) -> None:
    if state.load("governance", change_key(change_bytes)) is not None:
        raise duplicate("replayed_governance", "this governance change was already applied")


def judge_approvals(
    state: StateReader,
    chain_id: str,
    change_bytes: bytes,
    kind: str,
    approvals: Iterable[ledger_pb2.Approval],
) -> None:
    """Raise `Rejected` unless `approvals` are valid signatures over the change by more than
    two thirds of the members active in `state` (ADR 005), each member once. `kind`, the
    change's kind, is what a threshold per kind of change would be looked up by."""
    active = [m for m in state.members() if not m.removed]
    message = governance_sign_bytes(chain_id, change_bytes)
    approvers: set[str] = set()
    for approval in approvals:
        member = state.load("member", approval.approver.member_id)
        if member is None or member.removed:  # type: ignore[attr-defined]
            raise forbidden(
                "unknown_approver", f"approver {approval.approver.member_id!r} is not a member"
            )
        key = member_key(member, approval.approver.key_id)  # type: ignore[arg-type]
        if key is None or not crypto.verify(
            key, crypto.DOMAIN_GOVERNANCE, message, approval.signature
        ):
            raise invalid(
                "bad_approval",
                f"approval by {approval.approver.member_id!r} does not verify",
            )
        if approval.approver.member_id in approvers:
            raise invalid("duplicate_items", "a member approved twice")
        approvers.add(approval.approver.member_id)
    quorum = len(active) * 2 // 3 + 1
    if len(approvers) < quorum:
        raise forbidden(
            "no_quorum",
            f"{len(approvers)} of {len(active)} members approved; {quorum} are needed",
        )


def change_subject(change: ledger_pb2.GovernanceChange, kind: str) -> str:
    """The member a change is about ("" for a validator-set change)."""
    return getattr(getattr(change, kind), "member_id", "")


def change_writes(
    state: StateReader,
    change: ledger_pb2.GovernanceChange,
    kind: str,
    change_bytes: bytes,
    event_id: bytes,
    *,
    validator_context: validators.ValidatorContext | None = None,
) -> list[Write]:
    """What an approved change does: the change remembered, and the member it is about
    added, removed, given a key or a role, or the validator set changed (protocol/validators.py,
    in the block of `validator_context`); or `Rejected` if it cannot apply to `state`."""
    writes = [remembered(change_bytes, event_id)]
    body = getattr(change, kind)
    if kind in validators.CHANGE_KINDS:
        writes.extend(validators.change_writes(state, validator_context, kind, body, event_id))
        return writes
    if kind == "member_added":
        require_identifier(body.member_id, "member_id")
        new_id(state, "member", body.member_id)
        if body.role not in ROLE_NAMES:
            raise invalid("bad_role", "role must be agency, exchange, regulator or auditor")
        require_public_key(body.public_key)
        member = state_pb2.MemberRecord(
            member_id=body.member_id,
            name=body.name or body.member_id,
            role=body.role,
            keys=[
                state_pb2.MemberKey(
                    key_id=crypto.key_id(body.public_key), public_key=body.public_key
                )
            ],
        )
        writes.append(put("member", body.member_id, member))
        return writes
    member = active_member(state, body.member_id, "member_id")
    updated = copy_record(member)
    if kind == "member_removed":
        updated.removed = True
    elif kind == "key_rotated":
        require_public_key(body.new_public_key)
        new_key_id = crypto.key_id(body.new_public_key)
        if member_key(member, new_key_id) is not None:
            raise duplicate("key_exists", "the member already holds this key")
        if body.retired_key_id:
            if member_key(member, body.retired_key_id) is None:
                raise precondition("unknown_key", "the key to retire is not the member's")
            del updated.keys[:]
            updated.keys.extend(k for k in member.keys if k.key_id != body.retired_key_id)
        updated.keys.append(state_pb2.MemberKey(key_id=new_key_id, public_key=body.new_public_key))
    elif kind == "role_changed":
        if body.role not in ROLE_NAMES:
            raise invalid("bad_role", "role must be agency, exchange, regulator or auditor")
        updated.role = body.role
    writes.append(put("member", body.member_id, updated))
    return writes


def require_public_key(public_key: bytes) -> None:
    if len(public_key) != PUBLIC_KEY_SIZE_BYTES:
        raise invalid("bad_key", f"a public key is {PUBLIC_KEY_SIZE_BYTES} bytes")

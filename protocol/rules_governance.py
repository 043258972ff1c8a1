"""The rules of governance: members added and removed, keys rotated and revoked, roles and
approval thresholds changed, validators added and removed. Dispatched to by
protocol/rules.py. A validator-set change also needs the block's genesis set and height
(`ValidatorContext`); its rules are protocol/validators.py's.

A change is decided in one of two ways, and applies the same way:
- a `GovernanceAction` carries the change and the members' signatures over it, collected
  off-ledger (ADR 005: what an offline signing ceremony produces);
- a `GovernanceProposed` puts the change on the ledger, and members approve it with
  `GovernanceApproved` events (ADR 016). The proposer's event counts as its approval; the
  change applies in the block, and by the event, whose approval first reaches the threshold.
  A proposal takes approvals for PROPOSAL_OPEN_MS_MAX of block time; it is superseded once
  another change to the same subject (a member, the thresholds) applies. A validator-set
  change (validators.CHANGE_KINDS) is never proposed: it travels only as an action, so that
  the walk of validator sets (protocol/validator_chain.py) judges it from its one event.

A change needs approvals from more than a fraction of the active members: the threshold of
its kind (`Thresholds`: in the genesis, changed by `thresholds_changed`), by default more than
two thirds. No threshold may let less than a majority decide.

The change travels as bytes that the approvers sign or name by hash, so it obeys the event
body's rule (`events.parse_canonical`): no unknown fields, only its canonical encoding, and
closed enums.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from typing import Any

from provledger.protocol import crypto, validators
from provledger.protocol.errors import duplicate, forbidden, invalid, precondition
from provledger.protocol.events import (
    DecodedEvent,
    check_enums,
    parse_canonical,
    require_identifier,
)
from provledger.protocol.limits import (
    KEY_ID_SIZE_BYTES,
    PROPOSAL_OPEN_MS_MAX,
    PUBLIC_KEY_SIZE_BYTES,
    TEXT_LENGTH_CHARS_MAX,
)
from provledger.protocol.rule_checks import (
    ROLE_NAMES,
    active_member,
    copy_record,
    member_key,
    new_id,
    put,
)
from provledger.protocol.state import StateReader, Write
from provledger.protocol.thresholds import (
    CHANGE_KINDS,
    DEFAULT_THRESHOLD,
    THRESHOLDS_RECORD_ID,
    approvals_needed,
    threshold_for,
    threshold_problem,
    thresholds,
)
from provledger.v1 import ledger_pb2, state_pb2

OPEN, APPLIED, EXPIRED, SUPERSEDED = "open", "applied", "expired", "superseded"

# --- names and numbers --------------------------------------------------------------------


def governance_sign_bytes(chain_id: str, change: bytes) -> bytes:
    return chain_id.encode() + b"\x00" + change


def sign_approval(key: crypto.SigningKey, chain_id: str, change: bytes) -> bytes:
    """A member's approval of `change` on chain `chain_id`: what a `GovernanceAction` carries."""
    return key.sign(crypto.DOMAIN_GOVERNANCE, governance_sign_bytes(chain_id, change))


def approval_verifies(public_key: bytes, chain_id: str, change: bytes, signature: bytes) -> bool:
    """Whether `signature` is `public_key`'s approval of `change` on chain `chain_id`."""
    return crypto.verify(
        public_key, crypto.DOMAIN_GOVERNANCE, governance_sign_bytes(chain_id, change), signature
    )


def proposal_id(change: bytes) -> bytes:
    """A proposal's id: SHA-256 of the change bytes, domain-separated."""
    return hashlib.sha256(crypto.DOMAIN_GOVERNANCE_PROPOSAL + change).digest()


def change_key(change: bytes) -> str:
    """The record id under which an applied change is remembered (no replays)."""
    return crypto.key_id(change).hex()


def change_subject(kind: str, body: Any) -> str:
    """What a change is about: a later change to the same subject supersedes open proposals."""
    if kind == "thresholds_changed":
        return "thresholds"
    for field, prefix in (("member_id", "member"), ("validator_id", "validator")):
        value = getattr(body, field, "")
        if value:
            return f"{prefix}:{value}"
    return kind


def active_members(state: StateReader) -> dict[str, state_pb2.MemberRecord]:
    return {m.member_id: m for m in state.members() if not m.removed}


def key_revoked_at(key: state_pb2.MemberKey, height: int) -> bool:
    """Whether events signed with `key` and committed at `height` are refused."""
    return key.revoked and height > key.revoked_after_height


def find_key(member: state_pb2.MemberRecord, key_id: bytes) -> state_pb2.MemberKey | None:
    return next((k for k in member.keys if k.key_id == key_id), None)


# --- the one-event action (ADR 005) -----------------------------------------------------------


def governance(
    state, author, payload, decoded, block_time_ms, height, validator_context=None
) -> list[Write]:
    """The rule of a `GovernanceAction` event."""
    return action_writes(state, payload, decoded, height, validator_context=validator_context)


def action_writes(
    state: StateReader,
    payload: ledger_pb2.GovernanceAction,
    decoded: DecodedEvent,
    height: int | None,
    *,
    validator_context: validators.ValidatorContext | None = None,
) -> list[Write]:
    """What the governance action `payload` of the event `decoded` does to `state`: its change
    parsed, not applied before, approved by enough of the members in force, and applied; or
    `Rejected`. The one judgement of a governance action: the ledger's rules apply it to the
    world state at the block `height`, and the evidence verifier to the membership it replays
    from the genesis (protocol/evidence_governance.py), at the height its bundle proves
    (`height` None, a format 2 bundle: key revocations, which take effect by height, are not
    judged)."""
    change, kind = parse_change(payload.change)
    require_not_applied(state, payload.change)
    judge_approvals(state, decoded.event.chain_id, payload.change, kind, payload.approvals, height)
    return change_writes(
        state, change, kind, payload.change, decoded.event_id, height or 0, validator_context
    )


def judge_approvals(
    state: StateReader,
    chain_id: str,
    change_bytes: bytes,
    kind: str,
    approvals: Iterable[ledger_pb2.Approval],
    height: int | None,
) -> None:
    """Raise `Rejected` unless `approvals` are valid signatures over the change, each by a
    different active member with a key not revoked at `height` (None: not judged), and more
    of them than the threshold of the change's `kind` needs."""
    active = active_members(state)
    approvers: set[str] = set()
    for approval in approvals:
        member = active.get(approval.approver.member_id)
        if member is None:
            raise forbidden(
                "unknown_approver", f"approver {approval.approver.member_id!r} is not a member"
            )
        key = find_key(member, approval.approver.key_id)
        if key is None or not approval_verifies(
            key.public_key, chain_id, change_bytes, approval.signature
        ):
            raise invalid(
                "bad_approval",
                f"approval by {approval.approver.member_id!r} does not verify",
            )
        if height is not None and key_revoked_at(key, height):
            raise forbidden(
                "key_revoked",
                f"approval by {approval.approver.member_id!r} is signed with key "
                f"{key.key_id.hex()}, revoked after height {key.revoked_after_height}",
            )
        if approval.approver.member_id in approvers:
            raise invalid("duplicate_items", "a member approved twice")
        approvers.add(approval.approver.member_id)
    needed = approvals_needed(threshold_for(thresholds(state), kind), len(active))
    if len(approvers) < needed:
        raise forbidden(
            "no_quorum",
            f"{len(approvers)} of {len(active)} members approved; {needed} are needed",
        )


# --- proposals on the ledger (ADR 016) --------------------------------------------------------


def governance_proposed(
    state, author, payload, decoded, block_time_ms, height, validator_context=None
) -> list[Write]:
    change, kind = parse_change(payload.change)
    if kind in validators.CHANGE_KINDS:
        raise invalid(
            "validator_change_needs_action",
            f"a {kind} change is not proposed on the ledger: collect the members' approvals "
            "off-ledger (`provledger governance draft`, `sign`, `submit`) and submit it as one "
            "governance action, which a verifier judges from that one event (ADR 016, ADR 013)",
        )
    require_not_applied(state, payload.change)
    identifier = proposal_id(payload.change)
    existing = state.load("proposal", identifier.hex())
    if existing is not None:
        status = proposal_status(state, existing, block_time_ms)  # type: ignore[arg-type]
        if status == OPEN:
            raise duplicate(
                "proposal_open", f"proposal {identifier.hex()} of this change is open: approve it"
            )
        raise precondition(
            "proposal_closed",
            f"proposal {identifier.hex()} of this change is {status}; propose it again with "
            "another proposal_nonce",
        )
    # The change must be one that could apply now; it is judged again when it applies.
    change_writes(state, change, kind, payload.change, decoded.event_id, height, validator_context)
    subject = change_subject(kind, getattr(change, kind))
    record = state_pb2.ProposalRecord(
        proposal_id=identifier,
        change=payload.change,
        proposer_id=author.member_id,
        proposed_height=height,
        proposed_at_ms=block_time_ms,
        expires_at_ms=block_time_ms + PROPOSAL_OPEN_MS_MAX,
        subject=subject,
        subject_version=_subject_version(state, subject),
    )
    return _approve(state, record, change, kind, author, decoded, height, validator_context)


def governance_approved(
    state, author, payload, decoded, block_time_ms, height, validator_context=None
) -> list[Write]:
    identifier = payload.proposal_id.hex()
    record = state.load("proposal", identifier)
    if record is None:
        raise precondition("unknown_proposal", f"no proposal {identifier}")
    status = proposal_status(state, record, block_time_ms)  # type: ignore[arg-type]
    if status != OPEN:
        code = {
            APPLIED: "proposal_applied",
            EXPIRED: "proposal_expired",
            SUPERSEDED: "proposal_superseded",
        }[status]
        raise precondition(code, f"proposal {identifier} is {status}: it takes no approvals")
    if any(a.member_id == author.member_id for a in record.approvals):  # type: ignore[attr-defined]
        raise duplicate(
            "already_approved", f"{author.member_id!r} already approved proposal {identifier}"
        )
    change, kind = parse_change(record.change)  # type: ignore[attr-defined]
    return _approve(
        state, copy_record(record), change, kind, author, decoded, height, validator_context
    )


def _approve(
    state, record, change, kind, author, decoded, height, validator_context
) -> list[Write]:
    """Add the author's approval to `record`; if the approvals now reach the threshold, the
    change applies with it."""
    record.approvals.append(
        state_pb2.ProposalApproval(
            member_id=author.member_id,
            key_id=decoded.event.author.key_id,
            event_id=decoded.event_id,
            height=height,
        )
    )
    counted, needed, _ = tally(state, record, height)
    if counted < needed:
        return [put("proposal", record.proposal_id.hex(), record)]
    record.applied = True
    record.applied_height = height
    record.applied_event_id = decoded.event_id
    applied = change_writes(
        state, change, kind, record.change, decoded.event_id, height, validator_context
    )
    return [put("proposal", record.proposal_id.hex(), record), *applied]


def proposal_status(state: StateReader, record: state_pb2.ProposalRecord, at_ms: int) -> str:
    """open, applied (by its approvals or by a GovernanceAction of the same change), expired
    (at block time `at_ms`) or superseded (another change to its subject applied since)."""
    if record.applied or state.load("governance", change_key(record.change)) is not None:
        return APPLIED
    if at_ms >= record.expires_at_ms:
        return EXPIRED
    if _subject_version(state, record.subject) != record.subject_version:
        return SUPERSEDED
    return OPEN


def tally(
    state: StateReader, record: state_pb2.ProposalRecord, height: int
) -> tuple[int, int, int]:
    """(approvals that count at `height`, approvals needed, active members). An approval counts
    if its member is active and the key it was signed with was not revoked at its height."""
    active = active_members(state)
    counted = 0
    for approval in record.approvals:
        member = active.get(approval.member_id)
        if member is None:
            continue
        key = find_key(member, approval.key_id)
        if key is not None and key_revoked_at(key, approval.height):
            continue
        counted += 1
    _, kind = parse_change(record.change)
    needed = approvals_needed(threshold_for(thresholds(state), kind), len(active))
    return counted, needed, len(active)


# --- the change itself ------------------------------------------------------------------------


def parse_change(change_bytes: bytes) -> tuple[ledger_pb2.GovernanceChange, str]:
    change = parse_canonical(ledger_pb2.GovernanceChange, change_bytes, "governance change")
    check_enums(change)
    kind = change.WhichOneof("change")
    if kind is None:
        raise invalid("missing_payload", "governance change names no change")
    return change, kind


def require_not_applied(state: StateReader, change_bytes: bytes) -> None:
    if state.load("governance", change_key(change_bytes)) is not None:
        raise duplicate("replayed_governance", "this governance change was already applied")


def _subject_version(state: StateReader, subject: str) -> int:
    record = state.load("governance_subject", subject)
    return record.version if record is not None else 0  # type: ignore[attr-defined]


def remembered(change_bytes: bytes, event_id: bytes) -> Write:
    """The record that the change was applied, by the event `event_id` (no replays)."""
    return put("governance", change_key(change_bytes), state_pb2.MemberKey(key_id=event_id))


def change_writes(
    state: StateReader,
    change: ledger_pb2.GovernanceChange,
    kind: str,
    change_bytes: bytes,
    event_id: bytes,
    height: int,
    validator_context: validators.ValidatorContext | None = None,
) -> list[Write]:
    """What applying `change` writes: the change remembered (no replays), its own writes, and
    its subject's version (superseding open proposals about it). Raises if it cannot apply."""
    body = getattr(change, kind)
    writes = [remembered(change_bytes, event_id)]
    if kind in validators.CHANGE_KINDS:
        writes.extend(validators.change_writes(state, validator_context, kind, body, event_id))
    else:
        writes.extend(_CHANGES[kind](state, body, event_id, height))
    subject = change_subject(kind, body)
    version = state_pb2.SubjectVersion(version=_subject_version(state, subject) + 1)
    writes.append(put("governance_subject", subject, version))
    return writes


def _member_added(state, body, event_id, height) -> list[Write]:
    require_identifier(body.member_id, "member_id")
    new_id(state, "member", body.member_id)
    _require_role(body.role)
    require_public_key(body.public_key)
    member = state_pb2.MemberRecord(
        member_id=body.member_id,
        name=body.name or body.member_id,
        role=body.role,
        keys=[
            state_pb2.MemberKey(key_id=crypto.key_id(body.public_key), public_key=body.public_key)
        ],
    )
    return [put("member", body.member_id, member)]


def _member_removed(state, body, event_id, height) -> list[Write]:
    updated = copy_record(active_member(state, body.member_id, "member_id"))
    updated.removed = True
    return [put("member", body.member_id, updated)]


def _key_rotated(state, body, event_id, height) -> list[Write]:
    member = active_member(state, body.member_id, "member_id")
    updated = copy_record(member)
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
    return [put("member", body.member_id, updated)]


def _role_changed(state, body, event_id, height) -> list[Write]:
    updated = copy_record(active_member(state, body.member_id, "member_id"))
    _require_role(body.role)
    updated.role = body.role
    return [put("member", body.member_id, updated)]


def _key_revoked(state, body, event_id, height) -> list[Write]:
    member = active_member(state, body.member_id, "member_id")
    if len(body.key_id) != KEY_ID_SIZE_BYTES:
        raise invalid("bad_key_id", f"a key id is {KEY_ID_SIZE_BYTES} bytes")
    if len(body.reason) > TEXT_LENGTH_CHARS_MAX:
        raise invalid("text_too_long", f"reason exceeds {TEXT_LENGTH_CHARS_MAX} characters")
    updated = copy_record(member)
    key = find_key(updated, body.key_id)
    if key is None:
        raise precondition(
            "unknown_key", f"key {body.key_id.hex()} is not a key of member {body.member_id!r}"
        )
    if key.revoked:
        raise duplicate(
            "already_revoked",
            f"key {body.key_id.hex()} was revoked after height {key.revoked_after_height}",
        )
    key.revoked = True
    key.revoked_after_height = body.from_height
    key.revocation_event_id = event_id
    return [put("member", body.member_id, updated)]


def _thresholds_changed(state, body, event_id, height) -> list[Write]:
    table = body.thresholds
    if not table.HasField("default_threshold"):
        raise invalid("missing_field", "a table of thresholds needs its default_threshold")
    entries = [("default_threshold", table.default_threshold), *sorted(table.by_kind.items())]
    for name, threshold in entries:
        if name != "default_threshold" and name not in CHANGE_KINDS:
            raise invalid(
                "unknown_change_kind",
                f"{name!r} is not a kind of governance change ({', '.join(CHANGE_KINDS)})",
            )
        problem = threshold_problem(threshold.numerator, threshold.denominator)
        if problem is not None:
            raise invalid("bad_threshold", f"{name}: {problem}")
    return [put("thresholds", THRESHOLDS_RECORD_ID, table)]


_ChangeWriter = Callable[[StateReader, Any, bytes, int], list[Write]]
# One writer per change kind but the validator-set changes (protocol/validators.py's): a kind
# added to GovernanceChange adds its writer here.
_CHANGES: dict[str, _ChangeWriter] = {
    "member_added": _member_added,
    "member_removed": _member_removed,
    "key_rotated": _key_rotated,
    "role_changed": _role_changed,
    "key_revoked": _key_revoked,
    "thresholds_changed": _thresholds_changed,
}


def _require_role(role: int) -> None:
    if role not in ROLE_NAMES:
        raise invalid("bad_role", "role must be agency, exchange, regulator or auditor")


def require_public_key(public_key: bytes) -> None:
    if len(public_key) != PUBLIC_KEY_SIZE_BYTES:
        raise invalid("bad_key", f"a public key is {PUBLIC_KEY_SIZE_BYTES} bytes")


__all__ = [
    "CHANGE_KINDS",
    "DEFAULT_THRESHOLD",
    "THRESHOLDS_RECORD_ID",
    "approvals_needed",
    "threshold_for",
    "threshold_problem",
    "thresholds",
]

"""The authorization judgement: may a member use an asset, for a purpose, at a time?

One home for it. The rules (protocol/rules.py) ask it when a use, share or derivation names a
grant, at the block's time; the auditor's question "was X authorised to use Y for P at T?"
(the REST API's /v1/authorization) asks it over the asset's history at any past time. Both
call `grant_failure`, so the two can never disagree about what a grant allows.

The judgement: the owner may; anyone else needs a grant to them on the asset, issued at or
before the time, not revoked by then, not expired (time < expiry), naming the operation and,
for a use, the purpose; a retired asset is used by nobody. A grant is checked from the least
to the most specific reason it can fail (holder, asset, purpose, operation; then time: not
yet issued, revoked, expired), and the first failure is its answer. Among several grants the
one that failed latest explains a refusal best: a grant for the asked purpose and operation
that was revoked says more than one for another purpose.

Purpose binding follows derivation (ADR 022): an asset derived under grants is bound to the
purposes common to those grants and to its parents' own bindings (`bind_purposes`), recorded
on it (AssetRecord.bound_purposes) and inherited by everything derived from it. Before any
owner or grant is asked, a use for a purpose outside the binding fails `purpose_not_bound`
(`binding_failure`), whoever uses it; a grant on a bound asset may grant bound purposes only.
The binding is fixed when the asset is derived and never changes, so the current record's
binding is the binding at any time since.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from provledger.protocol.errors import InvariantViolation
from provledger.v1 import ledger_pb2

OWNER = "owner"
GRANTED = "granted"


@dataclass(frozen=True)
class Failure:
    """Why a grant does not cover a use: a stable code and a reason for people."""

    code: str
    reason: str
    stage: int  # how far the grant got: later stages are closer to covering the use


def operation_name(operation: int) -> str:
    return ledger_pb2.Operation.Name(operation).removeprefix("OPERATION_").lower()


def grant_failure(
    grant_id: str,
    grant: ledger_pb2.GrantIssued,
    *,
    grantee_id: str,
    asset_id: str,
    operation: int,
    purpose: str | None,
    at_ms: int,
    issued_at_ms: int | None = None,
    revoked_at_ms: int | None = None,
) -> Failure | None:
    """None if grant `grant_id` lets `grantee_id` do `operation` on `asset_id` for `purpose`
    (None: any purpose) at `at_ms`; else the first reason it does not. `issued_at_ms` and
    `revoked_at_ms` are the block times of its issue and revocation, where known."""
    failures = (
        (
            grant.grantee_id != grantee_id,
            "grant_not_held",
            f"grant {grant_id!r} was issued to {grant.grantee_id!r}, not {grantee_id!r}",
        ),
        (
            grant.asset_id != asset_id,
            "grant_wrong_asset",
            f"grant {grant_id!r} covers asset {grant.asset_id!r}, not {asset_id!r}",
        ),
        (
            purpose is not None and purpose not in grant.purposes,
            "purpose_not_granted",
            f"grant {grant_id!r} does not cover purpose {purpose!r} (it covers "
            f"{', '.join(grant.purposes)})",
        ),
        (
            operation not in grant.operations,
            "operation_not_granted",
            f"grant {grant_id!r} does not allow {operation_name(operation)}",
        ),
        (
            issued_at_ms is not None and issued_at_ms > at_ms,
            "grant_not_yet_issued",
            f"grant {grant_id!r} was issued at {issued_at_ms} ms, after {at_ms} ms",
        ),
        (
            revoked_at_ms is not None and revoked_at_ms <= at_ms,
            "grant_revoked",
            f"grant {grant_id!r} was revoked at {revoked_at_ms} ms",
        ),
        (
            at_ms >= grant.expires_at_ms,
            "grant_expired",
            f"grant {grant_id!r} expired at {grant.expires_at_ms} ms; the time is {at_ms} ms",
        ),
    )
    for stage, (failed, code, reason) in enumerate(failures):
        if failed:
            return Failure(code, reason, stage)
    return None


def bind_purposes(bindings: Sequence[Sequence[str]]) -> list[str]:
    """The purposes common to every binding (each a grant's purposes or a parent's binding),
    in the order of the first, without repeats; [] if there are no bindings (unbound) or
    they share no purpose (the caller refuses that: such an asset could never be used)."""
    if not bindings:
        return []
    common: list[str] = []
    for purpose in bindings[0]:
        if purpose not in common and all(purpose in other for other in bindings[1:]):
            common.append(purpose)
    return common


def binding_failure(asset_id: str, bound_purposes: Sequence[str], purpose: str) -> Failure | None:
    """None if `purpose` may be pursued with asset `asset_id` bound to `bound_purposes`
    ([]: unbound, any purpose); else why not. Asked before the owner or a grant is."""
    if not bound_purposes or purpose in bound_purposes:
        return None
    return Failure(
        "purpose_not_bound",
        f"asset {asset_id!r} is bound by its derivation to {', '.join(bound_purposes)}; "
        f"{purpose!r} is not among them",
        0,
    )


# --- the question over history -------------------------------------------------------------


@dataclass(frozen=True)
class HistoryEntry:
    """One committed event of an asset's history, with its block's time. `ref` is the
    caller's handle on it (a stored location), handed back among the deciding events."""

    event: ledger_pb2.Event
    log_index: int
    block_time_ms: int
    ref: Any


@dataclass(frozen=True)
class UseQuestion:
    """Was `member_id` authorised to do `operation` on `asset_id` for `purpose` at `at_ms`?
    (`at_ms` None: the caller means the latest block's time and resolves it first.)"""

    member_id: str
    asset_id: str
    purpose: str
    operation: int
    at_ms: int | None = None


@dataclass(frozen=True)
class Judgement:
    code: str  # owner, granted, or why not
    reason: str
    grant_id: str | None  # the grant that covers the use, if one does
    # The events that decide it, in history order: (role, ref) with role one of registered,
    # derived, transferred, retired, grant_issued, grant_revoked.
    deciding: list[tuple[str, Any]] = field(default_factory=list)

    @property
    def authorised(self) -> bool:
        return self.code in (OWNER, GRANTED)


@dataclass
class _Grant:
    grant: ledger_pb2.GrantIssued
    issued: HistoryEntry
    revoked: HistoryEntry | None = None


def judge_use(
    history: Iterable[HistoryEntry], question: UseQuestion, bound_purposes: Sequence[str] = ()
) -> Judgement:
    """The answer to `question`, judged from the asset's history (every event that concerns
    it, in log order) and the purposes the asset is bound to (AssetRecord.bound_purposes: fixed
    at its derivation, so the current record's)."""
    if question.at_ms is None:
        raise InvariantViolation("a use is judged at a time; resolve at_ms first")
    member_id, asset_id, at_ms = question.member_id, question.asset_id, question.at_ms
    ownership: list[tuple[str, HistoryEntry]] = []
    owner_at = ""
    registered_at: int | None = None
    retired: HistoryEntry | None = None
    grants: dict[str, _Grant] = {}
    for entry in history:
        event, when = entry.event, entry.block_time_ms
        kind = event.WhichOneof("payload")
        if kind in ("asset_registered", "asset_derived"):
            if getattr(event, kind).asset_id == asset_id:
                registered_at = when
                ownership.append(("registered" if kind == "asset_registered" else "derived", entry))
                owner_at = event.author.member_id
        elif kind == "asset_transferred" and when <= at_ms:
            ownership.append(("transferred", entry))
            owner_at = event.asset_transferred.new_owner_id
        elif kind == "asset_retired" and when <= at_ms and retired is None:
            retired = entry
        elif (
            kind == "grant_issued"
            and event.grant_issued.grantee_id == member_id
            and event.grant_issued.asset_id == asset_id
        ):
            grants[event.grant_issued.grant_id] = _Grant(event.grant_issued, entry)
        elif kind == "grant_revoked" and event.grant_revoked.grant_id in grants:
            grant = grants[event.grant_revoked.grant_id]
            grant.revoked = grant.revoked or entry

    deciding = [(role, entry) for role, entry in ownership]
    grant_id = None
    if registered_at is None or registered_at > at_ms:
        code, reason = "asset_not_registered", f"asset {asset_id!r} was registered after {at_ms} ms"
    elif retired is not None:
        deciding.append(("retired", retired))
        code = "asset_retired"
        reason = f"asset {asset_id!r} was retired at {retired.block_time_ms} ms"
    elif (unbound := binding_failure(asset_id, bound_purposes, question.purpose)) is not None:
        code, reason = unbound.code, unbound.reason
    elif owner_at == member_id:
        code, reason = OWNER, f"{member_id!r} owned asset {asset_id!r} at {at_ms} ms"
    else:
        code, reason, grant_id = _judge_grants(grants, question, at_ms)
        for identifier, grant in grants.items():
            if grant_id is None or identifier == grant_id:
                deciding.append(("grant_issued", grant.issued))
            revoked = grant.revoked
            if revoked is not None and revoked.block_time_ms <= at_ms and grant_id is None:
                deciding.append(("grant_revoked", revoked))
    deciding.sort(key=lambda pair: pair[1].log_index)
    return Judgement(code, reason, grant_id, [(role, entry.ref) for role, entry in deciding])


def _judge_grants(
    grants: dict[str, _Grant], question: UseQuestion, at_ms: int
) -> tuple[str, str, str | None]:
    """(code, reason, covering grant id) over the member's grants on the asset."""
    member_id = question.member_id
    if not grants:
        return "no_grant", f"{member_id!r} holds no grant on the asset", None
    closest: Failure | None = None
    for grant_id, grant in grants.items():
        failure = grant_failure(
            grant_id,
            grant.grant,
            grantee_id=member_id,
            asset_id=question.asset_id,
            operation=question.operation,
            purpose=question.purpose,
            at_ms=at_ms,
            issued_at_ms=grant.issued.block_time_ms,
            revoked_at_ms=grant.revoked.block_time_ms if grant.revoked is not None else None,
        )
        if failure is None:
            return GRANTED, f"grant {grant_id!r} covered the use at {at_ms} ms", grant_id
        if closest is None or failure.stage > closest.stage:
            closest = failure
    if closest is None:
        raise InvariantViolation("a grant neither covered the use nor failed a check")
    return closest.code, closest.reason, None

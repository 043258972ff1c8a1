"""The governance events an evidence bundle carries, and the membership a verifier replays
from them (format provledger-evidence/2, docs/evidence.md).

A bundle's events may be signed by members added after the genesis, with keys given since, or
by members whose keys or roles changed later. To judge each event against the genesis alone,
a bundle carries the governance events a verifier needs, each proven in the ledger log under
the bundle's checkpoint like any other event, and the verifier replays them in log order from
the genesis members (`MembershipReplay`): before each event it checks, it knows who is a
member, with which keys and role. Each governance event is judged by the ledger's own
functions: its author by `rules.authenticate`, its approvals and what it changes by
`rules_governance.action_writes` (the approvals against the membership in force before it,
ADR 005). Nothing here says again what a governance change does.

Which governance events a bundle needs (`needed_governance`: the one answer, which the builder
(node/bundles.py) uses to choose them and the verifier to refuse a bundle with any other):
- for every author of the bundle's events, that member's history up to the checkpoint (every
  change about it), so that a reader sees its keys and role at each of its events and what
  became of it since (removed, its key retired) as far as the ledger shows it at the
  checkpoint;
- for every governance event the bundle holds, at log index g: the changes before g to the
  standing (`STANDING_KINDS`: added, removed, keys rotated) of its author, of each approver
  and of the member it changes, and every change before g that alters who may approve
  (`APPROVER_SET_KINDS`: members added and removed): what judging it needs;
repeated for the governance events so added, until none is added.

A verifier cannot see that a change is missing; it sees the consequence when something rests
on it: an author or a key it does not know (`unknown_author`, `unknown_key`), a change that
does not apply (`bad_governance`: an approver or member unknown, too few approvals), or
changes left without the one that needed them (`wrong_events`). A change that nothing in the
bundle rests on (an author's role change, its removal after its last event) can be left out
unseen, as any later event can (a bundle proves presence, not absence): what a bundle shows of
an author's role and later standing is as its builder chose. An omitted change that added a
member who did not approve would make a verifier count fewer active members; the event is
still proven committed, and the validators that committed it judged it against the whole
membership.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from google.protobuf.message import Message

from provledger.protocol import rules, rules_governance, validators
from provledger.protocol.blocks import genesis_writes
from provledger.protocol.errors import Rejected, check
from provledger.protocol.events import DecodedEvent
from provledger.protocol.evidence_claims import BundleError
from provledger.protocol.genesis import Genesis
from provledger.protocol.state import Overlay
from provledger.v1 import ledger_pb2, state_pb2

GOVERNANCE_KIND = "governance"
# The kinds of change that decide whether a member may sign, and with which keys: what
# authenticating an author or an approver reads of its record. (Key revocations join.)
STANDING_KINDS = ("member_added", "member_removed", "key_rotated")
# The kinds of change that alter who may approve a change, or how many must: judging any
# approval needs every such change before it. (Approval thresholds, once changeable, join.)
APPROVER_SET_KINDS = ("member_added", "member_removed")


@dataclass(frozen=True)
class GovernanceFact:
    """What the bundle's choice of governance events reads from one of them."""

    log_index: int
    kind: str  # the change's kind: member_added, key_rotated, ...
    member_id: str  # the member the change is about
    author_id: str
    approver_ids: tuple[str, ...]


def change_member(change: ledger_pb2.GovernanceChange, kind: str) -> str:
    """The member a change is about ("" for a validator-set or threshold change)."""
    return str(getattr(getattr(change, kind), "member_id", ""))


def governance_fact(log_index: int, event: DecodedEvent) -> GovernanceFact:
    """The facts of a governance event; `BundleError` bad_governance if its change does not
    parse, or `wrong_events` if it is no governance event."""
    if event.kind != GOVERNANCE_KIND:
        raise BundleError(
            "wrong_events",
            f"event {event.event_id.hex()} at log index {log_index} ({event.kind}) is listed "
            "under governance but is no governance action",
        )
    action = event.event.governance
    try:
        change, kind = rules_governance.parse_change(action.change)
    except Rejected as error:
        raise BundleError(
            "bad_governance", f"governance event {event.event_id.hex()}: {error}"
        ) from None
    return GovernanceFact(
        log_index=log_index,
        kind=kind,
        member_id=change_member(change, kind),
        author_id=event.author_id,
        approver_ids=tuple(a.approver.member_id for a in action.approvals),
    )


def needed_governance(
    governance: Iterable[GovernanceFact],
    events: Sequence[tuple[int, DecodedEvent]],
    log_size: int,
) -> list[int]:
    """The log indexes, in order, of the governance events among `governance` (every one the
    chooser knows of, under the checkpoint's `log_size`) that a bundle of `events` needs (the
    module's docstring says which)."""
    facts = sorted(governance, key=lambda f: f.log_index)
    history: dict[str, list[int]] = {}  # every change about a member
    standing: dict[str, list[int]] = {}  # the changes to its standing
    for fact in facts:
        if fact.member_id:
            history.setdefault(fact.member_id, []).append(fact.log_index)
            if fact.kind in STANDING_KINDS:
                standing.setdefault(fact.member_id, []).append(fact.log_index)
    approver_set_changes = [f.log_index for f in facts if f.kind in APPROVER_SET_KINDS]
    by_index = {f.log_index: f for f in facts}
    subjects = {log_index for log_index, _ in events}  # judged as the bundle's own events
    needed: set[int] = set()
    pending: list[int] = []
    lists = {"history": history, "standing": standing}
    taken: dict[tuple[str, str], int] = {}  # how much of each list is needed, from its start
    approver_set_taken = 0

    def follow(which: str, member_id: str, before: int) -> None:
        indexes = lists[which].get(member_id, [])
        end = bisect.bisect_left(indexes, before)
        start = taken.get((which, member_id), 0)
        for log_index in indexes[start:end]:
            need(log_index)
        taken[(which, member_id)] = max(start, end)

    def need(log_index: int) -> None:
        if log_index not in needed and log_index not in subjects:
            needed.add(log_index)
            pending.append(log_index)

    def judging(fact: GovernanceFact) -> None:
        nonlocal approver_set_taken
        for member_id in (fact.author_id, *fact.approver_ids, fact.member_id):
            if member_id:
                follow("standing", member_id, fact.log_index)
        end = bisect.bisect_left(approver_set_changes, fact.log_index)
        for log_index in approver_set_changes[approver_set_taken:end]:
            need(log_index)
        approver_set_taken = max(approver_set_taken, end)

    for log_index, event in events:
        follow("history", event.author_id, log_size)
        if event.kind == GOVERNANCE_KIND:
            judging(governance_fact(log_index, event))
    while pending:
        judging(by_index[pending.pop()])
    return sorted(needed)


# --- the replay ------------------------------------------------------------------------------


class _NoState:
    """The empty world state under the replayed membership."""

    def load(self, kind: str, record_id: str) -> Message | None:
        return None

    def nonce_used(self, member_id: str, nonce: int) -> bool:
        return False

    def members(self) -> Iterable[state_pb2.MemberRecord]:
        return ()


class MembershipReplay:
    """The membership in force, from the genesis members through the governance events judged
    so far, in log order: who is a member, with which keys and role."""

    def __init__(self, genesis: Genesis) -> None:
        self._state = Overlay(_NoState())
        self._state.apply(genesis_writes(genesis))
        self._last_index = -1

    def authenticate(self, log_index: int, event: DecodedEvent) -> state_pb2.MemberRecord:
        """The author's record in force before `log_index`, if the author is an active member
        whose current key signed `event`; else `BundleError` with the rules' code:
        unknown_author, member_removed, unknown_key or bad_signature."""
        check(log_index > self._last_index, "events are replayed in log order")
        self._last_index = log_index
        try:
            return rules.authenticate(self._state, event, height=None)
        except Rejected as error:
            hint = "" if error.code == "bad_signature" else " (is a governance event missing?)"
            raise BundleError(
                error.code,
                f"event {event.event_id.hex()} at log index {log_index}: {error.reason}, in "
                f"the membership that the genesis and the bundle's governance events give{hint}",
            ) from None

    def apply(self, log_index: int, event: DecodedEvent) -> None:
        """Judge the governance event `event`, just authenticated, against the membership in
        force before it, and apply it; `BundleError` bad_governance if it does not apply."""
        check(log_index == self._last_index, "a governance event is applied once authenticated")
        action = event.event.governance
        try:
            _, kind = rules_governance.parse_change(action.change)
            if kind in validators.CHANGE_KINDS:
                # Its effect is on the validator sets, which the bundle's walk of them proves
                # (protocol/validator_chain.py); here, as for every change, its approvals.
                rules_governance.require_not_applied(self._state, action.change)
                rules_governance.judge_approvals(
                    self._state, event.event.chain_id, action.change, kind, action.approvals, None
                )
                writes = [rules_governance.remembered(action.change, event.event_id)]
            else:
                writes = rules_governance.action_writes(self._state, action, event, None)
        except Rejected as error:
            raise BundleError(
                "bad_governance",
                f"governance event {event.event_id.hex()} at log index {log_index} does not "
                f"apply to the membership in force before it: {error.code}: {error.reason}",
            ) from None
        self._state.apply(writes)

    def member(self, member_id: str) -> state_pb2.MemberRecord | None:
        """The member's record as the replay stands."""
        return self._state.load("member", member_id)  # type: ignore[return-value]


def change_of(event: DecodedEvent) -> tuple[ledger_pb2.GovernanceChange, str]:
    """The change a (verified) governance event carries, and its kind."""
    return rules_governance.parse_change(event.event.governance.change)

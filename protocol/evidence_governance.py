"""The governance events an evidence bundle carries, and the membership a verifier replays
from them (format provledger-evidence/3, docs/evidence.md).

A bundle's events may be signed by members added after the genesis, with keys given since, or
by members whose keys or roles changed later. To judge each event against the genesis alone,
a bundle carries the governance events a verifier needs, each proven in the ledger log under
the bundle's checkpoint like any other event, and the verifier replays them in log order from
the genesis members (`MembershipReplay`): before each event it checks, it knows who is a
member, with which keys and role. Each event is judged in its block (its height and time, which
the bundle proves with the block's checkpoint), by the ledger's own functions: its author by
`rules.authenticate` (keys revoked by height included), a governance event (a one-event
action, ADR 005; a proposal or an approval, ADR 016) by `rules.governance_writes`, the rules
the validators run (approvals against the membership and thresholds in force before it,
proposals open, the change applying with the approval that reaches the threshold). Nothing
here says again what a governance change does.

Which governance events a bundle needs (`needed_governance`: the one answer, which the builder
(node/bundles.py) uses to choose them and the verifier to refuse a bundle with any other):
- for every author of the bundle's events, that member's history up to the checkpoint (every
  change about it), so that a reader sees its keys and role at each of its events and what
  became of it since (removed, its key retired) as far as the ledger shows it at the
  checkpoint;
- for every governance event the bundle holds, at log index g: a proposal's earlier events
  (the proposal and its approvals before g), the changes before g to the standing
  (`STANDING_KINDS`: added, removed, keys rotated or revoked) of its author, of each approver
  (or the author of each of those approvals) and of the member it changes, and every change
  before g that alters who may approve or how many must (`APPROVER_SET_KINDS`: members added
  and removed, thresholds changed): what judging it needs;
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
from provledger.protocol.supervision import supervision_policy
from provledger.v1 import ledger_pb2, state_pb2

GOVERNANCE_KIND = "governance"
# The events that decide a change: a one-event action (ADR 005), and a proposal with its
# approvals on the ledger (ADR 016: the change applies in the approval that reaches the
# threshold, or in the proposal if it alone does).
PROPOSED_KIND, APPROVED_KIND = "governance_proposed", "governance_approved"
GOVERNANCE_KINDS = (GOVERNANCE_KIND, PROPOSED_KIND, APPROVED_KIND)
# The kinds of change that decide whether a member may sign, and with which keys: what
# authenticating an author or an approver reads of its record.
STANDING_KINDS = ("member_added", "member_removed", "key_rotated", "key_revoked")
# The kinds of change that alter who may approve a change, or how many must: judging any
# approval needs every such change before it.
APPROVER_SET_KINDS = ("member_added", "member_removed", "thresholds_changed")


@dataclass(frozen=True)
class GovernanceFact:
    """What the bundle's choice of governance events reads from one of them."""

    log_index: int
    kind: str  # the change's kind: member_added, key_rotated, ...
    member_id: str  # the member the change is about
    author_id: str
    approver_ids: tuple[str, ...]  # a one-event action's approvers
    proposal_id: bytes = b""  # a proposal's or approval's proposal (b"": a one-event action)
    applies: bool = True  # whether the change applied by this event


def change_member(change: ledger_pb2.GovernanceChange, kind: str) -> str:
    """The member a change is about ("" for a validator-set or threshold change)."""
    return str(getattr(getattr(change, kind), "member_id", ""))


def proposal_of(event: DecodedEvent) -> bytes:
    """The proposal id a proposal or an approval event names (b"" for any other event)."""
    if event.kind == PROPOSED_KIND:
        return rules_governance.proposal_id(event.event.governance_proposed.change)
    if event.kind == APPROVED_KIND:
        return bytes(event.event.governance_approved.proposal_id)
    return b""


def governance_fact(
    log_index: int, event: DecodedEvent, change: bytes | None = None, applies: bool = True
) -> GovernanceFact:
    """The facts of a governance event (an action, a proposal or an approval; an approval's
    `change` is its proposal's, which the caller knows: the store's proposal record, or the
    replay's), and whether the change `applies` by it; `BundleError` bad_governance if its
    change does not parse, or `wrong_events` if it is no governance event."""
    if event.kind not in GOVERNANCE_KINDS:
        raise BundleError(
            "wrong_events",
            f"event {event.event_id.hex()} at log index {log_index} ({event.kind}) is listed "
            "under governance but is no governance action, proposal or approval",
        )
    approvers: tuple[str, ...] = ()
    if event.kind == GOVERNANCE_KIND:
        change = event.event.governance.change
        approvers = tuple(a.approver.member_id for a in event.event.governance.approvals)
    elif event.kind == PROPOSED_KIND:
        change = event.event.governance_proposed.change
    check(change is not None, "an approval's fact needs its proposal's change")
    try:
        parsed, kind = rules_governance.parse_change(change)  # type: ignore[arg-type]
    except Rejected as error:
        raise BundleError(
            "bad_governance", f"governance event {event.event_id.hex()}: {error}"
        ) from None
    return GovernanceFact(
        log_index=log_index,
        kind=kind,
        member_id=change_member(parsed, kind),
        author_id=event.author_id,
        approver_ids=approvers,
        proposal_id=proposal_of(event),
        applies=applies,
    )


def needed_governance(
    governance: Iterable[GovernanceFact],
    events: Sequence[tuple[int, DecodedEvent]],
    log_size: int,
) -> list[int]:
    """The log indexes, in order, of the governance events among `governance` (every one the
    chooser knows of under the checkpoint's `log_size`: each event that applied a change,
    every proposal and approval of a proposal that applied, and the facts of `events`' own
    governance events) that a bundle of `events` needs (the module's docstring says which)."""
    facts = sorted(governance, key=lambda f: f.log_index)
    history: dict[str, list[int]] = {}  # every change about a member
    standing: dict[str, list[int]] = {}  # the changes to its standing
    proposals: dict[bytes, list[int]] = {}  # the proposal and approvals of each proposal
    for fact in facts:
        if fact.proposal_id:
            proposals.setdefault(fact.proposal_id, []).append(fact.log_index)
        if fact.member_id and fact.applies:
            history.setdefault(fact.member_id, []).append(fact.log_index)
            if fact.kind in STANDING_KINDS:
                standing.setdefault(fact.member_id, []).append(fact.log_index)
    approver_set_changes = [
        f.log_index for f in facts if f.applies and f.kind in APPROVER_SET_KINDS
    ]
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
        members = {fact.author_id, *fact.approver_ids, fact.member_id}
        # A proposal's approvals count as a whole when one of them is judged: every earlier
        # event of the proposal, and what each of its authors may sign up to this one.
        group = proposals.get(fact.proposal_id, []) if fact.proposal_id else []
        for log_index in group[: bisect.bisect_left(group, fact.log_index)]:
            need(log_index)
            members.add(by_index[log_index].author_id)
        for member_id in sorted(members):
            if member_id:
                follow("standing", member_id, fact.log_index)
        end = bisect.bisect_left(approver_set_changes, fact.log_index)
        for log_index in approver_set_changes[approver_set_taken:end]:
            need(log_index)
        approver_set_taken = max(approver_set_taken, end)

    for log_index, event in events:
        follow("history", event.author_id, log_size)
        if event.kind in GOVERNANCE_KINDS and log_index in by_index:
            judging(by_index[log_index])
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


@dataclass(frozen=True)
class Block:
    """Where an event was committed, as a bundle proves it: its block's height and time."""

    height: int
    time_ms: int


class MembershipReplay:
    """The membership in force, from the genesis members through the governance events judged
    so far, in log order: who is a member, with which keys and role, and the proposals open.
    Each event is judged in its block (`Block`: its height and time, which a bundle of format
    3 proves for every event it carries); None (format 2) judges no revocation and no
    proposal."""

    def __init__(self, genesis: Genesis) -> None:
        self._genesis = genesis
        self._state = Overlay(_NoState())
        self._state.apply(genesis_writes(genesis))
        self._last_index = -1
        self._author: state_pb2.MemberRecord | None = None
        # The facts of each governance event judged, by log index: what needed_governance reads.
        self.facts: dict[int, GovernanceFact] = {}

    def authenticate(
        self, log_index: int, event: DecodedEvent, block: Block | None = None
    ) -> state_pb2.MemberRecord:
        """The author's record in force before `log_index`, if the author is an active member
        whose current key, not revoked for `block`, signed `event`; else `BundleError` with the
        rules' code: unknown_author, member_removed, unknown_key, key_revoked or
        bad_signature."""
        check(log_index > self._last_index, "events are replayed in log order")
        self._last_index = log_index
        height = None if block is None else block.height
        try:
            self._author = rules.authenticate(self._state, event, height=height)
        except Rejected as error:
            hint = (
                ""
                if error.code in ("bad_signature", "key_revoked")
                else " (is a governance event missing?)"
            )
            raise BundleError(
                error.code,
                f"event {event.event_id.hex()} at log index {log_index}: {error.reason}, in "
                f"the membership that the genesis and the bundle's governance events give{hint}",
            ) from None
        return self._author

    def apply(self, log_index: int, event: DecodedEvent, block: Block | None = None) -> None:
        """Judge the governance event `event` (an action, a proposal or an approval), just
        authenticated, in its `block` against the membership in force before it, with the
        ledger's rules (`rules.governance_writes`), and apply what it writes; `BundleError`
        bad_governance if the rules refuse it, missing_proposal for an approval of a proposal
        the replay has not seen. Format 2 (`block` None): only one-event actions are judged."""
        check(log_index == self._last_index, "a governance event is applied once authenticated")
        check(self._author is not None, "a governance event is applied once authenticated")
        if block is None and event.kind != GOVERNANCE_KIND:
            return
        # A validator-set change's effect is on the validator sets, which the bundle's walk of
        # them proves (protocol/validator_chain.py); here, as for every change, its approvals.
        context = validators.ValidatorContext(
            self._genesis.validator_set, 0 if block is None else block.height, walked=True
        )
        try:
            writes = rules.governance_writes(
                self._state,
                self._author,  # type: ignore[arg-type]
                event,
                0 if block is None else block.time_ms,
                None if block is None else block.height,
                context,
            )
        except Rejected as error:
            missing = error.code == "unknown_proposal"
            raise BundleError(
                "missing_proposal" if missing else "bad_governance",
                f"governance event {event.event_id.hex()} at log index {log_index} does not "
                f"apply to the membership in force before it: {error.code}: {error.reason}"
                + (" (is its governance_proposed event missing?)" if missing else ""),
            ) from None
        self._state.apply(writes)
        change = None
        if event.kind == APPROVED_KIND:
            record = self._state.load("proposal", proposal_of(event).hex())
            change = record.change  # type: ignore[union-attr]
        applies = any(w.kind == "governance" for w in writes)  # the change remembered
        self.facts[log_index] = governance_fact(log_index, event, change, applies)

    def judge_revocation(self, log_index: int, event: DecodedEvent, block: Block) -> None:
        """`BundleError` key_revoked if the key that signed `event`, committed in `block`, is
        revoked for that height in the membership as the replay leaves it (the rules'
        `key_revoked_at`): a revocation committed after the event may reach back below its
        height, and then the event proves nothing of its author."""
        author = event.event.author
        member = self.member(author.member_id)
        key = None if member is None else rules_governance.find_key(member, author.key_id)
        if key is not None and rules_governance.key_revoked_at(key, block.height):
            raise BundleError(
                "key_revoked",
                f"event {event.event_id.hex()} at log index {log_index} (height "
                f"{block.height}) is signed with key {author.key_id.hex()} of "
                f"{author.member_id!r}, revoked as compromised after height "
                f"{key.revoked_after_height} by event {key.revocation_event_id.hex()}",
            )

    def member(self, member_id: str) -> state_pb2.MemberRecord | None:
        """The member's record as the replay stands."""
        return self._state.load("member", member_id)  # type: ignore[return-value]

    def supervision(self) -> state_pb2.SupervisionPolicy:
        """The genesis's rules of supervision (the appeal window and panel), as the rules read
        them (protocol/supervision.py)."""
        return supervision_policy(self._state)

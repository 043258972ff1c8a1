"""Evidence bundles built from the store: what `provledger evidence export` and the REST API's
/v1/evidence/* endpoints hand out.

Each builder finds the events a bundle of its kind needs (`protocol.evidence` says which),
and the governance events those need (`protocol.evidence_governance.needed_governance`, chosen
among every governance change applied under the checkpoint: the state's `governance` records,
one read per change ever applied, with the proposal record of each change decided by
proposal: its proposal and approval events), proves every one of them against the latest
checkpoint with the store's inclusion proofs, adds the checkpoint of each one's block, and
encodes the bundle. Before returning, it verifies the bytes against the same genesis: the node
never hands out a bundle that does not verify (an event whose key was revoked below its
height is `BundleRefused`, key_revoked).

Consistency with a running node: a committed event never moves and the head only grows, but a
block's records are on disk a moment before the store's head names it. So if the head read
is older than an event the records name, the head is read again; after HEAD_READS_MAX tries
the caller is told to try again (`BundleUnavailable`). Everything is bounded by
BUNDLE_EVENTS_MAX and BUNDLE_GOVERNANCE_EVENTS_MAX.
"""

from __future__ import annotations

from collections.abc import Sequence

from provledger.node.store import Store
from provledger.node.walks import validator_chain
from provledger.protocol.errors import InvariantViolation, Rejected, check
from provledger.protocol.events import DecodedEvent, decode
from provledger.protocol.evidence import BundleError, EventEntry, encode_bundle, verify_bundle
from provledger.protocol.evidence_case import remedy_targets
from provledger.protocol.evidence_governance import (
    GOVERNANCE_KIND,
    GOVERNANCE_KINDS,
    GovernanceFact,
    governance_fact,
    needed_governance,
    proposal_of,
)
from provledger.protocol.genesis import Genesis
from provledger.protocol.limits import BUNDLE_EVENTS_MAX, BUNDLE_GOVERNANCE_EVENTS_MAX
from provledger.protocol.lineage import LineageQuery, lineage_page
from provledger.v1 import ledger_pb2, state_pb2

HEAD_READS_MAX = 3


class BundleBuildError(Exception):
    """A bundle that cannot be built; `code` for programs (the REST API's error code),
    `reason` for people."""

    code = "bundle_error"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BundleNotFound(BundleBuildError):
    """No committed event, asset or order has that id."""

    code = "not_found"


class BundleTooLarge(BundleBuildError):
    """The bundle would hold more than BUNDLE_EVENTS_MAX events, or more than
    BUNDLE_GOVERNANCE_EVENTS_MAX governance events."""

    code = "too_large"


class BundleRefused(BundleBuildError):
    """The event's key was revoked as compromised from a height below the event's: a bundle
    would prove nothing of its author, and no verifier accepts it (`key_revoked`)."""

    code = "key_revoked"


class BundleUnavailable(BundleBuildError):
    """The bundle cannot be built now: the ledger moved meanwhile."""

    code = "unavailable"


def event_bundle(store: Store, genesis: Genesis, event_id: bytes) -> bytes:
    """The evidence bundle of one committed event."""
    if store.event(event_id) is None:
        raise BundleNotFound(f"no committed event has id {event_id.hex()}")
    return _build(store, genesis, "event", event_id.hex(), [event_id])


def lineage_bundle(store: Store, genesis: Genesis, asset_id: str) -> bytes:
    """The evidence bundle of an asset's upstream lineage: the event that registered or
    derived each asset it comes from, back to registrations."""
    if store.load("asset", asset_id) is None:
        raise BundleNotFound(f"no asset has id {asset_id!r}")
    graph = lineage_page(store, upstream_closure(asset_id))
    if not graph.complete:
        raise BundleTooLarge(
            f"the upstream lineage of {asset_id!r} has more than {BUNDLE_EVENTS_MAX} assets; "
            "export the lineage of an asset further upstream"
        )
    return _build(store, genesis, "lineage", asset_id, [a.origin_event_id for a in graph.assets])


def upstream_closure(asset_id: str) -> LineageQuery:
    """The whole upstream lineage of an asset, up to the assets a bundle may hold: what a
    lineage bundle proves."""
    return LineageQuery(
        asset_id,
        upstream=True,
        depth=BUNDLE_EVENTS_MAX,
        limit=BUNDLE_EVENTS_MAX,
        total_max=BUNDLE_EVENTS_MAX,
    )


def trade_bundle(store: Store, genesis: Genesis, order_id: str) -> bytes:
    """The evidence bundle of an order: its offer, the order, its life cycle and dispute."""
    order = store.load("order", order_id)
    if order is None:
        raise BundleNotFound(f"no order has id {order_id!r}")
    return _build(store, genesis, "trade", order_id, list(order.event_ids))  # type: ignore[attr-defined]


def case_bundle(store: Store, genesis: Genesis, case_id: str) -> bytes:
    """The case file of a case: every event of the case (`CaseRecord.event_ids`), and the
    events that made what its complaints are about and what its remedies act on (an order's
    life cycle with its offer's listing, an offer's listing, an asset's registering or deriving
    event, a grant's issue; protocol/evidence_case.py says which)."""
    case = store.load("case", case_id)
    if case is None:
        raise BundleNotFound(f"no case has id {case_id!r}")
    wanted: dict[str, list[str]] = {"order": [], "offer": [], "asset": [], "grant": []}
    for complaint_id in case.complaint_ids:  # type: ignore[attr-defined]
        complaint = store.load("complaint", complaint_id)
        check(complaint is not None, f"case {case_id!r} names no stored complaint {complaint_id!r}")
        filed = complaint.complaint  # type: ignore[union-attr]
        kind = ledger_pb2.ComplaintSubject.Name(filed.subject_kind)
        wanted[kind.removeprefix("COMPLAINT_SUBJECT_").lower()].append(filed.subject_id)
    remedies = [*case.ruling.remedies]  # type: ignore[attr-defined]
    for vote in case.votes:  # type: ignore[attr-defined]
        remedies.extend(vote.decision.remedies)
    for kind, ids in remedy_targets(remedies).items():
        wanted[kind].extend(ids)
    event_ids = list(case.event_ids)  # type: ignore[attr-defined]
    for kind, ids in wanted.items():
        for record_id in dict.fromkeys(ids):
            record = store.load(kind, record_id)
            check(record is not None, f"case {case_id!r} is about no stored {kind} {record_id!r}")
            if kind == "order":
                event_ids.extend(record.event_ids)  # type: ignore[union-attr]
            else:
                origin = "origin_event_id" if kind == "asset" else "event_id"
                event_ids.append(getattr(record, origin))
    return _build(store, genesis, "case", case_id, list(dict.fromkeys(event_ids)))


def _build(
    store: Store, genesis: Genesis, kind: str, subject_id: str, event_ids: Sequence[bytes]
) -> bytes:
    if len(event_ids) > BUNDLE_EVENTS_MAX:
        raise BundleTooLarge(f"the bundle would hold more than {BUNDLE_EVENTS_MAX} events")
    data = encode_from_store(store, genesis, kind, subject_id, event_ids)
    try:
        verify_bundle(data, genesis)
    except BundleError as error:
        if error.code == "key_revoked":
            raise BundleRefused(error.reason) from None
        raise InvariantViolation(
            f"a bundle built from the store does not verify: {error}"
        ) from None
    return data


def encode_from_store(
    store: Store, genesis: Genesis, kind: str, subject_id: str, event_ids: Sequence[bytes]
) -> bytes:
    """The bundle's bytes, not yet verified: its events, the governance events they need, the
    checkpoint of the block of each, and the walk of the validator sets."""
    locations = [_location(store, event_id) for event_id in event_ids]
    checkpoint, header = _latest_checkpoint(store, max(e.log_index for e in locations))
    try:
        own = [(e.log_index, decode(e.event, genesis.chain_id)) for e in locations]
        governance = _governance_needed(store, genesis, own, header.log_size)
        heights = sorted({location.height for location in [*locations, *governance]})
        blocks = [store.checkpoint(height) for height in heights]
        check(all(b is not None for b in blocks), "an event's block is not stored")
        return encode_bundle(
            kind,
            subject_id,
            genesis,
            checkpoint,
            [_entry(store, location, header.log_size) for location in locations],
            [_entry(store, location, header.log_size) for location in governance],
            validator_chain(store, header.height),
            blocks,  # type: ignore[arg-type]
        )
    except (BundleError, Rejected) as error:
        raise InvariantViolation(f"the store's records make no valid bundle: {error}") from None


def _location(store: Store, event_id: bytes) -> state_pb2.EventLocation:
    location = store.event(event_id)
    check(location is not None, f"a record names event {event_id.hex()}, which is not stored")
    return location  # type: ignore[return-value]


def _entry(store: Store, location: state_pb2.EventLocation, log_size: int) -> EventEntry:
    return EventEntry(
        signed=location.event,
        log_index=location.log_index,
        proof=store.inclusion_proof(location.log_index, log_size),
    )


def _governance_needed(
    store: Store, genesis: Genesis, own: Sequence[tuple[int, DecodedEvent]], log_size: int
) -> list[state_pb2.EventLocation]:
    """The governance events under the checkpoint (of `log_size` events) that a bundle of the
    events `own` needs, in log order."""
    committed: dict[int, state_pb2.EventLocation] = {}
    facts: dict[int, GovernanceFact] = {}
    seen: set[bytes] = set()  # the proposals read

    def add(event_id: bytes) -> None:
        location = _location(store, event_id)
        if location.log_index >= log_size:  # one committed after the checkpoint
            return
        event = decode(location.event, genesis.chain_id)
        if event.kind == GOVERNANCE_KIND:
            committed[location.log_index] = location
            facts[location.log_index] = governance_fact(location.log_index, event)
            return
        # A proposal's events: the proposal (the first approval) and every approval, and the
        # one that applied it, if one did.
        identifier = proposal_of(event)
        if identifier in seen:
            return
        seen.add(identifier)
        record = store.load("proposal", identifier.hex())
        check(record is not None, f"no record of proposal {identifier.hex()}")
        for approval in record.approvals:  # type: ignore[union-attr]
            at = _location(store, approval.event_id)
            if at.log_index < log_size:
                committed[at.log_index] = at
                facts[at.log_index] = governance_fact(
                    at.log_index,
                    decode(at.event, genesis.chain_id),
                    record.change,  # type: ignore[union-attr]
                    applies=record.applied and approval.event_id == record.applied_event_id,  # type: ignore[union-attr]
                )

    for event_id in store.applied_governance():
        add(event_id)
    for _, event in own:
        if event.kind in GOVERNANCE_KINDS:
            add(event.event_id)
    needed = needed_governance(facts.values(), own, log_size)
    if len(needed) > BUNDLE_GOVERNANCE_EVENTS_MAX:
        raise BundleTooLarge(
            f"the bundle would need {len(needed)} governance events, more than "
            f"{BUNDLE_GOVERNANCE_EVENTS_MAX}"
        )
    return [committed[log_index] for log_index in needed]


def _latest_checkpoint(
    store: Store, last_log_index: int
) -> tuple[ledger_pb2.Checkpoint, ledger_pb2.BlockHeader]:
    """The head's checkpoint, once the head covers `last_log_index`."""
    for _ in range(HEAD_READS_MAX):
        height = store.head_height
        checkpoint, header = store.checkpoint(height), store.header(height)
        if checkpoint is not None and header is not None and last_log_index < header.log_size:
            return checkpoint, header
    raise BundleUnavailable("a block was being committed while the bundle was built; try again")

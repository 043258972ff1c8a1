"""The store's indexes: the entries a committed event adds to them, and the reads that page
through them (an asset's history, lineage edges, grants, orders, proposals, cases, and world-state
records of a kind by id). Every key comes from node/schema.py; what an event concerns, from
protocol/concerns.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import islice
from typing import TYPE_CHECKING

from google.protobuf.message import Message

from provledger.node import schema
from provledger.node.leveldb import CheckedReads
from provledger.protocol.concerns import concerns
from provledger.protocol.errors import check
from provledger.protocol.events import DecodedEvent
from provledger.protocol.rules_cases import CaseSubjects
from provledger.protocol.rules_governance import proposal_id
from provledger.v1 import state_pb2


def index_entries(
    entries: list[tuple[bytes, bytes]],
    decoded: DecodedEvent,
    log_index: int,
    block_writes: dict[tuple[str, str], Message | None],
    load: Callable[[str, str], Message | None],
) -> None:
    """Append to `entries` the index entries of one event at `log_index`: its assets'
    histories, the lineage edges, and the grants, proposals, orders and cases indexes.
    `block_writes` are the block's state writes, `load` reads the state before them."""

    def lookup(kind: str, record_id: str):
        record = block_writes.get((kind, record_id))
        return record if record is not None else load(kind, record_id)

    payload = getattr(decoded.event, decoded.kind)
    about = concerns(decoded.kind, payload, lookup)
    for asset_id in about.assets:
        entries.append((schema.asset_history_key(asset_id, log_index), decoded.event_id))
    for parent_id, child_id in about.lineage_edges:
        entries.append((schema.upstream_key(child_id, parent_id), b""))
        entries.append((schema.downstream_key(parent_id, child_id), b""))
    if decoded.kind == "grant_issued":
        entries.append((schema.grants_by_asset_key(payload.asset_id, payload.grant_id), b""))
        entries.append((schema.grants_by_grantee_key(payload.grantee_id, payload.grant_id), b""))
        entries.append((schema.grants_by_grantor_key(decoded.author_id, payload.grant_id), b""))
    elif decoded.kind == "governance_proposed":
        identifier = proposal_id(payload.change)
        record = block_writes.get(("proposal", identifier.hex()))
        check(record is not None, f"proposal {identifier.hex()} was proposed without a record")
        time_ms = record.proposed_at_ms  # type: ignore[union-attr]
        entries.append((schema.proposal_by_time_key(time_ms, identifier), b""))
    elif decoded.kind == "order_placed":
        check(len(about.assets) == 1, f"order {payload.order_id!r} was placed without its offer")
        for member_id in about.members:
            entries.append((schema.orders_by_member_key(member_id, payload.order_id), b""))
        entries.append((schema.orders_by_asset_key(about.assets[0], payload.order_id), b""))
    elif decoded.kind == "case_opened":
        case = block_writes.get(("case", payload.case_id))
        check(case is not None, f"case {payload.case_id!r} was opened without a record")
        for member_id in case.parties:  # type: ignore[union-attr]
            entries.append((schema.cases_by_member_key(member_id, payload.case_id), b""))
        for subject_id in CaseSubjects(lookup, payload.complaint_ids).ids():
            entries.append((schema.cases_by_subject_key(subject_id, payload.case_id), b""))


class IndexReads:
    """The index reads of `Store` (node/store.py), which holds the checked reads of the last
    commit and the world-state records they name."""

    _read: CheckedReads

    if TYPE_CHECKING:  # provided by Store

        def load(self, kind: str, record_id: str) -> Message | None: ...

        def event(self, event_identifier: bytes) -> state_pb2.EventLocation | None: ...

        def refuse_if_damaged(self) -> None: ...

    def asset_history(
        self, asset_id: str, after_log_index: int | None, limit: int
    ) -> tuple[list[state_pb2.EventLocation], bool]:
        """Events concerning `asset_id` in log order, after a cursor; and whether more exist."""
        prefix = schema.asset_history_prefix(asset_id)
        start = (
            schema.asset_history_key(asset_id, after_log_index + 1)
            if after_log_index is not None
            else prefix
        )
        entries: list[state_pb2.EventLocation] = []
        for key, event_identifier in self._read.iterator(start=start):
            if not key.startswith(prefix):
                break
            if len(entries) == limit:
                return entries, True
            location = self.event(event_identifier)
            check(location is not None, "the asset history names an event that is not stored")
            entries.append(location)  # type: ignore[arg-type]
        return entries, False

    def lineage_neighbours(self, asset_id: str, upstream: bool) -> Iterator[str]:
        """The parents (`upstream`) or children of an asset, in id order (protocol/lineage.py
        walks the graph)."""
        prefix = (
            schema.upstream_prefix(asset_id) if upstream else schema.downstream_prefix(asset_id)
        )
        for key in self._read.iterator(prefix=prefix, include_value=False):
            yield key[len(prefix) :].decode()

    def _index_ids(self, prefix: bytes, after: str | None) -> Iterator[str]:
        """The ids under an index `prefix` (in byte order) after `after` (exclusive), read
        lazily from the last commit. Ids hold no 0x00, so the first key after an id's is its
        key + 0x00."""
        start = prefix + after.encode() + b"\x00" if after is not None else prefix
        for key in self._read.iterator(start=start, include_value=False):
            if not key.startswith(prefix):
                return
            yield key[len(prefix) :].decode()

    def _indexed_record(self, kind: str, identifier: str) -> Message:
        record = self.load(kind, identifier)
        check(record is not None, f"an index names {kind} {identifier!r}, which is not stored")
        return record  # type: ignore[return-value]

    def records_after(
        self, kind: str, prefix: bytes, after: str | None
    ) -> Iterator[tuple[str, Message]]:
        """(id, record) of the records of `kind` an index `prefix` names, by id (in byte order)
        after `after` (exclusive), read lazily: a caller that stops early reads no further
        (the catalogue, node/market.py, stops at its scan bound)."""
        for identifier in self._index_ids(prefix, after):
            yield identifier, self._indexed_record(kind, identifier)

    def _records_page(
        self, kind: str, prefix: bytes, after: str | None, limit: int
    ) -> tuple[list[Message], bool]:
        """A page of `records_after`: up to `limit` records, and whether more exist."""
        identifiers = list(islice(self._index_ids(prefix, after), limit + 1))
        records = [self._indexed_record(kind, identifier) for identifier in identifiers[:limit]]
        return records, len(identifiers) > limit

    def records_of_kind(
        self, kind: str, after_id: str | None, limit: int
    ) -> tuple[list[Message], bool]:
        """World-state records of `kind` by record id (in byte order) after a cursor; and
        whether more exist."""
        return self._records_page(kind, schema.state_kind_prefix(kind), after_id, limit)

    def grants_of_asset(
        self, asset_id: str, after_grant_id: str | None, limit: int
    ) -> tuple[list[state_pb2.GrantRecord], bool]:
        """Grants on `asset_id` by grant id, after a cursor; and whether more exist."""
        prefix = schema.grants_by_asset_prefix(asset_id)
        return self._records_page("grant", prefix, after_grant_id, limit)  # type: ignore[return-value]

    def grants_held_by(
        self, grantee_id: str, after_grant_id: str | None, limit: int
    ) -> tuple[list[state_pb2.GrantRecord], bool]:
        prefix = schema.grants_by_grantee_prefix(grantee_id)
        return self._records_page("grant", prefix, after_grant_id, limit)  # type: ignore[return-value]

    def grants_issued_by(
        self, grantor_id: str, after_grant_id: str | None, limit: int
    ) -> tuple[list[state_pb2.GrantRecord], bool]:
        prefix = schema.grants_by_grantor_prefix(grantor_id)
        return self._records_page("grant", prefix, after_grant_id, limit)  # type: ignore[return-value]

    def orders_of_member(
        self, member_id: str, after_order_id: str | None, limit: int
    ) -> tuple[list[state_pb2.OrderRecord], bool]:
        """Orders where `member_id` is the buyer, the seller or the listing exchange."""
        prefix = schema.orders_by_member_prefix(member_id)
        return self._records_page("order", prefix, after_order_id, limit)  # type: ignore[return-value]

    def proposals_since(
        self, time_ms: int, limit: int
    ) -> tuple[list[state_pb2.ProposalRecord], bool]:
        """Up to `limit` governance proposals recorded at block time `time_ms` or later, oldest
        first; and whether more follow."""
        self.refuse_if_damaged()
        records: list[state_pb2.ProposalRecord] = []
        for key in self._read.iterator(
            start=schema.proposals_from(time_ms),
            stop=schema.PROPOSALS_END,
            include_value=False,
        ):
            if len(records) == limit:
                return records, True
            record = self.load("proposal", schema.proposal_id_of_key(key).hex())
            check(record is not None, f"{schema.describe_key(key)} names no proposal")
            records.append(record)  # type: ignore[arg-type]
        return records, False

    def orders_of_asset(
        self, asset_id: str, after_order_id: str | None, limit: int
    ) -> tuple[list[state_pb2.OrderRecord], bool]:
        prefix = schema.orders_by_asset_prefix(asset_id)
        return self._records_page("order", prefix, after_order_id, limit)  # type: ignore[return-value]

    def cases_page(
        self, member_id: str | None, subject_id: str | None, after_case_id: str | None, limit: int
    ) -> tuple[list[state_pb2.CaseRecord], bool]:
        """Cases by case id after a cursor, where `member_id` is a party (if given), else about
        `subject_id` (if given), else all; and whether more exist."""
        if member_id is not None:
            prefix = schema.cases_by_member_prefix(member_id)
        elif subject_id is not None:
            prefix = schema.cases_by_subject_prefix(subject_id)
        else:
            prefix = schema.state_kind_prefix("case")
        return self._records_page("case", prefix, after_case_id, limit)  # type: ignore[return-value]

    def case_is_about(self, subject_id: str, case_id: str) -> bool:
        """Whether the cases-by-subject index lists `case_id` under `subject_id`."""
        return self._read.get(schema.cases_by_subject_key(subject_id, case_id)) is not None

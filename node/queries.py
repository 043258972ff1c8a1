"""The queries every read interface answers, with the access policy applied: the one place
between the store and the adapters (node/grpc_api.py, node/rest/).

An adapter authenticates its caller (a member's bearer token, over REST and gRPC alike:
`authenticate`), asks here, and converts what it gets into its wire shape. It judges nothing
itself: who may see what is protocol/access.py's, how lineage is walked protocol/lineage.py's,
the authorization question protocol/authorization.py's, the PROV mapping protocol/prov.py's.

Every refusal is a `QueryError` with a kind (not_found, forbidden, bad_request, unavailable,
internal) that each adapter maps to its own status, a stable code, and a reason for people.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from provledger.node import bundles, market
from provledger.node.store import Store
from provledger.node.walks import validator_chain
from provledger.protocol import access, authorization, rules_governance
from provledger.protocol.access import Reader, decode_event
from provledger.protocol.authorization import UseQuestion
from provledger.protocol.catalogue import FilterError, OfferFilters, check_filters
from provledger.protocol.errors import CodedError
from provledger.protocol.events import event_id
from provledger.protocol.genesis import Genesis, role_name
from provledger.protocol.limits import (
    HISTORY_PAGE_BYTES_MAX,
    HISTORY_PAGE_EVENTS_MAX,
    IDENTIFIER_LENGTH_CHARS_MAX,
    LINEAGE_NODES_MAX,
    PROPOSAL_OPEN_MS_MAX,
    PROV_HISTORY_EVENTS_SCANNED_MAX,
)
from provledger.protocol.lineage import LineagePage, LineageQuery, lineage_page
from provledger.protocol.prov import (
    CASE_ACTIVITY_TYPES,
    Agent,
    CaseActivity,
    Origin,
    case_activity,
    prov_document,
)
from provledger.protocol.tokens import TokenError, verify_token
from provledger.v1 import api_pb2, ledger_pb2, state_pb2


class QueryError(CodedError):
    """A query that has no answer for this caller."""

    def __init__(self, kind: str, code: str, reason: str) -> None:
        super().__init__(code, reason)
        self.kind = kind  # not_found, forbidden, bad_request, unavailable, internal


def not_found(code: str, reason: str) -> QueryError:
    return QueryError("not_found", code, reason)


def forbidden(reason: str) -> QueryError:
    return QueryError("forbidden", "forbidden", reason)


def bad_request(code: str, reason: str) -> QueryError:
    return QueryError("bad_request", code, reason)


@dataclass(frozen=True)
class Block:
    """A committed block's header as stored (bytes) and decoded, with its certificate."""

    height: int
    header: ledger_pb2.BlockHeader
    header_bytes: bytes
    certificate: ledger_pb2.CommitCertificate


@dataclass(frozen=True)
class Lineage:
    page: LineagePage  # records as the reader may see them
    redacted: list[bool]  # per asset of the page


@dataclass(frozen=True)
class ProposalAnswer:
    """A governance proposal as it stands at the head: its record, its status (open, applied,
    expired, superseded: protocol/rules_governance.py), and its approvals against the
    threshold of its kind."""

    record: state_pb2.ProposalRecord
    kind: str
    status: str
    approvals_counted: int
    approvals_needed: int
    active_members: int
    threshold: ledger_pb2.Threshold


@dataclass(frozen=True)
class AuthorizationAnswer:
    judgement: authorization.Judgement  # deciding refs are EventLocations
    question: UseQuestion  # with its time resolved
    checkpoint: Block
    withheld: int  # deciding events the reader may not see, left out


class LedgerQueries:
    """Reads of one store for one genesis, each under the access policy."""

    def __init__(self, store: Store, genesis: Genesis) -> None:
        self.store = store
        self.genesis = genesis

    # --- the chain of validator sets ---------------------------------------------------------

    def validator_chain(self, height: int) -> ledger_pb2.ValidatorChain:
        """The walk from the genesis set to the set that signs `height` (a committed height),
        for a verifier that trusts only the genesis (protocol/validator_chain.py): every block
        whose validator-set changes made a set signing at `height` or before, with its
        checkpoint and each change's inclusion proof in it. Empty while the genesis set signs.
        Governance events are every member's to read (protocol/access.py), so every reader
        gets the same walk."""
        return validator_chain(self.store, height)

    # --- who is asking --------------------------------------------------------------------

    def authenticate(self, token: str | None, now_ms: int) -> Reader:
        """The reader a bearer token names, checked against the ledger's members at `now_ms`.
        Every read of every API needs one: without a token, or with one that does not hold,
        this raises an `unauthorized` QueryError (`missing_token`, `token_<why>`)."""
        if token is None:
            raise QueryError(
                "unauthorized",
                "missing_token",
                "reads need a member's bearer token: send authorization: Bearer <token> "
                "(provledger token issue)",
            )
        try:
            claims = verify_token(
                token,
                lambda member_id: self.store.load("member", member_id),
                self.genesis.chain_id,
                now_ms,
            )
        except TokenError as error:
            raise QueryError("unauthorized", f"token_{error.code}", error.reason) from None
        return Reader(member_id=claims.member_id, role=claims.role)

    # --- blocks ---------------------------------------------------------------------------

    def block(self, height: int) -> Block | None:
        stored = self.store.stored_block(height)
        if stored is None:
            return None
        return Block(height, self.store.header(height), stored.header, stored.certificate)  # type: ignore[arg-type]

    def require_block(self, height: int) -> Block:
        head = self.store.head_height
        block = self.block(height) if 1 <= height <= head else None
        if block is None:
            raise not_found("unknown_height", f"no block at height {height}; the head is {head}")
        return block

    def require_block_events(self, reader: Reader) -> None:
        """Raise unless `reader` may read whole blocks with their events' bodies."""
        if not access.sees_block_events(reader):
            raise QueryError(
                "forbidden",
                "blocks_need_auditor",
                "a block carries every member's events, so whole blocks are read with an "
                f"auditor's token only; {reader.member_id!r} reads its events one by one "
                "(GetEvent, GetAssetHistory) and block headers as checkpoints",
            )

    def equivocator(self, validator_id: str) -> state_pb2.EquivocatorRecord | None:
        """The ledger's mark on a validator that equivocated (ADR 014), if any."""
        record = self.store.load("equivocator", validator_id)
        return record if isinstance(record, state_pb2.EquivocatorRecord) else None

    def head_block(self) -> Block:
        if self.store.head_height == 0:
            raise not_found("empty_chain", "no block has been committed yet")
        return self.require_block(self.store.head_height)

    def block_time_ms(self, height: int) -> int:
        return self.require_block(height).header.time_ms

    # --- records under the policy ---------------------------------------------------------

    def require_asset(self, reader: Reader, asset_id: str) -> state_pb2.AssetRecord:
        asset = self.store.load("asset", asset_id)
        if asset is None:
            raise not_found("unknown_asset", f"no asset {asset_id!r}")
        if not access.sees_asset(self.store, reader, asset):
            raise forbidden(f"asset {asset_id!r} does not concern {reader.member_id!r}")
        return asset  # type: ignore[no-any-return]

    def require_event(self, reader: Reader, event_identifier: bytes) -> state_pb2.EventLocation:
        location = self.store.event(event_identifier)
        if location is None:
            raise not_found("unknown_event", f"no committed event {event_identifier.hex()}")
        if not access.sees_event(self.store, reader, decode_event(location.event)):
            raise forbidden(f"event {event_identifier.hex()} does not concern {reader.member_id!r}")
        return location

    def require_grant(self, reader: Reader, grant_id: str) -> state_pb2.GrantRecord:
        record = self.store.load("grant", grant_id)
        if record is None:
            raise not_found("unknown_grant", f"no grant {grant_id!r}")
        if not access.sees_grant(self.store, reader, record):
            raise forbidden(f"grant {grant_id!r} does not concern {reader.member_id!r}")
        return record  # type: ignore[no-any-return]

    def require_order(self, reader: Reader, order_id: str) -> state_pb2.OrderRecord:
        order = self.store.load("order", order_id)
        if order is None:
            raise not_found("unknown_order", f"no order {order_id!r}")
        if not access.sees_order(self.store, reader, order):
            raise forbidden(f"order {order_id!r} does not concern {reader.member_id!r}")
        return order  # type: ignore[no-any-return]

    def sees_grant(self, reader: Reader, grant: state_pb2.GrantRecord) -> bool:
        return access.sees_grant(self.store, reader, grant)

    # --- history and lineage --------------------------------------------------------------

    def history(
        self, reader: Reader, asset_id: str, after: int | None, limit: int
    ) -> tuple[list[state_pb2.EventLocation], bool]:
        """Up to `limit` events of the asset's history that the reader may see, in log order,
        after log index `after`, and no more than HISTORY_PAGE_BYTES_MAX bytes of them (at
        least one); and whether more may follow. Events the reader may not see (another
        member's derivation from this asset, whose details lineage redacts) are skipped, and
        the page is filled from further on, so the last event's log index is always the
        cursor of the next page."""
        self.require_asset(reader, asset_id)
        page: list[state_pb2.EventLocation] = []
        size_bytes = 0
        for location in self.history_locations(asset_id, after, limit):
            if not access.sees_event(self.store, reader, decode_event(location.event)):
                continue
            size_bytes += location.ByteSize()
            if len(page) == limit or (page and size_bytes > HISTORY_PAGE_BYTES_MAX):
                return page, True
            page.append(location)
        return page, False

    def history_locations(
        self, asset_id: str, after: int | None = None, batch: int = HISTORY_PAGE_EVENTS_MAX
    ) -> Iterator[state_pb2.EventLocation]:
        """Every event of the asset's history, in log order, after log index `after`, read
        from the store `batch` (plus one) at a time."""
        while True:
            locations, more = self.store.asset_history(asset_id, after, batch + 1)
            yield from locations
            if not more or not locations:
                return
            after = locations[-1].log_index

    def lineage(self, reader: Reader, query: LineageQuery) -> Lineage:
        """A page of the asset's lineage, each asset redacted as the policy says."""
        self.require_asset(reader, query.asset_id)
        page = lineage_page(self.store, query)
        shown = [access.redact_asset(self.store, reader, asset) for asset in page.assets]
        return Lineage(
            page=LineagePage(
                [record for record, _ in shown], page.edges, page.truncated, page.next_offset
            ),
            redacted=[redacted for _, redacted in shown],
        )

    def prov(
        self, reader: Reader, asset_id: str, *, upstream: bool, depth: int
    ) -> tuple[dict[str, Any], bool]:
        """The lineage (at most LINEAGE_NODES_MAX nodes) as PROV-JSON; and whether it was cut."""
        query = LineageQuery(asset_id, upstream, depth, LINEAGE_NODES_MAX, LINEAGE_NODES_MAX)
        graph = self.lineage(reader, query).page
        cases, scanned = self._case_activities(reader, [a.asset_id for a in graph.assets])
        document = prov_document(
            self.genesis.chain_id, graph.assets, graph.edges, self._origin, self._agent, cases
        )
        return document, not graph.complete or not scanned

    def _case_activities(
        self, reader: Reader, asset_ids: list[str]
    ) -> tuple[list[CaseActivity], bool]:
        """The complaints, rulings and appeal decisions about the assets that `reader` may see,
        found in the assets' histories (the events concerning each, protocol/concerns.py); and
        whether every history was read (at most PROV_HISTORY_EVENTS_SCANNED_MAX events)."""
        found: dict[bytes, tuple[state_pb2.EventLocation, list[str]]] = {}
        scanned = 0
        for asset_id in asset_ids:
            for location in self.history_locations(asset_id):
                scanned += 1
                if scanned > PROV_HISTORY_EVENTS_SCANNED_MAX:
                    return self._activities(found), False
                event = decode_event(location.event)
                if event.WhichOneof("payload") not in CASE_ACTIVITY_TYPES:
                    continue
                identifier = event_id(location.event.body)
                if identifier not in found:
                    if not access.sees_event(self.store, reader, event):
                        continue
                    found[identifier] = (location, [])
                found[identifier][1].append(asset_id)
        return self._activities(found), True

    def _activities(
        self, found: dict[bytes, tuple[state_pb2.EventLocation, list[str]]]
    ) -> list[CaseActivity]:
        activities = []
        for identifier, (location, asset_ids) in found.items():
            where = (self.block_time_ms(location.height), location.height, location.log_index)
            activity = case_activity(decode_event(location.event), identifier, where, asset_ids)
            if activity is not None:
                activities.append(activity)
        return activities

    def _origin(self, asset: state_pb2.AssetRecord) -> Origin | None:
        origin = self.store.event(asset.origin_event_id) if asset.origin_event_id else None
        if origin is None:
            return None
        return Origin(
            creator_id=decode_event(origin.event).author.member_id,
            time_ms=self.block_time_ms(origin.height),
            height=origin.height,
        )

    def _agent(self, member_id: str) -> Agent | None:
        member = self.store.load("member", member_id)
        return Agent(member.name, role_name(member.role)) if member is not None else None

    # --- governance -----------------------------------------------------------------------

    def require_member(self, reader: Reader, member_id: str) -> state_pb2.MemberRecord:
        """A member's record: role, keys (with revocations), removed or not."""
        self._require_governance(reader)
        member = self.store.load("member", member_id)
        if member is None:
            raise not_found("unknown_member", f"no member {member_id!r}")
        return member  # type: ignore[return-value]

    def require_proposal(self, reader: Reader, proposal_id: bytes) -> ProposalAnswer:
        self._require_governance(reader)
        record = self.store.load("proposal", proposal_id.hex())
        if record is None:
            raise not_found("unknown_proposal", f"no proposal {proposal_id.hex()}")
        return self._proposal_answer(record)  # type: ignore[arg-type]

    def proposals(
        self, reader: Reader, open_only: bool, limit: int
    ) -> tuple[list[ProposalAnswer], bool]:
        """Up to `limit` proposals recorded within PROPOSAL_OPEN_MS_MAX of the head's time (the
        only ones that may still be open), oldest first, only the open ones if `open_only`; and
        whether more were left out."""
        self._require_governance(reader)
        at_ms = self._head_time_ms()
        answers: list[ProposalAnswer] = []
        records, more = self.store.proposals_since(at_ms - PROPOSAL_OPEN_MS_MAX, limit)
        for record in records:
            answer = self._proposal_answer(record)
            if not open_only or answer.status == rules_governance.OPEN:
                answers.append(answer)
        return answers, more

    def _require_governance(self, reader: Reader) -> None:
        if not access.sees_governance(reader):
            raise forbidden(f"governance does not concern {reader.member_id!r}")

    def _head_time_ms(self) -> int:
        head = self.store.head_height
        return self.block_time_ms(head) if head else self.genesis.genesis_time_ms

    def _proposal_answer(self, record: state_pb2.ProposalRecord) -> ProposalAnswer:
        """The proposal judged at the head's time, its approvals counted for the next block."""
        _, kind = rules_governance.parse_change(record.change)
        counted, needed, active = rules_governance.tally(
            self.store, record, self.store.head_height + 1
        )
        return ProposalAnswer(
            record=record,
            kind=kind,
            status=rules_governance.proposal_status(self.store, record, self._head_time_ms()),
            approvals_counted=counted,
            approvals_needed=needed,
            active_members=active,
            threshold=rules_governance.threshold_for(rules_governance.thresholds(self.store), kind),
        )

    # --- the authorization question -------------------------------------------------------

    def authorization(self, reader: Reader, question: UseQuestion) -> AuthorizationAnswer:
        """The answer to `question` (at the latest block's time unless it names one); the
        deciding events the reader may not see are withheld."""
        asset = self.store.load("asset", question.asset_id)
        if asset is None:
            raise not_found("unknown_asset", f"no asset {question.asset_id!r}")
        if not (reader.auditor or reader.member_id in (question.member_id, asset.owner_id)):
            raise forbidden(
                f"{reader.member_id!r} may ask only about itself or about assets it owns"
            )
        checkpoint = self.head_block()
        if question.at_ms is None:
            question = dataclasses.replace(question, at_ms=checkpoint.header.time_ms)
        history = (
            authorization.HistoryEntry(
                event=decode_event(location.event),
                log_index=location.log_index,
                block_time_ms=self.block_time_ms(location.height),
                ref=location,
            )
            for location in self.history_locations(question.asset_id)
        )
        judgement = authorization.judge_use(history, question, asset.bound_purposes)
        visible = [
            (role, location)
            for role, location in judgement.deciding
            if access.sees_event(self.store, reader, decode_event(location.event))
        ]
        shown = dataclasses.replace(judgement, deciding=visible)
        withheld = len(judgement.deciding) - len(visible)
        return AuthorizationAnswer(shown, question, checkpoint, withheld)

    # --- the market's catalogue ------------------------------------------------------------

    def offers(
        self, reader: Reader, filters: OfferFilters, after: str | None, limit: int
    ) -> market.OfferPage:
        """A page of the catalogue: offers matching `filters` after the offer id `after`
        (node/market.py); a search that cannot be asked is a bad request."""
        self._require_catalogue(reader)
        try:
            check_filters(filters)
        except FilterError as error:
            raise bad_request(error.code, error.reason) from None
        if after is not None and len(after) > IDENTIFIER_LENGTH_CHARS_MAX:
            raise bad_request(
                "bad_cursor", f"after is an offer id: at most {IDENTIFIER_LENGTH_CHARS_MAX} chars"
            )
        return market.offers_page(self.store, filters, after, limit)

    def require_offer(self, reader: Reader, offer_id: str) -> api_pb2.OfferView:
        self._require_catalogue(reader)
        view = market.offer(self.store, offer_id)
        if view is None:
            raise not_found("unknown_offer", f"no offer {offer_id!r}")
        return view

    def _require_catalogue(self, reader: Reader) -> None:
        if not access.sees_catalogue(reader):
            raise forbidden(f"the market's catalogue does not concern {reader.member_id!r}")

    # --- evidence bundles -----------------------------------------------------------------

    def event_bundle(self, reader: Reader, event_identifier: bytes) -> bytes:
        self.require_event(reader, event_identifier)
        return self._bundle(bundles.event_bundle, event_identifier)

    def trade_bundle(self, reader: Reader, order_id: str) -> bytes:
        self.require_order(reader, order_id)
        return self._bundle(bundles.trade_bundle, order_id)

    def lineage_bundle(self, reader: Reader, asset_id: str) -> bytes:
        """The upstream lineage's bundle, whole: its signed events cannot be redacted, so a
        reader who may not see every asset in it is refused, never handed part of it."""
        self.require_asset(reader, asset_id)
        if not reader.auditor:
            graph = self.lineage(reader, bundles.upstream_closure(asset_id))
            hidden = [
                a.asset_id for a, r in zip(graph.page.assets, graph.redacted, strict=True) if r
            ]
            if hidden:
                raise forbidden(
                    f"the upstream lineage of {asset_id!r} holds assets that do not concern "
                    f"{reader.member_id!r} ({', '.join(sorted(hidden)[:5])}"
                    f"{', ...' if len(hidden) > 5 else ''}): their events cannot be redacted "
                    "from a bundle; ask an auditor for it"
                )
        return self._bundle(bundles.lineage_bundle, asset_id)

    def case_bundle(self, reader: Reader, case_id: str) -> bytes:
        """A case file: the case's own events and what it is about, for its parties, regulators
        and auditors (access.sees_case). Its trade and record events come with it whole: a case
        is read whole or not at all, like the case itself."""
        case = self.store.load("case", case_id)
        if case is None:
            raise not_found("unknown_case", f"no case {case_id!r}")
        if not access.sees_case(self.store, reader, case):
            raise forbidden(
                f"case {case_id!r} is read by its parties, regulators and auditors, not "
                f"{reader.member_id!r}"
            )
        return self._bundle(bundles.case_bundle, case_id)

    def _bundle(self, build: Any, subject: Any) -> bytes:
        try:
            return build(self.store, self.genesis, subject)  # type: ignore[no-any-return]
        except bundles.BundleBuildError as error:
            kind = {"not_found": "not_found", "too_large": "bad_request"}.get(
                error.code, "unavailable"
            )
            raise QueryError(kind, f"bundle_{error.code}", error.reason) from None


__all__ = ["LedgerQueries", "ProposalAnswer", "QueryError", "Reader", "TokenError"]

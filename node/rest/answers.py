"""The REST API's answers: each route's query (node/queries.py, under the access policy)
turned into its response model, with cursors for the pages.

No judgement is made here: who may see what, how lineage is walked, whether a use was
authorised and the PROV mapping all come from protocol/ through `LedgerQueries`.
"""

from __future__ import annotations

from typing import Any

from provledger.node.forks import ForkLog, SeenFork
from provledger.node.queries import LedgerQueries, QueryError, bad_request, forbidden, not_found
from provledger.node.rest import cursors
from provledger.node.rest.models import (
    AssetView,
    AuthorizationView,
    BlockPage,
    BlockView,
    CatalogueOfferView,
    CheckpointView,
    ConsistencyProofView,
    ConsistencyView,
    DecidingEvent,
    DisputeView,
    EdgeView,
    EquivocationView,
    EventPage,
    EventView,
    ForkList,
    ForkSideView,
    ForkView,
    GrantDetail,
    GrantPage,
    Health,
    InclusionView,
    LifecycleEntry,
    LineageView,
    MemberView,
    OfferPage,
    OfferView,
    ProposalPage,
    ProposalView,
    ProvDocument,
    StatusView,
    TradeDetail,
    TradeItem,
    TradePage,
    ValidatorView,
)
from provledger.node.rest.views import (
    asset_view,
    catalogue_offer_view,
    certificate_view,
    checkpoint_view,
    enum_text,
    event_view,
    grant_view,
    header_view,
    member_view,
    order_view,
    proof_view,
    proposal_view,
)
from provledger.node.settings import REST_LINEAGE_NODES_TOTAL_MAX
from provledger.protocol import access, merkle
from provledger.protocol.access import Reader, decode_event
from provledger.protocol.authorization import UseQuestion
from provledger.protocol.catalogue import OfferFilters
from provledger.protocol.events import event_id as compute_event_id
from provledger.protocol.fork_proof import verify_fork_proof
from provledger.protocol.genesis import Genesis
from provledger.protocol.lineage import LineageQuery
from provledger.protocol.validators import validator_set_at
from provledger.v1 import ledger_pb2, state_pb2


class Answers:
    """What each route answers; raises `QueryError` for anything but a 200."""

    def __init__(self, queries: LedgerQueries, node_id: str, forks: ForkLog | None = None) -> None:
        self.queries = queries
        self.node_id = node_id
        self.forks = forks

    # --- forks ----------------------------------------------------------------------------

    def health(self) -> Health:
        seen = self.forks.count() if self.forks is not None else 0
        return Health(status="fork_seen" if seen else "ok", forks_seen=seen)

    def _require_forks(self, reader: Reader) -> ForkLog | None:
        if not access.sees_forks(reader):
            raise forbidden("the proofs of forks are read with an auditor's token")
        return self.forks

    def fork_list(self, reader: Reader) -> ForkList:
        forks = self._require_forks(reader)
        if forks is None:
            return ForkList(items=[], not_kept=0)
        genesis = self.queries.genesis
        items = [fork_view(seen, genesis) for seen in forks.forks()]
        return ForkList(items=items, not_kept=forks.not_kept)

    def fork_proof(self, reader: Reader, number: int) -> bytes:
        forks = self._require_forks(reader)
        for seen in forks.forks() if forks is not None else ():
            if seen.number == number:
                return seen.proof_file
        raise not_found("unknown_fork", f"this node keeps no fork number {number}")

    # --- the chain ------------------------------------------------------------------------

    def status(self) -> StatusView:
        queries = self.queries
        genesis = queries.genesis
        head = queries.store.head_height
        block = queries.block(head) if head else None
        # The validators that sign the next block: the genesis set until governance changes it.
        signing = validator_set_at(queries.store, genesis.validator_set, head + 1)
        return StatusView(
            chain_id=genesis.chain_id,
            node_id=self.node_id,
            genesis_hash=genesis.genesis_hash.hex(),
            height=head,
            head_block_id=(block.certificate.block_id if block else genesis.genesis_hash).hex(),
            head_time_ms=block.header.time_ms if block else genesis.genesis_time_ms,
            log_size=block.header.log_size if block else 0,
            log_root=(block.header.log_root if block else merkle.EMPTY_ROOT).hex(),
            validators=[
                validator_view(v.validator_id, v.public_key, queries.equivocator(v.validator_id))
                for v in signing.validators
            ],
            quorum_size=signing.quorum_size,
        )

    def blocks(self, cursor: str | None, limit: int) -> BlockPage:
        head = self.queries.store.head_height
        start = head if cursor is None else min(cursors.cursor_number(cursor, "blocks", ""), head)
        heights = range(start, max(start - limit, 0), -1)
        items = [header_view(self.queries.require_block(h)) for h in heights]
        last = start - limit
        next_cursor = cursors.encode_cursor("blocks", last, "") if last >= 1 else None
        return BlockPage(items=items, next_cursor=next_cursor)

    def block_detail(self, height: int) -> BlockView:
        block = self.queries.require_block(height)
        stored = self.queries.store.stored_block(height)
        if stored is None:
            raise QueryError("not_found", "unknown_height", f"no block at height {height}")
        return BlockView(
            header=header_view(block),
            header_raw=block.header_bytes.hex(),
            certificate=certificate_view(stored.certificate),
            last_commit=(
                certificate_view(stored.last_commit) if stored.HasField("last_commit") else None
            ),
            event_ids=[identifier.hex() for identifier in stored.event_ids],
            evidence_count=len(stored.evidence),
        )

    def checkpoint(self, height: int | None) -> CheckpointView:
        queries = self.queries
        return checkpoint_view(
            queries.head_block() if height is None else queries.require_block(height)
        )

    # --- events and proofs ----------------------------------------------------------------

    def event(self, reader: Reader, event_hex: str) -> EventView:
        return event_view(
            self.queries, self.queries.require_event(reader, bytes.fromhex(event_hex))
        )

    def inclusion(self, reader: Reader, event_hex: str, height: int | None) -> InclusionView:
        queries = self.queries
        location = queries.require_event(reader, bytes.fromhex(event_hex))
        block = queries.head_block() if height is None else queries.require_block(height)
        if location.height > block.height:
            raise bad_request(
                "not_in_tree",
                f"the event was committed at height {location.height}, after height {block.height}",
            )
        return InclusionView(
            event=event_view(queries, location),
            proof=proof_view(queries, location, block.header.log_size),
            checkpoint=checkpoint_view(block),
        )

    def consistency(self, first: int, second: int | None) -> ConsistencyView:
        queries = self.queries
        second_block = queries.head_block() if second is None else queries.require_block(second)
        if first > second_block.height:
            raise bad_request(
                "bad_range", f"first ({first}) must not be above second ({second_block.height})"
            )
        first_block = queries.require_block(first)
        first_size = first_block.header.log_size
        second_size = second_block.header.log_size
        hashes = queries.store.consistency_proof(first_size, second_size) if first_size else []
        return ConsistencyView(
            proof=ConsistencyProofView(
                first_size=first_size, second_size=second_size, hashes=[h.hex() for h in hashes]
            ),
            first=checkpoint_view(first_block),
            second=checkpoint_view(second_block),
        )

    # --- assets and lineage ---------------------------------------------------------------

    def asset(self, reader: Reader, asset_id: str) -> AssetView:
        return asset_view(self.queries.require_asset(reader, asset_id))

    def history(self, reader: Reader, asset_id: str, cursor: str | None, limit: int) -> EventPage:
        scope = cursors.scope("history", asset_id)
        after = None if cursor is None else cursors.cursor_number(cursor, "history", scope)
        locations, more = self.queries.history(reader, asset_id, after, limit)
        next_cursor = None
        if more and locations:
            next_cursor = cursors.encode_cursor("history", locations[-1].log_index, scope)
        items = [event_view(self.queries, x) for x in locations]
        return EventPage(items=items, next_cursor=next_cursor)

    def lineage(
        self,
        reader: Reader,
        asset_id: str,
        direction: str,
        depth: int,
        cursor: str | None,
        limit: int,
    ) -> LineageView:
        scope = cursors.scope("lineage", asset_id, direction, depth)
        offset = 0 if cursor is None else cursors.cursor_number(cursor, "lineage", scope)
        if offset >= REST_LINEAGE_NODES_TOTAL_MAX:
            raise bad_request("bad_cursor", "the cursor is not one this API issued")
        query = LineageQuery(
            asset_id,
            upstream=direction == "upstream",
            depth=depth,
            limit=limit,
            total_max=REST_LINEAGE_NODES_TOTAL_MAX,
            offset=offset,
        )
        graph = self.queries.lineage(reader, query)
        page = graph.page
        return LineageView(
            root=asset_id,
            direction=direction,  # type: ignore[arg-type]
            depth=depth,
            nodes=[asset_view(*shown) for shown in zip(page.assets, graph.redacted, strict=True)],
            edges=[EdgeView(parent=p, child=c) for p, c in page.edges],
            truncated=page.truncated,
            next_cursor=(
                cursors.encode_cursor("lineage", page.next_offset, scope)
                if page.next_offset is not None
                else None
            ),
        )

    def prov(
        self, reader: Reader, asset_id: str, direction: str, depth: int
    ) -> tuple[ProvDocument, bool]:
        document, truncated = self.queries.prov(
            reader, asset_id, upstream=direction == "upstream", depth=depth
        )
        return ProvDocument(**document), truncated

    # --- grants ---------------------------------------------------------------------------

    def grants(
        self,
        reader: Reader,
        asset_id: str | None,
        member_id: str | None,
        cursor: str | None,
        limit: int,
    ) -> GrantPage:
        if (asset_id is None) == (member_id is None):
            raise bad_request("bad_request", "give exactly one of asset_id and member_id")
        if asset_id is None:
            return self._member_grants(reader, str(member_id), cursor, limit)
        queries = self.queries
        queries.require_asset(reader, asset_id)
        scope = cursors.scope("grants", "asset", asset_id)
        after = None if cursor is None else cursors.cursor_identifier(cursor, "grants", scope)
        records, more = queries.store.grants_of_asset(asset_id, after, limit)
        next_cursor = (
            cursors.encode_cursor("grants", records[-1].grant.grant_id, scope) if more else None
        )
        visible = [r for r in records if queries.sees_grant(reader, r)]
        return GrantPage(items=[grant_view(r) for r in visible], next_cursor=next_cursor)

    def _member_grants(
        self, reader: Reader, member_id: str, cursor: str | None, limit: int
    ) -> GrantPage:
        if not reader.auditor and member_id != reader.member_id:
            raise forbidden(f"{reader.member_id!r} may only list its own grants")
        store = self.queries.store
        # Grants held (as grantee) first, then grants issued (as grantor).
        scope = cursors.scope("grants", "member", member_id)
        phase, after = "held", None
        if cursor is not None:
            value = cursors.decode_cursor(cursor, "grants", scope)
            if (
                not isinstance(value, list)
                or len(value) != 2
                or value[0] not in ("held", "issued")
                or not (value[1] is None or cursors.is_identifier(value[1]))
            ):
                raise bad_request("bad_cursor", "the cursor is not one this API issued")
            phase, after = value
        items: list[state_pb2.GrantRecord] = []
        next_cursor = None
        if phase == "held":
            held, more = store.grants_held_by(member_id, after, limit)
            items.extend(held)
            if more:
                last = held[-1].grant.grant_id
                next_cursor = cursors.encode_cursor("grants", ["held", last], scope)
            else:
                phase, after = "issued", None
        if phase == "issued" and next_cursor is None:
            room = limit - len(items)
            if room == 0:
                next_cursor = cursors.encode_cursor("grants", ["issued", None], scope)
            else:
                issued, more = store.grants_issued_by(member_id, after, room)
                items.extend(issued)
                if more:
                    last = issued[-1].grant.grant_id
                    next_cursor = cursors.encode_cursor("grants", ["issued", last], scope)
        return GrantPage(items=[grant_view(r) for r in items], next_cursor=next_cursor)

    # --- governance -------------------------------------------------------------------------

    def member(self, reader: Reader, member_id: str) -> MemberView:
        return member_view(self.queries.require_member(reader, member_id))

    def proposal(self, reader: Reader, proposal_id: str) -> ProposalView:
        return proposal_view(self.queries.require_proposal(reader, bytes.fromhex(proposal_id)))

    def proposals(self, reader: Reader, open_only: bool, limit: int) -> ProposalPage:
        answers, more = self.queries.proposals(reader, open_only, limit)
        return ProposalPage(items=[proposal_view(a) for a in answers], more=more)

    def grant_detail(self, reader: Reader, grant_id: str) -> GrantDetail:
        queries = self.queries
        record = queries.require_grant(reader, grant_id)
        issued = queries.store.event(record.event_id)
        if issued is None:
            raise QueryError(
                "internal", "internal", f"the issuing event of grant {grant_id!r} is missing"
            )
        revoked = self._revocation(record) if record.revoked else None
        return GrantDetail(
            grant=grant_view(record),
            issued=event_view(queries, issued),
            revoked=event_view(queries, revoked) if revoked is not None else None,
        )

    def _revocation(self, record: state_pb2.GrantRecord) -> state_pb2.EventLocation | None:
        """The event that revoked a grant: in the history of its asset, after its issue."""
        issued = self.queries.store.event(record.event_id)
        after = issued.log_index if issued is not None else None
        for location in self.queries.history_locations(record.grant.asset_id, after):
            event = decode_event(location.event)
            if (
                event.WhichOneof("payload") == "grant_revoked"
                and event.grant_revoked.grant_id == record.grant.grant_id
            ):
                return location
        return None

    def authorization(
        self,
        reader: Reader,
        member_id: str,
        asset_id: str,
        purpose: str,
        operation: str,
        time_ms: int | None,
    ) -> AuthorizationView:
        queries = self.queries
        operation_number = ledger_pb2.Operation.Value("OPERATION_" + operation.upper())
        question = UseQuestion(member_id, asset_id, purpose, operation_number, time_ms)
        answer = queries.authorization(reader, question)
        judgement = answer.judgement
        tree_size = answer.checkpoint.header.log_size
        return AuthorizationView(
            member_id=member_id,
            asset_id=asset_id,
            purpose=purpose,
            operation=operation,
            time_ms=answer.question.at_ms,
            authorised=judgement.authorised,
            code=judgement.code,
            reason=judgement.reason,
            grant_id=judgement.grant_id,
            deciding_events=[
                DecidingEvent(
                    role=role,
                    event=event_view(queries, location),
                    proof=proof_view(queries, location, tree_size),
                )
                for role, location in judgement.deciding
            ],
            withheld_events=answer.withheld,
            checkpoint=checkpoint_view(answer.checkpoint),
        )

    # --- trades ---------------------------------------------------------------------------

    def _life_cycle(self, order: state_pb2.OrderRecord) -> list[state_pb2.EventLocation]:
        found = (self.queries.store.event(identifier) for identifier in order.event_ids)
        return [location for location in found if location is not None]

    def trades(
        self,
        reader: Reader,
        asset_id: str | None,
        member_id: str | None,
        cursor: str | None,
        limit: int,
    ) -> TradePage:
        if (asset_id is None) == (member_id is None):
            raise bad_request("bad_request", "give exactly one of asset_id and member_id")
        queries = self.queries
        if asset_id is not None:
            queries.require_asset(reader, asset_id)
            scope = cursors.scope("trades", "asset", asset_id)
            after = None if cursor is None else cursors.cursor_identifier(cursor, "trades", scope)
            orders, more = queries.store.orders_of_asset(asset_id, after, limit)
        else:
            member = str(member_id)
            if not reader.auditor and member != reader.member_id:
                raise forbidden(f"{reader.member_id!r} may only list its own trades")
            scope = cursors.scope("trades", "member", member)
            after = None if cursor is None else cursors.cursor_identifier(cursor, "trades", scope)
            orders, more = queries.store.orders_of_member(member, after, limit)
        next_cursor = cursors.encode_cursor("trades", orders[-1].order_id, scope) if more else None
        items = [
            TradeItem(order=order_view(queries, order), life_cycle=self._entries(order))
            for order in orders
            if access.sees_order(queries.store, reader, order)
        ]
        return TradePage(items=items, next_cursor=next_cursor)

    def _entries(self, order: state_pb2.OrderRecord) -> list[LifecycleEntry]:
        entries = []
        for location in self._life_cycle(order):
            event = decode_event(location.event)
            entries.append(
                LifecycleEntry(
                    event_id=compute_event_id(location.event.body).hex(),
                    kind=event.WhichOneof("payload") or "",
                    author_id=event.author.member_id,
                    height=location.height,
                    log_index=location.log_index,
                    block_time_ms=self.queries.block_time_ms(location.height),
                )
            )
        return entries

    def trade(self, reader: Reader, order_id: str) -> TradeDetail:
        queries = self.queries
        order = queries.require_order(reader, order_id)
        offer = queries.store.load("offer", order.offer_id)
        if offer is None:
            raise QueryError("internal", "internal", f"the offer of order {order_id!r} is missing")
        listing = offer.offer
        dispute = queries.store.load("dispute", order.dispute_id) if order.dispute_id else None
        return TradeDetail(
            order=order_view(queries, order),
            offer=OfferView(
                offer_id=listing.offer_id,
                asset_id=listing.asset_id,
                seller_id=listing.seller_id,
                exchange_id=offer.exchange_id,
                price=listing.price,
                currency=listing.currency,
                terms=listing.terms,
                event_id=offer.event_id.hex(),
            ),
            life_cycle=[event_view(queries, location) for location in self._life_cycle(order)],
            dispute=_dispute_view(dispute) if dispute is not None else None,
        )

    # --- the market's catalogue -----------------------------------------------------------

    def offers(
        self, reader: Reader, filters: OfferFilters, cursor: str | None, limit: int
    ) -> OfferPage:
        """A page of the catalogue; its cursor is bound to every filter of the search."""
        scope = cursors.scope("offers", filters)
        after = None if cursor is None else cursors.cursor_identifier(cursor, "offers", scope)
        page = self.queries.offers(reader, filters, after, limit)
        next_cursor = cursors.encode_cursor("offers", page.next_after, scope) if page.more else None
        return OfferPage(
            items=[catalogue_offer_view(view) for view in page.offers], next_cursor=next_cursor
        )

    def offer(self, reader: Reader, offer_id: str) -> CatalogueOfferView:
        return catalogue_offer_view(self.queries.require_offer(reader, offer_id))


def _dispute_view(dispute: Any) -> DisputeView:
    return DisputeView(
        dispute_id=dispute.dispute_id,
        order_id=dispute.order_id,
        opened_by=dispute.opened_by,
        reason=dispute.reason,
        resolved=dispute.resolved,
        outcome=(
            enum_text(ledger_pb2.DisputeOutcome.DESCRIPTOR, dispute.outcome)
            if dispute.resolved
            else None
        ),
        resolution=dispute.resolution,
    )


def fork_view(seen: SeenFork, genesis: Genesis) -> ForkView:
    """A fork this node kept, as its proof file verifies (protocol/fork_proof.py)."""
    verified = verify_fork_proof(seen.proof_file, genesis)
    sides = (
        (verified.proof.first, verified.first_header, verified.first_block_id,
         verified.first_signers),
        (verified.proof.second, verified.second_header, verified.second_block_id,
         verified.second_signers),
    )  # fmt: skip
    first, second = (
        ForkSideView(
            source=sighting.source,
            height=header.height,
            round=sighting.checkpoint.certificate.round,
            block_id=identifier.hex(),
            signers=list(signers),
        )
        for sighting, header, identifier, signers in sides
    )
    return ForkView(
        number=seen.number,
        height=seen.height,
        peer_id=seen.peer_id,
        seen_at_ms=seen.seen_at_ms,
        kind=verified.proof.kind,  # type: ignore[arg-type]
        reason=verified.proof.reason,
        first=first,
        second=second,
        signed_both=list(verified.signed_both),
        equivocators=list(verified.equivocators),
    )


def validator_view(
    validator_id: str, public_key: bytes, marked: state_pb2.EquivocatorRecord | None
) -> ValidatorView:
    """A validator, with the equivocations the ledger recorded against it (ADR 014)."""
    if marked is None:
        return ValidatorView(validator_id=validator_id, public_key=public_key.hex())
    return ValidatorView(
        validator_id=validator_id,
        public_key=public_key.hex(),
        equivocations=marked.equivocations,
        equivocated=[
            EquivocationView(
                height=entry.height,
                round=entry.round,
                vote_type="precommit"
                if entry.vote_type == ledger_pb2.VOTE_TYPE_PRECOMMIT
                else "prevote",
                evidence_key=entry.evidence_key,
                recorded_at_height=entry.recorded_at_height,
            )
            for entry in marked.listed
        ],
    )

"""The gRPC `LedgerService`: thin translation between wire messages and `LedgerNode`.

Status codes: malformed input INVALID_ARGUMENT, a rule the author may not break
PERMISSION_DENIED, a state that does not allow it FAILED_PRECONDITION, a duplicate or replay
ALREADY_EXISTS, an unknown id NOT_FOUND, a full mempool RESOURCE_EXHAUSTED. The details
string is always "<code>: <reason>", the code stable for programs, the reason for people.

Who may call: anyone may submit (each event is signed by its author, and the rules judge it);
every read needs a member's bearer token in the metadata and reads what the access policy
lets that member read, as over REST (node/queries.py, protocol/access.py); a read without one
is UNAUTHENTICATED `missing_token`. Every call is taken on its connection's allowance first
(node/grpc_connections.py): RESOURCE_EXHAUSTED `rate_limited` or `too_much_in_flight`.

Bad input is refused here, at the edge, before it reaches a query or the store: request bytes
that are not the method's request message (`malformed_request`: `add_to_server` registers the
service with deserializers that turn such bytes into a `MalformedRequest`, answered before
the method is called, instead of raising, which gRPC would answer UNKNOWN), an event id
that is not 32 bytes (`bad_event_id`), a proposal id that is not 32 bytes (`bad_proposal_id`), a
history cursor above `LOG_INDEX_MAX` (`bad_cursor`)
and a lineage direction the enum does not define (`bad_direction`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.message import DecodeError, Message

from provledger.node import assessments, cases
from provledger.node.grpc_connections import Admitted, ConnectionGuard
from provledger.node.ledger import LedgerNode, TooManyWaiters
from provledger.node.queries import LedgerQueries, ProposalAnswer, QueryError, Reader
from provledger.node.settings import (
    SUBMIT_BATCH_EVENTS_MAX,
    SUBMIT_WAIT_TIMEOUT_MS_DEFAULT,
    SUBMIT_WAIT_TIMEOUT_MS_MAX,
    SUBSCRIBERS_MAX,
)
from provledger.node.store import StoreDamaged
from provledger.node.walks import inclusion_proof
from provledger.protocol.application import Origin
from provledger.protocol.catalogue import OfferFilters, search_words
from provledger.protocol.errors import Rejected, RejectionKind, check
from provledger.protocol.events import event_id
from provledger.protocol.limits import (
    CASES_PAGE_ITEMS_DEFAULT,
    CASES_PAGE_ITEMS_MAX,
    DIGEST_SIZE_BYTES,
    HISTORY_PAGE_EVENTS_DEFAULT,
    HISTORY_PAGE_EVENTS_MAX,
    LINEAGE_DEPTH_DEFAULT,
    LINEAGE_DEPTH_MAX,
    LINEAGE_NODES_DEFAULT,
    LINEAGE_NODES_MAX,
    LOG_INDEX_MAX,
    OFFERS_PAGE_ITEMS_DEFAULT,
    OFFERS_PAGE_ITEMS_MAX,
    PROPOSALS_PAGE_ITEMS_DEFAULT,
    PROPOSALS_PAGE_ITEMS_MAX,
)
from provledger.protocol.lineage import LineageQuery
from provledger.protocol.mempool import MempoolFull
from provledger.v1 import api_pb2, api_pb2_grpc, ledger_pb2, state_pb2

_STATUS = {
    RejectionKind.INVALID: grpc.StatusCode.INVALID_ARGUMENT,
    RejectionKind.FORBIDDEN: grpc.StatusCode.PERMISSION_DENIED,
    RejectionKind.PRECONDITION: grpc.StatusCode.FAILED_PRECONDITION,
    RejectionKind.DUPLICATE: grpc.StatusCode.ALREADY_EXISTS,
}


async def _abort_rejected(context: grpc.aio.ServicerContext, rejection: Rejected) -> None:
    await context.abort(_STATUS[rejection.kind], f"{rejection.code}: {rejection.reason}")


def _capped(requested: int, default: int, maximum: int) -> int:
    return min(requested or default, maximum)


async def _require_event_id(identifier: bytes, context: grpc.aio.ServicerContext) -> None:
    if len(identifier) != DIGEST_SIZE_BYTES:
        await context.abort(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"bad_event_id: an event id is {DIGEST_SIZE_BYTES} bytes (SHA-256 of the body), "
            f"got {len(identifier)}",
        )


_LINEAGE_DIRECTIONS = (api_pb2.LINEAGE_DIRECTION_UPSTREAM, api_pb2.LINEAGE_DIRECTION_DOWNSTREAM)

_QUERY_STATUS = {
    "bad_request": grpc.StatusCode.INVALID_ARGUMENT,
    "unauthorized": grpc.StatusCode.UNAUTHENTICATED,
    "forbidden": grpc.StatusCode.PERMISSION_DENIED,
    "not_found": grpc.StatusCode.NOT_FOUND,
    "unavailable": grpc.StatusCode.UNAVAILABLE,
    "internal": grpc.StatusCode.INTERNAL,
}


class LedgerService(api_pb2_grpc.LedgerServiceServicer):
    def __init__(self, node: LedgerNode) -> None:
        self._node = node
        self._queries = LedgerQueries(node.store, node.genesis)
        self._subscribers = 0

    # --- submitting -------------------------------------------------------------------------

    async def SubmitEvent(self, request, context):
        [outcome] = await self._node.admit([request.event], Origin.CLIENT)
        if isinstance(outcome, Rejected):
            await _abort_rejected(context, outcome)
        elif isinstance(outcome, MempoolFull):
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, f"mempool_full: {outcome}")
        return api_pb2.SubmitEventResponse(event_id=outcome.event_id)

    async def SubmitEvents(self, request, context):
        if len(request.events) > SUBMIT_BATCH_EVENTS_MAX:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"batch_too_large: {len(request.events)} events; the limit is "
                f"{SUBMIT_BATCH_EVENTS_MAX}",
            )
        results = []
        for outcome in await self._node.admit(request.events, Origin.CLIENT):
            if isinstance(outcome, Rejected):
                results.append(api_pb2.SubmitResult(error_code=outcome.code, error=outcome.reason))
            elif isinstance(outcome, MempoolFull):
                results.append(api_pb2.SubmitResult(error_code="mempool_full", error=str(outcome)))
            else:
                results.append(api_pb2.SubmitResult(event_id=outcome.event_id, accepted=True))
        return api_pb2.SubmitEventsResponse(results=results)

    async def SubmitAndWait(self, request, context):
        timeout_ms = _capped(
            request.timeout_ms, SUBMIT_WAIT_TIMEOUT_MS_DEFAULT, SUBMIT_WAIT_TIMEOUT_MS_MAX
        )
        node = self._node
        identifier = event_id(request.event.body)
        # Watch before admitting: the event cannot be committed before its waiter exists.
        try:
            waiter = node.watch(identifier)
        except TooManyWaiters as error:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, f"too_many_waiters: {error}")
        try:
            [admitted] = await node.admit([request.event], Origin.CLIENT)
            if isinstance(admitted, Rejected):
                await _abort_rejected(context, admitted)
            elif isinstance(admitted, MempoolFull):
                await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, f"mempool_full: {admitted}")
            outcome = await asyncio.wait_for(waiter, timeout_ms / 1000)
        except TimeoutError:
            await context.abort(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"not_committed_yet: event {identifier.hex()} is queued but not "
                f"committed after {timeout_ms} ms; ask GetEvent later",
            )
        finally:
            node.unwatch(identifier, waiter)
        if outcome.rejection is not None:
            await _abort_rejected(context, outcome.rejection)
        return self._receipt(identifier, outcome.height)

    def _receipt(self, event_id: bytes, height: int) -> api_pb2.Receipt:
        store = self._node.store
        location = store.event(event_id)
        checkpoint = store.checkpoint(height)
        header = store.header(height)
        return api_pb2.Receipt(
            event_id=event_id,
            height=location.height,
            log_index=location.log_index,
            proof=inclusion_proof(store, location, header.log_size),
            checkpoint=checkpoint,
            validator_chain=self._queries.validator_chain(height),
        )

    # --- reading ----------------------------------------------------------------------------
    # Every read needs a member's bearer token in the call's metadata (`authorization: Bearer
    # <token>`, the same token as REST's) and reads as that member: node/queries.py applies
    # the one access policy. A call without one is answered UNAUTHENTICATED missing_token.
    # Submitting needs no token: each event is signed by its author.

    async def _ask(self, context, query):
        """`query(reader)`'s answer for the call's authenticated reader, or the call aborted
        with the status its error maps to."""
        try:
            reader = self._queries.authenticate(_bearer_token(context), self._node.clock_ms())
            return query(reader)
        except QueryError as error:
            await context.abort(_QUERY_STATUS[error.kind], f"{error.code}: {error.reason}")
        except StoreDamaged as error:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"store_damaged: {error}")

    async def _authenticated(self, context) -> Reader:
        return await self._ask(context, lambda reader: reader)

    async def GetEvent(self, request, context):
        await _require_event_id(request.event_id, context)
        location = await self._ask(
            context, lambda r: self._queries.require_event(r, request.event_id)
        )
        return api_pb2.GetEventResponse(
            event=location.event,
            event_id=request.event_id,
            height=location.height,
            log_index=location.log_index,
        )

    async def _height(self, requested: int, context) -> int:
        head = self._node.store.head_height
        if head == 0:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "empty_chain: no blocks yet")
        if requested > head:
            await context.abort(
                grpc.StatusCode.NOT_FOUND, f"unknown_height: height {requested} > head {head}"
            )
        return requested or head

    async def GetBlock(self, request, context):
        await self._ask(context, self._queries.require_block_events)
        height = await self._height(request.height, context)
        block, certificate = self._node.store.block(height)
        return api_pb2.GetBlockResponse(block=block, certificate=certificate)

    async def GetCheckpoint(self, request, context):
        await self._authenticated(context)
        height = await self._height(request.height, context)
        return self._node.store.checkpoint(height)

    async def GetInclusionProof(self, request, context):
        await _require_event_id(request.event_id, context)
        store = self._node.store
        location = await self._ask(
            context, lambda r: self._queries.require_event(r, request.event_id)
        )
        height = await self._height(request.height, context)
        if location.height > height:
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"not_in_tree: the event was committed at height {location.height}, after "
                f"height {height}",
            )
        tree_size = store.header(height).log_size
        return api_pb2.GetInclusionProofResponse(
            proof=inclusion_proof(store, location, tree_size),
            checkpoint=store.checkpoint(height),
            event=location.event,
            validator_chain=self._queries.validator_chain(height),
        )

    async def GetConsistencyProof(self, request, context):
        await self._authenticated(context)
        store = self._node.store
        second = await self._height(request.second_height, context)
        if request.first_height == 0 or request.first_height > second:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"bad_range: first_height must be 1..{second}, got {request.first_height}",
            )
        first_size = store.header(request.first_height).log_size
        second_size = store.header(second).log_size
        proof = ledger_pb2.ConsistencyProof(
            first_size=first_size,
            second_size=second_size,
            hashes=store.consistency_proof(first_size, second_size) if first_size else [],
        )
        return api_pb2.GetConsistencyProofResponse(
            proof=proof,
            first=store.checkpoint(request.first_height),
            second=store.checkpoint(second),
            validator_chain=self._queries.validator_chain(second),
        )

    async def GetAsset(self, request, context):
        return await self._ask(context, lambda r: self._queries.require_asset(r, request.asset_id))

    async def GetGrant(self, request, context):
        return await self._ask(context, lambda r: self._queries.require_grant(r, request.grant_id))

    async def GetOrder(self, request, context):
        return await self._ask(context, lambda r: self._queries.require_order(r, request.order_id))

    async def GetAssessment(self, request, context):
        answer = await self._ask(
            context,
            lambda r: assessments.require_assessment(self._queries, r, request.assessment_id),
        )
        return assessments.assessment_message(answer)

    async def GetMember(self, request, context):
        return await self._ask(
            context, lambda r: self._queries.require_member(r, request.member_id)
        )

    async def GetProposal(self, request, context):
        if len(request.proposal_id) != DIGEST_SIZE_BYTES:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"bad_proposal_id: a proposal id is {DIGEST_SIZE_BYTES} bytes, "
                f"got {len(request.proposal_id)}",
            )
        answer = await self._ask(
            context, lambda r: self._queries.require_proposal(r, request.proposal_id)
        )
        return _proposal_message(answer)

    async def ListProposals(self, request, context):
        limit = _capped(request.limit, PROPOSALS_PAGE_ITEMS_DEFAULT, PROPOSALS_PAGE_ITEMS_MAX)
        answers, more = await self._ask(
            context, lambda r: self._queries.proposals(r, request.open_only, limit)
        )
        return api_pb2.ListProposalsResponse(
            proposals=[_proposal_message(answer) for answer in answers], more=more
        )

    async def GetAssetHistory(self, request, context):
        limit = _capped(request.limit, HISTORY_PAGE_EVENTS_DEFAULT, HISTORY_PAGE_EVENTS_MAX)
        cursor = request.after_log_index if request.has_cursor else None
        if cursor is not None and cursor > LOG_INDEX_MAX:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"bad_cursor: after_log_index must be 0..{LOG_INDEX_MAX}, got {cursor}",
            )
        entries, more = await self._ask(
            context, lambda r: self._queries.history(r, request.asset_id, cursor, limit)
        )
        return api_pb2.GetAssetHistoryResponse(
            entries=[
                api_pb2.HistoryEntry(
                    event_id=event_id(entry.event.body),
                    log_index=entry.log_index,
                    height=entry.height,
                    event=entry.event,
                )
                for entry in entries
            ],
            more=more,
        )

    async def GetLineage(self, request, context):
        if request.direction == api_pb2.LINEAGE_DIRECTION_UNSPECIFIED:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                "missing_field: direction is upstream or downstream",
            )
        if request.direction not in _LINEAGE_DIRECTIONS:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"bad_direction: direction is upstream (1) or downstream (2), "
                f"got {request.direction}",
            )
        nodes_max = _capped(request.max_nodes, LINEAGE_NODES_DEFAULT, LINEAGE_NODES_MAX)
        graph = await self._ask(
            context,
            lambda r: self._queries.lineage(
                r,
                LineageQuery(
                    request.asset_id,
                    upstream=request.direction == api_pb2.LINEAGE_DIRECTION_UPSTREAM,
                    depth=_capped(request.depth, LINEAGE_DEPTH_DEFAULT, LINEAGE_DEPTH_MAX),
                    limit=nodes_max,
                    total_max=nodes_max,
                ),
            ),
        )
        page = graph.page.closed()
        return api_pb2.GetLineageResponse(
            assets=page.assets,
            edges=[api_pb2.LineageEdge(parent_id=p, child_id=c) for p, c in page.edges],
            truncated=not page.complete,
            redacted_asset_ids=[
                asset.asset_id
                for asset, redacted in zip(page.assets, graph.redacted, strict=True)
                if redacted
            ],
        )

    # --- supervision: cases (node/cases.py) ------------------------------------------------

    async def GetCase(self, request, context):
        answer = await self._ask(
            context, lambda r: cases.require_case(self._queries, r, request.case_id)
        )
        return cases.case_message(answer)

    async def ListCases(self, request, context):
        if request.status not in state_pb2.CaseStatus.values():
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"bad_status: {request.status} is not a CaseStatus",
            )
        page = await self._ask(
            context,
            lambda r: cases.list_cases(
                self._queries,
                r,
                member_id=request.member_id or None,
                subject_id=request.subject_id or None,
                status=request.status,
                limit=_capped(request.limit, CASES_PAGE_ITEMS_DEFAULT, CASES_PAGE_ITEMS_MAX),
                after_case_id=request.after_case_id or None,
            ),
        )
        return api_pb2.ListCasesResponse(
            cases=page.cases, more=page.more, next_after_case_id=page.next_after_case_id
        )

    async def ListOffers(self, request, context):
        """The catalogue (every member's read): offers matching the filters, by offer id."""
        filters = OfferFilters(
            asset_id=request.asset_id,
            seller_id=request.seller_id,
            broker_id=request.broker_id,
            classification=request.classification,
            status=request.status,
            price_min=request.price_min if request.HasField("price_min") else None,
            price_max=request.price_max if request.HasField("price_max") else None,
            currency=request.currency,
            title_words=search_words(request.title_words),
        )
        limit = _capped(request.limit, OFFERS_PAGE_ITEMS_DEFAULT, OFFERS_PAGE_ITEMS_MAX)
        after = request.after_offer_id or None
        page = await self._ask(context, lambda r: self._queries.offers(r, filters, after, limit))
        return api_pb2.ListOffersResponse(
            offers=page.offers, more=page.more, next_after_offer_id=page.next_after
        )

    async def GetOffer(self, request, context):
        return await self._ask(context, lambda r: self._queries.require_offer(r, request.offer_id))

    async def SubscribeBlocks(self, request, context) -> AsyncIterator[ledger_pb2.Block]:
        await self._ask(context, self._queries.require_block_events)
        if self._subscribers >= SUBSCRIBERS_MAX:
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"too_many_subscribers: {SUBSCRIBERS_MAX} are subscribed",
            )
        self._subscribers += 1
        try:
            height = max(request.from_height, 1)
            while True:
                await self._node.wait_for_height(height)
                block, _ = self._node.store.block(height)
                yield block
                height += 1
        finally:
            self._subscribers -= 1


# --- registration: malformed requests answer INVALID_ARGUMENT ------------------------------


@dataclass(frozen=True)
class MalformedRequest:
    """Request bytes that did not parse as the method's request message. The deserializer
    returns it instead of raising (gRPC answers a deserializer's exception with UNKNOWN), and
    the method is never called with it: the call is answered INVALID_ARGUMENT."""

    message_name: str
    error: str


_SERVICE = api_pb2.DESCRIPTOR.services_by_name["LedgerService"]


def _lenient_deserializer(message_class: type[Message]) -> Callable[[bytes], Any]:
    def deserialize(data: bytes) -> Message | MalformedRequest:
        try:
            return message_class.FromString(data)
        except DecodeError as error:
            return MalformedRequest(message_class.DESCRIPTOR.full_name, str(error))

    return deserialize


async def _abort_malformed(context: grpc.aio.ServicerContext, request: MalformedRequest) -> None:
    await context.abort(
        grpc.StatusCode.INVALID_ARGUMENT,
        f"malformed_request: the request is not a valid {request.message_name}: {request.error}",
    )


async def _admit(
    guard: ConnectionGuard, context: grpc.aio.ServicerContext, request: Any
) -> Admitted:
    """Take the call on its connection's allowance (node/grpc_connections.py), or abort it
    RESOURCE_EXHAUSTED. A malformed request counts as a call of no bytes."""
    size_bytes = 0 if isinstance(request, MalformedRequest) else request.ByteSize()
    admitted = guard.admit(context.peer(), size_bytes)
    if not isinstance(admitted, Admitted):
        await context.abort(
            grpc.StatusCode.RESOURCE_EXHAUSTED, f"{admitted.code}: {admitted.reason}"
        )
    return admitted


def _unary(
    behaviour: Callable[[Any, Any], Awaitable[Any]], guard: ConnectionGuard
) -> Callable[[Any, Any], Any]:
    async def handle(request, context):
        admitted = await _admit(guard, context, request)
        try:
            if isinstance(request, MalformedRequest):
                await _abort_malformed(context, request)
            return await behaviour(request, context)
        finally:
            guard.release(admitted)

    return handle


def _streaming(
    behaviour: Callable[[Any, Any], AsyncIterator[Any]], guard: ConnectionGuard
) -> Callable[[Any, Any], Any]:
    async def handle(request, context):
        admitted = await _admit(guard, context, request)
        try:
            if isinstance(request, MalformedRequest):
                await _abort_malformed(context, request)
            async for response in behaviour(request, context):
                yield response
        finally:
            guard.release(admitted)

    return handle


def add_to_server(
    service: LedgerService, server: grpc.aio.Server, guard: ConnectionGuard | None = None
) -> None:
    """Serve `service` on `server`, as the generated `add_LedgerServiceServicer_to_server`
    would, except that
    - every call is first taken on its connection's allowance by `guard` (rate and bytes in
      flight; node/grpc_connections.py), and answered RESOURCE_EXHAUSTED past it;
    - request bytes which are not the method's request message are answered INVALID_ARGUMENT
      `malformed_request` (the generated registration lets the parse error escape, which
      gRPC answers UNKNOWN).
    Built from the service's descriptor, so a method added to api.proto is registered the
    same way."""
    guard = guard or ConnectionGuard()
    handlers = {}
    for method in _SERVICE.methods:
        check(not method.client_streaming, f"{method.name}: client streaming is not served")
        request_class = message_factory.GetMessageClass(method.input_type)
        response_class = message_factory.GetMessageClass(method.output_type)
        behaviour = getattr(service, method.name)
        if method.server_streaming:
            handlers[method.name] = grpc.unary_stream_rpc_method_handler(
                _streaming(behaviour, guard),
                request_deserializer=_lenient_deserializer(request_class),
                response_serializer=response_class.SerializeToString,
            )
        else:
            handlers[method.name] = grpc.unary_unary_rpc_method_handler(
                _unary(behaviour, guard),
                request_deserializer=_lenient_deserializer(request_class),
                response_serializer=response_class.SerializeToString,
            )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(_SERVICE.full_name, handlers),)
    )
    server.add_registered_method_handlers(_SERVICE.full_name, handlers)


_PROPOSAL_STATUSES = {
    "open": api_pb2.PROPOSAL_STATUS_OPEN,
    "applied": api_pb2.PROPOSAL_STATUS_APPLIED,
    "expired": api_pb2.PROPOSAL_STATUS_EXPIRED,
    "superseded": api_pb2.PROPOSAL_STATUS_SUPERSEDED,
}


def _proposal_message(answer: ProposalAnswer) -> api_pb2.GovernanceProposal:
    return api_pb2.GovernanceProposal(
        record=answer.record,
        kind=answer.kind,
        status=_PROPOSAL_STATUSES[answer.status],
        approvals_counted=answer.approvals_counted,
        approvals_needed=answer.approvals_needed,
        active_members=answer.active_members,
        threshold=answer.threshold,
    )


def _bearer_token(context) -> str | None:
    """The token of the call's `authorization: Bearer <token>` metadata (the scheme in any
    case, as HTTP's), or None."""
    for key, value in context.invocation_metadata() or ():
        if key == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None

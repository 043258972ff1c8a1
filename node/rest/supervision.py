"""The REST routes of supervision: the market's catalogue (/v1/offers, ADR 017), cases
(/v1/cases, ADR 018) and data customs (/v1/assessments, ADR 019). Thin, like every route: each
parses its parameters and returns what node/cases.py, node/assessments.py or the answers give.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from provledger.node import assessments, cases
from provledger.node.rest import cursors
from provledger.node.rest.customs import AssessmentPage, AssessmentView, assessment_view
from provledger.node.rest.models import (
    CaseDetail,
    CasePage,
    CatalogueOfferView,
    OfferPage,
)
from provledger.node.rest.parameters import (
    CASE_STATUSES,
    CLASSIFICATION_NUMBERS,
    ERROR_RESPONSES,
    OFFER_STATUS_NUMBERS,
    Api,
    Caller,
    CaseLimit,
    CaseStatusQuery,
    Cursor,
    Identifier,
    Limit,
    OfferLimit,
    OptionalIdentifier,
    Price,
)
from provledger.node.rest.views import case_detail, case_page
from provledger.node.settings import (
    REST_PAGE_ITEMS_DEFAULT,
)
from provledger.protocol.catalogue import OfferFilters, search_words
from provledger.protocol.limits import (
    CASES_PAGE_ITEMS_DEFAULT,
    OFFERS_PAGE_ITEMS_DEFAULT,
    TEXT_LENGTH_CHARS_MAX,
)

router = APIRouter()

# --- supervision: cases (node/cases.py) -------------------------------------------------


@router.get("/v1/cases", response_model=CasePage, responses=ERROR_RESPONSES, tags=["cases"])
def list_cases(
    ledger: Api,
    caller: Caller,
    member_id: OptionalIdentifier = None,
    subject_id: OptionalIdentifier = None,
    status: CaseStatusQuery = None,
    cursor: Cursor = None,
    limit: CaseLimit = CASES_PAGE_ITEMS_DEFAULT,
) -> CasePage:
    """Cases the caller may read, by case id: where `member_id` is a party, about
    `subject_id` (an order, offer, asset or grant), in `status`. Without member_id and
    subject_id, a member that is not a regulator or auditor lists its own."""
    scope = cursors.scope("cases", member_id, subject_id, status)
    after = None if cursor is None else cursors.cursor_identifier(cursor, "cases", scope)
    page = cases.list_cases(
        ledger.queries,
        caller,
        member_id=member_id,
        subject_id=subject_id,
        status=CASE_STATUSES[status] if status is not None else 0,
        limit=limit,
        after_case_id=after,
    )
    next_cursor = (
        cursors.encode_cursor("cases", page.next_after_case_id, scope) if page.more else None
    )
    return case_page(page, next_cursor)


@router.get("/v1/cases/one", response_model=CaseDetail, responses=ERROR_RESPONSES, tags=["cases"])
def case(ledger: Api, caller: Caller, case_id: Identifier) -> CaseDetail:
    """One case: its record, complaints, timeline in words, appeal deadline and finality."""
    return case_detail(cases.require_case(ledger.queries, caller, case_id))


# --- the market's catalogue ------------------------------------------------------------


@router.get("/v1/offers", response_model=OfferPage, responses=ERROR_RESPONSES, tags=["market"])
def offers(
    ledger: Api,
    caller: Caller,
    asset_id: OptionalIdentifier = None,
    seller_id: OptionalIdentifier = None,
    broker_id: OptionalIdentifier = None,
    classification: Annotated[Literal["general", "important", "core"] | None, Query()] = None,
    status: Annotated[Literal["listed", "delisted"] | None, Query()] = None,
    price_min: Price = None,
    price_max: Price = None,
    currency: OptionalIdentifier = None,
    q: Annotated[
        str | None,
        Query(max_length=TEXT_LENGTH_CHARS_MAX, description="words the title must hold"),
    ] = None,
    cursor: Cursor = None,
    limit: OfferLimit = OFFERS_PAGE_ITEMS_DEFAULT,
) -> OfferPage:
    """The market's catalogue (every member's read): offers matching every filter given,
    by offer id, with their asset's classification and name as they stand now."""
    filters = OfferFilters(
        asset_id=asset_id or "",
        seller_id=seller_id or "",
        broker_id=broker_id or "",
        classification=CLASSIFICATION_NUMBERS[classification] if classification else 0,
        status=OFFER_STATUS_NUMBERS[status] if status else 0,
        price_min=price_min,
        price_max=price_max,
        currency=currency or "",
        title_words=search_words(q or ""),
    )
    return ledger.offers(caller, filters, cursor, limit)


@router.get(
    "/v1/offers/one",
    response_model=CatalogueOfferView,
    responses=ERROR_RESPONSES,
    tags=["market"],
)
def offer(ledger: Api, caller: Caller, offer_id: Identifier) -> CatalogueOfferView:
    """One offer of the catalogue."""
    return ledger.offer(caller, offer_id)


# --- data customs ----------------------------------------------------------------------


@router.get(
    "/v1/assessments",
    response_model=AssessmentPage,
    responses=ERROR_RESPONSES,
    tags=["customs"],
)
def assessments_list(
    ledger: Api,
    caller: Caller,
    overdue: Annotated[bool, Query(description="only those with overdue reports")] = False,
    cursor: Cursor = None,
    limit: Limit = REST_PAGE_ITEMS_DEFAULT,
) -> AssessmentPage:
    """Security assessments the caller may see, by id; with `overdue=true` only those whose
    recipient missed a report (judged at the head block's time)."""
    scope = cursors.scope("assessments", overdue)
    after = None if cursor is None else cursors.cursor_identifier(cursor, "assessments", scope)
    answers, next_id = assessments.assessments_page(ledger.queries, caller, overdue, after, limit)
    items = [assessment_view(answer) for answer in answers]
    if next_id is None:
        return AssessmentPage(items=items, next_cursor=None)
    next_cursor = cursors.encode_cursor("assessments", next_id, scope)
    return AssessmentPage(items=items, next_cursor=next_cursor)


@router.get(
    "/v1/assessments/one",
    response_model=AssessmentView,
    responses=ERROR_RESPONSES,
    tags=["customs"],
)
def assessment(ledger: Api, caller: Caller, assessment_id: Identifier) -> AssessmentView:
    """One security assessment: its scope, the moves it allowed, the reports filed under it,
    its overdue periods and the next report due."""
    answer = assessments.require_assessment(ledger.queries, caller, assessment_id)
    return assessment_view(answer)

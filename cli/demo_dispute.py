"""The demo's last act: a dispute over the settled trade, from complaint to a case file a
court can check. The buyer complains, a regulator investigates and rules (a refund and a
delisting take effect in the ledger), the seller appeals, a second regulator decides the
appeal, and an auditor exports the case file and verifies it offline against the genesis.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import grpc

from provledger.cli.client import EventSigner, describe_rpc_error
from provledger.cli.output import CommandError
from provledger.v1 import api_pb2, ledger_pb2, state_pb2

CASE_ID = "case/2026-001"
COMPLAINT_ID = "complaint/order-1"


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def tell_dispute(
    client: Any,
    signer: dict[str, EventSigner],
    *,
    order_id: str,
    offer_id: str,
    price: int,
    first_step: int,
    step: Callable[[int, str], None],
    commit: Callable[[Any, ledger_pb2.SignedEvent], api_pb2.Receipt],
) -> int:
    """Tell the dispute over `order_id` (bought from `offer_id` at `price` CNY minor units)
    through `client` (the demo's RoundRobin), numbering steps from `first_step`; return the
    next step's number."""
    number = first_step
    step(number, f"agency-a, the buyer, complains about {order_id}: the delivery misses a month")
    commit(
        client,
        signer["agency-a"].event(
            "complaint_filed",
            complaint_id=COMPLAINT_ID,
            subject_kind=ledger_pb2.COMPLAINT_SUBJECT_ORDER,
            subject_id=order_id,
            respondent_id="agency-b",
            statement_digest=_digest("statement: the package lacks December"),
            evidence_digests=[_digest("evidence: row counts per month")],
            category="incomplete_delivery",
        ),
    )
    print("     only digests of the statement and the evidence enter the ledger")

    number += 1
    step(number, f"the regulator opens {CASE_ID} and records an inspection of the delivery")
    commit(
        client,
        signer["regulator"].event(
            "case_opened",
            case_id=CASE_ID,
            complaint_ids=[COMPLAINT_ID],
            summary="incomplete delivery of a settled order",
        ),
    )
    commit(
        client,
        signer["regulator"].event(
            "case_step_recorded",
            case_id=CASE_ID,
            step="inspection",
            note="delivered package compared with the offer's terms",
            evidence_digests=[_digest("inspection report")],
        ),
    )

    number += 1
    refund = price // 2
    step(
        number,
        f"the regulator rules: upheld; refund {refund / 100:,.2f} CNY on {order_id}, "
        f"delist {offer_id}, warn agency-b",
    )
    commit(
        client,
        signer["regulator"].event(
            "case_ruled",
            case_id=CASE_ID,
            outcome=ledger_pb2.RULING_OUTCOME_UPHELD,
            findings="one month of twelve was not delivered",
            decision_digest=_digest("written decision"),
            remedies=[
                ledger_pb2.Remedy(
                    refund=ledger_pb2.Refund(
                        order_id=order_id,
                        amount=refund,
                        currency="CNY",
                        reference="refund-0001",
                    )
                ),
                ledger_pb2.Remedy(delist=ledger_pb2.DelistOffer(offer_id=offer_id)),
                ledger_pb2.Remedy(
                    warning=ledger_pb2.Warning(
                        member_id="agency-b", text="deliver what the offer describes"
                    )
                ),
            ],
        ),
    )
    order = client.stub.GetOrder(api_pb2.GetOrderRequest(order_id=order_id))
    offer = client.stub.GetOffer(api_pb2.GetOfferRequest(offer_id=offer_id))
    print(
        f"     {order_id} is now {state_pb2.OrderStatus.Name(order.status)} "
        f"(refund {order.refund.reference}); {offer_id} is "
        f"{state_pb2.OfferStatus.Name(offer.status)}"
    )
    try:
        client.submit_and_wait(
            signer["exchange"].event("order_placed", order_id="order/2", offer_id=offer_id)
        )
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.FAILED_PRECONDITION:  # type: ignore[attr-defined]
            raise
        print(f"     a new order on it is rejected as expected: {describe_rpc_error(error)}")
    else:
        raise CommandError("an order on a delisted offer was accepted")

    number += 1
    step(number, "agency-b appeals the ruling, within the genesis's appeal window")
    commit(
        client,
        signer["agency-b"].event(
            "ruling_appealed",
            case_id=CASE_ID,
            grounds_digest=_digest("grounds of appeal"),
            grounds="December was delivered in a later package",
        ),
    )

    number += 1
    step(number, "a second regulator, market-regulator, decides the appeal: the ruling stands")
    commit(
        client,
        signer["market-regulator"].event(
            "appeal_decided",
            case_id=CASE_ID,
            decision=ledger_pb2.APPEAL_DECISION_UPHELD,
            reasons="the later package was delivered after settlement",
        ),
    )
    view = client.stub.GetCase(api_pb2.GetCaseRequest(case_id=CASE_ID))
    print(
        f"     {CASE_ID} is {state_pb2.CaseStatus.Name(view.record.status)}; "
        f"{len(view.timeline)} events in its timeline; final: {view.final}"
    )
    return number + 1

"""The access policy: who may read which record, and how a record is redacted for them.

Every interface that hands out ledger records asks here, and nowhere else: the REST API, the
gRPC API, the evidence bundles, the PROV export. A second copy of "who may see" drifts, and in
a ledger a drifted access check is a leak.

The policy (docs/rest-api.md, ADR 007):
- an auditor reads everything (an `auditor` token is only valid for members whose ledger role
  is auditor or regulator: protocol/tokens.py);
- a member reads what concerns it: an asset it owns, holds a copy of, made, or holds a grant
  on; a grant it issued or holds, or on an asset it owns; an order where it is the buyer, the
  seller, the listing exchange or the broker that listed the offer, or of an asset it owns; an
  event it wrote, that names it, that is about something it may read (protocol/concerns.py
  says what each event is about), and every governance event, proposal and member record
  (keys and revocations included); a case (its complaints and timeline) where it is a party,
  or any case if it is a regulator or an auditor; a derivation is read through the asset it
  creates only (it carries that asset's name and digest), so the owner of a parent sees it in
  the lineage, redacted, and not in its asset's history;
- in a lineage, an asset the reader may not read still shows its place in the graph (id,
  owner, classification, parents, activity, retired) so provenance stays traceable, with its
  name, content digest, holders, origin event, what keeps it in the country and the
  purposes it is bound to (they are the purposes of grants the reader may not see) left out;
- the market's catalogue (every offer, listed or delisted, with its asset's id, name and
  classification, its seller, broker, exchange, price and title) is every member's to read:
  a listing is the seller's public offer to the consortium (ADR 017). The asset itself, its
  history and its trades stay under the rules above;
- a security assessment concerns the regulator who recorded it, its recipient and the owners
  of the assets in its scope (`sees_assessment`);
- whole blocks with their events' bodies (gRPC GetBlock, SubscribeBlocks) are an auditor's
  read only: a block carries every member's events at once. Anyone who reads may see the
  chain's headers, checkpoints and event ids (REST /v1/blocks), which reveal no content.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from provledger.protocol.concerns import concerns
from provledger.protocol.tokens import ROLE_AUDITOR
from provledger.v1 import ledger_pb2, state_pb2

GRANTS_PAGE_ITEMS = 500  # grants read at a time while looking for one held by the reader
# What a lineage leaves out of an asset the reader may not see: all but its place in the graph.
REDACTED_ASSET_FIELDS = (
    "name",
    "content_digest",
    "holder_ids",
    "origin_event_id",
    "no_cross_border_by",  # names the grant it was derived under
    "bound_purposes",  # the purposes of the grants it was derived under
    "bound_by",  # names those grants
)


class LedgerReader(Protocol):
    """What the policy reads: world-state records, committed events, an asset's grants."""

    def load(self, kind: str, record_id: str) -> Any: ...

    def event(self, event_identifier: bytes) -> state_pb2.EventLocation | None: ...

    def grants_of_asset(
        self, asset_id: str, after_grant_id: str | None, limit: int
    ) -> tuple[list[state_pb2.GrantRecord], bool]: ...


@dataclass(frozen=True)
class Reader:
    """Who is asking: a member, reading with an auditor's or a member's token."""

    member_id: str
    role: str

    @property
    def auditor(self) -> bool:
        return self.role == ROLE_AUDITOR


def decode_event(signed: ledger_pb2.SignedEvent) -> ledger_pb2.Event:
    """The event inside committed signed bytes (checked when they were admitted)."""
    event = ledger_pb2.Event()
    event.ParseFromString(signed.body)
    return event


def _grants(ledger: LedgerReader, asset_id: str) -> Iterable[state_pb2.GrantRecord]:
    after = None
    while True:
        grants, more = ledger.grants_of_asset(asset_id, after, GRANTS_PAGE_ITEMS)
        yield from grants
        if not more or not grants:
            return
        after = grants[-1].grant.grant_id


def sees_block_events(reader: Reader) -> bool:
    """Whether `reader` may read whole blocks, every event's body in them: an auditor."""
    return reader.auditor


def sees_forks(reader: Reader) -> bool:
    """Whether `reader` may read the proofs of forks a node kept (node/forks.py): an auditor,
    who acts on what they show about the validators."""
    return reader.auditor


def sees_governance(reader: Reader) -> bool:
    """Whether `reader` may read the consortium's governance: its members with their keys and
    revocations, and every proposal with its approvals. Governance concerns every member, as
    every governance event does (protocol/concerns.py)."""
    return True


def sees_catalogue(reader: Reader) -> bool:
    """Whether `reader` may search the market's catalogue and read its offers: every member,
    as a listing is the seller's public offer to the consortium (ADR 017)."""
    return True


def sees_asset(ledger: LedgerReader, reader: Reader, asset: state_pb2.AssetRecord) -> bool:
    """An asset concerns a member that owns it, holds a copy, registered or derived it, or
    holds a grant on it."""
    member_id = reader.member_id
    if reader.auditor or member_id == asset.owner_id or member_id in asset.holder_ids:
        return True
    origin = ledger.event(asset.origin_event_id)
    if origin is not None and decode_event(origin.event).author.member_id == member_id:
        return True
    return any(g.grant.grantee_id == member_id for g in _grants(ledger, asset.asset_id))


def sees_grant(ledger: LedgerReader, reader: Reader, grant: state_pb2.GrantRecord) -> bool:
    if reader.auditor or reader.member_id in (grant.grantor_id, grant.grant.grantee_id):
        return True
    asset = ledger.load("asset", grant.grant.asset_id)
    return asset is not None and asset.owner_id == reader.member_id


def sees_order(ledger: LedgerReader, reader: Reader, order: state_pb2.OrderRecord) -> bool:
    """An order concerns its buyer, its seller, the listing (or settling) exchange, the broker
    that listed its offer, and the owner of the asset it trades (who sees every trade of its
    asset)."""
    if reader.auditor or reader.member_id in (order.buyer_id, order.seller_id, order.exchange_id):
        return True
    offer = ledger.load("offer", order.offer_id)
    if offer is not None and offer.broker_id and offer.broker_id == reader.member_id:
        return True
    asset = ledger.load("asset", offer.offer.asset_id) if offer is not None else None
    return asset is not None and asset.owner_id == reader.member_id


def sees_case(ledger: LedgerReader, reader: Reader, case: state_pb2.CaseRecord) -> bool:
    """A case (with its complaints and timeline) concerns its parties, the regulators who
    supervise the market, and auditors (by their token or their ledger role); no one else,
    not even the owner of an asset it is about (who reads the case's events in the asset's
    history)."""
    if reader.auditor or reader.member_id in case.parties:
        return True
    member = ledger.load("member", reader.member_id)
    return (
        member is not None
        and not member.removed
        and member.role in (ledger_pb2.ROLE_REGULATOR, ledger_pb2.ROLE_AUDITOR)
    )


def sees_event(ledger: LedgerReader, reader: Reader, event: ledger_pb2.Event) -> bool:
    """An event concerns its author, the members it names, and whoever may see the asset,
    grant or order it is about. Governance concerns every member."""
    if reader.auditor or event.author.member_id == reader.member_id:
        return True
    kind = event.WhichOneof("payload")
    if kind is None:
        return False
    about = concerns(kind, getattr(event, kind), ledger.load)
    if about.everyone or reader.member_id in about.members:
        return True
    grant = ledger.load("grant", about.grant_id) if about.grant_id else None
    if grant is not None and sees_grant(ledger, reader, grant):
        return True
    order = ledger.load("order", about.order_id) if about.order_id else None
    if order is not None and sees_order(ledger, reader, order):
        return True
    for asset_id in about.readable_through:
        asset = ledger.load("asset", asset_id)
        if asset is not None and sees_asset(ledger, reader, asset):
            return True
    return False


def redact_asset(
    ledger: LedgerReader, reader: Reader, asset: state_pb2.AssetRecord
) -> tuple[state_pb2.AssetRecord, bool]:
    """An asset as it may appear in a lineage the reader asked for: whole if the reader may
    see it, else only its place in the graph. Returns the record and whether it was
    redacted."""
    if sees_asset(ledger, reader, asset):
        return asset, False
    redacted = state_pb2.AssetRecord()
    redacted.CopyFrom(asset)
    for hidden in REDACTED_ASSET_FIELDS:
        redacted.ClearField(hidden)
    return redacted, True


def sees_assessment(
    ledger: LedgerReader, reader: Reader, record: state_pb2.AssessmentRecord
) -> bool:
    """A security assessment concerns the regulator who recorded it, its recipient and the
    owners of the assets in its scope; auditors (and regulators, with an auditor's token) read
    every one, so a missed report is visible to them (ADR 019)."""
    member_id = reader.member_id
    if reader.auditor or member_id in (record.regulator_id, record.assessment.recipient_id):
        return True
    for asset_id in record.assessment.asset_ids:
        asset = ledger.load("asset", asset_id)
        if asset is not None and asset.owner_id == member_id:
            return True
    return False

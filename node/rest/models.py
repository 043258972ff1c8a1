"""The REST API's response models: the shapes of docs/rest-api.md, from which FastAPI builds
the OpenAPI schema. Shapes only; node/rest/answers.py fills them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from provledger.node.settings import REST_LINEAGE_NODES_TOTAL_MAX


class ErrorBody(BaseModel):
    error: str = Field(description="a stable code for programs")
    reason: str = Field(description="what went wrong, for people")


class Health(BaseModel):
    status: Literal["ok", "fork_seen"] = Field(
        description='"fork_seen" once a peer showed this node a quorum-signed block that '
        "conflicts with its own (the proofs: /v1/forks)"
    )
    forks_seen: int = Field(description="conflicting quorum-signed checkpoints seen so far")


class ForkSideView(BaseModel):
    source: str = Field(description="where it was seen (this node, a peer); not signed")
    height: int
    round: int
    block_id: str
    signers: list[str]


class ForkView(BaseModel):
    number: int = Field(description="1, 2, ... in the order seen; the proof: /v1/forks/{number}")
    height: int
    peer_id: str
    seen_at_ms: int
    kind: Literal["same_height", "inconsistent_logs"]
    reason: str
    first: ForkSideView
    second: ForkSideView
    signed_both: list[str]
    equivocators: list[str] = Field(
        description="validators that precommitted both blocks at one height and round"
    )


class ForkList(BaseModel):
    items: list[ForkView]
    not_kept: int = Field(description="further forks seen once the node's bound was reached")


class EquivocationView(BaseModel):
    height: int
    round: int
    vote_type: Literal["prevote", "precommit"]
    evidence_key: str = Field(description="the recorded evidence: both signed votes")
    recorded_at_height: int


class ValidatorView(BaseModel):
    validator_id: str
    public_key: str
    equivocations: int = Field(
        0,
        description="equivocations recorded against it; a marked validator stays marked "
        "(ADR 014: governance decides what follows)",
    )
    equivocated: list[EquivocationView] = Field(
        default_factory=list, description="the first 64 of them, in the order recorded"
    )


class StatusView(BaseModel):
    chain_id: str
    node_id: str
    genesis_hash: str
    height: int
    head_block_id: str = Field(description="the genesis hash while there is no block")
    head_time_ms: int
    log_size: int
    log_root: str
    validators: list[ValidatorView]
    quorum_size: int


class HeaderView(BaseModel):
    block_id: str
    chain_id: str
    height: int
    previous_block_id: str
    time_ms: int
    proposer_id: str
    events_root: str
    event_count: int
    log_size: int
    log_root: str
    state_root: str
    validators_hash: str
    last_commit_hash: str
    evidence_hash: str


class SignatureView(BaseModel):
    validator_id: str
    signature: str


class CertificateView(BaseModel):
    height: int
    round: int
    block_id: str
    signatures: list[SignatureView]


class BlockPage(BaseModel):
    items: list[HeaderView]
    next_cursor: str | None


class BlockView(BaseModel):
    header: HeaderView
    header_raw: str = Field(description="the serialized BlockHeader, hex: what the id hashes")
    certificate: CertificateView = Field(description="the certificate that commits this block")
    last_commit: CertificateView | None = Field(description="the previous block's, carried here")
    event_ids: list[str]
    evidence_count: int


class CheckpointView(BaseModel):
    height: int
    header: HeaderView
    header_raw: str = Field(description="the serialized BlockHeader, hex: what the id hashes")
    certificate: CertificateView


class AuthorView(BaseModel):
    member_id: str
    key_id: str


class EventView(BaseModel):
    event_id: str
    kind: str = Field(description='the payload\'s name, e.g. "asset_registered"')
    chain_id: str
    author: AuthorView
    nonce: int
    timestamp_ms: int = Field(description="the author's clock; informational")
    payload: dict[str, Any]
    body: str = Field(description="the signed bytes (a serialized Event), hex")
    signature: str
    height: int
    position: int = Field(description="index within its block")
    log_index: int
    block_time_ms: int


class EventPage(BaseModel):
    items: list[EventView]
    next_cursor: str | None


class InclusionProofView(BaseModel):
    leaf_index: int
    tree_size: int
    leaf_hash: str
    hashes: list[str]


class InclusionView(BaseModel):
    event: EventView
    proof: InclusionProofView
    checkpoint: CheckpointView


class ConsistencyProofView(BaseModel):
    first_size: int
    second_size: int
    hashes: list[str]


class ConsistencyView(BaseModel):
    proof: ConsistencyProofView
    first: CheckpointView
    second: CheckpointView


class AssetView(BaseModel):
    asset_id: str
    owner_id: str
    classification: str
    content_digest: str
    name: str
    parent_ids: list[str]
    activity: str = Field(description="empty for a registered (not derived) asset")
    origin_event_id: str
    retired: bool
    holder_ids: list[str]
    no_cross_border_by: str = Field(
        default="",
        description='what keeps it in the country ("grant <id>" or "asset <id>", inherited by '
        'derivation), "" if nothing; a move abroad is refused cross_border_forbidden',
    )
    bound_purposes: list[str] = Field(
        default_factory=list,
        description="the purposes it may be used for, [] if unbound: those common to the grants "
        "it was derived under and its parents' bindings, inherited by derivation (ADR 022); a "
        "use or a grant for another purpose is refused purpose_not_bound",
    )
    bound_by: list[str] = Field(
        default_factory=list,
        description='what binds it: "grant <id>" or "asset <id>" per binding parent, [] if unbound',
    )
    redacted: bool = Field(
        default=False,
        description="true when the reader may see this asset's place in a lineage but not its "
        "details: name, content digest, holders, origin event, no_cross_border_by, "
        "bound_purposes and bound_by are then left empty",
    )


class EdgeView(BaseModel):
    parent: str
    child: str


class LineageView(BaseModel):
    root: str
    direction: Literal["upstream", "downstream"]
    depth: int
    nodes: list[AssetView]
    edges: list[EdgeView]
    truncated: bool = Field(
        description="the depth limit hid lineage of a node on this page, or the graph has "
        f"more than {REST_LINEAGE_NODES_TOTAL_MAX} nodes"
    )
    next_cursor: str | None


class GrantView(BaseModel):
    grant_id: str
    asset_id: str
    grantor_id: str
    grantee_id: str
    purposes: list[str]
    operations: list[str]
    expires_at_ms: int
    no_cross_border: bool
    revoked: bool
    revoked_at_ms: int | None
    event_id: str


class GrantPage(BaseModel):
    items: list[GrantView]
    next_cursor: str | None


class GrantDetail(BaseModel):
    grant: GrantView
    issued: EventView
    revoked: EventView | None


class DecidingEvent(BaseModel):
    role: Literal[
        "registered", "derived", "transferred", "retired", "grant_issued", "grant_revoked"
    ]
    event: EventView
    proof: InclusionProofView = Field(description="against the response's checkpoint")


class AuthorizationView(BaseModel):
    member_id: str
    asset_id: str
    purpose: str
    operation: str
    time_ms: int
    authorised: bool
    code: str = Field(
        description="owner, granted, or why not: asset_not_registered, asset_retired, "
        "no_grant, grant_not_yet_issued, grant_revoked, grant_expired, "
        "operation_not_granted, purpose_not_granted"
    )
    reason: str
    grant_id: str | None = Field(description="the grant that covers the use, if one does")
    deciding_events: list[DecidingEvent]
    withheld_events: int = Field(
        description="deciding events left out because they do not concern the reader (e.g. "
        "another member's registration of the asset); always 0 for an auditor"
    )
    checkpoint: CheckpointView


class OrderView(BaseModel):
    order_id: str
    offer_id: str
    asset_id: str
    buyer_id: str
    seller_id: str
    exchange_id: str
    status: str
    status_before_dispute: str | None
    delivery_digest: str | None
    dispute_id: str | None
    event_ids: list[str]


class LifecycleEntry(BaseModel):
    event_id: str
    kind: str
    author_id: str
    height: int
    log_index: int
    block_time_ms: int


class TradeItem(BaseModel):
    order: OrderView
    life_cycle: list[LifecycleEntry]


class TradePage(BaseModel):
    items: list[TradeItem]
    next_cursor: str | None


class OfferView(BaseModel):
    offer_id: str
    asset_id: str
    seller_id: str
    exchange_id: str
    price: int
    currency: str
    terms: str
    event_id: str


class DisputeView(BaseModel):
    dispute_id: str
    order_id: str
    opened_by: str
    reason: str
    resolved: bool
    outcome: str | None
    resolution: str


class TradeDetail(BaseModel):
    order: OrderView
    offer: OfferView
    life_cycle: list[EventView]
    dispute: DisputeView | None


class ProvDocument(BaseModel):
    """W3C PROV-JSON (https://www.w3.org/submissions/prov-json/)."""

    prefix: dict[str, str]
    entity: dict[str, dict[str, Any]]
    activity: dict[str, dict[str, Any]]
    agent: dict[str, dict[str, Any]]
    wasGeneratedBy: dict[str, dict[str, Any]]
    used: dict[str, dict[str, Any]]
    wasDerivedFrom: dict[str, dict[str, Any]]
    wasAssociatedWith: dict[str, dict[str, Any]]
    wasAttributedTo: dict[str, dict[str, Any]]


class MemberKeyView(BaseModel):
    key_id: str
    public_key: str
    revoked: bool = Field(description="revoked as compromised by a governance change")
    revoked_after_height: int | None = Field(
        description="events signed with the key and committed above this height are refused "
        "(key_revoked); null unless revoked"
    )
    revocation_event_id: str | None = Field(description="the event that applied the revocation")


class MemberView(BaseModel):
    member_id: str
    name: str
    role: str
    removed: bool
    keys: list[MemberKeyView]


class ProposalApprovalView(BaseModel):
    member_id: str
    key_id: str
    event_id: str
    height: int


class ThresholdView(BaseModel):
    numerator: int
    denominator: int


class ProposalView(BaseModel):
    proposal_id: str
    kind: str = Field(description='the change\'s kind, e.g. "member_added"')
    status: Literal["open", "applied", "expired", "superseded"]
    change: dict[str, Any] = Field(description="the GovernanceChange, decoded")
    change_raw: str = Field(description="the serialized GovernanceChange, hex: what the id hashes")
    subject: str = Field(description='what the change is about, e.g. "member:agency-c"')
    proposer_id: str
    proposed_height: int
    proposed_at_ms: int
    expires_at_ms: int
    approvals: list[ProposalApprovalView] = Field(description="in order, the proposer's first")
    approvals_counted: int = Field(
        description="approvals of active members whose keys were not revoked at their height"
    )
    approvals_needed: int = Field(description="more than the threshold of the active members")
    active_members: int
    threshold: ThresholdView
    applied_height: int | None
    applied_event_id: str | None


class ProposalPage(BaseModel):
    items: list[ProposalView]
    more: bool = Field(description="more proposals were recorded than the limit")


# --- supervision: cases (ADR 018) --------------------------------------------------------------


class TimelineEntryView(BaseModel):
    event_id: str
    height: int
    log_index: int
    time_ms: int = Field(description="the block's time")
    kind: str
    author_id: str
    summary: str = Field(description="the event in words (protocol/case_timeline.py)")


class CaseDetail(BaseModel):
    case: dict[str, Any] = Field(
        description="the case record (state.proto CaseRecord): case_id, complaint_ids, "
        "opened_by, status, event_ids, opened_at_ms, steps, ruling, ruled_by, ruled_at_ms, "
        "appellant_id, appealed_at_ms, votes, appeal_decision, decided_at_ms, parties"
    )
    complaints: list[dict[str, Any]] = Field(
        description="its complaints (ComplaintRecord): complaint, complainant_id, event_id, "
        "filed_at_ms, case_id"
    )
    timeline: list[TimelineEntryView] = Field(description="every event of the case, in log order")
    appeal_deadline_ms: int = Field(description="once ruled: the end of the appeal window; else 0")
    final: bool = Field(description="no further event can change it (at the head's time)")


class CasePage(BaseModel):
    items: list[dict[str, Any]] = Field(description="case records, by case id")
    next_cursor: str | None = Field(description="the `cursor` of the next page; null at the end")


class CatalogueOfferView(BaseModel):
    """An offer as the market's catalogue shows it (ADR 017)."""

    offer_id: str
    asset_id: str
    asset_name: str = Field(description="the asset's name as it stands now")
    classification: str = Field(description="the asset's classification as it stands now")
    seller_id: str
    broker_id: str | None = Field(description="the broker that listed it; null: an exchange did")
    mandate_id: str | None = Field(description="the seller's mandate a broker listed it under")
    exchange_id: str = Field(description="the exchange that settles its trades")
    title: str
    price: int = Field(description="in minor units of the currency")
    currency: str
    terms: str
    status: Literal["listed", "delisted"]
    event_id: str = Field(description="the listing event")
    delisted_by: str | None
    delisting_reason: str | None
    delisted_event_id: str | None = Field(
        description="the OfferDelisted, or the ruling or appeal that delisted it"
    )


class OfferPage(BaseModel):
    items: list[CatalogueOfferView] = Field(description="by offer id")
    next_cursor: str | None = Field(
        description="the `cursor` of the next page (it goes on after the last offer read, "
        "so a page may hold fewer than `limit` and still have one); null at the end"
    )

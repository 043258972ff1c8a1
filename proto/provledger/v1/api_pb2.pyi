from provledger.v1 import ledger_pb2 as _ledger_pb2
from provledger.v1 import state_pb2 as _state_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LineageDirection(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LINEAGE_DIRECTION_UNSPECIFIED: _ClassVar[LineageDirection]
    LINEAGE_DIRECTION_UPSTREAM: _ClassVar[LineageDirection]
    LINEAGE_DIRECTION_DOWNSTREAM: _ClassVar[LineageDirection]

class ProposalStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROPOSAL_STATUS_UNSPECIFIED: _ClassVar[ProposalStatus]
    PROPOSAL_STATUS_OPEN: _ClassVar[ProposalStatus]
    PROPOSAL_STATUS_APPLIED: _ClassVar[ProposalStatus]
    PROPOSAL_STATUS_EXPIRED: _ClassVar[ProposalStatus]
    PROPOSAL_STATUS_SUPERSEDED: _ClassVar[ProposalStatus]
LINEAGE_DIRECTION_UNSPECIFIED: LineageDirection
LINEAGE_DIRECTION_UPSTREAM: LineageDirection
LINEAGE_DIRECTION_DOWNSTREAM: LineageDirection
PROPOSAL_STATUS_UNSPECIFIED: ProposalStatus
PROPOSAL_STATUS_OPEN: ProposalStatus
PROPOSAL_STATUS_APPLIED: ProposalStatus
PROPOSAL_STATUS_EXPIRED: ProposalStatus
PROPOSAL_STATUS_SUPERSEDED: ProposalStatus

class SubmitEventRequest(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: _ledger_pb2.SignedEvent
    def __init__(self, event: _Optional[_Union[_ledger_pb2.SignedEvent, _Mapping]] = ...) -> None: ...

class SubmitEventResponse(_message.Message):
    __slots__ = ("event_id",)
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    event_id: bytes
    def __init__(self, event_id: _Optional[bytes] = ...) -> None: ...

class SubmitEventsRequest(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[_ledger_pb2.SignedEvent]
    def __init__(self, events: _Optional[_Iterable[_Union[_ledger_pb2.SignedEvent, _Mapping]]] = ...) -> None: ...

class SubmitResult(_message.Message):
    __slots__ = ("event_id", "accepted", "error_code", "error")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    event_id: bytes
    accepted: bool
    error_code: str
    error: str
    def __init__(self, event_id: _Optional[bytes] = ..., accepted: _Optional[bool] = ..., error_code: _Optional[str] = ..., error: _Optional[str] = ...) -> None: ...

class SubmitEventsResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[SubmitResult]
    def __init__(self, results: _Optional[_Iterable[_Union[SubmitResult, _Mapping]]] = ...) -> None: ...

class SubmitAndWaitRequest(_message.Message):
    __slots__ = ("event", "timeout_ms")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    event: _ledger_pb2.SignedEvent
    timeout_ms: int
    def __init__(self, event: _Optional[_Union[_ledger_pb2.SignedEvent, _Mapping]] = ..., timeout_ms: _Optional[int] = ...) -> None: ...

class Receipt(_message.Message):
    __slots__ = ("event_id", "height", "log_index", "proof", "checkpoint", "validator_chain")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    LOG_INDEX_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    VALIDATOR_CHAIN_FIELD_NUMBER: _ClassVar[int]
    event_id: bytes
    height: int
    log_index: int
    proof: _ledger_pb2.InclusionProof
    checkpoint: _ledger_pb2.Checkpoint
    validator_chain: _ledger_pb2.ValidatorChain
    def __init__(self, event_id: _Optional[bytes] = ..., height: _Optional[int] = ..., log_index: _Optional[int] = ..., proof: _Optional[_Union[_ledger_pb2.InclusionProof, _Mapping]] = ..., checkpoint: _Optional[_Union[_ledger_pb2.Checkpoint, _Mapping]] = ..., validator_chain: _Optional[_Union[_ledger_pb2.ValidatorChain, _Mapping]] = ...) -> None: ...

class GetEventRequest(_message.Message):
    __slots__ = ("event_id",)
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    event_id: bytes
    def __init__(self, event_id: _Optional[bytes] = ...) -> None: ...

class GetEventResponse(_message.Message):
    __slots__ = ("event", "event_id", "height", "log_index")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    LOG_INDEX_FIELD_NUMBER: _ClassVar[int]
    event: _ledger_pb2.SignedEvent
    event_id: bytes
    height: int
    log_index: int
    def __init__(self, event: _Optional[_Union[_ledger_pb2.SignedEvent, _Mapping]] = ..., event_id: _Optional[bytes] = ..., height: _Optional[int] = ..., log_index: _Optional[int] = ...) -> None: ...

class GetBlockRequest(_message.Message):
    __slots__ = ("height",)
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    height: int
    def __init__(self, height: _Optional[int] = ...) -> None: ...

class GetBlockResponse(_message.Message):
    __slots__ = ("block", "certificate")
    BLOCK_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    block: _ledger_pb2.Block
    certificate: _ledger_pb2.CommitCertificate
    def __init__(self, block: _Optional[_Union[_ledger_pb2.Block, _Mapping]] = ..., certificate: _Optional[_Union[_ledger_pb2.CommitCertificate, _Mapping]] = ...) -> None: ...

class GetCheckpointRequest(_message.Message):
    __slots__ = ("height",)
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    height: int
    def __init__(self, height: _Optional[int] = ...) -> None: ...

class GetInclusionProofRequest(_message.Message):
    __slots__ = ("event_id", "height")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    event_id: bytes
    height: int
    def __init__(self, event_id: _Optional[bytes] = ..., height: _Optional[int] = ...) -> None: ...

class GetInclusionProofResponse(_message.Message):
    __slots__ = ("proof", "checkpoint", "event", "validator_chain")
    PROOF_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    VALIDATOR_CHAIN_FIELD_NUMBER: _ClassVar[int]
    proof: _ledger_pb2.InclusionProof
    checkpoint: _ledger_pb2.Checkpoint
    event: _ledger_pb2.SignedEvent
    validator_chain: _ledger_pb2.ValidatorChain
    def __init__(self, proof: _Optional[_Union[_ledger_pb2.InclusionProof, _Mapping]] = ..., checkpoint: _Optional[_Union[_ledger_pb2.Checkpoint, _Mapping]] = ..., event: _Optional[_Union[_ledger_pb2.SignedEvent, _Mapping]] = ..., validator_chain: _Optional[_Union[_ledger_pb2.ValidatorChain, _Mapping]] = ...) -> None: ...

class GetConsistencyProofRequest(_message.Message):
    __slots__ = ("first_height", "second_height")
    FIRST_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    SECOND_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    first_height: int
    second_height: int
    def __init__(self, first_height: _Optional[int] = ..., second_height: _Optional[int] = ...) -> None: ...

class GetConsistencyProofResponse(_message.Message):
    __slots__ = ("proof", "first", "second", "validator_chain")
    PROOF_FIELD_NUMBER: _ClassVar[int]
    FIRST_FIELD_NUMBER: _ClassVar[int]
    SECOND_FIELD_NUMBER: _ClassVar[int]
    VALIDATOR_CHAIN_FIELD_NUMBER: _ClassVar[int]
    proof: _ledger_pb2.ConsistencyProof
    first: _ledger_pb2.Checkpoint
    second: _ledger_pb2.Checkpoint
    validator_chain: _ledger_pb2.ValidatorChain
    def __init__(self, proof: _Optional[_Union[_ledger_pb2.ConsistencyProof, _Mapping]] = ..., first: _Optional[_Union[_ledger_pb2.Checkpoint, _Mapping]] = ..., second: _Optional[_Union[_ledger_pb2.Checkpoint, _Mapping]] = ..., validator_chain: _Optional[_Union[_ledger_pb2.ValidatorChain, _Mapping]] = ...) -> None: ...

class GetAssetRequest(_message.Message):
    __slots__ = ("asset_id",)
    ASSET_ID_FIELD_NUMBER: _ClassVar[int]
    asset_id: str
    def __init__(self, asset_id: _Optional[str] = ...) -> None: ...

class GetAssetHistoryRequest(_message.Message):
    __slots__ = ("asset_id", "limit", "after_log_index", "has_cursor")
    ASSET_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    AFTER_LOG_INDEX_FIELD_NUMBER: _ClassVar[int]
    HAS_CURSOR_FIELD_NUMBER: _ClassVar[int]
    asset_id: str
    limit: int
    after_log_index: int
    has_cursor: bool
    def __init__(self, asset_id: _Optional[str] = ..., limit: _Optional[int] = ..., after_log_index: _Optional[int] = ..., has_cursor: _Optional[bool] = ...) -> None: ...

class HistoryEntry(_message.Message):
    __slots__ = ("event_id", "log_index", "height", "event")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    LOG_INDEX_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event_id: bytes
    log_index: int
    height: int
    event: _ledger_pb2.SignedEvent
    def __init__(self, event_id: _Optional[bytes] = ..., log_index: _Optional[int] = ..., height: _Optional[int] = ..., event: _Optional[_Union[_ledger_pb2.SignedEvent, _Mapping]] = ...) -> None: ...

class GetAssetHistoryResponse(_message.Message):
    __slots__ = ("entries", "more")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[HistoryEntry]
    more: bool
    def __init__(self, entries: _Optional[_Iterable[_Union[HistoryEntry, _Mapping]]] = ..., more: _Optional[bool] = ...) -> None: ...

class GetLineageRequest(_message.Message):
    __slots__ = ("asset_id", "direction", "depth", "max_nodes")
    ASSET_ID_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    MAX_NODES_FIELD_NUMBER: _ClassVar[int]
    asset_id: str
    direction: LineageDirection
    depth: int
    max_nodes: int
    def __init__(self, asset_id: _Optional[str] = ..., direction: _Optional[_Union[LineageDirection, str]] = ..., depth: _Optional[int] = ..., max_nodes: _Optional[int] = ...) -> None: ...

class LineageEdge(_message.Message):
    __slots__ = ("parent_id", "child_id")
    PARENT_ID_FIELD_NUMBER: _ClassVar[int]
    CHILD_ID_FIELD_NUMBER: _ClassVar[int]
    parent_id: str
    child_id: str
    def __init__(self, parent_id: _Optional[str] = ..., child_id: _Optional[str] = ...) -> None: ...

class GetLineageResponse(_message.Message):
    __slots__ = ("assets", "edges", "truncated", "redacted_asset_ids")
    ASSETS_FIELD_NUMBER: _ClassVar[int]
    EDGES_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    REDACTED_ASSET_IDS_FIELD_NUMBER: _ClassVar[int]
    assets: _containers.RepeatedCompositeFieldContainer[_state_pb2.AssetRecord]
    edges: _containers.RepeatedCompositeFieldContainer[LineageEdge]
    truncated: bool
    redacted_asset_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, assets: _Optional[_Iterable[_Union[_state_pb2.AssetRecord, _Mapping]]] = ..., edges: _Optional[_Iterable[_Union[LineageEdge, _Mapping]]] = ..., truncated: _Optional[bool] = ..., redacted_asset_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class GetGrantRequest(_message.Message):
    __slots__ = ("grant_id",)
    GRANT_ID_FIELD_NUMBER: _ClassVar[int]
    grant_id: str
    def __init__(self, grant_id: _Optional[str] = ...) -> None: ...

class GetOrderRequest(_message.Message):
    __slots__ = ("order_id",)
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    def __init__(self, order_id: _Optional[str] = ...) -> None: ...

class SubscribeBlocksRequest(_message.Message):
    __slots__ = ("from_height",)
    FROM_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    from_height: int
    def __init__(self, from_height: _Optional[int] = ...) -> None: ...

class GetMemberRequest(_message.Message):
    __slots__ = ("member_id",)
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    member_id: str
    def __init__(self, member_id: _Optional[str] = ...) -> None: ...

class GetProposalRequest(_message.Message):
    __slots__ = ("proposal_id",)
    PROPOSAL_ID_FIELD_NUMBER: _ClassVar[int]
    proposal_id: bytes
    def __init__(self, proposal_id: _Optional[bytes] = ...) -> None: ...

class GovernanceProposal(_message.Message):
    __slots__ = ("record", "kind", "status", "approvals_counted", "approvals_needed", "active_members", "threshold")
    RECORD_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    APPROVALS_COUNTED_FIELD_NUMBER: _ClassVar[int]
    APPROVALS_NEEDED_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_MEMBERS_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    record: _state_pb2.ProposalRecord
    kind: str
    status: ProposalStatus
    approvals_counted: int
    approvals_needed: int
    active_members: int
    threshold: _ledger_pb2.Threshold
    def __init__(self, record: _Optional[_Union[_state_pb2.ProposalRecord, _Mapping]] = ..., kind: _Optional[str] = ..., status: _Optional[_Union[ProposalStatus, str]] = ..., approvals_counted: _Optional[int] = ..., approvals_needed: _Optional[int] = ..., active_members: _Optional[int] = ..., threshold: _Optional[_Union[_ledger_pb2.Threshold, _Mapping]] = ...) -> None: ...

class ListProposalsRequest(_message.Message):
    __slots__ = ("open_only", "limit")
    OPEN_ONLY_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    open_only: bool
    limit: int
    def __init__(self, open_only: _Optional[bool] = ..., limit: _Optional[int] = ...) -> None: ...

class ListProposalsResponse(_message.Message):
    __slots__ = ("proposals", "more")
    PROPOSALS_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    proposals: _containers.RepeatedCompositeFieldContainer[GovernanceProposal]
    more: bool
    def __init__(self, proposals: _Optional[_Iterable[_Union[GovernanceProposal, _Mapping]]] = ..., more: _Optional[bool] = ...) -> None: ...

class ListOffersRequest(_message.Message):
    __slots__ = ("asset_id", "seller_id", "broker_id", "classification", "status", "price_min", "price_max", "currency", "title_words", "limit", "after_offer_id")
    ASSET_ID_FIELD_NUMBER: _ClassVar[int]
    SELLER_ID_FIELD_NUMBER: _ClassVar[int]
    BROKER_ID_FIELD_NUMBER: _ClassVar[int]
    CLASSIFICATION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PRICE_MIN_FIELD_NUMBER: _ClassVar[int]
    PRICE_MAX_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    TITLE_WORDS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    AFTER_OFFER_ID_FIELD_NUMBER: _ClassVar[int]
    asset_id: str
    seller_id: str
    broker_id: str
    classification: _ledger_pb2.Classification
    status: _state_pb2.OfferStatus
    price_min: int
    price_max: int
    currency: str
    title_words: str
    limit: int
    after_offer_id: str
    def __init__(self, asset_id: _Optional[str] = ..., seller_id: _Optional[str] = ..., broker_id: _Optional[str] = ..., classification: _Optional[_Union[_ledger_pb2.Classification, str]] = ..., status: _Optional[_Union[_state_pb2.OfferStatus, str]] = ..., price_min: _Optional[int] = ..., price_max: _Optional[int] = ..., currency: _Optional[str] = ..., title_words: _Optional[str] = ..., limit: _Optional[int] = ..., after_offer_id: _Optional[str] = ...) -> None: ...

class OfferView(_message.Message):
    __slots__ = ("record", "classification", "asset_name", "status")
    RECORD_FIELD_NUMBER: _ClassVar[int]
    CLASSIFICATION_FIELD_NUMBER: _ClassVar[int]
    ASSET_NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    record: _state_pb2.OfferRecord
    classification: _ledger_pb2.Classification
    asset_name: str
    status: _state_pb2.OfferStatus
    def __init__(self, record: _Optional[_Union[_state_pb2.OfferRecord, _Mapping]] = ..., classification: _Optional[_Union[_ledger_pb2.Classification, str]] = ..., asset_name: _Optional[str] = ..., status: _Optional[_Union[_state_pb2.OfferStatus, str]] = ...) -> None: ...

class ListOffersResponse(_message.Message):
    __slots__ = ("offers", "more", "next_after_offer_id")
    OFFERS_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    NEXT_AFTER_OFFER_ID_FIELD_NUMBER: _ClassVar[int]
    offers: _containers.RepeatedCompositeFieldContainer[OfferView]
    more: bool
    next_after_offer_id: str
    def __init__(self, offers: _Optional[_Iterable[_Union[OfferView, _Mapping]]] = ..., more: _Optional[bool] = ..., next_after_offer_id: _Optional[str] = ...) -> None: ...

class GetOfferRequest(_message.Message):
    __slots__ = ("offer_id",)
    OFFER_ID_FIELD_NUMBER: _ClassVar[int]
    offer_id: str
    def __init__(self, offer_id: _Optional[str] = ...) -> None: ...

class GetCaseRequest(_message.Message):
    __slots__ = ("case_id",)
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    def __init__(self, case_id: _Optional[str] = ...) -> None: ...

class TimelineEntry(_message.Message):
    __slots__ = ("event_id", "height", "log_index", "time_ms", "kind", "author_id", "summary")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    LOG_INDEX_FIELD_NUMBER: _ClassVar[int]
    TIME_MS_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_ID_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    event_id: bytes
    height: int
    log_index: int
    time_ms: int
    kind: str
    author_id: str
    summary: str
    def __init__(self, event_id: _Optional[bytes] = ..., height: _Optional[int] = ..., log_index: _Optional[int] = ..., time_ms: _Optional[int] = ..., kind: _Optional[str] = ..., author_id: _Optional[str] = ..., summary: _Optional[str] = ...) -> None: ...

class CaseView(_message.Message):
    __slots__ = ("record", "complaints", "timeline", "appeal_deadline_ms", "final")
    RECORD_FIELD_NUMBER: _ClassVar[int]
    COMPLAINTS_FIELD_NUMBER: _ClassVar[int]
    TIMELINE_FIELD_NUMBER: _ClassVar[int]
    APPEAL_DEADLINE_MS_FIELD_NUMBER: _ClassVar[int]
    FINAL_FIELD_NUMBER: _ClassVar[int]
    record: _state_pb2.CaseRecord
    complaints: _containers.RepeatedCompositeFieldContainer[_state_pb2.ComplaintRecord]
    timeline: _containers.RepeatedCompositeFieldContainer[TimelineEntry]
    appeal_deadline_ms: int
    final: bool
    def __init__(self, record: _Optional[_Union[_state_pb2.CaseRecord, _Mapping]] = ..., complaints: _Optional[_Iterable[_Union[_state_pb2.ComplaintRecord, _Mapping]]] = ..., timeline: _Optional[_Iterable[_Union[TimelineEntry, _Mapping]]] = ..., appeal_deadline_ms: _Optional[int] = ..., final: _Optional[bool] = ...) -> None: ...

class ListCasesRequest(_message.Message):
    __slots__ = ("member_id", "subject_id", "status", "limit", "after_case_id")
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    AFTER_CASE_ID_FIELD_NUMBER: _ClassVar[int]
    member_id: str
    subject_id: str
    status: _state_pb2.CaseStatus
    limit: int
    after_case_id: str
    def __init__(self, member_id: _Optional[str] = ..., subject_id: _Optional[str] = ..., status: _Optional[_Union[_state_pb2.CaseStatus, str]] = ..., limit: _Optional[int] = ..., after_case_id: _Optional[str] = ...) -> None: ...

class ListCasesResponse(_message.Message):
    __slots__ = ("cases", "more", "next_after_case_id")
    CASES_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    NEXT_AFTER_CASE_ID_FIELD_NUMBER: _ClassVar[int]
    cases: _containers.RepeatedCompositeFieldContainer[_state_pb2.CaseRecord]
    more: bool
    next_after_case_id: str
    def __init__(self, cases: _Optional[_Iterable[_Union[_state_pb2.CaseRecord, _Mapping]]] = ..., more: _Optional[bool] = ..., next_after_case_id: _Optional[str] = ...) -> None: ...

class GetAssessmentRequest(_message.Message):
    __slots__ = ("assessment_id",)
    ASSESSMENT_ID_FIELD_NUMBER: _ClassVar[int]
    assessment_id: str
    def __init__(self, assessment_id: _Optional[str] = ...) -> None: ...

class AssessmentView(_message.Message):
    __slots__ = ("record", "overdue_periods", "next_report_due_ms")
    RECORD_FIELD_NUMBER: _ClassVar[int]
    OVERDUE_PERIODS_FIELD_NUMBER: _ClassVar[int]
    NEXT_REPORT_DUE_MS_FIELD_NUMBER: _ClassVar[int]
    record: _state_pb2.AssessmentRecord
    overdue_periods: _containers.RepeatedScalarFieldContainer[int]
    next_report_due_ms: int
    def __init__(self, record: _Optional[_Union[_state_pb2.AssessmentRecord, _Mapping]] = ..., overdue_periods: _Optional[_Iterable[int]] = ..., next_report_due_ms: _Optional[int] = ...) -> None: ...

from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Classification(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CLASSIFICATION_UNSPECIFIED: _ClassVar[Classification]
    CLASSIFICATION_GENERAL: _ClassVar[Classification]
    CLASSIFICATION_IMPORTANT: _ClassVar[Classification]
    CLASSIFICATION_CORE: _ClassVar[Classification]

class Operation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OPERATION_UNSPECIFIED: _ClassVar[Operation]
    OPERATION_READ: _ClassVar[Operation]
    OPERATION_COMPUTE: _ClassVar[Operation]
    OPERATION_DERIVE: _ClassVar[Operation]
    OPERATION_SHARE: _ClassVar[Operation]

class Role(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLE_UNSPECIFIED: _ClassVar[Role]
    ROLE_AGENCY: _ClassVar[Role]
    ROLE_EXCHANGE: _ClassVar[Role]
    ROLE_REGULATOR: _ClassVar[Role]
    ROLE_AUDITOR: _ClassVar[Role]
    ROLE_BROKER: _ClassVar[Role]

class DisputeOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DISPUTE_OUTCOME_UNSPECIFIED: _ClassVar[DisputeOutcome]
    DISPUTE_OUTCOME_FOR_BUYER: _ClassVar[DisputeOutcome]
    DISPUTE_OUTCOME_FOR_SELLER: _ClassVar[DisputeOutcome]
    DISPUTE_OUTCOME_SETTLED_BY_AGREEMENT: _ClassVar[DisputeOutcome]

class ComplaintSubject(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COMPLAINT_SUBJECT_UNSPECIFIED: _ClassVar[ComplaintSubject]
    COMPLAINT_SUBJECT_ORDER: _ClassVar[ComplaintSubject]
    COMPLAINT_SUBJECT_OFFER: _ClassVar[ComplaintSubject]
    COMPLAINT_SUBJECT_ASSET: _ClassVar[ComplaintSubject]
    COMPLAINT_SUBJECT_GRANT: _ClassVar[ComplaintSubject]

class RulingOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RULING_OUTCOME_UNSPECIFIED: _ClassVar[RulingOutcome]
    RULING_OUTCOME_UPHELD: _ClassVar[RulingOutcome]
    RULING_OUTCOME_PARTLY_UPHELD: _ClassVar[RulingOutcome]
    RULING_OUTCOME_DISMISSED: _ClassVar[RulingOutcome]
    RULING_OUTCOME_SETTLED_BY_AGREEMENT: _ClassVar[RulingOutcome]

class AppealDecision(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    APPEAL_DECISION_UNSPECIFIED: _ClassVar[AppealDecision]
    APPEAL_DECISION_UPHELD: _ClassVar[AppealDecision]
    APPEAL_DECISION_OVERTURNED: _ClassVar[AppealDecision]
    APPEAL_DECISION_VARIED: _ClassVar[AppealDecision]

class VoteType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VOTE_TYPE_UNSPECIFIED: _ClassVar[VoteType]
    VOTE_TYPE_PREVOTE: _ClassVar[VoteType]
    VOTE_TYPE_PRECOMMIT: _ClassVar[VoteType]
CLASSIFICATION_UNSPECIFIED: Classification
CLASSIFICATION_GENERAL: Classification
CLASSIFICATION_IMPORTANT: Classification
CLASSIFICATION_CORE: Classification
OPERATION_UNSPECIFIED: Operation
OPERATION_READ: Operation
OPERATION_COMPUTE: Operation
OPERATION_DERIVE: Operation
OPERATION_SHARE: Operation
ROLE_UNSPECIFIED: Role
ROLE_AGENCY: Role
ROLE_EXCHANGE: Role
ROLE_REGULATOR: Role
ROLE_AUDITOR: Role
ROLE_BROKER: Role
DISPUTE_OUTCOME_UNSPECIFIED: DisputeOutcome
DISPUTE_OUTCOME_FOR_BUYER: DisputeOutcome
DISPUTE_OUTCOME_FOR_SELLER: DisputeOutcome
DISPUTE_OUTCOME_SETTLED_BY_AGREEMENT: DisputeOutcome
COMPLAINT_SUBJECT_UNSPECIFIED: ComplaintSubject
COMPLAINT_SUBJECT_ORDER: ComplaintSubject
COMPLAINT_SUBJECT_OFFER: ComplaintSubject
COMPLAINT_SUBJECT_ASSET: ComplaintSubject
COMPLAINT_SUBJECT_GRANT: ComplaintSubject
RULING_OUTCOME_UNSPECIFIED: RulingOutcome
RULING_OUTCOME_UPHELD: RulingOutcome
RULING_OUTCOME_PARTLY_UPHELD: RulingOutcome
RULING_OUTCOME_DISMISSED: RulingOutcome
RULING_OUTCOME_SETTLED_BY_AGREEMENT: RulingOutcome
APPEAL_DECISION_UNSPECIFIED: AppealDecision
APPEAL_DECISION_UPHELD: AppealDecision
APPEAL_DECISION_OVERTURNED: AppealDecision
APPEAL_DECISION_VARIED: AppealDecision
VOTE_TYPE_UNSPECIFIED: VoteType
VOTE_TYPE_PREVOTE: VoteType
VOTE_TYPE_PRECOMMIT: VoteType

class SignedEvent(_message.Message):
    __slots__ = ("body", "signature")
    BODY_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    body: bytes
    signature: bytes
    def __init__(self, body: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class Author(_message.Message):
    __slots__ = ("member_id", "key_id")
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    member_id: str
    key_id: bytes
    def __init__(self, member_id: _Optional[str] = ..., key_id: _Optional[bytes] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("chain_id", "author", "nonce", "timestamp_ms", "asset_registered", "asset_derived", "asset_shared", "asset_transferred", "asset_used", "certificate_issued", "certificate_revoked", "asset_retired", "grant_issued", "grant_revoked", "cross_border_approved", "offer_listed", "order_placed", "order_delivered", "order_settled", "dispute_opened", "dispute_resolved", "governance", "governance_proposed", "governance_approved", "broker_qualified", "mandate_granted", "mandate_revoked", "offer_delisted", "trading_suspended", "complaint_filed", "case_opened", "case_step_recorded", "case_ruled", "ruling_appealed", "appeal_decided", "security_assessed", "transfer_reported", "data_catalogued", "asset_reclassified")
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    ASSET_REGISTERED_FIELD_NUMBER: _ClassVar[int]
    ASSET_DERIVED_FIELD_NUMBER: _ClassVar[int]
    ASSET_SHARED_FIELD_NUMBER: _ClassVar[int]
    ASSET_TRANSFERRED_FIELD_NUMBER: _ClassVar[int]
    ASSET_USED_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_ISSUED_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_REVOKED_FIELD_NUMBER: _ClassVar[int]
    ASSET_RETIRED_FIELD_NUMBER: _ClassVar[int]
    GRANT_ISSUED_FIELD_NUMBER: _ClassVar[int]
    GRANT_REVOKED_FIELD_NUMBER: _ClassVar[int]
    CROSS_BORDER_APPROVED_FIELD_NUMBER: _ClassVar[int]
    OFFER_LISTED_FIELD_NUMBER: _ClassVar[int]
    ORDER_PLACED_FIELD_NUMBER: _ClassVar[int]
    ORDER_DELIVERED_FIELD_NUMBER: _ClassVar[int]
    ORDER_SETTLED_FIELD_NUMBER: _ClassVar[int]
    DISPUTE_OPENED_FIELD_NUMBER: _ClassVar[int]
    DISPUTE_RESOLVED_FIELD_NUMBER: _ClassVar[int]
    GOVERNANCE_FIELD_NUMBER: _ClassVar[int]
    GOVERNANCE_PROPOSED_FIELD_NUMBER: _ClassVar[int]
    GOVERNANCE_APPROVED_FIELD_NUMBER: _ClassVar[int]
    BROKER_QUALIFIED_FIELD_NUMBER: _ClassVar[int]
    MANDATE_GRANTED_FIELD_NUMBER: _ClassVar[int]
    MANDATE_REVOKED_FIELD_NUMBER: _ClassVar[int]
    OFFER_DELISTED_FIELD_NUMBER: _ClassVar[int]
    TRADING_SUSPENDED_FIELD_NUMBER: _ClassVar[int]
    COMPLAINT_FILED_FIELD_NUMBER: _ClassVar[int]
    CASE_OPENED_FIELD_NUMBER: _ClassVar[int]
    CASE_STEP_RECORDED_FIELD_NUMBER: _ClassVar[int]
    CASE_RULED_FIELD_NUMBER: _ClassVar[int]
    RULING_APPEALED_FIELD_NUMBER: _ClassVar[int]
    APPEAL_DECIDED_FIELD_NUMBER: _ClassVar[int]
    SECURITY_ASSESSED_FIELD_NUMBER: _ClassVar[int]
    TRANSFER_REPORTED_FIELD_NUMBER: _ClassVar[int]
    DATA_CATALOGUED_FIELD_NUMBER: _ClassVar[int]
    ASSET_RECLASSIFIED_FIELD_NUMBER: _ClassVar[int]
    chain_id: str
    author: Author
    nonce: int
    timestamp_ms: int
    asset_registered: AssetRegistered
    asset_derived: AssetDerived
    asset_shared: AssetShared
    asset_transferred: AssetTransferred
    asset_used: AssetUsed
    certificate_issued: CertificateIssued
    certificate_revoked: CertificateRevoked
    asset_retired: AssetRetired
    grant_issued: GrantIssued
    grant_revoked: GrantRevoked
    cross_border_approved: CrossBorderApproved
    offer_listed: OfferListed
    order_placed: OrderPlaced
    order_delivered: OrderDelivered
    order_settled: OrderSettled
    dispute_opened: DisputeOpened
    dispute_resolved: DisputeResolved
    governance: GovernanceAction
    governance_proposed: GovernanceProposed
    governance_approved: GovernanceApproved
    broker_qualified: BrokerQualified
    mandate_granted: MandateGranted
    mandate_revoked: MandateRevoked
    offer_delisted: OfferDelisted
    trading_suspended: TradingSuspended
    complaint_filed: ComplaintFiled
    case_opened: CaseOpened
    case_step_recorded: CaseStepRecorded
    case_ruled: CaseRuled
    ruling_appealed: RulingAppealed
    appeal_decided: AppealDecided
    security_assessed: SecurityAssessed
    transfer_reported: TransferReported
    data_catalogued: DataCatalogued
    asset_reclassified: AssetReclassified
    def __init__(self, chain_id: _Optional[str] = ..., author: _Optional[_Union[Author, _Mapping]] = ..., nonce: _Optional[int] = ..., timestamp_ms: _Optional[int] = ..., asset_registered: _Optional[_Union[AssetRegistered, _Mapping]] = ..., asset_derived: _Optional[_Union[AssetDerived, _Mapping]] = ..., asset_shared: _Optional[_Union[AssetShared, _Mapping]] = ..., asset_transferred: _Optional[_Union[AssetTransferred, _Mapping]] = ..., asset_used: _Optional[_Union[AssetUsed, _Mapping]] = ..., certificate_issued: _Optional[_Union[CertificateIssued, _Mapping]] = ..., certificate_revoked: _Optional[_Union[CertificateRevoked, _Mapping]] = ..., asset_retired: _Optional[_Union[AssetRetired, _Mapping]] = ..., grant_issued: _Optional[_Union[GrantIssued, _Mapping]] = ..., grant_revoked: _Optional[_Union[GrantRevoked, _Mapping]] = ..., cross_border_approved: _Optional[_Union[CrossBorderApproved, _Mapping]] = ..., offer_listed: _Optional[_Union[OfferListed, _Mapping]] = ..., order_placed: _Optional[_Union[OrderPlaced, _Mapping]] = ..., order_delivered: _Optional[_Union[OrderDelivered, _Mapping]] = ..., order_settled: _Optional[_Union[OrderSettled, _Mapping]] = ..., dispute_opened: _Optional[_Union[DisputeOpened, _Mapping]] = ..., dispute_resolved: _Optional[_Union[DisputeResolved, _Mapping]] = ..., governance: _Optional[_Union[GovernanceAction, _Mapping]] = ..., governance_proposed: _Optional[_Union[GovernanceProposed, _Mapping]] = ..., governance_approved: _Optional[_Union[GovernanceApproved, _Mapping]] = ..., broker_qualified: _Optional[_Union[BrokerQualified, _Mapping]] = ..., mandate_granted: _Optional[_Union[MandateGranted, _Mapping]] = ..., mandate_revoked: _Optional[_Union[MandateRevoked, _Mapping]] = ..., offer_delisted: _Optional[_Union[OfferDelisted, _Mapping]] = ..., trading_suspended: _Optional[_Union[TradingSuspended, _Mapping]] = ..., complaint_filed: _Optional[_Union[ComplaintFiled, _Mapping]] = ..., case_opened: _Optional[_Union[CaseOpened, _Mapping]] = ..., case_step_recorded: _Optional[_Union[CaseStepRecorded, _Mapping]] = ..., case_ruled: _Optional[_Union[CaseRuled, _Mapping]] = ..., ruling_appealed: _Optional[_Union[RulingAppealed, _Mapping]] = ..., appeal_decided: _Optional[_Union[AppealDecided, _Mapping]] = ..., security_assessed: _Optional[_Union[SecurityAssessed, _Mapping]] = ..., transfer_reported: _Optional[_Union[TransferReported, _Mapping]] = ..., data_catalogued: _Optional[_Union[DataCatalogued, _Mapping]] = ..., asset_reclassified: _Optional[_Union[AssetReclassified, _Mapping]] = ...) -> None: ...

class AssetRegistered(_message.Message):
    __slots__ = ("asset_id", "content_digest", "classification", "name", "schema_uri", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ASSET_ID_FIELD_NUMBER: _ClassVar[int]
    CONTENT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    CLASSIFICATION_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_URI_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    asset_id: str
    content_digest: bytes
    classification: Classification
    name: str
    schema_uri: str
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, asset_id: _Optional[str] = ..., content_digest: _Optional[bytes] = ..., classification: _Optional[_Union[Classification, str]] = ..., name: _Optional[str] = ..., schema_uri: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class AssetDerived(_message.Message):
    __slots__ = ("asset_id", "parent_ids", "activity", "content_digest", "classification", "name", "metadata", "grant_ids")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ASSET_ID_FIELD_NUMBER: _ClassVar[int]
    PARENT_IDS_FIELD_NUMBER: _ClassVar[int]
    ACTIVITY_FIELD_NUMBER: _ClassVar[int]
    CONTENT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    CLASSIFICATION_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    GRANT_IDS_FIELD_NUMBER: _ClassVar[int]
    asset_id: str
    parent_ids: _containers.RepeatedScalarFieldContainer[str]
    activity: str
    content_digest: bytes
    classification: Classification
    name: str
    metadata: _containers.ScalarMap[str, str]
    grant_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, asset_id: _Optional[str] = ..., parent_ids: _Optional[_Iterable[str]] = ..., activity: _Optional[str] = ..., content_digest: _Optional[bytes] = ..., classification: _Optional[_Union[Classification, str]] = ..., name: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ..., grant_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class AssetShared(_message.Message):
    __slots__ = ("asset_id", "recipient_id", "grant_id", "destination_region", "approval_id", "assessment_id", "purpose")
    ASSET_ID_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_ID_FIELD_NUMBER: _ClassVar[int]
    GRANT_ID_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_REGION_FIELD_NUMBER: _ClassVar[int]
    APPROVAL_ID_FIELD_NUMBER: _ClassVar[int]
    ASSESSMENT_ID_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    asset_id: str
    recipient_id: str
    grant_id: str
    destination_region: str
    approval_id: str
    assessment_id: str
    purpose: str
    def __init__(self, asset_id: _Optional[str] = ..., recipient_id: _Optional[str] = ..., grant_id: _Optional[str] = ..., destination_region: _Optional[str] = ..., approval_id: _Optional[str] = ..., assessment_id: _Optional[str] = ..., purpose: _Optional[str] = ...) -> None: ...

class AssetTransferred(_message.Message):
    __slots__ = ("asset_id", "new_owner_id", "destination_region", "approval_id", "assessment_id", "purpose")
    ASSET_ID_FIELD_NUMBER: _ClassVar[int]
    NEW_OWNER_ID_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_REGION_FIELD_NUMBER: _ClassVar[int]
    APPROVAL_ID_FIELD_NUMBER: _ClassVar[int]
    ASSESSMENT_ID_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    asset_id: str
    new_owner_id: str
    destination_region: str
    approval_id: str
    assessment_id: str
    purpose: str
    def __init__(self, asset_id: _Optional[str] = ..., new_owner_id: _Optional[str] = ..., destination_region: _Optional[str] = ..., approval_id: _Optional[str] = ..., assessment_id: _Optional[str] = ..., purpose: _Optional[str] = ...) -> None: ...

class AssetUsed(_message.Message):
    __slots__ = ("asset_id", "grant_id", "purpose", "operation")
    ASSET_ID_FIELD_NUMBER: _ClassVar[int]
    GRANT_ID_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    asset_id: str
    grant_id: str
    purpose: str
    operation: Operation
    def __init__(self, asset_id: _Optional[str] = ..., grant_id: _Optional[str] = ..., purpose: _Optional[str] = ..., operation: _Optional[_Union[Operation, str]] = ...) -> None: ...

class CertificateIssued(_message.Message):
    __slots__ = ("certificate_id", "asset_id", "scope", "expires_at_ms")
    CERTIFICATE_ID_FIELD_NUMBER: _ClassVar[int]
    ASSET_ID_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_MS_FIELD_NUMBER: _ClassVar[int]
    certificate_id: str
    asset_id: str
    scope: str
    expires_at_ms: int
    def __init__(self, certificate_id: _Optional[str] = ..., asset_id: _Optional[str] = ..., scope: _Optional[str] = ..., expires_at_ms: _Optional[int] = ...) -> None: ...

class CertificateRevoked(_message.Message):
    __slots__ = ("certificate_id", "reason")
    CERTIFICATE_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    certificate_id: str
    reason: str
    def __init__(self, certificate_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class AssetRetired(_message.Message):
    __slots__ = ("asset_id", "reason")
    ASSET_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    asset_id: str
    reason: str
    def __init__(self, asset_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class GrantIssued(_message.Message):
    __slots__ = ("grant_id", "asset_id", "grantee_id", "purposes", "operations", "expires_at_ms", "no_cross_border")
    GRANT_ID_FIELD_NUMBER: _ClassVar[int]
    ASSET_ID_FIELD_NUMBER: _ClassVar[int]
    GRANTEE_ID_FIELD_NUMBER: _ClassVar[int]
    PURPOSES_FIELD_NUMBER: _ClassVar[int]
    OPERATIONS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_MS_FIELD_NUMBER: _ClassVar[int]
    NO_CROSS_BORDER_FIELD_NUMBER: _ClassVar[int]
    grant_id: str
    asset_id: str
    grantee_id: str
    purposes: _containers.RepeatedScalarFieldContainer[str]
    operations: _containers.RepeatedScalarFieldContainer[Operation]
    expires_at_ms: int
    no_cross_border: bool
    def __init__(self, grant_id: _Optional[str] = ..., asset_id: _Optional[str] = ..., grantee_id: _Optional[str] = ..., purposes: _Optional[_Iterable[str]] = ..., operations: _Optional[_Iterable[_Union[Operation, str]]] = ..., expires_at_ms: _Optional[int] = ..., no_cross_border: _Optional[bool] = ...) -> None: ...

class GrantRevoked(_message.Message):
    __slots__ = ("grant_id", "reason")
    GRANT_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    grant_id: str
    reason: str
    def __init__(self, grant_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class CrossBorderApproved(_message.Message):
    __slots__ = ("approval_id", "asset_id", "recipient_id", "destination_region", "expires_at_ms")
    APPROVAL_ID_FIELD_NUMBER: _ClassVar[int]
    ASSET_ID_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_ID_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_REGION_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_MS_FIELD_NUMBER: _ClassVar[int]
    approval_id: str
    asset_id: str
    recipient_id: str
    destination_region: str
    expires_at_ms: int
    def __init__(self, approval_id: _Optional[str] = ..., asset_id: _Optional[str] = ..., recipient_id: _Optional[str] = ..., destination_region: _Optional[str] = ..., expires_at_ms: _Optional[int] = ...) -> None: ...

class OfferListed(_message.Message):
    __slots__ = ("offer_id", "asset_id", "seller_id", "price", "currency", "terms", "title", "mandate_id", "exchange_id")
    OFFER_ID_FIELD_NUMBER: _ClassVar[int]
    ASSET_ID_FIELD_NUMBER: _ClassVar[int]
    SELLER_ID_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    TERMS_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    MANDATE_ID_FIELD_NUMBER: _ClassVar[int]
    EXCHANGE_ID_FIELD_NUMBER: _ClassVar[int]
    offer_id: str
    asset_id: str
    seller_id: str
    price: int
    currency: str
    terms: str
    title: str
    mandate_id: str
    exchange_id: str
    def __init__(self, offer_id: _Optional[str] = ..., asset_id: _Optional[str] = ..., seller_id: _Optional[str] = ..., price: _Optional[int] = ..., currency: _Optional[str] = ..., terms: _Optional[str] = ..., title: _Optional[str] = ..., mandate_id: _Optional[str] = ..., exchange_id: _Optional[str] = ...) -> None: ...

class OrderPlaced(_message.Message):
    __slots__ = ("order_id", "offer_id")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    OFFER_ID_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    offer_id: str
    def __init__(self, order_id: _Optional[str] = ..., offer_id: _Optional[str] = ...) -> None: ...

class OrderDelivered(_message.Message):
    __slots__ = ("order_id", "delivery_digest")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_DIGEST_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    delivery_digest: bytes
    def __init__(self, order_id: _Optional[str] = ..., delivery_digest: _Optional[bytes] = ...) -> None: ...

class OrderSettled(_message.Message):
    __slots__ = ("order_id", "settlement_reference")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    SETTLEMENT_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    settlement_reference: str
    def __init__(self, order_id: _Optional[str] = ..., settlement_reference: _Optional[str] = ...) -> None: ...

class DisputeOpened(_message.Message):
    __slots__ = ("dispute_id", "order_id", "reason")
    DISPUTE_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    dispute_id: str
    order_id: str
    reason: str
    def __init__(self, dispute_id: _Optional[str] = ..., order_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class DisputeResolved(_message.Message):
    __slots__ = ("dispute_id", "outcome", "resolution")
    DISPUTE_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    dispute_id: str
    outcome: DisputeOutcome
    resolution: str
    def __init__(self, dispute_id: _Optional[str] = ..., outcome: _Optional[_Union[DisputeOutcome, str]] = ..., resolution: _Optional[str] = ...) -> None: ...

class BrokerQualified(_message.Message):
    __slots__ = ("qualification_id", "broker_id", "scope", "expires_at_ms")
    QUALIFICATION_ID_FIELD_NUMBER: _ClassVar[int]
    BROKER_ID_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_MS_FIELD_NUMBER: _ClassVar[int]
    qualification_id: str
    broker_id: str
    scope: str
    expires_at_ms: int
    def __init__(self, qualification_id: _Optional[str] = ..., broker_id: _Optional[str] = ..., scope: _Optional[str] = ..., expires_at_ms: _Optional[int] = ...) -> None: ...

class MandateGranted(_message.Message):
    __slots__ = ("mandate_id", "broker_id", "asset_ids", "expires_at_ms", "price_floor")
    MANDATE_ID_FIELD_NUMBER: _ClassVar[int]
    BROKER_ID_FIELD_NUMBER: _ClassVar[int]
    ASSET_IDS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_MS_FIELD_NUMBER: _ClassVar[int]
    PRICE_FLOOR_FIELD_NUMBER: _ClassVar[int]
    mandate_id: str
    broker_id: str
    asset_ids: _containers.RepeatedScalarFieldContainer[str]
    expires_at_ms: int
    price_floor: int
    def __init__(self, mandate_id: _Optional[str] = ..., broker_id: _Optional[str] = ..., asset_ids: _Optional[_Iterable[str]] = ..., expires_at_ms: _Optional[int] = ..., price_floor: _Optional[int] = ...) -> None: ...

class MandateRevoked(_message.Message):
    __slots__ = ("mandate_id", "reason")
    MANDATE_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    mandate_id: str
    reason: str
    def __init__(self, mandate_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class OfferDelisted(_message.Message):
    __slots__ = ("offer_id", "reason")
    OFFER_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    offer_id: str
    reason: str
    def __init__(self, offer_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class TradingSuspended(_message.Message):
    __slots__ = ("suspension_id", "member_id", "until_ms", "reason")
    SUSPENSION_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    UNTIL_MS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    suspension_id: str
    member_id: str
    until_ms: int
    reason: str
    def __init__(self, suspension_id: _Optional[str] = ..., member_id: _Optional[str] = ..., until_ms: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class ComplaintFiled(_message.Message):
    __slots__ = ("complaint_id", "subject_kind", "subject_id", "respondent_id", "statement_digest", "evidence_digests", "category")
    COMPLAINT_ID_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_KIND_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    RESPONDENT_ID_FIELD_NUMBER: _ClassVar[int]
    STATEMENT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_DIGESTS_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    complaint_id: str
    subject_kind: ComplaintSubject
    subject_id: str
    respondent_id: str
    statement_digest: bytes
    evidence_digests: _containers.RepeatedScalarFieldContainer[bytes]
    category: str
    def __init__(self, complaint_id: _Optional[str] = ..., subject_kind: _Optional[_Union[ComplaintSubject, str]] = ..., subject_id: _Optional[str] = ..., respondent_id: _Optional[str] = ..., statement_digest: _Optional[bytes] = ..., evidence_digests: _Optional[_Iterable[bytes]] = ..., category: _Optional[str] = ...) -> None: ...

class CaseOpened(_message.Message):
    __slots__ = ("case_id", "complaint_ids", "summary")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    COMPLAINT_IDS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    complaint_ids: _containers.RepeatedScalarFieldContainer[str]
    summary: str
    def __init__(self, case_id: _Optional[str] = ..., complaint_ids: _Optional[_Iterable[str]] = ..., summary: _Optional[str] = ...) -> None: ...

class CaseStepRecorded(_message.Message):
    __slots__ = ("case_id", "step", "note", "evidence_digests")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_DIGESTS_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    step: str
    note: str
    evidence_digests: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, case_id: _Optional[str] = ..., step: _Optional[str] = ..., note: _Optional[str] = ..., evidence_digests: _Optional[_Iterable[bytes]] = ...) -> None: ...

class Remedy(_message.Message):
    __slots__ = ("refund", "delist", "revoke_grant", "suspend", "warning")
    REFUND_FIELD_NUMBER: _ClassVar[int]
    DELIST_FIELD_NUMBER: _ClassVar[int]
    REVOKE_GRANT_FIELD_NUMBER: _ClassVar[int]
    SUSPEND_FIELD_NUMBER: _ClassVar[int]
    WARNING_FIELD_NUMBER: _ClassVar[int]
    refund: Refund
    delist: DelistOffer
    revoke_grant: RevokeGrant
    suspend: SuspendMember
    warning: Warning
    def __init__(self, refund: _Optional[_Union[Refund, _Mapping]] = ..., delist: _Optional[_Union[DelistOffer, _Mapping]] = ..., revoke_grant: _Optional[_Union[RevokeGrant, _Mapping]] = ..., suspend: _Optional[_Union[SuspendMember, _Mapping]] = ..., warning: _Optional[_Union[Warning, _Mapping]] = ...) -> None: ...

class Refund(_message.Message):
    __slots__ = ("order_id", "amount", "currency", "reference")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    amount: int
    currency: str
    reference: str
    def __init__(self, order_id: _Optional[str] = ..., amount: _Optional[int] = ..., currency: _Optional[str] = ..., reference: _Optional[str] = ...) -> None: ...

class DelistOffer(_message.Message):
    __slots__ = ("offer_id",)
    OFFER_ID_FIELD_NUMBER: _ClassVar[int]
    offer_id: str
    def __init__(self, offer_id: _Optional[str] = ...) -> None: ...

class RevokeGrant(_message.Message):
    __slots__ = ("grant_id",)
    GRANT_ID_FIELD_NUMBER: _ClassVar[int]
    grant_id: str
    def __init__(self, grant_id: _Optional[str] = ...) -> None: ...

class SuspendMember(_message.Message):
    __slots__ = ("member_id", "until_ms")
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    UNTIL_MS_FIELD_NUMBER: _ClassVar[int]
    member_id: str
    until_ms: int
    def __init__(self, member_id: _Optional[str] = ..., until_ms: _Optional[int] = ...) -> None: ...

class Warning(_message.Message):
    __slots__ = ("member_id", "text")
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    member_id: str
    text: str
    def __init__(self, member_id: _Optional[str] = ..., text: _Optional[str] = ...) -> None: ...

class CaseRuled(_message.Message):
    __slots__ = ("case_id", "outcome", "findings", "decision_digest", "remedies")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    FINDINGS_FIELD_NUMBER: _ClassVar[int]
    DECISION_DIGEST_FIELD_NUMBER: _ClassVar[int]
    REMEDIES_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    outcome: RulingOutcome
    findings: str
    decision_digest: bytes
    remedies: _containers.RepeatedCompositeFieldContainer[Remedy]
    def __init__(self, case_id: _Optional[str] = ..., outcome: _Optional[_Union[RulingOutcome, str]] = ..., findings: _Optional[str] = ..., decision_digest: _Optional[bytes] = ..., remedies: _Optional[_Iterable[_Union[Remedy, _Mapping]]] = ...) -> None: ...

class RulingAppealed(_message.Message):
    __slots__ = ("case_id", "grounds_digest", "grounds")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    GROUNDS_DIGEST_FIELD_NUMBER: _ClassVar[int]
    GROUNDS_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    grounds_digest: bytes
    grounds: str
    def __init__(self, case_id: _Optional[str] = ..., grounds_digest: _Optional[bytes] = ..., grounds: _Optional[str] = ...) -> None: ...

class AppealDecided(_message.Message):
    __slots__ = ("case_id", "decision", "reasons", "remedies")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    REMEDIES_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    decision: AppealDecision
    reasons: str
    remedies: _containers.RepeatedCompositeFieldContainer[Remedy]
    def __init__(self, case_id: _Optional[str] = ..., decision: _Optional[_Union[AppealDecision, str]] = ..., reasons: _Optional[str] = ..., remedies: _Optional[_Iterable[_Union[Remedy, _Mapping]]] = ...) -> None: ...

class SecurityAssessed(_message.Message):
    __slots__ = ("assessment_id", "asset_ids", "recipient_id", "destination_region", "purposes", "expires_at_ms", "report_interval_ms", "report_digest")
    ASSESSMENT_ID_FIELD_NUMBER: _ClassVar[int]
    ASSET_IDS_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_ID_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_REGION_FIELD_NUMBER: _ClassVar[int]
    PURPOSES_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_MS_FIELD_NUMBER: _ClassVar[int]
    REPORT_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    REPORT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    assessment_id: str
    asset_ids: _containers.RepeatedScalarFieldContainer[str]
    recipient_id: str
    destination_region: str
    purposes: _containers.RepeatedScalarFieldContainer[str]
    expires_at_ms: int
    report_interval_ms: int
    report_digest: bytes
    def __init__(self, assessment_id: _Optional[str] = ..., asset_ids: _Optional[_Iterable[str]] = ..., recipient_id: _Optional[str] = ..., destination_region: _Optional[str] = ..., purposes: _Optional[_Iterable[str]] = ..., expires_at_ms: _Optional[int] = ..., report_interval_ms: _Optional[int] = ..., report_digest: _Optional[bytes] = ...) -> None: ...

class TransferReported(_message.Message):
    __slots__ = ("report_id", "assessment_id", "period", "report_digest", "summary")
    REPORT_ID_FIELD_NUMBER: _ClassVar[int]
    ASSESSMENT_ID_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    REPORT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    report_id: str
    assessment_id: str
    period: int
    report_digest: bytes
    summary: str
    def __init__(self, report_id: _Optional[str] = ..., assessment_id: _Optional[str] = ..., period: _Optional[int] = ..., report_digest: _Optional[bytes] = ..., summary: _Optional[str] = ...) -> None: ...

class DataCatalogued(_message.Message):
    __slots__ = ("entry_id", "asset_id", "id_prefix", "minimum", "reason")
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    ASSET_ID_FIELD_NUMBER: _ClassVar[int]
    ID_PREFIX_FIELD_NUMBER: _ClassVar[int]
    MINIMUM_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    entry_id: str
    asset_id: str
    id_prefix: str
    minimum: Classification
    reason: str
    def __init__(self, entry_id: _Optional[str] = ..., asset_id: _Optional[str] = ..., id_prefix: _Optional[str] = ..., minimum: _Optional[_Union[Classification, str]] = ..., reason: _Optional[str] = ...) -> None: ...

class AssetReclassified(_message.Message):
    __slots__ = ("asset_id", "classification", "reason")
    ASSET_ID_FIELD_NUMBER: _ClassVar[int]
    CLASSIFICATION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    asset_id: str
    classification: Classification
    reason: str
    def __init__(self, asset_id: _Optional[str] = ..., classification: _Optional[_Union[Classification, str]] = ..., reason: _Optional[str] = ...) -> None: ...

class GovernanceAction(_message.Message):
    __slots__ = ("change", "approvals")
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    APPROVALS_FIELD_NUMBER: _ClassVar[int]
    change: bytes
    approvals: _containers.RepeatedCompositeFieldContainer[Approval]
    def __init__(self, change: _Optional[bytes] = ..., approvals: _Optional[_Iterable[_Union[Approval, _Mapping]]] = ...) -> None: ...

class Approval(_message.Message):
    __slots__ = ("approver", "signature")
    APPROVER_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    approver: Author
    signature: bytes
    def __init__(self, approver: _Optional[_Union[Author, _Mapping]] = ..., signature: _Optional[bytes] = ...) -> None: ...

class GovernanceProposed(_message.Message):
    __slots__ = ("change",)
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    change: bytes
    def __init__(self, change: _Optional[bytes] = ...) -> None: ...

class GovernanceApproved(_message.Message):
    __slots__ = ("proposal_id",)
    PROPOSAL_ID_FIELD_NUMBER: _ClassVar[int]
    proposal_id: bytes
    def __init__(self, proposal_id: _Optional[bytes] = ...) -> None: ...

class GovernanceChange(_message.Message):
    __slots__ = ("proposal_nonce", "member_added", "member_removed", "key_rotated", "role_changed", "validator_added", "validator_removed", "key_revoked", "thresholds_changed", "tls_ca_replaced")
    PROPOSAL_NONCE_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ADDED_FIELD_NUMBER: _ClassVar[int]
    MEMBER_REMOVED_FIELD_NUMBER: _ClassVar[int]
    KEY_ROTATED_FIELD_NUMBER: _ClassVar[int]
    ROLE_CHANGED_FIELD_NUMBER: _ClassVar[int]
    VALIDATOR_ADDED_FIELD_NUMBER: _ClassVar[int]
    VALIDATOR_REMOVED_FIELD_NUMBER: _ClassVar[int]
    KEY_REVOKED_FIELD_NUMBER: _ClassVar[int]
    THRESHOLDS_CHANGED_FIELD_NUMBER: _ClassVar[int]
    TLS_CA_REPLACED_FIELD_NUMBER: _ClassVar[int]
    proposal_nonce: int
    member_added: MemberAdded
    member_removed: MemberRemoved
    key_rotated: KeyRotated
    role_changed: RoleChanged
    validator_added: ValidatorAdded
    validator_removed: ValidatorRemoved
    key_revoked: KeyRevoked
    thresholds_changed: ThresholdsChanged
    tls_ca_replaced: TlsCaReplaced
    def __init__(self, proposal_nonce: _Optional[int] = ..., member_added: _Optional[_Union[MemberAdded, _Mapping]] = ..., member_removed: _Optional[_Union[MemberRemoved, _Mapping]] = ..., key_rotated: _Optional[_Union[KeyRotated, _Mapping]] = ..., role_changed: _Optional[_Union[RoleChanged, _Mapping]] = ..., validator_added: _Optional[_Union[ValidatorAdded, _Mapping]] = ..., validator_removed: _Optional[_Union[ValidatorRemoved, _Mapping]] = ..., key_revoked: _Optional[_Union[KeyRevoked, _Mapping]] = ..., thresholds_changed: _Optional[_Union[ThresholdsChanged, _Mapping]] = ..., tls_ca_replaced: _Optional[_Union[TlsCaReplaced, _Mapping]] = ...) -> None: ...

class MemberAdded(_message.Message):
    __slots__ = ("member_id", "name", "role", "public_key")
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    member_id: str
    name: str
    role: Role
    public_key: bytes
    def __init__(self, member_id: _Optional[str] = ..., name: _Optional[str] = ..., role: _Optional[_Union[Role, str]] = ..., public_key: _Optional[bytes] = ...) -> None: ...

class MemberRemoved(_message.Message):
    __slots__ = ("member_id",)
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    member_id: str
    def __init__(self, member_id: _Optional[str] = ...) -> None: ...

class KeyRotated(_message.Message):
    __slots__ = ("member_id", "new_public_key", "retired_key_id")
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    NEW_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    RETIRED_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    member_id: str
    new_public_key: bytes
    retired_key_id: bytes
    def __init__(self, member_id: _Optional[str] = ..., new_public_key: _Optional[bytes] = ..., retired_key_id: _Optional[bytes] = ...) -> None: ...

class RoleChanged(_message.Message):
    __slots__ = ("member_id", "role")
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    member_id: str
    role: Role
    def __init__(self, member_id: _Optional[str] = ..., role: _Optional[_Union[Role, str]] = ...) -> None: ...

class ValidatorAdded(_message.Message):
    __slots__ = ("validator_id", "public_key", "tls_ca")
    VALIDATOR_ID_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    TLS_CA_FIELD_NUMBER: _ClassVar[int]
    validator_id: str
    public_key: bytes
    tls_ca: bytes
    def __init__(self, validator_id: _Optional[str] = ..., public_key: _Optional[bytes] = ..., tls_ca: _Optional[bytes] = ...) -> None: ...

class TlsCaReplaced(_message.Message):
    __slots__ = ("validator_id", "tls_ca")
    VALIDATOR_ID_FIELD_NUMBER: _ClassVar[int]
    TLS_CA_FIELD_NUMBER: _ClassVar[int]
    validator_id: str
    tls_ca: bytes
    def __init__(self, validator_id: _Optional[str] = ..., tls_ca: _Optional[bytes] = ...) -> None: ...

class ValidatorRemoved(_message.Message):
    __slots__ = ("validator_id",)
    VALIDATOR_ID_FIELD_NUMBER: _ClassVar[int]
    validator_id: str
    def __init__(self, validator_id: _Optional[str] = ...) -> None: ...

class KeyRevoked(_message.Message):
    __slots__ = ("member_id", "key_id", "from_height", "reason")
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    member_id: str
    key_id: bytes
    from_height: int
    reason: str
    def __init__(self, member_id: _Optional[str] = ..., key_id: _Optional[bytes] = ..., from_height: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class Threshold(_message.Message):
    __slots__ = ("numerator", "denominator")
    NUMERATOR_FIELD_NUMBER: _ClassVar[int]
    DENOMINATOR_FIELD_NUMBER: _ClassVar[int]
    numerator: int
    denominator: int
    def __init__(self, numerator: _Optional[int] = ..., denominator: _Optional[int] = ...) -> None: ...

class Thresholds(_message.Message):
    __slots__ = ("default_threshold", "by_kind")
    class ByKindEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Threshold
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Threshold, _Mapping]] = ...) -> None: ...
    DEFAULT_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    BY_KIND_FIELD_NUMBER: _ClassVar[int]
    default_threshold: Threshold
    by_kind: _containers.MessageMap[str, Threshold]
    def __init__(self, default_threshold: _Optional[_Union[Threshold, _Mapping]] = ..., by_kind: _Optional[_Mapping[str, Threshold]] = ...) -> None: ...

class ThresholdsChanged(_message.Message):
    __slots__ = ("thresholds",)
    THRESHOLDS_FIELD_NUMBER: _ClassVar[int]
    thresholds: Thresholds
    def __init__(self, thresholds: _Optional[_Union[Thresholds, _Mapping]] = ...) -> None: ...

class BlockHeader(_message.Message):
    __slots__ = ("chain_id", "height", "previous_block_id", "time_ms", "proposer_id", "events_root", "event_count", "log_size", "log_root", "state_root", "validators_hash", "last_commit_hash", "evidence_hash")
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_BLOCK_ID_FIELD_NUMBER: _ClassVar[int]
    TIME_MS_FIELD_NUMBER: _ClassVar[int]
    PROPOSER_ID_FIELD_NUMBER: _ClassVar[int]
    EVENTS_ROOT_FIELD_NUMBER: _ClassVar[int]
    EVENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    LOG_SIZE_FIELD_NUMBER: _ClassVar[int]
    LOG_ROOT_FIELD_NUMBER: _ClassVar[int]
    STATE_ROOT_FIELD_NUMBER: _ClassVar[int]
    VALIDATORS_HASH_FIELD_NUMBER: _ClassVar[int]
    LAST_COMMIT_HASH_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_HASH_FIELD_NUMBER: _ClassVar[int]
    chain_id: str
    height: int
    previous_block_id: bytes
    time_ms: int
    proposer_id: str
    events_root: bytes
    event_count: int
    log_size: int
    log_root: bytes
    state_root: bytes
    validators_hash: bytes
    last_commit_hash: bytes
    evidence_hash: bytes
    def __init__(self, chain_id: _Optional[str] = ..., height: _Optional[int] = ..., previous_block_id: _Optional[bytes] = ..., time_ms: _Optional[int] = ..., proposer_id: _Optional[str] = ..., events_root: _Optional[bytes] = ..., event_count: _Optional[int] = ..., log_size: _Optional[int] = ..., log_root: _Optional[bytes] = ..., state_root: _Optional[bytes] = ..., validators_hash: _Optional[bytes] = ..., last_commit_hash: _Optional[bytes] = ..., evidence_hash: _Optional[bytes] = ...) -> None: ...

class Block(_message.Message):
    __slots__ = ("header", "events", "last_commit", "evidence")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    LAST_COMMIT_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    header: bytes
    events: _containers.RepeatedCompositeFieldContainer[SignedEvent]
    last_commit: CommitCertificate
    evidence: _containers.RepeatedCompositeFieldContainer[Evidence]
    def __init__(self, header: _Optional[bytes] = ..., events: _Optional[_Iterable[_Union[SignedEvent, _Mapping]]] = ..., last_commit: _Optional[_Union[CommitCertificate, _Mapping]] = ..., evidence: _Optional[_Iterable[_Union[Evidence, _Mapping]]] = ...) -> None: ...

class CommitSignature(_message.Message):
    __slots__ = ("validator_id", "signature")
    VALIDATOR_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    validator_id: str
    signature: bytes
    def __init__(self, validator_id: _Optional[str] = ..., signature: _Optional[bytes] = ...) -> None: ...

class CommitCertificate(_message.Message):
    __slots__ = ("height", "round", "block_id", "signatures")
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    BLOCK_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNATURES_FIELD_NUMBER: _ClassVar[int]
    height: int
    round: int
    block_id: bytes
    signatures: _containers.RepeatedCompositeFieldContainer[CommitSignature]
    def __init__(self, height: _Optional[int] = ..., round: _Optional[int] = ..., block_id: _Optional[bytes] = ..., signatures: _Optional[_Iterable[_Union[CommitSignature, _Mapping]]] = ...) -> None: ...

class Vote(_message.Message):
    __slots__ = ("type", "height", "round", "block_id", "validator_id", "signature")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    BLOCK_ID_FIELD_NUMBER: _ClassVar[int]
    VALIDATOR_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    type: VoteType
    height: int
    round: int
    block_id: bytes
    validator_id: str
    signature: bytes
    def __init__(self, type: _Optional[_Union[VoteType, str]] = ..., height: _Optional[int] = ..., round: _Optional[int] = ..., block_id: _Optional[bytes] = ..., validator_id: _Optional[str] = ..., signature: _Optional[bytes] = ...) -> None: ...

class Evidence(_message.Message):
    __slots__ = ("first", "second")
    FIRST_FIELD_NUMBER: _ClassVar[int]
    SECOND_FIELD_NUMBER: _ClassVar[int]
    first: Vote
    second: Vote
    def __init__(self, first: _Optional[_Union[Vote, _Mapping]] = ..., second: _Optional[_Union[Vote, _Mapping]] = ...) -> None: ...

class Checkpoint(_message.Message):
    __slots__ = ("header", "certificate")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    header: bytes
    certificate: CommitCertificate
    def __init__(self, header: _Optional[bytes] = ..., certificate: _Optional[_Union[CommitCertificate, _Mapping]] = ...) -> None: ...

class InclusionProof(_message.Message):
    __slots__ = ("leaf_index", "tree_size", "leaf_hash", "hashes")
    LEAF_INDEX_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    LEAF_HASH_FIELD_NUMBER: _ClassVar[int]
    HASHES_FIELD_NUMBER: _ClassVar[int]
    leaf_index: int
    tree_size: int
    leaf_hash: bytes
    hashes: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, leaf_index: _Optional[int] = ..., tree_size: _Optional[int] = ..., leaf_hash: _Optional[bytes] = ..., hashes: _Optional[_Iterable[bytes]] = ...) -> None: ...

class ConsistencyProof(_message.Message):
    __slots__ = ("first_size", "second_size", "hashes")
    FIRST_SIZE_FIELD_NUMBER: _ClassVar[int]
    SECOND_SIZE_FIELD_NUMBER: _ClassVar[int]
    HASHES_FIELD_NUMBER: _ClassVar[int]
    first_size: int
    second_size: int
    hashes: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, first_size: _Optional[int] = ..., second_size: _Optional[int] = ..., hashes: _Optional[_Iterable[bytes]] = ...) -> None: ...

class ValidatorChangeProof(_message.Message):
    __slots__ = ("event", "proof")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    event: SignedEvent
    proof: InclusionProof
    def __init__(self, event: _Optional[_Union[SignedEvent, _Mapping]] = ..., proof: _Optional[_Union[InclusionProof, _Mapping]] = ...) -> None: ...

class ValidatorChangeStep(_message.Message):
    __slots__ = ("checkpoint", "changes")
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    checkpoint: Checkpoint
    changes: _containers.RepeatedCompositeFieldContainer[ValidatorChangeProof]
    def __init__(self, checkpoint: _Optional[_Union[Checkpoint, _Mapping]] = ..., changes: _Optional[_Iterable[_Union[ValidatorChangeProof, _Mapping]]] = ...) -> None: ...

class ValidatorChain(_message.Message):
    __slots__ = ("steps",)
    STEPS_FIELD_NUMBER: _ClassVar[int]
    steps: _containers.RepeatedCompositeFieldContainer[ValidatorChangeStep]
    def __init__(self, steps: _Optional[_Iterable[_Union[ValidatorChangeStep, _Mapping]]] = ...) -> None: ...

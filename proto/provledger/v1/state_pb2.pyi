from provledger.v1 import ledger_pb2 as _ledger_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class OfferStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OFFER_STATUS_UNSPECIFIED: _ClassVar[OfferStatus]
    OFFER_STATUS_LISTED: _ClassVar[OfferStatus]
    OFFER_STATUS_DELISTED: _ClassVar[OfferStatus]

class OrderStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ORDER_STATUS_UNSPECIFIED: _ClassVar[OrderStatus]
    ORDER_STATUS_ORDERED: _ClassVar[OrderStatus]
    ORDER_STATUS_DELIVERED: _ClassVar[OrderStatus]
    ORDER_STATUS_SETTLED: _ClassVar[OrderStatus]
    ORDER_STATUS_DISPUTED: _ClassVar[OrderStatus]
    ORDER_STATUS_RESOLVED: _ClassVar[OrderStatus]
    ORDER_STATUS_REFUNDED: _ClassVar[OrderStatus]

class CaseStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CASE_STATUS_UNSPECIFIED: _ClassVar[CaseStatus]
    CASE_STATUS_OPEN: _ClassVar[CaseStatus]
    CASE_STATUS_RULED: _ClassVar[CaseStatus]
    CASE_STATUS_APPEALED: _ClassVar[CaseStatus]
    CASE_STATUS_APPEAL_DECIDED: _ClassVar[CaseStatus]
OFFER_STATUS_UNSPECIFIED: OfferStatus
OFFER_STATUS_LISTED: OfferStatus
OFFER_STATUS_DELISTED: OfferStatus
ORDER_STATUS_UNSPECIFIED: OrderStatus
ORDER_STATUS_ORDERED: OrderStatus
ORDER_STATUS_DELIVERED: OrderStatus
ORDER_STATUS_SETTLED: OrderStatus
ORDER_STATUS_DISPUTED: OrderStatus
ORDER_STATUS_RESOLVED: OrderStatus
ORDER_STATUS_REFUNDED: OrderStatus
CASE_STATUS_UNSPECIFIED: CaseStatus
CASE_STATUS_OPEN: CaseStatus
CASE_STATUS_RULED: CaseStatus
CASE_STATUS_APPEALED: CaseStatus
CASE_STATUS_APPEAL_DECIDED: CaseStatus

class MemberKey(_message.Message):
    __slots__ = ("key_id", "public_key", "revoked", "revoked_after_height", "revocation_event_id")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    REVOKED_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AFTER_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    REVOCATION_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    key_id: bytes
    public_key: bytes
    revoked: bool
    revoked_after_height: int
    revocation_event_id: bytes
    def __init__(self, key_id: _Optional[bytes] = ..., public_key: _Optional[bytes] = ..., revoked: _Optional[bool] = ..., revoked_after_height: _Optional[int] = ..., revocation_event_id: _Optional[bytes] = ...) -> None: ...

class MemberRecord(_message.Message):
    __slots__ = ("member_id", "name", "role", "keys", "removed")
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    member_id: str
    name: str
    role: _ledger_pb2.Role
    keys: _containers.RepeatedCompositeFieldContainer[MemberKey]
    removed: bool
    def __init__(self, member_id: _Optional[str] = ..., name: _Optional[str] = ..., role: _Optional[_Union[_ledger_pb2.Role, str]] = ..., keys: _Optional[_Iterable[_Union[MemberKey, _Mapping]]] = ..., removed: _Optional[bool] = ...) -> None: ...

class ProposalApproval(_message.Message):
    __slots__ = ("member_id", "key_id", "event_id", "height")
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    member_id: str
    key_id: bytes
    event_id: bytes
    height: int
    def __init__(self, member_id: _Optional[str] = ..., key_id: _Optional[bytes] = ..., event_id: _Optional[bytes] = ..., height: _Optional[int] = ...) -> None: ...

class ProposalRecord(_message.Message):
    __slots__ = ("proposal_id", "change", "proposer_id", "proposed_height", "proposed_at_ms", "expires_at_ms", "approvals", "subject", "subject_version", "applied", "applied_height", "applied_event_id")
    PROPOSAL_ID_FIELD_NUMBER: _ClassVar[int]
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    PROPOSER_ID_FIELD_NUMBER: _ClassVar[int]
    PROPOSED_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    PROPOSED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_MS_FIELD_NUMBER: _ClassVar[int]
    APPROVALS_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_VERSION_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    APPLIED_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    APPLIED_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    proposal_id: bytes
    change: bytes
    proposer_id: str
    proposed_height: int
    proposed_at_ms: int
    expires_at_ms: int
    approvals: _containers.RepeatedCompositeFieldContainer[ProposalApproval]
    subject: str
    subject_version: int
    applied: bool
    applied_height: int
    applied_event_id: bytes
    def __init__(self, proposal_id: _Optional[bytes] = ..., change: _Optional[bytes] = ..., proposer_id: _Optional[str] = ..., proposed_height: _Optional[int] = ..., proposed_at_ms: _Optional[int] = ..., expires_at_ms: _Optional[int] = ..., approvals: _Optional[_Iterable[_Union[ProposalApproval, _Mapping]]] = ..., subject: _Optional[str] = ..., subject_version: _Optional[int] = ..., applied: _Optional[bool] = ..., applied_height: _Optional[int] = ..., applied_event_id: _Optional[bytes] = ...) -> None: ...

class SubjectVersion(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: int
    def __init__(self, version: _Optional[int] = ...) -> None: ...

class AssetRecord(_message.Message):
    __slots__ = ("asset_id", "owner_id", "classification", "content_digest", "name", "parent_ids", "activity", "origin_event_id", "retired", "holder_ids", "no_cross_border_by", "bound_purposes", "bound_by")
    ASSET_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_ID_FIELD_NUMBER: _ClassVar[int]
    CLASSIFICATION_FIELD_NUMBER: _ClassVar[int]
    CONTENT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PARENT_IDS_FIELD_NUMBER: _ClassVar[int]
    ACTIVITY_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    RETIRED_FIELD_NUMBER: _ClassVar[int]
    HOLDER_IDS_FIELD_NUMBER: _ClassVar[int]
    NO_CROSS_BORDER_BY_FIELD_NUMBER: _ClassVar[int]
    BOUND_PURPOSES_FIELD_NUMBER: _ClassVar[int]
    BOUND_BY_FIELD_NUMBER: _ClassVar[int]
    asset_id: str
    owner_id: str
    classification: _ledger_pb2.Classification
    content_digest: bytes
    name: str
    parent_ids: _containers.RepeatedScalarFieldContainer[str]
    activity: str
    origin_event_id: bytes
    retired: bool
    holder_ids: _containers.RepeatedScalarFieldContainer[str]
    no_cross_border_by: str
    bound_purposes: _containers.RepeatedScalarFieldContainer[str]
    bound_by: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, asset_id: _Optional[str] = ..., owner_id: _Optional[str] = ..., classification: _Optional[_Union[_ledger_pb2.Classification, str]] = ..., content_digest: _Optional[bytes] = ..., name: _Optional[str] = ..., parent_ids: _Optional[_Iterable[str]] = ..., activity: _Optional[str] = ..., origin_event_id: _Optional[bytes] = ..., retired: _Optional[bool] = ..., holder_ids: _Optional[_Iterable[str]] = ..., no_cross_border_by: _Optional[str] = ..., bound_purposes: _Optional[_Iterable[str]] = ..., bound_by: _Optional[_Iterable[str]] = ...) -> None: ...

class GrantRecord(_message.Message):
    __slots__ = ("grant", "grantor_id", "event_id", "revoked", "revoked_at_ms")
    GRANT_FIELD_NUMBER: _ClassVar[int]
    GRANTOR_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    REVOKED_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    grant: _ledger_pb2.GrantIssued
    grantor_id: str
    event_id: bytes
    revoked: bool
    revoked_at_ms: int
    def __init__(self, grant: _Optional[_Union[_ledger_pb2.GrantIssued, _Mapping]] = ..., grantor_id: _Optional[str] = ..., event_id: _Optional[bytes] = ..., revoked: _Optional[bool] = ..., revoked_at_ms: _Optional[int] = ...) -> None: ...

class ApprovalRecord(_message.Message):
    __slots__ = ("approval", "regulator_id", "event_id")
    APPROVAL_FIELD_NUMBER: _ClassVar[int]
    REGULATOR_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    approval: _ledger_pb2.CrossBorderApproved
    regulator_id: str
    event_id: bytes
    def __init__(self, approval: _Optional[_Union[_ledger_pb2.CrossBorderApproved, _Mapping]] = ..., regulator_id: _Optional[str] = ..., event_id: _Optional[bytes] = ...) -> None: ...

class CertificateRecord(_message.Message):
    __slots__ = ("certificate", "issuer_id", "event_id", "revoked")
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    ISSUER_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    REVOKED_FIELD_NUMBER: _ClassVar[int]
    certificate: _ledger_pb2.CertificateIssued
    issuer_id: str
    event_id: bytes
    revoked: bool
    def __init__(self, certificate: _Optional[_Union[_ledger_pb2.CertificateIssued, _Mapping]] = ..., issuer_id: _Optional[str] = ..., event_id: _Optional[bytes] = ..., revoked: _Optional[bool] = ...) -> None: ...

class OfferRecord(_message.Message):
    __slots__ = ("offer", "exchange_id", "event_id", "broker_id", "status", "delisted_event_id", "delisted_by", "delisting_reason")
    OFFER_FIELD_NUMBER: _ClassVar[int]
    EXCHANGE_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    BROKER_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    DELISTED_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    DELISTED_BY_FIELD_NUMBER: _ClassVar[int]
    DELISTING_REASON_FIELD_NUMBER: _ClassVar[int]
    offer: _ledger_pb2.OfferListed
    exchange_id: str
    event_id: bytes
    broker_id: str
    status: OfferStatus
    delisted_event_id: bytes
    delisted_by: str
    delisting_reason: str
    def __init__(self, offer: _Optional[_Union[_ledger_pb2.OfferListed, _Mapping]] = ..., exchange_id: _Optional[str] = ..., event_id: _Optional[bytes] = ..., broker_id: _Optional[str] = ..., status: _Optional[_Union[OfferStatus, str]] = ..., delisted_event_id: _Optional[bytes] = ..., delisted_by: _Optional[str] = ..., delisting_reason: _Optional[str] = ...) -> None: ...

class BrokerRecord(_message.Message):
    __slots__ = ("qualification", "regulator_id", "event_id")
    QUALIFICATION_FIELD_NUMBER: _ClassVar[int]
    REGULATOR_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    qualification: _ledger_pb2.BrokerQualified
    regulator_id: str
    event_id: bytes
    def __init__(self, qualification: _Optional[_Union[_ledger_pb2.BrokerQualified, _Mapping]] = ..., regulator_id: _Optional[str] = ..., event_id: _Optional[bytes] = ...) -> None: ...

class MandateRecord(_message.Message):
    __slots__ = ("mandate", "seller_id", "event_id", "revoked", "revoked_at_ms")
    MANDATE_FIELD_NUMBER: _ClassVar[int]
    SELLER_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    REVOKED_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    mandate: _ledger_pb2.MandateGranted
    seller_id: str
    event_id: bytes
    revoked: bool
    revoked_at_ms: int
    def __init__(self, mandate: _Optional[_Union[_ledger_pb2.MandateGranted, _Mapping]] = ..., seller_id: _Optional[str] = ..., event_id: _Optional[bytes] = ..., revoked: _Optional[bool] = ..., revoked_at_ms: _Optional[int] = ...) -> None: ...

class SuspensionRecord(_message.Message):
    __slots__ = ("member_id", "suspension_id", "until_ms", "reason", "regulator_id", "event_id", "case_id", "lifted")
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    SUSPENSION_ID_FIELD_NUMBER: _ClassVar[int]
    UNTIL_MS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REGULATOR_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    LIFTED_FIELD_NUMBER: _ClassVar[int]
    member_id: str
    suspension_id: str
    until_ms: int
    reason: str
    regulator_id: str
    event_id: bytes
    case_id: str
    lifted: bool
    def __init__(self, member_id: _Optional[str] = ..., suspension_id: _Optional[str] = ..., until_ms: _Optional[int] = ..., reason: _Optional[str] = ..., regulator_id: _Optional[str] = ..., event_id: _Optional[bytes] = ..., case_id: _Optional[str] = ..., lifted: _Optional[bool] = ...) -> None: ...

class OrderRecord(_message.Message):
    __slots__ = ("order_id", "offer_id", "buyer_id", "seller_id", "exchange_id", "status", "status_before_dispute", "delivery_digest", "dispute_id", "event_ids", "refund", "refund_case_id")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    OFFER_ID_FIELD_NUMBER: _ClassVar[int]
    BUYER_ID_FIELD_NUMBER: _ClassVar[int]
    SELLER_ID_FIELD_NUMBER: _ClassVar[int]
    EXCHANGE_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STATUS_BEFORE_DISPUTE_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_DIGEST_FIELD_NUMBER: _ClassVar[int]
    DISPUTE_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_IDS_FIELD_NUMBER: _ClassVar[int]
    REFUND_FIELD_NUMBER: _ClassVar[int]
    REFUND_CASE_ID_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    offer_id: str
    buyer_id: str
    seller_id: str
    exchange_id: str
    status: OrderStatus
    status_before_dispute: OrderStatus
    delivery_digest: bytes
    dispute_id: str
    event_ids: _containers.RepeatedScalarFieldContainer[bytes]
    refund: _ledger_pb2.Refund
    refund_case_id: str
    def __init__(self, order_id: _Optional[str] = ..., offer_id: _Optional[str] = ..., buyer_id: _Optional[str] = ..., seller_id: _Optional[str] = ..., exchange_id: _Optional[str] = ..., status: _Optional[_Union[OrderStatus, str]] = ..., status_before_dispute: _Optional[_Union[OrderStatus, str]] = ..., delivery_digest: _Optional[bytes] = ..., dispute_id: _Optional[str] = ..., event_ids: _Optional[_Iterable[bytes]] = ..., refund: _Optional[_Union[_ledger_pb2.Refund, _Mapping]] = ..., refund_case_id: _Optional[str] = ...) -> None: ...

class DisputeRecord(_message.Message):
    __slots__ = ("dispute_id", "order_id", "opened_by", "reason", "resolved", "outcome", "resolution")
    DISPUTE_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    OPENED_BY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    dispute_id: str
    order_id: str
    opened_by: str
    reason: str
    resolved: bool
    outcome: _ledger_pb2.DisputeOutcome
    resolution: str
    def __init__(self, dispute_id: _Optional[str] = ..., order_id: _Optional[str] = ..., opened_by: _Optional[str] = ..., reason: _Optional[str] = ..., resolved: _Optional[bool] = ..., outcome: _Optional[_Union[_ledger_pb2.DisputeOutcome, str]] = ..., resolution: _Optional[str] = ...) -> None: ...

class SupervisionPolicy(_message.Message):
    __slots__ = ("appeal_window_ms", "appeal_panel_size")
    APPEAL_WINDOW_MS_FIELD_NUMBER: _ClassVar[int]
    APPEAL_PANEL_SIZE_FIELD_NUMBER: _ClassVar[int]
    appeal_window_ms: int
    appeal_panel_size: int
    def __init__(self, appeal_window_ms: _Optional[int] = ..., appeal_panel_size: _Optional[int] = ...) -> None: ...

class ComplaintRecord(_message.Message):
    __slots__ = ("complaint", "complainant_id", "event_id", "filed_at_ms", "case_id")
    COMPLAINT_FIELD_NUMBER: _ClassVar[int]
    COMPLAINANT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    FILED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    complaint: _ledger_pb2.ComplaintFiled
    complainant_id: str
    event_id: bytes
    filed_at_ms: int
    case_id: str
    def __init__(self, complaint: _Optional[_Union[_ledger_pb2.ComplaintFiled, _Mapping]] = ..., complainant_id: _Optional[str] = ..., event_id: _Optional[bytes] = ..., filed_at_ms: _Optional[int] = ..., case_id: _Optional[str] = ...) -> None: ...

class AppealVote(_message.Message):
    __slots__ = ("regulator_id", "event_id", "decision")
    REGULATOR_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    regulator_id: str
    event_id: bytes
    decision: _ledger_pb2.AppealDecided
    def __init__(self, regulator_id: _Optional[str] = ..., event_id: _Optional[bytes] = ..., decision: _Optional[_Union[_ledger_pb2.AppealDecided, _Mapping]] = ...) -> None: ...

class CaseRecord(_message.Message):
    __slots__ = ("case_id", "complaint_ids", "opened_by", "status", "event_ids", "opened_at_ms", "steps", "ruling", "ruled_by", "ruled_at_ms", "appellant_id", "appealed_at_ms", "votes", "appeal_decision", "decided_at_ms", "parties")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    COMPLAINT_IDS_FIELD_NUMBER: _ClassVar[int]
    OPENED_BY_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    EVENT_IDS_FIELD_NUMBER: _ClassVar[int]
    OPENED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    RULING_FIELD_NUMBER: _ClassVar[int]
    RULED_BY_FIELD_NUMBER: _ClassVar[int]
    RULED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    APPELLANT_ID_FIELD_NUMBER: _ClassVar[int]
    APPEALED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    VOTES_FIELD_NUMBER: _ClassVar[int]
    APPEAL_DECISION_FIELD_NUMBER: _ClassVar[int]
    DECIDED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    PARTIES_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    complaint_ids: _containers.RepeatedScalarFieldContainer[str]
    opened_by: str
    status: CaseStatus
    event_ids: _containers.RepeatedScalarFieldContainer[bytes]
    opened_at_ms: int
    steps: int
    ruling: _ledger_pb2.CaseRuled
    ruled_by: str
    ruled_at_ms: int
    appellant_id: str
    appealed_at_ms: int
    votes: _containers.RepeatedCompositeFieldContainer[AppealVote]
    appeal_decision: _ledger_pb2.AppealDecided
    decided_at_ms: int
    parties: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, case_id: _Optional[str] = ..., complaint_ids: _Optional[_Iterable[str]] = ..., opened_by: _Optional[str] = ..., status: _Optional[_Union[CaseStatus, str]] = ..., event_ids: _Optional[_Iterable[bytes]] = ..., opened_at_ms: _Optional[int] = ..., steps: _Optional[int] = ..., ruling: _Optional[_Union[_ledger_pb2.CaseRuled, _Mapping]] = ..., ruled_by: _Optional[str] = ..., ruled_at_ms: _Optional[int] = ..., appellant_id: _Optional[str] = ..., appealed_at_ms: _Optional[int] = ..., votes: _Optional[_Iterable[_Union[AppealVote, _Mapping]]] = ..., appeal_decision: _Optional[_Union[_ledger_pb2.AppealDecided, _Mapping]] = ..., decided_at_ms: _Optional[int] = ..., parties: _Optional[_Iterable[str]] = ...) -> None: ...

class AssessmentRecord(_message.Message):
    __slots__ = ("assessment", "regulator_id", "event_id", "first_transfer_ms", "transfer_event_ids", "reports")
    ASSESSMENT_FIELD_NUMBER: _ClassVar[int]
    REGULATOR_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    FIRST_TRANSFER_MS_FIELD_NUMBER: _ClassVar[int]
    TRANSFER_EVENT_IDS_FIELD_NUMBER: _ClassVar[int]
    REPORTS_FIELD_NUMBER: _ClassVar[int]
    assessment: _ledger_pb2.SecurityAssessed
    regulator_id: str
    event_id: bytes
    first_transfer_ms: int
    transfer_event_ids: _containers.RepeatedScalarFieldContainer[bytes]
    reports: _containers.RepeatedCompositeFieldContainer[AssessmentReport]
    def __init__(self, assessment: _Optional[_Union[_ledger_pb2.SecurityAssessed, _Mapping]] = ..., regulator_id: _Optional[str] = ..., event_id: _Optional[bytes] = ..., first_transfer_ms: _Optional[int] = ..., transfer_event_ids: _Optional[_Iterable[bytes]] = ..., reports: _Optional[_Iterable[_Union[AssessmentReport, _Mapping]]] = ...) -> None: ...

class AssessmentReport(_message.Message):
    __slots__ = ("period", "report_id", "event_id", "reported_at_ms")
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    REPORT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    REPORTED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    period: int
    report_id: str
    event_id: bytes
    reported_at_ms: int
    def __init__(self, period: _Optional[int] = ..., report_id: _Optional[str] = ..., event_id: _Optional[bytes] = ..., reported_at_ms: _Optional[int] = ...) -> None: ...

class CatalogueRecord(_message.Message):
    __slots__ = ("entry", "regulator_id", "event_id")
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    REGULATOR_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    entry: _ledger_pb2.DataCatalogued
    regulator_id: str
    event_id: bytes
    def __init__(self, entry: _Optional[_Union[_ledger_pb2.DataCatalogued, _Mapping]] = ..., regulator_id: _Optional[str] = ..., event_id: _Optional[bytes] = ...) -> None: ...

class ValidatorEntry(_message.Message):
    __slots__ = ("validator_id", "public_key", "tls_ca")
    VALIDATOR_ID_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    TLS_CA_FIELD_NUMBER: _ClassVar[int]
    validator_id: str
    public_key: bytes
    tls_ca: bytes
    def __init__(self, validator_id: _Optional[str] = ..., public_key: _Optional[bytes] = ..., tls_ca: _Optional[bytes] = ...) -> None: ...

class ValidatorSetRecord(_message.Message):
    __slots__ = ("index", "from_height", "validators", "event_ids")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    FROM_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    VALIDATORS_FIELD_NUMBER: _ClassVar[int]
    EVENT_IDS_FIELD_NUMBER: _ClassVar[int]
    index: int
    from_height: int
    validators: _containers.RepeatedCompositeFieldContainer[ValidatorEntry]
    event_ids: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, index: _Optional[int] = ..., from_height: _Optional[int] = ..., validators: _Optional[_Iterable[_Union[ValidatorEntry, _Mapping]]] = ..., event_ids: _Optional[_Iterable[bytes]] = ...) -> None: ...

class EquivocatorRecord(_message.Message):
    __slots__ = ("validator_id", "equivocations", "listed")
    VALIDATOR_ID_FIELD_NUMBER: _ClassVar[int]
    EQUIVOCATIONS_FIELD_NUMBER: _ClassVar[int]
    LISTED_FIELD_NUMBER: _ClassVar[int]
    validator_id: str
    equivocations: int
    listed: _containers.RepeatedCompositeFieldContainer[Equivocation]
    def __init__(self, validator_id: _Optional[str] = ..., equivocations: _Optional[int] = ..., listed: _Optional[_Iterable[_Union[Equivocation, _Mapping]]] = ...) -> None: ...

class Equivocation(_message.Message):
    __slots__ = ("height", "round", "vote_type", "evidence_key", "recorded_at_height")
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    VOTE_TYPE_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_KEY_FIELD_NUMBER: _ClassVar[int]
    RECORDED_AT_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    height: int
    round: int
    vote_type: _ledger_pb2.VoteType
    evidence_key: str
    recorded_at_height: int
    def __init__(self, height: _Optional[int] = ..., round: _Optional[int] = ..., vote_type: _Optional[_Union[_ledger_pb2.VoteType, str]] = ..., evidence_key: _Optional[str] = ..., recorded_at_height: _Optional[int] = ...) -> None: ...

class StoredBlock(_message.Message):
    __slots__ = ("header", "last_commit", "certificate", "event_ids", "evidence")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    LAST_COMMIT_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    EVENT_IDS_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    header: bytes
    last_commit: _ledger_pb2.CommitCertificate
    certificate: _ledger_pb2.CommitCertificate
    event_ids: _containers.RepeatedScalarFieldContainer[bytes]
    evidence: _containers.RepeatedCompositeFieldContainer[_ledger_pb2.Evidence]
    def __init__(self, header: _Optional[bytes] = ..., last_commit: _Optional[_Union[_ledger_pb2.CommitCertificate, _Mapping]] = ..., certificate: _Optional[_Union[_ledger_pb2.CommitCertificate, _Mapping]] = ..., event_ids: _Optional[_Iterable[bytes]] = ..., evidence: _Optional[_Iterable[_Union[_ledger_pb2.Evidence, _Mapping]]] = ...) -> None: ...

class EventLocation(_message.Message):
    __slots__ = ("height", "position", "log_index", "event")
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    LOG_INDEX_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    height: int
    position: int
    log_index: int
    event: _ledger_pb2.SignedEvent
    def __init__(self, height: _Optional[int] = ..., position: _Optional[int] = ..., log_index: _Optional[int] = ..., event: _Optional[_Union[_ledger_pb2.SignedEvent, _Mapping]] = ...) -> None: ...

from provledger.v1 import ledger_pb2 as _ledger_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Proposal(_message.Message):
    __slots__ = ("height", "round", "pol_round", "block", "proposer_id", "signature")
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    POL_ROUND_FIELD_NUMBER: _ClassVar[int]
    BLOCK_FIELD_NUMBER: _ClassVar[int]
    PROPOSER_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    height: int
    round: int
    pol_round: int
    block: _ledger_pb2.Block
    proposer_id: str
    signature: bytes
    def __init__(self, height: _Optional[int] = ..., round: _Optional[int] = ..., pol_round: _Optional[int] = ..., block: _Optional[_Union[_ledger_pb2.Block, _Mapping]] = ..., proposer_id: _Optional[str] = ..., signature: _Optional[bytes] = ...) -> None: ...

class PeerMessage(_message.Message):
    __slots__ = ("events", "proposal", "vote", "evidence", "status")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    PROPOSAL_FIELD_NUMBER: _ClassVar[int]
    VOTE_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    events: EventBatch
    proposal: Proposal
    vote: _ledger_pb2.Vote
    evidence: _ledger_pb2.Evidence
    status: StatusResponse
    def __init__(self, events: _Optional[_Union[EventBatch, _Mapping]] = ..., proposal: _Optional[_Union[Proposal, _Mapping]] = ..., vote: _Optional[_Union[_ledger_pb2.Vote, _Mapping]] = ..., evidence: _Optional[_Union[_ledger_pb2.Evidence, _Mapping]] = ..., status: _Optional[_Union[StatusResponse, _Mapping]] = ...) -> None: ...

class EventBatch(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[_ledger_pb2.SignedEvent]
    def __init__(self, events: _Optional[_Iterable[_Union[_ledger_pb2.SignedEvent, _Mapping]]] = ...) -> None: ...

class GossipAck(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SyncBlocksRequest(_message.Message):
    __slots__ = ("from_height", "max_blocks")
    FROM_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    MAX_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    from_height: int
    max_blocks: int
    def __init__(self, from_height: _Optional[int] = ..., max_blocks: _Optional[int] = ...) -> None: ...

class SyncedBlock(_message.Message):
    __slots__ = ("block", "certificate")
    BLOCK_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    block: _ledger_pb2.Block
    certificate: _ledger_pb2.CommitCertificate
    def __init__(self, block: _Optional[_Union[_ledger_pb2.Block, _Mapping]] = ..., certificate: _Optional[_Union[_ledger_pb2.CommitCertificate, _Mapping]] = ...) -> None: ...

class StatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class StatusResponse(_message.Message):
    __slots__ = ("node_id", "height", "block_id", "checkpoint")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    BLOCK_ID_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    height: int
    block_id: bytes
    checkpoint: _ledger_pb2.Checkpoint
    def __init__(self, node_id: _Optional[str] = ..., height: _Optional[int] = ..., block_id: _Optional[bytes] = ..., checkpoint: _Optional[_Union[_ledger_pb2.Checkpoint, _Mapping]] = ...) -> None: ...

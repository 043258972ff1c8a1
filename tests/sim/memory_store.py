"""An in-memory `ChainStore` for the deterministic simulator.

It stands in for the LevelDB store with the same promises: `commit_block` is atomic and
durable (it survives a simulated crash), and the consensus write-ahead log (`wal`) holds what
the validator signed. A crash in the simulator discards everything else a node holds.
"""

from __future__ import annotations

from collections.abc import Iterable

from google.protobuf.message import Message
from support.memory_state import MemoryState

from provledger.protocol import blocks, merkle
from provledger.protocol.errors import check
from provledger.protocol.genesis import Genesis
from provledger.v1 import ledger_pb2, peer_pb2, state_pb2


class MemoryChainStore:
    def __init__(self, genesis: Genesis) -> None:
        self.genesis = genesis
        self.state = MemoryState.from_genesis(genesis)
        self._log = merkle.CompactRange()
        self._tip = blocks.genesis_tip(genesis)
        self.blocks: list[tuple[ledger_pb2.Block, ledger_pb2.CommitCertificate]] = []
        self.event_ids: set[bytes] = set()
        self.evidence_against: set[str] = set()  # validators with recorded equivocation
        self.wal: list[tuple[ledger_pb2.Vote | peer_pb2.Proposal, ledger_pb2.Block | None]] = []

    # StateReader
    def load(self, kind: str, record_id: str) -> Message | None:
        return self.state.load(kind, record_id)

    def nonce_used(self, member_id: str, nonce: int) -> bool:
        return self.state.nonce_used(member_id, nonce)

    def members(self) -> Iterable[state_pb2.MemberRecord]:
        return self.state.members()

    # ChainStore
    @property
    def tip(self) -> blocks.Tip:
        return self._tip

    @property
    def log(self) -> merkle.CompactRange:
        return self._log

    @property
    def head_height(self) -> int:
        return self._tip.height

    def has_event(self, event_id: bytes) -> bool:
        return event_id in self.event_ids

    def checkpoint(self, height: int) -> ledger_pb2.Checkpoint | None:
        if not 1 <= height <= len(self.blocks):
            return None
        block, certificate = self.blocks[height - 1]
        return ledger_pb2.Checkpoint(header=block.header, certificate=certificate)

    def block(self, height: int) -> tuple[ledger_pb2.Block, ledger_pb2.CommitCertificate]:
        return self.blocks[height - 1]

    def commit_block(
        self, executed: blocks.ExecutedBlock, certificate: ledger_pb2.CommitCertificate
    ) -> None:
        check(executed.header.height == self._tip.height + 1, "block does not follow the head")
        self.state.apply(executed.writes)
        self._log = executed.log
        self._tip = blocks.Tip.from_header(executed.header, executed.header_bytes)
        self.blocks.append((executed.to_block(), certificate))
        self.event_ids.update(d.event_id for d in executed.events)
        self.evidence_against.update(e.first.validator_id for e in executed.evidence)

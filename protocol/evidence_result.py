"""What a verified evidence bundle proves (`VerifiedBundle`), under which checkpoint, and how
it is told: the result protocol/evidence.py's `verify_bundle` returns. Pure, like the verifier.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from provledger.protocol.events import DecodedEvent
from provledger.protocol.evidence_claims import Proven
from provledger.protocol.evidence_format import (
    SUBJECT_FIELDS,
)
from provledger.protocol.evidence_governance import (
    GovernanceFact,
)
from provledger.protocol.genesis import Genesis, ValidatorSet, role_name
from provledger.v1 import ledger_pb2, state_pb2

# --- what a verified bundle proves ------------------------------------------------------


@dataclass(frozen=True)
class VerifiedBundle:
    """What a verified bundle proves, and under which checkpoint."""

    format: str
    kind: str
    subject_id: str
    claims: Any
    genesis: Genesis
    validators: ValidatorSet  # the set that signs the checkpoint's height
    header: ledger_pb2.BlockHeader
    block_id: bytes
    signers: tuple[str, ...]
    events: tuple[tuple[int, DecodedEvent], ...] = field(repr=False)
    # The governance events replayed (not the bundle's own), and the authors of its own events
    # as the replay leaves them at the checkpoint.
    governance: tuple[tuple[int, DecodedEvent], ...] = field(repr=False)
    authors: dict[str, state_pb2.MemberRecord] = field(repr=False)
    # What the replay read of each governance event judged, and each event's height as its
    # block proves it (format 3; empty before).
    facts: dict[int, GovernanceFact] = field(repr=False, default_factory=dict)
    heights: dict[int, int] = field(repr=False, default_factory=dict)
    times_ms: dict[int, int] = field(repr=False, default_factory=dict)  # each block's time
    # What the bundle proves of its own events (format 3; None before): a case file's
    # timeline is rendered from it and the events (evidence_case.case_timeline).
    proven: Proven | None = field(repr=False, default=None)

    def governance_json(self) -> list[dict[str, Any]]:
        """Each governance event replayed: the change, the member it is about, who approved."""
        replayed = []
        for log_index, event in self.governance:
            fact = self.facts[log_index]
            replayed.append(
                {
                    "event_id": event.event_id.hex(),
                    "log_index": log_index,
                    "event": event.kind,
                    "change": fact.kind,
                    "member_id": fact.member_id,
                    "author": event.author_id,
                    "approvers": list(fact.approver_ids),
                    "proposal_id": fact.proposal_id.hex(),
                    "applies": fact.applies,
                    "height": self.heights.get(log_index),
                }
            )
        return replayed

    def authors_json(self) -> list[dict[str, Any]]:
        """The authors of the bundle's events at the checkpoint, as far as the bundle shows."""
        return [
            {
                "member_id": member.member_id,
                "role": role_name(member.role),
                "removed": member.removed,
                "key_ids": [k.key_id.hex() for k in member.keys],
                # for each key, the height it is revoked after, or None
                "revoked_after_height": [
                    k.revoked_after_height if k.revoked else None for k in member.keys
                ],
            }
            for member in self.authors.values()
        ]

    def to_json(self) -> dict[str, Any]:
        header = self.header
        return {
            "verified": True,
            "format": self.format,
            "kind": self.kind,
            "subject": {SUBJECT_FIELDS[self.kind]: self.subject_id},
            "chain_id": self.genesis.chain_id,
            "genesis_hash": self.genesis.genesis_hash.hex(),
            "checkpoint": {
                "height": header.height,
                "block_id": self.block_id.hex(),
                "time_ms": header.time_ms,
                "log_size": header.log_size,
                "log_root": header.log_root.hex(),
            },
            "signers": list(self.signers),
            "validators": len(self.validators.validators),
            "quorum": self.validators.quorum_size,
            "events": [
                {
                    "event_id": e.event_id.hex(),
                    "kind": e.kind,
                    "author": e.author_id,
                    "log_index": i,
                }
                for i, e in self.events
            ],
            "governance": self.governance_json(),
            "authors": self.authors_json(),
            "claims": self.claims,
        }

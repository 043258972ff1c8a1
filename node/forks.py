"""What this node learned of forks from its peers: quorum-signed checkpoints that conflict with
its own chain.

Peers exchange their latest checkpoints: each node's `StatusResponse` carries the checkpoint of
its head (node/consensus_driver.py), answered to every status poll and accepted when a peer
pushes one in its gossip stream. `ForkLog.observe` compares such a checkpoint with this node's
committed block at that height. The same block, or a height this node has not committed yet,
says nothing. Another block whose certificate a quorum of the validators of that height
signed is a fork (protocol/fork_proof.find_conflict): the node logs an ERROR naming the height
and the peer, keeps the proof, and its REST API says so (`/v1/health`: "fork_seen";
`/v1/forks`, for auditors, with each proof as `provledger verify` checks it).

Which validators sign that height is this node's own knowledge: the sets its ledger state
holds (protocol/validators.py, final for every committed height), not the genesis set, so
forks after a validator-set change are seen, and a checkpoint signed by a set that no longer
signs that height is refused. The proof it keeps carries, for both checkpoints, the walk of
the sets from the genesis to that height built from its store (node/walks.py), so that
anyone who trusts the genesis alone can check it.

The log changes nothing else: consensus and what this node commits are untouched (it cannot
know which of two signed blocks its clients should believe; people decide, with the proof).
One thing follows: validators that precommitted both blocks in one round equivocated, and
their two votes go to the evidence pool (`report_evidence`), so that a coming block records
the equivocation and marks them in the ledger state (protocol/blocks.py, ADR 014).

Bounded: at most `FORKS_KEPT_MAX` proofs are kept (the first ones: a fork is a fork), and the
ids of at most `REFUSED_CHECKPOINTS_MAX` conflicting checkpoints that do not verify are
remembered so that a peer repeating one costs no signature checks (the oldest are forgotten).
Thread-safe: the event loop observes, the REST threads read.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace

from provledger.node.settings import FORKS_KEPT_MAX, REFUSED_CHECKPOINTS_MAX
from provledger.node.store import Store
from provledger.node.walks import validator_chain
from provledger.protocol.blocks import block_id, decode_header
from provledger.protocol.errors import Rejected
from provledger.protocol.fork_proof import (
    ForkProof,
    ForkProofError,
    Sighting,
    encode_fork_proof,
    equivocation_evidence,
    find_conflict,
    verify_fork_proof,
)
from provledger.protocol.genesis import Genesis
from provledger.protocol.validators import validator_history
from provledger.v1 import ledger_pb2

log = logging.getLogger("provledger.forks")


@dataclass(frozen=True)
class SeenFork:
    """A fork this node saw: when, from which peer, at which height, and its proof file."""

    number: int  # 1, 2, ... in the order seen
    height: int
    peer_id: str
    seen_at_ms: int
    proof: ForkProof
    proof_file: bytes  # the canonical provledger-fork/2 file


class ForkLog:
    def __init__(
        self,
        store: Store,
        genesis: Genesis,
        node_id: str,
        clock_ms: Callable[[], int],
        report_evidence: Callable[[ledger_pb2.Evidence], object] | None = None,
    ):
        self._report_evidence = report_evidence
        self._store = store
        self._genesis = genesis
        self._node_id = node_id
        self._clock_ms = clock_ms
        self._lock = threading.Lock()
        self._forks: list[SeenFork] = []
        self._known: set[bytes] = set()  # block ids of the conflicting checkpoints kept
        # Conflicting checkpoints not kept: not quorum-signed, or beyond FORKS_KEPT_MAX.
        self._refused: OrderedDict[bytes, None] = OrderedDict()
        self.not_kept = 0  # forks seen once FORKS_KEPT_MAX were kept

    def observe(self, peer_id: str, checkpoint: ledger_pb2.Checkpoint) -> SeenFork | None:
        """Compare a peer's checkpoint with this node's chain; the fork, if it is a new one."""
        if not checkpoint.header:
            return None  # a peer at height 0, or one that sends no checkpoint
        try:
            height = decode_header(checkpoint.header).height
        except Rejected:
            return None
        if not 1 <= height <= self._store.head_height:
            return None  # not committed here (yet): nothing to compare with
        theirs = block_id(checkpoint.header)
        ours = self._store.checkpoint(height)
        if ours is None or block_id(ours.header) == theirs:
            return None
        with self._lock:
            if theirs in self._known or theirs in self._refused:
                return None
        # The sets of this node's own chain (final up to its head, and so at `height`).
        history = validator_history(self._store, self._genesis.validator_set)
        try:
            proof = find_conflict(
                Sighting(f"node {self._node_id} (this node)", ours),
                Sighting(f"peer {peer_id}", checkpoint),
                self._genesis,
                history=history,
            )
        except ForkProofError as error:
            self._refuse(theirs)
            log.warning(
                "peer %s sent a checkpoint for height %d that conflicts with this node's block "
                "but is not quorum-signed (not a fork; a faulty or lying peer): %s",
                peer_id,
                height,
                error.reason,
            )
            return None
        if proof is None:
            return None
        # For the proof file: both checkpoints with this node's walk to that height.
        walk = validator_chain(self._store, height)
        proof = replace(
            proof,
            first=replace(proof.first, validator_chain=walk),
            second=replace(proof.second, validator_chain=walk),
        )
        return self._keep(proof, height, peer_id, theirs, block_id(ours.header))

    def _refuse(self, identifier: bytes) -> None:
        with self._lock:
            self._refused[identifier] = None
            while len(self._refused) > REFUSED_CHECKPOINTS_MAX:
                self._refused.popitem(last=False)

    def _keep(
        self, proof: ForkProof, height: int, peer_id: str, theirs: bytes, ours: bytes
    ) -> SeenFork | None:
        with self._lock:
            if theirs in self._known or theirs in self._refused:
                return None
            if len(self._forks) >= FORKS_KEPT_MAX:
                self.not_kept += 1
                seen = None
                self._refused[theirs] = None  # counted once; bounded like the refused
                while len(self._refused) > REFUSED_CHECKPOINTS_MAX:
                    self._refused.popitem(last=False)
            else:
                self._known.add(theirs)
                seen = SeenFork(
                    number=len(self._forks) + 1,
                    height=height,
                    peer_id=peer_id,
                    seen_at_ms=self._clock_ms(),
                    proof=proof,
                    proof_file=encode_fork_proof(proof, self._genesis),
                )
                self._forks.append(seen)
        log.error(
            "FORK at height %d: peer %s holds block %s, signed by a quorum of the validators; "
            "this node committed block %s. The proof is at /v1/forks (REST, auditor token)",
            height,
            peer_id,
            theirs.hex(),
            ours.hex(),
        )
        if seen is not None and self._report_evidence is not None:
            # Validators that precommitted both blocks in one round equivocated: their votes
            # go to the evidence pool, so that a block records them (ADR 014).
            verified = verify_fork_proof(seen.proof_file, self._genesis)
            for evidence in equivocation_evidence(verified):
                self._report_evidence(evidence)
        return seen

    def forks(self) -> list[SeenFork]:
        with self._lock:
            return list(self._forks)

    def count(self) -> int:
        with self._lock:
            return len(self._forks) + self.not_kept

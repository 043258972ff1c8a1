"""A deterministic simulator for the consensus: whole consortia in one thread, one seeded PRNG.

In the spirit of TigerBeetle's VOPR and FoundationDB's simulator. Each node runs the real
`protocol.consensus` state machine and the real `protocol.application.LedgerApplication` over
an in-memory store, admitting and committing through the same calls as the node (`admit`,
`commit`); only the world around them is simulated:

- the network delivers, drops, duplicates, delays and reorders messages, and can be cut by
  symmetric partitions (two sides that cannot talk) and asymmetric ones (one direction only);
- every node has its own clock, offset from simulated real time;
- nodes crash at any point, even between two outputs of one step (after persisting a vote but
  before sending it), and restart with only what was durable: committed blocks and the
  consensus write-ahead log;
- Byzantine validators equivocate (they sign a second, conflicting vote for every vote) and
  replay genuine old proposals and votes to random peers;
- the validator set changes (in about half the seeds, docs/adr/013): a spare node, outside the
  genesis set, follows from the start; during the fault phase governance adds it, and removes
  a validator drawn from all of them (an equivocator, an honest one, or the spare itself).
  Each change is submitted again until it commits, so both always happen.

No node ever sends a proposal whose block is over the byte budget (ADR 011): the node's
transport would refuse it. That holds even for a node restarted with such a proposal in its
write-ahead log, which it must withhold (tests/sim/test_simulation.py plants one).

Invariants are checked after every delivery, timer and commit; a violation raises
`InvariantBroken` with the seed. Besides safety, every committed block must name, and be
certified by a quorum of, the set the simulator itself expects at its height (from the changes
it saw committed, each from H + 2), and no honest node may sign a vote at a height whose set
does not hold it. After the fault phase all faults stop (partitions heal, crashed nodes
restart, the network stops dropping) and every honest node must commit again within a bounded
simulated time, and record evidence against every equivocator still in the latest set.

Run one seed: `python tests/sim/run.py --seed 1234 --validators 4`.
"""

from __future__ import annotations

import hashlib
import heapq
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from sim.memory_store import MemoryChainStore
from support.memory_state import Consortium, digest, signing_key

from provledger.protocol import blocks, consensus
from provledger.protocol.application import LedgerApplication, Origin, commit_now
from provledger.protocol.errors import Rejected
from provledger.protocol.events import DecodedEvent
from provledger.protocol.limits import VALIDATOR_CHANGE_DELAY_BLOCKS
from provledger.protocol.validators import Epoch, ValidatorHistory, apply_change
from provledger.protocol.votes import sign_vote
from provledger.v1 import ledger_pb2, peer_pb2

SIM_PARAMS = consensus.Params(
    propose_timeout_ms=600,
    prevote_timeout_ms=300,
    precommit_timeout_ms=300,
    timeout_delta_ms=150,
    empty_block_wait_ms=250,
)
COMMIT_PAUSE_MS = 20
SYNC_BLOCKS_MAX = 16
SYNC_RETRY_MS = 500
REBROADCAST_INTERVAL_MS = 400
SEEN_MESSAGES_MAX = 400
REPLAYS_PER_TICK_MAX = 8
GOVERNANCE_RETRY_MS = 1_000
APPROVERS = ("agency-a", "agency-b", "exchange", "regulator")  # 4 of the 5 members


class InvariantBroken(Exception):
    pass


@dataclass(frozen=True)
class Scenario:
    """The faults of one run, all drawn from the seed."""

    seed: int
    validators: int
    byzantine: tuple[int, ...]
    drop_probability: float
    duplicate_probability: float
    delay_ms_max: int
    fault_phase_ms: int
    crash_count: int
    partition_count: int
    event_interval_ms: int
    validator_changes: bool = False

    @classmethod
    def from_seed(cls, seed: int, validators: int) -> Scenario:
        rng = random.Random(f"scenario-{seed}-{validators}")
        faulty_max = (validators - 1) // 3
        byzantine_count = rng.choice([0, 1, faulty_max]) if faulty_max else 0
        return cls(
            seed=seed,
            validators=validators,
            byzantine=tuple(sorted(rng.sample(range(validators), byzantine_count))),
            drop_probability=rng.choice([0.0, 0.02, 0.1, 0.25]),
            duplicate_probability=rng.choice([0.0, 0.05, 0.2]),
            delay_ms_max=rng.choice([5, 50, 200]),
            fault_phase_ms=rng.randint(3_000, 8_000),
            crash_count=rng.randint(0, 3),
            partition_count=rng.randint(0, 2),
            event_interval_ms=rng.choice([50, 150, 400]),
            validator_changes=rng.random() < 0.5,  # drawn last: earlier fields keep their seeds
        )


@dataclass(order=True)
class _Scheduled:
    time_ms: int
    sequence: int
    action: Any = field(compare=False)


class SimNode:
    def __init__(self, sim: Simulation, index: int) -> None:
        self.sim = sim
        self.index = index
        self.node_id = sim.node_ids[index]
        self.byzantine = index in sim.scenario.byzantine
        self.store = MemoryChainStore(sim.consortium.genesis)  # durable across crashes
        self.clock_offset_ms = sim.rng.randint(-50, 50)
        self.up = False
        self.incarnation = 0
        self.committed_height = 0
        self.seen: deque[Any] = deque(maxlen=SEEN_MESSAGES_MAX)  # what a Byzantine node replays
        self.boot()

    # --- lifecycle ------------------------------------------------------------------------

    def boot(self) -> None:
        """Start (or restart) from durable state only."""
        sim = self.sim
        self.up = True
        self.incarnation += 1
        self.sync_wait_until = 0
        self.app = LedgerApplication(sim.consortium.genesis, self.store, self.node_id)
        self.state = consensus.ConsensusState(
            chain_id=sim.consortium.chain_id,
            validators=sim.consortium.genesis.validator_set,
            key=sim.keys[self.node_id],
            validator_id=self.node_id,
            params=SIM_PARAMS,
        )
        consensus.restore_signed(self.state, self.store.wal)
        self.feed(consensus.StartHeight(self.store.head_height + 1, self.now()))
        self._schedule_rebroadcast(self.incarnation)

    def _schedule_rebroadcast(self, incarnation: int) -> None:
        def due() -> None:
            if self.up and incarnation == self.incarnation:
                self.feed(consensus.Rebroadcast(self.now()))
                if self.byzantine:
                    self.replay_old_messages()
                self._schedule_rebroadcast(incarnation)

        self.sim.schedule(REBROADCAST_INTERVAL_MS, due)

    def crash(self) -> None:
        self.up = False

    def now(self) -> int:
        # The wall clock of a real node: the genesis was made shortly before the nodes start.
        return self.sim.consortium.genesis.genesis_time_ms + self.sim.time_ms + self.clock_offset_ms

    # --- inputs ----------------------------------------------------------------------------

    def feed(self, event: consensus.Input) -> None:
        if not self.up:
            return
        self.state, outputs = consensus.step(self.state, event, self.app)
        self.app.take_reports()  # nobody waits on a simulated client's event
        self.carry_out(outputs)

    def carry_out(self, outputs: list[consensus.Output]) -> None:
        sim = self.sim
        for position, output in enumerate(outputs):
            if sim.crash_now(self, position):
                self.crash()
                return
            if isinstance(output, consensus.Persist):
                self.store.wal.append((output.message, output.block))
            elif isinstance(output, consensus.Broadcast):
                self.broadcast(output.message)
            elif isinstance(output, consensus.ScheduleTimeout):
                incarnation = self.incarnation
                sim.schedule(
                    output.delay_ms,
                    lambda o=output, i=incarnation: self._timeout(o, i),
                )
            elif isinstance(output, consensus.Decide):
                self.commit(output)
            elif isinstance(output, consensus.EvidenceFound):
                self.app.add_evidence(output.evidence)

    def _timeout(self, output: consensus.ScheduleTimeout, incarnation: int) -> None:
        if self.up and incarnation == self.incarnation:
            self.feed(consensus.TimeoutFired(output.kind, output.height, output.round, self.now()))

    def broadcast(self, message: Any) -> None:
        sim = self.sim
        if isinstance(message, peer_pb2.Proposal) and not blocks.within_size_budget(message.block):
            sim.fail(
                f"{self.node_id} sent a proposal for height {message.height} round "
                f"{message.round} whose block is over the byte budget"
            )
        if (
            self.byzantine
            and isinstance(message, ledger_pb2.Vote)
            and message.validator_id == self.node_id
        ):
            sim.equivocate(self, message)
            return
        sim.record_signed(self, message)
        for peer in sim.nodes:
            if peer is not self:
                sim.send(self, peer, message)

    def replay_old_messages(self) -> None:
        """A Byzantine node also replays genuine old messages (earlier rounds' proposals and
        votes) to random peers: legal on an asynchronous network, and exactly what a
        restarted honest validator must not be fooled by."""
        rng = self.sim.rng
        for _ in range(min(REPLAYS_PER_TICK_MAX, len(self.seen))):
            message = self.seen[rng.randrange(len(self.seen))]
            peer = self.sim.nodes[rng.randrange(len(self.sim.nodes))]
            if peer is not self:
                self.sim.send(self, peer, message)

    def receive(self, sender: SimNode, message: Any) -> None:
        if not self.up:
            return
        if self.byzantine and isinstance(message, peer_pb2.Proposal | ledger_pb2.Vote):
            self.seen.append(message)
        now = self.now()
        if isinstance(message, peer_pb2.Proposal):
            self.maybe_sync(sender, message.height)
            self.feed(consensus.ProposalReceived(message, now))
        elif isinstance(message, ledger_pb2.Vote):
            self.maybe_sync(sender, message.height)
            self.feed(consensus.VoteReceived(message, now))
        elif isinstance(message, ledger_pb2.Evidence):
            self.app.add_evidence(message)
        elif isinstance(message, peer_pb2.EventBatch):
            self.admit(list(message.events), Origin.PEER)
        elif isinstance(message, peer_pb2.SyncBlocksRequest):
            self.serve_sync(sender, message)
        elif isinstance(message, SyncBlocksResponse):
            self.apply_synced(message.blocks)

    def admit(self, events: list[ledger_pb2.SignedEvent], origin: Origin) -> None:
        """Admit events as the node does (LedgerNode.admit), minus the signature worker pool:
        admission verifies the signatures itself. A client's events are then gossiped."""
        was_empty = not self.app.has_pending_events()
        outcomes = self.app.admit(self.app.decode_all(events), self.now(), origin)
        admitted = [o.signed for o in outcomes if isinstance(o, DecodedEvent)]
        if not admitted:
            return
        if origin is Origin.CLIENT:
            for peer in self.sim.nodes:
                if peer is not self:
                    self.sim.send(self, peer, peer_pb2.EventBatch(events=admitted))
        if was_empty:
            self.feed(consensus.EventsAvailable(self.now()))

    # --- committing and catching up ---------------------------------------------------------

    async def write(
        self, executed: blocks.ExecutedBlock, certificate: ledger_pb2.CommitCertificate
    ) -> None:
        """The durable write: to memory, at once (so `commit_now` can run the commit)."""
        self.store.commit_block(executed, certificate)

    def commit(self, decision: consensus.Decide) -> None:
        executed = commit_now(self.app.commit(decision.block, decision.certificate, self.write))
        if executed is None:
            return  # block sync got there first
        self.after_commit(executed)
        incarnation = self.incarnation
        height = executed.header.height + 1
        self.sim.schedule(COMMIT_PAUSE_MS, lambda: self._start(height, incarnation))

    def _start(self, height: int, incarnation: int) -> None:
        if self.up and incarnation == self.incarnation and self.state.height < height:
            self.feed(consensus.StartHeight(height, self.now()))

    def after_commit(self, executed: blocks.ExecutedBlock) -> None:
        self.sim.check_commit(self, executed)
        self.committed_height = executed.header.height

    def maybe_sync(self, sender: SimNode, height: int) -> None:
        """A peer at a later height than ours has committed what we lack: ask it."""
        if height > self.store.head_height + 1 and self.sim.time_ms >= self.sync_wait_until:
            self.sync_wait_until = self.sim.time_ms + SYNC_RETRY_MS
            self.sim.send(
                self,
                sender,
                peer_pb2.SyncBlocksRequest(
                    from_height=self.store.head_height + 1, max_blocks=SYNC_BLOCKS_MAX
                ),
            )

    def serve_sync(self, requester: SimNode, request: peer_pb2.SyncBlocksRequest) -> None:
        first = request.from_height
        last = min(self.store.head_height, first + request.max_blocks - 1)
        found = [self.store.block(h) for h in range(first, last + 1)]
        if found:
            self.sim.send(self, requester, SyncBlocksResponse(found))

    def apply_synced(
        self, synced: list[tuple[ledger_pb2.Block, ledger_pb2.CommitCertificate]]
    ) -> None:
        progressed = False
        for block, certificate in synced:
            try:
                executed = commit_now(self.app.commit(block, certificate, self.write, synced=True))
            except Rejected as rejection:
                raise InvariantBroken(
                    f"seed {self.sim.scenario.seed}: {self.node_id} got an invalid synced "
                    f"block after height {self.store.head_height}: {rejection}"
                ) from None
            if executed is None:
                continue  # not the next block
            self.after_commit(executed)
            progressed = True
        if progressed and self.state.height <= self.store.head_height:
            self.feed(consensus.StartHeight(self.store.head_height + 1, self.now()))


@dataclass(frozen=True)
class SyncBlocksResponse:
    blocks: list[tuple[ledger_pb2.Block, ledger_pb2.CommitCertificate]]


class Simulation:
    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.rng = random.Random(scenario.seed)
        self.time_ms = 0
        self._queue: list[_Scheduled] = []
        self._sequence = 0
        self.trace = hashlib.sha256()
        validator_ids = tuple(f"validator-{i}" for i in range(scenario.validators))
        self.consortium = Consortium(validator_ids=validator_ids)
        self.consortium_validator_ids = validator_ids
        # The spare node, outside the genesis set, that governance adds (its key is its own).
        spare = (f"validator-{scenario.validators}",) if scenario.validator_changes else ()
        self.node_ids = validator_ids + spare
        self.keys = {node_id: signing_key(node_id) for node_id in self.node_ids}
        # The validator sets as the simulator expects them, from the changes it saw committed.
        self.expected = ValidatorHistory.of_genesis(self.consortium.genesis.validator_set)
        self.changes_committed: dict[int, tuple[str, ...]] = {}  # height -> change kinds
        self.governance_nonce = 0
        self._replayed: set[int] = set()
        self.changes_submitted: set[bytes] = set()
        self.partition: dict[int, int] | None = None  # node index -> side
        self.blocked_links: set[tuple[int, int]] = set()
        self.faults_active = True
        self.pending_crash: dict[int, int] = {}  # node index -> output position to crash at
        self.decided: dict[int, bytes] = {}
        self.honest_signed: dict[tuple[str, int, int, int], bytes] = {}
        self.equivocations: set[str] = set()
        self.event_counter = 0
        self.nodes: list[SimNode] = []
        for index in range(len(self.node_ids)):
            self.nodes.append(SimNode(self, index))

    # --- scheduling -------------------------------------------------------------------------

    def schedule(self, delay_ms: int, action: Any) -> None:
        self._sequence += 1
        heapq.heappush(self._queue, _Scheduled(self.time_ms + delay_ms, self._sequence, action))

    def run_until(self, end_ms: int, stop: Any = None) -> bool:
        """Process everything due until `end_ms`, or until `stop()` holds; True if it did."""
        while self._queue and self._queue[0].time_ms <= end_ms:
            item = heapq.heappop(self._queue)
            self.time_ms = item.time_ms
            item.action()
            if stop is not None and stop():
                return True
        self.time_ms = max(self.time_ms, end_ms)
        return stop is not None and stop()

    # --- the network -----------------------------------------------------------------------

    def connected(self, sender: SimNode, receiver: SimNode) -> bool:
        if (sender.index, receiver.index) in self.blocked_links:
            return False
        return self.partition is None or (
            self.partition[sender.index] == self.partition[receiver.index]
        )

    def send(self, sender: SimNode, receiver: SimNode, message: Any) -> None:
        scenario = self.scenario
        copies = 1
        if self.faults_active:
            if self.rng.random() < scenario.drop_probability:
                return
            if self.rng.random() < scenario.duplicate_probability:
                copies = 2
        for _ in range(copies):
            delay = 1 + self.rng.randint(0, scenario.delay_ms_max if self.faults_active else 5)
            self.schedule(delay, lambda m=message: self._deliver(sender, receiver, m))

    def _deliver(self, sender: SimNode, receiver: SimNode, message: Any) -> None:
        if not self.connected(sender, receiver):
            return
        self.trace.update(
            f"{self.time_ms}:{sender.index}>{receiver.index}:{type(message).__name__}".encode()
        )
        receiver.receive(sender, message)
        self.check_all()

    # --- faults ----------------------------------------------------------------------------

    def crash_now(self, node: SimNode, position: int) -> bool:
        if self.pending_crash.get(node.index) == position:
            del self.pending_crash[node.index]
            return True
        return False

    def equivocate(self, node: SimNode, vote: ledger_pb2.Vote) -> None:
        """A Byzantine validator's vote: the real one and a conflicting one. While faults are
        active it splits them between halves of the network (trying to fork it); afterwards
        it sends both to everyone (so everyone can prove it)."""
        other = ledger_pb2.Vote()
        other.CopyFrom(vote)
        other.block_id = b"" if vote.block_id else digest(f"fake-{vote.height}-{vote.round}")
        other.signature = sign_vote(self.keys[node.node_id], self.consortium.chain_id, other)
        self.equivocations.add(node.node_id)
        peers = [peer for peer in self.nodes if peer is not node]
        for position, peer in enumerate(peers):
            if self.faults_active:
                self.send(node, peer, vote if position % 2 == 0 else other)
            else:
                self.send(node, peer, vote)
                self.send(node, peer, other)

    def plan_faults(self) -> None:
        scenario = self.scenario
        for _ in range(scenario.crash_count):
            victim = self.rng.randrange(len(self.nodes))
            at = self.rng.randint(100, scenario.fault_phase_ms)
            down_for = self.rng.randint(50, 2_000)
            self.schedule(at, lambda v=victim, d=down_for: self._crash(v, d))
        for _ in range(scenario.partition_count):
            at = self.rng.randint(0, scenario.fault_phase_ms)
            lasting = self.rng.randint(200, 3_000)
            self.schedule(at, lambda length=lasting: self._partition(length))
        self.schedule(self.rng.randint(0, scenario.event_interval_ms), self._client_event)
        if scenario.validator_changes:
            spare = self.node_ids[-1]
            added = ledger_pb2.ValidatorAdded(
                validator_id=spare, public_key=self.keys[spare].public_key
            )
            removed_id = self.node_ids[self.rng.randrange(len(self.node_ids))]
            removed = ledger_pb2.ValidatorRemoved(validator_id=removed_id)
            for kind, body in (("validator_added", added), ("validator_removed", removed)):
                at = self.rng.randint(0, scenario.fault_phase_ms)
                self.schedule(at, lambda k=kind, b=body: self._submit_change(k, b))

    def _crash(self, victim: int, down_for_ms: int) -> None:
        node = self.nodes[victim]
        if not node.up or not self.faults_active:
            return
        if self.rng.random() < 0.5:
            node.crash()  # between steps
        else:
            self.pending_crash[victim] = self.rng.randint(0, 3)  # inside its next step
        self.schedule(down_for_ms, lambda: self._restart(victim))

    def _restart(self, victim: int) -> None:
        node = self.nodes[victim]
        self.pending_crash.pop(victim, None)
        if not node.up:
            node.boot()
            self.check_all()

    def _partition(self, lasting_ms: int) -> None:
        if not self.faults_active:
            return
        indexes = list(range(len(self.nodes)))
        if self.rng.random() < 0.5:
            self.rng.shuffle(indexes)
            cut = self.rng.randint(1, len(indexes) - 1)
            self.partition = {i: (0 if position < cut else 1) for position, i in enumerate(indexes)}
        else:
            a, b = self.rng.sample(indexes, 2)
            self.blocked_links.add((a, b))  # a can no longer reach b; b still reaches a
        self.schedule(lasting_ms, self._heal)

    def _heal(self) -> None:
        self.partition = None
        self.blocked_links.clear()

    def _client_event(self) -> None:
        """A client submits a new event to a random node that is up."""
        self.event_counter += 1
        author = ("agency-a", "agency-b", "exchange")[self.event_counter % 3]
        signed = self.consortium.sign(
            author,
            "asset_registered",
            nonce=self.event_counter,
            asset_id=f"asset-{self.event_counter}",
            content_digest=digest(f"content-{self.event_counter}"),
            classification=ledger_pb2.CLASSIFICATION_GENERAL,
        )
        candidates = [n for n in self.nodes if n.up and not n.byzantine]
        if candidates:
            self.rng.choice(candidates).admit([signed], Origin.CLIENT)
        self.schedule(self.scenario.event_interval_ms, self._client_event)

    def _submit_change(self, kind: str, body: Any) -> None:
        """A validator-set change, approved by a quorum of the members, submitted to a random
        honest node that is up; submitted again until it commits (a crash loses a mempool)."""
        self.governance_nonce += 1
        change = ledger_pb2.GovernanceChange(proposal_nonce=self.governance_nonce)
        getattr(change, kind).CopyFrom(body)
        signed = self.consortium.govern("agency-a", change, APPROVERS)
        self._submit_until_committed(signed)

    def _submit_until_committed(self, signed: ledger_pb2.SignedEvent) -> None:
        identifier = hashlib.sha256(signed.body).digest()
        self.changes_submitted.add(identifier)
        if self._change_committed(identifier):
            return
        candidates = [n for n in self.nodes if n.up and not n.byzantine]
        if candidates:
            self.rng.choice(candidates).admit([signed], Origin.CLIENT)
        self.schedule(GOVERNANCE_RETRY_MS, lambda: self._submit_until_committed(signed))

    def _change_committed(self, identifier: bytes) -> bool:
        return any(identifier in node.store.event_ids for node in self.honest())

    # --- invariants ------------------------------------------------------------------------

    def fail(self, message: str) -> None:
        raise InvariantBroken(
            f"seed {self.scenario.seed}, n={self.scenario.validators}, "
            f"t={self.time_ms} ms: {message}"
        )

    def record_signed(self, node: SimNode, message: Any) -> None:
        """No honest validator signs two different votes for one height, round and type."""
        if (
            node.byzantine
            or not isinstance(message, ledger_pb2.Vote)
            or message.validator_id != node.node_id  # a relayed vote
        ):
            return
        if self.expected.at(message.height).public_key(node.node_id) is None:
            self.fail(f"{node.node_id} signed a vote at height {message.height}, outside its set")
        key = (message.validator_id, message.height, message.round, message.type)
        earlier = self.honest_signed.setdefault(key, message.block_id)
        if earlier != message.block_id:
            self.fail(f"honest {node.node_id} double-signed {key}")

    def check_commit(self, node: SimNode, executed: blocks.ExecutedBlock) -> None:
        height = executed.header.height
        if node.byzantine:
            return
        if height != node.committed_height + 1:
            self.fail(f"{node.node_id} committed height {height} after {node.committed_height}")
        if height > 1:
            previous, _ = node.store.block(height - 1)
            if executed.header.previous_block_id != blocks.block_id(previous.header):
                self.fail(f"{node.node_id}: block {height} does not link to block {height - 1}")
        earlier = self.decided.setdefault(height, executed.block_id)
        if earlier != executed.block_id:
            self.fail(f"two honest nodes committed different blocks at height {height}")
        self.check_validators(node, executed)

    def check_validators(self, node: SimNode, executed: blocks.ExecutedBlock) -> None:
        """The block names the set the simulator expects at its height and is certified by a
        quorum of it; a block's validator-set changes are replayed here (by the same
        `apply_change` a verifier walking the chain uses) into the sets expected from H + 2."""
        height = executed.header.height
        expected = self.expected.at(height)
        if executed.header.validators_hash != expected.hash():
            self.fail(f"{node.node_id}: block {height} names another validator set")
        _, certificate = node.store.block(height)
        signers = {entry.validator_id for entry in certificate.signatures}
        if len(signers) < expected.quorum_size or any(
            expected.public_key(signer) is None for signer in signers
        ):
            self.fail(f"{node.node_id}: block {height} is not certified by its set")
        changes = [
            (d.event_id, ledger_pb2.GovernanceChange.FromString(d.event.governance.change))
            for d in executed.events
            if d.kind == "governance"
        ]
        kinds = tuple(c.WhichOneof("change") for _, c in changes)
        if self.changes_committed.setdefault(height, kinds) != kinds:
            self.fail(f"{node.node_id}: block {height} committed other governance changes")
        if height in self._replayed or not kinds:
            return
        self._replayed.add(height)
        base = current = self.expected.latest.validators
        for _, change in changes:
            kind = change.WhichOneof("change")
            current = apply_change(base, current, kind, getattr(change, kind))
        self.expected = self.expected.with_epoch(
            Epoch(height + VALIDATOR_CHANGE_DELAY_BLOCKS, current)
        )

    def check_all(self) -> None:
        for node in self.nodes:
            if node.byzantine:
                continue
            if node.store.head_height < node.committed_height:
                self.fail(f"{node.node_id}'s height went back")

    # --- the run -----------------------------------------------------------------------------

    def honest(self) -> list[SimNode]:
        return [node for node in self.nodes if not node.byzantine]

    def run(self, liveness_ms: int = 60_000) -> dict[str, Any]:
        scenario = self.scenario
        self.plan_faults()
        self.run_until(scenario.fault_phase_ms)

        # Faults stop: heal, restart everyone, deliver reliably.
        self.faults_active = False
        self._heal()
        self.pending_crash.clear()
        for node in self.nodes:
            if not node.up:
                node.boot()
        baseline = max(node.store.head_height for node in self.honest())
        target = baseline + 3

        def live() -> bool:
            # Every validator-set change committed, and the latest set signed two blocks.
            changed = all(self._change_committed(i) for i in self.changes_submitted)
            last = max(target, self.expected.latest.from_height + 1)
            caught_up = all(node.store.head_height >= last for node in self.honest())
            return changed and caught_up and self._evidence_recorded()

        if not self.run_until(self.time_ms + liveness_ms, live):
            heights = {node.node_id: node.store.head_height for node in self.nodes}
            self.fail(
                f"not live: {liveness_ms} ms after faults stopped, heights are {heights} "
                f"(target {target}); evidence recorded: {self._evidence_recorded()}; "
                f"validator sets from heights {[e.from_height for e in self.expected.epochs]}, "
                f"changes committed: {all(map(self._change_committed, self.changes_submitted))}"
            )
        return {
            "seed": scenario.seed,
            "validators": scenario.validators,
            "heights": [node.store.head_height for node in self.nodes],
            "events": sum(len(node.store.event_ids) for node in self.honest()),
            "trace": self.trace.hexdigest(),
            "time_ms": self.time_ms,
        }

    def _evidence_recorded(self) -> bool:
        """Every equivocator's misbehaviour is recorded on every honest node's ledger, unless
        governance removed it (it signs nothing more, so nothing new exposes it)."""
        latest = self.expected.latest.validators
        for validator_id in sorted(self.equivocations):
            if latest.public_key(validator_id) is None:
                continue
            for node in self.honest():
                if validator_id not in node.store.evidence_against:
                    return False
        return True

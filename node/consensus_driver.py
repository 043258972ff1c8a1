"""The I/O shell around `protocol.consensus`: timers, the vote log, the network, commits.

One `ConsensusDriver` per node, on the node's asyncio loop. It feeds the pure state machine
its inputs (peer messages, timer firings, "events are available", "start the next height")
and carries out the outputs in order:
- `Persist`: the signed vote or proposal is written to the store's consensus log with
  `sync=True` *before* anything after it runs, so a restarted node never signs a conflict;
- `Broadcast`: to every peer (nothing to do in a consortium of one);
- `ScheduleTimeout`: an event-loop timer;
- `Decide`: the block is committed (`LedgerNode.commit`: one synced batch, off the loop),
  waiters are woken, and after a short pause the next height starts;
- `EvidenceFound`: into the evidence pool, for a coming block.
After every step the ledger acts on what the application reported (`handle_reports`).

Nothing that fails to be sent stops consensus: a message the network cannot queue (over the
peers' message cap, or failing to encode) is logged and dropped, and the outputs after it are
still carried out; the periodic loops (rebroadcast, status polls) log a failed run and go on.
Consensus recovers lost messages by its rounds and rebroadcasts. A proposal restored from the
vote log with a block over the byte budget is never re-sent (ADR 011): it is logged at start.

It is also what answers the peers: the `PeerNetwork` hands it every message (`on_peer_message`)
and asks it for committed blocks (`blocks_from`) and this node's `status`; `node/server.py`
attaches it to the network before the network starts. Events a peer forwards are admitted
through `LedgerNode.admit` like a client's (with `Origin.PEER`); a client's events, once
admitted, are batched and forwarded to every peer.

Forks: every status a peer answers or sends carries its head's checkpoint, which the node's
`ForkLog` compares with its own block at that height (node/forks.py); this node's status
carries its own. What the log finds changes nothing here.

Catching up: a message from a later height, or a peer whose status is ahead, means blocks were
committed that this node lacks. It fetches them (SyncBlocks), checks each one's commit
certificate against the validators of its height and re-executes it, then commits and moves
consensus on. Both kinds of commit go through `LedgerNode.commit`, one at a time.

The validator set changes through the ledger (docs/adr/013): consensus takes each height's set
from the application, so this node votes at the heights whose set holds its id and key (a
node added at height h starts there, a removed one stops, a node outside every set follows
without voting). After every commit the peers allowed to call this node become the
validators of the sets from the next height on, those already decided for later heights
included, so that a validator about to join can sync first.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from provledger.node.ledger import LedgerNode
from provledger.node.peers import PeerNetwork, PeerRequestError
from provledger.node.settings import (
    COMMIT_PAUSE_MS,
    GOSSIP_BATCH_BYTES_MAX,
    GOSSIP_BATCH_EVENTS_MAX,
    GOSSIP_FLUSH_MS,
    REBROADCAST_INTERVAL_MS,
    STARTUP_STATUS_POLL_INTERVAL_MS,
    STARTUP_STATUS_POLLS_MAX,
    STATUS_POLL_INTERVAL_MS,
    SYNC_BATCH_BLOCKS_MAX,
)
from provledger.protocol import blocks, consensus
from provledger.protocol.application import Origin
from provledger.protocol.crypto import SigningKey
from provledger.protocol.errors import InvariantViolation, Rejected, check
from provledger.protocol.events import DecodedEvent
from provledger.protocol.limits import BLOCK_SIZE_BYTES_MAX
from provledger.protocol.mempool import MempoolFull
from provledger.v1 import ledger_pb2, peer_pb2

log = logging.getLogger("provledger.consensus")


class ConsensusDriver:
    def __init__(
        self,
        node: LedgerNode,
        key: SigningKey | None,
        network: PeerNetwork | None,
        params: consensus.Params,
    ) -> None:
        genesis = node.genesis
        self._node = node
        self._network = network
        self._clock_ms: Callable[[], int] = node.clock_ms
        self.state = consensus.ConsensusState(
            chain_id=genesis.chain_id,
            validators=node.app.validator_set(node.store.head_height + 1),
            key=key,
            validator_id=node.node_id if key is not None else None,
            params=params,
        )
        self._peer_ids: frozenset[str] = frozenset()
        self._voting: bool | None = None
        withheld = consensus.restore_signed(
            self.state, node.store.load_signed(node.store.head_height + 1)
        )
        for height, round_number in withheld:
            log.warning(
                "withholding the proposal signed for height %d round %d before the restart: its "
                "block is over the %d-byte budget, so it is never re-sent and that round passes "
                "without a proposal (ADR 011)",
                height,
                round_number,
                BLOCK_SIZE_BYTES_MAX,
            )
        self._tasks: set[asyncio.Task] = set()
        self._timers: set[asyncio.TimerHandle] = set()
        self._gossip: list[ledger_pb2.SignedEvent] = []
        self._gossip_flush: asyncio.TimerHandle | None = None
        self._syncing = False
        self._stopped = False
        # The highest head each peer reported (statuses; a vote or proposal for height h says
        # h - 1): the sync lag of the metrics and readiness (node/operations.py).
        self.peer_heights: dict[str, int] = {}
        self.failed = asyncio.Event()  # a consensus task crashed: the node must stop
        node.admission_listeners.append(self._on_admitted)

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        self._follow_validator_sets()
        self._feed(consensus.StartHeight(self._node.store.head_height + 1, self._clock_ms()))
        self._spawn(self._every(REBROADCAST_INTERVAL_MS, self._rebroadcast))
        if self._network is not None:
            self._spawn(self._poll_status_soon())
            self._spawn(self._every(STATUS_POLL_INTERVAL_MS, self._poll_status))

    async def _poll_status_soon(self) -> None:
        """A node that was down is most likely behind: ask as soon as peers are connected."""
        for _ in range(STARTUP_STATUS_POLLS_MAX):
            await asyncio.sleep(STARTUP_STATUS_POLL_INTERVAL_MS / 1000)
            if self._network is not None and self._network.connected_peers():
                await self._poll_status()
                return

    async def stop(self) -> None:
        """Stop feeding consensus; a commit in progress is finished first."""
        self._stopped = True
        for timer in self._timers:
            timer.cancel()
        await self._node.commits_finished()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, coroutine) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.critical("consensus task failed", exc_info=task.exception())
            self.failed.set()

    async def _every(self, interval_ms: int, action: Callable[[], object]) -> None:
        """Run `action` every `interval_ms` until stopped. A run that raises is logged and the
        loop goes on: a rebroadcast or a status poll is retried by the next run anyway, and a
        loop that died would leave consensus without the re-sends that keep it live. A broken
        invariant is a bug, not a failed run: it stops the node, as everywhere else."""
        failures = 0
        while not self._stopped:
            await asyncio.sleep(interval_ms / 1000)
            try:
                result = action()
                if asyncio.iscoroutine(result):
                    await result
            except InvariantViolation:
                raise
            except Exception:
                failures += 1
                log.log(
                    _repeat_level(failures),
                    "%s failed (%d times so far); it runs again in %d ms",
                    getattr(action, "__name__", "a periodic task"),
                    failures,
                    interval_ms,
                    exc_info=True,
                )

    # --- feeding the state machine ---------------------------------------------------------

    def _feed(self, event: consensus.Input) -> None:
        if self._stopped:
            return
        before = (self.state.height, self.state.round)
        self.state, outputs = consensus.step(self.state, event, self._node.app)
        if self.state.height == before[0] and self.state.round > before[1]:
            log.info(
                "height %d moves to round %d",
                self.state.height,
                self.state.round,
                extra={"height": self.state.height, "round": self.state.round},
            )
        self._node.handle_reports()
        for output in outputs:
            if isinstance(output, consensus.Persist):
                self._node.store.save_signed(output.message, output.block)
            elif isinstance(output, consensus.Broadcast):
                self._broadcast(output.message)
            elif isinstance(output, consensus.ScheduleTimeout):
                self._schedule(output)
            elif isinstance(output, consensus.Decide):
                self._spawn(self._commit_decision(output))
            elif isinstance(output, consensus.EvidenceFound):
                self._node.app.add_evidence(output.evidence)

    def _schedule(self, output: consensus.ScheduleTimeout) -> None:
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._timers.discard(handle)
            self._feed(
                consensus.TimeoutFired(output.kind, output.height, output.round, self._clock_ms())
            )

        handle = loop.call_later(output.delay_ms / 1000, fire)
        self._timers.add(handle)

    def _rebroadcast(self) -> None:
        if self._network is not None:
            self._feed(consensus.Rebroadcast(self._clock_ms()))

    # --- the network -------------------------------------------------------------------------

    def _broadcast(
        self, message: ledger_pb2.Vote | peer_pb2.Proposal | ledger_pb2.Evidence
    ) -> None:
        if self._network is None:
            return
        if isinstance(message, ledger_pb2.Vote):
            wrapped = peer_pb2.PeerMessage(vote=message)
            what = f"a vote for height {message.height} round {message.round}"
        elif isinstance(message, peer_pb2.Proposal):
            wrapped = peer_pb2.PeerMessage(proposal=message)
            what = f"the proposal for height {message.height} round {message.round}"
        else:
            wrapped = peer_pb2.PeerMessage(evidence=message)
            what = "evidence"
        self._send_to_peers(wrapped, what)

    def _send_to_peers(self, message: peer_pb2.PeerMessage, what: str) -> None:
        """Queue `message` for every peer. One that cannot be sent is logged and dropped, never
        raised: this runs in the middle of carrying out a consensus step's outputs (those after
        it must still happen) and in the rebroadcast loop. Nothing is lost that consensus needs:
        a dropped vote or proposal only costs a round."""
        network = self._network
        if network is None:
            return
        try:
            network.broadcast(message)
        except ValueError as error:  # over the peers' message cap
            log.error("dropped %s instead of sending it: %s", what, error)
        except Exception:
            log.exception("dropped %s: it could not be queued for the peers", what)

    def on_peer_message(self, sender_id: str, message: peer_pb2.PeerMessage) -> None:
        """Called by the PeerNetwork, on the loop, for every message a peer sends."""
        kind = message.WhichOneof("message")
        now = self._clock_ms()
        if kind == "events":
            self._spawn(self._admit_gossip(list(message.events.events)))
        elif kind == "proposal":
            self._catch_up_if_behind(sender_id, message.proposal.height)
            self._feed(consensus.ProposalReceived(message.proposal, now))
        elif kind == "vote":
            self._catch_up_if_behind(sender_id, message.vote.height)
            self._feed(consensus.VoteReceived(message.vote, now))
        elif kind == "evidence":
            if self._node.app.add_evidence(message.evidence):
                self._feed(consensus.EventsAvailable(now))
        elif kind == "status":
            self._node.forks.observe(sender_id, message.status.checkpoint)
            self._peer_at(sender_id, message.status.height, reported=True)
            self._catch_up_if_behind(sender_id, message.status.height + 1)

    def status(self) -> peer_pb2.StatusResponse:
        """This node's head, with its checkpoint for the peers to compare (node/forks.py)."""
        store = self._node.store
        tip = store.tip
        return peer_pb2.StatusResponse(
            node_id=self._node.node_id,
            height=tip.height,
            block_id=tip.block_id,
            checkpoint=store.checkpoint(tip.height),
        )

    def blocks_from(self, from_height: int, max_blocks: int) -> list[peer_pb2.SyncedBlock]:
        store = self._node.store
        found = []
        for height in range(
            max(from_height, 1), min(store.head_height, from_height + max_blocks - 1) + 1
        ):
            stored = store.block(height)
            if stored is None:
                break
            block, certificate = stored
            found.append(peer_pb2.SyncedBlock(block=block, certificate=certificate))
        return found

    async def _admit_gossip(self, events: list[ledger_pb2.SignedEvent]) -> None:
        """Events a peer forwarded; nobody waits for their verdict."""
        outcomes = await self._node.admit(events, Origin.PEER)
        dropped = sum(1 for outcome in outcomes if isinstance(outcome, MempoolFull))
        if dropped:
            log.debug("dropped %d gossiped events: the mempool is full", dropped)

    def _on_admitted(self, decoded: list[DecodedEvent], origin: Origin) -> None:
        """New events in the mempool: wake a waiting proposer, and forward a client's events
        to the peers (a peer's were forwarded by the node its client chose)."""
        if self.state.awaiting_events:
            self._feed(consensus.EventsAvailable(self._clock_ms()))
        if self._network is None or origin is not Origin.CLIENT:
            return
        self._gossip.extend(d.signed for d in decoded)
        if len(self._gossip) >= GOSSIP_BATCH_EVENTS_MAX:
            self._flush_gossip()
        elif self._gossip_flush is None:
            self._gossip_flush = asyncio.get_running_loop().call_later(
                GOSSIP_FLUSH_MS / 1000, self._flush_gossip
            )

    def _flush_gossip(self) -> None:
        if self._gossip_flush is not None:
            self._gossip_flush.cancel()
            self._gossip_flush = None
        pending, self._gossip = self._gossip, []
        batch: list[ledger_pb2.SignedEvent] = []
        batch_bytes = 0
        for signed in pending:
            size = signed.ByteSize() + _EVENT_IN_BATCH_OVERHEAD_BYTES_MAX
            if batch and (
                len(batch) == GOSSIP_BATCH_EVENTS_MAX or batch_bytes + size > GOSSIP_BATCH_BYTES_MAX
            ):
                self._send_events(batch)
                batch, batch_bytes = [], 0
            batch.append(signed)
            batch_bytes += size
        if batch:
            self._send_events(batch)

    def _send_events(self, batch: list[ledger_pb2.SignedEvent]) -> None:
        message = peer_pb2.PeerMessage(events=peer_pb2.EventBatch(events=batch))
        self._send_to_peers(message, f"a batch of {len(batch)} events")

    # --- committing --------------------------------------------------------------------------

    async def _commit_decision(self, decision: consensus.Decide) -> None:
        try:
            executed = await self._node.commit(decision.block, decision.certificate)
        except Rejected as rejection:
            # A quorum decided a block this node finds invalid: its state has diverged.
            height = self._node.store.head_height + 1
            log.critical(
                "decided block %d is invalid here: %s", height, rejection, extra={"height": height}
            )
            raise
        if executed is None:
            return  # block sync got there first
        log.info(
            "committed block %d with %d events",
            executed.header.height,
            len(executed.events),
            extra={"height": executed.header.height, "round": self.state.round},
        )
        await asyncio.sleep(COMMIT_PAUSE_MS / 1000)
        self._start_next_height()

    def _start_next_height(self) -> None:
        head = self._node.store.head_height
        self._follow_validator_sets()
        if self.state.height <= head:
            self._feed(consensus.StartHeight(head + 1, self._clock_ms()))

    def _follow_validator_sets(self) -> None:
        """After a commit: let the validators of the sets from the next height on call this
        node, and say when this node starts or stops voting."""
        app = self._node.app
        height = self._node.store.head_height + 1
        history = app.validator_history()
        ids = history.validator_ids_from(height)
        if self._network is not None and ids != self._peer_ids:
            self._network.set_validator_ids(ids)
            if self._peer_ids:
                log.info("the validators from height %d on are now %s", height, sorted(ids))
        self._peer_ids = ids
        if self._network is not None:
            # Their organisations' TLS CA roots too (ADR 015); nothing with one consortium CA.
            self._network.set_tls_roots(history.tls_cas_from(height), history.every_tls_ca())
        key = self.state.key
        voting = key is not None and (
            app.validator_set(height).public_key(self._node.node_id) == key.public_key
        )
        if voting != self._voting:
            log.info(
                "node %s %s at height %d",
                self._node.node_id,
                "votes as a validator" if voting else "follows without voting",
                height,
            )
        self._voting = voting

    # --- catching up -------------------------------------------------------------------------

    @property
    def syncing(self) -> bool:
        """Whether block sync is fetching blocks from a peer."""
        return self._syncing

    def _peer_at(self, peer_id: str, height: int, *, reported: bool = False) -> None:
        """Note that `peer_id` is at `height` (its status `reported` it: it may be lower)."""
        if reported or height > self.peer_heights.get(peer_id, 0):
            self.peer_heights[peer_id] = height

    def _catch_up_if_behind(self, peer_id: str, height: int) -> None:
        self._peer_at(peer_id, height - 1)
        if height > self._node.store.head_height + 1 and not self._syncing:
            source = self._sync_source(peer_id)
            if source is not None:
                self._syncing = True
                self._spawn(self._sync_from(source))

    def _sync_source(self, peer_id: str) -> str | None:
        """Whom to fetch blocks from when `peer_id` shows this node is behind: `peer_id` if this
        node can call it, else a connected peer; None if there is none (the status polls will
        find one). A validator added by governance may send before its address is in this
        node's config, and asking a peer the network does not know is an error."""
        network = self._network
        if network is None:
            return None
        if network.dials(peer_id):
            return peer_id
        connected = sorted(network.connected_peers())
        return connected[0] if connected else None

    async def _poll_status(self) -> None:
        network = self._network
        if network is None or self._syncing:
            return
        for peer_id in sorted(network.connected_peers()):
            status = await network.peer_status(peer_id)
            if status is not None:
                self._peer_at(peer_id, status.height, reported=True)
                self._node.forks.observe(peer_id, status.checkpoint)
            if status is not None and status.height > self._node.store.head_height:
                self._syncing = True
                await self._sync_from(peer_id)
                return

    async def _sync_from(self, peer_id: str) -> None:
        """Fetch, verify and commit the blocks `peer_id` has and this node lacks. The next
        batch is fetched while the current one is executed and written."""
        store = self._node.store
        network = self._network
        check(network is not None, "block sync needs peers")
        fetching: asyncio.Task | None = None

        def fetch(from_height: int) -> asyncio.Task:
            return asyncio.get_running_loop().create_task(
                network.fetch_blocks(  # type: ignore[union-attr]
                    peer_id, from_height, SYNC_BATCH_BLOCKS_MAX
                )
            )

        try:
            fetching = fetch(store.head_height + 1)
            while not self._stopped:
                try:
                    synced = await fetching
                except PeerRequestError as error:
                    log.info(
                        "block sync from %s failed: %s", peer_id, error, extra={"peer": peer_id}
                    )
                    return
                if not synced:
                    return
                last = blocks.decode_header(synced[-1].block.header).height
                fetching = fetch(last + 1) if len(synced) == SYNC_BATCH_BLOCKS_MAX else None
                for item in synced:
                    if not await self._commit_synced(peer_id, item):
                        return
                self._start_next_height()
                if fetching is None:
                    fetching = fetch(store.head_height + 1)  # anything committed meanwhile
        finally:
            if fetching is not None and not fetching.done():
                fetching.cancel()
            self._syncing = False

    async def _commit_synced(self, peer_id: str, item: peer_pb2.SyncedBlock) -> bool:
        """Commit a synced block (its certificate checked first); False if it is bad."""
        try:
            executed = await self._node.commit(item.block, item.certificate, synced=True)
        except Rejected as rejection:
            log.warning("peer %s sent a bad block: %s", peer_id, rejection, extra={"peer": peer_id})
            return False
        if executed is not None:  # else consensus got there first
            log.info(
                "caught up block %d from %s",
                executed.header.height,
                peer_id,
                extra={"height": executed.header.height, "peer": peer_id},
            )
        return True


# A field tag and a length varint: what an event adds to an EventBatch beyond its own bytes.
_EVENT_IN_BATCH_OVERHEAD_BYTES_MAX = 1 + 5


def _repeat_level(count: int) -> int:
    """ERROR for the 1st, 2nd, 4th, 8th... time a failure repeats, else DEBUG: visible
    without a log line (and a traceback) every time."""
    return logging.ERROR if count & (count - 1) == 0 else logging.DEBUG

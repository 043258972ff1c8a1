"""The peer transport: validator-to-validator gRPC over mutual TLS (PeerService).

This module owns the connections between validators and nothing above them. It carries
`PeerMessage`s (event batches, proposals, votes, evidence, status) without looking inside,
serves committed blocks to a peer that is behind, and answers status requests. What to send,
when to batch and what a message means is the caller's business (consensus, mempool).

Interface (all methods are called from the one asyncio event loop that runs the node; none
is thread-safe):

    network = PeerNetwork(node_id, peer_addresses, tls, validator_ids, rng=random.Random(seed))
    network.attach(handler)                            # once, before add_to_server
    server = create_peer_server()      # a server of its own: size limits, keepalive policy
    port = network.add_to_server(server, "127.0.0.1:0")
    await server.start(); await network.start()
    network.broadcast(message); network.send(peer_id, message)   # non-blocking, never raise
                                                                # for a slow or dead peer
    blocks = await network.fetch_blocks(peer_id, from_height, max_blocks)  # PeerRequestError
    status = await network.peer_status(peer_id)        # None when the peer does not answer
    network.dials(peer_id); network.connected_peers(); network.stats()
    await network.stop(); await server.stop(grace)     # the caller owns the server

The network and consensus need each other (one delivers to the other, which sends through
it), so the network is made first and given to the consensus driver, which is then `attach`ed
as the network's `PeerHandler` before the network is added to a server. The handler gives:
- `on_peer_message(sender_id, message)`: every message received, on the event loop, in the
  sender's order. `sender_id` is the *transport* peer, from its TLS client certificate, not
  necessarily the author (votes and proposals are relayed): signatures are the handler's to
  check. If it raises, the error is logged, that inbound stream is closed with INTERNAL and
  the sender reconnects (its in-flight messages are lost, as with any broken stream).
- `blocks_from(from_height, max_blocks)`: up to `max_blocks` consecutive committed blocks from
  `from_height` (fewer, or none, at the head). SyncBlocks asks in chunks of
  `SYNC_BLOCKS_CHUNK_MAX`: a request holds one chunk in memory, HTTP/2 paces a slow reader.
- `status()`: this node's `StatusResponse`.

Invariants:
- Every PeerService call (Gossip, SyncBlocks, Status) comes from a peer whose certificate
  chains to the consortium CA, or with each organisation's CA root in the genesis to one of
  them (gRPC checks this during the handshake, because the port uses `server_credentials`,
  which require a client certificate), whose node id is not our own, and, with
  per-organisation roots, whose certificate was issued by that node's own organisation's CA
  as the validator sets from the current height on name it (`tls.PeerTrust`, ADR 015).
  Gossip (what consensus hears) only from a node id in the validator set; the reads
  (SyncBlocks, Status) from one in the set or from a peer this node is configured with (a
  validator still to be added, or a node that follows without voting: it syncs, so that it
  is caught up when its addition activates). Anything else is refused
  with PERMISSION_DENIED ("unknown_peer: ..." or "wrong_issuer: ...") and logged with the
  node id it claimed, before a message is read. The set is the caller's: the consensus
  driver replaces it (`set_validator_ids`) when governance changes the validators; a removed
  validator's gossip is refused from then on (its reads only once it is no longer
  configured). A PeerService registered on an insecure port fails closed the same way:
  there is no certificate, so there is no node id.
- A channel to peer V trusts V's organisation's root alone (the consortium CA otherwise): only
  a certificate from V's organisation answers for V, though gRPC's client side checks the
  name dialled, not the node id, so any node of that organisation could. The roots follow the
  validator sets (`set_tls_roots`, after every commit; ADR 015, amendment 2026-12-02): a
  validator added with its organisation's root is accepted from that root, a replaced root
  from the new one once the change activates (either while it is decided). The port's
  handshake trusts every root the sets ever named, read again at each new connection
  (`tls.dynamic_server_credentials`); the issuer check decides. A channel whose roots changed
  is closed and dialled again. A configured peer no set names a root for is dialled trusting
  every root, and its calls are refused `wrong_issuer`.
- Delivery is best effort and at most once, in order per (sender, receiver) stream. A message
  is taken off its peer's queue when it is handed to gRPC; if the stream breaks, what was in
  flight is lost. Consensus recovers through its timeouts and rounds, so the transport does
  not retransmit.
- Memory is bounded: each peer's outbound queue holds at most `queue_messages_max` messages
  and `queue_bytes_max` bytes; when either is exceeded the OLDEST messages are dropped and
  counted. A message larger than `GRPC_MESSAGE_SIZE_BYTES_MAX` is refused (ValueError) when
  it is enqueued, because no peer would accept it. At most `PEER_INBOUND_STREAMS_MAX` Gossip
  streams per sender are served at once; SyncBlocks returns at most `SYNC_BLOCKS_MAX` blocks.
- One outbound task per peer keeps a Gossip stream open, reconnecting with exponential
  backoff (`PEER_RECONNECT_BACKOFF_MS_MIN` doubling to `PEER_RECONNECT_BACKOFF_MS_MAX`, with
  jitter from the `random.Random` passed in). A stream counts as connected (see
  `connected_peers`) once the peer has accepted it: the server sends its initial metadata,
  carrying its node id, only after authorising the caller. An answer from a node other than
  the one configured at that address is treated as a failed connection.
- Keepalive pings on both sides notice a peer that went silent (a frozen host, a half-open
  TCP connection) within about `PEER_KEEPALIVE_INTERVAL_MS + PEER_KEEPALIVE_TIMEOUT_MS`.
- After `stop()`, inbound calls are refused with UNAVAILABLE and open inbound streams stop
  delivering; the server itself is the caller's to stop.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter, deque
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Protocol

import grpc

from provledger.node.settings import (
    GRPC_CONCURRENT_STREAMS_MAX,
    GRPC_MESSAGE_SIZE_BYTES_MAX,
    PEER_CONNECT_TIMEOUT_MS,
    PEER_INBOUND_STREAMS_MAX,
    PEER_KEEPALIVE_INTERVAL_MS,
    PEER_KEEPALIVE_TIMEOUT_MS,
    PEER_QUEUE_BYTES_MAX,
    PEER_QUEUE_MESSAGES_MAX,
    PEER_RECONNECT_BACKOFF_MS_MAX,
    PEER_RECONNECT_BACKOFF_MS_MIN,
    PEER_STATUS_TIMEOUT_MS,
    PEER_SYNC_TIMEOUT_MS,
    PEERS_MAX,
    SYNC_BLOCKS_CHUNK_MAX,
    SYNC_BLOCKS_MAX,
)
from provledger.node.tls import (
    PeerTrust,
    TlsMaterial,
    channel_credentials,
    dynamic_server_credentials,
    peer_certificate_pem,
    peer_node_id,
    peer_trust,
    server_credentials,
)
from provledger.v1 import peer_pb2, peer_pb2_grpc

log = logging.getLogger("provledger.peers")


NODE_ID_METADATA_KEY = "provledger-node-id"

_KEEPALIVE_OPTIONS = [
    ("grpc.keepalive_time_ms", PEER_KEEPALIVE_INTERVAL_MS),
    ("grpc.keepalive_timeout_ms", PEER_KEEPALIVE_TIMEOUT_MS),
    # Recent gRPC cores time a keepalive ping out with this (default 60 s), not the above.
    ("grpc.http2.ping_timeout_ms", PEER_KEEPALIVE_TIMEOUT_MS),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
]
PEER_SERVER_OPTIONS = [
    ("grpc.max_receive_message_length", GRPC_MESSAGE_SIZE_BYTES_MAX),
    ("grpc.max_send_message_length", GRPC_MESSAGE_SIZE_BYTES_MAX),
    ("grpc.max_concurrent_streams", GRPC_CONCURRENT_STREAMS_MAX),
    ("grpc.so_reuseport", 0),
    *_KEEPALIVE_OPTIONS,
    # Accept the peers' keepalive pings (the default would answer them with GOAWAY).
    ("grpc.http2.min_recv_ping_interval_without_data_ms", PEER_KEEPALIVE_INTERVAL_MS // 2),
]
PEER_CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", GRPC_MESSAGE_SIZE_BYTES_MAX),
    ("grpc.max_send_message_length", GRPC_MESSAGE_SIZE_BYTES_MAX),
    *_KEEPALIVE_OPTIONS,
    # The channel's own reconnection backoff must not outlast ours (its default reaches 120 s).
    ("grpc.initial_reconnect_backoff_ms", PEER_RECONNECT_BACKOFF_MS_MIN),
    ("grpc.min_reconnect_backoff_ms", PEER_RECONNECT_BACKOFF_MS_MIN),
    ("grpc.max_reconnect_backoff_ms", PEER_RECONNECT_BACKOFF_MS_MAX),
]


class PeerHandler(Protocol):
    """What the network hands inbound traffic to (see the module docstring)."""

    def on_peer_message(self, sender_id: str, message: peer_pb2.PeerMessage) -> None: ...

    def blocks_from(self, from_height: int, max_blocks: int) -> list[peer_pb2.SyncedBlock]: ...

    def status(self) -> peer_pb2.StatusResponse: ...


class PeerRequestError(Exception):
    """A request to a peer (SyncBlocks) failed; `code` is the gRPC status code."""

    def __init__(self, peer_id: str, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"peer {peer_id}: {code.name}: {details}")
        self.peer_id = peer_id
        self.code = code
        self.details = details


@dataclass(frozen=True)
class PeerStats:
    """Counters for one peer, for logs and metrics."""

    connected: bool
    queued_messages: int
    queued_bytes: int
    sent_messages: int
    dropped_messages: int
    received_messages: int
    connections: int  # Gossip streams this node opened to the peer and the peer accepted


@dataclass
class _Peer:
    """One remote validator: its outbound queue, its channel and its counters."""

    peer_id: str
    address: str
    queue: deque[tuple[peer_pb2.PeerMessage, int]] = field(default_factory=deque)
    queued_bytes: int = 0
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    connected: bool = False
    sent_messages: int = 0
    dropped_messages: int = 0
    received_messages: int = 0
    connections: int = 0
    consecutive_failures: int = 0
    channel: grpc.aio.Channel | None = None
    task: asyncio.Task[None] | None = None


class PeerNetwork:
    """This node's connections to the other validators. See the module docstring."""

    def __init__(
        self,
        node_id: str,
        peer_addresses: dict[str, str],
        tls: TlsMaterial,
        validator_ids: Iterable[str],
        *,
        rng: random.Random | None = None,
        queue_messages_max: int = PEER_QUEUE_MESSAGES_MAX,
        queue_bytes_max: int = PEER_QUEUE_BYTES_MAX,
        trust: PeerTrust | None = None,
    ) -> None:
        validators = frozenset(validator_ids)
        if node_id in peer_addresses:
            raise ValueError(f"node {node_id} cannot be its own peer")
        if len(peer_addresses) > PEERS_MAX:
            raise ValueError(f"{len(peer_addresses)} peers; at most {PEERS_MAX} are supported")
        if not 0 < queue_messages_max <= PEER_QUEUE_MESSAGES_MAX:
            raise ValueError(f"queue_messages_max must be 1-{PEER_QUEUE_MESSAGES_MAX}")
        if not GRPC_MESSAGE_SIZE_BYTES_MAX <= queue_bytes_max <= PEER_QUEUE_BYTES_MAX:
            raise ValueError(
                f"queue_bytes_max must be {GRPC_MESSAGE_SIZE_BYTES_MAX}-{PEER_QUEUE_BYTES_MAX}"
            )
        self.node_id = node_id
        self._tls = tls
        # Which CA may issue which validator's certificate (one consortium CA by default).
        self._trust = trust if trust is not None else PeerTrust(tls.ca_certificate_pem)
        self._validator_ids = validators
        self._handler: PeerHandler | None = None
        self._rng = rng if rng is not None else random.Random()
        self._queue_messages_max = queue_messages_max
        self._queue_bytes_max = queue_bytes_max
        self._peers = {
            peer_id: _Peer(peer_id, address) for peer_id, address in sorted(peer_addresses.items())
        }
        self._refusals: Counter[str | None] = Counter()
        self._inbound_streams: Counter[str] = Counter()
        self._started = False
        self._stopped = False
        self._closing: set[asyncio.Future[None]] = set()  # channels closed by set_tls_roots

    def attach(self, handler: PeerHandler) -> None:
        """Hand inbound traffic to `handler`; once, before `add_to_server`."""
        if self._handler is not None:
            raise RuntimeError("PeerNetwork.attach called twice")
        self._handler = handler

    # --- server side ---------------------------------------------------------------------

    def add_to_server(self, server: grpc.aio.Server, listen: str) -> int:
        """Register PeerService on `server` with a mutual-TLS port at `listen`; return the port
        (useful with "127.0.0.1:0"). Raises OSError if it cannot listen."""
        if self._handler is None:  # nothing may arrive unhandled
            raise RuntimeError("PeerNetwork.attach(handler) must come before add_to_server")
        peer_pb2_grpc.add_PeerServiceServicer_to_server(_PeerServicer(self, self._handler), server)
        if self._trust.per_organisation:
            # The roots change with the validator sets (`set_tls_roots`); gRPC reads them
            # again at every new connection's handshake.
            credentials = dynamic_server_credentials(self._tls, self._handshake_roots)
        else:
            credentials = server_credentials(self._tls, self._trust.handshake_roots())
        port = server.add_secure_port(listen, credentials)
        if port == 0:
            raise OSError(f"cannot listen for peers on {listen}")
        return port

    def set_validator_ids(self, validator_ids: Iterable[str]) -> None:
        """Replace the set of node ids allowed to call us (after a governance change)."""
        self._validator_ids = frozenset(validator_ids)

    def set_tls_roots(
        self, validator_tls_cas: Iterable[tuple[str, bytes]], every_root: Iterable[bytes]
    ) -> None:
        """Follow the validators' organisations' CA roots (ADR 015) after a commit: those of
        the sets from the next height on (`ValidatorHistory.tls_cas_from`), and every root the
        chain of sets named (`every_tls_ca`), which the handshake trusts. Only with roots per
        organisation (a genesis without them keeps the consortium CA). The issuer check of the
        next call uses them; a channel to a peer whose root changed is closed, so the next
        dial trusts the new root (its stream breaks and reconnects). Raises TlsMaterialError
        if a root is not a CA root."""
        if not self._trust.per_organisation:
            return
        trust = peer_trust(self._tls, validator_tls_cas, every_root=every_root, check_own=False)
        if not trust.per_organisation or trust == self._trust:
            return
        before, self._trust = self._trust, trust
        own = trust.roots_of(self.node_id)
        if own and self._tls.ca_certificate_pem not in own:
            log.error(
                "the validator sets no longer name this node's tls/ca.pem as its organisation's "
                "CA: its peers will refuse it until it runs with a certificate from the new CA"
            )
        for peer in self._peers.values():
            if peer.channel is not None and before.root_for(peer.peer_id) != trust.root_for(
                peer.peer_id
            ):
                channel, peer.channel = peer.channel, None
                self._closing.add(asyncio.ensure_future(channel.close()))
                self._closing = {task for task in self._closing if not task.done()}

    def _handshake_roots(self) -> bytes:
        """The roots the peer port's handshake trusts now (read by gRPC's threads)."""
        return self._trust.handshake_roots()

    def is_authorised(self, sender_id: str | None) -> bool:
        """Whether `sender_id` may gossip to this node: another validator."""
        return (
            sender_id is not None and sender_id in self._validator_ids and sender_id != self.node_id
        )

    def may_read(self, sender_id: str | None) -> bool:
        """Whether `sender_id` may sync blocks and ask for status: another validator, or a
        peer this node is configured with (a follower, such as a validator still to be added)."""
        return self.is_authorised(sender_id) or (sender_id is not None and sender_id in self._peers)

    def issuer_problem(self, sender_id: str, certificate_pem: bytes | None) -> str | None:
        """Why `sender_id`'s certificate was not issued by its organisation's CA, or None
        (`tls.PeerTrust.issuer_problem`)."""
        if certificate_pem is None:
            return "no client certificate"
        return self._trust.issuer_problem(sender_id, certificate_pem)

    def _refused(
        self,
        sender_id: str | None,
        peer_address: str,
        reason: str = "is not another validator",
    ) -> None:
        if len(self._refusals) >= PEERS_MAX and sender_id not in self._refusals:
            self._refusals.clear()  # bounded memory; only the log's pacing is reset
        self._refusals[sender_id] += 1
        refusals = self._refusals[sender_id]
        log.log(
            _repeat_level(refusals),  # a misconfigured peer retries every backoff period
            "refused a peer call from %s: node id %r %s (%d times)",
            peer_address,
            sender_id,
            reason,
            refusals,
            extra={"peer": sender_id},
        )

    def _count_received(self, sender_id: str) -> None:
        peer = self._peers.get(sender_id)
        if peer is not None:
            peer.received_messages += 1

    def _inbound_opened(self, sender_id: str) -> bool:
        # Keyed by authorised validator ids only, so this counter is bounded by the set.
        if self._inbound_streams[sender_id] >= PEER_INBOUND_STREAMS_MAX:
            return False
        self._inbound_streams[sender_id] += 1
        return True

    def _inbound_closed(self, sender_id: str) -> None:
        self._inbound_streams[sender_id] -= 1
        if self._inbound_streams[sender_id] == 0:
            del self._inbound_streams[sender_id]

    # --- client side ---------------------------------------------------------------------

    async def start(self) -> None:
        """Start one outbound Gossip task per peer. Messages queued before are sent then."""
        if self._started:
            raise RuntimeError("PeerNetwork.start called twice")
        self._started = True
        for peer in self._peers.values():
            peer.task = asyncio.create_task(
                self._run_outbound(peer), name=f"provledger.peers:{peer.peer_id}"
            )
        log.info("node %s dialling %d peers", self.node_id, len(self._peers))

    async def stop(self) -> None:
        """Stop the outbound tasks and close the channels. The caller stops the server."""
        self._stopped = True
        tasks = [peer.task for peer in self._peers.values() if peer.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for peer in self._peers.values():
            peer.task = None
            peer.connected = False
            if peer.channel is not None:
                await peer.channel.close()
                peer.channel = None
        await asyncio.gather(*self._closing, return_exceptions=True)

    def broadcast(self, message: peer_pb2.PeerMessage) -> None:
        """Queue `message` for every peer. Never blocks; the message must not be mutated."""
        size = _checked_size(message)
        for peer in self._peers.values():
            self._enqueue(peer, message, size)

    def send(self, peer_id: str, message: peer_pb2.PeerMessage) -> None:
        """Queue `message` for one peer. Never blocks; the message must not be mutated."""
        self._enqueue(self._peer(peer_id), message, _checked_size(message))

    async def fetch_blocks(
        self, peer_id: str, from_height: int, max_blocks: int
    ) -> list[peer_pb2.SyncedBlock]:
        """Up to min(max_blocks, SYNC_BLOCKS_MAX) committed blocks from `from_height`.

        Raises PeerRequestError if the call fails or exceeds `PEER_SYNC_TIMEOUT_MS`; what the
        blocks prove is for the caller to verify.
        """
        peer = self._peer(peer_id)
        wanted = min(max_blocks, SYNC_BLOCKS_MAX)
        if wanted <= 0 or from_height < 0:
            return []
        stub = peer_pb2_grpc.PeerServiceStub(self._channel(peer))
        request = peer_pb2.SyncBlocksRequest(from_height=from_height, max_blocks=wanted)
        blocks: list[peer_pb2.SyncedBlock] = []
        call = stub.SyncBlocks(request, timeout=PEER_SYNC_TIMEOUT_MS / 1000)
        try:
            async for block in call:
                blocks.append(block)
                if len(blocks) >= wanted:  # do not trust the peer to respect the cap
                    break
        except grpc.aio.AioRpcError as error:
            raise PeerRequestError(peer_id, error.code(), error.details() or "") from error
        finally:
            call.cancel()
        return blocks

    async def peer_status(self, peer_id: str) -> peer_pb2.StatusResponse | None:
        """The peer's status, or None if it does not answer within PEER_STATUS_TIMEOUT_MS."""
        stub = peer_pb2_grpc.PeerServiceStub(self._channel(self._peer(peer_id)))
        try:
            response: peer_pb2.StatusResponse = await stub.Status(
                peer_pb2.StatusRequest(), timeout=PEER_STATUS_TIMEOUT_MS / 1000
            )
        except grpc.aio.AioRpcError as error:
            log.debug("status of peer %s: %s", peer_id, error.code().name)
            return None
        return response

    def dials(self, peer_id: str) -> bool:
        """Whether `peer_id` is a configured peer, one this node can call. A validator added by
        governance may call this node before its address is in this node's config."""
        return peer_id in self._peers

    def connected_peers(self) -> set[str]:
        """Peers that currently hold an accepted Gossip stream from this node."""
        return {peer.peer_id for peer in self._peers.values() if peer.connected}

    def stats(self) -> dict[str, PeerStats]:
        return {
            peer.peer_id: PeerStats(
                connected=peer.connected,
                queued_messages=len(peer.queue),
                queued_bytes=peer.queued_bytes,
                sent_messages=peer.sent_messages,
                dropped_messages=peer.dropped_messages,
                received_messages=peer.received_messages,
                connections=peer.connections,
            )
            for peer in self._peers.values()
        }

    # --- internals -----------------------------------------------------------------------

    def _peer(self, peer_id: str) -> _Peer:
        peer = self._peers.get(peer_id)
        if peer is None:
            raise ValueError(f"unknown peer {peer_id!r}")
        return peer

    def _channel(self, peer: _Peer) -> grpc.aio.Channel:
        if self._stopped:
            raise RuntimeError("PeerNetwork is stopped")
        if peer.channel is None:
            credentials = channel_credentials(self._tls, self._trust.root_for(peer.peer_id))
            peer.channel = grpc.aio.secure_channel(
                peer.address, credentials, options=PEER_CHANNEL_OPTIONS
            )
        return peer.channel

    def _enqueue(self, peer: _Peer, message: peer_pb2.PeerMessage, size: int) -> None:
        peer.queue.append((message, size))
        peer.queued_bytes += size
        dropped = 0
        while (
            len(peer.queue) > self._queue_messages_max or peer.queued_bytes > self._queue_bytes_max
        ):
            _, dropped_size = peer.queue.popleft()
            peer.queued_bytes -= dropped_size
            dropped += 1
        if dropped:
            before = peer.dropped_messages
            peer.dropped_messages += dropped
            # Log at 1, 2, 4, 8, ... drops: visible without flooding the log.
            if before.bit_length() != peer.dropped_messages.bit_length():
                log.warning(
                    "peer %s queue full: %d messages dropped so far (oldest first)",
                    peer.peer_id,
                    peer.dropped_messages,
                    extra={"peer": peer.peer_id},
                )
        peer.wakeup.set()

    async def _run_outbound(self, peer: _Peer) -> None:
        """Keep a Gossip stream to `peer` open until cancelled by `stop`."""
        backoff_ms = PEER_RECONNECT_BACKOFF_MS_MIN
        while True:
            error: Exception | None = None
            try:
                await self._gossip_once(peer)
            except (grpc.aio.AioRpcError, _PeerIdentityError, TimeoutError) as caught:
                error = caught
            except Exception as caught:  # a bug; keep the peer's sender alive, loudly
                log.exception("gossip sender for peer %s failed unexpectedly", peer.peer_id)
                error = caught
            if peer.connected:
                peer.connected = False
                backoff_ms = PEER_RECONNECT_BACKOFF_MS_MIN
                log.warning(
                    "gossip stream to peer %s closed: %s",
                    peer.peer_id,
                    _describe(error),
                    extra={"peer": peer.peer_id},
                )
            else:  # a peer that stays down or keeps refusing us stays visible, not flooding
                peer.consecutive_failures += 1
                failures = peer.consecutive_failures
                log.log(
                    _repeat_level(failures),
                    "gossip to peer %s at %s failed (%d in a row): %s",
                    peer.peer_id,
                    peer.address,
                    failures,
                    _describe(error),
                    extra={"peer": peer.peer_id},
                )
            delay_ms = self._rng.uniform(backoff_ms / 2, backoff_ms)
            await asyncio.sleep(delay_ms / 1000)
            backoff_ms = min(backoff_ms * 2, PEER_RECONNECT_BACKOFF_MS_MAX)

    async def _gossip_once(self, peer: _Peer) -> None:
        """Open one Gossip stream and feed it from the queue until it ends.

        Sets `peer.connected` once the peer accepted the stream. Raises the call's error (or
        returns, if the peer ended the stream cleanly); `_run_outbound` reconnects either way.
        """
        stub = peer_pb2_grpc.PeerServiceStub(self._channel(peer))
        call = stub.Gossip()
        call.add_done_callback(lambda _: peer.wakeup.set())
        try:
            async with asyncio.timeout(PEER_CONNECT_TIMEOUT_MS / 1000):
                metadata = await call.initial_metadata()
                if NODE_ID_METADATA_KEY not in metadata:
                    # The peer ended the call without accepting it: raise its refusal
                    # (PERMISSION_DENIED, UNAVAILABLE, ...).
                    await call
            answered_as = metadata.get(NODE_ID_METADATA_KEY)
            if answered_as != peer.peer_id:
                raise _PeerIdentityError(
                    f"{peer.address} answers as node {answered_as!r}, expected {peer.peer_id!r}"
                )
            peer.connected = True
            peer.connections += 1
            log.info(
                "connected to peer %s at %s (after %d failed attempts)",
                peer.peer_id,
                peer.address,
                peer.consecutive_failures,
                extra={"peer": peer.peer_id},
            )
            peer.consecutive_failures = 0
            await self._write_queue(peer, call)
            await call  # the stream is over: raises its error, or returns the GossipAck
        finally:
            call.cancel()

    async def _write_queue(self, peer: _Peer, call: grpc.aio.StreamUnaryCall) -> None:
        """Send queued messages on `call` until it is done (the done callback wakes us)."""
        while not call.done():
            if not peer.queue:
                # No await between the check and the wait, so a wakeup cannot be missed.
                peer.wakeup.clear()
                await peer.wakeup.wait()
                continue
            message, size = peer.queue.popleft()
            peer.queued_bytes -= size
            try:
                await call.write(message)
            except asyncio.InvalidStateError:
                return  # the call finished (ended by the server) while we were writing
            peer.sent_messages += 1


class _PeerIdentityError(Exception):
    """The node at a peer's address is not that peer (a configuration mistake)."""


def _repeat_level(count: int) -> int:
    """WARNING for the 1st, 2nd, 4th, 8th... time a problem repeats, else DEBUG: visible
    without a log line every time."""
    return logging.WARNING if count & (count - 1) == 0 else logging.DEBUG


def _describe(error: Exception | None) -> str:
    if error is None:
        return "ended by the peer"
    if isinstance(error, grpc.aio.AioRpcError):
        return f"{error.code().name}: {error.details()}"
    if isinstance(error, TimeoutError):
        return f"no answer within {PEER_CONNECT_TIMEOUT_MS} ms"
    return f"{type(error).__name__}: {error}"


def _checked_size(message: peer_pb2.PeerMessage) -> int:
    size = message.ByteSize()
    if size > GRPC_MESSAGE_SIZE_BYTES_MAX:
        raise ValueError(f"peer message of {size} bytes exceeds {GRPC_MESSAGE_SIZE_BYTES_MAX}")
    return size


def create_peer_server() -> grpc.aio.Server:
    """A gRPC aio server with the options PeerService expects (size limits, keepalive)."""
    return grpc.aio.server(options=PEER_SERVER_OPTIONS)


class _PeerServicer(peer_pb2_grpc.PeerServiceServicer):
    """PeerService's handlers: authorise the caller, then hand over to the PeerNetwork."""

    def __init__(self, network: PeerNetwork, handler: PeerHandler) -> None:
        self._network = network
        self._handler = handler

    async def _authorise(self, context: grpc.aio.ServicerContext, *, read: bool = False) -> str:
        """The caller's node id, if it may make this call (a read: SyncBlocks or Status);
        else the call is aborted."""
        if self._network._stopped:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "stopping: this node is stopping")
        sender_id = peer_node_id(context)
        network = self._network
        allowed = network.may_read(sender_id) if read else network.is_authorised(sender_id)
        if sender_id is None or not allowed:
            self._network._refused(sender_id, context.peer())
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"unknown_peer: {sender_id!r} is not another validator of this consortium",
            )
            raise RuntimeError("context.abort returned")  # abort always raises
        problem = self._network.issuer_problem(sender_id, peer_certificate_pem(context))
        if problem is not None:
            self._network._refused(sender_id, context.peer(), f"was refused: {problem}")
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, f"wrong_issuer: {problem}")
            raise RuntimeError("context.abort returned")
        return sender_id

    async def Gossip(
        self,
        request_iterator: AsyncIterator[peer_pb2.PeerMessage],
        context: grpc.aio.ServicerContext,
    ) -> peer_pb2.GossipAck:
        sender_id = await self._authorise(context)
        if not self._network._inbound_opened(sender_id):
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"too_many_streams: at most {PEER_INBOUND_STREAMS_MAX} gossip streams per peer",
            )
        try:
            # Accepting the stream: the caller counts itself connected once it sees this.
            await context.send_initial_metadata(((NODE_ID_METADATA_KEY, self._network.node_id),))
            log.debug("gossip stream from peer %s opened", sender_id, extra={"peer": sender_id})
            async for message in request_iterator:
                if self._network._stopped:
                    break
                if message.WhichOneof("message") is None:
                    continue  # an empty message carries nothing (perhaps a newer field)
                self._network._count_received(sender_id)
                try:
                    self._handler.on_peer_message(sender_id, message)
                except Exception:  # the handler's bug: close this stream, keep the node up
                    log.exception("handling a message from peer %s failed", sender_id)
                    await context.abort(grpc.StatusCode.INTERNAL, "internal: handler failed")
        finally:
            self._network._inbound_closed(sender_id)
        return peer_pb2.GossipAck()

    async def SyncBlocks(
        self, request: peer_pb2.SyncBlocksRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[peer_pb2.SyncedBlock]:
        await self._authorise(context, read=True)
        wanted = min(request.max_blocks or SYNC_BLOCKS_MAX, SYNC_BLOCKS_MAX)
        height = request.from_height
        sent = 0
        while sent < wanted:
            chunk_size = min(SYNC_BLOCKS_CHUNK_MAX, wanted - sent)
            chunk = self._handler.blocks_from(height, chunk_size)[:chunk_size]
            for block in chunk:
                yield block
            sent += len(chunk)
            height += len(chunk)
            if len(chunk) < chunk_size:
                break

    async def Status(
        self, request: peer_pb2.StatusRequest, context: grpc.aio.ServicerContext
    ) -> peer_pb2.StatusResponse:
        await self._authorise(context, read=True)
        return self._handler.status()

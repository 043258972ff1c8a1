"""The node's LevelDB store: blocks, events, the Merkle log, world state and indexes.

Invariants:
- A block and everything derived from it (events, log entries, Merkle nodes, state records,
  nonces, indexes, the new head) is written in ONE `write_batch(transaction=True, sync=True)`.
  After a crash either all of it is on disk or none of it is, so the head is never ahead of
  what it points at and nothing acknowledged is lost.
- The head is the only mutable pointer. On open, the store checks the head against the chain:
  the head block's certificate, the stored block-id index, and the log root recomputed from the
  stored Merkle nodes must all agree with the head header.
- Every key comes from `schema`; every Merkle proof is answered from stored perfect-subtree
  hashes in O(log n) reads.

One writer (the block committer, in a worker thread) and readers on the event loop; plyvel
reads are consistent per key, and readers only ever look at heights at or below the head they
read first. World-state records are cached parsed; a commit updates the cache under a lock and
bumps a generation counter, so a read that raced a commit never caches a stale value.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import plyvel
from google.protobuf.message import Message

from provledger.node import schema
from provledger.node.settings import (
    HEADERS_CACHED_MAX,
    LEVELDB_BLOCK_CACHE_BYTES,
    LEVELDB_BLOOM_FILTER_BITS,
    LEVELDB_WRITE_BUFFER_BYTES,
    STATE_CACHE_RECORDS_MAX,
)
from provledger.protocol import merkle
from provledger.protocol.blocks import (
    ExecutedBlock,
    Tip,
    decode_header,
    genesis_tip,
    genesis_writes,
    verify_certificate,
)
from provledger.protocol.concerns import concerns
from provledger.protocol.errors import check
from provledger.protocol.events import DecodedEvent
from provledger.protocol.genesis import Genesis
from provledger.protocol.state import RECORD_TYPES, Write
from provledger.v1 import ledger_pb2, peer_pb2, state_pb2

_NOT_CACHED = object()


class StoreError(Exception):
    """The data on disk is not a consistent chain for this genesis."""


class Store:
    def __init__(self, path: Path | str, genesis: Genesis, *, create: bool = True) -> None:
        """Open the ledger at `path`; with `create=False`, refuse a folder that holds none
        (so a mistyped path is an error, not a new empty ledger)."""
        self._genesis = genesis
        self._db = plyvel.DB(
            str(path),
            create_if_missing=create,
            # Fewer, larger flushes mean less compaction work per event; bloom filters answer
            # most lookups of absent keys (new event ids, unused nonces, new asset ids)
            # without reading a block.
            write_buffer_size=LEVELDB_WRITE_BUFFER_BYTES,
            bloom_filter_bits=LEVELDB_BLOOM_FILTER_BITS,
            lru_cache_size=LEVELDB_BLOCK_CACHE_BYTES,
        )
        self._lock = threading.Lock()
        # Parsed world-state records, read-through and updated by each commit. Callers never
        # mutate what `load` returns (the rules copy before they change anything).
        self._records: dict[tuple[str, str], Message | None] = {}
        self._generation = 0
        self._headers: dict[int, ledger_pb2.BlockHeader] = {}
        stored_hash = self._db.get(schema.META_GENESIS_HASH)
        if stored_hash is None:
            self._initialise()
        elif stored_hash != genesis.genesis_hash:
            self._db.close()
            raise StoreError(f"the database at {path} belongs to a different genesis")
        self._head_height = schema.decode_number(self._db.get(schema.META_HEAD_HEIGHT))
        # Every read goes through a snapshot of the last committed block, replaced when the
        # next one is written: a reader (validating a proposal, answering a query) never sees
        # a block half-applied while a commit is being written in another thread.
        self._read = self._db.snapshot()
        self._log = merkle.CompactRange()
        self._tip = genesis_tip(genesis)
        self._check_head()

    # --- lifecycle ------------------------------------------------------------------------

    def _initialise(self) -> None:
        with self._db.write_batch(transaction=True, sync=True) as batch:
            for write in genesis_writes(self._genesis):
                self._put_write(batch, write)
            batch.put(schema.META_HEAD_HEIGHT, schema.encode_number(0))
            batch.put(schema.META_GENESIS_HASH, self._genesis.genesis_hash)

    def _check_head(self) -> None:
        """Check the head against the stored chain and load the log's frontier."""
        if self._head_height == 0:
            return
        stored = self._stored_block(self._head_height)
        if stored is None:
            raise StoreError(f"head height {self._head_height} has no stored block")
        header = decode_header(stored.header)
        tip = Tip.from_header(header, stored.header)
        if self._db.get(schema.block_id_key(tip.block_id)) != schema.encode_number(tip.height):
            raise StoreError("the head block is missing from the block-id index")
        try:
            verify_certificate(
                stored.certificate, header, stored.header, self._genesis.validator_set
            )
        except Exception as error:
            raise StoreError(f"the head block's certificate does not verify: {error}") from None
        log = merkle.CompactRange.from_nodes(header.log_size, self.merkle_node)
        if log.root() != header.log_root:
            raise StoreError("the log root recomputed from stored nodes differs from the head's")
        self._log = log
        self._tip = tip

    def close(self) -> None:
        self._db.close()

    # --- the head ---------------------------------------------------------------------------

    @property
    def head_height(self) -> int:
        return self._head_height

    @property
    def tip(self) -> Tip:
        return self._tip

    @property
    def log(self) -> merkle.CompactRange:
        """The log's frontier at the head; callers must not modify it."""
        return self._log

    # --- StateReader ------------------------------------------------------------------------

    def load(self, kind: str, record_id: str) -> Message | None:
        key = (kind, record_id)
        cached = self._records.get(key, _NOT_CACHED)
        if cached is not _NOT_CACHED:
            return cached  # type: ignore[return-value]
        generation = self._generation
        raw = self._read.get(schema.state_key(kind, record_id))
        record = None
        if raw is not None:
            record = RECORD_TYPES[kind]()
            record.ParseFromString(raw)
        with self._lock:
            # Only cache what no commit has overtaken since the read: otherwise a value read
            # just before a block landed could outlive it in the cache.
            if generation == self._generation:
                if len(self._records) >= STATE_CACHE_RECORDS_MAX:
                    self._records.clear()
                self._records[key] = record
        return record

    def nonce_used(self, member_id: str, nonce: int) -> bool:
        return self._read.get(schema.nonce_key(member_id, nonce)) is not None

    def members(self) -> Iterable[state_pb2.MemberRecord]:
        prefix = schema.state_key("member", "")
        for _, raw in self._read.iterator(prefix=prefix):
            record = state_pb2.MemberRecord()
            record.ParseFromString(raw)
            yield record

    # --- writing a block --------------------------------------------------------------------

    def commit_block(
        self, executed: ExecutedBlock, certificate: ledger_pb2.CommitCertificate
    ) -> None:
        """Persist a committed block and everything derived from it, atomically and synced."""
        height = executed.header.height
        check(height == self._head_height + 1, f"block {height} does not follow the head")
        check(certificate.block_id == executed.block_id, "certificate is for another block")
        stored = state_pb2.StoredBlock(
            header=executed.header_bytes,
            certificate=certificate,
            event_ids=[d.event_id for d in executed.events],
            evidence=executed.evidence,
        )
        if executed.last_commit is not None:
            stored.last_commit.CopyFrom(executed.last_commit)
        block_writes = {(w.kind, w.record_id): w.record for w in executed.writes if w.record}
        first_log_index = executed.header.log_size - len(executed.events)
        with self._db.write_batch(transaction=True, sync=True) as batch:
            batch.put(schema.block_key(height), stored.SerializeToString())
            batch.put(schema.block_id_key(executed.block_id), schema.encode_number(height))
            for position, decoded in enumerate(executed.events):
                log_index = first_log_index + position
                location = state_pb2.EventLocation(
                    height=height, position=position, log_index=log_index, event=decoded.signed
                )
                # Events live under their log index (keys in append order, cheap for LevelDB
                # to write and to read a block back); the id maps to the index.
                batch.put(schema.log_key(log_index), location.SerializeToString())
                batch.put(schema.event_key(decoded.event_id), schema.encode_number(log_index))
                self._put_indexes(batch, decoded, log_index, block_writes)
            for level, index, node_hash in executed.merkle_nodes:
                batch.put(schema.tree_key(level, index), node_hash)
            for write in executed.writes:
                self._put_write(batch, write)
            batch.put(schema.META_HEAD_HEIGHT, schema.encode_number(height))
            # What this validator signed for heights now final is no longer needed.
            for key in self._db.iterator(
                start=schema.CONSENSUS_PREFIX,
                stop=schema.signed_messages_from(height + 1),
                include_value=False,
            ):
                batch.delete(key)
        snapshot = self._db.snapshot()
        with self._lock:
            self._read = snapshot
            self._generation += 1
            for write in executed.writes:
                if write.record is not None:
                    self._records[(write.kind, write.record_id)] = write.record
            self._head_height = height
            self._log = executed.log
            self._tip = Tip.from_header(executed.header, executed.header_bytes)

    def _put_write(self, batch, write: Write) -> None:
        if write.nonce is not None:
            batch.put(schema.nonce_key(write.record_id, write.nonce), b"")
        else:
            batch.put(
                schema.state_key(write.kind, write.record_id),
                write.record.SerializeToString(deterministic=True),  # type: ignore[union-attr]
            )

    def _put_indexes(
        self,
        batch,
        decoded: DecodedEvent,
        log_index: int,
        block_writes: dict[tuple[str, str], Message | None],
    ) -> None:
        def lookup(kind: str, record_id: str):
            record = block_writes.get((kind, record_id))
            return record if record is not None else self.load(kind, record_id)

        payload = getattr(decoded.event, decoded.kind)
        about = concerns(decoded.kind, payload, lookup)
        for asset_id in about.assets:
            batch.put(schema.asset_history_key(asset_id, log_index), decoded.event_id)
        for parent_id, child_id in about.lineage_edges:
            batch.put(schema.upstream_key(child_id, parent_id), b"")
            batch.put(schema.downstream_key(parent_id, child_id), b"")
        if decoded.kind == "grant_issued":
            batch.put(schema.grants_by_asset_key(payload.asset_id, payload.grant_id), b"")
            batch.put(schema.grants_by_grantee_key(payload.grantee_id, payload.grant_id), b"")
            batch.put(schema.grants_by_grantor_key(decoded.author_id, payload.grant_id), b"")
        elif decoded.kind == "order_placed":
            check(
                len(about.assets) == 1, f"order {payload.order_id!r} was placed without its offer"
            )
            for member_id in about.members:
                batch.put(schema.orders_by_member_key(member_id, payload.order_id), b"")
            batch.put(schema.orders_by_asset_key(about.assets[0], payload.order_id), b"")

    # --- the consensus vote log -------------------------------------------------------------

    def save_signed(
        self, message: ledger_pb2.Vote | peer_pb2.Proposal, block: ledger_pb2.Block | None
    ) -> None:
        """Record a vote or proposal this validator signed, synced, before it is sent."""
        if isinstance(message, peer_pb2.Proposal):
            key = schema.signed_message_key(message.height, message.round, 0)
            entry = peer_pb2.PeerMessage(proposal=message)
        else:
            key = schema.signed_message_key(message.height, message.round, message.type)
            entry = peer_pb2.PeerMessage(vote=message)
        value = entry.SerializeToString()
        block_bytes = block.SerializeToString() if block is not None else b""
        record = len(value).to_bytes(4, "big") + value + block_bytes
        self._db.put(key, record, sync=True)

    def load_signed(
        self, from_height: int
    ) -> list[tuple[ledger_pb2.Vote | peer_pb2.Proposal, ledger_pb2.Block | None]]:
        """What this validator signed at `from_height` and later."""
        entries: list[tuple[ledger_pb2.Vote | peer_pb2.Proposal, ledger_pb2.Block | None]] = []
        start = schema.signed_messages_from(from_height)
        for key, record in self._db.iterator(start=start):
            if not key.startswith(schema.CONSENSUS_PREFIX):
                break
            length = int.from_bytes(record[:4], "big")
            entry = peer_pb2.PeerMessage()
            entry.ParseFromString(record[4 : 4 + length])
            block = None
            if len(record) > 4 + length:
                block = ledger_pb2.Block()
                block.ParseFromString(record[4 + length :])
            message = entry.proposal if entry.HasField("proposal") else entry.vote
            entries.append((message, block))
        return entries

    # --- reading blocks and events ----------------------------------------------------------

    def _stored_block(self, height: int) -> state_pb2.StoredBlock | None:
        raw = self._read.get(schema.block_key(height))
        if raw is None:
            return None
        stored = state_pb2.StoredBlock()
        stored.ParseFromString(raw)
        return stored

    def block(self, height: int) -> tuple[ledger_pb2.Block, ledger_pb2.CommitCertificate] | None:
        """The block at `height` and the certificate that commits it."""
        if not 1 <= height <= self._head_height:
            return None
        stored = self._stored_block(height)
        if stored is None:
            return None
        block = ledger_pb2.Block(header=stored.header, evidence=stored.evidence)
        if stored.HasField("last_commit"):
            block.last_commit.CopyFrom(stored.last_commit)
        header = self.header(height)
        if header is None:
            return None
        first = header.log_size - header.event_count
        for _, raw in self._read.iterator(
            start=schema.log_key(first), stop=schema.log_key(header.log_size)
        ):
            location = state_pb2.EventLocation()
            location.ParseFromString(raw)
            block.events.append(location.event)
        check(len(block.events) == header.event_count, f"block {height} lacks stored events")
        return block, stored.certificate

    def checkpoint(self, height: int) -> ledger_pb2.Checkpoint | None:
        if not 1 <= height <= self._head_height:
            return None
        stored = self._stored_block(height)
        if stored is None:
            return None
        return ledger_pb2.Checkpoint(header=stored.header, certificate=stored.certificate)

    def header(self, height: int) -> ledger_pb2.BlockHeader | None:
        """The decoded header of a committed block (decoded once: committed headers never
        change). Callers must not mutate it."""
        if not 1 <= height <= self._head_height:
            return None
        header = self._headers.get(height)
        if header is None:
            stored = self._stored_block(height)
            if stored is None:
                return None
            header = decode_header(stored.header)
            if len(self._headers) >= HEADERS_CACHED_MAX:
                self._headers.clear()
            self._headers[height] = header
        return header

    def event(self, event_identifier: bytes) -> state_pb2.EventLocation | None:
        log_index = self._read.get(schema.event_key(event_identifier))
        if log_index is None:
            return None
        return self.event_at(schema.decode_number(log_index))

    def event_at(self, log_index: int) -> state_pb2.EventLocation | None:
        raw = self._read.get(schema.log_key(log_index))
        if raw is None:
            return None
        location = state_pb2.EventLocation()
        location.ParseFromString(raw)
        return location

    def has_event(self, event_identifier: bytes) -> bool:
        return self._read.get(schema.event_key(event_identifier)) is not None

    # --- proofs -----------------------------------------------------------------------------

    def merkle_node(self, level: int, index: int) -> bytes:
        node_hash = self._read.get(schema.tree_key(level, index))
        check(node_hash is not None, f"Merkle node ({level}, {index}) is not stored")
        return node_hash  # type: ignore[return-value]

    def inclusion_proof(self, log_index: int, tree_size: int) -> list[bytes]:
        return merkle.inclusion_proof(log_index, tree_size, self.merkle_node)

    def consistency_proof(self, first_size: int, second_size: int) -> list[bytes]:
        return merkle.consistency_proof(first_size, second_size, self.merkle_node)

    def log_root_at(self, tree_size: int) -> bytes:
        return merkle.root_at(tree_size, self.merkle_node)

    # --- indexes ----------------------------------------------------------------------------

    def asset_history(
        self, asset_id: str, after_log_index: int | None, limit: int
    ) -> tuple[list[state_pb2.EventLocation], bool]:
        """Events concerning `asset_id` in log order, after a cursor; and whether more exist."""
        prefix = schema.asset_history_prefix(asset_id)
        start = (
            schema.asset_history_key(asset_id, after_log_index + 1)
            if after_log_index is not None
            else prefix
        )
        entries: list[state_pb2.EventLocation] = []
        for key, event_identifier in self._read.iterator(start=start):
            if not key.startswith(prefix):
                break
            if len(entries) == limit:
                return entries, True
            location = self.event(event_identifier)
            check(location is not None, "the asset history names an event that is not stored")
            entries.append(location)  # type: ignore[arg-type]
        return entries, False

    def lineage_neighbours(self, asset_id: str, upstream: bool) -> Iterator[str]:
        """The parents (`upstream`) or children of an asset, in id order (protocol/lineage.py
        walks the graph)."""
        prefix = (
            schema.upstream_prefix(asset_id) if upstream else schema.downstream_prefix(asset_id)
        )
        for key in self._read.iterator(prefix=prefix, include_value=False):
            yield key[len(prefix) :].decode()

    # --- queries for the auditor API (node/rest.py) -----------------------------------------

    def stored_block(self, height: int) -> state_pb2.StoredBlock | None:
        """The block at `height` as stored: header bytes, certificates and event ids."""
        return self._stored_block(height) if 1 <= height <= self._head_height else None

    def _index_page(self, prefix: bytes, after: str | None, limit: int) -> tuple[list[str], bool]:
        """The ids under an index `prefix` (in byte order) after `after`, and whether more."""
        start = prefix + after.encode() + b"\x00" if after is not None else prefix
        identifiers: list[str] = []
        for key in self._read.iterator(start=start, include_value=False):
            if not key.startswith(prefix):
                break
            if len(identifiers) == limit:
                return identifiers, True
            identifiers.append(key[len(prefix) :].decode())
        return identifiers, False

    def _records_page(
        self, kind: str, prefix: bytes, after: str | None, limit: int
    ) -> tuple[list[Message], bool]:
        identifiers, more = self._index_page(prefix, after, limit)
        records = []
        for identifier in identifiers:
            record = self.load(kind, identifier)
            check(record is not None, f"an index names {kind} {identifier!r}, which is not stored")
            records.append(record)
        return records, more

    def grants_of_asset(
        self, asset_id: str, after_grant_id: str | None, limit: int
    ) -> tuple[list[state_pb2.GrantRecord], bool]:
        """Grants on `asset_id` by grant id, after a cursor; and whether more exist."""
        prefix = schema.grants_by_asset_prefix(asset_id)
        return self._records_page("grant", prefix, after_grant_id, limit)  # type: ignore[return-value]

    def grants_held_by(
        self, grantee_id: str, after_grant_id: str | None, limit: int
    ) -> tuple[list[state_pb2.GrantRecord], bool]:
        prefix = schema.grants_by_grantee_prefix(grantee_id)
        return self._records_page("grant", prefix, after_grant_id, limit)  # type: ignore[return-value]

    def grants_issued_by(
        self, grantor_id: str, after_grant_id: str | None, limit: int
    ) -> tuple[list[state_pb2.GrantRecord], bool]:
        prefix = schema.grants_by_grantor_prefix(grantor_id)
        return self._records_page("grant", prefix, after_grant_id, limit)  # type: ignore[return-value]

    def orders_of_member(
        self, member_id: str, after_order_id: str | None, limit: int
    ) -> tuple[list[state_pb2.OrderRecord], bool]:
        """Orders where `member_id` is the buyer, the seller or the listing exchange."""
        prefix = schema.orders_by_member_prefix(member_id)
        return self._records_page("order", prefix, after_order_id, limit)  # type: ignore[return-value]

    def orders_of_asset(
        self, asset_id: str, after_order_id: str | None, limit: int
    ) -> tuple[list[state_pb2.OrderRecord], bool]:
        prefix = schema.orders_by_asset_prefix(asset_id)
        return self._records_page("order", prefix, after_order_id, limit)  # type: ignore[return-value]

"""The node's LevelDB store: blocks, events, the Merkle log, world state and indexes.

Invariants:
- A block and everything derived from it (events, log entries, Merkle nodes, state records,
  nonces, indexes, the new head) is written in ONE `write_batch(transaction=True, sync=True)`.
  After a crash either all of it is on disk or none of it is, so the head is never ahead of
  what it points at and nothing acknowledged is lost.
- The head is the only mutable pointer. On open, the store checks the newest blocks against
  each other and the genesis (node/integrity.py, `check_recent`: a bounded window, so a restart
  stays fast) and the head against the head witness, a copy of the head kept beside LevelDB:
  LevelDB takes a truncated .log for a crash in mid-write and silently drops its tail, so only
  the witness shows that committed blocks were lost.
- Nothing damaged is served. LevelDB runs with paranoid checks (a damaged .log or MANIFEST
  fails the open instead of being skipped, and a compaction stops at a damaged table instead
  of making the damage permanent) and every read verifies its blocks' checksums. Any LevelDB
  error becomes a `StoreDamaged` naming what was being read, never a raw traceback; a serving
  store that finds damage writes the damage marker beside LevelDB and refuses every later read
  and write, and will not open for serving again until the folder is repaired
  (`provledger node check`, `provledger node repair`).
- Every key comes from `schema`; every Merkle proof is answered from stored perfect-subtree
  hashes in O(log n) reads.

Its parts: node/leveldb.py opens the LevelDB, says why a folder cannot serve (`StoreError`,
`StoreDamaged`, `StoreInUse`, re-exported here) and makes the checked reads; node/store_indexes.py
builds a block's index entries and pages through the indexes (`IndexReads`, which `Store`
extends); this module opens the ledger, commits blocks, keeps the vote log and reads blocks,
events, proofs and world state.

One writer (the block committer, in a worker thread) and readers on the event loop; plyvel
reads are consistent per key, and readers only ever look at heights at or below the head they
read first. World-state records are cached parsed; a commit updates the cache under a lock and
bumps a generation counter, so a read that raced a commit never caches a stale value.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import plyvel
from google.protobuf.message import DecodeError, Message

from provledger.node import schema
from provledger.node.leveldb import (
    CheckedReads,
    StoreDamaged,
    StoreError,
    StoreInUse,
    holds_leveldb,
    leveldb_message,
    open_leveldb,
    read_head_witness,
)
from provledger.node.private_files import PRIVATE_FILE_MODE, write_private_file
from provledger.node.settings import (
    HEADERS_CACHED_MAX,
    LEVELDB_BLOCK_CACHE_BYTES,
    LEVELDB_BLOOM_FILTER_BITS,
    LEVELDB_WRITE_BUFFER_BYTES,
    STATE_CACHE_RECORDS_MAX,
)
from provledger.node.store_indexes import IndexReads, index_entries
from provledger.protocol import merkle
from provledger.protocol.blocks import (
    ExecutedBlock,
    Tip,
    block_id,
    decode_header,
    genesis_tip,
    genesis_writes,
)
from provledger.protocol.errors import Rejected, check
from provledger.protocol.genesis import Genesis
from provledger.protocol.state import RECORD_TYPES, Write
from provledger.v1 import ledger_pb2, peer_pb2, state_pb2

__all__ = [
    "Store",
    "StoreDamaged",
    "StoreError",
    "StoreInUse",
    "holds_leveldb",
    "leveldb_message",
    "open_leveldb",
    "read_head_witness",
]

log = logging.getLogger("provledger.store")

_NOT_CACHED = object()
_Parsed = TypeVar("_Parsed", bound=Message)


class Store(IndexReads):
    def __init__(
        self, path: Path | str, genesis: Genesis, *, create: bool = True, examine: bool = False
    ) -> None:
        """Open the ledger at `path`; with `create=False`, refuse a folder that holds none
        (so a mistyped path is an error, not a new empty ledger).

        Opened to serve (the default), the store is checked first (see the module docstring)
        and raises `StoreDamaged` if it is not sound. With `examine`, it is opened for
        node/integrity.py to examine: nothing is checked beyond the genesis, and a damaged read
        raises without marking the folder."""
        self.path = Path(path)
        self._genesis = genesis
        self._examine = examine
        self._serving = False  # opened and checked: damage found from now on is marked
        self._damage: StoreDamaged | None = None
        self._witness_fd: int | None = None
        if not examine:
            self._refuse_marked_damage()
        self._db = open_leveldb(
            self.path,
            create=create,
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
        self._read = CheckedReads(self._db, self)
        self._log = merkle.CompactRange()
        self._tip = genesis_tip(genesis)
        self._head_height = 0
        try:
            self._open_ledger(create)
        except BaseException:
            self._db.close()
            raise

    # --- lifecycle ------------------------------------------------------------------------

    def _open_ledger(self, create: bool) -> None:
        reads = CheckedReads(self._db, self)
        stored_hash = reads.get(schema.META_GENESIS_HASH)
        if stored_hash is None:
            if next(reads.iterator(include_value=False), None) is not None:
                if self._examine:
                    return  # node/integrity.py reports it
                raise StoreDamaged(
                    f"the database at {self.path} holds entries but not its genesis hash"
                )
            if not create:
                raise StoreError(f"{self.path} holds no ledger")
            self._initialise()
        elif stored_hash != self._genesis.genesis_hash:
            raise StoreError(f"the database at {self.path} belongs to a different genesis")
        raw_head = reads.get(schema.META_HEAD_HEIGHT)
        if raw_head is not None and len(raw_head) == schema.HEIGHT_SIZE_BYTES:
            self._head_height = schema.decode_number(raw_head)
        elif not self._examine:
            raise StoreDamaged("the head height is not stored, or not 8 bytes")
        # Every read goes through a snapshot of the last committed block, replaced when the
        # next one is written: a reader (validating a proposal, answering a query) never sees
        # a block half-applied while a commit is being written in another thread.
        self._read = CheckedReads(self._db.snapshot(), self)
        if self._examine:
            return
        # node/integrity.py imports this module (it examines and rebuilds stores), so its
        # open-time check is imported when it is needed.
        from provledger.node.integrity import check_recent

        self._tip, self._log = check_recent(self, self._genesis)
        self._check_witness()
        self._write_witness()
        self._serving = True

    def _initialise(self) -> None:
        with self._db.write_batch(transaction=True, sync=True) as batch:
            for write in genesis_writes(self._genesis):
                self._put_write(batch, write)
            batch.put(schema.META_HEAD_HEIGHT, schema.encode_number(0))
            batch.put(schema.META_GENESIS_HASH, self._genesis.genesis_hash)

    def close(self) -> None:
        if self._witness_fd is not None:
            os.close(self._witness_fd)
            self._witness_fd = None
        self._db.close()

    # --- damage -----------------------------------------------------------------------------

    @property
    def damage(self) -> StoreDamaged | None:
        """The damage this store found while serving, if any."""
        return self._damage

    def found_damage(self, what: str, height: int | None = None) -> StoreDamaged:
        """Record damage found while reading or writing; return it, for the caller to raise.

        A serving store logs it, writes the damage marker and refuses everything from now on;
        a store being opened or examined only reports it."""
        damage = StoreDamaged(what, height)
        if not self._serving or self._damage is not None:
            return damage
        self._damage = damage
        log.critical(
            "the ledger in %s is damaged: %s; this node refuses to serve it "
            "(provledger node check / node repair)",
            self.path,
            damage,
        )
        try:
            write_private_file(self.path / schema.DAMAGE_MARKER_FILE, f"{damage}\n".encode())
        except OSError as error:
            log.error("could not write the damage marker in %s: %s", self.path, error)
        return damage

    def refuse_if_damaged(self) -> None:
        if self._damage is not None:
            raise self._damage

    def _refuse_marked_damage(self) -> None:
        marker = self.path / schema.DAMAGE_MARKER_FILE
        if marker.exists():
            found = marker.read_text(errors="replace").strip()
            raise StoreDamaged(f"this node found damage while it served: {found}")

    # --- the head witness -------------------------------------------------------------------

    def _check_witness(self) -> None:
        """The head must be at or above the head witness, on the same chain."""
        witness = read_head_witness(self.path)
        if witness is None:
            return
        height, block = witness
        head = self._head_height
        if height > head:
            raise StoreDamaged(
                f"LevelDB lost committed blocks: its head is {head}, but this node committed "
                f"up to block {height} ({schema.HEAD_WITNESS_FILE}); LevelDB drops the tail "
                "of a truncated .log file without a word",
                head + 1,
            )
        stored = self._stored_block(height) if height > 0 else None
        if stored is not None and block_id(stored.header) != block:
            raise StoreDamaged(
                f"block {height} is not the block this node committed at that height "
                f"({schema.HEAD_WITNESS_FILE})",
                height,
            )

    def _write_witness(self) -> None:
        """Record the head beside LevelDB. Written after the block's synced batch and not
        synced itself: after a power cut it may lag the store (harmless), never lead it."""
        if self._witness_fd is None:
            self._witness_fd = os.open(
                self.path / schema.HEAD_WITNESS_FILE, os.O_RDWR | os.O_CREAT, PRIVATE_FILE_MODE
            )
        os.pwrite(
            self._witness_fd,
            schema.encode_head_witness(self._tip.height, self._tip.block_id),
            0,
        )

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
        self.refuse_if_damaged()  # a cached record too: a damaged store serves nothing
        key = (kind, record_id)
        cached = self._records.get(key, _NOT_CACHED)
        if cached is not _NOT_CACHED:
            return cached  # type: ignore[return-value]
        generation = self._generation
        state_key = schema.state_key(kind, record_id)
        raw = self._read.get(state_key)
        record = None
        if raw is not None:
            record = self._parse(RECORD_TYPES[kind](), raw, state_key)
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
        for key, raw in self._read.iterator(prefix=prefix):
            yield self._parse(state_pb2.MemberRecord(), raw, key)

    def applied_governance(self) -> Iterator[bytes]:
        """The event id of every governance change applied, in no particular order (the
        state's `governance` records, protocol/state.py)."""
        prefix = schema.state_key("governance", "")
        for key, raw in self._read.iterator(prefix=prefix):
            yield self._parse(state_pb2.MemberKey(), raw, key).key_id

    # --- writing a block --------------------------------------------------------------------

    def commit_block(
        self,
        executed: ExecutedBlock,
        certificate: ledger_pb2.CommitCertificate,
        entries: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        """Persist a committed block and everything derived from it, atomically and synced.
        `entries` are `block_entries(executed, certificate)`, if the caller made them already."""
        self.refuse_if_damaged()
        height = executed.header.height
        check(height == self._head_height + 1, f"block {height} does not follow the head")
        if entries is None:
            entries = self.block_entries(executed, certificate)
        try:
            with self._db.write_batch(transaction=True, sync=True) as batch:
                for key, value in entries:
                    batch.put(key, value)
                batch.put(schema.META_HEAD_HEIGHT, schema.encode_number(height))
                # What this validator signed for heights now final is no longer needed.
                for key in self._read_database().iterator(
                    start=schema.CONSENSUS_PREFIX,
                    stop=schema.signed_messages_from(height + 1),
                    include_value=False,
                ):
                    batch.delete(key)
        except plyvel.Error as error:
            raise self._failed_write(f"block {height}", error) from None
        snapshot = CheckedReads(self._db.snapshot(), self)
        with self._lock:
            self._read = snapshot
            self._generation += 1
            for write in executed.writes:
                if write.record is not None:
                    self._records[(write.kind, write.record_id)] = write.record
            self._head_height = height
            self._log = executed.log
            self._tip = Tip.from_header(executed.header, executed.header_bytes)
        if not self._examine:
            self._write_witness()

    def block_entries(
        self, executed: ExecutedBlock, certificate: ledger_pb2.CommitCertificate
    ) -> list[tuple[bytes, bytes]]:
        """Every key and value that committing `executed` on the head writes, besides the new
        head: the block, its events and their indexes, the Merkle nodes, the state writes.
        node/integrity.py compares a store against them."""
        height = executed.header.height
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
        entries = [
            (schema.block_key(height), stored.SerializeToString()),
            (schema.block_id_key(executed.block_id), schema.encode_number(height)),
        ]
        for position, decoded in enumerate(executed.events):
            log_index = first_log_index + position
            location = state_pb2.EventLocation(
                height=height, position=position, log_index=log_index, event=decoded.signed
            )
            # Events live under their log index (keys in append order, cheap for LevelDB to
            # write and to read a block back); the id maps to the index.
            entries.append((schema.log_key(log_index), location.SerializeToString()))
            entries.append((schema.event_key(decoded.event_id), schema.encode_number(log_index)))
            index_entries(entries, decoded, log_index, block_writes, self.load)
        for level, index, node_hash in executed.merkle_nodes:
            entries.append((schema.tree_key(level, index), node_hash))
        for write in executed.writes:
            entries.append(_write_entry(write))
        return entries

    def _put_write(self, batch, write: Write) -> None:
        batch.put(*_write_entry(write))

    def _read_database(self) -> CheckedReads:
        """Checked reads of the database itself, not of the last commit's snapshot."""
        return CheckedReads(self._db, self)

    def _failed_write(self, what: str, error: plyvel.Error) -> StoreError:
        """A write LevelDB refused: damage if it found corruption (a compaction that met a
        damaged table stops every later write), else an I/O failure such as a full disk."""
        text = leveldb_message(error)
        if isinstance(error, plyvel.CorruptionError):
            return self.found_damage(f"LevelDB refused to write {what}: {text}")
        return StoreError(f"LevelDB could not write {what} to {self.path}: {text}")

    # --- the consensus vote log -------------------------------------------------------------

    def save_signed(
        self, message: ledger_pb2.Vote | peer_pb2.Proposal, block: ledger_pb2.Block | None
    ) -> None:
        """Record a vote or proposal this validator signed, synced, before it is sent."""
        self.refuse_if_damaged()
        if isinstance(message, peer_pb2.Proposal):
            key = schema.signed_message_key(message.height, message.round, 0)
            entry = peer_pb2.PeerMessage(proposal=message)
        else:
            key = schema.signed_message_key(message.height, message.round, message.type)
            entry = peer_pb2.PeerMessage(vote=message)
        value = entry.SerializeToString()
        block_bytes = block.SerializeToString() if block is not None else b""
        record = len(value).to_bytes(4, "big") + value + block_bytes
        try:
            self._db.put(key, record, sync=True)
        except plyvel.Error as error:
            raise self._failed_write(schema.describe_key(key), error) from None

    def load_signed(
        self, from_height: int
    ) -> list[tuple[ledger_pb2.Vote | peer_pb2.Proposal, ledger_pb2.Block | None]]:
        """What this validator signed at `from_height` and later."""
        entries: list[tuple[ledger_pb2.Vote | peer_pb2.Proposal, ledger_pb2.Block | None]] = []
        start = schema.signed_messages_from(from_height)
        for key, record in self._read_database().iterator(start=start):
            if not key.startswith(schema.CONSENSUS_PREFIX):
                break
            try:
                length = int.from_bytes(record[:4], "big")
                entry = peer_pb2.PeerMessage()
                entry.ParseFromString(record[4 : 4 + length])
                block = None
                if len(record) > 4 + length:
                    block = ledger_pb2.Block()
                    block.ParseFromString(record[4 + length :])
            except DecodeError:
                raise self.found_damage(f"{schema.describe_key(key)} does not parse") from None
            message = entry.proposal if entry.HasField("proposal") else entry.vote
            entries.append((message, block))
        return entries

    # --- examining the store (node/integrity.py) --------------------------------------------

    def entry(self, key: bytes) -> bytes | None:
        """The value stored under `key` at the last commit (checksums verified)."""
        return self._read.get(key)

    def snapshot_reads(self) -> CheckedReads:
        """Checked reads of the LevelDB snapshot of the last commit, kept for as long as the
        caller holds them (a backup streams one, node/backup.py)."""
        with self._lock:
            return self._read

    def entries(self, **options: Any) -> Iterator[Any]:
        """plyvel's iterator over the last commit (checksums verified); the same options."""
        return self._read.iterator(**options)

    def save_signed_entries(self, entries: Iterable[tuple[bytes, bytes]]) -> None:
        """Write vote-log entries as another store held them (`node repair` carries what the
        validator signed above the head over to the rebuilt ledger), synced."""
        try:
            with self._db.write_batch(transaction=True, sync=True) as batch:
                for key, value in entries:
                    check(key.startswith(schema.CONSENSUS_PREFIX), "not a vote-log entry")
                    batch.put(key, value)
        except plyvel.Error as error:
            raise self._failed_write("the vote log", error) from None

    # --- reading blocks and events ----------------------------------------------------------

    def _stored_block(self, height: int) -> state_pb2.StoredBlock | None:
        key = schema.block_key(height)
        raw = self._read.get(key)
        if raw is None:
            return None
        return self._parse(state_pb2.StoredBlock(), raw, key)

    def _parse(self, message: _Parsed, raw: bytes, key: bytes) -> _Parsed:
        """`raw` (read under `key`) parsed into `message`; a value that does not parse is
        damage."""
        try:
            message.ParseFromString(raw)
        except DecodeError:
            raise self.found_damage(f"{schema.describe_key(key)} does not parse") from None
        return message

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
        for key, raw in self._read.iterator(
            start=schema.log_key(first), stop=schema.log_key(header.log_size)
        ):
            block.events.append(self._parse(state_pb2.EventLocation(), raw, key).event)
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
            try:
                header = decode_header(stored.header)
            except Rejected:
                raise self.found_damage(f"block {height}'s header does not parse") from None
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
        key = schema.log_key(log_index)
        raw = self._read.get(key)
        if raw is None:
            return None
        return self._parse(state_pb2.EventLocation(), raw, key)

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

    # --- queries for the auditor API (node/rest.py) -----------------------------------------

    def stored_block(self, height: int) -> state_pb2.StoredBlock | None:
        """The block at `height` as stored: header bytes, certificates and event ids."""
        return self._stored_block(height) if 1 <= height <= self._head_height else None


def _write_entry(write: Write) -> tuple[bytes, bytes]:
    """The key and value of one state write: a used nonce, or a world-state record."""
    if write.nonce is not None:
        return schema.nonce_key(write.record_id, write.nonce), b""
    return (
        schema.state_key(write.kind, write.record_id),
        write.record.SerializeToString(deterministic=True),  # type: ignore[union-attr]
    )

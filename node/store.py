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
from provledger.node.private_files import PRIVATE_FILE_MODE, write_private_file
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
    block_id,
    decode_header,
    genesis_tip,
    genesis_writes,
)
from provledger.protocol.concerns import concerns
from provledger.protocol.errors import Rejected, check
from provledger.protocol.events import DecodedEvent
from provledger.protocol.genesis import Genesis
from provledger.protocol.rules_cases import CaseSubjects
from provledger.protocol.rules_governance import proposal_id
from provledger.protocol.state import RECORD_TYPES, Write
from provledger.v1 import ledger_pb2, peer_pb2, state_pb2

log = logging.getLogger("provledger.store")

_NOT_CACHED = object()
_Parsed = TypeVar("_Parsed", bound=Message)
# Files LevelDB writes into its folder: if any is there, the folder holds a database.
_LEVELDB_FILE_SUFFIXES = (".ldb", ".sst", ".log")
_LEVELDB_FILE_PREFIXES = ("MANIFEST-",)


class StoreError(Exception):
    """The folder does not hold a usable ledger for this genesis (another chain's, none at
    all, or one in use); `StoreDamaged` when what it holds is damaged."""


class StoreDamaged(StoreError):
    """What the store holds is damaged: LevelDB found a checksum or file error, or the chain it
    holds does not check. `what` says what is wrong; `height` is the first height known to be
    affected (None when no height is known)."""

    def __init__(self, what: str, height: int | None = None) -> None:
        super().__init__(f"height {height}: {what}" if height is not None else what)
        self.what = what
        self.height = height


class StoreInUse(StoreError):
    """Another process (a running node) holds the folder's LevelDB lock."""


def leveldb_message(error: plyvel.Error) -> str:
    """LevelDB's own words for an error ("Corruption: block checksum mismatch")."""
    text = error.args[0] if error.args else ""
    return text.decode(errors="replace") if isinstance(text, bytes) else str(text)


def holds_leveldb(path: Path) -> bool:
    """Whether the folder holds LevelDB files (whatever state they are in)."""
    if not path.is_dir():
        return False
    return any(
        name.endswith(_LEVELDB_FILE_SUFFIXES) or name.startswith(_LEVELDB_FILE_PREFIXES)
        for name in os.listdir(path)
    )


def open_leveldb(path: Path, *, create: bool, **options: Any) -> plyvel.DB:
    """Open the LevelDB at `path` with paranoid checks; a damaged or missing CURRENT, MANIFEST
    or .log is a `StoreDamaged` naming the file, a held lock `StoreInUse`.

    LevelDB would take a folder of tables without a CURRENT file for an empty one and, told to
    create it, start a new database there and delete the tables: refused here."""
    if holds_leveldb(path) and not (path / "CURRENT").exists():
        raise StoreDamaged(
            f"LevelDB's CURRENT file is missing from {path}, which holds LevelDB files: "
            "LevelDB cannot find its MANIFEST (the list of its files)"
        )
    try:
        return plyvel.DB(str(path), create_if_missing=create, paranoid_checks=True, **options)
    except plyvel.Error as error:
        text = leveldb_message(error)
        # "lock DIR/LOCK: Resource temporarily unavailable" from another process (a running
        # node), "...: already held by process" from this one.
        if isinstance(error, plyvel.IOError) and "LOCK" in text:
            raise StoreInUse(
                f"the ledger database in {path} is in use by another process (is its node "
                "running? stop it first)"
            ) from None
        if isinstance(error, plyvel.IOError) and "does not exist" in text:
            raise StoreError(f"{path} holds no ledger database") from None
        raise StoreDamaged(
            f"LevelDB cannot open {path}: {text} ({_damaged_file(path, text)})"
        ) from None


def read_head_witness(path: Path) -> tuple[int, bytes] | None:
    """(height, block id) of the last block committed in the ledger folder `path`, as its head
    witness says; None if there is none or it is not intact."""
    try:
        raw = (path / schema.HEAD_WITNESS_FILE).read_bytes()
    except OSError:
        return None
    return schema.decode_head_witness(raw)


def _damaged_file(path: Path, text: str) -> str:
    """Which of LevelDB's files an open failed on, from its message or its LOG file (LevelDB
    writes there which .log it was dropping bytes from)."""
    if "CURRENT" in text:
        return "the CURRENT file is damaged"
    try:
        lines = (path / "LOG").read_text(errors="replace").splitlines()
    except OSError:
        lines = []
    for line in lines:  # LevelDB starts a new LOG at each open: these lines are this one's
        if ".log: dropping" in line:
            before, dropping = line.split(".log: ", 1)
            name = before.rsplit("/", 1)[-1].split()[-1]
            return f"the write-ahead log {name}.log is damaged, LevelDB reports: {dropping}"
    if "missing files" in text or "No such file" in text:
        return "a table file the MANIFEST lists is missing"
    return "the MANIFEST, LevelDB's list of its files, is damaged"


class _CheckedReads:
    """Reads of one LevelDB snapshot (or the database) that verify every block's checksum; a
    LevelDB error, or a read after the store found damage, raises `StoreDamaged`."""

    __slots__ = ("_source", "_store")

    def __init__(self, source: Any, store: Store) -> None:
        self._source = source
        self._store = store

    def get(self, key: bytes) -> bytes | None:
        self._store.refuse_if_damaged()
        try:
            return self._source.get(key, verify_checksums=True)  # type: ignore[no-any-return]
        except plyvel.Error as error:
            raise self._store.found_damage(
                f"LevelDB cannot read {schema.describe_key(key)}: {leveldb_message(error)}"
            ) from None

    def iterator(self, **options: Any) -> Iterator[Any]:
        self._store.refuse_if_damaged()
        if options.get("prefix"):
            where = schema.describe_key(options["prefix"])
        elif options.get("start"):
            where = f"{schema.describe_key(options['start'])} or what follows it"
        else:
            where = "the database"
        try:
            yield from self._source.iterator(verify_checksums=True, **options)
        except plyvel.Error as error:
            raise self._store.found_damage(
                f"LevelDB cannot read {where}: {leveldb_message(error)}"
            ) from None


class Store:
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
        self._read = _CheckedReads(self._db, self)
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
        reads = _CheckedReads(self._db, self)
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
        self._read = _CheckedReads(self._db.snapshot(), self)
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
        snapshot = _CheckedReads(self._db.snapshot(), self)
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
            self._index_entries(entries, decoded, log_index, block_writes)
        for level, index, node_hash in executed.merkle_nodes:
            entries.append((schema.tree_key(level, index), node_hash))
        for write in executed.writes:
            entries.append(_write_entry(write))
        return entries

    def _put_write(self, batch, write: Write) -> None:
        batch.put(*_write_entry(write))

    def _index_entries(
        self,
        entries: list[tuple[bytes, bytes]],
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
            entries.append((schema.asset_history_key(asset_id, log_index), decoded.event_id))
        for parent_id, child_id in about.lineage_edges:
            entries.append((schema.upstream_key(child_id, parent_id), b""))
            entries.append((schema.downstream_key(parent_id, child_id), b""))
        if decoded.kind == "grant_issued":
            entries.append((schema.grants_by_asset_key(payload.asset_id, payload.grant_id), b""))
            entries.append(
                (schema.grants_by_grantee_key(payload.grantee_id, payload.grant_id), b"")
            )
            entries.append((schema.grants_by_grantor_key(decoded.author_id, payload.grant_id), b""))
        elif decoded.kind == "governance_proposed":
            identifier = proposal_id(payload.change)
            record = block_writes.get(("proposal", identifier.hex()))
            check(record is not None, f"proposal {identifier.hex()} was proposed without a record")
            time_ms = record.proposed_at_ms  # type: ignore[union-attr]
            entries.append((schema.proposal_by_time_key(time_ms, identifier), b""))
        elif decoded.kind == "order_placed":
            check(
                len(about.assets) == 1, f"order {payload.order_id!r} was placed without its offer"
            )
            for member_id in about.members:
                entries.append((schema.orders_by_member_key(member_id, payload.order_id), b""))
            entries.append((schema.orders_by_asset_key(about.assets[0], payload.order_id), b""))
        elif decoded.kind == "case_opened":
            case = block_writes.get(("case", payload.case_id))
            check(case is not None, f"case {payload.case_id!r} was opened without a record")
            for member_id in case.parties:  # type: ignore[union-attr]
                entries.append((schema.cases_by_member_key(member_id, payload.case_id), b""))
            for subject_id in CaseSubjects(lookup, payload.complaint_ids).ids():
                entries.append((schema.cases_by_subject_key(subject_id, payload.case_id), b""))

    def _read_database(self) -> _CheckedReads:
        """Checked reads of the database itself, not of the last commit's snapshot."""
        return _CheckedReads(self._db, self)

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

    def snapshot_reads(self) -> _CheckedReads:
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

    def records_of_kind(
        self, kind: str, after_id: str | None, limit: int
    ) -> tuple[list[Message], bool]:
        """World-state records of `kind` by record id (in byte order) after a cursor; and
        whether more exist."""
        return self._records_page(kind, schema.state_kind_prefix(kind), after_id, limit)

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

    def proposals_since(
        self, time_ms: int, limit: int
    ) -> tuple[list[state_pb2.ProposalRecord], bool]:
        """Up to `limit` governance proposals recorded at block time `time_ms` or later, oldest
        first; and whether more follow."""
        self.refuse_if_damaged()
        records: list[state_pb2.ProposalRecord] = []
        for key in self._read.iterator(
            start=schema.proposals_from(time_ms),
            stop=schema.PROPOSALS_END,
            include_value=False,
        ):
            if len(records) == limit:
                return records, True
            record = self.load("proposal", schema.proposal_id_of_key(key).hex())
            check(record is not None, f"{schema.describe_key(key)} names no proposal")
            records.append(record)  # type: ignore[arg-type]
        return records, False

    def orders_of_asset(
        self, asset_id: str, after_order_id: str | None, limit: int
    ) -> tuple[list[state_pb2.OrderRecord], bool]:
        prefix = schema.orders_by_asset_prefix(asset_id)
        return self._records_page("order", prefix, after_order_id, limit)  # type: ignore[return-value]

    def cases_page(
        self, member_id: str | None, subject_id: str | None, after_case_id: str | None, limit: int
    ) -> tuple[list[state_pb2.CaseRecord], bool]:
        """Cases by case id after a cursor, where `member_id` is a party (if given), else about
        `subject_id` (if given), else all; and whether more exist."""
        if member_id is not None:
            prefix = schema.cases_by_member_prefix(member_id)
        elif subject_id is not None:
            prefix = schema.cases_by_subject_prefix(subject_id)
        else:
            prefix = schema.state_kind_prefix("case")
        return self._records_page("case", prefix, after_case_id, limit)  # type: ignore[return-value]

    def case_is_about(self, subject_id: str, case_id: str) -> bool:
        """Whether the cases-by-subject index lists `case_id` under `subject_id`."""
        return self._read.get(schema.cases_by_subject_key(subject_id, case_id)) is not None

    def state_records(self, kind: str, after_id: str | None) -> Iterator[tuple[str, Message]]:
        """The world-state records of `kind` in id order after `after_id` (exclusive), read
        lazily from the last commit; a record that does not parse is damage."""
        start, stop = schema.state_records_range(kind, after_id)
        prefix_size = len(schema.state_key(kind, ""))
        for key, raw in self._read.iterator(start=start, stop=stop):
            yield key[prefix_size:].decode(), self._parse(RECORD_TYPES[kind](), raw, key)


def _write_entry(write: Write) -> tuple[bytes, bytes]:
    """The key and value of one state write: a used nonce, or a world-state record."""
    if write.nonce is not None:
        return schema.nonce_key(write.record_id, write.nonce), b""
    return (
        schema.state_key(write.kind, write.record_id),
        write.record.SerializeToString(deterministic=True),  # type: ignore[union-attr]
    )

"""Backups of a node's ledger: the file format, taking one from a running node's LevelDB
snapshot, and verifying one; restoring one into an empty data folder is node/restore.py
(docs/adr/021).

The file, every number big-endian:

    MAGIC (18 bytes) | version (2)
    header length (4) | header (canonical JSON) | SHA-256 of the header (32)
    chunk*:  "C" | entry count (4) | payload length (4) | payload
             | SHA-256 of (chunk index (8) | entry count | payload length | payload) (32)
    end:     "E" | entries (8) | chunks (8) | SHA-256 of every byte before it (32)

A payload is its entries in key order, each key length (4) | key | value length (4) | value.
The header (`BackupHeader`) names the format and version, the chain id, the genesis hash, the
node that took it, the height H, the quorum-signed checkpoint of H (header and commit
certificate), the walk of the validator sets from the genesis to H (so that the checkpoint is
verified with nothing but the genesis), and the entry count.

What the file holds is every key of one LevelDB snapshot at the committed height H (the
store's snapshot of its last commit, node/store.py), except the vote log (what this validator
signed at heights above the head): it is not part of the ledger, a restored node rebuilds no
vote from it, and a copy of it is never complete (the node signs on after the snapshot), so
carrying it would only suggest a protection against double signing that it cannot give (ADR
021 says what does).

Every refusal is a `BackupError` with a stable code; the codes are in `CODES`. Restoring
writes into a scratch folder beside the data folder and moves it into place only once the
whole file and the restored store verify, so a refused file leaves the data folder as it was.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol

from google.protobuf.message import DecodeError

from provledger.node import schema
from provledger.node.config import NodeConfig
from provledger.node.settings import (
    BACKUP_CHUNK_BYTES_MAX,
    BACKUP_CHUNK_BYTES_TARGET,
    BACKUP_HEADER_BYTES_MAX,
)
from provledger.node.store import Store
from provledger.node.walks import validator_chain
from provledger.protocol.blocks import block_id, verify_checkpoint
from provledger.protocol.errors import CodedError, Rejected
from provledger.protocol.genesis import Genesis
from provledger.protocol.validator_chain import (
    ValidatorChainError,
    chain_from_json,
    chain_to_json,
    verify_validator_chain,
)
from provledger.v1 import ledger_pb2, state_pb2

log = logging.getLogger("provledger.backup")

FORMAT = "provledger-backup"
VERSION = 1
MAGIC = b"PROVLEDGER-BACKUP\n"
_VERSION = struct.Struct(">H")
_LENGTH = struct.Struct(">I")
_CHUNK_HEAD = struct.Struct(">II")  # entry count, payload length
_CHUNK_INDEX = struct.Struct(">Q")
_END = struct.Struct(">QQ")  # entries, chunks
_DIGEST_SIZE_BYTES = 32
CHUNK_MARK = b"C"
END_MARK = b"E"
# The vote log is left out of every backup (see the module docstring).
EXCLUDED_PREFIXES = (schema.CONSENSUS_PREFIX,)
_HEADER_FIELDS = (
    "format",
    "version",
    "chain_id",
    "genesis_hash",
    "node_id",
    "height",
    "block_id",
    "checkpoint",
    "validator_chain",
    "entries",
    "excluded",
)
CODES = (
    "not_a_backup",
    "unsupported_version",
    "truncated",
    "bad_header",
    "header_checksum",
    "chunk_checksum",
    "bad_chunk",
    "file_checksum",
    "trailing_data",
    "entry_count",
    "bad_entries",
    "wrong_chain",
    "bad_checkpoint",
    "restored_store_mismatch",
    "folder_not_empty",
    "node_running",
    "nothing_committed",
    "stopped",
)


class BackupError(CodedError):
    """A backup that cannot be taken, a file refused, or a restore refused: `code`, `reason`."""


Progress = Callable[[int, int], None]  # (entries done, entries in all)


class Sink(Protocol):
    def write(self, data: bytes, /) -> Any: ...


@dataclass(frozen=True)
class BackupHeader:
    chain_id: str
    genesis_hash: bytes
    node_id: str
    height: int
    checkpoint: ledger_pb2.Checkpoint
    validator_chain: ledger_pb2.ValidatorChain
    entries: int

    @property
    def block_id(self) -> bytes:
        return block_id(self.checkpoint.header)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "chain_id": self.chain_id,
            "genesis_hash": self.genesis_hash.hex(),
            "node_id": self.node_id,
            "height": self.height,
            "block_id": self.block_id.hex(),
            "checkpoint": base64.b64encode(
                self.checkpoint.SerializeToString(deterministic=True)
            ).decode(),
            "validator_chain": chain_to_json(self.validator_chain),
            "entries": self.entries,
            "excluded": [prefix.decode() for prefix in EXCLUDED_PREFIXES],
        }

    def encode(self) -> bytes:
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, raw: bytes) -> BackupHeader:
        try:
            document = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise BackupError("bad_header", f"the header is not JSON: {error}") from None
        if not isinstance(document, dict) or sorted(document) != sorted(_HEADER_FIELDS):
            raise BackupError("bad_header", f"the header must hold exactly {_HEADER_FIELDS}")
        if document["format"] != FORMAT or document["version"] != VERSION:
            raise BackupError("bad_header", "the header names another format or version")
        try:
            checkpoint = ledger_pb2.Checkpoint()
            checkpoint.ParseFromString(base64.b64decode(document["checkpoint"], validate=True))
            header = cls(
                chain_id=_text(document["chain_id"]),
                genesis_hash=bytes.fromhex(_text(document["genesis_hash"])),
                node_id=_text(document["node_id"]),
                height=_count(document["height"]),
                checkpoint=checkpoint,
                validator_chain=chain_from_json(document["validator_chain"]),
                entries=_count(document["entries"]),
            )
        except (TypeError, ValueError, binascii.Error, DecodeError, ValidatorChainError) as error:
            raise BackupError("bad_header", f"the header does not parse: {error}") from None
        if header.to_json() != document:
            raise BackupError("bad_header", "the header's fields do not agree with each other")
        return header


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{value!r} is not a string")
    return value


def _count(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise TypeError(f"{value!r} is not a count")
    return value


# --- writing ----------------------------------------------------------------------------------


class BackupWriter:
    """Writes the format to `sink`: `BackupWriter(sink, header)`, `add` every entry in key
    order, then `finish`. Holds one chunk in memory at a time."""

    def __init__(self, sink: Sink, header: BackupHeader) -> None:
        self._sink = sink
        self._hash = hashlib.sha256()
        self._chunk: list[bytes] = []
        self._chunk_entries = 0
        self._chunk_bytes = 0
        self.chunks = 0
        self.entries = 0
        raw = header.encode()
        self._write(MAGIC + _VERSION.pack(VERSION) + _LENGTH.pack(len(raw)) + raw)
        self._write(hashlib.sha256(raw).digest())

    def _write(self, data: bytes) -> None:
        self._hash.update(data)
        self._sink.write(data)

    def add(self, key: bytes, value: bytes) -> None:
        record = _LENGTH.pack(len(key)) + key + _LENGTH.pack(len(value)) + value
        self._chunk.append(record)
        self._chunk_entries += 1
        self._chunk_bytes += len(record)
        self.entries += 1
        if self._chunk_bytes >= BACKUP_CHUNK_BYTES_TARGET:
            self._flush()

    def _flush(self) -> None:
        if not self._chunk:
            return
        payload = b"".join(self._chunk)
        head = _CHUNK_HEAD.pack(self._chunk_entries, len(payload))
        digest = hashlib.sha256(_CHUNK_INDEX.pack(self.chunks) + head + payload).digest()
        self._write(CHUNK_MARK + head + payload + digest)
        self.chunks += 1
        self._chunk, self._chunk_entries, self._chunk_bytes = [], 0, 0

    def finish(self) -> None:
        self._flush()
        self._write(END_MARK + _END.pack(self.entries, self.chunks))
        self._sink.write(self._hash.digest())


# --- taking a backup from a running node --------------------------------------------------------


def snapshot_entries(reads: Any) -> Iterator[tuple[bytes, bytes]]:
    """Every entry of a snapshot's checked reads (node/store.py), in key order, without the
    excluded families."""
    for key, value in reads.iterator():
        if not key.startswith(EXCLUDED_PREFIXES):
            yield key, value


def take_backup(
    store: Store,
    genesis: Genesis,
    node_id: str,
    sink: Sink,
    stopping: threading.Event | None = None,
) -> BackupHeader:
    """Write a backup of `store`'s last committed height to `sink` (see the module docstring),
    from one LevelDB snapshot; stop with `stopping` (the node stops) between entries."""
    reads = store.snapshot_reads()
    raw_head = reads.get(schema.META_HEAD_HEIGHT)
    height = schema.decode_number(raw_head) if raw_head is not None else 0
    if height < 1:
        raise BackupError("nothing_committed", "the ledger has no committed block to back up")
    raw_block = reads.get(schema.block_key(height))
    if raw_block is None:
        raise BackupError("nothing_committed", f"block {height} is not stored")
    stored = state_pb2.StoredBlock()
    try:
        stored.ParseFromString(raw_block)
    except DecodeError:
        raise store.found_damage(f"block {height} does not parse", height) from None
    # The walk's blocks are at or below `height`: committed, never rewritten.
    header = BackupHeader(
        chain_id=genesis.chain_id,
        genesis_hash=genesis.genesis_hash,
        node_id=node_id,
        height=height,
        checkpoint=ledger_pb2.Checkpoint(header=stored.header, certificate=stored.certificate),
        validator_chain=validator_chain(store, height),
        entries=sum(1 for _ in snapshot_entries(reads)),
    )
    writer = BackupWriter(sink, header)
    for key, value in snapshot_entries(reads):
        writer.add(key, value)
        if stopping is not None and stopping.is_set():
            raise BackupError("stopped", "the node is stopping; the backup is incomplete")
    writer.finish()
    return header


# --- reading and verifying ----------------------------------------------------------------------


class BackupReader:
    """Reads and verifies the format from `source` as it goes: `header()`, then `chunks()`,
    whose end verifies the totals, the whole-file hash and that nothing follows. Holds one
    chunk in memory at a time."""

    def __init__(self, source: BinaryIO) -> None:
        self._source = source
        self._hash = hashlib.sha256()
        self.offset = 0
        self._header: BackupHeader | None = None

    def _read(self, size: int, what: str) -> bytes:
        data = self._source.read(size)
        while len(data) < size:
            more = self._source.read(size - len(data))
            if not more:
                raise BackupError(
                    "truncated",
                    f"the file ends at byte {self.offset + len(data)}, inside {what}: it is "
                    "truncated",
                )
            data += more
        self._hash.update(data)
        self.offset += size
        return data

    def header(self) -> BackupHeader:
        magic = self._source.read(len(MAGIC))
        if magic != MAGIC:
            raise BackupError("not_a_backup", "the file does not start as a provledger backup")
        self._hash.update(magic)
        self.offset = len(MAGIC)
        (version,) = _VERSION.unpack(self._read(_VERSION.size, "the version"))
        if version != VERSION:
            raise BackupError(
                "unsupported_version", f"format version {version}; this node reads {VERSION}"
            )
        (length,) = _LENGTH.unpack(self._read(_LENGTH.size, "the header's length"))
        if length > BACKUP_HEADER_BYTES_MAX:
            raise BackupError(
                "bad_header", f"a header of {length} bytes (at most {BACKUP_HEADER_BYTES_MAX})"
            )
        raw = self._read(length, "the header")
        if self._read(_DIGEST_SIZE_BYTES, "the header's checksum") != hashlib.sha256(raw).digest():
            raise BackupError("header_checksum", "the header does not match its SHA-256")
        self._header = BackupHeader.decode(raw)
        return self._header

    def chunks(self) -> Iterator[list[tuple[bytes, bytes]]]:
        """Each chunk's entries, once its checksum verifies; the end's checks at the end."""
        if self._header is None:
            self.header()
        index = entries = 0
        while True:
            start = self.offset
            mark = self._read(1, f"the record after chunk {index - 1}" if index else "chunk 0")
            if mark == END_MARK:
                break
            if mark != CHUNK_MARK:
                raise BackupError("bad_chunk", f"byte {start} is neither a chunk nor the end")
            head = self._read(_CHUNK_HEAD.size, f"chunk {index}'s head")
            count, length = _CHUNK_HEAD.unpack(head)
            if length > BACKUP_CHUNK_BYTES_MAX:
                raise BackupError(
                    "bad_chunk", f"chunk {index} (byte {start}) claims {length} bytes"
                )
            payload = self._read(length, f"chunk {index}")
            digest = self._read(_DIGEST_SIZE_BYTES, f"chunk {index}'s checksum")
            if hashlib.sha256(_CHUNK_INDEX.pack(index) + head + payload).digest() != digest:
                raise BackupError(
                    "chunk_checksum",
                    f"chunk {index} (bytes {start}-{self.offset - 1}) does not match its SHA-256",
                )
            chunk = _entries_of(payload, count, index)
            entries += len(chunk)
            index += 1
            yield chunk
        total, chunk_count = _END.unpack(self._read(_END.size, "the end record"))
        expected = self._hash.digest()
        digest = self._source.read(_DIGEST_SIZE_BYTES)
        if len(digest) < _DIGEST_SIZE_BYTES:
            raise BackupError("truncated", "the file ends inside its SHA-256: it is truncated")
        if digest != expected:
            raise BackupError("file_checksum", "the file does not match its whole-file SHA-256")
        if self._source.read(1):
            raise BackupError("trailing_data", "bytes follow the file's end")
        assert self._header is not None
        if not total == entries == self._header.entries or chunk_count != index:
            raise BackupError(
                "entry_count",
                f"the file holds {entries} entries in {index} chunks; its header says "
                f"{self._header.entries}, its end {total} in {chunk_count}",
            )


def _entries_of(payload: bytes, count: int, index: int) -> list[tuple[bytes, bytes]]:
    entries = []
    at = 0
    try:
        while at < len(payload):
            (size,) = _LENGTH.unpack_from(payload, at)
            key = payload[at + 4 : at + 4 + size]
            at += 4 + size
            (size,) = _LENGTH.unpack_from(payload, at)
            value = payload[at + 4 : at + 4 + size]
            at += 4 + size
            entries.append((key, value))
    except struct.error:
        at = len(payload) + 1
    if at != len(payload) or len(entries) != count:
        raise BackupError("bad_chunk", f"chunk {index}'s entries do not parse")
    return entries


def verify_header(header: BackupHeader, genesis: Genesis) -> ledger_pb2.BlockHeader:
    """The checkpoint's block header, if the backup is of this genesis's chain and its
    checkpoint is committed by a quorum of the validators of its height, as the walk of the
    validator sets from the genesis (protocol/validator_chain.py) proves them."""
    if header.chain_id != genesis.chain_id or header.genesis_hash != genesis.genesis_hash:
        raise BackupError(
            "wrong_chain",
            f"the backup is of chain {header.chain_id!r} (genesis {header.genesis_hash.hex()}); "
            f"this node's is {genesis.chain_id!r} (genesis {genesis.genesis_hash.hex()})",
        )
    try:
        history = verify_validator_chain(header.validator_chain, genesis)
        block_header = verify_checkpoint(header.checkpoint, genesis, history)
    except (Rejected, ValidatorChainError) as error:
        raise BackupError(
            "bad_checkpoint", f"the checkpoint of height {header.height} does not verify: {error}"
        ) from None
    if block_header.height != header.height:
        raise BackupError(
            "bad_checkpoint",
            f"the checkpoint is of height {block_header.height}, the header says {header.height}",
        )
    return block_header


def verify_backup(
    source: BinaryIO, genesis: Genesis, progress: Progress | None = None
) -> BackupHeader:
    """Read all of `source` and verify it (format, checksums, checkpoint, entry order)."""
    reader = BackupReader(source)
    header = reader.header()
    verify_header(header, genesis)
    order = EntryOrder()
    for chunk in reader.chunks():
        order.check(chunk)
        if progress is not None:
            progress(order.entries, header.entries)
    return header


class EntryOrder:
    """Entries must come in strictly increasing key order, none of an excluded family."""

    def __init__(self) -> None:
        self.last: bytes | None = None
        self.entries = 0

    def check(self, chunk: list[tuple[bytes, bytes]]) -> None:
        for key, _ in chunk:
            if self.last is not None and key <= self.last:
                raise BackupError("bad_entries", f"{schema.describe_key(key)} is out of order")
            if key.startswith(EXCLUDED_PREFIXES):
                raise BackupError("bad_entries", f"{schema.describe_key(key)} is never restored")
            self.last = key
            self.entries += 1


def backup_to_socket(
    store: Store, genesis: Genesis, config: NodeConfig, out: Any, stopping: threading.Event
) -> None:
    """The admin socket's backup command (node/admin.py): the backup, written to `out`."""
    header = take_backup(store, genesis, config.node_id, _SocketSink(out), stopping)
    log.info("backup of height %d (%d entries) sent", header.height, header.entries)


class _SocketSink:
    """A socket as a `Sink`: each write sent whole."""

    def __init__(self, out: Any) -> None:
        self._out = out

    def write(self, data: bytes) -> None:
        self._out.sendall(data)

"""Is the ledger on disk sound, and making it sound again: the one home of the store's
integrity checks, used at every open, by `provledger node check` and by `node repair`.

Theory of operation
-------------------
Everything the store holds comes from the blocks, and the blocks vouch for themselves: a
block's commit certificate is a quorum of its height's validators' signatures (the genesis set,
then the sets governance made: protocol/validators.py) over its id, the hash of its header;
the header commits to its events (events root), to the whole log after it (log root), to the
world state after it (state root, a hash chain over every write since the genesis) and to the
block before it (previous block id). So nothing is taken on trust:

- `check_block`: what one height holds, on its own. The stored block parses, names its height
  and chain, is under its id in the block-id index, and lists the events stored under its log
  indexes, each at its height and position and under its id in the event-id index; the events
  root recomputed from those events is the header's. Optionally its certificate verifies.
- `check_recent` (at every open): the newest blocks, from the head down, each checked as above
  with its certificate and linked to the one above it; the block below the window is the one
  the window's lowest block links to (block 1 links to the genesis); each block's log root is
  recomputed from the stored Merkle nodes; nothing is stored above the head. The window is
  bounded (`OPEN_CHECK_BLOCKS_MAX` blocks, `OPEN_CHECK_EVENTS_MAX` events) so a restart takes
  the same time at any chain length.
- `check_store` (`provledger node check`): the whole chain. Each block is checked as above,
  then re-executed from the genesis on a scratch store through the commit sequence a synced
  block takes (`LedgerApplication.commit`: the certificate verified, and the header the
  events produce, log root and state root included, equal to the stored one byte for byte).
  The scratch store says what the block implies (`Store.block_entries`); the checked store must
  hold exactly that, per block for what is written once (events, both id indexes, Merkle
  nodes, nonces, asset history, lineage, grant and order indexes) and, once every block
  replayed, key by key over the whole database (world-state records, and entries no block
  implies). Damage to what is derived from a block is reported and the walk goes on; damage
  to a block itself (its record, its events, its certificate, what it re-executes to) ends
  the replay there, since nothing after it can be re-executed. Every read verifies LevelDB's
  checksums, so a damaged table block anywhere is found. A folder LevelDB cannot open (a
  damaged .log, MANIFEST or CURRENT) is not written at all: it is examined on a salvaged copy
  (`plyvel.repair_db`, which keeps what it can read, even unchecked bytes of a damaged .log:
  the chain checks above judge them), so the first lost height is still named.
- `repair_store` (`provledger node repair`): the scratch store of a check becomes the new
  ledger. Blocks up to the last sound height come from the damaged folder (re-executed as
  above), the rest from the peers (SyncBlocks over mutual TLS, each block committed through
  the same commit sequence: certificate checked, block re-executed), up to at least the
  highest height this node ever committed (its head witness) and as far as the peers go.
  Nothing changes unless the rebuilt ledger gets there, so no acknowledged event is lost;
  then the damaged folder is kept beside the new one, renamed, and the votes this validator
  signed above the new head are carried over, so that it never signs a conflicting vote.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import shutil
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import plyvel
from google.protobuf.message import DecodeError

from provledger.node import schema
from provledger.node.private_files import make_private_directory
from provledger.node.settings import (
    CHECK_FINDINGS_MAX,
    OPEN_CHECK_BLOCKS_MAX,
    OPEN_CHECK_EVENTS_MAX,
    SYNC_BATCH_BLOCKS_MAX,
)
from provledger.node.store import (
    Store,
    StoreDamaged,
    StoreError,
    leveldb_message,
    read_head_witness,
)
from provledger.protocol import merkle
from provledger.protocol.application import LedgerApplication, commit_now
from provledger.protocol.blocks import (
    ExecutedBlock,
    Tip,
    block_id,
    decode_header,
    execute_block,
    genesis_tip,
    verify_certificate,
)
from provledger.protocol.errors import InvariantViolation, Rejected
from provledger.protocol.events import decode, event_id, log_leaf
from provledger.protocol.genesis import Genesis
from provledger.protocol.validators import validator_history, validator_set_at
from provledger.v1 import ledger_pb2, state_pb2

log = logging.getLogger("provledger.integrity")

# (height reached, the height the walk goes to)
Progress = Callable[[int, int], None]

# What a block writes once and never again; world-state records are overwritten by later
# blocks, so they are compared once every block is replayed.
_OVERWRITTEN_PREFIXES = (schema.STATE_PREFIX,)
# Not derived from the blocks: the metadata (checked on its own) and the vote log.
_NOT_DERIVED_PREFIXES = (schema.META_PREFIX, schema.CONSENSUS_PREFIX)
_HEADER_FIELD_NAMES = {
    "events_root": "events root",
    "event_count": "event count",
    "log_size": "log size",
    "log_root": "log root",
    "state_root": "state root",
    "validators_hash": "validator set",
    "last_commit_hash": "previous block's certificate",
    "evidence_hash": "evidence",
}
_CHECKER_ID = "integrity-check"  # the application's node id: it never proposes


# --- one block ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckedBlock:
    """A height whose stored block, events and id indexes agree, ready to be re-executed."""

    height: int
    stored: state_pb2.StoredBlock
    header: ledger_pb2.BlockHeader
    block_id: bytes
    block: ledger_pb2.Block


def check_block(
    store: Store, genesis: Genesis, height: int, *, certificate: bool, indexes: bool = True
) -> CheckedBlock:
    """Check what `store` holds for block `height` on its own (see the module docstring);
    raise `StoreDamaged` naming the first thing wrong. Without `indexes`, the block-id and
    event-id indexes are left to the caller (the whole-chain walk compares them with every
    other entry the block implies, and goes on replaying)."""

    def damaged(what: str) -> StoreDamaged:
        return StoreDamaged(what, height)

    raw = store.entry(schema.block_key(height))
    if raw is None:
        raise damaged("the block is not stored")
    stored = state_pb2.StoredBlock()
    try:
        stored.ParseFromString(raw)
        header = decode_header(stored.header)
    except (DecodeError, Rejected):
        raise damaged("the stored block does not parse") from None
    if header.height != height or header.chain_id != genesis.chain_id:
        raise damaged(f"the stored block is block {header.height} of chain {header.chain_id!r}")
    identifier = block_id(stored.header)
    if indexes and store.entry(schema.block_id_key(identifier)) != schema.encode_number(height):
        raise damaged("the block-id index does not map the block's id to its height")
    if certificate:
        try:
            verify_certificate(
                stored.certificate,
                header,
                stored.header,
                validator_set_at(store, genesis.validator_set, height),
            )
        except Rejected as rejection:
            raise damaged(f"the commit certificate does not verify: {rejection.reason}") from None
    if len(stored.event_ids) != header.event_count:
        raise damaged(
            f"the block lists {len(stored.event_ids)} events; its header says {header.event_count}"
        )
    first = header.log_size - header.event_count
    events = []
    leaf_hashes = []
    for position, listed_id in enumerate(stored.event_ids):
        log_index = first + position
        where = f"the event at log index {log_index} (position {position})"
        raw_location = store.entry(schema.log_key(log_index))
        if raw_location is None:
            raise damaged(f"{where} is not stored")
        location = state_pb2.EventLocation()
        try:
            location.ParseFromString(raw_location)
        except DecodeError:
            raise damaged(f"{where} does not parse") from None
        if (location.height, location.position, location.log_index) != (
            height,
            position,
            log_index,
        ):
            raise damaged(
                f"{where} is stored as block {location.height}, position {location.position}, "
                f"log index {location.log_index}"
            )
        identifier_of_event = event_id(location.event.body)
        if identifier_of_event != listed_id:
            raise damaged(f"{where} is not the event the block lists there")
        if indexes and store.entry(schema.event_key(listed_id)) != schema.encode_number(log_index):
            raise damaged(f"the event-id index does not map event {listed_id.hex()} to {log_index}")
        events.append(location.event)
        leaf_hashes.append(merkle.hash_leaf(log_leaf(listed_id, location.event.signature)))
    if merkle.root_from_leaf_hashes(leaf_hashes) != header.events_root:
        raise damaged("the events root recomputed from the stored events differs from the header's")
    block = ledger_pb2.Block(header=stored.header, events=events, evidence=stored.evidence)
    if stored.HasField("last_commit"):
        block.last_commit.CopyFrom(stored.last_commit)
    return CheckedBlock(height, stored, header, identifier, block)


def _stored_block_id(store: Store, genesis: Genesis, height: int) -> bytes:
    """The id of the block stored at `height` (the genesis hash at 0), read without checks."""
    if height == 0:
        return genesis.genesis_hash
    raw = store.entry(schema.block_key(height))
    if raw is None:
        raise StoreDamaged("the block is not stored", height)
    stored = state_pb2.StoredBlock()
    try:
        stored.ParseFromString(raw)
    except DecodeError:
        raise StoreDamaged("the stored block does not parse", height) from None
    return block_id(stored.header)


def _check_log_root(store: Store, checked: CheckedBlock) -> None:
    header = checked.header
    try:
        root = merkle.root_at(header.log_size, store.merkle_node)
    except InvariantViolation as missing:
        raise StoreDamaged(f"the Merkle log is incomplete: {missing}", checked.height) from None
    if root != header.log_root:
        raise StoreDamaged(
            "the log root recomputed from the stored Merkle nodes differs from the header's",
            checked.height,
        )


def _highest_key(store: Store, prefix: bytes) -> bytes | None:
    return next(store.entries(prefix=prefix, reverse=True, include_value=False), None)


def _highest_stored_height(store: Store) -> int:
    key = _highest_key(store, schema.BLOCK_PREFIX)
    return schema.decode_number(key[len(schema.BLOCK_PREFIX) :]) if key is not None else 0


# --- at open ------------------------------------------------------------------------------------


def _check_nothing_above(store: Store, head: int, log_size: int) -> None:
    """No block above the head, no event beyond the log: the head is not behind its chain."""
    highest = _highest_stored_height(store)
    if highest > head:
        raise StoreDamaged(f"block {highest} is stored above the head height {head}", head + 1)
    highest_event = _highest_key(store, schema.LOG_PREFIX)
    if highest_event is not None and schema.decode_number(highest_event[1:]) >= log_size:
        raise StoreDamaged(
            f"{schema.describe_key(highest_event)} is stored beyond the log's size {log_size}",
            head + 1,
        )


def check_recent(store: Store, genesis: Genesis) -> tuple[Tip, merkle.CompactRange]:
    """Check the newest blocks (see the module docstring); return the tip and the log's
    frontier at the head, or raise `StoreDamaged`."""
    head = store.head_height
    if head == 0:
        _check_nothing_above(store, 0, 0)
        return genesis_tip(genesis), merkle.CompactRange()
    checked_events = 0
    expected_id: bytes | None = None  # what the block above links to
    head_block: CheckedBlock | None = None
    height = head
    while True:
        checked = check_block(store, genesis, height, certificate=True)
        if expected_id is not None and checked.block_id != expected_id:
            raise StoreDamaged(f"the block does not link to the stored block {height}", height + 1)
        _check_log_root(store, checked)
        head_block = head_block or checked
        expected_id = checked.header.previous_block_id
        checked_events += checked.header.event_count
        height -= 1
        if (
            height == 0
            or head - height >= OPEN_CHECK_BLOCKS_MAX
            or checked_events >= OPEN_CHECK_EVENTS_MAX
        ):
            break
    if _stored_block_id(store, genesis, height) != expected_id:
        what = "the genesis" if height == 0 else f"the stored block {height}"
        raise StoreDamaged(f"the block does not link to {what}", height + 1)
    header = head_block.header
    _check_nothing_above(store, head, header.log_size)
    try:
        frontier = merkle.CompactRange.from_nodes(header.log_size, store.merkle_node)
    except InvariantViolation as missing:
        raise StoreDamaged(f"the Merkle log is incomplete: {missing}", head) from None
    return Tip.from_header(header, head_block.stored.header), frontier


# --- the whole chain ----------------------------------------------------------------------------


@dataclass
class CheckReport:
    """What `check_store` found."""

    path: Path
    head_height: int  # the head height the store records
    witness_height: int | None  # the highest height this node committed (head witness)
    examined: Path  # the folder examined: `path`, or a salvaged copy of it
    walked_height: int = 0  # the highest height the walk went to
    replayed_height: int = 0  # blocks 1..this were checked and re-executed
    events: int = 0
    entries_compared: int = 0
    complete: bool = False  # every block replayed and the whole database compared
    salvaged: str = ""  # why the folder was examined on a salvaged copy, if it was
    marked: str = ""  # the damage marker: what the node found while it served, if anything
    findings: list[StoreDamaged] = field(default_factory=list)  # the first CHECK_FINDINGS_MAX
    findings_total: int = 0
    first_bad_height: int | None = None  # the lowest height of any finding

    def add(self, damage: StoreDamaged) -> None:
        self.findings_total += 1
        if len(self.findings) < CHECK_FINDINGS_MAX:
            self.findings.append(damage)
        if damage.height is not None:
            self.first_bad_height = min(damage.height, self.first_bad_height or damage.height)

    @property
    def sound(self) -> bool:
        return not self.findings_total and self.complete

    @property
    def target_height(self) -> int:
        """The height a repaired ledger must reach: all this node ever committed."""
        return max(self.head_height, self.walked_height, self.witness_height or 0)

    def summary(self) -> str:
        if self.sound:
            return (
                f"sound: blocks 1-{self.replayed_height} ({self.events} events): every hash "
                "link, certificate, events root, log root and state root checks, and the "
                f"{self.entries_compared} stored entries compared are what the blocks imply"
            )
        first = self.first_bad_height
        where = f"first bad height {first}" if first is not None else "no height known"
        found = self.findings_total
        unlisted = found - len(self.findings)
        sound = (
            f"blocks 1-{self.replayed_height} are sound and re-execute"
            if self.replayed_height
            else "no block could be replayed"
        )
        return (
            f"DAMAGED ({where}; {found} finding{'s' if found != 1 else ''}"
            f"{f', {unlisted} not listed' if unlisted else ''}); {sound}"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "sound": self.sound,
            "head_height": self.head_height,
            "witness_height": self.witness_height,
            "replayed_height": self.replayed_height,
            "first_bad_height": self.first_bad_height,
            "events": self.events,
            "entries_compared": self.entries_compared,
            "salvaged": self.salvaged,
            "marked": self.marked,
            "findings": [{"height": f.height, "what": f.what} for f in self.findings],
            "findings_total": self.findings_total,
        }


def check_store(
    path: Path,
    genesis: Genesis,
    progress: Progress | None = None,
    *,
    scratch: Path | None = None,
    keep_rebuilt: bool = False,
) -> tuple[CheckReport, Store | None]:
    """Check the whole ledger in `path` (see the module docstring).

    The scratch store is built in `scratch` (default: a hidden folder beside `path`, removed
    afterwards); with `keep_rebuilt` it is returned open, holding blocks 1..replayed_height,
    for `repair_store`. Raises `StoreError` (not damage) for a folder in use, of another
    genesis, or holding no ledger."""
    scratch = scratch or scratch_folder(path)
    shutil.rmtree(scratch, ignore_errors=True)
    # A copy of the ledger, readable by the node alone (as its data folder is); the rebuilt
    # ledger a repair moves into place keeps the mode.
    make_private_directory(scratch / "ledger")
    try:
        return _check_store(path, genesis, progress, scratch, keep_rebuilt)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise


def _check_store(
    path: Path, genesis: Genesis, progress: Progress | None, scratch: Path, keep_rebuilt: bool
) -> tuple[CheckReport, Store | None]:
    witness = read_head_witness(path)
    witness_height = witness[0] if witness is not None else None
    marker = path / schema.DAMAGE_MARKER_FILE
    marked = marker.read_text(errors="replace").strip() if marker.exists() else ""
    try:
        source, examined, salvaged = _open_for_examination(path, genesis, scratch)
    except StoreDamaged as damage:  # not even a salvaged copy opens
        report = CheckReport(path, 0, witness_height, examined=path)
        report.add(damage)
        source = None
    else:
        report = CheckReport(
            path, source.head_height, witness_height, examined=examined, salvaged=salvaged
        )
    rebuilt = Store(scratch / "ledger", genesis)
    if source is not None:
        examination = _Examination(source, genesis, rebuilt, scratch / "last-writes", report)
        try:
            if salvaged:
                examination.found(StoreDamaged(salvaged))
            examination.run(progress or (lambda height, of: None))
        except BaseException:
            rebuilt.close()
            raise
        finally:
            examination.close()
            source.close()
    report.marked = marked
    if keep_rebuilt:
        return report, rebuilt
    rebuilt.close()
    shutil.rmtree(scratch, ignore_errors=True)
    return report, None


def scratch_folder(path: Path) -> Path:
    """Where a check of the ledger folder `path` builds its scratch stores: beside it (the
    same file system, so a repair can rename the rebuilt ledger into place)."""
    return path.parent / f".{path.name}.integrity"


def _open_for_examination(path: Path, genesis: Genesis, scratch: Path) -> tuple[Store, Path, str]:
    """The store in `path` opened for examination, or, if LevelDB cannot open it, a salvaged
    copy; with the folder it is in and why a copy was needed."""
    try:
        return Store(path, genesis, create=False, examine=True), path, ""
    except StoreDamaged as damage:
        why = str(damage)
    copy = scratch / "salvaged"
    shutil.copytree(
        path,
        copy,
        ignore=shutil.ignore_patterns("LOCK", schema.HEAD_WITNESS_FILE, schema.DAMAGE_MARKER_FILE),
    )
    try:
        plyvel.repair_db(str(copy))
    except plyvel.Error as error:
        raise StoreDamaged(f"{why}; it cannot be salvaged: {leveldb_message(error)}") from None
    why += "; examined on a copy salvaged with LevelDB's repair, which drops what it cannot read"
    return Store(copy, genesis, create=False, examine=True), copy, why


class _Examination:
    """One walk of `check_store` over `source`, rebuilding it in `rebuilt`."""

    def __init__(
        self,
        source: Store,
        genesis: Genesis,
        rebuilt: Store,
        last_writes_path: Path,
        report: CheckReport,
    ) -> None:
        self.source = source
        self.genesis = genesis
        self.rebuilt = rebuilt
        self.report = report
        self.app = LedgerApplication(genesis, rebuilt, _CHECKER_ID)
        # The last height that wrote each world-state record: in a LevelDB of its own, since
        # there may be millions of records.
        self.last_writes = plyvel.DB(str(last_writes_path), create_if_missing=True)
        self.log_sizes = array("Q")  # the log's size after each replayed block

    def close(self) -> None:
        self.last_writes.close()

    def found(self, damage: StoreDamaged) -> None:
        self.report.add(damage)

    def run(self, progress: Progress) -> None:
        report = self.report
        self._check_metadata()
        highest = self._highest_stored_height()
        walk_head = max(report.head_height, highest, report.witness_height or 0)
        report.walked_height = walk_head
        previous_id = self.genesis.genesis_hash
        for height in range(1, walk_head + 1):
            try:
                checked = check_block(
                    self.source, self.genesis, height, certificate=False, indexes=False
                )
                if checked.header.previous_block_id != previous_id:
                    raise StoreDamaged("the block does not link to the block before it", height)
                self._replay(checked)
            except StoreDamaged as damage:
                self.found(self._lost_blocks_named(damage, height))
                return  # the blocks after a bad one cannot be replayed
            previous_id = checked.block_id
            report.replayed_height = height
            report.events += checked.header.event_count
            if height == report.head_height + 1:
                self.found(
                    StoreDamaged(
                        f"the head height is {report.head_height}, but blocks up to "
                        f"{highest} are stored",
                        height,
                    )
                )
            progress(height, walk_head)
        self._check_vote_log()
        self._compare_everything()
        report.complete = True

    def _lost_blocks_named(self, damage: StoreDamaged, height: int) -> StoreDamaged:
        report = self.report
        what = damage.what
        lost = report.witness_height is not None and height > report.head_height
        if what == "the block is not stored" and lost:
            what = (
                f"the block is not stored: LevelDB's head is {report.head_height}, but this "
                f"node committed up to block {report.witness_height} "
                f"({schema.HEAD_WITNESS_FILE}); LevelDB drops the tail of a truncated .log "
                "file without a word"
            )
        return StoreDamaged(what, damage.height if damage.height is not None else height)

    def _highest_stored_height(self) -> int:
        """The highest height a block is stored at (0 if it cannot be read: the walk then
        finds the damage block by block)."""
        try:
            return _highest_stored_height(self.source)
        except StoreDamaged:
            return 0

    def _check_metadata(self) -> None:
        source = self.source
        try:
            if source.entry(schema.META_GENESIS_HASH) != self.genesis.genesis_hash:
                self.found(StoreDamaged("the genesis hash is not stored"))
            raw_head = source.entry(schema.META_HEAD_HEIGHT)
            if raw_head is None or len(raw_head) != schema.HEIGHT_SIZE_BYTES:
                self.found(StoreDamaged("the head height is not stored, or not 8 bytes"))
        except StoreDamaged as damage:
            self.found(damage)

    # --- replaying one block ------------------------------------------------------------------

    def _replay(self, checked: CheckedBlock) -> None:
        height = checked.height

        async def write(executed: ExecutedBlock, certificate: ledger_pb2.CommitCertificate) -> None:
            entries = self.rebuilt.block_entries(executed, certificate)
            self._compare_block_entries(height, entries)
            self.rebuilt.commit_block(executed, certificate, entries)
            with self.last_writes.write_batch() as batch:
                for key, _ in entries:
                    if key.startswith(schema.STATE_PREFIX):
                        batch.put(key, schema.encode_number(height))
            self.log_sizes.append(executed.header.log_size)

        try:
            commit_now(
                self.app.commit(checked.block, checked.stored.certificate, write, synced=True)
            )
        except Rejected as rejection:
            raise StoreDamaged(self._explain(rejection, checked), height) from None

    def _explain(self, rejection: Rejected, checked: CheckedBlock) -> str:
        if rejection.code == "bad_certificate":
            return f"the commit certificate does not verify: {rejection.reason}"
        if rejection.code != "bad_block" or "header does not match" not in rejection.reason:
            return f"the block does not re-execute on the blocks before it: {rejection}"
        # The events applied, but to a different header: say which of its fields differ.
        rebuilt, block = self.rebuilt, checked.block
        executed = execute_block(
            state=rebuilt,
            log=rebuilt.log,
            tip=rebuilt.tip,
            chain_id=self.genesis.chain_id,
            candidates=[decode(signed, self.genesis.chain_id) for signed in block.events],
            time_ms=checked.header.time_ms,
            proposer_id=checked.header.proposer_id,
            genesis_validators=self.genesis.validator_set,
            last_commit=block.last_commit if block.HasField("last_commit") else None,
            strict=True,
            signatures_checked=True,
            evidence=list(block.evidence),
        )
        differing = [
            name
            for field_name, name in _HEADER_FIELD_NAMES.items()
            if getattr(executed.header, field_name) != getattr(checked.header, field_name)
        ]
        fields = " and ".join(differing) or "header bytes"
        return f"re-executing the block from the genesis gives another {fields} than its header"

    def _compare_block_entries(self, height: int, entries: list[tuple[bytes, bytes]]) -> None:
        """What the block writes once must be stored, exactly."""
        for key, value in entries:
            if key.startswith(_OVERWRITTEN_PREFIXES):
                continue
            self.report.entries_compared += 1
            try:
                stored = self.source.entry(key)
            except StoreDamaged as damage:
                self.found(StoreDamaged(damage.what, height))
                continue
            if stored is None:
                self.found(StoreDamaged(f"{schema.describe_key(key)} is missing", height))
            elif stored != value:
                self.found(
                    StoreDamaged(
                        f"{schema.describe_key(key)} differs from what the block implies", height
                    )
                )

    # --- once every block is replayed ---------------------------------------------------------

    def _check_vote_log(self) -> None:
        """The vote log is not derived from the blocks, but must be readable."""
        try:
            for _ in self.source.entries(prefix=schema.CONSENSUS_PREFIX):
                pass
        except StoreDamaged as damage:
            self.found(damage)

    def _compare_everything(self) -> None:
        """Key by key, the checked store must hold what the rebuilt one does (world-state
        records; entries no block implies). Differences in what blocks write once were found
        block by block."""
        source_entries = _DerivedEntries(self.source)

        def note_damage() -> None:
            while source_entries.damages:
                self.found(source_entries.damages.pop(0))

        note_damage()
        for key, value in _derived_entries(self.rebuilt.entries()):
            self.report.entries_compared += 1
            for extra in source_entries.before(key):
                self.found(self._named(extra, "is stored, but no block implies it"))
            note_damage()
            try:
                stored = source_entries.take(key)
            except StoreDamaged as damage:
                self.found(StoreDamaged(damage.what, self._height_of(key)))
                continue
            finally:
                note_damage()
            if key.startswith(_OVERWRITTEN_PREFIXES):
                if stored is None:
                    self.found(self._named(key, "is missing"))
                elif stored != value:
                    self.found(self._named(key, "differs from what the blocks imply"))
        for extra in source_entries.rest():
            self.found(self._named(extra, "is stored, but no block implies it"))
        note_damage()

    def _named(self, key: bytes, what: str) -> StoreDamaged:
        return StoreDamaged(f"{schema.describe_key(key)} {what}", self._height_of(key))

    def _height_of(self, key: bytes) -> int | None:
        """The height whose block wrote (or would have written) `key`, when it can be told."""
        prefix, rest = key[:1], key[1:]
        if prefix == schema.STATE_PREFIX:
            raw = self.last_writes.get(key)
            return schema.decode_number(raw) if raw is not None else None
        if prefix == schema.BLOCK_PREFIX and len(rest) == schema.HEIGHT_SIZE_BYTES:
            return schema.decode_number(rest)
        if prefix == schema.LOG_PREFIX and len(rest) == schema.HEIGHT_SIZE_BYTES:
            return self._height_of_log_index(schema.decode_number(rest))
        if prefix == schema.TREE_PREFIX and len(rest) == 1 + schema.HEIGHT_SIZE_BYTES:
            level, index = rest[0], schema.decode_number(rest[1:])
            return self._height_of_log_index(((index + 1) << level) - 1)
        if prefix == schema.ASSET_HISTORY_PREFIX and len(key) > schema.HEIGHT_SIZE_BYTES:
            return self._height_of_log_index(schema.decode_number(key[-schema.HEIGHT_SIZE_BYTES :]))
        return None

    def _height_of_log_index(self, log_index: int) -> int | None:
        height = bisect.bisect_right(self.log_sizes, log_index) + 1
        return height if height <= len(self.log_sizes) else None


def _derived_entries(entries: Iterator[Any]) -> Iterator[tuple[bytes, bytes]]:
    for key, value in entries:
        if not key.startswith(_NOT_DERIVED_PREFIXES):
            yield key, value


class _DerivedEntries:
    """The checked store's derived entries in key order, consumed alongside the rebuilt
    store's. A damaged table block stops a LevelDB iterator for good: the damage is noted in
    `damages`, and from there on the keys the rebuilt store holds are read one by one (each
    unreadable one raising) until one reads again, and iteration resumes after it. Entries
    only a damaged block held and that no block implies are then not seen one by one; the
    noted damage stands for them."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._pending: tuple[bytes, bytes] | None = None
        self._last_key: bytes | None = None
        self.damages: list[StoreDamaged] = []
        self._iterator: Iterator[tuple[bytes, bytes]] | None = _derived_entries(store.entries())
        self._advance()

    def _advance(self) -> None:
        if self._iterator is None:
            return
        try:
            self._pending = next(self._iterator, None)
        except StoreDamaged as damage:
            self._iterator = None
            self._pending = None
            after = schema.describe_key(self._last_key) if self._last_key else "the start"
            self.damages.append(StoreDamaged(f"{damage.what} (reading on after {after})"))
            return
        if self._pending is not None:
            self._last_key = self._pending[0]

    def _resume_after(self, key: bytes) -> None:
        self._last_key = key
        self._iterator = _derived_entries(self._store.entries(start=key, include_start=False))
        self._advance()

    def before(self, key: bytes) -> Iterator[bytes]:
        """The stored keys that come before `key` (which the rebuilt store does not hold)."""
        while self._pending is not None and self._pending[0] < key:
            extra = self._pending[0]
            self._advance()
            yield extra

    def take(self, key: bytes) -> bytes | None:
        """The stored value under `key`, or None; raises `StoreDamaged` if it cannot be read."""
        if self._iterator is None:  # reading one by one past a damaged block
            value = self._store.entry(key)  # raises while still in the damaged block
            self._resume_after(key)
            return value
        if self._pending is not None and self._pending[0] == key:
            value = self._pending[1]
            self._advance()
            return value
        return None

    def rest(self) -> Iterator[bytes]:
        while self._pending is not None:
            extra = self._pending[0]
            self._advance()
            yield extra


# --- repair -------------------------------------------------------------------------------------


@dataclass
class PeerSource:
    """How `repair_store` reaches the peers, from the node's config: its node id (its TLS
    certificate's), its peers' PeerService addresses and its TLS folder."""

    node_id: str
    peers: dict[str, str]
    tls_dir: Path | None


@dataclass
class RepairReport:
    check: CheckReport
    repaired: bool = False
    local_height: int = 0  # blocks 1..this were rebuilt from the folder itself
    head_height: int = 0  # the repaired ledger's head
    fetched: dict[str, int] = field(default_factory=dict)  # blocks fetched, by peer
    kept_at: Path | None = None  # where the damaged folder was moved
    problems: list[str] = field(default_factory=list)  # why it could not be completed

    def summary(self) -> str:
        if not self.repaired:
            return "not repaired: " + "; ".join(self.problems)
        fetched = ", ".join(f"{count} from {peer}" for peer, count in sorted(self.fetched.items()))
        local = (
            f"blocks 1-{self.local_height} rebuilt from the folder itself"
            if self.local_height
            else "no block kept from the folder"
        )
        return (
            f"repaired: {local}, {sum(self.fetched.values())} fetched from peers "
            f"({fetched or 'none'}); head {self.head_height}; the damaged folder is kept at "
            f"{self.kept_at}"
        )


def repair_store(
    path: Path,
    genesis: Genesis,
    peers: PeerSource,
    progress: Progress | None = None,
) -> RepairReport:
    """Rebuild the ledger in `path` (see the module docstring). Changes nothing unless the
    rebuilt ledger reaches every height this node committed; a sound ledger is left alone."""
    scratch = scratch_folder(path)
    check, rebuilt = check_store(path, genesis, progress, scratch=scratch, keep_rebuilt=True)
    report = RepairReport(check=check)
    assert rebuilt is not None  # keep_rebuilt
    try:
        if check.sound:
            if check.marked:
                # What the node met while serving is not there (a failing read that passed):
                # the whole check is the judge, so the node may serve again.
                (path / schema.DAMAGE_MARKER_FILE).unlink()
                report.problems.append("the ledger is sound; the damage marker was removed")
            else:
                report.problems.append("the ledger is sound; nothing to repair")
            return report
        report.local_height = rebuilt.head_height
        asyncio.run(_fetch_from_peers(rebuilt, genesis, peers, report))
        report.head_height = rebuilt.head_height
        if rebuilt.head_height < check.target_height:
            report.problems.append(
                f"the rebuilt ledger reaches block {rebuilt.head_height}, but this node "
                f"committed up to {check.target_height}; nothing was changed"
            )
            return report
        _carry_votes_over(genesis, check, rebuilt)
        rebuilt.close()
        report.kept_at = _replace_folder(path, scratch / "ledger")
        report.repaired = True
        return report
    finally:
        rebuilt.close()  # closing twice is harmless
        shutil.rmtree(scratch, ignore_errors=True)


async def _fetch_from_peers(
    rebuilt: Store, genesis: Genesis, peers: PeerSource, report: RepairReport
) -> None:
    """Fetch and commit blocks after the rebuilt head from the peers, as far as they go."""
    # Imported here: only a repair talks to peers from outside a running node.
    from provledger.node.peers import PeerNetwork, PeerRequestError
    from provledger.node.tls import load_tls_material, peer_trust

    if not peers.peers or peers.tls_dir is None:
        report.problems.append("this node has no peers in its config to fetch blocks from")
        return
    history = validator_history(rebuilt, genesis.validator_set)
    height = rebuilt.head_height + 1
    material = load_tls_material(peers.tls_dir)
    network = PeerNetwork(
        peers.node_id,
        peers.peers,
        material,
        history.validator_ids_from(height),
        trust=peer_trust(material, history.tls_cas_from(height), every_root=history.every_tls_ca()),
    )
    app = LedgerApplication(genesis, rebuilt, peers.node_id)

    async def write(executed: ExecutedBlock, certificate: ledger_pb2.CommitCertificate) -> None:
        rebuilt.commit_block(executed, certificate)

    usable = set(peers.peers)
    try:
        while usable:
            statuses = {peer_id: await network.peer_status(peer_id) for peer_id in sorted(usable)}
            ahead = sorted(
                (status.height, peer_id)
                for peer_id, status in statuses.items()
                if status is not None and status.height > rebuilt.head_height
            )
            for peer_id, status in statuses.items():
                if status is None:
                    report.problems.append(f"peer {peer_id} did not answer")
                    usable.discard(peer_id)
            if not ahead:
                return
            peer_id = ahead[-1][1]
            try:
                synced = await network.fetch_blocks(
                    peer_id, rebuilt.head_height + 1, SYNC_BATCH_BLOCKS_MAX
                )
            except PeerRequestError as error:
                report.problems.append(str(error))
                usable.discard(peer_id)
                continue
            committed = 0
            for item in synced:
                try:
                    executed = await app.commit(item.block, item.certificate, write, synced=True)
                except Rejected as rejection:
                    report.problems.append(f"peer {peer_id} sent a bad block: {rejection}")
                    break
                if executed is not None:
                    committed += 1
            report.fetched[peer_id] = report.fetched.get(peer_id, 0) + committed
            if committed < len(synced) or not synced:
                usable.discard(peer_id)  # a bad block, or none at a height it claims
    finally:
        await network.stop()


def _carry_votes_over(genesis: Genesis, check: CheckReport, rebuilt: Store) -> None:
    """What this validator signed above the rebuilt head, from the damaged folder's vote log
    (or its salvaged copy), as far as it can be read."""
    try:
        source = Store(check.examined, genesis, create=False, examine=True)
    except StoreError as error:
        log.warning("the vote log in %s cannot be read (%s)", check.examined, error)
        return
    try:
        start = schema.signed_messages_from(rebuilt.head_height + 1)
        entries = []
        try:
            for key, value in source.entries(start=start):
                if not key.startswith(schema.CONSENSUS_PREFIX):
                    break
                entries.append((key, value))
        except StoreDamaged as damage:
            log.warning("the vote log is damaged (%s); carrying over what was read", damage)
        rebuilt.save_signed_entries(entries)
    finally:
        source.close()


def _replace_folder(path: Path, rebuilt_path: Path) -> Path:
    """Move the damaged folder aside (kept, for a post-mortem) and the rebuilt one in."""
    number = 1
    while (kept := path.with_name(f"{path.name}.damaged-{number}")).exists():
        number += 1
    path.rename(kept)
    rebuilt_path.rename(path)
    return kept

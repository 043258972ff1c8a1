"""`provledger node check`: the whole chain re-executed from the genesis on a scratch store
and compared with the stored one, key by key (the theory is in node/integrity.py)."""

from __future__ import annotations

import bisect
import shutil
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import plyvel

from provledger.node import schema
from provledger.node.integrity import (
    CheckedBlock,
    Progress,
    check_block,
    highest_stored_height,
)
from provledger.node.private_files import make_private_directory
from provledger.node.settings import (
    CHECK_FINDINGS_MAX,
)
from provledger.node.store import (
    Store,
    StoreDamaged,
    leveldb_message,
    read_head_witness,
)
from provledger.protocol.application import LedgerApplication, commit_now
from provledger.protocol.blocks import (
    ExecutedBlock,
    execute_block,
)
from provledger.protocol.errors import Rejected
from provledger.protocol.events import decode
from provledger.protocol.genesis import Genesis
from provledger.v1 import ledger_pb2

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
            return highest_stored_height(self.source)
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

"""The store's integrity checks (node/integrity.py, integrity_check.py and integrity_repair.py)
over real LevelDB folders.

A chain of blocks that touches every index (registrations, a derivation, grants, a transfer,
an offer and an order, plus assets enough to fill several LevelDB blocks) is committed into a
`Store` the way a node commits it; then one thing is damaged, by hand through plyvel or on the
bytes of LevelDB's files, and each check must say so, naming the first bad height and what is
wrong:
- at open, the bounded window of the newest blocks (heights continuous and linked, the
  block-id and event-id indexes, certificates, events roots, log roots) and the head witness
  refuse a damaged store with `StoreDamaged`, never a raw plyvel error;
- `check_store` walks the whole chain: it re-executes every block on a scratch store and
  compares every entry, so damage the window cannot see (a world-state record, an index entry,
  a state root a quorum signed wrongly) is found too, with its height;
- LevelDB's own damage (a flipped byte in the .log, in a table, a lost CURRENT, a broken
  MANIFEST) is a `StoreDamaged` naming the file or what was being read; a serving store that
  meets it refuses everything after, and will not open again until repaired;
- `repair_store` rebuilds from the sound part of the folder, and changes nothing when blocks
  are missing and no peer can supply them.
Repair from real peers is in tests/integration/test_store_damage.py.
"""

from __future__ import annotations

import dataclasses
import os
import stat
import subprocess
import sys
from pathlib import Path

import plyvel
import pytest
from support.memory_state import GENESIS_TIME_MS, Consortium, digest

from provledger.node import schema
from provledger.node.integrity_check import check_store
from provledger.node.integrity_repair import PeerSource, repair_store
from provledger.node.settings import OPEN_CHECK_BLOCKS_MAX
from provledger.node.store import Store, StoreDamaged, StoreError, StoreInUse
from provledger.protocol import blocks
from provledger.v1 import ledger_pb2, state_pb2

GENERAL = ledger_pb2.CLASSIFICATION_GENERAL
READ = ledger_pb2.OPERATION_READ
FILLER_ASSETS = 120  # enough world-state records to fill several LevelDB blocks
HEALTH = "health/records"
TRIPS = "transport/trips"
FUSED = "fused/mobility-health"


@dataclasses.dataclass
class Chain:
    """Blocks committed into a real `Store` as a node commits them."""

    consortium: Consortium
    path: Path
    store: Store
    last_commit: ledger_pb2.CommitCertificate | None = None
    heights: dict[str, int] = dataclasses.field(default_factory=dict)  # what -> its height

    def commit(self, name: str, *signed: ledger_pb2.SignedEvent) -> blocks.ExecutedBlock:
        executed = self.execute(list(signed))
        certificate = self.consortium.certificate(executed)
        self.store.commit_block(executed, certificate)
        self.last_commit = certificate
        self.heights[name] = executed.header.height
        return executed

    def execute(self, signed: list[ledger_pb2.SignedEvent]) -> blocks.ExecutedBlock:
        consortium, store = self.consortium, self.store
        return blocks.execute_block(
            state=store,
            log=store.log,
            tip=store.tip,
            chain_id=consortium.chain_id,
            candidates=[consortium.decode(s) for s in signed],
            time_ms=store.tip.time_ms + 1_000,
            proposer_id="validator-0",
            genesis_validators=consortium.genesis.validator_set,
            last_commit=self.last_commit,
            strict=True,
            signatures_checked=True,
        )

    def close(self) -> None:
        self.store.close()


def register(consortium: Consortium, member: str, asset_id: str) -> ledger_pb2.SignedEvent:
    return consortium.sign(
        member,
        "asset_registered",
        asset_id=asset_id,
        content_digest=digest(asset_id),
        classification=GENERAL,
    )


def build_chain(path: Path) -> Chain:
    consortium = Consortium()
    chain = Chain(consortium, path, Store(path, consortium.genesis))
    sign = consortium.sign
    chain.commit(
        "registered",
        register(consortium, "agency-a", HEALTH),
        register(consortium, "agency-b", TRIPS),
    )
    chain.commit(
        "granted",
        sign(
            "agency-a",
            "grant_issued",
            grant_id="g/analytics",
            asset_id=HEALTH,
            grantee_id="agency-b",
            purposes=["analytics"],
            operations=[READ, ledger_pb2.OPERATION_DERIVE],
            expires_at_ms=GENESIS_TIME_MS + 10_000_000,
        ),
    )
    chain.commit(
        "derived",
        sign(
            "agency-b",
            "asset_derived",
            asset_id=FUSED,
            parent_ids=[HEALTH, TRIPS],
            activity="fusion",
            content_digest=digest("fused"),
            classification=GENERAL,
            grant_ids=["g/analytics"],
        ),
    )
    chain.commit(
        "listed",
        sign(
            "exchange",
            "offer_listed",
            offer_id="offer/1",
            asset_id=FUSED,
            seller_id="agency-b",
            price=1_000,
            currency="CNY",
            terms="one year",
        ),
    )
    chain.commit(
        "ordered", sign("regulator", "order_placed", order_id="order/1", offer_id="offer/1")
    )
    for batch in range(4):
        chain.commit(
            f"filler-{batch}",
            *(
                register(consortium, "agency-a", f"filler/{batch}/{number:03}")
                for number in range(FILLER_ASSETS // 4)
            ),
        )
    chain.commit(
        "transferred",
        sign("agency-a", "asset_transferred", asset_id=HEALTH, new_owner_id="agency-b"),
    )
    return chain


@pytest.fixture
def chain(tmp_path) -> Chain:
    built = build_chain(tmp_path / "ledger")
    yield built
    built.close()


def damage(chain: Chain, change) -> None:
    """Close the store, apply `change(db)` to its LevelDB directly, leave it closed."""
    chain.store.close()
    db = plyvel.DB(str(chain.path))
    try:
        change(db)
    finally:
        db.close()


def reopen(chain: Chain) -> Store:
    chain.store = Store(chain.path, chain.consortium.genesis)
    return chain.store


def refused_at_open(chain: Chain) -> StoreDamaged:
    with pytest.raises(StoreDamaged) as refused:
        Store(chain.path, chain.consortium.genesis)
    chain.store = Store(chain.path, chain.consortium.genesis, examine=True)  # for the fixture
    return refused.value


def check(chain: Chain):
    """`check_store` on the closed store's folder."""
    chain.store.close()
    report, _ = check_store(chain.path, chain.consortium.genesis)
    chain.store = Store(chain.path, chain.consortium.genesis, examine=True)  # for the fixture
    return report


def stored_block(db, height: int) -> state_pb2.StoredBlock:
    stored = state_pb2.StoredBlock()
    stored.ParseFromString(db.get(schema.block_key(height)))
    return stored


def flip_byte(path: Path, offset: int) -> None:
    with path.open("r+b") as file:
        file.seek(offset)
        byte = file.read(1)
        file.seek(offset)
        file.write(bytes([byte[0] ^ 0x55]))


# --- a sound chain ----------------------------------------------------------------------------


def test_a_sound_chain_checks_whole_and_reopens(chain):
    head = chain.store.head_height
    report = check(chain)
    assert report.sound, report.findings
    assert report.complete and report.replayed_height == head == report.head_height
    assert report.witness_height == head
    assert report.events == FILLER_ASSETS + 7
    assert report.entries_compared > 2 * report.events
    assert report.summary().startswith(f"sound: blocks 1-{head} ")
    chain.store.close()
    assert reopen(chain).head_height == head
    assert not (chain.path / schema.DAMAGE_MARKER_FILE).exists()
    assert not check_folder_left(chain.path)


def check_folder_left(path: Path) -> bool:
    return (path.parent / f".{path.name}.integrity").exists()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_head_witness_follows_every_commit(chain):
    witness = schema.decode_head_witness((chain.path / schema.HEAD_WITNESS_FILE).read_bytes())
    assert witness == (chain.store.head_height, chain.store.tip.block_id)
    chain.commit("more", register(chain.consortium, "agency-b", "more"))
    witness = schema.decode_head_witness((chain.path / schema.HEAD_WITNESS_FILE).read_bytes())
    assert witness == (chain.store.head_height, chain.store.tip.block_id)
    assert schema.decode_head_witness(b"\x00" * schema.HEAD_WITNESS_SIZE_BYTES) is None
    assert mode(chain.path / schema.HEAD_WITNESS_FILE) == 0o600


# --- damage the window sees at open ---------------------------------------------------------


def test_a_missing_event_is_refused_at_open_and_named_by_the_check(chain):
    height = chain.heights["derived"]
    stored = chain.store.stored_block(height)
    first = blocks.decode_header(stored.header).log_size - 1

    damage(chain, lambda db: db.delete(schema.log_key(first)))
    refused = refused_at_open(chain)
    assert refused.height == height
    assert f"the event at log index {first} (position 0) is not stored" in refused.what

    report = check(chain)
    assert not report.sound and report.first_bad_height == height
    assert report.replayed_height == height - 1  # nothing after a bad block replays
    assert "is not stored" in report.findings[0].what


def test_a_lost_index_entry_is_refused_at_open_and_rebuilt_without_peers(chain):
    """The event-id index is derived: the check names it and replays on, so a repair needs no
    peer for it."""
    height = chain.heights["granted"]
    (listed,) = chain.store.stored_block(height).event_ids
    damage(chain, lambda db: db.delete(schema.event_key(listed)))
    refused = refused_at_open(chain)
    assert refused.height == height and "event-id index does not map" in refused.what
    report = check(chain)
    assert report.complete and report.replayed_height == report.head_height
    assert [str(f) for f in report.findings] == [
        f"height {height}: {schema.describe_key(schema.event_key(listed))} is missing"
    ]
    chain.store.close()
    repaired = repair_store(chain.path, chain.consortium.genesis, PeerSource("v", {}, None))
    assert repaired.repaired and not repaired.fetched
    assert reopen(chain).has_event(listed)


def test_a_hole_in_the_heights_is_refused_at_open(chain):
    height = chain.heights["listed"]
    damage(chain, lambda db: db.delete(schema.block_key(height)))
    refused = refused_at_open(chain)
    assert refused.height == height and "not stored" in refused.what
    report = check(chain)
    assert report.first_bad_height == height
    assert report.findings[0].what == "the block is not stored"


def test_a_block_that_does_not_link_is_refused_at_open(chain):
    """A block replaced by another certified block at its height (an impossible fork): its
    own checks pass; the block above it does not link to it."""
    height = chain.heights["ordered"]

    def replace(db):
        stored = stored_block(db, height)
        header = blocks.decode_header(stored.header)
        header.time_ms += 1
        forged = blocks.encode_header(header)
        stored.header = forged
        stored.certificate.CopyFrom(chain.consortium.certificate(executed_stub(header, forged)))
        db.delete(schema.block_id_key(blocks.block_id(stored_block(db, height).header)))
        db.put(schema.block_key(height), stored.SerializeToString())
        db.put(schema.block_id_key(blocks.block_id(forged)), schema.encode_number(height))

    damage(chain, replace)
    refused = refused_at_open(chain)
    assert refused.height == height + 1
    assert refused.what == f"the block does not link to the stored block {height}"
    report = check(chain)
    assert report.first_bad_height == height + 1  # the forged block re-executes on its own
    assert report.findings[0].what == "the block does not link to the block before it"


def executed_stub(header: ledger_pb2.BlockHeader, header_bytes: bytes) -> blocks.ExecutedBlock:
    """Enough of an executed block for `Consortium.certificate` (its height and id)."""
    return blocks.ExecutedBlock(
        header=header,
        header_bytes=header_bytes,
        block_id=blocks.block_id(header_bytes),
        events=[],
        writes=[],
        log=None,  # type: ignore[arg-type]
        merkle_nodes=[],
    )


def test_lost_newest_blocks_are_seen_through_the_head_witness(chain):
    """LevelDB drops the tail of a truncated .log silently, even with paranoid checks: the
    store opens at an older head that checks on its own. The head witness says more was
    committed."""
    head = chain.store.head_height
    chain.store.close()
    log_file = newest_log(chain.path)
    os.truncate(log_file, log_file.stat().st_size - 1)  # into the last block's batch
    refused = refused_at_open(chain)
    assert refused.height == head
    assert f"its head is {head - 1}, but this node committed up to block {head}" in refused.what
    report = check(chain)
    assert report.first_bad_height == head and report.target_height == head
    assert "LevelDB's head is" in report.findings[0].what


def test_a_block_stored_above_the_head_is_refused(chain):
    head = chain.store.head_height
    damage(chain, lambda db: db.put(schema.META_HEAD_HEIGHT, schema.encode_number(head - 1)))
    refused = refused_at_open(chain)
    assert refused.height == head and "above the head" in refused.what


def test_a_missing_merkle_node_is_refused_at_open(chain):
    size = chain.store.log.size
    damage(chain, lambda db: db.delete(schema.tree_key(0, size - 1)))
    refused = refused_at_open(chain)
    assert refused.height == chain.store.head_height
    assert "Merkle" in refused.what


# --- damage only the whole-chain check sees -----------------------------------------------------


def test_a_changed_world_state_record_is_found_at_its_last_write(chain):
    def change_owner(db):
        key = schema.state_key("asset", TRIPS)
        record = state_pb2.AssetRecord()
        record.ParseFromString(db.get(key))
        record.owner_id = "exchange"
        db.put(key, record.SerializeToString(deterministic=True))

    damage(chain, change_owner)
    assert reopen(chain).head_height > 0  # the window does not read world state
    report = check(chain)
    assert report.complete and not report.sound
    assert report.first_bad_height == chain.heights["registered"]
    assert [str(f) for f in report.findings] == [
        f"height {chain.heights['registered']}: world-state record asset/{TRIPS!r} differs "
        "from what the blocks imply"
    ]


def test_missing_and_extra_index_entries_are_found(chain):
    history = schema.asset_history_key(FUSED, 0)

    def change_indexes(db):
        (key,) = [k for k, _ in db.iterator(prefix=schema.asset_history_prefix(FUSED))][:1]
        nonlocal history
        history = key
        db.delete(key)
        db.put(schema.upstream_key(TRIPS, HEALTH), b"")  # an edge no block adds

    damage(chain, change_indexes)
    report = check(chain)
    found = {str(f) for f in report.findings}
    derived = chain.heights["derived"]
    assert f"height {derived}: {schema.describe_key(history)} is missing" in found
    assert any("upstream lineage index" in f and "no block implies it" in f for f in found)
    assert report.first_bad_height == derived


def test_a_certified_block_with_a_wrong_state_root_is_found_by_re_execution(chain):
    """The window checks certificates and events roots, not re-execution: a block a quorum
    signed with another state root passes it; the whole-chain check names the field."""
    executed = chain.execute([register(chain.consortium, "agency-b", "wrong-root")])
    header = ledger_pb2.BlockHeader()
    header.CopyFrom(executed.header)
    header.state_root = digest("not the state root")
    header_bytes = blocks.encode_header(header)
    forged = dataclasses.replace(
        executed, header=header, header_bytes=header_bytes, block_id=blocks.block_id(header_bytes)
    )
    chain.store.commit_block(forged, chain.consortium.certificate(forged))
    height = header.height
    chain.store.close()
    assert reopen(chain).head_height == height

    report = check(chain)
    assert report.first_bad_height == height
    assert report.findings[0].what == (
        "re-executing the block from the genesis gives another state root than its header"
    )


# --- LevelDB's own damage ---------------------------------------------------------------------


def newest_log(path: Path) -> Path:
    return max(path.glob("*.log"), key=lambda p: int(p.stem))


def test_a_byte_flipped_in_the_log_is_refused_naming_the_file(chain):
    chain.store.close()
    log_file = newest_log(chain.path)
    flip_byte(log_file, log_file.stat().st_size // 2)
    with pytest.raises(StoreDamaged) as refused:
        Store(chain.path, chain.consortium.genesis)
    assert f"the write-ahead log {log_file.name} is damaged, LevelDB reports: dropping " in str(
        refused.value
    )
    assert "bytes; Corruption: checksum mismatch" in str(refused.value)

    report, _ = check_store(chain.path, chain.consortium.genesis)
    assert not report.sound and report.salvaged
    assert report.first_bad_height is not None  # the first height the salvage lost
    assert report.first_bad_height <= report.witness_height


def test_a_lost_current_file_is_refused_not_taken_for_an_empty_ledger(chain):
    chain.store.close()
    db = plyvel.DB(str(chain.path))
    db.compact_range()  # the blocks now live in tables, which a new database would delete
    db.close()
    (chain.path / "CURRENT").unlink()
    with pytest.raises(StoreDamaged, match="CURRENT file is missing"):
        Store(chain.path, chain.consortium.genesis)
    assert list(chain.path.glob("*.ldb"))  # nothing was deleted
    report, _ = check_store(chain.path, chain.consortium.genesis)
    assert report.complete and report.replayed_height == report.witness_height
    assert "CURRENT" in report.findings[0].what  # salvaged whole: the only finding


def test_a_damaged_manifest_is_refused_and_salvaged_by_the_check(chain):
    chain.store.close()
    (manifest,) = chain.path.glob("MANIFEST-*")
    flip_byte(manifest, manifest.stat().st_size // 2)
    with pytest.raises(StoreDamaged, match="MANIFEST"):
        Store(chain.path, chain.consortium.genesis)
    report, _ = check_store(chain.path, chain.consortium.genesis)
    assert report.salvaged and "MANIFEST" in report.findings[0].what
    assert report.replayed_height == report.witness_height  # nothing else was lost


def compacted_without_compression(path: Path) -> None:
    """Move everything into LevelDB tables whose blocks hold values as they are."""
    db = plyvel.DB(str(path), compression=None)
    db.compact_range()
    db.close()


def flip_inside(path: Path, value: bytes) -> Path:
    """Flip a byte in the middle of `value` where a table file holds it."""
    for table in path.glob("*.ldb"):
        data = table.read_bytes()
        offset = data.find(value)
        if offset >= 0:
            flip_byte(table, offset + len(value) // 2)
            return table
    raise AssertionError("no table holds the value")


def test_a_byte_flipped_in_a_table_is_never_served(chain):
    """A flipped byte in a table block of world-state records: the window does not read it,
    so the store opens; the first read of it refuses, marks the folder and refuses all else;
    the folder is refused at the next open; the check names the record and its height."""
    key = schema.state_key("asset", "filler/2/015")
    record = chain.store.entry(key)
    chain.store.close()
    compacted_without_compression(chain.path)
    flip_inside(chain.path, record)

    store = reopen(chain)
    assert store.load("asset", HEALTH) is not None  # another block of the table reads
    with pytest.raises(StoreDamaged, match="block checksum mismatch") as refused:
        store.load("asset", "filler/2/015")
    assert "world-state record asset/'filler/2/015'" in str(refused.value)
    assert store.damage is refused.value
    with pytest.raises(StoreDamaged):
        store.load("asset", HEALTH)  # it refuses everything now
    with pytest.raises(StoreDamaged):
        chain.commit("refused", register(chain.consortium, "agency-b", "after"))
    store.close()
    marker = (chain.path / schema.DAMAGE_MARKER_FILE).read_text()
    assert "filler/2/015" in marker
    assert mode(chain.path / schema.DAMAGE_MARKER_FILE) == 0o600
    with pytest.raises(StoreDamaged, match="found damage while it served"):
        Store(chain.path, chain.consortium.genesis)

    report, _ = check_store(chain.path, chain.consortium.genesis)
    # The damaged LevelDB block holds neighbouring records too, written by earlier blocks.
    assert chain.heights["filler-0"] <= report.first_bad_height <= chain.heights["filler-2"]
    assert any("world-state record asset/'filler/2/015'" in str(f) for f in report.findings)
    assert any("block checksum mismatch" in str(f) for f in report.findings)
    chain.store = Store(chain.path, chain.consortium.genesis, examine=True)


def test_a_byte_flipped_in_a_table_of_events_names_their_block(chain):
    height = chain.heights["filler-1"]
    stored = chain.store.stored_block(height)
    log_index = blocks.decode_header(stored.header).log_size - 3
    location = chain.store.entry(schema.log_key(log_index))
    chain.store.close()
    compacted_without_compression(chain.path)
    flip_inside(chain.path, location)
    report, _ = check_store(chain.path, chain.consortium.genesis)
    assert report.first_bad_height is not None and report.first_bad_height <= height
    assert "block checksum mismatch" in report.findings[0].what
    chain.store = Store(chain.path, chain.consortium.genesis, examine=True)


def test_a_folder_in_use_is_not_damage(chain):
    """Another process (a running node) holds the lock: in use, not damaged. (Tried from
    another process first: LevelDB's refusal of a second open in the same process releases
    the process's lock on the folder.)"""
    held_elsewhere = subprocess.run(
        [sys.executable, "-c", OPEN_IN_ANOTHER_PROCESS, str(chain.path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert held_elsewhere.stdout.strip() == "StoreInUse", held_elsewhere.stderr
    with pytest.raises(StoreInUse, match="in use by another process"):
        check_store(chain.path, chain.consortium.genesis)
    assert not check_folder_left(chain.path)


OPEN_IN_ANOTHER_PROCESS = """
import sys
from provledger.node.store import Store, StoreInUse
sys.path.insert(0, "tests")
from support.memory_state import Consortium
try:
    Store(sys.argv[1], Consortium().genesis)
except StoreInUse:
    print("StoreInUse")
"""


def test_another_genesis_is_not_damage(chain, tmp_path):
    other = Consortium(chain_id="another-chain")
    chain.store.close()
    with pytest.raises(StoreError, match="different genesis") as refused:
        Store(chain.path, other.genesis)
    assert not isinstance(refused.value, StoreDamaged)
    chain.store = Store(chain.path, chain.consortium.genesis)


# --- the window is bounded ------------------------------------------------------------------------


def test_the_open_check_reads_a_bounded_window(tmp_path):
    """Damage below the window is not read at open (restarts stay fast); the whole-chain
    check finds it."""
    consortium = Consortium()
    chain = Chain(consortium, tmp_path / "long", Store(tmp_path / "long", consortium.genesis))
    try:
        for number in range(OPEN_CHECK_BLOCKS_MAX + 3):
            chain.commit(f"block-{number}", register(consortium, "agency-a", f"long/{number}"))
        damage(chain, lambda db: db.delete(schema.log_key(0)))  # block 1's event
        assert reopen(chain).head_height == OPEN_CHECK_BLOCKS_MAX + 3
        report = check(chain)
        assert report.first_bad_height == 1
    finally:
        chain.close()


# --- repair ---------------------------------------------------------------------------------------


def test_repair_rebuilds_damaged_derived_data_from_the_folder_itself(chain):
    head = chain.store.head_height

    def damage_indexes(db):
        db.delete(schema.grants_by_grantee_key("agency-b", "g/analytics"))
        db.put(schema.state_key("asset", HEALTH), b"\x00garbage")

    damage(chain, damage_indexes)
    peers = PeerSource("validator-0", {}, None)
    report = repair_store(chain.path, chain.consortium.genesis, peers)
    assert report.repaired, report.problems
    assert report.local_height == head == report.head_height and not report.fetched
    assert report.kept_at == chain.path.with_name("ledger.damaged-1") and report.kept_at.exists()
    assert mode(chain.path) == 0o700  # the rebuilt ledger is the node's alone
    store = reopen(chain)
    assert store.head_height == head
    assert store.grants_held_by("agency-b", None, 10)[0]
    store.close()
    again, _ = check_store(chain.path, chain.consortium.genesis)
    assert again.sound, again.findings
    chain.store = Store(chain.path, chain.consortium.genesis, examine=True)


def contents(path: Path) -> dict[bytes, bytes]:
    db = plyvel.DB(str(path))
    try:
        return dict(db.iterator())
    finally:
        db.close()


def test_repair_without_peers_changes_nothing_when_blocks_are_lost(chain):
    height = chain.heights["listed"]
    damage(chain, lambda db: db.delete(schema.block_key(height)))
    before = contents(chain.path)
    report = repair_store(chain.path, chain.consortium.genesis, PeerSource("validator-0", {}, None))
    assert not report.repaired
    assert "no peers" in report.summary()
    assert f"reaches block {height - 1}" in report.summary()
    assert contents(chain.path) == before
    assert not chain.path.with_name("ledger.damaged-1").exists()
    assert not check_folder_left(chain.path)
    refused_at_open(chain)


def test_repair_of_a_sound_ledger_changes_nothing(chain):
    chain.store.close()
    report = repair_store(chain.path, chain.consortium.genesis, PeerSource("validator-0", {}, None))
    assert not report.repaired and report.check.sound
    assert not chain.path.with_name("ledger.damaged-1").exists()
    reopen(chain)


# --- naming keys ----------------------------------------------------------------------------------


def test_describe_key_names_every_family():
    assert schema.describe_key(schema.block_key(7)) == "block 7"
    assert schema.describe_key(schema.log_key(42)) == "the event at log index 42"
    assert schema.describe_key(schema.state_key("asset", "a/b")) == "world-state record asset/'a/b'"
    assert schema.describe_key(schema.tree_key(3, 5)) == "the Merkle log node at level 3, index 5"
    assert schema.describe_key(schema.asset_history_key("x", 9)) == (
        "the asset history index of asset 'x' at log index 9"
    )
    assert schema.describe_key(schema.nonce_key("agency-a", 12)) == (
        "the used nonce 12 of member 'agency-a'"
    )
    assert schema.describe_key(schema.upstream_key("child", "parent")) == (
        "the upstream lineage index entry 'child' / 'parent'"
    )
    assert schema.describe_key(None) == "the database"

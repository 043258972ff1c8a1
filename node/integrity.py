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

import logging
from collections.abc import Callable
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from provledger.node import schema
from provledger.node.settings import (
    OPEN_CHECK_BLOCKS_MAX,
    OPEN_CHECK_EVENTS_MAX,
)
from provledger.node.store import (
    Store,
    StoreDamaged,
)
from provledger.protocol import merkle
from provledger.protocol.blocks import (
    Tip,
    block_id,
    decode_header,
    genesis_tip,
    verify_certificate,
)
from provledger.protocol.errors import InvariantViolation, Rejected
from provledger.protocol.events import event_id, log_leaf
from provledger.protocol.genesis import Genesis
from provledger.protocol.validators import validator_set_at
from provledger.v1 import ledger_pb2, state_pb2

log = logging.getLogger("provledger.integrity")

# (height reached, the height the walk goes to)
Progress = Callable[[int, int], None]


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


def highest_stored_height(store: Store) -> int:
    key = _highest_key(store, schema.BLOCK_PREFIX)
    return schema.decode_number(key[len(schema.BLOCK_PREFIX) :]) if key is not None else 0


# --- at open ------------------------------------------------------------------------------------


def _check_nothing_above(store: Store, head: int, log_size: int) -> None:
    """No block above the head, no event beyond the log: the head is not behind its chain."""
    highest = highest_stored_height(store)
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

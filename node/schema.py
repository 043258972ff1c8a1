"""Every LevelDB key the node uses, built here and nowhere else.

One byte of prefix per key family; heights and log indexes are 8-byte big-endian so that
LevelDB's byte order is numeric order; variable-length ids inside composite keys are
length-prefixed so that no id can be a prefix-collision of another.

| prefix | key                                   | value                                  |
|--------|---------------------------------------|----------------------------------------|
| m      | m + name                              | metadata (head height, genesis hash)   |
| b      | b + height                            | StoredBlock: header, certificate, ids  |
| h      | h + block id                          | height                                 |
| e      | e + event id                          | log index                              |
| l      | l + log index                         | EventLocation with the SignedEvent     |
| t      | t + level (1) + index                 | perfect Merkle subtree hash            |
| s      | s + kind + 0x00 + record id           | a world-state record                   |
| n      | n + member id + 0x00 + nonce          | (empty) nonce used                     |
| a      | a + len + asset id + log index        | event id (asset history)               |
| u      | u + len + child + parent              | (empty) lineage edge, upstream         |
| d      | d + len + parent + child              | (empty) lineage edge, downstream       |
| g      | g + len + asset id + grant id         | (empty) grants by asset                |
| G      | G + len + grantee id + grant id       | (empty) grants by grantee              |
| w      | w + height + round (4) + type (1)     | what this validator signed (vote log)  |
| i      | i + len + grantor id + grant id       | (empty) grants by grantor (issuer)     |
| o      | o + len + member id + order id        | (empty) orders by buyer/seller/exchange|
| O      | O + len + asset id + order id         | (empty) orders by asset                |
| p      | p + block time (8) + proposal id (32) | (empty) governance proposals by time   |

Beside the keys, two small files live in the LevelDB folder (LevelDB leaves files it does not
name alone): the head witness (`HEAD_WITNESS_FILE`: the height and id of the last block this
node committed, so that LevelDB silently losing its newest writes is seen at open) and the
damage marker (`DAMAGE_MARKER_FILE`: what a serving node found damaged, so that it refuses to
serve again until the folder is checked and repaired). `describe_key` names what a key holds,
for damage reports.
"""

from __future__ import annotations

import hashlib

from provledger.protocol.errors import check

HEIGHT_SIZE_BYTES = 8
ID_PREFIX_LENGTH_BYTES_MAX = 255

META_PREFIX = b"m"
BLOCK_PREFIX = b"b"
BLOCK_ID_PREFIX = b"h"
EVENT_PREFIX = b"e"
LOG_PREFIX = b"l"
TREE_PREFIX = b"t"
STATE_PREFIX = b"s"
NONCE_PREFIX = b"n"
ASSET_HISTORY_PREFIX = b"a"
UPSTREAM_PREFIX = b"u"
DOWNSTREAM_PREFIX = b"d"
GRANTS_BY_ASSET_PREFIX = b"g"
GRANTS_BY_GRANTEE_PREFIX = b"G"
CONSENSUS_PREFIX = b"w"

META_HEAD_HEIGHT = META_PREFIX + b"head_height"
META_GENESIS_HASH = META_PREFIX + b"genesis_hash"


def encode_number(value: int) -> bytes:
    return value.to_bytes(HEIGHT_SIZE_BYTES, "big")


def decode_number(raw: bytes) -> int:
    return int.from_bytes(raw, "big")


def _length_prefixed(identifier: str) -> bytes:
    raw = identifier.encode()
    check(len(raw) <= ID_PREFIX_LENGTH_BYTES_MAX, f"identifier too long for a key: {len(raw)}")
    return bytes([len(raw)]) + raw


def block_key(height: int) -> bytes:
    return BLOCK_PREFIX + encode_number(height)


def block_id_key(block: bytes) -> bytes:
    return BLOCK_ID_PREFIX + block


def event_key(event: bytes) -> bytes:
    return EVENT_PREFIX + event


def log_key(log_index: int) -> bytes:
    return LOG_PREFIX + encode_number(log_index)


def tree_key(level: int, index: int) -> bytes:
    return TREE_PREFIX + bytes([level]) + encode_number(index)


def state_key(kind: str, record_id: str) -> bytes:
    return STATE_PREFIX + kind.encode() + b"\x00" + record_id.encode()


def nonce_key(member_id: str, nonce: int) -> bytes:
    return NONCE_PREFIX + _length_prefixed(member_id) + encode_number(nonce)


def asset_history_prefix(asset_id: str) -> bytes:
    return ASSET_HISTORY_PREFIX + _length_prefixed(asset_id)


def asset_history_key(asset_id: str, log_index: int) -> bytes:
    return asset_history_prefix(asset_id) + encode_number(log_index)


def upstream_prefix(child_id: str) -> bytes:
    return UPSTREAM_PREFIX + _length_prefixed(child_id)


def upstream_key(child_id: str, parent_id: str) -> bytes:
    return upstream_prefix(child_id) + parent_id.encode()


def downstream_prefix(parent_id: str) -> bytes:
    return DOWNSTREAM_PREFIX + _length_prefixed(parent_id)


def downstream_key(parent_id: str, child_id: str) -> bytes:
    return downstream_prefix(parent_id) + child_id.encode()


def grants_by_asset_key(asset_id: str, grant_id: str) -> bytes:
    return GRANTS_BY_ASSET_PREFIX + _length_prefixed(asset_id) + grant_id.encode()


def grants_by_grantee_key(grantee_id: str, grant_id: str) -> bytes:
    return GRANTS_BY_GRANTEE_PREFIX + _length_prefixed(grantee_id) + grant_id.encode()


def signed_message_key(height: int, round_number: int, vote_type: int) -> bytes:
    """What this validator signed at (height, round, type); type 0 is its proposal."""
    return (
        CONSENSUS_PREFIX
        + encode_number(height)
        + round_number.to_bytes(4, "big")
        + bytes([vote_type])
    )


def signed_messages_from(height: int) -> bytes:
    return CONSENSUS_PREFIX + encode_number(height)


# --- indexes for the auditor API (node/rest.py) ----------------------------------------------

GRANTS_BY_GRANTOR_PREFIX = b"i"
ORDERS_BY_MEMBER_PREFIX = b"o"
ORDERS_BY_ASSET_PREFIX = b"O"


def grants_by_asset_prefix(asset_id: str) -> bytes:
    return GRANTS_BY_ASSET_PREFIX + _length_prefixed(asset_id)


def grants_by_grantee_prefix(grantee_id: str) -> bytes:
    return GRANTS_BY_GRANTEE_PREFIX + _length_prefixed(grantee_id)


def grants_by_grantor_prefix(grantor_id: str) -> bytes:
    return GRANTS_BY_GRANTOR_PREFIX + _length_prefixed(grantor_id)


def grants_by_grantor_key(grantor_id: str, grant_id: str) -> bytes:
    return grants_by_grantor_prefix(grantor_id) + grant_id.encode()


def orders_by_member_prefix(member_id: str) -> bytes:
    return ORDERS_BY_MEMBER_PREFIX + _length_prefixed(member_id)


def orders_by_member_key(member_id: str, order_id: str) -> bytes:
    return orders_by_member_prefix(member_id) + order_id.encode()


def orders_by_asset_prefix(asset_id: str) -> bytes:
    return ORDERS_BY_ASSET_PREFIX + _length_prefixed(asset_id)


def orders_by_asset_key(asset_id: str, order_id: str) -> bytes:
    return orders_by_asset_prefix(asset_id) + order_id.encode()


# --- cases (ADR 018): by party and by subject (the complaints' orders, offers, assets, grants
# and the assets they concern) ------------------------------------------------------------------

CASES_BY_MEMBER_PREFIX = b"c"
CASES_BY_SUBJECT_PREFIX = b"C"


def cases_by_member_prefix(member_id: str) -> bytes:
    return CASES_BY_MEMBER_PREFIX + _length_prefixed(member_id)


def cases_by_member_key(member_id: str, case_id: str) -> bytes:
    return cases_by_member_prefix(member_id) + case_id.encode()


def cases_by_subject_prefix(subject_id: str) -> bytes:
    return CASES_BY_SUBJECT_PREFIX + _length_prefixed(subject_id)


def cases_by_subject_key(subject_id: str, case_id: str) -> bytes:
    return cases_by_subject_prefix(subject_id) + case_id.encode()


def state_kind_prefix(kind: str) -> bytes:
    """The prefix of every world-state record of `kind` (its ids follow, in byte order)."""
    return state_key(kind, "")


# --- governance proposals (ADR 016): by the block time that recorded them, so that the ones
# still open (proposed within PROPOSAL_OPEN_MS_MAX) are one short range --------------------------

PROPOSALS_BY_TIME_PREFIX = b"p"
PROPOSAL_ID_SIZE_BYTES = 32
PROPOSALS_END = bytes([PROPOSALS_BY_TIME_PREFIX[0] + 1])  # just after the family's last key


def proposals_from(time_ms: int) -> bytes:
    """The first key of proposals recorded at block time `time_ms` or later."""
    return PROPOSALS_BY_TIME_PREFIX + encode_number(max(time_ms, 0))


def proposal_by_time_key(time_ms: int, proposal_id: bytes) -> bytes:
    check(len(proposal_id) == PROPOSAL_ID_SIZE_BYTES, "a proposal id is 32 bytes")
    return proposals_from(time_ms) + proposal_id


def proposal_id_of_key(key: bytes) -> bytes:
    return key[len(PROPOSALS_BY_TIME_PREFIX) + HEIGHT_SIZE_BYTES :]


# --- the files beside the keys ----------------------------------------------------------------

HEAD_WITNESS_FILE = "PROVLEDGER-HEAD"
DAMAGE_MARKER_FILE = "PROVLEDGER-DAMAGED"
BLOCK_ID_SIZE_BYTES = 32
_WITNESS_CHECKSUM_SIZE_BYTES = 8
HEAD_WITNESS_SIZE_BYTES = HEIGHT_SIZE_BYTES + BLOCK_ID_SIZE_BYTES + _WITNESS_CHECKSUM_SIZE_BYTES


def encode_head_witness(height: int, block: bytes) -> bytes:
    """height (8) || block id (32) || the first 8 bytes of SHA-256 of both."""
    check(len(block) == BLOCK_ID_SIZE_BYTES, "a block id is 32 bytes")
    body = encode_number(height) + block
    return body + hashlib.sha256(body).digest()[:_WITNESS_CHECKSUM_SIZE_BYTES]


def decode_head_witness(raw: bytes) -> tuple[int, bytes] | None:
    """(height, block id), or None if `raw` is not a whole, intact witness."""
    if len(raw) != HEAD_WITNESS_SIZE_BYTES:
        return None
    body, checksum = raw[:-_WITNESS_CHECKSUM_SIZE_BYTES], raw[-_WITNESS_CHECKSUM_SIZE_BYTES:]
    if hashlib.sha256(body).digest()[:_WITNESS_CHECKSUM_SIZE_BYTES] != checksum:
        return None
    return decode_number(body[:HEIGHT_SIZE_BYTES]), body[HEIGHT_SIZE_BYTES:]


# --- naming what a key holds ------------------------------------------------------------------

_FAMILY_NAMES = {
    META_PREFIX: "the metadata",
    BLOCK_PREFIX: "the stored blocks",
    BLOCK_ID_PREFIX: "the block-id index",
    EVENT_PREFIX: "the event-id index",
    LOG_PREFIX: "the events (the log's entries)",
    TREE_PREFIX: "the Merkle log's nodes",
    STATE_PREFIX: "the world-state records",
    NONCE_PREFIX: "the used nonces",
    ASSET_HISTORY_PREFIX: "the asset history index",
    UPSTREAM_PREFIX: "the upstream lineage index",
    DOWNSTREAM_PREFIX: "the downstream lineage index",
    GRANTS_BY_ASSET_PREFIX: "the grants-by-asset index",
    GRANTS_BY_GRANTEE_PREFIX: "the grants-by-grantee index",
    GRANTS_BY_GRANTOR_PREFIX: "the grants-by-grantor index",
    ORDERS_BY_MEMBER_PREFIX: "the orders-by-member index",
    ORDERS_BY_ASSET_PREFIX: "the orders-by-asset index",
    PROPOSALS_BY_TIME_PREFIX: "the proposals-by-time index",
    CASES_BY_MEMBER_PREFIX: "the cases-by-member index",
    CASES_BY_SUBJECT_PREFIX: "the cases-by-subject index",
    CONSENSUS_PREFIX: "the vote log",
}


def _length_prefixed_id(rest: bytes) -> tuple[str, bytes]:
    """The length-prefixed id at the start of `rest`, and what follows it."""
    if not rest or len(rest) < 1 + rest[0]:
        return rest.hex(), b""
    return rest[1 : 1 + rest[0]].decode(errors="replace"), rest[1 + rest[0] :]


def describe_key(key: bytes | None) -> str:
    """What the entry under `key` (or the entries under a prefix) is, in words: "block 17",
    "the event at log index 42", "world-state record asset/'x'", "the stored blocks"... (for
    damage reports; never parsed back)."""
    if not key:
        return "the database"
    prefix, rest = key[:1], key[1:]
    name = _FAMILY_NAMES.get(prefix)
    if name is None:
        return f"the entry with key {key.hex()}"
    if not rest:
        return name
    number = decode_number(rest[:HEIGHT_SIZE_BYTES]) if len(rest) >= HEIGHT_SIZE_BYTES else None
    if prefix == META_PREFIX:
        return f"the metadata entry {rest.decode(errors='replace')!r}"
    if prefix == BLOCK_PREFIX and number is not None:
        return f"block {number}"
    if prefix == LOG_PREFIX and number is not None:
        return f"the event at log index {number}"
    if prefix == EVENT_PREFIX:
        return f"the event-id index entry of event {rest.hex()}"
    if prefix == BLOCK_ID_PREFIX:
        return f"the block-id index entry of block id {rest.hex()}"
    if prefix == TREE_PREFIX and len(rest) == 1 + HEIGHT_SIZE_BYTES:
        return f"the Merkle log node at level {rest[0]}, index {decode_number(rest[1:])}"
    if prefix == STATE_PREFIX:
        kind, _, record_id = (part.decode(errors="replace") for part in rest.partition(b"\x00"))
        if not record_id:
            return f"the world-state records of kind {kind!r}"
        return f"world-state record {kind}/{record_id!r}"
    if prefix == CONSENSUS_PREFIX and number is not None:
        return f"the vote log at height {number}"
    if prefix == PROPOSALS_BY_TIME_PREFIX and number is not None:
        return f"{name} entry of proposal {proposal_id_of_key(key).hex()} at {number} ms"
    first, tail = _length_prefixed_id(rest)
    if prefix == NONCE_PREFIX and len(tail) == HEIGHT_SIZE_BYTES:
        return f"the used nonce {decode_number(tail)} of member {first!r}"
    if prefix == ASSET_HISTORY_PREFIX and len(tail) == HEIGHT_SIZE_BYTES:
        return f"{name} of asset {first!r} at log index {decode_number(tail)}"
    if not tail:
        return f"{name} of {first!r}"
    return f"{name} entry {first!r} / {tail.decode(errors='replace')!r}"

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
"""

from __future__ import annotations

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

"""The evidence bundle format: the shape of a bundle, its canonical encoding, the building of
its document and the strict reading of it. This module is pure (no I/O, no clock);
protocol/evidence.py holds the verifier (`verify_bundle`) and `encode_bundle`, which fills in
the claims the events show (a case file's claims read what the verifier proves of each event,
so building one verifies it), and re-exports this module's public names.

Format "provledger-evidence/3" (docs/evidence.md explains each field for other languages):
- The file is exactly `json.dumps(bundle, sort_keys=True, separators=(",", ":"),
  ensure_ascii=True)` followed by one "\\n": ASCII, keys sorted by code point, no spaces,
  no duplicate keys, no floats. Any other spelling of the same JSON is refused, and every
  object must have exactly the fields listed here, so that every byte of the file is bound.
- Bytes are lower-case hex where people compare them with other tools (event ids, key ids,
  public keys, block ids, digests, the genesis hash) and RFC 4648 base64 with padding where
  only programs read them (event bodies, signatures, the header, proof hashes). Both must be
  canonical: re-encoding the decoded bytes gives the same text. Integers are non-negative.

    {"format": "provledger-evidence/3",
     "kind": "event" | "lineage" | "trade" | "case",
     "subject": {"event_id": hex} | {"asset_id": str} | {"order_id": str} | {"case_id": str},
     "chain_id": str, "genesis_hash": hex,
     "validators": [{"validator_id": str, "public_key": hex}],      # the genesis set, in order
     "checkpoint": {"header": b64 (a serialized BlockHeader),
                    "certificate": {"height": int, "round": int, "block_id": hex,
                                    "signatures": [{"validator_id": str, "signature": b64}]}},
     "events": [{"event_id": hex, "body": b64 (a serialized Event, as signed),
                 "signature": b64, "log_index": int, "proof": [b64, ...]}],  # by log index
     "governance": [...],            # the governance events it needs, as events, by log index
     "validator_chain": {"steps": [...]},  # the walk of the validator sets (validator_chain.py)
     "blocks": [checkpoint, ...],    # the block of each event, by height: its height and time
     "claims": {...}}                           # what the events show (evidence_claims.py)

The kind "case" was added to format 3 without a new version: every bundle that verified before
verifies alike, and a verifier that predates it refuses a case file as `malformed` (an unknown
kind), never reading it as something else.

Format "provledger-evidence/2", which the builder no longer makes, still verifies: it has no
`blocks`, so its replay knows no heights (no revocation, no proposal is judged).
Format "provledger-evidence/1", which the builder no longer makes, still verifies: it has
`members` (the authors' genesis records, by member id) instead of `governance`, and proves
only authors' genesis keys (others are refused as `unsupported_author`). Any other
provledger-evidence version is refused as `bundle_version`.

Reading (`parse_canonical`, `top_fields`, the `read_*` functions, `read_entries`) refuses a
file that is too large (`too_large`), not in canonical form (`not_canonical`), of another
version (`bundle_version`, `unsupported_format`) or not of the shape above (`malformed`); what
the fields prove is judged by protocol/evidence.py.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from provledger.protocol import merkle
from provledger.protocol.evidence_claims import BundleError
from provledger.protocol.genesis import Genesis, role_name
from provledger.protocol.limits import BUNDLE_SIZE_BYTES_MAX
from provledger.protocol.validator_chain import chain_to_json
from provledger.v1 import ledger_pb2, state_pb2

FORMAT = "provledger-evidence/3"
FORMAT_V2 = "provledger-evidence/2"  # still verified; no longer made
FORMAT_V1 = "provledger-evidence/1"  # still verified; no longer made
_FORMAT_FAMILY = "provledger-evidence/"
SUBJECT_FIELDS = {
    "event": "event_id", "lineage": "asset_id", "trade": "order_id", "case": "case_id",
}  # fmt: skip
# Kinds whose claims read what the bundle proves of its events (`Proven`): format 3 only.
PROVEN_KINDS = ("case",)
_TOP_FIELDS = (
    "blocks", "chain_id", "checkpoint", "claims", "events", "format", "genesis_hash",
    "governance", "kind", "subject", "validator_chain", "validators",
)  # fmt: skip
_TOP_FIELDS_V2 = tuple(f for f in _TOP_FIELDS if f != "blocks")
_TOP_FIELDS_V1 = (
    "chain_id", "checkpoint", "claims", "events", "format", "genesis_hash", "kind", "members",
    "subject", "validators",
)  # fmt: skip
_ENTRY_FIELDS = ("body", "event_id", "log_index", "proof", "signature")
_HEX = re.compile(r"(?:[0-9a-f]{2})*")
_UINT64_MAX = 2**64 - 1


@dataclass(frozen=True)
class EventEntry:
    """A committed event as the builder hands it in: the event, its log index and its
    inclusion proof at the checkpoint's log size."""

    signed: ledger_pb2.SignedEvent
    log_index: int
    proof: Sequence[bytes]


# --- encoding ----------------------------------------------------------------------------


def encode_canonical(document: Any) -> bytes:
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return text.encode("ascii") + b"\n"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def validators_json(genesis: Genesis) -> list[dict[str, str]]:
    return [
        {"validator_id": v.validator_id, "public_key": v.public_key.hex()}
        for v in genesis.validator_set.validators
    ]


def member_json(member: state_pb2.MemberRecord) -> dict[str, Any]:
    keys = [{"key_id": k.key_id.hex(), "public_key": k.public_key.hex()} for k in member.keys]
    return {
        "member_id": member.member_id,
        "name": member.name,
        "role": role_name(member.role),
        "keys": keys,
    }


def checkpoint_json(checkpoint: ledger_pb2.Checkpoint) -> dict[str, Any]:
    """A checkpoint as bundles (and fork proofs, protocol/fork_proof.py) write it: the header
    as transmitted, the certificate's signatures sorted by validator id."""
    certificate = checkpoint.certificate
    return {
        "header": b64(checkpoint.header),
        "certificate": {
            "height": certificate.height,
            "round": certificate.round,
            "block_id": certificate.block_id.hex(),
            "signatures": [
                {"validator_id": s.validator_id, "signature": b64(s.signature)}
                for s in sorted(certificate.signatures, key=lambda s: s.validator_id)
            ],
        },
    }


def _entries_json(entries: Sequence[EventEntry]) -> list[dict[str, Any]]:
    return [
        {
            "event_id": hashlib.sha256(entry.signed.body).hexdigest(),
            "body": b64(entry.signed.body),
            "signature": b64(entry.signed.signature),
            "log_index": entry.log_index,
            "proof": [b64(h) for h in entry.proof],
        }
        for entry in sorted(entries, key=lambda e: e.log_index)
    ]


def bundle_document(
    kind: str,
    subject_id: str,
    genesis: Genesis,
    checkpoint: ledger_pb2.Checkpoint,
    entries: Sequence[EventEntry],
    governance: Sequence[EventEntry] = (),
    validator_chain: ledger_pb2.ValidatorChain | None = None,
    blocks: Sequence[ledger_pb2.Checkpoint] = (),
) -> dict[str, Any]:
    """The document of the bundle of `kind` about `subject_id` (the arguments are
    `evidence.encode_bundle`'s), every field but its `claims` (None), which the events say.
    Raises `BundleError` malformed for an unknown kind."""
    if kind not in SUBJECT_FIELDS:
        raise BundleError("malformed", f"kind must be one of {sorted(SUBJECT_FIELDS)}")
    entries = sorted(entries, key=lambda e: e.log_index)
    document: dict[str, Any] = {
        "format": FORMAT,
        "kind": kind,
        "subject": {SUBJECT_FIELDS[kind]: subject_id},
        "chain_id": genesis.chain_id,
        "genesis_hash": genesis.genesis_hash.hex(),
        "validators": validators_json(genesis),
        "checkpoint": checkpoint_json(checkpoint),
        "events": _entries_json(entries),
        "governance": _entries_json(governance),
        "validator_chain": chain_to_json(validator_chain or ledger_pb2.ValidatorChain()),
        "blocks": [
            checkpoint_json(b)
            for b in sorted(blocks, key=lambda b: (b.certificate.height, b.header))
        ],
        "claims": None,
    }
    return document


# --- strict reading ----------------------------------------------------------------------


def malformed(reason: str) -> BundleError:
    return BundleError("malformed", reason)


def read_object(value: Any, where: str, fields: Sequence[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise malformed(f"{where} must be an object")
    for name in sorted(fields):
        if name not in value:
            raise malformed(f"{where} lacks the field {name!r}")
    for name in sorted(value):
        if name not in fields:
            raise malformed(f"{where} has an unknown field {name!r}")
    return value


def read_string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise malformed(f"{where} must be a string")
    return value


def read_integer(value: Any, where: str, maximum: int = _UINT64_MAX) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= maximum:
        raise malformed(f"{where} must be an integer in [0, {maximum}]")
    return value


def read_array(value: Any, where: str, maximum: int) -> list[Any]:
    if not isinstance(value, list) or len(value) > maximum:
        raise malformed(f"{where} must be an array of at most {maximum} entries")
    return value


def read_hex(value: Any, where: str, size: int) -> bytes:
    if not isinstance(value, str) or len(value) != 2 * size or not _HEX.fullmatch(value):
        raise malformed(f"{where} must be {size} bytes in lower-case hex")
    return bytes.fromhex(value)


def read_base64(value: Any, where: str) -> bytes:
    try:
        data = base64.b64decode(read_string(value, where), validate=True)
    except (binascii.Error, ValueError):
        raise malformed(f"{where} is not base64") from None
    if b64(data) != value:
        raise malformed(f"{where} is not canonical base64")
    return data


def _reject_number(text: str) -> Any:
    raise malformed(f"the bundle holds the number {text[:20]}; only integers are allowed")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        raise malformed("an object in the bundle repeats a key")
    return document


def parse_canonical(data: bytes, size_bytes_max: int = BUNDLE_SIZE_BYTES_MAX) -> Any:
    """The JSON document `data` holds, if `data` is its canonical spelling (`encode_canonical`)
    and at most `size_bytes_max` bytes; else `BundleError`."""
    if len(data) > size_bytes_max:
        raise BundleError("too_large", f"the file exceeds {size_bytes_max} bytes")
    try:
        document = json.loads(
            data.decode("ascii"),
            object_pairs_hook=_unique_keys,
            parse_float=_reject_number,
            parse_constant=_reject_number,
        )
    except UnicodeDecodeError:
        raise BundleError("not_canonical", "bundle is not in canonical form: not ASCII") from None
    except (ValueError, RecursionError) as error:
        raise malformed(f"the bundle is not JSON: {error}") from None
    if encode_canonical(document) != data:
        raise BundleError(
            "not_canonical",
            "bundle is not in canonical form (sorted keys, no spaces, ASCII escapes, one "
            "final newline)",
        )
    return document


def top_fields(document: Any) -> tuple[str, ...]:
    """The fields of the bundle's format version, once its `format` is one this verifier
    reads."""
    if not isinstance(document, dict) or "format" not in document:
        return _TOP_FIELDS  # `read_object` says what is wrong
    stated = read_string(document["format"], "format")
    if stated == FORMAT:
        return _TOP_FIELDS
    if stated == FORMAT_V2:
        return _TOP_FIELDS_V2
    if stated == FORMAT_V1:
        return _TOP_FIELDS_V1
    if stated.startswith(_FORMAT_FAMILY):
        raise BundleError(
            "bundle_version",
            f"format {stated[:40]!r} is a version this verifier does not read (it reads "
            f"{FORMAT!r}, {FORMAT_V2!r} and {FORMAT_V1!r})",
        )
    raise BundleError("unsupported_format", f"format is not {FORMAT!r}")


@dataclass(frozen=True)
class ListedEntry:
    """An event entry of the bundle, read but not yet judged."""

    listed: str  # "events" or "governance"
    where: str
    event_id: bytes
    signed: ledger_pb2.SignedEvent
    log_index: int
    proof: list[bytes]


def read_entries(value: Any, where: str, maximum: int) -> list[ListedEntry]:
    """The entries of one list, in strictly increasing log order."""
    entries: list[ListedEntry] = []
    for index, item in enumerate(read_array(value, where, maximum)):
        place = f"{where}[{index}]"
        fields = read_object(item, place, _ENTRY_FIELDS)
        signed = ledger_pb2.SignedEvent(
            body=read_base64(fields["body"], f"{place}.body"),
            signature=read_base64(fields["signature"], f"{place}.signature"),
        )
        items = read_array(fields["proof"], f"{place}.proof", merkle.PROOF_HASHES_MAX)
        entry = ListedEntry(
            listed=where,
            where=place,
            event_id=read_hex(fields["event_id"], f"{place}.event_id", 32),
            signed=signed,
            log_index=read_integer(fields["log_index"], f"{place}.log_index"),
            proof=[read_base64(h, f"{place}.proof[{i}]") for i, h in enumerate(items)],
        )
        if entries and entry.log_index <= entries[-1].log_index:
            raise malformed(f"{where} must be in strictly increasing log_index order")
        entries.append(entry)
    return entries

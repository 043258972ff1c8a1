"""The genesis document: the one file every member and auditor trusts.

It names the chain, its first members (with their roles and public keys), the validator set
and, optionally, the governance approval thresholds (`governance_thresholds`: {"default":
"2/3", "member_added": "3/4", ...}, each "more than this fraction of the active members";
absent, more than two thirds for every kind of change, ADR 005 and 016) and the rules of
supervision (`supervision`: {"appeal_window_ms": N, "appeal_panel_size": k}, ADR 017).
Everything else is proven from it: a checkpoint is trusted because a quorum of these
validators signed it, an event because one of these members' keys signed it.

The document is JSON. `genesis_hash` is SHA-256 of its canonical form (sorted keys, no
spaces, UTF-8), so re-formatting the file does not change the chain's identity.

Two optional parts come from the founding ceremony (cli/ceremony.py, ADR 015); a document
without them parses and hashes as before:
- `validators[i].tls_ca`: the PEM of the TLS CA root of that validator's organisation, which
  alone may issue the validator's node certificate. Every validator has one or none does
  (none: every node trusts its `tls/ca.pem`, one consortium CA). What a CA root is, is
  `tls_ca_problem`'s judgement, the one the validator-set rules (ValidatorAdded.tls_ca,
  TlsCaReplaced) and the node's trust (node/tls.py) ask too: one bounded PEM certificate
  block holding a self-signed CA certificate allowed to sign certificates.
- `founding_signatures`: [{"member_id", "key_id", "signature"} (hex)], each over
  `"provledger/v1/genesis\x00" || canonical JSON of the document without
  founding_signatures` (`founding_message`). When present, every member of the document
  signed, each with a key of its own record; when absent, the document was made on one
  machine (`consortium init`) and nothing says who agreed to it.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from provledger.protocol import crypto
from provledger.protocol.errors import invalid
from provledger.protocol.limits import (
    APPEAL_PANEL_SIZE_DEFAULT,
    APPEAL_PANEL_SIZE_MAX,
    APPEAL_WINDOW_MS_DEFAULT,
    APPEAL_WINDOW_MS_MAX,
    CHAIN_ID_LENGTH_CHARS_MAX,
    KEY_ID_SIZE_BYTES,
    PUBLIC_KEY_SIZE_BYTES,
    SIGNATURE_SIZE_BYTES,
    TLS_CA_PEM_SIZE_BYTES_MAX,
)
from provledger.protocol.privacy import DEFAULT_GUARD, PersonalDataGuard
from provledger.protocol.thresholds import CHANGE_KINDS, DEFAULT_THRESHOLD, threshold_problem
from provledger.v1 import ledger_pb2, state_pb2

ROLE_NAMES = {
    "agency": ledger_pb2.ROLE_AGENCY,
    "exchange": ledger_pb2.ROLE_EXCHANGE,
    "regulator": ledger_pb2.ROLE_REGULATOR,
    "auditor": ledger_pb2.ROLE_AUDITOR,
    "broker": ledger_pb2.ROLE_BROKER,
}
_CHAIN_ID = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_FRACTION = re.compile(r"[0-9]{1,9}/[0-9]{1,9}")


def role_name(role: int) -> str:
    for name, value in ROLE_NAMES.items():
        if value == role:
            return name
    return "unspecified"


@dataclass(frozen=True)
class Validator:
    validator_id: str
    public_key: bytes
    # PEM of its organisation's TLS CA root (ADR 015); empty with one consortium CA. Who may
    # speak for the node on the network, not who signs: outside equality and `hash()`.
    tls_ca: bytes = field(default=b"", compare=False)


@dataclass(frozen=True)
class ValidatorSet:
    """The validators, ordered by id. A quorum is more than two thirds of them."""

    validators: tuple[Validator, ...]

    def __post_init__(self) -> None:
        ids = [v.validator_id for v in self.validators]
        if ids != sorted(set(ids)):
            raise invalid("bad_validator_set", "validator ids must be unique and sorted")

    @property
    def quorum_size(self) -> int:
        return len(self.validators) * 2 // 3 + 1

    def public_key(self, validator_id: str) -> bytes | None:
        for validator in self.validators:
            if validator.validator_id == validator_id:
                return validator.public_key
        return None

    def hash(self) -> bytes:
        digest = hashlib.sha256(b"provledger/v1/validators\x00")
        for validator in self.validators:
            encoded_id = validator.validator_id.encode()
            digest.update(len(encoded_id).to_bytes(2, "big") + encoded_id)
            digest.update(validator.public_key)
        return digest.digest()


@dataclass(frozen=True)
class Genesis:
    chain_id: str
    genesis_time_ms: int
    members: tuple[state_pb2.MemberRecord, ...]
    validator_set: ValidatorSet
    genesis_hash: bytes
    # Free text matching these is refused (protocol/privacy.py); the genesis document's
    # `personal_data_patterns`, or the defaults.
    personal_data: PersonalDataGuard = DEFAULT_GUARD
    # (validator id, PEM of its organisation's TLS CA root), by validator id; empty: one
    # consortium CA, each node's tls/ca.pem.
    validator_tls_cas: tuple[tuple[str, bytes], ...] = ()
    # The genesis document's `governance_thresholds`; None: the default for every kind.
    thresholds: ledger_pb2.Thresholds | None = None
    # The genesis document's `supervision` ({"appeal_window_ms": N, "appeal_panel_size": k});
    # None: the defaults of protocol/limits.py (ADR 017).
    supervision: state_pb2.SupervisionPolicy | None = None

    def tls_ca(self, validator_id: str) -> bytes | None:
        """The PEM of the TLS CA root of `validator_id`'s organisation, if the genesis names
        one (ADR 015)."""
        return dict(self.validator_tls_cas).get(validator_id)

    def member(self, member_id: str) -> state_pb2.MemberRecord | None:
        for member in self.members:
            if member.member_id == member_id:
                return member
        return None


def canonical_json(document: Any) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


FOUNDING_SIGNATURES = "founding_signatures"
_PEM_CERTIFICATE = re.compile(
    r"-----BEGIN CERTIFICATE-----\n[A-Za-z0-9+/=\n]+-----END CERTIFICATE-----\n?"
)


def tls_ca_problem(certificate_pem: bytes) -> str | None:
    """Why `certificate_pem` is not an organisation's TLS CA root as the genesis and the
    governance changes name one, or None: one PEM certificate block of at most
    TLS_CA_PEM_SIZE_BYTES_MAX bytes, holding a self-signed certificate with CA:true and the
    keyCertSign usage (ADR 015). The one home of this judgement: `parse_genesis`, the
    validator-set rules (protocol/validators.py) and the node's trust (node/tls.py) ask it.
    Pure: parsing and a signature check, no clock (validity dates are the TLS handshake's)."""
    if len(certificate_pem) > TLS_CA_PEM_SIZE_BYTES_MAX:
        return f"a TLS CA root is a PEM certificate of at most {TLS_CA_PEM_SIZE_BYTES_MAX} bytes"
    try:
        text = certificate_pem.decode("ascii")
    except UnicodeDecodeError:
        return "a TLS CA root is one PEM certificate block (ASCII)"
    if not _PEM_CERTIFICATE.fullmatch(text):
        return "a TLS CA root is one PEM certificate block"
    try:
        certificate = x509.load_pem_x509_certificate(certificate_pem)
    except ValueError as error:
        return f"not a PEM certificate: {error}"
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage)
        certificate.verify_directly_issued_by(certificate)
    except (x509.ExtensionNotFound, ValueError, TypeError, InvalidSignature):
        return f"{certificate.subject.rfc4514_string()} is not a self-signed CA certificate"
    if not constraints.value.ca or not usage.value.key_cert_sign:
        return f"{certificate.subject.rfc4514_string()} is not a CA"
    return None


def founding_message(document: dict[str, Any]) -> bytes:
    """What a founding member signs (after `crypto.DOMAIN_GENESIS`): the canonical JSON of
    the genesis document without its `founding_signatures`, the draft every member saw."""
    return canonical_json({k: v for k, v in document.items() if k != FOUNDING_SIGNATURES})


def sign_founding(document: dict[str, Any], member_id: str, key: crypto.SigningKey) -> dict:
    """A founding member's signature entry for `document` (a draft, or a sealed document)."""
    return {
        "member_id": member_id,
        "key_id": key.key_id.hex(),
        "signature": key.sign(crypto.DOMAIN_GENESIS, founding_message(document)).hex(),
    }


def _validator_tls_cas(entries: list[Any]) -> tuple[tuple[str, bytes], ...]:
    """The validators' `tls_ca` roots: all of them or none (ADR 015)."""
    roots = []
    for index, entry in enumerate(entries):
        text = entry.get("tls_ca") if isinstance(entry, dict) else None
        if text is None:
            continue
        where = f"validators[{index}].tls_ca"
        if not isinstance(text, str):
            raise invalid("bad_validator_tls_ca", f"{where} must be a PEM certificate (text)")
        problem = tls_ca_problem(text.encode())
        if problem is not None:
            raise invalid("bad_validator_tls_ca", f"{where}: {problem}")
        roots.append((entry["validator_id"], text.encode()))
    if roots and len(roots) != len(entries):
        raise invalid(
            "bad_validator_tls_ca",
            "every validator names its organisation's TLS CA (tls_ca), or none does",
        )
    return tuple(sorted(roots))


def _hex_field(entry: dict[str, Any], name: str, size: int, where: str) -> bytes:
    try:
        value = bytes.fromhex(entry[name])
    except (KeyError, TypeError, ValueError):
        value = b""
    if len(value) != size:
        raise invalid("bad_founding_signatures", f"{where}: {name} must be {size} bytes of hex")
    return value


def _check_founding_signatures(
    document: dict[str, Any], members: list[state_pb2.MemberRecord]
) -> None:
    """When the document carries founding signatures, every member signed it, each with a
    key of its own record."""
    entries = document.get(FOUNDING_SIGNATURES)
    if entries is None:
        return
    if not isinstance(entries, list) or not entries:
        raise invalid("bad_founding_signatures", "founding_signatures must be a non-empty list")
    message = founding_message(document)
    by_id = {member.member_id: member for member in members}
    signed: set[str] = set()
    for index, entry in enumerate(entries):
        where = f"founding_signatures[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("member_id"), str):
            raise invalid("bad_founding_signatures", f"{where}: member_id missing")
        member_id = entry["member_id"]
        key_id = _hex_field(entry, "key_id", KEY_ID_SIZE_BYTES, where)
        signature = _hex_field(entry, "signature", SIGNATURE_SIZE_BYTES, where)
        if member_id in signed:
            raise invalid("bad_founding_signatures", f"{where}: {member_id} signed twice")
        member = by_id.get(member_id)
        keys = {k.key_id: k.public_key for k in member.keys} if member is not None else {}
        public_key = keys.get(key_id)
        if public_key is None:
            raise invalid(
                "founding_signer_unknown",
                f"{where}: {member_id!r} is not a member of this genesis with key {key_id.hex()}",
            )
        if not crypto.verify(public_key, crypto.DOMAIN_GENESIS, message, signature):
            raise invalid(
                "founding_signature_invalid",
                f"{where}: {member_id}'s signature does not verify over this document",
            )
        signed.add(member_id)
    missing = sorted(set(by_id) - signed)
    if missing:
        raise invalid(
            "founding_signature_missing", f"founding members {missing} did not sign this genesis"
        )


def _public_key(text: Any, where: str) -> bytes:
    try:
        key = bytes.fromhex(text)
    except (TypeError, ValueError):
        raise invalid("bad_genesis", f"{where}: public key is not hex") from None
    if len(key) != PUBLIC_KEY_SIZE_BYTES:
        raise invalid("bad_genesis", f"{where}: public key must be {PUBLIC_KEY_SIZE_BYTES} bytes")
    return key


def _personal_data(entries: Any) -> PersonalDataGuard:
    """The genesis document's personal-data patterns: absent means the defaults, an empty list
    means none."""
    if entries is None:
        return DEFAULT_GUARD
    if not isinstance(entries, list) or not all(
        isinstance(e, dict) and isinstance(e.get("name"), str) and isinstance(e.get("pattern"), str)
        for e in entries
    ):
        raise invalid(
            "bad_genesis", 'personal_data_patterns must be a list of {"name", "pattern"} strings'
        )
    try:
        return PersonalDataGuard.from_patterns((e["name"], e["pattern"]) for e in entries)
    except ValueError as error:
        raise invalid("bad_genesis", f"personal_data_patterns: {error}") from None


def _thresholds(entries: Any) -> ledger_pb2.Thresholds | None:
    """The genesis document's governance thresholds: {"default" or a change kind: "N/D"}."""
    if entries is None:
        return None
    if not isinstance(entries, dict):
        raise invalid("bad_genesis", 'governance_thresholds must be an object {"kind": "N/D"}')
    table = ledger_pb2.Thresholds(default_threshold=DEFAULT_THRESHOLD)
    for name, text in entries.items():
        where = f"governance_thresholds[{name!r}]"
        if name != "default" and name not in CHANGE_KINDS:
            raise invalid(
                "bad_genesis", f"{where}: not a kind of change ({', '.join(CHANGE_KINDS)})"
            )
        if not isinstance(text, str) or not _FRACTION.fullmatch(text):
            raise invalid("bad_genesis", f'{where} must be a fraction such as "2/3"')
        numerator, _, denominator = text.partition("/")
        problem = threshold_problem(int(numerator), int(denominator))
        if problem is not None:
            raise invalid("bad_genesis", f"{where}: {problem}")
        threshold = ledger_pb2.Threshold(numerator=int(numerator), denominator=int(denominator))
        if name == "default":
            table.default_threshold.CopyFrom(threshold)
        else:
            table.by_kind[name].CopyFrom(threshold)
    return table


def _supervision(entries: Any) -> state_pb2.SupervisionPolicy | None:
    """The genesis document's rules of supervision: how long a party may appeal a ruling,
    and how many regulators must decide an appeal alike (k of n, the joint supervision across
    departments)."""
    if entries is None:
        return None
    if not isinstance(entries, dict) or set(entries) - {"appeal_window_ms", "appeal_panel_size"}:
        raise invalid(
            "bad_genesis",
            'supervision must be an object {"appeal_window_ms": N, "appeal_panel_size": k}',
        )
    window = entries.get("appeal_window_ms", APPEAL_WINDOW_MS_DEFAULT)
    panel = entries.get("appeal_panel_size", APPEAL_PANEL_SIZE_DEFAULT)
    if (
        not isinstance(window, int)
        or isinstance(window, bool)
        or not (0 < window <= APPEAL_WINDOW_MS_MAX)
    ):
        raise invalid(
            "bad_genesis", f"supervision.appeal_window_ms must be 1..{APPEAL_WINDOW_MS_MAX}"
        )
    if (
        not isinstance(panel, int)
        or isinstance(panel, bool)
        or not (0 < panel <= APPEAL_PANEL_SIZE_MAX)
    ):
        raise invalid(
            "bad_genesis", f"supervision.appeal_panel_size must be 1..{APPEAL_PANEL_SIZE_MAX}"
        )
    return state_pb2.SupervisionPolicy(appeal_window_ms=window, appeal_panel_size=panel)


def parse_genesis(document_bytes: bytes) -> Genesis:
    """Parse and check a genesis document; raise `Rejected` with the reason if it is bad."""
    try:
        document = json.loads(document_bytes)
    except (ValueError, UnicodeDecodeError) as error:
        raise invalid("bad_genesis", f"not JSON: {error}") from None
    if not isinstance(document, dict):
        raise invalid("bad_genesis", "the genesis document must be a JSON object")
    chain_id = document.get("chain_id")
    if (
        not isinstance(chain_id, str)
        or not _CHAIN_ID.match(chain_id)
        or len(chain_id) > CHAIN_ID_LENGTH_CHARS_MAX
    ):
        raise invalid("bad_genesis", "chain_id must be lower-case letters, digits, '.', '_', '-'")
    genesis_time_ms = document.get("genesis_time_ms")
    if not isinstance(genesis_time_ms, int) or genesis_time_ms < 0:
        raise invalid("bad_genesis", "genesis_time_ms must be a non-negative integer")

    members = []
    for index, entry in enumerate(document.get("members") or []):
        where = f"members[{index}]"
        if not isinstance(entry, dict):
            raise invalid("bad_genesis", f"{where} must be an object")
        role = ROLE_NAMES.get(str(entry.get("role")))
        if role is None:
            raise invalid("bad_genesis", f"{where}: role must be one of {sorted(ROLE_NAMES)}")
        member_id = entry.get("member_id")
        if not isinstance(member_id, str) or not member_id:
            raise invalid("bad_genesis", f"{where}: member_id missing")
        keys = [_public_key(text, where) for text in entry.get("public_keys") or []]
        if not keys:
            raise invalid("bad_genesis", f"{where}: at least one public key is needed")
        members.append(
            state_pb2.MemberRecord(
                member_id=member_id,
                name=str(entry.get("name", member_id)),
                role=role,
                keys=[state_pb2.MemberKey(key_id=crypto.key_id(k), public_key=k) for k in keys],
            )
        )
    if len({m.member_id for m in members}) != len(members):
        raise invalid("bad_genesis", "member ids must be unique")

    validators = []
    validator_entries = document.get("validators") or []
    for index, entry in enumerate(validator_entries):
        where = f"validators[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("validator_id"), str):
            raise invalid("bad_genesis", f"{where}: validator_id missing")
        validators.append(
            Validator(entry["validator_id"], _public_key(entry.get("public_key"), where))
        )
    if not validators:
        raise invalid("bad_genesis", "at least one validator is needed")
    validator_tls_cas = _validator_tls_cas(validator_entries)
    roots = dict(validator_tls_cas)
    validators = [
        Validator(v.validator_id, v.public_key, roots.get(v.validator_id, b"")) for v in validators
    ]
    validators.sort(key=lambda v: v.validator_id)
    _check_founding_signatures(document, members)
    return Genesis(
        validator_tls_cas=validator_tls_cas,
        personal_data=_personal_data(document.get("personal_data_patterns")),
        thresholds=_thresholds(document.get("governance_thresholds")),
        supervision=_supervision(document.get("supervision")),
        chain_id=chain_id,
        genesis_time_ms=genesis_time_ms,
        members=tuple(members),
        validator_set=ValidatorSet(tuple(validators)),
        genesis_hash=hashlib.sha256(canonical_json(document)).digest(),
    )

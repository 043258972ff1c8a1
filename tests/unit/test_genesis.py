"""The genesis document's founding-ceremony parts (ADR 015): each validator's organisation's TLS
CA root (`validators[i].tls_ca`) and the founding members' signatures (`founding_signatures`).
A document without them parses and hashes exactly as before."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

import pytest

from provledger.node import tls
from provledger.protocol import crypto
from provledger.protocol.errors import Rejected
from provledger.protocol.genesis import (
    canonical_json,
    founding_message,
    parse_genesis,
    sign_founding,
)
from provledger.protocol.limits import TLS_CA_PEM_SIZE_BYTES_MAX

MEMBERS = ("agency-a", "agency-b", "auditor")
# Real CA roots: parse_genesis judges a root with genesis.tls_ca_problem (a self-signed CA).
_CA_A, _CA_A_KEY = tls.create_ca("ceremony-test", organisation="agency-a")
ROOT_A = _CA_A.decode()
ROOT_B = tls.create_ca("ceremony-test", organisation="agency-b")[0].decode()
# A node certificate (CA:false) that agency-a's CA issued: a certificate, not a CA root.
NODE_CERTIFICATE = tls.issue_node_certificate(_CA_A, _CA_A_KEY, "node-a")[0].decode()


def key(name: str, generation: int = 0) -> crypto.SigningKey:
    return crypto.SigningKey.from_seed(hashlib.sha256(f"{name}/{generation}".encode()).digest())


def draft(tls_cas: tuple[str | None, str | None] = (None, None)) -> dict[str, Any]:
    validators = []
    for validator_id, root in zip(("node-a", "node-b"), tls_cas, strict=True):
        entry = {"validator_id": validator_id, "public_key": key(validator_id).public_key.hex()}
        if root is not None:
            entry["tls_ca"] = root
        validators.append(entry)
    return {
        "chain_id": "ceremony-test",
        "genesis_time_ms": 1_700_000_000_000,
        "members": [
            {
                "member_id": member_id,
                "name": member_id.title(),
                "role": "auditor" if member_id == "auditor" else "agency",
                "public_keys": [
                    key(member_id).public_key.hex(),
                    key(member_id, 1).public_key.hex(),
                ],
            }
            for member_id in MEMBERS
        ],
        "validators": validators,
    }


def sealed(document: dict[str, Any], signers: tuple[str, ...] = MEMBERS) -> dict[str, Any]:
    return {
        **document,
        "founding_signatures": [sign_founding(document, m, key(m)) for m in signers],
    }


def refusal(document: dict[str, Any]) -> Rejected:
    with pytest.raises(Rejected) as caught:
        parse_genesis(json.dumps(document).encode())
    return caught.value


def test_a_document_without_the_ceremony_parts_hashes_as_its_canonical_json() -> None:
    document = draft()
    genesis = parse_genesis(json.dumps(document, indent=2).encode())
    assert genesis.genesis_hash == hashlib.sha256(canonical_json(document)).digest()
    assert genesis.validator_tls_cas == ()
    assert genesis.tls_ca("node-a") is None


def test_every_validator_names_its_organisations_tls_ca_or_none_does() -> None:
    genesis = parse_genesis(json.dumps(draft((ROOT_A, ROOT_B))).encode())
    assert genesis.validator_tls_cas == (("node-a", ROOT_A.encode()), ("node-b", ROOT_B.encode()))
    assert genesis.tls_ca("node-b") == ROOT_B.encode()
    assert genesis.tls_ca("node-z") is None
    assert refusal(draft((ROOT_A, None))).code == "bad_validator_tls_ca"


@pytest.mark.parametrize(
    "root",
    [
        "not a certificate",
        ROOT_A + ROOT_B,  # one root per validator
        "-----BEGIN CERTIFICATE-----\nQUFBQQ==\n-----END CERTIFICATE-----\n",  # not DER
        NODE_CERTIFICATE,  # not a CA
        "-----BEGIN PRIVATE KEY-----\nQUFBQQ==\n-----END PRIVATE KEY-----\n",
        7,
        "-----BEGIN CERTIFICATE-----\n"
        + "QUFB\n" * (TLS_CA_PEM_SIZE_BYTES_MAX // 5)
        + "-----END CERTIFICATE-----\n",
    ],
)
def test_a_tls_ca_that_is_not_one_bounded_pem_certificate_is_refused(root: Any) -> None:
    assert refusal(draft((root, ROOT_B))).code == "bad_validator_tls_ca"


def test_a_genesis_signed_by_every_founding_member_parses_and_its_signatures_are_in_its_hash() -> (
    None
):
    document = sealed(draft((ROOT_A, ROOT_B)))
    genesis = parse_genesis(json.dumps(document).encode())
    assert [m.member_id for m in genesis.members] == list(MEMBERS)
    assert genesis.genesis_hash == hashlib.sha256(canonical_json(document)).digest()
    # Signatures are over the canonical draft: the order of keys and spacing do not matter.
    reordered = json.loads(json.dumps(document, sort_keys=True))
    assert founding_message(reordered) == canonical_json(draft((ROOT_A, ROOT_B)))


def test_a_member_may_sign_with_any_key_of_its_record() -> None:
    document = draft()
    entries = [sign_founding(document, m, key(m, 1 if m == "agency-b" else 0)) for m in MEMBERS]
    parse_genesis(json.dumps({**document, "founding_signatures": entries}).encode())


def test_a_missing_founding_signature_is_refused() -> None:
    error = refusal(sealed(draft(), signers=("agency-a", "auditor")))
    assert error.code == "founding_signature_missing"
    assert "agency-b" in error.reason


def test_a_forged_founding_signature_is_refused() -> None:
    document = sealed(draft())
    signature = bytearray.fromhex(document["founding_signatures"][1]["signature"])
    signature[0] ^= 1
    document["founding_signatures"][1]["signature"] = signature.hex()
    error = refusal(document)
    assert error.code == "founding_signature_invalid"
    assert "agency-b" in error.reason


def test_a_document_changed_after_signing_is_refused() -> None:
    document = sealed(draft())
    for change in ("validators", "members", "genesis_time_ms"):
        changed = copy.deepcopy(document)
        if change == "validators":
            changed["validators"][1]["public_key"] = key("intruder").public_key.hex()
        elif change == "members":
            changed["members"][0]["role"] = "regulator"
        else:
            changed["genesis_time_ms"] += 1
        assert refusal(changed).code == "founding_signature_invalid", change


def test_a_signature_made_for_another_purpose_is_refused() -> None:
    document = draft()
    entries = [sign_founding(document, m, key(m)) for m in MEMBERS]
    entries[0]["signature"] = (
        key("agency-a").sign(crypto.DOMAIN_GOVERNANCE, founding_message(document)).hex()
    )
    assert refusal({**document, "founding_signatures": entries}).code == (
        "founding_signature_invalid"
    )


def test_a_signer_outside_the_genesis_or_with_a_key_not_of_its_record_is_refused() -> None:
    document = draft()
    stranger = sealed(document)
    stranger["founding_signatures"].append(sign_founding(document, "stranger", key("stranger")))
    assert refusal(stranger).code == "founding_signer_unknown"
    wrong_key = sealed(document)
    wrong_key["founding_signatures"][0] = sign_founding(document, "agency-a", key("agency-b"))
    assert refusal(wrong_key).code == "founding_signer_unknown"


@pytest.mark.parametrize(
    "entries",
    [
        [],
        "signatures",
        [{"key_id": "00" * 16, "signature": "00" * 64}],
        [{"member_id": "agency-a", "key_id": "zz", "signature": "00" * 64}],
        [{"member_id": "agency-a", "key_id": "00" * 16, "signature": "00" * 63}],
    ],
)
def test_malformed_founding_signatures_are_refused(entries: Any) -> None:
    assert refusal({**draft(), "founding_signatures": entries}).code == "bad_founding_signatures"


def test_a_member_signing_twice_is_refused() -> None:
    document = sealed(draft())
    document["founding_signatures"].append(document["founding_signatures"][0])
    assert refusal(document).code == "bad_founding_signatures"


# --- the rules of supervision (ADR 017) ---------------------------------------------------


def test_the_supervision_policy_is_parsed_and_seeded_into_the_state() -> None:
    from provledger.protocol.blocks import genesis_writes
    from provledger.protocol.supervision import SUPERVISION_RECORD_ID

    document = {**draft(), "supervision": {"appeal_window_ms": 86_400_000, "appeal_panel_size": 2}}
    genesis = parse_genesis(json.dumps(document).encode())
    assert genesis.supervision is not None
    assert (genesis.supervision.appeal_window_ms, genesis.supervision.appeal_panel_size) == (
        86_400_000,
        2,
    )
    seeded = [w for w in genesis_writes(genesis) if w.kind == "supervision"]
    assert [(w.record_id, w.record) for w in seeded] == [
        (SUPERVISION_RECORD_ID, genesis.supervision)
    ]
    # Without it, nothing is seeded: an older genesis keeps its state root.
    plain = parse_genesis(json.dumps(draft()).encode())
    assert plain.supervision is None
    assert not [w for w in genesis_writes(plain) if w.kind == "supervision"]


@pytest.mark.parametrize(
    "supervision",
    [
        [],
        {"appeal_window_ms": 0},
        {"appeal_window_ms": -1},
        {"appeal_window_ms": True},
        {"appeal_window_ms": 400 * 86_400_000},
        {"appeal_panel_size": 0},
        {"appeal_panel_size": 16},
        {"appeal_panel_size": "2"},
        {"appeal_window": 1},
    ],
)
def test_a_bad_supervision_policy_is_refused(supervision: Any) -> None:
    error = refusal({**draft(), "supervision": supervision})
    assert error.code == "bad_genesis"
    assert "supervision" in error.reason

"""The committed event and block vectors in tests/vectors/events/ are current and say what we do.

The files must be exactly what tests/vectors/generate_events.py writes now, so they cannot go
stale. Each file is then checked the way a client in another language would check it, from the
file's own fields (hashing and Ed25519 by hand where it can), and against our verifiers: every
case the file calls valid is accepted, every other case is rejected with the code it records.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from support.memory_state import MemoryState
from vectors import generate_events

from provledger.protocol import blocks, crypto, events, merkle, rules
from provledger.protocol.errors import Rejected
from provledger.protocol.genesis import Genesis, canonical_json, parse_genesis
from provledger.v1 import ledger_pb2

CASE_FILES = sorted(generate_events.OUTPUT_DIR.glob("*.json"))
REGENERATE = "run: python tests/vectors/generate_events.py"


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def files_of_kind(kind: str) -> list[Path]:
    return [path for path in CASE_FILES if load(path)["kind"] == kind]


def unhex(value: str) -> bytes:
    return bytes.fromhex(value)


@pytest.fixture(scope="module")
def genesis() -> Genesis:
    case = load(generate_events.OUTPUT_DIR / "genesis.json")
    return parse_genesis(canonical_json(case["document"]))


def test_committed_files_are_what_the_generator_writes() -> None:
    cases = generate_events.build_cases()
    committed = {path.stem: path.read_text(encoding="utf-8") for path in CASE_FILES}
    assert sorted(committed) == sorted(cases), REGENERATE
    for name, case in cases.items():
        assert committed[name] == generate_events.encode_case(case), f"{name}.json: {REGENERATE}"


def test_every_kind_has_the_cases_it_should() -> None:
    outcomes = {(load(path)["kind"], load(path)["want_error"]) for path in CASE_FILES}
    assert outcomes == {
        ("event_signature", False),
        ("event_signature", True),
        ("genesis", False),
        ("block", False),
        ("certificate", True),
    }
    assert len(files_of_kind("block")) == 3


# --- events --------------------------------------------------------------------------------


def our_verdict(signed: ledger_pb2.SignedEvent, genesis: Genesis) -> str | None:
    try:
        rules.authenticate(
            MemoryState.from_genesis(genesis), events.decode(signed, genesis.chain_id), height=1
        )
    except Rejected as rejection:
        return rejection.code
    return None


@pytest.mark.parametrize("path", files_of_kind("event_signature"), ids=lambda path: path.stem)
def test_event_signature_case(path: Path, genesis: Genesis) -> None:
    case = load(path)
    public_key, body, signature = (unhex(case[f]) for f in ("public_key", "body", "signature"))
    assert case["chain_id"] == genesis.chain_id
    assert unhex(case["domain"]) == crypto.DOMAIN_EVENT == b"provledger/v1/event\x00"
    assert unhex(case["sign_bytes"]) == crypto.DOMAIN_EVENT + body
    assert crypto.verify(public_key, crypto.DOMAIN_EVENT, body, signature) is not case["want_error"]
    signed = ledger_pb2.SignedEvent(body=body, signature=signature)
    assert our_verdict(signed, genesis) == case["error"]
    if case["want_error"]:
        return

    key = crypto.SigningKey.from_seed(unhex(case["seed"]))
    assert key.public_key == public_key
    assert unhex(case["key_id"]) == hashlib.sha256(public_key).digest()[:16] == key.key_id
    assert key.sign(crypto.DOMAIN_EVENT, body) == signature  # Ed25519 is deterministic
    event = json_format.ParseDict(case["event"], ledger_pb2.Event())
    assert ledger_pb2.Event.FromString(body) == event
    assert event.author.key_id == key.key_id
    assert event.SerializeToString(deterministic=True) == body
    event_id = hashlib.sha256(body).digest()
    assert unhex(case["event_id"]) == event_id
    assert unhex(case["log_leaf"]) == event_id + signature
    assert unhex(case["log_leaf_hash"]) == hashlib.sha256(b"\x00" + event_id + signature).digest()
    if "governance" in case:
        check_governance_approvals(case["governance"], event, genesis)


def check_governance_approvals(
    details: dict[str, Any], event: ledger_pb2.Event, genesis: Genesis
) -> None:
    change = unhex(details["change"])
    assert change == event.governance.change
    message = unhex(details["approval_sign_bytes"])
    assert message == b"provledger/v1/governance\x00" + genesis.chain_id.encode() + b"\x00" + change
    assert message == crypto.DOMAIN_GOVERNANCE + rules.governance_sign_bytes(
        genesis.chain_id, change
    )
    assert len(details["approvals"]) == len(event.governance.approvals)
    for approval in details["approvals"]:
        member = genesis.member(approval["member_id"])
        assert member is not None and member.keys[0].public_key.hex() == approval["public_key"]
        domain_length = len(crypto.DOMAIN_GOVERNANCE)
        assert crypto.verify(
            unhex(approval["public_key"]),
            message[:domain_length],
            message[domain_length:],
            unhex(approval["signature"]),
        )


# --- genesis and blocks --------------------------------------------------------------------


def test_genesis_case(genesis: Genesis) -> None:
    case = load(generate_events.OUTPUT_DIR / "genesis.json")
    canonical = case["canonical_json"].encode()
    assert canonical == canonical_json(case["document"])
    assert unhex(case["genesis_hash"]) == hashlib.sha256(canonical).digest() == genesis.genesis_hash
    assert unhex(case["validators_hash"]) == genesis.validator_set.hash()
    assert case["quorum_size"] == genesis.validator_set.quorum_size == 3
    keys_in_document = {
        m["member_id"]: m["public_keys"][0] for m in case["document"]["members"]
    } | {v["validator_id"]: v["public_key"] for v in case["document"]["validators"]}
    assert {
        name: crypto.SigningKey.from_seed(unhex(seed)).public_key.hex()
        for name, seed in case["key_seeds"].items()
    } == keys_in_document
    for name, seed in case["key_seeds"].items():
        assert unhex(seed) == hashlib.sha256(name.encode()).digest()
    assert unhex(case["state_root"]) == state_root(genesis.genesis_hash, case["state_writes"])
    assert unhex(case["state_root"]) == blocks.genesis_state_root(genesis)


def state_root(previous: bytes, writes: list[str]) -> bytes:
    """The state root as a client computes it from the README."""
    return hashlib.sha256(
        b"provledger/v1/state\x00" + previous + b"".join(unhex(w) for w in writes)
    ).digest()


@pytest.mark.parametrize("path", files_of_kind("block"), ids=lambda path: path.stem)
def test_block_case(path: Path, genesis: Genesis) -> None:
    case = load(path)
    header_bytes = unhex(case["header_bytes"])
    header = blocks.decode_header(header_bytes)
    assert header == json_format.ParseDict(case["header"], ledger_pb2.BlockHeader())
    assert header.height == case["height"]
    block_id = hashlib.sha256(b"provledger/v1/header\x00" + header_bytes).digest()
    assert unhex(case["block_id"]) == block_id == blocks.block_id(header_bytes)
    assert unhex(case["previous_block_id"]) == header.previous_block_id

    leaf_hashes = []
    for entry in case["events"]:
        body, signature = unhex(entry["body"]), unhex(entry["signature"])
        event_id = hashlib.sha256(body).digest()
        assert unhex(entry["event_id"]) == event_id
        leaf_hash = hashlib.sha256(b"\x00" + event_id + signature).digest()
        assert unhex(entry["log_leaf_hash"]) == leaf_hash
        leaf_hashes.append(leaf_hash)
        signed = ledger_pb2.SignedEvent(body=body, signature=signature)
        assert our_verdict(signed, genesis) is None
    assert header.event_count == len(case["events"])
    assert unhex(case["events_root"]) == header.events_root
    assert header.events_root == merkle.root_from_leaf_hashes(leaf_hashes)
    assert (case["log_size"], unhex(case["log_root"])) == (header.log_size, header.log_root)
    assert unhex(case["state_root"]) == header.state_root
    assert header.state_root == state_root(unhex(case["previous_state_root"]), case["state_writes"])
    assert header.validators_hash == genesis.validator_set.hash()

    precommit = case["precommit"]
    sign_bytes = unhex(precommit["sign_bytes"])
    assert sign_bytes == (
        b"provledger/v1/precommit\x00"
        + genesis.chain_id.encode()
        + b"\x00"
        + header.height.to_bytes(8, "big")
        + precommit["round"].to_bytes(4, "big")
        + block_id
    )
    domain_length = len(crypto.DOMAIN_PRECOMMIT)
    for entry in precommit["signatures"]:
        assert genesis.validator_set.public_key(entry["validator_id"]).hex() == entry["public_key"]
        assert crypto.verify(
            unhex(entry["public_key"]),
            sign_bytes[:domain_length],
            sign_bytes[domain_length:],
            unhex(entry["signature"]),
        )

    certificate = ledger_pb2.CommitCertificate.FromString(unhex(case["certificate"]["bytes"]))
    assert certificate == json_format.ParseDict(
        case["certificate"]["message"], ledger_pb2.CommitCertificate()
    )
    assert [(s.validator_id, s.signature.hex()) for s in certificate.signatures] == [
        (s["validator_id"], s["signature"]) for s in precommit["signatures"]
    ]
    checkpoint = ledger_pb2.Checkpoint.FromString(unhex(case["checkpoint"]))
    assert checkpoint == ledger_pb2.Checkpoint(header=header_bytes, certificate=certificate)
    assert blocks.verify_checkpoint(checkpoint, genesis) == header

    block = ledger_pb2.Block.FromString(unhex(case["block"]))
    assert block.header == header_bytes
    assert [(e.body.hex(), e.signature.hex()) for e in block.events] == [
        (e["body"], e["signature"]) for e in case["events"]
    ]
    last_commit = block.last_commit if block.HasField("last_commit") else None
    assert unhex(case["last_commit_hash"]) == header.last_commit_hash
    assert header.last_commit_hash == blocks.certificate_hash(last_commit)


def test_blocks_form_a_chain(genesis: Genesis) -> None:
    cases = sorted((load(path) for path in files_of_kind("block")), key=lambda c: c["height"])
    previous_id, previous_state, previous_time = genesis.genesis_hash, None, genesis.genesis_time_ms
    previous_certificate = None
    all_leaf_hashes: list[bytes] = []
    for case in cases:
        header = blocks.decode_header(unhex(case["header_bytes"]))
        assert header.previous_block_id == previous_id
        assert header.time_ms > previous_time
        if previous_state is not None:
            assert unhex(case["previous_state_root"]) == previous_state
        else:
            assert unhex(case["previous_state_root"]) == blocks.genesis_state_root(genesis)
        block = ledger_pb2.Block.FromString(unhex(case["block"]))
        if previous_certificate is None:
            assert not block.HasField("last_commit")
        else:
            assert block.last_commit == previous_certificate
        all_leaf_hashes += [unhex(e["log_leaf_hash"]) for e in case["events"]]
        assert header.log_size == len(all_leaf_hashes)
        assert header.log_root == merkle.root_from_leaf_hashes(all_leaf_hashes)
        previous_id, previous_state, previous_time = (
            unhex(case["block_id"]),
            header.state_root,
            header.time_ms,
        )
        previous_certificate = ledger_pb2.CommitCertificate.FromString(
            unhex(case["certificate"]["bytes"])
        )


@pytest.mark.parametrize("path", files_of_kind("certificate"), ids=lambda path: path.stem)
def test_certificate_case(path: Path, genesis: Genesis) -> None:
    case = load(path)
    header_bytes = unhex(case["header_bytes"])
    certificate = ledger_pb2.CommitCertificate.FromString(unhex(case["certificate"]["bytes"]))
    assert certificate == json_format.ParseDict(
        case["certificate"]["message"], ledger_pb2.CommitCertificate()
    )
    checkpoint = ledger_pb2.Checkpoint(header=header_bytes, certificate=certificate)
    assert case["want_error"]
    with pytest.raises(Rejected) as raised:
        blocks.verify_checkpoint(checkpoint, genesis)
    assert raised.value.code == case["error"]

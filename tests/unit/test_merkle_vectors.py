"""The committed Merkle vectors in tests/vectors/merkle/ are current and say what we do.

The files must be exactly what tests/vectors/generate_merkle.py writes now, so they cannot go
stale; and our verifiers must accept every case the files call valid and reject every other
case with the very error text the file records.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from vectors import generate_merkle

from provledger.protocol import merkle

CASE_FILES = sorted(generate_merkle.OUTPUT_DIR.glob("*.json"))


def test_committed_files_are_what_the_generator_writes() -> None:
    cases = generate_merkle.build_cases()
    committed = {path.stem: path.read_text(encoding="utf-8") for path in CASE_FILES}
    assert sorted(committed) == sorted(cases), "run: python tests/vectors/generate_merkle.py"
    for name, case in cases.items():
        assert committed[name] == generate_merkle.encode_case(case), (
            f"{name}.json is stale; run: python tests/vectors/generate_merkle.py"
        )


def test_every_kind_has_valid_and_invalid_cases() -> None:
    outcomes = set()
    for path in CASE_FILES:
        case = json.loads(path.read_text(encoding="utf-8"))
        outcomes.add((case["kind"], case.get("want_error", False)))
    assert outcomes == {
        ("tree", False),
        ("inclusion", False),
        ("inclusion", True),
        ("consistency", False),
        ("consistency", True),
    }


def hashes(values: list[str]) -> list[bytes]:
    return [bytes.fromhex(value) for value in values]


def verify(case: dict[str, Any]) -> None:
    if case["kind"] == "inclusion":
        merkle.verify_inclusion(
            bytes.fromhex(case["leaf_hash"]),
            case["index"],
            case["tree_size"],
            hashes(case["proof"]),
            bytes.fromhex(case["root"]),
        )
    else:
        merkle.verify_consistency(
            case["size1"],
            case["size2"],
            hashes(case["proof"]),
            bytes.fromhex(case["root1"]),
            bytes.fromhex(case["root2"]),
        )


@pytest.mark.parametrize("path", CASE_FILES, ids=lambda path: path.stem)
def test_case_outcome_is_ours(path: Path) -> None:
    case = json.loads(path.read_text(encoding="utf-8"))
    if case["kind"] == "tree":
        leaf_hashes = [merkle.hash_leaf(data) for data in hashes(case["leaves"])]
        assert leaf_hashes == hashes(case["leaf_hashes"])
        assert merkle.root_from_leaf_hashes(leaf_hashes).hex() == case["root"]
    elif case["want_error"]:
        with pytest.raises(merkle.ProofError) as raised:
            verify(case)
        assert str(raised.value) == case["error"]
    else:
        assert case["error"] is None
        verify(case)

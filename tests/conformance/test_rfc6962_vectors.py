"""Conformance with transparency-dev's RFC 6962 proof vectors, read in place from ../shared.

Every JSON case is its own test: a case with wantErr false must verify, one with wantErr true
must raise ProofError. The happy paths are proofs over the RFC 6962 reference tree; for those
the test also rebuilds that tree and checks that our proof builders produce the very same
hashes, so our proofs are the ones any RFC 6962 implementation produces and checks.

CI always has the folder; anywhere else its absence skips these tests with a message naming it.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest

from provledger.protocol import merkle

VECTORS_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "vectors" / "rfc6962"

# The leaves of the RFC 6962 reference tree (certificate-transparency test data).
REFERENCE_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    bytes(range(0x50, 0x58)),
    bytes(range(0x60, 0x70)),
]


def reference_store() -> dict[tuple[int, int], bytes]:
    frontier = merkle.CompactRange()
    return {
        (level, index): node_hash
        for data in REFERENCE_LEAVES
        for level, index, node_hash in frontier.append(merkle.hash_leaf(data))
    }


REFERENCE_NODES = reference_store()


def reference_node(level: int, index: int) -> bytes:
    return REFERENCE_NODES[(level, index)]


def reference_root(size: int) -> bytes | None:
    """The root of the reference tree of `size` leaves, or None if it has no such size."""
    return merkle.root_at(size, reference_node) if 0 < size <= len(REFERENCE_LEAVES) else None


def case_files(kind: str) -> list[Path]:
    return sorted((VECTORS_DIR / kind).rglob("*.json")) if VECTORS_DIR.is_dir() else []


def case_id(path: Path) -> str:
    return path.relative_to(VECTORS_DIR).with_suffix("").as_posix()


def load_case(path: Path) -> dict[str, Any]:
    case: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return case


def decode(value: str) -> bytes:
    return base64.b64decode(value, validate=True)


def decode_proof(proof: list[str] | None) -> list[bytes]:
    """The vectors write an empty proof as null or []."""
    return [decode(proof_hash) for proof_hash in proof or []]


def test_vectors_folder_is_present() -> None:
    if not VECTORS_DIR.is_dir():
        message = f"RFC 6962 vectors folder {VECTORS_DIR} is missing"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI always provides it")
        pytest.skip(message)
    assert case_files("inclusion"), f"no inclusion cases under {VECTORS_DIR}"
    assert case_files("consistency"), f"no consistency cases under {VECTORS_DIR}"


@pytest.mark.parametrize("path", case_files("inclusion"), ids=case_id)
def test_inclusion_vector(path: Path) -> None:
    case = load_case(path)
    leaf_hash, root = decode(case["leafHash"]), decode(case["root"])
    index, size, proof = case["leafIdx"], case["treeSize"], decode_proof(case["proof"])
    if case["wantErr"]:
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(leaf_hash, index, size, proof, root)
        return
    merkle.verify_inclusion(leaf_hash, index, size, proof, root)
    if root == reference_root(size):
        assert merkle.inclusion_proof(index, size, reference_node) == proof


@pytest.mark.parametrize("path", case_files("consistency"), ids=case_id)
def test_consistency_vector(path: Path) -> None:
    case = load_case(path)
    root1, root2 = decode(case["root1"]), decode(case["root2"])
    size1, size2, proof = case["size1"], case["size2"], decode_proof(case["proof"])
    if case["wantErr"]:
        with pytest.raises(merkle.ProofError):
            merkle.verify_consistency(size1, size2, proof, root1, root2)
        return
    merkle.verify_consistency(size1, size2, proof, root1, root2)
    if root1 == reference_root(size1) and root2 == reference_root(size2):
        assert merkle.consistency_proof(size1, size2, reference_node) == proof

"""Generate the golden Merkle vectors in tests/vectors/merkle/, for clients in other languages.

Run from the repository root: python tests/vectors/generate_merkle.py

The output is deterministic: leaf i holds the ASCII bytes "leaf-<i>". For a handful of trees it
writes the roots, inclusion and consistency proofs that must verify, and named mutations of
each proof that must not, with the error message our verifier gives (see README.md beside this
file). tests/unit/test_merkle_vectors.py fails when the committed files differ from what this
generator produces, so they cannot go stale.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from provledger.protocol import merkle

OUTPUT_DIR = Path(__file__).resolve().parent / "merkle"

TREE_SIZES = [0, 1, 2, 3, 5, 8]
# (index, tree size): each end of small trees, a leaf on a right edge, a leaf deep on the left.
INCLUSION_CLAIMS = [(0, 1), (1, 2), (2, 3), (5, 8), (6, 7), (13, 21), (0, 64), (63, 64)]
# (size1, size2): equal sizes, a power-of-two old tree, old trees cut across perfect subtrees.
CONSISTENCY_CLAIMS = [(1, 1), (1, 8), (4, 8), (6, 8), (3, 7), (7, 13), (21, 64)]
LEAVES_COUNT = 64


def leaf_data(index: int) -> bytes:
    return b"leaf-%d" % index


@dataclasses.dataclass(frozen=True)
class InclusionClaim:
    leaf_hash: bytes
    index: int
    tree_size: int
    proof: list[bytes]
    root: bytes

    def verify(self) -> None:
        merkle.verify_inclusion(self.leaf_hash, self.index, self.tree_size, self.proof, self.root)

    def encode(self) -> dict[str, Any]:
        return {
            "kind": "inclusion",
            "leaf_hash": self.leaf_hash.hex(),
            "index": self.index,
            "tree_size": self.tree_size,
            "proof": [proof_hash.hex() for proof_hash in self.proof],
            "root": self.root.hex(),
        }


@dataclasses.dataclass(frozen=True)
class ConsistencyClaim:
    size1: int
    size2: int
    proof: list[bytes]
    root1: bytes
    root2: bytes

    def verify(self) -> None:
        merkle.verify_consistency(self.size1, self.size2, self.proof, self.root1, self.root2)

    def encode(self) -> dict[str, Any]:
        return {
            "kind": "consistency",
            "size1": self.size1,
            "size2": self.size2,
            "proof": [proof_hash.hex() for proof_hash in self.proof],
            "root1": self.root1.hex(),
            "root2": self.root2.hex(),
        }


Claim = InclusionClaim | ConsistencyClaim


def flip_lowest_bit(value: bytes) -> bytes:
    return bytes([value[0] ^ 1]) + value[1:]


def proof_mutations(claim: Claim) -> dict[str, Claim]:
    """The proof edits shared by both kinds: a flipped bit, a trailing or a missing hash."""
    proof = claim.proof
    mutations: dict[str, Claim] = {
        "trailing-hash": dataclasses.replace(
            claim, proof=[*proof, proof[-1] if proof else bytes(32)]
        )
    }
    if proof:
        mutations["missing-hash"] = dataclasses.replace(claim, proof=proof[:-1])
    for position in sorted({0, len(proof) - 1} if proof else set()):
        flipped = [*proof[:position], flip_lowest_bit(proof[position]), *proof[position + 1 :]]
        mutations[f"bit-flipped-in-proof-hash-{position}"] = dataclasses.replace(
            claim, proof=flipped
        )
    return mutations


def inclusion_mutations(claim: InclusionClaim) -> dict[str, Claim]:
    mutations: dict[str, Claim] = {
        "index-plus-1": dataclasses.replace(claim, index=claim.index + 1),
        **proof_mutations(claim),
        "wrong-root": dataclasses.replace(claim, root=flip_lowest_bit(claim.root)),
        "wrong-leaf": dataclasses.replace(claim, leaf_hash=flip_lowest_bit(claim.leaf_hash)),
    }
    if claim.index > 0:
        mutations["index-minus-1"] = dataclasses.replace(claim, index=claim.index - 1)
    return mutations


def consistency_mutations(claim: ConsistencyClaim) -> dict[str, Claim]:
    return {
        "size1-plus-1": dataclasses.replace(claim, size1=claim.size1 + 1),
        "size1-minus-1": dataclasses.replace(claim, size1=claim.size1 - 1),
        **proof_mutations(claim),
        "wrong-root1": dataclasses.replace(claim, root1=flip_lowest_bit(claim.root1)),
        "wrong-root2": dataclasses.replace(claim, root2=flip_lowest_bit(claim.root2)),
    }


def verification_error(claim: Claim) -> str | None:
    """The message our verifier rejects `claim` with, or None if it verifies."""
    try:
        claim.verify()
    except merkle.ProofError as error:
        return str(error)
    return None


def claim_cases(
    prefix: str, description: str, claim: Claim, mutations: Callable[[Any], dict[str, Claim]]
) -> dict[str, dict[str, Any]]:
    """The happy path of a true claim and every named mutation of it, each with its outcome."""
    happy_error = verification_error(claim)
    if happy_error is not None:
        raise RuntimeError(f"{prefix}: the true claim does not verify: {happy_error}")
    cases = {
        f"{prefix}-happy-path": {
            "description": description,
            **claim.encode(),
            "want_error": False,
            "error": None,
        }
    }
    for name, mutated in mutations(claim).items():
        error = verification_error(mutated)
        if error is None:
            raise RuntimeError(f"{prefix}: mutation {name} still verifies")
        cases[f"{prefix}-{name}"] = {
            "description": f"{description}, mutated: {name.replace('-', ' ')}",
            **mutated.encode(),
            "want_error": True,
            "error": error,
        }
    return cases


def build_cases() -> dict[str, dict[str, Any]]:
    """Every vector, keyed by its file name without ".json"."""
    leaves = [leaf_data(index) for index in range(LEAVES_COUNT)]
    nodes: dict[tuple[int, int], bytes] = {}
    frontier = merkle.CompactRange()
    for data in leaves:
        for level, index, node_hash in frontier.append(merkle.hash_leaf(data)):
            nodes[(level, index)] = node_hash

    def get_node(level: int, index: int) -> bytes:
        return nodes[(level, index)]

    cases: dict[str, dict[str, Any]] = {}
    for size in TREE_SIZES:
        cases[f"tree-size{size}"] = {
            "description": f"the tree of {size} leaves",
            "kind": "tree",
            "leaves": [data.hex() for data in leaves[:size]],
            "leaf_hashes": [merkle.hash_leaf(data).hex() for data in leaves[:size]],
            "root": merkle.root_at(size, get_node).hex(),
        }
    for index, size in INCLUSION_CLAIMS:
        inclusion = InclusionClaim(
            leaf_hash=merkle.hash_leaf(leaves[index]),
            index=index,
            tree_size=size,
            proof=merkle.inclusion_proof(index, size, get_node),
            root=merkle.root_at(size, get_node),
        )
        description = f"inclusion of leaf {index} in the tree of {size} leaves"
        cases |= claim_cases(
            f"inclusion-size{size}-index{index}", description, inclusion, inclusion_mutations
        )
    for size1, size2 in CONSISTENCY_CLAIMS:
        consistency = ConsistencyClaim(
            size1=size1,
            size2=size2,
            proof=merkle.consistency_proof(size1, size2, get_node),
            root1=merkle.root_at(size1, get_node),
            root2=merkle.root_at(size2, get_node),
        )
        description = f"consistency of the tree of {size1} leaves with the tree of {size2}"
        cases |= claim_cases(
            f"consistency-size{size1}-to-{size2}", description, consistency, consistency_mutations
        )
    return cases


def encode_case(case: dict[str, Any]) -> str:
    """The exact text of a vector file."""
    return json.dumps(case, indent=2) + "\n"


def main() -> None:
    """Write every vector to OUTPUT_DIR and delete files no longer generated."""
    cases = build_cases()
    OUTPUT_DIR.mkdir(exist_ok=True)
    for stale in OUTPUT_DIR.glob("*.json"):
        if stale.stem not in cases:
            stale.unlink()
    for name, case in cases.items():
        (OUTPUT_DIR / f"{name}.json").write_text(encode_case(case), encoding="utf-8")
    print(f"wrote {len(cases)} Merkle vectors to {OUTPUT_DIR}")


if __name__ == "__main__":
    main()

"""Property tests for provledger.protocol.merkle.

1. Valid proofs for random sizes and indices verify, and every mutation of one is rejected
   with ProofError: a bit flipped in any hash, a hash dropped, added or swapped with a distinct
   neighbour, the index or a size moved by one, a wrong root or leaf. Moving a size by one is
   the single exception the RFC allows: when the new size gives the proof the same shape (the
   same sequence of left and right siblings), the same hashes verify against the same root. A
   naive RFC 6962 model computes those shapes, and the test demands acceptance exactly then.
2. A state machine appends leaves, restarts from the node store, and checks roots, inclusion
   and consistency with every root it published against a naive model.
"""

from __future__ import annotations

import dataclasses
import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
)

from provledger.protocol import merkle

TREE_LEAVES = 1100
PROPERTY_SETTINGS = settings(max_examples=150, derandomize=True, deadline=None)


# --- Naive RFC 6962 model -------------------------------------------------------------------


def naive_split(n: int) -> int:
    """The largest power of two smaller than n, found by counting up."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def naive_mth(leaves: list[bytes]) -> bytes:
    """MTH(D[n]) of RFC 6962 §2.1 over leaf data."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = naive_split(len(leaves))
    return hashlib.sha256(b"\x01" + naive_mth(leaves[:k]) + naive_mth(leaves[k:])).digest()


def naive_path(m: int, leaves: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of RFC 6962 §2.1.1."""
    if len(leaves) == 1:
        return []
    k = naive_split(len(leaves))
    if m < k:
        return [*naive_path(m, leaves[:k]), naive_mth(leaves[k:])]
    return [*naive_path(m - k, leaves[k:]), naive_mth(leaves[:k])]


def naive_subproof(m: int, leaves: list[bytes], b: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b) of RFC 6962 §2.1.2."""
    if m == len(leaves):
        return [] if b else [naive_mth(leaves)]
    k = naive_split(len(leaves))
    if m <= k:
        return [*naive_subproof(m, leaves[:k], b), naive_mth(leaves[k:])]
    return [*naive_subproof(m - k, leaves[k:], False), naive_mth(leaves[:k])]


def path_sides(m: int, n: int) -> tuple[str, ...]:
    """The side of each sibling in PATH(m, D[n]), leaf first."""
    if n == 1:
        return ()
    k = naive_split(n)
    if m < k:
        return (*path_sides(m, k), "right")
    return (*path_sides(m - k, n - k), "left")


def path_shape(m: int, n: int) -> tuple[str, ...] | None:
    """The shape of PATH(m, D[n]); None if leaf m is not in the tree."""
    return path_sides(m, n) if 0 <= m < n else None


def subproof_shape(m: int, n: int, b: bool) -> tuple[str, ...]:
    """What each hash of SUBPROOF(m, D[n], b) is: the old tree's last subtree, or a sibling."""
    if m == n:
        return () if b else ("old subtree",)
    k = naive_split(n)
    if m <= k:
        return (*subproof_shape(m, k, b), "right")
    return (*subproof_shape(m - k, n - k, False), "left")


def proof_shape(m: int, n: int) -> tuple[str, ...] | None:
    """The shape of PROOF(m, D[n]); None if the sizes admit no proof."""
    if not 0 < m <= n:
        return None
    return subproof_shape(m, n, True)


# --- Claims ---------------------------------------------------------------------------------


def store_nodes(leaves: list[bytes]) -> dict[tuple[int, int], bytes]:
    """Every perfect node of the tree of `leaves`, as CompactRange.append reports them."""
    frontier = merkle.CompactRange()
    return {
        (level, index): node_hash
        for data in leaves
        for level, index, node_hash in frontier.append(merkle.hash_leaf(data))
    }


LEAVES = [b"leaf-%d" % index for index in range(TREE_LEAVES)]
NODES = store_nodes(LEAVES)


def get_node(level: int, index: int) -> bytes:
    return NODES[(level, index)]


@dataclasses.dataclass(frozen=True)
class InclusionClaim:
    leaf_hash: bytes
    index: int
    size: int
    proof: tuple[bytes, ...]
    root: bytes

    def verify(self) -> None:
        merkle.verify_inclusion(self.leaf_hash, self.index, self.size, self.proof, self.root)


@dataclasses.dataclass(frozen=True)
class ConsistencyClaim:
    size1: int
    size2: int
    proof: tuple[bytes, ...]
    root1: bytes
    root2: bytes

    def verify(self) -> None:
        merkle.verify_consistency(self.size1, self.size2, self.proof, self.root1, self.root2)


@st.composite
def inclusion_claims(draw: st.DrawFn) -> InclusionClaim:
    size = draw(st.integers(1, TREE_LEAVES))
    index = draw(st.integers(0, size - 1))
    return InclusionClaim(
        leaf_hash=merkle.hash_leaf(LEAVES[index]),
        index=index,
        size=size,
        proof=tuple(merkle.inclusion_proof(index, size, get_node)),
        root=merkle.root_at(size, get_node),
    )


@st.composite
def consistency_claims(draw: st.DrawFn) -> ConsistencyClaim:
    size2 = draw(st.integers(1, TREE_LEAVES - 1))
    size1 = draw(st.integers(1, size2))
    return ConsistencyClaim(
        size1=size1,
        size2=size2,
        proof=tuple(merkle.consistency_proof(size1, size2, get_node)),
        root1=merkle.root_at(size1, get_node),
        root2=merkle.root_at(size2, get_node),
    )


def rejects(claim: InclusionClaim | ConsistencyClaim) -> bool:
    try:
        claim.verify()
    except merkle.ProofError:
        return True
    return False


def flip_bit(value: bytes, data: st.DataObject) -> bytes:
    bit = data.draw(st.integers(0, 8 * len(value) - 1), label="bit")
    flipped = bytearray(value)
    flipped[bit // 8] ^= 1 << (bit % 8)
    return bytes(flipped)


def flip_bit_in_proof(proof: tuple[bytes, ...], data: st.DataObject) -> tuple[bytes, ...]:
    position = data.draw(st.integers(0, len(proof) - 1), label="position")
    return (*proof[:position], flip_bit(proof[position], data), *proof[position + 1 :])


def drop_hash(proof: tuple[bytes, ...], data: st.DataObject) -> tuple[bytes, ...]:
    position = data.draw(st.integers(0, len(proof) - 1), label="position")
    return proof[:position] + proof[position + 1 :]


def add_hash(proof: tuple[bytes, ...], data: st.DataObject) -> tuple[bytes, ...]:
    position = data.draw(st.integers(0, len(proof)), label="position")
    extras = st.binary(max_size=40)
    if proof:
        extras |= st.sampled_from(proof)
    extra = data.draw(extras, label="extra hash")
    return (*proof[:position], extra, *proof[position:])


def swap_adjacent_distinct(proof: tuple[bytes, ...], data: st.DataObject) -> tuple[bytes, ...]:
    pairs = [i for i in range(len(proof) - 1) if proof[i] != proof[i + 1]]
    position = data.draw(st.sampled_from(pairs), label="position")
    swapped = list(proof)
    swapped[position], swapped[position + 1] = swapped[position + 1], swapped[position]
    return tuple(swapped)


def other_leaf_hash(claim_leaf: bytes, data: st.DataObject) -> bytes:
    other = data.draw(st.sampled_from(LEAVES).map(merkle.hash_leaf), label="other leaf")
    return other if other != claim_leaf else flip_bit(claim_leaf, data)


# --- Inclusion ------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(claim=inclusion_claims())
def test_inclusion_proofs_verify(claim: InclusionClaim) -> None:
    claim.verify()
    assert list(claim.proof) == naive_path(claim.index, LEAVES[: claim.size])


@PROPERTY_SETTINGS
@given(claim=inclusion_claims(), data=st.data())
def test_inclusion_rejects_a_flipped_bit_in_any_hash(
    claim: InclusionClaim, data: st.DataObject
) -> None:
    targets = ["leaf hash", "root"] + (["proof"] if claim.proof else [])
    target = data.draw(st.sampled_from(targets), label="target")
    if target == "leaf hash":
        mutated = dataclasses.replace(claim, leaf_hash=flip_bit(claim.leaf_hash, data))
    elif target == "root":
        mutated = dataclasses.replace(claim, root=flip_bit(claim.root, data))
    else:
        mutated = dataclasses.replace(claim, proof=flip_bit_in_proof(claim.proof, data))
    assert rejects(mutated)


@PROPERTY_SETTINGS
@given(claim=inclusion_claims(), data=st.data())
def test_inclusion_rejects_an_edited_proof(claim: InclusionClaim, data: st.DataObject) -> None:
    edits = [add_hash]
    if claim.proof:
        edits.append(drop_hash)
    if any(a != b for a, b in zip(claim.proof, claim.proof[1:], strict=False)):
        edits.append(swap_adjacent_distinct)
    edit = data.draw(st.sampled_from(edits), label="edit")
    assert rejects(dataclasses.replace(claim, proof=edit(claim.proof, data)))


@PROPERTY_SETTINGS
@given(claim=inclusion_claims(), step=st.sampled_from([-1, 1]))
def test_inclusion_rejects_an_index_off_by_one(claim: InclusionClaim, step: int) -> None:
    assert rejects(dataclasses.replace(claim, index=claim.index + step))


@PROPERTY_SETTINGS
@given(claim=inclusion_claims(), step=st.sampled_from([-1, 1]))
def test_inclusion_accepts_a_size_off_by_one_only_with_the_same_proof_shape(
    claim: InclusionClaim, step: int
) -> None:
    size = claim.size + step
    same_shape = path_shape(claim.index, size) == path_shape(claim.index, claim.size)
    assert rejects(dataclasses.replace(claim, size=size)) is not same_shape


@PROPERTY_SETTINGS
@given(claim=inclusion_claims(), data=st.data())
def test_inclusion_rejects_a_wrong_root_or_leaf(claim: InclusionClaim, data: st.DataObject) -> None:
    other_size = data.draw(st.integers(0, TREE_LEAVES).filter(lambda n: n != claim.size))
    assert rejects(dataclasses.replace(claim, root=merkle.root_at(other_size, get_node)))
    assert rejects(dataclasses.replace(claim, leaf_hash=other_leaf_hash(claim.leaf_hash, data)))


# --- Consistency ----------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(claim=consistency_claims())
def test_consistency_proofs_verify(claim: ConsistencyClaim) -> None:
    claim.verify()
    expected = naive_subproof(claim.size1, LEAVES[: claim.size2], True)
    assert list(claim.proof) == expected


@PROPERTY_SETTINGS
@given(claim=consistency_claims(), data=st.data())
def test_consistency_rejects_a_flipped_bit_in_any_hash(
    claim: ConsistencyClaim, data: st.DataObject
) -> None:
    targets = ["root1", "root2"] + (["proof"] if claim.proof else [])
    target = data.draw(st.sampled_from(targets), label="target")
    if target == "root1":
        mutated = dataclasses.replace(claim, root1=flip_bit(claim.root1, data))
    elif target == "root2":
        mutated = dataclasses.replace(claim, root2=flip_bit(claim.root2, data))
    else:
        mutated = dataclasses.replace(claim, proof=flip_bit_in_proof(claim.proof, data))
    assert rejects(mutated)


@PROPERTY_SETTINGS
@given(claim=consistency_claims(), data=st.data())
def test_consistency_rejects_an_edited_proof(claim: ConsistencyClaim, data: st.DataObject) -> None:
    edits = [add_hash]
    if claim.proof:
        edits.append(drop_hash)
    if any(a != b for a, b in zip(claim.proof, claim.proof[1:], strict=False)):
        edits.append(swap_adjacent_distinct)
    edit = data.draw(st.sampled_from(edits), label="edit")
    assert rejects(dataclasses.replace(claim, proof=edit(claim.proof, data)))


@PROPERTY_SETTINGS
@given(
    claim=consistency_claims(),
    which=st.sampled_from(["size1", "size2"]),
    step=st.sampled_from([-1, 1]),
)
def test_consistency_accepts_a_size_off_by_one_only_with_the_same_proof_shape(
    claim: ConsistencyClaim, which: str, step: int
) -> None:
    mutated = dataclasses.replace(claim, **{which: getattr(claim, which) + step})
    same_shape = proof_shape(mutated.size1, mutated.size2) == proof_shape(claim.size1, claim.size2)
    assert rejects(mutated) is not same_shape


@PROPERTY_SETTINGS
@given(claim=consistency_claims(), data=st.data())
def test_consistency_rejects_wrong_or_swapped_roots(
    claim: ConsistencyClaim, data: st.DataObject
) -> None:
    other_size = data.draw(st.integers(0, TREE_LEAVES).filter(lambda n: n != claim.size1))
    assert rejects(dataclasses.replace(claim, root1=merkle.root_at(other_size, get_node)))
    other_size = data.draw(st.integers(0, TREE_LEAVES).filter(lambda n: n != claim.size2))
    assert rejects(dataclasses.replace(claim, root2=merkle.root_at(other_size, get_node)))
    if claim.root1 != claim.root2:
        assert rejects(dataclasses.replace(claim, root1=claim.root2, root2=claim.root1))


# --- The log as a state machine -------------------------------------------------------------


class MerkleLog(RuleBasedStateMachine):
    """A log that appends, publishes a root at every size and may restart from its store."""

    def __init__(self) -> None:
        super().__init__()
        self.leaves: list[bytes] = []
        self.store: dict[tuple[int, int], bytes] = {}
        self.frontier = merkle.CompactRange()
        self.published_roots = [merkle.EMPTY_ROOT]

    def get_node(self, level: int, index: int) -> bytes:
        assert (index + 1) << level <= len(self.leaves), "read past the tree"
        return self.store[(level, index)]

    def append(self, data: bytes) -> None:
        for level, index, node_hash in self.frontier.append(merkle.hash_leaf(data)):
            assert (level, index) not in self.store, "a perfect node changed"
            self.store[(level, index)] = node_hash
        self.leaves.append(data)
        self.published_roots.append(self.frontier.root())

    @rule(data=st.binary(max_size=8))
    def append_one(self, data: bytes) -> None:
        self.append(data)

    @rule(count=st.integers(1, 40))
    def append_batch(self, count: int) -> None:
        for _ in range(count):
            self.append(b"batch-%d" % len(self.leaves))

    @rule()
    def restart_from_store(self) -> None:
        self.frontier = merkle.CompactRange.from_nodes(len(self.leaves), self.get_node)

    @precondition(lambda self: self.leaves)
    @rule(data=st.data())
    def prove_inclusion(self, data: st.DataObject) -> None:
        size = len(self.leaves)
        index = data.draw(st.integers(0, size - 1), label="index")
        proof = merkle.inclusion_proof(index, size, self.get_node)
        assert proof == naive_path(index, self.leaves)
        leaf_hash = merkle.hash_leaf(self.leaves[index])
        merkle.verify_inclusion(leaf_hash, index, size, proof, self.published_roots[size])

    @precondition(lambda self: self.leaves)
    @rule(data=st.data())
    def prove_consistency_with_a_published_root(self, data: st.DataObject) -> None:
        size2 = len(self.leaves)
        size1 = data.draw(st.integers(1, size2), label="size1")
        proof = merkle.consistency_proof(size1, size2, self.get_node)
        assert proof == naive_subproof(size1, self.leaves, True)
        merkle.verify_consistency(
            size1, size2, proof, self.published_roots[size1], self.published_roots[size2]
        )

    @invariant()
    def roots_agree_with_the_model(self) -> None:
        size = len(self.leaves)
        expected = naive_mth(self.leaves)
        assert self.frontier.size == size
        assert self.frontier.root() == expected
        assert self.published_roots[size] == expected
        assert merkle.root_at(size, self.get_node) == expected


MerkleLog.TestCase.settings = settings(
    max_examples=30, stateful_step_count=25, derandomize=True, deadline=None
)
test_merkle_log = MerkleLog.TestCase

"""Unit tests for provledger.protocol.merkle.

The reference is a naive RFC 6962 implementation written here straight from the RFC text (MTH,
PATH, PROOF/SUBPROOF, recursive, with its own SHA-256 calls). Every inclusion and consistency
proof of every tree up to REFERENCE_LEAVES leaves is compared with it and checked by the
verifiers. Proofs are built through a dict-backed node store filled from CompactRange.append,
so the storage path is what gets tested, and the store refuses reads outside the tree.
"""

from __future__ import annotations

import hashlib

import pytest

from provledger.protocol import merkle
from provledger.protocol.errors import InvariantViolation

REFERENCE_LEAVES = 300

# The eight leaves of the RFC 6962 reference tree (certificate-transparency test data, also used
# by the transparency-dev vectors), with its published roots for sizes 1 to 8.
RFC6962_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    bytes(range(0x50, 0x58)),
    bytes(range(0x60, 0x70)),
]
RFC6962_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# Proof hashes of the reference tree that the known-answer tests below use.
LEAF_1 = "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"
LEAVES_2_4 = "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"
LEAVES_4_6 = "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"
LEAF_4 = "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"
LEAF_6 = "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"
LEAVES_6_8 = "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"
LEAVES_4_8 = "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"


# --- The naive reference, straight from RFC 6962 §2.1 --------------------------------------


def naive_leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def naive_node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def naive_split(n: int) -> int:
    """The largest power of two smaller than n, found by counting up."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


class NaiveTree:
    """MTH, PATH and PROOF of RFC 6962 over prefixes of a fixed list of leaves.

    A range D[lo:hi] stands for the RFC's list D[n]; MTH is memoized per range, which keeps
    the recursion exactly as the RFC writes it while making all-pairs testing affordable.
    """

    def __init__(self, leaves: list[bytes]) -> None:
        self.leaves = leaves
        self.known_hashes: dict[tuple[int, int], bytes] = {}

    def mth(self, lo: int, hi: int) -> bytes:
        """MTH(D[lo:hi])."""
        if (lo, hi) not in self.known_hashes:
            n = hi - lo
            if n == 0:
                mth = hashlib.sha256(b"").digest()
            elif n == 1:
                mth = naive_leaf_hash(self.leaves[lo])
            else:
                k = naive_split(n)
                mth = naive_node_hash(self.mth(lo, lo + k), self.mth(lo + k, hi))
            self.known_hashes[(lo, hi)] = mth
        return self.known_hashes[(lo, hi)]

    def path(self, m: int, lo: int, hi: int) -> list[bytes]:
        """PATH(m, D[lo:hi]), with m counted from lo."""
        n = hi - lo
        if n == 1:
            return []
        k = naive_split(n)
        if m < k:
            return [*self.path(m, lo, lo + k), self.mth(lo + k, hi)]
        return [*self.path(m - k, lo + k, hi), self.mth(lo, lo + k)]

    def subproof(self, m: int, lo: int, hi: int, b: bool) -> list[bytes]:
        """SUBPROOF(m, D[lo:hi], b), with m counted from lo."""
        n = hi - lo
        if m == n:
            return [] if b else [self.mth(lo, hi)]
        k = naive_split(n)
        if m <= k:
            return [*self.subproof(m, lo, lo + k, b), self.mth(lo + k, hi)]
        return [*self.subproof(m - k, lo + k, hi, False), self.mth(lo, lo + k)]

    def proof(self, m: int, n: int) -> list[bytes]:
        """PROOF(m, D[n])."""
        return self.subproof(m, 0, n, True)


# --- The system under test, fed through a node store ----------------------------------------


class NodeStore:
    """The perfect nodes reported by CompactRange.append, readable as of a given tree size."""

    def __init__(self, leaves: list[bytes]) -> None:
        self.nodes: dict[tuple[int, int], bytes] = {}
        frontier = merkle.CompactRange()
        for data in leaves:
            for level, index, node_hash in frontier.append(merkle.hash_leaf(data)):
                assert (level, index) not in self.nodes, "a node was reported twice"
                self.nodes[(level, index)] = node_hash
        self.reads = 0

    def reader(self, size: int) -> merkle.NodeReader:
        """A NodeReader for the tree of `size` leaves that counts reads and refuses nodes that
        reach past the tree, as a store holding only that tree would."""

        def get_node(level: int, index: int) -> bytes:
            assert (index + 1) << level <= size, f"node ({level}, {index}) is past size {size}"
            self.reads += 1
            return self.nodes[(level, index)]

        return get_node


def reference_leaf(index: int) -> bytes:
    return b"leaf-%d" % index


REFERENCE = NaiveTree([reference_leaf(i) for i in range(REFERENCE_LEAVES)])
STORE = NodeStore(REFERENCE.leaves)


# --- Hashing and roots ----------------------------------------------------------------------


def test_hashes_use_the_rfc6962_prefixes() -> None:
    assert merkle.EMPTY_ROOT.hex() == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    assert merkle.hash_leaf(b"") == hashlib.sha256(b"\x00").digest()
    left, right = merkle.hash_leaf(b"a"), merkle.hash_leaf(b"b")
    assert merkle.hash_children(left, right) == hashlib.sha256(b"\x01" + left + right).digest()


def test_hash_children_refuses_hashes_of_the_wrong_length() -> None:
    with pytest.raises(ValueError, match="child hashes have 31 and 32 bytes, expected 32"):
        merkle.hash_children(bytes(31), bytes(32))


@pytest.mark.parametrize("size", range(1, len(RFC6962_LEAVES) + 1))
def test_roots_of_the_rfc6962_reference_tree(size: int) -> None:
    leaf_hashes = [merkle.hash_leaf(data) for data in RFC6962_LEAVES[:size]]
    frontier = merkle.CompactRange()
    for leaf_hash in leaf_hashes:
        frontier.append(leaf_hash)
    assert merkle.root_from_leaf_hashes(leaf_hashes).hex() == RFC6962_ROOTS[size - 1]
    assert frontier.root().hex() == RFC6962_ROOTS[size - 1]


def test_the_empty_tree_has_the_empty_root() -> None:
    assert merkle.root_from_leaf_hashes([]) == merkle.EMPTY_ROOT
    assert merkle.CompactRange().root() == merkle.EMPTY_ROOT
    assert merkle.root_at(0, STORE.reader(0)) == merkle.EMPTY_ROOT


def test_root_from_leaf_hashes_refuses_hashes_of_the_wrong_length() -> None:
    with pytest.raises(ValueError, match="leaf hash 1 has 3 bytes, expected 32"):
        merkle.root_from_leaf_hashes([bytes(32), b"abc"])


def test_every_root_matches_the_reference() -> None:
    leaf_hashes = [naive_leaf_hash(data) for data in REFERENCE.leaves]
    for size in range(REFERENCE_LEAVES + 1):
        expected = REFERENCE.mth(0, size)
        assert merkle.root_from_leaf_hashes(leaf_hashes[:size]) == expected
        reads_before = STORE.reads
        assert merkle.root_at(size, STORE.reader(size)) == expected
        assert STORE.reads - reads_before == size.bit_count()


# --- The frontier and the node store --------------------------------------------------------


def test_append_reports_each_perfect_node_once_as_it_is_completed() -> None:
    frontier = merkle.CompactRange()
    for leaf_index, data in enumerate(REFERENCE.leaves[:130]):
        completed = frontier.append(merkle.hash_leaf(data))
        size = leaf_index + 1
        # The nodes whose last leaf is this one: one per trailing one bit of the old size.
        trailing_ones = (leaf_index ^ (leaf_index + 1)).bit_length() - 1
        assert [(level, index) for level, index, _ in completed] == [
            (level, leaf_index >> level) for level in range(trailing_ones + 1)
        ]
        for level, index, node_hash in completed:
            first_leaf = index << level
            assert node_hash == REFERENCE.mth(first_leaf, first_leaf + (1 << level))
        assert frontier.size == size
    # The store filled by appending holds every perfect node of the tree and nothing else.
    assert set(STORE.nodes) == {
        (level, index)
        for level in range(REFERENCE_LEAVES.bit_length())
        for index in range(REFERENCE_LEAVES >> level)
    }


def test_from_nodes_rebuilds_a_frontier_that_keeps_appending() -> None:
    for size in range(REFERENCE_LEAVES):
        reads_before = STORE.reads
        frontier = merkle.CompactRange.from_nodes(size, STORE.reader(size))
        assert STORE.reads - reads_before == size.bit_count()
        assert frontier.size == size
        assert frontier.root() == REFERENCE.mth(0, size)
        frontier.append(merkle.hash_leaf(REFERENCE.leaves[size]))
        assert frontier.root() == REFERENCE.mth(0, size + 1)


def test_append_refuses_a_leaf_hash_of_the_wrong_length() -> None:
    with pytest.raises(ValueError, match="leaf hash has 33 bytes, expected 32"):
        merkle.CompactRange().append(bytes(33))


def test_a_store_returning_a_short_hash_breaks_an_invariant() -> None:
    with pytest.raises(InvariantViolation, match=r"stored node \(0, 0\) has 31 bytes"):
        merkle.root_at(1, lambda level, index: bytes(31))


# --- Subtrees -------------------------------------------------------------------------------


def test_subtree_hash_composes_every_aligned_range() -> None:
    for lo in range(64):
        for hi in range(lo + 1, 129):
            largest_piece = 1 << ((hi - lo).bit_length() - 1)
            if lo % largest_piece == 0:
                assert merkle.subtree_hash(lo, hi, STORE.reader(hi)) == REFERENCE.mth(lo, hi)
            else:
                with pytest.raises(ValueError, match="not a subtree of any log tree"):
                    merkle.subtree_hash(lo, hi, STORE.reader(hi))


@pytest.mark.parametrize(("lo", "hi"), [(3, 3), (5, 2), (-1, 1), (0, merkle.TREE_LEAVES_MAX + 1)])
def test_subtree_hash_refuses_empty_or_out_of_range_ranges(lo: int, hi: int) -> None:
    with pytest.raises(ValueError, match="is empty or outside"):
        merkle.subtree_hash(lo, hi, STORE.reader(REFERENCE_LEAVES))


# --- Proofs against the reference -----------------------------------------------------------


@pytest.mark.parametrize(
    ("index", "size", "expected"),
    [
        (0, 1, []),
        (0, 8, [LEAF_1, LEAVES_2_4, LEAVES_4_8]),
        (5, 8, [LEAF_4, LEAVES_6_8, RFC6962_ROOTS[3]]),
        (2, 3, [RFC6962_ROOTS[1]]),
        (1, 5, [RFC6962_ROOTS[0], LEAVES_2_4, LEAF_4]),
    ],
)
def test_known_inclusion_proofs(index: int, size: int, expected: list[str]) -> None:
    store = NodeStore(RFC6962_LEAVES)
    proof = merkle.inclusion_proof(index, size, store.reader(size))
    assert [proof_hash.hex() for proof_hash in proof] == expected
    root = bytes.fromhex(RFC6962_ROOTS[size - 1])
    merkle.verify_inclusion(merkle.hash_leaf(RFC6962_LEAVES[index]), index, size, proof, root)


@pytest.mark.parametrize(
    ("size1", "size2", "expected"),
    [
        (1, 1, []),
        (1, 8, [LEAF_1, LEAVES_2_4, LEAVES_4_8]),
        (6, 8, [LEAVES_4_6, LEAVES_6_8, RFC6962_ROOTS[3]]),
        (2, 5, [LEAVES_2_4, LEAF_4]),
        (6, 7, [LEAVES_4_6, LEAF_6, RFC6962_ROOTS[3]]),
    ],
)
def test_known_consistency_proofs(size1: int, size2: int, expected: list[str]) -> None:
    store = NodeStore(RFC6962_LEAVES)
    proof = merkle.consistency_proof(size1, size2, store.reader(size2))
    assert [proof_hash.hex() for proof_hash in proof] == expected
    root1, root2 = bytes.fromhex(RFC6962_ROOTS[size1 - 1]), bytes.fromhex(RFC6962_ROOTS[size2 - 1])
    merkle.verify_consistency(size1, size2, proof, root1, root2)


@pytest.mark.parametrize("size", range(1, REFERENCE_LEAVES + 1))
def test_every_inclusion_proof_matches_the_reference_and_verifies(size: int) -> None:
    get_node = STORE.reader(size)
    root = REFERENCE.mth(0, size)
    reads_max = 2 * size.bit_length()
    for index in range(size):
        reads_before = STORE.reads
        proof = merkle.inclusion_proof(index, size, get_node)
        assert STORE.reads - reads_before <= reads_max
        assert proof == REFERENCE.path(index, 0, size)
        assert len(proof) == merkle.inclusion_proof_length(index, size)
        leaf_hash = naive_leaf_hash(REFERENCE.leaves[index])
        assert merkle.root_from_inclusion_proof(leaf_hash, index, size, proof) == root
        merkle.verify_inclusion(leaf_hash, index, size, proof, root)


@pytest.mark.parametrize("size2", range(1, REFERENCE_LEAVES + 1))
def test_every_consistency_proof_matches_the_reference_and_verifies(size2: int) -> None:
    get_node = STORE.reader(size2)
    root2 = REFERENCE.mth(0, size2)
    reads_max = 2 * size2.bit_length() + 1
    for size1 in range(1, size2 + 1):
        reads_before = STORE.reads
        proof = merkle.consistency_proof(size1, size2, get_node)
        assert STORE.reads - reads_before <= reads_max
        assert proof == REFERENCE.proof(size1, size2)
        assert len(proof) == merkle.consistency_proof_length(size1, size2)
        merkle.verify_consistency(size1, size2, proof, REFERENCE.mth(0, size1), root2)


@pytest.mark.parametrize(
    ("index", "size"), [(0, 0), (5, 5), (-1, 3), (0, merkle.TREE_LEAVES_MAX + 1)]
)
def test_inclusion_proof_refuses_an_index_outside_the_tree(index: int, size: int) -> None:
    with pytest.raises(ValueError, match=f"index {index} out of range for tree size {size}"):
        merkle.inclusion_proof(index, size, STORE.reader(REFERENCE_LEAVES))


@pytest.mark.parametrize(("size1", "size2"), [(0, 0), (0, 3), (4, 3), (-1, 2)])
def test_consistency_proof_refuses_sizes_that_prove_nothing(size1: int, size2: int) -> None:
    with pytest.raises(ValueError, match="consistency proof needs 0 < size1 <= size2"):
        merkle.consistency_proof(size1, size2, STORE.reader(REFERENCE_LEAVES))


# --- Verifier preconditions and messages ----------------------------------------------------


def reference_inclusion(index: int, size: int) -> tuple[bytes, list[bytes], bytes]:
    """(leaf hash, proof, root) of a true inclusion claim in the reference tree."""
    leaf_hash = naive_leaf_hash(REFERENCE.leaves[index])
    return leaf_hash, REFERENCE.path(index, 0, size), REFERENCE.mth(0, size)


def test_verify_inclusion_rejects_with_a_message_naming_the_fault() -> None:
    leaf_hash, proof, root = reference_inclusion(5, 13)
    faults = [
        ((leaf_hash, 13, 13, proof, root), "index 13 out of range for tree size 13"),
        ((leaf_hash, -1, 13, proof, root), "index -1 out of range for tree size 13"),
        (
            (leaf_hash, 0, merkle.TREE_LEAVES_MAX + 1, proof, root),
            f"tree size {merkle.TREE_LEAVES_MAX + 1} exceeds the limit {merkle.TREE_LEAVES_MAX}",
        ),
        ((leaf_hash[:9], 5, 13, proof, root), "leaf hash has 9 bytes, expected 32"),
        ((leaf_hash, 5, 13, proof[:-1], root), "proof has 3 hashes, expected 4"),
        ((leaf_hash, 5, 13, [*proof, root], root), "proof has 5 hashes, expected 4"),
        ((leaf_hash, 5, 13, [*proof[:3], b""], root), "proof hash 3 has 0 bytes, expected 32"),
        ((leaf_hash, 5, 13, proof, root[:31]), "root has 31 bytes, expected 32"),
    ]
    for arguments, message in faults:
        with pytest.raises(merkle.ProofError) as raised:
            merkle.verify_inclusion(*arguments)
        assert str(raised.value) == message
        assert not isinstance(raised.value, merkle.RootMismatchError)


def test_verify_inclusion_reports_a_root_mismatch_with_both_roots() -> None:
    leaf_hash, proof, root = reference_inclusion(5, 13)
    wrong_root = REFERENCE.mth(0, 12)
    with pytest.raises(merkle.RootMismatchError) as raised:
        merkle.verify_inclusion(leaf_hash, 5, 13, proof, wrong_root)
    assert raised.value.calculated == root
    assert raised.value.expected == wrong_root
    assert str(raised.value) == (
        f"calculated root {root.hex()} differs from the expected root {wrong_root.hex()}"
    )


def test_verify_consistency_rejects_with_a_message_naming_the_fault() -> None:
    root6, root13 = REFERENCE.mth(0, 6), REFERENCE.mth(0, 13)
    proof = REFERENCE.proof(6, 13)
    faults = [
        ((7, 6, [], root6, root6), "size1 7 is greater than size2 6"),
        (
            (0, 0, [], merkle.EMPTY_ROOT, merkle.EMPTY_ROOT),
            "size1 is 0, but consistency needs size1 > 0: every tree extends the empty one",
        ),
        (
            (0, 13, [], merkle.EMPTY_ROOT, root13),
            "size1 is 0, but consistency needs size1 > 0: every tree extends the empty one",
        ),
        (
            (6, merkle.TREE_LEAVES_MAX + 1, proof, root6, root13),
            f"size2 {merkle.TREE_LEAVES_MAX + 1} exceeds the limit {merkle.TREE_LEAVES_MAX}",
        ),
        ((6, 6, [root6], root6, root6), "proof has 1 hashes, expected 0"),
        ((6, 13, proof, root6[:5], root13), "root1 has 5 bytes, expected 32"),
        ((6, 13, proof, root6, root13 + b"\x00"), "root2 has 33 bytes, expected 32"),
        ((6, 13, [], root6, root13), f"proof has 0 hashes, expected {len(proof)}"),
        ((6, 13, [*proof, root13], root6, root13), f"proof has 5 hashes, expected {len(proof)}"),
        ((6, 13, [bytes(31), *proof[1:]], root6, root13), "proof hash 0 has 31 bytes, expected 32"),
    ]
    for arguments, message in faults:
        with pytest.raises(merkle.ProofError) as raised:
            merkle.verify_consistency(*arguments)
        assert str(raised.value) == message
        assert not isinstance(raised.value, merkle.RootMismatchError)


def test_verify_consistency_names_the_root_that_differs() -> None:
    root6, root13 = REFERENCE.mth(0, 6), REFERENCE.mth(0, 13)
    proof = REFERENCE.proof(6, 13)
    with pytest.raises(merkle.RootMismatchError, match="calculated root1 "):
        merkle.verify_consistency(6, 13, proof, REFERENCE.mth(0, 5), root13)
    with pytest.raises(merkle.RootMismatchError, match="calculated root2 "):
        merkle.verify_consistency(6, 13, proof, root6, REFERENCE.mth(0, 12))
    with pytest.raises(merkle.RootMismatchError, match="calculated root2 "):
        merkle.verify_consistency(6, 6, [], root6, REFERENCE.mth(0, 5))


def test_equal_sizes_need_only_equal_roots() -> None:
    merkle.verify_consistency(6, 6, [], REFERENCE.mth(0, 6), REFERENCE.mth(0, 6))
    # Nothing is hashed, so nothing about the roots but their equality is checked; the
    # transparency-dev vectors expect exactly this.
    merkle.verify_consistency(1, 1, [], b"don't care", b"don't care")


def test_a_proof_binds_the_tree_size_only_through_the_root() -> None:
    """Sizes with the same proof shape accept the same proof: here leaf 0's proof in the tree of
    3 leaves also verifies as a claim about size 4 with the 3-leaf root. So callers must take
    size and root together from one signed tree head, as the module docstring says."""
    leaf_hash, proof, root3 = reference_inclusion(0, 3)
    merkle.verify_inclusion(leaf_hash, 0, 4, proof, root3)
    with pytest.raises(merkle.RootMismatchError):
        merkle.verify_inclusion(leaf_hash, 0, 4, proof, REFERENCE.mth(0, 4))


# --- Limits ---------------------------------------------------------------------------------


def test_proof_lengths_stay_within_proof_hashes_max() -> None:
    largest = merkle.TREE_LEAVES_MAX
    # One sibling per level below the root: 64 for any leaf of the left half.
    assert merkle.inclusion_proof_length(0, largest) == 64
    assert merkle.inclusion_proof_length((1 << 63) - 1, largest) == 64
    # Along the right edge only the set bits of the index have a sibling.
    assert merkle.inclusion_proof_length(largest - 1, largest) == 63
    # The longest consistency proof: an odd old size whose last leaf sits deep on the left of
    # a long right edge.
    assert merkle.consistency_proof_length(largest - 2, largest) == merkle.PROOF_HASHES_MAX
    for exponent in range(1, 64):
        for size2 in (1 << exponent, (1 << exponent) + 1, (1 << (exponent + 1)) - 1):
            for size1 in (1, 3, (1 << exponent) - 1, size2 - 2, size2 - 1):
                if 0 < size1 < size2 <= largest:
                    length = merkle.consistency_proof_length(size1, size2)
                    assert length <= merkle.PROOF_HASHES_MAX

"""The event log's Merkle tree (RFC 6962 / RFC 9162): hashing, appending, proofs, verification.

This module owns the shape and hashing of the log tree and the rules for proving and checking
that an event is in it (inclusion) and that a later tree extends an earlier one (consistency).
It is pure: no I/O, no clock, no randomness. Storage belongs to the caller; every function that
needs stored hashes takes a `NodeReader`.

Hashing (RFC 6962 §2.1). Leaves and interior nodes are hashed with different prefixes, so a
leaf can never be passed off as an interior node or the other way round:

    hash_leaf(d)        = SHA-256(0x00 || d)
    hash_children(l, r) = SHA-256(0x01 || l || r)
    MTH({})             = SHA-256("")                                   (EMPTY_ROOT)
    MTH(D[1])           = hash_leaf(d0)
    MTH(D[n])           = hash_children(MTH(D[0:k]), MTH(D[k:n]))        for n > 1,
                          where k is the largest power of two smaller than n.

Node addresses. The perfect subtree of 2**level leaves that starts at leaf index * 2**level is
node (level, index); node (0, i) is the hash of leaf i. The log only grows, so a perfect node
never changes once its last leaf is appended: a store writes each one exactly once, as
`CompactRange.append` reports it, and never rewrites it.

Composed subtrees. Every subtree that a root or a proof needs covers leaves [lo, hi) where lo is
a multiple of the largest power of two not above hi - lo. Such a range splits into one aligned
perfect node per set bit of hi - lo, largest first, and its MTH is those node hashes combined
right to left. So `root_at`, `inclusion_proof` and `consistency_proof` each read O(log n)
stored nodes, never the leaves.

The frontier. `CompactRange` holds the perfect nodes of the current tree, one per set bit of its
size (size 6 = 0b110: nodes over leaves [0, 4) and [4, 6)). That is enough to append the next
leaf, which merges equal-sized neighbours the way a binary counter carries, and to compute the
root.

Verification follows the bit-shifting algorithms of RFC 9162 §2.1.3.2 and §2.1.4.2. Each
verifier first checks its preconditions, the hash lengths and the exact proof length, so a
malformed proof is rejected with a message that says what is wrong; only a well-formed proof
reaches the hashing, and a wrong one fails with `RootMismatchError`.

What a proof binds. An inclusion proof binds the leaf hash, its index and the root, but the tree
size only through the root: sizes whose proofs have the same shape accept the same proof (the
proof for leaf 0 of a 3-leaf tree also verifies for size 4 against the 3-leaf root). The size
and the root must therefore come together from one signed tree head.

Errors. Bad arguments to the proof builders raise ValueError. A proof or claim that does not
verify raises ProofError. A broken invariant (a bug, or a store returning a hash of the wrong
length) raises InvariantViolation through `errors.check`, which unlike `assert` survives -O.

Invariants:
- every hash this module returns, and every hash it reads through a NodeReader, is
  HASH_SIZE_BYTES long;
- a CompactRange of size n holds exactly popcount(n) hashes;
- a proof built here has exactly the length its verifier expects, at most PROOF_HASHES_MAX.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from provledger.protocol.errors import check

HASH_SIZE_BYTES = 32
# Tree sizes and leaf indices travel as unsigned 64-bit integers, as in RFC 9162.
TREE_LEAVES_MAX = 2**64 - 1
# An inclusion proof has at most one hash per level: 64. A consistency proof is a suffix of
# one plus, when the old size is not a power of two, the hash of the old tree's last perfect
# subtree: 65, reached for sizes 2**64 - 3 and 2**64 - 1. Wire decoders cap proofs with this.
PROOF_HASHES_MAX = 65

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"

EMPTY_ROOT = hashlib.sha256(b"").digest()

NodeReader = Callable[[int, int], bytes]
"""get_node(level, index): the stored hash of perfect node (level, index) of the log tree."""


class ProofError(Exception):
    """A proof, or the claim it is checked against, does not verify."""


class RootMismatchError(ProofError):
    """A well-formed proof hashes to a root other than the expected one."""

    def __init__(self, name: str, calculated: bytes, expected: bytes) -> None:
        super().__init__(
            f"calculated {name} {calculated.hex()} differs from the expected {name} "
            f"{expected.hex()}"
        )
        self.calculated = calculated
        self.expected = expected


def hash_leaf(data: bytes) -> bytes:
    """Return SHA-256(0x00 || data), the hash of a leaf holding `data`."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def hash_children(left: bytes, right: bytes) -> bytes:
    """Return SHA-256(0x01 || left || right). Requires both hashes to be HASH_SIZE_BYTES long."""
    if len(left) != HASH_SIZE_BYTES or len(right) != HASH_SIZE_BYTES:
        raise ValueError(
            f"child hashes have {len(left)} and {len(right)} bytes, expected {HASH_SIZE_BYTES}"
        )
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def root_from_leaf_hashes(leaf_hashes: Sequence[bytes]) -> bytes:
    """Return the MTH of a whole list of leaf hashes (EMPTY_ROOT for none).

    Works level by level: neighbours are paired and an unpaired last node is carried up
    unchanged. That builds exactly the RFC 6962 tree, whose right edge is such a carried node
    wherever a level has odd length. Requires every hash to be HASH_SIZE_BYTES long.
    """
    for position, leaf_hash in enumerate(leaf_hashes):
        if len(leaf_hash) != HASH_SIZE_BYTES:
            raise ValueError(
                f"leaf hash {position} has {len(leaf_hash)} bytes, expected {HASH_SIZE_BYTES}"
            )
    if not leaf_hashes:
        return EMPTY_ROOT
    level = list(leaf_hashes)
    while len(level) > 1:
        parents = [hash_children(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2 == 1:
            parents.append(level[-1])
        level = parents
    return level[0]


class CompactRange:
    """The frontier of the log tree: one perfect node per set bit of its size, left to right.

    A new CompactRange is the empty tree. `append` adds a leaf and reports the perfect nodes it
    completes; `from_nodes` rebuilds the frontier of a stored tree from those nodes.
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self) -> None:
        self._size = 0
        self._hashes: list[bytes] = []

    @classmethod
    def from_nodes(cls, size: int, get_node: NodeReader) -> CompactRange:
        """Rebuild the frontier of the stored tree of `size` leaves with popcount(size) reads.

        Requires 0 <= size <= TREE_LEAVES_MAX and every perfect node of that tree to be stored.
        """
        if not 0 <= size <= TREE_LEAVES_MAX:
            raise ValueError(f"tree size {size} is outside [0, {TREE_LEAVES_MAX}]")
        frontier = cls()
        frontier._hashes = [
            _read_node(get_node, level, index) for level, index in _perfect_pieces(0, size)
        ]
        frontier._size = size
        return frontier

    @property
    def size(self) -> int:
        """The number of leaves appended so far."""
        return self._size

    def append(self, leaf_hash: bytes) -> list[tuple[int, int, bytes]]:
        """Append a leaf; return the (level, index, hash) of each perfect node it completes.

        They come lowest level first. The first is the leaf itself, (0, its index, leaf_hash);
        each further one merges the frontier's last node with the node just completed, as long
        as they cover equally many leaves. Requires a HASH_SIZE_BYTES-long hash and a tree
        below TREE_LEAVES_MAX.
        """
        if len(leaf_hash) != HASH_SIZE_BYTES:
            raise ValueError(f"leaf hash has {len(leaf_hash)} bytes, expected {HASH_SIZE_BYTES}")
        if self._size == TREE_LEAVES_MAX:
            raise ValueError(f"the tree already holds the limit of {TREE_LEAVES_MAX} leaves")
        leaf_index = self._size
        node = leaf_hash
        completed = [(0, leaf_index, node)]
        level = 0
        # Bit `level` of the old size is set exactly when the frontier ends with a node of
        # 2**level leaves, the left sibling of the node just completed.
        while (leaf_index >> level) & 1:
            node = hash_children(self._hashes.pop(), node)
            level += 1
            completed.append((level, leaf_index >> level, node))
        self._hashes.append(node)
        self._size += 1
        check(
            len(self._hashes) == self._size.bit_count(),
            f"frontier of size {self._size} holds {len(self._hashes)} hashes",
        )
        return completed

    def root(self) -> bytes:
        """Return the MTH of the tree appended so far (EMPTY_ROOT when empty)."""
        if not self._hashes:
            return EMPTY_ROOT
        return _combine_right_to_left(self._hashes)


def subtree_hash(lo: int, hi: int, get_node: NodeReader) -> bytes:
    """Return MTH(D[lo:hi]) from at most log2(hi - lo) + 1 stored perfect nodes.

    Requires 0 <= lo < hi <= TREE_LEAVES_MAX and lo to be a multiple of the largest power of two
    not above hi - lo, so that the range splits into aligned perfect nodes. Every subtree of an
    RFC 6962 tree has that form.
    """
    if not 0 <= lo < hi <= TREE_LEAVES_MAX:
        raise ValueError(f"leaf range [{lo}, {hi}) is empty or outside [0, {TREE_LEAVES_MAX}]")
    largest_piece = 1 << ((hi - lo).bit_length() - 1)
    if lo % largest_piece != 0:
        raise ValueError(
            f"leaf range [{lo}, {hi}) does not start at a multiple of {largest_piece}, "
            "so it is not a subtree of any log tree"
        )
    return _combine_right_to_left(
        [_read_node(get_node, level, index) for level, index in _perfect_pieces(lo, hi)]
    )


def root_at(size: int, get_node: NodeReader) -> bytes:
    """Return the root of the stored tree of `size` leaves (EMPTY_ROOT for 0).

    Requires 0 <= size <= TREE_LEAVES_MAX. Reads popcount(size) nodes.
    """
    if not 0 <= size <= TREE_LEAVES_MAX:
        raise ValueError(f"tree size {size} is outside [0, {TREE_LEAVES_MAX}]")
    if size == 0:
        return EMPTY_ROOT
    return subtree_hash(0, size, get_node)


def inclusion_proof(index: int, size: int, get_node: NodeReader) -> list[bytes]:
    """Return PATH(index, D[size]) of RFC 6962 §2.1.1: the sibling hashes from leaf to root.

    Requires 0 <= index < size <= TREE_LEAVES_MAX. Walks down from the root: each level's
    sibling is the half not containing the leaf. Left halves are perfect nodes; only the first
    right half met can need composing, since below it the walk stays inside a perfect subtree.
    So at most 2 * size.bit_length() nodes are read.
    """
    if not 0 <= index < size <= TREE_LEAVES_MAX:
        raise ValueError(f"index {index} out of range for tree size {size}")
    siblings_top_down = []
    lo, hi = 0, size
    while hi - lo > 1:
        middle = lo + _largest_power_of_two_below(hi - lo)
        if index < middle:
            siblings_top_down.append(subtree_hash(middle, hi, get_node))
            hi = middle
        else:
            siblings_top_down.append(subtree_hash(lo, middle, get_node))
            lo = middle
    proof = siblings_top_down[::-1]
    check(
        len(proof) == inclusion_proof_length(index, size),
        f"built {len(proof)} hashes for index {index} in tree size {size}",
    )
    return proof


def consistency_proof(size1: int, size2: int, get_node: NodeReader) -> list[bytes]:
    """Return PROOF(size1, D[size2]) of RFC 6962 §2.1.2 (empty when the sizes are equal).

    Requires 0 < size1 <= size2 <= TREE_LEAVES_MAX: every tree extends the empty one, so a proof
    from size 0 would prove nothing. Walks down from the root like SUBPROOF: while the old tree
    lies in the left half, the right half is sent; once it reaches into the right half, the
    left half is sent. As for inclusion, at most one sent half needs composing: at most
    2 * size2.bit_length() + 1 nodes are read.
    """
    if not 0 < size1 <= size2 <= TREE_LEAVES_MAX:
        raise ValueError(
            f"consistency proof needs 0 < size1 <= size2 <= {TREE_LEAVES_MAX}, "
            f"got size1 {size1} and size2 {size2}"
        )
    if size1 == size2:
        return []
    siblings_top_down = []
    lo, hi = 0, size2
    # RFC 6962's flag b: so far the walk has only gone left, so [lo, hi) starts at leaf 0 and
    # the old tree is a prefix of it.
    old_tree_is_prefix = True
    while size1 != hi:
        middle = lo + _largest_power_of_two_below(hi - lo)
        if size1 <= middle:
            siblings_top_down.append(subtree_hash(middle, hi, get_node))
            hi = middle
        else:
            siblings_top_down.append(subtree_hash(lo, middle, get_node))
            lo = middle
            old_tree_is_prefix = False
    # The walk ends on the old tree's last perfect node. When it is the whole old tree, the
    # verifier already holds its hash as root1; otherwise the proof must start with it.
    proof = [] if old_tree_is_prefix else [subtree_hash(lo, hi, get_node)]
    proof.extend(reversed(siblings_top_down))
    check(
        len(proof) == consistency_proof_length(size1, size2),
        f"built {len(proof)} hashes for sizes {size1} and {size2}",
    )
    return proof


def inclusion_proof_length(index: int, size: int) -> int:
    """Return the number of hashes in the inclusion proof of leaf `index` in a tree of `size`.

    Requires 0 <= index < size. Below the level where the paths to leaf `index` and leaf
    size - 1 meet, every level has a sibling. Above it the path runs along the tree's right
    edge, where a level has a (left) sibling only if `index` has a set bit there; elsewhere the
    node is carried up unhashed.
    """
    levels_below_edge = (index ^ (size - 1)).bit_length()
    return levels_below_edge + (index >> levels_below_edge).bit_count()


def consistency_proof_length(size1: int, size2: int) -> int:
    """Return the number of hashes in the consistency proof from `size1` to `size2`.

    Requires 0 < size1 <= size2. The proof is the inclusion proof of the old tree's last leaf
    in the new tree, less the levels inside the old tree's last perfect subtree (2**shift
    leaves), plus that subtree's hash unless it is the whole old tree (root1).
    """
    if size1 == size2:
        return 0
    shift = _trailing_zeros(size1)
    length = inclusion_proof_length(size1 - 1, size2) - shift
    return length if size1 == 1 << shift else length + 1


def root_from_inclusion_proof(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]
) -> bytes:
    """Return the root that `proof` yields for `leaf_hash` at `index` in a tree of `size`.

    RFC 9162 §2.1.3.2. Raises ProofError unless:
    - 0 <= index < size <= TREE_LEAVES_MAX;
    - leaf_hash and every proof hash are HASH_SIZE_BYTES long;
    - there are exactly inclusion_proof_length(index, size) proof hashes.
    """
    if size > TREE_LEAVES_MAX:
        raise ProofError(f"tree size {size} exceeds the limit {TREE_LEAVES_MAX}")
    if not 0 <= index < size:
        raise ProofError(f"index {index} out of range for tree size {size}")
    _require_hash_size("leaf hash", leaf_hash)
    _require_proof_length(proof, inclusion_proof_length(index, size))
    # fn is the node on the leaf's path at the current level, sn the last node of that level.
    fn, sn = index, size - 1
    calculated = leaf_hash
    for sibling in proof:
        check(sn != 0, "inclusion proof longer than its tree; the length check is wrong")
        if fn & 1 or fn == sn:
            calculated = hash_children(sibling, calculated)
            # A last node that is a left child has no sibling: carry it up to the level where
            # it becomes a right child.
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            calculated = hash_children(calculated, sibling)
        fn, sn = fn >> 1, sn >> 1
    check(sn == 0, "inclusion proof shorter than its tree; the length check is wrong")
    return calculated


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that `proof` shows leaf `leaf_hash` at `index` in the tree of `size` with `root`.

    Raises ProofError unless every precondition of `root_from_inclusion_proof` holds and root
    is HASH_SIZE_BYTES long; raises RootMismatchError if the proof yields another root.
    """
    calculated = root_from_inclusion_proof(leaf_hash, index, size, proof)
    _require_hash_size("root", root)
    if calculated != root:
        raise RootMismatchError("root", calculated, root)


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that the tree of `size2` with `root2` extends the tree of `size1` with `root1`.

    RFC 9162 §2.1.4.2. Raises ProofError unless:
    - 0 < size1 <= size2 <= TREE_LEAVES_MAX. Every tree extends the empty one, so a claim
      about it proves nothing: size1 = 0 is refused even with size2 = 0, as the
      transparency-dev vectors expect;
    - when size1 == size2: the proof is empty and root1 == root2 byte for byte. Nothing is
      hashed, so their length is not checked, again as those vectors expect;
    - when size1 < size2: root1, root2 and every proof hash are HASH_SIZE_BYTES long, and there
      are exactly consistency_proof_length(size1, size2) proof hashes.
    Raises RootMismatchError if a well-formed proof yields another root1 or root2.
    """
    if size2 > TREE_LEAVES_MAX:
        raise ProofError(f"size2 {size2} exceeds the limit {TREE_LEAVES_MAX}")
    if size1 > size2:
        raise ProofError(f"size1 {size1} is greater than size2 {size2}")
    if size1 <= 0:
        raise ProofError(
            f"size1 is {size1}, but consistency needs size1 > 0: every tree extends the empty one"
        )
    if size1 == size2:
        # Both sizes name the same tree, so root1 is the only root2 it can have.
        _require_proof_length(proof, 0)
        if root1 != root2:
            raise RootMismatchError("root2", root1, root2)
        return
    _require_hash_size("root1", root1)
    _require_hash_size("root2", root2)
    calculated1, calculated2 = roots_from_consistency_proof(size1, size2, proof, root1)
    if calculated1 != root1:
        raise RootMismatchError("root1", calculated1, root1)
    if calculated2 != root2:
        raise RootMismatchError("root2", calculated2, root2)


def roots_from_consistency_proof(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes
) -> tuple[bytes, bytes]:
    """Return the roots that `proof` yields for the old tree of `size1` leaves and the new tree
    of `size2` leaves: the walk of RFC 9162 §2.1.4.2, without its final comparisons.

    When the new root is the new tree's, the old root is the root of the new tree's first
    `size1` leaves: a proof that leads to a signed new root and to an old root other than a
    signed old one shows the two logs conflict. When `size1` is a power of two the proof
    leaves the old root out and `root1` seeds the walk, so the old root returned is `root1`.
    Raises ProofError unless 0 < size1 < size2 <= TREE_LEAVES_MAX, root1 and every proof hash
    are HASH_SIZE_BYTES long, and there are exactly consistency_proof_length(size1, size2)
    proof hashes.
    """
    if size2 > TREE_LEAVES_MAX:
        raise ProofError(f"size2 {size2} exceeds the limit {TREE_LEAVES_MAX}")
    if not 0 < size1 < size2:
        raise ProofError(f"the sizes must be 0 < size1 < size2, got {size1} and {size2}")
    _require_hash_size("root1", root1)
    _require_proof_length(proof, consistency_proof_length(size1, size2))
    # When the old tree is one perfect subtree, its root is the seed the proof leaves out.
    path = [root1, *proof] if size1 & (size1 - 1) == 0 else list(proof)
    # fn walks the old tree's last leaf up, sn the new tree's; the levels inside the old tree's
    # last perfect subtree are skipped, since path[0] is that subtree's hash.
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    calculated1 = calculated2 = path[0]
    for sibling in path[1:]:
        check(sn != 0, "consistency proof longer than its tree; the length check is wrong")
        if fn & 1 or fn == sn:
            # A left sibling lies in both trees.
            calculated1 = hash_children(sibling, calculated1)
            calculated2 = hash_children(sibling, calculated2)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            # A right sibling holds only new leaves.
            calculated2 = hash_children(calculated2, sibling)
        fn, sn = fn >> 1, sn >> 1
    check(sn == 0, "consistency proof shorter than its tree; the length check is wrong")
    return calculated1, calculated2


def _perfect_pieces(lo: int, hi: int) -> list[tuple[int, int]]:
    """Split [lo, hi) into (level, index) perfect nodes, one per set bit of hi - lo, largest
    first. Requires lo to be a multiple of the largest power of two not above hi - lo."""
    pieces = []
    start = lo
    leaves = hi - lo
    for level in range(leaves.bit_length() - 1, -1, -1):
        if (leaves >> level) & 1:
            pieces.append((level, start >> level))
            start += 1 << level
    return pieces


def _combine_right_to_left(hashes: Sequence[bytes]) -> bytes:
    """Return the MTH of consecutive perfect subtrees of strictly decreasing size."""
    combined = hashes[-1]
    for left in reversed(hashes[:-1]):
        combined = hash_children(left, combined)
    return combined


def _read_node(get_node: NodeReader, level: int, index: int) -> bytes:
    node_hash = get_node(level, index)
    check(
        len(node_hash) == HASH_SIZE_BYTES,
        f"stored node ({level}, {index}) has {len(node_hash)} bytes, expected {HASH_SIZE_BYTES}",
    )
    return node_hash


def _largest_power_of_two_below(n: int) -> int:
    """Return the largest power of two smaller than n. Requires n > 1."""
    return 1 << ((n - 1).bit_length() - 1)


def _trailing_zeros(n: int) -> int:
    """Return the number of trailing zero bits of n. Requires n > 0."""
    return (n & -n).bit_length() - 1


def _require_hash_size(name: str, value: bytes) -> None:
    if len(value) != HASH_SIZE_BYTES:
        raise ProofError(f"{name} has {len(value)} bytes, expected {HASH_SIZE_BYTES}")


def _require_proof_length(proof: Sequence[bytes], expected_hashes: int) -> None:
    if len(proof) != expected_hashes:
        raise ProofError(f"proof has {len(proof)} hashes, expected {expected_hashes}")
    for position, proof_hash in enumerate(proof):
        _require_hash_size(f"proof hash {position}", proof_hash)

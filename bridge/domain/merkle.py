"""The transparency log's Merkle tree (RFC 6962 / RFC 9162): hashes, roots and proofs read from
the hashes of perfect subtrees, and the append that computes those hashes.

A node is addressed by ``(level, index)``: it is the perfect subtree over the leaves
``[index·2^level, (index+1)·2^level)``, and level 0 holds the leaf hashes. Every hash a root or
a proof needs is the hash of an RFC 6962 subtree ``D[lo:hi]``, which is the combination of a
few perfect subtrees; so storing perfect subtrees alone is enough, and each one is written once
and never changes as the tree grows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence

NodeKey = tuple[int, int]  # (level, index)

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(_LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


# -- Which perfect subtrees make up a subtree -------------------------------------------------


def range_parts(lo: int, hi: int) -> list[NodeKey]:
    """The perfect subtrees that make up the RFC 6962 subtree ``D[lo:hi]``, left to right.

    They are the binary digits of ``hi - lo``, largest first, which is how RFC 6962 splits a
    list; they are stored nodes only when ``lo`` is a multiple of the largest, as it is for
    ``[0, size)`` and for every subtree a proof names.
    """
    if not 0 <= lo <= hi:
        raise ValueError(f"not a range of leaves: [{lo}, {hi})")
    width = hi - lo
    if width and lo % (1 << (width.bit_length() - 1)):
        raise ValueError(f"[{lo}, {hi}) is not an RFC 6962 subtree")
    parts: list[NodeKey] = []
    position = lo
    for level in range(width.bit_length() - 1, -1, -1):
        if width >> level & 1:
            parts.append((level, position >> level))
            position += 1 << level
    return parts


def root_parts(size: int) -> list[NodeKey]:
    """The perfect subtrees a tree of ``size`` leaves is made of, largest (leftmost) first."""
    return range_parts(0, size)


def subtree_hash(lo: int, hi: int, nodes: Mapping[NodeKey, bytes]) -> bytes:
    """MTH(D[lo:hi]) from the stored hashes of its perfect subtrees (RFC 6962 §2.1)."""
    return _fold([nodes[key] for key in range_parts(lo, hi)])


def root(size: int, nodes: Mapping[NodeKey, bytes]) -> bytes:
    """The tree head of the first ``size`` leaves (SHA-256 of nothing for an empty tree)."""
    return subtree_hash(0, size, nodes)


def _split(width: int) -> int:
    """RFC 6962's k: the largest power of two smaller than ``width`` (``width`` > 1)."""
    return 1 << ((width - 1).bit_length() - 1)


def _parts_of(ranges: Iterable[tuple[int, int]]) -> list[NodeKey]:
    return [key for lo, hi in ranges for key in range_parts(lo, hi)]


# -- Inclusion proofs (RFC 9162 §2.1.3) -------------------------------------------------------


def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The subtrees of PATH(index, D[0:size]), in the proof's order (nearest the leaf first)."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of size {size}")
    siblings: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        middle = lo + _split(hi - lo)
        if index < middle:
            siblings.append((middle, hi))
            hi = middle
        else:
            siblings.append((lo, middle))
            lo = middle
    siblings.reverse()
    return siblings


def inclusion_parts(index: int, size: int) -> list[NodeKey]:
    """The stored nodes an inclusion proof of leaf ``index`` in a tree of ``size`` reads."""
    return _parts_of(_inclusion_ranges(index, size))


def inclusion_proof(index: int, size: int, nodes: Mapping[NodeKey, bytes]) -> list[bytes]:
    return [subtree_hash(lo, hi, nodes) for lo, hi in _inclusion_ranges(index, size)]


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root_hash: bytes
) -> bool:
    """Whether ``proof`` shows that ``leaf`` (a leaf hash) is leaf ``index`` of the tree of
    ``size`` leaves whose head is ``root_hash`` (RFC 9162 §2.1.3.2)."""
    if not 0 <= index < size or not _all_hashes([leaf, root_hash, *proof]):
        return False
    fn, sn = index, size - 1
    computed = leaf
    for sibling in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            computed = node_hash(sibling, computed)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            computed = node_hash(computed, sibling)
        fn >>= 1
        sn >>= 1
    return sn == 0 and computed == root_hash


# -- Consistency proofs (RFC 9162 §2.1.4) -----------------------------------------------------


def _consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """The subtrees of PROOF(old_size, D[0:new_size]), in the proof's order."""
    if not 0 <= old_size <= new_size:
        raise ValueError(f"a tree of size {new_size} cannot extend one of size {old_size}")
    if old_size in (0, new_size):
        return []
    found: list[tuple[int, int]] = []
    lo, hi, old_end = 0, new_size, old_size
    # SUBPROOF's flag: whether the old tree's head is the subtree found at the bottom, which
    # the verifier already holds and the proof leaves out.
    whole_old_tree = True
    while old_end != hi:
        middle = lo + _split(hi - lo)
        if old_end <= middle:
            found.append((middle, hi))
            hi = middle
        else:
            found.append((lo, middle))
            lo = middle
            whole_old_tree = False
    if not whole_old_tree:
        found.append((lo, hi))
    found.reverse()
    return found


def consistency_parts(old_size: int, new_size: int) -> list[NodeKey]:
    """The stored nodes a consistency proof between the two sizes reads."""
    return _parts_of(_consistency_ranges(old_size, new_size))


def consistency_proof(old_size: int, new_size: int, nodes: Mapping[NodeKey, bytes]) -> list[bytes]:
    return [subtree_hash(lo, hi, nodes) for lo, hi in _consistency_ranges(old_size, new_size)]


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Whether ``proof`` shows that the tree of ``new_size`` with head ``new_root`` extends the
    tree of ``old_size`` with head ``old_root`` (RFC 9162 §2.1.4.2)."""
    if not 0 <= old_size <= new_size or not _all_hashes([old_root, new_root, *proof]):
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        # Every tree extends the empty one, whose head is fixed.
        return not proof and old_root == EMPTY_ROOT
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    old_computed = new_computed = path[0]
    for hash_ in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            old_computed = node_hash(hash_, old_computed)
            new_computed = node_hash(hash_, new_computed)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            new_computed = node_hash(new_computed, hash_)
        fn >>= 1
        sn >>= 1
    return sn == 0 and old_computed == old_root and new_computed == new_root


def _all_hashes(values: Iterable[bytes]) -> bool:
    return all(len(value) == HASH_SIZE for value in values)


# -- Growing the tree -------------------------------------------------------------------------


def append(
    size: int, frontier: Sequence[bytes], leaves: Sequence[bytes]
) -> tuple[dict[NodeKey, bytes], list[bytes]]:
    """Appends ``leaves`` (leaf hashes) to a tree of ``size`` leaves whose ``frontier`` is the
    hashes of ``root_parts(size)``.

    Returns every node to store — the new leaves and every perfect subtree they complete — and
    the new frontier. Each leaf merges as many completed subtrees as its position has trailing
    one bits, so a batch costs one hash per new node.
    """
    parts = root_parts(size)
    if len(frontier) != len(parts):
        raise ValueError(
            f"a tree of size {size} has a frontier of {len(parts)} hashes, not {len(frontier)}"
        )
    stack: list[tuple[int, int, bytes]] = [
        (level, index, hash_) for (level, index), hash_ in zip(parts, frontier, strict=True)
    ]
    created: dict[NodeKey, bytes] = {}
    for position, leaf in enumerate(leaves, start=size):
        created[(0, position)] = leaf
        stack.append((0, position, leaf))
        while len(stack) > 1 and stack[-1][0] == stack[-2][0]:
            level, _, right = stack.pop()
            _, left_index, left = stack.pop()
            parent_key = (level + 1, left_index >> 1)
            created[parent_key] = node_hash(left, right)
            stack.append((*parent_key, created[parent_key]))
    return created, [hash_ for _, _, hash_ in stack]


class TreeLevels(Mapping[NodeKey, bytes]):
    """Every perfect subtree of a tree held in memory, one list per level: ``levels[L][i]`` is
    node ``(L, i)``. Lists rather than a dict of tuples, so a tree of millions of leaves fits."""

    __slots__ = ("levels",)

    def __init__(self, levels: list[list[bytes]]) -> None:
        self.levels = levels

    def __getitem__(self, key: NodeKey) -> bytes:
        level, index = key
        if not 0 <= level < len(self.levels) or not 0 <= index < len(self.levels[level]):
            raise KeyError(key)
        return self.levels[level][index]

    def __iter__(self) -> Iterator[NodeKey]:
        for level, hashes in enumerate(self.levels):
            for index in range(len(hashes)):
                yield level, index

    def __len__(self) -> int:
        return sum(len(hashes) for hashes in self.levels)

    @property
    def size(self) -> int:
        return len(self.levels[0]) if self.levels else 0


def all_nodes(leaf_hashes: Sequence[bytes]) -> TreeLevels:
    """Every perfect subtree over ``leaf_hashes``, computed a level at a time."""
    levels = [list(leaf_hashes)]
    while len(levels[-1]) > 1:
        below = levels[-1]
        levels.append([node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)])
    return TreeLevels(levels)


def root_of_leaves(leaf_hashes: Iterable[bytes]) -> bytes:
    """The tree head over ``leaf_hashes``, holding only one hash per level in memory."""
    stack: list[tuple[int, bytes]] = []
    for leaf in leaf_hashes:
        level, hash_ = 0, leaf
        while stack and stack[-1][0] == level:
            hash_ = node_hash(stack.pop()[1], hash_)
            level += 1
        stack.append((level, hash_))
    return _fold([hash_ for _, hash_ in stack])


def _fold(parts: Sequence[bytes]) -> bytes:
    """The head of a subtree from its perfect parts, left to right. RFC 6962 splits off the
    largest power of two on the left, so the smaller parts on the right combine first."""
    if not parts:
        return EMPTY_ROOT
    combined = parts[-1]
    for hash_ in reversed(parts[:-1]):
        combined = node_hash(hash_, combined)
    return combined

"""The Merkle tree: RFC 6962 known answers, proofs read from stored perfect subtrees, and the
incremental append against the whole computation."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.domain import merkle
from bridge.domain.merkle import (
    EMPTY_ROOT,
    NodeKey,
    all_nodes,
    append,
    consistency_parts,
    consistency_proof,
    inclusion_parts,
    inclusion_proof,
    leaf_hash,
    range_parts,
    root,
    root_of_leaves,
    root_parts,
    verify_consistency,
    verify_inclusion,
)

# The RFC 6962 test vectors of certificate-transparency-go and transparency-dev/merkle
# (proof/verify_test.go): eight leaf inputs and the tree heads of their first 1..8.
LEAF_INPUTS = [
    bytes.fromhex(text)
    for text in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
ROOTS = [
    bytes.fromhex(text)
    for text in (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    )
]
# (leaf index, tree size, proof); the Go vectors number leaves from 1.
INCLUSION_PROOFS = [
    (0, 8, ["96a296d2", "5f083f0a", "6b47aaf2"]),
    (5, 8, ["bc1a0643", "ca854ea1", "d37ee418"]),
    (2, 3, ["fac54203"]),
    (1, 5, ["6e340b9c", "5f083f0a", "bc1a0643"]),
]
CONSISTENCY_PROOFS = [
    (1, 8, ["96a296d2", "5f083f0a", "6b47aaf2"]),
    (6, 8, ["0ebc5d34", "ca854ea1", "d37ee418"]),
    (2, 5, ["5f083f0a", "bc1a0643"]),
    (6, 7, ["0ebc5d34", "b08693ec", "d37ee418"]),
]
FULL_HASHES = {
    "96a296d2": "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "5f083f0a": "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
    "6b47aaf2": "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    "bc1a0643": "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    "ca854ea1": "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    "d37ee418": "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "fac54203": "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "6e340b9c": "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "0ebc5d34": "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
    "b08693ec": "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
}
LEAVES = [leaf_hash(data) for data in LEAF_INPUTS]
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


def hashes(prefixes: list[str]) -> list[bytes]:
    return [bytes.fromhex(FULL_HASHES[prefix]) for prefix in prefixes]


def leaves(count: int) -> list[bytes]:
    return [leaf_hash(i.to_bytes(4, "big")) for i in range(count)]


def only(keys: list[NodeKey], nodes: Mapping[NodeKey, bytes]) -> dict[NodeKey, bytes]:
    """The stored nodes a proof is allowed to read: a KeyError means it reads more."""
    return {key: nodes[key] for key in keys}


def flipped(proof: list[bytes], position: int) -> list[bytes]:
    changed = list(proof)
    changed[position] = bytes([changed[position][0] ^ 8]) + changed[position][1:]
    return changed


# -- Known answers ----------------------------------------------------------------------------


def test_hashes_are_domain_separated_sha256() -> None:
    assert leaf_hash(b"") == ROOTS[0]
    assert leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    assert merkle.node_hash(b"a", b"b") == hashlib.sha256(b"\x01ab").digest()
    assert hashlib.sha256(b"").digest() == EMPTY_ROOT


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_of_the_rfc6962_vectors(size: int) -> None:
    assert root(size, all_nodes(LEAVES[:size])) == ROOTS[size - 1]
    assert root_of_leaves(LEAVES[:size]) == ROOTS[size - 1]
    nodes, _ = append(0, [], LEAVES[:size])
    assert root(size, nodes) == ROOTS[size - 1]


def test_the_empty_tree() -> None:
    assert root(0, {}) == EMPTY_ROOT
    assert root_of_leaves([]) == EMPTY_ROOT
    assert root_parts(0) == []
    assert append(0, [], []) == ({}, [])


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_PROOFS)
def test_inclusion_proofs_of_the_rfc6962_vectors(index: int, size: int, proof: list[str]) -> None:
    nodes = all_nodes(LEAVES[:size])
    expected = hashes(proof)
    assert inclusion_proof(index, size, only(inclusion_parts(index, size), nodes)) == expected
    assert verify_inclusion(LEAVES[index], index, size, expected, ROOTS[size - 1])


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_PROOFS)
def test_corrupted_inclusion_proofs_fail(index: int, size: int, proof: list[str]) -> None:
    good, root_hash, leaf = hashes(proof), ROOTS[size - 1], LEAVES[index]
    probes = [
        (leaf, index - 1, size, good, root_hash),
        (leaf, index + 1, size, good, root_hash),
        (leaf, index ^ 2, size, good, root_hash),
        (leaf, index, size * 2, good, root_hash),
        (leaf, index, size // 2, good, root_hash),
        (b"WrongLeaf", index, size, good, root_hash),
        (leaf, index, size, good, EMPTY_ROOT),
        (leaf, index, size, good, SOME_HASH),
        (leaf, index, size, [*good, b""], root_hash),
        (leaf, index, size, [*good, root_hash], root_hash),
        (leaf, index, size, [b"", *good], root_hash),
        (leaf, index, size, [root_hash, *good], root_hash),
        (leaf, index, size, good[:-1], root_hash),
        (leaf, index, size, [good[0], SOME_HASH, *good[1:]], root_hash),
    ]
    probes += [(leaf, index, size, flipped(good, i), root_hash) for i in range(len(good))]
    for probe in probes:
        assert not verify_inclusion(*probe), probe


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY_PROOFS)
def test_consistency_proofs_of_the_rfc6962_vectors(old: int, new: int, proof: list[str]) -> None:
    nodes = all_nodes(LEAVES[:new])
    expected = hashes(proof)
    assert consistency_proof(old, new, only(consistency_parts(old, new), nodes)) == expected
    assert verify_consistency(old, new, ROOTS[old - 1], ROOTS[new - 1], expected)


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY_PROOFS)
def test_corrupted_consistency_proofs_fail(old: int, new: int, proof: list[str]) -> None:
    good, old_root, new_root = hashes(proof), ROOTS[old - 1], ROOTS[new - 1]
    probes = [
        (old - 1, new, old_root, new_root, good),
        (old + 1, new, old_root, new_root, good),
        (old ^ 2, new, old_root, new_root, good),
        (old, new * 2, old_root, new_root, good),
        (old, new // 2, old_root, new_root, good),
        (old, new, b"WrongRoot", new_root, good),
        (old, new, old_root, b"WrongRoot", good),
        (old, new, new_root, old_root, good),
        (old, new, old_root, new_root, []),
        (old, new, old_root, new_root, [*good, b""]),
        (old, new, old_root, new_root, [*good, old_root]),
        (old, new, old_root, new_root, [*good, new_root]),
        (old, new, old_root, new_root, [b"", *good]),
        (old, new, old_root, new_root, [old_root, *good]),
        (old, new, old_root, new_root, [new_root, *good]),
        (old, new, old_root, new_root, [good[0], *good]),
        (old, new, old_root, new_root, good[:-1]),
    ]
    probes += [(old, new, old_root, new_root, flipped(good, i)) for i in range(len(good))]
    for probe in probes:
        assert not verify_consistency(*probe), probe


def test_consistency_at_the_edges() -> None:
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert verify_consistency(0, 5, EMPTY_ROOT, ROOTS[4], [])
    assert verify_consistency(3, 3, ROOTS[2], ROOTS[2], [])
    assert not verify_consistency(3, 3, ROOTS[2], ROOTS[3], [])
    assert not verify_consistency(3, 3, ROOTS[2], ROOTS[2], [EMPTY_ROOT])
    assert not verify_consistency(0, 5, EMPTY_ROOT, ROOTS[4], [EMPTY_ROOT])
    assert not verify_consistency(0, 5, ROOTS[0], ROOTS[4], [])  # not the empty tree's head
    assert not verify_consistency(2, 1, ROOTS[1], ROOTS[0], [])
    assert consistency_proof(0, 8, {}) == []
    assert consistency_proof(8, 8, {}) == []
    with pytest.raises(ValueError, match="cannot extend"):
        consistency_parts(5, 4)


def test_inclusion_at_the_edges() -> None:
    assert verify_inclusion(LEAVES[0], 0, 1, [], ROOTS[0])
    assert not verify_inclusion(LEAVES[0], 0, 0, [], EMPTY_ROOT)
    assert not verify_inclusion(LEAVES[0], 1, 1, [], ROOTS[0])
    assert not verify_inclusion(b"", 0, 1, [], b"")
    with pytest.raises(ValueError, match="not in a tree"):
        inclusion_parts(8, 8)


# -- Perfect subtrees -------------------------------------------------------------------------


def test_a_tree_is_made_of_its_size_in_binary() -> None:
    assert root_parts(1) == [(0, 0)]
    assert root_parts(7) == [(2, 0), (1, 2), (0, 6)]
    assert root_parts(8) == [(3, 0)]
    assert root_parts(13) == [(3, 0), (2, 2), (0, 12)]
    assert range_parts(4, 7) == [(1, 2), (0, 6)]
    assert range_parts(8, 13) == [(2, 2), (0, 12)]
    assert range_parts(5, 5) == []


@pytest.mark.parametrize(("lo", "hi"), [(1, 3), (2, 6), (3, 1), (-1, 2)])
def test_a_range_that_is_not_an_rfc6962_subtree_is_refused(lo: int, hi: int) -> None:
    with pytest.raises(ValueError, match=r"\[-?\d+, \d+\)"):
        range_parts(lo, hi)


def test_proofs_read_only_the_nodes_they_name() -> None:
    # 2^40 leaves: proofs stay O(log n) reads, and never look beyond the tree.
    size = 1 << 40
    assert len(inclusion_parts(size - 1, size)) == 40
    assert len(consistency_parts(size // 2 + 1, size)) <= 2 * 40


# -- Properties: proofs from stored nodes, for every size and every earlier size ----------------


def test_every_proof_of_every_tree_up_to_200_leaves_verifies() -> None:
    for size in range(1, 201):
        tree = all_nodes(leaves(size))
        head = root(size, tree)
        for index in range(size):
            proof = inclusion_proof(index, size, only(inclusion_parts(index, size), tree))
            assert verify_inclusion(tree[(0, index)], index, size, proof, head), (index, size)
        for old in range(size + 1):
            proof = consistency_proof(old, size, only(consistency_parts(old, size), tree))
            assert verify_consistency(old, size, root(old, tree), head, proof), (old, size)


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 260), st.data())
def test_inclusion_proofs_verify_and_nothing_else_does(size: int, data: st.DataObject) -> None:
    tree = all_nodes(leaves(size))
    head = root(size, tree)
    index = data.draw(st.integers(0, size - 1))
    proof = inclusion_proof(index, size, only(inclusion_parts(index, size), tree))
    assert verify_inclusion(tree[(0, index)], index, size, proof, head)
    other = data.draw(st.integers(0, size - 1).filter(lambda i: i != index))
    assert not verify_inclusion(tree[(0, index)], other, size, proof, head)
    if proof:
        position = data.draw(st.integers(0, len(proof) - 1))
        bit = data.draw(st.integers(0, 8 * merkle.HASH_SIZE - 1))
        changed = list(proof)
        changed[position] = _flip(changed[position], bit)
        assert not verify_inclusion(tree[(0, index)], index, size, changed, head)


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 260), st.data())
def test_consistency_proofs_verify_and_nothing_else_does(size: int, data: st.DataObject) -> None:
    tree = all_nodes(leaves(size))
    head = root(size, tree)
    old = data.draw(st.integers(1, size))
    proof = consistency_proof(old, size, only(consistency_parts(old, size), tree))
    assert verify_consistency(old, size, root(old, tree), head, proof)
    if proof:
        position = data.draw(st.integers(0, len(proof) - 1))
        bit = data.draw(st.integers(0, 8 * merkle.HASH_SIZE - 1))
        changed = list(proof)
        changed[position] = _flip(changed[position], bit)
        assert not verify_consistency(old, size, root(old, tree), head, changed)
        other = data.draw(st.integers(1, size - 1).filter(lambda m: m != old))
        assert not verify_consistency(other, size, root(old, tree), head, proof)
    # A different old tree is not extended by this one.
    rewritten = all_nodes([leaf_hash(b"rewritten"), *leaves(size)[1:]])
    if root(old, rewritten) != root(old, tree):
        assert not verify_consistency(old, size, root(old, rewritten), head, proof)


def _flip(hash_: bytes, bit: int) -> bytes:
    changed = bytearray(hash_)
    changed[bit // 8] ^= 1 << (bit % 8)
    return bytes(changed)


# -- Appending --------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 300), st.lists(st.integers(0, 300), max_size=8))
def test_append_in_any_batches_equals_the_whole_tree(total: int, cuts: list[int]) -> None:
    all_leaves = leaves(total)
    bounds = sorted({0, total, *(cut for cut in cuts if cut <= total)})
    stored: dict[NodeKey, bytes] = {}
    frontier: list[bytes] = []
    for start, end in itertools.pairwise(bounds):
        created, frontier = append(start, frontier, all_leaves[start:end])
        assert not created.keys() & stored.keys(), "a perfect subtree is written once"
        stored.update(created)
    tree = all_nodes(all_leaves)
    assert stored == dict(tree)
    assert frontier == [tree[key] for key in root_parts(total)]
    assert root(total, stored) == root_of_leaves(all_leaves)


def test_append_costs_one_hash_per_new_node(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0
    real = merkle.node_hash

    def counting(left: bytes, right: bytes) -> bytes:
        nonlocal calls
        calls += 1
        return real(left, right)

    monkeypatch.setattr(merkle, "node_hash", counting)
    size = 20_000
    created, frontier = append(0, [], leaves(size))
    # Perfect subtrees above the leaves of a tree of n leaves: n - popcount(n).
    assert calls == size - size.bit_count()
    assert len(created) == size + calls
    assert len(frontier) == size.bit_count()


def test_append_refuses_a_frontier_of_another_size() -> None:
    with pytest.raises(ValueError, match="frontier of 2 hashes"):
        append(3, [LEAVES[0]], [LEAVES[1]])


def test_a_large_tree_in_memory() -> None:
    size = (1 << 16) + 3
    tree = all_nodes(leaves(size))
    assert len(tree.levels) == 17
    assert tree.size == size
    assert root(size, tree) == root_of_leaves(leaves(size))
    assert (17, 0) not in tree
    assert (16, 0) in tree

"""A Merkle tree over each writer's chain, hashed as RFC 6962 (Certificate Transparency) does.

Leaf i (0-based) is the entry at sequence i + 1; its data is the entry's 32-byte `entry_hash`
(which covers the header and the body's hash, so a purged body keeps its leaf):

    leaf  = SHA-256(0x00 || entry_hash)
    node  = SHA-256(0x01 || left || right)
    root of n leaves: split at the largest power of two k < n (RFC 6962 section 2.1)

A signed checkpoint carries (writer, size, root), like a C2SP tlog-checkpoint. From the leaves
a writer can prove that one entry is in the tree of a checkpoint (an inclusion proof: log2(n)
hashes, without handing over any other entry) and that a later checkpoint extends an earlier
one (a consistency proof): what a witness checks before it countersigns a new head.

A writer keeps its tree as a *frontier*: the roots of the complete subtrees that make up its
size, largest first (popcount(size) hashes), so appending an entry and signing a root cost
O(log n). Hashes are hex text outside this module.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence

from mash.audit.errors import AuditError

EMPTY_ROOT = hashlib.sha256(b"").hexdigest()


def leaf_hash(entry_hash: str | bytes) -> bytes:
    data = bytes.fromhex(entry_hash) if isinstance(entry_hash, str) else entry_hash
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


# frontier


def extend(frontier: Sequence[str], size: int, entry_hash: str) -> tuple[str, ...]:
    """The frontier of `size` leaves after appending one more."""
    nodes = [bytes.fromhex(h) for h in frontier]
    nodes.append(leaf_hash(entry_hash))
    merged = size  # the bits of `size` say which of the frontier's subtrees are complete pairs
    while merged & 1:
        right = nodes.pop()
        nodes[-1] = node_hash(nodes[-1], right)
        merged >>= 1
    return tuple(n.hex() for n in nodes)


def frontier_root(frontier: Sequence[str]) -> str:
    if not frontier:
        return EMPTY_ROOT
    acc = bytes.fromhex(frontier[-1])
    for h in reversed(frontier[:-1]):
        acc = node_hash(bytes.fromhex(h), acc)
    return acc.hex()


def frontier_of(leaves: Iterable[bytes]) -> list[bytes]:
    """The frontier (as bytes) of leaf hashes given in order."""
    nodes: list[bytes] = []
    for size, leaf in enumerate(leaves):
        nodes.append(leaf)
        merged = size
        while merged & 1:
            right = nodes.pop()
            nodes[-1] = node_hash(nodes[-1], right)
            merged >>= 1
    return nodes


def _fold(nodes: Sequence[bytes]) -> bytes:
    if not nodes:
        return bytes.fromhex(EMPTY_ROOT)
    acc = nodes[-1]
    for h in reversed(nodes[:-1]):
        acc = node_hash(h, acc)
    return acc


def frontier_nodes(frontier: Sequence[str], size: int) -> dict[tuple[int, int], bytes]:
    """The frontier as known subtrees: (start, end) -> hash."""
    out: dict[tuple[int, int], bytes] = {}
    start = 0
    hashes = iter(frontier)
    for bit in reversed(range(size.bit_length())):
        if size >> bit & 1:
            width = 1 << bit
            try:
                out[(start, start + width)] = bytes.fromhex(next(hashes))
            except StopIteration:
                raise AuditError("a tree frontier does not fit its size") from None
            start += width
    return out


class Tree:
    """The leaves of one writer's tree, for roots and proofs. Leaves before `offset` may be
    missing (purged rows); the subtrees in `known` (a purge's frontier) stand in for them."""

    def __init__(self, leaves: Sequence[bytes], offset: int = 0,
                 known: Mapping[tuple[int, int], bytes] | None = None) -> None:
        self.leaves = leaves  # leaf hashes of leaves offset, offset + 1, ...
        self.offset = offset
        self.known = dict(known or {})

    @classmethod
    def of_entries(cls, entry_hashes: Iterable[str], offset: int = 0,
                   known: Mapping[tuple[int, int], bytes] | None = None) -> Tree:
        return cls([leaf_hash(h) for h in entry_hashes], offset, known)

    @property
    def size(self) -> int:
        return self.offset + len(self.leaves)

    def hash(self, start: int, end: int) -> bytes:
        """MTH(D[start:end])."""
        if end > self.size or start >= end:
            raise AuditError(f"the tree has no leaves {start}..{end - 1} (size {self.size})")
        if (start, end) in self.known:
            return self.known[(start, end)]
        if start >= self.offset:
            return _fold(frontier_of(self.leaves[start - self.offset:end - self.offset]))
        if end - start == 1:
            raise AuditError(f"leaf {start} was purged: no proof can reach past the purge")
        k = _split(end - start)
        return node_hash(self.hash(start, start + k), self.hash(start + k, end))

    def root(self, size: int | None = None) -> str:
        size = self.size if size is None else size
        return EMPTY_ROOT if size == 0 else self.hash(0, size).hex()

    def inclusion(self, index: int, size: int) -> list[bytes]:
        """RFC 6962 PATH(index, D[0:size])."""
        if not 0 <= index < size <= self.size:
            raise AuditError(f"leaf {index} is not in a tree of size {size}")
        return self._path(index, 0, size)

    def _path(self, m: int, start: int, end: int) -> list[bytes]:
        n = end - start
        if n == 1:
            return []
        k = _split(n)
        if m < k:
            return [*self._path(m, start, start + k), self.hash(start + k, end)]
        return [*self._path(m - k, start + k, end), self.hash(start, start + k)]

    def consistency(self, old: int, new: int) -> list[bytes]:
        """RFC 6962 PROOF(old, D[0:new])."""
        if not 0 < old <= new <= self.size:
            raise AuditError(f"no consistency proof from size {old} to {new}")
        return self._subproof(old, 0, new, True)

    def _subproof(self, m: int, start: int, end: int, complete: bool) -> list[bytes]:
        n = end - start
        if m == n:
            return [] if complete else [self.hash(start, end)]
        k = _split(n)
        if m <= k:
            return [*self._subproof(m, start, start + k, complete), self.hash(start + k, end)]
        return [*self._subproof(m - k, start + k, end, False), self.hash(start, start + k)]


def verify_inclusion(entry_hash: str, index: int, size: int, proof: Sequence[bytes],
                     root: str) -> bool:
    """RFC 9162 section 2.1.3.2."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf_hash(entry_hash)
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r.hex() == root


def verify_consistency(old: int, old_root: str, new: int, new_root: str,
                       proof: Sequence[bytes]) -> bool:
    """RFC 9162 section 2.1.4.2: the tree of size `new` extends the tree of size `old`."""
    if old == new:
        return not proof and old_root == new_root
    if old == 0:
        return not proof
    if old > new or (not proof and old & (old - 1) != 0):
        return False
    path = list(proof)
    if old & (old - 1) == 0:  # a power of two: the old root is a node of the new tree
        path.insert(0, bytes.fromhex(old_root))
    if not path:
        return False
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr.hex() == old_root and sr.hex() == new_root

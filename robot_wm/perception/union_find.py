"""Union-find (disjoint sets) over the integers 0..n-1: which segments are one thing."""

from __future__ import annotations


class UnionFind:
    """Disjoint sets of 0..n-1 with path halving. ``union(a, b)`` makes b's root the root of a's set, so
    the root a set ends with (what :meth:`find` and :meth:`roots` report) depends on the order of unions."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        """The root of i's set."""
        parent = self.parent
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        """Join a's set to b's (b's root becomes the root of both)."""
        self.parent[self.find(a)] = self.find(b)

    def roots(self) -> list[int]:
        """The root of each element's set, (n,)."""
        return [self.find(i) for i in range(len(self.parent))]

    def groups(self) -> list[list[int]]:
        """The sets as lists of their elements in increasing order, ordered by their smallest element."""
        out: dict[int, list[int]] = {}
        for i in range(len(self.parent)):
            out.setdefault(self.find(i), []).append(i)
        return list(out.values())

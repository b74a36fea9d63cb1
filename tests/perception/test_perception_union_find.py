"""Union-find: sets, roots by union order, groups by smallest element."""

from __future__ import annotations

from robot_wm.perception.union_find import UnionFind


def test_union_joins_sets_and_the_second_root_wins():
    sets = UnionFind(6)
    sets.union(0, 3)
    sets.union(4, 3)
    sets.union(1, 5)
    assert sets.find(0) == sets.find(4) == 3 and sets.find(1) == 5
    assert sets.roots() == [3, 5, 2, 3, 3, 5]
    sets.union(3, 1)  # 0, 3, 4 join 1, 5 under 5
    assert sets.roots() == [5, 5, 2, 5, 5, 5]


def test_groups_are_ordered_by_smallest_member():
    sets = UnionFind(7)
    for a, b in [(5, 2), (6, 1), (1, 4)]:
        sets.union(a, b)
    assert sets.groups() == [[0], [1, 4, 6], [2, 5], [3]]
    assert UnionFind(0).groups() == [] and UnionFind(0).roots() == []


def test_long_chain_is_compressed():
    n = 1000
    sets = UnionFind(n)
    for i in range(n - 1):
        sets.union(i, i + 1)
    assert sets.find(0) == n - 1
    assert sets.parent[0] != 1  # path halving shortened the chain
    assert len(sets.groups()) == 1

"""The tree plan: a row-independent, breadth-first layout of a block of trees.

Shared by the numpy kernels of :mod:`engine.explain.treeshap` and the torch
kernels of :mod:`engine.explain._treeshap_torch`, which both read it and
neither imports the other for it.  A block of trees is concatenated into one
node array (:class:`_Forest`), laid out level by level with its per-node tables
(:class:`_Plan`); :func:`_split_flags` and :func:`_background_bits` say which
way rows go at each split.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.explain._trees import Tree, go_left

# -- plans: row-independent preparation of a block of trees ----------------------------------------


@dataclass(frozen=True, eq=False)
class _Forest:
    """Several trees concatenated into one node array with many roots."""

    tree: Tree
    roots: np.ndarray


def _concat(trees: Sequence[Tree]) -> _Forest:
    """One node array for ``trees``: child indices shifted, one root per tree."""
    offsets = np.cumsum([0] + [t.n_nodes for t in trees])

    def children(attr: str) -> np.ndarray:
        shifted = [np.where(getattr(t, attr) >= 0, getattr(t, attr) + o, -1) for t, o in zip(trees, offsets)]
        return np.concatenate(shifted)

    def joined(attr: str) -> np.ndarray:
        return np.concatenate([getattr(t, attr) for t in trees])

    has_categorical = any(t.categorical is not None for t in trees)
    words = max((t.left_categories.shape[1] for t in trees if t.left_categories is not None), default=8)

    def categorical(attr: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray | None:
        if not has_categorical:
            return None
        out = np.zeros((int(offsets[-1]), *shape), dtype=dtype)
        for t, o in zip(trees, offsets):
            part = getattr(t, attr)
            if part is not None:
                # Bitsets narrower than the widest are padded with zero words (no categories).
                if part.ndim == 2:
                    out[o : o + t.n_nodes, : part.shape[1]] = part
                else:
                    out[o : o + t.n_nodes] = part
        return out

    unknown_left = None
    if any(t.unknown_left is not None for t in trees):
        # A tree without the rule sends unknown categories where missing values go.
        unknown_left = np.concatenate([t.missing_left if t.unknown_left is None else t.unknown_left for t in trees])

    tree = Tree(
        left=children("left"),
        right=children("right"),
        feature=joined("feature"),
        threshold=joined("threshold"),
        missing_left=joined("missing_left"),
        value=joined("value"),
        cover=joined("cover"),
        categorical=categorical("categorical", (), bool),
        left_categories=categorical("left_categories", (words,), np.uint32),
        known_categories=categorical("known_categories", (words,), np.uint32),
        unknown_left=unknown_left,
    )
    return _Forest(tree=tree, roots=offsets[:-1].astype(np.int64))


@dataclass(frozen=True, eq=False)
class _Plan:
    """Breadth-first layout of a block of trees and its per-node tables.

    Nodes are renumbered level by level; within level ``t + 1`` the nodes are
    the (left, right) children of level ``t``'s internal nodes, in their order.

    Attributes
    ----------
    forest: the concatenated trees (original numbering).
    orig: ``(N,)`` original node index of each breadth-first node.
    level_off: ``(T + 2,)`` start of each level in breadth-first numbering.
    internal: per level, breadth-first indices of its internal nodes, in order.
    split_node: ``(N,)`` original index of the parent (the split deciding the edge), -1 at roots.
    is_left: ``(N,)`` whether the node is its parent's left child.
    prev: ``(N,)`` breadth-first index of the previous edge on the same feature
        along the path, or ``N`` (a sentinel row of ones) when there is none.
    edge_feature: ``(N,)`` feature of the edge into the node, -1 at roots.
    leaf_value: ``(N,)`` leaf values (0 at internal nodes).
    z: ``(N,)`` merged zero fraction of the edge's feature at the node.
    z_prev: ``(N,)`` merged zero fraction at ``prev`` (1 when none).
    ratio: ``(N,)`` cover ratio of the edge into the node (1 at roots).
    n_unique: ``(N,)`` distinct features on the root path.
    base: expected value of the block under the path-dependent game.
    """

    forest: _Forest
    orig: np.ndarray
    level_off: np.ndarray
    internal: tuple[np.ndarray, ...]
    split_node: np.ndarray
    is_left: np.ndarray
    prev: np.ndarray
    edge_feature: np.ndarray
    leaf_value: np.ndarray
    z: np.ndarray
    z_prev: np.ndarray
    ratio: np.ndarray
    n_unique: np.ndarray
    base: float

    @property
    def n_nodes(self) -> int:
        return int(self.orig.shape[0])

    @property
    def n_levels(self) -> int:
        return int(self.level_off.shape[0] - 1)

    def level(self, t: int) -> slice:
        return slice(int(self.level_off[t]), int(self.level_off[t + 1]))


def _plan(forest: _Forest) -> _Plan:
    tree = forest.tree
    levels = [forest.roots]
    while True:
        cur = levels[-1]
        inner = cur[tree.left[cur] >= 0]
        if inner.size == 0:
            break
        levels.append(np.stack([tree.left[inner], tree.right[inner]], axis=1).reshape(-1))
    orig = np.concatenate(levels)
    N = orig.shape[0]
    level_off = np.cumsum([0] + [lv.shape[0] for lv in levels])
    internal = tuple(
        np.flatnonzero(tree.left[orig[level_off[t] : level_off[t + 1]]] >= 0) + level_off[t] for t in range(len(levels))
    )

    parent = np.full(N, -1, dtype=np.int64)
    is_left = np.zeros(N, dtype=bool)
    for t in range(1, len(levels)):
        par = internal[t - 1]
        sl = slice(level_off[t], level_off[t + 1])
        parent[sl] = np.repeat(par, 2)
        is_left[sl] = np.tile([True, False], par.shape[0])
    split_node = np.where(parent >= 0, orig[np.maximum(parent, 0)], -1)
    edge_feature = np.where(parent >= 0, tree.feature[np.maximum(split_node, 0)], -1)

    cover = tree.cover[orig]
    # Cover ratio of each edge (the fraction of the parent's training weight that
    # took it); a parent with no weight gives 0 rather than NaN.
    parent_cover = np.where(parent >= 0, cover[np.maximum(parent, 0)], 1.0)
    ratio = np.divide(cover, parent_cover, out=np.zeros(N), where=parent_cover > 0)
    ratio[parent < 0] = 1.0

    # Previous edge on the same feature: walk the root paths level by level,
    # keeping each node's path of breadth-first indices.
    prev = np.full(N, N, dtype=np.int64)
    z = np.ones(N)
    z_prev = np.ones(N)
    n_unique = np.zeros(N, dtype=np.int64)
    reach = np.ones(N)  # product of cover ratios from the root: the node's share of its tree's weight
    path = np.zeros((levels[0].shape[0], 0), dtype=np.int64)
    for t in range(1, len(levels)):
        sl = slice(level_off[t], level_off[t + 1])
        par = parent[sl]
        path = np.concatenate([path[par - level_off[t - 1]], np.arange(sl.start, sl.stop)[:, None]], axis=1)
        f = edge_feature[sl]
        match = edge_feature[path[:, :-1]] == f[:, None]
        has = match.any(axis=1)
        if match.shape[1]:
            last = match.shape[1] - 1 - np.argmax(match[:, ::-1], axis=1)
            pv = np.where(has, path[np.arange(path.shape[0]), last], N)
        else:
            pv = np.full(path.shape[0], N)
        prev[sl] = pv
        zp = np.where(has, z[np.minimum(pv, N - 1)], 1.0)
        z_prev[sl] = zp
        z[sl] = zp * ratio[sl]
        n_unique[sl] = n_unique[par] + (~has)
        reach[sl] = reach[par] * ratio[sl]

    is_leaf = tree.left[orig] < 0
    leaf_value = np.where(is_leaf, tree.value[orig], 0.0)
    # E[f] under the path-dependent game: leaf values weighted by their training share.
    base = float(np.sum(leaf_value * reach))
    return _Plan(
        forest=forest,
        orig=orig,
        level_off=level_off,
        internal=internal,
        split_node=split_node,
        is_left=is_left,
        prev=prev,
        edge_feature=edge_feature,
        leaf_value=leaf_value,
        z=z,
        z_prev=z_prev,
        ratio=ratio,
        n_unique=n_unique,
        base=base,
    )


def _edge_satisfied(plan: _Plan, X: np.ndarray) -> np.ndarray:
    """``o``: whether each row meets every condition on the edge's feature along
    the path to each node, shape ``(N + 1, n)`` bool; the last row (the
    ``prev`` sentinel) is all True, as are the roots."""
    tree = plan.forest.tree
    N = plan.n_nodes
    n = X.shape[0]
    o = np.ones((N + 1, n), dtype=bool)
    splits = np.flatnonzero(tree.left >= 0)
    if splits.size == 0:
        return o
    gl = go_left(tree, X, splits).T  # (n_splits, n)
    pos = np.empty(tree.n_nodes, dtype=np.int64)
    pos[splits] = np.arange(splits.shape[0])
    for t in range(1, plan.n_levels):
        sl = plan.level(t)
        d = gl[pos[plan.split_node[sl]]]
        d ^= ~plan.is_left[sl][:, None]
        d &= o[plan.prev[sl]]
        o[sl] = d
    return o


def _bitsets(flags: np.ndarray) -> np.ndarray:
    """Pack ``(N, r)`` bools into ``(N, W)`` uint64 bitsets over the ``r`` columns."""
    N, r = flags.shape
    W = (r + 63) // 64
    padded = np.zeros((N, W * 64), dtype=bool)
    padded[:, :r] = flags
    bits = np.packbits(padded.reshape(N, W, 8, 8), axis=-1, bitorder="little").reshape(N, W, 8)
    return bits.view(np.uint64).reshape(N, W)


def _split_flags(plan: _Plan, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per internal node and row: whether the row met every earlier split on the
    node's feature along the path (``met``), and whether it goes left.

    Returns the internal nodes ``(M,)`` and two ``(M, n)`` bool arrays.
    """
    o = _edge_satisfied(plan, X)
    internal = np.concatenate(plan.internal) if plan.internal else np.zeros(0, dtype=np.int64)
    left = _left_children(plan)
    # The left child's edge carries the node's feature; its ``prev`` is the earlier split on it.
    met = o[plan.prev[left[internal]]]
    gl = go_left(plan.forest.tree, X, plan.orig[internal]).T
    return internal, met, gl


def _left_children(plan: _Plan) -> np.ndarray:
    """Breadth-first index of each internal node's left child (the right one follows it), -1 at leaves."""
    left = np.full(plan.n_nodes, -1, dtype=np.int64)
    for t in range(plan.n_levels - 1):
        par = plan.internal[t]
        left[par] = plan.level_off[t + 1] + 2 * np.arange(par.shape[0])
    return left


@dataclass(frozen=True, eq=False)
class _BackgroundBits:
    """The background rows' turns in one block of trees, as bitsets over the rows.

    Attributes
    ----------
    met: ``(N, W)`` uint64; bit ``j`` of node ``c``: background row ``j`` met every
        earlier split on ``c``'s feature along the path (zeros at leaves).
    left: ``(N, W)`` uint64; bit ``j``: background row ``j`` goes left at ``c``.
    full: ``(W,)`` uint64 with the first ``r`` bits set.
    n_rows: number of background rows ``r``.
    """

    met: np.ndarray
    left: np.ndarray
    full: np.ndarray
    n_rows: int


def _background_bits(plan: _Plan, B: np.ndarray) -> _BackgroundBits:
    internal, met, gl = _split_flags(plan, B)
    W = (B.shape[0] + 63) // 64
    met_bits = np.zeros((plan.n_nodes, W), dtype=np.uint64)
    left_bits = np.zeros((plan.n_nodes, W), dtype=np.uint64)
    met_bits[internal] = _bitsets(met)
    left_bits[internal] = _bitsets(gl)
    full = _bitsets(np.ones((1, B.shape[0]), dtype=bool))[0]
    return _BackgroundBits(met=met_bits, left=left_bits, full=full, n_rows=int(B.shape[0]))

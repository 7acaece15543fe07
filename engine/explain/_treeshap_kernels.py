"""TreeSHAP's numpy kernels: one block of trees against one chunk of rows.

Private kernels of :mod:`engine.explain.treeshap` (whose docstring derives
both algorithms): the Gauss-Legendre path tables and block of the
path-dependent variant, and the Shapley weights and block of the
interventional variant.  The drivers that plan blocks and run them on threads
stay in :mod:`engine.explain.treeshap`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.explain._treeplan import (
    _BackgroundBits,
    _edge_satisfied,
    _left_children,
    _Plan,
    _split_flags,
)

# -- path-dependent ---------------------------------------------------------------------------------


def _gauss_legendre(m: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of the ``m``-point Gauss-Legendre rule on [0, 1]."""
    x, w = np.polynomial.legendre.leggauss(m)
    return (x + 1.0) / 2.0, w / 2.0


@dataclass(frozen=True, eq=False)
class _PathTables:
    """Row-independent tables of the path-dependent algorithm for one plan.

    Attributes
    ----------
    m: number of Gauss-Legendre nodes.
    ratio: ``(3 N, m)``; row ``3 c + s`` is the factor by which the path product
        changes on entering node ``c`` for a row in state ``s`` (leaf values folded in).
    weights: ``(N, m, 2)`` contribution weights of each edge: column 0 applies in
        states 1 and 2, column 1 in addition in state 2.
    to_feature: ``(F, N - roots)`` sparse 0/1 matrix summing edges by feature.
    row_base: ``(N, 1)`` int64 ``3 c``, the first row of node ``c`` in ``ratio``.
    """

    m: int
    ratio: np.ndarray
    weights: np.ndarray
    to_feature: Any
    row_base: np.ndarray


def _path_tables(plan: _Plan, n_features: int) -> _PathTables:
    import scipy.sparse as sp

    d_max = int(plan.n_unique.max()) if plan.n_nodes else 0
    m = max(1, (d_max + 1) // 2)
    u, w = _gauss_legendre(m)
    u = u[None, :]
    one_u = 1.0 - u
    N = plan.n_nodes
    zp = plan.z_prev[:, None]
    zc = plan.z[:, None]
    has_parent = plan.edge_feature >= 0
    r = plan.ratio[:, None]
    den = one_u * zp + u
    ratio = np.empty((N, 3, m))
    ratio[:, 0] = r
    ratio[:, 1] = one_u * zp * r / den
    ratio[:, 2] = (one_u * zp * r + u) / den
    ratio[~has_parent] = 1.0
    is_leaf = plan.forest.tree.left[plan.orig] < 0
    # Fold each leaf's value into its last factor, so the leaf's product is v_l * P_l.
    ratio[is_leaf] *= plan.leaf_value[is_leaf][:, None, None]

    nu = -1.0 / one_u
    gamma_c = (1.0 - zc) / (one_u * zc + u)
    gamma_p = np.where((plan.prev < N)[:, None], (1.0 - zp) / (one_u * zp + u), 0.0)
    weights = np.empty((N, m, 2))
    weights[:, :, 0] = w * (nu - gamma_p)
    weights[:, :, 1] = w * (gamma_c - nu)
    weights[~has_parent] = 0.0
    first = int(plan.level_off[1])
    edges = N - first
    to_feature = sp.csr_matrix(
        (np.ones(edges), (plan.edge_feature[first:], np.arange(edges))), shape=(n_features, edges)
    )
    return _PathTables(
        m=m,
        ratio=ratio.reshape(N * 3, m),
        weights=weights,
        to_feature=to_feature,
        row_base=(3 * np.arange(N, dtype=np.int64))[:, None],
    )


def _path_dependent_block(
    plan: _Plan, tables: _PathTables, X: np.ndarray, out: np.ndarray, buffers: dict[str, np.ndarray]
) -> None:
    """Add the block's path-dependent SHAP values of rows ``X`` (``(b, F)``) to ``out`` (``(b, F)``).

    ``buffers`` holds reusable work arrays (first-touch page faults of fresh
    arrays would otherwise cost as much as the arithmetic).
    """
    b = X.shape[0]
    N = plan.n_nodes
    m = tables.m
    bm = b * m
    o = _edge_satisfied(plan, X).view(np.uint8)
    # state 0: the row already failed an earlier split on this feature; 1: it
    # fails here for the first time; 2: it meets every split on it so far.
    state = o[plan.prev]
    state += o[:N]
    idx = tables.row_base + state
    # P: path products top-down, then overwritten in place by the bottom-up leaf sums S.
    P = _buffer(buffers, "P", N * bm).reshape(N, b, m)
    tmp = _buffer(buffers, "tmp", N * bm).reshape(N, bm)
    P2 = P.reshape(N, bm)
    P[plan.level(0)] = 1.0
    for t in range(1, plan.n_levels):
        sl = plan.level(t)
        cur = P[sl]
        # mode="clip" keeps numpy from buffering the output; indices are in range.
        np.take(tables.ratio, idx[sl], axis=0, out=cur, mode="clip")
        par = plan.internal[t - 1]
        parents = np.take(P2, par, axis=0, mode="clip", out=tmp[: par.shape[0]])
        cur.reshape(par.shape[0], 2, bm)[...] *= parents[:, None, :]
    # Bottom-up, level by level; each level's edge contributions are taken while
    # its sums are still in cache.
    contrib = np.empty((N, b))
    for t in range(plan.n_levels - 1, 0, -1):
        sl = plan.level(t)
        if t < plan.n_levels - 1:
            pairs = P2[plan.level(t + 1)].reshape(-1, 2 * bm)
            P2[plan.internal[t]] = np.add(pairs[:, :bm], pairs[:, bm:], out=tmp[: pairs.shape[0]])
        R = np.matmul(P[sl], tables.weights[sl])
        s = state[sl]
        c = contrib[sl]
        np.multiply(R[:, :, 0], s >= 1, out=c)
        c += R[:, :, 1] * (s == 2)
    first = int(plan.level_off[1])
    out += (tables.to_feature @ contrib[first:]).T


def _buffer(buffers: dict[str, np.ndarray], name: str, size: int) -> np.ndarray:
    buf = buffers.get(name)
    if buf is None or buf.shape[0] < size:
        buf = np.empty(size)
        buffers[name] = buf
    return buf[:size]


# -- interventional ---------------------------------------------------------------------------------


def _shapley_ab_weights(d: int) -> tuple[np.ndarray, np.ndarray]:
    """Tables ``wa[a, b] = (a-1)! b! / (a+b)!`` and ``wb[a, b] = -a! (b-1)! / (a+b)!``."""
    a = np.arange(d + 1)[:, None].astype(float)
    bb = np.arange(d + 1)[None, :].astype(float)
    lg = np.vectorize(math.lgamma)
    with np.errstate(invalid="ignore"):
        wa = np.where(a >= 1, np.exp(lg(np.maximum(a, 1)) + lg(bb + 1) - lg(a + bb + 1)), 0.0)
        wb = np.where(bb >= 1, -np.exp(lg(a + 1) + lg(np.maximum(bb, 1)) - lg(a + bb + 1)), 0.0)
    return wa, wb


def _interventional_block(
    plan: _Plan, bg: _BackgroundBits, X: np.ndarray, out: np.ndarray, wa: np.ndarray, wb: np.ndarray
) -> None:
    """Add the block's interventional SHAP values of rows ``X`` (``(b, F)``), averaged
    over the background rows described by ``bg``, to ``out`` (``(b, F)``).

    Background rows that have taken the same turns so far behave identically for
    a given row, so a state is (row, node, set of background rows) with the set
    kept as a bitset; a split divides the set by the background rows' turns.
    """
    N = plan.n_nodes
    nb = bg.n_rows
    b = X.shape[0]
    F = out.shape[1]
    W = bg.full.shape[0]
    met_bits, left_bits = bg.met, bg.left
    internal, met_x, gl_x = _split_flags(plan, X)
    # Per node and row: 2-bit codes (bit 0: met the earlier splits, bit 1: goes left).
    code_x: np.ndarray = np.zeros((b, N), dtype=np.uint8)
    code_x[:, internal] = (met_x.T.astype(np.uint8)) | (gl_x.T.astype(np.uint8) << 1)
    code_x = code_x.reshape(-1)
    is_leaf = plan.forest.tree.left[plan.orig] < 0
    left_child = _left_children(plan)

    n_roots = int(plan.level_off[1])
    full = bg.full
    xi = np.repeat(np.arange(b, dtype=np.int64), n_roots)
    node = np.tile(np.arange(n_roots, dtype=np.int64), b)
    mask = np.broadcast_to(full, (node.shape[0], W)).copy()
    a = np.zeros(node.shape[0], dtype=np.int64)
    bc = np.zeros(node.shape[0], dtype=np.int64)
    zero = np.zeros(0, dtype=np.int64)
    # Per level: node, row, background bitset, parent's index in the level above,
    # the change of |A| and |B| on entering the node, and |A|, |B| so far.
    levels: list[tuple[np.ndarray, ...]] = []
    src, da, db = zero, zero, zero
    while True:
        levels.append((node, xi, mask, src, da, db, a, bc))
        inner = np.flatnonzero(~is_leaf[node])
        if inner.size == 0:
            break
        c = node[inner]
        code = code_x[xi[inner] * N + c]
        px = (code & 1).astype(bool)
        gx = (code & 2).astype(bool)
        m = mask[inner]
        # The set shares its history, so either all or none of it met the earlier splits.
        pr = (m & met_bits[c]).any(axis=1)
        ml = m & left_bits[c]
        mr = m & ~left_bits[c]
        same = np.where(gx[:, None], ml, mr)
        other = np.where(gx[:, None], mr, ml)
        other_any = other.any(axis=1)
        lc = left_child[c]
        x_dir = np.where(gx, lc, lc + 1)
        r_dir = np.where(gx, lc + 1, lc)
        # 1: towards the row's side with the background rows that go the same way
        #    (the whole set when the background already failed this feature);
        # 2: the row's side with the others, the feature joining A;
        # 3: the background's side with the others, the feature joining B (if the row can still
        #    satisfy it) or staying in B.
        first = np.where(pr[:, None], same, m)
        k1 = np.flatnonzero(first.any(axis=1) & (px | pr))
        k2 = np.flatnonzero(px & pr & other_any)
        k3 = np.flatnonzero(pr & other_any)
        src = inner[np.concatenate([k1, k2, k3])]
        node = np.concatenate([x_dir[k1], x_dir[k2], r_dir[k3]])
        mask = np.concatenate([first[k1], other[k2], other[k3]])
        da = np.zeros(src.shape[0], dtype=np.int64)
        da[k1.shape[0] : k1.shape[0] + k2.shape[0]] = 1
        db = np.zeros(src.shape[0], dtype=np.int64)
        db[k1.shape[0] + k2.shape[0] :] = px[k3]
        xi = xi[src]
        a = a[src] + da
        bc = bc[src] + db
    total = np.zeros(F * b)
    sqa_below: np.ndarray | None = None
    sqb_below: np.ndarray | None = None
    for depth in range(len(levels) - 1, 0, -1):
        node, xi, mask, src, da, db, a, bc = levels[depth]
        leaf = np.flatnonzero(is_leaf[node])
        sqa = np.zeros(node.shape[0])
        sqb = np.zeros(node.shape[0])
        weight = plan.leaf_value[node[leaf]] * np.bitwise_count(mask[leaf]).sum(axis=1)
        sqa[leaf] = weight * wa[a[leaf], bc[leaf]]
        sqb[leaf] = weight * wb[a[leaf], bc[leaf]]
        if sqa_below is not None and sqb_below is not None:
            sqa += sqa_below
            sqb += sqb_below
        # An edge credits its feature with the leaves below whose last split on it is this edge.
        hit = np.flatnonzero(da | db)
        contrib = da[hit] * sqa[hit] + db[hit] * sqb[hit]
        total += np.bincount(plan.edge_feature[node[hit]] * b + xi[hit], weights=contrib, minlength=F * b)
        n_up = levels[depth - 1][0].shape[0]
        sqa_below = np.bincount(src, weights=sqa, minlength=n_up)
        sqb_below = np.bincount(src, weights=sqb, minlength=n_up)
    out += total.reshape(F, b).T / nb

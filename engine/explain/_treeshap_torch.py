"""TreeSHAP on a torch device (a CUDA GPU when there is one), both variants.

The same algorithms and tables as the numpy blocks in :mod:`engine.explain._treeshap_kernels`,
as float64 torch tensors, so a GPU does the heavy part:

- path-dependent: path products top-down and leaf sums bottom-up, one tensor
  operation per tree level over a whole block of trees and rows.  The edge
  tests run on the device for numeric splits; categorical splits of histogram
  gradient boosting models use the numpy rule and are copied over.
- interventional: the expansion of (row, node, bitset of background rows)
  states level by level, on the device; the row/background split flags come
  from the numpy code.

Every sum is taken in a fixed order (no atomic scatter-adds, whose order
changes from run to run on a GPU), so the same inputs give the same bits; the
interventional variant even gives numpy's bits.

torch is imported inside the functions only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["TorchPathBlock", "torch_path_block"]

#: Elements of the largest float64 work tensor of one (block, row chunk) unit on a GPU (~400 MiB).
GPU_WORK_ELEMENTS = 50_000_000


@dataclass(frozen=True, eq=False)
class TorchPathBlock:
    """A planned block of trees with its path-dependent tables on ``device``."""

    device: Any
    n_nodes: int
    m: int
    level_off: tuple[int, ...]
    internal: tuple[Any, ...]  # per level: long tensor of breadth-first internal nodes
    split_pos: Any  # (N,) long: the edge's deciding split among the block's splits (0 at roots)
    is_right: Any  # (N, 1) bool
    prev: Any  # (N,) long, N = the all-True sentinel row
    ratio: Any  # (3N, m) float64
    weights: Any  # (N, m, 2) float64
    row_base: Any  # (N, 1) long
    by_feature: tuple[tuple[int, Any], ...]  # (feature, long tensor of its edges among the non-root ones)
    first_edge: int
    # numeric split tests on the device
    split_feature: Any  # (S,) long
    split_threshold: Any  # (S,) float64
    split_missing_left: Any  # (S,) bool
    # categorical splits (numpy, evaluated on the host): positions among the splits and the tree
    categorical_pos: np.ndarray
    tree: Any
    splits: np.ndarray
    rows_per_unit: int


def torch_path_block(plan: Any, tables: Any, n_rows: int, device: Any) -> TorchPathBlock:
    """Move a block's plan and path tables to ``device`` (see :mod:`engine.explain.treeshap`)."""
    import torch

    def t(a: np.ndarray, dtype: Any) -> Any:
        return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=device)

    tree = plan.forest.tree
    splits = np.flatnonzero(tree.left >= 0)
    pos = np.zeros(tree.n_nodes, dtype=np.int64)
    pos[splits] = np.arange(splits.shape[0])
    split_pos = np.where(plan.split_node >= 0, pos[np.maximum(plan.split_node, 0)], 0)
    categorical = tree.categorical[splits] if tree.categorical is not None else np.zeros(splits.shape[0], bool)
    first = int(plan.level_off[1]) if plan.n_levels > 1 else plan.n_nodes
    rows = int(max(1, min(n_rows, GPU_WORK_ELEMENTS // max(plan.n_nodes * tables.m, 1))))
    return TorchPathBlock(
        device=device,
        n_nodes=plan.n_nodes,
        m=tables.m,
        level_off=tuple(int(v) for v in plan.level_off),
        internal=tuple(t(a, torch.long) for a in plan.internal),
        split_pos=t(split_pos, torch.long),
        is_right=t(~plan.is_left[:, None], torch.bool),
        prev=t(plan.prev, torch.long),
        ratio=t(tables.ratio, torch.float64),
        weights=t(tables.weights, torch.float64),
        row_base=t(tables.row_base, torch.long),
        by_feature=tuple(
            (int(f), t(np.flatnonzero(plan.edge_feature[first:] == f), torch.long))
            for f in np.unique(plan.edge_feature[first:])
        ),
        first_edge=first,
        split_feature=t(tree.feature[splits], torch.long),
        split_threshold=t(tree.threshold[splits], torch.float64),
        split_missing_left=t(tree.missing_left[splits], torch.bool),
        categorical_pos=np.flatnonzero(categorical),
        tree=tree,
        splits=splits,
        rows_per_unit=rows,
    )


def _go_left(block: TorchPathBlock, X: np.ndarray, Xt: Any) -> Any:
    """``(S, b)`` bool: whether each row goes left at each of the block's splits."""
    import torch

    x = Xt[:, block.split_feature].T  # (S, b)
    left = torch.where(torch.isnan(x), block.split_missing_left[:, None], x <= block.split_threshold[:, None])
    if block.categorical_pos.size:
        from engine.explain._trees import go_left

        nodes = block.splits[block.categorical_pos]
        host = go_left(block.tree, X, nodes).T  # (C, b), scikit-learn's category rules
        left[torch.as_tensor(block.categorical_pos, device=block.device)] = torch.as_tensor(host, device=block.device)
    return left


def path_dependent_rows(block: TorchPathBlock, X: np.ndarray, n_features: int) -> np.ndarray:
    """The block's path-dependent SHAP values ``(b, F)`` of the prepared rows ``X`` ``(b, F)``."""
    import torch

    device = block.device
    Xt = torch.as_tensor(np.ascontiguousarray(X), dtype=torch.float64, device=device)
    b = X.shape[0]
    N, m = block.n_nodes, block.m
    bm = b * m
    out = torch.zeros((n_features, b), dtype=torch.float64, device=device)
    if block.split_feature.numel() == 0 or N == block.first_edge:
        return out.T.cpu().numpy()
    gl = _go_left(block, X, Xt)

    # o: whether each row meets every condition on the edge's feature along the path
    # to each node; row N is the all-True sentinel for "no earlier split on it".
    o = torch.ones((N + 1, b), dtype=torch.bool, device=device)
    levels = len(block.level_off) - 1
    for t in range(1, levels):
        lo, hi = block.level_off[t], block.level_off[t + 1]
        d = gl[block.split_pos[lo:hi]] ^ block.is_right[lo:hi]
        o[lo:hi] = d & o[block.prev[lo:hi]]
    o8 = o.to(torch.uint8)
    state = o8[block.prev] + o8[:N]  # 0: failed earlier; 1: fails here first; 2: meets all so far
    idx = block.row_base + state  # (N, b)

    P = torch.empty((N, b, m), dtype=torch.float64, device=device)
    P2 = P.view(N, bm)
    P[block.level_off[0] : block.level_off[1]] = 1.0
    for t in range(1, levels):
        lo, hi = block.level_off[t], block.level_off[t + 1]
        par = block.internal[t - 1]
        cur = block.ratio[idx[lo:hi]]  # (len, b, m)
        cur.view(par.shape[0], 2, bm).mul_(P2[par][:, None, :])
        P[lo:hi] = cur
    contrib = torch.zeros((N, b), dtype=torch.float64, device=device)
    for t in range(levels - 1, 0, -1):
        lo, hi = block.level_off[t], block.level_off[t + 1]
        if t < levels - 1:
            nlo, nhi = block.level_off[t + 1], block.level_off[t + 2]
            pairs = P2[nlo:nhi].view(-1, 2 * bm)
            P2[block.internal[t]] = pairs[:, :bm] + pairs[:, bm:]
        R = torch.bmm(P[lo:hi], block.weights[lo:hi])  # (len, b, 2)
        s = state[lo:hi]
        contrib[lo:hi] = R[:, :, 0] * (s >= 1) + R[:, :, 1] * (s == 2)
    # One sum per feature rather than index_add_, whose CUDA kernel adds in a different order on every
    # run: the same inputs must give the same bits.
    edges = contrib[block.first_edge :]
    for feature, which in block.by_feature:
        out[feature] = edges[which].sum(dim=0)
    return out.T.cpu().numpy()


# -- interventional ------------------------------------------------------------------------------------

#: (row, background) pairs per unit of the interventional variant on a GPU.
GPU_PAIRS_PER_UNIT = 2_000_000


@dataclass(frozen=True, eq=False)
class TorchInterventionalBlock:
    """One tree's plan and its background bitsets on ``device`` (bit patterns held as int64 words)."""

    device: Any
    plan: Any  # the tree's plan; its node count and edge features are read from it
    n_roots: int
    n_background: int
    is_leaf: Any  # (N,) bool
    left_child: Any  # (N,) long
    leaf_value: Any  # (N,) float64
    met_bits: Any  # (N, W) int64
    left_bits: Any  # (N, W) int64
    full: Any  # (W,) int64
    wa: Any  # (F+1, F+1) float64
    wb: Any
    popcount: Any  # (256,) long: set bits of each byte


def torch_interventional_block(
    plan: Any, bits: Any, wa: np.ndarray, wb: np.ndarray, device: Any
) -> TorchInterventionalBlock:
    """Move one tree's plan and background bitsets (see :mod:`engine.explain.treeshap`) to ``device``."""
    import torch

    from engine.explain._treeplan import _left_children

    def t(a: np.ndarray, dtype: Any) -> Any:
        return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=device)

    is_leaf = plan.forest.tree.left[plan.orig] < 0
    return TorchInterventionalBlock(
        device=device,
        plan=plan,
        n_roots=int(plan.level_off[1]),
        n_background=int(bits.n_rows),
        is_leaf=t(is_leaf, torch.bool),
        left_child=t(_left_children(plan), torch.long),
        leaf_value=t(plan.leaf_value, torch.float64),
        met_bits=t(bits.met.view(np.int64), torch.long),
        left_bits=t(bits.left.view(np.int64), torch.long),
        full=t(bits.full.view(np.int64), torch.long),
        wa=t(wa, torch.float64),
        wb=t(wb, torch.float64),
        popcount=t(np.array([bin(i).count("1") for i in range(256)]), torch.long),
    )


def interventional_rows(block: TorchInterventionalBlock, X: np.ndarray, n_features: int) -> np.ndarray:
    """The tree's interventional SHAP values ``(b, F)`` of the prepared rows ``X``, averaged over the background.

    The same state expansion as the numpy block (row, node, bitset of the
    background rows that took the same turns), on the device.  The sums are
    kept in the numpy block's order, so the numbers are the same to the bit:
    a parent collects its children segment by segment (no index repeats
    within a segment), and the per-feature totals, whose keys repeat, are
    added up on the host with ``numpy.bincount``.
    """
    import torch

    from engine.explain._treeplan import _split_flags

    device = block.device
    N, b, F = block.plan.n_nodes, X.shape[0], n_features
    internal, met_x, gl_x = _split_flags(block.plan, X)
    code_host = np.zeros((b, N), dtype=np.uint8)
    code_host[:, internal] = (met_x.T.astype(np.uint8)) | (gl_x.T.astype(np.uint8) << 1)
    code_x = torch.as_tensor(code_host.reshape(-1), device=device)

    def nonzero(flags: Any) -> Any:
        return torch.nonzero(flags, as_tuple=False).flatten()

    W = block.full.shape[0]
    xi = torch.arange(b, device=device).repeat_interleave(block.n_roots)
    node = torch.arange(block.n_roots, device=device).repeat(b)
    mask = block.full.expand(node.shape[0], W).clone()
    a = torch.zeros(node.shape[0], dtype=torch.long, device=device)
    bc = torch.zeros_like(a)
    empty = torch.zeros(0, dtype=torch.long, device=device)
    # Per level: node, row, bitset, the parent segments (parent positions, start, stop), change of |A|, |B|, |A|, |B|.
    levels: list[tuple[Any, ...]] = []
    segments: list[tuple[Any, int, int]] = []
    da, db = empty, empty
    while True:
        levels.append((node, xi, mask, segments, da, db, a, bc))
        inner = nonzero(~block.is_leaf[node])
        if inner.numel() == 0:
            break
        c = node[inner]
        code = code_x[xi[inner] * N + c]
        px = (code & 1).bool()
        gx = (code & 2).bool()
        m = mask[inner]
        pr = ((m & block.met_bits[c]) != 0).any(dim=1)
        left_bits = block.left_bits[c]
        ml = m & left_bits
        mr = m & ~left_bits
        same = torch.where(gx[:, None], ml, mr)
        other = torch.where(gx[:, None], mr, ml)
        other_any = (other != 0).any(dim=1)
        lc = block.left_child[c]
        x_dir = torch.where(gx, lc, lc + 1)
        r_dir = torch.where(gx, lc + 1, lc)
        first = torch.where(pr[:, None], same, m)
        k1 = nonzero(((first != 0).any(dim=1)) & (px | pr))
        k2 = nonzero(px & pr & other_any)
        k3 = nonzero(pr & other_any)
        n1, n2 = k1.numel(), k2.numel()
        segments = [(inner[k1], 0, n1), (inner[k2], n1, n1 + n2), (inner[k3], n1 + n2, n1 + n2 + k3.numel())]
        src = torch.cat([inner[k1], inner[k2], inner[k3]])
        node = torch.cat([x_dir[k1], x_dir[k2], r_dir[k3]])
        mask = torch.cat([first[k1], other[k2], other[k3]])
        da = torch.zeros(src.shape[0], dtype=torch.long, device=device)
        da[n1 : n1 + n2] = 1
        db = torch.zeros_like(da)
        db[n1 + n2 :] = px[k3].long()
        xi = xi[src]
        a = a[src] + da
        bc = bc[src] + db

    total = np.zeros(F * b)
    below_a: Any = None
    below_b: Any = None
    for depth in range(len(levels) - 1, 0, -1):
        node, xi, mask, segments, da, db, a, bc = levels[depth]
        leaf = nonzero(block.is_leaf[node])
        sqa = torch.zeros(node.shape[0], dtype=torch.float64, device=device)
        sqb = torch.zeros_like(sqa)
        counts = block.popcount[mask[leaf].contiguous().view(torch.uint8).long()].sum(dim=1)
        weight = block.leaf_value[node[leaf]] * counts
        sqa[leaf] = weight * block.wa[a[leaf], bc[leaf]]
        sqb[leaf] = weight * block.wb[a[leaf], bc[leaf]]
        if below_a is not None:
            sqa += below_a
            sqb += below_b
        hit = nonzero((da | db) != 0)
        contrib = da[hit] * sqa[hit] + db[hit] * sqb[hit]
        keys = block.plan.edge_feature[node[hit].cpu().numpy()] * b + xi[hit].cpu().numpy()
        total += np.bincount(keys, weights=contrib.cpu().numpy(), minlength=F * b)
        n_up = levels[depth - 1][0].shape[0]
        below_a = torch.zeros(n_up, dtype=torch.float64, device=device)
        below_b = torch.zeros_like(below_a)
        for parents, lo, hi in segments:  # no parent twice within a segment: plain, ordered adds
            below_a[parents] = below_a[parents] + sqa[lo:hi]
            below_b[parents] = below_b[parents] + sqb[lo:hi]
    return total.reshape(F, b).T / block.n_background

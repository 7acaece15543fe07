"""Path-dependent TreeSHAP on a torch device (a CUDA GPU when there is one).

The same algorithm and the same tables as the numpy blocks in
:mod:`engine.explain.treeshap` — path products top-down, leaf sums bottom-up,
one tensor operation per tree level over a whole block of trees and rows — in
float64 torch tensors, so a GPU does the level sweeps.  A block's tables are
moved to the device once; rows go in chunks sized to the device's work budget.
The edge tests (does a row meet the split deciding this edge?) run on the
device for numeric splits; categorical splits of histogram gradient boosting
models use the numpy rule and are copied over.

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
        left[torch.as_tensor(block.categorical_pos, device=block.device)] = torch.as_tensor(
            host, device=block.device
        )
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

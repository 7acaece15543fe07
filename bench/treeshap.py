"""Exact TreeSHAP against shap.TreeExplainer: speed and agreement on two forests.

``python -m bench.treeshap`` explains P(class 1) of two random forests with
path-dependent TreeSHAP (shap's default without background data):

(a) breast cancer (569 rows, 30 features), ``RandomForestClassifier(100)``;
    1000 rows drawn with replacement from the table;
(b) ``make_classification`` 100 000 rows x 30 features, ``RandomForestClassifier``
    with 100 fully grown trees (about 11 000 nodes and depth 40-50 each);
    the first 1000 rows.

Probity runs ``engine.explain.treeshap.tree_model_shap_values`` on the trees
extracted from the fitted forest (extraction included in the timing) with its
default worker threads (the free cores, engine.explain._predict.job_threads:
two on a quiet two-core machine); shap runs
``TreeExplainer(model).shap_values(X, check_additivity=False)``, its C++ code,
single-threaded.  After a warm-up of each on a few rows, the two alternate for
``--runs`` timed runs in one process; the table gives the median and min-max
wall time, the ratio of medians (shap / Probity: above 1 means Probity is
faster), the same for CPU time (``time.process_time``, all threads of the
process; the steadier comparison on a busy machine), and the largest absolute
difference between the two answers, which must stay within 1e-6.

Case (b) is slow for shap (about half a second per row on the reference
machine, so ~9 minutes a run); ``--rows-b`` shrinks it for a quick look.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["main"]

TOLERANCE = 1e-6


@dataclass
class _Case:
    name: str
    model: Any
    X: np.ndarray
    nodes_per_tree: float
    max_depth: int


@dataclass
class _Timing:
    wall: list[float]
    cpu: list[float]


def _fmt(times: Sequence[float]) -> str:
    return f"{statistics.median(times):.3g} s ({min(times):.3g}–{max(times):.3g})"


def _timed(fn: Callable[[], np.ndarray]) -> tuple[np.ndarray, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def _case_a(rows: int, seed: int) -> _Case:
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier

    X, y = load_breast_cancer(return_X_y=True)
    model = RandomForestClassifier(n_estimators=100, random_state=seed).fit(X, y)
    pick = np.random.default_rng(seed).integers(0, X.shape[0], size=rows)
    return _describe(f"(a) breast cancer, RF(100), {rows} rows", model, X[pick])


def _case_b(rows: int, seed: int) -> _Case:
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier

    X, y = make_classification(n_samples=100_000, n_features=30, random_state=seed)
    model = RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=os.cpu_count()).fit(X, y)
    model.set_params(n_jobs=None)
    return _describe(f"(b) make_classification 100k x 30, RF(100) fully grown, {rows} rows", model, X[:rows])


def _describe(name: str, model: Any, X: np.ndarray) -> _Case:
    nodes = float(np.mean([e.tree_.node_count for e in model.estimators_]))
    depth = int(max(e.tree_.max_depth for e in model.estimators_))
    return _Case(name=name, model=model, X=X, nodes_per_tree=nodes, max_depth=depth)


def _run_case(case: _Case, runs: int, device: str = "cpu") -> tuple[_Timing, _Timing, float]:
    import shap

    from engine.explain._trees import extract_tree_model
    from engine.explain.treeshap import tree_model_shap_values

    explainer = shap.TreeExplainer(case.model)

    def with_shap(X: np.ndarray) -> np.ndarray:
        return np.asarray(explainer.shap_values(X, check_additivity=False))[..., 1]

    def with_probity(X: np.ndarray) -> np.ndarray:
        trees = extract_tree_model(case.model, class_index=1)
        return tree_model_shap_values(trees, X, torch_device=None if device == "cpu" else device)[0]

    warm = case.X[: min(10, case.X.shape[0])]
    with_shap(warm)
    with_probity(warm)
    shap_t = _Timing([], [])
    ours_t = _Timing([], [])
    worst = 0.0
    for i in range(runs):
        expected, wall, cpu = _timed(lambda: with_shap(case.X))
        shap_t.wall.append(wall)
        shap_t.cpu.append(cpu)
        got, wall, cpu = _timed(lambda: with_probity(case.X))
        ours_t.wall.append(wall)
        ours_t.cpu.append(cpu)
        worst = max(worst, float(np.max(np.abs(got - expected))))
        print(
            f"  run {i + 1}/{runs}: shap {shap_t.wall[-1]:.3g} s, Probity {ours_t.wall[-1]:.3g} s",
            file=sys.stderr,
            flush=True,
        )
    return shap_t, ours_t, worst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.treeshap", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each, alternating (default 5)")
    parser.add_argument("--rows-a", type=int, default=1000, help="rows explained in case (a) (default 1000)")
    parser.add_argument("--rows-b", type=int, default=1000, help="rows explained in case (b) (default 1000)")
    parser.add_argument("--cases", default="ab", help="which cases to run: a, b or ab (default ab)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data and the forests")
    parser.add_argument(
        "--device",
        default="cpu",
        help="where Probity's path-dependent sweeps run: cpu (numpy, default) or cuda (torch)",
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    warnings.filterwarnings("ignore", message="X does not have valid feature names")
    builders = {"a": lambda: _case_a(args.rows_a, args.seed), "b": lambda: _case_b(args.rows_b, args.seed)}
    lines = [
        "| case | trees (nodes, depth) | shap.TreeExplainer | Probity | speed ratio | CPU ratio | max abs diff |",
        "|---|---|---|---|---|---|---|",
    ]
    status = 0
    for key in args.cases:
        if key not in builders:
            parser.error(f"unknown case {key!r}; choose from a, b")
        print(f"building case {key} ...", file=sys.stderr, flush=True)
        case = builders[key]()
        print(f"timing {case.name} ...", file=sys.stderr, flush=True)
        shap_t, ours_t, worst = _run_case(case, args.runs, args.device)
        ratio = statistics.median(shap_t.wall) / statistics.median(ours_t.wall)
        cpu_ratio = statistics.median(shap_t.cpu) / statistics.median(ours_t.cpu)
        ok = worst <= TOLERANCE
        status |= 0 if ok else 1
        lines.append(
            f"| {case.name} | 100 ({case.nodes_per_tree:.0f}, {case.max_depth}) | {_fmt(shap_t.wall)} | "
            f"{_fmt(ours_t.wall)} | {ratio:.2f}x | {cpu_ratio:.2f}x | {worst:.1e}{'' if ok else ' FAIL'} |"
        )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print("\n".join(lines))
    print(
        f"\n{args.runs} alternating runs after a warm-up; wall time median (min–max); ratios are shap / Probity "
        f"medians. {os.cpu_count()} CPUs, load average {load:.1f}; Probity on {args.device}."
    )
    return status


if __name__ == "__main__":
    raise SystemExit(main())

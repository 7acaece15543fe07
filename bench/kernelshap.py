"""KernelSHAP against shap.KernelExplainer: speed and accuracy on one model.

``python -m bench.kernelshap`` fits a random forest (100 trees) on the
breast-cancer table (569 rows, 30 numeric features), summarises the table into
a weighted background of 100 rows with Probity's k-means, and explains the
first rows with

- Probity: ``engine.explain.kernelshap.run`` end to end (background summary,
  model calls through the SklearnModel adapter on DataFrames, constrained
  solve, bootstrap standard errors), and
- shap: ``KernelExplainer(f, background, link="identity")`` with the *same*
  weighted background rows (a ``DenseData`` carrying the cluster weights),
  ``nsamples`` equal to Probity's coalition budget and ``l1_reg=False``;
  ``f`` is the forest's ``predict_proba`` on numpy arrays, shap's usual call.

Both explain P(class 1).  After one warm-up of each, the two alternate for
``--runs`` timed runs in one process; the table gives median and min-max wall
time and the ratio of medians.  Accuracy is the relative L2 error (Frobenius
norm over rows x features) against exact interventional TreeSHAP on the same
weighted background (``shap.TreeExplainer`` with the background rows repeated
by their integer weights, no subsampling).  shap draws coalitions from numpy's
global random state, which this bench does not seed, so its error is reported
as median and range over the runs.

The timings share the machine with whatever else runs there, so the table
also gives each run's CPU time (``time.process_time``, all threads of this
process) and the load average; on a busy machine the CPU-time ratio is the
steadier comparison.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["main"]


def _rel_l2(values: np.ndarray, oracle: np.ndarray) -> float:
    return float(np.linalg.norm(values - oracle) / np.linalg.norm(oracle))


def _fmt_times(times: Sequence[float]) -> str:
    return f"{statistics.median(times):.2f} s ({min(times):.2f}–{max(times):.2f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.kernelshap", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20, help="rows to explain (default 20)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each, alternating (default 5)")
    parser.add_argument("--coalitions", type=int, default=2108, help="coalition budget / shap nsamples")
    parser.add_argument("--background", type=int, default=100, help="background rows (default 100)")
    parser.add_argument("--seed", type=int, default=0, help="Probity's job seed")
    args = parser.parse_args(argv)

    import shap
    from shap.utils._legacy import DenseData
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier

    from engine.explain.kernelshap import background_for, run
    from engine.inputs import AuditInputs
    from engine.jobs import JobContext
    from engine.models.sklearn_adapter import SklearnModel
    from engine.schema import Roles

    warnings.filterwarnings("ignore", message="X does not have valid feature names")
    data = load_breast_cancer(as_frame=True)
    X: pd.DataFrame = data.data
    frame = X.assign(target=data.target)
    rf = RandomForestClassifier(n_estimators=100, random_state=0).fit(X, data.target)
    inputs = AuditInputs(frame=frame, roles=Roles(target="target", features=tuple(X.columns)), model=SklearnModel(rf))
    rows = list(range(args.rows))
    ctx = JobContext(seed=args.seed)

    background = background_for(inputs, ctx=ctx, background_size=args.background)
    X_rows = X.iloc[rows].to_numpy()
    dense = DenseData(background.frame.to_numpy(dtype=np.float64), list(X.columns), None, background.weights.copy())
    explainer = shap.KernelExplainer(lambda A: rf.predict_proba(A)[:, 1], dense, link="identity")

    # Exact reference: interventional TreeSHAP on the same weighted background.
    counts = background.weights.astype(int)
    if not np.array_equal(counts, background.weights):
        raise RuntimeError("background weights are not whole row counts")
    expanded = background.frame.loc[np.repeat(np.arange(background.size), counts)].reset_index(drop=True)
    masker = shap.maskers.Independent(expanded, max_samples=len(expanded))
    tree = shap.TreeExplainer(rf, data=masker, feature_perturbation="interventional")
    oracle = tree.shap_values(X.iloc[rows], check_additivity=False)[:, :, 1]

    def ours() -> np.ndarray:
        result = run(inputs, ctx=ctx, rows=rows, n_coalitions=args.coalitions, background_size=args.background)
        return np.asarray(result.values)

    def theirs() -> np.ndarray:
        values = explainer.shap_values(X_rows, nsamples=args.coalitions, l1_reg=False, silent=True)
        return np.asarray(values)

    ours()
    theirs()
    load_before = os.getloadavg()[0]
    times: dict[str, list[float]] = {"probity": [], "shap": []}
    cpu: dict[str, list[float]] = {"probity": [], "shap": []}
    errors: dict[str, list[float]] = {"probity": [], "shap": []}
    for _ in range(args.runs):
        for name, fn in (("probity", ours), ("shap", theirs)):
            started, cpu_started = time.perf_counter(), time.process_time()
            values = fn()
            times[name].append(time.perf_counter() - started)
            cpu[name].append(time.process_time() - cpu_started)
            errors[name].append(_rel_l2(values, oracle))
    load_after = os.getloadavg()[0]

    result = run(inputs, ctx=ctx, rows=rows, n_coalitions=args.coalitions, background_size=args.background)
    ratio = statistics.median(times["shap"]) / statistics.median(times["probity"])
    cpu_ratio = statistics.median(cpu["shap"]) / statistics.median(cpu["probity"])
    print(
        f"KernelSHAP, breast cancer RF(100), {len(rows)} rows x {X.shape[1]} features, "
        f"{args.coalitions} coalitions, background {background.size} weighted k-means rows, {args.runs} runs, "
        f"{os.cpu_count()} CPUs, load average {load_before:.1f} before / {load_after:.1f} after\n"
    )
    print(
        "| explainer | wall time, median (min–max) | CPU time, median (min–max) "
        "| rel. L2 error vs exact TreeSHAP, median (min–max) |"
    )
    print("|---|---|---|---|")
    for name, label in (("probity", "Probity kernelshap"), ("shap", f"shap {shap.__version__} KernelExplainer")):
        e = errors[name]
        print(
            f"| {label} | {_fmt_times(times[name])} | {_fmt_times(cpu[name])} "
            f"| {statistics.median(e):.2%} ({min(e):.2%}–{max(e):.2%}) |"
        )
    print(f"\nspeed-up (shap median / Probity median): wall {ratio:.2f}x, CPU {cpu_ratio:.2f}x")
    print(
        f"Probity: exact={bool(result.summary['exact'])}, coalitions={int(result.summary['n_coalitions'])}, "
        f"model rows={int(result.summary['model_rows']):,}, max additivity error="
        f"{result.summary['max_additivity_error']:.1e}, max bootstrap SE={result.summary['max_standard_error']:.4f}, "
        f"base value={result.base_values[0]:.6f} (TreeSHAP {float(np.ravel(tree.expected_value)[1]):.6f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

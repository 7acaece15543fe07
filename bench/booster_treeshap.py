"""Exact TreeSHAP on XGBoost and LightGBM boosters against each library's own pred_contribs.

``python -m bench.booster_treeshap`` trains, on ``make_classification`` data
(100 000 rows x 20 features, 5% of one feature missing (XGBoost only, see
``_models``), one pandas ``category`` column of 20 levels), a binary XGBoost model (100 rounds, ``max_depth=8``,
partition splits on the category) and a LightGBM model (100 rounds,
``max_depth=8``, 255 leaves at most, the category as ``categorical_feature``);
both are saved to their own files and loaded through
``engine.models.loading.load_model``.  It then explains the first ``--rows``
rows (default all 100 000) in margin space with

- Probity: path-dependent TreeSHAP end to end (``booster_tree_model``: the
  trees read from the library; ``booster_matrix``: the library's input matrix;
  ``tree_model_shap_values`` on ``--threads`` worker threads), and
- the library: XGBoost ``Booster.predict(DMatrix(frame), pred_contribs=True)``
  with ``nthread=--threads``; LightGBM ``Booster.predict(frame,
  pred_contrib=True, num_threads=--threads)``.

After one warm-up of each on a few rows, the two alternate for ``--runs`` timed
runs in one process; the table gives median (min-max) wall and CPU time and the
ratio of medians (library / Probity: above 1 means Probity is faster).  The
largest difference between the two answers must stay within 1e-6 times the
largest margin (XGBoost computes in float32) or 1e-9 (LightGBM, float64).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench._paired import alternate, print_table

__all__ = ["main"]


def _data(seed: int) -> tuple[Any, np.ndarray]:
    import pandas as pd
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=100_000, n_features=20, n_informative=10, random_state=seed)
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    levels = [f"level{i:02d}" for i in range(20)]
    codes = np.clip((X[:, 0] * 4 + 10 + rng.normal(size=len(X))).astype(int), 0, 19)
    frame["x0"] = pd.Categorical.from_codes(codes, categories=levels)
    frame.loc[rng.random(len(X)) < 0.05, "x1"] = np.nan
    return frame, y


def _models(frame: Any, y: np.ndarray, folder: Path, threads: int, seed: int) -> dict[str, Path]:
    import lightgbm as lgb
    import xgboost as xgb

    paths = {"XGBoost": folder / "model.json", "LightGBM": folder / "model.txt"}
    matrix = xgb.DMatrix(frame, label=y, enable_categorical=True)
    params = {"objective": "binary:logistic", "max_depth": 8, "max_cat_to_onehot": 1, "nthread": threads, "seed": seed}
    xgb.train(params, matrix, num_boost_round=100).save_model(paths["XGBoost"])
    lgb_params = {"objective": "binary", "max_depth": 8, "num_leaves": 255, "num_threads": threads, "seed": seed}
    lgb_params["verbosity"] = -1
    # LightGBM's copy of the data has no missing values: LightGBM writes the split that sends missing
    # values one way and all others the other with the threshold inf, which Probity's file check
    # (engine.models.native_checks) refuses for now.
    complete = frame.assign(x1=frame["x1"].fillna(0.0))
    lgb.train(lgb_params, lgb.Dataset(complete, label=y), num_boost_round=100).save_model(paths["LightGBM"])
    return paths


def _case(library: str, path: Path, frame: Any, threads: int) -> tuple[dict[str, Callable[[], Any]], Any]:
    from engine.explain._booster_trees import booster_matrix, booster_tree_model
    from engine.explain.treeshap import tree_model_shap_values
    from engine.models.loading import load_model

    model = load_model(path)
    booster = model.booster  # type: ignore[attr-defined]

    def probity() -> np.ndarray:
        trees = booster_tree_model(model, class_index=1)
        return tree_model_shap_values(trees, booster_matrix(model, frame), n_threads=threads)[0]

    if library == "XGBoost":
        import xgboost as xgb

        booster.set_param({"nthread": threads})

        def theirs() -> np.ndarray:
            matrix = xgb.DMatrix(frame, enable_categorical=True)
            return np.asarray(booster.predict(matrix, pred_contribs=True), dtype=np.float64)[:, :-1]

    else:

        def theirs() -> np.ndarray:
            out = booster.predict(frame, pred_contrib=True, num_threads=threads)
            return np.asarray(out, dtype=np.float64)[:, :-1]

    return {"Probity": probity, f"{library} pred_contribs": theirs}, model


def _keeping(last: dict[str, Any], name: str, fn: Callable[[], Any]) -> Callable[[], None]:
    """``fn`` keeping its latest answer in ``last[name]`` (the timed runs' answers are compared)."""

    def run() -> None:
        last[name] = fn()

    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.booster_treeshap", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows explained (default all 100 000)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each, alternating (default 3)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads for both (default: all)")
    parser.add_argument("--libraries", default="xgboost,lightgbm", help="which: xgboost, lightgbm or both")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data and the models")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.rows < 1:
        parser.error("--runs and --rows must be at least 1")

    from engine.explain._booster_trees import booster_margin

    frame, y = _data(args.seed)
    status = 0
    with tempfile.TemporaryDirectory() as tmp:
        paths = _models(frame, y, Path(tmp), args.threads, args.seed)
        rows = frame.iloc[: args.rows]
        for library in ("XGBoost", "LightGBM"):
            if library.lower() not in args.libraries.lower():
                continue
            data = rows if library == "XGBoost" else rows.assign(x1=rows["x1"].fillna(0.0))
            cases, model = _case(library, paths[library], data, args.threads)
            ours_name, peer_name = list(cases)
            last: dict[str, np.ndarray] = {}
            load = os.getloadavg()[0]
            timings = alternate({name: _keeping(last, name, fn) for name, fn in cases.items()}, args.runs)
            ours, peer = last[ours_name], last[peer_name]
            margin = booster_margin(model, data.iloc[:1000], 1)
            tolerance = 1e-6 * max(1.0, float(np.max(np.abs(margin)))) if library == "XGBoost" else 1e-9
            worst = float(np.max(np.abs(ours - peer)))
            missing = ", 5% missing" if library == "XGBoost" else ""
            print_table(
                f"{library}, 100 rounds of depth 8 on 100k x 20 (one categorical{missing}), {args.rows:,} rows "
                f"explained, {args.threads} threads each",
                timings,
                ours=ours_name,
                peer=peer_name,
                load_before=load,
            )
            print(f"largest difference {worst:.2g} (tolerance {tolerance:.2g})\n", flush=True)
            if worst > tolerance:
                print(f"{library}: the answers differ by {worst:.3g}", file=sys.stderr)
                status = 1
    return status


if __name__ == "__main__":
    raise SystemExit(main())

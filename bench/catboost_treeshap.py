"""Exact TreeSHAP on a CatBoost model against CatBoost's own ShapValues.

``python -m bench.catboost_treeshap`` trains, on ``make_classification`` data
(100 000 rows x 20 features, 5% of one feature missing, one text category of 20
levels split through single-feature counters and one of 4 levels split one-hot),
a binary CatBoost model (``--trees`` 100 oblivious trees of depth 6, CatBoost's
default depth; ``max_ctr_complexity=1``, so that no counter combines features),
saves it to a .cbm file and loads it through ``engine.models.loading.load_model``.
It then explains the first ``--rows`` rows in margin space with

- Probity: path-dependent TreeSHAP end to end (``catboost_tree_model``: the trees
  read from CatBoost's JSON form; ``catboost_matrix``: numbers and category codes;
  ``tree_model_shap_values`` on ``--threads`` worker threads), and
- CatBoost: ``get_feature_importance(Pool(frame), type="ShapValues",
  thread_count=--threads)`` (its default ``shap_calc_type="Regular"``, the same
  path-dependent algorithm).

After one warm-up of each on the rows, the two alternate for ``--runs`` timed runs
in one process; the table gives median (min-max) wall and CPU time and the ratio of
medians (CatBoost / Probity: above 1 means Probity is faster).  The largest
difference between the two answers must stay within 1e-9.
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

CATS = ["x0", "x2"]


def _data(seed: int) -> tuple[Any, np.ndarray]:
    import pandas as pd
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=100_000, n_features=20, n_informative=10, random_state=seed)
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    codes = np.clip((X[:, 0] * 4 + 10 + rng.normal(size=len(X))).astype(int), 0, 19)
    frame["x0"] = np.array([f"level{i:02d}" for i in range(20)], dtype=object)[codes]
    frame["x2"] = np.array(["north", "south", "east", "west"], dtype=object)[np.digitize(X[:, 2], [-1.0, 0.0, 1.0])]
    frame.loc[rng.random(len(X)) < 0.05, "x1"] = np.nan
    return frame, y


def _model(frame: Any, y: np.ndarray, path: Path, trees: int, threads: int, seed: int) -> None:
    import catboost as cb

    params = {"iterations": trees, "depth": 6, "thread_count": threads, "random_seed": seed, "verbose": False}
    params |= {"allow_writing_files": False, "max_ctr_complexity": 1, "one_hot_max_size": 4, "loss_function": "Logloss"}
    model = cb.CatBoost(params)
    model.fit(cb.Pool(frame, y, cat_features=CATS))
    model.save_model(str(path))


def _cases(path: Path, frame: Any, threads: int) -> tuple[dict[str, Callable[[], Any]], Any]:
    import catboost as cb

    from engine.explain._catboost_trees import catboost_matrix, catboost_tree_model
    from engine.explain.treeshap import tree_model_shap_values
    from engine.models.loading import load_model

    model = load_model(path)
    booster = model.booster  # type: ignore[attr-defined]

    def probity() -> np.ndarray:
        trees = catboost_tree_model(model, class_index=1)
        return tree_model_shap_values(trees, catboost_matrix(model, frame), n_threads=threads)[0]

    def theirs() -> np.ndarray:
        pool = cb.Pool(frame, cat_features=CATS)
        out = booster.get_feature_importance(pool, type="ShapValues", thread_count=threads)
        return np.asarray(out, dtype=np.float64)[:, :-1]

    return {"Probity": probity, "CatBoost ShapValues": theirs}, model


def _keeping(last: dict[str, Any], name: str, fn: Callable[[], Any]) -> Callable[[], None]:
    """``fn`` keeping its latest answer in ``last[name]`` (the timed runs' answers are compared)."""

    def run() -> None:
        last[name] = fn()

    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.catboost_treeshap", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000, help="rows explained (default 10 000)")
    parser.add_argument("--trees", type=int, default=100, help="trees of the model (default 100)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each, alternating (default 3)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads for both (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data and the model")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.rows < 1 or args.trees < 1:
        parser.error("--runs, --rows and --trees must be at least 1")

    from engine.explain._booster_trees import booster_margin

    frame, y = _data(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.cbm"
        _model(frame, y, path, args.trees, args.threads, args.seed)
        rows = frame.iloc[: args.rows]
        cases, model = _cases(path, rows, args.threads)
        ours_name, peer_name = list(cases)
        last: dict[str, np.ndarray] = {}
        load = os.getloadavg()[0]
        timings = alternate({name: _keeping(last, name, fn) for name, fn in cases.items()}, args.runs)
        worst = float(np.max(np.abs(last[ours_name] - last[peer_name])))
        margin = booster_margin(model, rows.iloc[:1000], 1)
        print_table(
            f"CatBoost, {args.trees} oblivious trees of depth 6 on 100k x 20 (a 20-level counter category, a "
            f"4-level one-hot category, 5% missing), {args.rows:,} rows explained, {args.threads} threads each",
            timings,
            ours=ours_name,
            peer=peer_name,
            load_before=load,
        )
        print(f"largest difference {worst:.2g} (tolerance 1e-9; margins up to {np.max(np.abs(margin)):.3g})\n")
    if worst > 1e-9:
        print(f"CatBoost: the answers differ by {worst:.3g}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

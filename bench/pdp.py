"""Partial dependence and ICE against scikit-learn's partial_dependence: speed and agreement.

``python -m bench.pdp`` fits a random forest (100 trees) on the breast-cancer
table (569 rows, 30 numeric features) and computes partial dependence and ICE
curves of P(class 1) for the first ``--features`` columns over every row, on
grids of ``--grid`` points, with

- Probity: ``engine.explain.pdp.run`` end to end (grids, one stacked frame per
  feature scored through the SklearnModel adapter in calls of at most 2
  million cells, ICE and PDP), and
- scikit-learn: ``partial_dependence(forest, X, [j], kind="both",
  method="brute")`` for each feature, on Probity's grid (``custom_values``).

After one warm-up of each, the two alternate for ``--runs`` timed runs in one
process.  The largest difference between the two PDPs must stay within 1e-12.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

import numpy as np

from bench._paired import alternate, print_table

__all__ = ["main"]

TOLERANCE = 1e-12


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pdp", description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, default=10, help="features with curves (default 10)")
    parser.add_argument("--grid", type=int, default=20, help="grid points per feature (default 20)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each, alternating (default 5)")
    args = parser.parse_args(argv)

    import sklearn
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.inspection import partial_dependence

    from engine.explain import pdp
    from engine.inputs import AuditInputs
    from engine.jobs import JobContext
    from engine.models.sklearn_adapter import SklearnModel
    from engine.schema import Roles

    warnings.filterwarnings("ignore", message="X does not have valid feature names")
    data = load_breast_cancer(as_frame=True)
    X = data.data
    rf = RandomForestClassifier(n_estimators=100, random_state=0).fit(X, data.target)
    inputs = AuditInputs(
        frame=X.assign(target=data.target),
        roles=Roles(target="target", features=tuple(X.columns)),
        model=SklearnModel(rf),
    )
    features = list(X.columns[: args.features])

    def ours() -> pdp.PartialDependenceResult:
        return pdp.run(inputs, ctx=JobContext(seed=0), features=features, grid_resolution=args.grid, ice_rows=None)

    reference = ours()
    grids = {f.feature: np.asarray(f.grid, dtype=np.float64) for f in reference.features}

    def theirs() -> list[np.ndarray]:
        return [
            # A binary classifier's partial dependence is that of class 1.
            partial_dependence(rf, X, [name], custom_values={name: grids[name]}, kind="both", method="brute")[
                "average"
            ][0]
            for name in features
        ]

    load_before = os.getloadavg()[0]
    timings = alternate({"Probity pdp": ours, "scikit-learn partial_dependence": theirs}, args.runs)
    diff = max(float(np.max(np.abs(f.pdp - t))) for f, t in zip(reference.features, theirs()))
    print_table(
        f"PDP + ICE, breast cancer RF(100), {len(X)} rows x {len(features)} features x {args.grid} grid points",
        timings,
        ours="Probity pdp",
        peer="scikit-learn partial_dependence",
        load_before=load_before,
    )
    print(f"scikit-learn {sklearn.__version__}; max |PDP difference| {diff:.1e} (must be <= {TOLERANCE:.0e})")
    return 0 if diff <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())

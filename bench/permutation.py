"""Permutation importance against scikit-learn's permutation_importance: speed and agreement.

``python -m bench.permutation`` fits a random forest (100 trees) on the
breast-cancer table (569 rows, 30 numeric features) and computes the accuracy
drop of every column over ``--repeats`` shuffles with

- Probity: ``engine.explain.permutation.run`` end to end (each feature's
  shuffled copies stacked and scored through the SklearnModel adapter in calls
  of at most 2 million cells), and
- scikit-learn: ``permutation_importance(forest, X, y, n_repeats=R,
  scoring="accuracy")``, one call per shuffle, in one process (``n_jobs=None``).

After one warm-up of each, the two alternate for ``--runs`` timed runs in one
process.  The shuffles differ (each draws its own), so agreement is the
baseline score (must be equal) and the correlation of the mean importances.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

import numpy as np

from bench._paired import alternate, print_table

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.permutation", description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10, help="shuffles per column (default 10)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each, alternating (default 5)")
    args = parser.parse_args(argv)

    import sklearn
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.inspection import permutation_importance

    from engine.explain import permutation
    from engine.inputs import AuditInputs
    from engine.jobs import JobContext
    from engine.models.sklearn_adapter import SklearnModel
    from engine.schema import Roles

    warnings.filterwarnings("ignore", message="X does not have valid feature names")
    data = load_breast_cancer(as_frame=True)
    X, y = data.data, data.target
    rf = RandomForestClassifier(n_estimators=100, random_state=0).fit(X, y)
    inputs = AuditInputs(
        frame=X.assign(target=y), roles=Roles(target="target", features=tuple(X.columns)), model=SklearnModel(rf)
    )

    def ours() -> permutation.PermutationImportanceResult:
        return permutation.run(inputs, ctx=JobContext(seed=0), n_repeats=args.repeats, scoring="accuracy")

    def theirs() -> object:
        return permutation_importance(rf, X, y, n_repeats=args.repeats, random_state=0, scoring="accuracy")

    load_before = os.getloadavg()[0]
    timings = alternate({"Probity permutation": ours, "scikit-learn permutation_importance": theirs}, args.runs)
    mine, peer = ours(), theirs()
    corr = float(np.corrcoef(mine.mean, peer.importances_mean)[0, 1])  # type: ignore[attr-defined]
    same_baseline = mine.baseline_score == rf.score(X, y)
    print_table(
        f"Permutation importance, breast cancer RF(100), {len(X)} rows x {X.shape[1]} features x "
        f"{args.repeats} shuffles",
        timings,
        ours="Probity permutation",
        peer="scikit-learn permutation_importance",
        load_before=load_before,
    )
    print(
        f"scikit-learn {sklearn.__version__}; baseline accuracy {mine.baseline_score:.4f} "
        f"({'equal to' if same_baseline else 'DIFFERENT from'} the forest's score); correlation of mean "
        f"importances {corr:.3f}"
    )
    return 0 if same_baseline else 1


if __name__ == "__main__":
    sys.exit(main())

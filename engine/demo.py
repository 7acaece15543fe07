"""The built-in demo: a credit-approval dataset with known ground truth, and a model.

The data are generated deterministically from a seed.  Approval depends on
income, debt, credit history, late payments and (weakly) age; historical labels
also carry a penalty for one group of the sensitive attribute ``group``.  The
model never sees ``group`` but does see ``neighbourhood``, a strong proxy of it,
so an audit should find the proxy doing the sensitive attribute's work.

Run ``python -m engine.demo`` to (re)create the files; ``make install`` does.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

__all__ = ["DemoPaths", "GROUND_TRUTH", "make_credit_frame", "train_credit_model", "ensure_demo", "demo_dir"]

DEMO_SEED = 20240917

# Coefficients of the true approval logit on standardised inputs; "group_b" is the
# historical bias applied to group B in the labels (not a model input).
GROUND_TRUTH: dict[str, float] = {
    "intercept": 0.4,
    "income": 1.4,
    "debt": -1.6,
    "credit_history_years": 0.9,
    "late_payments": -1.1,
    "age": 0.25,
    "group_b": -0.8,
}
FEATURES = (
    "age",
    "income",
    "debt",
    "credit_history_years",
    "late_payments",
    "employment",
    "loan_amount",
    "neighbourhood",
)
TARGET = "approved"
SENSITIVE = ("group",)
DEMO_FILES = ("credit.csv", "credit_model.skops", "credit_truth.json")


@dataclass(frozen=True)
class DemoPaths:
    data: Path
    model: Path
    truth: Path


def _z(x: np.ndarray) -> np.ndarray:
    z: np.ndarray = (x - x.mean()) / x.std()
    return z


def make_credit_frame(n_rows: int = 6000, seed: int = DEMO_SEED) -> pd.DataFrame:
    """Generate the credit-approval table (deterministic for a given seed)."""
    rng = np.random.default_rng(seed)
    group = rng.choice(np.array(["A", "B"]), size=n_rows, p=[0.65, 0.35])
    is_b = group == "B"
    # Neighbourhood is the proxy: group B lives mostly in the east and south.
    hoods_a = np.array(["north", "west", "centre", "east", "south"])
    p_a = [0.30, 0.30, 0.25, 0.10, 0.05]
    p_b = [0.05, 0.05, 0.15, 0.40, 0.35]
    neighbourhood = np.where(is_b, rng.choice(hoods_a, size=n_rows, p=p_b), rng.choice(hoods_a, size=n_rows, p=p_a))
    age = np.clip(rng.normal(41, 12, n_rows), 18, 85).round().astype(int)
    employment = rng.choice(
        np.array(["salaried", "self-employed", "contract", "unemployed", "retired"]),
        size=n_rows,
        p=[0.55, 0.15, 0.15, 0.07, 0.08],
    )
    base_income = rng.lognormal(mean=10.6, sigma=0.45, size=n_rows) * np.where(is_b, 0.88, 1.0)
    base_income *= np.select(
        [employment == "unemployed", employment == "retired", employment == "self-employed"], [0.35, 0.7, 1.1], 1.0
    )
    income = np.round(base_income, -2)
    debt = np.round(np.clip(rng.gamma(2.0, 0.18, n_rows) * income, 0, None), -2)
    history = np.clip(age - 18 - rng.integers(0, 10, n_rows), 0, None).astype(float)
    history = np.minimum(history, rng.normal(12, 7, n_rows).clip(0, None) + 2).round(1)
    late = rng.poisson(np.where(is_b, 1.1, 0.8))
    loan_amount = np.round(rng.uniform(0.1, 0.9, n_rows) * income, -2)

    logit = (
        GROUND_TRUTH["intercept"]
        + GROUND_TRUTH["income"] * _z(np.log(income))
        + GROUND_TRUTH["debt"] * _z(debt / income)
        + GROUND_TRUTH["credit_history_years"] * _z(history)
        + GROUND_TRUTH["late_payments"] * _z(late.astype(float))
        + GROUND_TRUTH["age"] * _z(age.astype(float))
        + GROUND_TRUTH["group_b"] * is_b
    )
    approved = (rng.random(n_rows) < 1.0 / (1.0 + np.exp(-logit))).astype(int)

    # Some applicants never reported their credit history.
    history = history.copy()
    history[rng.random(n_rows) < 0.04] = np.nan
    ids = np.array([f"{i:07d}" for i in rng.permutation(np.arange(1, n_rows + 1) * 7 + 1000)])

    return pd.DataFrame(
        {
            "application_id": ids,
            "age": age,
            "income": income,
            "debt": debt,
            "credit_history_years": history,
            "late_payments": late,
            "employment": employment,
            "loan_amount": loan_amount,
            "neighbourhood": neighbourhood,
            "group": group,
            TARGET: approved,
        }
    )


def train_credit_model(frame: pd.DataFrame, seed: int = DEMO_SEED) -> Pipeline:
    """A scikit-learn Pipeline (impute + one-hot + gradient boosting) on the raw columns."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    numeric = ["age", "income", "debt", "credit_history_years", "late_payments", "loan_amount"]
    categorical = ["employment", "neighbourhood"]
    pre = ColumnTransformer(
        [
            ("num", SimpleImputer(strategy="median"), numeric),
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical),
        ]
    )
    model = Pipeline(
        [
            ("prepare", pre),
            ("boost", GradientBoostingClassifier(n_estimators=120, max_depth=3, learning_rate=0.1, random_state=seed)),
        ]
    )
    return model.fit(frame[list(FEATURES)], frame[TARGET])


def demo_dir() -> Path:
    """Where the demo lives: ``$PROBITY_DEMO_DIR``, else ``resources/demo`` in the
    source tree when writable or complete (an installed bundle ships it read-only),
    else the user's cache folder."""
    env = os.environ.get("PROBITY_DEMO_DIR")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent.parent / "resources" / "demo"
    if os.access(here.parent, os.W_OK) or all((here / name).is_file() for name in DEMO_FILES):
        return here
    return Path.home() / ".cache" / "probity" / "demo"


def ensure_demo(directory: str | Path | None = None, *, force: bool = False) -> DemoPaths:
    """Create the demo files if they are missing (or ``force``), and return their paths."""
    from engine.models.skops_import import skops_io

    sio = skops_io()

    root = Path(directory) if directory is not None else demo_dir()
    paths = DemoPaths(*(root / name for name in DEMO_FILES))
    if not force and all(p.exists() for p in (paths.data, paths.model, paths.truth)):
        return paths
    root.mkdir(parents=True, exist_ok=True)
    frame = make_credit_frame()
    model = train_credit_model(frame)
    tmp = root / ".credit.csv.tmp"
    frame.to_csv(tmp, index=False, lineterminator="\n")
    tmp.replace(paths.data)
    sio.dump(model, paths.model)
    truth = {
        "seed": DEMO_SEED,
        "target": TARGET,
        "features": list(FEATURES),
        "sensitive": list(SENSITIVE),
        "proxy_of_sensitive": "neighbourhood",
        "logit_coefficients_on_standardised_inputs": GROUND_TRUTH,
        "notes": "debt enters as debt/income; income as log(income); group_b is a label bias, not a model input.",
    }
    paths.truth.write_text(json.dumps(truth, indent=2) + "\n", encoding="utf-8")
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="folder for the demo files")
    parser.add_argument("--force", action="store_true", help="regenerate even if the files exist")
    args = parser.parse_args(argv)
    paths = ensure_demo(args.out, force=args.force)
    print(f"demo data:  {paths.data}\ndemo model: {paths.model}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

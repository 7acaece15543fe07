"""Batched LIME against lime 0.2.0.1's ``explain_instance`` loop, in one process.

``python -m bench.lime`` explains 100 rows of breast cancer with a
RandomForest(100) and 5000 samples per neighbourhood:

* lime: ``LimeTabularExplainer(...).explain_instance`` in a loop.  The loop is
  slow, so it is timed on the first ``--lime-instances`` rows (20 by default)
  and its per-row time scaled to all rows; the explainer's construction is
  timed once per run and not scaled.
* Probity, ``sampling="shared"`` and ``"independent"`` (``stability_runs=0``, so
  the work matches lime's), plus shared with the default 5 stability runs.

After a warm-up, each repeat runs every contender once, in alternating order;
the table gives medians and min–max over repeats.  Fidelity is checked on the
rows lime explained: median weighted R² within ±0.02 of lime's, and
coefficients averaged over the repeats' seeds correlating at least 0.99 with
lime's, for both designs.  Exit status 0 only when the fidelity checks pass and
the speed targets (30× shared, 3× independent) are met.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

SPEED_TARGETS = {"shared": 30.0, "independent": 3.0}
R2_TOLERANCE = 0.02
MIN_CORRELATION = 0.99


@dataclass
class _Timing:
    seconds: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return float(np.median(self.seconds))

    def span(self) -> str:
        return f"{min(self.seconds):.3f}–{max(self.seconds):.3f}"


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.lime", description=__doc__.splitlines()[0])
    p.add_argument("--instances", type=int, default=100, help="rows Probity explains (default 100)")
    p.add_argument("--lime-instances", type=int, default=20, help="rows lime's loop is timed on (default 20)")
    p.add_argument("--samples", type=int, default=5000, help="samples per neighbourhood (default 5000)")
    p.add_argument("--repeats", type=int, default=5, help="timed repeats, each a new seed (default 5)")
    p.add_argument("--trees", type=int, default=100, help="trees in the random forest (default 100)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print markdown tables, return 0 when fidelity and speed targets hold."""
    args = _parse(argv)
    import pandas as pd
    from lime.lime_tabular import LimeTabularExplainer
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier

    from engine.explain import lime as probity_lime
    from engine.inputs import AuditInputs
    from engine.jobs import JobContext
    from engine.models.sklearn_adapter import SklearnModel
    from engine.schema import Roles

    data = load_breast_cancer()
    X = data.data
    names = [str(n) for n in data.feature_names]
    forest = RandomForestClassifier(n_estimators=args.trees, random_state=0).fit(X, data.target)
    frame = pd.DataFrame(X, columns=names)
    inputs = AuditInputs(frame=frame, roles=Roles(target=None, features=tuple(names)), model=SklearnModel(forest))
    rows = np.random.default_rng(0).choice(len(X), size=args.instances, replace=False)
    lime_rows = rows[: args.lime_instances]
    n_lime = len(lime_rows)
    f = len(names)

    def run_lime(seed: int) -> tuple[float, np.ndarray, np.ndarray]:
        t0 = time.perf_counter()
        explainer = LimeTabularExplainer(X, feature_names=names, random_state=seed)
        t_build = time.perf_counter() - t0
        coef = np.zeros((n_lime, f))
        r2 = np.zeros(n_lime)
        t0 = time.perf_counter()
        for i, r in enumerate(lime_rows):
            e = explainer.explain_instance(X[r], forest.predict_proba, num_features=f, num_samples=args.samples)
            for feature, weight in e.local_exp[1]:
                coef[i, feature] = weight
            r2[i] = e.score
        t_loop = time.perf_counter() - t0
        # Per-row cost scaled to every row; building the explainer happens once either way.
        return t_build + t_loop * len(rows) / n_lime, coef, r2

    def probity(sampling: str, stability_runs: int) -> Callable[[int], tuple[float, np.ndarray, np.ndarray]]:
        def go(seed: int) -> tuple[float, np.ndarray, np.ndarray]:
            t0 = time.perf_counter()
            res = probity_lime.run(
                inputs,
                ctx=JobContext(seed=seed),
                rows=rows.tolist(),
                num_samples=args.samples,
                sampling=sampling,
                stability_runs=stability_runs,
            )
            return time.perf_counter() - t0, np.asarray(res.values), np.asarray(res.quality["r2"])

        return go

    contenders: dict[str, Callable[[int], tuple[float, np.ndarray, np.ndarray]]] = {
        "lime": run_lime,
        "shared": probity("shared", 0),
        "independent": probity("independent", 0),
        "shared+stability": probity("shared", 5),
    }
    model_rows = {
        "lime": len(rows) * args.samples,
        "shared": len(rows) + args.samples - 1,
        "independent": len(rows) * args.samples,
        "shared+stability": len(rows) + 6 * (args.samples - 1),
    }

    print(f"# LIME benchmark: {len(rows)} rows of breast cancer, RandomForest({args.trees}), {args.samples} samples\n")
    print(
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, numpy {np.__version__}, "
        f"lime timed on {n_lime} rows and scaled to {len(rows)}; {args.repeats} repeats after a warm-up; "
        f"load average at start {os.getloadavg()[0]:.1f}.\n"
    )
    sys.stdout.flush()

    # Warm-up: imports, first-call caches, BLAS threads.
    for name, fn in contenders.items():
        if name != "shared+stability":
            fn(10_000)

    timings = {name: _Timing() for name in contenders}
    coefs: dict[str, list[np.ndarray]] = {name: [] for name in contenders}
    r2s: dict[str, list[np.ndarray]] = {name: [] for name in contenders}
    order = list(contenders)
    for rep in range(args.repeats):
        # Alternate the order so no contender always runs on a warm (or cold) cache.
        for name in order if rep % 2 == 0 else order[::-1]:
            seconds, c, r2 = contenders[name](rep)
            timings[name].seconds.append(seconds)
            coefs[name].append(c[:n_lime])
            r2s[name].append(r2[:n_lime])

    lime_median = timings["lime"].median
    lime_times = np.asarray(timings["lime"].seconds)
    print("| method | rows | model rows | median s | min–max s | ms per row | speed-up vs lime | paired speed-up |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    labels = {
        "lime": f"lime explain_instance loop (timed on {n_lime}, scaled)",
        "shared": "Probity `shared`",
        "independent": "Probity `independent`",
        "shared+stability": "Probity `shared` + 5 stability runs",
    }
    for name in contenders:
        t = timings[name]
        print(
            f"| {labels[name]} | {len(rows)} | {model_rows[name]:,} | {t.median:.3f} | {t.span()} | "
            f"{1000 * t.median / len(rows):.1f} | {lime_median / t.median:.1f}× | "
            f"{np.median(lime_times / np.asarray(t.seconds)):.1f}× |"
        )
    print(
        "\nSpeed-up is the ratio of medians; the paired speed-up is the median over repeats of lime's time "
        f"over Probity's in the same repeat. Load average at the end {os.getloadavg()[0]:.1f}."
    )

    ok = True
    print(
        "\n| design | median R² (Probity) | median R² (lime) | abs diff "
        "| corr of seed-averaged coefficients | fidelity |"
    )
    print("|---|---:|---:|---:|---:|---|")
    lime_coef = np.mean(coefs["lime"], axis=0)
    lime_r2 = float(np.median(np.concatenate(r2s["lime"])))
    for name in ("shared", "independent"):
        ours_r2 = float(np.median(np.concatenate(r2s[name])))
        corr = float(np.corrcoef(np.mean(coefs[name], axis=0).ravel(), lime_coef.ravel())[0, 1])
        good = abs(ours_r2 - lime_r2) <= R2_TOLERANCE and corr >= MIN_CORRELATION
        ok &= good
        print(
            f"| {name} | {ours_r2:.4f} | {lime_r2:.4f} | {abs(ours_r2 - lime_r2):.4f} | {corr:.4f} | "
            f"{'pass' if good else 'FAIL'} |"
        )

    print("\n| target | measured | met |")
    print("|---|---:|---|")
    for name, target in SPEED_TARGETS.items():
        speedup = lime_median / timings[name].median
        met = speedup >= target
        ok &= met
        print(f"| `{name}` ≥ {target:g}× faster than lime | {speedup:.1f}× | {'yes' if met else 'NO'} |")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

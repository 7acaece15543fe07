"""Fairness figures agree with fairlearn, carry intervals that behave, name the gap that matters, and refuse bad input.

Known answers: the demo's built-in bias against group B; a COMPAS-like table whose large-group false positive
gap must be the headline while tiny groups drive fairlearn's max-minus-min; a flip test on a model that uses the
attribute directly, counted exactly.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.errors import AnalysisError
from engine.explain import fairness
from engine.explain.fairness import FairnessResult, _holm
from engine.explain.groups import HEADLINE_MIN_GROUP_SIZE, group_codes
from engine.inputs import AuditInputs
from engine.jobs import JobContext
from engine.models.base import Model, Task
from engine.registry import get_method
from engine.results import result_from_dict
from engine.schema import Roles


class FixedModel(Model):
    """A classifier whose P(class 1) is given row by row (column ``row`` indexes them)."""

    def __init__(self, p1: np.ndarray, *, classes: tuple = (0, 1)) -> None:
        self.p1 = np.asarray(p1, dtype=float)
        self.task = Task.CLASSIFICATION
        self.classes = classes
        self.input_columns = ("row",)
        self.format = "sklearn"

    def _predict_raw(self, X: pd.DataFrame) -> np.ndarray:
        p = self.p1[X["row"].to_numpy(dtype=np.int64)]
        return np.column_stack([1 - p, p])


class ColumnModel(Model):
    """A classifier that reads one input column: P(1) is ``favoured`` where it equals ``value``, else ``other``."""

    def __init__(self, column: str, value: str, *, inputs: tuple[str, ...], favoured=0.9, other=0.1) -> None:
        self.column, self.value, self.favoured, self.other = column, value, favoured, other
        self.task = Task.CLASSIFICATION
        self.classes = (0, 1)
        self.input_columns = inputs
        self.format = "sklearn"

    def _predict_raw(self, X: pd.DataFrame) -> np.ndarray:
        p = np.where(X[self.column].astype(str).to_numpy() == self.value, self.favoured, self.other)
        return np.column_stack([1 - p, p])


def make_inputs(frame: pd.DataFrame, p1: np.ndarray, *, sensitive=("s",), target: str | None = "y") -> AuditInputs:
    frame = frame.assign(row=np.arange(len(frame)))
    roles = Roles(target=target, features=("row",), sensitive=tuple(sensitive))
    return AuditInputs(frame=frame, roles=roles, model=FixedModel(p1))


def run(inputs: AuditInputs, *, seed: int = 0, **params) -> FairnessResult:
    return fairness.run(inputs, ctx=JobContext(seed=seed), **params)


def binary_task(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Three groups (and a second attribute) with different base rates and a model better on some than others."""
    rng = np.random.default_rng(seed)
    s = rng.choice(np.array(["north", "south", "west"]), size=n, p=[0.5, 0.3, 0.2])
    t = rng.choice(np.array(["F", "M"]), size=n)
    shift = np.select([s == "north", s == "south"], [0.6, -0.4], 0.0) + np.where(t == "F", 0.3, 0.0)
    signal = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(1.5 * signal + shift)))).astype(int)
    p1 = 1 / (1 + np.exp(-(signal + 0.3 * shift + rng.normal(scale=0.8, size=n))))
    return pd.DataFrame({"s": s, "t": t, "y": y}), p1


# -- fairlearn parity ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("threshold", "favourable"), [(0.5, None), (0.3, None), (0.5, 0)])
def test_every_figure_and_measure_matches_fairlearn(threshold: float, favourable) -> None:
    fl = pytest.importorskip("fairlearn.metrics")
    from sklearn.metrics import accuracy_score, precision_score

    frame, p1 = binary_task(900, seed=11)
    result = run(make_inputs(frame, p1), threshold=threshold, favourable=favourable, n_boot=20)

    y, s = frame["y"].to_numpy(), frame["s"].to_numpy()
    fav = 1 if favourable is None else favourable
    p_fav = p1 if fav == 1 else 1 - p1
    # fairlearn on the favourable class as the positive label (1), exactly as Probity decides.
    y_true = (y == fav).astype(int)
    y_pred = (p_fav > threshold).astype(int)
    frame_fl = fl.MetricFrame(
        metrics={
            "selection_rate": fl.selection_rate,
            "tpr": fl.true_positive_rate,
            "fpr": fl.false_positive_rate,
            "fnr": fl.false_negative_rate,
            "precision": lambda a, b: precision_score(a, b, zero_division=np.nan),
            "accuracy": accuracy_score,
            "base_rate": lambda a, b: float(np.mean(a)),
            "count": fl.count,
        },
        y_true=y_true,
        y_pred=y_pred,
        sensitive_features=s,
    )
    by_group = frame_fl.by_group
    for row in result.rows("s"):
        expected = by_group.loc[row.group]
        for metric in ("selection_rate", "tpr", "fpr", "fnr", "precision", "accuracy", "base_rate"):
            assert getattr(row, metric) == pytest.approx(expected[metric], abs=1e-12), (row.group, metric)
        assert row.n == expected["count"]
    kw = {"sensitive_features": s}
    assert result.measure("s", "demographic_parity_difference").value == pytest.approx(
        fl.demographic_parity_difference(y_true, y_pred, **kw), abs=1e-12
    )
    assert result.measure("s", "demographic_parity_ratio").value == pytest.approx(
        fl.demographic_parity_ratio(y_true, y_pred, **kw), abs=1e-12
    )
    assert result.measure("s", "equalized_odds_difference").value == pytest.approx(
        fl.equalized_odds_difference(y_true, y_pred, **kw), abs=1e-12
    )
    assert result.measure("s", "equal_opportunity_difference").value == pytest.approx(
        fl.equal_opportunity_difference(y_true, y_pred, **kw), abs=1e-12
    )
    fpr = fl.MetricFrame(metrics=fl.false_positive_rate, y_true=y_true, y_pred=y_pred, sensitive_features=s)
    assert result.measure("s", "fpr_ratio").value == pytest.approx(fpr.ratio(), abs=1e-12)


def test_intersections_match_fairlearn_on_two_attributes() -> None:
    fl = pytest.importorskip("fairlearn.metrics")
    frame, p1 = binary_task(900, seed=5)
    result = run(make_inputs(frame, p1, sensitive=("s", "t")), n_boot=20)
    assert result.intersections == ("s × t",)
    y_true, y_pred = frame["y"].to_numpy(), (p1 > 0.5).astype(int)
    mf = fl.MetricFrame(
        metrics={"selection_rate": fl.selection_rate, "fpr": fl.false_positive_rate},
        y_true=y_true,
        y_pred=y_pred,
        sensitive_features=frame[["s", "t"]],
    )
    rows = result.rows("s × t")
    assert len(rows) == 6 and all(r.attribute == "s × t" for r in rows)
    for row in rows:
        a, b = row.group.split(" × ")
        assert row.selection_rate == pytest.approx(mf.by_group.loc[(a, b), "selection_rate"], abs=1e-12)
        assert row.fpr == pytest.approx(mf.by_group.loc[(a, b), "fpr"], abs=1e-12)
    both = frame[["s", "t"]].apply(tuple, axis=1)
    assert result.measure("s × t", "demographic_parity_difference").value == pytest.approx(
        fl.demographic_parity_difference(y_true, y_pred, sensitive_features=both.astype(str)), abs=1e-12
    )
    assert result.table("s × t").rows[0].category == rows[0].group  # LL144 per intersection too


def test_calibration_is_mean_predicted_against_observed_and_the_binned_ece() -> None:
    frame, p1 = binary_task(600, seed=3)
    result = run(make_inputs(frame, p1), n_boot=20)
    y = frame["y"].to_numpy()
    for row in result.rows("s"):
        inside = frame["s"].to_numpy() == row.group
        p, obs = p1[inside], y[inside]
        assert row.mean_score == pytest.approx(p.mean(), abs=1e-12)
        assert row.mean_observed == pytest.approx(obs.mean(), abs=1e-12)
        bins = np.clip((p * 10).astype(int), 0, 9)
        ece = sum(abs(p[bins == b].sum() - obs[bins == b].sum()) for b in range(10)) / inside.sum()
        assert row.ece == pytest.approx(ece, abs=1e-12)


# -- the intervals --------------------------------------------------------------------------------------------


def test_intervals_shrink_with_more_data_and_are_seeded() -> None:
    small_frame, small_p = binary_task(400, seed=1)
    large_frame, large_p = binary_task(4000, seed=1)
    small = run(make_inputs(small_frame, small_p), n_boot=300)
    large = run(make_inputs(large_frame, large_p), n_boot=300)

    def width(result: FairnessResult, group: str, figure: str) -> float:
        low, high = next(r for r in result.rows("s") if r.group == group).interval(figure)
        assert low <= getattr(next(r for r in result.rows("s") if r.group == group), figure) <= high
        return high - low

    for figure in ("selection_rate", "tpr", "fpr", "base_rate"):
        # Ten times the rows: about a third of the width (1/sqrt(10)).
        assert width(large, "north", figure) < 0.5 * width(small, "north", figure), figure
    dp_small, dp_large = (r.measure("s", "demographic_parity_difference") for r in (small, large))
    assert dp_large.ci_high - dp_large.ci_low < 0.5 * (dp_small.ci_high - dp_small.ci_low)
    again = run(make_inputs(small_frame, small_p), n_boot=300)
    assert json.dumps(again.to_dict()["groups"]) == json.dumps(small.to_dict()["groups"])
    other = run(make_inputs(small_frame, small_p), n_boot=300, seed=1)
    assert other.rows("s")[0].ci != small.rows("s")[0].ci


def test_intervals_cover_the_true_value_at_about_their_nominal_rate() -> None:
    """200 simulated audits of decisions with known rates: the 95% intervals cover the truth about 95% of the time."""
    rng = np.random.default_rng(2024)
    true_a, true_b = 0.3, 0.5
    sizes = {"A": 300, "B": 200}
    s = np.repeat(np.array(list(sizes)), list(sizes.values()))
    covered_rate = covered_gap = 0
    n_sims = 200
    for sim in range(n_sims):
        chosen = rng.random(len(s)) < np.where(s == "A", true_a, true_b)
        frame = pd.DataFrame({"s": s, "y": chosen.astype(int)})
        result = run(make_inputs(frame, chosen.astype(float)), n_boot=200, seed=sim)
        low, high = result.rows("s")[0].interval("selection_rate")
        covered_rate += low <= true_a <= high
        dp = result.measure("s", "demographic_parity_difference")
        covered_gap += dp.ci_low <= true_b - true_a <= dp.ci_high
    assert 0.89 <= covered_rate / n_sims <= 0.99
    assert 0.89 <= covered_gap / n_sims <= 0.99


# -- known answers --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_inputs(tmp_path_factory: pytest.TempPathFactory) -> AuditInputs:
    from engine.audit import load_inputs
    from engine.demo import ensure_demo

    paths = ensure_demo(tmp_path_factory.mktemp("demo"))
    sha = hashlib.sha256(paths.model.read_bytes()).hexdigest()
    return load_inputs(paths.data, paths.model, target="approved", sensitive=("group",), trusted_sha256=(sha,))


def test_the_demos_built_in_bias_against_group_b_is_found_with_its_interval(demo_inputs) -> None:
    result = run(demo_inputs, n_boot=300, flip_inputs=["neighbourhood"])
    rows = {r.group: r for r in result.rows("group")}
    assert set(rows) == {"A", "B"} and rows["A"].reference and not rows["B"].reference  # A is the largest
    # The labels carry a penalty for B, and the model learned it through the proxy.
    assert rows["B"].base_rate < rows["A"].base_rate and rows["B"].selection_rate < rows["A"].selection_rate
    dp = result.measure("group", "demographic_parity_difference")
    assert (dp.low_group, dp.high_group) == ("B", "A") and 0 < dp.ci_low <= dp.value <= dp.ci_high
    assert result.headline is not None and result.headline.metric == "selection_rate"
    assert (result.headline.low_group, result.headline.high_group) == ("B", "A")
    assert result.headline.difference == pytest.approx(dp.value, abs=1e-15) and result.headline.ci_low > 0
    (comparison,) = result.comparisons
    assert comparison.group == "B" and comparison.reference == "A"
    assert comparison.ratio == pytest.approx(rows["B"].selection_rate / rows["A"].selection_rate, abs=1e-15)
    assert comparison.below_four_fifths and comparison.significant and comparison.judged
    table = result.table("group")
    assert table.rate_kind == "selection rate" and table.n_unknown == 0
    assert [r.impact_ratio for r in table.rows] == [1.0, pytest.approx(comparison.ratio, abs=1e-15)]
    # group is not a model input: only the proxy is flipped, and moving B's rows to the north helps them.
    (flip,) = result.flips
    assert flip.column == "neighbourhood" and flip.role == "proxy" and flip.attribute == "group"
    north_b = next(r for r in flip.rows if r.group == "B" and r.to_value == "north")
    assert north_b.to_favourable > north_b.to_unfavourable
    assert result.warnings == ()


def test_a_compas_like_table_headlines_the_large_groups_false_positive_gap() -> None:
    """Two large groups with a false positive rate twice as high for one, and two tiny groups at the extremes."""
    parts = []
    # (group, positives, true positives, negatives, false positives)
    for group, pos, tp, neg, fp in (
        ("African-American", 1500, 1050, 1500, 675),  # TPR 0.70, FPR 0.45
        ("Caucasian", 800, 480, 1200, 264),  # TPR 0.60, FPR 0.22
        ("Asian", 6, 6, 6, 6),  # 12 rows, everyone flagged
        ("Native American", 4, 0, 5, 0),  # 9 rows, nobody flagged
    ):
        y = np.r_[np.ones(pos), np.zeros(neg)].astype(int)
        flagged = np.r_[np.arange(pos) < tp, np.arange(neg) < fp].astype(float)
        parts.append(pd.DataFrame({"race": group, "y": y, "p": flagged}))
    frame = pd.concat(parts, ignore_index=True)
    result = run(make_inputs(frame, frame["p"].to_numpy(), sensitive=("race",)), n_boot=300)

    headline = result.headline
    assert headline is not None
    assert headline.metric == "fpr"
    assert {headline.low_group, headline.high_group} == {"African-American", "Caucasian"}
    assert headline.difference == pytest.approx(0.45 - 0.22, abs=1e-12)
    assert headline.ci_low < 0.23 < headline.ci_high and headline.ci_low > 0.15
    assert (headline.low_n, headline.high_n) == (2000, 3000)
    assert "false positive rate is 0.450 for 'African-American' (n=3,000)" in headline.sentence()
    # fairlearn's max-minus-min over every group is driven by the tiny ones, reported with their interval.
    dp = result.measure("race", "demographic_parity_difference")
    assert (dp.low_group, dp.high_group) == ("Native American", "Asian") and dp.value == 1.0
    tiny = {r.group: r for r in result.rows("race") if not r.judged}
    assert set(tiny) == {"Asian", "Native American"} and all(r.n < HEADLINE_MIN_GROUP_SIZE for r in tiny.values())
    assert any("'Asian' (12 rows)" in w and "not used for the headline" in w for w in result.warnings)

    # With one large group only, no gap is large enough to judge: no headline, and it says so.
    alone = frame[frame["race"] != "Caucasian"].reset_index(drop=True)
    single = run(make_inputs(alone, alone["p"].to_numpy(), sensitive=("race",)), n_boot=50)
    assert single.headline is None
    assert any("no gap is large enough to judge" in w for w in single.warnings)


def test_the_flip_test_counts_exactly_on_a_model_that_uses_the_attribute() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"s": rng.choice(np.array(["A", "B", "C"]), size=300), "x": rng.normal(size=300)})
    frame["y"] = rng.integers(0, 2, size=300)
    frame["hood"] = np.where(rng.random(300) < 0.5, "north", "south")
    n = frame["s"].value_counts()
    model = ColumnModel("s", "A", inputs=("s", "x"))
    inputs = AuditInputs(frame=frame, roles=Roles(target="y", features=("s", "x"), sensitive=("s",)), model=model)
    result = run(inputs, n_boot=20)
    (flip,) = result.flips
    assert flip.column == "s" and flip.role == "sensitive attribute" and flip.values == "each other value"
    cells = {(r.group, r.to_value): r for r in flip.rows}
    assert set(cells) == {(g, v) for g in "ABC" for v in "ABC" if g != v}
    for (group, value), row in cells.items():
        assert row.n == n[group]
        if group == "A":  # leaving A loses the favourable decision, every time
            assert (row.flipped, row.to_unfavourable, row.to_favourable) == (n["A"], n["A"], 0)
        elif value == "A":  # joining A gains it, every time
            assert (row.flipped, row.to_favourable, row.to_unfavourable) == (n[group], n[group], 0)
        else:  # B <-> C changes nothing
            assert row.flipped == 0 and row.examples == ()
    assert flip.flipped_by_group == {"A": n["A"], "B": n["B"], "C": n["C"]}
    example = cells[("B", "A")]
    assert len(example.examples) == 5 and all(frame["s"].iloc[i] == "B" for i in example.examples)
    assert example.example_before == (pytest.approx(0.1),) * 5 and example.example_after == (pytest.approx(0.9),) * 5

    # A proxy the model reads instead, flipped by the groups of the attribute.
    model = ColumnModel("hood", "north", inputs=("hood", "x"))
    inputs = AuditInputs(frame=frame, roles=Roles(target="y", features=("hood", "x"), sensitive=("s",)), model=model)
    (flip,) = run(inputs, n_boot=20, flip_inputs="hood").flips
    south = frame["hood"] == "south"
    for group in "ABC":
        to_north = next(r for r in flip.rows if r.group == group and r.to_value == "north")
        assert to_north.n == to_north.flipped == to_north.to_favourable == int((south & (frame["s"] == group)).sum())


def test_numeric_attributes_are_binned_visibly_and_the_bins_can_be_edited() -> None:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"age": rng.integers(18, 80, size=400)})
    frame["y"] = rng.integers(0, 2, size=400)
    p1 = rng.random(400)
    result = run(make_inputs(frame, p1, sensitive=("age",)), n_boot=20)
    _, labels, binned = group_codes(frame["age"])
    assert binned and [r.group for r in result.rows("age")] == labels  # quartiles, labelled as group metrics
    assert len(result.bin_edges["age"]) == 5
    edited = run(make_inputs(frame, p1, sensitive=("age",)), n_boot=20, edges="age=30, 50")
    assert [r.group for r in edited.rows("age")] == ["[18, 30]", "(30, 50]", "(50, 79]"]
    assert edited.bin_edges["age"] == (18.0, 30.0, 50.0, 79.0)
    assert edited.provenance.parameters["bin_edges"] == {"age": [18.0, 30.0, 50.0, 79.0]}
    tertiles = run(make_inputs(frame, p1, sensitive=("age",)), n_boot=20, bins=3)
    assert len(tertiles.rows("age")) == 3


def test_regressors_compare_scoring_rates_and_the_ll144_table_counts_unknowns_and_small_categories() -> None:
    rng = np.random.default_rng(4)
    n = 1000
    s = rng.choice(np.array(["x", "y", "z"]), size=n, p=[0.6, 0.39, 0.01]).astype(object)
    s[:40] = None
    target = rng.normal(size=n) + np.where(s == "x", 0.5, 0.0)
    prediction = target + rng.normal(scale=0.5, size=n)

    class Regressor(Model):
        task, classes, input_columns, format = Task.REGRESSION, None, ("row",), "sklearn"

        def _predict_raw(self, X: pd.DataFrame) -> np.ndarray:
            return prediction[X["row"].to_numpy(dtype=np.int64)]

    frame = pd.DataFrame({"s": s, "y": target, "row": np.arange(n)})
    inputs = AuditInputs(frame=frame, roles=Roles(target="y", features=("row",), sensitive=("s",)), model=Regressor())
    result = run(inputs, n_boot=20, ll144_exclude_small=True)
    assert result.favourable == "high" and result.median_score == pytest.approx(np.median(prediction))
    table = result.table("s")
    assert table.rate_kind == "scoring rate" and table.n_unknown == 40
    assert table.exclude_small and table.excluded == ("z",)  # under 2% of the rows with a known category
    rows = {r.category: r for r in table.rows}
    above = prediction > np.median(prediction)
    for category in ("x", "y"):
        assert rows[category].rate == pytest.approx(above[s == category].mean(), abs=1e-12)
    top = max(rows["x"].rate, rows["y"].rate)
    assert rows["y"].impact_ratio == pytest.approx(rows["y"].rate / top) and math.isnan(rows["z"].impact_ratio)
    assert next(r for r in result.rows("s") if r.group == "x").mae == pytest.approx(
        np.abs(target - prediction)[s == "x"].mean()
    )
    low = run(inputs, n_boot=20, favourable="low")
    assert low.table("s").rows[0].rate == pytest.approx((prediction < np.median(prediction))[s == "x"].mean())


def test_the_z_tests_match_the_chi_square_test_and_are_holm_adjusted() -> None:
    from scipy.stats import chi2_contingency

    frame, p1 = binary_task(900, seed=8)
    result = run(make_inputs(frame, p1), n_boot=20, reference="s=west")
    assert result.references["s"] == "west" and result.reference_given == ("s",)
    decided = p1 > 0.5
    s = frame["s"].to_numpy()
    raw = []
    for c in result.comparisons:
        table = [[decided[s == g].sum(), (~decided[s == g]).sum()] for g in (c.group, "west")]
        chi2, p, _, _ = chi2_contingency(table, correction=False)
        assert c.z**2 == pytest.approx(chi2, rel=1e-9) and c.p_value == pytest.approx(p, rel=1e-9)
        raw.append(c.p_value)
    assert [c.p_holm for c in result.comparisons] == pytest.approx(_holm(raw))
    assert _holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])


def test_the_result_reads_back_from_json_and_serves_the_group_views() -> None:
    frame, p1 = binary_task(300, seed=2)
    result = run(make_inputs(frame, p1, sensitive=("s", "t")), n_boot=20)
    data = json.loads(json.dumps(result.to_dict()))
    back = result_from_dict(data)
    assert isinstance(back, FairnessResult) and back.to_dict() == data
    assert back.headline == result.headline
    # The group-metrics views read these names.
    row = result.rows("s")[0]
    assert row.positive_rate == row.selection_rate and row.mean_prediction == row.mean_score
    assert {d.measure for d in result.differences} == {"demographic_parity", "equalized_odds"}
    summary = result.summary()
    assert set(summary) == {"s", "t", "s × t"}
    for measure in ("demographic_parity_difference", "demographic_parity_ratio", "equalized_odds_difference"):
        entry = summary["s"]
        value = entry[measure]
        assert isinstance(value, float) and entry[f"{measure}_ci_low"] <= value <= entry[f"{measure}_ci_high"]


# -- bad input ------------------------------------------------------------------------------------------------


def _bad_frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 400
    return pd.DataFrame(
        {
            "group": rng.choice(np.array(["A", "B"]), size=n),
            "one": "A",
            "empty": pd.Series([None] * n, dtype=object),
            "id": [f"id{i:04d}" for i in range(n)],
            "y": rng.integers(0, 2, size=n),
        }
    )


@pytest.mark.parametrize(
    ("params", "sentence"),
    [
        (
            {"sensitive": "one"},
            "The sensitive column 'one' has a single group ('A') on the evaluated rows of the data, so there is "
            "nothing to compare it with.",
        ),
        (
            {"sensitive": "empty"},
            "The sensitive column 'empty' has no value on any evaluated row of the data, so its groups cannot be "
            "compared.",
        ),
        (
            {"sensitive": "id"},
            "The sensitive column 'id' has 400 different values in the data; an attribute is compared over at most "
            "100 groups (is it an identifier, or a number to bin?).",
        ),
        (
            {"reference": "group=C"},
            "The reference group 'C' does not exist in 'group'; its groups are 'A', 'B'.",
        ),
        (
            {"reference": "sex=F"},
            "The reference sex=F names 'sex', which is not a sensitive attribute here ('group').",
        ),
        ({"threshold": 1.5}, "The decision threshold must be a number strictly between 0 and 1, not 1.5."),
        ({"threshold": 0.0}, "The decision threshold must be a number strictly between 0 and 1, not 0.0."),
        ({"favourable": "yes"}, "The model has no class 'yes'; its classes are 0, 1."),
        ({"flip_inputs": "group"}, "The flip test changes model inputs only; 'group' is not among the inputs of"),
    ],
)
def test_bad_settings_are_refused_in_one_sentence(params: dict, sentence: str) -> None:
    frame = _bad_frame()
    inputs = make_inputs(frame, np.full(len(frame), 0.5), sensitive=("group",))
    with pytest.raises(AnalysisError) as caught:
        run(inputs, n_boot=10, **params)
    assert str(caught.value).startswith(sentence) and "\n" not in str(caught.value)
    if "flip_inputs" not in params:  # the audit's check before it runs says the same
        with pytest.raises(AnalysisError, match="^" + sentence[:30].replace("(", r"\(")):
            fairness.check_settings(inputs, **{k: v for k, v in params.items()})


def test_a_regressor_with_a_class_as_favourable_is_one_sentence() -> None:
    class Regressor(Model):
        task, classes, input_columns, format = Task.REGRESSION, None, ("row",), "sklearn"

        def _predict_raw(self, X: pd.DataFrame) -> np.ndarray:
            return X["row"].to_numpy(dtype=float)

    frame = _bad_frame().assign(row=np.arange(400))
    inputs = AuditInputs(
        frame=frame, roles=Roles(target="y", features=("row",), sensitive=("group",)), model=Regressor()
    )
    with pytest.raises(AnalysisError) as caught:
        fairness.check_settings(inputs, favourable="1")
    assert str(caught.value) == (
        "The model Regressor is a regressor, so the favourable outcome is a side of its prediction, 'high' or 'low', "
        "not the class '1'."
    )


def test_the_descriptor_refuses_a_threshold_outside_0_1_before_anything_runs() -> None:
    method = get_method("fairness")
    for value in (0, 1, 1.5, -0.1):
        with pytest.raises(AnalysisError) as caught:
            method.validate({"threshold": value})
        assert str(caught.value) == (
            f"Fairness's parameter threshold must be a number strictly between 0 and 1, not {value!r}."
        )
    assert method.validate({"threshold": 0.3})["threshold"] == 0.3


# -- the command line and the audit ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import skops.io as sio
    from sklearn.linear_model import LinearRegression, LogisticRegression

    folder = tmp_path_factory.mktemp("fairness_cli")
    rng = np.random.default_rng(3)
    n = 300
    frame = _bad_frame().iloc[:n].assign(x1=rng.normal(size=n), x2=rng.normal(size=n))
    frame["y"] = (frame["x1"] + rng.normal(size=n) > 0).astype(int)
    frame["amount"] = frame["x1"] * 3 + rng.normal(size=n)
    frame.to_csv(folder / "data.csv", index=False)
    sio.dump(LogisticRegression().fit(frame[["x1", "x2"]], frame["y"]), folder / "clf.skops")
    sio.dump(LinearRegression().fit(frame[["x1", "x2"]], frame["amount"]), folder / "reg.skops")
    return {"data": folder / "data.csv", "clf": folder / "clf.skops", "reg": folder / "reg.skops"}


def _trusted(path: Path) -> list[str]:
    return ["--trust-model", hashlib.sha256(path.read_bytes()).hexdigest()]


@pytest.mark.parametrize(
    ("extra", "model", "target", "sentence"),
    [
        (["--sensitive", "one"], "clf", "y", "The sensitive column 'one' has a single group ('A')"),
        (["--sensitive", "empty"], "clf", "y", "The sensitive column 'empty' has no value on any evaluated row"),
        (["--sensitive", "id"], "clf", "y", "The sensitive column 'id' has 300 different values in data.csv"),
        (["--reference", "group=C"], "clf", "y", "The reference group 'C' does not exist in 'group'"),
        (["--threshold", "1.5"], "clf", "y", "--threshold must be strictly between 0 and 1, got 1.5."),
        (["--favourable", "1"], "reg", "amount", "The model reg.skops is a regressor, so the favourable outcome"),
    ],
)
def test_probity_audit_refuses_bad_fairness_settings_before_it_runs(
    files, tmp_path, capsys, extra, model, target, sentence
):
    from engine.cli import main

    argv = ["--progress", "none", "audit", "--data", str(files["data"]), "--model", str(files[model])]
    argv += [*_trusted(files[model]), "--target", target, "--out", str(tmp_path / "out"), "--no-report"]
    if "--sensitive" not in extra:
        argv += ["--sensitive", "group"]
    assert main([*argv, *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"probity: {sentence}") and err.count("\n") == 0, err
    assert not (tmp_path / "out" / "results.json").exists()


def test_probity_explain_fairness_takes_the_settings_as_parameters(files, tmp_path, capsys) -> None:
    from engine.cli import main

    out = tmp_path / "fairness.json"
    argv = ["--progress", "none", "explain", "fairness", "--data", str(files["data"]), "--model", str(files["clf"])]
    argv += [*_trusted(files["clf"]), "--target", "y", "--sensitive", "group", "--samples", "50"]
    argv += ["--param", "reference=group=B", "--param", "threshold=0.4", "--param", "favourable=0", "--out", str(out)]
    assert main(argv) == 0, capsys.readouterr().err
    result = json.loads(out.read_text())["result"]
    assert result["references"] == {"group": "B"} and result["threshold"] == 0.4 and result["favourable"] == 0
    assert result["n_boot"] == 50
    call = result["provenance"]["call"]
    assert call["parameters"]["reference"] == "group=B" and call["parameters"]["n_boot"] == 50
    capsys.readouterr()
    assert (
        main(
            [
                "--progress",
                "none",
                "rerun",
                str(out),
                "--data",
                str(files["data"]),
                "--model",
                str(files["clf"]),
                *_trusted(files["clf"]),
            ]
        )
        == 0
    )
    assert "every number bit-identical" in capsys.readouterr().out
    bad = [*argv[:-2], "--param", "threshold=1", "--out", str(out)]
    assert main(bad) == 2
    assert capsys.readouterr().err.strip() == (
        "probity: Fairness's parameter threshold must be a number strictly between 0 and 1, not 1."
    )


def test_the_audit_writes_a_fairness_key_and_an_older_record_reruns_without_it(files, tmp_path, capsys) -> None:
    from engine.audit import AuditRequest, audit_document, run_audit

    request = AuditRequest(
        data=files["data"],
        model=files["clf"],
        target="y",
        sensitive=("group",),
        trusted_sha256=(hashlib.sha256(files["clf"].read_bytes()).hexdigest(),),
        analyses=("performance", "permutation", "groups", "proxies", "fairness"),
        n_repeats=3,
        reference="group=B",
        timestamp="2026-01-01T00:00:00Z",
        measure_times=False,
    )
    outcome = run_audit(request, JobContext(seed=0))
    document = json.loads(json.dumps(audit_document(outcome)))
    entry = document["fairness"]["group"]
    for measure in ("demographic_parity_difference", "demographic_parity_ratio", "equalized_odds_difference"):
        # The interface: each a number, with its interval's ends beside it.
        value, low, high = entry[measure], entry[f"{measure}_ci_low"], entry[f"{measure}_ci_high"]
        assert isinstance(value, float) and low <= value <= high
        assert entry["measures"][measure]["value"] == value and entry["measures"][measure]["ci_low"] == low
    assert entry["reference"] == "B" and entry["reference_given"] is True
    assert document["provenance"]["parameters"]["fairness"] == {
        "favourable": None,
        "reference": "group=B",
        "threshold": 0.5,
    }
    proxies = document["results"]["proxies"]
    assert proxies["provenance"]["call"]["parameters"]["importance"]["method"] == "permutation"
    again = AuditRequest.from_document(document, data=request.data, model=request.model)
    assert again.reference == "group=B" and again.threshold == 0.5

    # An audit recorded before the analyses existed names neither: it re-runs without them, to the same record.
    older = AuditRequest(**{**request.__dict__, "analyses": ("performance", "permutation", "groups")})
    recorded = older.parameters()
    assert "fairness" not in recorded
    previous = json.loads(json.dumps(audit_document(run_audit(older, JobContext(seed=0)))))
    assert "fairness" not in previous and "proxies" not in previous["results"]
    rerun = AuditRequest.from_document(previous, data=request.data, model=request.model)
    assert rerun.analyses == ("performance", "permutation", "groups") and rerun.parameters() == recorded


def test_a_regressors_favourable_side_is_offered_as_high_or_low() -> None:
    from types import SimpleNamespace

    from engine.explain.fairness import METHOD
    from engine.models.base import Task

    favourable = METHOD.param("favourable")
    regressor = SimpleNamespace(classes=None, task=Task.REGRESSION)
    classifier = SimpleNamespace(classes=(0, 1), task=Task.CLASSIFICATION)
    assert favourable.choices_for(regressor) == ("high", "low")
    assert favourable.choices_for(classifier) == ("0", "1")
    assert favourable.choices_for(None) == ()

"""The proxy table names the inputs that carry a sensitive attribute into the model: the demo's neighbourhood first."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pandas as pd
import pytest

from engine.errors import AnalysisError
from engine.explain import proxies
from engine.explain.permutation import PermutationImportanceResult
from engine.explain.proxies import MEDIUM_RISK, ProxyResult
from engine.inputs import AuditInputs
from engine.jobs import JobContext
from engine.models.base import Model, Task
from engine.plan import JobSpec, run_job
from engine.results import Provenance, result_from_dict
from engine.schema import Roles


class ConstantModel(Model):
    """A classifier that ignores its inputs (the proxy table reads only their names)."""

    def __init__(self, inputs: tuple[str, ...]) -> None:
        self.task, self.classes, self.input_columns, self.format = Task.CLASSIFICATION, (0, 1), inputs, "sklearn"

    def _predict_raw(self, X: pd.DataFrame) -> np.ndarray:
        return np.tile([0.5, 0.5], (len(X), 1))


def importance(names: list[str], mean: list[float], half: float = 0.01) -> PermutationImportanceResult:
    provenance = Provenance(
        method="permutation",
        parameters={},
        seed=0,
        data_sha256=None,
        model_sha256=None,
        versions={},
        started_at=None,
        finished_at=None,
    )
    m = np.asarray(mean, dtype=float)
    return PermutationImportanceResult(
        provenance=provenance, feature_names=tuple(names), mean=m, std=m * 0, ci_low=m - half, ci_high=m + half
    )


def synthetic(n: int = 1200, seed: int = 0) -> pd.DataFrame:
    """``s`` (A/B); ``copy`` is ``s`` itself, ``hood`` a noisy proxy, ``noise`` unrelated, ``age`` a number."""
    rng = np.random.default_rng(seed)
    s = rng.choice(np.array(["A", "B"]), size=n, p=[0.6, 0.4])
    hood = np.where(rng.random(n) < 0.8, np.where(s == "B", "east", "west"), rng.choice(np.array(["east", "west"]), n))
    return pd.DataFrame(
        {
            "s": s,
            "copy": s,
            "hood": hood,
            "noise": rng.normal(size=n),
            "age": rng.integers(18, 80, size=n),
            "y": rng.integers(0, 2, size=n),
        }
    )


def inputs_of(frame: pd.DataFrame, features: tuple[str, ...], sensitive=("s",)) -> AuditInputs:
    roles = Roles(target="y", features=features, sensitive=tuple(sensitive))
    return AuditInputs(frame=frame, roles=roles, model=ConstantModel(features))


def run(inputs: AuditInputs, *, seed: int = 0, **params) -> ProxyResult:
    return proxies.run(inputs, ctx=JobContext(seed=seed), **params)


# -- known answers ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_inputs(tmp_path_factory: pytest.TempPathFactory) -> AuditInputs:
    from engine.audit import load_inputs
    from engine.demo import ensure_demo

    paths = ensure_demo(tmp_path_factory.mktemp("demo"))
    sha = hashlib.sha256(paths.model.read_bytes()).hexdigest()
    return load_inputs(paths.data, paths.model, target="approved", sensitive=("group",), trusted_sha256=(sha,))


def test_the_demos_neighbourhood_comes_out_on_top_for_group(demo_inputs) -> None:
    outcome = run_job(JobSpec("proxies"), demo_inputs, JobContext(seed=0))
    result = outcome.result
    assert isinstance(result, ProxyResult) and set(outcome.built_on) == {"importance"}
    table = result.table("group")
    top = table[0]
    assert top.feature == "neighbourhood" and top.rank == 1 and top.level == "high" and top.used
    assert result.strongest("group") == "neighbourhood"
    # It predicts group far better than any other input, and the model uses it.
    assert top.auc > 0.75 and all(r.auc < 0.65 for r in table[1:])
    assert top.mutual_information == max(r.mutual_information for r in table)
    # Income matters most to the model but says little of group: a low risk, not the proxy.
    income = next(r for r in table if r.feature == "income")
    assert income.importance == max(r.importance for r in table) and income.risk < top.risk
    (attribute,) = result.attributes
    assert attribute.kind == "auc" and attribute.groups == ("A", "B") and not attribute.direct_input
    assert attribute.all_inputs_auc >= top.auc - 0.02
    call = result.provenance.call
    assert call["parameters"]["importance"]["method"] == "permutation"  # rerun makes it first, as recorded


def test_mutual_information_and_auc_have_their_closed_forms_on_a_copy_and_on_noise() -> None:
    frame = synthetic()
    names = ["copy", "hood", "noise"]
    result = run(inputs_of(frame, tuple(names)), importance=importance(names, [0.2, 0.1, 0.05]))
    rows = {r.feature: r for r in result.table("s")}
    p = (frame["s"] == "A").mean()
    entropy = -(p * math.log2(p) + (1 - p) * math.log2(1 - p))
    assert rows["copy"].auc == 1.0 and rows["copy"].predictiveness == 1.0
    assert rows["copy"].mutual_information == pytest.approx(entropy, abs=1e-12) and rows["copy"].normalised_mi == 1.0
    # hood agrees with s on about 90% of rows in both groups: about the AUC of a one-split rule (each fold's
    # tree scores its held-out rows with that fold's leaf shares, so not exactly).
    agree_a = ((frame["hood"] == "west") & (frame["s"] == "A")).sum() / (frame["s"] == "A").sum()
    agree_b = ((frame["hood"] == "east") & (frame["s"] == "B")).sum() / (frame["s"] == "B").sum()
    assert rows["hood"].auc == pytest.approx((agree_a + agree_b) / 2, abs=0.02)
    assert abs(rows["noise"].auc - 0.5) < 0.06 and rows["noise"].risk < MEDIUM_RISK
    assert [r.feature for r in result.table("s")] == ["copy", "hood", "noise"]
    assert result.strongest("s") == "copy"


def test_an_input_the_model_does_not_use_is_no_proxy_however_well_it_predicts() -> None:
    frame = synthetic()
    names = ["copy", "hood", "noise"]
    # copy's importance interval includes zero: not used.
    result = run(inputs_of(frame, tuple(names)), importance=importance(names, [0.005, 0.1, 0.2]))
    rows = {r.feature: r for r in result.table("s")}
    assert not rows["copy"].used and rows["copy"].risk == 0.0 and rows["copy"].level == "not used"
    assert rows["copy"].predictiveness == 1.0  # still shown: it predicts the attribute perfectly
    assert result.strongest("s") == "hood" and rows["hood"].rank == 1
    assert rows["hood"].importance_share == pytest.approx(0.1 / 0.305)


def test_without_importance_no_input_can_be_named_and_it_says_so() -> None:
    frame = synthetic()
    result = run(inputs_of(frame, ("copy", "hood")))
    assert all(r.risk == 0.0 and not r.used for r in result.rows) and result.strongest("s") == ""
    assert any("No permutation importance was given" in w for w in result.warnings)


def test_a_numeric_attribute_is_predicted_as_a_number_and_an_attribute_that_is_an_input_is_left_out() -> None:
    frame = synthetic()
    frame["older"] = frame["age"] + np.random.default_rng(1).normal(scale=2, size=len(frame))
    names = ["older", "noise", "age"]
    result = run(inputs_of(frame, tuple(names), sensitive=("age",)), importance=importance(names, [0.1, 0.1, 0.1]))
    (attribute,) = result.attributes
    assert attribute.kind == "r2" and attribute.direct_input and math.isnan(attribute.all_inputs_auc)
    rows = {r.feature: r for r in result.table("age")}
    assert set(rows) == {"older", "noise"}  # not age itself
    assert rows["older"].r2 > 0.9 and math.isnan(rows["older"].auc) and rows["older"].level == "high"
    assert rows["noise"].r2 < 0.05
    assert any("'age' is itself a model input" in w for w in result.warnings)


def test_the_table_is_seeded_reads_back_from_json_and_refuses_bad_input() -> None:
    frame = synthetic()
    names = ["hood", "noise"]
    weights = importance(names, [0.1, 0.1])
    first = run(inputs_of(frame, tuple(names)), importance=weights, seed=3)
    again = run(inputs_of(frame, tuple(names)), importance=weights, seed=3)
    assert json.dumps(first.to_dict()["rows"]) == json.dumps(again.to_dict()["rows"])
    data = json.loads(json.dumps(first.to_dict()))
    back = result_from_dict(data)
    assert isinstance(back, ProxyResult) and back.to_dict() == data
    with pytest.raises(AnalysisError, match="^Choose at least one sensitive attribute column for the proxy table.$"):
        run(inputs_of(frame, tuple(names), sensitive=()))
    with pytest.raises(AnalysisError, match="^The data has no column 'sex'.$"):
        run(inputs_of(frame, tuple(names)), sensitive="sex")
    lone = frame.assign(s="A")
    with pytest.raises(AnalysisError, match="has fewer than two groups with at least 5 rows"):
        run(inputs_of(lone, tuple(names)), importance=weights)

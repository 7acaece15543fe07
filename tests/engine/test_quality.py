"""Quality figures: deletion/insertion faithfulness, agreement between methods, attaching figures."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from engine.attribution import AttributionResult
from engine.errors import AnalysisError, Cancelled
from engine.explain import quality
from engine.explain.permutation import PermutationImportanceResult
from engine.explain.quality import (
    AgreementResult,
    FaithfulnessResult,
    attach_quality,
    average_ranks,
    faithfulness,
    global_ranking,
    method_agreement,
    reference_row,
    spearman,
    top_k_jaccard,
)
from engine.inputs import AuditInputs
from engine.jobs import CancelToken, JobContext
from engine.models.base import Model, Task
from engine.models.sklearn_adapter import SklearnModel
from engine.results import Provenance, result_from_dict, utc_now
from engine.schema import Roles

BETA = np.array([3.0, 2.0, 0.0, 0.0])
FEATURES = ("x0", "x1", "x2", "x3")


class LinearModel(Model):
    """f = X @ beta on named columns, recording the rows of every call."""

    def __init__(self, beta: np.ndarray) -> None:
        self.task = Task.REGRESSION
        self.classes = None
        self.input_columns = FEATURES
        self.format = "sklearn"
        self.beta = beta
        self.calls: list[int] = []

    def _predict_raw(self, X: pd.DataFrame) -> np.ndarray:
        self.calls.append(len(X))
        return X.to_numpy(dtype=np.float64) @ self.beta


def provenance(method: str = "test", **parameters) -> Provenance:
    now = utc_now()
    return Provenance(
        method=method,
        parameters=parameters,
        seed=0,
        data_sha256=None,
        model_sha256=None,
        versions={},
        started_at=now,
        finished_at=now,
    )


def attribution(
    values: np.ndarray,
    rows: np.ndarray,
    predictions: np.ndarray,
    *,
    features=FEATURES,
    space: str = "value",
    class_index: int | None = None,
    **parameters,
) -> AttributionResult:
    return AttributionResult(
        provenance=provenance(**parameters),
        method="exact",
        feature_names=tuple(features),
        rows=rows,
        values=values,
        base_values=None,
        predictions=predictions,
        output_name="prediction",
        output_space=space,
        class_index=class_index,
    )


@pytest.fixture(scope="module")
def linear_case():
    rng = np.random.default_rng(3)
    n = 40
    frame = pd.DataFrame(rng.normal(size=(n, 4)) * [1.0, 2.0, 1.0, 3.0], columns=list(FEATURES))
    inputs = AuditInputs(frame=frame, roles=Roles(target=None, features=FEATURES), model=LinearModel(BETA))
    X = frame.to_numpy()
    median = np.median(X, axis=0)
    phi = BETA * (X - median)  # exact Shapley values of a linear model with the median as reference
    rows = np.arange(n, dtype=np.int64)
    return inputs, X, median, phi, attribution(phi, rows, X @ BETA)


def ctx(seed: int = 0, **kwargs) -> JobContext:
    return JobContext(seed=seed, **kwargs)


# -- faithfulness ---------------------------------------------------------------------------------


def test_reference_row_is_median_and_mode_keeping_dtypes() -> None:
    X = pd.DataFrame(
        {
            "a": [1.0, 5.0, np.nan, 2.0, 10.0],
            "b": pd.Series([1, 2, 3, 4, 7], dtype="int64"),
            "c": pd.Series(["u", "v", "v", None, "u"], dtype="str"),
            "d": pd.Categorical(["p", "q", "q", "q", "p"]),
            "e": [True, False, False, True, True],
        }
    )
    ref = reference_row(X)
    assert list(ref.dtypes) == list(X.dtypes)
    assert ref["a"].iloc[0] == 3.5  # median of the present values
    assert ref["b"].iloc[0] == 3
    assert ref["c"].iloc[0] == "u"  # tie between u and v: the value seen first
    assert ref["d"].iloc[0] == "q"
    assert bool(ref["e"].iloc[0]) is True
    even = reference_row(pd.DataFrame({"b": pd.Series([1, 2, 3, 4], dtype="int64")}))
    assert even["b"].iloc[0] == 2  # lower median: a value that occurs


def test_curves_follow_the_closed_form_of_an_additive_model(linear_case) -> None:
    inputs, X, median, phi, result = linear_case
    for order in ("signed", "absolute"):
        faith = faithfulness(inputs, result, ctx=ctx(), order=order)
        key = phi if order == "signed" else np.abs(phi)
        ranked = np.take_along_axis(phi, np.argsort(-key, axis=1, kind="stable"), axis=1)
        removed = np.concatenate([np.zeros((len(X), 1)), np.cumsum(ranked, axis=1)], axis=1)
        np.testing.assert_allclose(faith.deletion, (X @ BETA)[:, None] - removed, atol=1e-12)
        np.testing.assert_allclose(faith.insertion, median @ BETA + removed, atol=1e-12)
        np.testing.assert_allclose(faith.fractions, np.arange(5) / 4)
        np.testing.assert_allclose(faith.deletion_auc, np.trapezoid(faith.deletion, faith.fractions, axis=1))


def test_curves_start_at_the_row_and_end_at_the_reference(linear_case) -> None:
    inputs, X, median, _, result = linear_case
    faith = faithfulness(inputs, result, ctx=ctx())
    f_x, f_ref = X @ BETA, median @ BETA
    np.testing.assert_allclose(faith.deletion[:, 0], f_x, rtol=0, atol=1e-12)
    np.testing.assert_allclose(faith.deletion[:, -1], f_ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(faith.insertion[:, 0], f_ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(faith.insertion[:, -1], f_x, rtol=0, atol=1e-12)
    np.testing.assert_allclose(faith.random_deletion[:, [0, -1]], np.c_[f_x, np.full_like(f_x, f_ref)], atol=1e-12)
    assert faith.summary["reference_output"] == pytest.approx(f_ref, abs=1e-12)
    assert faith.reference == tuple(str(v) for v in median)
    assert faith.warnings == ()  # the curves start at the explanation's own predictions


def test_true_attributions_beat_random_which_beats_the_worst_order(linear_case) -> None:
    inputs, X, median, phi, result = linear_case
    best = faithfulness(inputs, result, ctx=ctx())
    # Negated values make the signed order replace the most negative contributions first: the worst order.
    worst = faithfulness(inputs, attribution(-phi, result.rows, X @ BETA), ctx=ctx())
    np.testing.assert_array_equal(best.random_deletion_auc, worst.random_deletion_auc)
    assert (best.deletion_auc < best.random_deletion_auc).all()
    assert (best.random_deletion_auc < worst.deletion_auc).all()
    assert (best.insertion_auc > best.random_insertion_auc).all()
    assert (best.random_insertion_auc > worst.insertion_auc).all()
    assert (best.deletion_gain > 0).all() and (best.insertion_gain > 0).all()
    assert (worst.deletion_gain < 0).all() and (worst.insertion_gain < 0).all()
    assert best.summary["share_deletion_beats_random"] == 1.0
    assert best.summary["median_deletion_gain"] == pytest.approx(np.median(best.deletion_gain))


def test_all_steps_are_scored_in_two_model_calls(linear_case) -> None:
    inputs, X, _, _, result = linear_case
    model = inputs.model
    model.calls.clear()
    faithfulness(inputs, result, ctx=ctx(), n_random=5)
    n, f = X.shape
    # One call for the rows and the reference, one for every inner step of every order.
    assert model.calls == [n + 1, n * 6 * 2 * (f - 1)]
    assert sum(model.calls) == int(faithfulness(inputs, result, ctx=ctx(), n_random=5).summary["model_rows"])


def test_random_reference_depends_on_the_seed_only(linear_case) -> None:
    inputs, _, _, _, result = linear_case
    a = faithfulness(inputs, result, ctx=ctx(seed=5))
    b = faithfulness(inputs, result, ctx=ctx(seed=5))
    c = faithfulness(inputs, result, ctx=ctx(seed=6))
    np.testing.assert_array_equal(a.random_deletion, b.random_deletion)
    np.testing.assert_array_equal(a.random_insertion_auc, b.random_insertion_auc)
    assert not np.array_equal(a.random_deletion_auc, c.random_deletion_auc)
    np.testing.assert_array_equal(a.deletion, c.deletion)  # the explained order has no randomness


def test_cancel_stops_between_model_calls(linear_case, monkeypatch) -> None:
    inputs, _, _, _, result = linear_case
    model = inputs.model
    token = CancelToken()
    token.cancel()
    model.calls.clear()
    with pytest.raises(Cancelled):
        faithfulness(inputs, result, ctx=ctx(cancel=token))
    assert model.calls == []

    monkeypatch.setattr(quality, "MAX_CELLS", 400)  # 100 design rows per call
    token = CancelToken()
    seen: list[float] = []

    def progress(fraction: float, message: str) -> None:
        seen.append(fraction)
        if len(model.calls) >= 3:
            token.cancel()

    model.calls.clear()
    with pytest.raises(Cancelled):
        faithfulness(inputs, result, ctx=ctx(progress_fn=progress, cancel=token))
    assert len(model.calls) == 3  # the rows, then two chunks before the cancel was seen
    assert seen == sorted(seen) and seen[-1] < 1.0


def test_chunking_does_not_change_the_curves(linear_case, monkeypatch) -> None:
    inputs, _, _, _, result = linear_case
    whole = faithfulness(inputs, result, ctx=ctx())
    monkeypatch.setattr(quality, "MAX_CELLS", 7 * 4)
    chunked = faithfulness(inputs, result, ctx=ctx())
    np.testing.assert_array_equal(whole.deletion, chunked.deletion)
    np.testing.assert_array_equal(whole.random_insertion, chunked.random_insertion)


def test_max_rows_samples_rows_and_figures_align_with_the_explanation(linear_case) -> None:
    inputs, _, _, _, result = linear_case
    full = faithfulness(inputs, result, ctx=ctx())
    part = faithfulness(inputs, result, ctx=ctx(), max_rows=7)
    assert part.rows.shape == (7,) and np.all(np.diff(part.rows) > 0)
    np.testing.assert_allclose(part.deletion_auc, full.deletion_auc[part.result_index], atol=1e-12)
    assert any("7 of the 40" in w for w in part.warnings)

    attached = attach_quality(result, **part.figures())
    q = attached.quality["deletion_auc"]
    assert q.shape == (40,) and not q.flags.writeable
    np.testing.assert_allclose(q[part.result_index], part.deletion_auc)
    assert np.isnan(np.delete(q, part.result_index)).all()
    assert attached.summary["median_insertion_gain"] == part.summary["median_insertion_gain"]
    assert "deletion_auc" not in result.quality and result.summary == {}  # the original is untouched


def test_attach_quality_rejects_a_figure_of_the_wrong_length(linear_case) -> None:
    _, _, _, _, result = linear_case
    merged = attach_quality(result, r2=np.ones(40), note=2)
    assert merged.summary == {"note": 2.0} and merged.quality["r2"].dtype == np.float64
    with pytest.raises(ValueError, match="one number per explained row"):
        attach_quality(result, r2=np.ones(3))


def test_results_round_trip_through_json(linear_case) -> None:
    inputs, _, _, _, result = linear_case
    faith = faithfulness(inputs, result, ctx=ctx(), n_random=2)
    back = result_from_dict(faith.to_dict())
    assert isinstance(back, FaithfulnessResult)
    np.testing.assert_array_equal(back.insertion, faith.insertion)
    assert back.reference == faith.reference and back.summary == faith.summary
    agreement = method_agreement({"a": (FEATURES, [1, 2, 3, 4]), "b": (FEATURES, [4, 3, 2, 1])})
    again = result_from_dict(agreement.to_dict())
    assert isinstance(again, AgreementResult)
    np.testing.assert_array_equal(again.spearman, agreement.spearman)


def test_bad_parameters_and_mismatched_explanations_are_refused(linear_case) -> None:
    inputs, X, _, phi, result = linear_case
    with pytest.raises(AnalysisError, match=r"^The number of random orders must be a positive whole number, not 0\.$"):
        faithfulness(inputs, result, ctx=ctx(), n_random=0)
    with pytest.raises(AnalysisError, match=r"^The feature order must be one of signed, absolute, not 'up'\.$"):
        faithfulness(inputs, result, ctx=ctx(), order="up")
    other = attribution(phi[:, :3], result.rows, X @ BETA, features=FEATURES[:3])
    with pytest.raises(AnalysisError, match=r"does not cover the model's input columns of the data \(lacks 'x3'\)\.$"):
        faithfulness(inputs, other, ctx=ctx())
    far = attribution(phi[:2], np.array([0, 99]), X[:2] @ BETA)
    with pytest.raises(AnalysisError, match=r"row position 99 is outside the data, which has 40 rows\.$"):
        faithfulness(inputs, far, ctx=ctx())


def test_a_reordered_explanation_gives_the_same_curves(linear_case) -> None:
    inputs, X, _, phi, result = linear_case
    shuffled = attribution(phi[:, [2, 0, 3, 1]], result.rows, X @ BETA, features=[FEATURES[j] for j in (2, 0, 3, 1)])
    np.testing.assert_array_equal(
        faithfulness(inputs, shuffled, ctx=ctx()).deletion, faithfulness(inputs, result, ctx=ctx()).deletion
    )


@pytest.fixture(scope="module")
def pipeline_case():
    rng = np.random.default_rng(1)
    n = 120
    colour = rng.choice(np.array(["red", "green", "blue"]), size=n)
    X = pd.DataFrame(
        {"strong": rng.normal(size=n), "colour": pd.Series(colour, dtype="str"), "noise": rng.normal(size=n)}
    )
    logit = 2.5 * X["strong"] + np.where(colour == "red", 1.5, -0.5)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    pipe = Pipeline(
        [
            (
                "prep",
                ColumnTransformer([("cat", OneHotEncoder(sparse_output=False), ["colour"])], remainder="passthrough"),
            ),
            ("clf", LogisticRegression()),
        ]
    ).fit(X, y)
    inputs = AuditInputs(
        frame=X.assign(label=y), roles=Roles(target="label", features=tuple(X.columns)), model=SklearnModel(pipe)
    )
    return inputs, X, pipe


def test_string_columns_and_log_odds_use_the_estimators_margin(pipeline_case) -> None:
    inputs, X, pipe = pipeline_case
    rows = np.arange(0, 120, 10, dtype=np.int64)
    margin = pipe.decision_function(X.iloc[rows])
    values = np.random.default_rng(0).normal(size=(len(rows), 3))
    result = attribution(values, rows, margin, features=X.columns, space="log-odds", class_index=1)
    faith = faithfulness(inputs, result, ctx=ctx())
    ref = reference_row(X)
    assert faith.output_space == "log-odds" and faith.warnings == ()
    np.testing.assert_allclose(faith.deletion[:, 0], margin, atol=1e-12)
    np.testing.assert_allclose(faith.deletion[:, -1], pipe.decision_function(ref)[0], atol=1e-12)
    # Class 0's log-odds are the negated margin; KernelSHAP's logit link is the logit of the probability.
    zero = faithfulness(
        inputs, attribution(values, rows, -margin, features=X.columns, space="log-odds", class_index=0), ctx=ctx()
    )
    np.testing.assert_allclose(zero.insertion[:, -1], -margin, atol=1e-12)
    kernel = faithfulness(
        inputs,
        attribution(values, rows, margin, features=X.columns, space="log-odds", class_index=1, link="logit"),
        ctx=ctx(),
    )
    p = pipe.predict_proba(X.iloc[rows])[:, 1]
    np.testing.assert_allclose(kernel.deletion[:, 0], np.log(p / (1 - p)), atol=1e-9)


def test_a_space_the_model_lacks_falls_back_to_probability_with_a_warning(pipeline_case) -> None:
    inputs, X, pipe = pipeline_case
    rows = np.arange(5, dtype=np.int64)
    result = attribution(np.zeros((5, 3)), rows, np.zeros(5), features=X.columns, space="logit", class_index=1)
    faith = faithfulness(inputs, result, ctx=ctx())
    assert faith.output_space == "probability" and faith.explained_space == "logit"
    np.testing.assert_allclose(faith.deletion[:, 0], pipe.predict_proba(X.iloc[rows])[:, 1], atol=1e-12)
    assert faith.warnings == (
        "The explanation is in logit space, which the model SklearnModel does not expose, so the faithfulness "
        "curves use its probability P(1) instead.",
    )


def test_predictions_from_another_model_are_flagged(pipeline_case) -> None:
    inputs, X, pipe = pipeline_case
    rows = np.arange(5, dtype=np.int64)
    wrong = pipe.predict_proba(X.iloc[rows])[:, 1] + 0.1
    result = attribution(np.zeros((5, 3)), rows, wrong, features=X.columns, space="probability", class_index=1)
    (message,) = faithfulness(inputs, result, ctx=ctx()).warnings
    assert message.startswith("The model's output on the explained rows of the data differs from the explanation's")


# -- agreement between methods --------------------------------------------------------------------


def test_average_ranks_match_scipy_with_ties() -> None:
    a = np.array([3.0, 1.0, 3.0, 2.0, 3.0, 1.0])
    np.testing.assert_array_equal(average_ranks(a), stats.rankdata(a))


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_spearman_equals_scipy(data) -> None:
    n = data.draw(st.integers(2, 25))
    values = st.one_of(st.integers(-3, 3).map(float), st.floats(-1e6, 1e6, allow_nan=False))
    a = np.array(data.draw(st.lists(values, min_size=n, max_size=n)))
    b = np.array(data.draw(st.lists(values, min_size=n, max_size=n)))
    ours = spearman(a, b)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        assert math.isnan(ours)
        return
    theirs = stats.spearmanr(a, b).statistic
    assert ours == pytest.approx(theirs, abs=1e-12)


def test_identical_rankings_agree_and_reversed_ones_disagree() -> None:
    imp = np.array([0.5, 0.1, 0.9, 0.3, 0.2, 0.05, 0.7])
    names = tuple(f"f{j}" for j in range(7))
    result = method_agreement({"shap": (names, imp), "same": (names, imp * 10), "reversed": (names, -imp)})
    np.testing.assert_allclose(result.spearman, [[1, 1, -1], [1, 1, -1], [-1, -1, 1]], atol=1e-15)
    assert result.top_k == 5
    # The top five of the reversed ranking are the bottom five: 3 of 7 features are in both.
    np.testing.assert_allclose(result.top_k_jaccard[0], [1.0, 1.0, 3 / 7])
    assert result.summary["min_spearman"] == -1.0


def test_agreement_uses_common_features_by_name() -> None:
    lime = (("a", "b", "c", "d"), [0.4, 0.3, 0.2, 0.1])
    perm = (("d", "c", "b", "a", "extra"), [0.1, 0.2, 0.3, 0.4, 9.0])
    result = method_agreement({"lime": lime, "permutation": perm}, top_k=2)
    assert result.feature_names == ("a", "b", "c", "d")
    assert result.spearman[0, 1] == pytest.approx(1.0)
    assert result.top_k_jaccard[0, 1] == 1.0
    assert result.warnings == ("1 features appear in only some of the rankings and were left out of the comparison.",)
    with pytest.raises(AnalysisError, match=r"^Comparing methods needs at least two rankings, but 1 were given\.$"):
        method_agreement({"lime": lime})


def test_top_k_jaccard_counts_shared_features() -> None:
    assert top_k_jaccard(np.array([5, 4, 3, 2, 1.0]), np.array([5, 1, 4, 2, 3.0]), 2) == pytest.approx(1 / 3)
    assert top_k_jaccard(np.array([1.0, 2.0]), np.array([2.0, 1.0]), 5) == 1.0  # k capped at n


def test_global_rankings_from_attributions_and_permutation_importance(linear_case) -> None:
    _, _, _, phi, result = linear_case
    names, importance = global_ranking(result)
    assert names == FEATURES
    np.testing.assert_allclose(importance, np.abs(phi).mean(axis=0))
    perm = PermutationImportanceResult(
        provenance=provenance(),
        feature_names=FEATURES,
        importances=np.ones((4, 2)),
        mean=np.array([0.9, 0.5, 0.0, 0.01]),
    )
    names, importance = global_ranking(perm)
    np.testing.assert_array_equal(importance, [0.9, 0.5, 0.0, 0.01])
    agreement = method_agreement({"shap": global_ranking(result), "permutation": global_ranking(perm)})
    expected = stats.spearmanr(np.abs(phi).mean(axis=0), [0.9, 0.5, 0.0, 0.01]).statistic
    assert agreement.spearman[0, 1] == pytest.approx(expected, abs=1e-12)


def test_a_torch_models_logits_are_drawn_in_logit_space(linear_case) -> None:
    torch = pytest.importorskip("torch")
    from engine.models.torch_adapter import TorchModel

    inputs, X, _, phi, _ = linear_case
    layer = torch.nn.Linear(4, 3).double()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 2.0, 0, 0], [0.5, -1.0, 3.0, 0]]))
        layer.bias.copy_(torch.tensor([0.0, 0.1, -0.2]))
    model = TorchModel(layer, input_columns=FEATURES, task="classification", classes=("a", "b", "c"), device="cpu")
    torch_inputs = AuditInputs(frame=inputs.frame, roles=inputs.roles, model=model)
    rows = np.arange(6, dtype=np.int64)
    logits = X[:6] @ np.array([0.5, -1.0, 3.0, 0.0]) - 0.2
    result = attribution(phi[:6], rows, logits, space="logit", class_index=2)
    faith = faithfulness(torch_inputs, result, ctx=ctx())
    assert faith.output_space == "logit" and faith.warnings == ()
    np.testing.assert_allclose(faith.deletion[:, 0], logits, atol=1e-12)


def test_kernelshap_logit_link_and_multiclass_margins_are_told_apart(linear_case) -> None:
    inputs, X, _, phi, _ = linear_case
    y = np.digitize(X @ BETA, [-2.0, 2.0])  # three classes
    clf = LogisticRegression().fit(inputs.frame, y)
    multi = AuditInputs(frame=inputs.frame, roles=inputs.roles, model=SklearnModel(clf))
    rows = np.arange(8, dtype=np.int64)
    p = clf.predict_proba(inputs.frame.iloc[rows])[:, 2]
    margin = clf.decision_function(inputs.frame.iloc[rows])[:, 2]
    assert not np.allclose(np.log(p / (1 - p)), margin)  # softmax margins are not one-vs-rest log-odds
    tree_like = attribution(phi[:8], rows, margin, space="log-odds", class_index=2)
    kernel_like = attribution(phi[:8], rows, np.log(p / (1 - p)), space="log-odds", class_index=2, link="logit")
    np.testing.assert_allclose(faithfulness(multi, tree_like, ctx=ctx()).deletion[:, 0], margin, atol=1e-12)
    kernel = faithfulness(multi, kernel_like, ctx=ctx())
    np.testing.assert_allclose(kernel.deletion[:, 0], np.log(p / (1 - p)), atol=1e-9)
    assert kernel.warnings == ()

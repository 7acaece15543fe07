"""Explanation clusters: true k and labels recovered, silhouette and PCA parity, profiles, K-LIME, seeds."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
from sklearn.decomposition import PCA
from sklearn.linear_model import LinearRegression
from sklearn.metrics import adjusted_rand_score, silhouette_score

from engine.attribution import AttributionResult
from engine.errors import AnalysisError, Cancelled
from engine.explain import clusters
from engine.explain.clusters import ExplanationClustersResult
from engine.inputs import AuditInputs
from engine.jobs import CancelToken, JobContext
from engine.models.sklearn_adapter import SklearnModel
from engine.results import result_from_dict
from engine.schema import Roles

SIZES = (70, 50, 30)
CENTRES = np.array([[0.0, 0.0, 0.0], [4.0, -3.0, 0.0], [0.0, 4.0, 3.0]])
# The explained output is linear inside each cluster: intercept, slope on a, slope on b.
PIECES = np.array([[0.5, 1.0, -2.0], [-1.0, 3.0, 0.5], [2.0, -1.5, 1.0]])


class Case:
    def __init__(self) -> None:
        rng = np.random.default_rng(21)
        truth = np.repeat(np.arange(3), SIZES)
        order = rng.permutation(truth.size)
        self.truth = truth[order]
        n = self.truth.size
        a = rng.normal(size=n) + 2.0 * (self.truth == 1)  # cluster 1 has larger a
        b = rng.normal(size=n)
        colour = np.where(
            self.truth == 2,
            rng.choice(np.array(["z", "x"]), size=n, p=[0.9, 0.1]),
            rng.choice(np.array(["x", "y", "z"]), size=n, p=[0.5, 0.4, 0.1]),
        )
        self.frame = pd.DataFrame({"a": a, "b": b, "colour": pd.Series(colour, dtype="str")})
        self.values = CENTRES[self.truth] + 0.3 * rng.normal(size=(n, 3))
        p = PIECES[self.truth]
        self.predictions = p[:, 0] + p[:, 1] * a + p[:, 2] * b
        model = SklearnModel(LinearRegression().fit(self.frame[["a", "b"]], self.predictions))
        self.inputs = AuditInputs(frame=self.frame, roles=Roles(target=None, features=("a", "b")), model=model)

    def attributions(self, rows: np.ndarray | None = None, **overrides) -> AttributionResult:
        rows = np.arange(len(self.frame)) if rows is None else rows
        provenance = self.inputs.provenance(method="kernelshap", parameters={}, ctx=JobContext(), started_at="now")
        fields = dict(
            method="kernelshap",
            feature_names=("a", "b", "colour"),
            rows=rows,
            values=self.values[rows],
            predictions=self.predictions[rows],
            output_name="prediction",
            output_space="value",
        )
        fields.update(overrides)
        return AttributionResult(provenance=provenance, **fields)


@pytest.fixture(scope="module")
def case() -> Case:
    return Case()


@pytest.fixture(scope="module")
def chosen(case) -> ExplanationClustersResult:
    return clusters.run(case.inputs, ctx=JobContext(seed=5), attributions=case.attributions())


def test_silhouette_picks_the_true_k_and_labels_match_the_blobs(case, chosen) -> None:
    assert chosen.k == 3
    np.testing.assert_array_equal(chosen.k_tried, np.arange(2, 9))
    assert int(np.nanargmax(chosen.silhouettes)) == 1
    assert adjusted_rand_score(case.truth, chosen.labels) == 1.0
    # Clusters are numbered by decreasing size, and the blobs were made largest first.
    np.testing.assert_array_equal(chosen.labels, case.truth)
    np.testing.assert_allclose(chosen.centroids, [case.values[case.truth == c].mean(axis=0) for c in range(3)])
    assert [p.size for p in chosen.profiles] == list(SIZES)


def test_silhouette_equals_sklearns_for_the_labels_found(case) -> None:
    result = clusters.run(case.inputs, ctx=JobContext(seed=1), attributions=case.attributions(), k=4)
    assert result.k == 4 and result.k_tried.tolist() == [4]
    assert result.silhouettes[0] == pytest.approx(silhouette_score(case.values, result.labels), abs=1e-10)
    standard = clusters.run(
        case.inputs, ctx=JobContext(seed=1), attributions=case.attributions(), k=3, standardize=True
    )
    z = (case.values - case.values.mean(axis=0)) / case.values.std(axis=0)
    assert standard.silhouettes[0] == pytest.approx(silhouette_score(z, standard.labels), abs=1e-10)


def test_klime_fits_are_exact_when_the_model_is_linear_within_each_cluster(chosen) -> None:
    klime = chosen.klime
    assert klime.design_names == ("a", "b", "colour = x", "colour = y", "colour = z")
    assert np.all(klime.r2 > 0.9999), klime.r2
    assert klime.global_r2 < 0.9
    a, b = klime.design_names.index("a"), klime.design_names.index("b")
    # Ridge on standardised columns with alpha = 1e-3 shrinks slopes by about 0.1 %.
    np.testing.assert_allclose(klime.coefficients[:, [a, b]], PIECES[:, 1:], rtol=1e-2)
    np.testing.assert_allclose(klime.intercepts, PIECES[:, 0], atol=2e-2)


def test_profiles_describe_clusters_in_the_datas_terms(case, chosen) -> None:
    for profile in chosen.profiles:
        inside = case.truth == profile.cluster
        assert profile.mean_prediction == pytest.approx(case.predictions[inside].mean(), rel=1e-12)
        np.testing.assert_allclose(profile.mean_attribution, case.values[inside].mean(axis=0), rtol=1e-12)
        a_in, a_out = case.frame["a"][inside], case.frame["a"][~inside]
        smd = (a_in.mean() - a_out.mean()) / np.sqrt((a_in.var(ddof=0) + a_out.var(ddof=0)) / 2)
        assert profile.numeric_features == ("a", "b")
        assert profile.smd[0] == pytest.approx(smd, rel=1e-10)
        assert profile.share == pytest.approx(inside.mean())
    shifted, zed = chosen.profiles[1], chosen.profiles[2]
    assert shifted.smd[0] > 1.0 and any(h.startswith("a is higher") for h in shifted.highlights)
    assert zed.categorical_features == ("colour",) and zed.top_category == ("z",)
    colour = case.frame["colour"]
    assert zed.category_share[0] == pytest.approx((colour[case.truth == 2] == "z").mean())
    assert zed.rest_share[0] == pytest.approx((colour[case.truth != 2] == "z").mean())
    assert any(h.startswith("colour = z in") for h in zed.highlights)


def test_pca_projection_matches_sklearn_up_to_sign(case, chosen) -> None:
    pca = PCA(n_components=2).fit(case.values)
    np.testing.assert_allclose(np.abs(chosen.projection), np.abs(pca.transform(case.values)), atol=1e-9)
    np.testing.assert_allclose(chosen.explained_variance, pca.explained_variance_ratio_, rtol=1e-10)
    assert chosen.projection_method == "pca"


def test_same_seed_identical_different_seed_different_where_sampled(case, chosen) -> None:
    again = clusters.run(case.inputs, ctx=JobContext(seed=5), attributions=case.attributions())
    strip = lambda r: {k: v for k, v in r.to_dict().items() if k != "provenance"}  # noqa: E731
    assert strip(again) == strip(chosen)
    sampled = [
        clusters.run(
            case.inputs, ctx=JobContext(seed=s), attributions=case.attributions(), silhouette_rows=40, k_range=(2, 4)
        )
        for s in (1, 1, 2)
    ]
    np.testing.assert_array_equal(sampled[0].silhouettes, sampled[1].silhouettes)
    assert not np.array_equal(sampled[0].silhouettes, sampled[2].silhouettes)
    assert sampled[0].silhouette_rows == 40
    assert any("random sample of 40 of the 150 rows" in w for w in sampled[0].warnings)


def test_tsne_projection_is_seeded(case) -> None:
    rows = np.arange(0, 150, 3)
    runs = [
        clusters.run(case.inputs, ctx=JobContext(seed=s), attributions=case.attributions(rows), k=3, projection="tsne")
        for s in (4, 4)
    ]
    assert runs[0].projection.shape == (50, 2) and runs[0].explained_variance is None
    np.testing.assert_array_equal(runs[0].projection, runs[1].projection)


def test_cancel_is_honoured_between_cluster_numbers(case) -> None:
    token = CancelToken()
    seen: list[str] = []

    def progress(fraction: float, message: str) -> None:
        seen.append(message)
        if message == "k-means with 3 clusters":
            token.cancel()

    with pytest.raises(Cancelled):
        clusters.run(case.inputs, ctx=JobContext(progress_fn=progress, cancel=token), attributions=case.attributions())
    assert "k-means with 4 clusters" not in seen


def test_json_round_trip(chosen) -> None:
    back = result_from_dict(json.loads(json.dumps(chosen.to_dict())))
    assert isinstance(back, ExplanationClustersResult)
    assert back.to_dict() == chosen.to_dict()
    assert back.profiles[2].top_category == ("z",)
    assert not back.labels.flags.writeable and not back.klime.r2.flags.writeable


def test_missing_or_foreign_attributions_are_refused_with_a_sentence(case) -> None:
    with pytest.raises(
        AnalysisError,
        match=r"^Explanation clusters need attributions of the rows; compute SHAP or "
        r"LIME values first\.$",
    ):
        clusters.run(case.inputs, ctx=JobContext())
    outside = dataclasses.replace(case.attributions(), rows=np.arange(150) + 10)
    with pytest.raises(AnalysisError, match="refer to rows outside the data, which has 150 rows"):
        clusters.run(case.inputs, ctx=JobContext(), attributions=outside)
    with pytest.raises(AnalysisError, match="150 clusters cannot be formed from 150 explained rows"):
        clusters.run(case.inputs, ctx=JobContext(), attributions=case.attributions(), k=150)
    with pytest.raises(AnalysisError, match="projection must be one of 'pca', 'tsne'"):
        clusters.run(case.inputs, ctx=JobContext(), attributions=case.attributions(), projection="umap")


def test_fewer_distinct_vectors_than_clusters_leaves_clusters_empty_not_broken(case) -> None:
    values = np.repeat(np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]), 75, axis=0)
    result = clusters.run(case.inputs, ctx=JobContext(), attributions=case.attributions(values=values), k=3)
    assert sorted(p.size for p in result.profiles) == [0, 75, 75]
    assert result.profiles[2].size == 0 and np.isnan(result.profiles[2].mean_prediction)
    np.testing.assert_array_equal(np.bincount(result.labels, minlength=3), [75, 75, 0])

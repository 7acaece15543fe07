"""The job context's seeding, progress mapping and cancel; results' freezing and JSON round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.attribution import AttributionResult
from engine.errors import Cancelled
from engine.jobs import CancelToken, JobContext
from engine.results import Provenance, result_from_dict


def _provenance(**overrides) -> Provenance:
    base = dict(
        method="m",
        parameters={"k": 3},
        seed=1,
        data_sha256="d" * 64,
        model_sha256=None,
        versions={"numpy": np.__version__},
        started_at="2026-01-01T00:00:00+00:00",
        finished_at="2026-01-01T00:00:01+00:00",
        warnings=("careful.",),
    )
    base.update(overrides)
    return Provenance(**base)


def test_same_seed_and_key_give_identical_streams() -> None:
    a = JobContext(seed=42).rng("lime", 3).random(5)
    b = JobContext(seed=42).rng("lime", 3).random(5)
    np.testing.assert_array_equal(a, b)


def test_streams_differ_by_seed_key_and_sub_context() -> None:
    ctx = JobContext(seed=42)
    draws = [
        ctx.rng("lime", 3).random(4),
        ctx.rng("lime", 4).random(4),
        JobContext(seed=43).rng("lime", 3).random(4),
        ctx.sub(0, 1, "stability", 0).rng("lime", 3).random(4),
    ]
    for i in range(len(draws)):
        for j in range(i + 1, len(draws)):
            assert not np.array_equal(draws[i], draws[j])


def test_stream_does_not_depend_on_global_numpy_state() -> None:
    first = JobContext(seed=5).rng("x").random(3)
    np.random.default_rng(0).random(100)  # unrelated draws elsewhere
    np.random.seed(123)  # even someone else's global seeding changes nothing
    np.testing.assert_array_equal(first, JobContext(seed=5).rng("x").random(3))


def test_torch_generator_is_seeded_from_the_context() -> None:
    torch = pytest.importorskip("torch")
    a = torch.rand(3, generator=JobContext(seed=9).torch_generator("ig"))
    b = torch.rand(3, generator=JobContext(seed=9).torch_generator("ig"))
    c = torch.rand(3, generator=JobContext(seed=10).torch_generator("ig"))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_sub_ranges_map_progress_into_the_parent_slice() -> None:
    seen: list[tuple[float, str]] = []
    ctx = JobContext(progress_fn=lambda f, m: seen.append((round(f, 6), m)))
    child = ctx.sub(0.2, 0.6)
    grandchild = child.sub(0.5, 1.0)
    child.progress(0.0, "start")
    child.progress(0.5, "half")
    grandchild.progress(1.0, "end")
    child.progress(2.0, "clamped")
    assert seen == [(0.2, "start"), (0.4, "half"), (0.6, "end"), (0.6, "clamped")]
    with pytest.raises(ValueError):
        ctx.sub(0.5, 0.4)


def test_cancel_is_cooperative() -> None:
    token = CancelToken()
    ctx = JobContext(cancel=token).sub(0, 0.5)
    ctx.check_cancelled()
    token.cancel()
    assert ctx.cancelled
    with pytest.raises(Cancelled):
        ctx.check_cancelled()


def test_result_arrays_are_read_only_and_copied() -> None:
    values = np.ones((2, 3))
    result = AttributionResult(
        provenance=_provenance(),
        method="m",
        feature_names=("a", "b", "c"),
        rows=np.arange(2),
        values=values,
        quality={"r2": np.array([0.5, 0.9])},
    )
    values[0, 0] = 99.0
    assert result.values[0, 0] == 1.0
    with pytest.raises(ValueError):
        result.values[0, 0] = 5.0
    with pytest.raises(ValueError):
        result.quality["r2"][0] = 5.0


def test_result_json_round_trip_is_lossless_and_strict_json() -> None:
    result = AttributionResult(
        provenance=_provenance(),
        method="lime",
        feature_names=("a", "b"),
        rows=np.array([3, 7]),
        values=np.array([[0.1, -2.5e-17], [np.nan, 3.0]]),
        base_values=None,
        predictions=np.array([0.25, 0.75]),
        class_index=1,
        summary={"median_r2": float("nan"), "n": 2.0},
        quality={"r2": np.array([0.5, np.inf])},
        compute_seconds=0.125,
    )
    text = json.dumps(result.to_dict(), allow_nan=False)
    back = result_from_dict(json.loads(text))
    assert isinstance(back, AttributionResult)
    assert back.rows.dtype.kind == "i"
    np.testing.assert_array_equal(back.rows, result.rows)
    np.testing.assert_array_equal(back.values, result.values)  # NaN positions equal too
    assert np.isnan(back.summary["median_r2"]) and back.summary["n"] == 2.0
    assert back.provenance == result.provenance
    assert back.feature_names == ("a", "b")


def test_unknown_schema_version_is_rejected() -> None:
    data = AttributionResult(provenance=_provenance()).to_dict()
    data["schema_version"] = 999
    with pytest.raises(ValueError, match="schema version"):
        result_from_dict(data)

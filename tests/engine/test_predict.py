"""The batched-prediction primitive and the thread policy: bounds, order, pacing, cancel, progress, threads."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np
import pytest

from engine.errors import Cancelled
from engine.explain import _predict
from engine.explain._predict import (
    FIRST_CALL_ROWS,
    MAX_GROWTH,
    MIN_CALL_ROWS,
    TARGET_CALL_SECONDS,
    Pacer,
    job_threads,
    job_threads_later,
    predict_batched,
    rows_per_call,
)
from engine.jobs import CancelToken, JobContext


class _Clock:
    """A stand-in for ``time.perf_counter`` that only moves when a simulated model call runs."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


@dataclass
class _Model:
    """Scores unit ``u`` as ``10 * u + 0.5`` and notes every call; each call costs simulated time."""

    clock: _Clock | None = None
    per_row: float = 0.0
    overhead: float = 0.0
    unit_rows: int = 1
    spans: list[tuple[int, int]] = field(default_factory=list)
    threads: set[int] = field(default_factory=set)
    on_call: object = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, start: int, stop: int) -> np.ndarray:
        with self.lock:
            self.spans.append((start, stop))
            self.threads.add(threading.get_ident())
            if self.clock is not None:
                self.clock.now += self.overhead + self.per_row * (stop - start) * self.unit_rows
        if callable(self.on_call):
            self.on_call(len(self.spans))
        return 10.0 * np.arange(start, stop) + 0.5

    def rows(self) -> list[int]:
        return [(b - a) * self.unit_rows for a, b in self.spans]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    fake = _Clock()
    monkeypatch.setattr(_predict, "time", fake)
    return fake


def _covers_each_unit_once(spans: list[tuple[int, int]], n: int) -> bool:
    seen = np.zeros(n, dtype=np.int64)
    for a, b in spans:
        seen[a:b] += 1
    return bool(np.all(seen == 1))


# -- bounds, order, output ------------------------------------------------------------------------------


@pytest.mark.parametrize("threads", [1, 2])
def test_every_unit_is_scored_once_in_order_and_no_call_exceeds_the_bound(clock: _Clock, threads: int) -> None:
    model = _Model(clock=clock, per_row=1e-6, overhead=1e-3)
    n, bound = 600_000, 100_000  # calls grow from 8,192 rows to the bound
    pacer = Pacer(bound)
    out = predict_batched(model, n, pacer=pacer, ctx=JobContext(), threads=threads)

    np.testing.assert_array_equal(out, 10.0 * np.arange(n) + 0.5)
    assert max(model.rows()) <= bound
    assert _covers_each_unit_once(model.spans, n)
    assert pacer.calls == len(model.spans) and pacer.rows == n


def test_the_settled_calls_run_on_the_job_threads_at_once(clock: _Clock) -> None:
    barrier = threading.Barrier(2, timeout=10)
    model = _Model(clock=clock, per_row=1e-6, overhead=1e-3)
    # Calls 2 and 3 come after the size settled; they pass the barrier only if they run together.
    model.on_call = lambda calls: barrier.wait() if calls in (2, 3) else None
    pacer = Pacer(4_000)  # the bound holds the size after the first call: settled at once
    predict_batched(model, 200_000, pacer=pacer, ctx=JobContext(), threads=2)
    assert pacer.settled
    assert len(model.threads) >= 2


def test_calls_hold_whole_units_and_exceed_the_bound_only_when_one_unit_does(clock: _Clock) -> None:
    model = _Model(clock=clock, per_row=1e-6, unit_rows=100)
    out = predict_batched(model, 5_000, pacer=Pacer(1_050), ctx=JobContext(), unit_rows=100, threads=1)
    np.testing.assert_array_equal(out, 10.0 * np.arange(5_000) + 0.5)
    assert all(r % 100 == 0 and r <= 1_000 for r in model.rows())

    one = _Model(clock=clock, per_row=1e-6, unit_rows=100)
    predict_batched(one, 30, pacer=Pacer(40), ctx=JobContext(), unit_rows=100, threads=1)
    assert one.rows() == [100] * 30  # a unit is never split, so each call holds exactly one
    assert _covers_each_unit_once(one.spans, 30)


def test_fixed_calls_depend_only_on_the_shape_and_run_in_this_thread(clock: _Clock) -> None:
    for per_row in (1e-9, 1e-3):  # whatever the model's speed
        model = _Model(clock=clock, per_row=per_row)
        predict_batched(model, 1_000, pacer=Pacer.fixed(300), ctx=JobContext(), threads=2)
        assert model.spans == [(0, 300), (300, 600), (600, 900), (900, 1_000)]
        assert model.threads == {threading.get_ident()}


def test_output_keeps_trailing_axes_and_the_first_calls_dtype_unless_told() -> None:
    def probabilities(a: int, b: int) -> np.ndarray:
        p = np.linspace(0.0, 1.0, b - a, dtype=np.float32)
        return np.stack([p, 1 - p], axis=1)

    out = predict_batched(probabilities, 10, pacer=Pacer.fixed(4), ctx=JobContext())
    assert out.shape == (10, 2) and out.dtype == np.float32
    as64 = predict_batched(probabilities, 10, pacer=Pacer.fixed(4), ctx=JobContext(), dtype=np.float64)
    assert as64.dtype == np.float64
    np.testing.assert_array_equal(as64, out.astype(np.float64))
    empty = predict_batched(probabilities, 0, pacer=Pacer.fixed(4), ctx=JobContext())
    assert empty.shape == (0,)


def test_rows_per_call_bounds_the_cells() -> None:
    assert rows_per_call(30, 2_000_000) == 66_666
    assert rows_per_call(0, 100) == 100  # no columns: the cell bound is the row bound
    assert rows_per_call(1_000, 10) == 1  # never fewer than one row


def test_a_call_must_hold_a_row() -> None:
    with pytest.raises(ValueError, match="at least one row"):
        Pacer(0)


# -- pacing ---------------------------------------------------------------------------------------------


def test_quick_calls_grow_at_most_max_growth_fold_until_one_lands_on_target(clock: _Clock) -> None:
    # 1 µs per row: the target call holds about 300,000 rows.
    model = _Model(clock=clock, per_row=1e-6, overhead=2e-3)
    pacer = Pacer(10_000_000)
    predict_batched(model, 3_000_000, pacer=pacer, ctx=JobContext(), threads=1)

    sizes = model.rows()
    assert sizes[:2] == [FIRST_CALL_ROWS, 8 * FIRST_CALL_ROWS]  # 10 ms: grown the most allowed
    # 68 ms: grown to what lasts the target, 65,536 * 0.3 / 0.067536 rows.
    assert abs(sizes[2] - 65_536 * TARGET_CALL_SECONDS / (2e-3 + 65_536e-6)) <= 1
    assert all(b <= MAX_GROWTH * a for a, b in zip(sizes, sizes[1:]))
    assert pacer.settled
    settled_seconds = model.overhead + model.per_row * pacer.next_rows()
    assert 0.5 * TARGET_CALL_SECONDS <= settled_seconds <= 2.0 * TARGET_CALL_SECONDS
    assert max(sizes) <= pacer.next_rows()


def test_slow_calls_shrink_towards_the_target_but_not_below_the_floor(clock: _Clock) -> None:
    model = _Model(clock=clock, per_row=1e-3)  # 8 s for the first call
    pacer = Pacer(1_000_000)
    predict_batched(model, 20_000, pacer=pacer, ctx=JobContext(), threads=1)
    sizes = model.rows()
    assert sizes[:2] == [FIRST_CALL_ROWS, MIN_CALL_ROWS]  # 8 s: straight down to the 0.3 s size, floored
    assert pacer.settled and pacer.next_rows() == MIN_CALL_ROWS  # 0.5 s per call: the floor holds it
    assert max(sizes[1:]) == MIN_CALL_ROWS and min(sizes) >= MIN_CALL_ROWS // 2  # even spans of the rest


def test_a_short_remainder_teaches_nothing_and_the_pace_carries_over(clock: _Clock) -> None:
    model = _Model(clock=clock, per_row=1e-9, overhead=0.25)  # every call looks slow per row
    pacer = Pacer(1_000_000)
    predict_batched(model, 100, pacer=pacer, ctx=JobContext(), threads=1)
    assert pacer.next_rows() == FIRST_CALL_ROWS and not pacer.settled  # 100 rows say nothing about 8,192

    predict_batched(model, 20_000, pacer=pacer, ctx=JobContext(), threads=1)
    assert pacer.settled  # 0.25 s for a full call is on target
    before = len(model.spans)
    predict_batched(model, 3 * FIRST_CALL_ROWS, pacer=pacer, ctx=JobContext(), threads=1)
    assert model.rows()[before:] == [FIRST_CALL_ROWS] * 3  # the settled size is reused, untimed


def test_a_remainder_of_half_a_call_or_more_counts_as_a_full_one(clock: _Clock) -> None:
    model = _Model(clock=clock, per_row=1e-9, overhead=0.2)
    pacer = Pacer(1_000_000)
    predict_batched(model, FIRST_CALL_ROWS // 2 - 1, pacer=pacer, ctx=JobContext(), threads=1)
    assert not pacer.settled  # under half: no evidence
    predict_batched(model, FIRST_CALL_ROWS // 2, pacer=pacer, ctx=JobContext(), threads=1)
    assert pacer.settled and pacer.next_rows() == FIRST_CALL_ROWS  # 0.2 s for half a call: 0.4 s for a full one


# -- cancel and progress --------------------------------------------------------------------------------


def test_cancel_during_a_timed_call_stops_before_the_next(clock: _Clock) -> None:
    token = CancelToken()
    model = _Model(clock=clock, per_row=1e-9, overhead=1e-3)
    model.on_call = lambda calls: token.cancel() if calls == 2 else None
    with pytest.raises(Cancelled):
        predict_batched(model, 10_000_000, pacer=Pacer(10_000_000), ctx=JobContext(cancel=token), threads=1)
    assert len(model.spans) == 2


@pytest.mark.parametrize("threads", [1, 2])
def test_cancel_during_the_settled_calls_starts_no_new_call(clock: _Clock, threads: int) -> None:
    token = CancelToken()
    model = _Model(clock=clock, per_row=1e-6)
    model.on_call = lambda calls: token.cancel() if calls == 3 else None
    with pytest.raises(Cancelled):
        predict_batched(model, 100_000, pacer=Pacer(1_000), ctx=JobContext(cancel=token), threads=threads)
    assert len(model.spans) < 10  # of 100 calls; at most the ones already running finish


def test_fixed_calls_check_the_cancel_flag_before_each() -> None:
    token = CancelToken()
    model = _Model(on_call=lambda calls: token.cancel())
    with pytest.raises(Cancelled):
        predict_batched(model, 100, pacer=Pacer.fixed(10), ctx=JobContext(cancel=token))
    assert model.spans == [(0, 10)]


@pytest.mark.parametrize("threads", [1, 2])
def test_progress_rises_after_every_call_to_the_total(clock: _Clock, threads: int) -> None:
    model = _Model(clock=clock, per_row=1e-6, overhead=1e-3)
    seen: list[int] = []
    predict_batched(model, 150_000, pacer=Pacer(20_000), ctx=JobContext(), on_done=seen.append, threads=threads)
    assert len(seen) == len(model.spans)
    assert all(a < b for a, b in zip(seen, seen[1:]))
    assert seen[-1] == 150_000


# -- thread policy --------------------------------------------------------------------------------------


def test_thread_policy_request_environment_free_cores_and_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    from engine import device

    monkeypatch.delenv("PROBITY_THREADS", raising=False)
    monkeypatch.setattr(device, "free_cores", lambda: 3)
    assert job_threads() == 3
    assert job_threads(limit=2) == 2
    assert job_threads(5) == 5
    assert job_threads(5, limit=4) == 4
    assert job_threads(0) == 3 and job_threads(-2) == 3  # not a request: the policy decides
    assert job_threads(limit=0) == 1  # never fewer than one
    monkeypatch.setenv("PROBITY_THREADS", "6")
    assert job_threads() == 6
    assert job_threads(limit=2) == 2
    assert job_threads(1) == 1
    monkeypatch.setenv("PROBITY_THREADS", "many")
    assert job_threads() == 3


def test_the_policy_read_in_the_background_gives_the_same_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    from engine import device

    monkeypatch.delenv("PROBITY_THREADS", raising=False)
    readers: list[str] = []

    def free_cores() -> int:
        readers.append(threading.current_thread().name)
        return 3

    monkeypatch.setattr(device, "free_cores", free_cores)
    assert job_threads_later()() == 3
    assert job_threads_later(limit=2)() == 2
    assert threading.current_thread().name not in readers  # read off this thread
    readers.clear()
    assert job_threads_later(5)() == 5 and job_threads_later(5, limit=4)() == 4
    monkeypatch.setenv("PROBITY_THREADS", "2")
    assert job_threads_later()() == 2
    assert readers == []  # a request or the environment needs no reading


def test_engine_parallel_and_treeshap_follow_the_one_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    from engine import device
    from engine.explain import treeshap
    from engine.parallel import chunk_workers, worker_count

    monkeypatch.delenv("PROBITY_THREADS", raising=False)
    monkeypatch.setattr(device, "free_cores", lambda: 3)
    assert chunk_workers() == worker_count() == job_threads() == 3
    pools: list[int] = []
    real = treeshap.ThreadPoolExecutor

    def recording(max_workers: int) -> object:
        pools.append(max_workers)
        return real(max_workers=max_workers)

    monkeypatch.setattr(treeshap, "ThreadPoolExecutor", recording)
    from sklearn.datasets import make_regression
    from sklearn.tree import DecisionTreeRegressor

    X, y = make_regression(n_samples=200, n_features=4, random_state=0)
    tree = treeshap.extract_tree_model(DecisionTreeRegressor(max_depth=3, random_state=0).fit(X, y))
    treeshap.tree_model_shap_values(tree, X[:50])
    assert pools == [3]

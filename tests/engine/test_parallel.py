"""Chunks through joblib: ordered results, cancellation, worker counts."""

from __future__ import annotations

import threading

import pytest

from engine.errors import Cancelled
from engine.jobs import CancelToken, JobContext
from engine.parallel import map_chunks, worker_count


def test_results_come_back_in_chunk_order_from_several_threads() -> None:
    seen_threads: set[int] = set()
    barrier = threading.Barrier(2, timeout=10)

    def work(i: int) -> int:
        seen_threads.add(threading.get_ident())
        if i < 2:
            barrier.wait()  # the first two chunks must run at the same time
        return i * i

    assert list(map_chunks(work, list(range(12)), n_jobs=2)) == [i * i for i in range(12)]
    assert len(seen_threads) == 2


def test_single_worker_runs_inline() -> None:
    main = threading.get_ident()
    idents = list(map_chunks(lambda _: threading.get_ident(), [1, 2, 3], n_jobs=1))
    assert idents == [main, main, main]


def test_chunks_use_the_free_cores_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    from engine import device

    main = threading.get_ident()
    monkeypatch.delenv("PROBITY_THREADS", raising=False)
    monkeypatch.setattr(device, "free_cores", lambda: 1)  # the other core is busy: stay inline
    assert set(map_chunks(lambda _: threading.get_ident(), list(range(6)))) == {main}
    monkeypatch.setattr(device, "free_cores", lambda: 2)
    assert main not in set(map_chunks(lambda _: threading.get_ident(), list(range(6))))
    monkeypatch.setenv("PROBITY_THREADS", "1")
    assert set(map_chunks(lambda _: threading.get_ident(), list(range(6)))) == {main}
    monkeypatch.setenv("PROBITY_THREADS", "2")
    barrier = threading.Barrier(2, timeout=10)

    def work(i: int) -> int:
        if i < 2:
            barrier.wait()  # only passes if two chunks run at once
        return threading.get_ident()

    assert len(set(map_chunks(work, list(range(6))))) == 2


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_cancel_stops_before_the_next_chunk(n_jobs: int) -> None:
    token = CancelToken()
    ctx = JobContext(cancel=token)
    started: list[int] = []

    def work(i: int) -> int:
        started.append(i)
        if i == 1:
            token.cancel()
        return i

    with pytest.raises(Cancelled):
        list(map_chunks(work, list(range(50)), ctx=ctx, n_jobs=n_jobs))
    assert len(started) < 50


def test_worker_count_honours_request_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert worker_count(3) == 3
    monkeypatch.setenv("PROBITY_THREADS", "5")
    assert worker_count() == 5
    monkeypatch.setenv("PROBITY_THREADS", "zero")
    assert worker_count() >= 1


def test_blas_and_openmp_pools_get_their_share_of_the_free_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    import sklearn.ensemble  # noqa: F401 - loads scikit-learn's OpenMP runtime, whose limits are per thread
    from threadpoolctl import threadpool_info, threadpool_limits

    from engine import device

    if not threadpool_info():
        pytest.skip("no BLAS/OpenMP pool loaded")
    monkeypatch.delenv("PROBITY_THREADS", raising=False)

    def pool_sizes(_: int) -> set[int]:
        return {pool["num_threads"] for pool in threadpool_info()}

    with threadpool_limits(limits=2):  # as on a two-core machine, whatever this one has
        monkeypatch.setattr(device, "free_cores", lambda: 1)  # the other core is busy
        assert list(map_chunks(pool_sizes, [0, 1])) == [{1}, {1}]
        monkeypatch.setattr(device, "free_cores", lambda: 2)
        assert list(map_chunks(pool_sizes, [0, 1])) == [{1}, {1}]  # two workers, one thread each
        assert list(map_chunks(pool_sizes, [0])) == [{2}]  # one chunk keeps both cores
        assert pool_sizes(0) == {2}  # and the limits are lifted afterwards

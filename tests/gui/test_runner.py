"""The job runner: results, failures, cooperative cancel, superseding and progress coalescing."""

from __future__ import annotations

import threading
import time

import pytest

from engine.errors import DataError
from gui.runner import JobError, JobSpec, JobState


class _Recorder:
    """Collects every signal the runner emits, in order."""

    def __init__(self, runner) -> None:
        self.events: list[tuple] = []
        runner.sig_job_started.connect(lambda j: self.events.append(("started", j)))
        runner.sig_job_progress.connect(lambda j, f, m: self.events.append(("progress", j, f, m)))
        runner.sig_job_finished.connect(lambda j, r: self.events.append(("finished", j, r)))
        runner.sig_job_failed.connect(lambda j, e: self.events.append(("failed", j, e)))
        runner.sig_job_cancelled.connect(lambda j: self.events.append(("cancelled", j)))

    def of(self, kind: str, job_id: int | None = None) -> list[tuple]:
        return [e for e in self.events if e[0] == kind and (job_id is None or e[1] == job_id)]


def _scaled(values, *, ctx, factor):
    return tuple(v * factor + ctx.seed for v in values)


def test_runner_runs_a_job_and_delivers_its_result(qtbot, runner):
    seen = _Recorder(runner)
    with qtbot.waitSignal(runner.sig_job_finished, timeout=5000) as blocker:
        job_id = runner.submit(JobSpec(kind="demo", fn=_scaled, args=((1, 2, 3),), params={"factor": 10}, seed=7))
    assert blocker.args == [job_id, (17, 27, 37)]
    assert runner.record(job_id).state is JobState.DONE
    assert seen.of("started", job_id) and not seen.of("failed") and not seen.of("cancelled")
    assert runner.active_count == 0


def test_cancelling_a_running_job_reports_cancelled_within_a_second(qtbot, runner):
    seen = _Recorder(runner)
    stopped = threading.Event()

    def spin(*, ctx):
        try:
            while True:
                ctx.check_cancelled()
                time.sleep(0.005)
        finally:
            stopped.set()

    with qtbot.waitSignal(runner.sig_job_started, timeout=5000):
        job_id = runner.submit(JobSpec(kind="spin", fn=spin))
    with qtbot.waitSignal(runner.sig_job_cancelled, timeout=1000) as blocker:
        runner.cancel(job_id)
    assert blocker.args == [job_id]
    assert stopped.is_set(), "the worker function itself must have stopped, not just the report"
    assert runner.record(job_id).state is JobState.CANCELLED
    assert not seen.of("failed") and not seen.of("finished")


def test_superseded_job_late_result_is_dropped(qtbot, runner):
    seen = _Recorder(runner)
    release = threading.Event()

    def slow_and_deaf(*, ctx):  # never checks for cancellation
        release.wait(5)
        return "stale"

    def quick(*, ctx):
        return "fresh"

    with qtbot.waitSignal(runner.sig_job_started, timeout=5000):
        old = runner.submit(JobSpec(kind="view", fn=slow_and_deaf, key="table-view"))
    with qtbot.waitSignal(runner.sig_job_finished, timeout=5000):
        new = runner.submit(JobSpec(kind="view", fn=quick, key="table-view"))
    assert runner.record(old).state is JobState.CANCELLING
    with qtbot.waitSignal(runner.sig_job_cancelled, timeout=5000) as blocker:
        release.set()
    assert blocker.args == [old]
    assert [e[2] for e in seen.of("finished")] == ["fresh"]
    assert [e[1] for e in seen.of("finished")] == [new]
    assert runner.record(old).state is JobState.CANCELLED


def test_cancelling_a_queued_job_is_immediate_and_it_never_runs(qtbot, qapp):
    from gui.runner import JobRunner

    runner = JobRunner(max_threads=1)
    release = threading.Event()
    ran = threading.Event()
    try:
        with qtbot.waitSignal(runner.sig_job_started, timeout=5000):
            runner.submit(JobSpec(kind="block", fn=lambda *, ctx: release.wait(5)))
        queued = runner.submit(JobSpec(kind="never", fn=lambda *, ctx: ran.set()))
        with qtbot.waitSignal(runner.sig_job_cancelled, timeout=100) as blocker:
            runner.cancel(queued)
        assert blocker.args == [queued]
        release.set()
    finally:
        release.set()
        assert runner.shutdown(5000)
    assert not ran.is_set()


def test_probity_error_fails_with_its_plain_message(qtbot, runner):
    def bad_file(*, ctx):
        raise DataError("The file broken.csv is not a text table.")

    with qtbot.waitSignal(runner.sig_job_failed, timeout=5000) as blocker:
        job_id = runner.submit(JobSpec(kind="load-data", fn=bad_file))
    failed_id, error = blocker.args
    assert failed_id == job_id
    assert isinstance(error, JobError)
    assert error.message == "The file broken.csv is not a text table."
    assert error.is_user_error and error.traceback is None
    assert isinstance(error.exception, DataError)


def test_unexpected_exception_fails_with_traceback_and_is_logged(qtbot, runner, tmp_path):
    def buggy(*, ctx):
        return {}["missing key"]

    with qtbot.waitSignal(runner.sig_job_failed, timeout=5000) as blocker:
        runner.submit(JobSpec(kind="buggy", fn=buggy))
    error = blocker.args[1]
    assert not error.is_user_error
    assert error.type_name == "KeyError"
    assert "in buggy" in error.traceback and "KeyError: 'missing key'" in error.traceback
    log = (tmp_path / "logs" / "probity.log").read_text(encoding="utf-8")
    assert "KeyError: 'missing key'" in log and "(buggy)" in log


def test_progress_reports_are_coalesced_and_end_on_the_last_word(qtbot, runner):
    seen = _Recorder(runner)
    calls = 200_000

    def chatty(*, ctx):
        for i in range(calls):
            ctx.progress(i / calls, "working")
        ctx.progress(1.0, "last word")
        return "ok"

    with qtbot.waitSignal(runner.sig_job_finished, timeout=10000):
        job_id = runner.submit(JobSpec(kind="chatty", fn=chatty))
    reports = seen.of("progress", job_id)
    assert 1 <= len(reports) < calls // 100
    assert reports[-1][2:] == (1.0, "last word")
    # The final progress report precedes the finished signal.
    assert seen.events.index(reports[-1]) < seen.events.index(seen.of("finished", job_id)[0])


@pytest.mark.parametrize("raise_cancelled", [True, False])
def test_a_cancelled_job_is_never_reported_as_failed(qtbot, runner, raise_cancelled):
    seen = _Recorder(runner)
    go = threading.Event()

    def stops_badly(*, ctx):
        go.wait(5)
        if raise_cancelled:
            ctx.check_cancelled()
        raise RuntimeError("noise while stopping")

    with qtbot.waitSignal(runner.sig_job_started, timeout=5000):
        job_id = runner.submit(JobSpec(kind="x", fn=stops_badly))
    runner.cancel(job_id)
    with qtbot.waitSignal(runner.sig_job_cancelled, timeout=5000):
        go.set()
    assert not seen.of("failed")


def test_finished_jobs_do_not_keep_their_inputs_alive(qtbot, runner):
    import gc
    import weakref

    class Big:
        pass

    payload = Big()
    alive = weakref.ref(payload)
    with qtbot.waitSignal(runner.sig_job_finished, timeout=5000):
        job_id = runner.submit(JobSpec(kind="x", fn=lambda big, *, ctx: 1, args=(payload,)))
    del payload
    gc.collect()
    assert alive() is None
    assert runner.record(job_id).spec.args == ()
    # Unlisted jobs (view refreshes) leave no record behind at all.
    with qtbot.waitSignal(runner.sig_job_finished, timeout=5000):
        hidden = runner.submit(JobSpec(kind="view", fn=lambda *, ctx: 2, listed=False))
    assert runner.record(hidden) is None


def test_an_exclusive_job_never_overlaps_another(qtbot, runner):
    lock = threading.Lock()
    log: list[str] = []
    release_first = threading.Event()

    def step(name: str, wait: threading.Event | None = None):
        def fn(*, ctx):
            with lock:
                log.append(f"{name} start")
            if wait is not None:
                wait.wait(5)
            time.sleep(0.05)
            with lock:
                log.append(f"{name} end")
            return name

        return fn

    with qtbot.waitSignal(runner.sig_job_started, timeout=5000):
        runner.submit(JobSpec(kind="a", fn=step("a", release_first)))
    exclusive = runner.submit(JobSpec(kind="torch", fn=step("x"), exclusive=True))
    later = runner.submit(JobSpec(kind="b", fn=step("b")))
    assert runner.record(exclusive).state is JobState.QUEUED  # waits for "a"
    release_first.set()
    qtbot.waitUntil(lambda: runner.record(later).state is JobState.DONE, timeout=5000)
    assert log == ["a start", "a end", "x start", "x end", "b start", "b end"]

"""A synchronous stand-in for :class:`gui.runner.JobRunner`, so a pane is tested without threads or analyses.

:class:`FakeRunner` has the runner's public interface and signals
(:class:`gui.runner.RunnerLike`) and records every :class:`~gui.runner.JobSpec`
submitted to it.  Nothing runs on its own: a test decides what each job does.

* ``runner.finish(job_id, result)``, ``runner.fail(job_id, error)``,
  ``runner.progress(job_id, fraction, message)``: the job reports as a real
  one would, through the same signals, on the calling thread;
* ``runner.cancel(job_id)`` is the runner's own cancel (what a pane's Cancel
  button calls): a queued job is cancelled at once, a running one is marked
  "Cancelling…" until ``runner.confirm_cancel(job_id)`` (the job reached its
  next check) or a late ``finish``/``fail``, which is dropped as the real
  runner drops it;
* ``runner.run_job(job_id)`` (or ``run_all()``) calls the job's function on the
  calling thread with a real :class:`~engine.jobs.JobContext`, and reports its
  result, its :class:`~engine.errors.ProbityError` or its bug like the real
  runner.  ``FakeRunner(autorun=True)`` does that by itself as soon as control
  returns to the event loop (never inside ``submit``: a pane stores the job id
  that ``submit`` returns before the job may report).

The pattern is orange3-explain's widget tests, which swap a widget's
concurrent ``run`` for a synchronous stub returning a small results object.
"""

from __future__ import annotations

import dataclasses
import time
import traceback

from PySide6.QtCore import QObject, QTimer, Signal

from gui.runner import JobError, JobRecord, JobSpec, JobState

__all__ = ["FakeRunner", "user_error", "bug_error"]


def user_error(message: str) -> JobError:
    """The :class:`JobError` of a problem the user can fix (a ``ProbityError``: no traceback)."""
    from engine.errors import AnalysisError

    return JobError(message, "AnalysisError", None, AnalysisError(message))


def bug_error(message: str = "boom") -> JobError:
    """The :class:`JobError` of a bug (any other exception: with a traceback)."""
    exc = RuntimeError(message)
    return JobError(f"RuntimeError: {message}", "RuntimeError", f"Traceback (most recent call last):\n{message}", exc)


class FakeRunner(QObject):
    """Runs nothing by itself; records every submitted spec and reports what the test says.

    Attributes
    ----------
    submitted: every :class:`JobSpec` given to :meth:`submit`, in order, as given
        (the records drop a finished job's arguments, as the real runner does).
    cancel_requests: the job ids :meth:`cancel` was called with, in order.
    """

    sig_job_queued = Signal(int)
    sig_job_started = Signal(int)
    sig_job_progress = Signal(int, float, str)
    sig_job_finished = Signal(int, object)
    sig_job_failed = Signal(int, object)
    sig_job_cancelled = Signal(int)

    def __init__(self, parent: QObject | None = None, *, autorun: bool = False) -> None:
        super().__init__(parent)
        self.autorun = autorun
        self.submitted: list[JobSpec] = []
        self.cancel_requests: list[int] = []
        self._specs: dict[int, JobSpec] = {}  # the full spec of each live job (records are stripped on finish)
        self._records: dict[int, JobRecord] = {}
        self._live: set[int] = set()
        self._by_key: dict[str, int] = {}
        self._next_id = 1

    # -- the runner's public API ------------------------------------------------------------
    def submit(self, spec: JobSpec) -> int:
        """Accept ``spec`` (superseding a live job with its key) and return its job id; nothing runs yet."""
        from engine.jobs import CancelToken

        if spec.key is not None and spec.key in self._by_key:
            self.cancel(self._by_key[spec.key])
        job_id = self._next_id
        self._next_id += 1
        self.submitted.append(spec)
        self._specs[job_id] = spec
        self._records[job_id] = JobRecord(job_id=job_id, spec=spec, token=CancelToken())
        self._live.add(job_id)
        if spec.key is not None:
            self._by_key[spec.key] = job_id
        self.sig_job_queued.emit(job_id)
        if self.autorun:
            QTimer.singleShot(0, self, lambda: self._autorun(job_id))
        return job_id

    def cancel(self, job_id: int) -> None:
        """As :meth:`JobRunner.cancel`: a queued job stops at once, a running one at :meth:`confirm_cancel`."""
        self.cancel_requests.append(job_id)
        record = self._records.get(job_id)
        if record is None or record.state.is_final:
            return
        record.token.cancel()
        self._release_key(record)
        if record.state is JobState.QUEUED:
            record.message = "Cancelled"
            self._finish(record, JobState.CANCELLED)
            self.sig_job_cancelled.emit(job_id)
            return
        if record.state is not JobState.CANCELLING:
            record.state = JobState.CANCELLING
            record.message = "Cancelling…"
            self.sig_job_progress.emit(job_id, record.fraction, record.message)

    def cancel_all(self) -> None:
        for job_id in sorted(self._live):
            self.cancel(job_id)

    def record(self, job_id: int) -> JobRecord | None:
        return self._records.get(job_id)

    def records(self) -> list[JobRecord]:
        return list(self._records.values())

    def is_live(self, job_id: int) -> bool:
        return job_id in self._live

    def live_job_for(self, key: str) -> int | None:
        return self._by_key.get(key)

    @property
    def active_count(self) -> int:
        return len(self._live)

    def forget_finished(self) -> None:
        for job_id in [j for j, r in self._records.items() if r.state.is_final]:
            del self._records[job_id]

    def shutdown(self, timeout_ms: int = 5000) -> bool:
        """Cancel everything; running jobs stop at once (there is no worker to wait for)."""
        self.cancel_all()
        for job_id in sorted(self._live):
            self.confirm_cancel(job_id)
        return True

    # -- what a test makes a job do ------------------------------------------------------------
    @property
    def last_id(self) -> int:
        """The id of the latest submitted job."""
        if not self.submitted:
            raise LookupError("no job was submitted")
        return self._next_id - 1

    def spec(self, job_id: int) -> JobSpec:
        """The spec ``job_id`` was submitted with, arguments included."""
        return self._specs[job_id]

    def start(self, job_id: int) -> None:
        """A worker picked the job up (``sig_job_started``); a no-op unless it is queued."""
        record = self._live_record(job_id)
        if record.state is JobState.QUEUED:
            record.state = JobState.RUNNING
            self.sig_job_started.emit(job_id)

    def progress(self, job_id: int, fraction: float, message: str = "") -> None:
        """The job reports progress (starting it first if it was queued)."""
        self.start(job_id)
        record = self._live_record(job_id)
        if record.state is JobState.CANCELLING:
            return  # the real runner publishes progress of running jobs only
        record.fraction, record.message = float(fraction), str(message)
        self.sig_job_progress.emit(job_id, record.fraction, record.message)

    def finish(self, job_id: int, result: object) -> None:
        """The job returns ``result``; dropped (reported cancelled) when it was cancelled meanwhile."""
        self.start(job_id)
        record = self._live_record(job_id)
        if record.token.is_cancelled:
            self._finish(record, JobState.CANCELLED)
            self.sig_job_cancelled.emit(job_id)
            return
        record.fraction = 1.0
        self._finish(record, JobState.DONE)
        self.sig_job_finished.emit(job_id, result)

    def fail(self, job_id: int, error: JobError | BaseException | str) -> None:
        """The job raises: a :class:`JobError`, an exception (a ``ProbityError`` is a user error) or a message."""
        self.start(job_id)
        record = self._live_record(job_id)
        if record.token.is_cancelled:
            self._finish(record, JobState.CANCELLED)
            self.sig_job_cancelled.emit(job_id)
            return
        job_error = _job_error(error)
        record.error = job_error
        record.message = job_error.message
        self._finish(record, JobState.FAILED)
        self.sig_job_failed.emit(job_id, job_error)

    def confirm_cancel(self, job_id: int) -> None:
        """A cancelled (or any running) job stops at its next check: ``sig_job_cancelled``."""
        record = self._live_record(job_id)
        record.token.cancel()
        record.message = "Cancelled"
        self._finish(record, JobState.CANCELLED)
        self.sig_job_cancelled.emit(job_id)

    def run_job(self, job_id: int) -> None:
        """Call the job's function here and now, with a real ``JobContext``, and report what it did."""
        from engine.errors import Cancelled
        from engine.jobs import JobContext

        record = self._live_record(job_id)
        spec = self._specs[job_id]
        if record.token.is_cancelled:
            self.confirm_cancel(job_id)
            return
        self.start(job_id)
        ctx = JobContext(seed=spec.seed, progress_fn=lambda f, m: self._report(job_id, f, m), cancel=record.token)
        try:
            result = spec.fn(*spec.args, ctx=ctx, **dict(spec.params))
        except Cancelled:
            self.confirm_cancel(job_id)
        except Exception as exc:  # reported as the real runner reports it: a ProbityError inline, else a bug
            self.fail(job_id, exc)
        else:
            self.finish(job_id, result)

    def run_all(self) -> int:
        """Run every live job, oldest first (jobs they submit included); returns how many ran."""
        ran = 0
        while self._live:
            self.run_job(min(self._live))
            ran += 1
        return ran

    # -- helpers ---------------------------------------------------------------------------------
    def _autorun(self, job_id: int) -> None:
        if job_id in self._live:
            self.run_job(job_id)

    def _report(self, job_id: int, fraction: float, message: str) -> None:
        record = self._records.get(job_id)
        if record is not None and record.state is JobState.RUNNING:
            self.progress(job_id, fraction, message)

    def _live_record(self, job_id: int) -> JobRecord:
        record = self._records.get(job_id)
        if record is None or job_id not in self._live:
            raise LookupError(f"job {job_id} is not live (it finished, failed or was cancelled)")
        return record

    def _release_key(self, record: JobRecord) -> None:
        key = record.spec.key
        if key is not None and self._by_key.get(key) == record.job_id:
            del self._by_key[key]

    def _finish(self, record: JobRecord, state: JobState) -> None:
        record.state = state
        record.finished_at = time.monotonic()
        self._release_key(record)
        # As the real runner: a finished job's record keeps no inputs.
        record.spec = dataclasses.replace(record.spec, args=(), params={})
        self._live.discard(record.job_id)
        if not record.spec.listed:
            self._records.pop(record.job_id, None)


def _job_error(error: JobError | BaseException | str) -> JobError:
    from engine.errors import ProbityError

    if isinstance(error, JobError):
        return error
    if isinstance(error, str):
        return user_error(error)
    if isinstance(error, ProbityError):
        return JobError(str(error), type(error).__name__, None, error)
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    message = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return JobError(message, type(error).__name__, text, error)

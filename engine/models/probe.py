"""The first prediction of a newly loaded model, run in a child process.

:mod:`engine.models.native_checks` refuses the malformed structures it knows; a
model can still reach compiled code in ways no check foresees (a trusted class
that builds its arrays while predicting, a crafted ONNX graph that trips
onnxruntime).  A native crash kills the whole process, so before a model file is
used Probity loads the same file again in a child process, under the trust
decision already made (no question is asked again), predicts a few rows there,
and only then uses the model in the app or the ``probity`` command.  A crash
becomes one sentence ("The model m.skops crashed a test process while predicting
(signal 11, SIGSEGV), so it was not used."), not a dead app.

The child is a fresh interpreter (``python -I``, given the parent's import path;
in the installed bundle, a ``multiprocessing`` spawn child) with the network guard
installed, core dumps and its standard streams off, one BLAS/OpenMP thread, and
the resource limits of the command.  It
must load exactly the file the parent loaded: its identity (SHA-256, covering
ONNX external data) is compared before anything is predicted.

Each model identity is probed once per process; the outcome is remembered.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from engine.errors import ModelError, UnsafeModelError

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from engine.jobs import JobContext
    from engine.models.base import Model

__all__ = ["ModelCrashError", "probe_model", "probe_rows", "PROBE_ROWS", "DEFAULT_TIMEOUT_S"]

#: Rows predicted in the child (spread over the data when rows are given).
PROBE_ROWS = 8
#: Seconds the child may take to start, load the model and predict.
DEFAULT_TIMEOUT_S = 180.0

_POLL_S = 0.1
_LOCK = threading.Lock()
#: identity -> ``None`` (predicted fine) or how the child crashed (``"while predicting (signal 11, SIGSEGV)"``).
_OUTCOMES: dict[str, str | None] = {}


class ModelCrashError(UnsafeModelError):
    """The model crashed or hung a test process while loading or predicting; it was not used (exit code 3)."""


def _signal_name(code: int) -> str:
    try:
        return f"signal {code}, {signal.Signals(code).name}"
    except ValueError:
        return f"signal {code}"


# ---------------------------------------------------------------------------
# Rows to predict
# ---------------------------------------------------------------------------


def _learned_categories(estimator: Any) -> dict[str, list[Any]]:
    """Column -> categories an encoder of the model learned (one-hot, ordinal, target encoders)."""
    from engine.models.native_checks import _walk

    found: dict[str, list[Any]] = {}
    for obj, _ in _walk(estimator):
        attrs = getattr(obj, "__dict__", None)
        if not isinstance(attrs, dict):
            continue
        names, categories = attrs.get("feature_names_in_"), attrs.get("categories_")
        if isinstance(names, np.ndarray) and isinstance(categories, list) and len(names) == len(categories):
            for name, values in zip(names, categories):
                usable = [
                    v.item() if isinstance(v, np.generic) else v
                    for v in np.asarray(values, dtype=object)
                    if not (isinstance(v, float) and np.isnan(v)) and v is not None
                ]
                if usable:
                    found.setdefault(str(name), usable)
    return found


def probe_rows(model: Model, rows: pd.DataFrame | None = None, *, n_rows: int = PROBE_ROWS) -> pd.DataFrame | None:
    """The rows the child predicts: ``n_rows`` rows spread over ``rows``, or rows built from the model's inputs.

    Built rows take each input's learned categories where an encoder of the model
    has them, else numbers (zeros, ones, then standard normal values from a fixed
    seed); ONNX text inputs get text.  ``None`` when the model does not say what
    its inputs are.
    """
    if rows is not None and len(rows):
        picks = np.unique(np.linspace(0, len(rows) - 1, num=min(n_rows, len(rows))).astype(int))
        return rows.iloc[picks]
    columns: list[str]
    if model.input_columns is not None:
        columns = list(model.input_columns)
    else:
        width = getattr(model, "n_features_in", None)
        if not isinstance(width, (int, np.integer)) or width < 1:
            return None
        columns = [f"x{i}" for i in range(int(width))]
    estimator = model.estimator
    categories = _learned_categories(estimator) if estimator is not None else {}
    text = set()
    if model.format == "onnx":
        text = {name for name, typ, _ in getattr(model, "_inputs", ()) if typ == "tensor(string)"}
    rng = np.random.default_rng(0)
    numbers = np.vstack(
        [np.zeros(len(columns)), np.ones(len(columns)), rng.standard_normal((max(n_rows - 2, 0), len(columns)))]
    )[:n_rows]
    frame: dict[str, Any] = {}
    for j, name in enumerate(columns):
        if name in categories:
            values = categories[name]
            frame[name] = [values[i % len(values)] for i in range(n_rows)]
        elif name in text:
            frame[name] = [f"{v:.3f}" for v in numbers[:, j]]
        else:
            frame[name] = numbers[:, j]
    return pd.DataFrame(frame, columns=columns)


# ---------------------------------------------------------------------------
# The parent side
# ---------------------------------------------------------------------------


def probe_model(
    model: Model,
    *,
    rows: pd.DataFrame | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    ctx: JobContext | None = None,
) -> None:
    """Load ``model``'s file again in a child process and predict a few rows there, before the model is used.

    Parameters
    ----------
    model: a model :func:`engine.models.load_model` returned (in-memory models are
        not probed: nothing was read from a file).
    rows: data rows the model will be used on (the feature columns); a few, spread
        over them, are predicted.  Without rows, rows are built from the model's
        inputs (:func:`probe_rows`).
    timeout_s: how long the child may take, start and loading included (seconds).
    ctx: progress and cancellation (the child is stopped when the job is cancelled).

    Raises
    ------
    ModelCrashError
        The child died of a signal or an abnormal exit, or did not finish in time
        (exit code 3).
    ModelError
        The file changed since it was loaded, or could not be loaded again.
    Cancelled
        ``ctx`` was cancelled; the child is stopped.
    """
    if model.path is None or model.sha256 is None:
        return
    with _LOCK:
        if model.sha256 in _OUTCOMES:
            crashed = _OUTCOMES[model.sha256]
            if crashed is not None:
                raise _crash(model, crashed)
            return
    sample = probe_rows(model, rows)
    if ctx is not None:
        ctx.progress(0.0, f"Testing {model.name} in a separate process")
    report, exitcode, timed_out = _run_child(_request(model, sample), timeout_s=timeout_s, ctx=ctx)
    phase = "predicting" if report.get("loaded") else "loading"
    if timed_out:
        raise ModelCrashError(
            f"The model {model.name} did not finish {phase} in a test process within {timeout_s:g} s, "
            "so it was not used.",
            path=model.path,
            sha256=model.sha256,
        )
    if "done" not in report:
        how = _signal_name(-exitcode) if exitcode is not None and exitcode < 0 else f"exit code {exitcode}"
        crashed = f"while {phase} ({how})"
        with _LOCK:
            _OUTCOMES[model.sha256] = crashed
        raise _crash(model, crashed)
    if report.get("load_error"):
        raise ModelError(
            f"{model.name} could not be loaded again to test it in a separate process: {report['load_error']}",
            path=model.path,
        )
    if report.get("identity") != model.sha256:
        raise ModelError(
            f"{model.name} changed after it was loaded (its SHA-256 is now {report.get('identity')}), "
            "so it was not used; load it again.",
            path=model.path,
        )
    if ctx is not None:
        ctx.progress(1.0, f"{model.name} predicted in a separate process")
    if report.get("predicted") or sample is None:
        with _LOCK:
            _OUTCOMES[model.sha256] = None
    # A Python error on the probe rows is no crash: the model gives the same clear
    # error when it is used, and it is probed again then if it is loaded again.


def _crash(model: Model, how: str) -> ModelCrashError:
    return ModelCrashError(
        f"The model {model.name} crashed a test process {how}, so it was not used.",
        path=model.path,
        sha256=model.sha256,
    )


def _request(model: Model, sample: pd.DataFrame | None) -> dict[str, Any]:
    from engine.limits import current_limits

    trust = model.trust
    trusted = (trust.sha256,) if trust.required and trust.sha256 else ()
    return {
        "path": str(model.path),
        "identity": model.sha256,
        "trusted_sha256": trusted,
        "granted_by": trust.granted_by,
        "allow_unreviewed": bool(trust.allow_unreviewed),
        # The columns a torch network was mapped to (formats that name their own inputs ignore them).
        "features": list(model.input_columns) if model.input_columns is not None else None,
        "limits": dataclasses.asdict(current_limits()),
        "rows": sample,
    }


def _run_child(
    request: dict[str, Any], *, timeout_s: float, ctx: JobContext | None
) -> tuple[dict[str, Any], int | None, bool]:
    """Start the child, wait for it (checking ``ctx``), and collect what it said.

    Returns ``(report, exitcode, timed_out)``: ``report`` has ``loaded``, then
    ``done`` with the outcome, as far as the child got.  A negative exit code is
    the signal that ended the child.
    """
    if getattr(sys, "frozen", False):
        return _run_frozen_child(request, timeout_s=timeout_s, ctx=ctx)
    import pickle
    import subprocess

    # -I: no user site, no PYTHON* variables, not the current folder (a model's folder
    # could hold a numpy.py); the parent's own import path is set explicitly instead.
    code = (
        "import sys; sys.path[:] = "
        + repr([p for p in sys.path if p])
        + "; from engine.models.probe import _subprocess_child; _subprocess_child()"
    )
    # One compute thread (set before numpy loads), and a session of its own: the
    # terminal's Ctrl-C cancels the parent's job, which then stops the child.
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    child = subprocess.Popen(
        [sys.executable, "-I", "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        close_fds=True,
        env=env,
        start_new_session=True,
    )
    timed_out = False
    try:
        assert child.stdin is not None and child.stdout is not None
        try:
            child.stdin.write(pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL))
            child.stdin.close()
        except BrokenPipeError:
            pass  # the child died before reading: its exit code says how
        deadline = time.monotonic() + timeout_s
        while child.poll() is None:
            if time.monotonic() > deadline:
                timed_out = True
                break
            if ctx is not None:
                ctx.check_cancelled()
            try:
                child.wait(_POLL_S)
            except subprocess.TimeoutExpired:
                pass
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
    assert child.stdout is not None
    report = _parse_report(child.stdout.read())
    child.stdout.close()
    return report, child.returncode, timed_out and "done" not in report


def _parse_report(raw: bytes) -> dict[str, Any]:
    """The child's JSON lines, merged; a torn last line (the child died writing it) is ignored."""
    import json

    report: dict[str, Any] = {}
    for line in raw.splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict):
            report.update(item)
    return report


def _run_frozen_child(
    request: dict[str, Any], *, timeout_s: float, ctx: JobContext | None
) -> tuple[dict[str, Any], int | None, bool]:
    """In the installed bundle there is no ``python`` to start: a multiprocessing spawn child.

    The child is started through the bundle's ``probity`` command (beside
    ``probity-gui``), whose entry point calls ``multiprocessing.freeze_support()``
    and so runs the child instead of the command.
    """
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    here = Path(sys.executable)
    command = here.with_name("probity" + here.suffix)
    if command.is_file():
        context.set_executable(str(command))
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_pipe_child, args=(sender, request), name="probity-model-probe", daemon=True)
    report: dict[str, Any] = {}
    timed_out = False
    try:
        child.start()
        sender.close()
        deadline = time.monotonic() + timeout_s
        while child.is_alive():
            _drain(receiver, report)
            if time.monotonic() > deadline:
                timed_out = True
                break
            if ctx is not None:
                ctx.check_cancelled()
            child.join(_POLL_S)
        _drain(receiver, report)
    finally:
        if child.is_alive():
            child.kill()
        if child.pid is not None:
            child.join()
        receiver.close()
    return report, child.exitcode, timed_out and "done" not in report


def _drain(receiver: Connection, report: dict[str, Any]) -> None:
    try:
        while receiver.poll():
            report.update(receiver.recv())
    except (EOFError, OSError):
        pass


# ---------------------------------------------------------------------------
# The child side
# ---------------------------------------------------------------------------


def _quiet_child() -> None:
    """No network, no core file, nothing on the parent's terminal, one compute thread."""
    import warnings

    from engine import netguard

    netguard.install()
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ImportError, ValueError, OSError):  # pragma: no cover - not POSIX, or not allowed
        pass
    devnull = os.open(os.devnull, os.O_WRONLY)
    for fd in (1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    warnings.simplefilter("ignore")
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = "1"


def _subprocess_child() -> None:
    """The child's entry point: the request is a pickle on stdin (from the parent), reports are JSON lines."""
    import json
    import pickle

    request = pickle.loads(sys.stdin.buffer.read())  # written by the parent process, not by a file
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")

    def send(item: dict[str, Any]) -> None:
        out.write(json.dumps(item) + "\n")
        out.flush()

    _child_main(send, request)
    out.close()


def _pipe_child(sender: Connection, request: dict[str, Any]) -> None:
    _child_main(sender.send, request)


def _child_main(send: Callable[[dict[str, Any]], None], request: dict[str, Any]) -> None:
    """Load the file under the parent's trust decision, report, predict, report."""
    _quiet_child()
    from engine.errors import ProbityError
    from engine.limits import Limits, using_limits
    from engine.models.loading import load_model

    try:
        with using_limits(Limits(**request["limits"])):
            model = load_model(
                Path(request["path"]),
                trusted_sha256=request["trusted_sha256"],
                granted_by=request["granted_by"],
                allow_unreviewed=request["allow_unreviewed"],
                features=request.get("features"),
            )
    except ProbityError as exc:
        send({"done": True, "load_error": str(exc)})
        return
    send({"loaded": True, "identity": model.sha256})
    if model.sha256 != request["identity"] or request["rows"] is None:
        send({"done": True})
        return
    try:
        model.predict(request["rows"])
    except Exception as exc:  # any Python error is not a crash; the parent's use reports it
        send({"done": True, "predicted": False, "error": type(exc).__name__})
        return
    send({"done": True, "predicted": True})

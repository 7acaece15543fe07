"""What the gradient explainers share: checked inputs, batched passes and the result they build.

:func:`prepare` checks a run's inputs once (the model, or its exact torch
view; the rows, leaving out those with missing values; the class and output
explained; device and dtype) into a :class:`Setup`; :func:`chunks` walks the
rows in passes with progress and cancel; :func:`gradient_pass` gives ``f(x)``
and ``∂f/∂x`` in one forward and backward pass; :func:`build_result` records
the call.  The methods themselves are in :mod:`engine.explain.gradients`.

On a GPU a pass holds no more rows than half the free memory holds
(:meth:`Setup.rows_per_pass`); a run that runs out of memory anyway is made
again with passes of half the rows, down to one row, and then on the CPU with
a warning in its result (:func:`within_device_memory`).  Rows never influence
each other, so the numbers do not depend on the pass size.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import numpy as np

from engine.attribution import AttributionResult, resolve_output
from engine.device import (
    choose_device,
    device_preference,
    is_out_of_memory,
    out_of_memory_warning,
    release_device_memory,
    rows_within_memory,
)
from engine.errors import AnalysisError
from engine.inputs import AuditInputs
from engine.jobs import JobContext
from engine.models.base import Task
from engine.models.differentiable import ViewRefused, check_differentiable, check_view, torch_view
from engine.models.torch_adapter import TorchModel
from engine.parallel import job_threads

__all__ = [
    "OUTPUTS",
    "DTYPES",
    "whole",
    "choice",
    "Setup",
    "refusal",
    "prepare",
    "chunks",
    "to_numpy",
    "input_gradient",
    "gradient_pass",
    "build_result",
    "recorded_rows",
    "within_device_memory",
]

OUTPUTS = ("logit", "probability")
DTYPES = ("float32", "float64")

# Stacked points per forward/backward pass on the CPU.  Measured on the bench MLP
# (30-64-64-2, two threads): passes of about 2k points ran 1.5x faster than one
# pass of 50k, whose float64 activations (25 MB a layer) spill out of cache,
# and 1.2x faster than passes of 4k.
_CPU_POINTS_PER_PASS = 2048
# ... and about this many parameter-points per pass, so a pass of a large model
# stays well under the 0.5 s that cancelling may take.
_CPU_WORK_PER_PASS = 50_000_000

# A scikit-learn model's torch view is checked against its own predictions on up to this many explained rows.
_VIEW_CHECK_ROWS = 2000
# Fewest rows per pass the out-of-memory retries go down to before the run moves to the CPU.
_MIN_PASS_ROWS = 1


@dataclass
class _Passes:
    """A guarded run's pass sizes: the cap out-of-memory retries set, and the last size and device planned."""

    cap: int | None = None
    rows: int = 0
    device: str = "cpu"


_PASSES: ContextVar[_Passes | None] = ContextVar("probity_gradient_passes", default=None)
_Run = TypeVar("_Run", bound=Callable[..., AttributionResult])


def within_device_memory(run: _Run) -> _Run:
    """``run`` (a gradient method) made again with smaller passes when its device runs out of memory.

    Each retry halves the rows per pass that ran out (``cap``, read by
    :meth:`Setup.rows_per_pass`), down to :data:`_MIN_PASS_ROWS`; past that
    a GPU run is made on the CPU, and its result warns that it was
    (:func:`engine.device.out_of_memory_warning`).  Every retry starts the run
    over, so its random streams and results are those of a run without a cap.
    """

    @functools.wraps(run)
    def guarded(*args: Any, **kwargs: Any) -> AttributionResult:
        passes = _Passes()
        token = _PASSES.set(passes)
        try:
            while True:
                try:
                    return run(*args, **kwargs)
                except (RuntimeError, MemoryError) as exc:
                    if not is_out_of_memory(exc) or passes.rows == 0:
                        raise
                    del exc  # its traceback holds the pass's tensors
                release_device_memory(passes.device)
                if passes.rows > _MIN_PASS_ROWS:
                    passes.cap = max(_MIN_PASS_ROWS, passes.rows // 2)
                    continue
                if passes.device == "cpu":
                    raise AnalysisError(
                        f"The computation ran out of memory on the CPU even at {passes.rows} row per pass."
                    ) from None
                device, rows = passes.device, passes.rows
                _PASSES.set(_Passes())
                result = run(*args, **{**kwargs, "device": "cpu"})
                warning = out_of_memory_warning(f"{_title(result.method)} attributions", device, rows)
                prov = dataclasses.replace(result.provenance, warnings=(*result.provenance.warnings, warning))
                return dataclasses.replace(result, provenance=prov)
        finally:
            _PASSES.reset(token)

    return cast(_Run, guarded)


def whole(value: Any, what: str, *, minimum: int = 1) -> int:
    """``value`` as an int, refused unless it is a whole number of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        qualifier = "positive" if minimum == 1 else f"at least {minimum}"
        raise AnalysisError(f"The {what} must be a {qualifier} whole number, not {value!r}.")
    return int(value)


def choice(value: Any, allowed: Sequence[str], what: str) -> str:
    """``value``, refused unless it is one of ``allowed``."""
    if value not in allowed:
        raise AnalysisError(f"Unknown {what} {value!r}; choose one of {', '.join(repr(a) for a in allowed)}.")
    return str(value)


def _source(inputs: AuditInputs) -> str:
    return inputs.dataset.name if inputs.dataset is not None else "the data"


@dataclass(frozen=True)
class Setup:
    """Everything the four explainers share once their inputs are checked."""

    model: TorchModel
    feature_names: tuple[str, ...]
    rows: np.ndarray  # (n,) int64 positions in the frame
    x: np.ndarray  # (n, F) float64 raw values of those rows
    class_index: int | None
    output_name: str
    output_space: str
    device: str
    dtype: Any  # torch dtype
    dtype_name: str
    source: str
    view: str | None = None  # what a scikit-learn model was rebuilt as, if it was
    notes: tuple[str, ...] = ()  # warnings about the rows, for the result

    def explain(self, x: Any) -> Any:
        """The explained scalar ``(m,)`` for a tensor ``(m, F)``, keeping the autograd graph."""
        return self._select(self.model.forward_tensor(x, device=self.device))

    def _select(self, out: Any) -> Any:
        """The explained scalar ``(m,)`` from the model's logits or values."""
        import torch

        if self.class_index is None:
            return out
        if self.output_space == "probability":
            out = torch.softmax(out, dim=1)
        return out[:, self.class_index]

    def affine_head(self) -> tuple[Any, Any, Any] | None:
        """The model's leading affine layer split off, as ``(W, b, tail)`` with ``tail(z)`` the explained scalar."""
        head = self.model.affine_head(self.device, self.dtype)
        if head is None:
            return None
        weight, bias, forward_rest = head

        def tail(z: Any) -> Any:
            return self._select(forward_rest(z))

        return weight, bias, tail

    def relu_chain(self) -> tuple[tuple[tuple[Any, Any], ...], Any] | None:
        """``(hidden, row)`` when the explained scalar is ``row · a_L + c`` of a plain ReLU MLP, else ``None``.

        ``hidden`` holds the ``(W, b)`` of every layer but the last; ``row`` is
        the last layer's weights for the explained output.  Only logits and
        values qualify: a probability is not linear in the last layer.
        """
        import torch

        if self.output_space == "probability":
            return None
        layers = self.model.relu_layers(self.device, self.dtype)
        if layers is None:
            return None
        last = layers[-1][0]
        k = len(self.model.classes or ())
        if self.class_index is None or last.shape[0] == k:
            if last.shape[0] != (1 if self.class_index is None else k):
                return None
            row = last[self.class_index or 0]
        elif k == 2 and last.shape[0] == 1:  # one logit z read as [0, z]
            row = last[0] if self.class_index == 1 else torch.zeros_like(last[0])
        else:
            return None
        return layers[:-1], row

    def tensor(self, a: np.ndarray) -> Any:
        import torch

        return torch.as_tensor(a, dtype=self.dtype, device=self.device)

    def rows_per_pass(self, batch_rows: int, points_per_row: int) -> int:
        """Rows per chunk: at most ``batch_rows``; on the CPU also a cache-sized pass, on a GPU what half its free
        memory holds; under :func:`within_device_memory`, also no more than a retry's cap."""
        if self.device != "cpu":
            per_row = self.model.bytes_per_row(self.dtype, points=points_per_row, grad=True)
            rows = rows_within_memory(self.device, per_row, batch_rows)
        else:
            n_params = sum(p.numel() for p in self.model.module.parameters()) or 1
            points = min(_CPU_POINTS_PER_PASS, max(1, _CPU_WORK_PER_PASS // n_params))
            rows = max(1, min(batch_rows, points // points_per_row))
        passes = _PASSES.get()
        if passes is not None:
            rows = rows if passes.cap is None else min(rows, passes.cap)
            passes.rows, passes.device = min(rows, len(self.rows)), self.device  # a retry halves what a pass held
        return rows


def _refusal_text(model: Any, why: ViewRefused) -> str:
    return (
        f"Gradient methods need a differentiable model (a torch model, or a scikit-learn MLP or linear "
        f"model after affine scalers); {model.name} is not one, because {why}; SHAP and LIME explain any "
        "model."
    )


def refusal(model: Any, *, feature_names: Sequence[str]) -> str | None:
    """Why the gradient methods cannot explain ``model`` (the sentence a run would raise), or ``None``.

    Decided from the model's structure alone, without importing torch: the same
    check :func:`engine.models.differentiable.torch_view` makes before building the view.
    """
    if isinstance(model, TorchModel):
        return None
    try:
        check_differentiable(model, feature_names=feature_names)
    except ViewRefused as why:
        return _refusal_text(model, why)
    return None


def prepare(
    inputs: AuditInputs,
    *,
    rows: Sequence[int] | np.ndarray | None,
    klass: Any,
    output: str,
    device: str,
    dtype: str,
) -> Setup:
    import torch

    model, view = inputs.model, None
    if not isinstance(model, TorchModel):
        try:
            model, view = torch_view(model, feature_names=inputs.roles.features)
        except ViewRefused as why:
            raise AnalysisError(_refusal_text(model, why)) from None
    output = choice(output, OUTPUTS, "output to explain")
    dtype_name = choice(dtype, DTYPES, "dtype")
    if model.task is Task.REGRESSION and output == "probability":
        raise AnalysisError(
            f"The model {model.name} is a regressor and has no probabilities; explain its value with output='logit'."
        )
    class_index, prob_name = resolve_output(model, klass)
    if class_index is None:
        output_name, output_space = "prediction", "value"
    elif output == "probability":
        output_name, output_space = prob_name, "probability"
    else:
        output_name, output_space = f"logit({(model.classes or ())[class_index]})", "logit"

    source = _source(inputs)
    model.check_input(inputs.frame, source=source)
    n_total = len(inputs.frame)
    if rows is None:
        positions = np.arange(n_total, dtype=np.int64)
    else:
        positions = np.asarray(rows)
        if positions.ndim != 1 or (positions.size and positions.dtype.kind not in "iu"):
            raise AnalysisError("The rows to explain must be a list of whole-number row positions.")
        positions = positions.astype(np.int64)
        bad = positions[(positions < 0) | (positions >= n_total)]
        if bad.size:
            raise AnalysisError(
                f"Row position {int(bad[0])} is outside {source}, which has {n_total} rows (numbered from 0)."
            )
    if positions.size == 0:
        raise AnalysisError(f"There are no rows to explain in {source}.")

    features = tuple(model.input_columns or ())
    x = model.frame_to_array(inputs.frame.iloc[positions])
    finite = np.isfinite(x)
    notes: tuple[str, ...] = ()
    complete = finite.all(axis=1)
    if not complete.any():
        i, j = np.argwhere(~finite)[0]
        raise AnalysisError(
            f"Row {int(positions[i])} of {source} has a missing or infinite value in column {features[j]!r}; "
            "gradient methods need complete numeric rows."
        )
    if not complete.all():
        # A gradient cannot pass through a missing value: those rows are left out, and said so.
        left_out = positions[~complete]
        shown = ", ".join(str(int(r)) for r in left_out[:5]) + (
            f" and {left_out.size - 5} more" if left_out.size > 5 else ""
        )
        one = left_out.size == 1
        notes = (
            f"{left_out.size} of the {positions.size} rows asked for "
            + (
                "was left out because it has a missing or infinite value"
                if one
                else "were left out because they have missing or infinite values"
            )
            + f", which gradients cannot pass through (row{'' if one else 's'} {shown}).",
        )
        positions, x = positions[complete], x[complete]
    if view is not None:
        check_view(inputs.model, model, inputs.frame.iloc[positions[:_VIEW_CHECK_ROWS]])
    return Setup(
        model=model,
        feature_names=features,
        rows=positions,
        x=x,
        class_index=class_index,
        output_name=output_name,
        output_space=output_space,
        device=_device_for(inputs.model, device),
        dtype=torch.float64 if dtype_name == "float64" else torch.float32,
        dtype_name=dtype_name,
        source=source,
        view=view,
        notes=notes,
    )


def _title(method: str) -> str:
    """A method's short title for a sentence (``"Integrated Gradients"``), its name if it has none."""
    from engine.registry import METHODS

    found = METHODS.get(method)
    return str(getattr(found, "short_title", None) or method)


def _device_for(model: Any, device: str) -> str:
    """The device a run uses: ``"auto"`` on a torch model is the model's own (loaded with ``--device``), unless
    an audit's ``--device`` is in force (:func:`engine.device.preferred_device`)."""
    auto = isinstance(device, str) and device.strip().lower() == "auto"
    if auto and isinstance(model, TorchModel) and device_preference() is None:
        return str(model.device)
    return choose_device(device)


def chunks(setup: Setup, ctx: JobContext, rows_per_pass: int, title: str) -> Iterator[tuple[int, int]]:
    """Yield ``(start, stop)`` row ranges, reporting progress and checking for cancel before each.

    On the CPU the passes run with as many torch threads as there are free
    cores (:func:`engine.parallel.job_threads`, the one thread policy); the previous count is restored after.
    """
    import torch

    n = len(setup.rows)
    previous = torch.get_num_threads()
    if str(setup.device).startswith("cpu"):
        torch.set_num_threads(job_threads())
    try:
        for start in range(0, n, rows_per_pass):
            ctx.check_cancelled()
            ctx.progress(start / n, f"{title}: {start} of {n} rows")
            yield start, min(start + rows_per_pass, n)
        ctx.check_cancelled()
        ctx.progress(1.0, f"{title}: {n} of {n} rows")
    finally:
        torch.set_num_threads(previous)


def to_numpy(t: Any) -> np.ndarray:
    import torch

    values: np.ndarray = t.detach().to(device="cpu", dtype=torch.float64).numpy()
    return values


def input_gradient(total: Any, x: Any) -> Any:
    """``∂ total / ∂x``; zeros where the output does not depend on ``x`` (a constant model)."""
    import torch

    if not total.requires_grad:
        return torch.zeros_like(x)
    (grad,) = torch.autograd.grad(total, x, allow_unused=True)
    return torch.zeros_like(x) if grad is None else grad


def gradient_pass(setup: Setup, x: Any) -> tuple[Any, Any]:
    """``f(x)`` ``(m,)`` and ``∂f/∂x`` ``(m, F)`` for a tensor ``x`` ``(m, F)``, in one pass."""
    import torch

    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        y = setup.explain(x)
        grad = input_gradient(y.sum(), x)
    return y.detach(), grad


def build_result(
    setup: Setup,
    inputs: AuditInputs,
    *,
    method: str,
    ctx: JobContext,
    started: str,
    t0: float,
    parameters: Mapping[str, Any],
    values: np.ndarray,
    predictions: np.ndarray,
    base_values: np.ndarray | None = None,
    quality: Mapping[str, np.ndarray] | None = None,
    summary: Mapping[str, float] | None = None,
    extras: Mapping[str, np.ndarray] | None = None,
    warnings: Sequence[str] = (),
) -> AttributionResult:
    params = {
        **parameters,
        "output": setup.output_space if setup.output_space != "value" else "logit",
        "klass": None if setup.class_index is None else (setup.model.classes or ())[setup.class_index],
        "device": setup.device,
        "dtype": setup.dtype_name,
        "n_rows": int(len(setup.rows)),
    }
    if setup.view is not None:
        params["differentiable_view"] = setup.view
    seconds = time.perf_counter() - t0
    warnings = (*setup.notes, *warnings)
    provenance = inputs.provenance(method=method, parameters=params, ctx=ctx, started_at=started, warnings=warnings)
    return AttributionResult(
        provenance=provenance,
        method=method,
        feature_names=setup.feature_names,
        rows=setup.rows,
        values=values,
        base_values=base_values,
        predictions=predictions,
        output_name=setup.output_name,
        output_space=setup.output_space,
        class_index=setup.class_index,
        quality=dict(quality or {}),
        summary=dict(summary or {}),
        extras=dict(extras or {}),
        compute_seconds=seconds,
    )


def recorded_rows(rows: Sequence[int] | np.ndarray | None) -> list[int] | None:
    return None if rows is None else [int(r) for r in np.asarray(rows).ravel()]

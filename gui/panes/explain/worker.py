"""What the Explain area can run, and the functions its jobs run on the runner's workers.

No widget lives here (nothing from Qt is imported): :func:`run_explanation`
runs one registered method as ``probity explain`` does, reusing SHAP values
an earlier job computed on the same inputs, rows and seed;
:func:`scan_predictions` predicts every row for the instance picker.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from gui.views import titles_in

if TYPE_CHECKING:
    from engine.inputs import AuditInputs
    from engine.jobs import JobContext
    from engine.method import Method

__all__ = [
    "VIEW_TITLES",
    "explain_methods",
    "ExplainOutcome",
    "attribution_key",
    "run_explanation",
    "PredictionScan",
    "scan_predictions",
]


# -- what can be run ---------------------------------------------------------------------------------


def explain_methods() -> dict[str, Method]:
    """The registered methods this area offers (their view is one of its tabs), in registry order."""
    from gui.views import methods_in

    return methods_in("explain")


#: The result tabs of this area, by the view key a method's descriptor names, in their order (from the
#: app's one table of views, :data:`gui.views.VIEWS`).
VIEW_TITLES: dict[str, str] = titles_in("explain")


# -- worker functions (no Qt) ------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ExplainOutcome:
    """What an explain job returns: the method's result and, for clusters, the SHAP values clustered.

    ``shap_key`` is the :func:`attribution_key` of the SHAP values in the outcome
    (the result of a SHAP run, or the values a clustering used), ``None`` when
    they cannot be reused; ``shap_reused`` says whether the clustering took them
    from an earlier run instead of computing them.
    """

    method: str
    result: Any
    attributions: Any | None = None
    shap_key: tuple[Any, ...] | None = None
    shap_reused: bool = False


def attribution_key(
    inputs: AuditInputs, *, method: str, params: Mapping[str, Any], rows: Sequence[int], seed: int
) -> tuple[Any, ...] | None:
    """What identifies an attribution result for reuse: model and data hashes, method, parameters, rows, seed.

    ``params`` are completed with the method's defaults, so an untouched form and
    the defaults give the same key.  ``None`` when the model or the data has no
    hash (nothing then proves two runs saw the same inputs).
    """
    from engine.registry import get_method

    dataset = inputs.dataset
    if inputs.model.sha256 is None or dataset is None or dataset.sha256 is None:
        return None
    full = {**get_method(method).defaults, **{k: v for k, v in params.items() if k != "rows"}}
    return (
        inputs.model.sha256,
        dataset.sha256,
        repr(sorted(dataset.options.to_dict().items())),
        tuple(inputs.feature_names),
        method,
        tuple(sorted((k, repr(v)) for k, v in full.items())),
        tuple(int(r) for r in rows),
        int(seed),
    )


def run_explanation(
    inputs: AuditInputs,
    *,
    method: str,
    params: Mapping[str, Any],
    rows_spec: str = "",
    extra_rows: Sequence[int] = (),
    reuse: Mapping[tuple[Any, ...], Any] | None = None,
    ctx: JobContext,
) -> ExplainOutcome:
    """Run one registered method on ``inputs`` (on a worker thread).

    Parameters
    ----------
    inputs: data, roles and model.
    method: a name from :func:`explain_methods`.
    params: the method's keyword parameters (``rows`` and the results it builds on are set here).
    rows_spec: for row methods, a :func:`engine.rows.parse_rows` spec
        (0-based positions); ``""`` means only ``extra_rows``.
    extra_rows: positions explained as well (the window's selection).
    reuse: SHAP results already computed, by :func:`attribution_key`; the clusters
        method takes its SHAP values from here when the key matches, and records so.
        A method that builds on a whole-table result (dependence on the permutation
        ranking) has it computed by the job layer, exactly as that method alone gives it.
    ctx: seed, progress and cancel.
    """
    from engine.errors import AnalysisError
    from engine.registry import get_method
    from engine.rows import parse_rows

    definition = get_method(method)
    rows: list[int] | None = None
    if definition.takes_rows:
        n = len(inputs.frame)
        picked = parse_rows(rows_spec, n, ctx=ctx) if rows_spec.strip() else np.zeros(0, dtype=np.int64)
        extra = np.asarray(list(extra_rows), dtype=np.int64)
        if extra.size and (extra.min() < 0 or extra.max() >= n):
            raise AnalysisError(f"A selected row is outside the data, which has rows 0 to {n - 1}.")
        merged = np.union1d(picked, extra).astype(np.int64)
        if merged.size == 0:
            raise AnalysisError("Choose the rows to explain: select rows, or write a row spec such as first:20.")
        rows = merged.tolist()
    from engine.plan import JobSpec as EngineJob
    from engine.plan import base_spec, run_job

    own = {k: v for k, v in params.items() if k != "rows"}
    spec = EngineJob(method, own, rows=None if rows is None else tuple(rows))
    if definition.builds_on and rows is not None:
        # What it builds on (clusters: the SHAP values) is what that method gives on its own on these rows and
        # seed (engine.plan runs it so), so an earlier such run is reused rather than recomputed.
        ((name, source),) = definition.builds_on.items()
        key = attribution_key(
            inputs, method=source, params=dict(base_spec(spec, source).params), rows=rows, seed=ctx.seed
        )
        shap = (reuse or {}).get(key) if key is not None else None
        outcome = run_job(spec, inputs, ctx, built={name: shap} if shap is not None else None)
        result = outcome.result
        if outcome.reused:
            result = _note_reused(result, shap)
        return ExplainOutcome(
            method=method,
            result=result,
            attributions=outcome.built_on[name],
            shap_key=key,
            shap_reused=bool(outcome.reused),
        )
    result = run_job(spec, inputs, ctx).result
    key = None
    if method == "shap" and rows is not None:
        key = attribution_key(inputs, method="shap", params=params, rows=rows, seed=ctx.seed)
    return ExplainOutcome(method=method, result=result, shap_key=key)


def _note_reused(result: Any, shap: Any) -> Any:
    """``result`` whose provenance says its SHAP values were reused, and from which result."""
    import dataclasses

    source = shap.provenance
    parameters = {
        **result.provenance.parameters,
        "attributions_reused": {
            "method": source.method,
            "started_at": source.started_at,
            "finished_at": source.finished_at,
            "seed": source.seed,
            "rows": len(shap.rows),
            "note": "The SHAP values of this earlier result on the same model, data, rows and seed were reused, "
            "not recomputed.",
        },
    }
    return dataclasses.replace(result, provenance=dataclasses.replace(result.provenance, parameters=parameters))


@dataclass(frozen=True, eq=False)
class PredictionScan:
    """The explained model output of every row, for picking instances by prediction.

    ``values`` is ``(n,)`` in the units named by ``output_name``.
    """

    output_name: str
    values: np.ndarray


def scan_predictions(inputs: AuditInputs, *, ctx: JobContext) -> PredictionScan:
    """The model's explained output (the positive class's probability, or the value) for every row."""
    from engine.attribution import resolve_output
    from engine.explain.pdp import explained_output

    class_index, name = resolve_output(inputs.model, None)
    X = inputs.X
    n = len(X)
    ctx.progress(0.0, "Predicting every row")
    values = explained_output(
        inputs.model,
        lambda a, b: X.iloc[a:b],
        n,
        class_index,
        ctx=ctx,
        n_columns=X.shape[1],
        on_chunk=lambda stop: ctx.progress(stop / max(n, 1), f"Predicted {stop:,} of {n:,} rows"),
    )
    values.flags.writeable = False
    return PredictionScan(output_name=name, values=values)

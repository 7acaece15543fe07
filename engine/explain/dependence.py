"""Partial dependence of the features permutation importance ranks highest: one composite, declared once.

The audit has always drawn its dependence plots for the top features of its
permutation ranking.  This descriptor makes that choice an analysis of its own,
so ``probity explain dependence``, the desktop app's Explain area and the audit
run the same thing: permutation importance (computed first, or handed over by
the front end when it already has it: :attr:`~engine.method.Method.builds_on`),
then :mod:`engine.explain.pdp` on its ``top`` features, under this method's
random stream.  The result is a partial-dependence result, drawn and reported
as one; its recorded call names the ranking it was given, so ``probity rerun``
makes the ranking and the curves again.
"""

from __future__ import annotations

from typing import Any

from engine.errors import AnalysisError
from engine.explain import pdp
from engine.explain.pdp import PartialDependenceResult
from engine.inputs import AuditInputs
from engine.jobs import JobContext
from engine.method import Method
from engine.params import Param

__all__ = ["TOP_FEATURES", "top_features", "run", "METHOD"]

#: How many of the top-ranked features get curves unless asked otherwise (the audit's long-standing choice).
TOP_FEATURES = 3

# pdp's own parameters, less the features this method picks (one declaration: pdp's descriptor).
_CURVE_PARAMS = tuple(p for p in pdp.METHOD.params if p.name != "features")


def top_features(importance: Any, top: int) -> list[str]:
    """The ``top`` features of a permutation importance result, most important first."""
    from engine.explain.permutation import PermutationImportanceResult

    if not isinstance(importance, PermutationImportanceResult):
        raise AnalysisError(
            "Partial dependence of the top-ranked features needs a permutation importance result to rank them."
        )
    return list(importance.ranking()[: max(1, int(top))])


def run(
    inputs: AuditInputs,
    *,
    ctx: JobContext,
    importance: Any | None = None,
    top: int = TOP_FEATURES,
    grid_resolution: int = 20,
    percentiles: tuple[float, float] = (0.05, 0.95),
    ice_rows: int | None = 200,
    pair: tuple[str, str] | None = None,
    klass: Any | None = None,
    max_categories: int = 30,
) -> PartialDependenceResult:
    """Partial dependence and ICE curves of the ``top`` features of ``importance``'s ranking.

    Parameters
    ----------
    importance:
        The model's permutation importance on these inputs (the front end computes
        it first with its own defaults and stream, or hands over one it has).
    top:
        How many of the highest-ranked features get curves.
    grid_resolution, percentiles, ice_rows, pair, klass, max_categories:
        As :func:`engine.explain.pdp.run`.

    Raises
    ------
    AnalysisError
        No permutation importance was given, or the curves cannot be drawn.
    """
    if importance is None:
        raise AnalysisError(
            "Partial dependence of the top-ranked features needs the model's permutation importance, computed first."
        )
    return pdp.run(
        inputs,
        ctx=ctx,
        features=top_features(importance, top),
        grid_resolution=grid_resolution,
        percentiles=percentiles,
        ice_rows=ice_rows,
        pair=pair,
        klass=klass,
        max_categories=max_categories,
    )


METHOD = Method(
    name="dependence",
    title="Partial dependence of the top-ranked features",
    short_title="Partial dependence",
    run=run,
    summary=(
        "Partial dependence and ICE curves of the features permutation importance ranks highest: the ranking "
        "is computed first, then the curves of its top features."
    ),
    description=(
        "The features are the ones permutation importance ranks highest on the same data. " + pdp.METHOD.description
    ),
    params=(
        Param(
            "importance",
            "result",
            None,
            label="Importance",
            help="The model's permutation importance, computed first; its ranking picks the features.",
        ),
        Param(
            "top",
            "int",
            TOP_FEATURES,
            label="Top features",
            minimum=1,
            basic=True,
            unit="features",
            help="How many of the features permutation importance ranks highest get curves.",
        ),
        *_CURVE_PARAMS,
    ),
    result=PartialDependenceResult,
    builds_on={"importance": "permutation"},
    view="dependence",
    samples="ice_rows",
)

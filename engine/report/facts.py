"""What the report's sections are drawn from: :class:`Facts`, and where each type of result goes.

:data:`RENDERERS` maps each type of result to the :class:`Facts` field that
holds it and the sections that draw it; :meth:`Facts.gather` sorts a report's
results by it.  Everything else the sections say comes from the record's
typed header (:class:`~engine.report.header.RecordHeader`), never from the
``results.json`` document itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.attribution import AttributionResult
from engine.explain.clusters import ExplanationClustersResult
from engine.explain.fairness import FairnessResult
from engine.explain.groups import GroupMetricsResult
from engine.explain.native import NativeImportanceResult
from engine.explain.network import NetworkResult
from engine.explain.pdp import PartialDependenceResult
from engine.explain.performance import PerformanceResult
from engine.explain.permutation import PermutationImportanceResult
from engine.explain.proxies import ProxyResult
from engine.explain.quality import AgreementResult
from engine.explain.surrogate import SurrogateResult
from engine.plan import SHAP_METHODS
from engine.report.formats import num
from engine.report.header import GroupFigures, RecordHeader
from engine.report.inputs import ReportInput
from engine.results import Result

__all__ = ["Facts", "Renderer", "RENDERERS", "renderer_of"]


@dataclass(frozen=True)
class Renderer:
    """Where the report puts one type of result.

    Attributes
    ----------
    slot: the :class:`Facts` field that holds it.
    sections: the sections (keys of :data:`engine.report.SECTIONS`) that draw it.
    every: keep every result of the type, in the record's order; otherwise the first.
    """

    slot: str
    sections: tuple[str, ...]
    every: bool = False


#: Result type -> how the report draws it.  Every result, of these types or others, is also
#: listed in the summary's analyses, the methodology (with each parameter) and the limitations.
RENDERERS: dict[type[Result], Renderer] = {
    PerformanceResult: Renderer("performance", ("summary", "performance")),
    PermutationImportanceResult: Renderer("permutation", ("summary", "importance")),
    AttributionResult: Renderer("attributions", ("summary", "importance", "local"), every=True),
    NativeImportanceResult: Renderer("native", ("importance",)),
    AgreementResult: Renderer("agreement", ("importance",)),
    SurrogateResult: Renderer("surrogate", ("summary", "surrogates")),
    ExplanationClustersResult: Renderer("clusters", ("summary", "clusters")),
    PartialDependenceResult: Renderer("dependence", ("dependence",)),
    GroupMetricsResult: Renderer("groups", ("summary",)),
    FairnessResult: Renderer("fairness", ("summary", "fairness")),
    ProxyResult: Renderer("proxies", ("summary", "fairness")),
    NetworkResult: Renderer("network", ("network",)),
}


def renderer_of(result: Result) -> Renderer | None:
    """How the report draws ``result`` (looked up by its type, or the nearest registered base type)."""
    for cls in type(result).__mro__:
        found = RENDERERS.get(cls)
        if found is not None:
            return found
    return None


@dataclass(frozen=True, eq=False)
class Facts:
    """The report input, its record's header and its results sorted by :data:`RENDERERS`; the frame width in points."""

    report: ReportInput
    width: float
    header: RecordHeader
    performance: PerformanceResult | None = None
    permutation: PermutationImportanceResult | None = None
    attributions: tuple[AttributionResult, ...] = ()
    native: NativeImportanceResult | None = None
    agreement: AgreementResult | None = None
    dependence: PartialDependenceResult | None = None
    surrogate: SurrogateResult | None = None
    clusters: ExplanationClustersResult | None = None
    groups: GroupMetricsResult | None = None
    fairness: FairnessResult | None = None
    proxies: ProxyResult | None = None
    network: NetworkResult | None = None
    all_results: tuple[tuple[str, Result], ...] = ()

    @classmethod
    def gather(cls, report: ReportInput, width: float) -> Facts:
        found: dict[str, Any] = {}
        for result in report.results.values():
            renderer = renderer_of(result)
            if renderer is None:
                continue
            if renderer.every:
                found[renderer.slot] = (*found.get(renderer.slot, ()), result)
            else:
                found.setdefault(renderer.slot, result)
        assert report.header is not None  # ReportInput reads it from the document when it is made
        return cls(report=report, width=width, header=report.header, all_results=tuple(report.results.items()), **found)

    @property
    def from_session(self) -> bool:
        """Whether the report is made from a desktop session's results rather than a batch audit."""
        return self.header.from_session

    @property
    def model_name(self) -> str:
        return self.header.model_file.name or "the model"

    @property
    def data_name(self) -> str:
        return self.header.data_file.name or "the data"

    @property
    def shap(self) -> tuple[AttributionResult, ...]:
        return tuple(a for a in self.attributions if a.method in SHAP_METHODS)

    @property
    def lime(self) -> AttributionResult | None:
        return next((a for a in self.attributions if a.method == "lime"), None)

    def ranking(self) -> list[str]:
        """Features from most to least important (permutation, else mean |attribution|)."""
        if self.permutation is not None:
            return list(self.permutation.ranking())
        if self.attributions:
            a = self.attributions[0]
            order = np.argsort(-np.nanmean(np.abs(a.values), axis=0), kind="stable")
            return [a.feature_names[i] for i in order]
        return []

    def names(self) -> list[str]:
        """Every name the report may print that the long-name rule applies to.

        The record's column, input and class names (:meth:`RecordHeader.names`) and the groups
        of the fairness analysis's attributes (values from the data, as long as a user made them).
        """
        out = self.header.names()
        if self.fairness is not None:
            out += [g.group for g in self.fairness.groups]
        return out

    def sensitive(self) -> list[str]:
        return list(self.header.roles.sensitive)

    def chosen_features(self) -> list[str]:
        """The columns the roles list as features; they may include columns the model ignores.

        Never state these as the model's inputs: :meth:`model_inputs` is.
        """
        return list(self.header.roles.features)

    def inputs_named_by_model(self) -> bool:
        """Whether the model file names the columns it takes (recorded by the audit)."""
        return self.header.model is not None and self.header.model.input_columns is not None

    def model_inputs(self) -> list[str]:
        """The columns the model takes, in its order: the one source of every statement about inputs.

        The model file's own column names when it records them (what every
        analysis fed the model); otherwise the columns chosen as features,
        which is then what the audit passed to the model.
        """
        model = self.header.model
        if model is not None and model.input_columns is not None:
            return list(model.input_columns)
        return self.chosen_features()

    def unused_features(self) -> list[str]:
        """Columns the roles list as features that the model does not take (e.g. a survey weight)."""
        taken = set(self.model_inputs())
        return [c for c in self.chosen_features() if c not in taken]

    def group_figures(self) -> tuple[GroupFigures, ...]:
        """Per-group outcomes: the record's ``group_metrics``, else those of its group-metrics result."""
        if self.header.group_metrics is not None:
            return self.header.group_metrics
        if self.groups is None:
            return ()
        return tuple(
            GroupFigures(
                attribute=str(row.attribute),
                group=str(row.group),
                n=int(row.n),
                positive_rate=_finite(row.positive_rate),
                accuracy=_finite(row.accuracy),
            )
            for row in self.groups.groups
        )

    def importance_of(self, name: str) -> str | None:
        """``"shuffling it lowers accuracy by 0.012 (95 % CI 0.008 to 0.016)"``, or ``None`` without a figure."""
        perm = self.permutation
        if perm is None or name not in perm.feature_names:
            return None
        i = list(perm.feature_names).index(name)
        mean, low, high = float(perm.mean[i]), float(perm.ci_low[i]), float(perm.ci_high[i])
        if not math.isfinite(mean):
            return None
        level = f"{round(perm.confidence * 100):g} % CI"
        interval = f" ({level} {num(low)} to {num(high)})" if math.isfinite(low) and math.isfinite(high) else ""
        if mean > 0:
            return f"shuffling it lowers {perm.scoring} by {num(mean)}{interval}"
        return f"shuffling it does not lower {perm.scoring} on average: mean drop {num(mean)}{interval}"


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None

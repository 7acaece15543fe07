"""How an analysis is described and registered: its :class:`Method` descriptor.

An analysis is a plain function ``run(inputs, *, ctx, **params) -> Result``
with keyword-only parameters that all have defaults.  Adding one is a module
under :mod:`engine.explain` that defines ``METHOD = Method(...)`` (its descriptor:
title, texts, one typed :class:`~engine.params.Param` per parameter, what it needs
and builds on, its default rows and view) plus one line in :mod:`engine.registry`;
the CLI, the GUI, the audit and the report read the descriptor.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.errors import AnalysisError
from engine.inputs import AuditInputs
from engine.jobs import JobContext
from engine.params import Param
from engine.results import Result, to_jsonable

__all__ = ["Method", "NEEDS"]


NEEDS: dict[str, str] = {
    "target": "a target column (rows without one are left out)",
    "rows": "rows to explain",
    "sensitive": "sensitive columns",
    "background": "background rows drawn from the data",
    "tree model": "a tree model (scikit-learn's, or an XGBoost, LightGBM or CatBoost model)",
    "linear model": "a scikit-learn linear model",
    "estimator": "a scikit-learn estimator or Pipeline, or a booster with importances of its own",
    "differentiable model": "a differentiable model (torch, or a scikit-learn MLP or linear model)",
}


@dataclass(frozen=True, eq=False)
class Method:
    """A registered analysis: the one descriptor every front end reads.

    Attributes
    ----------
    name: the registry name (``probity explain NAME``).
    title: how people choose it (the GUI's method box, the CLI's listing).
    run: ``run(inputs, *, ctx, **params) -> Result``; its keyword-only
        parameters are exactly :attr:`params` (checked when the descriptor is made).
    description: the methodology paragraph the report prints for it.
    summary: one line on what it shows (the GUI's hint, the CLI's listing).
    short_title: the name the report uses for it (default: ``title``).
    params: one :class:`~engine.params.Param` per keyword parameter, in order.
    result: the result type it returns.
    needs: what it needs, keys of :data:`NEEDS`.
    builds_on: parameter -> the method whose result it takes (``{"attributions": "shap"}``):
        the front end computes that first, on the rows of this method.
    rows_default: the row spec of the rows it explains by default
        (:func:`engine.rows.parse_rows`), or ``None`` for a method that uses the whole table.
    view: the key of the view that shows its result (the GUI's ``VIEWS``).
    samples: the parameter ``probity explain --samples`` sets (its sample budget), if any.
    random: whether it draws random numbers (a seed changes its result).
    """

    name: str
    title: str
    run: Callable[..., Result]
    description: str = ""
    summary: str = ""
    short_title: str = ""
    params: tuple[Param, ...] = ()
    result: type[Result] = Result
    needs: frozenset[str] = frozenset()
    builds_on: Mapping[str, str] = field(default_factory=dict)
    rows_default: str | None = None
    view: str = ""
    samples: str | None = None
    random: bool = True

    def __post_init__(self) -> None:
        sig = inspect.signature(self.run)
        keywords = [p for p in sig.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name != "ctx"]
        declared = [(p.name, p.default) for p in self.params]
        actual = [(p.name, p.default) for p in keywords]
        if declared != actual:
            raise TypeError(
                f"The descriptor of {self.name} declares parameters {declared}, but its run function takes {actual}."
            )
        unknown = set(self.needs) - set(NEEDS)
        if unknown:
            raise TypeError(f"The descriptor of {self.name} needs {sorted(unknown)}, which NEEDS does not know.")
        if self.samples is not None and self.samples not in self.param_names:
            raise TypeError(f"The descriptor of {self.name} names --samples {self.samples!r}, not a parameter.")
        for name in self.builds_on:
            if name not in self.param_names:
                raise TypeError(f"The descriptor of {self.name} builds {name!r} on another result, not a parameter.")

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    @property
    def defaults(self) -> dict[str, Any]:
        """Every parameter and its default."""
        return {p.name: p.default for p in self.params}

    def param(self, name: str) -> Param:
        """The parameter ``name``; :class:`AnalysisError` listing the parameters when there is none."""
        for p in self.params:
            if p.name == name:
                return p
        raise AnalysisError(
            f"{self.title} has no parameter {name}; its parameters are {', '.join(self.param_names) or 'none'}."
        )

    @property
    def takes_rows(self) -> bool:
        """Whether it explains chosen rows (itself, or through the result it builds on)."""
        return self.rows_default is not None

    @property
    def report_title(self) -> str:
        return self.short_title or self.title

    def validate(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Every parameter, in order: the given value checked by its :class:`Param`, else the default.

        Raises
        ------
        AnalysisError
            For a parameter the method does not have, or a value its spec refuses
            (one sentence naming the method and the parameter).
        """
        unknown = set(params) - set(self.param_names)
        if unknown:
            raise AnalysisError(
                f"{self.title} has no parameter {', '.join(sorted(unknown))}; "
                f"its parameters are {', '.join(self.param_names) or 'none'}."
            )
        return {
            p.name: p.check(params[p.name], owner=self.report_title) if p.name in params else p.default
            for p in self.params
        }

    def call_record(self, inputs: AuditInputs, ctx: JobContext, values: Mapping[str, Any]) -> dict[str, Any]:
        """What :attr:`Provenance.call` records for a call with the validated ``values``.

        ``parameters`` holds every parameter (JSON form); a result built on
        (``builds_on``) is recorded as its own call and seed.  ``stream`` is the
        random-stream path of ``ctx`` and ``roles`` the columns the inputs bound,
        so that :mod:`engine.rerun` can make exactly this call again.
        """
        parameters: dict[str, Any] = {}
        for p in self.params:
            value = values[p.name]
            if p.kind == "result":
                parameters[p.name] = None if value is None else _result_reference(value)
            else:
                parameters[p.name] = to_jsonable(value)
        return {
            "method": self.name,
            "parameters": parameters,
            "stream": [to_jsonable(k) for k in ctx.path],
            "roles": {
                "target": inputs.roles.target,
                "features": list(inputs.roles.features),
                "sensitive": list(inputs.roles.sensitive),
            },
        }

    def __call__(self, inputs: AuditInputs, *, ctx: JobContext, **params: Any) -> Result:
        """Validate ``params`` against :attr:`params`, run, and record the call in the result's provenance."""
        values = self.validate(params)
        result = self.run(inputs, ctx=ctx, **values)
        call = self.call_record(inputs, ctx, values)
        return dataclasses.replace(result, provenance=dataclasses.replace(result.provenance, call=call))


def _result_reference(result: Any) -> dict[str, Any]:
    """How a call records the earlier result it was given: that result's own call, seed and rows."""
    prov = result.provenance
    rows = getattr(result, "rows", None)
    return {
        "call": None if prov.call is None else dict(prov.call),
        "seed": prov.seed,
        "method": prov.method,
        "rows": None if rows is None else len(rows),
    }

"""One job layer: what every front end runs, as plain data (:class:`JobSpec`), and how (:func:`run_job`).

``probity explain``, the GUI's Explain and Analyses panes and ``probity audit``
all run a registered method through :func:`run_job`, so the same spec on the
same inputs and seed gives the same result whichever front end asked:

* **Streams.**  A method draws its random numbers from the stream named after it
  (``ctx.sub(..., spec.method)``, or :attr:`JobSpec.stream`): LIME's draws are those of ``("lime",)`` under
  the caller's root, in the CLI, the GUI and the audit alike.
* **What it builds on** (:attr:`Method.builds_on <engine.method.Method.builds_on>`:
  clusters on SHAP values) is computed exactly as a run of that method on its own
  would be (its stream, its defaults, the same rows), so a result the person
  already has can be handed over instead (``built``) and the two are the same
  numbers.  The call the result records names what it was given, so
  ``probity rerun`` and ``probity verify`` make it again either way.
* **Faithfulness.**  Every attribution result (LIME, SHAP, gradients) gets its
  deletion and insertion figures (:func:`engine.explain.quality.with_faithfulness`)
  under the stream ``(method, "faithfulness")``, with :data:`FAITHFULNESS`'s
  settings, unless the spec says not to (an audit recorded before the figures
  existed, re-run by ``probity verify``).

The method-agreement figure is declared here too (:func:`method_agreement_of`):
it is derived from results, not run, and every front end that shows it calls
this one function.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.jobs import JobContext

if TYPE_CHECKING:
    from engine.inputs import AuditInputs
    from engine.method import Method
    from engine.models.base import Model
    from engine.results import Result
    from engine.schema import Dataset

__all__ = [
    "AGREEMENT_RANKINGS",
    "FAITHFULNESS",
    "SHAP_METHODS",
    "JobSpec",
    "JobOutcome",
    "run_job",
    "method_agreement_of",
]

#: The methods whose attributions are SHAP values (one list for the agreement figure and the report).
SHAP_METHODS: tuple[str, ...] = ("treeshap", "linearshap", "kernelshap")

#: Settings of the faithfulness figures attached to every attribution result (one place for every front end).
FAITHFULNESS: Mapping[str, Any] = {"n_random": 5, "max_rows": None, "order": "signed"}

# Shares of a job's progress: what it builds on, then the method, then its faithfulness figures.
_BASE_SHARE = 0.5
_METHOD_END = 0.9


@dataclass(frozen=True)
class JobSpec:
    """One analysis to run, as plain data.

    Attributes
    ----------
    method:
        A registered method's name (:func:`engine.registry.get_method`).
    params:
        The method's own parameters (validated against its descriptor; its
        defaults fill the rest).  Not its rows and not the results it builds on.
    rows:
        The 0-based rows explained, for a method that takes rows (and for what it
        builds on, which explains the same rows); ``None``: the method's own rows default.
    base:
        Parameters of the methods it builds on (for clusters: SHAP's ``klass``).
    faithfulness:
        Attach deletion and insertion figures to an attribution result.
    stream:
        The name of the method's random stream; ``None``: the method's name.  The
        audit names its partial-dependence stream ``"dependence"``, as it always has.
    """

    method: str
    params: Mapping[str, Any] = field(default_factory=dict)
    rows: tuple[int, ...] | None = None
    base: Mapping[str, Any] = field(default_factory=dict)
    faithfulness: bool = True
    stream: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", dict(self.params))
        object.__setattr__(self, "base", dict(self.base))
        if self.rows is not None:
            object.__setattr__(self, "rows", tuple(int(r) for r in self.rows))


@dataclass(frozen=True, eq=False)
class JobOutcome:
    """What :func:`run_job` made.

    ``result`` is the method's; ``built_on`` maps each parameter it builds on
    (``attributions`` for clusters) to the result it was given, and ``reused``
    names those that were handed over rather than computed.
    """

    spec: JobSpec
    result: Result
    built_on: Mapping[str, Result] = field(default_factory=dict)
    reused: tuple[str, ...] = ()


def base_spec(spec: JobSpec, source: str) -> JobSpec:
    """The spec of what ``spec`` builds on from ``source``: that method on the same rows, with ``spec.base``."""
    from engine.registry import get_method

    before = get_method(source)
    params = {k: v for k, v in spec.base.items() if k in before.param_names}
    return JobSpec(method=source, params=params, rows=spec.rows, faithfulness=False)


def run_job(
    spec: JobSpec,
    inputs: AuditInputs,
    ctx: JobContext,
    *,
    built: Mapping[str, Result] | None = None,
) -> JobOutcome:
    """Run ``spec`` on ``inputs``: what it builds on, the method, then its faithfulness figures.

    Parameters
    ----------
    spec:
        What to run.
    inputs:
        Data, roles and model.
    ctx:
        The caller's root context: its seed and path name the streams (the
        method's is the path plus ``spec.method``), its progress and cancel are used.
    built:
        Results already made that the method builds on, by parameter name
        (``{"attributions": shap}``); they must be what :func:`base_spec` gives
        (the GUI checks this before it hands one over).  Missing ones are computed.

    Raises
    ------
    ProbityError
        A parameter the method's descriptor refuses, or inputs it cannot run on.
    """
    from engine.registry import get_method

    method = get_method(spec.method)
    params = dict(spec.params)
    given: dict[str, Result] = {}
    reused: list[str] = []
    share = _BASE_SHARE if method.builds_on else 0.0
    for name, source in method.builds_on.items():
        ready = (built or {}).get(name)
        if ready is None:
            # Exactly a run of that method on its own: its stream, its defaults, the same rows.
            ready = run_job(base_spec(spec, source), inputs, ctx.sub(0.0, share)).result
        else:
            reused.append(name)
            ctx.progress(share, f"Reusing the {get_method(source).report_title} values computed on these rows")
        given[name] = ready
        params[name] = ready
    if spec.rows is not None and "rows" in method.param_names:  # clusters take theirs from what they build on
        params["rows"] = list(spec.rows)
    attach = spec.faithfulness and _attributes(method)
    end = _METHOD_END if attach else 1.0
    work = ctx.sub(share, 1.0, spec.stream or spec.method)
    result = method(inputs, ctx=work.sub(0.0, end), **params)
    if attach:
        from engine.attribution import AttributionResult
        from engine.explain.quality import with_faithfulness

        if isinstance(result, AttributionResult):
            result = with_faithfulness(inputs, result, ctx=work.sub(end, 1.0, "faithfulness"), **FAITHFULNESS)
    ctx.progress(1.0, f"{method.title} done")
    return JobOutcome(spec=spec, result=result, built_on=given, reused=tuple(reused))


def _attributes(method: Method) -> bool:
    """Whether ``method`` makes attribution results (the ones faithfulness figures apply to)."""
    from engine.attribution import AttributionResult

    return issubclass(method.result, AttributionResult)


#: The rankings the agreement figure compares, in its order: the result that gives each (see method_agreement_of).
AGREEMENT_RANKINGS: tuple[str, ...] = ("permutation", "mean |SHAP|", "mean |LIME|", "mean |IG|")


def method_agreement_of(
    results: Sequence[Result],
    *,
    seed: int,
    dataset: Dataset,
    model: Model,
    rankings: Sequence[str] | None = None,
) -> Result | None:
    """Spearman agreement of the global rankings by permutation, mean |SHAP|, mean |LIME| and mean |IG|.

    Derived from the given results (the first of each kind: permutation importance,
    a SHAP method's values, LIME's, Integrated Gradients'), so it carries their seed
    and inputs; ``None`` when fewer than two rankings are there.  The audit, the
    GUI's report and ``probity verify`` all make it here.  ``rankings`` limits it to
    those names (``probity verify`` passes the ones a report recorded, so a report
    written before a ranking joined the figure is re-derived as it was).
    """
    import dataclasses

    from engine.attribution import AttributionResult
    from engine.explain.permutation import PermutationImportanceResult
    from engine.explain.quality import attribution_ranking, method_agreement, permutation_ranking

    found: dict[str, Any] = {}
    for result in results:
        if isinstance(result, PermutationImportanceResult):
            found.setdefault("permutation", permutation_ranking(result))
        elif isinstance(result, AttributionResult):
            if result.method == "lime":
                found.setdefault("mean |LIME|", attribution_ranking(result))
            elif result.method in SHAP_METHODS:
                found.setdefault("mean |SHAP|", attribution_ranking(result))
            elif result.method == "ig":
                found.setdefault("mean |IG|", attribution_ranking(result))
    wanted = AGREEMENT_RANKINGS if rankings is None else tuple(rankings)
    order = [name for name in AGREEMENT_RANKINGS if name in found and name in wanted]
    if len(order) < 2:
        return None
    agreement = method_agreement({name: found[name] for name in order})
    provenance = dataclasses.replace(
        agreement.provenance,
        seed=seed,
        data_sha256=dataset.sha256,
        model_sha256=model.sha256,
        data_file=dataset.name,
        model_file=model.name,
    )
    return dataclasses.replace(agreement, provenance=provenance)

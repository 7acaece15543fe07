"""The audit pipeline: load data and model, run the analyses, write results.json.

Shared by ``probity audit``, ``probity verify`` and the GUI's export; it is
plain engine code with a :class:`~engine.jobs.JobContext` for progress, seed
and cancellation.

Reproducibility.  Every analysis draws from its own keyed sub-context of the
one seed, so an analysis's numbers do not depend on which others ran.  The
audit has one recorded timestamp (``AuditRequest.timestamp``, default: the
clock once, at the start), which dates the report.  When
``AuditRequest.measure_times`` is true (an audit run now), each result records
the wall-clock time its analysis started and finished (UTC, microseconds) and
its measured duration, and the audit when it finished (seconds); ``probity
verify`` reports those times as notes, not differences.  When it is false (a fixed ``--timestamp``, or a re-run by
``probity verify``) no time is measured: every result's ``started_at`` and
``finished_at`` are ``null``, durations are 0 and the audit's ``finished_at``
is ``null``, so the same inputs, seed and timestamp give byte-identical
``results.json`` and report.

Portability.  ``results.json`` and the report name the data and model by file
name and SHA-256, never by folder: the recorded command gives files by name
and leaves out the output folder (:func:`portable_command`), so the same audit
run from another folder, on copies of the files, writes the same bytes.  Only
``manifest.json`` keeps the paths as they were given.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.audit_options import AUDIT_OPTIONS, AuditOption, option_defaults, record_at, recorded_at
from engine.device import following_request_device
from engine.errors import AnalysisError, ProbityError, RoleError
from engine.inputs import AuditInputs
from engine.jobs import JobContext
from engine.models.base import Model
from engine.plan import FAITHFULNESS, JobSpec, method_agreement_of, run_job
from engine.record import (
    OUTPUT_NAMES,
    AuditRecord,
    ReportOptions,
    describe_existing,
    existing_outputs,
    write_json_atomic,
    write_record_outputs,
)
from engine.registry import METHODS, get_method, refusal
from engine.results import Result, utc_now
from engine.rows import parse_rows
from engine.schema import Dataset, ReadOptions, Roles, assign_roles

__all__ = [
    "AUDIT_ANALYSES",
    "AUDIT_OPTIONS",
    "AuditOption",
    "AUDIT_METHODS",
    "CORE_ANALYSES",
    "ReportOptions",
    "AuditRequest",
    "AuditOutcome",
    "load_inputs",
    "run_audit",
    "audit_document",
    "write_json_atomic",
    "OUTPUT_NAMES",
    "existing_outputs",
    "describe_existing",
    "portable_command",
    "write_audit_outputs",
    "resolve_roles",
    "normalise_timestamp",
]

#: What ``probity audit`` runs, in order.  "shap" and "groups" run only when
#: registered (and "groups", "proxies" and "fairness" only with sensitive columns);
#: "clusters" needs SHAP; "ig" (Integrated Gradients) and "network" (network views) run only on a
#: differentiable model.  An audit recorded before "proxies", "fairness", "ig" or "network" names none of
#: them among its analyses, so
#: ``probity verify`` re-runs it without them.
AUDIT_ANALYSES: tuple[str, ...] = (
    "performance",
    "permutation",
    "native",
    "lime",
    "shap",
    "ig",
    "network",
    "dependence",
    "surrogate",
    "clusters",
    "groups",
    "proxies",
    "fairness",
)
#: The registered method behind each of :data:`AUDIT_ANALYSES` (its descriptor gives the defaults the
#: audit does not set itself: the audit's own choices are the named fields of :class:`AuditRequest`).
AUDIT_METHODS: dict[str, str] = {name: name for name in AUDIT_ANALYSES}
#: What :func:`run_audit` runs unless asked for more (the GUI's quick audit).
CORE_ANALYSES: tuple[str, ...] = ("performance", "permutation")


_DEFAULTS = option_defaults()

# Progress range of each analysis within run_audit's 10-100 % (loading takes 0-10 %).
_SPANS: dict[str, tuple[float, float]] = {
    "performance": (0.10, 0.15),
    "permutation": (0.15, 0.55),
    "native": (0.55, 0.57),
    "lime": (0.57, 0.65),
    "shap": (0.65, 0.72),
    "ig": (0.72, 0.74),
    "network": (0.74, 0.75),
    "dependence": (0.75, 0.85),
    "surrogate": (0.85, 0.90),
    "clusters": (0.90, 0.93),
    "groups": (0.93, 0.94),
    "proxies": (0.94, 0.97),
    "fairness": (0.97, 1.00),
}


def normalise_timestamp(text: str) -> str:
    """An ISO 8601 date and time as UTC with seconds precision (a naive time is taken as UTC).

    Raises
    ------
    ProbityError
        When ``text`` is not an ISO 8601 date and time.
    """
    try:
        value = _dt.datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    except ValueError:
        raise ProbityError(
            f"The timestamp {text!r} is not an ISO 8601 date and time such as 2024-05-01T12:00:00Z."
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.UTC)
    return value.astimezone(_dt.UTC).replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class AuditRequest:
    """Everything that determines an audit's numbers (recorded in provenance).

    Attributes
    ----------
    allow_unreviewed:
        The second acknowledgement (``--allow-unreviewed``) a trusted pickle or skops
        file needs when it names globals or types Probity has not reviewed; the
        model's trust decision records it.
    analyses:
        Which of :data:`AUDIT_ANALYSES` to run (default: performance and
        permutation importance only).
    explain_rows:
        Row spec (:func:`engine.rows.parse_rows`) of the instances LIME
        and SHAP explain for the report's local-explanations section.
    n_repeats:
        Permutation repeats per feature; ``None``: permutation importance's own
        default (its descriptor's).
    lime_samples:
        Perturbed samples per LIME explanation; ``None``: LIME's own default (its
        descriptor's).  :meth:`resolved` fills both in, and provenance records the
        numbers used.
    cluster_rows:
        Row spec of the rows whose SHAP values are clustered (SHAP also covers them).
    dependence_features:
        PDP/ICE curves for this many of the most important features (by permutation).
    timestamp:
        The audit's one recorded time (ISO 8601); ``None``: the clock at the start.
    measure_times:
        Record when each analysis started and finished (wall clock).  ``False``
        records no times, so that a fixed ``timestamp`` gives byte-identical files.
    report:
        Auditor, organisation, notes and sections of the PDF, if one is written.
    faithfulness:
        Attach deletion and insertion figures to LIME's and SHAP's results, as every
        front end does (:mod:`engine.plan`).  ``False`` only re-runs an audit recorded
        before the figures existed (its parameters do not name them).
    favourable, reference, threshold:
        The fairness analysis's favourable outcome, reference groups (``"ATTR=GROUP"``
        items joined by ``"; "``) and decision threshold; ``None``: its own defaults.
    device:
        Where torch and ONNX models, TreeSHAP and the gradient methods compute
        (``--device``): ``"auto"``, ``"cpu"`` or ``"cuda"``; ``None`` is ``"auto"``
        and is not recorded (:func:`engine.device.preferred_device`).
    """

    data: Path
    model: Path
    target: str
    sensitive: tuple[str, ...] = ()
    features: tuple[str, ...] | None = None
    seed: int = 0
    trusted_sha256: tuple[str, ...] = ()
    allow_unreviewed: bool = False
    read_options: ReadOptions = field(default_factory=ReadOptions)
    n_repeats: int | None = _DEFAULTS["n_repeats"]
    scoring: str | None = _DEFAULTS["scoring"]
    analyses: tuple[str, ...] = CORE_ANALYSES
    explain_rows: str = _DEFAULTS["explain_rows"]
    lime_samples: int | None = _DEFAULTS["lime_samples"]
    cluster_rows: str = _DEFAULTS["cluster_rows"]
    dependence_features: int | None = _DEFAULTS["dependence_features"]
    favourable: str | None = _DEFAULTS["favourable"]
    reference: str | None = _DEFAULTS["reference"]
    threshold: float | None = _DEFAULTS["threshold"]
    device: str | None = _DEFAULTS["device"]
    timestamp: str | None = None
    measure_times: bool = True
    report: ReportOptions | None = None
    faithfulness: bool = True

    def resolved(self) -> AuditRequest:
        """This request with every option left to a method's default replaced by that default (its descriptor's),
        and every option given as text where it is a number read as that number."""
        changes: dict[str, Any] = {}
        for option in AUDIT_OPTIONS:
            value = getattr(self, option.field)
            if option.method_default is not None and value is None:
                method, param = option.method_default
                changes[option.field] = get_method(method).defaults[param]
            elif value is not None and not isinstance(value, option.type):
                # The desktop app's text fields give text ("0.4"): recorded as the number the flag would give.
                changes[option.field] = option.type(value)
        return dataclasses.replace(self, **changes) if changes else self

    def options(self) -> dict[str, Any]:
        """The value of each of :data:`AUDIT_OPTIONS` (method defaults filled in), by field."""
        r = self.resolved()
        return {option.field: getattr(r, option.field) for option in AUDIT_OPTIONS}

    def parameters(self) -> dict[str, Any]:
        """The audit's settings as provenance records them (method defaults filled in)."""
        r = self.resolved()
        recorded: dict[str, Any] = {
            "target": r.target,
            "sensitive": list(r.sensitive),
            "features": None if r.features is None else list(r.features),
            "seed": r.seed,
            "read_options": r.read_options.to_dict(),
        }
        for option in AUDIT_OPTIONS:
            if option.analysis is not None and option.analysis not in r.analyses:
                continue  # recorded only with its analysis: an audit recorded before it re-runs alike
            if option.record[0] == "explain_rows":  # the record's order since audits were first recorded
                recorded["analyses"] = list(r.analyses)
            if option.recorded_when_set and getattr(r, option.field) is None:
                continue  # left to "auto": an audit recorded before --device re-runs alike
            record_at(recorded, option.record, getattr(r, option.field))
        if r.faithfulness:  # named only when attached: an audit recorded before the figures re-runs alike
            recorded["faithfulness"] = dict(FAITHFULNESS)
        return recorded

    @classmethod
    def from_document(
        cls,
        document: Mapping[str, Any],
        *,
        data: Path,
        model: Path,
        trusted_sha256: Sequence[str] = (),
        allow_unreviewed: bool = False,
    ) -> AuditRequest:
        """The request that reproduces the audit recorded in a ``results.json`` document.

        The data and model paths are the files to check now; everything else
        (seed, parameters, timestamp, report options) comes from the document.
        The re-run measures no times: the report's were measured when it ran.

        Raises
        ------
        ProbityError
            When the document lacks the parameters of an audit.
        """
        prov = document.get("provenance")
        if not isinstance(prov, Mapping):
            prov = {}
        params = prov.get("parameters")
        if not isinstance(params, Mapping) or "target" not in params:
            raise ProbityError("The results document records no audit parameters (provenance.parameters).")
        features = params.get("features")
        report = prov.get("report")
        options: dict[str, Any] = {}
        for option in AUDIT_OPTIONS:
            value = recorded_at(params, option.record)
            options[option.field] = option.default if value is None else option.type(value)
        return cls(
            data=Path(data),
            model=Path(model),
            target=str(params["target"]),
            sensitive=tuple(params.get("sensitive") or ()),
            features=None if features is None else tuple(features),
            seed=int(params.get("seed", prov.get("seed", 0)) or 0),
            trusted_sha256=tuple(trusted_sha256),
            allow_unreviewed=allow_unreviewed,
            read_options=ReadOptions.from_dict(params.get("read_options") or {}),
            analyses=tuple(params.get("analyses") or CORE_ANALYSES),
            timestamp=prov.get("started_at"),
            measure_times=False,
            report=ReportOptions.from_dict(report) if isinstance(report, Mapping) else None,
            **options,
            faithfulness="faithfulness" in params,
        )


@dataclass(frozen=True, eq=False)
class AuditOutcome:
    """What :func:`run_audit` produced.

    ``warnings`` are the audit's own (an analysis skipped, and why); each
    result carries its own warnings too.  ``explain_rows`` are the 0-based rows
    LIME and SHAP explained for the local-explanations section.  ``started_at``
    is the audit's recorded timestamp; ``finished_at`` the clock when it ended
    (seconds, as ``started_at``), or ``None`` when times were not measured.
    """

    request: AuditRequest
    dataset: Dataset
    roles: Roles
    model: Model
    results: Mapping[str, Result]
    started_at: str
    finished_at: str | None
    warnings: tuple[str, ...] = ()
    explain_rows: tuple[int, ...] = ()
    hardware: Mapping[str, str] = field(default_factory=dict)

    def record(self) -> AuditRecord:
        """The typed record the report, results.json and ``probity verify`` read."""
        return AuditRecord(
            kind="audit",
            dataset=self.dataset,
            roles=self.roles,
            model=self.model,
            results=self.results,
            seed=self.request.seed,
            parameters=self.request.parameters(),
            started_at=self.started_at,
            finished_at=self.finished_at,
            data_path=self.request.data,
            model_path=self.request.model,
            warnings=self.warnings,
            explain_rows=self.explain_rows,
            hardware=self.hardware,
            report=self.request.report,
        )


def resolve_roles(
    dataset: Dataset, model: Model, *, target: str, sensitive: Sequence[str] = (), features: Sequence[str] | None = None
) -> Roles:
    """Roles for an audit: features are the model's own input columns when the file names them."""
    if features is None and model.input_columns is not None:
        features = tuple(model.input_columns)
        if target in features:
            raise RoleError(
                f"The target column {target!r} is also an input of the model {model.name}; choose another target.",
                path=dataset.path,
            )
    if features is None:
        # Without names from the model file, sensitive attributes are not assumed to be inputs.
        roles = assign_roles(dataset, target=target, sensitive=sensitive)
        features = tuple(c for c in roles.features if c not in set(sensitive))
    return assign_roles(dataset, target=target, features=features, sensitive=sensitive)


def load_inputs(
    data: Path,
    model: Path,
    *,
    target: str | None,
    sensitive: Sequence[str] = (),
    features: Sequence[str] | None = None,
    trusted_sha256: Sequence[str] = (),
    read_options: ReadOptions | None = None,
    granted_by: str = "cli --trust-model",
    allow_unreviewed: bool = False,
    ctx: JobContext | None = None,
    device: str = "auto",
) -> AuditInputs:
    """Read the data, load the model (honouring trust decisions) and bind them with roles.

    ``allow_unreviewed`` is the second acknowledgement a trusted pickle or skops file
    needs when it names globals or types Probity has not reviewed (``--allow-unreviewed``).
    ``device`` is where a torch or ONNX model predicts (:func:`engine.models.loading.load_model`).
    """
    from engine.data import load_table
    from engine.models.loading import load_model
    from engine.models.probe import probe_model

    ctx = ctx or JobContext()
    ctx.progress(0.0, f"Reading {data.name}")
    dataset = load_table(data, read_options)
    ctx.check_cancelled()
    ctx.progress(0.5, f"Loading model {model.name}")
    loaded = load_model(
        model,
        trusted_sha256=trusted_sha256,
        granted_by=granted_by,
        allow_unreviewed=allow_unreviewed,
        features=features,  # a torch network's input columns; formats that name their own ignore them
        device=device,
    )
    if target is None:
        roles = assign_roles(dataset, target=None, features=features or loaded.input_columns, sensitive=sensitive)
    else:
        roles = resolve_roles(dataset, loaded, target=target, sensitive=sensitive, features=features)
    inputs = AuditInputs.from_dataset(dataset, roles, loaded)
    # Its first prediction, on a few of these rows, in a child process: a native crash is an error, not a dead run.
    probe_model(loaded, rows=inputs.X, ctx=ctx.sub(0.6, 0.95))
    ctx.progress(1.0, "Inputs ready")
    return inputs


def _clock() -> str:
    """The current UTC time, ISO 8601 with microseconds (an analysis can take less than a second)."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="microseconds")


def _stamped(result: Result, started: str | None, finished: str | None) -> Result:
    """``result`` with the times the audit measured around it, or none.

    ``None`` (times not measured) also drops the wall-clock duration: it
    differs on every run, and a fixed timestamp promises identical bytes.
    """
    provenance = dataclasses.replace(result.provenance, started_at=started, finished_at=finished)
    changes: dict[str, Any] = {"provenance": provenance}
    if started is None and any(f.name == "compute_seconds" for f in dataclasses.fields(result)):
        changes["compute_seconds"] = 0.0
    return dataclasses.replace(result, **changes)


def _shap_rows(explain: np.ndarray, inputs: AuditInputs, request: AuditRequest, ctx: JobContext) -> np.ndarray:
    """Rows SHAP explains: the explained instances plus, for the clusters, a seeded sample."""
    if "clusters" not in request.analyses:
        return explain
    sample = parse_rows(request.cluster_rows, len(inputs.frame), ctx=ctx.sub(0.0, 0.0, "cluster_rows"))
    return np.union1d(explain, sample)


@following_request_device  # every analysis left to "auto" computes on request.device
def run_audit(request: AuditRequest, ctx: JobContext, *, inputs: AuditInputs | None = None) -> AuditOutcome:
    """Load the inputs and run the requested analyses.

    Progress: loading 0–10 %, then each analysis its slice (permutation
    importance the largest).  Every analysis runs under ``ctx.sub(..., name)``,
    so its random draws depend only on the seed and its name.  Analyses other
    than performance and permutation importance that cannot run on these
    inputs (e.g. native importance of an ONNX model) are skipped with a
    warning in :attr:`AuditOutcome.warnings`.

    Parameters
    ----------
    request:
        What to run.
    ctx:
        Seed, progress, cancel.  For a record ``probity verify`` can reproduce, its seed is
        ``request.seed`` and its random-stream path is the root (``JobContext(seed=...)``,
        optionally narrowed with ``sub(start, end)`` without a key), as in the CLI.
    inputs:
        Already-loaded inputs (the GUI's); ``None`` loads ``request.data`` and ``request.model``.

    Raises
    ------
    ProbityError
        The typed subclasses for bad input; :class:`~engine.errors.Cancelled` when cancelled.
    """
    from engine.hardware import describe_hardware

    request = request.resolved()
    unknown = [a for a in request.analyses if a not in AUDIT_ANALYSES]
    if unknown:
        raise AnalysisError(f"Unknown audit analysis {unknown[0]!r}; choose from {', '.join(AUDIT_ANALYSES)}.")
    timestamp = normalise_timestamp(request.timestamp) if request.timestamp else utc_now()
    measure = request.measure_times
    if inputs is None:
        inputs = load_inputs(
            request.data,
            request.model,
            target=request.target,
            sensitive=request.sensitive,
            features=request.features,
            trusted_sha256=request.trusted_sha256,
            allow_unreviewed=request.allow_unreviewed,
            read_options=request.read_options,
            ctx=ctx.sub(0.0, 0.1),
        )
    dataset, roles, model = inputs.dataset, inputs.roles, inputs.model
    assert dataset is not None
    wanted = set(request.analyses)
    results: dict[str, Result] = {}
    warnings: list[str] = []
    fairness: dict[str, Any] = {}
    if "fairness" in wanted and request.sensitive:
        from engine.explain.fairness import check_settings

        threshold = request.threshold
        assert threshold is not None  # resolved(): the method's own default when not given
        fairness = {
            "sensitive": list(request.sensitive),
            "favourable": request.favourable,
            "reference": request.reference,
            "threshold": float(threshold),  # the desktop app's field gives it as text
        }
        check_settings(inputs, **fairness)  # a bad setting is refused now, not after minutes of work

    def step(name: str) -> JobContext:
        """The analysis's slice of progress; :func:`run_job` names its stream (``name``)."""
        lo, hi = _SPANS[name]
        return ctx.sub(lo, hi)

    def timed(run: Any, *args: Any) -> Result:
        """``run(*args)``'s result, stamped with the wall-clock times around it (when measured)."""
        started = _clock() if measure else None
        result = run(*args)
        return _stamped(result, started, _clock() if measure else None)

    def optional(name: str, title: str, run: Any, *, needed: bool = False) -> Result | None:
        """Run an analysis that may not apply to these inputs; a refusal becomes a warning."""
        if name not in wanted and not needed:
            return None
        try:
            results[name] = timed(run, step(name))
        except AnalysisError as exc:
            warnings.append(f"{title} was skipped: {exc.message}")
            return None
        return results[name]

    def job(name: str, spec: JobSpec, **built: Result) -> Callable[[JobContext], Result]:
        """``spec`` run under the analysis's own slice of progress, its stream named ``name``."""
        spec = dataclasses.replace(spec, faithfulness=request.faithfulness, stream=name)
        return lambda c: run_job(spec, inputs, c, built=built or None).result

    if "performance" in wanted:
        results["performance"] = timed(job("performance", JobSpec("performance")), step("performance"))
    perm: Any = None
    if "permutation" in wanted:
        spec = JobSpec("permutation", {"n_repeats": request.n_repeats, "scoring": request.scoring})
        results["permutation"] = perm = timed(job("permutation", spec), step("permutation"))

    explain = np.zeros(0, dtype=np.int64)
    if wanted & {"lime", "shap", "ig", "clusters"}:
        explain = parse_rows(
            request.explain_rows, len(inputs.frame), ctx=ctx.sub(0.0, 0.0, "explain_rows"), default="first:5"
        )
    optional("native", "Native importance", job("native", JobSpec("native")))
    rows = tuple(int(r) for r in explain)
    optional("lime", "LIME", job("lime", JobSpec("lime", {"num_samples": request.lime_samples}, rows=rows)))
    shap = None
    if wanted & {"shap", "clusters"}:
        if "shap" not in METHODS:
            warnings.append("SHAP was skipped: no SHAP method is available in this installation.")
        else:
            shap_rows = _shap_rows(explain, inputs, request, ctx)
            spec = JobSpec("shap", rows=tuple(int(r) for r in shap_rows))
            shap = optional("shap", "SHAP", job("shap", spec), needed=True)
    if "ig" in wanted and refusal("ig", model, feature_names=inputs.feature_names) is None:
        # Integrated Gradients where it applies (a differentiable model), on the rows LIME and SHAP explain;
        # a tree or other model gets no gradient section and no note, as it would get none from the app.
        optional("ig", "Integrated Gradients", job("ig", JobSpec("ig", rows=rows)))
    if "network" in wanted and refusal("network", model, feature_names=inputs.feature_names) is None:
        # The network's weights and activations where the gradient methods apply; no note for other models.
        optional("network", "Network views", job("network", JobSpec("network")))
    if "dependence" in wanted:
        if perm is None:
            warnings.append(
                "Partial dependence was skipped: it plots the features permutation importance ranks "
                "highest, and permutation importance was not run."
            )
        else:
            spec = JobSpec("dependence", {"top": request.dependence_features})
            optional("dependence", "Partial dependence", job("dependence", spec, importance=perm))
    optional("surrogate", "Surrogate models", job("surrogate", JobSpec("surrogate")))
    if "clusters" in wanted:
        if shap is None:
            warnings.append(
                "Cluster analysis was skipped: it groups rows by their SHAP values, and none were computed."
            )
        else:
            optional("clusters", "Cluster analysis", job("clusters", JobSpec("clusters"), attributions=shap))
    if "groups" in wanted and request.sensitive:
        if "groups" not in METHODS:
            warnings.append("Group metrics were skipped: no group-metrics analysis is available in this installation.")
        else:
            optional(
                "groups", "Group metrics", job("groups", JobSpec("groups", {"sensitive": list(request.sensitive)}))
            )
    proxies: Any = None
    if "proxies" in wanted and request.sensitive:
        # Crossed with the permutation importance above (its call recorded), else computed as on its own.
        spec = JobSpec("proxies", {"sensitive": list(request.sensitive)})
        built = {"importance": perm} if perm is not None else {}
        proxies = optional("proxies", "The proxy table", job("proxies", spec, **built))
    if fairness:
        # The flip test also changes the strongest proxy of each attribute, when the proxy table names one.
        strongest = [] if proxies is None else [a.strongest for a in proxies.attributes if a.strongest]
        spec = JobSpec("fairness", {**fairness, "flip_inputs": list(dict.fromkeys(strongest)) or None})
        optional("fairness", "The fairness analysis", job("fairness", spec))
    agreement_started = _clock() if measure else None
    ranked = [r for r in (results.get("permutation"), shap, results.get("lime"), results.get("ig")) if r is not None]
    agreement = method_agreement_of(ranked, seed=request.seed, dataset=dataset, model=model)
    if agreement is not None:
        results["agreement"] = _stamped(agreement, agreement_started, _clock() if measure else None)
    ctx.progress(1.0, "Done")
    return AuditOutcome(
        request=request,
        dataset=dataset,
        roles=roles,
        model=model,
        results=results,
        started_at=timestamp,
        finished_at=utc_now() if measure else None,
        warnings=tuple(warnings),
        explain_rows=tuple(int(r) for r in explain),
        hardware=describe_hardware(model),
    )


# Options of `probity audit` whose value is a file: recorded by name only (the file's SHA-256 identifies it).
_FILE_OPTIONS = frozenset({"--data", "--model", "--notes-file"})
# Options that say where or how the files are written, not what they contain: left out of the record.
_WHERE_OPTIONS = frozenset({"--out", "--progress"})
_WHERE_FLAGS = frozenset({"--force"})


def _file_name(path: str) -> str:
    # Split on both separators: a command recorded on Windows names its files with backslashes.
    name = str(path).replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    return name or str(path)


def portable_command(command: Sequence[str]) -> list[str]:
    """``command`` as the report records it: independent of where the files lie.

    Files given to ``--data``, ``--model`` and ``--notes-file`` keep only their
    names (their SHA-256 identifies them); ``--out``, ``--force`` and
    ``--progress`` are left out, as they decide where and how files are written,
    not their content.  Options must be spelled in full (``--data PATH`` or
    ``--data=PATH``).  Applying it twice changes nothing.
    """
    tokens = [str(t) for t in command]
    out: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token == "--":  # everything after it is positional
            out += tokens[i:]
            break
        name, eq, value = token.partition("=") if token.startswith("--") else (token, "", "")
        if name in _WHERE_FLAGS:
            i += 1
        elif name in _WHERE_OPTIONS:
            i += 1 if eq else 2
        elif name in _FILE_OPTIONS:
            if eq:
                out.append(f"{name}={_file_name(value)}")
                i += 1
            else:
                out.append(name)
                out += [_file_name(t) for t in tokens[i + 1 : i + 2]]
                i += 2
        else:
            out.append(token)
            i += 1
    return out


def audit_document(outcome: AuditOutcome, *, command: Sequence[str] | None = None) -> dict[str, Any]:
    """The audit's ``results.json`` document (:meth:`AuditRecord.to_document` of :meth:`AuditOutcome.record`)."""
    return outcome.record().to_document(command=command)


def write_audit_outputs(
    outcome: AuditOutcome,
    out_dir: Path,
    report_options: ReportOptions | None,
    *,
    command: Sequence[str] | None = None,
    ctx: JobContext | None = None,
    force: bool = False,
) -> dict[str, Path]:
    """Write an audit's files into ``out_dir`` as :func:`engine.record.write_record_outputs` does.

    ``report_options`` ``None`` writes no PDF (the record still names the request's report options).
    """
    return write_record_outputs(outcome.record(), out_dir, report_options, command=command, ctx=ctx, force=force)

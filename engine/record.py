"""What a report is made from: :class:`AuditRecord`, and how its files are written.

A record is typed: the data, roles and model, every result by key, the seed,
the settings that made them, and who adds what to the PDF.  Two things make
one: ``probity audit`` (:meth:`engine.audit.AuditOutcome.record`, ``kind``
``"audit"``) and the desktop app's "Export report…", which reports the results
the auditor computed and looked at in the session (:func:`session_record`,
``kind`` ``"session"``; methods the batch audit does not run, such as
Integrated Gradients, included).  ``results.json`` is
:meth:`AuditRecord.to_document`; the PDF is drawn from that document's results
by type (:mod:`engine.report`); ``probity verify`` re-runs an audit record as
an audit, and a session record result by result from each one's recorded call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine import __version__
from engine.errors import OutputExistsError, ProbityError
from engine.files import json_bytes, write_bytes_atomic
from engine.jobs import JobContext
from engine.models.base import Model
from engine.results import SCHEMA_VERSION, Result, package_versions, to_jsonable
from engine.schema import Dataset, Roles

__all__ = [
    "KINDS",
    "ReportOptions",
    "AuditRecord",
    "session_record",
    "write_json_atomic",
    "OUTPUT_NAMES",
    "existing_outputs",
    "describe_existing",
    "write_record_outputs",
]

#: What made a record: a batch audit, or the results of a desktop session.
KINDS: tuple[str, ...] = ("audit", "session")


@dataclass(frozen=True)
class ReportOptions:
    """What a person adds to the PDF report; recorded so the report can be rebuilt from results.json.

    ``sections`` is ``None`` for every section of :data:`engine.report.SECTIONS`.
    """

    auditor: str = ""
    organisation: str = ""
    reviewer_notes: str = ""
    sections: tuple[str, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "auditor": self.auditor,
            "organisation": self.organisation,
            "reviewer_notes": self.reviewer_notes,
            "sections": None if self.sections is None else list(self.sections),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReportOptions:
        sections = data.get("sections")
        return cls(
            auditor=str(data.get("auditor") or ""),
            organisation=str(data.get("organisation") or ""),
            reviewer_notes=str(data.get("reviewer_notes") or ""),
            sections=None if sections is None else tuple(str(s) for s in sections),
        )


@dataclass(frozen=True, eq=False)
class AuditRecord:
    """Everything one report and its results.json are made from.

    Attributes
    ----------
    kind: ``"audit"`` or ``"session"`` (:data:`KINDS`).
    dataset, roles, model: the inputs every result was computed on.
    results: the results by key, in report order.
    seed: the seed the results' random streams hang off.
    parameters: the settings recorded as ``provenance.parameters`` (an audit's
        request; a session's roles and read options).
    started_at, finished_at: the record's time (ISO 8601); ``finished_at`` is
        ``None`` when times were not measured.
    warnings: the record's own warnings (each result has its own too).
    explain_rows: rows shown in the local-explanations section (empty: any explained).
    hardware: what computed the results.
    report: auditor, organisation, notes and sections, recorded so the PDF can be rebuilt.
    data_path, model_path: the files as given, for the manifest only.
    """

    kind: str
    dataset: Dataset
    roles: Roles
    model: Model
    results: Mapping[str, Result]
    seed: int
    parameters: Mapping[str, Any]
    started_at: str
    finished_at: str | None
    data_path: Path
    model_path: Path
    warnings: tuple[str, ...] = ()
    explain_rows: tuple[int, ...] = ()
    hardware: Mapping[str, Any] = field(default_factory=dict)
    report: ReportOptions | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"A record's kind is one of {', '.join(KINDS)}, not {self.kind!r}.")

    def to_document(self, *, command: Sequence[str] | None = None) -> dict[str, Any]:
        """The ``results.json`` document: summary keys for scripts plus every full result.

        ``command`` is recorded as :func:`engine.audit.portable_command` gives it, so the
        document does not depend on where the inputs and outputs lie.

        Top-level keys: ``schema_version``, ``probity_version``, ``provenance``,
        ``data``, ``model``, ``performance``, ``importance``, ``warnings``,
        ``results`` and, when group metrics were computed, ``group_metrics``; when the fairness
        analysis ran, ``fairness`` (per attribute and intersection: the summary measures, each
        ``{"value", "ci_low", "ci_high", ...}``, and every other figure; see
        :meth:`engine.explain.fairness.FairnessResult.summary`).
        A session's provenance says ``"kind": "session"``; an audit's names no kind.
        """
        from engine.audit import portable_command

        ds, model, roles = self.dataset, self.model, self.roles
        warnings: list[str] = list(self.warnings)
        for result in self.results.values():
            warnings.extend(result.warnings)
        full = {name: result.to_dict() for name, result in self.results.items()}
        from engine.explain.performance import PerformanceResult
        from engine.explain.permutation import PermutationImportanceResult

        # The summary keys scripts read: the record's first performance and permutation results.
        perf: Any = next((r for r in self.results.values() if isinstance(r, PerformanceResult)), None)
        perm: Any = next((r for r in self.results.values() if isinstance(r, PermutationImportanceResult)), None)
        provenance: dict[str, Any] = {
            "data_file": ds.name,
            "data_sha256": ds.sha256,
            "data_format": ds.format,
            "data_options": ds.options.to_dict(),
            "model_file": model.name,
            "model_sha256": model.sha256,
            "model_format": model.format,
            "model_trust": model.trust.to_dict(),
            "versions": package_versions(),
            "hardware": dict(self.hardware),
            "seed": self.seed,
            "parameters": dict(self.parameters),
            "roles": roles.to_dict(),
            "explain_rows": list(self.explain_rows),
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "command": portable_command(command) if command is not None else None,
        }
        if self.kind != "audit":  # an audit's record names no kind, as it did before there were others
            provenance["kind"] = self.kind
        if self.report is not None:
            provenance["report"] = self.report.to_dict()
        document: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "probity_version": __version__,
            "provenance": provenance,
            "data": {"rows": ds.n_rows, "columns": len(ds.frame.columns), "schema": ds.schema.to_dict()},
            "model": {
                "format": model.format,
                "task": model.task.value,
                "classes": to_jsonable(list(model.classes)) if model.classes is not None else None,
                "input_columns": list(model.input_columns) if model.input_columns is not None else None,
                "size_bytes": model.size_bytes,
            },
            "performance": to_jsonable(dict(perf.metrics)) if perf is not None else {},
            "importance": {
                "permutation": [
                    {
                        "feature": name,
                        "mean": to_jsonable(perm.mean[i]),
                        "std": to_jsonable(perm.std[i]),
                        "ci_low": to_jsonable(perm.ci_low[i]),
                        "ci_high": to_jsonable(perm.ci_high[i]),
                    }
                    for i, name in enumerate(perm.feature_names)
                ]
                if perm is not None
                else []
            },
            "warnings": warnings,
            "results": full,
        }
        groups = _group_metrics(full)
        if groups is not None:
            document["group_metrics"] = groups
        from engine.explain.fairness import FairnessResult

        fairness: Any = next((r for r in self.results.values() if isinstance(r, FairnessResult)), None)
        if fairness is not None:  # only then: a record made before the analysis writes as it did
            document["fairness"] = fairness.summary()
        return document


def _group_metrics(results: Mapping[str, Any]) -> list[Any] | None:
    """The per-group rows of a ``group_metrics`` result, for the top-level summary key."""
    for data in results.values():
        groups = data.get("groups")
        if data.get("kind") == "group_metrics" and isinstance(groups, list):
            return groups
    return None


def session_record(
    *,
    dataset: Dataset,
    roles: Roles,
    model: Model,
    results: Mapping[str, Result],
    seed: int,
    timestamp: str,
    report: ReportOptions | None,
    hardware: Mapping[str, Any] | None = None,
) -> AuditRecord:
    """The record of a desktop session's results, for "Export report…".

    ``results`` are the ones the auditor chose to report, each computed on these
    inputs and recording its call (``probity verify`` re-runs each from it).
    ``seed`` is the session's; each result records its own too.  ``hardware``
    defaults to this machine's (:func:`engine.hardware.describe_hardware`).  The agreement
    between the methods' rankings is derived as the audit derives it
    (:func:`engine.plan.method_agreement_of`) when two or more rankings are there.

    Raises
    ------
    ProbityError
        No results, or a result computed on other data or another model, or one
        that records no call (from a session saved before calls were recorded).
    """
    if not results:
        raise ProbityError("There are no results to report: run an analysis first, or export a full audit.")
    for key, result in results.items():
        prov = result.provenance
        if prov.data_sha256 not in (None, dataset.sha256) or prov.model_sha256 not in (None, model.sha256):
            raise ProbityError(f"The result {key} was computed on other data or another model; run it again.")
        if prov.call is None and result.kind != "method_agreement":
            raise ProbityError(
                f"The result {key} records no call (it comes from a session saved by an older Probity), so a "
                "reader could not re-run it; run it again to report it."
            )
    from engine.hardware import describe_hardware
    from engine.plan import method_agreement_of

    chosen = {key: result for key, result in results.items() if result.kind != "method_agreement"}
    agreement = method_agreement_of(list(chosen.values()), seed=seed, dataset=dataset, model=model)
    if agreement is not None:
        chosen["agreement"] = agreement
    parameters = {
        "target": roles.target,
        "sensitive": list(roles.sensitive),
        "features": list(roles.features),
        "seed": int(seed),
        "read_options": dataset.options.to_dict(),
        "results": list(chosen),
    }
    return AuditRecord(
        kind="session",
        dataset=dataset,
        roles=roles,
        model=model,
        results=chosen,
        seed=int(seed),
        parameters=parameters,
        started_at=timestamp,
        finished_at=timestamp,
        data_path=dataset.path,
        model_path=model.path if model.path is not None else Path(model.name),
        hardware=dict(hardware) if hardware is not None else describe_hardware(model),
        report=report,
    )


def write_json_atomic(path: Path, document: Mapping[str, Any]) -> None:
    """Write JSON to ``path`` via a temporary file in the same folder, so a crash never leaves half a file."""
    write_bytes_atomic(path, json_bytes(document))


#: The files an audit writes into its output folder, in the order they are put in place
#: (the manifest last: a folder whose manifest is missing holds no finished audit).
OUTPUT_NAMES: tuple[str, ...] = ("report.pdf", "results.json", "manifest.json")
# Temporary files of an export: hidden, and with a suffix no reader takes for a report or JSON.
_PARTIAL_SUFFIX = ".partial"


def existing_outputs(out_dir: Path, *, report: bool = True) -> list[Path]:
    """The files of :data:`OUTPUT_NAMES` already in ``out_dir`` that an export would overwrite.

    Parameters
    ----------
    out_dir:
        The output folder (it need not exist).
    report:
        Whether the export writes ``report.pdf`` (``False``: only the two JSON files count).
    """
    out_dir = Path(out_dir)
    names = OUTPUT_NAMES if report else OUTPUT_NAMES[1:]
    return [out_dir / name for name in names if (out_dir / name).exists() or (out_dir / name).is_symlink()]


def describe_existing(out_dir: Path, existing: Sequence[Path]) -> str:
    """``"DIR already holds report.pdf, results.json and manifest.json"``: for messages about ``existing``."""
    names = [Path(p).name for p in existing]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"{out_dir} already holds {listed}"


def _write_partial(out_dir: Path, name: str, data: bytes) -> Path:
    """``data`` in a new temporary file beside ``out_dir / name``; the caller renames or removes it."""
    import os
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=_PARTIAL_SUFFIX, dir=out_dir)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # handed to reviewers: readable as an ordinary file would be
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def write_record_outputs(
    record: AuditRecord,
    out_dir: Path,
    report_options: ReportOptions | None,
    *,
    command: Sequence[str] | None = None,
    ctx: JobContext | None = None,
    force: bool = False,
) -> dict[str, Path]:
    """Write a record's files into ``out_dir`` exactly as ``probity audit`` does.

    ``report.pdf`` (unless ``report_options`` is ``None``), ``results.json`` and
    ``manifest.json`` with the SHA-256 of each output and of the data and model
    files (their paths as given in ``record.data_path`` and ``record.model_path``).

    The set is written atomically: every file is first written in full under a
    hidden temporary name in ``out_dir`` (``.report.pdf.XXXX.partial``); only
    then is an old ``manifest.json`` removed, the report and results renamed
    into place, and the manifest renamed last.  An export that fails or is
    interrupted therefore leaves either the previous set untouched or no
    ``manifest.json`` at all, never a set that looks complete.

    Parameters
    ----------
    record:
        What the report and results.json are made from (an audit's, or a session's).
    out_dir:
        The output folder (created when missing).
    report_options:
        Auditor, organisation, reviewer notes and sections of the PDF; ``None``
        writes no PDF.
    command:
        The command line that regenerates the results, recorded in provenance.
    ctx:
        Progress and cancellation (cancel is checked before the PDF is drawn
        and before anything is renamed).
    force:
        Overwrite outputs already in ``out_dir``; without it they are refused.

    Returns
    -------
    dict
        Role (``"report"``, ``"results"``, ``"manifest"``) -> path written.

    Raises
    ------
    OutputExistsError
        When ``out_dir`` already holds a file this export writes and ``force`` is false.
    ProbityError
        When ``out_dir`` exists and is not a folder, or cannot be written.
    """
    import os

    from engine.manifest import MANIFEST_NAME, build_manifest

    ctx = ctx or JobContext()
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ProbityError(f"The output path {out_dir} exists and is not a folder.", path=out_dir)
    existing = existing_outputs(out_dir, report=report_options is not None)
    if existing and not force:
        raise OutputExistsError(
            f"{describe_existing(out_dir, existing)}; choose another folder or confirm overwriting "
            f"{'it' if len(existing) == 1 else 'them'}.",
            path=out_dir,
            existing=tuple(existing),
        )
    document = record.to_document(command=command)
    contents: dict[str, tuple[str, bytes]] = {}
    if report_options is not None:
        from engine.report import ReportInput, render_report

        ctx.check_cancelled()
        ctx.progress(0.0, "Writing the report")
        contents["report"] = (
            OUTPUT_NAMES[0],
            render_report(
                ReportInput.from_document(
                    document,
                    auditor=report_options.auditor,
                    organisation=report_options.organisation,
                    reviewer_notes=report_options.reviewer_notes,
                    sections=report_options.sections,
                    local_rows=record.explain_rows or None,
                )
            ),
        )
    ctx.progress(0.8, "Writing results.json and manifest.json")
    contents["results"] = (OUTPUT_NAMES[1], json_bytes(document))
    manifest = build_manifest(
        outputs=contents,
        inputs=[("data", record.data_path), ("model", record.model_path)],
        created=record.started_at,
    )
    contents["manifest"] = (MANIFEST_NAME, json_bytes(manifest))

    partial: dict[str, Path] = {}
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for role, (name, data) in contents.items():
            partial[role] = _write_partial(out_dir, name, data)
        ctx.check_cancelled()
        # From here the old set is being replaced: without its manifest it no longer claims to be complete.
        (out_dir / MANIFEST_NAME).unlink(missing_ok=True)
        outputs: dict[str, Path] = {}
        for role, (name, _) in contents.items():
            os.replace(partial[role], out_dir / name)
            del partial[role]
            outputs[role] = out_dir / name
    except OSError as exc:
        raise ProbityError(
            f"The audit's files cannot be written to {out_dir}: {exc.strerror or exc}.", path=out_dir
        ) from exc
    finally:
        for tmp in partial.values():
            tmp.unlink(missing_ok=True)
    ctx.progress(1.0, "Done")
    return outputs

"""What the report reads from ``results.json`` besides the results: :class:`RecordHeader`.

``results.json`` (:meth:`engine.record.AuditRecord.to_document`) holds the
results and, around them, the record's header: which data and model they
were computed on, the roles, the seed and settings, when it ran, the command,
the versions and hardware, the warnings and the per-group figures.  The PDF
is rebuilt by ``probity verify`` from the ``results.json`` embedded in it, so
the report is drawn from that document alone: the results rebuilt by
:func:`engine.results.result_from_dict`, the rest read once, here, into typed
fields.  The sections read these fields, never the document.

Every field is optional in the document (older files lack some, and a
report can be drawn from a few keys); a field that is present with the wrong
type makes :meth:`RecordHeader.from_document` raise
:class:`~engine.report.errors.ReportError` naming it.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from engine.record import ReportOptions
from engine.report.errors import ReportError

__all__ = [
    "RecordHeader",
    "FileRecord",
    "ColumnSummary",
    "DataSummary",
    "ModelSummary",
    "TrustRecord",
    "RoleRecord",
    "GroupFigures",
]

#: A JSON value that is not a container.
Scalar: TypeAlias = str | int | float | bool | None


@dataclass(frozen=True)
class FileRecord:
    """A file the results were computed from, as provenance names it (``None``: not recorded)."""

    name: str | None = None
    sha256: str | None = None
    format: str | None = None


@dataclass(frozen=True)
class ColumnSummary:
    """One column of the data's schema (``document["data"]["schema"]``)."""

    name: str
    kind: str | None = None
    dtype: str | None = None
    n_missing: int = 0
    n_distinct: int | None = None


@dataclass(frozen=True)
class DataSummary:
    """The data's size and schema (``document["data"]``)."""

    rows: int | None = None
    columns: int | None = None
    schema: tuple[ColumnSummary, ...] = ()


@dataclass(frozen=True)
class ModelSummary:
    """What the audit recorded about the model (``document["model"]``).

    ``input_columns`` is ``None`` when the model file does not name the columns it takes.
    """

    format: str | None = None
    task: str | None = None
    classes: tuple[Scalar, ...] | None = None
    input_columns: tuple[str, ...] | None = None
    size_bytes: int | None = None


@dataclass(frozen=True)
class TrustRecord:
    """The trust decision the model file needed (``provenance["model_trust"]``)."""

    required: bool = False
    granted_by: str | None = None
    imports: tuple[str, ...] = ()
    allow_unreviewed: bool = False
    unreviewed: tuple[str, ...] = ()


@dataclass(frozen=True)
class RoleRecord:
    """The columns' roles (``provenance["roles"]``); ``features`` are the columns chosen, not the model's inputs."""

    target: str | None = None
    features: tuple[str, ...] = ()
    sensitive: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()


@dataclass(frozen=True)
class GroupFigures:
    """One group's outcomes: rows ``n`` and rates, ``None`` where not recorded or not finite."""

    attribute: str
    group: str
    n: int | None = None
    positive_rate: float | None = None
    accuracy: float | None = None


@dataclass(frozen=True)
class RecordHeader:
    """Everything the report reads from ``results.json`` besides the results.

    Attributes
    ----------
    kind: ``"session"`` for a desktop session's record; ``None`` for an audit's
        (which names no kind).
    probity_version: the Probity that wrote the document.
    data_file, model_file: the data and model files (name, SHA-256, format).
    data_options: the options the data was read with.
    data: the data's size and schema; ``None`` when the document records none.
    model: what was recorded about the model; ``None`` when the document records nothing.
    trust: the model file's trust decision.
    roles: the columns' roles.
    seed: the record's seed.
    parameters: the settings recorded as ``provenance.parameters``.
    requested_features: the columns those settings asked for as features
        (``parameters.features``); ``None`` when none were named.
    explain_rows: the rows chosen for local explanations (empty: any explained).
    started_at, finished_at: when the record was made (ISO 8601).
    command: the recorded command as one shell line (``""`` when not recorded).
    versions: Python, Probity, the platform and the packages, by name.
    hardware: what computed the results (an object of named parts, or one line).
    warnings: the document's warnings, in order (repeats kept).
    group_metrics: the per-group figures of ``document["group_metrics"]``;
        ``None`` when the document has no such key (the report then reads a
        group-metrics result, when there is one).
    report: what a person added to the PDF, recorded so it can be rebuilt.
    """

    kind: str | None = None
    probity_version: str | None = None
    data_file: FileRecord = field(default_factory=FileRecord)
    model_file: FileRecord = field(default_factory=FileRecord)
    data_options: Mapping[str, Any] = field(default_factory=dict)
    data: DataSummary | None = None
    model: ModelSummary | None = None
    trust: TrustRecord = field(default_factory=TrustRecord)
    roles: RoleRecord = field(default_factory=RoleRecord)
    seed: int | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    requested_features: tuple[str, ...] | None = None
    explain_rows: tuple[int, ...] = ()
    started_at: str | None = None
    finished_at: str | None = None
    command: str = ""
    versions: Mapping[str, str] = field(default_factory=dict)
    hardware: Mapping[str, Scalar] | str | None = None
    warnings: tuple[str, ...] = ()
    group_metrics: tuple[GroupFigures, ...] | None = None
    report: ReportOptions | None = None

    @property
    def from_session(self) -> bool:
        """Whether the record holds a desktop session's results rather than a batch audit's."""
        return self.kind == "session"

    def names(self) -> list[str]:
        """Every column, input and class name the document records (the ones the report may print)."""
        out = [c.name for c in self.data.schema] if self.data is not None else []
        if self.model is not None:
            out += list(self.model.input_columns or ())
            out += [str(c) for c in self.model.classes or () if c is not None]
        roles = self.roles
        out += ([roles.target] if roles.target is not None else []) + [*roles.features, *roles.sensitive]
        return out + list(roles.ignored)

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> RecordHeader:
        """Read the header of a ``results.json`` document.

        Raises
        ------
        ReportError
            One sentence naming the first key whose value has the wrong type.
        """
        doc = _Reader(document, "")
        prov = doc.mapping("provenance")
        data = doc.mapping("data")
        model = doc.mapping("model")
        trust = prov.mapping("model_trust")
        roles = prov.mapping("roles")
        hardware: Mapping[str, Scalar] | str | None = None
        for key in ("hardware", "device", "compute"):  # the first one recorded, under its older names too
            value = prov.value(key)
            if value:
                hardware = value if isinstance(value, str) else prov.scalars(key)
                break
        return cls(
            kind=prov.text("kind"),
            probity_version=doc.text("probity_version"),
            data_file=FileRecord(prov.text("data_file"), prov.text("data_sha256"), prov.text("data_format")),
            model_file=FileRecord(prov.text("model_file"), prov.text("model_sha256"), prov.text("model_format")),
            data_options=prov.mapping("data_options").raw,
            data=(
                DataSummary(
                    rows=data.integer("rows"),
                    columns=data.integer("columns"),
                    schema=tuple(_column(c) for c in data.mappings("schema")),
                )
                if data.raw
                else None
            ),
            model=(
                ModelSummary(
                    format=model.text("format"),
                    task=model.text("task"),
                    classes=model.scalar_list("classes"),
                    input_columns=model.names("input_columns"),
                    size_bytes=model.integer("size_bytes"),
                )
                if model.raw
                else None
            ),
            trust=TrustRecord(
                required=trust.flag("required"),
                granted_by=trust.text("granted_by"),
                imports=trust.names("imports") or (),
                allow_unreviewed=trust.flag("allow_unreviewed"),
                unreviewed=trust.names("unreviewed") or (),
            ),
            roles=RoleRecord(
                target=roles.text("target"),
                features=roles.names("features") or (),
                sensitive=roles.names("sensitive") or (),
                ignored=roles.names("ignored") or (),
            ),
            seed=prov.integer("seed"),
            parameters=prov.mapping("parameters").raw,
            requested_features=prov.mapping("parameters").names("features"),
            explain_rows=prov.integers("explain_rows"),
            started_at=prov.text("started_at"),
            finished_at=prov.text("finished_at"),
            command=prov.command("command"),
            versions=prov.texts("versions"),
            hardware=hardware,
            warnings=doc.names("warnings", what="a list of sentences") or (),
            group_metrics=_group_figures(doc),
            report=_report_options(prov.mapping("report")) if prov.value("report") is not None else None,
        )


# -- reading with type checks ------------------------------------------------------------------------------


def _describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, Sequence):
        return "a list"
    return type(value).__name__


def _malformed(path: str, expected: str, value: object, *, item: bool = False) -> ReportError:
    """The sentence for ``value`` at ``path`` (``item``: one of the list there) not being ``expected``."""
    where = f"The results document's {path}" if path else "The results document"
    found = f"; it holds {_describe(value)}" if item else f", not {_describe(value)}"
    return ReportError(f"{where} should be {expected}{found}.")


class _Reader:
    """One object of the document (``path`` in it), read key by key with each value's type checked."""

    __slots__ = ("raw", "path")

    def __init__(self, raw: object, path: str) -> None:
        if raw is not None and not isinstance(raw, Mapping):
            raise _malformed(path, "an object", raw)
        self.raw: Mapping[str, Any] = raw or {}
        self.path = path

    def where(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def value(self, key: str) -> Any:
        return self.raw.get(key)

    def mapping(self, key: str) -> _Reader:
        return _Reader(self.raw.get(key), self.where(key))

    def text(self, key: str) -> str | None:
        value = self.raw.get(key)
        if value is not None and not isinstance(value, str):
            raise _malformed(self.where(key), "a string", value)
        return value

    def integer(self, key: str) -> int | None:
        value = self.raw.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise _malformed(self.where(key), "a whole number", value)
        return value

    def flag(self, key: str) -> bool:
        value = self.raw.get(key)
        if value is not None and not isinstance(value, bool):
            raise _malformed(self.where(key), "true or false", value)
        return bool(value)

    def items_of(self, key: str, expected: str) -> list[Any] | None:
        value = self.raw.get(key)
        if value is not None and not isinstance(value, list):
            raise _malformed(self.where(key), expected, value)
        return value

    def names(self, key: str, *, what: str = "a list of names") -> tuple[str, ...] | None:
        items = self.items_of(key, what)
        if items is None:
            return None
        for item in items:
            if not isinstance(item, str):
                raise _malformed(self.where(key), what, item, item=True)
        return tuple(items)

    def integers(self, key: str) -> tuple[int, ...]:
        items = self.items_of(key, "a list of row numbers") or []
        for item in items:
            if isinstance(item, bool) or not isinstance(item, int):
                raise _malformed(self.where(key), "a list of row numbers", item, item=True)
        return tuple(items)

    def scalar_list(self, key: str) -> tuple[Scalar, ...] | None:
        items = self.items_of(key, "a list of values")
        if items is None:
            return None
        for item in items:
            if item is not None and not isinstance(item, (str, int, float)):
                raise _malformed(self.where(key), "a list of values", item, item=True)
        return tuple(items)

    def mappings(self, key: str) -> list[_Reader]:
        items = self.items_of(key, "a list of objects") or []
        return [_Reader(item, f"{self.where(key)}[{i}]") for i, item in enumerate(items)]

    def texts(self, key: str) -> dict[str, str]:
        """An object whose values are all strings."""
        reader = self.mapping(key)
        for k, v in reader.raw.items():
            if not isinstance(v, str):
                raise _malformed(reader.where(str(k)), "a string", v)
        return {str(k): v for k, v in reader.raw.items()}

    def scalars(self, key: str) -> dict[str, Scalar]:
        """An object whose values are strings, numbers, true, false or null."""
        reader = self.mapping(key)
        for k, v in reader.raw.items():
            if v is not None and not isinstance(v, (str, int, float)):
                raise _malformed(reader.where(str(k)), "a string or a number", v)
        return {str(k): v for k, v in reader.raw.items()}

    def command(self, key: str) -> str:
        """The recorded command as one shell line: a string as it is, a list joined with shell quoting."""
        value = self.raw.get(key)
        if not value:
            return ""
        if isinstance(value, str):
            return value
        return shlex.join(self.names(key, what="a string or a list of arguments") or ())


def _report_options(report: _Reader) -> ReportOptions:
    return ReportOptions(
        auditor=report.text("auditor") or "",
        organisation=report.text("organisation") or "",
        reviewer_notes=report.text("reviewer_notes") or "",
        sections=report.names("sections", what="a list of section names"),
    )


def _column(column: _Reader) -> ColumnSummary:
    name = column.text("name")
    if name is None:
        raise ReportError(f"The results document's {column.path} names no column.")
    return ColumnSummary(
        name=name,
        kind=column.text("kind"),
        dtype=column.text("dtype"),
        n_missing=column.integer("n_missing") or 0,
        n_distinct=column.integer("n_distinct"),
    )


def _rate(row: _Reader, key: str) -> float | None:
    value = row.value(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _malformed(row.where(key), "a number", value)
    return float(value) if math.isfinite(value) else None


def _group_figures(doc: _Reader) -> tuple[GroupFigures, ...] | None:
    """``document["group_metrics"]``: entries that are not objects naming an attribute and a group are skipped."""
    items = doc.items_of("group_metrics", "a list of group records")
    if items is None:
        return None
    out: list[GroupFigures] = []
    for i, item in enumerate(items):
        if not (isinstance(item, Mapping) and "attribute" in item and "group" in item):
            continue
        row = _Reader(item, f"group_metrics[{i}]")
        n = row.value("n")
        if n is not None and (isinstance(n, bool) or not isinstance(n, (int, float))):
            raise _malformed(row.where("n"), "a number of rows", n)
        out.append(
            GroupFigures(
                attribute=str(item["attribute"]),
                group=str(item["group"]),
                n=int(n) if n is not None and math.isfinite(n) else None,
                positive_rate=_rate(row, "positive_rate"),
                accuracy=_rate(row, "accuracy"),
            )
        )
    return tuple(out)

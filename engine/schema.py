"""Tabular data contracts: parse options, column schema, datasets and roles.

``engine.data.load_table`` produces a :class:`Dataset`; everything downstream
(models, analyses, the report) reads datasets and roles through these types.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from engine.errors import RoleError

__all__ = ["ColumnKind", "ReadOptions", "ColumnInfo", "Schema", "Dataset", "Roles", "assign_roles"]


class ColumnKind(str, enum.Enum):
    NUMERIC = "numeric"
    CATEGORICAL = "categorical"
    BOOLEAN = "boolean"
    DATETIME = "datetime"
    TEXT = "text"
    IDENTIFIER = "identifier"


@dataclass(frozen=True)
class ReadOptions:
    """How to parse a table.  ``None`` means "detect"; the loaded dataset records
    the options actually used, so a re-parse with them gives the same frame.

    Attributes
    ----------
    delimiter: field separator for CSV/TSV (e.g. ``","``, ``";"``, ``"\\t"``).
    encoding: text encoding for CSV/TSV (e.g. ``"utf-8"``, ``"latin-1"``).
    decimal: decimal mark for CSV/TSV numbers, ``"."`` or ``","``.
    header_row: 0-based row index of the header line; ``-1`` means no header
        (columns are named ``column_1`` …).
    missing_values: extra strings read as missing, beyond the empty field.
    quotechar: quoting character for CSV/TSV.
    sheet: Excel sheet name (first sheet when ``None``).
    """

    delimiter: str | None = None
    encoding: str | None = None
    decimal: str | None = None
    header_row: int | None = None
    missing_values: tuple[str, ...] = ()
    quotechar: str | None = None
    sheet: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "delimiter": self.delimiter,
            "encoding": self.encoding,
            "decimal": self.decimal,
            "header_row": self.header_row,
            "missing_values": list(self.missing_values),
            "quotechar": self.quotechar,
            "sheet": self.sheet,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReadOptions:
        return cls(
            delimiter=data.get("delimiter"),
            encoding=data.get("encoding"),
            decimal=data.get("decimal"),
            header_row=data.get("header_row"),
            missing_values=tuple(data.get("missing_values") or ()),
            quotechar=data.get("quotechar"),
            sheet=data.get("sheet"),
        )


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    kind: ColumnKind
    dtype: str
    n_missing: int
    n_distinct: int


@dataclass(frozen=True)
class Schema:
    columns: tuple[ColumnInfo, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def __getitem__(self, name: str) -> ColumnInfo:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    def to_dict(self) -> list[dict[str, Any]]:
        return [
            {
                "name": c.name,
                "kind": c.kind.value,
                "dtype": c.dtype,
                "n_missing": c.n_missing,
                "n_distinct": c.n_distinct,
            }
            for c in self.columns
        ]


@dataclass(frozen=True, eq=False)
class Dataset:
    """A loaded table with its identity.

    ``frame`` must be treated as read-only: analyses copy before they perturb.
    ``options`` are the parse options actually used (detected values filled in).
    """

    frame: pd.DataFrame
    path: Path
    sha256: str
    format: str
    options: ReadOptions
    schema: Schema

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def n_rows(self) -> int:
        return len(self.frame)


@dataclass(frozen=True)
class Roles:
    """Which columns play which part in the audit.

    Sensitive attributes may or may not also be model features.  Columns in
    none of ``target``/``features``/``sensitive`` are ignored.
    """

    target: str | None
    features: tuple[str, ...]
    sensitive: tuple[str, ...] = ()
    ignored: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "features": list(self.features),
            "sensitive": list(self.sensitive),
            "ignored": list(self.ignored),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Roles:
        return cls(
            target=data.get("target"),
            features=tuple(data.get("features") or ()),
            sensitive=tuple(data.get("sensitive") or ()),
            ignored=tuple(data.get("ignored") or ()),
        )


def _unknown(dataset: Dataset, names: Iterable[str], what: str) -> None:
    missing = [n for n in names if n not in dataset.frame.columns]
    if missing:
        listed = ", ".join(repr(n) for n in missing)
        raise RoleError(f"{dataset.name} has no {what} column {listed}.", path=dataset.path)


def assign_roles(
    dataset: Dataset,
    *,
    target: str | None,
    features: Iterable[str] | None = None,
    sensitive: Iterable[str] = (),
    ignored: Iterable[str] = (),
) -> Roles:
    """Validate and build :class:`Roles` for ``dataset``.

    ``features=None`` means every column that is not the target, not ignored
    and not an identifier.  Raises :class:`~engine.errors.RoleError` for an
    unknown column or a target that is entirely missing.
    """
    sensitive = tuple(sensitive)
    ignored = tuple(ignored)
    if target is not None:
        _unknown(dataset, [target], "target")
        if dataset.frame[target].isna().all():
            raise RoleError(f"The target column {target!r} in {dataset.name} is entirely missing.", path=dataset.path)
    _unknown(dataset, sensitive, "sensitive")
    _unknown(dataset, ignored, "ignored")
    if features is None:
        skip = {target, *ignored}
        kinds = {c.name: c.kind for c in dataset.schema.columns}
        features = tuple(
            c for c in dataset.frame.columns if c not in skip and kinds.get(c) is not ColumnKind.IDENTIFIER
        )
    else:
        features = tuple(features)
        _unknown(dataset, features, "feature")
        if target is not None and target in features:
            raise RoleError(
                f"The target column {target!r} in {dataset.name} cannot also be a model feature.", path=dataset.path
            )
    return Roles(target=target, features=features, sensitive=sensitive, ignored=ignored)

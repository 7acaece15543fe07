"""Frozen result objects, their provenance, and a JSON round trip.

The GUI, the PDF report and ``results.json`` all read the same objects.  A
result is a frozen dataclass deriving from :class:`Result`; its numpy arrays are
made read-only on construction, and ``to_dict`` / ``from_dict`` give a lossless
JSON form tagged with a schema version.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import functools
import importlib.metadata
import math
import platform
import sys
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = [
    "SCHEMA_VERSION",
    "Provenance",
    "Result",
    "package_versions",
    "utc_now",
    "to_jsonable",
    "result_from_dict",
    "frozen_array",
    "plain_scalar",
]

SCHEMA_VERSION = 1

_TRACKED_PACKAGES = (
    "numpy",
    "pandas",
    "scikit-learn",
    "scipy",
    "joblib",
    "pyarrow",
    "skops",
    "onnxruntime",
    "torch",
    "xgboost",
    "xgboost-cpu",
    "lightgbm",
)


def package_versions() -> dict[str, str]:
    """Versions of Python, Probity and every numeric package that shapes results."""
    return dict(_package_versions())


@functools.lru_cache(maxsize=1)
def _package_versions() -> dict[str, str]:
    # Reading distribution metadata costs tens of milliseconds; versions cannot change in-process.
    from engine import __version__

    versions = {
        "python": platform.python_version(),
        "probity": __version__,
        "platform": platform.platform(),
    }
    for name in _TRACKED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def utc_now() -> str:
    """The current UTC time as an ISO 8601 string with seconds precision."""
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class Provenance:
    """Where a result came from: method, parameters, seed, inputs, versions, time.

    ``warnings`` holds sentences for the reader about the quality or validity of
    the result (for example a class with no examples in the evaluation data).
    ``started_at``/``finished_at`` are ISO 8601 wall-clock times, or ``None`` when
    they were deliberately not measured (an audit with a fixed timestamp).

    ``parameters`` are the facts the analysis reports about itself (the
    estimator, the tree count, an automatic choice and its reason, the class
    it resolved).  ``call`` is the call that made the result, exactly:
    ``{"method", "parameters", "stream", "roles"}`` with every parameter after
    validation and defaults (see :meth:`engine.method.Method.call_record`),
    from which ``probity rerun`` makes it again.  ``None`` for a result made
    without a registered method's call, or written before calls were recorded;
    it is then left out of the JSON form, so such files read and write as before.
    """

    method: str
    parameters: Mapping[str, Any]
    seed: int | None
    data_sha256: str | None
    model_sha256: str | None
    versions: Mapping[str, str]
    started_at: str | None
    finished_at: str | None
    data_file: str | None = None
    model_file: str | None = None
    data_options: Mapping[str, Any] = field(default_factory=dict)
    model_trust: Mapping[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    call: Mapping[str, Any] | None = field(default=None, metadata={"omit_if_none": True})

    def to_dict(self) -> dict[str, Any]:
        return _fields_jsonable(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Provenance:
        return _from_jsonable(cls, data)


_R = TypeVar("_R", bound="Result")
_D = TypeVar("_D", bound="DataclassInstance")
_RESULT_TYPES: dict[str, type[Result]] = {}


@dataclass(frozen=True)
class Result:
    """Base of every analysis result.

    Subclasses are ``@dataclass(frozen=True)`` and set the class variable
    ``kind``; they are registered for :func:`result_from_dict` by that name.
    """

    kind: ClassVar[str] = "result"
    provenance: Provenance

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__:
            _RESULT_TYPES[cls.kind] = cls

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                frozen = np.array(value, copy=True)
                frozen.flags.writeable = False
                object.__setattr__(self, f.name, frozen)
            elif isinstance(value, list):
                object.__setattr__(self, f.name, tuple(value))

    @property
    def warnings(self) -> tuple[str, ...]:
        return self.provenance.warnings

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; NaN and infinities become ``None``."""
        data = _fields_jsonable(self)
        return {"kind": self.kind, "schema_version": SCHEMA_VERSION, **data}

    @classmethod
    def from_dict(cls: type[_R], data: Mapping[str, Any]) -> _R:
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ValueError(f"unsupported result schema version {version!r} (expected {SCHEMA_VERSION})")
        payload = {k: v for k, v in data.items() if k not in ("kind", "schema_version")}
        return _from_jsonable(cls, payload)


def frozen_array(values: Any, dtype: Any = None) -> np.ndarray:
    """A read-only copy of ``values`` as an array (results never share writable memory)."""
    arr = np.array(values, dtype=dtype, copy=True)
    arr.flags.writeable = False
    return arr


def plain_scalar(value: Any) -> Any:
    """``value`` with numpy scalars unwrapped to Python ones (for JSON and display)."""
    return value.item() if isinstance(value, np.generic) else value


def result_from_dict(data: Mapping[str, Any]) -> Result:
    """Rebuild any registered result from its ``to_dict`` form."""
    kind = data.get("kind")
    if kind not in _RESULT_TYPES:
        raise ValueError(f"unknown result kind {kind!r}")
    return _RESULT_TYPES[kind].from_dict(data)


# -- JSON conversion ------------------------------------------------------------


def _float_or_none(x: float) -> float | None:
    return None if (math.isnan(x) or math.isinf(x)) else x


def to_jsonable(obj: Any) -> Any:
    """Convert dataclasses, arrays, numpy scalars, enums, mappings and sequences to JSON types."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _fields_jsonable(obj)
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind == "f":
            return to_jsonable(obj.tolist())
        return obj.tolist()
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return _float_or_none(float(obj))
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    return obj


def _fields_jsonable(obj: DataclassInstance) -> dict[str, Any]:
    """A dataclass instance's fields, each converted by :func:`to_jsonable`."""
    # A field marked "omit_if_none" appears only when set, so files written before it existed round-trip.
    return {
        f.name: to_jsonable(getattr(obj, f.name))
        for f in dataclasses.fields(obj)
        if not (f.metadata.get("omit_if_none") and getattr(obj, f.name) is None)
    }


def _strip_optional(hint: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return hint


def _convert(hint: Any, value: Any) -> Any:
    if value is None:
        # NaN and infinities are written as null; a float slot reads them back as NaN.
        return float("nan") if _strip_optional(hint) is float and hint is float else None
    hint = _strip_optional(hint)
    origin = typing.get_origin(hint)
    if hint is np.ndarray:
        arr = np.array(value)
        if arr.dtype == object:
            # Lists holding None are float arrays whose NaNs were written as null.
            try:
                arr = np.array(value, dtype=float)
            except (TypeError, ValueError):
                pass
        return arr
    if hint is float:
        return float(value)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _from_jsonable(hint, value)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(value)
    if origin is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v) for v in value)
        if args:
            return tuple(_convert(a, v) for a, v in zip(args, value))
        return tuple(value)
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        args = typing.get_args(hint)
        if len(args) == 2:
            return {k: _convert(args[1], v) for k, v in value.items()}
        return dict(value)
    return value


def _from_jsonable(cls: type[_D], data: Mapping[str, Any]) -> _D:
    # Fields may be inherited from classes defined in other modules: resolve each
    # annotation in the namespace of every module along the class's ancestry.
    namespace: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        module = sys.modules.get(klass.__module__)
        if module is not None:
            namespace.update(vars(module))
    hints = typing.get_type_hints(cls, namespace)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if not f.init or f.name not in data:
            continue
        kwargs[f.name] = _convert(hints.get(f.name, Any), data[f.name])
    return cls(**kwargs)

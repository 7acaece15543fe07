"""XGBoost and LightGBM models read from their own file formats, which carry trees and numbers, no code.

Files:

* XGBoost ``.json`` (JSON) and ``.ubj`` (Universal Binary JSON), as ``Booster.save_model``
  and the scikit-learn wrappers' ``save_model`` write them; the content decides which of
  the two a file is (a UBJSON object starts with ``{`` and a length marker, JSON with
  ``{`` and a quoted key).
* LightGBM model text (``.txt``, also ``.lgb``), as ``Booster.save_model`` writes it
  (``tree`` on the first line).

Probity reads each file itself first (:func:`read_booster`: the standard library's JSON
parser, a UBJSON reader of its own, a reader of LightGBM's text layout), learns the
task, the classes, the feature names and types and the stored categories from what the
file declares, and checks every structure the library's compiled predictor follows
(:func:`engine.models.native_checks.validate_xgboost_trees`,
:func:`~engine.models.native_checks.validate_lightgbm_trees`).  Only then are the very
same bytes handed to the library's own loader (imported here, lazily); a crafted file
is refused before the library reads it.  No trust decision is needed.

Prediction passes the data as the booster was trained on it: numeric features as
float64, categorical features coded by the categories stored in the file, in their
training order (XGBoost 3.x keeps them in the model's ``cats``; LightGBM writes
``pandas_categorical`` after the trees).  A value never seen in training is refused
with one sentence; missing values are passed as NaN and follow each split's default
direction, as in the library.

Outputs: probabilities for classifiers (``binary:logistic``/``binary``,
``multi:softprob``/``multiclass``), values for regressors; the library's raw output
(its margin) is named by :attr:`BoosterModel.raw_output_space` (``"log-odds"`` for a
logistic binary model, ``"margin"`` for per-class softmax scores and log-link
regressors, ``"value"`` where the link is the identity) and given by
:meth:`BoosterModel.predict_raw_output`.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.errors import ModelError, ModelInputError
from engine.models.base import Model, Task, TrustDecision

if TYPE_CHECKING:  # imported where used: inspecting a model file needs no pandas
    import pandas as pd

__all__ = [
    "BOOSTER_FAMILIES",
    "BOOSTER_CAVEAT",
    "BoosterInfo",
    "BoosterModel",
    "XGBoostModel",
    "LightGBMModel",
    "sniff_booster",
    "read_booster",
    "load_booster",
    "read_ubjson",
]

#: The format families this module reads (``engine.models.loading.MODEL_SUFFIXES`` values).
BOOSTER_FAMILIES = ("xgboost", "lightgbm")

#: What a booster's own importance does not say.
BOOSTER_CAVEAT = (
    "Gain and split-count importance are biased toward high-cardinality and continuous features, depend on "
    "the order the trees were grown, and say nothing about the direction of an effect."
)

# The sigmoid of the margin, or the softmax of per-class margins.
_LOGISTIC = "logistic"
_SOFTMAX = "softmax"


# ---------------------------------------------------------------------------
# What a booster file declares
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BoosterInfo:
    """What a booster file declares, read without its library.

    Attributes
    ----------
    library: ``"xgboost"`` or ``"lightgbm"``.
    container: ``"JSON"``, ``"UBJSON"`` or ``"text"``.
    written_by: the library version (XGBoost) or the text format version (LightGBM).
    objective: the objective as the file names it (``"binary:logistic"``, ``"multiclass"``).
    task: classification or regression.
    classes: ``(0, 1)`` or ``(0, ..., k-1)``; the file stores no other labels.
    n_features: the number of input columns the trees index.
    feature_names: their names, or ``None`` when the file names none (then the data's
        feature columns are taken in order).
    categorical: feature index -> the categories stored for it in training order, or
        ``None`` when the file stores none (the feature then takes category codes).
    n_trees: trees in the file; ``n_rounds`` boosting rounds (trees per round:
        one per class for multiclass models).
    output_space: ``"probability"`` or ``"value"``.
    raw_output_space: the space of the library's raw output: ``"log-odds"``,
        ``"margin"`` or ``"value"``.
    probability_from: how probabilities follow from the raw output when the library's
        own prediction is not a probability (``"logistic"``, ``"softmax"``), else ``""``.
    notes: lines for ``probity inspect-model`` beyond the facts above.
    """

    library: str
    container: str
    written_by: str
    objective: str
    task: Task
    classes: tuple[int, ...] | None
    n_features: int
    feature_names: tuple[str, ...] | None
    categorical: Mapping[int, tuple[Any, ...] | None]
    n_trees: int
    n_rounds: int
    output_space: str
    raw_output_space: str
    probability_from: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def title(self) -> str:
        return "XGBoost" if self.library == "xgboost" else "LightGBM"

    def column_names(self) -> tuple[str, ...]:
        """The features' names, or ``f0``, ``f1``, ... where the file names none."""
        return self.feature_names or tuple(f"f{i}" for i in range(self.n_features))

    def summary(self) -> tuple[str, ...]:
        """The lines ``probity inspect-model`` prints for this file."""
        names = self.column_names()
        listed = ", ".join(names[:25]) + (f" and {len(names) - 25} more" if len(names) > 25 else "")
        lines = [
            f"Library:   {self.title} ({self.container}; {self.written_by})",
            f"Objective: {self.objective}",
            "Task:      "
            + (
                f"classification, classes {', '.join(map(str, self.classes or ()))}"
                if self.task is Task.CLASSIFICATION
                else "regression"
            ),
            f"Trees:     {self._trees_text()}",
            f"Features:  {self.n_features}"
            + (f": {listed}" if self.feature_names is not None else " (the file names none: taken in order)"),
            *self._categorical_lines(names),
            f"Output:    {self.output_space}; the raw output (margin) is in {self.raw_output_space} space",
            *self.notes,
            f"Verdict:   loads without a trust decision ({self._verdict_reason()}).",
        ]
        return tuple(lines)

    # The parts of the summary a library describes in its own way.
    def _trees_text(self) -> str:
        return f"{self.n_trees} in {self.n_rounds} boosting round{'s' if self.n_rounds != 1 else ''}"

    def _categorical_lines(self, names: Sequence[str]) -> list[str]:
        lines = []
        for index, categories in self.categorical.items():
            if categories is None:
                lines.append(f"  categorical {names[index]}: category codes (the file stores no category names)")
            else:
                shown = ", ".join(map(repr, categories[:10])) + (" ..." if len(categories) > 10 else "")
                lines.append(f"  categorical {names[index]}: {len(categories)} categories ({shown})")
        return lines

    def _verdict_reason(self) -> str:
        return "a booster file holds trees and numbers, no code; every structure was checked"


def _refuse(path: Path, text: str) -> ModelError:
    return ModelError(text, path=path)


# ---------------------------------------------------------------------------
# Content detection
# ---------------------------------------------------------------------------

_UBJ_KEY_MARKERS = b"iUIlL$#}"


def sniff_booster(data: bytes) -> str | None:
    """``"xgboost-json"``, ``"xgboost-ubj"``, ``"lightgbm"`` or ``None``, from the first bytes.

    A UBJSON object opens with ``{`` and a length marker (or ``$``/``#``/``}``); a JSON
    document with ``{`` then, after any blanks, a quoted key or ``}``; LightGBM model
    text with the line ``tree`` (or, in some writers, ``version=v``).
    """
    if data[:1] == b"{" and data[1:2] in [bytes([c]) for c in _UBJ_KEY_MARKERS] and data[1:2] != b"}":
        return "xgboost-ubj"
    head = data[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head[:1] == b"{":
        return "xgboost-json"
    if head.startswith((b"tree\n", b"tree\r\n", b"version=v")):
        return "lightgbm"
    return None


# ---------------------------------------------------------------------------
# UBJSON (XGBoost's binary format)
# ---------------------------------------------------------------------------


class _UBJError(Exception):
    def __init__(self, reason: str, pos: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.pos = pos


_UBJ_NUMBERS: dict[int, str] = {
    ord("i"): ">i1",
    ord("U"): ">u1",
    ord("I"): ">i2",
    ord("l"): ">i4",
    ord("L"): ">i8",
    ord("d"): ">f4",
    ord("D"): ">f8",
}


class _UBJReader:
    """A strict reader of Universal Binary JSON (draft 12, big-endian), as XGBoost writes it.

    Typed numeric arrays (``[$l#L<n>``) become numpy arrays; every length and count is
    checked against the bytes left before anything is allocated, and nesting is
    bounded.
    """

    def __init__(self, data: bytes, max_depth: int) -> None:
        self.data = data
        self.pos = 0
        self.max_depth = max_depth

    def _take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise _UBJError(f"it ends inside {what}", self.pos)
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def _marker(self, what: str) -> int:
        return self._take(1, what)[0]

    def _number(self, marker: int, what: str) -> Any:
        code = _UBJ_NUMBERS.get(marker)
        if code is None:
            raise _UBJError(f"it has the unknown type marker {bytes([marker])!r} in {what}", self.pos - 1)
        dtype = np.dtype(code)
        value = np.frombuffer(self._take(dtype.itemsize, what), dtype=dtype)[0]
        return value.item()

    def _count(self, what: str) -> int:
        marker = self._marker(what)
        if marker not in b"iUIlL":
            raise _UBJError(f"it has a non-integer length in {what}", self.pos - 1)
        n = int(self._number(marker, what))
        if n < 0:
            raise _UBJError(f"it has a negative length in {what}", self.pos)
        return n

    def _string(self, what: str) -> str:
        n = self._count(what)
        raw = self._take(n, what)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _UBJError(f"it has a string that is not UTF-8 in {what}", self.pos - n) from None

    def value(self, depth: int = 1, marker: int | None = None) -> Any:
        if marker is None:
            marker = self._marker("a value")
            while marker == ord("N"):  # no-op padding
                marker = self._marker("a value")
        if marker == ord("{"):
            return self._object(depth)
        if marker == ord("["):
            return self._array(depth)
        if marker == ord("Z"):
            return None
        if marker == ord("T"):
            return True
        if marker == ord("F"):
            return False
        if marker == ord("S"):
            return self._string("a string")
        if marker == ord("C"):
            return self._take(1, "a character").decode("latin-1")
        if marker == ord("H"):
            text = self._string("a high-precision number")
            try:
                return float(text)
            except ValueError:
                raise _UBJError("it has a high-precision number that is not a number", self.pos) from None
        return self._number(marker, "a value")

    def _enter(self, depth: int) -> None:
        if depth > self.max_depth:
            raise _UBJError(f"it nests lists and objects more than {self.max_depth} levels deep", self.pos)

    def _container_header(self, what: str) -> tuple[int | None, int | None]:
        """``(element type, count)`` of an optimised container, ``None`` where not given."""
        typ: int | None = None
        count: int | None = None
        if self.data[self.pos : self.pos + 1] == b"$":
            self.pos += 1
            typ = self._marker(what)
            if typ not in _UBJ_NUMBERS and typ not in b"SCH[{":
                raise _UBJError(f"it has the element type {bytes([typ])!r} in {what}", self.pos - 1)
            if self.data[self.pos : self.pos + 1] != b"#":
                raise _UBJError(f"it has a typed {what} without a count", self.pos)
        if self.data[self.pos : self.pos + 1] == b"#":
            self.pos += 1
            count = self._count(what)
            # Every element takes at least one byte, so a count past the bytes left is damage.
            if count > len(self.data) - self.pos:
                raise _UBJError(f"it ends inside {what} of {count:,} elements", self.pos)
        return typ, count

    def _array(self, depth: int) -> Any:
        self._enter(depth)
        typ, count = self._container_header("an array")
        if typ is not None and typ in _UBJ_NUMBERS:
            assert count is not None
            dtype = np.dtype(_UBJ_NUMBERS[typ])
            raw = self._take(count * dtype.itemsize, f"an array of {count:,} numbers")
            return np.frombuffer(raw, dtype=dtype).astype(dtype.newbyteorder("="))
        items: list[Any] = []
        if count is not None:
            for _ in range(count):
                items.append(self.value(depth + 1, typ))
            return items
        while True:
            marker = self._marker("an array")
            if marker == ord("]"):
                return items
            if marker == ord("N"):
                continue
            items.append(self.value(depth + 1, marker))

    def _object(self, depth: int) -> dict[str, Any]:
        self._enter(depth)
        typ, count = self._container_header("an object")
        out: dict[str, Any] = {}

        def entry() -> None:
            key = self._string("an object key")
            if key in out:
                raise _UBJError(f"it repeats the key {key!r} in an object", self.pos)
            out[key] = self.value(depth + 1, typ)

        if count is not None:
            for _ in range(count):
                entry()
            return out
        while True:
            if self.data[self.pos : self.pos + 1] == b"}":
                self.pos += 1
                return out
            if self.data[self.pos : self.pos + 1] == b"N":
                self.pos += 1
                continue
            if self.pos >= len(self.data):
                raise _UBJError("it ends inside an object", self.pos)
            entry()


def read_ubjson(data: bytes, *, max_depth: int = 100) -> Any:
    """Decode a whole Universal Binary JSON document (numeric typed arrays as numpy arrays).

    Raises
    ------
    ValueError
        The bytes are not one complete UBJSON value (the message says where).
    """
    reader = _UBJReader(data, max_depth)
    try:
        value = reader.value()
        if reader.pos != len(data):
            raise _UBJError(f"it has {len(data) - reader.pos:,} bytes after its end", reader.pos)
    except _UBJError as exc:
        raise ValueError(f"{exc.reason} (at byte {exc.pos:,})") from None
    except RecursionError:
        raise ValueError(f"it nests lists and objects more than {max_depth} levels deep") from None
    return value


# ---------------------------------------------------------------------------
# XGBoost documents
# ---------------------------------------------------------------------------

# objective -> (task, output space, raw output space, how probabilities follow from the raw output)
_XGB_OBJECTIVES: dict[str, tuple[Task, str, str, str]] = {
    "binary:logistic": (Task.CLASSIFICATION, "probability", "log-odds", ""),
    "binary:logitraw": (Task.CLASSIFICATION, "probability", "log-odds", _LOGISTIC),
    "multi:softprob": (Task.CLASSIFICATION, "probability", "margin", ""),
    "multi:softmax": (Task.CLASSIFICATION, "probability", "margin", _SOFTMAX),
    "reg:squarederror": (Task.REGRESSION, "value", "value", ""),
    "reg:linear": (Task.REGRESSION, "value", "value", ""),
    "reg:squaredlogerror": (Task.REGRESSION, "value", "value", ""),
    "reg:pseudohubererror": (Task.REGRESSION, "value", "value", ""),
    "reg:absoluteerror": (Task.REGRESSION, "value", "value", ""),
    "reg:quantileerror": (Task.REGRESSION, "value", "value", ""),
    "reg:logistic": (Task.REGRESSION, "value", "log-odds", ""),
    "count:poisson": (Task.REGRESSION, "value", "margin", ""),
    "reg:gamma": (Task.REGRESSION, "value", "margin", ""),
    "reg:tweedie": (Task.REGRESSION, "value", "margin", ""),
}


def _get(mapping: Any, key: str, path: Path, what: str) -> Any:
    if not isinstance(mapping, dict) or key not in mapping:
        raise _refuse(path, f"{path.name} is not a usable XGBoost model: {what} has no {key!r}.")
    return mapping[key]


def _int_text(value: Any, path: Path, what: str, *, minimum: int = 0) -> int:
    """XGBoost writes its parameters as strings of integers ("3"); numbers are accepted too."""
    try:
        if isinstance(value, bool) or isinstance(value, float):
            raise ValueError
        number = int(value)
    except (TypeError, ValueError):
        raise _refuse(path, f"{path.name} is not a usable XGBoost model: its {what} is {value!r}.") from None
    if number < minimum:
        raise _refuse(path, f"{path.name} is not a usable XGBoost model: its {what} is {number}.")
    return number


def _xgb_base_score(value: Any, path: Path, n_groups: int) -> None:
    text = str(value).strip()
    parts = text[1:-1].split(",") if text.startswith("[") and text.endswith("]") else [text]
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        raise _refuse(path, f"{path.name} is not a usable XGBoost model: its base_score is {text[:40]!r}.") from None
    if not all(math.isfinite(v) for v in numbers) or len(numbers) not in (1, n_groups):
        raise _refuse(
            path,
            f"{path.name} contains an XGBoost booster whose base_score {text[:60]!r} is not {n_groups} finite "
            "number(s), so it is not used.",
        )


def _xgb_categories(cats: Any, n_features: int, path: Path) -> dict[int, tuple[Any, ...]]:
    """The categories XGBoost 3.x stores per feature (``model["cats"]``), in training order."""
    from engine.models.native_checks import xgboost_category_values

    return xgboost_category_values(cats, n_features=n_features, path=path)


def _read_xgboost(doc: Any, *, path: Path, container: str) -> tuple[BoosterInfo, dict[str, Any]]:
    from engine.models.native_checks import validate_xgboost_trees

    if not isinstance(doc, dict) or not isinstance(doc.get("learner"), dict):
        hint = ""
        if isinstance(doc, dict) and "tree_info" in doc and "feature_names" in doc:
            hint = (
                " (it looks like LightGBM's dump_model output, which LightGBM cannot load back; save the model "
                "with Booster.save_model to a .txt file instead)"
            )
        raise _refuse(
            path,
            f'{path.name} is not an XGBoost model: its {container} document has no "learner" object{hint}.',
        )
    learner = doc["learner"]
    version = doc.get("version")
    written_by = (
        "XGBoost " + ".".join(str(int(v)) for v in version)
        if isinstance(version, (list, np.ndarray)) and len(version) == 3
        else "XGBoost (version not stated)"
    )
    params = _get(learner, "learner_model_param", path, "the learner")
    n_features = _int_text(_get(params, "num_feature", path, "learner_model_param"), path, "num_feature", minimum=1)
    num_class = _int_text(params.get("num_class", "0"), path, "num_class")
    num_target = _int_text(params.get("num_target", "1"), path, "num_target", minimum=1)
    if num_target > 1:
        raise _refuse(
            path,
            f"{path.name} is an XGBoost model with {num_target} targets; Probity audits single-output models only.",
        )
    objective = _get(learner, "objective", path, "the learner")
    name = _get(objective, "name", path, "the objective")
    if not isinstance(name, str):
        raise _refuse(path, f"{path.name} is not a usable XGBoost model: its objective name is {name!r}.")
    if name not in _XGB_OBJECTIVES:
        raise _refuse(
            path,
            f"{path.name} is an XGBoost model with the objective {name}, which Probity does not audit "
            "(it reads binary:*, multi:*, reg:* and count:poisson models).",
        )
    task, out_space, raw_space, prob_from = _XGB_OBJECTIVES[name]
    n_groups = max(num_class, 1)
    if name.startswith("multi:"):
        declared = objective.get("softmax_multiclass_param", {}).get("num_class", num_class)
        if num_class < 2 or _int_text(declared, path, "objective's num_class") != num_class:
            raise _refuse(
                path,
                f"{path.name} contains an XGBoost booster whose objective declares {declared!r} classes but whose "
                f"learner declares {num_class}, so it is not used.",
            )
        classes: tuple[int, ...] | None = tuple(range(num_class))
    elif task is Task.CLASSIFICATION:
        if num_class > 1:
            raise _refuse(
                path,
                f"{path.name} contains an XGBoost binary booster that declares {num_class} classes, so it is not used.",
            )
        classes = (0, 1)
    else:
        if num_class > 1:
            raise _refuse(
                path,
                f"{path.name} contains an XGBoost regression booster that declares {num_class} classes, "
                "so it is not used.",
            )
        classes = None
    _xgb_base_score(params.get("base_score", "0.5"), path, n_groups)

    names_raw = learner.get("feature_names", [])
    types_raw = learner.get("feature_types", [])
    for label, values in (("feature_names", names_raw), ("feature_types", types_raw)):
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise _refuse(path, f"{path.name} is not a usable XGBoost model: its {label} is not a list of names.")
        if values and len(values) != n_features:
            raise _refuse(
                path,
                f"{path.name} contains an XGBoost booster with {len(values)} {label.replace('_', ' ')} for "
                f"{n_features} features, so it is not used.",
            )
    if len(set(names_raw)) != len(names_raw):
        raise _refuse(path, f"{path.name} is not a usable XGBoost model: its feature names repeat.")
    unknown = sorted({t for t in types_raw if t not in ("float", "q", "int", "i", "c")})
    if unknown:
        raise _refuse(
            path, f"{path.name} is an XGBoost model with the feature types {unknown}, which Probity does not read."
        )
    categorical_idx = [i for i, t in enumerate(types_raw) if t == "c"]

    booster = _get(learner, "gradient_booster", path, "the learner")
    kind = _get(booster, "name", path, "the gradient booster")
    if kind == "dart":
        gbtree = _get(booster, "gbtree", path, "the dart booster")
        model = _get(gbtree, "model", path, "the dart booster's gbtree")
        weight_drop = booster.get("weight_drop")
    elif kind == "gbtree":
        model = _get(booster, "model", path, "the gradient booster")
        weight_drop = None
    else:
        raise _refuse(
            path,
            f"{path.name} is an XGBoost model with a {kind!r} booster; Probity reads tree boosters (gbtree, dart).",
        )
    cats = model.get("cats") if isinstance(model, dict) else None
    stored = _xgb_categories(cats, n_features, path) if cats is not None else {}
    for index in stored:
        if index not in categorical_idx:
            raise _refuse(
                path,
                f"{path.name} contains an XGBoost booster that stores categories for feature {index}, "
                "which its feature types do not mark categorical, so it is not used.",
            )
    categorical: dict[int, tuple[Any, ...] | None] = {i: stored.get(i) for i in categorical_idx}
    n_categories = {i: (len(c) if c is not None else None) for i, c in categorical.items()}
    n_trees, n_rounds = validate_xgboost_trees(
        model,
        n_features=n_features,
        n_groups=n_groups,
        categorical=frozenset(categorical_idx) if types_raw else None,
        n_categories=n_categories,
        weight_drop=weight_drop,
        path=path,
    )
    notes: list[str] = []
    attributes = learner.get("attributes", {})
    if isinstance(attributes, dict) and "best_iteration" in attributes:
        notes.append(
            f"Note:      the file records best_iteration={attributes['best_iteration']}; Probity, like "
            "Booster.predict, uses every tree it holds."
        )
    if prob_from == _SOFTMAX:
        notes.append("Note:      multi:softmax predicts labels; probabilities are the softmax of its margins.")
    elif prob_from == _LOGISTIC:
        notes.append("Note:      binary:logitraw predicts margins; probabilities are their logistic sigmoid.")
    info = BoosterInfo(
        library="xgboost",
        container=container,
        written_by=written_by,
        objective=name,
        task=task,
        classes=classes,
        n_features=n_features,
        feature_names=tuple(names_raw) if names_raw else None,
        categorical=categorical,
        n_trees=n_trees,
        n_rounds=n_rounds,
        output_space=out_space,
        raw_output_space=raw_space,
        probability_from=prob_from,
        notes=tuple(notes),
    )
    return info, doc


# ---------------------------------------------------------------------------
# LightGBM model text
# ---------------------------------------------------------------------------

# objective -> (task, output space, raw output space)
_LGB_OBJECTIVES: dict[str, tuple[Task, str, str]] = {
    "binary": (Task.CLASSIFICATION, "probability", "log-odds"),
    "multiclass": (Task.CLASSIFICATION, "probability", "margin"),
    "multiclassova": (Task.CLASSIFICATION, "probability", "margin"),
    "regression": (Task.REGRESSION, "value", "value"),
    "regression_l1": (Task.REGRESSION, "value", "value"),
    "huber": (Task.REGRESSION, "value", "value"),
    "fair": (Task.REGRESSION, "value", "value"),
    "quantile": (Task.REGRESSION, "value", "value"),
    "mape": (Task.REGRESSION, "value", "value"),
    "poisson": (Task.REGRESSION, "value", "margin"),
    "gamma": (Task.REGRESSION, "value", "margin"),
    "tweedie": (Task.REGRESSION, "value", "margin"),
    "cross_entropy": (Task.REGRESSION, "value", "log-odds"),
    "cross_entropy_lambda": (Task.REGRESSION, "value", "margin"),
}


@dataclass(frozen=True)
class _LightGBMText:
    """LightGBM model text split into its parts (every value kept as the text it was)."""

    header: dict[str, str]
    trees: tuple[dict[str, str], ...]
    tree_sizes: tuple[int, ...]
    parameters: dict[str, str]
    pandas_categorical: Any


def _lgb_lines(block: bytes, path: Path, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for raw in block.split(b"\n"):
        line = raw.rstrip(b"\r")
        if b"=" not in line:
            continue
        key, _, value = line.partition(b"=")
        try:
            k, v = key.decode("utf-8"), value.decode("utf-8")
        except UnicodeDecodeError:
            raise _refuse(path, f"{path.name} is not a usable LightGBM model: {what} is not UTF-8 text.") from None
        if k in out:
            raise _refuse(path, f"{path.name} is not a usable LightGBM model: {what} states {k} twice.")
        out[k] = v
    return out


def _split_lightgbm(data: bytes, path: Path) -> _LightGBMText:
    from engine.files import JSONNestingError, loads_json
    from engine.limits import current_limits

    starts: list[int] = []
    pos = data.find(b"\nTree=")
    while pos >= 0:
        starts.append(pos + 1)
        pos = data.find(b"\nTree=", pos + 1)
    end_marker = data.find(b"\nend of trees")
    if end_marker < 0:
        raise _refuse(
            path,
            f'{path.name} is a truncated or damaged LightGBM model file: it has no "end of trees" line.',
        )
    end = end_marker + 1
    if any(s > end for s in starts):
        raise _refuse(path, f'{path.name} is a damaged LightGBM model file: it has trees after "end of trees".')
    header_end = starts[0] if starts else end
    header = _lgb_lines(data[:header_end], path, "its header")
    bounds = [*starts, end]
    trees = []
    sizes = []
    for i, (a, b) in enumerate(zip(bounds, bounds[1:])):
        block = data[a:b]
        first = block.split(b"\n", 1)[0].rstrip(b"\r")
        if first != f"Tree={i}".encode():
            heading = first[:40].decode("utf-8", "replace")
            raise _refuse(path, f"{path.name} is a damaged LightGBM model file: tree {i} is headed {heading!r}.")
        trees.append(_lgb_lines(block.split(b"\n", 1)[1] if b"\n" in block else b"", path, f"tree {i}"))
        sizes.append(len(block))
    rest = data[end:]
    parameters: dict[str, str] = {}
    p_start, p_end = rest.find(b"\nparameters:\n"), rest.find(b"\nend of parameters")
    if 0 <= p_start < p_end:
        for raw in rest[p_start:p_end].split(b"\n"):
            line = raw.strip().decode("utf-8", "replace")
            if line.startswith("[") and line.endswith("]") and ": " in line:
                key, _, value = line[1:-1].partition(": ")
                parameters[key] = value
    pandas_categorical: Any = None
    marker = rest.rfind(b"\npandas_categorical:")
    if marker >= 0:
        text = rest[marker + len(b"\npandas_categorical:") :].strip()
        try:
            pandas_categorical = loads_json(text, max_depth=current_limits().max_json_depth)
        except JSONNestingError as exc:
            raise _refuse(path, exc.sentence(f"The pandas_categorical line of {path.name}")) from None
        except ValueError:
            raise _refuse(
                path, f"{path.name} is a damaged LightGBM model file: its pandas_categorical line is not JSON."
            ) from None
    return _LightGBMText(header, tuple(trees), tuple(sizes), parameters, pandas_categorical)


def _lgb_int(header: Mapping[str, str], key: str, path: Path, *, minimum: int = 0) -> int:
    value = header.get(key)
    try:
        number = int(value) if value is not None else None
    except ValueError:
        number = None
    if number is None or number < minimum:
        raise _refuse(path, f"{path.name} is not a usable LightGBM model: its {key} is {value!r}.")
    return number


def _read_lightgbm(data: bytes, *, path: Path) -> tuple[BoosterInfo, _LightGBMText]:
    from engine.models.native_checks import validate_lightgbm_trees

    text = _split_lightgbm(data, path)
    header = text.header
    version = header.get("version", "")
    n_class = _lgb_int(header, "num_class", path, minimum=1)
    per_iteration = _lgb_int(header, "num_tree_per_iteration", path, minimum=1)
    n_features = _lgb_int(header, "max_feature_idx", path) + 1
    names = header.get("feature_names", "").split(" ")
    infos = header.get("feature_infos", "").split(" ")
    if len(names) != n_features or len(infos) != n_features:
        raise _refuse(
            path,
            f"{path.name} contains a LightGBM booster with {len(names)} feature names and {len(infos)} feature infos "
            f"for {n_features} features, so it is not used.",
        )
    if len(set(names)) != len(names):
        raise _refuse(path, f"{path.name} is not a usable LightGBM model: its feature names repeat.")
    objective_line = header.get("objective", "")
    tokens = objective_line.split(" ")
    objective = tokens[0]
    aliases = {"xentropy": "cross_entropy", "xentlambda": "cross_entropy_lambda", "l2": "regression"}
    objective = aliases.get(objective, objective)
    if objective not in _LGB_OBJECTIVES:
        what = f"the objective {objective}" if objective else "no objective (a custom one)"
        raise _refuse(
            path,
            f"{path.name} is a LightGBM model with {what}, which Probity does not audit (it reads binary, "
            "multiclass and regression models).",
        )
    task, out_space, raw_space = _LGB_OBJECTIVES[objective]
    options = dict(t.split(":", 1) for t in tokens[1:] if ":" in t)
    if objective in ("multiclass", "multiclassova"):
        declared = options.get("num_class", "")
        if n_class < 2 or declared != str(n_class) or per_iteration != n_class:
            raise _refuse(
                path,
                f"{path.name} contains a LightGBM booster whose objective declares {declared or 'no'} classes, "
                f"its header {n_class}, with {per_iteration} trees per iteration, so it is not used.",
            )
        classes: tuple[int, ...] | None = tuple(range(n_class))
    else:
        if n_class != 1 or per_iteration != 1:
            raise _refuse(
                path,
                f"{path.name} contains a LightGBM {objective} booster that declares {n_class} classes and "
                f"{per_iteration} trees per iteration, so it is not used.",
            )
        classes = (0, 1) if task is Task.CLASSIFICATION else None
    if objective == "binary" and options.get("sigmoid", "1") not in ("1", "1.0"):
        raw_space = "margin"
    if objective == "regression" and "sqrt" in tokens[1:]:
        raw_space = "margin"

    sizes_text = header.get("tree_sizes")
    if sizes_text is not None:
        try:
            declared_sizes = tuple(int(s) for s in sizes_text.split(" ") if s != "")
        except ValueError:
            declared_sizes = ()
        if declared_sizes != text.tree_sizes:
            raise _refuse(
                path,
                f"{path.name} contains a LightGBM booster whose tree_sizes do not match the {len(text.trees)} "
                "trees it holds, so it is not used.",
            )
    if len(text.trees) % per_iteration:
        raise _refuse(
            path,
            f"{path.name} contains a LightGBM booster with {len(text.trees)} trees, not a multiple of its "
            f"{per_iteration} trees per iteration, so it is not used.",
        )

    categorical = _lgb_categorical(text, infos, n_features, path)
    validate_lightgbm_trees(text.trees, n_features=n_features, path=path)
    default_names = tuple(f"Column_{i}" for i in range(n_features))
    info = BoosterInfo(
        library="lightgbm",
        container="text",
        written_by=f"model format {version or 'not stated'}",
        objective=objective_line or objective,
        task=task,
        classes=classes,
        n_features=n_features,
        feature_names=None if tuple(names) == default_names else tuple(names),
        categorical=categorical,
        n_trees=len(text.trees),
        n_rounds=len(text.trees) // per_iteration,
        output_space=out_space,
        raw_output_space=raw_space,
        notes=(
            ("Note:      multiclassova gives one sigmoid per class; its probabilities need not add up to 1.",)
            if objective == "multiclassova"
            else ()
        ),
    )
    return info, text


def _lgb_categorical(
    text: _LightGBMText, infos: Sequence[str], n_features: int, path: Path
) -> dict[int, tuple[Any, ...] | None]:
    """Categorical features and, where LightGBM stored them (``pandas_categorical``), their categories.

    ``pandas_categorical`` lists the categories of the DataFrame's ``category`` columns, in
    column order; those columns are the ``categorical_feature`` parameter's indices.
    """
    listed = text.parameters.get("categorical_feature", "").strip()
    indices: list[int] = []
    if listed:
        try:
            indices = sorted({int(s) for s in listed.split(",") if s.strip() != ""})
        except ValueError:
            indices = []
    if not indices:
        # A categorical feature's info is its category codes ("-1:0:2"); a numeric one's "[min:max]".
        indices = [i for i, s in enumerate(infos) if s not in ("none", "") and not s.startswith("[")]
    if any(not 0 <= i < n_features for i in indices):
        raise _refuse(
            path, f"{path.name} contains a LightGBM booster whose categorical features lie outside its {n_features}."
        )
    pc = text.pandas_categorical
    if pc is None:
        return {i: None for i in indices}
    if not isinstance(pc, list) or not all(isinstance(c, list) for c in pc):
        raise _refuse(
            path, f"{path.name} is a damaged LightGBM model file: its pandas_categorical is not a list of lists."
        )
    if len(pc) != len(indices):
        raise _refuse(
            path,
            f"{path.name} stores categories for {len(pc)} columns but marks {len(indices)} features categorical, "
            "so Probity cannot tell which categories belong to which column.",
        )
    out: dict[int, tuple[Any, ...] | None] = {}
    for i, categories in zip(indices, pc):
        if not all(isinstance(c, (str, int, float)) and not isinstance(c, bool) for c in categories):
            raise _refuse(path, f"{path.name} stores categories that are neither text nor numbers.")
        if len(set(categories)) != len(categories):
            raise _refuse(path, f"{path.name} stores a category twice for feature {i}.")
        out[i] = tuple(categories)
    return out


# ---------------------------------------------------------------------------
# Reading a file
# ---------------------------------------------------------------------------


def read_booster(data: bytes, *, path: Path, family: str) -> tuple[BoosterInfo, Any]:
    """Read, check and describe a booster file without its library.

    Parameters
    ----------
    data: the file's bytes.
    path: the file (named in errors).
    family: ``"xgboost"`` or ``"lightgbm"``, from the suffix; the content decides
        the container (an XGBoost file may be JSON or UBJSON whatever its suffix).

    Returns
    -------
    (BoosterInfo, parsed)
        What the file declares, and the parsed document (XGBoost) or text (LightGBM).

    Raises
    ------
    ModelError
        The content is not a model of the family, is truncated or damaged, or a
        structure the library would follow is malformed: one sentence.
    """
    from engine.files import JSONNestingError, loads_json
    from engine.limits import current_limits

    kind = sniff_booster(data)
    if family == "lightgbm":
        if kind != "lightgbm":
            raise _refuse(
                path,
                f'{path.name} is not a LightGBM model file: it does not start with the line "tree" that '
                "LightGBM's Booster.save_model writes.",
            )
        return _read_lightgbm(data, path=path)
    max_depth = current_limits().max_json_depth
    if kind == "xgboost-ubj":
        try:
            doc = read_ubjson(data, max_depth=max_depth)
        except ValueError as exc:
            raise _refuse(path, f"{path.name} is a truncated or damaged XGBoost UBJSON file: {exc}.") from None
        return _read_xgboost(doc, path=path, container="UBJSON")
    if kind == "xgboost-json":
        try:
            doc = loads_json(data, max_depth=max_depth)
        except JSONNestingError as exc:
            raise _refuse(path, exc.sentence(path.name)) from None
        except UnicodeDecodeError:
            raise _refuse(path, f"{path.name} is not an XGBoost model: it is not UTF-8 JSON text.") from None
        except json.JSONDecodeError as exc:
            raise _refuse(
                path, f"{path.name} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
            ) from None
        return _read_xgboost(doc, path=path, container="JSON")
    if path.suffix.lower() == ".ubj":
        raise _refuse(path, f"{path.name} is not an XGBoost UBJSON model: it does not start with a UBJSON object.")
    raise _refuse(path, f"{path.name} is not an XGBoost model: it does not hold a JSON or UBJSON document.")


# ---------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------


def _describe_values(values: Sequence[Any], limit: int = 5) -> str:
    shown = ", ".join(repr(v) for v in list(values)[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


class BoosterModel(Model):
    """A booster read from its own file format (XGBoost or LightGBM), used through its library.

    Attributes
    ----------
    info: what the file declares (:class:`BoosterInfo`).
    library: ``"xgboost"`` or ``"lightgbm"``; ``format`` is the same.
    container: ``"JSON"``, ``"UBJSON"`` or ``"text"``.
    output_space: ``"probability"`` (classifiers) or ``"value"`` (regressors).
    raw_output_space: the space of :meth:`predict_raw_output`.
    n_features_in: the number of input columns.
    """

    library: str

    def __init__(
        self,
        booster: Any,
        info: BoosterInfo,
        *,
        path: Path | None = None,
        sha256: str | None = None,
        size_bytes: int | None = None,
    ) -> None:
        self._booster = booster
        self.info = info
        self.format = info.library
        self.library = info.library
        self.container = info.container
        self.path = path
        self.sha256 = sha256
        self.size_bytes = size_bytes
        self.trust = TrustDecision(required=False, granted_by="not required", sha256=sha256)
        self.task = info.task
        self.classes = info.classes
        self.input_columns = info.feature_names
        self.n_features_in = info.n_features
        self.output_space = info.output_space
        self.raw_output_space = info.raw_output_space
        self._names = info.column_names()

    @property
    def booster(self) -> Any:
        """The library's own booster object."""
        return self._booster

    def check_input(self, X: pd.DataFrame, *, source: str = "the data") -> None:
        if self.input_columns is None:
            return
        missing = [c for c in self.input_columns if c not in X.columns]
        if missing:
            subject = f"{source[:1].upper()}{source[1:]}"
            raise ModelInputError(
                f"{subject} lacks {len(missing)} of the {len(self.input_columns)} columns the {self.info.title} "
                f"booster {self.name} was trained on ({_describe_values(missing)}); its feature names come from "
                "its file and must match the data's column names.",
                path=self.path,
            )

    # -- the data as the booster was trained on it ---------------------------------------------------------

    def _columns(self, X: pd.DataFrame) -> list[Any]:
        if self.input_columns is None and X.shape[1] != self.info.n_features:
            raise ModelInputError(
                f"The {self.info.title} booster {self.name} expects {self.info.n_features} input columns "
                f"but was given {X.shape[1]}.",
                path=self.path,
            )
        return list(X.columns)

    def _numeric(self, column: pd.Series, name: str) -> np.ndarray:
        import pandas as pd

        if pd.api.types.is_bool_dtype(column.dtype):
            flags: np.ndarray = column.to_numpy(dtype=np.float64, na_value=np.nan)
            return flags
        if isinstance(column.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(column.dtype):
            converted = pd.to_numeric(column.astype(object), errors="coerce")
            bad = converted.isna().to_numpy() & column.notna().to_numpy()
            if bad.any():
                raise ModelInputError(
                    f"The column {name!r} holds values that are not numbers (such as "
                    f"{column[bad].iloc[0]!r}), but the {self.info.title} booster {self.name} treats it as "
                    "numeric.",
                    path=self.path,
                )
            column = converted
        values: np.ndarray = column.to_numpy(dtype=np.float64, na_value=np.nan)
        return values

    def _codes(self, column: pd.Series, name: str, categories: tuple[Any, ...]) -> np.ndarray:
        """Each value's position among the stored categories (-1 where missing); unseen values refused."""
        import pandas as pd

        values = column.astype(object)
        present = values.notna().to_numpy()
        if all(isinstance(c, str) for c in categories):
            keys = values.map(_as_text, na_action="ignore")
            known = pd.Index(list(categories))
        else:  # numeric categories: 3 in the data is the stored 3.0
            keys = pd.to_numeric(values, errors="coerce")
            known = pd.Index([float(c) for c in categories])
        codes = known.get_indexer(keys.to_numpy())
        unseen = present & (codes < 0)
        if unseen.any():
            distinct = list(dict.fromkeys(values[unseen].tolist()))
            raise ModelInputError(
                f"The column {name!r} holds {len(distinct)} value{'s' if len(distinct) > 1 else ''} the "
                f"{self.info.title} booster {self.name} never saw in training ({_describe_values(distinct)}); "
                f"it knows {_describe_values(categories)}.",
                path=self.path,
            )
        result: np.ndarray = codes.astype(np.int64)
        return result

    def _category_codes_column(self, column: pd.Series, name: str) -> np.ndarray:
        """A categorical feature whose categories the file does not store: its values are the codes."""
        import pandas as pd

        if isinstance(column.dtype, pd.CategoricalDtype):
            raise ModelInputError(
                f"The {self.info.title} booster {self.name} takes the categorical column {name!r} as category "
                "codes (its file stores no category names), but the data holds categories; give the codes as "
                "numbers.",
                path=self.path,
            )
        values = self._numeric(column, name)
        return values

    def _code_matrix(self, X: pd.DataFrame, columns: list[Any]) -> np.ndarray:
        """The float64 matrix the trees compare: numbers as given, categories as their codes (NaN if missing)."""
        matrix = np.empty((len(X), self.info.n_features), dtype=np.float64)
        for index in range(self.info.n_features):
            column = X[columns[index]]
            name = self._names[index] if self.input_columns is not None else str(columns[index])
            if index in self.info.categorical:
                categories = self.info.categorical[index]
                if categories is None:
                    matrix[:, index] = self._category_codes_column(column, name)
                else:
                    codes = self._codes(column, name, categories).astype(np.float64)
                    codes[codes < 0] = np.nan
                    matrix[:, index] = codes
            else:
                matrix[:, index] = self._numeric(column, name)
        return matrix

    # -- prediction -----------------------------------------------------------------------------------------

    def _predict_raw(self, X: pd.DataFrame) -> np.ndarray:
        out = self._library_output(X, raw=self.info.probability_from != "")
        if self.info.probability_from == _LOGISTIC:
            from scipy.special import expit

            return np.asarray(expit(np.asarray(out, dtype=np.float64)))
        if self.info.probability_from == _SOFTMAX:
            from scipy.special import softmax

            return np.asarray(softmax(np.asarray(out, dtype=np.float64), axis=1))
        return out

    def predict_raw_output(self, X: pd.DataFrame) -> np.ndarray:
        """The library's raw output (its margin) in :attr:`raw_output_space`.

        Returns
        -------
        ndarray
            ``(n,)`` for binary classifiers (the positive class's log-odds) and regressors,
            ``(n, n_classes)`` for multiclass models; float64.
        """
        self.check_input(X)
        if self.input_columns is not None:
            X = X.loc[:, list(self.input_columns)]
        out = np.asarray(self._library_output(X, raw=True), dtype=np.float64)
        if out.ndim == 2 and out.shape[1] == 1:
            out = out[:, 0]
        return out

    def library_input(self, X: pd.DataFrame) -> Any:
        """``X`` as the library is handed it: a float64 matrix in the file's feature order
        (categories as their codes, NaN where missing), or for an XGBoost file that names its
        features a DataFrame whose categorical columns hold the stored categories."""
        self.check_input(X)
        if self.input_columns is not None:
            X = X.loc[:, list(self.input_columns)]
        return self._library_input(X)

    def _library_input(self, X: pd.DataFrame) -> Any:
        raise NotImplementedError

    def _library_output(self, X: pd.DataFrame, *, raw: bool) -> np.ndarray:
        raise NotImplementedError

    def native_importance(self, importance_type: str) -> np.ndarray:
        """The library's own importance per feature, ``(n_features,)``, in the file's feature order.

        ``importance_type``: ``"gain"`` (the total gain of the splits on each feature)
        or ``"split"`` (how many splits use it).
        """
        raise NotImplementedError


def _as_text(value: Any) -> str:
    """A data value as the text a stored text category would be (``3`` and ``3.0`` as ``"3"``)."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


class XGBoostModel(BoosterModel):
    """An XGBoost booster from a ``.json`` or ``.ubj`` file."""

    def _library_input(self, X: pd.DataFrame) -> Any:
        import pandas as pd

        columns = self._columns(X)
        if self.input_columns is not None:
            frame: dict[str, Any] = {}
            for index, name in enumerate(self._names):
                column = X[columns[index]]
                if index in self.info.categorical:
                    categories = self.info.categorical[index]
                    if categories is None:
                        frame[name] = self._category_codes_column(column, name)
                    else:
                        codes = self._codes(column, name, categories)
                        frame[name] = pd.Categorical.from_codes(codes, categories=list(categories))
                else:
                    frame[name] = self._numeric(column, name)
            return pd.DataFrame(frame, index=X.index, columns=list(self._names))
        return self._code_matrix(X, columns)

    def _library_output(self, X: pd.DataFrame, *, raw: bool) -> np.ndarray:
        import xgboost as xgb

        data = self._library_input(X)
        predict_type = "margin" if raw else "value"
        try:
            if isinstance(data, np.ndarray):
                has_codes = any(c is None for c in self.info.categorical.values())
                if not self.info.categorical or not has_codes:
                    out = self._booster.inplace_predict(data, predict_type=predict_type, validate_features=False)
                else:
                    types = self._booster.feature_types
                    matrix = xgb.DMatrix(data, feature_types=types, enable_categorical=True)
                    out = self._booster.predict(matrix, output_margin=raw, validate_features=False)
            else:
                out = self._booster.inplace_predict(data, predict_type=predict_type)
        except (xgb.core.XGBoostError, ValueError, TypeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelInputError(
                f"The XGBoost booster {self.name} could not predict on the given data: {first.rstrip('.')}.",
                path=self.path,
            ) from exc
        result: np.ndarray = np.asarray(out)
        return result

    def native_importance(self, importance_type: str) -> np.ndarray:
        kind = {"gain": "total_gain", "split": "weight"}[importance_type]
        scores = self._booster.get_score(importance_type=kind)
        names = self._booster.feature_names or [f"f{i}" for i in range(self.info.n_features)]
        return np.array([float(scores.get(name, 0.0)) for name in names], dtype=np.float64)


class LightGBMModel(BoosterModel):
    """A LightGBM booster from its model text (``.txt``, ``.lgb``)."""

    def __init__(self, booster: Any, info: BoosterInfo, **kwargs: Any) -> None:
        super().__init__(booster, info, **kwargs)
        # Serialise calls into the library: its predictor state is shared by the booster.
        self._lock = threading.Lock()

    def _library_input(self, X: pd.DataFrame) -> np.ndarray:
        # LightGBM turns a DataFrame's category columns into their codes among pandas_categorical
        # (missing as NaN) and everything else into float64: this is that matrix, built directly.
        columns = self._columns(X)
        return self._code_matrix(X, columns)

    def _library_output(self, X: pd.DataFrame, *, raw: bool) -> np.ndarray:
        from lightgbm.basic import LightGBMError

        data = self._library_input(X)
        try:
            with self._lock:
                out = self._booster.predict(data, raw_score=raw, verbosity=-1)
        except (LightGBMError, ValueError, TypeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelInputError(
                f"The LightGBM booster {self.name} could not predict on the given data: {first.rstrip('.')}.",
                path=self.path,
            ) from exc
        result: np.ndarray = np.asarray(out)
        return result

    def native_importance(self, importance_type: str) -> np.ndarray:
        with self._lock:
            values = self._booster.feature_importance(importance_type=importance_type)
        return np.asarray(values, dtype=np.float64)


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------


def load_booster(data: bytes, *, path: Path, sha256: str, family: str) -> BoosterModel:
    """Check a booster file (:func:`read_booster`), then load the same bytes with its library.

    No trust decision is involved: the formats hold trees and numbers, no code.

    Raises
    ------
    ModelError
        The file is not a usable model of its family (one sentence), or the library
        refuses it.
    """
    info, parsed = read_booster(data, path=path, family=family)
    if info.library == "xgboost":
        booster = _load_xgboost(data, info, path)
        return XGBoostModel(booster, info, path=path, sha256=sha256, size_bytes=len(data))
    booster = _load_lightgbm(data, info, path)
    return LightGBMModel(booster, info, path=path, sha256=sha256, size_bytes=len(data))


def _load_xgboost(data: bytes, info: BoosterInfo, path: Path) -> Any:
    import xgboost as xgb

    booster = xgb.Booster()
    try:
        booster.load_model(bytearray(data))
    except (xgb.core.XGBoostError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"XGBoost could not load {path.name}: {first.rstrip('.')}.", path=path) from exc
    # What the library holds is what was checked.
    held = (booster.num_features(), booster.num_boosted_rounds(), tuple(booster.feature_names or ()) or None)
    if held != (info.n_features, info.n_rounds, info.feature_names):
        raise ModelError(
            f"XGBoost read {path.name} differently from Probity's check ({held[0]} features and {held[1]} rounds, "
            f"not {info.n_features} and {info.n_rounds}), so it is not used.",
            path=path,
        )
    return booster


def _load_lightgbm(data: bytes, info: BoosterInfo, path: Path) -> Any:
    import lightgbm as lgb

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ModelError(f"{path.name} is not a usable LightGBM model: it is not UTF-8 text.", path=path) from None
    try:
        booster = lgb.Booster(model_str=text)
    except (lgb.basic.LightGBMError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"LightGBM could not load {path.name}: {first.rstrip('.')}.", path=path) from exc
    held = (booster.num_feature(), booster.num_trees())
    if held != (info.n_features, info.n_trees):
        raise ModelError(
            f"LightGBM read {path.name} differently from Probity's check ({held[0]} features and {held[1]} trees, "
            f"not {info.n_features} and {info.n_trees}), so it is not used.",
            path=path,
        )
    return booster

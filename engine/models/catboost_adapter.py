"""CatBoost models read from their own files (``.cbm`` and ``.json``) through CatBoost's own loader.

Files:

* ``.cbm``, as ``CatBoost.save_model`` writes it: the magic ``CBM1``, the length of a
  FlatBuffers "model core" and the core, then the model parts the core lists (the
  categorical features' counter tables, ``static_provider_v1``: a count, then one
  length-prefixed table each).
* ``.json``, as ``save_model(format="json")`` writes it: an object with ``model_info``,
  ``features_info``, ``oblivious_trees`` (or ``trees`` for non-symmetric trees),
  ``ctr_data`` and ``scale_and_bias``.  Its suffix is shared with XGBoost's JSON: the
  content decides (:func:`is_catboost_json`).

Before CatBoost sees the bytes, Probity checks what its loader does not
(:func:`check_cbm`, :func:`check_catboost_json`).  CatBoost 1.2.10 verifies a
``.cbm``'s FlatBuffers core itself but reads the parts after it leniently (a file cut
short inside its counter tables loads, then fails or predicts from partial tables), and
its JSON reader checks nothing (a split index past the model's splits, or counter
tables left out, kill the process at the first prediction).  So: the magic, every
length against the bytes there, the core's format and part list, the part layout up to
the file's last byte; for JSON every split index, leaf count, feature index, counter
table layout and number.  Then the same bytes go to CatBoost's loader (imported here,
lazily), and what the loaded model reports (feature names, categorical features, task,
classes, objective, tree count) describes it; for JSON it must equal what was checked.
No trust decision is needed: the formats hold trees and numbers, no code.

Prediction hands CatBoost a frame of the model's columns in its order: numeric
features as float64 (missing values as NaN, which the model's ``nan_mode`` handles
as in training), categorical features as text, which CatBoost hashes as it did in
training (``3`` and ``3.0`` both as ``"3"``; a missing value as ``"nan"``, what
pandas' ``astype(str)`` writes, since CatBoost cannot train on missing categories).  A
category never seen in training is legal for CatBoost (its counters fall back to their
priors), so it is predicted, not refused; ``probity inspect-model`` says so.

Outputs: probabilities for classifiers (``Logloss``/``CrossEntropy``, ``MultiClass``,
``MultiClassOneVsAll``), values for regressors (``Exponent`` for the log-link
objectives); the raw output (``RawFormulaVal``) is in ``"log-odds"``, ``"margin"`` or
``"value"`` space (:attr:`BoosterModel.raw_output_space`).
"""

from __future__ import annotations

import json
import math
import re
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

import numpy as np

from engine.errors import AnalysisError, ModelError, ModelInputError
from engine.models.base import Task
from engine.models.booster_adapter import BoosterInfo, BoosterModel, _as_text

if TYPE_CHECKING:  # imported where used: inspecting a model file needs no pandas
    import pandas as pd

__all__ = [
    "CATBOOST_CAVEAT",
    "CatBoostInfo",
    "CatBoostModel",
    "sniff_catboost",
    "is_catboost_json",
    "check_cbm",
    "check_catboost_json",
    "read_catboost",
    "load_catboost",
]

#: What CatBoost's own importance (PredictionValuesChange) does not say.
CATBOOST_CAVEAT = (
    "PredictionValuesChange is how much the prediction changes, on average over the training leaves, when a "
    "feature's splits change: it reads the trees, not the audited data, favours features used in many splits, "
    "and says nothing about the direction of an effect. LossFunctionChange needs the training data and is "
    "not offered."
)

_MAGIC = b"CBM1"
_CORE_FORMAT = "FlabuffersModel_v1"
_CTR_PART = "static_provider_v1"
_MAX_DEPTH = 16  # CatBoost grows trees of depth 16 at most

# loss function -> (task, output space, raw output space, CatBoost's prediction type for the output)
_OBJECTIVES: dict[str, tuple[Task, str, str, str]] = {
    "Logloss": (Task.CLASSIFICATION, "probability", "log-odds", "Probability"),
    "CrossEntropy": (Task.CLASSIFICATION, "probability", "log-odds", "Probability"),
    "MultiClass": (Task.CLASSIFICATION, "probability", "margin", "Probability"),
    "MultiClassOneVsAll": (Task.CLASSIFICATION, "probability", "margin", "Probability"),
    "RMSE": (Task.REGRESSION, "value", "value", "RawFormulaVal"),
    "MAE": (Task.REGRESSION, "value", "value", "RawFormulaVal"),
    "Quantile": (Task.REGRESSION, "value", "value", "RawFormulaVal"),
    "Expectile": (Task.REGRESSION, "value", "value", "RawFormulaVal"),
    "MAPE": (Task.REGRESSION, "value", "value", "RawFormulaVal"),
    "Huber": (Task.REGRESSION, "value", "value", "RawFormulaVal"),
    "Lq": (Task.REGRESSION, "value", "value", "RawFormulaVal"),
    "LogCosh": (Task.REGRESSION, "value", "value", "RawFormulaVal"),
    "FairLoss": (Task.REGRESSION, "value", "value", "RawFormulaVal"),
    "LogLinQuantile": (Task.REGRESSION, "value", "margin", "Exponent"),
    "Poisson": (Task.REGRESSION, "value", "margin", "Exponent"),
    "Tweedie": (Task.REGRESSION, "value", "margin", "Exponent"),
}


def _refuse(path: Path, text: str) -> ModelError:
    return ModelError(text, path=path)


# ---------------------------------------------------------------------------
# Content detection
# ---------------------------------------------------------------------------

# The top-level keys CatBoost writes (sorted, so one of these comes first); XGBoost's JSON opens with "learner".
_CATBOOST_KEYS = (
    "ctr_data",
    "embedding_processing_options",
    "features_info",
    "model_info",
    "oblivious_trees",
    "scale_and_bias",
    "text_processing_options",
    "trees",
)
_FIRST_KEY = re.compile(rb'\A(?:\xef\xbb\xbf)?\s*\{\s*"([A-Za-z_]{1,40})"\s*:')


def sniff_catboost(data: bytes) -> str | None:
    """``"cbm"``, ``"json"`` or ``None``: whether the bytes are a CatBoost model file, and which."""
    if data[:4] == _MAGIC:
        return "cbm"
    return "json" if is_catboost_json(data) else None


def is_catboost_json(data: bytes) -> bool:
    """Whether a JSON document is a CatBoost model: its first key is one CatBoost writes.

    CatBoost writes its keys sorted (``ctr_data``, ``features_info``, ``model_info``,
    ...); XGBoost's JSON opens with ``learner``.  A document that opens with neither
    (one rewritten in another key order) is read whole and told by its keys.
    """
    match = _FIRST_KEY.match(data[:256])
    if match is not None:
        first = match.group(1).decode("ascii")
        if first in ("learner", "version"):
            return False
        if first in _CATBOOST_KEYS:
            return True
    if data[:256].lstrip(b"\xef\xbb\xbf \t\r\n")[:1] != b"{":
        return False
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        return False
    return isinstance(doc, dict) and "features_info" in doc and ("oblivious_trees" in doc or "trees" in doc)


# ---------------------------------------------------------------------------
# .cbm: the container
# ---------------------------------------------------------------------------


class _Bad(Exception):
    """A part of a .cbm or CatBoost JSON file that is not as CatBoost writes it."""


class _Buffer:
    """Bounds-checked little-endian reads of one FlatBuffers buffer."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def _unpack(self, fmt: str, pos: int) -> int:
        size = struct.calcsize(fmt)
        if pos < 0 or pos + size > len(self.data):
            raise _Bad("its model core points outside itself")
        value: int = struct.unpack_from(fmt, self.data, pos)[0]
        return value

    def table_field(self, table: int, index: int) -> int | None:
        """The position of field ``index`` of the table at ``table``, or ``None`` when absent."""
        vtable = table - self._unpack("<i", table)
        size = self._unpack("<H", vtable)
        if size < 4 or size % 2:
            raise _Bad("its model core has a malformed table")
        if 4 + 2 * index >= size:
            return None
        offset = self._unpack("<H", vtable + 4 + 2 * index)
        return table + offset if offset else None

    def indirect(self, pos: int) -> int:
        return pos + self._unpack("<I", pos)

    def string(self, pos: int) -> str:
        start = self.indirect(pos)
        n = self._unpack("<I", start)
        if start + 4 + n > len(self.data):
            raise _Bad("its model core has a text that runs past its end")
        try:
            return self.data[start + 4 : start + 4 + n].decode("utf-8")
        except UnicodeDecodeError:
            raise _Bad("its model core has a text that is not UTF-8") from None

    def vector(self, pos: int) -> list[int]:
        start = self.indirect(pos)
        n = self._unpack("<I", start)
        if start + 4 + 4 * n > len(self.data):
            raise _Bad("its model core has a list that runs past its end")
        return [start + 4 + 4 * k for k in range(n)]


def _size(data: bytes, pos: int, what: str) -> tuple[int, int]:
    """A length as CatBoost saves it (``ui32``; ``0xFFFFFFFF`` then a ``ui64``), and the position after it."""
    if pos + 4 > len(data):
        raise _Bad(f"it ends inside the length of {what}")
    (n,) = struct.unpack_from("<I", data, pos)
    pos += 4
    if n == 0xFFFFFFFF:
        if pos + 8 > len(data):
            raise _Bad(f"it ends inside the length of {what}")
        (n,) = struct.unpack_from("<Q", data, pos)
        pos += 8
    return int(n), pos


def check_cbm(data: bytes, *, path: Path) -> tuple[str, ...]:
    """Check a ``.cbm`` file's container before CatBoost reads it; returns the model parts the core lists.

    Checked: the magic ``CBM1``; the core's length inside the file; the core's root
    table, its format (``FlabuffersModel_v1``) and its list of model parts; each part
    (only the counter tables of categorical features, ``static_provider_v1``, are
    known: a count, then one length-prefixed table each) inside the file; and the
    last part ending at the file's last byte.  The core's own layout is verified by
    CatBoost's loader (FlatBuffers' verifier) before it is used.

    Raises
    ------
    ModelError
        One sentence: a truncated or damaged file, or parts Probity does not read.
    """
    if data[:4] != _MAGIC:
        raise _refuse(path, f'{path.name} is not a CatBoost model file: it does not start with "CBM1".')
    try:
        core_size, pos = _size(data, 4, "the model core")
        if core_size < 8 or pos + core_size > len(data):
            raise _Bad(
                f"its model core of {core_size:,} bytes does not fit in the {len(data) - pos:,} bytes after its length"
            )
        core = _Buffer(data[pos : pos + core_size])
        root = core.indirect(0)
        version_at = core.table_field(root, 0)
        version = core.string(version_at) if version_at is not None else ""
        if version != _CORE_FORMAT:
            raise _Bad(f"its model core is in the format {version[:40]!r}, not {_CORE_FORMAT}")
        parts_at = core.table_field(root, 3)
        parts = tuple(core.string(p) for p in core.vector(parts_at)) if parts_at is not None else ()
        pos += core_size
        for part in parts:
            if part != _CTR_PART:
                raise _refuse(
                    path,
                    f"{path.name} is a CatBoost model with a {part[:40]!r} part (text or embedding features), "
                    "which Probity does not audit.",
                )
            count, pos = _size(data, pos, "the counter tables")
            if count > (len(data) - pos) // 4:
                raise _Bad(f"it ends inside its {count:,} counter tables")
            for t in range(count):
                size, pos = _size(data, pos, f"counter table {t}")
                if pos + size > len(data):
                    raise _Bad(f"it ends inside counter table {t} ({size:,} bytes, {len(data) - pos:,} left)")
                pos += size
        if pos != len(data):
            raise _Bad(f"it has {len(data) - pos:,} bytes after its last part")
    except _Bad as bad:
        raise _refuse(path, f"{path.name} is a truncated or damaged CatBoost model file: {bad}.") from None
    return parts


# ---------------------------------------------------------------------------
# .json: the structures CatBoost's JSON reader follows without checks
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _JsonFacts:
    n_features: int
    feature_names: tuple[str, ...]
    categorical: tuple[int, ...]
    n_trees: int
    dimension: int


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _list_of(doc: Any, key: str, where: str, *, required: bool = True) -> list[Any]:
    value = doc.get(key) if isinstance(doc, dict) else None
    if value is None and not required:
        return []
    if not isinstance(value, list):
        raise _Bad(f"{where} has no list {key!r}")
    return value


def _numbers(values: Any, where: str) -> list[float]:
    if not isinstance(values, list) or not all(_finite_number(v) for v in values):
        raise _Bad(f"{where} holds a value that is not a finite number")
    return [float(v) for v in values]


def check_catboost_json(doc: Any, *, path: Path) -> _JsonFacts:
    """Check a CatBoost JSON model before CatBoost reads it (its JSON reader checks nothing itself).

    Checked: the top-level objects; one entry per feature with flat indices running
    over ``0 .. n-1`` and distinct names; no text or embedding features; finite borders;
    one-hot values and counter features on known categorical features; each counter
    feature's table in ``ctr_data`` with a stride CatBoost can read and a hash map of
    whole strides (decimal 64-bit hashes, integer counts); every split index below the
    number of binary splits the features define; oblivious trees of depth 16 at most
    with ``2^depth`` leaves of the same output width, leaf weights one per leaf;
    non-symmetric trees of split and leaf nodes; every leaf value finite; the scale and
    the bias finite, one bias per output.

    Raises
    ------
    ModelError
        One sentence naming the file and the field.
    """
    try:
        return _check_json(doc)
    except _Bad as bad:
        raise _refuse(path, f"{path.name} contains a CatBoost model whose {bad}, so it is not used.") from None


def _check_json(doc: Any) -> _JsonFacts:
    if not isinstance(doc, dict):
        raise _Bad("document is not an object")
    if not isinstance(doc.get("model_info"), dict):
        raise _Bad("document has no model_info object")
    info = doc.get("features_info")
    if not isinstance(info, dict):
        raise _Bad("document has no features_info object")
    for kind in ("text_features", "embedding_features", "estimated_features"):
        if info.get(kind):
            raise _Bad(f"features_info lists {kind.replace('_', ' ')}, which Probity does not audit")
    floats = _list_of(info, "float_features", "features_info", required=False)
    cats = _list_of(info, "categorical_features", "features_info", required=False)
    flat: dict[int, str] = {}
    n_bins = 0
    for kind, entries in (("float", floats), ("categorical", cats)):
        for k, entry in enumerate(entries):
            where = f"{kind} feature {k}"
            if not isinstance(entry, dict):
                raise _Bad(f"{where} is not an object")
            index = entry.get("flat_feature_index")
            if not _is_int(index) or index < 0 or index in flat:
                raise _Bad(f"{where} has the flat index {index!r}, not a new whole number")
            if entry.get("feature_index", k) != k:
                raise _Bad(f"{where} has the feature index {entry.get('feature_index')!r}, not its position {k}")
            name = entry.get("feature_id", "")
            if not isinstance(name, str):
                raise _Bad(f"{where} has a name that is not text")
            flat[index] = name or str(index)  # unnamed features are "0", "1", ... as CatBoost names them
            if kind == "float":
                n_bins += len(_numbers(entry.get("borders", []), f"{where}'s borders"))
                if entry.get("nan_value_treatment", "AsIs") not in ("AsIs", "AsFalse", "AsTrue"):
                    raise _Bad(f"{where} has the missing-value treatment {entry.get('nan_value_treatment')!r}")
            else:
                # CatBoost 1.2 lists the hashes a feature's one-hot splits test with the feature itself.
                values = entry.get("values", [])
                if not isinstance(values, list) or not all(_is_int(v) for v in values):
                    raise _Bad(f"{where}'s one-hot values are not whole numbers")
                n_bins += len(values)
    n_features = len(flat)
    if sorted(flat) != list(range(n_features)):
        raise _Bad(f"feature flat indices do not run over 0 to {n_features - 1}")
    names = tuple(flat[i] for i in range(n_features))
    if len(set(names)) != n_features:
        raise _Bad("feature names repeat")
    for k, entry in enumerate(_list_of(info, "one_hot_features", "features_info", required=False)):
        where = f"one-hot feature {k}"
        if not isinstance(entry, dict) or not _is_int(entry.get("cat_feature_index")):
            raise _Bad(f"{where} names no categorical feature")
        if not 0 <= entry["cat_feature_index"] < len(cats):
            raise _Bad(f"{where} names a categorical feature outside its {len(cats)}")
        values = entry.get("values", [])
        if not isinstance(values, list) or not all(_is_int(v) for v in values):
            raise _Bad(f"{where}'s values are not whole numbers")
        n_bins += len(values)
    ctr_data = doc.get("ctr_data", {})
    if not isinstance(ctr_data, dict):
        raise _Bad("ctr_data is not an object")
    for k, ctr in enumerate(_list_of(info, "ctrs", "features_info", required=False)):
        where = f"counter feature {k}"
        if not isinstance(ctr, dict):
            raise _Bad(f"{where} is not an object")
        n_bins += len(_numbers(ctr.get("borders", []), f"{where}'s borders"))
        for number in ("prior_numerator", "prior_denomerator", "scale", "shift"):
            if number in ctr and not _finite_number(ctr[number]):
                raise _Bad(f"{where}'s {number} is not a finite number")
        elements = ctr.get("elements")
        if not isinstance(elements, list) or not elements:
            raise _Bad(f"{where} combines no features")
        for element in elements:
            if not isinstance(element, dict):
                raise _Bad(f"{where} has an element that is not an object")
            if "cat_feature_index" in element and not (
                _is_int(element["cat_feature_index"]) and 0 <= element["cat_feature_index"] < len(cats)
            ):
                raise _Bad(f"{where} names a categorical feature outside its {len(cats)}")
            if "float_feature_index" in element and not (
                _is_int(element["float_feature_index"]) and 0 <= element["float_feature_index"] < len(floats)
            ):
                raise _Bad(f"{where} names a numeric feature outside its {len(floats)}")
        identifier = ctr.get("identifier")
        if not isinstance(identifier, str) or identifier not in ctr_data:
            raise _Bad(f"{where} has no counter table in ctr_data")
    for key, table in ctr_data.items():
        _check_ctr_table(key, table)
    dimension = _check_trees(doc, n_bins)
    scale_and_bias = doc.get("scale_and_bias", [1, [0] * dimension])
    if (
        not isinstance(scale_and_bias, list)
        or len(scale_and_bias) != 2
        or not _finite_number(scale_and_bias[0])
        or len(_numbers(scale_and_bias[1], "scale_and_bias's bias")) not in (0, dimension)
    ):
        raise _Bad(f"scale_and_bias is not a finite scale and {dimension} finite bias value(s)")
    trees = doc.get("oblivious_trees", doc.get("trees"))
    assert isinstance(trees, list)
    categorical = tuple(sorted(int(entry["flat_feature_index"]) for entry in cats))
    return _JsonFacts(n_features, names, categorical, len(trees), dimension)


def _check_ctr_table(key: str, table: Any) -> None:
    where = "ctr_data entry"
    try:
        base = json.loads(key)
    except ValueError:
        raise _Bad(f"{where} {key[:60]!r} is not a counter description") from None
    if (
        not isinstance(base, dict)
        or not isinstance(base.get("type"), str)
        or not isinstance(base.get("identifier"), list)
    ):
        raise _Bad(f"{where} {key[:60]!r} is not a counter description")
    if not isinstance(table, dict):
        raise _Bad(f"{where} {base['type']} is not an object")
    stride = table.get("hash_stride")
    hashes = table.get("hash_map")
    ctr_type = base["type"]
    needed = {"Counter": 2, "FeatureFreq": 2, "BinarizedTargetMeanValue": 3, "FloatTargetMeanValue": 3}.get(ctr_type)
    if not _is_int(stride) or stride < 2 or (needed is not None and stride != needed):
        raise _Bad(f"{where} {ctr_type} has the hash stride {stride!r}")
    if not _is_int(table.get("counter_denominator", 0)):
        raise _Bad(f"{where} {ctr_type} has a counter denominator that is not a whole number")
    if not isinstance(hashes, list) or len(hashes) % stride:
        raise _Bad(f"{where} {ctr_type}'s hash map is not whole strides of {stride}")
    for start in range(0, len(hashes), stride):
        digest = hashes[start]
        if not isinstance(digest, str) or not digest.isdigit() or int(digest) >= 1 << 64:
            raise _Bad(f"{where} {ctr_type}'s hash map holds a hash that is not a 64-bit number in text")
        if not all(_is_int(v) and abs(v) < 1 << 31 for v in hashes[start + 1 : start + stride]):
            raise _Bad(f"{where} {ctr_type}'s hash map holds a count that is not a 32-bit whole number")


def _check_trees(doc: dict[str, Any], n_bins: int) -> int:
    """The output width of the trees, after checking them."""
    dimension: int | None = None
    if "oblivious_trees" in doc:
        for t, tree in enumerate(_list_of(doc, "oblivious_trees", "document")):
            where = f"tree {t}"
            splits = _list_of(tree, "splits", where)
            if len(splits) > _MAX_DEPTH:
                raise _Bad(f"{where} is {len(splits)} levels deep, more than CatBoost's {_MAX_DEPTH}")
            for split in splits:
                _check_split(split, n_bins, where)
            leaves = _numbers(tree.get("leaf_values"), f"{where}'s leaf_values")
            width, rest = divmod(len(leaves), 1 << len(splits))
            if rest or width < 1 or (dimension is not None and width != dimension):
                raise _Bad(
                    f"{where}'s leaf_values has {len(leaves)} entries, not {dimension or 'k'} per each of its "
                    f"{1 << len(splits)} leaves"
                )
            dimension = width
            if "leaf_weights" in tree and len(_numbers(tree["leaf_weights"], f"{where}'s leaf_weights")) != (
                1 << len(splits)
            ):
                raise _Bad(f"{where}'s leaf_weights has not one entry per each of its {1 << len(splits)} leaves")
    else:
        for t, tree in enumerate(_list_of(doc, "trees", "document")):
            todo: list[tuple[Any, int]] = [(tree, 0)]
            while todo:
                node, depth = todo.pop()
                where = f"tree {t}"
                if not isinstance(node, dict):
                    raise _Bad(f"{where} has a node that is not an object")
                if depth > _MAX_DEPTH:
                    raise _Bad(f"{where} is more than CatBoost's {_MAX_DEPTH} levels deep")
                if "value" in node:
                    value = node["value"]
                    values = _numbers(value if isinstance(value, list) else [value], f"{where}'s leaf values")
                    if not values or (dimension is not None and len(values) != dimension):
                        raise _Bad(f"{where} has leaves of different output widths")
                    dimension = len(values)
                    if "weight" in node and not _finite_number(node["weight"]):
                        raise _Bad(f"{where}'s leaf weights hold a value that is not a finite number")
                    continue
                _check_split(node.get("split"), n_bins, where)
                todo.extend([(node.get("left"), depth + 1), (node.get("right"), depth + 1)])
    if dimension is None:
        dimension = 1
    return dimension


def _check_split(split: Any, n_bins: int, where: str) -> None:
    index = split.get("split_index") if isinstance(split, dict) else None
    if not _is_int(index) or not 0 <= index < n_bins:
        raise _Bad(f"{where}'s split_index {index!r} is outside the {n_bins} splits its features define")


# ---------------------------------------------------------------------------
# What a CatBoost model declares
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CatBoostInfo(BoosterInfo):
    """What a CatBoost model declares (see :class:`BoosterInfo`); ``categorical`` maps each
    categorical feature to ``None``: CatBoost stores hashes of its categories, not their names.

    prediction_type: CatBoost's prediction type for :meth:`CatBoostModel.predict`
        (``"Probability"``, ``"RawFormulaVal"``, ``"Exponent"``).
    checked: what Probity checked before CatBoost read the file (for the verdict line).
    """

    prediction_type: str = "RawFormulaVal"
    checked: str = ""

    @property
    def title(self) -> str:
        return "CatBoost"

    def _trees_text(self) -> str:
        return str(self.n_trees)

    def _categorical_lines(self, names: Sequence[str]) -> list[str]:
        if not self.categorical:
            return []
        return [
            "  categorical: "
            + ", ".join(names[i] for i in self.categorical)
            + " (passed as text, which CatBoost hashes; a category never seen in training is legal and "
            "predicted from the counters' priors, a missing value is the text 'nan')"
        ]

    def _verdict_reason(self) -> str:
        return f"a CatBoost file holds trees and numbers, no code; {self.checked}"


def _version(text: Any) -> str:
    match = re.search(r"(?:release |tags/v)([0-9]+\.[0-9]+(?:\.[0-9]+)?)", str(text))
    return f"CatBoost {match.group(1)}" if match else "CatBoost (version not stated)"


def _describe(booster: Any, *, path: Path, container: str, checked: str) -> CatBoostInfo:
    """What the loaded model reports, as a :class:`CatBoostInfo`; refuses what Probity does not audit."""
    if booster.get_text_feature_indices() or booster.get_embedding_feature_indices():
        raise _refuse(
            path, f"{path.name} is a CatBoost model with text or embedding features, which Probity does not audit."
        )
    names = tuple(str(n) for n in booster.feature_names_)
    n_features = len(names)
    categorical = tuple(int(i) for i in booster.get_cat_feature_indices())
    metadata = booster.get_metadata()
    params = booster.get_params()
    objective = str(params.get("loss_function") or "")
    if not objective:
        try:
            stored = json.loads(metadata.get("params", "{}"))
            objective = str(stored.get("loss_function", {}).get("type", ""))
        except (ValueError, AttributeError):
            objective = ""
    kind = objective.split(":", 1)[0]
    if kind not in _OBJECTIVES:
        what = f"the objective {objective}" if objective else "no objective it names"
        raise _refuse(
            path,
            f"{path.name} is a CatBoost model with {what}, which Probity does not audit (it reads Logloss, "
            "CrossEntropy, MultiClass, MultiClassOneVsAll and regression models).",
        )
    task, out_space, raw_space, prediction_type = _OBJECTIVES[kind]
    bias = booster.get_scale_and_bias()[1]
    dimension = len(bias) if isinstance(bias, (list, tuple)) else 1  # one bias per output
    classes: tuple[Any, ...] | None = None
    if task is Task.CLASSIFICATION:
        labels = tuple(np.asarray(booster.classes_).tolist()) if len(getattr(booster, "classes_", ())) else ()
        if kind in ("Logloss", "CrossEntropy"):
            classes = labels if len(labels) == 2 else (0, 1)
        else:
            if len(labels) < 2 or (dimension and dimension != len(labels)):
                raise _refuse(
                    path,
                    f"{path.name} contains a CatBoost {kind} model that names {len(labels)} classes for "
                    f"{dimension or 'an unknown number of'} outputs, so it is not used.",
                )
            classes = labels
        if len(set(map(str, classes))) != len(classes):
            raise _refuse(path, f"{path.name} contains a CatBoost model whose class labels repeat, so it is not used.")
    elif dimension > 1:
        raise _refuse(
            path,
            f"{path.name} is a CatBoost regression model with {dimension} outputs; Probity audits single-output "
            "models only.",
        )
    default_names = tuple(str(i) for i in range(n_features))
    notes: list[str] = []
    if kind == "MultiClassOneVsAll":
        notes.append(
            "Note:      MultiClassOneVsAll gives one sigmoid per class; its probabilities need not add up to 1."
        )
    if prediction_type == "Exponent":
        notes.append(f"Note:      {kind} predicts the exponent of its raw output (a log link).")
    return CatBoostInfo(
        library="catboost",
        container=container,
        written_by=_version(metadata.get("catboost_version_info", "")),
        objective=objective,
        task=task,
        classes=classes,
        n_features=n_features,
        feature_names=None if names == default_names else names,
        categorical={i: None for i in categorical},
        n_trees=int(booster.tree_count_),
        n_rounds=int(booster.tree_count_),
        output_space=out_space,
        raw_output_space=raw_space,
        notes=tuple(notes),
        prediction_type=prediction_type,
        checked=checked,
    )


# ---------------------------------------------------------------------------
# Reading and loading
# ---------------------------------------------------------------------------


def read_catboost(data: bytes, *, path: Path) -> tuple[CatBoostInfo, Any]:
    """Check a CatBoost file, load the same bytes with CatBoost's loader and describe the model.

    Returns
    -------
    (CatBoostInfo, booster)
        What the model declares, and CatBoost's own model object.

    Raises
    ------
    ModelError
        The content is not a CatBoost model, is truncated or damaged, or is a model
        Probity does not audit: one sentence.
    """
    kind = sniff_catboost(data)
    if kind == "cbm":
        check_cbm(data, path=path)
        booster = _load_library(data, path=path, fmt="cbm")
        checked = "its container was checked and CatBoost verified its model core"
        return _describe(booster, path=path, container="binary .cbm", checked=checked), booster
    if kind != "json":
        if path.suffix.lower() == ".cbm":
            raise _refuse(path, f'{path.name} is not a CatBoost model file: it does not start with "CBM1".')
        raise _refuse(path, f"{path.name} is not a CatBoost model: it is not the JSON CatBoost's save_model writes.")
    from engine.files import JSONNestingError, loads_json
    from engine.limits import current_limits

    try:
        doc = loads_json(data, max_depth=current_limits().max_json_depth)
    except JSONNestingError as exc:
        raise _refuse(path, exc.sentence(path.name)) from None
    except UnicodeDecodeError:
        raise _refuse(path, f"{path.name} is not a CatBoost model: it is not UTF-8 JSON text.") from None
    except json.JSONDecodeError as exc:
        raise _refuse(
            path,
            f"{path.name} is a truncated or damaged CatBoost JSON model: {exc.msg} (line {exc.lineno}, column "
            f"{exc.colno}).",
        ) from None
    facts = check_catboost_json(doc, path=path)
    booster = _load_library(data, path=path, fmt="json")
    info = _describe(booster, path=path, container="JSON", checked="every structure was checked")
    held = (info.n_features, info.n_trees, tuple(info.categorical), info.column_names())
    names = facts.feature_names if info.feature_names is not None else info.column_names()
    if held != (facts.n_features, facts.n_trees, facts.categorical, names):
        raise _refuse(
            path,
            f"CatBoost read {path.name} differently from Probity's check ({info.n_features} features and "
            f"{info.n_trees} trees, not {facts.n_features} and {facts.n_trees}), so it is not used.",
        )
    return info, booster


def _load_library(data: bytes, *, path: Path, fmt: str) -> Any:
    import tempfile

    import catboost

    booster = catboost.CatBoost()
    try:
        if fmt == "cbm":
            booster.load_model(blob=data)
        else:
            # CatBoost reads JSON models from files only: the checked bytes, in a private folder.
            with tempfile.TemporaryDirectory(prefix="probity-catboost-") as folder:
                copy = Path(folder) / "model.json"
                copy.write_bytes(data)
                booster.load_model(str(copy), format="json")
    except Exception as exc:  # CatBoostError, and UnicodeDecodeError for damaged texts in the core
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        first = re.sub(r"^\S+\.(?:cpp|h):\d+: ", "", first)  # the C++ source position says nothing to users
        raise ModelError(f"CatBoost could not load {path.name}: {first.rstrip('.')}.", path=path) from exc
    return booster


def load_catboost(data: bytes, *, path: Path, sha256: str) -> CatBoostModel:
    """Check a CatBoost file and load it (:func:`read_catboost`) as a :class:`CatBoostModel`.

    No trust decision is involved: the formats hold trees and numbers, no code.
    """
    info, booster = read_catboost(data, path=path)
    return CatBoostModel(booster, info, path=path, sha256=sha256, size_bytes=len(data))


# ---------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------


class CatBoostModel(BoosterModel):
    """A CatBoost model from a ``.cbm`` or ``.json`` file, predicted by CatBoost itself."""

    info: CatBoostInfo

    def __init__(self, booster: Any, info: CatBoostInfo, **kwargs: Any) -> None:
        super().__init__(booster, info, **kwargs)
        self._lock = threading.Lock()

    def _library_input(self, X: pd.DataFrame) -> pd.DataFrame:
        """The model's columns in its order: numbers as float64, categories as the text CatBoost hashes."""
        import pandas as pd

        columns = self._columns(X)
        frame: dict[str, Any] = {}
        for index, name in enumerate(self._names):
            column = X[columns[index]]
            label = name if self.input_columns is not None else str(columns[index])
            if index in self.info.categorical:
                texts = np.array([_as_text(v) for v in column.astype(object).tolist()], dtype=object)
                texts[column.isna().to_numpy()] = "nan"
                frame[name] = texts
            else:
                frame[name] = self._numeric(column, label)
        return pd.DataFrame(frame, index=X.index, columns=list(self._names))

    def _library_output(self, X: pd.DataFrame, *, raw: bool) -> np.ndarray:
        import catboost

        frame = self._library_input(X)
        prediction_type = "RawFormulaVal" if raw else self.info.prediction_type
        try:
            pool = catboost.Pool(frame, cat_features=sorted(self.info.categorical))
            # One thread: the analyses run their model calls side by side already.
            with self._lock:
                out = self._booster.predict(pool, prediction_type=prediction_type, thread_count=1)
        except (catboost.CatBoostError, ValueError, TypeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            first = re.sub(r"^\S+\.(?:cpp|h):\d+: ", "", first)
            raise ModelInputError(
                f"The CatBoost model {self.name} could not predict on the given data: {first.rstrip('.')}.",
                path=self.path,
            ) from exc
        result: np.ndarray = np.asarray(out)
        return result

    def native_importance(self, importance_type: str) -> np.ndarray:
        """CatBoost's PredictionValuesChange per feature (``importance_type="gain"``), in the file's feature order.

        CatBoost keeps no split counts, and LossFunctionChange needs the training data:
        neither is offered (:data:`CATBOOST_CAVEAT`).
        """
        if importance_type != "gain":
            raise AnalysisError(
                f"The CatBoost model {self.name} gives one importance of its own, PredictionValuesChange "
                "(importance type gain); it keeps no split counts, and LossFunctionChange needs the training data."
            )
        with self._lock:
            values = self._booster.get_feature_importance(type="PredictionValuesChange")
        return np.asarray(values, dtype=np.float64)

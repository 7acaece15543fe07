"""CatBoost models reduced to the flat trees TreeSHAP reads.

:func:`catboost_tree_model` turns a :class:`~engine.models.catboost_adapter.CatBoostModel`
into a :class:`~engine.explain._trees.TreeModel` whose leaf values are in CatBoost's raw
output (``RawFormulaVal``) space: ``scale * leaf value`` per tree and the bias as the
offset (``scale_and_bias``), one output (a class's margin, negated for class 0 of a
binary model).  The trees are read from CatBoost's own JSON form of the model
(``save_model(format="json")``, whatever file the model came from).

Splits
    An oblivious tree of depth ``d`` applies the same ``d`` splits at every node of
    a level; the leaf a row reaches has bit ``i`` set when it satisfies ``splits[i]``.
    It is written out as a complete binary tree whose root splits on the *last*
    split and whose leaves come in leaf-index order, the order CatBoost's own
    ShapValues walks (``tests/engine/test_catboost_treeshap.py`` checks both).  A
    float split sends ``x > border`` right, comparing float32 values; a missing value
    goes right only where the feature's ``nan_value_treatment`` is ``AsTrue``
    (``nan_mode="Max"``), else left (``"Min"``, the default, and ``AsIs``).  The
    cover of a node is the sum of the ``leaf_weights`` below it, which ShapValues
    uses.  Non-symmetric trees (``grow_policy`` Depthwise, Lossguide) are read the
    same way from their nested nodes; their values are the path-dependent Shapley
    values (checked by enumeration), which CatBoost 1.2's own ShapValues are not
    there (they do not add up to its raw output on such trees).

Categories
    CatBoost hashes a category's text (CityHash64 of its UTF-8 bytes, low 32 bits).
    A one-hot split sends the category with one hash value right.  A counter (CTR)
    split over a single feature computes, in float32, ``((count + prior_numerator) /
    (total + prior_denominator) + shift) * scale`` from the counts CatBoost stored for
    the category's hash and sends values above its border right; a category the
    tables do not hold takes the counts CatBoost uses for it (zero counts; the
    denominator for ``Counter``).  So every split on a categorical feature is a fixed
    partition of hash values.  The categories the model knows are the hash values
    named by its one-hot splits and its counter tables; two categories that every
    split of the model sends the same way are indistinguishable to it and get one
    *code*, and every unknown category gets the code of the counter priors' side.
    :func:`catboost_matrix` writes each categorical column as these codes, so that
    a categorical split of the reduced tree is a set of codes and no row leaves the
    codes it knows.

Counters over several features (feature combinations) have no single-feature
form; :func:`catboost_refusal` says so up front and KernelSHAP explains such models.
"""

from __future__ import annotations

import json
import tempfile
import threading
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import AnalysisError
from engine.explain._trees import Tree, TreeModel

__all__ = [
    "is_catboost_model",
    "catboost_refusal",
    "catboost_tree_model",
    "catboost_matrix",
    "category_hash",
]

_U64 = (1 << 64) - 1
# CatBoost's CalcHash(a, b) = MAGIC * (a + MAGIC * b) (mod 2^64); a single-feature
# counter table is keyed by CalcHash(0, sign-extended category hash) = MAGIC^2 * hash.
_MAGIC = 0x4906BA494954CB65
_MAGIC2 = (_MAGIC * _MAGIC) & _U64
_MAGIC2_INVERSE = pow(_MAGIC2, -1, 1 << 64)
# Counter types whose tables hold integer counts; the mean-value types hold sums and are not read.
_CTR_TYPES = ("Borders", "Buckets", "Counter", "FeatureFreq")

_COMBINATIONS = (
    "TreeSHAP cannot explain the CatBoost model {name}: its trees split on counters over combinations of "
    "features, which no split on a single feature can express; KernelSHAP explains it instead."
)


# -- CatBoost's category hash ---------------------------------------------------------------------

_K0 = 0xC3A5C85C97CB3127
_K1 = 0xB492B66FBE98F273
_K2 = 0x9AE16A3B2F90404F
_K3 = 0xC949D7C7509E6557
_KMUL = 0x9DDFEA08EB382D69


def _rot(v: int, s: int) -> int:
    return v if s == 0 else ((v >> s) | (v << (64 - s))) & _U64


def _mix(v: int) -> int:
    return v ^ (v >> 47)


def _w64(b: bytes, i: int) -> int:
    return int.from_bytes(b[i : i + 8], "little")


def _w32(b: bytes, i: int) -> int:
    return int.from_bytes(b[i : i + 4], "little")


def _len16(u: int, v: int) -> int:
    a = ((u ^ v) * _KMUL) & _U64
    a ^= a >> 47
    b = ((v ^ a) * _KMUL) & _U64
    b ^= b >> 47
    return (b * _KMUL) & _U64


def _weak32(w: int, x: int, y: int, z: int, a: int, b: int) -> tuple[int, int]:
    a = (a + w) & _U64
    b = _rot((b + a + z) & _U64, 21)
    c = a
    a = (a + x + y) & _U64
    b = (b + _rot(a, 44)) & _U64
    return (a + z) & _U64, (b + c) & _U64


def _weak32_at(s: bytes, i: int, a: int, b: int) -> tuple[int, int]:
    return _weak32(_w64(s, i), _w64(s, i + 8), _w64(s, i + 16), _w64(s, i + 24), a, b)


def _city64(s: bytes) -> int:
    """CityHash64 as of CityHash 1.0 (the version CatBoost's util/digest/city carries)."""
    n = len(s)
    if n <= 16:
        if n > 8:
            a, b = _w64(s, 0), _w64(s, n - 8)
            return _len16(a, _rot((b + n) & _U64, n)) ^ b
        if n >= 4:
            return _len16((n + (_w32(s, 0) << 3)) & _U64, _w32(s, n - 4))
        if n > 0:
            y = s[0] + (s[n >> 1] << 8)
            z = n + (s[n - 1] << 2)
            return (_mix(((y * _K2) ^ (z * _K3)) & _U64) * _K2) & _U64
        return _K2
    if n <= 32:
        a = (_w64(s, 0) * _K1) & _U64
        b = _w64(s, 8)
        c = (_w64(s, n - 8) * _K2) & _U64
        d = (_w64(s, n - 16) * _K0) & _U64
        return _len16(
            (_rot((a - b) & _U64, 43) + _rot(c, 30) + d) & _U64,
            (a + _rot(b ^ _K3, 20) - c + n) & _U64,
        )
    if n <= 64:
        z = _w64(s, 24)
        a = (_w64(s, 0) + (n + _w64(s, n - 16)) * _K0) & _U64
        b = _rot((a + z) & _U64, 52)
        c = _rot(a, 37)
        a = (a + _w64(s, 8)) & _U64
        c = (c + _rot(a, 7)) & _U64
        a = (a + _w64(s, 16)) & _U64
        vf = (a + z) & _U64
        vs = (b + _rot(a, 31) + c) & _U64
        a = (_w64(s, 16) + _w64(s, n - 32)) & _U64
        z = _w64(s, n - 8)
        b = _rot((a + z) & _U64, 52)
        c = _rot(a, 37)
        a = (a + _w64(s, n - 24)) & _U64
        c = (c + _rot(a, 7)) & _U64
        a = (a + _w64(s, n - 16)) & _U64
        wf = (a + z) & _U64
        ws = (b + _rot(a, 31) + c) & _U64
        r = _mix(((vf + ws) * _K2 + (wf + vs) * _K0) & _U64)
        return (_mix((r * _K0 + vs) & _U64) * _K2) & _U64
    x = _w64(s, 0)
    y = _w64(s, n - 16) ^ _K1
    z = _w64(s, n - 56) ^ _K0
    v = _weak32_at(s, n - 64, n, y)
    w = _weak32_at(s, n - 32, (n * _K1) & _U64, _K0)
    z = (z + _mix(v[1]) * _K1) & _U64
    x = (_rot((z + x) & _U64, 39) * _K1) & _U64
    y = (_rot(y, 33) * _K1) & _U64
    pos = 0
    left = (n - 1) & ~63
    while True:
        x = (_rot((x + y + v[0] + _w64(s, pos + 16)) & _U64, 37) * _K1) & _U64
        y = (_rot((y + v[1] + _w64(s, pos + 48)) & _U64, 42) * _K1) & _U64
        x ^= w[1]
        y ^= v[0]
        z = _rot(z ^ w[0], 33)
        v = _weak32_at(s, pos, (v[1] * _K1) & _U64, (x + w[0]) & _U64)
        w = _weak32_at(s, pos + 32, (z + w[1]) & _U64, y)
        z, x = x, z
        pos += 64
        left -= 64
        if left == 0:
            break
    return _len16(
        (_len16(v[0], w[0]) + _mix(y) * _K1 + z) & _U64,
        (_len16(v[1], w[1]) + x) & _U64,
    )


def category_hash(text: str) -> int:
    """The 32-bit hash CatBoost gives a category's text (``CalcCatFeatureHash``)."""
    return _city64(text.encode("utf-8")) & 0xFFFFFFFF


def _table_key(hash32: int) -> int:
    """The counter-table key of a single-feature counter for a category hash."""
    signed = hash32 - (1 << 32) if hash32 >= 1 << 31 else hash32
    return (_MAGIC2 * (signed & _U64)) & _U64


def _key_hash(key: int) -> int | None:
    """The category hash behind a single-feature counter-table key (``None``: an empty slot)."""
    value = (key * _MAGIC2_INVERSE) & _U64
    if value < 1 << 31:
        return value
    if value >= _U64 - (1 << 31) + 1:
        return value & 0xFFFFFFFF
    return None


# -- reading the model ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Ctr:
    """One counter (CTR) of a single categorical feature, as CatBoost evaluates it."""

    feature: int  # flat column
    table: Mapping[int, tuple[int, ...]]  # category hash -> its stored counts
    kind: str
    target_border: int
    prior_num: float
    prior_denom: float
    shift: float
    scale: float
    denominator: int  # Counter / FeatureFreq
    classes: int  # counts per category (Borders, Buckets)

    def value(self, counts: tuple[int, ...] | None) -> np.float32:
        """CatBoost's float32 counter value of a category with ``counts`` (``None``: unknown)."""
        f = np.float32
        if self.kind in ("Counter", "FeatureFreq"):
            good, total = (0 if counts is None else counts[0]), self.denominator
        elif counts is None:
            good, total = 0, 0
        elif self.kind == "Buckets":
            good, total = counts[self.target_border], sum(counts)
        elif self.classes > 2:
            total = sum(counts[: self.target_border + 1])
            good = sum(counts[self.target_border + 1 :])
            total += good
        else:
            good, total = counts[1], counts[0] + counts[1]
        ctr = (f(good) + f(self.prior_num)) / (f(total) + f(self.prior_denom))
        return np.float32((ctr + f(self.shift)) * f(self.scale))


@dataclass(frozen=True)
class _Split:
    """One split: ``x > border`` (float) or a category set sent right (categorical)."""

    feature: int
    border: float = 0.0  # float splits: the float32 border
    decider: tuple[Any, ...] | None = None  # categorical: ("onehot", hash) or ("ctr", ctr index, border)


@dataclass(frozen=True)
class _Codes:
    """How one categorical feature's category hashes become the codes its splits partition."""

    codes: Mapping[int, int]  # category hash -> code
    unknown: int  # the code of any other category
    n_codes: int
    right: Mapping[tuple[Any, ...], np.ndarray]  # decider -> bool per code, True where it goes right


@dataclass(frozen=True)
class _Reading:
    """A CatBoost model's trees in Probity's terms, shared by every class it explains."""

    trees: tuple[tuple[Any, ...], ...]  # ("oblivious", splits, values (L, D), weights) or ("nodes", root)
    scale: float
    bias: tuple[float, ...]
    n_features: int
    float_features: tuple[int, ...]
    missing_right: frozenset[int]  # float columns whose NaN goes right (nan_value_treatment AsTrue)
    categories: Mapping[int, _Codes]  # per categorical column
    categorical_columns: tuple[int, ...]
    refusal: str | None


_CACHE: weakref.WeakKeyDictionary[Any, _Reading] = weakref.WeakKeyDictionary()
_CACHE_LOCK = threading.Lock()


def is_catboost_model(model: Any) -> bool:
    """Whether ``model`` is a CatBoost model read from its own file."""
    from engine.models.catboost_adapter import CatBoostModel

    return isinstance(model, CatBoostModel)


def _model_json(model: Any) -> dict[str, Any]:
    """CatBoost's own JSON form of the model (it writes JSON to files only: a private folder)."""
    lock = getattr(model, "_lock", None)
    with tempfile.TemporaryDirectory(prefix="probity-catboost-") as folder:
        path = Path(folder) / "model.json"
        if lock is not None:
            with lock:
                model.booster.save_model(str(path), format="json")
        else:
            model.booster.save_model(str(path), format="json")
        doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return doc


def _reading(model: Any) -> _Reading:
    with _CACHE_LOCK:
        cached = _CACHE.get(model)
    if cached is not None:
        return cached
    reading = _read(_model_json(model), name=str(model.name), n_features=int(model.info.n_features))
    with _CACHE_LOCK:
        _CACHE[model] = reading
    return reading


def _bad(name: str, what: str) -> AnalysisError:
    return AnalysisError(f"TreeSHAP cannot read the trees of the CatBoost model {name}: {what}.")


def _read(doc: Mapping[str, Any], *, name: str, n_features: int) -> _Reading:
    info = doc.get("features_info", {})
    floats = list(info.get("float_features", []))
    cats = list(info.get("categorical_features", []))
    ctr_specs = list(info.get("ctrs", []))
    float_column = {int(f["feature_index"]): int(f["flat_feature_index"]) for f in floats}
    cat_column = {int(c["feature_index"]): int(c["flat_feature_index"]) for c in cats}
    missing_right = frozenset(
        int(f["flat_feature_index"]) for f in floats if str(f.get("nan_value_treatment", "AsIs")) == "AsTrue"
    )
    scale, bias_raw = doc.get("scale_and_bias", [1.0, [0.0]])
    bias = tuple(float(b) for b in (bias_raw if isinstance(bias_raw, list) else [bias_raw]))

    # Feature combinations, and counters Probity does not evaluate, are refused as a whole.
    refusal = None
    for spec in ctr_specs:
        elements = spec.get("elements", [])
        if len(elements) != 1 or elements[0].get("combination_element") != "cat_feature_value":
            refusal = _COMBINATIONS.format(name=name)
            break
        if str(spec.get("ctr_type")) not in _CTR_TYPES:
            refusal = (
                f"TreeSHAP cannot explain the CatBoost model {name}: it splits on {spec.get('ctr_type')} counters, "
                "which Probity does not evaluate; KernelSHAP explains it instead."
            )
    # split_index numbers the model's binary features: every float border, every one-hot
    # value, then every counter border, in the order features_info lists them.
    binary: list[_Split] = []
    for f in floats:
        column = int(f["flat_feature_index"])
        binary.extend(_Split(column, border=float(np.float32(b))) for b in f.get("borders", []))
    for c in cats:
        binary.extend(_Split(int(c["flat_feature_index"]), decider=("onehot", int(v))) for v in c.get("values", []))
    ctrs: list[_Ctr] = []
    if refusal is None:
        tables = doc.get("ctr_data", {})
        for index, spec in enumerate(ctr_specs):
            column = cat_column[int(spec["elements"][0]["cat_feature_index"])]
            ctrs.append(_ctr(spec, tables, column, name))
            binary.extend(_Split(column, decider=("ctr", index, float(np.float32(b)))) for b in spec.get("borders", []))

    def split(raw: Mapping[str, Any]) -> _Split:
        kind = raw.get("split_type")
        if kind in ("OnlineCtr", "Ctr") and refusal is not None:
            return _Split(-1)
        index = int(raw.get("split_index", -1))
        if not 0 <= index < len(binary):
            raise _bad(name, f"a split names binary feature {index}, which the model does not define")
        found = binary[index]
        # The split's own fields must agree with the feature list it was matched in.
        if kind == "FloatFeature":
            ok = found.decider is None and found.feature == float_column.get(int(raw["float_feature_index"]), -2)
            ok = ok and found.border == float(np.float32(raw["border"]))
        elif kind == "OneHotFeature":
            ok = found.decider == ("onehot", int(raw["value"]))
            ok = ok and found.feature == cat_column.get(int(raw["cat_feature_index"]), -2)
        elif kind == "OnlineCtr":
            ok = found.decider is not None and found.decider[0] == "ctr"
            if ok and found.decider is not None:
                ctr = ctrs[int(found.decider[1])]
                ok = found.decider[2] == float(np.float32(raw["border"]))
                ok = ok and int(raw.get("ctr_target_border_idx", 0)) == ctr.target_border
        else:
            raise _bad(name, f"it holds a {kind} split, which TreeSHAP does not read")
        if not ok:
            raise _bad(name, f"split {index} does not match the features the model lists")
        return found

    trees: list[tuple[Any, ...]] = []
    if "oblivious_trees" in doc:
        for t in doc["oblivious_trees"]:
            splits = tuple(split(s) for s in t.get("splits", []))
            n_leaves = 1 << len(splits)
            values = np.asarray(t["leaf_values"], dtype=np.float64)
            if values.size % n_leaves:
                raise _bad(name, "a tree's leaf values do not fill its leaves")
            weights = np.asarray(t.get("leaf_weights", np.ones(n_leaves)), dtype=np.float64)
            if weights.shape != (n_leaves,):
                raise _bad(name, "a tree's leaf weights do not match its leaves")
            trees.append(("oblivious", splits, values.reshape(n_leaves, -1), weights))
    else:
        for t in doc.get("trees", []):
            trees.append(("nodes", _nodes(t, split, name)))
    used = [s for tree in trees for s in _tree_splits(tree)]
    categories = {} if refusal is not None else _category_codes(used, ctrs, cats)
    return _Reading(
        trees=tuple(trees),
        scale=float(scale),
        bias=bias,
        n_features=n_features,
        float_features=tuple(sorted(int(f["flat_feature_index"]) for f in floats)),
        missing_right=missing_right,
        categories=categories,
        categorical_columns=tuple(sorted(cat_column.values())),
        refusal=refusal,
    )


def _ctr(spec: Mapping[str, Any], tables: Mapping[str, Any], column: int, name: str) -> _Ctr:
    identifier = str(spec.get("identifier", ""))
    data = tables.get(identifier)
    if data is None:
        raise _bad(name, "a counter's table is missing")
    stride = int(data.get("hash_stride", 0))
    flat = list(data.get("hash_map", []))
    if stride < 2 or len(flat) % stride:
        raise _bad(name, "a counter's table is damaged")
    table: dict[int, tuple[int, ...]] = {}
    for i in range(0, len(flat), stride):
        key = int(flat[i])
        hash32 = _key_hash(key)
        if hash32 is None:  # CatBoost's empty-slot marker (2^64 - 1), or a key no single category makes
            continue
        table[hash32] = tuple(int(v) for v in flat[i + 1 : i + stride])
    return _Ctr(
        feature=column,
        table=table,
        kind=str(spec["ctr_type"]),
        target_border=int(spec.get("target_border_idx", 0)),
        prior_num=float(spec.get("prior_numerator", 0.0)),
        prior_denom=float(spec.get("prior_denomerator", 1.0)),
        shift=float(spec.get("shift", 0.0)),
        scale=float(spec.get("scale", 1.0)),
        denominator=int(data.get("counter_denominator", 0)),
        classes=stride - 1,
    )


def _nodes(node: Mapping[str, Any], split: Any, name: str) -> Any:
    """A non-symmetric tree as nested ``(split, left, right)`` / ``(values, weight)`` tuples."""
    if "value" in node:
        value = node["value"]
        values = np.asarray(value if isinstance(value, list) else [value], dtype=np.float64)
        return (values, float(node.get("weight", 1.0)))
    return (split(node["split"]), _nodes(node["left"], split, name), _nodes(node["right"], split, name))


def _tree_splits(tree: tuple[Any, ...]) -> Iterable[_Split]:
    if tree[0] == "oblivious":
        yield from tree[1]
        return
    todo = [tree[1]]
    while todo:
        node = todo.pop()
        if len(node) == 3:
            yield node[0]
            todo.extend(node[1:])


def _category_codes(
    splits: Sequence[_Split], ctrs: Sequence[_Ctr], cats: Sequence[Mapping[str, Any]]
) -> dict[int, _Codes]:
    """Per categorical column: the codes of the categories every split sends alike."""
    deciders: dict[int, list[tuple[Any, ...]]] = {}
    for s in splits:
        if s.decider is not None and s.decider not in deciders.setdefault(s.feature, []):
            deciders[s.feature].append(s.decider)
    out: dict[int, _Codes] = {}
    for c in cats:
        column = int(c["flat_feature_index"])
        own = deciders.get(column, [])
        known: set[int] = set()
        for d in own:
            if d[0] == "onehot":
                known.add(d[1] & 0xFFFFFFFF)
            else:
                known.update(ctrs[d[1]].table)
        hashes = sorted(known)
        # Row j: the sides of known category j, and the last row those of an unknown one.
        sides = np.zeros((len(hashes) + 1, len(own)), dtype=bool)
        for k, d in enumerate(own):
            if d[0] == "onehot":
                value = d[1] & 0xFFFFFFFF
                sides[:-1, k] = [h == value for h in hashes]
            else:
                ctr, border = ctrs[d[1]], np.float32(d[2])
                sides[:-1, k] = [ctr.value(ctr.table.get(h)) > border for h in hashes]
                sides[-1, k] = ctr.value(None) > border
        patterns, code_of = np.unique(sides, axis=0, return_inverse=True)
        code_of = np.asarray(code_of).reshape(-1)
        out[column] = _Codes(
            codes={h: int(code_of[j]) for j, h in enumerate(hashes)},
            unknown=int(code_of[-1]),
            n_codes=int(patterns.shape[0]),
            right={d: patterns[:, k].copy() for k, d in enumerate(own)},
        )
    return out


# -- the reduction -----------------------------------------------------------------------------------


def catboost_refusal(model: Any) -> str | None:
    """Why exact TreeSHAP cannot explain this CatBoost model (one sentence), or ``None``."""
    try:
        return _reading(model).refusal
    except AnalysisError as exc:
        return exc.message


def _output(model: Any, class_index: int | None, dimension: int) -> tuple[int, float]:
    """The leaf-value column of the explained output and the sign of its margin."""
    classes = model.info.classes
    n_classes = len(classes or ())
    if not n_classes:
        return 0, 1.0
    k = (1 if n_classes == 2 else 0) if class_index is None else int(class_index)
    if not 0 <= k < n_classes:
        raise AnalysisError(f"The CatBoost model has {n_classes} classes, so class index {k} does not exist.")
    if dimension == 1:
        return 0, (-1.0 if k == 0 else 1.0)
    return k, 1.0


def catboost_tree_model(model: Any, *, class_index: int | None = None) -> TreeModel:
    """The trees of one output of a CatBoost model, in its raw output (margin) space.

    Parameters
    ----------
    model: a :class:`~engine.models.catboost_adapter.CatBoostModel`.
    class_index: the class whose margin is explained (classifiers); for a binary
        model class 0's margin is the negated one of class 1.  ``None``: the positive
        class of a binary model, else the first class; ignored for regressors.

    Raises
    ------
    AnalysisError
        The model has counters over feature combinations (:func:`catboost_refusal`)
        or holds something TreeSHAP cannot reproduce exactly.
    """
    reading = _reading(model)
    if reading.refusal is not None:
        raise AnalysisError(reading.refusal)
    column, sign = _output(model, class_index, len(reading.bias))
    scale = sign * reading.scale
    trees = tuple(_tree(t, reading, column, scale) for t in reading.trees)
    return TreeModel(
        trees=trees,
        offset=sign * reading.bias[column],
        output_space=model.info.raw_output_space,
        n_features=reading.n_features,
        float32_inputs=True,
        estimator_type="CatBoost model",
    )


class _Builder:
    """Flat arrays of one tree, grown node by node."""

    def __init__(self, reading: _Reading) -> None:
        self.reading = reading
        self.left: list[int] = []
        self.right: list[int] = []
        self.feature: list[int] = []
        self.threshold: list[float] = []
        self.missing_left: list[bool] = []
        self.value: list[float] = []
        self.cover: list[float] = []
        self.categorical: list[bool] = []
        self.sent_left: dict[int, np.ndarray] = {}
        self.known: dict[int, int] = {}

    def node(self) -> int:
        self.left.append(-1)
        self.right.append(-1)
        self.feature.append(-1)
        self.threshold.append(0.0)
        self.missing_left.append(False)
        self.value.append(0.0)
        self.cover.append(0.0)
        self.categorical.append(False)
        return len(self.left) - 1

    def split(self, i: int, s: _Split, left: int, right: int, cover: float) -> None:
        self.left[i], self.right[i], self.feature[i], self.cover[i] = left, right, s.feature, cover
        if s.decider is None:
            self.threshold[i] = s.border
            self.missing_left[i] = s.feature not in self.reading.missing_right
            return
        codes = self.reading.categories[s.feature]
        self.categorical[i] = True
        self.sent_left[i] = np.flatnonzero(~codes.right[s.decider])
        self.known[i] = codes.n_codes

    def leaf(self, i: int, value: float, cover: float) -> None:
        self.value[i], self.cover[i] = value, cover

    def tree(self) -> Tree:
        n = len(self.left)
        tree = Tree(
            left=np.asarray(self.left, dtype=np.int64),
            right=np.asarray(self.right, dtype=np.int64),
            feature=np.asarray(self.feature, dtype=np.int64),
            threshold=np.asarray(self.threshold, dtype=np.float64),
            missing_left=np.asarray(self.missing_left, dtype=bool),
            value=np.asarray(self.value, dtype=np.float64),
            cover=np.asarray(self.cover, dtype=np.float64),
        )
        if not self.sent_left:
            return tree
        words = max(1, (max(self.known.values()) + 31) // 32)
        sent = np.zeros((n, words), dtype=np.uint32)
        known = np.zeros((n, words), dtype=np.uint32)
        for i, codes in self.sent_left.items():
            _set_bits(sent[i], codes)
            _set_bits(known[i], np.arange(self.known[i]))
        return Tree(
            left=tree.left,
            right=tree.right,
            feature=tree.feature,
            threshold=tree.threshold,
            missing_left=tree.missing_left,
            value=tree.value,
            cover=tree.cover,
            categorical=np.asarray(self.categorical, dtype=bool),
            left_categories=sent,
            known_categories=known,
            # Every category maps to a known code; an out-of-range code (never written) goes left.
            unknown_left=np.ones(n, dtype=bool),
        )


def _set_bits(row: np.ndarray, codes: np.ndarray) -> None:
    codes = np.asarray(codes, dtype=np.int64)
    np.bitwise_or.at(row, codes // 32, (np.uint32(1) << (codes % 32).astype(np.uint32)))


def _tree(tree: tuple[Any, ...], reading: _Reading, column: int, scale: float) -> Tree:
    build = _Builder(reading)
    if tree[0] == "oblivious":
        _, splits, values, weights = tree
        depth = len(splits)
        # Root = the last split; the leaves, left to right, are in CatBoost's leaf-index order.
        level = [build.node()]
        for d in range(depth):
            s = splits[depth - 1 - d]
            nxt: list[int] = []
            for i in level:
                left, right = build.node(), build.node()
                nxt.extend((left, right))
                build.split(i, s, left, right, 0.0)
            level = nxt
        for leaf, i in enumerate(level):
            build.leaf(i, scale * float(values[leaf, column]), float(weights[leaf]))
    else:
        root = build.node()
        todo = [(root, tree[1])]
        order: list[tuple[int, Any]] = []
        while todo:
            i, node = todo.pop()
            order.append((i, node))
            if len(node) == 3:
                left, right = build.node(), build.node()
                build.split(i, node[0], left, right, 0.0)
                todo.extend([(left, node[1]), (right, node[2])])
            else:
                values, weight = node
                if column >= values.shape[0]:
                    raise AnalysisError("A CatBoost tree's leaves have fewer outputs than the model.")
                build.leaf(i, scale * float(values[column]), weight)
    # Covers of splits: the sum of the leaf weights below (children come after their parents).
    for i in range(len(build.left) - 1, -1, -1):
        if build.left[i] >= 0:
            build.cover[i] = build.cover[build.left[i]] + build.cover[build.right[i]]
    return build.tree()


def catboost_matrix(model: Any, X: Any) -> np.ndarray:
    """The float64 matrix the reduced trees compare for the raw rows ``X`` (a DataFrame):
    numeric features as CatBoost is handed them, categorical ones as the codes of
    :func:`catboost_tree_model` (the text CatBoost hashes, hashed and coded)."""
    import pandas as pd

    reading = _reading(model)
    data = model.library_input(X)
    out = np.zeros((len(data), reading.n_features), dtype=np.float64)
    for j, name in enumerate(data.columns):
        column = data[name]
        codes = reading.categories.get(j)
        if j in reading.categorical_columns:
            if codes is None:
                continue  # a categorical feature no split reads: any constant will do
            index, uniques = pd.factorize(column, use_na_sentinel=False)
            mapped = np.asarray(
                [codes.codes.get(category_hash(str(u)), codes.unknown) for u in uniques], dtype=np.float64
            )
            out[:, j] = mapped[index] if len(uniques) else 0.0
        else:
            out[:, j] = column.to_numpy(dtype=np.float64, na_value=np.nan)
    return out

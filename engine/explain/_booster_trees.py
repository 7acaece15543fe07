"""XGBoost and LightGBM boosters reduced to the flat trees TreeSHAP reads.

:func:`booster_tree_model` turns an :class:`~engine.models.booster_adapter.XGBoostModel`
or :class:`~engine.models.booster_adapter.LightGBMModel` into a
:class:`~engine.explain._trees.TreeModel` whose leaf values are in the library's
raw output (margin) space, with the base margin as its offset, so that
``offset + sum of reached leaves`` is the library's own raw prediction of one
output (a class's margin, negated for class 0 of a binary model).  The trees are
read from the library itself (XGBoost ``save_raw("json")``, LightGBM
``model_to_string()``), and every split is rewritten into the ``x <= threshold``,
``missing_left`` and category-bitset form of :class:`~engine.explain._trees.Tree`
so that each row takes exactly the library's path:

XGBoost
    Inputs are float32 and a row goes left when ``x < split_condition`` (both
    float32), which for float32 ``x`` is ``x <= the float32 just below the
    condition``.  NaN goes by ``default_left``.  A categorical split lists the
    categories sent *right*; every other code (negative ones, codes past the list)
    goes left.  The node cover is the hessian sum (``sum_hessian``), which
    ``pred_contribs`` uses.  The base margin is ``base_score`` through the
    objective's link; dart trees are scaled by their ``weight_drop``.

LightGBM
    Inputs are float64; values within ``1e-35`` of zero are zero (its sparse row
    reader).  A numerical split sends ``x <= threshold`` left; by its missing type,
    NaN counts as 0 (``None``), as missing (``NaN``: ``default_left``) or, with
    zeros, as missing (``Zero``: zeros become NaN here).  A categorical split sends
    the codes in its bitset left and everything else (NaN, negative codes,
    codes past the bitset) right, the code being the value truncated towards
    zero.  The cover is the data count (``internal_count``/``leaf_count``), which
    ``pred_contrib`` uses.  The initial score lives in the first trees' leaves, so
    the offset is 0; a random forest's raw output is the sum of its leaves too.

``tests/engine/test_booster_treeshap.py`` checks the leaves reached against each
library's ``pred_leaf`` and the SHAP values against its own TreeSHAP.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from engine.errors import AnalysisError
from engine.explain._trees import Tree, TreeModel

__all__ = ["is_booster_model", "booster_tree_model", "booster_matrix", "booster_margin"]

# Category codes a booster's categorical split may name (bitsets of up to 2,048 words a node).
_MAX_CATEGORY = 65_536
# LightGBM's kZeroThreshold (a float 1e-35f, compared in double).
_LGB_ZERO = float(np.float32(1e-35))

# XGBoost objectives whose base_score is a probability (logit link) or a mean (log link).
_XGB_LOGIT = ("binary:logistic", "binary:logitraw", "reg:logistic")
_XGB_LOG = ("count:poisson", "reg:gamma", "reg:tweedie")


def is_booster_model(model: Any) -> bool:
    """Whether ``model`` is an XGBoost or LightGBM booster read from its own file."""
    from engine.models.booster_adapter import BoosterModel

    # CatBoost models (engine.models.catboost_adapter) are BoosterModels too, but TreeSHAP does not read their trees.
    return isinstance(model, BoosterModel) and model.library in ("xgboost", "lightgbm")


def booster_matrix(model: Any, X: Any) -> np.ndarray:
    """The float64 matrix the booster's trees compare for the raw rows ``X`` (a DataFrame):
    numeric features as given, categorical ones as their codes (NaN where missing)."""
    import pandas as pd

    data = model.library_input(X)
    if isinstance(data, pd.DataFrame):
        columns = []
        for name in data.columns:
            column = data[name]
            if isinstance(column.dtype, pd.CategoricalDtype):
                codes = column.cat.codes.to_numpy().astype(np.float64)
                codes[codes < 0] = np.nan
                columns.append(codes)
            else:
                columns.append(column.to_numpy(dtype=np.float64, na_value=np.nan))
        return np.column_stack(columns) if columns else np.zeros((len(data), 0))
    return np.asarray(data, dtype=np.float64)


def booster_margin(model: Any, X: Any, class_index: int | None) -> np.ndarray:
    """The library's raw output (margin) of the explained output for raw rows ``X``, ``(n,)``."""
    raw = np.asarray(model.predict_raw_output(X), dtype=np.float64)
    if raw.ndim == 2:
        return raw[:, 0 if class_index is None else class_index]
    return -raw if class_index == 0 else raw


def booster_tree_model(model: Any, *, class_index: int | None = None) -> TreeModel:
    """The trees of one output of an XGBoost or LightGBM booster, in margin space.

    Parameters
    ----------
    model: an :class:`~engine.models.booster_adapter.BoosterModel`.
    class_index: the class whose margin is explained (classifiers); for a binary
        model class 0's margin is the negated one of class 1.  ``None``: the positive
        class of a binary model, else the first class; ignored for regressors.

    Returns
    -------
    TreeModel
        Its ``output_space`` is the booster's raw output space.

    Raises
    ------
    AnalysisError
        The booster holds something TreeSHAP cannot reproduce exactly (linear trees,
        category codes past 65,536, mixed missing-value rules on one feature).
    """
    info = model.info
    n_classes = len(info.classes or ())
    if n_classes:
        k = (1 if n_classes == 2 else 0) if class_index is None else int(class_index)
        if not 0 <= k < n_classes:
            raise AnalysisError(f"The booster has {n_classes} classes, so class index {k} does not exist.")
    else:
        k = None
    if info.library == "xgboost":
        return _xgboost(model, k)
    if info.library == "lightgbm":
        return _lightgbm(model, k)
    raise AnalysisError(f"TreeSHAP cannot read the trees of a {info.library} model.")


def _group(k: int | None, n_groups: int) -> tuple[int, float]:
    """The tree group (output column) of the explained output, and the sign of its margin."""
    if k is None or n_groups > 1:
        return (0 if k is None else k), 1.0
    return 0, (-1.0 if k == 0 else 1.0)


def _category_bitsets(sets: Mapping[int, np.ndarray], n_nodes: int, what: str) -> np.ndarray:
    """``(n_nodes, W)`` uint32 bitsets with ``sets[node]``'s codes set."""
    top = max((int(v.max()) for v in sets.values() if v.size), default=0)
    if top >= _MAX_CATEGORY:
        raise AnalysisError(
            f"TreeSHAP reads categorical splits on codes below {_MAX_CATEGORY:,}, but this {what} splits on "
            f"category code {top:,}."
        )
    words = max(1, top // 32 + 1)
    out = np.zeros((n_nodes, words), dtype=np.uint32)
    for node, codes in sets.items():
        codes = codes.astype(np.int64)
        np.bitwise_or.at(out[node], codes // 32, (np.uint32(1) << (codes % 32).astype(np.uint32)))
    return out


# -- XGBoost ----------------------------------------------------------------------------------------


def _xgb_base_margin(learner: Mapping[str, Any], objective: str, column: int) -> float:
    text = str(learner["learner_model_param"].get("base_score", "0.5")).strip()
    parts = text[1:-1].split(",") if text.startswith("[") else [text]
    score = float(np.float32(float(parts[column] if len(parts) > 1 else parts[0])))
    if objective in _XGB_LOGIT:
        return float(np.log(score) - np.log1p(-score))
    if objective in _XGB_LOG:
        return float(np.log(score))
    return score


def _xgb_tree(tree: Mapping[str, Any], *, scale: float) -> Tree:
    left = np.asarray(tree["left_children"], dtype=np.int64)
    right = np.asarray(tree["right_children"], dtype=np.int64)
    leaf = left < 0
    n = left.shape[0]
    condition = np.asarray(tree["split_conditions"], dtype=np.float64).astype(np.float32)
    # x < c in float32 is x <= the float32 below c (x is float32 too).
    below = np.nextafter(condition, np.float32(-np.inf)).astype(np.float64)
    split_type = np.asarray(tree.get("split_type", np.zeros(n)), dtype=np.int64)
    categorical = (split_type == 1) & ~leaf
    default_left = np.asarray(tree["default_left"], dtype=np.int64).astype(bool)
    hessian = np.asarray(tree["sum_hessian"], dtype=np.float64).astype(np.float32).astype(np.float64)
    out = Tree(
        left=np.where(leaf, -1, left),
        right=np.where(leaf, -1, right),
        feature=np.where(leaf, -1, np.asarray(tree["split_indices"], dtype=np.int64)),
        threshold=np.where(leaf | categorical, 0.0, below),
        missing_left=default_left & ~leaf,
        value=np.where(leaf, condition.astype(np.float64) * scale, 0.0),
        cover=hessian,
    )
    if not categorical.any():
        return out
    nodes = np.asarray(tree.get("categories_nodes", []), dtype=np.int64)
    segments = np.asarray(tree.get("categories_segments", []), dtype=np.int64)
    sizes = np.asarray(tree.get("categories_sizes", []), dtype=np.int64)
    cats = np.asarray(tree.get("categories", []), dtype=np.int64)
    right_sets = {int(nd): cats[s : s + z] for nd, s, z in zip(nodes, segments, sizes)}
    # The listed categories go right and any other code left: "known" are the listed
    # ones (none sent left), everything else goes by unknown_left.
    known = _category_bitsets(right_sets, n, "XGBoost booster")
    return Tree(
        left=out.left,
        right=out.right,
        feature=out.feature,
        threshold=out.threshold,
        missing_left=out.missing_left,
        value=out.value,
        cover=out.cover,
        categorical=categorical,
        left_categories=np.zeros_like(known),
        known_categories=known,
        unknown_left=np.ones(n, dtype=bool),
    )


def _xgboost(model: Any, k: int | None) -> TreeModel:
    info = model.info
    doc = json.loads(bytes(model.booster.save_raw("json")))
    learner = doc["learner"]
    booster = learner["gradient_booster"]
    weights: Any = None
    if booster["name"] == "dart":
        trees_doc = booster["gbtree"]["model"]
        weights = booster.get("weight_drop")
    else:
        trees_doc = booster["model"]
    n_groups = max(int(learner["learner_model_param"].get("num_class", "0")), 1)
    column, sign = _group(k, n_groups)
    tree_info = [int(g) for g in trees_doc["tree_info"]]
    trees = tuple(
        _xgb_tree(t, scale=sign * (1.0 if weights is None else float(weights[i])))
        for i, (t, g) in enumerate(zip(trees_doc["trees"], tree_info))
        if g == column
    )
    offset = sign * _xgb_base_margin(learner, info.objective, column)
    return TreeModel(
        trees=trees,
        offset=offset,
        output_space=info.raw_output_space,
        n_features=info.n_features,
        float32_inputs=True,
        estimator_type="XGBoost booster",
    )


# -- LightGBM ---------------------------------------------------------------------------------------


def _lgb_text_trees(text: str) -> tuple[dict[str, str], list[dict[str, str]]]:
    """The header and the trees of LightGBM model text, each as ``key -> value text`` (a bare
    header line such as ``average_output`` maps to ``""``)."""
    head, _, rest = text.partition("\nTree=")
    body = ("Tree=" + rest).split("\nend of trees", 1)[0] if rest else ""

    def fields(block: str) -> dict[str, str]:
        out: dict[str, str] = {}
        for line in block.splitlines():
            key, eq, value = line.partition("=")
            if eq or (key.strip() and " " not in key.strip()):
                out[key.strip()] = value.strip()
        return out

    blocks = body.split("\nTree=") if body else []
    return fields(head), [fields(b.split("\n", 1)[1] if "\n" in b else "") for b in blocks]


def _numbers(fields: Mapping[str, str], key: str, dtype: Any) -> np.ndarray:
    text = fields.get(key, "").strip()
    if not text:
        return np.zeros(0, dtype=dtype)
    return np.asarray([float(v) for v in text.split(" ")], dtype=np.float64).astype(dtype)


def _lgb_tree(fields: Mapping[str, str], *, scale: float, missing_types: dict[int, set[int]]) -> Tree:
    n_leaves = int(fields.get("num_leaves", "1"))
    leaf_value = _numbers(fields, "leaf_value", np.float64)
    if n_leaves <= 1:
        return Tree(
            left=np.array([-1]),
            right=np.array([-1]),
            feature=np.array([-1]),
            threshold=np.zeros(1),
            missing_left=np.zeros(1, dtype=bool),
            value=np.array([float(leaf_value[0]) * scale if leaf_value.size else 0.0]),
            cover=np.ones(1),
        )
    if fields.get("is_linear", "0") not in ("0", ""):
        raise AnalysisError("TreeSHAP cannot explain a LightGBM model with linear trees (linear_tree=true).")
    m = n_leaves - 1  # internal nodes 0..m-1, then leaves m..m+n_leaves-1
    n = m + n_leaves
    children = {
        key: np.asarray(_numbers(fields, key, np.float64), dtype=np.int64) for key in ("left_child", "right_child")
    }

    def node(child: np.ndarray) -> np.ndarray:
        return np.where(child >= 0, child, m + ~child)

    decision = _numbers(fields, "decision_type", np.float64).astype(np.int64)
    categorical = np.zeros(n, dtype=bool)
    categorical[:m] = (decision & 1).astype(bool)
    default_left = ((decision >> 1) & 1).astype(bool)
    missing_type = (decision >> 2) & 3  # 0 None, 1 Zero, 2 NaN
    threshold_raw = _numbers(fields, "threshold", np.float64)
    feature = np.full(n, -1, dtype=np.int64)
    feature[:m] = _numbers(fields, "split_feature", np.float64).astype(np.int64)
    threshold = np.zeros(n)
    threshold[:m] = np.where(categorical[:m], 0.0, threshold_raw)
    missing_left = np.zeros(n, dtype=bool)
    # None: NaN counts as 0; Zero: NaN and zeros (made NaN by the input map) by default_left; NaN: by default_left.
    missing_left[:m] = np.where(missing_type == 0, 0.0 <= threshold_raw, default_left) & ~categorical[:m]
    for f, kind in zip(feature[:m][~categorical[:m]], missing_type[~categorical[:m]]):
        missing_types.setdefault(int(f), set()).add(int(kind))
    value = np.zeros(n)
    value[m:] = leaf_value * scale
    cover = np.zeros(n)
    cover[:m] = _numbers(fields, "internal_count", np.float64)
    cover[m:] = _numbers(fields, "leaf_count", np.float64)
    left = np.full(n, -1, dtype=np.int64)
    right = np.full(n, -1, dtype=np.int64)
    left[:m] = node(children["left_child"])
    right[:m] = node(children["right_child"])
    tree = Tree(
        left=left,
        right=right,
        feature=feature,
        threshold=threshold,
        missing_left=missing_left,
        value=value,
        cover=cover,
    )
    if not categorical.any():
        return tree
    bounds = _numbers(fields, "cat_boundaries", np.float64).astype(np.int64)
    words = _numbers(fields, "cat_threshold", np.float64).astype(np.uint32)
    left_sets: dict[int, np.ndarray] = {}
    for i in np.flatnonzero(categorical[:m]):
        c = int(threshold_raw[i])
        bits = np.unpackbits(words[bounds[c] : bounds[c + 1]].view(np.uint8), bitorder="little")
        left_sets[int(i)] = np.flatnonzero(bits)
    sent_left = _category_bitsets(left_sets, n, "LightGBM booster")
    return Tree(
        left=tree.left,
        right=tree.right,
        feature=tree.feature,
        threshold=tree.threshold,
        missing_left=tree.missing_left,
        value=tree.value,
        cover=tree.cover,
        categorical=categorical,
        left_categories=sent_left,
        known_categories=sent_left,
        unknown_left=np.zeros(n, dtype=bool),
    )


def _lgb_input_map(
    categorical: np.ndarray, zero_missing: np.ndarray, n_features: int
) -> Callable[[np.ndarray], np.ndarray]:
    def convert(X: np.ndarray) -> np.ndarray:
        X = np.array(X, dtype=np.float64, copy=True)
        # LightGBM's dense row reader keeps only values beyond kZeroThreshold (the rest are 0).
        X[np.abs(X) <= _LGB_ZERO] = 0.0
        if categorical.size:
            # static_cast<int>: truncation towards zero (-0.5 is category 0); NaN stays missing.
            X[:, categorical] = np.trunc(X[:, categorical])
        if zero_missing.size:
            part = X[:, zero_missing]
            part[part == 0.0] = np.nan
            X[:, zero_missing] = part
        return X

    return convert


def _lightgbm(model: Any, k: int | None) -> TreeModel:
    info = model.info
    lock = getattr(model, "_lock", None)
    if lock is not None:
        with lock:
            text = model.booster.model_to_string(num_iteration=-1)
    else:
        text = model.booster.model_to_string(num_iteration=-1)
    header, tree_fields = _lgb_text_trees(text)
    per_iteration = int(header.get("num_tree_per_iteration", "1"))
    column, sign = _group(k, per_iteration)
    # A random forest (average_output) needs no scaling: LightGBM's raw prediction and its own
    # contributions both add up the leaves as the file holds them (checked by the tests).
    scale = sign
    missing_types: dict[int, set[int]] = {}
    trees = tuple(
        _lgb_tree(f, scale=scale, missing_types=missing_types)
        for i, f in enumerate(tree_fields)
        if i % per_iteration == column
    )
    # Zeros become missing per column, so a feature must follow the Zero rule in every split or in none.
    zero_features = {f for f, kinds in missing_types.items() if 1 in kinds}
    mixed = sorted(f for f in zero_features if len(missing_types[f]) > 1)
    if mixed:
        raise AnalysisError(
            f"TreeSHAP cannot explain this LightGBM model: feature {mixed[0]} is split with different "
            "missing-value rules in different trees."
        )
    cat_features = sorted(
        {int(f) for t in trees if t.categorical is not None for f in t.feature[t.categorical]}
        | {int(i) for i in info.categorical}
    )
    return TreeModel(
        trees=trees,
        offset=0.0,
        output_space=info.raw_output_space,
        n_features=info.n_features,
        float32_inputs=False,
        estimator_type="LightGBM booster",
        input_map=_lgb_input_map(
            np.asarray(cat_features, dtype=np.int64), np.asarray(sorted(zero_features), dtype=np.int64), info.n_features
        ),
    )

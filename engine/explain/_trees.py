"""Flat arrays for the decision trees inside scikit-learn tree models.

Every supported estimator (decision trees, random forests, extra trees,
gradient boosting, histogram gradient boosting) is reduced to a
:class:`TreeModel`: a tuple of binary :class:`Tree` objects whose leaf values
are already scaled into the explained output space, plus a constant offset, so
that ``model output = offset + sum of the leaf values the row reaches``.  The
exact explainers in :mod:`engine.explain.treeshap` read nothing else.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.errors import AnalysisError

__all__ = [
    "Tree",
    "TreeModel",
    "extract_tree_model",
    "is_tree_estimator",
    "go_left",
    "leaf_index",
    "predict_tree_model",
]

# Raw categories of a histogram-gradient-boosting split live in 8 x 32-bit words.
_BITSET_WORDS = 8


@dataclass(frozen=True, eq=False)
class Tree:
    """One binary decision tree in flat arrays; node 0 is the root.

    Attributes
    ----------
    left, right: ``(N,)`` int64 child indices, ``-1`` at leaves.
    feature: ``(N,)`` int64 input column split on, ``-1`` at leaves.
    threshold: ``(N,)`` float64; a row goes left when ``x[feature] <= threshold``.
    missing_left: ``(N,)`` bool; where a missing (NaN) value goes.
    value: ``(N,)`` float64 leaf outputs in the explained space (scaled, signed);
        only leaf entries are used.
    cover: ``(N,)`` float64 training weight reaching each node (for the
        path-dependent expectation).
    categorical: ``(N,)`` bool, nodes that split on a category set, or ``None``.
    left_categories: ``(N, W)`` uint32 bitsets of the category codes sent left
        (``W = 8`` words, codes below 256, for scikit-learn; boosters use what they need).
    known_categories: ``(N, W)`` uint32 bitsets of the categories the split decides on;
        a known category not sent left goes right.
    unknown_left: ``(N,)`` bool, where a category outside ``known_categories`` (a
        negative code or one past the bitsets included) goes, or ``None``: where
        missing values go (scikit-learn's rule).  Missing values (NaN) always go
        by ``missing_left``.
    """

    left: np.ndarray
    right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    missing_left: np.ndarray
    value: np.ndarray
    cover: np.ndarray
    categorical: np.ndarray | None = None
    left_categories: np.ndarray | None = None
    known_categories: np.ndarray | None = None
    unknown_left: np.ndarray | None = None

    @property
    def n_nodes(self) -> int:
        return int(self.left.shape[0])

    @property
    def is_leaf(self) -> np.ndarray:
        return self.left < 0


@dataclass(frozen=True, eq=False)
class TreeModel:
    """An ensemble reduced to trees whose leaf values add up to the explained output.

    Attributes
    ----------
    trees: the trees, leaf values scaled (learning rate, 1/n_estimators, sign).
    offset: constant added to the sum of the trees (boosting's initial prediction).
    output_space: ``"probability"``, ``"log-odds"``, ``"margin"`` or ``"value"``.
    n_features: number of input columns the trees index.
    float32_inputs: scikit-learn's tree code (and XGBoost's) compares inputs cast to float32.
    estimator_type: class name of the estimator, for provenance.
    input_map: the library's own conversion of the (cast) inputs before its trees
        compare them, returning a new array (LightGBM: values within 1e-35 of zero
        are zero, ...); ``None`` when the trees compare the inputs as they are.
    """

    trees: tuple[Tree, ...]
    offset: float
    output_space: str
    n_features: int
    float32_inputs: bool
    estimator_type: str
    input_map: Callable[[np.ndarray], np.ndarray] | None = None

    def prepare(self, X: np.ndarray) -> np.ndarray:
        """``X`` as the float64 values the trees compare, shape ``(n, n_features)``."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise AnalysisError(
                f"The {self.estimator_type} expects {self.n_features} encoded columns but "
                f"{X.shape[-1] if X.ndim else 0} were given."
            )
        if self.float32_inputs:
            # scikit-learn's tree code casts X to float32 before comparing with the
            # float64 thresholds; doing the same keeps every row on its true path.
            with np.errstate(over="ignore", invalid="ignore"):
                X = X.astype(np.float32).astype(np.float64)
        if self.input_map is not None:
            X = self.input_map(X)
        return X


_FORESTS = (
    "RandomForestClassifier",
    "RandomForestRegressor",
    "ExtraTreesClassifier",
    "ExtraTreesRegressor",
)
_SINGLE = ("DecisionTreeClassifier", "DecisionTreeRegressor", "ExtraTreeClassifier", "ExtraTreeRegressor")
_GB = ("GradientBoostingClassifier", "GradientBoostingRegressor")
_HGB = ("HistGradientBoostingClassifier", "HistGradientBoostingRegressor")
SUPPORTED = _SINGLE + _FORESTS + _GB + _HGB


def _sklearn_class(estimator: Any) -> str | None:
    """The estimator's class name when it is one of scikit-learn's own tree models."""
    for cls in type(estimator).__mro__:
        if cls.__module__.startswith("sklearn.") and cls.__name__ in SUPPORTED:
            return cls.__name__
    return None


def is_tree_estimator(estimator: Any) -> bool:
    """Whether ``estimator`` is a scikit-learn tree model this module can read."""
    return _sklearn_class(estimator) is not None


def _is_classifier(estimator: Any) -> bool:
    from sklearn.base import is_classifier

    return bool(is_classifier(estimator))


def _sklearn_tree(tree: Any, *, class_index: int | None, classifier: bool, scale: float, name: str) -> Tree:
    """Flat arrays of one fitted ``sklearn.tree._tree.Tree``."""
    value = np.asarray(tree.value, dtype=np.float64)
    if value.shape[1] != 1:
        raise AnalysisError(f"TreeSHAP does not explain multi-output models, and this {name} has several outputs.")
    if classifier:
        sums = value[:, 0, :].sum(axis=1)
        # Classifier trees store class weights (older versions) or fractions; both
        # normalise to the class probabilities a leaf predicts.
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(sums > 0, value[:, 0, class_index] / np.where(sums > 0, sums, 1.0), 0.0)
    else:
        out = value[:, 0, 0]
    missing = getattr(tree, "missing_go_to_left", None)
    left = np.asarray(tree.children_left, dtype=np.int64)
    return Tree(
        left=left,
        right=np.asarray(tree.children_right, dtype=np.int64),
        feature=np.where(left >= 0, np.asarray(tree.feature, dtype=np.int64), -1),
        threshold=np.asarray(tree.threshold, dtype=np.float64),
        missing_left=(np.ones(left.shape[0], dtype=bool) if missing is None else np.asarray(missing, dtype=bool)),
        value=out * scale,
        cover=np.asarray(tree.weighted_n_node_samples, dtype=np.float64),
    )


def _hgb_tree(predictor: Any, known: np.ndarray | None, f_idx_map: np.ndarray | None, sign: float) -> Tree:
    """Flat arrays of one ``TreePredictor`` of a histogram gradient boosting model."""
    nodes = predictor.nodes
    is_leaf = nodes["is_leaf"].astype(bool)
    left = np.where(is_leaf, -1, nodes["left"].astype(np.int64))
    right = np.where(is_leaf, -1, nodes["right"].astype(np.int64))
    feature = np.where(is_leaf, -1, nodes["feature_idx"].astype(np.int64))
    categorical = None
    left_cats = None
    known_cats = None
    if "is_categorical" in nodes.dtype.names:
        cat = nodes["is_categorical"].astype(bool) & ~is_leaf
        if cat.any():
            categorical = cat
            raw = np.asarray(predictor.raw_left_cat_bitsets, dtype=np.uint32)
            left_cats = np.zeros((len(nodes), _BITSET_WORDS), dtype=np.uint32)
            left_cats[cat] = raw[nodes["bitset_idx"][cat].astype(np.int64)]
            known_cats = np.zeros((len(nodes), _BITSET_WORDS), dtype=np.uint32)
            if known is not None and f_idx_map is not None:
                known_cats[cat] = known[f_idx_map[feature[cat]].astype(np.int64)]
    return Tree(
        left=left,
        right=right,
        feature=feature,
        threshold=nodes["num_threshold"].astype(np.float64),
        missing_left=nodes["missing_go_to_left"].astype(bool),
        value=nodes["value"].astype(np.float64) * sign,
        cover=nodes["count"].astype(np.float64),
        categorical=categorical,
        left_categories=left_cats,
        known_categories=known_cats,
    )


def _n_classes(estimator: Any) -> int:
    classes = getattr(estimator, "classes_", None)
    return 0 if classes is None else len(classes)


def _check_class(class_index: int | None, n_classes: int, name: str) -> int:
    if class_index is None:
        return 1 if n_classes == 2 else 0
    if not 0 <= class_index < n_classes:
        raise AnalysisError(f"The {name} has {n_classes} classes, so class index {class_index} does not exist.")
    return int(class_index)


def extract_tree_model(estimator: Any, *, class_index: int | None = None) -> TreeModel:
    """Reduce a fitted scikit-learn tree model to :class:`TreeModel`.

    Parameters
    ----------
    estimator:
        A fitted decision tree, random forest, extra trees, gradient boosting or
        histogram gradient boosting classifier or regressor (not a Pipeline).
    class_index:
        Column of ``predict_proba`` to explain for classifiers (``None``: the
        positive class of a binary model, else the first class).  Ignored for
        regressors.

    Returns
    -------
    TreeModel
        Forests and single trees of classifiers explain probabilities; boosted
        classifiers explain the raw margin of the class (log-odds), negated for
        class 0 of a binary model; regressors explain the predicted value (or the
        raw margin for log-link losses).

    Raises
    ------
    AnalysisError
        For an unsupported estimator or a boosting model whose initial
        prediction is not a constant.
    """
    name = _sklearn_class(estimator)
    if name is None:
        raise AnalysisError(
            f"TreeSHAP cannot explain a {type(estimator).__name__}; it explains scikit-learn decision trees, "
            "random forests, extra trees and (histogram) gradient boosting models."
        )
    if not hasattr(estimator, "n_features_in_"):
        raise AnalysisError(f"The {name} is not fitted, so it cannot be explained.")
    classifier = _is_classifier(estimator)
    n_features = int(estimator.n_features_in_)
    if classifier:
        k = _check_class(class_index, _n_classes(estimator), name)
    else:
        k = None

    if name in _SINGLE:
        tree = _sklearn_tree(estimator.tree_, class_index=k, classifier=classifier, scale=1.0, name=name)
        return TreeModel(
            trees=(tree,),
            offset=0.0,
            output_space="probability" if classifier else "value",
            n_features=n_features,
            float32_inputs=True,
            estimator_type=name,
        )
    if name in _FORESTS:
        members = estimator.estimators_
        scale = 1.0 / len(members)
        trees = tuple(
            _sklearn_tree(m.tree_, class_index=k, classifier=classifier, scale=scale, name=name) for m in members
        )
        return TreeModel(
            trees=trees,
            offset=0.0,
            output_space="probability" if classifier else "value",
            n_features=n_features,
            float32_inputs=True,
            estimator_type=name,
        )
    if name in _GB:
        return _gradient_boosting(estimator, name=name, k=k, n_features=n_features)
    return _hist_gradient_boosting(estimator, name=name, k=k, n_features=n_features, classifier=classifier)


def _gradient_boosting(estimator: Any, *, name: str, k: int | None, n_features: int) -> TreeModel:
    from sklearn.dummy import DummyClassifier, DummyRegressor

    init = estimator.init_
    if not (isinstance(init, str) and init == "zero") and not isinstance(init, (DummyClassifier, DummyRegressor)):
        raise AnalysisError(
            f"TreeSHAP cannot explain this {name} because its initial estimator "
            f"({type(init).__name__}) does not predict a constant."
        )
    stages = estimator.estimators_
    n_columns = stages.shape[1]
    column = 0
    sign = 1.0
    if k is not None and n_columns > 1:
        column = k
    elif k is not None and k == 0:
        # A binary model keeps one margin, that of the positive class; class 0's is its negative.
        sign = -1.0
    lr = float(estimator.learning_rate)
    trees = tuple(
        _sklearn_tree(t.tree_, class_index=None, classifier=False, scale=lr * sign, name=name)
        for t in stages[:, column]
    )
    model = TreeModel(
        trees=trees,
        offset=0.0,
        output_space="log-odds" if k is not None else "value",
        n_features=n_features,
        float32_inputs=True,
        estimator_type=name,
    )
    # The initial prediction is a constant; read it off the model itself so the
    # offset matches scikit-learn's own raw prediction to the last bit.
    probe = np.zeros((1, n_features))
    raw = _raw_output(estimator, probe, k=k, n_columns=n_columns)
    offset = float(raw[0] - predict_tree_model(model, probe)[0])
    return TreeModel(
        trees=trees,
        offset=offset,
        output_space=model.output_space,
        n_features=n_features,
        float32_inputs=True,
        estimator_type=name,
    )


def _raw_output(estimator: Any, X: np.ndarray, *, k: int | None, n_columns: int) -> np.ndarray:
    with warnings.catch_warnings():
        # The estimator may have been fitted on a DataFrame; a bare array is fine here.
        warnings.simplefilter("ignore", category=UserWarning)
        if k is None:
            return np.asarray(estimator.predict(X), dtype=np.float64)
        raw = np.asarray(estimator.decision_function(X), dtype=np.float64)
    if raw.ndim == 2:
        return raw[:, k]
    return raw if k != 0 else -raw


def _hist_gradient_boosting(
    estimator: Any, *, name: str, k: int | None, n_features: int, classifier: bool
) -> TreeModel:
    baseline = np.asarray(
        getattr(estimator, "baseline_prediction_", getattr(estimator, "_baseline_prediction", 0.0)),
        dtype=np.float64,
    ).reshape(-1)
    predictors = estimator._predictors
    n_per_iter = len(predictors[0]) if predictors else 1
    column = 0
    sign = 1.0
    if k is not None and n_per_iter > 1:
        column = k
    elif k is not None and k == 0:
        sign = -1.0
    known = f_idx_map = None
    bin_mapper = getattr(estimator, "_bin_mapper", None)
    if getattr(estimator, "is_categorical_", None) is not None and bin_mapper is not None:
        known, f_idx_map = bin_mapper.make_known_categories_bitsets()
    trees = tuple(_hgb_tree(it[column], known, f_idx_map, sign) for it in predictors)
    if classifier:
        space = "log-odds"
    else:
        space = "margin" if str(getattr(estimator, "loss", "")) in ("poisson", "gamma") else "value"
    return TreeModel(
        trees=trees,
        offset=float(baseline[column] if baseline.size > column else baseline[0]) * sign,
        output_space=space,
        n_features=n_features,
        float32_inputs=False,
        estimator_type=name,
    )


# -- evaluating the trees ---------------------------------------------------------------------------


def _in_bitset(bitsets: np.ndarray, nodes: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Whether each ``values[i]`` (``0 <= v < 32 W``) is set in ``bitsets[nodes[i]]`` (``(N, W)`` uint32)."""
    word: np.ndarray = bitsets[nodes, values // 32]
    out: np.ndarray = ((word >> (values % 32).astype(np.uint32)) & 1).astype(bool)
    return out


def go_left(tree: Tree, X: np.ndarray, nodes: np.ndarray) -> np.ndarray:
    """Whether each row goes to the left child at each of ``nodes``.

    Parameters
    ----------
    tree: the tree.
    X: ``(n, F)`` float64 inputs, already prepared by :meth:`TreeModel.prepare`.
    nodes: ``(M,)`` internal node indices.

    Returns
    -------
    ndarray
        ``(n, M)`` bool.
    """
    f = tree.feature[nodes]
    x = X[:, f]
    missing = np.isnan(x)
    with np.errstate(invalid="ignore"):
        out: np.ndarray = x <= tree.threshold[nodes]
    if missing.any():
        out = np.where(missing, tree.missing_left[nodes], out)
    if tree.categorical is not None:
        cat = tree.categorical[nodes]
        if cat.any():
            cols = np.flatnonzero(cat)
            out[:, cols] = _categorical_left(tree, x[:, cols], nodes[cols][None, :])
    return out


def _categorical_left(tree: Tree, x: np.ndarray, nodes: np.ndarray) -> np.ndarray:
    """Left/right at categorical splits.

    ``x`` and ``nodes`` broadcast to one shape; the result has that shape.  A
    category sent left goes left, another known one right; a negative, unknown or
    too large code goes by ``unknown_left`` and a missing one by ``missing_left``
    (scikit-learn's predictor: both where missing values go).
    """
    assert tree.left_categories is not None and tree.known_categories is not None
    x, nodes = np.broadcast_arrays(x, nodes)
    valid = np.isfinite(x) & (x >= 0) & (x < 32 * tree.left_categories.shape[1])
    # The libraries cast the float category to an integer, truncating towards zero;
    # scikit-learn's categories are below 256, so larger codes (undefined in its uint8
    # cast) count as unknown, as do codes past a booster's bitsets (in none of its sets).
    codes = np.where(valid, x, 0).astype(np.int64)
    in_left = _in_bitset(tree.left_categories, nodes, codes) & valid
    known = _in_bitset(tree.known_categories, nodes, codes) & valid
    other = tree.missing_left[nodes]
    if tree.unknown_left is not None:
        other = np.where(np.isnan(x), other, tree.unknown_left[nodes])
    out: np.ndarray = np.where(in_left, True, np.where(known, False, other))
    return out


def leaf_index(tree: Tree, X: np.ndarray) -> np.ndarray:
    """The leaf each row of the prepared ``(n, F)`` ``X`` reaches, shape ``(n,)``."""
    node = np.zeros(X.shape[0], dtype=np.int64)
    active = np.flatnonzero(tree.left[node] >= 0)
    while active.size:
        cur = node[active]
        f = tree.feature[cur]
        x = X[active, f]
        with np.errstate(invalid="ignore"):
            left = x <= tree.threshold[cur]
        nan = np.isnan(x)
        left = np.where(nan, tree.missing_left[cur], left)
        if tree.categorical is not None:
            cat = tree.categorical[cur]
            if cat.any():
                idx = np.flatnonzero(cat)
                left[idx] = _categorical_left(tree, x[idx], cur[idx])
        node[active] = np.where(left, tree.left[cur], tree.right[cur])
        active = active[tree.left[node[active]] >= 0]
    return node


def predict_tree_model(model: TreeModel, X: np.ndarray) -> np.ndarray:
    """The model output ``offset + sum of reached leaf values`` for ``(n, F)`` ``X``; shape ``(n,)``."""
    Xp = model.prepare(X)
    out = np.full(Xp.shape[0], model.offset, dtype=np.float64)
    for tree in model.trees:
        out += tree.value[leaf_index(tree, Xp)]
    return out

"""Checks of the structures scikit-learn hands to compiled code, run before any prediction.

scikit-learn's compiled kernels follow the arrays of a fitted model without bounds
checks: a decision tree's child and feature indices, libsvm's support-vector counts
and coefficient rows, a KD/ball tree's node ranges and index permutation, a
histogram-gradient-boosting predictor's category bitsets.  A crafted file (a skops
file needs no trust for some of these types) can therefore make a prediction read
or write outside its arrays and kill the process.  :func:`validate_native_structures`
walks a loaded model (through Pipelines, ColumnTransformers, ensembles and any
other container) and checks every such structure against the invariants the
compiled code relies on, so a malformed model is refused with one sentence naming
the file, the estimator and the field instead.

What each check guards (the compiled code it protects):

* decision trees (``sklearn.tree._tree.Tree``): child indices after their parent and
  inside the node array, features inside the owner's columns;
* histogram-gradient-boosting predictors: the same, plus category bitsets and the
  estimator's list of categorical features;
* gradient boosting: the stage grid's width matches the raw predictions it writes
  into, every stage tree reads the boosting model's columns;
* forests and bagging (which call their trees with ``check_input=False``): every
  member reads exactly the columns it will be given;
* libsvm (``SVC``, ``NuSVC``, ``SVR``, ``NuSVR``, ``OneClassSVM``): support-vector
  counts, coefficient and intercept shapes, probability arrays, kernel, dense and
  sparse layouts;
* nearest neighbours (``KNeighbors*``, ``RadiusNeighbors*``, ``NearestNeighbors``,
  ``LocalOutlierFactor``, ``KernelDensity``): training rows, label codes, the KD/ball
  tree's index permutation, node ranges and bounds, distance-metric parameters;
* linear models (``sklearn.linear_model``, ``LinearSVC``/``LinearSVR``,
  ``LinearDiscriminantAnalysis``): coefficient and intercept shapes against the
  number of inputs and classes;
* k-means centres, scipy B-splines (``SplineTransformer``) and every scipy sparse
  matrix (``check_format(full_check=True)``: indices inside the shape).

Boosters read from their own files (XGBoost JSON/UBJSON, LightGBM model text) are
checked here too, on the parsed file, before their library reads it
(:func:`validate_xgboost_trees`, :func:`validate_lightgbm_trees`): child and feature
indices, node-array lengths, finite thresholds and leaf values, category sets and tree
counts (:mod:`engine.models.booster_adapter`).

The checks read attributes and arrays only; they call no method of the model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import ModelError

__all__ = [
    "validate_native_structures",
    "validate_tree_structures",
    "validate_xgboost_trees",
    "validate_lightgbm_trees",
    "xgboost_category_values",
]

_LIBSVM_KERNELS = frozenset({"linear", "poly", "rbf", "sigmoid", "precomputed"})
_NEIGHBOR_METHODS = frozenset({"brute", "kd_tree", "ball_tree"})


class _Malformed(Exception):
    """One violated invariant: the field (an attribute path) and what is wrong with it."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}")
        self.field = field
        self.problem = problem


class _TreeInconsistent(Exception):
    """A decision tree's nodes do not form a tree scikit-learn can follow safely."""


@dataclass(frozen=True)
class _Where:
    """Where the walk met an object: the nearest enclosing estimator and its width.

    owner: the estimator the object belongs to (``None`` at the top).
    field: the attribute path from ``owner`` to the object (``""`` for the owner itself).
    n_features: the owner's ``n_features_in_`` when it is a positive integer.
    """

    owner: Any
    field: str
    n_features: int | None


# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _positive_int(value: Any) -> int | None:
    return int(value) if _is_int(value) and value >= 1 else None


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _shape(value: Any) -> str:
    return "(" + ", ".join(str(n) for n in value.shape) + (",)" if len(value.shape) == 1 else ")")


def _array(
    owner: Any,
    field: str,
    *,
    dtype: Any = None,
    ndim: int | None = None,
    contiguous: bool = False,
    kinds: str | None = None,
) -> np.ndarray:
    """``owner.field`` as an ndarray of the layout the compiled code takes, else :class:`_Malformed`."""
    value = vars(owner).get(field)
    if not isinstance(value, np.ndarray):
        raise _Malformed(field, f"is a {type(value).__name__}, not an array")
    return _layout(value, field, dtype=dtype, ndim=ndim, contiguous=contiguous, kinds=kinds)


def _layout(
    value: np.ndarray,
    field: str,
    *,
    dtype: Any = None,
    ndim: int | None = None,
    contiguous: bool = False,
    kinds: str | None = None,
) -> np.ndarray:
    if ndim is not None and value.ndim != ndim:
        raise _Malformed(field, f"has {value.ndim} dimensions, not {ndim}")
    if dtype is not None and value.dtype != np.dtype(dtype):
        raise _Malformed(field, f"has the type {value.dtype}, not {np.dtype(dtype)}")
    if kinds is not None and value.dtype.kind not in kinds:
        raise _Malformed(field, f"has the type {value.dtype}, which is not numeric")
    if contiguous and not value.flags.c_contiguous:
        raise _Malformed(field, "is not stored contiguously")
    return value


def _in_range(values: np.ndarray, low: int, high: int) -> bool:
    """Whether every value lies in ``[low, high)`` (vacuously true for no values)."""
    return values.size == 0 or bool(values.min() >= low and values.max() < high)


def _a(name: str) -> str:
    """``name`` with its article, as it is read aloud: "an SVC", "a OneClassSVM", "an Isomap"."""
    spelled = len(name) > 1 and name[:2].isupper()  # an acronym: SVC, MLPClassifier, LDA
    vowel = name[:1] in "AEIOFHLMNRSX" if spelled else name[:1].lower() in "aeiu" or name[:2] == "Or"
    return ("an " if vowel else "a ") + name


# ---------------------------------------------------------------------------
# The walk
# ---------------------------------------------------------------------------


def _is_estimator(obj: Any) -> bool:
    return hasattr(type(obj), "fit") or "n_features_in_" in getattr(obj, "__dict__", {})


def _walk(root: Any) -> Iterator[tuple[Any, _Where]]:
    """Every object reachable from ``root`` through attributes, containers and object arrays, once.

    Plain instance dictionaries are read with :func:`vars`; nothing of the model is
    called.  Classes, functions and modules are not entered.
    """
    import types

    todo: list[tuple[Any, _Where]] = [(root, _Where(None, "", None))]
    seen: set[int] = set()
    while todo:
        obj, where = todo.pop()
        if id(obj) in seen or obj is None or isinstance(obj, (str, bytes, int, float, bool, complex)):
            continue
        seen.add(id(obj))
        yield obj, where
        if isinstance(obj, (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType)):
            continue

        def sub(item: Any, step: str, _where: _Where = where) -> tuple[Any, _Where]:
            return item, _Where(_where.owner, f"{_where.field}{step}", _where.n_features)

        if isinstance(obj, (list, tuple)):
            todo.extend(sub(item, f"[{i}]") for i, item in enumerate(obj))
        elif isinstance(obj, dict):
            todo.extend(sub(item, f"[{key!r}]") for key, item in obj.items())
        elif isinstance(obj, np.ndarray):
            if obj.dtype == object:
                todo.extend(sub(item, f"[{i}]") for i, item in enumerate(obj.ravel()))
        else:
            attrs = getattr(obj, "__dict__", None)
            if not isinstance(attrs, dict):
                continue
            if _is_estimator(obj):
                own = _positive_int(attrs.get("n_features_in_"))
                todo.extend((value, _Where(obj, name, own)) for name, value in attrs.items())
            else:
                todo.extend(sub(value, f".{name}") for name, value in attrs.items())


#: A check either of an estimator's own fields (``"estimator"``: the error names that
#: estimator) or of a component met anywhere in the walk (``"component"``: the error
#: names the nearest enclosing estimator and the path to the component).
_Check = tuple[Any, Callable[[Any, _Where], None], str]


def _checks() -> list[_Check]:
    """The type-specific checks, imported lazily (scikit-learn and scipy are heavy)."""
    import scipy.sparse as sp
    from scipy.interpolate import BSpline
    from sklearn.cluster import BisectingKMeans, KMeans, MiniBatchKMeans
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.ensemble._bagging import BaseBagging
    from sklearn.ensemble._forest import BaseForest
    from sklearn.ensemble._gb import BaseGradientBoosting
    from sklearn.ensemble._hist_gradient_boosting.gradient_boosting import BaseHistGradientBoosting
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
    from sklearn.metrics._dist_metrics import DistanceMetric32, DistanceMetric64
    from sklearn.neighbors._base import NeighborsBase
    from sklearn.svm import LinearSVC, LinearSVR
    from sklearn.svm._base import BaseLibSVM
    from sklearn.tree._tree import Tree

    def own(check: Callable[[Any], None]) -> Callable[[Any, _Where], None]:
        return lambda obj, _where: check(obj)

    return [
        (Tree, _check_tree, "component"),
        (TreePredictor, _check_predictor, "component"),
        (_binary_tree_types(), _check_binary_tree, "component"),
        (
            (DistanceMetric64, DistanceMetric32),
            lambda obj, where: _check_metric(obj, where.field, where.n_features),
            "component",
        ),
        ((sp.spmatrix, sp.sparray), _check_sparse, "component"),
        (BSpline, _check_bspline, "component"),
        (BaseLibSVM, own(_check_libsvm), "estimator"),
        (NeighborsBase, own(_check_neighbors), "estimator"),
        (BaseGradientBoosting, own(_check_gradient_boosting), "estimator"),
        (BaseHistGradientBoosting, own(_check_hist_gradient_boosting), "estimator"),
        (BaseForest, own(_check_members), "estimator"),
        (BaseBagging, own(_check_bagging), "estimator"),
        ((KMeans, MiniBatchKMeans, BisectingKMeans), own(_check_kmeans), "estimator"),
        ((LinearSVC, LinearSVR, LinearDiscriminantAnalysis), own(_check_linear), "estimator"),
    ]


def _binary_tree_types() -> tuple[type, ...]:
    from sklearn.neighbors import _ball_tree, _kd_tree

    return (_kd_tree.BinaryTree64, _kd_tree.BinaryTree32, _ball_tree.BinaryTree64, _ball_tree.BinaryTree32)


def validate_native_structures(estimator: Any, *, path: Path | None = None) -> None:
    """Check every structure of ``estimator`` that scikit-learn's compiled code follows unchecked.

    Parameters
    ----------
    estimator: a loaded scikit-learn estimator, Pipeline or any object holding them.
    path: the file it came from, named in the error.

    Raises
    ------
    ModelError
        A structure is malformed: one sentence naming the file, the estimator and the field.
    """
    name = path.name if path is not None else "The model"
    checks = _checks()
    for obj, where in _walk(estimator):
        attrs = getattr(obj, "__dict__", None)
        if _is_estimator(obj) and isinstance(attrs, dict) and "n_features_in_" in attrs:
            if _positive_int(attrs["n_features_in_"]) is None:
                raise ModelError(
                    f"{name} contains {_a(type(obj).__name__)} whose n_features_in_ is {attrs['n_features_in_']!r}, "
                    "not a positive whole number, so it is not used.",
                    path=path,
                )
        for kind, check, scope in checks:
            if isinstance(obj, kind):
                _run(check, obj, where, scope=scope, name=name, path=path)
        if _is_linear_model(obj):
            _run(lambda o, _w: _check_linear(o), obj, where, scope="estimator", name=name, path=path)


def _run(
    check: Callable[[Any, _Where], None], obj: Any, where: _Where, *, scope: str, name: str, path: Path | None
) -> None:
    try:
        check(obj, where)
    except _TreeInconsistent:
        raise ModelError(
            f"{name} contains a decision tree whose node structure is inconsistent, so it is not used.", path=path
        ) from None
    except _Malformed as bad:
        subject = obj if scope == "estimator" or where.owner is None else where.owner
        raise ModelError(
            f"{name} contains {_a(type(subject).__name__)} whose {bad.field} {bad.problem}, so it is not used.",
            path=path,
        ) from None


def _is_linear_model(obj: Any) -> bool:
    module = type(obj).__module__
    return module.startswith("sklearn.linear_model") and "coef_" in getattr(obj, "__dict__", {})


# ---------------------------------------------------------------------------
# Decision trees
# ---------------------------------------------------------------------------


def validate_tree_structures(estimator: Any, *, path: Path | None = None) -> None:
    """Check every decision-tree node array before scikit-learn follows it.

    scikit-learn walks ``children_left``/``children_right``/``feature`` in compiled
    code without bounds checks; a crafted file could make it read out of bounds or
    loop.  Children must come after their parent (as scikit-learn builds them, which
    also rules out cycles) and inside the array; features must be real columns.
    (:func:`validate_native_structures` runs these checks and all the others.)

    Raises
    ------
    ModelError
        A tree's structure is inconsistent.
    """
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
    from sklearn.tree._tree import Tree

    name = path.name if path is not None else "The model"
    for obj, where in _walk(estimator):
        if isinstance(obj, Tree):
            _run(_check_tree, obj, where, scope="component", name=name, path=path)
        elif isinstance(obj, TreePredictor):
            _run(_check_predictor, obj, where, scope="component", name=name, path=path)


def _check_tree(tree: Any, where: _Where) -> None:
    n = int(tree.node_count)
    left = np.asarray(tree.children_left)
    right = np.asarray(tree.children_right)
    feature = np.asarray(tree.feature)
    width = int(tree.n_features)
    value_rows = np.asarray(tree.value).shape[0]
    ok = n >= 1 and left.shape == right.shape == feature.shape == (n,) and value_rows == n
    if ok:
        idx = np.arange(n)
        leaf = left == -1
        inner = ~leaf
        ok = bool(
            np.all(right[leaf] == -1)
            and np.all((left[inner] > idx[inner]) & (left[inner] < n))
            and np.all((right[inner] > idx[inner]) & (right[inner] < n))
            and np.all((feature[inner] >= 0) & (feature[inner] < width))
        )
    if not ok:
        raise _TreeInconsistent()
    # The estimator validates the data against its own n_features_in_; the tree reads
    # that many columns, so its width must be the same.
    if where.n_features is not None and width != where.n_features:
        raise _Malformed(
            f"{where.field}.n_features" if where.field else "n_features",
            f"is {width}, but the estimator takes {where.n_features} columns",
        )


def _check_predictor(predictor: Any, where: _Where) -> None:
    from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE

    nodes = getattr(predictor, "nodes", None)
    n_features = where.n_features
    ok = (
        isinstance(nodes, np.ndarray)
        and nodes.dtype == PREDICTOR_RECORD_DTYPE
        and nodes.ndim == 1
        and len(nodes) >= 1
        and n_features is not None
    )
    if ok and nodes is not None and n_features is not None:
        n = len(nodes)
        idx = np.arange(n)
        inner = nodes["is_leaf"] == 0
        left = nodes["left"].astype(np.int64)
        right = nodes["right"].astype(np.int64)
        feature = nodes["feature_idx"]
        ok = bool(
            np.all((left[inner] > idx[inner]) & (left[inner] < n))
            and np.all((right[inner] > idx[inner]) & (right[inner] < n))
            and np.all((feature[inner] >= 0) & (feature[inner] < n_features))
        )
        categorical = inner & (nodes["is_categorical"] != 0)
        if ok and categorical.any():
            raw = getattr(predictor, "raw_left_cat_bitsets", None)
            binned = getattr(predictor, "binned_left_cat_bitsets", None)
            ok = all(
                isinstance(b, np.ndarray) and b.ndim == 2 and b.shape[1] == 8 and b.dtype == np.uint32
                for b in (raw, binned)
            )
            if ok and raw is not None and binned is not None:
                rows = min(len(raw), len(binned))
                ok = bool(np.all(nodes["bitset_idx"][categorical] < rows))
    if not ok:
        raise _TreeInconsistent()


def _tree_width(member: Any) -> int | None:
    """The ``n_features_in_`` of an ensemble member (``None`` if it has none)."""
    return _positive_int(getattr(member, "__dict__", {}).get("n_features_in_"))


def _check_members(forest: Any) -> None:
    """Forests call their trees with ``check_input=False`` on the data they validated."""
    n_features = _positive_int(vars(forest).get("n_features_in_"))
    members = vars(forest).get("estimators_")
    if n_features is None or not isinstance(members, list):
        return
    for i, member in enumerate(members):
        width = _tree_width(member)
        if width is not None and width != n_features:
            raise _Malformed(f"estimators_[{i}].n_features_in_", f"is {width}, but the forest takes {n_features}")


def _check_bagging(bagging: Any) -> None:
    """Bagging and isolation forests feed each member the columns in ``estimators_features_``."""
    attrs = vars(bagging)
    n_features = _positive_int(attrs.get("n_features_in_"))
    members = attrs.get("estimators_")
    features = attrs.get("estimators_features_")
    if n_features is None or members is None:
        return
    if not isinstance(features, list) or len(features) != len(members):
        raise _Malformed("estimators_features_", f"does not list the columns of each of the {len(members)} members")
    for i, (member, cols) in enumerate(zip(members, features)):
        if not isinstance(cols, np.ndarray) or cols.ndim != 1 or cols.dtype.kind not in "iu":
            raise _Malformed(f"estimators_features_[{i}]", "is not a list of column numbers")
        if not _in_range(cols, 0, n_features):
            raise _Malformed(f"estimators_features_[{i}]", f"names a column outside the {n_features} inputs")
        width = _tree_width(member)
        if width is not None and width != len(cols):
            raise _Malformed(
                f"estimators_[{i}].n_features_in_", f"is {width}, but the member is given {len(cols)} columns"
            )


def _check_gradient_boosting(gb: Any) -> None:
    """``predict_stages`` writes stage ``k`` into column ``k`` of the raw predictions."""
    from sklearn.base import is_classifier
    from sklearn.tree._tree import Tree

    attrs = vars(gb)
    stages = attrs.get("estimators_")
    if stages is None:
        return
    if not isinstance(stages, np.ndarray) or stages.dtype != object or stages.ndim != 2 or stages.shape[0] < 1:
        raise _Malformed("estimators_", "is not a two-dimensional grid of stage trees")
    k = stages.shape[1]
    per_iteration = attrs.get("n_trees_per_iteration_")
    if per_iteration is not None and (not _is_int(per_iteration) or per_iteration != k):
        raise _Malformed("estimators_", f"has {k} trees per stage, but n_trees_per_iteration_ is {per_iteration!r}")
    if is_classifier(gb):
        classes = attrs.get("classes_")
        if classes is not None:
            expected = 1 if len(classes) == 2 else len(classes)
            if k != expected:
                raise _Malformed("estimators_", f"has {k} trees per stage, but {len(classes)} classes need {expected}")
    elif k != 1:
        raise _Malformed("estimators_", f"has {k} trees per stage, but a regressor needs 1")
    first = stages[0, 0]
    n_features = _positive_int(attrs.get("n_features_in_")) or _tree_width(first)
    for (i, j), stage in np.ndenumerate(stages):
        tree = getattr(stage, "__dict__", {}).get("tree_")
        if not isinstance(tree, Tree):
            raise _Malformed(f"estimators_[{i}, {j}]", "is not a fitted regression tree")
        if _tree_width(stage) != n_features:
            raise _Malformed(
                f"estimators_[{i}, {j}].n_features_in_", f"is {_tree_width(stage)}, but the model takes {n_features}"
            )
        if int(tree.n_outputs) != 1 or int(tree.max_n_classes) != 1:
            raise _Malformed(f"estimators_[{i}, {j}].tree_", "is not a single-output regression tree")


def _check_hist_gradient_boosting(hgb: Any) -> None:
    """Categorical splits look the feature up in the bin mapper's list of categorical features."""
    attrs = vars(hgb)
    predictors = attrs.get("_predictors")
    if predictors is None:
        return
    per_iteration = attrs.get("n_trees_per_iteration_")
    if not isinstance(predictors, list) or not all(isinstance(row, list) for row in predictors):
        raise _Malformed("_predictors", "is not a list of lists of tree predictors")
    if _is_int(per_iteration) and any(len(row) != per_iteration for row in predictors):
        raise _Malformed("_predictors", f"has iterations without {per_iteration} trees")
    n_features = _positive_int(attrs.get("n_features_in_"))
    is_categorical = getattr(attrs.get("_bin_mapper"), "is_categorical_", None)
    for i, row in enumerate(predictors):
        for j, predictor in enumerate(row):
            nodes = getattr(predictor, "nodes", None)
            if not isinstance(nodes, np.ndarray) or nodes.dtype.names is None:
                continue
            split = (nodes["is_leaf"] == 0) & (nodes["is_categorical"] != 0)
            if not split.any():
                continue
            if (
                not isinstance(is_categorical, np.ndarray)
                or is_categorical.ndim != 1
                or is_categorical.dtype.kind not in "biu"
                or len(is_categorical) != n_features
            ):
                raise _Malformed(
                    "_bin_mapper.is_categorical_",
                    f"does not mark which of the {n_features} inputs "
                    "are categorical, but the trees split on categories",
                )
            features = nodes["feature_idx"][split].astype(np.int64)
            if not _in_range(features, 0, len(is_categorical)) or not bool(np.all(is_categorical[features] != 0)):
                raise _Malformed(f"_predictors[{i}][{j}]", "splits on categories of an input that is not categorical")


# ---------------------------------------------------------------------------
# libsvm
# ---------------------------------------------------------------------------


def _check_libsvm(svm: Any) -> None:
    """The arrays ``sklearn.svm._libsvm`` / ``_libsvm_sparse`` turn into a libsvm model.

    libsvm reads ``len(support_)`` support vectors, ``sum(_n_support)`` of them per
    class pair, ``len(_n_support) - 1`` coefficient rows of that length,
    ``k(k-1)/2`` intercepts and, with probabilities, as many ``_probA``/``_probB``.
    """
    import scipy.sparse as sp

    attrs = vars(svm)
    if "support_" not in attrs:
        return  # not fitted: scikit-learn refuses to predict
    impl = type(svm)._impl
    if attrs.get("_impl", impl) != impl:
        raise _Malformed("_impl", f"is {attrs['_impl']!r}, but {type(svm).__name__} is {impl!r}")
    classification = impl in ("c_svc", "nu_svc")
    kernel = attrs.get("kernel")
    precomputed = kernel == "precomputed" or callable(kernel)
    if not callable(kernel) and kernel not in _LIBSVM_KERNELS:
        raise _Malformed("kernel", f"is {kernel!r}, not one of {', '.join(sorted(_LIBSVM_KERNELS))}")
    sparse = attrs.get("_sparse")
    if not isinstance(sparse, (bool, np.bool_)):
        raise _Malformed("_sparse", f"is {sparse!r}, not true or false")
    for field in ("degree",):
        if not _is_int(attrs.get(field)) or attrs[field] < 0:
            raise _Malformed(field, f"is {attrs.get(field)!r}, not a whole number of at least 0")
    for field in ("_gamma", "coef0"):
        if not _is_real(attrs.get(field)) or not np.isfinite(attrs[field]):
            raise _Malformed(field, f"is {attrs.get(field)!r}, not a finite number")

    n_support = _array(svm, "_n_support", dtype=np.int32, ndim=1, contiguous=True)
    support = _array(svm, "support_", dtype=np.int32, ndim=1, contiguous=True)
    n_sv = len(support)
    n_class = len(n_support)
    if n_class < 2:
        raise _Malformed("_n_support", f"has {n_class} entries; libsvm needs at least 2")
    if np.any(n_support < 0):
        raise _Malformed("_n_support", "has a negative count")
    if classification:
        if int(n_support.sum()) != n_sv:
            raise _Malformed("_n_support", f"adds up to {int(n_support.sum())}, but support_ has {n_sv} entries")
        classes = attrs.get("classes_")
        if classes is not None and len(classes) != n_class:
            raise _Malformed("_n_support", f"has {n_class} entries, but classes_ has {len(classes)}")
    else:
        if n_class != 2 or int(n_support[0]) != n_sv:
            raise _Malformed("_n_support", f"is {n_support.tolist()}, but support_ has {n_sv} entries")
    pairs = n_class * (n_class - 1) // 2

    shape_fit = attrs.get("shape_fit_")
    if not (isinstance(shape_fit, tuple) and len(shape_fit) == 2 and all(_is_int(s) and s >= 0 for s in shape_fit)):
        raise _Malformed("shape_fit_", f"is {shape_fit!r}, not the shape of the training data")
    if not _in_range(support, 0, int(shape_fit[0])):
        raise _Malformed("support_", f"points outside the {shape_fit[0]} training rows")
    n_features = _positive_int(attrs.get("n_features_in_"))

    vectors = attrs.get("support_vectors_")
    coef = attrs.get("_dual_coef_")
    if sparse:
        if precomputed:
            raise _Malformed("kernel", "is precomputed on sparse data, which Probity does not run")
        if not (sp.issparse(vectors) and vectors.format == "csr"):
            raise _Malformed("support_vectors_", "is not a CSR sparse matrix, but the model is sparse")
        _csr_layout(vectors, "support_vectors_")
        if vectors.shape[0] != n_sv or (n_features is not None and vectors.shape[1] != n_features):
            raise _Malformed("support_vectors_", f"has the shape {vectors.shape}, not ({n_sv}, {n_features})")
        if not (sp.issparse(coef) and coef.format == "csr"):
            raise _Malformed("_dual_coef_", "is not a CSR sparse matrix, but the model is sparse")
        # Only the values reach libsvm; their order is the dense row-major one.
        _layout(np.asarray(coef.data), "_dual_coef_.data", dtype=np.float64, ndim=1, contiguous=True)
        if coef.shape != (n_class - 1, n_sv) or coef.data.shape != ((n_class - 1) * n_sv,):
            raise _Malformed("_dual_coef_", f"does not hold {n_class - 1} x {n_sv} coefficients")
    else:
        if not isinstance(vectors, np.ndarray):
            raise _Malformed("support_vectors_", "is not an array, but the model is dense")
        _layout(vectors, "support_vectors_", dtype=np.float64, ndim=2, contiguous=True)
        if precomputed:
            if vectors.size and vectors.shape[0] != n_sv:
                raise _Malformed("support_vectors_", f"has {vectors.shape[0]} rows, but support_ has {n_sv} entries")
        elif vectors.shape[0] != n_sv or (n_features is not None and vectors.shape[1] != n_features):
            raise _Malformed("support_vectors_", f"has the shape {_shape(vectors)}, not ({n_sv}, {n_features})")
        coef = _array(svm, "_dual_coef_", dtype=np.float64, ndim=2, contiguous=True)
        if coef.shape != (n_class - 1, n_sv):
            raise _Malformed("_dual_coef_", f"has the shape {_shape(coef)}, not ({n_class - 1}, {n_sv})")

    intercept = _array(svm, "_intercept_", dtype=np.float64, ndim=1, contiguous=True)
    if len(intercept) != pairs:
        raise _Malformed("_intercept_", f"has {len(intercept)} entries, not {pairs}")
    prob_a = _array(svm, "_probA", dtype=np.float64, ndim=1, contiguous=True)
    prob_b = _array(svm, "_probB", dtype=np.float64, ndim=1, contiguous=True)
    for field, values in (("_probA", prob_a), ("_probB", prob_b)):
        if len(values) not in (0, pairs):
            raise _Malformed(field, f"has {len(values)} entries, not 0 or {pairs}")
    if len(prob_a) != len(prob_b):
        raise _Malformed("_probB", f"has {len(prob_b)} entries, but _probA has {len(prob_a)}")
    if attrs.get("_effective_probability") and len(prob_a) != pairs:
        raise _Malformed("_probA", f"has {len(prob_a)} entries, but probabilities need {pairs}")
    if "class_weight_" in attrs:
        weights = _array(svm, "class_weight_", dtype=np.float64, ndim=1)
        if len(weights) not in ((0, n_class) if classification else (0,)):
            raise _Malformed("class_weight_", f"has {len(weights)} entries for {n_class} classes")


def _csr_layout(matrix: Any, field: str) -> None:
    """The dtypes and contiguity the libsvm wrappers take (their bounds come from :func:`_check_sparse`)."""
    _layout(np.asarray(matrix.data), f"{field}.data", dtype=np.float64, ndim=1, contiguous=True)
    _layout(np.asarray(matrix.indices), f"{field}.indices", dtype=np.int32, ndim=1, contiguous=True)
    _layout(np.asarray(matrix.indptr), f"{field}.indptr", dtype=np.int32, ndim=1, contiguous=True)
    _check_sparse(matrix, _Where(None, field, None))


# ---------------------------------------------------------------------------
# Nearest neighbours
# ---------------------------------------------------------------------------


def _valid_metric_names() -> frozenset[str]:
    from sklearn.neighbors._base import VALID_METRICS, VALID_METRICS_SPARSE

    names: set[str] = set()
    for table in (VALID_METRICS, VALID_METRICS_SPARSE):
        for values in table.values():
            names.update(v for v in values if isinstance(v, str))
    return frozenset(names)


def _check_neighbors(est: Any) -> None:
    """Training rows, label codes and the search tree that k-NN and radius queries follow."""
    import scipy.sparse as sp
    from sklearn.metrics._dist_metrics import DistanceMetric32, DistanceMetric64

    attrs = vars(est)
    method = attrs.get("_fit_method")
    if method is None:
        return  # not fitted: scikit-learn refuses to predict
    if method not in _NEIGHBOR_METHODS:
        raise _Malformed("_fit_method", f"is {method!r}, not one of {', '.join(sorted(_NEIGHBOR_METHODS))}")
    n_fit = _positive_int(attrs.get("n_samples_fit_"))
    if n_fit is None:
        raise _Malformed("n_samples_fit_", f"is {attrs.get('n_samples_fit_')!r}, not a positive whole number")
    n_features = _positive_int(attrs.get("n_features_in_"))
    metric = attrs.get("effective_metric_")
    if isinstance(metric, str):
        if metric not in _valid_metric_names():
            raise _Malformed("effective_metric_", f"is {metric!r}, which is not a distance scikit-learn knows")
    elif not (callable(metric) or isinstance(metric, (DistanceMetric64, DistanceMetric32))):
        raise _Malformed("effective_metric_", f"is a {type(metric).__name__}, not a distance")
    params = attrs.get("effective_metric_params_", {})
    if not isinstance(params, dict):
        raise _Malformed("effective_metric_params_", "is not a dictionary")
    if n_features is not None:
        for key, shape in (("w", (n_features,)), ("V", (n_features,)), ("VI", (n_features, n_features))):
            value = params.get(key)
            if value is not None and np.shape(value) != shape:
                raise _Malformed(f"effective_metric_params_[{key!r}]", f"has the shape {np.shape(value)}, not {shape}")

    fit_x = attrs.get("_fit_X")
    if sp.issparse(fit_x):
        if method != "brute":
            raise _Malformed("_fit_X", f"is sparse, but the search method is {method!r}")
        x_shape = fit_x.shape
    elif isinstance(fit_x, np.ndarray):
        _layout(fit_x, "_fit_X", ndim=2, kinds="fiub")
        x_shape = fit_x.shape
    else:
        raise _Malformed("_fit_X", f"is a {type(fit_x).__name__}, not the training rows")
    if x_shape[0] != n_fit or (n_features is not None and x_shape[1] != n_features):
        raise _Malformed("_fit_X", f"has the shape {x_shape}, not ({n_fit}, {n_features})")

    tree = attrs.get("_tree")
    if method == "brute":
        if tree is not None:
            raise _Malformed("_tree", "is set, but the search method is brute force")
    else:
        from sklearn.neighbors import _ball_tree, _kd_tree

        module = _kd_tree if method == "kd_tree" else _ball_tree
        if not isinstance(tree, (module.BinaryTree64, module.BinaryTree32)):
            raise _Malformed("_tree", f"is a {type(tree).__name__}, but the search method is {method!r}")
        data_shape = np.asarray(tree.data).shape
        if data_shape != x_shape:
            raise _Malformed("_tree.data", f"has the shape {data_shape}, but _fit_X has {x_shape}")

    k = attrs.get("n_neighbors")
    if k is not None and _positive_int(k) is None:
        raise _Malformed("n_neighbors", f"is {k!r}, not a positive whole number")

    if "_y" in attrs:
        _check_neighbor_labels(est, attrs, n_fit)


def _check_neighbor_labels(est: Any, attrs: dict[str, Any], n_fit: int) -> None:
    """``_y`` holds one row per training sample; for classifiers, codes into ``classes_``.

    The brute-force class-mode kernels index per-class counts by these codes unchecked.
    """
    from sklearn.base import is_classifier

    y = attrs["_y"]
    if not isinstance(y, np.ndarray) or y.ndim not in (1, 2) or len(y) != n_fit:
        raise _Malformed("_y", f"does not hold one label per training row ({n_fit})")
    if not is_classifier(est):
        return
    classes = attrs.get("classes_")
    if y.dtype.kind not in "iu":
        raise _Malformed("_y", f"has the type {y.dtype}, not class numbers")
    columns = [y] if y.ndim == 1 else [y[:, j] for j in range(y.shape[1])]
    per_output: list[Any] = [classes] if y.ndim == 1 else list(classes) if isinstance(classes, list) else []
    if len(per_output) != len(columns) or not all(isinstance(c, np.ndarray) for c in per_output):
        raise _Malformed("_y", "does not match classes_")
    for j, (codes, labels) in enumerate(zip(columns, per_output)):
        if not _in_range(codes, 0, len(labels)):
            field = "_y" if y.ndim == 1 else f"_y[:, {j}]"
            raise _Malformed(field, f"has class numbers outside the {len(labels)} classes")


def _check_binary_tree(tree: Any, where: _Where) -> None:
    """A KD or ball tree's state, as its queries follow it.

    Node ``i`` covers ``idx_array[idx_start:idx_end]``; an inner node's children are
    ``2i+1`` and ``2i+2``; ``node_bounds`` holds one (ball) or two (KD) rows per node.
    """
    from sklearn.neighbors import _kd_tree

    field = where.field or "tree"
    n_features = where.n_features
    state = tree.__getstate__()
    data, idx_array, node_data, node_bounds = state[0], state[1], state[2], state[3]
    leaf_size, n_nodes, metric, sample_weight = state[4], state[6], state[11], state[12]
    dtype = np.float32 if type(tree).__name__.endswith("32") else np.float64
    if not isinstance(data, np.ndarray):
        raise _Malformed(f"{field}.data", "is missing")
    _layout(data, f"{field}.data", dtype=dtype, ndim=2, contiguous=True)
    n, d = data.shape
    if n < 1:
        raise _Malformed(f"{field}.data", "has no rows")
    if n_features is not None and d != n_features:
        raise _Malformed(f"{field}.data", f"has {d} columns, but the estimator takes {n_features}")
    if not isinstance(idx_array, np.ndarray):
        raise _Malformed(f"{field}.idx_array", "is missing")
    _layout(idx_array, f"{field}.idx_array", dtype=np.intp, ndim=1, contiguous=True)
    if len(idx_array) != n or not _in_range(idx_array, 0, n):
        raise _Malformed(f"{field}.idx_array", f"is not a permutation of the {n} data rows")
    if (
        not isinstance(node_data, np.ndarray)
        or node_data.ndim != 1
        or node_data.dtype.names is None
        or not {"idx_start", "idx_end", "is_leaf", "radius"} <= set(node_data.dtype.names)
    ):
        raise _Malformed(f"{field}.node_data", "is not an array of tree nodes")
    m = len(node_data)
    if m < 1 or not _is_int(n_nodes) or n_nodes != m:
        raise _Malformed(f"{field}.node_data", f"has {m} nodes, but the tree says {n_nodes!r}")
    if not _is_int(leaf_size) or leaf_size < 1:
        raise _Malformed(f"{field}.leaf_size", f"is {leaf_size!r}, not a positive whole number")
    start = node_data["idx_start"].astype(np.int64)
    end = node_data["idx_end"].astype(np.int64)
    leaf = node_data["is_leaf"].astype(np.int64)
    if not (np.all((start >= 0) & (start <= end) & (end <= n)) and np.all((leaf == 0) | (leaf == 1))):
        raise _Malformed(f"{field}.node_data", f"has a node whose rows fall outside the {n} data rows")
    inner = np.flatnonzero(leaf == 0)
    if inner.size and int(inner.max()) * 2 + 2 >= m:
        raise _Malformed(f"{field}.node_data", f"has an inner node whose children lie past the {m} nodes")
    rows = 2 if isinstance(tree, (_kd_tree.BinaryTree64, _kd_tree.BinaryTree32)) else 1
    if not isinstance(node_bounds, np.ndarray):
        raise _Malformed(f"{field}.node_bounds", "is missing")
    _layout(node_bounds, f"{field}.node_bounds", dtype=dtype, ndim=3, contiguous=True)
    if node_bounds.shape != (rows, m, d):
        raise _Malformed(f"{field}.node_bounds", f"has the shape {_shape(node_bounds)}, not ({rows}, {m}, {d})")
    if sample_weight is not None and (not isinstance(sample_weight, np.ndarray) or sample_weight.shape != (n,)):
        raise _Malformed(f"{field}.sample_weight", f"does not hold one weight per data row ({n})")
    _check_metric(metric, f"{field}.dist_metric", d)


def _check_metric(metric: Any, field: str, n_features: int | None) -> None:
    """Weighted and matrix distances read one parameter per column (or a square matrix)."""
    name = type(metric).__name__.removesuffix("64").removesuffix("32")
    state = metric.__getstate__()
    vec, mat = np.asarray(state[1]), np.asarray(state[2])
    if n_features is None:
        return
    if name == "MahalanobisDistance" and mat.shape != (n_features, n_features):
        raise _Malformed(f"{field}.VI", f"has the shape {mat.shape}, not ({n_features}, {n_features})")
    if name == "SEuclideanDistance" and vec.shape != (n_features,):
        raise _Malformed(f"{field}.V", f"has the shape {vec.shape}, not ({n_features},)")
    if name == "MinkowskiDistance" and vec.size and vec.shape != (n_features,):
        raise _Malformed(f"{field}.w", f"has the shape {vec.shape}, not ({n_features},)")
    if name == "HaversineDistance" and n_features != 2:
        raise _Malformed(field, f"is the haversine distance, which needs 2 columns, not {n_features}")


# ---------------------------------------------------------------------------
# Linear models, k-means, splines, sparse matrices
# ---------------------------------------------------------------------------


def _check_linear(est: Any) -> None:
    """``X @ coef_.T + intercept_``: one coefficient per input column and output, one intercept per output."""
    import scipy.sparse as sp
    from sklearn.base import is_classifier

    attrs = vars(est)
    coef = attrs.get("coef_")
    if coef is None:
        return
    if sp.issparse(coef):
        shape: tuple[int, ...] = tuple(coef.shape)
    elif isinstance(coef, np.ndarray):
        _layout(coef, "coef_", kinds="fiu")
        shape = coef.shape
    else:
        raise _Malformed("coef_", f"is a {type(coef).__name__}, not an array")
    if len(shape) not in (1, 2):
        raise _Malformed("coef_", f"has {len(shape)} dimensions, not 1 or 2")
    n_features = _positive_int(attrs.get("n_features_in_"))
    if n_features is not None and shape[-1] != n_features:
        raise _Malformed("coef_", f"has {shape[-1]} columns, but the model takes {n_features} inputs")
    outputs = shape[0] if len(shape) == 2 else 1
    classes = attrs.get("classes_")
    if is_classifier(est) and isinstance(classes, np.ndarray) and classes.ndim == 1 and len(classes) >= 2:
        # Binary classifiers keep one row (RidgeClassifier a plain vector); others one per class.
        expected = 1 if len(classes) == 2 else len(classes)
        if outputs != expected or (expected > 1 and len(shape) != 2):
            raise _Malformed("coef_", f"has the shape {shape}, but {len(classes)} classes need {expected} rows")
    intercept = attrs.get("intercept_")
    if intercept is None or _is_real(intercept):
        return
    if not isinstance(intercept, np.ndarray) or intercept.dtype.kind not in "fiu":
        raise _Malformed("intercept_", f"is a {type(intercept).__name__}, not numbers")
    if intercept.ndim > 1 or (intercept.ndim == 1 and len(intercept) not in {1, outputs}):
        raise _Malformed("intercept_", f"has the shape {_shape(intercept)}, but coef_ has {outputs} rows")


def _check_kmeans(est: Any) -> None:
    """Label assignment reads ``cluster_centers_`` row by row with the data's width."""
    attrs = vars(est)
    if "cluster_centers_" not in attrs:
        return
    centers = _array(est, "cluster_centers_", ndim=2, kinds="f")
    n_features = _positive_int(attrs.get("n_features_in_"))
    if centers.shape[0] < 1 or (n_features is not None and centers.shape[1] != n_features):
        raise _Malformed(
            "cluster_centers_", f"has the shape {_shape(centers)}, but the model takes {n_features} inputs"
        )


def _check_bspline(spline: Any, where: _Where) -> None:
    """scipy evaluates a B-spline from ``len(t) - k - 1`` coefficients over the knots ``t``."""
    field = where.field or "spline"
    t: Any = getattr(spline, "t", None)
    c: Any = getattr(spline, "c", None)
    degree: Any = getattr(spline, "k", None)
    if not _is_int(degree) or degree < 0:
        raise _Malformed(f"{field}.k", f"is {degree!r}, not a degree")
    k = int(degree)
    if not isinstance(t, np.ndarray) or t.ndim != 1 or t.dtype.kind != "f":
        raise _Malformed(f"{field}.t", "is not a list of knots")
    n = len(t) - k - 1
    if n < k + 1 or not isinstance(c, np.ndarray) or c.ndim < 1 or c.shape[0] < n:
        raise _Malformed(f"{field}.c", f"does not hold the {max(n, 0)} coefficients its {len(t)} knots need")
    if not bool(np.all(np.diff(t) >= 0)):
        raise _Malformed(f"{field}.t", "is not in increasing order")


def _check_sparse(matrix: Any, where: _Where) -> None:
    """Index arrays inside the matrix: scipy's compiled sparse kernels follow them unchecked.

    The same invariants as ``check_format(full_check=True)``, read without letting
    scipy rewrite the index arrays.
    """
    field = where.field or "matrix"
    fmt = getattr(matrix, "format", None)
    problem = _sparse_problem(matrix, fmt)
    if problem is not None:
        raise _Malformed(field, f"is a {fmt} sparse matrix whose {problem}")


def _sparse_problem(matrix: Any, fmt: str | None) -> str | None:
    shape = getattr(matrix, "shape", None)
    if not (isinstance(shape, tuple) and len(shape) == 2 and all(_is_int(n) and n >= 0 for n in shape)):
        return f"shape {shape!r} is not two sizes"
    data = np.asarray(getattr(matrix, "data", None))
    if fmt in ("csr", "csc", "bsr"):
        indices = np.asarray(getattr(matrix, "indices", None))
        indptr = np.asarray(getattr(matrix, "indptr", None))
        block = (1, 1) if fmt != "bsr" else tuple(data.shape[1:]) if data.ndim == 3 else None
        if block is None or any(b < 1 for b in block) or shape[0] % block[0] or shape[1] % block[1]:
            return "blocks do not tile its shape"
        major, minor = (shape[0] // block[0], shape[1] // block[1]) if fmt != "csc" else (shape[1], shape[0])
        if indices.ndim != 1 or indptr.ndim != 1 or indices.dtype.kind not in "iu" or indptr.dtype.kind not in "iu":
            return "index arrays are not lists of whole numbers"
        if len(indptr) != major + 1:
            return f"indptr has {len(indptr)} entries, not {major + 1}"
        stored = len(data) if fmt != "bsr" else data.shape[0]
        if indptr[0] != 0 or np.any(np.diff(indptr) < 0) or indptr[-1] > min(len(indices), stored):
            return "indptr does not run from 0 up to the stored entries"
        if not _in_range(indices[: int(indptr[-1])], 0, minor):
            return f"indices point outside its {minor} {'rows' if fmt == 'csc' else 'columns'}"
        return None
    if fmt == "coo":
        coords = getattr(matrix, "coords", None) or (getattr(matrix, "row", None), getattr(matrix, "col", None))
        for axis, (index, size) in enumerate(zip(coords, shape)):
            index = np.asarray(index)
            if index.shape != data.shape or index.dtype.kind not in "iu" or not _in_range(index, 0, size):
                return f"{'row' if axis == 0 else 'column'} indices fall outside its shape"
        return None
    if fmt == "dia":
        offsets = np.asarray(getattr(matrix, "offsets", None))
        if data.ndim != 2 or offsets.ndim != 1 or len(offsets) != data.shape[0]:
            return "diagonals and offsets disagree"
    return None


# ---------------------------------------------------------------------------
# Boosters read from their own files (XGBoost JSON/UBJSON, LightGBM model text)
# ---------------------------------------------------------------------------

# The largest category code a categorical split may name: the predictors build a bitset as wide as
# the largest code (XGBoost refuses codes past 2**24 itself, as float32 holds them exactly up to there).
_MAX_CATEGORY_CODE = 1 << 24


def _booster_error(library: str, path: Path | None, bad: _Malformed) -> ModelError:
    name = path.name if path is not None else "The model"
    return ModelError(
        f"{name} contains {library} booster whose {bad.field} {bad.problem}, so it is not used.", path=path
    )


def _vector(value: Any, field: str, *, integral: bool, length: int | None = None) -> np.ndarray:
    """A JSON list, UBJSON typed array or text list as a 1-D int64 or float64 array, else :class:`_Malformed`."""
    if isinstance(value, str):
        parts = value.split()
        try:
            array = np.array(parts, dtype=np.float64) if parts else np.zeros(0)
        except (ValueError, OverflowError):
            raise _Malformed(field, "holds text that is not numbers") from None
    elif isinstance(value, (list, np.ndarray)):
        try:
            array = np.asarray(value)
        except (ValueError, TypeError):
            raise _Malformed(field, "is not a flat list of numbers") from None
        if array.size == 0:
            array = np.zeros(0)
        if array.ndim != 1 or array.dtype.kind not in "biuf":
            raise _Malformed(field, "is not a flat list of numbers")
    else:
        raise _Malformed(field, f"is a {type(value).__name__}, not a list of numbers")
    if length is not None and len(array) != length:
        raise _Malformed(field, f"has {len(array)} entries, not {length}")
    if integral:
        if array.dtype.kind == "f":
            if not bool(np.all(np.isfinite(array))) or not bool(np.all(array == np.round(array))):
                raise _Malformed(field, "holds numbers that are not whole")
            if array.size and float(np.abs(array).max()) >= 2.0**62:
                raise _Malformed(field, "holds numbers too large to be indices")
        return array.astype(np.int64)
    return array.astype(np.float64)


def _finite(array: np.ndarray, field: str) -> None:
    if not bool(np.all(np.isfinite(array))):
        raise _Malformed(field, "holds a value that is not a finite number (NaN or infinity)")


def _whole(value: Any, field: str, *, minimum: int = 0) -> int:
    """A count as XGBoost writes it (``"7"``) or LightGBM (``7``), at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (str, int, np.integer)):
        raise _Malformed(field, f"is {value!r}, not a whole number")
    try:
        number = int(value)
    except ValueError:
        raise _Malformed(field, f"is {value!r}, not a whole number") from None
    if number < minimum:
        raise _Malformed(field, f"is {number}, less than {minimum}")
    return number


def _check_child_links(internal_children: np.ndarray, n_nodes: int, field: str) -> None:
    """Each node is the child of at most one node and the root (0) of none: then what the root reaches is a tree."""
    if internal_children.size == 0:
        return
    if not _in_range(internal_children, 1, n_nodes):
        raise _Malformed(field, f"point outside the tree's {n_nodes} nodes (or back to its root)")
    counts = np.bincount(internal_children, minlength=n_nodes)
    if int(counts.max()) > 1:
        raise _Malformed(field, "name a node as the child of two nodes (the nodes do not form a tree)")


def xgboost_category_values(cats: Any, *, n_features: int, path: Path | None = None) -> dict[int, tuple[Any, ...]]:
    """The categories an XGBoost 3.x model stores per feature (``model["cats"]``), in training order.

    Strings are stored as UTF-8 bytes with offsets, numbers as a list; ``sorted_idx``
    orders each feature's categories for the library's lookup and must be a
    permutation of them.

    Returns
    -------
    dict
        Feature index -> its categories, for every feature with stored categories.

    Raises
    ------
    ModelError
        The structure is inconsistent: one sentence.
    """
    try:
        return _xgboost_categories(cats, n_features)
    except _Malformed as bad:
        raise _booster_error("an XGBoost", path, bad) from None


def _xgboost_categories(cats: Any, n_features: int) -> dict[int, tuple[Any, ...]]:
    if not isinstance(cats, dict):
        raise _Malformed("cats", "is not an object")
    enc = cats.get("enc", [])
    if isinstance(enc, list) and not enc:
        return {}
    if not isinstance(enc, list) or len(enc) != n_features:
        raise _Malformed("cats.enc", f"does not list the categories of its {n_features} features")
    segments = _vector(cats.get("feature_segments"), "cats.feature_segments", integral=True, length=n_features + 1)
    order = _vector(cats.get("sorted_idx"), "cats.sorted_idx", integral=True)
    if segments[0] != 0 or bool(np.any(np.diff(segments) < 0)) or segments[-1] != len(order):
        raise _Malformed("cats.feature_segments", f"does not run from 0 up to the {len(order)} stored categories")
    out: dict[int, tuple[Any, ...]] = {}
    for f in range(n_features):
        count = int(segments[f + 1] - segments[f])
        where = f"cats.enc[{f}]"
        entry = enc[f]
        if not isinstance(entry, dict):
            raise _Malformed(where, "is not an object")
        names: tuple[Any, ...]
        section = order[segments[f] : segments[f + 1]]
        if not np.array_equal(np.sort(section), np.arange(count)):
            raise _Malformed(f"cats.sorted_idx of feature {f}", f"is not an ordering of its {count} categories")
        if "offsets" in entry:
            raw = _vector(entry.get("values"), f"{where}.values", integral=True)
            if count == 0:
                if raw.size:
                    raise _Malformed(where, "holds text for a feature with no categories")
                continue
            offsets = _vector(entry["offsets"], f"{where}.offsets", integral=True, length=count + 1)
            if offsets[0] != 0 or bool(np.any(np.diff(offsets) < 0)) or offsets[-1] != len(raw):
                raise _Malformed(f"{where}.offsets", f"does not run from 0 up to its {len(raw)} bytes")
            if not _in_range(raw, -128, 256):
                raise _Malformed(f"{where}.values", "holds values that are not bytes")
            text = bytes((raw & 0xFF).astype(np.uint8).tolist())
            try:
                names = tuple(text[a:b].decode("utf-8") for a, b in zip(offsets[:-1], offsets[1:]))
            except UnicodeDecodeError:
                raise _Malformed(f"{where}.values", "holds text that is not UTF-8") from None
        else:
            values = entry.get("values", [])
            numbers = _vector(values, f"{where}.values", integral=False, length=count)
            _finite(numbers, f"{where}.values")
            names = tuple(int(v) if float(v).is_integer() else float(v) for v in numbers)
        if len(set(names)) != len(names):
            raise _Malformed(where, "names a category twice")
        if count:
            out[f] = names
    return out


def validate_xgboost_trees(
    model: Any,
    *,
    n_features: int,
    n_groups: int,
    categorical: frozenset[int] | None,
    n_categories: dict[int, int | None],
    weight_drop: Any = None,
    path: Path | None = None,
) -> tuple[int, int]:
    """Check an XGBoost tree booster (``gradient_booster.model`` of its JSON) before XGBoost reads it.

    XGBoost's predictor follows child indices, feature indices and category sets
    without bounds checks.  Checked: the tree count against ``num_trees``,
    ``tree_info`` (each tree's output group) and ``iteration_indptr``; each tree's
    ``id`` and node count against every node array; children inside the tree, none
    the child of two nodes or the root a child (so the nodes form a tree); features
    below ``n_features``; thresholds and leaf values finite; default directions 0
    or 1; categorical splits on categorical features, their category lists inside
    the category array and each code below the feature's category count; DART's
    ``weight_drop`` one finite weight per tree.

    Parameters
    ----------
    model: the ``model`` object (``gbtree_model_param``, ``trees``, ``tree_info``, ...).
    n_features: the learner's ``num_feature``.
    n_groups: output groups (classes of a multiclass model, else 1).
    categorical: the features the file types as categorical (``None``: untyped).
    n_categories: categorical feature -> its stored category count (``None``: unknown).
    weight_drop: DART's per-tree weights, if a DART booster.
    path: the file, named in the error.

    Returns
    -------
    (n_trees, n_rounds)

    Raises
    ------
    ModelError
        One sentence naming the file, the tree and the field.
    """
    try:
        return _xgboost_trees(model, n_features, n_groups, categorical, n_categories, weight_drop)
    except _Malformed as bad:
        raise _booster_error("an XGBoost", path, bad) from None


def _xgboost_trees(
    model: Any,
    n_features: int,
    n_groups: int,
    categorical: frozenset[int] | None,
    n_categories: dict[int, int | None],
    weight_drop: Any,
) -> tuple[int, int]:
    if not isinstance(model, dict):
        raise _Malformed("model", "is not an object")
    params = model.get("gbtree_model_param")
    if not isinstance(params, dict):
        raise _Malformed("gbtree_model_param", "is missing")
    n_trees = _whole(params.get("num_trees"), "num_trees")
    parallel = _whole(params.get("num_parallel_tree", "1"), "num_parallel_tree", minimum=1)
    trees = model.get("trees")
    if not isinstance(trees, list) or len(trees) != n_trees:
        raise _Malformed("trees", f"do not number num_trees ({n_trees})")
    info = _vector(model.get("tree_info"), "tree_info", integral=True, length=n_trees)
    if not _in_range(info, 0, n_groups):
        raise _Malformed("tree_info", f"assigns a tree to an output outside its {n_groups}")
    if "iteration_indptr" in model:
        indptr = _vector(model["iteration_indptr"], "iteration_indptr", integral=True)
        if len(indptr) < 1 or indptr[0] != 0 or bool(np.any(np.diff(indptr) < 0)) or indptr[-1] != n_trees:
            raise _Malformed("iteration_indptr", f"does not run from 0 up to its {n_trees} trees")
        n_rounds = len(indptr) - 1
    else:
        per_round = n_groups * parallel
        if n_trees % per_round:
            raise _Malformed("trees", f"number {n_trees}, not a multiple of the {per_round} trees of a round")
        n_rounds = n_trees // per_round
    if weight_drop is not None:
        weights = _vector(weight_drop, "weight_drop", integral=False, length=n_trees)
        _finite(weights, "weight_drop")
    for t, tree in enumerate(trees):
        _xgboost_tree(tree, t, n_features, categorical, n_categories)
    return n_trees, n_rounds


def _xgboost_tree(
    tree: Any, t: int, n_features: int, categorical: frozenset[int] | None, n_categories: dict[int, int | None]
) -> None:
    where = f"tree {t}"
    if not isinstance(tree, dict) or not isinstance(tree.get("tree_param"), dict):
        raise _Malformed(where, "is not a tree object with its tree_param")
    param = tree["tree_param"]
    n = _whole(param.get("num_nodes"), f"{where}'s num_nodes", minimum=1)
    if _whole(param.get("num_feature", n_features), f"{where}'s num_feature") != n_features:
        raise _Malformed(f"{where}'s num_feature", f"is {param.get('num_feature')!r}, not the model's {n_features}")
    leaf_size = _whole(param.get("size_leaf_vector", "1"), f"{where}'s size_leaf_vector")
    if leaf_size > 1:
        raise _Malformed(f"{where}'s size_leaf_vector", f"is {leaf_size}: a multi-output tree Probity does not read")
    if _whole(tree.get("id"), f"{where}'s id") != t:
        raise _Malformed(f"{where}'s id", f"is {tree.get('id')!r}, not its position {t}")
    left = _vector(tree.get("left_children"), f"{where}'s left_children", integral=True, length=n)
    right = _vector(tree.get("right_children"), f"{where}'s right_children", integral=True, length=n)
    _vector(tree.get("parents"), f"{where}'s parents", integral=True, length=n)
    feature = _vector(tree.get("split_indices"), f"{where}'s split_indices", integral=True, length=n)
    conditions = _vector(tree.get("split_conditions"), f"{where}'s split_conditions", integral=False, length=n)
    default_left = _vector(tree.get("default_left"), f"{where}'s default_left", integral=True, length=n)
    weights = _vector(tree.get("base_weights"), f"{where}'s base_weights", integral=False, length=n)
    for key in ("loss_changes", "sum_hessian"):
        if key in tree:
            _finite(_vector(tree[key], f"{where}'s {key}", integral=False, length=n), f"{where}'s {key}")
    split_type = (
        _vector(tree["split_type"], f"{where}'s split_type", integral=True, length=n)
        if "split_type" in tree
        else np.zeros(n, dtype=np.int64)
    )
    leaf = left == -1
    if not np.array_equal(leaf, right == -1):
        raise _Malformed(f"{where}'s children", "give a node one child only")
    inner = ~leaf
    _check_child_links(np.concatenate([left[inner], right[inner]]), n, f"{where}'s child indices")
    if bool(np.any(left[inner] == right[inner])):
        raise _Malformed(f"{where}'s child indices", "give a node the same child twice")
    if not _in_range(feature[inner], 0, n_features):
        raise _Malformed(f"{where}'s split_indices", f"names a feature outside its {n_features}")
    _finite(conditions, f"{where}'s split_conditions")
    _finite(weights, f"{where}'s base_weights")
    if not _in_range(default_left, 0, 2):
        raise _Malformed(f"{where}'s default_left", "holds values other than 0 and 1")
    if not _in_range(split_type, 0, 2):
        raise _Malformed(f"{where}'s split_type", "holds values other than 0 (numeric) and 1 (categorical)")
    cat_nodes = np.flatnonzero(split_type == 1)
    if bool(np.any(leaf[cat_nodes])):
        raise _Malformed(f"{where}'s split_type", "marks a leaf as a categorical split")
    if cat_nodes.size == 0:
        return
    if categorical is not None:
        untyped = sorted({int(f) for f in feature[cat_nodes]} - categorical)
        if untyped:
            raise _Malformed(
                f"{where}'s split_type", f"splits feature {untyped[0]} by category, but it is not categorical"
            )
    nodes = _vector(tree.get("categories_nodes"), f"{where}'s categories_nodes", integral=True)
    segments = _vector(tree.get("categories_segments"), f"{where}'s categories_segments", integral=True)
    sizes = _vector(tree.get("categories_sizes"), f"{where}'s categories_sizes", integral=True)
    codes = _vector(tree.get("categories"), f"{where}'s categories", integral=True)
    if not np.array_equal(np.sort(nodes), cat_nodes) or len(segments) != len(nodes) or len(sizes) != len(nodes):
        raise _Malformed(f"{where}'s categories_nodes", "does not list exactly its categorical splits")
    if bool(np.any(sizes < 0)) or bool(np.any(segments < 0)) or bool(np.any(segments + sizes > len(codes))):
        raise _Malformed(f"{where}'s categories_segments", f"points outside its {len(codes)} categories")
    for node, start, size in zip(nodes, segments, sizes):
        chosen = codes[start : start + size]
        known = n_categories.get(int(feature[node]))
        limit = known if known is not None else _MAX_CATEGORY_CODE
        if not _in_range(chosen, 0, limit):
            raise _Malformed(
                f"{where}'s categories", f"names a category code outside the {limit} of feature {int(feature[node])}"
            )


def validate_lightgbm_trees(trees: Any, *, n_features: int, path: Path | None = None) -> None:
    """Check the trees of a LightGBM model text before LightGBM reads it.

    Each tree is the ``key=value`` text of its block.  Checked: ``num_leaves`` and
    every node array's length (``num_leaves - 1`` splits, ``num_leaves`` leaves);
    children (``>= 0`` a split, ``< 0`` the leaf ``~c``) inside the tree, each split
    but the root and each leaf the child of exactly one split; split features below
    ``n_features``; thresholds, leaf values and shrinkage finite; decision types
    known; categorical splits' thresholds inside ``num_cat`` and ``cat_boundaries``
    running from 0 up to ``cat_threshold``'s 32-bit words; linear trees' leaf
    features and coefficients.

    Raises
    ------
    ModelError
        One sentence naming the file, the tree and the field.
    """
    try:
        for t, tree in enumerate(trees):
            _lightgbm_tree(tree, t, n_features)
    except _Malformed as bad:
        raise _booster_error("a LightGBM", path, bad) from None


def _lightgbm_tree(tree: dict[str, str], t: int, n_features: int) -> None:
    where = f"tree {t}"
    n_leaves = _whole(tree.get("num_leaves"), f"{where}'s num_leaves", minimum=1)
    n_cat = _whole(tree.get("num_cat", "0"), f"{where}'s num_cat")
    values = _vector(tree.get("leaf_value"), f"{where}'s leaf_value", integral=False, length=n_leaves)
    _finite(values, f"{where}'s leaf_value")
    if "shrinkage" in tree:
        _finite(_vector(tree["shrinkage"], f"{where}'s shrinkage", integral=False, length=1), f"{where}'s shrinkage")
    n_splits = n_leaves - 1
    if n_splits:
        feature = _vector(tree.get("split_feature"), f"{where}'s split_feature", integral=True, length=n_splits)
        threshold = _vector(tree.get("threshold"), f"{where}'s threshold", integral=False, length=n_splits)
        decision = _vector(tree.get("decision_type"), f"{where}'s decision_type", integral=True, length=n_splits)
        left = _vector(tree.get("left_child"), f"{where}'s left_child", integral=True, length=n_splits)
        right = _vector(tree.get("right_child"), f"{where}'s right_child", integral=True, length=n_splits)
        if not _in_range(feature, 0, n_features):
            raise _Malformed(f"{where}'s split_feature", f"names a feature outside its {n_features}")
        # A numeric split may have an infinite threshold: LightGBM writes one where a split sends the missing
        # values one way and every other value the other (threshold=inf). NaN is never a threshold.
        if bool(np.any(np.isnan(threshold))):
            raise _Malformed(f"{where}'s threshold", "holds a value that is not a number (NaN)")
        if not _in_range(decision, 0, 16) or bool(np.any(((decision >> 2) & 3) == 3)):
            raise _Malformed(f"{where}'s decision_type", "holds a split kind LightGBM does not define")
        children = np.concatenate([left, right])
        splits, leaves = children[children >= 0], ~children[children < 0]
        _check_child_links(splits, n_splits, f"{where}'s child indices")
        if not _in_range(leaves, 0, n_leaves):
            raise _Malformed(f"{where}'s child indices", f"point outside its {n_leaves} leaves")
        if len(splits) != n_splits - 1 or len(np.unique(leaves)) != n_leaves:
            raise _Malformed(f"{where}'s child indices", "do not reach every split and leaf exactly once")
        is_cat = (decision & 1) == 1
        if bool(np.any(is_cat)):
            boundaries = _vector(
                tree.get("cat_boundaries"), f"{where}'s cat_boundaries", integral=True, length=n_cat + 1
            )
            words = _vector(tree.get("cat_threshold"), f"{where}'s cat_threshold", integral=True)
            if boundaries[0] != 0 or bool(np.any(np.diff(boundaries) < 0)) or boundaries[-1] != len(words):
                raise _Malformed(
                    f"{where}'s cat_boundaries", f"does not run from 0 up to its {len(words)} category words"
                )
            if not _in_range(words, 0, 1 << 32):
                raise _Malformed(f"{where}'s cat_threshold", "holds values that are not 32-bit words")
            index = threshold[is_cat]
            if (
                not bool(np.all(np.isfinite(index)))
                or not bool(np.all(index == np.round(index)))
                or not _in_range(index.astype(np.int64), 0, n_cat)
            ):
                raise _Malformed(
                    f"{where}'s threshold", f"points a categorical split outside its {n_cat} category sets"
                )
    if tree.get("is_linear", "0") not in ("0", ""):
        if tree["is_linear"] != "1":
            raise _Malformed(f"{where}'s is_linear", f"is {tree['is_linear']!r}, not 0 or 1")
        const = _vector(tree.get("leaf_const"), f"{where}'s leaf_const", integral=False, length=n_leaves)
        _finite(const, f"{where}'s leaf_const")
        counts = _vector(tree.get("num_features"), f"{where}'s num_features", integral=True, length=n_leaves)
        if bool(np.any(counts < 0)):
            raise _Malformed(f"{where}'s num_features", "holds a negative count")
        total = int(counts.sum())
        used = _vector(tree.get("leaf_features", ""), f"{where}'s leaf_features", integral=True, length=total)
        coefficients = _vector(tree.get("leaf_coeff", ""), f"{where}'s leaf_coeff", integral=False, length=total)
        if not _in_range(used, 0, n_features):
            raise _Malformed(f"{where}'s leaf_features", f"names a feature outside its {n_features}")
        _finite(coefficients, f"{where}'s leaf_coeff")

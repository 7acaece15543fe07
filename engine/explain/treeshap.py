"""Exact TreeSHAP, path-dependent and interventional, for scikit-learn tree models and XGBoost, LightGBM and
CatBoost models.

Boosters are read into the same flat trees by :mod:`engine.explain._booster_trees`
(CatBoost models by :mod:`engine.explain._catboost_trees`),
with each library's own routing (float32 thresholds, default directions, category
sets) and covers, and explained in their margin space.

Path-dependent (Lundberg et al. 2018, "tree_path_dependent")
-----------------------------------------------------------
For a leaf ``l`` whose root path splits on the distinct features ``P`` and a row
``x``, let ``z_j`` be the product of the cover ratios along the path's edges on
feature ``j`` and ``o_j`` be 1 when ``x`` satisfies all of the path's conditions on
``j`` (else 0).  Writing ``F_j(u) = (1 - u) z_j + u o_j``, the Shapley value of
feature ``i`` is

    phi_i = sum_l v_l (o_i - z_i) * integral_0^1 prod_{j in P, j != i} F_j(u) du,

because ``integral u^s (1-u)^(d-1-s) du = s! (d-1-s)! / d!`` are exactly the
Shapley weights.  The integrand is a polynomial of degree ``|P| - 1``, so an
``m``-point Gauss-Legendre rule with ``2m >= |P|`` integrates it exactly.  The
products are accumulated top-down through the tree and the leaf sums bottom-up
(the idea of "Linear TreeShap", Yu et al. 2022), so the cost is
``O(nodes * m)`` per row, with every numpy operation spanning a whole level of
nodes times a chunk of rows.  Feature ``i`` at an edge collects the leaves
below it whose last split on ``i`` is that edge; this is arranged by giving each
edge the difference between its own weight and that of the previous split on
the same feature along the path.

Interventional (Lundberg et al. 2020)
------------------------------------
For a row ``x`` and a background row ``r`` the tree is a game whose leaf ``l``
is reached by the hybrid ``(x_S, r_not S)`` exactly when the features ``A`` on
which only ``x`` follows the path are in ``S`` and the features ``B`` on which
only ``r`` follows it are not.  Its Shapley values are
``(|A|-1)! |B|! / (|A|+|B|)!`` times ``v_l`` for ``i`` in ``A`` and
``-|A|! (|B|-1)! / (|A|+|B|)!`` times ``v_l`` for ``i`` in ``B``.  All rows walk
the tree together, level by level, each carrying the set of background rows
(a bitset) that took the same turns so far; a split sends the row's state down
both children only where the row and some of those background rows disagree on
a feature not yet fixed.  Leaf weights are pushed back up and each edge credits
its feature as in the path-dependent case.

Both variants are exact; ``tests/engine/test_treeshap.py`` checks them against
shap's TreeExplainer and against brute-force enumeration of coalitions.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.attribution import AttributionResult, resolve_output
from engine.device import choose_device
from engine.errors import AnalysisError
from engine.explain._booster_trees import booster_margin, booster_matrix, booster_tree_model, is_booster_model
from engine.explain._catboost_trees import catboost_matrix, catboost_refusal, catboost_tree_model, is_catboost_model
from engine.explain._pipeline import encoded_view, model_output, row_positions, wrapper_library
from engine.explain._predict import job_threads_later
from engine.explain._treeplan import (  # the tree plan, shared with the torch kernels
    _background_bits,
    _concat,
    _Plan,
    _plan,
)
from engine.explain._trees import (
    Tree,
    TreeModel,
    extract_tree_model,
    go_left,
    is_tree_estimator,
    predict_tree_model,
)
from engine.explain._treeshap_kernels import (
    _interventional_block,
    _path_dependent_block,
    _path_tables,
    _shapley_ab_weights,
)
from engine.inputs import AuditInputs
from engine.jobs import JobContext
from engine.method import Method
from engine.params import Param, class_param, device_param, rows_param
from engine.results import utc_now

__all__ = ["METHOD", "VARIANTS", "run", "refusal", "tree_model_shap_values", "tree_shap_values", "internal_sources"]

VARIANTS = ("path_dependent", "interventional")

# Elements of float64 work arrays one (tree block, row chunk) unit may use; a few
# arrays of this size live at once, so this bounds the working memory (~32 MiB each).
_WORK_ELEMENTS = 4_000_000
# Work units of the interventional variant start from about this many (row, background) pairs.
_PAIRS_PER_UNIT = 65536


# -- drivers ----------------------------------------------------------------------------------------


def _path_blocks(model: TreeModel, n_rows: int, work: int = _WORK_ELEMENTS) -> list[list[int]]:
    """Group consecutive trees so that one (block, row chunk) unit fills the work arrays.

    Small trees are batched so each numpy call spans many nodes; a large tree
    stands alone and its rows are chunked instead.
    """
    rows = max(1, min(n_rows, 64))
    # Eight quadrature nodes is a typical size; the exact count is known only after planning.
    budget = max(1, work // (rows * 8))
    blocks: list[list[int]] = []
    cur: list[int] = []
    used = 0
    for i, t in enumerate(model.trees):
        if cur and used + t.n_nodes > budget:
            blocks.append(cur)
            cur, used = [], 0
        cur.append(i)
        used += t.n_nodes
    if cur:
        blocks.append(cur)
    return blocks


def tree_model_shap_values(
    model: TreeModel,
    X: np.ndarray,
    *,
    variant: str = "path_dependent",
    background: np.ndarray | None = None,
    progress: Callable[[float, str], None] | None = None,
    check_cancelled: Callable[[], None] | None = None,
    n_threads: int | None = None,
    torch_device: str | None = None,
) -> tuple[np.ndarray, float]:
    """Exact SHAP values of a :class:`~engine.explain._trees.TreeModel`.

    Parameters
    ----------
    model: the extracted trees.
    X: ``(n, F)`` rows in the trees' input columns.
    variant: ``"path_dependent"`` or ``"interventional"``.
    background: ``(r, F)`` reference rows, required for ``"interventional"``.
    progress: called with (fraction, message) after each block of trees.
    check_cancelled: called between blocks; raises to stop.
    n_threads: worker threads over row chunks (``None``: the job's share,
        :func:`engine.explain._predict.job_threads`; numpy's kernels here are
        single-threaded and release the GIL).
    torch_device: run the work as torch tensors on this device (``"cuda"``;
        ``"cpu"`` runs the same torch code on the processor); ``None`` uses numpy.

    Returns
    -------
    values: ``(n, F)`` float64 attributions.
    base: the expected value the attributions start from.
    """
    if variant not in VARIANTS:
        raise AnalysisError(f"TreeSHAP has no variant {variant!r}; choose one of {', '.join(VARIANTS)}.")
    # The worker count is read while the rows are prepared and the first block of trees is planned.
    threads = job_threads_later(n_threads) if torch_device is None else _one_thread
    Xp = model.prepare(X)
    n, F = Xp.shape
    values = np.zeros((n, F))
    if torch_device is None and _by_leaf_pays(model, n):
        return _by_leaf(model, Xp, variant, background, progress, check_cancelled)
    if variant == "interventional":
        Bp, base, wa, wb = _background_game(model, background, F)
        # (row, background) pairs multiply; keep the pairs per unit moderate.
        chunk = max(1, _PAIRS_PER_UNIT // Bp.shape[0])

        if torch_device is not None:
            from engine.explain._treeshap_torch import (
                GPU_PAIRS_PER_UNIT,
                interventional_rows,
                torch_interventional_block,
            )

            chunk = max(1, GPU_PAIRS_PER_UNIT // Bp.shape[0])
            # The device runs the expansion; one host thread feeds it (threads is _one_thread).

        def prepare_interventional(trees: list[Tree]) -> _Prepared:
            plan = _plan(_concat(trees))
            bits: Any = _background_bits(plan, Bp)
            if torch_device is not None:
                bits = torch_interventional_block(plan, bits, wa, wb, torch_device)
            return _Prepared(plan=plan, base=0.0, rows=chunk, payload=bits)

        def interventional_unit(block: _Prepared, lo: int) -> np.ndarray:
            if torch_device is not None:
                return interventional_rows(block.payload, Xp[lo : lo + block.rows], F)
            part = np.zeros((min(n, lo + block.rows) - lo, F))
            _interventional_block(block.plan, block.payload, Xp[lo : lo + block.rows], part, wa, wb)
            return part

        _run_blocks(
            [[i] for i in range(len(model.trees))],
            model,
            prepare=prepare_interventional,
            unit=interventional_unit,
            values=values,
            threads=threads,
            progress=progress,
            check_cancelled=check_cancelled,
            label="Interventional TreeSHAP",
        )
        return values, base

    if torch_device is not None:
        from engine.explain._treeshap_torch import GPU_WORK_ELEMENTS, path_dependent_rows, torch_path_block

        def prepare_torch(trees: list[Tree]) -> _Prepared:
            plan = _plan(_concat(trees))
            block = torch_path_block(plan, _path_tables(plan, F), n, torch_device)
            return _Prepared(plan=plan, base=plan.base, rows=block.rows_per_unit, payload=block)

        base = _run_blocks(
            _path_blocks(model, n, work=GPU_WORK_ELEMENTS),
            model,
            prepare=prepare_torch,
            unit=lambda block, lo: path_dependent_rows(block.payload, Xp[lo : lo + block.rows], F),
            values=values,
            threads=_one_thread,  # the device runs the sweeps; one host thread feeds it
            progress=progress,
            check_cancelled=check_cancelled,
            label="TreeSHAP",
        )
        return values, float(model.offset) + base

    local = threading.local()

    def prepare_path(trees: list[Tree]) -> _Prepared:
        plan = _plan(_concat(trees))
        tables = _path_tables(plan, F)
        rows = int(max(1, min(n, _WORK_ELEMENTS // max(plan.n_nodes * tables.m, 1))))
        return _Prepared(plan=plan, base=plan.base, rows=rows, payload=tables)

    def path_unit(block: _Prepared, lo: int) -> np.ndarray:
        buffers = getattr(local, "buffers", None)
        if buffers is None:
            buffers = local.buffers = {}
        part = np.zeros((min(n, lo + block.rows) - lo, F))
        _path_dependent_block(block.plan, block.payload, Xp[lo : lo + block.rows], part, buffers)
        return part

    base = _run_blocks(
        _path_blocks(model, n),
        model,
        prepare=prepare_path,
        unit=path_unit,
        values=values,
        threads=threads,
        progress=progress,
        check_cancelled=check_cancelled,
        label="TreeSHAP",
    )
    return values, float(model.offset) + base


# -- oblivious trees: one computation per leaf ---------------------------------------------------------------


def _oblivious_levels(tree: Tree) -> tuple[int, ...] | None:
    """One internal node per depth of an oblivious ``tree``, or ``None`` when it is not one.

    An oblivious tree (as CatBoost grows them) is complete and its nodes at each
    depth all make the same split, so a row takes the same side at every node of a
    depth, and the leaf it reaches records all of them.  Both TreeSHAP games depend
    on a row only through those sides, so every row reaching one leaf has the same
    SHAP values from this tree.
    """
    level = np.zeros(1, dtype=np.int64)
    chosen: list[int] = []
    while True:
        inner = tree.left[level] >= 0
        if not inner.any():
            return tuple(chosen)
        if not inner.all():
            return None  # leaves at two depths: the leaf does not record every side
        first = int(level[0])
        alike = bool(
            np.all(tree.feature[level] == tree.feature[first])
            and np.array_equal(tree.threshold[level], np.full(level.size, tree.threshold[first]), equal_nan=True)
            and np.all(tree.missing_left[level] == tree.missing_left[first])
        )
        if tree.categorical is not None and alike and tree.categorical[level].any():
            alike = bool(tree.categorical[level].all()) and all(
                bits is None or bool(np.all(bits[level] == bits[first]))
                for bits in (tree.left_categories, tree.known_categories, tree.unknown_left)
            )
        if not alike:
            return None
        chosen.append(first)
        level = np.concatenate([tree.left[level], tree.right[level]])


def _leaf_determined(tree: Tree) -> bool:
    """Whether the leaf a row reaches fixes the side it takes at every node (see :func:`_oblivious_levels`)."""
    return _oblivious_levels(tree) is not None


def _background_game(
    model: TreeModel, background: np.ndarray | None, n_features: int
) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    """Interventional TreeSHAP's background: its prepared rows, its mean output (the base) and the Shapley weights."""
    if background is None or len(background) == 0:
        raise AnalysisError("Interventional TreeSHAP needs at least one background row.")
    wa, wb = _shapley_ab_weights(n_features + 1)
    return model.prepare(background), float(np.mean(predict_tree_model(model, background))), wa, wb


def _by_leaf_pays(model: TreeModel, n_rows: int) -> bool:
    """Whether to compute oblivious trees once per leaf: every tree is one, and rows outnumber its leaves."""
    if not model.trees:
        return False
    leaves = max(int(np.sum(t.left < 0)) for t in model.trees)
    return n_rows > 2 * leaves and all(_leaf_determined(t) for t in model.trees)


def _by_leaf(
    model: TreeModel,
    Xp: np.ndarray,
    variant: str,
    background: np.ndarray | None,
    progress: Callable[[float, str], None] | None,
    check_cancelled: Callable[[], None] | None,
) -> tuple[np.ndarray, float]:
    """Exact SHAP values of oblivious trees: each tree's values on one row per leaf reached, then looked up.

    A row's leaf is the pattern of its sides, one split per depth; the same numbers
    as the row-by-row sweeps (:func:`_oblivious_levels` says why), at a cost of one
    comparison per depth and an addition per row and tree.
    """
    n, F = Xp.shape
    values = np.zeros((n, F))
    buffers: dict[str, np.ndarray] = {}
    base = 0.0
    if variant == "interventional":
        Bp, base, wa, wb = _background_game(model, background, F)
    total = len(model.trees)
    every = np.arange(n)
    for t, tree in enumerate(model.trees):
        if check_cancelled is not None:
            check_cancelled()
        levels = _oblivious_levels(tree)
        assert levels is not None  # _by_leaf_pays checked every tree
        code = np.zeros(n, dtype=np.int64)
        for depth, node in enumerate(levels):
            right = ~go_left(tree, Xp, np.array([node], dtype=np.int64))[:, 0]
            code |= right.astype(np.int64) << depth
        size = 1 << len(levels)
        some_row = np.zeros(size, dtype=np.int64)
        some_row[code] = every  # any row of a leaf stands for all of them
        present = np.bincount(code, minlength=size) > 0
        position = np.cumsum(present) - 1
        plan = _plan(_concat([tree]))
        part = np.zeros((int(present.sum()), F))
        if variant == "interventional":
            _interventional_block(plan, _background_bits(plan, Bp), Xp[some_row[present]], part, wa, wb)
        else:
            _path_dependent_block(plan, _path_tables(plan, F), Xp[some_row[present]], part, buffers)
            base += plan.base
        values += part[position[code]]
        if progress is not None and (t + 1 == total or t % 10 == 9):
            progress((t + 1) / total, f"TreeSHAP: {t + 1:,} of {total:,} trees")
    return values, (base if variant == "interventional" else float(model.offset) + base)


def _one_thread() -> int:
    return 1


@dataclass(frozen=True, eq=False)
class _Prepared:
    """A block of trees ready to explain rows: its plan, its share of the base
    value, the rows per work unit and the variant's own tables."""

    plan: _Plan
    base: float
    rows: int
    payload: Any


def _run_blocks(
    blocks: list[list[int]],
    model: TreeModel,
    *,
    prepare: Callable[[list[Tree]], _Prepared],
    unit: Callable[[_Prepared, int], np.ndarray],
    values: np.ndarray,
    threads: Callable[[], int],
    progress: Callable[[float, str], None] | None,
    check_cancelled: Callable[[], None] | None,
    label: str,
) -> float:
    """Run ``unit(block, first_row)`` over blocks x row chunks, adding into ``values``.

    ``threads()`` gives the worker count once the first block is planned.
    Returns the sum of the blocks' base values.
    """
    n = values.shape[0]
    n_trees = len(model.trees)
    base = 0.0
    done = 0
    pool: ThreadPoolExecutor | None = None
    workers = 0
    try:
        for blk in blocks:
            if check_cancelled is not None:
                check_cancelled()
            block = prepare([model.trees[i] for i in blk])
            base += block.base
            starts = range(0, n, block.rows)
            if not workers:
                workers = threads()
                pool = ThreadPoolExecutor(max_workers=workers) if workers > 1 else None

            def one(lo: int, block: _Prepared = block) -> np.ndarray:
                # Row chunks of one large tree can take a while: look at the cancel flag before each.
                if check_cancelled is not None:
                    check_cancelled()
                return unit(block, lo)

            parts = [one(lo) for lo in starts] if pool is None else list(pool.map(one, starts))
            for lo, part in zip(starts, parts):
                values[lo : lo + part.shape[0]] += part
            done += len(blk)
            if progress is not None:
                progress(done / n_trees, f"{label}: {done} of {n_trees} trees")
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    return base


def tree_shap_values(
    estimator: Any,
    X_encoded: Any,
    *,
    variant: str = "path_dependent",
    background: Any | None = None,
    class_index: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact SHAP values of a fitted scikit-learn tree model on numeric inputs.

    Parameters
    ----------
    estimator: a fitted tree model (see :func:`engine.explain._trees.extract_tree_model`), not a Pipeline.
    X_encoded: ``(n, F)`` rows exactly as the estimator takes them (numeric array,
        or a frame for a histogram gradient boosting model with categorical dtypes).
    variant: ``"path_dependent"`` (uses node covers) or ``"interventional"``.
    background: ``(r, F)`` reference rows for ``"interventional"``.
    class_index: probability column to explain (classifiers); ``None`` as in
        :func:`engine.attribution.resolve_output`.

    Returns
    -------
    values: ``(n, F)`` attributions in the model's explained space, in the estimator's input columns.
    base_values: ``(n,)`` the expected value, repeated.
    """
    model = extract_tree_model(estimator, class_index=class_index)
    inner = internal_sources(estimator)
    if inner is None:
        values, base = tree_model_shap_values(model, X_encoded, variant=variant, background=background)
        return values, np.full(values.shape[0], base)
    pre = estimator._preprocessor
    X_inner = np.asarray(pre.transform(X_encoded), dtype=np.float64)
    B_inner = None if background is None else np.asarray(pre.transform(background), dtype=np.float64)
    inner_values, base = tree_model_shap_values(model, X_inner, variant=variant, background=B_inner)
    values = np.zeros_like(inner_values)
    values[:, inner] = inner_values
    return values, np.full(values.shape[0], base)


def internal_sources(estimator: Any) -> np.ndarray | None:
    """For a histogram gradient boosting model that encodes categorical dtypes
    itself, the input column behind each internal column (categorical first);
    ``None`` when the model takes its inputs as they are."""
    if getattr(estimator, "_preprocessor", None) is None:
        return None
    is_cat = np.asarray(estimator.is_categorical_, dtype=bool)
    return np.concatenate([np.flatnonzero(is_cat), np.flatnonzero(~is_cat)]).astype(np.int64)


# -- the analysis -----------------------------------------------------------------------------------


def _tree_estimator(model: Any) -> Any:
    estimator = model.estimator
    if estimator is None:
        raise AnalysisError(
            "TreeSHAP needs a tree model (scikit-learn's, or an XGBoost, LightGBM or CatBoost model), but "
            f"{model.name} is a {model.format} model"
            + ("; KernelSHAP explains it instead." if model.format == "catboost" else ".")
        )
    return estimator


def _wrapped_booster(estimator: Any, name: str) -> Any:
    """The booster inside a fitted wrapper, as a :class:`~engine.models.booster_adapter.BoosterModel`.

    Its model is written out by the library and read back through the same checks as a
    booster file, so TreeSHAP reads its trees exactly as it reads ``.json`` and ``.txt`` files.
    """
    from pathlib import Path

    from engine.errors import ModelError
    from engine.models.booster_adapter import load_booster

    library = wrapper_library(estimator)
    try:
        if library == "xgboost":
            data = bytes(estimator.get_booster().save_raw("ubj"))
        else:
            data = estimator.booster_.model_to_string().encode("utf-8")
        return load_booster(data, path=Path(f"{name} ({type(estimator).__name__})"), sha256="", family=str(library))
    except (ModelError, AttributeError, ValueError) as exc:
        text = exc.message if isinstance(exc, ModelError) else str(exc)
        raise AnalysisError(f"TreeSHAP cannot read the booster inside {name}: {text.rstrip('.')}.") from None


def _tree_view(model: Any, feature_names: Sequence[str]) -> Any:
    """How the model's tree step sees the raw columns; raises :class:`AnalysisError` when TreeSHAP cannot run."""
    view = encoded_view(_tree_estimator(model), feature_names, explainer="TreeSHAP")
    if wrapper_library(view.final) is not None:
        return view
    if not is_tree_estimator(view.final):
        raise AnalysisError(
            f"TreeSHAP explains scikit-learn tree models, but the model {model.name} ends in a "
            f"{type(view.final).__name__}."
        )
    return view


def refusal(model: Any, *, feature_names: Sequence[str]) -> str | None:
    """Why exact TreeSHAP cannot explain ``model`` (the sentence :func:`run` would raise), or ``None``."""
    if is_catboost_model(model):
        return catboost_refusal(model)
    if is_booster_model(model):
        return None
    try:
        _tree_view(model, feature_names)
    except AnalysisError as exc:
        return exc.message
    return None


def _output_label(space: str, output_name: str, model_classes: Sequence[Any] | None, class_index: int | None) -> str:
    if space == "log-odds" and model_classes is not None and class_index is not None:
        label = model_classes[class_index]
        if len(model_classes) == 2:
            return f"log-odds({label})"
        return f"softmax logit({label})"
    if space == "margin":
        return "log(prediction)"
    return output_name


@dataclass(frozen=True, eq=False)
class _Target:
    """What TreeSHAP explains: the trees, how raw rows reach them and come back, and the model's own output."""

    trees: TreeModel
    encode: Callable[[Any], np.ndarray]
    to_raw: Callable[[np.ndarray], np.ndarray]
    predict: Callable[[Any], np.ndarray]
    n_encoded: int
    output_label: str


def _sklearn_target(model: Any, feature_names: Sequence[str], class_index: int | None, output_name: str) -> _Target:
    estimator = _tree_estimator(model)
    view = _tree_view(model, feature_names)
    final = view.final
    inner = internal_sources(final)
    if inner is not None:
        view = view.with_extra(final._preprocessor.transform, inner)
    wrapped = wrapper_library(final)
    if wrapped is not None:
        # XGBoost's or LightGBM's scikit-learn wrapper: its booster's trees, in the booster's margin space.
        tree_model = booster_tree_model(_wrapped_booster(final, model.name), class_index=class_index)
    else:
        tree_model = extract_tree_model(final, class_index=class_index)
    space = tree_model.output_space

    def predict(X_raw: Any) -> np.ndarray:
        data = X_raw if model.input_columns is not None else X_raw.to_numpy()
        return model_output(estimator, data, space=space, class_index=class_index)

    return _Target(
        trees=tree_model,
        encode=view.encode,
        to_raw=view.to_raw,
        predict=predict,
        n_encoded=view.n_encoded,
        output_label=_output_label(space, output_name, model.classes, class_index),
    )


def _booster_target(model: Any, class_index: int | None) -> _Target:
    """An XGBoost, LightGBM or CatBoost model: its trees in margin space, its own input matrix and raw output."""
    catboost = is_catboost_model(model)
    tree_model = (catboost_tree_model if catboost else booster_tree_model)(model, class_index=class_index)
    return _Target(
        trees=tree_model,
        encode=lambda X_raw: (catboost_matrix if catboost else booster_matrix)(model, X_raw),
        to_raw=lambda values: values,
        predict=lambda X_raw: booster_margin(model, X_raw, class_index),
        n_encoded=int(model.info.n_features),
        output_label=_booster_label(model, tree_model.output_space, class_index),
    )


def _booster_label(model: Any, space: str, class_index: int | None) -> str:
    """The name of a booster's explained margin: ``log-odds(1)``, ``softmax logit(2)``, ``log(prediction)``."""
    classes = model.classes
    if classes is not None and class_index is not None:
        label = classes[class_index]
        if len(classes) == 2:
            return f"log-odds({label})" if space == "log-odds" else f"margin({label})"
        if str(model.info.objective).lower().startswith(("multiclassova", "multiclassonevsall")):
            return f"one-vs-rest log-odds({label})"
        return f"softmax logit({label})"
    return {"margin": "log(prediction)", "log-odds": "logit(prediction)"}.get(space, "prediction")


def run(
    inputs: AuditInputs,
    *,
    ctx: JobContext,
    rows: Sequence[int] | None = None,
    variant: str = "path_dependent",
    background_size: int = 100,
    klass: Any | None = None,
    device: str = "auto",
) -> AttributionResult:
    """Exact TreeSHAP attributions of a scikit-learn tree model or a booster, in raw input columns.

    Parameters
    ----------
    inputs: data, roles and a model whose estimator (or Pipeline's last step) is a tree
        model, or an XGBoost, LightGBM or CatBoost model read from its own file (explained in its
        margin space: log-odds, softmax logits or the raw regression output).
    ctx: job context (progress, cancel, random streams).
    rows: 0-based row positions to explain; ``None`` explains every row.
    variant: ``"path_dependent"`` (training covers, no background) or
        ``"interventional"`` (marginal expectation over background rows).
    background_size: background rows for ``"interventional"``, drawn without
        replacement from the data with ``ctx.rng("treeshap", "background")``.
    klass: class to explain (classifiers); ``None``: the positive class of a binary
        model, else the first class.
    device: ``"auto"`` (a CUDA GPU when torch sees one), ``"cpu"`` or ``"cuda"``:
        where the tree sweeps run.

    Returns
    -------
    AttributionResult
        ``values`` ``(n, F)`` in raw columns, ``base_values`` ``(n,)``, the model's
        own ``predictions`` in the explained space and per-row additivity errors.
    """
    started = utc_now()
    t0 = time.perf_counter()
    if variant not in VARIANTS:
        raise AnalysisError(f"TreeSHAP has no variant {variant!r}; choose one of {', '.join(VARIANTS)}.")
    model = inputs.model
    booster = is_booster_model(model) or is_catboost_model(model)
    if not booster:
        _tree_estimator(model)  # a model with no estimator is refused before its class is looked at
    class_index, output_name = resolve_output(model, klass)
    target = (
        _booster_target(model, class_index)
        if booster
        else _sklearn_target(model, inputs.feature_names, class_index, output_name)
    )
    tree_model = target.trees
    space = tree_model.output_space
    positions = row_positions(rows, len(inputs.frame), explainer="TreeSHAP")
    X_all = inputs.X
    X_raw = X_all.iloc[positions]
    ctx.check_cancelled()
    X_enc = target.encode(X_raw)

    background = None
    n_background = 0
    if variant == "interventional":
        if int(background_size) < 1:
            raise AnalysisError("Interventional TreeSHAP needs a background of at least one row.")
        n_background = min(int(background_size), len(X_all))
        pick = np.sort(ctx.rng("treeshap", "background").choice(len(X_all), size=n_background, replace=False))
        background = target.encode(X_all.iloc[pick])

    compute = ctx.sub(0.05, 0.95)
    # The work goes to a CUDA GPU when there is one (the same numbers in
    # float64); the processor runs the numpy blocks.
    used = choose_device(device)
    encoded_values, base = tree_model_shap_values(
        tree_model,
        X_enc,
        variant=variant,
        background=background,
        progress=compute.progress,
        check_cancelled=ctx.check_cancelled,
        torch_device=None if used == "cpu" else used,
    )
    values = target.to_raw(encoded_values)
    predictions = target.predict(X_raw)
    base_values = np.full(len(positions), base)
    additivity = np.abs(values.sum(axis=1) + base_values - predictions)
    ctx.progress(1.0, "TreeSHAP done")
    warnings_out: list[str] = []
    if variant == "interventional" and n_background < int(background_size):
        warnings_out.append(
            f"The background has {n_background} rows, fewer than the {int(background_size)} asked for, "
            "because the data has no more."
        )
    parameters = {
        "variant": variant,
        "background_size": n_background if variant == "interventional" else 0,
        "class": None if class_index is None else model.classes[class_index],  # type: ignore[index]
        "class_index": class_index,
        "output_space": space,
        "estimator": tree_model.estimator_type,
        "n_trees": len(tree_model.trees),
        "encoded_columns": target.n_encoded,
        "n_rows": len(positions),
        "device": used,
        "reason": "tree ensemble → exact TreeSHAP",
    }
    return AttributionResult(
        provenance=inputs.provenance(
            method="treeshap", parameters=parameters, ctx=ctx, started_at=started, warnings=warnings_out
        ),
        method="treeshap",
        feature_names=tuple(inputs.feature_names),
        rows=positions,
        values=values,
        base_values=base_values,
        predictions=predictions,
        output_name=target.output_label,
        output_space=space,
        class_index=class_index,
        quality={"additivity_error": additivity},
        summary={
            "max_additivity_error": float(additivity.max()),
            "mean_additivity_error": float(additivity.mean()),
            "expected_value": float(base),
            "n_trees": float(len(tree_model.trees)),
        },
        extras={},
        compute_seconds=time.perf_counter() - t0,
    )


METHOD = Method(
    name="treeshap",
    title="TreeSHAP (exact, tree models)",
    short_title="TreeSHAP",
    run=run,
    summary=(
        "Exact Shapley values of scikit-learn decision trees, random forests, extra trees and "
        "(histogram) gradient boosting, and of XGBoost, LightGBM and CatBoost models (in their margin space), "
        "path-dependent or interventional, in raw input columns."
    ),
    description=(
        "TreeSHAP computes exact Shapley values for tree ensembles by following every path through every tree. "
        "For each row the values plus the base value add up to the model's output."
    ),
    params=(
        rows_param(),
        Param(
            "variant",
            "choice",
            "path_dependent",
            label="Variant",
            choices=VARIANTS,
            basic=True,
            help="path_dependent (training covers, no background) or interventional (background rows).",
        ),
        Param(
            "background_size",
            "int",
            100,
            label="Background rows",
            minimum=1,
            unit="rows",
            help="Background rows of the interventional variant, drawn from the data.",
        ),
        class_param(),
        device_param(),
    ),
    result=AttributionResult,
    needs=frozenset({"rows", "tree model"}),
    rows_default="random:500",
    view="shap",
    samples="background_size",
)

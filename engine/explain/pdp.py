"""Partial dependence (PDP) and individual conditional expectation (ICE) curves.

For a feature ``j`` and a grid of values ``v_1 .. v_G``, the ICE curve of row
``i`` is the explained model output with ``x_ij`` replaced by each ``v_g`` and
every other column left as it is.  The partial dependence at ``v_g`` is the
mean of the ICE curves at ``v_g``, taken over **exactly the rows that have ICE
curves** (at most ``ice_rows`` rows sampled with ``ctx.rng("rows")``, or every
row), so ``pdp == ice.mean(axis=0)`` holds by construction and the curves
drawn behind a PDP are the rows it averages.

Grids
-----
* Numeric columns: the distinct non-missing values themselves when there are
  at most ``grid_resolution`` of them; otherwise the distinct values of the
  empirical quantiles at ``grid_resolution`` evenly spaced levels between the
  two ``percentiles`` (so the grid follows the data's density, and may have
  fewer than ``grid_resolution`` points when quantiles coincide).  Quantiles
  use numpy's default (linear) interpolation over every row of the table.
* Categorical columns (strings, booleans, pandas categories, or columns the
  dataset's schema marks categorical): the observed categories, most frequent
  first (ties in order of first appearance), at most ``max_categories``.

Every (row, grid value) pair of one feature is stacked into one frame and the
model is called on chunks of at most :data:`MAX_CELLS` cells, which matches
scikit-learn's ``partial_dependence(method="brute", kind="average")`` on the
same rows and grid while calling the model a handful of times per feature.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from engine.attribution import resolve_output
from engine.errors import AnalysisError
from engine.explain._predict import CELLS_PER_CALL, Pacer, predict_batched, rows_per_call
from engine.inputs import AuditInputs
from engine.jobs import JobContext
from engine.method import Method
from engine.models.base import Model
from engine.params import Param, class_param
from engine.results import Result, frozen_array, plain_scalar, utc_now
from engine.schema import ColumnKind

__all__ = [
    "FeatureDependence",
    "PairDependence",
    "PartialDependenceResult",
    "MAX_CELLS",
    "explained_output",
    "is_categorical_column",
    "run",
    "METHOD",
]

# Upper bound on rows x input columns handed to the model in one call (the one
# bound of engine.explain._predict): per-call overhead vanishes, memory stays bounded.
MAX_CELLS = CELLS_PER_CALL


def _frozen(a: Any, dtype: Any = np.float64) -> np.ndarray:
    return frozen_array(a, dtype)


@dataclass(frozen=True)
class FeatureDependence:
    """Partial dependence and ICE curves of one raw feature.

    Attributes
    ----------
    feature: the raw input column.
    kind: ``"numeric"`` or ``"categorical"``.
    grid: the ``G`` values the column was set to (floats for numeric columns,
        the column's own values for categorical ones).
    pdp: ``(G,)`` mean explained output over the rows at each grid value;
        equal to ``ice.mean(axis=0)``.
    ice: ``(n, G)`` explained output of each row at each grid value, rows in
        the order of the result's ``rows``.
    """

    feature: str = ""
    kind: str = "numeric"
    grid: tuple[Any, ...] = ()
    pdp: np.ndarray = field(default_factory=lambda: np.zeros(0))
    ice: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))

    def __post_init__(self) -> None:
        object.__setattr__(self, "grid", tuple(plain_scalar(v) for v in self.grid))
        object.__setattr__(self, "pdp", _frozen(self.pdp))
        object.__setattr__(self, "ice", _frozen(self.ice))


@dataclass(frozen=True)
class PairDependence:
    """Two-way partial dependence of a pair of raw features.

    Attributes
    ----------
    features: the two raw input columns ``(a, b)``.
    kinds: ``"numeric"`` or ``"categorical"`` for each.
    grid_a, grid_b: the ``G_a`` and ``G_b`` grid values (same rules as 1-D).
    values: ``(G_a, G_b)`` mean explained output over the rows with column
        ``a`` set to ``grid_a[p]`` and ``b`` to ``grid_b[q]``.
    """

    features: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    grid_a: tuple[Any, ...] = ()
    grid_b: tuple[Any, ...] = ()
    values: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))

    def __post_init__(self) -> None:
        object.__setattr__(self, "grid_a", tuple(plain_scalar(v) for v in self.grid_a))
        object.__setattr__(self, "grid_b", tuple(plain_scalar(v) for v in self.grid_b))
        object.__setattr__(self, "features", tuple(self.features))
        object.__setattr__(self, "kinds", tuple(self.kinds))
        object.__setattr__(self, "values", _frozen(self.values))


@dataclass(frozen=True)
class PartialDependenceResult(Result):
    """Partial dependence and ICE curves of some raw features, and an optional pair.

    Attributes
    ----------
    feature_names: the features with 1-D curves, in the order computed.
    features: one :class:`FeatureDependence` per name in ``feature_names``.
    pair: the two-way partial dependence, or ``None``.
    rows: ``(n,)`` 0-based positions in the dataset's frame of the rows every
        curve (and every average) is computed over.
    output_name: what is explained, e.g. ``"P(approved=1)"`` or ``"prediction"``.
    output_space: ``"probability"`` (classification) or ``"value"`` (regression).
    class_index: the explained probability column (``None`` for regression).
    grid_resolution: the largest numeric grid asked for.
    percentiles: ``(low, high)`` quantile levels, fractions in [0, 1], that
        bound numeric grids.
    n_rows: ``n``, the number of rows averaged.
    """

    kind: ClassVar[str] = "partial_dependence"
    feature_names: tuple[str, ...] = ()
    features: tuple[FeatureDependence, ...] = ()
    pair: PairDependence | None = None
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    output_name: str = ""
    output_space: str = "probability"
    class_index: int | None = None
    grid_resolution: int = 0
    percentiles: tuple[float, ...] = ()
    n_rows: int = 0

    def feature(self, name: str) -> FeatureDependence:
        """The curves of feature ``name`` (``KeyError`` if it was not computed)."""
        for dep in self.features:
            if dep.feature == name:
                return dep
        raise KeyError(name)


# -- shared helpers (also used by the surrogate and cluster analyses) ------------------------------


def is_categorical_column(series: pd.Series, kind: ColumnKind | None = None) -> bool:
    """Whether a column is treated as categories rather than numbers.

    The dataset's schema decides when it marks the column categorical or
    boolean; otherwise booleans and every non-numeric dtype are categorical.
    """
    if kind in (ColumnKind.CATEGORICAL, ColumnKind.BOOLEAN):
        return True
    if pd.api.types.is_bool_dtype(series.dtype):
        return True
    return not pd.api.types.is_numeric_dtype(series.dtype)


def column_kinds(inputs: AuditInputs) -> dict[str, ColumnKind]:
    """Column name -> kind from the dataset's schema (empty without a dataset)."""
    if inputs.dataset is None:
        return {}
    return {c.name: c.kind for c in inputs.dataset.schema.columns}


def source_name(inputs: AuditInputs) -> str:
    """How messages name the data: the file name, or "the data"."""
    return inputs.dataset.name if inputs.dataset is not None else "the data"


def explained_output(
    model: Model,
    build: Callable[[int, int], pd.DataFrame],
    n_rows: int,
    class_index: int | None,
    *,
    ctx: JobContext,
    n_columns: int,
    on_chunk: Callable[[int], None] | None = None,
) -> np.ndarray:
    """The explained output ``(n_rows,)`` of the rows ``build(start, stop)`` returns.

    Rows are requested in chunks of exactly ``MAX_CELLS // n_columns`` rows (the
    last one the remainder, so the chunks depend only on the shapes), and the
    cancel flag is checked before each chunk
    (:func:`engine.explain._predict.predict_batched`).  ``class_index`` picks the
    probability column (``None``: regression values).  ``on_chunk(stop)`` is
    called after each chunk (for progress).
    """

    def call(start: int, stop: int) -> np.ndarray:
        pred = model.predict(build(start, stop))
        return pred if class_index is None else pred[:, class_index]

    pacer = Pacer.fixed(rows_per_call(n_columns, MAX_CELLS))
    return predict_batched(call, n_rows, pacer=pacer, ctx=ctx, on_done=on_chunk, dtype=np.float64)


# -- grids -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Grid:
    feature: str
    kind: str
    labels: tuple[Any, ...]  # what the result shows
    values: Any  # what is written into the column: ndarray or pandas ExtensionArray, length G

    @property
    def size(self) -> int:
        return len(self.labels)


def _numeric_grid(
    column: pd.Series, name: str, *, resolution: int, percentiles: tuple[float, float], source: str
) -> _Grid:
    values = column.to_numpy(dtype=np.float64, na_value=np.nan)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        raise AnalysisError(
            f"The column {name!r} in {source} has no numeric values, so no partial dependence grid can be built."
        )
    distinct = np.unique(finite)
    if distinct.size <= resolution:
        grid = distinct
    else:
        grid = np.unique(np.quantile(finite, np.linspace(percentiles[0], percentiles[1], resolution)))
    written: Any = grid
    # An integer column keeps its dtype when every grid value is whole, so models
    # with typed inputs (ONNX graphs) see what they were trained on.
    if pd.api.types.is_integer_dtype(column.dtype) and np.all(grid == np.round(grid)):
        try:
            written = pd.array(grid.astype(np.int64), dtype=column.dtype)
        except (TypeError, ValueError):
            written = grid
    return _Grid(feature=name, kind="numeric", labels=tuple(float(v) for v in grid), values=written)


def _categorical_grid(column: pd.Series, name: str, *, max_categories: int, source: str) -> tuple[_Grid, bool]:
    codes, uniques = pd.factorize(column, sort=False, use_na_sentinel=True)
    if len(uniques) == 0:
        raise AnalysisError(
            f"The column {name!r} in {source} has only missing values, so no partial dependence grid can be built."
        )
    counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
    # factorize numbers categories by first appearance, so a stable sort breaks ties that way.
    order = np.argsort(-counts, kind="stable")
    capped = order.size > max_categories
    order = order[:max_categories]
    values = uniques.take(order)
    labels = tuple(plain_scalar(v) for v in np.asarray(values, dtype=object))
    return _Grid(feature=name, kind="categorical", labels=labels, values=values), capped


def _build_grid(
    X: pd.DataFrame,
    name: str,
    *,
    kinds: dict[str, ColumnKind],
    resolution: int,
    percentiles: tuple[float, float],
    max_categories: int,
    source: str,
    warn: list[str],
) -> _Grid:
    column = X[name]
    if is_categorical_column(column, kinds.get(name)):
        grid, capped = _categorical_grid(column, name, max_categories=max_categories, source=source)
        if capped:
            warn.append(
                f"The column {name!r} has more than {max_categories} categories; only the {max_categories} most "
                "frequent are on its partial dependence grid."
            )
        return grid
    return _numeric_grid(column, name, resolution=resolution, percentiles=percentiles, source=source)


def _take(values: Any, idx: np.ndarray) -> Any:
    return values.take(idx) if hasattr(values, "take") else np.asarray(values)[idx]


def _stacked_output(
    model: Model,
    Xr: pd.DataFrame,
    grids: Sequence[_Grid],
    class_index: int | None,
    *,
    ctx: JobContext,
    message: str,
    done: float,
    total: float,
) -> np.ndarray:
    """``(n, G_1, ..., G_m)`` explained output of every row with the grids' columns set to every combination.

    All ``n * G_1 * ... * G_m`` (row, grid values) combinations are stacked and
    sent to the model in a few large chunks.  Stacked row ``s`` is row
    ``s // C`` (``C`` = combinations per row) with grid ``i`` at position
    ``(s % C) // stride_i % G_i``, the last grid varying fastest, so the output
    reshapes directly.  Progress runs from ``done / total`` in units of stacked rows.
    """
    sizes = tuple(g.size for g in grids)
    cells = math.prod(sizes)
    strides = [math.prod(sizes[i + 1 :]) for i in range(len(sizes))]
    n = len(Xr)
    ctx.progress(done / total, message)

    def build(start: int, stop: int) -> pd.DataFrame:
        s = np.arange(start, stop)
        frame = Xr.iloc[s // cells]
        rest = s % cells
        for grid, stride in zip(grids, strides):
            frame[grid.feature] = _take(grid.values, (rest // stride) % grid.size)
        return frame

    def report(stop: int) -> None:
        ctx.progress((done + stop) / total, message)

    out = explained_output(model, build, n * cells, class_index, ctx=ctx, n_columns=Xr.shape[1], on_chunk=report)
    return out.reshape((n, *sizes))


# -- validation --------------------------------------------------------------------------------------


def _whole(value: Any, what: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise AnalysisError(f"The {what} must be a whole number of at least {minimum}, not {value!r}.")
    return int(value)


def _check_feature(name: Any, known: Sequence[str], source: str) -> str:
    if not isinstance(name, str) or name not in known:
        listed = ", ".join(repr(k) for k in known[:10]) + (", ..." if len(known) > 10 else "")
        raise AnalysisError(f"{name!r} is not an input column of the model in {source}; choose one of {listed}.")
    return name


def _check_percentiles(percentiles: Any) -> tuple[float, float]:
    try:
        lo, hi = (float(p) for p in percentiles)
    except (TypeError, ValueError):
        lo, hi = math.nan, math.nan
    if not (0.0 <= lo < hi <= 1.0):
        raise AnalysisError(
            f"The percentiles bounding a partial dependence grid must be two fractions with "
            f"0 <= low < high <= 1, not {percentiles!r}."
        )
    return lo, hi


# -- entry point -------------------------------------------------------------------------------------


def run(
    inputs: AuditInputs,
    *,
    ctx: JobContext,
    features: Sequence[str] | None = None,
    grid_resolution: int = 20,
    percentiles: tuple[float, float] = (0.05, 0.95),
    ice_rows: int | None = 200,
    pair: tuple[str, str] | None = None,
    klass: Any | None = None,
    max_categories: int = 30,
) -> PartialDependenceResult:
    """Partial dependence and ICE curves of raw features, and optionally one pair.

    Parameters
    ----------
    inputs:
        Data, roles and model; grids come from every row of ``inputs.X``.
    ctx:
        Seed, progress and cancel; the rows are sampled with ``ctx.rng("rows")``.
    features:
        Raw input columns with 1-D curves (a single name is accepted);
        ``None``: every raw input column.
    grid_resolution:
        Most grid points of a numeric column, at least 2.
    percentiles:
        ``(low, high)`` quantile levels in [0, 1] that bound a numeric grid
        (ignored for a column with at most ``grid_resolution`` distinct values).
    ice_rows:
        Rows with ICE curves, sampled without replacement; ``None`` or a number
        at least the table's row count uses every row.  The PDP is the mean
        over exactly these rows.
    pair:
        Two distinct raw columns for a two-way PDP ``(G_a, G_b)`` over the same rows.
    klass:
        Class whose probability is explained (``None``: the positive class of a
        binary model, the first class otherwise); must be ``None`` for regressors.
    max_categories:
        Most categories on a categorical column's grid (the most frequent).

    Returns
    -------
    PartialDependenceResult
        Curves in the explained output's units (a probability or the
        regression value).
    """
    started = utc_now()
    model = inputs.model
    source = source_name(inputs)
    known = tuple(inputs.feature_names)
    resolution = _whole(grid_resolution, "grid resolution", 2)
    max_cats = _whole(max_categories, "largest number of categories on a grid", 1)
    lo, hi = _check_percentiles(percentiles)
    if ice_rows is not None:
        _whole(ice_rows, "number of rows with ICE curves", 1)
    if features is None:
        names = known
    else:
        requested = (features,) if isinstance(features, str) else tuple(features)
        if not requested:
            raise AnalysisError(f"No features of {source} were chosen for partial dependence.")
        names = tuple(dict.fromkeys(_check_feature(f, known, source) for f in requested))
    pair_names: tuple[str, str] | None = None
    if pair is not None:
        if isinstance(pair, str) or len(tuple(pair)) != 2:
            raise AnalysisError(f"A two-way partial dependence needs exactly two features of {source}, not {pair!r}.")
        a, b = (_check_feature(f, known, source) for f in pair)
        if a == b:
            raise AnalysisError(f"A two-way partial dependence needs two different features, not {a!r} twice.")
        pair_names = (a, b)
    class_index, output_name = resolve_output(model, klass)

    X = inputs.X
    n_total = len(X)
    if n_total == 0:
        raise AnalysisError(f"{source[:1].upper()}{source[1:]} has no rows, so there is no partial dependence.")
    warn: list[str] = []
    if ice_rows is None or ice_rows >= n_total:
        rows = np.arange(n_total, dtype=np.int64)
    else:
        rows = np.sort(ctx.rng("rows").choice(n_total, size=int(ice_rows), replace=False)).astype(np.int64)
        warn.append(
            f"Partial dependence and ICE curves use a random sample of {rows.size} of the {n_total} rows of {source}."
        )
    n = rows.size
    Xr = X.iloc[rows].reset_index(drop=True)
    kinds = column_kinds(inputs)

    def grid_of(name: str) -> _Grid:
        return _build_grid(
            X,
            name,
            kinds=kinds,
            resolution=resolution,
            percentiles=(lo, hi),
            max_categories=max_cats,
            source=source,
            warn=warn,
        )

    ctx.check_cancelled()
    ctx.progress(0.0, "Building partial dependence grids")
    asked = names
    grids: list[_Grid] = []
    for name in names:
        try:
            grids.append(grid_of(name))
        except AnalysisError as exc:
            # One unusable column (all missing) should not cost the curves of the others.
            if len(names) == 1:
                raise
            warn.append(f"{exc.message[:-1]}; it was left out.")
    if not grids:
        raise AnalysisError(f"None of the chosen columns of {source} has values to build a partial dependence grid.")
    names = tuple(g.feature for g in grids)
    pair_grids = None if pair_names is None else (grid_of(pair_names[0]), grid_of(pair_names[1]))
    # Work units for progress: stacked rows per feature, plus the pair's.
    units = [n * g.size for g in grids]
    if pair_grids is not None:
        units.append(n * pair_grids[0].size * pair_grids[1].size)
    total_units = float(sum(units))
    done_units = 0.0

    results: list[FeatureDependence] = []
    for j, grid in enumerate(grids):
        message = f"Partial dependence of {grid.feature} ({j + 1} of {len(grids)})"
        ice = _stacked_output(
            model, Xr, (grid,), class_index, ctx=ctx, message=message, done=done_units, total=total_units
        )
        results.append(
            FeatureDependence(feature=grid.feature, kind=grid.kind, grid=grid.labels, pdp=ice.mean(axis=0), ice=ice)
        )
        done_units += n * grid.size

    pair_result: PairDependence | None = None
    if pair_grids is not None:
        ga, gb = pair_grids
        message = f"Two-way partial dependence of {ga.feature} and {gb.feature}"
        surface = _stacked_output(
            model, Xr, pair_grids, class_index, ctx=ctx, message=message, done=done_units, total=total_units
        )
        pair_result = PairDependence(
            features=(ga.feature, gb.feature),
            kinds=(ga.kind, gb.kind),
            grid_a=ga.labels,
            grid_b=gb.labels,
            values=surface.mean(axis=0),
        )

    parameters = {
        "features": None if features is None else list(asked),
        "grid_resolution": resolution,
        "percentiles": [lo, hi],
        "ice_rows": ice_rows,
        "pair": None if pair_names is None else list(pair_names),
        "klass": plain_scalar(klass),
        "max_categories": max_cats,
    }
    result = PartialDependenceResult(
        provenance=inputs.provenance(
            method=METHOD.name, parameters=parameters, ctx=ctx, started_at=started, warnings=warn
        ),
        feature_names=tuple(names),
        features=tuple(results),
        pair=pair_result,
        rows=rows,
        output_name=output_name,
        output_space="value" if class_index is None else "probability",
        class_index=class_index,
        grid_resolution=resolution,
        percentiles=(lo, hi),
        n_rows=n,
    )
    ctx.progress(1.0, "Done")
    return result


METHOD = Method(
    name="pdp",
    title="Partial dependence and ICE",
    run=run,
    summary=(
        "How the model's output changes, on average (PDP) and row by row (ICE), as one raw feature or a pair "
        "of features is moved across its range with everything else held fixed."
    ),
    description=(
        "Partial dependence sets one feature to each value of a grid for every row and averages the model's "
        "output; ICE curves show the same for individual rows. The average assumes the feature can vary "
        "independently of the others."
    ),
    params=(
        Param(
            "features",
            "columns",
            None,
            label="Features",
            none="every input column",
            basic=True,
            help="The input columns with one-way curves.",
        ),
        Param(
            "grid_resolution",
            "int",
            20,
            label="Grid points",
            minimum=2,
            basic=True,
            help="Most grid points of a numeric column.",
        ),
        Param(
            "percentiles",
            "pair",
            (0.05, 0.95),
            label="Grid percentiles",
            item="float",
            minimum=0.0,
            maximum=1.0,
            help="Quantile levels that bound a numeric column's grid.",
        ),
        Param(
            "ice_rows",
            "int",
            200,
            label="Rows with ICE curves",
            minimum=1,
            none="every row",
            basic=True,
            unit="rows",
            help="Rows with ICE curves, sampled; the PDP is their mean.",
        ),
        Param(
            "pair",
            "pair",
            None,
            label="Two-way pair",
            item="column",
            none="no two-way plot",
            help="Two input columns for a two-way partial dependence.",
        ),
        class_param(),
        Param(
            "max_categories",
            "int",
            30,
            label="Most categories per column",
            minimum=1,
            help="Most categories on a categorical column's grid (the most frequent).",
        ),
    ),
    result=PartialDependenceResult,
    view="dependence",
    samples="ice_rows",
)

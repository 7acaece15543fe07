"""Global surrogates: a shallow tree and a sparse linear model fitted to the model's output.

Both surrogates learn the **model's explained output** (a class probability or
the regression value), never the labels, on a seeded training split of the
rows, and are scored on the held-out rest: their *fidelity* is the R² between
surrogate and model output on held-out rows and, for classifiers, the share of
held-out rows where the two agree on which side of 0.5 the probability lies.

Both read the raw columns through one readable design matrix (see
:func:`encode_raw`): numeric columns as they are (missing values set to the
training median, plus a ``"<column> is missing"`` indicator when any are
missing), categorical columns as one indicator per category named
``"<column> = <category>"``.  So the tree's thresholds and the linear model's
coefficients are in the raw columns' units.

* **Tree**: a :class:`~sklearn.tree.DecisionTreeRegressor` of depth
  ``max_depth``; each leaf becomes a rule such as ``"if income <= 41,150 and
  employment = retired then P(1) ≈ 0.312 (n=412)"``, ``n`` counting training
  rows in the leaf.
* **Sparse linear model** (a relaxed lasso): the lasso path on standardised
  columns chooses the terms (the point of the path with the most non-zero
  terms, at most ``max_terms``, the smallest penalty among ties), then least
  squares on those terms sets the coefficients, so a model that *is* linear in
  at most ``max_terms`` columns is recovered exactly rather than shrunk.
  Coefficients are reported per raw unit (per 1 of an indicator).
"""

from __future__ import annotations

import math
import warnings as _warnings
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from engine.attribution import resolve_output
from engine.errors import AnalysisError
from engine.explain.pdp import column_kinds, explained_output, is_categorical_column, source_name
from engine.inputs import AuditInputs
from engine.jobs import JobContext
from engine.method import Method
from engine.models.base import Task
from engine.params import Param, class_param
from engine.results import Result, frozen_array, utc_now
from engine.schema import ColumnKind

__all__ = [
    "RawDesign",
    "encode_raw",
    "format_number",
    "SurrogateRule",
    "TreeSurrogate",
    "LinearSurrogate",
    "SurrogateResult",
    "run",
    "METHOD",
]

# The lasso path runs from the smallest penalty that zeroes every term down to this fraction of it.
_PATH_EPS = 1e-4
_PATH_POINTS = 100


def _frozen(a: Any, dtype: Any = np.float64) -> np.ndarray:
    return frozen_array(a, dtype)


def _nan_if_none(x: float | None) -> float:
    return math.nan if x is None else float(x)


def format_number(x: float, digits: int = 4) -> str:
    """``x`` with ``digits`` significant digits (more for large numbers) and thousands separators.

    ``41150.0 -> "41,150"``, ``0.31234 -> "0.3123"``, ``-2.5 -> "-2.5"``.
    """
    if not math.isfinite(x):
        return str(x)
    if x == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(x)))
    decimals = min(12, max(0, digits - 1 - magnitude))
    text = f"{x:,.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


# -- the readable design matrix ---------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class RawDesign:
    """Raw columns as a numeric matrix whose columns people can read.

    Attributes
    ----------
    matrix: ``(n, P)`` float64 values.
    names: ``P`` readable names: ``"income"``, ``"employment = retired"``,
        ``"income is missing"``.
    raw: the raw column of each design column.
    roles: ``"numeric"``, ``"category"`` or ``"missing"`` for each.
    categories: the category of each ``"category"`` column, else ``None``.
    fill: the value a missing numeric entry was set to (NaN for other roles).
    """

    matrix: np.ndarray
    names: tuple[str, ...]
    raw: tuple[str, ...]
    roles: tuple[str, ...]
    categories: tuple[Any, ...]
    fill: np.ndarray


def encode_raw(
    X: pd.DataFrame,
    *,
    kinds: dict[str, ColumnKind] | None = None,
    fit_rows: np.ndarray | None = None,
    max_categories: int = 20,
    warn: list[str] | None = None,
) -> RawDesign:
    """Encode raw columns readably: numbers as they are, categories one-hot.

    Parameters
    ----------
    X:
        ``(n, F)`` raw input columns (any dtypes).
    kinds:
        Column kinds from the dataset's schema (a column it marks categorical
        is one-hot encoded even when numeric).
    fit_rows:
        Positions of the rows that decide medians and kept categories (the
        training split); ``None``: every row.
    max_categories:
        Most indicator columns per categorical column (the most frequent on
        ``fit_rows``); rows of other categories have all of them 0.
    warn:
        Receives a sentence for each capped column.

    Returns
    -------
    RawDesign
        ``P >= F`` columns in the raw columns' order.
    """
    kinds = kinds or {}
    fit = np.arange(len(X)) if fit_rows is None else np.asarray(fit_rows)
    columns: list[np.ndarray] = []
    names: list[str] = []
    raw: list[str] = []
    roles: list[str] = []
    categories: list[Any] = []
    fill: list[float] = []

    def add(
        values: np.ndarray, name: str, source: str, role: str, category: Any = None, filled: float = math.nan
    ) -> None:
        columns.append(values)
        names.append(name)
        raw.append(source)
        roles.append(role)
        categories.append(category)
        fill.append(filled)

    for col in X.columns:
        name = str(col)
        series = X[col]
        if is_categorical_column(series, kinds.get(name)):
            codes, uniques = pd.factorize(series, sort=False, use_na_sentinel=True)
            fit_codes = codes[fit]
            counts = np.bincount(fit_codes[fit_codes >= 0], minlength=len(uniques))
            order = [int(c) for c in np.argsort(-counts, kind="stable") if counts[c] > 0]
            if len(order) > max_categories and warn is not None:
                warn.append(
                    f"The column {name!r} has {len(order)} categories; the surrogates see only the "
                    f"{max_categories} most frequent, and the others as none of them."
                )
            for code in order[:max_categories]:
                value = uniques[code]
                value = value.item() if isinstance(value, np.generic) else value
                add((codes == code).astype(np.float64), f"{name} = {value}", name, "category", value)
            if (codes < 0).any():
                add((codes < 0).astype(np.float64), f"{name} is missing", name, "missing")
        else:
            values = series.to_numpy(dtype=np.float64, na_value=np.nan)
            missing = ~np.isfinite(values)
            fit_values = values[fit][~missing[fit]]
            median = float(np.median(fit_values)) if fit_values.size else 0.0
            add(np.where(missing, median, values), name, name, "numeric", None, median)
            if missing.any():
                add(missing.astype(np.float64), f"{name} is missing", name, "missing")
    matrix = np.column_stack(columns) if columns else np.zeros((len(X), 0))
    return RawDesign(
        matrix=matrix,
        names=tuple(names),
        raw=tuple(raw),
        roles=tuple(roles),
        categories=tuple(categories),
        fill=np.asarray(fill, dtype=np.float64),
    )


# -- results --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SurrogateRule:
    """One leaf of the surrogate tree as a rule.

    Attributes
    ----------
    conditions: readable conditions on the path, e.g. ``("income <= 41,150",
        "employment = retired")``; empty for a tree with no split.
    prediction: the leaf's value, the mean model output of its training rows.
    n_train: training rows in the leaf.
    text: the whole rule as one sentence.
    """

    conditions: tuple[str, ...] = ()
    prediction: float = math.nan
    n_train: int = 0
    text: str = ""


@dataclass(frozen=True)
class TreeSurrogate:
    """The shallow tree fitted to the model's output, with its fidelity.

    Attributes
    ----------
    max_depth: the depth asked for.
    rules: one rule per leaf, left to right.
    children_left, children_right: ``(N,)`` child node indices, ``-1`` at leaves.
    feature: ``(N,)`` design column split on, ``-1`` at leaves.
    threshold: ``(N,)`` a row goes left when ``design[feature] <= threshold`` (raw units).
    value: ``(N,)`` mean model output of the training rows reaching each node.
    n_train: ``(N,)`` training rows reaching each node.
    r2_train, r2_holdout: R² between tree and model output on the training
        and held-out rows (NaN when the model output is constant there).
    agreement_holdout: share of held-out rows where tree and model fall on the
        same side of 0.5 (classification only, else ``None``).
    """

    max_depth: int = 0
    rules: tuple[SurrogateRule, ...] = ()
    children_left: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    children_right: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    feature: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    threshold: np.ndarray = field(default_factory=lambda: np.zeros(0))
    value: np.ndarray = field(default_factory=lambda: np.zeros(0))
    n_train: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    r2_train: float = math.nan
    r2_holdout: float = math.nan
    agreement_holdout: float | None = None

    @property
    def rule_texts(self) -> tuple[str, ...]:
        """Each rule as one sentence, left to right."""
        return tuple(rule.text for rule in self.rules)

    def __post_init__(self) -> None:
        for name in ("children_left", "children_right", "feature", "n_train"):
            object.__setattr__(self, name, _frozen(getattr(self, name), np.int64))
        for name in ("threshold", "value"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))
        object.__setattr__(self, "rules", tuple(self.rules))
        object.__setattr__(self, "r2_train", _nan_if_none(self.r2_train))
        object.__setattr__(self, "r2_holdout", _nan_if_none(self.r2_holdout))


@dataclass(frozen=True)
class LinearSurrogate:
    """The sparse linear model fitted to the model's output, with its fidelity.

    Attributes
    ----------
    terms: the chosen design columns, by decreasing ``|standardised|``.
    raw_columns: the raw column of each term.
    coefficients: ``(k,)`` change in the output per raw unit of each term
        (per 1 of an indicator).
    standardised: ``(k,)`` change per standard deviation of each term (on the
        training rows); comparable across terms.
    intercept: the output when every term is 0.
    alpha: the lasso penalty at the chosen point of the path (on standardised
        columns, scikit-learn's scaling ``1/(2n) ||y - Xw||² + alpha ||w||_1``).
    r2_train, r2_holdout, agreement_holdout: as for :class:`TreeSurrogate`.
    equation: the model as one readable line.
    """

    terms: tuple[str, ...] = ()
    raw_columns: tuple[str, ...] = ()
    coefficients: np.ndarray = field(default_factory=lambda: np.zeros(0))
    standardised: np.ndarray = field(default_factory=lambda: np.zeros(0))
    intercept: float = math.nan
    alpha: float = math.nan
    r2_train: float = math.nan
    r2_holdout: float = math.nan
    agreement_holdout: float | None = None
    equation: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "coefficients", _frozen(self.coefficients))
        object.__setattr__(self, "standardised", _frozen(self.standardised))
        for name in ("intercept", "alpha", "r2_train", "r2_holdout"):
            object.__setattr__(self, name, _nan_if_none(getattr(self, name)))


@dataclass(frozen=True)
class SurrogateResult(Result):
    """A shallow tree and a sparse linear model that imitate the model globally.

    Attributes
    ----------
    output_name: what is imitated, e.g. ``"P(1)"`` or ``"prediction"``.
    output_space: ``"probability"`` or ``"value"``.
    class_index: the explained probability column (``None`` for regression).
    design_names: the ``P`` readable design columns both surrogates choose from.
    design_raw: the raw column of each design column.
    tree: the tree surrogate.
    linear: the sparse linear surrogate.
    n_train, n_holdout: rows fitted on and rows scored on.
    holdout_fraction: the share of rows held out.
    """

    kind: ClassVar[str] = "surrogate"
    output_name: str = ""
    output_space: str = "probability"
    class_index: int | None = None
    design_names: tuple[str, ...] = ()
    design_raw: tuple[str, ...] = ()
    tree: TreeSurrogate = field(default_factory=TreeSurrogate)
    linear: LinearSurrogate = field(default_factory=LinearSurrogate)
    n_train: int = 0
    n_holdout: int = 0
    holdout_fraction: float = 0.25


# -- fidelity ------------------------------------------------------------------------------------------


def _r2(y: np.ndarray, fitted: np.ndarray) -> float:
    sst = float(((y - y.mean()) ** 2).sum())
    if y.size < 2 or sst <= 1e-12 * max(1.0, float((y**2).sum())):
        return math.nan
    return 1.0 - float(((y - fitted) ** 2).sum()) / sst


def _agreement(y: np.ndarray, fitted: np.ndarray, classification: bool) -> float | None:
    if not classification or y.size == 0:
        return None
    return float(np.mean((y >= 0.5) == (fitted >= 0.5)))


# -- the tree -------------------------------------------------------------------------------------------


def _conditions(path: list[tuple[int, bool, float]], design: RawDesign) -> tuple[str, ...]:
    """Readable conditions of a root-to-leaf path of (design column, went left, threshold).

    Conditions on one numeric column merge into one interval; ``= c`` on a
    categorical column replaces its ``≠`` conditions (it implies them).
    """
    bounds: dict[int, list[float]] = {}  # numeric design column -> [lower (exclusive), upper (inclusive)]
    order: list[tuple[str, Any]] = []  # condition groups in order of first appearance on the path
    equals: dict[str, Any] = {}  # raw column -> the category it equals
    excluded: dict[str, list[Any]] = {}  # raw column -> categories it differs from
    missing: dict[str, bool] = {}
    for column, left, threshold in path:
        role = design.roles[column]
        raw = design.raw[column]
        group: tuple[str, Any] = ("numeric", column) if role == "numeric" else (role, raw)
        if group not in order:
            order.append(group)
        if role == "numeric":
            lo_hi = bounds.setdefault(column, [-math.inf, math.inf])
            if left:
                lo_hi[1] = min(lo_hi[1], threshold)
            else:
                lo_hi[0] = max(lo_hi[0], threshold)
        # Indicators are 0/1, so going left ("<= threshold") means the indicator is 0.
        elif role == "missing":
            missing[raw] = not left
        elif left:
            excluded.setdefault(raw, []).append(design.categories[column])
        else:
            equals[raw] = design.categories[column]
    text: list[str] = []
    for role, ref in order:
        if role == "numeric":
            lo, hi = bounds[ref]
            name = design.names[ref]
            if math.isfinite(lo) and math.isfinite(hi):
                text.append(f"{format_number(lo)} < {name} <= {format_number(hi)}")
            elif math.isfinite(hi):
                text.append(f"{name} <= {format_number(hi)}")
            else:
                text.append(f"{name} > {format_number(lo)}")
        elif role == "missing":
            text.append(f"{ref} is missing" if missing[ref] else f"{ref} is not missing")
        elif ref in equals:
            text.append(f"{ref} = {equals[ref]}")
        else:
            text.extend(f"{ref} ≠ {c}" for c in excluded[ref])
    return tuple(text)


def _tree_rules(tree: Any, design: RawDesign, output_name: str) -> tuple[SurrogateRule, ...]:
    t = tree.tree_
    left, right = t.children_left, t.children_right
    rules: list[SurrogateRule] = []
    # Depth-first, left child first: rules read left to right as the tree is drawn.
    stack: list[tuple[int, list[tuple[int, bool, float]]]] = [(0, [])]
    while stack:
        node, path = stack.pop()
        if left[node] < 0:
            conditions = _conditions(path, design)
            value = float(t.value[node, 0, 0])
            n = int(t.n_node_samples[node])
            then = f"{output_name} ≈ {format_number(value, 3)} (n={n:,})"
            text = f"if {' and '.join(conditions)} then {then}" if conditions else f"always {then}"
            rules.append(SurrogateRule(conditions=conditions, prediction=value, n_train=n, text=text))
            continue
        feature, threshold = int(t.feature[node]), float(t.threshold[node])
        stack.append((int(right[node]), path + [(feature, False, threshold)]))
        stack.append((int(left[node]), path + [(feature, True, threshold)]))
    return tuple(rules)


def _fit_tree(
    design: RawDesign,
    y: np.ndarray,
    train: np.ndarray,
    hold: np.ndarray,
    *,
    max_depth: int,
    min_samples_leaf: int,
    seed: int,
    output_name: str,
    classification: bool,
) -> TreeSurrogate:
    from sklearn.tree import DecisionTreeRegressor

    tree = DecisionTreeRegressor(max_depth=max_depth, min_samples_leaf=min_samples_leaf, random_state=seed)
    tree.fit(design.matrix[train], y[train])
    fitted_train = tree.predict(design.matrix[train])
    fitted_hold = tree.predict(design.matrix[hold])
    t = tree.tree_
    return TreeSurrogate(
        max_depth=max_depth,
        rules=_tree_rules(tree, design, output_name),
        children_left=t.children_left,
        children_right=t.children_right,
        feature=np.where(t.children_left < 0, -1, t.feature),
        threshold=np.where(t.children_left < 0, np.nan, t.threshold),
        value=t.value[:, 0, 0],
        n_train=t.n_node_samples,
        r2_train=_r2(y[train], fitted_train),
        r2_holdout=_r2(y[hold], fitted_hold),
        agreement_holdout=_agreement(y[hold], fitted_hold, classification),
    )


# -- the sparse linear model ------------------------------------------------------------------------------


def _equation(output_name: str, intercept: float, terms: tuple[str, ...], coefs: np.ndarray, scale: float) -> str:
    # An intercept that is round-off next to the output's size reads as 0, not as 1.39e-10.
    shown = 0.0 if abs(intercept) <= 1e-9 * max(scale, 1e-300) else intercept
    parts = [f"{output_name} ≈ {format_number(shown)}"]
    for term, c in zip(terms, coefs):
        sign = "−" if c < 0 else "+"
        name = f"[{term}]" if " = " in term or term.endswith(" is missing") else term
        parts.append(f"{sign} {format_number(abs(float(c)))} × {name}")
    return " ".join(parts)


def _fit_linear(
    design: RawDesign,
    y: np.ndarray,
    train: np.ndarray,
    hold: np.ndarray,
    *,
    max_terms: int,
    output_name: str,
    classification: bool,
) -> LinearSurrogate:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import lasso_path

    D = design.matrix[train]
    yt = y[train]
    mean = D.mean(axis=0)
    std = D.std(axis=0)
    usable = np.flatnonzero(std > 1e-12 * np.maximum(1.0, np.abs(mean)))
    Xs = (D[:, usable] - mean[usable]) / std[usable]
    y_mean = float(yt.mean())
    yc = yt - y_mean
    support = np.zeros(0, dtype=np.int64)
    alpha = math.nan
    if usable.size and np.any(yc != 0):
        alpha_max = float(np.max(np.abs(Xs.T @ yc))) / len(yc)
        if alpha_max > 0:
            alphas = alpha_max * np.geomspace(1.0, _PATH_EPS, _PATH_POINTS)
            with _warnings.catch_warnings():
                _warnings.simplefilter("ignore", ConvergenceWarning)
                alphas, path, _ = lasso_path(Xs, yc, alphas=alphas)
            nonzero = (np.abs(path) > 0).sum(axis=0)
            allowed = np.flatnonzero(nonzero <= max_terms)
            # Most terms within the budget; among ties the smallest penalty (alphas decrease).
            best = int(allowed[np.flatnonzero(nonzero[allowed] == nonzero[allowed].max())[-1]])
            alpha = float(alphas[best])
            support = np.flatnonzero(path[:, best] != 0)
    beta_std = np.zeros(0)
    if support.size:
        # Relaxed lasso: the path picks the terms, least squares sets them (no shrinkage).
        beta_std = np.linalg.lstsq(Xs[:, support], yc, rcond=None)[0]
    columns = usable[support]
    beta_raw = beta_std / std[columns]
    intercept = y_mean - float(beta_raw @ mean[columns])
    order = np.argsort(-np.abs(beta_std), kind="stable")
    columns, beta_raw, beta_std = columns[order], beta_raw[order], beta_std[order]
    terms = tuple(design.names[c] for c in columns)

    def predict(rows: np.ndarray) -> np.ndarray:
        values: np.ndarray = intercept + design.matrix[np.ix_(rows, columns)] @ beta_raw
        return values

    fitted_hold = predict(hold)
    return LinearSurrogate(
        terms=terms,
        raw_columns=tuple(design.raw[c] for c in columns),
        coefficients=beta_raw,
        standardised=beta_std,
        intercept=intercept,
        alpha=alpha,
        r2_train=_r2(yt, predict(train)),
        r2_holdout=_r2(y[hold], fitted_hold),
        agreement_holdout=_agreement(y[hold], fitted_hold, classification),
        equation=_equation(output_name, intercept, terms, beta_raw, float(np.abs(yt).max())),
    )


# -- entry point --------------------------------------------------------------------------------------------


def _whole(value: Any, what: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise AnalysisError(f"The surrogate's {what} must be a whole number of at least {minimum}, not {value!r}.")
    return int(value)


def run(
    inputs: AuditInputs,
    *,
    ctx: JobContext,
    klass: Any | None = None,
    max_depth: int = 3,
    max_terms: int = 8,
    holdout_fraction: float = 0.25,
    min_samples_leaf: int = 1,
    max_categories: int = 20,
    max_rows: int | None = 50_000,
) -> SurrogateResult:
    """Fit a shallow tree and a sparse linear model to the model's output and measure their fidelity.

    Parameters
    ----------
    inputs:
        Data, roles and model; no target is needed.
    ctx:
        Seed, progress and cancel.  The row sample comes from
        ``ctx.rng("rows")``, the train/holdout split from ``ctx.rng("split")``
        and the tree's tie-breaking from ``ctx.int_seed("tree")`` (scikit-learn takes 32-bit seeds).
    klass:
        Class whose probability is imitated (``None``: the positive class of a
        binary model, the first class otherwise); must be ``None`` for regressors.
    max_depth:
        Depth of the tree surrogate (at most ``2**max_depth`` rules).
    max_terms:
        Most terms of the linear surrogate.
    holdout_fraction:
        Share of the rows held out to score fidelity, in (0, 1).
    min_samples_leaf:
        Fewest training rows in a tree leaf.
    max_categories:
        Most indicator columns per categorical column.
    max_rows:
        Use a random sample of this many rows (``None``: every row).

    Returns
    -------
    SurrogateResult
        Tree thresholds and linear coefficients in raw units.
    """
    started = utc_now()
    model = inputs.model
    source = source_name(inputs)
    depth = _whole(max_depth, "depth", 1)
    terms = _whole(max_terms, "number of terms", 1)
    leaf = _whole(min_samples_leaf, "smallest leaf", 1)
    cats = _whole(max_categories, "number of categories per column", 1)
    if max_rows is not None:
        _whole(max_rows, "row limit", 10)
    if (
        isinstance(holdout_fraction, bool)
        or not isinstance(holdout_fraction, (int, float))
        or not (0.0 < holdout_fraction < 1.0)
    ):
        raise AnalysisError(f"The share of rows held out must lie strictly between 0 and 1, not {holdout_fraction!r}.")
    class_index, output_name = resolve_output(model, klass)
    classification = model.task is Task.CLASSIFICATION

    X = inputs.X
    n_total = len(X)
    warn: list[str] = []
    if max_rows is not None and max_rows < n_total:
        keep = np.sort(ctx.rng("rows").choice(n_total, size=int(max_rows), replace=False))
        X = X.iloc[keep].reset_index(drop=True)
        warn.append(f"The surrogates were fitted and scored on a random sample of {max_rows} of the {n_total} rows.")
    else:
        X = X.reset_index(drop=True)
    n = len(X)
    n_hold = int(round(n * float(holdout_fraction)))
    if n_hold < 2 or n - n_hold < 2:
        raise AnalysisError(
            f"{source[:1].upper()}{source[1:]} has {n} rows, too few to fit surrogates on some and score them on "
            f"{holdout_fraction:.0%} of them."
        )

    ctx.check_cancelled()
    ctx.progress(0.0, "Computing the model's output")
    y = explained_output(
        model,
        lambda a, b: X.iloc[a:b],
        n,
        class_index,
        ctx=ctx,
        n_columns=X.shape[1],
        on_chunk=lambda stop: ctx.progress(0.4 * stop / n, "Computing the model's output"),
    )
    order = ctx.rng("split").permutation(n)
    hold, train = np.sort(order[:n_hold]), np.sort(order[n_hold:])
    design = encode_raw(X, kinds=column_kinds(inputs), fit_rows=train, max_categories=cats, warn=warn)
    if not design.names:
        raise AnalysisError(f"No feature columns of {source} are selected, so there is nothing to fit surrogates on.")

    ctx.check_cancelled()
    ctx.progress(0.45, "Fitting the tree surrogate")
    tree = _fit_tree(
        design,
        y,
        train,
        hold,
        max_depth=depth,
        min_samples_leaf=leaf,
        seed=ctx.int_seed("tree"),
        output_name=output_name,
        classification=classification,
    )
    ctx.check_cancelled()
    ctx.progress(0.7, "Fitting the sparse linear surrogate")
    linear = _fit_linear(
        design, y, train, hold, max_terms=terms, output_name=output_name, classification=classification
    )

    for label, fit in (("tree", tree), ("linear", linear)):
        if math.isnan(fit.r2_holdout):
            warn.append(
                f"The model's output is constant on the held-out rows, so the {label} surrogate's R² is undefined."
            )
    parameters = {
        "klass": klass.item() if isinstance(klass, np.generic) else klass,
        "max_depth": depth,
        "max_terms": terms,
        "holdout_fraction": float(holdout_fraction),
        "min_samples_leaf": leaf,
        "max_categories": cats,
        "max_rows": max_rows,
    }
    result = SurrogateResult(
        provenance=inputs.provenance(
            method=METHOD.name, parameters=parameters, ctx=ctx, started_at=started, warnings=warn
        ),
        output_name=output_name,
        output_space="probability" if classification else "value",
        class_index=class_index,
        design_names=design.names,
        design_raw=design.raw,
        tree=tree,
        linear=linear,
        n_train=int(train.size),
        n_holdout=int(hold.size),
        holdout_fraction=float(holdout_fraction),
    )
    ctx.progress(1.0, "Done")
    return result


METHOD = Method(
    name="surrogate",
    title="Global surrogates (tree and linear)",
    short_title="Global surrogates",
    run=run,
    summary=(
        "A shallow decision tree with readable rules and a sparse linear model fitted to the model's own "
        "output, each with its fidelity (R² and agreement) on held-out rows."
    ),
    description=(
        "A shallow decision tree and a sparse linear model are fitted to the model's output, not to the labels, "
        "on a training split of the rows. Their fidelity is the R² against the model's output on held-out rows."
    ),
    params=(
        class_param(help="The class whose probability is imitated (classifiers; null for a regressor)."),
        Param(
            "max_depth",
            "int",
            3,
            label="Tree depth",
            minimum=1,
            basic=True,
            help="Depth of the tree surrogate (at most 2^depth rules).",
        ),
        Param(
            "max_terms",
            "int",
            8,
            label="Linear terms",
            minimum=1,
            basic=True,
            help="Most terms of the sparse linear surrogate.",
        ),
        Param(
            "holdout_fraction",
            "float",
            0.25,
            label="Held-out share",
            minimum=0.0,
            maximum=1.0,
            exclusive=True,
            help="Share of the rows held out to measure fidelity.",
        ),
        Param(
            "min_samples_leaf",
            "int",
            1,
            label="Smallest leaf",
            minimum=1,
            unit="rows",
            help="Fewest training rows in a leaf of the tree.",
        ),
        Param(
            "max_categories",
            "int",
            20,
            label="Most categories per column",
            minimum=1,
            help="Most indicator columns per categorical column.",
        ),
        Param(
            "max_rows",
            "int",
            50_000,
            label="Rows used",
            minimum=10,
            none="every row",
            unit="rows",
            help="Fit on a random sample of this many rows.",
        ),
    ),
    result=SurrogateResult,
    view="surrogate",
    samples="max_rows",
)

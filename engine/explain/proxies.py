"""Proxies: which model inputs carry a sensitive attribute into the model.

For every sensitive attribute and every model input this measures how well the input predicts the
attribute: the mutual information between the two (plug-in, in bits, on the input cut into at most
ten quantile bins and the attribute's groups), and the AUC (R² for a numeric attribute with many
values) of a small seeded decision tree cross-validated on that input alone; the same tree on all
inputs together says how much of the attribute the inputs hold between them.  Crossed with each
input's permutation importance in the model, this gives the proxy-risk table: an input is a proxy
risk when it predicts the attribute *and* the model uses it (its importance interval lies above
zero).  The risk is the input's predictiveness (``2·AUC − 1``, or R²) when it is used, and zero when
it is not; the strongest proxy is the used input with the highest risk of at least
:data:`MEDIUM_RISK`.

A proxy is evidence to examine, not proof of discrimination: an input may predict an attribute and
matter to the model for reasons a reviewer accepts (the demo's income), and the table cannot tell
the two apart.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from engine.errors import AnalysisError
from engine.explain.groups import _MAX_NUMERIC_LEVELS, group_codes
from engine.inputs import AuditInputs
from engine.jobs import JobContext
from engine.method import Method
from engine.params import Param
from engine.results import Result, utc_now

__all__ = ["MEDIUM_RISK", "HIGH_RISK", "ProxyRow", "ProxyAttribute", "ProxyResult", "run", "METHOD"]

#: Risk (predictiveness of a used input) from which an input is named a proxy: AUC 0.575, or R² 0.15.
MEDIUM_RISK = 0.15
#: Risk from which the table calls it high: AUC 0.7, or R² 0.4.
HIGH_RISK = 0.4
# Categories of an input kept as their own indicator (most frequent first); the rest are "other".
_MAX_CATEGORIES = 30
# Quantile bins of a numeric input for the mutual information.
_MI_BINS = 10
_NAN = float("nan")
_NAMES_SHOWN = 5


@dataclass(frozen=True)
class ProxyRow:
    """How much one input carries one sensitive attribute, and how much the model uses it.

    Attributes
    ----------
    attribute, feature: the sensitive attribute and the model input.
    mutual_information: plug-in mutual information in bits; ``normalised_mi`` over the attribute's entropy.
    auc: cross-validated AUC of a tree predicting the attribute from this input alone (one-vs-rest,
        macro-averaged, for more than two groups); NaN for a numeric attribute.
    r2: cross-validated R² for a numeric attribute with many values; NaN otherwise.
    predictiveness: ``2·auc − 1`` (or ``r2``), floored at 0.
    importance, importance_ci_low, importance_ci_high: the input's permutation importance and its interval.
    importance_share: its importance over the sum of the positive importances.
    used: the importance interval lies above zero (the mean, without an interval).
    risk: ``predictiveness`` when used, else 0; ``level``: ``"high"``, ``"medium"``, ``"low"`` or ``"not used"``.
    rank: 1 for the highest risk of the attribute.
    """

    attribute: str = ""
    feature: str = ""
    mutual_information: float = _NAN
    normalised_mi: float = _NAN
    auc: float = _NAN
    r2: float = _NAN
    predictiveness: float = _NAN
    importance: float = _NAN
    importance_ci_low: float = _NAN
    importance_ci_high: float = _NAN
    importance_share: float = _NAN
    used: bool = False
    risk: float = 0.0
    level: str = ""
    rank: int = 0


@dataclass(frozen=True)
class ProxyAttribute:
    """One sensitive attribute: what the inputs together say of it, and its strongest proxy.

    Attributes
    ----------
    attribute: the sensitive column; ``kind``: ``"auc"`` (groups) or ``"r2"`` (a number with many values).
    n_rows: rows with a value of the attribute (after any subsample).
    groups: the groups predicted (for ``"auc"``).
    all_inputs_auc, all_inputs_r2: the tree on every input together, cross-validated.
    all_inputs_predictiveness: ``2·auc − 1`` or R², floored at 0.
    strongest: the used input with the highest risk of at least :data:`MEDIUM_RISK`; ``""`` when none.
    direct_input: the attribute is itself a model input (left out of its own table; the flip test
        of the fairness analysis measures its direct use).
    """

    attribute: str = ""
    kind: str = ""
    n_rows: int = 0
    groups: tuple[str, ...] = ()
    all_inputs_auc: float = _NAN
    all_inputs_r2: float = _NAN
    all_inputs_predictiveness: float = _NAN
    strongest: str = ""
    direct_input: bool = False


@dataclass(frozen=True)
class ProxyResult(Result):
    """The proxy-risk table: per sensitive attribute, each input's predictiveness crossed with its importance.

    ``rows`` are ordered by attribute, then by risk (highest first).
    """

    kind: ClassVar[str] = "proxies"
    attributes: tuple[ProxyAttribute, ...] = ()
    rows: tuple[ProxyRow, ...] = ()
    n_folds: int = 5
    max_depth: int = 4
    importance_method: str = ""

    def table(self, attribute: str) -> tuple[ProxyRow, ...]:
        """The rows of one attribute, highest risk first."""
        return tuple(r for r in self.rows if r.attribute == attribute)

    def strongest(self, attribute: str | None = None) -> str:
        """The strongest proxy of ``attribute`` (default: the first), ``""`` when none."""
        for a in self.attributes:
            if attribute is None or a.attribute == attribute:
                return a.strongest
        raise KeyError(attribute)


# -- encoding -------------------------------------------------------------------------------------------


def _is_numeric(series: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(series.dtype))


def _encode(series: pd.Series) -> np.ndarray:
    """An input as tree features ``(n, m)``: a number (median for missing, plus a missing flag when any),
    or indicators of its most frequent categories (missing and the rest each one more)."""
    if _is_numeric(series):
        x = series.to_numpy(dtype=np.float64, na_value=np.nan)
        missing = ~np.isfinite(x)
        fill = float(np.median(x[~missing])) if (~missing).any() else 0.0
        filled = np.where(missing, fill, x)
        return np.column_stack([filled, missing.astype(np.float64)]) if missing.any() else filled[:, None]
    text = series.astype("object").where(series.notna(), None)
    top = pd.Series(text.dropna()).value_counts(sort=True).index[:_MAX_CATEGORIES]
    columns = [(text == v).to_numpy(dtype=bool) for v in top]
    columns.append(text.isna().to_numpy(dtype=bool))
    columns.append(~np.any(np.column_stack(columns), axis=1))
    out: np.ndarray = np.column_stack(columns).astype(np.float64)
    return out[:, out.any(axis=0)]


def _mi_codes(series: pd.Series) -> np.ndarray:
    """Integer codes of an input for the mutual information: quantile bins or categories (missing one more)."""
    if _is_numeric(series) and series.nunique() > _MAX_NUMERIC_LEVELS:
        x = series.to_numpy(dtype=np.float64, na_value=np.nan)
        finite = np.isfinite(x)
        edges = np.unique(np.quantile(x[finite], np.linspace(0, 1, _MI_BINS + 1))) if finite.any() else np.zeros(1)
        codes = np.searchsorted(edges[1:-1], np.where(finite, x, 0.0), side="left").astype(np.int64)
        return np.where(finite, codes, len(edges))
    text = series.astype("object").where(series.notna(), "\0missing")
    codes, _ = pd.factorize(text.astype(str))
    return np.asarray(codes, dtype=np.int64)


def _mutual_information(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Plug-in mutual information of two code arrays in bits, and its share of ``b``'s entropy."""
    _, a = np.unique(a, return_inverse=True)
    _, b = np.unique(b, return_inverse=True)
    a, b = a.reshape(-1), b.reshape(-1)
    table = np.zeros((int(a.max()) + 1, int(b.max()) + 1), dtype=np.float64)
    np.add.at(table, (a, b), 1.0)
    p = table / table.sum()
    pa, pb = p.sum(axis=1, keepdims=True), p.sum(axis=0, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log2(p / (pa * pb)), 0.0)
        hb = float(-np.sum(np.where(pb > 0, pb * np.log2(pb), 0.0)))
    mi = max(0.0, float(terms.sum()))
    return mi, (mi / hb if hb > 0 else _NAN)


# -- prediction ------------------------------------------------------------------------------------------


def _cv_score(X: np.ndarray, target: np.ndarray, *, classify: bool, n_folds: int, max_depth: int, seed: int) -> float:
    """Cross-validated AUC (classes) or R² (numbers) of a small decision tree predicting ``target`` from ``X``."""
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    leaf = max(5, len(target) // 100)
    if classify:
        folds: Any = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        tree: Any = DecisionTreeClassifier(max_depth=max_depth, min_samples_leaf=leaf, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            proba = np.asarray(cross_val_predict(tree, X, target, cv=folds, method="predict_proba"))
        if proba.shape[1] == 2:
            return float(roc_auc_score(target, proba[:, 1]))
        return float(roc_auc_score(target, proba, multi_class="ovr", average="macro"))
    folds = KFold(n_splits=n_folds, shuffle=True, random_state=seed)
    tree = DecisionTreeRegressor(max_depth=max_depth, min_samples_leaf=leaf, random_state=seed)
    predicted = np.asarray(cross_val_predict(tree, X, target, cv=folds), dtype=np.float64)
    total = float(np.sum((target - target.mean()) ** 2))
    return 1.0 - float(np.sum((target - predicted) ** 2)) / total if total > 0 else _NAN


def _predictiveness(score: float, *, classify: bool) -> float:
    if math.isnan(score):
        return _NAN
    return max(0.0, 2.0 * score - 1.0) if classify else max(0.0, score)


def _level(risk: float, used: bool) -> str:
    if not used:
        return "not used"
    if risk >= HIGH_RISK:
        return "high"
    return "medium" if risk >= MEDIUM_RISK else "low"


def _listed(names: Sequence[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:_NAMES_SHOWN])
    more = len(names) - _NAMES_SHOWN
    return shown + (f" and {more} more" if more > 0 else "")


def _importances(importance: Any, features: Sequence[str], warn: list[str]) -> dict[str, tuple[float, float, float]]:
    """Each input's (mean, ci_low, ci_high) permutation importance, NaN where the result does not name it."""
    if importance is None:
        warn.append(
            "No permutation importance was given, so no input can be shown to be used by the model and the risk "
            "of every input is 0; run it with its permutation importance to rank the proxies."
        )
        return {}
    names = tuple(getattr(importance, "feature_names", ()))
    mean = getattr(importance, "mean", None)
    if mean is None or not names:
        raise AnalysisError("The proxy table crosses predictiveness with a permutation importance result.")
    low = getattr(importance, "ci_low", np.full(len(names), np.nan))
    high = getattr(importance, "ci_high", np.full(len(names), np.nan))
    missing = [f for f in features if f not in names]
    if missing:
        warn.append(f"The permutation importance given does not name {_listed(missing)}; their risk is 0.")
    return {n: (float(mean[i]), float(low[i]), float(high[i])) for i, n in enumerate(names)}


# -- the analysis -------------------------------------------------------------------------------------------


def run(
    inputs: AuditInputs,
    *,
    ctx: JobContext,
    sensitive: str | Sequence[str] | None = None,
    importance: Any | None = None,
    n_folds: int = 5,
    max_depth: int = 4,
    max_rows: int = 20000,
) -> ProxyResult:
    """The proxy-risk table of every sensitive attribute against every model input.

    Parameters
    ----------
    inputs:
        Data, roles and model; the sensitive columns need not be model inputs.
    ctx:
        Seed, progress and cancel: the row sample draws from ``ctx.rng("rows")``, folds and trees are
        seeded with ``ctx.int_seed("folds", attribute)``.
    sensitive:
        Column name or names; ``None``: the roles' sensitive attributes.
    importance:
        The model's :class:`~engine.explain.permutation.PermutationImportanceResult` (computed first by
        every front end); ``None`` leaves every input's risk at 0, with a warning.
    n_folds:
        Cross-validation folds of the trees.
    max_depth:
        Depth of the tree on one input; the tree on all inputs may be two levels deeper.
    max_rows:
        Rows used at most (a seeded sample beyond it).

    Returns
    -------
    ProxyResult
    """
    started = utc_now()
    for name, value, least in (("folds", n_folds, 2), ("tree depth", max_depth, 1), ("rows", max_rows, 20)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
            raise AnalysisError(f"The number of {name} must be a whole number of at least {least}, not {value!r}.")
    if sensitive is None:
        attributes: tuple[str, ...] = tuple(inputs.roles.sensitive)
    else:
        attributes = (sensitive,) if isinstance(sensitive, str) else tuple(str(s) for s in sensitive)
    attributes = tuple(dict.fromkeys(attributes))
    if not attributes:
        raise AnalysisError("Choose at least one sensitive attribute column for the proxy table.")
    absent = [a for a in attributes if a not in inputs.frame.columns]
    if absent:
        where = f"The data file {inputs.dataset.name}" if inputs.dataset is not None else "The data"
        raise AnalysisError(f"{where} has no column{'s' if len(absent) > 1 else ''} {_listed(absent)}.")
    features = tuple(inputs.feature_names)
    warn: list[str] = []
    weights = _importances(importance, features, warn)
    positive = sum(max(0.0, m) for m, _, _ in weights.values() if math.isfinite(m))

    frame = inputs.frame
    if len(frame) > max_rows:
        picked = np.sort(ctx.rng("rows").choice(len(frame), size=int(max_rows), replace=False))
        frame = frame.iloc[picked]
        warn.append(f"The proxy table uses a seeded sample of {max_rows:,} of the {len(inputs.frame):,} rows.")
    encoded = {f: _encode(frame[f]) for f in features}
    mi_codes = {f: _mi_codes(frame[f]) for f in features}

    out_attributes: list[ProxyAttribute] = []
    out_rows: list[ProxyRow] = []
    steps = len(attributes) * (len(features) + 1)
    done = 0
    for attribute in attributes:
        column = frame[attribute]
        present = column.notna().to_numpy()
        values = column[present]
        classify = not (_is_numeric(values) and values.nunique() > _MAX_NUMERIC_LEVELS)
        groups: tuple[str, ...] = ()
        if classify:
            codes, labels, _ = group_codes(values)
            counts = np.bincount(codes, minlength=len(labels))
            too_few = [labels[g] for g in range(len(labels)) if counts[g] < n_folds]
            if too_few:
                warn.append(
                    f"In {attribute!r} the group{'s' if len(too_few) > 1 else ''} {_listed(too_few)} "
                    f"{'have' if len(too_few) > 1 else 'has'} fewer rows than folds and "
                    f"{'are' if len(too_few) > 1 else 'is'} left out of the predictions."
                )
            kept = np.isin(codes, [g for g in range(len(labels)) if counts[g] >= n_folds])
            rows = np.flatnonzero(present)[kept]
            target = codes[kept]
            groups = tuple(labels[g] for g in np.unique(target))
            if len(groups) < 2:
                raise AnalysisError(
                    f"The sensitive column {attribute!r} has fewer than two groups with at least {n_folds} rows, "
                    "so no input can be judged a proxy of it."
                )
            mi_target, _, _ = group_codes(values)
        else:
            rows = np.flatnonzero(present)
            target = values.to_numpy(dtype=np.float64)
            mi_target = np.searchsorted(np.unique(np.quantile(target, [0.25, 0.5, 0.75])), target, side="left").astype(
                np.int64
            )
        mi_rows = np.flatnonzero(present)
        seed = ctx.int_seed("folds", attribute)
        direct = attribute in features
        own: list[ProxyRow] = []
        for feature in features:
            ctx.check_cancelled()
            ctx.progress(done / steps, f"How well {feature} predicts {attribute}")
            done += 1
            if feature == attribute:
                continue
            score = _cv_score(
                encoded[feature][rows],
                target,
                classify=classify,
                n_folds=int(n_folds),
                max_depth=int(max_depth),
                seed=seed,
            )
            mi, nmi = _mutual_information(mi_codes[feature][mi_rows], mi_target)
            mean, low, high = weights.get(feature, (_NAN, _NAN, _NAN))
            used = (low > 0) if math.isfinite(low) else (math.isfinite(mean) and mean > 0)
            predictive = _predictiveness(score, classify=classify)
            risk = predictive if used and math.isfinite(predictive) else 0.0
            own.append(
                ProxyRow(
                    attribute=attribute,
                    feature=feature,
                    mutual_information=mi,
                    normalised_mi=nmi,
                    auc=score if classify else _NAN,
                    r2=_NAN if classify else score,
                    predictiveness=predictive,
                    importance=mean,
                    importance_ci_low=low,
                    importance_ci_high=high,
                    importance_share=max(0.0, mean) / positive if positive > 0 and math.isfinite(mean) else _NAN,
                    used=bool(used),
                    risk=float(risk),
                    level=_level(risk, bool(used)),
                )
            )
        ctx.progress(done / steps, f"How well all inputs predict {attribute}")
        done += 1
        others = [f for f in features if f != attribute]
        together = (
            _cv_score(
                np.column_stack([encoded[f][rows] for f in others]),
                target,
                classify=classify,
                n_folds=int(n_folds),
                max_depth=int(max_depth) + 2,
                seed=seed,
            )
            if others
            else _NAN
        )
        # Highest risk first; among equals the more predictive, then the more important, then input order.
        order = sorted(
            range(len(own)),
            key=lambda i: (
                -own[i].risk,
                -(own[i].predictiveness if math.isfinite(own[i].predictiveness) else -1.0),
                -(own[i].importance if math.isfinite(own[i].importance) else -math.inf),
                i,
            ),
        )
        ranked = [_with_rank(own[i], rank + 1) for rank, i in enumerate(order)]
        out_rows += ranked
        top = ranked[0] if ranked else None
        strongest = top.feature if top is not None and top.used and top.risk >= MEDIUM_RISK else ""
        out_attributes.append(
            ProxyAttribute(
                attribute=attribute,
                kind="auc" if classify else "r2",
                n_rows=len(rows),
                groups=groups,
                all_inputs_auc=together if classify else _NAN,
                all_inputs_r2=_NAN if classify else together,
                all_inputs_predictiveness=_predictiveness(together, classify=classify),
                strongest=strongest,
                direct_input=direct,
            )
        )
        if direct:
            warn.append(
                f"The sensitive attribute {attribute!r} is itself a model input; the fairness analysis's flip test "
                "measures how the model uses it directly."
            )
    provenance = inputs.provenance(
        method=METHOD.name,
        parameters={
            "sensitive": list(attributes),
            "n_folds": int(n_folds),
            "max_depth": int(max_depth),
            "max_rows": int(max_rows),
            "importance": "permutation" if importance is not None else None,
            "strongest": {a.attribute: a.strongest for a in out_attributes},
        },
        ctx=ctx,
        started_at=started,
        warnings=warn,
    )
    ctx.progress(1.0, "Done")
    return ProxyResult(
        provenance=provenance,
        attributes=tuple(out_attributes),
        rows=tuple(out_rows),
        n_folds=int(n_folds),
        max_depth=int(max_depth),
        importance_method="permutation" if importance is not None else "",
    )


def _with_rank(row: ProxyRow, rank: int) -> ProxyRow:
    import dataclasses

    return dataclasses.replace(row, rank=rank)


METHOD = Method(
    name="proxies",
    title="Proxies of sensitive attributes",
    short_title="Proxy risk",
    run=run,
    summary=(
        "For each sensitive attribute and model input: mutual information and the cross-validated AUC (or R²) of "
        "a small tree predicting the attribute from that input alone and from all inputs, crossed with the "
        "input's permutation importance, as a proxy-risk table naming the inputs that carry the attribute "
        "into the model."
    ),
    description=(
        "Each model input is tested as a proxy of each sensitive attribute: the plug-in mutual information "
        "between them (in bits, the input cut into at most ten quantile bins), and the AUC (one-vs-rest, macro "
        "averaged; R² for a numeric attribute with many values) of a decision tree of small depth, "
        "cross-validated with seeded folds, that predicts the attribute from the input alone; the same tree on "
        "all inputs together shows how much of the attribute the inputs hold between them. The model's use of "
        "each input is its permutation importance: an input whose importance interval lies above zero is used. "
        f"The risk of a used input is its predictiveness (2·AUC − 1, or R²), of an unused one 0; risks of at "
        f"least {MEDIUM_RISK} are medium and of at least {HIGH_RISK} high, and the used input with the highest "
        "risk of at least medium is the strongest proxy. A proxy is evidence to examine: an input may predict an "
        "attribute and matter to the model for reasons a reviewer accepts."
    ),
    params=(
        Param(
            "sensitive",
            "columns",
            None,
            label="Sensitive columns",
            basic=True,
            none="the sensitive columns chosen in the roles",
            help="The attributes whose proxies are sought (they need not be model inputs).",
        ),
        Param(
            "importance",
            "result",
            None,
            label="Importance",
            help="The model's permutation importance, computed first.",
        ),
        Param(
            "n_folds",
            "int",
            5,
            label="Cross-validation folds",
            minimum=2,
            maximum=20,
            help="Folds of the cross-validated trees.",
        ),
        Param(
            "max_depth",
            "int",
            4,
            label="Tree depth",
            minimum=1,
            maximum=12,
            help="Depth of the tree on one input (the tree on all inputs may go two levels deeper).",
        ),
        Param(
            "max_rows",
            "int",
            20000,
            label="Most rows",
            minimum=20,
            unit="rows",
            help="Rows used at most; a seeded sample beyond it.",
        ),
    ),
    result=ProxyResult,
    needs=frozenset({"sensitive", "target"}),
    builds_on={"importance": "permutation"},
    view="proxies",
)

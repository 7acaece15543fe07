"""The report's sections as reportlab flowables, each drawn from the results it presents.

Every builder takes a :class:`Facts` (the input plus the results sorted by
kind) and returns a list of flowables, empty when its results are absent.
Text that comes from users or data (names, notes, categories) is escaped
before it reaches reportlab's paragraph markup.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape as _xml_escape

import numpy as np
from reportlab.lib.units import mm
from reportlab.platypus import (
    CondPageBreak,
    Flowable,
    KeepTogether,
    PageBreak,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)

from engine.explain.attribution import AttributionResult
from engine.explain.clusters import ExplanationClustersResult
from engine.explain.groups import HEADLINE_MIN_GROUP_SIZE
from engine.explain.lime import lime_fidelity, lime_fidelity_warning
from engine.explain.native import NativeImportanceResult
from engine.explain.pdp import PartialDependenceResult
from engine.explain.performance import PerformanceResult
from engine.explain.permutation import PermutationImportanceResult
from engine.explain.quality import faithfulness_summary
from engine.explain.registry import METHODS
from engine.explain.surrogate import SurrogateResult
from engine.plan import SHAP_METHODS
from engine.report import charts
from engine.report import style as st
from engine.report.inputs import SECTION_TITLES, ReportInput
from engine.report.names import RULE as LONG_NAME_RULE
from engine.report.names import shorten_in, shortened, verbatim
from engine.report.pdfa import ATTACHMENT_NAME, parse_timestamp
from engine.results import Result

__all__ = ["Facts", "Heading", "build_story", "METHOD_TITLES", "METHOD_DESCRIPTIONS", "format_date"]

# Local explanation methods that produce Shapley values (additive from a base value).

_GRADIENT_METHODS = ("ig", "saliency", "input_x_gradient", "smoothgrad")
_MAX_LOCAL_ROWS = 3
_MAX_BARS = 10  # features shown per local chart; the rest are summed into one row
_MAX_GLOBAL_BARS = 30  # features shown in a global importance chart (a taller chart would not fit a page)
_MAX_DEPENDENCE = 6
_MAX_ICE = 40
_LOW_FIDELITY = 0.5  # R² below this is flagged in the executive summary
_SMALL_GROUPS_NAMED = 5  # groups too small to compare that a summary sentence names one by one

# The report's name and methodology paragraph of each analysis come from its descriptor
# (engine.explain.base.Method: short_title, description); only results derived from others have none.
_DERIVED_TITLES: dict[str, str] = {"method_agreement": "Agreement between methods"}
METHOD_TITLES: dict[str, str] = {**{m.name: m.report_title for m in METHODS.values()}, **_DERIVED_TITLES}
METHOD_DESCRIPTIONS: dict[str, str] = {m.name: m.description for m in METHODS.values() if m.description}

_METRIC_TEXT: dict[str, tuple[str, str]] = {
    "accuracy": ("Accuracy", "Share of rows whose most probable class is the true class."),
    "balanced_accuracy": ("Balanced accuracy", "Mean over classes of the share of each class predicted correctly."),
    "roc_auc": ("ROC AUC", "Probability that a random positive row scores above a random negative one."),
    "pr_auc": ("PR AUC", "Average precision over all thresholds (positive class, or macro average)."),
    "log_loss": ("Log loss", "Mean negative log-probability of the true class, in nats; lower is better."),
    "brier": ("Brier score", "Mean squared error of the predicted probabilities; lower is better."),
    "r2": ("R²", "Share of the target's variance the predictions explain."),
    "mae": ("MAE", "Mean absolute error, in the target's units."),
    "rmse": ("RMSE", "Root mean squared error, in the target's units."),
}

_GENERAL_LIMITATIONS = (
    "The explanations describe how the model behaves on the audited data. They are not statements about "
    "cause and effect in the world.",
    "Permutation importance and partial dependence change one feature while holding the others fixed. When "
    "features are correlated this evaluates the model on unrealistic rows, and importance may be shared "
    "between correlated features or hidden behind a proxy.",
    "SHAP values depend on the reference they are computed against (background rows, or the training cover "
    "of the trees); LIME depends on its sampling and kernel width. Different references give different values.",
    "Surrogate models and K-LIME approximate the model. Their rules and coefficients hold only as far as their "
    "fidelity (R²) reaches.",
    "All figures hold for the data audited. Performance and group differences may differ on another "
    "population or at another time.",
    "A sensitive attribute that is not a model input can still influence predictions through correlated "
    "inputs. Group differences, where reported, describe outcomes; they do not by themselves establish that "
    "the model is fair or unfair.",
)


def escape(text: str) -> str:
    """``text`` made safe for paragraph markup and for the bundled fonts."""
    return _xml_escape(st.printable(str(text)))


# -- small formatting helpers -------------------------------------------------------------------------------


def _is_missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and not math.isfinite(x))


def num(x: Any, digits: int = 3) -> str:
    """A number with ``digits`` decimals and a typographic minus; "—" when missing."""
    if _is_missing(x):
        return "—"
    text = f"{float(x):,.{digits}f}"
    if text.startswith("-") and not text.strip("-0.,"):
        text = text[1:]  # no "−0.000"
    return text.replace("-", "−")


def sig(x: Any, digits: int = 3) -> str:
    """A number to ``digits`` significant figures; "—" when missing."""
    if _is_missing(x):
        return "—"
    return f"{float(x):.{digits}g}".replace("-", "−")


def pct(x: Any, digits: int = 1) -> str:
    if _is_missing(x):
        return "—"
    return f"{100 * float(x):.{digits}f} %"


def count(x: Any) -> str:
    return "—" if x is None else f"{int(x):,}"


def format_date(iso: str) -> str:
    """``"2026-11-22T13:06:43+00:00"`` as ``"22 November 2026, 13:06 UTC"``."""
    value = parse_timestamp(iso)
    offset = value.utcoffset() or _dt.timedelta(0)
    zone = "UTC" if offset == _dt.timedelta(0) else value.strftime("UTC%z")
    return f"{value.day} {value:%B %Y, %H:%M} {zone}"


def _names(items: Sequence[str], limit: int = 8) -> str:
    shown = [str(i) for i in items[:limit]]
    if len(items) > limit:
        shown.append(f"{len(items) - limit} more")
    if len(shown) <= 1:
        return "".join(shown)
    return ", ".join(shown[:-1]) + " and " + shown[-1]


def _json_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, allow_nan=True)


_MAX_CELL_CHARS = 600  # a table cell cannot split across pages, so long values are cut


def _clip(text: str, limit: int = _MAX_CELL_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out (long names shortened first)."""
    text = shorten_in(text)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit:,} more characters in results.json)"


def _flatten(mapping: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """``{"a": {"b": 1}}`` as ``[("a.b", "1")]``, keeping the mapping's order."""
    out: list[tuple[str, str]] = []
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.extend(_flatten(value, name + "."))
        else:
            out.append((name, _clip(_json_value(value))))
    return out


# -- flowables ----------------------------------------------------------------------------------------------


class Heading(Paragraph):
    """A heading that becomes an outline (bookmark) entry when it is placed on a page."""

    def __init__(self, text: str, style_name: str, *, level: int, key: str) -> None:
        super().__init__(escape(text), st.styles()[style_name])
        self.outline_title = text
        self.outline_level = level
        self.outline_key = key


def _p(text: str, style_name: str = "body") -> Paragraph:
    """A paragraph of plain text (escaped)."""
    return Paragraph(escape(text), st.styles()[style_name])


def _m(markup: str, style_name: str = "body") -> Paragraph:
    """A paragraph of trusted markup (callers escape every value they insert)."""
    return Paragraph(markup, st.styles()[style_name])


def _bullets(items: Iterable[str], style_name: str = "bullet", *, markup: bool = False) -> list[Flowable]:
    s = st.styles()[style_name]
    return [Paragraph(item if markup else escape(item), s, bulletText="•") for item in items]


def _cell(value: Any, style_name: str = "cell") -> Flowable:
    if isinstance(value, Flowable):
        return value
    return Paragraph(escape(str(value)), st.styles()[style_name])


def table(
    rows: Sequence[Sequence[Any]],
    widths: Sequence[float],
    *,
    header: bool = True,
    right: Sequence[int] = (),
    shading: Sequence[tuple[int, int, str]] = (),
    mono: Sequence[int] = (),
) -> Table:
    """A ruled table of paragraphs; long tables repeat their header row on each page.

    ``right`` lists right-aligned (numeric) columns, ``mono`` columns set in
    the monospace font, ``shading`` ``(row, col, colour)`` cell backgrounds.
    """
    cells: list[list[Flowable]] = []
    for r, row in enumerate(rows):
        out_row: list[Flowable] = []
        for c, value in enumerate(row):
            if header and r == 0:
                name = "cell_head"
            elif c in mono:
                name = "cell_mono"
            else:
                name = "cell"
            para = _cell(value, name)
            if c in right and isinstance(para, Paragraph):
                para.style = _right_style(name)
            out_row.append(para)
        cells.append(out_row)
    t = Table(cells, colWidths=list(widths), repeatRows=1 if header else 0, hAlign="LEFT")
    commands: list[tuple[Any, ...]] = [
        ("FONTNAME", (0, 0), (-1, -1), st.SANS),
        ("FONTSIZE", (0, 0), (-1, -1), 7.8),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 2.2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2.6),
        ("LEFTPADDING", (0, 0), (-1, -1), 4),
        ("RIGHTPADDING", (0, 0), (-1, -1), 4),
        ("LINEBELOW", (0, 0), (-1, -1), 0.35, st.rgb(st.GRID)),
    ]
    if header:
        commands += [
            ("BACKGROUND", (0, 0), (-1, 0), st.rgb(st.PANEL)),
            ("LINEBELOW", (0, 0), (-1, 0), 0.8, st.rgb(st.MUTED_TEXT)),
            ("LINEABOVE", (0, 0), (-1, 0), 0.8, st.rgb(st.MUTED_TEXT)),
        ]
    for r, c, colour in shading:
        commands.append(("BACKGROUND", (c, r), (c, r), st.rgb(colour)))
    t.setStyle(TableStyle(commands))
    return t


_RIGHT_STYLES: dict[str, Any] = {}


def _right_style(name: str) -> Any:
    from reportlab.lib.enums import TA_RIGHT
    from reportlab.lib.styles import ParagraphStyle

    if name not in _RIGHT_STYLES:
        base = st.styles()[name]
        _RIGHT_STYLES[name] = ParagraphStyle(f"{name}_right", parent=base, alignment=TA_RIGHT)
    return _RIGHT_STYLES[name]


def kv_table(
    pairs: Sequence[tuple[str, Any]], width: float, *, key_width: float = 42 * mm, mono_keys: Sequence[str] = ()
) -> Table:
    """A two-column key/value table without a header."""
    rows: list[list[Any]] = []
    for key, value in pairs:
        rows.append([_cell(key, "cell_bold"), _cell(value, "cell_mono" if key in mono_keys else "cell")])
    return table(rows, [key_width, width - key_width], header=False)


def _caption(text: str) -> Paragraph:
    return _p(text, "caption")


def _warnings(items: Iterable[str]) -> list[Flowable]:
    bullets = _bullets(items, "warning")
    return [Spacer(1, 2 * mm), *bullets] if bullets else []


# -- the facts a report is drawn from ----------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Facts:
    """The report input with its results sorted by kind, and the frame width in points."""

    report: ReportInput
    width: float
    performance: PerformanceResult | None = None
    permutation: PermutationImportanceResult | None = None
    attributions: tuple[AttributionResult, ...] = ()
    native: NativeImportanceResult | None = None
    dependence: PartialDependenceResult | None = None
    surrogate: SurrogateResult | None = None
    clusters: ExplanationClustersResult | None = None
    all_results: tuple[tuple[str, Result], ...] = ()

    @classmethod
    def gather(cls, report: ReportInput, width: float) -> Facts:
        found: dict[str, Any] = {}
        attributions: list[AttributionResult] = []
        for result in report.results.values():
            if isinstance(result, PerformanceResult):
                found.setdefault("performance", result)
            elif isinstance(result, PermutationImportanceResult):
                found.setdefault("permutation", result)
            elif isinstance(result, AttributionResult):
                attributions.append(result)
            elif isinstance(result, NativeImportanceResult):
                found.setdefault("native", result)
            elif isinstance(result, PartialDependenceResult):
                found.setdefault("dependence", result)
            elif isinstance(result, SurrogateResult):
                found.setdefault("surrogate", result)
            elif isinstance(result, ExplanationClustersResult):
                found.setdefault("clusters", result)
        return cls(
            report=report,
            width=width,
            attributions=tuple(attributions),
            all_results=tuple(report.results.items()),
            **found,
        )

    @property
    def doc(self) -> Mapping[str, Any]:
        return self.report.document

    @property
    def provenance(self) -> Mapping[str, Any]:
        return self.doc.get("provenance") or {}

    @property
    def from_session(self) -> bool:
        """Whether the report is made from a desktop session's results rather than a batch audit."""
        return self.provenance.get("kind") == "session"

    @property
    def roles(self) -> Mapping[str, Any]:
        return self.provenance.get("roles") or {}

    @property
    def model_name(self) -> str:
        return str(self.provenance.get("model_file") or "the model")

    @property
    def data_name(self) -> str:
        return str(self.provenance.get("data_file") or "the data")

    @property
    def shap(self) -> tuple[AttributionResult, ...]:
        return tuple(a for a in self.attributions if a.method in SHAP_METHODS)

    @property
    def lime(self) -> AttributionResult | None:
        return next((a for a in self.attributions if a.method == "lime"), None)

    def ranking(self) -> list[str]:
        """Features from most to least important (permutation, else mean |attribution|)."""
        if self.permutation is not None:
            return list(self.permutation.ranking())
        if self.attributions:
            a = self.attributions[0]
            order = np.argsort(-np.nanmean(np.abs(a.values), axis=0), kind="stable")
            return [a.feature_names[i] for i in order]
        return []

    def sensitive(self) -> list[str]:
        return [str(s) for s in self.roles.get("sensitive") or []]

    def chosen_features(self) -> list[str]:
        """The columns the roles list as features; they may include columns the model ignores.

        Never state these as the model's inputs: :meth:`model_inputs` is.
        """
        return [str(s) for s in self.roles.get("features") or []]

    def inputs_named_by_model(self) -> bool:
        """Whether the model file names the columns it takes (recorded by the audit)."""
        return (self.doc.get("model") or {}).get("input_columns") is not None

    def model_inputs(self) -> list[str]:
        """The columns the model takes, in its order: the one source of every statement about inputs.

        The model file's own column names when it records them (what every
        analysis fed the model); otherwise the columns chosen as features,
        which is then what the audit passed to the model.
        """
        named = (self.doc.get("model") or {}).get("input_columns")
        if named is not None:
            return [str(c) for c in named]
        return self.chosen_features()

    def unused_features(self) -> list[str]:
        """Columns the roles list as features that the model does not take (e.g. a survey weight)."""
        taken = set(self.model_inputs())
        return [c for c in self.chosen_features() if c not in taken]

    def importance_of(self, name: str) -> str | None:
        """``"shuffling it lowers accuracy by 0.012 (95 % CI 0.008 to 0.016)"``, or ``None`` without a figure."""
        perm = self.permutation
        if perm is None or name not in perm.feature_names:
            return None
        i = list(perm.feature_names).index(name)
        mean, low, high = float(perm.mean[i]), float(perm.ci_low[i]), float(perm.ci_high[i])
        if not math.isfinite(mean):
            return None
        level = f"{round(perm.confidence * 100):g} % CI"
        interval = f" ({level} {num(low)} to {num(high)})" if math.isfinite(low) and math.isfinite(high) else ""
        if mean > 0:
            return f"shuffling it lowers {perm.scoring} by {num(mean)}{interval}"
        return f"shuffling it does not lower {perm.scoring} on average: mean drop {num(mean)}{interval}"


# -- section builders -----------------------------------------------------------------------------------


def _section(facts: Facts, key: str, number: int) -> list[Flowable]:
    return [Heading(f"{number}  {SECTION_TITLES[key]}", "h1", level=0, key=f"s-{key}")]


def _sub(title: str, key: str) -> Heading:
    return Heading(title, "h2", level=1, key=key)


def title_page(facts: Facts, contents: Sequence[tuple[str, str]] = ()) -> list[Flowable]:
    """The title page; ``contents`` lists ``(section title, page)`` pairs."""
    r = facts.report
    s = st.styles()
    model_format = facts.provenance.get("model_format") or (facts.doc.get("model") or {}).get("format") or ""
    out: list[Flowable] = [
        Spacer(1, 34 * mm),
        _p("MODEL AUDIT REPORT", "title_label"),
        Spacer(1, 3 * mm),
        Heading(f"Audit of {facts.model_name}", "title", level=0, key="s-title"),
        _p(f"on the dataset {facts.data_name}", "subtitle"),
    ]
    pairs = [
        ("Model", f"{facts.model_name}" + (f"  ({model_format})" if model_format else "")),
        ("Dataset", facts.data_name),
        ("Auditor", r.auditor or "not stated"),
        ("Organisation", r.organisation or "not stated"),
        ("Audit date", format_date(r.report_date)),
        ("Probity version", str(facts.doc.get("probity_version") or "unknown")),
    ]
    rows = []
    for label, value in pairs:
        rows.append([Paragraph(escape(label), s["title_label"]), Paragraph(escape(value), s["title_value"])])
    t = Table(rows, colWidths=[38 * mm, facts.width - 38 * mm], hAlign="LEFT")
    t.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), st.SANS),
                ("VALIGN", (0, 0), (-1, -1), "BASELINE"),
                ("TOPPADDING", (0, 0), (-1, -1), 5),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 5),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("LINEBELOW", (0, 0), (-1, -1), 0.35, st.rgb(st.GRID)),
            ]
        )
    )
    out += [t, Spacer(1, 12 * mm)]
    if contents:
        out.append(_p("CONTENTS", "title_label"))
        out.append(Spacer(1, 2 * mm))
        toc = Table(
            [
                [Paragraph(escape(title), s["body"]), Paragraph(escape(page), _right_style("body"))]
                for title, page in contents
            ],
            colWidths=[facts.width - 20 * mm, 20 * mm],
            hAlign="LEFT",
        )
        toc.setStyle(
            TableStyle(
                [
                    ("FONTNAME", (0, 0), (-1, -1), st.SANS),
                    ("TOPPADDING", (0, 0), (-1, -1), 1.2),
                    ("BOTTOMPADDING", (0, 0), (-1, -1), 0.6),
                    ("LEFTPADDING", (0, 0), (-1, -1), 0),
                    ("RIGHTPADDING", (0, 0), (-1, -1), 0),
                ]
            )
        )
        out += [toc, Spacer(1, 10 * mm)]
    out.append(
        _p(
            f"This report was generated by Probity from the audit results recorded on {format_date(r.report_date)}. "
            f"Those results are embedded in this PDF as the attached file {ATTACHMENT_NAME}, so every figure "
            "can be checked against them, and the reproducibility section gives the command that recomputes them.",
            "small",
        )
    )
    out.append(PageBreak())
    return out


def _headline_performance(facts: Facts) -> str | None:
    perf = facts.performance
    if perf is None:
        return None
    m = perf.metrics
    rows = f"{perf.n_rows:,} labelled rows"
    if perf.task == "classification":
        parts = [f"accuracy {num(m.get('accuracy'))}", f"balanced accuracy {num(m.get('balanced_accuracy'))}"]
        if not _is_missing(m.get("roc_auc")):
            parts.append(f"ROC AUC {num(m.get('roc_auc'))}")
        return f"On the {rows} the model reaches {_names(parts)}."
    return (
        f"On the {rows} the model reaches R² {num(m.get('r2'))}, a mean absolute error of "
        f"{sig(m.get('mae'), 4)} and a root mean squared error of {sig(m.get('rmse'), 4)}."
    )


def _drivers(facts: Facts) -> list[str]:
    perm = facts.permutation
    if perm is None:
        return []
    order = np.argsort(-perm.mean, kind="stable")
    top = [int(i) for i in order[:3] if np.isfinite(perm.mean[i]) and perm.mean[i] > 0]
    out: list[str] = []
    if top:
        first = top[0]
        level = f"{round(perm.confidence * 100):g} %"
        lead = (
            f"<b>{escape(perm.feature_names[first])}</b> (shuffling it lowers {escape(perm.scoring)} by "
            f"{num(perm.mean[first])}, {level} CI {num(perm.ci_low[first])} to {num(perm.ci_high[first])})"
        )
        rest = [f"<b>{escape(perm.feature_names[i])}</b> ({num(perm.mean[i])})" for i in top[1:]]
        out.append("The model relies most on " + _names([lead, *rest]) + ".")
    weak = [
        perm.feature_names[i]
        for i in range(len(perm.feature_names))
        if np.isfinite(perm.ci_low[i]) and perm.ci_low[i] <= 0
    ]
    if weak:
        out.append(
            f"For {escape(_names(weak))} the confidence interval of the importance includes zero: the data give "
            "no reliable evidence that the model depends on " + ("it." if len(weak) == 1 else "them.")
        )
    shap = facts.shap
    if shap and top:
        a = shap[0]
        mean_abs = np.nanmean(np.abs(a.values), axis=0)
        shap_top = [a.feature_names[i] for i in np.argsort(-mean_abs, kind="stable")[:3]]
        perm_top = [perm.feature_names[i] for i in top]
        agree = len(set(shap_top) & set(perm_top))
        out.append(
            f"By mean |SHAP| ({escape(METHOD_TITLES.get(a.method, a.method))}) the top features are "
            f"{escape(_names(shap_top))}; {agree} of the top {len(perm_top)} agree with permutation importance."
        )
    return out


def _group_metrics(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Per-group outcome rates, when the document or a result records them.

    Read from ``document["group_metrics"]`` or from any result dict of kind
    ``"group_metrics"`` with a ``"groups"`` list; each entry names
    ``attribute``, ``group``, ``n`` and ``positive_rate`` and/or ``accuracy``.
    """
    rows = document.get("group_metrics")
    if rows is None:
        for data in (document.get("results") or {}).values():
            if isinstance(data, Mapping) and data.get("kind") == "group_metrics":
                rows = data.get("groups")
                break
    return [r for r in rows or [] if isinstance(r, Mapping) and "attribute" in r and "group" in r]


def _group_size(row: Mapping[str, Any]) -> int | None:
    n = row.get("n")
    return None if n is None or _is_missing(n) else int(n)


def _group_sentences(facts: Facts, *, min_size: int = HEADLINE_MIN_GROUP_SIZE) -> list[str]:
    """One sentence per sensitive attribute naming its largest gaps, between groups of at least ``min_size`` rows.

    Each group named carries its n; smaller groups are listed as not compared,
    with their n, so a gap between a handful of rows never makes a headline.
    """
    rows = _group_metrics(facts.doc)
    out: list[str] = []
    for attribute in dict.fromkeys(str(r["attribute"]) for r in rows):
        groups = [r for r in rows if str(r["attribute"]) == attribute]
        large = [g for g in groups if (_group_size(g) or 0) >= min_size]
        parts: list[str] = []
        for key, what in (("positive_rate", "predicted positive rate"), ("accuracy", "accuracy")):
            valued = [(str(g["group"]), float(g[key]), _group_size(g)) for g in large if not _is_missing(g.get(key))]
            if len(valued) < 2:
                continue
            lo = min(valued, key=lambda kv: kv[1])
            hi = max(valued, key=lambda kv: kv[1])
            parts.append(
                f"the {what} ranges from {pct(lo[1])} ({escape(lo[0])}, n = {count(lo[2])}) to "
                f"{pct(hi[1])} ({escape(hi[0])}, n = {count(hi[2])}), "
                f"a difference of {100 * (hi[1] - lo[1]):.1f} percentage points"
            )
        small = [g for g in groups if (_group_size(g) or 0) < min_size]
        aside = " ".join(
            f"Group {escape(str(g['group']))} is not compared: "
            + (f"too small (n = {count(_group_size(g))})." if _group_size(g) is not None else "size not recorded.")
            for g in small[:_SMALL_GROUPS_NAMED]
        )
        if len(small) > _SMALL_GROUPS_NAMED:
            aside += (
                f" {len(small) - _SMALL_GROUPS_NAMED} more groups are not compared: each has fewer than "
                f"{min_size} rows."
            )
        if parts:
            sentence = (
                f"Across the groups of <b>{escape(attribute)}</b> with at least {min_size} rows, "
                + "; ".join(parts)
                + "."
            )
        elif len(groups) >= 2:
            sentence = (
                f"The groups of <b>{escape(attribute)}</b> are not compared: fewer than two have at least "
                f"{min_size} rows."
            )
        else:
            continue
        out.append(f"{sentence} {aside}" if aside else sentence)
    return out


def _fidelity(facts: Facts) -> list[str]:
    """Sentences flagging explanations that describe the model poorly."""
    out: list[str] = []
    lime = facts.lime
    if lime is not None:
        median = lime.summary.get("median_r2")
        if median is not None and math.isfinite(median) and median < _LOW_FIDELITY:
            out.append(
                f"LIME's local surrogates fit the model poorly (median weighted R² {num(median, 2)}); read its "
                "weights as rough indications only."
            )
        # Rows where the surrogate misses the model at the row itself (or fits poorly around it). New results
        # carry this very sentence among their warnings, which the summary lists already; say it once.
        rows_warning = lime_fidelity_warning(lime)
        if rows_warning is not None and rows_warning not in (facts.doc.get("warnings") or []):
            out.append(escape(rows_warning))
    sur = facts.surrogate
    if sur is not None:
        for name, fit in (("tree", sur.tree), ("sparse linear", sur.linear)):
            if math.isfinite(fit.r2_holdout) and fit.r2_holdout < _LOW_FIDELITY:
                out.append(
                    f"The {name} surrogate explains only {pct(max(fit.r2_holdout, 0.0), 0)} of the variance of the "
                    "model's output on held-out rows; it is a rough summary of the model, not a description of it."
                )
    clusters = facts.clusters
    if clusters is not None and math.isfinite(clusters.klime.global_r2) and clusters.klime.global_r2 < _LOW_FIDELITY:
        out.append(f"The global K-LIME surrogate has R² {num(clusters.klime.global_r2, 2)}.")
    for a in facts.shap:
        err = a.summary.get("max_additivity_error")
        if err is not None and math.isfinite(err) and err > 1e-3:
            out.append(
                f"{METHOD_TITLES.get(a.method, a.method)} values miss additivity by up to {sig(err)} "
                f"({escape(a.output_space)})."
            )
    return out


def _trust_sentence(facts: Facts) -> str:
    trust = facts.provenance.get("model_trust") or {}
    if not trust.get("required"):
        return f"The model file {facts.model_name} needed no trust decision: its format cannot run code when loaded."
    imports = list(trust.get("imports") or [])
    granted = trust.get("granted_by") or "an unrecorded decision"
    sentence = (
        f"Loading {facts.model_name} required a trust decision because the file names Python types to import; "
        f"it was loaded on the authority of “{granted}”"
        + (f", covering {len(imports)} imported type{'s' if len(imports) != 1 else ''}." if imports else ".")
    )
    unreviewed = list(trust.get("unreviewed") or [])
    if trust.get("allow_unreviewed") and unreviewed:
        n = len(unreviewed)
        sentence += (
            f" {n} of {'them' if imports else 'its names'} {'is' if n == 1 else 'are'} not on Probity's reviewed "
            f"list ({_clip(', '.join(unreviewed))}); the auditor acknowledged {'it' if n == 1 else 'them'} "
            "explicitly (--allow-unreviewed, or the checkbox in the app)."
        )
    return sentence


def _sensitive_sentences(facts: Facts) -> list[str]:
    """One finding per sensitive attribute: whether the model takes it, with its importance when it does."""
    inputs = set(facts.model_inputs())
    out: list[str] = []
    for name in facts.sensitive():
        if name in inputs:
            effect = facts.importance_of(name)
            out.append(
                f"Sensitive attribute <b>{escape(name)}</b> is a direct model input"
                + (f": {escape(effect)}." if effect else ".")
            )
        else:
            out.append(
                f"Sensitive attribute <b>{escape(name)}</b> is not a model input; it can still influence "
                "predictions through inputs correlated with it."
            )
    if out and not facts.inputs_named_by_model():
        out.append(
            f"The model file does not name its input columns, so the audit passed it the "
            f"{len(inputs)} columns chosen as features; the statements about model inputs follow that choice."
        )
    return out


def executive_summary(facts: Facts, number: int) -> list[Flowable]:
    out = _section(facts, "summary", number)
    d = facts.doc.get("data") or {}
    model = facts.doc.get("model") or {}
    task = model.get("task") or (facts.performance.task if facts.performance else "")
    classes = model.get("classes")
    intro = (
        f"This audit examines the {escape(str(task or 'unknown-task'))} model <b>{escape(facts.model_name)}</b>"
        + (f" (classes {escape(_names([str(c) for c in classes]))})" if classes else "")
        + f" on <b>{escape(facts.data_name)}</b>, {count(d.get('rows'))} rows and {count(d.get('columns'))} "
        f"columns, with the target <b>{escape(str(facts.roles.get('target') or 'none'))}</b>."
    )
    out.append(_m(intro))
    findings: list[str] = []
    headline = _headline_performance(facts)
    if headline:
        findings.append(escape(headline))
    findings += _drivers(facts)
    if facts.sensitive():
        findings += _sensitive_sentences(facts)
        findings += _group_sentences(facts)
    findings.append(escape(_trust_sentence(facts)))
    out.append(Heading("Key findings", "h2", level=1, key="s-summary-findings"))
    out += _bullets(findings, markup=True)
    fidelity = _fidelity(facts)
    warnings = [str(w) for w in facts.doc.get("warnings") or []]
    if fidelity or warnings:
        out.append(Heading("Warnings", "h2", level=1, key="s-summary-warnings"))
        out += _bullets(fidelity, "warning", markup=True) + _bullets(dict.fromkeys(warnings), "warning")
    out.append(Heading("At a glance", "h2", level=1, key="s-summary-glance"))
    out.append(kv_table(_glance(facts), facts.width, key_width=48 * mm))
    return out


def _glance(facts: Facts) -> list[tuple[str, Any]]:
    """The audit's key figures for the summary table."""
    d = facts.doc.get("data") or {}
    pairs: list[tuple[str, Any]] = [
        ("Rows × columns", f"{count(d.get('rows'))} × {count(d.get('columns'))}"),
        ("Model inputs", str(len(facts.model_inputs()))),
    ]
    perf = facts.performance
    if perf is not None:
        keys = ("accuracy", "roc_auc") if perf.task == "classification" else ("r2", "rmse")
        shown = [f"{_METRIC_TEXT[k][0]} {num(perf.metrics.get(k))}" for k in keys if k in perf.metrics]
        pairs.append(("Headline performance", ", ".join(shown) or "—"))
    ranking = facts.ranking()
    if ranking:
        pairs.append(("Most important features", ", ".join(ranking[:3])))
    methods = [METHOD_TITLES.get(r.provenance.method, r.provenance.method) for _, r in facts.all_results]
    pairs.append(("Analyses run", ", ".join(dict.fromkeys(methods)) or "none"))
    pairs.append(("Seed", _json_value(facts.provenance.get("seed"))))
    n_warn = len(dict.fromkeys(facts.doc.get("warnings") or [])) + len(_fidelity(facts))
    pairs.append(("Warnings", str(n_warn)))
    return pairs


def data_summary(facts: Facts, number: int) -> list[Flowable]:
    d = facts.doc.get("data") or {}
    schema = list(d.get("schema") or [])
    if not d:
        return []
    out = [PageBreak()] + _section(facts, "data", number)
    kinds: dict[str, int] = {}
    for col in schema:
        kinds[str(col.get("kind"))] = kinds.get(str(col.get("kind")), 0) + 1
    rows = int(d.get("rows") or 0)
    missing_cells = sum(int(c.get("n_missing") or 0) for c in schema)
    with_missing = [c["name"] for c in schema if int(c.get("n_missing") or 0) > 0]
    roles = facts.roles
    kind_text = _names([f"{n} {k}" for k, n in kinds.items()])
    text = (
        f"<b>{escape(facts.data_name)}</b> ({escape(str(facts.provenance.get('data_format') or 'table'))}) holds "
        f"{count(rows)} rows and {count(d.get('columns'))} columns: {escape(kind_text)}. "
    )
    if missing_cells:
        text += f"{count(missing_cells)} cells are missing, in {escape(_names(with_missing))}. "
    else:
        text += "No value is missing. "
    inputs = facts.model_inputs()
    unused = facts.unused_features()
    n_inputs = len(inputs)
    text += (
        f"The target is <b>{escape(str(roles.get('target') or 'none'))}</b>; "
        f"{n_inputs} column{' is a model input' if n_inputs == 1 else 's are model inputs'}"
        + (f", {escape(_names(list(roles.get('sensitive') or [])))} sensitive" if roles.get("sensitive") else "")
        + (f" and {len(roles.get('ignored') or [])} ignored" if roles.get("ignored") else "")
        + "."
    )
    if unused:
        text += (
            f" The model does not take {escape(_names(unused))}, although the roles list "
            f"{'it' if len(unused) == 1 else 'them'} as a feature; "
            f"{'it' if len(unused) == 1 else 'they'} played no part in the analyses."
        )
    out.append(_m(text))
    role_of: dict[str, list[str]] = {}
    if roles.get("target"):
        role_of.setdefault(str(roles["target"]), []).append("target")
    for name in inputs:
        role_of.setdefault(name, []).append("feature")
    for name in unused:
        role_of.setdefault(name, []).append("not used by the model")
    for name in roles.get("sensitive") or []:
        role_of.setdefault(str(name), []).append("sensitive")
    for name in roles.get("ignored") or []:
        role_of.setdefault(str(name), []).append("ignored")
    table_rows: list[list[Any]] = [["Column", "Role", "Kind", "Type", "Missing", "Missing %", "Distinct"]]
    shading: list[tuple[int, int, str]] = []
    for i, col in enumerate(schema, start=1):
        name = str(col.get("name"))
        role = ", ".join(role_of.get(name, ["—"]))
        n_missing = int(col.get("n_missing") or 0)
        table_rows.append(
            [
                name,
                role,
                str(col.get("kind")),
                str(col.get("dtype")),
                count(n_missing),
                pct(n_missing / rows if rows else None),
                count(col.get("n_distinct")),
            ]
        )
        # Tint by the most telling role: a sensitive model input is tinted as sensitive.
        tint = next(
            (r for r in ("target", "sensitive", "ignored", "not used by the model") if r in role_of.get(name, [])), None
        )
        if tint is not None:
            shading.append((i, 1, _tint(st.ROLE_COLOURS["ignored" if tint.startswith("not") else tint])))
    w = facts.width
    out.append(
        table(
            table_rows,
            [w * 0.27, w * 0.15, w * 0.13, w * 0.11, w * 0.11, w * 0.11, w * 0.12],
            right=(4, 5, 6),
            shading=shading,
        )
    )
    source = (
        "the columns the model file names as its inputs"
        if facts.inputs_named_by_model()
        else "the columns chosen as features (the model file does not name its inputs)"
    )
    out.append(_caption(f"Role “feature” marks the model's inputs: {source}."))
    if shortened():
        out.append(_caption(LONG_NAME_RULE))
    options = facts.provenance.get("data_options") or {}
    if options:
        shown = ", ".join(
            f"{k.replace('_', ' ')} {json.dumps(v, ensure_ascii=False)}"
            for k, v in options.items()
            if v not in (None, [], "")
        )
        out.append(_caption(f"Read with: {shown}."))
    return out


def _tint(hex_colour: str, amount: float = 0.22) -> str:
    """``hex_colour`` mixed with white (``amount`` of the colour), for cell backgrounds."""
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    mix = [round(255 - (255 - c) * amount) for c in (r, g, b)]
    return "#" + "".join(f"{c:02X}" for c in mix)


def _inputs_text(facts: Facts) -> str:
    """The model's input columns for the model section, saying where the list comes from."""
    inputs = facts.model_inputs()
    listed = _clip(f"{len(inputs)}: {', '.join(inputs)}")
    if facts.inputs_named_by_model():
        return listed
    return f"{listed} (not named by the file: the columns chosen as features, which the audit passed to it)"


def model_summary(facts: Facts, number: int) -> list[Flowable]:
    model = facts.doc.get("model") or {}
    if not model:
        return []
    out = [CondPageBreak(70 * mm)] + _section(facts, "model", number)
    prov = facts.provenance
    trust = prov.get("model_trust") or {}
    classes = model.get("classes")
    size = model.get("size_bytes")
    pairs: list[tuple[str, Any]] = [
        ("File", facts.model_name),
        ("Format", str(model.get("format") or prov.get("model_format") or "unknown")),
        ("SHA-256", str(prov.get("model_sha256") or "not recorded")),
        ("Size", f"{int(size):,} bytes" if size is not None else "not recorded"),
        ("Task", str(model.get("task") or "unknown")),
        ("Classes", ", ".join(str(c) for c in classes) if classes else "—"),
        ("Inputs", _inputs_text(facts)),
        ("Trust decision", "required" if trust.get("required") else "not required"),
    ]
    if trust.get("required"):
        pairs.append(("Trusted by", str(trust.get("granted_by") or "not recorded")))
        imports = list(trust.get("imports") or [])
        pairs.append(("Imports allowed", _clip(", ".join(imports)) if imports else "none"))
        if trust.get("allow_unreviewed"):
            unreviewed = list(trust.get("unreviewed") or [])
            pairs.append(("Unreviewed names acknowledged", _clip(", ".join(unreviewed)) if unreviewed else "none"))
    out.append(kv_table(pairs, facts.width, mono_keys=("SHA-256",)))
    out.append(Spacer(1, 3 * mm))
    out.append(_p(_trust_sentence(facts)))
    return out


def performance(facts: Facts, number: int) -> list[Flowable]:
    perf = facts.performance
    if perf is None:
        return []
    has_charts = bool(perf.roc) or perf.calibration is not None or perf.confusion is not None
    out = [PageBreak() if has_charts else CondPageBreak(80 * mm)] + _section(facts, "performance", number)
    dropped = f" ({perf.n_dropped:,} rows without a target were left out)" if perf.n_dropped else ""
    out.append(_p(f"Measured on {perf.n_rows:,} rows of {facts.data_name}{dropped}."))
    rows: list[list[Any]] = [["Metric", "Value", "Meaning"]]
    for key, value in perf.metrics.items():
        label, meaning = _METRIC_TEXT.get(key, (key, ""))
        rows.append([label, num(value), meaning])
    w = facts.width
    out.append(table(rows, [w * 0.2, w * 0.12, w * 0.68], right=(1,)))
    if perf.confusion is not None and len(perf.class_labels):
        out.append(_sub("Confusion matrix", "s-performance-confusion"))
        out += _confusion(perf, w)
    charts_row: list[Flowable] = []
    half = (w - 8) / 2
    if perf.roc:
        series = [
            charts.Series(c.fpr, c.tpr, st.categorical(i), f"class {c.label} (AUC {num(c.auc)})", width=1.5)
            for i, c in enumerate(perf.roc)
        ]
        charts_row.append(
            charts.line_chart(
                series,
                xlabel="False positive rate",
                ylabel="True positive rate",
                width=half,
                height=190,
                xlim=(0, 1),
                ylim=(0, 1),
                diagonal=True,
            )
        )
    cal = perf.calibration
    if cal is not None and cal.count.size:
        mids = np.asarray(cal.mean_predicted, dtype=float)
        series = [
            charts.Series(mids, np.asarray(cal.observed, dtype=float), st.PRIMARY, "model", markers=True, width=1.3)
        ]
        charts_row.append(
            charts.line_chart(
                series,
                xlabel=f"Mean predicted {cal.predicted}",
                ylabel="Observed frequency",
                width=half,
                height=190,
                xlim=(0, 1),
                ylim=(0, 1),
                diagonal=True,
            )
        )
    if charts_row:
        out.append(_sub("ROC and calibration", "s-performance-curves"))
        grid = Table([charts_row], colWidths=[half + 4] * len(charts_row), hAlign="LEFT")
        grid.setStyle(
            TableStyle(
                [
                    ("FONTNAME", (0, 0), (-1, -1), st.SANS),
                    ("LEFTPADDING", (0, 0), (-1, -1), 0),
                    ("RIGHTPADDING", (0, 0), (-1, -1), 4),
                ]
            )
        )
        out.append(grid)
        caption = []
        if perf.roc:
            caption.append(
                "Left: ROC curve"
                + ("s (one class against the rest)" if len(perf.roc) > 1 else "")
                + "; the dashed diagonal is a model that guesses."
            )
        if cal is not None:
            counts = ", ".join(str(int(c)) for c in cal.count)
            caption.append(
                f"Right: reliability diagram in {len(cal.count)} equal-width bins (rows per bin: "
                f"{counts}); points on the diagonal are perfectly calibrated."
            )
        out.append(_caption(" ".join(caption)))
    if perf.warnings:
        out += _warnings(perf.warnings)
    return out


def _confusion(perf: PerformanceResult, width: float) -> list[Flowable]:
    conf = np.asarray(perf.confusion, dtype=float)
    labels = [str(c) for c in perf.class_labels]
    k = len(labels)
    totals = conf.sum(axis=1, keepdims=True)
    share = np.divide(conf, totals, out=np.zeros_like(conf), where=totals > 0)
    rows: list[list[Any]] = [["True \\ predicted", *labels, "Rows"]]
    shading: list[tuple[int, int, str]] = []
    for i in range(k):
        row: list[Any] = [labels[i]]
        for j in range(k):
            level = int(round(share[i, j] * (len(st.SEQUENTIAL) - 1)))
            colour = st.SEQUENTIAL[level]
            # Beyond five classes the cells are too narrow for the percentage; the shading carries it.
            text = f"{int(conf[i, j]):,}" + (f" ({share[i, j] * 100:.1f} %)" if k <= 5 else "")
            if level >= 5:  # dark cells take white text
                row.append(Paragraph(f'<font color="#FFFFFF">{escape(text)}</font>', _right_style("cell")))
            else:
                row.append(text)
            shading.append((i + 1, j + 1, colour))
        row.append(f"{int(totals[i, 0]):,}")
        rows.append(row)
    cell_w = min(32 * mm, (width - 36 * mm - 18 * mm) / k)
    out: list[Flowable] = [
        table(rows, [36 * mm] + [cell_w] * k + [18 * mm], right=tuple(range(1, k + 2)), shading=shading),
        _caption(
            "Rows are true classes, columns predicted classes (the most probable class); shading and "
            "percentages show shares of each true class."
        ),
    ]
    return out


def importance(facts: Facts, number: int) -> list[Flowable]:
    perm, native = facts.permutation, facts.native
    attributions = [a for a in facts.attributions if a.method != "lime"]
    if perm is None and native is None and not attributions:
        return []
    out = [PageBreak()] + _section(facts, "importance", number)
    w = facts.width
    if perm is not None:
        out.append(_sub("Permutation importance", "s-importance-permutation"))
        order = np.argsort(-perm.mean, kind="stable")
        names = [perm.feature_names[i] for i in order]
        level = f"{round(perm.confidence * 100):g} %"
        out.append(
            _p(
                f"Score: {perm.scoring}, {num(perm.baseline_score)} on {perm.n_rows:,} unshuffled rows; "
                f"{perm.n_repeats} shuffles per feature. Bars show the mean drop in the score when the feature "
                f"is shuffled; whiskers its {level} confidence interval."
            )
        )
        shown = order[:_MAX_GLOBAL_BARS]
        out.append(
            charts.bar_chart(
                names[:_MAX_GLOBAL_BARS],
                perm.mean[shown],
                low=perm.ci_low[shown],
                high=perm.ci_high[shown],
                xlabel=f"Drop in {perm.scoring} when shuffled",
                width=w,
            )
        )
        if len(order) > _MAX_GLOBAL_BARS:
            out.append(
                _caption(
                    f"The chart shows the {_MAX_GLOBAL_BARS} most important of {len(order)} features; "
                    "the table lists them all."
                )
            )
        rows: list[list[Any]] = [["Rank", "Feature", "Mean drop", "Std. dev.", f"{level} CI low", f"{level} CI high"]]
        for rank, i in enumerate(order, start=1):
            rows.append(
                [
                    str(rank),
                    perm.feature_names[i],
                    num(perm.mean[i], 4),
                    num(perm.std[i], 4),
                    num(perm.ci_low[i], 4),
                    num(perm.ci_high[i], 4),
                ]
            )
        out.append(Spacer(1, 2 * mm))
        out.append(table(rows, [w * 0.08, w * 0.36, w * 0.14, w * 0.14, w * 0.14, w * 0.14], right=(0, 2, 3, 4, 5)))
        if perm.warnings:
            out += _warnings(perm.warnings)
    for a in attributions:
        title = METHOD_TITLES.get(a.method, a.method)
        label = "SHAP" if a.method in SHAP_METHODS else "attribution"
        mean_abs = np.nanmean(np.abs(np.asarray(a.values, dtype=float)), axis=0)
        order = np.argsort(-mean_abs, kind="stable")[:_MAX_GLOBAL_BARS]
        block: list[Flowable] = [
            _sub(f"Mean |{label}|: {title}", f"s-importance-{a.method}"),
            _p(
                f"Mean absolute {title} value of each feature over {len(a.rows):,} rows, explaining "
                f"{a.output_name} on the {a.output_space} scale. Larger means the feature moves this output more, "
                "in either direction."
                + (
                    f" The {_MAX_GLOBAL_BARS} largest of {len(mean_abs)} features are shown."
                    if len(mean_abs) > _MAX_GLOBAL_BARS
                    else ""
                )
            ),
            charts.bar_chart(
                [a.feature_names[i] for i in order],
                mean_abs[order],
                xlabel=f"Mean |{label} value| ({a.output_space})",
                width=w,
            ),
        ]
        out.append(KeepTogether(block))
        if a.warnings:
            out += _warnings(a.warnings)
    if native is not None:
        order = np.argsort(-native.importance, kind="stable")[:_MAX_GLOBAL_BARS]
        basis = {"impurity": "mean impurity decrease", "coefficient×std": "|coefficient| × standard deviation"}
        block = [
            _sub(f"Native importance: {native.estimator or 'model'}", "s-importance-native"),
            _p(
                f"The model's own importance ({basis.get(native.basis, native.basis)}), summed over the "
                "encoded columns each raw feature becomes."
            ),
            charts.bar_chart(
                [native.feature_names[i] for i in order],
                native.importance[order],
                xlabel=f"Importance ({native.basis})",
                width=w,
                colour=st.SECONDARY,
            ),
        ]
        if native.caveat:
            block += _warnings([native.caveat])
        out.append(KeepTogether(block))
    agreement = next((r for _, r in facts.all_results if r.kind == "method_agreement"), None)
    if agreement is not None:
        out += _agreement(agreement, w)
    return out


def _agreement(agreement: Any, width: float) -> list[Flowable]:
    """Spearman rank correlation (and top-k overlap) between the methods' global rankings."""
    methods = list(agreement.methods)
    rows: list[list[Any]] = [["", *methods]]
    for i, name in enumerate(methods):
        rows.append([name, *(num(agreement.spearman[i, j], 2) for j in range(len(methods)))])
    first = 42 * mm
    block: list[Flowable] = [
        _sub("Agreement between methods", "s-importance-agreement"),
        _p(
            f"Spearman rank correlation between the global feature rankings over the "
            f"{len(agreement.feature_names)} features they share (1 = the same order, 0 = unrelated, "
            f"−1 = reversed). The top {agreement.top_k} features overlap by "
            f"{pct(agreement.summary.get('mean_top_k_jaccard'))} on average (Jaccard)."
        ),
        table(
            rows,
            [first] + [(width - first) / max(1, len(methods))] * len(methods),
            right=tuple(range(1, len(methods) + 1)),
        ),
    ]
    return [KeepTogether(block)]


def surrogates(facts: Facts, number: int) -> list[Flowable]:
    sur = facts.surrogate
    if sur is None:
        return []
    out = [PageBreak()] + _section(facts, "surrogates", number)
    w = facts.width
    out.append(
        _p(
            f"Two simple models were fitted to imitate {sur.output_name} on {sur.n_train:,} rows and scored on "
            f"{sur.n_holdout:,} held-out rows. Their fidelity (R² against the model's output) says how far their "
            "rules can be trusted as a description of the model."
        )
    )
    classification = sur.tree.agreement_holdout is not None
    head = ["Surrogate", "R² (training)", "R² (held out)"] + (["Agreement (held out)"] if classification else [])
    rows: list[list[Any]] = [head]
    for name, fit in (
        (f"Decision tree, depth {sur.tree.max_depth}", sur.tree),
        (f"Sparse linear, {len(sur.linear.terms)} terms", sur.linear),
    ):
        row = [name, num(fit.r2_train), num(fit.r2_holdout)]
        if classification:
            row.append(pct(fit.agreement_holdout))
        rows.append(row)
    widths = [w * 0.4, w * 0.2, w * 0.2] + ([w * 0.2] if classification else [])
    out.append(table(rows, widths, right=(1, 2, 3)))
    out.append(_sub("Tree surrogate rules", "s-surrogates-tree"))
    out += _bullets(sur.tree.rule_texts)
    out.append(_sub("Sparse linear surrogate", "s-surrogates-linear"))
    out.append(_p(sur.linear.equation, "mono"))
    if len(sur.linear.terms):
        rows = [["Term", "Coefficient (per unit)", "Per standard deviation"]]
        for term, coef, std in zip(sur.linear.terms, sur.linear.coefficients, sur.linear.standardised):
            rows.append([term, sig(coef, 4), sig(std, 4)])
        out.append(table(rows, [w * 0.5, w * 0.25, w * 0.25], right=(1, 2)))
    if sur.warnings:
        out += _warnings(sur.warnings)
    return out


def _local_rows(facts: Facts) -> list[int]:
    local = [a for a in facts.attributions]
    if not local:
        return []
    if facts.report.local_rows is not None:
        explained = set().union(*(set(int(r) for r in a.rows) for a in local))
        return [r for r in facts.report.local_rows if r in explained]
    common = [int(r) for r in local[0].rows]
    for a in local[1:]:
        explained = set(int(r) for r in a.rows)
        common = [r for r in common if r in explained]
    if not common:
        common = [int(r) for r in local[0].rows]
    return common[:_MAX_LOCAL_ROWS]


def _top_with_rest(names: Sequence[str], values: np.ndarray, k: int) -> tuple[list[str], np.ndarray]:
    order = np.argsort(-np.abs(values), kind="stable")
    top = order[:k]
    labels = [names[i] for i in top]
    shown = values[top]
    if len(order) > k:
        rest = values[order[k:]]
        labels.append(f"{len(rest)} other features")
        shown = np.concatenate([shown, [rest.sum()]])
    return labels, shown


def local_explanations(facts: Facts, number: int) -> list[Flowable]:
    rows = _local_rows(facts)
    if not rows:
        return []
    out = [PageBreak()] + _section(facts, "local", number)
    w = facts.width
    methods = _names([METHOD_TITLES.get(a.method, a.method) for a in facts.attributions])
    out.append(
        _p(
            f"How individual rows were explained by {methods}. Orange bars raise the explained output, blue bars "
            f"lower it; at most {_MAX_BARS} features are shown per row and the rest are summed. Rows are 0-based "
            f"positions in {facts.data_name}."
        )
    )
    out += _faithfulness(facts.attributions, w)
    for row in rows:
        block: list[Flowable] = [_sub(f"Row {row}", f"s-local-row-{row}")]
        for a in facts.attributions:
            where = np.flatnonzero(np.asarray(a.rows) == row)
            if where.size == 0:
                continue
            i = int(where[0])
            block += _local_one(a, i, w)
        if len(block) > 1:
            out.append(CondPageBreak(80 * mm))
            out += block
    return out


def _faithfulness(attributions: Sequence[AttributionResult], width: float) -> list[Flowable]:
    """How faithful each explanation is to the model: its deletion and insertion figures, as the GUI shows them."""
    found = [(a, f) for a in attributions if (f := faithfulness_summary(a)) is not None]
    if not found:
        return []
    rows: list[list[Any]] = [
        ["Method", "Rows", "Deletion area", "Gain", "Insertion area", "Gain", "Output"],
    ]
    for a, f in found:
        rows.append(
            [
                METHOD_TITLES.get(a.method, a.method),
                f"{f.n_rows:,}",
                num(f.deletion_auc),
                num(f.deletion_gain),
                num(f.insertion_auc),
                num(f.insertion_gain),
                f.output,
            ]
        )
    first, cell = 34 * mm, 19 * mm
    widths = [first, 13 * mm, cell, cell, cell, cell, width - first - 13 * mm - 4 * cell]
    block: list[Flowable] = [
        _sub("Faithfulness of the explanations", "s-local-faithfulness"),
        _p(
            "Each explained row's features are removed (deletion) or put back (insertion) in the order the "
            "explanation ranks them, and the model's output is followed; medians over the rows. A faithful "
            "explanation makes the output fall fast (a small deletion area) and rise fast (a large insertion "
            "area). Gain is the improvement over random feature orders: positive means the explanation's order "
            "is better than chance."
        ),
        table(rows, widths, right=(1, 2, 3, 4, 5)),
    ]
    block += _warnings([w for _, f in found if (w := f.warning()) is not None])
    return [KeepTogether(block)]


def _local_one(a: AttributionResult, i: int, width: float) -> list[Flowable]:
    title = METHOD_TITLES.get(a.method, a.method)
    values = np.asarray(a.values[i], dtype=float)
    prediction = float(a.predictions[i]) if len(a.predictions) > i else math.nan
    if a.method == "lime":
        labels, shown = _top_with_rest(a.feature_names, values, _MAX_BARS)
        drawing = charts.signed_bar_chart(labels, shown, xlabel=f"LIME weight on {a.output_name}", width=width)
        r2 = a.quality.get("r2")
        jac = a.quality.get("stability_jaccard")
        local = a.quality.get("local_prediction")
        bits = [f"model output {sig(prediction)}"]
        if local is not None:
            bits.append(f"surrogate prediction {sig(local[i])}")
        if r2 is not None:
            bits.append(f"weighted R² {num(r2[i], 2)}")
        if jac is not None:
            k = int(a.summary.get("top_k", 0)) or None
            bits.append(
                f"stability (Jaccard of the top-{k} features over reruns) {num(jac[i], 2)}"
                if k
                else f"stability {num(jac[i], 2)}"
            )
        caption = f"Explaining {a.output_name} ({a.output_space}): " + "; ".join(bits) + "."
        # The engine's verdict, the one the GUI's badge shows: R² and the surrogate's miss at the row.
        verdict = lime_fidelity(a, i)
        unfaithful = _warnings([verdict.message()]) if not verdict.ok else []
        return [KeepTogether([_p(title, "h3"), drawing, _caption(caption), *unfaithful])]
    labels, shown = _top_with_rest(a.feature_names, values, _MAX_BARS)
    if a.base_values is not None and a.method in SHAP_METHODS + ("ig",):
        base = float(a.base_values[i])
        drawing = charts.waterfall_chart(labels, shown, base=base, xlabel=_output_label(a), width=width)
        gap = prediction - (base + float(values.sum()))
        caption = (
            f"Explaining {a.output_name} on the {a.output_space} scale: base value {sig(base)}, "
            f"model output {sig(prediction)}; the contributions add up to within {sig(abs(gap), 2)}."
        )
    else:
        drawing = charts.signed_bar_chart(labels, shown, xlabel=f"{title} attribution", width=width)
        caption = f"Explaining {a.output_name} ({a.output_space}); model output {sig(prediction)}."
    return [KeepTogether([_p(title, "h3"), drawing, _caption(caption)])]


def _output_label(a: AttributionResult) -> str:
    """The explained output for an axis, naming its scale unless the name already does."""
    if a.output_space and a.output_space not in a.output_name:
        return f"{a.output_name} ({a.output_space})"
    return a.output_name


def cluster_analysis(facts: Facts, number: int) -> list[Flowable]:
    cl = facts.clusters
    if cl is None:
        return []
    out = [PageBreak()] + _section(facts, "clusters", number)
    w = facts.width
    method = METHOD_TITLES.get(cl.attribution_method, cl.attribution_method)
    tried = ", ".join(f"k={int(k)}: {num(s, 2)}" for k, s in zip(cl.k_tried, cl.silhouettes))
    out.append(
        _p(
            f"{len(cl.rows):,} rows were grouped into {cl.k} clusters by their {method} attributions "
            f"({'standardised' if cl.standardized else 'in attribution units'}). Mean silhouette per number of "
            f"clusters tried: {tried}."
        )
    )
    names = [f"cluster {p.cluster} (n={p.size:,})" for p in cl.profiles] or [f"cluster {i}" for i in range(cl.k)]
    axis = "PC" if cl.projection_method == "pca" else "t-SNE "
    ev = cl.explained_variance
    xl = f"{axis}1" + (f" ({pct(ev[0], 0)} of variance)" if ev is not None and len(ev) > 0 else "")
    yl = f"{axis}2" + (f" ({pct(ev[1], 0)} of variance)" if ev is not None and len(ev) > 1 else "")
    scatter = charts.scatter_chart(cl.projection, cl.labels, names, xlabel=xl, ylabel=yl, width=w * 0.8, height=230)
    scatter.hAlign = "CENTER"
    out.append(scatter)
    out.append(
        _caption(
            f"Rows projected onto two dimensions ({cl.projection_method.upper()}) of their attribution "
            "vectors, coloured by cluster."
        )
    )
    rows: list[list[Any]] = [["Cluster", "Rows", "Share", "Mean output", "K-LIME R²", "What stands out"]]
    for p in cl.profiles:
        r2 = cl.klime.r2[p.cluster] if p.cluster < len(cl.klime.r2) else math.nan
        highlights = "<br/>".join(escape(h) for h in p.highlights) or "—"
        rows.append(
            [str(p.cluster), count(p.size), pct(p.share), sig(p.mean_prediction), num(r2, 2), _m(highlights, "cell")]
        )
    out.append(table(rows, [w * 0.09, w * 0.09, w * 0.1, w * 0.12, w * 0.11, w * 0.49], right=(1, 2, 3, 4)))
    out.append(
        _caption(
            f"Mean output is the mean {cl.output_name} of the cluster's rows. K-LIME fits one ridge "
            f"surrogate per cluster; the global surrogate over all rows has R² "
            f"{num(cl.klime.global_r2, 2)}."
        )
    )
    if cl.warnings:
        out += _warnings(cl.warnings)
    return out


def dependence(facts: Facts, number: int) -> list[Flowable]:
    dep = facts.dependence
    if dep is None or not dep.features:
        return []
    out = [PageBreak()] + _section(facts, "dependence", number)
    w = facts.width
    rank = {name: i for i, name in enumerate(facts.ranking())}
    ordered = sorted(dep.features, key=lambda f: rank.get(f.feature, len(rank)))[:_MAX_DEPENDENCE]
    lo, hi = (dep.percentiles + (math.nan, math.nan))[:2]
    out.append(
        _p(
            f"Partial dependence (thick line) and individual conditional expectation curves (thin lines, at most "
            f"{_MAX_ICE} of the {dep.n_rows:,} rows drawn) of {dep.output_name} for the "
            f"{len(ordered)} most important features with curves. Numeric grids span the "
            f"{pct(lo, 0)} to {pct(hi, 0)} quantiles. Categorical features have no order, so they show one column "
            "per category (never a line joining categories): the mean, with the 5–95 % range of the rows as "
            "whiskers; category names too long for their column are replaced by letters that a key under the "
            "chart spells out."
        )
    )
    half = (w - 8) / 2
    cells: list[Flowable] = []
    for f in ordered:
        ice = np.asarray(f.ice, dtype=float)
        if _is_numeric_grid(f):
            grid = np.asarray(f.grid, dtype=float)
            step = max(1, math.ceil(ice.shape[0] / _MAX_ICE)) if ice.size else 1
            series = [charts.Series(grid, curve, "#B7D5EA", width=0.5) for curve in ice[::step]]
            series.append(
                charts.Series(grid, np.asarray(f.pdp, dtype=float), st.PRIMARY, "partial dependence", width=2.0)
            )
            if ice.size:
                series[0] = charts.Series(grid, ice[0], "#B7D5EA", "ICE (rows)", width=0.5)
            drawing = charts.line_chart(series, xlabel=f.feature, ylabel=dep.output_name, width=half, height=180)
        else:
            cats = [str(g) for g in f.grid]
            low = np.nanpercentile(ice, 5, axis=0) if ice.size else None
            high = np.nanpercentile(ice, 95, axis=0) if ice.size else None
            drawing = charts.column_chart(
                cats,
                np.asarray(f.pdp, dtype=float),
                low=low,
                high=high,
                xlabel=f.feature,
                ylabel=dep.output_name,
                width=half,
                height=180,
            )
        cells.append(drawing)
    grid_rows = [cells[i : i + 2] for i in range(0, len(cells), 2)]
    if len(grid_rows[-1]) == 1:
        grid_rows[-1].append(Spacer(1, 1))
    t = Table(grid_rows, colWidths=[half + 4, half + 4], hAlign="LEFT")
    # A key under a categorical chart makes it taller than its neighbour; both start at the top.
    t.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), st.SANS),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("RIGHTPADDING", (0, 0), (-1, -1), 4),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 8),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    out.append(t)
    if dep.pair is not None:
        out += _pair_table(dep, w)
    if dep.warnings:
        out += _warnings(dep.warnings)
    return out


def _is_numeric_grid(f: Any) -> bool:
    """Whether a feature's curves may be drawn as lines: a numeric grid; categories never are."""
    if f.kind != "numeric":
        return False
    try:
        np.asarray(f.grid, dtype=float)
    except (TypeError, ValueError):
        return False
    return True


def _pair_table(dep: PartialDependenceResult, width: float) -> list[Flowable]:
    pair = dep.pair
    assert pair is not None
    values = np.asarray(pair.values, dtype=float)
    a, b = pair.features
    # Thin the grid to at most 8 × 8 cells so the table fits the page.
    ia = np.unique(np.linspace(0, len(pair.grid_a) - 1, min(8, len(pair.grid_a))).round().astype(int))
    ib = np.unique(np.linspace(0, len(pair.grid_b) - 1, min(8, len(pair.grid_b))).round().astype(int))
    finite = values[np.isfinite(values)]
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    rows: list[list[Any]] = [[f"{a} \\ {b}", *[_short(pair.grid_b[j]) for j in ib]]]
    shading = []
    for r, i in enumerate(ia, start=1):
        row: list[Any] = [_short(pair.grid_a[i])]
        for c, j in enumerate(ib, start=1):
            v = values[i, j]
            level = 0 if vmax == vmin or not np.isfinite(v) else int(round((v - vmin) / (vmax - vmin) * 5))
            shading.append((r, c, st.SEQUENTIAL[level]))
            row.append(sig(v))
        rows.append(row)
    col = (width - 34 * mm) / len(ib)
    return [
        _sub(f"Two-way partial dependence: {a} and {b}", "s-dependence-pair"),
        table(rows, [34 * mm] + [col] * len(ib), right=tuple(range(1, len(ib) + 1)), shading=shading),
        _caption(f"Mean {dep.output_name} with {a} set to each row value and {b} to each column value."),
    ]


def _short(value: Any) -> str:
    if isinstance(value, float):
        return sig(value, 4)
    return str(value)


def _settings_rows(facts: Facts, params: Mapping[str, Any]) -> list[list[Any]]:
    """The audit's parameters as table rows, the requested features shown against the model's inputs.

    The ``features`` parameter is what was asked for; the model may take other
    columns.  The table lists the model's inputs under that name and any
    requested column the model ignores separately, so no ignored column is
    shown as a feature.
    """
    rows: list[list[Any]] = []
    inputs = facts.model_inputs()
    requested = params.get("features")
    for key, value in _flatten(params):
        if key != "features":
            rows.append([key, value])
            continue
        source = "named by the model file" if facts.inputs_named_by_model() else "the columns chosen as features"
        rows.append(["model inputs", _clip(f"{', '.join(inputs)} ({len(inputs)}, {source})")])
        ignored = [str(c) for c in requested or [] if str(c) not in set(inputs)]
        if requested is None:
            rows.append(["features (as requested)", "not given: the model's own input columns"])
        elif ignored:
            rows.append(
                [
                    "requested but not model inputs",
                    _clip(
                        f"{', '.join(ignored)} (the model does not take "
                        f"{'it' if len(ignored) == 1 else 'them'}; not used)"
                    ),
                ]
            )
    return rows


def methodology(facts: Facts, number: int) -> list[Flowable]:
    out = [PageBreak()] + _section(facts, "methodology", number)
    w = facts.width
    params = facts.provenance.get("parameters") or {}
    out.append(
        _p(
            "Each analysis below lists every parameter recorded in its provenance, so a reader can recompute it. "
            f"All random choices derive from the seed {facts.provenance.get('seed')}."
        )
    )
    if params:
        title = "Session settings" if facts.from_session else "Audit settings"
        out.append(_sub(title, "s-methodology-audit"))
        rows: list[list[Any]] = [["Parameter", "Value"]] + _settings_rows(facts, params)
        out.append(table(rows, [w * 0.38, w * 0.62], mono=(1,)))
    for key, result in facts.all_results:
        prov = result.provenance
        name = prov.method or key
        title = METHOD_TITLES.get(name, name)
        block: list[Flowable] = [_sub(f"{title} ({name})", f"s-methodology-{key}")]
        description = METHOD_DESCRIPTIONS.get(name)
        if description:
            block.append(_p(description))
        rows = [["Parameter", "Value"]] + [[k, v] for k, v in _flatten(dict(prov.parameters))]
        rows.append(["seed", _json_value(prov.seed)])
        rows.append(["computed", _computed_text(prov.started_at, prov.finished_at)])
        block.append(table(rows, [w * 0.38, w * 0.62], mono=(1,)))
        out.append(CondPageBreak(45 * mm))
        out += block
    return out


def limitations(facts: Facts, number: int) -> list[Flowable]:
    out = _section(facts, "limitations", number)
    out.append(_p("General limits of the methods used:"))
    out += _bullets(_GENERAL_LIMITATIONS)
    specific: list[str] = []
    for key, result in facts.all_results:
        title = METHOD_TITLES.get(result.provenance.method, result.provenance.method or key)
        specific += [f"{title}: {w}" for w in result.warnings]
    if specific:
        out.append(_sub("Recorded for this audit", "s-limitations-specific"))
        out += _warnings(dict.fromkeys(specific))
    return out


def _hardware_text(hardware: Any) -> str:
    """``{"cpu": …, "os": …, "compute_device": …}`` as one readable line."""
    if not isinstance(hardware, dict):
        return str(hardware)
    labels = (("cpu", "CPU"), ("compute_device", "compute device"), ("os", "OS"))
    parts = [f"{label}: {hardware[key]}" for key, label in labels if hardware.get(key)]
    parts += [f"{key}: {value}" for key, value in hardware.items() if key not in dict(labels) and value]
    return "; ".join(parts) or "not recorded in the results"


def _utc_time(iso: str | None) -> _dt.datetime | None:
    """An ISO 8601 time as an aware UTC datetime, or ``None`` when absent or unreadable."""
    try:
        value = _dt.datetime.fromisoformat(str(iso).replace("Z", "+00:00")) if iso else None
    except ValueError:
        return None
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=_dt.UTC)).astimezone(_dt.UTC)


def _computed_text(started: str | None, finished: str | None) -> str:
    """When an analysis ran, as the methodology table states it: a measured interval, or why there is none."""
    if not started and not finished:
        return "not measured (audit time fixed for identical re-runs)"
    if started == finished:  # reports written before times were measured stamped the audit time twice
        return f"not measured (audit time {started})"
    begin, end = _utc_time(started), _utc_time(finished)
    if begin is None or end is None or end < begin:
        return f"{started or 'unknown'} to {finished or 'unknown'}"
    seconds = (end - begin).total_seconds()
    took = (
        f"{seconds:.3f} s"
        if seconds < 10
        else f"{seconds:.1f} s"
        if seconds < 120
        else f"{int(seconds // 60)} min {seconds % 60:.0f} s"
    )
    tail = f"{end:%H:%M:%S}.{end.microsecond // 1000:03d}"
    if end.date() != begin.date():
        tail = f"{end:%Y-%m-%d} {tail}"
    return f"{begin:%Y-%m-%d %H:%M:%S}.{begin.microsecond // 1000:03d} to {tail} UTC ({took})"


def _audit_times(prov: Mapping[str, Any], results: Iterable[Result]) -> list[tuple[str, Any]]:
    """The reproducibility table's rows on when the audit ran."""
    started, finished = prov.get("started_at"), prov.get("finished_at")
    # Reports written before times were measured stamped the audit time as its end, too.
    measured = any(r.provenance.started_at and r.provenance.started_at != r.provenance.finished_at for r in results)
    if started and (not finished or (finished == started and not measured)):
        return [
            (
                "Audit time",
                f"{started} (recorded; how long the analyses took was not measured, so that a "
                "re-run with this time gives identical files)",
            )
        ]
    return [("Audit started", str(started or "not recorded")), ("Audit finished", str(finished or "not recorded"))]


def reproducibility(facts: Facts, number: int, attachment_sha256: str) -> list[Flowable]:
    out = [PageBreak()] + _section(facts, "reproducibility", number)
    w = facts.width
    prov = facts.provenance
    versions = dict(prov.get("versions") or {})
    hardware = prov.get("hardware") or prov.get("device") or prov.get("compute")
    pairs: list[tuple[str, Any]] = [
        ("Data file", facts.data_name),
        ("Data SHA-256", str(prov.get("data_sha256") or "not recorded")),
        ("Model file", facts.model_name),
        ("Model SHA-256", str(prov.get("model_sha256") or "not recorded")),
        ("Seed", _json_value(prov.get("seed"))),
        ("Probity", str(versions.get("probity") or facts.doc.get("probity_version") or "unknown")),
        ("Python", str(versions.get("python") or "not recorded")),
        ("Operating system", str(versions.get("platform") or "not recorded")),
        ("CPU / GPU", _hardware_text(hardware) if hardware else "not recorded in the results"),
        *_audit_times(prov, [result for _, result in facts.all_results]),
        (f"SHA-256 of {ATTACHMENT_NAME}", attachment_sha256),
    ]
    out.append(
        kv_table(
            pairs, w, key_width=44 * mm, mono_keys=("Data SHA-256", "Model SHA-256", f"SHA-256 of {ATTACHMENT_NAME}")
        )
    )
    packages = [(k, v) for k, v in versions.items() if k not in ("python", "probity", "platform")]
    if packages:
        out.append(_sub("Package versions", "s-reproducibility-packages"))
        half = (len(packages) + 1) // 2
        rows: list[list[Any]] = [["Package", "Version", "Package", "Version"]]
        for i in range(half):
            left = packages[i]
            right = packages[i + half] if i + half < len(packages) else ("", "")
            rows.append([left[0], left[1], right[0], right[1]])
        out.append(table(rows, [w * 0.25] * 4, mono=(1, 3)))
    out.append(_sub("Command", "s-reproducibility-command"))
    command = facts.report.command or "not recorded"
    if facts.from_session:
        out.append(
            _p(
                "These results were computed one by one in the Probity desktop app and chosen for this report; "
                "each records the call that made it (method, every parameter, seed and random stream). Run in a "
                "folder holding this report and the data and model files named above (identified by their "
                "SHA-256), this command re-runs every result from its call and compares every number:"
            )
        )
    else:
        out.append(
            _p(
                "Run in a folder holding the data and model files named above (identified by their SHA-256), "
                "this command recomputes every number of this report; --out DIR chooses where it writes:"
            )
        )
    with verbatim():  # a reader copies this command: every name in it stays whole
        out.append(_p(command, "mono"))
    out.append(
        _p(
            f"The results behind this report are attached to this PDF as {ATTACHMENT_NAME}; its SHA-256 above lets "
            "a reader confirm that a recomputed results.json is identical.",
            "small",
        )
    )
    return out


def reviewer_notes(facts: Facts, number: int) -> list[Flowable]:
    r = facts.report
    if not r.reviewer_notes.strip():
        return []
    out = _section(facts, "notes", number)
    for para in (p.strip() for p in r.reviewer_notes.replace("\r\n", "\n").split("\n\n")):
        if para:
            out.append(_m(escape(para).replace("\n", "<br/>")))
    sign = " · ".join(x for x in (r.auditor, r.organisation, format_date(r.report_date)) if x)
    out.append(Spacer(1, 4 * mm))
    out.append(_p(sign, "small"))
    return out


# -- assembly -------------------------------------------------------------------------------------------


def build_story(facts: Facts, *, attachment_sha256: str, pages: Mapping[str, int] | None = None) -> list[Flowable]:
    """Every flowable of the report, in order, numbering the sections that are present.

    ``pages`` maps section heading keys to page numbers (from an earlier
    layout pass) for the contents list; without it the list shows blanks of
    the same size, so both passes break pages alike.
    """
    builders: dict[str, Callable[[Facts, int], list[Flowable]]] = {
        "summary": executive_summary,
        "data": data_summary,
        "model": model_summary,
        "performance": performance,
        "importance": importance,
        "surrogates": surrogates,
        "local": local_explanations,
        "clusters": cluster_analysis,
        "dependence": dependence,
        "methodology": methodology,
        "limitations": limitations,
        "reproducibility": lambda f, n: reproducibility(f, n, attachment_sha256),
        "notes": reviewer_notes,
    }
    body: list[Flowable] = []
    contents: list[tuple[str, str]] = []
    number = 1
    for key in facts.report.sections:
        flowables = builders[key](facts, number)
        if flowables:
            if key in ("limitations", "notes"):
                body.append(CondPageBreak(60 * mm))
            body += flowables
            heading = f"s-{key}"
            contents.append((f"{number}  {SECTION_TITLES[key]}", str((pages or {}).get(heading, ""))))
            number += 1
    return title_page(facts, contents) + body

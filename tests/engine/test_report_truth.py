"""The report never contradicts the model or the data.

Every statement about the model's inputs (summary, at a glance, data and model
sections, roles table, methodology) is checked against the columns the model
takes, for several model/role combinations; headline group gaps use only
groups large enough to compare and name their sizes; categorical partial
dependence is drawn per category with every category name readable.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from reportlab.graphics.shapes import Drawing, Group, Line, PolyLine, String
from reportlab.platypus import Flowable, KeepTogether, Paragraph, Table

from engine.explain.groups import HEADLINE_MIN_GROUP_SIZE
from engine.report import ReportInput, build_report, charts, results_json_bytes
from engine.report.facts import Facts
from engine.report.formats import num
from engine.report.pdfread import PdfFile, Stream, _Cursor, _parse_literal_string, decode_stream
from engine.report.sections import build_story
from engine.report.sections.dependence import dependence
from engine.report.sections.summary import _group_sentences
from engine.report.texts import METHOD_DESCRIPTIONS

WIDTH = 480.0
SENSITIVE = ("race", "sex")
TIMESTAMP = "2024-05-01T12:00:00+00:00"


# -- synthetic audits ---------------------------------------------------------------------------------------


def _frame(seed: int = 3, n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.normal(40, 10, n).round(1),
            "income": rng.normal(50, 15, n).round(2),
            "fnlwgt": rng.normal(1e5, 2e4, n).round(0),  # a survey weight: in the data, never a model input
            "race": rng.choice(["White", "Black", "Other"], n, p=[0.6, 0.32, 0.08]),
            "sex": rng.choice([0, 1], n),
        }
    )
    logit = 0.06 * (frame.income - 50) - 0.03 * (frame.age - 40) + 0.9 * (frame.race == "Black") + 0.5 * frame.sex
    frame["approved"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame


def _named_model(frame: pd.DataFrame, columns: Sequence[str], target: str = "approved") -> Any:
    """A pipeline fitted on a DataFrame, so the model names its input columns."""
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    text = [c for c in columns if frame[c].dtype == object or str(frame[c].dtype) in ("str", "string")]
    encode = make_column_transformer((OneHotEncoder(handle_unknown="ignore"), text), remainder="passthrough")
    return make_pipeline(encode, LogisticRegression(max_iter=1000)).fit(frame[list(columns)], frame[target])


@dataclass(frozen=True)
class Case:
    """One model/role combination: which columns the model takes and which the roles name."""

    name: str
    model_columns: tuple[str, ...]
    named: bool  # whether the model file names its columns
    features: tuple[str, ...] | None  # the roles' features as requested (None: the model's own)


CASES = (
    # The census case of the issue: race and sex are model inputs the roles mark sensitive only, and the
    # roles list a survey weight the model never takes.
    Case(
        "sensitive_inputs_and_an_ignored_feature", ("age", "income", "race", "sex"), True, ("age", "income", "fnlwgt")
    ),
    Case("sensitive_not_inputs", ("age", "income", "fnlwgt"), True, None),
    Case("one_sensitive_input", ("age", "income", "race"), True, None),
    # A model fitted on a plain array names nothing: the audit passes it the columns chosen as features.
    Case("model_names_no_columns", ("age", "income", "sex"), False, ("age", "income", "sex")),
)


def _audit_document(case: Case, tmp: Path) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression

    from engine.audit import AuditRequest, audit_document, run_audit
    from engine.data import load_table
    from engine.inputs import AuditInputs
    from engine.jobs import JobContext
    from engine.models.sklearn_adapter import SklearnModel
    from engine.schema import assign_roles

    frame = _frame()
    data = tmp / f"{case.name}.csv"
    frame.to_csv(data, index=False)
    dataset = load_table(data)
    if case.named:
        estimator = _named_model(frame, case.model_columns)
    else:
        estimator = LogisticRegression(max_iter=1000).fit(frame[list(case.model_columns)].to_numpy(), frame["approved"])
    model = SklearnModel(estimator, path=tmp / f"{case.name}.skops", sha256="0" * 64)
    assert (model.input_columns is not None) == case.named
    if case.features is None:
        from engine.audit import resolve_roles

        roles = resolve_roles(dataset, model, target="approved", sensitive=SENSITIVE)
    else:
        roles = assign_roles(dataset, target="approved", features=case.features, sensitive=SENSITIVE)
    request = AuditRequest(
        data=data,
        model=tmp / f"{case.name}.skops",
        target="approved",
        sensitive=SENSITIVE,
        features=case.features,
        seed=5,
        n_repeats=3,
        analyses=("performance", "permutation", "groups"),
        timestamp=TIMESTAMP,
    )
    outcome = run_audit(request, JobContext(seed=5), inputs=AuditInputs.from_dataset(dataset, roles, model))
    # Round-trip through JSON exactly as results.json is read back from disk.
    return json.loads(results_json_bytes(audit_document(outcome)))


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("truth")
    return {case.name: _audit_document(case, tmp) for case in CASES}


# -- reading the story --------------------------------------------------------------------------------------


def _plain(markup: str) -> str:
    text = re.sub(r"<[^>]+>", "", markup)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _walk(flowables: Sequence[Any]) -> Iterator[Flowable]:
    for f in flowables:
        yield f
        if isinstance(f, Table):
            for row in f._cellvalues:
                for cell in row:
                    yield from _walk(cell if isinstance(cell, list) else [cell])
        elif isinstance(f, KeepTogether):
            yield from _walk(f._content)


def _cell_text(cell: Any) -> str:
    return " ".join(
        _plain(f.text) for f in _walk(cell if isinstance(cell, list) else [cell]) if isinstance(f, Paragraph)
    )


def _tables(story: Sequence[Any]) -> list[list[list[str]]]:
    return [[[_cell_text(c) for c in row] for row in f._cellvalues] for f in _walk(story) if isinstance(f, Table)]


def _paragraphs(story: Sequence[Any]) -> list[str]:
    return [_plain(f.text) for f in _walk(story) if isinstance(f, Paragraph)]


def _story(document: dict[str, Any]) -> list[Any]:
    facts = Facts.gather(ReportInput.from_document(document), WIDTH)
    return build_story(facts, attachment_sha256="0" * 64)


def _expected_inputs(document: dict[str, Any]) -> list[str]:
    """What the model takes, read straight from the recorded model (or, unnamed, what the audit passed it)."""
    named = document["model"]["input_columns"]
    return list(named) if named is not None else list(document["provenance"]["roles"]["features"])


def _importance_phrase(document: dict[str, Any], name: str) -> str:
    entry = next(e for e in document["importance"]["permutation"] if e["feature"] == name)
    interval = f"(95 % CI {num(entry['ci_low'])} to {num(entry['ci_high'])})"
    if entry["mean"] > 0:
        return f"shuffling it lowers accuracy by {num(entry['mean'])} {interval}"
    return f"shuffling it does not lower accuracy on average: mean drop {num(entry['mean'])} {interval}"


# -- item 1: statements about the model's inputs ---------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_every_statement_about_inputs_matches_the_model(case: Case, documents: dict[str, dict[str, Any]]) -> None:
    document = documents[case.name]
    inputs = _expected_inputs(document)
    assert set(inputs) == set(case.model_columns)
    chosen = document["provenance"]["roles"]["features"]
    not_inputs = [c for c in document["data"]["schema"] if c["name"] not in inputs]
    story = _story(document)
    paragraphs = _paragraphs(story)
    text = "\n".join(paragraphs)
    tables = _tables(story)

    # Executive summary: one finding per sensitive attribute, true of the model, with its importance.
    for name in SENSITIVE:
        if name in inputs:
            assert f"Sensitive attribute {name} is a direct model input: {_importance_phrase(document, name)}." in text
            assert f"{name} is not a model input" not in text
        else:
            assert f"Sensitive attribute {name} is not a model input" in text
            assert f"{name} is a direct model input" not in text
    assert " are not a model input" not in text and " are a model input" not in text
    unnamed_note = "The model file does not name its input columns"
    assert (unnamed_note in text) == (not case.named)

    # Every count of inputs is the model's.
    counts = [int(m) for m in re.findall(r"(\d+) columns? (?:is a model input|are model inputs)", text)]
    assert counts == [len(inputs)]
    glance = [row[1] for t in tables for row in t if row[0] == "Model inputs"]
    assert glance == [str(len(inputs))]
    model_rows = [row[1] for t in tables for row in t if row[0] == "Inputs"]
    assert len(model_rows) == 1 and model_rows[0].startswith(f"{len(inputs)}: {', '.join(inputs)}")

    # The roles table calls exactly the model's inputs "feature".
    roles = next(t for t in tables if t[0][:2] == ["Column", "Role"])
    role_of = {row[0]: row[1].split(", ") for row in roles[1:]}
    assert {c for c, r in role_of.items() if "feature" in r} == set(inputs)
    for column in chosen:
        if column not in inputs:
            assert role_of[column] == ["not used by the model"]
            assert f"The model does not take {column}" in text

    # Methodology: the model's inputs, and no column the model ignores listed as a feature or an input.
    settings = next(t for t in tables if t[0] == ["Parameter", "Value"] and any(r[0] == "target" for r in t))
    by_key = {row[0]: row[1] for row in settings[1:]}
    assert by_key["model inputs"].startswith(", ".join(inputs) + f" ({len(inputs)}, ")
    for key, value in by_key.items():
        if "feature" in key or "input" in key:
            listed = value.split(" (")[0].split(", ")
            if key.startswith("requested but not"):
                assert set(listed).isdisjoint(inputs)
            else:
                assert not {c["name"] for c in not_inputs} & set(listed), (key, value)
    for column in (c["name"] for c in not_inputs):
        assert not re.search(rf"\b{re.escape(column)} (?:is|are) (?:a|direct)", text), column


def test_the_pdf_says_plainly_that_sensitive_attributes_are_inputs(
    documents: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    document = documents["sensitive_inputs_and_an_ignored_feature"]
    path = tmp_path / "report.pdf"
    build_report(ReportInput.from_document(document), path)
    text = _pdf_text(path)
    for name in ("race", "sex"):
        assert f"Sensitive attribute {name} is a direct model input: {_importance_phrase(document, name)}." in text
        assert f"{name} is not a model input" not in text
    assert "race and sex are not a model input" not in text
    assert "Model inputs 4 " in text
    assert "4 columns are model inputs" in text
    assert "Inputs 4: age, income, race, sex" in text
    assert "The model does not take fnlwgt" in text
    assert "fnlwgt not used by the model" in text
    assert "model inputs age, income, race, sex (4, named by the model file)" in text


# -- reading a PDF's text -----------------------------------------------------------------------------------


def _cmap(pdf: PdfFile, ref: Any) -> dict[int, str]:
    data = decode_stream(pdf.resolve(ref)).decode("latin-1")
    out: dict[int, str] = {}
    for block in re.findall(r"beginbfchar(.*?)endbfchar", data, re.S):
        for src, dst in re.findall(r"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
            out[int(src, 16)] = bytes.fromhex(dst).decode("utf-16-be")
    for block in re.findall(r"beginbfrange(.*?)endbfrange", data, re.S):
        for lo, hi, dst in re.findall(r"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
            for k, code in enumerate(range(int(lo, 16), int(hi, 16) + 1)):
                out[code] = chr(int(dst, 16) + k)
    return out


def _page_text(pdf: PdfFile, page: dict[str, Any]) -> str:
    fonts = pdf.get(page, "Resources", "Font") or {}
    maps = {name: _cmap(pdf, pdf.get(ref, "ToUnicode")) for name, ref in fonts.items()}
    contents = pdf.resolve(page["Contents"])
    streams = contents if isinstance(contents, list) else [contents]
    data = b"".join(decode_stream(pdf.resolve(s)) for s in streams if isinstance(pdf.resolve(s), Stream))
    out: list[str] = []
    cur = _Cursor(data)
    font: dict[int, str] = {}
    last_name = ""
    while True:
        cur.skip_space()
        if cur.pos >= len(data):
            break
        c = data[cur.pos : cur.pos + 1]
        if c == b"(":
            raw = _parse_literal_string(cur)
            out.append("".join(font.get(b, "") for b in raw))
            continue
        if c == b"/":
            m = re.compile(rb"/([^\s/\[\]()<>{}%]+)").match(data, cur.pos)
            assert m is not None
            last_name = m.group(1).decode("latin-1")
            cur.pos = m.end()
            continue
        m = re.compile(rb"[^\s/\[\]()<>{}%]+|.").match(data, cur.pos)
        assert m is not None
        cur.pos = m.end()
        word = m.group(0)
        if word == b"Tf":
            font = maps.get(last_name, {})
        elif word in (b"T*", b"Td", b"TD", b"Tm", b"ET", b"'", b'"'):
            out.append("\n")
    return "".join(out)


def _pdf_text(path: Path) -> str:
    """The PDF's text through each font's ToUnicode map, whitespace collapsed to single spaces."""
    pdf = PdfFile.open(path)
    pages: list[str] = []

    def walk(node: Any) -> None:
        node = pdf.resolve(node)
        if node.get("Type") == "Pages":
            for kid in node["Kids"]:
                walk(kid)
        else:
            pages.append(_page_text(pdf, node))

    walk(pdf.catalog["Pages"])
    return re.sub(r"\s+", " ", " ".join(pages)) + " "


# -- item 4: headline gaps only between groups large enough to compare --------------------------------------


def _facts(document: dict[str, Any]) -> Facts:
    report = ReportInput(document=document, results={}, auditor="", organisation="", report_date=TIMESTAMP, command="")
    return Facts.gather(report, WIDTH)


def _group(attribute: str, group: str, n: int, rate: float, accuracy: float) -> dict[str, Any]:
    return {"attribute": attribute, "group": group, "n": n, "positive_rate": rate, "accuracy": accuracy}


def test_headline_gap_is_between_large_groups_and_names_their_size() -> None:
    rows = [
        _group("race", "A", 3311, 0.315, 0.81),
        _group("race", "B", 1204, 0.120, 0.84),
        _group("race", "C", 11, 0.909, 0.45),  # would make a 79-point "gap" with D
        _group("race", "D", 4, 0.0, 1.0),
    ]
    sentences = _group_sentences(_facts({"group_metrics": rows}))
    assert len(sentences) == 1
    text = _plain(sentences[0])
    assert f"with at least {HEADLINE_MIN_GROUP_SIZE} rows" in text
    assert (
        "the predicted positive rate ranges from 12.0 % (B, n = 1,204) to 31.5 % (A, n = 3,311), "
        "a difference of 19.5 percentage points"
    ) in text
    assert "the accuracy ranges from 81.0 % (A, n = 3,311) to 84.0 % (B, n = 1,204)" in text
    assert "Group C is not compared: too small (n = 11)." in text
    assert "Group D is not compared: too small (n = 4)." in text
    assert "90.9 %" not in text and "0.0 %" not in text and "100.0 %" not in text


def test_one_large_group_and_tiny_ones_make_no_headline_gap() -> None:
    # The case: a gap between groups of 31 and 11 rows was named as a headline.
    rows = [_group("sex", "F", 31, 0.2, 0.7), _group("sex", "M", 11, 0.6, 0.9), _group("sex", "X", 2, 1.0, 1.0)]
    text = _plain(_group_sentences(_facts({"group_metrics": rows}))[0])
    assert "ranges from" not in text
    assert f"fewer than two have at least {HEADLINE_MIN_GROUP_SIZE} rows" in text
    assert "Group M is not compared: too small (n = 11)." in text
    assert "Group X is not compared: too small (n = 2)." in text
    assert "Group F is not compared" not in text


def test_the_minimum_group_size_is_stated_in_the_methodology() -> None:
    assert f"at least {HEADLINE_MIN_GROUP_SIZE} rows" in METHOD_DESCRIPTIONS["groups"]


# -- item 10: categorical partial dependence ------------------------------------------------------------------

LONG_NAMES = (
    "Prof-specialty",
    "Craft-repair",
    "Exec-managerial",
    "Adm-clerical",
    "Handlers-cleaners",
    "Machine-op-inspct",
    "Transport-moving",
    "Farming-fishing",
)


def _strings(node: Any) -> Iterator[String]:
    for item in getattr(node, "contents", []):
        if isinstance(item, String):
            yield item
        elif isinstance(item, Group):
            yield from _strings(item)


def _shapes(node: Any) -> Iterator[Any]:
    for item in getattr(node, "contents", []):
        yield item
        if isinstance(item, Group):
            yield from _shapes(item)


def _assert_names_readable(drawing: Drawing, names: Sequence[str]) -> None:
    texts = [s.text for s in _strings(drawing)]
    assert not [t for t in texts if "…" in t], texts
    for name in names:
        # Whole under its column, or spelled out in the key beside its code.
        whole = name in texts
        keyed = [t for t in texts if re.fullmatch(rf"[A-Z]+ = {re.escape(name)}", t)]
        assert whole or keyed, (name, texts)
        if keyed:
            assert keyed[0].split(" = ")[0] in texts  # the code is under the column too


def test_long_category_names_are_shown_whole_or_in_a_key() -> None:
    drawing = charts.column_chart(
        LONG_NAMES, np.linspace(0.2, 0.6, len(LONG_NAMES)), xlabel="occupation", ylabel="P(>50K)", width=236, height=180
    )
    _assert_names_readable(drawing, LONG_NAMES)
    assert any(" = " in s.text for s in _strings(drawing))  # these names need a key at this width
    wide = charts.column_chart(
        LONG_NAMES[:3], np.array([0.2, 0.3, 0.4]), xlabel="occupation", ylabel="P(>50K)", width=480, height=180
    )
    _assert_names_readable(wide, LONG_NAMES[:3])
    assert not any(" = " in s.text for s in _strings(wide))  # room enough: no key


def test_categorical_dependence_is_drawn_per_category_never_joined() -> None:
    from engine.explain import pdp
    from engine.inputs import AuditInputs
    from engine.jobs import JobContext
    from engine.models.sklearn_adapter import SklearnModel
    from engine.schema import Roles

    rng = np.random.default_rng(0)
    n = 240
    frame = pd.DataFrame({"occupation": rng.choice(LONG_NAMES, n), "hours": rng.normal(40, 8, n)})
    frame["y"] = ((frame.occupation.isin(LONG_NAMES[:3])) ^ (rng.random(n) < 0.2)).astype(int)
    model = SklearnModel(_named_model(frame, ("occupation", "hours"), target="y"))
    inputs = AuditInputs(frame=frame, roles=Roles(target="y", features=("occupation", "hours")), model=model)
    result = pdp.run(inputs, ctx=JobContext(seed=1), features=["occupation", "hours"], ice_rows=30, grid_resolution=6)
    assert result.feature("occupation").kind == "categorical"
    document = {"provenance": {"started_at": TIMESTAMP}, "results": {"pdp": result.to_dict()}}
    facts = Facts.gather(ReportInput.from_document(document), WIDTH)
    drawings = [f for f in _walk(dependence(facts, 1)) if isinstance(f, Drawing)]
    assert len(drawings) == 2
    by_feature = {next(s.text for s in _strings(d) if s.text in ("occupation", "hours")): d for d in drawings}
    categorical = by_feature["occupation"]
    names = [str(g) for g in result.feature("occupation").grid]
    _assert_names_readable(categorical, names)
    shapes = list(_shapes(categorical))
    assert not [s for s in shapes if isinstance(s, PolyLine)]
    plot_width = max(max(s.x1, s.x2) for s in shapes if isinstance(s, Line)) - min(
        min(s.x1, s.x2) for s in shapes if isinstance(s, Line)
    )
    for line in (s for s in shapes if isinstance(s, Line)):
        dx, dy = abs(line.x2 - line.x1), abs(line.y2 - line.y1)
        assert dx == 0 or dy == 0, "a slanted line joins two categories"
        if dy == 0:  # horizontal: the axis and grid span the plot; whisker caps are a few points
            assert dx <= 6 or dx >= 0.9 * plot_width, dx
    # The numeric feature still gets its curves.
    assert [s for s in _shapes(by_feature["hours"]) if isinstance(s, PolyLine)]

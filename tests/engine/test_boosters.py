"""XGBoost (.json, .ubj) and LightGBM (.txt, .lgb) models from their own files (issue #13, first increment).

Every model here is trained by the test itself on small synthetic data holding a pandas
``category`` column and missing values: predictions equal the library's own on the same
rows, the file is described without its library, malformed files are refused with one
sentence before the library reads them, and the model-agnostic analyses, the audit and
its verification run on them.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from engine.cli import main
from engine.data import load_table
from engine.errors import AnalysisError, ModelError, ModelInputError
from engine.explain import native
from engine.inputs import AuditInputs
from engine.jobs import JobContext
from engine.models import booster_adapter
from engine.models.base import Task
from engine.models.booster_adapter import BOOSTER_CAVEAT, BoosterModel, read_ubjson
from engine.models.loading import inspect_model, load_model
from engine.schema import Roles

ROOT = Path(__file__).resolve().parents[2]
CATEGORIES = ["zeta", "alpha", "mid"]  # training order, deliberately not sorted


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "income": rng.normal(size=n),
            "debt": rng.normal(size=n),
            "region": pd.Categorical(rng.choice(CATEGORIES, size=n), categories=CATEGORIES),
        }
    )
    X.loc[::6, "income"] = np.nan  # missing values follow each split's default direction
    X.loc[3::13, "region"] = np.nan
    return X


def _targets(X: pd.DataFrame, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    score = np.nan_to_num(X["income"].to_numpy()) + 0.8 * (X["region"] == "alpha").to_numpy() - 0.3 * X["debt"]
    return {
        "binary": (score + 0.3 * rng.normal(size=len(X)) > 0.2).astype(int),
        "multiclass": np.digitize(score, [-0.4, 0.6]),
        "regression": 2.0 * score + 0.1 * rng.normal(size=len(X)),
    }


@pytest.fixture(scope="module")
def boosters(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """The training frame, its CSV (region as plain text), and one saved model per library, task and format."""
    folder = tmp_path_factory.mktemp("boosters")
    X = _frame(400, seed=7)
    y = _targets(X, seed=8)
    csv = folder / "credit.csv"
    X.assign(target=y["binary"], level=y["multiclass"], amount=y["regression"]).to_csv(csv, index=False)
    paths: dict[str, Path] = {}
    xgb_objectives = {
        "binary": {"objective": "binary:logistic"},
        "multiclass": {"objective": "multi:softprob", "num_class": 3},
        "regression": {"objective": "reg:squarederror"},
    }
    for task, params in xgb_objectives.items():
        matrix = xgb.DMatrix(X, label=y[task], enable_categorical=True)
        booster = xgb.train({**params, "max_depth": 3, "max_cat_to_onehot": 1, "seed": 0}, matrix, num_boost_round=8)
        for suffix in (".json", ".ubj"):
            paths[f"xgb-{task}{suffix}"] = folder / f"xgb_{task}{suffix}"
            booster.save_model(paths[f"xgb-{task}{suffix}"])
    lgb_objectives = {
        "binary": {"objective": "binary"},
        "multiclass": {"objective": "multiclass", "num_class": 3},
        "regression": {"objective": "regression"},
    }
    for task, params in lgb_objectives.items():
        booster = lgb.train(
            {**params, "num_leaves": 7, "min_data_per_group": 5, "cat_smooth": 1, "verbosity": -1, "seed": 0},
            lgb.Dataset(X, label=y[task]),
            num_boost_round=8,
        )
        suffix = ".lgb" if task == "multiclass" else ".txt"
        paths[f"lgb-{task}"] = folder / f"lgb_{task}{suffix}"
        booster.save_model(paths[f"lgb-{task}"])
    return SimpleNamespace(folder=folder, X=X, y=y, csv=csv, paths=paths)


def _library_prediction(path: Path, X: pd.DataFrame, *, raw: bool = False) -> np.ndarray:
    """What the library itself predicts for the training-style frame (category dtype, NaNs)."""
    if path.suffix in (".json", ".ubj"):
        booster = xgb.Booster()
        booster.load_model(path)
        return np.asarray(booster.predict(xgb.DMatrix(X, enable_categorical=True), output_margin=raw), dtype=np.float64)
    return np.asarray(lgb.Booster(model_file=path).predict(X, raw_score=raw), dtype=np.float64)


MODELS = [
    "xgb-binary.json",
    "xgb-binary.ubj",
    "xgb-multiclass.json",
    "xgb-multiclass.ubj",
    "xgb-regression.json",
    "xgb-regression.ubj",
    "lgb-binary",
    "lgb-multiclass",
    "lgb-regression",
]


# -- loading and prediction --------------------------------------------------------------------------------


@pytest.mark.parametrize("key", MODELS)
def test_predictions_equal_the_librarys_own_on_the_same_rows(boosters: SimpleNamespace, key: str) -> None:
    path = boosters.paths[key]
    model = load_model(path)
    assert isinstance(model, BoosterModel)
    assert model.format == ("xgboost" if key.startswith("xgb") else "lightgbm")
    assert not model.trust.required and model.trust.granted_by == "not required"
    assert model.input_columns == ("income", "debt", "region")
    # The data as Probity reads it: region is plain text, not a category column.
    table = load_table(boosters.csv).frame
    assert not isinstance(table["region"].dtype, pd.CategoricalDtype)
    ours = model.predict(table[["debt", "region", "income", "target"]])  # any column order, extra columns
    theirs = _library_prediction(path, boosters.X)
    task = key.split("-")[1].split(".")[0]
    if task == "binary":
        assert model.task is Task.CLASSIFICATION and model.classes == (0, 1)
        np.testing.assert_allclose(ours[:, 1], theirs, rtol=0, atol=1e-12)
        np.testing.assert_allclose(ours[:, 0], 1.0 - theirs, rtol=0, atol=1e-12)
    elif task == "multiclass":
        assert model.classes == (0, 1, 2) and ours.shape == (400, 3)
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)
    else:
        assert model.task is Task.REGRESSION and model.classes is None
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)
    # The rows with missing values and each category are really exercised (not all mapped alike).
    assert table["income"].isna().sum() > 50 and table["region"].isna().sum() > 20
    assert len(np.unique(np.round(theirs, 9), axis=0)) > 5


@pytest.mark.parametrize("key", ["xgb-binary.ubj", "xgb-multiclass.json", "lgb-binary", "lgb-multiclass"])
def test_raw_output_is_the_librarys_margin_and_named(boosters: SimpleNamespace, key: str) -> None:
    path = boosters.paths[key]
    model = load_model(path)
    raw = model.predict_raw_output(boosters.X)
    np.testing.assert_allclose(raw, _library_prediction(path, boosters.X, raw=True), rtol=0, atol=1e-12)
    binary = "binary" in key
    assert model.output_space == "probability"
    assert model.raw_output_space == ("log-odds" if binary else "margin")
    if binary:  # the log-odds are those of the probabilities Probity reports
        np.testing.assert_allclose(1.0 / (1.0 + np.exp(-raw)), model.predict(boosters.X)[:, 1], atol=1e-6)


def test_categories_are_matched_by_value_not_by_code(boosters: SimpleNamespace) -> None:
    # The same rows with region's categories in another order (so other codes) predict the same.
    reordered = boosters.X.copy()
    reordered["region"] = reordered["region"].cat.reorder_categories(sorted(CATEGORIES))
    for key in ("xgb-binary.json", "lgb-binary"):
        model = load_model(boosters.paths[key])
        np.testing.assert_array_equal(model.predict(reordered), model.predict(boosters.X))


def test_unnamed_boosters_take_the_data_columns_in_order(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    matrix = rng.normal(size=(200, 3))
    matrix[::5, 0] = np.nan
    y = (np.nan_to_num(matrix[:, 0]) + matrix[:, 1] > 0).astype(int)
    xgb.train({"objective": "binary:logistic", "max_depth": 2}, xgb.DMatrix(matrix, y), 4).save_model(
        tmp_path / "x.json"
    )
    lgb.train({"objective": "binary", "verbosity": -1}, lgb.Dataset(matrix, y), 4).save_model(tmp_path / "l.txt")
    frame = pd.DataFrame(matrix, columns=["p", "q", "r"])
    for name in ("x.json", "l.txt"):
        model = load_model(tmp_path / name)
        assert model.input_columns is None and model.n_features_in == 3
        theirs = _library_prediction(tmp_path / name, matrix)  # type: ignore[arg-type]
        np.testing.assert_allclose(model.predict(frame)[:, 1], theirs, rtol=0, atol=1e-12)
        with pytest.raises(ModelInputError, match=r"expects 3 input columns but was given 2\.$"):
            model.predict(frame[["p", "q"]])


def test_numeric_categories_and_bare_category_codes_predict_as_the_library(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    n = 300
    grade = rng.choice([9, 3, 5], size=n)
    X = pd.DataFrame({"x": rng.normal(size=n), "grade": pd.Categorical(grade, categories=[9, 3, 5])})
    y = ((X["x"] > 0) | (grade == 3)).astype(int)
    xgb.train(
        {"objective": "binary:logistic", "max_depth": 3}, xgb.DMatrix(X, y, enable_categorical=True), 5
    ).save_model(tmp_path / "grades.ubj")
    lgb.train({"objective": "binary", "verbosity": -1, "min_data_per_group": 5}, lgb.Dataset(X, y), 5).save_model(
        tmp_path / "grades.txt"
    )
    as_read = X.assign(grade=grade.astype(np.float64))  # a CSV column of numbers, not categories
    for name in ("grades.ubj", "grades.txt"):
        model = load_model(tmp_path / name)
        assert model.info.categorical == {1: (9, 3, 5)}
        theirs = _library_prediction(tmp_path / name, X)
        np.testing.assert_allclose(model.predict(as_read)[:, 1], theirs, rtol=0, atol=1e-12)
    # Category codes without stored names (a numpy-trained booster): the values are the codes.
    codes = np.column_stack([X["x"], X["grade"].cat.codes]).astype(np.float64)
    xgb.train(
        {"objective": "binary:logistic", "max_depth": 3},
        xgb.DMatrix(codes, y, feature_types=["q", "c"], enable_categorical=True),
        5,
    ).save_model(tmp_path / "codes.json")
    lgb.train({"objective": "binary", "verbosity": -1}, lgb.Dataset(codes, y, categorical_feature=[1]), 5).save_model(
        tmp_path / "codes.txt"
    )
    frame = pd.DataFrame(codes, columns=["x", "grade"])
    for name in ("codes.json", "codes.txt"):
        model = load_model(tmp_path / name)
        assert model.info.categorical == {1: None} and model.input_columns is None
        if name.endswith(".json"):
            booster = xgb.Booster()
            booster.load_model(tmp_path / name)
            theirs = booster.predict(xgb.DMatrix(codes, feature_types=["q", "c"], enable_categorical=True))
        else:
            theirs = lgb.Booster(model_file=tmp_path / name).predict(codes)
        np.testing.assert_allclose(model.predict(frame)[:, 1], theirs, rtol=0, atol=1e-12)
        assert "category codes (the file stores no category names)" in inspect_model(tmp_path / name).to_text()


# -- what the file declares --------------------------------------------------------------------------------


def test_inspect_model_describes_the_booster_without_its_library(boosters: SimpleNamespace) -> None:
    info = inspect_model(boosters.paths["xgb-multiclass.ubj"])
    assert info.format == "xgboost" and not info.needs_trust and not info.refused
    text = info.to_text()
    assert "Library:   XGBoost (UBJSON; XGBoost 3.2.0)" in text
    assert "Objective: multi:softprob" in text
    assert "Task:      classification, classes 0, 1, 2" in text
    assert "Trees:     24 in 8 boosting rounds" in text
    assert "Features:  3: income, debt, region" in text
    assert "categorical region: 3 categories ('zeta', 'alpha', 'mid')" in text  # training order
    assert "margin space" in text and "loads without a trust decision" in text

    text = inspect_model(boosters.paths["lgb-regression"]).to_text()
    assert "Library:   LightGBM (text; model format v4)" in text
    assert "Objective: regression" in text and "Task:      regression" in text
    assert "Trees:     8 in 8 boosting rounds" in text
    assert "categorical region: 3 categories ('zeta', 'alpha', 'mid')" in text
    assert "Output:    value; the raw output (margin) is in value space" in text

    # Inspecting (and the whole engine import) leaves the libraries unloaded.
    files = [str(boosters.paths["xgb-binary.ubj"]), str(boosters.paths["lgb-binary"])]
    code = (
        "import json, sys; from engine.models.loading import inspect_model; "
        f"[inspect_model(f) for f in {files!r}]; "
        "print(json.dumps([m in sys.modules for m in ('xgboost', 'lightgbm')]))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [False, False]


def test_the_ubjson_reader_reads_what_xgboost_writes(boosters: SimpleNamespace) -> None:
    as_json = json.loads(boosters.paths["xgb-multiclass.json"].read_text())
    as_ubj = read_ubjson(boosters.paths["xgb-multiclass.ubj"].read_bytes())

    def same(a: Any, b: Any) -> None:
        if isinstance(a, dict):
            assert isinstance(b, dict) and set(a) == set(b)
            for key in a:
                same(a[key], b[key])
        elif isinstance(a, list) and (not a or not isinstance(a[0], (dict, list, str))):
            # JSON writes float32 values in their shortest float32 text ("1e-45"): equal as float32.
            np.testing.assert_array_equal(np.asarray(a, dtype=np.float32), np.asarray(b).astype(np.float32))
        elif isinstance(a, list):
            assert len(a) == len(b)
            for x, y in zip(a, b):
                same(x, y)
        else:
            assert a == b

    same(as_json, as_ubj)


def test_the_ubjson_reader_refuses_damage_without_allocating_it() -> None:
    with pytest.raises(ValueError, match="ends inside"):
        read_ubjson(b"{L" + struct.pack(">q", 5) + b"abc")
    with pytest.raises(ValueError, match=r"ends inside an array of 1,000,000,000 elements"):
        read_ubjson(b"[$d#L" + struct.pack(">q", 1_000_000_000) + b"\x00" * 16)
    with pytest.raises(ValueError, match="bytes after its end"):
        read_ubjson(b"{}{}")
    with pytest.raises(ValueError, match="more than 5 levels deep"):
        read_ubjson(b"[" * 10 + b"]" * 10, max_depth=5)


# -- bad input: one sentence each ------------------------------------------------------------------------------


def _forbid_library_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("the library was handed a file Probity should have refused")

    monkeypatch.setattr(booster_adapter, "_load_xgboost", refuse)
    monkeypatch.setattr(booster_adapter, "_load_lightgbm", refuse)


def test_files_of_the_wrong_content_are_one_sentence(
    boosters: SimpleNamespace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _forbid_library_loading(monkeypatch)
    table = tmp_path / "notes.txt"
    table.write_text("income,debt\n1,2\n")
    whole = boosters.paths["xgb-binary.ubj"].read_bytes()
    truncated = tmp_path / "cut.ubj"
    truncated.write_bytes(whole[: len(whole) // 2])
    other_json = tmp_path / "settings.json"
    other_json.write_text('{"theme": "dark"}')
    broken_json = tmp_path / "broken.json"
    broken_json.write_text('{"learner": ')
    dump = tmp_path / "dump.json"
    dump.write_text(json.dumps(lgb.Booster(model_file=boosters.paths["lgb-binary"]).dump_model()))
    cases = {
        table: r"^notes\.txt is not a LightGBM model file: it does not start with the line \"tree\"",
        truncated: r"^cut\.ubj is a truncated or damaged XGBoost UBJSON file: it ends inside .* \(at byte [\d,]+\)\.$",
        other_json: r"^settings\.json is not an XGBoost model: its JSON document has no \"learner\" object\.$",
        broken_json: r"^broken\.json is not valid JSON: Expecting value \(line 1, column 13\)\.$",
        dump: r"^dump\.json is not an XGBoost model: .* looks like LightGBM's dump_model output",
    }
    for path, pattern in cases.items():
        for call in (load_model, inspect_model):
            with pytest.raises(ModelError, match=pattern):
                call(path)
        capsys.readouterr()
        assert main(["inspect-model", str(path)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err


def test_a_booster_whose_feature_names_differ_from_the_data_is_one_sentence(boosters: SimpleNamespace) -> None:
    renamed = boosters.X.rename(columns={"region": "area"})
    for key, title in (("xgb-binary.json", "XGBoost"), ("lgb-binary", "LightGBM")):
        model = load_model(boosters.paths[key])
        with pytest.raises(ModelInputError) as err:
            model.predict(renamed)
        assert str(err.value) == (
            f"The data lacks 1 of the 3 columns the {title} booster {model.name} was trained on ('region'); "
            "its feature names come from its file and must match the data's column names."
        )


def test_a_category_never_seen_in_training_is_one_sentence(boosters: SimpleNamespace) -> None:
    rows = boosters.X.head(4).copy()
    rows["region"] = rows["region"].astype(object)
    rows.loc[rows.index[1], "region"] = "atlantis"
    for key in ("xgb-binary.ubj", "lgb-multiclass"):
        model = load_model(boosters.paths[key])
        with pytest.raises(ModelInputError, match=r"^The column 'region' holds 1 value the .* booster .* never saw "):
            model.predict(rows)
    text_in_number = boosters.X.head(3).astype({"income": object})
    text_in_number.loc[text_in_number.index[0], "income"] = "lots"
    with pytest.raises(ModelInputError, match=r"^The column 'income' holds values that are not numbers"):
        load_model(boosters.paths["lgb-binary"]).predict(text_in_number)


def _xgb_doc(boosters: SimpleNamespace, key: str = "xgb-binary.json") -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(boosters.paths[key].read_text())
    return doc


def _trees(doc: dict[str, Any]) -> list[dict[str, Any]]:
    trees: list[dict[str, Any]] = doc["learner"]["gradient_booster"]["model"]["trees"]
    return trees


def _crafted_xgboost() -> list[tuple[str, Any, str]]:
    def child_out_of_range(doc: dict[str, Any]) -> None:
        _trees(doc)[0]["left_children"][0] = 999

    def cycle(doc: dict[str, Any]) -> None:
        tree = _trees(doc)[0]
        inner = next(i for i, c in enumerate(tree["left_children"]) if c != -1 and i > 0)
        tree["right_children"][inner] = tree["left_children"][0]  # a node with two parents

    def feature_out_of_range(doc: dict[str, Any]) -> None:
        _trees(doc)[1]["split_indices"][0] = 3

    def nan_threshold(doc: dict[str, Any]) -> None:
        _trees(doc)[0]["split_conditions"][0] = float("nan")

    def tree_count(doc: dict[str, Any]) -> None:
        doc["learner"]["gradient_booster"]["model"]["gbtree_model_param"]["num_trees"] = "9"

    def short_array(doc: dict[str, Any]) -> None:
        _trees(doc)[0]["default_left"].pop()

    def category_code(doc: dict[str, Any]) -> None:
        tree = next(t for t in _trees(doc) if t["categories"])
        tree["categories"][0] = 7  # region has 3 categories

    def group(doc: dict[str, Any]) -> None:
        doc["learner"]["gradient_booster"]["model"]["tree_info"][0] = 2

    return [
        ("child", child_out_of_range, "tree 0's child indices point outside the tree's"),
        ("cycle", cycle, "tree 0's child indices name a node as the child of two nodes (the nodes do not form a tree)"),
        ("feature", feature_out_of_range, "tree 1's split_indices names a feature outside its 3"),
        ("nan", nan_threshold, "tree 0's split_conditions holds a value that is not a finite number"),
        ("count", tree_count, "trees do not number num_trees (9)"),
        ("short", short_array, "tree 0's default_left has "),
        ("category", category_code, "categories names a category code outside the 3 of feature 2"),
        ("group", group, "tree_info assigns a tree to an output outside its 1"),
    ]


@pytest.mark.parametrize(("label", "craft", "needle"), _crafted_xgboost(), ids=[c[0] for c in _crafted_xgboost()])
def test_a_crafted_xgboost_file_is_refused_before_xgboost_reads_it(
    boosters: SimpleNamespace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, label: str, craft: Any, needle: str
) -> None:
    doc = _xgb_doc(boosters)
    craft(doc)
    path = tmp_path / f"crafted_{label}.json"
    path.write_text(json.dumps(doc))
    _forbid_library_loading(monkeypatch)
    for call in (load_model, inspect_model):
        with pytest.raises(ModelError) as err:
            call(path)
        message = str(err.value)
        assert message.startswith(f"crafted_{label}.json contains an XGBoost booster whose ")
        assert needle in message and message.endswith(", so it is not used.")


def _ubj(value: Any) -> bytes:
    """A minimal UBJSON writer, as XGBoost lays documents out (typed arrays for numbers)."""
    if isinstance(value, dict):
        out = b"{"
        for key, item in value.items():
            raw = key.encode()
            out += b"L" + struct.pack(">q", len(raw)) + raw + _ubj(item)
        return out + b"}"
    if isinstance(value, list):
        if value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return b"[$L#L" + struct.pack(">q", len(value)) + struct.pack(f">{len(value)}q", *value)
        if value and all(isinstance(v, float) for v in value):
            return b"[$d#L" + struct.pack(">q", len(value)) + struct.pack(f">{len(value)}f", *value)
        return b"[#L" + struct.pack(">q", len(value)) + b"".join(_ubj(v) for v in value)
    if isinstance(value, str):
        raw = value.encode()
        return b"SL" + struct.pack(">q", len(raw)) + raw
    if isinstance(value, bool):
        return b"T" if value else b"F"
    if isinstance(value, int):
        return b"L" + struct.pack(">q", value)
    if isinstance(value, float):
        return b"D" + struct.pack(">d", value)
    raise TypeError(type(value))


def test_a_crafted_ubj_file_is_refused_before_xgboost_reads_it(
    boosters: SimpleNamespace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = _xgb_doc(boosters, "xgb-regression.json")
    assert read_ubjson(_ubj(doc))["learner"]["feature_names"] == ["income", "debt", "region"]
    _trees(doc)[3]["right_children"][0] = -7
    path = tmp_path / "crafted.ubj"
    path.write_bytes(_ubj(doc))
    _forbid_library_loading(monkeypatch)
    with pytest.raises(
        ModelError, match=r"^crafted\.ubj contains an XGBoost booster whose tree 3's child indices point outside"
    ):
        load_model(path)


def _lgb_text(boosters: SimpleNamespace, key: str = "lgb-binary") -> str:
    return boosters.paths[key].read_text()


def _edit_tree_line(text: str, tree: int, key: str, edit: Any) -> str:
    """``text`` with the ``key=`` line of tree ``tree`` replaced by ``edit(values)`` (tree_sizes left alone)."""
    head, _, rest = text.partition(f"Tree={tree}\n")
    block, sep, tail = rest.partition("\n\n")
    lines = block.split("\n")
    for i, line in enumerate(lines):
        if line.startswith(key + "="):
            lines[i] = f"{key}=" + " ".join(edit(line[len(key) + 1 :].split(" ")))
    return head + f"Tree={tree}\n" + "\n".join(lines) + sep + tail


def _fix_tree_sizes(text: str) -> str:
    """Recompute tree_sizes as LightGBM would, so that only the crafted field is wrong."""
    data = text.encode()
    starts = [i + 1 for i in range(len(data)) if data.startswith(b"\nTree=", i)]
    end = data.index(b"\nend of trees") + 1
    sizes = [b - a for a, b in zip(starts, [*starts[1:], end])]
    lines = text.split("\n")
    lines = [("tree_sizes=" + " ".join(map(str, sizes))) if ln.startswith("tree_sizes=") else ln for ln in lines]
    return "\n".join(lines)


def _crafted_lightgbm() -> list[tuple[str, Any, str]]:
    return [
        ("child", lambda t: _edit_tree_line(t, 0, "left_child", lambda v: ["40", *v[1:]]), "tree 0's child indices"),
        (
            "leaf",
            lambda t: _edit_tree_line(t, 1, "right_child", lambda v: ["-99", *v[1:]]),
            "point outside its 7 leaves",
        ),
        (
            "feature",
            lambda t: _edit_tree_line(t, 2, "split_feature", lambda v: ["5", *v[1:]]),
            "tree 2's split_feature names a feature outside its 3",
        ),
        (
            "threshold",
            lambda t: _edit_tree_line(t, 0, "threshold", lambda v: ["nan", *v[1:]]),
            "tree 0's threshold holds a value that is not a number (NaN)",
        ),
        (
            "leaf-value",
            lambda t: _edit_tree_line(t, 4, "leaf_value", lambda v: v[:-1]),
            "tree 4's leaf_value has 6 entries, not 7",
        ),
    ]


@pytest.mark.parametrize(("label", "craft", "needle"), _crafted_lightgbm(), ids=[c[0] for c in _crafted_lightgbm()])
def test_a_crafted_lightgbm_file_is_refused_before_lightgbm_reads_it(
    boosters: SimpleNamespace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, label: str, craft: Any, needle: str
) -> None:
    text = _lgb_text(boosters)
    assert "num_leaves=7" in text.split("Tree=4\n")[1].split("\n\n")[0]
    path = tmp_path / f"crafted_{label}.txt"
    path.write_text(_fix_tree_sizes(craft(text)))
    _forbid_library_loading(monkeypatch)
    with pytest.raises(ModelError) as err:
        load_model(path)
    message = str(err.value)
    assert message.startswith(f"crafted_{label}.txt contains a LightGBM booster whose ")
    assert needle in message and message.endswith(", so it is not used.")


def test_lightgbm_header_damage_is_refused_before_lightgbm_reads_it(
    boosters: SimpleNamespace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _forbid_library_loading(monkeypatch)
    text = _lgb_text(boosters, "lgb-multiclass")
    cases = {
        # The tree sizes LightGBM uses to find each tree no longer match the trees.
        "sizes": (_edit_tree_line(text, 0, "leaf_value", lambda v: [*v[:-1], "0.5"]), "tree_sizes do not match"),
        # Header and objective disagree on the classes (the output buffer's width).
        "classes": (text.replace("num_class=3\n", "num_class=1\n", 1), "objective declares 3 classes, its header 1"),
        "truncated": (text[: text.index("end of trees")], 'truncated or damaged LightGBM model file: it has no "end'),
    }
    for label, (crafted, needle) in cases.items():
        path = tmp_path / f"{label}.lgb"
        path.write_text(crafted)
        with pytest.raises(ModelError, match=needle):
            load_model(path)


# -- native importance ------------------------------------------------------------------------------------


def _inputs(frame: pd.DataFrame, model: BoosterModel) -> AuditInputs:
    return AuditInputs(frame=frame, roles=Roles(target=None, features=tuple(frame.columns)), model=model)


@pytest.mark.parametrize("key", ["xgb-multiclass.ubj", "lgb-regression"])
def test_native_importance_is_the_librarys_gain_and_split_share(boosters: SimpleNamespace, key: str) -> None:
    path = boosters.paths[key]
    model = load_model(path)
    assert isinstance(model, BoosterModel)
    frame = boosters.X[["region", "debt", "income"]]  # another order than the booster's
    if key.startswith("xgb"):
        booster = xgb.Booster()
        booster.load_model(path)
        own = {
            kind: np.array([booster.get_score(importance_type=name).get(f, 0.0) for f in ("income", "debt", "region")])
            for kind, name in (("gain", "total_gain"), ("split", "weight"))
        }
    else:
        booster = lgb.Booster(model_file=path)
        own = {kind: booster.feature_importance(importance_type=kind).astype(float) for kind in ("gain", "split")}
    for kind, basis in (("gain", "total gain"), ("split", "split count")):
        result = native.run(_inputs(frame, model), ctx=JobContext(), importance_type=kind)
        expected = own[kind] / own[kind].sum()
        np.testing.assert_allclose(result.importance, expected, rtol=1e-12)
        assert result.feature_names == ("income", "debt", "region")  # the model's order, whatever the data's
        assert result.basis == basis and result.caveat == BOOSTER_CAVEAT
        assert BOOSTER_CAVEAT in result.provenance.warnings
        assert result.provenance.parameters["importance_type"] == kind
        assert result.encoded_to_raw == (("income",), ("debt",), ("region",))
    assert native.refusal(model) is None
    with pytest.raises(AnalysisError, match="choose gain or split"):
        native.run(_inputs(frame, model), ctx=JobContext(), importance_type="cover")


# -- the analyses, the audit and its verification ------------------------------------------------------------


def _explain(capsys: pytest.CaptureFixture[str], out: Path, *argv: str) -> tuple[int, dict[str, Any] | None, str]:
    code = main(["--progress", "none", "explain", *argv, "--out", str(out)])
    err = capsys.readouterr().err
    return code, (json.loads(out.read_text()) if code == 0 else None), err


@pytest.mark.parametrize(("key", "target"), [("xgb-binary.ubj", "target"), ("lgb-multiclass", "level")])
def test_model_agnostic_analyses_run_on_boosters_from_the_cli(
    boosters: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str], key: str, target: str
) -> None:
    base = ["--data", str(boosters.csv), "--model", str(boosters.paths[key]), "--target", target]
    features = ["--features", "income", "--features", "debt", "--features", "region"]
    model = load_model(boosters.paths[key])
    rows = load_table(boosters.csv).frame.iloc[[0, 3]]
    runs = {
        "permutation": ["--param", "n_repeats=2"],
        "lime": ["--rows", "0,3", "--samples", "300", "--param", "stability_runs=2"],
        "kernelshap": ["--rows", "0,3"],
        "pdp": [],
    }
    for method, extra in runs.items():
        code, doc, err = _explain(capsys, tmp_path / f"{method}.json", method, *base, *features, *extra)
        assert code == 0, err
        assert doc is not None and doc["feature_names"] == ["income", "debt", "region"]
        assert doc["provenance"]["model_trust"]["required"] is False
        if method == "kernelshap":
            values = np.asarray(doc["values"])
            assert values.shape == (2, 3)
            predictions = np.asarray(doc["output"]["predictions"])
            np.testing.assert_allclose(values.sum(axis=1) + np.asarray(doc["base_values"]), predictions, atol=1e-8)
            # What KernelSHAP explained is the booster's own probability of the explained class.
            np.testing.assert_allclose(predictions, model.predict(rows)[:, doc["output"]["class_index"]], atol=1e-12)
        elif method == "permutation":
            assert len(doc["result"]["mean"]) == 3 and doc["result"]["mean"][0] > 0  # income matters


def test_an_audit_of_a_lightgbm_model_writes_a_report_that_verifies(
    boosters: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "credit.csv"
    load_table(boosters.csv).frame.assign(group=np.where(np.arange(400) % 3 == 0, "g1", "g2")).to_csv(
        data, index=False, lineterminator="\n"
    )
    out = tmp_path / "audit"
    argv = ["--progress", "none", "audit", "--data", str(data), "--model", str(boosters.paths["lgb-binary"])]
    argv += ["--target", "target", "--features", "income", "--features", "debt", "--features", "region"]
    argv += ["--sensitive", "group", "--out", str(out), "--seed", "3", "--n-repeats", "2", "--lime-samples", "100"]
    argv += ["--cluster-rows", "random:40", "--explain-rows", "0,5"]
    assert main(argv) == 0, capsys.readouterr().err
    assert (out / "report.pdf").stat().st_size > 10_000
    results = json.loads((out / "results.json").read_text())
    assert results["results"]["native"]["basis"] == "total gain"
    capsys.readouterr()
    code = main(
        ["--progress", "none", "verify", str(out / "report.pdf"), "--data", str(data)]
        + ["--model", str(boosters.paths["lgb-binary"])]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "verified" in captured.out


def test_a_lightgbm_split_of_missing_values_from_all_others_loads_and_is_explained(tmp_path: Path) -> None:
    """LightGBM writes threshold=inf where a split sends the missing values one way and every value the other."""
    from engine.explain.treeshap import run as treeshap_run

    rng = np.random.default_rng(0)
    n = 600
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    missing = rng.random(n) < 0.3
    X.loc[missing, "a"] = np.nan
    y = (missing ^ (rng.random(n) < 0.1)).astype(int)
    booster = lgb.train(
        {"objective": "binary", "num_leaves": 4, "verbosity": -1, "seed": 0, "num_threads": 1},
        lgb.Dataset(X, label=y),
        num_boost_round=3,
    )
    path = tmp_path / "missing_split.txt"
    booster.save_model(path)
    assert "threshold=inf" in path.read_text()
    model = load_model(path)
    assert np.allclose(model.predict(X)[:, 1], booster.predict(X), rtol=0, atol=1e-12)
    inputs = AuditInputs(frame=X.assign(y=y), roles=Roles(target="y", features=("a", "b")), model=model)
    result = treeshap_run(inputs, ctx=JobContext(), rows=list(range(40)))
    theirs = booster.predict(X.iloc[:40], pred_contrib=True)
    assert np.allclose(result.values, theirs[:, :-1], rtol=0, atol=1e-9)


@pytest.mark.parametrize("key", ["xgb-binary.json", "lgb-multiclass"])
def test_the_automatic_shap_of_a_booster_is_exact_treeshap_in_its_margin(boosters: SimpleNamespace, key: str) -> None:
    from engine.explain import shap_auto

    model = load_model(boosters.paths[key])
    frame = boosters.X.assign(target=boosters.y["binary"])
    inputs = AuditInputs(frame=frame, roles=Roles(target="target", features=tuple(boosters.X.columns)), model=model)
    choice, reason = shap_auto.choose(inputs)
    assert choice == "treeshap" and reason.endswith("model → exact TreeSHAP in its margin space")
    result = shap_auto.run(inputs, ctx=JobContext(), rows=list(range(10)))
    assert result.method == "treeshap" and result.provenance.parameters["auto_choice"] == "treeshap"
    margin = np.asarray(model.predict_raw_output(boosters.X.iloc[:10]), dtype=float)
    explained = margin if margin.ndim == 1 else margin[:, 0]
    assert np.allclose(result.values.sum(axis=1) + result.base_values, explained, atol=1e-5)

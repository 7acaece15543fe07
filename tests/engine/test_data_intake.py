"""Data intake: every format loads, dialects are detected, bad files give DataError naming the file."""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.ipc as ipc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.data import MISSING_MARKERS, excel, infer_schema, kinds, load_table, sniff
from engine.errors import DataError, RoleError
from engine.schema import ColumnKind, ReadOptions, assign_roles


@pytest.fixture
def small_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": np.array([23, 45, 31, 60, 38], dtype=np.int64),
            "income": [1200.5, 3400.25, np.nan, 5100.0, 2750.75],
            "city": pd.array(["Paris", "Lyon", "Paris", None, "Nice"], dtype="str"),
            "approved": np.array([1, 0, 1, 1, 0], dtype=np.int64),
        }
    )


def _assert_same(frame: pd.DataFrame, expected: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(frame, expected, check_dtype=True)
    assert isinstance(frame.index, pd.RangeIndex)


# ---------------------------------------------------------------------------------------------
# Every format round-trips
# ---------------------------------------------------------------------------------------------


def test_csv_round_trips_a_small_frame(tmp_path: Path, small_frame: pd.DataFrame) -> None:
    path = tmp_path / "table.csv"
    small_frame.to_csv(path, index=False)
    dataset = load_table(path)
    _assert_same(dataset.frame, small_frame)
    assert dataset.format == "csv"
    assert dataset.name == "table.csv"
    assert dataset.n_rows == 5


def test_parquet_round_trips_a_small_frame(tmp_path: Path, small_frame: pd.DataFrame) -> None:
    path = tmp_path / "table.parquet"
    small_frame.to_parquet(path, index=False)
    dataset = load_table(path)
    _assert_same(dataset.frame, small_frame)
    assert dataset.format == "parquet"
    # .pq is the same format under another name.
    alias = tmp_path / "table.pq"
    alias.write_bytes(path.read_bytes())
    _assert_same(load_table(alias).frame, small_frame)


def test_parquet_named_index_becomes_a_column_and_unnamed_index_is_dropped(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0]}, index=pd.Index([10, 20, 30], name="customer"))
    frame.to_parquet(tmp_path / "named.parquet")
    loaded = load_table(tmp_path / "named.parquet").frame
    assert list(loaded.columns) == ["customer", "x"]
    assert loaded["customer"].tolist() == [10, 20, 30]
    frame.rename_axis(None).iloc[1:].to_parquet(tmp_path / "unnamed.parquet")
    loaded = load_table(tmp_path / "unnamed.parquet").frame
    assert list(loaded.columns) == ["x"]
    assert list(loaded.index) == [0, 1]


@pytest.mark.parametrize("suffix", [".feather", ".arrow", ".ipc"])
def test_feather_and_arrow_files_round_trip(tmp_path: Path, small_frame: pd.DataFrame, suffix: str) -> None:
    path = tmp_path / f"table{suffix}"
    small_frame.to_feather(path)
    dataset = load_table(path)
    _assert_same(dataset.frame, small_frame)
    assert dataset.format == "feather"


def test_arrow_ipc_stream_format_round_trips(tmp_path: Path, small_frame: pd.DataFrame) -> None:
    table = pa.Table.from_pandas(small_frame, preserve_index=False)
    path = tmp_path / "stream.arrow"
    with pa.OSFile(str(path), "wb") as sink, ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    _assert_same(load_table(path).frame, small_frame)


@pytest.mark.parametrize("engine_name", ["calamine", "openpyxl"])
def test_xlsx_round_trips_with_both_engines(
    tmp_path: Path, small_frame: pd.DataFrame, engine_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "table.xlsx"
    frame = small_frame.assign(code=["0001234", "0000007", "0100000", "0000001", "0000002"])
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        pd.DataFrame({"z": [1]}).to_excel(writer, sheet_name="notes", index=False)
        frame.to_excel(writer, sheet_name="data", index=False)
    monkeypatch.setattr(excel, "_excel_engine", lambda: engine_name)
    dataset = load_table(path, ReadOptions(sheet="data"))
    _assert_same(dataset.frame, frame)
    assert dataset.format == "xlsx"
    assert dataset.options.sheet == "data"
    assert dataset.options.header_row == 0
    # The first sheet is the default, and the recorded options name it.
    first = load_table(path)
    assert first.options.sheet == "notes"
    assert first.frame["z"].tolist() == [1]


def test_xlsx_without_header_and_unknown_sheet(tmp_path: Path) -> None:
    path = tmp_path / "numbers.xlsx"
    pd.DataFrame([[1.5, 2], [3.5, 4]]).to_excel(path, header=False, index=False)
    dataset = load_table(path)
    assert list(dataset.frame.columns) == ["column_1", "column_2"]
    assert dataset.options.header_row == -1
    assert dataset.frame["column_1"].tolist() == [1.5, 3.5]
    with pytest.raises(DataError) as info:
        load_table(path, ReadOptions(sheet="Results"))
    assert str(info.value) == "The workbook 'numbers.xlsx' has no sheet 'Results' (it has 'Sheet1')."


def test_xlsx_header_is_the_first_filled_row(tmp_path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "Report"
    sheet["B3"], sheet["C3"], sheet["D3"] = "name", "ok", "mixed"
    sheet["B4"], sheet["C4"], sheet["D4"] = "a", True, 1
    sheet["B6"], sheet["C6"], sheet["D6"] = "b", None, "x"
    path = tmp_path / "layout.xlsx"
    book.save(path)
    dataset = load_table(path)
    assert dataset.options.header_row == 2
    assert list(dataset.frame.columns) == ["name", "ok", "mixed"]
    assert dataset.frame["name"].tolist() == ["a", "b"]  # the empty row 5 is dropped
    assert dataset.frame["mixed"].tolist() == ["1", "x"]  # numbers mixed with text are text
    assert dataset.schema["ok"].kind is ColumnKind.BOOLEAN
    pd.testing.assert_frame_equal(load_table(path, dataset.options).frame, dataset.frame)


def test_xlsx_header_only(tmp_path: Path) -> None:
    path = tmp_path / "head.xlsx"
    pd.DataFrame(columns=["a", "b"]).to_excel(path, index=False)
    assert _error(path) == "The data file 'head.xlsx' has a header but no data rows."


# ---------------------------------------------------------------------------------------------
# Dialect detection
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
@pytest.mark.parametrize("suffix", [".csv", ".txt"])
def test_delimiter_is_detected(write_text, delimiter: str, suffix: str) -> None:
    rows = [["id", "name", "score"], ["1", "anna", "3.5"], ["2", "bo", "4.25"], ["3", "cy", "5"]]
    path = write_text(f"t{suffix}", "\n".join(delimiter.join(r) for r in rows) + "\n")
    dataset = load_table(path)
    assert dataset.options.delimiter == delimiter
    assert list(dataset.frame.columns) == ["id", "name", "score"]
    assert dataset.frame["score"].tolist() == [3.5, 4.25, 5.0]
    assert dataset.frame["name"].tolist() == ["anna", "bo", "cy"]


def test_single_column_tsv_defaults_to_tab(write_text) -> None:
    dataset = load_table(write_text("one.tsv", "word\nalpha\nbeta\n"))
    assert dataset.options.delimiter == "\t"
    assert dataset.frame["word"].tolist() == ["alpha", "beta"]


def test_latin1_text_loads_with_accents(write_text) -> None:
    content = "name;city;price\nJosé;Zürich;12,5\nRenée;Köln;7,25\nAnn;£ London;3\n"
    path = write_text("europe.csv", content, encoding="latin-1")
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("utf-8")  # the fixture really is not UTF-8
    dataset = load_table(path)
    assert dataset.options.encoding == "cp1252"
    assert dataset.frame["name"].tolist() == ["José", "Renée", "Ann"]
    assert dataset.frame["city"].tolist() == ["Zürich", "Köln", "£ London"]
    assert dataset.frame["price"].tolist() == [12.5, 7.25, 3.0]


def test_cp1252_byte_beyond_the_sniffed_sample_is_still_decoded(write_text) -> None:
    filler = "".join(f"{i},plain,{i % 97}\n" for i in range(100_000))  # > 1 MiB of ASCII
    # The late byte sits once in a column the sample shows as text, once in one it shows as numbers.
    path = write_text("late.csv", "n,word,m\n" + filler + "100000,café,5\n100001,x,1½\n", encoding="cp1252")
    assert path.stat().st_size > sniff.SAMPLE_BYTES
    dataset = load_table(path)
    assert dataset.options.encoding == "cp1252"
    assert dataset.frame["word"].iloc[-2] == "café"
    assert dataset.frame["m"].iloc[-1] == "1½"
    assert dataset.frame["n"].dtype == np.int64


def test_utf8_with_bom_loads_and_is_recorded_as_utf8(write_text) -> None:
    path = write_text("bom.csv", "\ufeffname,n\nÅsa,1\nÜlle,2\n")
    dataset = load_table(path)
    assert dataset.options.encoding == "utf-8"
    assert list(dataset.frame.columns) == ["name", "n"]
    assert dataset.frame["name"].tolist() == ["Åsa", "Ülle"]


def test_utf16_with_bom_loads(write_text) -> None:
    path = write_text("wide.csv", "name,n\nJosé,1\nŁucja,2\n", encoding="utf-16")
    dataset = load_table(path)
    assert dataset.options.encoding == "utf-16"
    assert dataset.frame["name"].tolist() == ["José", "Łucja"]
    assert dataset.frame["n"].tolist() == [1, 2]


def test_semicolon_decimal_comma_file_gives_floats(write_text) -> None:
    path = write_text("eu.csv", "a;b;c\n1,5;2;x\n-3,25;4;y\n0,125;6;z\n")
    dataset = load_table(path)
    assert dataset.options.delimiter == ";"
    assert dataset.options.decimal == ","
    assert dataset.frame["a"].dtype == np.float64
    assert dataset.frame["a"].tolist() == [1.5, -3.25, 0.125]
    assert dataset.frame["b"].dtype == np.int64


def test_explicit_decimal_comma_with_tabs(write_text) -> None:
    path = write_text("eu.tsv", "a\tb\n1,5\t2\n")
    dataset = load_table(path, ReadOptions(decimal=","))
    assert dataset.frame["a"].tolist() == [1.5]
    # Without the override the tab file still detects the comma decimal.
    assert load_table(path).options.decimal == ","


def test_header_row_override_skips_preamble_lines(write_text) -> None:
    path = write_text("report.csv", "Exported 2024-05-01\nsource: branch, north\nx,y\n1,2\n3,4\n")
    dataset = load_table(path, ReadOptions(header_row=2))
    assert list(dataset.frame.columns) == ["x", "y"]
    assert dataset.frame["x"].tolist() == [1, 3]
    assert dataset.options.header_row == 2


def test_header_row_beyond_the_file_is_a_data_error(write_text) -> None:
    path = write_text("short.csv", "x,y\n1,2\n")
    with pytest.raises(DataError) as info:
        load_table(path, ReadOptions(header_row=5))
    assert str(info.value) == "The data file 'short.csv' has no line 6 to use as the header."


def test_numeric_first_row_means_no_header(write_text) -> None:
    dataset = load_table(write_text("raw.csv", "1,2.5,3\n4,5.5,6\n"))
    assert dataset.options.header_row == -1
    assert list(dataset.frame.columns) == ["column_1", "column_2", "column_3"]
    assert dataset.frame["column_2"].tolist() == [2.5, 5.5]


def test_explicit_no_header_reads_the_first_line_as_data(write_text) -> None:
    dataset = load_table(write_text("h.csv", "a,b\nc,d\n"), ReadOptions(header_row=-1))
    assert list(dataset.frame.columns) == ["column_1", "column_2"]
    assert dataset.frame["column_1"].tolist() == ["a", "c"]


def test_blank_header_cell_from_a_saved_index_gets_a_name(write_text) -> None:
    dataset = load_table(write_text("idx.csv", ",value\n0,x\n1,y\n"))
    assert list(dataset.frame.columns) == ["column_1", "value"]


def test_quoted_fields_keep_delimiters_and_line_breaks(write_text) -> None:
    path = write_text("q.csv", 'text,n\n"a, b",1\n"two\nlines",2\n"say ""hi""",3\n')
    dataset = load_table(path)
    assert dataset.frame["text"].tolist() == ["a, b", "two\nlines", 'say "hi"']
    assert dataset.frame["n"].tolist() == [1, 2, 3]


def test_single_quote_character_is_detected(write_text) -> None:
    dataset = load_table(write_text("sq.csv", "a,b\n'x, y',1\n'z',2\n"))
    assert dataset.options.quotechar == "'"
    assert dataset.frame["a"].tolist() == ["x, y", "z"]


def test_multi_character_delimiter_falls_back_to_pandas(write_text) -> None:
    path = write_text("m.txt", "a::b::c\n1::2.5::x\n3::0.5::y\n")
    dataset = load_table(path, ReadOptions(delimiter="::"))
    assert dataset.frame["a"].tolist() == [1, 3]
    assert dataset.frame["a"].dtype == np.int64
    assert dataset.frame["b"].tolist() == [2.5, 0.5]
    assert dataset.frame["c"].tolist() == ["x", "y"]


# ---------------------------------------------------------------------------------------------
# Missing values and identifiers
# ---------------------------------------------------------------------------------------------


def test_default_missing_markers_are_missing_and_question_mark_is_not(write_text) -> None:
    path = write_text("m.csv", "a,b,c\n1,x,?\nNA,N/A,2\nnull,NaN,3\n,,4\n")
    frame = load_table(path).frame
    assert frame["a"].dtype == np.float64
    assert frame["a"].isna().tolist() == [False, True, True, True]
    assert frame["b"].isna().tolist() == [False, True, True, True]
    assert frame["c"].tolist() == ["?", "2", "3", "4"]  # "?" is a value unless a user says so
    assert {"", "NA", "N/A", "NaN", "null"} <= set(MISSING_MARKERS)


def test_extra_missing_markers_from_options(write_text) -> None:
    path = write_text("m.csv", "a,b\n1,?\n2,-\n3,5\n")
    dataset = load_table(path, ReadOptions(missing_values=("?", "-")))
    assert dataset.frame["b"].dtype == np.float64
    assert dataset.frame["b"].isna().tolist() == [True, True, False]
    assert dataset.options.missing_values == ("?", "-")


def test_zero_padded_ids_keep_their_leading_zeros(write_text) -> None:
    path = write_text("ids.csv", "id,amount\n0001234,10\n0000007,20\n1000000,30\n")
    dataset = load_table(path)
    assert dataset.frame["id"].tolist() == ["0001234", "0000007", "1000000"]
    assert dataset.frame["amount"].dtype == np.int64
    assert dataset.schema["id"].kind is ColumnKind.IDENTIFIER


def test_leading_zero_beyond_the_sniffed_rows_is_kept(write_text) -> None:
    n = sniff._SAMPLE_RECORDS + 500
    codes = [f"{1_000_000 + i}" for i in range(n)] + ["0000042"]
    path = write_text("late_ids.csv", "code,v\n" + "".join(f"{c},{i}\n" for i, c in enumerate(codes)))
    frame = load_table(path).frame
    assert frame["code"].iloc[-1] == "0000042"
    assert frame["code"].iloc[0] == "1000000"


def test_types_contradicted_after_the_sniffed_rows_match_pyarrow_inference(write_text) -> None:
    import pyarrow.csv as pacsv

    n = sniff._SAMPLE_RECORDS + 200
    rows = "".join(f"{i % 7},{i * 0.5},{i},w{i % 3}\n" for i in range(n))
    path = write_text("late_types.csv", "a,b,c,d\n" + rows + "2.5,oops,99999999999999999999,7\n")
    frame = load_table(path).frame
    assert frame["a"].dtype == np.float64 and frame["a"].iloc[-1] == 2.5
    assert frame["b"].iloc[-1] == "oops" and frame["b"].iloc[1] == "0.5"
    assert frame["d"].iloc[-1] == "7"
    expected = pacsv.read_csv(path).to_pandas()
    pd.testing.assert_frame_equal(frame, expected, check_dtype=False)
    assert [str(t) for t in frame.dtypes] == [str(t) for t in expected.dtypes]


def test_fixed_width_integers_without_padding_stay_integers(write_text) -> None:
    path = write_text("years.csv", "year,n\n2019,1\n2020,-2\n2021,3\n,4\n")
    frame = load_table(path).frame
    assert frame["year"].tolist()[:3] == [2019.0, 2020.0, 2021.0]
    assert frame["year"].dtype == np.float64  # missing value -> float, as pandas does
    assert frame["n"].dtype == np.int64


# ---------------------------------------------------------------------------------------------
# Schema kinds
# ---------------------------------------------------------------------------------------------


def test_schema_kinds_on_a_crafted_frame() -> None:
    n = 40
    rng = np.random.default_rng(7)
    words = ["the loan was approved after review", "customer asked for a longer term please"]
    frame = pd.DataFrame(
        {
            "income": rng.normal(3000, 500, n).round(2),
            "all_distinct_ints": rng.permutation(np.arange(1000, 1000 + 7 * n, 7)),
            "customer_id": rng.permutation(n) + 500,
            "row_number": np.arange(n),
            "approved": np.tile([0, 1], n // 2),
            "flag": np.tile([True, False], n // 2),
            "answer": pd.array(np.tile(["Yes", "No"], n // 2), dtype="str"),
            "city": pd.array(rng.choice(["Paris", "Lyon", "Nice"], n), dtype="str"),
            "comment": pd.array([f"{words[i % 2]} number {i}" for i in range(n)], dtype="str"),
            "zip": pd.array([f"{i:05d}" for i in range(n)], dtype="str"),
            "branch": pd.array(np.tile(["001", "002"], n // 2), dtype="str"),
            "token": pd.array([f"AB{i:04d}X" for i in range(n)], dtype="str"),
            "when": pd.date_range("2024-01-01", periods=n, freq="D"),
            "grade": pd.Categorical(np.tile(["a", "b", "c", "d"], n // 4)),
        }
    )
    frame.loc[3, "income"] = np.nan
    frame.loc[[1, 2], "city"] = np.nan
    schema = infer_schema(frame)
    kinds = {c.name: c.kind for c in schema.columns}
    assert kinds == {
        "income": ColumnKind.NUMERIC,
        "all_distinct_ints": ColumnKind.NUMERIC,  # distinct numbers are not ids by themselves
        "customer_id": ColumnKind.IDENTIFIER,
        "row_number": ColumnKind.IDENTIFIER,
        "approved": ColumnKind.BOOLEAN,
        "flag": ColumnKind.BOOLEAN,
        "answer": ColumnKind.BOOLEAN,
        "city": ColumnKind.CATEGORICAL,
        "comment": ColumnKind.TEXT,
        "zip": ColumnKind.IDENTIFIER,
        "branch": ColumnKind.CATEGORICAL,
        "token": ColumnKind.IDENTIFIER,
        "when": ColumnKind.DATETIME,
        "grade": ColumnKind.CATEGORICAL,
    }
    for info in schema.columns:
        assert info.n_missing == int(frame[info.name].isna().sum()), info.name
        assert info.n_distinct == int(frame[info.name].nunique()), info.name
        assert info.dtype == str(frame[info.name].dtype)
    assert schema["income"].n_missing == 1
    assert schema["city"].n_missing == 2
    # Labelling never converts: the 0/1 target is still an integer column.
    assert frame["approved"].dtype == np.int64


def test_integer_valued_float_ids_with_gaps_are_identifiers() -> None:
    ids = np.array([9_000_000_001.0, np.nan, 9_000_500_002.0, 9_700_000_003.0])
    frame = pd.DataFrame({"account_id": ids, "amount": [1.0, np.nan, 3.5, 2.0]})
    schema = infer_schema(frame)
    assert schema["account_id"].kind is ColumnKind.IDENTIFIER
    assert schema["account_id"].n_distinct == 3
    assert schema["amount"].kind is ColumnKind.NUMERIC


def test_small_frames_do_not_call_distinct_strings_identifiers() -> None:
    frame = pd.DataFrame({"colour": pd.array(["red", "green", "blue"], dtype="str"), "n": [1, 2, 3]})
    kinds = {c.name: c.kind for c in infer_schema(frame).columns}
    assert kinds == {"colour": ColumnKind.CATEGORICAL, "n": ColumnKind.NUMERIC}


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.floats(allow_nan=True, allow_infinity=True, width=64),
            st.integers(-50, 50).map(lambda v: v / 8),
            st.sampled_from([0.0, -0.0, 0.1, 0.2, 0.30000000000000004]),
        ),
        min_size=1,
        max_size=300,
    )
)
def test_distinct_counts_match_pandas(values: list[float]) -> None:
    series = pd.Series(values, dtype=np.float64)
    info = infer_schema(series.to_frame("x")).columns[0]
    assert info.n_distinct == series.nunique()
    assert info.n_missing == int(series.isna().sum())


def test_distinct_counts_on_a_large_frame_use_the_threaded_path() -> None:
    rng = np.random.default_rng(3)
    n = 250_000
    frame = pd.DataFrame(
        {
            "dec": rng.normal(0, 100, n).round(3),
            "raw": rng.normal(0, 1, n),
            "big": rng.integers(0, 2**40, n),
            "wide": rng.integers(-(2**30), 2**30, n),
            "wide_dec": rng.normal(0, 1e4, n).round(4),
            "cat": pd.array(rng.choice(["a", "b", "c"], n), dtype="str"),
            "cnt": rng.integers(0, 50, n),
            "f": rng.normal(0, 1, n).round(1),
            "g": rng.normal(0, 1, n).round(1),
            "h": rng.normal(0, 1, n).round(1),
        }
    )
    assert frame.size >= kinds._PARALLEL_CELLS
    schema = infer_schema(frame)
    assert [c.n_distinct for c in schema.columns] == [int(frame[c].nunique()) for c in frame.columns]


# ---------------------------------------------------------------------------------------------
# Identity and reproducibility
# ---------------------------------------------------------------------------------------------


def test_sha256_equals_hashlib_of_the_bytes(write_text) -> None:
    path = write_text("h.csv", "a,b\n1,2\n3,4\n")
    assert load_table(path).sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("name", "content", "encoding"),
    [
        ("eu.csv", "a;b;c\n1,5;x;0007\n2,5;y;0012\n", "utf-8"),
        ("latin.txt", "nom\tville\nJosé\tGenève\nLéa\tBâle\n", "latin-1"),
        ("raw.csv", "1|2.5\n3|4.5\n", "utf-8"),
        ("pre.csv", "title\n\nx,y\n1,2\n", "utf-8"),
    ],
)
def test_reloading_with_recorded_options_gives_an_equal_frame(
    write_text, name: str, content: str, encoding: str
) -> None:
    path = write_text(name, content, encoding=encoding)
    options = ReadOptions(header_row=2) if name == "pre.csv" else None
    first = load_table(path, options)
    again = load_table(path, first.options)
    pd.testing.assert_frame_equal(again.frame, first.frame)
    assert again.options == first.options
    # The recorded options survive a JSON-style round trip.
    assert ReadOptions.from_dict(first.options.to_dict()) == first.options
    assert None not in (first.options.delimiter, first.options.encoding, first.options.decimal)


def test_progress_is_reported_from_zero_to_one(write_text) -> None:
    calls: list[tuple[float, str]] = []
    load_table(write_text("p.csv", "a\n1\n"), progress=lambda f, m: calls.append((f, m)))
    fractions = [f for f, _ in calls]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0
    assert fractions == sorted(fractions)
    assert all("p.csv" in m for _, m in calls)


# ---------------------------------------------------------------------------------------------
# Bad input -> DataError naming the file
# ---------------------------------------------------------------------------------------------


def _error(path: Path, options: ReadOptions | None = None) -> str:
    with pytest.raises(DataError) as info:
        load_table(path, options)
    message = str(info.value)
    assert path.name in message
    assert message[0].isupper() and message.endswith(".")
    assert info.value.path == path
    return message


def test_missing_file(tmp_path: Path) -> None:
    assert _error(tmp_path / "nope.csv") == "The data file 'nope.csv' does not exist."


def test_directory(tmp_path: Path) -> None:
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    assert _error(folder) == "The path 'folder.csv' is a folder, not a data file."


def test_unreadable_file(write_text) -> None:
    path = write_text("secret.csv", "a\n1\n")
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("running as root: chmod cannot take away read permission")
        assert _error(path) == "The data file 'secret.csv' cannot be read: permission denied."
    finally:
        path.chmod(0o644)


def test_unreadable_file_when_running_as_root(write_text, monkeypatch: pytest.MonkeyPatch) -> None:
    # Root ignores file modes, so simulate the refusal where the permission is asked.
    path = write_text("locked.csv", "a\n1\n")
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == path else real_access(p, mode))
    assert _error(path) == "The data file 'locked.csv' cannot be read: permission denied."


def test_empty_file(write_text) -> None:
    assert _error(write_text("empty.csv", b"")) == "The data file 'empty.csv' is empty."


def test_whitespace_only_file(write_text) -> None:
    message = _error(write_text("blank.csv", " \n\t\n  \n"))
    assert message == "The data file 'blank.csv' is empty (it contains only whitespace)."


def test_header_only(write_text) -> None:
    assert _error(write_text("head.csv", "a,b,c\n")) == "The data file 'head.csv' has a header but no data rows."


def test_parquet_without_rows(tmp_path: Path) -> None:
    path = tmp_path / "none.parquet"
    pd.DataFrame({"a": pd.Series([], dtype=np.float64)}).to_parquet(path)
    assert _error(path) == "The data file 'none.parquet' has no data rows."


def test_png_renamed_csv(write_text) -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00"
    message = _error(write_text("chart.csv", png))
    assert message == "The data file 'chart.csv' is not a text table: it looks like a PNG image."


def test_nul_bytes(write_text) -> None:
    message = _error(write_text("blob.txt", b"a,b\n1,2\x00\x00\x013\n"))
    assert message == "The data file 'blob.txt' is not a text table: it contains binary data."


def test_control_characters_mean_binary_but_a_signature_alone_does_not(write_text) -> None:
    noise = bytes(range(1, 32)) * 40
    message = _error(write_text("noise.csv", b"a,b\n" + noise + b"\n"))
    assert message == "The data file 'noise.csv' is not a text table: it contains binary data."
    # A header that happens to start like a Parquet or Windows file is still text.
    dataset = load_table(write_text("magic.csv", "PAR1,MZ\n1,2\n"))
    assert list(dataset.frame.columns) == ["PAR1", "MZ"]


def test_ragged_rows_name_the_line_and_field_counts(write_text) -> None:
    path = write_text("ragged.csv", "a,b,c\n1,2,3\n4,5,6\n7,8\n9,10,11\n")
    assert _error(path) == "Line 4 of the data file 'ragged.csv' has 2 fields, but the header has 3."


def test_ragged_rows_without_header_and_after_quoted_line_breaks(write_text) -> None:
    path = write_text("r.csv", '1,2,3\n4,"5\n5",6\n7,8,9,10\n')
    assert _error(path) == "Line 4 of the data file 'r.csv' has 4 fields, but line 1 has 3."


def test_duplicate_column_names(write_text) -> None:
    message = _error(write_text("dupes.csv", "a,b,a,c,b\n1,2,3,4,5\n"))
    assert message == "The data file 'dupes.csv' has duplicate column names: 'a', 'b'."


def test_duplicate_column_names_in_excel(tmp_path: Path) -> None:
    path = tmp_path / "dupes.xlsx"
    pd.DataFrame([["x", "x"], [1, 2]]).to_excel(path, header=False, index=False)
    assert _error(path) == "The data file 'dupes.xlsx' has duplicate column names: 'x'."


def test_truncated_parquet(tmp_path: Path, small_frame: pd.DataFrame) -> None:
    path = tmp_path / "cut.parquet"
    small_frame.to_parquet(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert _error(path) == "The Parquet file 'cut.parquet' is truncated or corrupt."


def test_corrupt_parquet_footer(tmp_path: Path, small_frame: pd.DataFrame) -> None:
    path = tmp_path / "bad.parquet"
    small_frame.to_parquet(path)
    raw = bytearray(path.read_bytes())
    raw[-40:-8] = b"\xff" * 32  # scramble the footer metadata, keep the magic bytes
    path.write_bytes(bytes(raw))
    assert _error(path).startswith("The Parquet file 'bad.parquet' is truncated or corrupt")


def test_text_renamed_parquet(write_text) -> None:
    assert _error(write_text("t.parquet", "a,b\n1,2\n")) == "The data file 't.parquet' is not a Parquet file."


def test_corrupt_feather(tmp_path: Path, small_frame: pd.DataFrame) -> None:
    path = tmp_path / "bad.feather"
    small_frame.to_feather(path)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    assert _error(path) == "The Feather file 'bad.feather' is truncated or corrupt."
    path.write_bytes(raw[:8] + b"\x00" * (len(raw) - 16) + raw[-8:])
    assert _error(path).startswith("The Feather file 'bad.feather' is truncated or corrupt")
    path.write_bytes(b"hello world, not arrow")
    assert _error(path) == "The data file 'bad.feather' is not a Feather/Arrow file."


def test_corrupt_xlsx(tmp_path: Path) -> None:
    path = tmp_path / "bad.xlsx"
    path.write_bytes(b"PK\x03\x04" + b"\x00garbage" * 20)
    assert _error(path).startswith("The workbook 'bad.xlsx' is corrupt or not an .xlsx file")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "not a workbook")
    path.write_bytes(buffer.getvalue())
    assert _error(path).startswith("The workbook 'bad.xlsx' is corrupt or not an .xlsx file")
    path.write_bytes(b"a,b\n1,2\n")
    assert _error(path) == "The data file 'bad.xlsx' is not an Excel .xlsx workbook."


def test_unsupported_extension(write_text) -> None:
    message = _error(write_text("data.json", '{"a": 1}'))
    assert message.startswith("The data file 'data.json' has extension '.json', which is not a supported format")


def test_invalid_options_are_data_errors(write_text) -> None:
    path = write_text("o.csv", "a,b\n1,2\n")
    assert _error(path, ReadOptions(encoding="klingon")) == "The encoding 'klingon' given for 'o.csv' is unknown."
    assert _error(path, ReadOptions(decimal=";")) == "The decimal mark ';' given for 'o.csv' must be '.' or ','."


def test_wrong_explicit_encoding_is_a_data_error(write_text) -> None:
    path = write_text("w.csv", "name\nJosé\n", encoding="latin-1")
    message = _error(path, ReadOptions(encoding="utf-8"))
    assert message == "The data file 'w.csv' is not valid utf-8 text; choose another encoding."


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(min_size=1, max_size=400), st.sampled_from([".csv", ".parquet", ".feather", ".xlsx"]))
def test_arbitrary_bytes_load_or_raise_data_error(tmp_path: Path, content: bytes, suffix: str) -> None:
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(content)
    try:
        dataset = load_table(path)
    except DataError as exc:
        assert "fuzz" in str(exc)
    else:
        assert len(dataset.frame) > 0 and len(dataset.schema.columns) == dataset.frame.shape[1]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=list(",;\t|\"'\n\r 0a.-é?NA"), min_size=1, max_size=80), st.sampled_from([".csv", ".tsv"]))
def test_arbitrary_delimited_text_loads_or_raises_data_error(tmp_path: Path, content: str, suffix: str) -> None:
    path = tmp_path / f"fuzz{suffix}"
    path.write_text(content, encoding="utf-8", newline="")
    try:
        dataset = load_table(path)
    except DataError as exc:
        assert "fuzz" in str(exc)
    else:
        assert len(dataset.frame) > 0
        again = load_table(path, dataset.options)
        pd.testing.assert_frame_equal(again.frame, dataset.frame)


# ---------------------------------------------------------------------------------------------
# Roles on loaded data
# ---------------------------------------------------------------------------------------------


def test_unknown_target_column_is_a_role_error(write_text) -> None:
    dataset = load_table(write_text("roles.csv", "x,y\n1,0\n2,1\n"))
    with pytest.raises(RoleError) as info:
        assign_roles(dataset, target="label")
    assert str(info.value) == "roles.csv has no target column 'label'."


def test_entirely_missing_target_is_a_role_error(write_text) -> None:
    dataset = load_table(write_text("roles.csv", "x,y\n1,NA\n2,\n"))
    with pytest.raises(RoleError) as info:
        assign_roles(dataset, target="y")
    assert str(info.value) == "The target column 'y' in roles.csv is entirely missing."


def test_identifier_columns_are_left_out_of_default_features(write_text) -> None:
    dataset = load_table(write_text("ids.csv", "customer_id,age,approved\n0001,30,1\n0002,40,0\n0003,50,1\n"))
    roles = assign_roles(dataset, target="approved")
    assert roles.features == ("age",)


# ---------------------------------------------------------------------------------------------
# Property: numeric frames round-trip through CSV with any delimiter
# ---------------------------------------------------------------------------------------------

_finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n_rows=st.integers(1, 12),
    n_cols=st.integers(1, 5),
    delimiter=st.sampled_from([",", ";", "\t", "|"]),
    data=st.data(),
)
def test_numeric_frames_round_trip_through_csv(
    tmp_path: Path, n_rows: int, n_cols: int, delimiter: str, data: st.DataObject
) -> None:
    columns = {}
    for j in range(n_cols):
        if data.draw(st.booleans(), label=f"int column {j}"):
            values = data.draw(st.lists(st.integers(-(10**12), 10**12), min_size=n_rows, max_size=n_rows))
            columns[f"c{j}"] = np.array(values, dtype=np.int64)
        else:
            values = data.draw(st.lists(st.one_of(_finite, st.just(np.nan)), min_size=n_rows, max_size=n_rows))
            columns[f"c{j}"] = np.array(values, dtype=np.float64)
    frame = pd.DataFrame(columns)
    path = tmp_path / "prop.csv"
    frame.to_csv(path, sep=delimiter, index=False)
    dataset = load_table(path)
    expected = frame.copy()
    for name in expected.columns:
        if expected[name].isna().all():
            expected[name] = expected[name].astype(np.float64)
    pd.testing.assert_frame_equal(dataset.frame, expected, check_exact=True)

"""Names too long to print are shortened by one stated rule, and the report is still written and verifies."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.cli import main
from engine.report.names import LONG_NAME, RULE, short_name, shorten_in, shortening, verbatim
from tests.engine.test_report_truth import _pdf_text


def test_the_rule_keeps_short_names_and_tags_long_ones_with_their_hash() -> None:
    assert short_name("income") == "income"
    assert short_name("a" * LONG_NAME) == "a" * LONG_NAME
    name = "income_" + "x" * 2500 + "_2024"
    short = short_name(name)
    tag = hashlib.sha256(name.encode()).hexdigest()[:6]
    assert short == f"{name[:28]}…{name[-10:]} [{tag}]"
    # Same beginning and end, different middle: the tag keeps them apart.
    other = "income_" + "x" * 1200 + "y" + "x" * 1299 + "_2024"
    assert short_name(other) != short and short_name(other)[:-9] == short[:-9]


def test_shortening_applies_inside_its_block_except_verbatim_text() -> None:
    long = "c" * 60
    assert shorten_in(f"uses {long}") == f"uses {long}"  # no report being built
    with shortening([long, "short"]):
        assert shorten_in(f"uses {long} and short") == f"uses {short_name(long)} and short"
        with verbatim():
            assert shorten_in(f"--target {long}") == f"--target {long}"


@pytest.fixture(scope="module")
def long_name_audit(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    folder = tmp_path_factory.mktemp("long")
    rng = np.random.default_rng(0)
    long = "income_" + "x" * 2500
    frame = pd.DataFrame({long: rng.normal(size=240), "age": rng.normal(size=240), "grp": rng.choice(["a", "b"], 240)})
    frame["y"] = (frame[long] + frame["age"] > 0).astype(int)
    frame.to_csv(folder / "long.csv", index=False)
    sio.dump(LogisticRegression().fit(frame[[long, "age"]], frame["y"]), folder / "long.skops")
    code = main(
        [
            "--progress",
            "none",
            "audit",
            "--data",
            str(folder / "long.csv"),
            "--model",
            str(folder / "long.skops"),
            "--target",
            "y",
            "--sensitive",
            "grp",
            "--out",
            str(folder / "o"),
            "--n-repeats",
            "2",
        ]
    )
    assert code == 0
    return folder, long


def test_a_2500_character_column_name_gives_a_report_that_states_the_rule(long_name_audit) -> None:
    folder, long = long_name_audit
    text = _pdf_text(folder / "o" / "report.pdf")
    flat = " ".join(text.split())
    assert short_name(long) in flat
    assert " ".join(RULE.split()) in flat
    # The report never prints the name whole outside the command (which wraps it over many lines).
    assert "x" * 200 not in text.replace("\n", "")[: text.find("probity audit")]
    # results.json keeps the full name.
    document = json.loads((folder / "o" / "results.json").read_text(encoding="utf-8"))
    assert long in document["model"]["input_columns"]


def test_the_report_of_a_long_name_verifies(long_name_audit, capsys: pytest.CaptureFixture[str]) -> None:
    folder, _ = long_name_audit
    code = main(
        [
            "--progress",
            "none",
            "verify",
            str(folder / "o"),
            "--data",
            str(folder / "long.csv"),
            "--model",
            str(folder / "long.skops"),
        ]
    )
    assert code == 0, capsys.readouterr().err

"""`probity` and names Probity has not reviewed: refused (exit 3) until --allow-unreviewed, which is recorded."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.cli import main
from tests.engine.test_report_truth import _pdf_text

FRACTION = "fractions.Fraction"
LOGISTIC = "sklearn.linear_model._logistic.LogisticRegression"


def _run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main(["--progress", "none", *[str(a) for a in argv]])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def unreviewed_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A CSV and a fitted LogisticRegression pickle carrying a harmless but unreviewed ``Fraction`` attribute."""
    from sklearn.linear_model import LogisticRegression

    folder = tmp_path_factory.mktemp("unreviewed")
    rng = np.random.default_rng(5)
    frame = pd.DataFrame(rng.normal(size=(160, 3)), columns=["a", "b", "c"])
    frame["y"] = (frame["a"] + 0.5 * frame["b"] > 0).astype(int)
    model = LogisticRegression().fit(frame[["a", "b", "c"]], frame["y"])
    model.note_ = Fraction(1, 3)
    data = folder / "table.csv"
    frame.to_csv(data, index=False)
    path = folder / "fraction model.pkl"
    path.write_bytes(pickle.dumps(model, protocol=5))
    return data, path


def _audit_args(data: Path, model: Path, out: Path, *extra: str) -> list[str | Path]:
    return ["audit", "--data", data, "--model", model, "--target", "y", "--out", out, "--n-repeats", "2", *extra]


def test_trusted_file_with_unreviewed_names_exits_3_naming_them(unreviewed_model, tmp_path: Path, capsys) -> None:
    data, model = unreviewed_model
    code, _, err = _run(capsys, *_audit_args(data, model, tmp_path / "o", "--trust-model", _sha(model)))
    assert code == 3
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"probity: {model.name} is trusted but names {FRACTION}, which Probity has not reviewed;")
    assert err.rstrip().endswith("add --allow-unreviewed.")
    assert not (tmp_path / "o" / "results.json").exists()


def test_untrusted_file_with_unreviewed_names_asks_for_both(unreviewed_model, tmp_path: Path, capsys) -> None:
    data, model = unreviewed_model
    code, _, err = _run(capsys, *_audit_args(data, model, tmp_path / "o"))
    assert code == 3
    assert f"--trust-model {_sha(model)} --allow-unreviewed" in err
    # The acknowledgement alone is not trust.
    code, _, err = _run(capsys, *_audit_args(data, model, tmp_path / "o", "--allow-unreviewed"))
    assert code == 3 and "--trust-model" in err
    assert not (tmp_path / "o" / "results.json").exists()


def test_allow_unreviewed_loads_it_and_provenance_records_it(unreviewed_model, tmp_path: Path, capsys) -> None:
    data, model = unreviewed_model
    out = tmp_path / "audit"
    code, _, err = _run(
        capsys,
        *_audit_args(data, model, out, "--trust-model", _sha(model), "--allow-unreviewed", "--sections", "model"),
    )
    assert code == 0, err
    prov = json.loads((out / "results.json").read_text(encoding="utf-8"))["provenance"]
    trust = prov["model_trust"]
    assert trust["allow_unreviewed"] is True
    assert trust["unreviewed"] == [FRACTION]
    assert trust["sha256"] == _sha(model) and LOGISTIC in trust["imports"]
    assert "--allow-unreviewed" in prov["command"]
    text = _pdf_text(out / "report.pdf")
    assert f"Unreviewed names acknowledged {FRACTION}" in text
    assert "1 of them is not on Probity's reviewed list (fractions.Fraction); the auditor acknowledged it" in text


def test_a_reviewed_model_records_no_acknowledgement(demo_paths, tmp_path: Path, capsys) -> None:
    """The flag acknowledges names only when there are some: the demo needs none and records none."""
    out = tmp_path / "audit"
    code, _, err = _run(
        capsys,
        "audit",
        "--data",
        demo_paths.data,
        "--model",
        demo_paths.model,
        "--target",
        "approved",
        "--out",
        out,
        "--n-repeats",
        "2",
        "--allow-unreviewed",
        "--no-report",
    )
    assert code == 0, err
    trust = json.loads((out / "results.json").read_text(encoding="utf-8"))["provenance"]["model_trust"]
    assert trust["allow_unreviewed"] is False and trust["unreviewed"] == []


def test_explain_takes_allow_unreviewed(unreviewed_model, tmp_path: Path, capsys) -> None:
    data, model = unreviewed_model
    base = [
        "explain",
        "permutation",
        "--data",
        data,
        "--model",
        model,
        "--target",
        "y",
        "--samples",
        "2",
        "--trust-model",
        _sha(model),
        "--out",
        tmp_path / "perm.json",
    ]
    code, _, err = _run(capsys, *base)
    assert code == 3 and "add --allow-unreviewed" in err and FRACTION in err
    assert not (tmp_path / "perm.json").exists()
    code, _, err = _run(capsys, *base, "--allow-unreviewed")
    assert code == 0, err
    assert json.loads((tmp_path / "perm.json").read_text(encoding="utf-8"))


class _Shell:
    def __reduce__(self):
        return (os.system, ("true",))


def _line_of(out: str, name: str) -> str:
    """The one line of an inspect-model listing that rates ``name`` (an indented line naming it as a word)."""
    lines = [line for line in out.splitlines() if line.startswith("  ") and name in line.split()]
    assert len(lines) == 1, (name, lines)
    return lines[0]


def test_inspect_model_states_each_names_status(unreviewed_model, tmp_path: Path, capsys) -> None:
    _, model = unreviewed_model
    code, out, _ = _run(capsys, "inspect-model", model)
    assert code == 0
    assert _line_of(out, FRACTION).split()[0] == "unreviewed"
    for name in (LOGISTIC, "numpy.ndarray", "numpy.dtype"):
        line = _line_of(out, name)
        assert line.split()[0] == "reviewed"
        assert "unreviewed" not in line and "can run" not in line and "dangerous" not in line
    assert f"--trust-model {_sha(model)} --allow-unreviewed" in out

    bad = tmp_path / "shell.pkl"
    bad.write_bytes(pickle.dumps({"model": _Shell(), "note": Fraction(1, 2)}))
    code, out, _ = _run(capsys, "inspect-model", bad)
    assert code == 0
    system = next(token for token in out.split() if token.endswith(".system"))
    assert "can run commands or code" in _line_of(out, system)
    assert _line_of(out, system).split()[0] == "dangerous"
    assert "unreviewed" in _line_of(out, FRACTION)
    assert "refused" in out and "--allow-unreviewed" not in out


def test_dangerous_file_is_refused_even_with_allow_unreviewed(unreviewed_model, tmp_path: Path, capsys) -> None:
    data, _ = unreviewed_model
    marker = tmp_path / "ran"
    bad = tmp_path / "bad.pkl"

    class _Touch:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    bad.write_bytes(pickle.dumps(_Touch()))
    code, _, err = _run(
        capsys, *_audit_args(data, bad, tmp_path / "o", "--trust-model", _sha(bad), "--allow-unreviewed")
    )
    assert code == 3 and "never loads such a file" in err
    assert not marker.exists()


def test_verify_needs_the_same_acknowledgement_as_the_audit(unreviewed_model, tmp_path: Path, capsys) -> None:
    data, model = unreviewed_model
    out = tmp_path / "audit"
    trust = ("--trust-model", _sha(model))
    code, _, err = _run(capsys, *_audit_args(data, model, out, *trust, "--allow-unreviewed", "--sections", "model"))
    assert code == 0, err
    verify = ["verify", out, "--data", data, "--model", model, *trust]  # the folder stands for its report.pdf
    code, _, err = _run(capsys, *verify)
    assert code == 3 and "add --allow-unreviewed" in err
    code, printed, err = _run(capsys, *verify, "--allow-unreviewed")
    assert code == 0, err
    assert printed.startswith("verified:")

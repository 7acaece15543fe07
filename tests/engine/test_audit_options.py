"""The audit's own settings exist once (engine.audit_options): request, record, CLI and the GUI's command agree."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from engine.audit import AUDIT_ANALYSES, AuditRequest
from engine.audit_options import AUDIT_OPTIONS
from engine.cli import build_parser
from engine.errors import ProbityError

CHANGED = {
    "n_repeats": 7,
    "scoring": "balanced_accuracy",
    "explain_rows": "0-3",
    "lime_samples": 321,
    "cluster_rows": "first:40",
    "dependence_features": 2,
    "favourable": "1",
    "reference": "group=A",
    "threshold": 0.4,
    "device": "cpu",
}


def _request(**options) -> AuditRequest:
    # Every analysis, so that the options recorded only with theirs (the fairness settings) are recorded.
    return AuditRequest(
        data=Path("credit.csv"), model=Path("m.skops"), target="approved", analyses=AUDIT_ANALYSES, **options
    )


def test_every_field_of_the_request_that_is_an_option_is_in_the_table() -> None:
    fields = {f.name for f in dataclasses.fields(AuditRequest)}
    assert {o.field for o in AUDIT_OPTIONS} <= fields
    assert set(CHANGED) == {o.field for o in AUDIT_OPTIONS}  # a new option needs a value in this test


def test_the_record_reads_back_to_the_same_options() -> None:
    request = _request(**CHANGED)
    document = {"provenance": {"parameters": request.parameters(), "started_at": "2026-12-06T00:00:00+00:00"}}
    again = AuditRequest.from_document(document, data=request.data, model=request.model)
    assert again.options() == request.options() == CHANGED
    defaults = _request()
    document = {"provenance": {"parameters": defaults.parameters()}}
    assert AuditRequest.from_document(document, data=Path("d"), model=Path("m")).options() == defaults.options()


def test_the_cli_takes_every_option_and_gives_the_same_request(tmp_path: Path) -> None:
    argv = ["audit", "--data", "credit.csv", "--model", "m.skops", "--target", "approved"]
    for option in AUDIT_OPTIONS:
        argv += [option.flag, str(CHANGED[option.field])]
    args = build_parser().parse_args(argv)
    assert {o.field: getattr(args, o.field) for o in AUDIT_OPTIONS} == CHANGED
    plain = build_parser().parse_args(argv[:7])
    assert {o.field: getattr(plain, o.field) for o in AUDIT_OPTIONS} == {o.field: o.default for o in AUDIT_OPTIONS}


def test_the_guis_recorded_command_spells_every_option_and_parses_back(tmp_path: Path) -> None:
    from gui.dialogs.export_report import audit_command

    request = _request(**CHANGED)
    command = audit_command(request, tmp_path / "out")
    args = build_parser().parse_args(command[1:])
    assert {o.field: getattr(args, o.field) for o in AUDIT_OPTIONS} == CHANGED
    # Left to the methods' defaults, the command records the numbers they stand for.
    resolved = _request().resolved()
    args = build_parser().parse_args(audit_command(_request(), tmp_path / "out")[1:])
    assert {o.field: getattr(args, o.field) for o in AUDIT_OPTIONS} == resolved.options()


@pytest.mark.parametrize(("flag", "value", "needle"), [("--n-repeats", "1", "at least 2 to estimate a spread")])
def test_a_value_under_the_minimum_is_one_sentence(flag: str, value: str, needle: str) -> None:
    option = next(o for o in AUDIT_OPTIONS if o.flag == flag)
    with pytest.raises(ProbityError, match=needle):
        option.check(option.type(value))


def test_the_fairness_settings_are_recorded_only_when_the_audit_runs_fairness() -> None:
    recorded = _request(**CHANGED).parameters()
    assert recorded["fairness"] == {"favourable": "1", "reference": "group=A", "threshold": 0.4}
    # An audit recorded before the fairness analysis existed did not run it: its record stays as it was.
    older = AuditRequest(
        data=Path("d.csv"), model=Path("m.skops"), target="approved", analyses=("performance", "permutation")
    )
    assert "fairness" not in older.parameters()
    document = {"provenance": {"parameters": older.parameters()}}
    assert AuditRequest.from_document(document, data=Path("d"), model=Path("m")).parameters() == older.parameters()


def test_text_from_the_apps_fields_is_recorded_as_the_number_the_flag_gives() -> None:
    assert _request(threshold="0.4").parameters() == _request(threshold=0.4).parameters()


def test_reference_may_be_given_once_per_attribute_and_is_kept_as_one_text() -> None:
    argv = ["audit", "--data", "d.csv", "--model", "m.skops", "--target", "y"]
    args = build_parser().parse_args([*argv, "--reference", "sex=F", "--reference", "race=(41, 52]"])
    assert args.reference == "sex=F; race=(41, 52]"
    from engine.explain.fairness import parse_reference

    assert parse_reference(args.reference) == [("sex", "F"), ("race", "(41, 52]")]


@pytest.mark.parametrize("value", ["0", "1", "1.5", "-0.2", "often"])
def test_a_threshold_outside_0_1_is_one_sentence(value: str) -> None:
    option = next(o for o in AUDIT_OPTIONS if o.flag == "--threshold")
    with pytest.raises(ProbityError) as caught:
        option.check(value)
    shown = repr(value) if value == "often" else value
    assert (
        str(caught.value)
        == f"--threshold must be {'a number ' if value == 'often' else ''}strictly between 0 and 1, got {shown}."
    )
    option.check("0.3")

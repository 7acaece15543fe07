"""The command line and the audit read the method descriptors: no method missing, no default of their own.

The GUI's side of the same promise is tests/gui/test_descriptor_front_ends.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.audit import AUDIT_METHODS, AuditRequest
from engine.cli import _explain_params, build_parser, main
from engine.errors import ProbityError
from engine.registry import METHODS, get_method

# Registered methods the audit's fixed plan does not run, and why.  A new method must be added to the
# plan or here, with its reason.
NOT_IN_THE_AUDIT = {
    "treeshap": "the audit's SHAP is the automatic choice, which runs TreeSHAP for tree models",
    "linearshap": "the automatic SHAP runs it for linear models",
    "kernelshap": "the automatic SHAP runs it for any other model",
    "saliency": "the audit's gradient method is Integrated Gradients (its completeness is checked); the app's "
    "session report carries the others",
    "input_x_gradient": "a gradient method (see saliency)",
    "smoothgrad": "a gradient method (see saliency)",
    "pdp": "the audit runs it as 'dependence', on the features its permutation ranking puts first",
}


def test_probity_explain_takes_every_registered_method(capsys) -> None:
    parser = build_parser()
    for name in METHODS:
        args = parser.parse_args(["explain", name, "--data", "d.csv", "--model", "m.skops", "--target", "y"])
        assert args.method == name
    assert main(["explain", "nonsense", "--data", "d.csv", "--model", "m.skops", "--target", "y"]) == 2
    err = capsys.readouterr().err
    assert "Unknown analysis 'nonsense'; choose one of" in err and all(name in err for name in METHODS)


def test_the_audit_runs_every_method_except_the_stated_ones() -> None:
    assert set(AUDIT_METHODS.values()) <= set(METHODS)
    assert set(METHODS) - set(AUDIT_METHODS.values()) == set(NOT_IN_THE_AUDIT)


def test_the_audit_takes_its_defaults_from_the_descriptors() -> None:
    request = AuditRequest(data=Path("d.csv"), model=Path("m.skops"), target="y").resolved()
    assert request.lime_samples == get_method("lime").defaults["num_samples"]
    assert request.n_repeats == get_method("permutation").defaults["n_repeats"]
    assert request.dependence_features == get_method("dependence").defaults["top"]
    recorded = AuditRequest(data=Path("d.csv"), model=Path("m.skops"), target="y").parameters()
    assert recorded["lime"] == {"num_samples": get_method("lime").defaults["num_samples"]}
    assert recorded["permutation"]["n_repeats"] == get_method("permutation").defaults["n_repeats"]
    # A report recorded with other numbers is re-run with those numbers.
    again = AuditRequest.from_document(
        {"provenance": {"parameters": {**recorded, "lime": {"num_samples": 2000}}}},
        data=Path("d.csv"),
        model=Path("m.skops"),
    )
    assert again.lime_samples == 2000


def test_probity_audit_help_states_the_descriptors_defaults(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["audit", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"(default {get_method('lime').defaults['num_samples']}, LIME's own)" in text
    assert f"(default {get_method('permutation').defaults['n_repeats']}, permutation importance's own)" in text


def test_probity_methods_lists_every_parameter_with_its_default(capsys) -> None:
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    for method in METHODS.values():
        assert f"{method.name} — {method.title}" in out
        if method.takes_rows:
            assert f"default {method.rows_default})" in out
        for param in method.params:
            if not param.provided:
                assert f"      {param.name} = {param.default_text()}" in out, (method.name, param.name)


def test_probity_explain_method_help_shows_that_methods_parameters(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["explain", "lime", "--help"])
    out = capsys.readouterr().out
    assert "lime — LIME (local surrogates)" in out and "num_samples = 5000 (--samples)" in out
    assert "explains chosen rows (--rows, default first:10)" in out
    assert "surrogate — " not in out  # only the method asked about is detailed


def _args(*extra: str):
    return build_parser().parse_args(["explain", *extra, "--data", "d.csv", "--model", "m.skops", "--target", "y"])


@pytest.mark.parametrize("name", sorted(METHODS))
def test_samples_sets_the_parameter_the_descriptor_names_and_is_refused_elsewhere(name: str) -> None:
    method = get_method(name)
    if method.samples is None:
        with pytest.raises(ProbityError, match=f"--samples does not apply to {name}"):
            _explain_params(_args(name, "--samples", "20"), method)
    else:
        params, _ = _explain_params(_args(name, "--samples", "20"), method)
        assert params == {method.samples: 20}


def test_param_values_are_read_and_checked_by_their_spec_before_anything_loads(capsys) -> None:
    params, _ = _explain_params(
        _args("pdp", "--param", "features=age,income", "--param", "percentiles=0.1,0.9", "--param", "ice_rows=null"),
        get_method("pdp"),
    )
    assert params == {"features": ["age", "income"], "percentiles": [0.1, 0.9], "ice_rows": None}
    code = main(
        ["explain", "lime", "--data", "missing.csv", "--model", "m.skops", "--target", "y", "--param", "num_samples=1"]
    )
    assert code == 2
    assert capsys.readouterr().err.strip() == (
        "probity: LIME's parameter num_samples must be a whole number of at least 2, not 1."
    )
    code = main(["explain", "lime", "--data", "d.csv", "--model", "m.skops", "--target", "y", "--param", "rows=[1]"])
    assert code == 2 and "given by --rows, not --param" in capsys.readouterr().err
    _, base = _explain_params(_args("clusters", "--class", "1"), get_method("clusters"))
    assert base == {"klass": "1"}  # clusters take no class: the SHAP values they cluster do

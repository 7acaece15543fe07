"""The ``probity`` command: the engine, headless.

Exit codes: 0 success; 1 internal error (details in the log file) or, for
``probity verify``, differences found; 2 bad input (one line on stderr);
3 model refused as unsafe or not trusted; 130 interrupted.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine import __version__
from engine.device import DEVICE_CHOICES
from engine.errors import Cancelled, OutputExistsError, ProbityError

if TYPE_CHECKING:  # numpy and pandas load when a command runs, so `probity --version` stays instant
    from engine.jobs import JobContext
    from engine.limits import Limits
    from engine.method import Method
    from engine.schema import ReadOptions

__all__ = ["main", "build_parser"]

EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT, EXIT_REFUSED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
# `probity verify` found differences; shares 1 with internal errors, which print "internal error".
EXIT_DIFFERENT = 1


class _Parser(argparse.ArgumentParser):
    """An argument parser whose help may be completed from the method descriptors when it is printed.

    The descriptors live beside the analyses, whose modules load pandas and
    scipy; reading them only when help is asked for keeps ``probity --version``
    and every other command's start instant.  ``before_help(parser, namespace)``
    fills in text (``namespace`` holds what was parsed before ``--help``).
    """

    before_help: Callable[[argparse.ArgumentParser, argparse.Namespace | None], None] | None = None
    help_namespace: argparse.Namespace | None = None

    def format_help(self) -> str:
        if self.before_help is not None:
            self.before_help(self, self.help_namespace)
        return super().format_help()


class _HelpAction(argparse.Action):
    """``-h/--help`` that lets the help see what was parsed before it (``probity explain lime --help``)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: object) -> None:
        super().__init__(
            option_strings,
            dest=dest,
            default=argparse.SUPPRESS,
            nargs=0,
            help="show this help (after a METHOD: also that method's parameters) and exit",
        )

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        if isinstance(parser, _Parser):
            parser.help_namespace = namespace
        parser.print_help()
        parser.exit()


def _add_read_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("reading the data (detected when not given)")
    group.add_argument("--delimiter", help="field separator, e.g. ',' ';' 'tab' '|'")
    group.add_argument("--encoding", help="text encoding, e.g. utf-8, latin-1")
    group.add_argument("--decimal", choices=[".", ","], help="decimal mark of numbers")
    group.add_argument("--header-row", type=int, help="0-based header line; -1 for no header")
    group.add_argument(
        "--na", action="append", default=[], metavar="TEXT", help="extra missing-value marker (repeatable)"
    )
    group.add_argument("--sheet", help="Excel sheet name")


def _read_options(args: argparse.Namespace) -> ReadOptions:
    from engine.schema import ReadOptions

    delimiter = args.delimiter
    if delimiter is not None and delimiter.lower() in ("tab", "\\t"):
        delimiter = "\t"
    return ReadOptions(
        delimiter=delimiter,
        encoding=args.encoding,
        decimal=args.decimal,
        header_row=args.header_row,
        missing_values=tuple(args.na),
        sheet=args.sheet,
    )


def _features_of(args: argparse.Namespace) -> tuple[str, ...] | None:
    """The columns ``--features`` names: names, comma lists, or one JSON file holding the list."""
    if not args.features:
        return None
    from engine.models.torch_files import parse_features_option

    return parse_features_option(args.features)


def _add_allow_unreviewed(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-unreviewed",
        action="store_true",
        help="also load a trusted model file whose imports include names Probity has not reviewed "
        "(listed by probity inspect-model); recorded in the report",
    )


def _add_limit_options(parser: argparse.ArgumentParser) -> None:
    from engine.limits import LIMIT_OPTIONS

    group = parser.add_argument_group("resource limits (raise them only for a large file you know is legitimate)")
    for option in LIMIT_OPTIONS:
        kind = float if option.unit > 1 or option.field == "max_compression_ratio" else int
        group.add_argument(option.option, dest=f"limit_{option.field}", type=kind, metavar="N", help=option.help)


def _limits_of(args: argparse.Namespace) -> Limits:
    """The :class:`engine.limits.Limits` the resource-limit options ask for (defaults where not given)."""
    import dataclasses

    from engine.limits import DEFAULT_LIMITS, LIMIT_OPTIONS

    given = {
        o.field: (getattr(args, f"limit_{o.field}"), o.unit)
        for o in LIMIT_OPTIONS
        if getattr(args, f"limit_{o.field}", None) is not None
    }
    changes = {
        field: value if field == "max_compression_ratio" else int(value * unit)
        for field, (value, unit) in given.items()
    }
    return dataclasses.replace(DEFAULT_LIMITS, **changes)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="probity", description="Audit machine-learning models offline: explanations with provenance."
    )
    parser.add_argument("--version", action="version", version=f"probity {__version__}")
    parser.add_argument(
        "--progress",
        choices=["auto", "bar", "lines", "none"],
        default="auto",
        help="progress on stderr: a bar on a terminal (auto), log lines, or nothing",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    audit = sub.add_parser("audit", help="run the audit and write DIR/report.pdf, results.json and manifest.json")
    audit.add_argument("--data", required=True, type=Path, help="the dataset (CSV/TSV, Parquet, Feather, Excel)")
    audit.add_argument(
        "--model",
        required=True,
        type=Path,
        help="the model (.skops, .onnx, .pkl, .joblib, a booster's own file: XGBoost .json/.ubj, LightGBM .txt/.lgb, "
        "CatBoost .cbm/.json, or PyTorch .pt/.pth/.ts/.pt2/.safetensors with its model.features.json sidecar)",
    )
    audit.add_argument("--target", required=True, help="the target column")
    audit.add_argument(
        "--sensitive",
        nargs="+",
        action="extend",
        default=[],
        metavar="COL",
        help="sensitive attribute columns (need not be model inputs)",
    )
    audit.add_argument(
        "--features",
        nargs="+",
        action="extend",
        metavar="COL",
        help="model input columns, when the model file does not name them (names, comma lists, or a JSON file "
        "with the list); for a PyTorch network, its input columns in order (or its model.features.json sidecar)",
    )
    audit.add_argument("--out", type=Path, default=Path("probity-audit"), help="output folder (default: probity-audit)")
    audit.add_argument(
        "--force",
        action="store_true",
        help="overwrite report.pdf, results.json and manifest.json already in the output folder",
    )
    audit.add_argument("--seed", type=int, default=0, help="seed every random choice flows from (default 0)")
    audit.add_argument(
        "--trust-model",
        action="append",
        default=[],
        metavar="SHA256",
        help="trust this exact pickle/joblib/skops file (its SHA-256) after reviewing its imports",
    )
    _add_allow_unreviewed(audit)
    _add_limit_options(audit)
    report = audit.add_argument_group("the report")
    advanced = audit.add_argument_group("sample sizes (advanced)")
    fairness = audit.add_argument_group("fairness (with --sensitive)")
    groups = {"computation": audit, "the report": report, "sample sizes (advanced)": advanced, "fairness": fairness}
    report.add_argument(
        "--sections",
        nargs="+",
        metavar="NAME",
        help="report sections to include, in any order (default: all); e.g. summary performance "
        "importance reproducibility (an unknown name lists the valid ones)",
    )
    from engine.audit_options import AUDIT_OPTIONS

    for option in AUDIT_OPTIONS:  # the audit's own settings, declared once (engine.audit_options)
        groups[option.group].add_argument(option.flag, **option.argparse_kwargs())
    report.add_argument("--auditor", default="", metavar="NAME", help="who performed the audit")
    report.add_argument("--organisation", default="", metavar="NAME", help="the auditing organisation")
    report.add_argument("--notes-file", type=Path, metavar="PATH", help="reviewer notes (UTF-8 text)")
    report.add_argument(
        "--no-report", action="store_true", help="write results.json and manifest.json only, without the PDF (faster)"
    )
    report.add_argument(
        "--timestamp",
        metavar="ISO",
        help="the audit's recorded time, e.g. 2024-05-01T12:00:00Z (default: now, and each "
        "analysis's start and end are measured); fixing it measures no times and makes a "
        "re-run byte-identical",
    )

    _add_read_options(audit)
    audit.set_defaults(func=_cmd_audit, _parser=audit)
    assert isinstance(audit, _Parser)
    audit.before_help = _describe_audit_defaults

    verify = sub.add_parser(
        "verify",
        help="re-run the audit a report records and check every number",
        description="Check a Probity report: re-hash the data and model files, re-run every analysis from the "
        "parameters embedded in the report and compare every number; check results.json and "
        "manifest.json beside the report. Exit 0 when everything matches, 1 with the differences.",
    )
    verify.add_argument(
        "report",
        type=Path,
        metavar="REPORT.pdf",
        help="the report written by probity audit, or the folder holding its report.pdf",
    )
    verify.add_argument("--data", required=True, type=Path, help="the dataset the report describes")
    verify.add_argument("--model", required=True, type=Path, help="the model the report describes")
    verify.add_argument(
        "--trust-model",
        action="append",
        default=[],
        metavar="SHA256",
        help="trust this exact pickle/joblib/skops file (its SHA-256) after reviewing its imports",
    )
    verify.add_argument(
        "--tolerance",
        type=float,
        default=None,
        metavar="REL",
        help="relative tolerance for floats that are not bit-identical (default 1e-9; 0 demands bit-identical numbers)",
    )
    _add_allow_unreviewed(verify)
    _add_limit_options(verify)
    verify.set_defaults(func=_cmd_verify)

    explain = sub.add_parser(
        "explain",
        help="run one analysis and write its JSON",
        add_help=False,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run one analysis (any registered method) and write its result as JSON. "
        "'probity explain METHOD --help' and 'probity methods' list each method's parameters.",
    )
    explain.add_argument("-h", "--help", action=_HelpAction)
    explain.add_argument("method", metavar="METHOD", help="the method (listed below)")
    explain.add_argument("--data", required=True, type=Path, help="the dataset")
    explain.add_argument("--model", required=True, type=Path, help="the model")
    explain.add_argument("--target", required=True, help="the target column")
    explain.add_argument(
        "--features",
        nargs="+",
        action="extend",
        metavar="COL",
        help="model input columns, when the model file does not name them (names, comma lists, or a JSON file "
        "with the list); for a PyTorch network, its input columns in order (or its model.features.json sidecar)",
    )
    explain.add_argument(
        "--sensitive",
        nargs="+",
        action="extend",
        default=[],
        metavar="COL",
        help="sensitive attribute columns (group metrics compare their groups)",
    )
    explain.add_argument(
        "--rows",
        metavar="SPEC",
        help="rows to explain: '0-99', '3,17', 'first:N', 'random:N', 'all' (default: the method's own, listed below)",
    )
    explain.add_argument(
        "--samples",
        type=int,
        metavar="N",
        help="the method's sample budget: the parameter listed below as its --samples",
    )
    explain.add_argument(
        "--class",
        dest="klass",
        metavar="LABEL",
        help="class to explain (default: the positive class of a binary model)",
    )
    explain.add_argument("--seed", type=int, default=0, help="seed every random choice flows from (default 0)")
    explain.add_argument(
        "--device",
        choices=DEVICE_CHOICES,
        help="where TreeSHAP and gradient methods compute: auto (a CUDA GPU when torch sees one, "
        "the default), cpu or cuda",
    )
    explain.add_argument("--out", type=Path, help="output JSON file (default: standard output)")
    explain.add_argument(
        "--trust-model",
        action="append",
        default=[],
        metavar="SHA256",
        help="trust this exact pickle/joblib/skops file (its SHA-256)",
    )
    _add_allow_unreviewed(explain)
    _add_limit_options(explain)
    explain.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any parameter of the method, by its name (VALUE read as JSON when it parses: "
        '5000, true, null, ["a", "b"]; else as text)',
    )
    _add_read_options(explain)
    explain.set_defaults(func=_cmd_explain)
    assert isinstance(explain, _Parser)
    explain.before_help = _describe_methods_for_explain

    methods = sub.add_parser(
        "methods",
        help="list every analysis with its parameters and defaults",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="List every analysis probity explain runs: what it shows, what it needs, the rows it explains "
        "by default, its --samples parameter and each parameter with its default.",
    )
    methods.add_argument("names", nargs="*", metavar="METHOD", help="only these methods (default: all)")
    methods.set_defaults(func=_cmd_methods)

    rerun = sub.add_parser(
        "rerun",
        help="re-run one recorded result from its provenance and check every number",
        description="Make one result again from the call its provenance records (method, every parameter, seed, "
        "random stream, columns) on the data and model given now, and compare every number as "
        "probity verify does. Exit 0 when it matches, 1 with the differences, 2 for bad input, "
        "3 for a model refused as unsafe or not trusted.",
    )
    rerun.add_argument(
        "source",
        type=Path,
        metavar="RESULT.json",
        help="a results.json written by probity audit, or the JSON of probity explain --out",
    )
    rerun.add_argument("--result", metavar="KEY", help="which result of an audit's results.json (e.g. lime, shap)")
    rerun.add_argument("--data", required=True, type=Path, help="the dataset the result describes")
    rerun.add_argument("--model", required=True, type=Path, help="the model the result describes")
    rerun.add_argument(
        "--trust-model",
        action="append",
        default=[],
        metavar="SHA256",
        help="trust this exact pickle/joblib/skops file (its SHA-256) after reviewing its imports",
    )
    rerun.add_argument(
        "--tolerance",
        type=float,
        default=None,
        metavar="REL",
        help="relative tolerance for floats that are not bit-identical (default 1e-9; 0 demands bit-identical numbers)",
    )
    _add_allow_unreviewed(rerun)
    _add_limit_options(rerun)
    rerun.set_defaults(func=_cmd_rerun)

    inspect = sub.add_parser("inspect-model", help="describe a model file without loading it")
    inspect.add_argument("path", type=Path)
    _add_limit_options(inspect)
    inspect.set_defaults(func=_cmd_inspect_model)
    return parser


def _report_sections() -> tuple[str, ...]:
    from engine.report.inputs import SECTIONS

    return SECTIONS


def _cmd_audit(args: argparse.Namespace, ctx: JobContext) -> int:
    from engine.audit import (
        AUDIT_ANALYSES,
        AuditRequest,
        ReportOptions,
        normalise_timestamp,
        run_audit,
        write_audit_outputs,
    )
    from engine.audit_options import AUDIT_OPTIONS
    from engine.results import utc_now

    options = {option.field: getattr(args, option.field) for option in AUDIT_OPTIONS}
    for option in AUDIT_OPTIONS:
        option.check(options[option.field])
    sections = _check_sections(args.sections)
    notes = _read_notes(args.notes_file)
    out_dir: Path = args.out
    if out_dir.exists() and not out_dir.is_dir():
        raise ProbityError(f"The output path {out_dir} exists and is not a folder.", path=out_dir)
    # Refused before the audit runs, not after minutes of work.
    _refuse_overwrite(out_dir, report=not args.no_report, force=args.force)
    # Recorded without the output folder and with files by name (engine.audit.portable_command),
    # so abbreviated options are spelled out in full first.
    # Options before the subcommand (--progress) only shape the terminal output.
    after = args._argv[args._argv.index("audit") + 1 :]
    command = ["probity", "audit", *_spelled_out(after, args._parser)]
    if args.timestamp is None:
        # The recorded command regenerates the same numbers, so it fixes the time it was run at.
        timestamp = utc_now()
        command += ["--timestamp", timestamp]
    else:
        timestamp = normalise_timestamp(args.timestamp)
    request = AuditRequest(
        data=args.data,
        model=args.model,
        target=args.target,
        sensitive=tuple(args.sensitive),
        features=_features_of(args),
        seed=args.seed,
        trusted_sha256=tuple(s.strip().lower() for s in args.trust_model),
        allow_unreviewed=args.allow_unreviewed,
        read_options=_read_options(args),
        analyses=AUDIT_ANALYSES,
        timestamp=timestamp,
        # A fixed --timestamp promises identical bytes, so times are measured only for an audit run "now".
        measure_times=args.timestamp is None,
        report=None
        if args.no_report
        else ReportOptions(
            auditor=args.auditor, organisation=args.organisation, reviewer_notes=notes, sections=sections
        ),
        **options,
    )
    outcome = run_audit(request, ctx.sub(0.0, 1.0 if args.no_report else 0.9))
    try:
        written = write_audit_outputs(
            outcome, out_dir, request.report, command=command, ctx=ctx.sub(0.9, 1.0), force=args.force
        )
    except OutputExistsError:  # written there while the audit ran
        _refuse_overwrite(out_dir, report=not args.no_report, force=False)
        raise
    for path in written.values():
        print(f"Wrote {path}", file=sys.stderr)
    for warning in outcome.warnings:
        print(f"probity: warning: {warning}", file=sys.stderr)
    return EXIT_OK


def _spelled_out(argv: Sequence[str], parser: argparse.ArgumentParser) -> list[str]:
    """``argv`` with abbreviated long options (``--dat``) written in full (``--data``), as argparse read them."""
    known = [o for o in parser._option_string_actions if o.startswith("--")]
    out: list[str] = []
    for i, token in enumerate(argv):
        if token == "--":
            out += argv[i:]
            break
        name, eq, value = token.partition("=")
        if token.startswith("--") and name not in known:
            matches = [o for o in known if o.startswith(name)]
            if len(matches) == 1:
                token = matches[0] + eq + value
        out.append(token)
    return out


def _refuse_overwrite(out_dir: Path, *, report: bool, force: bool) -> None:
    """Refuse (exit 2) when ``out_dir`` holds outputs this audit would overwrite and --force is not given."""
    from engine.audit import describe_existing, existing_outputs

    existing = existing_outputs(out_dir, report=report)
    if existing and not force:
        raise OutputExistsError(
            f"{describe_existing(out_dir, existing)}; use --force to overwrite "
            f"{'it' if len(existing) == 1 else 'them'}.",
            path=out_dir,
            existing=tuple(existing),
        )


def _check_sections(names: Sequence[str] | None) -> tuple[str, ...] | None:
    if names is None:
        return None
    valid = _report_sections()
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise ProbityError(
            f"Unknown report section {', '.join(repr(u) for u in unknown)}; choose from {', '.join(valid)}."
        )
    return tuple(names)


def _read_notes(path: Path | None) -> str:
    if path is None:
        return ""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProbityError(f"The notes file {path} does not exist.", path=path) from None
    except UnicodeDecodeError:
        raise ProbityError(f"The notes file {path} is not UTF-8 text.", path=path) from None
    except OSError as exc:
        raise ProbityError(f"The notes file {path} cannot be read: {exc.strerror or exc}.", path=path) from None


def _cmd_verify(args: argparse.Namespace, ctx: JobContext) -> int:
    from engine.verify import DEFAULT_REL_TOL, verify_report

    tolerance = DEFAULT_REL_TOL if args.tolerance is None else args.tolerance
    report = args.report / "report.pdf" if args.report.is_dir() else args.report
    outcome = verify_report(
        report,
        data=args.data,
        model=args.model,
        trusted_sha256=tuple(s.strip().lower() for s in args.trust_model),
        ctx=ctx,
        rel_tol=tolerance,
        allow_unreviewed=args.allow_unreviewed,
    )
    for note in outcome.notes:
        print(f"probity: note: {note}", file=sys.stderr)
    for line in outcome.lines():
        print(line)
    return EXIT_OK if outcome.ok else EXIT_DIFFERENT


# -- the method descriptors, as the command line shows and takes them -------------------------------


def _wrap(text: str, indent: str, width: int = 100) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width=width, initial_indent=indent, subsequent_indent=indent) or [indent]


def _method_lines(method: Method, *, parameters: bool = True) -> list[str]:
    """A method as ``probity methods`` and ``probity explain METHOD --help`` list it."""
    from engine.method import NEEDS

    lines = [f"{method.name} — {method.title}"]
    lines += _wrap(method.summary or method.description, "    ")
    facts = []
    if method.takes_rows:
        facts.append(f"explains chosen rows (--rows, default {method.rows_default})")
    else:
        facts.append("uses the whole table (no --rows)")
    if method.samples is not None:
        facts.append(f"--samples sets {method.samples}")
    for name, source in method.builds_on.items():
        facts.append(f"its {name} are computed first by {source} on the same rows")
    needs = [NEEDS[n] for n in sorted(method.needs) if n != "rows"]
    if needs:
        facts.append("needs " + ", ".join(needs))
    lines += _wrap("; ".join(facts) + ".", "    ")
    if parameters:
        shown = [p for p in method.params if not p.provided]
        if shown:
            lines.append("    parameters (--param NAME=VALUE):")
        for p in shown:
            flag = {"klass": " (--class)", "device": " (--device)"}.get(p.name, "")
            if p.name == method.samples:
                flag = " (--samples)"
            lines.append(f"      {p.name} = {p.default_text()}{flag}")
            detail = (p.help + " " if p.help else "") + f"Must be {p.requirement()}."
            lines += _wrap(detail, "          ")
    return lines


def _describe_methods_for_explain(parser: argparse.ArgumentParser, namespace: argparse.Namespace | None) -> None:
    from engine.registry import METHODS

    chosen = getattr(namespace, "method", None) if namespace is not None else None
    lines = ["methods (probity methods lists them with their parameters):"]
    lines += [
        f"  {m.name:<17} {m.title}" + (f" (rows: {m.rows_default})" if m.takes_rows else "") for m in METHODS.values()
    ]
    if chosen in METHODS:
        lines += ["", *_method_lines(METHODS[chosen])]
    parser.epilog = "\n".join(lines)


def _describe_audit_defaults(parser: argparse.ArgumentParser, namespace: argparse.Namespace | None) -> None:
    from engine.registry import get_method

    defaults = {
        "--lime-samples": ("LIME's own", get_method("lime").defaults["num_samples"]),
        "--n-repeats": ("permutation importance's own", get_method("permutation").defaults["n_repeats"]),
        "--threshold": ("the fairness analysis's own", get_method("fairness").defaults["threshold"]),
    }
    for action in parser._actions:
        for option, (whose, value) in defaults.items():
            if option in action.option_strings and action.help and "(default:" in action.help:
                action.help = action.help.split("(default:")[0] + f"(default {value}, {whose})"


def _cmd_methods(args: argparse.Namespace, ctx: JobContext) -> int:
    from engine.registry import METHODS, get_method

    names = list(args.names) or list(METHODS)
    blocks = [_method_lines(get_method(name)) for name in names]
    print("\n\n".join("\n".join(block) for block in blocks))
    return EXIT_OK


def _parse_params(pairs: Sequence[str], method: Method) -> dict[str, Any]:
    """``--param KEY=VALUE`` pairs as the method's parameters, each read by its :class:`Param` spec."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ProbityError(f"The parameter {pair!r} is not of the form KEY=VALUE.")
        spec = method.param(key)
        if spec.provided:
            flag = "--rows" if spec.kind == "rows" else f"the {', '.join(method.builds_on.values())} it builds on"
            raise ProbityError(f"The parameter {key} of {method.name} is given by {flag}, not --param.")
        params[key] = spec.parse_text(value)
    return params


def _explain_params(args: argparse.Namespace, method: Method) -> tuple[dict[str, Any], dict[str, Any]]:
    """The parameters the command line sets for ``method`` and for the methods it builds on.

    ``--class`` of a method that takes no class (clusters) goes to what it builds on (the SHAP values).
    """
    from engine.registry import get_method

    params = _parse_params(args.param, method)
    base: dict[str, Any] = {}
    if args.samples is not None:
        if method.samples is None:
            raise ProbityError(f"--samples does not apply to {method.name}, which has no sample budget.")
        params[method.samples] = args.samples
    if args.klass is not None:
        if "klass" in method.param_names:
            params["klass"] = args.klass
        elif any("klass" in get_method(source).param_names for source in method.builds_on.values()):
            base["klass"] = args.klass
        else:
            raise ProbityError(f"--class does not apply to {method.name}, which explains no class.")
    if args.device is not None:
        if "device" not in method.param_names:
            raise ProbityError(f"--device does not apply to {method.name}, which runs on the processor.")
        params["device"] = args.device
    method.validate(params)  # a bad value is refused before the data and model are read
    for source in method.builds_on.values():
        get_method(source).validate({k: v for k, v in base.items() if k in get_method(source).param_names})
    return params, base


def _cmd_explain(args: argparse.Namespace, ctx: JobContext) -> int:
    import json
    import time

    from engine.audit import load_inputs, write_json_atomic
    from engine.export import explain_document
    from engine.registry import get_method
    from engine.rows import parse_rows

    method = get_method(args.method)
    params, base = _explain_params(args, method)
    if args.rows is not None and not method.takes_rows:
        raise ProbityError(f"--rows does not apply to {method.name}, which uses every labelled row.")
    inputs = load_inputs(
        args.data,
        args.model,
        target=args.target,
        sensitive=tuple(args.sensitive),
        features=_features_of(args),
        trusted_sha256=tuple(s.strip().lower() for s in args.trust_model),
        read_options=_read_options(args),
        allow_unreviewed=args.allow_unreviewed,
        ctx=ctx.sub(0.0, 0.1),
        device=args.device or "auto",  # where a torch or ONNX model predicts, too
    )
    rows = None
    if method.takes_rows:
        rows = parse_rows(args.rows, len(inputs.frame), ctx=ctx, default=method.rows_default or "all").tolist()
    started = time.perf_counter()
    from engine.plan import JobSpec, run_job

    spec = JobSpec(method.name, params, rows=None if rows is None else tuple(rows), base=base)
    result = run_job(spec, inputs, ctx.sub(0.1, 1.0)).result
    compute_seconds = time.perf_counter() - started
    document = explain_document(result, method=method.name, compute_seconds=compute_seconds)
    if args.out is None:
        json.dump(document, sys.stdout, indent=2, allow_nan=False)
        sys.stdout.write("\n")
    else:
        write_json_atomic(args.out, document)
        print(f"Wrote {args.out}", file=sys.stderr)
    return EXIT_OK


def _cmd_rerun(args: argparse.Namespace, ctx: JobContext) -> int:
    from engine.rerun import rerun_result

    outcome = rerun_result(
        args.source,
        data=args.data,
        model=args.model,
        key=args.result,
        trusted_sha256=tuple(s.strip().lower() for s in args.trust_model),
        allow_unreviewed=args.allow_unreviewed,
        ctx=ctx,
        rel_tol=args.tolerance,
    )
    for note in outcome.notes:
        print(f"probity: note: {note}", file=sys.stderr)
    for line in outcome.lines():
        print(line)
    return EXIT_OK if outcome.ok else EXIT_DIFFERENT


def _cmd_inspect_model(args: argparse.Namespace, ctx: JobContext) -> int:
    from engine.models.loading import inspect_model

    print(inspect_model(args.path).to_text())
    return EXIT_OK


def _user_message(exc: ProbityError) -> str:
    """The sentence printed for a user error; a refusal for unreviewed names says how to acknowledge them."""
    # The class exists only once model loading was imported, which it must have been to raise it.
    loading = sys.modules.get("engine.models.loading")
    if loading is None or not isinstance(exc, loading.UnreviewedModelError):
        return str(exc)
    name = exc.path.name if exc.path is not None else "The model file"
    names = list(exc.unreviewed)
    listed = ", ".join(names[:_MAX_NAMES]) + (f" and {len(names) - _MAX_NAMES} more" if len(names) > _MAX_NAMES else "")
    return (
        f"{name} is trusted but names {listed}, which Probity has not reviewed; review "
        f"{'it' if len(names) == 1 else 'them'} (probity inspect-model {shlex.quote(name)}) and, if you accept "
        f"{'it' if len(names) == 1 else 'them'}, add --allow-unreviewed."
    )


_MAX_NAMES = 25


def main(argv: Sequence[str] | None = None) -> int:
    from engine import netguard

    netguard.install()  # from here on, nothing in this process reaches another machine
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_BAD_INPUT
    args._argv = argv
    # Imported here so `probity --version` stays instant.
    from engine.progress import TerminalProgress

    progress = TerminalProgress(sys.stderr, mode=args.progress)
    from engine.jobs import CancelToken, JobContext

    cancel = CancelToken()
    ctx = JobContext(seed=getattr(args, "seed", 0), progress_fn=progress, cancel=cancel)
    previous = signal.getsignal(signal.SIGINT)

    def _interrupt(signum: int, frame: object) -> None:  # first Ctrl-C cancels cleanly, second kills
        cancel.cancel()
        signal.signal(signal.SIGINT, previous)

    on_main_thread = threading.current_thread() is threading.main_thread()
    if on_main_thread:
        signal.signal(signal.SIGINT, _interrupt)
    try:
        from engine.limits import using_limits

        # The limits are checked here: one that is not a positive number is a ProbityError.
        with using_limits(_limits_of(args)):
            code: int = args.func(args, ctx)
            return code
    except ProbityError as exc:
        progress.close()
        print(f"probity: {_user_message(exc)}", file=sys.stderr)
        return EXIT_REFUSED if exc.exit_code == EXIT_REFUSED else EXIT_BAD_INPUT
    except (Cancelled, KeyboardInterrupt):
        progress.close()
        print("probity: cancelled.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug: log it with its traceback, show one line
        from engine.logs import log_exception

        progress.close()
        where = log_exception(exc, context="probity " + shlex.join(argv))
        print(
            f"probity: internal error ({type(exc).__name__}: {exc}); details were written to {where}.", file=sys.stderr
        )
        return EXIT_INTERNAL
    finally:
        progress.close()
        if on_main_thread:
            signal.signal(signal.SIGINT, previous)


if __name__ == "__main__":
    raise SystemExit(main())

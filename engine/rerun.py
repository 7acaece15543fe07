"""``probity rerun``: make one recorded result again from its own provenance and compare every number.

Every result a registered method makes records its call (:attr:`Provenance.call
<engine.results.Provenance.call>`): the method, every parameter after
validation and defaults, the random-stream path it ran under and the columns
its inputs bound.  Its seed and its data's read options are in the same
provenance.  A re-run therefore needs only the result and the two files:

1. the data and model files are hashed and compared with the hashes the result
   records (a mismatch is a difference, named);
2. the inputs are loaded with the recorded read options and roles (under the
   recorded file names, as ``probity verify`` does, so messages that name the
   files do not read as differences);
3. the call is made again under the recorded seed and stream, after the calls
   of the results it builds on (clusters on SHAP values), and with the steps it
   records after it (the faithfulness figures ``probity explain`` attaches);
4. the new result is compared with the recorded one by
   :func:`engine.verify.compare_documents`, with the same tolerance and the same
   rules for what is not compared (times, durations, versions, the device).

It reads a ``results.json`` written by ``probity audit`` (``--result KEY``
picks one of its results) or the JSON ``probity explain --out`` writes.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.device import replay_device
from engine.errors import ProbityError
from engine.files import JSONNestingError, json_bytes, loads_json
from engine.jobs import JobContext
from engine.limits import Limits, current_limits, format_bytes, raise_hint, using_limits
from engine.results import Result

__all__ = ["RerunOutcome", "read_results_file", "pick_result", "replay", "rerun_result"]


@dataclass(frozen=True)
class RerunOutcome:
    """What :func:`rerun_result` found.

    Attributes
    ----------
    source: the file read.
    key: the result re-run (its key in ``results``, or the method of an explain output).
    method: the registered method called.
    differences: one sentence per difference (inputs first, then numbers).
    notes: what differs without being a difference (versions, the device, measured times).
    n_numbers: numbers compared; ``n_within_tolerance`` of them equal only within ``rel_tol``.
    """

    source: Path
    key: str
    method: str
    differences: tuple[str, ...]
    notes: tuple[str, ...]
    n_numbers: int
    n_within_tolerance: int
    rel_tol: float

    @property
    def ok(self) -> bool:
        return not self.differences

    def lines(self, *, limit: int = 20) -> list[str]:
        """What the CLI prints on standard output."""
        if self.ok:
            out = [f"reproduced: {self.n_numbers} numbers of {self.key} ({self.method}) match"]
            if self.n_within_tolerance == 0:
                out.append("  every number bit-identical")
            else:
                out.append(
                    f"  {self.n_numbers - self.n_within_tolerance} bit-identical, {self.n_within_tolerance} "
                    f"within the relative tolerance {self.rel_tol:g}"
                )
            return out
        out = list(self.differences[:limit])
        if len(self.differences) > limit:
            out.append(f"… and {len(self.differences) - limit} more differences")
        out.append(
            f"not reproduced: {len(self.differences)} difference{'s' if len(self.differences) != 1 else ''} "
            f"({self.n_numbers} numbers of {self.key} compared)"
        )
        return out


def read_results_file(path: Path, *, limits: Limits | None = None) -> dict[str, Any]:
    """The JSON document of a ``results.json`` or an explain output, read within the limits.

    Raises
    ------
    ProbityError
        One sentence naming the file: missing, too large, not JSON, nested too
        deep, or not a Probity results document.
    """
    limits = current_limits() if limits is None else limits
    path = Path(path)
    if not path.is_file():
        raise ProbityError(f"The results file {path} does not exist.", path=path)
    if path.stat().st_size > limits.max_report_bytes:
        raise ProbityError(
            f"The results file {path} is larger than {format_bytes(limits.max_report_bytes)}, the "
            f"limit on what Probity reads back; {raise_hint('max_report_bytes')}.",
            path=path,
        )
    try:
        document = loads_json(path.read_bytes(), max_depth=limits.max_json_depth)
    except JSONNestingError as exc:
        raise ProbityError(exc.sentence(f"The results file {path}"), path=path) from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ProbityError(f"The results file {path} is not JSON.", path=path) from None
    except OSError as exc:
        raise ProbityError(f"The results file {path} cannot be read: {exc.strerror or exc}.", path=path) from None
    if not isinstance(document, dict) or not (
        isinstance(document.get("results"), Mapping) or isinstance(document.get("result"), Mapping)
    ):
        raise ProbityError(
            f"{path} is not a results file written by probity audit or probity explain --out.", path=path
        )
    return document


def pick_result(document: Mapping[str, Any], key: str | None, source: Path) -> tuple[str, Mapping[str, Any]]:
    """The result to re-run: ``key`` of an audit's ``results``, its only result, or an explain output's.

    Raises
    ------
    ProbityError
        When ``key`` names no result, or several results are there and none is named.
    """
    results = document.get("results")
    if not isinstance(results, Mapping):
        result = document["result"]
        name = str(document.get("method") or (result.get("provenance") or {}).get("method") or "result")
        if key is not None and key != name:
            raise ProbityError(f"{source.name} holds one result, {name}, not {key}.", path=source)
        return name, result
    names = [str(k) for k, v in results.items() if isinstance(v, Mapping)]
    if key is None:
        if len(names) == 1:
            return names[0], results[names[0]]
        raise ProbityError(
            f"{source.name} holds {len(names)} results; choose one with --result ({', '.join(names)}).", path=source
        )
    if key not in names:
        raise ProbityError(f"{source.name} has no result {key!r}; it holds {', '.join(names) or 'none'}.", path=source)
    return key, results[key]


def _call_of(result: Mapping[str, Any], key: str, source: Path) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    prov = result.get("provenance")
    call = prov.get("call") if isinstance(prov, Mapping) else None
    if not isinstance(call, Mapping):
        raise ProbityError(
            f"The result {key} in {source.name} records no call (it was derived from other results, or written "
            "before Probity recorded calls), so it cannot be re-run alone; probity verify checks a whole report.",
            path=source,
        )
    assert isinstance(prov, Mapping)
    return prov, call


def _stream(value: Any) -> tuple[Any, ...]:
    if not isinstance(value, list) or not all(isinstance(k, (str, int)) and not isinstance(k, bool) for k in value):
        raise ProbityError(f"The recorded random-stream path {value!r} is not a list of names and numbers.")
    return tuple(value)


def replay(inputs: Any, call: Mapping[str, Any], *, seed: int, ctx: JobContext) -> Result:
    """Make a recorded call again on ``inputs``: under its seed and stream, after the calls it builds on.

    Parameters
    ----------
    inputs: the :class:`~engine.inputs.AuditInputs` the call is made on.
    call: a :attr:`Provenance.call <engine.results.Provenance.call>` record.
    seed: the seed the recorded result ran under.
    ctx: progress and cancel (its seed and stream are replaced by the recorded ones).

    Raises
    ------
    ProbityError
        A call naming an unknown method or parameter, or a value its spec refuses
        (as :meth:`engine.method.Method.validate` says it).
    """
    from engine.registry import get_method

    method = get_method(str(call.get("method")))
    recorded = call.get("parameters")
    if not isinstance(recorded, Mapping):
        raise ProbityError(f"The recorded call of {method.name} has no parameters.")
    params = dict(recorded)
    if isinstance(params.get("device"), str):
        # Recorded on a GPU this machine lacks: made on the CPU, and the comparison notes the device.
        params["device"] = replay_device(params["device"])
    built = [name for name in method.builds_on if isinstance(params.get(name), Mapping)]
    share = 0.5 if built else 0.0
    for name in built:
        reference = params[name]
        inner = reference.get("call")
        if not isinstance(inner, Mapping):
            raise ProbityError(f"The {name} {method.name} was given record no call, so they cannot be made again.")
        params[name] = replay(inputs, inner, seed=int(reference.get("seed") or 0), ctx=ctx.sub(0.0, share))
    faith = call.get("faithfulness")
    end = 0.9 if isinstance(faith, Mapping) else 1.0
    run_ctx = dataclasses.replace(ctx.sub(share, end), seed=int(seed), path=_stream(call.get("stream", [])))
    result = method(inputs, ctx=run_ctx, **params)
    if isinstance(faith, Mapping):
        from engine.attribution import AttributionResult
        from engine.explain.quality import with_faithfulness

        if not isinstance(result, AttributionResult):
            raise ProbityError(f"The call of {method.name} records faithfulness figures, which only attributions have.")
        faith_ctx = dataclasses.replace(ctx.sub(end, 1.0), seed=int(seed), path=_stream(faith.get("stream", [])))
        result = with_faithfulness(
            inputs,
            result,
            ctx=faith_ctx,
            n_random=int(faith.get("n_random", 5)),
            max_rows=faith.get("max_rows"),
            order=str(faith.get("order", "signed")),
        )
    return result


def _input_differences(prov: Mapping[str, Any], *, data: Path, model: Path) -> list[str]:
    from engine.hashing import sha256_file
    from engine.models.onnx_adapter import model_identity  # covers an ONNX graph's external data

    out: list[str] = []
    for role, sha in (("data", sha256_file(data)), ("model", model_identity(model))):
        recorded = prov.get(f"{role}_sha256")
        if recorded is not None and recorded != sha:
            out.append(f"{role} SHA-256 differs: the result has {recorded}, the file has {sha}.")
    return out


def rerun_result(
    source: Path,
    *,
    data: Path,
    model: Path,
    key: str | None = None,
    trusted_sha256: Sequence[str] = (),
    allow_unreviewed: bool = False,
    ctx: JobContext | None = None,
    rel_tol: float | None = None,
    granted_by: str = "cli rerun --trust-model",
    limits: Limits | None = None,
) -> RerunOutcome:
    """Re-run one result of ``source`` on ``data`` and ``model`` and compare it with the recorded one.

    Raises
    ------
    ProbityError
        Exit 2 for a file that is not a results file, a result without a call,
        or inputs that cannot be read; :class:`~engine.errors.UntrustedModelError` /
        :class:`~engine.errors.UnsafeModelError` (exit 3) for a model that may not be loaded.
    """
    from engine.verify import DEFAULT_REL_TOL, as_named, compare_documents

    limits = current_limits() if limits is None else limits
    tolerance = DEFAULT_REL_TOL if rel_tol is None else rel_tol
    if not (math.isfinite(tolerance) and tolerance >= 0):
        raise ProbityError(f"The tolerance must be a non-negative number, not {tolerance!r}.")
    source, data, model = Path(source), Path(data), Path(model)
    ctx = ctx or JobContext()
    with using_limits(limits):
        ctx.progress(0.0, f"Reading {source.name}")
        document = read_results_file(source, limits=limits)
        key, recorded = pick_result(document, key, source)
        prov, call = _call_of(recorded, key, source)
        for path, what in ((data, "data"), (model, "model")):
            if not path.is_file():
                raise ProbityError(f"The {what} file {path} does not exist.", path=path)
        differences = _input_differences(prov, data=data, model=model)
        roles = call.get("roles") if isinstance(call.get("roles"), Mapping) else {}
        assert isinstance(roles, Mapping)
        from engine.audit import load_inputs
        from engine.schema import ReadOptions

        try:
            with tempfile.TemporaryDirectory(prefix="probity-rerun-") as tmp:
                inputs = load_inputs(
                    as_named(data, prov.get("data_file"), Path(tmp) / "data"),
                    as_named(model, prov.get("model_file"), Path(tmp) / "model"),
                    target=roles.get("target"),
                    sensitive=tuple(roles.get("sensitive") or ()),
                    features=tuple(roles["features"]) if roles.get("features") else None,
                    trusted_sha256=tuple(trusted_sha256),
                    read_options=ReadOptions.from_dict(prov.get("data_options") or {}),
                    granted_by=granted_by,
                    allow_unreviewed=allow_unreviewed,
                    ctx=ctx.sub(0.0, 0.1),
                )
                seed = prov.get("seed")
                result = replay(inputs, call, seed=int(seed) if isinstance(seed, int) else 0, ctx=ctx.sub(0.1, 1.0))
        except ProbityError as exc:
            if exc.exit_code == 3 or not differences:
                raise
            # Not the recorded files, and the call cannot even be made on them: that is the difference.
            return RerunOutcome(
                source=source,
                key=key,
                method=str(call.get("method")),
                differences=(*differences, f"The call could not be made on these files: {exc.message}"),
                notes=(),
                n_numbers=0,
                n_within_tolerance=0,
                rel_tol=tolerance,
            )
    again = json.loads(json_bytes(result.to_dict()))
    comparison = compare_documents(
        {"provenance": {"versions": prov.get("versions") or {}}, "results": {key: recorded}},
        {"provenance": {"versions": again["provenance"].get("versions") or {}}, "results": {key: again}},
        rel_tol=tolerance,
    )
    ctx.progress(1.0, "Done")
    return RerunOutcome(
        source=source,
        key=key,
        method=str(call.get("method")),
        differences=(*differences, *comparison.differences),
        notes=comparison.notes,
        n_numbers=comparison.n_numbers,
        n_within_tolerance=comparison.n_within_tolerance,
        rel_tol=tolerance,
    )

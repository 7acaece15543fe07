"""``probity verify``: check a report against its inputs by re-running the audit.

A Probity report carries its ``results.json`` inside the PDF.  Verifying a
report means:

1. **The inputs.**  The data and model files given now are hashed; a SHA-256
   that differs from the one the report records is a difference, named
   ("data SHA-256 differs: report has …, file has …").
2. **The numbers.**  The audit is re-run from the parameters embedded in the
   report (same seed, rows, sample sizes and timestamp) and every value of the
   new document is compared with the embedded one
   (:func:`compare_documents`): integers, strings, booleans, nulls and list
   lengths exactly; floats exactly or, where they differ, within a relative
   tolerance (default :data:`DEFAULT_REL_TOL`, ``|a - b| <= 1e-9 * max(|a|, |b|)``,
   with an absolute floor of :data:`ABS_TOL` for values near zero).  The
   tolerance is there for float reductions whose summation order depends on
   BLAS threading or SIMD width (matrix products in LIME's and K-LIME's ridge
   solves, PCA, a torch model's batched forward pass); on the same machine and
   installation every number is expected to be bit-identical, and the outcome
   says how many were.  Package versions, hardware, file names and the
   measured times (when each analysis started and finished, how long it took,
   when the audit finished) are not compared; a version or hardware that
   differs, and measured times, are reported as notes.
3. **The PDF itself.**  A ``results.json`` beside the report must equal the
   embedded copy byte for byte; a ``manifest.json`` beside it must list the
   report's and results' SHA-256 as they are now; and, when the report was
   written by this version of Probity, the PDF must be byte-identical to a
   report rebuilt from its embedded results (pages edited after writing show
   up here).

The comparison is Qt-free and used by the GUI as well as the CLI.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine import __version__
from engine.device import preferred_device, replay_device
from engine.errors import ProbityError
from engine.files import JSONNestingError
from engine.hashing import sha256_file
from engine.jobs import JobContext
from engine.limits import Limits, current_limits, format_bytes, raise_hint, using_limits

if TYPE_CHECKING:
    from engine.results import Result

__all__ = [
    "DEFAULT_REL_TOL",
    "ABS_TOL",
    "MAX_LISTED",
    "Comparison",
    "VerifyOutcome",
    "compare_documents",
    "check_input_files",
    "check_companions",
    "check_pages",
    "read_report_results",
    "as_named",
    "verify_report",
]

#: Relative tolerance for floats that are not bit-identical (see the module docstring).
DEFAULT_REL_TOL = 1e-9
#: Absolute floor of the tolerance, for values that should be zero.
ABS_TOL = 1e-12
#: Differences listed one per line before the rest are counted.
MAX_LISTED = 20

# Provenance keys that describe the machine or the file names rather than the numbers.  The
# input hashes are checked against the files themselves (check_input_files), once.
_NOT_COMPARED = frozenset(
    {"versions", "hardware", "data_file", "model_file", "model_trust", "data_sha256", "model_sha256"}
)
# Wall-clock measurements: when an analysis (or the audit) ran and how long it took, never reproducible.
_TIMES = frozenset({"started_at", "finished_at"})
_MAX_VALUE_CHARS = 80
_PAGES = "pages rebuilt from the embedded results"

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class Comparison:
    """How a re-run document compares with the recorded one.

    Attributes
    ----------
    differences: one sentence per differing value (all of them, uncapped).
    notes: things that differ without being differences (package versions, hardware).
    n_numbers: numbers compared.
    n_within_tolerance: numbers equal only within the tolerance (the rest bit-identical).
    """

    differences: tuple[str, ...]
    notes: tuple[str, ...]
    n_numbers: int
    n_within_tolerance: int


def _where(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "the document"


def _show(value: Any, other: Any = None) -> str:
    """``value`` for a difference line; long strings are cut around where they differ from ``other``."""
    if isinstance(value, str) and isinstance(other, str) and len(value) > _MAX_VALUE_CHARS:
        at = next((i for i, (x, y) in enumerate(zip(value, other)) if x != y), min(len(value), len(other)))
        start = max(0, at - _MAX_VALUE_CHARS // 3)
        cut = value[start : start + _MAX_VALUE_CHARS]
        return json.dumps(
            ("…" if start else "") + cut + ("…" if start + _MAX_VALUE_CHARS < len(value) else ""), ensure_ascii=False
        )
    text = json.dumps(value, ensure_ascii=False, allow_nan=True) if not isinstance(value, float) else repr(value)
    return text if len(text) <= _MAX_VALUE_CHARS else text[: _MAX_VALUE_CHARS - 1] + "…"


def _compared(path: Path_) -> bool:
    if path == ("probity_version",):
        return False
    if len(path) >= 2 and path[0] == "provenance" and path[1] in _NOT_COMPARED:
        return False
    if len(path) >= 4 and path[0] == "results" and path[2] == "provenance" and path[3] in _NOT_COMPARED:
        return False
    if path[:1] == ("results",) and path[2:] in (
        ("provenance", "parameters", "device"),
        ("provenance", "call", "parameters", "device"),
    ):
        return False  # where it ran, like the hardware: a GPU-made report verifies on a laptop (noted)
    # When it ran (noted): the audit's finished_at and each result's times and duration.  The audit's
    # started_at is its recorded timestamp, which the re-run takes over, so it is compared.
    if path == ("provenance", "finished_at"):
        return False
    if len(path) == 4 and path[0] == "results" and path[2] == "provenance" and path[3] in _TIMES:
        return False
    if len(path) == 3 and path[0] == "results" and path[2] == "compute_seconds":
        return False
    return True


def _recorded_later(path: Path_) -> bool:
    """Whether ``path`` is something only newer versions record, so a report written before lacks it.

    A result's call (``results.NAME.provenance.call``) has been recorded since the
    descriptors; a report from before has none, and the re-run's is not a difference.
    """
    return len(path) == 4 and path[0] == "results" and path[2:] == ("provenance", "call")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class _Walker:
    def __init__(self, rel_tol: float, abs_tol: float) -> None:
        self.rel_tol = rel_tol
        self.abs_tol = abs_tol
        self.differences: list[str] = []
        self.n_numbers = 0
        self.n_close = 0

    def walk(self, a: Any, b: Any, path: Path_) -> None:
        if not _compared(path):
            return
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            for key in a:
                if key not in b:
                    self.differences.append(f"{_where(path + (key,))}: in the report but not produced by the re-run.")
                else:
                    self.walk(a[key], b[key], path + (key,))
            for key in b:
                if key not in a and _compared(path + (key,)) and not _recorded_later(path + (key,)):
                    self.differences.append(f"{_where(path + (key,))}: produced by the re-run but not in the report.")
            return
        if isinstance(a, list) and isinstance(b, list):
            if path and path[-1] == "warnings":
                # Where a GPU ran out of memory and the work moved to the CPU says where it ran, like the
                # hardware: a report made on a GPU that ran short verifies where it did not (noted).
                a, b = _without_device_fallbacks(a), _without_device_fallbacks(b)
            if len(a) != len(b):
                self.differences.append(f"{_where(path)}: report has {len(a)} values, re-run gives {len(b)}.")
                return
            for i, (x, y) in enumerate(zip(a, b)):
                self.walk(x, y, path + (i,))
            return
        if _is_number(a) and _is_number(b):
            self.n_numbers += 1
            if a == b and type(a) is type(b):
                return
            if isinstance(a, float) or isinstance(b, float):
                fa, fb = float(a), float(b)
                if fa == fb or (
                    math.isfinite(fa)
                    and math.isfinite(fb)
                    and abs(fa - fb) <= max(self.rel_tol * max(abs(fa), abs(fb)), self.abs_tol)
                ):
                    self.n_close += 1
                    return
            self.differences.append(f"{_where(path)}: report has {_show(a)}, re-run gives {_show(b)}.")
            return
        if type(a) is not type(b) or a != b:
            if _is_number(a):
                self.n_numbers += 1
            self.differences.append(f"{_where(path)}: report has {_show(a, b)}, re-run gives {_show(b, a)}.")


def _is_device_fallback(warning: Any) -> bool:
    """Whether ``warning`` is the sentence of :func:`engine.device.out_of_memory_warning`."""
    return isinstance(warning, str) and " ran on the CPU after the GPU (" in warning and "ran out of memory" in warning


def _without_device_fallbacks(warnings: list[Any]) -> list[Any]:
    return [w for w in warnings if not _is_device_fallback(w)]


def _version_notes(recorded: Mapping[str, Any], rerun: Mapping[str, Any]) -> list[str]:
    notes: list[str] = []
    old = (recorded.get("provenance") or {}).get("versions") or {}
    new = (rerun.get("provenance") or {}).get("versions") or {}
    for name in sorted(set(old) | set(new)):
        if old.get(name) != new.get(name):
            notes.append(f"{name} is {old.get(name) or 'absent'} in the report and {new.get(name) or 'absent'} here.")
    old_hw = (recorded.get("provenance") or {}).get("hardware") or {}
    new_hw = (rerun.get("provenance") or {}).get("hardware") or {}
    for key in sorted(set(old_hw) | set(new_hw)):
        if old_hw.get(key) != new_hw.get(key):
            notes.append(
                f"The report was computed on {key} {old_hw.get(key) or 'unrecorded'}; "
                f"the re-run on {new_hw.get(key) or 'unrecorded'}."
            )
    old_results = recorded.get("results") or {}
    new_results = rerun.get("results") or {}
    timed = sorted(name for name, r in old_results.items() if isinstance(r, Mapping) and _was_timed(r))
    if timed:
        notes.append(
            f"The times the report records for {len(timed)} analys{'is' if len(timed) == 1 else 'es'} "
            "(when each started and finished) were measured when it ran and are not compared."
        )
    for name in sorted(set(old_results) & set(new_results)):
        moved = [
            sum(map(_is_device_fallback, ((r.get(name) or {}).get("provenance") or {}).get("warnings") or ()))
            for r in (old_results, new_results)
        ]
        if moved[0] != moved[1]:
            notes.append(
                f"{name}: where a GPU ran out of memory and the work moved to the CPU "
                f"({'in the report' if moved[0] else 'here'}) is not compared."
            )
        before, after = (_device_of(r.get(name)) for r in (old_results, new_results))
        if before is not None and after is not None and before != after:
            notes.append(f"{name} was computed on {before} in the report and on {after} here.")
    return notes


def _was_timed(result: Mapping[str, Any]) -> bool:
    """Whether a result records a measured interval (not none, and not the one audit time twice)."""
    prov = result.get("provenance") or {}
    started, finished = prov.get("started_at"), prov.get("finished_at")
    return bool(started) and bool(finished) and started != finished


def _device_of(result: Any) -> Any:
    if not isinstance(result, Mapping):
        return None
    return ((result.get("provenance") or {}).get("parameters") or {}).get("device")


def compare_documents(
    recorded: Mapping[str, Any],
    rerun: Mapping[str, Any],
    *,
    rel_tol: float = DEFAULT_REL_TOL,
    abs_tol: float | None = None,
) -> Comparison:
    """Compare every value of two ``results.json`` documents.

    Parameters
    ----------
    recorded:
        The document embedded in the report.
    rerun:
        The document of the re-run, read back from its JSON form (so that
        types match what was written: ``1.0`` stays a float).
    rel_tol:
        Relative tolerance for floats; ``0`` demands bit-identical floats.
    abs_tol:
        Absolute floor of the tolerance; ``None`` means :data:`ABS_TOL`, or 0
        when ``rel_tol`` is 0.

    Returns
    -------
    Comparison
        Paths are written like ``results.permutation.mean[3]``.
    """
    if not (math.isfinite(rel_tol) and rel_tol >= 0):
        raise ProbityError(f"The tolerance must be a non-negative number, not {rel_tol!r}.")
    floor = (ABS_TOL if rel_tol > 0 else 0.0) if abs_tol is None else abs_tol
    walker = _Walker(rel_tol, floor)
    walker.walk(recorded, rerun, ())
    return Comparison(
        differences=tuple(walker.differences),
        notes=tuple(_version_notes(recorded, rerun)),
        n_numbers=walker.n_numbers,
        n_within_tolerance=walker.n_close,
    )


def check_input_files(document: Mapping[str, Any], *, data: Path, model: Path) -> list[str]:
    """Differences between the input hashes the report records and the files given now."""
    prov = document.get("provenance") or {}
    out: list[str] = []
    from engine.models.onnx_adapter import model_identity  # covers an ONNX graph's external data

    actual = {"data": sha256_file(data), "model": model_identity(model)}
    for role, sha in actual.items():
        recorded = prov.get(f"{role}_sha256")
        if recorded != sha:
            out.append(f"{role} SHA-256 differs: report has {recorded}, file has {sha}.")
    # Every result must have been computed on the same files as the audit says.
    for name, result in (document.get("results") or {}).items():
        rp = result.get("provenance") if isinstance(result, Mapping) else None
        if not isinstance(rp, Mapping):
            continue
        for role in ("data", "model"):
            key = f"{role}_sha256"
            if key in rp and rp[key] != prov.get(key):
                out.append(f"results.{name}.provenance.{key} is {rp[key]}, but the audit records {prov.get(key)}.")
    return out


def check_companions(pdf: Path, document: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """Check ``results.json`` and ``manifest.json`` beside the report, when present.

    Returns
    -------
    (differences, checked)
        Sentences for what disagrees, and names of what was checked.
    """
    from engine.manifest import MANIFEST_NAME, check_outputs, entries, read_manifest
    from engine.report import ATTACHMENT_NAME, results_json_bytes

    pdf = Path(pdf)
    differences: list[str] = []
    checked: list[str] = []
    beside = pdf.parent / ATTACHMENT_NAME
    if beside.is_file():
        checked.append(f"{ATTACHMENT_NAME} beside the report")
        expected = results_json_bytes(document)
        # Compared by size first: a file of another size differs, and is never read into memory.
        if beside.stat().st_size != len(expected) or beside.read_bytes() != expected:
            differences.append(f"{ATTACHMENT_NAME} beside {pdf.name} differs from the copy embedded in it.")
    manifest_path = pdf.parent / MANIFEST_NAME
    if manifest_path.is_file():
        checked.append(MANIFEST_NAME)
        limits = current_limits()
        try:
            if manifest_path.stat().st_size > limits.max_report_bytes:
                raise ProbityError(
                    f"The manifest {manifest_path} is larger than {format_bytes(limits.max_report_bytes)}, the limit "
                    f"on what probity verify reads; {raise_hint('max_report_bytes')}.",
                    path=manifest_path,
                )
            manifest = read_manifest(manifest_path)
        except ProbityError as exc:
            differences.append(exc.message)
            return differences, checked
        except RecursionError:  # the JSON parser's own limit, far past any manifest's depth
            differences.append(JSONNestingError(limits.max_json_depth).sentence(f"The manifest {manifest_path}"))
            return differences, checked
        names = [str(e.get("path")) for e in entries(manifest, "report")]
        if pdf.name not in names:
            differences.append(f"{MANIFEST_NAME} does not list {pdf.name}.")
        differences.extend(check_outputs(manifest, pdf.parent))
        prov = document.get("provenance") or {}
        for role in ("data", "model"):
            for entry in entries(manifest, role):
                if entry.get("sha256") != prov.get(f"{role}_sha256"):
                    differences.append(
                        f"{MANIFEST_NAME} records {role} SHA-256 {entry.get('sha256')}, but the "
                        f"report has {prov.get(f'{role}_sha256')}."
                    )
    return differences, checked


def check_pages(pdf: Path, document: Mapping[str, Any]) -> tuple[list[str], str | None]:
    """Rebuild the report from its embedded results and compare the bytes with ``pdf``.

    Only reports written by ``probity audit`` of this Probity version record
    what is needed to rebuild them (``provenance["report"]``).

    Returns
    -------
    (differences, checked)
        ``checked`` names the check, or is ``None`` when it could not be made.
    """
    from engine.report import ReportInput, render_report

    prov = document.get("provenance") or {}
    options = prov.get("report")
    if not isinstance(options, Mapping) or document.get("probity_version") != __version__:
        return [], None
    sections = options.get("sections")
    rebuilt = render_report(
        ReportInput.from_document(
            document,
            auditor=str(options.get("auditor") or ""),
            organisation=str(options.get("organisation") or ""),
            reviewer_notes=str(options.get("reviewer_notes") or ""),
            sections=None if sections is None else list(sections),
            local_rows=prov.get("explain_rows") or None,
        )
    )
    if rebuilt != Path(pdf).read_bytes():
        return [
            f"The pages of {Path(pdf).name} differ from the report rebuilt from its embedded results "
            "(edited after it was written, or built with other fonts or ReportLab)."
        ], _PAGES
    return [], _PAGES


def as_named(path: Path, recorded: Any, folder: Path) -> Path:
    """``path``, or a symbolic link to it in ``folder`` carrying the recorded file name when that differs."""
    name = Path(str(recorded or "")).name
    # The suffix decides how a file is read, so only a same-format file takes the recorded name.
    if not name or name in (".", "..") or name == path.name or Path(name).suffix.lower() != path.suffix.lower():
        return path
    folder.mkdir(exist_ok=True)
    link = folder / name
    try:
        link.symlink_to(path.resolve())
    except OSError:  # no symbolic links here (some Windows set-ups): names then show as differences
        return path
    return link


# ---------------------------------------------------------------------------
# Reading a report's embedded results within limits
# ---------------------------------------------------------------------------

_MAX_REF_HOPS = 32  # a reference to a reference ... (a loop never ends)
_MAX_NAME_TREE_NODES = 10_000
_FLATE_PIECE = 1 << 16
_FLATE_OUT = 1 << 20


def _report_error(pdf: Path, what: str) -> ProbityError:
    from engine.report.errors import ReportError

    return ReportError(f"{pdf.name} is not a PDF Probity can read back: {what}.", path=pdf)


def _resolve(doc: Any, value: Any, pdf: Path) -> Any:
    """``value`` with indirect references followed, at most :data:`_MAX_REF_HOPS` of them."""
    from engine.report.pdfread import Ref

    for _ in range(_MAX_REF_HOPS):
        if not isinstance(value, Ref):
            return value
        value = doc.object(value.num)
    raise _report_error(pdf, "its references loop")


def _lookup(doc: Any, value: Any, keys: Sequence[str], pdf: Path) -> Any:
    from engine.report.pdfread import Stream

    value = _resolve(doc, value, pdf)
    for key in keys:
        if isinstance(value, Stream):
            value = value.dict
        if not isinstance(value, dict) or key not in value:
            return None
        value = _resolve(doc, value[key], pdf)
    return value


def _attachment_stream(doc: Any, name: str, pdf: Path) -> Any:
    """The stream of the embedded file ``name``: the name tree walked without recursion, each node once."""
    from engine.report.pdfa import pdf_text
    from engine.report.pdfread import Stream

    catalog = _resolve(doc, doc.trailer.get("Root"), pdf)
    if not isinstance(catalog, dict):
        raise _report_error(pdf, "it has no document catalogue")
    todo = [_lookup(doc, catalog, ("Names", "EmbeddedFiles"), pdf)]
    seen: set[int] = set()  # the reader returns one object per number, so identity marks a node visited
    while todo:
        node = todo.pop()
        if not isinstance(node, dict) or id(node) in seen:
            continue
        seen.add(id(node))
        if len(seen) > _MAX_NAME_TREE_NODES:
            raise _report_error(pdf, f"its list of embedded files has more than {_MAX_NAME_TREE_NODES:,} nodes")
        names = _resolve(doc, node.get("Names"), pdf)
        if isinstance(names, list):
            for key, spec in zip(names[0::2], names[1::2]):
                if pdf_text(_resolve(doc, key, pdf)) == name:
                    stream = _lookup(doc, spec, ("EF", "UF"), pdf) or _lookup(doc, spec, ("EF", "F"), pdf)
                    if isinstance(stream, Stream):
                        return stream
        kids = _resolve(doc, node.get("Kids"), pdf)
        if isinstance(kids, list):
            todo.extend(_resolve(doc, kid, pdf) for kid in reversed(kids))
    return None


def _decoded(stream: Any, pdf: Path, limits: Limits) -> bytes:
    """A stream's bytes through its filters; inflating stops at the decompression limits."""
    import base64
    import re
    import zlib

    filters = stream.dict.get("Filter")
    names = [] if filters is None else [str(f) for f in filters] if isinstance(filters, list) else [str(filters)]
    data: bytes = stream.raw
    cap = limits.decompressed_cap(len(data))
    for filter_name in names:
        if filter_name == "FlateDecode":
            dec = zlib.decompressobj()
            out = bytearray()
            for start in range(0, len(data), _FLATE_PIECE):
                out += dec.decompress(data[start : start + _FLATE_PIECE], _FLATE_OUT)
                while dec.unconsumed_tail and len(out) <= cap:
                    out += dec.decompress(dec.unconsumed_tail, _FLATE_OUT)
                if len(out) > cap:
                    raise ProbityError(
                        limits.decompression_refusal(f"The results attached to {pdf.name}", len(stream.raw)), path=pdf
                    )
                if dec.eof:
                    break
            data = bytes(out)
        elif filter_name == "ASCII85Decode":
            body = re.sub(rb"\s", b"", data)
            body = body.removeprefix(b"<~").removesuffix(b"~>")
            data = base64.a85decode(body)
        else:
            raise _report_error(pdf, f"its attachment uses the unsupported filter {filter_name}")
    return data


def _check_xref_counts(data: bytes, pdf: Path) -> None:
    """Refuse cross-reference sections that claim more entries than the file holds.

    The reader walks each section entry by entry; a section header claiming 10**15
    entries would keep it busy for ever, so the counts are checked against the
    file's length first, reading the headers exactly as the reader does.
    """
    import re

    tail = re.search(rb"startxref\s+(\d+)\s*%%EOF\s*$", data[-64:])
    if tail is None:
        return  # the reader reports the missing marker
    pos = int(tail.group(1)) + len(b"xref")
    header = re.compile(rb"\s*(\d+)\s+(\d+)\s*\r?\n")
    while (match := header.match(data, pos)) is not None:
        pos = match.end() + 20 * int(match.group(2))
        if pos > len(data):
            raise _report_error(pdf, "its cross-reference table lists more objects than the file holds")


def read_report_results(pdf: Path, *, limits: Limits | None = None) -> dict[str, Any]:
    """The ``results.json`` document embedded in a Probity report, read within ``limits``.

    Like :func:`engine.report.extract_embedded_results`, for a PDF that may come from
    anyone: the file's size is checked before it is read (``max_report_bytes``), the
    attachment is inflated only up to the decompression limits, references and the
    embedded-file list are followed without recursion or loops, and the JSON may nest
    at most ``max_json_depth`` levels.

    Raises
    ------
    ProbityError
        One sentence naming the report and what is wrong or which limit it passes.
    """
    import zlib

    from engine.report.errors import ReportError
    from engine.report.pdfa import ATTACHMENT_NAME
    from engine.report.pdfread import PdfFile

    pdf = Path(pdf)
    limits = current_limits() if limits is None else limits
    try:
        size = pdf.stat().st_size
    except OSError as exc:
        raise ReportError(f"The report {pdf} cannot be read: {exc.strerror or exc}.", path=pdf) from None
    if size > limits.max_report_bytes:
        raise ReportError(
            f"{pdf.name} is {format_bytes(size)}, larger than {format_bytes(limits.max_report_bytes)}, the limit on "
            f"reports probity verify reads; {raise_hint('max_report_bytes')}.",
            path=pdf,
        )
    try:
        data = pdf.read_bytes()
    except OSError as exc:
        raise ReportError(f"The report {pdf} cannot be read: {exc.strerror or exc}.", path=pdf) from None
    try:
        _check_xref_counts(data, pdf)
        doc = PdfFile.from_bytes(data)
        stream = _attachment_stream(doc, ATTACHMENT_NAME, pdf)
        if stream is None:
            raise ReportError(f"{pdf.name} has no attached {ATTACHMENT_NAME}, so it is not a Probity report.", path=pdf)
        raw = _decoded(stream, pdf, limits)
    except ReportError as exc:
        if exc.path is not None:
            raise
        raise ReportError(f"{exc.message[:-1]} ({pdf.name}).", path=pdf) from None
    except RecursionError:
        raise _report_error(pdf, "its objects nest too deeply") from None
    except (ValueError, IndexError, KeyError, TypeError, AssertionError, zlib.error) as exc:
        # The reader is written for Probity's own output; damage surfaces as these.
        raise _report_error(pdf, f"it is damaged ({type(exc).__name__})") from None
    from engine.report.writer import decode_attached_results

    return decode_attached_results(raw, pdf, max_depth=limits.max_json_depth)


@dataclass(frozen=True)
class VerifyOutcome:
    """What :func:`verify_report` found.

    Attributes
    ----------
    differences: every difference, one sentence each (inputs, PDF integrity, then numbers).
    notes: what differs without counting as a difference (versions, hardware).
    checked: what was checked besides the numbers.
    n_numbers, n_results: numbers compared, and results in the report.
    n_within_tolerance: numbers equal only within ``rel_tol``.
    rel_tol: the relative tolerance used.
    """

    pdf: Path
    differences: tuple[str, ...]
    notes: tuple[str, ...]
    checked: tuple[str, ...]
    n_numbers: int
    n_results: int
    n_within_tolerance: int
    rel_tol: float

    @property
    def ok(self) -> bool:
        return not self.differences

    def lines(self, *, limit: int = MAX_LISTED) -> list[str]:
        """What the CLI prints on standard output."""
        if self.ok:
            exact = self.n_numbers - self.n_within_tolerance
            out = [f"verified: {self.n_numbers} numbers in {self.n_results} results match"]
            if self.n_within_tolerance == 0:
                out.append("  every number bit-identical")
            else:
                out.append(
                    f"  {exact} bit-identical, {self.n_within_tolerance} within the relative tolerance "
                    f"{self.rel_tol:g} allowed for float reductions whose order depends on BLAS threading"
                )
            if self.checked:
                out.append("  also checked: " + ", ".join(self.checked))
            return out
        out = list(self.differences[:limit])
        if len(self.differences) > limit:
            out.append(f"… and {len(self.differences) - limit} more differences")
        out.append(
            f"not verified: {len(self.differences)} difference{'s' if len(self.differences) != 1 else ''} "
            f"({self.n_numbers} numbers compared in {self.n_results} results)"
        )
        return out


def verify_report(
    pdf: Path,
    *,
    data: Path,
    model: Path,
    trusted_sha256: Sequence[str] = (),
    ctx: JobContext | None = None,
    rel_tol: float = DEFAULT_REL_TOL,
    granted_by: str = "cli verify --trust-model",
    limits: Limits | None = None,
    allow_unreviewed: bool = False,
) -> VerifyOutcome:
    """Verify a Probity report against the data and model files (see the module docstring).

    Parameters
    ----------
    pdf:
        The report.
    data, model:
        The files the report claims to describe.
    trusted_sha256:
        Model files (by SHA-256) the user trusts to be unpickled.
    ctx:
        Progress and cancel; its seed and random-stream path are replaced by the report's.
    rel_tol:
        Relative tolerance for floats (0: bit-identical).
    limits:
        How large a report may be, how far its results may inflate and nest
        (:func:`read_report_results`); default :func:`engine.limits.current_limits`.
    allow_unreviewed:
        Also load a trusted model file naming globals Probity has not reviewed
        (``--allow-unreviewed``), as the audit did.

    Raises
    ------
    ProbityError
        Exit 2 for a file that is not a Probity report or inputs that cannot be
        read; :class:`~engine.errors.UntrustedModelError` /
        :class:`~engine.errors.UnsafeModelError` (exit 3) for a model that may not be loaded.
    """
    pdf, data, model = Path(pdf), Path(data), Path(model)
    limits = current_limits() if limits is None else limits
    with using_limits(limits):
        return _verify_report(
            pdf,
            data=data,
            model=model,
            trusted_sha256=trusted_sha256,
            ctx=ctx,
            rel_tol=rel_tol,
            granted_by=granted_by,
            limits=limits,
            allow_unreviewed=allow_unreviewed,
        )


def _session_request(
    document: Mapping[str, Any],
    *,
    data: Path,
    model: Path,
    trusted_sha256: Sequence[str],
    allow_unreviewed: bool,
) -> Any:
    """What loading a session record's inputs takes: its roles, read options and seed, as an audit request."""
    from engine.audit import AuditRequest
    from engine.schema import ReadOptions

    params = (document.get("provenance") or {}).get("parameters")
    if not isinstance(params, Mapping) or "target" not in params:
        raise ProbityError("The results document records no session parameters (provenance.parameters).")
    features = params.get("features")
    return AuditRequest(
        data=Path(data),
        model=Path(model),
        target=str(params["target"]),
        sensitive=tuple(params.get("sensitive") or ()),
        features=None if features is None else tuple(features),
        seed=int(params.get("seed") or 0),
        trusted_sha256=tuple(trusted_sha256),
        allow_unreviewed=allow_unreviewed,
        read_options=ReadOptions.from_dict(params.get("read_options") or {}),
        analyses=(),
        measure_times=False,
    )


def _rerun_session(recorded: Mapping[str, Any], inputs: Any, ctx: JobContext, *, command: Any) -> dict[str, Any]:
    """A session record made again: each result from its recorded call, the derived agreement anew.

    The record's own facts (times, report options, parameters) are kept as
    recorded; every number comes from the re-run.
    """
    from engine.hardware import describe_hardware
    from engine.record import AuditRecord, ReportOptions
    from engine.report import results_json_bytes
    from engine.rerun import replay

    prov = recorded.get("provenance") or {}
    raw = recorded.get("results") or {}
    made: dict[str, Result] = {}
    keys = [str(k) for k in raw]
    for i, key in enumerate(keys):
        data = raw[key]
        result_prov = data.get("provenance") if isinstance(data, Mapping) else None
        call = result_prov.get("call") if isinstance(result_prov, Mapping) else None
        if isinstance(data, Mapping) and data.get("kind") == "method_agreement":
            continue  # derived below, from the re-run results
        if not isinstance(call, Mapping):
            raise ProbityError(f"The result {key} of the report records no call, so it cannot be re-run.")
        assert isinstance(result_prov, Mapping)
        ctx.progress(i / max(1, len(keys)), f"Re-running {key}")
        made[key] = replay(inputs, call, seed=int(result_prov.get("seed") or 0), ctx=ctx.sub(0.0, 1.0))
    report = prov.get("report")
    dataset = inputs.dataset
    assert dataset is not None
    record = AuditRecord(
        kind="session",
        dataset=dataset,
        roles=inputs.roles,
        model=inputs.model,
        results={},
        seed=int(prov.get("seed") or 0),
        parameters=dict(prov.get("parameters") or {}),
        started_at=str(prov.get("started_at")),
        finished_at=prov.get("finished_at"),
        data_path=dataset.path,
        model_path=inputs.model.path,
        explain_rows=tuple(int(r) for r in prov.get("explain_rows") or ()),
        hardware=describe_hardware(inputs.model),
        report=ReportOptions.from_dict(report) if isinstance(report, Mapping) else None,
    )
    from engine.plan import method_agreement_of

    # The rankings the report compared (a report written before a ranking joined the figure is re-derived as it was).
    compared = [
        str(m)
        for data in raw.values()
        if isinstance(data, Mapping) and data.get("kind") == "method_agreement"
        for m in data.get("methods") or ()
    ]
    agreement = method_agreement_of(
        list(made.values()), seed=record.seed, dataset=dataset, model=inputs.model, rankings=compared or None
    )
    ordered: dict[str, Result] = {}
    for key in keys:
        if key in made:
            ordered[key] = made[key]
        elif agreement is not None:
            ordered[key] = agreement
    record = dataclasses.replace(record, results=ordered)
    document: dict[str, Any] = json.loads(results_json_bytes(record.to_document(command=command)))
    return document


def _verify_report(
    pdf: Path,
    *,
    data: Path,
    model: Path,
    trusted_sha256: Sequence[str],
    ctx: JobContext | None,
    rel_tol: float,
    granted_by: str,
    limits: Limits,
    allow_unreviewed: bool,
) -> VerifyOutcome:
    from engine.audit import AuditRequest, audit_document, load_inputs, run_audit
    from engine.report import results_json_bytes

    ctx = ctx or JobContext()
    if not 0.0 <= rel_tol or not math.isfinite(rel_tol):
        raise ProbityError(f"The tolerance must be a non-negative number, not {rel_tol!r}.")
    ctx.progress(0.0, f"Reading {pdf.name}")
    recorded = read_report_results(pdf, limits=limits)
    for path, what in ((data, "data"), (model, "model")):
        if not path.is_file():
            raise ProbityError(f"The {what} file {path} does not exist.", path=path)
    prov = recorded.get("provenance") or {}
    session = isinstance(prov, Mapping) and prov.get("kind") == "session"
    if session:
        request = _session_request(
            recorded, data=data, model=model, trusted_sha256=trusted_sha256, allow_unreviewed=allow_unreviewed
        )
    else:
        request = AuditRequest.from_document(
            recorded, data=data, model=model, trusted_sha256=trusted_sha256, allow_unreviewed=allow_unreviewed
        )
    differences = check_input_files(recorded, data=data, model=model)
    companion_differences, checked = check_companions(pdf, recorded)
    checked = ["data and model SHA-256", *checked]

    # The audit's random streams hang off the root of its seed (the CLI's context); so must the re-run's,
    # whatever sub-task of the caller (the GUI's runner) this verification is.
    run_ctx = dataclasses.replace(ctx, seed=request.seed, path=()).sub(0.0, 0.85)
    command = prov.get("command")
    try:
        # A recorded --device replays on that device where it exists here, else on the CPU (the devices
        # each result records differ then, which the comparison notes).
        replayed = replay_device(request.device) if request.device else None
        with tempfile.TemporaryDirectory(prefix="probity-verify-") as tmp, preferred_device(replayed):
            # Results name the files in their messages ("… in credit.csv"); a copy kept under another
            # name must not read as a difference, so the re-run sees the recorded names.
            inputs = load_inputs(
                as_named(data, prov.get("data_file"), Path(tmp) / "data"),
                as_named(model, prov.get("model_file"), Path(tmp) / "model"),
                target=request.target,
                sensitive=request.sensitive,
                features=request.features,
                trusted_sha256=request.trusted_sha256,
                read_options=request.read_options,
                granted_by=granted_by,
                allow_unreviewed=request.allow_unreviewed,
                ctx=run_ctx.sub(0.0, 0.1),
            )
            if session:
                rerun = _rerun_session(recorded, inputs, run_ctx.sub(0.1, 1.0), command=command)
            else:
                outcome = run_audit(request, run_ctx, inputs=inputs)
                rerun = json.loads(results_json_bytes(audit_document(outcome, command=command)))
    except ProbityError as exc:
        if exc.exit_code == 3 or not differences:
            raise
        # The files are not the audited ones and cannot even be audited: that is the difference.
        return VerifyOutcome(
            pdf=pdf,
            differences=(
                *differences,
                *companion_differences,
                f"The audit could not be re-run on these files: {exc.message}",
            ),
            notes=(),
            checked=tuple(checked),
            n_numbers=0,
            n_results=len(recorded.get("results") or {}),
            n_within_tolerance=0,
            rel_tol=rel_tol,
        )
    # The command is what the report says regenerates it, not a computed value; reports written before
    # commands were recorded without paths keep theirs as written.
    rerun["provenance"]["command"] = command
    comparison = compare_documents(recorded, rerun, rel_tol=rel_tol)

    ctx.progress(0.9, "Rebuilding the report's pages")
    page_differences, pages = check_pages(pdf, recorded)
    if pages is not None:
        checked.append(pages)
    ctx.progress(1.0, "Done")
    return VerifyOutcome(
        pdf=pdf,
        differences=(*differences, *companion_differences, *page_differences, *comparison.differences),
        notes=comparison.notes,
        checked=tuple(checked),
        n_numbers=comparison.n_numbers,
        n_results=len(recorded.get("results") or {}),
        n_within_tolerance=comparison.n_within_tolerance,
        rel_tol=rel_tol,
    )

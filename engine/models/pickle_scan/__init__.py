"""Static safety scan of pickle and joblib files: what a file would import, never unpickled.

Unpickling runs code: every ``GLOBAL``/``STACK_GLOBAL``/``INST`` opcode imports
a module attribute, and ``REDUCE``/``NEWOBJ``/``BUILD`` call it.  This module
walks the opcode stream of every pickle in a file with a small *symbolic*
machine (constants are tracked, everything else is an opaque placeholder) and
reports the globals the file would import, without importing or calling any
of them.

Why a symbolic machine rather than a flat opcode listing:

* ``STACK_GLOBAL`` takes its module and name from the stack; they may come
  from the memo (``BINGET``) or be computed by an earlier call.  Only constant
  strings can be named; anything else is refused.
* joblib writes raw numpy array bytes *inside* the pickle stream, right after
  the ``BUILD`` of a ``joblib.numpy_pickle.NumpyArrayWrapper``.  To find the
  opcodes after an array we must skip exactly the bytes joblib will read, which
  needs the wrapper's shape and dtype.  Anything that could make our idea of
  the array size differ from joblib's is refused rather than guessed, because
  a mismatch would let opcodes hide inside "array bytes".

Every global is classified by Probity's allowlist policy
(:mod:`engine.models.pickle_policy`): *reviewed*, *unreviewed* or *dangerous*.
The scan is conservative: a file is ``"refused"`` when it names anything
dangerous, when it changes an object it imports, when ``functools.partial``
binds anything not reviewed, or when part of it cannot be checked; otherwise
it ``"needs-trust"``: loading it still runs the code of the classes it names,
so the user must trust that exact file, and where it names unreviewed globals
(:attr:`PickleScan.unreviewed`) the user must also acknowledge them.

The package: :mod:`~engine.models.pickle_scan.streams` reads the bytes (plain,
or inflated from joblib's compressed containers within the limits),
:mod:`~engine.models.pickle_scan.machine` runs the opcodes on the values of
:mod:`~engine.models.pickle_scan.symbolic`, and this module holds the result
(:class:`PickleScan`) and the entry points.  Which globals are reviewed,
unreviewed or dangerous is decided in :mod:`engine.models.pickle_policy` alone.
"""

from __future__ import annotations

import dataclasses
import mmap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import ModelError
from engine.limits import DEFAULT_LIMITS, Limits, current_limits, raise_hint
from engine.models.pickle_policy import DANGEROUS, JOBLIB_ARRAY_WRAPPER, REVIEWED, UNREVIEWED, danger_reason
from engine.models.pickle_scan.machine import Machine, Refuse
from engine.models.pickle_scan.streams import (
    JOBLIB_LEGACY_PREFIX,
    Bomb,
    Damaged,
    MemoryReader,
    StreamReader,
    compression_of,
    inflate,
)
from engine.models.pickle_scan.symbolic import Budget, Findings

__all__ = [
    "PickleScan",
    "scan_pickle",
    "scan_pickle_bytes",
    "danger_reason",
    "MAX_DECOMPRESSED_BYTES",
    "JOBLIB_ARRAY_WRAPPER",
]

#: Largest decompressed size of a compressed joblib file scanned by default (bytes); see
#: :class:`engine.limits.Limits` for this limit, the compression ratio and the step budget.
MAX_DECOMPRESSED_BYTES = DEFAULT_LIMITS.max_decompressed_bytes

_VERDICT_REFUSED = "refused"
_VERDICT_NEEDS_TRUST = "needs-trust"


# ---------------------------------------------------------------------------
# Result
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PickleScan:
    """What a pickle/joblib file would import, found without unpickling it.

    Attributes
    ----------
    format: the container: ``"pickle"`` (plain pickle stream[s]), ``"joblib"``
        (pickle with raw numpy arrays inside), or ``"joblib+zlib"``, ``"joblib+gzip"``,
        ``"joblib+bz2"``, ``"joblib+lzma"``, ``"joblib+xz"``, ``"joblib+lz4"``.
    imports: every global the file names, as ``"module.qualname"``, sorted, unique.
    dangerous: the subset of ``imports`` able to run commands or code.
    verdict: ``"refused"`` (never loaded, whatever the user trusts) or ``"needs-trust"``.
    notes: plain-language findings (unresolvable imports, damage, array payloads ...).
    pickles: number of complete pickle streams found one after another.
    array_payloads: number of raw numpy array payloads skipped (joblib).
    sklearn_versions: the ``_sklearn_version`` values found in estimator states.
    unreviewed: the subset of ``imports`` the policy rates unreviewed (loading them needs
        ``allow_unreviewed`` on top of trust).
    reviewed: the subset of ``imports`` on Probity's reviewed list.
    reasons: ``(name, status, reason)`` for every import, in the order of ``imports``.
    steps: the work the scan did: opcodes run plus links between objects followed
        (linear in the file size; bounded by ``Limits.max_pickle_scan_steps``).
    """

    format: str
    imports: tuple[str, ...]
    dangerous: tuple[str, ...]
    verdict: str
    notes: tuple[str, ...]
    pickles: int = 1
    array_payloads: int = 0
    sklearn_versions: tuple[str, ...] = ()
    unreviewed: tuple[str, ...] = ()
    reviewed: tuple[str, ...] = ()
    reasons: tuple[tuple[str, str, str], ...] = ()
    steps: int = 0

    @property
    def refused(self) -> bool:
        return self.verdict == _VERDICT_REFUSED

    @property
    def needs_allow_unreviewed(self) -> bool:
        """Whether loading needs the explicit acknowledgement of unreviewed globals, besides trust."""
        return not self.refused and bool(self.unreviewed)

    def status_of(self, name: str) -> str:
        """``"reviewed"``, ``"unreviewed"`` or ``"dangerous"`` for one of :attr:`imports`."""
        if name in self.dangerous:
            return DANGEROUS
        return UNREVIEWED if name in self.unreviewed else REVIEWED

    @property
    def uses_joblib(self) -> bool:
        """Whether ``joblib.load`` (not ``pickle.loads``) reads this file as scanned."""
        return self.format != "pickle"

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "imports": list(self.imports),
            "dangerous": list(self.dangerous),
            "verdict": self.verdict,
            "notes": list(self.notes),
            "pickles": self.pickles,
            "array_payloads": self.array_payloads,
            "sklearn_versions": list(self.sklearn_versions),
            "unreviewed": list(self.unreviewed),
            "reviewed": list(self.reviewed),
            "status": {name: self.status_of(name) for name in self.imports},
        }


# ---------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------


def _scan(buf: bytes | mmap.mmap, name: str, path: Path | None, limits: Limits) -> PickleScan:
    head = bytes(buf[:8])
    if not head:
        raise ModelError(f"{name} is empty, so it is not a pickle or joblib file.", path=path)
    if head.startswith(JOBLIB_LEGACY_PREFIX):
        raise ModelError(
            f"{name} uses the joblib format of versions before 0.9.3, which Probity does not read.", path=path
        )
    compression = compression_of(head)
    reader: MemoryReader | StreamReader
    if compression is None:
        reader = MemoryReader(buf)
    else:
        if compression == "lz4":
            try:
                import lz4.frame  # noqa: F401
            except ImportError:
                raise ModelError(
                    f"{name} is LZ4-compressed, which needs the lz4 package that is not installed.", path=path
                ) from None
        reader = StreamReader(inflate(buf, compression, limits.decompressed_cap(len(buf))))
    findings = Findings(limits.max_pickle_scan_steps)
    machine = Machine(reader, findings, joblib=True)
    damage: str | None = None
    try:
        while True:
            machine.run_one()
            findings.pickles += 1
            if reader.at_eof():
                break
    except Damaged as exc:
        damage = str(exc)
    except Refuse as exc:
        findings.refuse(str(exc))
    except Bomb:
        raise ModelError(limits.decompression_refusal(name, len(buf)), path=path) from None
    except Budget:
        raise ModelError(
            f"{name} needs more than {limits.max_pickle_scan_steps:,} steps to check (opcodes and links between "
            f"the objects it builds), far more than models of its size need, so Probity does not open it; "
            f"{raise_hint('max_pickle_scan_steps')}.",
            path=path,
        ) from None
    except RecursionError:  # pragma: no cover - the machine is iterative; belt and braces
        damage = "it nests too deeply"

    if damage is not None:
        if findings.dangerous:
            findings.refuse(f"its pickle data is damaged ({damage})")
        elif findings.pickles == 0:
            if compression is None and not findings.imports and machine.proto == 0:
                raise ModelError(f"{name} is not a pickle or joblib file.", path=path)
            raise ModelError(f"{name} is a damaged pickle: {damage}.", path=path)
        else:
            findings.refuse(
                f"the bytes after its first {findings.pickles} pickle(s) are not a readable pickle ({damage}), "
                "so they cannot be checked"
            )

    if compression is not None:
        fmt = f"joblib+{compression}"
    elif findings.wrapper_seen or findings.array_payloads:
        fmt = "joblib"
    else:
        fmt = "pickle"
    notes = list(findings.notes)
    for full in sorted(findings.dangerous):
        notes.append(f"{full}: {findings.reasons.get(full, 'able to run code')}")
    if findings.pickles > 1:
        notes.append(f"the file holds {findings.pickles} pickles one after another; all were scanned")
    if findings.array_payloads:
        notes.append(f"{findings.array_payloads} raw numpy array payload(s) were skipped by their declared size")
    refused = findings.refused or bool(findings.dangerous)
    imports = tuple(sorted(findings.imports))
    unreviewed = tuple(sorted(findings.unreviewed - findings.dangerous))
    reviewed = tuple(name for name in imports if name not in findings.dangerous and name not in findings.unreviewed)
    for full in unreviewed:
        notes.append(f"{full}: unreviewed - {findings.reasons.get(full, 'not on the reviewed list')}")
    reasons = tuple(
        (name, status, findings.reasons.get(name, "on Probity's reviewed list"))
        for name in imports
        for status in (DANGEROUS if name in findings.dangerous else UNREVIEWED if name in unreviewed else REVIEWED,)
    )
    return PickleScan(
        format=fmt,
        imports=imports,
        dangerous=tuple(sorted(findings.dangerous)),
        verdict=_VERDICT_REFUSED if refused else _VERDICT_NEEDS_TRUST,
        notes=tuple(notes),
        pickles=findings.pickles,
        array_payloads=findings.array_payloads,
        sklearn_versions=tuple(sorted(findings.sklearn_versions)),
        unreviewed=unreviewed,
        reviewed=reviewed,
        reasons=reasons,
        steps=findings.steps,
    )


def _limits(limits: Limits | None, max_decompressed_bytes: int | None) -> Limits:
    limits = current_limits() if limits is None else limits
    if max_decompressed_bytes is not None:
        limits = dataclasses.replace(limits, max_decompressed_bytes=max_decompressed_bytes)
    return limits


def scan_pickle_bytes(
    data: bytes,
    *,
    name: str = "The data",
    path: str | Path | None = None,
    max_decompressed_bytes: int | None = None,
    limits: Limits | None = None,
) -> PickleScan:
    """Scan an in-memory pickle/joblib file; see :func:`scan_pickle`.

    Parameters
    ----------
    data: the file's bytes (the very bytes that will be loaded, to avoid a
        time-of-check/time-of-use gap).
    name: how error messages name the data (usually the file name).
    """
    return _scan(data, name, None if path is None else Path(path), _limits(limits, max_decompressed_bytes))


def scan_pickle(
    path: str | Path,
    *,
    max_decompressed_bytes: int | None = None,
    limits: Limits | None = None,
) -> PickleScan:
    """List what a pickle or joblib file imports, and whether Probity refuses it. Never unpickles.

    Parameters
    ----------
    path: a pickle (protocol 0-5, possibly several concatenated) or a joblib file
        (plain or zlib/gzip/bz2/lzma/xz/lz4-compressed).
    max_decompressed_bytes: cap on the decompressed size of compressed files (bytes),
        overriding ``limits.max_decompressed_bytes``.
    limits: the decompression limits (size and ratio) and the step budget; default
        :func:`engine.limits.current_limits`.  A file beyond them raises :class:`ModelError`.

    Returns
    -------
    PickleScan

    Raises
    ------
    ModelError
        The file is missing, empty, not a pickle or joblib file, damaged before any
        import could be read, decompresses beyond the limits, or needs more steps than
        the budget.
    """
    path = Path(path)
    limits = _limits(limits, max_decompressed_bytes)
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        raise ModelError(f"{path.name} does not exist.", path=path) from None
    except IsADirectoryError:
        raise ModelError(f"{path.name} is a folder, not a model file.", path=path) from None
    except OSError as exc:
        raise ModelError(f"{path.name} cannot be read ({exc.strerror or exc}).", path=path) from None
    with handle:
        try:
            size = path.stat().st_size
        except OSError:
            size = 0
        if size == 0:
            return _scan(b"", path.name, path, limits)
        # A read-only map lets large array payloads be skipped without reading them.
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            return _scan(buf, path.name, path, limits)

"""The audit's own settings, declared once: :data:`AUDIT_OPTIONS`.

Each setting the audit chooses for the methods it runs (permutation repeats,
LIME samples, the rows it explains ...) is one :class:`AuditOption`: the field
of :class:`engine.audit.AuditRequest`, the ``probity audit`` flag and its help,
where ``results.json`` records it and how it is read back, and the command line
the desktop app records for an export.  Nothing else lists them.  This module
imports nothing heavy: the command line's parser is built from it on every start.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine.device import DEVICE_CHOICES
from engine.errors import ProbityError

__all__ = ["AuditOption", "AUDIT_OPTIONS", "option_defaults", "record_at", "recorded_at"]


@dataclass(frozen=True)
class AuditOption:
    """One of the audit's own settings, declared once for every place that names it.

    The request's field (:class:`AuditRequest`), ``probity audit``'s flag, where
    ``provenance.parameters`` records it (``record``: a key path), how
    :meth:`AuditRequest.from_document` reads it back, and the command line the
    GUI records all come from this table (:data:`AUDIT_OPTIONS`).

    ``default`` ``None`` with ``method_default`` takes that method parameter's
    default from its descriptor (:meth:`AuditRequest.resolved`); ``minimum`` and
    ``maximum`` (strict bounds with ``exclusive``) are checked wherever a value
    comes in.  A ``repeatable`` flag may be given once per item (``--reference
    sex=F --reference race=White``); the items are kept as one text joined by
    ``"; "``, as the method parameter it sets reads them.  An option of an
    ``analysis`` is recorded only when the audit runs that analysis, so an audit
    recorded before the analysis existed re-runs to the same record.  ``choices``
    lists the values the flag takes; an option ``recorded_when_set`` is recorded
    only when given (not ``None``), so an audit recorded before it existed
    re-runs to the same record too.
    """

    field: str
    flag: str
    record: tuple[str, ...]
    type: type
    default: Any
    help: str
    metavar: str = "N"
    group: str = "computation"
    minimum: float | None = None
    why: str = ""
    label: str = ""
    method_default: tuple[str, str] | None = None
    maximum: float | None = None
    exclusive: bool = False
    repeatable: bool = False
    analysis: str | None = None
    choices: tuple[str, ...] = ()
    recorded_when_set: bool = False

    def check(self, value: Any) -> None:
        """Refuse a value outside :attr:`minimum` and :attr:`maximum`, or not among :attr:`choices`, with the
        sentence the CLI and the GUI show."""
        if self.choices and value is not None and value not in self.choices:
            listed = ", ".join(repr(c) for c in self.choices)
            raise ProbityError(f"{self.flag} must be one of {listed}, got {value!r}.")
        if value is None or (self.minimum is None and self.maximum is None):
            return
        lo, hi = self.minimum, self.maximum
        if lo is not None and hi is not None:
            between = "strictly between" if self.exclusive else "from"
            wanted = f"{between} {lo:g} {'and' if self.exclusive else 'to'} {hi:g}"
        else:
            wanted = f"at least {lo}" if lo is not None else f"at most {hi}"
        try:
            number = float(value)  # the desktop app's text fields give text
        except (TypeError, ValueError):
            raise ProbityError(f"{self.flag} must be a number {wanted}{self.why}, got {value!r}.") from None
        if self.exclusive:
            bad = (lo is not None and not number > lo) or (hi is not None and not number < hi)
        else:
            bad = (lo is not None and number < lo) or (hi is not None and number > hi)
        if bad:
            raise ProbityError(f"{self.flag} must be {wanted}{self.why}, got {value}.")

    def argparse_kwargs(self) -> dict[str, Any]:
        """What ``probity audit``'s parser is given for this option's flag."""
        kwargs: dict[str, Any] = {
            "type": self.type,
            "default": self.default,
            "metavar": self.metavar,
            "help": self.help,
        }
        if self.repeatable:
            kwargs["action"] = _Joined
        if self.choices:
            kwargs["choices"] = self.choices
        return kwargs


class _Joined(argparse.Action):
    """A repeatable flag whose items are kept as one text, joined by ``"; "``."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        before = getattr(namespace, self.dest, None)
        item = str(values)
        setattr(namespace, self.dest, f"{before}; {item}" if before else item)


#: The audit's own settings (the methods' parameters it sets), in the order they are recorded.
AUDIT_OPTIONS: tuple[AuditOption, ...] = (
    AuditOption(
        "n_repeats",
        "--n-repeats",
        ("permutation", "n_repeats"),
        int,
        None,
        "permutation repeats per feature (default: permutation importance's own)",
        minimum=2,
        why=" to estimate a spread",
        method_default=("permutation", "n_repeats"),
        label="Permutation repeats",
    ),
    AuditOption(
        "scoring",
        "--scoring",
        ("permutation", "scoring"),
        str,
        None,
        "permutation scoring (default: accuracy or r2)",
        metavar="SCORING",
        label="Permutation scoring",
    ),
    AuditOption(
        "device",
        "--device",
        ("device",),
        str,
        None,
        "where torch models, ONNX models (with onnxruntime's CUDA provider), TreeSHAP and the gradient "
        "methods compute: auto (a CUDA GPU when there is one, the default), cpu or cuda; recorded, and "
        "probity verify re-runs on it (on the CPU, noted, where it is missing)",
        metavar="DEVICE",
        label="Compute device",
        choices=DEVICE_CHOICES,
        recorded_when_set=True,
    ),
    AuditOption(
        "explain_rows",
        "--explain-rows",
        ("explain_rows",),
        str,
        "first:5",
        "rows LIME and SHAP explain for the local-explanations section: '3,17', '0-4', 'first:N', 'random:N' "
        "(default first:5)",
        metavar="SPEC",
        group="the report",
        label="Instances to explain",
    ),
    AuditOption(
        "lime_samples",
        "--lime-samples",
        ("lime", "num_samples"),
        int,
        None,
        "perturbed samples per LIME explanation (default: LIME's own)",
        group="sample sizes (advanced)",
        minimum=10,
        method_default=("lime", "num_samples"),
        label="LIME samples",
    ),
    AuditOption(
        "cluster_rows",
        "--cluster-rows",
        ("clusters", "rows"),
        str,
        "random:300",
        "rows whose SHAP values are clustered (default random:300)",
        metavar="SPEC",
        group="sample sizes (advanced)",
        label="Clustered rows",
    ),
    AuditOption(
        "dependence_features",
        "--dependence-features",
        ("dependence", "top_features"),
        int,
        None,
        "partial dependence and ICE curves for this many of the features permutation importance ranks highest "
        "(default: the dependence analysis's own, 3)",
        group="sample sizes (advanced)",
        minimum=1,
        label="Dependence features",
        method_default=("dependence", "top"),
    ),
    AuditOption(
        "favourable",
        "--favourable",
        ("fairness", "favourable"),
        str,
        None,
        "the outcome that is good for the person: a class of a classifier, or 'high' or 'low' for a regressor "
        "(default: the second class of a binary model, else the first; 'high' for a regressor)",
        metavar="CLASS",
        group="fairness",
        label="Favourable outcome",
        analysis="fairness",
    ),
    AuditOption(
        "reference",
        "--reference",
        ("fairness", "reference"),
        str,
        None,
        "the group a sensitive attribute is compared with, as ATTR=GROUP; repeat it for each attribute "
        "(default: the attribute's largest group)",
        metavar="ATTR=GROUP",
        group="fairness",
        label="Reference groups",
        repeatable=True,
        analysis="fairness",
    ),
    AuditOption(
        "threshold",
        "--threshold",
        ("fairness", "threshold"),
        float,
        None,
        "decision threshold of a binary classifier for the fairness figures: P(favourable) above it is a "
        "favourable decision (default: the fairness analysis's own)",
        metavar="P",
        group="fairness",
        minimum=0,
        maximum=1,
        exclusive=True,
        method_default=("fairness", "threshold"),
        label="Decision threshold",
        analysis="fairness",
    ),
)


def option_defaults() -> dict[str, Any]:
    """Each option's default, by :class:`~engine.audit.AuditRequest` field."""
    return {o.field: o.default for o in AUDIT_OPTIONS}


def record_at(tree: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    """Put ``value`` at the key path ``path`` of ``tree``, making the nested mappings on the way."""
    for key in path[:-1]:
        tree = tree.setdefault(key, {})
    tree[path[-1]] = value


def recorded_at(tree: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    """The value at the key path ``path`` of ``tree``; ``None`` where the path is missing."""
    value: Any = tree
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value

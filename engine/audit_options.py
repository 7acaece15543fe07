"""The audit's own settings, declared once: :data:`AUDIT_OPTIONS`.

Each setting the audit chooses for the methods it runs (permutation repeats,
LIME samples, the rows it explains ...) is one :class:`AuditOption`: the field
of :class:`engine.audit.AuditRequest`, the ``probity audit`` flag and its help,
where ``results.json`` records it and how it is read back, and the command line
the desktop app records for an export.  Nothing else lists them.  This module
imports nothing heavy: the command line's parser is built from it on every start.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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
    default from its descriptor (:meth:`AuditRequest.resolved`); ``minimum`` is
    checked wherever a value comes in.
    """

    field: str
    flag: str
    record: tuple[str, ...]
    type: type
    default: Any
    help: str
    metavar: str = "N"
    group: str = "computation"
    minimum: int | None = None
    why: str = ""
    label: str = ""
    method_default: tuple[str, str] | None = None

    def check(self, value: Any) -> None:
        """Refuse a value under :attr:`minimum` with the sentence the CLI and the GUI show."""
        if value is not None and self.minimum is not None and value < self.minimum:
            raise ProbityError(f"{self.flag} must be at least {self.minimum}{self.why}, got {value}.")


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
        3,
        "partial dependence and ICE curves for this many of the features permutation importance ranks highest "
        "(default 3)",
        group="sample sizes (advanced)",
        minimum=1,
        label="Dependence features",
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

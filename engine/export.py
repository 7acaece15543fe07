"""The ``probity explain`` JSON document, built from any analysis result."""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.attribution import AttributionResult
from engine.results import Result, to_jsonable

__all__ = ["explain_document"]


def _per_row(quality: dict[str, np.ndarray], n_rows: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = [{} for _ in range(n_rows)]
    for name, values in quality.items():
        values = np.asarray(values)
        if values.shape[:1] != (n_rows,):
            continue
        for i, v in enumerate(to_jsonable(values)):
            rows[i][name] = v
    return rows


def explain_document(result: Result, *, method: str, compute_seconds: float) -> dict[str, Any]:
    """The documented keys (``feature_names``, ``rows``, ``values``, ``base_values``, per-row
    ``quality``, ``provenance``, ``timing.compute_seconds``) plus the full result under ``result``.

    Local explanations fill every key; global analyses fill what they define
    (permutation importance: one row of mean importances, ``rows`` null).
    """
    doc: dict[str, Any] = {
        "method": method,
        "feature_names": None,
        "rows": None,
        "values": None,
        "base_values": None,
        "quality": None,
        "summary": None,
        "output": None,
        "provenance": result.provenance.to_dict(),
        "timing": {"compute_seconds": compute_seconds},
        "warnings": list(result.warnings),
        "result": result.to_dict(),
    }
    if isinstance(result, AttributionResult):
        doc.update(
            feature_names=list(result.feature_names),
            rows=to_jsonable(result.rows),
            values=to_jsonable(result.values),
            base_values=None if result.base_values is None else to_jsonable(result.base_values),
            quality=_per_row(dict(result.quality), len(result.rows)),
            summary=to_jsonable(dict(result.summary)),
            output={
                "name": result.output_name,
                "space": result.output_space,
                "class_index": result.class_index,
                "predictions": to_jsonable(result.predictions),
            },
        )
        if result.compute_seconds > 0:
            doc["timing"]["compute_seconds"] = result.compute_seconds
    elif result.kind == "permutation_importance":
        perm: Any = result  # a PermutationImportanceResult, by its kind
        doc.update(
            feature_names=list(perm.feature_names),
            values=[to_jsonable(perm.mean)],
            summary={"scoring": perm.scoring, "baseline_score": to_jsonable(perm.baseline_score)},
        )
    else:
        # Only data fields count: a result may have a method of that name (group metrics' rows(attribute)).
        names = getattr(result, "feature_names", None)
        if isinstance(names, (tuple, list)):
            doc["feature_names"] = list(names)
        rows = getattr(result, "rows", None)
        if isinstance(rows, (np.ndarray, tuple, list)):
            doc["rows"] = to_jsonable(rows)
    return doc

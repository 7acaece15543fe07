"""The closing sections: methodology, limitations, reproducibility and the reviewer's notes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from reportlab.lib.units import mm
from reportlab.platypus import CondPageBreak, Flowable, PageBreak, Spacer

from engine.explain.fairness import FairnessResult
from engine.report.facts import Facts
from engine.report.formats import clip, computed_text, escape, flatten, format_date, json_value
from engine.report.header import RecordHeader, Scalar
from engine.report.layout import bullets, kv_table, markup, para, section_heading, sub, table, warnings
from engine.report.names import verbatim
from engine.report.pdfa import ATTACHMENT_NAME
from engine.report.sections.fairness import definitions
from engine.report.texts import GENERAL_LIMITATIONS, METHOD_DESCRIPTIONS, METHOD_TITLES
from engine.results import Result

__all__ = ["methodology", "limitations", "reproducibility", "reviewer_notes"]


def _settings_rows(facts: Facts, params: Mapping[str, Any]) -> list[list[Any]]:
    """The audit's parameters as table rows, the requested features shown against the model's inputs.

    The ``features`` parameter is what was asked for; the model may take other
    columns.  The table lists the model's inputs under that name and any
    requested column the model ignores separately, so no ignored column is
    shown as a feature.
    """
    rows: list[list[Any]] = []
    inputs = facts.model_inputs()
    requested = facts.header.requested_features
    for key, value in flatten(params):
        if key != "features":
            rows.append([key, value])
            continue
        source = "named by the model file" if facts.inputs_named_by_model() else "the columns chosen as features"
        rows.append(["model inputs", clip(f"{', '.join(inputs)} ({len(inputs)}, {source})")])
        ignored = [c for c in requested or () if c not in set(inputs)]
        if requested is None:
            rows.append(["features (as requested)", "not given: the model's own input columns"])
        elif ignored:
            rows.append(
                [
                    "requested but not model inputs",
                    clip(
                        f"{', '.join(ignored)} (the model does not take "
                        f"{'it' if len(ignored) == 1 else 'them'}; not used)"
                    ),
                ]
            )
    return rows


def methodology(facts: Facts, number: int) -> list[Flowable]:
    out = [PageBreak()] + section_heading("methodology", number)
    w = facts.width
    params = facts.header.parameters
    out.append(
        para(
            "Each analysis below lists every parameter recorded in its provenance, so a reader can recompute it. "
            f"All random choices derive from the seed {facts.header.seed}."
        )
    )
    if params:
        title = "Session settings" if facts.from_session else "Audit settings"
        out.append(sub(title, "s-methodology-audit"))
        rows: list[list[Any]] = [["Parameter", "Value"]] + _settings_rows(facts, params)
        out.append(table(rows, [w * 0.38, w * 0.62], mono=(1,)))
    for key, result in facts.all_results:
        prov = result.provenance
        name = prov.method or key
        title = METHOD_TITLES.get(name, name)
        block: list[Flowable] = [sub(f"{title} ({name})", f"s-methodology-{key}")]
        description = METHOD_DESCRIPTIONS.get(name)
        if description:
            block.append(para(description))
        rows = [["Parameter", "Value"]] + [[k, v] for k, v in flatten(dict(prov.parameters))]
        rows.append(["seed", json_value(prov.seed)])
        rows.append(["computed", computed_text(prov.started_at, prov.finished_at)])
        block.append(table(rows, [w * 0.38, w * 0.62], mono=(1,)))
        if isinstance(result, FairnessResult):
            block += [Spacer(1, 2 * mm), *definitions(result, facts)]
        out.append(CondPageBreak(45 * mm))
        out += block
    return out


def limitations(facts: Facts, number: int) -> list[Flowable]:
    out = section_heading("limitations", number)
    out.append(para("General limits of the methods used:"))
    out += bullets(GENERAL_LIMITATIONS)
    specific: list[str] = []
    for key, result in facts.all_results:
        title = METHOD_TITLES.get(result.provenance.method, result.provenance.method or key)
        specific += [f"{title}: {w}" for w in result.warnings]
    if specific:
        out.append(sub("Recorded for this audit", "s-limitations-specific"))
        out += warnings(dict.fromkeys(specific))
    return out


def _hardware_text(hardware: Mapping[str, Scalar] | str) -> str:
    """``{"cpu": …, "os": …, "compute_device": …}`` as one readable line."""
    if isinstance(hardware, str):
        return hardware
    labels = (("cpu", "CPU"), ("compute_device", "compute device"), ("os", "OS"))
    parts = [f"{label}: {hardware[key]}" for key, label in labels if hardware.get(key)]
    parts += [f"{key}: {value}" for key, value in hardware.items() if key not in dict(labels) and value]
    return "; ".join(parts) or "not recorded in the results"


def _audit_times(header: RecordHeader, results: Iterable[Result]) -> list[tuple[str, Any]]:
    """The reproducibility table's rows on when the audit ran."""
    started, finished = header.started_at, header.finished_at
    # Reports written before times were measured stamped the audit time as its end, too.
    measured = any(r.provenance.started_at and r.provenance.started_at != r.provenance.finished_at for r in results)
    if started and (not finished or (finished == started and not measured)):
        return [
            (
                "Audit time",
                f"{started} (recorded; how long the analyses took was not measured, so that a "
                "re-run with this time gives identical files)",
            )
        ]
    return [("Audit started", started or "not recorded"), ("Audit finished", finished or "not recorded")]


def reproducibility(facts: Facts, number: int, attachment_sha256: str) -> list[Flowable]:
    out = [PageBreak()] + section_heading("reproducibility", number)
    w = facts.width
    header = facts.header
    versions = header.versions
    pairs: list[tuple[str, Any]] = [
        ("Data file", facts.data_name),
        ("Data SHA-256", header.data_file.sha256 or "not recorded"),
        ("Model file", facts.model_name),
        ("Model SHA-256", header.model_file.sha256 or "not recorded"),
        ("Seed", json_value(header.seed)),
        ("Probity", versions.get("probity") or header.probity_version or "unknown"),
        ("Python", versions.get("python") or "not recorded"),
        ("Operating system", versions.get("platform") or "not recorded"),
        ("CPU / GPU", _hardware_text(header.hardware) if header.hardware else "not recorded in the results"),
        *_audit_times(header, [result for _, result in facts.all_results]),
        (f"SHA-256 of {ATTACHMENT_NAME}", attachment_sha256),
    ]
    out.append(
        kv_table(
            pairs, w, key_width=44 * mm, mono_keys=("Data SHA-256", "Model SHA-256", f"SHA-256 of {ATTACHMENT_NAME}")
        )
    )
    packages = [(k, v) for k, v in versions.items() if k not in ("python", "probity", "platform")]
    if packages:
        out.append(sub("Package versions", "s-reproducibility-packages"))
        half = (len(packages) + 1) // 2
        rows: list[list[Any]] = [["Package", "Version", "Package", "Version"]]
        for i in range(half):
            left = packages[i]
            right = packages[i + half] if i + half < len(packages) else ("", "")
            rows.append([left[0], left[1], right[0], right[1]])
        out.append(table(rows, [w * 0.25] * 4, mono=(1, 3)))
    out.append(sub("Command", "s-reproducibility-command"))
    command = facts.report.command or "not recorded"
    if facts.from_session:
        out.append(
            para(
                "These results were computed one by one in the Probity desktop app and chosen for this report; "
                "each records the call that made it (method, every parameter, seed and random stream). Run in a "
                "folder holding this report and the data and model files named above (identified by their "
                "SHA-256), this command re-runs every result from its call and compares every number:"
            )
        )
    else:
        out.append(
            para(
                "Run in a folder holding the data and model files named above (identified by their SHA-256), "
                "this command recomputes every number of this report; --out DIR chooses where it writes:"
            )
        )
    with verbatim():  # a reader copies this command: every name in it stays whole
        out.append(para(command, "mono"))
    out.append(
        para(
            f"The results behind this report are attached to this PDF as {ATTACHMENT_NAME}; its SHA-256 above lets "
            "a reader confirm that a recomputed results.json is identical.",
            "small",
        )
    )
    return out


def reviewer_notes(facts: Facts, number: int) -> list[Flowable]:
    r = facts.report
    if not r.reviewer_notes.strip():
        return []
    out = section_heading("notes", number)
    for paragraph in (p.strip() for p in r.reviewer_notes.replace("\r\n", "\n").split("\n\n")):
        if paragraph:
            out.append(markup(escape(paragraph).replace("\n", "<br/>")))
    sign = " · ".join(x for x in (r.auditor, r.organisation, format_date(r.report_date)) if x)
    out.append(Spacer(1, 4 * mm))
    out.append(para(sign, "small"))
    return out

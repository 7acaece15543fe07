"""The data and model summaries: what was audited, the columns' roles and the model file's trust decision."""

from __future__ import annotations

import json
from typing import Any

from reportlab.lib.units import mm
from reportlab.platypus import CondPageBreak, Flowable, PageBreak, Spacer

from engine.report import style as st
from engine.report.facts import Facts
from engine.report.formats import clip, count, escape, names, pct
from engine.report.header import DataSummary
from engine.report.layout import caption, kv_table, markup, para, section_heading, table, tint
from engine.report.names import RULE as LONG_NAME_RULE
from engine.report.names import shortened

__all__ = ["data_summary", "model_summary", "trust_sentence"]


def trust_sentence(facts: Facts) -> str:
    """Whether loading the model file needed a trust decision, and on whose authority it was loaded."""
    trust = facts.header.trust
    if not trust.required:
        return f"The model file {facts.model_name} needed no trust decision: its format cannot run code when loaded."
    imports = list(trust.imports)
    granted = trust.granted_by or "an unrecorded decision"
    sentence = (
        f"Loading {facts.model_name} required a trust decision because the file names Python types to import; "
        f"it was loaded on the authority of “{granted}”"
        + (f", covering {len(imports)} imported type{'s' if len(imports) != 1 else ''}." if imports else ".")
    )
    unreviewed = list(trust.unreviewed)
    if trust.allow_unreviewed and unreviewed:
        n = len(unreviewed)
        sentence += (
            f" {n} of {'them' if imports else 'its names'} {'is' if n == 1 else 'are'} not on Probity's reviewed "
            f"list ({clip(', '.join(unreviewed))}); the auditor acknowledged {'it' if n == 1 else 'them'} "
            "explicitly (--allow-unreviewed, or the checkbox in the app)."
        )
    return sentence


def _roles_text(facts: Facts, d: DataSummary) -> str:
    """The data section's paragraph: size, column kinds, missing values and roles."""
    header = facts.header
    roles = header.roles
    kinds: dict[str, int] = {}
    for col in d.schema:
        kinds[str(col.kind)] = kinds.get(str(col.kind), 0) + 1
    missing_cells = sum(c.n_missing for c in d.schema)
    with_missing = [c.name for c in d.schema if c.n_missing > 0]
    kind_text = names([f"{n} {k}" for k, n in kinds.items()])
    text = (
        f"<b>{escape(facts.data_name)}</b> ({escape(header.data_file.format or 'table')}) holds "
        f"{count(d.rows or 0)} rows and {count(d.columns)} columns: {escape(kind_text)}. "
    )
    if missing_cells:
        text += f"{count(missing_cells)} cells are missing, in {escape(names(with_missing))}. "
    else:
        text += "No value is missing. "
    unused = facts.unused_features()
    n_inputs = len(facts.model_inputs())
    text += (
        f"The target is <b>{escape(roles.target or 'none')}</b>; "
        f"{n_inputs} column{' is a model input' if n_inputs == 1 else 's are model inputs'}"
        + (f", {escape(names(list(roles.sensitive)))} sensitive" if roles.sensitive else "")
        + (f" and {len(roles.ignored)} ignored" if roles.ignored else "")
        + "."
    )
    if unused:
        text += (
            f" The model does not take {escape(names(unused))}, although the roles list "
            f"{'it' if len(unused) == 1 else 'them'} as a feature; "
            f"{'it' if len(unused) == 1 else 'they'} played no part in the analyses."
        )
    return text


def data_summary(facts: Facts, number: int) -> list[Flowable]:
    d = facts.header.data
    if d is None:
        return []
    out = [PageBreak()] + section_heading("data", number)
    out.append(markup(_roles_text(facts, d)))
    roles = facts.header.roles
    unused = facts.unused_features()
    role_of: dict[str, list[str]] = {}
    if roles.target:
        role_of.setdefault(roles.target, []).append("target")
    for name in facts.model_inputs():
        role_of.setdefault(name, []).append("feature")
    for name in unused:
        role_of.setdefault(name, []).append("not used by the model")
    for name in roles.sensitive:
        role_of.setdefault(name, []).append("sensitive")
    for name in roles.ignored:
        role_of.setdefault(name, []).append("ignored")
    rows = d.rows or 0
    table_rows: list[list[Any]] = [["Column", "Role", "Kind", "Type", "Missing", "Missing %", "Distinct"]]
    shading: list[tuple[int, int, str]] = []
    for i, col in enumerate(d.schema, start=1):
        role = ", ".join(role_of.get(col.name, ["—"]))
        table_rows.append(
            [
                col.name,
                role,
                str(col.kind),
                str(col.dtype),
                count(col.n_missing),
                pct(col.n_missing / rows if rows else None),
                count(col.n_distinct),
            ]
        )
        # Tint by the most telling role: a sensitive model input is tinted as sensitive.
        shade = next(
            (r for r in ("target", "sensitive", "ignored", "not used by the model") if r in role_of.get(col.name, [])),
            None,
        )
        if shade is not None:
            shading.append((i, 1, tint(st.ROLE_COLOURS["ignored" if shade.startswith("not") else shade])))
    w = facts.width
    out.append(
        table(
            table_rows,
            [w * 0.27, w * 0.15, w * 0.13, w * 0.11, w * 0.11, w * 0.11, w * 0.12],
            right=(4, 5, 6),
            shading=shading,
        )
    )
    source = (
        "the columns the model file names as its inputs"
        if facts.inputs_named_by_model()
        else "the columns chosen as features (the model file does not name its inputs)"
    )
    out.append(caption(f"Role “feature” marks the model's inputs: {source}."))
    if shortened():
        out.append(caption(LONG_NAME_RULE))
    options = facts.header.data_options
    if options:
        shown = ", ".join(
            f"{k.replace('_', ' ')} {json.dumps(v, ensure_ascii=False)}"
            for k, v in options.items()
            if v not in (None, [], "")
        )
        out.append(caption(f"Read with: {shown}."))
    return out


def _inputs_text(facts: Facts) -> str:
    """The model's input columns for the model section, saying where the list comes from."""
    inputs = facts.model_inputs()
    listed = clip(f"{len(inputs)}: {', '.join(inputs)}")
    if facts.inputs_named_by_model():
        return listed
    return f"{listed} (not named by the file: the columns chosen as features, which the audit passed to it)"


def model_summary(facts: Facts, number: int) -> list[Flowable]:
    model = facts.header.model
    if model is None:
        return []
    out = [CondPageBreak(70 * mm)] + section_heading("model", number)
    file = facts.header.model_file
    trust = facts.header.trust
    pairs: list[tuple[str, Any]] = [
        ("File", facts.model_name),
        ("Format", model.format or file.format or "unknown"),
        ("SHA-256", file.sha256 or "not recorded"),
        ("Size", f"{model.size_bytes:,} bytes" if model.size_bytes is not None else "not recorded"),
        ("Task", model.task or "unknown"),
        ("Classes", ", ".join(str(c) for c in model.classes) if model.classes else "—"),
        ("Inputs", _inputs_text(facts)),
        ("Trust decision", "required" if trust.required else "not required"),
    ]
    if trust.required:
        pairs.append(("Trusted by", trust.granted_by or "not recorded"))
        imports = list(trust.imports)
        pairs.append(("Imports allowed", clip(", ".join(imports)) if imports else "none"))
        if trust.allow_unreviewed:
            unreviewed = list(trust.unreviewed)
            pairs.append(("Unreviewed names acknowledged", clip(", ".join(unreviewed)) if unreviewed else "none"))
    out.append(kv_table(pairs, facts.width, mono_keys=("SHA-256",)))
    out.append(Spacer(1, 3 * mm))
    out.append(para(trust_sentence(facts)))
    return out

"""The global surrogate section, drawn from a :class:`~engine.explain.surrogate.SurrogateResult`."""

from __future__ import annotations

from typing import Any

from reportlab.platypus import Flowable, PageBreak

from engine.report.facts import Facts
from engine.report.formats import num, pct, sig
from engine.report.layout import bullets, para, section_heading, sub, table, warnings

__all__ = ["surrogates"]


def surrogates(facts: Facts, number: int) -> list[Flowable]:
    sur = facts.surrogate
    if sur is None:
        return []
    out = [PageBreak()] + section_heading("surrogates", number)
    w = facts.width
    out.append(
        para(
            f"Two simple models were fitted to imitate {sur.output_name} on {sur.n_train:,} rows and scored on "
            f"{sur.n_holdout:,} held-out rows. Their fidelity (R² against the model's output) says how far their "
            "rules can be trusted as a description of the model."
        )
    )
    classification = sur.tree.agreement_holdout is not None
    head = ["Surrogate", "R² (training)", "R² (held out)"] + (["Agreement (held out)"] if classification else [])
    rows: list[list[Any]] = [head]
    for name, fit in (
        (f"Decision tree, depth {sur.tree.max_depth}", sur.tree),
        (f"Sparse linear, {len(sur.linear.terms)} terms", sur.linear),
    ):
        row = [name, num(fit.r2_train), num(fit.r2_holdout)]
        if classification:
            row.append(pct(fit.agreement_holdout))
        rows.append(row)
    widths = [w * 0.4, w * 0.2, w * 0.2] + ([w * 0.2] if classification else [])
    out.append(table(rows, widths, right=(1, 2, 3)))
    out.append(sub("Tree surrogate rules", "s-surrogates-tree"))
    out += bullets(sur.tree.rule_texts)
    out.append(sub("Sparse linear surrogate", "s-surrogates-linear"))
    out.append(para(sur.linear.equation, "mono"))
    if len(sur.linear.terms):
        rows = [["Term", "Coefficient (per unit)", "Per standard deviation"]]
        for term, coef, std in zip(sur.linear.terms, sur.linear.coefficients, sur.linear.standardised):
            rows.append([term, sig(coef, 4), sig(std, 4)])
        out.append(table(rows, [w * 0.5, w * 0.25, w * 0.25], right=(1, 2)))
    if sur.warnings:
        out += warnings(sur.warnings)
    return out

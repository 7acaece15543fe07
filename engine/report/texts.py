"""The report's fixed wording: each analysis's title and description, the metrics, the general limits.

An analysis's name and methodology paragraph come from its descriptor
(:class:`engine.method.Method`: ``report_title``, ``description``);
only results derived from others have none.
"""

from __future__ import annotations

from engine.registry import METHODS

__all__ = ["METHOD_TITLES", "METHOD_DESCRIPTIONS", "METRIC_TEXT", "GENERAL_LIMITATIONS"]

_DERIVED_TITLES: dict[str, str] = {"method_agreement": "Agreement between methods"}

#: Method name -> the title the report gives it.
METHOD_TITLES: dict[str, str] = {**{m.name: m.report_title for m in METHODS.values()}, **_DERIVED_TITLES}

#: Method name -> its paragraph in the methodology section.
METHOD_DESCRIPTIONS: dict[str, str] = {m.name: m.description for m in METHODS.values() if m.description}

#: Metric key -> (label, what it means).
METRIC_TEXT: dict[str, tuple[str, str]] = {
    "accuracy": ("Accuracy", "Share of rows whose most probable class is the true class."),
    "balanced_accuracy": ("Balanced accuracy", "Mean over classes of the share of each class predicted correctly."),
    "roc_auc": ("ROC AUC", "Probability that a random positive row scores above a random negative one."),
    "pr_auc": ("PR AUC", "Average precision over all thresholds (positive class, or macro average)."),
    "log_loss": ("Log loss", "Mean negative log-probability of the true class, in nats; lower is better."),
    "brier": ("Brier score", "Mean squared error of the predicted probabilities; lower is better."),
    "r2": ("R²", "Share of the target's variance the predictions explain."),
    "mae": ("MAE", "Mean absolute error, in the target's units."),
    "rmse": ("RMSE", "Root mean squared error, in the target's units."),
}

#: The limitations section's general limits of the methods, one bullet each.
GENERAL_LIMITATIONS: tuple[str, ...] = (
    "The explanations describe how the model behaves on the audited data. They are not statements about "
    "cause and effect in the world.",
    "Permutation importance and partial dependence change one feature while holding the others fixed. When "
    "features are correlated this evaluates the model on unrealistic rows, and importance may be shared "
    "between correlated features or hidden behind a proxy.",
    "SHAP values depend on the reference they are computed against (background rows, or the training cover "
    "of the trees); LIME depends on its sampling and kernel width. Different references give different values.",
    "Surrogate models and K-LIME approximate the model. Their rules and coefficients hold only as far as their "
    "fidelity (R²) reaches.",
    "All figures hold for the data audited. Performance and group differences may differ on another "
    "population or at another time.",
    "A sensitive attribute that is not a model input can still influence predictions through correlated "
    "inputs. Group differences, where reported, describe outcomes; they do not by themselves establish that "
    "the model is fair or unfair.",
)

"""Model intake: one :class:`Model` interface, one adapter per format family."""

from engine.models.base import Model, Task, TrustDecision
from engine.models.loading import (
    MODEL_SUFFIXES,
    REVIEWED_SKOPS_TYPES,
    ModelInspection,
    inspect_model,
    load_model,
    model_format_of,
    validate_tree_structures,
)
from engine.models.onnx_adapter import OnnxModel
from engine.models.pickle_scan import PickleScan, scan_pickle, scan_pickle_bytes
from engine.models.sklearn_adapter import SklearnModel

__all__ = [
    "Model",
    "Task",
    "TrustDecision",
    "SklearnModel",
    "OnnxModel",
    "ModelInspection",
    "PickleScan",
    "inspect_model",
    "load_model",
    "model_format_of",
    "scan_pickle",
    "scan_pickle_bytes",
    "validate_tree_structures",
    "MODEL_SUFFIXES",
    "REVIEWED_SKOPS_TYPES",
]

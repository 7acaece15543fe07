"""Model intake: one :class:`Model` interface, one adapter per format family."""

from engine.models.base import Model, Task, TrustDecision

__all__ = ["Model", "Task", "TrustDecision"]

"""Epsilon annealing: train a deployable BMRU by starting as a CMRU.

The authors' companion code holds epsilon at 1 for ~1000 steps, decays it linearly to 0
over ~5000 steps, and keeps checkpoints only once epsilon is ~0.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class EpsilonSchedule:
    """``epsilon(step)``: ``start`` for ``hold`` steps, then linear to ``end`` over ``decay``.

    Call :meth:`apply` each training step to set every non-learned
    :class:`~cmru_neuro.MemoryUnit` inside a model.
    """

    hold: int = 1000
    decay: int = 5000
    start: float = 1.0
    end: float = 0.0

    def __post_init__(self):
        if self.hold < 0 or self.decay < 0:
            raise ValueError(f"hold, decay: expected non-negative step counts, got {self.hold}, {self.decay}")
        for name in ("start", "end"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(f"{name}: expected a value in [0, 1], got {value!r}")

    def __call__(self, step: int) -> float:
        if step < self.hold:
            return self.start
        if self.decay == 0 or step >= self.hold + self.decay:
            return self.end
        fraction = (step - self.hold) / self.decay
        return self.start + fraction * (self.end - self.start)

    def done(self, step: int, tolerance: float = 1e-6) -> bool:
        """True once epsilon has reached ``end`` (checkpoints worth keeping)."""
        return abs(self(step) - self.end) <= tolerance

    def apply(self, model: nn.Module, step: int) -> float:
        """Set epsilon on every scheduled memory unit in ``model``; returns the value."""
        from .layers import MemoryUnit

        value = self(step)
        units = [m for m in model.modules() if isinstance(m, MemoryUnit) and m.schedulable]
        if not units:
            raise ValueError("model: expected at least one MemoryUnit with a settable epsilon, found none")
        for unit in units:
            unit.epsilon = value
        return value

"""What every task is: two splits, an input encoding, an objective (loss and score).

Splits store compact raw data, batch-first: ``inputs`` ``(N, T, F)`` float32, ``(N, T)``
int64 tokens, or ``(N, T)`` uint8 pixels. :meth:`Task.batch` turns rows into what models
take: time-first float features ``(T, B, F)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch
from torch import Tensor, nn

from .._checks import check_positive_int

OBJECTIVES = ("classify", "classify-steps", "regress")
ENCODINGS = ("float", "tokens", "pixels")
READOUTS = ("last", "mean", "sequence")


@dataclass(frozen=True)
class Split:
    """One split. ``inputs`` ``(N, T, F)`` / ``(N, T)``; ``targets`` per objective:
    classify ``(N,)`` int64, classify-steps ``(N, T, C)`` float in {0, 1}, regress ``(N,)`` float."""

    inputs: Tensor
    targets: Tensor

    def __post_init__(self):
        if self.inputs.shape[0] != self.targets.shape[0]:
            raise ValueError(
                f"targets: expected {self.inputs.shape[0]} rows like inputs, got {self.targets.shape[0]}"
            )

    def __len__(self) -> int:
        return self.inputs.shape[0]


@dataclass(frozen=True)
class Task:
    """A sequence task.

    input_size: features F that :meth:`batch` produces; output_size: model outputs O.
    objective: ``"classify"`` (logits ``(B, O)``), ``"classify-steps"`` (one binary decision
    per channel and step: logits ``(T, B, O)``), ``"regress"`` (prediction ``(B, 1)``).
    readout: the readout this task needs by default (``"last"``, ``"mean"``, ``"sequence"``).
    solved_at: score (accuracy) at which a run counts as converged.
    tolerance: regress only: ``|error| <= tolerance`` counts as correct.
    options: what built it (:func:`cmru_neuro.tasks.make_task` records every option).
    """

    name: str
    train: Split
    test: Split
    input_size: int
    output_size: int
    objective: str
    readout: str
    encoding: str = "float"
    solved_at: Optional[float] = None
    tolerance: float = 0.0
    options: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective: expected one of {OBJECTIVES}, got {self.objective!r}")
        if self.encoding not in ENCODINGS:
            raise ValueError(f"encoding: expected one of {ENCODINGS}, got {self.encoding!r}")
        if self.readout not in READOUTS:
            raise ValueError(f"readout: expected one of {READOUTS}, got {self.readout!r}")

    @property
    def chance(self) -> float:
        """Test accuracy of the best constant answer (majority class or decision; regress:
        the median, within ``tolerance``)."""
        targets = self.test.targets
        if self.objective == "classify":
            return float(torch.bincount(targets).max()) / len(targets)
        if self.objective == "classify-steps":
            rate = float(targets.float().mean())
            return max(rate, 1.0 - rate)
        return float(((targets - targets.median()).abs() <= self.tolerance).float().mean())

    @property
    def length(self) -> int:
        """Sequence length T."""
        return self.train.inputs.shape[1]

    def features(self, inputs: Tensor) -> Tensor:
        """Raw rows ``(B, T[, F])`` -> float features ``(B, T, F)``."""
        if self.encoding == "tokens":
            return nn.functional.one_hot(inputs, self.input_size).float()
        if self.encoding == "pixels":
            return inputs.unsqueeze(-1).float() / 255.0
        return inputs

    def batch(self, split: Split, index) -> tuple[Tensor, Tensor]:
        """Rows ``index`` of ``split`` -> (time-first features ``(T, B, F)``, targets)."""
        return self.features(split.inputs[index]).transpose(0, 1), split.targets[index]

    def loss(self, outputs: Tensor, targets: Tensor) -> Tensor:
        """Mean loss of model outputs (shaped as in the class docstring) against targets."""
        if self.objective == "classify":
            return nn.functional.cross_entropy(outputs, targets)
        if self.objective == "classify-steps":
            return nn.functional.binary_cross_entropy_with_logits(outputs.transpose(0, 1), targets)
        return nn.functional.mse_loss(outputs.squeeze(-1), targets)

    @torch.no_grad()
    def correct(self, outputs: Tensor, targets: Tensor) -> tuple[int, int]:
        """(number correct, number of decisions); accuracy is their ratio."""
        if self.objective == "classify":
            hits = outputs.argmax(-1) == targets
        elif self.objective == "classify-steps":
            hits = (outputs.transpose(0, 1) > 0) == (targets > 0.5)
        else:
            hits = (outputs.squeeze(-1) - targets).abs() <= self.tolerance
        return int(hits.sum()), hits.numel()

    def describe(self) -> str:
        return (
            f"{self.name}: T={self.length}, F={self.input_size}, O={self.output_size}, "
            f"{self.objective}, train {len(self.train)}, test {len(self.test)}"
        )


def split_rows(inputs: Tensor, targets: Tensor, train_size: int) -> tuple[Split, Split]:
    """First ``train_size`` rows train, the rest test."""
    return Split(inputs[:train_size], targets[:train_size]), Split(inputs[train_size:], targets[train_size:])


def check_sizes(**values) -> None:
    """Each keyword must be a positive integer (ValueError naming it otherwise)."""
    for name, value in values.items():
        check_positive_int(value, name)


def generator(seed: int) -> torch.Generator:
    """A private torch generator: tasks never touch the global RNG."""
    return torch.Generator().manual_seed(int(seed))

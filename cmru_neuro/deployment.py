"""Deploy a trained network: quantize it, score the integer model, run it on Lava.

:func:`deploy` is what ``cmru-neuro deploy`` and ``cmru-neuro demo`` run; it returns a
:class:`Deployment` with the float vs integer accuracies and the Lava fixed-point run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from .adapters.lava import run_on_lava
from .quant import accuracy_report, quantize


@dataclass
class Deployment:
    """What :func:`deploy` measured.

    integer: float vs integer model on every test sequence; subset: the same on the
    sequences run on Lava; lava: the Lava run (None when skipped); lava_accuracy in percent;
    mismatched: Lava fixed-point outputs that differ from the integer model's.
    """

    spec: object
    integer: object
    subset: object
    inputs: object
    lava: Optional[object] = None
    lava_accuracy: Optional[float] = None
    mismatched: Optional[int] = None


def check_counts(sequences: int, calibration: int) -> None:
    for value, name in ((sequences, "sequences"), (calibration, "calibration")):
        if value < 1:
            raise ValueError(f"--{name}: expected a positive integer, got {value}")


def deploy(model, task, *, sequences: int = 32, calibration: int = 256, input_bits: int = 8,
           timeout: float = 600.0, lava: bool = True) -> Deployment:
    """Quantize ``model`` (a stack MemoryNetwork) on ``task``'s training inputs, score the
    integer model, and run ``sequences`` test sequences on Lava in fixed point."""
    check_counts(sequences, calibration)
    status = _Status()
    status.update(f"quantizing on {min(calibration, len(task.train))} calibration sequences")
    calibration_inputs, _ = task.batch(task.train, torch.arange(min(calibration, len(task.train))))
    spec = quantize(model, calibration_inputs, input_bits=input_bits).spec
    status.update(f"scoring the integer model on {len(task.test)} test sequences")
    everything = accuracy_report(model, spec, *task.batch(task.test, torch.arange(len(task.test))),
                                 correct=task.correct)
    inputs, targets = task.batch(task.test, torch.arange(min(sequences, len(task.test))))
    subset = accuracy_report(model, spec, inputs, targets, correct=task.correct)
    result = Deployment(spec, everything, subset, inputs)
    if not lava:
        status.stop()
        return result
    status.update(f"running {inputs.shape[1]} sequences x {inputs.shape[0]} steps on Lava (fixed point)")
    try:
        result.lava = run_on_lava(spec, inputs, timeout=timeout)
    finally:
        status.stop()
    hits, decisions = task.correct(result.lava.logits, targets)
    result.lava_accuracy = 100.0 * hits / decisions
    result.mismatched = int((result.lava.outputs != result.lava.reference.outputs).sum())
    return result




class _Status:
    """What a deployment is doing, as a spinner on a terminal (stderr); silent otherwise."""

    def __init__(self):
        from rich.console import Console

        self._console = Console(stderr=True)
        self._status = None

    def update(self, text: str) -> None:
        if not self._console.is_terminal:
            return
        if self._status is None:
            self._status = self._console.status(text)
            self._status.start()
        else:
            self._status.update(text)

    def stop(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None


__all__ = ["Deployment", "check_counts", "deploy"]

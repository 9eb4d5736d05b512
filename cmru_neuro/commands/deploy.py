"""``cmru-neuro deploy``: quantize a trained checkpoint and run it on Lava's simulator.

Prints the float, integer and Lava accuracies, whether Lava's fixed-point outputs equal the
integer golden model bit for bit, and the events the units sent. Exit status 0 when they
are bit-exact, 1 when not, 2 on bad input (Lava missing included).
"""

from __future__ import annotations

import argparse
import importlib.util
from dataclasses import dataclass
from typing import Optional


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="a model.safetensors of arch 'stack' with cmru, bmru or fq-bmru units")
    parser.add_argument("--sequences", type=int, default=32,
                        help="test sequences run on Lava, back to back in one run (default %(default)s)")
    parser.add_argument("--calibration", type=int, default=256,
                        help="training sequences that set the input range (default %(default)s)")
    parser.add_argument("--input-bits", type=int, default=8, help="signed input width (default %(default)s)")
    parser.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE",
                        help="task option override, e.g. -o length=100 (repeatable)")
    parser.add_argument("--float", action="store_true",
                        help="also run Lava's floating-point models against the torch model")
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="seconds before a Lava run is ended (default %(default)s)")


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


def _check_counts(sequences: int, calibration: int) -> None:
    for value, name in ((sequences, "sequences"), (calibration, "calibration")):
        if value < 1:
            raise ValueError(f"--{name}: expected a positive integer, got {value}")


def deploy(model, task, *, sequences: int = 32, calibration: int = 256, input_bits: int = 8,
           timeout: float = 600.0, lava: bool = True) -> Deployment:
    """Quantize ``model`` (a stack MemoryNetwork) on ``task``'s training inputs, score the
    integer model, and run ``sequences`` test sequences on Lava in fixed point."""
    import torch

    from ..quant import accuracy_report, quantize

    _check_counts(sequences, calibration)
    calibration_inputs, _ = task.batch(task.train, torch.arange(min(calibration, len(task.train))))
    spec = quantize(model, calibration_inputs, input_bits=input_bits).spec
    everything = accuracy_report(model, spec, *task.batch(task.test, torch.arange(len(task.test))),
                                 correct=task.correct)
    inputs, targets = task.batch(task.test, torch.arange(min(sequences, len(task.test))))
    subset = accuracy_report(model, spec, inputs, targets, correct=task.correct)
    result = Deployment(spec, everything, subset, inputs)
    if not lava:
        return result
    from ..adapters.lava import run_on_lava

    result.lava = run_on_lava(spec, inputs, timeout=timeout)
    hits, decisions = task.correct(result.lava.logits, targets)
    result.lava_accuracy = 100.0 * hits / decisions
    result.mismatched = int((result.lava.outputs != result.lava.reference.outputs).sum())
    return result


def run(args: argparse.Namespace) -> int:
    import torch

    from ..checkpoint import load_checkpoint
    from ._options import parse_options

    _check_counts(args.sequences, args.calibration)
    if not args.timeout > 0:
        raise ValueError(f"--timeout: expected a positive number of seconds, got {args.timeout}")
    if importlib.util.find_spec("lava") is None:
        raise ValueError("lava-nc is not installed: deploy needs Python 3.10 with the 'lava' extra")
    from ..adapters.lava import run_on_lava

    checkpoint = load_checkpoint(args.checkpoint, expect={"arch": "stack"})
    model = checkpoint.model
    task = checkpoint.make_task(**parse_options(args.option))
    result = deploy(model, task, sequences=args.sequences, calibration=args.calibration,
                    input_bits=args.input_bits, timeout=args.timeout)
    spec, lava, inputs = result.spec, result.lava, result.inputs
    print(f"{args.checkpoint}: {model.unit_name} stack {[layer.unit.hidden_size for layer in spec.layers]}, "
          f"readout {spec.readout_mode}; task {task.describe()}")
    exponents = ", ".join(f"layer {i} 2^{layer.unit.exponent}" for i, layer in enumerate(spec.layers))
    print(f"integer format: inputs {spec.input_bits}-bit steps of 2^{spec.input_exponent}; current units "
          f"{exponents}, readout 2^{spec.readout.exponent}; 8-bit weights, 24-bit state")
    print(f"integer model on all {len(task.test)} test sequences: {result.integer}")
    report = result.subset
    print(f"accuracy on {inputs.shape[1]} test sequences: float {report.float_accuracy:.2f}%, integer "
          f"{report.integer_accuracy:.2f}% ({report.difference:+.2f} points), Lava fixed point {result.lava_accuracy:.2f}%")
    print(f"parity: Lava fixed point vs integer model: "
          f"{'bit-exact' if result.mismatched == 0 else 'DIFFERENT'} ({result.mismatched} of {lava.outputs.size} outputs differ)")
    length, batch = inputs.shape[:2]
    hidden = [layer.unit.hidden_size for layer in spec.layers]
    per_unit = ", ".join(f"layer {i}: {n} ({n / (length * batch * h):.3f} per unit per step)"
                         for i, (n, h) in enumerate(zip(lava.events, hidden)))
    print(f"events sent: {sum(lava.events)} in {lava.steps} steps ({sum(lava.events) / lava.steps:.2f} per step); {per_unit}")
    saturations = ", ".join(f"{k}: {v}" for k, v in lava.saturations.items()) or "none"
    print(f"saturations: {saturations}; Lava run {lava.seconds:.1f} s (compile and spawn included)")
    if args.float:
        floating = run_on_lava(model, inputs, timeout=args.timeout)
        with torch.no_grad():
            largest = float((floating.logits - model(inputs)).abs().max())
        print(f"Lava floating point vs torch: largest output difference {largest:.3g}")
    return 0 if result.mismatched == 0 else 1


__all__ = ["Deployment", "add_arguments", "deploy", "run"]

"""``cmru-neuro deploy``: quantize a trained checkpoint and run it on Lava's simulator.

Prints the float, integer and Lava accuracies, whether Lava's fixed-point outputs equal the
integer golden model bit for bit, and the messages the units sent. Exit status 0 when they
are bit-exact, 1 when not, 2 on bad input (Lava missing included).
"""

from __future__ import annotations

import argparse
import importlib.util

from ..deployment import check_counts, deploy


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


def run(args: argparse.Namespace) -> int:
    import torch

    from .._checks import check_positive_number
    from ..checkpoint import load_checkpoint
    from ..golden import STATE_BITS
    from ._options import parse_options

    check_counts(args.sequences, args.calibration)
    if not 2 <= args.input_bits <= STATE_BITS:
        raise ValueError(f"--input-bits: expected a signed width of 2 to {STATE_BITS} bits, got {args.input_bits}")
    check_positive_number(args.timeout, "--timeout", what="number of seconds")
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
                         for i, (n, h) in enumerate(zip(lava.messages, hidden)))
    print(f"messages sent: {sum(lava.messages)} in {lava.steps} steps ({sum(lava.messages) / lava.steps:.2f} per step); "
          f"{per_unit}")
    saturations = ", ".join(f"{k}: {v}" for k, v in lava.saturations.items()) or "none"
    print(f"saturations: {saturations}; Lava run {lava.seconds:.1f} s (compile and spawn included)")
    if args.float:
        floating = run_on_lava(model, inputs, timeout=args.timeout)
        with torch.no_grad():
            largest = float((floating.logits - model(inputs)).abs().max())
        print(f"Lava floating point vs torch: largest output difference {largest:.3g}")
    return 0 if result.mismatched == 0 else 1


__all__ = ["add_arguments", "run"]

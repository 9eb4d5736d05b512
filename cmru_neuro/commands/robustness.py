"""``cmru-neuro robustness``: accuracy of trained checkpoints under parameter mismatch
theta * (1 + N(0, (p/3)^2)), additive input noise and state noise."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoints", nargs="+", help="model.safetensors files (seeds of a cell are pooled)")
    parser.add_argument("--levels", type=float, nargs="+", default=[5, 10, 15], help="mismatch p in percent")
    parser.add_argument("--trials", type=int, default=10, help="draws per level")
    parser.add_argument("--input-noise", type=float, nargs="*", default=[0.1, 0.3], help="input noise std")
    parser.add_argument("--state-noise", type=float, nargs="*", default=[0.01, 0.05], help="state noise std per step")
    parser.add_argument("--samples", type=int, help="score only the first N test sequences (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise draws")
    parser.add_argument("--out", metavar="DIR", help="write robustness.md/.json/.png (default: none; only the table is printed)")


def run(args: argparse.Namespace) -> int:
    from .._checks import check_non_negative_number, check_positive_int, check_seed
    from ..checkpoint import load_checkpoint
    from ..experiments import robustness

    check_positive_int(args.trials, "--trials")
    for p in args.levels:
        check_non_negative_number(p, "--levels", what="percentage")
    for name in ("input_noise", "state_noise"):
        for std in getattr(args, name):
            check_non_negative_number(std, f"--{name.replace('_', '-')}", what="standard deviation")
    if args.samples is not None:
        check_positive_int(args.samples, "--samples")
    check_seed(args.seed, "--seed")
    checkpoints = [load_checkpoint(path) for path in args.checkpoints]
    result = robustness(checkpoints, [p / 100 for p in args.levels], args.trials, args.input_noise,
                        args.state_noise, args.samples, args.seed, args.out)
    print(result["table"])
    return 0

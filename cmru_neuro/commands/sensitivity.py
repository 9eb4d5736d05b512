"""``cmru-neuro sensitivity``: fraction of seeds converging over a grid of initial input-weight
scales and threshold biases, per cell (BMRU vs CMRU by default)."""

from __future__ import annotations

import argparse

from ._options import (
    add_model_arguments,
    add_task_arguments,
    add_training_arguments,
    check_cells,
    config_from_args,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_task_arguments(parser)
    parser.add_argument("--cells", nargs="+", default=["bmru", "cmru"])
    parser.add_argument("--init-scales", type=float, nargs="+", default=[0.25, 1.0, 4.0])
    parser.add_argument("--threshold-biases", type=float, nargs="+", default=[0.25, 1.0, 4.0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    add_model_arguments(parser)
    add_training_arguments(parser)
    parser.add_argument("--out", metavar="DIR", help="write sensitivity.md/.json/.png")


def run(args: argparse.Namespace) -> int:
    from ..experiments import is_main_process, sensitivity

    result = sensitivity(config_from_args(args), check_cells(args.cells), args.init_scales,
                         args.threshold_biases, args.seeds, args.out)
    if is_main_process():
        print(result["table"])
    return 0

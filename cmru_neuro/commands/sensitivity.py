"""``cmru-neuro sensitivity``: fraction of seeds converging over a grid of initial input-weight
scales and threshold biases, per cell (BMRU vs CMRU by default)."""

from __future__ import annotations

import argparse

from ._options import (
    add_model_arguments,
    add_task_arguments,
    add_training_arguments,
    add_seeds_argument,
    check_cells,
    check_seeds,
    config_from_args,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_task_arguments(parser)
    parser.add_argument("--cells", nargs="+", default=["bmru", "cmru"], help="cells to sweep")
    parser.add_argument("--init-scales", type=float, nargs="+", default=[0.25, 1.0, 4.0],
                        help="factors on the cell's input weights at initialisation")
    parser.add_argument("--threshold-biases", type=float, nargs="+", default=[0.25, 1.0, 4.0],
                        help="memory units' threshold biases at initialisation")
    add_seeds_argument(parser, [0, 1, 2])
    add_model_arguments(parser)
    add_training_arguments(parser)
    parser.add_argument("--out", metavar="DIR", help="write sensitivity.md/.json/.png (default: none; only the table is printed)")


def run(args: argparse.Namespace) -> int:
    from ..experiments import sensitivity
    from ..training import is_main_process

    result = sensitivity(config_from_args(args), check_cells(args.cells), args.init_scales,
                         args.threshold_biases, check_seeds(args.seeds), args.out)
    if is_main_process():
        print(result["table"])
    return 0

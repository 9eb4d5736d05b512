"""``cmru-neuro compare``: cells x seeds on one task -> markdown table, JSON, curves."""

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
    parser.add_argument("--cells", nargs="+", default=["bmru", "cmru", "acmru", "lru", "mingru"], help="cells to compare")
    add_seeds_argument(parser, [0, 1, 2])
    add_model_arguments(parser)
    add_training_arguments(parser)
    parser.add_argument("--budget", type=int, metavar="PARAMETERS",
                        help="size each cell's width to this parameter count (closest; the table says each count) "
                             "(default: every cell at --hidden)")
    parser.add_argument("--out", metavar="DIR", help="write compare.md/.json/.png and one folder per run (default: none; only the table is printed)")


def run(args: argparse.Namespace) -> int:
    from ..experiments import compare
    from ..training import is_main_process

    result = compare(config_from_args(args), check_cells(args.cells), check_seeds(args.seeds), args.out, budget=args.budget)
    if is_main_process():
        print(result["table"])
    return 0

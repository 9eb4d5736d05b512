"""``cmru-neuro train``: train one cell on a task (one or several seeds), with checkpoints,
JSON metrics and learning curves. Under ``torchrun --nproc_per_node=N``: one seed trains data
parallel; several seeds are split across the ranks."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from ..models import CELLS, check_cell
from ._options import (
    add_model_arguments,
    add_task_arguments,
    add_training_arguments,
    config_from_args,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_task_arguments(parser)
    parser.add_argument("--cell", default="cmru", help=f"one of {', '.join(CELLS)} (default %(default)s)")
    add_model_arguments(parser)
    add_training_arguments(parser)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="one run per seed")
    parser.add_argument("--out", metavar="DIR",
                        help="write model.safetensors, metrics.json, curves.png (DIR/s<seed>/ for several seeds)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run(s) saved in --out (same settings) from the last checkpoint")


def run(args: argparse.Namespace) -> int:
    from ..experiments import is_main_process, run_sweep
    from ..training import train

    check_cell(args.cell)
    if args.resume and not args.out:
        raise ValueError("--resume: expected --out DIR naming the run to continue")
    base = config_from_args(args, cell=args.cell, resume=args.resume)
    out = Path(args.out) if args.out else None
    if len(args.seeds) == 1:
        configs = [replace(base, seed=args.seeds[0], out_dir=str(out) if out else None)]
        results = [train(configs[0]).metrics]
    else:
        configs = [replace(base, seed=seed, out_dir=str(out / f"s{seed}") if out else None) for seed in args.seeds]
        results = run_sweep(configs)
    if is_main_process():
        for config, metrics in zip(configs, results):
            where = f" -> {config.out_dir}" if config.out_dir else ""
            print(f"{config.task} {config.cell} seed {config.seed}: test accuracy {metrics['test_accuracy']:.4f}, "
                  f"test loss {metrics['test_loss']:.4g}, {metrics['steps']} steps, "
                  f"{metrics['seconds']:.0f} s{where}")
    return 0

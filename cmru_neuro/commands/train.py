"""``cmru-neuro train``: train one cell on a task (one or several seeds), with checkpoints,
JSON metrics and learning curves. Every run is saved in a folder of its own (``--out``, or
a new time-stamped one under ``runs/train/``, suffixed ``-2``, ``-3``... when a run started in
the same second took the name) and the command says where. Under
``torchrun --nproc_per_node=N``: one seed trains data parallel; several seeds are split
across the ranks."""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

from ..models import CELLS, check_cell
from ._options import (
    add_model_arguments,
    add_seeds_argument,
    add_task_arguments,
    add_training_arguments,
    check_seeds,
    config_from_args,
)

DEFAULT_ROOT = Path("runs") / "train"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_task_arguments(parser)
    parser.add_argument("--cell", default="cmru", help=f"one of {', '.join(CELLS)} (default %(default)s)")
    add_model_arguments(parser)
    add_training_arguments(parser)
    add_seeds_argument(parser, [0])
    parser.add_argument("--out", metavar="DIR",
                        help="write model.safetensors, best.safetensors, trainer.pt, metrics.json, curves.png "
                             f"(DIR/s<seed>/ for several seeds; default: a new folder under {DEFAULT_ROOT}/)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run(s) saved in --out (same settings) from the last checkpoint")


def run(args: argparse.Namespace) -> int:
    from ..experiments import run_sweep
    from ..training import is_main_process, train

    check_cell(args.cell)
    seeds = check_seeds(args.seeds)
    if args.resume and not args.out:
        raise ValueError("--resume: expected --out DIR naming the run to continue")
    base = config_from_args(args, cell=args.cell, resume=args.resume)
    out = Path(args.out) if args.out else default_folder(f"{args.task}-{args.cell}-{time.strftime('%Y%m%d-%H%M%S')}")
    if len(seeds) == 1:
        configs = [replace(base, seed=seeds[0], out_dir=str(out))]
        results = [train(configs[0]).metrics]
    else:  # every seed's folder is checked (and locked) before any seed trains
        configs = [replace(base, seed=seed, out_dir=str(out / f"s{seed}")) for seed in seeds]
        results = run_sweep(configs)
    if is_main_process():
        for config, metrics in zip(configs, results):
            print(f"{config.task} {config.cell} seed {config.seed}: test accuracy {metrics['test_accuracy']:.4f}, "
                  f"test loss {metrics['test_loss']:.4g}, {metrics['steps']} steps, "
                  f"{metrics['seconds']:.0f} s; saved in {config.out_dir}")
    return 0


def default_folder(stem: str) -> Path:
    """A new folder ``DEFAULT_ROOT/stem`` (``stem-2``... when taken), created exclusively so
    that runs started in the same second never share one; under torchrun rank 0 creates it
    and tells the others."""
    import torch.distributed as dist

    from ..files import new_run_folder
    from ..training import Ranks

    ranks = Ranks(data_parallel=True)  # joins the torchrun job, if any
    name = [str(new_run_folder(DEFAULT_ROOT, stem)) if ranks.main else None]
    if ranks.world > 1:
        dist.broadcast_object_list(name, src=0)
    return Path(name[0])

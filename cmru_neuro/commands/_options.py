"""Arguments shared by the training commands: task, model and optimiser options."""

from __future__ import annotations

import argparse
import json

import torch

from .._checks import check_distinct, check_seed
from ..layers import INITS
from ..models import ARCHS, CELLS
from ..tasks import TASKS
from ..training import TrainConfig

DEFAULTS = TrainConfig()


def add_task_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", default=DEFAULTS.task, help=f"one of: {', '.join(TASKS)} (default %(default)s)")
    parser.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE",
                        help="task option, repeatable, e.g. -o length=1000 -o noise=0.1")


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--arch", default=DEFAULTS.arch, choices=ARCHS,
                        help="'reference': the authors' block; 'block': this project's earlier block; "
                             "'stack': the deployable MemoryNetwork (default %(default)s)")
    parser.add_argument("--hidden", type=int, default=DEFAULTS.hidden,
                        help="model width (units per layer for block/stack) (default %(default)s)")
    parser.add_argument("--layers", type=int, default=DEFAULTS.layers, help="blocks / unit layers (default %(default)s)")
    parser.add_argument("--state-size", type=int, default=DEFAULTS.state_size,
                        help="reference arch: the cell's state width (default: the model width)")
    parser.add_argument("--init", default=DEFAULTS.init, choices=INITS,
                        help="'reference': the authors' initialisation; 'pytorch': this project's earlier one (default %(default)s)")
    parser.add_argument("--positional", type=int, default=DEFAULTS.positional,
                        help="reference arch: features of the learned positional encoding, 0 = none (default %(default)s)")
    parser.add_argument("--conv", type=int, default=DEFAULTS.conv,
                        help="reference arch: causal conv kernel before the cell, 0 = none (default %(default)s)")
    for piece, what in (("pre-mlp", "the MLP before the first layer"), ("post-mlp", "the MLP after the last layer"),
                        ("norm-after-cell", "the LayerNorm after the cell"), ("output-gate", "the sigmoid output gate"),
                        ("skip-scale", "the learned scales on the skip paths")):
        parser.add_argument(f"--no-{piece}", dest=piece.replace("-", "_"), action="store_false",
                            help=f"reference arch: without {what}")
    parser.add_argument("--readout", choices=("last", "mean", "sequence"), help="default: the task's")
    parser.add_argument("--dropout", type=float, default=DEFAULTS.dropout, help="dropout in the MLPs and after the cell")
    parser.add_argument("--init-scale", type=float, default=DEFAULTS.init_scale,
                        help="factor on the cell's input weights at initialisation")
    parser.add_argument("--threshold-bias", type=float, default=DEFAULTS.threshold_bias,
                        help="memory units' threshold bias at initialisation")
    parser.add_argument("--no-input-bias", dest="input_bias", action="store_false",
                        help="no bias in the block's input Linear (tasks with silent inputs; see cmru_neuro.models)")


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--steps", type=int, default=DEFAULTS.steps, help="training steps (the cosine schedule's length)")
    parser.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size, help="sequences per step")
    parser.add_argument("--lr", type=float, default=DEFAULTS.lr, help="peak learning rate (cosine to 1%%)")
    parser.add_argument("--weight-decay", type=float, default=DEFAULTS.weight_decay, help="AdamW weight decay on every parameter")
    parser.add_argument("--clip", type=float, default=DEFAULTS.clip, help="gradient-norm clipping")
    parser.add_argument("--eval-every", type=int,
                        help="steps between validation evaluations and checkpoints (default: steps // 20)")
    parser.add_argument("--stop-at", type=float, help="stop once validation accuracy reaches this (default: run every step)")
    parser.add_argument("--target", type=float, help="accuracy that counts as converged (default: the task's)")
    parser.add_argument("--time-limit", type=float, help="seconds of training per run (default: no limit)")
    parser.add_argument("--anneal", action=argparse.BooleanOptionalAction, default=None,
                        help="epsilon annealing 1 -> 0 (default: on for bmru-anneal only)")
    parser.add_argument("--anneal-hold", type=int, default=DEFAULTS.anneal_hold,
                        help="annealing: steps at epsilon 1 (default %(default)s)")
    parser.add_argument("--anneal-decay", type=int, default=DEFAULTS.anneal_decay,
                        help="annealing: steps of the linear decay to 0 (default %(default)s)")
    parser.add_argument("--no-keep-best", dest="keep_best", action="store_false",
                        help="score the test split with the last weights, not the best validation checkpoint")
    parser.add_argument("--rate-penalty", type=float, default=DEFAULTS.rate_penalty,
                        help="weight of the update-rate penalty mean(z)^2 per memory-unit layer (default %(default)s)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace runs already in --out (else a used folder is refused)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_device_argument(parser)


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", type=check_device, default="cuda" if torch.cuda.is_available() else "cpu",
                        help="where the model runs: cpu, cuda, cuda:1... (default: cuda when available; here %(default)s)")


def check_device(text: str) -> str:
    """``text`` if it names a device this machine has, else an argparse error naming it."""
    try:
        device = torch.device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(f"expected a device such as cpu or cuda, got {text!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"expected a device this machine has, got {text!r} (no CUDA here; use cpu)")
    return text


def parse_options(pairs: list[str]) -> dict:
    """``["length=1000", "noise=0.1"]`` -> ``{"length": 1000, "noise": 0.1}`` (JSON values,
    else strings)."""
    options = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--option: expected KEY=VALUE, got {pair!r}")
        try:
            options[key.replace("-", "_")] = json.loads(text)
        except json.JSONDecodeError:
            options[key.replace("-", "_")] = text
    return options


def add_seeds_argument(parser: argparse.ArgumentParser, default: list[int]) -> None:
    parser.add_argument("--seeds", type=int, nargs="+", default=default,
                        help="one run per seed, distinct (default %(default)s)")


def check_seeds(seeds: list[int]) -> list[int]:
    """``seeds`` if no seed repeats, else a ValueError naming the repeats."""
    check_distinct(seeds, "--seeds", "seeds")
    for seed in seeds:
        check_seed(seed, "--seeds")
    return seeds


def check_cells(cells: list[str]) -> list[str]:
    """``cells`` if each is known and none repeats (two runs would share a folder)."""
    unknown = [cell for cell in cells if cell not in CELLS]
    if unknown:
        raise ValueError(f"--cells: unknown cell(s) {', '.join(unknown)}; expected any of {', '.join(CELLS)}")
    return check_distinct(cells, "--cells", "cells")


def config_from_args(args: argparse.Namespace, **overrides) -> TrainConfig:
    """A :class:`TrainConfig` from parsed arguments (``overrides`` win)."""
    values = dict(
        task=args.task, task_options=parse_options(args.option), arch=args.arch, hidden=args.hidden,
        layers=args.layers, state_size=args.state_size, init=args.init, positional=args.positional,
        conv=args.conv, pre_mlp=args.pre_mlp, post_mlp=args.post_mlp, norm_after_cell=args.norm_after_cell,
        output_gate=args.output_gate, skip_scale=args.skip_scale, anneal=args.anneal,
        anneal_hold=args.anneal_hold, anneal_decay=args.anneal_decay, keep_best=args.keep_best,
        rate_penalty=args.rate_penalty, readout=args.readout, dropout=args.dropout, init_scale=args.init_scale,
        threshold_bias=args.threshold_bias, input_bias=args.input_bias, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
        weight_decay=args.weight_decay, clip=args.clip, eval_every=args.eval_every,
        checkpoint_every=args.eval_every, stop_at=args.stop_at, target=args.target,
        time_limit=args.time_limit, overwrite=args.overwrite, progress=not args.no_progress,
        device=args.device,
    )
    values.update(overrides)
    return TrainConfig.from_dict(values)

"""``cmru-neuro evaluate``: reload a checkpoint and score it on its task's test split."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="a model.safetensors written by cmru-neuro train")
    parser.add_argument("--split", choices=("test", "train"), default="test", help="which split to score")
    parser.add_argument("--batch-size", type=int, default=64, help="sequences per forward pass")
    from ._options import add_device_argument  # imports torch: only when the command is built

    add_device_argument(parser)


def run(args: argparse.Namespace) -> int:
    from .._checks import check_positive_int
    from ..checkpoint import load_checkpoint
    from ..training import evaluate

    check_positive_int(args.batch_size, "--batch-size")
    checkpoint = load_checkpoint(args.checkpoint)
    task = checkpoint.make_task()
    scores = evaluate(checkpoint.model.to(args.device), task, getattr(task, args.split), args.batch_size)
    model = checkpoint.model_config
    print(f"{task.name} {model.cell} ({model.arch}, hidden {model.hidden}): {args.split} accuracy "
          f"{scores['accuracy']:.4f}, loss {scores['loss']:.4g} on {scores['count']} sequences")
    return 0

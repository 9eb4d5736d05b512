"""``cmru-neuro energy``: energy per inference of a checkpoint on hardware profiles."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

from ..energy import (
    available_profiles,
    estimate_energy_many,
    plot_reports,
    register_profile_dir,
    summary_table,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="a cmru-neuro checkpoint (.safetensors)")
    parser.add_argument(
        "--profile",
        action="append",
        metavar="NAME",
        help="a profile name or YAML path (repeatable; default: every profile)",
    )
    parser.add_argument(
        "--profile-dir", metavar="DIR",
        help="also load every *.yaml profile in DIR (default: the shipped profiles only)",
    )
    parser.add_argument(
        "--samples", type=int, default=8, help="test examples to average over (default %(default)s)"
    )
    parser.add_argument(
        "--input",
        metavar="FILE",
        help="example input: a .pt tensor, time-first (T, B, F), with the checkpoint's F features "
        "(default: --samples test examples of the checkpoint's task)",
    )
    parser.add_argument(
        "--step-duration",
        type=float,
        metavar="SECONDS",
        help="time-step duration in seconds for every profile; static energy is static power x "
        "steps x this (default: each profile's, shown in the summary's step column)",
    )
    parser.add_argument(
        "--lenient",
        action="store_true",
        help="skip unsupported layers with a warning instead of failing",
    )
    parser.add_argument(
        "--detail", action="store_true", help="print the per-layer table of every profile"
    )
    parser.add_argument("--json", metavar="FILE", help="write every report as JSON (default: none)")
    parser.add_argument(
        "--plot", metavar="FILE", help="write a bar chart across targets, PNG (default: none)"
    )


def example_input(checkpoint, args: argparse.Namespace) -> torch.Tensor:
    """The user's tensor, or ``--samples`` test examples of the checkpoint's task."""
    if args.input:
        if not os.path.isfile(args.input):
            raise FileNotFoundError(f"--input: no file at {args.input}")
        try:
            tensor = torch.load(args.input, weights_only=True)
        except Exception as error:  # noqa: BLE001 (torch.load raises a dozen types, fuzzed)
            reason = " ".join(str(error).split()).split(". ")[0][:200]
            detail = f"{type(error).__name__}: {reason}" if reason else type(error).__name__
            raise ValueError(
                f"--input {args.input}: expected a tensor saved with torch.save, got a file "
                f"torch.load cannot read ({detail})"
            ) from None
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(
                f"--input {args.input}: expected a saved tensor, got {type(tensor).__name__}"
            )
        if tensor.dim() != 3 or not tensor.is_floating_point():
            raise ValueError(
                f"--input {args.input}: expected a floating-point tensor (T, B, F), got "
                f"{tensor.dtype} of shape {tuple(tensor.shape)}"
            )
        features = checkpoint.model_config.input_size
        if tensor.shape[-1] != features:
            raise ValueError(
                f"--input {args.input}: expected F = {features} features (the checkpoint's input "
                f"size) in (T, B, F), got {tensor.shape[-1]} (shape {tuple(tensor.shape)})"
            )
        dtype = next(checkpoint.model.parameters()).dtype
        if tensor.dtype != dtype:  # the counts do not need its precision: converted, said so
            print(
                f"note: --input {args.input}: converted from {tensor.dtype} to the model's {dtype}",
                file=sys.stderr,
            )
            tensor = tensor.to(dtype)
        return tensor
    task = checkpoint.make_task()
    inputs, _ = task.batch(task.test, slice(0, args.samples))
    return inputs


def run(args: argparse.Namespace) -> int:
    from .._checks import check_positive_int, check_positive_number
    from ..checkpoint import load_checkpoint

    check_positive_int(args.samples, "--samples")
    if args.step_duration is not None:
        check_positive_number(args.step_duration, "--step-duration", what="number of seconds")
    if args.profile_dir:
        register_profile_dir(args.profile_dir)
    checkpoint = load_checkpoint(args.checkpoint)
    profiles = args.profile or list(available_profiles())
    reports = estimate_energy_many(
        checkpoint.model,
        example_input(checkpoint, args),
        profiles,
        step_duration=args.step_duration,
        strict=not args.lenient,
        time_first=True,
    )
    tables = args.detail or len(reports) == 1  # each table lists what it leaves out
    if tables:
        for report in reports:
            print(report.table())
    print(summary_table(reports, left_out=not tables))
    if args.json:
        Path(args.json).write_text(json.dumps([r.to_dict() for r in reports], indent=2))
        print(f"wrote {args.json}")
    if args.plot:
        print(f"wrote {plot_reports(reports, args.plot)}")
    return 0

"""``cmru-neuro``: the command line. Each command lives in its own module with
``add_arguments(parser)`` and ``run(args) -> int``; this file only dispatches.

Errors the user can fix (bad arguments, missing files, unknown names) print one line and
exit with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
from typing import Optional, Sequence

# name -> (module, one-line description). Keep sorted by workflow.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("cmru_neuro.commands.demo", "The main job: train a CMRU, price it on every hardware profile, run it on Lava"),
    "train": ("cmru_neuro.commands.train", "Train a cell on a task: checkpoints, JSON metrics, learning curves"),
    "evaluate": ("cmru_neuro.commands.evaluate", "Score a checkpoint on its task's test split"),
    "compare": ("cmru_neuro.commands.compare", "Cells x seeds on a task: markdown table of accuracy and convergence, plots"),
    "sensitivity": ("cmru_neuro.commands.sensitivity", "Initialisation sensitivity: converged fraction over init scales x threshold biases"),
    "robustness": ("cmru_neuro.commands.robustness", "Accuracy of checkpoints under parameter mismatch, input and state noise"),
    "profiles": ("cmru_neuro.commands.profiles", "List hardware profiles with their cited energy figures, or check a profile file"),
    "energy": ("cmru_neuro.commands.energy", "Energy per inference of a checkpoint on hardware profiles (table, JSON, PNG)"),
    "deploy": ("cmru_neuro.commands.deploy", "Run a stack checkpoint on Lava in fixed point: accuracy, bit parity with the integer model, events"),
}


class UserError(Exception):
    """A problem with the user's input: reported as one line, exit status 2."""


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cmru-neuro")
    except PackageNotFoundError:
        return "unknown (not installed)"


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser whose errors are one line (no usage block): ``cmru-neuro train:
    error: argument --steps: invalid int value: 'x' (see cmru-neuro train --help)``, exit 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {_one_line(ValueError(message))} (see {self.prog} --help)\n")


class HelpFormatter(argparse.HelpFormatter):
    """Shows every valued option's default (unless its help already does; flags have none)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (action.option_strings and action.nargs != 0 and "%(default)" not in text
                and action.default not in (None, argparse.SUPPRESS)):
            text += " (default: %(default)s)"
        return text


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="cmru-neuro",
        description="Cumulative memory recurrent units: train, compare, estimate energy, deploy to Lava.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name, (module, help_) in COMMANDS.items():
        command = sub.add_parser(name, help=help_, description=help_, formatter_class=HelpFormatter)
        command.set_defaults(_module=module)
        importlib.import_module(module).add_arguments(command)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    previous = signal.signal(signal.SIGTERM, _interrupt)  # a kill ends a run like Ctrl-C does
    try:
        return int(importlib.import_module(args._module).run(args) or 0)
    except (UserError, ValueError, TypeError, KeyError, OSError) as error:
        print(f"cmru-neuro {args.command}: error: {_one_line(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:  # a run's own says where it saved what (one line)
        print(f"cmru-neuro {args.command}: {_one_line(interrupt) if interrupt.args else 'interrupted'}",
              file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum, frame) -> None:
    """SIGTERM as KeyboardInterrupt: runs mark themselves interrupted, Lava stops its workers."""
    raise KeyboardInterrupt


def _one_line(error: Exception) -> str:
    """The error's message on one line (an OSError as ``reason: path``)."""
    if isinstance(error, OSError) and error.strerror and error.filename:
        return f"{error.strerror}: {error.filename}"
    message = error.args[0] if error.args else type(error).__name__
    return " ".join(str(message).split())


if __name__ == "__main__":
    sys.exit(main())

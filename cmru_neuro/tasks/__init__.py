"""Sequence tasks, all offline: ``make_task(name, **options) -> Task``.

Generated (long-range retention): ``copy-first``, ``flip-flop``, ``adding``, ``listops``.
Real data: ``mnist1d`` (from the package's templates), ``digits`` / ``permuted-digits``
(scikit-learn 8x8), ``smnist`` / ``pmnist`` (IDX files in ``root``), ``shd`` (Spiking
Heidelberg Digits, HDF5 files in ``root``) and ``speech-commands`` (wav files in ``root``);
the last two need the ``data`` extra.

Every task is deterministic given its options (``seed`` included); ``task.batch(split,
index)`` gives time-first float features ``(T, B, F)`` and targets.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from typing import Callable

from .audio import shd, speech_commands
from .base import OBJECTIVES, Split, Task
from .datasets import digits, mnist, mnist1d
from .listops import listops
from .synthetic import adding, copy_first, flip_flop

TASKS: dict[str, Callable[..., Task]] = {
    "copy-first": copy_first,
    "flip-flop": flip_flop,
    "adding": adding,
    "listops": listops,
    "mnist1d": mnist1d,
    "digits": digits,
    "permuted-digits": functools.partial(digits, permuted=True),
    "smnist": mnist,
    "pmnist": functools.partial(mnist, permuted=True),
    "shd": shd,
    "speech-commands": speech_commands,
}


def task_options(name: str) -> dict:
    """The options of task ``name`` and their defaults."""
    factory = _factory(name)
    return {
        key: parameter.default
        for key, parameter in inspect.signature(factory).parameters.items()
        if key != "permuted"
    }


def make_task(name: str, **options) -> Task:
    """Build task ``name`` (one of ``TASKS``); unknown names or options list the valid ones.

    The last few tasks built are cached (same name and options: the same object).
    """
    valid = task_options(name)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise TypeError(
            f"{name}: unknown option(s) {', '.join(unknown)}; valid options: {', '.join(valid)}"
        )
    return _cached(name, tuple(sorted(options.items())))


def _factory(name: str) -> Callable[..., Task]:
    if name not in TASKS:
        raise ValueError(f"task: unknown task {name!r}; expected one of {', '.join(TASKS)}")
    return TASKS[name]


@functools.lru_cache(maxsize=4)
def _cached(name: str, options: tuple) -> Task:
    task = TASKS[name](**dict(options))
    return dataclasses.replace(task, options={**task_options(name), **dict(options)})


__all__ = ["OBJECTIVES", "TASKS", "Split", "Task", "make_task", "task_options"]

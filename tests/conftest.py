"""Shared test set-up. Test paths are rootdir-relative (no tests/__init__.py) because
lava-nc installs a top-level ``tests`` package of its own."""

import os

import pytest
import torch
from hypothesis import settings

settings.register_profile("ci", max_examples=30, deadline=None, derandomize=True)
settings.register_profile("dev", max_examples=30, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture
def fit_copy_first():
    """Train a spiking pipeline with BPTT on a short copy-first task; returns test accuracy.

    ``fit(parameters, logits, length=, batch=, iterations=)``: ``logits`` maps time-first
    input ``(T, B, 2)`` (cue x2, 2 classes, noise 0.15) to ``(B, 2)``; Adam, lr 0.02.
    """
    from cmru_neuro.tasks import copy_first

    def fit(parameters, logits, *, length: int, batch: int, iterations: int) -> float:
        task = copy_first(length=length, classes=2, noise=0.15, train_size=batch * iterations, test_size=512)
        optimizer = torch.optim.Adam(parameters, lr=0.02)
        for index in range(iterations):
            x, label = task.batch(task.train, slice(batch * index, batch * (index + 1)))
            loss = task.loss(logits(2 * x), label)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            x, label = task.batch(task.test, slice(None))
            correct, total = task.correct(logits(2 * x), label)
        return correct / total

    return fit


@pytest.fixture
def interrupt_training(monkeypatch):
    """``interrupt_training(after)``: the next :func:`cmru_neuro.training.train` raises
    KeyboardInterrupt when it fetches its ``after``-th training batch (as Ctrl-C would);
    ``interrupt_training(None)`` undoes it."""
    from cmru_neuro import training

    make_task = training.make_task

    class Interrupting:
        def __init__(self, task, after: int):
            self.task, self.calls, self.after = task, 0, after

        def __getattr__(self, name):
            return getattr(self.task, name)

        def batch(self, split, index):
            if split is not self.task.test and len(index) == training.TrainConfig().batch_size:
                self.calls += 1
                if self.calls == self.after:
                    raise KeyboardInterrupt
            return self.task.batch(split, index)

    def interrupt(after):
        if after is None:
            monkeypatch.setattr(training, "make_task", make_task)
        else:
            monkeypatch.setattr(training, "make_task", lambda *a, **k: Interrupting(make_task(*a, **k), after))

    return interrupt

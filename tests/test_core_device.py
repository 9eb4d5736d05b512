"""``--device`` on the commands, and training on the device it names."""

import argparse

import pytest
import torch

from cmru_neuro.cli import main
from cmru_neuro.commands._options import add_device_argument, check_device
from cmru_neuro.training import TrainConfig, train

TINY = {"task": "copy-first", "task_options": {"length": 6, "classes": 2, "train_size": 40, "test_size": 12},
        "hidden": 6, "steps": 2, "eval_every": 1, "progress": False}


def test_device_default_and_check():
    parser = argparse.ArgumentParser()
    add_device_argument(parser)
    assert parser.parse_args([]).device == ("cuda" if torch.cuda.is_available() else "cpu")
    assert check_device("cpu") == "cpu"
    with pytest.raises(argparse.ArgumentTypeError, match=r"expected a device such as cpu or cuda, got 'gpu0'"):
        check_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(argparse.ArgumentTypeError, match=r"got 'cuda' \(no CUDA here; use cpu\)"):
            check_device("cuda")


@pytest.mark.parametrize("command", ["train", "compare", "evaluate"])
def test_commands_refuse_an_unknown_device(command, capsys):
    args = [command, "checkpoint.safetensors"] if command == "evaluate" else [command]
    with pytest.raises(SystemExit) as exit_:
        main([*args, "--device", "gpu0"])
    assert exit_.value.code == 2
    assert "argument --device: expected a device such as cpu or cuda, got 'gpu0'" in capsys.readouterr().err


def test_training_runs_on_the_configured_device(monkeypatch):
    """The model and every batch are moved to ``config.device`` (a spy on Tensor.to)."""
    moved = []
    to = torch.Tensor.to

    def spy(self, *args, **kwargs):
        moved.extend(str(a) for a in args if isinstance(a, (str, torch.device)))
        return to(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "to", spy)
    result = train(TrainConfig(**TINY, device="cpu"))
    assert moved.count("cpu") >= 2 * TINY["steps"]  # inputs and targets of each step
    assert result.metrics["steps"] == TINY["steps"]

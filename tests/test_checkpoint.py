"""Checkpoints: round trip, atomic writes (exception during save, SIGKILL mid-run), and
clear rejection of other architectures and malformed files."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import save_file

import cmru_neuro.checkpoint as checkpoint_module
from cmru_neuro.checkpoint import load_checkpoint, save_checkpoint
from cmru_neuro.models import build_model

BLOCK = dict(input_size=3, output_size=2, cell="lru", arch="block", hidden=8)
STACK = dict(input_size=3, output_size=2, cell="cmru", arch="stack", hidden=6, readout="last")
TASK = {"name": "copy-first", "options": {"length": 12, "classes": 3, "train_size": 40, "test_size": 10}}


@pytest.mark.parametrize("model_config", [BLOCK, STACK, dict(BLOCK, cell="acmru", layers=2)])
def test_round_trip_restores_weights_config_and_metrics(tmp_path, model_config):
    model = build_model(model_config).eval()
    path = save_checkpoint(tmp_path / "m.safetensors", model, {"model": model_config, "task": TASK}, {"test_accuracy": 0.5})
    loaded = load_checkpoint(path)
    inputs = torch.randn(12, 4, 3)
    assert torch.equal(loaded.model(inputs), model(inputs))
    assert loaded.metrics == {"test_accuracy": 0.5}
    assert loaded.model_config.cell == model_config["cell"]
    assert not loaded.model.training
    assert loaded.make_task().length == 12
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_another_architecture_is_rejected_with_both_named(tmp_path):
    path = save_checkpoint(tmp_path / "m.safetensors", build_model(BLOCK), {"model": BLOCK})
    with pytest.raises(ValueError, match=r"holds a model with arch='block' \(cell='lru'.*expected arch='stack'"):
        load_checkpoint(path, expect={"arch": "stack"})
    with pytest.raises(ValueError, match="expected cell='cmru'"):
        load_checkpoint(path, expect={"cell": "cmru"})
    with pytest.raises(ValueError, match="expect: unknown model-config key"):
        load_checkpoint(path, expect={"architecture": "stack"})
    assert load_checkpoint(path, expect={"arch": "block", "cell": "lru"}).model_config.hidden == 8


def test_weights_that_do_not_fit_their_config_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="weights do not match the architecture.*missing"):
        save_checkpoint(tmp_path / "m.safetensors", build_model(BLOCK), {"model": dict(BLOCK, cell="cmru")})
    path = save_checkpoint(tmp_path / "m.safetensors", build_model(STACK), {"model": STACK})
    header = {"format": "cmru-neuro/1", "config": {"model": dict(STACK, hidden=7)}, "metrics": {}}
    tensors = load_checkpoint(path).model.state_dict()
    save_file(dict(tensors), str(path), metadata={"cmru_neuro": json.dumps(header)})
    with pytest.raises(ValueError, match="other shape"):
        load_checkpoint(path)


@pytest.mark.parametrize("content, match", [
    (b"not a checkpoint at all", "not a readable safetensors file"),
    (None, "not a cmru-neuro checkpoint"),
])
def test_malformed_files_are_rejected(tmp_path, content, match):
    path = tmp_path / "bad.safetensors"
    if content is None:
        save_file({"weight": torch.zeros(2)}, str(path))
    else:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=match):
        load_checkpoint(path)
    with pytest.raises(FileNotFoundError, match="no file at"):
        load_checkpoint(tmp_path / "missing.safetensors")
    with pytest.raises(ValueError, match="'model' entry"):
        save_checkpoint(path, build_model(BLOCK), {"task": TASK})


def test_an_exception_during_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "m.safetensors"
    first = build_model(STACK)
    save_checkpoint(path, first, {"model": STACK}, {"step": 1})

    def half_write_then_fail(tensors, filename, metadata=None):
        with open(filename, "wb") as handle:
            handle.write(b"\x00" * 10)
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_module, "save_file", half_write_then_fail)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, build_model(STACK), {"model": STACK}, {"step": 2})
    loaded = load_checkpoint(path)
    assert loaded.metrics == {"step": 1}
    assert all(torch.equal(a, b) for a, b in zip(loaded.model.state_dict().values(), first.state_dict().values()))
    assert list(tmp_path.iterdir()) == [path]


TRAIN_FOREVER = """
from cmru_neuro.training import train
train(dict(task="copy-first", task_options=dict(length=8, classes=2, train_size=200, test_size=20),
           hidden=4, steps=100000, eval_every=1, checkpoint_every=1, progress=False, out_dir={out!r}))
"""


@pytest.mark.reliability
@pytest.mark.timeout(60)
def test_a_run_killed_mid_way_leaves_a_loadable_checkpoint(tmp_path):
    path = tmp_path / "model.safetensors"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    process = subprocess.Popen([sys.executable, "-c", TRAIN_FOREVER.format(out=str(tmp_path))], env=env)
    try:
        deadline = time.monotonic() + 45
        while not path.exists() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        assert path.exists(), "no checkpoint was written"
        time.sleep(1.0)  # a checkpoint every step: the kill lands during training or a save
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    loaded = load_checkpoint(path)
    assert loaded.metrics["steps"] >= 1
    assert loaded.config["task"]["name"] == "copy-first"

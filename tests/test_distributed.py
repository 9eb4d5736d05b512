"""Two processes on this machine under torchrun (gloo): data-parallel training gives the
weights of single-process training on the same global batches, and seed sweeps split."""

import os
import subprocess
import sys

import pytest
import torch

from cmru_neuro.checkpoint import load_checkpoint
from cmru_neuro.training import TrainConfig, train

OPTIONS = dict(length=8, classes=3, train_size=200, test_size=20)
ARGS = ["--task", "copy-first", *[f"-o{k}={v}" for k, v in OPTIONS.items()], "--hidden", "6",
        "--dropout", "0", "--steps", "5", "--eval-every", "5", "--no-progress"]


SCRIPT = """
import sys
from cmru_neuro.cli import main
args, out = sys.argv[1:-1], sys.argv[-1]
assert main(["train", *args, "--out", out + "/parallel"]) == 0                 # one seed: data parallel
assert main(["train", *args, "--seeds", "0", "1", "--out", out + "/sweep"]) == 0  # two seeds: one per rank
"""


@pytest.fixture(scope="module")
def two_process_runs(tmp_path_factory):
    """Both runs in one torchrun launch (process start-up dominates the cost)."""
    out = tmp_path_factory.mktemp("torchrun")
    script = out / "runs.py"
    script.write_text(SCRIPT)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               str(script), *ARGS, str(out)]
    done = subprocess.run(command, env=dict(os.environ, OMP_NUM_THREADS="1"), capture_output=True,
                          text=True, timeout=100)
    assert done.returncode == 0, done.stderr[-3000:]
    return out, done.stdout


@pytest.mark.timeout(120)
def test_two_process_data_parallel_matches_single_process_training(two_process_runs):
    out, _ = two_process_runs
    parallel = load_checkpoint(out / "parallel" / "model.safetensors").model.state_dict()
    single = train(TrainConfig(task="copy-first", task_options=OPTIONS, hidden=6, dropout=0.0,
                               steps=5, eval_every=5, progress=False)).model.state_dict()
    assert parallel.keys() == single.keys()
    for name in single:
        assert torch.allclose(parallel[name], single[name], atol=1e-5), name


@pytest.mark.timeout(120)
def test_a_seed_sweep_is_split_across_the_two_ranks(two_process_runs):
    out, stdout = two_process_runs
    assert stdout.count("copy-first cmru seed") == 3  # rank 0 prints: the parallel run, then both seeds
    sweep = out / "sweep"
    seeds = {load_checkpoint(sweep / f"s{s}" / "model.safetensors").config["training"]["seed"] for s in (0, 1)}
    assert seeds == {0, 1}

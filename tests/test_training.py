"""Training: the loss goes down, every cell and objective trains, files are written and
reload, bad input gets one clear line."""

import json

import pytest
import torch

from cmru_neuro.checkpoint import load_checkpoint
from cmru_neuro.cli import main
from cmru_neuro.models import CELLS, build_model
from cmru_neuro.tasks import make_task
from cmru_neuro.training import TrainConfig, cosine_schedule, evaluate, holdout, train

TINY = dict(task="copy-first", task_options=dict(length=10, classes=3, train_size=300, test_size=60),
            hidden=8, progress=False)


def test_a_few_steps_lower_the_loss():
    config = TrainConfig(**TINY, steps=40, lr=3e-3, eval_every=40, seed=1)
    task = make_task(config.task, **config.task_options)
    torch.manual_seed(config.seed)
    before = evaluate(build_model(config.model_config(task)), task, task.test)["loss"]
    result = train(config)
    assert result.metrics["test_loss"] < 0.8 * before
    assert result.metrics["history"][-1]["train_loss"] < before


@pytest.mark.parametrize("cell", CELLS)
def test_every_cell_trains_in_the_block(cell):
    metrics = train(TrainConfig(**{**TINY, "hidden": 4}, cell=cell, steps=2, eval_every=1)).metrics
    assert len(metrics["history"]) == 2 and not metrics["diverged"]
    assert 0 <= metrics["test_accuracy"] <= 1


@pytest.mark.parametrize("task, options", [
    ("flip-flop", dict(length=12, bits=2, train_size=40, test_size=10)),
    ("adding", dict(length=12, train_size=40, test_size=10)),
    ("listops", dict(min_length=4, max_length=16, train_size=40, test_size=10)),
])
def test_every_objective_trains(task, options):
    metrics = train(TrainConfig(task=task, task_options=options, hidden=4, steps=2, eval_every=1,
                                arch="stack", progress=False)).metrics
    assert all(torch.isfinite(torch.tensor(row["val_loss"])) for row in metrics["history"])


def test_stop_at_stops_early_and_records_the_step_it_converged():
    config = TrainConfig(**TINY, arch="stack", lr=0.02, dropout=0.0, steps=400, eval_every=10, stop_at=0.99)
    metrics = train(config).metrics
    assert metrics["steps"] < 400 and metrics["steps_to_converge"] == metrics["steps"]
    assert metrics["converged"] == (metrics["test_accuracy"] >= 0.99)


def test_run_writes_a_reloadable_checkpoint_metrics_and_curves(tmp_path, capsys):
    result = train(TrainConfig(**TINY, steps=6, eval_every=3, checkpoint_every=3, out_dir=str(tmp_path)))
    assert {p.name for p in tmp_path.iterdir() if p.name != ".run.lock"} == {
        "model.safetensors", "best.safetensors", "trainer.pt", "metrics.json", "curves.png"}
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["metrics"]["test_accuracy"] == result.metrics["test_accuracy"]
    loaded = load_checkpoint(result.checkpoint, expect={"arch": "reference", "cell": "cmru"})
    task = loaded.make_task()
    assert evaluate(loaded.model, task, task.test)["accuracy"] == result.metrics["test_accuracy"]
    assert main(["evaluate", str(result.checkpoint)]) == 0
    assert f"test accuracy {result.metrics['test_accuracy']:.4f}" in capsys.readouterr().out


def test_cli_train_runs_several_seeds_into_their_folders(tmp_path, capsys):
    code = main(["train", "--task", "copy-first", "-o", "length=6", "-o", "train_size=80", "-o", "test_size=10",
                 "--hidden", "4", "--steps", "2", "--eval-every", "2", "--seeds", "0", "1", "--no-progress",
                 "--out", str(tmp_path)])
    assert code == 0
    assert (tmp_path / "s0" / "model.safetensors").exists() and (tmp_path / "s1" / "model.safetensors").exists()
    assert capsys.readouterr().out.count("copy-first cmru seed") == 2


@pytest.mark.parametrize("argv, message", [
    (["train", "--task", "copy"], "unknown task 'copy'; expected one of copy-first, flip-flop"),
    (["train", "--cell", "gru"], "unknown cell 'gru'; expected one of cmru, bmru, acmru, fq-bmru, bmru-anneal, lru, mingru, mingru-lin, snn"),
    (["compare", "--cells", "cmru", "lstm"], "unknown cell(s) lstm"),
    (["train", "-o", "length"], "--option: expected KEY=VALUE"),
    (["train", "-o", "lenght=5"], "unknown option(s) lenght; valid options: length"),
    (["evaluate", "nowhere.safetensors"], "no file at nowhere.safetensors"),
])
def test_cli_user_errors_are_one_line_with_exit_status_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_bad_config_values_name_the_argument():
    with pytest.raises(ValueError, match="steps: expected a positive integer"):
        TrainConfig(steps=0)
    with pytest.raises(ValueError, match="unknown key.*stepz"):
        TrainConfig.from_dict({"stepz": 3})
    with pytest.raises(ValueError, match="arch 'stack' takes a memory unit"):
        train(TrainConfig(**TINY, cell="lru", arch="stack", steps=1))


def test_cosine_schedule_runs_from_one_to_the_final_fraction():
    factor = cosine_schedule(100, 0.01)
    assert factor(0) == pytest.approx(1.0) and factor(100) == pytest.approx(0.01)
    assert factor(50) == pytest.approx(0.505)


def test_holdout_keeps_train_and_validation_disjoint():
    task = make_task(TINY["task"], **TINY["task_options"])
    rows, validation = holdout(task.train)
    assert len(rows) + len(validation) == len(task.train) and len(validation) == 30
    assert torch.equal(validation.inputs, task.train.inputs[-30:])

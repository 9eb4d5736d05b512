"""``cmru-neuro energy`` on a checkpoint: table, JSON and chart across targets."""

import json

import pytest

from cmru_neuro import cli

checkpoint_module = pytest.importorskip("cmru_neuro.checkpoint")
models = pytest.importorskip("cmru_neuro.models")
tasks = pytest.importorskip("cmru_neuro.tasks")

TASK = {"name": "flip-flop", "options": {"length": 30, "train_size": 4, "test_size": 4}}


@pytest.fixture
def checkpoint(tmp_path):
    task = tasks.make_task(TASK["name"], **TASK["options"])
    config = {
        "input_size": task.input_size,
        "output_size": task.output_size,
        "cell": "cmru",
        "arch": "stack",
        "hidden": 8,
        "readout": task.readout,
    }
    model = models.build_model(config)
    return checkpoint_module.save_checkpoint(
        tmp_path / "run.safetensors", model, {"model": config, "task": TASK}
    )


def test_energy_command_reports_every_target(checkpoint, tmp_path, capsys):
    report_path, chart = tmp_path / "energy.json", tmp_path / "energy.png"
    code = cli.main(
        [
            "energy",
            str(checkpoint),
            "--samples",
            "2",
            "--json",
            str(report_path),
            "--plot",
            str(chart),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "loihi2" in out and "analog-bistable-180nm" in out and "assumed" in out
    reports = json.loads(report_path.read_text())
    assert len(reports) >= 13
    assert all(r["time_steps"] == 30 and r["samples_averaged"] == 2 for r in reports)
    assert chart.read_bytes()[:4] == b"\x89PNG"


def test_energy_command_one_profile_prints_the_layer_table(checkpoint, capsys):
    assert (
        cli.main(
            [
                "energy",
                str(checkpoint),
                "--profile",
                "loihi",
                "--samples",
                "1",
                "--step-duration",
                "1e-4",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "units.0" in out and "Left out:" in out and "100 us" in out


def test_energy_command_errors_are_one_line(checkpoint, tmp_path, capsys):
    assert cli.main(["energy", str(checkpoint), "--profile", "lohi"]) == 2
    assert "did you mean loihi" in capsys.readouterr().err
    assert cli.main(["energy", str(tmp_path / "missing.safetensors")]) == 2
    assert "no file" in capsys.readouterr().err

"""``cmru-neuro energy`` on a checkpoint: table, JSON and chart across targets."""

import importlib.resources
import json

import pytest
import torch
import yaml

from cmru_neuro import cli
from cmru_neuro.energy import ProfileWarning

PROFILES = importlib.resources.files("cmru_neuro.hardware_profiles")

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


@pytest.mark.parametrize(
    "content, problem",
    [
        (b"hello, not a tensor\n", "expected a tensor saved with torch.save"),
        (b"", "expected a tensor saved with torch.save"),
        ("dict", "expected a saved tensor, got dict"),
        ("2d", "expected a floating-point tensor (T, B, F), got torch.float32 of shape (3, 4)"),
        ("int", "expected a floating-point tensor (T, B, F), got torch.int64"),
    ],
)
def test_energy_input_that_is_not_a_sequence_tensor_is_one_line(
    checkpoint, tmp_path, capsys, content, problem
):
    path = tmp_path / "x.pt"
    saved = {"dict": {"x": torch.zeros(2)}, "2d": torch.zeros(3, 4),
             "int": torch.zeros(4, 2, 3, dtype=torch.long)}
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(saved[content], path)
    assert cli.main(["energy", str(checkpoint), "--profile", "cpu", "--input", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"--input {path}: {problem}" in err


def test_energy_input_with_the_wrong_feature_count_is_one_line(checkpoint, tmp_path, capsys):
    features = tasks.make_task(TASK["name"], **TASK["options"]).input_size
    path = tmp_path / "wide.pt"
    torch.save(torch.zeros(5, 2, features + 3), path)
    assert cli.main(["energy", str(checkpoint), "--profile", "cpu", "--input", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert (f"--input {path}: expected F = {features} features (the checkpoint's input size) in "
            f"(T, B, F), got {features + 3} (shape (5, 2, {features + 3}))") in err


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_energy_input_in_another_float_dtype_is_converted_and_said_so(checkpoint, tmp_path, capsys, dtype):
    features = tasks.make_task(TASK["name"], **TASK["options"]).input_size
    path = tmp_path / "x.pt"
    torch.save(torch.randn(6, 2, features).to(dtype), path)
    assert cli.main(["energy", str(checkpoint), "--profile", "cpu", "--input", str(path)]) == 0
    captured = capsys.readouterr()
    assert captured.err == f"note: --input {path}: converted from {dtype} to the model's torch.float32\n"
    assert "cpu" in captured.out


def test_energy_input_with_zero_steps_is_one_line(checkpoint, tmp_path, capsys):
    path = tmp_path / "empty.pt"
    torch.save(torch.zeros(0, 2, 3), path)
    assert cli.main(["energy", str(checkpoint), "--profile", "cpu", "--input", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "at least one time step, got T = 0" in err


def test_a_profile_value_without_unit_is_refused_naming_the_figure(checkpoint, tmp_path, capsys):
    data = yaml.safe_load(PROFILES.joinpath("loihi.yaml").read_text())
    data["name"] = "typo"
    data["figures"]["ac"]["value"] = 26  # meant as 26 pJ: once read as 26 J
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(data))
    assert cli.main(["energy", str(checkpoint), "--samples", "1", "--profile", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "figures.ac.value" in err and "26 has no unit" in err
    data["figures"]["ac"]["value"] = "26 J"  # with a unit, but implausible: a warning
    path.write_text(yaml.safe_dump(data))
    with pytest.warns(ProfileWarning, match=r"figures\.ac\.value = 26 J is outside the plausible"):
        assert cli.main(["energy", str(checkpoint), "--samples", "1", "--profile", str(path)]) == 0


def test_the_summary_explains_static_power_duration_and_omissions(checkpoint, capsys):
    profiles = ["cpu", "loihi", "analog-bistable-180nm"]
    argv = ["energy", str(checkpoint), "--samples", "2"]
    assert cli.main(argv + [arg for name in profiles for arg in ("--profile", name)]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("profile "))
    assert header.split()[:5] == ["profile", "kind", "total", "dynamic", "static"]
    assert "duration" in header and "step" in header
    loihi = next(line for line in out.splitlines() if line.startswith("loihi "))
    assert "1 ms assumed" in loihi
    assert "9.9 ms derived" in out
    assert "duration = time steps x step" in out
    assert "mostly static power: loihi (" in out
    for name in profiles:  # what each estimate leaves out, not only one profile's
        assert f"Left out on {name}" in out or f"targets ({name})" in out
    assert "loihi: on-chip learning" in out and "cpu: idle power" in out

"""The command line: help, one-line errors, and the main job's report folder."""

import importlib.util
import json
import subprocess
import sys

import pytest

from cmru_neuro.cli import COMMANDS, main


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "cmru_neuro.cli", *args], capture_output=True, text=True,
                          timeout=900, cwd=cwd)


def test_help_lists_every_command_with_its_description():
    result = _cli("--help")
    assert result.returncode == 0
    for name, (_, description) in COMMANDS.items():
        assert name in result.stdout
        assert description.split()[0] in result.stdout


def test_every_command_has_help():
    for name in COMMANDS:
        result = _cli(name, "--help")
        assert result.returncode == 0, f"{name} --help failed: {result.stderr}"


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "commands" in capsys.readouterr().out


def test_user_errors_are_one_line_without_traceback():
    result = _cli("train", "--task", "no-such-task", "--steps", "1")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "copy-first" in lines[0]  # names the valid tasks


@pytest.mark.slow
def test_demo_quick_writes_the_report_folder(tmp_path):
    out = tmp_path / "report"
    result = _cli("demo", "--quick", "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    for name in ("summary.md", "curves.png", "energy.png", "energy.json", "results.json",
                 "cmru/model.safetensors", "mingru/model.safetensors"):
        assert (out / name).is_file(), name
    results = json.loads((out / "results.json").read_text())
    assert set(results["accuracy"]) == {"CMRU", "minGRU"}
    assert len(results["energy_joules"]) >= 13
    assert "energy per inference" in result.stdout.lower()
    summary = (out / "summary.md").read_text()
    assert "![learning curves](curves.png)" in summary and "![energy per target](energy.png)" in summary
    if importlib.util.find_spec("lava") is not None:
        assert results["deployment"]["lava"]["bit_exact"] is True
    else:
        assert results["deployment"]["lava"] is None and "Lava run skipped" in summary

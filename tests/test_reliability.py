"""Faults survived: run folders are a run's own (refused when used, locked while written,
checked before any work), interrupted runs say so, broken checkpoints are refused with the
project's own errors, and command-line mistakes are one line. docs/reliability.md records
how many inputs and faults each test tries."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from filelock import FileLock
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

from cmru_neuro import training as training_module
from cmru_neuro.checkpoint import load_checkpoint, save_checkpoint
from cmru_neuro.cli import build_parser, main
from cmru_neuro.files import LOCK_NAME, RunFolder
from cmru_neuro.models import build_model
from cmru_neuro.training import TrainConfig, train

pytestmark = pytest.mark.reliability

TINY = dict(task="copy-first", task_options=dict(length=6, classes=2, train_size=80, test_size=10),
            hidden=4, layers=1, progress=False)
CLI_TINY = ["--task", "copy-first", "-o", "length=6", "-o", "train_size=80", "-o", "test_size=10",
            "--hidden", "4", "--layers", "1", "--steps", "2", "--eval-every", "2", "--no-progress"]


def one_line_error(capsys, code, *fragments):
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    for fragment in fragments:
        assert fragment in err, err


# -- run folders ---------------------------------------------------------------------------


def test_a_used_folder_is_refused_unless_overwritten(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *CLI_TINY, "--out", str(out)]) == 0
    first = (out / "metrics.json").read_text()
    one_line_error(capsys, main(["train", *CLI_TINY, "--lr", "0.5", "--out", str(out)]),
                   "already holds a run", "--overwrite", "--resume")
    assert (out / "metrics.json").read_text() == first  # nothing lost
    assert main(["train", *CLI_TINY, "--lr", "0.5", "--out", str(out), "--overwrite"]) == 0
    assert json.loads((out / "metrics.json").read_text())["config"]["training"]["lr"] == 0.5


def test_a_folder_being_written_is_refused(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    with FileLock(str(out / LOCK_NAME)):
        with pytest.raises(FileExistsError, match="being written by another run"):
            train(TrainConfig(**TINY, steps=2, out_dir=str(out)))
    assert not (out / "metrics.json").exists()


def test_two_concurrent_runs_on_one_folder_one_wins_one_is_refused(tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "cmru_neuro.cli", "train", *CLI_TINY, "--steps", "40", "--out", str(out)]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(run.wait(timeout=300), run.stderr.read()) for run in runs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    refused = next(err for code, err in results if code == 2).strip()
    assert len(refused.splitlines()) == 1 and ("being written by another run" in refused or "already holds" in refused)
    assert load_checkpoint(out / "model.safetensors").metrics["steps"] == 40


@pytest.mark.parametrize("where, message", [("file", "is a file"), ("proc", "cannot create")])
def test_bad_output_paths_fail_before_any_work(tmp_path, monkeypatch, capsys, where, message):
    out = tmp_path / "taken" if where == "file" else "/proc/cmru-neuro-run"
    if where == "file":
        out.write_text("not a folder")
    monkeypatch.setattr(training_module, "make_task", lambda *a, **k: pytest.fail("work started"))
    one_line_error(capsys, main(["train", *CLI_TINY, "--out", str(out)]), message)


def test_train_without_out_saves_into_a_new_folder_and_says_where(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", *CLI_TINY]) == 0
    line = capsys.readouterr().out.strip()
    folder = line.rsplit("saved in ", 1)[1]
    assert folder.startswith("runs/train/copy-first-cmru-") and (tmp_path / folder / "model.safetensors").exists()


def test_an_interrupted_run_says_so_keeps_its_checkpoint_and_draws_its_curves(tmp_path, interrupt_training):
    interrupt_training(7)
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig(**TINY, steps=20, eval_every=3, checkpoint_every=3, out_dir=str(out)))
    metrics = json.loads((out / "metrics.json").read_text())["metrics"]
    assert metrics["interrupted"] is True and metrics["steps"] == 6
    assert (out / "curves.png").stat().st_size > 0
    assert load_checkpoint(out / "model.safetensors").metrics["steps"] == 6
    interrupt_training(None)
    resumed = train(TrainConfig(**TINY, steps=20, eval_every=3, checkpoint_every=3, out_dir=str(out), resume=True))
    assert resumed.metrics["interrupted"] is False and resumed.metrics["steps"] == 20


def test_the_lock_is_released_after_a_failed_run(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(ValueError):
        train(TrainConfig(**TINY, steps=2, rate_penalty=1.0, cell="lru", out_dir=str(out)))
    with RunFolder(out):
        pass


# -- checkpoints ---------------------------------------------------------------------------


def test_a_checkpoint_with_non_finite_weights_is_refused_naming_the_tensor(tmp_path, capsys):
    config = dict(input_size=2, output_size=2, cell="cmru", arch="stack", hidden=3)
    model = build_model(config)
    path = save_checkpoint(tmp_path / "m.safetensors", model, {"model": config})
    with torch.no_grad():
        model.units[0].alpha[1] = float("nan")
    bad = save_checkpoint(tmp_path / "bad.safetensors", model, {"model": config})
    with pytest.raises(ValueError, match=r"non-finite .* in units\.0\.alpha"):
        load_checkpoint(bad)
    load_checkpoint(path)
    one_line_error(capsys, main(["evaluate", str(bad)]), "units.0.alpha")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=400), cut=st.integers(0, 2000))
def test_fuzzed_checkpoint_files_give_only_our_errors(tmp_path, data, cut):
    config = dict(input_size=2, output_size=2, cell="cmru", arch="stack", hidden=3)
    good = save_checkpoint(tmp_path / "good.safetensors", build_model(config), {"model": config}).read_bytes()
    for payload in (data, good[:cut], good[:cut] + data, data + good[cut:]):
        path = tmp_path / "fuzz.safetensors"
        path.write_bytes(payload)
        try:
            load_checkpoint(path)
        except ValueError:
            pass


def test_a_header_that_names_another_model_is_refused(tmp_path):
    tensors = {"weight": torch.zeros(2)}
    header = json.dumps({"format": "cmru-neuro/1", "config": {"model": {"cell": "gru"}}})
    save_file(tensors, str(tmp_path / "m.safetensors"), metadata={"cmru_neuro": header})
    with pytest.raises(ValueError, match="not a cmru-neuro checkpoint"):
        load_checkpoint(tmp_path / "m.safetensors")


# -- the command line ------------------------------------------------------------------------


@pytest.mark.parametrize("argv, message", [
    (["train", "--time-limit", "-1"], "time_limit: expected a positive number of seconds, got -1.0"),
    (["train", "--stop-at", "5"], "stop_at: expected an accuracy in [0, 1], got 5.0"),
    (["train", "--target", "-0.1"], "target: expected an accuracy in [0, 1]"),
    (["train", "--seeds", "0", "1", "0"], "--seeds: expected distinct seeds, got 0 more than once"),
    (["compare", "--seeds", "2", "2"], "--seeds: expected distinct seeds"),
    (["train", "--resume"], "--resume: expected --out DIR"),
])
def test_bad_values_are_one_line_errors(argv, message, capsys):
    one_line_error(capsys, main(argv), message)


def test_version_and_every_option_has_help_showing_its_default(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.startswith("cmru-neuro ")
    parser = build_parser()
    for name, command in parser._subparsers._group_actions[0].choices.items():
        for action in command._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, f"{name} {action.option_strings[0]} has no help"
        text = command.format_help()
        if name == "train":
            assert "(default: 1000)" in text and "(default: 0.001)" in text


def test_a_second_process_sees_the_lock(tmp_path):
    """The lock is a real inter-process lock, not a flag in this process."""
    out = tmp_path / "run"
    with RunFolder(out):
        code = textwrap.dedent(f"""
            from cmru_neuro.files import RunFolder
            try:
                RunFolder({str(out)!r}).__enter__()
            except FileExistsError as error:
                print(error)
        """)
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "being written by another run" in result.stdout


# -- output that misleads ---------------------------------------------------------------------


def test_default_evaluation_interval_draws_a_curve_not_a_dot():
    metrics = train(TrainConfig(**TINY, steps=40)).metrics
    assert len(metrics["history"]) == 20
    assert TrainConfig(steps=5).eval_every == 1 and TrainConfig(steps=1000, eval_every=7).checkpoint_every == 7


def test_chance_is_the_best_constant_answer():
    from cmru_neuro.tasks import make_task

    task = make_task("copy-first", length=6, classes=4, train_size=40, test_size=200)
    counts = torch.bincount(task.test.targets, minlength=4)
    assert task.chance == counts.max().item() / 200
    flip = make_task("flip-flop", length=20, bits=2, train_size=20, test_size=20)
    assert 0.5 <= flip.chance <= 1.0
    assert train(TrainConfig(**TINY, steps=2)).metrics["chance"] == make_task(TINY["task"], **TINY["task_options"]).chance


def test_progress_bars_stay_off_when_stderr_is_not_a_terminal(tmp_path):
    log = tmp_path / "log.txt"
    with open(log, "w") as handle:
        subprocess.run([sys.executable, "-m", "cmru_neuro.cli", "train", *CLI_TINY[:-1], "--steps", "4",
                        "--out", str(tmp_path / "run")], stderr=handle, stdout=handle, timeout=300, check=True)
    assert "\r" not in log.read_text() and "it/s" not in log.read_text()


KILL_DURING_SAVE = """
import pathlib, time
import cmru_neuro.checkpoint as checkpoint
from cmru_neuro.training import TrainConfig, train

out = pathlib.Path({out!r})
saves = {{"n": 0}}
real = checkpoint.save_file

def slow_save(tensors, filename, metadata=None):
    real(tensors, filename, metadata=metadata)
    if pathlib.Path(filename).name.startswith(".model.safetensors"):
        saves["n"] += 1
        if saves["n"] == 3:  # the temporary file is written, not yet renamed
            (out / "killed-here").write_text("")
            time.sleep(60)

checkpoint.save_file = slow_save
train(TrainConfig(task="copy-first", task_options=dict(length=6, classes=2, train_size=80, test_size=10),
                  hidden=4, layers=1, steps=30, eval_every=1, checkpoint_every=1, progress=False,
                  out_dir=str(out)))
"""


@pytest.mark.timeout(120)
def test_sigkill_in_the_middle_of_a_checkpoint_write_keeps_the_previous_one(tmp_path):
    out = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-c", KILL_DURING_SAVE.format(out=str(out))])
    try:
        deadline = time.monotonic() + 90
        while not (out / "killed-here").exists() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        assert (out / "killed-here").exists(), "the run never reached its third checkpoint"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert list(out.glob(".model.safetensors.*.tmp")), "the kill was meant to land before the rename"
    assert load_checkpoint(out / "model.safetensors").metrics["steps"] == 2
    resumed = train(TrainConfig(**TINY, steps=30, eval_every=1, checkpoint_every=1, out_dir=str(out), resume=True))
    assert resumed.metrics["steps"] == 30


def _children(pid: int) -> list[int]:
    """Every child process of ``pid`` (any of its threads may have started them)."""
    from pathlib import Path

    return [int(child) for task in Path(f"/proc/{pid}/task").glob("*")
            for child in (task / "children").read_text().split()]


def test_sigterm_ends_a_training_run_like_ctrl_c(tmp_path):
    out = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-m", "cmru_neuro.cli", "train", *CLI_TINY, "--steps", "100000",
                                "--eval-every", "5", "--out", str(out)], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out / "model.safetensors").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 130
    assert process.stderr.read().strip().endswith("train: interrupted")
    assert json.loads((out / "metrics.json").read_text())["metrics"]["interrupted"] is True


LAVA_RUN = """
import torch
from cmru_neuro.adapters.lava import run_on_lava
from cmru_neuro.network import MemoryNetwork
from cmru_neuro.quant import quantize

torch.manual_seed(0)
x = torch.randn(400, 16, 3)
spec = quantize(MemoryNetwork(3, [8], 2, unit="cmru", readout="sequence"), x).spec
print("start", flush=True)
run_on_lava(spec, x, timeout=600)
"""


@pytest.mark.lava
@pytest.mark.timeout(180)
def test_a_lava_run_interrupted_mid_way_leaves_no_workers_or_shared_memory(tmp_path):
    pytest.importorskip("lava")
    from pathlib import Path

    shared = Path("/dev/shm")
    before = set(shared.iterdir())
    process = subprocess.Popen([sys.executable, "-c", LAVA_RUN], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    workers = []
    try:
        assert process.stdout.readline().startswith("start")
        deadline = time.monotonic() + 60
        while len(workers) < 2 and time.monotonic() < deadline:  # the runtime's workers are up
            time.sleep(0.5)
            workers = _children(process.pid)
        time.sleep(2.0)
        workers = _children(process.pid)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
        time.sleep(3.0)  # the resource tracker unlinks what the run leaked
        assert [w for w in workers if Path(f"/proc/{w}").exists()] == []
        assert set(shared.iterdir()) - before == set()
    finally:
        for pid in [process.pid, *workers]:
            if Path(f"/proc/{pid}").exists():
                os.kill(pid, signal.SIGKILL)

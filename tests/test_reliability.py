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
from cmru_neuro.commands import train as train_command
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
    with pytest.raises(KeyboardInterrupt, match=f"checkpoint of step 6 and metrics .* saved in {out}"):
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


def test_every_run_folder_is_checked_before_any_run_trains(tmp_path, monkeypatch, capsys):
    """train (several seeds), compare and sensitivity check all their folders up front."""
    runs, compared, swept = tmp_path / "r2", tmp_path / "c", tmp_path / "s"
    grid = ["--cells", "cmru", "--init-scales", "1", "--threshold-biases", "1", "--seeds", "0"]
    assert main(["train", *CLI_TINY, "--seeds", "0", "1", "--out", str(runs)]) == 0
    assert main(["train", *CLI_TINY, "--cell", "lru", "--out", str(compared / "lru-s0")]) == 0
    assert main(["sensitivity", *CLI_TINY, *grid, "--out", str(swept)]) == 0
    capsys.readouterr()
    monkeypatch.setattr(training_module, "make_task", lambda *a, **k: pytest.fail("a run started"))
    one_line_error(capsys, main(["train", *CLI_TINY, "--seeds", "2", "1", "--out", str(runs)]),
                   f"{runs / 's1'} already holds a run")
    assert sorted(p.name for p in runs.iterdir()) == ["s0", "s1"]  # s2 neither trained nor left behind
    one_line_error(capsys, main(["compare", *CLI_TINY, "--cells", "cmru", "lru", "--seeds", "0",
                                 "--out", str(compared)]), f"{compared / 'lru-s0'} already holds a run")
    assert not (compared / "cmru-s0" / "model.safetensors").exists()
    one_line_error(capsys, main(["sensitivity", *CLI_TINY, *grid, "--out", str(swept)]),
                   f"{swept} already holds a sensitivity result", "--overwrite")
    one_line_error(capsys, main(["compare", *CLI_TINY, "--cells", "cmru", "cmru", "--out", str(compared)]),
                   "--cells: expected distinct cells, got cmru more than once")


def test_default_run_folders_are_unique_within_one_second(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(train_command.time, "strftime", lambda *a: "20250101-000000")
    assert main(["train", *CLI_TINY]) == 0 and main(["train", *CLI_TINY]) == 0
    folders = [line.rsplit("saved in ", 1)[1] for line in capsys.readouterr().out.splitlines()]
    assert folders == ["runs/train/copy-first-cmru-20250101-000000", "runs/train/copy-first-cmru-20250101-000000-2"]
    assert all((tmp_path / folder / "model.safetensors").exists() for folder in folders)


def test_new_run_folders_are_distinct_between_racing_processes(tmp_path):
    from cmru_neuro.files import new_run_folder

    import cmru_neuro.files as files  # loaded alone in each racer: no torch import, they start together

    code = textwrap.dedent(f"""
        import importlib.util, sys, time
        spec = importlib.util.spec_from_file_location("files", {files.__file__!r})
        files = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(files)
        while time.time() < {time.time() + 1.5!r}:
            pass
        print(files.new_run_folder({str(tmp_path)!r}, "same"))
    """)
    racers = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(8)]
    names = [racer.communicate(timeout=120)[0].strip() for racer in racers]
    assert len(set(names)) == 8 and all(racer.returncode == 0 for racer in racers)
    assert new_run_folder(tmp_path, "same").name == "same-9"


def test_overwrite_removes_the_previous_runs_files_and_keeps_others(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *CLI_TINY, "--out", str(out)]) == 0
    assert (out / "best.safetensors").exists()
    (out / "notes.txt").write_text("mine")
    (out / ".model.safetensors.999.tmp").write_bytes(b"left by a killed run")
    assert main(["train", *CLI_TINY, "--no-keep-best", "--lr", "0.5", "--out", str(out), "--overwrite"]) == 0
    assert not (out / "best.safetensors").exists() and not (out / ".model.safetensors.999.tmp").exists()
    assert (out / "notes.txt").read_text() == "mine"  # not a run's file: left alone
    assert json.loads((out / "metrics.json").read_text())["config"]["training"]["lr"] == 0.5
    assert {"model.safetensors", "trainer.pt", "metrics.json", "curves.png"} <= {p.name for p in out.iterdir()}


def test_an_interrupted_command_says_where_its_checkpoint_and_metrics_are(tmp_path, interrupt_training, capsys):
    interrupt_training(7)
    out = tmp_path / "run"
    code = main(["train", *CLI_TINY, "--steps", "20", "--eval-every", "3", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 130 and len(err.splitlines()) == 1, err
    assert err == (f"cmru-neuro train: interrupted at step 7 of 20; checkpoint of step 6 and metrics (marked "
                   f"interrupted) saved in {out} (`cmru-neuro train --resume --out {out}` continues it)")
    interrupt_training(2)
    code = main(["train", *CLI_TINY, "--steps", "20", "--eval-every", "3", "--out", str(tmp_path / "early")])
    assert code == 130 and "before the first checkpoint; metrics (marked interrupted) saved in" in capsys.readouterr().err


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
    (["train", "--clip", "0"], "clip: expected a positive gradient norm (inf: no clipping), got 0.0"),
    (["train", "--clip", "-1"], "clip: expected a positive gradient norm"),
    (["train", "--clip", "nan"], "clip: expected a positive gradient norm"),
    (["train", "--weight-decay", "-1"], "weight_decay: expected a non-negative finite number, got -1.0"),
    (["train", "--lr", "inf"], "lr: expected a positive finite number, got inf"),
    (["train", "--rate-penalty", "inf"], "rate_penalty: expected a non-negative finite number"),
    (["train", "--init-scale", "inf"], "init_scale: expected a positive finite number, got inf"),
    (["train", "--threshold-bias", "nan"], "threshold_bias: expected a finite number, got nan"),
    (["train", "--dropout", "1"], "dropout: expected a number in [0, 1)"),
    (["train", "--batch-size", "0"], "batch_size: expected a positive integer, got 0"),
    (["train", "--seeds", "-1"], "--seeds: expected an integer seed in [0, 2^63), got -1"),
    (["train", "--seeds", str(2**64)], "--seeds: expected an integer seed in [0, 2^63)"),
    (["compare", "--cells", "cmru", "cmru"], "--cells: expected distinct cells"),
    (["compare", "--clip", "0"], "clip: expected a positive gradient norm"),
    (["sensitivity", "--init-scales", "1", "0"], "init_scale: expected a positive finite number, got 0.0"),
    (["sensitivity", "--threshold-biases", "nan"], "threshold_bias: expected a finite number, got nan"),
    (["evaluate", "x.safetensors", "--batch-size", "0"], "--batch-size: expected a positive integer, got 0"),
    (["robustness", "x.safetensors", "--samples", "0"], "--samples: expected a positive integer, got 0"),
    (["robustness", "x.safetensors", "--samples", "-3"], "--samples: expected a positive integer, got -3"),
    (["robustness", "x.safetensors", "--trials", "0"], "--trials: expected a positive integer, got 0"),
    (["robustness", "x.safetensors", "--levels", "nan"], "--levels: expected a non-negative finite percentage"),
    (["robustness", "x.safetensors", "--input-noise", "-0.1"], "--input-noise: expected a non-negative finite"),
    (["robustness", "x.safetensors", "--state-noise", "inf"], "--state-noise: expected a non-negative finite"),
    (["robustness", "x.safetensors", "--seed", "-1"], "--seed: expected an integer seed in [0, 2^63)"),
    (["energy", "x.safetensors", "--samples", "0"], "--samples: expected a positive integer, got 0"),
    (["energy", "x.safetensors", "--step-duration", "inf"], "--step-duration: expected a positive finite number of seconds"),
    (["energy", "x.safetensors", "--step-duration", "0"], "--step-duration: expected a positive finite number of seconds"),
    (["deploy", "x.safetensors", "--input-bits", "1"], "--input-bits: expected a signed width of 2 to 24 bits, got 1"),
    (["deploy", "x.safetensors", "--timeout", "inf"], "--timeout: expected a positive finite number of seconds"),
    (["deploy", "x.safetensors", "--sequences", "0"], "--sequences: expected a positive integer, got 0"),
    (["demo", "--seed", "-1"], "--seed: expected an integer seed in [0, 2^63)"),
])
def test_bad_values_are_one_line_errors(argv, message, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # nothing is written (demo's report folder included)
    one_line_error(capsys, main(argv), message)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv, message", [
    (["train", "--steps", "x"], "cmru-neuro train: error: argument --steps: invalid int value: 'x' (see cmru-neuro train --help)"),
    (["energy"], "cmru-neuro energy: error: the following arguments are required: checkpoint"),
    (["tran"], "cmru-neuro: error: argument COMMAND: invalid choice: 'tran'"),
])
def test_argument_syntax_errors_are_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as done:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert done.value.code == 2 and len(err.splitlines()) == 1 and err.startswith(message), err


def test_version_and_every_option_has_help_showing_its_default(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.startswith("cmru-neuro ")
    parser = build_parser()
    for name, command in parser._subparsers._group_actions[0].choices.items():
        formatter = command._get_formatter()
        for action in command._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, f"{name} {action.option_strings[0]} has no help"
            if action.option_strings and action.nargs != 0:  # every valued option: its default, once
                shown = formatter._expand_help(action)
                assert shown.lower().count("default") == 1, f"{name} {action.option_strings[0]}: {shown}"
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
    err = process.stderr.read().strip()
    assert len(err.splitlines()) == 1 and "train: interrupted at step" in err, err
    assert f"metrics (marked interrupted) saved in {out}" in err
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

"""``cmru-neuro demo``: the main job, end to end on a generated long-range memory task.

1. trains a small deployable CMRU network (and a minGRU of the same width, on the same
   time budget, for contrast) on copy-first-input (remember step 0's symbol over T steps; no download);
2. prices one inference of the CMRU on every shipped hardware profile;
3. quantizes the CMRU to Loihi-like integers, runs it on Lava's fixed-point simulator and
   checks parity with the integer reference (skipped, and said so, where Lava is missing);
4. writes a report folder: ``summary.md``, ``curves.png``, ``energy.png``, ``energy.json``,
   ``results.json`` and the two checkpoints.

The full run takes a few minutes on 2 cores; ``--quick`` is a smoke run.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

import torch

from ..energy import available_profiles, estimate_energy_many, plot_reports, summary_table
from ..training import TrainConfig, plot_histories, train, write_json

FULL = dict(length=200, hidden=16, steps=400, lr=1e-2, seconds=60, train_size=2000, test_size=500, lava_sequences=50)
QUICK = dict(length=30, hidden=8, steps=60, lr=1e-2, seconds=20, train_size=200, test_size=100, lava_sequences=4)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="reports/demo", help="report folder (default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run in seconds")
    parser.add_argument("--seed", type=int, default=0, help="seed of the task and the models")
    parser.add_argument("--no-lava", action="store_true", help="skip the Lava deployment step")


def run(args: argparse.Namespace) -> int:
    from .._checks import check_seed

    check_seed(args.seed, "--seed")
    settings = QUICK if args.quick else FULL
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    task_options = dict(length=settings["length"], train_size=settings["train_size"],
                        test_size=settings["test_size"], seed=args.seed)

    _say(f"1/3 training on copy-first-input, T={settings['length']} (report: {out})")
    runs = {}
    for label, cell, arch in (("CMRU", "cmru", "stack"), ("minGRU", "mingru", "block")):
        config = TrainConfig(task="copy-first", task_options=task_options, cell=cell, arch=arch, layers=1,
                             hidden=settings["hidden"], steps=settings["steps"], lr=settings["lr"], seed=args.seed,
                             eval_every=max(settings["steps"] // 40, 1), stop_at=1.0,
                             time_limit=settings["seconds"],
                             out_dir=str(out / cell))
        runs[label] = train(config)
        _say(f"    {label} ({arch}, hidden {settings['hidden']}): test accuracy "
             f"{100 * runs[label].metrics['test_accuracy']:.1f}% after {runs[label].metrics['steps']} steps")
    plot_histories({label: r.metrics["history"] for label, r in runs.items()}, out / "curves.png",
                   chance=runs["CMRU"].metrics["chance"],
                   title="copy-first-input: validation loss and accuracy")

    _say("2/3 energy per inference of the CMRU on every shipped hardware profile")
    cmru = runs["CMRU"]
    from ..tasks import make_task

    task = make_task("copy-first", **task_options)
    example, targets = task.batch(task.test, torch.arange(min(len(task.test), 32)))
    reports = estimate_energy_many(cmru.model, example, sorted(available_profiles()), time_first=True)
    table = summary_table(reports)
    print(table)
    plot_reports(reports, out / "energy.png")
    write_json(out / "energy.json", [report.to_dict() for report in reports])

    _say("3/3 deployment: integer model and Lava fixed point")
    deployment = _deploy(cmru.model, task, settings["lava_sequences"], skip_lava=args.no_lava)
    for line in deployment["lines"]:
        _say("    " + line)

    results = {
        "settings": settings,
        "accuracy": {label: r.metrics["test_accuracy"] for label, r in runs.items()},
        "steps": {label: r.metrics["steps"] for label, r in runs.items()},
        "energy_joules": {report.profile.name: report.total for report in reports},
        "deployment": {k: v for k, v in deployment.items() if k != "lines"},
        "seconds": time.perf_counter() - started,
    }
    write_json(out / "results.json", results)
    (out / "summary.md").write_text(_summary(results, table, deployment["lines"]))
    _say(f"done in {results['seconds']:.0f} s; report: {out / 'summary.md'}")
    return 0


def _deploy(model, task, sequences: int, skip_lava: bool) -> dict:
    """Quantize, compare float vs integer accuracy, run on Lava and check bit parity."""
    from ..deployment import deploy

    missing = importlib.util.find_spec("lava") is None
    result = deploy(model, task, sequences=sequences, lava=not (skip_lava or missing))
    report = result.integer
    summary = {"float_accuracy": report.float_accuracy, "integer_accuracy": report.integer_accuracy,
               "integer_saturations": report.saturations, "lava": None}
    lines = [f"integer model vs float on {len(task.test)} test sequences: {report}"]
    if result.lava is None:
        reason = "--no-lava" if skip_lava else "lava-nc is not installed (it needs Python 3.10)"
        return {**summary, "lines": lines + [f"Lava run skipped: {reason}"]}
    run = result.lava
    bit_exact = result.mismatched == 0
    summary["lava"] = {"sequences": sequences, "bit_exact": bit_exact, "accuracy": result.lava_accuracy,
                       "messages_sent": run.messages, "steps": run.steps, "seconds": run.seconds}
    lines.append(f"Lava fixed point on {sequences} test sequences ({run.steps} steps, {run.seconds:.1f} s): "
                 f"bit-exact with the integer model: {'yes' if bit_exact else 'NO'}; "
                 f"accuracy {result.lava_accuracy:.1f}%; messages sent per layer {run.messages}")
    return {**summary, "lines": lines}


def _summary(results: dict, energy_table: str, deployment: list[str]) -> str:
    accuracy = "\n".join(f"| {label} | {100 * value:.1f}% | {results['steps'][label]} |"
                         for label, value in results["accuracy"].items())
    settings = results["settings"]
    return f"""# cmru-neuro demo report

Task: copy-first-input, T = {settings['length']} (remember the symbol at step 0), hidden {settings['hidden']},
each model trained for at most {settings['steps']} steps or {settings['seconds']} s (the same budget),
stopping once validation accuracy reaches 100%. The CMRU is the deployable network (units +
linear readout); minGRU, which has no integer deployment path here, uses the paper's block
(LayerNorm, GLU MLP, residual). Took {results['seconds']:.0f} s.

## Test accuracy

| model | test accuracy | steps |
|---|---|---|
{accuracy}

![learning curves](curves.png)

## Energy per inference of the CMRU (one sequence)

```
{energy_table}
```

![energy per target](energy.png)

Figures marked assumed in the profiles (e.g. every Loihi 2 per-op value) are assumptions;
see `energy.json` for every figure's source and what each estimate leaves out.

## Deployment

{chr(10).join('- ' + line for line in deployment)}
"""


def _say(message: str) -> None:
    print(message, flush=True)


__all__ = ["add_arguments", "run"]
